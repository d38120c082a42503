/*
 * auth.c -- the lookup process's answers for what only some SMTP clients
 * may do: check AUTH credentials, and VRFY/EXPN for trusted clients.
 *
 * Credentials tables map a user name to a crypt(3) hash, e.g.
 *	alice	$6$salt$...		(SHA-512-crypt: smtpctl encrypt)
 *	bob	$2b$10$...		(bcrypt)
 * or, on listeners marked "auth-cram-md5", to a cleartext secret written
 *	carol	{plain}secret
 * which is what CRAM-MD5 needs (RFC 2195 computes an HMAC keyed with
 * the secret itself).  PLAIN and LOGIN work with either form.  Weak or
 * unknown hash formats (DES, MD5-crypt) never match (common/pwcheck.c).
 *
 * "auth" without a table means the system accounts.  Their hashes are in
 * /etc/shadow, which we must not be able to read; we pass the name and
 * password to the auth helper (auth/auth_system.c), which can, and
 * carry its yes or no back to the worker.  Requests get our own ids:
 * the workers' session ids are unique per worker only.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "addr.h"
#include "destmac.h"
#include "log.h"
#include "lookup.h"
#include "mproc.h"
#include "proto.h"
#include "pwcheck.h"
#include "proc.h"

#define PLAIN_PREFIX	"{plain}"

static struct listener *
listener_by_index(uint32_t idx)
{
	struct listener	*l;
	uint32_t	 i = 0;

	TAILQ_FOREACH(l, &conf->listeners, entry)
		if (i++ == idx)
			return l;
	return NULL;
}

/* system-account checks waiting for the helper's answer */
struct auth_pending {
	TAILQ_ENTRY(auth_pending) entry;
	uint32_t	 id;		/* ours, on the helper channel */
	uint32_t	 reqid;		/* the worker's */
	struct mproc	*asker;
};

static TAILQ_HEAD(, auth_pending) auth_pending =
    TAILQ_HEAD_INITIALIZER(auth_pending);
static struct mproc	auth_helper;
static int		auth_helper_ready;
static uint32_t		auth_next_id;

static void
auth_answer(struct mproc *p, uint32_t reqid, uint32_t status)
{
	struct lka_result	r;

	memset(&r, 0, sizeof(r));
	r.reqid = reqid;
	r.status = status;
	mproc_compose(p, IMSG_LKA_AUTH, reqid, -1, &r, sizeof(r));
}

static void
auth_helper_dispatch(struct mproc *p, struct imsg *m)
{
	struct auth_system_res	 res;
	struct auth_pending	*ap;

	if (m->hdr.type != IMSG_AUTH_SYSTEM)
		fatalx("unexpected message %u from %s", m->hdr.type, p->name);
	PROTO_READ(p, m, &res, proto_valid_auth_system_res);
	TAILQ_FOREACH(ap, &auth_pending, entry)
		if (ap->id == res.reqid)
			break;
	if (ap == NULL)
		fatalx("auth helper answered unknown request %u", res.reqid);
	TAILQ_REMOVE(&auth_pending, ap, entry);
	/* a worker that has gone meanwhile is not written to (mproc.c) */
	auth_answer(ap->asker, ap->reqid, res.status);
	free(ap);
}

void
auth_system_init(int fd)
{
	if (fd == -1)
		return;
	mproc_init(&auth_helper, fd, "auth helper", auth_helper_dispatch,
	    NULL);
	auth_helper_ready = 1;
}

static void
auth_system_ask(struct mproc *p, const struct lka_auth_req *req)
{
	struct auth_system_req	 q;
	struct auth_pending	*ap;

	if (!auth_helper_ready) {
		/* the parent starts one whenever a listener needs it */
		log_warnx("auth: no system-account helper running");
		auth_answer(p, req->reqid, PROTO_TEMPFAIL);
		return;
	}
	if ((ap = calloc(1, sizeof(*ap))) == NULL) {
		log_warn("auth: calloc");
		auth_answer(p, req->reqid, PROTO_TEMPFAIL);
		return;
	}
	ap->id = ++auth_next_id;
	ap->reqid = req->reqid;
	ap->asker = p;
	TAILQ_INSERT_TAIL(&auth_pending, ap, entry);
	memset(&q, 0, sizeof(q));
	q.reqid = ap->id;
	/* same sizes as lka_auth_req's, checked there: never truncated */
	_Static_assert(sizeof(q.user) == sizeof(req->user) &&
	    sizeof(q.pass) == sizeof(req->pass), "auth request sizes");
	memcpy(q.user, req->user, sizeof(q.user));
	memcpy(q.pass, req->pass, sizeof(q.pass));
	mproc_compose(&auth_helper, IMSG_AUTH_SYSTEM, q.reqid, -1, &q,
	    sizeof(q));
	explicit_bzero(&q, sizeof(q));
}

static int
check_password(const char *stored, const char *pass)
{
	if (strncmp(stored, PLAIN_PREFIX, strlen(PLAIN_PREFIX)) == 0)
		return pwcheck_equal(stored + strlen(PLAIN_PREFIX), pass);
	switch (pwcheck_crypt(stored, pass)) {
	case PWCHECK_MATCH:
		return 1;
	case PWCHECK_UNSUPPORTED:
		log_warnx("auth: unsupported password hash format in "
		    "credentials table");
		return 0;
	default:
		return 0;
	}
}

/* RFC 2195: pass is "challenge digest" */
static int
check_cram(const char *stored, const char *pass)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0, i;
	char		 hex[EVP_MAX_MD_SIZE * 2 + 1];
	const char	*sp, *secret;

	if (strncmp(stored, PLAIN_PREFIX, strlen(PLAIN_PREFIX)) != 0)
		return 0;
	if ((sp = strrchr(pass, ' ')) == NULL)
		return 0;
	secret = stored + strlen(PLAIN_PREFIX);
	if (HMAC(EVP_md5(), secret, (int)strlen(secret),
	    (const unsigned char *)pass, (size_t)(sp - pass), mac,
	    &maclen) == NULL)
		return 0;
	for (i = 0; i < maclen; i++)
		snprintf(hex + i * 2, 3, "%02x", mac[i]);
	hex[maclen * 2] = '\0';
	i = (unsigned int)pwcheck_equal(hex, sp + 1);
	OPENSSL_cleanse(mac, sizeof(mac));
	return (int)i;
}

void
lookup_auth(struct mproc *p, const struct lka_auth_req *req)
{
	struct lka_result	 r;
	struct listener		*l;
	struct table		*t;
	char			 stored[1024];
	int			 rc, cram;

	memset(&r, 0, sizeof(r));
	r.reqid = req->reqid;
	r.status = PROTO_PERMFAIL;
	if ((l = listener_by_index(req->listener)) == NULL)
		fatalx("auth request for unknown listener %u", req->listener);
	cram = strcmp(req->mech, "CRAM-MD5") == 0;
	if (l->auth_table[0] == '\0') {
		/* system accounts: the helper that may read /etc/shadow */
		if (cram)
			goto done;	/* the parser refuses the combination */
		auth_system_ask(p, req);
		return;
	}
	if ((t = config_find_table(conf, l->auth_table)) == NULL)
		fatalx("auth: no table %s", l->auth_table);
	rc = table_lookup(t, req->user, stored, sizeof(stored));
	if (rc == TABLE_ERROR) {
		r.status = PROTO_TEMPFAIL;
		goto done;
	}
	if (rc != TABLE_FOUND) {
		if (!cram)
			pwcheck_dummy(req->pass);
		goto done;
	}
	if (cram ? check_cram(stored, req->pass) :
	    check_password(stored, req->pass))
		r.status = PROTO_OK;
done:
	explicit_bzero(stored, sizeof(stored));
	mproc_compose(p, IMSG_LKA_AUTH, req->reqid, -1, &r, sizeof(r));
}

/*
 * Who may have VRFY and EXPN answered truthfully (and ask for ETRN):
 * authenticated clients, local submission, and the networks some rule
 * trusts -- a "match from src" that holds for the client, or "match from
 * local" (the default "from") for a loopback client.  Everyone else
 * gets 252 (RFC 5321 7.3).
 */
int
lookup_client_trusted(const struct lka_rcpt_req *req)
{
	struct match	*m;
	struct table	*t;
	int		 loopback;

	if (req->flags & (SF_AUTH | SF_LOCAL))
		return 1;
	loopback = addr_in_cidr(&req->client, "127.0.0.0/8") ||
	    addr_in_cidr(&req->client, "::1/128");
	TAILQ_FOREACH(m, &conf->matches, entry) {
		if (m->from_crit.negate || m->reject)
			continue;
		if (m->from == MATCH_FROM_LOCAL && loopback)
			return 1;
		if (m->from != MATCH_FROM_SRC)
			continue;
		if (!m->from_crit.is_table) {
			if (addr_in_cidr(&req->client, m->from_crit.value))
				return 1;
		} else if ((t = config_find_table(conf, m->from_crit.value))
		    != NULL && table_match_addr(t, &req->client))
			return 1;
	}
	return 0;
}

struct vrfy_ctx {
	struct mproc	*p;
	uint32_t	 ndest;
};

static void
vrfy_emit(void *arg, const struct lka_dest *d)
{
	struct vrfy_ctx	*ctx = arg;

	/* an EXPN of a huge list is cut short, not an error */
	if (ctx->ndest >= 100)
		return;
	ctx->ndest++;
	mproc_compose(ctx->p, IMSG_LKA_RCPT_DEST, d->reqid, -1, d, sizeof(*d));
}

static struct action *
first_local_action(void)
{
	struct action	*a;

	TAILQ_FOREACH(a, &conf->actions, entry)
		if (a->type != ACTION_RELAY)
			return a;
	return NULL;
}

void
lookup_vrfy(struct mproc *p, const struct lka_rcpt_req *req, int expn)
{
	struct lka_result	 r;
	struct lka_rcpt_req	 q = *req;
	struct match		*m;
	struct action		*a = NULL;
	struct vrfy_ctx		 ctx;
	char			 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];

	memset(&r, 0, sizeof(r));
	r.reqid = req->reqid;
	addr_to_string(&req->rcpt, rcpt, sizeof(rcpt));
	if (!lookup_client_trusted(req)) {
		r.status = PROTO_PERMFAIL;
		snprintf(r.reply, sizeof(r.reply), "252 2.5.0 Cannot %s "
		    "user, but will accept message and attempt delivery",
		    expn ? "EXPN" : "VRFY");
		goto done;
	}
	if (rule_find(&q, &m) && !m->reject && m->action != NULL)
		a = m->action;
	else if (q.rcpt.domain[0] == '\0')
		a = first_local_action();	/* a bare local name */
	if (a == NULL) {
		r.status = PROTO_PERMFAIL;
		snprintf(r.reply, sizeof(r.reply), "550 5.1.1 <%s>: not a "
		    "deliverable address here", rcpt);
		goto done;
	}
	if (a->type == ACTION_RELAY && !expn) {
		r.status = PROTO_PERMFAIL;
		snprintf(r.reply, sizeof(r.reply), "252 2.1.5 <%s>: cannot "
		    "verify a remote address, but will attempt delivery",
		    rcpt);
		goto done;
	}
	ctx.p = p;
	ctx.ndest = 0;
	r.status = expand_recipient(&q, a, vrfy_emit, &ctx, r.reply,
	    sizeof(r.reply));
	r.ndest = ctx.ndest;
done:
	mproc_compose(p, IMSG_LKA_RCPT_RESULT, req->reqid, -1, &r, sizeof(r));
}

/*
 * The fallback's destinations become envelopes, as an RCPT's do, so they
 * are sealed like rcpt.c's (the queue refuses, fatally, one that is not).
 */
static void
postmaster_emit(void *arg, const struct lka_dest *d)
{
	struct vrfy_ctx	*ctx = arg;
	struct lka_dest	 sealed = *d;
	const uint8_t	*key;

	if ((key = destmac_key()) == NULL)
		fatalx("lookup holds no destination key");
	destmac_compute(key, &sealed, sealed.mac);
	ctx->ndest++;
	mproc_compose(ctx->p, IMSG_LKA_RCPT_DEST, sealed.reqid, -1, &sealed,
	    sizeof(sealed));
}

/*
 * RFC 5321 4.5.1: mail for postmaster (bare, or at a local domain) is
 * accepted even when no rule or user matches: it goes to the
 * "postmaster" alias or user of the first local action, else to root's
 * alias.  `m' is the rule that matched the recipient, if any.
 */
int
lookup_postmaster(struct mproc *p, const struct lka_rcpt_req *req,
    struct match *m, uint32_t *ndest, char *reply, size_t replylen)
{
	static const char *const names[] = { "postmaster", "root" };
	struct lka_rcpt_req	 q = *req;
	struct action		*a;
	struct vrfy_ctx		 ctx;
	char			 why[512];
	size_t			 i;
	int			 rc = PROTO_PERMFAIL;

	if (strcasecmp(req->rcpt.user, "postmaster") != 0)
		return PROTO_PERMFAIL;
	if (m != NULL && m->reject)
		return PROTO_PERMFAIL;
	if (m != NULL && m->action != NULL && m->action->type != ACTION_RELAY)
		a = m->action;
	else if (req->rcpt.domain[0] == '\0' ||
	    rule_is_local_domain(req->rcpt.domain))
		a = first_local_action();
	else
		return PROTO_PERMFAIL;
	if (a == NULL)
		return PROTO_PERMFAIL;
	ctx.p = p;
	ctx.ndest = 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(q.rcpt.user, sizeof(q.rcpt.user), "%s", names[i]);
		rc = expand_recipient(&q, a, postmaster_emit, &ctx, why,
		    sizeof(why));
		if (rc != PROTO_PERMFAIL || ctx.ndest > 0)
			break;
	}
	if (rc == PROTO_OK)
		*ndest = ctx.ndest;
	else
		snprintf(reply, replylen, "%s", why);
	return rc;
}
