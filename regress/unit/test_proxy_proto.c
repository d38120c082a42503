/*
 * test_proxy_proto.c -- the PROXY protocol header parser
 * (common/proxy_proto.c): version 1 lines good and bad, version 2
 * headers for each family and command, and the promise the reader
 * relies on: PROXY_MORE never claims a byte past the header, whichever
 * way the bytes are split.
 */

#include <sys/types.h>
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

#include "proxy_proto.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const uint8_t	sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static void
show_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in	*sin = (const void *)ss;
	const struct sockaddr_in6	*sin6 = (const void *)ss;
	char				 a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s %u", a, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "%s %u", a, ntohs(sin6->sin6_port));
	} else
		snprintf(buf, len, "none");
}

/* one input; src/dst "ADDR PORT", or NULL when the header has none */
struct v1_case {
	const char	*in;
	int		 rc;
	size_t		 used;		/* PROXY_DONE: the header's length */
	const char	*src, *dst;
};

static void
test_v1_table(void **state)
{
	static const struct v1_case cases[] = {
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n", PROXY_DONE,
		    44, "192.0.2.1 56324", "198.51.100.2 25" },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO x\r\n",
		    PROXY_DONE, 44, "192.0.2.1 56324", "198.51.100.2 25" },
		{ "PROXY TCP6 2001:db8::1 2001:db8::2 0 65535\r\n", PROXY_DONE,
		    44, "2001:db8::1 0", "2001:db8::2 65535" },
		{ "PROXY UNKNOWN\r\n", PROXY_DONE, 15, NULL, NULL },
		{ "PROXY UNKNOWN anything at all 1 2\r\n", PROXY_DONE, 35,
		    NULL, NULL },
		/* the longest there is: two full IPv6 addresses */
		{ "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
		    PROXY_DONE, 104, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
		    "65535", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535" },
		/* incomplete */
		{ "", PROXY_MORE, 0, NULL, NULL },
		{ "PRO", PROXY_MORE, 3, NULL, NULL },
		{ "PROXY TCP4 192.0.2.1", PROXY_MORE, 20, NULL, NULL },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r", PROXY_MORE, 38,
		    NULL, NULL },
		/* bad */
		{ "PROXX TCP4", PROXY_BAD, 0, NULL, NULL },
		{ "EHLO client.example\r\n", PROXY_BAD, 0, NULL, NULL },
		{ "proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1 65536\r\n", PROXY_BAD,
		    0, NULL, NULL },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1 -2\r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1 000025\r\n", PROXY_BAD,
		    0, NULL, NULL },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\t\r\n", PROXY_BAD, 0,
		    NULL, NULL },
		{ "PROXY \r\n", PROXY_BAD, 0, NULL, NULL },
		{ "PROXY\r\n", PROXY_BAD, 0, NULL, NULL },
	};
	struct proxy_hdr	h;
	const struct v1_case	*c;
	const char		*why;
	char			 src[80], dst[80];
	size_t			 i, used;
	int			 rc;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		c = &cases[i];
		rc = proxy_parse((const uint8_t *)c->in, strlen(c->in), &h,
		    &used, &why);
		if (rc != c->rc)
			fail_msg("\"%s\": %d, want %d (%s)", c->in, rc, c->rc,
			    why ? why : "");
		if (rc == PROXY_BAD) {
			assert_non_null(why);
			continue;
		}
		if (used != (rc == PROXY_MORE ? strlen(c->in) : c->used))
			fail_msg("\"%s\": used %zu", c->in, used);
		if (rc == PROXY_MORE)
			continue;
		assert_int_equal(h.version, 1);
		assert_int_equal(h.has_addr, c->src != NULL);
		if (c->src == NULL)
			continue;
		show_addr(&h.src, src, sizeof(src));
		show_addr(&h.dst, dst, sizeof(dst));
		if (strcmp(src, c->src) != 0 || strcmp(dst, c->dst) != 0)
			fail_msg("\"%s\": %s -> %s", c->in, src, dst);
	}
}

/* 107 bytes is the most; no LF within them is an error, not "more" */
static void
test_v1_too_long(void **state)
{
	char			 buf[300];
	struct proxy_hdr	 h;
	const char		*why;
	size_t			 used;

	(void)state;
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PROXY UNKNOWN ", 14);
	memcpy(buf + 105, "\r\n", 2);
	assert_int_equal(proxy_parse((uint8_t *)buf, 107, &h, &used, &why),
	    PROXY_DONE);
	assert_int_equal(used, 107);
	memcpy(buf + 105, "x\r\n", 3);
	assert_int_equal(proxy_parse((uint8_t *)buf, 106, &h, &used, &why),
	    PROXY_MORE);
	assert_int_equal(used, 106);
	assert_int_equal(proxy_parse((uint8_t *)buf, 107, &h, &used, &why),
	    PROXY_BAD);
	assert_int_equal(proxy_parse((uint8_t *)buf, 108, &h, &used, &why),
	    PROXY_BAD);
	assert_int_equal(proxy_parse((uint8_t *)buf, sizeof(buf), &h, &used,
	    &why), PROXY_BAD);
}

/* a v2 header: signature, ver/cmd, fam, length, body */
static size_t
v2(uint8_t *out, uint8_t vercmd, uint8_t fam, const uint8_t *body,
    size_t blen)
{
	memcpy(out, sig, 12);
	out[12] = vercmd;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	if (blen > 0)
		memcpy(out + 16, body, blen);
	return 16 + blen;
}

static const uint8_t body4[12] = {
	192, 0, 2, 1,  198, 51, 100, 2,  0xdc, 0x04,  0x00, 0x19
};

static void
test_v2_inet(void **state)
{
	uint8_t			 buf[200];
	struct proxy_hdr	 h;
	const char		*why;
	char			 a[80];
	size_t			 n, used;

	(void)state;
	n = v2(buf, 0x21, 0x11, body4, sizeof(body4));
	buf[n] = 'E';		/* the client's first byte: not ours */
	assert_int_equal(proxy_parse(buf, n + 1, &h, &used, &why),
	    PROXY_DONE);
	assert_int_equal(used, 28);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.has_addr, 1);
	show_addr(&h.src, a, sizeof(a));
	assert_string_equal(a, "192.0.2.1 56324");
	show_addr(&h.dst, a, sizeof(a));
	assert_string_equal(a, "198.51.100.2 25");
}

static void
test_v2_inet6(void **state)
{
	uint8_t			 buf[200], body[36];
	struct proxy_hdr	 h;
	const char		*why;
	char			 a[80];
	size_t			 n, used;

	(void)state;
	memset(body, 0, sizeof(body));
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", body), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::25", body + 16), 1);
	body[32] = 0x30;
	body[33] = 0x39;	/* 12345 */
	body[35] = 25;
	n = v2(buf, 0x21, 0x21, body, sizeof(body));
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_DONE);
	assert_int_equal(used, 52);
	assert_int_equal(h.has_addr, 1);
	show_addr(&h.src, a, sizeof(a));
	assert_string_equal(a, "2001:db8::1 12345");
	show_addr(&h.dst, a, sizeof(a));
	assert_string_equal(a, "2001:db8::25 25");
	/* an INET6 block too short for its family */
	n = v2(buf, 0x21, 0x21, body, 20);
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_BAD);
}

/* LOCAL (a health check), UNSPEC and AF_UNIX: no client address */
static void
test_v2_no_client(void **state)
{
	uint8_t			 buf[400], body[216];
	struct proxy_hdr	 h;
	const char		*why;
	size_t			 n, used;

	(void)state;
	n = v2(buf, 0x20, 0x00, NULL, 0);
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_DONE);
	assert_int_equal(used, 16);
	assert_int_equal(h.has_addr, 0);
	/* LOCAL with addresses anyway: skipped, not read */
	n = v2(buf, 0x20, 0x11, body4, sizeof(body4));
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_DONE);
	assert_int_equal(used, 28);
	assert_int_equal(h.has_addr, 0);
	n = v2(buf, 0x21, 0x00, NULL, 0);
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_DONE);
	assert_int_equal(h.has_addr, 0);
	memset(body, 0, sizeof(body));
	memcpy(body, "/run/lb.sock", 12);
	n = v2(buf, 0x21, 0x31, body, sizeof(body));
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_DONE);
	assert_int_equal(used, 16 + 216);
	assert_int_equal(h.has_addr, 0);
	n = v2(buf, 0x21, 0x31, body, 100);
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_BAD);
}

static void
test_v2_bad(void **state)
{
	uint8_t			 buf[200];
	struct proxy_hdr	 h;
	const char		*why;
	size_t			 n, used;

	(void)state;
	/* a wrong byte in the signature, wherever it is */
	for (n = 0; n < 12; n++) {
		v2(buf, 0x21, 0x11, body4, sizeof(body4));
		buf[n] ^= 0x40;
		assert_int_equal(proxy_parse(buf, 28, &h, &used, &why),
		    PROXY_BAD);
		/* known as soon as the wrong byte is in */
		assert_int_equal(proxy_parse(buf, n + 1, &h, &used, &why),
		    PROXY_BAD);
	}
	/* version 1 in the binary form, version 3 */
	n = v2(buf, 0x11, 0x11, body4, sizeof(body4));
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_BAD);
	n = v2(buf, 0x31, 0x11, body4, sizeof(body4));
	assert_int_equal(proxy_parse(buf, 13, &h, &used, &why), PROXY_BAD);
	/* command 2 */
	n = v2(buf, 0x22, 0x11, body4, sizeof(body4));
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_BAD);
	/* UDP, family 4, transport 3 */
	n = v2(buf, 0x21, 0x12, body4, sizeof(body4));
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_BAD);
	n = v2(buf, 0x21, 0x41, body4, sizeof(body4));
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_BAD);
	n = v2(buf, 0x21, 0x13, body4, sizeof(body4));
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_BAD);
	/* INET with fewer than 12 address bytes */
	n = v2(buf, 0x21, 0x11, body4, 11);
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_BAD);
}

/* a length past what we take is refused at once, not waited for */
static void
test_v2_length_overflow(void **state)
{
	uint8_t			 buf[PROXY_HDR_MAX + 16];
	struct proxy_hdr	 h;
	const char		*why;
	size_t			 used;

	(void)state;
	memset(buf, 0, sizeof(buf));
	v2(buf, 0x21, 0x11, body4, sizeof(body4));
	buf[14] = 0xff;
	buf[15] = 0xff;
	assert_int_equal(proxy_parse(buf, 16, &h, &used, &why), PROXY_BAD);
	buf[14] = PROXY_V2_BODY_MAX >> 8;
	buf[15] = PROXY_V2_BODY_MAX & 0xff;
	/* the most we take: TLV padding (type NOOP 0x04) after the block */
	buf[28] = 0x04;
	buf[29] = (PROXY_V2_BODY_MAX - 15) >> 8;
	buf[30] = (PROXY_V2_BODY_MAX - 15) & 0xff;
	assert_int_equal(proxy_parse(buf, 100, &h, &used, &why), PROXY_MORE);
	assert_int_equal(used, 100);
	assert_int_equal(proxy_parse(buf, sizeof(buf), &h, &used, &why),
	    PROXY_DONE);
	assert_int_equal(used, PROXY_HDR_MAX);
	buf[15]++;
	assert_int_equal(proxy_parse(buf, sizeof(buf), &h, &used, &why),
	    PROXY_BAD);
}

static void
test_v2_tlvs(void **state)
{
	static const uint8_t tlvs[] = {
		0x02, 0x00, 0x0b, 'm', 'x', '.', 'e', 'x', 'a', 'm', 'p', 'l',
		'e', '.',		/* AUTHORITY */
		0x05, 0x00, 0x02, 0xab, 0xcd,	/* UNIQUE_ID */
		0x04, 0x00, 0x00,	/* NOOP, empty */
	};
	uint8_t			 buf[200], body[100];
	struct proxy_hdr	 h;
	const char		*why;
	char			 a[80];
	size_t			 n, used, cut;

	(void)state;
	memcpy(body, body4, 12);
	memcpy(body + 12, tlvs, sizeof(tlvs));
	n = v2(buf, 0x21, 0x11, body, 12 + sizeof(tlvs));
	assert_int_equal(proxy_parse(buf, n, &h, &used, &why), PROXY_DONE);
	assert_int_equal(used, n);
	show_addr(&h.src, a, sizeof(a));
	assert_string_equal(a, "192.0.2.1 56324");
	/* the block ends inside a TLV: every cut but at a TLV's end */
	for (cut = 1; cut < sizeof(tlvs); cut++) {
		n = v2(buf, 0x21, 0x11, body, 12 + cut);
		if (cut == 14 || cut == 19)
			assert_int_equal(proxy_parse(buf, n, &h, &used, &why),
			    PROXY_DONE);
		else
			assert_int_equal(proxy_parse(buf, n, &h, &used, &why),
			    PROXY_BAD);
	}
}

/*
 * Fed a byte at a time, or in any two pieces, the parser asks for more
 * until the header is in and never claims a byte past it: what a reader
 * consumes from the socket is header only.
 */
static void
test_split_never_overreads(void **state)
{
	static const char	*v1 = "PROXY TCP4 192.0.2.1 198.51.100.2 "
	    "56324 25\r\nEHLO";
	uint8_t			 buf[200];
	struct proxy_hdr	 h;
	const char		*why;
	const uint8_t		*in[2];
	size_t			 inlen[2], hlen[2], i, k, used;
	int			 rc;

	(void)state;
	in[0] = (const uint8_t *)v1;
	inlen[0] = strlen(v1);
	hlen[0] = inlen[0] - 4;
	hlen[1] = v2(buf, 0x21, 0x11, body4, sizeof(body4));
	memcpy(buf + hlen[1], "EHLO", 4);
	in[1] = buf;
	inlen[1] = hlen[1] + 4;
	for (k = 0; k < 2; k++)
		for (i = 0; i <= inlen[k]; i++) {
			rc = proxy_parse(in[k], i, &h, &used, &why);
			if (i < hlen[k]) {
				assert_int_equal(rc, PROXY_MORE);
				assert_int_equal(used, i);
			} else {
				assert_int_equal(rc, PROXY_DONE);
				assert_int_equal(used, hlen[k]);
			}
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_table),
		cmocka_unit_test(test_v1_too_long),
		cmocka_unit_test(test_v2_inet),
		cmocka_unit_test(test_v2_inet6),
		cmocka_unit_test(test_v2_no_client),
		cmocka_unit_test(test_v2_bad),
		cmocka_unit_test(test_v2_length_overflow),
		cmocka_unit_test(test_v2_tlvs),
		cmocka_unit_test(test_split_never_overreads),
	};

	return cmocka_run_group_tests_name("proxy_proto", tests, NULL, NULL);
}
