/*
 * config.h -- the in-memory form of smtpd.conf.
 *
 * The parent parses the file (parse.c) into a struct smtpd_config; every
 * child inherits it across fork(), so nothing here travels over IPC and
 * plain pointers are fine.  Strings are fixed-size arrays so that a
 * configuration is one self-contained object that can be freed with
 * config_free() and compared or replaced whole on reload.
 */
#ifndef POSTHASTE_CONFIG_H
#define POSTHASTE_CONFIG_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define CONF_NAME_MAX	128	/* action, table, pki names */
#define CONF_PATH_MAX	1024	/* file names, templates, commands */
#define CONF_HOST_MAX	256	/* host names */
#define CONF_MAX_PKIS	64	/* each is a key the keys process holds */
#define CONF_MAX_DNSBL	16	/* DNS lists: lookup/dnsbl.h DNSBL_MAX_LISTS */
#define CONF_MAX_MILTERS	32	/* "milter NAME ..." definitions */
#define CONF_MILTER_CHAIN	8	/* filters in one chain */
/* what a failed DMARC check with p=reject / p=quarantine does */
#define CONF_DMARC_ENFORCE	0	/* 550 / quarantine (the default) */
#define CONF_DMARC_QUARANTINE	1	/* quarantine both */
#define CONF_DMARC_TAG		2	/* only the Authentication-Results */

#define SMTPD_CONF_DEFAULT	"/etc/smtpd.conf"
#define SMTPD_SPOOL_DEFAULT	"/var/spool/smtpd"
#define SMTPD_SOCKET_DEFAULT	"/var/run/smtpd.sock"

enum table_backend {
	TABLE_INLINE,		/* { a, b } or { k = v } in smtpd.conf */
	TABLE_FILE,		/* file:/path  (or a bare absolute path) */
	TABLE_DB,		/* db:/path.db  Berkeley DB hash */
	TABLE_REMOTE,		/* pgsql: ldap: redis: socketmap: proc: --
				 * asked on lookup's event loop, answers
				 * cached (table/remote.c) */
};

#define TABLE_SCHEME_MAX	16	/* "socketmap" */
#define TABLE_CACHE_TTL		60	/* seconds, a found answer */
#define TABLE_NEGATIVE_TTL	10	/* seconds, "not found" */

struct table_entry {
	char	*key;
	char	*value;		/* NULL in a list (set) table */
};

struct table {
	TAILQ_ENTRY(table) entry;
	char			 name[CONF_NAME_MAX];
	enum table_backend	 backend;
	char			 path[CONF_PATH_MAX];	/* FILE and DB */
	int			 is_mapping;	/* INLINE: k = v form */
	struct table_entry	*entries;	/* INLINE only */
	size_t			 nentries;
	int			 line;		/* FILE and DB: where defined */
	int			 forgotten;	/* INLINE: entries wiped here
						 * (config_forget_secrets) */
	/* REMOTE: "pgsql" and what follows "pgsql:" in path */
	char			 scheme[TABLE_SCHEME_MAX];
	time_t			 cache_ttl;	/* 0: answers used once */
	time_t			 negative_ttl;
	/* pgsql, ldap, redis: the backend's configuration file, read by
	 * the parent (it may hold a password; only lookup keeps it) */
	char			*conf_text;
	size_t			 conf_len;
};

struct pki {
	TAILQ_ENTRY(pki) entry;
	char	name[CONF_HOST_MAX];
	char	cert_file[CONF_PATH_MAX];
	char	key_file[CONF_PATH_MAX];
	int	cert_line;	/* where each was given, for smtpd -n */
	int	key_line;
};

#define LISTEN_PROXY_MAX	16	/* "proxy-protocol from { ... }" */
#define LISTEN_CIDR_MAX		50	/* an IPv6 address, "/128", NUL */
#define LISTEN_SNI_MAX	7	/* pkis on a listener besides the first */

enum listen_tls {
	LISTEN_TLS_NONE,	/* plain, STARTTLS not offered */
	LISTEN_TLS_STARTTLS,	/* "tls": STARTTLS offered */
	LISTEN_TLS_REQUIRE,	/* "tls-require": no mail until STARTTLS */
	LISTEN_TLS_SMTPS,	/* "smtps": implicit TLS */
};

enum listen_auth {
	LISTEN_AUTH_NONE,
	LISTEN_AUTH_REQUIRE,	/* "auth [<table>]": no mail until AUTH */
	LISTEN_AUTH_OPTIONAL,	/* "auth-optional [<table>]" */
};

struct listener {
	TAILQ_ENTRY(listener) entry;
	struct sockaddr_storage	 ss;		/* address and port */
	socklen_t		 sslen;
	char			 ifname[CONF_HOST_MAX]; /* as written */
	uint16_t		 port;
	enum listen_tls		 tls;
	char			 pki[CONF_HOST_MAX];	/* "" = none; with SNI
							 * the default */
	/* "pki NAME" given again: more certificates, chosen by the name
	 * the client asks for (SNI, smtp/smtp_tls.c) */
	char			 sni_pki[LISTEN_SNI_MAX][CONF_HOST_MAX];
	int			 nsni_pki;
	enum listen_auth	 auth;
	char			 auth_table[CONF_NAME_MAX]; /* "" = system */
	int			 auth_plain_ok;	/* "auth-plaintext"? AUTH w/o TLS */
	int			 auth_cram_md5;	/* "auth-cram-md5": the table
						 * holds {plain} secrets */
	char			 hostname[CONF_HOST_MAX]; /* "" = global */
	char			 tag[CONF_NAME_MAX];
	int			 submission;	/* port 587 or "submission" */
	int			 senders_checked; /* "senders <table>" */
	char			 senders_table[CONF_NAME_MAX];
	int			 check_sender_domain; /* "check-sender-domain" */
	int			 checks;	/* LISTEN_CHECKS_* */
	int			 checks_off;	/* CHECK_*: "no-checks spf..." */
	/* "milter NAME" or "milter { A B }": the chain, in order, as
	 * indexes into conf->milters (struct milter_conf.index) */
	int			 milters[CONF_MILTER_CHAIN];
	int			 nmilters;
	/*
	 * "proxy-protocol from NET|{ NET, ... }": every connection opens
	 * with a PROXY header (v1 or v2) naming the real client, and only
	 * these peers (CIDR or address, as written) may send one
	 * (smtp/smtp_proxy.c).  A list, not a table: the worker decides
	 * before anything else, and knows no tables.
	 */
	int			 proxy_protocol;
	char			 proxy_from[LISTEN_PROXY_MAX][LISTEN_CIDR_MAX];
	int			 nproxy_from;
};
#define CHECK_SPF	0x01
#define CHECK_DKIM	0x02
#define CHECK_DMARC	0x04
#define CHECK_DNSBL	0x08
/*
 * The inbound checks (SPF, DKIM, DMARC, DNS lists): by default on mail
 * from clients neither authenticated nor on this host (loopback, the
 * local socket); "no-checks" turns them off on a listener, "checks
 * all-clients" on for every client (a proxy or a test on loopback).
 */
#define LISTEN_CHECKS_DEFAULT		0
#define LISTEN_CHECKS_NONE		1
#define LISTEN_CHECKS_ALL_CLIENTS	2

/*
 * A mail filter (milter protocol 6), "milter NAME ADDRESS [options]":
 * smtp/smtp_milter.c is the client, the parent connects the socket for
 * it (smtpd/milter_connect.c) and passes the descriptor.
 */
enum milter_default {
	MILTER_DEFAULT_TEMPFAIL,	/* "on-error tempfail" (the default) */
	MILTER_DEFAULT_ACCEPT,		/* as if the filter were not there */
	MILTER_DEFAULT_REJECT,
	MILTER_DEFAULT_QUARANTINE,	/* accept, held in the queue */
};

struct milter_conf {
	TAILQ_ENTRY(milter_conf) entry;
	int		 index;		/* its place in conf->milters, from 0 */
	char		 name[CONF_NAME_MAX];
	char		 address[CONF_PATH_MAX]; /* "inet:HOST:PORT", "unix:PATH"
						 * as written */
	/* where to connect: AF_UNIX (sun_path), AF_INET or AF_INET6
	 * (HOST numeric, or resolved once when the file is read) */
	struct sockaddr_storage ss;
	socklen_t	 sslen;
	time_t		 connect_timeout;	/* "connect-timeout 30s" */
	time_t		 command_timeout;	/* "command-timeout 30s" */
	time_t		 eom_timeout;		/* "eom-timeout 5m": the end of
						 * the message, body included */
	enum milter_default on_error;		/* "on-error ..." */
	int		 reuse;		/* "reuse": a connection serves
					 * session after session
					 * (SMFIC_QUIT_NC) */
	int		 line;
};

enum action_type {
	ACTION_MAILDIR,		/* maildir ["template"] */
	ACTION_MBOX,		/* mbox: /var/mail/USER */
	ACTION_MDA,		/* mda "command" */
	ACTION_LMTP,		/* lmtp "/socket" | "host:port" */
	ACTION_RELAY,		/* relay [host URL] ... */
};

/*
 * How the mta uses TLS toward a destination (Postfix's security levels;
 * "tls LEVEL" on a relay action, or the destination's entry in the TLS
 * policy table).  MTA-STS (RFC 8461) is not a level: a domain's policy
 * in enforce mode raises "may" and "encrypt" to "verify" against its MX
 * patterns; DANE wins where both exist.
 */
enum relay_tls {
	RELAY_TLS_OPPORTUNISTIC,	/* default, "tls may": STARTTLS when
					 * offered, else plain text */
	RELAY_TLS_REQUIRE,		/* "tls" / "tls encrypt": TLS, any
					 * certificate */
	RELAY_TLS_VERIFY,		/* "tls verify" (or "tls" with smtps://):
					 * PKIX chain, the host's name */
	RELAY_TLS_NO,			/* "tls no" / "tls none": never */
	RELAY_TLS_SECURE,		/* "tls secure": PKIX chain, the next-hop
					 * domain's name (not the MX name DNS
					 * gave: RFC 7672 1.3) */
	RELAY_TLS_DANE,			/* "tls dane": DANE where usable TLSA
					 * records are (RFC 7672), else "may" */
	RELAY_TLS_DANE_ONLY,		/* "tls dane-only": DANE or defer */
};

struct action {
	TAILQ_ENTRY(action) entry;
	char		 name[CONF_NAME_MAX];
	enum action_type type;
	/* maildir template, mda command, lmtp destination; "" = default */
	char		 path[CONF_PATH_MAX];
	/* local actions */
	char		 alias_table[CONF_NAME_MAX];	/* "alias <t>" */
	char		 virtual_table[CONF_NAME_MAX];	/* "virtual <t>" */
	char		 userbase_table[CONF_NAME_MAX];	/* "userbase <t>" */
	char		 user[CONF_NAME_MAX];		/* "user NAME" */
	int		 forward_file;		/* honour ~/.forward (default 1) */
	int		 junk;			/* maildir: quarantined mail into
						 * the .Junk folder */
	/* relay */
	char		 relay_host[CONF_PATH_MAX];	/* "host URL", "" = MX */
	char		 relay_auth_table[CONF_NAME_MAX]; /* "auth <t>" */
	enum relay_tls	 relay_tls;
	char		 helo[CONF_HOST_MAX];		/* "helo NAME" */
	char		 relay_src[CONF_HOST_MAX];	/* "src ADDR" */
	char		 relay_pki[CONF_HOST_MAX];	/* "pki NAME": client
							 * certificate */
};

enum match_from {
	MATCH_FROM_ANY,		/* from any */
	MATCH_FROM_LOCAL,	/* from local (default): loopback, local socket */
	MATCH_FROM_SOCKET,	/* from socket: local submission only */
	MATCH_FROM_SRC,		/* from src <table> | "addr/len" */
	MATCH_FROM_RDNS,	/* from rdns [<table>] */
	MATCH_FROM_AUTH,	/* from auth [<table>]: authenticated */
};

enum match_for {
	MATCH_FOR_ANY,		/* for any */
	MATCH_FOR_LOCAL,	/* for local (default): the host's names */
	MATCH_FOR_DOMAIN,	/* for domain "name" | <table> */
	MATCH_FOR_RCPT,		/* for rcpt-to <table> */
};

/*
 * One "match" rule.  A string criterion value is either a literal (value)
 * or a table reference written <name> (value_is_table).  Each criterion
 * may be negated with "!".
 */
struct match_crit {
	int	set;		/* criterion present in the rule */
	int	negate;		/* written with "!" */
	int	is_table;	/* value names a table */
	char	value[CONF_PATH_MAX];
};

struct match {
	TAILQ_ENTRY(match) entry;
	int		 line;		/* for log messages */
	enum match_from	 from;
	struct match_crit from_crit;	/* src/rdns/auth value */
	enum match_for	 for_;
	struct match_crit for_crit;	/* domain/rcpt-to value */
	struct match_crit auth;		/* "auth [<t>]" as its own criterion */
	struct match_crit mail_from;	/* "mail-from <t>|"addr"" */
	struct match_crit tls;		/* "tls": session is encrypted */
	struct match_crit helo;		/* "helo <t>" */
	struct match_crit tag;		/* "tag NAME": the listener's tag */
	struct match_crit spf;		/* "spf RESULT" of MAIL FROM */
	struct match_crit dnsbl;	/* "dnsbl": the DNS lists listed it */
	struct match_crit dkim;		/* "dkim RESULT": at the end of data */
	struct match_crit dmarc;	/* "dmarc RESULT": likewise */
	int		 reject;	/* MATCH_REJECT, MATCH_DEFER or 0 */
	char		 action_name[CONF_NAME_MAX];
	struct action	*action;	/* resolved at end of parse */
};

#define MATCH_REJECT	1		/* "reject": 550 5.7.1 */
#define MATCH_DEFER	2		/* "defer": 451 4.7.1 */

/*
 * The rate limits of the smtp workers (smtpd.conf(5) "smtp
 * client-connection-rate" ...), in the order of their names in
 * common/ratelimit.c: at most n events in any window of period seconds
 * (the burst is n); n == 0: no limit.
 */
enum conf_rate_kind {
	RATE_CLIENT_CONN,	/* per client address, at connect */
	RATE_CLIENT_MSG,	/* per client address, at MAIL FROM */
	RATE_CLIENT_RCPT,	/* per client address, at RCPT */
	RATE_CLIENT_AUTHFAIL,	/* per client address, failed AUTH */
	RATE_USER_MSG,		/* per SASL user, at MAIL FROM */
	RATE_USER_RCPT,		/* per SASL user, at RCPT */
	RATE_MAX
};

struct conf_rate {
	int	n;
	int	period;		/* seconds */
};

#define RATE_EXEMPT_MAX		16	/* "smtp rate-exempt { ... }" */

struct smtpd_config {
	char		 path[CONF_PATH_MAX];	/* the file this came from */
	char		 spool[CONF_PATH_MAX];	/* "spool PATH" */
	char		 socket[CONF_PATH_MAX];	/* "socket PATH" */
	char		 hostname[CONF_HOST_MAX]; /* "hostname NAME", default gethostname */
	char		 mailname[CONF_HOST_MAX]; /* "mailname NAME"/etc/mailname */

	/* smtp */
	int		 smtp_workers;		/* "smtp workers N", 0 = ncpu */
	size_t		 max_message_size;	/* "smtp max-message-size 10M" */
	size_t		 max_rcpt;		/* "smtp max-rcpt N" (1000) */
	size_t		 max_line;		/* "smtp max-line N" (1000) */
	int		 max_sessions;		/* "smtp max-sessions N" */
	int		 max_sessions_per_ip;	/* "smtp max-sessions-per-ip N" */
	int		 max_messages_per_session; /* "smtp max-messages N" */
	/*
	 * "smtp client-message-rate 10/m" etc. (common/ratelimit.c), kept
	 * across every smtp worker; rate_exempt: "smtp rate-exempt NET|{}",
	 * client networks never limited
	 */
	struct conf_rate rate[RATE_MAX];
	char		 rate_exempt[RATE_EXEMPT_MAX][LISTEN_CIDR_MAX];
	int		 nrate_exempt;
	int		 vrfy;			/* "smtp vrfy yes|no" */
	int		 expn;			/* "smtp expn yes|no" */
	time_t		 timeout_cmd;		/* "smtp timeout N[smh]" */
	time_t		 timeout_data;		/* data block timeout */
	/* per-record deadlines (smtp_deadline.c); 0 = off */
	time_t		 deadline_cmd;		/* a whole command line */
	time_t		 deadline_data;		/* the whole DATA/BDAT phase */
	size_t		 data_min_rate;		/* bytes/s, averaged ... */
	time_t		 data_rate_grace;	/* ... once this old */

	/* queue */
	time_t		 queue_ttl;		/* "queue ttl 4d" */
	time_t		 bounce_warn;		/* "bounce warn-interval 4h" */
	time_t		 retry_local;		/* "queue retry-local 1m" base */
	time_t		 retry_remote;		/* "queue retry-remote 5m" base */
	int		 queue_max_inflight;	/* "queue max-inflight N" */
	int		 mda_max;		/* "mda max-processes N" */
	int		 mta_max_per_dest;	/* "mta max-conn-per-host N" */
	time_t		 mta_delay_per_dest;	/* "mta delay-per-dest T", 0 off */
	int		 mta_initial_per_dest;	/* "mta initial-conn-per-host N" */
	int		 mta_rate_per_dest;	/* "mta rate-per-dest N/s", per
						 * hour; 0 off */
	int		 mta_max_rcpt;		/* "mta max-rcpt-per-msg N" */
	time_t		 mta_backoff;		/* "mta backoff-per-host T" */
	/* "mta tls-policy <table>" (config/tls_policy.h): "" = none */
	char		 mta_tls_policy[CONF_NAME_MAX];
	int		 mta_tls_policy_line;
	/* "mta ca-file FILE": the CAs "tls verify" and "secure" trust; ""
	 * = $SSL_CERT_FILE or OpenSSL's default file */
	char		 mta_ca_file[CONF_PATH_MAX];
	int		 mta_ca_file_line;
	int		 mta_sts;		/* "mta mta-sts yes|no" (RFC 8461) */

	char		 resolver[CONF_HOST_MAX]; /* "resolver ADDR [port N]" */
	uint16_t	 resolver_port;
	/*
	 * "metrics listen on ADDR [port N]": GET /metrics (control
	 * process); "" = off.  Bound by the parent at start only: a
	 * reload does not move it.
	 */
	char		 metrics_addr[CONF_HOST_MAX];
	uint16_t	 metrics_port;
	/* "dnssec trust-anchor FILE" (DANE); "" = Debian's root key */
	char		 dnssec_anchor[CONF_PATH_MAX];

	/* mail authentication (parse_auth.c) */
	char		 dkim_sign_table[CONF_NAME_MAX]; /* "dkim sign <t>" */
	char		 dnsbl[CONF_MAX_DNSBL][CONF_HOST_MAX]; /* list specs */
	int		 ndnsbl;
	int		 dnsbl_threshold;	/* "dnsbl ... threshold N" */
	int		 dmarc_policy;		/* CONF_DMARC_* */
	/* "dmarc reports from ADDRESS [org NAME]": "" = reports off */
	char		 dmarc_report_from[256];
	char		 dmarc_report_org[256];
	/* "tlsrpt reports from ADDRESS [org NAME]": "" = reports off */
	char		 tlsrpt_report_from[256];
	char		 tlsrpt_report_org[256];
	int		 rules_spf;	/* a rule asks SPF: RCPT waits for it */
	int		 rules_dnsbl;	/* a rule asks the lists: they do not
					 * refuse at connect, the rules decide */
	int		 rules_message;	/* a rule asks dkim or dmarc */

	TAILQ_HEAD(, table)	tables;
	TAILQ_HEAD(pkilist, pki)	pkis;
	TAILQ_HEAD(, listener)	listeners;
	TAILQ_HEAD(, action)	actions;
	TAILQ_HEAD(, match)	matches;
	/* "milter NAME ...", in the order written (index 0, 1, ...) */
	TAILQ_HEAD(, milter_conf) milters;
	int			nmilters;
	/* "sendmail milter { A B }": the chain for local submission
	 * (sendmail(8), the control socket), Postfix's non_smtpd_milters */
	int			local_milters[CONF_MILTER_CHAIN];
	int			nlocal_milters;
};

/*
 * Parse `path' into a freshly allocated configuration.  On error returns
 * NULL and writes "FILE:LINE: message" into err.
 */
struct smtpd_config	*config_parse(const char *path, char *err, size_t errlen);
/* open a configuration file: regular files only (else NULL, EINVAL) */
FILE			*config_fopen(const char *path);
/* The same from an open stream; `name' is used in error messages. */
struct smtpd_config	*config_parse_file(FILE *fp, const char *name,
			    char *err, size_t errlen);
/* Defaults only: what an empty file gives. */
struct smtpd_config	*config_default(void);
/* wipes every table entry it frees: they may be secrets */
void			 config_free(struct smtpd_config *);
/*
 * Inline tables hold secrets (crypt hashes of credentials tables, relay
 * passwords) that every child inherits through fork.  Each process that
 * does not use them wipes (explicit_bzero) and frees the entries right
 * after fork: every inline table (CONF_FORGET_ALL), or those only a
 * relay's "auth <table>" names (CONF_FORGET_RELAY_AUTH, for lookup, which
 * never uses them: the mta reads them itself).  A forgotten table is
 * kept, empty, so its name still resolves; looking it up is a bug.
 */
enum conf_forget { CONF_FORGET_ALL, CONF_FORGET_RELAY_AUTH };
void			 config_forget_secrets(struct smtpd_config *,
			    enum conf_forget);

struct table	*config_find_table(const struct smtpd_config *, const char *);
struct action	*config_find_action(const struct smtpd_config *, const char *);
/*
 * A TLS security level's word ("none", "may", "encrypt", "verify",
 * "secure", "dane", "dane-only"; "no" for "none") into *level: 0, or -1
 * for any other word.  The grammar's "tls LEVEL" and the TLS policy
 * table's values.
 */
int		 conf_tls_level(const char *, enum relay_tls *);
/* the word of a level, as conf_tls_level() reads it */
const char	*conf_tls_level_name(enum relay_tls);
struct pki	*config_find_pki(const struct smtpd_config *, const char *);
struct milter_conf *config_find_milter(const struct smtpd_config *,
		    const char *);
/* the milter at index i of conf->milters, or NULL */
struct milter_conf *config_milter_at(const struct smtpd_config *, int i);
/* "tempfail", "accept", ... */
const char	*config_milter_on_error_name(enum milter_default);
/* where its socket address points: "/run/f.sock", "::1 port 11332" */
const char	*config_milter_sockaddr(const struct milter_conf *, char *,
		    size_t);
/* smtpd -n: the filters, where they are reached, and the chains */
void		 config_print_milters(const struct smtpd_config *, FILE *);
/* a pki some listener or relay action uses: its files are loaded */
int		 config_pki_used(const struct smtpd_config *, const struct pki *);
/* a pki's place in conf->pkis: its key's id in the keys process */
int		 config_pki_index(const struct smtpd_config *, const struct pki *);
/*
 * Can each process open the files the configuration names, as the user
 * it runs as (config_check.c)?  Writes one "FILE:LINE: ..." line per
 * problem to out (NULL: the log) and returns their number.
 */
int		 config_check_files(const struct smtpd_config *, FILE *out);

/* "10M", "512k", "1G", "1000" -> bytes; -1 on error */
long long	 config_parse_size(const char *);
/* "30s", "5m", "4h", "4d", "60" -> seconds; -1 on error */
long long	 config_parse_duration(const char *);
/*
 * "10/m", "3/s", "100/h", "5/10m" (N per period), "0" -> count and period
 * in seconds (0 and 0 for "0"); -1 on error
 */
int		 config_parse_rate(const char *, long long *n,
		    long long *period);

#endif
