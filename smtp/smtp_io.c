/*
 * smtp_io.c -- the client socket of an SMTP session: reading what the
 * client sends, writing our replies, and the timeouts around both.
 *
 * A plain session does its own I/O on the socket: one persistent read
 * event, evbuffers for input and output, and a write event only while
 * the socket will not take all of a reply.  The cost of a session is
 * counted in system calls, and libevent's bufferevent spends more of
 * them than the protocol needs: it asks the kernel how much is readable
 * (ioctl FIONREAD) before every read, and adding and removing the write
 * interest around each reply is an epoll_ctl() each time.  Here a
 * session costs one epoll_ctl() to start reading and one to stop, one
 * read() per burst of input and one writev() per burst of replies.
 *
 * Replies are written once per turn of the event loop (io_flush), after
 * every event of the turn has been handled: the replies to a pipelined
 * group of commands leave in one write (RFC 2920).
 *
 * A TLS session is left to an OpenSSL bufferevent (smtp_tls.c puts it
 * on the socket); its input and output evbuffers become the session's,
 * so the state machine reads and writes both kinds the same way.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "mproc.h"
#include "smtp_session.h"
#include "proc.h"

/* what a session that timed out gets to deliver its 421 */
#define TIMEOUT_GOODBYE	10

static TAILQ_HEAD(, session)	flushq = TAILQ_HEAD_INITIALIZER(flushq);
static struct event		*ev_flush;
static size_t			 input_max;	/* input buffered at most */

/*
 * One read takes whatever the kernel has, up to the room left under
 * input_max; it lands here first, so that an idle session holds no
 * buffer of its own, and is appended to the session's input.
 */
static char			 readbuf[INPUT_HIWAT];

static void	io_flush(evutil_socket_t, short, void *);

void
smtp_io_init(size_t max)
{
	input_max = max;
	if ((ev_flush = event_new(ev_base, -1, 0, io_flush, NULL)) == NULL)
		fatalx("event_new");
}

static void
io_timeout(const struct session *s, struct timeval *tv)
{
	if (s->flags & SS_TIMEDOUT)
		tv->tv_sec = TIMEOUT_GOODBYE;
	else if (s->state == S_DATA || s->state == S_BDAT)
		tv->tv_sec = conf->timeout_data;
	else
		tv->tv_sec = conf->timeout_cmd;
	tv->tv_usec = 0;
}

/*
 * The timeouts of the current state: how long the client may stay
 * silent while we wait for input, and how long it may leave our replies
 * unread.  Re-adding a pending event only moves its timer.
 */
void
session_set_timeout(struct session *s)
{
	struct timeval	tv;

	io_timeout(s, &tv);
	if (s->flags & SS_TLS) {
		bufferevent_set_timeouts(s->bev, (s->flags & SS_TIMEDOUT) ?
		    NULL : &tv, &tv);
		return;
	}
	if (event_pending(s->ev_read, EV_READ, NULL))
		event_add(s->ev_read, &tv);
	if (s->ev_write != NULL && event_pending(s->ev_write, EV_WRITE, NULL))
		event_add(s->ev_write, &tv);
}

/*
 * Read when there is room and the session will use what comes: not
 * once it is closing, nor after STARTTLS (what follows is the TLS
 * handshake, and no longer ours to read), nor above the high-water mark
 * (a client pipelining while we wait for the queue or lookup).
 */
void
session_io_update(struct session *s)
{
	struct timeval	tv;
	int		want, reading;

	if (s->flags & SS_TLS)
		return;		/* the bufferevent's watermark does it */
	want = !(s->flags & SS_CLOSING) && s->state != S_TLS &&
	    evbuffer_get_length(s->in) < input_max;
	reading = event_pending(s->ev_read, EV_READ, NULL);
	if (want && !reading) {
		io_timeout(s, &tv);
		if (event_add(s->ev_read, &tv) == -1)
			fatalx("event_add");
	} else if (!want && reading)
		event_del(s->ev_read);
}

static void
io_read(evutil_socket_t fd, short ev, void *arg)
{
	struct session	*s = arg;
	size_t		 room;
	ssize_t		 n;

	if (ev & EV_TIMEOUT) {
		session_timeout(s);
		return;
	}
	room = input_max - evbuffer_get_length(s->in);
	if (room > sizeof(readbuf))
		room = sizeof(readbuf);
	if (room == 0) {
		session_io_update(s);
		return;
	}
	/* no FIONREAD first: a short read says as much */
	if ((n = read(s->fd, readbuf, room)) == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_debug("%08x: read from %s: %s", s->id, s->addr,
		    strerror(errno));
		session_close(s);
		return;
	}
	if (n == 0) {
		session_close(s);	/* the client is gone */
		return;
	}
	if (evbuffer_add(s->in, readbuf, (size_t)n) == -1)
		fatalx("evbuffer_add");
	if (session_deadline_check(s) == -1)
		return;
	session_process(s);
}

static void	io_write(struct session *);

static void
io_writable(evutil_socket_t fd, short ev, void *arg)
{
	struct session	*s = arg;

	if (ev & EV_TIMEOUT) {
		session_timeout(s);
		return;
	}
	io_write(s);
}

/* the socket is full: wait until it takes more */
static void
io_wait_writable(struct session *s)
{
	struct timeval	tv;

	if (s->ev_write == NULL && (s->ev_write = event_new(ev_base, s->fd,
	    EV_WRITE | EV_PERSIST, io_writable, s)) == NULL)
		fatalx("event_new");
	if (event_pending(s->ev_write, EV_WRITE, NULL))
		return;
	io_timeout(s, &tv);
	if (event_add(s->ev_write, &tv) == -1)
		fatalx("event_add");
}

/* write what the socket takes of a plain session's replies */
static void
io_write(struct session *s)
{
	int	n;

	while (evbuffer_get_length(s->out) > 0) {
		if ((n = evbuffer_write(s->out, s->fd)) > 0)
			continue;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			io_wait_writable(s);
			if ((s->flags & SS_OUTFULL) &&
			    evbuffer_get_length(s->out) < OUTPUT_MAX / 2) {
				/* the client reads again: so do we */
				s->flags &= ~SS_OUTFULL;
				session_process(s);
			}
			return;
		}
		log_debug("%08x: write to %s: %s", s->id, s->addr,
		    n == -1 ? strerror(errno) : "nothing written");
		session_close(s);
		return;
	}
	if (s->ev_write != NULL)
		event_del(s->ev_write);
	session_drained(s);
}

static void
io_flush(evutil_socket_t fd, short ev, void *arg)
{
	struct session	*s;

	while ((s = TAILQ_FIRST(&flushq)) != NULL) {
		TAILQ_REMOVE(&flushq, s, flushq);
		s->flags &= ~SS_FLUSHQ;
		io_write(s);
	}
}

/* a reply is waiting: write it at the end of this turn of the loop */
void
session_io_flush_later(struct session *s)
{
	if (s->flags & (SS_TLS | SS_FLUSHQ))
		return;		/* the bufferevent writes; or queued */
	if (s->ev_write != NULL && event_pending(s->ev_write, EV_WRITE, NULL))
		return;		/* io_writable() goes on when it can */
	s->flags |= SS_FLUSHQ;
	TAILQ_INSERT_TAIL(&flushq, s, flushq);
	event_active(ev_flush, EV_TIMEOUT, 1);
}

/* the buffers and events of a plain session; reading not started yet */
int
session_io_open(struct session *s)
{
	if ((s->in = evbuffer_new()) == NULL ||
	    (s->out = evbuffer_new()) == NULL ||
	    (s->ev_read = event_new(ev_base, s->fd, EV_READ | EV_PERSIST,
	    io_read, s)) == NULL) {
		log_warnx("%08x: no memory for a session", s->id);
		return -1;
	}
	return 0;
}

static void
io_free_plain(struct session *s)
{
	if (s->flags & SS_FLUSHQ) {
		TAILQ_REMOVE(&flushq, s, flushq);
		s->flags &= ~SS_FLUSHQ;
	}
	if (s->ev_read != NULL)
		event_free(s->ev_read);
	if (s->ev_write != NULL)
		event_free(s->ev_write);
	if (s->in != NULL)
		evbuffer_free(s->in);
	if (s->out != NULL)
		evbuffer_free(s->out);
	s->ev_read = s->ev_write = NULL;
	s->in = s->out = NULL;
}

static void
tls_read(struct bufferevent *bev, void *arg)
{
	if (session_deadline_check(arg) == -1)
		return;
	session_process(arg);
}

/* called once the output has drained (the write low-water mark is 0) */
static void
tls_write(struct bufferevent *bev, void *arg)
{
	session_drained(arg);
}

static void
tls_event(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		smtp_tls_connected(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		session_timeout(s);
		return;
	}
	if (what & BEV_EVENT_ERROR)
		smtp_tls_describe(s, NULL, 0);	/* logs the TLS error */
	/* EOF or error: the client is gone */
	session_close(s);
}

/*
 * The session goes on over TLS: the OpenSSL bufferevent owns the socket
 * from now on.  What the client sent in the clear is gone already
 * (smtp_session.c, cmd_starttls), and so are our buffers with it.
 */
void
session_io_tls(struct session *s, struct bufferevent *bev)
{
	io_free_plain(s);
	s->bev = bev;
	s->in = bufferevent_get_input(bev);
	s->out = bufferevent_get_output(bev);
	bufferevent_setcb(bev, tls_read, tls_write, tls_event, s);
	bufferevent_setwatermark(bev, EV_READ, 0, input_max);
	session_set_timeout(s);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* free the session's I/O and close its socket */
void
session_io_close(struct session *s)
{
	if (s->flags & SS_TLS) {
		bufferevent_free(s->bev);	/* closes the socket */
		s->bev = NULL;
		s->in = s->out = NULL;
		return;
	}
	io_free_plain(s);
	close(s->fd);
}
