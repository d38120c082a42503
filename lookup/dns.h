/*
 * dns.h -- the lookup process's asynchronous resolver (libunbound on the
 * process's own libevent loop) and the questions built on it: reverse
 * DNS of clients, MX routes for the mta, sender domain checks.
 */
#ifndef POSTHASTE_DNS_H
#define POSTHASTE_DNS_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* outcome of one query */
#define DNS_OK		0	/* records of the asked type (nrr > 0) */
#define DNS_NODATA	1	/* the name exists, no such records */
#define DNS_NXDOMAIN	2	/* the name does not exist */
#define DNS_TEMPFAIL	3	/* SERVFAIL, timeout, resolver trouble */

#define DNS_T_A		1
#define DNS_T_PTR	12
#define DNS_T_MX	15
#define DNS_T_TXT	16
#define DNS_T_AAAA	28
#define DNS_T_TLSA	52	/* RFC 6698 */

/*
 * OR'ed into a query's type: MX and PTR names of any printable ASCII are
 * kept, in presentation form (escapes such as \032 as they came), not
 * only host names.  For SPF (RFC 7208 7.1: a domain-spec may hold any
 * visible character), whose names go back into dns_query() only.
 */
#define DNS_Q_ANYNAME	0x10000
/*
 * OR'ed into a query's type: ask the validating resolver (the DNSSEC
 * trust anchor's; dns_init_dnssec()), for DANE (RFC 7672 2.2): the
 * answer's `secure' and `bogus' say what validation found.  Without a
 * trust anchor every such answer is insecure.
 */
#define DNS_Q_DNSSEC	0x20000
#define DNS_Q_FLAGS	(DNS_Q_ANYNAME | DNS_Q_DNSSEC)

#define DNS_MAX_RR	32	/* answers kept per query; more are ignored */
#define DNS_NAME_MAX	256
#define DNS_TXT_MAX	16384	/* all TXT strings of one answer together */
#define DNS_TLSA_DATA_MAX 2048	/* one TLSA record's association data */

struct dns_rr {
	uint16_t		type;
	uint16_t		preference;		/* MX */
	uint32_t		ttl;
	uint32_t		txt;			/* TXT, TLSA: offset in
							 * txtbuf */
	uint32_t		txtlen;			/* TXT, TLSA: length */
	uint8_t			tlsa_usage;		/* TLSA (RFC 6698 2.1) */
	uint8_t			tlsa_selector;
	uint8_t			tlsa_mtype;
	char			name[DNS_NAME_MAX];	/* MX, PTR target */
	struct sockaddr_storage	addr;			/* A, AAAA */
};

struct dns_result {
	int		status;		/* DNS_* */
	int		secure;		/* DNSSEC validated (for DANE) */
	int		bogus;		/* DNSSEC validation failed (status
					 * is then DNS_TEMPFAIL) */
	size_t		nrr;
	struct dns_rr	rr[DNS_MAX_RR];
	/*
	 * TXT records: each record's character-strings joined without
	 * separator (RFC 7208 3.3, RFC 6376 3.6.2.2), NUL-terminated, at
	 * rr[i].txt; a record with a NUL inside is kept (txtlen says its
	 * length), the caller decides.  dns_rr_txt() reads one.  A TLSA
	 * record's association data (binary) is kept here the same way.
	 */
	size_t		txtused;
	char		txtbuf[DNS_TXT_MAX];
};

static inline const char *
dns_rr_txt(const struct dns_result *res, const struct dns_rr *rr)
{
	return res->txtbuf + rr->txt;
}

typedef void	(*dns_cb)(void *arg, const struct dns_result *);

/*
 * The answer section of a DNS reply (pkt, len: the wire message as the
 * resolver returned it, rcode its result code) into res: the records of
 * type qtype and class IN, at most DNS_MAX_RR; names lower case, without
 * the trailing dot, LDH labels only (a record with any other name is
 * skipped); A and AAAA of the right length only; TXT records whole (a
 * record whose strings overrun its data is malformed; records that no
 * longer fit in txtbuf are left out); TLSA records with their three
 * fields and at most DNS_TLSA_DATA_MAX bytes of data (at least one),
 * the data in txtbuf as for TXT (a longer record is left out).  Never
 * reads outside
 * pkt; any malformed message is DNS_TEMPFAIL.  Exposed for the unit
 * tests and the fuzz harness.
 */
void	dns_parse_answer(struct dns_result *res, int qtype, int rcode,
	    const unsigned char *pkt, int len);

/*
 * Set up the resolver on ev_base from conf ("resolver ADDR [port N]",
 * else /etc/resolv.conf) with /etc/hosts honoured.  Call before the
 * sandbox: it reads those files.  Fatal on failure.
 */
void	dns_init(void);
/* the same with an explicit forwarder (NULL: resolv.conf); for tests */
int	dns_init_with(const char *addr, uint16_t port, const char *hosts);
/*
 * The validating resolver of DNS_Q_DNSSEC queries, with the same
 * forwarder as dns_init_with()'s (call after it): its trust anchors read
 * now from `file' (DS or DNSKEY records in zone file form, one a line,
 * ';' comments), such as Debian's root key /usr/share/dns/root.key.  -1
 * (logged with the file's line) when the file cannot be read or a
 * record is refused.  Without it, DNS_Q_DNSSEC answers are insecure.
 */
int	dns_init_dnssec(const char *file);
/* one line of such a file (comment removed) is a DS or DNSKEY record */
int	dns_anchor_ok(const char *line);
#define DNS_ROOT_ANCHOR	"/usr/share/dns/root.key"	/* dns-root-data */
void	dns_shutdown(void);

/*
 * Ask for `type' records of `name'.  The callback always runs later
 * from the event loop, exactly once, never from inside this call, with
 * only records of the asked type (CNAME chains are followed by the
 * resolver).  A query not answered in `timeout' seconds reports
 * DNS_TEMPFAIL.
 */
void	dns_query(const char *name, int type, int timeout, dns_cb, void *arg);

/* "1.2.3.4" / "::1" -> in-addr.arpa / ip6.arpa name; -1 if not IP */
int	dns_ptr_name(const struct sockaddr_storage *, char *, size_t);
/* same address (v4-mapped IPv6 equal to its IPv4), ports ignored */
int	dns_addr_equal(const struct sockaddr_storage *,
	    const struct sockaddr_storage *);

/*
 * Reverse DNS of a client, forward-confirmed: PTR names, then their
 * A/AAAA records must contain the address.  The callback gets a filled
 * struct lka_rdns (status PROTO_OK with name, PROTO_PERMFAIL when there
 * is no PTR, PROTO_TEMPFAIL on DNS trouble; fcrdns 1 when confirmed).
 */
typedef void	(*dns_rdns_cb)(void *arg, const struct lka_rdns *);
void	dns_rdns(const struct lka_rdns *req, dns_rdns_cb, void *arg);

/* IMSG_LKA_RDNS from an smtp worker: answer on the same channel */
struct mproc;
void	dns_lka_rdns(struct mproc *, const struct lka_rdns *);

/*
 * IMSG_LKA_SENDER: does the MAIL FROM domain exist for mail (MX, or
 * A/AAAA)?  Answers IMSG_LKA_SENDER with a struct lka_result: OK,
 * 550 5.1.8 (no such domain), 550 5.7.27 (null MX), 450 4.1.8 (DNS
 * failed temporarily).
 */
void	dns_lka_sender(struct mproc *, const struct lka_rcpt_req *);
typedef void	(*dns_result_cb)(void *arg, const struct lka_result *);
void	dns_check_sender(const struct lka_rcpt_req *, dns_result_cb, void *);

/*
 * IMSG_LKA_MX from the mta: IMSG_LKA_MX_HOST per address (MX preference
 * order, equal preferences shuffled; A/AAAA of the domain when there is
 * no MX; the relay host when relay_host is set), with LKA_MX_DANE the
 * IMSG_LKA_MX_TLSA of each secure host, then IMSG_LKA_MX_RESULT.  mx.c.
 */
void	dns_lka_mx(struct mproc *, const struct lka_mx_req *);
typedef void	(*dns_mx_host_cb)(void *arg, const struct lka_mx_host *);
void	dns_mx(const struct lka_mx_req *, dns_mx_host_cb, dns_result_cb,
	    void *arg);
/* the same, with the TLSA answers of LKA_MX_DANE (after the hosts) */
typedef void	(*dns_mx_tlsa_cb)(void *arg, const struct lka_mx_tlsa *);
void	dns_mx_dane(const struct lka_mx_req *, dns_mx_host_cb, dns_mx_tlsa_cb,
	    dns_result_cb, void *arg);

/*
 * tlsa.c: is a TLSA record usable for SMTP (RFC 7672 3.1.3, RFC 6698
 * 2.1)?  DANE-TA(2) and DANE-EE(3) only, selector 0 (certificate) or 1
 * (public key), matching type 0 (full), 1 (SHA-256, 32 bytes) or 2
 * (SHA-512, 64 bytes), with data of the length the type says.
 */
int	dns_tlsa_usable(uint8_t usage, uint8_t selector, uint8_t mtype,
	    size_t datalen);
/* tlsa.c: "_25._tcp.HOST", the TLSA name of a host and port; -1 too long */
int	dns_tlsa_name(const char *host, uint16_t port, char *, size_t);
/*
 * tlsa.c: what a DNS_Q_DNSSEC answer to a TLSA question means for the
 * host (RFC 7672 2.2), an LKA_TLSA_* of proto.h: LKA_TLSA_NONE (no
 * records, or not secure: no DANE), LKA_TLSA_RECORD (secure, at least
 * one usable record), LKA_TLSA_UNUSABLE (secure, none usable: TLS
 * without authentication), LKA_TLSA_BOGUS (validation failed or no
 * answer: the host may not be used without DANE).
 */
int	dns_tlsa_kind(const struct dns_result *);

/* parse "smtp://host:port" style relay URLs: host and port (0 = none) */
int	dns_parse_relay_url(const char *url, char *host, size_t hostlen,
	    uint16_t *port);

/*
 * MTA-STS (RFC 8461), sts.c: the policy of a domain (a host name; any
 * other name has none), from the cache or fetched over HTTPS, as the
 * payload of IMSG_LKA_MX_STS for request reqid.  The callback runs
 * later from the event loop, exactly once.  sts_init() before the
 * sandbox: it reads the trust anchors and opens the cache directory.
 */
typedef void	(*sts_result_cb)(void *arg, const struct lka_mx_sts *);
void	sts_init(void);
void	sts_lookup(uint32_t reqid, const char *domain, sts_result_cb,
	    void *arg);

#endif
