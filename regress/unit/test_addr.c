/*
 * test_addr.c -- tables of good and bad addresses, ESMTP parameters and
 * xtext strings for common/addr.c.
 *
 * Each table row is one input and the exact result expected; a failure
 * names the row's input (escaped) so the table itself is the report.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#define N	ADDR_ALLOW_NULL
#define U	ADDR_ALLOW_UTF8
#define P	ADDR_ALLOW_NODOMAIN

#define OK	ADDR_OK
#define SYN	ADDR_ERR_SYNTAX
#define BIT8	ADDR_ERR_UTF8

/* Escape an input for a failure message; rotating buffers, so that one
 * message may show up to four strings. */
static const char *
show(const char *s)
{
	static char	 buf[4][1024];
	static unsigned	 which;
	char		*out = buf[which++ % 4];
	size_t		 n = 0;

	for (; *s != '\0' && n + 5 < sizeof(buf[0]); s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f || c == '\\')
			n += (size_t)snprintf(out + n, sizeof(buf[0]) - n,
			    "\\x%02x", c);
		else
			out[n++] = (char)c;
	}
	out[n] = '\0';
	return out;
}

/* Fill buf with `len' copies of c followed by NUL; returns buf. */
static char *
fill(char *buf, char c, size_t len)
{
	memset(buf, c, len);
	buf[len] = '\0';
	return buf;
}

/*
 * A domain of exactly `len' octets: 60-octet labels joined by dots.  For
 * the lengths used here the last octet is never a dot.
 */
static char *
long_domain(char *buf, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		buf[i] = (i % 61 == 60) ? '.' : (char)('a' + (i % 26));
	buf[len] = '\0';
	return buf;
}

/* A row for a path that must be refused with rc. */
#define PATH_BAD(in, flags, rc)	{ in, flags, rc, NULL, NULL, NULL }

struct path_case {
	const char	*in;
	int		 flags;
	int		 rc;
	const char	*user;		/* expected on ADDR_OK */
	const char	*domain;
	const char	*rest;
};

static const struct path_case path_cases[] = {
	/* plain */
	{ "<a@b.c>", 0, OK, "a", "b.c", "" },
	{ "<user@example.com> SIZE=100", 0, OK, "user", "example.com",
	    " SIZE=100" },
	{ "  <user@example.com>", 0, OK, "user", "example.com", "" },
	{ "<a.b.c@d>", 0, OK, "a.b.c", "d", "" },
	{ "<!#$%&'*+-/=?^_`{|}~@x>", 0, OK, "!#$%&'*+-/=?^_`{|}~", "x", "" },
	{ "<a@3com.example>", 0, OK, "a", "3com.example", "" },
	{ "<a@123.example>", 0, OK, "a", "123.example", "" },
	{ "<a@x.4b>", 0, OK, "a", "x.4b", "" },
	{ "<a@xn--bcher-kva.example>", 0, OK, "a", "xn--bcher-kva.example",
	    "" },
	{ "<a@b-c.d-e>", 0, OK, "a", "b-c.d-e", "" },

	/* local part case is kept, an ASCII domain is lower-cased */
	{ "<John.Doe@Example.COM>", 0, OK, "John.Doe", "example.com", "" },
	{ "<MiXeD@A-B.Example>", U, OK, "MiXeD", "a-b.example", "" },

	/* null path */
	{ "<>", N, OK, "", "", "" },
	{ "<> BODY=8BITMIME", N | U | P, OK, "", "", " BODY=8BITMIME" },
	PATH_BAD("<>", 0, SYN),
	PATH_BAD("<>", U | P, SYN),
	PATH_BAD("< >", N, SYN),
	PATH_BAD("<<>>", N, SYN),

	/* postmaster without a domain, RCPT TO only */
	{ "<postmaster>", P, OK, "postmaster", "", "" },
	{ "<PostMaster>", P, OK, "postmaster", "", "" },
	{ "<POSTMASTER> NOTIFY=NEVER", P, OK, "postmaster", "",
	    " NOTIFY=NEVER" },
	PATH_BAD("<postmaster>", 0, SYN),
	PATH_BAD("<postmaster>", N, SYN),
	PATH_BAD("<bob>", P, SYN),
	PATH_BAD("<\"postmaster\">", P, SYN),
	PATH_BAD("<postmaster.x>", P, SYN),
	PATH_BAD("<@relay:postmaster>", P, SYN),
	{ "<Postmaster@Example.org>", 0, OK, "Postmaster", "example.org",
	    "" },

	/* source routes are accepted and dropped, but checked */
	{ "<@r1.example,@r2.example:u@d.example>", 0, OK, "u", "d.example",
	    "" },
	{ "<@R1:u@d>", 0, OK, "u", "d", "" },
	PATH_BAD("<@r1:>", N, SYN),
	PATH_BAD("<@r1,r2:u@d>", 0, SYN),
	PATH_BAD("<@r1,:u@d>", 0, SYN),
	PATH_BAD("<@:u@d>", 0, SYN),
	PATH_BAD("<@r1u@d>", 0, SYN),
	PATH_BAD("<@r1;u@d>", 0, SYN),
	PATH_BAD("<@-r1:u@d>", 0, SYN),
	PATH_BAD("<@r1.:u@d>", 0, SYN),
	PATH_BAD("<@[192.0.2.1]:u@d>", 0, SYN),
	PATH_BAD("<@r\xc3\xbc:u@d>", 0, BIT8),
	{ "<@r\xc3\xbc:u@d>", U, OK, "u", "d", "" },

	/* quoted local parts keep their quotes and escapes */
	{ "<\"a@b\"@x>", 0, OK, "\"a@b\"", "x", "" },
	{ "<\"John Doe\"@x>", 0, OK, "\"John Doe\"", "x", "" },
	{ "<\"a\\\"b\"@x>", 0, OK, "\"a\\\"b\"", "x", "" },
	{ "<\"a\\\\\"@x>", 0, OK, "\"a\\\\\"", "x", "" },
	{ "<\"a>b\"@x>", 0, OK, "\"a>b\"", "x", "" },
	{ "<\"\"@x>", 0, OK, "\"\"", "x", "" },
	{ "<\"a\"@x>", 0, OK, "\"a\"", "x", "" },
	PATH_BAD("<\"a@x>", 0, SYN),
	PATH_BAD("<\"a\\\">", 0, SYN),
	PATH_BAD("<\"a\"b@x>", 0, SYN),
	PATH_BAD("<a\"b\"@x>", 0, SYN),
	PATH_BAD("<\"a\"\"b\"@x>", 0, SYN),
	PATH_BAD("<\"a\tb\"@x>", 0, SYN),
	PATH_BAD("<\"a\\\rb\"@x>", 0, SYN),
	PATH_BAD("<\"a\\\nb\"@x>", 0, SYN),
	PATH_BAD("<\"a\x7f\"@x>", 0, SYN),
	PATH_BAD("<\"a\"@x", 0, SYN),

	/* dot-string */
	PATH_BAD("<.a@x>", 0, SYN),
	PATH_BAD("<a.@x>", 0, SYN),
	PATH_BAD("<a..b@x>", 0, SYN),
	PATH_BAD("<.@x>", 0, SYN),
	PATH_BAD("<@x>", 0, SYN),
	PATH_BAD("<a b@x>", 0, SYN),
	PATH_BAD("<a(b)@x>", 0, SYN),
	PATH_BAD("<a,b@x>", 0, SYN),
	PATH_BAD("<a;b@x>", 0, SYN),
	PATH_BAD("<a[b@x>", 0, SYN),
	PATH_BAD("<a\\b@x>", 0, SYN),
	PATH_BAD("<a@b@x>", 0, SYN),

	/* structure around the path */
	PATH_BAD("a@b", 0, SYN),
	PATH_BAD("", N, SYN),
	PATH_BAD("<", N, SYN),
	PATH_BAD("<a@b", 0, SYN),
	PATH_BAD("<a@b>x", 0, SYN),
	PATH_BAD("<a@b>>", 0, SYN),
	PATH_BAD("<a@b>\r\n", 0, SYN),
	PATH_BAD("<a@b>\t", 0, SYN),
	PATH_BAD("\t<a@b>", 0, SYN),
	PATH_BAD("<a>", 0, SYN),
	PATH_BAD("<a@>", 0, SYN),
	PATH_BAD("<@>", 0, SYN),
	PATH_BAD("<a@b >", 0, SYN),
	PATH_BAD("< a@b>", 0, SYN),

	/* domains */
	PATH_BAD("<a@b.>", 0, SYN),
	PATH_BAD("<a@.b>", 0, SYN),
	PATH_BAD("<a@b..c>", 0, SYN),
	PATH_BAD("<a@-b.c>", 0, SYN),
	PATH_BAD("<a@b-.c>", 0, SYN),
	PATH_BAD("<a@b.-c>", 0, SYN),
	PATH_BAD("<a@b.c->", 0, SYN),
	PATH_BAD("<a@b_c.d>", 0, SYN),
	PATH_BAD("<a@b c>", 0, SYN),
	PATH_BAD("<a@b:c>", 0, SYN),
	/* an all-numeric top-level label would pass for an address */
	PATH_BAD("<a@192.0.2.1>", 0, SYN),
	PATH_BAD("<a@123>", 0, SYN),
	PATH_BAD("<a@x.01>", 0, SYN),

	/* address literals */
	{ "<a@[192.0.2.1]>", 0, OK, "a", "[192.0.2.1]", "" },
	{ "<a@[0.0.0.0]>", 0, OK, "a", "[0.0.0.0]", "" },
	{ "<a@[255.255.255.255]>", 0, OK, "a", "[255.255.255.255]", "" },
	{ "<a@[IPv6:2001:DB8::1]>", 0, OK, "a", "[IPv6:2001:db8::1]", "" },
	{ "<a@[ipv6:::1]>", 0, OK, "a", "[IPv6:::1]", "" },
	{ "<a@[IPV6:::ffff:192.0.2.1]>", 0, OK, "a",
	    "[IPv6:::ffff:192.0.2.1]", "" },
	{ "<a@[IPv6:2001:db8:0:0:0:0:0:1]>", 0, OK, "a",
	    "[IPv6:2001:db8:0:0:0:0:0:1]", "" },
	PATH_BAD("<a@[192.0.2.256]>", 0, SYN),
	PATH_BAD("<a@[192.0.2]>", 0, SYN),
	PATH_BAD("<a@[192.0.2.1.5]>", 0, SYN),
	PATH_BAD("<a@[01.2.3.4]>", 0, SYN),
	PATH_BAD("<a@[ 192.0.2.1]>", 0, SYN),
	PATH_BAD("<a@[IPv6:2001:db8::g]>", 0, SYN),
	PATH_BAD("<a@[IPv6:2001:db8:::1]>", 0, SYN),
	PATH_BAD("<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, SYN),
	PATH_BAD("<a@[IPv6:192.0.2.1]>", 0, SYN),
	PATH_BAD("<a@[IPv6:fe80::1%eth0]>", 0, SYN),
	PATH_BAD("<a@[2001:db8::1]>", 0, SYN),
	PATH_BAD("<a@[x-tag:foo]>", 0, SYN),
	PATH_BAD("<a@[IPv6:]>", 0, SYN),
	PATH_BAD("<a@[]>", 0, SYN),
	PATH_BAD("<a@[192.0.2.1>", 0, SYN),
	PATH_BAD("<a@[192.0.2.1", 0, SYN),
	PATH_BAD("<a@[192.0.2.1].com>", 0, SYN),
	PATH_BAD("<a@x.[192.0.2.1]>", 0, SYN),
	PATH_BAD("<a@[192.0.2.1\\]>", 0, SYN),
	PATH_BAD("<a@[[192.0.2.1]]>", 0, SYN),
	/* too long to be any address literal */
	PATH_BAD("<a@[" "1111111111111111111111111111111111111111"
	    "111111111111111111111111111111111111]>", 0, SYN),

	/* control characters, anywhere */
	PATH_BAD("<a\x01" "b@x>", 0, SYN),
	PATH_BAD("<a\r@x>", 0, SYN),
	PATH_BAD("<a\n@x>", 0, SYN),
	PATH_BAD("<a@x\ny>", 0, SYN),
	PATH_BAD("<a@x\r>", 0, SYN),
	PATH_BAD("<a\x7f@x>", 0, SYN),
	PATH_BAD("<a@x\x7f>", 0, SYN),
	PATH_BAD("<\x1b@x>", U, SYN),

	/* UTF-8: only with ADDR_ALLOW_UTF8 (RFC 6531) */
	{ "<\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae@"
	  "\xcf\x80\xce\xb1\xcf\x81\xce\xac\xce\xb4\xce\xb5\xce\xb9\xce\xb3"
	  "\xce\xbc\xce\xb1.\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae>",
	    U, OK, "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae",
	    "\xcf\x80\xce\xb1\xcf\x81\xce\xac\xce\xb4\xce\xb5\xce\xb9\xce\xb3"
	    "\xce\xbc\xce\xb1.\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae",
	    "" },
	PATH_BAD("<\xce\xb4\xce\xbf@x>", 0, BIT8),
	PATH_BAD("<\xce\xb4\xce\xbf@x>", N | P, BIT8),
	{ "<a@B\xc3\xbc" "cher.Example>", U, OK, "a",
	    "b\xc3\xbc" "cher.example", "" },
	PATH_BAD("<a@b\xc3\xbc" "cher.example>", 0, BIT8),
	{ "<\"\xc3\xbc\"@x>", U, OK, "\"\xc3\xbc\"", "x", "" },
	PATH_BAD("<\"\xc3\xbc\"@x>", 0, BIT8),
	PATH_BAD("<\"\\\xc3\xbc\"@x>", U, SYN),	/* quoted-pair is ASCII */
	{ "<\xe6\x97\xa5\xe6\x9c\xac@x>", U, OK, "\xe6\x97\xa5\xe6\x9c\xac",
	    "x", "" },
	{ "<\xf0\x9f\x93\xa7@x>", U, OK, "\xf0\x9f\x93\xa7", "x", "" },
	PATH_BAD("<a\xc3@x>", U, SYN),		/* truncated */
	PATH_BAD("<a\xc3>", U, SYN),
	PATH_BAD("<\xc0\xaf@x>", U, SYN),	/* overlong "/" */
	PATH_BAD("<\xe0\x80\xaf@x>", U, SYN),	/* overlong */
	PATH_BAD("<\xed\xa0\x80@x>", U, SYN),	/* surrogate */
	PATH_BAD("<\xf4\x90\x80\x80@x>", U, SYN),	/* > U+10FFFF */
	PATH_BAD("<\xff@x>", U, SYN),
	PATH_BAD("<\x80@x>", U, SYN),		/* stray continuation */
	PATH_BAD("<\xc2\x85@x>", U, SYN),	/* C1 control NEL */
	PATH_BAD("<a@\xc2\x9f.x>", U, SYN),
	PATH_BAD("<a@\xc3\xbc->", U, SYN),
	PATH_BAD("<a@-\xc3\xbc>", U, SYN),
};

static void
check_path(size_t i, const struct path_case *c)
{
	struct mailaddr	 m;
	const char	*rest = NULL;
	int		 rc;

	memset(&m, 'Z', sizeof(m));
	rc = addr_parse_path(c->in, &m, c->flags, &rest);
	if (rc != c->rc)
		fail_msg("path %zu \"%s\" flags %d: rc %d, want %d", i,
		    show(c->in), c->flags, rc, c->rc);
	if (rc != ADDR_OK) {
		/* a failed parse must not leave a usable address behind */
		if (m.user[0] != '\0' || m.domain[0] != '\0')
			fail_msg("path %zu \"%s\": output not cleared", i,
			    show(c->in));
		return;
	}
	if (strcmp(m.user, c->user) != 0)
		fail_msg("path %zu \"%s\": user \"%s\", want \"%s\"", i,
		    show(c->in), show(m.user), show(c->user));
	if (strcmp(m.domain, c->domain) != 0)
		fail_msg("path %zu \"%s\": domain \"%s\", want \"%s\"", i,
		    show(c->in), show(m.domain), show(c->domain));
	if (rest == NULL || strcmp(rest, c->rest) != 0)
		fail_msg("path %zu \"%s\": rest \"%s\", want \"%s\"", i,
		    show(c->in), rest ? show(rest) : "(null)", show(c->rest));
}

static void
test_parse_path_table(void **state)
{
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(path_cases); i++)
		check_path(i, &path_cases[i]);
}

static void
test_parse_path_rest_optional(void **state)
{
	struct mailaddr	m;

	(void)state;
	assert_int_equal(addr_parse_path("<a@b>", &m, 0, NULL), ADDR_OK);
	assert_string_equal(m.user, "a");
}

#define MBOX_BAD(in, flags, rc)	{ in, flags, rc, NULL, NULL }

struct mailbox_case {
	const char	*in;
	int		 flags;
	int		 rc;
	const char	*user;
	const char	*domain;
};

static const struct mailbox_case mailbox_cases[] = {
	{ "a@b", 0, OK, "a", "b" },
	{ "First.Last@Sub.Example.NET", 0, OK, "First.Last",
	    "sub.example.net" },
	{ "\"a@b\"@x", 0, OK, "\"a@b\"", "x" },
	{ "a@[IPv6:::1]", 0, OK, "a", "[IPv6:::1]" },
	{ "", N, OK, "", "" },
	MBOX_BAD("", 0, SYN),
	{ "postmaster", P, OK, "postmaster", "" },
	{ "Postmaster", P, OK, "postmaster", "" },
	MBOX_BAD("postmaster", 0, SYN),
	MBOX_BAD("user", P, SYN),
	MBOX_BAD("<a@b>", 0, SYN),
	MBOX_BAD(" a@b", 0, SYN),
	MBOX_BAD("a@b ", 0, SYN),
	MBOX_BAD("a@b>", 0, SYN),
	MBOX_BAD("a@b.", 0, SYN),
	MBOX_BAD("a@b\n", 0, SYN),
	MBOX_BAD("@r:a@b", 0, SYN),
	MBOX_BAD("\xc3\xbc@b", 0, BIT8),
	{ "\xc3\xbc@b", U, OK, "\xc3\xbc", "b" },
};

static void
test_parse_mailbox_table(void **state)
{
	const struct mailbox_case	*c;
	struct mailaddr			 m;
	size_t				 i;
	int				 rc;

	(void)state;
	for (i = 0; i < NELEM(mailbox_cases); i++) {
		c = &mailbox_cases[i];
		memset(&m, 'Z', sizeof(m));
		rc = addr_parse_mailbox(c->in, &m, c->flags);
		if (rc != c->rc)
			fail_msg("mailbox %zu \"%s\": rc %d, want %d", i,
			    show(c->in), rc, c->rc);
		if (rc != ADDR_OK) {
			assert_string_equal(m.user, "");
			assert_string_equal(m.domain, "");
			continue;
		}
		if (strcmp(m.user, c->user) != 0 ||
		    strcmp(m.domain, c->domain) != 0)
			fail_msg("mailbox %zu \"%s\": got \"%s\" \"%s\"", i,
			    show(c->in), show(m.user), show(m.domain));
	}
}

/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 octets. */
static void
test_length_limits(void **state)
{
	struct mailaddr	m;
	char		local[128], dom[512], in[1024], label[128];

	(void)state;
	/* local part: 64 fits, 65 does not */
	snprintf(in, sizeof(in), "<%s@x>", fill(local, 'l', 64));
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_OK);
	assert_int_equal(strlen(m.user), 64);
	snprintf(in, sizeof(in), "<%s@x>", fill(local, 'l', 65));
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_ERR_TOOLONG);

	/* the quotes count: "..." of 62 inside is 64 octets */
	snprintf(in, sizeof(in), "<\"%s\"@x>", fill(local, 'q', 62));
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_OK);
	snprintf(in, sizeof(in), "<\"%s\"@x>", fill(local, 'q', 63));
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_ERR_TOOLONG);

	/* so do UTF-8 octets: 32 x U+00FC = 64 octets, 33 too many */
	local[0] = '\0';
	for (int i = 0; i < 32; i++)
		strcat(local, "\xc3\xbc");
	snprintf(in, sizeof(in), "<%s@x>", local);
	assert_int_equal(addr_parse_path(in, &m, U, NULL), ADDR_OK);
	strcat(local, "\xc3\xbc");
	snprintf(in, sizeof(in), "<%s@x>", local);
	assert_int_equal(addr_parse_path(in, &m, U, NULL), ADDR_ERR_TOOLONG);

	/* labels: 63 fits, 64 does not; also as a U-label */
	snprintf(in, sizeof(in), "<a@%s.com>", fill(label, 'd', 63));
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_OK);
	snprintf(in, sizeof(in), "<a@%s.com>", fill(label, 'd', 64));
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_ERR_TOOLONG);
	label[0] = '\0';
	for (int i = 0; i < 32; i++)
		strcat(label, "\xc3\xbc");
	snprintf(in, sizeof(in), "<a@%s.com>", label);
	assert_int_equal(addr_parse_path(in, &m, U, NULL), ADDR_ERR_TOOLONG);

	/* path: 1 + 64 + 1 + 189 + 1 = 256 fits, one more does not */
	snprintf(in, sizeof(in), "<%s@%s>", fill(local, 'l', 64),
	    long_domain(dom, 189));
	assert_int_equal(strlen(in), 256);
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_OK);
	snprintf(in, sizeof(in), "<%s@%s>", fill(local, 'l', 64),
	    long_domain(dom, 190));
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_ERR_TOOLONG);

	/* the source route counts towards the path limit */
	snprintf(in, sizeof(in), "<@%s:%s@x>", long_domain(dom, 186),
	    fill(local, 'l', 64));
	assert_int_equal(strlen(in), 256);
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_OK);
	snprintf(in, sizeof(in), "<@%s:%s@x>", long_domain(dom, 187),
	    fill(local, 'l', 64));
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_ERR_TOOLONG);

	/* a long route of short hops stops at the limit, too */
	in[0] = '<';
	in[1] = '\0';
	for (int i = 0; i < 100; i++)
		strcat(in, i ? ",@r" : "@r");
	strcat(in, ":a@b>");
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_ERR_TOOLONG);

	/* a domain on its own may be 255 octets, not 256 */
	assert_true(domain_valid(long_domain(dom, 255), 0));
	assert_false(domain_valid(long_domain(dom, 256), 0));
	snprintf(in, sizeof(in), "<a@%s>", long_domain(dom, 256));
	assert_int_equal(addr_parse_path(in, &m, 0, NULL), ADDR_ERR_TOOLONG);

	/* a bare mailbox must fit in a path: 254 octets */
	snprintf(in, sizeof(in), "a@%s", long_domain(dom, 252));
	assert_int_equal(addr_parse_mailbox(in, &m, 0), ADDR_OK);
	snprintf(in, sizeof(in), "a@%s", long_domain(dom, 253));
	assert_int_equal(addr_parse_mailbox(in, &m, 0), ADDR_ERR_TOOLONG);
}

static void
test_to_string(void **state)
{
	struct mailaddr	m;
	char		buf[ADDR_PATH_MAX];

	(void)state;
	assert_int_equal(addr_parse_path("<a@Example.org>", &m, 0, NULL),
	    ADDR_OK);
	assert_int_equal(addr_to_string(&m, buf, sizeof(buf)), 13);
	assert_string_equal(buf, "a@example.org");
	/* exact fit, then one byte short */
	assert_int_equal(addr_to_string(&m, buf, 14), 13);
	assert_int_equal(addr_to_string(&m, buf, 13), -1);
	assert_string_equal(buf, "");
	assert_int_equal(addr_to_string(&m, buf, 0), -1);

	assert_int_equal(addr_parse_path("<>", &m, N, NULL), ADDR_OK);
	assert_int_equal(addr_to_string(&m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");

	assert_int_equal(addr_parse_path("<Postmaster>", &m, P, NULL),
	    ADDR_OK);
	assert_int_equal(addr_to_string(&m, buf, sizeof(buf)), 10);
	assert_string_equal(buf, "postmaster");

	assert_int_equal(addr_parse_path("<\"a@b\"@x>", &m, 0, NULL),
	    ADDR_OK);
	assert_int_equal(addr_to_string(&m, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "\"a@b\"@x");

	/* a domain without a user is not an address */
	memset(&m, 0, sizeof(m));
	strcpy(m.domain, "x");
	assert_int_equal(addr_to_string(&m, buf, sizeof(buf)), -1);
}

static void
test_local_is_plain(void **state)
{
	static const struct {
		const char	*user;
		int		 plain;
	} cases[] = {
		{ "a", 1 },
		{ "a.b", 1 },
		{ "First.Last", 1 },
		{ "a+tag", 1 },
		{ "a-b_c", 1 },
		{ "\xc3\xbc", 1 },
		{ "a%b", 0 },
		{ "a!b", 0 },
		{ "host!user", 0 },
		{ "\"ab\"", 0 },
		{ "\"a@b\"", 0 },
		{ "a@b", 0 },
		{ "", 0 },
		{ ".a", 0 },
		{ "a.", 0 },
		{ "a..b", 0 },
		{ "a b", 0 },
		{ "a\nb", 0 },
		{ "\xc3", 0 },
		{ "\xc2\x85", 0 },
	};
	struct mailaddr	m;
	size_t		i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		memset(&m, 0, sizeof(m));
		strcpy(m.user, cases[i].user);
		strcpy(m.domain, "example.org");
		if (addr_local_is_plain(&m) != cases[i].plain)
			fail_msg("plain %zu \"%s\": want %d", i,
			    show(cases[i].user), cases[i].plain);
	}

	/* and what the parser hands over */
	assert_int_equal(addr_parse_path("<a%b@x>", &m, 0, NULL), ADDR_OK);
	assert_false(addr_local_is_plain(&m));
	assert_int_equal(addr_parse_path("<\"ab\"@x>", &m, 0, NULL), ADDR_OK);
	assert_false(addr_local_is_plain(&m));
	assert_int_equal(addr_parse_path("<@r:a.b@x>", &m, 0, NULL), ADDR_OK);
	assert_true(addr_local_is_plain(&m));
	assert_int_equal(addr_parse_path("<>", &m, N, NULL), ADDR_OK);
	assert_false(addr_local_is_plain(&m));
}

static void
test_split_subaddress(void **state)
{
	static const struct {
		const char	*user;
		const char	*base;
		const char	*detail;
	} cases[] = {
		{ "user+tag", "user", "tag" },
		{ "user", "user", "" },
		{ "user+", "user", "" },
		{ "a+b+c", "a", "b+c" },
		{ "First.Last+Lists", "First.Last", "Lists" },
		{ "+tag", "+tag", "" },
		{ "\"a+b\"", "\"a+b\"", "" },
		{ "", "", "" },
	};
	char	base[ADDR_LOCAL_MAX + 1], detail[ADDR_LOCAL_MAX + 1];
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		memset(base, 'Z', sizeof(base));
		memset(detail, 'Z', sizeof(detail));
		addr_split_subaddress(cases[i].user, base, sizeof(base),
		    detail, sizeof(detail));
		if (strcmp(base, cases[i].base) != 0 ||
		    strcmp(detail, cases[i].detail) != 0)
			fail_msg("split %zu \"%s\": \"%s\" \"%s\"", i,
			    show(cases[i].user), show(base), show(detail));
	}

	/* detail may be NULL */
	addr_split_subaddress("user+tag", base, sizeof(base), NULL, 0);
	assert_string_equal(base, "user");

	/* a base that does not fit comes back empty, never truncated */
	addr_split_subaddress("username+tag", base, 5, detail, sizeof(detail));
	assert_string_equal(base, "");
	addr_split_subaddress("user+tag", base, 5, detail, sizeof(detail));
	assert_string_equal(base, "user");
	assert_string_equal(detail, "tag");
	addr_split_subaddress("user+longtag", base, 5, detail, 4);
	assert_string_equal(base, "user");
	assert_string_equal(detail, "");
}

struct esmtp_case {
	const char	*in;
	int		 n;		/* expected count or -1 */
	const char	*kv[8];		/* key, value (NULL) pairs */
};

static const struct esmtp_case esmtp_cases[] = {
	{ "SIZE=100 BODY=8BITMIME", 2,
	    { "SIZE", "100", "BODY", "8BITMIME" } },
	{ "", 0, { NULL } },
	{ "   ", 0, { NULL } },
	{ " SIZE=1  SMTPUTF8 ", 2, { "SIZE", "1", "SMTPUTF8", NULL } },
	{ "SMTPUTF8", 1, { "SMTPUTF8", NULL } },
	{ "X-Y-Z=a", 1, { "X-Y-Z", "a" } },
	{ "9KEY=v", 1, { "9KEY", "v" } },
	{ "ORCPT=rfc822;a+40b NOTIFY=SUCCESS,FAILURE", 2,
	    { "ORCPT", "rfc822;a+40b", "NOTIFY", "SUCCESS,FAILURE" } },
	{ "A=!\"#<>~", 1, { "A", "!\"#<>~" } },
	{ "ENVID=a+2Bb", 1, { "ENVID", "a+2Bb" } },
	{ "SIZE=", -1, { NULL } },
	{ "SIZE= BODY=7BIT", -1, { NULL } },
	{ "=1", -1, { NULL } },
	{ "-X=1", -1, { NULL } },
	{ "SI_ZE=1", -1, { NULL } },
	{ "SIZE:1", -1, { NULL } },
	{ "SIZE=1=2", -1, { NULL } },		/* '=' is not in esmtp-value */
	{ "SIZE==1", -1, { NULL } },
	{ "A=\x01", -1, { NULL } },
	{ "A=b\tc", -1, { NULL } },
	{ "A=1\tB=2", -1, { NULL } },
	{ "A=b\r", -1, { NULL } },
	{ "A=b\r\n", -1, { NULL } },
	{ "A=\x7f", -1, { NULL } },
	{ "A=\xc3\xbc", -1, { NULL } },		/* strictly ASCII */
	{ "\xc3\xbc=1", -1, { NULL } },
	{ "A=1 \n", -1, { NULL } },
};

static void
test_esmtp_params_table(void **state)
{
	const struct esmtp_case	*c;
	struct esmtp_param	 params[ESMTP_PARAMS_MAX];
	char			 buf[256];
	size_t			 i;
	int			 n, j;

	(void)state;
	for (i = 0; i < NELEM(esmtp_cases); i++) {
		c = &esmtp_cases[i];
		strcpy(buf, c->in);
		n = esmtp_parse_params(buf, params, ESMTP_PARAMS_MAX);
		if (n != c->n)
			fail_msg("esmtp %zu \"%s\": %d params, want %d", i,
			    show(c->in), n, c->n);
		for (j = 0; j < n; j++) {
			if (strcmp(params[j].key, c->kv[2 * j]) != 0)
				fail_msg("esmtp %zu \"%s\": key %d \"%s\"", i,
				    show(c->in), j, show(params[j].key));
			if (c->kv[2 * j + 1] == NULL) {
				if (params[j].value != NULL)
					fail_msg("esmtp %zu: value %d set", i,
					    j);
			} else if (params[j].value == NULL ||
			    strcmp(params[j].value, c->kv[2 * j + 1]) != 0)
				fail_msg("esmtp %zu \"%s\": value %d", i,
				    show(c->in), j);
		}
	}
}

static void
test_esmtp_params_max(void **state)
{
	struct esmtp_param	params[ESMTP_PARAMS_MAX];
	char			buf[512];
	int			i;

	(void)state;
	buf[0] = '\0';
	for (i = 0; i < ESMTP_PARAMS_MAX; i++)
		strcat(buf, "K=v ");
	assert_int_equal(esmtp_parse_params(buf, params, ESMTP_PARAMS_MAX),
	    ESMTP_PARAMS_MAX);

	buf[0] = '\0';
	for (i = 0; i < ESMTP_PARAMS_MAX + 1; i++)
		strcat(buf, "K=v ");
	assert_int_equal(esmtp_parse_params(buf, params, ESMTP_PARAMS_MAX),
	    -1);

	strcpy(buf, "A B C");
	assert_int_equal(esmtp_parse_params(buf, params, 2), -1);
	strcpy(buf, "A B");
	assert_int_equal(esmtp_parse_params(buf, params, 2), 2);
	strcpy(buf, "A");
	assert_int_equal(esmtp_parse_params(buf, params, 0), -1);
	strcpy(buf, " ");
	assert_int_equal(esmtp_parse_params(buf, params, 0), 0);
}

/* Path then parameters, as smtpd will use them. */
static void
test_path_then_params(void **state)
{
	struct esmtp_param	 params[ESMTP_PARAMS_MAX];
	struct mailaddr		 m;
	const char		*rest;
	char			 buf[256];

	(void)state;
	assert_int_equal(addr_parse_path("<a@b> SIZE=100 BODY=8BITMIME",
	    &m, N, &rest), ADDR_OK);
	strcpy(buf, rest);
	assert_int_equal(esmtp_parse_params(buf, params, ESMTP_PARAMS_MAX),
	    2);
	assert_string_equal(params[0].key, "SIZE");
	assert_string_equal(params[0].value, "100");
	assert_string_equal(params[1].key, "BODY");
	assert_string_equal(params[1].value, "8BITMIME");
}

struct xtext_case {
	const char	*in;
	int		 len;		/* -1 for invalid */
	const char	*out;
};

static const struct xtext_case xtext_decode_cases[] = {
	{ "", 0, "" },
	{ "rfc822", 6, "rfc822" },
	{ "a+2Bb", 3, "a+b" },
	{ "a+40b.example", 11, "a@b.example" },
	{ "+3D", 1, "=" },
	{ "+20", 1, " " },
	{ "+41", 1, "A" },			/* needless, but valid */
	{ "+C3+BC", 2, "\xc3\xbc" },
	{ "!~", 2, "!~" },
	{ "+", -1, NULL },
	{ "+4", -1, NULL },			/* truncated */
	{ "a+4", -1, NULL },
	{ "+4G", -1, NULL },
	{ "+2b", -1, NULL },			/* lower case hex */
	{ "+c3+bc", -1, NULL },
	{ "+ 4", -1, NULL },
	{ "a=b", -1, NULL },
	{ "a b", -1, NULL },
	{ "a\tb", -1, NULL },
	{ "a\r\n", -1, NULL },
	{ "\xc3\xbc", -1, NULL },
	{ "\x7f", -1, NULL },
	{ "+00", -1, NULL },			/* decoded NUL */
	{ "a+0Db", -1, NULL },			/* decoded CR */
	{ "a+0A", -1, NULL },			/* decoded LF */
	{ "+1F", -1, NULL },
	{ "+7F", -1, NULL },
};

static void
test_xtext_decode_table(void **state)
{
	const struct xtext_case	*c;
	char			 out[64];
	size_t			 i;
	int			 n;

	(void)state;
	for (i = 0; i < NELEM(xtext_decode_cases); i++) {
		c = &xtext_decode_cases[i];
		n = xtext_decode(c->in, out, sizeof(out));
		if (n != c->len)
			fail_msg("xtext %zu \"%s\": %d, want %d", i,
			    show(c->in), n, c->len);
		if (n >= 0 && strcmp(out, c->out) != 0)
			fail_msg("xtext %zu \"%s\": \"%s\"", i, show(c->in),
			    show(out));
	}

	/* output space: the NUL must fit too */
	assert_int_equal(xtext_decode("a+2Bb", out, 4), 3);
	assert_string_equal(out, "a+b");
	assert_int_equal(xtext_decode("a+2Bb", out, 3), -1);
	assert_int_equal(xtext_decode("", out, 1), 0);
	assert_int_equal(xtext_decode("", out, 0), -1);
}

static void
test_xtext_encode(void **state)
{
	static const struct xtext_case cases[] = {
		{ "", 0, "" },
		{ "abc", 3, "abc" },
		{ "a+b=c d", 13, "a+2Bb+3Dc+20d" },
		{ "a@b", 3, "a@b" },
		{ "\xc3\xbc", 6, "+C3+BC" },
		{ "\x7f\x01", 6, "+7F+01" },
		{ "!~", 2, "!~" },
	};
	char	out[64];
	size_t	i;
	int	n;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		n = xtext_encode(cases[i].in, out, sizeof(out));
		if (n != cases[i].len || strcmp(out, cases[i].out) != 0)
			fail_msg("encode %zu \"%s\": %d \"%s\"", i,
			    show(cases[i].in), n, show(out));
	}
	assert_int_equal(xtext_encode("a+", out, 5), 4);
	assert_int_equal(xtext_encode("a+", out, 4), -1);
	assert_int_equal(xtext_encode("ab", out, 2), -1);
	assert_int_equal(xtext_encode("", out, 0), -1);
}

static void
test_xtext_roundtrip(void **state)
{
	static const char *cases[] = {
		"", "a", "user@example.org", "a+b=c", " lead and trail ",
		"\"quoted\"@x", "\xc3\xbc\xe6\x97\xa5", "~!#$%^&*()_+-=",
		"+2B", "++==",
	};
	char	enc[256], dec[256];
	size_t	i;
	int	n;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		n = xtext_encode(cases[i], enc, sizeof(enc));
		assert_true(n >= 0);
		assert_int_equal(strlen(enc), n);
		n = xtext_decode(enc, dec, sizeof(dec));
		if (n < 0 || strcmp(dec, cases[i]) != 0)
			fail_msg("roundtrip %zu \"%s\" -> \"%s\"", i,
			    show(cases[i]), show(enc));
		assert_int_equal(strlen(cases[i]), n);
	}
}

/* RFC 6533 3: the utf-8 addr-type and its \\x{HEXPOINT} escapes */
static void
test_orcpt_utf8(void **state)
{
	static const struct {
		const char	*in;
		int		 valid;
	} cases[] = {
		{ "utf-8;a@b.example", 1 },
		{ "UTF-8;a@b.example", 1 },
		{ "utf-8;\\x{E9}l\\x{E8}ve@b.example", 1 },	/* 2 digits */
		{ "utf-8;\\x{e9}@b", 1 },			/* HEXDIG, any case */
		{ "utf-8;\\x{0A}@b", 1 },			/* below 0x10 */
		{ "utf-8;\\x{2B}a@b", 1 },			/* "+" escaped */
		{ "utf-8;\\x{5C}a@b", 1 },			/* "\\" escaped */
		{ "utf-8;\\x{100}@b", 1 },			/* 3 digits */
		{ "utf-8;\\x{D7FF}@b", 1 },			/* below surrogates */
		{ "utf-8;\\x{E000}@b", 1 },			/* above them */
		{ "utf-8;\\x{1F600}@b", 1 },			/* 5 digits */
		{ "utf-8;\\x{10FFFF}@b", 1 },		/* the last one */
		{ "utf-8;\\x{}", 0 },			/* no digits */
		{ "utf-8;\\x{}@b", 0 },
		{ "utf-8;\\x{D800}@b", 0 },			/* surrogates */
		{ "utf-8;\\x{DFFF}@b", 0 },
		{ "utf-8;\\x{dc00}@b", 0 },
		{ "utf-8;\\x{110000}@b", 0 },		/* past Unicode */
		{ "utf-8;\\x{1000000}@b", 0 },		/* 7 digits */
		{ "utf-8;\\x{0041}@b", 0 },			/* leading zeros */
		{ "utf-8;\\x{041}@b", 0 },
		{ "utf-8;\\x{00}@b", 0 },			/* NUL */
		{ "utf-8;\\x{A}@b", 0 },			/* one digit */
		{ "utf-8;\\x{41@b", 0 },			/* unclosed */
		{ "utf-8;\\x{4G}@b", 0 },
		{ "utf-8;\\x41@b", 0 },			/* no braces */
		{ "utf-8;\\y{41}@b", 0 },
		{ "utf-8;a\\", 0 },				/* lone backslash */
		{ "utf-8;a+40b", 0 },				/* "+" is no QCHAR */
		{ "utf-8;a=b", 0 },
		{ "utf-8;a b", 0 },
		{ "utf-8;", 0 },
		{ "utf-8;\xc3\xa9@b", 1 },			/* unitext */
		{ "utf-8;\xc3@b", 0 },			/* truncated UTF-8 */
		{ "utf-8;\xed\xa0\x80@b", 0 },		/* raw surrogate */
		{ "utf-8;\xc0\xaf@b", 0 },			/* overlong */
		/* other types keep RFC 3461 xtext */
		{ "rfc822;\\x{D800}", 1 },
		{ "utf8;a+40b", 1 },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		if (orcpt_valid(cases[i].in) != cases[i].valid)
			fail_msg("orcpt %zu \"%s\": want %d", i,
			    show(cases[i].in), cases[i].valid);
}

static void
test_orcpt_valid(void **state)
{
	static const struct {
		const char	*in;
		int		 valid;
	} cases[] = {
		{ "rfc822;a+40b", 1 },
		{ "rfc822;a@b.example", 1 },
		{ "RFC822;A@B", 1 },
		{ "utf-8;a", 1 },
		{ "x400;anything", 1 },
		{ "rfc822;+22a+20b+22@x", 1 },
		{ "rfc822;", 0 },
		{ ";a@b", 0 },
		{ "rfc822", 0 },
		{ "", 0 },
		{ "rfc 822;a", 0 },
		{ "rfc822;a+4", 0 },
		{ "rfc822;a+4a", 0 },
		{ "rfc822;a b", 0 },
		{ "rfc822;a=b", 0 },
		{ "rfc822;a+0D+0Ab", 0 },
		{ "rfc822;\xc3\xbc", 0 },
		{ "rfc822:a", 0 },
		{ "(x);a", 0 },
	};
	char	buf[600];
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		if (orcpt_valid(cases[i].in) != cases[i].valid)
			fail_msg("orcpt %zu \"%s\": want %d", i,
			    show(cases[i].in), cases[i].valid);

	/* RFC 3461 4.2: the whole value may be up to 500 characters */
	strcpy(buf, "rfc822;");
	fill(buf + 7, 'a', 493);
	assert_true(orcpt_valid(buf));
	fill(buf + 7, 'a', 494);
	assert_false(orcpt_valid(buf));
}

static void
test_domain_valid(void **state)
{
	static const struct {
		const char	*in;
		int		 flags;
		int		 valid;
	} cases[] = {
		{ "example.com", 0, 1 },
		{ "EXAMPLE.Com", 0, 1 },
		{ "a", 0, 1 },
		{ "a-b.c0", 0, 1 },
		{ "0.0", 0, 0 },
		{ "0.a0", 0, 1 },
		{ "xn--bcher-kva.example", 0, 1 },
		{ "[192.0.2.1]", 0, 1 },
		{ "[IPv6:2001:db8::1]", 0, 1 },
		{ "b\xc3\xbc" "cher.de", U, 1 },
		{ "b\xc3\xbc" "cher.de", 0, 0 },
		{ "", 0, 0 },
		{ ".", 0, 0 },
		{ "a.", 0, 0 },
		{ ".a", 0, 0 },
		{ "a..b", 0, 0 },
		{ "-a", 0, 0 },
		{ "a-", 0, 0 },
		{ "a_b", 0, 0 },
		{ "a b", 0, 0 },
		{ "a\n", 0, 0 },
		{ "a\r", 0, 0 },
		{ "[192.0.2.1", 0, 0 },
		{ "[192.0.2.1]x", 0, 0 },
		{ "[300.0.2.1]", 0, 0 },
		{ "a@b", 0, 0 },
		{ "b\xc3", U, 0 },
	};
	char	label[80];
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		if (domain_valid(cases[i].in, cases[i].flags) !=
		    cases[i].valid)
			fail_msg("domain %zu \"%s\": want %d", i,
			    show(cases[i].in), cases[i].valid);

	assert_true(domain_valid(fill(label, 'x', 63), 0));
	assert_false(domain_valid(fill(label, 'x', 64), 0));
}

static void
test_utf8_valid(void **state)
{
	static const struct {
		const char	*in;
		size_t		 len;
		int		 valid;
	} cases[] = {
		{ "", 0, 1 },
		{ "abc", 3, 1 },
		{ "a\0b", 3, 1 },		/* NUL is well-formed */
		{ "\xc3\xbc", 2, 1 },
		{ "\xe6\x97\xa5", 3, 1 },
		{ "\xef\xbf\xbf", 3, 1 },	/* U+FFFF */
		{ "\xf0\x9f\x98\x80", 4, 1 },
		{ "\xf4\x8f\xbf\xbf", 4, 1 },	/* U+10FFFF */
		{ "\xc2\x80", 2, 1 },
		{ "\xc3\xbc", 1, 0 },		/* cut by len */
		{ "\xe6\x97\xa5", 2, 0 },
		{ "\xc3", 1, 0 },
		{ "\x80", 1, 0 },
		{ "\xbf", 1, 0 },
		{ "\xc0\xaf", 2, 0 },		/* overlong */
		{ "\xc1\xbf", 2, 0 },
		{ "\xe0\x80\xaf", 3, 0 },
		{ "\xe0\x9f\xbf", 3, 0 },
		{ "\xf0\x80\x80\xaf", 4, 0 },
		{ "\xf0\x8f\xbf\xbf", 4, 0 },
		{ "\xed\xa0\x80", 3, 0 },	/* surrogates */
		{ "\xed\xbf\xbf", 3, 0 },
		{ "\xf4\x90\x80\x80", 4, 0 },	/* > U+10FFFF */
		{ "\xf5\x80\x80\x80", 4, 0 },
		{ "\xff", 1, 0 },
		{ "\xfe", 1, 0 },
		{ "\xc3\x28", 2, 0 },
		{ "\xe6\x97\x28", 3, 0 },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		if (utf8_valid(cases[i].in, cases[i].len) != cases[i].valid)
			fail_msg("utf8 %zu \"%s\": want %d", i,
			    show(cases[i].in), cases[i].valid);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_path_table),
		cmocka_unit_test(test_parse_path_rest_optional),
		cmocka_unit_test(test_parse_mailbox_table),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_to_string),
		cmocka_unit_test(test_local_is_plain),
		cmocka_unit_test(test_split_subaddress),
		cmocka_unit_test(test_esmtp_params_table),
		cmocka_unit_test(test_esmtp_params_max),
		cmocka_unit_test(test_path_then_params),
		cmocka_unit_test(test_xtext_decode_table),
		cmocka_unit_test(test_xtext_encode),
		cmocka_unit_test(test_xtext_roundtrip),
		cmocka_unit_test(test_orcpt_valid),
		cmocka_unit_test(test_orcpt_utf8),
		cmocka_unit_test(test_domain_valid),
		cmocka_unit_test(test_utf8_valid),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
