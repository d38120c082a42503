/*
 * test_bounce.c -- the DSN that queue/bounce.c writes (RFC 3464).
 *
 * bounce.c is included whole so that bounce_write(), which only the
 * queue's event loop reaches, can be given one recipient here.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../queue/bounce.c"

/* an unnamed temporary file (memfd_create is Linux and GNU only) */
static int
anon_fd(void)
{
	char	path[] = "/tmp/test_bounce.XXXXXX";
	int	fd;

	if ((fd = mkstemp(path)) != -1)
		unlink(path);
	return fd;
}

/* the DSN for one recipient with this diagnostic, ORCPT and flags */
static char *
write_dsn_flags(const char *text, const char *reply, const char *orcpt,
    enum dsn_action action, uint32_t flags)
{
	static const char	 orig[] = "Subject: x\n\nbody\n";
	struct envelope		 e;
	struct delivery_result	 r;
	struct bounce		 b;
	struct stat		 st;
	char			*dsn;
	int			 msgfd, outfd;

	memset(&e, 0, sizeof(e));
	memset(&r, 0, sizeof(r));
	memset(&b, 0, sizeof(b));
	e.id = (uint64_t)0x1234 << 32 | 1;
	snprintf(e.sender.user, sizeof(e.sender.user), "alice");
	snprintf(e.sender.domain, sizeof(e.sender.domain), "example.org");
	snprintf(e.dest.user, sizeof(e.dest.user), "bob");
	snprintf(e.dest.domain, sizeof(e.dest.domain), "example.net");
	snprintf(e.orcpt, sizeof(e.orcpt), "%s", orcpt);
	e.dest_type = DEST_REMOTE;
	e.flags = flags;
	snprintf(r.text, sizeof(r.text), "%s", text);
	snprintf(r.reply, sizeof(r.reply), "%s", reply);
	snprintf(r.relay, sizeof(r.relay), "mx.example.net[192.0.2.1]:25");
	msgfd = anon_fd();
	outfd = anon_fd();
	assert_true(msgfd != -1 && outfd != -1);
	assert_int_equal(write(msgfd, orig, sizeof(orig) - 1),
	    sizeof(orig) - 1);
	b.action = action;
	b.orig = e;
	b.fd = msgfd;
	b.size = sizeof(orig) - 1;
	assert_int_equal(bounce_add_rcpt(&b, &e, &r), 0);
	assert_int_equal(bounce_write(&b, 0xabcd, outfd), 0);
	free(b.rcpts);
	close(msgfd);
	assert_int_equal(fstat(outfd, &st), 0);
	dsn = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(dsn);
	assert_int_equal(pread(outfd, dsn, (size_t)st.st_size, 0),
	    st.st_size);
	close(outfd);
	return dsn;
}

static char *
write_dsn(const char *text, const char *reply, const char *orcpt)
{
	return write_dsn_flags(text, reply, orcpt, DSN_FAILED, 0);
}

/* everything before the returned original is ours: US-ASCII only */
static void
assert_report_ascii(const char *dsn)
{
	const char	*end = strstr(dsn, "Content-Type: message/rfc822");
	const char	*p;

	assert_non_null(end);
	for (p = dsn; p < end; p++)
		assert_true((unsigned char)*p < 0x80);
}

/* found by fuzz_bounce: a server's 8-bit reply went into the report */
static void
test_diagnostic_8bit(void **state)
{
	char	*dsn;

	(void)state;
	dsn = write_dsn("5.2.2 mailbox full \xc3\xa9\xff",
	    "552 5.2.2 \xe2\x80\x9c" "full\xe2\x80\x9d", "");
	assert_report_ascii(dsn);
	assert_non_null(strstr(dsn, "Diagnostic-Code: smtp; 552 5.2.2 "
	    "???full???\n"));
	assert_non_null(strstr(dsn, "<bob@example.net>: 5.2.2 mailbox full "
	    "???\n"));
	free(dsn);
}

/* an ORCPT whose xtext decodes to 8-bit stays in its ASCII form */
static void
test_orcpt_8bit(void **state)
{
	char	*dsn;

	(void)state;
	dsn = write_dsn("5.1.1 no such user", "",
	    "rfc822;b+C3+A9b@example.net");
	assert_report_ascii(dsn);
	assert_non_null(strstr(dsn, "Original-Recipient: "
	    "rfc822;b+C3+A9b@example.net\n"));
	free(dsn);
	/* an ASCII one is shown decoded, as before */
	dsn = write_dsn("5.1.1 no such user", "",
	    "rfc822;bob+2Bx@example.net");
	assert_non_null(strstr(dsn, "Original-Recipient: "
	    "rfc822;bob+x@example.net\n"));
	free(dsn);
}

/*
 * RFC 8689 5: the DSN of a REQUIRETLS message (which goes without it)
 * holds nothing of the original, header or body, whatever RET asked;
 * without the flag the same DSN returns the message.
 */
static void
test_requiretls_redacted(void **state)
{
	static const enum dsn_action	actions[] = {
		DSN_FAILED, DSN_DELAYED, DSN_DELIVERED
	};
	char	*dsn;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		dsn = write_dsn_flags("5.7.30 REQUIRETLS support required", "",
		    "", actions[i], EF_REQUIRETLS | EF_DSN_RET_FULL);
		assert_non_null(strstr(dsn, "Content-Type: "
		    "message/delivery-status\n"));
		assert_null(strstr(dsn, "message/rfc822"));
		assert_null(strstr(dsn, "rfc822-headers"));
		assert_null(strstr(dsn, "Subject: x"));
		assert_null(strstr(dsn, "body"));
		assert_non_null(strstr(dsn, "(REQUIRETLS)"));
		/* the MIME structure still ends */
		assert_non_null(strstr(dsn, "\n--0000abcd/mx.example.org--\n"));
		free(dsn);
	}
	dsn = write_dsn_flags("5.1.1 no such user", "", "", DSN_FAILED,
	    EF_DSN_RET_FULL);
	assert_non_null(strstr(dsn, "Content-Type: message/rfc822\n"));
	assert_non_null(strstr(dsn, "Subject: x\n\nbody\n"));
	assert_null(strstr(dsn, "REQUIRETLS"));
	free(dsn);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diagnostic_8bit),
		cmocka_unit_test(test_orcpt_8bit),
		cmocka_unit_test(test_requiretls_redacted),
	};
	static struct smtpd_config c;

	snprintf(c.hostname, sizeof(c.hostname), "mx.example.org");
	conf = &c;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
