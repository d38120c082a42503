/*
 * queue.h -- the queue process: spool, scheduler, bounces, control.
 */
#ifndef POSTHASTE_QUEUE_H
#define POSTHASTE_QUEUE_H

#include <stdint.h>

#include "envelope.h"
#include "metrics.h"
#include "mproc.h"
#include "ctl.h"
#include "proto.h"

struct queue_stats {
	uint64_t	queued;
	uint64_t	envelopes;
	uint64_t	commit_batches;
	uint64_t	delivered;
	uint64_t	deferred;
	uint64_t	bounced;
	/* the same by transport (QUEUE_TR_*), for the metrics */
	uint64_t	delivered_by[3];
	uint64_t	deferred_by[3];
	uint64_t	bounced_by[3];
	struct metrics_hist delivery_delay;	/* seconds, queued to sent */
	struct metrics_hist message_size;	/* bytes, as spooled */
	struct metrics_hist commit_latency;	/* seconds, asked to durable */
};
extern struct queue_stats queue_stats;
#define QUEUE_TR_LOCAL	0
#define QUEUE_TR_RELAY	1
#define QUEUE_TR_LMTP	2
/* queue_metrics.c: smtpctl show metrics, GET /metrics (control) */
void	queue_metrics_reply(struct mproc *, uint32_t reqid);
/* delivery delay histogram's upper bounds, seconds */
#define QUEUE_DELAY_NBOUNDS	10
extern const double queue_delay_bounds[QUEUE_DELAY_NBOUNDS];
#define QUEUE_SIZE_NBOUNDS	9
extern const double queue_size_bounds[QUEUE_SIZE_NBOUNDS];
#define QUEUE_COMMIT_NBOUNDS	10
extern const double queue_commit_bounds[QUEUE_COMMIT_NBOUNDS];
int	queue_transport(const struct envelope *);

void	queue_control_request(struct mproc *, const struct ctl_request *);
void	queue_ctl_reply(struct mproc *, uint32_t reqid, int end, int status,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* queue_commit.c, for messages the queue writes itself */
int	queue_message_create(uint32_t *msgid, int *fd);
int	queue_message_commit(uint32_t msgid, const struct envelope *, size_t);
void	queue_message_abort(uint32_t msgid);
/*
 * Its envelope for a destination lookup chose: id, time, destination,
 * helo and client filled; sender, recipient and flags are the caller's.
 */
struct lka_dest;
void	queue_message_envelope(struct envelope *, uint32_t msgid,
	    const struct lka_dest *);
/*
 * The committed message, its size and the size of the headers added
 * after it (the file goes on after both: spool_msg.h)
 */
int	queue_open_message(uint32_t msgid, int64_t *body_size,
	    int64_t *head_size);
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
/* queue.c, for regress/fuzz/fuzz_queue_control.c */
void	queue_fuzz_start(const char *spool, int parent, int control,
	    int mta);
void	queue_fuzz_seed(uint64_t);
#endif
/* queue_sched.c: is an envelope of the message in flight? */
int	queue_message_busy(uint32_t msgid);

#endif
