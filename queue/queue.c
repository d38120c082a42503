/*
 * queue.c -- the queue process: owner of the spool.
 *
 * Layout, relative to the spool (the queue's chroot), flat:
 *
 *	incoming/MSGID		being received; never acknowledged (a
 *				worker's spare files are here too, empty)
 *	queue/MSGID		a committed message: the message, then the
 *				envelope if it has one recipient, then a
 *				footer (envelope.h)
 *	queue/EVPID		an envelope of a message with several
 *				recipients, or one that changed since
 *				the commit (a retry, a pause)
 *	queue/.format		"2": every message in queue/ has a footer
 *	queue/.key		the key of the footers' macs
 *	corrupt/		envelopes that failed validation
 *
 * One recipient is the common case, and its envelope travels in the
 * message file: one inode per message to create, sync and unlink, not
 * two.  At commit the queue writes the envelope and footer after the
 * message (or, for several recipients, the envelope files straight into
 * queue/), then renames the message in from incoming/: that rename is
 * the commit point.
 * Only after a sync that followed it is the client told 250.  A crash
 * before the rename leaves an incoming/ file and perhaps envelopes whose
 * message is not in queue/; start-up removes both (the client never got
 * 250, so it still has the message).  Commits that arrive together are
 * synced together (group commit): the cost of a sync is shared by every
 * session waiting on it, and no session is answered before its data is
 * durable.
 *
 * The smtp workers are the least trusted of our peers: they face the
 * network.  An envelope from a worker is accepted only if it is well
 * formed (envelope_valid()) and its destination -- dest_type, dest,
 * action, user, path, and a sender lookup chose -- carries lookup's seal
 * (destmac.h), checked in queue_envelope(); otherwise a worker could have
 * us run any command as any user.  Envelopes we make ourselves (bounces)
 * take their destinations straight from lookup and need no seal.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <bsd/stdlib.h>
#include "tree.h"
#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "destmac.h"
#include "log.h"
#include "mproc.h"
#include "privsep.h"
#include "proto.h"
#include "queue.h"
#include "proc.h"
#include "strset.h"
#include "util.h"

#define ENVELOPE_FILE_MAX	SPOOL_ENVELOPE_MAX

struct qmsg;

/*
 * A delivery process the parent started for the queue (mda.c,
 * mda_hand_over): the queue sends a user's Maildir deliveries to it and
 * reads the results, without the parent in between.
 */
struct mdachan {
	struct mproc		 mp;
	TAILQ_ENTRY(mdachan)	 entry;
	char			 user[ENV_NAME_MAX];
	int			 inflight;
	int			 retired;	/* a reload: no more work */
};
static TAILQ_HEAD(, mdachan)	mdachans = TAILQ_HEAD_INITIALIZER(mdachans);

/*
 * A user's Maildir envelope went to the parent to get a delivery process
 * (the asker): the user's other Maildir envelopes wait here, off the
 * ready list, until the channel arrives or the asker's result does (the
 * parent delivered it itself).  Else a burst would make the parent start
 * a process per envelope until the first channel is back.
 */
struct chanwait {
	TAILQ_ENTRY(chanwait)	 entry;
	char			 user[ENV_NAME_MAX];
	uint64_t		 asker;
	TAILQ_HEAD(, qenv)	 parked;
};
static TAILQ_HEAD(, chanwait)	chanwaits = TAILQ_HEAD_INITIALIZER(chanwaits);

static void	mdachan_close(struct mdachan *);
static void	mdachan_retire_all(void);

struct qenv {
	TAILQ_ENTRY(qenv)	 sched;		/* ready or waiting list */
	RB_ENTRY(qenv)		 node;
	struct qmsg		*msg;
	struct envelope		 evp;
	int			 inflight;
	struct mproc		*via;		/* where it is in flight */
	struct mdachan		*chan;		/* via a delivery process */
	int64_t			 dispatched;	/* when, in ms */
	/* committed, in ms; 0 when loaded from the spool (evp.ctime, s) */
	int64_t			 arrived;
	int			 bouncing;	/* kept until its DSN is queued */
	int			 removed;	/* smtpctl remove, in flight */
	int			 onfile;	/* queue/EVPID exists */
	int			 onlist;	/* 0, LIST_READY, LIST_WAIT,
						 * LIST_PARKED */
	struct chanwait		*park;		/* LIST_PARKED: on whose list */
};

struct qmsg {
	RB_ENTRY(qmsg)		 node;
	uint32_t		 msgid;
	int			 committed;
	int			 worker;	/* channel that created it */
	int			 nenv;		/* envelopes still queued */
	struct envelope		*pending;	/* incoming envelopes */
	size_t			 npending, cappending;
	struct strset		*pending_ids;	/* their random parts */
	TAILQ_ENTRY(qmsg)	 batch;		/* commit batch */
	uint32_t		 commit_reqid;
	int			 onspool;	/* queue_load(): file seen */
	/*
	 * incoming: the queue's own descriptor, for the tail it writes at
	 * commit.  At most one per session in DATA plus the workers'
	 * spares: the parent's raised RLIMIT_NOFILE has room for them.
	 */
	int			 fd;
	uint64_t		 body_size;	/* the message, without footer */
	int			 inline_env;	/* its envelope is in the file */
	int			 corrupt;	/* queue_load(): moved away */
};

#define LIST_READY	1
#define LIST_WAIT	2
#define LIST_PARKED	3

/* channels across reloads, old and current (smtpd.h) */
#define QUEUE_MAX_SMTP	(2 * SMTPD_MAX_LIVE_WORKERS)	/* workers */
#define QUEUE_MAX_PEERS	(2 * SMTPD_MAX_GENERATIONS)	/* mta, lookup */

static struct mproc	 q_parent, q_control;
static struct mproc	 q_smtp[QUEUE_MAX_SMTP];
static int		 q_smtp_open[QUEUE_MAX_SMTP];
static char		 q_smtp_name[QUEUE_MAX_SMTP][24];
static int		 q_smtp_serial;
/*
 * A reload starts a new mta and lookup; the old ones may still answer
 * on their channels until they exit, so those stay open until then.
 */
static struct mproc	 q_mtas[QUEUE_MAX_PEERS], q_lookups[QUEUE_MAX_PEERS];
static int		 q_mtas_open[QUEUE_MAX_PEERS];
static int		 q_lookups_open[QUEUE_MAX_PEERS];
static struct mproc	*q_mta, *q_lookup;	/* the current ones */
static int		 dfd_incoming, dfd_queue, dfd_corrupt;
static struct event	*ev_commit, *ev_sched;
static int		 inflight;
static int		 paused_mda, paused_mta;

struct queue_stats	 queue_stats;

static void	queue_schedule(void);
static void	sched_wait(struct qenv *);
static void	queue_smtp_dispatch(struct mproc *, struct imsg *);
static void	queue_mta_dispatch(struct mproc *, struct imsg *);
static void	queue_lookup_dispatch(struct mproc *, struct imsg *);
static void	ctl_removed_landed(struct qenv *,
		    const struct delivery_result *);

/*
 * Message and envelope names only have to be unlikely to collide (each
 * is checked, O_EXCL and in the trees) and need no secrecy: a generator
 * seeded once from arc4random() saves the getpid() libbsd's arc4random()
 * makes on every call to notice a fork.
 */
static uint64_t	rng_state;

static uint32_t
queue_random(void)
{
	uint64_t	z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* ---- delivery ---- */

/*
 * One line per delivery attempt, in the shape log analysers know from
 * Postfix: delay is the message's age; delays=a/b/c/d are before the
 * queue (not measured: 0), in the queue and waiting in the agent,
 * connection set-up, and the transfer itself.
 */
static void
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
	    "delays=0/%.2f/%.2f/%.2f, tries=%u, dsn=%s, status=%s (%s)",
	    (uint32_t)(e->evp.id >> 32), to, r->relay, (now - since) / 1000.0,
	    b / 1000.0, c / 1000.0, d / 1000.0, e->evp.tries, dsn, status,
	    log_sanitize(text, clean, sizeof(clean)));
}

static void
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
		if (now - e->evp.ctime < conf->queue_ttl) {
			snprintf(e->evp.errorline, sizeof(e->evp.errorline),
			    "%s", r->text);
			e->evp.nexttry = now + retry_delay(&e->evp);
			log_delivery(e, "deferred", r);
			queue_stats.deferred++;
			if (conf->bounce_warn > 0 &&
			    !(e->evp.flags & EF_WARNED) &&
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
static struct mdachan *
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
static int
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
static void
chanwait_answered(uint64_t evpid)
{
	struct chanwait	*cw;

	TAILQ_FOREACH(cw, &chanwaits, entry)
		if (cw->asker == evpid) {
			chanwait_release(cw);
			return;
		}
}

static void
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

static void
queue_lookup_dispatch(struct mproc *p, struct imsg *im)
{
	struct lka_dest		d;
	struct lka_result	r;

	switch (im->hdr.type) {
	case IMSG_LKA_RCPT_DEST:
		PROTO_READ(p, im, &d, proto_valid_lka_dest);
		bounce_lookup_dest(&d);
		break;
	case IMSG_LKA_RCPT_RESULT:
		PROTO_READ(p, im, &r, proto_valid_lka_result);
		bounce_lookup_result(&r);
		queue_schedule();
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

/* a worker of an old generation is gone: drop what it left unfinished */
static void
queue_smtp_closed(struct mproc *p)
{
	int		 worker = (int)(p - q_smtp);
	struct qmsg	*m, *tmp;

	RB_FOREACH_SAFE(m, qmsg_tree, &msgs, tmp) {
		if (m->worker != worker || m->committed)
			continue;
		message_unlink(dfd_incoming, m->msgid);
		qmsg_free(m);
	}
	log_debug("channel to %s closed", p->name);
	q_smtp_open[worker] = 0;
	mproc_clear(p);
}

static void
queue_add_worker(int fd)
{
	int	i;

	for (i = 0; i < QUEUE_MAX_SMTP; i++)
		if (!q_smtp_open[i])
			break;
	if (i == QUEUE_MAX_SMTP)
		fatalx("too many smtp worker channels");
	snprintf(q_smtp_name[i], sizeof(q_smtp_name[i]), "smtp worker %d",
	    ++q_smtp_serial);
	mproc_init(&q_smtp[i], fd, q_smtp_name[i], queue_smtp_dispatch,
	    NULL);
	q_smtp[i].closed = queue_smtp_closed;
	q_smtp_open[i] = 1;
}

/* an mta went away: what it had in flight is tried again soon */
static void
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

static void
queue_lookup_closed(struct mproc *p)
{
	if (q_lookup == p)
		q_lookup = NULL;
	q_lookups_open[p - q_lookups] = 0;
	mproc_clear(p);
}

static struct mproc *
queue_new_peer(struct mproc *arr, int *open, int fd, const char *name,
    mproc_handler h, mproc_closed closed)
{
	int	i;

	for (i = 0; i < QUEUE_MAX_PEERS; i++)
		if (!open[i])
			break;
	if (i == QUEUE_MAX_PEERS)
		fatalx("too many %s channels", name);
	mproc_init(&arr[i], fd, name, h, NULL);
	arr[i].closed = closed;
	open[i] = 1;
	return &arr[i];
}

static void
queue_set_conf(const struct queue_conf *qc)
{
	if (proto_valid_string(qc->hostname, sizeof(qc->hostname)) == -1 ||
	    qc->queue_ttl < 0 || qc->bounce_warn < 0 || qc->retry_local <= 0 ||
	    qc->retry_remote <= 0 || qc->max_inflight <= 0)
		fatalx("invalid queue settings from the parent");
	conf->queue_ttl = qc->queue_ttl;
	conf->bounce_warn = qc->bounce_warn;
	conf->retry_local = qc->retry_local;
	conf->retry_remote = qc->retry_remote;
	conf->queue_max_inflight = qc->max_inflight;
	snprintf(conf->hostname, sizeof(conf->hostname), "%s", qc->hostname);
	mdachan_retire_all();
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
static void
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
static void
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
	if ((fd = queue_open_message(e->msg->msgid, &e->evp.body_size)) ==
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

static void
queue_parent_dispatch(struct mproc *p, struct imsg *im)
{
	struct delivery_result	r;
	struct queue_conf	qc;

	switch (im->hdr.type) {
	case IMSG_MDA_RESULT:
		PROTO_READ(p, im, &r, proto_valid_delivery_result);
		/* parked envelopes back first: the result schedules them */
		chanwait_answered(r.evpid);
		queue_delivery_result(&r);
		break;
	case IMSG_MDA_CHANNEL:
		mdachan_add(im);
		break;
	case IMSG_QUEUE_ADD_WORKER:
		if (im->fd == -1 || im->len != 0)
			fatalx("bad worker channel from the parent");
		queue_add_worker(im->fd);
		break;
	case IMSG_QUEUE_SET_MTA:
		if (im->fd == -1 || im->len != 0)
			fatalx("bad mta channel from the parent");
		q_mta = queue_new_peer(q_mtas, q_mtas_open, im->fd, "mta",
		    queue_mta_dispatch, queue_mta_closed);
		queue_schedule();
		break;
	case IMSG_QUEUE_SET_LOOKUP:
		if (im->fd == -1 || im->len != 0)
			fatalx("bad lookup channel from the parent");
		q_lookup = queue_new_peer(q_lookups, q_lookups_open, im->fd,
		    "lookup", queue_lookup_dispatch, queue_lookup_closed);
		break;
	case IMSG_QUEUE_CONF:
		proto_get(p, im, &qc, sizeof(qc));
		queue_set_conf(&qc);
		break;
	default:
		fatalx("unexpected message %u from parent", im->hdr.type);
	}
}

static void
queue_shutdown(void)
{
	/* commits are synchronous: none is half done when we get here */
	exit(0);
}

/*
 * The queue starts with channels to the parent and to control only; the
 * parent then hands it the channels of each generation of smtp workers,
 * mta and lookup (at start and at every reload).
 */
void
queue_main(struct proc_fds *f)
{
	proc_setup("queue");
	privsep_drop(SMTPD_QUEUE_USER, conf->spool);
	if ((dfd_incoming = open("/incoming", O_RDONLY | O_DIRECTORY)) == -1 ||
	    (dfd_queue = open("/queue", O_RDONLY | O_DIRECTORY)) == -1 ||
	    (dfd_corrupt = open("/corrupt", O_RDONLY | O_DIRECTORY)) == -1)
		fatal("spool layout");
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	mproc_defer_turns();
	arc4random_buf(&rng_state, sizeof(rng_state));
#if QUEUE_SYNCFS
	syncer_init();		/* before the sandbox: it creates a thread */
#endif
	sandbox_enter(SANDBOX_QUEUE);

	queue_load();
	mproc_init(&q_parent, f->parent, "parent", queue_parent_dispatch,
	    NULL);
	mproc_init(&q_control, f->control, "control", queue_control_dispatch,
	    NULL);
	ev_commit = event_new(ev_base, -1, 0, commit_batch, NULL);
	ev_sched = evtimer_new(ev_base, on_sched_timer, NULL);
	proc_on_term(queue_shutdown);
	queue_schedule();
	event_base_dispatch(ev_base);
	exit(0);
}
