/*
 * sts.h -- SMTP MTA Strict Transport Security (MTA-STS, RFC 8461): the
 * "_mta-sts" TXT record, the policy file served at
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt, the MX name patterns
 * of a policy, and the lookup process's cache file of one policy.
 *
 * Lookup (lookup/sts.c) finds and fetches policies and keeps them; the
 * mta (mta/mta_sts.c) applies them.  Both only see what these parsers
 * accepted: everything here reads untrusted input (DNS, a web server,
 * a file in the spool) and checks it completely before use.
 */
#ifndef POSTHASTE_STS_H
#define POSTHASTE_STS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STS_POLICY_MAX		65536	/* bytes of a policy file (RFC 8461
					   3.3: senders MAY limit; 64 KB) */
#define STS_ID_MAX		33	/* 1*32(ALPHA / DIGIT), NUL */
#define STS_MX_MAX		32	/* "mx:" lines of one policy */
#define STS_NAME_MAX		256	/* a pattern or host name, NUL */
#define STS_MAX_AGE_MAX		31557600	/* RFC 8461 3.2: about a year */

#define STS_MODE_NONE		0
#define STS_MODE_TESTING	1
#define STS_MODE_ENFORCE	2

struct sts_policy {
	int		mode;		/* STS_MODE_* */
	uint32_t	max_age;	/* seconds, <= STS_MAX_AGE_MAX */
	size_t		nmx;
	/* lower case, "*.example.com" or "mx.example.com", no final dot */
	char		mx[STS_MX_MAX][STS_NAME_MAX];
};

/*
 * A TXT record of "_mta-sts.DOMAIN" (RFC 8461 3.1).  sts_txt_is_sts():
 * 1 when the record begins with "v=STSv1" and a ";" (records that do
 * not are discarded before counting them).  sts_txt_parse(): the id of a
 * valid record into id (STS_ID_MAX), 0; -1 when the record is not valid
 * (no id, a field that breaks the grammar).  Extension fields are
 * checked for syntax and otherwise ignored.
 */
int	sts_txt_is_sts(const char *txt, size_t len);
int	sts_txt_parse(const char *txt, size_t len, char *id);

/*
 * A policy file (RFC 8461 3.2): lines ended by LF or CRLF, "key: value";
 * version (STSv1), mode and max_age exactly once each, mx at least once
 * unless the mode is none; unknown keys of the extension grammar are
 * ignored.  A max_age above STS_MAX_AGE_MAX is read as that maximum.
 * 0, or -1 with a reason in *why (a static string) when it is invalid.
 */
int	sts_policy_parse(const char *buf, size_t len, struct sts_policy *,
	    const char **why);

/* "none", "testing", "enforce" */
const char *sts_mode_name(int);

/*
 * RFC 8461 4.1: does the MX host name match the pattern?  Case does not
 * matter, a final dot on the host is ignored, and "*.example.com"
 * stands for exactly one label in front of "example.com" (not
 * "example.com" itself, not "a.b.example.com").  sts_policy_mx_match():
 * does it match any pattern of the policy?
 */
int	sts_mx_match(const char *pattern, const char *host);
int	sts_policy_mx_match(const struct sts_policy *, const char *host);

/*
 * A host name usable in the patterns and in a cache file name: LDH
 * labels of 1-63 bytes joined by dots, at most 253 bytes, lower case
 * (sts_domain_valid() folds it in place); 0 valid, -1 not.
 */
int	sts_domain_valid(char *name);

/*
 * The cache file of one domain's policy (lookup/sts.c):
 *
 *	posthaste-sts-cache 1
 *	id <the TXT record's id>
 *	fetched <seconds since the epoch>
 *	length <bytes of the policy that follow>
 *	<the policy file as fetched>
 *	end
 *
 * The policy text is parsed again when the file is read, and the final
 * "end" line tells a complete file from a torn one.  sts_cache_encode():
 * the file's bytes into buf (size), their length, or -1 if they do not
 * fit.  sts_cache_decode(): 0 and the fields, or -1 when the file is not
 * a complete, valid cache file.
 */
struct sts_cache {
	char		id[STS_ID_MAX];
	time_t		fetched;
	struct sts_policy policy;
};

long	sts_cache_encode(char *buf, size_t size, const char *id,
	    time_t fetched, const char *policy, size_t policylen);
int	sts_cache_decode(const char *buf, size_t len, struct sts_cache *);

#endif
