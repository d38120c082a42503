/*
 * test_aliases.c -- alias values (table/aliases.c), the text table
 * format (table/tabfile.c), table lookups (table/table.c) and recipient
 * expansion (lookup/expand.c) on tables written to a temporary
 * directory: lists, includes, loops, depth, duplicates, error:, +detail,
 * owner-LIST, virtual catch-alls.  Expansion resolves system users, so
 * the test uses ones that exist everywhere (root, and "nobody", "daemon"
 * and "bin" are real unprivileged users).
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "aliases.h"
#include "config.h"
#include "log.h"
#include "proc.h"
#include "lookup.h"
#include "tabfile.h"

static char	tdir[64];	/* mkdtemp name, short */

static void
put(const char *name, const char *text)
{
	char	path[PATH_MAX];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

/* ---- item parser ---------------------------------------------------- */

static struct alias_item	items[32];
static int			nitems, nbad;

static int
collect(void *arg, const struct alias_item *it)
{
	if (nitems < 32)
		items[nitems++] = *it;
	return 0;
}

static void
bad(void *arg, const char *item, const char *why)
{
	nbad++;
}

static int
parse(const char *list)
{
	nitems = nbad = 0;
	return alias_parse_list(list, collect, bad, NULL);
}

static void
test_items(void **state)
{
	assert_int_equal(parse("Alice, bob@Example.ORG, /var/log/x, "
	    "\"|/usr/bin/prog -a, -b\", :include:/etc/list, \\carol"), 6);
	assert_int_equal(nbad, 0);
	assert_int_equal(items[0].type, ALIAS_USERNAME);
	assert_string_equal(items[0].value, "alice");
	assert_int_equal(items[1].type, ALIAS_ADDRESS);
	assert_string_equal(items[1].addr.domain, "example.org");
	assert_int_equal(items[2].type, ALIAS_FILENAME);
	assert_string_equal(items[2].value, "/var/log/x");
	assert_int_equal(items[3].type, ALIAS_PROGRAM);
	assert_string_equal(items[3].value, "/usr/bin/prog -a, -b");
	assert_int_equal(items[4].type, ALIAS_INCLUDE);
	assert_string_equal(items[4].value, "/etc/list");
	assert_int_equal(items[5].type, ALIAS_USERNAME);
	assert_true(items[5].literal);
	/* error: takes the rest, commas and all */
	assert_int_equal(parse("error:550 5.1.6 moved, no forwarding"), 1);
	assert_int_equal(items[0].type, ALIAS_ERROR);
	assert_string_equal(items[0].value, "550 5.1.6 moved, no forwarding");
	assert_int_equal(parse("error:451"), 1);
	assert_string_equal(items[0].value, "451 4.0.0 Rejected by an alias");
	/* bad items are skipped and reported, the rest kept */
	assert_int_equal(parse("ok, /a/../b, bad user, x@, @y, a%b, "
	    ":include:relative, error:250 fine"), 1);
	assert_int_equal(nbad, 7);
	assert_int_equal(parse("a, \"b, c"), 1);
	assert_int_equal(nbad, 1);
	assert_int_equal(parse(" , ,, "), 0);
	assert_int_equal(nbad, 0);
	/* .forward text: lines and comments */
	nitems = nbad = 0;
	assert_int_equal(alias_parse_file_text("# hi\nalice\n\n bob, "
	    "carol@x.test\r\n#x\n", 29, collect, bad, NULL), 3);
	nitems = nbad = 0;
	assert_int_equal(alias_parse_file_text("a\0b", 3, collect, bad, NULL),
	    0);
	assert_int_equal(nbad, 1);
}

/* ---- text tables ------------------------------------------------------ */

static char	got[2048];

static int
tab_cb(void *arg, const char *k, const char *v, size_t line, char *err,
    size_t errlen)
{
	size_t	n = strlen(got);

	snprintf(got + n, sizeof(got) - n, "[%zu %s=%s]", line, k, v);
	return 0;
}

static int
tab(const char *text, int flags, char *err, size_t errlen)
{
	FILE	*fp;
	int	 rc;

	got[0] = '\0';
	fp = fmemopen((void *)(uintptr_t)text, strlen(text), "r");
	assert_non_null(fp);
	rc = tabfile_parse(fp, "T", flags, tab_cb, NULL, err, errlen);
	fclose(fp);
	return rc;
}

static void
test_tabfile(void **state)
{
	char	err[256];

	assert_int_equal(tab("# c\nKey value\nk2: v2\n  more\n\nlist\n"
	    "::1\n", 0, err, sizeof(err)), 0);
	assert_string_equal(got, "[2 key=value][3 k2=v2 more][6 list=]"
	    "[7 ::1=]");
	assert_int_equal(tab("Root:phtest1\nlist: a,\n\tb\n", TABFILE_ALIASES,
	    err, sizeof(err)), 0);
	assert_string_equal(got, "[1 root=phtest1][2 list=a, b]");
	assert_int_equal(tab("nocolon here\n", TABFILE_ALIASES, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "T:1: missing ':' after the alias name");
	assert_int_equal(tab("  cont\n", 0, err, sizeof(err)), -1);
	assert_string_equal(err, "T:1: continuation line without an entry");
	assert_int_equal(tab("a\nb value\n", TABFILE_SET, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "T:2:"));
	assert_int_equal(tab("empty:\n", TABFILE_ALIASES, err, sizeof(err)),
	    -1);
}

/* ---- expansion -------------------------------------------------------- */

static struct lka_dest	dests[64];
static int		ndests;

static void
emit(void *arg, const struct lka_dest *d)
{
	if (ndests < 64)
		dests[ndests++] = *d;
}

static int
expand(const char *rcpt, const char *from, char *reply, size_t len)
{
	struct lka_rcpt_req	 req;
	struct match		*m;
	char			 buf[600];

	memset(&req, 0, sizeof(req));
	req.reqid = 1;
	snprintf(buf, sizeof(buf), "%s", rcpt);
	assert_int_equal(addr_parse_mailbox(buf, &req.rcpt, 0), 0);
	if (from != NULL)
		assert_int_equal(addr_parse_mailbox(from, &req.mailfrom, 0), 0);
	ndests = 0;
	reply[0] = '\0';
	if (!rule_find(&req, &m) || m->action == NULL) {
		snprintf(reply, len, "no rule");
		return -1;
	}
	return expand_recipient(&req, m->action, emit, NULL, reply, len);
}

static int
has_dest(int type, const char *user, const char *path)
{
	int	i;

	for (i = 0; i < ndests; i++)
		if ((int)dests[i].dest_type == type &&
		    strcmp(dests[i].user, user) == 0 &&
		    strcmp(dests[i].path, path) == 0)
			return 1;
	return 0;
}

static int
setup_conf(void **state)
{
	char	path[PATH_MAX], text[8192], err[1024];

	snprintf(tdir, sizeof(tdir), "/tmp/test_aliases.XXXXXX");
	assert_non_null(mkdtemp(tdir));
	put("aliases",
	    "# users that exist everywhere: daemon, bin (nobody runs "
	    "files)\n"
	    "list: daemon, bin,\n  daemon, bin@local.test\n"
	    "owner-list: daemon\n"
	    "root: daemon\n"
	    "toroot: root\n"
	    "files: /tmp/x.log, \"|/bin/cat\"\n"
	    "inc: :include:@DIR@/inc\n"
	    "gone: error:550 5.1.6 gone, really\n"
	    "loop1: loop2\nloop2: loop1\n"
	    "self: daemon, self\n"
	    "d0: d1\nd1: d2\nd2: d3\nd3: d4\nd4: d5\nd5: d6\nd6: d7\n"
	    "d7: d8\nd8: d9\nd9: d10\nd10: d11\nd11: daemon\n"
	    "remote: someone@far.test\n"
	    "remotes: a@far.test, b@far.test, a@far.test, c@near.test\n"
	    "tag+x: bin\n"
	    "_smtpq: daemon\n");
	put("inc", "# an include file\nbin\n/tmp/never\n|/bin/never\n");
	put("virtuals", "a@virt.test: daemon\n@virt.test bin\n"
	    "x@strict.test daemon\n");
	put("userinfo", "vu 2:2:/var/vmail\nroot 0:0:/root\n");
	/* the include path depends on the directory */
	{
		char	 a[4096];
		FILE	*fp;
		size_t	 n;
		char	*at;

		snprintf(path, sizeof(path), "%s/aliases", tdir);
		fp = fopen(path, "r");
		assert_non_null(fp);
		n = fread(a, 1, sizeof(a) - 1, fp);
		a[n] = '\0';
		fclose(fp);
		at = strstr(a, "@DIR@");
		assert_non_null(at);
		*at = '\0';
		snprintf(text, sizeof(text), "%s%s%s", a, tdir, at + 5);
		put("aliases", text);
	}
	snprintf(text, sizeof(text),
	    "hostname \"local.test\"\n"
	    "table aliases file:%s/aliases\n"
	    "table virtuals file:%s/virtuals\n"
	    "table userinfo file:%s/userinfo\n"
	    "table vdomains { \"virt.test\", \"strict.test\" }\n"
	    "table vudomains { \"vu.test\" }\n"
	    "action \"local\" maildir alias <aliases>\n"
	    "action \"virt\" maildir virtual <virtuals>\n"
	    "action \"vu\" maildir \"/var/vmail/%%{dest.user}\" "
	    "userbase <userinfo>\n"
	    "action \"out\" relay\n"
	    "action \"plain\" maildir\n"
	    "match from any for domain \"local.test\" action \"local\"\n"
	    "match from any for domain \"plain.test\" action \"plain\"\n"
	    "match from any for domain <vdomains> action \"virt\"\n"
	    "match from any for domain <vudomains> action \"vu\"\n"
	    "match from local for any action \"out\"\n",
	    tdir, tdir, tdir);
	put("smtpd.conf", text);
	snprintf(path, sizeof(path), "%s/smtpd.conf", tdir);
	conf = config_parse(path, err, sizeof(err));
	if (conf == NULL)
		fprintf(stderr, "%s\n", err);
	assert_non_null(conf);
	return 0;
}

static int
teardown_conf(void **state)
{
	char	cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tdir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

static void
test_expand_lists(void **state)
{
	char	reply[512];

	/* duplicates (daemon twice, bin and bin@local.test) collapse */
	assert_int_equal(expand("list@local.test", "s@x.test", reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(ndests, 2);
	assert_true(has_dest(DEST_MAILBOX, "daemon", ""));
	assert_true(has_dest(DEST_MAILBOX, "bin", ""));
	/* owner-list becomes the sender, except for bounces */
	assert_string_equal(dests[0].sender_override.user, "owner-list");
	assert_string_equal(dests[0].sender_override.domain, "local.test");
	assert_int_equal(expand("list@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_string_equal(dests[0].sender_override.user, "");
	/* root only through an alias */
	assert_int_equal(expand("toroot@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_true(has_dest(DEST_MAILBOX, "daemon", ""));
	/* +detail: the full key first, then the bare one */
	assert_int_equal(expand("tag+x@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_true(has_dest(DEST_MAILBOX, "bin", ""));
	assert_int_equal(expand("list+y@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(ndests, 2);
	assert_int_equal(expand("daemon+z@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_true(has_dest(DEST_MAILBOX, "daemon", ""));
	/* an external address goes through the rules: relayed */
	assert_int_equal(expand("remote@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(ndests, 1);
	assert_int_equal(dests[0].dest_type, DEST_REMOTE);
	assert_string_equal(dests[0].dest.domain, "far.test");
	assert_string_equal(dests[0].action, "out");
	/* several relayed addresses: one copy each */
	assert_int_equal(expand("remotes@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(ndests, 3);
	assert_string_equal(dests[0].dest.user, "a");
	assert_string_equal(dests[1].dest.user, "b");
	assert_string_equal(dests[2].dest.domain, "near.test");
}

static void
test_expand_files_includes(void **state)
{
	char	reply[512];

	assert_int_equal(expand("files@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(ndests, 2);
	/* the table is root's here, so they run as nobody */
	assert_true(has_dest(DEST_FILE, "nobody", "/tmp/x.log"));
	assert_true(has_dest(DEST_PROGRAM, "nobody", "/bin/cat"));
	/* files and programs from an :include: are ignored */
	assert_int_equal(expand("inc@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(ndests, 1);
	assert_true(has_dest(DEST_MAILBOX, "bin", ""));
}

static void
test_expand_errors(void **state)
{
	char	reply[512];

	assert_int_equal(expand("gone@local.test", NULL, reply,
	    sizeof(reply)), PROTO_PERMFAIL);
	assert_string_equal(reply, "550 5.1.6 gone, really");
	assert_int_equal(expand("loop1@local.test", NULL, reply,
	    sizeof(reply)), PROTO_PERMFAIL);
	assert_non_null(strstr(reply, "5.4.6"));
	assert_int_equal(expand("d0@local.test", NULL, reply, sizeof(reply)),
	    PROTO_PERMFAIL);
	assert_non_null(strstr(reply, "too deep"));
	assert_int_equal(expand("d2@local.test", NULL, reply, sizeof(reply)),
	    PROTO_OK);
	assert_int_equal(expand("nosuchuser@local.test", NULL, reply,
	    sizeof(reply)), PROTO_PERMFAIL);
	assert_non_null(strstr(reply, "5.1.1"));
	/* root itself is refused */
	assert_int_equal(expand("root+x@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);	/* the alias root: daemon */
	/* "self: daemon, self": self is a user name, which does not exist */
	assert_int_equal(expand("self@local.test", NULL, reply,
	    sizeof(reply)), PROTO_PERMFAIL);
	/* no trick turns a local part into a route */
	assert_int_equal(expand("\"a@far.test\"@local.test", NULL, reply,
	    sizeof(reply)), PROTO_PERMFAIL);
}

/*
 * Root without an alias: its mailbox, nothing else (the parent appends it
 * to /var/mail/root without running as root), so postmaster and cron
 * mail are not refused.
 */
static void
test_expand_root(void **state)
{
	char	reply[512];

	assert_int_equal(expand("root@plain.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(ndests, 1);
	assert_true(has_dest(DEST_MAILBOX, getpwuid(0)->pw_name, ""));
	assert_int_equal(expand("Root+cron@plain.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(ndests, 1);
	assert_true(has_dest(DEST_MAILBOX, getpwuid(0)->pw_name, ""));
	/* an alias still wins */
	assert_int_equal(expand("root@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(ndests, 1);
	assert_true(has_dest(DEST_MAILBOX, "daemon", ""));
}

/*
 * The daemon's own accounts and nobody have no mailbox: unknown users
 * (550 5.1.1), unless an alias sends their mail elsewhere.
 */
static void
test_expand_daemon_accounts(void **state)
{
	char	reply[512];

	/* nobody exists on every system: no mailbox */
	assert_int_equal(expand("nobody@plain.test", NULL, reply,
	    sizeof(reply)), PROTO_PERMFAIL);
	assert_non_null(strstr(reply, "550 5.1.1"));
	assert_int_equal(ndests, 0);
	/* other system accounts are users */
	assert_int_equal(expand("bin@plain.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_true(has_dest(DEST_MAILBOX, "bin", ""));
	/*
	 * _smtpd and _smtpq exist once the daemon was installed or the
	 * integration tests ran (test_delivery_daemon_accounts proves the
	 * same with the real daemon on every run); a unit test creates no
	 * accounts.
	 */
	if (getpwnam("_smtpd") == NULL || getpwnam("_smtpq") == NULL)
		return;
	assert_int_equal(expand("_smtpd@plain.test", NULL, reply,
	    sizeof(reply)), PROTO_PERMFAIL);
	assert_non_null(strstr(reply, "550 5.1.1"));
	assert_int_equal(ndests, 0);
	assert_int_equal(expand("_SMTPQ+x@plain.test", NULL, reply,
	    sizeof(reply)), PROTO_PERMFAIL);
	assert_int_equal(ndests, 0);
	/* the alias table has "_smtpq: daemon"; not _smtpd */
	assert_int_equal(expand("_smtpq@local.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(ndests, 1);
	assert_true(has_dest(DEST_MAILBOX, "daemon", ""));
	assert_int_equal(expand("_smtpd@local.test", NULL, reply,
	    sizeof(reply)), PROTO_PERMFAIL);
}

static void
test_expand_virtual(void **state)
{
	char	reply[512];

	assert_int_equal(expand("a@virt.test", NULL, reply, sizeof(reply)),
	    PROTO_OK);
	assert_true(has_dest(DEST_MAILBOX, "daemon", ""));
	assert_string_equal(dests[0].dest.user, "a");
	assert_string_equal(dests[0].dest.domain, "virt.test");
	/* catch-all */
	assert_int_equal(expand("zz@virt.test", NULL, reply, sizeof(reply)),
	    PROTO_OK);
	assert_true(has_dest(DEST_MAILBOX, "bin", ""));
	assert_string_equal(dests[0].dest.user, "zz");
	assert_int_equal(expand("x+tag@strict.test", NULL, reply,
	    sizeof(reply)), PROTO_OK);
	assert_int_equal(expand("y@strict.test", NULL, reply, sizeof(reply)),
	    PROTO_PERMFAIL);
	/* userbase: the system user owning the uid delivers */
	assert_int_equal(expand("vu@vu.test", NULL, reply, sizeof(reply)),
	    PROTO_OK);
	assert_int_equal(ndests, 1);
	assert_string_equal(dests[0].user, getpwuid(2)->pw_name);
	assert_int_equal(expand("root@vu.test", NULL, reply, sizeof(reply)),
	    PROTO_PERMFAIL);
	assert_int_equal(expand("other@vu.test", NULL, reply, sizeof(reply)),
	    PROTO_PERMFAIL);
}

static void
test_table_services(void **state)
{
	struct table		*t;
	struct table_userinfo	 ui;
	char			 val[256];

	t = config_find_table(conf, "userinfo");
	assert_non_null(t);
	assert_int_equal(table_lookup_userinfo(t, "VU", &ui), TABLE_FOUND);
	assert_int_equal(ui.uid, 2);
	assert_string_equal(ui.home, "/var/vmail");
	assert_int_equal(table_lookup_userinfo(t, "none", &ui),
	    TABLE_NOTFOUND);
	t = config_find_table(conf, "aliases");
	assert_true(table_is_aliases(t));
	assert_int_equal(table_lookup(t, "ROOT", val, sizeof(val)),
	    TABLE_FOUND);
	assert_string_equal(val, "daemon");
	/* edited in place: picked up (size and mtime change) */
	put("userinfo", "vu 3:3:/var/vmail2\n");
	t = config_find_table(conf, "userinfo");
	assert_int_equal(table_lookup_userinfo(t, "vu", &ui), TABLE_FOUND);
	assert_int_equal(ui.uid, 3);
	put("userinfo", "vu 2:2:/var/vmail\nroot 0:0:/root\nbad x:1:/\n");
	assert_int_equal(table_lookup_userinfo(t, "bad", &ui), TABLE_ERROR);
	t = config_find_table(conf, "vdomains");
	assert_int_equal(table_match_domain(t, "virt.test"), TABLE_FOUND);
	assert_int_equal(table_match_domain(t, "other.test"), TABLE_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_items),
		cmocka_unit_test(test_tabfile),
		cmocka_unit_test(test_expand_lists),
		cmocka_unit_test(test_expand_files_includes),
		cmocka_unit_test(test_expand_errors),
		cmocka_unit_test(test_expand_root),
		cmocka_unit_test(test_expand_daemon_accounts),
		cmocka_unit_test(test_expand_virtual),
		cmocka_unit_test(test_table_services),
	};

	log_init(1, 0);
	return cmocka_run_group_tests(tests, setup_conf, teardown_conf);
}
