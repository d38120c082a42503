/*
 * test_ctl_milter.c -- smtpctl show milters' output (programs/ctl_milter.c):
 * the text line and the JSON object of a filter, unused and with an
 * error text that holds what a filter or the system said (quotes,
 * control characters, bytes that are not UTF-8), which must neither
 * break the JSON nor reach a terminal raw.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_milter.h"
#include "json.h"

static char *
text_of(const struct ctl_milter *m)
{
	static char	buf[4096];
	FILE		*fp;
	size_t		 n;

	fp = fmemopen(buf, sizeof(buf), "w");
	assert_non_null(fp);
	ctl_milter_text(fp, m);
	n = (size_t)ftell(fp);
	fclose(fp);
	buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = '\0';
	return buf;
}

static const char *
json_of(const struct ctl_milter *m, struct json *j)
{
	const char	*doc;

	json_init(j);
	ctl_milter_json(j, m);
	doc = json_finish(j, NULL);
	assert_non_null(doc);
	return doc;
}

static void
test_unused(void **state)
{
	struct ctl_milter	m;
	struct json		j;

	(void)state;
	memset(&m, 0, sizeof(m));
	snprintf(m.st.name, sizeof(m.st.name), "rspamd");
	snprintf(m.address, sizeof(m.address), "inet:127.0.0.1:11332");
	assert_string_equal(text_of(&m), "rspamd inet:127.0.0.1:11332 "
	    "state=unused sessions=0 messages=0 accepted=0 rejected=0 "
	    "tempfailed=0 discarded=0 quarantined=0 modified=0 errors=0 "
	    "on-error-used=0\n");
	assert_string_equal(json_of(&m, &j), "{\"name\":\"rspamd\","
	    "\"address\":\"inet:127.0.0.1:11332\",\"state\":\"unused\","
	    "\"since\":null,\"sessions\":0,\"messages\":0,\"accepted\":0,"
	    "\"rejected\":0,\"tempfailed\":0,\"discarded\":0,"
	    "\"quarantined\":0,\"modified\":0,\"errors\":0,"
	    "\"on_error_used\":0,\"error_at\":null,\"error\":null}");
	json_free(&j);
}

static void
test_down_with_error(void **state)
{
	struct ctl_milter	m;
	struct json		j;

	(void)state;
	memset(&m, 0, sizeof(m));
	snprintf(m.st.name, sizeof(m.st.name), "dkim");
	snprintf(m.address, sizeof(m.address), "unix:/run/o.sock");
	m.st.state = MILTER_STATE_DOWN;
	m.st.since = 1800000000;	/* 2027-01-15T08:00:00Z */
	m.st.sessions = 12;
	m.st.errors = 3;
	m.st.defaults = 2;
	m.st.error_at = 1800000060;
	snprintf(m.st.error, sizeof(m.st.error),
	    "bad \"reply\"\x1b[31m\xff end");
	assert_string_equal(text_of(&m), "dkim unix:/run/o.sock state=down "
	    "since=2027-01-15T08:00:00Z sessions=12 messages=0 accepted=0 "
	    "rejected=0 tempfailed=0 discarded=0 quarantined=0 modified=0 "
	    "errors=3 on-error-used=2 error-at=2027-01-15T08:01:00Z "
	    "error=bad \"reply\"?[31m? end\n");
	assert_non_null(strstr(json_of(&m, &j), "\"state\":\"down\","
	    "\"since\":1800000000,\"sessions\":12,"));
	assert_non_null(strstr(j.buf, "\"errors\":3,\"on_error_used\":2,"
	    "\"error_at\":1800000060,\"error\":\"bad \\\"reply\\\"\\u001b"
	    "[31m\\ufffd end\"}"));
	json_free(&j);
	assert_string_equal(ctl_milter_state_name(MILTER_STATE_UP), "up");
	assert_string_equal(ctl_milter_state_name(99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unused),
		cmocka_unit_test(test_down_with_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
