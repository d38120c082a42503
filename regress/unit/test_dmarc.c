/*
 * test_dmarc.c -- lookup/dmarc.c's pure parts: the record parser (RFC
 * 7489 6.3, 6.4, 6.6.3 step 6), organizational domains from Debian's
 * Public Suffix List, strict and relaxed alignment, the verdict for
 * every alignment x policy combination, sp=, pct= with an injected
 * random source, and the rua mailto: reader.  Discovery over DNS is in
 * test_authdns.c.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "dmarc.h"
#include "log.h"

static int
parse(const char *txt, struct dmarc_record *rec)
{
	const char	*err;

	return dmarc_parse_record(txt, strlen(txt), rec, &err);
}

static void
test_parse_basic(void **state)
{
	struct dmarc_record	r;

	assert_int_equal(parse("v=DMARC1; p=reject", &r), 1);
	assert_int_equal(r.policy, DMARC_POLICY_REJECT);
	assert_int_equal(r.subpolicy, DMARC_POLICY_REJECT);
	assert_int_equal(r.pct, 100);
	assert_int_equal(r.adkim, DMARC_ALIGN_RELAXED);
	assert_int_equal(r.aspf, DMARC_ALIGN_RELAXED);
	assert_int_equal(r.fo, DMARC_FO_0);
	assert_int_equal(r.rf_afrf, 1);
	assert_int_equal(r.ri, 86400);
	assert_int_equal(r.nrua, 0);
	assert_int_equal(r.p_invalid, 0);

	assert_int_equal(parse("v=DMARC1;p=quarantine;sp=none;pct=25;"
	    "adkim=s;aspf=s;fo=1:d:s;rf=afrf;ri=3600;"
	    "rua=mailto:a@example.com,mailto:b@example.net!10m;"
	    "ruf=mailto:f@example.com;", &r), 1);
	assert_int_equal(r.policy, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.subpolicy, DMARC_POLICY_NONE);
	assert_int_equal(r.pct, 25);
	assert_int_equal(r.adkim, DMARC_ALIGN_STRICT);
	assert_int_equal(r.aspf, DMARC_ALIGN_STRICT);
	assert_int_equal(r.fo, DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S);
	assert_int_equal(r.ri, 3600);
	assert_int_equal(r.nrua, 2);
	assert_string_equal(r.rua[0], "mailto:a@example.com");
	assert_string_equal(r.rua[1], "mailto:b@example.net!10m");
	assert_int_equal(r.nruf, 1);

	/* white space around everything, case-insensitive names/values */
	assert_int_equal(parse("v = DMARC1 ;\tP = Reject ; SP=QUARANTINE ; "
	    "ADKIM = S ", &r), 1);
	assert_int_equal(r.policy, DMARC_POLICY_REJECT);
	assert_int_equal(r.subpolicy, DMARC_POLICY_QUARANTINE);
	assert_int_equal(r.adkim, DMARC_ALIGN_STRICT);

	/* p= after other tags is taken too */
	assert_int_equal(parse("v=DMARC1; rua=mailto:x@y.example; p=none",
	    &r), 1);
	assert_int_equal(r.p_invalid, 0);
	assert_int_equal(r.policy, DMARC_POLICY_NONE);
}

static void
test_parse_not_dmarc(void **state)
{
	struct dmarc_record	r;

	/* not DMARC records: discarded before counting */
	assert_int_equal(parse("", &r), 0);
	assert_int_equal(parse("v=spf1 -all", &r), 0);
	assert_int_equal(parse("p=reject; v=DMARC1", &r), 0);
	assert_int_equal(parse("v=dmarc1; p=reject", &r), 0);	/* %s */
	assert_int_equal(parse("v=DMARC2; p=reject", &r), 0);
	assert_int_equal(parse("v=DMARC1x; p=reject", &r), 0);
	assert_int_equal(parse("vv=DMARC1; p=reject", &r), 0);
	assert_int_equal(parse("v DMARC1; p=reject", &r), 0);
	assert_int_equal(parse(";v=DMARC1; p=reject", &r), 0);
}

static void
test_parse_errors(void **state)
{
	struct dmarc_record	r;
	const char		*err = NULL;
	static const char	 nul[] = "v=DMARC1; p=reject\0; sp=none";

	/* no p=, no rua=: a DMARC record that cannot be applied */
	assert_int_equal(parse("v=DMARC1", &r), -1);
	assert_int_equal(parse("v=DMARC1;", &r), -1);
	assert_int_equal(parse("v=DMARC1; p=bogus", &r), -1);
	assert_int_equal(parse("v=DMARC1; p=reject; sp=bogus", &r), -1);
	assert_int_equal(parse("v=DMARC1; p=none; rua=nonsense", &r), 1);
	assert_int_equal(parse("v=DMARC1; p=rejectx", &r), -1);
	assert_int_equal(dmarc_parse_record(nul, sizeof(nul) - 1, &r, &err),
	    -1);
	assert_non_null(err);

	/* 6.6.3 step 6: no valid p= but a valid rua=: p=none */
	assert_int_equal(parse("v=DMARC1; rua=mailto:r@example.com", &r), 1);
	assert_int_equal(r.p_invalid, 1);
	assert_int_equal(r.policy, DMARC_POLICY_NONE);
	assert_int_equal(r.subpolicy, DMARC_POLICY_NONE);
	assert_int_equal(parse("v=DMARC1; p=reject; sp=x; "
	    "rua=mailto:r@example.com", &r), 1);
	assert_int_equal(r.policy, DMARC_POLICY_NONE);
	assert_int_equal(parse("v=DMARC1; p=x; rua=bad uri, also bad", &r),
	    -1);

	/* syntax errors elsewhere: the defaults stay */
	assert_int_equal(parse("v=DMARC1; p=reject; pct=101; adkim=x; "
	    "aspf=relaxed; fo=2; ri=-1; rf=!", &r), 1);
	assert_int_equal(r.pct, 100);
	assert_int_equal(r.adkim, DMARC_ALIGN_RELAXED);
	assert_int_equal(r.aspf, DMARC_ALIGN_RELAXED);
	assert_int_equal(r.fo, DMARC_FO_0);
	assert_int_equal(r.ri, 86400);
	assert_int_equal(r.rf_afrf, 1);
	assert_int_equal(parse("v=DMARC1; p=reject; pct=0", &r), 1);
	assert_int_equal(r.pct, 0);
	assert_int_equal(parse("v=DMARC1; p=reject; pct=1000", &r), 1);
	assert_int_equal(r.pct, 100);
	assert_int_equal(parse("v=DMARC1; p=reject; pct=", &r), 1);
	assert_int_equal(r.pct, 100);
	/* unknown tags, tags without '=', repeats: ignored */
	assert_int_equal(parse("v=DMARC1; p=none; x-foo=bar; junk; "
	    "p=reject", &r), 1);
	assert_int_equal(r.policy, DMARC_POLICY_NONE);
	/* bad URIs are skipped, good ones kept */
	assert_int_equal(parse("v=DMARC1; p=none; rua=mailto:a@b.example, "
	    "no-scheme, mailto:, x:y!, mailto:c@d.example!5k, "
	    "mailto:sp ace@x", &r), 1);
	assert_int_equal(r.nrua, 2);
	assert_string_equal(r.rua[1], "mailto:c@d.example!5k");
	/* rf= without afrf */
	assert_int_equal(parse("v=DMARC1; p=none; rf=iodef", &r), 1);
	assert_int_equal(r.rf_afrf, 0);
	/* ri= saturates */
	assert_int_equal(parse("v=DMARC1; p=none; ri=99999999999", &r), 1);
	assert_int_equal(r.ri, UINT32_MAX);
}

static void
test_uri_mailto(void **state)
{
	char		addr[64];
	uint64_t	max;

	assert_int_equal(dmarc_uri_mailto("mailto:dmarc@example.com", addr,
	    sizeof(addr), &max), 0);
	assert_string_equal(addr, "dmarc@example.com");
	assert_int_equal(max, 0);
	assert_int_equal(dmarc_uri_mailto("MAILTO:a%2Bb@example.com!10m",
	    addr, sizeof(addr), &max), 0);
	assert_string_equal(addr, "a+b@example.com");
	assert_int_equal(max, 10 * 1024 * 1024);
	assert_int_equal(dmarc_uri_mailto("mailto:r@x.example?subject=hi!2",
	    addr, sizeof(addr), &max), 0);
	assert_string_equal(addr, "r@x.example");
	assert_int_equal(max, 2);
	assert_int_equal(dmarc_uri_mailto("https://x.example/", addr,
	    sizeof(addr), &max), -1);
	assert_int_equal(dmarc_uri_mailto("mailto:nobody", addr,
	    sizeof(addr), &max), -1);
	assert_int_equal(dmarc_uri_mailto("mailto:a@b%2Cc@d", addr,
	    sizeof(addr), &max), -1);
	assert_int_equal(dmarc_uri_mailto("mailto:a@b%2", addr,
	    sizeof(addr), &max), -1);
	assert_int_equal(dmarc_uri_mailto("mailto:a@b!", addr,
	    sizeof(addr), &max), -1);
	assert_int_equal(dmarc_uri_mailto("mailto:a@b!5x", addr,
	    sizeof(addr), &max), -1);
	assert_int_equal(dmarc_uri_mailto("mailto:a@b%0D%0ABcc:x", addr,
	    sizeof(addr), &max), -1);
	assert_int_equal(dmarc_uri_mailto("mailto:averyveryverylonglocalpart"
	    "thatdoesnotfit@example.com", addr, 16, &max), -1);
}

static void
org(const char *domain, const char *want)
{
	char	out[DMARC_DOMAIN_MAX];

	assert_int_equal(dmarc_org_domain(domain, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

/* Debian's list (dmarc_init: psl_latest(NULL)) */
static void
test_org_domain(void **state)
{
	char	out[DMARC_DOMAIN_MAX];

	assert_string_equal(dmarc_psl_file(),
	    "/usr/share/publicsuffix/public_suffix_list.dafsa");
	org("example.com", "example.com");
	org("a.b.example.com", "example.com");
	org("Mail.Example.COM.", "example.com");
	org("www.example.co.uk", "example.co.uk");
	org("example.co.uk", "example.co.uk");
	/* a public suffix is its own organizational domain */
	org("co.uk", "co.uk");
	org("com", "com");
	/* *.kawasaki.jp with the exception !city.kawasaki.jp */
	org("www.city.kawasaki.jp", "city.kawasaki.jp");
	org("city.kawasaki.jp", "city.kawasaki.jp");
	org("foo.bar.kawasaki.jp", "foo.bar.kawasaki.jp");
	org("x.foo.bar.kawasaki.jp", "foo.bar.kawasaki.jp");
	/* the private section counts too (as libpsl's registrable) */
	org("me.blogspot.com", "me.blogspot.com");
	org("a.me.blogspot.com", "me.blogspot.com");
	/* not domains */
	assert_int_equal(dmarc_org_domain("", out, sizeof(out)), -1);
	assert_int_equal(dmarc_org_domain("a..b", out, sizeof(out)), -1);
	assert_int_equal(dmarc_org_domain("a b.com", out, sizeof(out)), -1);
	assert_int_equal(dmarc_org_domain(".", out, sizeof(out)), -1);
	assert_int_equal(dmarc_org_domain("example.com", out, 5), -1);
}

static void
test_aligned(void **state)
{
	const int	R = DMARC_ALIGN_RELAXED, S = DMARC_ALIGN_STRICT;

	assert_true(dmarc_aligned("example.com", "example.com", S));
	assert_true(dmarc_aligned("example.com", "EXAMPLE.com.", S));
	assert_false(dmarc_aligned("example.com", "mail.example.com", S));
	assert_true(dmarc_aligned("example.com", "mail.example.com", R));
	assert_true(dmarc_aligned("a.example.com", "b.example.com", R));
	assert_false(dmarc_aligned("a.example.com", "b.example.com", S));
	assert_false(dmarc_aligned("example.com", "example.net", R));
	/* two registrants under one public suffix never align */
	assert_false(dmarc_aligned("a.co.uk", "b.co.uk", R));
	assert_false(dmarc_aligned("a.bar.kawasaki.jp", "b.bar.kawasaki.jp",
	    R));
	assert_true(dmarc_aligned("www.city.kawasaki.jp",
	    "mail.city.kawasaki.jp", R));
	assert_false(dmarc_aligned("example.com", "", R));
	assert_false(dmarc_aligned("example.com", "exa mple.com", R));
}

/* the injected random source: always this value */
static uint32_t	draw;

static uint32_t
fixed_uniform(uint32_t n)
{
	assert_int_equal(n, 100);
	return draw;
}

static void
eval(const char *txt, const char *from, const char *policy_domain,
    int at_org, const char *spf_domain, int spf,
    const char *dkim_domain, int dkim, struct dmarc_result *res)
{
	struct dmarc_record	rec;
	struct dmarc_req	req;

	memset(&req, 0, sizeof(req));
	memset(res, 0, sizeof(*res));
	snprintf(req.from_domain, sizeof(req.from_domain), "%s", from);
	snprintf(req.spf_domain, sizeof(req.spf_domain), "%s", spf_domain);
	req.spf_result = spf;
	if (dkim_domain) {
		req.ndkim = 1;
		snprintf(req.dkim[0].domain, sizeof(req.dkim[0].domain), "%s",
		    dkim_domain);
		req.dkim[0].result = dkim;
	}
	snprintf(res->domain, sizeof(res->domain), "%s", from);
	snprintf(res->policy_domain, sizeof(res->policy_domain), "%s",
	    policy_domain);
	assert_int_equal(parse(txt, &rec), 1);
	dmarc_evaluate(&req, &rec, at_org, res);
}

/*
 * Every mode (adkim/aspf r/s) x each kind of identifier (same domain,
 * parent, sibling in the same organization, other organization) x pass
 * or fail x each policy: pass exactly when a passing identifier aligns,
 * and then no disposition; else the disposition is the policy.
 */
static void
test_alignment_policy_matrix(void **state)
{
	static const char *pol[] = { "none", "quarantine", "reject" };
	static const struct {
		const char	*domain;
		int		 relaxed, strict;
	} ids[] = {
		{ "mail.example.com", 1, 1 },
		{ "example.com", 1, 0 },
		{ "bounce.example.com", 1, 0 },
		{ "deep.mail.example.com", 1, 0 },
		{ "example.net", 0, 0 },
		{ "mail.example.com.evil.test", 0, 0 },
	};
	struct dmarc_result	res;
	char			txt[128];
	size_t			i;
	int			p, mode, auth, which;

	draw = 0;
	dmarc_set_random(fixed_uniform);
	for (p = 0; p < 3; p++)
	for (mode = 0; mode < 2; mode++)
	for (which = 0; which < 2; which++)	/* 0 SPF, 1 DKIM */
	for (auth = 0; auth < 2; auth++)
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		int	aligned = mode ? ids[i].strict : ids[i].relaxed;
		int	result = auth ? DMARC_AUTH_PASS : DMARC_AUTH_FAIL;
		int	pass = aligned && auth;

		snprintf(txt, sizeof(txt), "v=DMARC1; p=%s; %s=%s", pol[p],
		    which ? "adkim" : "aspf", mode ? "s" : "r");
		if (which == 0)
			eval(txt, "mail.example.com", "mail.example.com", 0,
			    ids[i].domain, result, NULL, 0, &res);
		else
			eval(txt, "mail.example.com", "mail.example.com", 0,
			    "unrelated.test", DMARC_AUTH_PASS, ids[i].domain,
			    result, &res);
		assert_int_equal(res.result,
		    pass ? DMARC_RESULT_PASS : DMARC_RESULT_FAIL);
		assert_int_equal(res.policy, p);
		assert_int_equal(res.subdomain, 0);
		assert_int_equal(res.disposition, pass ? DMARC_POLICY_NONE :
		    p);
		assert_int_equal(res.aligned_spf, which == 0 && pass);
		assert_int_equal(res.aligned_dkim, which == 1 && pass);
		if (which == 1 && pass)
			assert_string_equal(res.dkim_domain, ids[i].domain);
		assert_int_equal(res.sampled_out, 0);
	}
	dmarc_set_random(NULL);
}

static void
test_evaluate_cases(void **state)
{
	struct dmarc_result	res;
	struct dmarc_req	req;
	struct dmarc_record	rec;

	/* no record: none */
	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	dmarc_evaluate(&req, NULL, 0, &res);
	assert_int_equal(res.result, DMARC_RESULT_NONE);
	assert_int_equal(res.disposition, DMARC_POLICY_NONE);

	/* both aligned */
	eval("v=DMARC1; p=reject", "example.com", "example.com", 0,
	    "example.com", DMARC_AUTH_PASS, "example.com", DMARC_AUTH_PASS,
	    &res);
	assert_int_equal(res.result, DMARC_RESULT_PASS);
	assert_true(res.aligned_spf && res.aligned_dkim);

	/* SPF passes for another domain, DKIM aligned but failed: fail */
	eval("v=DMARC1; p=reject", "example.com", "example.com", 0,
	    "example.net", DMARC_AUTH_PASS, "example.com", DMARC_AUTH_FAIL,
	    &res);
	assert_int_equal(res.result, DMARC_RESULT_FAIL);
	assert_int_equal(res.disposition, DMARC_POLICY_REJECT);

	/* an aligned identifier's temporary error: temperror, not fail */
	eval("v=DMARC1; p=reject", "example.com", "example.com", 0,
	    "example.net", DMARC_AUTH_PASS, "example.com",
	    DMARC_AUTH_TEMPERROR, &res);
	assert_int_equal(res.result, DMARC_RESULT_TEMPERROR);
	assert_int_equal(res.disposition, DMARC_POLICY_NONE);
	eval("v=DMARC1; p=reject", "example.com", "example.com", 0,
	    "example.com", DMARC_AUTH_TEMPERROR, NULL, 0, &res);
	assert_int_equal(res.result, DMARC_RESULT_TEMPERROR);
	/* ... an unaligned one's does not matter */
	eval("v=DMARC1; p=reject", "example.com", "example.com", 0,
	    "example.net", DMARC_AUTH_TEMPERROR, NULL, 0, &res);
	assert_int_equal(res.result, DMARC_RESULT_FAIL);
	/* ... and a pass wins over it */
	eval("v=DMARC1; p=reject", "example.com", "example.com", 0,
	    "example.com", DMARC_AUTH_TEMPERROR, "example.com",
	    DMARC_AUTH_PASS, &res);
	assert_int_equal(res.result, DMARC_RESULT_PASS);

	/* the second of several signatures aligns */
	memset(&req, 0, sizeof(req));
	snprintf(req.from_domain, sizeof(req.from_domain), "example.com");
	req.ndkim = 3;
	snprintf(req.dkim[0].domain, sizeof(req.dkim[0].domain), "esp.test");
	req.dkim[0].result = DMARC_AUTH_PASS;
	snprintf(req.dkim[1].domain, sizeof(req.dkim[1].domain),
	    "example.com");
	req.dkim[1].result = DMARC_AUTH_FAIL;
	snprintf(req.dkim[2].domain, sizeof(req.dkim[2].domain),
	    "news.example.com");
	req.dkim[2].result = DMARC_AUTH_PASS;
	memset(&res, 0, sizeof(res));
	snprintf(res.domain, sizeof(res.domain), "example.com");
	snprintf(res.policy_domain, sizeof(res.policy_domain), "example.com");
	assert_int_equal(parse("v=DMARC1; p=reject", &rec), 1);
	dmarc_evaluate(&req, &rec, 0, &res);
	assert_int_equal(res.result, DMARC_RESULT_PASS);
	assert_string_equal(res.dkim_domain, "news.example.com");
	/* strict: none aligns */
	assert_int_equal(parse("v=DMARC1; p=reject; adkim=s", &rec), 1);
	snprintf(req.dkim[1].domain, sizeof(req.dkim[1].domain), "esp2.test");
	dmarc_evaluate(&req, &rec, 0, &res);
	assert_int_equal(res.result, DMARC_RESULT_FAIL);
	assert_int_equal(res.disposition, DMARC_POLICY_REJECT);

	/* no SPF domain at all (nothing to align) */
	eval("v=DMARC1; p=quarantine", "example.com", "example.com", 0,
	    "", DMARC_AUTH_NONE, NULL, 0, &res);
	assert_int_equal(res.result, DMARC_RESULT_FAIL);
	assert_int_equal(res.disposition, DMARC_POLICY_QUARANTINE);
}

/* sp= for subdomains whose record was found at the org domain */
static void
test_subdomain_policy(void **state)
{
	struct dmarc_result	res;

	/* found at the org domain for a subdomain: sp */
	eval("v=DMARC1; p=reject; sp=quarantine", "mail.example.com",
	    "example.com", 1, "x.test", DMARC_AUTH_PASS, NULL, 0, &res);
	assert_int_equal(res.result, DMARC_RESULT_FAIL);
	assert_int_equal(res.subdomain, 1);
	assert_int_equal(res.policy, DMARC_POLICY_QUARANTINE);
	assert_int_equal(res.disposition, DMARC_POLICY_QUARANTINE);
	/* no sp=: p */
	eval("v=DMARC1; p=reject", "mail.example.com", "example.com", 1,
	    "x.test", DMARC_AUTH_PASS, NULL, 0, &res);
	assert_int_equal(res.policy, DMARC_POLICY_REJECT);
	/* the subdomain's own record: its p, never sp */
	eval("v=DMARC1; p=reject; sp=none", "mail.example.com",
	    "mail.example.com", 0, "x.test", DMARC_AUTH_PASS, NULL, 0, &res);
	assert_int_equal(res.subdomain, 0);
	assert_int_equal(res.policy, DMARC_POLICY_REJECT);
	/* the org domain itself: p */
	eval("v=DMARC1; p=none; sp=reject", "example.com", "example.com", 0,
	    "x.test", DMARC_AUTH_PASS, NULL, 0, &res);
	assert_int_equal(res.policy, DMARC_POLICY_NONE);
	assert_int_equal(res.disposition, DMARC_POLICY_NONE);
	assert_int_equal(res.result, DMARC_RESULT_FAIL);
}

/* pct=0 never applies, pct=100 always, pct=N by the draw */
static void
test_pct(void **state)
{
	struct dmarc_result	res;
	uint32_t		d;
	int			applied;

	dmarc_set_random(fixed_uniform);
	for (d = 0; d < 100; d++) {
		draw = d;
		eval("v=DMARC1; p=reject; pct=0", "example.com",
		    "example.com", 0, "", 0, NULL, 0, &res);
		assert_int_equal(res.disposition, DMARC_POLICY_QUARANTINE);
		assert_int_equal(res.sampled_out, 1);
		assert_int_equal(res.policy, DMARC_POLICY_REJECT);
		eval("v=DMARC1; p=quarantine; pct=0", "example.com",
		    "example.com", 0, "", 0, NULL, 0, &res);
		assert_int_equal(res.disposition, DMARC_POLICY_NONE);
		eval("v=DMARC1; p=reject; pct=100", "example.com",
		    "example.com", 0, "", 0, NULL, 0, &res);
		assert_int_equal(res.disposition, DMARC_POLICY_REJECT);
		assert_int_equal(res.sampled_out, 0);
	}
	applied = 0;
	for (d = 0; d < 100; d++) {
		draw = d;
		eval("v=DMARC1; p=reject; pct=30", "example.com",
		    "example.com", 0, "", 0, NULL, 0, &res);
		assert_int_equal(res.disposition, d < 30 ?
		    DMARC_POLICY_REJECT : DMARC_POLICY_QUARANTINE);
		applied += res.disposition == DMARC_POLICY_REJECT;
	}
	assert_int_equal(applied, 30);
	/* p=none is not sampled at all; a pass is not either */
	draw = 99;
	eval("v=DMARC1; p=none; pct=10", "example.com", "example.com", 0,
	    "", 0, NULL, 0, &res);
	assert_int_equal(res.sampled_out, 0);
	eval("v=DMARC1; p=reject; pct=10", "example.com", "example.com", 0,
	    "example.com", DMARC_AUTH_PASS, NULL, 0, &res);
	assert_int_equal(res.sampled_out, 0);
	assert_int_equal(res.disposition, DMARC_POLICY_NONE);
	dmarc_set_random(NULL);

	/* the real source: pct=50 applies about half the time */
	applied = 0;
	for (d = 0; d < 2000; d++) {
		eval("v=DMARC1; p=reject; pct=50", "example.com",
		    "example.com", 0, "", 0, NULL, 0, &res);
		applied += res.disposition == DMARC_POLICY_REJECT;
	}
	assert_in_range(applied, 800, 1200);
}

static void
test_names(void **state)
{
	assert_string_equal(dmarc_result_name(DMARC_RESULT_PASS), "pass");
	assert_string_equal(dmarc_result_name(DMARC_RESULT_TEMPERROR),
	    "temperror");
	assert_string_equal(dmarc_policy_name(DMARC_POLICY_QUARANTINE),
	    "quarantine");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_basic),
		cmocka_unit_test(test_parse_not_dmarc),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_uri_mailto),
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_alignment_policy_matrix),
		cmocka_unit_test(test_evaluate_cases),
		cmocka_unit_test(test_subdomain_policy),
		cmocka_unit_test(test_pct),
		cmocka_unit_test(test_names),
	};

	log_init(1, 0);
	if (dmarc_init() == -1)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
