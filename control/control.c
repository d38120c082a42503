/*
 * control.c -- the control process: smtpctl's socket.
 *
 * Anyone may connect; each request is stamped with the peer's uid as the
 * kernel reports it (SO_PEERCRED), never as the client claims it.  Only
 * root may change anything.  A client that sends something malformed is
 * dropped; it cannot harm the daemon.
 *
 * Nor can a client that is merely greedy (issue 16):
 *  - memory: a client with a request in flight to the queue is read no
 *    further until it is answered, and mproc stops reading one that
 *    leaves too much of our output unread and drops it when that does
 *    not drain (mproc.h), so pipelining requests without reading the
 *    answers costs a bounded amount;
 *  - slots: each uid other than root holds at most CONTROL_MAX_PER_UID
 *    connections and all of them together CONTROL_MAX_CLIENTS minus a
 *    reserve that only root may use, so smtpctl keeps working for root
 *    however many connections users hold; a client that is not served
 *    is told so (CTL_STATUS_BUSY) and closed, and the listening socket is
 *    always accepted from, so nobody waits in the kernel's backlog;
 *  - time: a client with nothing in flight, nothing to say and nothing
 *    read of what we wrote for CONTROL_IDLE_TIMEOUT seconds is closed.
 *    Root's output is never given up on: root is trusted not to starve
 *    the daemon's memory on purpose, and may pipe show queue into a
 *    pager for as long as it likes.
 *
 * The folder control/ is the control process; its peers are the parent
 * (which hands a submission's socket on to an smtp worker) and the queue.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "mproc.h"
#include "platform.h"
#include "privsep.h"
#include "proto.h"
#include "ctl.h"
#include "proc.h"
#include "table.h"
#include "metrics.h"
#include "metrics_http.h"
#include "ratelimit.h"
#include "smtpcount.h"

#define CONTROL_MAX_CLIENTS	64
#define CONTROL_ROOT_RESERVE	16	/* of those, only for uid 0 */
#define CONTROL_MAX_PER_UID	16	/* any other uid */
#define CONTROL_MAX_INFLIGHT	1	/* requests at the queue per client */
#define CONTROL_IDLE_TIMEOUT	10	/* seconds */

struct ctl_client {
	TAILQ_ENTRY(ctl_client) entry;
	uint32_t	 id;
	uid_t		 uid;
	struct mproc	 mp;
	struct event	*ev_idle;
	int		 inflight;	/* requests the queue has not ended */
	int		 metrics;	/* show metrics in flight: the smtp
					 * workers' counters go before its end */
	uint64_t	 idle_wmark;	/* mp.ib.wtotal at the last idle check */
	int		 closing;
};

static TAILQ_HEAD(, ctl_client) clients = TAILQ_HEAD_INITIALIZER(clients);
static int		 nclients;
static uint32_t		 next_client;
static struct mproc	 c_parent, c_queue;
static struct event	*ev_accept;

static struct ctl_client *
client_find(uint32_t id)
{
	struct ctl_client	*c;

	TAILQ_FOREACH(c, &clients, entry)
		if (c->id == id)
			return c;
	return NULL;
}

static void
client_free(struct ctl_client *c)
{
	TAILQ_REMOVE(&clients, c, entry);
	mproc_clear(&c->mp);
	if (c->ev_idle)
		event_free(c->ev_idle);
	free(c);
	nclients--;
}

static void	client_free_later(struct ctl_client *);
static void	client_touch(struct ctl_client *);

static void
client_idle_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct ctl_client	*c = arg;

	/*
	 * Waiting for the queue is our delay, not the client's; a client
	 * still reading a long answer (show queue) is not idle either, nor
	 * is root with an answer not yet read at all.
	 */
	if (c->inflight > 0 || (!TAILQ_EMPTY(&c->mp.ib.wq) &&
	    (c->uid == 0 || c->mp.ib.wtotal != c->idle_wmark))) {
		c->idle_wmark = c->mp.ib.wtotal;
		client_touch(c);
		return;
	}
	log_info("control: uid %u idle for %d seconds; closed",
	    (unsigned)c->uid, CONTROL_IDLE_TIMEOUT);
	client_free_later(c);
}

/* the client did something, or was answered: the idle clock restarts */
static void
client_touch(struct ctl_client *c)
{
	struct timeval	tv = { CONTROL_IDLE_TIMEOUT, 0 };

	if (c->ev_idle != NULL && !c->closing)
		evtimer_add(c->ev_idle, &tv);
}

static void
client_free_cb(evutil_socket_t fd, short ev, void *arg)
{
	client_free(arg);
}

/*
 * From inside the client's own dispatch the client must outlive the
 * call: stop reading it now, free it on the next turn of the loop.
 */
static void
client_free_later(struct ctl_client *c)
{
	struct timeval	tv = { 0, 0 };

	if (c->closing)
		return;
	c->closing = 1;
	mproc_stop_reading(&c->mp);
	if (c->ev_idle)
		evtimer_del(c->ev_idle);
	if (event_base_once(ev_base, -1, EV_TIMEOUT, client_free_cb, c,
	    &tv) == -1)
		fatalx("event_base_once");
}

static void
client_closed(struct mproc *p)
{
	client_free(p->arg);
}

static void
client_reply(struct ctl_client *c, int status, const char *text)
{
	struct ctl_reply	r;

	memset(&r, 0, sizeof(r));
	r.end = 1;
	r.status = status;
	snprintf(r.text, sizeof(r.text), "%s", text);
	mproc_compose(&c->mp, IMSG_CTL_REPLY, 0, -1, &r, sizeof(r));
}

static int
cmd_needs_root(uint32_t cmd)
{
	switch (cmd) {
	case CTL_SHOW_QUEUE:
	case CTL_SHOW_QUEUE_ENTRIES:	/* the queue shows each user his own */
	case CTL_SHOW_STATS:
	case CTL_SHOW_METRICS:	/* the same counters as stats */
	case CTL_SHOW_STATUS:
	case CTL_SHOW_MILTERS:	/* names, addresses, counters: as stats */
	case CTL_SUBMIT:
		return 0;
	default:
		return 1;
	}
}

/*
 * Local submission (sendmail): the client's socket goes to an smtp
 * worker, by way of the parent, which adds the user name; from then on
 * the client speaks SMTP to the worker.  The client waits for the 220
 * greeting before it writes, so nothing is left unread here.
 */
static void
control_submit(struct ctl_client *c)
{
	struct local_session	ls;
	int			fd;

	if ((fd = dup(c->mp.ib.fd)) == -1) {
		log_warn("dup");
		client_reply(c, 1, "temporary failure");
		return;
	}
	memset(&ls, 0, sizeof(ls));
	ls.uid = (uint32_t)c->uid;
	mproc_compose(&c_parent, IMSG_SMTP_LOCAL, c->id, fd, &ls, sizeof(ls));
	client_free_later(c);
}

static void
table_refuse(struct ctl_client *c, const char *why, const char *what)
{
	struct ctl_table_result	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("calloc");
	r->status = CTL_TABLE_ERROR;
	snprintf(r->text, sizeof(r->text), "%s%s", why, what);
	mproc_compose(&c->mp, IMSG_CTL_TABLE_RESULT, 0, -1, r, sizeof(*r));
	free(r);
}

/*
 * smtpctl table lookup NAME SERVICE KEY (root): the table and the
 * service are checked here, the question goes to lookup by way of the
 * parent, and lookup's answer comes back the same way (control_reply).
 */
static void
control_table_lookup(struct ctl_client *c, struct imsg *m)
{
	struct ctl_table_lookup	 req;
	enum table_service	 s;
	const char		*p;

	if (m->len != sizeof(req) || m->fd != -1) {
		if (m->fd != -1)
			close(m->fd);
		log_warnx("malformed table lookup from uid %u; dropped",
		    (unsigned)c->uid);
		client_free_later(c);
		return;
	}
	client_touch(c);
	memcpy(&req, m->data, sizeof(req));
	if (proto_valid_ctl_table_lookup(&req) == -1) {
		log_warnx("invalid table lookup from uid %u; dropped",
		    (unsigned)c->uid);
		client_free_later(c);
		return;
	}
	if (c->uid != 0) {
		table_refuse(c, "permission denied", "");
		return;
	}
	if (config_find_table(conf, req.table) == NULL) {
		table_refuse(c, "no such table: ", req.table);
		return;
	}
	for (p = req.key; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			/* no key of the daemon's holds one; nor may the log */
			table_refuse(c, "the key holds a control character",
			    "");
			return;
		}
	if (table_service_parse(req.service, &s) == -1) {
		table_refuse(c, "no such service (string, alias, domain, "
		    "credentials, netaddr, userinfo, mailaddr or "
		    "mailaddrmap): ", req.service);
		return;
	}
	req.reqid = c->id;
	mproc_compose(&c_parent, IMSG_CTL_TABLE_LOOKUP, c->id, -1, &req,
	    sizeof(req));
	if (++c->inflight >= CONTROL_MAX_INFLIGHT)
		mproc_hold_reading(&c->mp, 1);
}

/*
 * show limits: the smtp workers' rate limit table (common/ratelimit.c),
 * read here under its lock, a reply per line
 */
#define SHOW_LIMITS_MAX		1000

static void
client_show_limits(struct ctl_client *c)
{
	struct ctl_reply	 r;
	char			*buf, *line, *nl;
	size_t			 len = SHOW_LIMITS_MAX * 160, n;

	if ((buf = malloc(len)) == NULL) {
		client_reply(c, 1, "out of memory");
		return;
	}
	n = ratelimit_show(buf, len, SHOW_LIMITS_MAX);
	for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		memset(&r, 0, sizeof(r));
		snprintf(r.text, sizeof(r.text), "%.*s", (int)(nl - line),
		    line);
		mproc_compose(&c->mp, IMSG_CTL_REPLY, 0, -1, &r, sizeof(r));
	}
	free(buf);
	if (n == 0)
		client_reply(c, 0, "no client or user at or near a rate limit");
	else
		client_reply(c, 0, "");
}

static void
client_dispatch(struct mproc *p, struct imsg *m)
{
	struct ctl_client	*c = p->arg;
	struct ctl_request	 req;

	if (c->closing) {
		if (m->fd != -1)
			close(m->fd);
		return;
	}
	if (m->hdr.type == IMSG_CTL_TABLE_LOOKUP) {
		control_table_lookup(c, m);
		return;
	}
	if (m->hdr.type != IMSG_CTL_REQUEST || m->len != sizeof(req) ||
	    m->fd != -1) {
		if (m->fd != -1)
			close(m->fd);
		log_warnx("malformed request from uid %u; dropped",
		    (unsigned)c->uid);
		client_free_later(c);
		return;
	}
	client_touch(c);
	memcpy(&req, m->data, sizeof(req));
	if (proto_valid_ctl_request(&req) == -1) {
		log_warnx("invalid request from uid %u; dropped",
		    (unsigned)c->uid);
		client_free_later(c);
		return;
	}
	req.uid = c->uid;		/* what the kernel says, not the client */
	req.reqid = c->id;
	if (cmd_needs_root(req.cmd) && c->uid != 0) {
		client_reply(c, 1, "permission denied");
		return;
	}
	switch (req.cmd) {
	case CTL_SUBMIT:
		control_submit(c);
		return;
	case CTL_UPDATE_TABLE: {
		char name[128];

		if (config_find_table(conf, req.arg) == NULL ||
		    strlen(req.arg) >= sizeof(name)) {
			client_reply(c, 1, "no such table");
			return;
		}
		memset(name, 0, sizeof(name));
		memcpy(name, req.arg, strlen(req.arg));
		mproc_compose(&c_parent, IMSG_LKA_UPDATE_TABLE, c->id, -1,
		    name, sizeof(name));
		client_reply(c, 0, "table reloaded");
		return;
	}
	case CTL_PAUSE_SMTP:
	case CTL_RESUME_SMTP:
		mproc_compose(&c_parent, req.cmd == CTL_PAUSE_SMTP ?
		    IMSG_PAUSE : IMSG_RESUME, c->id, -1, NULL, 0);
		client_reply(c, 0, req.cmd == CTL_PAUSE_SMTP ?
		    "smtp paused" : "smtp resumed");
		return;
	case CTL_LOG_VERBOSE:
	case CTL_LOG_BRIEF:
		log_setverbose(req.cmd == CTL_LOG_VERBOSE);
		client_reply(c, 0, "logging level changed");
		return;
	case CTL_SHOW_LIMITS:
		client_show_limits(c);
		return;
	case CTL_SHOW_MILTERS:
	case CTL_RELOAD:
		/* the parent holds the running configuration and the
		 * workers' counters (smtpd/milter_connect.c) */
		mproc_compose(&c_parent, IMSG_CTL_REQUEST, c->id, -1, &req,
		    sizeof(req));
		if (++c->inflight >= CONTROL_MAX_INFLIGHT)
			mproc_hold_reading(&c->mp, 1);
		return;
	default:
		if (req.cmd == CTL_SHOW_METRICS)
			c->metrics = 1;
		mproc_compose(&c_queue, IMSG_CTL_REQUEST, c->id, -1, &req,
		    sizeof(req));
		if (++c->inflight >= CONTROL_MAX_INFLIGHT)
			mproc_hold_reading(&c->mp, 1);
	}
}

/* may a new client of this uid be served?  NULL, or why not */
static const char *
client_refusal(uid_t uid)
{
	struct ctl_client	*c;
	int			 nuid = 0, nusers = 0;

	if (nclients >= CONTROL_MAX_CLIENTS)
		return "too many control clients; try again later";
	if (uid == 0)
		return NULL;
	TAILQ_FOREACH(c, &clients, entry) {
		if (c->uid == 0)
			continue;
		nusers++;
		if (c->uid == uid)
			nuid++;
	}
	if (nuid >= CONTROL_MAX_PER_UID)
		return "too many control connections from your uid; "
		    "try again later";
	if (nusers >= CONTROL_MAX_CLIENTS - CONTROL_ROOT_RESERVE)
		return "too many control clients; try again later";
	return NULL;
}

/*
 * Told why in one write; our side is shut for writing at once, and
 * closed when the client's request arrives or a second has passed.  A
 * client (smtpctl, sendmail) writes its request right after connect():
 * closed before that write, it would only see EPIPE, not the reason.
 * Only so many wait like this; beyond that they are closed at once.
 */
#define CONTROL_MAX_REFUSED	64

static int	nrefused;

static void
refused_close(evutil_socket_t fd, short ev, void *arg)
{
	close(fd);
	nrefused--;
}

static void
refuse_client(int fd, uid_t uid, const char *why)
{
	struct imsgbuf		ib;
	struct ctl_reply	r;
	struct timeval		tv = { 1, 0 };
	static time_t		last;
	time_t			now = time(NULL);

	if (now != last) {	/* a flood of refusals is one line a second */
		last = now;
		log_warnx("control: uid %u refused: %s", (unsigned)uid, why);
	}
	memset(&r, 0, sizeof(r));
	r.end = 1;
	r.status = CTL_STATUS_BUSY;
	snprintf(r.text, sizeof(r.text), "%s", why);
	imsgbuf_init(&ib, fd);
	if (imsg_compose(&ib, IMSG_CTL_REPLY, 0, -1, &r, sizeof(r)) == 0)
		(void)imsg_flush_nb(&ib);
	imsgbuf_clear(&ib);
	if (nrefused >= CONTROL_MAX_REFUSED ||
	    shutdown(fd, SHUT_WR) == -1 ||
	    event_base_once(ev_base, fd, EV_READ, refused_close, NULL,
	    &tv) == -1) {
		close(fd);
		return;
	}
	nrefused++;
}

static void
on_accept(evutil_socket_t lfd, short ev, void *arg)
{
	struct ctl_client	*c;
	const char		*why;
	uid_t			 uid;
	int			 fd;

	if ((fd = platform_accept_nb(lfd, NULL, NULL)) == -1) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept");
		return;
	}
	if (platform_peer_uid(fd, &uid) == -1) {
		log_warn("peer credentials");
		close(fd);
		return;
	}
	if ((why = client_refusal(uid)) != NULL) {
		refuse_client(fd, uid, why);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	if ((c->ev_idle = evtimer_new(ev_base, client_idle_timeout, c)) ==
	    NULL)
		fatal("evtimer_new");
	c->id = ++next_client;
	c->uid = uid;
	mproc_init(&c->mp, fd, "control client", client_dispatch, c);
	c->mp.closed = client_closed;
	c->mp.untrusted = 1;
	c->mp.throttle_reads = 1;
	/* root may take its time reading a long answer (show queue | less) */
	if (uid == 0)
		c->mp.drain_timeout = 0;
	TAILQ_INSERT_TAIL(&clients, c, entry);
	nclients++;
	client_touch(c);
}

/*
 * show metrics: the queue's text is followed by the smtp workers'
 * counters, which control reads itself (common/smtpcount.c), a reply
 * per line as the queue's
 */
static void
client_smtp_metrics(struct ctl_client *c)
{
	struct metrics		 m;
	struct ctl_reply	 r;
	const char		*text, *nl;

	metrics_init(&m);
	smtpcount_metrics(&m);
	if ((text = metrics_text(&m, NULL)) == NULL)
		fatalx("smtp metrics text");
	while (*text != '\0') {
		if ((nl = strchr(text, '\n')) == NULL)
			nl = text + strlen(text);
		memset(&r, 0, sizeof(r));
		snprintf(r.text, sizeof(r.text), "%.*s", (int)(nl - text),
		    text);
		mproc_compose(&c->mp, IMSG_CTL_REPLY, 0, -1, &r, sizeof(r));
		text = *nl ? nl + 1 : nl;
	}
	metrics_free(&m);
}

/* a reply from the queue or the parent, on to its client */
static void
control_reply(struct mproc *p, struct imsg *m)
{
	struct ctl_reply	 r;
	struct ctl_client	*c;

	PROTO_READ(p, m, &r, proto_valid_ctl_reply);
	if (r.reqid & METRICS_HTTP_REQID) {
		metrics_http_reply(&r);
		return;
	}
	if ((c = client_find(r.reqid)) == NULL)
		return;		/* the client went away */
	if (r.end && c->metrics) {
		c->metrics = 0;
		if (r.status == 0)
			client_smtp_metrics(c);
	}
	mproc_compose(&c->mp, IMSG_CTL_REPLY, 0, -1, &r, sizeof(r));
	client_touch(c);
	if (r.end && c->inflight > 0 && --c->inflight < CONTROL_MAX_INFLIGHT)
		mproc_hold_reading(&c->mp, 0);
}

static void
control_queue_dispatch(struct mproc *p, struct imsg *m)
{
	struct ctl_queue_entry	 q;
	struct ctl_client	*c;

	switch (m->hdr.type) {
	case IMSG_CTL_REPLY:
		control_reply(p, m);
		break;
	case IMSG_CTL_QUEUE_ENTRY:
		PROTO_READ(p, m, &q, proto_valid_ctl_queue_entry);
		if ((c = client_find(q.reqid)) == NULL)
			return;
		mproc_compose(&c->mp, IMSG_CTL_QUEUE_ENTRY, 0, -1, &q,
		    sizeof(q));
		break;
	default:
		fatalx("unexpected message %u from queue", m->hdr.type);
	}
}

/* lookup's answer to smtpctl table lookup, by way of the parent */
static void
control_table_result(struct mproc *p, struct imsg *m)
{
	struct ctl_table_result	*r;
	struct ctl_client	*c;

	if ((r = malloc(sizeof(*r))) == NULL)
		fatal("malloc");
	PROTO_READ(p, m, r, proto_valid_ctl_table_result);
	if ((c = client_find(r->reqid)) != NULL) {
		mproc_compose(&c->mp, IMSG_CTL_TABLE_RESULT, 0, -1, r,
		    sizeof(*r));
		client_touch(c);
		if (c->inflight > 0 && --c->inflight < CONTROL_MAX_INFLIGHT)
			mproc_hold_reading(&c->mp, 0);
	}
	freezero(r, sizeof(*r));
}

static void
control_parent_dispatch(struct mproc *p, struct imsg *m)
{
	struct ctl_milter	 mi;
	struct ctl_client	*c;

	switch (m->hdr.type) {
	case IMSG_CTL_REPLY:
		control_reply(p, m);
		break;
	case IMSG_CTL_TABLE_RESULT:
		control_table_result(p, m);
		break;
	case IMSG_CTL_MILTER:
		PROTO_READ(p, m, &mi, proto_valid_ctl_milter);
		if ((c = client_find(mi.reqid)) == NULL)
			return;
		mproc_compose(&c->mp, IMSG_CTL_MILTER, 0, -1, &mi,
		    sizeof(mi));
		break;
	default:
		fatalx("unexpected message %u from parent", m->hdr.type);
	}
}

/* a scrape of GET /metrics: the queue's text, as smtpctl show metrics */
static void
metrics_ask(uint32_t reqid)
{
	struct ctl_request	req;

	memset(&req, 0, sizeof(req));
	req.cmd = CTL_SHOW_METRICS;
	req.reqid = reqid;
	req.uid = UINT32_MAX;	/* nobody's: the counters are anyone's */
	mproc_compose(&c_queue, IMSG_CTL_REQUEST, reqid, -1, &req,
	    sizeof(req));
}

#ifdef POSTHASTE_FUZZ
/*
 * Only in mk/fuzz.mk's build: control_main() without the privilege drop,
 * the sandbox and the loop, which fuzz_control.c turns itself; and how
 * many clients are held, which must come back to 0.
 */
void
control_fuzz_start(int parent, int queue, int ctlsock)
{
	mproc_init(&c_parent, parent, "parent", control_parent_dispatch,
	    NULL);
	mproc_init(&c_queue, queue, "queue", control_queue_dispatch, NULL);
	ev_accept = event_new(ev_base, ctlsock, EV_READ | EV_PERSIST,
	    on_accept, NULL);
	event_add(ev_accept, NULL);
}

int
control_fuzz_nclients(void)
{
	return nclients;
}
#endif

void
control_main(struct proc_fds *f)
{
	proc_setup("control");
	privsep_drop(SMTPD_USER, SMTPD_EMPTY_DIR);
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	sandbox_enter(SANDBOX_CONTROL);
	mproc_init(&c_parent, f->parent, "parent", control_parent_dispatch,
	    NULL);
	mproc_init(&c_queue, f->queue, "queue", control_queue_dispatch, NULL);
	ev_accept = event_new(ev_base, f->ctlsock, EV_READ | EV_PERSIST,
	    on_accept, NULL);
	event_add(ev_accept, NULL);
	if (f->metricsock != -1)
		metrics_http_init(ev_base, f->metricsock, metrics_ask);
	proc_on_term(NULL);
	event_base_dispatch(ev_base);
	exit(0);
}
