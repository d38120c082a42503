/*
 * fuzz_envelope.c -- libFuzzer harness for common/envelope.c, the reader
 * of envelope files in the spool.
 *
 * Whatever envelope_load() accepts must be a valid envelope, must write
 * back out, and must read back to the same struct: the on-disk form can
 * never carry more than the struct says.  The input's tail is also read
 * as a message file's footer, of either version: one accepted must add
 * up to the file (message, added headers, envelope, footer) and format
 * back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "spool_msg.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope	e, again;
	char		buf[16384];
	int		n;

	if (size >= SPOOL_FOOTER_LEN) {
		char			f[SPOOL_FOOTER_MAX + 1];
		struct spool_footer	ft, fa;
		size_t			tl = size < SPOOL_FOOTER_MAX ? size :
					    SPOOL_FOOTER_MAX;

		if (spool_footer_parse((const char *)data + size - tl, tl,
		    size, &ft) == 0) {
			if (ft.body + ft.head + ft.envlen + ft.len != size ||
			    (ft.head > 0) != (ft.len == SPOOL_FOOTER2_LEN) ||
			    ft.head > SPOOL_HEAD_MAX ||
			    ft.envlen >= SPOOL_ENVELOPE_MAX)
				abort();
			fa = ft;
			if (spool_footer_format(f, &fa) != ft.len ||
			    memcmp(f, data + size - ft.len, ft.len) != 0)
				abort();
		}
	}
	if (envelope_load((const char *)data, size, &e) == -1)
		return 0;
	if (envelope_valid(&e) == -1)
		abort();
	if ((n = envelope_dump(&e, buf, sizeof(buf))) <= 0)
		abort();
	if (envelope_load(buf, (size_t)n, &again) == -1)
		abort();
	if (memcmp(&e, &again, sizeof(e)) != 0)
		abort();
	return 0;
}
