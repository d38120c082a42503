/*
 * ctl.h -- the requests of the control socket (struct ctl_request.cmd):
 * what smtpctl(8) and sendmail(8) ask, the control process checks and
 * passes on, and the queue (or the parent) answers.
 */
#ifndef POSTHASTE_CTL_H
#define POSTHASTE_CTL_H

/* smtpctl commands (struct ctl_request.cmd) */
enum ctl_cmd {
	CTL_NONE,
	CTL_SHOW_QUEUE,
	CTL_SHOW_STATS,
	CTL_SHOW_STATUS,
	CTL_SHOW_MESSAGE,
	CTL_SHOW_ENVELOPE,
	CTL_SCHEDULE,
	CTL_REMOVE,
	CTL_PAUSE_ENVELOPE,
	CTL_RESUME_ENVELOPE,
	CTL_PAUSE_MDA,
	CTL_RESUME_MDA,
	CTL_PAUSE_MTA,
	CTL_RESUME_MTA,
	CTL_PAUSE_SMTP,
	CTL_RESUME_SMTP,
	CTL_LOG_VERBOSE,
	CTL_LOG_BRIEF,
	CTL_MONITOR,
	CTL_SUBMIT,		/* then SMTP on the same socket (sendmail) */
	CTL_SHOW_MESSAGE_BODY,
	CTL_UPDATE_TABLE,
	/* show queue as IMSG_CTL_QUEUE_ENTRY replies (smtpctl); the text
	 * replies of CTL_SHOW_QUEUE stay for mailq */
	CTL_SHOW_QUEUE_ENTRIES,
	/* the DMARC aggregate reports of the rows so far, now */
	CTL_DMARC_REPORT_NOW,
	/* the mail filters: IMSG_CTL_MILTER replies, from the parent */
	CTL_SHOW_MILTERS,
	/*
	 * smtpctl hold|release ID|all (root): EF_HOLD set, with "smtpctl
	 * hold by " and arg (smtpctl's user name) as its reason, or cleared
	 * and the envelope scheduled now; both written to the spool before
	 * the answer.
	 */
	CTL_HOLD,
	CTL_RELEASE,
	/* the TLS-RPT reports of the outcomes so far, now (root) */
	CTL_TLSRPT_REPORT_NOW,
	/*
	 * the counters and gauges in the Prometheus text format, a reply
	 * per line (anyone, as show stats; control asks it for GET /metrics)
	 */
	CTL_SHOW_METRICS,
	/*
	 * smtpctl requeue ID|all|from|to|domain (root), Postfix's postsuper
	 * -r: each selected envelope's recipient routed again by lookup
	 * under the configuration in force; rewritten (and synced) only
	 * when that gives exactly one destination, then scheduled now
	 * (queue/queue_requeue.c)
	 */
	CTL_REQUEUE,
	/*
	 * the rate limits' keys at or near their limit, a reply per line
	 * (root: client addresses and user names); control reads the
	 * table itself (common/ratelimit.c)
	 */
	CTL_SHOW_LIMITS,
	/*
	 * smtpctl reload (root): SIGHUP's reload, done by the parent, with
	 * its outcome as the answer (status 1 and why when nothing changed)
	 */
	CTL_RELOAD,
};

/*
 * struct ctl_request.match: which envelopes schedule, remove, hold,
 * release and requeue act on.  CTL_MATCH_ID: id (an envelope, a
 * message, 0 = all); the others: those whose sender, or recipient (as
 * the client gave it or after expansion), matches pattern, a shell glob
 * (fnmatch(3)) compared without regard to case; id is then 0.
 */
#define CTL_MATCH_ID		0
#define CTL_MATCH_SENDER	1
#define CTL_MATCH_RCPT		2

/*
 * struct ctl_reply.status: 0 done, 1 failed; CTL_STATUS_BUSY: control
 * refused the connection (too many clients, of this uid or in all) and
 * nothing was done; sendmail leaves the message in the offline directory.
 */
#define CTL_STATUS_BUSY		2

#endif
