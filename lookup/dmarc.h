/*
 * dmarc.h -- DMARC (RFC 7489) for the lookup process: the policy record
 * parser, the organizational domain (Public Suffix List through libpsl),
 * policy discovery over the asynchronous resolver (dns.h), identifier
 * alignment and the evaluation of one message.
 *
 * Who calls what: the lookup process calls dmarc_init() once before its
 * sandbox (it reads the Public Suffix List file), then dmarc_check() per
 * message at end of data, with the SPF and DKIM results the smtp worker
 * and lookup already have; the callback gets the verdict.  Everything
 * else here is pure and exposed for the unit tests, the fuzz harness and
 * `smtpctl' style tools.
 */
#ifndef POSTHASTE_DMARC_H
#define POSTHASTE_DMARC_H

#include <stddef.h>
#include <stdint.h>

#include "dmarc_record.h"


/*
 * Parse one TXT record (len bytes, may hold NULs: they are an error).
 * Returns
 *	 1 a record to use (policy from p=, or p=none under 6.6.3 step 6:
 *	   p= missing or invalid but rua= has a valid URI; p_invalid says so)
 *	 0 not a DMARC record at all (does not start with v=DMARC1): such
 *	   records are discarded before counting (6.6.3 step 4)
 *	-1 a DMARC record that cannot be applied (no valid p= and no valid
 *	   rua=); *err says why
 * Tags: names case-insensitive, unknown tags ignored, the first of a
 * repeated tag wins; values as RFC 7489 6.4's ABNF.
 */
int	dmarc_parse_record(const char *txt, size_t len,
	    struct dmarc_record *, const char **err);

/*
 * The organizational domain (RFC 7489 3.2) of a lower-case domain: the
 * public suffix plus one label, from the Public Suffix List (ICANN and
 * private sections, as libpsl's registrable domain); a domain that is
 * itself a public suffix is its own organizational domain.  out gets a
 * lower-case copy; -1 when the domain is not one (empty, too long) or
 * out is too small.  Works before dmarc_init() on libpsl's built-in
 * list (the tests say which list they use).
 */
int	dmarc_org_domain(const char *domain, char *out, size_t outlen);

/*
 * Load the Public Suffix List: psl_latest(NULL), which reads Debian's
 * /usr/share/publicsuffix/public_suffix_list.dafsa (package publicsuffix,
 * kept current by apt) and keeps the newer of it and libpsl's built-in
 * copy (the built-in one alone when the file is absent).  Call once
 * before the sandbox: nothing is read afterwards; that file belongs in
 * lookup's read set (lookup/lookup.c lookup_read_set) only if the lookup
 * process is ever made to reload it.  0, or -1 when libpsl has no list
 * at all.
 */
int	dmarc_init(void);
void	dmarc_shutdown(void);

/* the file libpsl reads (for the log and lookup's read set) */
const char *dmarc_psl_file(void);

/*
 * Identifier alignment (RFC 7489 3.1): strict means the two domains are
 * equal, relaxed that their organizational domains are (case-insensitive
 * both).  1 aligned, 0 not.
 */
int	dmarc_aligned(const char *from_domain, const char *auth_domain,
	    int mode);

/*
 * An authentication result as DMARC needs it.  The caller maps the SPF
 * (RFC 7208 2.6) and DKIM (RFC 6376 6.1, RFC 8601 2.7.1) results: only
 * pass counts for DMARC; a temporary error of an identifier that would
 * have aligned keeps the verdict from being a fail (see dmarc_evaluate).
 */
#define DMARC_AUTH_NONE		0
#define DMARC_AUTH_PASS		1
#define DMARC_AUTH_FAIL		2	/* SPF fail, softfail, neutral too */
#define DMARC_AUTH_TEMPERROR	3
#define DMARC_AUTH_PERMERROR	4

struct dmarc_dkim {
	char		domain[DMARC_DOMAIN_MAX];	/* the signature's d= */
	int		result;				/* DMARC_AUTH_* */
};

/*
 * One message.  from_domain: the RFC 5322.From domain (exactly one
 * From with one address: what to do otherwise is the caller's policy,
 * RFC 7489 6.6.1), internationalized names in A-labels (xn--...): a
 * name with other than letters, digits, '-' and '_' is permerror.  spf_domain: the MAIL FROM domain, or the HELO
 * domain when MAIL FROM was null (RFC 7489 4.1 and RFC 7208 2.4), with
 * spf_result the SPF result for that identity.  dkim: every verified or
 * failed signature's d= with its result, at most DMARC_MAX_DKIM.
 */
struct dmarc_req {
	char			from_domain[DMARC_DOMAIN_MAX];
	char			spf_domain[DMARC_DOMAIN_MAX];
	int			spf_result;		/* DMARC_AUTH_* */
	size_t			ndkim;
	struct dmarc_dkim	dkim[DMARC_MAX_DKIM];
};

/* the verdict (RFC 8601 2.7.4 names) */
#define DMARC_RESULT_NONE	0	/* no policy published */
#define DMARC_RESULT_PASS	1
#define DMARC_RESULT_FAIL	2
#define DMARC_RESULT_TEMPERROR	3	/* DNS failed: try again later */
#define DMARC_RESULT_PERMERROR	4	/* unusable record or From domain */

struct dmarc_result {
	int		result;			/* DMARC_RESULT_* */
	int		policy;			/* p or sp, as applied */
	int		subdomain;		/* 1: sp applied */
	int		disposition;		/* after pct: what to do; only
						   a fail has another than
						   DMARC_POLICY_NONE */
	int		sampled_out;		/* pct spared this message */
	int		aligned_spf;		/* SPF passed and aligned */
	int		aligned_dkim;		/* a DKIM pass aligned */
	char		dkim_domain[DMARC_DOMAIN_MAX];	/* that d= */
	char		domain[DMARC_DOMAIN_MAX];	/* the From domain */
	char		org_domain[DMARC_DOMAIN_MAX];
	char		policy_domain[DMARC_DOMAIN_MAX]; /* record's owner */
	struct dmarc_record record;		/* rua= for the reports */
	const char	*reason;		/* static text, for logs */
};

/*
 * Decide with a record already found (the pure part of dmarc_check):
 * record NULL means none was published.  at_org: the record came from
 * the organizational domain's _dmarc (sp applies when the From domain
 * is another, a subdomain).  A pass needs one aligned pass (SPF or any
 * DKIM signature); with none, a temporary error of an identifier that
 * is aligned makes the verdict temperror (a DNS failure must never turn
 * into a rejection), otherwise it is a fail and the disposition is the
 * policy, or the next less strict one when the pct= sample spares the
 * message (6.6.4: reject -> quarantine -> none).  res->domain,
 * org_domain and policy_domain must be set by the caller.
 */
void	dmarc_evaluate(const struct dmarc_req *, const struct dmarc_record *,
	    int at_org, struct dmarc_result *);

/*
 * The pct= sampling draws from this source: n -> uniform in [0, n).
 * Default arc4random_uniform; the unit tests inject their own.  NULL
 * restores the default.
 */
void	dmarc_set_random(uint32_t (*uniform)(uint32_t));

/*
 * Policy discovery (RFC 7489 6.6.3) and evaluation: TXT of
 * _dmarc.<From domain>; when it holds no DMARC record (NXDOMAIN, no
 * TXT, only other records), TXT of _dmarc.<organizational domain>.
 * Several DMARC records at the name asked: no policy (result none).  A
 * DNS failure: temperror.  The callback always runs later from the
 * event loop, exactly once, never from inside this call; the result is
 * valid during the callback only.  Lookup process only.
 */
typedef void	(*dmarc_cb)(void *arg, const struct dmarc_result *);
void	dmarc_check(const struct dmarc_req *, dmarc_cb, void *arg);

/*
 * The names, for Authentication-Results (RFC 8601 2.7.4), logs and
 * reports: "none", "pass", "fail", "temperror", "permerror"; the
 * policies' names are dmarc_record.h's dmarc_policy_name().
 */
const char *dmarc_result_name(int);

/*
 * A rua/ruf URI's mailbox when it is a mailto: URI (RFC 6068; the
 * address percent-decoded, hfields after '?' dropped) and its size limit
 * ("!10m", RFC 7489 6.4; 0 when none).  0, or -1 when the URI is not a
 * usable mailto:.  Checking that a foreign domain agreed to receive the
 * reports (RFC 7489 7.1) is the sender's business, before mailing.
 */
int	dmarc_uri_mailto(const char *uri, char *addr, size_t addrlen,
	    uint64_t *maxsize);

#endif
