/*
 * keys_dkim.c -- the DKIM signing keys in the keys process.
 *
 * The parent sends the keys of the "dkim sign" table one by one, each as
 * the descriptor of its file (smtpd/dkim_keys.c), then "done": the new
 * set replaces the old one whole (a key rotated by "smtpctl update
 * table" without a restart).  Ids are never reused, so a request for a
 * key of a set just replaced is refused, not answered with another key.
 * Each smtp worker is told the set (domain, selector, algorithm, id):
 * whom it may sign for; it hashes the message (common/dkim.c) and sends
 * us the 32-byte digest to sign.
 *
 * rsa-sha256 keys must have at least 2048 bits (RFC 8301 3.2 allows
 * 1024 to verify, the issue asks 2048 to sign); other key types than
 * RSA and Ed25519 are refused.  Each refusal is logged.
 */
#include <sys/types.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "keys.h"
#include "keys_int.h"
#include "log.h"
#include "mproc.h"
#include "proto.h"

struct dkim_key {
	struct keys_dkim_ident	 id;
	EVP_PKEY		*pkey;
};

struct dkim_set {
	struct dkim_key		*keys;
	size_t			 n;
};

static struct dkim_set	 cur, pending;
static uint32_t		 next_id = KEYS_DKIM_ID0;

static void
set_free(struct dkim_set *s)
{
	size_t	i;

	for (i = 0; i < s->n; i++)
		EVP_PKEY_free(s->keys[i].pkey);
	free(s->keys);
	memset(s, 0, sizeof(*s));
}

static void
dkim_add(const struct keys_dkim_ident *in, int fd)
{
	struct dkim_key	*k;
	EVP_PKEY	*pkey;
	uint32_t	 op;

	pkey = keys_load_pem(fd);
	close(fd);
	if (pkey == NULL) {
		log_warnx("dkim: %s selector %s: not a private key in PEM",
		    in->domain, in->selector);
		return;
	}
	if (EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= 2048)
		op = KEYS_OP_RSA_PKCS1;
	else if (EVP_PKEY_is_a(pkey, "ED25519"))
		op = KEYS_OP_ED25519;
	else {
		log_warnx("dkim: %s selector %s: not an RSA key of 2048 bits "
		    "or more, nor Ed25519: not used", in->domain,
		    in->selector);
		EVP_PKEY_free(pkey);
		return;
	}
	if (pending.n == KEYS_DKIM_MAX) {
		EVP_PKEY_free(pkey);
		return;
	}
	k = reallocarray(pending.keys, pending.n + 1, sizeof(*k));
	if (k == NULL)
		fatal("reallocarray");
	pending.keys = k;
	k = &pending.keys[pending.n++];
	k->id = *in;
	k->id.keyid = next_id++;
	k->id.op = op;
	k->pkey = pkey;
}

/* the set, to one worker */
void
keys_dkim_tell(struct mproc *p)
{
	size_t	i;

	for (i = 0; i < cur.n; i++)
		mproc_compose(p, IMSG_KEYS_DKIM_LIST, 0, -1, &cur.keys[i].id,
		    sizeof(cur.keys[i].id));
	mproc_compose(p, IMSG_KEYS_DKIM_LIST_END, 0, -1, NULL, 0);
}

void
keys_dkim_parent(struct mproc *p, struct imsg *m)
{
	struct keys_dkim_ident	in;

	switch (m->hdr.type) {
	case IMSG_KEYS_DKIM_KEY:
		if (m->fd == -1)
			fatalx("keys: a DKIM key without its file");
		PROTO_READ(p, m, &in, proto_valid_keys_dkim_ident);
		dkim_add(&in, m->fd);
		break;
	case IMSG_KEYS_DKIM_DONE:
		mproc_check_len(p, m, 0);
		set_free(&cur);
		cur = pending;
		memset(&pending, 0, sizeof(pending));
		log_info("dkim: %zu signing key%s", cur.n,
		    cur.n == 1 ? "" : "s");
		keys_dkim_broadcast();
		break;
	default:
		fatalx("keys: unexpected message %u from the parent",
		    m->hdr.type);
	}
}

EVP_PKEY *
keys_dkim_key(uint32_t keyid)
{
	size_t	i;

	for (i = 0; i < cur.n; i++)
		if (cur.keys[i].id.keyid == keyid)
			return cur.keys[i].pkey;
	return NULL;
}
