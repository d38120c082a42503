/*
 * fuzz_smtp_session.c -- libFuzzer harness for a whole SMTP server
 * session: smtp_session.c, smtp_io.c, smtp_data.c and smtp_auth.c as an
 * smtp worker runs them, fed a client's bytes over a real socket.
 *
 * The seam is the worker's own: session_new() (or session_new_local())
 * on one end of a socketpair, the worker's event loop turned a bounded
 * number of times with EVLOOP_NONBLOCK, and the lookup and queue peers
 * faked here on the far ends of the worker's imsg channels (their
 * answers go in through the functions smtp.c's dispatchers call).  The
 * fake lookup accepts any recipient but bad*, tmp* (tempfail) and list*
 * (two destinations); AUTH accepts good/secret; the inbound checks
 * (DNS lists, SPF, DKIM/DMARC, smtp_checks.c) get answers that vary
 * with the session.  The fake queue hands out memfd spool files and
 * checks each commit.
 *
 * Input: byte 0 picks the listener (MX, submission with AUTH, AUTH
 * required, local submission) and whether rDNS answers; byte 1 is the
 * size of the pieces the client's bytes are written in (0: at once);
 * the rest is what the client sends, pipelining and all.  With byte 0's
 * bit 2, the session has a chain of mail filters (smtp_milter*.c) played
 * by the harness from a script in the input (see "the fake parent and
 * the fake filters" below): the parent's connect is faked, each packet
 * the worker sends a filter is checked, the filter's answers are
 * hostile at will.
 *
 * Beyond "does not crash", checked: every reply line is "DDD" then a
 * space or a hyphen, ends in CRLF and fits 512 octets (RFC 5321
 * 4.5.3.1.5); nothing follows a closing 221/421/521; a commit carries
 * as many envelopes as were sent, each valid, and a spool file as long
 * as the worker says, with LF line ends only (no CR survives: a bare CR
 * or LF in the data is refused), then the header fields it added, as
 * the queue would accept them; every "250 ... queued as" was a commit;
 * and the session is freed once the client is gone.
 */
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz.h"
#include "spool_msg.h"

#include "config.h"
#include "envelope.h"
#include "imsg.h"
#include "log.h"
#include "milter.h"
#include "mproc.h"
#include "proto.h"
#include "sesscount.h"
#include "proc.h"
#include "smtp_milter.h"
#include "smtp_session.h"

#define LOOP_MAX	4000	/* event loop turns per input */
#define REPLY_MAX	(1024 * 1024)

static struct imsgbuf	lookup_ib, queue_ib;	/* the far ends */
static struct listener	listeners[3];
static uint32_t		next_sid;		/* as session_alloc() counts */

/* the queue's side of one message */
struct fake_msg {
	uint32_t	msgid;
	int		fd;		/* our dup of the spool file */
	uint32_t	nenvelopes;
};
#define FAKE_MSG_MAX	64
static struct fake_msg	msgs[FAKE_MSG_MAX];
static uint32_t		next_msgid;
static size_t		ncommitted;
static uint32_t		committed[FAKE_MSG_MAX];	/* this input's */

static void
noop_handler(struct mproc *p, struct imsg *m)
{
	(void)p;
	(void)m;
	abort();	/* the worker's ends are only written to here */
}

static int
init(void)
{
	int	lk[2], qu[2], i;

	/* lines go to the (unread) channel to a parent: quiet, cheap */
	/* FUZZ_SESSION_LOG=1: the worker's lines on stderr (debugging) */
	if (getenv("FUZZ_SESSION_LOG") != NULL)
		log_init(1, 2);
	else
		log_init(0, 0);
	if ((conf = config_default()) == NULL)
		abort();
	snprintf(conf->hostname, sizeof(conf->hostname), "mx.example.org");
	conf->vrfy = 1;
	conf->expn = 1;
	conf->max_message_size = 64 * 1024;
	conf->max_rcpt = 20;
	sesscount_init();
	if ((ev_base = event_base_new()) == NULL)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, lk) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, qu) == -1)
		abort();
	mproc_init(&smtp_worker.lookup, lk[0], "lookup", noop_handler, NULL);
	mproc_init(&smtp_worker.queue, qu[0], "queue", noop_handler, NULL);
	imsgbuf_init(&lookup_ib, lk[1]);
	imsgbuf_init(&queue_ib, qu[1]);
	for (i = 0; i < 3; i++) {
		struct listener *l = &listeners[i];

		snprintf(l->ifname, sizeof(l->ifname), "lo");
		l->port = i == 0 ? 25 : 587;
		l->tls = LISTEN_TLS_NONE;
		l->auth = i == 0 ? LISTEN_AUTH_NONE : i == 1 ?
		    LISTEN_AUTH_OPTIONAL : LISTEN_AUTH_REQUIRE;
		l->auth_plain_ok = i != 0;
		l->submission = i != 0;
	}
	session_init();
	return 0;
}

/* ---- the fake parent and the fake filters ---- */

/*
 * Milter inputs (byte 0 bit 2 set): byte 2 is the chain (bit 0: two
 * filters, bits 1-2 and 3-4: their on-error, bits 5 and 6: the parent
 * cannot connect the first / second, bit 7: "reuse"), bytes 3-4 the
 * length of the filters' script (network order), then the script, then
 * the client's bytes.  The filters read the one script, in the order
 * they are asked.  With reuse, a connection the worker pooled (QUIT_NC)
 * stays open across inputs, and a later input's session may take it.
 */
#define FILTER_MAX	2
#define FSLOT_MAX	8	/* filter ends: this input's and pooled ones */
#define FPOOL_KEEP	4	/* kept for the next inputs, at most */
#define FILTER_INMAX	(2 * (MILTER_PACKET_MAX + 4))

struct ffilter {
	int		 fd;		/* our end, -1: none or closed */
	uint8_t		*in;
	size_t		 inlen;
	uint8_t		*out;		/* not yet written */
	size_t		 outlen, outcap;
	int		 optneg;	/* OPTNEG received */
	uint32_t	 protocol;	/* what we answered (if valid) */
	int		 quit;		/* QUIT or QUIT_NC received */
	int		 quit_nc;	/* QUIT_NC: the worker keeps it */
	int		 pooled;	/* kept from an input before, unused */
};

static struct milter_conf	mconfs[FILTER_MAX];
static struct ffilter		filters[FSLOT_MAX];
static int			milters_on, nfilters, fail_connect[FILTER_MAX];
static int			reuse_on;
static const uint8_t		*script;
static size_t			 script_len, script_off;
static struct imsgbuf		 parent_ib;

static int
sb(void)
{
	if (script_off >= script_len)
		return -1;
	return script[script_off++];
}

static void
f_put(struct ffilter *f, const void *p, size_t n)
{
	if (f->outlen + n > f->outcap) {
		size_t	 cap = (f->outlen + n) * 2;
		uint8_t	*o = realloc(f->out, cap);

		if (o == NULL)
			abort();
		f->out = o;
		f->outcap = cap;
	}
	memcpy(f->out + f->outlen, p, n);
	f->outlen += n;
}

/* one reply packet: cmd, then the pieces (strings with their NUL) */
static void
f_reply(struct ffilter *f, char cmd, const void *data, size_t len)
{
	uint8_t	hdr[5];
	uint32_t n = htonl((uint32_t)len + 1);

	memcpy(hdr, &n, 4);
	hdr[4] = (uint8_t)cmd;
	f_put(f, hdr, 5);
	if (len > 0)
		f_put(f, data, len);
}

/* a piece of text: from a list (the usual and the odd), or raw */
static size_t
s_text(const char *const *dict, size_t ndict, char *buf, size_t size)
{
	int	b = sb(), c;
	size_t	n = 0, want;

	if (b < 0) {
		buf[0] = '\0';
		return 0;
	}
	if (b < 0xc0) {
		snprintf(buf, size, "%s", dict[(size_t)b % ndict]);
		return strlen(buf);
	}
	want = (size_t)(b & 0x3f);
	while (n < want && n + 1 < size && (c = sb()) >= 0)
		buf[n++] = (char)c;
	buf[n] = '\0';
	return n;	/* may hold a NUL: the packet is cut there */
}

static const char *const d_hname[] = {
	"Subject", "X-Milter", "Received", "From", "To", "Message-Id",
	"Date", "x", "Bad Name", "", "X-Spam:Flag", "\xc3\xa9t\xc3\xa9",
};
static const char *const d_hvalue[] = {
	"value", " spaced", "folded\n\tline", "\ttab", "", "x\r\n y",
	"bad\nline", "cr\rin", "\xc3\xa9t\xc3\xa9", " ", "a\n \n b",
	"ends in lf\n",
};
static const char *const d_addr[] = {
	"<u@example.org>", "list@example.org", "<bad@example.org>",
	"tmp@example.org", "<>", "noat", "<u@[127.0.0.1]>",
	"<\"q s\"@example.org>", "u@example.org", "<a@b@c>", "",
	"<u0@example.org>", "<postmaster>",
};
static const char *const d_args[] = {
	"NOTIFY=NEVER", "ORCPT=rfc822;x@y", "SIZE=10", "RET=HDRS ENVID=abc",
	"BODY=8BITMIME", "FOO=bar", "SMTPUTF8", "", "NOTIFY=SUCCESS,FAILURE",
};
static const char *const d_reply[] = {
	"550 5.7.1 Rejected by filter", "451 4.7.1 Try later",
	"421 4.7.0 Closing", "554-5.7.1 line one\r\n554 5.7.1 line two",
	"250 2.0.0 ok?", "550 plain", "5xx bad", "", "450 4.2.0 %s %%",
	"554 5.7.1", "550-a\r\n450 b",
	"421-4.7.0 first\r\n421 4.7.0 last",
};
static const char *const d_reason[] = {
	"spam", "virus found", "", "bad\001ctl", "\xc3\xa9t\xc3\xa9",
};
static const char *const d_body[] = {
	"new body\r\n", "line1\r\nline2\r\n", "", "no eol", "dot\r\n.\r\n",
	"bare\rcr\n", "\r\n\r\n",
};
static const char *const d_macros[] = {
	"{client_addr} {client_port}", "j _", "i", "{mail_addr} {rcpt_addr}",
	"{auth_authen} {tls_version} {cipher}", "{unknown}", "",
	"i {mail_host} {client_name} {client_ptr} {if_addr}",
	"{daemon_name} {daemon_addr} v", "i {rcpt_host} {auth_type}",
};
#define NDICT(d)	(sizeof(d) / sizeof((d)[0]))

/* append a string and its NUL */
static size_t
s_cat(uint8_t *p, size_t at, const char *s, size_t n)
{
	memcpy(p + at, s, n);
	p[at + n] = '\0';
	return at + n + 1;
}

static void
f_close(struct ffilter *f)
{
	if (f->fd != -1)
		close(f->fd);
	f->fd = -1;
}

/* a modification (or a reply where it has no place) from the script */
static void
f_change(struct ffilter *f, int op)
{
	uint8_t	p[1200];
	char	a[300], b[300];
	size_t	la, lb, at = 0;
	uint32_t idx;
	int	c;

	switch (op) {
	case 0:		/* addheader */
	case 1:		/* insheader */
	case 2:		/* chgheader */
		if (op != 0) {
			c = sb();
			idx = htonl((uint32_t)(c < 0 ? 0 : c == 0xff ?
			    0xffffffffU : c));
			memcpy(p, &idx, 4);
			at = 4;
		}
		la = s_text(d_hname, NDICT(d_hname), a, sizeof(a));
		lb = s_text(d_hvalue, NDICT(d_hvalue), b, sizeof(b));
		at = s_cat(p, at, a, la);
		at = s_cat(p, at, b, lb);
		f_reply(f, op == 0 ? SMFIR_ADDHEADER : op == 1 ?
		    SMFIR_INSHEADER : SMFIR_CHGHEADER, p, at);
		break;
	case 3:		/* a piece of a new body */
		la = s_text(d_body, NDICT(d_body), a, sizeof(a));
		f_reply(f, SMFIR_REPLBODY, a, la);
		break;
	case 4:		/* addrcpt, with or without arguments */
		la = s_text(d_addr, NDICT(d_addr), a, sizeof(a));
		at = s_cat(p, 0, a, la);
		if ((c = sb()) >= 0 && (c & 1)) {
			lb = s_text(d_args, NDICT(d_args), b, sizeof(b));
			at = s_cat(p, at, b, lb);
			f_reply(f, SMFIR_ADDRCPT_PAR, p, at);
		} else
			f_reply(f, SMFIR_ADDRCPT, p, at);
		break;
	case 5:		/* delrcpt */
		la = s_text(d_addr, NDICT(d_addr), a, sizeof(a));
		at = s_cat(p, 0, a, la);
		f_reply(f, SMFIR_DELRCPT, p, at);
		break;
	case 6:		/* chgfrom */
		la = s_text(d_addr, NDICT(d_addr), a, sizeof(a));
		at = s_cat(p, 0, a, la);
		if ((c = sb()) >= 0 && (c & 1)) {
			lb = s_text(d_args, NDICT(d_args), b, sizeof(b));
			at = s_cat(p, at, b, lb);
		}
		f_reply(f, SMFIR_CHGFROM, p, at);
		break;
	case 7:		/* quarantine */
		la = s_text(d_reason, NDICT(d_reason), a, sizeof(a));
		at = s_cat(p, 0, a, la);
		f_reply(f, SMFIR_QUARANTINE, p, at);
		break;
	default:	/* any packet: a command byte and a text */
		c = sb();
		la = s_text(d_reason, NDICT(d_reason), a, sizeof(a));
		f_reply(f, (char)(c < 0 ? 'Z' : c), a, la);
		break;
	}
}

/* the answer to a command that expects one, from the script */
static void
f_answer(struct ffilter *f)
{
	char	 a[300];
	uint8_t	 p[300];
	size_t	 la;
	int	 b, i, n;

	for (i = 0; i < 64; i++) {
		if ((b = sb()) < 0) {
			f_close(f);	/* the script is over: it goes away */
			return;
		}
		switch (b % 24) {
		case 0:
		case 1:
		case 2:
			f_reply(f, SMFIR_CONTINUE, NULL, 0);
			return;
		case 3:
			f_reply(f, SMFIR_ACCEPT, NULL, 0);
			return;
		case 4:
			f_reply(f, SMFIR_REJECT, NULL, 0);
			return;
		case 5:
			f_reply(f, SMFIR_TEMPFAIL, NULL, 0);
			return;
		case 6:
			f_reply(f, SMFIR_DISCARD, NULL, 0);
			return;
		case 7:
			la = s_text(d_reply, NDICT(d_reply), a, sizeof(a));
			la = s_cat(p, 0, a, la);
			f_reply(f, SMFIR_REPLYCODE, p, la);
			return;
		case 8:
			f_reply(f, SMFIR_PROGRESS, NULL, 0);
			break;
		case 9:
			f_reply(f, SMFIR_SKIP, NULL, 0);
			return;
		case 10:
			f_reply(f, (b & 0x80) ? SMFIR_SHUTDOWN :
			    SMFIR_CONN_FAIL, NULL, 0);
			return;
		case 11:	/* raw bytes, then nothing more */
			n = sb();
			n = n < 0 ? 0 : n & 0x7f;
			while (n-- > 0 && (b = sb()) >= 0) {
				uint8_t	c = (uint8_t)b;

				f_put(f, &c, 1);
			}
			return;
		case 12:
			f_close(f);
			return;
		default:	/* 13..23: the modifications, then more */
			f_change(f, b % 24 - 13);
			break;
		}
	}
}

static void
f_optneg(struct ffilter *f)
{
	uint8_t		 p[12 + 8 * (4 + 300)];
	char		 a[300];
	uint32_t	 v, act, proto;
	size_t		 at = 12, la;
	int		 b0, b, i;

	if ((b0 = sb()) < 0) {
		f_close(f);
		return;
	}
	if ((b0 & 0x38) == 0x38) {	/* anything but an OPTNEG */
		f_answer(f);
		return;
	}
	v = (b0 & 0x80) ? (uint32_t)(sb() & 0xff) : MILTER_VERSION;
	act = (uint32_t)(sb() & 0xff) | (uint32_t)(sb() & 0xff) << 8;
	proto = (uint32_t)(sb() & 0xff) | (uint32_t)(sb() & 0xff) << 8 |
	    (uint32_t)(sb() & 0xff) << 16;
	if (!(b0 & 0x40)) {
		act &= SMFIF_ALL;
		proto &= SMFIP_ALL & ~SMFIP_RCPT_REJ;
	}
	f->protocol = proto;
	v = htonl(v);
	memcpy(p, &v, 4);
	act = htonl(act);
	memcpy(p + 4, &act, 4);
	proto = htonl(proto);
	memcpy(p + 8, &proto, 4);
	for (i = 0; i < (b0 & 7); i++) {
		uint32_t	stage;

		b = sb();
		stage = htonl((uint32_t)(b < 0 ? 0 : b % 8));
		memcpy(p + at, &stage, 4);
		at += 4;
		la = s_text(d_macros, NDICT(d_macros), a, sizeof(a));
		at = s_cat(p, at, a, la);
	}
	f_reply(f, SMFIR_OPTNEG, p, at);
}

/* n NUL-terminated strings exactly fill d[0..len) */
static size_t
nstrings(const uint8_t *d, size_t len)
{
	size_t	i, n = 0;

	CHECK(len == 0 || d[len - 1] == '\0');
	for (i = 0; i < len; i++)
		if (d[i] == '\0')
			n++;
	return n;
}

/*
 * What the worker sent the filter must be what the protocol allows:
 * each command its fields, macros only for the commands that take
 * them, a step negotiated away not sent.  1 when a reply is expected.
 */
static int
f_check(struct ffilter *f, uint8_t cmd, const uint8_t *d, size_t len)
{
	uint32_t	pr = f->protocol;
	size_t		i, k;

	CHECK(!f->quit);	/* nothing after QUIT */
	if (!f->optneg) {
		uint32_t	v;

		CHECK(cmd == SMFIC_OPTNEG && len == 12);
		memcpy(&v, d, 4);
		CHECK(ntohl(v) == MILTER_VERSION);
		memcpy(&v, d + 4, 4);
		CHECK(ntohl(v) == SMFIF_ALL);
		f->optneg = 1;
		return 1;
	}
	switch (cmd) {
	case SMFIC_MACRO:
		CHECK(len >= 1 && memchr("CHMRTNELBU", d[0], 10) != NULL);
		CHECK(nstrings(d + 1, len - 1) % 2 == 0);
		/* name, value, ...: names not empty, values may be */
		for (i = 1, k = 0; i < len; k++) {
			size_t	l = strnlen((const char *)d + i, len - i);

			CHECK((k & 1) || l > 0);
			i += l + 1;
		}
		return 0;
	case SMFIC_CONNECT:
		CHECK(!(pr & SMFIP_NOCONNECT));
		CHECK(len >= 2);
		i = strnlen((const char *)d, len);
		CHECK(i < len - 1);
		i++;
		if (d[i] == 'U')
			CHECK(i + 1 == len);
		else {
			CHECK(d[i] == '4' || d[i] == '6' || d[i] == 'L');
			CHECK(i + 3 < len && nstrings(d + i + 3,
			    len - i - 3) == 1);
		}
		return !(pr & SMFIP_NR_CONN);
	case SMFIC_HELO:
		CHECK(!(pr & SMFIP_NOHELO));
		CHECK(len >= 1 && nstrings(d, len) == 1);
		return !(pr & SMFIP_NR_HELO);
	case SMFIC_MAIL:
	case SMFIC_RCPT:
		CHECK(!(pr & (cmd == SMFIC_MAIL ? SMFIP_NOMAIL :
		    SMFIP_NORCPT)));
		CHECK(len >= 2 && nstrings(d, len) >= 1 && d[0] != '\0');
		for (i = 1; i < len; i++)
			CHECK(d[i] != '\0' || d[i - 1] != '\0');
		return !(pr & (cmd == SMFIC_MAIL ? SMFIP_NR_MAIL :
		    SMFIP_NR_RCPT));
	case SMFIC_DATA:
		CHECK(!(pr & SMFIP_NODATA) && len == 0);
		return !(pr & SMFIP_NR_DATA);
	case SMFIC_HEADER:
		CHECK(!(pr & SMFIP_NOHDRS));
		CHECK(len >= 3 && d[0] != '\0' && nstrings(d, len) == 2);
		return !(pr & SMFIP_NR_HDR);
	case SMFIC_EOH:
		CHECK(!(pr & SMFIP_NOEOH) && len == 0);
		return !(pr & SMFIP_NR_EOH);
	case SMFIC_BODY:
		CHECK(!(pr & SMFIP_NOBODY));
		CHECK(len >= 1 && len <= MILTER_CHUNK_MAX);
		return !(pr & SMFIP_NR_BODY);
	case SMFIC_BODYEOB:
		CHECK(len == 0);
		return 1;
	case SMFIC_UNKNOWN:
		CHECK(!(pr & SMFIP_NOUNKNOWN));
		CHECK(len >= 1 && nstrings(d, len) == 1);
		return !(pr & SMFIP_NR_UNKN);
	case SMFIC_ABORT:
		CHECK(len == 0);
		return 0;
	case SMFIC_QUIT:
	case SMFIC_QUIT_NC:
		CHECK(len == 0);
		/* QUIT_NC only to a filter configured with reuse */
		CHECK(cmd == SMFIC_QUIT || reuse_on);
		f->quit = 1;
		f->quit_nc = cmd == SMFIC_QUIT_NC;
		return 0;
	default:
		CHECK(!"unknown command to a filter");
	}
	return 0;
}

/* read what the worker sent, answer it; 1 when anything moved */
static int
f_serve(struct ffilter *f)
{
	ssize_t	n;
	long	pk;
	size_t	off = 0;
	int	any = 0;

	if (f->fd == -1)
		return 0;
	for (;;) {
		if (f->inlen == FILTER_INMAX)
			break;
		n = read(f->fd, f->in + f->inlen, FILTER_INMAX - f->inlen);
		if (n > 0) {
			f->inlen += (size_t)n;
			any = 1;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			/* the worker closed it: what it sent is checked */
			any = 1;
			f_close(f);
		}
		break;
	}
	while (off < f->inlen &&
	    (pk = milter_frame(f->in + off, f->inlen - off)) != 0) {
		CHECK(pk > 0);	/* a length in bounds */
		f->pooled = 0;	/* in use again */
		if (f_check(f, f->in[off + 4], f->in + off + 5,
		    (size_t)pk - 5) && f->fd != -1) {
			if (f->in[off + 4] == SMFIC_OPTNEG)
				f_optneg(f);
			else
				f_answer(f);
		}
		off += (size_t)pk;
	}
	if (off > 0) {
		memmove(f->in, f->in + off, f->inlen - off);
		f->inlen -= off;
	}
	if (f->fd != -1 && f->outlen > 0) {
		n = send(f->fd, f->out, f->outlen, MSG_NOSIGNAL);
		if (n > 0) {
			memmove(f->out, f->out + n, f->outlen - (size_t)n);
			f->outlen -= (size_t)n;
			any = 1;
		} else if (n == -1 && errno != EAGAIN && errno !=
		    EWOULDBLOCK)
			f_close(f);
	}
	return any;
}

static void
parent_one(struct imsg *m)
{
	struct milter_connect	r;
	struct milter_stats	st;
	struct ffilter		*f;
	int			sv[2], i, k;

	switch (m->hdr.type) {
	case IMSG_MILTER_CONNECT:
		CHECK(milters_on);
		CHECK(m->len == sizeof(r));
		memcpy(&r, m->data, sizeof(r));
		CHECK(proto_valid_milter_connect(&r) == 0);
		for (i = 0; i < nfilters; i++)
			if (strcmp(r.name, mconfs[i].name) == 0)
				break;
		CHECK(i < nfilters);
		for (k = 0; k < FSLOT_MAX; k++)
			if (filters[k].fd == -1)
				break;
		if (fail_connect[i] || k == FSLOT_MAX ||
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
		    sv) == -1) {
			r.status = PROTO_TEMPFAIL;
			snprintf(r.error, sizeof(r.error),
			    "connect: Connection refused");
			smtp_milter_connected(&r, -1);
			break;
		}
		f = &filters[k];
		f->fd = sv[1];
		f->inlen = f->outlen = 0;
		f->optneg = f->quit = f->quit_nc = 0;
		f->protocol = 0;
		r.status = PROTO_OK;
		smtp_milter_connected(&r, sv[0]);
		break;
	case IMSG_MILTER_STATS:
		CHECK(m->len == sizeof(st));
		memcpy(&st, m->data, sizeof(st));
		CHECK(proto_valid_milter_stats(&st) == 0);
		break;
	default:
		break;		/* not this harness's business */
	}
}

/*
 * The loop ended with the session alive: if a filter stage is under way,
 * something must be able to wake it (a filter's timer, the parent's
 * connection), or the client would wait for ever.
 */
static void
check_not_stalled(struct session *s)
{
	struct milter_sess	*ms = s->milter;
	int			 i, wake = 0;

	if (ms == NULL || ms->stage == -1 || (s->flags & SS_MILTER_RCPT))
		return;
	for (i = 0; i < ms->n; i++) {
		struct milter_conn *c = &ms->c[i];

		if (c->state == MC_WAITFD || (c->ev_timer != NULL &&
		    evtimer_pending(c->ev_timer, NULL)))
			wake = 1;
	}
	CHECK(wake);	/* a stage nothing will ever finish */
}

/* this input's chain, from its byte */
static void
milter_setup(int on, uint8_t cfg)
{
	int	i, j;

	milters_on = on;
	nfilters = on ? 1 + (cfg & 1) : 0;
	reuse_on = on && (cfg & 0x80);
	for (i = 0; i < FILTER_MAX; i++)
		mconfs[i].reuse = reuse_on;
	for (i = 0; i < nfilters; i++) {
		mconfs[i].on_error = (enum milter_default)((cfg >> (1 + 2 *
		    i)) & 3);
		fail_connect[i] = (cfg >> (5 + i)) & 1;
	}
	for (i = 0; i < 3; i++) {
		listeners[i].nmilters = nfilters;
		for (j = 0; j < nfilters; j++)
			listeners[i].milters[j] = j;
	}
	conf->nlocal_milters = nfilters;
	for (j = 0; j < nfilters; j++)
		conf->local_milters[j] = j;
}

static void
milter_init(void)
{
	int	i, pa[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pa) == -1)
		abort();
	mproc_init(&smtp_worker.parent, pa[0], "parent", noop_handler, NULL);
	imsgbuf_init(&parent_ib, pa[1]);
	for (i = 0; i < FILTER_MAX; i++) {
		struct milter_conf *mc = &mconfs[i];

		mc->index = i;
		snprintf(mc->name, sizeof(mc->name), "f%d", i);
		snprintf(mc->address, sizeof(mc->address), "unix:/fuzz/f%d",
		    i);
		mc->connect_timeout = mc->command_timeout =
		    mc->eom_timeout = 1;
		TAILQ_INSERT_TAIL(&conf->milters, mc, entry);
	}
	for (i = 0; i < FSLOT_MAX; i++) {
		filters[i].fd = -1;
		if ((filters[i].in = malloc(FILTER_INMAX)) == NULL)
			abort();
	}
	conf->nmilters = FILTER_MAX;
	/* smtp_milter_init() asks for spare files when a chain exists */
	conf->nlocal_milters = 1;
	smtp_milter_init();
	conf->nlocal_milters = 0;
}

static void
milter_end(void)
{
	int	i, kept = 0;

	for (i = 0; i < FSLOT_MAX; i++) {
		struct ffilter *f = &filters[i];

		/* a connection the worker pooled ("reuse") stays open for
		 * the next inputs, as the filter would; a few at most */
		if (f->fd != -1 && reuse_on && (f->quit_nc || f->pooled) &&
		    f->inlen == 0 && f->outlen == 0 && kept < FPOOL_KEEP) {
			kept++;
			f->pooled = 1;
			f->quit = f->quit_nc = 0;
			continue;
		}
		f_close(f);
		f->inlen = f->outlen = 0;
		f->optneg = f->quit = f->quit_nc = f->pooled = 0;
		f->protocol = 0;
	}
}

/* ---- the fake lookup ---- */

static void
lookup_answer_rcpt(const struct lka_rcpt_req *req)
{
	struct lka_dest		d;
	struct lka_result	r;
	const char		*u = req->rcpt.user;
	uint32_t		 n = 1, i;

	memset(&r, 0, sizeof(r));
	r.reqid = req->reqid;
	if (strncasecmp(u, "bad", 3) == 0) {
		r.status = PROTO_PERMFAIL;
		snprintf(r.reply, sizeof(r.reply),
		    "550 5.1.1 <%s>: Recipient address rejected", u);
	} else if (strncasecmp(u, "tmp", 3) == 0) {
		r.status = PROTO_TEMPFAIL;
		r.reply[0] = '\0';
	} else {
		if (strncasecmp(u, "list", 4) == 0)
			n = 2;
		for (i = 0; i < n; i++) {
			memset(&d, 0, sizeof(d));
			d.reqid = req->reqid;
			d.dest_type = DEST_MAILBOX;
			d.dest = req->rcpt;
			snprintf(d.dest.user, sizeof(d.dest.user), "u%u", i);
			snprintf(d.action, sizeof(d.action), "local");
			snprintf(d.user, sizeof(d.user), "u%u", i);
			session_lookup_dest(&d);
		}
		r.status = PROTO_OK;
		r.ndest = n;
	}
	session_lookup_result(&r);
}

static void
lookup_one(struct imsg *m)
{
	struct lka_rcpt_req	req;
	struct lka_auth_req	areq;
	struct lka_rdns		rdns;
	struct lka_result	r;
	struct session		*s;

	memset(&r, 0, sizeof(r));
	switch (m->hdr.type) {
	case IMSG_LKA_RCPT:
	case IMSG_LKA_VRFY:
	case IMSG_LKA_EXPN:
		CHECK(m->len == sizeof(req));
		memcpy(&req, m->data, sizeof(req));
		CHECK(proto_valid_lka_rcpt_req(&req) == 0);
		lookup_answer_rcpt(&req);
		break;
	case IMSG_LKA_SENDER:
		CHECK(m->len == sizeof(req));
		memcpy(&req, m->data, sizeof(req));
		CHECK(proto_valid_lka_rcpt_req(&req) == 0);
		r.reqid = req.reqid;
		r.status = PROTO_OK;
		session_lookup_sender(&r);
		break;
	case IMSG_LKA_ETRN:
		CHECK(m->len == sizeof(req));
		memcpy(&req, m->data, sizeof(req));
		r.reqid = req.reqid;
		r.status = PROTO_PERMFAIL;
		snprintf(r.reply, sizeof(r.reply), "458 4.5.0 Unable to queue "
		    "messages for node");
		session_lookup_etrn(&r);
		break;
	case IMSG_LKA_AUTH:
		CHECK(m->len == sizeof(areq));
		memcpy(&areq, m->data, sizeof(areq));
		CHECK(proto_valid_lka_auth_req(&areq) == 0);
		r.reqid = areq.reqid;
		if (strcmp(areq.user, "tmp") == 0)
			r.status = PROTO_TEMPFAIL;
		else if (strcmp(areq.user, "good") == 0 &&
		    strcmp(areq.pass, "secret") == 0)
			r.status = PROTO_OK;
		else
			r.status = PROTO_PERMFAIL;
		explicit_bzero(&areq, sizeof(areq));
		if ((s = session_find(r.reqid)) != NULL)
			smtp_auth_result(s, &r);
		break;
	case IMSG_LKA_RDNS:
		CHECK(m->len == sizeof(rdns));
		memcpy(&rdns, m->data, sizeof(rdns));
		rdns.status = (next_sid & 1) ? PROTO_OK : PROTO_PERMFAIL;
		rdns.fcrdns = 1;
		snprintf(rdns.name, sizeof(rdns.name), "client.example.net");
		session_lookup_rdns(&rdns);
		break;
	/* the inbound checks (smtp_checks.c): answers that vary a little */
	case IMSG_LKA_DNSBL: {
		struct lka_dnsbl	bl;

		CHECK(m->len == sizeof(bl));
		memcpy(&bl, m->data, sizeof(bl));
		CHECK(proto_valid_lka_dnsbl(&bl) == 0);
		bl.listed = bl.ask_lists && (next_sid % 5) == 4;
		snprintf(bl.lists, sizeof(bl.lists), "bl.example");
		smtp_checks_dnsbl_reply(&bl);
		break;
	}
	case IMSG_LKA_SPF: {
		struct lka_spf	sp;

		CHECK(m->len == sizeof(sp));
		memcpy(&sp, m->data, sizeof(sp));
		CHECK(proto_valid_lka_spf(&sp) == 0);
		sp.result = (int32_t)(next_sid % 7);
		snprintf(sp.domain, sizeof(sp.domain), "example.org");
		smtp_checks_spf_reply(&sp);
		break;
	}
	case IMSG_LKA_AUTHCHECK: {
		struct lka_authcheck_res	*ar;
		struct lka_authcheck		*aq;
		uint32_t			 i;

		CHECK(m->len == sizeof(*aq));
		aq = malloc(sizeof(*aq));	/* m->data is not aligned */
		ar = calloc(1, sizeof(*ar));
		CHECK(aq != NULL && ar != NULL);
		memcpy(aq, m->data, sizeof(*aq));
		CHECK(proto_valid_lka_authcheck(aq) == 0);
		ar->reqid = aq->reqid;
		ar->serial = aq->serial;
		ar->nsigs = aq->nsigs;
		for (i = 0; i < ar->nsigs; i++)
			ar->dkim[i].result = (int32_t)((next_sid + i) % 7);
		ar->dmarc_result = (int32_t)(next_sid % 5);
		ar->dmarc_policy = ar->dmarc_disposition =
		    (int32_t)(next_sid % 3);
		snprintf(ar->dmarc_domain, sizeof(ar->dmarc_domain),
		    "example.org");
		smtp_checks_authcheck_reply(ar);
		free(aq);
		free(ar);
		break;
	}
	default:
		CHECK(!"unexpected message to lookup");
	}
}

/* ---- the fake queue ---- */

static struct fake_msg *
msg_find(uint32_t msgid)
{
	size_t	i;

	for (i = 0; i < FAKE_MSG_MAX; i++)
		if (msgs[i].fd != -1 && msgs[i].msgid == msgid)
			return &msgs[i];
	return NULL;
}

static void
msg_forget(struct fake_msg *fm)
{
	close(fm->fd);
	fm->fd = -1;
}

/*
 * what the worker spooled: LF line ends only, and the length it said,
 * then the header fields it added (Authentication-Results), valid
 */
static void
check_spool(int fd, uint64_t spooled, uint32_t head)
{
	struct stat	 st;
	char		*p;
	size_t		 len, i;

	CHECK(fstat(fd, &st) == 0);
	CHECK((uint64_t)st.st_size == spooled + head);
	if (head > 0) {
		size_t	lines;

		CHECK(head <= SPOOL_HEAD_MAX);
		if ((p = malloc(head)) == NULL)
			return;
		CHECK(pread(fd, p, head, (off_t)spooled) == (ssize_t)head);
		CHECK(spool_head_valid(p, head, &lines) == 0);
		free(p);
	}
	len = (size_t)spooled;
	CHECK(len > 0);		/* at least our Received: */
	if ((p = malloc(len)) == NULL)
		return;
	CHECK(pread(fd, p, len, 0) == (ssize_t)len);
	if (!milters_on)
		CHECK(memcmp(p, "Received: ", 10) == 0);
	else {
		/* a filter may insert a field above it: a field first */
		for (i = 0; i < len && p[i] != ':'; i++)
			CHECK(p[i] > ' ' && p[i] < 0x7f);
		CHECK(i > 0 && i < len);
	}
	CHECK(p[len - 1] == '\n');
	for (i = 0; i < len; i++)
		CHECK(p[i] != '\r');
	free(p);
}

/* does another descriptor of ours (the worker's) open fd's file? */
static int
held_elsewhere(int fd)
{
	struct stat	 st, o;
	struct dirent	*de;
	DIR		*d;
	int		 n, found = 0;

	if (fstat(fd, &st) == -1 || (d = opendir("/proc/self/fd")) == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		n = atoi(de->d_name);
		if (de->d_name[0] == '.' || n == fd || n == dirfd(d))
			continue;
		if (fstat(n, &o) == 0 && o.st_dev == st.st_dev &&
		    o.st_ino == st.st_ino)
			found = 1;
	}
	closedir(d);
	return found;
}

static void
queue_one(struct imsg *m)
{
	struct queue_msg_req	req;
	struct queue_msg_resp	r;
	struct envelope		evp;
	struct fake_msg		*fm;
	size_t			 i;
	int			 fd, dupfd;

	memset(&r, 0, sizeof(r));
	switch (m->hdr.type) {
	case IMSG_QUEUE_CREATE:
		CHECK(m->len == sizeof(req));
		memcpy(&req, m->data, sizeof(req));
		r.reqid = req.reqid;
		for (i = 0; i < FAKE_MSG_MAX; i++)
			if (msgs[i].fd == -1)
				break;
		/* spares (reqid 0) too: the milters' rewrite takes one,
		 * and a MAIL sets one aside for the queue id */
		if (i == FAKE_MSG_MAX ||
		    (fd = memfd_create("spool", MFD_CLOEXEC)) == -1) {
			r.status = PROTO_TEMPFAIL;
			session_queue_created(&r, -1);
			break;
		}
		if ((dupfd = dup(fd)) == -1)
			abort();
		msgs[i].msgid = ++next_msgid;
		msgs[i].fd = dupfd;
		msgs[i].nenvelopes = 0;
		r.msgid = msgs[i].msgid;
		r.status = PROTO_OK;
		session_queue_created(&r, fd);
		break;
	case IMSG_QUEUE_ENVELOPE:
		CHECK(m->len == sizeof(evp));
		memcpy(&evp, m->data, sizeof(evp));
		CHECK((fm = msg_find((uint32_t)(evp.id >> 32))) != NULL);
		CHECK(envelope_valid(&evp) == 0);
		/* held (a filter's quarantine): and why, printable */
		if (evp.flags & EF_HOLD) {
			CHECK(evp.hold_reason[0] != '\0');
			for (i = 0; i < sizeof(evp.hold_reason) &&
			    evp.hold_reason[i] != '\0'; i++)
				CHECK((unsigned char)evp.hold_reason[i] >=
				    ' ' && evp.hold_reason[i] != 0x7f);
			CHECK(i < sizeof(evp.hold_reason));
		}
		fm->nenvelopes++;
		break;
	case IMSG_QUEUE_COMMIT:
		CHECK(m->len == sizeof(req));
		memcpy(&req, m->data, sizeof(req));
		CHECK((fm = msg_find(req.msgid)) != NULL);
		CHECK(req.nenvelopes == fm->nenvelopes);
		CHECK(req.nenvelopes > 0);
		check_spool(fm->fd, req.spooled, req.head);
		msg_forget(fm);
		if (ncommitted < FAKE_MSG_MAX)
			committed[ncommitted] = req.msgid;
		ncommitted++;
		r.reqid = req.reqid;
		r.msgid = req.msgid;
		r.status = PROTO_OK;
		session_queue_committed(&r);
		break;
	case IMSG_QUEUE_ROLLBACK:
		CHECK(m->len == sizeof(req));
		memcpy(&req, m->data, sizeof(req));
		if ((fm = msg_find(req.msgid)) != NULL)
			msg_forget(fm);
		break;
	case IMSG_QUEUE_ETRN:
		break;		/* not reached: lookup refuses every ETRN */
	default:
		CHECK(!"unexpected message to queue");
	}
}

/* answer what the worker asked; 1 when there was anything */
static int
serve(struct imsgbuf *ib, void (*one)(struct imsg *))
{
	return fuzz_serve(ib, one);
}

/* ---- the client's view ---- */

struct replies {
	char	*buf;
	size_t	 len;
};

static int
client_read(int fd, struct replies *rp, int *eof)
{
	char	 b[8192];
	ssize_t	 n;
	int	 any = 0;

	while ((n = read(fd, b, sizeof(b))) > 0) {
		any = 1;
		if (rp->len + (size_t)n > REPLY_MAX)
			continue;	/* counted enough */
		memcpy(rp->buf + rp->len, b, (size_t)n);
		rp->len += (size_t)n;
	}
	if (n == 0)
		*eof = 1;
	else if (errno != EAGAIN && errno != EWOULDBLOCK)
		*eof = 1;	/* ECONNRESET: closed with input unread */
	return any;
}

static void
check_replies(const struct replies *rp, int closed)
{
	const char	*p = rp->buf, *end = rp->buf + rp->len, *nl;
	size_t		 queued = 0;
	int		 last_close = 0;

	while (p < end) {
		CHECK(!last_close);	/* nothing after a closing reply */
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break;		/* cut off at REPLY_MAX */
		CHECK(nl - p >= 4 && nl[-1] == '\r');
		CHECK(nl - p + 1 <= 512);
		CHECK(p[0] >= '2' && p[0] <= '5');
		CHECK(p[1] >= '0' && p[1] <= '9');
		CHECK(p[2] >= '0' && p[2] <= '9');
		CHECK(p[3] == ' ' || p[3] == '-' || p + 3 == nl - 1);
		if (p[3] != '-' && (memcmp(p, "221", 3) == 0 ||
		    memcmp(p, "421", 3) == 0 || memcmp(p, "521", 3) == 0))
			last_close = 1;
		if (memcmp(p, "250 2.0.0 Ok: queued as ", 24) == 0) {
			unsigned long	id = strtoul(p + 24, NULL, 16);
			size_t		i;

			for (i = 0; i < ncommitted && i < FAKE_MSG_MAX; i++)
				if (committed[i] == id)
					break;
			/* a filter's discard: 250, nothing kept */
			if (i < ncommitted || !milters_on)
				queued++;
		}
		p = nl + 1;
	}
	if (rp->len < REPLY_MAX) {
		CHECK(queued == ncommitted);
		CHECK(p == end);	/* the last reply is complete */
	}
	(void)closed;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 inited;
	static struct replies	 rp;
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct local_session	 ls;
	struct session		*s;
	size_t			 off, chunk, i;
	int			 sv[2], turn, eof = 0, idle = 0, shut = 0;
	int			 mode, milt;
	uint8_t			 cfg = 0;

	if (!inited) {
		if (init() == -1)
			return 0;
		for (i = 0; i < FAKE_MSG_MAX; i++)
			msgs[i].fd = -1;
		if ((rp.buf = malloc(REPLY_MAX)) == NULL)
			abort();
		milter_init();
		inited = 1;
	}
	if (size < 2 || size > 256 * 1024)
		return 0;
	mode = data[0] & 3;
	chunk = data[1] ? data[1] : size;
	milt = data[0] & 4;
	data += 2;
	size -= 2;
	script = NULL;
	script_len = script_off = 0;
	if (milt) {
		if (size < 3)
			return 0;
		cfg = data[0];
		script_len = (size_t)data[1] << 8 | data[2];
		data += 3;
		size -= 3;
		if (script_len > size)
			script_len = size;
		script = data;
		data += script_len;
		size -= script_len;
	}
	milter_setup(milt != 0, cfg);
	rp.len = 0;
	ncommitted = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		return 0;
	next_sid++;
	if (mode == 3) {
		memset(&ls, 0, sizeof(ls));
		ls.uid = 1000;
		snprintf(ls.user, sizeof(ls.user), "alice");
		session_new_local(sv[0], &ls);
	} else {
		memset(&ss, 0, sizeof(ss));
		sin->sin_family = AF_INET;
		sin->sin_port = htons(40000);
		/* one address per input: the rDNS memo and the per-IP
		 * count see a new client each time */
		sin->sin_addr.s_addr = htonl(0xc6336400 | (next_sid & 0xff));
		session_new(sv[0], &listeners[mode], (uint32_t)mode, &ss,
		    sizeof(*sin));
	}

	off = 0;
	for (turn = 0; turn < LOOP_MAX && !eof; turn++) {
		int	progress = 0;

		if (off < size) {
			size_t	n = size - off < chunk ? size - off : chunk;
			ssize_t	w = write(sv[1], data + off, n);

			if (w > 0) {
				off += (size_t)w;
				progress = 1;
			}
		}
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		progress |= serve(&lookup_ib, lookup_one);
		progress |= serve(&queue_ib, queue_one);
		progress |= serve(&parent_ib, parent_one);
		for (i = 0; i < FSLOT_MAX; i++)
			progress |= f_serve(&filters[i]);
		progress |= client_read(sv[1], &rp, &eof);
		if (progress) {
			idle = 0;
			continue;
		}
		/* all sent and nothing moves: the client hangs up */
		if (off == size && ++idle > 3 && !shut) {
			if ((s = session_find(next_sid)) != NULL)
				check_not_stalled(s);
			shutdown(sv[1], SHUT_WR);
			shut = 1;
			idle = 0;
		} else if (shut && idle > 50)
			break;		/* a timer we do not wait for */
	}
	/* a session the loop could not finish is closed as on a timeout */
	if ((s = session_find(next_sid)) != NULL) {
		check_not_stalled(s);
		session_close(s);
	}
	event_base_loop(ev_base, EVLOOP_NONBLOCK);
	serve(&lookup_ib, lookup_one);
	serve(&queue_ib, queue_one);
	serve(&parent_ib, parent_one);
	for (i = 0; i < FSLOT_MAX; i++)
		f_serve(&filters[i]);	/* its goodbye, checked */
	milter_end();
	client_read(sv[1], &rp, &eof);
	close(sv[1]);
	CHECK(smtp_worker.nsessions == 0);
	/* FUZZ_SESSION_SHOW=1 obj-fuzz/fuzz_smtp_session FILE: the dialog */
	if (getenv("FUZZ_SESSION_SHOW") != NULL)
		fprintf(stderr, "%.*s[%zu committed]\n", (int)rp.len, rp.buf,
		    ncommitted);
	check_replies(&rp, eof);
	/* a message never committed is rolled back or simply dropped;
	 * the worker's spare files stay (it still holds them) */
	for (i = 0; i < FAKE_MSG_MAX; i++)
		if (msgs[i].fd != -1 && !held_elsewhere(msgs[i].fd))
			msg_forget(&msgs[i]);
	return 0;
}
