/*
 * test_spf.c -- lookup/spf_parse.c's record parser and macro expander
 * (RFC 7208 4.6, 5, 7; the examples of 7.4 verbatim), and spf.c's
 * promises to its callers: the callback never runs inside spf_check(),
 * a cancelled check never calls back, a DNS failure is a temperror.
 * The evaluation itself is proven by the openspf suite
 * (regress/integration/test_spf_suite.py).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <event2/event.h>

#include "dns.h"
#include "mproc.h"
#include "spf.h"

/* ---- record parser ---- */

static int
parse(const char *rec, struct spf_term **t)
{
	char	err[128];
	int	n;

	n = spf_record_parse(rec, strlen(rec), t, err, sizeof(err));
	if (n == -1)
		assert_null(*t);
	return n;
}

static void
test_record_selection(void **state)
{
	assert_true(spf_record_is_spf1("v=spf1", 6));
	assert_true(spf_record_is_spf1("V=SpF1 -all", 11));
	assert_false(spf_record_is_spf1("v=spf10", 7));
	assert_false(spf_record_is_spf1("v=spf1-all", 10));
	assert_false(spf_record_is_spf1("spf2.0/pra", 10));
	assert_false(spf_record_is_spf1("v=spf", 5));
}

static void
test_record_terms(void **state)
{
	struct spf_term	*t;
	unsigned char	 ip6[16];

	assert_int_equal(parse("v=spf1", &t), 0);
	free(t);
	assert_int_equal(parse("v=spf1   -all  ", &t), 1);
	assert_int_equal(t[0].type, SPF_T_ALL);
	assert_int_equal(t[0].result, SPF_FAIL);
	free(t);

	assert_int_equal(parse("v=spf1 +a ~mx:example.org/24//64 ?ptr "
	    "ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}.x.example "
	    "include:_spf.example.net redirect=_r.example.com "
	    "exp=why.example.com moo.cow-far_out=man:dog/cat", &t), 10);
	assert_int_equal(t[0].type, SPF_T_A);
	assert_int_equal(t[0].result, SPF_PASS);
	assert_null(t[0].spec);
	assert_int_equal(t[0].cidr4, 32);
	assert_int_equal(t[0].cidr6, 128);
	assert_int_equal(t[1].type, SPF_T_MX);
	assert_int_equal(t[1].result, SPF_SOFTFAIL);
	assert_int_equal(t[1].cidr4, 24);
	assert_int_equal(t[1].cidr6, 64);
	assert_int_equal((int)t[1].speclen, 11);
	assert_memory_equal(t[1].spec, "example.org", 11);
	assert_int_equal(t[2].type, SPF_T_PTR);
	assert_int_equal(t[2].result, SPF_NEUTRAL);
	assert_int_equal(t[3].type, SPF_T_IP4);
	assert_int_equal(t[3].cidr4, 24);
	assert_memory_equal(t[3].ip, "\xc0\x00\x02\x00", 4);
	assert_int_equal(t[4].type, SPF_T_IP6);
	assert_int_equal(t[4].cidr6, 32);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::", ip6), 1);
	assert_memory_equal(t[4].ip, ip6, 16);
	assert_int_equal(t[5].type, SPF_T_EXISTS);
	assert_int_equal(t[6].type, SPF_T_INCLUDE);
	assert_int_equal(t[7].type, SPF_T_REDIRECT);
	assert_int_equal(t[8].type, SPF_T_EXP);
	assert_int_equal(t[9].type, SPF_T_UNKNOWN);
	free(t);

	/* mechanism and modifier names are case-insensitive */
	assert_int_equal(parse("v=spf1 -ALL Redirect=x.example", &t), 2);
	assert_int_equal(t[1].type, SPF_T_REDIRECT);
	free(t);
	/* RFC 7208 6: unknown modifiers are ignored however often */
	assert_int_equal(parse("v=spf1 foo=bar foo=bar -all", &t), 3);
	free(t);
	/* "a" with only an IPv6 prefix length */
	assert_int_equal(parse("v=spf1 a//0", &t), 1);
	assert_int_equal(t[0].cidr4, 32);
	assert_int_equal(t[0].cidr6, 0);
	free(t);
}

static void
test_record_errors(void **state)
{
	static const char *bad[] = {
		"v=spf1 moo",			/* unknown mechanism */
		"v=spf1 -all moo",		/* anywhere in the record */
		"v=spf1 a:example.com\rptr",	/* control char, not SP */
		"v=spf1 a:\xef\xbb\xbf" "x.example.net",	/* not ASCII */
		"v=spf1 \x96" "all",
		"v=spf1 all:x.example",		/* all takes nothing */
		"v=spf1 include",		/* include needs a domain */
		"v=spf1 include:",
		"v=spf1 exists",
		"v=spf1 ip4",
		"v=spf1 ip4:1.2.3",
		"v=spf1 ip4:1.2.3.4/33",	/* CIDR out of range */
		"v=spf1 ip4:1.2.3.4/024",	/* leading zero */
		"v=spf1 ip4:01.2.3.4",
		"v=spf1 ip4:1.2.3.256",
		"v=spf1 ip4:1.2.3.4//64",
		"v=spf1 ip6:2001:db8::/129",
		"v=spf1 ip6:1.2.3.4",
		"v=spf1 ip6",
		"v=spf1 a/33",
		"v=spf1 a//129",
		"v=spf1 mx:example.com/",	/* "com/" is no top label */
		"v=spf1 a:museum",		/* no "." before the label */
		"v=spf1 a:foo.1",		/* numeric top label */
		"v=spf1 a:foo.-bar",
		"v=spf1 a:foo.bar-",
		"v=spf1 a:foo%.example.com",	/* bad macro */
		"v=spf1 exists:%{c}.example.com",	/* c, r, t: exp only */
		"v=spf1 exists:%{r}.example.com",
		"v=spf1 exists:%{t}.example.com",
		"v=spf1 exists:%{x}.example.com",	/* no such letter */
		"v=spf1 exists:%{d0}.example.com",	/* digit 0 */
		"v=spf1 exists:%(ir).example.com",
		"v=spf1 exists:%{ir.example.com",
		"v=spf1 redirect=a.example redirect=b.example",
		"v=spf1 exp=a.example exp=b.example",
		"v=spf1 -redirect=a.example",	/* no qualifier on modifiers */
		"v=spf1 redirect=",
		"v=spf1 =foo",
		"v=spf1 1x=foo",
		"v=spf1 moo.cow/far_out=man:dog/cat",
		"v=spf1 x=%",			/* bad macro, unknown mod. */
		"v=spf1 ++all",
		"v=spf10",
		"v=spf1\tall",
		NULL
	};
	struct spf_term	*t;
	int		 i;

	for (i = 0; bad[i] != NULL; i++) {
		if (parse(bad[i], &t) != -1)
			fail_msg("accepted: %s", bad[i]);
	}
}

/* ---- macros ---- */

static struct spf_macro_ctx	ctx4, ctx6;
static char			dots4[80], text4[64], dots6[80], text6[64];

static void
ctx_setup(void)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;

	/* RFC 7208 7.4 */
	memset(&ctx4, 0, sizeof(ctx4));
	ctx4.sender = "strong-bad@email.example.com";
	ctx4.local = "strong-bad";
	ctx4.sender_domain = "email.example.com";
	ctx4.domain = "email.example.com";
	ctx4.helo = "mx.example.org";
	ctx4.ipver = "in-addr";
	ctx4.receiver = "receiver.example.net";
	ctx4.now = 1234567890;
	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.3", &sin->sin_addr), 1);
	spf_macro_ip(&ss, dots4, sizeof(dots4), text4, sizeof(text4));
	ctx4.ip = dots4;
	ctx4.client = text4;

	ctx6 = ctx4;
	ctx6.ipver = "ip6";
	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::cb01",
	    &sin6->sin6_addr), 1);
	spf_macro_ip(&ss, dots6, sizeof(dots6), text6, sizeof(text6));
	ctx6.ip = dots6;
	ctx6.client = text6;
}

static void
expands(const struct spf_macro_ctx *ctx, const char *in, int flags,
    const char *want)
{
	char	out[1024];

	if (spf_macro_expand(ctx, in, strlen(in), flags, out,
	    sizeof(out)) == -1)
		fail_msg("%s: syntax error", in);
	if (strcmp(out, want) != 0)
		fail_msg("%s: \"%s\", want \"%s\"", in, out, want);
	assert_int_equal(spf_macro_check(in, strlen(in), flags), 0);
}

static void
test_macro_rfc_examples(void **state)
{
	static const struct {
		const char *in, *out;
	} ex[] = {
		{ "%{s}", "strong-bad@email.example.com" },
		{ "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" },
		{ "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" },
		{ "%{d2}", "example.com" },
		{ "%{d1}", "com" },
		{ "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" },
		{ "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" },
		{ "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" },
		{ "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}",
		    "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		    "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net",
		    "example.com.trusted-domains.example.net" },
		{ NULL, NULL }
	};
	int	i;

	ctx_setup();
	for (i = 0; ex[i].in != NULL; i++)
		expands(&ctx4, ex[i].in, SPF_MACRO_DOMAIN, ex[i].out);
	expands(&ctx6, "%{ir}.%{v}._spf.%{d2}",
	    SPF_MACRO_DOMAIN, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
	    ".8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

static void
test_macro_rules(void **state)
{
	char	out[300], in[200];
	size_t	i;

	ctx_setup();
	/* escapes, upper case URL-escapes, exp-only letters */
	expands(&ctx4, "%%%_%-", 0, "% %20");
	expands(&ctx4, "%{S}", 0, "strong-bad%40email.example.com");
	expands(&ctx4, "%{L}", 0, "strong-bad");
	expands(&ctx4, "%{c} %{r} %{t} %{h}", SPF_MACRO_EXP,
	    "192.0.2.3 receiver.example.net 1234567890 mx.example.org");
	expands(&ctx6, "%{c}", SPF_MACRO_EXP, "2001:db8::cb01");
	expands(&ctx4, "%{p}", 0, "unknown");
	/* several delimiters, and more digits than parts */
	ctx4.local = "foo-bar+zip+quux";
	expands(&ctx4, "%{l2r+-}", 0, "bar.foo");
	expands(&ctx4, "%{l99}", 0, "foo-bar+zip+quux");
	expands(&ctx4, "%{l1+}", 0, "quux");
	ctx4.local = "strong-bad";
	/* c, r, t outside exp, digit zero, bad syntax */
	assert_int_equal(spf_macro_expand(&ctx4, "%{c}", 4, 0, out,
	    sizeof(out)), -1);
	assert_int_equal(spf_macro_check("%{d0}", 5, SPF_MACRO_EXP), -1);
	assert_int_equal(spf_macro_check("%{d", 3, SPF_MACRO_EXP), -1);
	assert_int_equal(spf_macro_check("%", 1, SPF_MACRO_EXP), -1);
	assert_int_equal(spf_macro_check("%{d!}", 5, SPF_MACRO_EXP), -1);
	assert_int_equal(spf_macro_check("a b", 3, 0), -1);
	assert_int_equal(spf_macro_check("a b", 3, SPF_MACRO_EXP), 0);
	assert_int_equal(spf_macro_check("\x80", 1, SPF_MACRO_EXP), -1);
	assert_true(spf_macro_uses("x.%{p}.y", 8, 'p'));
	assert_true(spf_macro_uses("%{P2r}", 6, 'p'));
	assert_false(spf_macro_uses("%%{p}", 5, 'p'));

	/* 7.3: a domain longer than 253 loses labels from the left */
	for (i = 0; i < 15; i++)
		memcpy(in + i * 5, "%{d}.", 5);
	memcpy(in + 75, "%{d}", 5);
	assert_int_equal(spf_macro_expand(&ctx4, in, strlen(in),
	    SPF_MACRO_DOMAIN, out, sizeof(out)), 0);
	/* 287 characters: email. example. com. email. example. com. go */
	assert_int_equal(strlen(out), 251);
	assert_memory_equal(out, "email.example.com.email.", 24);
	assert_true(out[0] != '.');
	/* too long for the buffer: an error, never a cut string */
	assert_int_equal(spf_macro_expand(&ctx4, "%{s}%{s}", 8, 0, out, 20),
	    -1);
}

/* ---- the evaluator's promises ---- */

static int			called;
static struct spf_result	got;

static void
spf_done(void *arg, const struct spf_result *r)
{
	called++;
	got = *r;
}

static void
loop_until(int *flag, int seconds)
{
	time_t	start = time(NULL);
	struct timeval	tv = { 0, 50000 };

	while (!*flag && time(NULL) - start < seconds) {
		event_base_loopexit(ev_base, &tv);
		event_base_dispatch(ev_base);
	}
}

static void
req_init(struct spf_req *req, const char *ip, const char *sender)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&req->addr;

	memset(req, 0, sizeof(*req));
	sin->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	snprintf(req->helo, sizeof(req->helo), "mx.example.org");
	snprintf(req->sender, sizeof(req->sender), "%s", sender);
}

static int
setup_loop(void **state)
{
	if ((ev_base = event_base_new()) == NULL)
		return -1;
	/* a resolver nobody answers for: every question fails */
	if (dns_init_with("127.0.0.1", 9, NULL) == -1)
		return -1;
	spf_set_timeouts(1, 5);
	return 0;
}

static int
teardown_loop(void **state)
{
	dns_shutdown();
	event_base_free(ev_base);
	ev_base = NULL;
	spf_set_timeouts(0, 0);
	return 0;
}

static void
test_eval_none_later(void **state)
{
	struct spf_req	req;

	/* 4.3: a domain literal or a one-label name gives none, later */
	req_init(&req, "192.0.2.3", "user@[192.0.2.3]");
	called = 0;
	spf_check(&req, spf_done, NULL);
	assert_int_equal(called, 0);
	loop_until(&called, 5);
	assert_int_equal(called, 1);
	assert_int_equal(got.result, SPF_NONE);

	req_init(&req, "192.0.2.3", "");
	snprintf(req.helo, sizeof(req.helo), "oemcomputer");
	called = 0;
	spf_check_helo(&req, spf_done, NULL);
	assert_int_equal(called, 0);
	loop_until(&called, 5);
	assert_int_equal(got.result, SPF_NONE);
}

static void
test_eval_dns_failure_is_temperror(void **state)
{
	struct spf_req	req;

	req_init(&req, "192.0.2.3", "user@example.com");
	called = 0;
	spf_check(&req, spf_done, NULL);
	assert_int_equal(called, 0);
	loop_until(&called, 10);
	assert_int_equal(called, 1);
	assert_int_equal(got.result, SPF_TEMPERROR);
	assert_string_equal(got.domain, "example.com");
	assert_string_equal(spf_result_name(got.result), "temperror");
}

static void
test_eval_cancel(void **state)
{
	struct spf_req		 req;
	struct spf_check	*c;
	int			 never = 0;

	req_init(&req, "192.0.2.3", "user@example.com");
	called = 0;
	/* before its first step, and with a question in flight */
	c = spf_check(&req, spf_done, NULL);
	spf_cancel(c);
	c = spf_check(&req, spf_done, NULL);
	loop_until(&never, 1);
	spf_cancel(c);
	/* the question comes back (or times out): dropped, not delivered */
	loop_until(&never, 3);
	assert_int_equal(called, 0);
}

/* a resolver that takes questions and never answers: the 20 s ceiling */
static void
test_eval_total_ceiling(void **state)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	struct spf_req		 req;
	time_t			 start;
	int			 fd;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	assert_int_equal(dns_init_with("127.0.0.1", ntohs(sin.sin_port),
	    NULL), 0);
	spf_set_timeouts(30, 1);

	req_init(&req, "192.0.2.3", "user@example.com");
	called = 0;
	start = time(NULL);
	spf_check(&req, spf_done, NULL);
	loop_until(&called, 10);
	assert_int_equal(called, 1);
	assert_int_equal(got.result, SPF_TEMPERROR);
	assert_true(time(NULL) - start <= 3);
	assert_non_null(strstr(got.smtp_comment, "longer than 1 seconds"));
	/* unbound lets go of the question later; the check is freed then */
	dns_shutdown();
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_selection),
		cmocka_unit_test(test_record_terms),
		cmocka_unit_test(test_record_errors),
		cmocka_unit_test(test_macro_rfc_examples),
		cmocka_unit_test(test_macro_rules),
		cmocka_unit_test_setup_teardown(test_eval_none_later,
		    setup_loop, teardown_loop),
		cmocka_unit_test_setup_teardown(
		    test_eval_dns_failure_is_temperror, setup_loop,
		    teardown_loop),
		cmocka_unit_test_setup_teardown(test_eval_cancel, setup_loop,
		    teardown_loop),
		cmocka_unit_test_setup_teardown(test_eval_total_ceiling,
		    setup_loop, teardown_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
