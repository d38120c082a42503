/*
 * fuzz_spf.c -- libFuzzer harness for lookup/spf_parse.c: the SPF record
 * parser and the macro expander, which read what any domain's owner put
 * in a TXT record (and, for %{l} and %{h}, what an SMTP client sent).
 *
 * The first byte chooses: even, the rest is a record for
 * spf_record_parse(); odd, the rest is a macro-string expanded with the
 * flags in bits 1-2 of that byte against a fixed context whose sender
 * and HELO come from the input too (after a NUL, when there is one).
 *
 * Beyond "does not crash", the promises of spf.h are checked: terms lie
 * inside the record, prefix lengths in range, at most one redirect= and
 * one exp=; an expansion is NUL-terminated inside its buffer, within
 * 253 characters for a domain-spec, agrees with spf_macro_check(), and
 * spf_macro_check() accepts exactly what the parser lets through.
 */

#include <string.h>

#include "fuzz.h"

#include "spf.h"

static void
fuzz_record(const char *rec, size_t len)
{
	struct spf_term	*t;
	char		 err[128];
	int		 n, i, redirect = 0, exp = 0;

	n = spf_record_parse(rec, len, &t, err, sizeof(err));
	if (n == -1) {
		CHECK(t == NULL);
		CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		return;
	}
	CHECK(spf_record_is_spf1(rec, len));
	for (i = 0; i < n; i++) {
		CHECK(t[i].type >= SPF_T_ALL && t[i].type <= SPF_T_UNKNOWN);
		CHECK(t[i].text >= rec && t[i].text + t[i].textlen <=
		    rec + len);
		CHECK(memchr(t[i].text, ' ', t[i].textlen) == NULL);
		if (t[i].spec != NULL) {
			CHECK(t[i].spec >= t[i].text && t[i].spec +
			    t[i].speclen <= t[i].text + t[i].textlen);
			CHECK(spf_macro_check(t[i].spec, t[i].speclen,
			    SPF_MACRO_EXP) == 0);
		}
		CHECK(t[i].cidr4 >= 0 && t[i].cidr4 <= 32);
		CHECK(t[i].cidr6 >= 0 && t[i].cidr6 <= 128);
		redirect += t[i].type == SPF_T_REDIRECT;
		exp += t[i].type == SPF_T_EXP;
	}
	CHECK(redirect <= 1 && exp <= 1);
	free(t);
}

static void
fuzz_macro(const char *in, size_t len, int flags)
{
	struct spf_macro_ctx	 ctx;
	char			 out[600], who[128];
	const char		*nul;
	size_t			 n;
	int			 rc;

	/* "in NUL local-part": the sender's local part from the input */
	who[0] = '\0';
	if ((nul = memchr(in, '\0', len)) != NULL) {
		n = len - (size_t)(nul + 1 - in);
		if (n >= sizeof(who))
			n = sizeof(who) - 1;
		memcpy(who, nul + 1, n);
		who[n] = '\0';
		len = (size_t)(nul - in);
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.sender = "strong-bad@email.example.com";
	ctx.local = who;
	ctx.sender_domain = "email.example.com";
	ctx.domain = "a.b-c.example.com";
	ctx.ip = "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0."
	    "0.2";
	ctx.client = "2001:db8::cb01";
	ctx.ptr = "mx.example.org";
	ctx.ipver = "ip6";
	ctx.helo = who;
	ctx.receiver = "receiver.example.net";
	ctx.now = 1234567890;

	memset(out, 'x', sizeof(out));
	rc = spf_macro_expand(&ctx, in, len, flags, out, sizeof(out));
	CHECK(rc == 0 || rc == -1);
	if (rc == -1)
		return;
	CHECK(memchr(out, '\0', sizeof(out)) != NULL);
	CHECK(spf_macro_check(in, len, flags) == 0);
	if (flags & SPF_MACRO_DOMAIN)
		CHECK(strlen(out) <= 253);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0)
		fuzz_record((const char *)data + 1, size - 1);
	else
		fuzz_macro((const char *)data + 1, size - 1,
		    (data[0] >> 1) & 3);
	return 0;
}
