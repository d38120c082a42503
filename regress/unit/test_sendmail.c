/*
 * test_sendmail.c -- sendmail(8)'s header fix-up, prepare_message().
 *
 * sendmail.c holds main(), so it is included whole with main renamed
 * and its warnings sent to /dev/null.
 */
#include <stdio.h>

static FILE	*test_devnull;
#undef stderr
#define stderr	test_devnull
#define main	sendmail_main
#include "../../programs/sendmail.c"
#undef main
#undef stderr

/* memmem(3), which glibc declares for _GNU_SOURCE only */
static const char *
find_bytes(const char *hay, size_t haylen, const char *needle, size_t len)
{
	size_t	i;

	for (i = 0; len <= haylen && i <= haylen - len; i++)
		if (memcmp(hay + i, needle, len) == 0)
			return hay + i;
	return NULL;
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

int	sendmail_main(int, char **);

static size_t	prepared_len;

static char *
prepare_len(const char *text, size_t len, int extract)
{
	static struct instance	inst;
	struct options		o;
	struct submission	sub;
	struct addr_sink	sink;
	struct buf		in;
	char			*msg;

	snprintf(inst.mailname, sizeof(inst.mailname), "example.org");
	me.pw_name = (char *)"alice";
	me.pw_gecos = (char *)"Alice";
	memset(&o, 0, sizeof(o));
	o.extract = extract;
	submission_init(&sub);
	memset(&sink, 0, sizeof(sink));
	sink.sub = &sub;
	sink.inst = &inst;
	memset(&in, 0, sizeof(in));
	buf_add(&in, text, len);
	prepare_message(&o, &inst, &in, &sub, &sink);
	/* a copy, NUL-terminated; its length for messages holding NULs */
	msg = malloc(sub.msglen + 1);
	assert_non_null(msg);
	memcpy(msg, sub.msg, sub.msglen);
	msg[sub.msglen] = '\0';
	prepared_len = sub.msglen;
	submission_free(&sub);
	return msg;
}

static char *
prepare(const char *text, int extract)
{
	return prepare_len(text, strlen(text), extract);
}

/* found by fuzz_sendmail: a last Bcc without its LF ended the header */
static void
test_dropped_last_bcc_keeps_header(void **state)
{
	char	*msg, *blank;

	(void)state;
	msg = prepare("To: bob@example.net\nBcc: carol@example.net", 1);
	assert_non_null(msg);
	blank = strstr(msg, "\n\n");
	assert_non_null(blank);
	/* From, Date and Message-ID are in the header, not the body */
	assert_non_null(strstr(msg, "\nFrom: "));
	assert_true(strstr(msg, "\nFrom: ") < blank);
	assert_true(strstr(msg, "\nDate: ") < blank);
	assert_true(strstr(msg, "\nMessage-ID: ") < blank);
	assert_null(strstr(msg, "carol"));
	free(msg);
}

/* a last kept field without its LF still gets one */
static void
test_last_field_without_lf(void **state)
{
	char	*msg;

	(void)state;
	msg = prepare("To: bob@example.net\nSubject: hi", 0);
	assert_non_null(strstr(msg, "\nSubject: hi\nFrom: "));
	free(msg);
}

/*
 * found by fuzz_sendmail: an address running to the end of its field
 * (an unterminated quote after a NUL) got "@example.org" after the LF,
 * and that line swallowed the From: added after it
 */
static void
test_qualified_domain_stays_on_its_line(void **state)
{
	static const char	text[] = "To: a\0\"\n\nbody\n";
	char			*msg;

	(void)state;
	msg = prepare_len(text, sizeof(text) - 1, 0);
	assert_non_null(find_bytes(msg, prepared_len,
	    "\nFrom: Alice <alice@example.org>\n", 33));
	assert_null(find_bytes(msg, prepared_len, "\n@example.org", 13));
	free(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dropped_last_bcc_keeps_header),
		cmocka_unit_test(test_last_field_without_lf),
		cmocka_unit_test(test_qualified_domain_stays_on_its_line),
	};

	if ((test_devnull = fopen("/dev/null", "w")) == NULL)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
