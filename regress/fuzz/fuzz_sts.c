/*
 * fuzz_sts.c -- libFuzzer harness for common/sts.c: the input is read
 * as an MTA-STS policy file, as a "_mta-sts" TXT record and as the
 * lookup process's cache file of a policy.
 *
 * Checked beyond "does not crash": an accepted policy has the fields
 * its mode needs, a max_age within the RFC's bound and lower-case host
 * patterns that match themselves (their "*." wildcard a one-label host);
 * an accepted record's id is 1-32 letters and digits; a cache file
 * made from an accepted policy reads back to the same policy.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "sts.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sts_policy	p;
	static struct sts_cache		c;
	static char			buf[STS_POLICY_MAX + 512];
	const char			*in = (const char *)data, *why;
	char				 id[STS_ID_MAX], host[STS_NAME_MAX + 2];
	size_t				 i, n;
	long				 len;

	if (sts_policy_parse(in, size, &p, &why) == 0) {
		CHECK(why == NULL);
		CHECK(p.max_age <= STS_MAX_AGE_MAX);
		CHECK(p.mode == STS_MODE_NONE || p.nmx > 0);
		CHECK(p.nmx <= STS_MX_MAX);
		for (i = 0; i < p.nmx; i++) {
			n = strlen(p.mx[i]);
			CHECK(n > 0 && n < STS_NAME_MAX);
			if (p.mx[i][0] == '*') {
				host[0] = 'x';
				memcpy(host + 1, p.mx[i] + 1, n);
			} else
				memcpy(host, p.mx[i], n + 1);
			CHECK(sts_mx_match(p.mx[i], host));
			CHECK(sts_policy_mx_match(&p, host));
		}
		len = sts_cache_encode(buf, sizeof(buf), "fuzz1", 1700000000,
		    in, size);
		CHECK(len > 0);
		CHECK(sts_cache_decode(buf, (size_t)len, &c) == 0);
		CHECK(strcmp(c.id, "fuzz1") == 0);
		CHECK(memcmp(&c.policy, &p, sizeof(p)) == 0);
	} else
		CHECK(why != NULL);
	if (sts_txt_parse(in, size, id) == 0) {
		n = strlen(id);
		CHECK(n > 0 && n < STS_ID_MAX);
		for (i = 0; i < n; i++)
			CHECK((id[i] >= '0' && id[i] <= '9') ||
			    (id[i] >= 'a' && id[i] <= 'z') ||
			    (id[i] >= 'A' && id[i] <= 'Z'));
	}
	(void)sts_cache_decode(in, size, &c);
	return 0;
}
