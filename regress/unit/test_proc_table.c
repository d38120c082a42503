/*
 * test_proc_table.c -- table/proc.c's parser of a proc: table program's
 * lines (smtpd-tables(7)): the answers of the manual's examples, values
 * holding '|', errors with and without a message, and everything it
 * must refuse (a wrong prefix, an ID that is no ID of ours, a lookup's
 * "found" without a value, trailing text, a CR); the registrations of
 * the handshake; which request asks which service.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proc_table.h"

static void
test_answers(void **state)
{
	struct proc_answer	a;

	(void)state;
	/* the manual's example */
	assert_int_equal(proc_parse_answer(
	    "lookup-result|f993c74|found|1000:1000:/home/op", &a), 0);
	assert_int_equal(a.op, PROC_OP_LOOKUP);
	assert_true(a.id == 0xf993c74);
	assert_int_equal(a.status, TABLE_FOUND);
	assert_string_equal(a.text, "1000:1000:/home/op");
	/* '|' is an ordinary character in the last field */
	assert_int_equal(proc_parse_answer("lookup-result|1|found|a|b||", &a),
	    0);
	assert_string_equal(a.text, "a|b||");
	/* an empty value: a list's member */
	assert_int_equal(proc_parse_answer("lookup-result|2|found|", &a), 0);
	assert_int_equal(a.status, TABLE_FOUND);
	assert_string_equal(a.text, "");
	assert_int_equal(proc_parse_answer("lookup-result|ffffffffffffffff|"
	    "not-found", &a), 0);
	assert_true(a.id == UINT64_MAX);
	assert_int_equal(a.status, TABLE_NOTFOUND);
	assert_null(a.text);
	assert_int_equal(proc_parse_answer("lookup-result|3|error", &a), 0);
	assert_int_equal(a.status, TABLE_ERROR);
	assert_null(a.text);
	assert_int_equal(proc_parse_answer("lookup-result|3|error|db down",
	    &a), 0);
	assert_int_equal(a.status, TABLE_ERROR);
	assert_string_equal(a.text, "db down");
	/* check: no value, one given is ignored */
	assert_int_equal(proc_parse_answer("check-result|e5862859|not-found",
	    &a), 0);
	assert_int_equal(a.op, PROC_OP_CHECK);
	assert_int_equal(a.status, TABLE_NOTFOUND);
	assert_int_equal(proc_parse_answer("check-result|a|found", &a), 0);
	assert_int_equal(a.status, TABLE_FOUND);
	assert_null(a.text);
	assert_int_equal(proc_parse_answer("check-result|a|found|x", &a), 0);
	assert_int_equal(a.status, TABLE_FOUND);
	assert_null(a.text);
	assert_int_equal(proc_parse_answer("check-result|a|error|no", &a), 0);
	assert_int_equal(a.status, TABLE_ERROR);
}

static void
test_garbage(void **state)
{
	static const char *const bad[] = {
		"",
		"lookup-result",
		"lookup-result|",
		"lookup-result||found|x",		/* no ID */
		"lookup-result|1",
		"lookup-result|1|",
		"lookup-result|1|found",		/* a lookup's value */
		"lookup-result|1|foundx",
		"lookup-result|1|not-found|",		/* trailing text */
		"lookup-result|1|not-found\r",		/* CRLF */
		"lookup-result|1|errors",
		"lookup-result|1|FOUND|x",
		"lookup-result|01|found|x",		/* not our ID */
		"lookup-result|0x1|found|x",
		"lookup-result|A|found|x",
		"lookup-result|-1|found|x",
		"lookup-result| 1|found|x",
		"lookup-result|10000000000000000|found|x",	/* 17 digits */
		"lookup-result|1g|found|x",
		"Lookup-result|1|found|x",
		"lookup-results|1|found|x",
		"update-result|1|ok",			/* never asked */
		"fetch-result|1|found|x",
		"check-result|1|foundx",
		"check-result|1|not-found|x",
		"register|alias",
		"table|0.1|1.0|t|lookup|alias|1|k",
	};
	struct proc_answer	a;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (proc_parse_answer(bad[i], &a) != -1)
			fail_msg("accepted: \"%s\"", bad[i]);
}

static void
test_register(void **state)
{
	enum table_service	s;

	(void)state;
	assert_int_equal(proc_parse_register("register|alias", &s),
	    PROC_REG_SERVICE);
	assert_int_equal(s, TS_ALIAS);
	assert_int_equal(proc_parse_register("register|credentials", &s),
	    PROC_REG_SERVICE);
	assert_int_equal(s, TS_CREDENTIALS);
	assert_int_equal(proc_parse_register("register|mailaddrmap", &s),
	    PROC_REG_SERVICE);
	assert_int_equal(s, TS_MAILADDRMAP);
	/* OpenSMTPD's services nothing here asks */
	assert_int_equal(proc_parse_register("register|source", &s),
	    PROC_REG_OTHER);
	assert_int_equal(proc_parse_register("register|auth", &s),
	    PROC_REG_OTHER);
	assert_int_equal(proc_parse_register("register|ready", &s),
	    PROC_REG_READY);
	assert_int_equal(proc_parse_register("register|", &s), -1);
	assert_int_equal(proc_parse_register("register|Alias", &s), -1);
	assert_int_equal(proc_parse_register("register|alias|x", &s), -1);
	assert_int_equal(proc_parse_register("register|ready ", &s), -1);
	assert_int_equal(proc_parse_register("register alias", &s), -1);
	assert_int_equal(proc_parse_register("lookup-result|1|not-found",
	    &s), -1);
}

static void
test_service_op(void **state)
{
	(void)state;
	assert_int_equal(proc_service_op(TS_DOMAIN), PROC_OP_CHECK);
	assert_int_equal(proc_service_op(TS_NETADDR), PROC_OP_CHECK);
	assert_int_equal(proc_service_op(TS_MAILADDR), PROC_OP_CHECK);
	assert_int_equal(proc_service_op(TS_ALIAS), PROC_OP_LOOKUP);
	assert_int_equal(proc_service_op(TS_CREDENTIALS), PROC_OP_LOOKUP);
	assert_int_equal(proc_service_op(TS_USERINFO), PROC_OP_LOOKUP);
	assert_int_equal(proc_service_op(TS_MAILADDRMAP), PROC_OP_LOOKUP);
	assert_int_equal(proc_service_op(TS_STRING), PROC_OP_LOOKUP);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_service_op),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
