/*
 * tlsrpt.h -- the words of SMTP TLS Reporting (RFC 8460): the policy
 * types a report covers and the result types of its failure details
 * (section 4.3), shared by the mta (which sees each outcome) and the
 * processes that count and send the reports.
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

#endif
