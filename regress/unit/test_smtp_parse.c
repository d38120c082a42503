/*
 * test_smtp_parse.c -- tables for smtp/smtp_parse.c: command verbs,
 * MAIL and RCPT parameters (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH,
 * REQUIRETLS, NOTIFY, ORCPT), BDAT arguments, base64, SASL PLAIN and the
 * value of a TLS-Required header field.
 *
 * Each row is one input and the exact result expected (for refusals, the
 * reply code the session will send).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_parse.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static void
test_commands(void **state)
{
	static const struct {
		const char	*line;
		enum smtp_cmd	 cmd;
		const char	*args;	/* NULL: none */
	} cases[] = {
		{ "HELO x.test", CMD_HELO, "x.test" },
		{ "ehlo x.test", CMD_EHLO, "x.test" },
		{ "MAIL FROM:<a@b>", CMD_MAIL, "FROM:<a@b>" },
		{ "rcpt TO:<a@b>", CMD_RCPT, "TO:<a@b>" },
		{ "DATA", CMD_DATA, NULL },
		{ "DATA ", CMD_DATA, "" },
		{ "BDAT 10 LAST", CMD_BDAT, "10 LAST" },
		{ "RSET", CMD_RSET, NULL },
		{ "NOOP hi", CMD_NOOP, "hi" },
		{ "QUIT", CMD_QUIT, NULL },
		{ "VRFY x", CMD_VRFY, "x" },
		{ "EXPN x", CMD_EXPN, "x" },
		{ "HELP", CMD_HELP, NULL },
		{ "StartTLS", CMD_STARTTLS, NULL },
		{ "AUTH PLAIN", CMD_AUTH, "PLAIN" },
		{ "ETRN x.test", CMD_ETRN, "x.test" },
		{ "SEND FROM:<a@b>", CMD_OBSOLETE, "FROM:<a@b>" },
		{ "SOML", CMD_OBSOLETE, NULL },
		{ "SAML", CMD_OBSOLETE, NULL },
		{ "TURN", CMD_OBSOLETE, NULL },
		{ "MAILX FROM:<a@b>", CMD_UNKNOWN, "FROM:<a@b>" },
		{ "", CMD_UNKNOWN, NULL },
		{ " HELO", CMD_UNKNOWN, "HELO" },
	};
	char	buf[64], *args;
	size_t	i;

	for (i = 0; i < NELEM(cases); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].line);
		if (smtp_parse_command(buf, &args) != cases[i].cmd)
			fail_msg("\"%s\": wrong command", cases[i].line);
		if ((args == NULL) != (cases[i].args == NULL) ||
		    (args && strcmp(args, cases[i].args) != 0))
			fail_msg("\"%s\": args \"%s\"", cases[i].line,
			    args ? args : "(null)");
	}
}

/* the reply code of a refusal, 0 when accepted */
static int
code(int rc, const char *reply)
{
	return rc == 0 ? 0 : atoi(reply);
}

static void
test_mail_params(void **state)
{
	static const struct {
		const char	*in;
		int		 esmtp;
		int		 code;
		uint32_t	 flags;
	} cases[] = {
		{ "", 1, 0, 0 },
		{ "", 0, 0, 0 },
		{ " SIZE=100", 0, 555, 0 },		/* after HELO */
		{ " SIZE=100", 1, 0, 0 },
		{ " SIZE=", 1, 501, 0 },
		{ " SIZE", 1, 501, 0 },
		{ " SIZE=-1", 1, 501, 0 },
		{ " SIZE=1e3", 1, 501, 0 },
		{ " SIZE=99999999999999999999999", 1, 501, 0 },
		{ " SIZE=1 SIZE=1", 1, 501, 0 },
		{ " BODY=8BITMIME", 1, 0, EF_8BITMIME },
		{ " body=7bit", 1, 0, 0 },
		{ " BODY=BINARYMIME", 1, 501, 0 },
		{ " BODY=7BIT BODY=7BIT", 1, 501, 0 },
		{ " SMTPUTF8", 1, 0, EF_SMTPUTF8 },
		{ " SMTPUTF8=1", 1, 501, 0 },
		{ " RET=FULL", 1, 0, EF_DSN_RET_FULL },
		{ " RET=HDRS", 1, 0, EF_DSN_RET_HDRS },
		{ " RET=NONE", 1, 501, 0 },
		{ " RET=FULL RET=FULL", 1, 501, 0 },
		{ " ENVID=abc+2Bdef", 1, 0, 0 },
		{ " ENVID=abc+zz", 1, 501, 0 },
		{ " ENVID=abc+0A", 1, 501, 0 },
		{ " ENVID=a ENVID=b", 1, 501, 0 },
		{ " AUTH=<>", 1, 0, 0 },
		{ " AUTH=joe+40example.test", 1, 0, 0 },
		{ " AUTH=bad+ZZ", 1, 501, 0 },
		{ " REQUIRETLS", 1, 0, EF_REQUIRETLS },
		{ " requiretls", 1, 0, EF_REQUIRETLS },
		{ " REQUIRETLS", 0, 555, 0 },		/* after HELO */
		{ " REQUIRETLS=YES", 1, 501, 0 },	/* RFC 8689 2: no value */
		{ " REQUIRETLS=", 1, 501, 0 },
		{ " REQUIRETLS REQUIRETLS", 1, 501, 0 },
		{ " REQUIRETLSX", 1, 555, 0 },
		{ " SMTPUTF8 REQUIRETLS BODY=8BITMIME", 1, 0,
		    EF_SMTPUTF8 | EF_REQUIRETLS | EF_8BITMIME },
		{ " XFOO=bar", 1, 555, 0 },
		{ " =bar", 1, 501, 0 },
		{ " SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x", 1, 0,
		    EF_8BITMIME | EF_SMTPUTF8 | EF_DSN_RET_HDRS },
	};
	struct smtp_mail_params	mp;
	char			reply[SMTP_REPLY_MAX];
	size_t			i;
	int			rc;

	for (i = 0; i < NELEM(cases); i++) {
		reply[0] = '\0';
		rc = smtp_parse_mail_params(cases[i].in, cases[i].esmtp, &mp,
		    reply, sizeof(reply));
		if (code(rc, reply) != cases[i].code)
			fail_msg("MAIL \"%s\": got %d \"%s\", want %d",
			    cases[i].in, rc, reply, cases[i].code);
		if (rc == 0 && mp.evflags != cases[i].flags)
			fail_msg("MAIL \"%s\": flags %#x, want %#x", cases[i].in,
			    mp.evflags, cases[i].flags);
	}
	assert_int_equal(smtp_parse_mail_params(" SIZE=12345 ENVID=q+2Bq", 1,
	    &mp, reply, sizeof(reply)), 0);
	assert_true(mp.has_size);
	assert_true(mp.size == 12345);
	assert_string_equal(mp.envid, "q+2Bq");
}

/* RFC 8689 3: only "No" is a value, white space and case aside */
static void
test_tls_required(void **state)
{
	static const struct {
		const char	*in;
		int		 no;
	} cases[] = {
		{ " No", 1 },
		{ "No", 1 },
		{ " no", 1 },
		{ " NO \t", 1 },
		{ "\t No", 1 },
		{ " Yes", 0 },
		{ " No No", 0 },
		{ " Nope", 0 },
		{ " N", 0 },
		{ "", 0 },
		{ "   ", 0 },
		{ " No;", 0 },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		if (smtp_parse_tls_required(cases[i].in,
		    strlen(cases[i].in)) != cases[i].no)
			fail_msg("TLS-Required:%s: want %d", cases[i].in,
			    cases[i].no);
	/* the length counts, not a NUL */
	assert_int_equal(smtp_parse_tls_required(" Nox", 3), 1);
}

static void
test_rcpt_params(void **state)
{
	static const struct {
		const char	*in;
		int		 code;
		uint32_t	 notify;
	} cases[] = {
		{ "", 0, 0 },
		{ " NOTIFY=NEVER", 0, EF_NOTIFY_NEVER },
		{ " NOTIFY=SUCCESS,FAILURE,DELAY", 0,
		    EF_NOTIFY_SUCCESS | EF_NOTIFY_FAILURE | EF_NOTIFY_DELAY },
		{ " notify=delay", 0, EF_NOTIFY_DELAY },
		{ " NOTIFY=NEVER,SUCCESS", 501, 0 },
		{ " NOTIFY=SUCCESS,SUCCESS", 501, 0 },
		{ " NOTIFY=", 501, 0 },
		{ " NOTIFY=,SUCCESS", 501, 0 },
		{ " NOTIFY=SUCCESS,", 501, 0 },
		{ " NOTIFY=SUCCESS,,DELAY", 501, 0 },
		{ " NOTIFY=SOMETIMES", 501, 0 },
		{ " NOTIFY=DELAY NOTIFY=DELAY", 501, 0 },
		{ " ORCPT=rfc822;a+40b.test", 0, 0 },
		{ " ORCPT=rfc822", 501, 0 },
		{ " ORCPT=rfc822;", 501, 0 },
		{ " ORCPT=rfc822;a+4", 501, 0 },
		{ " ORCPT=rfc822;a ORCPT=rfc822;b", 501, 0 },
		{ " SIZE=1", 555, 0 },
	};
	struct smtp_rcpt_params	rp;
	char			reply[SMTP_REPLY_MAX];
	size_t			i;
	int			rc;

	for (i = 0; i < NELEM(cases); i++) {
		reply[0] = '\0';
		rc = smtp_parse_rcpt_params(cases[i].in, 1, &rp, reply,
		    sizeof(reply));
		if (code(rc, reply) != cases[i].code)
			fail_msg("RCPT \"%s\": got %d \"%s\", want %d",
			    cases[i].in, rc, reply, cases[i].code);
		if (rc == 0 && rp.notify != cases[i].notify)
			fail_msg("RCPT \"%s\": notify %#x", cases[i].in,
			    rp.notify);
	}
	assert_int_equal(smtp_parse_rcpt_params(" NOTIFY=NEVER", 0, &rp,
	    reply, sizeof(reply)), -1);
	assert_int_equal(atoi(reply), 555);
	assert_int_equal(smtp_parse_rcpt_params(" ORCPT=rfc822;x+40y", 1, &rp,
	    reply, sizeof(reply)), 0);
	assert_string_equal(rp.orcpt, "rfc822;x+40y");
}

static void
test_bdat(void **state)
{
	static const struct {
		const char	*in;
		int		 rc;
		uint64_t	 size;
		int		 last;
	} cases[] = {
		{ "0", 0, 0, 0 },
		{ "0 LAST", 0, 0, 1 },
		{ "100 last", 0, 100, 1 },
		{ "18446744073709551615", 0, UINT64_MAX, 0 },
		{ "18446744073709551616", -1, 0, 0 },
		{ "", -1, 0, 0 },
		{ "x", -1, 0, 0 },
		{ "10 FIRST", -1, 0, 0 },
		{ "10  LAST", -1, 0, 0 },
		{ "-1", -1, 0, 0 },
		{ " 10", -1, 0, 0 },
		{ "10 LAST x", -1, 0, 0 },
	};
	uint64_t	size;
	int		last;
	size_t		i;

	for (i = 0; i < NELEM(cases); i++) {
		size = 0;
		last = 0;
		if (smtp_parse_bdat(cases[i].in, &size, &last) != cases[i].rc)
			fail_msg("BDAT \"%s\": wrong result", cases[i].in);
		if (cases[i].rc == 0 && (size != cases[i].size ||
		    last != cases[i].last))
			fail_msg("BDAT \"%s\": size/last", cases[i].in);
	}
	assert_int_equal(smtp_parse_bdat(NULL, &size, &last), -1);
}

static void
test_base64(void **state)
{
	static const struct {
		const char	*enc;
		const char	*dec;	/* NULL: invalid */
	} cases[] = {
		{ "", "" },
		{ "Zg==", "f" },
		{ "Zm8=", "fo" },
		{ "Zm9v", "foo" },
		{ "Zm9vYg==", "foob" },
		{ "Zm9vYmE=", "fooba" },
		{ "Zm9vYmFy", "foobar" },
		{ "Zm9", NULL },
		{ "Zg=", NULL },
		{ "Z===", NULL },
		{ "Zg==Zg==", NULL },
		{ "Zm=v", NULL },
		{ "Zh==", NULL },		/* non-zero padding bits */
		{ "Zm9=", NULL },
		{ "Zm9v YmFy", NULL },
		{ "Zm9v\n", NULL },
		{ "!!!!", NULL },
	};
	unsigned char	out[64];
	char		enc[64];
	size_t		i;
	int		n;

	for (i = 0; i < NELEM(cases); i++) {
		n = smtp_b64_decode(cases[i].enc, out, sizeof(out));
		if (cases[i].dec == NULL) {
			if (n != -1)
				fail_msg("b64 \"%s\" accepted", cases[i].enc);
			continue;
		}
		if (n != (int)strlen(cases[i].dec) ||
		    memcmp(out, cases[i].dec, (size_t)n) != 0)
			fail_msg("b64 \"%s\" decoded wrong", cases[i].enc);
		n = smtp_b64_encode((const unsigned char *)cases[i].dec,
		    strlen(cases[i].dec), enc, sizeof(enc));
		if (n < 0 || strcmp(enc, cases[i].enc) != 0)
			fail_msg("b64 encode \"%s\"", cases[i].dec);
	}
	/* room for the NUL is required */
	assert_int_equal(smtp_b64_decode("Zm9v", out, 3), -1);
	assert_int_equal(smtp_b64_decode("Zm9v", out, 4), 3);
	assert_int_equal(smtp_b64_encode((const unsigned char *)"foo", 3, enc,
	    4), -1);
}

static void
test_sasl_plain(void **state)
{
	char	user[16], pass[16];

	assert_int_equal(smtp_parse_sasl_plain((const unsigned char *)
	    "\0alice\0secret", 13, user, sizeof(user), pass, sizeof(pass)), 0);
	assert_string_equal(user, "alice");
	assert_string_equal(pass, "secret");
	assert_int_equal(smtp_parse_sasl_plain((const unsigned char *)
	    "alice\0alice\0secret", 18, user, sizeof(user), pass,
	    sizeof(pass)), 0);
	/* proxy authorisation refused */
	assert_int_equal(smtp_parse_sasl_plain((const unsigned char *)
	    "root\0alice\0secret", 17, user, sizeof(user), pass,
	    sizeof(pass)), -1);
	/* missing parts, empty user or password, controls, too long */
	assert_int_equal(smtp_parse_sasl_plain((const unsigned char *)
	    "alice\0secret", 12, user, sizeof(user), pass, sizeof(pass)), -1);
	assert_int_equal(smtp_parse_sasl_plain((const unsigned char *)
	    "\0\0secret", 8, user, sizeof(user), pass, sizeof(pass)), -1);
	assert_int_equal(smtp_parse_sasl_plain((const unsigned char *)
	    "\0alice\0", 7, user, sizeof(user), pass, sizeof(pass)), -1);
	assert_int_equal(smtp_parse_sasl_plain((const unsigned char *)
	    "\0al\rice\0x", 9, user, sizeof(user), pass, sizeof(pass)), -1);
	assert_int_equal(smtp_parse_sasl_plain((const unsigned char *)
	    "\0alice\0pass\0word", 16, user, sizeof(user), pass,
	    sizeof(pass)), -1);
	assert_int_equal(smtp_parse_sasl_plain((const unsigned char *)
	    "\0a-very-long-user-name\0x", 24, user, sizeof(user), pass,
	    sizeof(pass)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_rcpt_params),
		cmocka_unit_test(test_tls_required),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_sasl_plain),
	};

	return cmocka_run_group_tests_name("smtp_parse", tests, NULL, NULL);
}
