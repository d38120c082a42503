/*
 * rcpt.c -- one RCPT TO lookup, from request to result, asynchronously.
 *
 * Steps: the client's reverse DNS when a "from rdns" rule needs it, the
 * match rules, then the expansion (expand.c), which may stop to have
 * the privileged parent open a user's ~/.forward.  Destinations go to
 * the asker as they are found; the result (lookup_rcpt_reply() in
 * lookup.c) comes last.  The asker (an smtp worker, or the queue for
 * bounces) waits for that result, so any number of lookups may be in
 * flight, each known here by its own id.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "destmac.h"
#include "table.h"
#include "dns.h"
#include "log.h"
#include "lookup.h"
#include "pwcache.h"
#include "mproc.h"
#include "proto.h"
#include "proc.h"

#define RCPT_MAX_DESTS	1000	/* destinations one recipient may have */
/*
 * How long a worker may give the same answer to the same request
 * without asking (smtp/smtp_rcache.c), when nothing but the request and
 * the configuration decided it: a recipient relayed by rules without
 * tables.  Anything that looked at a table, the password file or a
 * ~/.forward is asked every time, so an administrator's change is seen
 * by the very next RCPT.
 */
#define RCPT_REUSE_MS	1000

struct rcpt_job {
	TAILQ_ENTRY(rcpt_job)	 entry;
	uint32_t		 id;	/* ours; the asker's is in req */
	struct mproc		*p;
	struct lka_rcpt_req	 req;
	struct lka_rdns		 rdns;
	int			 have_rdns;
	uint32_t		 reuse_ms;	/* for an acceptance */
	struct match		*m;
	struct expand		*e;	/* while a .forward is asked for */
	/*
	 * The destinations found, sent with the result: a run that meets
	 * a shared table's unanswered query is dropped and run again
	 * (table.h), and its destinations with it.
	 */
	struct lka_dest		*dests;
	size_t			 ndests, capdests;
	struct table_stall	 stall;
};

static TAILQ_HEAD(, rcpt_job)	jobs = TAILQ_HEAD_INITIALIZER(jobs);
static uint32_t			next_id;
static struct mproc		*parent;

void
rcpt_init(struct mproc *p)
{
	parent = p;
}

static void	rcpt_route(struct rcpt_job *);

static void
rcpt_resume(void *arg)
{
	struct rcpt_job	*j = arg;

	rcpt_route(j);
}

/*
 * Only RCPT destinations become envelopes, so only they are sealed (VRFY
 * and EXPN answers are shown to the client, never queued).  The queue
 * refuses an envelope whose destination does not carry this seal.
 */
static void
rcpt_emit(void *arg, const struct lka_dest *d)
{
	struct rcpt_job	*j = arg;
	struct lka_dest	*n;
	const uint8_t	*key;

	if ((key = destmac_key()) == NULL)
		fatalx("lookup holds no destination key");
	if (j->ndests == j->capdests) {
		if ((n = reallocarray(j->dests, j->capdests ?
		    j->capdests * 2 : 4, sizeof(*n))) == NULL)
			fatal("reallocarray");
		j->dests = n;
		j->capdests = j->capdests ? j->capdests * 2 : 4;
	}
	n = &j->dests[j->ndests++];
	*n = *d;
	destmac_compute(key, n, n->mac);
}

static void
rcpt_finish(struct rcpt_job *j, uint32_t status, const char *reply,
    uint32_t ndest)
{
	struct lka_result	r;
	size_t			i;

	memset(&r, 0, sizeof(r));
	r.reqid = j->req.reqid;
	r.status = status;
	r.ndest = ndest;
	r.reuse_ms = status == PROTO_OK ? j->reuse_ms : 0;
	snprintf(r.reply, sizeof(r.reply), "%s", reply);
	/* RFC 5321 4.5.1: postmaster is always accepted (lookup/auth.c) */
	if (r.status == PROTO_PERMFAIL && r.ndest == 0 &&
	    !j->stall.stalled && lookup_postmaster(&j->req, j->m, rcpt_emit,
	    j, &r.ndest, r.reply, sizeof(r.reply)) == PROTO_OK)
		r.status = PROTO_OK;
	j->m = NULL;
	if (j->stall.stalled) {
		/* a shared table's answer is not in: the run starts over */
		j->ndests = 0;
		j->reuse_ms = 0;
		table_stall_park(&j->stall, rcpt_resume, j);
		return;
	}
	for (i = 0; i < j->ndests; i++)
		mproc_compose(j->p, IMSG_LKA_RCPT_DEST, j->dests[i].reqid, -1,
		    &j->dests[i], sizeof(j->dests[i]));
	TAILQ_REMOVE(&jobs, j, entry);
	mproc_compose(j->p, IMSG_LKA_RCPT_RESULT, j->req.reqid, -1, &r,
	    sizeof(r));
	table_stall_done(&j->stall);
	free(j->dests);
	free(j);
}

static void
rcpt_expand_done(void *arg, int status, const char *reply, uint32_t ndest)
{
	rcpt_finish(arg, (uint32_t)status, reply, ndest);
}

/*
 * Most users have no ~/.forward, and asking the parent costs a round
 * trip per recipient.  Where the home directory can be searched by us, a
 * stat() that says there is no such file settles it; anything else (a
 * file, a home we may not look into) goes to the parent, which alone
 * opens and checks the file.
 */
static int
forward_absent(const char *user)
{
	struct passwd	*pw;
	struct stat	 sb;
	char		 path[1100];

	if ((pw = pwcache_getpwnam(user)) == NULL || pw->pw_dir == NULL)
		return 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/.forward", pw->pw_dir) >=
	    sizeof(path))
		return 0;
	return lstat(path, &sb) == -1 && errno == ENOENT;
}

static void
rcpt_forward(void *arg, struct expand *e, const char *user)
{
	struct rcpt_job		*j = arg;
	struct forward_req	 fr;

	if (parent == NULL || forward_absent(user)) {
		expand_forward_done(e, -1, PROTO_PERMFAIL);
		return;
	}
	j->e = e;
	memset(&fr, 0, sizeof(fr));
	fr.reqid = j->id;
	snprintf(fr.user, sizeof(fr.user), "%s", user);
	mproc_compose(parent, IMSG_PARENT_FORWARD, j->id, -1, &fr,
	    sizeof(fr));
}

void
rcpt_forward_reply(const struct forward_req *fr, int fd)
{
	struct rcpt_job	*j;
	struct expand	*e;

	TAILQ_FOREACH(j, &jobs, entry)
		if (j->id == fr->reqid)
			break;
	if (j == NULL || j->e == NULL)
		fatalx("forward reply for unknown request %u", fr->reqid);
	if ((fr->status == PROTO_OK) != (fd != -1))
		fatalx("forward reply from parent: status and fd disagree");
	e = j->e;
	j->e = NULL;
	table_stall_begin(&j->stall);
	expand_forward_done(e, fd, (int)fr->status);
	(void)table_stall_end();
}

static void
rcpt_route_run(struct rcpt_job *j)
{
	char	rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2], reply[512];
	int	rc;

	addr_to_string(&j->req.rcpt, rcpt, sizeof(rcpt));
	rc = rule_find_rdns(&j->req, j->have_rdns ? &j->rdns : NULL, &j->m);
	if (rc == -1) {
		/* a database that is down: never "relay denied" */
		snprintf(reply, sizeof(reply), "451 4.3.0 <%s>: Temporary "
		    "lookup failure", rcpt);
		rcpt_finish(j, PROTO_TEMPFAIL, reply, 0);
		return;
	}
	if (rc == 0) {
		/* a rule might have matched had the client's name resolved */
		if (j->have_rdns && j->rdns.status == PROTO_TEMPFAIL) {
			snprintf(reply, sizeof(reply), "451 4.4.3 <%s>: "
			    "Temporary failure resolving the client's name",
			    rcpt);
			rcpt_finish(j, PROTO_TEMPFAIL, reply, 0);
			return;
		}
		/* Postfix's words, which log analysers know */
		snprintf(reply, sizeof(reply), "550 5.7.1 <%s>: Relay access "
		    "denied", rcpt);
		rcpt_finish(j, PROTO_PERMFAIL, reply, 0);
		return;
	}
	if (j->m->reject == MATCH_DEFER) {
		snprintf(reply, sizeof(reply), "451 4.7.1 <%s>: Recipient "
		    "address deferred by policy", rcpt);
		rcpt_finish(j, PROTO_TEMPFAIL, reply, 0);
		return;
	}
	if (j->m->reject || j->m->action == NULL) {
		snprintf(reply, sizeof(reply), "550 5.7.1 <%s>: Recipient "
		    "address rejected by policy", rcpt);
		rcpt_finish(j, PROTO_PERMFAIL, reply, 0);
		return;
	}
	if (j->m->action->type == ACTION_RELAY &&
	    rule_decided_statically(j->m))
		j->reuse_ms = RCPT_REUSE_MS;
	expand_start(&j->req, j->m->action, rcpt_emit, rcpt_forward,
	    rcpt_expand_done, j, RCPT_MAX_DESTS);
}

/* one run of the request, which a shared table may stall (table.h) */
static void
rcpt_route(struct rcpt_job *j)
{
	table_stall_begin(&j->stall);
	rcpt_route_run(j);
	(void)table_stall_end();
}

static void
rcpt_rdns_done(void *arg, const struct lka_rdns *r)
{
	struct rcpt_job	*j = arg;

	j->rdns = *r;
	j->have_rdns = 1;
	rcpt_route(j);
}

void
rcpt_start(struct mproc *p, const struct lka_rcpt_req *req)
{
	struct rcpt_job	*j;
	struct lka_rdns	 q;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->id = ++next_id;
	j->p = p;
	j->req = *req;
	TAILQ_INSERT_TAIL(&jobs, j, entry);
	if (rule_need_rdns() && !(req->flags & SF_LOCAL) &&
	    (req->client.ss_family == AF_INET ||
	    req->client.ss_family == AF_INET6)) {
		/* unbound caches: one query per client, not per RCPT */
		memset(&q, 0, sizeof(q));
		q.reqid = j->id;
		q.addr = req->client;
		dns_rdns(&q, rcpt_rdns_done, j);
		return;
	}
	rcpt_route(j);
}
