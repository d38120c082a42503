/*
 * mproc.c -- event-driven imsg channels.
 *
 * Peers on these channels are sibling processes of the same daemon.  A
 * malformed message from one of them means a bug or a compromise; either
 * way the safe answer is to stop (fail closed).  A channel marked
 * untrusted (a client, a process running as a user) is closed instead,
 * and also when it leaves our answers unread for too long (mproc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mproc.h"

struct event_base	*ev_base;

static void	mproc_update(struct mproc *);
static void	mproc_dispatch_one(evutil_socket_t, short, void *);

/* channels with composed messages waiting for mproc_defer_end() */
static TAILQ_HEAD(, mproc)	dirty = TAILQ_HEAD_INITIALIZER(dirty);
static int			defer_depth;
/* mproc_defer_turns(): composing anywhere waits for the end of the turn */
static struct event		*ev_turn_end;

static void
mproc_write(struct mproc *p)
{
	if (imsg_flush_nb(&p->ib) == -1 && p->closed == NULL)
		fatal("write to %s", p->name);
	/* else the read side will see the EOF and call closed() */
	mproc_update(p);
}

/*
 * At exit, what can be written is, and nothing else matters.  The log
 * lines of the turn go first: a peer acting on a message (a client told
 * 452, a test reading the log) must find the line that explains it.
 */
static void
mproc_flush_dirty(int exiting)
{
	struct mproc	*p;

	log_flush();

	while ((p = TAILQ_FIRST(&dirty)) != NULL) {
		TAILQ_REMOVE(&dirty, p, dirty_entry);
		p->dirty = 0;
		if (p->ev == NULL)
			continue;
		if (exiting)
			(void)imsg_flush_nb(&p->ib);
		else
			mproc_write(p);
	}
}

void
mproc_defer_begin(void)
{
	defer_depth++;
}

void
mproc_defer_end(void)
{
	if (--defer_depth == 0)
		mproc_flush_dirty(0);
}

static void
mproc_turn_end(evutil_socket_t fd, short ev, void *arg)
{
	mproc_flush_dirty(0);	/* the log's lines first */
}

static void
mproc_wake_turn_end(void)
{
	event_active(ev_turn_end, EV_TIMEOUT, 1);
}

void
mproc_defer_turns(void)
{
	if (ev_turn_end == NULL && (ev_turn_end = event_new(ev_base, -1, 0,
	    mproc_turn_end, NULL)) == NULL)
		fatal("event_new");
	log_batch(mproc_wake_turn_end);
}

/* a child starts with nothing of its parent's waiting to be written */
static void
mproc_atfork_child(void)
{
	TAILQ_INIT(&dirty);
	defer_depth = 0;
	ev_turn_end = NULL;	/* the parent's; the child decides anew */
	log_batch(NULL);	/* the parent writes its own lines */
}

/* what a handler composed just before calling exit() still goes out */
static void
mproc_atexit(void)
{
	mproc_flush_dirty(1);
}

static void
mproc_dispatch(evutil_socket_t fd, short ev, void *arg)
{
	/* the handler may free the channel: nothing of it after this */
	mproc_defer_begin();
	mproc_dispatch_one(fd, ev, arg);
	mproc_defer_end();
}

/* an untrusted peer with too much of our output unread */
static int
mproc_backlogged(const struct mproc *p)
{
	return p->untrusted && p->closed != NULL &&
	    p->ib.wqlen > MPROC_UNTRUSTED_WQ_MAX;
}

/* the owner holds it, or a throttled client has too much unread */
static int
mproc_paused(const struct mproc *p)
{
	return p->held || (p->throttle_reads && mproc_backlogged(p));
}

/*
 * The messages already read: -1 the channel is gone or no longer ours
 * (nothing of it may be touched), 1 reading is paused, 0 all handled.
 */
static int
mproc_handle_buffered(struct mproc *p)
{
	struct imsg	m;
	int		r;

	for (;;) {
		if (mproc_paused(p))
			return 1;
		if ((r = imsg_get(&p->ib, &m)) == 0)
			return 0;
		if (r == -1 && p->untrusted && p->closed) {
			p->closed(p);
			return -1;
		}
		if (r == -1)
			fatal("malformed message stream from %s", p->name);
		p->handler(p, &m);
		if (p->ev == NULL || p->stopped)
			return -1;	/* the handler closed the channel */
	}
}

static void
mproc_dispatch_one(evutil_socket_t fd, short ev, void *arg)
{
	struct mproc	*p = arg;
	ssize_t		 n;
	int		 rc, iter;

	if (ev & EV_WRITE) {
		if (imsg_flush_nb(&p->ib) == -1) {
			if (p->closed) {
				p->closed(p);
				return;
			}
			fatal("write to %s", p->name);
		}
	}
	/* what was read before a pause comes first */
	if (ev & EV_READ) {
		if ((rc = mproc_handle_buffered(p)) == -1)
			return;
		if (rc == 1)
			goto out;
	}
	/*
	 * A message that carries a descriptor comes out of the kernel one
	 * recvmsg() at a time: read a few times per wakeup, so a burst of
	 * them costs one turn of the event loop, not one each.
	 */
	for (iter = 0; (ev & EV_READ) && iter < 8; iter++) {
		n = imsg_read(&p->ib);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			goto out;
		if (n <= 0) {
			if (p->closed) {
				p->closed(p);
				return;
			}
			/*
			 * A peer that went away either died (the parent logs
			 * why and takes the daemon down) or is shutting down
			 * with us: either way, leave quietly.
			 */
			if (n == 0) {
				log_debug("channel to %s closed, exiting",
				    p->name);
				exit(0);
			}
			fatal("read from %s", p->name);
		}
		if ((rc = mproc_handle_buffered(p)) == -1)
			return;
		if (rc == 1)
			break;
		if (p->ib.rdrained)
			break;	/* epoll says when there is more */
	}
out:
	mproc_update(p);
}

/* the backlog of an untrusted peer did not shrink in time */
static void
mproc_drain_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct mproc	*p = arg;

	log_warnx("%s: %zu bytes of replies not read in %d seconds; "
	    "dropped", p->name, p->ib.wqlen, p->drain_timeout);
	p->closed(p);
}

/*
 * The drain timer runs while an untrusted peer is backlogged, and starts
 * again whenever some of it was written: a slow reader is served, one
 * that does not read at all is dropped.
 */
static void
mproc_update_drain(struct mproc *p, int backlogged)
{
	struct timeval	tv = { p->drain_timeout, 0 };

	if (!backlogged || p->drain_timeout <= 0) {
		if (p->ev_drain != NULL)
			evtimer_del(p->ev_drain);
		p->drain_mark = 0;
		return;
	}
	if (p->ev_drain == NULL && (p->ev_drain = evtimer_new(ev_base,
	    mproc_drain_timeout, p)) == NULL)
		fatal("evtimer_new");
	if (evtimer_pending(p->ev_drain, NULL) &&
	    p->ib.wtotal == p->drain_mark)
		return;
	p->drain_mark = p->ib.wtotal;
	evtimer_add(p->ev_drain, &tv);
}

static void
mproc_update(struct mproc *p)
{
	short	want = EV_PERSIST;
	int	paused, resume;

	if (p->ev == NULL || p->stopped)
		return;

	mproc_update_drain(p, mproc_backlogged(p));
	paused = mproc_paused(p);
	/* unpaused with messages already read: handle them on this turn */
	resume = p->paused && !paused && p->ib.rlen > p->ib.rpos;
	p->paused = paused;
	if (!paused)
		want |= EV_READ;
	/* a dirty channel is written at mproc_defer_end(), no need to wait */
	if (!TAILQ_EMPTY(&p->ib.wq) && !p->dirty)
		want |= EV_WRITE;
	if (want != p->events) {
		p->events = want;
		event_del(p->ev);
		event_assign(p->ev, ev_base, p->ib.fd, want, mproc_dispatch,
		    p);
		if ((want & (EV_READ | EV_WRITE)) &&
		    event_add(p->ev, NULL) == -1)
			fatal("event_add");
	}
	if (resume)
		event_active(p->ev, EV_READ, 1);
}

void
mproc_hold_reading(struct mproc *p, int hold)
{
	p->held = hold;
	mproc_update(p);
}

void
mproc_init(struct mproc *p, int fd, const char *name, mproc_handler h,
    void *arg)
{
	static int	registered;
	int		fl;

	if (!registered) {
		registered = 1;
		if (pthread_atfork(NULL, NULL, mproc_atfork_child) != 0 ||
		    atexit(mproc_atexit) != 0)
			fatalx("mproc: cannot register fork and exit handlers");
	}
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		fatal("fcntl");
	imsgbuf_init(&p->ib, fd);
	p->name = name;
	p->handler = h;
	p->arg = arg;
	p->closed = NULL;
	p->untrusted = 0;
	p->stopped = 0;
	p->throttle_reads = 0;
	p->held = 0;
	p->paused = 0;
	p->ev_drain = NULL;
	p->drain_timeout = MPROC_DRAIN_TIMEOUT;
	p->drain_mark = 0;
	p->events = EV_READ | EV_PERSIST;
	p->dirty = 0;
	if ((p->ev = event_new(ev_base, fd, p->events, mproc_dispatch, p)) ==
	    NULL)
		fatal("event_new");
	event_add(p->ev, NULL);
}

void
mproc_compose(struct mproc *p, uint32_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	/*
	 * An answer for a peer that has gone (a worker of a retired
	 * generation, a control client) has nobody to go to.
	 */
	if (p->ev == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	if (imsg_compose(&p->ib, type, peerid, fd, data, len) == -1)
		fatal("imsg_compose to %s", p->name);
	if (defer_depth > 0 || ev_turn_end != NULL) {
		if (!p->dirty) {
			p->dirty = 1;
			TAILQ_INSERT_TAIL(&dirty, p, dirty_entry);
		}
		/*
		 * Outside a dispatch, the events of this turn that are
		 * still to run (other sessions' input, say) may compose
		 * to the same peer: the write waits for them.
		 */
		if (defer_depth == 0 && ev_turn_end != NULL)
			event_active(ev_turn_end, EV_TIMEOUT, 1);
		return;
	}
	/*
	 * Write at once when the socket has room: it saves an event loop
	 * round trip on every request (most replies fit).
	 */
	mproc_write(p);
}

/*
 * Not one byte more may be read: the socket now belongs to someone else
 * (control hands a sendmail client to an smtp worker, and whatever the
 * client sends next is the worker's to read).
 */
void
mproc_stop_reading(struct mproc *p)
{
	p->stopped = 1;
	if (p->ev)
		event_del(p->ev);
	if (p->ev_drain)
		evtimer_del(p->ev_drain);
}

void
mproc_clear(struct mproc *p)
{
	if (p->dirty) {
		TAILQ_REMOVE(&dirty, p, dirty_entry);
		p->dirty = 0;
		if (p->ev)
			(void)imsg_flush_nb(&p->ib);
	}
	if (p->ev) {
		event_del(p->ev);
		event_free(p->ev);
		p->ev = NULL;
	}
	if (p->ev_drain) {
		event_free(p->ev_drain);
		p->ev_drain = NULL;
	}
	close(p->ib.fd);
	imsgbuf_clear(&p->ib);
}

void
mproc_check_len(struct mproc *p, const struct imsg *m, size_t want)
{
	if (m->len != want)
		fatalx("bad length %zu (want %zu) for message %u from %s",
		    m->len, want, m->hdr.type, p->name);
}
