/*
 * test_proc_table.c -- table/proc.c: its parser of a proc: table
 * program's lines (smtpd-tables(7)): the answers of the manual's
 * examples, values holding '|', errors with and without a message, and
 * everything it must refuse (a wrong prefix, an ID that is no ID of
 * ours, a lookup's "found" without a value, trailing text, a CR); the
 * registrations of the handshake; which request asks which service.
 *
 * Then the driver itself, through remote.c as lookup uses it, with a
 * table program written in sh: questions asked during the handshake, an
 * answer held back and given after a later one's (matched by ID), check
 * and lookup, a value holding '|', the program's error, a service it did
 * not register; a program that writes garbage and one that exits fail
 * the question and every later one.
 */

#include <sys/types.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "config.h"
#include "proc.h"
#include "proc_table.h"
#include "table.h"

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

/*
 * The driver, with a program
 */

static const char program[] =
    "#!/bin/sh\n"
    "while IFS= read -r line; do\n"
    "	[ \"$line\" = \"config|ready\" ] && break\n"
    "done\n"
    "echo 'register|alias'\n"
    "echo 'register|domain'\n"
    "echo 'register|source'\n"
    "echo 'register|ready'\n"
    "held=\n"
    "while IFS='|' read -r t v ts name op svc id key; do\n"
    "	case \"$key\" in\n"
    "	slow) held=\"lookup-result|$id|found|late\" ;;\n"
    "	garbage) echo 'nonsense' ;;\n"
    "	exit) exit 0 ;;\n"
    "	error) echo \"lookup-result|$id|error|down\" ;;\n"
    "	example.org) echo \"check-result|$id|found\" ;;\n"
    "	alice) echo \"lookup-result|$id|found|a|b\"\n"
    "		[ -n \"$held\" ] && echo \"$held\"; held= ;;\n"
    "	*) echo \"$op-result|$id|not-found\" ;;\n"
    "	esac\n"
    "done\n";

static struct event_base	*eb;
static char			 tdir[] = "/tmp/test_proc_table.XXXXXX";

struct req {
	struct table_stall	 stall;
	struct table		*t;
	enum table_service	 service;
	const char		*key;
	int			 done;
	int			 rc;
	char			*val;
};

static void
req_run(void *arg)
{
	struct req	*r = arg;

	free(r->val);
	r->val = NULL;
	table_stall_begin(&r->stall);
	r->rc = table_lookup_service(r->t, r->service, r->key, &r->val);
	if (table_stall_end()) {
		table_stall_park(&r->stall, req_run, r);
		return;
	}
	r->done = 1;
	table_stall_done(&r->stall);
}

static void
start(struct req *r, const char *table, enum table_service s,
    const char *key)
{
	memset(r, 0, sizeof(*r));
	assert_non_null(r->t = config_find_table(conf, table));
	r->service = s;
	r->key = key;
	req_run(r);
}

/* turn the loop until the request is answered (5 s at most) */
static void
wait_done(struct req *r)
{
	int	i;

	for (i = 0; i < 5000 && !r->done; i++) {
		event_base_loop(eb, EVLOOP_NONBLOCK);
		if (!r->done)
			usleep(1000);
	}
	assert_true(r->done);
}

static int
ask(const char *table, enum table_service s, const char *key,
    char **val)
{
	struct req	r;

	start(&r, table, s, key);
	wait_done(&r);
	*val = r.val;
	return r.rc;
}

static int
driver_setup(void **state)
{
	char	 path[256], conftext[1024], err[1024] = "";
	FILE	*fp;

	(void)state;
	signal(SIGPIPE, SIG_IGN);	/* as lookup: a dead program is EPIPE */
	assert_non_null(mkdtemp(tdir));
	snprintf(path, sizeof(path), "%s/prog", tdir);
	assert_non_null(fp = fopen(path, "w"));
	fputs(program, fp);
	fclose(fp);
	assert_int_equal(chmod(path, 0755), 0);
	snprintf(conftext, sizeof(conftext),
	    "table p \"proc:%s arg\" cache-ttl 0 negative-ttl 0\n"
	    "table g proc:%s cache-ttl 0 negative-ttl 0\n"
	    "table x proc:%s cache-ttl 0 negative-ttl 0\n", path, path, path);
	snprintf(path, sizeof(path), "%s/smtpd.conf", tdir);
	assert_non_null(fp = fopen(path, "w"));
	fputs(conftext, fp);
	fclose(fp);
	if ((conf = config_parse(path, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_non_null(eb = event_base_new());
	table_remote_start(eb);
	return 0;
}

static int
driver_teardown(void **state)
{
	char	cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_driver(void **state)
{
	struct req	 slow, fast;
	char		*val;

	(void)state;
	/* asked at once: during the handshake, sent after it */
	start(&slow, "p", TS_ALIAS, "slow");
	start(&fast, "p", TS_ALIAS, "alice");
	wait_done(&fast);
	wait_done(&slow);
	assert_int_equal(fast.rc, TABLE_FOUND);
	assert_string_equal(fast.val, "a|b");
	assert_int_equal(slow.rc, TABLE_FOUND);
	assert_string_equal(slow.val, "late");
	free(fast.val);
	free(slow.val);
	assert_int_equal(ask("p", TS_DOMAIN, "example.org", &val),
	    TABLE_FOUND);
	free(val);
	assert_int_equal(ask("p", TS_DOMAIN, "example.net", &val),
	    TABLE_NOTFOUND);
	assert_int_equal(ask("p", TS_ALIAS, "bob", &val), TABLE_NOTFOUND);
	assert_int_equal(ask("p", TS_ALIAS, "error", &val), TABLE_ERROR);
	/* not registered */
	assert_int_equal(ask("p", TS_CREDENTIALS, "alice", &val),
	    TABLE_ERROR);
	/* still serving */
	assert_int_equal(ask("p", TS_ALIAS, "alice", &val), TABLE_FOUND);
	free(val);

	/* garbage: given up on, for good */
	assert_int_equal(ask("g", TS_ALIAS, "alice", &val), TABLE_FOUND);
	free(val);
	assert_int_equal(ask("g", TS_ALIAS, "garbage", &val), TABLE_ERROR);
	assert_int_equal(ask("g", TS_ALIAS, "alice", &val), TABLE_ERROR);
	/* exited: the same */
	assert_int_equal(ask("x", TS_ALIAS, "exit", &val), TABLE_ERROR);
	assert_int_equal(ask("x", TS_ALIAS, "alice", &val), TABLE_ERROR);
	/* the other tables' programs are their own */
	assert_int_equal(ask("p", TS_ALIAS, "alice", &val), TABLE_FOUND);
	free(val);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_service_op),
		cmocka_unit_test_setup_teardown(test_driver, driver_setup,
		    driver_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
