/*
 * test_dnsbl.c -- lookup/dnsbl.c's pure parts: the list spec parser
 * (Postfix postscreen_dnsbl_sites syntax, errors in words), question
 * names for IPv4, IPv6 (nibbles) and v4-mapped addresses, the answer
 * filters, and the text naming the lists that hit.  The asynchronous
 * check, weights summed over real answers and the cache are proven
 * against dnsmasq in test_authdns.c.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "dns.h"
#include "dnsbl.h"

static void
ip(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
}

static uint32_t
a4(const char *text)
{
	struct in_addr	in;

	assert_int_equal(inet_pton(AF_INET, text, &in), 1);
	return ntohl(in.s_addr);
}

static int
hits(const struct dnsbl_list *l, const char *addr)
{
	uint32_t	a = a4(addr);

	return dnsbl_answer_hits(l, &a, 1);
}

static void
test_parse_ok(void **state)
{
	struct dnsbl_list	l;
	char			err[256];

	assert_int_equal(dnsbl_parse_list("zen.spamhaus.org", &l, err,
	    sizeof(err)), 0);
	assert_string_equal(l.zone, "zen.spamhaus.org");
	assert_int_equal(l.weight, 1);
	assert_int_equal(l.nfilter, 0);

	assert_int_equal(dnsbl_parse_list(" BL.Example.COM.*3 ", &l, err,
	    sizeof(err)), 0);
	assert_string_equal(l.zone, "bl.example.com");
	assert_int_equal(l.weight, 3);

	assert_int_equal(dnsbl_parse_list("list.dnswl.org="
	    "127.0.[0..255].[1..3]*-5", &l, err, sizeof(err)), 0);
	assert_int_equal(l.weight, -5);
	assert_int_equal(l.nfilter, 1);

	assert_int_equal(dnsbl_parse_list("bl.test=127.0.0.[2..4];"
	    "127.0.0.10*2", &l, err, sizeof(err)), 0);
	assert_string_equal(l.zone, "bl.test");
	assert_int_equal(l.nfilter, 2);
	assert_int_equal(l.weight, 2);

	/* ';' inside brackets lists values; outside, patterns */
	assert_int_equal(dnsbl_parse_list("bl.test=127.0.0.[2;4;6..7]", &l,
	    err, sizeof(err)), 0);
	assert_int_equal(l.nfilter, 1);
	assert_int_equal(dnsbl_parse_list("bl.test*+2", &l, err,
	    sizeof(err)), 0);
	assert_int_equal(l.weight, 2);
	assert_int_equal(dnsbl_parse_list("_under.test*0", &l, err,
	    sizeof(err)), 0);
}

static void
bad(const char *spec, const char *why)
{
	struct dnsbl_list	l;
	char			err[256];

	err[0] = '\0';
	assert_int_equal(dnsbl_parse_list(spec, &l, err, sizeof(err)), -1);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", spec, err, why);
}

static void
test_parse_errors(void **state)
{
	char	long_zone[300];

	bad("", "no DNS zone");
	bad("=127.0.0.2", "no DNS zone");
	bad("*2", "no DNS zone");
	bad("bl..test", "not a DNS zone name");
	bad("bl test", "not a DNS zone name");
	bad(".bl.test", "not a DNS zone name");
	bad("bl.test=", "nothing after '='");
	bad("bl.test=127.0.0", "4 octets");
	bad("bl.test=127.0.0.256", "number 0..255");
	bad("bl.test=127.0.0.2.5", "junk after");
	bad("bl.test=127.0.0.[2..", "bad range");
	bad("bl.test=127.0.0.[4..2]", "bad range");
	bad("bl.test=127.0.0.[2", "unclosed [");
	bad("bl.test=127.0.0.[]", "number 0..255 in [...]");
	bad("bl.test=127.0.0.2;", "number 0..255");
	bad("bl.test=1;2;3;4;5;6;7;8;9", "4 octets");
	bad("bl.test=127.0.0.1;127.0.0.2;127.0.0.3;127.0.0.4;127.0.0.5;"
	    "127.0.0.6;127.0.0.7;127.0.0.8;127.0.0.9", "too many");
	bad("bl.test*", "weight: not a number");
	bad("bl.test*x", "weight: not a number");
	bad("bl.test*2x", "weight: not a number");
	bad("bl.test*-", "weight: not a number");
	bad("bl.test*99999999999999999999", "weight");
	bad("bl.test*1001", "out of range");
	bad("bl.test*2=127.0.0.2", "weight: not a number");
	memset(long_zone, 'a', sizeof(long_zone) - 1);
	long_zone[sizeof(long_zone) - 1] = '\0';
	bad(long_zone, "too long");
	/* the spec is named in the message */
	bad("bl.test*x", "\"bl.test*x\"");
}

static void
test_query_name(void **state)
{
	struct sockaddr_storage	ss;
	char			name[256];

	ip("192.0.2.1", &ss);
	assert_int_equal(dnsbl_query_name(&ss, "bl.test", name,
	    sizeof(name)), 0);
	assert_string_equal(name, "1.2.0.192.bl.test");
	ip("127.0.0.2", &ss);
	assert_int_equal(dnsbl_query_name(&ss, "zen.spamhaus.org", name,
	    sizeof(name)), 0);
	assert_string_equal(name, "2.0.0.127.zen.spamhaus.org");
	/* RFC 5782 2.4's example */
	ip("2001:db8:1:2:3:4:567:89ab", &ss);
	assert_int_equal(dnsbl_query_name(&ss, "ugly.example.com", name,
	    sizeof(name)), 0);
	assert_string_equal(name, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0."
	    "1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com");
	ip("::1", &ss);
	assert_int_equal(dnsbl_query_name(&ss, "x", name, sizeof(name)), 0);
	assert_string_equal(name, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.x");
	/* v4-mapped: asked as IPv4 */
	ip("::ffff:192.0.2.7", &ss);
	assert_int_equal(dnsbl_query_name(&ss, "bl.test", name,
	    sizeof(name)), 0);
	assert_string_equal(name, "7.2.0.192.bl.test");
	/* too small, other family */
	ip("192.0.2.1", &ss);
	assert_int_equal(dnsbl_query_name(&ss, "bl.test", name, 10), -1);
	ip("::1", &ss);
	assert_int_equal(dnsbl_query_name(&ss, "bl.test", name, 70), -1);
	ss.ss_family = AF_UNIX;
	assert_int_equal(dnsbl_query_name(&ss, "bl.test", name,
	    sizeof(name)), -1);
}

/*
 * The question names agree with lookup/dns.c's dns_ptr_name(), written
 * separately for reverse DNS: the same reversal under in-addr.arpa and
 * ip6.arpa, for random addresses of both families.
 */
static void
test_query_name_vs_ptr(void **state)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)&ss;
	char			 ours[256], ptr[256];
	int			 i;

	for (i = 0; i < 2000; i++) {
		memset(&ss, 0, sizeof(ss));
		if (i % 2) {
			s4->sin_family = AF_INET;
			arc4random_buf(&s4->sin_addr, sizeof(s4->sin_addr));
			assert_int_equal(dnsbl_query_name(&ss, "in-addr.arpa",
			    ours, sizeof(ours)), 0);
		} else {
			s6->sin6_family = AF_INET6;
			arc4random_buf(&s6->sin6_addr, sizeof(s6->sin6_addr));
			if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
				continue;
			assert_int_equal(dnsbl_query_name(&ss, "ip6.arpa",
			    ours, sizeof(ours)), 0);
		}
		assert_int_equal(dns_ptr_name(&ss, ptr, sizeof(ptr)), 0);
		assert_string_equal(ours, ptr);
	}
}

static void
test_filters(void **state)
{
	struct dnsbl_list	l;
	char			err[256];
	uint32_t		two[2];

	/* no filter: any 127/8 except 127.255.255/24 (query refused) */
	assert_int_equal(dnsbl_parse_list("bl.test", &l, err, sizeof(err)),
	    0);
	assert_true(hits(&l, "127.0.0.2"));
	assert_true(hits(&l, "127.0.1.10"));
	assert_false(hits(&l, "127.255.255.254"));
	assert_false(hits(&l, "127.255.255.252"));
	assert_false(hits(&l, "10.0.0.2"));
	assert_false(dnsbl_answer_hits(&l, two, 0));

	assert_int_equal(dnsbl_parse_list("bl.test=127.0.0.[2..4];"
	    "127.0.0.10", &l, err, sizeof(err)), 0);
	assert_false(hits(&l, "127.0.0.1"));
	assert_true(hits(&l, "127.0.0.2"));
	assert_true(hits(&l, "127.0.0.3"));
	assert_true(hits(&l, "127.0.0.4"));
	assert_false(hits(&l, "127.0.0.5"));
	assert_false(hits(&l, "127.0.0.9"));
	assert_true(hits(&l, "127.0.0.10"));
	assert_false(hits(&l, "127.0.1.2"));
	assert_false(hits(&l, "128.0.0.2"));
	/* any record of the answer may match */
	two[0] = a4("127.0.0.9");
	two[1] = a4("127.0.0.10");
	assert_true(dnsbl_answer_hits(&l, two, 2));
	assert_false(dnsbl_answer_hits(&l, two, 1));

	assert_int_equal(dnsbl_parse_list("wl.test=127.0.[0..255].[1;3]*-2",
	    &l, err, sizeof(err)), 0);
	assert_true(hits(&l, "127.0.15.1"));
	assert_true(hits(&l, "127.0.255.3"));
	assert_false(hits(&l, "127.0.15.2"));
	assert_false(hits(&l, "127.1.15.1"));

	/* a pattern outside 127/8 is the admin's choice: honoured */
	assert_int_equal(dnsbl_parse_list("odd.test=10.0.0.1", &l, err,
	    sizeof(err)), 0);
	assert_true(hits(&l, "10.0.0.1"));
}

static void
test_hits_text(void **state)
{
	struct dnsbl_set	set;
	struct dnsbl_result	res;
	char			err[256], out[64];

	memset(&set, 0, sizeof(set));
	memset(&res, 0, sizeof(res));
	assert_int_equal(dnsbl_parse_list("a.test*2", &set.list[0], err,
	    sizeof(err)), 0);
	assert_int_equal(dnsbl_parse_list("wl.test*-5", &set.list[1], err,
	    sizeof(err)), 0);
	assert_int_equal(dnsbl_parse_list("b.test", &set.list[2], err,
	    sizeof(err)), 0);
	set.nlist = 3;
	res.nhit = 3;
	res.hit[0] = 0;
	res.hit[1] = 1;
	res.hit[2] = 2;
	dnsbl_hits_text(&set, &res, out, sizeof(out));
	/* allow lists are not named in a rejection */
	assert_string_equal(out, "a.test, b.test");
	dnsbl_hits_text(&set, &res, out, 10);
	assert_string_equal(out, "a.test");
	res.nhit = 0;
	dnsbl_hits_text(&set, &res, out, sizeof(out));
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_query_name),
		cmocka_unit_test(test_query_name_vs_ptr),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_hits_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
