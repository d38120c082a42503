/*
 * queue.h -- the queue process: spool, scheduler, bounces, control.
 */
#ifndef POSTHASTE_QUEUE_H
#define POSTHASTE_QUEUE_H

#include <stdint.h>

#include "envelope.h"
#include "mproc.h"
#include "proto.h"

/*
 * Group commit with one syncfs() per batch on Linux; elsewhere, fsync
 * of every envelope and directory (and the smtp worker syncs the body).
 */
#ifdef __linux__
#define QUEUE_SYNCFS	1
#else
#define QUEUE_SYNCFS	0
#endif

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
};

/*
 * struct ctl_reply.status: 0 done, 1 failed; CTL_STATUS_BUSY: control
 * refused the connection (too many clients, of this uid or in all) and
 * nothing was done; sendmail leaves the message in the offline directory.
 */
#define CTL_STATUS_BUSY		2

struct queue_stats {
	uint64_t	queued;
	uint64_t	envelopes;
	uint64_t	commit_batches;
	uint64_t	delivered;
	uint64_t	deferred;
	uint64_t	bounced;
};
extern struct queue_stats queue_stats;

void	queue_control_request(struct mproc *, const struct ctl_request *);
void	queue_ctl_reply(struct mproc *, uint32_t reqid, int end, int status,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* queue.c, for messages the queue writes itself */
int	queue_message_create(uint32_t *msgid, int *fd);
int	queue_message_commit(uint32_t msgid, const struct envelope *, size_t);
void	queue_message_abort(uint32_t msgid);
/* the committed message and its size (the file goes on after it) */
int	queue_open_message(uint32_t msgid, int64_t *body_size);
void	queue_bounce_done(uint64_t evpid);
uint32_t queue_schedule_domain(const char *domain, int subdomains);
void	queue_lookup_request(const struct lka_rcpt_req *);

/* bounce.c: delivery status notifications (RFC 3464) */
enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED };
int	bounce_wants(const struct envelope *, enum dsn_action);
/*
 * Copies the envelope and the result, and opens the message (the
 * envelope may go at once, but for DSN_FAILED: queue_bounce_done() is
 * called for it later).
 */
void	bounce_generate(const struct envelope *, enum dsn_action,
	    const struct delivery_result *);
void	bounce_lookup_dest(const struct lka_dest *);
void	bounce_lookup_result(const struct lka_result *);
/* a delivery result arrived for an envelope of the message */
void	bounce_settle(uint32_t msgid);
#ifdef POSTHASTE_FUZZ
/*
 * regress/fuzz/fuzz_bounce.c only (mk/fuzz.mk defines POSTHASTE_FUZZ;
 * no installed binary has it): the DSN that bounce_generate() would
 * write for one envelope, the original read from msgfd, written to
 * outfd as msgid.  0 or -1.
 */
int	bounce_fuzz_write(const struct envelope *, enum dsn_action,
	    const struct delivery_result *, int msgfd, int64_t size,
	    uint32_t msgid, int outfd);
#endif
/* queue.c: is an envelope of the message in flight? */
int	queue_message_busy(uint32_t msgid);

#endif
