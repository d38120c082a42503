/*
 * queue.c -- the queue process: owner of the spool.
 *
 * Layout, relative to the spool (the queue's chroot), flat:
 *
 *	incoming/MSGID		being received; never acknowledged (a
 *				worker's spare files are here too, empty)
 *	queue/MSGID		a committed message: the message, then the
 *				headers added after its body was seen
 *				(spool_msg.h; delivered at the top), then
 *				the envelope if it has one recipient, then
 *				a footer (envelope.h)
 *	queue/EVPID		an envelope of a message with several
 *				recipients, or one that changed since
 *				the commit (a retry, smtpctl hold or
 *				release: EF_HOLD and its reason;
 *				smtpctl requeue: a new destination; a
 *				pause is kept in memory only,
 *				smtpctl(8))
 *	queue/.format		"2": every message in queue/ has a footer
 *	queue/.key		the key of the footers' macs
 *	corrupt/		envelopes that failed validation
 *	dmarc/records		rows of the DMARC aggregate reports, one
 *				line each (dmarc_send.c: best effort,
 *				appended without fsync)
 *	dmarc/sending		the rows being reported on right now
 *	tlsrpt/records		TLS outcomes for the TLS-RPT reports, one
 *				line each (tlsrpt_send.c: best effort,
 *				like dmarc/)
 *	tlsrpt/sending		the outcomes being reported on right now
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
 * take their destinations straight from lookup and need no seal.  Header
 * fields a worker adds after the message (spool_msg.h) are loaded only
 * as complete, well-formed header lines of bounded size
 * (commit_head_valid()); their length is in the mac'd footer, their
 * bytes are no more trusted than the message's own.
 *
 * The process's files: queue.c starts it and holds its channels;
 * queue_spool.c the spool's files and the start-up load; queue_commit.c
 * a worker's message up to the commit, and the group commit;
 * queue_sched.c the ready and waiting lists; queue_deliver.c the agents'
 * results and channels; queue_control.c smtpctl's requests, and
 * queue_requeue.c its requeue (routed again by lookup); bounce.c the
 * DSNs; dmarc_send.c the DMARC aggregate reports.  queue_int.h is what they share, queue.h the queue's interface.
 */
#include <sys/types.h>

#include "tree.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "mproc.h"
#include "privsep.h"
#include "proto.h"
#include "queue.h"
#include "queue_int.h"
#include "proc.h"
#include "util.h"

struct mproc		 q_parent;
static struct mproc	 q_control;
struct mproc		 q_smtp[QUEUE_MAX_SMTP];
int			 q_smtp_open[QUEUE_MAX_SMTP];
static char		 q_smtp_name[QUEUE_MAX_SMTP][24];
static int		 q_smtp_serial;
/*
 * A reload starts a new mta and lookup; the old ones may still answer
 * on their channels until they exit, so those stay open until then.
 */
struct mproc		 q_mtas[QUEUE_MAX_PEERS], q_lookups[QUEUE_MAX_PEERS];
int			 q_mtas_open[QUEUE_MAX_PEERS];
int			 q_lookups_open[QUEUE_MAX_PEERS];
struct mproc		*q_mta, *q_lookup;	/* the current ones */
int			 dfd_incoming, dfd_queue, dfd_corrupt;
int			 dfd_dmarc = -1;
int			 dfd_tlsrpt = -1;
struct event		*ev_commit, *ev_sched;
int			 inflight;
int			 paused_mda, paused_mta;

struct queue_stats	 queue_stats = {
	.delivery_delay = { queue_delay_bounds, QUEUE_DELAY_NBOUNDS, {0}, 0, 0 },
	.message_size = { queue_size_bounds, QUEUE_SIZE_NBOUNDS, {0}, 0, 0 },
	.commit_latency = { queue_commit_bounds, QUEUE_COMMIT_NBOUNDS, {0}, 0,
	    0 },
};

/*
 * Message and envelope names only have to be unlikely to collide (each
 * is checked, O_EXCL and in the trees) and need no secrecy: a generator
 * seeded once from arc4random() saves the getpid() libbsd's arc4random()
 * makes on every call to notice a fork.
 */
static uint64_t	rng_state;

uint32_t
queue_random(void)
{
	uint64_t	z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
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
	    proto_valid_string(qc->dmarc_report_from,
	    sizeof(qc->dmarc_report_from)) == -1 ||
	    proto_valid_string(qc->dmarc_report_org,
	    sizeof(qc->dmarc_report_org)) == -1 ||
	    proto_valid_string(qc->tlsrpt_report_from,
	    sizeof(qc->tlsrpt_report_from)) == -1 ||
	    proto_valid_string(qc->tlsrpt_report_org,
	    sizeof(qc->tlsrpt_report_org)) == -1 ||
	    qc->queue_ttl < 0 || qc->bounce_warn < 0 || qc->retry_local <= 0 ||
	    qc->retry_remote <= 0 || qc->max_inflight <= 0)
		fatalx("invalid queue settings from the parent");
	conf->queue_ttl = qc->queue_ttl;
	conf->bounce_warn = qc->bounce_warn;
	conf->retry_local = qc->retry_local;
	conf->retry_remote = qc->retry_remote;
	conf->queue_max_inflight = qc->max_inflight;
	snprintf(conf->hostname, sizeof(conf->hostname), "%s", qc->hostname);
	snprintf(conf->dmarc_report_from, sizeof(conf->dmarc_report_from),
	    "%s", qc->dmarc_report_from);
	snprintf(conf->dmarc_report_org, sizeof(conf->dmarc_report_org),
	    "%s", qc->dmarc_report_org);
	snprintf(conf->tlsrpt_report_from, sizeof(conf->tlsrpt_report_from),
	    "%s", qc->tlsrpt_report_from);
	snprintf(conf->tlsrpt_report_org, sizeof(conf->tlsrpt_report_org),
	    "%s", qc->tlsrpt_report_org);
	mdachan_retire_all();
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
	if ((dfd_dmarc = open("/dmarc", O_RDONLY | O_DIRECTORY)) == -1)
		log_warn("spool: dmarc/: no DMARC reports");
	if ((dfd_tlsrpt = open("/tlsrpt", O_RDONLY | O_DIRECTORY)) == -1)
		log_warn("spool: tlsrpt/: no TLS-RPT reports");
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
	dmarc_send_init();
	tlsrpt_send_init();
	event_base_dispatch(ev_base);
	exit(0);
}

#ifdef POSTHASTE_FUZZ
#include <unistd.h>

/*
 * Only in mk/fuzz.mk's build (regress/fuzz/fuzz_queue_control.c):
 * queue_main() without the privilege drop, the chroot (the spool's
 * folders are opened under spool), the syncer thread, the sandbox and
 * the loop, which the harness turns itself while it plays the parent,
 * control and the mta on the given channels.  queue_fuzz_seed() makes
 * the names of new messages and envelopes the same from run to run.
 */
void
queue_fuzz_start(const char *spool, int parent, int control, int mta)
{
	int	dfd;

	if ((dfd = open(spool, O_RDONLY | O_DIRECTORY)) == -1 ||
	    (dfd_incoming = openat(dfd, "incoming", O_RDONLY |
	    O_DIRECTORY)) == -1 ||
	    (dfd_queue = openat(dfd, "queue", O_RDONLY | O_DIRECTORY)) == -1 ||
	    (dfd_corrupt = openat(dfd, "corrupt", O_RDONLY |
	    O_DIRECTORY)) == -1)
		fatal("spool layout");
	close(dfd);
	mproc_defer_turns();
	queue_load();
	mproc_init(&q_parent, parent, "parent", queue_parent_dispatch,
	    NULL);
	mproc_init(&q_control, control, "control", queue_control_dispatch,
	    NULL);
	q_mta = queue_new_peer(q_mtas, q_mtas_open, mta, "mta",
	    queue_mta_dispatch, queue_mta_closed);
	ev_commit = event_new(ev_base, -1, 0, commit_batch, NULL);
	ev_sched = evtimer_new(ev_base, on_sched_timer, NULL);
	queue_schedule();
}

void
queue_fuzz_seed(uint64_t seed)
{
	rng_state = seed;
}
#endif
