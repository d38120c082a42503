/*
 * test_envelope.c -- the envelope file format (common/envelope.c): what
 * is written reads back the same, values are escaped, and anything a
 * reader cannot vouch for (an unknown or repeated key, a value out of
 * range, a missing end marker, another version) is refused.  And the
 * footer that ends every committed message file: it says where the
 * message ends only when it fits the file exactly.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"

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

static void
test_footer_round_trip(void **state)
{
	char		buf[SPOOL_FOOTER_LEN + 1];
	uint8_t		mac[SPOOL_MAC_LEN], got[SPOOL_MAC_LEN];
	uint64_t	body;
	size_t		envlen, i;

	(void)state;
	for (i = 0; i < SPOOL_MAC_LEN; i++)
		mac[i] = (uint8_t)(i * 37 + 1);
	spool_footer_format(buf, 1296, 517, mac);
	assert_int_equal(strlen(buf), SPOOL_FOOTER_LEN);
	assert_int_equal(buf[SPOOL_FOOTER_LEN - 1], '\n');
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN,
	    1296 + 517 + SPOOL_FOOTER_LEN, &body, &envlen, got), 0);
	assert_int_equal(body, 1296);
	assert_int_equal(envlen, 517);
	assert_memory_equal(got, mac, SPOOL_MAC_LEN);
	/* several recipients: no envelope in the file */
	spool_footer_format(buf, 7, 0, mac);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN,
	    7 + SPOOL_FOOTER_LEN, &body, &envlen, got), 0);
	assert_int_equal(body, 7);
	assert_int_equal(envlen, 0);
}

static void
test_footer_refusals(void **state)
{
	char		buf[SPOOL_FOOTER_LEN + 1], bad[SPOOL_FOOTER_LEN + 1];
	uint8_t		mac[SPOOL_MAC_LEN] = { 0 }, got[SPOOL_MAC_LEN];
	uint64_t	body;
	size_t		envlen, i;
	uint64_t	size = 1000 + 300 + SPOOL_FOOTER_LEN;

	(void)state;
	spool_footer_format(buf, 1000, 300, mac);
	/* a size the footer does not add up to: a file that grew or shrank */
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN, size + 1,
	    &body, &envlen, got), -1);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN, size - 1,
	    &body, &envlen, got), -1);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN, 10,
	    &body, &envlen, got), -1);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN - 1, size,
	    &body, &envlen, got), -1);
	/* any byte changed: not a footer */
	for (i = 0; i < SPOOL_FOOTER_LEN; i++) {
		memcpy(bad, buf, sizeof(bad));
		bad[i] = bad[i] == '9' ? '8' : bad[i] == '0' ? 'x' : '?';
		if (bad[i] == '8')
			continue;	/* another valid number */
		assert_int_equal(spool_footer_parse(bad, SPOOL_FOOTER_LEN,
		    size, &body, &envlen, got), -1);
	}
	/* an envelope too long for any envelope file */
	spool_footer_format(buf, 0, SPOOL_ENVELOPE_MAX, mac);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN,
	    SPOOL_ENVELOPE_MAX + SPOOL_FOOTER_LEN, &body, &envlen, got), -1);
	/* sizes that would wrap around */
	spool_footer_format(buf, 0, 10, mac);
	memcpy(buf + 24, "18446744073709551615", 20);
	assert_int_equal(spool_footer_parse(buf, SPOOL_FOOTER_LEN,
	    9 + SPOOL_FOOTER_LEN, &body, &envlen, got), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_optional_key_absent),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_footer_round_trip),
		cmocka_unit_test(test_footer_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
