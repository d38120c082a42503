/*
 * keys_client.c -- the stub keys of keys_client.h: an OpenSSL 3
 * provider whose keys hold only an id and a public key, and whose
 * signatures are made by the keys process.
 *
 * Why a provider.  OpenSSL 3 offers two ways to put a signature
 * elsewhere: the RSA_METHOD/EC_KEY_METHOD hooks of the 1.1 API (what
 * OpenSMTPD's ca.c uses) and providers.  The hooks are deprecated in 3.0
 * and have no Ed25519 counterpart at all, so a certificate with an
 * Ed25519 key could not be served; a provider covers RSA (PKCS#1 v1.5
 * and PSS), ECDSA and Ed25519 alike and is the interface OpenSSL keeps.
 *
 * The provider offers, per key type, a key manager and a signature
 * implementation.  The key manager's names are the real ones ("RSA",
 * "EC", "ED25519"), so that libssl sees the stub as a key of that type
 * (it classifies keys with EVP_PKEY_is_a()); it answers every question
 * about the key (bits, size, curve, public parts) from the public key,
 * and exports only that.  Its signature operation has a name of its own
 * ("POSTHASTE-RSA"...; OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME), so a
 * stub is always signed by us and nothing else ever asks us to sign.
 * Generic fetches by name prefer the default provider
 * (EVP_set_default_properties: "?provider=default"), so the rest of the
 * process (peer keys, certificate checks) never gets our key manager.
 *
 * What crosses to the keys process is what is signed, never more: the
 * digest for RSA and ECDSA (hashed here), the message for Ed25519,
 * which has no separate hash (TLS 1.3 signs ~130 bytes).
 */
#include <sys/types.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "imsg.h"
#include "keys_client.h"
#include "log.h"
#include "proto.h"

#define KEYS_PROVIDER		"posthaste-keys"
#define KEYS_PARAM_ID		"posthaste-key-id"
#define KEYS_PARAM_PUB		"posthaste-pub"	/* SubjectPublicKeyInfo */

enum stub_type { STUB_RSA, STUB_EC, STUB_ED25519 };

static const char *const stub_sig_names[] = {
	[STUB_RSA] = "POSTHASTE-RSA",
	[STUB_EC] = "POSTHASTE-EC",
	[STUB_ED25519] = "POSTHASTE-ED25519",
};

static const char *const stub_key_names[] = {
	[STUB_RSA] = "RSA",
	[STUB_EC] = "EC",
	[STUB_ED25519] = "ED25519",
};

struct stub_key {
	enum stub_type	 type;
	uint32_t	 id;
	EVP_PKEY	*pub;
};

struct stub_sig {
	enum stub_type	 type;
	struct stub_key	*key;
	EVP_MD		*md;
	EVP_MD_CTX	*mdctx;		/* RSA, EC: the running digest */
	unsigned char	*msg;		/* Ed25519: the message so far */
	size_t		 msglen;
	int		 pad;		/* RSA_PKCS1_PADDING or _PSS_ */
	int		 saltlen;
	int		 mgf1;		/* NID, 0 = the signature's digest */
};

static keys_transport	 transport;
static struct imsgbuf	 chan;
static uint32_t		 serial;
static uint64_t		 nsigned;

/* ---- the channel to the keys process ---- */

static int
chan_sign(const struct keys_sign_req *req, struct keys_sign_res *res)
{
	struct imsg	m;
	uint32_t	id = ++serial;
	ssize_t		n;
	int		r;

	if (imsg_compose(&chan, IMSG_KEYS_SIGN, id, -1, req,
	    sizeof(*req)) == -1 || imsg_flush(&chan) == -1) {
		log_warn("keys: cannot send a signature request");
		return -1;
	}
	for (;;) {
		if ((r = imsg_get(&chan, &m)) == -1)
			fatalx("keys: malformed reply");
		if (r == 1)
			break;
		if ((n = imsg_read(&chan)) == 0)
			fatalx("keys: the keys process went away");
		if (n == -1)
			fatal("keys: read");
	}
	if (m.hdr.type != IMSG_KEYS_SIGN || m.hdr.peerid != id ||
	    m.len != sizeof(*res) || m.fd != -1)
		fatalx("keys: unexpected reply");
	memcpy(res, m.data, sizeof(*res));
	if (proto_valid_keys_sign_res(res) == -1)
		fatalx("keys: invalid reply");
	return 0;
}

static int
remote_sign(struct stub_sig *s, const unsigned char *data, size_t len,
    unsigned char *sig, size_t *siglen, size_t sigsize)
{
	struct keys_sign_req	req;
	struct keys_sign_res	res;

	if (transport == NULL || len == 0 || len > sizeof(req.data))
		return 0;
	memset(&req, 0, sizeof(req));
	req.keyid = s->key->id;
	req.len = (uint32_t)len;
	memcpy(req.data, data, len);
	switch (s->type) {
	case STUB_RSA:
		req.op = s->pad == RSA_PKCS1_PSS_PADDING ? KEYS_OP_RSA_PSS :
		    KEYS_OP_RSA_PKCS1;
		req.md = (uint32_t)EVP_MD_get_type(s->md);
		req.mgf1md = (uint32_t)(s->mgf1 ? s->mgf1 : (int)req.md);
		req.saltlen = s->saltlen;
		break;
	case STUB_EC:
		req.op = KEYS_OP_ECDSA;
		req.md = (uint32_t)EVP_MD_get_type(s->md);
		break;
	case STUB_ED25519:
		req.op = KEYS_OP_ED25519;
		break;
	}
	if (transport(&req, &res) == -1 || res.status != PROTO_OK ||
	    res.len > sigsize) {
		ERR_raise_data(ERR_LIB_PROV, ERR_R_OPERATION_FAIL,
		    "the keys process did not sign with key %u", req.keyid);
		return 0;
	}
	memcpy(sig, res.sig, res.len);
	*siglen = res.len;
	nsigned++;
	return 1;
}

/* ---- key manager ---- */

static void *
key_new(enum stub_type type)
{
	struct stub_key	*k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->type = type;
	return k;
}

static void *key_new_rsa(void *ctx) { (void)ctx; return key_new(STUB_RSA); }
static void *key_new_ec(void *ctx) { (void)ctx; return key_new(STUB_EC); }
static void *key_new_ed(void *ctx) { (void)ctx; return key_new(STUB_ED25519); }

static void
key_free(void *kd)
{
	struct stub_key	*k = kd;

	if (k == NULL)
		return;
	EVP_PKEY_free(k->pub);
	free(k);
}

static int
key_has(const void *kd, int selection)
{
	const struct stub_key	*k = kd;

	(void)selection;	/* a stub stands for the whole key pair */
	return k != NULL && k->pub != NULL;
}

static int
key_import(void *kd, int selection, const OSSL_PARAM params[])
{
	struct stub_key		*k = kd;
	const OSSL_PARAM	*p;
	const unsigned char	*der;
	size_t			 len;
	unsigned int		 id;

	(void)selection;
	if ((p = OSSL_PARAM_locate_const(params, KEYS_PARAM_ID)) == NULL ||
	    !OSSL_PARAM_get_uint(p, &id))
		return 0;	/* not a stub: a public key from elsewhere */
	if ((p = OSSL_PARAM_locate_const(params, KEYS_PARAM_PUB)) == NULL ||
	    !OSSL_PARAM_get_octet_string_ptr(p, (const void **)&der, &len))
		return 0;
	EVP_PKEY_free(k->pub);
	k->pub = d2i_PUBKEY_ex(NULL, &der, (long)len, NULL,
	    "provider=default");
	if (k->pub == NULL || !EVP_PKEY_is_a(k->pub, stub_key_names[k->type]))
		return 0;
	k->id = id;
	return 1;
}

static const OSSL_PARAM key_import_list[] = {
	OSSL_PARAM_uint(KEYS_PARAM_ID, NULL),
	OSSL_PARAM_octet_string(KEYS_PARAM_PUB, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *
key_import_types(int selection)
{
	(void)selection;
	return key_import_list;
}

/* the public half, as the default provider would export it */
static int
key_export(void *kd, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
	struct stub_key	*k = kd;
	OSSL_PARAM	*params = NULL;
	int		 r;

	(void)selection;	/* never the private half: it is not here */
	if (k->pub == NULL ||
	    EVP_PKEY_todata(k->pub, EVP_PKEY_PUBLIC_KEY, &params) != 1)
		return 0;
	r = cb(params, cbarg);
	OSSL_PARAM_free(params);
	return r;
}

static const OSSL_PARAM key_export_list[] = {
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *
key_export_types(int selection)
{
	(void)selection;
	return key_export_list;
}

static int
key_get_params(void *kd, OSSL_PARAM params[])
{
	struct stub_key	*k = kd;

	return k->pub != NULL && EVP_PKEY_get_params(k->pub, params);
}

static const OSSL_PARAM key_gettable_list[] = {
	OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
	OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
	OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
	OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *
key_gettable_params(void *provctx)
{
	(void)provctx;
	return key_gettable_list;
}

static int
key_match(const void *a, const void *b, int selection)
{
	const struct stub_key	*ka = a, *kb = b;

	(void)selection;
	return ka->pub != NULL && kb->pub != NULL &&
	    EVP_PKEY_eq(ka->pub, kb->pub) == 1;
}

#define KEY_QUERY(t)							\
static const char *							\
key_query_##t(int op)							\
{									\
	return op == OSSL_OP_SIGNATURE ? stub_sig_names[t] : NULL;	\
}
KEY_QUERY(STUB_RSA)
KEY_QUERY(STUB_EC)
KEY_QUERY(STUB_ED25519)

#define FN(id, f)	{ id, (void (*)(void))(f) }
#define KEYMGMT(t, newfn)						\
static const OSSL_DISPATCH keymgmt_##t[] = {				\
	FN(OSSL_FUNC_KEYMGMT_NEW, newfn),				\
	FN(OSSL_FUNC_KEYMGMT_FREE, key_free),				\
	FN(OSSL_FUNC_KEYMGMT_HAS, key_has),				\
	FN(OSSL_FUNC_KEYMGMT_MATCH, key_match),				\
	FN(OSSL_FUNC_KEYMGMT_IMPORT, key_import),			\
	FN(OSSL_FUNC_KEYMGMT_IMPORT_TYPES, key_import_types),		\
	FN(OSSL_FUNC_KEYMGMT_EXPORT, key_export),			\
	FN(OSSL_FUNC_KEYMGMT_EXPORT_TYPES, key_export_types),		\
	FN(OSSL_FUNC_KEYMGMT_GET_PARAMS, key_get_params),		\
	FN(OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, key_gettable_params),	\
	FN(OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, key_query_##t),	\
	{ 0, NULL }							\
};
KEYMGMT(STUB_RSA, key_new_rsa)
KEYMGMT(STUB_EC, key_new_ec)
KEYMGMT(STUB_ED25519, key_new_ed)

/* ---- signature ---- */

static void *
sig_new(enum stub_type type)
{
	struct stub_sig	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->type = type;
	s->pad = RSA_PKCS1_PADDING;
	s->saltlen = RSA_PSS_SALTLEN_DIGEST;
	return s;
}

static void *
sig_new_rsa(void *ctx, const char *propq)
{
	(void)ctx; (void)propq;
	return sig_new(STUB_RSA);
}

static void *
sig_new_ec(void *ctx, const char *propq)
{
	(void)ctx; (void)propq;
	return sig_new(STUB_EC);
}

static void *
sig_new_ed(void *ctx, const char *propq)
{
	(void)ctx; (void)propq;
	return sig_new(STUB_ED25519);
}

static void
sig_reset(struct stub_sig *s)
{
	EVP_MD_CTX_free(s->mdctx);
	s->mdctx = NULL;
	free(s->msg);
	s->msg = NULL;
	s->msglen = 0;
}

static void
sig_free(void *ctx)
{
	struct stub_sig	*s = ctx;

	if (s == NULL)
		return;
	sig_reset(s);
	EVP_MD_free(s->md);
	free(s);
}

static void *
sig_dup(void *ctx)
{
	struct stub_sig	*s = ctx, *d;

	if ((d = sig_new(s->type)) == NULL)
		return NULL;
	d->key = s->key;
	d->pad = s->pad;
	d->saltlen = s->saltlen;
	d->mgf1 = s->mgf1;
	if (s->md != NULL && !EVP_MD_up_ref(s->md))
		goto fail;
	d->md = s->md;
	if (s->mdctx != NULL && ((d->mdctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_MD_CTX_copy_ex(d->mdctx, s->mdctx)))
		goto fail;
	if (s->msglen > 0) {
		if ((d->msg = malloc(s->msglen)) == NULL)
			goto fail;
		memcpy(d->msg, s->msg, s->msglen);
		d->msglen = s->msglen;
	}
	return d;
fail:
	sig_free(d);
	return NULL;
}

static int
sig_set_md(struct stub_sig *s, const char *name)
{
	EVP_MD	*md;

	if (s->type == STUB_ED25519)
		return name == NULL || name[0] == '\0';
	if ((md = EVP_MD_fetch(NULL, name, "provider=default")) == NULL)
		return 0;
	EVP_MD_free(s->md);
	s->md = md;
	return 1;
}

static int
sig_set_params(void *ctx, const OSSL_PARAM params[])
{
	struct stub_sig		*s = ctx;
	const OSSL_PARAM	*p;
	const char		*str;
	EVP_MD			*md;
	int			 v;

	if (params == NULL)
		return 1;
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_DIGEST)) != NULL) {
		if (!OSSL_PARAM_get_utf8_string_ptr(p, &str) ||
		    !sig_set_md(s, str))
			return 0;
	}
	if (s->type != STUB_RSA)
		return 1;
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
		if (p->data_type == OSSL_PARAM_UTF8_STRING) {
			if (!OSSL_PARAM_get_utf8_string_ptr(p, &str))
				return 0;
			if (strcmp(str, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0)
				v = RSA_PKCS1_PSS_PADDING;
			else if (strcmp(str, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) ==
			    0)
				v = RSA_PKCS1_PADDING;
			else
				return 0;
		} else if (!OSSL_PARAM_get_int(p, &v))
			return 0;
		if (v != RSA_PKCS1_PADDING && v != RSA_PKCS1_PSS_PADDING)
			return 0;
		s->pad = v;
	}
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL) {
		if (p->data_type == OSSL_PARAM_UTF8_STRING) {
			if (!OSSL_PARAM_get_utf8_string_ptr(p, &str))
				return 0;
			if (strcmp(str, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
				v = RSA_PSS_SALTLEN_DIGEST;
			else
				return 0;	/* "max", "auto": not used */
		} else if (!OSSL_PARAM_get_int(p, &v))
			return 0;
		if (v < RSA_PSS_SALTLEN_DIGEST || v > KEYS_SIG_MAX)
			return 0;
		s->saltlen = v;
	}
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL) {
		if (!OSSL_PARAM_get_utf8_string_ptr(p, &str) ||
		    (md = EVP_MD_fetch(NULL, str, "provider=default")) == NULL)
			return 0;
		s->mgf1 = EVP_MD_get_type(md);
		EVP_MD_free(md);
	}
	return 1;
}

static const OSSL_PARAM sig_settable_list[] = {
	OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
	OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
	OSSL_PARAM_END
};

static const OSSL_PARAM *
sig_settable_params(void *ctx, void *provctx)
{
	(void)ctx; (void)provctx;
	return sig_settable_list;
}

static int
sig_get_params(void *ctx, OSSL_PARAM params[])
{
	(void)ctx; (void)params;
	return 1;
}

static const OSSL_PARAM sig_gettable_list[] = { OSSL_PARAM_END };

static const OSSL_PARAM *
sig_gettable_params(void *ctx, void *provctx)
{
	(void)ctx; (void)provctx;
	return sig_gettable_list;
}

static int
sig_init(void *ctx, void *kd, const OSSL_PARAM params[])
{
	struct stub_sig	*s = ctx;
	struct stub_key	*k = kd;

	if (k == NULL || k->type != s->type || k->pub == NULL)
		return 0;
	sig_reset(s);
	s->key = k;
	if (s->type != STUB_ED25519 && s->md == NULL &&
	    !sig_set_md(s, "SHA256"))
		return 0;
	return sig_set_params(s, params);
}

static int
sig_digest_init(void *ctx, const char *mdname, void *kd,
    const OSSL_PARAM params[])
{
	struct stub_sig	*s = ctx;

	if (mdname != NULL && mdname[0] != '\0' && !sig_set_md(s, mdname))
		return 0;
	if (!sig_init(s, kd, params))
		return 0;
	if (s->type == STUB_ED25519)
		return 1;
	if ((s->mdctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex2(s->mdctx, s->md, NULL))
		return 0;
	return 1;
}

static int
sig_digest_update(void *ctx, const unsigned char *data, size_t len)
{
	struct stub_sig	*s = ctx;
	unsigned char	*n;

	if (s->type != STUB_ED25519)
		return s->mdctx != NULL &&
		    EVP_DigestUpdate(s->mdctx, data, len);
	if (len > KEYS_DATA_MAX - s->msglen)
		return 0;
	if ((n = realloc(s->msg, s->msglen + len + 1)) == NULL)
		return 0;
	memcpy(n + s->msglen, data, len);
	s->msg = n;
	s->msglen += len;
	return 1;
}

static int
sig_size(struct stub_sig *s, size_t *siglen)
{
	int	n = EVP_PKEY_get_size(s->key->pub);

	if (n <= 0)
		return 0;
	*siglen = (size_t)n;
	return 1;
}

static int
sig_digest_final(void *ctx, unsigned char *sig, size_t *siglen,
    size_t sigsize)
{
	struct stub_sig	*s = ctx;
	unsigned char	 dgst[EVP_MAX_MD_SIZE];
	unsigned int	 dlen;

	if (s->key == NULL)
		return 0;
	if (sig == NULL)
		return sig_size(s, siglen);
	if (s->type == STUB_ED25519)
		return remote_sign(s, s->msg, s->msglen, sig, siglen, sigsize);
	if (s->mdctx == NULL || !EVP_DigestFinal_ex(s->mdctx, dgst, &dlen))
		return 0;
	return remote_sign(s, dgst, dlen, sig, siglen, sigsize);
}

/* one shot: what libssl uses (EVP_DigestSign) */
static int
sig_digest_sign(void *ctx, unsigned char *sig, size_t *siglen,
    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
	struct stub_sig	*s = ctx;
	unsigned char	 dgst[EVP_MAX_MD_SIZE];
	unsigned int	 dlen;

	if (s->key == NULL)
		return 0;
	if (sig == NULL)
		return sig_size(s, siglen);
	if (s->type == STUB_ED25519)
		return remote_sign(s, tbs, tbslen, sig, siglen, sigsize);
	if (!EVP_Digest(tbs, tbslen, dgst, &dlen, s->md, NULL))
		return 0;
	return remote_sign(s, dgst, dlen, sig, siglen, sigsize);
}

/* EVP_PKEY_sign(): tbs is already a digest (RSA, EC) */
static int
sig_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
    const unsigned char *tbs, size_t tbslen)
{
	struct stub_sig	*s = ctx;

	if (s->key == NULL)
		return 0;
	if (sig == NULL)
		return sig_size(s, siglen);
	if (s->type != STUB_ED25519 &&
	    tbslen != (size_t)EVP_MD_get_size(s->md))
		return 0;
	return remote_sign(s, tbs, tbslen, sig, siglen, sigsize);
}

#define SIGNATURE(t, newfn)						\
static const OSSL_DISPATCH signature_##t[] = {				\
	FN(OSSL_FUNC_SIGNATURE_NEWCTX, newfn),				\
	FN(OSSL_FUNC_SIGNATURE_FREECTX, sig_free),			\
	FN(OSSL_FUNC_SIGNATURE_DUPCTX, sig_dup),			\
	FN(OSSL_FUNC_SIGNATURE_SIGN_INIT, sig_init),			\
	FN(OSSL_FUNC_SIGNATURE_SIGN, sig_sign),				\
	FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, sig_digest_init),	\
	FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, sig_digest_update),	\
	FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, sig_digest_final),	\
	FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN, sig_digest_sign),		\
	FN(OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, sig_get_params),		\
	FN(OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, sig_gettable_params), \
	FN(OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, sig_set_params),		\
	FN(OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, sig_settable_params), \
	{ 0, NULL }							\
};
SIGNATURE(STUB_RSA, sig_new_rsa)
SIGNATURE(STUB_EC, sig_new_ec)
SIGNATURE(STUB_ED25519, sig_new_ed)

/* ---- the provider ---- */

#define PROPS	"posthaste.stub=yes"

static const OSSL_ALGORITHM prov_keymgmt[] = {
	{ "RSA:rsaEncryption", PROPS, keymgmt_STUB_RSA, NULL },
	{ "EC:id-ecPublicKey", PROPS, keymgmt_STUB_EC, NULL },
	{ "ED25519", PROPS, keymgmt_STUB_ED25519, NULL },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM prov_signature[] = {
	{ "POSTHASTE-RSA", PROPS, signature_STUB_RSA, NULL },
	{ "POSTHASTE-EC", PROPS, signature_STUB_EC, NULL },
	{ "POSTHASTE-ED25519", PROPS, signature_STUB_ED25519, NULL },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *
prov_query(void *provctx, int op, int *no_cache)
{
	(void)provctx;
	*no_cache = 0;
	switch (op) {
	case OSSL_OP_KEYMGMT:
		return prov_keymgmt;
	case OSSL_OP_SIGNATURE:
		return prov_signature;
	}
	return NULL;
}

static const OSSL_DISPATCH prov_dispatch[] = {
	FN(OSSL_FUNC_PROVIDER_QUERY_OPERATION, prov_query),
	{ 0, NULL }
};

static int
prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
    const OSSL_DISPATCH **out, void **provctx)
{
	static int	ctx;

	(void)handle; (void)in;
	*out = prov_dispatch;
	*provctx = &ctx;
	return 1;
}

/* loaded for the life of the process */
static OSSL_PROVIDER	*deflt, *ours;

void
keys_client_provider_unload(void)
{
	if (ours != NULL)
		OSSL_PROVIDER_unload(ours);
	if (deflt != NULL)
		OSSL_PROVIDER_unload(deflt);
	ours = deflt = NULL;
}

void
keys_client_provider_load(void)
{
	if (ours != NULL)
		return;
	/* loading any provider stops the implicit load of the default */
	if ((deflt = OSSL_PROVIDER_load(NULL, "default")) == NULL ||
	    !OSSL_PROVIDER_add_builtin(NULL, KEYS_PROVIDER, prov_init) ||
	    (ours = OSSL_PROVIDER_load(NULL, KEYS_PROVIDER)) == NULL ||
	    !EVP_set_default_properties(NULL, "?provider=default"))
		fatalx("keys: cannot load the stub key provider");
}

void
keys_client_set_transport(keys_transport fn)
{
	transport = fn;
}

void
keys_client_init(int fd)
{
	keys_client_provider_load();
	if (fd == -1)
		return;		/* no keys process: no stub can sign */
	imsgbuf_init(&chan, fd);
	transport = chan_sign;
}

EVP_PKEY *
keys_client_stub(uint32_t id, EVP_PKEY *pub)
{
	EVP_PKEY_CTX	*ctx;
	EVP_PKEY	*pkey = NULL;
	OSSL_PARAM	 params[3];
	unsigned char	*der = NULL;
	const char	*name;
	unsigned int	 uid = id;
	int		 len;

	if (EVP_PKEY_is_a(pub, "RSA"))
		name = "RSA";
	else if (EVP_PKEY_is_a(pub, "EC"))
		name = "EC";
	else if (EVP_PKEY_is_a(pub, "ED25519"))
		name = "ED25519";
	else {
		ERR_raise_data(ERR_LIB_PROV, ERR_R_UNSUPPORTED,
		    "key type %s", EVP_PKEY_get0_type_name(pub));
		return NULL;
	}
	if ((len = i2d_PUBKEY(pub, &der)) <= 0)
		return NULL;
	params[0] = OSSL_PARAM_construct_uint(KEYS_PARAM_ID, &uid);
	params[1] = OSSL_PARAM_construct_octet_string(KEYS_PARAM_PUB, der,
	    (size_t)len);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, name,
	    PROPS);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	return pkey;
}

uint64_t
keys_client_count(void)
{
	return nsigned;
}
