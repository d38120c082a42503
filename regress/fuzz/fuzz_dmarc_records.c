/*
 * fuzz_dmarc_records.c -- libFuzzer harness for common/dmarc_rec.c's
 * reader of dmarc/records, the spool file of DMARC report rows: the
 * input is split into lines as queue/dmarc_send.c splits the file (the
 * last one may be torn), and each is parsed.
 *
 * Checked beyond "does not crash": a line is accepted only as a valid
 * row (dmarc_rec_valid()); an accepted row written again
 * (dmarc_rec_format()) gives a line that reads back to the same row and
 * time, so what the queue writes it can always read, and nothing it
 * reads changes on the way round.
 */
#include <string.h>

#include "fuzz.h"

#include "dmarc_rec.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct queue_dmarc_record	r, back;
	static char				line[DMARC_REC_LINE_MAX];
	const char				*p = (const char *)data;
	const char				*end = p + size, *nl;
	int64_t					when, when2;
	int					n;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (dmarc_rec_parse(p, (size_t)(nl - p), &r, &when) == -1)
			continue;
		CHECK(dmarc_rec_valid(&r) == 0);
		CHECK(when >= 0);
		n = dmarc_rec_format(&r, when, line, sizeof(line));
		CHECK(n > 0 && (size_t)n < sizeof(line) && line[n - 1] == '\n');
		CHECK(dmarc_rec_parse(line, (size_t)n, &back, &when2) == 0);
		CHECK(when2 == when);
		CHECK(memcmp(&r, &back, sizeof(r)) == 0);
	}
	return 0;
}
