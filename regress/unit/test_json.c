/*
 * test_json.c -- common/json.c, the writer of every -j output, and
 * programs/ctl_format.c, which builds smtpctl's show queue objects with it:
 * exact output for escapes (RFC 8259 section 7), UTF-8 kept or replaced
 * byte by byte (RFC 3629 section 4), numbers at their limits, and calls
 * out of place refused rather than turned into a broken document.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_format.h"
#include "json.h"

/* a string value alone, as a document */
static void
check_string(const char *in, size_t len, const char *want)
{
	struct json	 j;
	const char	*out;

	json_init(&j);
	json_string(&j, in, len);
	out = json_finish(&j, NULL);
	if (out == NULL)
		fail_msg("no document for %zu bytes", len);
	if (strcmp(out, want) != 0)
		fail_msg("got %s, want %s", out, want);
	json_free(&j);
}

#define CHECK_STR(lit, want)	check_string((lit), sizeof(lit) - 1, (want))

static void
test_escapes(void **state)
{
	(void)state;
	CHECK_STR("", "\"\"");
	CHECK_STR("plain text", "\"plain text\"");
	CHECK_STR("\"john doe\"@example.test",
	    "\"\\\"john doe\\\"@example.test\"");
	CHECK_STR("back\\slash", "\"back\\\\slash\"");
	CHECK_STR("a\nb\rc\td", "\"a\\u000ab\\u000dc\\u0009d\"");
	CHECK_STR("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	/* a NUL inside the value is a character like any other */
	CHECK_STR("a\0b", "\"a\\u0000b\"");
	/* "/" and printable ASCII need nothing */
	CHECK_STR("</script> ~!", "\"</script> ~!\"");
}

static void
test_utf8(void **state)
{
	(void)state;
	/* well-formed: as is, 2, 3 and 4 bytes, and the limits */
	CHECK_STR("caf\xc3\xa9", "\"caf\xc3\xa9\"");
	CHECK_STR("\xe2\x82\xac \xf0\x9f\x93\xa7", "\"\xe2\x82\xac "
	    "\xf0\x9f\x93\xa7\"");
	CHECK_STR("\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf",
	    "\"\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
	/* each byte not in a well-formed sequence: one U+FFFD */
	CHECK_STR("\xff", "\"\\ufffd\"");
	CHECK_STR("a\x80z", "\"a\\ufffdz\"");
	CHECK_STR("\xc0\xaf", "\"\\ufffd\\ufffd\"");		/* overlong */
	CHECK_STR("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");	/* overlong */
	CHECK_STR("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");	/* surrogate */
	CHECK_STR("\xf4\x90\x80\x80",
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");		/* > U+10FFFF */
	CHECK_STR("\xe2\x82", "\"\\ufffd\\ufffd\"");		/* cut short */
	CHECK_STR("\xe2\x82x", "\"\\ufffd\\ufffdx\"");
	CHECK_STR("\xf8\x88\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd"
	    "\\ufffd\"");					/* 5 bytes */
}

static void
test_structure(void **state)
{
	struct json	 j;
	const char	*out;
	size_t		 len;

	(void)state;
	json_init(&j);
	json_object_begin(&j);
	json_kv_string(&j, "a", "x");
	json_key(&j, "list");
	json_array_begin(&j);
	json_int(&j, INT64_MIN);
	json_uint(&j, UINT64_MAX);
	json_bool(&j, 1);
	json_bool(&j, 0);
	json_null(&j);
	json_object_begin(&j);
	json_object_end(&j);
	json_array_begin(&j);
	json_array_end(&j);
	json_array_end(&j);
	json_kv_null(&j, "n\"k");
	json_kv_string(&j, "s", NULL);
	json_kv_int(&j, "zero", 0);
	json_object_end(&j);
	out = json_finish(&j, &len);
	assert_non_null(out);
	assert_string_equal(out, "{\"a\":\"x\",\"list\":[-9223372036854775808,"
	    "18446744073709551615,true,false,null,{},[]],\"n\\\"k\":null,"
	    "\"s\":null,\"zero\":0}");
	assert_int_equal(len, strlen(out));
	json_free(&j);

	/* a number alone is a document too */
	json_init(&j);
	json_int(&j, -1);
	assert_string_equal(json_finish(&j, NULL), "-1");
	json_free(&j);
}

static void
test_misuse(void **state)
{
	struct json	j;
	int		i;

	(void)state;
	/* nothing written */
	json_init(&j);
	assert_null(json_finish(&j, NULL));
	json_free(&j);
	/* a value where a key is due */
	json_init(&j);
	json_object_begin(&j);
	json_int(&j, 1);
	json_object_end(&j);
	assert_null(json_finish(&j, NULL));
	json_free(&j);
	/* a key in an array, a key without value, a key at the top */
	json_init(&j);
	json_array_begin(&j);
	json_key(&j, "k");
	json_array_end(&j);
	assert_null(json_finish(&j, NULL));
	json_free(&j);
	json_init(&j);
	json_object_begin(&j);
	json_key(&j, "k");
	json_object_end(&j);
	assert_null(json_finish(&j, NULL));
	json_free(&j);
	json_init(&j);
	json_key(&j, "k");
	assert_null(json_finish(&j, NULL));
	json_free(&j);
	/* unbalanced, crossed, unfinished */
	json_init(&j);
	json_array_end(&j);
	assert_null(json_finish(&j, NULL));
	json_free(&j);
	json_init(&j);
	json_array_begin(&j);
	json_object_end(&j);
	assert_null(json_finish(&j, NULL));
	json_free(&j);
	json_init(&j);
	json_object_begin(&j);
	assert_null(json_finish(&j, NULL));
	json_free(&j);
	/* two documents in one */
	json_init(&j);
	json_int(&j, 1);
	json_int(&j, 2);
	assert_null(json_finish(&j, NULL));
	json_free(&j);
	/* deeper than the limit */
	json_init(&j);
	for (i = 0; i <= JSON_DEPTH_MAX; i++)
		json_array_begin(&j);
	for (i = 0; i <= JSON_DEPTH_MAX; i++)
		json_array_end(&j);
	assert_null(json_finish(&j, NULL));
	json_free(&j);
	/* and exactly at it, fine */
	json_init(&j);
	for (i = 0; i < JSON_DEPTH_MAX; i++)
		json_array_begin(&j);
	for (i = 0; i < JSON_DEPTH_MAX; i++)
		json_array_end(&j);
	assert_non_null(json_finish(&j, NULL));
	json_free(&j);
}

static void
test_long_string(void **state)
{
	struct json	 j;
	char		*in;
	const char	*out;
	size_t		 n = 100000, len, i;

	(void)state;
	in = malloc(n);
	assert_non_null(in);
	for (i = 0; i < n; i++)
		in[i] = i % 3 == 0 ? '"' : 'x';
	json_init(&j);
	json_array_begin(&j);
	json_string(&j, in, n);
	json_array_end(&j);
	out = json_finish(&j, &len);
	assert_non_null(out);
	/* [" + each quote doubled + "] */
	assert_int_equal(len, n + (n + 2) / 3 + 4);
	json_free(&j);
	free(in);
}

static struct ctl_queue_entry
sample_entry(void)
{
	struct ctl_queue_entry	q;

	memset(&q, 0, sizeof(q));
	q.state = CTL_QSTATE_DEFERRED;
	q.evpid = 0x0123abcd00000001ULL;
	q.size = 1234;
	q.now = 1800000100;
	q.arrival = 1800000000;
	q.lasttry = 1800000050;
	q.nexttry = 1800000400;
	q.tries = 2;
	snprintf(q.sender, sizeof(q.sender), "\"john doe\"@example.test");
	snprintf(q.recipient, sizeof(q.recipient), "\"back\\\\slash\"@x.test");
	snprintf(q.error, sizeof(q.error), "4.2.0 \"busy\"\r\n\x1b[2J\xff");
	return q;
}

static void
test_queue_entry_json(void **state)
{
	struct ctl_queue_entry	 q = sample_entry();
	struct json		 j;
	const char		*out;

	(void)state;
	json_init(&j);
	ctl_queue_entry_json(&j, &q);
	out = json_finish(&j, NULL);
	assert_non_null(out);
	assert_string_equal(out, "{\"id\":\"0123abcd00000001\","
	    "\"message\":\"0123abcd\","
	    "\"sender\":\"\\\"john doe\\\"@example.test\","
	    "\"recipient\":\"\\\"back\\\\\\\\slash\\\"@x.test\","
	    "\"state\":\"deferred\",\"size\":1234,\"arrival\":1800000000,"
	    "\"age\":100,\"tries\":2,\"last_try\":1800000050,"
	    "\"next_try\":1800000400,"
	    "\"error\":\"4.2.0 \\\"busy\\\"\\u000d\\u000a\\u001b[2J\\ufffd\","
	    "\"held\":null}");
	json_free(&j);

	/* held (smtpctl hold, a milter's quarantine): the reason */
	q.state = CTL_QSTATE_HELD;
	snprintf(q.held, sizeof(q.held), "milter m: \"spam\" \\ \xc3\xa9");
	json_init(&j);
	ctl_queue_entry_json(&j, &q);
	out = json_finish(&j, NULL);
	assert_non_null(out);
	assert_non_null(strstr(out, "\"state\":\"held\","));
	assert_non_null(strstr(out, ",\"held\":\"milter m: \\\"spam\\\" "
	    "\\\\ \xc3\xa9\"}"));
	json_free(&j);
	q.state = CTL_QSTATE_DEFERRED;
	q.held[0] = '\0';

	/* never tried, nothing planned, an unknown state: still a document */
	q.lasttry = q.nexttry = 0;
	q.state = 99;
	q.sender[0] = '\0';
	json_init(&j);
	ctl_queue_entry_json(&j, &q);
	out = json_finish(&j, NULL);
	assert_non_null(out);
	assert_non_null(strstr(out, "\"sender\":\"\","));
	assert_non_null(strstr(out, "\"state\":\"unknown\""));
	assert_non_null(strstr(out, "\"last_try\":null,\"next_try\":null"));
	json_free(&j);
}

static void
test_queue_entry_text(void **state)
{
	struct ctl_queue_entry	 q = sample_entry();
	char			*buf = NULL;
	size_t			 len = 0;
	FILE			*fp;

	(void)state;
	fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	ctl_queue_entry_text(fp, &q);
	fclose(fp);
	assert_string_equal(buf, "0123abcd00000001 \"john doe\"@example.test "
	    "-> \"back\\\\slash\"@x.test size=1234 age=100s tries=2 "
	    "state=deferred next=300s error=4.2.0 \"busy\"???[2J?\n");
	free(buf);

	/* held: '!' after the id (Postfix's mailq), and the reason */
	q.state = CTL_QSTATE_HELD;
	q.nexttry = 0;
	q.error[0] = '\0';
	snprintf(q.held, sizeof(q.held), "smtpctl hold by root\x1b[2J");
	buf = NULL;
	fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	ctl_queue_entry_text(fp, &q);
	fclose(fp);
	assert_string_equal(buf, "0123abcd00000001! \"john doe\"@example.test "
	    "-> \"back\\\\slash\"@x.test size=1234 age=100s tries=2 "
	    "state=held held=smtpctl hold by root?[2J\n");
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_long_string),
		cmocka_unit_test(test_queue_entry_json),
		cmocka_unit_test(test_queue_entry_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
