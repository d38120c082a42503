/*
 * test_ldap_conf.c -- the ldap: table's configuration file (its
 * keywords, defaults, and every refusal with its file and line) and the
 * RFC 4515 escaping of the key in a search filter (table/ldap_conf.c).
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

#include "ldap_conf.h"
#include "table.h"

#define GOOD \
	"# the directory\n" \
	"url ldap://127.0.0.1:389\n" \
	"  username cn=posthaste, dc=example,dc=org  \n" \
	"password s3cret with spaces # not a comment\n" \
	"basedn dc=example,dc=org\n" \
	"\n" \
	"alias_filter (&(objectClass=inetOrgPerson)(mail=%s))\n" \
	"alias_attributes maildrop\n" \
	"userinfo_filter (uid=%s)\n" \
	"userinfo_attributes uidNumber gidNumber homeDirectory\n" \
	"domain_filter (associatedDomain=%s)\r\n" \
	"pool 4\n" \
	"timeout 2s\n"

static struct ldap_conf	conf;

static void
parse_ok(const char *text)
{
	char	err[512] = "";

	if (ldap_conf_parse(text, strlen(text), "/etc/t.conf", &conf, err,
	    sizeof(err)) != 0)
		fail_msg("refused: %s\n%s", err, text);
}

static void
parse_bad(const char *text, const char *where, const char *why)
{
	char	err[512] = "";

	if (ldap_conf_parse(text, strlen(text), "/etc/t.conf", &conf, err,
	    sizeof(err)) != -1)
		fail_msg("accepted:\n%s", text);
	if (strncmp(err, where, strlen(where)) != 0 ||
	    strstr(err, why) == NULL)
		fail_msg("\"%s\" is not \"%s ... %s\"", err, where, why);
	/* nothing is left behind, the password least of all */
	assert_int_equal(conf.password[0], '\0');
}

static void
test_good(void **state)
{
	(void)state;
	parse_ok(GOOD);
	assert_string_equal(conf.url, "ldap://127.0.0.1:389");
	assert_string_equal(conf.binddn, "cn=posthaste, dc=example,dc=org");
	assert_string_equal(conf.password, "s3cret with spaces # not a comment");
	assert_string_equal(conf.basedn, "dc=example,dc=org");
	assert_string_equal(conf.filter[TS_ALIAS],
	    "(&(objectClass=inetOrgPerson)(mail=%s))");
	assert_int_equal(conf.nattrs[TS_ALIAS], 1);
	assert_string_equal(conf.attrs[TS_ALIAS][0], "maildrop");
	assert_int_equal(conf.nattrs[TS_USERINFO], 3);
	assert_string_equal(conf.attrs[TS_USERINFO][2], "homeDirectory");
	assert_string_equal(conf.filter[TS_DOMAIN], "(associatedDomain=%s)");
	assert_int_equal(conf.nattrs[TS_DOMAIN], 0);
	assert_string_equal(conf.filter[TS_CREDENTIALS], "");
	assert_int_equal(conf.pool, 4);
	assert_int_equal(conf.timeout, 2);
	ldap_conf_clear(&conf);
	assert_int_equal(conf.password[0], '\0');
}

static void
test_defaults(void **state)
{
	(void)state;
	parse_ok("url ldapi://%2Frun%2Fslapd%2Fldapi\nbasedn o=x\n"
	    "credentials_filter (uid=%s)\ncredentials_attributes userPassword");
	assert_int_equal(conf.pool, LDAP_CONF_POOL);
	assert_int_equal(conf.timeout, LDAP_CONF_TIMEOUT);
	assert_string_equal(conf.binddn, "");
	parse_ok("url ldap://[2001:db8::1]:10389/\nbasedn o=x\n"
	    "mailaddrmap_filter (&(uid=%s)(x=100%%))\n"
	    "mailaddrmap_attributes mail\n"
	    "netaddr_filter (ipNetworkNumber=%s)\n"
	    "string_filter (cn=%s)\nstring_attributes description\n"
	    "mailaddr_filter (mail=%s)\n");
	assert_int_equal(conf.nattrs[TS_STRING], 1);
}

static void
test_refused(void **state)
{
	static const struct {
		const char	*text, *where, *why;
	} bad[] = {
		{ "basedn o=x\nalias_filter (a=%s)\nalias_attributes b\n",
		    "/etc/t.conf:3: ", "no url" },
		{ "url ldap://127.0.0.1\nalias_filter (a=%s)\n"
		    "alias_attributes b\n", "/etc/t.conf:3: ", "no basedn" },
		{ "url ldap://127.0.0.1\nbasedn o=x\n",
		    "/etc/t.conf:2: ", "no SERVICE_filter" },
		{ "url ldap://ldap.example.org\n", "/etc/t.conf:1: ",
		    "not an IP address" },
		{ "url ldaps://127.0.0.1\n", "/etc/t.conf:1: ", "ldaps://" },
		{ "url http://127.0.0.1\n", "/etc/t.conf:1: ", "expected" },
		{ "url ldap://127.0.0.1:0\n", "/etc/t.conf:1: ", "bad port" },
		{ "url ldap://127.0.0.1:65536\n", "/etc/t.conf:1: ",
		    "bad port" },
		{ "url ldap://127.0.0.1/dc=x??sub\n", "/etc/t.conf:1: ",
		    "unexpected" },
		{ "url ldap://[::1\n", "/etc/t.conf:1: ", "]" },
		{ "url ldapi:///run/x\n", "/etc/t.conf:1: ", "%2F" },
		{ "url\n", "/etc/t.conf:1: ", "needs a value" },
		{ "\n\nurl ldap://127.0.0.1\nurl ldap://127.0.0.1\n",
		    "/etc/t.conf:4: ", "twice (first on line 3)" },
		{ "bogus 1\n", "/etc/t.conf:1: ", "unknown keyword" },
		{ "alias_query (a=%s)\n", "/etc/t.conf:1: ",
		    "unknown keyword" },
		{ "aliases_filter (a=%s)\n", "/etc/t.conf:1: ",
		    "unknown keyword" },
		{ "alias_filter a=%s\n", "/etc/t.conf:1: ", "starts with" },
		{ "alias_filter (a=%s))\n", "/etc/t.conf:1: ",
		    "after the filter" },
		{ "alias_filter (a=%s)))\n", "/etc/t.conf:1: ",
		    "after the filter" },
		{ "alias_filter ((a=%s)\n", "/etc/t.conf:1: ", "unbalanced" },
		{ "alias_filter (a=%s)(b=1)\n", "/etc/t.conf:1: ",
		    "after the filter" },
		{ "alias_filter (a=x)\n", "/etc/t.conf:1: ", "no %s" },
		{ "alias_filter (a=%d)\n", "/etc/t.conf:1: ", "%d" },
		{ "alias_filter (a=%s%)\n", "/etc/t.conf:1: ", "only %s" },
		{ "alias_filter (a=%s\t)\n", "/etc/t.conf:1: ", "control" },
		{ "alias_attributes a b\n", "/etc/t.conf:1: ", "" },
		{ "url ldap://127.0.0.1\nbasedn o=x\nalias_filter (a=%s)\n"
		    "alias_attributes a b\n", "/etc/t.conf:4: ",
		    "needs 1 attribute" },
		{ "url ldap://127.0.0.1\nbasedn o=x\nalias_filter (a=%s)\n",
		    "/etc/t.conf:3: ", "alias_attributes" },
		{ "url ldap://127.0.0.1\nbasedn o=x\nuserinfo_filter (a=%s)\n"
		    "userinfo_attributes a b\n", "/etc/t.conf:4: ",
		    "3 attributes" },
		{ "userinfo_attributes a b c d\n", "/etc/t.conf:1: ",
		    "more than 3" },
		{ "url ldap://127.0.0.1\nbasedn o=x\nmailaddr_filter (a=%s)\n"
		    "mailaddr_attributes mail\nstring_attributes x\n",
		    "/etc/t.conf:5: ", "string_attributes without" },
		{ "alias_attributes (x)\n", "/etc/t.conf:1: ",
		    "not an attribute" },
		{ "url ldap://127.0.0.1\nbasedn o=x\nusername cn=a\n"
		    "domain_filter (a=%s)\n", "/etc/t.conf:3: ",
		    "without password" },
		{ "url ldap://127.0.0.1\nbasedn o=x\npassword p\n"
		    "domain_filter (a=%s)\n", "/etc/t.conf:3: ",
		    "without username" },
		{ "pool 0\n", "/etc/t.conf:1: ", "from 1 to 16" },
		{ "pool 17\n", "/etc/t.conf:1: ", "from 1 to 16" },
		{ "pool two\n", "/etc/t.conf:1: ", "number" },
		{ "timeout 0\n", "/etc/t.conf:1: ", "duration" },
		{ "timeout 2m\n", "/etc/t.conf:1: ", "duration" },
		{ "timeout 11\n", "/etc/t.conf:1: ", "1s to 10s" },
		{ "timeout soon\n", "/etc/t.conf:1: ", "duration" },
		{ "password secret\n#\nbogus\n", "/etc/t.conf:3: ",
		    "unknown keyword" },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i].text, bad[i].where, bad[i].why);
}

static void
test_long_and_nul(void **state)
{
	char	*text, err[256];
	size_t	 n = 8000;

	(void)state;
	if ((text = malloc(n + 1)) == NULL)
		fail();
	memset(text, 'a', n);
	text[n] = '\0';
	parse_bad(text, "/etc/t.conf:1: ", "longer than");
	memcpy(text, "url ldap://127.0.0.1\0\nbasedn o=x\n", 33);
	assert_int_equal(ldap_conf_parse(text, 33, "/f", &conf, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "/f:1: NUL byte");
	free(text);
}

static void
test_escape(void **state)
{
	static const struct {
		const char	*key, *escaped;
	} cases[] = {
		{ "alice@example.org", "alice@example.org" },
		{ "*", "\\2a" },
		{ "*)(uid=*", "\\2a\\29\\28uid=\\2a" },
		{ "a\\b", "a\\5cb" },
		{ "(x)", "\\28x\\29" },
		{ "caf\xc3\xa9", "caf\\c3\\a9" },
		{ "tab\there", "tab\\09here" },
		{ "del\x7f", "del\\7f" },
		{ "", "" },
	};
	char	out[64];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(ldap_filter_escape(cases[i].key, out,
		    sizeof(out)), (int)strlen(cases[i].escaped));
		assert_string_equal(out, cases[i].escaped);
	}
	/* exactly enough room, then one byte less */
	assert_int_equal(ldap_filter_escape("a*", out, 5), 4);
	assert_int_equal(ldap_filter_escape("a*", out, 4), -1);
	assert_int_equal(ldap_filter_escape("ab", out, 2), -1);
}

static void
test_expand(void **state)
{
	char	out[128];

	(void)state;
	assert_int_equal(ldap_filter_expand("(&(a=%s)(b=%s)(c=100%%))",
	    "x*)(y", out, sizeof(out)), 0);
	assert_string_equal(out,
	    "(&(a=x\\2a\\29\\28y)(b=x\\2a\\29\\28y)(c=100%))");
	/* "(mail=a@b)" and its NUL: 11 bytes */
	assert_int_equal(ldap_filter_expand("(mail=%s)", "a@b", out, 11), 0);
	assert_string_equal(out, "(mail=a@b)");
	assert_int_equal(ldap_filter_expand("(mail=%s)", "a@b", out, 10),
	    -1);
	assert_int_equal(ldap_filter_expand("(mail=%s)", "a*", out, 11),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_long_and_nul),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_expand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
