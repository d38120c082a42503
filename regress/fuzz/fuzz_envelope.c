/*
 * fuzz_envelope.c -- libFuzzer harness for common/envelope.c, the reader
 * of envelope files in the spool.
 *
 * Whatever envelope_load() accepts must be a valid envelope, must write
 * back out, and must read back to the same struct: the on-disk form can
 * never carry more than the struct says.  The input's tail is also read
 * as a message file's footer: one accepted must add up to the file and
 * format back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope	e, again;
	char		buf[16384];
	int		n;

	if (size >= SPOOL_FOOTER_LEN) {
		char		f[SPOOL_FOOTER_LEN + 1];
		uint64_t	body;
		size_t		envlen;
		uint8_t		mac[SPOOL_MAC_LEN];

		if (spool_footer_parse((const char *)data + size -
		    SPOOL_FOOTER_LEN, SPOOL_FOOTER_LEN, size, &body,
		    &envlen, mac) == 0) {
			if (body + envlen + SPOOL_FOOTER_LEN != size)
				abort();
			spool_footer_format(f, body, envlen, mac);
			if (memcmp(f, data + size - SPOOL_FOOTER_LEN,
			    SPOOL_FOOTER_LEN) != 0)
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
