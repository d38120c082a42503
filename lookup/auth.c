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
#include "dns.h"
#include "lookup.h"
#include "mproc.h"
#include "proto.h"
#include "pwcheck.h"
#include "proc.h"

#define PLAIN_PREFIX	"{plain}"
#define VRFY_MAX_DESTS	100	/* an EXPN answer is cut there */

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

/* an AUTH checked against a table, which a shared table may stall */
struct auth_job {
	struct table_stall	 stall;
	struct mproc		*p;
	struct lka_auth_req	 req;
};

static void
auth_run(void *arg)
{
	struct auth_job			*j = arg;
	const struct lka_auth_req	*req = &j->req;
	struct lka_result		 r;
	struct listener			*l;
	struct table			*t;
	char				 stored[1024];
	int				 rc, cram;

	memset(&r, 0, sizeof(r));
	r.reqid = req->reqid;
	r.status = PROTO_PERMFAIL;
	if ((l = listener_by_index(req->listener)) == NULL)
		fatalx("auth request for unknown listener %u", req->listener);
	cram = strcmp(req->mech, "CRAM-MD5") == 0;
	if ((t = config_find_table(conf, l->auth_table)) == NULL)
		fatalx("auth: no table %s", l->auth_table);
	table_stall_begin(&j->stall);
	rc = table_lookup_credentials(t, req->user, stored, sizeof(stored));
	if (table_stall_end()) {
		/* the database's answer is not in yet: asked again then */
		table_stall_park(&j->stall, auth_run, j);
		return;
	}
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
	mproc_compose(j->p, IMSG_LKA_AUTH, req->reqid, -1, &r, sizeof(r));
	table_stall_done(&j->stall);
	freezero(j, sizeof(*j));
}

void
lookup_auth(struct mproc *p, const struct lka_auth_req *req)
{
	struct listener	*l;
	struct auth_job	*j;

	if ((l = listener_by_index(req->listener)) == NULL)
		fatalx("auth request for unknown listener %u", req->listener);
	if (l->auth_table[0] == '\0') {
		/* system accounts: the helper that may read /etc/shadow */
		if (strcmp(req->mech, "CRAM-MD5") == 0) {
			/* the parser refuses the combination */
			struct lka_result r;

			memset(&r, 0, sizeof(r));
			r.reqid = req->reqid;
			r.status = PROTO_PERMFAIL;
			mproc_compose(p, IMSG_LKA_AUTH, req->reqid, -1, &r,
			    sizeof(r));
			return;
		}
		auth_system_ask(p, req);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->p = p;
	j->req = *req;
	auth_run(j);
}

/*
 * MAIL FROM on a listener with "senders <table>": an authenticated user
 * may use only the addresses the table maps the user name to (Postfix's
 * smtpd_sender_login_maps, OpenSMTPD's senders), then the listener's
 * check-sender-domain.  The null sender is always allowed (a vacation
 * reply, a bounce).
 */
struct sender_job {
	struct table_stall	 stall;
	struct mproc		*p;
	struct lka_rcpt_req	 req;
};

static void
sender_run(void *arg)
{
	struct sender_job	*j = arg;
	struct lka_result	 r;
	struct listener		*l;
	struct table		*t;
	char			 from[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	int			 rc;

	if (j->req.flags & SF_LOCAL) {
		/* sendmail(8): asked for check-sender-domain only */
		dns_lka_sender(j->p, &j->req);
		free(j);
		return;
	}
	if ((l = listener_by_index(j->req.listener)) == NULL)
		fatalx("sender check for unknown listener %u",
		    j->req.listener);
	memset(&r, 0, sizeof(r));
	r.reqid = j->req.reqid;
	r.status = PROTO_OK;
	if (l->senders_table[0] != '\0' && (j->req.flags & SF_AUTH) &&
	    (j->req.mailfrom.user[0] || j->req.mailfrom.domain[0])) {
		if ((t = config_find_table(conf, l->senders_table)) == NULL)
			fatalx("senders: no table %s", l->senders_table);
		table_stall_begin(&j->stall);
		rc = table_match_mailaddr(t, j->req.authname,
		    &j->req.mailfrom);
		if (table_stall_end()) {
			table_stall_park(&j->stall, sender_run, j);
			return;
		}
		addr_to_string(&j->req.mailfrom, from, sizeof(from));
		if (rc == TABLE_ERROR) {
			r.status = PROTO_TEMPFAIL;
			snprintf(r.reply, sizeof(r.reply), "451 4.3.0 <%s>: "
			    "Sender address rejected: temporary lookup "
			    "failure", from);
		} else if (rc != TABLE_FOUND) {
			r.status = PROTO_PERMFAIL;
			snprintf(r.reply, sizeof(r.reply), "553 5.7.1 <%s>: "
			    "Sender address rejected: not owned by user %s",
			    from, j->req.authname);
		}
	}
	table_stall_done(&j->stall);
	if (r.status == PROTO_OK && l->check_sender_domain)
		dns_lka_sender(j->p, &j->req);
	else
		mproc_compose(j->p, IMSG_LKA_SENDER, r.reqid, -1, &r,
		    sizeof(r));
	free(j);
}

void
lookup_sender(struct mproc *p, const struct lka_rcpt_req *req)
{
	struct sender_job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->p = p;
	j->req = *req;
	sender_run(j);
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

/* a VRFY or EXPN, which a shared table may stall and run again */
struct vrfy_job {
	struct table_stall	 stall;
	struct mproc		*p;
	struct lka_rcpt_req	 req;
	int			 expn;
	uint32_t		 ndest;
	struct lka_dest		 dests[VRFY_MAX_DESTS];
};

static void
vrfy_emit(void *arg, const struct lka_dest *d)
{
	struct vrfy_job	*j = arg;

	/* an EXPN of a huge list is cut short, not an error */
	if (j->ndest >= VRFY_MAX_DESTS)
		return;
	j->dests[j->ndest++] = *d;
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

static void
vrfy_answer(struct vrfy_job *j, struct lka_result *r)
{
	struct lka_rcpt_req	 q = j->req;
	struct match		*m;
	struct action		*a = NULL;
	char			 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	int			 rc;

	addr_to_string(&j->req.rcpt, rcpt, sizeof(rcpt));
	if (!lookup_client_trusted(&j->req)) {
		r->status = PROTO_PERMFAIL;
		snprintf(r->reply, sizeof(r->reply), "252 2.5.0 Cannot %s "
		    "user, but will accept message and attempt delivery",
		    j->expn ? "EXPN" : "VRFY");
		return;
	}
	if ((rc = rule_find(&q, &m)) == -1) {
		r->status = PROTO_TEMPFAIL;
		snprintf(r->reply, sizeof(r->reply), "451 4.3.0 <%s>: "
		    "Temporary lookup failure", rcpt);
		return;
	}
	if (rc == 1 && !m->reject && m->action != NULL)
		a = m->action;
	else if (q.rcpt.domain[0] == '\0')
		a = first_local_action();	/* a bare local name */
	if (a == NULL) {
		r->status = PROTO_PERMFAIL;
		snprintf(r->reply, sizeof(r->reply), "550 5.1.1 <%s>: not a "
		    "deliverable address here", rcpt);
		return;
	}
	if (a->type == ACTION_RELAY && !j->expn) {
		r->status = PROTO_PERMFAIL;
		snprintf(r->reply, sizeof(r->reply), "252 2.1.5 <%s>: cannot "
		    "verify a remote address, but will attempt delivery",
		    rcpt);
		return;
	}
	r->status = expand_recipient(&q, a, vrfy_emit, j, r->reply,
	    sizeof(r->reply));
}

static void
vrfy_run(void *arg)
{
	struct vrfy_job		*j = arg;
	struct lka_result	 r;
	uint32_t		 i;

	memset(&r, 0, sizeof(r));
	r.reqid = j->req.reqid;
	j->ndest = 0;
	table_stall_begin(&j->stall);
	vrfy_answer(j, &r);
	if (table_stall_end()) {
		table_stall_park(&j->stall, vrfy_run, j);
		return;
	}
	for (i = 0; i < j->ndest; i++)
		mproc_compose(j->p, IMSG_LKA_RCPT_DEST, j->dests[i].reqid, -1,
		    &j->dests[i], sizeof(j->dests[i]));
	r.ndest = j->ndest;
	mproc_compose(j->p, IMSG_LKA_RCPT_RESULT, j->req.reqid, -1, &r,
	    sizeof(r));
	table_stall_done(&j->stall);
	free(j);
}

void
lookup_vrfy(struct mproc *p, const struct lka_rcpt_req *req, int expn)
{
	struct vrfy_job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->p = p;
	j->req = *req;
	j->expn = expn;
	vrfy_run(j);
}

struct postmaster_ctx {
	expand_emit	 emit;
	void		*arg;
	uint32_t	 ndest;
};

/* the fallback's destinations become envelopes, as an RCPT's do */
static void
postmaster_emit(void *arg, const struct lka_dest *d)
{
	struct postmaster_ctx	*ctx = arg;

	ctx->ndest++;
	ctx->emit(ctx->arg, d);
}

/*
 * RFC 5321 4.5.1: mail for postmaster (bare, or at a local domain) is
 * accepted even when no rule or user matches: it goes to the
 * "postmaster" alias or user of the first local action, else to root's
 * alias.  `m' is the rule that matched the recipient, if any.
 */
int
lookup_postmaster(const struct lka_rcpt_req *req, struct match *m,
    expand_emit emit, void *arg, uint32_t *ndest, char *reply,
    size_t replylen)
{
	static const char *const names[] = { "postmaster", "root" };
	struct lka_rcpt_req	 q = *req;
	struct action		*a;
	struct postmaster_ctx	 ctx;
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
	ctx.emit = emit;
	ctx.arg = arg;
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
