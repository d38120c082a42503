/*
 * test_ctl_qshape.c -- smtpctl show qshape's table (programs/ctl_qshape.c):
 * the age bands (their edges, a clock that went back), the domains in
 * lower case and by count, the empty sender as MAILER-DAEMON, and what a
 * sender chose (control bytes, spaces, no '@') never printed raw.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_qshape.h"

static struct ctl_queue_entry
entry(const char *from, const char *to, int64_t age)
{
	struct ctl_queue_entry	q;

	memset(&q, 0, sizeof(q));
	snprintf(q.sender, sizeof(q.sender), "%s", from);
	snprintf(q.recipient, sizeof(q.recipient), "%s", to);
	q.now = 1000000;
	q.arrival = q.now - age;
	return q;
}

static char *
table_of(struct qshape *qs)
{
	static char	buf[8192];
	FILE		*fp;
	size_t		 n;

	fp = fmemopen(buf, sizeof(buf), "w");
	assert_non_null(fp);
	qshape_print(fp, qs);
	n = (size_t)ftell(fp);
	fclose(fp);
	buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = '\0';
	return buf;
}

static void
add(struct qshape *qs, const char *from, const char *to, int64_t age)
{
	struct ctl_queue_entry	q = entry(from, to, age);

	assert_int_equal(qshape_add(qs, &q), 0);
}

static void
test_bands(void **state)
{
	struct qshape	qs;
	/* the edge of each band belongs to the next: 5 minutes is "10" */
	const int64_t	ages[] = { 0, 299, 300, 599, 600, 1199, 1200,
	    2400, 4800, 9600, 19200, 38400, 76799, 76800, 1000000, -50 };
	const unsigned long want[QSHAPE_BUCKETS] = {
	    3, 2, 2, 1, 1, 1, 1, 1, 2, 2 };
	size_t		i;

	(void)state;
	qshape_init(&qs, 0);
	for (i = 0; i < sizeof(ages) / sizeof(ages[0]); i++)
		add(&qs, "a@b.test", "x@Dest.TEST", ages[i]);
	assert_int_equal(qs.nrows, 1);
	assert_string_equal(qs.rows[0].domain, "dest.test");
	assert_int_equal(qs.all.total, 16);
	for (i = 0; i < QSHAPE_BUCKETS; i++) {
		assert_int_equal(qs.all.age[i], want[i]);
		assert_int_equal(qs.rows[0].age[i], want[i]);
	}
	qshape_free(&qs);
}

static void
test_table(void **state)
{
	struct qshape	 qs;
	char		*t;

	(void)state;
	qshape_init(&qs, 0);
	add(&qs, "a@src.test", "u1@few.test", 60);
	add(&qs, "a@src.test", "u2@many.test", 60);
	add(&qs, "a@src.test", "u3@many.test", 700);
	add(&qs, "", "u4@MANY.test", 100000);
	t = table_of(&qs);
	assert_string_equal(t,
	    "                                    T     5    10    20    40"
	    "    80   160   320   640  1280 1280+\n"
	    "                         TOTAL      4     2     0     1     0"
	    "     0     0     0     0     0     1\n"
	    "                     many.test      3     1     0     1     0"
	    "     0     0     0     0     0     1\n"
	    "                      few.test      1     1     0     0     0"
	    "     0     0     0     0     0     0\n");
	qshape_free(&qs);

	qshape_init(&qs, 1);		/* -s: by the sender's domain */
	add(&qs, "a@src.test", "u1@few.test", 60);
	add(&qs, "", "u4@many.test", 60);
	add(&qs, "", "u5@many.test", 60);
	t = table_of(&qs);
	assert_non_null(strstr(t, "\n                 MAILER-DAEMON      2 "));
	assert_non_null(strstr(t, "\n                      src.test      1 "));
	qshape_free(&qs);
}

static void
test_hostile(void **state)
{
	struct qshape	 qs;
	char		*t;
	size_t		 i;

	(void)state;
	qshape_init(&qs, 0);
	add(&qs, "a@b.test", "\"x@y\"@e\x1b[2Jvil test", 0);
	add(&qs, "a@b.test", "noat", 0);
	add(&qs, "a@b.test", "x@", 0);
	add(&qs, "a@b.test", "x@[192.0.2.1]", 0);
	add(&qs, "a@b.test", "x@caf\xc3\xa9.test", 0);
	t = table_of(&qs);
	for (i = 0; t[i] != '\0'; i++)
		assert_true(t[i] == '\n' || (t[i] >= 0x20 && t[i] < 0x7f));
	assert_non_null(strstr(t, " e?[2jvil?test "));
	assert_non_null(strstr(t, " noat "));
	assert_non_null(strstr(t, " [192.0.2.1] "));
	assert_non_null(strstr(t, " caf??.test "));
	assert_non_null(strstr(t, " ? "));	/* nothing after the '@' */
	qshape_free(&qs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bands),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
