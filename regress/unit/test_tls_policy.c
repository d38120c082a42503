/*
 * test_tls_policy.c -- the TLS policy table's values (config/tls_policy.c:
 * levels, match= and what is refused), the parent's check of a whole
 * table with its file and line, and the grammar around it in smtpd.conf
 * ("mta tls-policy", "mta ca-file", several pki on one listener), and
 * the mta's lookup in it (mta/mta_tlspolicy.c).
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "proc.h"
#include "tls_policy.h"
#define POSTHASTE_MTA_INTERNAL
#include "mta/mta.h"

static void
parse_ok(const char *value, struct tls_policy *tp)
{
	char	err[256] = "";

	if (tls_policy_parse(value, tp, err, sizeof(err)) != 0)
		fail_msg("\"%s\": %s", value, err);
}

static void
parse_bad(const char *value, const char *why)
{
	struct tls_policy	tp;
	char			err[256] = "";

	if (tls_policy_parse(value, &tp, err, sizeof(err)) != -1)
		fail_msg("\"%s\" was accepted", value);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": \"%s\" does not say \"%s\"", value, err, why);
}

static void
test_levels(void **state)
{
	static const struct {
		const char	*value;
		enum relay_tls	 level;
	} levels[] = {
		{ "none", RELAY_TLS_NO }, { "no", RELAY_TLS_NO },
		{ "may", RELAY_TLS_OPPORTUNISTIC },
		{ "encrypt", RELAY_TLS_REQUIRE },
		{ "verify", RELAY_TLS_VERIFY }, { "secure", RELAY_TLS_SECURE },
		{ "dane", RELAY_TLS_DANE }, { "dane-only", RELAY_TLS_DANE_ONLY },
		{ "  \tsecure \t", RELAY_TLS_SECURE },
	};
	struct tls_policy	tp;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		parse_ok(levels[i].value, &tp);
		assert_int_equal(tp.level, levels[i].level);
		assert_int_equal(tp.nmatch, 0);
	}
}

static void
test_match(void **state)
{
	struct tls_policy	tp;

	(void)state;
	parse_ok("secure match=mx.example.org", &tp);
	assert_int_equal(tp.level, RELAY_TLS_SECURE);
	assert_int_equal(tp.nmatch, 1);
	assert_string_equal(tp.match[0], "mx.example.org");

	parse_ok("verify match=hostname:nexthop:dot-nexthop:.example.org",
	    &tp);
	assert_int_equal(tp.level, RELAY_TLS_VERIFY);
	assert_int_equal(tp.nmatch, 4);
	assert_string_equal(tp.match[0], "hostname");
	assert_string_equal(tp.match[1], "nexthop");
	assert_string_equal(tp.match[2], "dot-nexthop");
	assert_string_equal(tp.match[3], ".example.org");

	/* given twice: the names add up, as in Postfix */
	parse_ok("secure match=a.example match=b.example", &tp);
	assert_int_equal(tp.nmatch, 2);
	assert_string_equal(tp.match[1], "b.example");
}

static void
test_refused(void **state)
{
	char	many[512];
	char	longname[400];

	(void)state;
	parse_bad("", "no TLS level");
	parse_bad("   ", "no TLS level");
	parse_bad("maybe", "unknown TLS level");
	parse_bad("Secure", "unknown TLS level");
	parse_bad("match=x.example secure", "unknown TLS level");
	parse_bad("secure match=", "needs a name");
	parse_bad("secure match=a::b", "empty name");
	parse_bad("secure match=a:", "empty name");
	parse_bad("secure match=:a", "empty name");
	parse_bad("secure match=a..b", "invalid name");
	parse_bad("secure match=..a", "invalid name");
	parse_bad("secure match=.", "invalid name");
	parse_bad("secure match=a/b", "invalid name");
	parse_bad("secure match=*.example.org", "invalid name");
	parse_bad("encrypt match=a.example", "only applies to verify and secure");
	parse_bad("dane match=a.example", "only applies to verify and secure");
	parse_bad("may match=a.example", "only applies");
	parse_bad("secure ciphers=high", "unknown attribute");
	parse_bad("secure verify", "unknown attribute");
	parse_bad("secure MATCH=a.example", "unknown attribute");
	snprintf(many, sizeof(many), "secure match=a:b:c:d:e:f:g:h:i");
	parse_bad(many, "more than 8");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	snprintf(many, sizeof(many), "secure match=%s", longname);
	parse_bad(many, "too long");
}

/* ---- smtpd.conf ---- */

static char	path[64];

static struct smtpd_config *
parse_conf(const char *text, char *err, size_t errlen)
{
	struct smtpd_config	*cf;
	FILE			*fp;
	int			 fd;

	snprintf(path, sizeof(path), "/tmp/test_tls_policy.XXXXXX");
	assert_true((fd = mkstemp(path)) != -1);
	assert_non_null(fp = fdopen(fd, "w"));
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	cf = config_parse(path, err, errlen);
	unlink(path);
	return cf;
}

static void
conf_error(const char *text, int line, const char *why)
{
	struct smtpd_config	*cf;
	char			 err[512] = "", want[128];

	if ((cf = parse_conf(text, err, sizeof(err))) != NULL) {
		config_free(cf);
		fail_msg("accepted: %s", text);
	}
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)) != 0 || strstr(err, why) == NULL)
		fail_msg("\"%s\" is not \"%s%s\"", err, want, why);
}

static void
test_grammar(void **state)
{
	struct smtpd_config	*cf;
	struct listener		*l;
	char			 err[512] = "";

	(void)state;
	cf = parse_conf("table pol { example.org = secure }\n"
	    "mta tls-policy <pol>\n"
	    "mta ca-file \"/etc/ssl/test-ca.pem\"\n"
	    "mta max-conn-per-host 3\n"
	    "pki a cert /a.crt\npki a key /a.key\n"
	    "pki b cert /b.crt\npki b key /b.key\n"
	    "pki c cert /c.crt\npki c key /c.key\n"
	    "listen on 127.0.0.1 tls pki a pki b pki c\n"
	    "listen on 127.0.0.1 port 465 smtps pki b\n", err, sizeof(err));
	if (cf == NULL)
		fail_msg("%s", err);
	assert_string_equal(cf->mta_tls_policy, "pol");
	assert_int_equal(cf->mta_tls_policy_line, 2);
	assert_string_equal(cf->mta_ca_file, "/etc/ssl/test-ca.pem");
	assert_int_equal(cf->mta_max_per_dest, 3);
	l = TAILQ_FIRST(&cf->listeners);
	assert_string_equal(l->pki, "a");
	assert_int_equal(l->nsni_pki, 2);
	assert_string_equal(l->sni_pki[0], "b");
	assert_string_equal(l->sni_pki[1], "c");
	l = TAILQ_NEXT(l, entry);
	assert_string_equal(l->pki, "b");
	assert_int_equal(l->nsni_pki, 0);
	config_free(cf);

	conf_error("mta tls-policy <nope>\n", 1, "no table \"nope\"");
	conf_error("table t { a, b }\nmta tls-policy <t>\n", 2,
	    "must be a key = value mapping");
	conf_error("table t { a = may }\nmta tls-policy <t>\n"
	    "mta tls-policy <t>\n", 3, "given twice");
	conf_error("mta ca-file relative.pem\n", 1, "absolute path");
	conf_error("mta ca-file /a\nmta ca-file /b\n", 2, "given twice");
	conf_error("pki a cert /a\npki a key /k\n"
	    "listen on 127.0.0.1 tls pki a pki a\n", 3, "given twice");
	conf_error("pki a cert /a\npki a key /k\n"
	    "listen on 127.0.0.1 tls pki a pki zz\n", 3, "no pki \"zz\"");
	conf_error("pki a cert /a\npki a key /k\n"
	    "listen on 127.0.0.1 tls pki a pki a1 pki a2 pki a3 pki a4 "
	    "pki a5 pki a6 pki a7 pki a8\n", 3, "too many pki");
}

/* the parent's check: every entry, with the table file's own lines */
static void
test_check_table(void **state)
{
	struct smtpd_config	*cf;
	char			 tab[64], text[256], err[512] = "", *out = NULL;
	size_t			 outlen = 0;
	FILE			*fp, *mem;
	int			 fd;

	(void)state;
	snprintf(tab, sizeof(tab), "/tmp/test_tls_policy_tab.XXXXXX");
	assert_true((fd = mkstemp(tab)) != -1);
	assert_non_null(fp = fdopen(fd, "w"));
	fputs("# policy\n"
	    "example.org secure match=mx.example.net\n"
	    ".example.com verify\n"
	    "bad.example verify match=\n"
	    "\n"
	    "worse.example maybe\n"
	    "bad/key encrypt\n", fp);
	assert_int_equal(fclose(fp), 0);
	snprintf(text, sizeof(text), "table p file:%s\nmta tls-policy <p>\n",
	    tab);
	if ((cf = parse_conf(text, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_non_null(mem = open_memstream(&out, &outlen));
	assert_int_equal(config_check_tls_policy(cf, mem), 3);
	assert_int_equal(fclose(mem), 0);
	snprintf(text, sizeof(text), "%s:4: TLS policy table p: "
	    "\"bad.example\": match= needs a name", tab);
	if (strstr(out, text) == NULL)
		fail_msg("no \"%s\" in:\n%s", text, out);
	snprintf(text, sizeof(text), "%s:6: ", tab);
	assert_non_null(strstr(out, text));
	snprintf(text, sizeof(text), "%s:7: ", tab);
	assert_non_null(strstr(out, text));
	free(out);
	config_free(cf);

	/* an inline table: smtpd.conf's line of "mta tls-policy" */
	cf = parse_conf("table p { a.example = secure, b.example = "
	    "\"verify match=x..y\" }\n\nmta tls-policy <p>\n", err,
	    sizeof(err));
	if (cf == NULL)
		fail_msg("%s", err);
	out = NULL;
	assert_non_null(mem = open_memstream(&out, &outlen));
	assert_int_equal(config_check_tls_policy(cf, mem), 1);
	assert_int_equal(fclose(mem), 0);
	snprintf(text, sizeof(text), "%s:3: TLS policy table p: "
	    "\"b.example\": match=: invalid name \"x..y\"", path);
	if (strstr(out, text) == NULL)
		fail_msg("no \"%s\" in:\n%s", text, out);
	free(out);
	config_free(cf);

	/* a file that is gone is one problem, at the table's line */
	unlink(tab);
	snprintf(text, sizeof(text), "table p file:%s\nmta tls-policy <p>\n",
	    tab);
	if ((cf = parse_conf(text, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	out = NULL;
	assert_non_null(mem = open_memstream(&out, &outlen));
	assert_int_equal(config_check_tls_policy(cf, mem), 1);
	assert_int_equal(fclose(mem), 0);
	assert_non_null(strstr(out, "cannot read"));
	free(out);
	config_free(cf);
}

/* the mta's lookup: Postfix's order, ".parent" entries, case, bad ones */
static void
test_mta_lookup(void **state)
{
	struct tls_policy	tp;
	char			err[512] = "";

	(void)state;
	conf = parse_conf("table p { example.org = secure, "
	    ".example.org = \"verify match=hostname\", "
	    ".b.example.org = encrypt, Upper.Example = none, "
	    "broken.example = \"sekure\" }\n"
	    "mta tls-policy <p>\n", err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	mta_tlspolicy_init();

	assert_int_equal(mta_tlspolicy_find("example.org", &tp), 1);
	assert_int_equal(tp.level, RELAY_TLS_SECURE);
	assert_int_equal(mta_tlspolicy_find("EXAMPLE.org.", &tp), 1);
	assert_int_equal(tp.level, RELAY_TLS_SECURE);
	/* a subdomain: ".example.org", not the domain's own entry */
	assert_int_equal(mta_tlspolicy_find("a.example.org", &tp), 1);
	assert_int_equal(tp.level, RELAY_TLS_VERIFY);
	assert_int_equal(tp.nmatch, 1);
	/* the nearest parent first */
	assert_int_equal(mta_tlspolicy_find("x.b.example.org", &tp), 1);
	assert_int_equal(tp.level, RELAY_TLS_REQUIRE);
	assert_int_equal(mta_tlspolicy_find("b.example.org", &tp), 1);
	assert_int_equal(tp.level, RELAY_TLS_VERIFY);
	assert_int_equal(mta_tlspolicy_find("upper.example", &tp), 1);
	assert_int_equal(tp.level, RELAY_TLS_NO);
	/* no entry: the action's level stays */
	assert_int_equal(mta_tlspolicy_find("example.net", &tp), 0);
	assert_int_equal(mta_tlspolicy_find("org", &tp), 0);
	assert_int_equal(mta_tlspolicy_find("xexample.org", &tp), 0);
	assert_int_equal(mta_tlspolicy_find("", &tp), 0);
	/* an entry that does not parse: -1, the destination deferred */
	assert_int_equal(mta_tlspolicy_find("broken.example", &tp), -1);
	config_free(conf);
	conf = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_check_table),
		cmocka_unit_test(test_mta_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
