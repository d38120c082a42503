/*
 * socketmap.c -- the socketmap: shared-table backend (backend.h): the
 * client side of Sendmail's socket map protocol, as Postfix's
 * socketmap_table(5) also speaks it (socketmap.h has the wire format).
 *
 * The table line says where the server is and which map to ask:
 * "socketmap:unix:/path:MAPNAME" or "socketmap:inet:HOST:PORT:MAPNAME"
 * (t->path holds what follows "socketmap:").  Every service asks the
 * same map: the server answers keys, whatever they are for.  A key is
 * sent in a netstring, which carries any bytes: a space or a quote in a
 * key cannot change the request (the map name ends at the first space,
 * and the map name is ours).
 *
 * The protocol has one request in flight per connection and no request
 * ids, so each connection of the pool (SOCKETMAP_POOL) carries one
 * question at a time; more wait in a queue, in order.  Connections open
 * when needed (non-blocking, on lookup's loop) and stay open.  Each
 * connection attempt and each request has SOCKETMAP_TIMEOUT seconds;
 * after a timeout or a malformed reply the connection is closed, as the
 * next reply on it could answer the wrong question.
 *
 * A server that is down: the failure starts a back-off (1 s, doubling
 * to 30 s) during which questions are TABLE_ERROR at once, logged once
 * when the outage starts and once when it ends.  A server that closes
 * an idle connection is no outage; one that closes a connection just as
 * a question goes out on it (its idle timeout and our question crossed)
 * is asked that question again on a new connection, once.  TEMP, TIMEOUT and PERM replies are
 * TABLE_ERROR too (a temporary failure for the client: a table never
 * makes us refuse mail for good because its server had a problem),
 * logged with the server's reason.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "backend.h"
#include "log.h"
#include "socketmap.h"
#include "util.h"

#define SOCKETMAP_POOL		4	/* connections */
#define SOCKETMAP_TIMEOUT	5	/* seconds, a connection or a reply */
#define SOCKETMAP_QUEUE_MAX	1024	/* questions waiting for a connection */
#define BACKOFF_FIRST		1	/* seconds */
#define BACKOFF_MAX		30
/* "100000:" and "," around the longest reply */
#define REPLY_WIRE_MAX		(SOCKETMAP_REPLY_MAX + 8)

/*
 * The wire format
 */

static int
parse_port(const char *s, size_t len, in_port_t *port)
{
	unsigned long	n = 0;
	size_t		i;

	if (len == 0 || len > 5)
		return -1;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (n == 0 || n > 65535)
		return -1;
	*port = htons((in_port_t)n);
	return 0;
}

int
socketmap_target_parse(const char *spec, struct socketmap_target *tg,
    char *err, size_t errlen)
{
	struct sockaddr_un	*sun;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	const char		*map, *rest, *host, *port;
	char			 hbuf[INET6_ADDRSTRLEN + 1];
	size_t			 n, hl;

	memset(tg, 0, sizeof(*tg));
	if ((map = strrchr(spec, ':')) == NULL || map[1] == '\0') {
		snprintf(err, errlen, "expected unix:/path:MAPNAME or "
		    "inet:HOST:PORT:MAPNAME");
		return -1;
	}
	map++;
	if (strlen(map) >= sizeof(tg->mapname)) {
		snprintf(err, errlen, "map name longer than %d bytes",
		    SOCKETMAP_MAPNAME_MAX - 1);
		return -1;
	}
	for (rest = map; *rest != '\0'; rest++)
		if (!isgraph((unsigned char)*rest)) {
			snprintf(err, errlen, "the map name has a space or "
			    "a control character");
			return -1;
		}
	memcpy(tg->mapname, map, strlen(map) + 1);
	n = (size_t)(map - 1 - spec);	/* up to the map name's ':' */
	if (n < 5) {			/* "unix:/path" lacks its map name */
		snprintf(err, errlen, "expected unix:/path:MAPNAME or "
		    "inet:HOST:PORT:MAPNAME");
		return -1;
	}
	if (strncmp(spec, "unix:", 5) == 0) {
		rest = spec + 5;
		n -= 5;
		sun = (struct sockaddr_un *)&tg->ss;
		if (n == 0 || rest[0] != '/') {
			snprintf(err, errlen, "unix: needs an absolute path");
			return -1;
		}
		if (n >= sizeof(sun->sun_path)) {
			snprintf(err, errlen, "socket path longer than %zu "
			    "bytes", sizeof(sun->sun_path) - 1);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, rest, n);
		sun->sun_path[n] = '\0';
		tg->sslen = sizeof(*sun);
		return 0;
	}
	if (strncmp(spec, "inet:", 5) != 0) {
		snprintf(err, errlen, "expected unix:/path:MAPNAME or "
		    "inet:HOST:PORT:MAPNAME");
		return -1;
	}
	rest = spec + 5;
	n -= 5;
	/* HOST:PORT in rest[0..n) */
	if (n > 0 && rest[0] == '[') {
		host = rest + 1;
		if ((port = memchr(rest, ']', n)) == NULL ||
		    (size_t)(port - rest) + 1 >= n || port[1] != ':') {
			snprintf(err, errlen, "expected inet:[IPV6]:PORT:"
			    "MAPNAME");
			return -1;
		}
		hl = (size_t)(port - host);
		port += 2;
	} else {
		host = rest;
		for (port = rest + n; port > rest && port[-1] != ':'; port--)
			;
		if (port == rest) {
			snprintf(err, errlen, "expected inet:HOST:PORT:"
			    "MAPNAME");
			return -1;
		}
		hl = (size_t)(port - 1 - host);
	}
	if (hl == 0 || hl >= sizeof(hbuf)) {
		snprintf(err, errlen, "bad host");
		return -1;
	}
	memcpy(hbuf, host, hl);
	hbuf[hl] = '\0';
	sin = (struct sockaddr_in *)&tg->ss;
	sin6 = (struct sockaddr_in6 *)&tg->ss;
	if (parse_port(port, (size_t)(rest + n - port), &sin->sin_port) ==
	    -1) {
		snprintf(err, errlen, "bad port (1 to 65535)");
		return -1;
	}
	if (inet_pton(AF_INET, hbuf, &sin->sin_addr) == 1 &&
	    host == rest) {
		sin->sin_family = AF_INET;
		tg->sslen = sizeof(*sin);
		return 0;
	}
	sin6->sin6_port = sin->sin_port;
	if (inet_pton(AF_INET6, hbuf, &sin6->sin6_addr) == 1 &&
	    host != rest) {
		sin6->sin6_family = AF_INET6;
		tg->sslen = sizeof(*sin6);
		return 0;
	}
	/* no name: resolving it would block lookup's loop */
	snprintf(err, errlen, "\"%.64s\" is not a numeric address "
	    "(192.0.2.1, or [2001:db8::1])", hbuf);
	return -1;
}

int
netstring_parse(const char *buf, size_t len, size_t max, size_t *off,
    size_t *plen, size_t *used)
{
	size_t	i, n = 0;

	for (i = 0; i < len && isdigit((unsigned char)buf[i]); i++) {
		if (i > 0 && n == 0)
			return -1;	/* a leading zero */
		n = n * 10 + (size_t)(buf[i] - '0');
		if (n > max)
			return -1;
	}
	if (i == len)
		return 0;
	if (i == 0 || buf[i] != ':')
		return -1;
	if (len - i - 1 < n + 1)
		return 0;
	if (buf[i + 1 + n] != ',')
		return -1;
	*off = i + 1;
	*plen = n;
	*used = i + 2 + n;
	return 1;
}

char *
socketmap_request(const char *mapname, const char *key, size_t *len)
{
	size_t	 ml = strlen(mapname), kl = strlen(key), pl = ml + 1 + kl;
	char	*out;
	int	 hl;

	if ((out = malloc(pl + 24)) == NULL)
		return NULL;
	hl = snprintf(out, 24, "%zu:", pl);
	memcpy(out + hl, mapname, ml);
	out[hl + ml] = ' ';
	memcpy(out + hl + ml + 1, key, kl);
	out[hl + pl] = ',';
	*len = (size_t)hl + pl + 1;
	return out;
}

/* the server's reason, printable, for the log */
static void
reason(const char *s, size_t len, char *why, size_t whylen, const char *what)
{
	char	r[201];
	size_t	i;

	if (len > sizeof(r) - 1)
		len = sizeof(r) - 1;
	for (i = 0; i < len; i++)
		r[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	r[len] = '\0';
	snprintf(why, whylen, "%s %s", what, r);
}

static int
word(const char *p, size_t len, const char *w, size_t *skip)
{
	size_t	wl = strlen(w);

	if (len < wl || memcmp(p, w, wl) != 0)
		return 0;
	if (len == wl) {
		*skip = wl;
		return 1;
	}
	if (p[wl] != ' ')
		return 0;
	*skip = wl + 1;
	return 1;
}

int
socketmap_reply(const char *p, size_t len, char **value, int *bad,
    char *why, size_t whylen)
{
	size_t	skip;

	*value = NULL;
	*bad = 0;
	if (word(p, len, "OK", &skip)) {
		if (memchr(p + skip, '\0', len - skip) != NULL) {
			snprintf(why, whylen, "a NUL byte in the value");
			return TABLE_ERROR;
		}
		if ((*value = strndup(p + skip, len - skip)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return TABLE_ERROR;
		}
		return TABLE_FOUND;
	}
	if (word(p, len, "NOTFOUND", &skip))
		return TABLE_NOTFOUND;
	if (word(p, len, "TEMP", &skip)) {
		reason(p + skip, len - skip, why, whylen, "TEMP");
		return TABLE_ERROR;
	}
	if (word(p, len, "TIMEOUT", &skip)) {
		reason(p + skip, len - skip, why, whylen, "TIMEOUT");
		return TABLE_ERROR;
	}
	if (word(p, len, "PERM", &skip)) {
		reason(p + skip, len - skip, why, whylen, "PERM");
		return TABLE_ERROR;
	}
	*bad = 1;
	reason(p, len, why, whylen, "a malformed reply:");
	return TABLE_ERROR;
}

/*
 * The connections
 */

enum smstate {
	SM_CLOSED,
	SM_CONNECTING,
	SM_IDLE,
	SM_BUSY,
};

struct socketmap;

struct smconn {
	struct socketmap	*m;
	struct bufferevent	*bev;
	enum smstate		 state;
	struct table_query	*cur;		/* SM_BUSY */
	int			 retry;		/* cur is asked a second time */
	int			 answered;	/* replies on this connection */
	struct event		*timer;
};

struct smwait {
	TAILQ_ENTRY(smwait)	 entry;
	struct table_query	*q;
	int			 retry;
};

struct socketmap {
	const struct table	*t;
	struct socketmap_target	 tg;
	struct event_base	*base;
	struct smconn		 conns[SOCKETMAP_POOL];
	TAILQ_HEAD(, smwait)	 queue;
	int			 nqueue;
	int			 down;		/* an outage, logged */
	int			 backoff;	/* seconds, 0: none */
	time_t			 retry_at;	/* monotonic */
	int			 reply_logged;	/* a TEMP/PERM, logged */
};

static void	dispatch(struct socketmap *);

static time_t
mono_now(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ts.tv_sec;
}

static int
in_backoff(const struct socketmap *m)
{
	return m->retry_at != 0 && mono_now() < m->retry_at;
}

static void
outage(struct socketmap *m, const char *why)
{
	time_t	now = mono_now();

	/* another connection of the same outage: one back-off step */
	if (m->retry_at != 0 && now < m->retry_at)
		return;
	m->backoff = m->backoff == 0 ? BACKOFF_FIRST :
	    m->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : m->backoff * 2;
	m->retry_at = now + m->backoff;
	if (m->down)
		return;
	m->down = 1;
	log_warnx("table %s: socketmap server %s: %s: its answers are "
	    "temporary failures until it is back", m->t->name, m->t->path,
	    why);
}

static void
recovered(struct socketmap *m)
{
	m->backoff = 0;
	m->retry_at = 0;
	if (!m->down)
		return;
	m->down = 0;
	log_info("table %s: socketmap server %s is back", m->t->name,
	    m->t->path);
}

static int
alive(const struct socketmap *m)
{
	int	i;

	for (i = 0; i < SOCKETMAP_POOL; i++)
		if (m->conns[i].state != SM_CLOSED)
			return 1;
	return 0;
}

/* every question waiting: no connection is left to answer them */
static void
fail_queue(struct socketmap *m)
{
	struct smwait	*w;

	while ((w = TAILQ_FIRST(&m->queue)) != NULL) {
		TAILQ_REMOVE(&m->queue, w, entry);
		m->nqueue--;
		table_query_done(w->q, TABLE_ERROR, NULL);
		free(w);
	}
}

/* close a connection; why: an outage, NULL: a quiet close */
static void
conn_close(struct smconn *c, const char *why)
{
	struct socketmap	*m = c->m;
	struct table_query	*q = c->cur;

	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	c->cur = NULL;
	c->state = SM_CLOSED;
	evtimer_del(c->timer);
	if (why != NULL)
		outage(m, why);
	if (q != NULL)
		table_query_done(q, TABLE_ERROR, NULL);
	if (!alive(m) && in_backoff(m))
		fail_queue(m);
	else
		dispatch(m);
}

static void
conn_timer_add(struct smconn *c)
{
	struct timeval	tv = { SOCKETMAP_TIMEOUT, 0 };

	if (evtimer_add(c->timer, &tv) == -1)
		fatalx("evtimer_add");
}

static void
conn_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct smconn	*c = arg;

	(void)fd;
	(void)ev;
	conn_close(c, c->state == SM_CONNECTING ? "no connection within "
	    "the timeout" : "no answer within the timeout");
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct smconn		*c = arg;
	struct socketmap	*m = c->m;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct table_query	*q;
	const char		*buf;
	char			*value, why[256];
	size_t			 len, off, plen, used;
	int			 r, status, bad;

	if ((len = evbuffer_get_length(in)) == 0)
		return;
	if (len > REPLY_WIRE_MAX)
		len = REPLY_WIRE_MAX;
	if ((buf = (const char *)evbuffer_pullup(in, (ssize_t)len)) == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	r = netstring_parse(buf, len, SOCKETMAP_REPLY_MAX, &off, &plen,
	    &used);
	if (r == 0 && len < REPLY_WIRE_MAX)
		return;		/* more to come */
	if (r != 1 || c->state != SM_BUSY) {
		log_warnx("table %s: socketmap server %s: %s", m->t->name,
		    m->t->path, r != 1 ? "a malformed netstring" :
		    "a reply to no question");
		conn_close(c, NULL);
		return;
	}
	why[0] = '\0';
	status = socketmap_reply(buf + off, plen, &value, &bad, why,
	    sizeof(why));
	if (evbuffer_drain(in, used) == -1)
		fatalx("evbuffer_drain");
	q = c->cur;
	c->cur = NULL;
	c->answered++;
	c->state = SM_IDLE;
	evtimer_del(c->timer);
	recovered(m);
	if (status == TABLE_ERROR) {
		if (!m->reply_logged)
			log_warnx("table %s: %s \"%s\": %s", m->t->name,
			    table_service_name(q->service), q->key, why);
		m->reply_logged = 1;
	} else
		m->reply_logged = 0;
	table_query_done(q, status, value);
	if (value != NULL)
		freezero(value, strlen(value) + 1);
	/* the server is there: no back-off, but the stream is suspect */
	if (bad)
		conn_close(c, NULL);
	else if (evbuffer_get_length(in) > 0) {
		log_warnx("table %s: socketmap server %s: a reply to no "
		    "question", m->t->name, m->t->path);
		conn_close(c, NULL);
	} else
		dispatch(m);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smconn	*c = arg;
	struct smwait	*w;
	char		 why[128];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->state = SM_IDLE;
		evtimer_del(c->timer);
		recovered(c->m);
		dispatch(c->m);
		return;
	}
	if (c->state == SM_IDLE) {
		conn_close(c, NULL);	/* the server's idle timeout */
		return;
	}
	/*
	 * A connection that served before, closed as the question was
	 * sent without a byte of answer: the server's idle timeout met
	 * our question.  Ask it once more, on a new connection.
	 */
	if (c->state == SM_BUSY && c->answered > 0 && !c->retry &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
	    (w = calloc(1, sizeof(*w))) != NULL) {
		w->q = c->cur;
		w->retry = 1;
		c->cur = NULL;
		TAILQ_INSERT_HEAD(&c->m->queue, w, entry);
		c->m->nqueue++;
		conn_close(c, NULL);
		return;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed");
	else
		snprintf(why, sizeof(why), "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	conn_close(c, why);
}

static int
conn_open(struct smconn *c)
{
	struct socketmap	*m = c->m;

	if ((c->bev = bufferevent_socket_new(m->base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		outage(m, "out of memory");
		return -1;
	}
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) == -1 ||
	    bufferevent_socket_connect(c->bev, (struct sockaddr *)&m->tg.ss,
	    (int)m->tg.sslen) == -1) {
		bufferevent_free(c->bev);
		c->bev = NULL;
		outage(m, strerror(errno));
		return -1;
	}
	c->state = SM_CONNECTING;
	c->answered = 0;
	conn_timer_add(c);
	return 0;
}

static void
conn_send(struct smconn *c, struct table_query *q, int retry)
{
	char	*req;
	size_t	 len;

	if ((req = socketmap_request(c->m->tg.mapname, q->key, &len)) ==
	    NULL || bufferevent_write(c->bev, req, len) == -1) {
		free(req);
		log_warn("table %s: request", c->m->t->name);
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	freezero(req, len);
	c->cur = q;
	c->retry = retry;
	c->state = SM_BUSY;
	conn_timer_add(c);
}

/* hand waiting questions to idle connections, open more if need be */
static void
dispatch(struct socketmap *m)
{
	struct smwait	*w;
	struct smconn	*c;
	int		 i, connecting = 0;

	while ((w = TAILQ_FIRST(&m->queue)) != NULL) {
		c = NULL;
		for (i = 0; i < SOCKETMAP_POOL; i++)
			if (m->conns[i].state == SM_IDLE) {
				c = &m->conns[i];
				break;
			}
		if (c == NULL)
			break;
		TAILQ_REMOVE(&m->queue, w, entry);
		m->nqueue--;
		conn_send(c, w->q, w->retry);
		free(w);
	}
	if (m->nqueue == 0)
		return;
	for (i = 0; i < SOCKETMAP_POOL; i++)
		if (m->conns[i].state == SM_CONNECTING)
			connecting++;
	for (i = 0; i < SOCKETMAP_POOL && connecting < m->nqueue; i++) {
		if (m->conns[i].state != SM_CLOSED)
			continue;
		if (in_backoff(m))
			break;
		if (conn_open(&m->conns[i]) == 0)
			connecting++;
	}
	if (!alive(m))
		fail_queue(m);
}

static void
socketmap_query(void *h, struct table_query *q)
{
	struct socketmap	*m = h;
	struct smwait		*w;

	if ((in_backoff(m) && !alive(m)) || m->nqueue >= SOCKETMAP_QUEUE_MAX) {
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_warn("table %s: calloc", m->t->name);
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	w->q = q;
	TAILQ_INSERT_TAIL(&m->queue, w, entry);
	m->nqueue++;
	dispatch(m);
}

static void *
socketmap_open(const struct table *t, char *err, size_t errlen)
{
	struct socketmap	*m;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (socketmap_target_parse(t->path, &m->tg, err, errlen) == -1) {
		free(m);
		return NULL;
	}
	m->t = t;
	TAILQ_INIT(&m->queue);
	return m;
}

static int
socketmap_start(void *h, struct event_base *base)
{
	struct socketmap	*m = h;
	int			 i;

	m->base = base;
	for (i = 0; i < SOCKETMAP_POOL; i++) {
		m->conns[i].m = m;
		if ((m->conns[i].timer = evtimer_new(base, conn_timeout_cb,
		    &m->conns[i])) == NULL)
			return -1;
	}
	return 0;
}

static int
socketmap_serves(void *h, enum table_service s)
{
	(void)h;
	return (unsigned)s < TS_COUNT;
}

static void
socketmap_close(void *h)
{
	struct socketmap	*m = h;
	struct smconn		*c;
	int			 i;

	fail_queue(m);
	for (i = 0; i < SOCKETMAP_POOL; i++) {
		c = &m->conns[i];
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		if (c->cur != NULL)
			table_query_done(c->cur, TABLE_ERROR, NULL);
		if (c->timer != NULL)
			event_free(c->timer);
	}
	free(m);
}

const struct table_driver table_driver_socketmap = {
	.scheme = "socketmap",
	.has_file = 0,
	.open = socketmap_open,
	.start = socketmap_start,
	.serves = socketmap_serves,
	.query = socketmap_query,
	.close = socketmap_close,
};
