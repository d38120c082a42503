/*
 * mta_io.c -- the socket of an outgoing SMTP session: connecting,
 * reading replies, writing commands and the message, and the timeouts
 * around them.
 *
 * A plain session does its own I/O on the socket, as the server side
 * does (smtp_io.c), because libevent's bufferevent spends more system
 * calls than the protocol needs: an ioctl(FIONREAD) before every read,
 * and an epoll_ctl() to add and another to remove the write interest
 * around every burst of commands.  Here a connection costs one
 * epoll_ctl() to connect, one to start reading, one at close; after that
 * there is one read() per burst of replies and one writev() per burst of
 * commands, and a write event only while the socket will not take all of
 * them (a large message to a slow server).
 *
 * Commands are written once per turn of the event loop (io_flush), after
 * every event of the turn has been handled: a pipelined transaction
 * (RFC 2920) leaves in one write even when it was composed in pieces.
 *
 * A TLS session is left to an OpenSSL filter bufferevent stacked on a
 * socket bufferevent, as before; its buffers become the session's, and
 * its callbacks are passed on as they are, so the session reads and
 * writes both kinds the same way.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#define POSTHASTE_MTA_INTERNAL
#include "log.h"
#include "mta.h"
#include "proc.h"

#define IO_CONNECTING	0x01	/* ev_write waits for connect() */
#define IO_FLUSHQ	0x02	/* on the flush queue */

static TAILQ_HEAD(, mta_io)	 flushq = TAILQ_HEAD_INITIALIZER(flushq);
static struct event		*ev_flush;

/*
 * One read takes whatever the kernel has, up to this much: replies are
 * short (MTA_REPLY_MAX), so this holds a whole pipelined burst of them.
 * Reading lands here first, so that an idle session holds no buffer.
 */
static char			 readbuf[16384];

static void	io_flush(evutil_socket_t, short, void *);
static void	io_write(struct mta_io *);

void
mta_io_init(void)
{
	if ((ev_flush = event_new(ev_base, -1, 0, io_flush, NULL)) == NULL)
		fatalx("event_new");
}

static struct timeval *
io_timeout(struct mta_io *io)
{
	return io->timeout.tv_sec ? &io->timeout : NULL;
}

/*
 * How long the peer may stay silent while we wait for a reply, and how
 * long it may leave what we write unread.  Re-adding a pending event
 * only moves its timer: no system call.
 */
void
mta_io_set_timeout(struct mta_io *io, int secs)
{
	io->timeout.tv_sec = secs;
	io->timeout.tv_usec = 0;
	if (io->bev != NULL) {
		bufferevent_set_timeouts(io->bev, io_timeout(io),
		    io_timeout(io));
		return;
	}
	if (io->ev_read != NULL && event_pending(io->ev_read, EV_READ, NULL)) {
		if (secs)
			event_add(io->ev_read, &io->timeout);
		else
			event_remove_timer(io->ev_read);
	}
	if (io->ev_write != NULL &&
	    event_pending(io->ev_write, EV_WRITE, NULL)) {
		if (secs)
			event_add(io->ev_write, &io->timeout);
		else
			event_remove_timer(io->ev_write);
	}
}

static void
io_read(evutil_socket_t fd, short ev, void *arg)
{
	struct mta_io	*io = arg;
	ssize_t		 n;

	if (ev & EV_TIMEOUT) {
		io->on_event(io->arg, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
		return;
	}
	/* no FIONREAD first: a short read says as much */
	if ((n = read(io->fd, readbuf, sizeof(readbuf))) == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		io->on_event(io->arg, BEV_EVENT_READING | BEV_EVENT_ERROR,
		    errno);
		return;
	}
	if (n == 0) {
		io->on_event(io->arg, BEV_EVENT_READING | BEV_EVENT_EOF, 0);
		return;
	}
	if (evbuffer_add(io->in, readbuf, (size_t)n) == -1)
		fatalx("evbuffer_add");
	io->on_read(io->arg);
}

/*
 * The connect() has finished, one way or the other.  The read event is
 * added here, but cannot fire before the session has heard of the
 * connection (in this call): a greeting that is already there is read
 * after it, never before.
 */
static void
io_connected(struct mta_io *io)
{
	socklen_t	len = sizeof(int);
	int		err = io->connect_err;

	io->flags &= ~IO_CONNECTING;
	event_del(io->ev_write);
	if (err == 0 && getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err,
	    &len) == -1)
		err = errno;
	if (err != 0) {
		io->on_event(io->arg, BEV_EVENT_ERROR, err);
		return;
	}
	if (event_add(io->ev_read, io_timeout(io)) == -1)
		fatalx("event_add");
	if (evbuffer_get_length(io->out) > 0)
		mta_io_flush_later(io);
	io->on_event(io->arg, BEV_EVENT_CONNECTED, 0);
}

static void
io_writable(evutil_socket_t fd, short ev, void *arg)
{
	struct mta_io	*io = arg;

	if (ev & EV_TIMEOUT) {
		io->on_event(io->arg, BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT, 0);
		return;
	}
	if (io->flags & IO_CONNECTING) {
		io_connected(io);
		return;
	}
	io_write(io);
}

/*
 * The connect() is ours, not bufferevent_socket_connect()'s: a socket
 * bufferevent, once connected, could only be taken off the socket by
 * freeing it, and that costs the epoll_ctl() calls we are here to save
 * (and a read it may already have done would have to be carried over).
 * Waiting for the socket to become writable, then asking SO_ERROR, is
 * all it did anyway.
 */
int
mta_io_connect(struct mta_io *io, int fd, const struct sockaddr *sa,
    socklen_t salen)
{
	io->fd = fd;
	io->flags = IO_CONNECTING;
	io->connect_err = 0;
	if ((io->in = evbuffer_new()) == NULL ||
	    (io->out = evbuffer_new()) == NULL ||
	    (io->ev_read = event_new(ev_base, fd, EV_READ | EV_PERSIST,
	    io_read, io)) == NULL ||
	    (io->ev_write = event_new(ev_base, fd, EV_WRITE | EV_PERSIST,
	    io_writable, io)) == NULL)
		fatalx("mta_io_connect: out of memory");
	if (connect(fd, sa, salen) == -1) {
		if (errno == ECONNREFUSED) {
			/*
			 * A refusal on loopback is known at once.  It is
			 * reported like one that takes a round trip (as
			 * libevent does), from the event loop: the caller is
			 * still setting the session up.  SO_ERROR has been
			 * read by connect() already, so remember it.
			 */
			io->connect_err = errno;
			event_active(io->ev_write, EV_WRITE, 1);
			return 0;
		}
		if (errno != EINPROGRESS && errno != EINTR)
			return -1;
	}
	/* connected at once or not: the socket says so when writable */
	if (event_add(io->ev_write, io_timeout(io)) == -1)
		fatalx("event_add");
	return 0;
}

/* the socket is full: wait until it takes more */
static void
io_wait_writable(struct mta_io *io)
{
	if (event_pending(io->ev_write, EV_WRITE, NULL))
		return;
	if (event_add(io->ev_write, io_timeout(io)) == -1)
		fatalx("event_add");
}

/*
 * Write what the socket takes.  Once the output is down to the low-water
 * mark the session hears of it, as from a bufferevent: the body pump
 * refills then.  That call comes last, for it may free the session.
 */
static void
io_write(struct mta_io *io)
{
	int	n;

	while (evbuffer_get_length(io->out) > 0) {
		if ((n = evbuffer_write(io->out, io->fd)) > 0)
			continue;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			io_wait_writable(io);
			break;
		}
		io->on_event(io->arg, BEV_EVENT_WRITING | BEV_EVENT_ERROR,
		    n == -1 ? errno : EPIPE);
		return;
	}
	if (evbuffer_get_length(io->out) == 0 &&
	    event_pending(io->ev_write, EV_WRITE, NULL))
		event_del(io->ev_write);
	if (evbuffer_get_length(io->out) <= io->lowat && io->on_write != NULL)
		io->on_write(io->arg);
}

static void
io_flush(evutil_socket_t fd, short ev, void *arg)
{
	struct mta_io	*io;

	while ((io = TAILQ_FIRST(&flushq)) != NULL) {
		TAILQ_REMOVE(&flushq, io, flushq);
		io->flags &= ~IO_FLUSHQ;
		io_write(io);
	}
}

void
mta_io_flush_later(struct mta_io *io)
{
	if (io->bev != NULL || (io->flags & (IO_FLUSHQ | IO_CONNECTING)))
		return;		/* the bufferevent writes; or queued */
	if (event_pending(io->ev_write, EV_WRITE, NULL))
		return;		/* io_writable() goes on when it can */
	io->flags |= IO_FLUSHQ;
	TAILQ_INSERT_TAIL(&flushq, io, flushq);
	event_active(ev_flush, EV_TIMEOUT, 1);
}

static void
io_free_plain(struct mta_io *io)
{
	if (io->flags & IO_FLUSHQ)
		TAILQ_REMOVE(&flushq, io, flushq);
	io->flags = 0;
	if (io->ev_read != NULL)
		event_free(io->ev_read);
	if (io->ev_write != NULL)
		event_free(io->ev_write);
	if (io->in != NULL)
		evbuffer_free(io->in);
	if (io->out != NULL)
		evbuffer_free(io->out);
	io->ev_read = io->ev_write = NULL;
	io->in = io->out = NULL;
}

static void
tls_read(struct bufferevent *bev, void *arg)
{
	struct mta_io	*io = arg;

	io->on_read(io->arg);
}

static void
tls_write(struct bufferevent *bev, void *arg)
{
	struct mta_io	*io = arg;

	if (io->on_write != NULL)
		io->on_write(io->arg);
}

static void
tls_event(struct bufferevent *bev, short what, void *arg)
{
	struct mta_io	*io = arg;

	io->on_event(io->arg, what, EVUTIL_SOCKET_ERROR());
}

/*
 * The session goes on over TLS.  What the server sent in the clear after
 * its STARTTLS reply was refused before we came here, and our buffers go
 * with anything else of the plain session.
 */
void
mta_io_start_tls(struct mta_io *io, SSL *ssl)
{
	struct bufferevent	*sock, *b;

	io_free_plain(io);
	if ((sock = bufferevent_socket_new(ev_base, io->fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("bufferevent_socket_new");
	b = bufferevent_openssl_filter_new(ev_base, sock, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (b == NULL)
		fatalx("bufferevent_openssl_filter_new");
	bufferevent_setwatermark(sock, EV_WRITE, io->lowat, 0);
	bufferevent_openssl_set_allow_dirty_shutdown(b, 1);
	io->bev = b;
	io->in = bufferevent_get_input(b);
	io->out = bufferevent_get_output(b);
	bufferevent_setcb(b, tls_read, tls_write, tls_event, io);
	bufferevent_setwatermark(b, EV_WRITE, io->lowat, 0);
	bufferevent_set_timeouts(b, io_timeout(io), io_timeout(io));
	bufferevent_enable(b, EV_READ | EV_WRITE);
}

/*
 * The first OpenSSL error of the connection, or 0.  libevent keeps them
 * on a stack, with the SSL_get_error() value of the failed call on top,
 * which is no OpenSSL error (no library part; smtp_tls.c says more).
 */
unsigned long
mta_io_tls_error(struct mta_io *io)
{
	unsigned long	e, first = 0;

	if (io->bev == NULL)
		return 0;
	while ((e = bufferevent_get_openssl_error(io->bev)) != 0)
		if (ERR_GET_LIB(e) != 0)
			first = e;
	return first;
}

/* free the connection's I/O and close its socket; closing twice is fine */
void
mta_io_close(struct mta_io *io)
{
	if (io->bev != NULL) {
		bufferevent_free(io->bev);	/* the SSL and the socket too */
		io->bev = NULL;
		io->in = io->out = NULL;
	} else if (io->fd != -1) {
		io_free_plain(io);
		close(io->fd);
	}
	io->fd = -1;
}
