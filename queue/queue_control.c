/*
 * queue_control.c -- smtpctl's requests, as the control process passes
 * them on: show queue, status, stats, message or envelope; schedule,
 * remove, pause and resume, hold and release; requeue starts here and
 * goes on in queue_requeue.c.
 *
 * Each request comes with the asker's uid, as the kernel gave it to
 * control, which lets only root change the queue: one who is not root
 * sees only what he sent by local submission (ctl_may_see()).  An
 * envelope in flight cannot be taken back from its agent: remove takes
 * its records off the spool at once and the envelope when the attempt
 * ends (ctl_remove_in_flight(), ctl_removed_landed()).
 *
 * Hold and release change what is stored, unlike pause: EF_HOLD and its
 * reason are written to queue/EVPID as a retry rewrites an envelope
 * (qenv_update()), queue/ is synced, and only then is smtpctl answered,
 * so a hold it reported survives a crash (ctl_hold()).
 *
 * Schedule, remove, hold and release take the envelopes an id names (an
 * envelope, a message, all), or those whose sender or recipient matches
 * a pattern (ctl_selects()): "smtpctl remove from '*@spam.example'",
 * "smtpctl schedule domain example.org" (a flush: the recipients
 * "*@example.org").
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "queue.h"
#include "queue_int.h"
#include "spool_msg.h"
#include "util.h"

void
queue_control_dispatch(struct mproc *p, struct imsg *im)
{
	struct ctl_request	req;

	switch (im->hdr.type) {
	case IMSG_CTL_REQUEST:
		PROTO_READ(p, im, &req, proto_valid_ctl_request);
		queue_control_request(p, &req);
		break;
	default:
		fatalx("unexpected message %u from control", im->hdr.type);
	}
}

/* ---- smtpctl, through control ---- */

void
queue_ctl_reply(struct mproc *p, uint32_t reqid, int end, int status,
    const char *fmt, ...)
{
	struct ctl_reply	r;
	va_list			ap;

	memset(&r, 0, sizeof(r));
	r.reqid = reqid;
	r.end = end;
	r.status = status;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(r.text, sizeof(r.text), fmt, ap);
		va_end(ap);
	}
	mproc_compose(p, IMSG_CTL_REPLY, reqid, -1, &r, sizeof(r));
}

static int
ctl_may_see(const struct ctl_request *req, const struct qenv *e)
{
	/* root sees all; others only what they sent (local submission) */
	return req->uid == 0 || ((e->evp.flags & EF_LOCAL) &&
	    e->evp.uid == req->uid);
}

/*
 * An address against smtpctl's glob, both in lower case: admins write
 * "*@Example.ORG" and mean the domain, whatever case senders used.  The
 * empty sender (a bounce) is "", which the pattern "" matches.
 */
static int
ctl_glob(const char *pattern, const struct mailaddr *a)
{
	char	pat[sizeof(((struct ctl_request *)0)->pattern)];
	char	addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	size_t	i;

	if (addr_to_string(a, addr, sizeof(addr)) == -1)
		return 0;
	for (i = 0; addr[i] != '\0'; i++)
		addr[i] = tolower((unsigned char)addr[i]);
	for (i = 0; pattern[i] != '\0' && i + 1 < sizeof(pat); i++)
		pat[i] = tolower((unsigned char)pattern[i]);
	pat[i] = '\0';
	return fnmatch(pat, addr, 0) == 0;
}

/*
 * the envelopes schedule, remove, hold, release and requeue act on
 * (ctl.h)
 */
int
ctl_selects(const struct ctl_request *req, const struct qenv *e)
{
	switch (req->match) {
	case CTL_MATCH_SENDER:
		return ctl_glob(req->pattern, &e->evp.sender);
	case CTL_MATCH_RCPT:
		return ctl_glob(req->pattern, &e->evp.rcpt) ||
		    ctl_glob(req->pattern, &e->evp.dest);
	default:
		return req->id == 0 || e->evp.id == req->id ||
		    msgid_of(e->evp.id) == req->id;
	}
}

/*
 * smtpctl show message|envelope ID: the message as delivered (added
 * headers first, spool_msg.h), in chunks.  Each chunk is
 * a NUL-terminated text, so the reader gets the file as text.
 */
static void
ctl_show_file(struct mproc *p, const struct ctl_request *req)
{
	struct qenv	*e = NULL, *it;
	char		 buf[ENVELOPE_FILE_MAX];
	struct spool_msg msg;
	int64_t		 off = 0;
	ssize_t		 n;

	RB_FOREACH(it, qenv_tree, &envs)
		if (it->evp.id == req->id || (req->cmd == CTL_SHOW_MESSAGE &&
		    msgid_of(it->evp.id) == req->id)) {
			e = it;
			break;
		}
	if (e == NULL || req->id == 0) {
		queue_ctl_reply(p, req->reqid, 1, 1, "no such %s",
		    req->cmd == CTL_SHOW_MESSAGE ? "message" : "envelope");
		return;
	}
	if (req->cmd == CTL_SHOW_ENVELOPE) {
		/* as it is stored, in its file or in its message's */
		if ((n = envelope_dump(&e->evp, buf, sizeof(buf))) == -1) {
			queue_ctl_reply(p, req->reqid, 1, 1, "envelope does "
			    "not serialise");
			return;
		}
		queue_ctl_reply(p, req->reqid, 0, 0, "%s", buf);
		queue_ctl_reply(p, req->reqid, 1, 0, NULL);
		return;
	}
	if ((msg.fd = queue_open_message(e->msg->msgid, &msg.body,
	    &msg.head)) == -1) {
		queue_ctl_reply(p, req->reqid, 1, 1, "cannot open message");
		return;
	}
	/* text replies: a NUL byte shows as ^@ rather than cut the chunk */
	while ((n = spool_msg_pread(&msg, buf, 511, off)) > 0) {
		char	out[1024];
		ssize_t	i, o = 0;

		for (i = 0; i < n; i++) {
			if (buf[i] == '\0') {
				out[o++] = '^';
				out[o++] = '@';
			} else
				out[o++] = buf[i];
		}
		out[o] = '\0';
		off += n;
		queue_ctl_reply(p, req->reqid, 0, 0, "%s", out);
	}
	close(msg.fd);
	queue_ctl_reply(p, req->reqid, 1, n < 0, n < 0 ? "read error" : NULL);
}

static enum ctl_queue_state
ctl_state(const struct qenv *e)
{
	if (e->removed)
		return CTL_QSTATE_REMOVING;
	if (e->inflight)
		return CTL_QSTATE_INFLIGHT;
	if (e->bouncing)
		return CTL_QSTATE_BOUNCING;
	if (e->evp.flags & EF_HOLD)
		return CTL_QSTATE_HELD;
	if (e->evp.flags & EF_PAUSED)
		return CTL_QSTATE_PAUSED;
	return e->onlist == LIST_WAIT ? CTL_QSTATE_DEFERRED :
	    CTL_QSTATE_PENDING;
}

/*
 * smtpctl show queue: each envelope the asker may see, field by field;
 * smtpctl formats and escapes (the addresses may hold quotes and
 * backslashes, the error is what a remote server said).
 */
static void
ctl_show_entries(struct mproc *p, const struct ctl_request *req)
{
	struct ctl_queue_entry	 q;
	struct qenv		*e;
	time_t			 now = time(NULL);

	RB_FOREACH(e, qenv_tree, &envs) {
		if (!ctl_may_see(req, e))
			continue;
		memset(&q, 0, sizeof(q));
		q.reqid = req->reqid;
		q.state = ctl_state(e);
		q.evpid = e->evp.id;
		q.size = e->msg->head_size + e->msg->body_size;
		q.now = now;
		q.arrival = e->evp.ctime;
		q.lasttry = e->evp.lasttry;
		if (q.state == CTL_QSTATE_DEFERRED)
			q.nexttry = e->evp.nexttry;
		else if (q.state == CTL_QSTATE_PENDING)
			q.nexttry = e->evp.nexttry > now ? e->evp.nexttry : now;
		q.tries = e->evp.tries;
		addr_to_string(&e->evp.sender, q.sender, sizeof(q.sender));
		addr_to_string(&e->evp.dest, q.recipient, sizeof(q.recipient));
		memcpy(q.error, e->evp.errorline, sizeof(q.error));
		q.error[sizeof(q.error) - 1] = '\0';
		/* envelope_valid(): a held one has a reason, never "" */
		memcpy(q.held, e->evp.hold_reason, sizeof(q.held));
		mproc_compose(p, IMSG_CTL_QUEUE_ENTRY, req->reqid, -1, &q,
		    sizeof(q));
	}
	queue_ctl_reply(p, req->reqid, 1, 0, NULL);
}

/*
 * smtpctl remove: an envelope in flight cannot be taken back from its
 * agent.  Its records go from the spool now (a restart does not bring it
 * back) and the envelope itself when the attempt ends, whatever the
 * result: no retry, no DSN (ctl_removed_landed()).
 */
static void
ctl_remove_in_flight(struct qenv *e)
{
	char	name[17];

	if (e->removed)
		return;
	e->removed = 1;
	if (e->msg->inline_env)
		message_unlink(dfd_queue, e->msg->msgid);
	if (e->onfile) {
		evpid_to_text(e->evp.id, name);
		if (unlinkat(dfd_queue, name, 0) == -1 && errno != ENOENT)
			log_warn("unlink queue/%s", name);
		e->onfile = 0;
	}
	log_info("%016" PRIx64 ": removed by smtpctl while in flight: "
	    "gone when its delivery attempt ends", e->evp.id);
}

/* the attempt of an envelope removed in flight ended (r NULL: cut off) */
void
ctl_removed_landed(struct qenv *e, const struct delivery_result *r)
{
	if (r != NULL) {
		e->evp.tries++;
		log_delivery(e, r->status == PROTO_OK ? "sent" : "removed", r);
		if (r->status == PROTO_OK) {
			queue_stats.delivered++;
			queue_stats.delivered_by[queue_transport(&e->evp)]++;
		}
	}
	log_info("%016" PRIx64 ": removed by smtpctl", e->evp.id);
	qenv_remove(e);
}

/*
 * The reason of smtpctl hold, with the user smtpctl says runs it (only
 * root may: control checks): a plain user name, else the uid the kernel
 * gave control.
 */
static void
ctl_hold_reason(const struct ctl_request *req, char *out, size_t len)
{
	const char	*s = req->arg;
	size_t		 n = strlen(s);

	if (n == 0 || n > 32 || *s == '-' ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") != n)
		snprintf(out, len, "smtpctl hold by uid %u",
		    (unsigned)req->uid);
	else
		snprintf(out, len, "smtpctl hold by %.32s", s);
}

/*
 * smtpctl hold|release ID|all: EF_HOLD set with its reason, or cleared
 * and the envelope due now.  Each change is written to queue/EVPID (the
 * way a retry rewrites an envelope), then one sync of queue/ makes the
 * renames durable, and only then the answer.  An envelope whose record
 * cannot be written keeps its old state, in memory too.  One in flight
 * stays there: its result decides (a success removes it, a temporary
 * failure leaves it held and not expired, queue_deliver.c).  One being
 * removed or bounced is left alone: it is going anyway.
 */
static void
ctl_hold(struct mproc *p, const struct ctl_request *req)
{
	struct qenv	*e;
	char		 reason[sizeof(e->evp.hold_reason)];
	char		 old[sizeof(reason)], why[sizeof(reason) * 4];
	uint32_t	 flags;
	int64_t		 nexttry;
	int		 hold = req->cmd == CTL_HOLD;
	int		 matched = 0, n = 0, failed = 0;

	ctl_hold_reason(req, reason, sizeof(reason));
	RB_FOREACH(e, qenv_tree, &envs) {
		if (!ctl_selects(req, e))
			continue;
		matched++;
		if (e->removed || e->bouncing ||
		    hold == !!(e->evp.flags & EF_HOLD))
			continue;
		flags = e->evp.flags;
		nexttry = e->evp.nexttry;
		memcpy(old, e->evp.hold_reason, sizeof(old));
		if (hold) {
			e->evp.flags |= EF_HOLD;
			memcpy(e->evp.hold_reason, reason, sizeof(reason));
		} else {
			e->evp.flags &= ~EF_HOLD;
			memset(e->evp.hold_reason, 0,
			    sizeof(e->evp.hold_reason));
			e->evp.nexttry = 0;
		}
		if (qenv_update(e) == -1) {
			log_warnx("%016" PRIx64 ": cannot %s: envelope not "
			    "written", e->evp.id, hold ? "hold" : "release");
			e->evp.flags = flags;
			e->evp.nexttry = nexttry;
			memcpy(e->evp.hold_reason, old, sizeof(old));
			failed++;
			continue;
		}
		n++;
		if (hold)
			log_info("%016" PRIx64 ": held: %s", e->evp.id,
			    log_sanitize(reason, why, sizeof(why)));
		else
			log_info("%016" PRIx64 ": released by smtpctl",
			    e->evp.id);
		if (e->inflight)
			continue;	/* its result lists it, or not */
		if (hold)
			qenv_unlist(e);
		else
			sched_ready(e);
	}
	if (n > 0 && fsync(dfd_queue) == -1) {
		log_warn("fsync queue/ after smtpctl %s",
		    hold ? "hold" : "release");
		failed += n;
	}
	if (!hold)
		queue_schedule();
	/* "all" on an empty queue is not an error; a missing id is */
	if (failed)
		queue_ctl_reply(p, req->reqid, 1, 1, "%d envelopes %s, %d "
		    "not written to the spool (see the log)", n,
		    hold ? "held" : "released", failed);
	else if (matched == 0 && req->id != 0)
		queue_ctl_reply(p, req->reqid, 1, 1, "no such envelope");
	else
		queue_ctl_reply(p, req->reqid, 1, 0, "%d envelopes %s", n,
		    hold ? "held" : "released");
}

/* a held reason in a line of show queue's text: no '|' (the separator) */
static const char *
ctl_text_field(const char *in, char *out, size_t len)
{
	size_t	o = 0;

	for (; *in != '\0' && o + 5 < len; in++) {
		unsigned char c = (unsigned char)*in;

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '|') {
			out[o++] = c;
			continue;
		}
		o += snprintf(out + o, len - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

void
queue_control_request(struct mproc *p, const struct ctl_request *req)
{
	struct qenv	*e;
	char		 from[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char		 to[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char		 err[ENV_TEXT_MAX * 4];
	char		 held[ENV_TEXT_MAX];
	time_t		 now = time(NULL);
	int		 n = 0, nheld = 0;

	switch (req->cmd) {
	case CTL_SHOW_QUEUE:
		RB_FOREACH(e, qenv_tree, &envs) {
			if (!ctl_may_see(req, e))
				continue;
			addr_to_string(&e->evp.sender, from, sizeof(from));
			addr_to_string(&e->evp.dest, to, sizeof(to));
			/* the error last: it may hold '|' */
			queue_ctl_reply(p, req->reqid, 0, 0,
			    "%016" PRIx64 "|%s|%s|%lld|%u|%s|%s|%s", e->evp.id,
			    from, to, (long long)(now - e->evp.ctime),
			    e->evp.tries, e->removed ? "removing" :
			    e->inflight ? "inflight" :
			    (e->evp.flags & EF_HOLD) ? "held" :
			    (e->evp.flags & EF_PAUSED) ? "paused" :
			    e->onlist == LIST_WAIT ? "deferred" : "pending",
			    ctl_text_field(e->evp.hold_reason, held,
			    sizeof(held)),
			    log_sanitize(e->evp.errorline, err, sizeof(err)));
		}
		queue_ctl_reply(p, req->reqid, 1, 0, NULL);
		break;
	case CTL_SHOW_QUEUE_ENTRIES:
		ctl_show_entries(p, req);
		break;
	case CTL_SHOW_STATUS:
		RB_FOREACH(e, qenv_tree, &envs)
			n++;
		queue_ctl_reply(p, req->reqid, 0, 0, "mda: %s",
		    paused_mda ? "paused" : "running");
		queue_ctl_reply(p, req->reqid, 0, 0, "mta: %s",
		    paused_mta ? "paused" : q_mta ? "running" : "starting");
		queue_ctl_reply(p, req->reqid, 1, 0, "queue: %d envelopes, "
		    "%d in flight", n, inflight);
		break;
	case CTL_SHOW_MESSAGE:
	case CTL_SHOW_ENVELOPE:
		ctl_show_file(p, req);
		break;
	case CTL_SHOW_STATS:
		queue_ctl_reply(p, req->reqid, 0, 0, "queue.messages.queued=%"
		    PRIu64, queue_stats.queued);
		queue_ctl_reply(p, req->reqid, 0, 0, "queue.envelopes="
		    "%" PRIu64, queue_stats.envelopes);
		queue_ctl_reply(p, req->reqid, 0, 0, "queue.commit_batches="
		    "%" PRIu64, queue_stats.commit_batches);
		queue_ctl_reply(p, req->reqid, 0, 0, "delivery.ok=%" PRIu64,
		    queue_stats.delivered);
		queue_ctl_reply(p, req->reqid, 0, 0, "delivery.deferred=%"
		    PRIu64, queue_stats.deferred);
		queue_ctl_reply(p, req->reqid, 0, 0, "delivery.bounced=%"
		    PRIu64, queue_stats.bounced);
		queue_ctl_reply(p, req->reqid, 0, 0, "queue.inflight=%d",
		    inflight);
		RB_FOREACH(e, qenv_tree, &envs)
			n++;
		queue_ctl_reply(p, req->reqid, 0, 0, "queue.size=%d", n);
		queue_ctl_reply(p, req->reqid, 1, 0, NULL);
		break;
	case CTL_SHOW_METRICS:
		queue_metrics_reply(p, req->reqid);
		break;
	case CTL_SCHEDULE:
		RB_FOREACH(e, qenv_tree, &envs) {
			if (e->inflight || e->bouncing || !ctl_selects(req, e))
				continue;
			if (e->evp.flags & EF_HOLD) {	/* release first */
				nheld++;
				continue;
			}
			e->evp.nexttry = 0;
			sched_ready(e);
			n++;
		}
		queue_schedule();
		/* "all" on an empty queue is not an error; a missing id is */
		if (nheld)
			queue_ctl_reply(p, req->reqid, 1, 0, "%d envelopes "
			    "scheduled, %d held (smtpctl release)", n, nheld);
		else
			queue_ctl_reply(p, req->reqid, 1, n || !req->id ? 0 : 1,
			    n || !req->id ? "%d envelopes scheduled" :
			    "no such envelope", n);
		break;
	case CTL_HOLD:
	case CTL_RELEASE:
		ctl_hold(p, req);
		break;
	case CTL_REQUEUE:
		ctl_requeue(p, req);	/* answered when lookup has */
		break;
	case CTL_REMOVE: {
		struct qenv	*tmp;
		int		 flying = 0;

		RB_FOREACH_SAFE(e, qenv_tree, &envs, tmp) {
			if (e->bouncing || !ctl_selects(req, e))
				continue;
			if (e->inflight) {
				ctl_remove_in_flight(e);
				flying++;
				continue;
			}
			log_info("%016" PRIx64 ": removed by smtpctl",
			    e->evp.id);
			qenv_remove(e);
			n++;
		}
		if (n == 0 && flying == 0 && req->id != 0)
			queue_ctl_reply(p, req->reqid, 1, 1,
			    "no such envelope");
		else if (flying)
			queue_ctl_reply(p, req->reqid, 1, 0, "%d envelopes "
			    "removed, %d in flight: removed when their "
			    "delivery attempt ends", n, flying);
		else
			queue_ctl_reply(p, req->reqid, 1, 0,
			    "%d envelopes removed", n);
		break;
	}
	case CTL_PAUSE_ENVELOPE:
	case CTL_RESUME_ENVELOPE: {
		int	pause = req->cmd == CTL_PAUSE_ENVELOPE, matched = 0;

		/* the count is of those that changed, not of those seen */
		RB_FOREACH(e, qenv_tree, &envs) {
			if (!ctl_selects(req, e))
				continue;
			matched++;
			if (pause == !!(e->evp.flags & EF_PAUSED))
				continue;
			if (pause)
				e->evp.flags |= EF_PAUSED;
			else
				e->evp.flags &= ~EF_PAUSED;
			n++;
		}
		queue_schedule();
		/* "all" on an empty queue is not an error; a missing id is */
		queue_ctl_reply(p, req->reqid, 1, matched || !req->id ? 0 : 1,
		    matched || !req->id ? "%d envelopes %s" :
		    "no such envelope", n, pause ? "paused" : "resumed");
		break;
	}
	case CTL_PAUSE_MDA:
	case CTL_RESUME_MDA:
		paused_mda = req->cmd == CTL_PAUSE_MDA;
		queue_schedule();
		queue_ctl_reply(p, req->reqid, 1, 0, "mda %s",
		    paused_mda ? "paused" : "resumed");
		break;
	case CTL_PAUSE_MTA:
	case CTL_RESUME_MTA:
		paused_mta = req->cmd == CTL_PAUSE_MTA;
		queue_schedule();
		queue_ctl_reply(p, req->reqid, 1, 0, "mta %s",
		    paused_mta ? "paused" : "resumed");
		break;
	case CTL_DMARC_REPORT_NOW:
		if ((n = dmarc_send_now()) == -1)
			queue_ctl_reply(p, req->reqid, 1, 1, "DMARC reports "
			    "are off or cannot be sent now (see the log)");
		else
			queue_ctl_reply(p, req->reqid, 1, 0, "DMARC reports "
			    "for %d domains on their way", (int)n);
		break;
	case CTL_TLSRPT_REPORT_NOW:
		if ((n = tlsrpt_send_now()) == -1)
			queue_ctl_reply(p, req->reqid, 1, 1, "TLS-RPT reports "
			    "are off or cannot be sent now (see the log)");
		else
			queue_ctl_reply(p, req->reqid, 1, 0, "TLS-RPT reports "
			    "for %d domains on their way", (int)n);
		break;
	default:
		queue_ctl_reply(p, req->reqid, 1, 1, "unknown command");
		break;
	}
}
