/*
 * test_table_redis.c -- the redis: backend's configuration file, its
 * commands and its replies (table/redis.c, redis.h), without a server:
 * what is accepted, what is refused with which FILE:LINE, that a key is
 * always inside one argument, and how each kind of reply answers.  The
 * connections are tested against a real redis-server by
 * regress/integration/test_table_redis.py.
 */
#include <sys/types.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "backend.h"
#include "redis.h"
#include "table.h"

static const char good_conf[] =
    "# a comment\n"
    "\n"
    "server 127.0.0.1:6380\n"
    "password  two words \t\n"
    "database 3\n"
    "timeout 500ms\n"
    "pool 4\n"
    "query_alias GET alias:%s\n"
    "query_domain   SISMEMBER domains %s\r\n"
    "query_userinfo HMGET user:%s uid gid home\n"
    "query_credentials HGET pw:%% %s\n";

static void
parse_ok(const char *text, struct redis_conf *rc)
{
	char	err[512] = "";

	if (redis_conf_parse("/etc/r.conf", text, strlen(text), rc, err,
	    sizeof(err)) != 0)
		fail_msg("\"%s\": %s", text, err);
}

static void
parse_bad(const char *text, const char *want)
{
	struct redis_conf	rc;
	char			err[512] = "";

	if (redis_conf_parse("/etc/r.conf", text, strlen(text), &rc, err,
	    sizeof(err)) != -1)
		fail_msg("\"%s\" was accepted", text);
	if (strstr(err, want) == NULL)
		fail_msg("\"%s\": \"%s\" does not say \"%s\"", text, err,
		    want);
}

static void
test_conf_good(void **state)
{
	struct redis_conf	rc;
	char			buf[128];

	(void)state;
	parse_ok(good_conf, &rc);
	assert_string_equal(rc.host, "127.0.0.1");
	assert_int_equal(rc.port, 6380);
	assert_string_equal(rc.unix_path, "");
	assert_string_equal(rc.password, "two words");
	assert_int_equal(rc.database, 3);
	assert_int_equal(rc.timeout_ms, 500);
	assert_int_equal(rc.pool, 4);
	assert_non_null(rc.query[TS_ALIAS]);
	assert_int_equal(rc.query[TS_ALIAS]->argc, 2);
	assert_string_equal(rc.query[TS_ALIAS]->argv[1], "alias:%s");
	assert_int_equal(rc.query[TS_DOMAIN]->argc, 3);
	assert_string_equal(rc.query[TS_DOMAIN]->argv[2], "%s");
	assert_int_equal(rc.query[TS_USERINFO]->argc, 5);
	assert_null(rc.query[TS_STRING]);
	assert_null(rc.query[TS_NETADDR]);
	assert_string_equal(redis_conf_server(&rc, buf, sizeof(buf)),
	    "127.0.0.1:6380");
	redis_conf_free(&rc);
	assert_null(rc.password);
	assert_null(rc.query[TS_ALIAS]);

	/* defaults; a unix socket; no trailing newline */
	parse_ok("server /run/redis/redis.sock\nquery_string EXISTS %s", &rc);
	assert_string_equal(rc.unix_path, "/run/redis/redis.sock");
	assert_int_equal(rc.database, -1);
	assert_null(rc.password);
	assert_int_equal(rc.timeout_ms, REDIS_TIMEOUT_DEFAULT);
	assert_int_equal(rc.pool, 2);
	assert_string_equal(redis_conf_server(&rc, buf, sizeof(buf)),
	    "/run/redis/redis.sock");
	redis_conf_free(&rc);

	parse_ok("server 10.0.0.1\nquery_mailaddrmap SMEMBERS s:%s\n"
	    "timeout 2\n", &rc);
	assert_int_equal(rc.port, REDIS_PORT_DEFAULT);
	assert_int_equal(rc.timeout_ms, 2000);
	redis_conf_free(&rc);
}

static void
test_conf_bad(void **state)
{
	(void)state;
	parse_bad("", "/etc/r.conf: no \"server\" line");
	parse_bad("server 127.0.0.1\n", "no query_SERVICE line");
	parse_bad("server 127.0.0.1\nfoo bar\n",
	    "/etc/r.conf:2: unknown keyword \"foo\"");
	parse_bad("\n\nserver\n", "/etc/r.conf:3: \"server\" needs a value");
	parse_bad("server redis.example:6379\n", ":1: server: "
	    "\"redis.example\" is not a numeric IPv4");
	parse_bad("server ::1\n", "not a numeric IPv4");
	parse_bad("server 127.0.0.1:0\n", "bad port");
	parse_bad("server 127.0.0.1:65536\n", "bad port");
	parse_bad("server 127.0.0.1:\n", "bad port");
	parse_bad("server :6379\n", "expected HOST:PORT");
	parse_bad("server 127.0.0.1\nserver 127.0.0.1\n",
	    ":2: server given twice");
	parse_bad("server 127.0.0.1\npassword a\npassword b\n",
	    ":3: password given twice");
	parse_bad("server 127.0.0.1\ndatabase -1\n", ":2: database");
	parse_bad("server 127.0.0.1\ndatabase 1x\n", ":2: database");
	parse_bad("server 127.0.0.1\npool 0\n", ":2: pool");
	parse_bad("server 127.0.0.1\npool 33\n", ":2: pool");
	parse_bad("server 127.0.0.1\ntimeout 10ms\n", ":2: timeout");
	parse_bad("server 127.0.0.1\ntimeout 6m\n", ":2: timeout");
	parse_bad("server 127.0.0.1\ntimeout 5h\n", ":2: timeout");
	parse_bad("server 127.0.0.1\nquery_alias GET alias\n",
	    ":2: query_alias: no %s for the key");
	parse_bad("server 127.0.0.1\nquery_alias GET alias:%d\n",
	    ":2: query_alias: only %s");
	parse_bad("server 127.0.0.1\nquery_alias GET %s\nquery_alias GET "
	    "%s\n", ":3: query_alias given twice");
	parse_bad("server 127.0.0.1\nquery_aliases GET %s\n",
	    "unknown keyword \"query_aliases\"");
	parse_bad("server 127.0.0.1\nquery_alias a b c d e f g h i j k l m "
	    "n o p %s\n", "more than 16 words");
	parse_bad("server 127.0.0.1\nquery_alias GET a\001%s\n",
	    ":2: control character");
	parse_bad("server /a/very/long/path/to/a/socket/that/does/not/fit/"
	    "in/sun_path/at/all/because/it/is/longer/than/one/hundred/and/"
	    "eight/bytes\n", "socket path too long");
}

static void
test_conf_nul(void **state)
{
	struct redis_conf	rc;
	static const char	text[] = "server 127.0.0.1\0\nquery_alias "
				    "GET %s\n";
	char			err[256] = "";

	(void)state;
	assert_int_equal(redis_conf_parse("/etc/r.conf", text,
	    sizeof(text) - 1, &rc, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
}

static void
test_expand(void **state)
{
	struct redis_conf	 rc;
	char			*argv[REDIS_WORDS_MAX];
	size_t			 argvlen[REDIS_WORDS_MAX];
	const char		*key = "a b\r\n\"%s\" SET x";

	(void)state;
	parse_ok(good_conf, &rc);
	assert_int_equal(redis_command_expand(rc.query[TS_ALIAS], key, argv,
	    argvlen), 0);
	/* the key, whatever it holds, inside one argument */
	assert_string_equal(argv[0], "GET");
	assert_string_equal(argv[1], "alias:a b\r\n\"%s\" SET x");
	assert_int_equal(argvlen[1], strlen(argv[1]));
	redis_command_free_argv(2, argv);

	assert_int_equal(redis_command_expand(rc.query[TS_CREDENTIALS],
	    "bob", argv, argvlen), 0);
	assert_string_equal(argv[1], "pw:%");
	assert_string_equal(argv[2], "bob");
	redis_command_free_argv(3, argv);
	redis_conf_free(&rc);

	/* several keys in one word */
	parse_ok("server 127.0.0.1\nquery_string GET %s:%s:%%s\n", &rc);
	assert_int_equal(redis_command_expand(rc.query[TS_STRING], "kk",
	    argv, argvlen), 0);
	assert_string_equal(argv[1], "kk:kk:%s");
	redis_command_free_argv(2, argv);
	redis_conf_free(&rc);
}

/* replies built by hand, as hiredis hands them over */
static redisReply *
reply(int type, const char *str, long long integer)
{
	redisReply	*r;

	r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->type = type;
	r->integer = integer;
	if (str != NULL) {
		r->str = strdup(str);
		r->len = strlen(str);
	}
	return r;
}

static redisReply *
array(size_t n, ...)
{
	redisReply	*r = reply(REDIS_REPLY_ARRAY, NULL, 0);
	va_list		 ap;
	size_t		 i;

	r->elements = n;
	r->element = calloc(n + 1, sizeof(*r->element));
	va_start(ap, n);
	for (i = 0; i < n; i++)
		r->element[i] = va_arg(ap, redisReply *);
	va_end(ap);
	return r;
}

static int
answer(redisReply *r, enum table_service s, char **value)
{
	char	why[256] = "";
	int	rc;

	rc = redis_reply_answer(r, s, value, why, sizeof(why));
	if (rc == TABLE_ERROR && why[0] == '\0')
		fail_msg("an error without a reason");
	freeReplyObject(r);
	return rc;
}

static void
test_replies(void **state)
{
	char		*v;
	redisReply	*r;

	(void)state;
	assert_int_equal(answer(reply(REDIS_REPLY_NIL, NULL, 0), TS_ALIAS,
	    &v), TABLE_NOTFOUND);
	assert_null(v);
	assert_int_equal(answer(reply(REDIS_REPLY_STRING, "a, b", 0),
	    TS_ALIAS, &v), TABLE_FOUND);
	assert_string_equal(v, "a, b");
	free(v);
	assert_int_equal(answer(reply(REDIS_REPLY_STRING, "", 0), TS_DOMAIN,
	    &v), TABLE_FOUND);
	assert_string_equal(v, "");
	free(v);
	assert_int_equal(answer(reply(REDIS_REPLY_STATUS, "OK", 0), TS_STRING,
	    &v), TABLE_FOUND);
	free(v);
	/* SISMEMBER, EXISTS */
	assert_int_equal(answer(reply(REDIS_REPLY_INTEGER, NULL, 0),
	    TS_DOMAIN, &v), TABLE_NOTFOUND);
	assert_int_equal(answer(reply(REDIS_REPLY_INTEGER, NULL, 1),
	    TS_DOMAIN, &v), TABLE_FOUND);
	assert_string_equal(v, "1");
	free(v);
	assert_int_equal(answer(reply(REDIS_REPLY_ERROR, "WRONGTYPE no", 0),
	    TS_ALIAS, &v), TABLE_ERROR);
	assert_null(v);

	/* SMEMBERS: joined with ", "; an empty list or nils: not found */
	assert_int_equal(answer(array(3, reply(REDIS_REPLY_STRING, "a", 0),
	    reply(REDIS_REPLY_NIL, NULL, 0), reply(REDIS_REPLY_STRING, "|cmd",
	    0)), TS_ALIAS, &v), TABLE_FOUND);
	assert_string_equal(v, "a, |cmd");
	free(v);
	assert_int_equal(answer(array(0), TS_ALIAS, &v), TABLE_NOTFOUND);
	assert_int_equal(answer(array(3, reply(REDIS_REPLY_NIL, NULL, 0),
	    reply(REDIS_REPLY_NIL, NULL, 0), reply(REDIS_REPLY_NIL, NULL, 0)),
	    TS_USERINFO, &v), TABLE_NOTFOUND);
	/* HMGET uid gid home: "uid:gid:/home" */
	assert_int_equal(answer(array(3, reply(REDIS_REPLY_STRING, "1001",
	    0), reply(REDIS_REPLY_INTEGER, NULL, 1002),
	    reply(REDIS_REPLY_STRING, "/var/vmail", 0)), TS_USERINFO, &v),
	    TABLE_FOUND);
	assert_string_equal(v, "1001:1002:/var/vmail");
	free(v);
	/* a nested list, an error inside: errors */
	assert_int_equal(answer(array(1, array(1, reply(REDIS_REPLY_STRING,
	    "x", 0))), TS_ALIAS, &v), TABLE_ERROR);
	assert_int_equal(answer(array(2, reply(REDIS_REPLY_STRING, "x", 0),
	    reply(REDIS_REPLY_ERROR, "ERR", 0)), TS_ALIAS, &v), TABLE_ERROR);

	/* a NUL inside a string is no value */
	r = reply(REDIS_REPLY_STRING, "ab", 0);
	r->str[1] = '\0';
	assert_int_equal(answer(r, TS_ALIAS, &v), TABLE_ERROR);
	assert_null(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_good),
		cmocka_unit_test(test_conf_bad),
		cmocka_unit_test(test_conf_nul),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
