/*
 * mta_session.c -- one outgoing SMTP session of the mta process.
 *
 * A session connects to the first usable host of its route (MX order,
 * then each address), falls back to the next one when connecting, the
 * greeting, EHLO/HELO, STARTTLS or AUTH fails, and once ready runs one
 * transaction per task it takes from the route.  After a transaction it
 * stays open for the next task (connection caching), until it has been
 * idle for MTA_IDLE_SECS or has carried MTA_SESSION_MAX_MSGS messages.
 * Polite delivery (mta_window.c): every failed set-up tells the route
 * (fewer sessions, the host backed off), every reply to an end of data
 * too (one more session allowed); a 421, or a "too many connections"
 * 4xx to MAIL, ends the session and puts its message back once.
 *
 * With PIPELINING (RFC 2920) a whole transaction goes out in one write:
 * [RSET] MAIL RCPT... DATA, and the replies are matched to the commands
 * in order.  Without it, one command waits for the previous reply.
 * Everything is event-driven; the connection (mta_io.c) is the socket
 * itself for a plain session, and an OpenSSL filter bufferevent stacked
 * on it after STARTTLS (or at once for smtps://).
 *
 * A route of REQUIRETLS mail (RFC 8689) takes a host only once its TLS
 * proved the peer and its EHLO offers REQUIRETLS; any other host is
 * passed over like one that failed, permanently, so that the mail
 * bounces instead of waiting when none is left.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define POSTHASTE_MTA_INTERNAL
#include "log.h"
#include "mproc.h"
#include "mta.h"
#include "proto.h"
#include "tls_policy.h"
#include "proc.h"
#include "tlsrpt.h"
#include "util.h"

#define MTA_IDLE_SECS		10	/* a cached session waits this long */
#define MTA_DEAD_SECS		30	/* a host that failed is skipped */
#define MTA_SESSION_MAX_MSGS	100	/* then a fresh connection */
#define MTA_NOTLS_SECS		3600	/* after a failed opportunistic TLS */
/* RFC 5321 4.5.3.2 timeouts */
#define MTA_TIMEOUT_CONNECT	30
#define MTA_TIMEOUT_REPLY	300
#define MTA_TIMEOUT_DATA_END	600
#define MTA_TIMEOUT_QUIT	5
#define MTA_TIMEOUT_QUIT_STOP	1	/* when the daemon stops */
#define MTA_BODY_HIGH		(256 * 1024)	/* output buffered ahead */
#define MTA_BODY_LOW		(64 * 1024)

enum mta_state {
	S_CONNECT,
	S_TLS,		/* handshake: smtps at once, or after STARTTLS */
	S_GREETING,
	S_EHLO,
	S_HELO,
	S_STARTTLS,
	S_AUTH,		/* AUTH PLAIN, or LOGIN's last step */
	S_AUTH_USER,	/* AUTH LOGIN: 334 for the user name */
	S_AUTH_PASS,	/* AUTH LOGIN: 334 for the password */
	S_READY,	/* idle, waiting for a task */
	S_TXN,
	S_QUIT,
};

static const char *state_names[] = {
	"connect", "TLS handshake", "initial greeting", "EHLO", "HELO",
	"STARTTLS", "AUTH", "AUTH", "AUTH", "idle", "transaction", "QUIT",
};

enum mta_cmd { C_RSET, C_MAIL, C_RCPT, C_DATA, C_BODY };

struct mta_plan {
	enum mta_cmd	 cmd;
	size_t		 rcpt;		/* C_RCPT: index in the task */
};

struct mta_session {
	TAILQ_ENTRY(mta_session) entry;
	uint64_t		 id;
	struct mta_route	*route;
	struct mta_io		 io;
	SSL			*ssl;		/* owned by io once set */
	enum mta_state		 state;
	size_t			 hostidx;
	struct mta_host		*host;
	char			 relay[320];	/* host[ip]:port */
	int			 ready;		/* left the connecting count */
	int			 tls;
	enum mta_tls_auth	 tls_auth;	/* what TLS proved */
	int			 dane_skip;	/* DANE refused the host before
						 * connecting: not its fault */
	int			 starttls_refused;
	int			 authed;
	uint32_t		 ext;
	uint64_t		 maxsize;
	struct mta_reply	 reply;
	struct timespec		 t_start;
	uint32_t		 setup_ms;
	int			 nmsgs;
	struct event		*ev_idle;

	/* the transaction */
	struct mta_task		*task;
	struct mta_plan		 plan[MTA_TASK_MAX_RCPT + 4];
	size_t			 nplan, nsent, nreplied;
	int			 need_rset;
	int			 naccepted;
	int			 mail_status;	/* PROTO_* when MAIL failed */
	char			 mail_text[ENV_TEXT_MAX];
	int			 body_started, body_done, body_discard;
	off_t			 body_off;
	uint64_t		 body_wire;	/* bytes converted so far */
	int			 body_bol;
	struct mta_7bit		*body_7bit;	/* converting (mta_7bit.c) */
};

static uint64_t	 session_ids;

static void	session_readcb(void *);
static void	session_writecb(void *);
static void	session_eventcb(void *, short, int);
static int	session_connect(struct mta_session *);
static void	session_next(struct mta_session *);

static void
session_free(struct mta_session *s)
{
	struct mta_route	*rt = s->route;

	if (s->task != NULL) {
		s->task->reply[0] = '\0';
		mta_task_fail(s->task, PROTO_TEMPFAIL, s->relay,
		    "4.4.2 %s: session ended", s->relay);
		mta_task_free(s->task);
	}
	mta_7bit_free(s->body_7bit);
	if (s->io.bev == NULL && s->ssl != NULL)
		SSL_free(s->ssl);
	mta_io_close(&s->io);		/* and the SSL, and the socket */
	if (s->ev_idle != NULL)
		event_free(s->ev_idle);
	TAILQ_REMOVE(&rt->sessions, s, entry);
	rt->nsessions--;
	if (!s->ready)
		rt->nconnecting--;
	log_debug("mta session %016llx: closed", (unsigned long long)s->id);
	free(s);
	mta_route_kick(rt);
}

static enum relay_tls
session_tls_mode(const struct mta_session *s)
{
	return s->route->tls_level;
}

/* the current host's DANE state (LKA_TLSA_*; mta_dane.c) */
static int
session_dane(const struct mta_session *s)
{
	return mta_dane_host_state(s->route, s->host);
}

/*
 * The peer's certificate must verify (PKIX and a name): "verify" and
 * "secure" (session_tls_names() says which names).  "dane" and
 * "dane-only" verify with TLSA records instead (session_dane).
 */
static int
session_tls_verifies(const struct mta_session *s)
{
	switch (session_tls_mode(s)) {
	case RELAY_TLS_VERIFY:
	case RELAY_TLS_SECURE:
		return 1;
	default:
		/* MTA-STS enforce: as "verify" (mta_sts.c), but DANE wins
		 * where the host has usable TLSA records (RFC 8461 2) */
		return session_dane(s) != LKA_TLSA_RECORD &&
		    mta_sts_enforced(s->route);
	}
}

/*
 * The session's TLS outcome under the route's MTA-STS policy, for
 * TLS-RPT; nothing when there is none, or when DANE authenticated the
 * peer (RFC 8461 2: DANE wins where it applies).
 */
static void
session_sts_note(const struct mta_session *s, int result, const char *detail)
{
	if (s->tls_auth == MTA_TLS_DANE ||
	    (!mta_sts_enforced(s->route) && !mta_sts_testing(s->route)))
		return;
	/* testing: a host the policy does not name fails, whatever TLS did */
	if (!mta_sts_host_listed(s->route, s->host->name)) {
		result = TLSRPT_VALIDATION_FAILURE;
		detail = MTA_STS_NOT_LISTED;
	}
	mta_tlsrpt_note(s->route, s->host, TLSRPT_POLICY_STS, result, detail);
}

/*
 * TLS is mandatory for this host: the level, its TLSA records, or the
 * domain's MTA-STS policy in enforce mode
 */
static int
session_tls_required(const struct mta_session *s)
{
	switch (session_tls_mode(s)) {
	case RELAY_TLS_NO:
		return 0;
	case RELAY_TLS_OPPORTUNISTIC:
		return mta_sts_enforced(s->route);
	case RELAY_TLS_DANE:
		return session_dane(s) != LKA_TLSA_NONE ||
		    mta_sts_enforced(s->route);
	default:
		return 1;
	}
}

static void
session_timeout(struct mta_session *s, int secs)
{
	mta_io_set_timeout(&s->io, secs);
}

static void
session_printf(struct mta_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
session_printf(struct mta_session *s, const char *fmt, ...)
{
	struct evbuffer	*out = s->io.out;
	va_list		 ap;

	va_start(ap, fmt);
	if (evbuffer_add_vprintf(out, fmt, ap) == -1 ||
	    evbuffer_add(out, "\r\n", 2) == -1)
		fatalx("evbuffer_add");
	va_end(ap);
	mta_io_flush_later(&s->io);
}

static int
reply_status(int code)
{
	if (code >= 200 && code < 400)
		return PROTO_OK;
	return code >= 500 ? PROTO_PERMFAIL : PROTO_TEMPFAIL;
}


static const char *
state_name(enum mta_state st)
{
	if ((size_t)st >= sizeof(state_names) / sizeof(state_names[0]))
		return "?";
	return state_names[st];
}

/* "X.Y.Z host[ip]:port said: NNN text (in reply to WHAT)" */
static void
reply_describe(struct mta_session *s, const char *what, char *out,
    size_t len)
{
	char	dsn[16], line[ENV_TEXT_MAX];

	mta_reply_status(&s->reply, dsn, sizeof(dsn));
	/*
	 * Only a failure is described, and a 2xx or 3xx reply that is one
	 * (a greeting other than 220, a 354 to RCPT) fails temporarily: its
	 * own status, of class 2, would make the result and a delay DSN
	 * call it a success.  It is a protocol error (RFC 3463 X.5.0).
	 */
	if (dsn[0] == '2')
		snprintf(dsn, sizeof(dsn), "4.5.0");
	mta_reply_oneline(&s->reply, line, sizeof(line));
	textf(out, len, "%s host %s said: %s (in reply to %s)", dsn,
	    s->relay, line, what);
	/* the reply itself, for a DSN's "Diagnostic-Code: smtp;" */
	if (s->task != NULL)
		textf(s->task->reply, sizeof(s->task->reply), "%s", line);
}

/*
 * The failing set-up is the host's refusal: connecting failed, or no
 * greeting and EHLO/HELO success (a 4xx/5xx reply, or nothing).
 */
static int
session_turned_away(const struct mta_session *s)
{
	if (s->dane_skip)
		return 0;
	switch (s->state) {
	case S_CONNECT:
		return 1;
	case S_GREETING:
	case S_EHLO:
	case S_HELO:
		return s->reply.code != 220 && s->reply.code != 250;
	default:
		return 0;
	}
}

/*
 * RFC 8689 4.2.1: for REQUIRETLS mail a host whose TLS failed (4.7.x:
 * STARTTLS not offered or refused, a certificate that did not verify;
 * but not 4.7.0, AUTH) is not worth a retry: when no host is left the
 * mail bounces with "5.7.10 Encryption needed".  A connection or
 * handshake that broke (4.4.x) stays temporary.
 */
static void
requiretls_tls_failed(struct mta_session *s, int *status, char *text,
    size_t len)
{
	char	tmp[ENV_TEXT_MAX];

	if (!s->route->requiretls || *status == PROTO_PERMFAIL ||
	    strncmp(text, "4.7.", 4) != 0 || strncmp(text, "4.7.0 ", 6) == 0)
		return;
	snprintf(tmp, sizeof(tmp), "5.7.10 REQUIRETLS:%s",
	    text + strcspn(text, " "));
	snprintf(text, len, "%s", tmp);
	*status = PROTO_PERMFAIL;
}

/*
 * Setting up the session failed at this host: note why for the route,
 * skip the host for a while, and go on with the next one.  Returns -1:
 * the connection the caller was reading is gone (and the session may be
 * too), so the caller must return at once.
 */
static int
session_setup_failed(struct mta_session *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
session_setup_failed(struct mta_session *s, int status, const char *fmt, ...)
{
	struct mta_route	*rt = s->route;
	char			 text[ENV_TEXT_MAX];
	va_list			 ap;
	time_t			 now = time(NULL);
	int			 conn;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	requiretls_tls_failed(s, &status, text, sizeof(text));
	log_info("mta session %016llx: %s", (unsigned long long)s->id, text);
	/*
	 * What the queue will say if every host fails: a host that could
	 * not be reached says less than one that answered (a TLS name
	 * mismatch on one address is worth more than "connection refused"
	 * on the next), so it does not replace a recent answer.
	 */
	conn = strncmp(text, "4.4.", 4) == 0;
	if (!conn || rt->lasterr[0] == '\0' || rt->lasterr_conn ||
	    now - rt->lasterr_at > MTA_DEAD_SECS) {
		memcpy(rt->lasterr, text, sizeof(rt->lasterr));
		rt->lasterr_status = status;
		rt->lasterr_conn = conn;
		rt->lasterr_at = now;
	}
	/*
	 * A host that could not be reached or turned us away before EHLO
	 * was through: negative feedback (fewer sessions) and the back-off
	 * every route sees.  Anything later (STARTTLS, the certificate,
	 * AUTH, what this route's mail needs) says nothing about the host
	 * for other mail: it is skipped for this route's mail only.
	 */
	if (session_turned_away(s))
		mta_route_refused(rt, s->host, text);
	else if (s->host != NULL)
		s->host->dead_until = now + conf->mta_backoff;
	mta_io_close(&s->io);
	s->ssl = NULL;
	s->hostidx++;
	session_connect(s);
	return -1;
}

static void
session_lost(struct mta_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* the connection broke after set-up */
static void
session_lost(struct mta_session *s, const char *fmt, ...)
{
	struct mta_task	*t = s->task;
	char		 text[ENV_TEXT_MAX];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (t != NULL && s->nreplied == 0 && !t->requeued) {
		/*
		 * A cached session the server had already closed: nothing of
		 * this task was answered, so another session may carry it.
		 */
		t->requeued = 1;
		s->task = NULL;
		mta_task_requeue(t);
	} else if (t != NULL) {
		log_info("mta session %016llx: %s", (unsigned long long)s->id,
		    text);
		t->reply[0] = '\0';	/* no reply decided this */
		mta_task_fail(t, PROTO_TEMPFAIL, s->relay, "%s", text);
		mta_task_free(t);
		s->task = NULL;
	}
	session_free(s);
}

/* ---- connecting ---- */

static int
host_is_literal(const char *name)
{
	struct in6_addr	a;

	return inet_pton(AF_INET, name, &a) == 1 ||
	    inet_pton(AF_INET6, name, &a) == 1;
}

static int
session_bind_src(struct mta_session *s, int fd, int family)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	const char		*src = s->route->action->relay_src;
	socklen_t		 len;

	if (src[0] == '\0')
		return 0;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET && inet_pton(AF_INET, src, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		len = sizeof(*sin);
	} else if (family == AF_INET6 &&
	    inet_pton(AF_INET6, src, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		len = sizeof(*sin6);
	} else
		return 0;	/* "src" of the other family: let the kernel pick */
	return bind(fd, (struct sockaddr *)&ss, len);
}

/* connect to the next usable host from s->hostidx on; 0, or -1 freed */
static int
session_connect(struct mta_session *s)
{
	struct mta_route	*rt = s->route;
	struct mta_host		*h = NULL;
	char			 ip[INET6_ADDRSTRLEN];
	time_t			 now = time(NULL);
	socklen_t		 len;
	uint16_t		 port;
	int			 fd, on = 1;

	for (; s->hostidx < rt->nhosts; s->hostidx++) {
		if (mta_host_usable(&rt->hosts[s->hostidx], now)) {
			h = &rt->hosts[s->hostidx];
			break;
		}
	}
	if (h == NULL) {
		session_free(s);
		return -1;
	}
	s->host = h;
	s->tls = s->authed = s->starttls_refused = 0;
	s->tls_auth = MTA_TLS_NONE;
	s->ext = 0;
	mta_reply_init(&s->reply);
	if (h->ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&h->ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		port = ntohs(sin->sin_port);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		port = ntohs(sin6->sin6_port);
		len = sizeof(*sin6);
	}
	snprintf(s->relay, sizeof(s->relay), "%s[%s]:%u", h->name, ip, port);
	/*
	 * DANE decided before any byte goes out: a host whose TLSA lookup
	 * failed is not used at all (RFC 7672 2.2), nor one without TLSA
	 * records under "dane-only".
	 */
	s->dane_skip = 0;
	if (session_dane(s) == LKA_TLSA_BOGUS) {
		s->dane_skip = 1;
		mta_tlsrpt_note(rt, h, TLSRPT_POLICY_TLSA,
		    TLSRPT_DNSSEC_INVALID, "TLSA lookup failed validation");
		session_setup_failed(s, PROTO_TEMPFAIL, "4.7.5 %s: the TLSA "
		    "lookup failed DNSSEC validation or did not answer; not "
		    "delivering without DANE", s->relay);
		return -1;
	}
	if (session_tls_mode(s) == RELAY_TLS_DANE_ONLY &&
	    session_dane(s) != LKA_TLSA_RECORD) {
		s->dane_skip = 1;
		session_setup_failed(s, PROTO_TEMPFAIL, "4.7.5 %s: no usable "
		    "DNSSEC-validated TLSA record (tls dane-only)", s->relay);
		return -1;
	}
	if ((fd = socket(h->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		session_setup_failed(s, PROTO_TEMPFAIL, "4.4.0 socket: %s",
		    strerror(errno));
		return -1;
	}
	/* commands are small and pipelined: do not wait to coalesce */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		log_warn("setsockopt TCP_NODELAY");
	if (session_bind_src(s, fd, h->ss.ss_family) == -1) {
		close(fd);
		session_setup_failed(s, PROTO_TEMPFAIL,
		    "4.4.0 cannot bind to source address %s: %s",
		    rt->action->relay_src, strerror(errno));
		return -1;
	}
	session_timeout(s, MTA_TIMEOUT_CONNECT);
	s->state = S_CONNECT;
	log_debug("mta session %016llx: connecting to %s",
	    (unsigned long long)s->id, s->relay);
	if (mta_io_connect(&s->io, fd, (struct sockaddr *)&h->ss,
	    len) == -1) {
		session_setup_failed(s, PROTO_TEMPFAIL,
		    "4.4.1 connect to %s: %s", s->relay, strerror(errno));
		return -1;
	}
	mta_tlsrpt_source(h, fd);
	return 0;
}

void
mta_session_new(struct mta_route *rt)
{
	struct mta_session	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		fatal("calloc");
	s->id = ((uint64_t)arc4random() << 32) | ++session_ids;
	s->route = rt;
	clock_gettime(CLOCK_MONOTONIC, &s->t_start);
	TAILQ_INSERT_TAIL(&rt->sessions, s, entry);
	rt->nsessions++;
	rt->nconnecting++;
	s->io.fd = -1;
	s->io.lowat = MTA_BODY_LOW;	/* the body pump refills below this */
	s->io.on_read = session_readcb;
	s->io.on_write = session_writecb;
	s->io.on_event = session_eventcb;
	s->io.arg = s;
	session_connect(s);
}

/* ---- TLS ---- */

/*
 * The names the peer's certificate must match, Postfix's way: the
 * policy table's match= names if it gave some, else for "verify" the
 * host's name (the MX name DNS gave us, or the relay host), and for
 * "secure" the next-hop domain and its subdomains (nexthop:dot-nexthop):
 * never the MX name alone, which whoever forges a DNS answer chooses
 * (RFC 7672 1.3).  The next hop is the recipient domain of an MX route
 * and the relay host's name of a relay.  A name beginning with "."
 * matches any name below it (X509_check_host(3)); an address literal
 * is matched against the certificate's IP addresses.
 */
static void
session_tls_names(struct mta_session *s, X509_VERIFY_PARAM *param)
{
	static const char	*verify_names[] = { TLS_MATCH_HOSTNAME };
	static const char	*secure_names[] = { TLS_MATCH_NEXTHOP,
				    TLS_MATCH_DOT_NEXTHOP };
	const struct mta_route	*rt = s->route;
	const struct tls_policy	*tp = rt->tls_policy;
	const char		*nexthop, *name, **defaults = verify_names;
	char			 dotted[CONF_HOST_MAX + 1];
	int			 i, n;

	nexthop = rt->domain[0] != '\0' ? rt->domain : rt->host;
	n = 1;
	if (session_tls_mode(s) == RELAY_TLS_SECURE) {
		defaults = secure_names;
		n = 2;
	}
	if (tp != NULL && tp->nmatch > 0)
		n = tp->nmatch;
	for (i = 0; i < n; i++) {
		name = tp != NULL && tp->nmatch > 0 ? tp->match[i] :
		    defaults[i];
		if (strcmp(name, TLS_MATCH_HOSTNAME) == 0)
			name = s->host->name;
		else if (strcmp(name, TLS_MATCH_NEXTHOP) == 0)
			name = nexthop;
		else if (strcmp(name, TLS_MATCH_DOT_NEXTHOP) == 0) {
			if (host_is_literal(nexthop))
				continue;
			snprintf(dotted, sizeof(dotted), ".%s", nexthop);
			name = dotted;
		}
		if (host_is_literal(name)) {
			if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1)
				fatalx("X509_VERIFY_PARAM_set1_ip_asc");
			continue;
		}
		if (X509_VERIFY_PARAM_add1_host(param, name, 0) != 1)
			fatalx("X509_VERIFY_PARAM_add1_host");
		log_debug("mta session %016llx: the certificate may match %s",
		    (unsigned long long)s->id, name);
	}
}

/*
 * A session of an earlier connection to the same host, for the same
 * action and level (and destination, when the level verifies names),
 * resumes this one (mta_tlscache.c).  Not under DANE: its records are
 * checked on every full handshake.
 */
static void
session_tls_resume(struct mta_session *s)
{
	char	key[1024];

	if (session_tls_mode(s) == RELAY_TLS_DANE ||
	    session_tls_mode(s) == RELAY_TLS_DANE_ONLY)
		return;
	/* the names a verifying level checks may come from the
	 * destination (secure, match=): then it is part of the key; so
	 * under MTA-STS testing, whose verify result is reported */
	snprintf(key, sizeof(key), "%s|%s|%s|%s", s->route->action->name,
	    conf_tls_level_name(session_tls_mode(s)), s->relay,
	    session_tls_verifies(s) || mta_sts_testing(s->route) ?
	    s->route->domain : "");
	mta_tlscache_resume(s->ssl, key);
}

/* 0, or -1 when the host was given up (the session may be freed) */
static int
session_start_tls(struct mta_session *s)
{
	X509_VERIFY_PARAM	*param;
	const char		*name = s->host->name;

	if ((s->ssl = SSL_new(mta_ssl_ctx)) == NULL)
		fatalx("SSL_new");
	mta_tls_use_client_cert(s->ssl, s->route->action);
	if (!host_is_literal(name) &&
	    SSL_set_tlsext_host_name(s->ssl, name) != 1)
		log_debug("SNI %s refused by OpenSSL", name);
	if (session_dane(s) == LKA_TLSA_RECORD &&
	    mta_dane_start(s->ssl, s->route, s->host) == -1) {
		mta_tlsrpt_note(s->route, s->host, TLSRPT_POLICY_TLSA,
		    TLSRPT_TLSA_INVALID, "no TLSA record usable by OpenSSL");
		SSL_free(s->ssl);
		s->ssl = NULL;
		session_setup_failed(s, PROTO_TEMPFAIL, "4.7.5 %s: no TLSA "
		    "record could be used", s->relay);
		return -1;
	}
	/* MTA-STS testing: verified too, only to report the result */
	if (session_tls_verifies(s) || (mta_sts_testing(s->route) &&
	    session_dane(s) != LKA_TLSA_RECORD)) {
		param = SSL_get0_param(s->ssl);
		X509_VERIFY_PARAM_set_hostflags(param,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		session_tls_names(s, param);
	}
	session_tls_resume(s);
	session_timeout(s, MTA_TIMEOUT_REPLY);
	mta_io_start_tls(&s->io, s->ssl);
	s->state = S_TLS;
	return 0;
}

static void
session_tls_done(struct mta_session *s)
{
	X509	*cert;
	long	 vr;
	char	 why[256];

	switch (session_dane(s)) {
	case LKA_TLSA_RECORD:
		if (!mta_dane_check(s->ssl, why, sizeof(why))) {
			mta_tlsrpt_note(s->route, s->host, TLSRPT_POLICY_TLSA,
			    TLSRPT_VALIDATION_FAILURE, why);
			session_setup_failed(s, PROTO_TEMPFAIL, "4.7.5 %s: TLS "
			    "certificate does not match the TLSA records "
			    "(DANE): %s", s->relay, why);
			return;
		}
		mta_tlsrpt_note(s->route, s->host, TLSRPT_POLICY_TLSA,
		    TLSRPT_SUCCESS, NULL);
		break;
	case LKA_TLSA_UNUSABLE:
		/* RFC 7672 2.2: encrypted, not authenticated */
		mta_tlsrpt_note(s->route, s->host, TLSRPT_POLICY_TLSA,
		    TLSRPT_TLSA_INVALID, "no usable TLSA record");
		break;
	}
	if (session_tls_verifies(s)) {
		vr = SSL_get_verify_result(s->ssl);
		cert = SSL_get1_peer_certificate(s->ssl);
		if (cert != NULL)
			X509_free(cert);
		if (!mta_ssl_ca_loaded || cert == NULL || vr != X509_V_OK) {
			session_sts_note(s, cert == NULL ?
			    TLSRPT_VALIDATION_FAILURE :
			    mta_sts_verify_result(vr), cert == NULL ?
			    "no certificate" :
			    X509_verify_cert_error_string(vr));
			session_setup_failed(s, PROTO_TEMPFAIL, "4.7.5 %s: TLS "
			    "certificate verification failed: %s", s->relay,
			    cert == NULL ? "no certificate" :
			    X509_verify_cert_error_string(vr));
			return;
		}
	}
	s->tls = 1;
	if (session_dane(s) == LKA_TLSA_RECORD)
		s->tls_auth = MTA_TLS_DANE;
	else
		s->tls_auth = session_tls_verifies(s) ? MTA_TLS_VERIFIED :
		    MTA_TLS_ANON;
	if (mta_sts_testing(s->route) && s->tls_auth != MTA_TLS_DANE) {
		vr = SSL_get_verify_result(s->ssl);
		session_sts_note(s, mta_ssl_ca_loaded ?
		    mta_sts_verify_result(vr) : TLSRPT_VALIDATION_FAILURE,
		    vr == X509_V_OK ? NULL : X509_verify_cert_error_string(vr));
		if (vr != X509_V_OK)
			log_info("mta session %016llx: %s: MTA-STS testing: the "
			    "certificate would not verify: %s",
			    (unsigned long long)s->id, s->relay,
			    X509_verify_cert_error_string(vr));
	} else
		session_sts_note(s, TLSRPT_SUCCESS, NULL);
	mta_tlscache_count(s->ssl);
	log_info("mta session %016llx: %s: TLS=%s, %s with cipher %s%s",
	    (unsigned long long)s->id, s->relay,
	    mta_tls_auth_name(s->tls_auth), SSL_get_version(s->ssl),
	    SSL_get_cipher_name(s->ssl),
	    SSL_session_reused(s->ssl) ? ", resumed" : "");
	if (s->route->scheme == MTA_SCHEME_SMTPS) {
		s->state = S_GREETING;
		return;
	}
	s->state = S_EHLO;
	session_printf(s, "EHLO %s", s->route->action->helo[0] ?
	    s->route->action->helo : conf->hostname);
}

/* ---- after EHLO: TLS, AUTH, ready ---- */

static int
session_auth(struct mta_session *s)
{
	struct mta_route	*rt = s->route;
	char			 raw[600], b64[820];
	size_t			 ul, pl;

	if (s->ext & MTA_EXT_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd */
		ul = strlen(rt->auth_user);
		pl = strlen(rt->auth_pass);
		if (ul + pl + 2 > sizeof(raw))
			return session_setup_failed(s, PROTO_TEMPFAIL,
			    "4.7.0 credentials too long");
		raw[0] = '\0';
		memcpy(raw + 1, rt->auth_user, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, rt->auth_pass, pl);
		EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)raw,
		    (int)(ul + pl + 2));
		explicit_bzero(raw, sizeof(raw));
		session_printf(s, "AUTH PLAIN %s", b64);
		explicit_bzero(b64, sizeof(b64));
		s->state = S_AUTH;
	} else if (s->ext & MTA_EXT_AUTH_LOGIN) {
		session_printf(s, "AUTH LOGIN");
		s->state = S_AUTH_USER;
	} else
		return session_setup_failed(s, PROTO_TEMPFAIL, "4.7.0 %s "
		    "offers no AUTH mechanism we use (PLAIN, LOGIN)",
		    s->relay);
	return 0;
}

static int
session_auth_login_step(struct mta_session *s, const char *secret)
{
	char	b64[820];
	size_t	n = strlen(secret);

	if (n > 600)
		return session_setup_failed(s, PROTO_TEMPFAIL,
		    "4.7.0 credentials too long");
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)secret,
	    (int)n);
	session_printf(s, "%s", b64);
	explicit_bzero(b64, sizeof(b64));
	return 0;
}

static void
session_is_ready(struct mta_session *s)
{
	struct mta_route	*rt = s->route;

	if (!s->ready) {
		s->ready = 1;
		rt->nconnecting--;
		s->setup_ms = (uint32_t)mta_elapsed_ms(&s->t_start);
		mta_route_ready(rt, s->host,
		    (uint32_t)(mta_elapsed_ms(&s->t_start) * 1000));
		log_debug("mta session %016llx: ready on %s (%s%s)",
		    (unsigned long long)s->id, s->relay,
		    s->tls ? "TLS" : "plain", s->authed ? ", authenticated" :
		    "");
	}
	session_next(s);
}

/*
 * RFC 8689 4.2.1: a route of REQUIRETLS mail uses a host only when TLS
 * proved who it is (PKIX or DANE) and its EHLO after TLS offers
 * REQUIRETLS.  Any other host is passed over for the next one, and when
 * none is left the route's mail bounces with the last reason (mta.c).
 * LMTP is final delivery, outside the RFC.  1 when refused (the
 * connection is gone), 0 when the host serves.
 */
static int
session_requiretls_refused(struct mta_session *s)
{
	if (s->route->scheme == MTA_SCHEME_LMTP)
		return 0;
	if (s->tls_auth != MTA_TLS_VERIFIED && s->tls_auth != MTA_TLS_DANE) {
		session_setup_failed(s, PROTO_PERMFAIL, "5.7.10 REQUIRETLS: "
		    "%s: %s", s->relay, s->tls ? "its TLS certificate was not "
		    "verified" : "no TLS");
		return 1;
	}
	/*
	 * 4.2.1: the MX host itself must be authenticated: by DNSSEC (a
	 * DANE match needs secure MX and address records) or by the
	 * domain's MTA-STS policy naming it.  A relay host was named by
	 * the configuration, not by DNS.
	 */
	if (s->route->scheme == MTA_SCHEME_MX && s->tls_auth != MTA_TLS_DANE &&
	    !((mta_sts_enforced(s->route) || mta_sts_testing(s->route)) &&
	    mta_sts_host_listed(s->route, s->host->name))) {
		session_setup_failed(s, PROTO_PERMFAIL, "5.7.10 REQUIRETLS: "
		    "%s: the MX host is authenticated neither by DNSSEC "
		    "(DANE) nor by an MTA-STS policy", s->relay);
		return 1;
	}
	if (!(s->ext & MTA_EXT_REQUIRETLS)) {
		session_setup_failed(s, PROTO_PERMFAIL, "5.7.30 REQUIRETLS "
		    "support required, but %s does not offer it", s->relay);
		return 1;
	}
	return 0;
}

/* 0, or -1 when the connection is gone */
static int
session_after_ehlo(struct mta_session *s)
{
	struct mta_route	*rt = s->route;
	enum relay_tls		 mode = session_tls_mode(s);

	if (!s->tls) {
		/* a host with TLSA records, or under an enforced MTA-STS
		 * policy, gets no plain-text fallback */
		if (mode != RELAY_TLS_NO && (s->ext & MTA_EXT_STARTTLS) &&
		    !s->starttls_refused &&
		    (s->host->notls_until <= time(NULL) ||
		    session_tls_required(s))) {
			session_printf(s, "STARTTLS");
			s->state = S_STARTTLS;
			return 0;
		}
		session_sts_note(s, TLSRPT_STARTTLS_NOT_SUPPORTED,
		    s->starttls_refused ? "STARTTLS was refused" :
		    "STARTTLS was not offered");
		if (session_tls_required(s)) {
			if (session_dane(s) != LKA_TLSA_NONE)
				mta_tlsrpt_note(rt, s->host,
				    TLSRPT_POLICY_TLSA,
				    TLSRPT_STARTTLS_NOT_SUPPORTED,
				    s->starttls_refused ? "STARTTLS refused" :
				    "STARTTLS not offered");
			return session_setup_failed(s, PROTO_TEMPFAIL, "4.7.4 "
			    "%s: TLS is required%s, but %s", s->relay,
			    session_tls_verifies(s) && mta_sts_enforced(rt) ?
			    " by the MTA-STS policy" : "",
			    s->starttls_refused ? "STARTTLS was refused" :
			    "was not offered");
		}
	}
	if (rt->requiretls && session_requiretls_refused(s))
		return -1;
	if (rt->action->relay_auth_table[0] != '\0' && !s->authed) {
		if (rt->auth_user == NULL)
			return session_setup_failed(s, PROTO_TEMPFAIL, "4.7.0 "
			    "no credentials for \"%s\" in table %s",
			    rt->label, rt->action->relay_auth_table);
		/* never hand a password to someone who can read the wire */
		if (!s->tls)
			return session_setup_failed(s, PROTO_TEMPFAIL, "4.7.0 "
			    "%s: not sending credentials without TLS",
			    s->relay);
		return session_auth(s);
	}
	session_is_ready(s);
	return 0;
}

/* ---- transactions ---- */

/* RFC 3461 ORCPT: addr-type ";" xtext */
static int
mta_orcpt_valid(const char *s)
{
	const char	*semi = strchr(s, ';');
	const char	*p;

	if (semi == NULL || semi == s)
		return 0;
	for (p = s; p < semi; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-'))
			return 0;
	return mta_xtext_valid(semi + 1);
}

static int
task_needs_utf8(const struct mta_task *t)
{
	const struct envelope	*e = &t->rcpts[0].evp;

	return mta_addr_utf8(&e->sender) ||
	    ((e->flags & EF_SMTPUTF8) && t->header8bit);
}

static void
session_send_cmd(struct mta_session *s, const struct mta_plan *p)
{
	struct mta_task		*t = s->task;
	const struct envelope	*e = &t->rcpts[0].evp;
	char			 addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 params[ENV_TEXT_MAX * 2];
	size_t			 o = 0;
	uint32_t		 nf;

#define PARAM(...) do {							\
	int n_ = snprintf(params + o, sizeof(params) - o, __VA_ARGS__);	\
	if (n_ > 0 && (size_t)n_ < sizeof(params) - o)			\
		o += n_;						\
} while (0)
	params[0] = '\0';
	switch (p->cmd) {
	case C_RSET:
		session_printf(s, "RSET");
		break;
	case C_MAIL:
		addr_to_string(&e->sender, addr, sizeof(addr));
		if (s->ext & MTA_EXT_SIZE)
			PARAM(" SIZE=%llu", (unsigned long long)t->wire_size);
		if ((e->flags & EF_8BITMIME) && (s->ext & MTA_EXT_8BITMIME))
			PARAM(" BODY=8BITMIME");
		/* the route checked the peer (session_requiretls_refused) */
		if ((e->flags & EF_REQUIRETLS) &&
		    (s->ext & MTA_EXT_REQUIRETLS))
			PARAM(" REQUIRETLS");
		if ((s->ext & MTA_EXT_SMTPUTF8) && ((e->flags & EF_SMTPUTF8) ||
		    task_needs_utf8(t)))
			PARAM(" SMTPUTF8");
		if (s->ext & MTA_EXT_DSN) {
			if (e->flags & EF_DSN_RET_FULL)
				PARAM(" RET=FULL");
			else if (e->flags & EF_DSN_RET_HDRS)
				PARAM(" RET=HDRS");
			if (mta_xtext_valid(e->envid))
				PARAM(" ENVID=%s", e->envid);
		}
		session_printf(s, "MAIL FROM:<%s>%s", addr, params);
		break;
	case C_RCPT:
		e = &t->rcpts[p->rcpt].evp;
		addr_to_string(&e->dest, addr, sizeof(addr));
		if (s->ext & MTA_EXT_DSN) {
			nf = e->flags & (EF_NOTIFY_NEVER | EF_NOTIFY_SUCCESS |
			    EF_NOTIFY_FAILURE | EF_NOTIFY_DELAY);
			if (nf & EF_NOTIFY_NEVER)
				PARAM(" NOTIFY=NEVER");
			else if (nf != 0)
				PARAM(" NOTIFY=%s%s%s%s",
				    (nf & EF_NOTIFY_SUCCESS) ? "SUCCESS" : "",
				    (nf & EF_NOTIFY_SUCCESS) &&
				    (nf & (EF_NOTIFY_FAILURE | EF_NOTIFY_DELAY)) ?
				    "," : "",
				    (nf & EF_NOTIFY_FAILURE) ? "FAILURE" : "",
				    (nf & EF_NOTIFY_DELAY) ?
				    ((nf & (EF_NOTIFY_SUCCESS |
				    EF_NOTIFY_FAILURE)) ? ",DELAY" : "DELAY") :
				    "");
			if (mta_orcpt_valid(e->orcpt))
				PARAM(" ORCPT=%s", e->orcpt);
		}
		session_printf(s, "RCPT TO:<%s>%s", addr, params);
		break;
	case C_DATA:
		session_printf(s, "DATA");
		break;
	case C_BODY:
		break;
	}
#undef PARAM
}

/* send what may go out now: everything up to DATA when pipelining */
static void
session_send_plan(struct mta_session *s)
{
	while (s->nsent < s->nplan && s->plan[s->nsent].cmd != C_BODY) {
		if (!(s->ext & MTA_EXT_PIPELINING) && s->nsent > s->nreplied)
			break;
		session_send_cmd(s, &s->plan[s->nsent]);
		s->nsent++;
	}
}

static void
session_txn_done(struct mta_session *s)
{
	struct mta_task	*t = s->task;

	if (s->mail_status != PROTO_OK)
		mta_task_fail(t, s->mail_status, s->relay, "%s", s->mail_text);
	mta_7bit_free(s->body_7bit);
	s->body_7bit = NULL;
	s->task = NULL;
	mta_task_free(t);
	s->nmsgs++;
	session_next(s);
}

static void
session_txn_start(struct mta_session *s)
{
	struct mta_task	*t = s->task;
	size_t		 i, nrcpt = 0;

	s->nplan = s->nsent = s->nreplied = 0;
	s->naccepted = 0;
	s->mail_status = PROTO_OK;
	s->mail_text[0] = '\0';
	s->body_started = s->body_done = s->body_discard = 0;
	s->body_off = 0;
	s->body_wire = 0;
	s->body_bol = 1;
	t->delay_conn = s->nmsgs == 0 ? s->setup_ms : 0;
	t->reply[0] = '\0';

	/* what the message needs that the peer does not offer: bounce */
	if ((s->ext & MTA_EXT_SIZE) && s->maxsize > 0 &&
	    t->wire_size > s->maxsize) {
		mta_task_fail(t, PROTO_PERMFAIL, s->relay, "5.3.4 message "
		    "size %llu exceeds the limit %llu of %s",
		    (unsigned long long)t->wire_size,
		    (unsigned long long)s->maxsize, s->relay);
		goto done;
	}
	/* RFC 6152 3: converted to 7-bit, 5.6.3 if it cannot be */
	mta_7bit_free(s->body_7bit);
	s->body_7bit = NULL;
	if ((t->rcpts[0].evp.flags & EF_8BITMIME) && t->body8bit &&
	    !(s->ext & MTA_EXT_8BITMIME) &&
	    mta_7bit_prepare(t, s->relay, &s->body_7bit) == -1)
		goto done;
	if (!(s->ext & MTA_EXT_SMTPUTF8)) {
		if (task_needs_utf8(t)) {
			mta_task_fail(t, PROTO_PERMFAIL, s->relay, "5.6.7 %s "
			    "does not support SMTPUTF8 and this message "
			    "needs it", s->relay);
			goto done;
		}
		for (i = 0; i < t->nrcpts; i++)
			if (mta_addr_utf8(&t->rcpts[i].evp.dest))
				mta_rcpt_result(t, i, PROTO_PERMFAIL, s->relay,
				    "5.6.7 %s does not support SMTPUTF8, "
				    "needed for this recipient", s->relay);
	}
	if (s->need_rset)
		s->plan[s->nplan++].cmd = C_RSET;
	s->plan[s->nplan++].cmd = C_MAIL;
	for (i = 0; i < t->nrcpts; i++) {
		if (t->rcpts[i].done)
			continue;
		t->rcpts[i].accepted = 0;
		s->plan[s->nplan].cmd = C_RCPT;
		s->plan[s->nplan++].rcpt = i;
		nrcpt++;
	}
	if (nrcpt == 0)
		goto done;
	s->plan[s->nplan++].cmd = C_DATA;
	s->plan[s->nplan++].cmd = C_BODY;
	s->state = S_TXN;
	session_timeout(s, MTA_TIMEOUT_REPLY);
	session_send_plan(s);
	return;
done:
	s->task = NULL;
	mta_task_free(t);
	session_next(s);
}

void
mta_session_give(struct mta_session *s, struct mta_task *t)
{
	if (s->ev_idle != NULL)
		evtimer_del(s->ev_idle);
	s->task = t;
	session_txn_start(s);
}

struct mta_session *
mta_session_idle(struct mta_route *rt)
{
	struct mta_session	*s;

	TAILQ_FOREACH(s, &rt->sessions, entry)
		if (s->state == S_READY && s->task == NULL)
			return s;
	return NULL;
}

static void
session_on_idle(evutil_socket_t fd, short ev, void *arg)
{
	struct mta_session	*s = arg;

	session_printf(s, "QUIT");
	s->state = S_QUIT;
	session_timeout(s, MTA_TIMEOUT_QUIT);
}

void
mta_session_stop(struct mta_route *rt)
{
	struct mta_session	*s, *tmp;

	TAILQ_FOREACH_SAFE(s, &rt->sessions, entry, tmp) {
		/* its "." is written or on its way: the peer may have it */
		if (s->state == S_TXN && s->body_done && !s->body_discard)
			continue;
		if (s->task != NULL) {
			mta_task_drop(s->task);
			s->task = NULL;
		}
		session_free(s);
	}
}

void
mta_session_quit_idle(struct mta_route *rt)
{
	struct mta_session	*s;

	TAILQ_FOREACH(s, &rt->sessions, entry)
		if (s->state == S_READY && s->task == NULL) {
			if (s->ev_idle != NULL)
				evtimer_del(s->ev_idle);
			session_on_idle(-1, 0, s);
		}
}

static void
session_next(struct mta_session *s)
{
	struct mta_task	*t;
	struct timeval	 tv = { MTA_IDLE_SECS, 0 };

	if (s->nmsgs >= MTA_SESSION_MAX_MSGS) {
		session_on_idle(-1, 0, s);
		return;
	}
	if ((t = mta_route_take(s->route)) != NULL) {
		s->state = S_READY;
		mta_session_give(s, t);
		return;
	}
	if (mta_retiring()) {
		/* no more work will come to this process */
		session_on_idle(-1, 0, s);
		if (mta_stopping())
			session_timeout(s, MTA_TIMEOUT_QUIT_STOP);
		return;
	}
	s->state = S_READY;
	/* an idle session waits on its own timer, not a read timeout */
	session_timeout(s, 0);
	if (s->ev_idle == NULL &&
	    (s->ev_idle = evtimer_new(ev_base, session_on_idle, s)) == NULL)
		fatal("evtimer_new");
	evtimer_add(s->ev_idle, &tv);
}

/*
 * The message body: LF to CRLF and a dot doubled at the start of a line
 * (RFC 5321 4.5.2), read with pread() in large blocks and kept at most
 * MTA_BODY_HIGH ahead of the socket.
 */
static int
session_fill_body(struct mta_session *s)
{
	struct evbuffer		*out = s->io.out;
	static char		 in[65536];
	struct evbuffer_iovec	 v;
	const char		*p, *end, *nl;
	char			*o;
	ssize_t			 n;
	size_t			 len;

	while (!s->body_done && evbuffer_get_length(out) < MTA_BODY_HIGH) {
		n = spool_msg_pread(&s->task->msg, in, sizeof(in),
		    s->body_off);
		if (n == -1) {
			log_warn("%08x: read message", s->task->msgid);
			return -1;
		}
		if (n == 0)
			goto end;
		if (s->body_7bit != NULL) {
			if (mta_7bit_feed(s->body_7bit, in, n, out,
			    &s->body_bol) == -1)
				return -1;
			s->body_off += n;
			if (s->body_off >= spool_msg_size(&s->task->msg))
				goto end;
			continue;
		}
		/* converted straight into the buffer: at most twice as long */
		if (evbuffer_reserve_space(out, 2 * n, &v, 1) < 1 ||
		    v.iov_len < 2 * (size_t)n)
			fatalx("evbuffer_reserve_space");
		o = v.iov_base;
		for (p = in, end = in + n; p < end; p = nl ? nl + 1 : end) {
			if (s->body_bol && *p == '.')
				*o++ = '.';
			nl = memchr(p, '\n', end - p);
			len = (nl ? nl : end) - p;
			memcpy(o, p, len);
			o += len;
			if (nl != NULL) {
				*o++ = '\r';
				*o++ = '\n';
				s->body_bol = 1;
			} else if (len > 0)
				s->body_bol = 0;
		}
		v.iov_len = o - (char *)v.iov_base;
		if (evbuffer_commit_space(out, &v, 1) == -1)
			fatalx("evbuffer_commit_space");
		s->body_off += n;
		s->body_wire += v.iov_len;
		/* the whole message: no read to find its end */
		if (s->body_off >= spool_msg_size(&s->task->msg))
			goto end;
	}
	mta_io_flush_later(&s->io);
	return 0;
end:
	if (s->body_7bit != NULL &&
	    mta_7bit_finish(s->body_7bit, out, &s->body_bol) == -1)
		return -1;
	if (!s->body_bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	s->body_done = 1;
	session_timeout(s, MTA_TIMEOUT_DATA_END);
	mta_io_flush_later(&s->io);
	return 0;
}

/* the reply says "too busy, come back later" (mta_window.c) */
static int
session_reply_throttles(const struct mta_session *s)
{
	char	line[ENV_TEXT_MAX];

	mta_reply_oneline(&s->reply, line, sizeof(line));
	return mta_reply_throttles(s->reply.code, line);
}

/*
 * The server sent us away in a transaction: 421 to any command (RFC 5321
 * 3.8: it closes the channel), or "too many connections" in a 4xx to
 * MAIL.  Nothing of the message was delivered: the task goes back to its
 * route once, for a session that is still welcome (or, with none left,
 * to the queue's retry); the route's window shrinks and this host is
 * left alone for its back-off.  Always frees the session: -1.
 */
static int
session_txn_throttled(struct mta_session *s, const char *what)
{
	struct mta_task	*t = s->task;
	char		 text[ENV_TEXT_MAX];

	reply_describe(s, what, text, sizeof(text));
	log_info("mta session %016llx: %s", (unsigned long long)s->id, text);
	mta_route_refused(s->route, s->host, text);
	s->task = NULL;
	if (!t->requeued) {
		t->requeued = 1;
		mta_task_requeue(t);
	} else {
		mta_task_fail(t, PROTO_TEMPFAIL, s->relay, "%s", text);
		mta_task_free(t);
	}
	if (s->reply.code == 421) {
		session_free(s);
		return -1;
	}
	/* the server may still read: say goodbye, close on its reply */
	s->state = S_QUIT;
	session_printf(s, "QUIT");
	session_timeout(s, MTA_TIMEOUT_QUIT);
	return -1;
}

/* a reply in a transaction; -1 when the session was freed */
static int
session_txn_reply(struct mta_session *s)
{
	struct mta_task	*t = s->task;
	struct mta_plan	*p;
	char		 text[ENV_TEXT_MAX], dsn[16], line[ENV_TEXT_MAX];
	int		 st = reply_status(s->reply.code);
	size_t		 i;

	if (s->nreplied >= s->nsent) {
		session_lost(s, "4.5.0 %s: reply to no command", s->relay);
		return -1;
	}
	p = &s->plan[s->nreplied++];
	if (s->reply.code == 421 || (p->cmd == C_MAIL &&
	    session_reply_throttles(s)))
		return session_txn_throttled(s, p->cmd == C_MAIL ?
		    "MAIL FROM command" : p->cmd == C_RCPT ? "RCPT TO command" :
		    p->cmd == C_DATA ? "DATA command" : p->cmd == C_BODY ?
		    "end of DATA command" : "RSET command");
	switch (p->cmd) {
	case C_RSET:
		if (st != PROTO_OK) {
			session_lost(s, "4.5.0 %s: RSET refused", s->relay);
			return -1;
		}
		s->need_rset = 0;
		break;
	case C_MAIL:
		if (st == PROTO_OK && s->reply.code < 300)
			break;
		s->mail_status = st == PROTO_OK ? PROTO_TEMPFAIL : st;
		reply_describe(s, "MAIL FROM command", s->mail_text,
		    sizeof(s->mail_text));
		s->need_rset = 1;
		if (!(s->ext & MTA_EXT_PIPELINING)) {
			session_txn_done(s);
			return 0;
		}
		break;
	case C_RCPT:
		if (s->mail_status != PROTO_OK)
			break;
		if (st == PROTO_OK && s->reply.code < 300) {
			t->rcpts[p->rcpt].accepted = 1;
			s->naccepted++;
		} else {
			reply_describe(s, "RCPT TO command", text,
			    sizeof(text));
			mta_rcpt_result(t, p->rcpt, st == PROTO_OK ?
			    PROTO_TEMPFAIL : st, s->relay, "%s", text);
		}
		/* without pipelining, no DATA for nobody */
		if (!(s->ext & MTA_EXT_PIPELINING) && s->naccepted == 0 &&
		    s->plan[s->nreplied].cmd == C_DATA) {
			s->need_rset = 1;
			session_txn_done(s);
			return 0;
		}
		break;
	case C_DATA:
		if (s->reply.code == 354) {
			s->plan[s->nsent++].cmd = C_BODY;
			s->body_started = 1;
			if (s->mail_status != PROTO_OK || s->naccepted == 0) {
				/* RFC 2920 3.1: end the data at once */
				s->body_discard = 1;
				s->body_done = 1;
				s->need_rset = 1;
				evbuffer_add(s->io.out, ".\r\n", 3);
				mta_io_flush_later(&s->io);
				break;
			}
			if (session_fill_body(s) == -1) {
				session_lost(s, "4.3.0 cannot read the queued "
				    "message");
				return -1;
			}
			break;
		}
		if (s->mail_status == PROTO_OK && s->naccepted > 0) {
			reply_describe(s, "DATA command", text, sizeof(text));
			for (i = 0; i < t->nrcpts; i++)
				if (t->rcpts[i].accepted)
					mta_rcpt_result(t, i, st == PROTO_OK ?
					    PROTO_TEMPFAIL : st, s->relay, "%s",
					    text);
		}
		s->need_rset = 1;
		session_txn_done(s);
		return 0;
	case C_BODY:
		if (!s->body_done) {
			session_lost(s, "4.5.0 %s: reply before the end of "
			    "the message", s->relay);
			return -1;
		}
		if (s->body_discard) {
			session_txn_done(s);
			return 0;
		}
		/* positive feedback: the destination takes mail */
		mta_route_delivered(s->route, t);
		if (st == PROTO_OK && s->reply.code < 300) {
			mta_reply_status(&s->reply, dsn, sizeof(dsn));
			mta_reply_oneline(&s->reply, line, sizeof(line));
			textf(text, sizeof(text), "%s %s", dsn, line);
			textf(t->reply, sizeof(t->reply), "%s", line);
			st = PROTO_OK;
		} else {
			reply_describe(s, "end of DATA command", text,
			    sizeof(text));
			if (st == PROTO_OK)
				st = PROTO_TEMPFAIL;
		}
		for (i = 0; i < t->nrcpts; i++) {
			if (!t->rcpts[i].accepted)
				continue;
			/*
			 * RFC 3461 5.2.2: a peer without DSN got no NOTIFY,
			 * so a success we were asked to report is "relayed";
			 * one with DSN reports it itself.
			 */
			t->rcpts[i].dsn = (s->ext & MTA_EXT_DSN) ?
			    DR_DSN_PASSED : DR_DSN_RELAYED;
			mta_rcpt_result(t, i, st, s->relay, "%s", text);
		}
		session_txn_done(s);
		return 0;
	}
	session_send_plan(s);
	return 0;
}

/* one whole reply arrived; -1 when the session was freed */
static int
session_on_reply(struct mta_session *s)
{
	struct mta_route	*rt = s->route;
	struct evbuffer		*in;
	char			 text[ENV_TEXT_MAX];
	int			 st = reply_status(s->reply.code);

	switch (s->state) {
	case S_GREETING:
		if (s->reply.code != 220) {
			reply_describe(s, "initial greeting", text,
			    sizeof(text));
			session_setup_failed(s, st == PROTO_PERMFAIL ?
			    PROTO_PERMFAIL : PROTO_TEMPFAIL, "%s", text);
			return -1;
		}
		s->state = S_EHLO;
		session_printf(s, "EHLO %s", rt->action->helo[0] ?
		    rt->action->helo : conf->hostname);
		return 0;
	case S_EHLO:
		if (s->reply.code == 250) {
			s->ext = mta_reply_extensions(&s->reply, &s->maxsize);
			return session_after_ehlo(s);
		}
		if (st == PROTO_PERMFAIL && !s->tls) {
			/* RFC 5321 3.2: an old server; try HELO */
			s->state = S_HELO;
			session_printf(s, "HELO %s", rt->action->helo[0] ?
			    rt->action->helo : conf->hostname);
			return 0;
		}
		reply_describe(s, "EHLO command", text, sizeof(text));
		session_setup_failed(s, st == PROTO_PERMFAIL ? PROTO_PERMFAIL :
		    PROTO_TEMPFAIL, "%s", text);
		return -1;
	case S_HELO:
		if (s->reply.code != 250) {
			reply_describe(s, "HELO command", text, sizeof(text));
			session_setup_failed(s, st == PROTO_PERMFAIL ?
			    PROTO_PERMFAIL : PROTO_TEMPFAIL, "%s", text);
			return -1;
		}
		s->ext = 0;
		return session_after_ehlo(s);
	case S_STARTTLS:
		if (s->reply.code != 220) {
			s->starttls_refused = 1;
			return session_after_ehlo(s);
		}
		/*
		 * A 220 read with the EHLO reply came before our STARTTLS left
		 * (it waits in the output until the end of this turn): it
		 * answers nothing, and starting TLS now would drop the command
		 * and send the server a ClientHello it never asked for.
		 */
		if (evbuffer_get_length(s->io.out) > 0) {
			session_setup_failed(s, PROTO_TEMPFAIL, "4.5.0 %s: reply "
			    "to STARTTLS before it was sent", s->relay);
			return -1;
		}
		/*
		 * Anything the server sent after its 220 was sent in the
		 * clear and would be read as if it came over TLS: refuse
		 * (the STARTTLS command injection class, CVE-2011-0411).
		 */
		in = s->io.in;
		if (evbuffer_get_length(in) > 0) {
			session_setup_failed(s, PROTO_TEMPFAIL, "4.5.0 %s: "
			    "data after the STARTTLS reply", s->relay);
			return -1;
		}
		(void)session_start_tls(s);
		return 1;
	case S_AUTH:
		if (s->reply.code != 235) {
			reply_describe(s, "AUTH command", text, sizeof(text));
			session_setup_failed(s, PROTO_TEMPFAIL,
			    "4.7.0 authentication failed: %s", text);
			return -1;
		}
		s->authed = 1;
		session_is_ready(s);
		return 0;
	case S_AUTH_USER:
	case S_AUTH_PASS:
		if (s->reply.code != 334) {
			reply_describe(s, "AUTH command", text, sizeof(text));
			session_setup_failed(s, PROTO_TEMPFAIL,
			    "4.7.0 authentication failed: %s", text);
			return -1;
		}
		if (session_auth_login_step(s, s->state == S_AUTH_USER ?
		    rt->auth_user : rt->auth_pass) == -1)
			return -1;
		s->state = s->state == S_AUTH_USER ? S_AUTH_PASS : S_AUTH;
		return 0;
	case S_TXN:
		return session_txn_reply(s);
	case S_QUIT:
		session_free(s);
		return -1;
	case S_READY:
		/* unsolicited, e.g. "421 idle timeout": just close */
		session_free(s);
		return -1;
	default:
		session_lost(s, "4.5.0 %s: unexpected reply during %s",
		    s->relay, state_name(s->state));
		return -1;
	}
}

static void
session_readcb(void *arg)
{
	struct mta_session	*s = arg;
	struct evbuffer		*in;
	struct evbuffer_ptr	 eol;
	char			 line[MTA_LINE_MAX + 1];
	size_t			 eollen;
	int			 rc;

	/*
	 * A greeting read before the connect event: a bufferevent could
	 * do that; mta_io reports the connection first, so this is only a
	 * guard that keeps the state machine right whatever the order.
	 */
	if (s->state == S_CONNECT && s->route->scheme != MTA_SCHEME_SMTPS) {
		session_timeout(s, MTA_TIMEOUT_REPLY);
		s->state = S_GREETING;
	}
	for (;;) {
		in = s->io.in;
		eol = evbuffer_search_eol(in, NULL, &eollen, EVBUFFER_EOL_CRLF);
		if (eol.pos == -1) {
			if (evbuffer_get_length(in) > MTA_LINE_MAX)
				goto bad;
			return;
		}
		if ((size_t)eol.pos > MTA_LINE_MAX)
			goto bad;
		if (evbuffer_remove(in, line, eol.pos) != eol.pos ||
		    evbuffer_drain(in, eollen) == -1)
			fatalx("evbuffer_remove");
		line[eol.pos] = '\0';
		rc = mta_reply_line(&s->reply, line, eol.pos);
		if (rc == MTA_REPLY_BAD)
			goto bad;
		if (rc == MTA_REPLY_MORE)
			continue;
		if (s->state == S_TLS)
			goto bad;	/* nothing may come before TLS */
		rc = session_on_reply(s);
		if (rc != 0)
			return;	/* freed, or now TLS */
	}
bad:
	if (!s->ready) {
		session_setup_failed(s, PROTO_TEMPFAIL, "4.5.0 %s: malformed "
		    "reply during %s", s->relay, state_name(s->state));
		return;
	}
	if (s->task != NULL) {
		/* the task's commands may have been half answered */
		s->task->requeued = 1;
	}
	session_lost(s, "4.5.0 %s: malformed reply during %s", s->relay,
	    state_name(s->state));
}

static void
session_writecb(void *arg)
{
	struct mta_session	*s = arg;

	if (s->state == S_TXN && s->body_started && !s->body_done &&
	    session_fill_body(s) == -1)
		session_lost(s, "4.3.0 cannot read the queued message");
}

static void
session_eventcb(void *arg, short what, int err)
{
	struct mta_session	*s = arg;
	unsigned long		 e;
	char			 why[256];

	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == S_TLS) {
			session_tls_done(s);
			return;
		}
		if (s->state != S_CONNECT)
			return;	/* the greeting was faster */
		session_timeout(s, MTA_TIMEOUT_REPLY);
		if (s->route->scheme == MTA_SCHEME_SMTPS) {
			(void)session_start_tls(s);
			return;
		}
		s->state = S_GREETING;
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "timeout");
	else if ((e = mta_io_tls_error(&s->io)) != 0)
		snprintf(why, sizeof(why), "TLS: %s",
		    ERR_reason_error_string(e) ? ERR_reason_error_string(e) :
		    "error");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed");
	else
		snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(
		    err));
	ERR_clear_error();

	if (s->state == S_TLS && !s->tls)
		session_sts_note(s, TLSRPT_VALIDATION_FAILURE, why);
	/*
	 * The handshake failed.  Under a DANE policy, that is the end of
	 * this host (never plain text: RFC 7672 2.2); "tls dane" without
	 * TLSA records is opportunistic ("may").
	 */
	if (s->state == S_TLS && !s->tls &&
	    session_dane(s) == LKA_TLSA_RECORD)
		mta_tlsrpt_note(s->route, s->host, TLSRPT_POLICY_TLSA,
		    TLSRPT_VALIDATION_FAILURE, why);
	if (s->state == S_TLS && !s->tls && !session_tls_required(s) &&
	    s->route->scheme != MTA_SCHEME_SMTPS) {
		/* opportunistic: this host gets plain text for a while */
		log_info("mta session %016llx: %s: TLS handshake failed (%s);"
		    " retrying without TLS", (unsigned long long)s->id,
		    s->relay, why);
		s->host->notls_until = time(NULL) + MTA_NOTLS_SECS;
		mta_io_close(&s->io);
		s->ssl = NULL;
		session_connect(s);
		return;
	}
	if (!s->ready) {
		session_setup_failed(s, PROTO_TEMPFAIL, "4.4.%d %s: %s during "
		    "%s", s->state == S_CONNECT ? 1 : 2, s->relay, why,
		    state_name(s->state));
		return;
	}
	if (s->state == S_READY || s->state == S_QUIT) {
		session_free(s);
		return;
	}
	session_lost(s, "4.4.2 %s: %s during %s", s->relay, why,
	    state_name(s->state));
}

/* keep the compiler honest about the table sizes */
_Static_assert(sizeof(state_names) / sizeof(state_names[0]) == S_QUIT + 1,
    "state_names");
