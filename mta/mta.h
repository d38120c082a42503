/*
 * mta.h -- remote delivery: the SMTP client of the mta process.
 *
 * mta.c (routes, tasks, the queue's requests) and mta_session.c (the
 * sessions that carry them) call each other both ways on purpose: a
 * route hands a session its next task, and the session reports each
 * recipient's result and its own end back to the route.  One process,
 * one header; nothing outside mta/ includes it.
 */
#ifndef POSTHASTE_MTA_H
#define POSTHASTE_MTA_H

#include <stddef.h>
#include <stdint.h>

#include "mta_reply.h"
#include "mta_window.h"

/*
 * Inside the mta process: mta.c keeps routes (one per action and
 * destination domain, or per relay host) with their pending tasks (one
 * message with up to MTA_TASK_MAX_RCPT recipients); mta_session.c runs
 * the SMTP sessions that take tasks from a route.
 */
#ifdef POSTHASTE_MTA_INTERNAL

#include <sys/socket.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "envelope.h"
#include "spool_msg.h"
#include "mproc.h"

/* RFC 5321 4.5.3.1.8 minimum; "mta max-rcpt-per-msg" may say fewer */
#define MTA_TASK_MAX_RCPT	100
#define MTA_HOSTS_MAX		32	/* MX hosts x addresses we try */

enum mta_scheme {
	MTA_SCHEME_MX,		/* no relay host: the domain's MX */
	MTA_SCHEME_SMTP,
	MTA_SCHEME_SMTP_TLS,
	MTA_SCHEME_SMTPS,
	MTA_SCHEME_SMTP_NOTLS,
	MTA_SCHEME_LMTP,
};

/*
 * What a session's TLS proved about the peer (set when the handshake is
 * done; mta_tls_auth_name() for logs).  REQUIRETLS (RFC 8689) needs
 * MTA_TLS_VERIFIED or MTA_TLS_DANE.
 */
enum mta_tls_auth {
	MTA_TLS_NONE,		/* plain text */
	MTA_TLS_ANON,		/* encrypted; the peer not authenticated */
	MTA_TLS_VERIFIED,	/* PKIX chain to a trusted CA and the name
				 * (verify, secure, MTA-STS enforce) */
	MTA_TLS_DANE,		/* a usable TLSA record matched (RFC 7672) */
};
const char	*mta_tls_auth_name(enum mta_tls_auth);

struct mta_host {
	char			 name[256];
	uint32_t		 preference;
	struct sockaddr_storage	 ss;
	time_t			 dead_until;	/* connecting failed lately */
	time_t			 notls_until;	/* its TLS handshake failed */
	struct sockaddr_storage	 src;		/* our address toward it, as
						   of the last connect
						   (TLS-RPT's sending-mta-ip) */
	int			 dane;		/* LKA_TLSA_* of its TLSA lookup
						 * (routes asking for DANE) */
};

/* a usable TLSA record of one of a route's hosts (mta_dane.c) */
struct mta_tlsa {
	char			 host[256];
	uint8_t			 usage, selector, mtype;
	uint16_t		 datalen;
	unsigned char		*data;
};

struct mta_rcpt {
	struct envelope	 evp;
	int		 done;		/* a result was decided */
	int		 accepted;	/* RCPT got 2xx in this transaction */
	uint32_t	 dsn;		/* DR_DSN_*, for a success */
};

struct mta_task {
	TAILQ_ENTRY(mta_task)	 entry;
	struct mta_route	*route;
	uint32_t		 msgid;
	/* the spool message, read through spool_msg_pread() from 0 */
	struct spool_msg	 msg;
	int			 started;	/* a session has it */
	int			 requeued;	/* put back after a lost session */
	struct mta_rcpt		*rcpts;
	size_t			 nrcpts;
	/* what the message needs from the peer (mta_task_scan) */
	uint64_t		 wire_size;	/* CRLF and dot-stuffed */
	int			 body8bit;
	int			 header8bit;
	struct timespec		 t_arrived;
	struct timespec		 t_taken;
	uint32_t		 delay_conn;	/* ms of set-up it waited for */
	/* the server's reply behind the failures sent next (a DSN's
	 * Diagnostic-Code), or empty: not a reply of a server */
	char			 reply[ENV_TEXT_MAX];
};

struct mta_route {
	TAILQ_ENTRY(mta_route)	 entry;
	struct action		*action;
	char			 domain[256];	/* MX lookups; "" = relay */
	enum mta_scheme		 scheme;
	/* the TLS level for this destination: the action's "tls LEVEL",
	 * or the destination's entry in the TLS policy table */
	enum relay_tls		 tls_level;
	/* the policy table's entry (match= names), or NULL; bad: the
	 * entry does not parse, the route's mail is deferred */
	struct tls_policy	*tls_policy;
	int			 tls_policy_bad;
	/*
	 * RFC 8689: mail with REQUIRETLS, and mail with "TLS-Required: No"
	 * (EF_REQUIRETLS, EF_TLS_OPTIONAL), goes on routes of its own, so
	 * each session carries one kind.  requiretls: a host serves only
	 * if its certificate verified (MTA_TLS_VERIFIED or MTA_TLS_DANE)
	 * and it offers REQUIRETLS, else the mail bounces (5.7.10, 5.7.30).
	 * tls_optional: the hook for every TLS policy: where a failed
	 * certificate check or policy (verify, DANE, MTA-STS) would defer,
	 * a session of such a route goes on as "tls may" would instead.
	 */
	int			 requiretls;
	int			 tls_optional;
	char			 label[CONF_NAME_MAX];
	char			 host[256];
	uint16_t		 port;		/* 0 = scheme default */
	int			 resolving;
	int			 resolved;
	uint32_t		 reqid;
	struct mta_host		 hosts[MTA_HOSTS_MAX];
	size_t			 nhosts;
	struct mta_tlsa		*tlsa;		/* DANE: the hosts' records */
	size_t			 ntlsa;
	time_t			 resolved_at;
	TAILQ_HEAD(, mta_task)	 tasks;		/* waiting for a session */
	size_t			 ntasks;
	TAILQ_HEAD(, mta_session) sessions;
	int			 nsessions;
	int			 nconnecting;	/* not ready for mail yet */
	struct mta_window	 window;	/* slow start (mta_window.c) */
	struct event		*ev_kick;
	struct event		*ev_pace;	/* delay- or rate-per-dest */
	struct timespec		 next_take;	/* the pace allows a message */
	const char		*auth_user;	/* from the secrets table */
	const char		*auth_pass;
	int			 lasterr_status;	/* PROTO_* */
	char			 lasterr[ENV_TEXT_MAX];
	int			 lasterr_conn;	/* only "could not connect" */
	time_t			 lasterr_at;
	/* the domain's MTA-STS policy from the last resolution, or NULL
	 * (mta_sts.c) */
	struct lka_mx_sts	*sts;
};

/*
 * The connection of a session (mta_io.c): the socket of a plain session,
 * or the OpenSSL bufferevent of a TLS one.  in and out are the session's
 * buffers either way.  The callbacks are those of a bufferevent: input
 * arrived; the output drained to lowat or below; connected, EOF, error
 * or timeout (BEV_EVENT_*, err the errno of an error).  Each may free
 * the session.
 */
struct mta_io {
	TAILQ_ENTRY(mta_io)	 flushq;
	int			 fd;		/* -1: closed */
	int			 flags;
	int			 connect_err;	/* connect() refused at once */
	struct evbuffer		*in;
	struct evbuffer		*out;
	struct event		*ev_read;
	struct event		*ev_write;	/* connecting, or socket full */
	struct bufferevent	*bev;		/* TLS: owns socket and buffers */
	struct timeval		 timeout;	/* 0 s: none */
	size_t			 lowat;
	void			(*on_read)(void *);
	void			(*on_write)(void *);
	void			(*on_event)(void *, short, int);
	void			*arg;
};

extern SSL_CTX		*mta_ssl_ctx;
extern int		 mta_ssl_ca_loaded;

/* mta.c: the action's client certificate ("relay ... pki NAME") on ssl */
void	mta_tls_use_client_cert(SSL *, const struct action *);

/* mta.c */
void	mta_route_kick(struct mta_route *);
struct mta_task *mta_route_take(struct mta_route *);
void	mta_route_error(struct mta_route *, int status, const char *text);
/*
 * Polite delivery's feedback from the sessions: the destination took a
 * message (the window grows), or a host could not be reached or sent us
 * away at set-up or with 421 (the window shrinks, the host is left alone
 * for its back-off).
 */
void	mta_route_delivered(struct mta_route *, const struct mta_task *);
void	mta_route_refused(struct mta_route *, struct mta_host *,
	    const char *text);
/*
 * A session is ready for mail after setup_us: the host let it in (its
 * back-off starts again from the base), and the route learns how long a
 * new session takes.
 */
void	mta_route_ready(struct mta_route *, struct mta_host *,
	    uint32_t setup_us);
/* 0 while the host is backed off (by any route) */
int	mta_host_usable(const struct mta_host *, time_t now);
/* one recipient's outcome; text starts with its X.Y.Z status */
void	mta_rcpt_result(struct mta_task *, size_t, int status,
	    const char *relay, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
/* every recipient without a result yet */
void	mta_task_fail(struct mta_task *, int status, const char *relay,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* all recipients answered: free the task */
void	mta_task_free(struct mta_task *);
/* back to the front of its route, untouched (session lost early) */
void	mta_task_requeue(struct mta_task *);
/* the daemon stops: free it, its unanswered recipients left to the
 * queue (they are retried when our channel closes, or at the next start) */
void	mta_task_drop(struct mta_task *);
/* 1 when the recipient's or the sender's address is not ASCII */
int	mta_addr_utf8(const struct mailaddr *);
/* a reload replaced us: finish what we hold, keep no session idle */
int	mta_retiring(void);
/* the daemon stops: only a reply to an end of data is still awaited */
int	mta_stopping(void);
double	mta_elapsed_ms(const struct timespec *since);
/* the channel to lookup (mta_tlsrpt.c sends it the outcomes) */
struct mproc *mta_lookup_channel(void);

/*
 * mta_tlsrpt.c: one TLS outcome toward a policy domain for TLS-RPT (RFC
 * 8460): a session that negotiated TLS under a DANE or MTA-STS policy
 * (result TLSRPT_SUCCESS) or failed to (the failure's TLSRPT_* type of
 * common/tlsrpt.h); detail: free text for the report's
 * failure-reason-code, or NULL.
 */
void	mta_tlsrpt_note(const struct mta_route *, const struct mta_host *,
	    int policy_type, int result, const char *detail);
/*
 * The policy string of a route's reports: for TLSRPT_POLICY_STS the
 * MTA-STS policy text's lines (host NULL: the whole domain's), for
 * TLSRPT_POLICY_TLSA the host's TLSA records, each as "usage selector
 * mtype hexdata"; lines joined by '\n'.  Call it when the route or host
 * learns its policy, before the notes under it.
 */
void	mta_tlsrpt_policy(const struct mta_route *, const struct mta_host *,
	    int policy_type, const char *policy_string);
/* a connection to h was started on fd: remember our address (h->src) */
void	mta_tlsrpt_source(struct mta_host *, int fd);

/*
 * mta_dane.c: DANE for SMTP (RFC 7672) on OpenSSL's DANE verifier.
 * init: once, on the client context.  wanted: does the route's TLS level
 * ask lookup for TLSA records.  host_state: a host's LKA_TLSA_* under
 * the route's level (LKA_TLSA_NONE when the level is not dane).  note:
 * an IMSG_LKA_MX_TLSA of the route's lookup, kept for its hosts.
 * reset: forget them (a new lookup, or the route goes).  start: before
 * the handshake, the host's records and reference names on ssl; -1
 * when none could be set.  check: after it, 1 when a record matched the
 * peer's chain, else 0 and why.
 */
struct lka_mx_tlsa;
void	mta_dane_init(SSL_CTX *);
int	mta_dane_wanted(const struct mta_route *);
int	mta_dane_host_state(const struct mta_route *, const struct mta_host *);
void	mta_dane_note(struct mta_route *, const struct lka_mx_tlsa *);
void	mta_dane_reset(struct mta_route *);
int	mta_dane_start(SSL *, const struct mta_route *,
	    const struct mta_host *);
int	mta_dane_check(SSL *, char *why, size_t);

/*
 * mta_tlspolicy.c: "mta tls-policy <table>", read at start-up (before
 * the chroot); find: the entry for a recipient domain or relay host
 * (Postfix's order: the name, then ".parent" entries) into *tp: 1, 0
 * none, -1 an entry that does not parse (logged).
 */
struct tls_policy;
void	mta_tlspolicy_init(void);
int	mta_tlspolicy_find(const char *dest, struct tls_policy *tp);

/*
 * mta_tlscache.c: TLS session resumption.  init() once per client
 * context; resume(ssl, key) before the handshake: key names what the
 * session may be reused for (the same action, level, host and address,
 * and no DANE records: those are verified afresh); count(ssl) after it.
 */
void	mta_tlscache_init(SSL_CTX *);
void	mta_tlscache_resume(SSL *, const char *key);
void	mta_tlscache_count(SSL *);
void	mta_tlscache_stats(uint64_t *full, uint64_t *resumed);

/*
 * mta_sts.c: MTA-STS (RFC 8461).  mta_sts_wanted(): ask lookup for the
 * route's policy (an MX route at level may, encrypt or dane, and "mta
 * mta-sts" on).  mta_sts_set(): lookup's answer for the route.
 * mta_sts_filter_hosts(): the hosts are in; under enforce only those
 * the policy names stay; -1 when none does (the route's tasks were
 * deferred).  mta_sts_enforced(), mta_sts_testing(): the route is under
 * a policy of that mode.  mta_sts_verify_result(): an X509_V_* result
 * as a TLSRPT_* result type.
 */
struct lka_mx_sts;
int	mta_sts_wanted(const struct mta_route *);
void	mta_sts_set(struct mta_route *, const struct lka_mx_sts *);
int	mta_sts_filter_hosts(struct mta_route *);
int	mta_sts_enforced(const struct mta_route *);
int	mta_sts_testing(const struct mta_route *);
int	mta_sts_verify_result(long);
/* the policy names host; the reports' words when it does not */
int	mta_sts_host_listed(const struct mta_route *, const char *host);
#define MTA_STS_NOT_LISTED	"MX host not listed in the MTA-STS policy"

/* mta_io.c */
void	mta_io_init(void);
/* start a non-blocking connect on fd; -1 and errno if it failed at once */
int	mta_io_connect(struct mta_io *, int fd, const struct sockaddr *,
	    socklen_t);
void	mta_io_set_timeout(struct mta_io *, int secs);
/* what was added to out is written at the end of this turn of the loop */
void	mta_io_flush_later(struct mta_io *);
/* from now on over TLS, in the connecting state; takes the SSL */
void	mta_io_start_tls(struct mta_io *, SSL *);
unsigned long mta_io_tls_error(struct mta_io *);
void	mta_io_close(struct mta_io *);

/*
 * mta_7bit.c: 8-bit mail for a peer without 8BITMIME.  prepare() reads
 * the message once; -1: the task was failed (5.6.3 when it cannot be
 * converted).  feed() converts a block of the spooled message read in
 * order and adds it to out as it goes on the wire (CRLF, dot-stuffed;
 * *bol: the wire is at the start of a line); finish() after the last.
 */
struct mta_7bit;
struct evbuffer;
int	mta_7bit_prepare(struct mta_task *, const char *relay,
	    struct mta_7bit **);
int	mta_7bit_feed(struct mta_7bit *, const char *, size_t,
	    struct evbuffer *out, int *bol);
int	mta_7bit_finish(struct mta_7bit *, struct evbuffer *out, int *bol);
void	mta_7bit_free(struct mta_7bit *);

/* mta_session.c */
void	mta_session_new(struct mta_route *);
/* an idle session of the route, or NULL */
struct mta_session *mta_session_idle(struct mta_route *);
void	mta_session_give(struct mta_session *, struct mta_task *);
/* QUIT the route's sessions that have nothing to do */
void	mta_session_quit_idle(struct mta_route *);
/* the daemon stops: end every session of the route but those waiting
 * for the reply to their end of data */
void	mta_session_stop(struct mta_route *);

#endif /* POSTHASTE_MTA_INTERNAL */

#ifdef POSTHASTE_FUZZ
/* mta.c, for regress/fuzz/fuzz_mta_session.c only (mk/fuzz.mk) */
void	mta_fuzz_start(int queue, int lookup);
void	mta_fuzz_quit_idle(void);
void	mta_fuzz_forget_backoffs(void);
int	mta_fuzz_nroutes(void);
#endif

#endif
