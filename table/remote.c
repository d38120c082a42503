/*
 * remote.c -- the shared tables (pgsql:, ldap:, redis:, socketmap:,
 * proc:): their configuration files, the cache of their answers, and
 * the requests that wait for one.
 *
 * Sites with several mail hosts keep users, aliases, domains and
 * credentials in a database.  The lookup process asks it without ever
 * blocking its event loop: a question whose answer is not cached starts
 * a query (backend.h) and the request that asked is parked; it runs
 * again from the start when the answer is in (table.h explains why that
 * is safe).  Answers are cached for the table's cache-ttl, "not found"
 * for its negative-ttl; a failure is not cached, it is seen only by the
 * requests that waited for it (a temporary failure for their clients),
 * and the next question asks again.  Two requests asking the same thing
 * share one query.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "log.h"
#include "proc.h"
#include "table.h"
#include "util.h"

#define QUERY_TIMEOUT	15	/* seconds, whatever the backend says */
#define OUTAGE_FIRST	1	/* seconds: a driver's first back-off */
#define OUTAGE_MAX	30
#define CACHE_MAX	65536	/* entries, all tables */
#define CACHE_BUCKETS	4096
#define STALL_RUNS	32	/* replays of one request */
#define CONF_FILE_MAX	(64 * 1024)

static const struct table_driver *const backends[] = {
	&table_driver_pgsql,
	&table_driver_ldap,
	&table_driver_redis,
	&table_driver_socketmap,
	&table_driver_proc,
};

static const char *const service_names[TS_COUNT] = {
	[TS_STRING] = "string",
	[TS_ALIAS] = "alias",
	[TS_DOMAIN] = "domain",
	[TS_CREDENTIALS] = "credentials",
	[TS_NETADDR] = "netaddr",
	[TS_USERINFO] = "userinfo",
	[TS_MAILADDR] = "mailaddr",
	[TS_MAILADDRMAP] = "mailaddrmap",
};

enum entry_state {
	E_NEW,		/* never asked */
	E_PENDING,
	E_FOUND,
	E_NOTFOUND,
	E_ERROR,
};

struct waiter {
	struct waiter		*next;
	struct table_stall	*stall;
};

struct entry {
	struct entry		*next;		/* hash chain */
	const struct table	*t;
	enum table_service	 service;
	char			*key;
	uint32_t		 hash;
	enum entry_state	 state;
	char			*value;
	time_t			 expires;	/* monotonic */
	int			 pins;
	int			 stale;		/* flushed while pinned */
	struct waiter		*waiters;
	struct table_query	*q;		/* while pending */
	struct event		*timer;		/* the query's deadline */
};

struct table_pin {
	struct table_pin	*next;
	struct entry		*e;
};

/* lookup's handle on each shared table */
struct remote {
	const struct table		*t;
	const struct table_driver	*be;
	void				*h;	/* NULL: could not start */
};

static struct remote		*remotes;
static size_t			 nremotes;
static struct entry		*buckets[CACHE_BUCKETS];
static size_t			 nentries;
static struct table_stall	*current;
static struct event_base	*base;

const char *
table_service_name(enum table_service s)
{
	return (unsigned)s < TS_COUNT ? service_names[s] : NULL;
}

int
table_service_parse(const char *name, enum table_service *s)
{
	int	i;

	for (i = 0; i < TS_COUNT; i++)
		if (strcmp(name, service_names[i]) == 0) {
			*s = (enum table_service)i;
			return 0;
		}
	return -1;
}

int
table_is_remote(const struct table *t)
{
	return t->backend == TABLE_REMOTE;
}

static const struct table_driver *
backend_of(const struct table *t)
{
	size_t	i;

	for (i = 0; i < sizeof(backends) / sizeof(*backends); i++)
		if (strcmp(backends[i]->scheme, t->scheme) == 0)
			return backends[i];
	return NULL;
}

static time_t
now_mono(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ts.tv_sec;
}

/* FNV-1a over the table, the service and the key */
static uint32_t
entry_hash(const struct table *t, enum table_service s, const char *key)
{
	uint32_t	h = 2166136261u;
	uintptr_t	p = (uintptr_t)t;
	size_t		i;

	for (i = 0; i < sizeof(p); i++, p >>= 8)
		h = (h ^ (p & 0xff)) * 16777619u;
	h = (h ^ (uint32_t)s) * 16777619u;
	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h;
}

static void
entry_unlink(struct entry *e)
{
	struct entry	**pp;

	for (pp = &buckets[e->hash % CACHE_BUCKETS]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			nentries--;
			return;
		}
	fatalx("table cache: entry not in its chain");
}

static void
entry_free(struct entry *e)
{
	if (e->value != NULL)
		freezero(e->value, strlen(e->value) + 1);
	free(e->key);
	free(e);
}

/* an unpinned, answered entry may go */
static int
entry_idle(const struct entry *e)
{
	return e->state != E_PENDING && e->pins == 0;
}

/* too many entries: the expired ones go, then every idle one */
static void
cache_sweep(void)
{
	struct entry	*e, *next;
	time_t		 now = now_mono();
	size_t		 i;
	int		 pass;

	for (pass = 0; pass < 2 && nentries >= CACHE_MAX; pass++)
		for (i = 0; i < CACHE_BUCKETS; i++)
			for (e = buckets[i]; e != NULL; e = next) {
				next = e->next;
				if (entry_idle(e) &&
				    (pass == 1 || e->expires <= now)) {
					entry_unlink(e);
					entry_free(e);
				}
			}
}

static void
stall_resume_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct table_stall	*s = arg;

	void			(*resume)(void *) = s->resume;

	(void)fd;
	(void)ev;
	s->resume = NULL;	/* running, not parked */
	resume(s->arg);
}

/* one answer in: wake the requests that have all theirs */
static void
entry_wake(struct entry *e)
{
	struct waiter		*w, *next;
	struct timeval		 now = { 0, 0 };

	for (w = e->waiters; w != NULL; w = next) {
		next = w->next;
		if (--w->stall->waiting == 0 && w->stall->resume != NULL &&
		    event_base_once(base, -1, EV_TIMEOUT, stall_resume_cb,
		    w->stall, &now) == -1)
			fatalx("event_base_once");
		free(w);
	}
	e->waiters = NULL;
}

void
table_query_done(struct table_query *q, int status, const char *value)
{
	struct entry	*e = q->priv;
	const char	*v = value != NULL ? value : "";
	const char	*p;

	free((char *)q->key);
	free(q);
	if (e == NULL)
		return;		/* timed out earlier: the answer is late */
	e->q = NULL;
	e->stale = 0;		/* asked after the flush */
	if (e->timer != NULL) {
		event_free(e->timer);
		e->timer = NULL;
	}
	if (status == TABLE_FOUND) {
		for (p = v; *p; p++)
			if (*p == '\r' || *p == '\n')
				break;
		if (*p != '\0' || strlen(v) > TABLE_VALUE_MAX) {
			log_warnx("table %s: %s answer for \"%s\" refused "
			    "(a line break, or longer than %d bytes)",
			    e->t->name, table_service_name(e->service),
			    e->key, TABLE_VALUE_MAX);
			status = TABLE_ERROR;
		}
	}
	switch (status) {
	case TABLE_FOUND:
		if ((e->value = strdup(v)) == NULL) {
			log_warn("table %s: strdup", e->t->name);
			e->state = E_ERROR;
			e->expires = 0;
			break;
		}
		e->state = E_FOUND;
		e->expires = now_mono() + e->t->cache_ttl;
		break;
	case TABLE_NOTFOUND:
		e->state = E_NOTFOUND;
		e->expires = now_mono() + e->t->negative_ttl;
		break;
	default:
		e->state = E_ERROR;
		e->expires = 0;		/* only for the requests waiting */
		break;
	}
	entry_wake(e);
}

static void
query_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct entry	*e = arg;

	(void)fd;
	(void)ev;
	log_warnx("table %s: no answer for %s \"%s\" in %d seconds",
	    e->t->name, table_service_name(e->service), e->key,
	    QUERY_TIMEOUT);
	/* the query stays the backend's; its answer, if ever, is dropped */
	e->q->priv = NULL;
	e->q = NULL;
	event_free(e->timer);
	e->timer = NULL;
	e->state = E_ERROR;
	e->expires = 0;
	entry_wake(e);
}

static struct remote *
remote_of(const struct table *t)
{
	size_t	i;

	for (i = 0; i < nremotes; i++)
		if (remotes[i].t == t)
			return &remotes[i];
	return NULL;
}

static void
pin(struct table_stall *s, struct entry *e)
{
	struct table_pin	*p;

	for (p = s->pins; p != NULL; p = p->next)
		if (p->e == e)
			return;
	if ((p = malloc(sizeof(*p))) == NULL)
		fatal("malloc");
	p->e = e;
	p->next = s->pins;
	s->pins = p;
	e->pins++;
}

static void
wait_for(struct table_stall *s, struct entry *e)
{
	struct waiter	*w;

	if ((w = malloc(sizeof(*w))) == NULL)
		fatal("malloc");
	w->stall = s;
	w->next = e->waiters;
	e->waiters = w;
	s->waiting++;
	s->stalled = 1;
}

/* ask the backend; the answer may come before this returns */
static void
entry_ask(struct remote *r, struct entry *e)
{
	struct table_query	*q;
	struct timeval		 tv = { QUERY_TIMEOUT, 0 };

	e->state = E_PENDING;
	e->stale = 0;
	if (e->value != NULL) {
		freezero(e->value, strlen(e->value) + 1);
		e->value = NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		fatal("calloc");
	q->table = e->t;
	q->service = e->service;
	/* the query's own: a late answer may outlive the entry */
	if ((q->key = strdup(e->key)) == NULL)
		fatal("strdup");
	q->priv = e;
	e->q = q;
	if ((e->timer = evtimer_new(base, query_timeout_cb, e)) == NULL ||
	    evtimer_add(e->timer, &tv) == -1)
		fatalx("evtimer");
	if (r->h == NULL || !r->be->serves(r->h, e->service)) {
		if (r->h != NULL)
			log_warnx("table %s: no query for the %s service",
			    e->t->name, table_service_name(e->service));
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	r->be->query(r->h, q);
}

/*
 * The answer to (t, service, key) when cached; else a query is started,
 * the current request is stalled, and TABLE_ERROR is answered (the
 * request's reply is dropped).  *val is malloc'd for TABLE_FOUND.
 */
int
table_remote_get(struct table *t, enum table_service service,
    const char *key, char **val)
{
	struct remote	*r;
	struct entry	*e;
	uint32_t	 h;
	time_t		 now;
	char		 lk[TABLE_KEY_MAX + 1];
	size_t		 i;

	if (val != NULL)
		*val = NULL;
	if ((r = remote_of(t)) == NULL) {
		log_warnx("table %s: not open in this process", t->name);
		return TABLE_ERROR;
	}
	if (strlen(key) > TABLE_KEY_MAX)
		return TABLE_NOTFOUND;
	for (i = 0; key[i]; i++) {
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return TABLE_NOTFOUND;
		lk[i] = (char)tolower((unsigned char)key[i]);
	}
	lk[i] = '\0';
	h = entry_hash(t, service, lk);
	for (e = buckets[h % CACHE_BUCKETS]; e != NULL; e = e->next)
		if (e->hash == h && e->t == t && e->service == service &&
		    strcmp(e->key, lk) == 0)
			break;
	now = now_mono();
	if (e != NULL && e->state != E_PENDING && e->state != E_NEW &&
	    !e->stale && (e->expires > now || e->pins > 0)) {
		if (current != NULL)
			pin(current, e);
		if (e->state == E_ERROR)
			return TABLE_ERROR;
		if (e->state == E_NOTFOUND)
			return TABLE_NOTFOUND;
		if (val != NULL && (*val = strdup(e->value)) == NULL)
			return TABLE_ERROR;
		return TABLE_FOUND;
	}
	if (current != NULL && current->runs > STALL_RUNS) {
		log_warnx("table %s: more than %d rounds of questions for "
		    "one request", t->name, STALL_RUNS);
		return TABLE_ERROR;
	}
	if (e == NULL) {
		if (nentries >= CACHE_MAX)
			cache_sweep();
		if ((e = calloc(1, sizeof(*e))) == NULL ||
		    (e->key = strdup(lk)) == NULL)
			fatal("calloc");
		e->t = t;
		e->service = service;
		e->hash = h;
		e->next = buckets[h % CACHE_BUCKETS];
		buckets[h % CACHE_BUCKETS] = e;
		nentries++;
	}
	/*
	 * A question outside a request that can be parked (the inbound
	 * checks' trusted networks): a temporary "no", and the answer is
	 * fetched for the next time.
	 */
	if (current == NULL) {
		if (e->state != E_PENDING)
			entry_ask(r, e);
		return TABLE_ERROR;
	}
	pin(current, e);
	if (e->state == E_PENDING) {
		wait_for(current, e);
		return TABLE_ERROR;
	}
	/* expired, or flushed (a pinned stale entry is asked again) */
	wait_for(current, e);
	entry_ask(r, e);
	return TABLE_ERROR;
}

void
table_stall_begin(struct table_stall *s)
{
	if (current != NULL)
		fatalx("table_stall_begin: a request is already running");
	current = s;
}

int
table_stall_end(void)
{
	struct table_stall	*s = current;

	current = NULL;
	return s != NULL && s->stalled && s->resume == NULL;
}

void
table_stall_park(struct table_stall *s, void (*resume)(void *), void *arg)
{
	struct timeval	now = { 0, 0 };

	s->resume = resume;
	s->arg = arg;
	s->stalled = 0;		/* the next run starts afresh */
	s->runs++;
	if (current == s)
		current = NULL;	/* the run is over */
	/* every answer came within the run itself: go again now */
	if (s->waiting == 0 && event_base_once(base, -1, EV_TIMEOUT,
	    stall_resume_cb, s, &now) == -1)
		fatalx("event_base_once");
}

void
table_stall_done(struct table_stall *s)
{
	struct table_pin	*p;
	struct entry		*e;

	if (s->waiting != 0)
		fatalx("table_stall_done: answers still awaited");
	if (current == s)
		current = NULL;	/* the run is over */
	while ((p = s->pins) != NULL) {
		s->pins = p->next;
		e = p->e;
		free(p);
		if (--e->pins == 0 && e->state != E_PENDING &&
		    (e->stale || e->expires <= now_mono())) {
			entry_unlink(e);
			entry_free(e);
		}
	}
	memset(s, 0, sizeof(*s));
}

void
table_remote_flush(const struct table *t)
{
	struct entry	*e, *next;
	size_t		 i;

	for (i = 0; i < CACHE_BUCKETS; i++)
		for (e = buckets[i]; e != NULL; e = next) {
			next = e->next;
			if (e->t != t)
				continue;
			if (entry_idle(e)) {
				entry_unlink(e);
				entry_free(e);
			} else
				e->stale = 1;
		}
}

/* a table read once at start (by the mta or the parent) */
static int
read_at_start(const struct smtpd_config *c, const struct table *t,
    const char **what)
{
	const struct action	*a;

	TAILQ_FOREACH(a, &c->actions, entry)
		if (strcmp(a->relay_auth_table, t->name) == 0) {
			*what = "a relay's credentials";
			return 1;
		}
	if (strcmp(c->mta_tls_policy, t->name) == 0) {
		*what = "the TLS policy";
		return 1;
	}
	if (strcmp(c->dkim_sign_table, t->name) == 0) {
		*what = "the DKIM signing keys";
		return 1;
	}
	return 0;
}

static char *
read_conf_file(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat	 sb;
	char		*buf;
	ssize_t		 n;
	size_t		 got = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		snprintf(err, errlen, "%.200s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > CONF_FILE_MAX) {
		snprintf(err, errlen, "%.200s: not a regular file of at most %d "
		    "bytes", path, CONF_FILE_MAX);
		close(fd);
		return NULL;
	}
	if ((buf = malloc((size_t)sb.st_size + 1)) == NULL)
		fatal("malloc");
	while (got < (size_t)sb.st_size &&
	    (n = read(fd, buf + got, (size_t)sb.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	if (memchr(buf, '\0', got) != NULL) {
		snprintf(err, errlen, "%.200s: NUL byte in the file", path);
		freezero(buf, got + 1);
		return NULL;
	}
	*len = got;
	return buf;
}

int
table_remote_load(struct smtpd_config *c, FILE *out)
{
	const struct table_driver	*be;
	struct table			*t;
	const char			*what;
	char				 err[1024];
	void				*h;
	int				 nerr = 0;

	TAILQ_FOREACH(t, &c->tables, entry) {
		if (t->backend != TABLE_REMOTE)
			continue;
		err[0] = '\0';
		if ((be = backend_of(t)) == NULL)
			fatalx("table %s: unknown scheme %s", t->name,
			    t->scheme);
		if (read_at_start(c, t, &what)) {
			snprintf(err, sizeof(err), "a %s: table cannot hold "
			    "%s (read once at start): use file: or db:",
			    t->scheme, what);
			goto bad;
		}
		if (be->has_file && t->conf_text == NULL &&
		    (t->conf_text = read_conf_file(t->path, &t->conf_len, err,
		    sizeof(err))) == NULL)
			goto bad;
		if ((h = be->open(t, err, sizeof(err))) == NULL)
			goto bad;
		be->close(h);
		continue;
bad:
		nerr++;
		if (out != NULL)
			fprintf(out, "table %s (line %d): %s\n", t->name,
			    t->line, err);
		else
			log_warnx("table %s (line %d): %s", t->name, t->line,
			    err);
	}
	return nerr;
}

void
table_remote_start(struct event_base *eb)
{
	struct table	*t;
	struct remote	*r;
	char		 err[1024];

	base = eb;
	TAILQ_FOREACH(t, &conf->tables, entry) {
		if (t->backend != TABLE_REMOTE)
			continue;
		if ((r = reallocarray(remotes, nremotes + 1,
		    sizeof(*remotes))) == NULL)
			fatal("reallocarray");
		remotes = r;
		r = &remotes[nremotes++];
		r->t = t;
		if ((r->be = backend_of(t)) == NULL)
			fatalx("table %s: unknown scheme %s", t->name,
			    t->scheme);
		err[0] = '\0';
		if ((r->h = r->be->open(t, err, sizeof(err))) == NULL) {
			log_warnx("table %s: %s", t->name, err);
			continue;
		}
		if (r->be->start != NULL && r->be->start(r->h, eb) == -1) {
			log_warnx("table %s: could not start: it answers "
			    "with temporary failures", t->name);
			r->be->close(r->h);
			r->h = NULL;
		}
	}
}

void
table_outage_fail(struct table_outage *o, const struct table *t,
    const char *server, const char *why)
{
	time_t	now = now_mono();

	/* another connection of the same outage: one back-off step */
	if (o->retry_at != 0 && now < o->retry_at)
		return;
	o->backoff = o->backoff == 0 ? OUTAGE_FIRST :
	    o->backoff * 2 > OUTAGE_MAX ? OUTAGE_MAX : o->backoff * 2;
	o->retry_at = now + o->backoff;
	if (o->down)
		return;
	o->down = 1;
	log_warnx("table %s: %s server %s: %s: its answers are temporary "
	    "failures until it is back", t->name, t->scheme, server, why);
}

void
table_outage_over(struct table_outage *o, const struct table *t,
    const char *server)
{
	o->backoff = 0;
	o->retry_at = 0;
	if (!o->down)
		return;
	o->down = 0;
	log_info("table %s: %s server %s is back", t->name, t->scheme,
	    server);
}

int
table_outage_waiting(const struct table_outage *o)
{
	return o->retry_at != 0 && now_mono() < o->retry_at;
}

int
table_conf_error(char *err, size_t errlen, const char *file, int line,
    const char *fmt, ...)
{
	char	why[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(err, errlen, "%.200s:%d: %s", file, line, why);
	else
		snprintf(err, errlen, "%.200s: %s", file, why);
	return -1;
}

enum table_service
table_query_keyword(const char *kw)
{
	enum table_service	s;

	if (strncmp(kw, "query_", 6) != 0 ||
	    table_service_parse(kw + 6, &s) == -1)
		return TS_COUNT;
	return s;
}
