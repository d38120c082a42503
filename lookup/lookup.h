/*
 * lookup.h -- the lookup process: rules, tables, recipient resolution.
 *
 * lookup.c dispatches; rcpt.c resolves a RCPT asynchronously and
 * answers the worker.  A request that asks a shared table whose answer
 * is not cached is parked and run again (table.h, table_stall_begin()).
 */
#ifndef POSTHASTE_LOOKUP_H
#define POSTHASTE_LOOKUP_H

#include <stddef.h>

#include "config.h"
#include "mproc.h"
#include "proto.h"

#include "table.h"

/*
 * Lookup-internal request flag (beside SF_* of proto.h): an address
 * produced by alias expansion, matched as if submitted locally.
 */
#define SF_INTERNAL	0x100

/*
 * rules.c: the first matching "match" rule for a recipient: 1 (*m set),
 * 0 none, -1 a table could not answer (a temporary failure; the request
 * may be stalled, table.h)
 */
int	rule_find(const struct lka_rcpt_req *, struct match **);
/* the same knowing the client's reverse DNS ("from rdns"); may be NULL */
int	rule_find_rdns(const struct lka_rcpt_req *, const struct lka_rdns *,
	    struct match **);
/* does any rule use "from rdns"? then RCPT needs the client's name */
int	rule_need_rdns(void);
int	rule_decided_statically(const struct match *);
int	rule_is_local_domain(const char *domain);

/* ctl_table.c: smtpctl table lookup (from the parent, answered to it) */
void	lookup_table_ctl(struct mproc *, const struct ctl_table_lookup *);

/* auth.c: AUTH checks, VRFY/EXPN answers, the postmaster fallback */
void	lookup_auth(struct mproc *, const struct lka_auth_req *);
/* the channel to the system-account helper (-1: none configured) */
void	auth_system_init(int fd);
void	lookup_vrfy(struct mproc *, const struct lka_rcpt_req *, int expn);
/* MAIL FROM: the listener's senders table, then check-sender-domain */
void	lookup_sender(struct mproc *, const struct lka_rcpt_req *);
int	lookup_client_trusted(const struct lka_rcpt_req *);
typedef void (*expand_emit)(void *arg, const struct lka_dest *);
int	lookup_postmaster(const struct lka_rcpt_req *, struct match *,
	    expand_emit, void *arg, uint32_t *ndest, char *reply,
	    size_t replylen);

/* expand.c: a recipient to its final destinations */
/*
 * Synchronous, without ~/.forward (VRFY, EXPN): returns PROTO_*; on
 * failure reply holds the SMTP reply.
 */
int	expand_recipient(const struct lka_rcpt_req *, struct action *,
	    expand_emit, void *arg, char *reply, size_t replylen);
/*
 * Asynchronous, with ~/.forward: forward(arg, e, user) is called when a
 * user's .forward is wanted (NULL: never); answer it, later or at once,
 * with expand_forward_done(e, fd or -1, PROTO_*), which takes the fd.
 * done() runs exactly once, at the end; e is gone after it.
 */
struct expand;
typedef void (*expand_forward)(void *arg, struct expand *, const char *user);
typedef void (*expand_done)(void *arg, int status, const char *reply,
    uint32_t ndest);
void	expand_start(const struct lka_rcpt_req *, struct action *,
	    expand_emit, expand_forward, expand_done, void *arg,
	    uint32_t maxdest);
void	expand_forward_done(struct expand *, int fd, int status);

/*
 * rcpt.c: IMSG_LKA_RCPT, asynchronous (rDNS for "from rdns" rules,
 * ~/.forward through the parent, shared tables).  The result comes
 * after the destinations, with RFC 5321 4.5.1's postmaster fallback.
 */
struct mproc;
void	rcpt_init(struct mproc *parent);
void	rcpt_start(struct mproc *, const struct lka_rcpt_req *);
void	rcpt_forward_reply(const struct forward_req *, int fd);

/* checks.c: the inbound checks an smtp worker asks for */
struct lka_dnsbl;
struct lka_spf;
struct lka_authcheck;
void	checks_init(void);
int	rule_client_trusted(const struct sockaddr_storage *);
/* rules.c: the rules with dkim or dmarc, at the end of data */
int	rule_message(const struct lka_rcpt_req *, const int *dkim,
	    size_t ndkim, int dmarc, int *line);
void	checks_dnsbl(struct mproc *, const struct lka_dnsbl *);
void	checks_spf(struct mproc *, const struct lka_spf *);
void	checks_authcheck(struct mproc *, const struct lka_authcheck *);

/*
 * dmarc_collect.c: at the end of checks_authcheck(), the message's row
 * for the DMARC aggregate reports, sent to the queue when "dmarc
 * reports" is on and the policy asks for them (proto.h,
 * IMSG_QUEUE_DMARC_RECORD).
 */
struct lka_authcheck_res;
struct dmarc_result;
void	dmarc_collect(const struct lka_authcheck *,
	    const struct lka_authcheck_res *, const struct dmarc_result *);
/*
 * tlsrpt_collect.c: a TLS outcome from the mta (IMSG_LKA_TLSRPT), sent on
 * to the queue with its domain's rua URIs when "tlsrpt reports" is on
 * and the domain asks for reports (IMSG_QUEUE_TLSRPT_RECORD).
 */
struct lka_tlsrpt;
void	tlsrpt_collect(const struct lka_tlsrpt *);
/* lookup.c: the channel to the queue */
struct mproc *lookup_queue_channel(void);

#endif
