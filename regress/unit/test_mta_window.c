/*
 * test_mta_window.c -- polite delivery's arithmetic, mta/mta_window.c: the
 * slow-start window of a destination (starts small, +1 per delivery up to
 * the maximum, -1 per refused session, never below 1), a host's doubling
 * back-off, and which replies mean "too busy, come back later".
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mta_window.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static void
test_slow_start(void **state)
{
	struct mta_window	w;
	int			i;

	(void)state;
	mta_window_init(&w, 5, 20);
	assert_int_equal(w.limit, 5);
	assert_true(mta_window_may_open(&w, 4, 100));
	assert_false(mta_window_may_open(&w, 5, 100));
	/* one more session per delivery, up to the maximum */
	mta_window_success(&w);
	assert_int_equal(w.limit, 6);
	assert_true(mta_window_may_open(&w, 5, 100));
	for (i = 0; i < 100; i++)
		mta_window_success(&w);
	assert_int_equal(w.limit, 20);
	assert_false(mta_window_may_open(&w, 20, 100));
}

static void
test_initial_clamped(void **state)
{
	struct mta_window	w;

	(void)state;
	/* an initial value above the maximum is the maximum */
	mta_window_init(&w, 5, 3);
	assert_int_equal(w.limit, 3);
	mta_window_init(&w, 0, 0);
	assert_int_equal(w.limit, 1);
	assert_int_equal(w.max, 1);
	assert_true(mta_window_may_open(&w, 0, 100));
	assert_false(mta_window_may_open(&w, 1, 100));
}

static void
test_negative_feedback(void **state)
{
	struct mta_window	w;
	int			i;

	(void)state;
	mta_window_init(&w, 5, 20);
	mta_window_failure(&w);
	assert_int_equal(w.limit, 4);
	assert_int_equal(w.fails, 1);
	for (i = 0; i < 10; i++)
		mta_window_failure(&w);
	/* never below one: the destination is not given up here */
	assert_int_equal(w.limit, 1);
	assert_int_equal(w.fails, 11);
	assert_true(mta_window_may_open(&w, 0, 100));
	assert_false(mta_window_may_open(&w, 1, 100));
	/* a delivery ends the run of failures and grows again */
	mta_window_success(&w);
	assert_int_equal(w.limit, 2);
	assert_int_equal(w.fails, 0);
}

/* a new session only while the backlog outlasts its set-up */
static void
test_worth_opening(void **state)
{
	struct mta_window	w;

	(void)state;
	mta_window_init(&w, 5, 20);
	/* nothing waits: no session, whatever the window */
	assert_false(mta_window_may_open(&w, 0, 0));
	/* nothing measured: the window alone */
	assert_true(mta_window_may_open(&w, 4, 1));
	mta_window_note_setup(&w, 3000);	/* 3 ms to be ready */
	mta_window_note_txn(&w, 1000);		/* 1 ms a message */
	assert_int_equal(w.setup_us, 3000);
	assert_int_equal(w.txn_us, 1000);
	/*
	 * 4 sessions clear 16 messages in 4 ms: a new one, ready after
	 * 3 ms, would carry 1 at best -- not worth it; 17 and it is.
	 */
	assert_false(mta_window_may_open(&w, 4, 12));
	assert_false(mta_window_may_open(&w, 4, 16));
	assert_true(mta_window_may_open(&w, 4, 17));
	assert_false(mta_window_may_open(&w, 1, 4));
	assert_true(mta_window_may_open(&w, 1, 5));
	/* the first session is always worth it */
	assert_true(mta_window_may_open(&w, 0, 1));
	/* but never beyond the window */
	assert_false(mta_window_may_open(&w, 5, 1000));
	/* a slow peer: 150 ms a message, one waiting per session is enough */
	mta_window_init(&w, 5, 20);
	mta_window_note_setup(&w, 3000);
	mta_window_note_txn(&w, 150000);
	assert_false(mta_window_may_open(&w, 4, 4));
	assert_true(mta_window_may_open(&w, 4, 5));
	/* the averages follow a change within a few samples */
	mta_window_note_txn(&w, 1000);
	assert_int_equal(w.txn_us, (150000 * 3 + 1000) / 4);
	mta_window_note_txn(&w, 0);		/* counts as 1 us */
	assert_true(w.txn_us > 0);
	mta_window_note_setup(&w, 4000000000u);
	assert_true(w.setup_us > 3000);
}

static void
test_backoff(void **state)
{
	(void)state;
	assert_int_equal(mta_backoff_secs(30, 1), 30);
	assert_int_equal(mta_backoff_secs(30, 2), 60);
	assert_int_equal(mta_backoff_secs(30, 3), 120);
	assert_int_equal(mta_backoff_secs(30, 5), 30 << MTA_BACKOFF_MAX_SHIFT);
	/* capped, whatever the count */
	assert_int_equal(mta_backoff_secs(30, 6), 30 << MTA_BACKOFF_MAX_SHIFT);
	assert_int_equal(mta_backoff_secs(30, 4000000000u),
	    30 << MTA_BACKOFF_MAX_SHIFT);
	/* 0 counts as the first */
	assert_int_equal(mta_backoff_secs(30, 0), 30);
	assert_int_equal(mta_backoff_secs(0, 3), 0);
	assert_int_equal(mta_backoff_secs(1, 2), 2);
}

struct throttle_case {
	int		 code;
	const char	*text;
	int		 throttles;
};

static void
test_throttles(void **state)
{
	static const struct throttle_case cases[] = {
		{ 421, "4.7.0 mx.example Service not available", 1 },
		{ 421, "", 1 },
		{ 421, NULL, 1 },
		{ 451, "4.7.0 Too many connections from 192.0.2.1", 1 },
		{ 452, "too many concurrent SMTP connections; please try "
		    "again later", 1 },
		{ 450, "4.7.1 Connection rate limit exceeded", 1 },
		{ 451, "4.3.2 TOO MANY SESSIONS", 1 },
		{ 450, "4.2.0 greylisted, try again later", 0 },
		{ 451, "4.3.0 local error", 0 },
		{ 452, "4.3.1 insufficient system storage", 0 },
		{ 550, "5.7.1 too many connections", 0 },	/* permanent */
		{ 250, "2.0.0 too many connections", 0 },
		{ 451, "too many", 0 },
		{ 451, "too many connection", 0 },		/* cut short */
		{ 451, NULL, 0 },
		{ 399, "too many connections", 0 },
		{ 500, "too many connections", 0 },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		if (mta_reply_throttles(cases[i].code, cases[i].text) !=
		    cases[i].throttles)
			fail_msg("case %zu: %d %s", i, cases[i].code,
			    cases[i].text ? cases[i].text : "(null)");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_start),
		cmocka_unit_test(test_initial_clamped),
		cmocka_unit_test(test_negative_feedback),
		cmocka_unit_test(test_worth_opening),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_throttles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
