/*
 * checks.c -- the inbound checks, lookup's side: what an smtp worker
 * asks about a session (smtp/smtp_checks.c).
 *
 *	IMSG_LKA_DNSBL		at connect: is the client trusted (a "from
 *				src" network of the rules, rules.c), and is
 *				it in the DNS block and allow lists (dnsbl.c)
 *	IMSG_LKA_SPF		SPF of MAIL FROM (spf.c), while the client
 *				sends its recipients and data
 *	IMSG_LKA_AUTHCHECK	at the end of data: each DKIM signature the
 *				worker hashed (its key fetched from DNS,
 *				common/dkim.c's verdict), then DMARC for the
 *				From: domain with those and the SPF result
 *				(dmarc.c)
 *
 * Everything runs on the event loop over dns_query(); nothing blocks.
 * DNS trouble is a temperror for the check it hit, never a rejection:
 * the worker turns that into 451 where it matters.  An answer for a
 * worker that went away meanwhile is dropped by its channel.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim.h"
#include "dmarc.h"
#include "dns.h"
#include "dnsbl.h"
#include "log.h"
#include "lookup.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "spf.h"

static struct dnsbl_set	 dnsbl_set;
static int		 dnsbl_ready;

void
checks_init(void)
{
	char	err[128];
	int	i;

	memset(&dnsbl_set, 0, sizeof(dnsbl_set));
	for (i = 0; i < conf->ndnsbl && i < DNSBL_MAX_LISTS; i++)
		if (dnsbl_parse_list(conf->dnsbl[i],
		    &dnsbl_set.list[dnsbl_set.nlist++], err, sizeof(err)) == -1)
			fatalx("dnsbl %s: %s", conf->dnsbl[i], err);
	dnsbl_set.threshold = conf->dnsbl_threshold > 0 ?
	    conf->dnsbl_threshold : 1;
	dnsbl_ready = 1;
	/* the Public Suffix List, read now: the sandbox comes next */
	if (dmarc_init() == -1)
		log_warnx("dmarc: no Public Suffix List (%s): the "
		    "organizational domain is the From: domain itself",
		    dmarc_psl_file());
}

/* ---- DNS lists ---- */

struct dnsbl_req {
	struct mproc		*p;
	struct lka_dnsbl	 r;
};

static void
dnsbl_done(void *arg, const struct dnsbl_result *res)
{
	struct dnsbl_req	*q = arg;

	q->r.listed = res->listed;
	q->r.score = res->score;
	q->r.nfailed = (uint32_t)res->nfailed;
	dnsbl_hits_text(&dnsbl_set, res, q->r.lists, sizeof(q->r.lists));
	mproc_compose(q->p, IMSG_LKA_DNSBL, q->r.reqid, -1, &q->r,
	    sizeof(q->r));
	free(q);
}

void
checks_dnsbl(struct mproc *p, const struct lka_dnsbl *r)
{
	struct dnsbl_req	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		fatal("calloc");
	q->p = p;
	q->r = *r;
	q->r.trusted = rule_client_trusted(&r->addr);
	if (!dnsbl_ready || dnsbl_set.nlist == 0 || !r->ask_lists ||
	    q->r.trusted) {
		dnsbl_done(q, &(struct dnsbl_result){ 0 });
		return;
	}
	dnsbl_check(&dnsbl_set, &r->addr, dnsbl_done, q);
}

/* ---- SPF ---- */

struct spf_q {
	struct mproc	*p;
	struct lka_spf	 r;
};

static void
spf_done(void *arg, const struct spf_result *res)
{
	struct spf_q	*q = arg;

	q->r.result = res->result;
	snprintf(q->r.domain, sizeof(q->r.domain), "%s", res->domain);
	snprintf(q->r.mechanism, sizeof(q->r.mechanism), "%s",
	    res->mechanism);
	snprintf(q->r.explanation, sizeof(q->r.explanation), "%s",
	    res->explanation);
	mproc_compose(q->p, IMSG_LKA_SPF, q->r.reqid, -1, &q->r,
	    sizeof(q->r));
	free(q);
}

void
checks_spf(struct mproc *p, const struct lka_spf *r)
{
	struct spf_req	 req;
	struct spf_q	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		fatal("calloc");
	q->p = p;
	q->r = *r;
	memset(&req, 0, sizeof(req));
	req.addr = r->addr;
	snprintf(req.helo, sizeof(req.helo), "%s", r->helo);
	snprintf(req.sender, sizeof(req.sender), "%s", r->sender);
	snprintf(req.receiver, sizeof(req.receiver), "%s", conf->hostname);
	if (r->helo_only)
		(void)spf_check_helo(&req, spf_done, q);
	else
		(void)spf_check(&req, spf_done, q);
}

/* ---- DKIM, then DMARC ---- */

struct auth_q {
	struct mproc			*p;
	struct lka_authcheck		 req;
	struct lka_authcheck_res	 res;
	int				 pending;
};

struct sig_q {
	struct auth_q	*a;
	size_t		 i;
};

static int
dmarc_auth_of_spf(int spf)
{
	switch (spf) {
	case SPF_PASS:
		return DMARC_AUTH_PASS;
	case SPF_TEMPERROR:
		return DMARC_AUTH_TEMPERROR;
	case SPF_PERMERROR:
		return DMARC_AUTH_PERMERROR;
	case SPF_NONE:
		return DMARC_AUTH_NONE;
	}
	return DMARC_AUTH_FAIL;		/* fail, softfail, neutral */
}

static int
dmarc_auth_of_dkim(int r)
{
	switch (r) {
	case DKIM_PASS:
		return DMARC_AUTH_PASS;
	case DKIM_TEMPERROR:
		return DMARC_AUTH_TEMPERROR;
	case DKIM_PERMERROR:
		return DMARC_AUTH_PERMERROR;
	case DKIM_NONE:
		return DMARC_AUTH_NONE;
	}
	return DMARC_AUTH_FAIL;
}

static void
auth_reply(struct auth_q *a)
{
	int		dkim[LKA_AUTH_SIGS], line = 0;
	uint32_t	i;

	/* the rules with dkim or dmarc decide now, on the whole message */
	if (conf->rules_message) {
		for (i = 0; i < a->res.nsigs; i++)
			dkim[i] = a->res.dkim[i].result;
		a->res.verdict = rule_message(&a->req.ctx, dkim, a->res.nsigs,
		    a->res.dmarc_result, &line);
		a->res.verdict_line = line;
	}
	mproc_compose(a->p, IMSG_LKA_AUTHCHECK, a->req.reqid, -1, &a->res,
	    sizeof(a->res));
	free(a);
}

static void
dmarc_done(void *arg, const struct dmarc_result *r)
{
	struct auth_q	*a = arg;

	a->res.dmarc_result = r->result;
	a->res.dmarc_policy = r->policy;
	a->res.dmarc_disposition = r->disposition;
	snprintf(a->res.dmarc_domain, sizeof(a->res.dmarc_domain), "%s",
	    r->domain);
	dmarc_collect(&a->req, &a->res, r);
	auth_reply(a);
}

static void
auth_dkim_done(struct auth_q *a)
{
	struct dmarc_req	dr;
	uint32_t		i;

	if (a->req.from_domain[0] == '\0' || a->req.no_dmarc) {
		a->res.dmarc_result = DMARC_RESULT_NONE;
		auth_reply(a);
		return;
	}
	memset(&dr, 0, sizeof(dr));
	snprintf(dr.from_domain, sizeof(dr.from_domain), "%s",
	    a->req.from_domain);
	snprintf(dr.spf_domain, sizeof(dr.spf_domain), "%s",
	    a->req.spf_domain);
	dr.spf_result = dmarc_auth_of_spf(a->req.spf_result);
	for (i = 0; i < a->req.nsigs && i < DMARC_MAX_DKIM; i++) {
		snprintf(dr.dkim[dr.ndkim].domain,
		    sizeof(dr.dkim[dr.ndkim].domain), "%s",
		    a->req.sigs[i].d);
		dr.dkim[dr.ndkim].result =
		    dmarc_auth_of_dkim(a->res.dkim[i].result);
		dr.ndkim++;
	}
	dmarc_check(&dr, dmarc_done, a);
}

static void
sig_key_cb(void *arg, const struct dns_result *res)
{
	struct sig_q		*q = arg;
	struct auth_q		*a = q->a;
	const struct dkim_vsig	*v = &a->req.sigs[q->i];
	struct dkim_vres	 vr;
	size_t			 k;
	int			 r = DKIM_PERMERROR;

	memset(&vr, 0, sizeof(vr));
	switch (res->status) {
	case DNS_TEMPFAIL:
		r = DKIM_TEMPERROR;
		snprintf(vr.why, sizeof(vr.why), "key lookup failed");
		break;
	case DNS_OK:
		/* RFC 6376 3.6.2.2: several records, use the first usable */
		for (k = 0; k < res->nrr; k++) {
			r = dkim_verify(v, dns_rr_txt(res, &res->rr[k]),
			    res->rr[k].txtlen, time(NULL), &vr);
			if (r != DKIM_PERMERROR)
				break;
		}
		break;
	default:
		snprintf(vr.why, sizeof(vr.why), "no key record");
		break;
	}
	a->res.dkim[q->i].result = r;
	snprintf(a->res.dkim[q->i].why, sizeof(a->res.dkim[q->i].why), "%s",
	    vr.why);
	free(q);
	if (--a->pending == 0)
		auth_dkim_done(a);
}

void
checks_authcheck(struct mproc *p, const struct lka_authcheck *req)
{
	struct auth_q		*a;
	struct sig_q		*q;
	struct dkim_vres	 vr;
	char			 name[DKIM_DOMAIN_MAX + DKIM_SELECTOR_MAX + 16];
	uint32_t		 i;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		fatal("calloc");
	a->p = p;
	a->req = *req;
	a->res.reqid = req->reqid;
	a->res.serial = req->serial;
	a->res.nsigs = req->nsigs;
	a->pending = 1;		/* until every question is asked */
	for (i = 0; i < req->nsigs; i++) {
		memset(&vr, 0, sizeof(vr));
		a->res.dkim[i].result = dkim_vsig_precheck(&req->sigs[i],
		    time(NULL), &vr);
		snprintf(a->res.dkim[i].why, sizeof(a->res.dkim[i].why), "%s",
		    vr.why);
		if (a->res.dkim[i].result != DKIM_NONE)
			continue;
		if (dkim_vsig_keyname(&req->sigs[i], name, sizeof(name)) ==
		    -1) {
			a->res.dkim[i].result = DKIM_PERMERROR;
			continue;
		}
		if ((q = calloc(1, sizeof(*q))) == NULL)
			fatal("calloc");
		q->a = a;
		q->i = i;
		a->pending++;
		dns_query(name, DNS_T_TXT, DMARC_TIMEOUT, sig_key_cb, q);
	}
	if (--a->pending == 0)
		auth_dkim_done(a);
}
