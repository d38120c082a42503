/*
 * milter_connect.c -- the parent connects the smtp workers to their mail
 * filters, and adds up the filters' counters for smtpctl show milters.
 *
 * Why the parent: a worker is chrooted into an empty directory and its
 * seccomp profile forbids socket() and connect(), so it could reach
 * neither a filter's unix socket (often in a directory only the
 * filter's group may enter, /run/opendkim, /var/spool/postfix/...) nor
 * an inet one.  The parent is root, not chrooted and faces no network
 * input: a worker names the filter (IMSG_MILTER_CONNECT, by name so that
 * a worker of an older generation is never handed another filter than
 * the one it means), the parent looks it up in its current
 * configuration, connects, and passes the socket; from then on the
 * worker speaks the milter protocol on it alone.  The socket is left
 * non-blocking, as the worker's event loop wants it.
 *
 * The parent's loop must never wait: the connect is non-blocking, an
 * inet one in progress is watched for writability with the filter's
 * connect-timeout, and a host name was resolved when the file was read
 * (config/parse_milter.c).  Each worker may have MILTER_CONNECT_MAX_PENDING
 * connects in progress; beyond that the answer is TEMPFAIL at once (a
 * filter that hangs must not make a worker pile up the parent's
 * descriptors).  A worker that exits takes its connects with it: their
 * sockets are closed and nobody is answered.
 *
 * A filter that is down fails every session's connect: that is logged
 * at most once per filter every MILTER_LOG_INTERVAL seconds, with the
 * number of failures not logged meanwhile, so a dead filter does not
 * flood syslog at the rate mail comes in.
 *
 * The counters: each worker sends its totals per filter
 * (IMSG_MILTER_STATS) when they change; the latest of each (worker,
 * filter) is kept until the worker exits, so the workers of a retired
 * generation count as long as they run.  The parent's own record per
 * filter counts the connects that failed here (in errors) and knows
 * first when a filter went down or came back.  smtpctl show milters
 * gets, per filter of the running configuration, the sum.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "milter_connect.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"

/* a filter's name and address as the configuration holds them fit */
_Static_assert(sizeof(((struct milter_connect *)0)->name) >= CONF_NAME_MAX,
    "milter_connect.name");
_Static_assert(sizeof(((struct milter_stats *)0)->name) >= CONF_NAME_MAX,
    "milter_stats.name");
_Static_assert(sizeof(((struct ctl_milter *)0)->address) >= CONF_PATH_MAX,
    "ctl_milter.address");

/* per worker: at most this many filters' counters (its configuration's) */
#define MILTER_RECORDS_PER_WORKER	CONF_MAX_MILTERS

struct pending {
	TAILQ_ENTRY(pending)	 entry;
	void			*worker;
	struct mproc		*mp;
	struct milter_connect	 req;
	char			 address[CONF_PATH_MAX];
	time_t			 timeout;
	int			 fd;
	struct event		*ev;
};

struct record {
	TAILQ_ENTRY(record)	 entry;
	void			*worker;	/* NULL: the parent's own */
	struct milter_stats	 st;
	time_t			 logged;	/* parent's: last log line */
	uint64_t		 unlogged;	/* failures since, not logged */
};

static TAILQ_HEAD(, pending)	pendings = TAILQ_HEAD_INITIALIZER(pendings);
static TAILQ_HEAD(, record)	records = TAILQ_HEAD_INITIALIZER(records);

static int
pending_count(void *worker)
{
	struct pending	*pd;
	int		 n = 0;

	TAILQ_FOREACH(pd, &pendings, entry)
		if (pd->worker == worker)
			n++;
	return n;
}

static struct record *
record_find(void *worker, const char *name)
{
	struct record	*r;

	TAILQ_FOREACH(r, &records, entry)
		if (r->worker == worker && strcmp(r->st.name, name) == 0)
			return r;
	return NULL;
}

/*
 * The parent's own record of a filter.  Those of filters no longer in
 * the configuration (a reload removed them) go first, so their number
 * stays bounded by CONF_MAX_MILTERS.
 */
static struct record *
own_record(const char *name)
{
	struct record	*r, *next;

	if ((r = record_find(NULL, name)) != NULL)
		return r;
	for (r = TAILQ_FIRST(&records); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (r->worker == NULL &&
		    config_find_milter(conf, r->st.name) == NULL) {
			TAILQ_REMOVE(&records, r, entry);
			free(r);
		}
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warn("milter counters");
		return NULL;
	}
	snprintf(r->st.name, sizeof(r->st.name), "%s", name);
	r->st.state = MILTER_STATE_UNUSED;
	TAILQ_INSERT_TAIL(&records, r, entry);
	return r;
}

static void
own_state(struct record *r, uint32_t state, time_t now)
{
	if (r->st.state == state)
		return;
	r->st.state = state;
	r->st.since = now;
}

/* a connect that failed here: counted, logged (not too often), answered */
static void
connect_failed(struct mproc *mp, struct milter_connect *ans,
    const char *address, const char *why)
{
	struct record	*r;
	time_t		 now = time(NULL);
	int		 n;

	n = snprintf(ans->error, sizeof(ans->error), "connect to %s: %s",
	    address, why);
	if (n < 0 || (size_t)n >= sizeof(ans->error))
		snprintf(ans->error, sizeof(ans->error), "connect: %s", why);
	ans->status = PROTO_TEMPFAIL;
	mproc_compose(mp, IMSG_MILTER_CONNECT, 0, -1, ans, sizeof(*ans));

	if ((r = own_record(ans->name)) == NULL)
		return;
	r->st.errors++;
	r->st.error_at = now;
	memcpy(r->st.error, ans->error, sizeof(r->st.error));
	own_state(r, MILTER_STATE_DOWN, now);
	if (r->logged != 0 && now - r->logged < MILTER_LOG_INTERVAL) {
		r->unlogged++;
		return;
	}
	if (r->unlogged > 0)
		log_warnx("milter %s: %s (and %llu more failures in the last "
		    "%lld s)", ans->name, ans->error,
		    (unsigned long long)r->unlogged,
		    (long long)(now - r->logged));
	else
		log_warnx("milter %s: %s", ans->name, ans->error);
	r->logged = now;
	r->unlogged = 0;
}

static void
connect_done(struct mproc *mp, struct milter_connect *ans, int fd)
{
	struct record	*r;

	ans->status = PROTO_OK;
	ans->error[0] = '\0';
	/* mproc owns the descriptor now: closed here once it is sent */
	mproc_compose(mp, IMSG_MILTER_CONNECT, 0, fd, ans, sizeof(*ans));
	if ((r = record_find(NULL, ans->name)) != NULL &&
	    r->st.state == MILTER_STATE_DOWN) {
		log_info("milter %s: reachable again", ans->name);
		own_state(r, MILTER_STATE_UP, time(NULL));
		r->logged = 0;
		r->unlogged = 0;
	}
}

static void
pending_free(struct pending *pd)
{
	TAILQ_REMOVE(&pendings, pd, entry);
	if (pd->ev != NULL)
		event_free(pd->ev);
	if (pd->fd != -1)
		close(pd->fd);
	free(pd);
}

static void
on_connect(evutil_socket_t fd, short ev, void *arg)
{
	struct pending	*pd = arg;
	char		 why[64];
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	if (ev & EV_TIMEOUT) {
		snprintf(why, sizeof(why), "timed out after %llds",
		    (long long)pd->timeout);
		connect_failed(pd->mp, &pd->req, pd->address, why);
	} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		connect_failed(pd->mp, &pd->req, pd->address,
		    strerror(errno));
	else if (err != 0)
		connect_failed(pd->mp, &pd->req, pd->address, strerror(err));
	else {
		connect_done(pd->mp, &pd->req, pd->fd);
		pd->fd = -1;
	}
	pending_free(pd);
}

void
milter_connect_request(void *worker, struct mproc *mp,
    const struct milter_connect *req)
{
	struct milter_connect	 ans;
	struct milter_conf	*mc;
	struct pending		*pd;
	struct timeval		 tv;
	int			 fd;

	ans = *req;
	ans.status = PROTO_TEMPFAIL;
	ans.error[0] = '\0';
	if ((mc = config_find_milter(conf, req->name)) == NULL) {
		snprintf(ans.error, sizeof(ans.error), "no such milter");
		mproc_compose(mp, IMSG_MILTER_CONNECT, 0, -1, &ans,
		    sizeof(ans));
		return;
	}
	if (pending_count(worker) >= MILTER_CONNECT_MAX_PENDING) {
		snprintf(ans.error, sizeof(ans.error), "too many connections "
		    "to filters in progress");
		mproc_compose(mp, IMSG_MILTER_CONNECT, 0, -1, &ans,
		    sizeof(ans));
		return;
	}
	if ((fd = socket(mc->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		connect_failed(mp, &ans, mc->address, strerror(errno));
		return;
	}
	if (connect(fd, (const struct sockaddr *)&mc->ss, mc->sslen) == 0) {
		connect_done(mp, &ans, fd);
		return;
	}
	/*
	 * A unix socket whose backlog is full says EAGAIN and does not
	 * connect later: a failure like any other (the filter is swamped).
	 */
	if (errno != EINPROGRESS && errno != EINTR) {
		connect_failed(mp, &ans, mc->address, strerror(errno));
		close(fd);
		return;
	}
	if ((pd = calloc(1, sizeof(*pd))) == NULL) {
		connect_failed(mp, &ans, mc->address, strerror(errno));
		close(fd);
		return;
	}
	pd->worker = worker;
	pd->mp = mp;
	pd->req = ans;
	pd->fd = fd;
	pd->timeout = mc->connect_timeout;
	memcpy(pd->address, mc->address, sizeof(pd->address));
	TAILQ_INSERT_TAIL(&pendings, pd, entry);
	tv.tv_sec = mc->connect_timeout;
	tv.tv_usec = 0;
	if ((pd->ev = event_new(ev_base, fd, EV_WRITE, on_connect, pd)) ==
	    NULL || event_add(pd->ev, &tv) == -1) {
		connect_failed(mp, &pd->req, pd->address, "event_add failed");
		pending_free(pd);
	}
}

void
milter_stats_update(void *worker, const struct milter_stats *st)
{
	struct record	*r, *x;
	int		 n = 0;

	if ((r = record_find(worker, st->name)) == NULL) {
		TAILQ_FOREACH(x, &records, entry)
			n += x->worker == worker;
		if (n >= MILTER_RECORDS_PER_WORKER) {
			log_warnx("milter counters of more filters than a "
			    "configuration holds from one worker; \"%s\" "
			    "ignored", st->name);
			return;
		}
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			log_warn("milter counters");
			return;
		}
		r->worker = worker;
		TAILQ_INSERT_TAIL(&records, r, entry);
	}
	r->st = *st;
}

void
milter_worker_gone(void *worker)
{
	struct pending	*pd, *pnext;
	struct record	*r, *rnext;

	for (pd = TAILQ_FIRST(&pendings); pd != NULL; pd = pnext) {
		pnext = TAILQ_NEXT(pd, entry);
		if (pd->worker == worker)
			pending_free(pd);
	}
	for (r = TAILQ_FIRST(&records); r != NULL; r = rnext) {
		rnext = TAILQ_NEXT(r, entry);
		if (r->worker == worker) {
			TAILQ_REMOVE(&records, r, entry);
			free(r);
		}
	}
}

/*
 * The state is the one that changed last, among the workers' and the
 * parent's (a DOWN wins a tie: a failure is what an admin looks for);
 * the last error is the latest of all.
 */
void
milter_stats_sum(const char *name, struct milter_stats *out)
{
	const struct record	*r;
	const struct milter_stats *s;
	int			 have_state = 0;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->state = MILTER_STATE_UNUSED;
	TAILQ_FOREACH(r, &records, entry) {
		s = &r->st;
		if (strcmp(s->name, name) != 0)
			continue;
		out->sessions += s->sessions;
		out->messages += s->messages;
		out->accepted += s->accepted;
		out->rejected += s->rejected;
		out->tempfailed += s->tempfailed;
		out->discarded += s->discarded;
		out->quarantined += s->quarantined;
		out->modified += s->modified;
		out->errors += s->errors;
		out->defaults += s->defaults;
		if (s->state != MILTER_STATE_UNUSED && (!have_state ||
		    s->since > out->since || (s->since == out->since &&
		    s->state == MILTER_STATE_DOWN))) {
			have_state = 1;
			out->state = s->state;
			out->since = s->since;
		}
		if (s->error[0] != '\0' && (out->error[0] == '\0' ||
		    s->error_at > out->error_at)) {
			out->error_at = s->error_at;
			memcpy(out->error, s->error, sizeof(out->error));
		}
	}
}

void
milter_show(struct mproc *control, uint32_t reqid)
{
	struct milter_conf	*mc;
	struct ctl_milter	 m;
	struct ctl_reply	 r;
	time_t			 now = time(NULL);

	TAILQ_FOREACH(mc, &conf->milters, entry) {
		memset(&m, 0, sizeof(m));
		m.reqid = reqid;
		m.now = now;
		snprintf(m.address, sizeof(m.address), "%s", mc->address);
		milter_stats_sum(mc->name, &m.st);
		mproc_compose(control, IMSG_CTL_MILTER, 0, -1, &m, sizeof(m));
	}
	memset(&r, 0, sizeof(r));
	r.reqid = reqid;
	r.end = 1;
	mproc_compose(control, IMSG_CTL_REPLY, 0, -1, &r, sizeof(r));
}
