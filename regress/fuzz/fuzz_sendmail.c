/*
 * fuzz_sendmail.c -- libFuzzer harness for sendmail(8)'s own parsers
 * (programs/sendmail.c): the RFC 5322 address lists of the command line
 * and of To/Cc/Bcc with -t, and the header fix-up (prepare_message())
 * that drops Bcc, adds From, Date and Message-ID and qualifies
 * addresses.  Whoever runs sendmail chooses all of it, and so does
 * whatever web application pipes a form's fields into it.
 *
 * sendmail.c holds main() and is not in the library, so it is included
 * here whole, its main() renamed, its warnings sent to /dev/null.
 *
 * Input: byte 0's low bit selects -t; the rest is the message (the
 * first line also goes through parse_address_list() as a command-line
 * argument).
 *
 * Beyond "does not crash": every recipient collected is a qualified
 * mailbox the address parser accepts, with no two the same (ignoring
 * case); the prepared message's header has no Bcc or Resent-Bcc field
 * and has From, Date and Message-ID; and what follows the input's
 * first blank line ends it unchanged.
 */
#include <stdio.h>

static FILE	*fuzz_devnull, *fuzz_stderr;
#undef stderr
#define stderr	fuzz_devnull
#define main	sendmail_main
#include "../../programs/sendmail.c"
#undef main
#undef stderr

#include "fuzz.h"

int	sendmail_main(int, char **);

static struct instance	inst;

static void
check_rcpts(const struct submission *s)
{
	struct mailaddr	a;
	size_t		i, j;

	for (i = 0; i < s->nrcpts; i++) {
		CHECK(strchr(s->rcpts[i], '@') != NULL);
		CHECK(addr_parse_mailbox(s->rcpts[i], &a, ADDR_ALLOW_UTF8) ==
		    ADDR_OK);
		for (j = 0; j < i && s->nrcpts < 100; j++)
			CHECK(strcasecmp(s->rcpts[i], s->rcpts[j]) != 0);
	}
}

/* the header of the prepared message, field by field */
static void
check_header(const char *msg, size_t len, const char **body)
{
	const char	*p = msg, *end = msg + len, *nl;
	int		 from = 0, date = 0, msgid = 0;

	while (p < end && *p != '\n') {
		nl = memchr(p, '\n', (size_t)(end - p));
		CHECK(nl != NULL);
		if (*p != ' ' && *p != '\t') {
			CHECK(strncasecmp(p, "Bcc:", 4) != 0);
			CHECK(strncasecmp(p, "Resent-Bcc:", 11) != 0);
			from |= strncasecmp(p, "From:", 5) == 0;
			date |= strncasecmp(p, "Date:", 5) == 0;
			msgid |= strncasecmp(p, "Message-ID:", 11) == 0;
		}
		p = nl + 1;
	}
	CHECK(p < end);		/* the blank line */
	CHECK(from && date && msgid);
	*body = p + 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 inited;
	struct options		 o;
	struct submission	 sub;
	struct addr_sink	 sink;
	struct buf		 in;
	const char		*body, *nl, *ibody;
	char			*line;
	size_t			 llen;

	if (!inited) {
		if ((fuzz_devnull = fopen("/dev/null", "w")) == NULL ||
		    (fuzz_stderr = fdopen(2, "w")) == NULL)
			abort();
		snprintf(inst.mailname, sizeof(inst.mailname), "example.org");
		snprintf(inst.hostname, sizeof(inst.hostname),
		    "mx.example.org");
		me.pw_name = (char *)"alice";
		me.pw_gecos = (char *)"Alice Example,,,";
		inited = 1;
	}
	if (size < 1 || size > 64 * 1024)
		return 0;
	memset(&o, 0, sizeof(o));
	o.extract = data[0] & 1;
	submission_init(&sub);
	memset(&sink, 0, sizeof(sink));
	sink.sub = &sub;
	sink.inst = &inst;

	/* the first line as a command-line argument */
	nl = memchr(data + 1, '\n', size - 1);
	llen = nl ? (size_t)(nl - (const char *)data - 1) : size - 1;
	if ((line = malloc(llen + 1)) == NULL)
		abort();
	memcpy(line, data + 1, llen);
	line[llen] = '\0';
	parse_address_list(line, &sink);
	free(line);
	check_rcpts(&sub);

	/* the message; NUL bytes end what sendmail would have read */
	memset(&in, 0, sizeof(in));
	if (size > 1)
		buf_add(&in, data + 1, size - 1);
	prepare_message(&o, &inst, &in, &sub, &sink);
	check_rcpts(&sub);
	/* FUZZ_SENDMAIL_SHOW=1 obj-fuzz/fuzz_sendmail FILE: the result */
	if (getenv("FUZZ_SENDMAIL_SHOW") != NULL)
		(void)(fwrite(sub.msg, 1, sub.msglen, fuzz_stderr) +
		    fflush(fuzz_stderr));
	check_header(sub.msg, sub.msglen, &body);
	/*
	 * What follows the input's first blank line is never changed: it
	 * ends the prepared message (the header may have ended earlier,
	 * at a line that is no field, and then more follows it).
	 */
	ibody = memmem(data + 1, size - 1, "\n\n", 2);
	if (ibody != NULL && (size - 1 < 5 ||
	    memcmp(data + 1, "From ", 5) != 0)) {
		size_t	tail = (size_t)((const char *)data + size - ibody) - 2;

		ibody += 2;
		CHECK((size_t)(sub.msg + sub.msglen - body) >= tail);
		CHECK(memcmp(sub.msg + sub.msglen - tail, ibody, tail) == 0);
	}
	submission_free(&sub);
	return 0;
}
