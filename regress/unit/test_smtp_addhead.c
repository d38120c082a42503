/*
 * test_smtp_addhead.c -- smtp_data_add_header() (smtp/smtp_data.c), the
 * worker's side of headers added after the body: a field is taken in the
 * spool's form (CRLF made LF, a final line end added), each new one goes
 * above those added before, and anything the queue would refuse -- not
 * one well-formed field, or past SPOOL_HEAD_MAX in all -- is refused
 * here without changing what was added.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spool_msg.h"
#include "smtp_session.h"

static void
test_order_and_form(void **state)
{
	struct session	s;
	static const char want[] = "DKIM-Signature: v=1;\n b=x\n"
	    "Authentication-Results: mx; spf=pass\n\tdkim=none\n";

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(smtp_data_add_header(&s,
	    "Authentication-Results: mx; spf=pass\r\n\tdkim=none"), 0);
	assert_int_equal(smtp_data_add_header(&s,
	    "DKIM-Signature: v=1;\n b=x\r\n"), 0);
	assert_int_equal(s.addhead_len, sizeof(want) - 1);
	assert_memory_equal(s.addhead, want, sizeof(want) - 1);
	assert_int_equal(s.addhead_lines, 4);
	assert_int_equal(spool_head_valid(s.addhead, s.addhead_len, NULL), 0);
	free(s.addhead);
}

static void
test_refusals(void **state)
{
	static const char *bad[] = {
		"",
		"no colon here",
		"X: a\r\nY: b",		/* two fields in one call */
		"X: a\n\nbody",		/* an empty line */
		" X: a",		/* a continuation first */
		"X: a\rb",		/* a bare CR */
		"X: caf\xc3\xa9",	/* 8-bit */
		".X: a",
	};
	struct session	s;
	char		*big;
	size_t		 i;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(smtp_data_add_header(&s, "X-First: 1"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(smtp_data_add_header(&s, bad[i]), -1);
	assert_int_equal(s.addhead_len, 11);
	assert_memory_equal(s.addhead, "X-First: 1\n", 11);
	/* up to SPOOL_HEAD_MAX in all, not a byte more */
	big = malloc(SPOOL_HEAD_MAX);
	assert_non_null(big);
	for (i = 0; i < SPOOL_HEAD_MAX - 1; i++)
		big[i] = i % 80 == 79 ? '\n' : i % 80 == 0 ? ' ' : 'a';
	memcpy(big, "X:", 2);
	big[SPOOL_HEAD_MAX - 11 - 1] = '\0';	/* with its LF: all of it */
	assert_int_equal(smtp_data_add_header(&s, big), 0);
	assert_int_equal(s.addhead_len, SPOOL_HEAD_MAX);
	assert_int_equal(smtp_data_add_header(&s, "Y: z"), -1);
	assert_int_equal(spool_head_valid(s.addhead, s.addhead_len, NULL), 0);
	free(big);
	free(s.addhead);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_form),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
