/*
 * fuzz_authres.c -- libFuzzer harness for common/authres.c: the
 * authserv-id reader, which decides whether a received
 * Authentication-Results header is a forgery of ours, and the builder
 * fed with hostile values.
 *
 * The header arrives in an allocation of exactly its size.  Checked
 * beyond "does not crash": an id, when found, is non-empty and within
 * its buffer; authres_is_ours() agrees with it; and a header built with
 * the input as every value keeps its promises (no CR, LF only before a
 * tab or at the end, no empty continuation line, lines within 78 columns
 * unless one word is longer) and is read back as ours.
 */
#include <string.h>
#include <strings.h>

#include "fuzz.h"

#include "authres.h"

static void
check_built(const char *h, size_t len)
{
	size_t	i;

	CHECK(strlen(h) == len && len > 0 && h[len - 1] == '\n');
	for (i = 0; i < len; i++) {
		CHECK(h[i] != '\r' && h[i] != '\0');
		if (h[i] == '\n' && i + 1 < len) {
			CHECK(h[i + 1] == '\t');
			CHECK(i + 2 < len && h[i + 2] != '\n');
		}
	}
	CHECK(authres_is_ours(h, len, "mx.example.org") == 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct authres	 ar;
	char			*hdr, *val, id[256];
	const char		*h;
	size_t			 len;
	int			 r, ours;

	if ((hdr = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(hdr, data, size);
	r = authres_parse_id(hdr, size, id, sizeof(id));
	CHECK(r == 0 || r == -1);
	ours = authres_is_ours(hdr, size, "mx.example.org");
	if (r == 0) {
		CHECK(id[0] != '\0' && strlen(id) < sizeof(id));
		CHECK(ours == (strcasecmp(id, "mx.example.org") == 0));
	} else
		CHECK(ours == -1 || ours == 0);
	free(hdr);

	/* the input as every value of a header we build */
	if ((val = malloc(size + 1)) == NULL)
		return 0;
	memcpy(val, data, size);
	val[size] = '\0';
	authres_begin(&ar, "mx.example.org");
	authres_spf(&ar, "pass", val, val);
	authres_dkim(&ar, "fail", val, val, val);
	authres_dmarc(&ar, "fail", "reject", "quarantine", val);
	authres_iprev(&ar, "pass", val, val);
	authres_method(&ar, val, val, val);
	h = authres_end(&ar, &len);
	if (h != NULL)
		check_built(h, len);
	free(val);
	return 0;
}
