/*
 * test_authres.c -- common/authres.c: the Authentication-Results header
 * we write (RFC 8601 syntax, folding at 78 columns, quoting of values
 * that need it, no CR/LF smuggled in) and the authserv-id reader that
 * decides which incoming headers are forgeries of ours (CFWS, nested
 * comments, quoted-string ids, case).  What we write is also read back
 * by python3-authres, an independent RFC 8601 parser
 * (regress/dmarc/authres_read.py; skipped when it is not installed, run
 * from the top of the tree).
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "authres.h"

/* every line within 78 columns (a tab counts 8), LF only, ends in LF */
static void
check_folding(const char *h)
{
	const char	*p;
	size_t		 col = 0;

	assert_true(strlen(h) > 0 && h[strlen(h) - 1] == '\n');
	for (p = h; *p; p++) {
		assert_int_not_equal(*p, '\r');
		if (*p == '\n') {
			assert_true(col <= AUTHRES_COLS);
			col = 0;
			/* a continuation line starts with a tab, never blank */
			if (p[1] != '\0') {
				assert_int_equal(p[1], '\t');
				assert_true(p[2] != '\n' && p[2] != '\0');
			}
			continue;
		}
		col += *p == '\t' ? 8 : 1;
	}
}

/* the header unfolded (RFC 5322 2.2.3), without its final LF */
static char *
unfold(const char *h)
{
	char	*u = strdup(h), *q = u;

	assert_non_null(u);
	for (; *h; h++) {
		if (h[0] == '\n' && h[1] == '\t') {
			*q++ = ' ';
			h++;
		} else if (h[0] != '\n')
			*q++ = *h;
	}
	*q = '\0';
	return u;
}

static void
test_build_simple(void **state)
{
	struct authres	 ar;
	const char	*h;
	char		*u;
	size_t		 len;

	authres_begin(&ar, "mx.example.org");
	authres_spf(&ar, "pass", "alice@example.com", "mail.example.com");
	authres_dkim(&ar, "pass", "example.com", "sel2026",
	    "AbCdEfGhIjKlMnOp");
	authres_dmarc(&ar, "pass", "reject", "none", "example.com");
	authres_iprev(&ar, "pass", "192.0.2.1", "mail.example.com");
	h = authres_end(&ar, &len);
	assert_non_null(h);
	assert_int_equal(len, strlen(h));
	check_folding(h);
	u = unfold(h);
	assert_string_equal(u, "Authentication-Results: mx.example.org; "
	    "spf=pass smtp.mailfrom=alice@example.com "
	    "smtp.helo=mail.example.com; "
	    "dkim=pass header.d=example.com header.s=sel2026 "
	    "header.b=AbCdEfGh; "
	    "dmarc=pass (p=reject dis=none) header.from=example.com; "
	    "iprev=pass policy.iprev=192.0.2.1 (mail.example.com)");
	free(u);
	/* the first line as an exact picture of the folding */
	assert_memory_equal(h, "Authentication-Results: mx.example.org;\n\t"
	    "spf=pass", 48);
}

static void
test_build_none(void **state)
{
	struct authres	 ar;
	const char	*h;

	authres_begin(&ar, "mx.example.org");
	h = authres_end(&ar, NULL);
	assert_string_equal(h, "Authentication-Results: mx.example.org; "
	    "none\n");
}

static void
test_build_quoting(void **state)
{
	struct authres	 ar;
	const char	*h;
	char		*u;

	authres_begin(&ar, "mx.example.org");
	/* a HELO that is no domain, with CR LF and a quote in it */
	authres_spf(&ar, "none", "", "bad helo\r\nX-Evil: \"yes\"\\");
	/* base64 has '/', '+' and '=' (tspecials): quoted */
	authres_dkim(&ar, "fail", "example.com", "s", "ab/cd+ef=gh");
	/* a quoted local part: the whole address quoted */
	authres_spf(&ar, "pass", "\"john doe\"@example.com", NULL);
	/* an odd but dot-atom local part stays bare */
	authres_spf(&ar, "pass", "a.b+c=d@example.com", NULL);
	authres_method(&ar, "auth", "pass", "user said \"hi\"");
	authres_comment(&ar, "nested (paren) \\ x");
	h = authres_end(&ar, NULL);
	assert_non_null(h);
	check_folding(h);
	u = unfold(h);
	assert_string_equal(u, "Authentication-Results: mx.example.org; "
	    "spf=none smtp.helo=\"bad helo??X-Evil: \\\"yes\\\"\\\\\"; "
	    "dkim=fail header.d=example.com header.s=s "
	    "header.b=\"ab/cd+ef\"; "
	    "spf=pass smtp.mailfrom=\"\\\"john doe\\\"@example.com\"; "
	    "spf=pass smtp.mailfrom=a.b+c=d@example.com; "
	    "auth=pass reason=\"user said \\\"hi\\\"\" "
	    "(nested \\(paren\\) \\\\ x)");
	free(u);
	/* no CR anywhere, LF only at folds and the end */
	assert_null(strchr(h, '\r'));
	assert_null(strstr(h, "\nX-Evil"));
	/* bad method or result names never reach the header */
	authres_begin(&ar, "mx");
	authres_method(&ar, "sp f", "pa;ss", NULL);
	h = authres_end(&ar, NULL);
	assert_string_equal(h, "Authentication-Results: mx;\n\t"
	    "x-invalid=permerror\n");
}

static void
test_build_folding_long(void **state)
{
	struct authres	 ar;
	const char	*h;
	char		 d[64];
	int		 i;

	authres_begin(&ar, "mx.example.org");
	for (i = 0; i < 20; i++) {
		snprintf(d, sizeof(d), "signer-number-%d.example.com", i);
		authres_dkim(&ar, i % 2 ? "pass" : "fail", d, "selector",
		    "0123456789abcdef");
	}
	h = authres_end(&ar, NULL);
	assert_non_null(h);
	check_folding(h);
	/* one word longer than a line: alone on its line, no blank line */
	authres_begin(&ar, "mx.example.org");
	memset(d, 'a', sizeof(d) - 1);
	d[sizeof(d) - 1] = '\0';
	authres_spf(&ar, "pass", NULL, d);
	authres_spf(&ar, "pass", NULL, d);
	h = authres_end(&ar, NULL);
	assert_non_null(h);
	assert_null(strstr(h, "\n\t\n"));
	assert_null(strstr(h, "\t\t"));
}

static void
test_build_overflow(void **state)
{
	struct authres	 ar;
	int		 i;

	authres_begin(&ar, "mx.example.org");
	for (i = 0; i < 200; i++)
		authres_dkim(&ar, "pass", "a-rather-long-domain.example.com",
		    "selector", "0123456789");
	assert_null(authres_end(&ar, NULL));
}

static int
is_ours(const char *h)
{
	return authres_is_ours(h, strlen(h), "mx.example.org");
}

static void
test_parse_id(void **state)
{
	struct authres	 ar;
	const char	*h;
	char		 id[64];

	assert_int_equal(is_ours("mx.example.org; spf=pass"), 1);
	assert_int_equal(is_ours(" MX.Example.ORG;spf=pass"), 1);
	assert_int_equal(is_ours("Authentication-Results: mx.example.org; "
	    "none"), 1);
	assert_int_equal(is_ours("authentication-results :mx.example.org"),
	    1);
	assert_int_equal(is_ours("mx.example.org"), 1);
	assert_int_equal(is_ours("mx.example.org 1; dkim=pass"), 1);
	/* CFWS: folds and (nested) comments before and after */
	assert_int_equal(is_ours("\r\n\t(forged (nested \\) still) here)"
	    "\r\n mx.example.org (c) ; spf=pass"), 1);
	/* a quoted-string id, with a quoted-pair */
	assert_int_equal(is_ours("\"mx.example.org\"; spf=pass"), 1);
	assert_int_equal(is_ours("\"mx.exa\\mple.org\"; spf=pass"), 1);
	/* someone else's */
	assert_int_equal(is_ours("mx.example.net; spf=pass"), 0);
	assert_int_equal(is_ours("mx.example.org.evil; spf=pass"), 0);
	assert_int_equal(is_ours("example.org; spf=pass"), 0);
	assert_int_equal(is_ours("(mx.example.org) other.example; x=y"), 0);
	/* malformed: the caller removes those too */
	assert_int_equal(is_ours(""), -1);
	assert_int_equal(is_ours("   "), -1);
	assert_int_equal(is_ours("; spf=pass"), -1);
	assert_int_equal(is_ours("(unclosed mx.example.org; spf=pass"), -1);
	assert_int_equal(is_ours("\"mx.example.org; spf=pass"), -1);
	assert_int_equal(is_ours("mx.example.org/x; spf=pass"), -1);
	/* a name without its colon is no name: "Authentication-Results"
	   is then the id, followed by junk */
	assert_int_equal(is_ours("Authentication-Results mx.example.org"),
	    -1);
	/* an id that begins like the field name */
	assert_int_equal(authres_is_ours("authentication-results.example; "
	    "spf=pass", 40, "authentication-results.example"), 1);
	assert_int_equal(authres_is_ours("Authentication-Results: "
	    "authentication-results.example", 54,
	    "authentication-results.example"), 1);
	assert_int_equal(authres_is_ours("mx.example.org\0; x", 18,
	    "mx.example.org"), -1);
	/* too long for the caller's buffer */
	assert_int_equal(authres_parse_id("abcdefgh", 8, id, 4), -1);
	assert_int_equal(authres_parse_id("abc; x", 6, id, 4), 0);
	assert_string_equal(id, "abc");

	/* what we write, we recognize */
	authres_begin(&ar, "mx.example.org");
	authres_spf(&ar, "pass", "a@b.example", NULL);
	h = authres_end(&ar, NULL);
	assert_int_equal(is_ours(h), 1);
}

#define PYTHON		"/usr/bin/python3"
#define AUTHRES_READ	"regress/dmarc/authres_read.py"

/*
 * What python3-authres reads in header h: its output, or NULL when the
 * module is not installed (status 2).
 */
static char *
python_reads(const char *h)
{
	static char	out[4096];
	int		in[2], res[2], st;
	size_t		n = 0;
	ssize_t		r;
	pid_t		pid;

	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(res), 0);
	if ((pid = fork()) == -1)
		fail();
	if (pid == 0) {
		if (dup2(in[0], 0) == -1 || dup2(res[1], 1) == -1)
			_exit(126);
		close(in[1]);
		close(res[0]);
		execl(PYTHON, "python3", AUTHRES_READ, (char *)NULL);
		_exit(2);
	}
	close(in[0]);
	close(res[1]);
	assert_int_equal(write(in[1], h, strlen(h)), (ssize_t)strlen(h));
	close(in[1]);
	while ((r = read(res[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)r;
	close(res[0]);
	out[n] = '\0';
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 2)
		return NULL;
	assert_int_equal(WEXITSTATUS(st), 0);
	return out;
}

static void
test_independent_reader(void **state)
{
	struct authres	 ar;
	const char	*h;
	char		*got;

	if (access(PYTHON, X_OK) == -1 || access(AUTHRES_READ, R_OK) == -1)
		skip();
	authres_begin(&ar, "mx.example.org");
	authres_spf(&ar, "softfail", "alice@example.com", "bad helo name");
	authres_dkim(&ar, "pass", "example.com", "sel2026",
	    "ab/cd+efGHIJ");
	authres_dkim(&ar, "fail", "signer-with-a-long-name.example.net",
	    "selector-that-is-quite-long-too", "0123456789");
	authres_dmarc(&ar, "fail", "reject", "quarantine", "example.com");
	authres_iprev(&ar, "temperror", "2001:db8::1", "host.example");
	authres_dnsbl(&ar, "pass", "bl.example", "192.0.2.1");
	authres_method(&ar, "auth", "pass", "user logged in");
	authres_prop(&ar, "smtp.auth", "alice");
	h = authres_end(&ar, NULL);
	assert_non_null(h);
	if ((got = python_reads(h)) == NULL)
		skip();
	assert_string_equal(got, "mx.example.org\n"
	    "spf=softfail smtp.mailfrom=alice@example.com "
	    "smtp.helo=bad helo name\n"
	    "dkim=pass header.d=example.com header.s=sel2026 "
	    "header.b=ab/cd+ef\n"
	    "dkim=fail header.d=signer-with-a-long-name.example.net "
	    "header.s=selector-that-is-quite-long-too header.b=01234567\n"
	    "dmarc=fail header.from=example.com\n"
	    "iprev=temperror policy.iprev=2001:db8::1\n"
	    "dnsbl=pass policy.ip=192.0.2.1\n"
	    "auth=pass reason=user logged in smtp.auth=alice\n");

	/* no result at all */
	authres_begin(&ar, "mx.example.org");
	h = authres_end(&ar, NULL);
	got = python_reads(h);
	assert_non_null(got);
	assert_string_equal(got, "mx.example.org\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_simple),
		cmocka_unit_test(test_build_none),
		cmocka_unit_test(test_build_quoting),
		cmocka_unit_test(test_build_folding_long),
		cmocka_unit_test(test_build_overflow),
		cmocka_unit_test(test_parse_id),
		cmocka_unit_test(test_independent_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
