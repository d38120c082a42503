/*
 * test_pgsql_conf.c -- the pgsql: table's configuration file
 * (table/pgsql_conf.c: keywords, queries with $1, pool, timeout, the
 * conninfo checks that keep libpq from blocking or reading files in the
 * sandbox, errors as FILE:LINE) and what a query's rows mean for each
 * service (pgsql_rows_value()); the driver's open() on a table.
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "config.h"
#include "pgsql_conf.h"
#include "table.h"

#define CONNINFO	"conninfo host=127.0.0.1 port=5432 dbname=mail " \
			"user=u password=p\n"

static void
parse_ok(const char *text, struct pgsql_conf *pc)
{
	char	err[512] = "";

	if (pgsql_conf_parse(pc, text, strlen(text), "/etc/t.conf", err,
	    sizeof(err)) != 0)
		fail_msg("\"%s\": %s", text, err);
}

static void
parse_bad(const char *text, const char *why)
{
	struct pgsql_conf	pc;
	char			err[512] = "";

	if (pgsql_conf_parse(&pc, text, strlen(text), "/etc/t.conf", err,
	    sizeof(err)) != -1)
		fail_msg("\"%s\" was accepted", text);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": \"%s\" does not say \"%s\"", text, err, why);
}

static const char *
param(const struct pgsql_conf *pc, const char *kw)
{
	int	i;

	for (i = 0; pc->keywords[i] != NULL; i++)
		if (strcmp(pc->keywords[i], kw) == 0)
			return pc->values[i];
	return NULL;
}

static void
test_full(void **state)
{
	struct pgsql_conf	pc;
	const char		*text =
	    "# a comment\n"
	    "\n"
	    "   \t\n"
	    "conninfo host=127.0.0.1 port=5432 dbname=mail user=u "
	    "password='p#ss w'\n"
	    "query_alias SELECT dest FROM aliases WHERE name = $1\n"
	    "query_domain SELECT 1 FROM domains WHERE name = $1\r\n"
	    "query_credentials SELECT hash FROM users WHERE name = $1\n"
	    "query_userinfo SELECT uid, gid, home FROM users WHERE name=$1\n"
	    "query_netaddr SELECT 1 FROM nets WHERE $1::inet <<= net\n"
	    "query_mailaddr SELECT 1 FROM s WHERE a = $1 OR d = $1\n"
	    "query_mailaddrmap SELECT a FROM m WHERE u = $1\n"
	    "query_string SELECT 1 FROM l WHERE k = $1   \n"
	    "  pool 4\n"
	    "timeout 15\n";

	(void)state;
	parse_ok(text, &pc);
	assert_int_equal(pc.pool, 4);
	assert_int_equal(pc.timeout, 15);
	assert_string_equal(pc.query[TS_ALIAS],
	    "SELECT dest FROM aliases WHERE name = $1");
	assert_string_equal(pc.query[TS_DOMAIN],
	    "SELECT 1 FROM domains WHERE name = $1");
	assert_string_equal(pc.query[TS_STRING],
	    "SELECT 1 FROM l WHERE k = $1");
	assert_non_null(pc.query[TS_USERINFO]);
	assert_non_null(pc.query[TS_NETADDR]);
	assert_non_null(pc.query[TS_MAILADDR]);
	assert_non_null(pc.query[TS_MAILADDRMAP]);
	assert_non_null(pc.query[TS_CREDENTIALS]);
	assert_string_equal(param(&pc, "host"), "127.0.0.1");
	assert_string_equal(param(&pc, "password"), "p#ss w");
	assert_string_equal(param(&pc, "dbname"), "mail");
	/* our defaults */
	assert_string_equal(param(&pc, "gssencmode"), "disable");
	assert_string_equal(param(&pc, "application_name"), "posthaste");
	assert_null(param(&pc, "sslmode"));
	pgsql_conf_free(&pc);
}

static void
test_defaults(void **state)
{
	struct pgsql_conf	pc;

	(void)state;
	parse_ok(CONNINFO "query_domain SELECT 1 WHERE $1 = 'x'", &pc);
	assert_int_equal(pc.pool, PGSQL_POOL_DEFAULT);
	assert_int_equal(pc.timeout, PGSQL_TIMEOUT_DEFAULT);
	assert_null(pc.query[TS_ALIAS]);
	pgsql_conf_free(&pc);

	/* the user's gssencmode wins over ours; hostaddr with a name */
	parse_ok("conninfo host=db.example.test hostaddr=192.0.2.1 user=u "
	    "gssencmode=prefer sslmode=require\n"
	    "query_alias SELECT d FROM a WHERE k = $1\n", &pc);
	assert_string_equal(param(&pc, "gssencmode"), "prefer");
	assert_string_equal(param(&pc, "sslmode"), "require");
	pgsql_conf_free(&pc);

	/* a unix socket directory, IPv6, several hosts */
	parse_ok("conninfo host=/run/postgresql user=u\n"
	    "query_alias SELECT d FROM a WHERE k = $1\n", &pc);
	pgsql_conf_free(&pc);
	parse_ok("conninfo host=::1,127.0.0.1 user=u\n"
	    "query_alias SELECT d FROM a WHERE k = $1\n", &pc);
	pgsql_conf_free(&pc);
	/* a URI */
	parse_ok("conninfo postgresql://u:p@127.0.0.1:5432/mail\n"
	    "query_alias SELECT d FROM a WHERE k = $1\n", &pc);
	assert_string_equal(param(&pc, "user"), "u");
	assert_string_equal(param(&pc, "dbname"), "mail");
	pgsql_conf_free(&pc);
}

static void
test_errors(void **state)
{
	(void)state;
	parse_bad(CONNINFO "query_alias SELECT 1\n",
	    "/etc/t.conf:2: query_alias: no $1");
	parse_bad(CONNINFO "query_alias SELECT $1, $2\n",
	    "/etc/t.conf:2: query_alias: only $1");
	parse_bad(CONNINFO "query_alias SELECT $10\n", "only $1");
	parse_bad(CONNINFO "\n# c\nquery_alias SELECT $1\n"
	    "query_alias SELECT $1\n", "/etc/t.conf:5: duplicate query_alias");
	parse_bad(CONNINFO CONNINFO "query_alias SELECT $1\n",
	    "/etc/t.conf:2: duplicate conninfo");
	parse_bad(CONNINFO "query_alias SELECT $1\nquery_user SELECT $1\n",
	    "/etc/t.conf:3: unknown keyword \"query_user\"");
	parse_bad(CONNINFO "query_alias SELECT $1\nfoo\001 bar\n",
	    "unknown keyword \"foo?\"");
	parse_bad(CONNINFO "query_alias\n", "/etc/t.conf:2: query_alias: "
	    "expected a value");
	parse_bad(CONNINFO "query_alias SELECT $1\npool 0\n",
	    "/etc/t.conf:3: pool: expected a number from 1 to 16");
	parse_bad(CONNINFO "query_alias SELECT $1\npool 17\n", "pool");
	parse_bad(CONNINFO "query_alias SELECT $1\npool 2x\n", "pool");
	parse_bad(CONNINFO "query_alias SELECT $1\npool 2\npool 3\n",
	    "/etc/t.conf:4: duplicate pool");
	parse_bad(CONNINFO "query_alias SELECT $1\ntimeout 0\n",
	    "timeout: expected a duration from 1 to 15 seconds");
	parse_bad(CONNINFO "query_alias SELECT $1\ntimeout 16s\n", "timeout");
	parse_bad(CONNINFO "query_alias SELECT $1\ntimeout 5s\ntimeout 5s\n",
	    "duplicate timeout");
	parse_bad("query_alias SELECT $1\n", "/etc/t.conf: no conninfo line");
	parse_bad(CONNINFO, "/etc/t.conf: no query_* line");
	parse_bad("", "no conninfo");
	/* conninfo: libpq's own errors, and ours */
	parse_bad("conninfo host=127.0.0.1 bogus=1 user=u\n",
	    "/etc/t.conf:1: conninfo: invalid connection option \"bogus\"");
	parse_bad("conninfo host=db.example.test user=u\n",
	    "/etc/t.conf:1: conninfo: host= must be a numeric address");
	parse_bad("conninfo host=127.0.0.1,localhost user=u\n",
	    "host= must be a numeric address");
	parse_bad("conninfo hostaddr=db.example.test user=u\n",
	    "hostaddr= must be numeric");
	parse_bad("conninfo host=127.0.0.1 dbname=mail\n",
	    "conninfo: user= is required");
	parse_bad("conninfo service=mail user=u\n", "service= reads");
	parse_bad("conninfo host=127.0.0.1 user=u sslmode=verify-full\n",
	    "sslmode=verify-full needs a CA file");
	parse_bad("conninfo host=127.0.0.1 user=u sslrootcert=/x\n",
	    "sslrootcert= certificate files");
	parse_bad("conninfo host=127.0.0.1 user=u password='unterminated\n",
	    "/etc/t.conf:1: conninfo: ");
}

static void
test_limits(void **state)
{
	char	*big;
	size_t	 n = PGSQL_LINE_MAX + 100;

	(void)state;
	if ((big = malloc(n + 128)) == NULL) {
		fail();
		return;
	}
	snprintf(big, 128, "%squery_alias SELECT $1 ", CONNINFO);
	memset(big + strlen(big), 'x', n - strlen(big));
	big[n] = '\0';
	parse_bad(big, "/etc/t.conf:2: line longer than");
	free(big);
	/* a NUL inside the text */
	{
		struct pgsql_conf	pc;
		char			err[256] = "";
		const char		text[] = CONNINFO
					    "query_alias SELECT $1\0 x\n";

		assert_int_equal(pgsql_conf_parse(&pc, text, sizeof(text) - 1,
		    "/f", err, sizeof(err)), -1);
		assert_non_null(strstr(err, "/f:2: NUL byte"));
	}
}

static int
rows(enum table_service s, const char *const *cells, int nrows, int ncols,
    char **value)
{
	char	err[256] = "";
	int	r;

	r = pgsql_rows_value(s, cells, nrows, ncols, value, err, sizeof(err));
	if (r == TABLE_ERROR)
		assert_true(err[0] != '\0');
	return r;
}

static void
test_rows(void **state)
{
	const char	*one[] = { "x" };
	const char	*three[] = { "a@example.test", "|/usr/bin/prog",
			    "b" };
	const char	*holes[] = { NULL, "", "c" };
	const char	*nulls[] = { NULL, "" };
	const char	*ui[] = { "1001", "1002", "/var/vmail/u" };
	const char	*ui_bad[] = { "10x", "1002", "/var/vmail/u" };
	const char	*ui_rel[] = { "1", "2", "vmail" };
	const char	*ui_null[] = { "1", NULL, "/h" };
	const char	*two[] = { "$6$abc", "$6$def" };
	char		*v;

	(void)state;
	/* membership: any row, the value is "" */
	assert_int_equal(rows(TS_DOMAIN, one, 1, 1, &v), TABLE_FOUND);
	assert_string_equal(v, "");
	free(v);
	assert_int_equal(rows(TS_NETADDR, NULL, 0, 1, &v), TABLE_NOTFOUND);
	assert_null(v);
	assert_int_equal(rows(TS_MAILADDR, nulls, 2, 1, &v), TABLE_FOUND);
	free(v);
	assert_int_equal(rows(TS_STRING, three, 1, 3, &v), TABLE_FOUND);
	free(v);

	/* alias and mailaddrmap: the rows joined */
	assert_int_equal(rows(TS_ALIAS, three, 3, 1, &v), TABLE_FOUND);
	assert_string_equal(v, "a@example.test, |/usr/bin/prog, b");
	free(v);
	assert_int_equal(rows(TS_MAILADDRMAP, holes, 3, 1, &v), TABLE_FOUND);
	assert_string_equal(v, "c");
	free(v);
	assert_int_equal(rows(TS_ALIAS, nulls, 2, 1, &v), TABLE_NOTFOUND);
	assert_int_equal(rows(TS_ALIAS, NULL, 0, 1, &v), TABLE_NOTFOUND);
	assert_int_equal(rows(TS_ALIAS, three, 1, 3, &v), TABLE_ERROR);
	assert_null(v);

	/* credentials: one hash */
	assert_int_equal(rows(TS_CREDENTIALS, two, 1, 1, &v), TABLE_FOUND);
	assert_string_equal(v, "$6$abc");
	free(v);
	assert_int_equal(rows(TS_CREDENTIALS, two, 2, 1, &v), TABLE_ERROR);
	assert_int_equal(rows(TS_CREDENTIALS, two, 1, 2, &v), TABLE_ERROR);
	assert_int_equal(rows(TS_CREDENTIALS, nulls, 1, 1, &v),
	    TABLE_NOTFOUND);
	assert_int_equal(rows(TS_CREDENTIALS, NULL, 0, 1, &v),
	    TABLE_NOTFOUND);

	/* userinfo: uid:gid:home */
	assert_int_equal(rows(TS_USERINFO, ui, 1, 3, &v), TABLE_FOUND);
	assert_string_equal(v, "1001:1002:/var/vmail/u");
	free(v);
	assert_int_equal(rows(TS_USERINFO, ui, 1, 2, &v), TABLE_ERROR);
	assert_int_equal(rows(TS_USERINFO, ui_bad, 1, 3, &v), TABLE_ERROR);
	assert_int_equal(rows(TS_USERINFO, ui_rel, 1, 3, &v), TABLE_ERROR);
	assert_int_equal(rows(TS_USERINFO, ui_null, 1, 3, &v), TABLE_ERROR);
	assert_int_equal(rows(TS_USERINFO, NULL, 0, 3, &v), TABLE_NOTFOUND);
}

static void
test_rows_too_long(void **state)
{
	const char	**cells;
	char		 *cell, *v;
	int		  i, n = 40;

	(void)state;
	if ((cell = malloc(TABLE_VALUE_MAX / 20)) == NULL ||
	    (cells = calloc((size_t)n, sizeof(*cells))) == NULL) {
		fail();
		return;
	}
	memset(cell, 'a', TABLE_VALUE_MAX / 20 - 1);
	cell[TABLE_VALUE_MAX / 20 - 1] = '\0';
	for (i = 0; i < n; i++)
		cells[i] = cell;
	assert_int_equal(rows(TS_ALIAS, cells, n, 1, &v), TABLE_ERROR);
	assert_int_equal(rows(TS_ALIAS, cells, 10, 1, &v), TABLE_FOUND);
	assert_int_equal(strlen(v), 10 * strlen(cell) + 9 * 2);
	free(v);
	free(cells);
	free(cell);
}

/* the driver: errors carry the table's file, nothing is connected */
static void
test_driver_open(void **state)
{
	struct table	 t;
	char		 err[512] = "";
	char		 good[] = CONNINFO
			    "query_domain SELECT 1 WHERE $1 = ''\n";
	char		 bad[] = CONNINFO "query_domain SELECT 1\n";
	void		*h;

	(void)state;
	memset(&t, 0, sizeof(t));
	snprintf(t.name, sizeof(t.name), "users");
	snprintf(t.scheme, sizeof(t.scheme), "pgsql");
	snprintf(t.path, sizeof(t.path), "/etc/posthaste/pg.conf");
	t.conf_text = good;
	t.conf_len = strlen(good);
	assert_string_equal(table_driver_pgsql.scheme, "pgsql");
	assert_true(table_driver_pgsql.has_file);
	h = table_driver_pgsql.open(&t, err, sizeof(err));
	assert_non_null(h);
	assert_true(table_driver_pgsql.serves(h, TS_DOMAIN));
	assert_false(table_driver_pgsql.serves(h, TS_ALIAS));
	table_driver_pgsql.close(h);
	t.conf_text = bad;
	t.conf_len = strlen(bad);
	assert_null(table_driver_pgsql.open(&t, err, sizeof(err)));
	assert_string_equal(err, "/etc/posthaste/pg.conf:2: query_domain: "
	    "no $1: the key must be the query's parameter");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_rows_too_long),
		cmocka_unit_test(test_driver_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
