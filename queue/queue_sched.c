/*
 * queue_sched.c -- the scheduler: which envelope goes to its agent, and
 * when.
 *
 * An envelope that is not in flight is on one list: ready (to go now),
 * waiting (sorted by its next try) or parked (until a delivery process
 * is there for it, queue_deliver.c).  queue_schedule() moves the due
 * ones to ready and sends as many as the in-flight limit allows; a
 * temporary failure waits retry_delay(); ETRN and smtpctl schedule make
 * envelopes due now.
 *
 * A held envelope (EF_HOLD: a milter's quarantine, smtpctl hold) is on
 * no list at all: sched_ready() and sched_wait() leave it off, so the
 * scheduler never sees it -- a quarantine of thousands costs the hot
 * path nothing but that one flag test -- and it is neither tried nor
 * expired (expiry is decided on a failed try) until smtpctl release.
 */
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "queue.h"
#include "queue_int.h"
#include "util.h"

TAILQ_HEAD(qenv_list, qenv);
static struct qenv_list		 ready = TAILQ_HEAD_INITIALIZER(ready);
static struct qenv_list		 waiting = TAILQ_HEAD_INITIALIZER(waiting);

void
qenv_unlist(struct qenv *e)
{
	if (e->onlist == LIST_READY)
		TAILQ_REMOVE(&ready, e, sched);
	else if (e->onlist == LIST_WAIT)
		TAILQ_REMOVE(&waiting, e, sched);
	else if (e->onlist == LIST_PARKED)
		TAILQ_REMOVE(&e->park->parked, e, sched);
	e->onlist = 0;
	e->park = NULL;
}

/* 1 if it is held, and stays on no list */
int
sched_ready(struct qenv *e)
{
	qenv_unlist(e);
	if (e->evp.flags & EF_HOLD)
		return 1;
	TAILQ_INSERT_TAIL(&ready, e, sched);
	e->onlist = LIST_READY;
	return 0;
}

/* the waiting list stays sorted by next try; 1 if held (sched_ready()) */
int
sched_wait(struct qenv *e)
{
	struct qenv	*w;

	qenv_unlist(e);
	if (e->evp.flags & EF_HOLD)
		return 1;
	TAILQ_FOREACH_REVERSE(w, &waiting, qenv_list, sched)
		if (w->evp.nexttry <= e->evp.nexttry)
			break;
	if (w == NULL)
		TAILQ_INSERT_HEAD(&waiting, e, sched);
	else
		TAILQ_INSERT_AFTER(&waiting, w, e, sched);
	e->onlist = LIST_WAIT;
	return 0;
}

time_t
retry_delay(const struct envelope *evp)
{
	time_t	base = evp->dest_type == DEST_REMOTE ? conf->retry_remote :
	    conf->retry_local;
	time_t	d = base;
	uint32_t i;

	/* doubling per try, capped at four hours */
	for (i = 1; i < evp->tries && d < 4 * 3600; i++)
		d *= 2;
	if (d > 4 * 3600)
		d = 4 * 3600;
	return d;
}

static void
queue_dispatch_one(struct qenv *e)
{
	int	fd;

	/* a user's Maildir mail: straight to the queue's delivery process */
	if (e->evp.dest_type != DEST_REMOTE &&
	    proto_direct_delivery(&e->evp, config_find_action(conf, e->evp.action)) &&
	    (e->chan = mdachan_pick(&e->evp)) == NULL && chanwait_park(e))
		return;

	if ((fd = queue_open_message(e->msg->msgid, &e->evp.body_size,
	    &e->evp.head_size)) ==
	    -1) {
		log_warn("%016" PRIx64 ": open message", e->evp.id);
		e->chan = NULL;
		chanwait_answered(e->evp.id);	/* it asks nobody after all */
		e->evp.nexttry = time(NULL) + conf->retry_local;
		sched_wait(e);
		return;
	}
	qenv_unlist(e);
	e->inflight = 1;
	inflight++;
	e->via = e->evp.dest_type == DEST_REMOTE ? q_mta : &q_parent;
	if (e->chan != NULL) {
		e->chan->inflight++;
		e->via = &e->chan->mp;
	}
	e->dispatched = now_ms();
	mproc_compose(e->via, e->evp.dest_type == DEST_REMOTE ?
	    IMSG_MTA_DELIVER : IMSG_MDA_DELIVER, 0, fd, &e->evp,
	    sizeof(e->evp));
}

/*
 * ETRN (RFC 1985): deferred mail for a domain (and, with "@domain", its
 * subdomains) is tried now.  Returns how many envelopes that is.
 */
uint32_t
queue_schedule_domain(const char *domain, int subdomains)
{
	struct qenv	*e;
	size_t		 dl = strlen(domain), el;
	uint32_t	 n = 0;

	RB_FOREACH(e, qenv_tree, &envs) {
		const char *d = e->evp.dest.domain;

		if (e->inflight || e->bouncing ||
		    e->evp.dest_type != DEST_REMOTE ||
		    (e->evp.flags & EF_HOLD))
			continue;
		el = strlen(d);
		if (strcasecmp(d, domain) != 0 && !(subdomains && el > dl &&
		    d[el - dl - 1] == '.' && strcasecmp(d + el - dl,
		    domain) == 0))
			continue;
		e->evp.nexttry = 0;
		sched_ready(e);
		n++;
	}
	if (n)
		queue_schedule();
	return n;
}

/* bounce.c: one DSN for the recipients of a message that fail together */
int
queue_message_busy(uint32_t msgid)
{
	struct qenv	 key, *e;

	key.evp.id = (uint64_t)msgid << 32;
	for (e = RB_NFIND(qenv_tree, &envs, &key);
	    e != NULL && msgid_of(e->evp.id) == msgid;
	    e = RB_NEXT(qenv_tree, &envs, e))
		if (e->inflight)
			return 1;
	return 0;
}

/* bounce.c: the DSN for a failed envelope is queued (or given up) */
void
queue_bounce_done(uint64_t evpid)
{
	struct qenv	*e;

	if ((e = qenv_find(evpid)) == NULL || !e->bouncing)
		return;
	qenv_remove(e);
}

void
on_sched_timer(evutil_socket_t fd, short ev, void *arg)
{
	queue_schedule();
}

void
queue_schedule(void)
{
	struct qenv	*e, *tmp;
	struct timeval	 tv;
	time_t		 now = time(NULL);

	/* waiting envelopes whose time has come join the ready list */
	while ((e = TAILQ_FIRST(&waiting)) != NULL &&
	    e->evp.nexttry <= now)
		sched_ready(e);
	TAILQ_FOREACH_SAFE(e, &ready, sched, tmp) {
		if (inflight >= conf->queue_max_inflight)
			break;
		if (e->evp.flags & EF_PAUSED)
			continue;
		if (e->evp.dest_type == DEST_REMOTE ? paused_mta : paused_mda)
			continue;
		if (e->evp.dest_type == DEST_REMOTE && q_mta == NULL)
			continue;	/* no mta yet: the parent sends one */
		queue_dispatch_one(e);
	}
	evtimer_del(ev_sched);
	if ((e = TAILQ_FIRST(&waiting)) != NULL) {
		tv.tv_sec = e->evp.nexttry > now ? e->evp.nexttry - now : 0;
		tv.tv_usec = 0;
		evtimer_add(ev_sched, &tv);
	}
}
