/*
 * test_tlsa.c -- TLSA records (RFC 6698) from the wire to the mta:
 * dns_parse_answer() on TLSA answers built byte by byte (fields, data
 * in the text buffer, short and oversized records, a malformed reply),
 * which records DANE for SMTP may use (dns_tlsa_usable, RFC 7672
 * 3.1.3), what an answer means for the host (dns_tlsa_kind, RFC 7672
 * 2.2), the TLSA owner name, the check of IMSG_LKA_MX_TLSA, and the
 * trust anchor files dns_init_dnssec() reads (`dnssec trust-anchor').  The
 * same parser runs under libFuzzer in fuzz_tlsa.c and against a real
 * signed zone in test_mta_dane.py.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/event.h>
#include <unistd.h>

#include "dns.h"
#include "mproc.h"
#include "proto.h"

struct pkt {
	unsigned char	b[32768];
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

static void
begin(struct pkt *p, unsigned ancount)
{
	p->len = 0;
	put16(p, 0x1234);
	put16(p, 0x8180);
	put16(p, 1);
	put16(p, ancount);
	put16(p, 0);
	put16(p, 0);
	putname(p, "_25._tcp.mx.example.test");
	put16(p, DNS_T_TLSA);
	put16(p, 1);
}

/* a TLSA record of the question's name: fields, then len bytes of data */
static void
tlsa_rr(struct pkt *p, unsigned type, unsigned usage, unsigned selector,
    unsigned mtype, const unsigned char *data, size_t len)
{
	unsigned char	f[3] = { (unsigned char)usage,
			    (unsigned char)selector, (unsigned char)mtype };

	put16(p, 0xc00c);
	put16(p, type);
	put16(p, 1);
	put16(p, 0);
	put16(p, 300);
	put16(p, (unsigned)(len + 3));
	put(p, f, 3);
	put(p, data, len);
}

static struct dns_result	res;
static unsigned char		sha256[32], sha512[64], big[3000];

static void
parse(struct pkt *p)
{
	memset(&res, 0x5a, sizeof(res));
	dns_parse_answer(&res, DNS_T_TLSA | DNS_Q_DNSSEC, 0, p->b,
	    (int)p->len);
}

static int
setup(void **state)
{
	size_t	i;

	for (i = 0; i < sizeof(sha256); i++)
		sha256[i] = (unsigned char)i;
	for (i = 0; i < sizeof(sha512); i++)
		sha512[i] = (unsigned char)(0xff - i);
	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7);
	return 0;
}

static void
test_records_parsed(void **state)
{
	struct pkt		p;
	const unsigned char	a = 0xab;

	begin(&p, 4);
	tlsa_rr(&p, DNS_T_TLSA, 3, 1, 1, sha256, sizeof(sha256));
	tlsa_rr(&p, DNS_T_A, 3, 1, 1, sha256, 1);	/* other type */
	tlsa_rr(&p, DNS_T_TLSA, 2, 0, 2, sha512, sizeof(sha512));
	tlsa_rr(&p, DNS_T_TLSA, 1, 0, 0, &a, 1);
	parse(&p);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrr, 3);
	assert_int_equal(res.rr[0].type, DNS_T_TLSA);
	assert_int_equal(res.rr[0].tlsa_usage, 3);
	assert_int_equal(res.rr[0].tlsa_selector, 1);
	assert_int_equal(res.rr[0].tlsa_mtype, 1);
	assert_int_equal(res.rr[0].txtlen, 32);
	assert_memory_equal(dns_rr_txt(&res, &res.rr[0]), sha256, 32);
	assert_int_equal(res.rr[1].tlsa_usage, 2);
	assert_int_equal(res.rr[1].tlsa_mtype, 2);
	assert_int_equal(res.rr[1].txtlen, 64);
	assert_memory_equal(dns_rr_txt(&res, &res.rr[1]), sha512, 64);
	/* a PKIX usage is parsed; tlsa.c judges it */
	assert_int_equal(res.rr[2].tlsa_usage, 1);
	assert_int_equal(res.rr[2].txtlen, 1);
	assert_int_equal((unsigned char)dns_rr_txt(&res, &res.rr[2])[0], a);
	/* every record's data lies inside the buffer */
	assert_true(res.rr[2].txt + res.rr[2].txtlen < sizeof(res.txtbuf));
}

static void
test_short_and_oversized_left_out(void **state)
{
	struct pkt	p;

	begin(&p, 3);
	tlsa_rr(&p, DNS_T_TLSA, 3, 1, 1, sha256, 0);	/* no data */
	tlsa_rr(&p, DNS_T_TLSA, 3, 0, 0, big, DNS_TLSA_DATA_MAX + 1);
	tlsa_rr(&p, DNS_T_TLSA, 3, 0, 0, big, DNS_TLSA_DATA_MAX);
	parse(&p);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrr, 1);
	assert_int_equal(res.rr[0].txtlen, DNS_TLSA_DATA_MAX);
	assert_memory_equal(dns_rr_txt(&res, &res.rr[0]), big,
	    DNS_TLSA_DATA_MAX);

	/* only records too short to hold the fields: no data */
	begin(&p, 1);
	put16(&p, 0xc00c);
	put16(&p, DNS_T_TLSA);
	put16(&p, 1);
	put16(&p, 0);
	put16(&p, 300);
	put16(&p, 2);
	put(&p, "\3\1", 2);
	parse(&p);
	assert_int_equal(res.status, DNS_NODATA);
	assert_int_equal(res.nrr, 0);
}

/* records that no longer fit in the text buffer are left out, the
 * ones after them that do are kept */
static void
test_buffer_fills_up(void **state)
{
	struct pkt	p;
	size_t		i, fit = DNS_TXT_MAX / (DNS_TLSA_DATA_MAX + 1);

	begin(&p, 10);
	for (i = 0; i < 9; i++)
		tlsa_rr(&p, DNS_T_TLSA, 2, 0, 0, big, DNS_TLSA_DATA_MAX);
	tlsa_rr(&p, DNS_T_TLSA, 3, 1, 1, sha256, sizeof(sha256));
	parse(&p);
	assert_int_equal(res.status, DNS_OK);
	assert_int_equal(res.nrr, fit + 1);
	assert_int_equal(res.rr[fit].tlsa_usage, 3);
	assert_memory_equal(dns_rr_txt(&res, &res.rr[fit]), sha256, 32);
	assert_true(res.txtused <= sizeof(res.txtbuf));
	for (i = 0; i < res.nrr; i++)
		assert_true(res.rr[i].txt + res.rr[i].txtlen <
		    sizeof(res.txtbuf));
}

static void
test_malformed_is_tempfail(void **state)
{
	struct pkt	p;

	begin(&p, 2);
	tlsa_rr(&p, DNS_T_TLSA, 3, 1, 1, sha256, sizeof(sha256));
	tlsa_rr(&p, DNS_T_TLSA, 3, 1, 1, sha256, sizeof(sha256));
	/* the second record's data cut short: the message lies */
	memset(&res, 0, sizeof(res));
	dns_parse_answer(&res, DNS_T_TLSA, 0, p.b, (int)p.len - 10);
	assert_int_equal(res.status, DNS_TEMPFAIL);
	assert_int_equal(res.nrr, 0);
}

static void
test_usable(void **state)
{
	/* RFC 7672 3.1.3: PKIX-TA(0) and PKIX-EE(1) are not for SMTP */
	assert_false(dns_tlsa_usable(0, 0, 1, 32));
	assert_false(dns_tlsa_usable(1, 1, 1, 32));
	assert_true(dns_tlsa_usable(2, 0, 1, 32));
	assert_true(dns_tlsa_usable(3, 1, 1, 32));
	assert_true(dns_tlsa_usable(3, 1, 2, 64));
	assert_true(dns_tlsa_usable(2, 1, 0, 300));
	assert_false(dns_tlsa_usable(4, 1, 1, 32));
	assert_false(dns_tlsa_usable(255, 1, 1, 32));
	/* selectors 0 and 1 only */
	assert_false(dns_tlsa_usable(3, 2, 1, 32));
	/* the digest's length must be the type's */
	assert_false(dns_tlsa_usable(3, 1, 1, 31));
	assert_false(dns_tlsa_usable(3, 1, 1, 64));
	assert_false(dns_tlsa_usable(3, 1, 2, 32));
	assert_false(dns_tlsa_usable(3, 1, 3, 32));
	assert_false(dns_tlsa_usable(3, 0, 0, 0));
	assert_false(dns_tlsa_usable(3, 0, 0, DNS_TLSA_DATA_MAX + 1));
}

static void
test_kind(void **state)
{
	struct pkt	p;

	begin(&p, 2);
	tlsa_rr(&p, DNS_T_TLSA, 1, 1, 1, sha256, sizeof(sha256));
	tlsa_rr(&p, DNS_T_TLSA, 3, 1, 1, sha256, sizeof(sha256));
	parse(&p);
	res.bogus = 0;
	res.secure = 1;
	assert_int_equal(dns_tlsa_kind(&res), LKA_TLSA_RECORD);
	/* insecure records mean nothing (RFC 7672 2.2) */
	res.secure = 0;
	assert_int_equal(dns_tlsa_kind(&res), LKA_TLSA_NONE);
	/* secure, but only a PKIX-EE record: TLS without authentication */
	begin(&p, 1);
	tlsa_rr(&p, DNS_T_TLSA, 1, 1, 1, sha256, sizeof(sha256));
	parse(&p);
	res.bogus = 0;
	res.secure = 1;
	assert_int_equal(dns_tlsa_kind(&res), LKA_TLSA_UNUSABLE);
	/* a secure denial: no DANE */
	memset(&res, 0, sizeof(res));
	res.status = DNS_NODATA;
	res.secure = 1;
	assert_int_equal(dns_tlsa_kind(&res), LKA_TLSA_NONE);
	res.status = DNS_NXDOMAIN;
	assert_int_equal(dns_tlsa_kind(&res), LKA_TLSA_NONE);
	/* bogus, SERVFAIL or no answer: the host is not to be used */
	res.status = DNS_TEMPFAIL;
	res.secure = 0;
	assert_int_equal(dns_tlsa_kind(&res), LKA_TLSA_BOGUS);
	res.bogus = 1;
	assert_int_equal(dns_tlsa_kind(&res), LKA_TLSA_BOGUS);
}

static void
test_name(void **state)
{
	char	buf[DNS_NAME_MAX], host[300];

	assert_int_equal(dns_tlsa_name("mx.example.test", 25, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "_25._tcp.mx.example.test");
	assert_int_equal(dns_tlsa_name("relay.test", 587, buf, sizeof(buf)),
	    0);
	assert_string_equal(buf, "_587._tcp.relay.test");
	memset(host, 'a', sizeof(host));
	host[250] = '\0';
	assert_int_equal(dns_tlsa_name(host, 25, buf, sizeof(buf)), -1);
}

static void
test_imsg_check(void **state)
{
	struct lka_mx_tlsa	t;

	memset(&t, 0, sizeof(t));
	snprintf(t.host, sizeof(t.host), "mx.example.test");
	t.kind = LKA_TLSA_RECORD;
	t.usage = 3;
	t.selector = 1;
	t.mtype = 1;
	t.datalen = 32;
	assert_int_equal(proto_valid_lka_mx_tlsa(&t), 0);
	t.usage = 1;
	assert_int_equal(proto_valid_lka_mx_tlsa(&t), -1);
	t.usage = 2;
	t.datalen = 31;
	assert_int_equal(proto_valid_lka_mx_tlsa(&t), -1);
	t.mtype = 0;
	t.datalen = LKA_TLSA_DATA_MAX + 1;
	assert_int_equal(proto_valid_lka_mx_tlsa(&t), -1);
	t.datalen = LKA_TLSA_DATA_MAX;
	assert_int_equal(proto_valid_lka_mx_tlsa(&t), 0);
	t.kind = LKA_TLSA_BOGUS;
	assert_int_equal(proto_valid_lka_mx_tlsa(&t), -1);
	t.datalen = 0;
	assert_int_equal(proto_valid_lka_mx_tlsa(&t), 0);
	t.kind = LKA_TLSA_NONE;
	assert_int_equal(proto_valid_lka_mx_tlsa(&t), -1);
	t.kind = LKA_TLSA_UNUSABLE;
	memset(t.host, 'x', sizeof(t.host));	/* not terminated */
	assert_int_equal(proto_valid_lka_mx_tlsa(&t), -1);
	t.host[0] = '\0';
	assert_int_equal(proto_valid_lka_mx_tlsa(&t), -1);
}

/* a trust anchor file with these contents; dns_init_dnssec()'s result */
static int
anchor_file(const char *text)
{
	char	path[] = "/tmp/test_tlsa.XXXXXX";
	FILE	*fp;
	int	 fd, rc;

	assert_int_not_equal(fd = mkstemp(path), -1);
	assert_non_null(fp = fdopen(fd, "w"));
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	rc = dns_init_dnssec(path);
	unlink(path);
	return rc;
}

static void
test_trust_anchor_files(void **state)
{
	assert_non_null(ev_base = event_base_new());
	assert_int_equal(dns_init_with("127.0.0.1", 9, NULL), 0);
	/* a DS as ldns-keygen writes it, and comments */
	assert_int_equal(anchor_file("; the test zone\n\n"
	    "dane.test.\tIN\tDS\t4550 13 2 5a59dd64d547a485cc67e1e74f51d4565"
	    "1fc74f7b7512a3b6ed07337a569f726\n"), 0);
	/* a DNSKEY with its keytag comment, as in root.key */
	assert_int_equal(anchor_file(". IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh"
	    "5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5e"
	    "mLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8"
	    "PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqql"
	    "s3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzu"
	    "DWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1Ak"
	    "UTV74bU= ; keytag 20326\n"), 0);
	/* nothing but comments: no anchor is an error */
	assert_int_equal(anchor_file("; nothing\n\n"), -1);
	/* a record of another type, or one unbound refuses */
	assert_int_equal(anchor_file("dane.test. IN A 192.0.2.1\n"), -1);
	assert_int_equal(anchor_file("dane.test. IN DS not a digest\n"), -1);
	/* TTL and class given, the digest in two pieces */
	assert_int_equal(anchor_file("dane.test. 3600 IN DS 4550 13 2 "
	    "5a59dd64d547a485cc67e1e74f51d4565 1fc74f7b7512a3b6ed07337a569f72"
	    "6\n"), 0);
	assert_true(dns_anchor_ok("a.test. DNSKEY 257 3 13 AbC+/="));
	assert_false(dns_anchor_ok("a.test. DNSKEY 257 4 13 AbC+/="));
	assert_false(dns_anchor_ok("a.test. DNSKEY 257 3 13 Ab*"));
	assert_false(dns_anchor_ok("a.test. DS 4550 13 2"));
	assert_false(dns_anchor_ok("a.test. DS 65536 13 2 ab"));
	assert_false(dns_anchor_ok("a.test. DS 4550 13 -2 ab"));
	assert_false(dns_anchor_ok("DS 4550 13 2 ab"));
	assert_false(dns_anchor_ok(""));
	/* a missing file */
	assert_int_equal(dns_init_dnssec("/nonexistent/anchor"), -1);
	if (access(DNS_ROOT_ANCHOR, R_OK) == 0)
		assert_int_equal(dns_init_dnssec(DNS_ROOT_ANCHOR), 0);
	dns_shutdown();
	event_base_free(ev_base);
	ev_base = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_parsed),
		cmocka_unit_test(test_short_and_oversized_left_out),
		cmocka_unit_test(test_buffer_fills_up),
		cmocka_unit_test(test_malformed_is_tempfail),
		cmocka_unit_test(test_usable),
		cmocka_unit_test(test_kind),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_imsg_check),
		cmocka_unit_test(test_trust_anchor_files),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
