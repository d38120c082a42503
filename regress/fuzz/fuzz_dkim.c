/*
 * fuzz_dkim.c -- libFuzzer harness for common/dkim.c and dkim_msg.c.
 *
 * The first byte chooses what the rest is:
 *	0	a tag-list (a DKIM-Signature value or a key record): the
 *		tags found lie inside the input, carry no FWS at either end
 *		of their values, and have distinct names
 *	1	a key record for RFC 8463 appendix A's ed25519 signature:
 *		any verdict is a valid word, and only a record holding the
 *		real key (FWS aside) may pass
 *	2	a message, fed line by line as the smtp worker does (no CR,
 *		LF or NUL inside a line: the worker refuses those):
 *		every signature found is a valid vsig, and when we can sign
 *		it, our signature, put before it, is found again on top by
 *		a second hasher with the header hash we signed and a body
 *		hash that matches -- the signer and the verifier agree on
 *		every message, folded headers, empty lines and all
 * A broken promise aborts, which libFuzzer records as a crash.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "dkim.h"

static const char rfc8463_msg[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\n"
    " d=football.example.com; i=@football.example.com;\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\n"
    " subject : date : message-id : from : subject : date;\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\n"
    "From: Joe SixPack <joe@football.example.com>\n"
    "To: Suzie Q <suzie@shopping.example.net>\n"
    "Subject: Is dinner ready?\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\n"
    "\n"
    "Hi.\n"
    "\n"
    "We lost the game.  Are you hungry yet?\n"
    "\n"
    "Joe.\n";
#define RFC8463_KEY	"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

/* feed text split at LF, a CR before the LF taken off with it */
static struct dkim_msg *
feed(const char *text, size_t len, int want_sign)
{
	struct dkim_msg	*m;
	size_t		 p = 0, e, l;

	CHECK((m = dkim_msg_new(want_sign)) != NULL);
	while (p < len) {
		const char	*nl = memchr(text + p, '\n', len - p);

		e = nl ? (size_t)(nl - text) : len;
		l = e - p;
		if (nl != NULL && l > 0 && text[e - 1] == '\r')
			l--;
		dkim_msg_line(m, text + p, l);
		p = e + 1;
	}
	dkim_msg_end(m);
	return m;
}

static void
fuzz_tags(const char *s, size_t len)
{
	struct dkim_tag	tags[DKIM_MAX_TAGS];
	int		n, i, j;

	n = dkim_tags_parse(s, len, tags, DKIM_MAX_TAGS);
	CHECK(n >= -1 && n <= DKIM_MAX_TAGS);
	for (i = 0; i < n; i++) {
		const struct dkim_tag	*t = &tags[i];

		CHECK(t->value >= s && t->value + t->len <= s + len);
		if (t->len > 0) {
			CHECK(strchr(" \t\r\n", t->value[0]) == NULL);
			CHECK(strchr(" \t\r\n", t->value[t->len - 1]) == NULL);
			CHECK(memchr(t->value, ';', t->len) == NULL);
		}
		for (j = 0; j < i; j++)
			CHECK(t->name[0] == '\0' ||
			    strcmp(t->name, tags[j].name) != 0);
	}
}

static void
fuzz_key(const char *s, size_t len)
{
	static struct dkim_msg	*m;
	struct dkim_vres	 res;
	enum dkim_result	 r;

	if (m == NULL)
		m = feed(rfc8463_msg, sizeof(rfc8463_msg) - 1, 0);
	CHECK(dkim_msg_nsigs(m) == 1);
	r = dkim_verify(dkim_msg_vsig(m, 0), s, len, 1528637909, &res);
	CHECK(r == res.result);
	CHECK(r >= DKIM_PASS && r <= DKIM_PERMERROR);
	CHECK(memchr(res.why, '\0', sizeof(res.why)) != NULL);
	if (r == DKIM_PASS) {
		char	*dense;
		size_t	 i, n = 0;

		/* base64 may hold FWS anywhere (RFC 6376 2.4) */
		CHECK((dense = malloc(len + 1)) != NULL);
		for (i = 0; i < len; i++)
			if (strchr(" \t\r\n", s[i]) == NULL || s[i] == '\0')
				dense[n++] = s[i];
		CHECK(memmem(dense, n, RFC8463_KEY, strlen(RFC8463_KEY)) !=
		    NULL);
		free(dense);
	}
}

static void
fuzz_message(const char *s, size_t len)
{
	struct dkim_msg		*m, *m2;
	struct dkim_sign	 sg;
	const struct dkim_vsig	*v;
	uint8_t			 digest[32], sig[64];
	char			 why[128], hdr[DKIM_HEADER_MAX + 1024];
	char			*both, *clean;
	ssize_t			 hlen;
	size_t			 k;

	/* what the worker lets through: no CR or NUL in a line */
	CHECK((clean = malloc(len + 1)) != NULL);
	for (k = 0; k < len; k++)
		clean[k] = s[k] == '\r' || s[k] == '\0' ? 'x' : s[k];
	s = clean;
	m = feed(s, len, 1);
	for (k = 0; k < dkim_msg_nsigs(m); k++) {
		struct dkim_vres	res;

		v = dkim_msg_vsig(m, k);
		CHECK(dkim_vsig_valid(v) == 0);
		dkim_vsig_precheck(v, 1528637909, &res);
		CHECK(res.result <= DKIM_PERMERROR);
	}
	CHECK(dkim_msg_nsigs(m) <= DKIM_MAX_SIGS);
	if (dkim_sign_prepare(m, "example.org", "sel",
	    DKIM_ALG_ED25519_SHA256, 1528637909, &sg, digest, why,
	    sizeof(why)) == -1) {
		dkim_msg_free(m);
		free(clean);
		return;
	}
	dkim_msg_free(m);
	memset(sig, 0xa5, sizeof(sig));
	hlen = dkim_sign_header(&sg, sig, sizeof(sig), hdr, sizeof(hdr));
	CHECK(hlen > 0);
	CHECK((both = malloc((size_t)hlen + len)) != NULL);
	memcpy(both, hdr, (size_t)hlen);
	memcpy(both + hlen, s, len);
	m2 = feed(both, (size_t)hlen + len, 0);
	free(both);
	free(clean);
	if (!dkim_msg_overflow(m2)) {
		CHECK(dkim_msg_nsigs(m2) >= 1);
		v = dkim_msg_vsig(m2, 0);
		CHECK(v->status == DKIM_NONE);
		CHECK(v->alg == DKIM_ALG_ED25519_SHA256);
		CHECK(v->blen == sizeof(sig));
		CHECK(memcmp(v->b, sig, sizeof(sig)) == 0);
		CHECK(memcmp(v->hh, digest, sizeof(digest)) == 0);
		CHECK(v->bh_ok == 1);
	}
	dkim_msg_free(m2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*s = (const char *)data + 1;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_tags(s, size - 1);
		break;
	case 1:
		fuzz_key(s, size - 1);
		break;
	default:
		fuzz_message(s, size - 1);
		break;
	}
	return 0;
}
