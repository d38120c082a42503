/*
 * test_ratelimit.c -- the smtp workers' rate limits (common/ratelimit.c):
 * the GCRA arithmetic on its own (bursts, windows, the count-always
 * mode of AUTH failures), the shared table (keys, kinds, users apart
 * from addresses, long keys, a full neighbourhood failing open, the
 * lines of smtpctl show limits, the metrics) and the parser of RATE
 * (config_parse_rate; the statements are in test_parse.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "metrics.h"
#include "ratelimit.h"
#include "smtpcount.h"

static void
test_gcra_burst(void **state)
{
	struct conf_rate	r = { 3, 60 };
	int64_t			tat = 0, now = 1000000;
	int			i;

	(void)state;
	/* a burst of N, then refused; a refusal is not counted */
	for (i = 0; i < 3; i++)
		assert_int_equal(ratelimit_gcra(&tat, now, &r, 0),
		    RATELIMIT_OK);
	assert_int_equal(tat, now + 60000);
	assert_int_equal(ratelimit_gcra(&tat, now, &r, 0), RATELIMIT_OVER);
	assert_int_equal(ratelimit_gcra(&tat, now + 19999, &r, 0),
	    RATELIMIT_OVER);
	assert_int_equal(tat, now + 60000);
	/* one more every period/N */
	assert_int_equal(ratelimit_gcra(&tat, now + 20000, &r, 0),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_gcra(&tat, now + 20000, &r, 0),
	    RATELIMIT_OVER);
	/* a whole window later: a whole burst again */
	now += 200000;
	for (i = 0; i < 3; i++)
		assert_int_equal(ratelimit_gcra(&tat, now, &r, 0),
		    RATELIMIT_OK);
	assert_int_equal(ratelimit_gcra(&tat, now, &r, 0), RATELIMIT_OVER);
}

/* 10/m is not 600/h: at most 10 in any minute, whatever the hour */
static void
test_gcra_window(void **state)
{
	struct conf_rate	r = { 10, 60 };
	int64_t			tat = 0, now = 5000, t;
	int			ok = 0;

	(void)state;
	for (t = 0; t < 60000; t += 100)
		ok += ratelimit_gcra(&tat, now + t, &r, 0) == RATELIMIT_OK;
	/* 10 at once, then one each 6 s: 10 more in the rest of it */
	assert_int_equal(ok, 19);
	r.n = 1;
	r.period = 1;
	tat = 0;
	assert_int_equal(ratelimit_gcra(&tat, 0, &r, 0), RATELIMIT_OK);
	assert_int_equal(ratelimit_gcra(&tat, 999, &r, 0), RATELIMIT_OVER);
	assert_int_equal(ratelimit_gcra(&tat, 1000, &r, 0), RATELIMIT_OK);
	/* 1000/s: the interval is a ms */
	r.n = 1000;
	tat = 0;
	for (t = 0; t < 1000; t++)
		assert_int_equal(ratelimit_gcra(&tat, 0, &r, 0),
		    RATELIMIT_OK);
	assert_int_equal(ratelimit_gcra(&tat, 0, &r, 0), RATELIMIT_OVER);
}

/* AUTH failures: all counted; over once more than N in the window */
static void
test_gcra_always(void **state)
{
	struct conf_rate	r = { 3, 60 };
	int64_t			tat = 0, now = 1000;
	int			i;

	(void)state;
	for (i = 0; i < 3; i++)
		assert_int_equal(ratelimit_gcra(&tat, now, &r, 1),
		    RATELIMIT_OK);
	assert_int_equal(ratelimit_gcra(&tat, now, &r, 1), RATELIMIT_OVER);
	assert_int_equal(tat, now + 80000);
	/* bounded: never more than two windows ahead */
	for (i = 0; i < 100; i++)
		assert_int_equal(ratelimit_gcra(&tat, now, &r, 1),
		    RATELIMIT_OVER);
	assert_int_equal(tat, now + 120000);
	/* and it clears */
	assert_int_equal(ratelimit_gcra(&tat, now + 100000, &r, 1),
	    RATELIMIT_OK);
}

static void
test_parse_rate(void **state)
{
	static const struct {
		const char	*text;
		long long	 n, period;
	} good[] = {
		{ "0", 0, 0 }, { "1/s", 1, 1 }, { "10/m", 10, 60 },
		{ "300/h", 300, 3600 }, { "5/d", 5, 86400 },
		{ "3/2s", 3, 2 }, { "100/10m", 100, 600 },
		{ "7/1h", 7, 3600 },
	};
	static const char *const bad[] = {
		"", "10", "/s", "10/", "10/x", "10/ss", "10/10", "-1/s",
		"10/s ", "1e3/s", "10/0s", "0/", "10/m/", "10/-1m", "x/s",
		"99999999999999999999/s",
	};
	long long	n, period;
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		n = period = -5;
		if (config_parse_rate(good[i].text, &n, &period) != 0)
			fail_msg("\"%s\" refused", good[i].text);
		assert_int_equal(n, good[i].n);
		assert_int_equal(period, good[i].period);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_parse_rate(bad[i], &n, &period) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
}

static int
setup_table(void **state)
{
	(void)state;
	smtpcount_init();
	ratelimit_init();
	return 0;
}

static void
test_table_keys(void **state)
{
	struct conf_rate	r = { 2, 3600 }, off = { 0, 0 };
	char			long1[200], long2[200], buf[4096];
	int			i;

	(void)state;
	assert_int_equal(ratelimit_take(RATE_CLIENT_MSG, "192.0.2.1", &r),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_take(RATE_CLIENT_MSG, "192.0.2.1", &r),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_take(RATE_CLIENT_MSG, "192.0.2.1", &r),
	    RATELIMIT_OVER);
	/* another limit of the same key, another key, a user by that name */
	assert_int_equal(ratelimit_take(RATE_CLIENT_RCPT, "192.0.2.1", &r),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_take(RATE_CLIENT_MSG, "192.0.2.2", &r),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_take(RATE_USER_MSG, "192.0.2.1", &r),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_take(RATE_USER_MSG, "192.0.2.1", &r),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_take(RATE_USER_MSG, "192.0.2.1", &r),
	    RATELIMIT_OVER);
	/* no limit: nothing refused */
	for (i = 0; i < 10; i++)
		assert_int_equal(ratelimit_take(RATE_CLIENT_MSG, "192.0.2.1",
		    &off), RATELIMIT_OK);
	/* long keys: kept apart by their hash */
	memset(long1, 'a', sizeof(long1) - 1);
	long1[sizeof(long1) - 1] = '\0';
	memcpy(long2, long1, sizeof(long2));
	long2[150] = 'b';
	assert_int_equal(ratelimit_take(RATE_USER_RCPT, long1, &r),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_take(RATE_USER_RCPT, long1, &r),
	    RATELIMIT_OK);
	assert_int_equal(ratelimit_take(RATE_USER_RCPT, long1, &r),
	    RATELIMIT_OVER);
	assert_int_equal(ratelimit_take(RATE_USER_RCPT, long2, &r),
	    RATELIMIT_OK);

	/* show: each key at or near its limit, the limited ones said so */
	assert_int_equal(ratelimit_show(buf, sizeof(buf), 100), 6);
	assert_non_null(strstr(buf, "client-message-rate 192.0.2.1 "
	    "limit=2/3600s count=2 clears=3600s limited retry=1800s\n"));
	assert_non_null(strstr(buf, "user-message-rate 192.0.2.1 "
	    "limit=2/3600s count=2 clears=3600s limited retry=1800s\n"));
	assert_non_null(strstr(buf, "client-rcpt-rate 192.0.2.1 "
	    "limit=2/3600s count=1 clears=1800s\n"));
	assert_non_null(strstr(buf, "client-message-rate 192.0.2.2 "
	    "limit=2/3600s count=1 clears=1800s\n"));
	assert_non_null(strstr(buf, "user-rcpt-rate aaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaa~"));
	/* cut to what fits, and to max */
	assert_true(ratelimit_show(buf, 100, 100) <= 1);
	assert_true(strlen(buf) < 100);
	assert_int_equal(ratelimit_show(buf, sizeof(buf), 2), 2);
	assert_int_equal(ratelimit_show(buf, 10, 100), 0);
	assert_string_equal(buf, "");
}

static void
test_table_authfail(void **state)
{
	struct conf_rate	r = { 2, 3600 };

	(void)state;
	assert_int_equal(ratelimit_over(RATE_CLIENT_AUTHFAIL, "198.51.100.9",
	    &r), RATELIMIT_OK);
	assert_int_equal(ratelimit_count(RATE_CLIENT_AUTHFAIL, "198.51.100.9",
	    &r), RATELIMIT_OK);
	assert_int_equal(ratelimit_count(RATE_CLIENT_AUTHFAIL, "198.51.100.9",
	    &r), RATELIMIT_OK);
	/* N failures: not yet kept out */
	assert_int_equal(ratelimit_over(RATE_CLIENT_AUTHFAIL, "198.51.100.9",
	    &r), RATELIMIT_OK);
	assert_int_equal(ratelimit_count(RATE_CLIENT_AUTHFAIL, "198.51.100.9",
	    &r), RATELIMIT_OVER);
	assert_int_equal(ratelimit_over(RATE_CLIENT_AUTHFAIL, "198.51.100.9",
	    &r), RATELIMIT_OVER);
	assert_int_equal(ratelimit_over(RATE_CLIENT_AUTHFAIL, "198.51.100.8",
	    &r), RATELIMIT_OK);
}

/* the table's hash (FNV-1a, 64 bits), to aim keys at one slot */
static uint64_t
fnv(const char *s)
{
	uint64_t	h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* a full neighbourhood lets events through, and counts them */
static void
test_table_full(void **state)
{
	struct conf_rate	 r = { 1, 3600 };
	struct metrics		 m;
	const char		*text;
	char			 key[32];
	int			 found = 0, i;

	(void)state;
	ratelimit_init();	/* a fresh table: the others' keys out */
	for (i = 0; found < 65; i++) {
		snprintf(key, sizeof(key), "203.0.113.%d", i);
		if (fnv(key) % 8192 != 77)
			continue;
		found++;
		assert_int_equal(ratelimit_take(RATE_CLIENT_CONN, key, &r),
		    RATELIMIT_OK);
		/* the 65th has no room: never limited */
		assert_int_equal(ratelimit_take(RATE_CLIENT_CONN, key, &r),
		    found <= 64 ? RATELIMIT_OVER : RATELIMIT_OK);
	}
	metrics_init(&m);
	smtpcount_metrics(&m);
	text = metrics_text(&m, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text,
	    "posthaste_smtp_rate_table_full_total 2\n"));
	assert_non_null(strstr(text, "posthaste_smtp_rate_limited_total"
	    "{limit=\"client-connection-rate\"} 64\n"));
	assert_non_null(strstr(text, "posthaste_smtp_rate_limited_total"
	    "{limit=\"client-message-rate\"} 1\n"));
	metrics_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gcra_burst),
	    cmocka_unit_test(test_gcra_window),
	    cmocka_unit_test(test_gcra_always),
	    cmocka_unit_test(test_parse_rate),
	    cmocka_unit_test(test_table_keys),
	    cmocka_unit_test(test_table_authfail),
	    cmocka_unit_test(test_table_full),
	};

	return cmocka_run_group_tests(tests, setup_table, NULL);
}
