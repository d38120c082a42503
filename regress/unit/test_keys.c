/*
 * test_keys.c -- the stub keys of common/keys_client.c and the keys
 * process's signer (keys/keys.c, keys_sign()).
 *
 * The transport is a function that hands the request to keys_sign()
 * with the real key, as the keys process does: every signature a stub
 * makes must verify under the real public key, and real TLS handshakes
 * (TLS 1.3 and 1.2, in memory, OpenSSL's own client) must succeed with
 * a server whose only key is a stub -- RSA (PSS in 1.3, PKCS#1 and PSS
 * in 1.2), ECDSA P-256 and Ed25519.  A stub never holds the private
 * half: exporting it as a key pair yields the public key only.
 */
#include <sys/types.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "keys.h"
#include "keys_client.h"
#include "proto.h"

static EVP_PKEY	*real;		/* the key the "keys process" holds */
static int	 requests;
static uint32_t	 last_op;

static int
local_sign(const struct keys_sign_req *req, struct keys_sign_res *res)
{
	requests++;
	last_op = req->op;
	assert_int_equal(proto_valid_keys_sign_req(req), 0);
	assert_int_equal(req->keyid, 7);
	keys_sign(real, req, res);
	assert_int_equal(proto_valid_keys_sign_res(res), 0);
	return 0;
}

static EVP_PKEY *
genkey(const char *type)
{
	EVP_PKEY	*k;

	if (strcmp(type, "RSA") == 0)
		k = EVP_RSA_gen(2048);
	else if (strcmp(type, "EC") == 0)
		k = EVP_EC_gen("P-256");
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(k);
	return k;
}

static EVP_PKEY *
stub_of(EVP_PKEY *k)
{
	EVP_PKEY	*stub;

	stub = keys_client_stub(7, k);
	if (stub == NULL)
		ERR_print_errors_fp(stderr);
	assert_non_null(stub);
	return stub;
}

/* sign with the stub (one shot, as libssl does), verify with the real */
static void
sign_verify(EVP_PKEY *stub, const char *md, int pad)
{
	static const unsigned char msg[] = "the quick brown fox";
	unsigned char	sig[1024];
	size_t		siglen = sizeof(sig);
	EVP_MD_CTX	*c = EVP_MD_CTX_new();
	EVP_PKEY_CTX	*pc = NULL;
	int		n = requests;

	assert_int_equal(EVP_DigestSignInit_ex(c, &pc, md, NULL, NULL, stub,
	    NULL), 1);
	if (pad)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, pad), 1);
	if (pad == RSA_PKCS1_PSS_PADDING)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc,
		    RSA_PSS_SALTLEN_DIGEST), 1);
	assert_int_equal(EVP_DigestSign(c, sig, &siglen, msg, sizeof(msg)),
	    1);
	assert_int_equal(requests, n + 1);
	EVP_MD_CTX_free(c);

	c = EVP_MD_CTX_new();
	pc = NULL;
	assert_int_equal(EVP_DigestVerifyInit_ex(c, &pc, md, NULL, NULL, real,
	    NULL), 1);
	if (pad)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pc, pad), 1);
	assert_int_equal(EVP_DigestVerify(c, sig, siglen, msg, sizeof(msg)),
	    1);
	EVP_MD_CTX_free(c);
}

static void
test_sign_rsa(void **state)
{
	EVP_PKEY	*stub;

	(void)state;
	real = genkey("RSA");
	stub = stub_of(real);
	assert_true(EVP_PKEY_is_a(stub, "RSA"));
	assert_int_equal(EVP_PKEY_get_bits(stub), 2048);
	assert_int_equal(EVP_PKEY_get_size(stub), 256);
	sign_verify(stub, "SHA256", RSA_PKCS1_PADDING);
	assert_int_equal(last_op, KEYS_OP_RSA_PKCS1);
	sign_verify(stub, "SHA384", RSA_PKCS1_PSS_PADDING);
	assert_int_equal(last_op, KEYS_OP_RSA_PSS);
	EVP_PKEY_free(stub);
	EVP_PKEY_free(real);
}

static void
test_sign_ec_ed25519(void **state)
{
	EVP_PKEY	*stub;
	char		 group[64];

	(void)state;
	real = genkey("EC");
	stub = stub_of(real);
	assert_true(EVP_PKEY_is_a(stub, "EC"));
	assert_int_equal(EVP_PKEY_get_group_name(stub, group, sizeof(group),
	    NULL), 1);
	assert_string_equal(group, "prime256v1");
	sign_verify(stub, "SHA256", 0);
	assert_int_equal(last_op, KEYS_OP_ECDSA);
	EVP_PKEY_free(stub);
	EVP_PKEY_free(real);

	real = genkey("ED25519");
	stub = stub_of(real);
	assert_true(EVP_PKEY_is_a(stub, "ED25519"));
	sign_verify(stub, NULL, 0);
	assert_int_equal(last_op, KEYS_OP_ED25519);
	EVP_PKEY_free(stub);
	EVP_PKEY_free(real);
}

/* what a stub exports is the public key: nothing private to steal */
static void
test_stub_has_no_secret(void **state)
{
	EVP_PKEY	*stub;
	BIO		*bio;
	char		*text;
	long		 n;

	(void)state;
	real = genkey("RSA");
	stub = stub_of(real);
	assert_int_equal(EVP_PKEY_eq(stub, real), 1);
	bio = BIO_new(BIO_s_mem());
	/* a private key cannot be written from it */
	assert_int_equal(PEM_write_bio_PrivateKey(bio, stub, NULL, NULL, 0,
	    NULL, NULL), 0);
	ERR_clear_error();
	assert_int_equal(PEM_write_bio_PUBKEY(bio, stub), 1);
	n = BIO_get_mem_data(bio, &text);
	assert_true(n > 0 && strstr(text, "PUBLIC KEY") != NULL);
	BIO_free(bio);
	EVP_PKEY_free(stub);
	EVP_PKEY_free(real);
}

/* a self-signed certificate for k (signed with the real key) */
static X509 *
selfsigned(EVP_PKEY *k)
{
	X509		*x = X509_new();
	X509_NAME	*name;
	const EVP_MD	*md = EVP_PKEY_is_a(k, "ED25519") ? NULL : EVP_sha256();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"mx.example.test", -1, -1, 0);
	X509_set_issuer_name(x, name);
	assert_true(X509_sign(x, k, md) > 0);
	return x;
}

/* a whole handshake in memory: server with the stub, OpenSSL client */
static void
handshake(const char *type, int version, const char *sigalgs)
{
	SSL_CTX		*sctx, *cctx;
	SSL		*srv, *cli;
	BIO		*sb, *cb;
	X509		*x;
	EVP_PKEY	*stub;
	int		 i, rs = 0, rc = 0, n = requests;

	real = genkey(type);
	x = selfsigned(real);
	stub = stub_of(real);
	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(sctx, version);
	SSL_CTX_set_max_proto_version(sctx, version);
	SSL_CTX_set_cipher_list(sctx, "HIGH:!kRSA:!aNULL");
	assert_int_equal(SSL_CTX_use_certificate(sctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(sctx, stub), 1);
	assert_int_equal(SSL_CTX_check_private_key(sctx), 1);
	if (sigalgs != NULL)
		assert_int_equal(SSL_CTX_set1_sigalgs_list(cctx, sigalgs), 1);
	srv = SSL_new(sctx);
	cli = SSL_new(cctx);
	assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
	SSL_set_bio(srv, sb, sb);
	SSL_set_bio(cli, cb, cb);
	SSL_set_accept_state(srv);
	SSL_set_connect_state(cli);
	for (i = 0; i < 20 && (rs != 1 || rc != 1); i++) {
		if (rc != 1)
			rc = SSL_do_handshake(cli);
		if (rs != 1)
			rs = SSL_do_handshake(srv);
	}
	if (rs != 1 || rc != 1)
		ERR_print_errors_fp(stderr);
	assert_int_equal(rs, 1);
	assert_int_equal(rc, 1);
	assert_int_equal(SSL_version(cli), version);
	assert_int_equal(requests, n + 1);	/* one signature, remote */
	SSL_free(srv);
	SSL_free(cli);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	X509_free(x);
	EVP_PKEY_free(stub);
	EVP_PKEY_free(real);
}

static void
test_tls13(void **state)
{
	(void)state;
	handshake("RSA", TLS1_3_VERSION, NULL);
	assert_int_equal(last_op, KEYS_OP_RSA_PSS);
	handshake("EC", TLS1_3_VERSION, NULL);
	handshake("ED25519", TLS1_3_VERSION, NULL);
	assert_int_equal(last_op, KEYS_OP_ED25519);
}

static void
test_tls12(void **state)
{
	(void)state;
	handshake("RSA", TLS1_2_VERSION, "RSA+SHA256");
	assert_int_equal(last_op, KEYS_OP_RSA_PKCS1);
	handshake("RSA", TLS1_2_VERSION, "rsa_pss_rsae_sha256");
	assert_int_equal(last_op, KEYS_OP_RSA_PSS);
	handshake("EC", TLS1_2_VERSION, NULL);
	assert_int_equal(last_op, KEYS_OP_ECDSA);
}

/* the signer refuses what does not fit the key */
static void
test_sign_refusals(void **state)
{
	struct keys_sign_req	req;
	struct keys_sign_res	res;

	(void)state;
	real = genkey("EC");
	memset(&req, 0, sizeof(req));
	req.op = KEYS_OP_RSA_PKCS1;
	req.md = NID_sha256;
	req.len = 32;
	assert_int_equal(keys_sign(real, &req, &res), -1);
	assert_int_equal(res.status, PROTO_PERMFAIL);
	req.op = KEYS_OP_ECDSA;
	req.len = 20;			/* not a SHA-256 digest */
	assert_int_equal(keys_sign(real, &req, &res), -1);
	req.len = 32;
	assert_int_equal(keys_sign(real, &req, &res), 0);
	assert_int_equal(res.status, PROTO_OK);
	assert_int_equal(keys_sign(NULL, &req, &res), -1);
	EVP_PKEY_free(real);
}

int
main(void)
{
	int	rc;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_rsa),
		cmocka_unit_test(test_sign_ec_ed25519),
		cmocka_unit_test(test_stub_has_no_secret),
		cmocka_unit_test(test_tls13),
		cmocka_unit_test(test_tls12),
		cmocka_unit_test(test_sign_refusals),
	};

	keys_client_provider_load();
	keys_client_set_transport(local_sign);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	keys_client_provider_unload();
	return rc;
}
