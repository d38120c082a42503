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
 *  - only mailto: URIs, and of those, the ones whose domain has the
 *    policy domain's organizational domain, and the other ("external")
 *    ones whose domain publishes the verification record of RFC 7489
 *    7.1, looked up here on the event loop when the row is made (the
 *    resolver caches it: one query per domain pair and TTL).  A URI that
 *    fails is skipped for that row with a log line: mail to a domain
 *    that never asked for it is exactly what 7.1 exists to prevent.
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
#include "dns.h"
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

/*
 * One message's row while the external rua mailboxes are verified: each
 * candidate's verdict lands in ok[], and the row goes to the queue when
 * the last answer is in (in the record's order of URIs).
 */
struct collect {
	struct queue_dmarc_record	 q;
	size_t				 ncand, pending;
	struct {
		char			 addr[512];	/* as rua[].addr */
		uint64_t		 maxsize;
		int			 ok;
	} cand[DMARC_MAX_URI];
};

struct verify_q {
	struct collect	*c;
	size_t		 i;
};

static void
collect_finish(struct collect *c)
{
	struct queue_dmarc_record	*q = &c->q;
	size_t				 i;

	for (i = 0; i < c->ncand && q->nrua < QUEUE_DMARC_RUA; i++) {
		if (!c->cand[i].ok)
			continue;
		snprintf(q->rua[q->nrua].addr, sizeof(q->rua[0].addr), "%s",
		    c->cand[i].addr);
		q->rua[q->nrua].maxsize = c->cand[i].maxsize;
		q->nrua++;
	}
	if (q->nrua == 0)
		goto done;
	if (dmarc_rec_valid(q) == -1) {
		log_info("dmarc: %s: a report row that is not plain ASCII "
		    "tokens, not recorded", q->policy_domain);
		goto done;
	}
	mproc_compose(lookup_queue_channel(), IMSG_QUEUE_DMARC_RECORD, 0, -1,
	    q, sizeof(*q));
done:
	free(c);
}

/*
 * RFC 7489 7.1: the rua domain agrees to receive reports about the
 * policy domain when <policy-domain>._report._dmarc.<rua-domain> has a
 * TXT record that starts with "v=DMARC1".  No answer (NXDOMAIN, other
 * records, a DNS failure) is no agreement: that URI is not used for
 * this message.  A rua= in the answer (7.1's override) is not followed:
 * we mail the address the policy named or nothing.
 */
static void
verify_cb(void *arg, const struct dns_result *res)
{
	struct verify_q	*v = arg;
	struct collect	*c = v->c;
	const char	*txt;
	size_t		 k;

	if (res->status == DNS_OK)
		for (k = 0; k < res->nrr; k++) {
			if (res->rr[k].type != DNS_T_TXT)
				continue;
			txt = dns_rr_txt(res, &res->rr[k]);
			if (res->rr[k].txtlen >= 8 &&
			    strncmp(txt, "v=DMARC1", 8) == 0 &&
			    (res->rr[k].txtlen == 8 || txt[8] == ';' ||
			    txt[8] == ' ' || txt[8] == '\t')) {
				c->cand[v->i].ok = 1;
				break;
			}
		}
	if (!c->cand[v->i].ok)
		log_info("dmarc: %s: report address %s not used: its domain "
		    "did not agree to receive the reports (RFC 7489 7.1%s)",
		    c->q.policy_domain, c->cand[v->i].addr,
		    res->status == DNS_TEMPFAIL ? ", DNS failure" : "");
	free(v);
	if (--c->pending == 0)
		collect_finish(c);
}

/* the rua mailboxes: ours at once, external ones once verified */
static void
collect_rua(const struct dmarc_result *res, struct collect *c)
{
	struct verify_q	*v;
	char		 org[DMARC_DOMAIN_MAX], rorg[DMARC_DOMAIN_MAX];
	char		 name[2 * DMARC_DOMAIN_MAX + 32];
	const char	*at;
	size_t		 i;
	int		 n;

	c->pending = 1;		/* until every question is asked */
	if (dmarc_org_domain(res->policy_domain, org, sizeof(org)) == -1)
		goto out;
	for (i = 0; i < res->record.nrua && c->ncand < DMARC_MAX_URI; i++) {
		if (dmarc_uri_mailto(res->record.rua[i], c->cand[c->ncand].addr,
		    sizeof(c->cand[0].addr), &c->cand[c->ncand].maxsize) == -1)
			continue;	/* not mailto: we only mail */
		lower(c->cand[c->ncand].addr);
		at = strrchr(c->cand[c->ncand].addr, '@');
		if (at == NULL || at[1] == '\0' ||
		    dmarc_org_domain(at + 1, rorg, sizeof(rorg)) == -1)
			continue;
		if (strcmp(org, rorg) == 0) {
			c->cand[c->ncand++].ok = 1;
			continue;
		}
		n = snprintf(name, sizeof(name), "%s._report._dmarc.%s",
		    res->policy_domain, at + 1);
		if (n < 0 || n > 253) {
			log_info("dmarc: %s: report address %s: verification "
			    "name too long, not used", res->policy_domain,
			    c->cand[c->ncand].addr);
			continue;
		}
		if ((v = calloc(1, sizeof(*v))) == NULL) {
			log_warn("dmarc: report address verification");
			continue;
		}
		v->c = c;
		v->i = c->ncand++;
		c->pending++;
		dns_query(name, DNS_T_TXT, DMARC_TIMEOUT, verify_cb, v);
	}
out:
	if (--c->pending == 0)
		collect_finish(c);
}

void
dmarc_collect(const struct lka_authcheck *req,
    const struct lka_authcheck_res *ares, const struct dmarc_result *res)
{
	struct collect			*c;
	struct queue_dmarc_record	*q;
	const struct dmarc_record	*rec = &res->record;
	uint32_t			 i;

	if (conf->dmarc_report_from[0] == '\0' || rec->nrua == 0 ||
	    (res->result != DMARC_RESULT_PASS &&
	    res->result != DMARC_RESULT_FAIL))
		return;
	/* local submission has no source IP to report */
	if (req->ctx.client.ss_family != AF_INET &&
	    req->ctx.client.ss_family != AF_INET6)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("dmarc: report row");
		return;
	}
	q = &c->q;
	q->source = req->ctx.client;
	snprintf(q->policy_domain, sizeof(q->policy_domain), "%s",
	    res->policy_domain);
	lower(q->policy_domain);
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
	    req->ctx.mailfrom.domain);
	snprintf(q->spf_domain, sizeof(q->spf_domain), "%s",
	    req->spf_domain);
	lower(q->header_from);
	lower(q->envelope_from);
	lower(q->spf_domain);
	q->spf_scope = req->ctx.mailfrom.domain[0] == '\0' ?
	    DMARC_RPT_SPF_HELO : DMARC_RPT_SPF_MFROM;
	q->spf_result = rpt_of_spf(req->spf_result);
	for (i = 0; i < req->nsigs && i < ares->nsigs &&
	    q->ndkim < QUEUE_DMARC_DKIM; i++) {
		snprintf(q->dkim[q->ndkim].domain,
		    sizeof(q->dkim[0].domain), "%s", req->sigs[i].d);
		/* a selector longer than the report's field: left out */
		if (strnlen(req->sigs[i].s, sizeof(req->sigs[i].s)) <
		    sizeof(q->dkim[0].selector))
			memcpy(q->dkim[q->ndkim].selector, req->sigs[i].s,
			    strlen(req->sigs[i].s) + 1);
		lower(q->dkim[q->ndkim].domain);
		q->dkim[q->ndkim].result = rpt_of_dkim(ares->dkim[i].result);
		q->ndkim++;
	}
	collect_rua(res, c);
}
