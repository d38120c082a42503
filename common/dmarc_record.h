/*
 * dmarc_record.h -- a published DMARC policy record (RFC 7489 6.3) as
 * the lookup process found it, shared with the queue, which writes the
 * aggregate reports (dmarc_report.h) about it: the record's limits and
 * tags, and the names of its policies.  The parser and everything that
 * asks DNS stay in lookup/dmarc.h.
 */
#ifndef POSTHASTE_DMARC_RECORD_H
#define POSTHASTE_DMARC_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define DMARC_DOMAIN_MAX	256	/* a domain name, NUL included */
#define DMARC_URI_MAX		256	/* one rua/ruf URI, NUL included */
#define DMARC_MAX_URI		8	/* URIs kept per tag; more ignored */
#define DMARC_MAX_DKIM		8	/* DKIM signatures looked at */
#define DMARC_TIMEOUT		10	/* seconds per DNS query */

/* requested policies (p=, sp=) and dispositions */
#define DMARC_POLICY_NONE	0
#define DMARC_POLICY_QUARANTINE	1
#define DMARC_POLICY_REJECT	2

/* adkim=, aspf= */
#define DMARC_ALIGN_RELAXED	0
#define DMARC_ALIGN_STRICT	1

/* fo= options, a bit each */
#define DMARC_FO_0		0x01	/* all mechanisms failed (default) */
#define DMARC_FO_1		0x02	/* any mechanism failed */
#define DMARC_FO_D		0x04	/* DKIM failed */
#define DMARC_FO_S		0x08	/* SPF failed */

/*
 * One parsed record.  Syntax errors in tags after v= and p= leave the
 * defaults of RFC 7489 6.3 (sp = p, pct 100, relaxed alignment, fo=0,
 * rf=afrf, ri 86400): "syntax errors in the remainder of the record
 * SHOULD be discarded in favor of default values".
 */
struct dmarc_record {
	int		policy;		/* p= (DMARC_POLICY_NONE if p_invalid) */
	int		subpolicy;	/* sp=, else p */
	int		p_invalid;	/* p= missing or bad, or sp= bad; the
					   record is p=none for rua's sake
					   (6.6.3 step 6) */
	int		pct;		/* 0..100 */
	int		adkim;		/* DMARC_ALIGN_* */
	int		aspf;
	int		fo;		/* DMARC_FO_* */
	int		rf_afrf;	/* rf= names afrf (the only format) */
	uint32_t	ri;		/* seconds between aggregate reports */
	size_t		nrua;
	char		rua[DMARC_MAX_URI][DMARC_URI_MAX];
	size_t		nruf;
	char		ruf[DMARC_MAX_URI][DMARC_URI_MAX];
};

/* "none", "quarantine", "reject" (reports, logs, Authentication-Results) */
const char *dmarc_policy_name(int);

#endif
