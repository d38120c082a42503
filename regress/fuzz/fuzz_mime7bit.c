/*
 * fuzz_mime7bit.c -- libFuzzer harness for mta/mime7bit.c, the 8-bit
 * to 7-bit MIME converter of the mta.
 *
 * The first input byte picks the size of the pieces the rest is fed in.
 * Whatever the message, the converter must keep its promises: a message
 * the first pass accepts converts without error and comes out all
 * 7-bit (every 8-bit byte was in a part it re-encodes), the output does
 * not depend on how the input was cut, and a refusal says why.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "mime7bit.h"

struct out {
	char	*buf;
	size_t	 len, cap;
};

static int
out_add(void *arg, const char *p, size_t n)
{
	struct out	*o = arg;
	char		*nb;

	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		if ((nb = realloc(o->buf, o->cap)) == NULL)
			abort();
		o->buf = nb;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

static int
feed(struct mime7bit *c, const uint8_t *p, size_t len, size_t chunk)
{
	size_t	off, n;

	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		if (mime7bit_feed(c, (const char *)p + off, n) == -1)
			return -1;
	}
	return mime7bit_finish(c);
}

/* both passes; 0 and the output, or -1 when refused */
static int
run(const uint8_t *p, size_t len, size_t chunk, struct out *o)
{
	struct mime7bit	*c = mime7bit_new();
	int		 rc = 0;

	if (c == NULL)
		abort();
	if (feed(c, p, len, chunk) == -1) {
		CHECK(mime7bit_error(c) != NULL);
		CHECK(mime7bit_convert(c, out_add, o) == -1);
		rc = -1;
	} else {
		CHECK(mime7bit_error(c) == NULL);
		CHECK(mime7bit_convert(c, out_add, o) == 0);
		CHECK(feed(c, p, len, chunk) == 0);
	}
	mime7bit_free(c);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct out	 a = { NULL, 0, 0 }, b = { NULL, 0, 0 };
	size_t		 chunk, i;
	int		 ra, rb;

	if (len < 1)
		return 0;
	chunk = 1 + data[0] % 64;
	data++, len--;
	ra = run(data, len, len > 0 ? len : 1, &a);
	rb = run(data, len, chunk, &b);
	CHECK(ra == rb);
	if (ra == 0) {
		CHECK(a.len == b.len);
		CHECK(a.len == 0 || memcmp(a.buf, b.buf, a.len) == 0);
		for (i = 0; i < a.len; i++)
			CHECK(((unsigned char)a.buf[i] & 0x80) == 0);
	}
	free(a.buf);
	free(b.buf);
	return 0;
}
