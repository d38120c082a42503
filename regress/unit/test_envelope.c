/*
 * test_envelope.c -- the envelope file format (common/envelope.c): what
 * is written reads back the same, values are escaped, and anything a
 * reader cannot vouch for (an unknown or repeated key, a value out of
 * range, a missing end marker, another version) is refused.
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_optional_key_absent),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
