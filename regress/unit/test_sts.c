/*
 * test_sts.c -- common/sts.c: the MTA-STS TXT record (RFC 8461 3.1), the
 * policy file (3.2) with LF and CRLF lines, its refusals (each required
 * field missing or doubled, bad values, empty lines, lone CR, 64 KB),
 * the MX patterns (4.1: "*." stands for exactly one label), and the
 * lookup process's cache file (round trip, torn and edited files), and
 * the check of the policy's message to the mta (proto_valid_lka_mx_sts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proto.h"
#include "sts.h"

static int
txt(const char *s, char *id)
{
	return sts_txt_parse(s, strlen(s), id);
}

static void
test_txt_valid(void **state)
{
	char	id[STS_ID_MAX];

	(void)state;
	assert_int_equal(txt("v=STSv1; id=20160831085700Z;", id), 0);
	assert_string_equal(id, "20160831085700Z");
	assert_int_equal(txt("v=STSv1;id=abc", id), 0);
	assert_string_equal(id, "abc");
	assert_int_equal(txt("v=STSv1 ;\tid=X1 ; ext_1=v:a/l ;", id), 0);
	assert_string_equal(id, "X1");
	assert_int_equal(txt("v=STSv1; foo=bar; id=12345678901234567890"
	    "123456789012", id), 0);
	assert_int_equal(strlen(id), 32);
}

static void
test_txt_refused(void **state)
{
	static const char *const bad[] = {
		"", "v=STSv1", "v=STSv1;", "v=STSv1; ", "v=STSv2; id=1",
		"v=stsv1; id=1", " v=STSv1; id=1", "v=STSv1 id=1",
		"v=STSv1; id=", "v=STSv1; id=a-b", "v=STSv1; id=a b",
		"v=STSv1; id=123456789012345678901234567890123",
		"v=STSv1; id=1; id=2", "v=STSv1; foo=bar",
		"v=STSv1; id=1; =x", "v=STSv1; id=1; foo", "v=STSv1; id=1;;",
		"v=STSv1; id=1; f=a=b", "v=STSv1; id=1; _f=x",
		"v=STSv1; id=1; f=\x80", "v=STSv1; id=1 x",
	};
	char	id[STS_ID_MAX];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (txt(bad[i], id) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	/* a NUL inside the record ends nothing: it is a bad byte */
	assert_int_equal(sts_txt_parse("v=STSv1; id=1\0x", 15, id), -1);
	assert_int_equal(sts_txt_is_sts("v=STSv1; id=1", 13), 1);
	assert_int_equal(sts_txt_is_sts("v=STSv10; id=1", 14), 0);
	assert_int_equal(sts_txt_is_sts("v=spf1 -all", 11), 0);
}

static int
pol(const char *s, struct sts_policy *p)
{
	const char	*why;
	int		 rc;

	rc = sts_policy_parse(s, strlen(s), p, &why);
	assert_true(rc == 0 ? why == NULL : why != NULL);
	return rc;
}

static void
test_policy_valid(void **state)
{
	struct sts_policy	p;

	(void)state;
	/* RFC 8461 3.2's example, LF */
	assert_int_equal(pol("version: STSv1\nmode: enforce\n"
	    "mx: mail.example.com\nmx: *.example.net\n"
	    "mx: backupmx.example.com\nmax_age: 604800\n", &p), 0);
	assert_int_equal(p.mode, STS_MODE_ENFORCE);
	assert_int_equal(p.max_age, 604800);
	assert_int_equal(p.nmx, 3);
	assert_string_equal(p.mx[1], "*.example.net");
	/* CRLF, no final terminator, WSP after the colon and at the end,
	 * an extension, upper-case mx folded */
	assert_int_equal(pol("version:STSv1\r\nmode:\t testing \r\n"
	    "mx: MX.Example.COM\r\nfoo_bar: some value here\r\n"
	    "max_age: 86400", &p), 0);
	assert_int_equal(p.mode, STS_MODE_TESTING);
	assert_string_equal(p.mx[0], "mx.example.com");
	/* mode none needs no mx; trailing empty lines are tolerated */
	assert_int_equal(pol("version: STSv1\nmode: none\nmax_age: 1\n\n\r\n",
	    &p), 0);
	assert_int_equal(p.mode, STS_MODE_NONE);
	assert_int_equal(p.nmx, 0);
	/* max_age above a year reads as a year */
	assert_int_equal(pol("version: STSv1\nmode: none\n"
	    "max_age: 9999999999\n", &p), 0);
	assert_int_equal(p.max_age, STS_MAX_AGE_MAX);
	assert_string_equal(sts_mode_name(STS_MODE_ENFORCE), "enforce");
}

static void
test_policy_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"mode: enforce\nmx: a.b\nmax_age: 1\n",		/* no version */
		"version: STSv1\nmx: a.b\nmax_age: 1\n",	/* no mode */
		"version: STSv1\nmode: enforce\nmx: a.b\n",	/* no max_age */
		"version: STSv1\nmode: enforce\nmax_age: 1\n",	/* no mx */
		"version: STSv1\nmode: testing\nmax_age: 1\n",
		"version: STSv2\nmode: none\nmax_age: 1\n",
		"version: STSv1\nversion: STSv1\nmode: none\nmax_age: 1\n",
		"version: STSv1\nmode: none\nmode: none\nmax_age: 1\n",
		"version: STSv1\nmode: none\nmax_age: 1\nmax_age: 1\n",
		"version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1\n",
		"Version: STSv1\nmode: none\nmax_age: 1\n",
		"version: STSv1\nmode: none\nmax_age: -1\n",
		"version: STSv1\nmode: none\nmax_age: 1d\n",
		"version: STSv1\nmode: none\nmax_age: \n",
		"version: STSv1\nmode: none\nmax_age: 12345678901\n",
		"version: STSv1\nmode: none\n\nmax_age: 1\n",	/* empty line */
		"version: STSv1\rmode: none\nmax_age: 1\n",	/* lone CR */
		"version: STSv1\nmode: none\nmax_age: 1\nbogus\n",
		" version: STSv1\nmode: none\nmax_age: 1\n",
		"version : STSv1\nmode: none\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: **.b\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.b.\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: -a.b\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a_b.c\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n",
		"version: STSv1\nmode: none\nmax_age: 1\nx:\n",
		"version: STSv1\nmode: none\nmax_age: 1\nx: a\x01\n",
	};
	struct sts_policy	p;
	char			*big;
	size_t			 i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pol(bad[i], &p) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	/* a NUL byte */
	{
		const char	*why;
		const char	 s[] = "version: STSv1\nmode: none\0\nmax_age: 1\n";

		assert_int_equal(sts_policy_parse(s, sizeof(s) - 1, &p, &why),
		    -1);
	}
	/* 33 mx patterns */
	big = malloc(STS_POLICY_MAX + 2);
	assert_non_null(big);
	n = (size_t)snprintf(big, STS_POLICY_MAX, "version: STSv1\n"
	    "mode: enforce\nmax_age: 1\n");
	for (i = 0; i <= STS_MX_MAX; i++)
		n += (size_t)snprintf(big + n, STS_POLICY_MAX - n,
		    "mx: m%zu.example\n", i);
	assert_int_equal(pol(big, &p), -1);
	/* 64 KB and one byte, of an otherwise valid policy */
	n = (size_t)snprintf(big, STS_POLICY_MAX, "version: STSv1\n"
	    "mode: none\nmax_age: 1\nx: ");
	memset(big + n, 'a', STS_POLICY_MAX + 1 - n);
	big[STS_POLICY_MAX + 1] = '\0';
	assert_int_equal(pol(big, &p), -1);
	big[STS_POLICY_MAX] = '\0';		/* exactly 64 KB: fine */
	assert_int_equal(pol(big, &p), 0);
	free(big);
}

static void
test_mx_match(void **state)
{
	struct sts_policy	p;

	(void)state;
	assert_true(sts_mx_match("mail.example.com", "mail.example.com"));
	assert_true(sts_mx_match("mail.example.com", "MAIL.Example.com."));
	assert_false(sts_mx_match("mail.example.com", "mail.example.co"));
	assert_false(sts_mx_match("mail.example.com", "xmail.example.com"));
	assert_true(sts_mx_match("*.example.com", "mx1.example.com"));
	assert_true(sts_mx_match("*.example.com", "MX1.EXAMPLE.COM."));
	assert_false(sts_mx_match("*.example.com", "example.com"));
	assert_false(sts_mx_match("*.example.com", "a.b.example.com"));
	assert_false(sts_mx_match("*.example.com", ".example.com"));
	assert_false(sts_mx_match("*.example.com", "mx1.example.co"));
	assert_false(sts_mx_match("*.example.com", "mx1xexample.com"));
	assert_false(sts_mx_match("*.example.com", ""));
	assert_false(sts_mx_match("*.example.com", "."));
	/* a "*" in the host name is not a wildcard */
	assert_false(sts_mx_match("mail.example.com", "*.example.com"));
	assert_int_equal(pol("version: STSv1\nmode: enforce\n"
	    "mx: a.example\nmx: *.b.example\nmax_age: 1\n", &p), 0);
	assert_true(sts_policy_mx_match(&p, "a.example"));
	assert_true(sts_policy_mx_match(&p, "x.b.example"));
	assert_false(sts_policy_mx_match(&p, "b.example"));
	assert_false(sts_policy_mx_match(&p, "c.example"));
}

static void
test_domain_valid(void **state)
{
	char	name[300];

	(void)state;
	snprintf(name, sizeof(name), "Mta-Sts.Example.COM");
	assert_int_equal(sts_domain_valid(name), 0);
	assert_string_equal(name, "mta-sts.example.com");
	snprintf(name, sizeof(name), "..");
	assert_int_equal(sts_domain_valid(name), -1);
	snprintf(name, sizeof(name), "a/b");
	assert_int_equal(sts_domain_valid(name), -1);
	snprintf(name, sizeof(name), "a-.b");
	assert_int_equal(sts_domain_valid(name), -1);
	memset(name, 'a', 64);
	name[64] = '\0';
	assert_int_equal(sts_domain_valid(name), -1);
	name[63] = '\0';
	assert_int_equal(sts_domain_valid(name), 0);
}

static void
test_cache(void **state)
{
	static const char	 policy[] = "version: STSv1\r\nmode: enforce\r\n"
				    "mx: *.example.net\r\nmax_age: 3600\r\n";
	static const char	 pinned[] = "posthaste-sts-cache 1\nid abc1\n"
				    "fetched 1700000000\nlength 65\n";
	struct sts_cache	 c;
	char			 buf[1024], edit[1024];
	long			 n;
	size_t			 i;

	(void)state;
	n = sts_cache_encode(buf, sizeof(buf), "abc1", 1700000000, policy,
	    strlen(policy));
	assert_true(n > 0);
	assert_int_equal(strlen(policy), 65);
	assert_memory_equal(buf, pinned, strlen(pinned));
	assert_int_equal(sts_cache_decode(buf, (size_t)n, &c), 0);
	assert_string_equal(c.id, "abc1");
	assert_int_equal(c.fetched, 1700000000);
	assert_int_equal(c.policy.mode, STS_MODE_ENFORCE);
	assert_int_equal(c.policy.max_age, 3600);
	assert_string_equal(c.policy.mx[0], "*.example.net");
	/* every torn file is refused */
	for (i = 0; i < (size_t)n; i++)
		assert_int_equal(sts_cache_decode(buf, i, &c), -1);
	/* and every file with one byte changed, but in the policy's free
	 * text or a digit of the time */
	for (i = 0; i < (size_t)n; i++) {
		memcpy(edit, buf, (size_t)n);
		edit[i] = '\n';
		if (edit[i] == buf[i])
			continue;
		if (sts_cache_decode(edit, (size_t)n, &c) == 0 &&
		    !(i > strlen(pinned) && i < strlen(pinned) + 65))
			fail_msg("accepted with byte %zu changed", i);
	}
	/* too small a buffer */
	assert_int_equal(sts_cache_encode(buf, 40, "abc1", 1, policy,
	    strlen(policy)), -1);
	/* a cache file whose policy does not parse */
	n = sts_cache_encode(buf, sizeof(buf), "abc1", 1, "mode: x\n", 8);
	assert_true(n > 0);
	assert_int_equal(sts_cache_decode(buf, (size_t)n, &c), -1);
}

static void
test_proto_validator(void **state)
{
	static struct lka_mx_sts	r;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(proto_valid_lka_mx_sts(&r), 0);	/* none */
	r.status = LKA_STS_POLICY;
	r.mode = STS_MODE_ENFORCE;
	r.max_age = 86400;
	assert_int_equal(proto_valid_lka_mx_sts(&r), -1);	/* no mx */
	r.nmx = 2;
	snprintf(r.mx[0], sizeof(r.mx[0]), "mx.example.com");
	snprintf(r.mx[1], sizeof(r.mx[1]), "*.example.net");
	snprintf(r.id, sizeof(r.id), "abc");
	assert_int_equal(proto_valid_lka_mx_sts(&r), 0);
	snprintf(r.mx[1], sizeof(r.mx[1]), "*.Example.net");
	assert_int_equal(proto_valid_lka_mx_sts(&r), -1);	/* not folded */
	snprintf(r.mx[1], sizeof(r.mx[1]), "a.*.example.net");
	assert_int_equal(proto_valid_lka_mx_sts(&r), -1);
	snprintf(r.mx[1], sizeof(r.mx[1]), "*.example.net");
	r.max_age = STS_MAX_AGE_MAX + 1;
	assert_int_equal(proto_valid_lka_mx_sts(&r), -1);
	r.max_age = 1;
	r.nmx = STS_MX_MAX + 1;
	assert_int_equal(proto_valid_lka_mx_sts(&r), -1);
	r.nmx = 2;
	memset(r.id, 'a', sizeof(r.id));
	assert_int_equal(proto_valid_lka_mx_sts(&r), -1);	/* no NUL */
	r.id[0] = '\0';
	r.status = LKA_STS_WEBPKI + 1;
	assert_int_equal(proto_valid_lka_mx_sts(&r), -1);
	r.status = LKA_STS_FETCH_ERROR;
	assert_int_equal(proto_valid_lka_mx_sts(&r), -1);	/* mx kept */
	r.nmx = 0;
	assert_int_equal(proto_valid_lka_mx_sts(&r), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt_valid),
		cmocka_unit_test(test_txt_refused),
		cmocka_unit_test(test_policy_valid),
		cmocka_unit_test(test_policy_refused),
		cmocka_unit_test(test_mx_match),
		cmocka_unit_test(test_domain_valid),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_proto_validator),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
