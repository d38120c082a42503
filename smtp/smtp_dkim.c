/*
 * smtp_dkim.c -- DKIM signing in the smtp worker (RFC 6376, RFC 8463).
 *
 * Mail we originate is signed: from authenticated sessions, local
 * submission (sendmail) and clients on this host (loopback), when the
 * From: domain, or the nearest parent domain that has any, has keys in
 * the "dkim sign" table.  Each key of that domain signs (an RSA and an
 * Ed25519 signature side by side, RFC 8463 5).
 *
 * The worker hashes the message while it writes it to the spool
 * (common/dkim.c, fed by smtp_data.c's msg_line()); at the end of data
 * it builds each DKIM-Signature with b= empty, and sends the digest to
 * the keys process, which alone holds the keys (keys/keys_dkim.c), on a
 * channel of its own, asynchronously: the worker serves its other
 * sessions meanwhile.  The answers become the signature fields, added
 * above the message without rewriting it (smtp_data_add_header()), and
 * the commit goes on.  A signature that cannot be made (keys refused,
 * a key rotated away in between) fails the message with 451: the client
 * tries again, and the next attempt is signed; unsigned mail from a
 * domain that publishes DMARC would be refused by its receivers.
 *
 * Whom we may sign for comes from the keys process at start and after
 * each "smtpctl update table" (IMSG_KEYS_DKIM_LIST): domain, selector,
 * algorithm and key id, never the key.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/objects.h>

#include "dkim.h"
#include "log.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "smtp_session.h"

#define DKIM_SIGS_MAX	4	/* signatures on one message */

struct dkim_job {
	TAILQ_ENTRY(dkim_job)	 entry;
	uint32_t		 id;
	uint32_t		 sessid;
	struct txn		*tx;	/* NULL once the transaction is gone */
	int			 pending, failed;
	size_t			 n;
	struct dkim_sign	 sign[DKIM_SIGS_MAX];
	void			(*done)(struct session *, int);
};

static struct mproc			 keys_dkim;
static int				 have_keys;
static struct keys_dkim_ident		*idents, *next_idents;
static size_t				 nidents, nnext;
static TAILQ_HEAD(, dkim_job)		 jobs = TAILQ_HEAD_INITIALIZER(jobs);
static uint32_t				 job_serial;

static struct dkim_job *
job_find(uint32_t id)
{
	struct dkim_job	*j;

	TAILQ_FOREACH(j, &jobs, entry)
		if (j->id == id)
			return j;
	return NULL;
}

static void
job_reply(struct dkim_job *j, uint32_t peerid, const struct keys_sign_res *r)
{
	char		 hdr[DKIM_HEADER_MAX + 1024];
	struct session	*s;
	size_t		 k = peerid & 0xff;

	if (j->tx != NULL && r->status == PROTO_OK && k < j->n &&
	    (s = session_find(j->sessid)) != NULL && s->tx == j->tx) {
		if (dkim_sign_header(&j->sign[k], r->sig, r->len, hdr,
		    sizeof(hdr)) == -1 || smtp_data_add_header(s, hdr) == -1)
			j->failed = 1;
	} else
		j->failed = 1;
	if (--j->pending > 0)
		return;
	TAILQ_REMOVE(&jobs, j, entry);
	if (j->tx != NULL && (s = session_find(j->sessid)) != NULL &&
	    s->tx == j->tx) {
		s->tx->dkim_job = NULL;
		j->done(s, !j->failed);
	}
	free(j);
}

static void
keys_dkim_dispatch(struct mproc *p, struct imsg *m)
{
	struct keys_dkim_ident	id;
	struct keys_sign_res	res;
	struct dkim_job		*j;

	switch (m->hdr.type) {
	case IMSG_KEYS_DKIM_LIST:
		PROTO_READ(p, m, &id, proto_valid_keys_dkim_ident);
		if (id.op != KEYS_OP_RSA_PKCS1 && id.op != KEYS_OP_ED25519)
			fatalx("keys: a DKIM key without an algorithm");
		next_idents = reallocarray(next_idents, nnext + 1,
		    sizeof(*next_idents));
		if (next_idents == NULL)
			fatal("reallocarray");
		next_idents[nnext++] = id;
		break;
	case IMSG_KEYS_DKIM_LIST_END:
		mproc_check_len(p, m, 0);
		free(idents);
		idents = next_idents;
		nidents = nnext;
		next_idents = NULL;
		nnext = 0;
		break;
	case IMSG_KEYS_SIGN:
		PROTO_READ(p, m, &res, proto_valid_keys_sign_res);
		if ((j = job_find(m->hdr.peerid >> 8)) == NULL)
			fatalx("keys: an answer to no request");
		job_reply(j, m->hdr.peerid, &res);
		break;
	default:
		fatalx("unexpected message %u from keys", m->hdr.type);
	}
}

void
smtp_dkim_init(int fd)
{
	if (fd == -1)
		return;
	mproc_init(&keys_dkim, fd, "keys", keys_dkim_dispatch, NULL);
	have_keys = 1;
}

int
smtp_dkim_want_sign(const struct session *s)
{
	if (!have_keys || conf->dkim_sign_table[0] == '\0' || nidents == 0)
		return 0;
	return (s->flags & (SS_AUTH | SS_LOCAL)) ||
	    smtp_client_is_loopback(&s->ss);
}

/* the keys of the From: domain, or of its nearest parent that has any */
static size_t
keys_for(const char *domain, const struct keys_dkim_ident **out)
{
	size_t	i, n;

	while (domain != NULL && strchr(domain, '.') != NULL) {
		for (i = n = 0; i < nidents && n < DKIM_SIGS_MAX; i++)
			if (strcmp(idents[i].domain, domain) == 0)
				out[n++] = &idents[i];
		if (n > 0)
			return n;
		domain = strchr(domain, '.') + 1;
	}
	return 0;
}

int
smtp_dkim_sign(struct session *s, void (*done)(struct session *, int))
{
	const struct keys_dkim_ident	*use[DKIM_SIGS_MAX];
	struct txn			*tx = s->tx;
	struct keys_sign_req		 req;
	struct dkim_job			*j;
	const char			*domain;
	char				 why[DKIM_WHY_MAX];
	uint8_t				 digest[32];
	size_t				 n, i;
	time_t				 now = time(NULL);

	if (tx->dkim == NULL || !smtp_dkim_want_sign(s))
		return 0;
	dkim_msg_end(tx->dkim);
	if ((domain = dkim_msg_from_domain(tx->dkim)) == NULL ||
	    (n = keys_for(domain, use)) == 0)
		return 0;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->id = ++job_serial & 0xffffff;
	j->sessid = s->id;
	j->tx = tx;
	j->done = done;
	for (i = 0; i < n; i++) {
		if (dkim_sign_prepare(tx->dkim, use[i]->domain,
		    use[i]->selector, use[i]->op == KEYS_OP_ED25519 ?
		    DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256, now,
		    &j->sign[j->n], digest, why, sizeof(why)) == -1) {
			log_info("%08x: not DKIM-signed as %s: %s", tx->msgid,
			    use[i]->domain, why);
			continue;
		}
		memset(&req, 0, sizeof(req));
		req.keyid = use[i]->keyid;
		req.op = use[i]->op;
		req.md = req.op == KEYS_OP_RSA_PKCS1 ? NID_sha256 : 0;
		req.len = sizeof(digest);
		memcpy(req.data, digest, sizeof(digest));
		mproc_compose(&keys_dkim, IMSG_KEYS_SIGN, j->id << 8 | j->n,
		    -1, &req, sizeof(req));
		j->n++;
		j->pending++;
	}
	if (j->pending == 0) {
		free(j);
		return 0;
	}
	TAILQ_INSERT_TAIL(&jobs, j, entry);
	tx->dkim_job = j;
	return 1;
}

void
smtp_dkim_txn_gone(struct txn *tx)
{
	if (tx->dkim_job != NULL)
		tx->dkim_job->tx = NULL;
	if (tx->dkim != NULL)
		dkim_msg_free(tx->dkim);
}
