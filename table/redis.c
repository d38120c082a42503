/*
 * redis.c -- the redis: shared-table backend (backend.h), on hiredis'
 * asynchronous API and its libevent adapter, in the lookup process.
 *
 * The configuration file (redis.h) names the server, a password, a
 * database and one command template per service.  A key is one
 * argument of the command (redisAsyncCommandArgv: the protocol carries
 * each argument's length), never text pasted into a command line.
 *
 * Connections: a pool of at most `pool' (default 2), opened when a
 * question needs one.  Each sends AUTH and SELECT first, pipelined
 * before its queries, so a refused password fails those queries (an
 * error reply) instead of answering them from the wrong place.  hiredis
 * has no timeouts of its own here (0.14): a timer per connection
 * attempt and one per query give up after `timeout'; a query that times
 * out drops its connection, since a server that does not answer one
 * question will not answer those pipelined behind it.
 *
 * A server that is down: the connection that found it so starts a
 * back-off (1 s, doubling to 30 s) during which every question is
 * TABLE_ERROR at once, then one question tries again.  The outage is
 * logged once when it starts and once when it ends.  A connection the
 * server closes while idle (redis' own "timeout") is no outage: it is
 * reopened when needed.
 *
 * The hiredis contract relied on: each command's callback runs exactly
 * once, with the reply, or with NULL when the context goes away
 * (redisAsyncFree runs them at once outside a callback, later inside
 * one); onDisconnect runs only for a context that was connected;
 * after onConnect(REDIS_ERR) hiredis frees the context itself.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "backend.h"
#include "log.h"
#include "redis.h"
#include "util.h"

#define LINE_MAX_LEN	4096

/*
 * The configuration file
 */

/* "5s", "500ms", "1m", "5" (seconds): milliseconds, or -1 */
static long
parse_duration_ms(const char *s)
{
	long	n = 0, mult;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		n = n * 10 + (*s - '0');
		if (n > 100000000L)
			return -1;
	}
	if (*s == '\0' || strcmp(s, "s") == 0)
		mult = 1000;
	else if (strcmp(s, "ms") == 0)
		mult = 1;
	else if (strcmp(s, "m") == 0)
		mult = 60000;
	else
		return -1;
	return n * mult;
}

static long
parse_number(const char *s, long min, long max)
{
	long	n = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		n = n * 10 + (*s - '0');
		if (n > max)
			return -1;
	}
	return *s == '\0' && n >= min ? n : -1;
}

/* "HOST:PORT", "HOST" or "/path" */
static int
parse_server(const char *v, struct redis_conf *rc, char *why, size_t whylen)
{
	struct in_addr	 ia;
	const char	*colon;
	size_t		 hl;
	long		 port = REDIS_PORT_DEFAULT;

	if (v[0] == '/') {
		if (strlen(v) >= sizeof(rc->unix_path)) {
			snprintf(why, whylen, "socket path too long (at most "
			    "%zu bytes)", sizeof(rc->unix_path) - 1);
			return -1;
		}
		memcpy(rc->unix_path, v, strlen(v) + 1);
		return 0;
	}
	if ((colon = strrchr(v, ':')) != NULL) {
		if ((port = parse_number(colon + 1, 1, 65535)) == -1) {
			snprintf(why, whylen, "bad port \"%.32s\"", colon + 1);
			return -1;
		}
		hl = (size_t)(colon - v);
	} else
		hl = strlen(v);
	if (hl == 0 || hl >= sizeof(rc->host)) {
		snprintf(why, whylen, "expected HOST:PORT or /path");
		return -1;
	}
	memcpy(rc->host, v, hl);
	rc->host[hl] = '\0';
	/* no name: resolving it would block lookup's loop */
	if (inet_pton(AF_INET, rc->host, &ia) != 1) {
		snprintf(why, whylen, "\"%.64s\" is not a numeric IPv4 "
		    "address", rc->host);
		return -1;
	}
	rc->port = (int)port;
	return 0;
}

/* the template, split into words; "%s" must appear, "%%" is '%' */
static struct redis_command *
parse_command(const char *v, char *why, size_t whylen)
{
	struct redis_command	*cmd;
	const char		*p, *start;
	size_t			 n;
	int			 haskey = 0;

	if ((cmd = calloc(1, sizeof(*cmd))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	for (p = v; *p != '\0';) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		for (start = p; *p != '\0' && *p != ' ' && *p != '\t'; p++)
			if (*p == '%') {
				if (p[1] == 's')
					haskey = 1;
				else if (p[1] != '%') {
					snprintf(why, whylen, "only %%s (the "
					    "key) and %%%% may follow a %%");
					goto bad;
				}
				p++;
			}
		n = (size_t)(p - start);
		if (cmd->argc == REDIS_WORDS_MAX) {
			snprintf(why, whylen, "more than %d words",
			    REDIS_WORDS_MAX);
			goto bad;
		}
		if (n > REDIS_WORD_MAX) {
			snprintf(why, whylen, "a word longer than %d bytes",
			    REDIS_WORD_MAX);
			goto bad;
		}
		if ((cmd->argv[cmd->argc] = strndup(start, n)) == NULL) {
			snprintf(why, whylen, "out of memory");
			goto bad;
		}
		cmd->argc++;
	}
	if (!haskey) {
		snprintf(why, whylen, "no %%s for the key");
		goto bad;
	}
	return cmd;
bad:
	redis_command_free_argv(cmd->argc, cmd->argv);
	free(cmd);
	return NULL;
}

void
redis_conf_free(struct redis_conf *rc)
{
	int	i;

	if (rc->password != NULL)
		freezero(rc->password, strlen(rc->password) + 1);
	rc->password = NULL;
	for (i = 0; i < TS_COUNT; i++) {
		if (rc->query[i] == NULL)
			continue;
		redis_command_free_argv(rc->query[i]->argc,
		    rc->query[i]->argv);
		free(rc->query[i]);
		rc->query[i] = NULL;
	}
}

int
redis_conf_parse(const char *file, const char *text, size_t len,
    struct redis_conf *rc, char *err, size_t errlen)
{
	char		 line[LINE_MAX_LEN], why[256];
	const char	*p = text, *end = text + len, *nl;
	char		*kw, *v, *e;
	size_t		 n;
	long		 num;
	int		 lineno = 0, i, seen_server = 0, seen_db = 0;
	int		 seen_timeout = 0, seen_pool = 0, any = 0;

	memset(rc, 0, sizeof(*rc));
	rc->database = -1;
	rc->timeout_ms = REDIS_TIMEOUT_DEFAULT;
	rc->pool = 2;
	if (memchr(text, '\0', len) != NULL)
		return table_conf_error(err, errlen, file, 0,
		    "NUL byte in the file");
	while (p < end) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (n >= sizeof(line)) {
			table_conf_error(err, errlen, file, lineno,
			    "line longer than %d bytes", LINE_MAX_LEN - 1);
			goto bad;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl < end ? nl + 1 : end;
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		for (kw = line; *kw == ' ' || *kw == '\t'; kw++)
			;
		if (*kw == '\0' || *kw == '#')
			continue;
		for (v = kw; *v != '\0' && *v != ' ' && *v != '\t'; v++)
			;
		if (*v != '\0')
			*v++ = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' ||
		    e[-1] == '\t'); e--)
			;
		*e = '\0';
		for (e = v; *e != '\0'; e++)
			if ((unsigned char)*e < 0x20 && *e != '\t') {
				table_conf_error(err, errlen, file, lineno,
				    "control character in the line");
				goto bad;
			}
		if (*v == '\0') {
			table_conf_error(err, errlen, file, lineno, "\"%.40s\" "
			    "needs a value", kw);
			goto bad;
		}
		if (strcmp(kw, "server") == 0) {
			if (seen_server++) {
				table_conf_error(err, errlen, file, lineno,
				    "server given twice");
				goto bad;
			}
			if (parse_server(v, rc, why, sizeof(why)) == -1) {
				table_conf_error(err, errlen, file, lineno,
				    "server: %s", why);
				goto bad;
			}
		} else if (strcmp(kw, "password") == 0) {
			if (rc->password != NULL) {
				table_conf_error(err, errlen, file, lineno,
				    "password given twice");
				goto bad;
			}
			if (strlen(v) > REDIS_PASSWORD_MAX) {
				table_conf_error(err, errlen, file, lineno,
				    "password longer than %d bytes",
				    REDIS_PASSWORD_MAX);
				goto bad;
			}
			if ((rc->password = strdup(v)) == NULL) {
				table_conf_error(err, errlen, file, lineno,
				    "out of memory");
				goto bad;
			}
		} else if (strcmp(kw, "database") == 0) {
			if (seen_db++ || (num = parse_number(v, 0,
			    INT_MAX)) == -1) {
				table_conf_error(err, errlen, file, lineno,
				    "database: expected one number");
				goto bad;
			}
			rc->database = num;
		} else if (strcmp(kw, "timeout") == 0) {
			num = parse_duration_ms(v);
			if (seen_timeout++ || num < 100 || num > 300000) {
				table_conf_error(err, errlen, file, lineno,
				    "timeout: expected one duration from "
				    "100ms to 5m (e.g. 5s)");
				goto bad;
			}
			rc->timeout_ms = (int)num;
		} else if (strcmp(kw, "pool") == 0) {
			if (seen_pool++ || (num = parse_number(v, 1,
			    REDIS_POOL_MAX)) == -1) {
				table_conf_error(err, errlen, file, lineno,
				    "pool: expected one number from 1 to %d",
				    REDIS_POOL_MAX);
				goto bad;
			}
			rc->pool = (int)num;
		} else {
			i = (int)table_query_keyword(kw);
			if (i == TS_COUNT) {
				table_conf_error(err, errlen, file, lineno,
				    "unknown keyword \"%.40s\"", kw);
				goto bad;
			}
			if (rc->query[i] != NULL) {
				table_conf_error(err, errlen, file, lineno,
				    "%s given twice", kw);
				goto bad;
			}
			if ((rc->query[i] = parse_command(v, why,
			    sizeof(why))) == NULL) {
				table_conf_error(err, errlen, file, lineno,
				    "%s: %s",
				    kw, why);
				goto bad;
			}
			any = 1;
		}
	}
	if (!seen_server) {
		table_conf_error(err, errlen, file, 0, "no \"server\" line");
		goto bad;
	}
	if (!any) {
		table_conf_error(err, errlen, file, 0, "no query_SERVICE line "
		    "(query_alias, query_domain ...)");
		goto bad;
	}
	explicit_bzero(line, sizeof(line));
	return 0;
bad:
	explicit_bzero(line, sizeof(line));
	redis_conf_free(rc);
	return -1;
}

const char *
redis_conf_server(const struct redis_conf *rc, char *buf, size_t len)
{
	if (rc->unix_path[0] != '\0')
		snprintf(buf, len, "%s", rc->unix_path);
	else
		snprintf(buf, len, "%s:%d", rc->host, rc->port);
	return buf;
}

void
redis_command_free_argv(int argc, char **argv)
{
	int	i;

	for (i = 0; i < argc; i++) {
		free(argv[i]);
		argv[i] = NULL;
	}
}

int
redis_command_expand(const struct redis_command *cmd, const char *key,
    char **argv, size_t *argvlen)
{
	const char	*w;
	char		*out;
	size_t		 klen = strlen(key), n, o;
	int		 i;

	for (i = 0; i < cmd->argc; i++) {
		/* at most as many keys as half the word's bytes */
		w = cmd->argv[i];
		n = strlen(w) + 1 + (strlen(w) / 2) * klen;
		if ((out = malloc(n)) == NULL) {
			redis_command_free_argv(i, argv);
			return -1;
		}
		for (o = 0; *w != '\0'; w++) {
			if (w[0] == '%' && w[1] == 's') {
				memcpy(out + o, key, klen);
				o += klen;
				w++;
			} else if (w[0] == '%' && w[1] == '%') {
				out[o++] = '%';
				w++;
			} else
				out[o++] = *w;
		}
		out[o] = '\0';
		argv[i] = out;
		argvlen[i] = o;
	}
	return 0;
}

/*
 * Replies
 */

static int
reply_text(const redisReply *r, const char **s, size_t *len, char *buf,
    size_t buflen)
{
	switch (r->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
		if (memchr(r->str, '\0', (size_t)r->len) != NULL)
			return -1;
		*s = r->str;
		*len = (size_t)r->len;
		return 0;
	case REDIS_REPLY_INTEGER:
		*len = (size_t)snprintf(buf, buflen, "%lld", r->integer);
		*s = buf;
		return 0;
	default:
		return -1;
	}
}

int
redis_reply_answer(const redisReply *r, enum table_service service,
    char **value, char *why, size_t whylen)
{
	const char	*s, *sep;
	char		 num[32], *out;
	size_t		 i, len, total, seplen, o;
	int		 n;

	*value = NULL;
	switch (r->type) {
	case REDIS_REPLY_NIL:
		return TABLE_NOTFOUND;
	case REDIS_REPLY_ERROR:
		snprintf(why, whylen, "error reply: %.*s",
		    (int)(r->len > 200 ? 200 : r->len), r->str);
		return TABLE_ERROR;
	case REDIS_REPLY_INTEGER:
		if (r->integer == 0)
			return TABLE_NOTFOUND;
		/* FALLTHROUGH */
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
		if (reply_text(r, &s, &len, num, sizeof(num)) == -1 ||
		    len > TABLE_VALUE_MAX) {
			snprintf(why, whylen, "a NUL byte in the reply, or "
			    "longer than %d bytes", TABLE_VALUE_MAX);
			return TABLE_ERROR;
		}
		if ((*value = strndup(s, len)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return TABLE_ERROR;
		}
		return TABLE_FOUND;
	case REDIS_REPLY_ARRAY:
		break;
	default:
		snprintf(why, whylen, "unexpected reply type %d", r->type);
		return TABLE_ERROR;
	}
	sep = service == TS_USERINFO ? ":" : ", ";
	seplen = strlen(sep);
	total = 0;
	n = 0;
	for (i = 0; i < r->elements; i++) {
		if (r->element[i]->type == REDIS_REPLY_NIL)
			continue;
		if (reply_text(r->element[i], &s, &len, num,
		    sizeof(num)) == -1) {
			snprintf(why, whylen, "a list holding something "
			    "else than strings and numbers");
			return TABLE_ERROR;
		}
		total += len + (n++ > 0 ? seplen : 0);
		if (total > TABLE_VALUE_MAX) {
			snprintf(why, whylen, "a list longer than %d bytes",
			    TABLE_VALUE_MAX);
			return TABLE_ERROR;
		}
	}
	if (n == 0)
		return TABLE_NOTFOUND;
	if ((out = malloc(total + 1)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return TABLE_ERROR;
	}
	for (i = 0, o = 0, n = 0; i < r->elements; i++) {
		if (r->element[i]->type == REDIS_REPLY_NIL)
			continue;
		(void)reply_text(r->element[i], &s, &len, num, sizeof(num));
		if (n++ > 0) {
			memcpy(out + o, sep, seplen);
			o += seplen;
		}
		memcpy(out + o, s, len);
		o += len;
	}
	out[o] = '\0';
	*value = out;
	return TABLE_FOUND;
}

/*
 * The connections
 */

struct redis;

struct rconn {
	struct redis		*r;
	redisAsyncContext	*ac;		/* NULL: closed */
	int			 connected;
	int			 inflight;	/* queries sent, unanswered */
	struct event		*timer;		/* the connection attempt */
};

struct redis {
	const struct table	*t;
	struct redis_conf	 conf;
	struct event_base	*base;
	struct rconn		 conns[REDIS_POOL_MAX];
	struct table_outage	 outage;
	int			 reply_logged;	/* an error reply, logged */
	char			 server[128];
};

/* one query on a connection */
struct rquery {
	struct redis		*r;
	struct rconn		*c;
	redisAsyncContext	*ac;	/* c->ac when it was sent */
	struct table_query	*q;	/* NULL: already answered */
	struct event		*timer;
};

/* the server failed us: answers are errors until the back-off is over */
static void
redis_outage(struct redis *r, const char *why)
{
	table_outage_fail(&r->outage, r->t, r->server, why);
}

/* forget the context (hiredis frees it, or we do) */
static void
conn_forget(struct rconn *c)
{
	if (c->ac != NULL)
		c->ac->data = NULL;
	c->ac = NULL;
	c->connected = 0;
	c->inflight = 0;
	if (c->timer != NULL)
		evtimer_del(c->timer);
}

/* drop a connection: its pending queries are answered TABLE_ERROR */
static void
conn_drop(struct rconn *c, const char *why)
{
	redisAsyncContext	*ac = c->ac;

	if (ac == NULL)
		return;
	if (why != NULL)
		redis_outage(c->r, why);
	conn_forget(c);
	redisAsyncFree(ac);
}

static void
redis_connect_cb(const redisAsyncContext *ac, int status)
{
	struct rconn	*c = ac->data;

	if (c == NULL)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this */
		conn_forget(c);
		redis_outage(c->r, ac->errstr[0] != '\0' ? ac->errstr :
		    "cannot connect");
		return;
	}
	evtimer_del(c->timer);
	c->connected = 1;
	/* the outage ends with the first reply (AUTH may still fail) */
}

static void
redis_disconnect_cb(const redisAsyncContext *ac, int status)
{
	struct rconn	*c = ac->data;
	int		 busy;

	if (c == NULL)
		return;
	busy = c->inflight > 0;
	conn_forget(c);
	/* closed while idle (the server's idle timeout): no outage */
	if (status != REDIS_OK && busy)
		redis_outage(c->r, ac->errstr[0] != '\0' ? ac->errstr :
		    "connection lost");
}

static void
conn_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct rconn	*c = arg;

	(void)fd;
	(void)ev;
	conn_drop(c, "no connection within the timeout");
}

/* AUTH and SELECT: an error reply drops the connection */
static void
redis_setup_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rconn	*c = ac->data;
	redisReply	*rr = reply;
	char		 why[256];

	(void)privdata;
	if (c == NULL || rr == NULL || rr->type != REDIS_REPLY_ERROR)
		return;
	snprintf(why, sizeof(why), "%s refused: %.*s",
	    privdata != NULL ? "AUTH" : "SELECT",
	    (int)(rr->len > 200 ? 200 : rr->len), rr->str);
	redis_outage(c->r, why);
	conn_forget(c);
	/* freed when this callback returns; its queries fail */
	redisAsyncFree(ac);
}

static int
conn_open(struct rconn *c)
{
	struct redis		*r = c->r;
	struct timeval		 tv;
	redisAsyncContext	*ac;
	const char		*argv[2];
	size_t			 argvlen[2];
	char			 db[24];

	if (r->conf.unix_path[0] != '\0')
		ac = redisAsyncConnectUnix(r->conf.unix_path);
	else
		ac = redisAsyncConnect(r->conf.host, r->conf.port);
	if (ac == NULL) {
		redis_outage(r, "out of memory");
		return -1;
	}
	if (ac->err != 0) {
		redis_outage(r, ac->errstr);
		redisAsyncFree(ac);
		return -1;
	}
	if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
		redis_outage(r, "cannot attach to the event loop");
		redisAsyncFree(ac);
		return -1;
	}
	ac->data = c;
	c->ac = ac;
	c->connected = 0;
	c->inflight = 0;
	redisAsyncSetConnectCallback(ac, redis_connect_cb);
	redisAsyncSetDisconnectCallback(ac, redis_disconnect_cb);
	tv.tv_sec = r->conf.timeout_ms / 1000;
	tv.tv_usec = (r->conf.timeout_ms % 1000) * 1000;
	if (evtimer_add(c->timer, &tv) == -1)
		fatalx("evtimer_add");
	if (r->conf.password != NULL) {
		argv[0] = "AUTH";
		argvlen[0] = 4;
		argv[1] = r->conf.password;
		argvlen[1] = strlen(r->conf.password);
		/* privdata non-NULL: "AUTH" in the log */
		if (redisAsyncCommandArgv(ac, redis_setup_cb, c, 2, argv,
		    argvlen) != REDIS_OK) {
			conn_drop(c, "cannot send AUTH");
			return -1;
		}
	}
	if (r->conf.database >= 0) {
		snprintf(db, sizeof(db), "%ld", r->conf.database);
		argv[0] = "SELECT";
		argvlen[0] = 6;
		argv[1] = db;
		argvlen[1] = strlen(db);
		if (redisAsyncCommandArgv(ac, redis_setup_cb, NULL, 2, argv,
		    argvlen) != REDIS_OK) {
			conn_drop(c, "cannot send SELECT");
			return -1;
		}
	}
	return 0;
}

/*
 * The connection for a query: an idle open one, else a new one (unless
 * the server is in its back-off), else the least busy open one.  NULL:
 * the server is down.
 */
static struct rconn *
conn_pick(struct redis *r)
{
	struct rconn	*c, *best = NULL, *free_slot = NULL;
	int		 i;

	for (i = 0; i < r->conf.pool; i++) {
		c = &r->conns[i];
		if (c->ac == NULL) {
			if (free_slot == NULL)
				free_slot = c;
			continue;
		}
		if (best == NULL || c->inflight < best->inflight)
			best = c;
	}
	if (best != NULL && (best->inflight == 0 || free_slot == NULL))
		return best;
	if (free_slot != NULL && !table_outage_waiting(&r->outage) &&
	    conn_open(free_slot) == 0)
		return free_slot;
	return best;
}

static void
rquery_answer(struct rquery *rq, int status, const char *value)
{
	struct table_query	*q = rq->q;

	rq->q = NULL;
	if (rq->timer != NULL)
		evtimer_del(rq->timer);
	if (q != NULL)
		table_query_done(q, status, value);
}

static void
rquery_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct rquery	*rq = arg;

	(void)fd;
	(void)ev;
	rquery_answer(rq, TABLE_ERROR, NULL);
	/* what is pipelined behind it would wait as long: drop them all */
	if (rq->c->ac == rq->ac)
		conn_drop(rq->c, "no answer within the timeout");
}

static void
redis_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rquery	*rq = privdata;
	struct redis	*r = rq->r;
	struct rconn	*c = ac->data;
	char		*value = NULL, why[256];
	int		 status;

	if (c != NULL && c->inflight > 0)
		c->inflight--;
	if (reply == NULL)
		rquery_answer(rq, TABLE_ERROR, NULL);
	else if (rq->q != NULL) {
		table_outage_over(&r->outage, r->t, r->server);
		why[0] = '\0';
		status = redis_reply_answer(reply, rq->q->service, &value,
		    why, sizeof(why));
		if (status == TABLE_ERROR) {
			if (!r->reply_logged)
				log_warnx("table %s: %s \"%s\": %s",
				    r->t->name,
				    table_service_name(rq->q->service),
				    rq->q->key, why);
			r->reply_logged = 1;
		} else
			r->reply_logged = 0;
		rquery_answer(rq, status, value);
		if (value != NULL)
			freezero(value, strlen(value) + 1);
	}
	if (rq->timer != NULL)
		event_free(rq->timer);
	free(rq);
}

static void
redis_query(void *h, struct table_query *q)
{
	struct redis		*r = h;
	struct redis_command	*cmd = r->conf.query[q->service];
	struct rquery		*rq;
	struct rconn		*c;
	struct timeval		 tv;
	char			*argv[REDIS_WORDS_MAX];
	size_t			 argvlen[REDIS_WORDS_MAX];
	int			 rc;

	if (cmd == NULL || (c = conn_pick(r)) == NULL) {
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	if ((rq = calloc(1, sizeof(*rq))) == NULL ||
	    (rq->timer = evtimer_new(r->base, rquery_timeout_cb, rq)) ==
	    NULL || redis_command_expand(cmd, q->key, argv, argvlen) == -1) {
		log_warn("table %s: query", r->t->name);
		if (rq != NULL && rq->timer != NULL)
			event_free(rq->timer);
		free(rq);
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	rq->r = r;
	rq->c = c;
	rq->ac = c->ac;
	rq->q = q;
	rc = redisAsyncCommandArgv(c->ac, redis_reply_cb, rq, cmd->argc,
	    (const char **)argv, argvlen);
	redis_command_free_argv(cmd->argc, argv);
	if (rc != REDIS_OK) {
		event_free(rq->timer);
		free(rq);
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	c->inflight++;
	tv.tv_sec = r->conf.timeout_ms / 1000;
	tv.tv_usec = (r->conf.timeout_ms % 1000) * 1000;
	if (evtimer_add(rq->timer, &tv) == -1)
		fatalx("evtimer_add");
}

static void *
redis_open(const struct table *t, char *err, size_t errlen)
{
	struct redis	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (t->conf_text == NULL) {
		snprintf(err, errlen, "%.200s: not read", t->path);
		free(r);
		return NULL;
	}
	if (redis_conf_parse(t->path, t->conf_text, t->conf_len, &r->conf,
	    err, errlen) == -1) {
		free(r);
		return NULL;
	}
	r->t = t;
	redis_conf_server(&r->conf, r->server, sizeof(r->server));
	return r;
}

static int
redis_start(void *h, struct event_base *base)
{
	struct redis	*r = h;
	int		 i;

	r->base = base;
	for (i = 0; i < r->conf.pool; i++) {
		r->conns[i].r = r;
		if ((r->conns[i].timer = evtimer_new(base, conn_timeout_cb,
		    &r->conns[i])) == NULL)
			return -1;
	}
	return 0;
}

static int
redis_serves(void *h, enum table_service s)
{
	struct redis	*r = h;

	return (unsigned)s < TS_COUNT && r->conf.query[s] != NULL;
}

static void
redis_close(void *h)
{
	struct redis	*r = h;
	int		 i;

	for (i = 0; i < REDIS_POOL_MAX; i++) {
		conn_drop(&r->conns[i], NULL);
		if (r->conns[i].timer != NULL)
			event_free(r->conns[i].timer);
	}
	redis_conf_free(&r->conf);
	free(r);
}

const struct table_driver table_driver_redis = {
	.scheme = "redis",
	.has_file = 1,
	.open = redis_open,
	.start = redis_start,
	.serves = redis_serves,
	.query = redis_query,
	.close = redis_close,
};
