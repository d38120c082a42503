/*
 * tlsrpt_report.h -- the JSON of an SMTP TLS report (RFC 8460 section
 * 4), its file name (5.1) and its Subject (5.3).
 *
 * Who calls what: the queue process (queue/tlsrpt_send.c), which keeps
 * the day's outcomes (common/tlsrpt_rec.h), sums them per policy domain
 * and policy, then calls tlsrpt_report_json(), gzip_buffer(),
 * tlsrpt_report_filename() and tlsrpt_report_subject().  Pure functions,
 * no I/O.
 */
#ifndef POSTHASTE_TLSRPT_REPORT_H
#define POSTHASTE_TLSRPT_REPORT_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tlsrpt.h"

/* one failure-details entry: the failed sessions alike in every field */
struct tlsrpt_failure {
	int			 result;	/* TLSRPT_* but SUCCESS */
	struct sockaddr_storage	 sending_ip;	/* ss_family 0: left out */
	struct sockaddr_storage	 receiving_ip;	/* likewise */
	char			 mx_host[256];	/* "" left out */
	char			 reason[256];	/* failure-reason-code, "" */
	uint64_t		 count;
};

/* one entry of "policies": one policy and the sessions under it */
struct tlsrpt_policy_sum {
	int				 type;		/* TLSRPT_POLICY_* */
	const char			*policy_string;	/* lines, '\n' between;
							   "" or NULL: none */
	const char			*mx_hosts;	/* likewise: the MX
							   hosts seen */
	uint64_t			 success, failure;
	const struct tlsrpt_failure	*fails;
	size_t				 nfail;
};

struct tlsrpt_report_meta {
	const char	*org_name;
	const char	*contact_info;		/* our report address */
	const char	*report_id;		/* letters, digits, ".-_+" */
	const char	*submitter;		/* our domain (5.1, 5.3) */
	time_t		 begin, end;		/* UTC seconds */
};

/*
 * The report (section 4.4's shape): organization-name, date-range,
 * contact-info, report-id, and per policy: policy-type, policy-string[]
 * (one string per line of policy_string), policy-domain, mx-host[]
 * (for an "sts" policy the patterns of its "mx:" lines, else the hosts
 * seen), the summary and the failure-details.  A malloc'd
 * NUL-terminated document and its length, or NULL (out of memory, no
 * policy, a field out of range).
 */
char	*tlsrpt_report_json(const struct tlsrpt_report_meta *,
	    const char *policy_domain, const struct tlsrpt_policy_sum *,
	    size_t npolicy, size_t *len);

/* 5.1: submitter!policy-domain!begin!end.json.gz; 0 or -1 */
int	tlsrpt_report_filename(const struct tlsrpt_report_meta *,
	    const char *policy_domain, char *out, size_t outlen);

/*
 * 5.3: "Report Domain: <policy domain> Submitter: <submitter>
 * Report-ID: <<report_id>@<submitter>>"; 0 or -1.
 */
int	tlsrpt_report_subject(const struct tlsrpt_report_meta *,
	    const char *policy_domain, char *out, size_t outlen);

#endif
