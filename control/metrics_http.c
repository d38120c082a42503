/*
 * metrics_http.c -- the metrics endpoint: GET /metrics over HTTP/1.x on
 * the address "metrics listen on" names, answered with the queue's text
 * (queue/queue_metrics.c), the same as "smtpctl show metrics".
 *
 * Why here: control is unprivileged, chrooted to an empty directory and
 * under seccomp, and it already talks to the queue; the parent binds
 * the socket (the port may be privileged) and hands it over at start.
 * The endpoint has no authentication: it serves counters, never
 * addresses or message content, and is bound to loopback unless the
 * administrator names another address.
 *
 * Bounds, since anyone who reaches the address may connect: at most
 * MH_MAX_CONN connections (more are closed at once), a request head of
 * HTTP_REQUEST_MAX bytes and the queue's answer within MH_TIMEOUT
 * seconds of the accept, one request per connection (Connection:
 * close), and an answer the peer must go on reading (MH_TIMEOUT seconds
 * without progress end it).  Only plain read(2) and write(2)
 * on the socket: nothing the control sandbox does not already allow.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "platform.h"
#include "metrics_http.h"
#include "http_request.h"
#include "metrics.h"
#include "smtpcount.h"

#define MH_MAX_CONN	16
#define MH_TIMEOUT	10	/* seconds: request, queue, answer */

struct mh_conn {
	TAILQ_ENTRY(mh_conn) entry;
	uint32_t	 id;
	int		 fd;
	struct event	*ev_read, *ev_write, *ev_wait;
	char		 in[HTTP_REQUEST_MAX];
	size_t		 inlen;
	int		 head;		/* HEAD: no body */
	int		 asked;		/* the queue was asked */
	char		*body;		/* the queue's lines so far */
	size_t		 bodylen, bodycap;
	char		*out;		/* the whole answer */
	size_t		 outlen, outoff;
};

static TAILQ_HEAD(, mh_conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static int		 nconns;
static uint32_t		 next_id;
static struct event_base *mh_base;
static struct event	*ev_listen;
static void		(*mh_ask)(uint32_t);

static void
conn_free(struct mh_conn *c)
{
	TAILQ_REMOVE(&conns, c, entry);
	event_free(c->ev_read);
	event_free(c->ev_write);
	event_free(c->ev_wait);
	close(c->fd);
	free(c->body);
	free(c->out);
	free(c);
	nconns--;
}

/* the answer, written as the peer reads it; then the connection ends */
static void
conn_answer(struct mh_conn *c, const char *status, const char *type,
    const char *body, size_t bodylen)
{
	struct timeval	 tv = { MH_TIMEOUT, 0 };
	char		 hdr[256];
	int		 n;

	event_del(c->ev_read);
	event_del(c->ev_wait);
	n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, type,
	    bodylen);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		fatalx("metrics: answer header");
	if (c->head)
		bodylen = 0;
	if ((c->out = malloc((size_t)n + bodylen)) == NULL) {
		log_warn("metrics: malloc");
		conn_free(c);
		return;
	}
	memcpy(c->out, hdr, (size_t)n);
	if (bodylen)
		memcpy(c->out + n, body, bodylen);
	c->outlen = (size_t)n + bodylen;
	c->outoff = 0;
	event_add(c->ev_write, &tv);
}

static void
conn_error(struct mh_conn *c, const char *status)
{
	char	body[128];
	int	n;

	n = snprintf(body, sizeof(body), "%s\n", status);
	conn_answer(c, status, "text/plain; charset=utf-8", body, (size_t)n);
}

static void
conn_write(evutil_socket_t fd, short ev, void *arg)
{
	struct mh_conn	*c = arg;
	ssize_t		 n;

	if (ev & EV_TIMEOUT) {
		conn_free(c);
		return;
	}
	n = write(fd, c->out + c->outoff, c->outlen - c->outoff);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_free(c);		/* the scraper went away */
		return;
	}
	c->outoff += (size_t)n;
	if (c->outoff == c->outlen)
		conn_free(c);
}

static void
conn_read(evutil_socket_t fd, short ev, void *arg)
{
	struct mh_conn		*c = arg;
	struct http_request	 req;
	ssize_t			 n;

	n = read(fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(c);
		return;
	}
	c->inlen += (size_t)n;
	switch (http_request_parse(c->in, c->inlen, &req)) {
	case HTTP_REQ_MORE:
		return;
	case HTTP_REQ_BAD:
		conn_error(c, "400 Bad Request");
		return;
	case HTTP_REQ_METHOD:
		conn_error(c, "405 Method Not Allowed");
		return;
	case HTTP_REQ_OK:
		break;
	}
	c->head = req.head;
	if (strcmp(req.path, "/metrics") != 0) {
		conn_error(c, "404 Not Found");
		return;
	}
	event_del(c->ev_read);
	c->asked = 1;
	mh_ask(c->id);
}

/*
 * MH_TIMEOUT seconds after the accept: a peer still sending its request
 * (slowly, a byte at a time) is dropped; one whose answer the queue has
 * not given yet (busy loading a huge spool) is told to come back.
 */
static void
conn_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct mh_conn	*c = arg;

	if (!c->asked) {
		conn_free(c);
		return;
	}
	conn_error(c, "503 Service Unavailable");
}

static void	conn_done(struct mh_conn *);

static struct mh_conn *
conn_find(uint32_t id)
{
	struct mh_conn	*c;

	TAILQ_FOREACH(c, &conns, entry)
		if (c->id == id)
			return c;
	return NULL;
}

void
metrics_http_reply(const struct ctl_reply *r)
{
	struct mh_conn	*c;
	size_t		 len, ncap;
	char		*nb;

	if ((c = conn_find(r->reqid)) == NULL || c->out != NULL)
		return;		/* gone, or timed out */
	if (r->status) {
		conn_error(c, "500 Internal Server Error");
		return;
	}
	len = strlen(r->text);
	if (len > 0) {
		if (c->bodylen + len + 1 > c->bodycap) {
			ncap = c->bodycap ? c->bodycap : 4096;
			while (c->bodylen + len + 1 > ncap)
				ncap *= 2;
			if ((nb = realloc(c->body, ncap)) == NULL) {
				log_warn("metrics: realloc");
				conn_error(c, "500 Internal Server Error");
				return;
			}
			c->body = nb;
			c->bodycap = ncap;
		}
		memcpy(c->body + c->bodylen, r->text, len);
		c->bodylen += len;
		c->body[c->bodylen++] = '\n';
	}
	if (r->end)
		conn_done(c);
}

/* the queue's text is complete: the smtp workers' counters follow */
static void
conn_done(struct mh_conn *c)
{
	struct metrics	 m;
	const char	*text;
	size_t		 len;
	char		*nb;

	metrics_init(&m);
	smtpcount_metrics(&m);
	if ((text = metrics_text(&m, &len)) == NULL ||
	    (nb = realloc(c->body, c->bodylen + len + 1)) == NULL) {
		metrics_free(&m);
		conn_error(c, "500 Internal Server Error");
		return;
	}
	c->body = nb;
	memcpy(c->body + c->bodylen, text, len);
	c->bodylen += len;
	c->bodycap = c->bodylen + 1;
	metrics_free(&m);
	conn_answer(c, "200 OK",
		    "text/plain; version=0.0.4; charset=utf-8", c->body,
		    c->bodylen);
}

static void
on_accept(evutil_socket_t lfd, short ev, void *arg)
{
	struct mh_conn	*c;
	struct timeval	 tv = { MH_TIMEOUT, 0 };
	int		 fd;

	if ((fd = platform_accept_nb(lfd, NULL, NULL)) == -1) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("metrics: accept");
		return;
	}
	if (nconns >= MH_MAX_CONN || (c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	/* wraps within the high half: never an smtpctl client's id */
	c->id = METRICS_HTTP_REQID | (++next_id & ~METRICS_HTTP_REQID);
	if ((c->ev_read = event_new(mh_base, fd, EV_READ | EV_PERSIST,
	    conn_read, c)) == NULL ||
	    (c->ev_write = event_new(mh_base, fd, EV_WRITE | EV_PERSIST,
	    conn_write, c)) == NULL ||
	    (c->ev_wait = evtimer_new(mh_base, conn_deadline, c)) == NULL)
		fatalx("metrics: event_new");
	TAILQ_INSERT_TAIL(&conns, c, entry);
	nconns++;
	event_add(c->ev_read, NULL);
	event_add(c->ev_wait, &tv);
}

void
metrics_http_init(struct event_base *base, int lfd,
    void (*ask)(uint32_t))
{
	mh_base = base;
	mh_ask = ask;
	if ((ev_listen = event_new(base, lfd, EV_READ | EV_PERSIST,
	    on_accept, NULL)) == NULL)
		fatalx("metrics: event_new");
	event_add(ev_listen, NULL);
}
