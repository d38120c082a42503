/*
 * queue_deliver.c -- the delivery agents as the queue sees them: their
 * results, one log line per attempt, and their channels.
 *
 * Remote mail goes to the mta; local mail to the parent, which forks the
 * delivery as the user; a user's Maildir mail straight to a delivery
 * process the parent started for the queue (mdachan).  That channel's
 * peer runs as the user: it is untrusted, and may only answer for the
 * envelopes it was given.  queue_delivery_result() says what a result
 * means for its envelope: gone, tried again later (queue_sched.c), or
 * bounced once expired or failed (bounce.c).  The lookup channel is
 * bounce.c's, report_mail.c's and queue_requeue.c's (by request id).
 */
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "queue.h"
#include "queue_int.h"
#include "util.h"

static TAILQ_HEAD(, mdachan)	mdachans = TAILQ_HEAD_INITIALIZER(mdachans);
static TAILQ_HEAD(, chanwait)	chanwaits = TAILQ_HEAD_INITIALIZER(chanwaits);

static void	mdachan_close(struct mdachan *);

/*
 * One line per delivery attempt, in the shape log analysers know from
 * Postfix: delay is the message's age; delays=a/b/c/d are before the
 * queue (not measured: 0), in the queue and waiting in the agent,
 * connection set-up, and the transfer itself.  Nothing comes between
 * delays= and dsn=, nor after the status text: pflogsumm's and
 * postfix_exporter's patterns need Postfix's order exactly (the number
 * of tries is in "smtpctl show queue").
 */
void
log_delivery(const struct qenv *e, const char *status,
    const struct delivery_result *r)
{
	char		 to[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char		 clean[ENV_TEXT_MAX * 4], dsn[16];
	const char	*text = r->text;
	int64_t		 now = now_ms(), since, inagent, b, c, d;
	int		 x, y, z, n = 0;

	if (sscanf(text, "%1d.%3d.%3d%n", &x, &y, &z, &n) == 3 &&
	    (text[n] == ' ' || text[n] == '\0')) {
		snprintf(dsn, sizeof(dsn), "%d.%d.%d", x, y, z);
		text += n;
		while (*text == ' ')
			text++;
	} else
		snprintf(dsn, sizeof(dsn), "%s", r->status == PROTO_OK ?
		    "2.0.0" : r->status == PROTO_TEMPFAIL ? "4.0.0" : "5.0.0");
	/* to the millisecond when it arrived since we started */
	since = e->arrived ? e->arrived : (int64_t)e->evp.ctime * 1000;
	inagent = e->dispatched ? now - e->dispatched : 0;
	b = (e->dispatched ? e->dispatched - since : 0) + r->delay_wait;
	c = r->delay_conn;
	d = r->delay_xfer ? r->delay_xfer : inagent - r->delay_wait - c;
	if (b < 0)
		b = 0;
	if (d < 0)
		d = 0;
	addr_to_string(&e->evp.dest, to, sizeof(to));
	/* the message's queue id, as in "queued as" and the from= line */
	log_info("%08" PRIx32 ": to=<%s>, relay=%s, delay=%.2f, "
	    "delays=0/%.2f/%.2f/%.2f, dsn=%s, status=%s (%s)",
	    (uint32_t)(e->evp.id >> 32), to, r->relay, (now - since) / 1000.0,
	    b / 1000.0, c / 1000.0, d / 1000.0, dsn, status,
	    log_sanitize(text, clean, sizeof(clean)));
}

void
queue_delivery_result(const struct delivery_result *r)
{
	struct qenv	*e;
	time_t		 now = time(NULL);

	if ((e = qenv_find(r->evpid)) == NULL || !e->inflight)
		fatalx("delivery result for an envelope not in flight");
	e->inflight = 0;
	e->via = NULL;
	if (e->chan != NULL) {
		if (--e->chan->inflight == 0 && e->chan->retired)
			mdachan_close(e->chan);
		e->chan = NULL;
	}
	inflight--;
	if (e->removed) {
		ctl_removed_landed(e, r);	/* no retry, no DSN */
		bounce_settle(msgid_of(r->evpid));
		queue_schedule();
		return;
	}
	e->evp.tries++;
	e->evp.lasttry = now;
	switch (r->status) {
	case PROTO_OK:
		log_delivery(e, "sent", r);
		queue_stats.delivered++;
		queue_stats.delivered_by[queue_transport(&e->evp)]++;
		metrics_hist_observe(&queue_stats.delivery_delay,
		    e->arrived ? (now_ms() - e->arrived) / 1000.0 :
		    (double)(now - e->evp.ctime));
		/*
		 * RFC 3461 5.2: a next hop that took our NOTIFY reports the
		 * success itself; one without DSN makes it ours to say the
		 * message was "relayed".  The DSN holds the message open:
		 * the envelope goes now.
		 */
		if ((e->evp.flags & EF_NOTIFY_SUCCESS) &&
		    r->dsn != DR_DSN_PASSED &&
		    bounce_wants(&e->evp, DSN_DELIVERED))
			bounce_generate(&e->evp, r->dsn == DR_DSN_RELAYED ?
			    DSN_RELAYED : DSN_DELIVERED, r);
		qenv_remove(e);
		break;
	case PROTO_TEMPFAIL:
		/* held while in flight: kept, however old, until released */
		if (now - e->evp.ctime < conf->queue_ttl ||
		    (e->evp.flags & EF_HOLD)) {
			snprintf(e->evp.errorline, sizeof(e->evp.errorline),
			    "%s", r->text);
			e->evp.nexttry = now + retry_delay(&e->evp);
			log_delivery(e, "deferred", r);
			queue_stats.deferred++;
			queue_stats.deferred_by[queue_transport(&e->evp)]++;
			if (conf->bounce_warn > 0 &&
			    !(e->evp.flags & (EF_WARNED | EF_HOLD)) &&
			    now - e->evp.ctime >= conf->bounce_warn &&
			    bounce_wants(&e->evp, DSN_DELAYED)) {
				e->evp.flags |= EF_WARNED;
				bounce_generate(&e->evp, DSN_DELAYED, r);
			}
			if (qenv_update(e) == -1)
				log_warnx("%016" PRIx64 ": cannot update "
				    "envelope", e->evp.id);
			sched_wait(e);
			break;
		}
		/* expired: a permanent failure */
		/* FALLTHROUGH */
	default:
		snprintf(e->evp.errorline, sizeof(e->evp.errorline), "%s",
		    r->text);
		log_delivery(e, "bounced", r);
		queue_stats.bounced++;
		queue_stats.bounced_by[queue_transport(&e->evp)]++;
		if (!bounce_wants(&e->evp, DSN_FAILED)) {
			qenv_remove(e);
			break;
		}
		/* the envelope stays until its DSN is safely queued */
		qenv_unlist(e);
		e->bouncing = 1;
		bounce_generate(&e->evp, DSN_FAILED, r);
		break;
	}
	/* a DSN waiting for this message's other envelopes may go now */
	bounce_settle(msgid_of(r->evpid));
	queue_schedule();
}

/* out of flight without a result (its agent went away): tried later */
static void
qenv_retry_in(struct qenv *e, time_t delay)
{
	e->inflight = 0;
	e->via = NULL;
	e->chan = NULL;
	inflight--;
	if (e->removed) {
		ctl_removed_landed(e, NULL);
		return;
	}
	e->evp.nexttry = time(NULL) + delay;
	sched_wait(e);
}

/* the least busy delivery process of the queue's for this envelope */
struct mdachan *
mdachan_pick(const struct envelope *evp)
{
	struct mdachan	*ch, *best = NULL;

	TAILQ_FOREACH(ch, &mdachans, entry)
		if (!ch->retired && strcmp(ch->user, evp->user) == 0 &&
		    ch->inflight < PROTO_DIRECT_MAX &&
		    (best == NULL || ch->inflight < best->inflight))
			best = ch;
	return best;
}

static struct chanwait *
chanwait_find(const char *user)
{
	struct chanwait	*cw;

	TAILQ_FOREACH(cw, &chanwaits, entry)
		if (strcmp(cw->user, user) == 0)
			return cw;
	return NULL;
}

/* the parked envelopes go back to the ready list */
static void
chanwait_release(struct chanwait *cw)
{
	struct qenv	*e;

	while ((e = TAILQ_FIRST(&cw->parked)) != NULL)
		sched_ready(e);
	TAILQ_REMOVE(&chanwaits, cw, entry);
	free(cw);
}

/*
 * An envelope the queue could send to a delivery process of its own but
 * has none with room for: 1 if it was parked because the parent is
 * already being asked for one, else the envelope becomes the asker.
 */
int
chanwait_park(struct qenv *e)
{
	struct chanwait	*cw;

	if ((cw = chanwait_find(e->evp.user)) != NULL) {
		qenv_unlist(e);
		TAILQ_INSERT_TAIL(&cw->parked, e, sched);
		e->onlist = LIST_PARKED;
		e->park = cw;
		return 1;
	}
	if ((cw = calloc(1, sizeof(*cw))) == NULL)
		fatal("calloc");
	memcpy(cw->user, e->evp.user, sizeof(cw->user));
	cw->asker = e->evp.id;
	TAILQ_INIT(&cw->parked);
	TAILQ_INSERT_TAIL(&chanwaits, cw, entry);
	return 0;
}

/* a result for an asker: the parent did without a new process */
void
chanwait_answered(uint64_t evpid)
{
	struct chanwait	*cw;

	TAILQ_FOREACH(cw, &chanwaits, entry)
		if (cw->asker == evpid) {
			chanwait_release(cw);
			return;
		}
}

void
queue_mta_dispatch(struct mproc *p, struct imsg *im)
{
	struct delivery_result	r;

	switch (im->hdr.type) {
	case IMSG_MTA_RESULT:
		PROTO_READ(p, im, &r, proto_valid_delivery_result);
		queue_delivery_result(&r);
		break;
	default:
		fatalx("unexpected message %u from mta", im->hdr.type);
	}
}

void
queue_lookup_dispatch(struct mproc *p, struct imsg *im)
{
	struct lka_dest			 d;
	struct lka_result		 r;
	struct queue_dmarc_record	*dr;
	struct queue_tlsrpt_record	*tr;

	switch (im->hdr.type) {
	case IMSG_LKA_RCPT_DEST:
		PROTO_READ(p, im, &d, proto_valid_lka_dest);
		if (d.reqid & REPORT_MAIL_REQID)
			report_mail_lookup_dest(&d);
		else if (d.reqid & REQUEUE_REQID)
			requeue_lookup_dest(p, &d);
		else
			bounce_lookup_dest(&d);
		break;
	case IMSG_LKA_RCPT_RESULT:
		PROTO_READ(p, im, &r, proto_valid_lka_result);
		if (r.reqid & REPORT_MAIL_REQID)
			report_mail_lookup_result(&r);
		else if (r.reqid & REQUEUE_REQID)
			requeue_lookup_result(p, &r);
		else
			bounce_lookup_result(&r);
		queue_schedule();
		break;
	case IMSG_QUEUE_DMARC_RECORD:
		if ((dr = malloc(sizeof(*dr))) == NULL)
			fatal("malloc");
		PROTO_READ(p, im, dr, proto_valid_queue_dmarc_record);
		dmarc_send_record(dr);
		free(dr);
		break;
	case IMSG_QUEUE_TLSRPT_RECORD:
		if ((tr = malloc(sizeof(*tr))) == NULL)
			fatal("malloc");
		PROTO_READ(p, im, tr, proto_valid_queue_tlsrpt_record);
		tlsrpt_send_record(tr);
		free(tr);
		break;
	default:
		fatalx("unexpected message %u from lookup", im->hdr.type);
	}
}

void
queue_lookup_request(const struct lka_rcpt_req *req)
{
	if (q_lookup == NULL)
		fatalx("bounce lookup before the parent sent a lookup channel");
	mproc_compose(q_lookup, IMSG_LKA_RCPT, req->reqid, -1, req,
	    sizeof(*req));
}

/* an mta went away: what it had in flight is tried again soon */
void
queue_mta_closed(struct mproc *p)
{
	struct qenv	*e, *tmp;

	RB_FOREACH_SAFE(e, qenv_tree, &envs, tmp) {
		if (e->inflight && e->via == p)
			qenv_retry_in(e, 5);
	}
	if (q_mta == p) {
		log_warnx("lost the current mta");
		q_mta = NULL;
	}
	q_mtas_open[p - q_mtas] = 0;
	mproc_clear(p);
	queue_schedule();
}

void
queue_lookup_closed(struct mproc *p)
{
	if (q_lookup == p)
		q_lookup = NULL;
	/* smtpctl requeue: what it asked of this one is left unchanged */
	requeue_lookup_closed(p);
	q_lookups_open[p - q_lookups] = 0;
	mproc_clear(p);
}

static void	mdachan_closed(struct mproc *);

static void
mdachan_free(evutil_socket_t fd, short ev, void *arg)
{
	free(arg);
}

/*
 * A channel with nothing in flight goes; its process reads the end and
 * exits.  Called from its own dispatch too: freed once that has returned.
 */
static void
mdachan_close(struct mdachan *ch)
{
	TAILQ_REMOVE(&mdachans, ch, entry);
	mproc_clear(&ch->mp);
	if (event_base_once(ev_base, -1, EV_TIMEOUT, mdachan_free, ch,
	    NULL) == -1)
		fatalx("event_base_once");
}

/*
 * A reload: the delivery processes were started with the old settings
 * (Maildir paths, say).  They get no more work and go once idle; the
 * parent starts new ones.
 */
void
mdachan_retire_all(void)
{
	struct mdachan	*ch, *tmp;

	TAILQ_FOREACH_SAFE(ch, &mdachans, entry, tmp) {
		ch->retired = 1;
		if (ch->inflight == 0)
			mdachan_close(ch);
	}
}

static void
mdachan_dispatch(struct mproc *p, struct imsg *im)
{
	struct mdachan		*ch = p->arg;
	struct delivery_result	 r;
	struct qenv		*e;

	if (im->hdr.type != IMSG_MDA_RESULT || im->len != sizeof(r) ||
	    im->fd != -1) {
		log_warnx("delivery process for %s: unexpected message",
		    ch->user);
		mdachan_closed(p);
		return;
	}
	memcpy(&r, im->data, sizeof(r));
	/*
	 * It runs as the user: it may only answer for what it was given,
	 * never for someone else's mail.
	 */
	if (proto_valid_delivery_result(&r) == -1 ||
	    (e = qenv_find(r.evpid)) == NULL || !e->inflight ||
	    e->chan != ch) {
		log_warnx("delivery process for %s answered for an envelope "
		    "it was not given", ch->user);
		mdachan_closed(p);
		return;
	}
	queue_delivery_result(&r);
}

/* it exited (idle) or died: what it had is tried again */
static void
mdachan_closed(struct mproc *p)
{
	struct mdachan	*ch = p->arg;
	struct qenv	*e, *tmp;

	RB_FOREACH_SAFE(e, qenv_tree, &envs, tmp) {
		if (e->inflight && e->chan == ch)
			qenv_retry_in(e, 5);
	}
	mdachan_close(ch);
	queue_schedule();
}

/* the parent started a delivery process for us, for this envelope */
void
mdachan_add(struct imsg *im)
{
	struct mda_channel	 c;
	struct mdachan		*ch;
	struct chanwait		*cw;
	struct qenv		*e;
	int			 fd;

	if (im->fd == -1 || im->len != sizeof(c))
		fatalx("bad delivery channel from the parent");
	memcpy(&c, im->data, sizeof(c));
	if (memchr(c.user, '\0', sizeof(c.user)) == NULL)
		fatalx("bad delivery channel from the parent");
	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		fatal("calloc");
	memcpy(ch->user, c.user, sizeof(ch->user));
	mproc_init(&ch->mp, im->fd, "delivery process", mdachan_dispatch, ch);
	ch->mp.closed = mdachan_closed;
	ch->mp.untrusted = 1;
	TAILQ_INSERT_TAIL(&mdachans, ch, entry);
	if ((cw = chanwait_find(ch->user)) != NULL) {
		chanwait_release(cw);
		queue_schedule();
	}
	/* the envelope that asked is sent again, this time directly */
	if ((e = qenv_find(c.evpid)) == NULL || !e->inflight ||
	    e->via != &q_parent)
		return;
	if (e->removed) {		/* smtpctl remove: no new attempt */
		qenv_retry_in(e, 0);
		return;
	}
	if ((fd = queue_open_message(e->msg->msgid, &e->evp.body_size,
	    &e->evp.head_size)) ==
	    -1) {
		log_warn("%016" PRIx64 ": open message", e->evp.id);
		qenv_retry_in(e, conf->retry_local);
		return;
	}
	e->chan = ch;
	e->via = &ch->mp;
	ch->inflight++;
	mproc_compose(&ch->mp, IMSG_MDA_DELIVER, 0, fd, &e->evp,
	    sizeof(e->evp));
}
