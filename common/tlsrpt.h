/*
 * tlsrpt.h -- the words of SMTP TLS Reporting (RFC 8460): the policy
 * types a report covers and the result types of its failure details
 * (section 4.3), shared by the mta (which sees each outcome) and the
 * processes that count and send the reports; and the reader of the
 * policy domain's "_smtp._tls" TXT record (section 3), which lookup
 * uses to learn where a domain wants its reports (common/tlsrpt.c).
 */
#ifndef POSTHASTE_TLSRPT_H
#define POSTHASTE_TLSRPT_H

/* "policy-type" */
#define TLSRPT_POLICY_NONE	0	/* "no-policy-found" */
#define TLSRPT_POLICY_STS	1	/* "sts" */
#define TLSRPT_POLICY_TLSA	2	/* "tlsa" */

/* a success, or a failure's "result-type" */
#define TLSRPT_SUCCESS			0
#define TLSRPT_STARTTLS_NOT_SUPPORTED	1	/* negotiation failures */
#define TLSRPT_CERT_HOST_MISMATCH	2
#define TLSRPT_CERT_EXPIRED		3
#define TLSRPT_CERT_NOT_TRUSTED		4
#define TLSRPT_VALIDATION_FAILURE	5
#define TLSRPT_TLSA_INVALID		6	/* policy failures */
#define TLSRPT_DNSSEC_INVALID		7
#define TLSRPT_DANE_REQUIRED		8
#define TLSRPT_STS_POLICY_FETCH_ERROR	9
#define TLSRPT_STS_POLICY_INVALID	10
#define TLSRPT_STS_WEBPKI_INVALID	11
#define TLSRPT_NRESULTS			12

#include <stddef.h>

/* the words above as RFC 8460 spells them; NULL when out of range */
const char	*tlsrpt_policy_type_name(int);
const char	*tlsrpt_result_name(int);

/*
 * A "v=TLSRPTv1" record's rua= URIs (section 3), in the record's order,
 * as written (percent-encoding kept: a URI's "," and "!" are encoded).
 * URIs past TLSRPT_MAX_RUA, or longer than TLSRPT_URI_MAX - 1, are left
 * out (a record with none left is refused).
 */
#define TLSRPT_MAX_RUA	4
#define TLSRPT_URI_MAX	512
struct tlsrpt_record {
	size_t	nrua;
	char	rua[TLSRPT_MAX_RUA][TLSRPT_URI_MAX];
};

/*
 * One TXT string (the strings of one record joined): 0 and *rec filled;
 * -1 when it is not a TLS-RPT record at all (it does not start with
 * "v=TLSRPTv1"; RFC 8460 3: such records are ignored); -2 when it is one
 * but malformed (no rua=, a bad field) -- the domain then gets no
 * reports.  RFC 8460 3 also says that more than one TLS-RPT record is
 * as none: the caller counts the 0 and -2 answers.
 */
int	tlsrpt_record_parse(const char *txt, size_t len,
	    struct tlsrpt_record *rec);

/*
 * A "mailto:" URI's address (RFC 6068: percent-decoded, anything from
 * '?' on dropped), lower-cased domain kept as written: 0, or -1 when the
 * URI is not mailto:, has no single '@', decodes to bytes that are not
 * printable ASCII, or does not fit.
 */
int	tlsrpt_uri_mailto(const char *uri, char *addr, size_t addrlen);

/* 1 when the URI is https: (RFC 8460 3: POST the report there) */
int	tlsrpt_uri_https(const char *uri);

#endif
