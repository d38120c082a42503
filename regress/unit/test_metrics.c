/*
 * test_metrics.c -- common/metrics.c, the Prometheus text writer, and
 * control/http_request.c, the request parser of GET /metrics: exact
 * output (HELP/TYPE, escaped label values, cumulative buckets), misuse
 * refused rather than written, and requests well formed, truncated,
 * malformed, of another method, with a query, and at the size limit.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_request.h"
#include "metrics.h"
#include "smtpcount.h"

static void
test_family_and_samples(void **state)
{
	struct metrics	 m;
	const char	*t;

	(void)state;
	metrics_init(&m);
	metrics_family(&m, "posthaste_x_total", "counter",
	    "Things, with a \\ and\na newline.");
	metrics_u64(&m, "posthaste_x_total", 18446744073709551615ULL, NULL);
	metrics_u64(&m, "posthaste_x_total", 3, "transport", "lo\"c\\al\n",
	    "b", "c", NULL);
	metrics_double(&m, "posthaste_g", 0.5, NULL);
	t = metrics_text(&m, NULL);
	assert_non_null(t);
	assert_string_equal(t,
	    "# HELP posthaste_x_total Things, with a \\\\ and\\na newline.\n"
	    "# TYPE posthaste_x_total counter\n"
	    "posthaste_x_total 18446744073709551615\n"
	    "posthaste_x_total{transport=\"lo\\\"c\\\\al\\n\",b=\"c\"} 3\n"
	    "posthaste_g 0.5\n");
	metrics_free(&m);
}

static void
test_histogram(void **state)
{
	static const double	 b[] = { 0.1, 1, 60 };
	struct metrics_hist	 h = { b, 3, { 0 }, 0, 0 };
	struct metrics		 m;
	const char		*t;

	(void)state;
	metrics_hist_observe(&h, 0.05);
	metrics_hist_observe(&h, 0.1);	/* le is inclusive */
	metrics_hist_observe(&h, 2);
	metrics_hist_observe(&h, 1000);
	metrics_init(&m);
	metrics_family(&m, "d_seconds", "histogram", "Delay.");
	metrics_hist_write(&m, "d_seconds", &h);
	t = metrics_text(&m, NULL);
	assert_non_null(t);
	assert_string_equal(t,
	    "# HELP d_seconds Delay.\n"
	    "# TYPE d_seconds histogram\n"
	    "d_seconds_bucket{le=\"0.1\"} 2\n"
	    "d_seconds_bucket{le=\"1\"} 2\n"
	    "d_seconds_bucket{le=\"60\"} 3\n"
	    "d_seconds_bucket{le=\"+Inf\"} 4\n"
	    "d_seconds_sum 1002.15\n"
	    "d_seconds_count 4\n");
	metrics_free(&m);
}

static void
test_misuse(void **state)
{
	struct metrics	m;

	(void)state;
	metrics_init(&m);
	metrics_family(&m, "1bad", "counter", "x");
	assert_null(metrics_text(&m, NULL));
	metrics_free(&m);
	metrics_init(&m);
	metrics_family(&m, "ok", "summary", "x");	/* not ours */
	assert_null(metrics_text(&m, NULL));
	metrics_free(&m);
	metrics_init(&m);
	metrics_u64(&m, "ok", 1, "bad-label", "v", NULL);
	assert_null(metrics_text(&m, NULL));
	metrics_free(&m);
	metrics_init(&m);
	metrics_u64(&m, "ok", 1, "k", NULL);	/* a key without a value */
	assert_null(metrics_text(&m, NULL));
	metrics_free(&m);
	metrics_init(&m);		/* nothing written: an empty text */
	assert_string_equal(metrics_text(&m, NULL), "");
	metrics_free(&m);
	assert_true(metrics_valid_name("a:b_c9"));
	assert_false(metrics_valid_name(""));
	assert_false(metrics_valid_name("a b"));
}

/* the smtp workers' counters as control writes them */
static void
test_smtpcount(void **state)
{
	struct metrics	 m;
	const char	*t;

	(void)state;
	smtpcount_init();
	smtpcount_add(SC_CONNECTION);
	smtpcount_add(SC_CONNECTION);
	smtpcount_add(SC_AUTH_FAILURE);
	smtpcount_add(SC_TLS_13);
	smtpcount_add(SC_MAX);		/* out of range: ignored */
	smtpcount_open(1);
	smtpcount_open(1);
	smtpcount_open(-1);
	smtpcount_reject("RCPT", "550 5.1.1 <x@y>: Recipient address rejected");
	smtpcount_reject("RCPT", "554 5.7.1 <x@z>: Relay access denied");
	smtpcount_reject("RCPT", "451 4.3.0 try again");
	smtpcount_reject("RCPT", "550 no code");
	smtpcount_reject("XYZZY", "500 5.5.2 what");
	smtpcount_check(SCK_SPF, "softfail");
	smtpcount_check(SCK_SPF, "policy");	/* not SPF's: permerror */
	smtpcount_check(SCK_DKIM, "policy");
	smtpcount_check(SCK_DMARC, "pass");
	smtpcount_check(SCK_MAX, "pass");	/* out of range: ignored */
	smtpcount_milter(SCM_REPLYCODE);
	smtpcount_milter(SCM_MAX);		/* ignored */
	smtpcount_add(SC_DNSBL_LISTED);
	/* listeners: named by the parent, found by the workers */
	assert_int_equal(smtpcount_listener_slot("127.0.0.1", 25, ""), -1);
	smtpcount_listener_add("127.0.0.1", 25, "");
	smtpcount_listener_add("::1", 587, "submission");
	smtpcount_listener_add("127.0.0.1", 25, "");	/* kept its slot */
	assert_int_equal(smtpcount_listener_slot("127.0.0.1", 25, ""), 0);
	assert_int_equal(smtpcount_listener_slot("::1", 587, "submission"), 1);
	assert_int_equal(smtpcount_listener_slot("::1", 587, ""), -1);
	smtpcount_listener_open(1, 1);
	smtpcount_listener_open(1, 1);
	smtpcount_listener_open(0, 1);
	smtpcount_listener_open(0, -1);
	smtpcount_listener_open(-1, 1);		/* no slot: nothing */
	smtpcount_listener_open(SMTPCOUNT_LISTENERS, 1);
	metrics_init(&m);
	smtpcount_metrics(&m);
	t = metrics_text(&m, NULL);
	assert_non_null(t);
	assert_non_null(strstr(t, "\nposthaste_smtp_connections_total 2\n"));
	assert_non_null(strstr(t, "\nposthaste_smtp_sessions_open 1\n"));
	assert_non_null(strstr(t,
	    "\nposthaste_smtp_auth_total{result=\"failure\"} 1\n"));
	assert_non_null(strstr(t,
	    "\nposthaste_smtp_auth_total{result=\"success\"} 0\n"));
	assert_non_null(strstr(t,
	    "\nposthaste_smtp_tls_sessions_total{version=\"TLSv1.3\"} 1\n"));
	assert_non_null(strstr(t, "\nposthaste_smtp_rejects_total{stage="
	    "\"RCPT\",class=\"5xx\"} 3\n"));
	assert_non_null(strstr(t, "\nposthaste_smtp_rejects_total{stage="
	    "\"RCPT\",class=\"4xx\"} 1\n"));
	assert_non_null(strstr(t, "\nposthaste_smtp_rejects_total{stage="
	    "\"other\",class=\"5xx\"} 1\n"));
	assert_non_null(strstr(t, "\nposthaste_smtp_recipients_rejected_total"
	    "{reason=\"unknown_user\"} 1\n"));
	assert_non_null(strstr(t, "\nposthaste_smtp_recipients_rejected_total"
	    "{reason=\"denied\"} 1\n"));
	assert_non_null(strstr(t, "\nposthaste_smtp_recipients_rejected_total"
	    "{reason=\"temporary\"} 1\n"));
	assert_non_null(strstr(t, "\nposthaste_smtp_recipients_rejected_total"
	    "{reason=\"other\"} 1\n"));
	assert_non_null(strstr(t,
	    "\nposthaste_spf_results_total{result=\"softfail\"} 1\n"));
	assert_non_null(strstr(t,
	    "\nposthaste_spf_results_total{result=\"permerror\"} 1\n"));
	assert_null(strstr(t, "posthaste_spf_results_total{result=\"policy"));
	assert_non_null(strstr(t,
	    "\nposthaste_dkim_results_total{result=\"policy\"} 1\n"));
	assert_non_null(strstr(t,
	    "\nposthaste_dmarc_results_total{result=\"pass\"} 1\n"));
	assert_null(strstr(t, "posthaste_dmarc_results_total{result=\"soft"));
	assert_non_null(strstr(t,
	    "\nposthaste_milter_actions_total{action=\"replycode\"} 1\n"));
	assert_non_null(strstr(t,
	    "\nposthaste_milter_actions_total{action=\"accept\"} 0\n"));
	assert_non_null(strstr(t, "\nposthaste_dnsbl_listed_total 1\n"));
	assert_non_null(strstr(t, "\nposthaste_smtp_listener_sessions_open{"
	    "listener=\"127.0.0.1:25\",tag=\"\"} 0\n"));
	assert_non_null(strstr(t, "\nposthaste_smtp_listener_sessions_open{"
	    "listener=\"[::1]:587\",tag=\"submission\"} 2\n"));
	metrics_free(&m);
}

static enum http_request_status
parse(const char *s, struct http_request *r)
{
	return http_request_parse(s, strlen(s), r);
}

static void
test_http_ok(void **state)
{
	struct http_request	r;

	(void)state;
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x:9180\r\n"
	    "Accept: text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n", &r),
	    HTTP_REQ_OK);
	assert_string_equal(r.path, "/metrics");
	assert_int_equal(r.head, 0);
	assert_int_equal(parse("HEAD /metrics?x=1 HTTP/1.0\n\n", &r),
	    HTTP_REQ_OK);
	assert_string_equal(r.path, "/metrics");
	assert_int_equal(r.head, 1);
	assert_int_equal(parse("GET / HTTP/1.1\r\nX:\t\r\n\r\n", &r),
	    HTTP_REQ_OK);
	assert_string_equal(r.path, "/");
	assert_int_equal(parse("POST /metrics HTTP/1.1\r\n\r\n", &r),
	    HTTP_REQ_METHOD);
}

static void
test_http_more_and_bad(void **state)
{
	struct http_request	 r;
	char			*big;
	static const char *const bad[] = {
		"\r\n\r\n",
		"GET /metrics\r\n\r\n",
		"GET  /metrics HTTP/1.1\r\n\r\n",
		"GET metrics HTTP/1.1\r\n\r\n",
		"GET /metrics HTTP/2.0\r\n\r\n",
		"GET /metrics HTTP/1.1 \r\n\r\n",
		"GET /me\x01trics HTTP/1.1\r\n\r\n",
		"G(T /metrics HTTP/1.1\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nA: b\rc\r\n\r\n",
	};
	size_t			 i;

	(void)state;
	assert_int_equal(parse("", &r), HTTP_REQ_MORE);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &r),
	    HTTP_REQ_MORE);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &r) != HTTP_REQ_BAD)
			fail_msg("accepted: %s", bad[i]);
	assert_int_equal(http_request_parse("GET / HTTP/1.1\0\r\n\r\n", 19,
	    &r), HTTP_REQ_BAD);
	/* a path longer than we keep */
	big = malloc(HTTP_REQUEST_MAX + 1);
	assert_non_null(big);
	memset(big, 'a', HTTP_REQUEST_MAX);
	memcpy(big, "GET /", 5);
	memcpy(big + HTTP_PATH_MAX + 10, " HTTP/1.1\r\n\r\n", 13);
	assert_int_equal(http_request_parse(big, HTTP_PATH_MAX + 23, &r),
	    HTTP_REQ_BAD);
	/* no end in HTTP_REQUEST_MAX bytes: refused, not waited for */
	memset(big, 'a', HTTP_REQUEST_MAX);
	assert_int_equal(http_request_parse(big, HTTP_REQUEST_MAX - 1, &r),
	    HTTP_REQ_MORE);
	assert_int_equal(http_request_parse(big, HTTP_REQUEST_MAX, &r),
	    HTTP_REQ_BAD);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_and_samples),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_smtpcount),
		cmocka_unit_test(test_http_ok),
		cmocka_unit_test(test_http_more_and_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
