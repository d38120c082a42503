/*
 * milter_connect.h -- the parent connects the smtp workers to their mail
 * filters and keeps the filters' counters for smtpctl show milters.
 */
#ifndef POSTHASTE_MILTER_CONNECT_H
#define POSTHASTE_MILTER_CONNECT_H

#include "proto.h"

struct mproc;

/* connects in progress for one worker; beyond that: TEMPFAIL at once */
#define MILTER_CONNECT_MAX_PENDING	256
/* a filter that is down is logged at most once in this many seconds */
#define MILTER_LOG_INTERVAL		10

/*
 * IMSG_MILTER_CONNECT from a worker (`worker' identifies it until
 * milter_worker_gone()): answered on `mp' with the same message, the
 * connected non-blocking socket or an error, now or when the connect
 * ends; never blocks.
 */
void	milter_connect_request(void *worker, struct mproc *mp,
	    const struct milter_connect *);
/* IMSG_MILTER_STATS from a worker: its latest totals for one filter */
void	milter_stats_update(void *worker, const struct milter_stats *);
/* the worker exited: its connects in progress and its counters go */
void	milter_worker_gone(void *worker);
/*
 * smtpctl show milters: an IMSG_CTL_MILTER per filter of the running
 * configuration to control for its client reqid, then the end.
 */
void	milter_show(struct mproc *control, uint32_t reqid);
/* the counters of one filter summed (the parent's own included) */
void	milter_stats_sum(const char *name, struct milter_stats *out);

#endif
