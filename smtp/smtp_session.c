/*
 * smtp_session.c -- the RFC 5321 server state machine.
 *
 * Input is taken one line at a time (or, in a BDAT chunk, as counted
 * octets).  A command that needs another process (RCPT, VRFY and EXPN
 * ask lookup, DATA and BDAT ask queue, end of data asks queue to commit,
 * AUTH asks lookup) sets SS_WAIT and stops the loop; the answer resumes
 * it.  So pipelined commands are answered strictly in order, and their
 * replies leave together when the worker returns to its event loop
 * (RFC 2920).  VRFY, EXPN, HELP and ETRN are in smtp_query.c.
 *
 * Memory: an idle session is a struct session (a few hundred octets), a
 * read event, two empty evbuffers and whatever the client sent that we
 * have not read yet (smtp_io.c does the socket's side).
 * The transaction (struct txn), AUTH and TLS state exist only while in
 * use, so ten thousand idle clients cost little.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

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
#include "ctl.h"
#include "smtp_parse.h"
#include "sesscount.h"
#include "smtpcount.h"
#include "smtp_session.h"
#include "proc.h"
#include "strset.h"
#include "tree.h"
#include "util.h"

static int
session_cmp(struct session *a, struct session *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

RB_HEAD(session_tree, session);
RB_GENERATE_STATIC(session_tree, session, node, session_cmp)
static struct session_tree	sessions = RB_INITIALIZER(&sessions);

static void	milter_rcpt_result(struct session *, const struct lka_result *);
static uint32_t			next_id;
char				*linebuf;	/* one line, shared */
static size_t			 linebufsz;

/* local submission sessions have no listener of their own */
static struct listener		local_listener;

/* a refusal's reply as logged: lookup's replies may be this long */
#define REJECT_REPLY_MAX	512

void
session_init(void)
{
	/* ids unique per worker; the worker number keeps them apart */
	next_id = (uint32_t)smtp_worker.id << 24;
	linebufsz = conf->max_line + 3;
	if (linebufsz < SMTP_AUTH_LINE_MAX + 3)
		linebufsz = SMTP_AUTH_LINE_MAX + 3;
	if ((linebuf = malloc(linebufsz)) == NULL)
		fatal("malloc");
	snprintf(local_listener.ifname, sizeof(local_listener.ifname),
	    "local");
	/* a whole line of the longest kind must fit in the input */
	smtp_io_init(INPUT_HIWAT > linebufsz ? INPUT_HIWAT : linebufsz + 1);
}

struct session *
session_find(uint32_t id)
{
	struct session	key;

	key.id = id;
	return RB_FIND(session_tree, &sessions, &key);
}

const char *
session_hostname(const struct session *s)
{
	return s->l->hostname[0] ? s->l->hostname : conf->hostname;
}

/*
 * The client as log analysers expect it, Postfix's "host[address]": the
 * forward-confirmed reverse name (session_lookup_rdns() keeps no other)
 * or "unknown", never the HELO name, which the client chooses.
 */
const char *
session_client(const struct session *s, char *buf, size_t len)
{
	if (s->flags & SS_LOCAL)
		snprintf(buf, len, "localhost[uid=%u]", s->local_uid);
	else
		snprintf(buf, len, "%s[%s]", s->rdns ? s->rdns : "unknown",
		    s->addr);
	return buf;
}

/*
 * One line per refused command or connection, in Postfix's shape, so
 * that fail2ban's postfix filter and pflogsumm read it as they read
 * Postfix's (smtpd(8) LOGGING):
 *
 * NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 550 5.7.1 <x@y>: Relay
 *     access denied; from=<a@b> to=<x@y> proto=ESMTP helo=<h>
 *
 * stage is the command refused (RCPT, MAIL, DATA, ...) or CONNECT.
 * Everything the client sent is escaped.
 */
void
session_log_reject(const struct session *s, const char *stage,
    const char *reply, const struct mailaddr *rcpt)
{
	char	client[320], addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char	from[sizeof(addr) * 4 + 16], to[sizeof(addr) * 4 + 16];
	char	helo[ADDR_DOMAIN_MAX * 4 + 16], clean[REJECT_REPLY_MAX * 4];
	char	tmp[ADDR_DOMAIN_MAX * 4 + 1];

	smtpcount_reject(stage, reply);
	from[0] = to[0] = helo[0] = '\0';
	if (s->tx != NULL) {
		addr_to_string(&s->tx->mailfrom, addr, sizeof(addr));
		snprintf(from, sizeof(from), " from=<%s>",
		    log_sanitize(addr, clean, sizeof(clean)));
	}
	if (rcpt != NULL) {
		addr_to_string(rcpt, addr, sizeof(addr));
		snprintf(to, sizeof(to), " to=<%s>",
		    log_sanitize(addr, clean, sizeof(clean)));
	}
	if (s->helo != NULL)
		snprintf(helo, sizeof(helo), " helo=<%s>",
		    log_sanitize(s->helo, tmp, sizeof(tmp)));
	log_info("NOQUEUE: reject: %s from %s: %s;%s%s proto=%s%s%s%s", stage,
	    session_client(s, client, sizeof(client)),
	    log_sanitize(reply, clean, sizeof(clean)), from, to,
	    (s->flags & SS_EHLO) ? "ESMTP" : "SMTP", helo,
	    s->proxy_addr[0] ? " proxy=" : "", s->proxy_addr);
}

uint32_t
session_lka_flags(const struct session *s)
{
	uint32_t	f = 0;

	if (s->flags & SS_TLS)
		f |= SF_TLS;
	if (s->flags & SS_AUTH)
		f |= SF_AUTH;
	if (s->flags & SS_LOCAL)
		f |= SF_LOCAL;
	if (s->tx && (s->tx->mp.evflags & EF_SMTPUTF8))
		f |= SF_SMTPUTF8;
	return f;
}

/* a request to lookup with what it knows of the session; all else zero */
void
session_lka_request(const struct session *s, struct lka_rcpt_req *req)
{
	memset(req, 0, sizeof(*req));
	req->reqid = s->id;
	req->flags = session_lka_flags(s);
	req->listener = s->lindex;
	req->client = s->ss;
	snprintf(req->helo, sizeof(req->helo), "%s", s->helo ? s->helo : "");
	if (s->authname)
		snprintf(req->authname, sizeof(req->authname), "%s",
		    s->authname);
}

static void	session_vreply(struct session *, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));

static void
session_vreply(struct session *s, const char *fmt, va_list ap)
{
	va_list		 ap2;

	va_copy(ap2, ap);
	evbuffer_add_vprintf(s->out, fmt, ap);
	evbuffer_add(s->out, "\r\n", 2);
	session_io_flush_later(s);
	if (log_getverbose() > 1) {
		char	buf[600];

		vsnprintf(buf, sizeof(buf), fmt, ap2);
		log_debug("%08x: >>> %s", s->id, buf);
	}
	va_end(ap2);
}

void
session_reply(struct session *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	session_vreply(s, fmt, ap);
	va_end(ap);
}

/* reply, then hang up once the reply is on its way */
void
session_reply_close(struct session *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	session_vreply(s, fmt, ap);
	va_end(ap);
	s->flags |= SS_CLOSING;
	if (s->flags & SS_TLS) {
		bufferevent_disable(s->bev, EV_READ);
		bufferevent_enable(s->bev, EV_WRITE);
	} else
		session_io_update(s);	/* stops reading */
}

void
session_reject_close(struct session *s, const char *stage,
    const char *fmt, ...)
{
	char	reply[REJECT_REPLY_MAX];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(reply, sizeof(reply), fmt, ap);
	va_end(ap);
	session_log_reject(s, stage, reply, NULL);
	session_reply_close(s, "%s", reply);
}

/* refuse a command, with a reject line (session_log_reject()) */
void
session_reject(struct session *s, const char *stage,
    const struct mailaddr *rcpt, const char *fmt, ...)
{
	char	reply[REJECT_REPLY_MAX];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(reply, sizeof(reply), fmt, ap);
	va_end(ap);
	session_log_reject(s, stage, reply, rcpt);
	session_reply(s, "%s", reply);
}

void
session_error(struct session *s)
{
	const char	*stage;
	char		 client[320];

	if (++s->nerrors < SMTP_MAX_ERRORS)
		return;
	/* Postfix's words, which its fail2ban filter knows */
	switch (s->state) {
	case S_HELO:
		stage = "HELO";
		break;
	case S_MAIL:
		stage = "MAIL";
		break;
	case S_RCPT:
		stage = "RCPT";
		break;
	case S_DATA:
	case S_BDAT:
		stage = "DATA";
		break;
	case S_AUTH:
		stage = "AUTH";
		break;
	default:
		stage = "CONNECT";
		break;
	}
	log_info("too many errors after %s from %s", stage,
	    session_client(s, client, sizeof(client)));
	session_reply_close(s, "421 4.7.0 %s Too many errors, "
	    "closing connection", session_hostname(s));
}

static void
ipcount_release(struct session *s)
{
	if (s->ip == -1)
		return;
	smtpcount_open(-1);
	smtpcount_listener_open(s->lslot, -1);
	sesscount_release(s->ip);
	s->ip = -1;
	s->lslot = -1;
}

static void
session_free(struct session *s)
{
	RB_REMOVE(session_tree, &sessions, s);
	smtp_proxy_free(s);
	session_reset(s);
	smtp_milter_free(s);
	smtp_auth_free(s);
	if (s->ev_delay)
		event_free(s->ev_delay);
	session_io_close(s);
	ipcount_release(s);
	free(s->helo);
	free(s->rdns);
	free(s->authname);
	free(s->pending);
	free(s->addhead);
	free(s);
	smtp_worker.nsessions--;
	smtp_maybe_exit();
}

void
session_close(struct session *s)
{
	log_debug("%08x: disconnected from %s", s->id, s->addr);
	session_free(s);
}

/* every reply is out: what was waiting for that may go on */
void
session_drained(struct session *s)
{
	if (s->flags & SS_CLOSING) {
		session_close(s);
		return;
	}
	if (s->state == S_TLS && !(s->flags & SS_TLS)) {
		/* "220 Ready to start TLS" is out: switch now */
		smtp_tls_starttls(s);
		return;
	}
	if (s->flags & SS_OUTFULL) {
		s->flags &= ~SS_OUTFULL;
		session_process(s);
	}
}

/* the client was silent, or left our replies unread, for too long */
void
session_timeout(struct session *s)
{
	if (s->flags & SS_CLOSING) {
		session_close(s);
		return;
	}
	/*
	 * The client is silent because it waits for us: a filter has its
	 * own timeouts (up to eom-timeout), and they decide.
	 */
	if ((s->flags & SS_WAIT) && smtp_milter_busy(s)) {
		session_set_timeout(s);
		return;
	}
	/* RFC 5321 4.5.3.2: we may close after a timeout, with 421 */
	log_info("%08x: timeout, client %s", s->id, s->addr);
	if (s->state == S_TLS) {
		session_close(s);
		return;
	}
	s->flags |= SS_TIMEDOUT;
	session_reply_close(s, "421 4.4.2 %s Timeout, closing connection",
	    session_hostname(s));
	session_set_timeout(s);
}

static void
session_greet(struct session *s)
{
	session_reply(s, "220 %s ESMTP %s", session_hostname(s), SMTPD_NAME);
}

/* the filters' connect stage is over: greet, or hang up if they said so */
static void
session_milter_connected(struct session *s, int verdict)
{
	if (verdict == MILTER_CLOSE) {
		smtp_milter_reply(s, "CONNECT", NULL);
		return;
	}
	/* refused: said at MAIL; and the banner says so, as Postfix's */
	if (verdict == MILTER_REJECT)
		session_reply(s, "554 %s ESMTP not accepting connections",
		    session_hostname(s));
	else
		session_greet(s);
	session_set_timeout(s);
}

/* the session begins: the filters see it (if any), then the greeting */
void
session_begin(struct session *s)
{
	if (smtp_milter_start(s, session_milter_connected))
		return;
	session_greet(s);
}

static struct session *
session_alloc(int fd)
{
	struct session		*s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("calloc");
		close(fd);
		return NULL;
	}
	if (++next_id == 0)
		++next_id;	/* 0 asks the queue for spare files */
	s->id = next_id;
	s->fd = fd;
	if (session_io_open(s) == -1) {
		session_io_close(s);
		free(s);
		return NULL;
	}
	s->ip = -1;
	s->lslot = -1;
	RB_INSERT(session_tree, &sessions, s);
	smtp_worker.nsessions++;
	return s;
}

/*
 * The reverse name of the last few client addresses, kept for a minute:
 * a client that connects again and again (one message per connection is
 * common) costs one question to lookup per minute, not one per session.
 * (lookup keeps answers longer, for every worker.)
 */
#define RDNS_MEMO_SLOTS	64
#define RDNS_MEMO_TTL	60

struct rdns_memo {
	struct sockaddr_storage	 ss;
	time_t			 at;
	char			 name[256];	/* "": none worth writing */
};
static struct rdns_memo	rdns_memo[RDNS_MEMO_SLOTS];

static struct rdns_memo *
rdns_memo_slot(const struct sockaddr_storage *ss, int *match)
{
	const void		*b, *mb;
	size_t			 len, mlen;
	struct rdns_memo	*m;

	*match = 0;
	if ((b = sockaddr_ip(ss, &len)) == NULL)
		return NULL;
	m = &rdns_memo[sockaddr_ip_hash(ss) % RDNS_MEMO_SLOTS];
	mb = sockaddr_ip(&m->ss, &mlen);
	*match = mb != NULL && mlen == len && memcmp(mb, b, len) == 0;
	return m;
}

void
session_new(int fd, struct listener *l, uint32_t lindex,
    struct sockaddr_storage *ss, socklen_t sslen)
{
	struct session	*s;

	if ((s = session_alloc(fd)) == NULL)
		return;
	s->l = l;
	s->lindex = lindex;
	if (sslen > sizeof(s->ss))
		sslen = sizeof(s->ss);
	memcpy(&s->ss, ss, sslen);
	session_set_addr(s);
	if (!l->proxy_protocol) {
		session_start(s);
		return;
	}
	/*
	 * A PROXY header names the client, so only a balancer we were
	 * told to trust may send one: anyone else is hung up on, before
	 * a byte is read (logged with the address it really has).
	 */
	if (!smtp_proxy_trusted(l, &s->ss)) {
		log_info("%08x: proxy: connection from %s on %s port %u "
		    "refused: not a trusted proxy", s->id, s->addr,
		    l->ifname, l->port);
		session_close(s);
		return;
	}
	if (smtp_proxy_start(s) == -1)
		session_close(s);
}

/* the client's address as text, for logs, limits and lookups */
void
session_set_addr(struct session *s)
{
	const struct sockaddr_storage	*ss = &s->ss;

	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    s->addr, sizeof(s->addr));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)ss)->sin6_addr, s->addr,
		    sizeof(s->addr));
	else
		snprintf(s->addr, sizeof(s->addr), "local");
}

/*
 * The client is known: its address is the connection's, or what a
 * trusted proxy's header said (smtp_proxy.c) -- everything from here on
 * (limits, rDNS, rules, checks, filters, the Received field) sees only
 * that one.
 */
void
session_start(struct session *s)
{
	struct rdns_memo *memo;
	int		 known;
	struct lka_rdns	 rdns;
	int		 ok;
	struct listener	*l = s->l;

	log_debug("%08x: connection from %s on %s port %u%s%s%s%s", s->id,
	    s->addr, l->ifname, l->port, l->tag[0] ? " tag=" : "", l->tag,
	    s->proxy_addr[0] ? " proxy=" : "", s->proxy_addr);
	/* counted across all workers: the kernel spreads one client's
	 * connections over all of them */
	ok = sesscount_take(s->addr, conf->max_sessions_per_ip,
	    conf->max_sessions > 0 ? conf->max_sessions : 10000, &s->ip);
	smtpcount_add(SC_CONNECTION);
	if (s->ip != -1) {	/* until ipcount_release() */
		smtpcount_open(1);
		s->lslot = smtpcount_listener_slot(l->ifname, l->port, l->tag);
		smtpcount_listener_open(s->lslot, 1);
	}
	if (ok == SESSCOUNT_TOTAL) {
		smtpcount_add(SC_REFUSED_TOTAL);
		session_reject_close(s, "CONNECT", "421 4.7.0 %s Too many "
		    "sessions, try again later", session_hostname(s));
		return;
	}
	if (ok == SESSCOUNT_PER_IP) {
		smtpcount_add(SC_REFUSED_PER_IP);
		session_reject_close(s, "CONNECT", "421 4.7.0 %s Too many "
		    "sessions from your address, try again later",
		    session_hostname(s));
		return;
	}
	if (!smtp_limit_connect(s))
		return;
	/* the name goes into the Received header if it comes in time */
	memo = rdns_memo_slot(&s->ss, &known);
	if (memo != NULL && known && time(NULL) - memo->at < RDNS_MEMO_TTL) {
		s->iprev = memo->name[0] != '\0' ? IPREV_PASS : IPREV_FAIL;
		if (memo->name[0] != '\0' &&
		    (s->rdns = strdup(memo->name)) == NULL)
			log_warn("strdup");
	} else {
		memset(&rdns, 0, sizeof(rdns));
		rdns.reqid = s->id;
		rdns.addr = s->ss;
		mproc_compose(&smtp_worker.lookup, IMSG_LKA_RDNS, s->id, -1,
		    &rdns, sizeof(rdns));
	}
	if (l->tls == LISTEN_TLS_SMTPS) {
		/* RFC 8314: implicit TLS; the greeting comes after it */
		if (smtp_tls_accept(s) == -1)
			session_close(s);
		return;
	}
	smtp_checks_connect(s);
	session_begin(s);
	session_io_update(s);		/* start reading */
}

void
session_new_local(int fd, const struct local_session *ls)
{
	struct session	*s;

	if ((s = session_alloc(fd)) == NULL)
		return;
	s->l = &local_listener;
	s->lindex = UINT32_MAX;
	s->ss.ss_family = AF_UNIX;
	s->flags |= SS_LOCAL;
	s->local_uid = ls->uid;
	snprintf(s->addr, sizeof(s->addr), "local");
	if ((s->authname = strdup(ls->user)) == NULL) {
		log_warn("strdup");
		session_close(s);
		return;
	}
	log_debug("%08x: local submission by %s (uid %u)", s->id, ls->user,
	    ls->uid);
	session_begin(s);
	session_io_update(s);		/* start reading */
}

void
session_lookup_rdns(const struct lka_rdns *r)
{
	struct session		*s;
	struct rdns_memo	*memo;
	int			 known, good;

	/* only a forward-confirmed name is worth writing down */
	good = r->status == PROTO_OK && r->fcrdns && r->name[0] != '\0' &&
	    domain_valid(r->name, 0);
	/* a temporary failure is asked again next time */
	if (r->status != PROTO_TEMPFAIL &&
	    (memo = rdns_memo_slot(&r->addr, &known)) != NULL) {
		memo->ss = r->addr;
		memo->at = time(NULL);
		snprintf(memo->name, sizeof(memo->name), "%s",
		    good ? r->name : "");
	}
	if ((s = session_find(r->reqid)) == NULL)
		return;
	s->iprev = good ? IPREV_PASS : r->status == PROTO_TEMPFAIL ?
	    IPREV_TEMPERROR : IPREV_FAIL;
	if (!good || s->rdns != NULL)
		return;
	if ((s->rdns = strdup(r->name)) == NULL)
		log_warn("strdup");
}

void
session_shutdown_all(void)
{
	struct session	*s, *tmp;

	/*
	 * Sessions waiting on the queue get their answer first, and a
	 * session inside a mail transaction may finish it: session_process()
	 * says 421 once it is back outside one (a reload retires workers
	 * this way without losing what their clients are sending).
	 */
	RB_FOREACH_SAFE(s, session_tree, &sessions, tmp) {
		if (s->flags & (SS_WAIT | SS_CLOSING))
			continue;
		if (s->proxy != NULL) {
			/* not a client yet: no greeting to take back */
			session_close(s);
			continue;
		}
		if (s->state >= S_MAIL && s->state <= S_BDAT)
			continue;
		if (s->state == S_TLS) {
			session_close(s);
			continue;
		}
		session_reply_close(s, "421 4.3.2 %s Service shutting down",
		    session_hostname(s));
	}
}

static void
txn_free(struct txn *tx)
{
	size_t	i;

	for (i = 0; i < tx->ndests; i++)
		free(tx->dests[i].orcpt);
	free(tx->dests);
	free(tx->mail_args);
	free(tx->rcpt_args);
	strset_free(tx->destset);
	if (tx->msgbuf)
		evbuffer_free(tx->msgbuf);
	if (tx->partial)
		evbuffer_free(tx->partial);
	smtp_dkim_txn_gone(tx);
	free(tx->arhold);
	free(tx);
}

/* drop the transaction; a message file being written is rolled back */
void
session_reset(struct session *s)
{
	struct queue_msg_req	req;
	struct txn		*tx = s->tx;

	if (tx == NULL)
		goto done;
	smtp_milter_abort(s);
	if (tx->resv_fd != -1)
		smtp_data_return_spare(tx->resv_msgid, tx->resv_fd);
	if (tx->msgfd != -1) {
		close(tx->msgfd);
		memset(&req, 0, sizeof(req));
		req.reqid = s->id;
		req.msgid = tx->msgid;
		mproc_compose(&smtp_worker.queue, IMSG_QUEUE_ROLLBACK, s->id,
		    -1, &req, sizeof(req));
	}
	txn_free(tx);
	s->tx = NULL;
done:
	s->addhead_len = s->addhead_lines = 0;
	if (s->state > S_HELO && s->state != S_TLS && s->state != S_AUTH)
		s->state = S_HELO;
}

/*
 * Take one line out of `in'.  Returns 1 with the line (terminator
 * removed, NUL-terminated, in linebuf) or 0 when no complete line is
 * buffered.  A line over `max' octets (terminator included) is discarded
 * and reported as LF_TOOLONG once its end arrives; *longp remembers that
 * one is being discarded.
 */
/*
 * Whether a line holds a CR or a NUL.  Every line of every message
 * passes here: one pass, a machine word at a time (a word has a zero
 * byte when subtracting one from each byte borrows into a high bit that
 * was clear).
 */
static int
line_ctl(const char *p, size_t len)
{
	const uint64_t	 ones = 0x0101010101010101ULL;
	const uint64_t	 highs = 0x8080808080808080ULL;
	const uint64_t	 crs = 0x0d0d0d0d0d0d0d0dULL;
	uint64_t	 w, cr = 0, nul = 0;
	size_t		 i;
	int		 f = 0;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, sizeof(w));
		nul |= (w - ones) & ~w & highs;
		w ^= crs;
		cr |= (w - ones) & ~w & highs;
	}
	for (; i < len; i++) {
		if (p[i] == '\r')
			f |= LF_BARECR;
		else if (p[i] == '\0')
			f |= LF_NUL;
	}
	return f | (cr ? LF_BARECR : 0) | (nul ? LF_NUL : 0);
}

int
buf_getline(struct evbuffer *in, int *longp, size_t max, size_t *lenp,
    int *lflags)
{
	struct evbuffer_ptr	 p;
	size_t			 len;
	char			*buf = linebuf;

	*lflags = 0;
	if (max > linebufsz - 1)
		max = linebufsz - 1;
	p = evbuffer_search(in, "\n", 1, NULL);
	if (p.pos == -1) {
		len = evbuffer_get_length(in);
		if (len > max) {
			evbuffer_drain(in, len);
			*longp = 1;
		}
		return 0;
	}
	len = (size_t)p.pos + 1;
	if (*longp || len > max) {
		evbuffer_drain(in, len);
		*longp = 0;
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
	*lflags |= line_ctl(buf, len);
	*lenp = len;
	return 1;
}

static int
session_getline(struct session *s, size_t max, size_t *lenp, int *lflags)
{
	int	lng = (s->flags & SS_LONGLINE) != 0, r;

	r = buf_getline(s->in, &lng, max, lenp, lflags);
	if (lng)
		s->flags |= SS_LONGLINE;
	else
		s->flags &= ~SS_LONGLINE;
	return r;
}

/* "FROM:" / "TO:" prefix, case-insensitive, RFC 5321 4.1.1.2 */
static const char *
skip_prefix(const char *args, const char *prefix)
{
	size_t	n = strlen(prefix);

	if (args == NULL || strncasecmp(args, prefix, n) != 0)
		return NULL;
	return args + n;
}

static int
has_8bit(const char *p)
{
	for (; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return 1;
	return 0;
}

/* ---- HELO, EHLO ---- */

static void	helo_milter(struct session *, int);
static void	helo_reply(struct session *);

static void
cmd_helo(struct session *s, const char *verb, char *args, int ehlo)
{
	char		*helo;

	if (args == NULL || *args == '\0') {
		session_reply(s, "501 5.5.4 Syntax: %s hostname", verb);
		session_error(s);
		return;
	}
	if (strchr(args, ' ') != NULL || strlen(args) > ADDR_DOMAIN_MAX ||
	    !domain_valid(args, ADDR_ALLOW_UTF8)) {
		session_reply(s, "501 5.5.4 Invalid domain name");
		session_error(s);
		return;
	}
	if ((helo = strdup(args)) == NULL) {
		session_reply(s, "451 4.3.0 Out of memory");
		return;
	}
	session_reset(s);
	free(s->helo);
	s->helo = helo;
	s->state = S_HELO;
	if (ehlo)
		s->flags |= SS_EHLO;
	else
		s->flags &= ~SS_EHLO;
	if (smtp_milter_stage(s, MILTER_STAGE_HELO, s->helo, helo_milter))
		return;
	helo_reply(s);
}

/* what the filters said of HELO/EHLO */
static void
helo_milter(struct session *s, int verdict)
{
	/* a refusal is the session's from now, given at MAIL (Postfix) */
	if (verdict == MILTER_CLOSE) {
		smtp_milter_reply(s, "HELO", NULL);
		return;
	}
	helo_reply(s);
}

static void
helo_reply(struct session *s)
{
	const char	*ext[16];
	char		 size[32];
	int		 n = 0, i;

	if (!(s->flags & SS_EHLO)) {
		session_reply(s, "250 %s Hello %s [%s]", session_hostname(s),
		    s->helo, s->addr);
		return;
	}
	snprintf(size, sizeof(size), "SIZE %zu", conf->max_message_size);
	ext[n++] = "8BITMIME";
	ext[n++] = "PIPELINING";
	ext[n++] = size;
	ext[n++] = "ENHANCEDSTATUSCODES";
	ext[n++] = "SMTPUTF8";
	ext[n++] = "DSN";
	ext[n++] = "CHUNKING";
	ext[n++] = "ETRN";
	if (smtp_tls_available(s))
		ext[n++] = "STARTTLS";
	/* RFC 8689 2: only in a session that is over TLS */
	if (s->flags & SS_TLS)
		ext[n++] = "REQUIRETLS";
	if (smtp_auth_offered(s))
		ext[n++] = smtp_auth_mechanisms(s);
	ext[n++] = "HELP";
	session_reply(s, "250-%s Hello %s [%s]", session_hostname(s), s->helo,
	    s->addr);
	for (i = 0; i < n; i++)
		session_reply(s, "250%c%s", i == n - 1 ? ' ' : '-', ext[i]);
}

/* ---- MAIL, RCPT ---- */

/* may this session start a transaction?  If not, say why. */
static int
session_may_mail(struct session *s)
{
	if (s->flags & SS_LOCAL)
		return 1;
	if (s->l->tls == LISTEN_TLS_REQUIRE && !(s->flags & SS_TLS)) {
		session_reject(s, "MAIL", NULL, "530 5.7.0 Must issue a "
		    "STARTTLS command first");
		return 0;
	}
	if (smtp_auth_required(s) && !(s->flags & SS_AUTH)) {
		session_reject(s, "MAIL", NULL, "530 5.7.0 Authentication "
		    "required");
		return 0;
	}
	return 1;
}

/*
 * Local submission (sendmail, or anything speaking to the control
 * socket): only root may choose the envelope sender (sendmail(8)).
 * Anyone else may send as themselves -- their login name at the mail
 * name or the host name -- or with the null sender, and is refused
 * otherwise.  This is where it is enforced, whatever the client
 * (sendmail -bs, -f, -t, a program of the user's own, an offline file
 * picked up as its owner): s->authname and s->local_uid are what the
 * kernel said of the peer (SO_PEERCRED), by way of control and parent.
 */
static int
local_sender_allowed(const struct session *s, const struct mailaddr *a)
{
	if (!(s->flags & SS_LOCAL) || s->local_uid == 0)
		return 1;
	if (a->user[0] == '\0' && a->domain[0] == '\0')
		return 1;
	if (s->authname == NULL || strcmp(a->user, s->authname) != 0)
		return 0;
	return strcasecmp(a->domain, conf->mailname) == 0 ||
	    strcasecmp(a->domain, conf->hostname) == 0;
}

/* what the filters said of MAIL FROM */
static void
mail_milter(struct session *s, int verdict)
{
	switch (verdict) {
	case MILTER_DISCARD:
		s->tx->discard = 1;
		/* FALLTHROUGH */
	case MILTER_CONTINUE:
		session_reply(s, "250 2.1.0 Ok");
		return;
	}
	smtp_milter_reply(s, "MAIL", NULL);
	session_reset(s);
}

/* MAIL FROM passed our checks: the filters' turn, then 250 */
static void
mail_accept(struct session *s)
{
	if (s->milter != NULL)
		smtp_data_reserve(s);
	if (smtp_milter_stage(s, MILTER_STAGE_MAIL, s->tx->mail_args,
	    mail_milter))
		return;
	session_reply(s, "250 2.1.0 Ok");
}

static void
cmd_mail(struct session *s, char *args)
{
	struct txn	*tx;
	const char	*p, *rest;
	char		 reply[SMTP_REPLY_MAX];
	int		 rc;

	if (s->state < S_HELO) {
		session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		session_error(s);
		return;
	}
	if (s->tx != NULL) {
		session_reply(s, "503 5.5.1 Error: nested MAIL command");
		session_error(s);
		return;
	}
	if (!session_may_mail(s)) {
		session_error(s);
		return;
	}
	if ((p = skip_prefix(args, "FROM:")) == NULL) {
		session_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		session_error(s);
		return;
	}
	if (conf->max_messages_per_session > 0 &&
	    s->nmessages >= conf->max_messages_per_session) {
		session_reject_close(s, "MAIL", "421 4.7.0 %s Too many "
		    "messages in this session", session_hostname(s));
		return;
	}
	if (!smtp_limit_mail(s))
		return;
	if ((tx = calloc(1, sizeof(*tx))) == NULL) {
		session_reply(s, "451 4.3.0 Out of memory");
		return;
	}
	tx->msgfd = -1;
	tx->resv_fd = -1;
	rc = addr_parse_path(p, &tx->mailfrom, ADDR_ALLOW_NULL |
	    ADDR_ALLOW_UTF8, &rest);
	if (rc != ADDR_OK) {
		session_reply(s, "501 5.1.7 Bad sender address syntax");
		goto fail;
	}
	if (*rest != '\0' && *rest != ' ') {
		session_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address> "
		    "[parameters]");
		goto fail;
	}
	if (smtp_parse_mail_params(rest, s->flags & SS_EHLO, &tx->mp, reply,
	    sizeof(reply)) == -1) {
		session_reply(s, "%s", reply);
		goto fail;
	}
	/*
	 * RFC 8689 2: REQUIRETLS only in a session over TLS (we offer it
	 * in no other); asked for in the clear, the message would start
	 * its way unprotected: refused, as for a command that needs TLS
	 * (RFC 3207 4, 530) with "encryption needed" (RFC 5248 X.7.10).
	 */
	if ((tx->mp.evflags & EF_REQUIRETLS) && !(s->flags & SS_TLS)) {
		session_reply(s, "530 5.7.10 REQUIRETLS needs a TLS session; "
		    "issue STARTTLS first");
		goto fail;
	}
	if (tx->mp.has_size && tx->mp.size > conf->max_message_size) {
		session_reject(s, "MAIL", NULL, "552 5.3.4 Message size "
		    "exceeds fixed maximum message size");
		goto fail;
	}
	/* RFC 6531 3.4: UTF-8 addresses only with SMTPUTF8 */
	if (!(tx->mp.evflags & EF_SMTPUTF8) &&
	    (has_8bit(tx->mailfrom.user) || has_8bit(tx->mailfrom.domain))) {
		session_reply(s, "553 5.6.7 UTF-8 address requires SMTPUTF8");
		goto fail;
	}
	if (!local_sender_allowed(s, &tx->mailfrom)) {
		log_info("%08x: local sender refused: uid=%u user=%s may "
		    "only send as %s@%s", s->id, (unsigned)s->local_uid,
		    s->authname, s->authname, conf->mailname);
		session_reply(s, "553 5.7.1 Sender address not owned by user "
		    "%s; only root may choose another", s->authname);
		goto fail;
	}
	s->tx = tx;
	s->state = S_MAIL;
	if (smtp_milter_active(s) && *rest == ' ' &&
	    (tx->mail_args = strdup(rest + 1)) == NULL)
		fatal("strdup");
	smtp_checks_mail(s);	/* SPF, while the recipients come */
	/*
	 * senders <table>: the addresses an authenticated user may use;
	 * check-sender-domain: MAIL FROM must name a domain that exists
	 * (lookup/auth.c, lookup_sender())
	 */
	if ((s->l->check_sender_domain && tx->mailfrom.domain[0]) ||
	    (s->l->senders_table[0] && (s->flags & SS_AUTH) &&
	    !(s->flags & SS_LOCAL))) {
		struct lka_rcpt_req req;

		session_lka_request(s, &req);
		req.mailfrom = tx->mailfrom;
		s->flags |= SS_WAIT | SS_SENDER;
		mproc_compose(&smtp_worker.lookup, IMSG_LKA_SENDER, s->id, -1,
		    &req, sizeof(req));
		return;
	}
	mail_accept(s);
	return;
fail:
	txn_free(tx);
	session_error(s);
}

void
session_lookup_sender(const struct lka_result *r)
{
	struct session	*s;

	if ((s = session_find(r->reqid)) == NULL ||
	    !(s->flags & SS_SENDER))
		return;
	s->flags &= ~(SS_WAIT | SS_SENDER);
	if (r->status == PROTO_OK)
		mail_accept(s);
	else {
		session_reject(s, "MAIL", NULL, "%s", r->reply[0] ? r->reply :
		    "450 4.1.8 Sender address rejected: Domain not found");
		txn_free(s->tx);
		s->tx = NULL;
		s->state = S_HELO;
	}
	session_process(s);
}

/* what lookup is asked about the transaction's pending recipient */
void
session_rcpt_request(const struct session *s, struct lka_rcpt_req *req)
{
	session_lka_request(s, req);
	req->mailfrom = s->tx->mailfrom;
	req->rcpt = s->tx->rcpt_pending;
	/* the checks' results, for "spf" and "dnsbl" in match rules */
	if (s->tx->checks && s->tx->spf.result >= 0) {
		req->flags |= SF_CHECKED;
		req->spf = s->tx->spf.result;
	}
	if (s->dnsbl == DNSBL_LISTED)
		req->flags |= SF_DNSBL;
}

static void
cmd_rcpt(struct session *s, char *args)
{
	struct lka_rcpt_req	 req;
	struct txn		*tx = s->tx;
	const char		*p, *rest;
	char			 reply[SMTP_REPLY_MAX];
	int			 rc, flags;

	if (tx == NULL) {
		session_reply(s, "503 5.5.1 Error: need MAIL command");
		session_error(s);
		return;
	}
	if (tx->bdat) {
		session_reply(s, "503 5.5.1 Error: RCPT after BDAT");
		session_error(s);
		return;
	}
	if ((p = skip_prefix(args, "TO:")) == NULL) {
		session_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		session_error(s);
		return;
	}
	if (tx->nrcpt_ok >= conf->max_rcpt) {
		session_reject(s, "RCPT", NULL, "452 4.5.3 Too many "
		    "recipients");
		return;
	}
	flags = ADDR_ALLOW_NODOMAIN;
	if (tx->mp.evflags & EF_SMTPUTF8)
		flags |= ADDR_ALLOW_UTF8;
	rc = addr_parse_path(p, &tx->rcpt_pending, flags, &rest);
	if (rc == ADDR_ERR_UTF8) {
		session_reply(s, "553 5.6.7 UTF-8 address requires SMTPUTF8");
		session_error(s);
		return;
	}
	if (rc != ADDR_OK || (*rest != '\0' && *rest != ' ')) {
		session_reply(s, "501 5.1.3 Bad recipient address syntax");
		session_error(s);
		return;
	}
	if (smtp_parse_rcpt_params(rest, s->flags & SS_EHLO, &tx->rp_pending,
	    reply, sizeof(reply)) == -1) {
		session_reply(s, "%s", reply);
		session_error(s);
		return;
	}
	if (!smtp_limit_rcpt(s, &tx->rcpt_pending))
		return;
	s->state = S_RCPT;
	tx->ndests_before = tx->ndests;
	if (smtp_milter_active(s)) {
		free(tx->rcpt_args);
		tx->rcpt_args = NULL;
		if (*rest == ' ' && (tx->rcpt_args = strdup(rest + 1)) == NULL)
			fatal("strdup");
	}
	session_rcpt_request(s, &req);
	if (rcache_replay(s, &req))
		return;		/* asked a moment ago, and accepted */
	s->flags |= SS_WAIT;
	mproc_compose(&smtp_worker.lookup, IMSG_LKA_RCPT, s->id, -1, &req,
	    sizeof(req));
}

/* ---- lookup answers ---- */

static size_t
dest_key_str(unsigned char *buf, const char *str, size_t size)
{
	size_t	len = strnlen(str, size - 1);

	memcpy(buf, str, len);
	buf[len] = '\0';
	return len + 1;
}

/*
 * A destination as the duplicate check sees it: type, final address,
 * action, user and path, each string up to its NUL (lookup zeroes the
 * rest), so that a key costs the set tens of bytes, not kilobytes.
 */
static size_t
dest_key(const struct lka_dest *d, unsigned char *buf, size_t size)
{
	size_t	n = 0;

	if (size < sizeof(d->dest_type) + sizeof(d->dest) +
	    sizeof(d->action) + sizeof(d->user) + sizeof(d->path))
		fatalx("dest_key: buffer too small");
	memcpy(buf + n, &d->dest_type, sizeof(d->dest_type));
	n += sizeof(d->dest_type);
	n += dest_key_str(buf + n, d->dest.user, sizeof(d->dest.user));
	n += dest_key_str(buf + n, d->dest.domain, sizeof(d->dest.domain));
	n += dest_key_str(buf + n, d->action, sizeof(d->action));
	n += dest_key_str(buf + n, d->user, sizeof(d->user));
	n += dest_key_str(buf + n, d->path, sizeof(d->path));
	return n;
}

static int
dest_key_in(const struct strset *set, const struct lka_dest *d)
{
	unsigned char	buf[sizeof(*d)];

	return strset_has(set, buf, dest_key(d, buf, sizeof(buf)));
}

/* the pending RCPT was accepted: its destinations count as seen */
static void
dests_remember(struct txn *tx)
{
	unsigned char	buf[sizeof(struct lka_dest)];
	size_t		i;

	if (tx->destset == NULL && (tx->destset = strset_new(0)) == NULL)
		fatal("strset_new");
	for (i = tx->ndests_before; i < tx->ndests; i++)
		if (strset_add(tx->destset, buf, dest_key(&tx->dests[i].d,
		    buf, sizeof(buf))) == -1)
			fatal("strset_add");
}

void
session_lookup_dest(const struct lka_dest *d)
{
	struct session	*s;
	struct txn	*tx;
	struct sdest	*nd;

	if ((s = session_find(d->reqid)) == NULL || !(s->flags & SS_WAIT))
		return;
	if (s->flags & (SS_VRFY | SS_EXPN)) {
		vrfy_dest(s, d);
		return;
	}
	if ((tx = s->tx) == NULL || (s->state != S_RCPT &&
	    !(s->flags & SS_MILTER_RCPT)))
		return;
	if (tx->ndests >= conf->max_rcpt * 4)
		return;		/* lookup bounds expansions; belt and braces */
	/*
	 * Two RCPTs that expand to the same destination (an alias and its
	 * member, say) get one copy; lookup already merges within one RCPT.
	 * The set holds the accepted RCPTs' destinations: O(1) each, where
	 * a scan made 100 000 recipients quadratic.
	 */
	if (tx->destset != NULL && dest_key_in(tx->destset, d))
		return;
	if (tx->ndests == tx->capdests) {
		size_t ncap = tx->capdests ? tx->capdests * 2 : 4;

		if ((nd = reallocarray(tx->dests, ncap, sizeof(*nd))) == NULL)
			fatal("reallocarray");
		tx->dests = nd;
		tx->capdests = ncap;
	}
	nd = &tx->dests[tx->ndests];
	memset(nd, 0, sizeof(*nd));
	nd->rcpt = tx->rcpt_pending;
	nd->notify = tx->rp_pending.notify;
	nd->d = *d;
	if (tx->rp_pending.orcpt[0] &&
	    (nd->orcpt = strdup(tx->rp_pending.orcpt)) == NULL)
		fatal("strdup");
	tx->ndests++;
}

void
session_lookup_result(const struct lka_result *r)
{
	struct session	*s;

	if ((s = session_find(r->reqid)) == NULL || !(s->flags & SS_WAIT))
		return;
	if (s->flags & SS_MILTER_RCPT) {
		milter_rcpt_result(s, r);
		return;
	}
	session_rcpt_result(s, r);
	session_process(s);
}

/* forget whatever the pending recipient expanded to */
static void
dests_forget(struct txn *tx)
{
	size_t	i;

	for (i = tx->ndests_before; i < tx->ndests; i++)
		free(tx->dests[i].orcpt);
	tx->ndests = tx->ndests_before;
}

/* lookup's answer on a recipient a filter added */
static void
milter_rcpt_result(struct session *s, const struct lka_result *r)
{
	struct txn	*tx = s->tx;
	int		 ok = r->status == PROTO_OK && r->ndest > 0;

	if (tx == NULL)
		return;
	if (ok)
		dests_remember(tx);
	else
		dests_forget(tx);
	smtp_milter_rcpt_done(s, ok, r->reply[0] ? r->reply :
	    "temporary lookup failure");
}

/* what the filters said of a recipient lookup accepted */
static void
rcpt_milter(struct session *s, int verdict)
{
	struct txn	*tx = s->tx;

	switch (verdict) {
	case MILTER_DISCARD:
		tx->discard = 1;
		/* FALLTHROUGH */
	case MILTER_CONTINUE:
		dests_remember(tx);
		tx->nrcpt_ok++;
		session_reply(s, "250 2.1.5 Ok");
		return;
	}
	dests_forget(tx);
	smtp_milter_reply(s, "RCPT", &tx->rcpt_pending);
}

/* lookup's answer, or the cache's (inside session_process() then) */
void
session_rcpt_result(struct session *s, const struct lka_result *r)
{
	struct txn	*tx;
	size_t		 i;

	s->flags &= ~SS_WAIT;
	if (s->flags & (SS_VRFY | SS_EXPN)) {
		vrfy_result(s, r);
		return;
	}
	if ((tx = s->tx) == NULL)
		return;
	if (r->status == PROTO_OK && r->reuse_ms > 0)
		rcache_store(s, r);
	/* lookup counts what it sent; duplicates may have been merged here */
	if (r->status == PROTO_OK && r->ndest > 0) {
		if (smtp_milter_stage(s, MILTER_STAGE_RCPT, tx->rcpt_args,
		    rcpt_milter))
			return;
		dests_remember(tx);
		tx->nrcpt_ok++;
		session_reply(s, "250 2.1.5 Ok");
	} else {
		/* forget whatever this recipient expanded to */
		for (i = tx->ndests_before; i < tx->ndests; i++)
			free(tx->dests[i].orcpt);
		tx->ndests = tx->ndests_before;
		session_reject(s, "RCPT", &tx->rcpt_pending, "%s",
		    r->reply[0] ? r->reply :
		    "451 4.3.0 Temporary lookup failure");
	}
}

/* ---- the others ---- */

static void
cmd_starttls(struct session *s, char *args)
{
	if (args != NULL) {
		session_reply(s, "501 5.5.4 Syntax: STARTTLS");
		session_error(s);
		return;
	}
	if (s->flags & SS_TLS) {
		session_reply(s, "503 5.5.1 Error: TLS already active");
		session_error(s);
		return;
	}
	if (!smtp_tls_available(s)) {
		session_reply(s, "502 5.5.1 Error: STARTTLS not offered");
		session_error(s);
		return;
	}
	if (s->tx != NULL) {
		session_reply(s, "503 5.5.1 Error: STARTTLS inside a mail "
		    "transaction");
		session_error(s);
		return;
	}
	session_reply(s, "220 2.0.0 Ready to start TLS");
	/*
	 * Whatever the client pipelined after STARTTLS was sent in the
	 * clear and must not be taken as if it came through TLS
	 * (CVE-2011-0411): throw it away, read nothing more in plain text.
	 */
	evbuffer_drain(s->in, evbuffer_get_length(s->in));
	s->state = S_TLS;
	session_io_update(s);
}

/* what the filters said of a command we do not know */
static void
unknown_milter(struct session *s, int verdict)
{
	if (verdict == MILTER_CONTINUE || verdict == MILTER_DISCARD)
		session_reply(s, "500 5.5.2 Error: command not recognized");
	else
		smtp_milter_reply(s, "UNKNOWN", NULL);
	session_error(s);
}

static void
session_command(struct session *s, char *line, size_t len, int lflags)
{
	enum smtp_cmd	 cmd;
	char		*args;

	if (lflags & (LF_BARELF | LF_BARECR)) {
		session_reject_close(s, "CONNECT", "521 5.5.2 %s Bare <LF> or "
		    "<CR> received; RFC 5321 2.3.8 requires CRLF",
		    session_hostname(s));
		return;
	}
	if (lflags & LF_TOOLONG) {
		session_reply(s, "500 5.5.2 Line too long");
		session_error(s);
		return;
	}
	if (lflags & LF_NUL) {
		session_reply(s, "500 5.5.2 NUL in command");
		session_error(s);
		return;
	}
	if (log_getverbose() > 1) {
		char clean[SMTP_CMD_MAX * 4];

		log_debug("%08x: <<< %s", s->id, strncasecmp(line, "AUTH ", 5)
		    == 0 ? "AUTH ..." : log_sanitize(line, clean,
		    sizeof(clean)));
	}
	cmd = smtp_parse_command(line, &args);
	/* RFC 4954 4: only AUTH may carry a long initial response */
	if (len + 2 > SMTP_CMD_MAX && cmd != CMD_AUTH) {
		session_reply(s, "500 5.5.2 Line too long");
		session_error(s);
		return;
	}
	switch (cmd) {
	case CMD_HELO:
		cmd_helo(s, "HELO", args, 0);
		break;
	case CMD_EHLO:
		cmd_helo(s, "EHLO", args, 1);
		break;
	case CMD_MAIL:
		cmd_mail(s, args);
		break;
	case CMD_RCPT:
		cmd_rcpt(s, args);
		break;
	case CMD_DATA:
		cmd_data(s, args);
		break;
	case CMD_BDAT:
		cmd_bdat(s, args);
		break;
	case CMD_RSET:
		if (args != NULL) {
			session_reply(s, "501 5.5.4 Syntax: RSET");
			session_error(s);
			break;
		}
		session_reset(s);
		session_reply(s, "250 2.0.0 Ok");
		break;
	case CMD_NOOP:
		/* RFC 5321 4.1.1.9: a parameter is allowed and ignored */
		session_reply(s, "250 2.0.0 Ok");
		break;
	case CMD_QUIT:
		if (args != NULL) {
			session_reply(s, "501 5.5.4 Syntax: QUIT");
			session_error(s);
			break;
		}
		session_reset(s);
		session_reply_close(s, "221 2.0.0 %s Bye",
		    session_hostname(s));
		break;
	case CMD_VRFY:
		cmd_vrfy(s, args, 0);
		break;
	case CMD_EXPN:
		cmd_vrfy(s, args, 1);
		break;
	case CMD_HELP:
		cmd_help(s);
		break;
	case CMD_STARTTLS:
		cmd_starttls(s, args);
		break;
	case CMD_AUTH:
		smtp_auth_command(s, args);
		break;
	case CMD_ETRN:
		cmd_etrn(s, args);
		break;
	case CMD_OBSOLETE:
		session_reply(s, "502 5.5.1 Command not implemented");
		session_error(s);
		break;
	default:
		if (smtp_milter_stage(s, MILTER_STAGE_UNKNOWN, line,
		    unknown_milter))
			break;
		session_reply(s, "500 5.5.2 Error: command not recognized");
		session_error(s);
		break;
	}
}

void
session_process(struct session *s)
{
	size_t		 len, max, lines = 0;
	int		 lflags;

	while (!(s->flags & (SS_WAIT | SS_CLOSING | SS_OUTFULL)) &&
	    s->state != S_TLS) {
		/* the DNS lists' verdict first (smtp_checks.c) */
		if (smtp_checks_gate(s))
			break;
		if (smtp_stopping() && s->state <= S_HELO) {
			session_reply_close(s, "421 4.3.2 %s Service shutting "
			    "down", session_hostname(s));
			break;
		}
		if (evbuffer_get_length(s->out) > OUTPUT_MAX) {
			/* the client does not read: stop reading it */
			s->flags |= SS_OUTFULL;
			break;
		}
		if (s->state == S_BDAT) {
			if (!bdat_consume(s))
				break;
			continue;
		}
		if (s->state == S_DATA)
			max = conf->max_line + 2;
		else
			max = SMTP_AUTH_LINE_MAX + 2;
		if (!session_getline(s, max, &len, &lflags))
			break;
		lines++;
		if (s->state == S_DATA)
			data_line(s, linebuf, len, lflags);
		else if (s->state == S_AUTH)
			smtp_auth_line(s, lflags ? NULL : linebuf);
		else
			session_command(s, linebuf, len, lflags);
	}
	session_deadline_update(s, lines);
	session_io_update(s);
}
