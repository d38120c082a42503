/*
 * dmarc_collect.c -- lookup's part of the DMARC aggregate reports
 * (RFC 7489 7.2): after DMARC judged a message (checks.c), the row that
 * message adds to the next report of its policy domain, sent to the
 * queue, which keeps the day's rows and mails the reports
 * (queue/dmarc_send.c).
 *
 * Why here and not in the queue: lookup has what the row needs (the
 * published record, the DKIM and SPF results) and the Public Suffix
 * List.  So the rua mailboxes are chosen here, once per message:
 *  - only "dmarc reports from" turns this on: mailing third parties is
 *    the administrator's decision, never a default;
 *  - only pass and fail count (RFC 7489 7.2: none has no record to
 *    report to; a temperror was not judged);
 *  - only mailto: URIs whose domain has the policy domain's
 *    organizational domain.  The other ("external") ones need the
 *    verification record of RFC 7489 7.1, which we do not look up: they
 *    are skipped with a log line.  Mail to a domain that never asked for
 *    it is exactly what 7.1 exists to prevent.
 * A row whose strings are not tokens (dmarc_rec.h: a From: domain or
 * selector with spaces or 8-bit bytes) is dropped with a log line; the
 * report's XML is ASCII-only anyway.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dkim.h"
#include "dmarc.h"
#include "dmarc_rec.h"
#include "dmarc_report.h"
#include "log.h"
#include "lookup.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "spf.h"

static int
rpt_of_spf(int r)
{
	switch (r) {
	case SPF_PASS:
		return DMARC_RPT_PASS;
	case SPF_FAIL:
		return DMARC_RPT_FAIL;
	case SPF_SOFTFAIL:
		return DMARC_RPT_SOFTFAIL;
	case SPF_NEUTRAL:
		return DMARC_RPT_NEUTRAL;
	case SPF_TEMPERROR:
		return DMARC_RPT_TEMPERROR;
	case SPF_PERMERROR:
		return DMARC_RPT_PERMERROR;
	}
	return DMARC_RPT_NONE;
}

static int
rpt_of_dkim(int r)
{
	switch (r) {
	case DKIM_PASS:
		return DMARC_RPT_PASS;
	case DKIM_FAIL:
		return DMARC_RPT_FAIL;
	case DKIM_POLICY:
		return DMARC_RPT_POLICY;
	case DKIM_NEUTRAL:
		return DMARC_RPT_NEUTRAL;
	case DKIM_TEMPERROR:
		return DMARC_RPT_TEMPERROR;
	case DKIM_PERMERROR:
		return DMARC_RPT_PERMERROR;
	}
	return DMARC_RPT_NONE;
}

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* the rua mailboxes we may mail: within the policy's org domain */
static void
collect_rua(const struct dmarc_result *res, struct queue_dmarc_record *q)
{
	char		 addr[sizeof(q->rua[0].addr)];
	char		 org[DMARC_DOMAIN_MAX], rorg[DMARC_DOMAIN_MAX];
	const char	*at;
	uint64_t	 maxsize;
	size_t		 i;

	if (dmarc_org_domain(res->policy_domain, org, sizeof(org)) == -1)
		return;
	for (i = 0; i < res->record.nrua && q->nrua < QUEUE_DMARC_RUA; i++) {
		if (dmarc_uri_mailto(res->record.rua[i], addr, sizeof(addr),
		    &maxsize) == -1)
			continue;	/* not mailto: we only mail */
		lower(addr);
		if ((at = strrchr(addr, '@')) == NULL ||
		    dmarc_org_domain(at + 1, rorg, sizeof(rorg)) == -1)
			continue;
		if (strcmp(org, rorg) != 0) {
			log_info("dmarc: %s: report address %s is outside "
			    "%s, not used (no RFC 7489 7.1 verification)",
			    res->policy_domain, addr, org);
			continue;
		}
		snprintf(q->rua[q->nrua].addr, sizeof(q->rua[0].addr), "%s",
		    addr);
		q->rua[q->nrua].maxsize = maxsize;
		q->nrua++;
	}
}

void
dmarc_collect(const struct lka_authcheck *req,
    const struct lka_authcheck_res *ares, const struct dmarc_result *res)
{
	struct queue_dmarc_record	*q;
	const struct dmarc_record	*rec = &res->record;
	uint32_t			 i;

	if (conf->dmarc_report_from[0] == '\0' || rec->nrua == 0 ||
	    (res->result != DMARC_RESULT_PASS &&
	    res->result != DMARC_RESULT_FAIL))
		return;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		log_warn("dmarc: report row");
		return;
	}
	collect_rua(res, q);
	if (q->nrua == 0)
		goto done;
	q->source = req->addr;
	if (q->source.ss_family != AF_INET && q->source.ss_family != AF_INET6)
		goto done;		/* local submission: no source IP */
	snprintf(q->policy_domain, sizeof(q->policy_domain), "%s",
	    res->policy_domain);
	q->p = rec->policy;
	q->sp = rec->subpolicy;
	q->pct = rec->pct;
	q->adkim = rec->adkim;
	q->aspf = rec->aspf;
	q->fo = rec->fo;
	q->disposition = res->disposition;
	q->dkim_pass = res->aligned_dkim != 0;
	q->spf_pass = res->aligned_spf != 0;
	q->sampled_out = res->sampled_out != 0;
	snprintf(q->header_from, sizeof(q->header_from), "%s", res->domain);
	snprintf(q->envelope_from, sizeof(q->envelope_from), "%s",
	    req->mailfrom_domain);
	snprintf(q->spf_domain, sizeof(q->spf_domain), "%s",
	    req->spf_domain);
	lower(q->header_from);
	lower(q->envelope_from);
	lower(q->spf_domain);
	q->spf_scope = req->mailfrom_domain[0] == '\0' ?
	    DMARC_RPT_SPF_HELO : DMARC_RPT_SPF_MFROM;
	q->spf_result = rpt_of_spf(req->spf_result);
	for (i = 0; i < req->nsigs && i < ares->nsigs &&
	    q->ndkim < QUEUE_DMARC_DKIM; i++) {
		snprintf(q->dkim[q->ndkim].domain,
		    sizeof(q->dkim[0].domain), "%s", req->sigs[i].d);
		snprintf(q->dkim[q->ndkim].selector,
		    sizeof(q->dkim[0].selector), "%s", req->sigs[i].s);
		lower(q->dkim[q->ndkim].domain);
		q->dkim[q->ndkim].result = rpt_of_dkim(ares->dkim[i].result);
		q->ndkim++;
	}
	if (dmarc_rec_valid(q) == -1) {
		log_info("dmarc: %s: a report row that is not plain ASCII "
		    "tokens, not recorded", res->policy_domain);
		goto done;
	}
	mproc_compose(lookup_queue_channel(), IMSG_QUEUE_DMARC_RECORD, 0, -1,
	    q, sizeof(*q));
done:
	free(q);
}
