/*
 * smtp_milter.c -- the milter client: mail filters (Sendmail's milter
 * protocol, version 6, as Postfix speaks it) see each stage of an SMTP
 * session and may refuse it, hold or drop the message, or change it.
 *
 * Connections.  Each session opens one connection to each filter of its
 * chain (the listener's "milter ...", or "sendmail milter ..." for local
 * submission), as Postfix does.  A worker is chrooted into an empty
 * directory and its seccomp profile has no socket() or connect(): the
 * parent connects for it (IMSG_MILTER_CONNECT; smtpd/milter_connect.c)
 * and passes the socket.  So a unix socket anywhere in the file system
 * works without opening its directory to _smtpd, and a worker taken over
 * by a client still cannot connect anywhere it likes: only to the filters
 * the configuration names.
 *
 * Stages.  The session's commands call smtp_milter_stage() where Postfix
 * calls its filters: after our own checks accepted the command and
 * before we answer it.  The filters of the chain are asked one after the
 * other; the first that refuses decides, and the ones after it are not
 * asked.  A stage a filter negotiated away (SMFIP_NO*) is not sent to it;
 * one it asked not to answer (SMFIP_NR_*) is sent without waiting.  The
 * message itself (headers, body, end of message, and what the filters
 * change) is smtp_milter_eom.c's.
 *
 * Failures.  A filter that cannot be reached, times out, closes, or
 * sends what the protocol does not allow costs the session its on-error
 * action and nothing more: accept (as if it were not configured), tempfail
 * or reject (this command and every later transaction of the session,
 * Postfix's milter_default_action), quarantine (accepted, held in the
 * queue).  Its connection is closed; the session, the worker and other
 * sessions go on.
 *
 * Counters per filter go to the parent at most once a second for
 * smtpctl show milters (struct milter_stats).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "addr.h"
#include "log.h"
#include "smtpcount.h"
#include "milter.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "smtp_milter.h"
#include "smtp_session.h"

/* the protocol steps we can do without and the flags we understand */
#define OFFER_PROTOCOL	(SMFIP_ALL & ~SMFIP_RCPT_REJ)

/*
 * Connections kept for the next session ("reuse"): when a session ends
 * cleanly, SMFIC_QUIT_NC tells the filter a new connection follows on
 * the same socket (libmilter then awaits the next CONNECT with the
 * options it negotiated), and the socket waits here, at most POOL_IDLE
 * seconds, for the next session of this worker.  That session needs
 * neither the parent, nor a TCP handshake, nor a new negotiation, and a
 * libmilter filter no new thread.  Postfix never does this, and not
 * every filter understands QUIT_NC (python3-milter's binding does not):
 * it is the filter's option, off by default.
 */
#define POOL_MAX	32	/* idle connections per filter and worker */
#define POOL_IDLE	60	/* seconds one is kept */

struct pooled {
	int		 fd;
	time_t		 since;
	uint32_t	 actions, protocol;
	char		*symbuf;
	char		*symlist[SMFIM_COUNT];
};
static struct pooled	pool[CONF_MAX_MILTERS][POOL_MAX];
static int		npool[CONF_MAX_MILTERS];

static struct milter_stats	 wstats[CONF_MAX_MILTERS];
static int			 wdirty[CONF_MAX_MILTERS];
static struct event		*ev_stats;

static void	conn_read(evutil_socket_t, short, void *);
static void	conn_write(evutil_socket_t, short, void *);
static void	conn_timeout(evutil_socket_t, short, void *);
static void	stage_next(struct milter_sess *);
static void	conn_settled(struct milter_sess *);

/* is c the connection its session's stage is asking now? */
int
milter_is_current(const struct milter_conn *c)
{
	const struct milter_sess *ms = c->ms;

	return ms->stage != -1 && ms->cur >= 0 && ms->cur < ms->n &&
	    &ms->c[ms->cur] == c;
}

/* ---- counters ---- */

static void
stats_flush(evutil_socket_t fd, short ev, void *arg)
{
	int	i;

	(void)fd;
	(void)ev;
	(void)arg;
	for (i = 0; i < CONF_MAX_MILTERS; i++) {
		if (!wdirty[i])
			continue;
		wdirty[i] = 0;
		mproc_compose(&smtp_worker.parent, IMSG_MILTER_STATS, 0, -1,
		    &wstats[i], sizeof(wstats[i]));
	}
}

static struct milter_stats *
stats_of(const struct milter_conf *mc)
{
	struct timeval		 tv = { 1, 0 };
	struct milter_stats	*st;

	if (mc->index < 0 || mc->index >= CONF_MAX_MILTERS)
		fatalx("milter index %d", mc->index);
	st = &wstats[mc->index];
	if (st->name[0] == '\0')
		snprintf(st->name, sizeof(st->name), "%s", mc->name);
	if (!wdirty[mc->index]) {
		wdirty[mc->index] = 1;
		if (ev_stats != NULL && !evtimer_pending(ev_stats, NULL))
			evtimer_add(ev_stats, &tv);
	}
	return st;
}

static void
stats_state(const struct milter_conf *mc, uint32_t state)
{
	struct milter_stats	*st = stats_of(mc);

	if (st->state != state) {
		st->state = state;
		st->since = time(NULL);
	}
}

void
milter_stats_count(struct milter_conn *c, int what)
{
	struct milter_stats	*st = stats_of(c->mc);

	/* per filter for "smtpctl show milters", all together for metrics */
	switch (what) {
	case MST_MESSAGE:
		st->messages++;
		break;
	case MST_ACCEPT:
		st->accepted++;
		smtpcount_milter(SCM_ACCEPT);
		break;
	case MST_REJECT:
		st->rejected++;
		smtpcount_milter(SCM_REJECT);
		break;
	case MST_TEMPFAIL:
		st->tempfailed++;
		smtpcount_milter(SCM_TEMPFAIL);
		break;
	case MST_DISCARD:
		st->discarded++;
		smtpcount_milter(SCM_DISCARD);
		break;
	case MST_QUARANTINE:
		st->quarantined++;
		smtpcount_milter(SCM_QUARANTINE);
		break;
	case MST_MODIFIED:
		st->modified++;
		smtpcount_milter(SCM_MODIFY);
		break;
	case MST_REPLY_REJECT:
		st->rejected++;
		smtpcount_milter(SCM_REPLYCODE);
		break;
	case MST_REPLY_TEMPFAIL:
		st->tempfailed++;
		smtpcount_milter(SCM_REPLYCODE);
		break;
	}
}

void
smtp_milter_init(void)
{
	struct listener	*l;

	if ((ev_stats = evtimer_new(ev_base, stats_flush, NULL)) == NULL)
		fatalx("evtimer_new");
	/* the queue id ("i") at MAIL needs a spare file at hand */
	if (conf->nlocal_milters > 0) {
		smtp_data_spares_prefill();
		return;
	}
	TAILQ_FOREACH(l, &conf->listeners, entry)
		if (l->nmilters > 0) {
			smtp_data_spares_prefill();
			return;
		}
}

/* ---- the session's chain ---- */

static const int *
chain_of(const struct session *s, int *n)
{
	if (s->flags & SS_LOCAL) {
		*n = conf->nlocal_milters;
		return conf->local_milters;
	}
	*n = s->l->nmilters;
	return s->l->milters;
}

int
smtp_milter_active(const struct session *s)
{
	int	n;

	chain_of(s, &n);
	return n > 0;
}

int
smtp_milter_busy(const struct session *s)
{
	return s->milter != NULL && (s->milter->stage != -1 ||
	    (s->flags & SS_MILTER_RCPT));
}

static void
conn_close(struct milter_conn *c)
{
	if (c->ev_read != NULL)
		event_free(c->ev_read);
	if (c->ev_write != NULL)
		event_free(c->ev_write);
	if (c->ev_timer != NULL)
		event_free(c->ev_timer);
	c->ev_read = c->ev_write = c->ev_timer = NULL;
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	if (c->in != NULL)
		evbuffer_free(c->in);
	if (c->out != NULL)
		evbuffer_free(c->out);
	c->in = c->out = NULL;
}

/* a filter's connection, done with its session, kept for the next */
static int
pool_put(struct milter_conn *c)
{
	struct pooled	*p;
	int		 i = c->mc->index, k, n;

	if (!c->mc->reuse || c->fd == -1 || c->state != MC_IDLE ||
	    c->draining || evbuffer_get_length(c->in) > 0 ||
	    npool[i] >= POOL_MAX)
		return 0;
	if (milter_put_empty(c->out, SMFIC_QUIT_NC) == -1)
		return 0;
	/* what is buffered (an abort, macros) and the QUIT_NC, at once */
	for (k = 0; k < 4 && evbuffer_get_length(c->out) > 0; k++)
		if ((n = evbuffer_write(c->out, c->fd)) == -1 && errno != EINTR)
			return 0;
	if (evbuffer_get_length(c->out) > 0)
		return 0;
	p = &pool[i][npool[i]++];
	p->fd = c->fd;
	p->since = time(NULL);
	p->actions = c->actions;
	p->protocol = c->protocol;
	p->symbuf = c->symbuf;
	memcpy(p->symlist, c->symlist, sizeof(p->symlist));
	c->symbuf = NULL;
	c->fd = -1;		/* conn_close() leaves it open */
	return 1;
}

/* an idle connection to the filter, alive, or -1 */
static int
pool_take(struct milter_conn *c)
{
	struct pooled	*p;
	struct msghdr	 msg;
	struct iovec	 iov;
	char		 b;
	ssize_t		 r;
	int		 i = c->mc->index;

	while (npool[i] > 0) {
		p = &pool[i][--npool[i]];
		/* the filter may have gone, or closed it meanwhile */
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = &b;
		iov.iov_len = 1;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		r = recvmsg(p->fd, &msg, MSG_PEEK | MSG_DONTWAIT);
		if (time(NULL) - p->since > POOL_IDLE || r != -1 ||
		    (errno != EAGAIN && errno != EWOULDBLOCK)) {
			close(p->fd);
			free(p->symbuf);
			continue;
		}
		c->fd = p->fd;
		c->actions = p->actions;
		c->protocol = p->protocol;
		c->symbuf = p->symbuf;
		memcpy(c->symlist, p->symlist, sizeof(c->symlist));
		return 0;
	}
	return -1;
}

void
smtp_milter_free(struct session *s)
{
	struct milter_sess	*ms = s->milter;
	int			 i;

	if (ms == NULL)
		return;
	milter_eom_free(ms);
	for (i = 0; i < ms->n; i++) {
		struct milter_conn *c = &ms->c[i];

		/* a polite goodbye, if it can be said without waiting */
		if (ms->stage == -1 && pool_put(c))
			;
		else if (c->fd != -1 && c->state != MC_DEAD &&
		    c->state != MC_WAITFD) {
			/* what is buffered (an abort, macros), then QUIT */
			if (milter_put_empty(c->out, SMFIC_QUIT) == 0)
				(void)evbuffer_write(c->out, c->fd);
		}
		conn_close(c);
		free(c->symbuf);
	}
	free(ms->argcopy);
	free(ms);
	s->milter = NULL;
}

/* ---- failures and the on-error action ---- */

static const char *
default_name(enum milter_default d)
{
	switch (d) {
	case MILTER_DEFAULT_ACCEPT:
		return "accept";
	case MILTER_DEFAULT_REJECT:
		return "reject";
	case MILTER_DEFAULT_QUARANTINE:
		return "quarantine";
	default:
		return "tempfail";
	}
}

void
milter_fail(struct milter_conn *c, const char *fmt, ...)
{
	struct milter_stats	*st = stats_of(c->mc);
	char			 why[256];
	va_list			 ap;
	int			 was;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warnx("%08x: milter %s: %s; on-error %s", c->ms->s->id,
	    c->mc->name, why, default_name(c->mc->on_error));
	st->errors++;
	st->error_at = time(NULL);
	snprintf(st->error, sizeof(st->error), "%s", why);
	stats_state(c->mc, MILTER_STATE_DOWN);
	conn_close(c);
	was = c->state;
	c->state = MC_DEAD;
	c->in_msg = 0;
	if (was == MC_NEGOTIATE) {
		conn_settled(c->ms);
		return;
	}
	/*
	 * A stage waiting for its reply goes on with its on-error action.
	 * (A write that fails while a stage is sending is seen by the
	 * sender, which checks the state after each send.)
	 */
	if (was == MC_BUSY && milter_is_current(c)) {
		if (c->ms->stage == MS_EOM)
			milter_eom_reply(c->ms, c, NULL);
		else
			stage_next(c->ms);
	}
}

/*
 * A dead filter's on-error action, the first time a stage would have
 * asked it: 1 if the stage goes on without it, 0 if the stage ends with
 * the verdict set.
 */
int
milter_apply_default(struct milter_sess *ms, struct milter_conn *c)
{
	struct milter_stats	*st = stats_of(c->mc);

	if (c->default_used && c->mc->on_error != MILTER_DEFAULT_TEMPFAIL &&
	    c->mc->on_error != MILTER_DEFAULT_REJECT)
		return 1;
	if (!c->default_used)
		st->defaults++;
	c->default_used = 1;
	switch (c->mc->on_error) {
	case MILTER_DEFAULT_ACCEPT:
		return 1;
	case MILTER_DEFAULT_QUARANTINE:
		snprintf(ms->hold, sizeof(ms->hold), "milter %.64s unavailable",
		    c->mc->name);
		return 1;
	case MILTER_DEFAULT_REJECT:
		ms->sticky = MILTER_REJECT;
		snprintf(ms->sticky_reply, sizeof(ms->sticky_reply),
		    "550 5.7.1 Command rejected");
		break;
	default:
		ms->sticky = MILTER_TEMPFAIL;
		snprintf(ms->sticky_reply, sizeof(ms->sticky_reply),
		    "451 4.7.1 Service unavailable - try again later");
		break;
	}
	ms->verdict = ms->sticky;
	ms->nlines = 0;
	return 0;
}

static char *
strdup_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* ---- I/O ---- */

void
milter_send(struct milter_conn *c)
{
	int	n;

	if (c->fd == -1)
		return;
	while (evbuffer_get_length(c->out) > 0) {
		if ((n = evbuffer_write(c->out, c->fd)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!event_pending(c->ev_write, EV_WRITE,
				    NULL))
					event_add(c->ev_write, NULL);
				return;
			}
			milter_fail(c, "write: %s", strerror(errno));
			return;
		}
	}
	if (event_pending(c->ev_write, EV_WRITE, NULL))
		event_del(c->ev_write);
}

static void
conn_write(evutil_socket_t fd, short ev, void *arg)
{
	struct milter_conn	*c = arg;

	(void)fd;
	(void)ev;
	milter_send(c);
	if (c->state != MC_DEAD && evbuffer_get_length(c->out) == 0 &&
	    c->ms->stage == MS_EOM && milter_is_current(c))
		milter_eom_drained(c->ms, c);
}

/* a reply is due from c within timeout seconds */
void
milter_wait(struct milter_conn *c, time_t timeout)
{
	struct timeval	tv;

	tv.tv_sec = timeout > 0 ? timeout : 1;
	tv.tv_usec = 0;
	c->state = MC_BUSY;
	evtimer_add(c->ev_timer, &tv);
}

static void
conn_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct milter_conn	*c = arg;

	(void)fd;
	(void)ev;
	if (c->state == MC_BUSY || c->state == MC_NEGOTIATE)
		milter_fail(c, "timeout waiting for a reply");
}

/* ---- macros ---- */

/* the macros Postfix sends at each stage when the filter names none */
static const char *const default_macros[SMFIM_COUNT] = {
	/* SMFIM_CONNECT */
	"j {daemon_name} {daemon_addr} v _",
	/* SMFIM_HELO */
	"{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
	/* SMFIM_ENVFROM */
	("i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} "
	    "{mail_mailer}"),
	/* SMFIM_ENVRCPT */
	"i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	/* SMFIM_DATA */
	"i",
	/* SMFIM_EOM */
	"i",
	/* SMFIM_EOH */
	"i",
};

static void
server_addr(const struct session *s, char *buf, size_t size)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	const void		*a;

	buf[0] = '\0';
	if (s->flags & SS_LOCAL)
		return;
	/* behind a proxy: the address the client connected to, on it */
	if (s->local_ss.ss_family != 0)
		ss = s->local_ss;
	else if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	if (ss.ss_family == AF_INET)
		a = &((struct sockaddr_in *)&ss)->sin_addr;
	else if (ss.ss_family == AF_INET6)
		a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
	else
		return;
	if (inet_ntop(ss.ss_family, a, buf, (socklen_t)size) == NULL)
		buf[0] = '\0';
}

static unsigned
client_port(const struct session *s)
{
	if (s->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&s->ss)->sin_port);
	if (s->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&s->ss)->sin6_port);
	return 0;
}

/*
 * The value of one macro (canonical name) in this session, or NULL when
 * it has none now (Postfix sends nothing for those either).
 */
static const char *
macro_value(struct session *s, const char *name, char *buf, size_t size)
{
	struct txn	*tx = s->tx;
	int		 local = (s->flags & SS_LOCAL) != 0;

	if (strcmp(name, "j") == 0 || strcmp(name, "{daemon_name}") == 0)
		return session_hostname(s);
	if (strcmp(name, "v") == 0)
		return SMTPD_NAME;
	if (strcmp(name, "_") == 0) {
		snprintf(buf, size, "%s [%s]", local ? "localhost" :
		    (s->rdns ? s->rdns : "unknown"), local ? "127.0.0.1" :
		    s->addr);
		return buf;
	}
	if (strcmp(name, "{client_addr}") == 0)
		return local ? "127.0.0.1" : s->addr;
	if (strcmp(name, "{client_port}") == 0) {
		snprintf(buf, size, "%u", client_port(s));
		return buf;
	}
	if (strcmp(name, "{client_name}") == 0)
		return local ? "localhost" : (s->rdns ? s->rdns : "unknown");
	if (strcmp(name, "{client_ptr}") == 0)
		return local ? "localhost" : (s->rdns ? s->rdns : "unknown");
	if (strcmp(name, "{daemon_addr}") == 0 ||
	    strcmp(name, "{if_addr}") == 0) {
		if (local)
			return "127.0.0.1";
		server_addr(s, buf, size);
		return buf[0] ? buf : NULL;
	}
	if (strcmp(name, "i") == 0) {
		/* at MAIL only for non-SMTP mail, as Postfix (its queue
		 * file opens after the first RCPT) */
		if (tx == NULL || (tx->msgfd == -1 && tx->resv_fd == -1) ||
		    (s->state == S_MAIL && !local))
			return NULL;
		snprintf(buf, size, "%08x", tx->msgfd != -1 ? tx->msgid :
		    tx->resv_msgid);
		return buf;
	}
	if (strcmp(name, "{auth_type}") == 0)
		return (s->flags & SS_AUTH) && !local ? s->auth_mech : NULL;
	if (strcmp(name, "{auth_authen}") == 0)
		return (s->flags & SS_AUTH) && !local ? s->authname : NULL;
	if (strcmp(name, "{auth_author}") == 0)
		return NULL;
	if (strncmp(name, "{mail_", 6) == 0) {
		if (tx == NULL)
			return NULL;
		if (strcmp(name, "{mail_addr}") == 0) {
			addr_to_string(&tx->mailfrom, buf, size);
			return buf;
		}
		if (local)
			return NULL;	/* Postfix: {mail_addr} only */
		if (strcmp(name, "{mail_host}") == 0)
			return tx->mailfrom.domain[0] ? tx->mailfrom.domain :
			    NULL;
		if (strcmp(name, "{mail_mailer}") == 0)
			return local ? "local" : "smtp";
		return NULL;
	}
	if (strncmp(name, "{rcpt_", 6) == 0) {
		const struct sdest *d;

		if (tx == NULL || tx->ndests <= tx->ndests_before)
			return NULL;
		d = &tx->dests[tx->ndests_before];
		if (strcmp(name, "{rcpt_addr}") == 0) {
			addr_to_string(&tx->rcpt_pending, buf, size);
			return buf;
		}
		if (local)
			return NULL;	/* Postfix: {rcpt_addr} only */
		if (strcmp(name, "{rcpt_host}") == 0)
			return d->d.dest.domain[0] ? d->d.dest.domain : NULL;
		if (strcmp(name, "{rcpt_mailer}") == 0)
			return d->d.dest_type == DEST_REMOTE ? "smtp" : "local";
		return NULL;
	}
	if (strcmp(name, "{tls_version}") == 0 || strcmp(name, "{cipher}") ==
	    0 || strcmp(name, "{cipher_bits}") == 0 ||
	    strcmp(name, "{cert_subject}") == 0 ||
	    strcmp(name, "{cert_issuer}") == 0)
		return (s->flags & SS_TLS) ? smtp_tls_macro(s, name, buf,
		    size) : NULL;
	return NULL;
}

/* SMFIC_MACRO for stage smfim, before command cmd */
void
milter_put_stage_macros(struct milter_conn *c, int smfim, char cmd)
{
	struct milter_macro	 m[24];
	char			 list[1024], canon[64], *p, *name, *last;
	char			 vals[24][320];
	const char		*v;
	size_t			 n = 0;

	snprintf(list, sizeof(list), "%s", c->symlist[smfim] != NULL ?
	    c->symlist[smfim] : default_macros[smfim]);
	for (p = strtok_r(list, " \t", &last); p != NULL && n < 24;
	    p = strtok_r(NULL, " \t", &last)) {
		if ((name = (char *)milter_macro_canon(p, canon,
		    sizeof(canon))) == NULL)
			continue;
		if ((v = macro_value(c->ms->s, name, vals[n],
		    sizeof(vals[n]))) == NULL)
			continue;
		if (v != vals[n])
			snprintf(vals[n], sizeof(vals[n]), "%s", v);
		/* the name as the filter wrote it: libmilter compares so */
		m[n].name = p;
		m[n].value = vals[n];
		n++;
	}
	if (milter_put_macros(c->out, cmd, m, n) == -1)
		fatalx("milter_put_macros");
}

/* ---- the reply to give the client ---- */

/*
 * A refusing reply (reject, tempfail, a reply code) as the session's
 * verdict: 1 when it refuses, 0 when it is not a refusal.  A reply code
 * that is not one (2xx, garbage) is the filter misbehaving: -1.
 */
int
milter_set_reply(struct milter_sess *ms, const struct milter_reply *r,
    struct milter_conn *c)
{
	const char	*err;
	int		 code, n;

	ms->nlines = 0;
	switch (r->cmd) {
	case SMFIR_REJECT:
		ms->verdict = MILTER_REJECT;
		milter_stats_count(c, MST_REJECT);
		return 1;
	case SMFIR_TEMPFAIL:
		ms->verdict = MILTER_TEMPFAIL;
		milter_stats_count(c, MST_TEMPFAIL);
		return 1;
	case SMFIR_DISCARD:
		ms->verdict = MILTER_DISCARD;
		milter_stats_count(c, MST_DISCARD);
		return 1;
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		ms->verdict = MILTER_CLOSE;
		milter_stats_count(c, MST_TEMPFAIL);
		return 1;
	case SMFIR_REPLYCODE:
		n = milter_reply_check(r->text, ms->replybuf,
		    sizeof(ms->replybuf), ms->lines, &code, &err);
		if (n <= 0) {
			milter_fail(c, "bad reply code: %s", err);
			return -1;
		}
		ms->nlines = n;
		if (code == 421)
			ms->verdict = MILTER_CLOSE;
		else
			ms->verdict = code >= 500 ? MILTER_REJECT :
			    MILTER_TEMPFAIL;
		milter_stats_count(c, code >= 500 ? MST_REPLY_REJECT :
		    MST_REPLY_TEMPFAIL);
		return 1;
	}
	return 0;
}

/*
 * Give the client the verdict's reply for a refused command: the
 * filter's own text, or Postfix's words.  what names the stage for the
 * reject log line.
 */
void
smtp_milter_reply(struct session *s, const char *what,
    const struct mailaddr *rcpt)
{
	struct milter_sess	*ms = s->milter;
	const char		*dflt;
	int			 i;

	if (ms == NULL)
		return;
	if (ms->nlines > 0) {
		session_log_reject(s, what, ms->lines[ms->nlines - 1], rcpt);
		for (i = 0; i < ms->nlines - 1; i++)
			session_reply(s, "%s", ms->lines[i]);
		/* a 421's last line closes the session: nothing after it */
		if (ms->verdict == MILTER_CLOSE)
			session_reply_close(s, "%s", ms->lines[i]);
		else
			session_reply(s, "%s", ms->lines[i]);
		return;
	}
	switch (ms->verdict) {
	case MILTER_REJECT:
		dflt = ms->sticky == MILTER_REJECT ? ms->sticky_reply :
		    "550 5.7.1 Command rejected";
		break;
	case MILTER_CLOSE:
		session_reject_close(s, what, "421 4.7.0 %s Server closing "
		    "connection", session_hostname(s));
		return;
	default:
		dflt = ms->sticky == MILTER_TEMPFAIL ? ms->sticky_reply :
		    "451 4.7.1 Service unavailable - try again later";
		break;
	}
	session_reject(s, what, rcpt, "%s", dflt);
}

void
smtp_milter_reply_line(struct session *s, char *buf, size_t size)
{
	struct milter_sess	*ms = s->milter;

	if (ms != NULL && ms->nlines > 0)
		snprintf(buf, size, "%s", ms->lines[ms->nlines - 1]);
	else if (ms != NULL && ms->verdict == MILTER_REJECT)
		snprintf(buf, size, "%s", ms->sticky == MILTER_REJECT ?
		    ms->sticky_reply : "550 5.7.1 Command rejected");
	else
		snprintf(buf, size, "%s", ms != NULL && ms->sticky ==
		    MILTER_TEMPFAIL ? ms->sticky_reply :
		    "451 4.7.1 Service unavailable - try again later");
}

/* ---- connecting ---- */

static void
conn_setup(struct milter_conn *c)
{
	if ((c->in = evbuffer_new()) == NULL ||
	    (c->out = evbuffer_new()) == NULL)
		fatal("evbuffer_new");
	if ((c->ev_read = event_new(ev_base, c->fd, EV_READ | EV_PERSIST,
	    conn_read, c)) == NULL ||
	    (c->ev_write = event_new(ev_base, c->fd, EV_WRITE, conn_write,
	    c)) == NULL ||
	    (c->ev_timer = evtimer_new(ev_base, conn_timeout, c)) == NULL)
		fatalx("event_new");
	event_add(c->ev_read, NULL);
}

static void
conn_negotiate(struct milter_conn *c)
{
	conn_setup(c);
	if (milter_put_optneg(c->out, MILTER_VERSION, SMFIF_ALL,
	    OFFER_PROTOCOL) == -1)
		fatalx("milter_put_optneg");
	milter_wait(c, c->mc->command_timeout);
	c->state = MC_NEGOTIATE;
	milter_send(c);
}

/*
 * The session begins: connect to each filter of its chain; done(s,
 * verdict) follows once the connect stage has been through all of them.
 */
int
smtp_milter_start(struct session *s, void (*done)(struct session *, int))
{
	struct milter_sess	*ms;
	struct milter_connect	 req;
	const int		*chain;
	int			 n, i;

	chain = chain_of(s, &n);
	if (n == 0)
		return 0;
	if ((ms = calloc(1, sizeof(*ms))) == NULL)
		fatal("calloc");
	ms->s = s;
	ms->n = n;
	ms->stage = MS_CONNECT;
	ms->cur = -1;
	ms->done = done;
	s->milter = ms;
	for (i = 0; i < n; i++) {
		struct milter_conn *c = &ms->c[i];

		c->ms = ms;
		c->fd = -1;
		if ((c->mc = config_milter_at(conf, chain[i])) == NULL)
			fatalx("milter %d not configured", chain[i]);
		if (c->mc->reuse && pool_take(c) == 0) {
			/* negotiated already: ready at once */
			conn_setup(c);
			c->state = MC_IDLE;
			stats_of(c->mc)->sessions++;
			continue;
		}
		ms->waiting++;
		c->state = MC_WAITFD;
		memset(&req, 0, sizeof(req));
		req.reqid = s->id;
		snprintf(req.name, sizeof(req.name), "%s", c->mc->name);
		mproc_compose(&smtp_worker.parent, IMSG_MILTER_CONNECT, s->id,
		    -1, &req, sizeof(req));
	}
	s->flags |= SS_WAIT;
	if (ms->waiting == 0) {
		/* every filter's connection came from the pool */
		ms->cur = 0;
		ms->in_call = 1;
		stage_next(ms);
		if (s->milter == ms)
			ms->in_call = 0;
	}
	return 1;
}

/* one connection is ready or failed: the connect stage when all are */
static void
conn_settled(struct milter_sess *ms)
{
	if (--ms->waiting > 0)
		return;
	ms->cur = 0;
	stage_next(ms);
}

/* the parent's answer: a connected socket, or why there is none */
void
smtp_milter_connected(const struct milter_connect *r, int fd)
{
	struct session		*s;
	struct milter_sess	*ms;
	struct milter_conn	*c = NULL;
	int			 i;

	if ((s = session_find(r->reqid)) == NULL || (ms = s->milter) ==
	    NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	for (i = 0; i < ms->n; i++)
		if (ms->c[i].state == MC_WAITFD &&
		    strcmp(ms->c[i].mc->name, r->name) == 0)
			c = &ms->c[i];
	if (c == NULL) {
		if (fd != -1)
			close(fd);
		return;
	}
	if (r->status != PROTO_OK || fd == -1) {
		if (fd != -1)
			close(fd);
		/* the parent counted it and logged it (at most once in
		 * 10 s): a filter that is down costs no line per session */
		c->state = MC_DEAD;
		stats_state(c->mc, MILTER_STATE_DOWN);
		log_debug("%08x: milter %s: %s; on-error %s", s->id,
		    c->mc->name, r->error[0] ? r->error : "cannot connect",
		    default_name(c->mc->on_error));
		conn_settled(ms);
		return;
	}
	c->fd = fd;
	conn_negotiate(c);
}

/* the filter's answer to OPTNEG: what it will do and be told */
static void
conn_optneg(struct milter_conn *c, const struct milter_reply *r)
{
	int	i;
	size_t	len = 0;
	char	*p;

	evtimer_del(c->ev_timer);
	if (r->cmd != SMFIR_OPTNEG) {
		milter_fail(c, "negotiation: unexpected reply '%s'",
		    milter_reply_name(r->cmd));
		return;
	}
	if (r->version < 2 || (r->actions & ~SMFIF_ALL) != 0 ||
	    (r->protocol & ~OFFER_PROTOCOL) != 0) {
		milter_fail(c, "negotiation: version %u, actions 0x%x, "
		    "protocol 0x%x not offered", r->version, r->actions,
		    r->protocol);
		return;
	}
	c->actions = r->actions;
	c->protocol = r->protocol;
	/* the macro lists it asked for, in one allocation */
	for (i = 0; i < SMFIM_COUNT; i++)
		if (r->symlist[i] != NULL)
			len += strlen(r->symlist[i]) + 1;
	if (len > 0 && (c->actions & SMFIF_SETSYMLIST)) {
		if ((p = c->symbuf = malloc(len)) == NULL)
			fatal("malloc");
		for (i = 0; i < SMFIM_COUNT; i++) {
			if (r->symlist[i] == NULL)
				continue;
			c->symlist[i] = p;
			p = stpcpy(p, r->symlist[i]) + 1;
		}
	}
	c->state = MC_IDLE;
	stats_of(c->mc)->sessions++;
	stats_state(c->mc, MILTER_STATE_UP);
	conn_settled(c->ms);
}

/* ---- the stages ---- */

static int
stage_smfim(int stage)
{
	switch (stage) {
	case MS_CONNECT:
		return SMFIM_CONNECT;
	case MS_HELO:
		return SMFIM_HELO;
	case MS_MAIL:
		return SMFIM_ENVFROM;
	case MS_RCPT:
		return SMFIM_ENVRCPT;
	case MS_DATA:
		return SMFIM_DATA;
	default:
		return -1;
	}
}

/* does c take this stage, and must we wait for its answer? */
static int
stage_wanted(const struct milter_conn *c, int stage, int *noreply)
{
	static const uint32_t no[] = { SMFIP_NOCONNECT, SMFIP_NOHELO,
	    SMFIP_NOMAIL, SMFIP_NORCPT, SMFIP_NODATA, SMFIP_NOUNKNOWN };
	static const uint32_t nr[] = { SMFIP_NR_CONN, SMFIP_NR_HELO,
	    SMFIP_NR_MAIL, SMFIP_NR_RCPT, SMFIP_NR_DATA, SMFIP_NR_UNKN };

	*noreply = (c->protocol & nr[stage]) != 0;
	if (c->protocol & no[stage])
		return 0;
	/* a message it accepted hears no more of that message */
	if (stage >= MS_RCPT && stage <= MS_DATA && c->msg_accepted)
		return 0;
	return 1;
}

static void
stage_command(struct milter_conn *c, int stage)
{
	struct session	*s = c->ms->s;
	struct txn	*tx = s->tx;
	const char	*args[32];
	char		 addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 4];
	char		 text[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char		 argbuf[1024], *p, *last;
	size_t		 nargs = 0;
	int		 smfim = stage_smfim(stage), rc = 0;

	switch (stage) {
	case MS_CONNECT:
		milter_put_stage_macros(c, smfim, SMFIC_CONNECT);
		if (s->flags & SS_LOCAL) {
			/* as Postfix shows non-SMTP mail: localhost */
			struct sockaddr_storage	 lss;
			struct sockaddr_in	*sin = (struct sockaddr_in *)&lss;

			memset(&lss, 0, sizeof(lss));
			sin->sin_family = AF_INET;
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			rc = milter_put_connect(c->out, "localhost", &lss,
			    NULL);
		} else {
			/* the verified name, else "[address]" (Postfix
			 * gives Sendmail's form) */
			snprintf(argbuf, sizeof(argbuf), "[%s]", s->addr);
			rc = milter_put_connect(c->out, s->rdns ? s->rdns :
			    argbuf, &s->ss, NULL);
		}
		break;
	case MS_HELO:
		milter_put_stage_macros(c, smfim, SMFIC_HELO);
		rc = milter_put_helo(c->out, (s->flags & SS_LOCAL) ?
		    "localhost" : c->ms->arg);
		break;
	case MS_MAIL:
	case MS_RCPT:
		if (stage == MS_MAIL) {
			c->in_msg = 1;
			c->msg_accepted = 0;
			c->modified = 0;
		}
		addr_to_string(stage == MS_MAIL ? &tx->mailfrom :
		    &tx->rcpt_pending, text, sizeof(text));
		/* non-SMTP mail: Postfix gives the bare address */
		snprintf(addr, sizeof(addr), (s->flags & SS_LOCAL) ? "%s" :
		    "<%s>", text);
		/* non-SMTP mail: Postfix sends no ESMTP arguments */
		snprintf(argbuf, sizeof(argbuf), "%s", c->ms->arg &&
		    !(s->flags & SS_LOCAL) ? c->ms->arg : "");
		for (p = strtok_r(argbuf, " ", &last); p != NULL &&
		    nargs < 32; p = strtok_r(NULL, " ", &last))
			args[nargs++] = p;
		milter_put_stage_macros(c, smfim, stage == MS_MAIL ?
		    SMFIC_MAIL : SMFIC_RCPT);
		rc = milter_put_envaddr(c->out, stage == MS_MAIL ?
		    SMFIC_MAIL : SMFIC_RCPT, addr, args, nargs);
		break;
	case MS_DATA:
		milter_put_stage_macros(c, smfim, SMFIC_DATA);
		rc = milter_put_empty(c->out, SMFIC_DATA);
		break;
	case MS_UNKNOWN:
		rc = milter_put_unknown(c->out, c->ms->arg);
		break;
	}
	if (rc == -1)
		fatalx("milter: cannot encode stage %d", stage);
}

/* a stage's macros, without its command, for a filter that skips it */
static void
stage_macros_only(struct milter_conn *c, int stage)
{
	static const char cmd[] = { SMFIC_CONNECT, SMFIC_HELO, SMFIC_MAIL,
	    SMFIC_RCPT, SMFIC_DATA };
	int	smfim = stage_smfim(stage);

	if (smfim < 0 || (stage >= MS_MAIL && c->msg_accepted))
		return;
	milter_put_stage_macros(c, smfim, cmd[smfim]);
}

void
milter_stage_done(struct milter_sess *ms)
{
	struct session	*s = ms->s;
	void		(*done)(struct session *, int) = ms->done;
	int		 async = !ms->in_call;

	/*
	 * As Postfix: a refusal at CONNECT or HELO is given at MAIL, to
	 * every transaction of the session; a discard there means nothing.
	 */
	if ((ms->stage == MS_CONNECT || ms->stage == MS_HELO) &&
	    !ms->sticky) {
		if (ms->verdict == MILTER_DISCARD)
			ms->verdict = MILTER_CONTINUE;
		if (ms->verdict == MILTER_REJECT ||
		    ms->verdict == MILTER_TEMPFAIL) {
			ms->sticky = ms->verdict;
			if (ms->nlines > 0)
				snprintf(ms->sticky_reply,
				    sizeof(ms->sticky_reply), "%s",
				    ms->lines[ms->nlines - 1]);
			else
				snprintf(ms->sticky_reply,
				    sizeof(ms->sticky_reply), "%s",
				    ms->verdict == MILTER_REJECT ?
				    "550 5.7.1 Command rejected" :
				    "451 4.7.1 Service unavailable - try "
				    "again later");
			ms->nlines = 0;
		}
	}
	ms->stage = -1;
	ms->done = NULL;
	s->flags &= ~SS_WAIT;
	done(s, ms->verdict);
	if (async && !(s->flags & SS_WAIT) && s->milter != NULL)
		session_process(s);
}

/* ask the next filter of the chain, or finish the stage */
static void
stage_next(struct milter_sess *ms)
{
	struct milter_conn	*c;
	int			 noreply;

	for (; ms->cur < ms->n; ms->cur++) {
		c = &ms->c[ms->cur];
		if (c->state == MC_DONE)
			continue;
		if (c->state == MC_DEAD) {
			if (milter_apply_default(ms, c))
				continue;
			break;
		}
		if (!stage_wanted(c, ms->stage, &noreply)) {
			/*
			 * Postfix sends a stage's macros even to a filter
			 * that negotiated the stage away: one that only
			 * looks at the end of message may still read
			 * {client_addr} or {mail_addr} there.  They wait
			 * in its buffer for the next command it answers
			 * (no system call of their own).
			 */
			stage_macros_only(c, ms->stage);
			continue;
		}
		stage_command(c, ms->stage);
		if (noreply)
			continue;	/* sent with the next that is answered */
		milter_send(c);
		if (c->state == MC_DEAD) {
			/* the write failed: its on-error, once more round */
			ms->cur--;
			continue;
		}
		milter_wait(c, c->mc->command_timeout);
		return;
	}
	milter_stage_done(ms);
}

/*
 * Run one stage through the chain.  0: nothing to do (no filters, or the
 * session's verdict is already known and not sticky); the caller goes
 * on.  1: done(s, verdict) has been called or will be, from the event
 * loop (then the session is processed again after it).
 */
int
smtp_milter_stage(struct session *s, int stage, const char *arg,
    void (*done)(struct session *, int))
{
	struct milter_sess	*ms = s->milter;

	if (ms == NULL)
		return 0;
	ms->verdict = MILTER_CONTINUE;
	ms->nlines = 0;
	ms->done = done;
	if (ms->sticky && stage != MS_CONNECT && stage != MS_HELO &&
	    stage != MS_UNKNOWN) {
		ms->verdict = ms->sticky;
		ms->in_call = 1;
		milter_stage_done(ms);
		ms->in_call = 0;
		return 1;
	}
	ms->stage = stage;
	free(ms->argcopy);
	if ((ms->argcopy = strdup_null(arg)) == NULL && arg != NULL)
		fatal("strdup");
	ms->arg = ms->argcopy;
	ms->cur = 0;
	s->flags |= SS_WAIT;
	ms->in_call = 1;
	if (stage == MS_EOM)
		milter_eom_start(ms);
	else
		stage_next(ms);
	if (s->milter == ms)
		ms->in_call = 0;
	return 1;
}

/* the transaction ends without its end of message: tell them */
void
smtp_milter_abort(struct session *s)
{
	struct milter_sess	*ms = s->milter;
	int			 i;

	if (ms == NULL)
		return;
	milter_eom_free(ms);
	for (i = 0; i < ms->n; i++) {
		struct milter_conn *c = &ms->c[i];

		c->msg_accepted = 0;
		if (!c->in_msg || c->fd == -1 || c->state == MC_DEAD)
			continue;
		c->in_msg = 0;
		if (c->state == MC_BUSY)
			continue;	/* it is told when it answers */
		/* at once: the filter may act on it (Postfix sends it so) */
		if (milter_put_empty(c->out, SMFIC_ABORT) == -1)
			fatalx("milter_put_empty");
		milter_send(c);
	}
}

/* ---- what a filter says ---- */

static void
conn_reply(struct milter_conn *c, struct milter_reply *r)
{
	struct milter_sess	*ms = c->ms;

	if (c->state == MC_NEGOTIATE) {
		conn_optneg(c, r);
		return;
	}
	if (c->state != MC_BUSY || !milter_is_current(c)) {
		milter_fail(c, "unexpected reply '%s'",
		    milter_reply_name(r->cmd));
		return;
	}
	if (r->cmd == SMFIR_PROGRESS) {
		milter_wait(c, ms->stage == MS_EOM ? c->mc->eom_timeout :
		    c->mc->command_timeout);
		return;
	}
	if (ms->stage == MS_EOM) {
		milter_eom_reply(ms, c, r);
		return;
	}
	/*
	 * c stays MC_BUSY until its reply is known to be a good one: a
	 * reply that makes it fail must find the stage waiting on it, for
	 * milter_fail() to go on with its on-error action.
	 */
	evtimer_del(c->ev_timer);
	switch (r->cmd) {
	case SMFIR_CONTINUE:
		c->state = MC_IDLE;
		ms->cur++;
		stage_next(ms);
		return;
	case SMFIR_ACCEPT:
		/* the connection, or the message, needs it no more */
		c->state = MC_IDLE;
		if (ms->stage == MS_CONNECT || ms->stage == MS_HELO)
			c->state = MC_DONE;
		else if (ms->stage != MS_UNKNOWN)
			c->msg_accepted = 1;
		ms->cur++;
		stage_next(ms);
		return;
	}
	switch (milter_set_reply(ms, r, c)) {
	case 1:
		c->state = MC_IDLE;
		if (ms->verdict == MILTER_DISCARD) {
			/* the message is dropped: the filter hears no more
			 * of it (libmilter would take another command for a
			 * protocol error) */
			c->msg_accepted = 1;
		}
		milter_stage_done(ms);
		return;
	case -1:
		return;		/* milter_fail() went on */
	}
	milter_fail(c, "reply '%s' not allowed at this stage",
	    milter_reply_name(r->cmd));
}

static void
conn_read(evutil_socket_t fd, short ev, void *arg)
{
	struct milter_conn	*c = arg;
	struct milter_reply	 r;
	const char		*err;
	uint8_t			*pkt;
	long			 len;
	int			 n;

	(void)ev;
	n = evbuffer_read(c->in, fd, 65536);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (c->state == MC_DONE) {
			/* it accepted the connection: nothing more to say */
			conn_close(c);
			return;
		}
		/* between stages, its on-error comes when it is next used */
		milter_fail(c, "%s", n == 0 ? "closed the connection" :
		    strerror(errno));
		return;
	}
	while (c->state != MC_DEAD && c->in != NULL) {
		size_t avail = evbuffer_get_length(c->in);

		if (avail < 4)
			return;
		pkt = evbuffer_pullup(c->in, 4);
		if ((len = milter_frame(pkt, 4)) == -1) {
			milter_fail(c, "bad packet length");
			return;
		}
		/* the whole packet, announced before it is buffered */
		len = (long)(((uint32_t)pkt[0] << 24) |
		    ((uint32_t)pkt[1] << 16) | ((uint32_t)pkt[2] << 8) |
		    pkt[3]) + 4;
		if ((size_t)len > avail)
			return;
		pkt = evbuffer_pullup(c->in, len);
		if (milter_parse_reply(pkt, (size_t)len, &r, &err) == -1) {
			milter_fail(c, "bad reply: %s", err);
			return;
		}
		conn_reply(c, &r);
		/* the reply may have closed the connection, or the session */
		if (c->in == NULL || c->state == MC_DEAD)
			return;
		evbuffer_drain(c->in, len);
	}
}
