/*
 * bounce.c -- delivery status notifications (RFC 3464, RFC 3461).
 *
 * A DSN is an ordinary message that the queue writes itself and sends
 * the normal way: its recipient (the original envelope sender) is
 * resolved by the lookup process like any RCPT, so a DSN to a local user
 * lands in a mailbox and one to a remote sender is relayed.  A failed
 * envelope is kept in the queue until its DSN is committed, so a crash
 * can never lose both.  DSNs have the null sender, so they never cause
 * another DSN; a DSN that itself fails goes to postmaster, once.
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

#include "log.h"
#include "queue.h"
#include "smtpd.h"
#include "util.h"

#define BOUNCE_MAX_DESTS	16
#define BOUNCE_COPY_MAX		(10 * 1024 * 1024)	/* of the original */

struct bounce {
	TAILQ_ENTRY(bounce)	 entry;
	uint32_t		 reqid;
	enum dsn_action		 action;
	struct envelope		 orig;
	char			 diag[ENV_TEXT_MAX];
	struct lka_dest		 dests[BOUNCE_MAX_DESTS];
	size_t			 ndests;
};

static TAILQ_HEAD(, bounce) pending = TAILQ_HEAD_INITIALIZER(pending);
static uint32_t		 next_reqid;

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
		return (notify & EF_NOTIFY_SUCCESS) != 0;
	}
	return 0;
}

void
bounce_generate(const struct envelope *e, enum dsn_action action,
    const char *diag)
{
	struct bounce		*b;
	struct lka_rcpt_req	 req;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		log_warn("bounce");
		if (action == DSN_FAILED)
			queue_bounce_done(e->id);
		return;
	}
	b->reqid = ++next_reqid;
	b->action = action;
	b->orig = *e;
	snprintf(b->diag, sizeof(b->diag), "%s", diag);
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

	if ((b = bounce_find(d->reqid)) == NULL)
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
static void
status_code(const char *diag, enum dsn_action action, char *out, size_t len)
{
	const char	*p;
	int		 a, b, c, n;

	for (p = diag; *p; p++) {
		if ((*p == '2' || *p == '4' || *p == '5') && (p == diag ||
		    p[-1] == ' ') && sscanf(p, "%1d.%3d.%3d%n", &a, &b, &c,
		    &n) == 3 && (p[n] == '\0' || p[n] == ' ')) {
			snprintf(out, len, "%d.%d.%d", a, b, c);
			return;
		}
	}
	snprintf(out, len, "%s", action == DSN_FAILED ? "5.0.0" :
	    action == DSN_DELAYED ? "4.0.0" : "2.0.0");
}

/* the text of a diagnostic without control characters */
static void
clean_text(const char *in, char *out, size_t len)
{
	size_t	o = 0;

	for (; *in && o + 1 < len; in++)
		out[o++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? ' ' :
		    *in;
	out[o] = '\0';
}

/* copy the original message (or its header) into the DSN */
static int
append_original(struct evbuffer *out, uint32_t msgid, int headers_only)
{
	struct evbuffer		*tmp;
	struct evbuffer_ptr	 p;
	char			 buf[16384];
	size_t			 limit = headers_only ? 256 * 1024 :
				    BOUNCE_COPY_MAX;
	int64_t			 size, off = 0;
	ssize_t			 n = 0;
	int			 fd, truncated = 0;

	if ((fd = queue_open_message(msgid, &size)) == -1)
		return -1;
	if ((tmp = evbuffer_new()) == NULL) {
		close(fd);
		return -1;
	}
	while (evbuffer_get_length(tmp) < limit &&
	    (n = msg_pread(fd, buf, sizeof(buf), off, size)) > 0) {
		evbuffer_add(tmp, buf, n);
		off += n;
	}
	if (n > 0)
		truncated = 1;
	close(fd);
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

static int
bounce_write(struct bounce *b, uint32_t msgid, int fd)
{
	const struct envelope	*e = &b->orig;
	struct evbuffer		*out;
	char			 date[64], arrival[64], status[16];
	char			 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 diag[ENV_TEXT_MAX], origmsg[9], boundary[300];
	char			 to[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	const char		*subject, *action, *intro;
	int			 headers_only, rc = 0;

	if ((out = evbuffer_new()) == NULL)
		return -1;
	format_date(time(NULL), date, sizeof(date));
	format_date(e->ctime, arrival, sizeof(arrival));
	status_code(b->diag, b->action, status, sizeof(status));
	clean_text(b->diag, diag, sizeof(diag));
	addr_to_string(&e->dest, rcpt, sizeof(rcpt));
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
	default:
		subject = "Successful Mail Delivery Report";
		action = "delivered";
		intro = "Your message was successfully delivered to the "
		    "recipient below.";
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
	    "This is the mail system at host %s.\n\n%s\n\n"
	    "<%s>: %s\n"
	    "\n",
	    conf->hostname, SMTPD_NAME, msgid, date, conf->hostname, to,
	    subject, date, msgid, conf->hostname, boundary,
	    boundary, conf->hostname, intro, rcpt, diag);
	evbuffer_add_printf(out,
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
	evbuffer_add_printf(out, "\nFinal-Recipient: rfc822; %s\n", rcpt);
	if (e->orcpt[0])
		evbuffer_add_printf(out, "Original-Recipient: %s\n", e->orcpt);
	evbuffer_add_printf(out, "Action: %s\nStatus: %s\n", action, status);
	if (diag[0] >= '2' && diag[0] <= '5' && diag[1] >= '0' &&
	    diag[1] <= '9' && diag[2] >= '0' && diag[2] <= '9' &&
	    diag[3] == ' ')
		evbuffer_add_printf(out, "Diagnostic-Code: smtp; %s\n", diag);
	else
		evbuffer_add_printf(out, "Diagnostic-Code: X-Posthaste; %s\n",
		    diag);
	if (e->lasttry)
		format_date(e->lasttry, arrival, sizeof(arrival));
	evbuffer_add_printf(out, "Last-Attempt-Date: %s\n\n", arrival);
	evbuffer_add_printf(out, "--%s\nContent-Type: %s\n%s\n", boundary,
	    headers_only ? "text/rfc822-headers" : "message/rfc822",
	    (e->flags & EF_8BITMIME) ? "Content-Transfer-Encoding: 8bit\n" :
	    "");
	if (append_original(out, msgid_of(e->id), headers_only) == -1)
		rc = -1;
	evbuffer_add_printf(out, "\n--%s--\n", boundary);
	while (rc == 0 && evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, fd) == -1 && errno != EINTR)
			rc = -1;
	if (rc == 0 && fsync(fd) == -1)
		rc = -1;
	evbuffer_free(out);
	return rc;
}

void
bounce_lookup_result(const struct lka_result *r)
{
	struct bounce	*b;
	struct envelope	 evps[BOUNCE_MAX_DESTS];
	uint32_t	 msgid;
	size_t		 i;
	int		 fd;

	if ((b = bounce_find(r->reqid)) == NULL)
		fatalx("lookup answered an unknown bounce request");
	TAILQ_REMOVE(&pending, b, entry);
	if (r->status != PROTO_OK || b->ndests == 0) {
		char clean[sizeof(r->reply)];

		clean_text(r->reply, clean, sizeof(clean));
		log_warnx("%016" PRIx64 ": no DSN: its recipient was refused "
		    "(%s)", b->orig.id, clean);
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

		n->id = (uint64_t)msgid << 32;
		n->ctime = time(NULL);
		n->flags = EF_BOUNCE | (b->orig.flags & EF_8BITMIME);
		if (b->orig.sender.user[0] == '\0' &&
		    b->orig.sender.domain[0] == '\0')
			n->flags |= EF_DOUBLE_BOUNCE;
		n->dest_type = b->dests[i].dest_type;
		n->dest = b->dests[i].dest;
		if (b->orig.sender.user[0] || b->orig.sender.domain[0])
			n->rcpt = b->orig.sender;
		else
			n->rcpt = b->dests[i].dest;
		memcpy(n->action, b->dests[i].action, sizeof(n->action));
		memcpy(n->user, b->dests[i].user, sizeof(n->user));
		memcpy(n->path, b->dests[i].path, sizeof(n->path));
		snprintf(n->helo, sizeof(n->helo), "%s", conf->hostname);
		snprintf(n->client, sizeof(n->client), "local");
	}
	if (queue_message_commit(msgid, evps, b->ndests) == -1) {
		log_warnx("%016" PRIx64 ": cannot queue DSN", b->orig.id);
		goto done;
	}
	log_info("%08x: DSN (%s) for %016" PRIx64 " queued", msgid,
	    b->action == DSN_FAILED ? "failed" : b->action == DSN_DELAYED ?
	    "delayed" : "delivered", b->orig.id);
done:
	/*
	 * Whatever happened, the failed envelope goes: keeping it would
	 * retry a bounce that cannot be made, forever.
	 */
	if (b->action == DSN_FAILED)
		queue_bounce_done(b->orig.id);
	free(b);
}
