/*
 * fuzz_dmarc.c -- libFuzzer harness for lookup/dmarc.c's record parser
 * (a TXT record at _dmarc.<domain>: anyone on the Internet writes it)
 * and the rua mailto: reader.
 *
 * The record is handed over in an allocation of exactly its size, with
 * no NUL after it, as the DNS answer holds it.  Beyond "does not crash",
 * the promises of dmarc.h are checked: a result of -1, 0 or 1; for a
 * usable record, policies, alignment modes and pct in range, every URI
 * NUL-terminated within its field, printable ASCII without white space,
 * and p_invalid records left at p=none with at least one rua URI.
 */
#include <string.h>

#include "fuzz.h"

#include "dmarc.h"

static void
check_uri(const char *u)
{
	size_t	n = strnlen(u, DMARC_URI_MAX);
	char	addr[DMARC_URI_MAX];
	uint64_t max;

	CHECK(n > 0 && n < DMARC_URI_MAX);
	for (; *u; u++)
		CHECK(*u > 0x20 && *u < 0x7f && *u != ',');
	if (dmarc_uri_mailto(u - n, addr, sizeof(addr), &max) == 0) {
		CHECK(strchr(addr, '@') != NULL);
		for (u = addr; *u; u++)
			CHECK(*u > 0x20 && *u < 0x7f);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record	 rec;
	const char		*err = NULL;
	char			*txt;
	size_t			 i;
	int			 r;

	if ((txt = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(txt, data, size);
	r = dmarc_parse_record(txt, size, &rec, &err);
	CHECK(r >= -1 && r <= 1);
	if (r != 1) {
		CHECK(err != NULL);
	} else {
		CHECK(rec.policy >= DMARC_POLICY_NONE &&
		    rec.policy <= DMARC_POLICY_REJECT);
		CHECK(rec.subpolicy >= DMARC_POLICY_NONE &&
		    rec.subpolicy <= DMARC_POLICY_REJECT);
		CHECK(rec.pct >= 0 && rec.pct <= 100);
		CHECK(rec.adkim == DMARC_ALIGN_RELAXED ||
		    rec.adkim == DMARC_ALIGN_STRICT);
		CHECK(rec.aspf == DMARC_ALIGN_RELAXED ||
		    rec.aspf == DMARC_ALIGN_STRICT);
		CHECK(rec.fo != 0 && (rec.fo & ~0x0f) == 0);
		CHECK(rec.nrua <= DMARC_MAX_URI && rec.nruf <= DMARC_MAX_URI);
		for (i = 0; i < rec.nrua; i++)
			check_uri(rec.rua[i]);
		for (i = 0; i < rec.nruf; i++)
			check_uri(rec.ruf[i]);
		if (rec.p_invalid)
			CHECK(rec.policy == DMARC_POLICY_NONE &&
			    rec.subpolicy == DMARC_POLICY_NONE &&
			    rec.nrua > 0);
	}
	/* the same bytes as a URI, NUL-terminated */
	{
		char	*u = malloc(size + 1), addr[64];
		uint64_t max;

		if (u != NULL) {
			memcpy(u, data, size);
			u[size] = '\0';
			if (dmarc_uri_mailto(u, addr, sizeof(addr), &max) == 0)
				CHECK(strlen(addr) < sizeof(addr));
			free(u);
		}
	}
	free(txt);
	return 0;
}
