/*
 * smtp_data.c -- the message itself: DATA and BDAT, the trace header,
 * headers added for submission, and the hand-over to the queue.
 *
 * Split from smtp_session.c along the seam the protocol already has:
 * everything here runs between the end of the envelope (RCPT) and the
 * 250 (or refusal) for the message.
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
#include <event2/event.h>

#include "addr.h"
#include "dkim.h"
#include "log.h"
#include "mproc.h"
#include "proto.h"
#include "ctl.h"
#include "smtp_parse.h"
#include "sesscount.h"
#include "smtp_session.h"
#include "spool_msg.h"
#include "proc.h"
#include "tree.h"

/* ---- DATA, BDAT ---- */

/* can the transaction take message data?  If not, reply why. */
static int
data_allowed(struct session *s, const char *what)
{
	if (s->tx == NULL) {
		session_reply(s, "503 5.5.1 Error: need MAIL command");
		return 0;
	}
	if (s->tx->nrcpt_ok == 0) {
		/* RFC 2920 3.1: pipelined DATA after failed RCPTs */
		if (s->state == S_RCPT) {
			session_log_reject(s, what, "554 5.5.1 Error: no "
			    "valid recipients", NULL);
			session_reply(s, "554 5.5.1 Error: no valid "
			    "recipients");
		} else
			session_reply(s, "503 5.5.1 Error: need RCPT command");
		return 0;
	}
	return 1;
}

/*
 * Spare message files.  Asking the queue for a file at DATA would put a
 * round trip between two processes between the client's DATA and our
 * 354, and wake the queue once per message.  So a worker keeps a few
 * files the queue created ahead of need, asks for more in one go when
 * it is down to SPARE_LOW, and a DATA takes one at once.  A spare is an
 * incoming/ file like any other: never acknowledged, removed by the
 * queue when the worker goes away and by start-up after a crash.  The
 * queue looks at the spool's free space again at commit, so a spare
 * taken after the disk filled up gets 452 4.3.1 at the end of data.
 */
#define SPARE_MAX	16
#define SPARE_LOW	8
#define SPARE_REQID	0	/* no session has it */
#define SPARE_PAUSE	2	/* seconds without asking after a refusal */

static struct {
	uint32_t	msgid;
	int		fd;
}			spares[SPARE_MAX];
static int		nspares, nasked;
static time_t		spare_refused;

static void
spares_refill(void)
{
	struct queue_msg_req	req;

	if (nspares + nasked > SPARE_LOW || smtp_stopping() ||
	    time(NULL) - spare_refused < SPARE_PAUSE)
		return;
	memset(&req, 0, sizeof(req));
	req.reqid = SPARE_REQID;
	for (; nspares + nasked < SPARE_MAX; nasked++)
		mproc_compose(&smtp_worker.queue, IMSG_QUEUE_CREATE,
		    SPARE_REQID, -1, &req, sizeof(req));
}

static void
spare_return(uint32_t msgid, int fd)
{
	struct queue_msg_req	req;

	close(fd);
	memset(&req, 0, sizeof(req));
	req.msgid = msgid;
	mproc_compose(&smtp_worker.queue, IMSG_QUEUE_ROLLBACK, 0, -1, &req,
	    sizeof(req));
}

/* the queue's answer to a request for a spare */
static void
spare_created(const struct queue_msg_resp *r, int fd)
{
	if (nasked > 0)
		nasked--;
	if (r->status != PROTO_OK) {
		spare_refused = time(NULL);
		return;
	}
	if (nspares == SPARE_MAX || smtp_stopping()) {
		spare_return(r->msgid, fd);
		return;
	}
	spares[nspares].msgid = r->msgid;
	spares[nspares].fd = fd;
	nspares++;
}

static void	queue_created(struct session *, const struct queue_msg_resp *,
		    int);

/*
 * For the milters' rewrite of a message (smtp_milter_eom.c): a spare
 * file to hold the old body for a moment, at once or not at all (-1),
 * and back to the queue after.
 */
/* spare files from the start: the filters want the queue id at MAIL */
void
smtp_data_spares_prefill(void)
{
	spares_refill();
}

int
smtp_data_take_spare(uint32_t *msgid, int *fd)
{
	if (nspares == 0)
		return -1;
	nspares--;
	*msgid = spares[nspares].msgid;
	*fd = spares[nspares].fd;
	spares_refill();
	return 0;
}

void
smtp_data_reserve(struct session *s)
{
	struct txn	*tx = s->tx;

	if (tx->msgfd != -1 || tx->resv_fd != -1)
		return;
	if (smtp_data_take_spare(&tx->resv_msgid, &tx->resv_fd) == -1)
		tx->resv_fd = -1;
}

void
smtp_data_return_spare(uint32_t msgid, int fd)
{
	if (ftruncate(fd, 0) == 0 && nspares < SPARE_MAX &&
	    !smtp_stopping()) {
		spares[nspares].msgid = msgid;
		spares[nspares].fd = fd;
		nspares++;
		return;
	}
	spare_return(msgid, fd);
}

static void
queue_create(struct session *s)
{
	struct queue_msg_req	req;
	struct queue_msg_resp	r;
	int			fd;

	s->flags |= SS_WAIT;
	if (s->tx->resv_fd != -1) {
		/* set aside at MAIL (smtp_data_reserve()) */
		memset(&r, 0, sizeof(r));
		r.reqid = s->id;
		r.msgid = s->tx->resv_msgid;
		r.status = PROTO_OK;
		fd = s->tx->resv_fd;
		s->tx->resv_fd = -1;
		queue_created(s, &r, fd);
		return;
	}
	if (nspares > 0) {
		nspares--;
		memset(&r, 0, sizeof(r));
		r.reqid = s->id;
		r.msgid = spares[nspares].msgid;
		r.status = PROTO_OK;
		spares_refill();
		/* inside session_process(), which goes on with the data */
		queue_created(s, &r, spares[nspares].fd);
		return;
	}
	spares_refill();	/* for the next one */
	memset(&req, 0, sizeof(req));
	req.reqid = s->id;
	mproc_compose(&smtp_worker.queue, IMSG_QUEUE_CREATE, s->id, -1, &req,
	    sizeof(req));
}

static void	bdat_discard(struct session *, uint64_t, const char *);

/* what the filters said of DATA */
static void
data_milter(struct session *s, int verdict)
{
	switch (verdict) {
	case MILTER_DISCARD:
		s->tx->discard = 1;
		/* FALLTHROUGH */
	case MILTER_CONTINUE:
		queue_create(s);
		return;
	}
	smtp_milter_reply(s, "DATA", NULL);
	if (!(s->flags & SS_CLOSING))
		session_reset(s);
}

/* and of the first BDAT: its chunk is read and dropped if they refuse */
static void
bdat_milter(struct session *s, int verdict)
{
	char	reply[SMTP_REPLY_MAX];

	switch (verdict) {
	case MILTER_DISCARD:
		s->tx->discard = 1;
		/* FALLTHROUGH */
	case MILTER_CONTINUE:
		queue_create(s);
		return;
	case MILTER_CLOSE:
		smtp_milter_reply(s, "DATA", NULL);
		return;
	}
	smtp_milter_reply_line(s, reply, sizeof(reply));
	session_log_reject(s, "DATA", reply, NULL);
	session_reset(s);
	bdat_discard(s, s->chunk_left, reply);
}

void
cmd_data(struct session *s, char *args)
{
	if (args != NULL) {
		session_reply(s, "501 5.5.4 Syntax: DATA");
		session_error(s);
		return;
	}
	if (!data_allowed(s, "DATA")) {
		session_error(s);
		return;
	}
	if (s->tx->bdat) {
		session_reply(s, "503 5.5.1 Error: DATA after BDAT");
		session_error(s);
		return;
	}
	if (smtp_milter_stage(s, MILTER_STAGE_DATA, NULL, data_milter))
		return;
	queue_create(s);
}

/* read the coming chunk and drop it; then send `reply' */
static void
bdat_discard(struct session *s, uint64_t size, const char *reply)
{
	free(s->pending);
	if ((s->pending = strdup(reply)) == NULL)
		fatal("strdup");
	s->state = S_BDAT;
	s->chunk_left = size;
	s->chunk_flags = CHUNK_DISCARD;
	session_set_timeout(s);
}

void
cmd_bdat(struct session *s, char *args)
{
	struct txn	*tx = s->tx;
	uint64_t	 size;
	int		 last;

	if (smtp_parse_bdat(args, &size, &last) == -1) {
		/* without a size we cannot find the next command */
		session_reply_close(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		return;
	}
	if (tx == NULL) {
		bdat_discard(s, size, "503 5.5.1 Error: need MAIL command");
		session_error(s);
		return;
	}
	if (tx->nrcpt_ok == 0) {
		int	tried = s->state == S_RCPT;

		session_reset(s);
		bdat_discard(s, size, tried ?
		    "554 5.5.1 Error: no valid recipients" :
		    "503 5.5.1 Error: need RCPT command");
		session_error(s);
		return;
	}
	s->chunk_left = s->chunk_size = size;
	s->chunk_flags = last ? CHUNK_LAST : 0;
	if (!tx->bdat) {
		tx->bdat = 1;
		if ((tx->partial = evbuffer_new()) == NULL)
			fatal("evbuffer_new");
		if (smtp_milter_stage(s, MILTER_STAGE_DATA, NULL, bdat_milter))
			return;
		queue_create(s);
		return;
	}
	s->state = S_BDAT;
	session_set_timeout(s);
}

/*
 * RFC 5322 date of now.  localtime_r() looks at /etc/localtime on every
 * call; one formatting per second is plenty for a trace header.
 */
static void
format_date(char *buf, size_t len)
{
	static time_t	last;
	static char	cached[64];
	struct tm	tm;
	time_t		now = time(NULL);

	if (now != last) {
		localtime_r(&now, &tm);
		strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S %z",
		    &tm);
		last = now;
	}
	snprintf(buf, len, "%s", cached);
}

/* printable ASCII without parentheses and backslashes, for comments */
static const char *
trace_clean(const char *in, char *out, size_t len)
{
	size_t	i;

	for (i = 0; in[i] && i < len - 1; i++)
		out[i] = (in[i] > 0x20 && in[i] < 0x7f && in[i] != '(' &&
		    in[i] != ')' && in[i] != '\\') ? in[i] : '_';
	out[i] = '\0';
	return out;
}

/* RFC 5321 4.4: the trace header we prepend */
static void
session_received(struct session *s)
{
	struct txn	*tx = s->tx;
	char		 date[64], rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char		 msgid[9], tls[128], name[ENV_NAME_MAX];
	const char	*with;

	format_date(date, sizeof(date));
	msgid_to_text(tx->msgid, msgid);
	/* RFC 3848 */
	if (!(s->flags & SS_EHLO))
		with = "SMTP";
	else if ((s->flags & (SS_TLS | SS_AUTH)) == (SS_TLS | SS_AUTH))
		with = "ESMTPSA";
	else if (s->flags & SS_TLS)
		with = "ESMTPS";
	else if (s->flags & SS_AUTH)
		with = "ESMTPA";
	else
		with = "ESMTP";
	if (s->flags & SS_LOCAL)
		evbuffer_add_printf(tx->msgbuf, "Received: from %s "
		    "(userid %s)\n\tby %s (%s) with %s id %s",
		    s->helo ? s->helo : "local", trace_clean(s->authname, name,
		    sizeof(name)), session_hostname(s), SMTPD_NAME, with,
		    msgid);
	else
		evbuffer_add_printf(tx->msgbuf, "Received: from %s (%s [%s])"
		    "\n\tby %s (%s) with %s id %s", s->helo,
		    s->rdns ? s->rdns : "unknown", s->addr,
		    session_hostname(s), SMTPD_NAME, with, msgid);
	if (s->flags & SS_TLS)
		evbuffer_add_printf(tx->msgbuf, "\n\t(%s)",
		    smtp_tls_describe(s, tls, sizeof(tls)));
	if ((s->flags & SS_AUTH) && s->authname)
		evbuffer_add_printf(tx->msgbuf, "\n\t(authenticated as %s)",
		    trace_clean(s->authname, name, sizeof(name)));
	if (tx->nrcpt_ok == 1 && tx->ndests > 0) {
		addr_to_string(&tx->dests[0].rcpt, rcpt, sizeof(rcpt));
		evbuffer_add_printf(tx->msgbuf, "\n\tfor <%s>", rcpt);
	}
	evbuffer_add_printf(tx->msgbuf, ";\n\t%s\n", date);
}

void
session_queue_created(const struct queue_msg_resp *r, int fd)
{
	struct session		*s;
	struct txn		*tx;

	if (r->reqid == SPARE_REQID) {
		spare_created(r, fd);
		return;
	}
	if ((s = session_find(r->reqid)) == NULL || !(s->flags & SS_WAIT) ||
	    (tx = s->tx) == NULL || tx->msgfd != -1) {
		if (fd != -1)
			spare_return(r->msgid, fd);
		return;
	}
	queue_created(s, r, fd);
	session_process(s);
}

/* a message file for the session's transaction, or why there is none */
static void
queue_created(struct session *s, const struct queue_msg_resp *r, int fd)
{
	struct txn	*tx = s->tx;

	s->flags &= ~SS_WAIT;
	if (r->status != PROTO_OK) {
		if (tx->bdat) {
			/* the chunk is on its way all the same */
			bdat_discard(s, s->chunk_left, r->reply[0] ?
			    r->reply : "451 4.3.0 Temporary queue failure");
			session_reset(s);
			s->state = S_BDAT;
		} else
			session_reply(s, "%s", r->reply[0] ? r->reply :
			    "451 4.3.0 Temporary queue failure");
		return;
	}
	tx->msgid = r->msgid;
	tx->msgfd = fd;
	/* one chunk for a flush's worth of lines, not a malloc per 1 KB */
	if ((tx->msgbuf = evbuffer_new()) == NULL ||
	    evbuffer_expand(tx->msgbuf, SPOOL_FLUSH_SIZE + 1024) == -1)
		fatal("evbuffer_new");
	wirescan_init(&tx->wire);
	tx->in_headers = 1;
	/* one hasher for the checks and for our signature */
	if ((tx->checks || smtp_dkim_want_sign(s)) &&
	    (tx->dkim = dkim_msg_new(smtp_dkim_want_sign(s))) == NULL)
		fatal("dkim_msg_new");
	session_received(s);
	if (tx->bdat)
		s->state = S_BDAT;
	else {
		s->state = S_DATA;
		session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	}
	session_set_timeout(s);
}

/*
 * What goes to the spool is measured on the way, while it is in the
 * cache: the envelope then tells the mta the size on the wire and where
 * the 8-bit bytes are, and the mta need not read the message first.
 */
static void
spool_measure(struct txn *tx)
{
	struct evbuffer_iovec	 v[16];
	struct evbuffer_ptr	 pos;
	size_t			 left = evbuffer_get_length(tx->msgbuf), got;
	int			 n, i;

	if (evbuffer_ptr_set(tx->msgbuf, &pos, 0, EVBUFFER_PTR_SET) == -1)
		return;
	while (left > 0) {
		n = evbuffer_peek(tx->msgbuf, (ev_ssize_t)left, &pos, v, 16);
		if (n <= 0)
			return;
		for (i = 0, got = 0; i < n && i < 16; i++) {
			wirescan_add(&tx->wire, v[i].iov_base, v[i].iov_len);
			got += v[i].iov_len;
		}
		/* more chains than iovecs: go on after the ones seen */
		left -= got < left ? got : left;
		if (left > 0 && evbuffer_ptr_set(tx->msgbuf, &pos, got,
		    EVBUFFER_PTR_ADD) == -1)
			return;
	}
}

static int
spool_flush(struct session *s)
{
	struct txn	*tx = s->tx;

	spool_measure(tx);
	while (evbuffer_get_length(tx->msgbuf) > 0) {
		int	n;

		if ((n = evbuffer_write(tx->msgbuf, tx->msgfd)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("%08x: spool write", tx->msgid);
			return -1;
		}
		tx->spooled += (uint64_t)n;
	}
	if (evbuffer_expand(tx->msgbuf, SPOOL_FLUSH_SIZE + 1024) == -1)
		fatal("evbuffer_expand");
	return 0;
}

/* ---- headers added after the body (spool_msg.h) ---- */

int
smtp_data_add_header(struct session *s, const char *text)
{
	char		 field[SPOOL_HEAD_MAX];
	const char	*p;
	size_t		 n = 0, lines;

	/* one field in the spool's form: LF line ends, a final one */
	for (p = text; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		if (n + 2 > sizeof(field))
			return -1;
		field[n++] = *p;
	}
	if (n == 0 || field[n - 1] != '\n')
		field[n++] = '\n';
	/* a field, and only one: no line of it starts another */
	if (spool_head_valid(field, n, &lines) == -1)
		return -1;
	for (p = field; (p = memchr(p, '\n', field + n - 1 - p)) != NULL;)
		if (*++p != ' ' && *p != '\t')
			return -1;
	if (s->addhead_len + n > SPOOL_HEAD_MAX)
		return -1;
	if (s->addhead == NULL &&
	    (s->addhead = malloc(SPOOL_HEAD_MAX)) == NULL) {
		log_warn("%08x: added header", s->tx ? s->tx->msgid : 0);
		return -1;
	}
	/* above the ones added before */
	memmove(s->addhead + n, s->addhead, s->addhead_len);
	memcpy(s->addhead, field, n);
	s->addhead_len += n;
	s->addhead_lines += lines;
	return 0;
}

/*
 * The added fields go after the data, where the queue will look for
 * them: one pwrite, before the sync that makes the data durable.
 */
static int
spool_write_head(struct session *s)
{
	struct txn	*tx = s->tx;
	ssize_t		 n;

	if (s->addhead_len == 0)
		return 0;
	do {
		n = pwrite(tx->msgfd, s->addhead, s->addhead_len,
		    (off_t)tx->spooled);
	} while (n == -1 && errno == EINTR);
	if (n != (ssize_t)s->addhead_len) {
		log_warn("%08x: spool write of added headers", tx->msgid);
		return -1;
	}
	return 0;
}

#ifdef POSTHASTE_TEST_FORGE
/*
 * Only in obj/regress/smtpd-forge, a test build that is never installed:
 * a worker that lies about a destination, as one taken over by a client
 * could, so that test_privsep.py can show that the queue refuses what
 * lookup did not seal.  POSTHASTE_FORGE="user command": deliver to the
 * command, run as user, whatever lookup said.
 */
static void
forge_dest(struct envelope *evp)
{
	const char	*f = getenv("POSTHASTE_FORGE"), *sp;

	if (f == NULL || (sp = strchr(f, ' ')) == NULL)
		return;
	evp->dest_type = DEST_PROGRAM;
	snprintf(evp->user, sizeof(evp->user), "%.*s", (int)(sp - f), f);
	snprintf(evp->path, sizeof(evp->path), "%s", sp + 1);
}
#endif

#ifdef POSTHASTE_TEST_FORGE
/*
 * And the added headers: POSTHASTE_FORGE_ADD and POSTHASTE_FORGE_ADD2 go
 * through smtp_data_add_header() (in that order), as the end-of-data
 * checks will call it; POSTHASTE_FORGE_HEAD is written as it is, and
 * POSTHASTE_FORGE_HEADLEN=N makes N bytes of well-formed fields, both
 * unchecked, as a worker taken over could, for test_queue_prepend.py to
 * show that the queue refuses what it should.
 */
static void
forge_head(struct session *s)
{
	const char	*v;
	size_t		 n, i;

	if ((v = getenv("POSTHASTE_FORGE_ADD")) != NULL &&
	    smtp_data_add_header(s, v) == -1)
		log_warnx("forge: POSTHASTE_FORGE_ADD refused");
	if ((v = getenv("POSTHASTE_FORGE_ADD2")) != NULL &&
	    smtp_data_add_header(s, v) == -1)
		log_warnx("forge: POSTHASTE_FORGE_ADD2 refused");
	if ((v = getenv("POSTHASTE_FORGE_HEAD")) != NULL &&
	    (n = strlen(v)) > 0 && n <= SPOOL_HEAD_MAX) {
		if (s->addhead == NULL &&
		    (s->addhead = malloc(SPOOL_HEAD_MAX)) == NULL)
			fatal("malloc");
		memcpy(s->addhead, v, n);
		s->addhead_len = n;
	}
	if ((v = getenv("POSTHASTE_FORGE_HEADLEN")) != NULL &&
	    (n = strtoul(v, NULL, 10)) > 10 && n < 1000000) {
		free(s->addhead);
		if ((s->addhead = malloc(n)) == NULL)
			fatal("malloc");
		for (i = 0; i < n; i++)
			s->addhead[i] = i % 50 == 49 ? '\n' : 'a';
		memcpy(s->addhead, "X:", 2);
		for (i = 49; i + 2 < n; i += 50)
			s->addhead[i + 1] = ' ';
		s->addhead[n - 1] = '\n';
		s->addhead_len = n;
	}
}
#endif

/*
 * Postfix's smtpd line for a message it takes: pflogsumm counts
 * receptions by "QUEUEID: client=" alone, and takes the bytes and the
 * sender from the queue's "QUEUEID: from=<>, size=" line only when it
 * has seen this one first (queue_commit.c).  So it goes out before the
 * commit request: every process's lines reach the parent through one
 * datagram socket, in the order they were sent.  A commit that then
 * fails leaves a client= line without a message, as Postfix's does for
 * a message refused after its queue file was made.
 */
static void
session_log_client(struct session *s)
{
	char	client[320], clean[(ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2) * 4];
	char	sasl[sizeof(clean) + 64] = "";

	session_client(s, client, sizeof(client));
	if (s->authname != NULL)
		snprintf(sasl, sizeof(sasl), ", sasl_method=%s, "
		    "sasl_username=%s", s->auth_mech ? s->auth_mech : "PLAIN",
		    log_sanitize(s->authname, clean, sizeof(clean)));
	log_info("%08x: client=%s%s%s%s", s->tx->msgid, client, sasl,
	    s->proxy_addr[0] ? ", proxy=" : "", s->proxy_addr);
}

static void
session_commit(struct session *s)
{
	struct txn		*tx = s->tx;
	struct queue_msg_req	 req;
	struct envelope		 evp;
	size_t			 i;

	memset(&evp, 0, sizeof(evp));
	evp.id = (uint64_t)tx->msgid << 32;
	evp.ctime = time(NULL);
	evp.sender = tx->mailfrom;
	evp.flags = tx->mp.evflags;
	if (s->flags & SS_TLS)
		evp.flags |= EF_TLS;
	/* RFC 8689 4.1: with REQUIRETLS, TLS-Required is ignored */
	if (tx->tls_optional && !(evp.flags & EF_REQUIRETLS))
		evp.flags |= EF_TLS_OPTIONAL;
	evp.flags |= EF_MEASURED;
	/* the added fields are CRLF lines on the wire, none begins with "." */
	evp.wire_size = (int64_t)(wirescan_size(&tx->wire) + s->addhead_len +
	    s->addhead_lines);
	if (tx->wire.header8bit)
		evp.flags |= EF_HEADER_8BIT;
	if (tx->wire.body8bit)
		evp.flags |= EF_BODY_8BIT;
	if (s->flags & SS_AUTH)
		evp.flags |= EF_AUTHENTICATED;
	if (s->flags & SS_LOCAL) {
		/* mailq shows a user what that user submitted */
		evp.flags |= EF_LOCAL;
		evp.uid = s->local_uid;
	}
	if (s->authname)
		snprintf(evp.authname, sizeof(evp.authname), "%s",
		    s->authname);
	snprintf(evp.envid, sizeof(evp.envid), "%s", tx->mp.envid);
	snprintf(evp.helo, sizeof(evp.helo), "%s", s->helo ? s->helo : "");
	snprintf(evp.client, sizeof(evp.client), "%s", s->addr);
	session_log_client(s);
	if (tx->hold[0]) {
		/* a filter quarantined it: held until smtpctl release */
		evp.flags |= EF_HOLD;
		snprintf(evp.hold_reason, sizeof(evp.hold_reason), "%s",
		    tx->hold);
		log_info("%08x: held: %s", tx->msgid, tx->hold);
	}
	/* the envelopes and the commit leave in one write */
	mproc_defer_begin();
	for (i = 0; i < tx->ndests; i++) {
		const struct sdest *sd = &tx->dests[i];

		evp.flags &= ~(EF_NOTIFY_NEVER | EF_NOTIFY_SUCCESS |
		    EF_NOTIFY_FAILURE | EF_NOTIFY_DELAY);
		evp.flags |= sd->notify;
		/* list mail: owner-LIST becomes the envelope sender */
		if (sd->d.sender_override.user[0] ||
		    sd->d.sender_override.domain[0])
			evp.sender = sd->d.sender_override;
		else
			evp.sender = tx->mailfrom;
		evp.rcpt = sd->rcpt;
		evp.dest = sd->d.dest;
		evp.dest_type = sd->d.dest_type;
		snprintf(evp.orcpt, sizeof(evp.orcpt), "%s",
		    sd->orcpt ? sd->orcpt : "");
		memcpy(evp.action, sd->d.action, sizeof(evp.action));
		memcpy(evp.user, sd->d.user, sizeof(evp.user));
		memcpy(evp.path, sd->d.path, sizeof(evp.path));
		/* lookup's seal on all of the above; the queue checks it */
		memcpy(evp.dest_mac, sd->d.mac, sizeof(evp.dest_mac));
#ifdef POSTHASTE_TEST_FORGE
		forge_dest(&evp);
#endif
		mproc_compose(&smtp_worker.queue, IMSG_QUEUE_ENVELOPE, s->id,
		    -1, &evp, sizeof(evp));
	}
	memset(&req, 0, sizeof(req));
	req.reqid = s->id;
	req.msgid = tx->msgid;
	req.size = tx->msgsize;
	req.spooled = tx->spooled;
	req.head = (uint32_t)s->addhead_len;
	req.nenvelopes = (uint32_t)tx->ndests;
	s->flags |= SS_WAIT;
	mproc_compose(&smtp_worker.queue, IMSG_QUEUE_COMMIT, s->id, -1, &req,
	    sizeof(req));
	mproc_defer_end();
}

void
session_queue_committed(const struct queue_msg_resp *r)
{
	struct session	*s;
	struct txn	*tx;
	char		 sender[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char		 client[320], clean[sizeof(sender) * 4];
	char		 helo[ADDR_DOMAIN_MAX * 4 + 1];

	if ((s = session_find(r->reqid)) == NULL || !(s->flags & SS_WAIT) ||
	    (tx = s->tx) == NULL || tx->msgid != r->msgid)
		return;
	s->flags &= ~SS_WAIT;
	/* the queue owns the file now, whatever the outcome */
	close(tx->msgfd);
	tx->msgfd = -1;
	if (r->status == PROTO_OK) {
		addr_to_string(&tx->mailfrom, sender, sizeof(sender));
		session_client(s, client, sizeof(client));
		/* the queue id of "queued as" and of the delivery lines */
		log_info("%08x: from=<%s>, size=%zu, nrcpt=%zu, client=%s, "
		    "helo=<%s>%s%s%s%s%s", tx->msgid, log_sanitize(sender,
		    clean, sizeof(clean)), tx->msgsize, tx->ndests, client,
		    s->helo ? log_sanitize(s->helo, helo, sizeof(helo)) : "",
		    s->authname ? ", sasl_username=" : "",
		    s->authname ? s->authname : "",
		    (tx->mp.evflags & EF_REQUIRETLS) ? ", requiretls=yes" :
		    tx->tls_optional ? ", tls_required=no" : "",
		    s->proxy_addr[0] ? ", proxy=" : "", s->proxy_addr);
		s->nmessages++;
		session_reply(s, "250 2.0.0 Ok: queued as %08x", tx->msgid);
	} else
		session_reply(s, "%s", r->reply[0] ? r->reply :
		    "451 4.3.0 Temporary queue failure");
	session_reset(s);
	s->state = S_HELO;
	session_set_timeout(s);
	session_process(s);
}

static void	msg_emit(struct txn *, char *, size_t);

/* a line we add to the message, as the client's lines go (msg_line) */
static void
msg_add_line(struct txn *tx, char *line, int n)
{
	if (n < 0 || (size_t)n >= SMTP_LINE_ADD_MAX)
		fatalx("msg_add_line: %d", n);
	msg_emit(tx, line, (size_t)n);
}

/* Message-ID and Date for submissions that lack them (RFC 6409 8) */
static void
msg_add_headers(struct session *s)
{
	struct txn	*tx = s->tx;
	char		 date[64], stamp[32], line[SMTP_LINE_ADD_MAX];
	int		 n;
	struct tm	 tm;
	time_t		 now;

	if (!(s->flags & (SS_AUTH | SS_LOCAL)))
		return;
	if (!tx->has_date) {
		format_date(date, sizeof(date));
		n = snprintf(line, sizeof(line), "Date: %s", date);
		msg_add_line(tx, line, n);
	}
	if (!tx->has_msgid) {
		now = time(NULL);
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		n = snprintf(line, sizeof(line), "Message-ID: <%s.%08x.%08x@%s>",
		    stamp, tx->msgid, arc4random(), session_hostname(s));
		msg_add_line(tx, line, n);
	}
}

static int
header_is(const char *line, size_t len, const char *name)
{
	size_t	n = strlen(name);

	return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* a field name: printable ASCII but ':' and space, then ':' */
static int
header_field(const char *line, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (line[i] == ':')
			return i > 0;
		if (line[i] <= 0x20 || line[i] >= 0x7f)
			return 0;
	}
	return 0;
}

/*
 * A line on its way to the spool: hashed, then buffered.  line has room
 * for its LF.
 */
static void
msg_emit(struct txn *tx, char *line, size_t len)
{
	if (tx->dkim != NULL)
		dkim_msg_line(tx->dkim, line, len);
	line[len] = '\n';
	evbuffer_add(tx->msgbuf, line, len + 1);
}

/*
 * An incoming Authentication-Results field is held until its last line
 * is in: one that claims our authserv-id, or cannot be read, is dropped
 * (RFC 8601 5); any other goes on.  Held lines are LF-joined.
 */
#define AR_HOLD_MAX	8192

static void
ar_release(struct session *s)
{
	struct txn	*tx = s->tx;
	char		*p, *nl, *end;

	if (tx->arlen == 0)
		return;
	if (smtp_checks_forged(s, tx->arhold, tx->arlen)) {
		log_info("%08x: an Authentication-Results field claiming to "
		    "be ours was removed", tx->msgid);
	} else {
		end = tx->arhold + tx->arlen;
		for (p = tx->arhold; p < end; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(end - p));
			msg_emit(tx, p, (size_t)(nl - p));
		}
	}
	tx->arlen = 0;
}

static int
ar_hold(struct txn *tx, const char *line, size_t len)
{
	if (tx->arhold == NULL && (tx->arhold = malloc(AR_HOLD_MAX)) == NULL)
		fatal("malloc");
	if (len + 1 > AR_HOLD_MAX - tx->arlen)
		return -1;
	memcpy(tx->arhold + tx->arlen, line, len);
	tx->arhold[tx->arlen + len] = '\n';
	tx->arlen += len + 1;
	return 0;
}

/*
 * RFC 8689 3: "TLS-Required: No" asks that the message be relayed even
 * where the TLS policy would hold it back.  The field's value is
 * gathered (folded lines too) and judged when the field ends; a value
 * too long to be "No" is not.  Only the header block counts.
 */
static void
tlsreq_add(struct txn *tx, const char *p, size_t len)
{
	if (len > sizeof(tx->tlsreq) - tx->tlsreq_len) {
		tx->tlsreq_over = 1;
		return;
	}
	memcpy(tx->tlsreq + tx->tlsreq_len, p, len);
	tx->tlsreq_len += len;
}

static void
tlsreq_end(struct txn *tx)
{
	if (tx->tlsreq_in && !tx->tlsreq_over &&
	    smtp_parse_tls_required(tx->tlsreq, tx->tlsreq_len))
		tx->tls_optional = 1;
	tx->tlsreq_in = 0;
}

/* one line of the message, transparency already undone, no CRLF */
static void
msg_line(struct session *s, char *line, size_t len)
{
	struct txn	*tx = s->tx;

	if (tx->data_err)
		return;
	tx->msgsize += len + 2;
	if (tx->msgsize > conf->max_message_size) {
		tx->data_err = DE_TOOBIG;
		return;
	}
	if (tx->in_headers && tx->arlen > 0) {
		/* a held Authentication-Results goes on, or is complete */
		if ((line[0] == ' ' || line[0] == '\t') &&
		    ar_hold(tx, line, len) == 0)
			return;
		ar_release(s);
	}
	if (tx->in_headers) {
		if (tx->tlsreq_in && len > 0 &&
		    (line[0] == ' ' || line[0] == '\t'))
			tlsreq_add(tx, line, len);
		else
			tlsreq_end(tx);
		if (len == 0) {
			tx->in_headers = 0;
			msg_add_headers(s);
		} else if (line[0] == ' ' || line[0] == '\t') {
			/* a folded header line */
		} else if (header_field(line, len)) {
			if (header_is(line, len, "TLS-Required")) {
				tx->tlsreq_in = 1;
				tx->tlsreq_over = 0;
				tx->tlsreq_len = 0;
				tlsreq_add(tx, line + 13, len - 13);
			}
			if (header_is(line, len, "Authentication-Results") &&
			    ar_hold(tx, line, len) == 0)
				return;
			if (header_is(line, len, "Received") &&
			    ++tx->nreceived >= SMTP_MAX_HOPS) {
				tx->data_err = DE_LOOP;
				return;
			}
			if (header_is(line, len, "Message-ID"))
				tx->has_msgid = 1;
			else if (header_is(line, len, "Date"))
				tx->has_date = 1;
		} else {
			/* no header block at all: make one */
			tx->in_headers = 0;
			if (s->flags & (SS_AUTH | SS_LOCAL)) {
				msg_add_headers(s);
				evbuffer_add(tx->msgbuf, "\n", 1);
			}
		}
	}
	/* the line sits in linebuf, which has room for its LF */
	msg_emit(tx, line, len);
	if (evbuffer_get_length(tx->msgbuf) >= SPOOL_FLUSH_SIZE &&
	    spool_flush(s) == -1)
		tx->data_err = DE_IO;
}

static const char *
data_error_reply(int err)
{
	switch (err) {
	case DE_TOOBIG:
		return "552 5.3.4 Message size exceeds fixed maximum "
		    "message size";
	case DE_LONGLINE:
		return "500 5.5.2 Line too long (RFC 5321 4.5.3.1.6)";
	case DE_LOOP:
		return "554 5.4.6 Too many hops: mail loop detected";
	case DE_BARE:
		return "554 5.6.0 Bare <CR> or <LF> in message; RFC 5321 "
		    "2.3.8 requires CRLF";
	case DE_NUL:
		return "554 5.6.0 NUL character in message; RFC 5322 2.1 "
		    "forbids it";
	case DE_SIGN:
		return "451 4.7.0 DKIM signing failed, try again later";
	case DE_POLICY:
		return "550 5.7.1 Message rejected by policy";
	case DE_POLICY_DEFER:
		return "451 4.7.1 Message deferred by policy, try again later";
	default:
		return "451 4.3.0 Local error writing the message";
	}
}

static void	msg_checked(struct session *, int);
static void	msg_filter(struct session *, int);
static void	msg_filtered(struct session *, int);
static void	msg_sign(struct session *, int);
static void	msg_signed(struct session *, int);
static void	msg_end_finish(struct session *, int);

/* the message is complete: check, sign, sync and commit it */
void
msg_end(struct session *s)
{
	struct txn	*tx = s->tx;
	int		 err = tx->data_err;

	if (!err && tx->in_headers) {
		/* a message of headers only */
		tlsreq_end(tx);
		ar_release(s);
		tx->in_headers = 0;
		msg_add_headers(s);
	}
	if (!err && spool_flush(s) == -1)
		err = DE_IO;
	if (!err && smtp_checks_end(s, msg_checked)) {
		s->flags |= SS_WAIT;	/* until lookup has checked it */
		return;
	}
	msg_filter(s, err);
}

/* lookup's verdict on a checked message: on to signing, or refused */
static void
msg_checked(struct session *s, int err)
{
	s->flags &= ~SS_WAIT;
	msg_filter(s, err);
	if (!(s->flags & SS_WAIT))
		session_process(s);
}

/* the mail filters' end of message (smtp_milter_eom.c), then signing */
static void
msg_filter(struct session *s, int err)
{
	if (!err && smtp_milter_stage(s, MILTER_STAGE_EOM, NULL,
	    msg_filtered))
		return;
	if (!err && s->tx->discard) {
		msg_filtered(s, MILTER_DISCARD);
		return;
	}
	msg_sign(s, err);
}

static void
msg_filtered(struct session *s, int verdict)
{
	struct txn	*tx = s->tx;

	switch (verdict) {
	case MILTER_CONTINUE:
		msg_sign(s, 0);
		return;
	case MILTER_DISCARD:
		/* the client is told it went well; nothing is kept */
		log_info("%08x: discarded by a mail filter", tx->msgid);
		session_reply(s, "250 2.0.0 Ok: queued as %08x", tx->msgid);
		break;
	default:
		smtp_milter_reply(s, "END-OF-MESSAGE", NULL);
		break;
	}
	session_reset(s);
	if (s->state != S_TLS)
		s->state = S_HELO;
	session_set_timeout(s);
}

static void
msg_sign(struct session *s, int err)
{
	if (!err && smtp_dkim_sign(s, msg_signed)) {
		s->flags |= SS_WAIT;	/* until the signatures are back */
		return;
	}
	msg_end_finish(s, err);
}

/* keys answered: the signatures are added, or the message failed */
static void
msg_signed(struct session *s, int ok)
{
	s->flags &= ~SS_WAIT;
	if (!ok)
		log_warnx("%08x: DKIM signing failed", s->tx->msgid);
	msg_end_finish(s, ok ? 0 : DE_SIGN);
	if (!(s->flags & SS_WAIT))
		session_process(s);
}

static void
msg_end_finish(struct session *s, int err)
{
	struct txn	*tx = s->tx;
	char		 reply[384];

#ifdef POSTHASTE_TEST_FORGE
	if (!err)
		forge_head(s);
#endif
	if (!err && spool_write_head(s) == -1)
		err = DE_IO;
	/*
	 * Where the queue commits with syncfs() (queue.h), that one call
	 * makes the body durable too; elsewhere the worker syncs the body
	 * and the queue the envelopes and names.
	 */
	if (!err && !QUEUE_SYNCFS && fdatasync(tx->msgfd) == -1) {
		log_warn("%08x: fdatasync", tx->msgid);
		err = DE_IO;
	}
	if (!err) {
		session_commit(s);
		return;
	}
	if (err == DE_LOOP)
		log_info("%08x: loop: %d Received: fields", tx->msgid,
		    tx->nreceived);
	if (err == DE_DMARC) {
		snprintf(reply, sizeof(reply), "550 5.7.1 Message rejected: "
		    "DMARC policy of %s (p=reject)", tx->dmarc_domain);
		session_log_reject(s, "END-OF-MESSAGE", reply, NULL);
		session_reply(s, "%s", reply);
	} else {
		session_log_reject(s, "END-OF-MESSAGE", data_error_reply(err),
		    NULL);
		session_reply(s, "%s", data_error_reply(err));
	}
	session_reset(s);
	s->state = S_HELO;
	session_set_timeout(s);
}

void
data_line(struct session *s, char *line, size_t len, int lflags)
{
	struct txn	*tx = s->tx;

	if (lflags & (LF_BARELF | LF_BARECR)) {
		/*
		 * Only CRLF.CRLF ends the data.  A bare LF or CR could make
		 * us and a later hop disagree on where a message ends (SMTP
		 * smuggling, CVE-2023-51764): refuse and hang up.
		 */
		char	reply[128];

		snprintf(reply, sizeof(reply), "521 5.5.2 %s Bare <LF> or "
		    "<CR> received; RFC 5321 2.3.8 requires CRLF",
		    session_hostname(s));
		log_info("%08x: bare %s in data", s->id,
		    (lflags & LF_BARELF) ? "LF" : "CR");
		session_log_reject(s, "END-OF-MESSAGE", reply, NULL);
		session_reset(s);
		session_reply_close(s, "%s", reply);
		return;
	}
	if (len == 1 && line[0] == '.') {
		msg_end(s);
		return;
	}
	if (lflags & LF_TOOLONG) {
		if (!tx->data_err)
			tx->data_err = DE_LONGLINE;
		return;
	}
	/*
	 * RFC 5322 2.1 and 5321 4.5.2 forbid NUL in a message, and stored
	 * verbatim it would reach every program and mailbox downstream:
	 * refuse the message at its end, the session goes on.
	 */
	if (lflags & LF_NUL) {
		if (!tx->data_err)
			tx->data_err = DE_NUL;
		return;
	}
	if (line[0] == '.') {		/* RFC 5321 4.5.2 */
		line++;
		len--;
	}
	msg_line(s, line, len);
}

/*
 * The octets of a BDAT chunk (RFC 3030).  They are stored as DATA's are,
 * with LF line ends, so the spool has one form whatever the client used.
 * A bare CR or LF is refused here too: the chunk's length frames the
 * message unambiguously, but the next hop may receive it as DATA, where
 * a bare line end is what SMTP smuggling is made of.  Returns 1 when it
 * made progress, 0 when it needs more input.
 */
int
bdat_consume(struct session *s)
{
	struct evbuffer	*in = s->in;
	struct txn	*tx = s->tx;
	size_t		 avail = evbuffer_get_length(in), n, len;
	int		 lflags, lng;

	n = avail < s->chunk_left ? avail : (size_t)s->chunk_left;
	if (n == 0 && s->chunk_left > 0)
		return 0;
	if (s->chunk_flags & CHUNK_DISCARD) {
		evbuffer_drain(in, n);
		s->chunk_left -= n;
		if (s->chunk_left > 0)
			return 1;
		s->state = s->tx ? S_RCPT : (s->helo ? S_HELO : S_CONNECTED);
		session_reply(s, "%s", s->pending);
		free(s->pending);
		s->pending = NULL;
		session_set_timeout(s);
		return 1;
	}
	evbuffer_remove_buffer(in, tx->partial, n);
	s->chunk_left -= n;
	lng = (tx->data_err == DE_LONGLINE);
	while (buf_getline(tx->partial, &lng, conf->max_line + 2, &len,
	    &lflags)) {
		if (lflags & LF_TOOLONG) {
			if (!tx->data_err)
				tx->data_err = DE_LONGLINE;
		} else if (lflags & (LF_BARELF | LF_BARECR)) {
			if (!tx->data_err)
				tx->data_err = DE_BARE;
		} else if (lflags & LF_NUL) {
			if (!tx->data_err)
				tx->data_err = DE_NUL;
		} else
			msg_line(s, linebuf, len);
	}
	if (lng && !tx->data_err)
		tx->data_err = DE_LONGLINE;
	if (s->chunk_left > 0)
		return 1;

	/* the chunk is complete */
	if (tx->data_err) {
		session_log_reject(s, "BDAT", data_error_reply(tx->data_err),
		    NULL);
		session_reply(s, "%s", data_error_reply(tx->data_err));
		session_reset(s);
		s->state = S_HELO;
		session_set_timeout(s);
		return 1;
	}
	if (!(s->chunk_flags & CHUNK_LAST)) {
		s->state = S_RCPT;
		session_reply(s, "250 2.0.0 %" PRIu64 " octets received",
		    s->chunk_size);
		session_set_timeout(s);
		return 1;
	}
	/* the last line may lack its CRLF: it still is a line */
	if ((len = evbuffer_get_length(tx->partial)) > 0) {
		evbuffer_remove(tx->partial, linebuf, len);
		linebuf[len] = '\0';
		if (memchr(linebuf, '\r', len) != NULL)
			tx->data_err = DE_BARE;
		else if (memchr(linebuf, '\0', len) != NULL)
			tx->data_err = DE_NUL;
		else
			msg_line(s, linebuf, len);
	}
	s->state = S_RCPT;
	msg_end(s);
	return 1;
}

