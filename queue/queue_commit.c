/*
 * queue_commit.c -- a message from an smtp worker, from its file in
 * incoming/ to the commit; and the messages the queue writes itself.
 *
 * The worker asks for a file (queue_create()), sends the envelopes, each
 * checked for lookup's seal (queue_envelope()), then asks for the
 * commit.  Commits that arrive together are made durable by one sync
 * (group commit), run by a syncer thread where the system has syncfs().
 * No worker is answered before the sync that covers its message has
 * returned: the comments below give the order, and the opening comment
 * of queue.c what a crash at each step leaves.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "destmac.h"
#include "log.h"
#include "queue.h"
#include "queue_int.h"
#include "spool_msg.h"
#include "strset.h"
#include "util.h"

static TAILQ_HEAD(, qmsg)	 batch = TAILQ_HEAD_INITIALIZER(batch);

static void
queue_create(int worker, const struct queue_msg_req *req)
{
	struct queue_msg_resp	 r;
	struct qmsg		*m;
	int			 fd = -1;

	memset(&r, 0, sizeof(r));
	r.reqid = req->reqid;
	if (spool_nearly_full()) {
		log_warnx("spool nearly full: refusing new mail");
		r.status = PROTO_TEMPFAIL;
		snprintf(r.reply, sizeof(r.reply), "452 4.3.1 Insufficient "
		    "system storage");
	} else if ((m = message_create(worker, &fd)) == NULL) {
		r.status = PROTO_TEMPFAIL;
		snprintf(r.reply, sizeof(r.reply), "451 4.3.0 Temporary "
		    "queue failure");
	} else {
		r.msgid = m->msgid;
		r.status = PROTO_OK;
	}
	mproc_compose(&q_smtp[worker], IMSG_QUEUE_CREATED, req->reqid, fd,
	    &r, sizeof(r));
}

static struct qmsg *
incoming_msg(int worker, uint32_t msgid)
{
	struct qmsg	*m;

	if ((m = qmsg_find(msgid)) == NULL || m->committed ||
	    m->worker != worker)
		return NULL;
	return m;
}

static void
queue_envelope(int worker, const struct envelope *evp)
{
	struct qmsg	*m;
	const uint8_t	*key;

	if (envelope_valid(evp) == -1)
		fatalx("invalid envelope from smtp worker %d", worker + 1);
	/*
	 * The worker faces the network; the destination (what to run, as
	 * whom, into which file) is lookup's to decide.  A tag that does not
	 * verify means a worker that forges destinations, taken over or
	 * broken: fatal, like every other protocol violation here, rather
	 * than a refusal that would let it keep trying.  The key does not
	 * change while we run, so no honest worker can trip this.
	 */
	if ((key = destmac_key()) == NULL)
		fatalx("queue holds no destination key");
	if (destmac_verify_envelope(key, evp) == -1)
		fatalx("envelope with a destination lookup did not seal from "
		    "smtp worker %d", worker + 1);
	if ((m = incoming_msg(worker, msgid_of(evp->id))) == NULL)
		fatalx("envelope for unknown message from smtp worker %d",
		    worker + 1);
	if (m->npending >= 100000)
		fatalx("too many envelopes from smtp worker %d", worker + 1);
	message_add_envelope(m, evp);
}

void
message_add_envelope(struct qmsg *m, const struct envelope *evp)
{
	struct envelope	*n;
	uint32_t	 part;
	int		 added = 0;

	if (m->pending_ids == NULL &&
	    (m->pending_ids = strset_new(0)) == NULL)
		fatal("strset_new");
	if (m->npending == m->cappending) {
		size_t ncap = m->cappending ? m->cappending * 2 : 2;

		if ((n = reallocarray(m->pending, ncap, sizeof(*n))) == NULL)
			fatal("reallocarray");
		m->pending = n;
		m->cappending = ncap;
	}
	n = &m->pending[m->npending];
	*n = *evp;
	/*
	 * A random envelope part, unique within the message: a set, not a
	 * scan of the others, or 100 000 recipients cost 5e9 comparisons
	 * while every other client's commit waited.
	 */
	do {
		part = queue_random();
		if (part == 0)
			continue;
		if ((added = strset_add(m->pending_ids, &part,
		    sizeof(part))) == -1)
			fatal("strset_add");
	} while (part == 0 || added == 0);
	n->id = (uint64_t)m->msgid << 32 | part;
	m->npending++;
}

static void
commit_reply_text(struct qmsg *m, int ok, const char *reply)
{
	struct queue_msg_resp	r;

	memset(&r, 0, sizeof(r));
	r.reqid = m->commit_reqid;
	r.msgid = m->msgid;
	r.status = ok ? PROTO_OK : PROTO_TEMPFAIL;
	if (ok && m->commit_start > 0)	/* asked to durable, this batch */
		metrics_hist_observe(&queue_stats.commit_latency,
		    (now_ms() - m->commit_start) / 1000.0);
	if (!ok)
		snprintf(r.reply, sizeof(r.reply), "%s", reply);
	/* a worker that went away meanwhile no longer needs an answer */
	if (m->worker < 0 || !q_smtp_open[m->worker])
		return;
	mproc_compose(&q_smtp[m->worker], IMSG_QUEUE_COMMITTED,
	    m->commit_reqid, -1, &r, sizeof(r));
}

static void
commit_reply(struct qmsg *m, int ok)
{
	commit_reply_text(m, ok, "451 4.3.0 Temporary queue failure, try "
	    "again later");
}

/*
 * The envelope files go straight into queue/, then the message is
 * renamed in after them.  Until the sync that follows, none of it is
 * acknowledged: at start-up an envelope whose message is not in queue/
 * was never committed and is removed (see queue_load()).
 */
static int
commit_prepare(struct qmsg *m)
{
	char			name[9], evname[17];
	char			tail[ENVELOPE_FILE_MAX + SPOOL_FOOTER_MAX + 1];
	struct spool_footer	f;
	int			rc = 0, envlen = 0;
	size_t			i;

	if (m->npending == 1 &&
	    (envlen = envelope_dump(&m->pending[0], tail, ENVELOPE_FILE_MAX)) ==
	    -1) {
		log_warnx("envelope %016" PRIx64 " does not serialise",
		    m->pending[0].id);
		return -1;
	}
	for (i = 0; m->npending > 1 && i < m->npending && rc == 0; i++) {
		evpid_to_text(m->pending[i].id, evname);
		rc = write_envelope_at(dfd_queue, evname, &m->pending[i],
		    !QUEUE_SYNCFS);
	}
	if (rc == 0) {
		ssize_t	len;

		/* after the message and the headers added after it */
		memset(&f, 0, sizeof(f));
		f.body = m->body_size;
		f.head = (size_t)m->head_size;
		f.envlen = (size_t)envlen;
		spool_footer_mac(spool_key, f.body, f.head, tail, f.envlen,
		    f.mac);
		len = envlen + (ssize_t)spool_footer_format(tail + envlen, &f);
		if (pwrite(m->fd, tail, len, (off_t)(m->body_size +
		    m->head_size)) != len ||
		    (!QUEUE_SYNCFS && fsync(m->fd) == -1)) {
			log_warn("%08x: write footer", m->msgid);
			rc = -1;
		}
		m->inline_env = m->npending == 1;
	}
	close(m->fd);
	m->fd = -1;
	msgid_to_text(m->msgid, name);
	if (rc == 0 && renameat(dfd_incoming, name, dfd_queue, name) == -1) {
		log_warn("rename incoming/%s", name);
		rc = -1;
	}
	return rc;
}

/*
 * The headers a worker added after the message (spool_msg.h): it wrote
 * them at req->spooled and claims req->head bytes.  The worker faces the
 * network and is trusted no more than for the rest of the file, so the
 * queue reads them back and loads only what every reader can present as
 * the top of the message: complete, well-formed header lines, within
 * SPOOL_HEAD_MAX.  A bad claim is the worker's bug, not the client's
 * doing (it never sees the block): the message is refused with a 451 and
 * the rest goes on.  One pread, only for a message with added headers.
 */
static int
commit_head_valid(struct qmsg *m, const struct queue_msg_req *req)
{
	static char	buf[SPOOL_HEAD_MAX];
	ssize_t		n;

	if (req->head == 0)
		return 0;
	if (req->head > SPOOL_HEAD_MAX) {
		log_warnx("%08x: smtp worker %d claims %u bytes of added "
		    "headers: more than %d", m->msgid, m->worker + 1,
		    req->head, SPOOL_HEAD_MAX);
		return -1;
	}
	if ((n = pread(m->fd, buf, req->head, (off_t)req->spooled)) == -1) {
		log_warn("%08x: read added headers", m->msgid);
		return -1;
	}
	if ((size_t)n != req->head || spool_head_valid(buf, n, NULL) == -1) {
		log_warnx("%08x: smtp worker %d claims %u bytes of added "
		    "headers that are not well-formed header lines",
		    m->msgid, m->worker + 1, req->head);
		return -1;
	}
	return 0;
}

int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Postfix's qmgr line for a message that entered the queue: pflogsumm
 * takes the "bytes received" and the senders from it (the smtpd line of
 * the worker, though it says the same, is not read for them).  Once per
 * message, after the sync that made it durable.  The sender is the
 * first envelope's: the client's MAIL FROM, or owner-LIST when lookup
 * expanded a mailing list (each envelope keeps only its own).
 */
static void
commit_log(const struct qmsg *m)
{
	char	sender[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char	clean[sizeof(sender) * 4];

	if (addr_to_string(&m->pending[0].sender, sender, sizeof(sender)) ==
	    -1)
		sender[0] = '\0';
	log_info("%08x: from=<%s>, size=%" PRIu64 ", nrcpt=%zu (queue "
	    "active)", m->msgid, log_sanitize(sender, clean, sizeof(clean)),
	    m->body_size + m->head_size, m->npending);
}

static void
commit_schedule(struct qmsg *m)
{
	struct qenv	*e;
	int64_t		 now = now_ms();
	size_t		 i;

	commit_log(m);
	for (i = 0; i < m->npending; i++) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			fatal("calloc");
		e->evp = m->pending[i];
		e->msg = m;
		e->arrived = now;
		e->onfile = !m->inline_env;
		RB_INSERT(qenv_tree, &envs, e);
		if (sched_ready(e)) {	/* a milter's quarantine */
			char	why[sizeof(e->evp.hold_reason) * 4];

			log_info("%016" PRIx64 ": held: %s", e->evp.id,
			    log_sanitize(e->evp.hold_reason, why,
			    sizeof(why)));
		}
		m->nenv++;
	}
	qmsg_pending_clear(m);
	m->committed = 1;
	queue_stats.queued++;
	queue_stats.envelopes += m->nenv;
	metrics_hist_observe(&queue_stats.message_size,
	    (double)m->body_size);
}

/*
 * Run once per event loop iteration in which commits arrived: every
 * message of the batch is prepared, then one sync makes the whole batch
 * durable, then every client is answered.
 */
static void
commit_finish(struct qmsg *m, int syncok)
{
	if (!syncok) {
		commit_reply(m, 0);
		message_discard(m);
		return;
	}
	commit_reply(m, 1);
	commit_schedule(m);
}

#if QUEUE_SYNCFS
/*
 * Group commit, pipelined.  A syncer thread runs syncfs() while the
 * queue goes on serving: commits that arrive during a sync are prepared
 * (envelopes written, directory renamed) and wait for the next one, so
 * each sync covers everything that came in while the previous one ran.
 * No client is answered, and no message scheduled, before the sync that
 * covers it has returned.
 */
TAILQ_HEAD(qmsg_list, qmsg);
static struct qmsg_list	 sync_waiting = TAILQ_HEAD_INITIALIZER(sync_waiting);
static struct qmsg_list	 sync_running_list =
			    TAILQ_HEAD_INITIALIZER(sync_running_list);
static int		 sync_running;
static int		 sync_req[2], sync_done[2];
static struct event	*ev_sync_done;

static void *
syncer_main(void *arg)
{
	char	c;

	for (;;) {
		if (read(sync_req[0], &c, 1) != 1)
			return NULL;
		c = platform_syncfs(dfd_queue) == 0 ? 1 : 0;
		if (write(sync_done[1], &c, 1) != 1)
			return NULL;
	}
}

static void
sync_start(void)
{
	struct qmsg	*m;

	if (sync_running || TAILQ_EMPTY(&sync_waiting))
		return;
	while ((m = TAILQ_FIRST(&sync_waiting)) != NULL) {
		TAILQ_REMOVE(&sync_waiting, m, batch);
		TAILQ_INSERT_TAIL(&sync_running_list, m, batch);
	}
	sync_running = 1;
	queue_stats.commit_batches++;
	if (write(sync_req[1], "s", 1) != 1)
		fatal("syncer request");
}

static void
on_sync_done(evutil_socket_t fd, short ev, void *arg)
{
	struct qmsg	*m;
	char		 c;

	if (read(sync_done[0], &c, 1) != 1)
		fatal("syncer result");
	if (!c)
		log_warnx("syncfs of the spool failed: those commits are "
		    "refused");
	sync_running = 0;
	mproc_defer_begin();	/* one write per worker for the batch */
	while ((m = TAILQ_FIRST(&sync_running_list)) != NULL) {
		TAILQ_REMOVE(&sync_running_list, m, batch);
		commit_finish(m, c);
	}
	sync_start();
	queue_schedule();
	mproc_defer_end();
}

void
syncer_init(void)
{
	pthread_t	tid;

	if (platform_pipe2(sync_req, O_CLOEXEC) == -1 ||
	    platform_pipe2(sync_done, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe2");
	if ((errno = pthread_create(&tid, NULL, syncer_main, NULL)) != 0)
		fatal("pthread_create");
	ev_sync_done = event_new(ev_base, sync_done[0], EV_READ | EV_PERSIST,
	    on_sync_done, NULL);
	event_add(ev_sync_done, NULL);
}
#endif

/*
 * Run once per event loop iteration in which commits arrived: every
 * message of the batch is prepared; then a sync makes it durable (at once
 * where there is no syncfs, else by the syncer), then its clients are
 * answered.
 */
void
commit_batch(evutil_socket_t fd, short ev, void *arg)
{
	struct qmsg	*m, *tmp;
	TAILQ_HEAD(, qmsg) done = TAILQ_HEAD_INITIALIZER(done);
	int		 syncok;

	TAILQ_FOREACH_SAFE(m, &batch, batch, tmp) {
		TAILQ_REMOVE(&batch, m, batch);
		if (commit_prepare(m) == -1) {
			commit_reply(m, 0);
			message_discard(m);
			continue;
		}
		TAILQ_INSERT_TAIL(&done, m, batch);
	}
	if (TAILQ_EMPTY(&done))
		return;
#if QUEUE_SYNCFS
	(void)syncok;
	while ((m = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, m, batch);
		TAILQ_INSERT_TAIL(&sync_waiting, m, batch);
	}
	sync_start();
#else
	/* the envelopes were fsynced as written; the renames need this */
	syncok = fsync(dfd_queue) == 0;
	if (!syncok)
		log_warn("fsync queue/");
	queue_stats.commit_batches++;
	while ((m = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, m, batch);
		commit_finish(m, syncok);
	}
	queue_schedule();
#endif
}

static void
queue_commit(int worker, const struct queue_msg_req *req)
{
	struct qmsg	*m;

	if ((m = incoming_msg(worker, req->msgid)) == NULL)
		fatalx("commit of unknown message from smtp worker %d",
		    worker + 1);
	if (req->nenvelopes != m->npending || m->npending == 0)
		fatalx("commit with %u envelopes, %zu received, from smtp "
		    "worker %d", req->nenvelopes, m->npending, worker + 1);
	m->commit_reqid = req->reqid;
	m->commit_start = now_ms();
	m->body_size = req->spooled;
	if (commit_head_valid(m, req) == -1) {
		commit_reply(m, 0);
		message_discard(m);
		return;
	}
	m->head_size = req->head;
	/*
	 * Free space was looked at when the file was made, which may have
	 * been a while ago (a worker keeps spare files): again now.
	 */
	if (spool_nearly_full()) {
		log_warnx("spool nearly full: refusing new mail");
		commit_reply_text(m, 0, "452 4.3.1 Insufficient system "
		    "storage");
		message_discard(m);
		return;
	}
	m->committed = 1;	/* no more envelopes or rollback */
	TAILQ_INSERT_TAIL(&batch, m, batch);
	event_active(ev_commit, EV_TIMEOUT, 0);
}

static void
queue_rollback(int worker, const struct queue_msg_req *req)
{
	struct qmsg	*m;

	if ((m = incoming_msg(worker, req->msgid)) == NULL)
		return;		/* already gone: harmless */
	message_unlink(dfd_incoming, m->msgid);
	qmsg_free(m);
}

void
queue_smtp_dispatch(struct mproc *p, struct imsg *im)
{
	int			 worker = (int)(p - q_smtp);

	struct queue_msg_req	 req;
	struct envelope		 evp;

	switch (im->hdr.type) {
	case IMSG_QUEUE_CREATE:
		proto_get(p, im, &req, sizeof(req));
		queue_create(worker, &req);
		break;
	case IMSG_QUEUE_ENVELOPE:
		proto_get(p, im, &evp, sizeof(evp));
		queue_envelope(worker, &evp);
		break;
	case IMSG_QUEUE_COMMIT:
		proto_get(p, im, &req, sizeof(req));
		queue_commit(worker, &req);
		break;
	case IMSG_QUEUE_ROLLBACK:
		proto_get(p, im, &req, sizeof(req));
		queue_rollback(worker, &req);
		break;
	case IMSG_QUEUE_ETRN: {
		struct queue_etrn q;

		proto_get(p, im, &q, sizeof(q));
		if (proto_valid_string(q.domain, sizeof(q.domain)) == -1)
			fatalx("malformed ETRN from %s", p->name);
		q.count = queue_schedule_domain(q.domain, q.subdomains);
		mproc_compose(p, IMSG_QUEUE_ETRN, q.reqid, -1, &q, sizeof(q));
		break;
	}
	default:
		fatalx("unexpected message %u from %s", im->hdr.type, p->name);
	}
}

/* ---- messages the queue writes itself (bounce.c) ---- */

int
queue_message_create(uint32_t *msgidp, int *fdp)
{
	struct qmsg	*m;

	if ((m = message_create(-1, fdp)) == NULL)
		return -1;
	*msgidp = m->msgid;
	return 0;
}

void
queue_message_abort(uint32_t msgid)
{
	struct qmsg	*m;

	if ((m = incoming_msg(-1, msgid)) == NULL)
		return;
	message_unlink(dfd_incoming, msgid);
	qmsg_free(m);
}

/*
 * The same commit as for a message from a client, done at once: the
 * caller has written and synced the message file.
 */
void
queue_message_envelope(struct envelope *n, uint32_t msgid,
    const struct lka_dest *d)
{
	n->id = (uint64_t)msgid << 32;
	n->ctime = time(NULL);
	n->dest_type = d->dest_type;
	n->dest = d->dest;
	memcpy(n->action, d->action, sizeof(n->action));
	memcpy(n->user, d->user, sizeof(n->user));
	memcpy(n->path, d->path, sizeof(n->path));
	snprintf(n->helo, sizeof(n->helo), "%s", conf->hostname);
	snprintf(n->client, sizeof(n->client), "local");
}

int
queue_message_commit(uint32_t msgid, const struct envelope *evps, size_t n)
{
	struct qmsg	*m;
	struct stat	 st;
	size_t		 i;
	int		 syncok;

	if ((m = incoming_msg(-1, msgid)) == NULL || n == 0)
		return -1;
	if (fstat(m->fd, &st) == -1) {
		log_warn("fstat of bounce %08x", msgid);
		return -1;
	}
	m->body_size = (uint64_t)st.st_size;
	for (i = 0; i < n; i++)
		message_add_envelope(m, &evps[i]);
	if (commit_prepare(m) == -1) {
		message_discard(m);
		return -1;
	}
#if QUEUE_SYNCFS
	syncok = platform_syncfs(dfd_queue) == 0;
#else
	syncok = fsync(dfd_queue) == 0;
#endif
	if (!syncok) {
		log_warn("sync of bounce %08x", msgid);
		message_discard(m);
		return -1;
	}
	commit_schedule(m);
	return 0;
}
