/*
 * test_dkim.c -- common/dkim.c and dkim_msg.c: tag-lists, base64, the
 * canonicalizations (RFC 6376 3.4.5's example, empty bodies, trailing
 * WSP, long folded headers, l=), the From: domain, the limits, RFC 8463
 * appendix A's signed message verified byte for byte, every key record
 * and signature check with its result word, and our own signatures
 * (rsa-sha256 and ed25519-sha256) verified back.
 *
 * Body canonicalization is checked from outside: a DKIM-Signature whose
 * bh= is the SHA-256 of the canonical body the RFC gives must come out
 * with bh_ok set, and with any other body hash must not.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "dkim.h"

/* RFC 8463 appendix A.3, with A.2's key records (the RSA key: 1024 bits) */
static const char rfc8463_msg[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\n"
    " d=football.example.com; i=@football.example.com;\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\n"
    " subject : date : message-id : from : subject : date;\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\n"
    " d=football.example.com; i=@football.example.com;\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\n"
    " date : message-id : from : subject : date;\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\n"
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\n"
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\n"
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\n"
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
static const char rfc8463_ed_key[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rfc8463_rsa_key[] =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
#define RFC8463_NOW	1528637909

/* feed a message whose lines end in LF (or CRLF) */
static struct dkim_msg *
feed(const char *msg, int want_sign)
{
	struct dkim_msg	*m;
	const char	*p = msg, *nl;
	size_t		 l;

	assert_non_null(m = dkim_msg_new(want_sign));
	while (*p != '\0') {
		nl = strchr(p, '\n');
		l = nl ? (size_t)(nl - p) : strlen(p);
		if (l > 0 && p[l - 1] == '\r')
			l--;
		dkim_msg_line(m, p, l);
		p = nl ? nl + 1 : p + strlen(p);
	}
	dkim_msg_end(m);
	return m;
}

/* the verdict on signature k of msg with key record key */
static enum dkim_result
verdict(const char *msg, size_t k, const char *key, time_t now,
    struct dkim_vres *res)
{
	struct dkim_msg	*m = feed(msg, 0);
	enum dkim_result r;

	assert_true(dkim_msg_nsigs(m) > k);
	r = dkim_verify(dkim_msg_vsig(m, k), key, strlen(key), now, res);
	dkim_msg_free(m);
	return r;
}

/* msg with "from" replaced by "to" (once) */
static char *
replace(const char *msg, const char *from, const char *to)
{
	const char	*at = strstr(msg, from);
	char		*out;

	assert_non_null(at);
	assert_non_null(out = malloc(strlen(msg) + strlen(to) + 1));
	memcpy(out, msg, (size_t)(at - msg));
	strcpy(out + (at - msg), to);
	strcat(out, at + strlen(from));
	return out;
}

/* ---- tag-lists and base64 ---- */

static void
test_tags(void **state)
{
	struct dkim_tag	t[4];
	const char	*s;

	(void)state;
	s = " v=1;  a = rsa-sha256 ;\r\n\tb=ab cd\r\n ef ; ";
	assert_int_equal(dkim_tags_parse(s, strlen(s), t, 4), 3);
	assert_string_equal(t[1].name, "a");
	assert_int_equal(t[1].len, 10);
	assert_memory_equal(t[1].value, "rsa-sha256", 10);
	assert_int_equal(t[2].len, strlen("ab cd\r\n ef"));
	s = "a=";
	assert_int_equal(dkim_tags_parse(s, strlen(s), t, 4), 1);
	assert_int_equal(t[0].len, 0);
	assert_int_equal(dkim_tags_parse("", 0, t, 4), 0);
	s = "a=1; a=2";		/* 3.2: duplicates void the list */
	assert_int_equal(dkim_tags_parse(s, strlen(s), t, 4), -1);
	s = "1a=1";
	assert_int_equal(dkim_tags_parse(s, strlen(s), t, 4), -1);
	s = "a";
	assert_int_equal(dkim_tags_parse(s, strlen(s), t, 4), -1);
	s = ";";
	assert_int_equal(dkim_tags_parse(s, strlen(s), t, 4), -1);
	s = "a=\xc3\xa9";
	assert_int_equal(dkim_tags_parse(s, strlen(s), t, 4), -1);
	s = "a=1;b=2;c=3;d=4;e=5";
	assert_int_equal(dkim_tags_parse(s, strlen(s), t, 4), -1);
	/* a NUL is not a VALCHAR: lengths, not strings */
	assert_int_equal(dkim_tags_parse("a=1\0", 4, t, 4), -1);
}

static void
test_base64(void **state)
{
	uint8_t	out[16];

	(void)state;
	assert_int_equal(dkim_b64_decode("aGVs\r\n bG8=", 11, out, 16), 5);
	assert_memory_equal(out, "hello", 5);
	assert_int_equal(dkim_b64_decode("aGk=", 4, out, 16), 2);
	assert_int_equal(dkim_b64_decode("aA==", 4, out, 16), 1);
	assert_int_equal(dkim_b64_decode("", 0, out, 16), 0);
	assert_int_equal(dkim_b64_decode("aGk", 3, out, 16), -1);
	assert_int_equal(dkim_b64_decode("a===", 4, out, 16), -1);
	assert_int_equal(dkim_b64_decode("aG=k", 4, out, 16), -1);
	assert_int_equal(dkim_b64_decode("aG!k", 4, out, 16), -1);
	/* non-zero bits past the end */
	assert_int_equal(dkim_b64_decode("aGl=", 4, out, 16), -1);
	assert_int_equal(dkim_b64_decode("aGVsbG8=", 8, out, 4), -1);
}

/* ---- canonicalization ---- */

static void
test_canon_header_relaxed(void **state)
{
	char	out[256];
	size_t	n;

	(void)state;
	/* RFC 6376 3.4.5 */
	n = dkim_canon_header_relaxed("A: X ", 5, out);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "a:X\r\n", 5);
	n = dkim_canon_header_relaxed("B : Y\t\r\n\tZ  ", 12, out);
	assert_int_equal(n, 7);
	assert_memory_equal(out, "b:Y Z\r\n", 7);
	/* a long field folded over several lines */
	{
		const char *f = "Subject:  a long\r\n\tsubject \r\n   folded"
		    "\r\n\t  three   times\t";
		const char *want = "subject:a long subject folded three "
		    "times\r\n";

		n = dkim_canon_header_relaxed(f, strlen(f), out);
		assert_int_equal(n, strlen(want));
		assert_memory_equal(out, want, n);
	}
	n = dkim_canon_header_relaxed("X-Empty:", 8, out);
	assert_memory_equal(out, "x-empty:\r\n", n);
}

static void
test_canon_body_relaxed(void **state)
{
	char	s[32];
	size_t	n;

	(void)state;
	strcpy(s, " C ");
	n = dkim_canon_body_relaxed(s, strlen(s));
	assert_memory_equal(s, " C", n);
	strcpy(s, "D \t E");
	n = dkim_canon_body_relaxed(s, strlen(s));
	assert_memory_equal(s, "D E", n);
	strcpy(s, " \t ");
	assert_int_equal(dkim_canon_body_relaxed(s, strlen(s)), 0);
}

/*
 * A message whose one signature claims bh = SHA-256(canon): with body,
 * is bh_ok set?  extra: more tags (c=, l=).
 */
static int
bh_matches(const char *extra, const char *hdrs, const char *body,
    const char *canon, size_t canonlen)
{
	uint8_t		 d[32];
	char		 b64[64], *msg;
	unsigned int	 dl = 32;
	struct dkim_msg	*m;
	int		 ok;
	size_t		 len;

	assert_int_equal(EVP_Digest(canon, canonlen, d, &dl, EVP_sha256(),
	    NULL), 1);
	dkim_b64_encode(d, 32, b64);
	len = strlen(extra) + strlen(hdrs) + strlen(body) + 256;
	assert_non_null(msg = malloc(len));
	snprintf(msg, len, "DKIM-Signature: v=1; a=rsa-sha256; d=x.test; "
	    "s=s; h=from; %s bh=%s; b=AAAA\n%s\n\n%s", extra, b64, hdrs, body);
	m = feed(msg, 0);
	assert_int_equal(dkim_msg_nsigs(m), 1);
	assert_int_equal(dkim_msg_vsig(m, 0)->status, DKIM_NONE);
	ok = dkim_msg_vsig(m, 0)->bh_ok;
	dkim_msg_free(m);
	free(msg);
	return ok;
}

#define BH(extra, hdrs, body, canon) \
	bh_matches(extra, hdrs, body, canon, sizeof(canon) - 1)

static void
test_canon_body(void **state)
{
	/* RFC 6376 3.4.5's example body */
	static const char	body[] = " C \r\nD \t E\r\n\r\n\r\n";

	(void)state;
	assert_true(BH("c=simple/simple;", "From: a@x.test", body,
	    " C \r\nD \t E\r\n"));
	assert_true(BH("c=relaxed/relaxed;", "From: a@x.test", body,
	    " C\r\nD E\r\n"));
	assert_false(BH("c=relaxed/relaxed;", "From: a@x.test", body,
	    " C \r\nD \t E\r\n"));
	/* c= with one word: the body is simple */
	assert_true(BH("c=relaxed;", "From: a@x.test", body,
	    " C \r\nD \t E\r\n"));
	/* the empty body: CRLF simple, nothing relaxed */
	assert_true(BH("", "From: a@x.test", "", "\r\n"));
	assert_true(BH("c=simple/relaxed;", "From: a@x.test", "", ""));
	assert_true(BH("", "From: a@x.test", "\n\n\n", "\r\n"));
	assert_true(BH("c=simple/relaxed;", "From: a@x.test", " \n\t\n", ""));
	/* trailing WSP; empty lines inside kept, at the end dropped */
	assert_true(BH("c=simple/relaxed;", "From: a@x.test",
	    "a  \n\n \nb\t\n \n\n", "a\r\n\r\n\r\nb\r\n"));
	assert_true(BH("", "From: a@x.test", "a  \n\n \nb\t\n \n\n",
	    "a  \r\n\r\n \r\nb\t\r\n \r\n"));
	/* no final line end: the line still gets its CRLF */
	assert_true(BH("", "From: a@x.test", "last", "last\r\n"));
	/* l=: what follows the count is not hashed */
	assert_true(BH("l=5;", "From: a@x.test", "abc\nappended\n",
	    "abc\r\n"));
	assert_true(BH("l=0;", "From: a@x.test", "anything\n", ""));
	assert_true(BH("l=8; c=relaxed/relaxed;", "From: a@x.test",
	    "a\n\n\nb\n\n", "a\r\n\r\n\r\nb"));
	/* l= past the body's end: not the body that was signed */
	assert_false(BH("l=6;", "From: a@x.test", "abc\n", "abc\r\n"));
}

/* ---- the RFC 8463 example ---- */

static void
test_rfc8463(void **state)
{
	struct dkim_vres	 res;
	struct dkim_msg		*m;
	char			*bad;

	(void)state;
	m = feed(rfc8463_msg, 0);
	assert_int_equal(dkim_msg_nsigs(m), 2);
	assert_string_equal(dkim_msg_vsig(m, 0)->d, "football.example.com");
	assert_string_equal(dkim_msg_vsig(m, 0)->s, "brisbane");
	assert_int_equal(dkim_msg_vsig(m, 0)->t, RFC8463_NOW);
	assert_int_equal(dkim_msg_vsig(m, 0)->x, -1);
	assert_string_equal(dkim_msg_from_domain(m), "football.example.com");
	dkim_msg_free(m);
	assert_int_equal(verdict(rfc8463_msg, 0, rfc8463_ed_key, RFC8463_NOW,
	    &res), DKIM_PASS);
	assert_int_equal(res.keybits, 256);
	assert_int_equal(verdict(rfc8463_msg, 1, rfc8463_rsa_key,
	    RFC8463_NOW, &res), DKIM_PASS);
	assert_int_equal(res.keybits, 1024);
	/* the keys swapped: a type mismatch */
	assert_int_equal(verdict(rfc8463_msg, 0, rfc8463_rsa_key,
	    RFC8463_NOW, &res), DKIM_PERMERROR);
	/* relaxed: whitespace changes in transit do not matter */
	bad = replace(rfc8463_msg, "Subject: Is dinner ready?",
	    "Subject:   Is  dinner\tready?  ");
	assert_int_equal(verdict(bad, 0, rfc8463_ed_key, RFC8463_NOW, &res),
	    DKIM_PASS);
	free(bad);
	/* a signed header changed */
	bad = replace(rfc8463_msg, "Is dinner ready?", "Is dinner ready!");
	assert_int_equal(verdict(bad, 0, rfc8463_ed_key, RFC8463_NOW, &res),
	    DKIM_FAIL);
	assert_int_equal(verdict(bad, 1, rfc8463_rsa_key, RFC8463_NOW, &res),
	    DKIM_FAIL);
	assert_string_equal(res.why, "signature did not verify");
	free(bad);
	/* the body changed */
	bad = replace(rfc8463_msg, "We lost", "We won");
	assert_int_equal(verdict(bad, 0, rfc8463_ed_key, RFC8463_NOW, &res),
	    DKIM_FAIL);
	assert_string_equal(res.why, "body hash did not verify");
	free(bad);
	/* a second From above: over-signed, so it breaks the signature */
	bad = replace(rfc8463_msg, "From: Joe", "From: x@evil.test\nFrom: Joe");
	assert_int_equal(verdict(bad, 0, rfc8463_ed_key, RFC8463_NOW, &res),
	    DKIM_FAIL);
	m = feed(bad, 0);
	assert_null(dkim_msg_from_domain(m));	/* two From: fields */
	dkim_msg_free(m);
	free(bad);
	/*
	 * A second To: above the signed one: h= names "to" once, and takes
	 * the last instance (RFC 6376 5.4.2), so the signature holds (and
	 * would not with the first instance taken)
	 */
	bad = replace(rfc8463_msg, "To: Suzie", "To: x@evil.test\nTo: Suzie");
	assert_int_equal(verdict(bad, 1, rfc8463_rsa_key, RFC8463_NOW, &res),
	    DKIM_PASS);
	free(bad);
	/* an unsigned field added: still good */
	bad = replace(rfc8463_msg, "From: Joe", "X-Added: 1\nFrom: Joe");
	assert_int_equal(verdict(bad, 1, rfc8463_rsa_key, RFC8463_NOW, &res),
	    DKIM_PASS);
	free(bad);
}

/* ---- the key record ---- */

static void
test_key_records(void **state)
{
	struct dkim_vres	 res;
	char			 key[512];
	const char		*p;

	(void)state;
	p = "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
#define KEY(fmt) (snprintf(key, sizeof(key), fmt, p), key)
	assert_int_equal(verdict(rfc8463_msg, 0, KEY("k=ed25519; %s"),
	    RFC8463_NOW, &res), DKIM_PASS);
	/* unknown tags ignored, h= with sha256, s= email, t=y */
	assert_int_equal(verdict(rfc8463_msg, 0, KEY("v=DKIM1; zz=what; "
	    "k=ed25519; h=sha1:sha256; s=email; t=y; %s"), RFC8463_NOW, &res),
	    DKIM_PASS);
	assert_int_equal(res.testing, 1);
	/* t=s: i= is @football.example.com, the same as d= */
	assert_int_equal(verdict(rfc8463_msg, 0, KEY("k=ed25519; t=s; %s"),
	    RFC8463_NOW, &res), DKIM_PASS);
	assert_int_equal(verdict(rfc8463_msg, 0, KEY("k=ed25519; s=*; %s"),
	    RFC8463_NOW, &res), DKIM_PASS);
	assert_int_equal(verdict(rfc8463_msg, 0, "k=ed25519; p=",
	    RFC8463_NOW, &res), DKIM_FAIL);
	assert_string_equal(res.why, "key revoked");
	assert_int_equal(verdict(rfc8463_msg, 0, KEY("v=DKIM2; k=ed25519; %s"),
	    RFC8463_NOW, &res), DKIM_PERMERROR);
	assert_int_equal(verdict(rfc8463_msg, 0, KEY("k=ed25519; h=sha1; %s"),
	    RFC8463_NOW, &res), DKIM_PERMERROR);
	assert_int_equal(verdict(rfc8463_msg, 0, KEY("k=ed25519; s=tls; %s"),
	    RFC8463_NOW, &res), DKIM_PERMERROR);
	/* no k=: rsa, which an ed25519 signature cannot use */
	assert_int_equal(verdict(rfc8463_msg, 0, KEY("%s"), RFC8463_NOW,
	    &res), DKIM_PERMERROR);
	assert_int_equal(verdict(rfc8463_msg, 0, "k=ed25519", RFC8463_NOW,
	    &res), DKIM_PERMERROR);
	assert_int_equal(verdict(rfc8463_msg, 0, "k=ed25519; p=AAAA",
	    RFC8463_NOW, &res), DKIM_PERMERROR);
	assert_int_equal(verdict(rfc8463_msg, 0, "k=ed25519; p=%%%",
	    RFC8463_NOW, &res), DKIM_PERMERROR);
	assert_int_equal(verdict(rfc8463_msg, 0, KEY("k=ed25519;;%s"),
	    RFC8463_NOW, &res), DKIM_PERMERROR);
	assert_int_equal(verdict(rfc8463_msg, 0, "", RFC8463_NOW, &res),
	    DKIM_PERMERROR);
	/* an RSA key record for an RSA signature of the wrong key type */
	assert_int_equal(verdict(rfc8463_msg, 1, KEY("k=rsa; %s"),
	    RFC8463_NOW, &res), DKIM_PERMERROR);
#undef KEY
}

static void
test_small_rsa_key(void **state)
{
	struct dkim_vres	 res;
	EVP_PKEY		*pkey;
	char			 key[1024];

	(void)state;
	/* RFC 8301 3.2: a key under 1024 bits is no key */
	assert_non_null(pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
	    (size_t)512));
	assert_int_equal(dkim_key_txt(pkey, key, sizeof(key)), 0);
	assert_int_equal(verdict(rfc8463_msg, 1, key, RFC8463_NOW, &res),
	    DKIM_FAIL);
	assert_int_equal(res.keybits, 512);
	assert_non_null(strstr(res.why, "RFC 8301"));
	EVP_PKEY_free(pkey);
}

/* ---- the signature field's own checks ---- */

static enum dkim_result
sig_verdict(const char *from, const char *to, time_t now,
    struct dkim_vres *res)
{
	char			*msg = replace(rfc8463_msg, from, to);
	enum dkim_result	 r;

	r = verdict(msg, 0, rfc8463_ed_key, now, res);
	free(msg);
	return r;
}

static void
test_sig_checks(void **state)
{
	struct dkim_vres	res;

	(void)state;
	assert_int_equal(sig_verdict("a=ed25519-sha256", "a=rsa-sha1",
	    RFC8463_NOW, &res), DKIM_NEUTRAL);	/* bh= is not 20 bytes */
	assert_int_equal(sig_verdict("a=ed25519-sha256", "a=rsa-sha512",
	    RFC8463_NOW, &res), DKIM_NEUTRAL);
	assert_int_equal(sig_verdict("v=1;", "v=2;", RFC8463_NOW, &res),
	    DKIM_NEUTRAL);
	assert_int_equal(sig_verdict("v=1;", "", RFC8463_NOW, &res),
	    DKIM_NEUTRAL);
	assert_int_equal(sig_verdict("h=from : to :\n subject : date : "
	    "message-id : from : subject : date", "h=to : subject",
	    RFC8463_NOW, &res), DKIM_NEUTRAL);
	assert_string_equal(res.why, "signature h= lacks From");
	assert_int_equal(sig_verdict("i=@football.example.com",
	    "i=@example.com", RFC8463_NOW, &res), DKIM_NEUTRAL);
	assert_int_equal(sig_verdict("i=@football.example.com",
	    "i=joe@afootball.example.com", RFC8463_NOW, &res), DKIM_NEUTRAL);
	assert_int_equal(sig_verdict("c=relaxed/relaxed", "c=relaxed/loose",
	    RFC8463_NOW, &res), DKIM_NEUTRAL);
	assert_int_equal(sig_verdict("q=dns/txt", "q=http", RFC8463_NOW, &res),
	    DKIM_NEUTRAL);
	assert_int_equal(sig_verdict("s=brisbane;", "s=brisbane; s=x;",
	    RFC8463_NOW, &res), DKIM_NEUTRAL);
	/* key t=s: i= in a subdomain of d= is refused before any hash */
	{
		char	*msg;

		msg = replace(rfc8463_msg, "i=@football.example.com",
		    "i=joe@sub.football.example.com");

		assert_int_equal(verdict(msg, 0, "k=ed25519; t=s; "
		    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
		    RFC8463_NOW, &res), DKIM_PERMERROR);
		/* without t=s it is allowed (and fails: the field changed) */
		assert_int_equal(verdict(msg, 0, rfc8463_ed_key, RFC8463_NOW,
		    &res), DKIM_FAIL);
		free(msg);
	}
	/* t= in the future, x= in the past: policy (RFC 6376 3.5's MAY) */
	assert_int_equal(verdict(rfc8463_msg, 0, rfc8463_ed_key,
	    RFC8463_NOW - 3600, &res), DKIM_POLICY);
	assert_string_equal(res.why, "signature in the future");
	assert_int_equal(verdict(rfc8463_msg, 0, rfc8463_ed_key,
	    RFC8463_NOW - DKIM_CLOCK_SKEW, &res), DKIM_PASS);
	assert_int_equal(sig_verdict("t=1528637909;", "t=1528637909; "
	    "x=1528637999;", RFC8463_NOW + 100, &res), DKIM_POLICY);
	assert_string_equal(res.why, "signature expired");
	assert_int_equal(sig_verdict("t=1528637909;", "t=1528637909; "
	    "x=1528637000;", RFC8463_NOW, &res), DKIM_NEUTRAL);
	/* x= still ahead: the field changed, so the signature fails */
	assert_int_equal(sig_verdict("t=1528637909;", "t=1528637909; "
	    "x=1528637999;", RFC8463_NOW, &res), DKIM_FAIL);
}

static void
test_sig_parse(void **state)
{
	struct dkim_vsig	 v;
	struct dkim_sigtags	 st;
	const char		*s;

	(void)state;
	/* unknown tags are ignored (RFC 6376 3.2), names are lowered */
	s = " v=1; a=ed25519-sha256; d=Example.ORG; s=Sel; zz=what ever;\r\n"
	    "\th=From : To; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;"
	    " future_tag=1; l=10; b=AAAA;";
	dkim_sig_parse(s, strlen(s), &v, &st);
	assert_int_equal(v.status, DKIM_NONE);
	assert_string_equal(v.d, "example.org");
	assert_string_equal(v.s, "sel");
	assert_string_equal(v.i, "@example.org");
	assert_int_equal(v.hcanon, DKIM_CANON_SIMPLE);
	assert_int_equal(v.bcanon, DKIM_CANON_SIMPLE);
	assert_int_equal(st.has_l, 1);
	assert_int_equal(st.l, 10);
	assert_int_equal(v.blen, 3);
	assert_int_equal(st.hlen, strlen("From : To"));
	/* t= of more than 12 digits: infinite (3.5) */
	s = "v=1; a=rsa-sha256; d=x.test; s=s; h=from; t=9999999999999; "
	    "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA";
	dkim_sig_parse(s, strlen(s), &v, &st);
	assert_int_equal(v.status, DKIM_NONE);
	assert_true(v.t == INT64_MAX);
	/* required tags */
	s = "v=1; a=rsa-sha256; d=x.test; h=from; bh=47DEQpj8HBSa+/TImW+5JCeu"
	    "QeRkm5NMpJWZG3hSuFU=; b=AAAA";
	dkim_sig_parse(s, strlen(s), &v, &st);
	assert_int_equal(v.status, DKIM_NEUTRAL);
	assert_string_equal(v.why, "signature s= missing or invalid");
	s = "v=1; a=rsa-sha256; d=x..test; s=s; h=from; bh=47DEQpj8HBSa+/TIm"
	    "W+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA";
	dkim_sig_parse(s, strlen(s), &v, &st);
	assert_int_equal(v.status, DKIM_NEUTRAL);
	s = "v=1; a=rsa-sha256; d=x.test; s=s; h=from; bh=AAAA; b=AAAA";
	dkim_sig_parse(s, strlen(s), &v, &st);
	assert_int_equal(v.status, DKIM_NEUTRAL);	/* bh= not 32 bytes */
}

static void
test_rsa_sha1(void **state)
{
	struct dkim_vres	 res;
	struct dkim_vsig	 v;
	struct dkim_sigtags	 st;
	const char		*s;

	(void)state;
	s = "v=1; a=rsa-sha1; d=x.test; s=s; h=from; "
	    "bh=2jmj7l5rSw0yVb/vlWAYkK/YBwk=; b=AAAA";
	dkim_sig_parse(s, strlen(s), &v, &st);
	assert_int_equal(v.status, DKIM_NONE);
	assert_int_equal(v.alg, DKIM_ALG_RSA_SHA1);
	/* RFC 8301 3.1: never verified, whatever the key says */
	assert_int_equal(dkim_verify(&v, rfc8463_rsa_key,
	    strlen(rfc8463_rsa_key), RFC8463_NOW, &res), DKIM_FAIL);
	assert_non_null(strstr(res.why, "RFC 8301"));
}

/* ---- From: ---- */

static const char *
from_of(const char *hdrs)
{
	static char		 out[256];
	struct dkim_msg		*m = feed(hdrs, 0);
	const char		*d = dkim_msg_from_domain(m);

	snprintf(out, sizeof(out), "%s", d ? d : "(null)");
	dkim_msg_free(m);
	return out;
}

static void
test_from_domain(void **state)
{
	(void)state;
	assert_string_equal(from_of("From: Joe <joe@Example.COM>\n\nx\n"),
	    "example.com");
	assert_string_equal(from_of("From: joe@x.test (Joe <a@b.c>)\n\n"),
	    "x.test");
	assert_string_equal(from_of("From: \"a@b <c>, d\" <e@f.test>\n\n"),
	    "f.test");
	assert_string_equal(from_of("FROM:\n\tjoe@folded.test\n\n"),
	    "folded.test");
	assert_string_equal(from_of("From: a@x.test, b@y.test\n\n"), "(null)");
	assert_string_equal(from_of("From: a@x.test\nFrom: a@x.test\n\n"),
	    "(null)");
	assert_string_equal(from_of("From: undisclosed:;\n\n"), "(null)");
	assert_string_equal(from_of("From: joe@[192.0.2.1]\n\n"), "(null)");
	assert_string_equal(from_of("From: no address\n\n"), "(null)");
	assert_string_equal(from_of("To: a@x.test\n\n"), "(null)");
}

/* ---- limits ---- */

static void
test_limits(void **state)
{
	struct dkim_msg		*m;
	struct dkim_sign	 sg;
	uint8_t			 d[32];
	char			 line[1000], why[128];
	int			 i;

	(void)state;
	/* a header section past DKIM_HDR_MAX: nothing signed or verified */
	assert_non_null(m = dkim_msg_new(1));
	dkim_msg_line(m, "From: a@x.test", 14);
	memset(line, 'a', sizeof(line));
	memcpy(line, "X-Big: ", 7);
	for (i = 0; i < 70; i++)
		dkim_msg_line(m, line, sizeof(line));
	dkim_msg_line(m, "", 0);
	dkim_msg_line(m, "body", 4);
	dkim_msg_end(m);
	assert_true(dkim_msg_overflow(m));
	assert_int_equal(dkim_msg_nsigs(m), 0);
	assert_int_equal(dkim_sign_prepare(m, "x.test", "s",
	    DKIM_ALG_ED25519_SHA256, 0, &sg, d, why, sizeof(why)), -1);
	dkim_msg_free(m);

	/* past DKIM_MAX_SIGS signatures: counted, not verified */
	assert_non_null(m = dkim_msg_new(0));
	for (i = 0; i < DKIM_MAX_SIGS + 3; i++) {
		snprintf(line, sizeof(line), "DKIM-Signature: v=1; "
		    "a=rsa-sha256; d=x.test; s=s%d; h=from; bh=AAAA; b=AAAA",
		    i);
		dkim_msg_line(m, line, strlen(line));
	}
	dkim_msg_end(m);
	assert_int_equal(dkim_msg_nsigs(m), DKIM_MAX_SIGS);
	assert_int_equal(dkim_msg_nsigs_ignored(m), 3);
	assert_int_equal(dkim_vsig_valid(dkim_msg_vsig(m, 0)), 0);
	dkim_msg_free(m);
}

/* ---- what lookup checks of a vsig from a worker ---- */

static void
test_vsig_valid(void **state)
{
	struct dkim_msg		*m;
	struct dkim_vsig	 v;
	char			 name[300];

	(void)state;
	m = feed(rfc8463_msg, 0);
	v = *dkim_msg_vsig(m, 0);
	dkim_msg_free(m);
	assert_int_equal(dkim_vsig_valid(&v), 0);
	assert_int_equal(dkim_vsig_keyname(&v, name, sizeof(name)), 0);
	assert_string_equal(name, "brisbane._domainkey.football.example.com");
	assert_int_equal(dkim_vsig_keyname(&v, name, 10), -1);
	memset(v.d, 'a', sizeof(v.d));
	assert_int_equal(dkim_vsig_valid(&v), -1);
	v.d[0] = '\0';
	assert_int_equal(dkim_vsig_valid(&v), -1);	/* no domain */
	v.d[0] = 'a';
	v.d[1] = '\0';
	assert_int_equal(dkim_vsig_valid(&v), 0);
	v.i[0] = '\0';
	assert_int_equal(dkim_vsig_valid(&v), -1);	/* no '@' */
	v.status = DKIM_NEUTRAL;
	assert_int_equal(dkim_vsig_valid(&v), 0);
	v.status = 200;
	assert_int_equal(dkim_vsig_valid(&v), -1);
	v.status = DKIM_NONE;
	v.i[0] = '@';
	v.blen = sizeof(v.b) + 1;
	assert_int_equal(dkim_vsig_valid(&v), -1);
}

/* ---- our own signatures ---- */

static int
max_width(const char *hdr)
{
	int	w = 0, max = 0;

	for (; *hdr != '\0'; hdr++) {
		if (*hdr == '\r' || *hdr == '\n') {
			w = 0;
			continue;
		}
		w += *hdr == '\t' ? 8 : 1;
		if (w > max)
			max = w;
	}
	return max;
}

/* a header without its folds (CRLF and the tab after) */
static const char *
unfold(const char *hdr)
{
	static char	out[DKIM_HEADER_MAX + 1024];
	size_t		n = 0;

	for (; *hdr != '\0' && n + 1 < sizeof(out); hdr++) {
		if (hdr[0] == '\r' && hdr[1] == '\n' && hdr[2] == '\t') {
			hdr += 2;
			continue;
		}
		out[n++] = *hdr;
	}
	out[n] = '\0';
	return out;
}

static void
sign_and_verify(const char *type, enum dkim_alg alg, size_t bits)
{
	static const char	*bodies[] = {
		"",
		"no final line end",
		"trailing spaces   \n\t\nx \t \n\n\n",
		"8-bit: \xc3\xa9t\xc3\xa9\n",
		NULL
	};
	static const char	 hdrs[] =
	    "Received: from somewhere\n"
	    "From: Joe <joe@Example.org>\n"
	    "To: a@b.test,\n c@d.test\n"
	    "Subject: a subject that is long enough to be folded over\n"
	    "  several lines\n"
	    "Date: Mon, 7 Dec 2026 06:00:00 +0000\n"
	    "Message-ID: <1@example.org>\n"
	    "Cc: x@y.test\n"
	    "\n";
	EVP_PKEY		*pkey;
	struct dkim_msg		*m;
	struct dkim_sign	 sg;
	struct dkim_vres	 res;
	uint8_t			 d[32], sig[DKIM_SIG_MAX];
	size_t			 siglen, k;
	char			 hdr[DKIM_HEADER_MAX + 1024], why[128];
	char			 key[2048], *msg, *bad;
	ssize_t			 n;

	assert_non_null(pkey = bits ? EVP_PKEY_Q_keygen(NULL, NULL, type,
	    bits) : EVP_PKEY_Q_keygen(NULL, NULL, type));
	assert_int_equal(dkim_key_txt(pkey, key, sizeof(key)), 0);
	for (k = 0; bodies[k] != NULL; k++) {
		assert_non_null(msg = malloc(strlen(hdrs) +
		    strlen(bodies[k]) + 1));
		strcpy(msg, hdrs);
		strcat(msg, bodies[k]);
		m = feed(msg, 1);
		assert_string_equal(dkim_msg_from_domain(m), "example.org");
		assert_int_equal(dkim_sign_prepare(m, "example.org", "sel",
		    alg, RFC8463_NOW, &sg, d, why, sizeof(why)), 0);
		dkim_msg_free(m);
		siglen = sizeof(sig);
		assert_int_equal(dkim_sign_digest(pkey, alg, d, sig, &siglen),
		    0);
		n = dkim_sign_header(&sg, sig, siglen, hdr, sizeof(hdr));
		assert_true(n > 0);
		assert_int_equal((size_t)n, strlen(hdr));
		assert_true(max_width(hdr) <= 78);
		assert_non_null(strstr(unfold(hdr), "h=From:From:To:To:Cc:"
		    "Cc:Subject:Subject:Date:Date:Message-ID:Message-ID:"
		    "MIME-Version:Content-Type:Content-Transfer-Encoding;"));
		assert_null(strstr(hdr, "l="));
		assert_null(strstr(hdr, "Received"));
		bad = malloc(strlen(hdr) + strlen(msg) + 1);
		assert_non_null(bad);
		strcpy(bad, hdr);
		strcat(bad, msg);
		assert_int_equal(verdict(bad, 0, key, RFC8463_NOW, &res),
		    DKIM_PASS);
		free(msg);
		msg = bad;
		bad = replace(msg, "Subject: a", "Subject: A");
		assert_int_equal(verdict(bad, 0, key, RFC8463_NOW, &res),
		    DKIM_FAIL);
		free(bad);
		/* a field over-signed cannot be added */
		bad = replace(msg, "\nDate:", "\nMIME-Version: 1.0\nDate:");
		assert_int_equal(verdict(bad, 0, key, RFC8463_NOW, &res),
		    DKIM_FAIL);
		free(bad);
		free(msg);
	}
	EVP_PKEY_free(pkey);
}

static void
test_sign_ed25519(void **state)
{
	(void)state;
	sign_and_verify("ED25519", DKIM_ALG_ED25519_SHA256, 0);
}

static void
test_sign_rsa(void **state)
{
	EVP_PKEY	*small;
	uint8_t		 d[32] = { 0 }, sig[DKIM_SIG_MAX];
	size_t		 siglen = sizeof(sig);

	(void)state;
	sign_and_verify("RSA", DKIM_ALG_RSA_SHA256, 2048);
	/* never sign with less than 2048 bits */
	assert_non_null(small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
	    (size_t)1024));
	assert_int_equal(dkim_sign_digest(small, DKIM_ALG_RSA_SHA256, d, sig,
	    &siglen), -1);
	assert_int_equal(dkim_sign_digest(small, DKIM_ALG_ED25519_SHA256, d,
	    sig, &siglen), -1);
	EVP_PKEY_free(small);
}

static void
test_sign_refused(void **state)
{
	struct dkim_msg		*m;
	struct dkim_sign	 sg;
	uint8_t			 d[32];
	char			 why[128];

	(void)state;
	m = feed("To: a@b.test\n\nbody\n", 1);
	assert_int_equal(dkim_sign_prepare(m, "b.test", "s",
	    DKIM_ALG_RSA_SHA256, 0, &sg, d, why, sizeof(why)), -1);
	assert_string_equal(why, "not exactly one From: field");
	dkim_msg_free(m);
	m = feed("From: a@b.test\n\nbody\n", 0);
	assert_int_equal(dkim_sign_prepare(m, "b.test", "s",
	    DKIM_ALG_RSA_SHA256, 0, &sg, d, why, sizeof(why)), -1);
	dkim_msg_free(m);
	m = feed("From: a@b.test\n\nbody\n", 1);
	assert_int_equal(dkim_sign_prepare(m, "b.test; x=1", "s",
	    DKIM_ALG_RSA_SHA256, 0, &sg, d, why, sizeof(why)), -1);
	assert_int_equal(dkim_sign_prepare(m, "b.test", "s",
	    DKIM_ALG_RSA_SHA1, 0, &sg, d, why, sizeof(why)), -1);
	dkim_msg_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_canon_header_relaxed),
		cmocka_unit_test(test_canon_body_relaxed),
		cmocka_unit_test(test_canon_body),
		cmocka_unit_test(test_rfc8463),
		cmocka_unit_test(test_key_records),
		cmocka_unit_test(test_small_rsa_key),
		cmocka_unit_test(test_sig_checks),
		cmocka_unit_test(test_sig_parse),
		cmocka_unit_test(test_rsa_sha1),
		cmocka_unit_test(test_from_domain),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_vsig_valid),
		cmocka_unit_test(test_sign_ed25519),
		cmocka_unit_test(test_sign_rsa),
		cmocka_unit_test(test_sign_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
