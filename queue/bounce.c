/*
 * bounce.c -- delivery status notifications (RFC 3464, RFC 3461).
 *
 * A DSN is an ordinary message that the queue writes itself and sends
 * the normal way: its recipient (the original envelope sender) is
 * resolved by the lookup process like any RCPT, so a DSN to a local user
 * lands in a mailbox and one to a remote sender is relayed.  DSNs have
 * the null sender, so they never cause another DSN; a DSN that itself
 * fails goes to postmaster, once.
 *
 * One DSN per message and kind (failed, delayed, delivered, relayed)
 * covers the recipients whose outcome arrives together: while the lookup
 * of the DSN's recipient is under way, and then while other envelopes of
 * the same message are still in flight (at most BOUNCE_HOLD_SECS), a
 * further recipient joins the pending DSN instead of making its own
 * (RFC 3461 5.2.8: one DSN may describe many recipients).
 *
 * A DSN holds the original message open from the moment it is asked
 * for: a delivered envelope is removed at once (its message file may go
 * with it) and the DSN still reads the original.  A failed envelope is
 * kept in the queue until its DSN is committed, so a crash can never
 * lose both; a success report is not worth that (a crash in between
 * would deliver the message again), so a crash may lose one.
 */
#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "addr.h"
#include "log.h"
#include "queue.h"
#include "queue_int.h"
#include "proc.h"
#include "spool_msg.h"
#include "util.h"

#define BOUNCE_MAX_DESTS	16
#define BOUNCE_MAX_RCPTS	1000	/* per DSN; then another one */
#define BOUNCE_HOLD_SECS	10	/* waiting for a message's other
					 * envelopes in flight */
#define BOUNCE_COPY_MAX		(10 * 1024 * 1024)	/* of the original */

/* one recipient the DSN reports on */
struct bounce_rcpt {
	uint64_t		 evpid;
	int			 kept;		/* DSN_FAILED: waits for us */
	int			 remote;	/* a remote delivery */
	struct mailaddr		 dest;
	char			 orcpt[ENV_TEXT_MAX];
	char			 text[ENV_TEXT_MAX];	/* our diagnostic */
	char			 reply[ENV_TEXT_MAX];	/* the server's */
	char			 relay[256];	/* host[addr]:port, or none */
	time_t			 lasttry;
};

struct bounce {
	TAILQ_ENTRY(bounce)	 entry;
	uint32_t		 reqid;
	enum dsn_action		 action;
	struct envelope		 orig;		/* the first recipient's */
	int			 fd;		/* the original message */
	int64_t			 size;
	int64_t			 head;		/* headers added after it */
	struct bounce_rcpt	*rcpts;
	size_t			 nrcpts;
	struct lka_dest		 dests[BOUNCE_MAX_DESTS];
	size_t			 ndests;
	int			 answered;	/* lookup's result arrived */
	int			 refused;
	char			 why[256];	/* when refused */
	time_t			 created;
	struct event		*ev_hold;
};

static TAILQ_HEAD(, bounce) pending = TAILQ_HEAD_INITIALIZER(pending);
static uint32_t		 next_reqid;

static void	bounce_finish(struct bounce *);

static int
is_null_sender(const struct envelope *e)
{
	return e->sender.user[0] == '\0' && e->sender.domain[0] == '\0';
}

int
bounce_wants(const struct envelope *e, enum dsn_action action)
{
	uint32_t notify = e->flags & (EF_NOTIFY_NEVER | EF_NOTIFY_SUCCESS |
	    EF_NOTIFY_FAILURE | EF_NOTIFY_DELAY);

	if (is_null_sender(e)) {
		/* a failed DSN goes to postmaster, but only once */
		return action == DSN_FAILED && (e->flags & EF_BOUNCE) &&
		    !(e->flags & EF_DOUBLE_BOUNCE);
	}
	if (notify & EF_NOTIFY_NEVER)
		return 0;
	switch (action) {
	case DSN_FAILED:
		/* RFC 3461 4.1: no NOTIFY means FAILURE (and maybe DELAY) */
		return notify == 0 || (notify & EF_NOTIFY_FAILURE);
	case DSN_DELAYED:
		return notify == 0 || (notify & EF_NOTIFY_DELAY);
	case DSN_DELIVERED:
	case DSN_RELAYED:
		return (notify & EF_NOTIFY_SUCCESS) != 0;
	}
	return 0;
}

static int
same_sender(const struct envelope *a, const struct envelope *b)
{
	return strcmp(a->sender.user, b->sender.user) == 0 &&
	    strcmp(a->sender.domain, b->sender.domain) == 0;
}

/* a pending DSN of the same message and kind that can take one more */
static struct bounce *
bounce_joinable(const struct envelope *e, enum dsn_action action)
{
	struct bounce	*b;

	TAILQ_FOREACH(b, &pending, entry)
		if (msgid_of(b->orig.id) == msgid_of(e->id) &&
		    b->action == action && same_sender(&b->orig, e) &&
		    b->nrcpts < BOUNCE_MAX_RCPTS)
			return b;
	return NULL;
}

static int
bounce_add_rcpt(struct bounce *b, const struct envelope *e,
    const struct delivery_result *r)
{
	struct bounce_rcpt	*br;

	br = reallocarray(b->rcpts, b->nrcpts + 1, sizeof(*br));
	if (br == NULL)
		return -1;
	b->rcpts = br;
	br = &b->rcpts[b->nrcpts++];
	memset(br, 0, sizeof(*br));
	br->evpid = e->id;
	br->kept = b->action == DSN_FAILED;
	br->remote = e->dest_type == DEST_REMOTE;
	br->dest = e->dest;
	memcpy(br->orcpt, e->orcpt, sizeof(br->orcpt));
	snprintf(br->text, sizeof(br->text), "%s", r->text);
	snprintf(br->reply, sizeof(br->reply), "%s", r->reply);
	snprintf(br->relay, sizeof(br->relay), "%s", r->relay);
	br->lasttry = e->lasttry;
	return 0;
}

static void
bounce_free(struct bounce *b)
{
	if (b->ev_hold != NULL)
		event_free(b->ev_hold);
	if (b->fd != -1)
		close(b->fd);
	free(b->rcpts);
	free(b);
}

void
bounce_generate(const struct envelope *e, enum dsn_action action,
    const struct delivery_result *r)
{
	struct bounce		*b;
	struct lka_rcpt_req	 req;

	if ((b = bounce_joinable(e, action)) != NULL) {
		if (bounce_add_rcpt(b, e, r) == 0)
			return;
		log_warn("%016" PRIx64 ": DSN", e->id);
		goto fail;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		log_warn("%016" PRIx64 ": DSN", e->id);
		goto fail;
	}
	b->action = action;
	b->orig = *e;
	b->created = time(NULL);
	/* the original, read when the DSN is written: its file may go now */
	if ((b->fd = queue_open_message(msgid_of(e->id), &b->size,
	    &b->head)) == -1) {
		log_warn("%016" PRIx64 ": DSN: open the message", e->id);
		bounce_free(b);
		goto fail;
	}
	if (bounce_add_rcpt(b, e, r) == -1) {
		log_warn("%016" PRIx64 ": DSN", e->id);
		bounce_free(b);
		goto fail;
	}
	/* an id of bounce.c's: neither report_mail.c's nor requeue's */
	b->reqid = ++next_reqid & ~(REPORT_MAIL_REQID | REQUEUE_REQID);
	if (b->reqid == 0)
		b->reqid = next_reqid = 1;
	TAILQ_INSERT_TAIL(&pending, b, entry);

	memset(&req, 0, sizeof(req));
	req.reqid = b->reqid;
	req.flags = SF_LOCAL;		/* from the local system */
	snprintf(req.helo, sizeof(req.helo), "%s", conf->hostname);
	if (is_null_sender(e)) {
		/* postmaster of this host: a local name the rules know */
		snprintf(req.rcpt.user, sizeof(req.rcpt.user), "postmaster");
		snprintf(req.rcpt.domain, sizeof(req.rcpt.domain), "%s",
		    conf->hostname);
	} else
		req.rcpt = e->sender;
	queue_lookup_request(&req);
	return;
fail:
	/* a failed envelope must not wait for a DSN that will not come */
	if (action == DSN_FAILED)
		queue_bounce_done(e->id);
}

static struct bounce *
bounce_find(uint32_t reqid)
{
	struct bounce	*b;

	TAILQ_FOREACH(b, &pending, entry)
		if (b->reqid == reqid)
			return b;
	return NULL;
}

void
bounce_lookup_dest(const struct lka_dest *d)
{
	struct bounce	*b;

	if ((b = bounce_find(d->reqid)) == NULL || b->answered)
		fatalx("lookup answered an unknown bounce request");
	if (b->ndests < BOUNCE_MAX_DESTS)
		b->dests[b->ndests++] = *d;
}

static void
format_date(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	localtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* the first "X.Y.Z" in a diagnostic, else a default for the action */
/* the length of a run of 1 to 3 digits at p, or 0 */
static size_t
status_digits(const char *p)
{
	size_t	n = 0;

	while (n < 4 && p[n] >= '0' && p[n] <= '9')
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

static void
status_code(const char *diag, enum dsn_action action, char *out, size_t len)
{
	const char	*p;
	size_t		 n;

	/* class.subject.detail, RFC 3463: 1-3 digits each, no sign */
	for (p = diag; *p; p++) {
		if ((*p == '2' || *p == '4' || *p == '5') && (p == diag ||
		    p[-1] == ' ') && p[1] == '.' &&
		    (n = status_digits(p + 2)) > 0 && p[2 + n] == '.' &&
		    status_digits(p + 3 + n) > 0) {
			n = 3 + n + status_digits(p + 3 + n);
			if (p[n] != '\0' && p[n] != ' ')
				continue;
			snprintf(out, len, "%.*s", (int)n, p);
			return;
		}
	}
	snprintf(out, len, "%s", action == DSN_FAILED ? "5.0.0" :
	    action == DSN_DELAYED ? "4.0.0" : "2.0.0");
}

/*
 * The text of a diagnostic as US-ASCII without control characters: it
 * goes into a text/plain; charset=us-ascii part and a
 * message/delivery-status part, whose fields are US-ASCII (RFC 3464
 * 2.1.3), and a remote server's reply may hold any octet.
 */
static void
clean_text(const char *in, char *out, size_t len)
{
	size_t	o = 0;

	for (; *in && o + 1 < len; in++) {
		if ((unsigned char)*in >= 0x80)
			out[o++] = '?';
		else
			out[o++] = ((unsigned char)*in < 0x20 ||
			    *in == 0x7f) ? ' ' : *in;
	}
	out[o] = '\0';
}

static int
is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* copy the original message (or its header) into the DSN */
static int
append_original(struct evbuffer *out, const struct spool_msg *msg,
    int headers_only)
{
	struct evbuffer		*tmp;
	struct evbuffer_ptr	 p;
	char			 buf[16384];
	size_t			 limit = headers_only ? 256 * 1024 :
				    BOUNCE_COPY_MAX;
	int64_t			 off = 0;
	ssize_t			 n = 0;
	int			 truncated = 0;

	if ((tmp = evbuffer_new()) == NULL)
		return -1;
	while (evbuffer_get_length(tmp) < limit &&
	    (n = spool_msg_pread(msg, buf, sizeof(buf), off)) > 0) {
		evbuffer_add(tmp, buf, n);
		off += n;
	}
	if (n > 0)
		truncated = 1;
	if (headers_only) {
		p = evbuffer_search(tmp, "\n\n", 2, NULL);
		if (p.pos != -1) {
			evbuffer_remove_buffer(tmp, out, p.pos + 1);
			truncated = 0;
		} else
			evbuffer_add_buffer(out, tmp);
	} else
		evbuffer_add_buffer(out, tmp);
	if (truncated)
		evbuffer_add_printf(out, "\n[message truncated]\n");
	evbuffer_free(tmp);
	return n < 0 ? -1 : 0;
}

/* RFC 3461 4.2: ORCPT is addr-type ";" xtext; the DSN shows it decoded */
static void
original_recipient(const char *orcpt, char *out, size_t len)
{
	const char	*semi = strchr(orcpt, ';');
	char		 dec[ENV_TEXT_MAX];
	size_t		 n;

	out[0] = '\0';
	if (semi == NULL || (n = semi - orcpt) == 0 || n + 2 >= len ||
	    xtext_decode(semi + 1, dec, sizeof(dec)) < 0)
		return;
	memcpy(out, orcpt, n + 1);
	/*
	 * xtext that decodes to 8-bit text (an address written with
	 * "+C3+A9") has no place in a message/delivery-status field: it
	 * stays in the ASCII form the client gave.
	 */
	clean_text(is_ascii(dec) ? dec : semi + 1, out + n + 1, len - n - 1);
}

/* "host[addr]:port" -> host, for Remote-MTA: dns; */
static void
remote_host(const char *relay, char *out, size_t len)
{
	size_t	n = strcspn(relay, "[:");

	if (n == 0 || n >= len || strcmp(relay, "none") == 0) {
		out[0] = '\0';
		return;
	}
	memcpy(out, relay, n);
	out[n] = '\0';
}

/* is diag an SMTP reply: "NNN" then a space or its end? */
static int
is_smtp_reply(const char *diag)
{
	return diag[0] >= '2' && diag[0] <= '5' && diag[1] >= '0' &&
	    diag[1] <= '9' && diag[2] >= '0' && diag[2] <= '9' &&
	    (diag[3] == ' ' || diag[3] == '\0');
}

/* RFC 3464 2.3: the per-recipient fields */
static void
write_rcpt_fields(struct evbuffer *out, const struct bounce *b,
    const struct bounce_rcpt *br, const char *action)
{
	char	rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char	text[ENV_TEXT_MAX], orig[ENV_TEXT_MAX], host[256];
	char	status[16], date[64];

	addr_to_string(&br->dest, rcpt, sizeof(rcpt));
	status_code(br->text, b->action, status, sizeof(status));
	evbuffer_add_printf(out, "\nFinal-Recipient: rfc822; %s\n", rcpt);
	original_recipient(br->orcpt, orig, sizeof(orig));
	if (orig[0])
		evbuffer_add_printf(out, "Original-Recipient: %s\n", orig);
	evbuffer_add_printf(out, "Action: %s\nStatus: %s\n", action, status);
	host[0] = '\0';
	if (br->remote)
		remote_host(br->relay, host, sizeof(host));
	if (host[0])
		evbuffer_add_printf(out, "Remote-MTA: dns; %s\n", host);
	clean_text(br->reply, text, sizeof(text));
	if (text[0] && is_smtp_reply(text))
		evbuffer_add_printf(out, "Diagnostic-Code: smtp; %s\n", text);
	else {
		clean_text(br->text, text, sizeof(text));
		if (is_smtp_reply(text))
			evbuffer_add_printf(out, "Diagnostic-Code: smtp; %s\n",
			    text);
		else
			evbuffer_add_printf(out,
			    "Diagnostic-Code: X-Posthaste; %s\n", text);
	}
	format_date(br->lasttry ? br->lasttry : time(NULL), date,
	    sizeof(date));
	evbuffer_add_printf(out, "Last-Attempt-Date: %s\n", date);
}

static int
bounce_write(struct bounce *b, uint32_t msgid, int fd)
{
	const struct envelope	*e = &b->orig;
	struct evbuffer		*out;
	struct spool_msg	 msg;
	char			 date[64], arrival[64], origmsg[9];
	char			 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 diag[ENV_TEXT_MAX], boundary[300];
	char			 to[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	const char		*subject, *action, *intro;
	size_t			 i;
	int			 headers_only, rc = 0;

	if ((out = evbuffer_new()) == NULL)
		return -1;
	format_date(time(NULL), date, sizeof(date));
	format_date(e->ctime, arrival, sizeof(arrival));
	if (is_null_sender(e))
		snprintf(to, sizeof(to), "postmaster@%s", conf->hostname);
	else
		addr_to_string(&e->sender, to, sizeof(to));
	msgid_to_text(msgid_of(e->id), origmsg);
	snprintf(boundary, sizeof(boundary), "%08x/%s", msgid,
	    conf->hostname);
	switch (b->action) {
	case DSN_FAILED:
		subject = "Undelivered Mail Returned to Sender";
		action = "failed";
		intro = "I'm sorry to have to inform you that your message "
		    "could not\nbe delivered to one or more recipients.";
		break;
	case DSN_DELAYED:
		subject = "Delayed Mail (still being retried)";
		action = "delayed";
		intro = "Your message could not be delivered yet. The mail "
		    "system will keep\ntrying; you do not need to resend it.";
		break;
	case DSN_RELAYED:
		subject = "Successful Mail Relay Report";
		action = "relayed";
		intro = "Your message was passed on to the mail system "
		    "named below, which\ndoes not report deliveries: there "
		    "will be no further report of\nits delivery, only "
		    "perhaps of a failure.";
		break;
	default:
		subject = "Successful Mail Delivery Report";
		action = "delivered";
		intro = "Your message was successfully delivered to the "
		    "recipients below.";
		break;
	}
	/* RET=HDRS asks for headers only; delay and success reports too */
	headers_only = (e->flags & EF_DSN_RET_HDRS) ||
	    b->action != DSN_FAILED;

	evbuffer_add_printf(out,
	    "Received: by %s (%s) id %08x; %s\n"
	    "From: Mail Delivery System <MAILER-DAEMON@%s>\n"
	    "To: <%s>\n"
	    "Subject: %s\n"
	    "Date: %s\n"
	    "Message-ID: <%08x.dsn@%s>\n"
	    "Auto-Submitted: auto-replied\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\n"
	    "\tboundary=\"%s\"\n"
	    "\n"
	    "This is a MIME-encapsulated message.\n"
	    "\n"
	    "--%s\n"
	    "Content-Type: text/plain; charset=us-ascii\n"
	    "\n"
	    "This is the mail system at host %s.\n\n%s\n\n",
	    conf->hostname, SMTPD_NAME, msgid, date, conf->hostname, to,
	    subject, date, msgid, conf->hostname, boundary,
	    boundary, conf->hostname, intro);
	for (i = 0; i < b->nrcpts; i++) {
		addr_to_string(&b->rcpts[i].dest, rcpt, sizeof(rcpt));
		clean_text(b->rcpts[i].text, diag, sizeof(diag));
		evbuffer_add_printf(out, "<%s>: %s\n", rcpt, diag);
	}
	if (e->flags & EF_REQUIRETLS)
		evbuffer_add_printf(out, "\nThe message required TLS all the "
		    "way (REQUIRETLS), so this report\ndoes not include it, "
		    "nor its header.\n");
	evbuffer_add_printf(out,
	    "\n"
	    "--%s\n"
	    "Content-Type: message/delivery-status\n"
	    "\n"
	    "Reporting-MTA: dns; %s\n"
	    "X-Posthaste-Queue-ID: %s\n"
	    "Arrival-Date: %s\n",
	    boundary, conf->hostname, origmsg, arrival);
	if (e->envid[0])
		evbuffer_add_printf(out, "Original-Envelope-Id: %s\n",
		    e->envid);
	for (i = 0; i < b->nrcpts; i++)
		write_rcpt_fields(out, b, &b->rcpts[i], action);
	/*
	 * RFC 8689 5: a DSN about a REQUIRETLS message must itself go with
	 * REQUIRETLS unless it is redacted.  The way back to the sender may
	 * not offer it, so ours is redacted: no part of the original, not
	 * even its header (which says who wrote to whom about what), and it
	 * goes as ordinary mail.
	 */
	if (e->flags & EF_REQUIRETLS)
		goto end;
	evbuffer_add_printf(out, "\n--%s\nContent-Type: %s\n%s\n", boundary,
	    headers_only ? "text/rfc822-headers" : "message/rfc822",
	    (e->flags & EF_8BITMIME) ? "Content-Transfer-Encoding: 8bit\n" :
	    "");
	/* the original as delivered: the headers added at the top */
	msg.fd = b->fd;
	msg.body = b->size;
	msg.head = b->head;
	if (append_original(out, &msg, headers_only) == -1)
		rc = -1;
end:
	evbuffer_add_printf(out, "\n--%s--\n", boundary);
	while (rc == 0 && evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, fd) == -1 && errno != EINTR)
			rc = -1;
	if (rc == 0 && fsync(fd) == -1)
		rc = -1;
	evbuffer_free(out);
	return rc;
}

#ifdef POSTHASTE_FUZZ
int
bounce_fuzz_write(const struct envelope *e, enum dsn_action action,
    const struct delivery_result *r, int msgfd, int64_t size, uint32_t msgid,
    int outfd)
{
	struct bounce	b;
	int		rc;

	memset(&b, 0, sizeof(b));
	b.action = action;
	b.orig = *e;
	b.fd = msgfd;
	b.size = size;
	if (bounce_add_rcpt(&b, e, r) == -1)
		return -1;
	rc = bounce_write(&b, msgid, outfd);
	free(b.rcpts);
	return rc;
}
#endif

static const char *
action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_FAILED:
		return "failed";
	case DSN_DELAYED:
		return "delayed";
	case DSN_RELAYED:
		return "relayed";
	default:
		return "delivered";
	}
}

/* write, queue and forget the DSN, whatever lookup said */
static void
bounce_finish(struct bounce *b)
{
	struct envelope	 evps[BOUNCE_MAX_DESTS];
	uint32_t	 msgid;
	size_t		 i;
	int		 fd;

	TAILQ_REMOVE(&pending, b, entry);
	if (b->refused) {
		log_warnx("%016" PRIx64 ": no DSN: its recipient was refused "
		    "(%s)", b->orig.id, b->why);
		goto done;
	}
	if (queue_message_create(&msgid, &fd) == -1) {
		log_warnx("%016" PRIx64 ": cannot create DSN", b->orig.id);
		goto done;
	}
	if (bounce_write(b, msgid, fd) == -1) {
		log_warn("%016" PRIx64 ": writing DSN", b->orig.id);
		close(fd);
		queue_message_abort(msgid);
		goto done;
	}
	close(fd);
	memset(evps, 0, sizeof(evps));
	for (i = 0; i < b->ndests; i++) {
		struct envelope *n = &evps[i];

		queue_message_envelope(n, msgid, &b->dests[i]);
		n->flags = EF_BOUNCE | (b->orig.flags & EF_8BITMIME);
		if (is_null_sender(&b->orig))
			n->flags |= EF_DOUBLE_BOUNCE;
		if (!is_null_sender(&b->orig))
			n->rcpt = b->orig.sender;
		else
			n->rcpt = b->dests[i].dest;
	}
	if (queue_message_commit(msgid, evps, b->ndests) == -1) {
		log_warnx("%016" PRIx64 ": cannot queue DSN", b->orig.id);
		goto done;
	}
	if (b->nrcpts == 1)
		log_info("%08x: DSN (%s) for %016" PRIx64 " queued", msgid,
		    action_name(b->action), b->orig.id);
	else
		log_info("%08x: DSN (%s) for %016" PRIx64 " and %zu more "
		    "recipients of %08x queued", msgid, action_name(b->action),
		    b->orig.id, b->nrcpts - 1, msgid_of(b->orig.id));
done:
	/*
	 * Whatever happened, the failed envelopes go: keeping them would
	 * retry a bounce that cannot be made, forever.
	 */
	for (i = 0; i < b->nrcpts; i++)
		if (b->rcpts[i].kept)
			queue_bounce_done(b->rcpts[i].evpid);
	bounce_free(b);
}

static void
on_hold_timeout(evutil_socket_t fd, short ev, void *arg)
{
	bounce_finish(arg);
}

/*
 * Lookup answered: write the DSN now, unless envelopes of the same
 * message are still in flight -- their outcome may join it -- and the
 * DSN has not waited BOUNCE_HOLD_SECS yet.
 */
static void
bounce_try(struct bounce *b)
{
	struct timeval	tv = { 0, 0 };
	time_t		now = time(NULL);

	if (!b->answered)
		return;
	if (b->refused || !queue_message_busy(msgid_of(b->orig.id)) ||
	    now - b->created >= BOUNCE_HOLD_SECS) {
		bounce_finish(b);
		return;
	}
	if (b->ev_hold != NULL)
		return;		/* already waiting */
	if ((b->ev_hold = evtimer_new(ev_base, on_hold_timeout, b)) == NULL) {
		bounce_finish(b);
		return;
	}
	tv.tv_sec = BOUNCE_HOLD_SECS - (now - b->created);
	evtimer_add(b->ev_hold, &tv);
}

/* the queue got a delivery result for an envelope of this message */
void
bounce_settle(uint32_t msgid)
{
	struct bounce	*b, *tmp;

	TAILQ_FOREACH_SAFE(b, &pending, entry, tmp)
		if (msgid_of(b->orig.id) == msgid && b->answered)
			bounce_try(b);
}

void
bounce_lookup_result(const struct lka_result *r)
{
	struct bounce	*b;

	if ((b = bounce_find(r->reqid)) == NULL || b->answered)
		fatalx("lookup answered an unknown bounce request");
	b->answered = 1;
	if (r->status != PROTO_OK || b->ndests == 0) {
		b->refused = 1;
		clean_text(r->reply, b->why, sizeof(b->why));
	}
	bounce_try(b);
}
