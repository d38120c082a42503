/*
 * test_table_remote.c -- the shared tables' cache and parked requests
 * (table/remote.c), and their grammar (config/parse.c).
 *
 * The driver here is the test's own: it answers from a small list on
 * the event loop's next turn, counts the questions, and can hold an
 * answer back or fail.  It stands in for the "proc" scheme (this file
 * defines table_driver_proc, so the real one is not linked in); the
 * real drivers are tested against real servers by the integration
 * tests (test_table_*.py).
 */
#include <sys/types.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "backend.h"
#include "config.h"
#include "proc.h"
#include "table.h"

static struct event_base	*eb;
static int			 nqueries;
static int			 hold;		/* keep answers back */
static int			 failing;	/* answer TABLE_ERROR */
static struct table_query	*held[8];
static int			 nheld;
static char			 tdir[] = "/tmp/test_table_remote.XXXXXX";

/* the "database": key -> value */
static struct {
	const char	*key;
	const char	*value;
} rows[8];

static void
fake_answer(struct table_query *q)
{
	size_t	i;

	if (failing) {
		table_query_done(q, TABLE_ERROR, NULL);
		return;
	}
	for (i = 0; i < sizeof(rows) / sizeof(*rows); i++)
		if (rows[i].key != NULL && strcmp(rows[i].key, q->key) == 0) {
			table_query_done(q, TABLE_FOUND, rows[i].value);
			return;
		}
	table_query_done(q, TABLE_NOTFOUND, NULL);
}

static void
fake_turn(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	fake_answer(arg);
}

static void *
fake_open(const struct table *t, char *err, size_t errlen)
{
	if (strcmp(t->path, "/bad") == 0) {
		snprintf(err, errlen, "%s:1: refused by the test", t->path);
		return NULL;
	}
	return (void *)1;
}

static int
fake_serves(void *h, enum table_service s)
{
	(void)h;
	return s != TS_USERINFO;
}

static void
fake_query(void *h, struct table_query *q)
{
	struct timeval	now = { 0, 0 };

	(void)h;
	nqueries++;
	if (hold) {
		assert_true(nheld < 8);
		held[nheld++] = q;
		return;
	}
	assert_int_equal(event_base_once(eb, -1, EV_TIMEOUT, fake_turn, q,
	    &now), 0);
}

static void
fake_close(void *h)
{
	(void)h;
}

const struct table_driver table_driver_proc = {
	.scheme = "proc",
	.has_file = 0,
	.open = fake_open,
	.serves = fake_serves,
	.query = fake_query,
	.close = fake_close,
};

/* one request: asks `key' until it is answered */
struct req {
	struct table_stall	 stall;
	struct table		*t;
	enum table_service	 service;
	const char		*key;
	int			 runs;
	int			 done;
	int			 rc;
	char			*val;
};

static void
req_run(void *arg)
{
	struct req	*r = arg;

	r->runs++;
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
loop(void)
{
	int	i;

	for (i = 0; i < 10; i++)
		event_base_loop(eb, EVLOOP_NONBLOCK);
}

static void
ask(struct req *r, struct table *t, enum table_service s, const char *key)
{
	free(r->val);
	memset(r, 0, sizeof(*r));
	r->t = t;
	r->service = s;
	r->key = key;
	req_run(r);
	loop();
}

static struct smtpd_config *
parse_text(const char *text, char *err, size_t errlen)
{
	char	path[256];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/smtpd.conf", tdir);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	return config_parse(path, err, errlen);
}

static int
setup(void **state)
{
	char	err[1024] = "";

	(void)state;
	assert_non_null(mkdtemp(tdir));
	conf = parse_text(
	    "table users proc:/usr/bin/true cache-ttl 60s negative-ttl 1h\n"
	    "table once proc:/usr/bin/true cache-ttl 0\n"
	    "listen on 127.0.0.1\n"
	    "action \"local\" maildir virtual <users>\n"
	    "match from any for domain example.org action \"local\"\n",
	    err, sizeof(err));
	if (conf == NULL)
		fail_msg("%s", err);
	assert_non_null(eb = event_base_new());
	table_remote_start(eb);
	rows[0].key = "alice@example.org";
	rows[0].value = "alice";
	rows[1].key = "list@example.org";
	rows[1].value = "a@example.org, b@example.org";
	return 0;
}

static int
teardown(void **state)
{
	char	cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tdir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

static void
test_grammar(void **state)
{
	static const struct {
		const char	*line;
		const char	*why;
	} bad[] = {
		{ "table t pgsql:relative.conf\n", "path must be absolute" },
		{ "table t socketmap:\n", "unix:/path:NAME" },
		{ "table t proc:\n", "a program's path" },
		{ "table t redis:/x cache-ttl forever\n", "cache-ttl" },
		{ "table t ftp:/x\n", "unknown table source" },
	};
	struct smtpd_config	*c;
	struct table		*t;
	char			 err[1024];
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		if ((c = parse_text(bad[i].line, err, sizeof(err))) != NULL)
			fail_msg("accepted: %s", bad[i].line);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("%s: \"%s\" does not say \"%s\"",
			    bad[i].line, err, bad[i].why);
	}
	c = parse_text("table t socketmap:inet:127.0.0.1:9000:users "
	    "negative-ttl 5s\n", err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	t = config_find_table(c, "t");
	assert_non_null(t);
	assert_int_equal(t->backend, TABLE_REMOTE);
	assert_string_equal(t->scheme, "socketmap");
	assert_string_equal(t->path, "inet:127.0.0.1:9000:users");
	assert_int_equal(t->cache_ttl, TABLE_CACHE_TTL);
	assert_int_equal(t->negative_ttl, 5);
	config_free(c);
}

/* the parent's check: the driver's error with the table's line */
static void
test_load_check(void **state)
{
	struct smtpd_config	*c;
	char			 err[1024], *buf = NULL;
	size_t			 len = 0;
	FILE			*out;

	(void)state;
	c = parse_text("\n\ntable t proc:/bad\n", err, sizeof(err));
	assert_non_null(c);
	assert_non_null(out = open_memstream(&buf, &len));
	assert_int_equal(table_remote_load(c, out), 1);
	fclose(out);
	assert_non_null(strstr(buf, "table t (line 3): /bad:1: refused"));
	free(buf);
	config_free(c);
	/* a relay's credentials are read once, by the mta: refused */
	c = parse_text("table creds proc:/usr/bin/true\n"
	    "action \"r\" relay host smtp+tls://me@mx.example.org "
	    "auth <creds>\n", err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	buf = NULL;
	assert_non_null(out = open_memstream(&buf, &len));
	assert_int_equal(table_remote_load(c, out), 1);
	fclose(out);
	assert_non_null(strstr(buf, "relay's credentials"));
	free(buf);
	config_free(c);
}

static void
test_miss_then_cached(void **state)
{
	struct table	*t = config_find_table(conf, "users");
	struct req	 r = { 0 };
	int		 n;

	(void)state;
	n = nqueries;
	ask(&r, t, TS_ALIAS, "Alice@Example.ORG");
	assert_true(r.done);
	assert_int_equal(r.runs, 2);	/* parked once, then answered */
	assert_int_equal(r.rc, TABLE_FOUND);
	assert_string_equal(r.val, "alice");
	assert_int_equal(nqueries, n + 1);
	/* cached: answered in the first run, no question */
	ask(&r, t, TS_ALIAS, "alice@example.org");
	assert_int_equal(r.runs, 1);
	assert_string_equal(r.val, "alice");
	assert_int_equal(nqueries, n + 1);
	/* another service is another question */
	ask(&r, t, TS_MAILADDRMAP, "alice@example.org");
	assert_int_equal(r.runs, 2);
	assert_int_equal(nqueries, n + 2);
	/* not found is cached too (negative-ttl) */
	ask(&r, t, TS_ALIAS, "nobody@example.org");
	assert_int_equal(r.rc, TABLE_NOTFOUND);
	ask(&r, t, TS_ALIAS, "nobody@example.org");
	assert_int_equal(r.runs, 1);
	assert_int_equal(r.rc, TABLE_NOTFOUND);
	assert_int_equal(nqueries, n + 3);
	free(r.val);
}

/* cache-ttl 0: the answer serves the request that waited, then goes */
static void
test_ttl_zero(void **state)
{
	struct table	*t = config_find_table(conf, "once");
	struct req	 r = { 0 };
	int		 n;

	(void)state;
	n = nqueries;
	ask(&r, t, TS_ALIAS, "list@example.org");
	assert_true(r.done);
	assert_string_equal(r.val, "a@example.org, b@example.org");
	ask(&r, t, TS_ALIAS, "list@example.org");
	assert_int_equal(r.runs, 2);
	assert_int_equal(nqueries, n + 2);
	free(r.val);
}

/* two requests, one question; a failure is seen once, not cached */
static void
test_shared_and_errors(void **state)
{
	struct table	*t = config_find_table(conf, "users");
	struct req	 a = { 0 }, b = { 0 };
	int		 n;

	(void)state;
	n = nqueries;
	hold = 1;
	ask(&a, t, TS_DOMAIN, "example.org");
	ask(&b, t, TS_DOMAIN, "example.org");
	assert_false(a.done);
	assert_false(b.done);
	assert_int_equal(nqueries, n + 1);
	assert_int_equal(nheld, 1);
	hold = 0;
	failing = 1;
	fake_answer(held[--nheld]);
	loop();
	assert_true(a.done && b.done);
	assert_int_equal(a.rc, TABLE_ERROR);
	assert_int_equal(b.rc, TABLE_ERROR);
	/* the next request asks again, and the server is back */
	failing = 0;
	ask(&a, t, TS_DOMAIN, "example.org");
	assert_int_equal(nqueries, n + 2);
	assert_int_equal(a.rc, TABLE_NOTFOUND);
	/* a service the configuration has no query for: an error */
	ask(&a, t, TS_USERINFO, "alice");
	assert_true(a.done);
	assert_int_equal(a.rc, TABLE_ERROR);
	free(a.val);
	free(b.val);
}

/* smtpctl update table: the next question goes to the server */
static void
test_flush(void **state)
{
	struct table	*t = config_find_table(conf, "users");
	struct req	 r = { 0 };
	int		 n;

	(void)state;
	ask(&r, t, TS_STRING, "alice@example.org");
	n = nqueries;
	ask(&r, t, TS_STRING, "alice@example.org");
	assert_int_equal(nqueries, n);
	assert_int_equal(table_reload("users"), 0);
	ask(&r, t, TS_STRING, "alice@example.org");
	assert_int_equal(nqueries, n + 1);
	assert_int_equal(r.rc, TABLE_FOUND);
	free(r.val);
}

/* a key with control characters is never asked */
static void
test_bad_keys(void **state)
{
	struct table	*t = config_find_table(conf, "users");
	struct req	 r = { 0 };
	int		 n = nqueries;

	(void)state;
	ask(&r, t, TS_ALIAS, "a\r\nb@example.org");
	assert_int_equal(r.rc, TABLE_NOTFOUND);
	assert_int_equal(r.runs, 1);
	assert_int_equal(nqueries, n);
	free(r.val);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_load_check),
		cmocka_unit_test(test_miss_then_cached),
		cmocka_unit_test(test_ttl_zero),
		cmocka_unit_test(test_shared_and_errors),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_bad_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
