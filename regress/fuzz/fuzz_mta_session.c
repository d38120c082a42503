/*
 * fuzz_mta_session.c -- libFuzzer harness for the mta's SMTP client
 * (mta/mta_session.c with mta_io.c, mta_7bit.c and mta.c's routes and
 * tasks) against a hostile server: the greeting, EHLO capabilities,
 * pipelined and multi-line replies, replies to the end of data, a
 * server that hangs up anywhere.
 *
 * The seam is mta_fuzz_start() (mta.h, compiled only under
 * -DPOSTHASTE_FUZZ): mta_main() without the privilege drop, the sandbox
 * and its loop.  The harness plays the queue (one or two messages, each
 * an IMSG_MTA_DELIVER per recipient with a memfd spool file) and lookup
 * (the MX hosts: one or two names for a TCP listener on 127.0.0.1), and
 * turns the event loop a bounded number of times.  Every connection the
 * mta makes is accepted and served a script from the input: the real
 * event-loop code runs on real sockets, and the peer is on loopback only.
 *
 * Input: byte 0 is a set of flags (the action's TLS mode, DSN
 * parameters, BODY=8BITMIME, SMTPUTF8, a second message, two MX hosts,
 * the null sender); byte 1 picks the message (plain with dot lines,
 * 8-bit that converts to 7-bit, 8-bit that does not, 260 KB for one
 * recipient or a single byte for more), the number of recipients, the
 * server's manner and the size of the pieces its bytes are written in.
 * The rest is what the server says, one script per connection, the
 * scripts separated by NUL bytes.  The server is either eager (the
 * script goes out at once, whatever the client says) or in lockstep, as
 * a real one: the greeting, then one reply (the lines up to one whose
 * fourth byte is not '-') per command line it reads, none for the lines
 * of the message after a 354.
 *
 * Beyond "does not crash": each recipient gets exactly one result, with
 * a valid status, a text that starts with a status code of the same
 * class, and a text, relay and reply of printable ASCII only (nothing
 * the server sent reaches them as it was); the client sends only the
 * commands we know, in lines of at most 512 octets; a message the
 * lockstep server received in full is the message (dot-unstuffed, LF
 * line ends), or, sent with BODY=8BITMIME to a server that did not get
 * that parameter, 7-bit; and once the server has hung up, the mta holds
 * no route, session or task (and LeakSanitizer sees nothing left).
 */
#include <sys/mman.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz.h"

#include "config.h"
#include "envelope.h"
#include "imsg.h"
#include "log.h"
#include "mproc.h"
#include "mta.h"
#include "proto.h"
#include "proc.h"
#include "wirescan.h"

#define LOOP_MAX	3000	/* event loop turns, besides the writing */
#define CONN_MAX	16	/* connections served a script */
#define SCRIPT_MAX	8	/* scripts in one input */
#define SENT_MAX	(1024 * 1024)	/* what a connection keeps of the client */
#define RCPT_MAX	4
#define BIG_LINES	270	/* message 3: some 260 KB, in long lines */

static struct imsgbuf	 queue_ib, lookup_ib;	/* the far ends */
static struct sockaddr_in listen_sin;
static int		 lfd = -1;
static struct action	*actions[4];

/* the messages, as spooled (LF line ends) */
static const char msg_plain[] =
    "From: <alice@example.org>\nSubject: test\n\nHello.\n.\n..two\n"
    ".x\n\nlast line without LF";
static const char msg_8bit[] =
    "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\nSubject: test\n\n"
    "Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbb""l\xc3\xa9""e\n.dot\n=3D\n";
static const char msg_refused[] =
    "Subject: h\xc3\xa9llo\nMIME-Version: 1.0\nContent-Type: text/plain\n"
    "Content-Transfer-Encoding: base64\n\n\xe9\n";
static char	*msg_big;
static size_t	 msg_big_len;
static uint64_t	 msg_big_wire;

/* one message handed to the mta */
struct fake_msg {
	const char	*body;
	size_t		 len;
	uint32_t	 flags;
	size_t		 nrcpts;
	int		 results[RCPT_MAX];
};

/* the server's side of one connection */
struct conn {
	int		 fd;
	const uint8_t	*script;
	size_t		 len, off;	/* written so far */
	size_t		 avail;		/* lockstep: may write up to here */
	int		 shut, eof;
	int		 binary;	/* after STARTTLS's 220: no lines */
	int		 in_data;	/* between 354 and "." */
	int		 body8;		/* the MAIL had BODY=8BITMIME */
	char		*sent;		/* the client's bytes, line by line */
	size_t		 slen, sparsed;
	char		*body;		/* the message as received */
	size_t		 blen;
};

static struct conn	 conns[CONN_MAX];
static size_t		 nconns;

static void
init(void)
{
	int		 qu[2], lk[2], on = 1, i;
	socklen_t	 len = sizeof(listen_sin);
	struct wirescan	 ws;
	char		*p;

	signal(SIGPIPE, SIG_IGN);
	log_init(0, 0);
	if ((conf = config_default()) == NULL)
		abort();
	snprintf(conf->hostname, sizeof(conf->hostname), "mx.example.org");
	/* one session at a time: a second message reuses it (RSET) */
	conf->mta_max_per_dest = 1;
	for (i = 0; i < 4; i++) {
		struct action *a;

		if ((a = calloc(1, sizeof(*a))) == NULL)
			abort();
		snprintf(a->name, sizeof(a->name), "relay%d", i);
		a->type = ACTION_RELAY;
		a->relay_tls = i == 1 ? RELAY_TLS_NO : i == 2 ?
		    RELAY_TLS_REQUIRE : RELAY_TLS_OPPORTUNISTIC;
		if (i == 3)
			snprintf(a->helo, sizeof(a->helo), "out.example.org");
		TAILQ_INSERT_TAIL(&conf->actions, a, entry);
		actions[i] = a;
	}
	if ((ev_base = event_base_new()) == NULL)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, qu) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, lk) == -1)
		abort();
	imsgbuf_init(&queue_ib, qu[1]);
	imsgbuf_init(&lookup_ib, lk[1]);

	memset(&listen_sin, 0, sizeof(listen_sin));
	listen_sin.sin_family = AF_INET;
	listen_sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    bind(lfd, (struct sockaddr *)&listen_sin, sizeof(listen_sin)) ==
	    -1 || getsockname(lfd, (struct sockaddr *)&listen_sin, &len) ==
	    -1 || listen(lfd, 64) == -1)
		abort();

	/*
	 * Message 3: long enough for the body pump to refill.  The smtp
	 * worker measured it (EF_MEASURED), as it does every message it
	 * spools: the mta does not read it once more to know its size.
	 */
	msg_big_len = 14 + (size_t)BIG_LINES * 991;
	if ((msg_big = malloc(msg_big_len + 1)) == NULL)
		abort();
	p = msg_big;
	p += sprintf(p, "Subject: big\n\n");
	for (i = 0; i < BIG_LINES; i++)
		p += sprintf(p, "%c%0989d\n", i % 7 == 0 ? '.' : 'x', i);
	msg_big_len = (size_t)(p - msg_big);
	wirescan_init(&ws);
	wirescan_add(&ws, msg_big, msg_big_len);
	msg_big_wire = wirescan_size(&ws);
	for (i = 0; i < CONN_MAX; i++) {
		conns[i].fd = -1;
		if ((conns[i].sent = malloc(SENT_MAX)) == NULL ||
		    (conns[i].body = malloc(SENT_MAX)) == NULL)
			abort();
	}
	mta_fuzz_start(qu[0], lk[0]);
}

/* ---- the queue: hand out the messages, collect the results ---- */

static struct fake_msg	 msgs[2];
static size_t		 nmsgs, nresults, nexpected;

static void
queue_deliver(uint32_t msgid, const struct fake_msg *fm, int action,
    int dsn, int utf8, int nullsender)
{
	struct envelope	 evp;
	size_t		 i;
	int		 fd, dupfd;

	if ((fd = memfd_create("spool", MFD_CLOEXEC)) == -1)
		abort();
	if (write(fd, fm->body, fm->len) != (ssize_t)fm->len)
		abort();
	for (i = 0; i < fm->nrcpts; i++) {
		memset(&evp, 0, sizeof(evp));
		evp.id = ((uint64_t)msgid << 32) | (uint32_t)(i + 1);
		evp.flags = fm->flags;
		evp.dest_type = DEST_REMOTE;
		if (!nullsender) {
			snprintf(evp.sender.user, sizeof(evp.sender.user),
			    "alice");
			snprintf(evp.sender.domain,
			    sizeof(evp.sender.domain), "example.org");
		}
		if (utf8 && i == 1)
			snprintf(evp.dest.user, sizeof(evp.dest.user),
			    "b\xc3\xb8""b");
		else
			snprintf(evp.dest.user, sizeof(evp.dest.user), "bob%zu",
			    i);
		snprintf(evp.dest.domain, sizeof(evp.dest.domain),
		    "example.net");
		evp.rcpt = evp.dest;
		snprintf(evp.action, sizeof(evp.action), "%s",
		    actions[action]->name);
		if (dsn) {
			snprintf(evp.envid, sizeof(evp.envid), "Q%u+2Bx",
			    msgid);
			/* a valid ORCPT, a broken one, none */
			if (i == 0)
				snprintf(evp.orcpt, sizeof(evp.orcpt),
				    "rfc822;bob0@example.net");
			else if (i == 1)
				snprintf(evp.orcpt, sizeof(evp.orcpt),
				    "rfc822;b o b");
			evp.flags |= i == 2 ? EF_NOTIFY_NEVER :
			    i == 3 ? EF_NOTIFY_DELAY :
			    EF_NOTIFY_SUCCESS | EF_NOTIFY_FAILURE;
		}
		evp.body_size = (int64_t)fm->len;
		if (fm->body == msg_big) {
			evp.flags |= EF_MEASURED;
			evp.wire_size = (int64_t)msg_big_wire;
		}
		if ((dupfd = dup(fd)) == -1)
			abort();
		/* imsg closes dupfd once it is sent */
		if (imsg_compose(&queue_ib, IMSG_MTA_DELIVER, 0, dupfd, &evp,
		    sizeof(evp)) == -1)
			abort();
	}
	close(fd);
}

static void
check_text(const char *s, size_t size)
{
	size_t	i;

	CHECK(memchr(s, '\0', size) != NULL);
	for (i = 0; s[i]; i++)
		CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f);
}

static void
queue_result(struct imsg *m)
{
	struct delivery_result	 r;
	uint32_t		 msgid;
	size_t			 rcpt;
	char			 want;

	CHECK(m->hdr.type == IMSG_MTA_RESULT);
	CHECK(m->len == sizeof(r) && m->fd == -1);
	memcpy(&r, m->data, sizeof(r));
	CHECK(proto_valid_delivery_result(&r) == 0);
	msgid = (uint32_t)(r.evpid >> 32);
	rcpt = (size_t)(uint32_t)r.evpid;
	if (getenv("FUZZ_SESSION_SHOW") != NULL)
		fprintf(stderr, "result %u/%zu: %u %.*s [%.*s]\n", msgid, rcpt,
		    r.status, (int)sizeof(r.text), r.text,
		    (int)sizeof(r.reply), r.reply);
	CHECK(msgid >= 1 && msgid <= nmsgs);
	CHECK(rcpt >= 1 && rcpt <= msgs[msgid - 1].nrcpts);
	/* exactly one result per recipient */
	CHECK(msgs[msgid - 1].results[rcpt - 1] == 0);
	msgs[msgid - 1].results[rcpt - 1] = 1;
	nresults++;
	check_text(r.text, sizeof(r.text));
	check_text(r.relay, sizeof(r.relay));
	check_text(r.reply, sizeof(r.reply));
	CHECK(r.status == PROTO_OK || r.status == PROTO_TEMPFAIL ||
	    r.status == PROTO_PERMFAIL);
	want = r.status == PROTO_OK ? '2' : r.status == PROTO_TEMPFAIL ?
	    '4' : '5';
	CHECK(r.text[0] == want && r.text[1] == '.');
	CHECK(r.status == PROTO_OK || r.dsn == 0);
}

/* ---- lookup: every domain has one or two MX hosts, all of them us ---- */

static int	two_hosts;

static void
lookup_mx(struct imsg *m)
{
	struct lka_mx_req	req;
	struct lka_mx_host	h;
	struct lka_result	r;
	int			i;

	CHECK(m->hdr.type == IMSG_LKA_MX);
	CHECK(m->len == sizeof(req) && m->fd == -1);
	memcpy(&req, m->data, sizeof(req));
	CHECK(strcmp(req.domain, "example.net") == 0);
	for (i = 0; i < 1 + two_hosts; i++) {
		memset(&h, 0, sizeof(h));
		h.reqid = req.reqid;
		h.preference = 10 * (i + 1);
		snprintf(h.host, sizeof(h.host), "mx%d.example.net", i + 1);
		memcpy(&h.addr, &listen_sin, sizeof(listen_sin));
		if (imsg_compose(&lookup_ib, IMSG_LKA_MX_HOST, 0, -1, &h,
		    sizeof(h)) == -1)
			abort();
	}
	memset(&r, 0, sizeof(r));
	r.reqid = req.reqid;
	r.status = PROTO_OK;
	r.ndest = (uint32_t)(1 + two_hosts);
	if (imsg_compose(&lookup_ib, IMSG_LKA_MX_RESULT, 0, -1, &r,
	    sizeof(r)) == -1)
		abort();
}

/* answer what the mta asked; 1 when there was anything */
static int
serve(struct imsgbuf *ib, void (*one)(struct imsg *))
{
	int	any = fuzz_serve(ib, one);

	if (imsg_flush_nb(ib) == -1 && errno != EAGAIN)
		abort();
	return any;
}

/* ---- the server ---- */

static const uint8_t	*scripts[SCRIPT_MAX];
static size_t		 script_lens[SCRIPT_MAX], nscripts;
static size_t		 chunk;
static int		 lockstep;

/* the end of the reply that starts at off: its last line included */
static size_t
next_reply(const struct conn *c, size_t off)
{
	const uint8_t	*p, *end, *nl;

	if (c->len == 0)
		return 0;
	p = c->script + off;
	end = c->script + c->len;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return c->len;
		if (nl - p < 4 || p[3] != '-')
			return (size_t)(nl + 1 - c->script);
		p = nl + 1;
	}
	return c->len;
}

static int
conn_accept(void)
{
	struct conn	*c;
	int		 fd, any = 0;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1) {
		if (nconns == CONN_MAX) {
			close(fd);
			continue;
		}
		c = &conns[nconns];
		c->fd = fd;
		c->script = nconns < nscripts ? scripts[nconns] : NULL;
		c->len = nconns < nscripts ? script_lens[nconns] : 0;
		c->off = c->slen = c->sparsed = c->blen = 0;
		c->shut = c->eof = c->binary = c->in_data = c->body8 = 0;
		/* the greeting goes out at once; the rest as asked */
		c->avail = lockstep ? next_reply(c, 0) : c->len;
		nconns++;
		any = 1;
	}
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
	return any;
}

static int
known_command(const char *l, size_t n)
{
	static const char *cmds[] = { "EHLO ", "HELO ", "STARTTLS", "RSET",
	    "MAIL FROM:<", "RCPT TO:<", "DATA", "QUIT" };
	size_t	i, k;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		k = strlen(cmds[i]);
		if (n >= k && memcmp(l, cmds[i], k) == 0 &&
		    (cmds[i][k - 1] == ' ' || cmds[i][k - 1] == '<' || n == k))
			return 1;
	}
	return 0;
}

/* a line of the message: dot-unstuffed, LF line end */
static void
data_line(struct conn *c, const char *l, size_t n)
{
	if (n > 0 && l[0] == '.') {
		l++;
		n--;
	}
	if (c->blen + n + 1 > SENT_MAX)
		return;
	memcpy(c->body + c->blen, l, n);
	c->blen += n;
	c->body[c->blen++] = '\n';
}

/* the message the lockstep server received after a 354, at its "." */
static void
check_body(const struct conn *c)
{
	const struct fake_msg	*fm;
	size_t			 i, k;
	int			 ok = 0;

	if (c->blen == 0)
		return;		/* no recipient took it: "." at once */
	for (k = 0; k < nmsgs; k++) {
		fm = &msgs[k];
		if ((fm->flags & EF_8BITMIME) && !c->body8)
			continue;	/* converted: checked below */
		if ((c->blen == fm->len || (c->blen == fm->len + 1 &&
		    fm->body[fm->len - 1] != '\n')) &&
		    memcmp(c->body, fm->body, fm->len) == 0)
			ok = 1;
	}
	if (ok)
		return;
	/* what was not sent as it is was made 7-bit */
	for (k = 0; k < nmsgs; k++)
		if ((msgs[k].flags & EF_8BITMIME) && !c->body8)
			break;
	CHECK(k < nmsgs);
	for (i = 0; i < c->blen; i++)
		CHECK((unsigned char)c->body[i] < 0x80);
}

/* lockstep: what the client said lets the server say its next reply */
static void
conn_parse(struct conn *c)
{
	char	*l, *nl;
	size_t	 n;

	while (!c->binary && c->sparsed < c->slen) {
		l = c->sent + c->sparsed;
		nl = memchr(l, '\n', c->slen - c->sparsed);
		if (nl == NULL)
			return;
		c->sparsed = (size_t)(nl + 1 - c->sent);
		CHECK(nl > l && nl[-1] == '\r');	/* CRLF, always */
		n = (size_t)(nl - 1 - l);
		if (c->in_data) {
			if (n == 1 && l[0] == '.') {
				c->in_data = 0;
				check_body(c);
			} else {
				data_line(c, l, n);
				continue;
			}
		} else {
			CHECK(n + 2 <= 512);
			CHECK(known_command(l, n));
			if (n >= 10 && memcmp(l, "MAIL FROM:", 10) == 0)
				c->body8 = memmem(l, n, " BODY=8BITMIME",
				    14) != NULL;
		}
		if (!lockstep) {
			/*
			 * Eager: whatever the reply, TLS may follow STARTTLS
			 * and the message DATA; the lines are not followed.
			 */
			if ((n == 8 && memcmp(l, "STARTTLS", 8) == 0) ||
			    (n == 4 && memcmp(l, "DATA", 4) == 0))
				c->binary = 1;
			continue;
		}
		/* the reply to this line */
		if (c->avail < c->len) {
			size_t	from = c->avail;
			int	r354, r220;

			c->avail = next_reply(c, from);
			r354 = c->len - from >= 3 &&
			    memcmp(c->script + from, "354", 3) == 0;
			r220 = c->len - from >= 3 &&
			    memcmp(c->script + from, "220", 3) == 0;
			if (n == 4 && memcmp(l, "DATA", 4) == 0 && r354) {
				c->in_data = 1;
				c->blen = 0;
			}
			if (n == 8 && memcmp(l, "STARTTLS", 8) == 0 && r220)
				c->binary = 1;
		}
	}
}

static int
conn_io(struct conn *c, int readable)
{
	ssize_t	n;
	size_t	want;
	int	progress = 0;
	char	buf[16384];

	if (c->fd == -1)
		return 0;
	if (!c->shut && c->off < c->avail) {
		want = c->avail - c->off;
		if (chunk && want > chunk)
			want = chunk;
		n = send(c->fd, c->script + c->off, want, MSG_NOSIGNAL);
		if (n > 0) {
			c->off += (size_t)n;
			progress = 1;
		} else if (n == -1 && errno != EAGAIN && errno != EINTR)
			c->off = c->avail = c->len;	/* the client is gone */
	}
	while (readable && !c->eof) {
		n = read(c->fd, buf, sizeof(buf));
		if (n == 0 || (n == -1 && errno != EAGAIN &&
		    errno != EWOULDBLOCK && errno != EINTR)) {
			c->eof = 1;
			progress = 1;
			break;
		}
		if (n == -1)
			break;
		progress = 1;
		if (c->slen + (size_t)n <= SENT_MAX) {
			memcpy(c->sent + c->slen, buf, (size_t)n);
			c->slen += (size_t)n;
		}
	}
	conn_parse(c);
	return progress;
}

/* the server has said all it will: EOF to the client */
static int
conn_shut(struct conn *c)
{
	if (c->fd == -1 || c->shut || c->off < c->avail)
		return 0;
	shutdown(c->fd, SHUT_WR);
	c->shut = 1;
	return 1;
}

/* an RST, not a FIN: no TIME_WAIT left by thousands of runs */
static void
conn_close(struct conn *c)
{
	struct linger	lg = { 1, 0 };

	if (c->fd == -1)
		return;
	(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);
	c->fd = -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t	 chunks[8] = { 0, 1, 2, 3, 5, 8, 13, 64 };
	static int		 inited;
	const uint8_t		*p, *end, *nul;
	uint8_t			 f, g;
	size_t			 i, k, turns;
	struct pollfd		 pfd[3 + CONN_MAX];
	size_t			 npfd;
	int			 turn, idle = 0, quit = 0, action;

	if (!inited) {
		init();
		inited = 1;
	}
	if (size < 2 || size > 64 * 1024)
		return 0;
	/* a host refused by the input before is not backed off for this one */
	mta_fuzz_forget_backoffs();
	f = data[0];
	g = data[1];
	action = f & 3;
	two_hosts = (f >> 6) & 1;
	lockstep = !(g & 0x10);
	chunk = chunks[g >> 5];

	/* the scripts, one per connection */
	nscripts = 0;
	for (p = data + 2, end = data + size; nscripts < SCRIPT_MAX; ) {
		nul = memchr(p, '\0', (size_t)(end - p));
		scripts[nscripts] = p;
		script_lens[nscripts++] = (size_t)((nul ? nul : end) - p);
		if (nul == NULL)
			break;
		p = nul + 1;
	}

	/* the messages */
	nmsgs = (f & 0x20) ? 2 : 1;
	nresults = nexpected = 0;
	for (k = 0; k < nmsgs; k++) {
		struct fake_msg *fm = &msgs[k];

		memset(fm, 0, sizeof(*fm));
		switch (k == 0 ? g & 3 : 0) {
		case 0:
			fm->body = msg_plain;
			fm->len = sizeof(msg_plain) - 1;
			break;
		case 1:
			fm->body = msg_8bit;
			fm->len = sizeof(msg_8bit) - 1;
			break;
		case 2:
			fm->body = msg_refused;
			fm->len = sizeof(msg_refused) - 1;
			break;
		default:
			/* the costly one only with one recipient */
			if ((g & 0x0c) == 0) {
				fm->body = msg_big;
				fm->len = msg_big_len;
			} else {
				fm->body = "x";
				fm->len = 1;
			}
			break;
		}
		fm->nrcpts = k == 0 ? 1 + ((g >> 2) & 3) : 1;
		if (f & 0x04)
			fm->flags |= EF_DSN_RET_HDRS;
		if (f & 0x08)
			fm->flags |= EF_8BITMIME;
		if (f & 0x10)
			fm->flags |= EF_SMTPUTF8;
		nexpected += fm->nrcpts;
		queue_deliver((uint32_t)(k + 1), fm, action, (f & 0x04) != 0,
		    (f & 0x10) != 0, (f & 0x80) != 0);
	}
	if (imsg_flush(&queue_ib) == -1)
		abort();

	nconns = 0;
	turns = LOOP_MAX + (chunk ? (size - 2) / chunk : 0);
	for (turn = 0; (size_t)turn < turns; turn++) {
		int	progress = 0;

		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		/* one poll() says which of our ends have anything */
		npfd = 3 + nconns;
		pfd[0].fd = lookup_ib.fd;
		pfd[1].fd = queue_ib.fd;
		pfd[2].fd = lfd;
		for (i = 0; i < nconns; i++)
			pfd[3 + i].fd = conns[i].eof ? -1 : conns[i].fd;
		for (i = 0; i < npfd; i++)
			pfd[i].events = POLLIN;
		/* libFuzzer's -timeout alarm may interrupt it */
		if (poll(pfd, npfd, 0) == -1) {
			if (errno != EINTR)
				abort();
			for (i = 0; i < npfd; i++)
				pfd[i].revents = 0;
			progress = 1;	/* not idle: ask again */
		}
		if (pfd[0].revents)
			progress |= serve(&lookup_ib, lookup_mx);
		if (pfd[1].revents)
			progress |= serve(&queue_ib, queue_result);
		if (pfd[2].revents)
			progress |= conn_accept();
		for (i = 0; i < nconns; i++)
			progress |= conn_io(&conns[i], i + 3 >= npfd ||
			    pfd[3 + i].revents != 0);
		if (progress) {
			idle = 0;
			continue;
		}
		/*
		 * One turn of the loop runs all the mta can do (a
		 * non-blocking event_base_loop() goes on while callbacks
		 * are active), and loopback delivers at once: a turn in
		 * which nothing moved on either side means all wait.
		 */
		idle++;
		/* the results are in: idle sessions QUIT, as on a reload */
		if (!quit && nresults == nexpected) {
			mta_fuzz_quit_idle();
			quit = 1;
			idle = 0;
			continue;
		}
		/* a server that said all it will hangs up */
		for (k = 0, i = 0; i < nconns; i++)
			k += (size_t)conn_shut(&conns[i]);
		if (k > 0) {
			idle = 0;
			continue;
		}
		if (mta_fuzz_nroutes() == 0 || idle > 5)
			break;
	}
	for (i = 0; i < nconns; i++)
		conn_close(&conns[i]);
	/* FUZZ_SESSION_SHOW=1 obj-fuzz/fuzz_mta_session FILE: the dialog */
	if (getenv("FUZZ_SESSION_SHOW") != NULL)
		for (i = 0; i < nconns; i++)
			fprintf(stderr, "--- connection %zu, client said:\n"
			    "%.*s\n", i, (int)(conns[i].slen > 4096 ? 4096 :
			    conns[i].slen), conns[i].sent);
	/* every recipient answered, and nothing left behind */
	CHECK(mta_fuzz_nroutes() == 0);
	CHECK(nresults == nexpected);
	return 0;
}
