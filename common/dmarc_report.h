/*
 * dmarc_report.h -- DMARC aggregate reports (RFC 7489 7.2): the XML of
 * Appendix C for one policy domain and one period, gzip'd, with the file
 * name and Subject line of 7.2.1.1.
 *
 * Who calls what: the queue process (queue/dmarc_send.c), which keeps
 * the day's rows in the spool and mails the reports, builds the rows
 * for one policy domain, then calls dmarc_report_xml(),
 * gzip_buffer(), dmarc_report_filename() and
 * dmarc_report_subject().  Pure functions, no I/O.
 */
#ifndef POSTHASTE_DMARC_REPORT_H
#define POSTHASTE_DMARC_REPORT_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dmarc_record.h"
#include "gzip.h"

/* authentication results as reported (DKIMResultType, SPFResultType) */
#define DMARC_RPT_NONE		0
#define DMARC_RPT_PASS		1
#define DMARC_RPT_FAIL		2
#define DMARC_RPT_POLICY	3	/* DKIM only; SPF says fail */
#define DMARC_RPT_NEUTRAL	4
#define DMARC_RPT_SOFTFAIL	5	/* SPF only; DKIM says fail */
#define DMARC_RPT_TEMPERROR	6
#define DMARC_RPT_PERMERROR	7

#define DMARC_RPT_SPF_MFROM	0
#define DMARC_RPT_SPF_HELO	1

#define DMARC_RPT_SELECTOR_MAX	64

struct dmarc_report_dkim {
	char		domain[DMARC_DOMAIN_MAX];	/* d= */
	char		selector[DMARC_RPT_SELECTOR_MAX]; /* s=, "" none */
	int		result;				/* DMARC_RPT_* */
};

/* one <record>: messages from one source with the same results */
struct dmarc_report_row {
	struct sockaddr_storage	source_ip;
	uint64_t		count;
	int			disposition;	/* DMARC_POLICY_* applied */
	int			dkim_pass;	/* aligned DKIM passed */
	int			spf_pass;	/* aligned SPF passed */
	int			sampled_out;	/* reason: pct spared them */
	char			header_from[DMARC_DOMAIN_MAX];
	char			envelope_from[DMARC_DOMAIN_MAX]; /* "" null */
	char			envelope_to[DMARC_DOMAIN_MAX];	/* "" left out */
	size_t			ndkim;
	struct dmarc_report_dkim dkim[DMARC_MAX_DKIM];
	char			spf_domain[DMARC_DOMAIN_MAX];
	int			spf_scope;	/* DMARC_RPT_SPF_* */
	int			spf_result;	/* DMARC_RPT_* */
};

/* who reports, about which period */
struct dmarc_report_meta {
	const char	*org_name;		/* "Example Org" */
	const char	*email;			/* contact address */
	const char	*extra_contact_info;	/* NULL: left out */
	const char	*report_id;		/* unique per report: letters,
						   digits, '.', '-', '_' */
	const char	*receiver;		/* our domain (file name,
						   Subject) */
	time_t		 begin, end;		/* UTC seconds */
};

/*
 * The report's XML (Appendix C: feedback, version, report_metadata,
 * policy_published, one record per row) for the policy found at
 * policy_domain; rec is that record (adkim, aspf, p, sp, pct, fo as
 * published).  Text is escaped; bytes outside printable ASCII become
 * '?' (domains are A-labels, so nothing real is lost); IPv6 sources are
 * written in full (eight groups: the schema's pattern wants that).  A
 * malloc'd NUL-terminated buffer and its length, or NULL (out of
 * memory, no rows, or a meta field missing or invalid).
 */
char	*dmarc_report_xml(const struct dmarc_report_meta *,
	    const char *policy_domain, const struct dmarc_record *rec,
	    const struct dmarc_report_row *rows, size_t nrow, size_t *len);

/*
 * 7.2.1.1's file name: receiver!policy-domain!begin!end[!unique].xml.gz
 * (unique NULL or letters and digits only).  0, or -1 when a domain is
 * not one or out is too small.
 */
int	dmarc_report_filename(const struct dmarc_report_meta *,
	    const char *policy_domain, const char *unique, char *out,
	    size_t outlen);

/*
 * 7.2.1.1's Subject value (without "Subject: "):
 * "Report Domain: <policy domain> Submitter: <receiver>
 * Report-ID: <<report_id>@<receiver>>" (a msg-id, as its ABNF asks).
 * 0, or -1 on an invalid domain or id or a small buffer.
 */
int	dmarc_report_subject(const struct dmarc_report_meta *,
	    const char *policy_domain, char *out, size_t outlen);

#endif
