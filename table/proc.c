/*
 * proc.c -- the proc: shared-table backend (backend.h): a table answered
 * by a program of the site's, speaking OpenSMTPD's table protocol
 * (smtpd-tables(7), version 0.1) on its standard input and output, so
 * the table programs written for OpenSMTPD 7.6 and later (table-passwd,
 * table-sqlite, a script written to the manual) work unchanged.
 *
 *   table users proc:/usr/libexec/table-users
 *   table users "proc:/usr/local/bin/table-x -c /etc/x.conf"
 *
 * What follows "proc:" is the program's absolute path and its arguments,
 * split at blanks (no quoting, no shell, no variables: nothing chooses
 * the program but the configuration).
 *
 * The lookup process starts the program before it enters its sandbox
 * (start(), as lookup's user, in a session of its own, with a socket as
 * its standard input and output and lookup's standard error), and
 * cannot start it again afterwards: the sandbox forbids fork and exec.
 * So a program that exits, or writes a line this file does not accept,
 * is given up on: the queries waiting for it and every later one answer
 * TABLE_ERROR (a temporary failure for the client, never "no such
 * user"), logged once, until a reload starts a new lookup process and
 * with it a new program.  The old program sees its input end when the
 * old lookup exits; it should exit then (it stays a zombie until then if
 * it dies first: lookup may not wait for children either).
 *
 * The dialogue: we write "config|smtpd-version|V", "config|protocol|0.1",
 * "config|tablename|NAME", "config|ready"; the program registers the
 * services it answers, "register|alias" ..., and "register|ready".
 * Requests written before that wait here.  Then each question is one
 * line, "table|0.1|SECONDS.MICROS|NAME|lookup|SERVICE|ID|KEY" ("check"
 * for the membership services: domain, netaddr, mailaddr), answered in
 * any order by "lookup-result|ID|found|VALUE", "...|not-found" or
 * "...|error|MESSAGE" (proc_table.h).  IDs are a counter in hex, so an
 * answer to a question we gave up on (PROC_TIMEOUT) is known as late and
 * dropped, while an ID never asked is garbage.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "backend.h"
#include "log.h"
#include "platform.h"
#include "proc.h"
#include "proc_table.h"

#define PROC_ARGS_MAX		16
#define PROC_TIMEOUT		5	/* seconds, one question */
#define PROC_HANDSHAKE_TIMEOUT	10	/* seconds, up to "register|ready" */
#define PROC_INFLIGHT_MAX	1024	/* questions waiting, per table */

enum proc_state {
	PS_IDLE,	/* opened (the parent's check), not started */
	PS_HANDSHAKE,	/* started, waiting for "register|ready" */
	PS_READY,
	PS_DEAD,	/* exited or misbehaved: TABLE_ERROR until a reload */
};

struct proc_table;

struct proc_req {
	TAILQ_ENTRY(proc_req)	 entry;
	struct proc_table	*pt;
	struct table_query	*q;
	uint64_t		 id;	/* 0: not written yet */
	enum proc_op		 op;
	struct event		*timer;
};

struct proc_table {
	const struct table	*t;
	char			 args[CONF_PATH_MAX];
	char			*argv[PROC_ARGS_MAX + 1];
	enum proc_state		 state;
	pid_t			 pid;
	struct bufferevent	*bev;
	struct event		*hs_timer;
	unsigned		 services;	/* 1 << enum table_service */
	uint64_t		 last_id;
	TAILQ_HEAD(, proc_req)	 reqs;
	size_t			 nreqs;
	time_t			 last_complaint;
};

/*
 * The parser (proc_table.h)
 */

static const char *const other_services[] = {
	/* OpenSMTPD's, which nothing here asks: accepted, not used */
	"auth", "source", "addrname", "relayhost", "regex",
};

int
proc_parse_register(const char *line, enum table_service *service)
{
	const char	*s;
	size_t		 i;

	if (strncmp(line, "register|", 9) != 0)
		return -1;
	s = line + 9;
	if (strcmp(s, "ready") == 0)
		return PROC_REG_READY;
	if (table_service_parse(s, service) == 0)
		return PROC_REG_SERVICE;
	for (i = 0; i < sizeof(other_services) / sizeof(*other_services);
	    i++)
		if (strcmp(s, other_services[i]) == 0)
			return PROC_REG_OTHER;
	return -1;
}

/* 1-16 lower-case hex digits, no leading zero, then '|' */
static const char *
parse_id(const char *s, uint64_t *id)
{
	size_t	n;

	*id = 0;
	for (n = 0; s[n] != '|'; n++) {
		if (n == PROC_ID_MAX)
			return NULL;
		if (s[n] >= '0' && s[n] <= '9')
			*id = *id << 4 | (uint64_t)(s[n] - '0');
		else if (s[n] >= 'a' && s[n] <= 'f')
			*id = *id << 4 | (uint64_t)(s[n] - 'a' + 10);
		else
			return NULL;	/* NUL too */
	}
	if (n == 0 || (s[0] == '0' && n > 1))
		return NULL;
	return s + n + 1;
}

int
proc_parse_answer(const char *line, struct proc_answer *a)
{
	const char	*s;

	memset(a, 0, sizeof(*a));
	if (strncmp(line, "lookup-result|", 14) == 0) {
		a->op = PROC_OP_LOOKUP;
		s = line + 14;
	} else if (strncmp(line, "check-result|", 13) == 0) {
		a->op = PROC_OP_CHECK;
		s = line + 13;
	} else
		return -1;
	if ((s = parse_id(s, &a->id)) == NULL)
		return -1;
	if (strcmp(s, "not-found") == 0) {
		a->status = TABLE_NOTFOUND;
		return 0;
	}
	if (strcmp(s, "error") == 0 || strncmp(s, "error|", 6) == 0) {
		a->status = TABLE_ERROR;
		a->text = s[5] == '|' ? s + 6 : NULL;
		return 0;
	}
	if (a->op == PROC_OP_CHECK && (strcmp(s, "found") == 0 ||
	    strncmp(s, "found|", 6) == 0)) {
		a->status = TABLE_FOUND;
		return 0;
	}
	if (a->op == PROC_OP_LOOKUP && strncmp(s, "found|", 6) == 0) {
		a->status = TABLE_FOUND;
		a->text = s + 6;
		return 0;
	}
	return -1;
}

enum proc_op
proc_service_op(enum table_service s)
{
	switch (s) {
	case TS_DOMAIN:
	case TS_NETADDR:
	case TS_MAILADDR:
		return PROC_OP_CHECK;
	default:
		return PROC_OP_LOOKUP;
	}
}

/*
 * The program
 */

/* one line a second at most of the same kind of trouble */
static int
may_complain(struct proc_table *pt)
{
	time_t	now = time(NULL);

	if (now == pt->last_complaint)
		return 0;
	pt->last_complaint = now;
	return 1;
}

static void
req_finish(struct proc_req *r, int status, const char *value)
{
	struct proc_table	*pt = r->pt;
	struct table_query	*q = r->q;

	TAILQ_REMOVE(&pt->reqs, r, entry);
	pt->nreqs--;
	if (r->timer != NULL)
		event_free(r->timer);
	free(r);
	table_query_done(q, status, value);
}

/* given up on: every question waiting now, and every later one, fails */
static void
proc_die(struct proc_table *pt, const char *why)
{
	struct proc_req	*r;

	if (pt->state == PS_DEAD)
		return;
	log_warnx("table %s: program %s %s: its questions fail until a "
	    "reload", pt->t->name, pt->argv[0], why);
	pt->state = PS_DEAD;
	if (pt->bev != NULL) {
		bufferevent_free(pt->bev);	/* closes the socket */
		pt->bev = NULL;
	}
	if (pt->hs_timer != NULL) {
		event_free(pt->hs_timer);
		pt->hs_timer = NULL;
	}
	while ((r = TAILQ_FIRST(&pt->reqs)) != NULL)
		req_finish(r, TABLE_ERROR, NULL);
}

static void
req_send(struct proc_req *r)
{
	struct proc_table	*pt = r->pt;
	struct timespec		 ts;

	if (!(pt->services & (1u << r->q->service))) {
		if (may_complain(pt))
			log_warnx("table %s: the program does not serve the "
			    "%s service", pt->t->name,
			    table_service_name(r->q->service));
		req_finish(r, TABLE_ERROR, NULL);
		return;
	}
	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		fatal("clock_gettime");
	r->id = ++pt->last_id;
	if (evbuffer_add_printf(bufferevent_get_output(pt->bev),
	    "table|%s|%lld.%06ld|%s|%s|%s|%llx|%s\n", PROC_PROTOCOL,
	    (long long)ts.tv_sec, (long)(ts.tv_nsec / 1000), pt->t->name,
	    r->op == PROC_OP_CHECK ? "check" : "lookup",
	    table_service_name(r->q->service), (unsigned long long)r->id,
	    r->q->key) == -1) {
		log_warnx("table %s: cannot queue a request", pt->t->name);
		req_finish(r, TABLE_ERROR, NULL);
	}
}

static struct proc_req *
req_find(struct proc_table *pt, uint64_t id)
{
	struct proc_req	*r;

	TAILQ_FOREACH(r, &pt->reqs, entry)
		if (r->id == id)
			return r;
	return NULL;
}

static void
on_answer(struct proc_table *pt, const char *line)
{
	struct proc_answer	 a;
	struct proc_req		*r;

	if (proc_parse_answer(line, &a) == -1) {
		proc_die(pt, "wrote a line that is no answer");
		return;
	}
	if (a.id == 0 || a.id > pt->last_id) {
		proc_die(pt, "answered a question never asked");
		return;
	}
	if ((r = req_find(pt, a.id)) == NULL) {
		log_debug("table %s: a late answer (%llx) dropped",
		    pt->t->name, (unsigned long long)a.id);
		return;
	}
	if (r->op != a.op) {
		proc_die(pt, "answered a check with a lookup's result or "
		    "the other way round");
		return;
	}
	if (a.status == TABLE_ERROR && may_complain(pt))
		log_warnx("table %s: the program failed on %s \"%s\": %s",
		    pt->t->name, table_service_name(r->q->service),
		    r->q->key, a.text != NULL ? a.text : "(no reason given)");
	req_finish(r, a.status, a.text);
}

static void
on_register(struct proc_table *pt, const char *line)
{
	enum table_service	 s;
	struct proc_req		*r, *next;

	switch (proc_parse_register(line, &s)) {
	case PROC_REG_SERVICE:
		pt->services |= 1u << s;
		return;
	case PROC_REG_OTHER:
		return;
	case PROC_REG_READY:
		break;
	default:
		proc_die(pt, "wrote a line that is no registration");
		return;
	}
	if (pt->services == 0) {
		proc_die(pt, "registered no service we ask");
		return;
	}
	pt->state = PS_READY;
	event_free(pt->hs_timer);
	pt->hs_timer = NULL;
	for (r = TAILQ_FIRST(&pt->reqs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		req_send(r);
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct proc_table	*pt = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	char			*line;
	size_t			 len;

	while (pt->state != PS_DEAD &&
	    (line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		if (len > PROC_LINE_MAX || strlen(line) != len)
			proc_die(pt, "wrote a line too long or with a NUL");
		else if (pt->state == PS_HANDSHAKE)
			on_register(pt, line);
		else
			on_answer(pt, line);
		free(line);
	}
	if (pt->state != PS_DEAD && evbuffer_get_length(in) > PROC_LINE_MAX)
		proc_die(pt, "wrote a line too long");
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct proc_table	*pt = arg;

	(void)bev;
	if (what & BEV_EVENT_EOF)
		proc_die(pt, "exited (end of its output)");
	else if (what & BEV_EVENT_ERROR)
		proc_die(pt, strerror(EVUTIL_SOCKET_ERROR()));
}

static void
on_handshake_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	proc_die(arg, "did not register its services in time");
}

static void
on_req_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct proc_req		*r = arg;
	struct proc_table	*pt = r->pt;

	(void)fd;
	(void)ev;
	if (may_complain(pt))
		log_warnx("table %s: no answer for %s \"%s\" in %d seconds",
		    pt->t->name, table_service_name(r->q->service), r->q->key,
		    PROC_TIMEOUT);
	req_finish(r, TABLE_ERROR, NULL);
}

/*
 * The driver
 */

static void *
proc_open(const struct table *t, char *err, size_t errlen)
{
	struct proc_table	*pt;
	struct stat		 sb;
	char			*p, *word;
	int			 n = 0;

	if (strchr(t->name, '|') != NULL) {
		snprintf(err, errlen, "a proc: table's name cannot hold '|' "
		    "(the protocol's separator)");
		return NULL;
	}
	if ((pt = calloc(1, sizeof(*pt))) == NULL)
		fatal("calloc");
	pt->t = t;
	pt->pid = -1;
	TAILQ_INIT(&pt->reqs);
	memcpy(pt->args, t->path, sizeof(pt->args));
	p = pt->args;
	while ((word = strsep(&p, " \t")) != NULL) {
		if (*word == '\0')
			continue;
		if (n == PROC_ARGS_MAX) {
			snprintf(err, errlen, "more than %d arguments",
			    PROC_ARGS_MAX - 1);
			free(pt);
			return NULL;
		}
		pt->argv[n++] = word;
	}
	pt->argv[n] = NULL;
	if (n == 0 || pt->argv[0][0] != '/') {
		snprintf(err, errlen, "the program's path must be absolute");
		free(pt);
		return NULL;
	}
	if (stat(pt->argv[0], &sb) == -1) {
		snprintf(err, errlen, "%.300s: %s", pt->argv[0],
		    strerror(errno));
		free(pt);
		return NULL;
	}
	if (!S_ISREG(sb.st_mode) || (sb.st_mode & 0111) == 0) {
		snprintf(err, errlen, "%.300s: not an executable file",
		    pt->argv[0]);
		free(pt);
		return NULL;
	}
	return pt;
}

/* the child, between fork and exec: async-signal-safe calls only */
static void __attribute__((noreturn))
child_exec(struct proc_table *pt, int fd)
{
	static const char	 msg[] = "smtpd: a proc: table's program "
	    "could not be run\n";
	sigset_t		 set;
	ssize_t			 n;

	/* its own session: a ^C to smtpd -d is not a signal to it */
	(void)setsid();
	if (dup2(fd, 0) == -1 || dup2(fd, 1) == -1)
		_exit(127);
	/* lookup's channels and everything else stay with lookup */
	(void)platform_close_range(3, ~0U);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	execv(pt->argv[0], pt->argv);
	n = write(2, msg, sizeof(msg) - 1);
	(void)n;
	_exit(127);
}

static int
proc_start(void *h, struct event_base *eb)
{
	struct proc_table	*pt = h;
	struct timeval		 tv = { PROC_HANDSHAKE_TIMEOUT, 0 };
	struct evbuffer		*out;
	int			 sv[2];

	if (access(pt->argv[0], X_OK) == -1) {
		log_warn("table %s: %s", pt->t->name, pt->argv[0]);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("table %s: socketpair", pt->t->name);
		return -1;
	}
	switch (pt->pid = fork()) {
	case -1:
		log_warn("table %s: fork", pt->t->name);
		close(sv[0]);
		close(sv[1]);
		return -1;
	case 0:
		child_exec(pt, sv[1]);
	default:
		break;
	}
	close(sv[1]);
	if (evutil_make_socket_nonblocking(sv[0]) == -1 ||
	    (pt->bev = bufferevent_socket_new(eb, sv[0],
	    BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (pt->hs_timer = evtimer_new(eb, on_handshake_timeout, pt)) ==
	    NULL)
		fatalx("table %s: libevent", pt->t->name);
	bufferevent_setcb(pt->bev, on_read, NULL, on_event, pt);
	if (bufferevent_enable(pt->bev, EV_READ | EV_WRITE) == -1 ||
	    evtimer_add(pt->hs_timer, &tv) == -1)
		fatalx("table %s: libevent", pt->t->name);
	pt->state = PS_HANDSHAKE;
	out = bufferevent_get_output(pt->bev);
	if (evbuffer_add_printf(out, "config|smtpd-version|%s\n"
	    "config|protocol|%s\nconfig|tablename|%s\nconfig|ready\n",
	    SMTPD_VERSION, PROC_PROTOCOL, pt->t->name) == -1)
		fatalx("table %s: evbuffer_add_printf", pt->t->name);
	log_debug("table %s: started %s (pid %ld)", pt->t->name, pt->argv[0],
	    (long)pt->pid);
	return 0;
}

static int
proc_serves(void *h, enum table_service s)
{
	struct proc_table	*pt = h;

	/* before the handshake ends the question waits, and is checked */
	if (pt->state != PS_READY)
		return 1;
	return (pt->services & (1u << s)) != 0;
}

static void
proc_query(void *h, struct table_query *q)
{
	struct proc_table	*pt = h;
	struct proc_req		*r;
	struct timeval		 tv = { PROC_TIMEOUT, 0 };

	if (pt->state != PS_HANDSHAKE && pt->state != PS_READY) {
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	if (pt->nreqs >= PROC_INFLIGHT_MAX) {
		if (may_complain(pt))
			log_warnx("table %s: %d questions waiting for the "
			    "program already", pt->t->name, PROC_INFLIGHT_MAX);
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("calloc");
	r->pt = pt;
	r->q = q;
	r->op = proc_service_op(q->service);
	if ((r->timer = evtimer_new(bufferevent_get_base(pt->bev),
	    on_req_timeout, r)) == NULL || evtimer_add(r->timer, &tv) == -1)
		fatalx("table %s: evtimer", pt->t->name);
	TAILQ_INSERT_TAIL(&pt->reqs, r, entry);
	pt->nreqs++;
	if (pt->state == PS_READY)
		req_send(r);
}

static void
proc_close(void *h)
{
	struct proc_table	*pt = h;

	if (pt->state == PS_HANDSHAKE || pt->state == PS_READY)
		proc_die(pt, "closed");
	free(pt);
}

const struct table_driver table_driver_proc = {
	.scheme = "proc",
	.has_file = 0,
	.open = proc_open,
	.start = proc_start,
	.serves = proc_serves,
	.query = proc_query,
	.close = proc_close,
};
