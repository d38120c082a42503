/*
 * test_envelope.c -- the envelope file format (common/envelope.c): what
 * is written reads back the same, values are escaped, and anything a
 * reader cannot vouch for (an unknown or repeated key, a value out of
 * range, a missing end marker, another version) is refused.  And the
 * footer that ends every committed message file, in both versions: it
 * says where the message and its added headers are only when it fits
 * the file exactly, and a version 1 footer still reads.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"
#include "spool_msg.h"

static void
sample(struct envelope *e)
{
	memset(e, 0, sizeof(*e));
	e->id = 0x0a1b2c3d4e5f6071ULL;
	e->ctime = 1700000000;
	e->tries = 3;
	e->flags = EF_8BITMIME | EF_MEASURED | EF_BODY_8BIT;
	e->wire_size = 123456789012LL;
	e->dest_type = DEST_MAILBOX;
	snprintf(e->sender.user, sizeof(e->sender.user), "from");
	snprintf(e->sender.domain, sizeof(e->sender.domain), "a.example");
	snprintf(e->rcpt.user, sizeof(e->rcpt.user), "to");
	snprintf(e->rcpt.domain, sizeof(e->rcpt.domain), "b.example");
	e->dest = e->rcpt;
	snprintf(e->action, sizeof(e->action), "local");
	snprintf(e->user, sizeof(e->user), "to");
	/* text a remote server sent: newlines and a key look-alike */
	snprintf(e->errorline, sizeof(e->errorline),
	    "450 try later\nmda: /bin/sh\r\\ %%");
}

static int
dump(const struct envelope *e, char *buf, size_t len)
{
	int	n = envelope_dump(e, buf, len);

	assert_true(n > 0);
	buf[n] = '\0';
	return n;
}

static void
test_round_trip(void **state)
{
	struct envelope	e, back;
	char		buf[16384];
	int		n;

	(void)state;
	sample(&e);
	n = dump(&e, buf, sizeof(buf) - 1);
	assert_non_null(strstr(buf, "wire-size: 123456789012\n"));
	/* one line per key: the error text's newline is escaped */
	assert_null(strstr(buf, "\nmda:"));
	assert_int_equal(envelope_load(buf, n, &back), 0);
	assert_memory_equal(&e, &back, sizeof(e));
}

/* an older envelope, without wire-size, still loads: size unknown */
static void
test_optional_key_absent(void **state)
{
	struct envelope	e, back;
	char		buf[16384], *p, *eol;
	int		n;

	(void)state;
	sample(&e);
	n = dump(&e, buf, sizeof(buf) - 1);
	p = strstr(buf, "wire-size: ");
	assert_non_null(p);
	eol = strchr(p, '\n');
	memmove(p, eol + 1, strlen(eol + 1) + 1);
	n = (int)strlen(buf);
	assert_int_equal(envelope_load(buf, n, &back), 0);
	assert_int_equal(back.wire_size, 0);
}

/* replace the first occurrence of `from' by `to' and expect a refusal */
static void
refused_with(const char *from, const char *to)
{
	struct envelope	e, back;
	char		buf[16384], out[16384], *p;
	int		n;

	sample(&e);
	dump(&e, buf, sizeof(buf) - 1);
	p = strstr(buf, from);
	if (p == NULL)
		fail_msg("no \"%s\" in the sample", from);
	n = snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - buf), buf, to,
	    p + strlen(from));
	if (envelope_load(out, n, &back) != -1)
		fail_msg("accepted with \"%s\" for \"%s\"", to, from);
}

static void
test_refusals(void **state)
{
	(void)state;
	/* unknown key, repeated key, another version */
	refused_with("tries: 3\n", "tries: 3\nprogram: /bin/sh\n");
	refused_with("tries: 3\n", "tries: 3\ntries: 4\n");
	refused_with("version: 1\n", "version: 2\n");
	/* values out of range or malformed */
	refused_with("tries: 3\n", "tries: 4294967296\n");
	refused_with("tries: 3\n", "tries: -1\n");
	refused_with("wire-size: 123456789012\n", "wire-size: -5\n");
	refused_with("wire-size: 123456789012\n", "wire-size: 12x\n");
	refused_with("dest-type: ", "dest-type: x");
	refused_with("id: 0a1b2c3d4e5f6071\n", "id: 0a1b2c3d\n");
	/* a required key missing, the end marker missing */
	refused_with("action: local\n", "");
	refused_with("end: ok\n", "");
}

/*
 * A held envelope (EF_HOLD, a milter's quarantine or smtpctl hold): its
 * reason is stored escaped, comes back the same, and is refused when it
 * is not printable text or does not go with the flag.
 */
static void
held(struct envelope *e)
{
	sample(e);
	e->flags |= EF_HOLD;
	snprintf(e->hold_reason, sizeof(e->hold_reason),
	    "milter rspamd: spam \\ score 15 \xc3\xa9t\xc3\xa9 | 100%%");
}

static void
test_hold_round_trip(void **state)
{
	struct envelope	e, back;
	char		buf[16384], line[256];
	int		n;

	(void)state;
	held(&e);
	n = dump(&e, buf, sizeof(buf) - 1);
	/* the backslash escaped, the rest as it is */
	assert_non_null(strstr(buf, "hold-reason: milter rspamd: spam "
	    "\\x5c score 15 \xc3\xa9t\xc3\xa9 | 100%\n"));
	snprintf(line, sizeof(line), "flags: %08x\n", (unsigned)e.flags);
	assert_non_null(strstr(buf, line));
	assert_int_equal(envelope_load(buf, n, &back), 0);
	assert_memory_equal(&e, &back, sizeof(e));
	assert_true(back.flags & EF_HOLD);
	assert_string_equal(back.hold_reason, e.hold_reason);

	/* as long as the field holds */
	memset(e.hold_reason, 'r', sizeof(e.hold_reason) - 1);
	e.hold_reason[sizeof(e.hold_reason) - 1] = '\0';
	n = dump(&e, buf, sizeof(buf) - 1);
	assert_int_equal(envelope_load(buf, n, &back), 0);
	assert_memory_equal(&e, &back, sizeof(e));

	/* not held: no hold-reason line at all (an older reader's file) */
	sample(&e);
	dump(&e, buf, sizeof(buf) - 1);
	assert_null(strstr(buf, "hold-reason"));
}

/*
 * RFC 8689's two flags: stored in "flags" and back; a file written
 * before them (no such bit) loads without them; both at once is refused
 * (REQUIRETLS makes the TLS-Required field ignored).
 */
static void
test_requiretls_flags(void **state)
{
	struct envelope	e, back;
	char		buf[16384], line[64], *p;
	int		n;

	(void)state;
	sample(&e);
	e.flags |= EF_REQUIRETLS;
	n = dump(&e, buf, sizeof(buf) - 1);
	assert_non_null(strstr(buf, "flags: 00940002\n"));
	assert_int_equal(envelope_load(buf, n, &back), 0);
	assert_memory_equal(&e, &back, sizeof(e));
	assert_true(back.flags & EF_REQUIRETLS);
	assert_false(back.flags & EF_TLS_OPTIONAL);

	sample(&e);
	e.flags |= EF_TLS_OPTIONAL;
	n = dump(&e, buf, sizeof(buf) - 1);
	snprintf(line, sizeof(line), "flags: %08x\n", (unsigned)e.flags);
	assert_non_null(strstr(buf, line));
	assert_int_equal(envelope_load(buf, n, &back), 0);
	assert_true(back.flags & EF_TLS_OPTIONAL);
	assert_false(back.flags & EF_REQUIRETLS);

	/* an older file: the same text without the bits */
	sample(&e);
	n = dump(&e, buf, sizeof(buf) - 1);
	assert_int_equal(envelope_load(buf, n, &back), 0);
	assert_false(back.flags & (EF_REQUIRETLS | EF_TLS_OPTIONAL));

	/* both: refused to write and to read */
	e.flags |= EF_REQUIRETLS | EF_TLS_OPTIONAL;
	assert_int_equal(envelope_valid(&e), -1);
	assert_int_equal(envelope_dump(&e, buf, sizeof(buf)), -1);
	sample(&e);
	n = dump(&e, buf, sizeof(buf) - 1);
	assert_non_null(p = strstr(buf, "flags: 00140002\n"));
	memcpy(p, "flags: 01940002\n", 16);
	assert_int_equal(envelope_load(buf, n, &back), -1);
}

/* what a worker or smtpctl may not store (envelope_valid() too) */
static void
test_hold_refusals(void **state)
{
	struct envelope	e, back;
	char		buf[16384], out[16384], *p;
	int		n;

	(void)state;
	/* the flag without a reason, a reason without the flag */
	held(&e);
	e.hold_reason[0] = '\0';
	assert_int_equal(envelope_valid(&e), -1);
	assert_int_equal(envelope_dump(&e, buf, sizeof(buf)), -1);
	held(&e);
	e.flags &= ~EF_HOLD;
	assert_int_equal(envelope_valid(&e), -1);
	assert_int_equal(envelope_dump(&e, buf, sizeof(buf)), -1);
	/* control characters: a line or a terminal sequence in mailq */
	held(&e);
	e.hold_reason[3] = '\n';
	assert_int_equal(envelope_valid(&e), -1);
	e.hold_reason[3] = '\x1b';
	assert_int_equal(envelope_valid(&e), -1);
	e.hold_reason[3] = 0x7f;
	assert_int_equal(envelope_valid(&e), -1);
	/* not NUL-terminated within the field */
	held(&e);
	memset(e.hold_reason, 'r', sizeof(e.hold_reason));
	assert_int_equal(envelope_valid(&e), -1);

	/* the same on read-back */
	held(&e);
	n = dump(&e, buf, sizeof(buf) - 1);
	p = strstr(buf, "hold-reason: ");
	assert_non_null(p);
	/* escaped control characters are refused once unescaped */
	n = snprintf(out, sizeof(out), "%.*shold-reason: a\\x0ab\n%s",
	    (int)(p - buf), buf, strchr(p, '\n') + 1);
	assert_int_equal(envelope_load(out, n, &back), -1);
	n = snprintf(out, sizeof(out), "%.*shold-reason: a\\x1b[2Jb\n%s",
	    (int)(p - buf), buf, strchr(p, '\n') + 1);
	assert_int_equal(envelope_load(out, n, &back), -1);
	/* a reason without the flag */
	memcpy(out, buf, sizeof(out));
	assert_non_null(p = strstr(out, "flags: 00540002\n"));
	memcpy(p, "flags: 00140002\n", 16);
	assert_int_equal(envelope_load(out, strlen(out), &back), -1);
	p = strstr(buf, "hold-reason: ");
	/* the flag without a reason */
	n = snprintf(out, sizeof(out), "%.*s%s", (int)(p - buf), buf,
	    strchr(p, '\n') + 1);
	assert_int_equal(envelope_load(out, n, &back), -1);
	/* empty, repeated, too long */
	n = snprintf(out, sizeof(out), "%.*shold-reason: \n%s",
	    (int)(p - buf), buf, strchr(p, '\n') + 1);
	assert_int_equal(envelope_load(out, n, &back), -1);
	n = snprintf(out, sizeof(out), "%.*shold-reason: x\n%s",
	    (int)(p - buf), buf, p);
	assert_int_equal(envelope_load(out, n, &back), -1);
	n = snprintf(out, sizeof(out), "%.*shold-reason: %0*d\n%s",
	    (int)(p - buf), buf, (int)sizeof(e.hold_reason), 0,
	    strchr(p, '\n') + 1);
	assert_int_equal(envelope_load(out, n, &back), -1);
	/* one character less fits */
	n = snprintf(out, sizeof(out), "%.*shold-reason: %0*d\n%s",
	    (int)(p - buf), buf, (int)sizeof(e.hold_reason) - 1, 0,
	    strchr(p, '\n') + 1);
	assert_int_equal(envelope_load(out, n, &back), 0);
}

static size_t
footer(char *buf, uint64_t body, size_t head, size_t envlen,
    const uint8_t *mac)
{
	struct spool_footer	f;

	memset(&f, 0, sizeof(f));
	f.body = body;
	f.head = head;
	f.envlen = envlen;
	if (mac != NULL)
		memcpy(f.mac, mac, SPOOL_MAC_LEN);
	return spool_footer_format(buf, &f);
}

static void
test_footer_round_trip(void **state)
{
	char			buf[SPOOL_FOOTER_MAX + 1];
	uint8_t			mac[SPOOL_MAC_LEN];
	struct spool_footer	f;
	size_t			i;

	(void)state;
	for (i = 0; i < SPOOL_MAC_LEN; i++)
		mac[i] = (uint8_t)(i * 37 + 1);
	assert_int_equal(footer(buf, 1296, 0, 517, mac), SPOOL_FOOTER_LEN);
	assert_int_equal(strlen(buf), SPOOL_FOOTER_LEN);
	assert_int_equal(buf[SPOOL_FOOTER_LEN - 1], '\n');
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN,
	    1296 + 517 + SPOOL_FOOTER_LEN, &f), 0);
	assert_int_equal(f.body, 1296);
	assert_int_equal(f.head, 0);
	assert_int_equal(f.envlen, 517);
	assert_int_equal(f.len, SPOOL_FOOTER_LEN);
	assert_memory_equal(f.mac, mac, SPOOL_MAC_LEN);
	/* several recipients: no envelope in the file */
	footer(buf, 7, 0, 0, mac);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN,
	    7 + SPOOL_FOOTER_LEN, &f), 0);
	assert_int_equal(f.body, 7);
	assert_int_equal(f.envlen, 0);
}

/* what a file written before version 2 ends with still loads */
static void
test_footer_v1_bytes(void **state)
{
	static const char	v1[] = "#posthaste-spool 1 body="
	    "00000000000000001000 envelope=000300 mac="
	    "000102030405060708090a0b0c0d0e0f"
	    "101112131415161718191a1b1c1d1e1f\n";
	char			file[64 + SPOOL_FOOTER_LEN];
	struct spool_footer	f;
	size_t			i;

	(void)state;
	assert_int_equal(strlen(v1), SPOOL_FOOTER_LEN);
	/* the parser is given the last SPOOL_FOOTER_MAX bytes of the file */
	memset(file, 'x', sizeof(file));
	memcpy(file + 64, v1, SPOOL_FOOTER_LEN);
	assert_int_equal(spool_footer_parse(file + sizeof(file) -
	    SPOOL_FOOTER_MAX, SPOOL_FOOTER_MAX, 1300 + SPOOL_FOOTER_LEN,
	    &f), 0);
	assert_int_equal(f.body, 1000);
	assert_int_equal(f.head, 0);
	assert_int_equal(f.envlen, 300);
	assert_int_equal(f.len, SPOOL_FOOTER_LEN);
	for (i = 0; i < SPOOL_MAC_LEN; i++)
		assert_int_equal(f.mac[i], i);
	/* and the writer still writes exactly that without added headers */
	{
		char	again[SPOOL_FOOTER_MAX + 1];

		footer(again, 1000, 0, 300, f.mac);
		assert_string_equal(again, v1);
	}
}

static void
test_footer_v2(void **state)
{
	static const char	v2[] = "#posthaste-spool 2 body="
	    "00000000000000001000 head=00212 envelope=000300 mac="
	    "000102030405060708090a0b0c0d0e0f"
	    "101112131415161718191a1b1c1d1e1f\n";
	char			buf[SPOOL_FOOTER_MAX + 1];
	char			file[SPOOL_FOOTER_MAX + 200];
	struct spool_footer	f;
	uint64_t		size = 1000 + 212 + 300 + SPOOL_FOOTER2_LEN;
	size_t			i;

	(void)state;
	assert_int_equal(strlen(v2), SPOOL_FOOTER2_LEN);
	assert_int_equal(spool_footer_parse(v2, SPOOL_FOOTER2_LEN, size, &f),
	    0);
	assert_int_equal(f.body, 1000);
	assert_int_equal(f.head, 212);
	assert_int_equal(f.envlen, 300);
	assert_int_equal(f.len, SPOOL_FOOTER2_LEN);
	assert_int_equal(footer(buf, 1000, 212, 300, f.mac),
	    SPOOL_FOOTER2_LEN);
	assert_string_equal(buf, v2);
	/* the sizes must add up to the file, head included */
	assert_int_equal(spool_footer_parse(v2, SPOOL_FOOTER2_LEN, size - 1,
	    &f), -1);
	assert_int_equal(spool_footer_parse(v2, SPOOL_FOOTER2_LEN, size + 1,
	    &f), -1);
	assert_int_equal(spool_footer_parse(v2, SPOOL_FOOTER2_LEN - 1, size,
	    &f), -1);
	/* a file shorter than the bytes given */
	assert_int_equal(spool_footer_parse(v2, SPOOL_FOOTER2_LEN, 140, &f),
	    -1);
	/* message text before it does not matter */
	memset(file, '#', sizeof(file));
	memcpy(file + sizeof(file) - SPOOL_FOOTER2_LEN, v2,
	    SPOOL_FOOTER2_LEN);
	assert_int_equal(spool_footer_parse(file + sizeof(file) -
	    SPOOL_FOOTER_MAX, SPOOL_FOOTER_MAX, size, &f), 0);
	assert_int_equal(f.head, 212);
	/* any byte changed: not a footer (or another valid number) */
	for (i = 0; i < SPOOL_FOOTER2_LEN; i++) {
		memcpy(buf, v2, sizeof(v2));
		buf[i] = buf[i] == '9' ? '8' : buf[i] == '0' ? 'x' : '?';
		if (buf[i] == '8')
			continue;
		assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER2_LEN,
		    size, &f), -1);
	}
	/* head=0 is version 1's business; more than SPOOL_HEAD_MAX never */
	memcpy(buf, v2, sizeof(v2));
	memcpy(buf + 50, "00000", 5);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER2_LEN,
	    size - 212, &f), -1);
	footer(buf, 1000, SPOOL_HEAD_MAX, 300, NULL);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER2_LEN,
	    1000 + SPOOL_HEAD_MAX + 300 + SPOOL_FOOTER2_LEN, &f), 0);
	footer(buf, 1000, SPOOL_HEAD_MAX + 1, 300, NULL);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER2_LEN,
	    1000 + SPOOL_HEAD_MAX + 1 + 300 + SPOOL_FOOTER2_LEN, &f), -1);
	/* version 1's digits with a version 2 label, and back: refused */
	memcpy(buf, v2, sizeof(v2));
	buf[17] = '1';
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER2_LEN, size,
	    &f), -1);
	footer(buf, 1000, 0, 300, NULL);
	buf[17] = '2';
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN,
	    1300 + SPOOL_FOOTER_LEN, &f), -1);
}

static void
test_footer_refusals(void **state)
{
	char			buf[SPOOL_FOOTER_MAX + 1];
	char			bad[SPOOL_FOOTER_MAX + 1];
	uint8_t			mac[SPOOL_MAC_LEN] = { 0 };
	struct spool_footer	f;
	size_t			i;
	uint64_t		size = 1000 + 300 + SPOOL_FOOTER_LEN;

	(void)state;
	footer(buf, 1000, 0, 300, mac);
	/* a size the footer does not add up to: a file that grew or shrank */
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN, size + 1,
	    &f), -1);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN, size - 1,
	    &f), -1);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN, 10,
	    &f), -1);
	assert_int_equal(spool_footer_parse(buf + 1, SPOOL_FOOTER_LEN - 1,
	    size, &f), -1);
	/* any byte changed: not a footer */
	for (i = 0; i < SPOOL_FOOTER_LEN; i++) {
		memcpy(bad, buf, sizeof(bad));
		bad[i] = bad[i] == '9' ? '8' : bad[i] == '0' ? 'x' : '?';
		if (bad[i] == '8')
			continue;	/* another valid number */
		assert_int_equal(spool_footer_parse(bad, SPOOL_FOOTER_LEN,
		    size, &f), -1);
	}
	/* an envelope too long for any envelope file */
	footer(buf, 0, 0, SPOOL_ENVELOPE_MAX, mac);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN,
	    SPOOL_ENVELOPE_MAX + SPOOL_FOOTER_LEN, &f), -1);
	/* sizes that would wrap around */
	footer(buf, 0, 10, 10, mac);
	memcpy(buf + 24, "18446744073709551615", 20);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER2_LEN,
	    19 + SPOOL_FOOTER2_LEN, &f), -1);
	footer(buf, 0, 0, 10, mac);
	memcpy(buf + 24, "18446744073709551615", 20);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN,
	    9 + SPOOL_FOOTER_LEN, &f), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_optional_key_absent),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_hold_round_trip),
		cmocka_unit_test(test_hold_refusals),
		cmocka_unit_test(test_requiretls_flags),
		cmocka_unit_test(test_footer_round_trip),
		cmocka_unit_test(test_footer_v1_bytes),
		cmocka_unit_test(test_footer_v2),
		cmocka_unit_test(test_footer_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
