/*
 * test_mta_reply.c -- the SMTP reply parser of common/mta_reply.c: tables
 * of replies, line by line, with the verdict and the text expected.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mta.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define BAD		MTA_REPLY_BAD
#define DONE		MTA_REPLY_DONE

struct reply_case {
	const char	*lines[4];	/* NULL-terminated */
	int		 verdict;	/* of the last line fed */
	int		 code;
	const char	*text;		/* when DONE */
	const char	*status;	/* mta_reply_status(), when DONE */
};

static const struct reply_case cases[] = {
	{ { "250 ok" }, DONE, 250, "ok", "2.0.0" },
	{ { "250" }, DONE, 250, "", "2.0.0" },
	{ { "250-a", "250-b", "250 c" }, DONE, 250, "a\nb\nc", "2.0.0" },
	{ { "550 5.1.1 no such user" }, DONE, 550, "5.1.1 no such user",
	    "5.1.1" },
	{ { "451 4.7.1 greylisted" }, DONE, 451, "4.7.1 greylisted",
	    "4.7.1" },
	/* an enhanced code of the wrong class is not believed */
	{ { "550 2.1.1 odd" }, DONE, 550, "2.1.1 odd", "5.0.0" },
	{ { "550 5.1234.1 long" }, DONE, 550, "5.1234.1 long", "5.0.0" },
	{ { "354 go ahead" }, DONE, 354, "go ahead", "2.0.0" },
	/* non-printable bytes never come through */
	{ { "550 a\x01z\x7f\xc3\xa9" }, DONE, 550, "a?z???", "5.0.0" },
	{ { "250\tok" }, BAD, 0, NULL, NULL },
	{ { "25 ok" }, BAD, 0, NULL, NULL },
	{ { "2500 ok" }, BAD, 0, NULL, NULL },
	{ { "650 six" }, BAD, 0, NULL, NULL },
	{ { "160 one" }, BAD, 0, NULL, NULL },
	{ { "270 seven" }, BAD, 0, NULL, NULL },
	{ { "abc def" }, BAD, 0, NULL, NULL },
	{ { "" }, BAD, 0, NULL, NULL },
	{ { "250-ok", "550 no" }, BAD, 0, NULL, NULL },
	{ { "250-ok", "250x" }, BAD, 0, NULL, NULL },
	{ { "250 a\rb" }, BAD, 0, NULL, NULL },
};

static void
feed(const struct reply_case *c, struct mta_reply *r, int *verdict)
{
	size_t	i;

	mta_reply_init(r);
	*verdict = BAD;
	for (i = 0; i < NELEM(c->lines) && c->lines[i] != NULL; i++) {
		*verdict = mta_reply_line(r, c->lines[i], strlen(c->lines[i]));
		if (*verdict == BAD)
			return;
	}
}

static void
test_reply_table(void **state)
{
	struct mta_reply	r;
	char			st[16];
	size_t			i;
	int			v;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		feed(&cases[i], &r, &v);
		if (v != cases[i].verdict)
			fail_msg("case %zu (%s): verdict %d, want %d", i,
			    cases[i].lines[0], v, cases[i].verdict);
		if (v != DONE)
			continue;
		assert_int_equal(r.code, cases[i].code);
		assert_string_equal(r.text, cases[i].text);
		mta_reply_status(&r, st, sizeof(st));
		assert_string_equal(st, cases[i].status);
	}
}

static void
test_reply_limits(void **state)
{
	struct mta_reply	r;
	char			line[MTA_LINE_MAX + 2];
	int			i, v = 0;

	(void)state;
	memset(line, 'x', sizeof(line));
	memcpy(line, "250 ", 4);
	mta_reply_init(&r);
	assert_int_equal(mta_reply_line(&r, line, MTA_LINE_MAX + 1), BAD);
	/* too many lines */
	mta_reply_init(&r);
	for (i = 0; i <= MTA_REPLY_MAX_LINES; i++)
		v = mta_reply_line(&r, "250-x", 5);
	assert_int_equal(v, BAD);
	/* too much text in total */
	mta_reply_init(&r);
	memcpy(line, "250-", 4);
	for (i = 0; i < 10 && v != BAD; i++)
		v = mta_reply_line(&r, line, MTA_LINE_MAX);
	assert_int_equal(v, BAD);
}

static void
test_oneline(void **state)
{
	struct mta_reply	r;
	char			out[64];

	(void)state;
	mta_reply_init(&r);
	mta_reply_line(&r, "550-5.1.1 first", 15);
	mta_reply_line(&r, "550 second", 10);
	mta_reply_oneline(&r, out, sizeof(out));
	assert_string_equal(out, "550 5.1.1 first / second");
	mta_reply_oneline(&r, out, 12);
	assert_int_equal(strlen(out), 11);
}

static void
test_extensions(void **state)
{
	static const char *ehlo[] = {
		"250-mx.example.org Hello", "250-PIPELINING",
		"250-SIZE 52428800", "250-8BITMIME", "250-AUTH=LOGIN",
		"250-AUTH CRAM-MD5 PLAIN", "250-smtputf8", "250-DSN",
		"250-STARTTLS", "250-requiretls", "250 ENHANCEDSTATUSCODES",
	};
	struct mta_reply	r;
	uint64_t		size;
	uint32_t		ext;
	size_t			i;

	(void)state;
	mta_reply_init(&r);
	for (i = 0; i < NELEM(ehlo); i++)
		mta_reply_line(&r, ehlo[i], strlen(ehlo[i]));
	ext = mta_reply_extensions(&r, &size);
	assert_int_equal(ext, MTA_EXT_PIPELINING | MTA_EXT_SIZE |
	    MTA_EXT_8BITMIME | MTA_EXT_AUTH_LOGIN | MTA_EXT_AUTH_PLAIN |
	    MTA_EXT_SMTPUTF8 | MTA_EXT_DSN | MTA_EXT_STARTTLS |
	    MTA_EXT_REQUIRETLS | MTA_EXT_ENHANCED);
	assert_int_equal(size, 52428800);
	/* the greeting line is not a keyword; "PIPELININGX" is not one */
	mta_reply_init(&r);
	mta_reply_line(&r, "250-PIPELINING", 14);
	mta_reply_line(&r, "250-PIPELININGX", 15);
	mta_reply_line(&r, "250 REQUIRETLSX", 15);
	assert_int_equal(mta_reply_extensions(&r, &size), 0);
}

static void
test_xtext(void **state)
{
	(void)state;
	assert_true(mta_xtext_valid("abc+2Bdef"));
	assert_true(mta_xtext_valid("QQ.x-1"));
	assert_false(mta_xtext_valid(""));
	assert_false(mta_xtext_valid("a b"));
	assert_false(mta_xtext_valid("a=b"));
	assert_false(mta_xtext_valid("a+2"));
	assert_false(mta_xtext_valid("a+2b"));
	assert_false(mta_xtext_valid("a\r\nRCPT"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_table),
		cmocka_unit_test(test_reply_limits),
		cmocka_unit_test(test_oneline),
		cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_xtext),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
