/*
 * proto.h -- every message that travels between Posthaste processes.
 *
 * Each payload is a fixed-size struct of integers and NUL-terminated
 * char arrays: no pointers, and every process is the same binary, so the
 * layout is the same on both ends.  Receivers copy the payload out with
 * proto_get() (which checks the length) and then check every string with
 * the decode function of its type before using anything in it.
 */
#ifndef POSTHASTE_PROTO_H
#define POSTHASTE_PROTO_H

#include <sys/socket.h>
#include <stdint.h>

#include "addr.h"
#include "destmac.h"
#include "dkim.h"
#include "envelope.h"
#include "imsg.h"
#include "platform.h"

/*
 * Group commit with one syncfs() per batch where the platform has a
 * whole-filesystem sync (platform.h: Linux); elsewhere, fsync of every
 * envelope and directory (and the smtp worker syncs the body).
 */
#define QUEUE_SYNCFS	PLATFORM_HAS_SYNCFS

enum imsg_type {
	IMSG_NONE,

	/* smtp -> lookup: resolve a recipient; replies DEST* then RESULT */
	IMSG_LKA_RCPT,		/* struct lka_rcpt_req */
	IMSG_LKA_RCPT_DEST,	/* struct lka_dest */
	IMSG_LKA_RCPT_RESULT,	/* struct lka_result */
	IMSG_LKA_VRFY,		/* struct lka_rcpt_req; DEST* then RESULT */
	IMSG_LKA_EXPN,		/* struct lka_rcpt_req; DEST* then RESULT */
	IMSG_LKA_AUTH,		/* struct lka_auth_req -> lka_result */
	/* lookup -> auth helper: "auth" without a table (system accounts) */
	IMSG_AUTH_SYSTEM,	/* struct auth_system_req -> auth_system_res */
	IMSG_LKA_SENDER,	/* struct lka_rcpt_req (mailfrom only) */
	/* smtp -> lookup: may this client ETRN?  rcpt.domain is the node,
	 * rcpt.user "@" for subdomains; reply lka_result with the node in
	 * reply and ndest = subdomains flag */
	IMSG_LKA_ETRN,
	/* smtp -> queue: schedule mail for a node now (RFC 1985) */
	IMSG_QUEUE_ETRN,	/* struct queue_etrn (request and reply) */

	/* smtp -> queue: a new message; reply carries the spool fd */
	IMSG_QUEUE_CREATE,	/* struct queue_msg_req */
	IMSG_QUEUE_CREATED,	/* struct queue_msg_resp + fd */
	IMSG_QUEUE_ENVELOPE,	/* struct envelope (id: msgid << 32) */
	IMSG_QUEUE_COMMIT,	/* struct queue_msg_req */
	IMSG_QUEUE_COMMITTED,	/* struct queue_msg_resp */
	IMSG_QUEUE_ROLLBACK,	/* struct queue_msg_req, no reply */

	/* queue -> parent: local delivery; parent -> queue: result */
	IMSG_MDA_DELIVER,	/* struct envelope + message fd */
	IMSG_MDA_RESULT,	/* struct delivery_result */
	/* parent -> mda process and back, same payloads */
	/*
	 * parent -> queue: a Maildir delivery process of its own for a user,
	 * for the queue to talk to directly from now on (same payloads as
	 * above), and the envelope that made the parent start it
	 */
	IMSG_MDA_CHANNEL,	/* struct mda_channel + channel fd */

	/* queue -> mta: remote delivery; mta -> queue: result */
	IMSG_MTA_DELIVER,	/* struct envelope + message fd */
	IMSG_MTA_RESULT,	/* struct delivery_result */

	/* control <-> queue/parent */
	IMSG_CTL_REQUEST,	/* struct ctl_request */
	IMSG_CTL_REPLY,		/* struct ctl_reply (many), end flag */
	/* queue -> control -> smtpctl: one envelope of "show queue", then
	 * an IMSG_CTL_REPLY with the end flag */
	IMSG_CTL_QUEUE_ENTRY,	/* struct ctl_queue_entry */

	/* mta -> lookup: where does mail for a domain go (issue 6/5) */
	IMSG_LKA_MX,		/* struct lka_mx_req */
	IMSG_LKA_MX_HOST,	/* struct lka_mx_host, in preference order */
	IMSG_LKA_MX_RESULT,	/* struct lka_result (ndest = hosts sent) */
	/* lookup -> mta, before the MX result when the request had
	 * LKA_MX_STS: the domain's MTA-STS policy (RFC 8461) */
	IMSG_LKA_MX_STS,	/* struct lka_mx_sts */
	/* lookup -> mta: DANE, after the hosts, before the result */
	IMSG_LKA_MX_TLSA,	/* struct lka_mx_tlsa, per record or host */
	/* smtp -> lookup: reverse DNS of a new client */
	IMSG_LKA_RDNS,		/* struct lka_rdns (request and reply) */
	/* lookup -> parent: open ~user/.forward; reply carries the fd */
	IMSG_PARENT_FORWARD,	/* struct forward_req (request and reply) */
	/* control -> smtp: a local submission session on a unix socket */
	IMSG_SMTP_LOCAL,	/* struct local_session + client fd */

	/* parent -> queue: channels of a (new) generation, and settings */
	IMSG_QUEUE_ADD_WORKER,	/* fd: a channel to a new smtp worker */
	IMSG_QUEUE_SET_MTA,	/* fd: the channel to the current mta */
	IMSG_QUEUE_SET_LOOKUP,	/* fd: the channel to the current lookup */
	IMSG_QUEUE_CONF,	/* struct queue_conf */

	/* control -> parent -> lookup: smtpctl update table NAME */
	IMSG_LKA_UPDATE_TABLE,	/* char name[128] */

	/* parent -> children */
	IMSG_SHUTDOWN,		/* mta: the daemon stops (mta_retire()) */
	IMSG_PAUSE,		/* uint32 what */
	IMSG_RESUME,
	IMSG_RETIRE,		/* smtp worker, mta: a reload replaced you */

	/* smtp worker, mta -> keys: a private-key operation (keys_client.h) */
	IMSG_KEYS_SIGN,		/* struct keys_sign_req -> keys_sign_res */
	/* smtp worker -> lookup: the inbound checks (checks.c) */
	IMSG_LKA_DNSBL,		/* struct lka_dnsbl (request and reply) */
	IMSG_LKA_SPF,		/* struct lka_spf (request and reply) */
	IMSG_LKA_AUTHCHECK,	/* struct lka_authcheck -> lka_authcheck_res */

	/* parent -> keys: the DKIM signing keys (a new set replaces) */
	IMSG_KEYS_DKIM_KEY,	/* struct keys_dkim_ident + key file fd */
	IMSG_KEYS_DKIM_DONE,	/* the set is complete: use it */
	/* keys -> smtp workers: whom they may sign for */
	IMSG_KEYS_DKIM_LIST,	/* struct keys_dkim_ident, one per key */
	IMSG_KEYS_DKIM_LIST_END,

	/* lookup -> queue: a row for the DMARC aggregate reports */
	IMSG_QUEUE_DMARC_RECORD,	/* struct queue_dmarc_record */

	/* smtp worker -> parent: a connection to a mail filter, please;
	 * the parent answers with the same message and the socket (or -1) */
	IMSG_MILTER_CONNECT,	/* struct milter_connect */
	/* smtp worker -> parent: its counters of one filter (smtpctl) */
	IMSG_MILTER_STATS,	/* struct milter_stats */
	/* parent -> control -> smtpctl: show milters, one per filter,
	 * then an IMSG_CTL_REPLY with the end flag */
	IMSG_CTL_MILTER,	/* struct ctl_milter */

	/* mta -> lookup: one TLS outcome under a policy (TLS-RPT) */
	IMSG_LKA_TLSRPT,		/* struct lka_tlsrpt */
	/* lookup -> queue: that outcome and where its domain wants the
	 * reports */
	IMSG_QUEUE_TLSRPT_RECORD,	/* struct queue_tlsrpt_record */

	/* smtpctl -> control -> parent -> lookup: smtpctl table lookup;
	 * the answer back the same way (to smtpctl from control itself for
	 * a request it refuses) */
	IMSG_CTL_TABLE_LOOKUP,		/* struct ctl_table_lookup */
	IMSG_CTL_TABLE_RESULT,		/* struct ctl_table_result */

	IMSG_MAX
};

/* reply status in results */
#define PROTO_OK	0
#define PROTO_TEMPFAIL	1
#define PROTO_PERMFAIL	2

/* session flags in lookup requests */
#define SF_TLS		0x01
#define SF_AUTH		0x02
#define SF_LOCAL	0x04	/* local submission (socket) */
#define SF_SMTPUTF8	0x08
#define SF_CHECKED	0x10	/* the inbound checks ran: spf is set */
#define SF_DNSBL	0x20	/* the DNS lists listed the client */

struct lka_rcpt_req {
	uint32_t		reqid;
	uint32_t		flags;		/* SF_* */
	uint32_t		listener;	/* index, for tags/policies */
	struct sockaddr_storage	client;
	char			helo[256];
	char			authname[128];
	struct mailaddr		mailfrom;
	struct mailaddr		rcpt;
	int32_t			spf;		/* SF_CHECKED: SPF_* */
};

struct lka_dest {
	uint32_t		reqid;
	uint32_t		dest_type;	/* enum dest_type */
	struct mailaddr		dest;		/* final address */
	char			action[ENV_NAME_MAX];
	char			user[ENV_NAME_MAX];	/* system user */
	char			path[ENV_PATH_MAX];	/* file/program */
	/* list mail (an "owner-LIST" alias exists): the envelope sender
	 * for this destination; empty user and domain = keep MAIL FROM */
	struct mailaddr		sender_override;
	/*
	 * lookup's HMAC over the fields above but reqid (destmac.h); the
	 * worker copies it unchanged into the envelope for the queue
	 */
	uint8_t			mac[DESTMAC_LEN];
};

struct lka_result {
	uint32_t	reqid;
	uint32_t	status;		/* PROTO_* */
	uint32_t	ndest;		/* DEST messages sent before this */
	/*
	 * RCPT: the asker may give the same answer (destinations and
	 * all) to the same request for this long; 0 = ask every time
	 */
	uint32_t	reuse_ms;
	char		reply[512];	/* "550 5.1.1 ..." when not OK */
};

struct lka_auth_req {
	uint32_t	reqid;
	uint32_t	listener;
	char		mech[16];	/* PLAIN, LOGIN, CRAM-MD5 */
	char		user[256];
	char		pass[256];	/* or CRAM-MD5 "challenge digest" */
};

/*
 * A system-account check (auth/auth_system.c).  reqid is lookup's own;
 * the answer is only a status: the hash never leaves the helper.
 */
struct auth_system_req {
	uint32_t	reqid;
	char		user[256];
	char		pass[256];
};

struct auth_system_res {
	uint32_t	reqid;
	uint32_t	status;		/* PROTO_OK, PROTO_PERMFAIL, TEMPFAIL */
};

/* lka_mx_req flags: what the mta wants besides the hosts */
#define LKA_MX_DANE	0x01	/* DNSSEC and TLSA records (RFC 7672) */
#define LKA_MX_STS	0x02	/* the MTA-STS policy: IMSG_LKA_MX_STS */

struct lka_mx_req {
	uint32_t	reqid;
	uint32_t	flags;			/* LKA_MX_* */
	char		domain[256];
	char		relay_host[1024];	/* action's "host URL", "" = MX */
};


/*
 * The MTA-STS policy of a domain (lookup/sts.c, mta/mta_sts.c; the
 * words of common/sts.h).  status: LKA_STS_NONE the domain publishes
 * no policy (no usable "_mta-sts" TXT record); LKA_STS_POLICY a policy
 * (fresh or cached) in mode, max_age and mx; the rest are failures to
 * get one, which count as no policy but are reported (RFC 8460):
 * LKA_STS_FETCH_ERROR (HTTPS fetch failed), LKA_STS_INVALID (the file
 * does not parse, or not text/plain), LKA_STS_WEBPKI (the policy
 * server's certificate did not verify).
 */
#define LKA_STS_NONE		0
#define LKA_STS_POLICY		1
#define LKA_STS_FETCH_ERROR	2
#define LKA_STS_INVALID		3
#define LKA_STS_WEBPKI		4

struct lka_mx_sts {
	uint32_t	reqid;
	uint32_t	status;		/* LKA_STS_* */
	uint32_t	mode;		/* STS_MODE_* */
	uint32_t	max_age;
	uint32_t	nmx;
	char		id[33];		/* STS_ID_MAX */
	char		mx[32][256];	/* STS_MX_MAX, STS_NAME_MAX */
	char		detail[256];	/* why a failure, for logs and reports */
};

struct lka_mx_host {
	uint32_t		reqid;
	uint32_t		preference;
	char			host[256];
	struct sockaddr_storage	addr;	/* port filled when the URL had one */
};

/*
 * IMSG_LKA_MX_TLSA (LKA_MX_DANE): for an MX host whose MX and address
 * records were DNSSEC-secure, what its TLSA lookup found (lookup/tlsa.c,
 * RFC 7672 2.2): one message per usable record (LKA_TLSA_RECORD, the
 * record in usage..data), or one for the host (LKA_TLSA_UNUSABLE: secure
 * records, none usable; LKA_TLSA_BOGUS: the lookup failed validation or
 * did not answer).  No message: no DANE for the host (LKA_TLSA_NONE is
 * never sent).
 */
#define LKA_TLSA_NONE		0
#define LKA_TLSA_RECORD		1
#define LKA_TLSA_UNUSABLE	2
#define LKA_TLSA_BOGUS		3
#define LKA_TLSA_DATA_MAX	2048	/* = lookup's DNS_TLSA_DATA_MAX */

struct lka_mx_tlsa {
	uint32_t	reqid;
	uint32_t	kind;		/* LKA_TLSA_RECORD, _UNUSABLE, _BOGUS */
	char		host[256];	/* as in IMSG_LKA_MX_HOST */
	uint8_t		usage;		/* 2 DANE-TA, 3 DANE-EE */
	uint8_t		selector;	/* 0 certificate, 1 public key */
	uint8_t		mtype;		/* 0 full, 1 SHA-256, 2 SHA-512 */
	uint16_t	datalen;
	unsigned char	data[LKA_TLSA_DATA_MAX];
};

struct lka_rdns {
	uint32_t		reqid;
	struct sockaddr_storage	addr;
	uint32_t		status;		/* reply: PROTO_* */
	uint32_t		fcrdns;		/* reply: forward-confirmed */
	char			name[256];	/* reply: "" when none */
};

/*
 * The inbound checks of a session (lookup/checks.c, smtp/smtp_checks.c).
 * DNS lists at the connection; SPF from MAIL FROM on, answered while
 * the client sends its recipients and data; DKIM verification and DMARC
 * at the end of data.  Results are the RFC 8601 words' codes of
 * lookup/spf.h (SPF_*), common/dkim.h (DKIM_*) and lookup/dmarc.h
 * (DMARC_RESULT_*, DMARC_POLICY_*).
 */
struct lka_dnsbl {
	uint32_t		reqid;
	struct sockaddr_storage	addr;
	uint32_t		ask_lists;	/* 0: only "trusted?" */
	int32_t			listed;		/* reply: 1 listed */
	int32_t			trusted;	/* reply: a "from src" client */
	int32_t			score;
	uint32_t		nfailed;	/* lists that did not answer */
	char			lists[256];	/* reply: the lists that hit */
};

struct lka_spf {
	uint32_t		reqid;
	uint32_t		serial;		/* the transaction's */
	uint32_t		helo_only;	/* the HELO identity (RFC 7208
						 * 2.3), not MAIL FROM */
	struct sockaddr_storage	addr;
	char			helo[256];
	char			sender[512];	/* "" = the null sender */
	int32_t			result;		/* reply: SPF_* */
	char			domain[256];	/* reply */
	char			mechanism[256];
	char			explanation[512];
};

#define LKA_AUTH_SIGS	8		/* DKIM_MAX_SIGS */
struct lka_authcheck {
	uint32_t		reqid;
	uint32_t		serial;
	struct lka_rcpt_req	ctx;	/* the session, for the message's rules
					 * (rcpt empty) */
	char			from_domain[256];	/* "" when not one */
	char			spf_domain[256];
	int32_t			spf_result;		/* SPF_* */
	uint32_t		no_dmarc;		/* "no-checks dmarc" */
	uint32_t		nsigs;
	struct dkim_vsig	sigs[LKA_AUTH_SIGS];
};

struct lka_authcheck_res {
	uint32_t		reqid;
	uint32_t		serial;
	uint32_t		nsigs;
	struct {
		int32_t		result;			/* DKIM_* */
		char		why[96];
	} dkim[LKA_AUTH_SIGS];
	int32_t			dmarc_result;		/* DMARC_RESULT_* */
	int32_t			dmarc_policy;		/* DMARC_POLICY_* */
	int32_t			dmarc_disposition;	/* after pct */
	char			dmarc_domain[256];
	int32_t			verdict;	/* MATCH_REJECT, _DEFER or 0 */
	int32_t			verdict_line;	/* of the rule that decided */
};
int	proto_valid_lka_dnsbl(const struct lka_dnsbl *);
int	proto_valid_lka_spf(const struct lka_spf *);
int	proto_valid_lka_authcheck(const struct lka_authcheck *);
int	proto_valid_lka_authcheck_res(const struct lka_authcheck_res *);

/*
 * lookup -> queue: one message DMARC evaluated (pass or fail) under a
 * record with rua= mailto: URIs, when "dmarc reports" is on: a row of
 * the next aggregate report (common/dmarc_rec.h, queue/dmarc_send.c).
 * The mailboxes are the URIs lookup kept: those within the policy
 * domain's organizational domain, and external ones whose domain agreed
 * (RFC 7489 7.1; the others are skipped with a log line).  The client
 * and MAIL FROM come from lka_authcheck's ctx.  Codes: common/dmarc_record.h's DMARC_POLICY_*,
 * DMARC_ALIGN_*, DMARC_FO_*; common/dmarc_report.h's DMARC_RPT_*.
 * Every string is a token (printable ASCII, no space): dmarc_rec_valid()
 * says so, on both sides.
 */
#define QUEUE_DMARC_RUA		4	/* mailboxes kept per record */
#define QUEUE_DMARC_DKIM	8	/* DMARC_MAX_DKIM */
struct queue_dmarc_record {
	struct sockaddr_storage	source;
	char			policy_domain[256];
	int32_t			p, sp, pct;	/* as published */
	int32_t			adkim, aspf, fo;
	int32_t			disposition;	/* DMARC_POLICY_* applied */
	int32_t			dkim_pass;	/* aligned DKIM passed */
	int32_t			spf_pass;	/* aligned SPF passed */
	int32_t			sampled_out;	/* pct= spared it */
	char			header_from[256];
	char			envelope_from[256];	/* "" null sender */
	char			spf_domain[256];
	int32_t			spf_scope;	/* DMARC_RPT_SPF_* */
	int32_t			spf_result;	/* DMARC_RPT_* */
	uint32_t		ndkim;
	struct {
		char		domain[256];
		char		selector[64];	/* "" none */
		int32_t		result;		/* DMARC_RPT_* */
	} dkim[QUEUE_DMARC_DKIM];
	uint32_t		nrua;
	struct {
		char		addr[512];	/* user@domain */
		uint64_t	maxsize;	/* "!10m": bytes; 0 none */
	} rua[QUEUE_DMARC_RUA];
};
int	proto_valid_queue_dmarc_record(const struct queue_dmarc_record *);

/*
 * mta -> lookup: one TLS outcome (a session, or a policy failure before
 * any session) toward policy_domain under a DANE or MTA-STS policy
 * (mta/mta_tlsrpt.c, RFC 8460).  Lookup reads the domain's "_smtp._tls"
 * record and, when it asks for reports and "tlsrpt reports" is on,
 * passes the outcome on to the queue with the record's rua URIs
 * (lookup/tlsrpt_collect.c); the queue keeps the day's outcomes and
 * mails the reports (queue/tlsrpt_send.c).  Codes: common/tlsrpt.h.
 * Strings are NUL-terminated (tlsrpt_rec_valid(), common/tlsrpt_rec.h);
 * an address of family 0 is unknown.
 */
#define TLSRPT_POLICY_STRING_MAX	2048	/* the policy's lines */
struct lka_tlsrpt {
	char			policy_domain[256];
	int32_t			policy_type;	/* TLSRPT_POLICY_* */
	int32_t			result;		/* TLSRPT_SUCCESS or a failure */
	char			mx_host[256];	/* "" none (a policy failure) */
	struct sockaddr_storage	sending_ip;
	struct sockaddr_storage	receiving_ip;
	char			reason[256];	/* failure-reason-code, "" */
	char			policy[TLSRPT_POLICY_STRING_MAX];
};
int	proto_valid_lka_tlsrpt(const struct lka_tlsrpt *);

#define QUEUE_TLSRPT_RUA	4	/* TLSRPT_MAX_RUA */
struct queue_tlsrpt_record {
	struct lka_tlsrpt	o;
	uint32_t		nrua;
	char			rua[QUEUE_TLSRPT_RUA][512];	/* URIs */
};
int	proto_valid_queue_tlsrpt_record(const struct queue_tlsrpt_record *);

struct forward_req {
	uint32_t	reqid;
	uint32_t	status;		/* reply: PROTO_OK with fd, else why not */
	char		user[128];
};

struct local_session {
	uint32_t	uid;		/* from SO_PEERCRED */
	char		user[128];	/* its name, for the envelope */
};

/* what the queue takes from smtpd.conf, sent again on reload */
struct queue_conf {
	int64_t		queue_ttl;
	int64_t		bounce_warn;
	int64_t		retry_local;
	int64_t		retry_remote;
	int32_t		max_inflight;
	char		hostname[256];
	char		dmarc_report_from[256];	/* "" reports off */
	char		dmarc_report_org[256];
	char		tlsrpt_report_from[256];	/* "" reports off */
	char		tlsrpt_report_org[256];
};

struct queue_etrn {
	uint32_t	reqid;
	uint32_t	subdomains;	/* "@domain": subdomains too */
	uint32_t	count;		/* reply: envelopes scheduled */
	char		domain[256];
};

struct queue_msg_req {
	uint32_t	reqid;
	uint32_t	msgid;
	uint64_t	size;
	uint64_t	spooled;	/* COMMIT: bytes of the message */
	uint32_t	nenvelopes;	/* COMMIT: how many were sent */
	/* COMMIT: bytes of headers added after it, at offset spooled */
	uint32_t	head;
};

struct queue_msg_resp {
	uint32_t	reqid;
	uint32_t	msgid;
	uint32_t	status;		/* PROTO_* */
	char		reply[256];	/* when not OK */
};

struct mda_channel {
	uint64_t	evpid;		/* in flight, to be sent again */
	char		user[ENV_NAME_MAX];
};

struct delivery_result {
	uint64_t	evpid;
	uint32_t	status;		/* PROTO_* */
	char		text[ENV_TEXT_MAX];	/* "2.0.0 ..." or error */
	char		relay[256];	/* where it went, for logs */
	/* Postfix's delays=a/b/c/d after the queue's own part, in ms:
	 * waiting in the agent for a session, connection set-up (DNS,
	 * greeting, EHLO, TLS, AUTH), and the transaction itself */
	uint32_t	delay_wait;
	uint32_t	delay_conn;
	uint32_t	delay_xfer;
	/*
	 * RFC 3461 for a success, from the mta: did the next hop take our
	 * NOTIFY (it reports success itself), or does it not offer DSN (we
	 * report "relayed")?  DR_DSN_FINAL for a delivery of our own.
	 */
	uint32_t	dsn;
	/* the remote server's reply that decided it ("554 5.7.1 ..."), for
	 * a DSN's Diagnostic-Code: smtp; empty when none did */
	char		reply[ENV_TEXT_MAX];
};
#define DR_DSN_FINAL	0	/* delivered here: "delivered" */
#define DR_DSN_PASSED	1	/* the next hop took NOTIFY: no DSN of ours */
#define DR_DSN_RELAYED	2	/* the next hop offers no DSN: "relayed" */

struct ctl_request {
	uint32_t	reqid;
	uint32_t	cmd;
	uint32_t	uid;		/* the client's uid (SO_PEERCRED) */
	uint64_t	id;		/* evpid / msgid / 0 = all */
	char		arg[256];
	uint32_t	match;		/* CTL_MATCH_* (ctl.h) */
	char		pattern[256];	/* CTL_MATCH_SENDER/RCPT: a glob */
};

struct ctl_reply {
	uint32_t	reqid;
	uint32_t	end;		/* last reply of this request */
	uint32_t	status;
	char		text[1024];
};

/*
 * One envelope as smtpctl shows it: the fields as they are, for smtpctl
 * to format (text or JSON) and escape; nothing here is pre-formatted.
 */
enum ctl_queue_state {
	CTL_QSTATE_PENDING,	/* due now, waiting for a delivery slot */
	CTL_QSTATE_DEFERRED,	/* waiting for nexttry */
	CTL_QSTATE_INFLIGHT,	/* a delivery attempt is running */
	CTL_QSTATE_PAUSED,	/* smtpctl pause envelope */
	CTL_QSTATE_REMOVING,	/* removed in flight: goes when it ends */
	CTL_QSTATE_BOUNCING,	/* failed: kept until its DSN is queued */
	CTL_QSTATE_HELD,	/* EF_HOLD: until smtpctl release */
	CTL_QSTATE_MAX
};

struct ctl_queue_entry {
	uint32_t	reqid;
	uint32_t	state;		/* enum ctl_queue_state */
	uint64_t	evpid;
	uint64_t	size;		/* the message, in bytes */
	int64_t		now;		/* the queue's clock, time(3) */
	int64_t		arrival;	/* when it was queued */
	int64_t		lasttry;	/* 0: never tried */
	int64_t		nexttry;	/* 0: none planned (in flight...) */
	uint32_t	tries;
	char		sender[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char		recipient[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char		error[ENV_TEXT_MAX];	/* the last, as received */
	/* EF_HOLD: its reason (never empty); "" when not held */
	char		held[ENV_TEXT_MAX / 4];
};

/* copy a payload out; fatal when its length is not exactly that size */
struct mproc;
void	proto_get(struct mproc *, const struct imsg *, void *out, size_t len);
/* every char array NUL-terminated, every enum in range: else -1 */
int	proto_valid_string(const char *, size_t size);
int	proto_valid_lka_rcpt_req(const struct lka_rcpt_req *);
int	proto_valid_lka_dest(const struct lka_dest *);
int	proto_valid_lka_result(const struct lka_result *);
int	proto_valid_lka_auth_req(const struct lka_auth_req *);
int	proto_valid_queue_msg_resp(const struct queue_msg_resp *);
int	proto_valid_delivery_result(const struct delivery_result *);
int	proto_valid_ctl_request(const struct ctl_request *);
int	proto_valid_ctl_reply(const struct ctl_reply *);
int	proto_valid_ctl_queue_entry(const struct ctl_queue_entry *);

/* get + validate, fatal on a broken sibling */
#define PROTO_READ(p, m, out, validator) do {				\
	proto_get((p), (m), (out), sizeof(*(out)));			\
	if (validator(out) == -1)					\
		fatalx("invalid %s from %s", #validator, (p)->name);	\
} while (0)

/*
 * Lookup messages of issue 5 (checks in common/lka_proto.c).
 * IMSG_LKA_RDNS reply: PROTO_OK with name (fcrdns 1 when the name's
 * A/AAAA lead back to the address), PROTO_PERMFAIL when there is no PTR,
 * PROTO_TEMPFAIL on DNS trouble.  IMSG_LKA_SENDER is answered with a
 * struct lka_result on the same message type.  IMSG_LKA_MX_HOST port is
 * 0 unless the relay URL had one.  IMSG_PARENT_FORWARD reply: PROTO_OK
 * with the fd, PROTO_PERMFAIL no usable .forward, PROTO_TEMPFAIL error.
 */
int	proto_valid_lka_rdns(const struct lka_rdns *);
int	proto_valid_lka_mx_req(const struct lka_mx_req *);
int	proto_valid_lka_mx_host(const struct lka_mx_host *);
int	proto_valid_lka_mx_sts(const struct lka_mx_sts *);
/* IMSG_LKA_MX_TLSA: a known kind; a record only usable ones (RFC 7672
 * 3.1.3: usage 2 or 3, selector 0 or 1, matching type 0..2 of its
 * length); the others without data */
int	proto_valid_lka_mx_tlsa(const struct lka_mx_tlsa *);
int	proto_valid_forward_req(const struct forward_req *);
int	proto_valid_auth_system_req(const struct auth_system_req *);
int	proto_valid_auth_system_res(const struct auth_system_res *);
int	proto_valid_mailaddr(const struct mailaddr *);

/*
 * The keys process (keys/keys.c) signs for the smtp workers and the mta
 * with keys only it holds: TLS server and client keys (key id = the
 * pki's place in conf->pkis) and DKIM keys.  The request carries what
 * is signed: a digest (RSA, ECDSA; md is its NID) or, for Ed25519, the
 * whole message (TLS 1.3 signs at most ~200 bytes; DKIM a 32-byte hash).
 */
#define KEYS_OP_RSA_PKCS1	1	/* RSASSA-PKCS1-v1_5 over a digest */
#define KEYS_OP_RSA_PSS		2	/* RSASSA-PSS: saltlen, mgf1md */
#define KEYS_OP_ECDSA		3
#define KEYS_OP_ED25519		4	/* PureEdDSA over the data */
#define KEYS_DATA_MAX		1024
#define KEYS_SIG_MAX		1024	/* RSA-8192 */

struct keys_sign_req {
	uint32_t	keyid;
	uint32_t	op;		/* KEYS_OP_* */
	uint32_t	md;		/* NID of the digest, 0 for Ed25519 */
	uint32_t	mgf1md;		/* PSS: NID of the MGF1 digest */
	int32_t		saltlen;	/* PSS: bytes, or -1 = digest size */
	uint32_t	len;
	uint8_t		data[KEYS_DATA_MAX];
};

struct keys_sign_res {
	int32_t		status;		/* PROTO_OK, else PROTO_PERMFAIL */
	uint32_t	len;
	uint8_t		sig[KEYS_SIG_MAX];
};
/*
 * A DKIM signing key: the domain (lower case) and selector it signs as;
 * from the keys process also its id (for IMSG_KEYS_SIGN, ids of DKIM
 * keys start at KEYS_DKIM_ID0 and are never reused) and algorithm
 * (KEYS_OP_RSA_PKCS1 for rsa-sha256, KEYS_OP_ED25519).
 */
#define KEYS_DKIM_ID0		0x10000
#define KEYS_DKIM_MAX		1024	/* keys in one set */
struct keys_dkim_ident {
	uint32_t	keyid;
	uint32_t	op;
	char		domain[256];
	char		selector[128];
};
int	proto_valid_keys_dkim_ident(const struct keys_dkim_ident *);
int	proto_valid_keys_sign_req(const struct keys_sign_req *);
int	proto_valid_keys_sign_res(const struct keys_sign_res *);

/*
 * Whether the queue may send this envelope straight to a delivery
 * process of its own (Maildir deliveries to a user's mailbox), asked by
 * the parent (mda/mda.c) and the queue alike; at most
 * PROTO_DIRECT_MAX envelopes in flight per such process.
 */
struct action;
int	proto_direct_delivery(const struct envelope *, const struct action *);
#define PROTO_DIRECT_MAX	256

/*
 * A connection to a mail filter.  The workers are chrooted into an empty
 * directory and may not create sockets (seccomp), so the parent connects
 * for them: to "unix:PATH" wherever it is (the filter's socket is often
 * in a directory only its group may enter: the parent is root), and to
 * "inet:HOST:PORT" within the filter's connect-timeout.  The filter is
 * named, not numbered, so that a worker of an older generation (during a
 * reload) cannot be given another filter than the one it means.  The
 * answer is the same struct with status PROTO_OK and the connected
 * socket, or another status, no socket and why in error.
 */
struct milter_connect {
	uint32_t	reqid;		/* the worker's, echoed */
	uint32_t	status;		/* answer: PROTO_* */
	char		name[128];	/* struct milter_conf.name */
	char		error[256];	/* answer: "connect: Connection refused" */
};

/*
 * One worker's counters of one filter, sent to the parent when they
 * changed (at most once a second); the parent adds the workers' up for
 * smtpctl show milters.  Counters are totals since the worker started.
 */
#define MILTER_STATE_UNUSED	0	/* no session has used it yet */
#define MILTER_STATE_UP		1	/* its last session went well */
#define MILTER_STATE_DOWN	2	/* its last session failed (error) */
struct milter_stats {
	char		name[128];
	uint32_t	state;		/* MILTER_STATE_* */
	int64_t		since;		/* when state last changed (time_t) */
	uint64_t	sessions;	/* connections negotiated */
	uint64_t	messages;	/* end of message reached */
	uint64_t	accepted;	/* accept / continue to the end */
	uint64_t	rejected;	/* reject or a 5xx reply, any stage */
	uint64_t	tempfailed;	/* tempfail or a 4xx reply */
	uint64_t	discarded;
	uint64_t	quarantined;
	uint64_t	modified;	/* messages it changed */
	uint64_t	errors;		/* connect failed, timeout, garbage */
	uint64_t	defaults;	/* times its on-error action was used */
	int64_t		error_at;	/* the last error: when, and what */
	char		error[256];
};

int	proto_valid_milter_connect(const struct milter_connect *);
int	proto_valid_milter_stats(const struct milter_stats *);

/*
 * smtpctl show milters: one filter of the running configuration, its
 * address as written and the counters of every worker added up (the
 * parent's own connect failures in errors); state MILTER_STATE_UNUSED
 * and since 0 when no worker has used it yet.
 */
struct ctl_milter {
	uint32_t	reqid;
	int64_t		now;		/* the parent's clock, time(3) */
	char		address[1024];	/* struct milter_conf.address */
	struct milter_stats st;
};

int	proto_valid_ctl_milter(const struct ctl_milter *);

/*
 * smtpctl table lookup NAME SERVICE KEY: what the daemon's lookup
 * process answers for that key, as the service asks it (table.h,
 * table_lookup_service()).  status is smtpctl's exit status: found
 * (text: the value, "" for a list), not found, or a temporary failure
 * or a refused request (text: why).  Root only.
 */
#define CTL_TABLE_KEY_MAX	512	/* table/backend.h TABLE_KEY_MAX */
#define CTL_TABLE_VALUE_MAX	65536	/* table/backend.h TABLE_VALUE_MAX */
#define CTL_TABLE_FOUND		0
#define CTL_TABLE_NOTFOUND	1
#define CTL_TABLE_ERROR		2

struct ctl_table_lookup {
	uint32_t	reqid;		/* control's client, set by control */
	char		table[128];	/* CONF_NAME_MAX */
	char		service[16];	/* "alias" (table_service_name()) */
	char		key[CTL_TABLE_KEY_MAX + 1];
};

struct ctl_table_result {
	uint32_t	reqid;
	uint32_t	status;		/* CTL_TABLE_* */
	char		text[CTL_TABLE_VALUE_MAX + 1];
};

int	proto_valid_ctl_table_lookup(const struct ctl_table_lookup *);
int	proto_valid_ctl_table_result(const struct ctl_table_result *);

#endif
