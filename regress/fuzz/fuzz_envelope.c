/*
 * fuzz_envelope.c -- libFuzzer harness for common/envelope.c, the reader
 * of envelope files in the spool.
 *
 * Whatever envelope_load() accepts must be a valid envelope, must write
 * back out, and must read back to the same struct: the on-disk form can
 * never carry more than the struct says.
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
