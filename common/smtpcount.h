/*
 * smtpcount.h -- the smtp workers' counters for the metrics: what
 * happened in SMTP sessions, counted across every worker (and every
 * generation of them) in memory the parent shares before it forks, and
 * read by the control process for "smtpctl show metrics" and GET
 * /metrics (common/smtpcount.c).
 */
#ifndef POSTHASTE_SMTPCOUNT_H
#define POSTHASTE_SMTPCOUNT_H

struct metrics;

enum smtpcount_event {
	SC_CONNECTION,		/* a session began (after PROXY, if any) */
	SC_REFUSED_TOTAL,	/* 421: the server's session limit */
	SC_REFUSED_PER_IP,	/* 421: the client address's limit */
	SC_AUTH_SUCCESS,
	SC_AUTH_FAILURE,	/* bad credentials (not our tempfail) */
	SC_TLS_12,		/* TLS established, by protocol version */
	SC_TLS_13,
	SC_TLS_OTHER,
	SC_MAX
};

/* a refused command (session_log_reject): stage as logged, the reply */
void	smtpcount_reject(const char *stage, const char *reply);

/*
 * a refusal by a rate limit (kind: enum conf_rate_kind, config.h), and
 * an event let through because the rate limit table had no room
 */
void	smtpcount_rate_limited(int kind);
void	smtpcount_rate_table_full(void);

/* in the parent, before control and any worker are forked */
void	smtpcount_init(void);
void	smtpcount_add(enum smtpcount_event);
/* sessions open now: +1 when one is counted, -1 when it ends */
void	smtpcount_open(int delta);
/* the counters as metric families (control) */
void	smtpcount_metrics(struct metrics *);

#endif
