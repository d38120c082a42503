/*
 * smtp_session.c -- the RFC 5321 server state machine.
 *
 * Input is taken one line at a time.  A command that needs another
 * process (RCPT asks lookup, DATA asks queue, end of data asks queue to
 * commit) sets SF_WAIT and stops the loop; the answer resumes it.  So
 * pipelined commands are answered strictly in order, and their replies
 * leave together when the worker returns to its event loop (RFC 2920).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include "tree.h"
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "addr.h"
#include "log.h"
#include "mproc.h"
#include "proto.h"
#include "smtp_session.h"
#include "smtpd.h"

#define SMTP_CMD_MAX		512	/* RFC 5321 4.5.3.1.4, incl. CRLF */
#define SMTP_MAX_ERRORS		20	/* bad commands before we hang up */
#define SPOOL_FLUSH_SIZE	65536

enum sstate {
	S_CONNECTED,	/* greeted, no HELO yet */
	S_HELO,		/* HELO/EHLO done, no transaction */
	S_MAIL,		/* MAIL accepted */
	S_RCPT,		/* at least one RCPT attempted */
	S_DATA,		/* reading message data */
};

/* session flags */
#define SF_EHLO		0x0001
#define SF_WAIT		0x0002	/* waiting for lookup or queue */
#define SF_CLOSING	0x0004	/* close once output is flushed */
#define SF_LONGLINE	0x0008	/* discarding the rest of a long line */
#define SS_8BITMIME	0x0010	/* MAIL BODY=8BITMIME */
#define SS_SMTPUTF8	0x0020	/* MAIL SMTPUTF8 */

/* data errors, answered at end of data */
#define DE_TOOBIG	1
#define DE_LONGLINE	2
#define DE_IO		3

/* line flags from session_getline() */
#define LF_BARELF	0x1
#define LF_BARECR	0x2
#define LF_TOOLONG	0x4
#define LF_NUL		0x8

struct sdest {
	struct mailaddr	rcpt;		/* as given in RCPT TO */
	struct lka_dest	d;
};

struct session {
	RB_ENTRY(session) node;
	uint32_t		 id;
	struct bufferevent	*bev;
	struct listener		*l;
	struct sockaddr_storage	 ss;
	char			 addr[INET6_ADDRSTRLEN];
	enum sstate		 state;
	uint32_t		 flags;
	int			 nerrors;
	int			 nmessages;
	char			 helo[256];

	/* the transaction */
	struct mailaddr		 mailfrom;
	struct mailaddr		 rcpt_pending;	/* RCPT being looked up */
	size_t			 nrcpt_ok;	/* RCPT commands accepted */
	struct sdest		*dests;
	size_t			 ndests, capdests;
	size_t			 ndests_before;	/* at the pending RCPT */

	/* message data */
	uint32_t		 msgid;
	int			 msgfd;
	struct evbuffer		*msgbuf;
	size_t			 msgsize;
	int			 data_err;
	int			 data_prev_bare; /* last line ended in bare LF */
};

static int
session_cmp(struct session *a, struct session *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

RB_HEAD(session_tree, session);
RB_GENERATE_STATIC(session_tree, session, node, session_cmp)
static struct session_tree	sessions = RB_INITIALIZER(&sessions);
static uint32_t			next_id;

static void	session_process(struct session *);
static void	session_close(struct session *);
static void	session_reset(struct session *);

void
session_init(void)
{
	/* ids unique per worker; the worker number keeps them apart */
	next_id = (uint32_t)smtp_worker.id << 24;
}

static struct session *
session_find(uint32_t id)
{
	struct session	key;

	key.id = id;
	return RB_FIND(session_tree, &sessions, &key);
}

static void
session_reply(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
session_reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer	*out = bufferevent_get_output(s->bev);
	va_list		 ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	if (log_getverbose() > 1) {
		char	buf[600];

		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		log_debug("%08x: >>> %s", s->id, buf);
	}
}

/* reply, then hang up once the reply is on its way */
static void
session_reply_close(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
session_reply_close(struct session *s, const char *fmt, ...)
{
	struct evbuffer	*out = bufferevent_get_output(s->bev);
	va_list		 ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	s->flags |= SF_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
}

static void
session_error(struct session *s)
{
	if (++s->nerrors >= SMTP_MAX_ERRORS)
		session_reply_close(s, "421 4.7.0 %s Too many errors, "
		    "closing connection", conf->hostname);
}

static void
session_free(struct session *s)
{
	RB_REMOVE(session_tree, &sessions, s);
	session_reset(s);
	if (s->msgbuf)
		evbuffer_free(s->msgbuf);
	bufferevent_free(s->bev);
	free(s->dests);
	free(s);
	smtp_worker.nsessions--;
	smtp_maybe_exit();
}

static void
session_close(struct session *s)
{
	log_debug("%08x: disconnected from %s", s->id, s->addr);
	session_free(s);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	if ((s->flags & SF_CLOSING) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		session_close(s);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		if (s->flags & SF_CLOSING) {
			session_close(s);
			return;
		}
		log_info("%08x: timeout, client %s", s->id, s->addr);
		bufferevent_set_timeouts(s->bev, NULL, NULL);
		{
			struct timeval tv = { 10, 0 };
			bufferevent_set_timeouts(s->bev, NULL, &tv);
		}
		session_reply_close(s, "421 4.4.2 %s Timeout, closing "
		    "connection", conf->hostname);
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	/* EOF or error: the client is gone */
	session_close(s);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	session_process(arg);
}

static void
session_set_timeout(struct session *s)
{
	struct timeval	tv;

	tv.tv_sec = s->state == S_DATA ? conf->timeout_data : conf->timeout_cmd;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

void
session_new(int fd, struct listener *l, struct sockaddr_storage *ss,
    socklen_t sslen)
{
	struct session	*s;
	int		 per_worker;

	per_worker = conf->max_sessions > 0 ? conf->max_sessions : 10000;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("calloc");
		close(fd);
		return;
	}
	s->id = ++next_id;
	s->l = l;
	s->msgfd = -1;
	memcpy(&s->ss, ss, sslen);
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)ss)->sin_addr,
		    s->addr, sizeof(s->addr));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ss)->sin6_addr,
		    s->addr, sizeof(s->addr));
	else
		snprintf(s->addr, sizeof(s->addr), "local");
	s->bev = bufferevent_socket_new(ev_base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		log_warnx("bufferevent_socket_new failed");
		close(fd);
		free(s);
		return;
	}
	RB_INSERT(session_tree, &sessions, s);
	smtp_worker.nsessions++;
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	session_set_timeout(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	log_debug("%08x: connection from %s on %s port %u", s->id, s->addr,
	    l->ifname, l->port);
	if ((int)smtp_worker.nsessions > per_worker) {
		session_reply_close(s, "421 4.7.0 %s Too many sessions, try "
		    "again later", conf->hostname);
		return;
	}
	session_reply(s, "220 %s ESMTP %s", conf->hostname, SMTPD_NAME);
}

void
session_shutdown_all(void)
{
	struct session	*s, *tmp;

	/* sessions waiting on the queue get their answer first */
	RB_FOREACH_SAFE(s, session_tree, &sessions, tmp) {
		if (s->flags & (SF_WAIT | SF_CLOSING))
			continue;
		session_reply_close(s, "421 4.3.2 %s Service shutting down",
		    conf->hostname);
	}
}

/* drop the transaction; a message file being written is rolled back */
static void
session_reset(struct session *s)
{
	struct queue_msg_req	req;

	if (s->msgfd != -1) {
		close(s->msgfd);
		s->msgfd = -1;
		memset(&req, 0, sizeof(req));
		req.reqid = s->id;
		req.msgid = s->msgid;
		mproc_compose(&smtp_worker.queue, IMSG_QUEUE_ROLLBACK, s->id,
		    -1, &req, sizeof(req));
	}
	s->msgid = 0;
	if (s->msgbuf)
		evbuffer_drain(s->msgbuf, evbuffer_get_length(s->msgbuf));
	s->msgsize = 0;
	s->data_err = 0;
	s->data_prev_bare = 0;
	memset(&s->mailfrom, 0, sizeof(s->mailfrom));
	s->ndests = 0;
	s->nrcpt_ok = 0;
	s->flags &= ~(SS_8BITMIME | SS_SMTPUTF8);
	if (s->state > S_HELO)
		s->state = S_HELO;
}

/*
 * Take one line out of the input.  Returns 1 with the line (terminator
 * removed, NUL-terminated) or 0 when no complete line is buffered.  A
 * line over `max' octets (terminator included) is discarded and reported
 * as LF_TOOLONG once its end arrives.
 */
static int
session_getline(struct session *s, char *buf, size_t max, size_t *lenp,
    int *lflags)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr	 p;
	size_t			 len, i;

	*lflags = 0;
	p = evbuffer_search(in, "\n", 1, NULL);
	if (p.pos == -1) {
		len = evbuffer_get_length(in);
		if (len > max) {
			evbuffer_drain(in, len);
			s->flags |= SF_LONGLINE;
		}
		return 0;
	}
	len = (size_t)p.pos + 1;
	if ((s->flags & SF_LONGLINE) || len > max) {
		evbuffer_drain(in, len);
		s->flags &= ~SF_LONGLINE;
		*lflags = LF_TOOLONG;
		buf[0] = '\0';
		*lenp = 0;
		return 1;
	}
	evbuffer_remove(in, buf, len);
	len--;				/* the LF */
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	else
		*lflags |= LF_BARELF;
	buf[len] = '\0';
	for (i = 0; i < len; i++) {
		if (buf[i] == '\r')
			*lflags |= LF_BARECR;
		else if (buf[i] == '\0')
			*lflags |= LF_NUL;
	}
	*lenp = len;
	return 1;
}

/* "FROM:" / "TO:" prefix, case-insensitive, RFC 5321 4.1.1.2 */
static const char *
skip_prefix(const char *args, const char *prefix)
{
	size_t	n = strlen(prefix);

	if (strncasecmp(args, prefix, n) != 0)
		return NULL;
	return args + n;
}

static void
cmd_helo(struct session *s, const char *verb, char *args, int ehlo)
{
	if (args == NULL || *args == '\0') {
		session_reply(s, "501 5.5.4 Syntax: %s hostname", verb);
		session_error(s);
		return;
	}
	if (strchr(args, ' ') != NULL || strlen(args) >= sizeof(s->helo) ||
	    !domain_valid(args, ADDR_ALLOW_UTF8)) {
		session_reply(s, "501 5.5.4 Invalid domain name");
		session_error(s);
		return;
	}
	session_reset(s);
	snprintf(s->helo, sizeof(s->helo), "%s", args);
	s->state = S_HELO;
	if (!ehlo) {
		s->flags &= ~SF_EHLO;
		session_reply(s, "250 %s Hello %s [%s]", conf->hostname, args,
		    s->addr);
		return;
	}
	s->flags |= SF_EHLO;
	session_reply(s, "250-%s Hello %s [%s]", conf->hostname, args,
	    s->addr);
	session_reply(s, "250-8BITMIME");
	session_reply(s, "250-PIPELINING");
	session_reply(s, "250-SIZE %zu", conf->max_message_size);
	session_reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
cmd_mail(struct session *s, char *args)
{
	struct esmtp_param	 params[ESMTP_PARAMS_MAX];
	const char		*p, *rest;
	char			 buf[SMTP_CMD_MAX];
	int			 n, i, rc;

	if (s->state < S_HELO) {
		session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		session_error(s);
		return;
	}
	if (s->state > S_HELO) {
		session_reply(s, "503 5.5.1 Error: nested MAIL command");
		session_error(s);
		return;
	}
	if (args == NULL || (p = skip_prefix(args, "FROM:")) == NULL) {
		session_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		session_error(s);
		return;
	}
	rc = addr_parse_path(p, &s->mailfrom, ADDR_ALLOW_NULL |
	    ADDR_ALLOW_UTF8, &rest);
	if (rc != ADDR_OK) {
		session_reply(s, "553 5.1.7 Sender address syntax error");
		session_error(s);
		return;
	}
	snprintf(buf, sizeof(buf), "%s", rest);
	if ((n = esmtp_parse_params(buf, params, ESMTP_PARAMS_MAX)) == -1) {
		session_reply(s, "501 5.5.4 Syntax error in parameters");
		session_error(s);
		return;
	}
	for (i = 0; i < n; i++) {
		const char *k = params[i].key, *v = params[i].value;

		if (strcasecmp(k, "SIZE") == 0 && v != NULL &&
		    (s->flags & SF_EHLO)) {
			char			*end;
			unsigned long long	 sz;

			errno = 0;
			sz = strtoull(v, &end, 10);
			if (*v < '0' || *v > '9' || *end || errno) {
				session_reply(s, "501 5.5.4 Bad SIZE value");
				goto fail;
			}
			if (sz > conf->max_message_size) {
				session_reply(s, "552 5.3.4 Message size "
				    "exceeds fixed maximum message size");
				goto fail;
			}
		} else if (strcasecmp(k, "BODY") == 0 && v != NULL &&
		    (s->flags & SF_EHLO)) {
			if (strcasecmp(v, "8BITMIME") == 0)
				s->flags |= SS_8BITMIME;
			else if (strcasecmp(v, "7BIT") != 0) {
				session_reply(s, "501 5.5.4 Unsupported BODY "
				    "type");
				goto fail;
			}
		} else {
			session_reply(s, "555 5.5.4 Unsupported parameter "
			    "%.64s", k);
			goto fail;
		}
	}
	/* RFC 6531 3.4: UTF-8 addresses only with SMTPUTF8 */
	for (p = s->mailfrom.user; *p; p++)
		if ((unsigned char)*p >= 0x80 && !(s->flags & SS_SMTPUTF8)) {
			session_reply(s, "553 5.6.7 UTF-8 address requires "
			    "SMTPUTF8");
			goto fail;
		}
	for (p = s->mailfrom.domain; *p; p++)
		if ((unsigned char)*p >= 0x80 && !(s->flags & SS_SMTPUTF8)) {
			session_reply(s, "553 5.6.7 UTF-8 address requires "
			    "SMTPUTF8");
			goto fail;
		}
	s->state = S_MAIL;
	session_reply(s, "250 2.1.0 Ok");
	return;
fail:
	session_reset(s);
	session_error(s);
}

static void
cmd_rcpt(struct session *s, char *args)
{
	struct lka_rcpt_req	 req;
	struct esmtp_param	 params[ESMTP_PARAMS_MAX];
	const char		*p, *rest;
	char			 buf[SMTP_CMD_MAX];
	int			 n, rc, flags;

	if (s->state < S_MAIL) {
		session_reply(s, "503 5.5.1 Error: need MAIL command");
		session_error(s);
		return;
	}
	if (args == NULL || (p = skip_prefix(args, "TO:")) == NULL) {
		session_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		session_error(s);
		return;
	}
	if (s->nrcpt_ok >= conf->max_rcpt) {
		session_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	flags = ADDR_ALLOW_NODOMAIN;
	if (s->flags & SS_SMTPUTF8)
		flags |= ADDR_ALLOW_UTF8;
	rc = addr_parse_path(p, &s->rcpt_pending, flags, &rest);
	if (rc == ADDR_ERR_UTF8) {
		session_reply(s, "553 5.6.7 UTF-8 address requires SMTPUTF8");
		session_error(s);
		return;
	}
	if (rc != ADDR_OK) {
		session_reply(s, "501 5.1.3 Recipient address syntax error");
		session_error(s);
		return;
	}
	snprintf(buf, sizeof(buf), "%s", rest);
	if ((n = esmtp_parse_params(buf, params, ESMTP_PARAMS_MAX)) == -1) {
		session_reply(s, "501 5.5.4 Syntax error in parameters");
		session_error(s);
		return;
	}
	if (n > 0) {
		session_reply(s, "555 5.5.4 Unsupported parameter %.64s",
		    params[0].key);
		session_error(s);
		return;
	}
	s->state = S_RCPT;
	s->ndests_before = s->ndests;
	memset(&req, 0, sizeof(req));
	req.reqid = s->id;
	req.client = s->ss;
	snprintf(req.helo, sizeof(req.helo), "%s", s->helo);
	req.mailfrom = s->mailfrom;
	req.rcpt = s->rcpt_pending;
	s->flags |= SF_WAIT;
	mproc_compose(&smtp_worker.lookup, IMSG_LKA_RCPT, s->id, -1, &req,
	    sizeof(req));
}

void
session_lookup_dest(const struct lka_dest *d)
{
	struct session	*s;
	struct sdest	*nd;

	if ((s = session_find(d->reqid)) == NULL || !(s->flags & SF_WAIT))
		return;
	if (s->ndests >= conf->max_rcpt * 4)
		return;		/* lookup bounds expansions; belt and braces */
	if (s->ndests == s->capdests) {
		size_t ncap = s->capdests ? s->capdests * 2 : 4;

		if ((nd = reallocarray(s->dests, ncap, sizeof(*nd))) == NULL)
			fatal("reallocarray");
		s->dests = nd;
		s->capdests = ncap;
	}
	s->dests[s->ndests].rcpt = s->rcpt_pending;
	s->dests[s->ndests].d = *d;
	s->ndests++;
}

void
session_lookup_result(const struct lka_result *r)
{
	struct session	*s;

	if ((s = session_find(r->reqid)) == NULL || !(s->flags & SF_WAIT))
		return;
	s->flags &= ~SF_WAIT;
	if (r->status == PROTO_OK && s->ndests > s->ndests_before) {
		s->nrcpt_ok++;
		session_reply(s, "250 2.1.5 Ok");
	} else {
		/* forget whatever this recipient expanded to */
		s->ndests = s->ndests_before;
		session_reply(s, "%s", r->reply[0] ? r->reply :
		    "451 4.3.0 Temporary lookup failure");
	}
	session_process(s);
}

static void
cmd_data(struct session *s, char *args)
{
	struct queue_msg_req	req;

	if (args != NULL && *args != '\0') {
		session_reply(s, "501 5.5.4 Syntax: DATA");
		session_error(s);
		return;
	}
	if (s->state < S_MAIL) {
		session_reply(s, "503 5.5.1 Error: need MAIL command");
		session_error(s);
		return;
	}
	if (s->nrcpt_ok == 0) {
		/* RFC 2920 3.1: pipelined DATA after failed RCPTs */
		if (s->state == S_RCPT)
			session_reply(s, "554 5.5.1 Error: no valid "
			    "recipients");
		else
			session_reply(s, "503 5.5.1 Error: need RCPT command");
		session_error(s);
		return;
	}
	if (conf->max_messages_per_session > 0 &&
	    s->nmessages >= conf->max_messages_per_session) {
		session_reply_close(s, "421 4.7.0 %s Too many messages in "
		    "this session", conf->hostname);
		return;
	}
	memset(&req, 0, sizeof(req));
	req.reqid = s->id;
	s->flags |= SF_WAIT;
	mproc_compose(&smtp_worker.queue, IMSG_QUEUE_CREATE, s->id, -1, &req,
	    sizeof(req));
}

static void
format_date(char *buf, size_t len)
{
	struct tm	tm;
	time_t		now = time(NULL);

	localtime_r(&now, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* RFC 5321 4.4: the trace header we prepend */
static void
session_received(struct session *s)
{
	char	date[64], rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char	msgid[9];

	format_date(date, sizeof(date));
	msgid_to_text(s->msgid, msgid);
	evbuffer_add_printf(s->msgbuf, "Received: from %s (%s [%s])\n"
	    "\tby %s (%s) with %s id %s", s->helo, "unknown", s->addr,
	    conf->hostname, SMTPD_NAME, (s->flags & SF_EHLO) ? "ESMTP" :
	    "SMTP", msgid);
	if (s->nrcpt_ok == 1 && s->ndests > 0) {
		addr_to_string(&s->dests[0].rcpt, rcpt, sizeof(rcpt));
		evbuffer_add_printf(s->msgbuf, "\n\tfor <%s>", rcpt);
	}
	evbuffer_add_printf(s->msgbuf, ";\n\t%s\n", date);
}

void
session_queue_created(const struct queue_msg_resp *r, int fd)
{
	struct session		*s;
	struct queue_msg_req	 req;

	if ((s = session_find(r->reqid)) == NULL || !(s->flags & SF_WAIT) ||
	    s->msgfd != -1) {
		if (fd != -1) {
			close(fd);
			memset(&req, 0, sizeof(req));
			req.msgid = r->msgid;
			mproc_compose(&smtp_worker.queue, IMSG_QUEUE_ROLLBACK,
			    0, -1, &req, sizeof(req));
		}
		return;
	}
	s->flags &= ~SF_WAIT;
	if (r->status != PROTO_OK) {
		session_reply(s, "%s", r->reply[0] ? r->reply :
		    "451 4.3.0 Temporary queue failure");
		session_process(s);
		return;
	}
	s->msgid = r->msgid;
	s->msgfd = fd;
	if (s->msgbuf == NULL && (s->msgbuf = evbuffer_new()) == NULL)
		fatal("evbuffer_new");
	s->state = S_DATA;
	session_set_timeout(s);
	session_received(s);
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	session_process(s);
}

static int
spool_flush(struct session *s)
{
	while (evbuffer_get_length(s->msgbuf) > 0) {
		if (evbuffer_write(s->msgbuf, s->msgfd) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("%08x: spool write", s->msgid);
			return -1;
		}
	}
	return 0;
}

static void
session_commit(struct session *s)
{
	struct queue_msg_req	 req;
	struct envelope		 evp;
	size_t			 i;

	memset(&evp, 0, sizeof(evp));
	evp.id = (uint64_t)s->msgid << 32;
	evp.ctime = time(NULL);
	evp.sender = s->mailfrom;
	if (s->flags & SS_8BITMIME)
		evp.flags |= EF_8BITMIME;
	if (s->flags & SS_SMTPUTF8)
		evp.flags |= EF_SMTPUTF8;
	snprintf(evp.helo, sizeof(evp.helo), "%s", s->helo);
	snprintf(evp.client, sizeof(evp.client), "%s", s->addr);
	for (i = 0; i < s->ndests; i++) {
		const struct lka_dest *d = &s->dests[i].d;

		evp.rcpt = s->dests[i].rcpt;
		evp.dest = d->dest;
		evp.dest_type = d->dest_type;
		memcpy(evp.action, d->action, sizeof(evp.action));
		memcpy(evp.user, d->user, sizeof(evp.user));
		memcpy(evp.path, d->path, sizeof(evp.path));
		mproc_compose(&smtp_worker.queue, IMSG_QUEUE_ENVELOPE, s->id,
		    -1, &evp, sizeof(evp));
	}
	memset(&req, 0, sizeof(req));
	req.reqid = s->id;
	req.msgid = s->msgid;
	req.size = s->msgsize;
	req.nenvelopes = (uint32_t)s->ndests;
	s->flags |= SF_WAIT;
	mproc_compose(&smtp_worker.queue, IMSG_QUEUE_COMMIT, s->id, -1, &req,
	    sizeof(req));
}

void
session_queue_committed(const struct queue_msg_resp *r)
{
	struct session	*s;
	char		 sender[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];

	if ((s = session_find(r->reqid)) == NULL || !(s->flags & SF_WAIT) ||
	    s->msgid != r->msgid)
		return;
	s->flags &= ~SF_WAIT;
	/* the queue owns the file now, whatever the outcome */
	close(s->msgfd);
	s->msgfd = -1;
	if (r->status == PROTO_OK) {
		addr_to_string(&s->mailfrom, sender, sizeof(sender));
		log_info("%08x: from=<%s>, size=%zu, nrcpt=%zu, client=%s, "
		    "helo=%s", s->msgid, sender, s->msgsize, s->ndests,
		    s->addr, s->helo);
		s->nmessages++;
		session_reply(s, "250 2.0.0 Ok: queued as %08x", s->msgid);
	} else
		session_reply(s, "%s", r->reply[0] ? r->reply :
		    "451 4.3.0 Temporary queue failure");
	s->state = S_HELO;
	session_reset(s);
	session_set_timeout(s);
	session_process(s);
}

static void
data_end(struct session *s)
{
	int	err = s->data_err;

	if (!err && spool_flush(s) == -1)
		err = DE_IO;
	/* the worker syncs the body; the queue syncs envelopes and names */
	if (!err && fdatasync(s->msgfd) == -1) {
		log_warn("%08x: fdatasync", s->msgid);
		err = DE_IO;
	}
	switch (err) {
	case 0:
		session_commit(s);
		return;
	case DE_TOOBIG:
		session_reply(s, "552 5.3.4 Message size exceeds fixed "
		    "maximum message size");
		break;
	case DE_LONGLINE:
		session_reply(s, "500 5.5.2 Line too long (RFC 5321 "
		    "4.5.3.1.6)");
		break;
	default:
		session_reply(s, "451 4.3.0 Local error writing the message");
		break;
	}
	session_reset(s);
	s->state = S_HELO;
	session_set_timeout(s);
}

static void
data_line(struct session *s, char *line, size_t len, int lflags)
{
	if (lflags & (LF_BARELF | LF_BARECR)) {
		/*
		 * Only CRLF.CRLF ends the data.  A bare LF or CR could make
		 * us and a later hop disagree on where a message ends (SMTP
		 * smuggling, CVE-2023-51764): refuse and hang up.
		 */
		log_info("%08x: bare %s in data from %s", s->id,
		    (lflags & LF_BARELF) ? "LF" : "CR", s->addr);
		session_reset(s);
		session_reply_close(s, "521 5.5.2 %s Bare <LF> or <CR> "
		    "received; RFC 5321 2.3.8 requires CRLF", conf->hostname);
		return;
	}
	if (len == 1 && line[0] == '.') {
		data_end(s);
		return;
	}
	if (lflags & LF_TOOLONG) {
		if (!s->data_err)
			s->data_err = DE_LONGLINE;
		return;
	}
	if (line[0] == '.') {		/* RFC 5321 4.5.2 */
		line++;
		len--;
	}
	if (s->data_err)
		return;
	s->msgsize += len + 2;
	if (s->msgsize > conf->max_message_size) {
		s->data_err = DE_TOOBIG;
		return;
	}
	evbuffer_add(s->msgbuf, line, len);
	evbuffer_add(s->msgbuf, "\n", 1);
	if (evbuffer_get_length(s->msgbuf) >= SPOOL_FLUSH_SIZE &&
	    spool_flush(s) == -1)
		s->data_err = DE_IO;
}

static void
cmd_help(struct session *s)
{
	session_reply(s, "214-2.0.0 This is %s; commands:", SMTPD_NAME);
	session_reply(s, "214-2.0.0   HELO EHLO MAIL RCPT DATA RSET NOOP "
	    "QUIT");
	session_reply(s, "214-2.0.0   VRFY EXPN HELP");
	session_reply(s, "214 2.0.0 End of HELP info");
}

static void
session_command(struct session *s, char *line, size_t len, int lflags)
{
	char	*verb = line, *args = NULL;

	if (lflags & LF_TOOLONG) {
		session_reply(s, "500 5.5.2 Line too long");
		session_error(s);
		return;
	}
	if (lflags & (LF_BARELF | LF_BARECR)) {
		session_reply_close(s, "521 5.5.2 %s Bare <LF> or <CR> "
		    "received; RFC 5321 2.3.8 requires CRLF", conf->hostname);
		return;
	}
	if (lflags & LF_NUL) {
		session_reply(s, "500 5.5.2 NUL in command");
		session_error(s);
		return;
	}
	if (log_getverbose() > 1)
		log_debug("%08x: <<< %s", s->id, line);
	if ((args = strchr(line, ' ')) != NULL) {
		*args++ = '\0';
		while (*args == ' ')
			args++;
	}

	if (strcasecmp(verb, "HELO") == 0)
		cmd_helo(s, "HELO", args, 0);
	else if (strcasecmp(verb, "EHLO") == 0)
		cmd_helo(s, "EHLO", args, 1);
	else if (strcasecmp(verb, "MAIL") == 0)
		cmd_mail(s, args);
	else if (strcasecmp(verb, "RCPT") == 0)
		cmd_rcpt(s, args);
	else if (strcasecmp(verb, "DATA") == 0)
		cmd_data(s, args);
	else if (strcasecmp(verb, "RSET") == 0) {
		if (args && *args) {
			session_reply(s, "501 5.5.4 Syntax: RSET");
			return;
		}
		session_reset(s);
		session_reply(s, "250 2.0.0 Ok");
	} else if (strcasecmp(verb, "NOOP") == 0)
		session_reply(s, "250 2.0.0 Ok");
	else if (strcasecmp(verb, "QUIT") == 0) {
		session_reset(s);
		session_reply_close(s, "221 2.0.0 %s Bye", conf->hostname);
	} else if (strcasecmp(verb, "VRFY") == 0 ||
	    strcasecmp(verb, "EXPN") == 0) {
		if (args == NULL || *args == '\0') {
			session_reply(s, "501 5.5.4 Syntax: %s address", verb);
			return;
		}
		session_reply(s, "252 2.5.0 Cannot verify user, but will "
		    "accept message and attempt delivery");
	} else if (strcasecmp(verb, "HELP") == 0)
		cmd_help(s);
	else if (strcasecmp(verb, "SEND") == 0 ||
	    strcasecmp(verb, "SOML") == 0 || strcasecmp(verb, "SAML") == 0 ||
	    strcasecmp(verb, "TURN") == 0) {
		session_reply(s, "502 5.5.1 Command not implemented");
		session_error(s);
	} else {
		session_reply(s, "500 5.5.2 Error: command not recognized");
		session_error(s);
	}
}

static void
session_process(struct session *s)
{
	char	line[4096 + 4];
	size_t	len, max;
	int	lflags;

	while (!(s->flags & (SF_WAIT | SF_CLOSING))) {
		if (s->state == S_DATA) {
			max = conf->max_line + 2;
			if (max > sizeof(line) - 1)
				max = sizeof(line) - 1;
		} else
			max = SMTP_CMD_MAX;
		if (!session_getline(s, line, max, &len, &lflags))
			break;
		if (s->state == S_DATA)
			data_line(s, line, len, lflags);
		else
			session_command(s, line, len, lflags);
	}
}
