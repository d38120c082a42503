/*
 * dnsbl.h -- DNS block and allow lists (RFC 5782) with Postfix's
 * postscreen_dnsbl_sites semantics: each list has a weight (negative for
 * allow lists), the weights of the lists that answer are summed, and the
 * client is listed when the sum reaches a threshold.
 *
 * Who calls what: the config parser calls dnsbl_parse_list() per list
 * spec and reports its error with file:line; the lookup process calls
 * dnsbl_check() per client connection (asynchronous, over dns_query()
 * on its event loop) and answers the smtp worker, which rejects with
 * 554 5.7.1 naming the lists that hit (dnsbl_hits_text()).
 */
#ifndef POSTHASTE_DNSBL_H
#define POSTHASTE_DNSBL_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#define DNSBL_MAX_LISTS		16	/* lists in one set */
#define DNSBL_MAX_FILTERS	8	/* address patterns per list */
#define DNSBL_MAX_ADDRS		8	/* A records kept per answer */
#define DNSBL_ZONE_MAX		192	/* room for 64 nibble labels too */
#define DNSBL_TIMEOUT		10	/* seconds per query */
#define DNSBL_CACHE_SIZE	4096	/* answers cached (one slot each) */
#define DNSBL_TTL_MAX		3600	/* a cached answer lives at most */
#define DNSBL_NEG_TTL		300	/* NXDOMAIN/no data (no SOA seen) */

/* one address pattern: the values each octet may take, a bit each */
struct dnsbl_filter {
	uint32_t	octet[4][8];
};

struct dnsbl_list {
	char			zone[DNSBL_ZONE_MAX];	/* lower case */
	int			weight;			/* default 1 */
	size_t			nfilter;		/* 0: any 127/8 */
	struct dnsbl_filter	filter[DNSBL_MAX_FILTERS];
};

/*
 * One list spec: "zone[=pattern;pattern...][*weight]" where a pattern is
 * d.d.d.d and each d is a number 0..255 or "[n;m..k;...]" (numbers and
 * ranges); weight an integer (negative: an allow list), default 1.
 * Examples: "zen.spamhaus.org*2", "bl.example=127.0.0.[2..4];127.0.0.10",
 * "list.dnswl.org=127.0.[0..255].[1..3]*-5".  0, or -1 with a message
 * in err ("weight: not a number" ...).
 */
int	dnsbl_parse_list(const char *spec, struct dnsbl_list *, char *err,
	    size_t errlen);

/*
 * The lists of one configuration with the threshold: listed when the
 * sum >= threshold (default 1); allowlisted when allow_threshold < 0
 * and the sum <= allow_threshold (Postfix's
 * postscreen_dnsbl_allowlist_threshold; 0 turns it off).
 */
struct dnsbl_set {
	size_t			nlist;
	struct dnsbl_list	list[DNSBL_MAX_LISTS];
	int			threshold;
	int			allow_threshold;
};

/*
 * The question for addr in zone: reversed octets for IPv4
 * ("2.0.0.127.zone"), 32 reversed nibbles for IPv6 (RFC 5782 2.4);
 * IPv4-mapped IPv6 addresses are asked as IPv4.  0, or -1 when addr is
 * neither or the name does not fit.
 */
int	dnsbl_query_name(const struct sockaddr_storage *addr,
	    const char *zone, char *out, size_t outlen);

/*
 * Does this answer (A records, host order in a uint32_t each) hit list?
 * Any record matching any of its patterns; with no pattern any record
 * in 127.0.0.0/8 except 127.255.255.0/24, which lists such as Spamhaus
 * use to say "query refused" (RFC 5782 2.1: listings are in 127/8).
 */
int	dnsbl_answer_hits(const struct dnsbl_list *, const uint32_t *addrs,
	    size_t naddrs);

struct dnsbl_result {
	int		score;		/* sum of the weights that hit */
	int		listed;		/* score >= threshold */
	int		allowlisted;
	size_t		nhit;
	size_t		hit[DNSBL_MAX_LISTS];	/* indexes in the set */
	size_t		nfailed;	/* lists that did not answer */
};

/*
 * "zone1, zone2" for the 554 5.7.1 text and the log: the block lists
 * (positive weight) that hit.
 */
void	dnsbl_hits_text(const struct dnsbl_set *, const struct dnsbl_result *,
	    char *out, size_t outlen);

/*
 * Ask every list of the set about addr at once and sum up.  A list whose
 * query fails (timeout, SERVFAIL) counts as not answering (logged, and
 * in nfailed): never a rejection by itself.  Answers are cached per
 * name for their TTL (at most DNSBL_TTL_MAX; negative ones
 * DNSBL_NEG_TTL) in a cache of DNSBL_CACHE_SIZE slots.  The set is
 * copied.  The callback always runs later from the event loop, exactly
 * once, never from inside this call.  Lookup process only.
 */
typedef void	(*dnsbl_cb)(void *arg, const struct dnsbl_result *);
void	dnsbl_check(const struct dnsbl_set *,
	    const struct sockaddr_storage *addr, dnsbl_cb, void *arg);

/* forget every cached answer (tests, config reload) */
void	dnsbl_cache_clear(void);
/* the cache's statistics: answers from it, and questions sent */
void	dnsbl_cache_stats(uint64_t *hits, uint64_t *misses);

#endif
