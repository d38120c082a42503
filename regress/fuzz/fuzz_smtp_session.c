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
 * the rest is what the client sends, pipelining and all.
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
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

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
#include "mproc.h"
#include "proto.h"
#include "sesscount.h"
#include "proc.h"
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
	CHECK(memcmp(p, "Received: ", 10) == 0);
	CHECK(p[len - 1] == '\n');
	for (i = 0; i < len; i++)
		CHECK(p[i] != '\r');
	free(p);
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
		/* spares (reqid 0) are refused: each DATA asks */
		if (req.reqid == 0 || i == FAKE_MSG_MAX ||
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
		if (memcmp(p, "250 2.0.0 Ok: queued as ", 24) == 0)
			queued++;
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
	int			 mode;

	if (!inited) {
		if (init() == -1)
			return 0;
		for (i = 0; i < FAKE_MSG_MAX; i++)
			msgs[i].fd = -1;
		if ((rp.buf = malloc(REPLY_MAX)) == NULL)
			abort();
		inited = 1;
	}
	if (size < 2 || size > 256 * 1024)
		return 0;
	mode = data[0] & 3;
	chunk = data[1] ? data[1] : size;
	data += 2;
	size -= 2;
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
		progress |= client_read(sv[1], &rp, &eof);
		if (progress) {
			idle = 0;
			continue;
		}
		/* all sent and nothing moves: the client hangs up */
		if (off == size && ++idle > 3 && !shut) {
			shutdown(sv[1], SHUT_WR);
			shut = 1;
			idle = 0;
		} else if (shut && idle > 50)
			break;		/* a timer we do not wait for */
	}
	/* a session the loop could not finish is closed as on a timeout */
	if ((s = session_find(next_sid)) != NULL)
		session_close(s);
	event_base_loop(ev_base, EVLOOP_NONBLOCK);
	serve(&lookup_ib, lookup_one);
	serve(&queue_ib, queue_one);
	client_read(sv[1], &rp, &eof);
	close(sv[1]);
	CHECK(smtp_worker.nsessions == 0);
	/* FUZZ_SESSION_SHOW=1 obj-fuzz/fuzz_smtp_session FILE: the dialog */
	if (getenv("FUZZ_SESSION_SHOW") != NULL)
		fprintf(stderr, "%.*s[%zu committed]\n", (int)rp.len, rp.buf,
		    ncommitted);
	check_replies(&rp, eof);
	/* a message never committed is rolled back or simply dropped */
	for (i = 0; i < FAKE_MSG_MAX; i++)
		if (msgs[i].fd != -1)
			msg_forget(&msgs[i]);
	return 0;
}
