/*
 * test_milter.c -- the milter codec of common/milter.c: every packet the
 * encoders write, byte for byte; every reply the decoder knows, and the
 * malformed ones it must refuse; the reply text check; macro names.
 *
 * Expected packets are written out by hand from the protocol (the
 * length field as a number counted by hand, the rest as bytes), not
 * produced by the code under test.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/buffer.h>

#include "milter.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
/* a string literal with NULs inside, without the compiler's final NUL */
#define B(s)		(s), (sizeof(s) - 1)

/*
 * The first packet in out must have the length field lenfield (counted
 * by hand) and then exactly the bytes body (command byte and data); it
 * is drained, and out must be empty afterwards.
 */
static void
expect_packet(struct evbuffer *out, uint32_t lenfield, const char *body,
    size_t bodylen)
{
	uint8_t	*p;
	size_t	 have = evbuffer_get_length(out);

	assert_int_equal(lenfield, bodylen);
	assert_int_equal(have, 4 + bodylen);
	p = evbuffer_pullup(out, -1);
	assert_non_null(p);
	assert_int_equal(p[0], (lenfield >> 24) & 0xff);
	assert_int_equal(p[1], (lenfield >> 16) & 0xff);
	assert_int_equal(p[2], (lenfield >> 8) & 0xff);
	assert_int_equal(p[3], lenfield & 0xff);
	assert_memory_equal(p + 4, body, bodylen);
	assert_int_equal(milter_frame(p, have), (long)have);
	evbuffer_drain(out, have);
}

static void
test_put_optneg(void **state)
{
	struct evbuffer	*out = evbuffer_new();

	(void)state;
	assert_int_equal(milter_put_optneg(out, 6, SMFIF_ALL, SMFIP_ALL), 0);
	expect_packet(out, 13, B("O"
	    "\x00\x00\x00\x06"
	    "\x00\x00\x01\xff"
	    "\x00\x1f\xff\xff"));
	assert_int_equal(milter_put_optneg(out, 2, 0x01020304,
	    0xa0b0c0d0), 0);
	expect_packet(out, 13, B("O"
	    "\x00\x00\x00\x02"
	    "\x01\x02\x03\x04"
	    "\xa0\xb0\xc0\xd0"));
	evbuffer_free(out);
}

static void
test_put_empty(void **state)
{
	struct evbuffer	*out = evbuffer_new();
	const char	 ok[] = { SMFIC_DATA, SMFIC_EOH, SMFIC_BODYEOB,
			    SMFIC_ABORT, SMFIC_QUIT, SMFIC_QUIT_NC };
	const char	 bad[] = { SMFIC_BODY, SMFIC_HELO, SMFIC_MACRO, 'x',
			    '\0' };
	char		 body[1];
	size_t		 i;

	(void)state;
	for (i = 0; i < NELEM(ok); i++) {
		assert_int_equal(milter_put_empty(out, ok[i]), 0);
		body[0] = ok[i];
		expect_packet(out, 1, body, 1);
	}
	for (i = 0; i < NELEM(bad); i++) {
		assert_int_equal(milter_put_empty(out, bad[i]), -1);
		assert_int_equal(evbuffer_get_length(out), 0);
	}
	evbuffer_free(out);
}

static void
test_put_macros(void **state)
{
	struct evbuffer		*out = evbuffer_new();
	struct milter_macro	 m[] = {
		{ "j", "mx.example.org" },
		{ "{daemon_name}", "posthaste" },
	};
	struct milter_macro	 empty[] = { { "i", "" } };
	struct milter_macro	 bad[] = { { "i", NULL } };
	struct milter_macro	 noname[] = { { "", "x" } };

	(void)state;
	assert_int_equal(milter_put_macros(out, SMFIC_CONNECT, m, 2), 0);
	/* D C j\0 mx.example.org\0 {daemon_name}\0 posthaste\0 */
	expect_packet(out, 1 + 1 + 2 + 15 + 14 + 10, B("DC"
	    "j\0mx.example.org\0{daemon_name}\0posthaste\0"));
	assert_int_equal(milter_put_macros(out, SMFIC_BODYEOB, empty, 1), 0);
	expect_packet(out, 5, B("DEi\0\0"));
	/* nothing to send: nothing appended */
	assert_int_equal(milter_put_macros(out, SMFIC_RCPT, m, 0), 0);
	assert_int_equal(evbuffer_get_length(out), 0);
	/* not a command macros go with; a NULL value; an empty name */
	assert_int_equal(milter_put_macros(out, SMFIC_QUIT, m, 2), -1);
	assert_int_equal(milter_put_macros(out, SMFIC_MAIL, bad, 1), -1);
	assert_int_equal(milter_put_macros(out, SMFIC_MAIL, noname, 1), -1);
	assert_int_equal(evbuffer_get_length(out), 0);
	evbuffer_free(out);
}

static void
test_put_connect(void **state)
{
	struct evbuffer		*out = evbuffer_new();
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;

	(void)state;
	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(25);
	assert_int_equal(inet_pton(AF_INET, "192.0.2.1", &sin->sin_addr), 1);
	assert_int_equal(milter_put_connect(out, "mail.example.com", &ss,
	    NULL), 0);
	/* C mail.example.com\0 4 port 192.0.2.1\0 */
	expect_packet(out, 1 + 17 + 1 + 2 + 10, B("Cmail.example.com\0" "4"
	    "\x00\x19" "192.0.2.1\0"));

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(587);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1",
	    &sin6->sin6_addr), 1);
	assert_int_equal(milter_put_connect(out, "host6", &ss, NULL), 0);
	expect_packet(out, 1 + 6 + 1 + 2 + 12, B("Chost6\0" "6"
	    "\x02\x4b" "2001:db8::1\0"));

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(milter_put_connect(out, "localhost", &ss,
	    "/run/x.sock"), 0);
	expect_packet(out, 1 + 10 + 1 + 2 + 12, B("Clocalhost\0" "L"
	    "\x00\x00" "/run/x.sock\0"));
	assert_int_equal(milter_put_connect(out, "localhost", &ss, NULL), 0);
	expect_packet(out, 1 + 10 + 1 + 2 + 1, B("Clocalhost\0" "L"
	    "\x00\x00" "\0"));

	/* no address, or one of a family we do not know: 'U' alone */
	assert_int_equal(milter_put_connect(out, "[192.0.2.1]", NULL,
	    NULL), 0);
	expect_packet(out, 1 + 12 + 1, B("C[192.0.2.1]\0" "U"));
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	assert_int_equal(milter_put_connect(out, "x", &ss, "/p"), 0);
	expect_packet(out, 1 + 2 + 1, B("Cx\0" "U"));

	assert_int_equal(milter_put_connect(out, NULL, NULL, NULL), -1);
	assert_int_equal(evbuffer_get_length(out), 0);
	evbuffer_free(out);
}

static void
test_put_strings(void **state)
{
	struct evbuffer		*out = evbuffer_new();
	const char *const	 args[] = { "SIZE=100", "BODY=8BITMIME" };
	const char *const	 nullarg[] = { "SIZE=1", NULL };

	(void)state;
	assert_int_equal(milter_put_helo(out, "mx.example.org"), 0);
	expect_packet(out, 16, B("Hmx.example.org\0"));
	assert_int_equal(milter_put_helo(out, ""), 0);
	expect_packet(out, 2, B("H\0"));
	assert_int_equal(milter_put_unknown(out, "XFOO bar"), 0);
	expect_packet(out, 10, B("UXFOO bar\0"));

	assert_int_equal(milter_put_envaddr(out, SMFIC_MAIL, "<a@b>", args,
	    2), 0);
	expect_packet(out, 1 + 6 + 9 + 14,
	    B("M<a@b>\0SIZE=100\0BODY=8BITMIME\0"));
	assert_int_equal(milter_put_envaddr(out, SMFIC_RCPT, "<>", NULL, 0),
	    0);
	expect_packet(out, 4, B("R<>\0"));
	assert_int_equal(milter_put_envaddr(out, SMFIC_HELO, "<a@b>", NULL,
	    0), -1);
	assert_int_equal(milter_put_envaddr(out, SMFIC_MAIL, NULL, NULL, 0),
	    -1);
	assert_int_equal(milter_put_envaddr(out, SMFIC_MAIL, "<a@b>",
	    nullarg, 2), -1);
	assert_int_equal(evbuffer_get_length(out), 0);
	evbuffer_free(out);
}

static void
test_put_header(void **state)
{
	struct evbuffer	*out = evbuffer_new();
	const char	 line[] = "Subject: hi";

	(void)state;
	assert_int_equal(milter_put_header(out, "Subject", 7, "hi\n\tthere",
	    9), 0);
	expect_packet(out, 1 + 8 + 10, B("LSubject\0hi\n\tthere\0"));
	/* counted: the name and value are parts of one line */
	assert_int_equal(milter_put_header(out, line, 7, line + 9, 2), 0);
	expect_packet(out, 1 + 8 + 3, B("LSubject\0hi\0"));
	assert_int_equal(milter_put_header(out, "X-Empty", 7, "", 0), 0);
	expect_packet(out, 1 + 8 + 1, B("LX-Empty\0\0"));
	/* a NUL inside either is refused */
	assert_int_equal(milter_put_header(out, "Sub\0ject", 8, "x", 1), -1);
	assert_int_equal(milter_put_header(out, "Subject", 7, "a\0b", 3), -1);
	assert_int_equal(evbuffer_get_length(out), 0);
	evbuffer_free(out);
}

static void
test_put_body(void **state)
{
	struct evbuffer	*out = evbuffer_new();
	uint8_t		*big, *p;

	(void)state;
	assert_int_equal(milter_put_body(out, "line\r\n", 6), 0);
	expect_packet(out, 7, B("Bline\r\n"));
	assert_int_equal(milter_put_body(out, "a\0b", 3), 0);
	expect_packet(out, 4, B("Ba\0b"));
	assert_int_equal(milter_put_body(out, "", 0), 0);
	expect_packet(out, 1, B("B"));

	big = malloc(MILTER_CHUNK_MAX + 1);
	assert_non_null(big);
	memset(big, 'x', MILTER_CHUNK_MAX + 1);
	assert_int_equal(milter_put_body(out, big, MILTER_CHUNK_MAX), 0);
	assert_int_equal(evbuffer_get_length(out), 4 + 1 + MILTER_CHUNK_MAX);
	p = evbuffer_pullup(out, 5);
	assert_memory_equal(p, "\x00\x01\x00\x00" "B", 5);
	evbuffer_drain(out, evbuffer_get_length(out));
	assert_int_equal(milter_put_body(out, big, MILTER_CHUNK_MAX + 1), -1);
	assert_int_equal(evbuffer_get_length(out), 0);
	free(big);
	evbuffer_free(out);
}

/* a string too long for a packet is refused and nothing is appended */
static void
test_put_oversize(void **state)
{
	struct evbuffer	*out = evbuffer_new();
	char		*s;

	(void)state;
	s = malloc(MILTER_PACKET_MAX + 1);
	assert_non_null(s);
	/* HELO s\0: length field 1 + len + 1 */
	memset(s, 'a', MILTER_PACKET_MAX - 2);
	s[MILTER_PACKET_MAX - 2] = '\0';
	assert_int_equal(milter_put_helo(out, s), 0);
	assert_int_equal(evbuffer_get_length(out), 4 + MILTER_PACKET_MAX);
	evbuffer_drain(out, evbuffer_get_length(out));
	memset(s, 'a', MILTER_PACKET_MAX - 1);
	s[MILTER_PACKET_MAX - 1] = '\0';
	assert_int_equal(milter_put_helo(out, s), -1);
	assert_int_equal(milter_put_header(out, "X", 1, s,
	    MILTER_PACKET_MAX - 1), -1);
	assert_int_equal(evbuffer_get_length(out), 0);
	free(s);
	evbuffer_free(out);
}

static void
test_frame(void **state)
{
	const uint8_t	ok[] = { 0, 0, 0, 2, 'y', 0, 0xaa, 0xbb };
	const uint8_t	zero[] = { 0, 0, 0, 0, 'c' };
	const uint8_t	big[] = { 0, 0x10, 0, 1 };	/* MAX + 1 */
	const uint8_t	max[] = { 0, 0x10, 0, 0 };	/* MAX */
	const uint8_t	huge[] = { 0xff, 0xff, 0xff, 0xff };

	(void)state;
	assert_int_equal(MILTER_PACKET_MAX, 0x100000);
	assert_int_equal(milter_frame(ok, 0), 0);
	assert_int_equal(milter_frame(ok, 3), 0);
	assert_int_equal(milter_frame(ok, 4), 0);
	assert_int_equal(milter_frame(ok, 5), 0);
	assert_int_equal(milter_frame(ok, 6), 6);
	assert_int_equal(milter_frame(ok, sizeof(ok)), 6);
	assert_int_equal(milter_frame(zero, sizeof(zero)), -1);
	assert_int_equal(milter_frame(big, sizeof(big)), -1);
	assert_int_equal(milter_frame(huge, sizeof(huge)), -1);
	assert_int_equal(milter_frame(max, sizeof(max)), 0);
}

/* a reply packet: length field, then cmd and data */
static uint8_t	pktbuf[4096];

static size_t
mkpkt(char cmd, const char *data, size_t len)
{
	uint32_t	n = htonl((uint32_t)(1 + len));

	assert_true(5 + len <= sizeof(pktbuf));
	memcpy(pktbuf, &n, 4);
	pktbuf[4] = (uint8_t)cmd;
	if (len > 0)
		memcpy(pktbuf + 5, data, len);
	return 5 + len;
}

static int
parse(char cmd, const char *data, size_t len, struct milter_reply *r)
{
	const char	*err = NULL;
	size_t		 n = mkpkt(cmd, data, len);
	int		 rc;

	rc = milter_parse_reply(pktbuf, n, r, &err);
	if (rc == -1)
		assert_non_null(err);
	return rc;
}

static void
test_parse_simple(void **state)
{
	struct milter_reply	r;
	const char		simple[] = { SMFIR_ACCEPT, SMFIR_CONTINUE,
				    SMFIR_DISCARD, SMFIR_REJECT,
				    SMFIR_TEMPFAIL, SMFIR_SKIP,
				    SMFIR_PROGRESS, SMFIR_SHUTDOWN,
				    SMFIR_CONN_FAIL };
	size_t			i;

	(void)state;
	for (i = 0; i < NELEM(simple); i++) {
		assert_int_equal(parse(simple[i], NULL, 0, &r), 0);
		assert_int_equal(r.cmd, simple[i]);
		assert_null(r.text);
		/* libmilter sends no data: not even a NUL is taken */
		assert_int_equal(parse(simple[i], B("\0"), &r), -1);
		assert_int_equal(parse(simple[i], B("x"), &r), -1);
	}
	/* unknown replies, commands of the other direction, SETSYMLIST */
	assert_int_equal(parse('Z', NULL, 0, &r), -1);
	assert_int_equal(parse(SMFIC_BODY, NULL, 0, &r), -1);
	assert_int_equal(parse('\0', NULL, 0, &r), -1);
	assert_int_equal(parse(SMFIR_SETSYMLIST, B("\0\0\0\0j\0"), &r), -1);
}

static void
test_parse_framing(void **state)
{
	struct milter_reply	 r;
	const char		*err;
	uint8_t			 p[] = { 0, 0, 0, 1, 'c', 'x' };

	(void)state;
	/* the length field must say exactly the size given */
	assert_int_equal(milter_parse_reply(p, 6, &r, &err), -1);
	assert_non_null(err);
	assert_int_equal(milter_parse_reply(p, 5, &r, &err), 0);
	assert_int_equal(r.cmd, SMFIR_CONTINUE);
	p[3] = 2;
	assert_int_equal(milter_parse_reply(p, 5, &r, &err), -1);
	assert_int_equal(milter_parse_reply(p, 4, &r, &err), -1);
	assert_int_equal(milter_parse_reply(p, 0, &r, &err), -1);
}

/* a packet of MILTER_PACKET_MAX is taken, one byte more is not */
static void
test_parse_oversize(void **state)
{
	struct milter_reply	 r;
	const char		*err;
	uint8_t			*p;
	uint32_t		 n;

	(void)state;
	p = calloc(1, 4 + MILTER_PACKET_MAX + 1);
	assert_non_null(p);
	n = htonl(MILTER_PACKET_MAX);
	memcpy(p, &n, 4);
	p[4] = SMFIR_REPLBODY;
	assert_int_equal(milter_frame(p, 4 + MILTER_PACKET_MAX),
	    4 + MILTER_PACKET_MAX);
	assert_int_equal(milter_parse_reply(p, 4 + MILTER_PACKET_MAX, &r,
	    &err), 0);
	assert_int_equal(r.len, MILTER_PACKET_MAX - 1);
	n = htonl(MILTER_PACKET_MAX + 1);
	memcpy(p, &n, 4);
	assert_int_equal(milter_frame(p, 4 + MILTER_PACKET_MAX + 1), -1);
	assert_int_equal(milter_parse_reply(p, 4 + MILTER_PACKET_MAX + 1, &r,
	    &err), -1);
	assert_non_null(err);
	free(p);
}

static void
test_parse_optneg(void **state)
{
	struct milter_reply	r;
	size_t			i;

	(void)state;
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x06"
	    "\x00\x00\x01\xff" "\x00\x1f\xff\xff"), &r), 0);
	assert_int_equal(r.cmd, SMFIR_OPTNEG);
	assert_int_equal(r.version, 6);
	assert_int_equal(r.actions, SMFIF_ALL);
	assert_int_equal(r.protocol, SMFIP_ALL);
	for (i = 0; i < SMFIM_COUNT; i++)
		assert_null(r.symlist[i]);

	/* the macro lists libmilter appends for smfi_setsymlist() */
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x02"
	    "\x00\x00\x00\x01" "\x00\x00\x00\x00"
	    "\x00\x00\x00\x00" "{client_addr} j\0"
	    "\x00\x00\x00\x06" "\0"
	    "\x00\x00\x00\x05" "i {auth_type}\0"), &r), 0);
	assert_int_equal(r.version, 2);
	assert_int_equal(r.actions, SMFIF_ADDHDRS);
	assert_int_equal(r.protocol, 0);
	assert_string_equal(r.symlist[SMFIM_CONNECT], "{client_addr} j");
	assert_string_equal(r.symlist[SMFIM_EOM], "i {auth_type}");
	assert_string_equal(r.symlist[SMFIM_EOH], "");
	assert_null(r.symlist[SMFIM_HELO]);

	/* short; version 1 or 7; a stage past the last; one twice */
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x06"
	    "\x00\x00\x01\xff" "\x00\x1f\xff"), &r), -1);
	assert_int_equal(parse(SMFIR_OPTNEG, NULL, 0, &r), -1);
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x01"
	    "\x00\x00\x01\xff" "\x00\x1f\xff\xff"), &r), -1);
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x07"
	    "\x00\x00\x01\xff" "\x00\x1f\xff\xff"), &r), -1);
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x06"
	    "\x00\x00\x01\xff" "\x00\x1f\xff\xff"
	    "\x00\x00\x00\x07" "j\0"), &r), -1);
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x06"
	    "\x00\x00\x01\xff" "\x00\x1f\xff\xff"
	    "\x80\x00\x00\x00" "j\0"), &r), -1);
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x06"
	    "\x00\x00\x01\xff" "\x00\x1f\xff\xff"
	    "\x00\x00\x00\x01" "j\0" "\x00\x00\x00\x01" "i\0"), &r), -1);
	/* a list without its NUL, a stage without its list, a stray byte */
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x06"
	    "\x00\x00\x01\xff" "\x00\x1f\xff\xff"
	    "\x00\x00\x00\x01" "j"), &r), -1);
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x06"
	    "\x00\x00\x01\xff" "\x00\x1f\xff\xff"
	    "\x00\x00\x00\x01"), &r), -1);
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x06"
	    "\x00\x00\x01\xff" "\x00\x1f\xff\xff" "\0"), &r), -1);
	/* a control character in a list */
	assert_int_equal(parse(SMFIR_OPTNEG, B("\x00\x00\x00\x06"
	    "\x00\x00\x01\xff" "\x00\x1f\xff\xff"
	    "\x00\x00\x00\x01" "j\ni\0"), &r), -1);
}

static void
test_parse_headers(void **state)
{
	struct milter_reply	r;

	(void)state;
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X-Spam\0yes\0"), &r), 0);
	assert_int_equal(r.cmd, SMFIR_ADDHEADER);
	assert_string_equal(r.name, "X-Spam");
	assert_string_equal(r.value, "yes");
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X-E\0\0"), &r), 0);
	assert_string_equal(r.value, "");
	/* folding: LF or CRLF then a blank; CRLF becomes LF in place */
	assert_int_equal(parse(SMFIR_ADDHEADER,
	    B("DKIM-Signature\0v=1;\r\n\tb=x;\n d=y \0"), &r), 0);
	assert_string_equal(r.value, "v=1;\n\tb=x;\n d=y ");
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0\n\tfirst\0"), &r), 0);
	assert_string_equal(r.value, "\n\tfirst");
	/* HTAB and 8-bit bytes (RFC 6532) pass */
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\tb \xc3\xa9\0"),
	    &r), 0);
	assert_string_equal(r.value, "a\tb \xc3\xa9");

	assert_int_equal(parse(SMFIR_INSHEADER,
	    B("\x00\x00\x00\x00" "X-First\0on top\0"), &r), 0);
	assert_int_equal(r.index, 0);
	assert_string_equal(r.name, "X-First");
	assert_string_equal(r.value, "on top");
	assert_int_equal(parse(SMFIR_CHGHEADER,
	    B("\x00\x00\x01\x02" "Subject\0\0"), &r), 0);
	assert_int_equal(r.cmd, SMFIR_CHGHEADER);
	assert_int_equal(r.index, 258);
	assert_string_equal(r.name, "Subject");
	assert_string_equal(r.value, "");

	/* names: empty, ':', space, control, 8-bit, DEL */
	assert_int_equal(parse(SMFIR_ADDHEADER, B("\0x\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X:Y\0x\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X Y\0x\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\tY\0x\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\xc3\xa9\0x\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\x7f\0x\0"), &r), -1);
	/* values: a bare CR, a LF not followed by a blank, a blank line */
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\rb\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\r\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\nb\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\r\nb\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\n\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\n\n b\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\n \n\tb\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\n \t\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\n \r\n b\0"), &r),
	    -1);
	assert_int_equal(parse(SMFIR_ADDHEADER,
	    B("X\0a\nBcc: smuggled\0"), &r), -1);
	/* values: control characters and DEL */
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\x01" "b\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\x1b" "b\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0a\x7f\0"), &r), -1);
	/* missing NULs, missing fields, trailing bytes */
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0value"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, NULL, 0, &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0v\0\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDHEADER, B("X\0v\0Y\0w\0"), &r), -1);
	assert_int_equal(parse(SMFIR_INSHEADER, B("\x00\x00\x00"), &r), -1);
	assert_int_equal(parse(SMFIR_INSHEADER, B("\x00\x00\x00\x01"), &r),
	    -1);
	assert_int_equal(parse(SMFIR_CHGHEADER,
	    B("\x00\x00\x00\x01" "Subject\0"), &r), -1);
	assert_int_equal(parse(SMFIR_CHGHEADER,
	    B("\x00\x00\x00\x01" "Sub:ject\0x\0"), &r), -1);
	assert_int_equal(parse(SMFIR_CHGHEADER,
	    B("\x00\x00\x00\x01" "Subject\0a\nb\0"), &r), -1);
}

static void
test_parse_envelope(void **state)
{
	struct milter_reply	r;

	(void)state;
	assert_int_equal(parse(SMFIR_ADDRCPT, B("<x@example.org>\0"), &r),
	    0);
	assert_string_equal(r.addr, "<x@example.org>");
	assert_null(r.args);
	assert_int_equal(parse(SMFIR_DELRCPT, B("x@example.org\0"), &r), 0);
	assert_int_equal(r.cmd, SMFIR_DELRCPT);
	assert_string_equal(r.addr, "x@example.org");
	/* SMTPUTF8 addresses pass */
	assert_int_equal(parse(SMFIR_ADDRCPT, B("<j\xc3\xb6@example.org>\0"),
	    &r), 0);
	assert_int_equal(parse(SMFIR_ADDRCPT_PAR,
	    B("<x@example.org>\0NOTIFY=NEVER ORCPT=rfc822;x@example.org\0"),
	    &r), 0);
	assert_string_equal(r.addr, "<x@example.org>");
	assert_string_equal(r.args, "NOTIFY=NEVER ORCPT=rfc822;x@example.org");
	assert_int_equal(parse(SMFIR_ADDRCPT_PAR, B("<x@example.org>\0"),
	    &r), 0);
	assert_null(r.args);
	assert_int_equal(parse(SMFIR_CHGFROM, B("<>\0"), &r), 0);
	assert_string_equal(r.addr, "<>");
	assert_null(r.args);
	assert_int_equal(parse(SMFIR_CHGFROM, B("\0"), &r), 0);
	assert_string_equal(r.addr, "");
	assert_int_equal(parse(SMFIR_CHGFROM, B("<a@b>\0SIZE=10\0"), &r), 0);
	assert_string_equal(r.addr, "<a@b>");
	assert_string_equal(r.args, "SIZE=10");

	/* empty recipients, missing NULs, trailing bytes */
	assert_int_equal(parse(SMFIR_ADDRCPT, B("\0"), &r), -1);
	assert_int_equal(parse(SMFIR_DELRCPT, B("\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDRCPT_PAR, B("\0A=B\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDRCPT, B("<x@y>"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDRCPT, NULL, 0, &r), -1);
	assert_int_equal(parse(SMFIR_ADDRCPT, B("<x@y>\0A=B\0"), &r), -1);
	assert_int_equal(parse(SMFIR_DELRCPT, B("<x@y>\0\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDRCPT_PAR, B("<x@y>\0A=B"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDRCPT_PAR, B("<x@y>\0A=B\0C\0"), &r),
	    -1);
	assert_int_equal(parse(SMFIR_CHGFROM, B("<x@y>"), &r), -1);
	/* control characters in an address; 8-bit or controls in args */
	assert_int_equal(parse(SMFIR_ADDRCPT, B("<x@y>\r\nRCPT TO:<z>\0"),
	    &r), -1);
	assert_int_equal(parse(SMFIR_CHGFROM, B("<x\x01@y>\0"), &r), -1);
	assert_int_equal(parse(SMFIR_DELRCPT, B("<x\x7f@y>\0"), &r), -1);
	assert_int_equal(parse(SMFIR_ADDRCPT_PAR, B("<x@y>\0A=\xc3\xa9\0"),
	    &r), -1);
	assert_int_equal(parse(SMFIR_CHGFROM, B("<x@y>\0A=B\nC\0"), &r), -1);
}

static void
test_parse_texts(void **state)
{
	struct milter_reply	r;

	(void)state;
	/* REPLBODY: raw bytes, NULs and all, no terminator */
	assert_int_equal(parse(SMFIR_REPLBODY, B("new\r\nbody\0\xff"), &r), 0);
	assert_int_equal(r.cmd, SMFIR_REPLBODY);
	assert_int_equal(r.len, 11);
	assert_memory_equal(r.data, "new\r\nbody\0\xff", 11);
	assert_int_equal(parse(SMFIR_REPLBODY, NULL, 0, &r), 0);
	assert_int_equal(r.len, 0);

	assert_int_equal(parse(SMFIR_QUARANTINE, B("virus found\0"), &r), 0);
	assert_string_equal(r.text, "virus found");
	assert_int_equal(parse(SMFIR_QUARANTINE, B("\0"), &r), -1);
	assert_int_equal(parse(SMFIR_QUARANTINE, B("spam"), &r), -1);
	assert_int_equal(parse(SMFIR_QUARANTINE, B("a\nb\0"), &r), -1);
	assert_int_equal(parse(SMFIR_QUARANTINE, B("a\0b\0"), &r), -1);

	assert_int_equal(parse(SMFIR_REPLYCODE, B("550 5.7.1 no\0"), &r), 0);
	assert_int_equal(r.cmd, SMFIR_REPLYCODE);
	assert_string_equal(r.text, "550 5.7.1 no");
	assert_int_equal(parse(SMFIR_REPLYCODE, B("550 5.7.1 no"), &r), -1);
	assert_int_equal(parse(SMFIR_REPLYCODE, NULL, 0, &r), -1);
	assert_int_equal(parse(SMFIR_REPLYCODE, B("550 a\0b\0"), &r), -1);
}

/* milter_reply_check() on text: its line count (or -1) and lines */
static int
check(const char *text, char lines[][MILTER_REPLY_LINE_MAX + 8],
    int *code)
{
	static char	 buf[8192];
	char		*l[MILTER_REPLY_LINES];
	const char	*err = NULL;
	int		 n, i;

	n = milter_reply_check(text, buf, sizeof(buf), l, code, &err);
	if (n == -1) {
		assert_non_null(err);
		return -1;
	}
	assert_true(n >= 1 && n <= MILTER_REPLY_LINES);
	for (i = 0; i < n && lines != NULL; i++) {
		assert_true(strlen(l[i]) < MILTER_REPLY_LINE_MAX + 8);
		strcpy(lines[i], l[i]);
	}
	return n;
}

static void
test_reply_check(void **state)
{
	static char	 lines[MILTER_REPLY_LINES][MILTER_REPLY_LINE_MAX + 8];
	static char	 text[MILTER_REPLY_LINES * (MILTER_REPLY_LINE_MAX + 2)
			    + 64];
	static const char *const bad[] = {
		"",
		"55",
		"550x",
		"550-a",		/* the last line says more follow */
		"550 a\n550 b",		/* the first line does not */
		"550-a\r\n551 b",	/* codes differ */
		"550-a\n450 b",
		"250 ok",		/* not a failure */
		"354 go on",
		"650 no",
		"350 no",
		"560 no",		/* second digit over 5 */
		"5a0 no",
		"550 a\x01" "b",	/* controls, 8-bit, DEL, bare CR */
		"550 a\x1b[31m",
		"550 a\xc3\xa9",
		"550 a\x7f",
		"550 a\rb",
		"550 a\r",
		"550 a\r\n",		/* a trailing line end: empty line */
		"550 a\n",
		"550-a\n\n550 b",
		"550-a\n 550 b",
	};
	const char	*err;
	char		*l[MILTER_REPLY_LINES], small[64], *big, *p;
	size_t		 i;
	int		 code, n;

	(void)state;
	assert_int_equal(check("550 5.7.1 Rejected", lines, &code), 1);
	assert_int_equal(code, 550);
	assert_string_equal(lines[0], "550 5.7.1 Rejected");
	assert_int_equal(check("550-5.7.1 a\r\n550-5.7.1 b\r\n550 5.7.1 c",
	    lines, &code), 3);
	assert_string_equal(lines[0], "550-5.7.1 a");
	assert_string_equal(lines[1], "550-5.7.1 b");
	assert_string_equal(lines[2], "550 5.7.1 c");
	assert_int_equal(check("451-4.7.1 a\n451 4.7.1 b", lines, &code), 2);
	assert_int_equal(code, 451);
	assert_string_equal(lines[0], "451-4.7.1 a");
	assert_string_equal(lines[1], "451 4.7.1 b");
	/* no text: no trailing space */
	assert_int_equal(check("421", lines, &code), 1);
	assert_string_equal(lines[0], "421");
	assert_int_equal(check("554 ", lines, &code), 1);
	assert_string_equal(lines[0], "554");
	assert_int_equal(check("554-\n554 ", lines, &code), 2);
	assert_string_equal(lines[0], "554-");
	assert_string_equal(lines[1], "554");
	assert_int_equal(check("550 a\tb  ", lines, &code), 1);
	assert_string_equal(lines[0], "550 a\tb  ");
	assert_int_equal(check("559 x", lines, &code), 1);
	assert_int_equal(check("400 x", lines, &code), 1);
	assert_int_equal(code, 400);

	for (i = 0; i < NELEM(bad); i++) {
		if (check(bad[i], NULL, &code) != -1)
			fail_msg("accepted: \"%s\"", bad[i]);
	}

	/* MILTER_REPLY_LINES lines pass, one more does not */
	text[0] = '\0';
	for (i = 0; i < MILTER_REPLY_LINES - 1; i++)
		strcat(text, "550-5.7.1 line\r\n");
	strcat(text, "550 5.7.1 last");
	assert_int_equal(check(text, lines, &code), MILTER_REPLY_LINES);
	assert_string_equal(lines[MILTER_REPLY_LINES - 1], "550 5.7.1 last");
	text[0] = '\0';
	for (i = 0; i < MILTER_REPLY_LINES; i++)
		strcat(text, "550-5.7.1 line\r\n");
	strcat(text, "550 5.7.1 last");
	assert_int_equal(check(text, lines, &code), -1);

	/* a line of MILTER_REPLY_LINE_MAX bytes passes, one more does not */
	memcpy(text, "550 ", 4);
	memset(text + 4, 'x', MILTER_REPLY_LINE_MAX - 4);
	text[MILTER_REPLY_LINE_MAX] = '\0';
	assert_int_equal(check(text, lines, &code), 1);
	assert_int_equal(strlen(lines[0]), MILTER_REPLY_LINE_MAX);
	text[MILTER_REPLY_LINE_MAX] = 'x';
	text[MILTER_REPLY_LINE_MAX + 1] = '\0';
	assert_int_equal(check(text, lines, &code), -1);

	/* the buffer must be as large as the header says, no larger */
	n = milter_reply_check("550 a", small, 5, l, &code, &err);
	assert_int_equal(n, -1);
	n = milter_reply_check("550 a", small, 6, l, &code, &err);
	assert_int_equal(n, 1);
	assert_string_equal(l[0], "550 a");
	n = milter_reply_check("550-a\r\n550-b\n550 c", small, 18, l,
	    &code, &err);
	assert_int_equal(n, -1);
	n = milter_reply_check("550-a\r\n550-b\n550 c", small, 19, l,
	    &code, &err);
	assert_int_equal(n, 3);
	assert_string_equal(l[2], "550 c");
	/* the longest reply there is fits in strlen + 1 */
	p = text;
	for (i = 0; i < MILTER_REPLY_LINES; i++) {
		memcpy(p, i < MILTER_REPLY_LINES - 1 ? "550-" : "550 ", 4);
		memset(p + 4, 'x', MILTER_REPLY_LINE_MAX - 4);
		p += MILTER_REPLY_LINE_MAX;
		if (i < MILTER_REPLY_LINES - 1) {
			memcpy(p, "\r\n", 2);
			p += 2;
		}
	}
	*p = '\0';
	assert_int_equal(strlen(text), MILTER_REPLY_LINES *
	    (MILTER_REPLY_LINE_MAX + 2) - 2);
	big = malloc(strlen(text) + 1);
	assert_non_null(big);
	n = milter_reply_check(text, big, strlen(text) + 1, l, &code, &err);
	assert_int_equal(n, MILTER_REPLY_LINES);
	assert_int_equal(strlen(l[MILTER_REPLY_LINES - 1]),
	    MILTER_REPLY_LINE_MAX);
	free(big);
}

static void
test_macro_canon(void **state)
{
	static const struct {
		const char	*in, *out;
	} t[] = {
		{ "i", "i" },
		{ "{i}", "i" },
		{ "_", "_" },
		{ "j", "j" },
		{ "auth_type", "{auth_type}" },
		{ "{auth_type}", "{auth_type}" },
		{ "{daemon_name}", "{daemon_name}" },
		{ "", NULL },
		{ "{}", NULL },
		{ "{", NULL },
		{ "}", NULL },
		{ "{a", NULL },
		{ "a}", NULL },
		{ "{{a}}", NULL },
		{ "a{b", NULL },
		{ "a b", NULL },
		{ "{a b}", NULL },
		{ " ", NULL },
		{ "a\tb", NULL },
		{ "\xc3\xa9", NULL },
		{ "a\x7f", NULL },
	};
	char		buf[64];
	const char	*s;
	size_t		i;

	(void)state;
	for (i = 0; i < NELEM(t); i++) {
		s = milter_macro_canon(t[i].in, buf, sizeof(buf));
		if (t[i].out == NULL) {
			if (s != NULL)
				fail_msg("\"%s\" accepted", t[i].in);
			continue;
		}
		if (s == NULL)
			fail_msg("\"%s\" refused", t[i].in);
		assert_ptr_equal(s, buf);
		assert_string_equal(s, t[i].out);
	}
	/* "{auth_type}" needs 12 bytes, "i" two */
	assert_null(milter_macro_canon("auth_type", buf, 11));
	assert_non_null(milter_macro_canon("auth_type", buf, 12));
	assert_null(milter_macro_canon("{i}", buf, 1));
	assert_non_null(milter_macro_canon("{i}", buf, 2));
	assert_null(milter_macro_canon("i", buf, 0));
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(milter_reply_name(SMFIR_CONTINUE), "continue");
	assert_string_equal(milter_reply_name(SMFIR_REJECT), "reject");
	assert_string_equal(milter_reply_name(SMFIR_TEMPFAIL), "tempfail");
	assert_string_equal(milter_reply_name(SMFIR_ACCEPT), "accept");
	assert_string_equal(milter_reply_name(SMFIR_DISCARD), "discard");
	assert_string_equal(milter_reply_name(SMFIR_QUARANTINE),
	    "quarantine");
	assert_string_equal(milter_reply_name(SMFIR_REPLYCODE), "replycode");
	assert_string_equal(milter_reply_name(SMFIR_ADDRCPT_PAR),
	    "addrcpt_par");
	assert_string_equal(milter_reply_name(SMFIR_SHUTDOWN), "shutdown");
	assert_string_equal(milter_reply_name('Z'), "?");
	assert_string_equal(milter_command_name(SMFIC_CONNECT), "connect");
	assert_string_equal(milter_command_name(SMFIC_BODYEOB), "eom");
	assert_string_equal(milter_command_name(SMFIC_MACRO), "macro");
	assert_string_equal(milter_command_name(SMFIC_UNKNOWN), "unknown");
	assert_string_equal(milter_command_name('z'), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_optneg),
		cmocka_unit_test(test_put_empty),
		cmocka_unit_test(test_put_macros),
		cmocka_unit_test(test_put_connect),
		cmocka_unit_test(test_put_strings),
		cmocka_unit_test(test_put_header),
		cmocka_unit_test(test_put_body),
		cmocka_unit_test(test_put_oversize),
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_parse_simple),
		cmocka_unit_test(test_parse_framing),
		cmocka_unit_test(test_parse_oversize),
		cmocka_unit_test(test_parse_optneg),
		cmocka_unit_test(test_parse_headers),
		cmocka_unit_test(test_parse_envelope),
		cmocka_unit_test(test_parse_texts),
		cmocka_unit_test(test_reply_check),
		cmocka_unit_test(test_macro_canon),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
