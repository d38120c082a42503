/*
 * ldap.c -- the ldap: shared-table backend (backend.h), on OpenLDAP's
 * libldap, in the lookup process, without ever blocking its event loop.
 *
 * The configuration file is parsed by ldap_conf.c.  Each table keeps a
 * pool of connections ("pool N", 2 by default), each an LDAP handle of
 * its own, made when the first query comes and one more whenever every
 * bound one has a search in flight; a search goes to the bound
 * connection with the fewest (LDAP multiplexes them by message id).
 * libldap is used only through its asynchronous calls:
 *
 *   - connect: LDAP_OPT_CONNECT_ASYNC makes ldap_sasl_bind() answer
 *     LDAP_X_CONNECTING while the TCP connection is in progress; we wait
 *     for the socket (LDAP_OPT_DESC) to be writable and call it again,
 *     which sends the simple bind;
 *   - once connected, libldap has put the socket back in blocking mode:
 *     we set O_NONBLOCK again, so that its reads and writes return
 *     EAGAIN (which it handles: a partial message waits in its buffer)
 *     rather than block;
 *   - questions are ldap_search_ext() with their message id, answers
 *     are read by ldap_result() with a zero timeout (a poll) whenever
 *     libevent says the socket is readable.
 *
 * A query waits in the table's queue until a connection is bound; each
 * has its deadline ("timeout DUR", 5 s) from the moment it was asked:
 * past it, the search is abandoned (ldap_abandon_ext) and the answer is
 * TABLE_ERROR.  When a connection cannot be made or bound and no other
 * is bound, the table is down: every query is answered TABLE_ERROR at
 * once (a temporary failure for the client, never "not found"), the
 * outage is logged once, and a new connection is tried after 1 s, then
 * 2, 4 ... up to 30 s.  A
 * connection that breaks after it was bound (the server restarted, an
 * idle timeout) fails the searches it carried and is made again when
 * next needed; one that cannot be made while others serve is not tried
 * again for 30 s.
 *
 * The key is an RFC 4515 assertion value (ldap_filter_expand()), never
 * filter text.  The answer is built from the entries found:
 *
 *   alias, mailaddrmap   every value of the attribute in every entry,
 *                        joined with ", ";
 *   credentials          the one entry's value, "{CRYPT}" taken off the
 *                        front (userPassword's scheme for a crypt(3)
 *                        hash); a value under another scheme is not
 *                        usable and counts as no entry;
 *   userinfo             the one entry's three attributes as uid:gid:home;
 *   others               membership: any entry is found (with its
 *                        attribute's values as the value, if one is
 *                        configured).
 *
 * Two entries for credentials or userinfo are an error: which password
 * or which home would be a guess.  An entry without the attributes a
 * service needs is passed over.
 */
#include <sys/types.h>
#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <lber.h>
#include <ldap.h>

#include "backend.h"
#include "ldap_conf.h"
#include "log.h"
#include "util.h"

#define BACKOFF_FIRST	1	/* seconds before the first new attempt */
#define BACKOFF_MAX	30
#define INFLIGHT_MAX	32	/* searches on one connection at a time */
#define FILTER_MAX	(LDAP_CONF_FILTER_MAX + 3 * TABLE_KEY_MAX)
#define RETRY_BUSY_MS	20	/* libldap still writing a request */

struct ldtable;

enum conn_state {
	C_DOWN,			/* no handle */
	C_CONNECTING,		/* TCP connect in progress */
	C_BINDING,		/* bind sent */
	C_READY,
};

struct ldquery {
	TAILQ_ENTRY(ldquery)	 entry;		/* queue, or a conn's */
	struct ldtable		*tab;
	struct table_query	*q;
	struct ldconn		*conn;		/* NULL: in the queue */
	int			 msgid;
	struct event		*timer;		/* the deadline */
	char			*value;		/* built from the entries */
	size_t			 vlen;
	int			 nentries;
	const char		*failed;	/* why the answer is refused */
};
TAILQ_HEAD(ldquery_list, ldquery);

struct ldconn {
	struct ldtable		*tab;
	int			 id;
	enum conn_state		 state;
	LDAP			*ld;
	int			 fd;
	int			 bind_msgid;
	struct event		*ev;		/* the socket */
	struct event		*timer;		/* connect and bind deadline */
	struct ldquery_list	 inflight;
	int			 ninflight;
};

struct ldtable {
	const struct table	*t;
	struct ldap_conf	 conf;
	struct event_base	*base;
	struct ldconn		 conns[LDAP_CONF_POOL_MAX];
	struct ldquery_list	 queue;
	int			 down;		/* outage: answer at once */
	int			 backoff;	/* seconds, next wait */
	int			 failures;	/* attempts in this outage */
	struct event		*retry;		/* the next attempt */
	struct event		*busy;		/* dispatch again shortly */
	time_t			 grow_after;	/* a new connection failed */
	int			 timeouts_logged;
};

static void	conn_connect(struct ldconn *);
static void	conn_fail(struct ldconn *, const char *);
static void	dispatch(struct ldtable *);

static const char *
tname(const struct ldtable *tab)
{
	return tab->t->name;
}

/* ---- answers ---- */

static void
query_free(struct ldquery *lq)
{
	if (lq->timer != NULL)
		event_free(lq->timer);
	if (lq->value != NULL)
		freezero(lq->value, lq->vlen + 1);
	free(lq);
}

/* the query leaves whatever list holds it and is answered */
static void
query_answer(struct ldquery *lq, int status, const char *value)
{
	struct ldtable	*tab = lq->tab;
	struct table_query *q = lq->q;

	if (lq->conn != NULL) {
		TAILQ_REMOVE(&lq->conn->inflight, lq, entry);
		lq->conn->ninflight--;
	} else
		TAILQ_REMOVE(&tab->queue, lq, entry);
	/* value may be lq's own: freed after */
	table_query_done(q, status, value);
	query_free(lq);
}

/* every query of a list answered: TABLE_ERROR */
static void
fail_list(struct ldquery_list *l)
{
	struct ldquery	*lq;

	while ((lq = TAILQ_FIRST(l)) != NULL)
		query_answer(lq, TABLE_ERROR, NULL);
}

/* ---- outage and back-off ---- */

static void
retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ldtable	*tab = arg;
	int		 i;

	(void)fd;
	(void)ev;
	/* one connection tries; the others follow once it is bound */
	for (i = 0; i < tab->conf.pool; i++)
		if (tab->conns[i].state == C_DOWN) {
			conn_connect(&tab->conns[i]);
			return;
		}
}

static void
table_down(struct ldtable *tab, const char *why)
{
	struct timeval	tv;

	tab->failures++;
	if (!tab->down) {
		log_warnx("table %s: LDAP server %s unreachable: %s; queries "
		    "fail until it answers again", tname(tab), tab->conf.url,
		    why);
		tab->down = 1;
		tab->backoff = BACKOFF_FIRST;
	} else {
		log_debug("table %s: %s still unreachable: %s", tname(tab),
		    tab->conf.url, why);
		tab->backoff = tab->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX :
		    tab->backoff * 2;
	}
	fail_list(&tab->queue);
	tv.tv_sec = tab->backoff;
	tv.tv_usec = 0;
	if (evtimer_add(tab->retry, &tv) == -1)
		fatalx("evtimer_add");
}

static void
table_up(struct ldtable *tab)
{
	if (tab->down)
		log_warnx("table %s: LDAP server %s answers again (after %d "
		    "failed attempt%s)", tname(tab), tab->conf.url,
		    tab->failures, tab->failures == 1 ? "" : "s");
	tab->down = 0;
	tab->failures = 0;
	tab->backoff = BACKOFF_FIRST;
	evtimer_del(tab->retry);
}

/* ---- connections ---- */

static time_t
now_mono(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return ts.tv_sec;
}

static int
any_ready(const struct ldtable *tab)
{
	int	i;

	for (i = 0; i < tab->conf.pool; i++)
		if (tab->conns[i].state == C_READY)
			return 1;
	return 0;
}

static void
conn_close(struct ldconn *c)
{
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
	evtimer_del(c->timer);
	if (c->ld != NULL) {
		/* an unbind request, written without waiting, then close */
		ldap_unbind_ext(c->ld, NULL, NULL);
		c->ld = NULL;
	}
	c->fd = -1;
	c->state = C_DOWN;
}

/*
 * A connection broke.  Before it was bound, the server is unreachable
 * (or refuses our bind): the table is down.  After, its searches fail
 * and it is made again when next needed.
 */
static void
conn_fail(struct ldconn *c, const char *why)
{
	struct ldtable	*tab = c->tab;
	int		 was_ready = c->state == C_READY;

	conn_close(c);
	fail_list(&c->inflight);
	if (!was_ready && any_ready(tab)) {
		/* one more could not be made: the others serve meanwhile */
		log_info("table %s: connection %d to %s: %s", tname(tab),
		    c->id, tab->conf.url, why);
		tab->grow_after = now_mono() + BACKOFF_MAX;
		return;
	}
	if (!was_ready) {
		table_down(tab, why);
		return;
	}
	log_info("table %s: connection %d to %s lost: %s", tname(tab), c->id,
	    tab->conf.url, why);
	dispatch(tab);
}

static void
conn_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ldconn	*c = arg;

	(void)fd;
	(void)ev;
	conn_fail(c, c->state == C_CONNECTING ? "connect timed out" :
	    "bind timed out");
}

static void	conn_event_cb(evutil_socket_t, short, void *);

static int
conn_watch(struct ldconn *c, short what)
{
	if (c->ev != NULL)
		event_free(c->ev);
	if ((c->ev = event_new(c->tab->base, c->fd, what, conn_event_cb,
	    c)) == NULL || event_add(c->ev, NULL) == -1) {
		log_warnx("table %s: event_new failed", tname(c->tab));
		return -1;
	}
	return 0;
}

/*
 * Send the bind, or go on with the connect: ldap_sasl_bind() completes
 * an asynchronous connect when the socket is writable.
 */
static void
conn_bind(struct ldconn *c)
{
	struct ldtable	*tab = c->tab;
	struct berval	 cred;
	int		 rc, fl;

	cred.bv_val = tab->conf.password;
	cred.bv_len = strlen(tab->conf.password);
	rc = ldap_sasl_bind(c->ld, tab->conf.binddn[0] ? tab->conf.binddn :
	    NULL, LDAP_SASL_SIMPLE, &cred, NULL, NULL, &c->bind_msgid);
	if (rc == LDAP_X_CONNECTING) {
		if (ldap_get_option(c->ld, LDAP_OPT_DESC, &c->fd) !=
		    LDAP_OPT_SUCCESS || c->fd < 0) {
			conn_fail(c, "no socket");
			return;
		}
		c->state = C_CONNECTING;
		if (conn_watch(c, EV_WRITE) == -1)
			conn_fail(c, "no event");
		return;
	}
	if (rc != LDAP_SUCCESS) {
		conn_fail(c, ldap_err2string(rc));
		return;
	}
	if (ldap_get_option(c->ld, LDAP_OPT_DESC, &c->fd) !=
	    LDAP_OPT_SUCCESS || c->fd < 0) {
		conn_fail(c, "no socket");
		return;
	}
	/* libldap made it blocking after the connect: reads must not wait */
	if ((fl = fcntl(c->fd, F_GETFL)) == -1 ||
	    fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		conn_fail(c, strerror(errno));
		return;
	}
	c->state = C_BINDING;
	if (conn_watch(c, EV_READ | EV_PERSIST) == -1)
		conn_fail(c, "no event");
}

static void
conn_connect(struct ldconn *c)
{
	struct ldtable	*tab = c->tab;
	struct timeval	 tv = { tab->conf.timeout, 0 };
	int		 v, rc;

	if (c->state != C_DOWN)
		return;
	if ((rc = ldap_initialize(&c->ld, tab->conf.url)) != LDAP_SUCCESS) {
		c->ld = NULL;
		conn_fail(c, ldap_err2string(rc));
		return;
	}
	v = LDAP_VERSION3;
	if (ldap_set_option(c->ld, LDAP_OPT_PROTOCOL_VERSION, &v) !=
	    LDAP_OPT_SUCCESS ||
	    ldap_set_option(c->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) !=
	    LDAP_OPT_SUCCESS ||
	    ldap_set_option(c->ld, LDAP_OPT_RESTART, LDAP_OPT_OFF) !=
	    LDAP_OPT_SUCCESS ||
	    ldap_set_option(c->ld, LDAP_OPT_CONNECT_ASYNC, LDAP_OPT_ON) !=
	    LDAP_OPT_SUCCESS ||
	    ldap_set_option(c->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) !=
	    LDAP_OPT_SUCCESS) {
		conn_fail(c, "cannot set the connection's options");
		return;
	}
	c->state = C_CONNECTING;
	if (evtimer_add(c->timer, &tv) == -1)
		fatalx("evtimer_add");
	conn_bind(c);
}

/* ---- building an answer ---- */

static int
value_add(struct ldquery *lq, const char *sep, const char *v, size_t vlen)
{
	size_t	 seplen = lq->vlen > 0 ? strlen(sep) : 0;
	char	*n;

	if (memchr(v, '\0', vlen) != NULL) {
		lq->failed = "a value holds a NUL byte";
		return -1;
	}
	if (lq->vlen + seplen + vlen > TABLE_VALUE_MAX) {
		lq->failed = "the answer is too long";
		return -1;
	}
	if ((n = realloc(lq->value, lq->vlen + seplen + vlen + 1)) == NULL) {
		lq->failed = "out of memory";
		return -1;
	}
	lq->value = n;
	memcpy(n + lq->vlen, sep, seplen);
	memcpy(n + lq->vlen + seplen, v, vlen);
	lq->vlen += seplen + vlen;
	n[lq->vlen] = '\0';
	return 0;
}

/* the first value of attr in the entry, or NULL */
static struct berval **
entry_values(LDAP *ld, LDAPMessage *m, const char *attr)
{
	struct berval	**vals;

	vals = ldap_get_values_len(ld, m, attr);
	if (vals != NULL && vals[0] == NULL) {
		ldap_value_free_len(vals);
		return NULL;
	}
	return vals;
}

static void
entry_userinfo(struct ldquery *lq, LDAP *ld, LDAPMessage *m)
{
	const struct ldap_conf	*c = &lq->tab->conf;
	struct berval		**v[LDAP_CONF_NATTRS];
	int			 i, ok = 1;

	for (i = 0; i < LDAP_CONF_NATTRS; i++)
		if ((v[i] = entry_values(ld, m, c->attrs[TS_USERINFO][i])) ==
		    NULL)
			ok = 0;
	if (ok) {
		if (lq->nentries++ > 0)
			lq->failed = "more than one entry";
		for (i = 0; i < LDAP_CONF_NATTRS && !lq->failed; i++)
			value_add(lq, ":", v[i][0]->bv_val, v[i][0]->bv_len);
	}
	for (i = 0; i < LDAP_CONF_NATTRS; i++)
		if (v[i] != NULL)
			ldap_value_free_len(v[i]);
}

static void
entry_credentials(struct ldquery *lq, LDAP *ld, LDAPMessage *m)
{
	const struct ldap_conf	*c = &lq->tab->conf;
	struct berval		**v;
	const char		*h;
	size_t			 n;

	if ((v = entry_values(ld, m, c->attrs[TS_CREDENTIALS][0])) == NULL)
		return;
	h = v[0]->bv_val;
	n = v[0]->bv_len;
	/* userPassword's scheme (RFC 2307): {CRYPT} is a crypt(3) hash */
	if (n >= 7 && strncasecmp(h, "{CRYPT}", 7) == 0) {
		h += 7;
		n -= 7;
	} else if (n > 0 && h[0] == '{') {
		log_warnx("table %s: %s of an entry for \"%s\" is not a "
		    "crypt(3) hash ({CRYPT}): passed over", tname(lq->tab),
		    c->attrs[TS_CREDENTIALS][0], lq->q->key);
		ldap_value_free_len(v);
		return;
	}
	if (lq->nentries++ > 0)
		lq->failed = "more than one entry";
	else
		value_add(lq, "", h, n);
	ldap_value_free_len(v);
}

/* alias, mailaddrmap, and the membership services' optional value */
static void
entry_list(struct ldquery *lq, LDAP *ld, LDAPMessage *m)
{
	const struct ldap_conf	*c = &lq->tab->conf;
	enum table_service	 s = lq->q->service;
	struct berval		**v;
	int			 i;

	if (c->nattrs[s] == 0) {
		lq->nentries++;
		return;
	}
	if ((v = entry_values(ld, m, c->attrs[s][0])) == NULL) {
		/* membership: the entry is there all the same */
		if (s != TS_ALIAS && s != TS_MAILADDRMAP)
			lq->nentries++;
		return;
	}
	lq->nentries++;
	for (i = 0; v[i] != NULL; i++)
		value_add(lq, ", ", v[i]->bv_val, v[i]->bv_len);
	ldap_value_free_len(v);
}

static void
search_entry(struct ldquery *lq, LDAP *ld, LDAPMessage *m)
{
	switch (lq->q->service) {
	case TS_USERINFO:
		entry_userinfo(lq, ld, m);
		break;
	case TS_CREDENTIALS:
		entry_credentials(lq, ld, m);
		break;
	default:
		entry_list(lq, ld, m);
		break;
	}
}

static void
search_done(struct ldquery *lq, LDAP *ld, LDAPMessage *m)
{
	struct ldtable	*tab = lq->tab;
	char		*matched = NULL, *text = NULL;
	int		 err = LDAP_OTHER;

	if (ldap_parse_result(ld, m, &err, &matched, &text, NULL, NULL, 0) !=
	    LDAP_SUCCESS)
		err = LDAP_OTHER;
	if (err != LDAP_SUCCESS) {
		log_warnx("table %s: %s search for \"%s\": %s%s%s",
		    tname(tab), table_service_name(lq->q->service),
		    lq->q->key, ldap_err2string(err), text != NULL &&
		    *text ? ": " : "", text != NULL ? text : "");
		query_answer(lq, TABLE_ERROR, NULL);
	} else if (lq->failed != NULL) {
		log_warnx("table %s: %s search for \"%s\": %s", tname(tab),
		    table_service_name(lq->q->service), lq->q->key,
		    lq->failed);
		query_answer(lq, TABLE_ERROR, NULL);
	} else if (lq->nentries == 0)
		query_answer(lq, TABLE_NOTFOUND, NULL);
	else
		query_answer(lq, TABLE_FOUND, lq->value != NULL ? lq->value :
		    "");
	tab->timeouts_logged = 0;
	ldap_memfree(matched);
	ldap_memfree(text);
}

static struct ldquery *
conn_query(struct ldconn *c, int msgid)
{
	struct ldquery	*lq;

	TAILQ_FOREACH(lq, &c->inflight, entry)
		if (lq->msgid == msgid)
			return lq;
	return NULL;
}

static void
bind_done(struct ldconn *c, LDAPMessage *m)
{
	struct ldtable	*tab = c->tab;
	char		*text = NULL;
	char		 why[1200];
	int		 err = LDAP_OTHER;

	if (ldap_parse_result(c->ld, m, &err, NULL, &text, NULL, NULL, 0) !=
	    LDAP_SUCCESS)
		err = LDAP_OTHER;
	if (err != LDAP_SUCCESS) {
		snprintf(why, sizeof(why), "bind as \"%.400s\": %.200s%s%.200s",
		    tab->conf.binddn, ldap_err2string(err),
		    text != NULL && *text ? ": " : "",
		    text != NULL ? text : "");
		ldap_memfree(text);
		conn_fail(c, why);
		return;
	}
	ldap_memfree(text);
	evtimer_del(c->timer);
	c->state = C_READY;
	table_up(tab);
	dispatch(tab);
}

/* one message from the server; 0, or -1 when the connection is gone */
static int
conn_message(struct ldconn *c, LDAPMessage *m)
{
	struct ldquery	*lq;
	int		 msgid = ldap_msgid(m), type = ldap_msgtype(m);

	if (c->state == C_BINDING) {
		if (msgid != c->bind_msgid || type != LDAP_RES_BIND) {
			conn_fail(c, "unexpected message before the bind's "
			    "answer");
			return -1;
		}
		bind_done(c, m);
		return c->state == C_READY ? 0 : -1;
	}
	if ((lq = conn_query(c, msgid)) == NULL)
		return 0;		/* abandoned after its deadline */
	switch (type) {
	case LDAP_RES_SEARCH_ENTRY:
		search_entry(lq, c->ld, m);
		break;
	case LDAP_RES_SEARCH_RESULT:
		search_done(lq, c->ld, m);
		break;
	default:			/* references: no referrals chased */
		break;
	}
	return 0;
}

static void
conn_event_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ldconn	*c = arg;
	struct timeval	 zero = { 0, 0 };
	LDAPMessage	*m;
	int		 rc, err, n;

	(void)fd;
	(void)ev;
	if (c->state == C_CONNECTING) {
		conn_bind(c);
		return;
	}
	/* bounded: a flood of entries yields to the loop, then resumes */
	for (n = 0; n < 1024; n++) {
		m = NULL;
		rc = ldap_result(c->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &m);
		if (rc == 0) {
			/* answers made room for what waits */
			if (!TAILQ_EMPTY(&c->tab->queue))
				dispatch(c->tab);
			return;
		}
		if (rc == -1) {
			err = LDAP_SERVER_DOWN;
			(void)ldap_get_option(c->ld, LDAP_OPT_RESULT_CODE,
			    &err);
			if (m != NULL)
				ldap_msgfree(m);
			conn_fail(c, ldap_err2string(err));
			return;
		}
		rc = conn_message(c, m);
		ldap_msgfree(m);
		if (rc == -1)
			return;
	}
	/* libldap may hold what the socket no longer shows: come back */
	event_active(c->ev, EV_READ, 0);
}

/* ---- queries ---- */

static void
busy_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	dispatch(arg);
}

/* the ready connection with the fewest searches, or NULL */
static struct ldconn *
pick_conn(struct ldtable *tab)
{
	struct ldconn	*best = NULL, *c;
	int		 i;

	for (i = 0; i < tab->conf.pool; i++) {
		c = &tab->conns[i];
		if (c->state == C_READY && c->ninflight < INFLIGHT_MAX &&
		    (best == NULL || c->ninflight < best->ninflight))
			best = c;
	}
	return best;
}

/* 0 sent, 1 to wait (libldap busy), -1 answered with an error */
static int
send_query(struct ldconn *c, struct ldquery *lq)
{
	struct ldtable		*tab = c->tab;
	const struct ldap_conf	*conf = &tab->conf;
	enum table_service	 s = lq->q->service;
	char			 filter[FILTER_MAX];
	char			*attrs[LDAP_CONF_NATTRS + 1];
	char			 none[] = LDAP_NO_ATTRS;
	struct timeval		 limit = { conf->timeout, 0 };
	int			 i, rc;

	if (ldap_filter_expand(conf->filter[s], lq->q->key, filter,
	    sizeof(filter)) == -1) {
		log_warnx("table %s: %s filter for \"%s\" too long",
		    tname(tab), table_service_name(s), lq->q->key);
		query_answer(lq, TABLE_ERROR, NULL);
		return -1;
	}
	for (i = 0; i < conf->nattrs[s]; i++)
		attrs[i] = (char *)conf->attrs[s][i];
	if (i == 0)
		attrs[i++] = none;	/* "1.1": entries, no attributes */
	attrs[i] = NULL;
	rc = ldap_search_ext(c->ld, conf->basedn, LDAP_SCOPE_SUBTREE, filter,
	    attrs, 0, NULL, NULL, &limit, LDAP_NO_LIMIT, &lq->msgid);
	if (rc == LDAP_BUSY)
		return 1;
	if (rc != LDAP_SUCCESS) {
		log_warnx("table %s: %s search for \"%s\": %s", tname(tab),
		    table_service_name(s), lq->q->key, ldap_err2string(rc));
		query_answer(lq, TABLE_ERROR, NULL);
		if (rc == LDAP_SERVER_DOWN)
			conn_fail(c, ldap_err2string(rc));
		return -1;
	}
	TAILQ_REMOVE(&tab->queue, lq, entry);
	lq->conn = c;
	TAILQ_INSERT_TAIL(&c->inflight, lq, entry);
	c->ninflight++;
	return 0;
}

/*
 * Send what waits, each on the bound connection with the fewest searches
 * in flight; when none is idle, make one more, up to the pool.
 */
static void
dispatch(struct ldtable *tab)
{
	struct ldquery	*lq;
	struct ldconn	*c, *down = NULL;
	struct timeval	 tv = { 0, RETRY_BUSY_MS * 1000 };
	int		 i, idle = 0, making = 0, load;

	while ((lq = TAILQ_FIRST(&tab->queue)) != NULL &&
	    (c = pick_conn(tab)) != NULL) {
		if (send_query(c, lq) == 1) {
			if (evtimer_add(tab->busy, &tv) == -1)
				fatalx("evtimer_add");
			return;
		}
	}
	if (tab->down)
		return;
	/* only for work: a server that drops us at once is not a loop */
	load = !TAILQ_EMPTY(&tab->queue);
	for (i = 0; i < tab->conf.pool; i++) {
		c = &tab->conns[i];
		if (c->ninflight > 0)
			load = 1;
		if (c->state == C_READY && c->ninflight == 0)
			idle = 1;
		else if (c->state == C_CONNECTING || c->state == C_BINDING)
			making = 1;
		else if (c->state == C_DOWN && down == NULL)
			down = c;
	}
	if (load && !idle && !making && down != NULL &&
	    (!any_ready(tab) || now_mono() >= tab->grow_after))
		conn_connect(down);
}

static void
query_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ldquery	*lq = arg;
	struct ldtable	*tab = lq->tab;

	(void)fd;
	(void)ev;
	if (!tab->timeouts_logged) {
		log_warnx("table %s: no answer from %s within %d s (%s "
		    "\"%s\"); further timeouts are not logged until an "
		    "answer comes", tname(tab), tab->conf.url,
		    tab->conf.timeout, table_service_name(lq->q->service),
		    lq->q->key);
		tab->timeouts_logged = 1;
	}
	if (lq->conn != NULL && lq->conn->ld != NULL)
		(void)ldap_abandon_ext(lq->conn->ld, lq->msgid, NULL, NULL);
	query_answer(lq, TABLE_ERROR, NULL);
}

static void
ldap_query(void *h, struct table_query *q)
{
	struct ldtable	*tab = h;
	struct ldquery	*lq;
	struct timeval	 tv = { tab->conf.timeout, 0 };

	if (tab->base == NULL || tab->down ||
	    tab->conf.filter[q->service][0] == '\0') {
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	if ((lq = calloc(1, sizeof(*lq))) == NULL) {
		log_warn("table %s: calloc", tname(tab));
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	lq->tab = tab;
	lq->q = q;
	lq->msgid = -1;
	if ((lq->timer = evtimer_new(tab->base, query_timeout_cb, lq)) ==
	    NULL || evtimer_add(lq->timer, &tv) == -1)
		fatalx("evtimer");
	TAILQ_INSERT_TAIL(&tab->queue, lq, entry);
	dispatch(tab);
}

/* ---- the driver ---- */

static void *
ldap_open(const struct table *t, char *err, size_t errlen)
{
	struct ldtable	*tab;
	int		 i;

	if (t->conf_text == NULL) {
		snprintf(err, errlen, "%s: not read", t->path);
		return NULL;
	}
	if ((tab = calloc(1, sizeof(*tab))) == NULL) {
		snprintf(err, errlen, "calloc: %s", strerror(errno));
		return NULL;
	}
	if (ldap_conf_parse(t->conf_text, t->conf_len, t->path, &tab->conf,
	    err, errlen) == -1) {
		freezero(tab, sizeof(*tab));
		return NULL;
	}
	tab->t = t;
	TAILQ_INIT(&tab->queue);
	for (i = 0; i < LDAP_CONF_POOL_MAX; i++) {
		tab->conns[i].tab = tab;
		tab->conns[i].id = i;
		tab->conns[i].fd = -1;
		TAILQ_INIT(&tab->conns[i].inflight);
	}
	return tab;
}

/*
 * Connections are made when the first query comes.  libldap's one-time
 * set-up (its defaults, the host's own name, SASL's plugins) is done
 * now, before the sandbox and before the event loop runs, rather than
 * in the first query; without reading /etc/ldap/ldap.conf or a user's
 * ldaprc: the table's file is the whole configuration.
 */
static int
ldap_start(void *h, struct event_base *base)
{
	struct ldtable	*tab = h;
	int		 i, v;

	if (setenv("LDAPNOINIT", "1", 1) == -1 ||
	    ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &v) !=
	    LDAP_OPT_SUCCESS) {
		log_warnx("table %s: libldap cannot start", tname(tab));
		return -1;
	}
	tab->base = base;
	tab->backoff = BACKOFF_FIRST;
	if ((tab->retry = evtimer_new(base, retry_cb, tab)) == NULL ||
	    (tab->busy = evtimer_new(base, busy_cb, tab)) == NULL)
		return -1;
	for (i = 0; i < tab->conf.pool; i++)
		if ((tab->conns[i].timer = evtimer_new(base, conn_timer_cb,
		    &tab->conns[i])) == NULL)
			return -1;
	return 0;
}

static int
ldap_serves(void *h, enum table_service s)
{
	struct ldtable	*tab = h;

	return (unsigned)s < TS_COUNT && tab->conf.filter[s][0] != '\0';
}

static void
ldap_close(void *h)
{
	struct ldtable	*tab = h;
	int		 i;

	for (i = 0; i < LDAP_CONF_POOL_MAX; i++) {
		if (tab->conns[i].timer == NULL)
			continue;
		conn_close(&tab->conns[i]);
		fail_list(&tab->conns[i].inflight);
		event_free(tab->conns[i].timer);
	}
	fail_list(&tab->queue);
	if (tab->retry != NULL)
		event_free(tab->retry);
	if (tab->busy != NULL)
		event_free(tab->busy);
	ldap_conf_clear(&tab->conf);
	freezero(tab, sizeof(*tab));
}

const struct table_driver table_driver_ldap = {
	.scheme = "ldap",
	.has_file = 1,
	.open = ldap_open,
	.start = ldap_start,
	.serves = ldap_serves,
	.query = ldap_query,
	.close = ldap_close,
};
