/*
 * fuzz_tls_policy.c -- libFuzzer harness for config/tls_policy.c: a
 * value of the TLS policy table, as an administrator (or whoever can
 * write the table) wrote it.
 *
 * The value arrives NUL-terminated in an allocation of exactly its size
 * (a NUL inside cuts it, as a table read would).  Checked beyond "does
 * not crash": a value that parses has a level conf_tls_level_name()
 * knows, match= names only for verify and secure, each non-empty,
 * NUL-terminated within its field and free of the separators; and the
 * value parses the same way a second time.  A refused value says why.
 */
#include <string.h>

#include "fuzz.h"

#include "config.h"
#include "tls_policy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tls_policy	tp, again;
	char				*value, err[256];
	int				 i, r;

	if ((value = malloc(size + 1)) == NULL)
		return 0;
	memcpy(value, data, size);
	value[size] = '\0';
	err[0] = '\0';
	r = tls_policy_parse(value, &tp, err, sizeof(err));
	CHECK(r == 0 || r == -1);
	if (r == -1) {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		free(value);
		return 0;
	}
	CHECK(strcmp(conf_tls_level_name(tp.level), "?") != 0);
	CHECK(tp.nmatch >= 0 && tp.nmatch <= TLS_POLICY_MATCH_MAX);
	CHECK(tp.nmatch == 0 || tp.level == RELAY_TLS_VERIFY ||
	    tp.level == RELAY_TLS_SECURE);
	for (i = 0; i < tp.nmatch; i++) {
		CHECK(memchr(tp.match[i], '\0', sizeof(tp.match[i])) != NULL);
		CHECK(tp.match[i][0] != '\0');
		CHECK(strpbrk(tp.match[i], ": \t=") == NULL);
	}
	CHECK(tls_policy_parse(value, &again, err, sizeof(err)) == 0);
	CHECK(memcmp(&tp, &again, sizeof(tp)) == 0);
	free(value);
	return 0;
}
