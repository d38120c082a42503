/*
 * pgsql.c -- the pgsql: shared-table backend (backend.h): each service
 * is a query to PostgreSQL, asked through libpq without ever blocking
 * lookup's event loop.
 *
 * The configuration (pgsql_conf.c) gives the conninfo, one query per
 * service with the key as its parameter $1, the size of the pool of
 * connections and the query timeout.  Everything is libpq's asynchronous
 * API driven by libevent on PQsocket(): PQconnectStartParams() and
 * PQconnectPoll() to connect (a host name is refused by the
 * configuration, since libpq would resolve it with a blocking call),
 * then PQsetnonblocking(), PQsendPrepare() and PQsendQueryPrepared(),
 * PQflush() while the socket takes no more, PQconsumeInput(), PQisBusy()
 * and PQgetResult().  PQcancel() blocks, so a query past its timeout
 * closes its connection instead, which is then opened again.
 *
 * A connection prepares a service's statement the first time it runs
 * it (again after each reconnection: statements live and die with their
 * session), so a query that fails to prepare (a table not created yet)
 * is tried again by the next question rather than until a restart.
 *
 * Queries wait in one queue for a free connection.  When no connection
 * is left (the server is down or unreachable) the table is in an
 * outage: logged once, every question and every waiting query answers
 * TABLE_ERROR at once (a temporary failure for the client, never "not
 * found"), and each connection tries again after 1 s, then 2, 4 ... up to
 * 30 s; the first connection back ends the outage (logged too).
 */
#include <sys/types.h>
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "backend.h"
#include "log.h"
#include "pgsql_conf.h"

#define BACKOFF_FIRST	1	/* seconds */
#define BACKOFF_MAX	30

enum conn_state {
	C_DOWN,		/* no connection; the retry timer may run */
	C_CONNECTING,	/* PQconnectPoll() */
	C_READY,	/* idle */
	C_PREPARING,	/* PQsendPrepare() of the query's statement */
	C_QUERYING,	/* PQsendQueryPrepared() */
};

struct pgsql;

struct pgq {
	TAILQ_ENTRY(pgq)	 entry;
	struct pgsql		*pg;
	struct table_query	*tq;
	struct pgconn		*c;	/* NULL while waiting */
	struct event		*timer;
};

struct pgconn {
	struct pgsql		*pg;
	int			 id;
	enum conn_state		 state;
	PGconn			*conn;
	struct event		*ev;	/* on PQsocket() */
	int			 fd;
	short			 watching;
	struct event		*timer;	/* connect deadline, retry */
	int			 backoff;
	int			 prepared[TS_COUNT];
	struct pgq		*q;	/* C_PREPARING, C_QUERYING */
	PGresult		*res;	/* the first result of a command */
};

struct pgsql {
	const struct table	*t;
	struct pgsql_conf	 conf;
	struct event_base	*base;
	struct pgconn		*conns;
	TAILQ_HEAD(, pgq)	 waiting;
	int			 outage;
	int			 err_logged[TS_COUNT];
};

static void	conn_connect(struct pgconn *);
static void	conn_event_cb(evutil_socket_t, short, void *);
static void	dispatch(struct pgsql *);

static const char *
statement_name(enum table_service s)
{
	static const char *const names[TS_COUNT] = {
		"ph_string", "ph_alias", "ph_domain", "ph_credentials",
		"ph_netaddr", "ph_userinfo", "ph_mailaddr", "ph_mailaddrmap",
	};

	return names[s];
}

/* libpq's message on one line */
static const char *
conn_error(struct pgconn *c, char *buf, size_t len)
{
	const char	*m = c->conn != NULL ? PQerrorMessage(c->conn) : "";
	size_t		 i;

	snprintf(buf, len, "%s", m[0] != '\0' ? m : "connection lost");
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')
			buf[i] = ' ';
	while (i > 0 && buf[i - 1] == ' ')
		buf[--i] = '\0';
	return buf;
}

static void
pgq_done(struct pgq *q, int status, const char *value)
{
	struct pgsql	*pg = q->pg;

	if (q->c == NULL)
		TAILQ_REMOVE(&pg->waiting, q, entry);
	else
		q->c->q = NULL;
	if (q->timer != NULL)
		event_free(q->timer);
	table_query_done(q->tq, status, value);
	free(q);
}

/*
 * Watch the connection's socket for these events (0: none).  While it
 * connects, libpq may close its socket and open another one (the next
 * host of a list), which can get the same number: the kernel dropped
 * the closed one from the event set, so each step registers it anew.
 */
static void
conn_watch_step(struct pgconn *c, short what, int again)
{
	int	fd = c->conn != NULL ? PQsocket(c->conn) : -1;

	if (!again && c->watching == what && c->fd == fd)
		return;
	if (c->watching != 0 && event_del(c->ev) == -1)
		fatalx("event_del");
	c->watching = 0;
	c->fd = fd;
	if (what == 0 || fd == -1)
		return;
	if (event_assign(c->ev, c->pg->base, fd, what | EV_PERSIST,
	    conn_event_cb, c) == -1 || event_add(c->ev, NULL) == -1)
		fatalx("event_add");
	c->watching = what;
}

static void
conn_watch(struct pgconn *c, short what)
{
	conn_watch_step(c, what, 0);
}

static int
usable(const struct pgconn *c)
{
	return c->state == C_READY || c->state == C_PREPARING ||
	    c->state == C_QUERYING;
}

static void
retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	conn_connect(arg);
}

/* no more session: the socket unwatched, libpq's state freed */
static void
conn_close(struct pgconn *c)
{
	conn_watch(c, 0);
	evtimer_del(c->timer);
	if (c->res != NULL) {
		PQclear(c->res);
		c->res = NULL;
	}
	if (c->conn != NULL) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	c->fd = -1;
	c->state = C_DOWN;
}

/*
 * The connection is gone (or never came): its query fails, it tries
 * again after its back-off.  No connection left: an outage begins.
 */
static void
conn_fail(struct pgconn *c, const char *why)
{
	struct pgsql	*pg = c->pg;
	struct pgq	*q;
	struct timeval	 tv;
	char		 msg[512];
	int		 i, left = 0;

	if (why != NULL)
		snprintf(msg, sizeof(msg), "%s", why);
	else
		conn_error(c, msg, sizeof(msg));
	if (c->state != C_CONNECTING && !pg->outage)
		log_warnx("table %s: connection %d to PostgreSQL lost: %s",
		    pg->t->name, c->id, msg);
	conn_close(c);
	if (c->q != NULL)
		pgq_done(c->q, TABLE_ERROR, NULL);
	for (i = 0; i < pg->conf.pool; i++)
		if (pg->conns[i].state != C_DOWN && (!pg->outage ||
		    usable(&pg->conns[i])))
			left++;
	if (left == 0 && !pg->outage) {
		pg->outage = 1;
		log_warnx("table %s: PostgreSQL unreachable (%s): temporary "
		    "failures until it is back", pg->t->name, msg);
	}
	if (pg->outage)
		while ((q = TAILQ_FIRST(&pg->waiting)) != NULL)
			pgq_done(q, TABLE_ERROR, NULL);
	tv.tv_sec = c->backoff;
	tv.tv_usec = 0;
	log_debug("table %s: connection %d: again in %d s", pg->t->name,
	    c->id, c->backoff);
	c->backoff = c->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX :
	    c->backoff * 2;
	evtimer_assign(c->timer, pg->base, retry_cb, c);
	if (evtimer_add(c->timer, &tv) == -1)
		fatalx("evtimer_add");
}

static void
conn_ready(struct pgconn *c)
{
	struct pgsql	*pg = c->pg;

	evtimer_del(c->timer);
	if (PQsetnonblocking(c->conn, 1) == -1) {
		conn_fail(c, NULL);
		return;
	}
	memset(c->prepared, 0, sizeof(c->prepared));
	c->state = C_READY;
	c->backoff = BACKOFF_FIRST;
	conn_watch_step(c, EV_READ, 1);	/* to see it close */
	if (pg->outage) {
		pg->outage = 0;
		log_warnx("table %s: PostgreSQL is back", pg->t->name);
	} else
		log_debug("table %s: connection %d ready", pg->t->name, c->id);
	dispatch(pg);
}

static void
connect_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	conn_fail(arg, "timed out connecting");
}

/* one step of PQconnectPoll(): what to wait for next */
static void
conn_poll(struct pgconn *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_READING:
		conn_watch_step(c, EV_READ, 1);
		break;
	case PGRES_POLLING_WRITING:
		conn_watch_step(c, EV_WRITE, 1);
		break;
	case PGRES_POLLING_OK:
		conn_ready(c);
		break;
	default:
		conn_fail(c, NULL);
		break;
	}
}

/* libpq's notices (and a FATAL sent to an idle session) go to the log */
static void
conn_notice(void *arg, const char *message)
{
	struct pgconn	*c = arg;
	char		 buf[512];
	size_t		 i;

	snprintf(buf, sizeof(buf), "%s", message);
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')
			buf[i] = ' ';
	log_debug("table %s: connection %d: %s", c->pg->t->name, c->id, buf);
}

static void
conn_connect(struct pgconn *c)
{
	struct pgsql	*pg = c->pg;
	struct timeval	 tv = { pg->conf.timeout, 0 };

	c->conn = PQconnectStartParams(
	    (const char *const *)pg->conf.keywords,
	    (const char *const *)pg->conf.values, 0);
	c->state = C_CONNECTING;
	if (c->conn == NULL) {
		conn_fail(c, "out of memory");
		return;
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		conn_fail(c, NULL);
		return;
	}
	(void)PQsetNoticeProcessor(c->conn, conn_notice, c);
	evtimer_assign(c->timer, pg->base, connect_timeout_cb, c);
	if (evtimer_add(c->timer, &tv) == -1)
		fatalx("evtimer_add");
	/* as if PQconnectPoll() had said PGRES_POLLING_WRITING */
	conn_watch(c, EV_WRITE);
}

/* the command is sent, or more must wait for the socket */
static void
conn_flush(struct pgconn *c)
{
	switch (PQflush(c->conn)) {
	case 0:
		conn_watch(c, EV_READ);
		break;
	case 1:
		conn_watch(c, EV_READ | EV_WRITE);
		break;
	default:
		conn_fail(c, NULL);
		break;
	}
}

static void
log_query_error(struct pgsql *pg, enum table_service s, const char *what,
    const char *why)
{
	/* once until the service answers again */
	if (pg->err_logged[s])
		return;
	pg->err_logged[s] = 1;
	log_warnx("table %s: query_%s: %s: %s", pg->t->name,
	    table_service_name(s), what, why);
}

/* send the query's statement, preparing it first on this connection */
static void
conn_send(struct pgconn *c)
{
	struct pgq		*q = c->q;
	enum table_service	 s = q->tq->service;
	const char		*key = q->tq->key;
	int			 ok;

	if (!c->prepared[s]) {
		c->state = C_PREPARING;
		ok = PQsendPrepare(c->conn, statement_name(s),
		    c->pg->conf.query[s], 1, NULL);
	} else {
		c->state = C_QUERYING;
		ok = PQsendQueryPrepared(c->conn, statement_name(s), 1, &key,
		    NULL, NULL, 0);
	}
	if (!ok) {
		conn_fail(c, NULL);
		return;
	}
	conn_flush(c);
}

static void
result_error(const PGresult *r, char *buf, size_t len)
{
	const char	*m = PQresultErrorMessage(r);
	size_t		 i;

	snprintf(buf, len, "%s", m[0] != '\0' ? m :
	    PQresStatus(PQresultStatus(r)));
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')
			buf[i] = ' ';
	while (i > 0 && buf[i - 1] == ' ')
		buf[--i] = '\0';
}

/* any row is the answer: the cells are not read */
static int
membership(enum table_service s)
{
	return s == TS_STRING || s == TS_DOMAIN || s == TS_NETADDR ||
	    s == TS_MAILADDR;
}

/* the rows of a query's answer: its value */
static void
query_answer(struct pgconn *c, struct pgq *q, PGresult *r)
{
	struct pgsql		*pg = c->pg;
	enum table_service	 s = q->tq->service;
	const char		**cells;
	char			 why[512], *value = NULL;
	int			 nrows, ncols, cells_rows, i, j, status;

	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
		if (r != NULL)
			result_error(r, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "no result");
		log_query_error(pg, s, "failed", why);
		pgq_done(q, TABLE_ERROR, NULL);
		return;
	}
	nrows = PQntuples(r);
	ncols = PQnfields(r);
	/* membership needs no cell; a value is made of at most 64 KB */
	cells_rows = membership(s) ? 0 : nrows;
	if (cells_rows > 0 && ncols > 0 &&
	    (size_t)cells_rows > TABLE_VALUE_MAX / (size_t)ncols) {
		log_query_error(pg, s, "answer refused", "too many rows");
		pgq_done(q, TABLE_ERROR, NULL);
		return;
	}
	if ((cells = calloc((size_t)cells_rows * (size_t)ncols + 1,
	    sizeof(*cells))) == NULL) {
		log_warn("table %s: calloc", pg->t->name);
		pgq_done(q, TABLE_ERROR, NULL);
		return;
	}
	for (i = 0; i < cells_rows; i++)
		for (j = 0; j < ncols; j++)
			cells[i * ncols + j] = PQgetisnull(r, i, j) ? NULL :
			    PQgetvalue(r, i, j);
	why[0] = '\0';
	status = pgsql_rows_value(s, cells, nrows, ncols, &value, why,
	    sizeof(why));
	free(cells);
	if (status == TABLE_ERROR)
		log_query_error(pg, s, "answer refused", why);
	else
		pg->err_logged[s] = 0;
	pgq_done(q, status, value);
	if (value != NULL)
		freezero(value, strlen(value) + 1);
}

/* a command's results are all in */
static void
conn_complete(struct pgconn *c)
{
	struct pgq		*q = c->q;
	PGresult		*r = c->res;
	enum table_service	 s;
	char			 why[512];

	c->res = NULL;
	if (q == NULL) {
		/* its query timed out: the connection was closed then */
		PQclear(r);
		c->state = C_READY;
		return;
	}
	s = q->tq->service;
	if (c->state == C_PREPARING) {
		if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
			if (r != NULL)
				result_error(r, why, sizeof(why));
			else
				snprintf(why, sizeof(why), "no result");
			log_query_error(c->pg, s, "cannot prepare", why);
			PQclear(r);
			c->state = C_READY;
			pgq_done(q, TABLE_ERROR, NULL);
			return;
		}
		PQclear(r);
		c->prepared[s] = 1;
		conn_send(c);
		return;
	}
	c->state = C_READY;
	query_answer(c, q, r);
	PQclear(r);
}

static void
conn_event_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pgconn	*c = arg;
	PGresult	*r;

	(void)fd;
	if (c->state == C_CONNECTING) {
		conn_poll(c);
		return;
	}
	if ((ev & EV_WRITE) && c->conn != NULL) {
		conn_flush(c);
		if (c->state == C_DOWN)
			return;
	}
	if (!(ev & EV_READ))
		return;
	if (!PQconsumeInput(c->conn)) {
		conn_fail(c, NULL);
		return;
	}
	if (c->state == C_READY) {
		/* nothing asked: a notice, or the server going away */
		if (PQstatus(c->conn) == CONNECTION_BAD)
			conn_fail(c, NULL);
		return;
	}
	while (!PQisBusy(c->conn)) {
		if ((r = PQgetResult(c->conn)) == NULL) {
			conn_complete(c);
			if (c->state == C_READY &&
			    PQstatus(c->conn) == CONNECTION_BAD)
				conn_fail(c, NULL);
			else if (c->state == C_READY)
				dispatch(c->pg);
			return;
		}
		if (c->res == NULL)
			c->res = r;
		else
			PQclear(r);
	}
	if (PQstatus(c->conn) == CONNECTION_BAD)
		conn_fail(c, NULL);
}

/* waiting queries to free connections */
static void
dispatch(struct pgsql *pg)
{
	struct pgq	*q;
	int		 i;

	for (i = 0; i < pg->conf.pool; i++) {
		struct pgconn	*c = &pg->conns[i];

		if (c->state != C_READY || c->q != NULL)
			continue;
		if ((q = TAILQ_FIRST(&pg->waiting)) == NULL)
			return;
		TAILQ_REMOVE(&pg->waiting, q, entry);
		q->c = c;
		c->q = q;
		conn_send(c);
	}
}

static void
query_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pgq	*q = arg;
	struct pgsql	*pg = q->pg;
	struct pgconn	*c = q->c;

	(void)fd;
	(void)ev;
	log_warnx("table %s: query_%s timed out after %d s", pg->t->name,
	    table_service_name(q->tq->service), pg->conf.timeout);
	event_free(q->timer);
	q->timer = NULL;
	pgq_done(q, TABLE_ERROR, NULL);
	/*
	 * PQcancel() would block: the connection goes, and a new one is
	 * opened at once (a server that hangs fails that one's connect
	 * deadline, then backs off).
	 */
	if (c != NULL) {
		conn_close(c);
		conn_connect(c);
	}
}

static void *
pgsql_open(const struct table *t, char *err, size_t errlen)
{
	struct pgsql	*pg;

	if ((pg = calloc(1, sizeof(*pg))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (pgsql_conf_parse(&pg->conf, t->conf_text != NULL ? t->conf_text :
	    "", t->conf_len, t->path, err, errlen) == -1) {
		free(pg);
		return NULL;
	}
	pg->t = t;
	TAILQ_INIT(&pg->waiting);
	return pg;
}

static int
pgsql_start(void *h, struct event_base *base)
{
	struct pgsql	*pg = h;
	struct pgconn	*c;
	int		 i;

	pg->base = base;
	if ((pg->conns = calloc((size_t)pg->conf.pool,
	    sizeof(*pg->conns))) == NULL) {
		log_warn("table %s: calloc", pg->t->name);
		return -1;
	}
	for (i = 0; i < pg->conf.pool; i++) {
		c = &pg->conns[i];
		c->pg = pg;
		c->id = i + 1;
		c->fd = -1;
		c->backoff = BACKOFF_FIRST;
		if ((c->ev = event_new(base, -1, 0, NULL, NULL)) == NULL ||
		    (c->timer = evtimer_new(base, retry_cb, c)) == NULL)
			fatalx("event_new");
	}
	for (i = 0; i < pg->conf.pool; i++)
		conn_connect(&pg->conns[i]);
	return 0;
}

static int
pgsql_serves(void *h, enum table_service s)
{
	struct pgsql	*pg = h;

	return (unsigned)s < TS_COUNT && pg->conf.query[s] != NULL;
}

static void
pgsql_query(void *h, struct table_query *tq)
{
	struct pgsql	*pg = h;
	struct pgq	*q;
	struct timeval	 tv = { pg->conf.timeout, 0 };

	if (pg->base == NULL || pg->outage || !pgsql_serves(pg, tq->service)) {
		table_query_done(tq, TABLE_ERROR, NULL);
		return;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		log_warn("table %s: calloc", pg->t->name);
		table_query_done(tq, TABLE_ERROR, NULL);
		return;
	}
	q->pg = pg;
	q->tq = tq;
	if ((q->timer = evtimer_new(pg->base, query_timeout_cb, q)) == NULL ||
	    evtimer_add(q->timer, &tv) == -1)
		fatalx("evtimer");
	TAILQ_INSERT_TAIL(&pg->waiting, q, entry);
	dispatch(pg);
}

static void
pgsql_close(void *h)
{
	struct pgsql	*pg = h;
	struct pgconn	*c;
	struct pgq	*q;
	int		 i;

	while ((q = TAILQ_FIRST(&pg->waiting)) != NULL)
		pgq_done(q, TABLE_ERROR, NULL);
	for (i = 0; pg->conns != NULL && i < pg->conf.pool; i++) {
		c = &pg->conns[i];
		if (c->q != NULL)
			pgq_done(c->q, TABLE_ERROR, NULL);
		conn_watch(c, 0);
		if (c->res != NULL)
			PQclear(c->res);
		if (c->conn != NULL)
			PQfinish(c->conn);
		if (c->ev != NULL)
			event_free(c->ev);
		if (c->timer != NULL)
			event_free(c->timer);
	}
	free(pg->conns);
	pgsql_conf_free(&pg->conf);
	free(pg);
}

const struct table_driver table_driver_pgsql = {
	.scheme = "pgsql",
	.has_file = 1,
	.open = pgsql_open,
	.start = pgsql_start,
	.serves = pgsql_serves,
	.query = pgsql_query,
	.close = pgsql_close,
};
