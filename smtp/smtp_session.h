/*
 * smtp_session.h -- one SMTP session in an smtp worker.
 *
 * The struct session is shared by the files of the state machine:
 * smtp_session.c (commands), smtp_data.c (DATA, BDAT), smtp_io.c (the
 * client socket, timeouts), smtp_tls.c (STARTTLS, smtps) and
 * smtp_auth.c (AUTH).  An idle session is kept small: transaction, AUTH
 * and TLS state are allocated only while they are in use.
 *
 * These files call each other both ways, on purpose: smtp_session.c
 * dispatches each command to the file that handles it, and that file
 * answers through the session (session_reply, session_close...) and
 * returns to the state machine when its part is done.  They are one
 * state machine cut into readable parts, in one process, sharing this
 * header; nothing outside smtp/ includes it.
 */
#ifndef POSTHASTE_SMTP_SESSION_H
#define POSTHASTE_SMTP_SESSION_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "mproc.h"
#include "proto.h"
#include "smtp_parse.h"
#include "tree.h"
#include "wirescan.h"

struct smtp_worker {
	int		id;
	struct mproc	parent;
	struct mproc	queue;
	struct mproc	lookup;
	size_t		nsessions;
};
extern struct smtp_worker smtp_worker;

enum sstate {
	S_CONNECTED,	/* greeted (or TLS restarted), no HELO yet */
	S_HELO,		/* HELO/EHLO done, no transaction */
	S_MAIL,		/* MAIL accepted */
	S_RCPT,		/* at least one RCPT attempted */
	S_DATA,		/* reading DATA lines */
	S_BDAT,		/* reading a BDAT chunk */
	S_AUTH,		/* in an AUTH exchange: lines are responses */
	S_TLS,		/* waiting to switch to TLS, or in the handshake */
};

/* session flags (SS_*; the SF_* of proto.h go to lookup) */
#define SS_EHLO		0x0001
#define SS_WAIT		0x0002	/* waiting for lookup, queue or a timer */
#define SS_CLOSING	0x0004	/* close once output is flushed */
#define SS_LONGLINE	0x0008	/* discarding the rest of a long line */
#define SS_TLS		0x0010	/* the session is encrypted */
#define SS_AUTH		0x0020	/* authenticated (authname set) */
#define SS_LOCAL	0x0040	/* local submission over a unix socket */
#define SS_OUTFULL	0x0080	/* too many unread replies: pause input */
#define SS_VRFY		0x0100	/* a VRFY is being looked up */
#define SS_EXPN		0x0200	/* an EXPN is being looked up */
#define SS_ETRN		0x0400	/* an ETRN is being looked up */
#define SS_SENDER	0x0800	/* MAIL FROM's domain is being checked */
#define SS_FLUSHQ	0x1000	/* replies waiting for io_flush() */
#define SS_TIMEDOUT	0x2000	/* timed out: 10 s more to say 421 */
#define SS_DNSBL	0x4000	/* a command waits for the DNS lists */
#define SS_MILTER_RCPT	0x8000	/* lookup resolves a milter's recipient */

/* one recipient after expansion, with its DSN parameters */
struct sdest {
	struct mailaddr		rcpt;		/* as given in RCPT TO */
	uint32_t		notify;		/* EF_NOTIFY_* */
	struct lka_dest		d;
	char			*orcpt;		/* NULL when not given */
};

struct strset;

/* the mail transaction, from MAIL to the end of data or RSET */
struct session;

struct txn {
	struct mailaddr		 mailfrom;
	struct smtp_mail_params	 mp;
	struct mailaddr		 rcpt_pending;	/* RCPT being looked up */
	struct smtp_rcpt_params	 rp_pending;
	size_t			 nrcpt_ok;	/* RCPT commands accepted */
	struct sdest		*dests;
	size_t			 ndests, capdests;
	size_t			 ndests_before;	/* at the pending RCPT */
	struct strset		*destset;	/* accepted ones, for dups */

	/* message data */
	uint32_t		 msgid;
	int			 msgfd;
	struct evbuffer		*msgbuf;	/* to the spool file */
	struct wirescan		 wire;		/* what was spooled, measured */
	size_t			 msgsize;
	uint64_t		 spooled;	/* bytes written to msgfd */
	int			 data_err;
	int			 in_headers;	/* still in the header block */
	int			 nreceived;	/* Received: fields seen */
	int			 has_msgid, has_date;
	/* RFC 8689 3: a "TLS-Required" field being read, and its verdict */
	int			 tlsreq_in, tlsreq_over, tls_optional;
	size_t			 tlsreq_len;
	char			 tlsreq[32];

	/* BDAT */
	int			 bdat;		/* the data comes in chunks */
	struct evbuffer		*partial;	/* bytes of an unfinished line */

	/* DKIM (smtp_dkim.c): the hasher, a signature being made */
	struct dkim_msg		*dkim;
	struct dkim_job		*dkim_job;

	/* the inbound checks (smtp_checks.c) */
	uint32_t		 serial;	/* this transaction, for replies */
	int			 checks;	/* they run on this message */
	int			 checks_waiting_spf;
	int			 checks_gated;	/* commands wait for SPF */
	struct lka_spf		 spf;		/* result -1 while pending */
	struct lka_spf		 spf_helo;	/* the HELO name's, likewise */
	void			(*checks_done)(struct session *, int);
	char			 dmarc_domain[256];
	/* an incoming Authentication-Results being held (smtp_data.c) */
	char			*arhold;
	size_t			 arlen;

	/* the milters (smtp_milter.c): ESMTP arguments as given, for them */
	char			*mail_args;
	char			*rcpt_args;
	int			 discard;	/* a filter said drop it */
	/* a spare file set aside at MAIL, so that the filters know the
	 * queue id ("i") from then on; DATA takes it */
	uint32_t		 resv_msgid;
	int			 resv_fd;
	char			 hold[ENV_TEXT_MAX / 4]; /* held in the queue: why */
};

struct auth_state;
struct milter_sess;

struct session {
	RB_ENTRY(session)	 node;
	TAILQ_ENTRY(session)	 flushq;	/* SS_FLUSHQ */
	uint32_t		 id;
	uint32_t		 flags;		/* SS_* */
	uint8_t			 state;		/* enum sstate */
	uint8_t			 nerrors;
	uint8_t			 nauthfail;
	uint8_t			 rate_exempt;	/* smtp_limits.c */
	uint8_t			 nrate_refused;	/* 450s by a rate limit */
	uint8_t			 chunk_flags;	/* the BDAT chunk being read */
	uint16_t		 nmessages;
	int			 fd;		/* the client socket */
	struct evbuffer		*in;		/* what the client sent */
	struct evbuffer		*out;		/* our replies */
	struct event		*ev_read;	/* plain sessions only */
	struct event		*ev_write;	/* plain, when the socket is full */
	struct bufferevent	*bev;		/* TLS sessions only */
	struct listener		*l;
	uint32_t		 lindex;	/* listener index, for lookup */
	uint32_t		 local_uid;	/* SS_LOCAL: the submitter */
	struct sockaddr_storage	 ss;
	char			 addr[46];	/* INET6_ADDRSTRLEN */
	char			*helo;
	char			*rdns;		/* NULL: "unknown" */
	uint8_t			 iprev;		/* IPREV_*: rDNS's verdict */
	uint8_t			 dnsbl;		/* DNSBL_*, smtp_checks.c */
	uint8_t			 trusted;	/* a "from src" network's */
	char			*authname;
	int			 ip;		/* sesscount handle */
	int			 lslot;		/* its listener's gauge */
	struct txn		*tx;		/* NULL outside a transaction */
	struct auth_state	*auth;		/* NULL outside AUTH */
	char			*pending;	/* a reply line held back */
	uint64_t		 chunk_left;	/* BDAT octets still to read */
	uint64_t		 chunk_size;
	struct event		*ev_delay;	/* AUTH failure delay */
	/* smtp_deadline.c: per-record deadlines */
	int64_t			 dl_line_start;	/* unfinished line, or 0 */
	int64_t			 dl_data_start;	/* DATA/BDAT phase, or 0 */
	uint64_t		 dl_data_bytes;	/* read since then */
	size_t			 dl_in_left;	/* s->in after processing */
	/*
	 * smtp_data.c: header fields to add at the top of the message,
	 * written after its data (spool_msg.h).  The buffer is made on
	 * first use and kept for the session's next messages; the length
	 * goes back to 0 with the transaction.
	 */
	char			*addhead;	/* SPOOL_HEAD_MAX bytes */
	size_t			 addhead_len;
	size_t			 addhead_lines;
	struct milter_sess	*milter;	/* NULL: no filters */
	const char		*auth_mech;	/* SS_AUTH: "PLAIN"... */
	/*
	 * smtp_proxy.c: a "proxy-protocol" listener's header being read
	 * (NULL otherwise), and once it is in, the balancer's address
	 * ("" when not proxied; ss and addr are then the client's) and
	 * where the client connected to (ss_family 0: ask the socket).
	 */
	struct smtp_proxy	*proxy;
	char			 proxy_addr[46];
	struct sockaddr_storage	 local_ss;
};

void	session_init(void);
void	session_lookup_sender(const struct lka_result *);
void	session_lookup_etrn(const struct lka_result *);
void	session_queue_etrn(const struct queue_etrn *);
void	session_new(int fd, struct listener *, uint32_t lindex,
	    struct sockaddr_storage *, socklen_t);
void	session_new_local(int fd, const struct local_session *);
void	session_begin(struct session *);	/* filters, then 220 */
/*
 * smtp_limits.c: the rate limits (common/ratelimit.c).  Each returns 1
 * when the session may go on, 0 when the command (or the connection)
 * was refused and answered.
 */
int	smtp_limit_connect(struct session *);
int	smtp_limit_mail(struct session *);
int	smtp_limit_rcpt(struct session *, const struct mailaddr *);
int	smtp_limit_auth_failed(struct session *);

/* the client is known (smtp_proxy.c): limits, rDNS, TLS or greeting */
void	session_start(struct session *);
void	session_set_addr(struct session *);	/* s->addr from s->ss */
void	session_shutdown_all(void);
void	session_lookup_dest(const struct lka_dest *);
void	session_lookup_result(const struct lka_result *);
void	session_rcpt_result(struct session *, const struct lka_result *);
void	session_lookup_rdns(const struct lka_rdns *);
void	session_queue_created(const struct queue_msg_resp *, int fd);
void	session_queue_committed(const struct queue_msg_resp *);
void	smtp_maybe_exit(void);
int	smtp_stopping(void);	/* smtp.c: shutting down or retiring */

/* smtp_session.c, for smtp_tls.c and smtp_auth.c */
struct session	*session_find(uint32_t id);
void	session_reply(struct session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	session_reply_close(struct session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	session_error(struct session *);
void	session_close(struct session *);
void	session_process(struct session *);
void	session_timeout(struct session *);
void	session_drained(struct session *);
const char *session_hostname(const struct session *);
const char *session_client(const struct session *, char *, size_t);
void	session_log_reject(const struct session *, const char *stage,
	    const char *reply, const struct mailaddr *rcpt);

void	session_rcpt_request(const struct session *, struct lka_rcpt_req *);
/* smtp_session.c, for smtp_query.c */
void	session_lka_request(const struct session *, struct lka_rcpt_req *);
void	session_reject(struct session *, const char *,
	    const struct mailaddr *, const char *, ...)
	    __attribute__((format(printf, 4, 5)));
/* refuse and hang up, with a reject line (session_log_reject()) */
void	session_reject_close(struct session *, const char *,
	    const char *, ...) __attribute__((format(printf, 3, 4)));

/* smtp_query.c: VRFY, EXPN, HELP, ETRN */
void	cmd_vrfy(struct session *, char *args, int expn);
void	vrfy_dest(struct session *, const struct lka_dest *);
void	vrfy_result(struct session *, const struct lka_result *);
void	cmd_help(struct session *);
void	cmd_etrn(struct session *, char *args);

/* smtp_rcache.c: recipients lookup accepted a moment ago */
int	rcache_replay(struct session *, const struct lka_rcpt_req *);
void	rcache_store(const struct session *, const struct lka_result *);
uint32_t session_lka_flags(const struct session *);

/* smtp_io.c: the client socket */
void	smtp_io_init(size_t input_max);
int	session_io_open(struct session *);
void	session_io_tls(struct session *, struct bufferevent *);
void	session_io_close(struct session *);
void	session_io_flush_later(struct session *);
void	session_io_update(struct session *);
void	session_set_timeout(struct session *);

/* smtp_proxy.c: the PROXY protocol header, on listeners that want it */
int	smtp_proxy_trusted(const struct listener *,
	    const struct sockaddr_storage *);
int	smtp_proxy_start(struct session *);	/* -1: close the session */
void	smtp_proxy_free(struct session *);

/* smtp_deadline.c: slowloris */
int	session_deadline_check(struct session *);
void	session_deadline_update(struct session *, size_t lines);

/* smtp_tls.c */
void	smtp_tls_init(void);		/* as root, before the drop */
int	smtp_tls_available(const struct session *);
void	smtp_tls_starttls(struct session *);	/* after "220 Ready" */
int	smtp_tls_accept(struct session *);	/* smtps: at connect */
void	smtp_tls_connected(struct session *);
const char *smtp_tls_describe(const struct session *, char *, size_t);

/* smtp_auth.c */
int	smtp_auth_offered(const struct session *);
int	smtp_auth_required(const struct session *);
const char *smtp_auth_mechanisms(const struct session *);
void	smtp_auth_command(struct session *, char *args);
void	smtp_auth_line(struct session *, char *line);
void	smtp_auth_result(struct session *, const struct lka_result *);
void	smtp_auth_free(struct session *);


/*
 * Shared by smtp_session.c and smtp_data.c only.
 */
struct evbuffer;
extern char	*linebuf;	/* the line being handled, shared */

#define SMTP_CMD_MAX		512	/* RFC 5321 4.5.3.1.4, incl. CRLF */
#define SMTP_AUTH_LINE_MAX	12288	/* RFC 4954 4, AUTH lines */
#define SMTP_MAX_ERRORS		20	/* bad commands before we hang up */
#define SMTP_MAX_HOPS		100	/* Received: fields, RFC 5321 6.3 */
#define SPOOL_FLUSH_SIZE	65536
#define OUTPUT_MAX		65536	/* unread replies before we pause */
#define INPUT_HIWAT		65536	/* unprocessed input we buffer */

/* data errors, answered at end of data */
#define DE_TOOBIG	1
#define DE_LONGLINE	2
#define DE_IO		3
#define DE_LOOP		4
#define DE_BARE		5	/* bare CR or LF in a BDAT chunk */
#define DE_NUL		6	/* a NUL in the message (RFC 5322 2.1) */
#define DE_SIGN		7	/* the DKIM signature could not be made */
#define DE_DMARC	8	/* DMARC p=reject failed (tx->dmarc_domain) */
#define DE_POLICY	9	/* a rule with dkim or dmarc: reject */
#define DE_POLICY_DEFER	10	/* likewise: defer */
/* a line the worker adds to the message (Date, Message-ID) */
#define SMTP_LINE_ADD_MAX	1024

/* line flags from buf_getline() */
#define LF_BARELF	0x1
#define LF_BARECR	0x2
#define LF_TOOLONG	0x4
#define LF_NUL		0x8

/* session.chunk_flags: the BDAT chunk being read */
#define CHUNK_LAST	0x1
#define CHUNK_DISCARD	0x2	/* read and drop; s->pending is the reply */

void	session_reset(struct session *s);
int	buf_getline(struct evbuffer *in, int *longp, size_t max,
	    size_t *lenp, int *lflags);
void	cmd_data(struct session *s, char *args);
void	cmd_bdat(struct session *s, char *args);
void	msg_end(struct session *s);
/*
 * At the end of data, before the commit: one header field to put at the
 * top of the message as delivered, above the message's own header and
 * above the fields added before it (as trace fields go, RFC 5321 4.4):
 * add Authentication-Results, then sign and add DKIM-Signature, and the
 * signature is on top.  text is "Name: value", folded lines separated by
 * CRLF or LF and beginning with SP or HTAB, with or without a final line
 * end; printable US-ASCII only (RFC 8601 and 6376 fields are).  The
 * fields are written after the message data with one pwrite(2) at the
 * commit, and the queue is told their length (queue_commit.c checks
 * them).  0 if added, -1 if the text is not such a field or the fields
 * would pass SPOOL_HEAD_MAX: nothing is added then.  For the smtp
 * worker's own use (the lead's end-of-data checks and signing); nothing
 * calls it yet.
 */
int	smtp_data_add_header(struct session *s, const char *text);

/* smtp_checks.c */
#define IPREV_UNKNOWN	0
#define IPREV_PASS	1
#define IPREV_FAIL	2
#define IPREV_TEMPERROR	3
#define DNSBL_NONE	0
#define DNSBL_PENDING	1
#define DNSBL_CLEAN	2
#define DNSBL_LISTED	3
int	smtp_client_is_loopback(const struct sockaddr_storage *);
int	smtp_checks_active(const struct session *);
void	smtp_checks_connect(struct session *);
int	smtp_checks_gate(struct session *);
void	smtp_checks_dnsbl_reply(const struct lka_dnsbl *);
void	smtp_checks_mail(struct session *);
void	smtp_checks_spf_reply(const struct lka_spf *);
/*
 * At the end of data: 0 when the message is not checked; 1 when the
 * checks are under way: done(s, err) follows with the header added and
 * err 0 or DE_DMARC.
 */
int	smtp_checks_end(struct session *, void (*done)(struct session *, int));
void	smtp_checks_authcheck_reply(const struct lka_authcheck_res *);
int	smtp_checks_forged(const struct session *, const char *, size_t);

/* smtp_dkim.c */
void	smtp_dkim_init(int fd);
/* does this session's mail get signed (if its From: domain has keys)? */
int	smtp_dkim_want_sign(const struct session *);
/*
 * At the end of data: 0 when there is nothing to sign; 1 when the
 * signatures are being made: done(s, ok) follows, from the loop, with
 * the DKIM-Signature fields added (smtp_data_add_header()) when ok.
 */
int	smtp_dkim_sign(struct session *, void (*done)(struct session *, int));
/* the transaction is being freed */
void	smtp_dkim_txn_gone(struct txn *);
void	data_line(struct session *s, char *line, size_t len, int lflags);
int	bdat_consume(struct session *s);
/* smtp_data.c, for the milters' rewrite of a message */
int	smtp_data_take_spare(uint32_t *msgid, int *fd);
void	smtp_data_reserve(struct session *);
void	smtp_data_spares_prefill(void);
void	smtp_data_return_spare(uint32_t msgid, int fd);

/*
 * smtp_milter.c: the mail filters.  smtp_milter_start() at the start of
 * a session, smtp_milter_stage() at each stage (MS_* of smtp_milter.h:
 * the callers use the names below): 0 when there is nothing to do, 1
 * when done(s, verdict) has been called or will be (from the loop, and
 * then the session is processed after it).  A refused stage's reply is
 * given with smtp_milter_reply().
 */
#define MILTER_CONTINUE	0
#define MILTER_REJECT	1
#define MILTER_TEMPFAIL	2
#define MILTER_DISCARD	3
#define MILTER_CLOSE	4	/* 421, hang up */
#define MILTER_STAGE_CONNECT	0
#define MILTER_STAGE_HELO	1
#define MILTER_STAGE_MAIL	2
#define MILTER_STAGE_RCPT	3
#define MILTER_STAGE_DATA	4
#define MILTER_STAGE_UNKNOWN	5
#define MILTER_STAGE_EOM	6
struct milter_connect;
void	smtp_milter_init(void);
int	smtp_milter_active(const struct session *);
/* a stage is waiting for the filters (they time out on their own) */
int	smtp_milter_busy(const struct session *);
int	smtp_milter_start(struct session *, void (*)(struct session *, int));
int	smtp_milter_stage(struct session *, int stage, const char *arg,
	    void (*done)(struct session *, int));
void	smtp_milter_reply(struct session *, const char *what,
	    const struct mailaddr *rcpt);
/* the reply as one line (the last), for a BDAT chunk's */
void	smtp_milter_reply_line(struct session *, char *, size_t);
void	smtp_milter_abort(struct session *);
void	smtp_milter_free(struct session *);
void	smtp_milter_connected(const struct milter_connect *, int fd);
void	smtp_milter_rcpt_done(struct session *, int ok, const char *reply);
/* smtp_tls.c: a TLS macro's value ({tls_version}, {cipher}...) */
const char *smtp_tls_macro(const struct session *, const char *name,
	    char *buf, size_t size);

#endif
