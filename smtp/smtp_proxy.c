/*
 * smtp_proxy.c -- the PROXY protocol on a listener ("proxy-protocol from
 * NET ..." in smtpd.conf): a TCP load balancer in front of us opens each
 * connection with a header naming the real client (common/proxy_proto.c
 * reads it), and from then on that client is the session's.
 *
 * Trust: only the listed balancers may send a header (smtp_session.c
 * asks smtp_proxy_trusted() at accept, before reading a byte); a header
 * is how a peer chooses the address that rules, limits and checks see.
 *
 * One place: session_start() runs only once the header is in, and
 * proxy_apply() has put the client's address into s->ss and s->addr
 * before it, so nothing (session limits, rDNS, DNSBL, SPF, "from src"
 * rules, the Received field, the milter connect stage, the logs) ever
 * sees the balancer's address as the client's.  The balancer's stays in
 * s->proxy_addr for the logs' "proxy=".
 *
 * The header is read without blocking the worker: a read event, with a
 * short deadline for the whole header (PROXY_TIMEOUT), so that a peer
 * trickling it a byte at a time cannot hold a session open.  Reads never
 * take a byte past the header -- each turn peeks at what is there and
 * consumes only what the parser says is surely header -- because the
 * next bytes are the client's: its TLS handshake on an smtps listener,
 * which the bufferevent must see whole.  A header that is malformed, too
 * long or late ends the connection with a log line and no greeting.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "addr.h"
#include "log.h"
#include "proxy_proto.h"
#include "smtp_session.h"

/* a balancer sends its header at once: a few seconds is plenty */
#define PROXY_TIMEOUT	5

struct smtp_proxy {
	struct event	*ev;
	struct timespec	 deadline;	/* for the whole header */
	size_t		 have;		/* header bytes consumed so far */
	uint8_t		 buf[PROXY_HDR_MAX];
};

static void	proxy_read(evutil_socket_t, short, void *);

int
smtp_proxy_trusted(const struct listener *l,
    const struct sockaddr_storage *ss)
{
	int	i;

	for (i = 0; i < l->nproxy_from; i++)
		if (addr_in_cidr(ss, l->proxy_from[i]))
			return 1;
	return 0;
}

/*
 * Wait for more of the header, until the deadline: one for the whole
 * header, so that a peer trickling a byte at a time cannot stretch it.
 * 0 when the time is up.
 */
static int
proxy_wait(struct smtp_proxy *p)
{
	struct timespec	now;
	struct timeval	tv;
	long long	left;

	if (clock_gettime(CLOCK_MONOTONIC, &now) == -1)
		fatal("clock_gettime");
	left = (long long)(p->deadline.tv_sec - now.tv_sec) * 1000000 +
	    (p->deadline.tv_nsec - now.tv_nsec) / 1000;
	if (left <= 0)
		return 0;
	tv.tv_sec = (time_t)(left / 1000000);
	tv.tv_usec = (suseconds_t)(left % 1000000);
	if (event_add(p->ev, &tv) == -1)
		fatalx("event_add");
	return 1;
}

int
smtp_proxy_start(struct session *s)
{
	struct smtp_proxy	*p;

	if ((p = s->proxy = calloc(1, sizeof(*s->proxy))) == NULL) {
		log_warn("calloc");
		return -1;
	}
	if ((p->ev = event_new(ev_base, s->fd, EV_READ, proxy_read, s)) ==
	    NULL) {
		log_warnx("%08x: event_new", s->id);
		return -1;
	}
	if (clock_gettime(CLOCK_MONOTONIC, &p->deadline) == -1)
		fatal("clock_gettime");
	p->deadline.tv_sec += PROXY_TIMEOUT;
	if (!proxy_wait(p))
		fatalx("smtp_proxy_start: no time");
	return 0;
}

void
smtp_proxy_free(struct session *s)
{
	if (s->proxy == NULL)
		return;
	if (s->proxy->ev != NULL)
		event_free(s->proxy->ev);
	free(s->proxy);
	s->proxy = NULL;
}

static void
proxy_fail(struct session *s, const char *why)
{
	log_info("%08x: proxy: bad PROXY header from %s on %s port %u: %s",
	    s->id, s->addr, s->l->ifname, s->l->port, why);
	session_close(s);
}

/* the header is in: the client it names becomes the session's */
static void
proxy_apply(struct session *s, const struct proxy_hdr *h)
{
	memcpy(s->proxy_addr, s->addr, sizeof(s->proxy_addr));
	if (!h->has_addr) {
		/* a health check (v2 LOCAL) or no client known: as is */
		log_debug("%08x: proxy: v%d header from %s without a client "
		    "address", s->id, h->version, s->addr);
		return;
	}
	s->ss = h->src;
	s->local_ss = h->dst;
	session_set_addr(s);
	log_debug("%08x: proxy: v%d header from %s: client %s", s->id,
	    h->version, s->proxy_addr, s->addr);
}

static void
proxy_read(evutil_socket_t fd, short ev, void *arg)
{
	struct session		*s = arg;
	struct smtp_proxy	*p = s->proxy;
	struct proxy_hdr	 h;
	const char		*why;
	size_t			 used;
	ssize_t			 n;
	int			 rc;

	if (ev & EV_TIMEOUT) {
		proxy_fail(s, "no header in time");
		return;
	}
	/* look, then take only what is header (see the top) */
	n = recv(fd, p->buf + p->have, sizeof(p->buf) - p->have, MSG_PEEK);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			if (!proxy_wait(p))
				proxy_fail(s, "no header in time");
			return;
		}
		log_debug("%08x: proxy: read from %s: %s", s->id, s->addr,
		    strerror(errno));
		session_close(s);
		return;
	}
	if (n == 0) {
		proxy_fail(s, p->have ? "truncated header" :
		    "closed before a header");
		return;
	}
	rc = proxy_parse(p->buf, p->have + (size_t)n, &h, &used, &why);
	if (rc == PROXY_BAD) {
		proxy_fail(s, why);
		return;
	}
	if (used > p->have) {
		n = recv(fd, p->buf + p->have, used - p->have, 0);
		if (n < 0 || (size_t)n != used - p->have) {
			proxy_fail(s, "short read");
			return;
		}
		p->have = used;
	}
	if (rc == PROXY_MORE) {
		if (!proxy_wait(p))
			proxy_fail(s, "no header in time");
		return;
	}
	smtp_proxy_free(s);
	proxy_apply(s, &h);
	session_start(s);
}
