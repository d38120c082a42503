/*
 * keys.c -- the keys process: the only holder of private keys.
 *
 * A memory-disclosure bug in TLS or SMTP handling must not leak a key
 * (DESIGN.md, "Processes"), so no process that reads network input
 * holds one.  The parent opens each key file as root and hands the
 * descriptors to this process when it forks it (smtpd.c,
 * start_generation()); the parent never reads them, so a key's bytes
 * are never in the memory that later forks inherit.  Here the keys are
 * parsed, checked against their certificates, and kept; then the
 * process drops to an unprivileged user in an empty chroot under the
 * tightest sandbox of all (SANDBOX_KEYS: no open, no socket, no exec):
 * it only reads requests on the channels it was given and answers them.
 *
 * Its clients are the smtp workers and the mta of its generation, each
 * on a channel of its own, through the stub keys of keys_client.c: they
 * send what is to be signed (a digest, or for Ed25519 the message), the
 * key's id and the signature scheme; we answer with the signature.
 * Key ids: a pki's place in conf->pkis; DKIM keys (keys_dkim.c) from
 * KEYS_DKIM_ID0 on.  A request for a key we do not
 * hold, or a scheme that does not fit the key, is refused (PROTO_PERMFAIL
 * and a log line): the handshake it was for fails, the daemon goes on.
 *
 * When every client's channel has closed (its generation retired, or
 * the daemon stops) there is nothing left to sign for: the process
 * exits.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keys.h"
#include "keys_int.h"
#include "log.h"
#include "mproc.h"
#include "platform.h"
#include "privsep.h"
#include "proc.h"
#include "proto.h"

#define KEYS_FILE_MAX	(1024 * 1024)	/* a PEM key or certificate */

struct keys_client {
	struct mproc	 mp;
	char		 name[32];
	int		 open;
};

static EVP_PKEY			**keys;
static size_t			  nkeys;
static struct mproc		  k_parent;
/* TLS: each worker's and the mta's; then each worker's DKIM channel */
static struct keys_client	  clients[2 * SMTPD_MAX_WORKERS + 1];
static int			  nclients, nopen, first_dkim;

/* the whole file behind fd, NUL-terminated; NULL on error */
static char *
keys_read_fd(int fd, size_t *lenp)
{
	char	*buf;
	size_t	 len = 0;
	ssize_t	 n;

	if ((buf = malloc(KEYS_FILE_MAX + 1)) == NULL)
		fatal("malloc");
	while (len < KEYS_FILE_MAX &&
	    (n = read(fd, buf + len, KEYS_FILE_MAX - len)) > 0)
		len += (size_t)n;
	if (len == 0 || len == KEYS_FILE_MAX) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

static void
keys_forget_buf(char *buf, size_t len)
{
	OPENSSL_cleanse(buf, len);
	free(buf);
}

EVP_PKEY *
keys_load_pem(int fd)
{
	EVP_PKEY	*pkey;
	BIO		*bio;
	char		*buf;
	size_t		 len;

	if ((buf = keys_read_fd(fd, &len)) == NULL)
		return NULL;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
		fatalx("BIO_new_mem_buf");
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	keys_forget_buf(buf, len);
	return pkey;
}

static X509 *
keys_load_cert(int fd)
{
	X509	*x;
	BIO	*bio;
	char	*buf;
	size_t	 len;

	if ((buf = keys_read_fd(fd, &len)) == NULL)
		return NULL;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
		fatalx("BIO_new_mem_buf");
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	free(buf);
	return x;
}

/* every pki's key, checked against its certificate */
static void
keys_load_pkis(const struct proc_fds *f)
{
	struct pki	*pki;
	X509		*x;
	size_t		 i = 0;
	int		 certfd, keyfd;

	TAILQ_FOREACH(pki, &conf->pkis, entry)
		nkeys++;
	if (nkeys > 0 && (keys = calloc(nkeys, sizeof(*keys))) == NULL)
		fatal("calloc");
	TAILQ_FOREACH(pki, &conf->pkis, entry) {
		certfd = 2 * i < (size_t)f->nkeyfiles ? f->keyfiles[2 * i] : -1;
		keyfd = 2 * i + 1 < (size_t)f->nkeyfiles ?
		    f->keyfiles[2 * i + 1] : -1;
		if (keyfd == -1) {	/* not used by this configuration */
			i++;
			continue;
		}
		if ((keys[i] = keys_load_pem(keyfd)) == NULL)
			fatalx("pki %s: cannot read the key %s: %s", pki->name,
			    pki->key_file, ERR_reason_error_string(
			    ERR_get_error()));
		if ((x = keys_load_cert(certfd)) == NULL)
			fatalx("pki %s: cannot read the certificate %s",
			    pki->name, pki->cert_file);
		if (X509_check_private_key(x, keys[i]) != 1)
			fatalx("pki %s: key %s does not match the certificate "
			    "%s", pki->name, pki->key_file, pki->cert_file);
		X509_free(x);
		close(certfd);
		close(keyfd);
		i++;
	}
	ERR_clear_error();
}

static int
op_fits(const EVP_PKEY *key, uint32_t op)
{
	switch (op) {
	case KEYS_OP_RSA_PKCS1:
	case KEYS_OP_RSA_PSS:
		return EVP_PKEY_is_a(key, "RSA");
	case KEYS_OP_ECDSA:
		return EVP_PKEY_is_a(key, "EC");
	case KEYS_OP_ED25519:
		return EVP_PKEY_is_a(key, "ED25519");
	}
	return 0;
}

int
keys_sign(EVP_PKEY *key, const struct keys_sign_req *req,
    struct keys_sign_res *res)
{
	EVP_PKEY_CTX	*ctx = NULL;
	EVP_MD_CTX	*mdctx = NULL;
	const EVP_MD	*md = NULL, *mgf1 = NULL;
	size_t		 len = sizeof(res->sig);
	int		 ok = 0;

	memset(res, 0, sizeof(*res));
	res->status = PROTO_PERMFAIL;
	if (key == NULL || !op_fits(key, req->op))
		return -1;
	if (req->op == KEYS_OP_ED25519) {
		if ((mdctx = EVP_MD_CTX_new()) == NULL)
			fatalx("EVP_MD_CTX_new");
		ok = EVP_DigestSignInit(mdctx, NULL, NULL, NULL, key) == 1 &&
		    EVP_DigestSign(mdctx, res->sig, &len, req->data,
		    req->len) == 1;
		EVP_MD_CTX_free(mdctx);
		goto done;
	}
	if ((md = EVP_get_digestbynid((int)req->md)) == NULL ||
	    (size_t)EVP_MD_get_size(md) != req->len)
		goto done;
	if ((ctx = EVP_PKEY_CTX_new(key, NULL)) == NULL ||
	    EVP_PKEY_sign_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
		goto done;
	if (req->op == KEYS_OP_RSA_PKCS1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
		goto done;
	if (req->op == KEYS_OP_RSA_PSS) {
		if ((mgf1 = EVP_get_digestbynid((int)req->mgf1md)) == NULL ||
		    EVP_PKEY_CTX_set_rsa_padding(ctx,
		    RSA_PKCS1_PSS_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, req->saltlen) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf1) != 1)
			goto done;
	}
	ok = EVP_PKEY_sign(ctx, res->sig, &len, req->data, req->len) == 1;
done:
	EVP_PKEY_CTX_free(ctx);
	if (!ok || len == 0 || len > sizeof(res->sig)) {
		ERR_clear_error();
		memset(res, 0, sizeof(*res));
		res->status = PROTO_PERMFAIL;
		return -1;
	}
	res->status = PROTO_OK;
	res->len = (uint32_t)len;
	return 0;
}

static void
keys_client_dispatch(struct mproc *p, struct imsg *m)
{
	struct keys_sign_req	req;
	struct keys_sign_res	res;

	switch (m->hdr.type) {
	case IMSG_KEYS_SIGN:
		PROTO_READ(p, m, &req, proto_valid_keys_sign_req);
		if (keys_sign(req.keyid < nkeys ? keys[req.keyid] :
		    keys_dkim_key(req.keyid), &req, &res) == -1)
			log_warnx("keys: %s asked key %u for a signature it "
			    "cannot make (operation %u)", p->name, req.keyid,
			    req.op);
		mproc_compose(p, IMSG_KEYS_SIGN, m->hdr.peerid, -1, &res,
		    sizeof(res));
		break;
	default:
		fatalx("keys: unexpected message %u from %s", m->hdr.type,
		    p->name);
	}
}

static void
keys_client_closed(struct mproc *p)
{
	struct keys_client	*c = p->arg;

	if (c->open) {
		c->open = 0;
		mproc_clear(&c->mp);
		nopen--;
	}
	if (nopen == 0) {
		log_debug("keys: no client left, exiting");
		exit(0);
	}
}

static void
keys_parent_dispatch(struct mproc *p, struct imsg *m)
{
	keys_dkim_parent(p, m);
}

void
keys_dkim_broadcast(void)
{
	int	i;

	for (i = first_dkim; i < nclients; i++)
		if (clients[i].open)
			keys_dkim_tell(&clients[i].mp);
}

static void
keys_add_client(int fd, const char *name)
{
	struct keys_client	*c;

	if (fd == -1)
		return;
	c = &clients[nclients++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	mproc_init(&c->mp, fd, c->name, keys_client_dispatch, c);
	c->mp.closed = keys_client_closed;
	c->open = 1;
	nopen++;
}

void
keys_main(struct proc_fds *f)
{
	char	name[32];
	int	i;

	proc_setup("keys");
	keys_load_pkis(f);
	privsep_drop(SMTPD_USER, SMTPD_EMPTY_DIR);
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	sandbox_enter(SANDBOX_KEYS);
	mproc_init(&k_parent, f->parent, "parent", keys_parent_dispatch,
	    NULL);
	for (i = 0; i < f->nsmtp && i < SMTPD_MAX_WORKERS; i++) {
		snprintf(name, sizeof(name), "smtp worker %d", i + 1);
		keys_add_client(f->smtp[i], name);
	}
	keys_add_client(f->mta, "mta");
	first_dkim = nclients;
	for (i = 0; i < f->nsmtp && i < SMTPD_MAX_WORKERS; i++) {
		snprintf(name, sizeof(name), "smtp worker %d (dkim)", i + 1);
		keys_add_client(f->smtp_dkim[i], name);
	}
	proc_on_term(NULL);
	event_base_dispatch(ev_base);
	exit(0);
}
