/*
 * tls_policy.h -- the values of the TLS policy table ("mta tls-policy
 * <table>", Postfix's smtp_tls_policy_maps): a security level, then
 * attributes.  The parent checks every entry when it reads the
 * configuration (smtpd -n, start-up, reload); the mta parses them again
 * when it loads the table (mta/mta_tlspolicy.c).
 */
#ifndef POSTHASTE_TLS_POLICY_H
#define POSTHASTE_TLS_POLICY_H

#include <stdio.h>

#include "config.h"

#define TLS_POLICY_MATCH_MAX	8	/* names in match= */

/* the words of match= that stand for a name known at delivery time */
#define TLS_MATCH_HOSTNAME	"hostname"	/* the MX or relay host */
#define TLS_MATCH_NEXTHOP	"nexthop"	/* the recipient domain, or
						 * the relay host's name */
#define TLS_MATCH_DOT_NEXTHOP	"dot-nexthop"	/* any subdomain of it */

struct tls_policy {
	enum relay_tls	 level;
	/* verify and secure: the names the certificate must match, as
	 * written (the words above, or a DNS name; ".example.org" stands
	 * for its subdomains); none: each level's default (verify:
	 * hostname, secure: nexthop:dot-nexthop) */
	int		 nmatch;
	char		 match[TLS_POLICY_MATCH_MAX][CONF_HOST_MAX];
};

/*
 * One value, "LEVEL [match=NAME[:NAME...]]...", white space between the
 * fields.  0, or -1 with a reason in err.
 */
int	tls_policy_parse(const char *value, struct tls_policy *, char *err,
	    size_t errlen);

/*
 * Every entry of the configured TLS policy table, as root in the parent
 * (which may read what the mta will read).  A bad entry is written to
 * out (NULL: the log) as "FILE:LINE: ..." -- the table file's line for a
 * file: table, smtpd.conf's for the others -- and counted; returns the
 * number of problems (a table that cannot be read is one).
 */
int	config_check_tls_policy(const struct smtpd_config *, FILE *out);

#endif
