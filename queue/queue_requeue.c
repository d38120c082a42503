/*
 * queue_requeue.c -- smtpctl requeue (Postfix's postsuper -r): the
 * selected envelopes' recipients routed again under the configuration
 * now in force, after an administrator changed a relay host, a table or
 * a rule, and scheduled now.
 *
 * Each selected envelope's recipient (as the client gave it, before any
 * expansion) goes to lookup as an RCPT would, with what the envelope
 * kept of its session (requeue_context()): the sender, the HELO name,
 * the client's address, local submission, AUTH and its name, TLS.  An
 * envelope keeps no listener and no result of the inbound checks, so
 * "tag" rules see no tag and "spf"/"dnsbl" rules see checks that did not
 * run (smtpctl(8) says so); "from rdns" asks the DNS again.
 *
 * Only an answer of exactly one destination rewrites the envelope: a
 * recipient that is now unknown, now an alias of several (one envelope
 * cannot become several here: the message would need new envelopes,
 * which a commit makes), or that lookup cannot settle now (a temporary
 * failure) is left as it was, logged ("requeue: ID: <rcpt>: not
 * re-routed: why") and counted unchanged.  So is one in flight: its
 * agent has it, and its result decides.
 *
 * Durability, as hold: the new destination is written to queue/EVPID
 * (qenv_update(): aside, synced, renamed over), queue/ is synced once
 * the last answer is in, and only then are the envelopes scheduled and
 * smtpctl answered (one whose destination is what it was is only
 * scheduled: nothing to write); a crash before leaves each envelope
 * with its old destination or its new one, never a mix.  Lookup seals its
 * destinations (destmac.h) and the seal is checked here as for a
 * worker's envelope: a destination that does not verify is a broken
 * lookup, fatal.
 *
 * A few requests at a time go to lookup (REQUEUE_WINDOW), so that
 * "requeue all" on a large queue neither floods lookup nor blocks the
 * queue's loop.  A lookup channel that closes (its process exited after
 * a reload, or died) answers nothing more: what was asked of it is
 * counted unchanged, with no envelope half-written.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "destmac.h"
#include "log.h"
#include "queue.h"
#include "queue_int.h"
#include "util.h"

#define REQUEUE_WINDOW	32	/* lookups in flight per request */

struct requeue_item {
	uint64_t		 evpid;
	struct mproc		*lookup;	/* asked of; NULL: not yet */
	struct lka_dest		 dest;		/* the first destination */
	uint32_t		 ndests;
	int			 answered;
	int			 rewritten;	/* to schedule at the end */
};

struct requeue {
	TAILQ_ENTRY(requeue)	 entry;
	struct mproc		*ctl;
	uint32_t		 ctl_reqid;
	uint32_t		 base;		/* reqid of items[0] */
	struct requeue_item	*items;
	size_t			 nitems, nsent, nanswered;
	int			 requeued, unchanged, failed;
	int			 written;	/* renamed into queue/ */
};

static TAILQ_HEAD(, requeue)	jobs = TAILQ_HEAD_INITIALIZER(jobs);
static uint32_t			next_base = 1;

static void	requeue_send_more(struct requeue *);

/* the recipient of e as log text, "<rcpt>" */
static const char *
requeue_rcpt_text(const struct envelope *evp, char *out, size_t len)
{
	char	addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char	clean[sizeof(addr) * 4];

	addr_to_string(&evp->rcpt, addr, sizeof(addr));
	snprintf(out, len, "<%s>", log_sanitize(addr, clean, sizeof(clean)));
	return out;
}

static void
requeue_unchanged(struct requeue *q, const struct envelope *evp,
    const char *why)
{
	char	rcpt[(ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2) * 4 + 3];
	char	clean[512 * 4];

	q->unchanged++;
	if (evp == NULL)
		return;
	log_info("requeue: %016" PRIx64 ": %s: not re-routed: %s", evp->id,
	    requeue_rcpt_text(evp, rcpt, sizeof(rcpt)),
	    log_sanitize(why, clean, sizeof(clean)));
}

/*
 * The RCPT request of the session the envelope came from, as far as the
 * envelope kept it.  The listener is one no listener has: "tag" rules
 * see none, as for local submission and bounces.
 */
static void
requeue_context(const struct envelope *evp, uint32_t reqid,
    struct lka_rcpt_req *req)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&req->client;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&req->client;

	memset(req, 0, sizeof(*req));
	req->reqid = reqid;
	req->listener = UINT32_MAX;
	if ((evp->flags & EF_LOCAL) || strcmp(evp->client, "local") == 0)
		req->flags |= SF_LOCAL;
	if (evp->flags & EF_AUTHENTICATED)
		req->flags |= SF_AUTH;
	if (evp->flags & EF_TLS)
		req->flags |= SF_TLS;
	if (evp->flags & EF_SMTPUTF8)
		req->flags |= SF_SMTPUTF8;
	/* the worker wrote inet_ntop()'s text; anything else stays AF_UNSPEC */
	if (inet_pton(AF_INET, evp->client, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, evp->client, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		memset(&req->client, 0, sizeof(req->client));
	snprintf(req->helo, sizeof(req->helo), "%s", evp->helo);
	snprintf(req->authname, sizeof(req->authname), "%s", evp->authname);
	req->mailfrom = evp->sender;
	req->rcpt = evp->rcpt;
}

static int
requeue_busy(const struct qenv *e)
{
	return e->inflight || e->removed || e->bouncing;
}

/*
 * The last answer is in: queue/ synced once for every rename, then the
 * rewritten envelopes are due now (a held one stays held), and smtpctl
 * hears the counts.
 */
static void
requeue_finish(struct requeue *q)
{
	struct qenv	*e;
	size_t		 i;
	int		 synced = 1;

	if (q->written > 0 && fsync(dfd_queue) == -1) {
		log_warn("fsync queue/ after smtpctl requeue");
		synced = 0;
	}
	for (i = 0; i < q->nitems; i++) {
		if (!q->items[i].rewritten ||
		    (e = qenv_find(q->items[i].evpid)) == NULL ||
		    requeue_busy(e))
			continue;
		e->evp.nexttry = 0;
		sched_ready(e);
	}
	queue_schedule();
	if (!synced)
		queue_ctl_reply(q->ctl, q->ctl_reqid, 1, 1, "%d requeued, %d "
		    "unchanged, but queue/ was not synced (see the log)",
		    q->requeued, q->unchanged);
	else if (q->failed)
		queue_ctl_reply(q->ctl, q->ctl_reqid, 1, 1, "%d requeued, %d "
		    "unchanged, %d not written to the spool (see the log)",
		    q->requeued, q->unchanged, q->failed);
	else
		queue_ctl_reply(q->ctl, q->ctl_reqid, 1, 0, "%d requeued, "
		    "%d unchanged", q->requeued, q->unchanged);
	TAILQ_REMOVE(&jobs, q, entry);
	free(q->items);
	free(q);
}

static int
requeue_same_addr(const struct mailaddr *a, const struct mailaddr *b)
{
	return strcmp(a->user, b->user) == 0 &&
	    strcmp(a->domain, b->domain) == 0;
}

/* lookup's destination is the one the envelope has: nothing to write */
static int
requeue_same_route(const struct envelope *evp, const struct lka_dest *d)
{
	if (d->dest_type != evp->dest_type ||
	    !requeue_same_addr(&d->dest, &evp->dest) ||
	    strcmp(d->action, evp->action) != 0 ||
	    strcmp(d->user, evp->user) != 0 ||
	    strcmp(d->path, evp->path) != 0)
		return 0;
	return (d->sender_override.user[0] == '\0' &&
	    d->sender_override.domain[0] == '\0') ||
	    requeue_same_addr(&d->sender_override, &evp->sender);
}

/*
 * lookup's one destination becomes the envelope's, on the spool first;
 * the same as before, it is only due now (no write: "requeue all" after
 * a change for one domain costs the others no sync)
 */
static void
requeue_rewrite(struct requeue *q, struct requeue_item *it, struct qenv *e)
{
	const struct lka_dest	*d = &it->dest;
	struct envelope		 old = e->evp;
	char			 rcpt[(ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2) *
				    4 + 3];
	char			 to[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 clean[sizeof(to) * 4];
	char			 action[ENV_NAME_MAX * 4];
	const uint8_t		*key;

	if ((key = destmac_key()) == NULL)
		fatalx("queue holds no destination key");
	if (destmac_verify(key, d, d->mac) == -1)
		fatalx("requeue: a destination lookup did not seal");
	if (requeue_same_route(&e->evp, d)) {
		it->rewritten = 1;
		q->requeued++;
		log_info("requeue: %016" PRIx64 ": %s: routed as before",
		    e->evp.id, requeue_rcpt_text(&e->evp, rcpt,
		    sizeof(rcpt)));
		return;
	}
	e->evp.dest_type = d->dest_type;
	e->evp.dest = d->dest;
	memcpy(e->evp.action, d->action, sizeof(e->evp.action));
	memcpy(e->evp.user, d->user, sizeof(e->evp.user));
	memcpy(e->evp.path, d->path, sizeof(e->evp.path));
	memcpy(e->evp.dest_mac, d->mac, sizeof(e->evp.dest_mac));
	/* list mail: owner-LIST is the sender; else the sender stays */
	if (d->sender_override.user[0] || d->sender_override.domain[0])
		e->evp.sender = d->sender_override;
	e->evp.nexttry = 0;
	if (envelope_valid(&e->evp) == -1 || qenv_update(e) == -1) {
		log_warnx("requeue: %016" PRIx64 ": %s: not re-routed: "
		    "envelope not written", e->evp.id,
		    requeue_rcpt_text(&old, rcpt, sizeof(rcpt)));
		e->evp = old;
		q->failed++;
		q->unchanged++;
		return;
	}
	it->rewritten = 1;
	q->requeued++;
	q->written++;
	addr_to_string(&e->evp.dest, to, sizeof(to));
	log_info("requeue: %016" PRIx64 ": %s: routed to <%s>, action %s",
	    e->evp.id, requeue_rcpt_text(&e->evp, rcpt, sizeof(rcpt)),
	    log_sanitize(to, clean, sizeof(clean)),
	    log_sanitize(e->evp.action, action, sizeof(action)));
}

/* lookup answered for one envelope: rewritten, or left as it was */
static void
requeue_settle(struct requeue *q, struct requeue_item *it,
    const struct lka_result *r)
{
	struct qenv	*e;
	char		 why[600];

	it->answered = 1;
	q->nanswered++;
	if ((e = qenv_find(it->evpid)) == NULL) {
		q->unchanged++;		/* delivered or removed meanwhile */
		return;
	}
	if (requeue_busy(e)) {
		requeue_unchanged(q, &e->evp, "in flight");
		return;
	}
	if (r == NULL) {
		requeue_unchanged(q, &e->evp, "the lookup process went away");
		return;
	}
	if (r->status != PROTO_OK || it->ndests == 0) {
		snprintf(why, sizeof(why), "%s", r->status == PROTO_OK ?
		    "no destination" : r->reply);
		requeue_unchanged(q, &e->evp, why);
		return;
	}
	if (it->ndests > 1) {
		snprintf(why, sizeof(why), "%u destinations now, not one",
		    it->ndests);
		requeue_unchanged(q, &e->evp, why);
		return;
	}
	requeue_rewrite(q, it, e);
}

static struct requeue *
requeue_job_of(uint32_t reqid, struct requeue_item **it)
{
	struct requeue	*q;
	uint32_t	 n = reqid & ~(REPORT_MAIL_REQID | REQUEUE_REQID);

	TAILQ_FOREACH(q, &jobs, entry)
		if (n >= q->base && n - q->base < q->nsent) {
			*it = &q->items[n - q->base];
			if ((*it)->answered)
				break;
			return q;
		}
	fatalx("lookup answered an unknown requeue request");
}

void
requeue_lookup_dest(struct mproc *p, const struct lka_dest *d)
{
	struct requeue_item	*it;

	(void)requeue_job_of(d->reqid, &it);
	if (it->lookup != p)
		fatalx("requeue: an answer from another lookup");
	if (it->ndests++ == 0)
		it->dest = *d;
}

void
requeue_lookup_result(struct mproc *p, const struct lka_result *r)
{
	struct requeue		*q;
	struct requeue_item	*it;

	q = requeue_job_of(r->reqid, &it);
	if (it->lookup != p)
		fatalx("requeue: an answer from another lookup");
	requeue_settle(q, it, r);
	requeue_send_more(q);
}

/* a lookup channel closed: what it was asked is answered by nobody */
void
requeue_lookup_closed(struct mproc *p)
{
	struct requeue	*q, *tmp;
	size_t		 i;

	TAILQ_FOREACH_SAFE(q, &jobs, entry, tmp) {
		for (i = 0; i < q->nsent; i++)
			if (!q->items[i].answered && q->items[i].lookup == p)
				requeue_settle(q, &q->items[i], NULL);
		requeue_send_more(q);
	}
}

/*
 * Up to REQUEUE_WINDOW lookups in flight, to the lookup process of the
 * configuration now in force (a reload may bring a new one midway);
 * without one, the rest is unchanged.  The job ends with its last answer.
 */
static void
requeue_send_more(struct requeue *q)
{
	struct lka_rcpt_req	 req;
	struct requeue_item	*it;
	struct qenv		*e;

	while (q->nsent < q->nitems &&
	    q->nsent - q->nanswered < REQUEUE_WINDOW) {
		it = &q->items[q->nsent++];
		if ((e = qenv_find(it->evpid)) == NULL || requeue_busy(e) ||
		    q_lookup == NULL) {
			requeue_settle(q, it, NULL);
			continue;
		}
		it->lookup = q_lookup;
		requeue_context(&e->evp, REQUEUE_REQID |
		    (q->base + (uint32_t)(it - q->items)), &req);
		mproc_compose(q_lookup, IMSG_LKA_RCPT, req.reqid, -1, &req,
		    sizeof(req));
	}
	if (q->nanswered == q->nitems)
		requeue_finish(q);
}

/*
 * smtpctl requeue: the selection as schedule's (ctl_selects()); one
 * being removed or bounced is going anyway and not selected, one in
 * flight is counted unchanged.
 */
void
ctl_requeue(struct mproc *p, const struct ctl_request *req)
{
	struct requeue	*q;
	struct qenv	*e;
	size_t		 n = 0, cap = 0;
	uint32_t	 mask = ~(REPORT_MAIL_REQID | REQUEUE_REQID);

	if ((q = calloc(1, sizeof(*q))) == NULL)
		fatal("calloc");
	q->ctl = p;
	q->ctl_reqid = req->reqid;
	RB_FOREACH(e, qenv_tree, &envs) {
		if (e->removed || e->bouncing || !ctl_selects(req, e))
			continue;
		if (e->inflight) {
			requeue_unchanged(q, &e->evp, "in flight");
			continue;
		}
		if (n == cap) {
			struct requeue_item *ni;

			cap = cap ? cap * 2 : 16;
			if ((ni = reallocarray(q->items, cap,
			    sizeof(*ni))) == NULL)
				fatal("reallocarray");
			q->items = ni;
		}
		memset(&q->items[n], 0, sizeof(q->items[n]));
		q->items[n++].evpid = e->evp.id;
	}
	q->nitems = n;
	if (n == 0) {
		/* "all" on an empty queue is not an error; a missing id is */
		if (q->unchanged == 0 && req->id != 0)
			queue_ctl_reply(p, req->reqid, 1, 1,
			    "no such envelope");
		else
			queue_ctl_reply(p, req->reqid, 1, 0, "0 requeued, "
			    "%d unchanged", q->unchanged);
		free(q->items);
		free(q);
		return;
	}
	/* request ids of their own: a range that does not wrap */
	if ((uint64_t)next_base + n > mask)
		next_base = 1;
	q->base = next_base;
	next_base += (uint32_t)n;
	TAILQ_INSERT_TAIL(&jobs, q, entry);
	requeue_send_more(q);
}
