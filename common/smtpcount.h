/*
 * smtpcount.h -- the smtp workers' counters for the metrics: what
 * happened in SMTP sessions, counted across every worker (and every
 * generation of them) in memory the parent shares before it forks, and
 * read by the control process for "smtpctl show metrics" and GET
 * /metrics (common/smtpcount.c).
 */
#ifndef POSTHASTE_SMTPCOUNT_H
#define POSTHASTE_SMTPCOUNT_H

#include <stdint.h>

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
	SC_DNSBL_LISTED,	/* a DNSBL named the client */
	SC_MAX
};

/* the checks whose results are counted (smtpcount_check()) */
enum smtpcount_check {
	SCK_SPF,		/* MAIL FROM's identity (RFC 7208) */
	SCK_DKIM,		/* each signature; "none" for none (RFC 6376) */
	SCK_DMARC,		/* RFC 7489 */
	SCK_MAX
};

/* what a milter answered (Postfix's names), smtpcount_milter() */
enum smtpcount_milter {
	SCM_ACCEPT,
	SCM_REJECT,
	SCM_TEMPFAIL,
	SCM_DISCARD,
	SCM_QUARANTINE,
	SCM_REPLYCODE,		/* a reply of its own (SMFIR_REPLYCODE) */
	SCM_MODIFY,		/* a message changed at its end */
	SCM_MAX
};

/* the listeners' gauges: at most this many, with labels this long */
#define SMTPCOUNT_LISTENERS	32
#define SMTPCOUNT_LABEL_MAX	80

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
/*
 * A check's result, by the word our Authentication-Results field gives
 * ("pass", "softfail", ...): a word not in the method's fixed list is
 * counted as "permerror" (never a label from outside).
 */
void	smtpcount_check(enum smtpcount_check, const char *result);
void	smtpcount_milter(enum smtpcount_milter);

/*
 * Sessions open per listener.  The parent names each listener of a
 * configuration (the address as written and the port, and the tag)
 * before it forks that configuration's workers; a name already known
 * keeps its slot, so a reload that keeps a listener keeps its gauge.
 * A worker finds the slot of its listener (-1: none, not counted) and
 * moves that gauge as it moves the total.
 */
void	smtpcount_listener_add(const char *ifname, uint16_t port,
	    const char *tag);
int	smtpcount_listener_slot(const char *ifname, uint16_t port,
	    const char *tag);
void	smtpcount_listener_open(int slot, int delta);

/* the counters as metric families (control) */
void	smtpcount_metrics(struct metrics *);

#endif
