/*
 * fuzz_mta_reply.c -- libFuzzer harness for common/mta_reply.c, the
 * parser of what remote SMTP servers answer.
 *
 * The input is split at '\n' into reply lines fed one by one.  Whatever
 * the parser accepts must keep its promises: a code in 200..599, text
 * within bounds, NUL-terminated, printable ASCII and '\n' only, and an
 * enhanced status of the right class.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "mta.h"



static void
check_reply(const struct mta_reply *r)
{
	char		st[16], one[512];
	uint64_t	size;
	size_t		i;

	CHECK(r->code >= 200 && r->code <= 599);
	CHECK(r->len < sizeof(r->text) && r->text[r->len] == '\0');
	CHECK(strlen(r->text) == r->len);
	for (i = 0; i < r->len; i++)
		CHECK(r->text[i] == '\n' ||
		    (r->text[i] >= 0x20 && r->text[i] < 0x7f));
	mta_reply_status(r, st, sizeof(st));
	CHECK(st[0] == '0' + (r->code / 100 == 3 ? 2 : r->code / 100));
	mta_reply_oneline(r, one, sizeof(one));
	CHECK(strlen(one) < sizeof(one) && strchr(one, '\n') == NULL);
	(void)mta_reply_extensions(r, &size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct mta_reply	 r;
	const uint8_t		*p = data, *end = data + len, *nl;
	char			*line;
	size_t			 n;
	int			 v;

	mta_reply_init(&r);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if ((line = malloc(n + 1)) == NULL)
			return 0;
		memcpy(line, p, n);
		line[n] = '\0';
		v = mta_reply_line(&r, line, n);
		free(line);
		if (v == MTA_REPLY_BAD)
			mta_reply_init(&r);
		else if (v == MTA_REPLY_DONE)
			check_reply(&r);
		p += n + (nl != NULL);
	}
	return 0;
}
