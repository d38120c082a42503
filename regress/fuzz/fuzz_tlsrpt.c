/*
 * fuzz_tlsrpt.c -- libFuzzer harness for the TLS-RPT readers of
 * untrusted text: the "_smtp._tls" TXT record (common/tlsrpt.c, from
 * DNS), its mailto: URIs, and the lines of the spool file tlsrpt/records
 * (common/tlsrpt_rec.c; the input is split into lines as the queue
 * splits the file, the last one maybe torn).
 *
 * Checked beyond "does not crash": an accepted record has 1 to
 * TLSRPT_MAX_RUA URIs, each NUL-terminated, printable, without ',' or
 * ';'; a decoded mailto: address is printable ASCII with one '@'; an
 * accepted spool line is a valid record that, written again, reads back
 * to the same record and time.
 */
#include <string.h>

#include "fuzz.h"

#include "tlsrpt.h"
#include "tlsrpt_rec.h"

static void
check_record(const char *p, size_t n)
{
	struct tlsrpt_record	rec;
	char			addr[TLSRPT_URI_MAX];
	const char		*s, *at;
	size_t			i;

	if (tlsrpt_record_parse(p, n, &rec) != 0)
		return;
	CHECK(rec.nrua >= 1 && rec.nrua <= TLSRPT_MAX_RUA);
	for (i = 0; i < rec.nrua; i++) {
		CHECK(memchr(rec.rua[i], '\0', sizeof(rec.rua[i])) != NULL);
		for (s = rec.rua[i]; *s != '\0'; s++)
			CHECK(*s > ' ' && *s <= '~' && *s != ',' && *s != ';');
		if (tlsrpt_uri_mailto(rec.rua[i], addr, sizeof(addr)) == 0) {
			for (s = addr; *s != '\0'; s++)
				CHECK(*s > ' ' && *s <= '~');
			CHECK((at = strchr(addr, '@')) != NULL &&
			    strchr(at + 1, '@') == NULL);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct queue_tlsrpt_record	r, back;
	static char				line[TLSRPT_REC_LINE_MAX];
	const char				*p = (const char *)data;
	const char				*end = p + size, *nl;
	int64_t					when, when2;
	int					n;

	check_record(p, size);
	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (tlsrpt_rec_parse(p, (size_t)(nl - p), &r, &when) == -1)
			continue;
		CHECK(tlsrpt_rec_valid(&r) == 0);
		CHECK(when >= 0);
		n = tlsrpt_rec_format(&r, when, line, sizeof(line));
		CHECK(n > 0 && (size_t)n < sizeof(line) && line[n - 1] == '\n');
		CHECK(tlsrpt_rec_parse(line, (size_t)n, &back, &when2) == 0);
		CHECK(when2 == when);
		CHECK(memcmp(&r, &back, sizeof(r)) == 0);
	}
	return 0;
}
