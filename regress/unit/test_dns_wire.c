/*
 * test_dns_wire.c -- lookup/dns.c's dns_parse_answer(): DNS replies built
 * byte by byte here (compression pointers, records of other types and
 * classes, wrong lengths, hostile names, lying counts), and what the
 * lookup process keeps of each.  The same parser runs against a real
 * name server in test_dns.c and under libFuzzer in fuzz_dns.c.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dns.h"

struct pkt {
	unsigned char	b[1024];
	size_t		len;
};

static void
put(struct pkt *p, const void *data, size_t n)
{
	assert_true(p->len + n <= sizeof(p->b));
	memcpy(p->b + p->len, data, n);
	p->len += n;
}

static void
put16(struct pkt *p, unsigned v)
{
	unsigned char	b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	put(p, b, 2);
}

static void
put32(struct pkt *p, unsigned long v)
{
	put16(p, (unsigned)(v >> 16));
	put16(p, (unsigned)(v & 0xffff));
}

/* a name as labels; "" is the root */
static void
putname(struct pkt *p, const char *name)
{
	const char	*dot;
	unsigned char	 n;

	while (*name) {
		dot = strchr(name, '.');
		n = (unsigned char)(dot ? (size_t)(dot - name) : strlen(name));
		put(p, &n, 1);
		put(p, name, n);
		name += n + (dot ? 1 : 0);
	}
	put(p, "", 1);
}

/* header (rcode, ancount) and the question for qname/qtype; the question
 * name is at offset 12, where a pointer 0xc00c refers */
static void
begin(struct pkt *p, unsigned rcode, unsigned ancount, const char *qname,
    unsigned qtype)
{
	p->len = 0;
	put16(p, 0x1234);
	put16(p, 0x8180 | rcode);
	put16(p, 1);
	put16(p, ancount);
	put16(p, 0);
	put16(p, 0);
	putname(p, qname);
	put16(p, qtype);
	put16(p, 1);
}

/* a record owned by the question name (pointer), rdata given */
static void
rr(struct pkt *p, unsigned type, unsigned class, const void *rdata,
    size_t rdlen)
{
	put16(p, 0xc00c);
	put16(p, type);
	put16(p, class);
	put32(p, 300);
	put16(p, (unsigned)rdlen);
	put(p, rdata, rdlen);
}

static void
mx_rr(struct pkt *p, unsigned pref, const char *exchange)
{
	struct pkt	rd = { .len = 0 };

	put16(&rd, pref);
	putname(&rd, exchange);
	rr(p, DNS_T_MX, 1, rd.b, rd.len);
}

static struct dns_result	res;

static void
parse(struct pkt *p, int qtype)
{
	memset(&res, 0x5a, sizeof(res));
	dns_parse_answer(&res, qtype, 0, p->b, (int)p->len);
}

static void
test_a_records(void **state)
{
	struct pkt		 p;
	const unsigned char	 a1[4] = { 192, 0, 2, 1 }, a2[4] = { 192, 0, 2, 2 };
	const unsigned char	 bad[5] = { 1, 2, 3, 4, 5 };
	struct sockaddr_in	*sin;

	begin(&p, 0, 4, "mx.example.test", DNS_T_A);
	rr(&p, DNS_T_A, 1, a1, 4);
	rr(&p, DNS_T_A, 1, bad, 5);		/* wrong length: skipped */
	rr(&p, DNS_T_A, 3, a1, 4);		/* class CH: skipped */
	rr(&p, DNS_T_A, 1, a2, 4);
	parse(&p, DNS_T_A);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrr, 2);
	sin = (struct sockaddr_in *)&res.rr[1].addr;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_memory_equal(&sin->sin_addr, a2, 4);
}

static void
test_mx_compression_and_case(void **state)
{
	struct pkt	p, rd = { .len = 0 };

	begin(&p, 0, 2, "Example.TEST", DNS_T_MX);
	mx_rr(&p, 10, "MX1.Example.Test.");
	/* "mx2" followed by a pointer to the question name */
	put16(&rd, 20);
	put(&rd, "\3mx2\xc0\x0c", 6);
	rr(&p, DNS_T_MX, 1, rd.b, rd.len);
	parse(&p, DNS_T_MX);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrr, 2);
	assert_int_equal(res.rr[0].preference, 10);
	assert_string_equal(res.rr[0].name, "mx1.example.test");
	assert_int_equal(res.rr[1].preference, 20);
	assert_string_equal(res.rr[1].name, "mx2.example.test");
}

static void
test_null_mx(void **state)
{
	struct pkt	p;

	begin(&p, 0, 1, "example.test", DNS_T_MX);
	mx_rr(&p, 0, "");
	parse(&p, DNS_T_MX);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrr, 1);
	assert_string_equal(res.rr[0].name, "");
}

static void
test_hostile_names_skipped(void **state)
{
	struct pkt	p;

	begin(&p, 0, 4, "example.test", DNS_T_MX);
	mx_rr(&p, 1, "evil host.example.test");	/* a space */
	mx_rr(&p, 2, "x;rm -rf.example.test");
	mx_rr(&p, 3, "nl\n.example.test");
	mx_rr(&p, 4, "good.example.test");
	parse(&p, DNS_T_MX);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrr, 1);
	assert_string_equal(res.rr[0].name, "good.example.test");
}

static void
test_ptr_root_refused(void **state)
{
	struct pkt	p;

	begin(&p, 0, 1, "1.2.0.192.in-addr.arpa", DNS_T_PTR);
	rr(&p, DNS_T_PTR, 1, "", 1);
	parse(&p, DNS_T_PTR);
	assert_int_equal(res.status, DNS_NODATA);
	assert_int_equal(res.nrr, 0);
}

static void
test_other_types_are_nodata(void **state)
{
	struct pkt	p;
	struct pkt	cname = { .len = 0 };

	putname(&cname, "alias.example.test");
	begin(&p, 0, 1, "www.example.test", DNS_T_A);
	rr(&p, 5, 1, cname.b, cname.len);
	parse(&p, DNS_T_A);
	assert_int_equal(res.status, DNS_NODATA);
	assert_int_equal(res.nrr, 0);
}

static void
test_nxdomain(void **state)
{
	struct pkt	p;

	begin(&p, 3, 0, "none.example.test", DNS_T_A);
	parse(&p, DNS_T_A);
	assert_int_equal(res.status, DNS_NXDOMAIN);
	/* the resolver's own result code wins before any parsing */
	memset(&res, 0, sizeof(res));
	dns_parse_answer(&res, DNS_T_A, 3, NULL, 0);
	assert_int_equal(res.status, DNS_NXDOMAIN);
	dns_parse_answer(&res, DNS_T_A, 2, p.b, (int)p.len);
	assert_int_equal(res.status, DNS_TEMPFAIL);
}

static void
test_truncated_and_lying(void **state)
{
	struct pkt		p;
	const unsigned char	a1[4] = { 192, 0, 2, 1 };
	size_t			full, cut;

	/* a count of 40 answers with one present: the one is not trusted
	 * either, the message is malformed */
	begin(&p, 0, 40, "mx.example.test", DNS_T_A);
	rr(&p, DNS_T_A, 1, a1, 4);
	parse(&p, DNS_T_A);
	assert_int_equal(res.status, DNS_TEMPFAIL);
	assert_int_equal(res.nrr, 0);

	/* every truncation of a good answer is a clean failure or a prefix */
	begin(&p, 0, 1, "mx.example.test", DNS_T_A);
	rr(&p, DNS_T_A, 1, a1, 4);
	full = p.len;
	for (cut = 0; cut < full; cut++) {
		memset(&res, 0x5a, sizeof(res));
		dns_parse_answer(&res, DNS_T_A, 0, p.b, (int)cut);
		assert_int_equal(res.status, DNS_TEMPFAIL);
		assert_int_equal(res.nrr, 0);
	}
}

static void
test_pointer_loop(void **state)
{
	struct pkt	p;
	unsigned char	rd[4] = { 0, 5, 0xc0, 0 };
	size_t		at;

	begin(&p, 0, 1, "example.test", DNS_T_MX);
	at = p.len + 12;	/* where this record's rdata starts */
	/* exchange: a pointer to itself */
	rd[2] = (unsigned char)(0xc0 | ((at + 2) >> 8));
	rd[3] = (unsigned char)((at + 2) & 0xff);
	rr(&p, DNS_T_MX, 1, rd, sizeof(rd));
	parse(&p, DNS_T_MX);
	assert_int_equal(res.nrr, 0);
	assert_int_not_equal(res.status, DNS_OK);
}

static void
test_at_most_max_rr(void **state)
{
	struct pkt		p;
	const unsigned char	a1[4] = { 192, 0, 2, 1 };
	int			i;

	begin(&p, 0, DNS_MAX_RR + 8, "many.example.test", DNS_T_A);
	for (i = 0; i < DNS_MAX_RR + 8; i++)
		rr(&p, DNS_T_A, 1, a1, 4);
	parse(&p, DNS_T_A);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrr, DNS_MAX_RR);
}

/* TXT: strings joined per record, records apart, overruns malformed */
static void
test_txt_records(void **state)
{
	struct pkt	p;
	const char	spf[] = "\x0cv=spf1 a -al\x03l a";
	const char	two[] = "\x05hello\x00\x06 world";
	const char	bad[] = "\x09short";

	(void)state;
	begin(&p, 0, 3, "example.test", DNS_T_TXT);
	rr(&p, DNS_T_TXT, 1, spf, sizeof(spf) - 1);
	rr(&p, DNS_T_TXT, 1, two, sizeof(two) - 1);
	rr(&p, DNS_T_A, 1, "\x01\x02\x03\x04", 4);	/* other type */
	parse(&p, DNS_T_TXT);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrr, 2);
	assert_string_equal(dns_rr_txt(&res, &res.rr[0]), "v=spf1 a -all a");
	assert_int_equal(res.rr[0].txtlen, 15);
	assert_int_equal(res.rr[0].ttl, 300);
	assert_string_equal(dns_rr_txt(&res, &res.rr[1]), "hello world");

	begin(&p, 0, 2, "example.test", DNS_T_TXT);
	rr(&p, DNS_T_TXT, 1, spf, sizeof(spf) - 1);
	rr(&p, DNS_T_TXT, 1, bad, sizeof(bad) - 1);
	parse(&p, DNS_T_TXT);
	assert_int_equal(res.status, DNS_TEMPFAIL);
	assert_int_equal(res.nrr, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_records),
		cmocka_unit_test(test_mx_compression_and_case),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_hostile_names_skipped),
		cmocka_unit_test(test_ptr_root_refused),
		cmocka_unit_test(test_other_types_are_nodata),
		cmocka_unit_test(test_nxdomain),
		cmocka_unit_test(test_truncated_and_lying),
		cmocka_unit_test(test_pointer_loop),
		cmocka_unit_test(test_at_most_max_rr),
		cmocka_unit_test(test_txt_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
