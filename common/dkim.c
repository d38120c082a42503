/*
 * dkim.c -- DKIM tag-lists, signature and key records, and the
 * private- and public-key operations (RFC 6376, RFC 8463, RFC 8301).
 *
 * The streaming hasher and the canonicalizations are in dkim_msg.c; this
 * file takes what it found (a struct dkim_vsig) and a key record and
 * gives the verdict, and makes the pieces of our own signature.  No DNS
 * and no I/O here: lookup fetches the key, the keys process holds the
 * private key (dkim.h says who calls what).
 *
 * Every input here comes from the network (signature fields, DNS TXT
 * records) and is parsed with explicit lengths: nothing assumes a NUL.
 */
#include <sys/types.h>

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dkim.h"

#define DKIM_KEY_MAX	2048	/* decoded p= bytes: RSA 8192 fits */

static const char *const result_words[] = {
	[DKIM_NONE] = "none",
	[DKIM_PASS] = "pass",
	[DKIM_FAIL] = "fail",
	[DKIM_POLICY] = "policy",
	[DKIM_NEUTRAL] = "neutral",
	[DKIM_TEMPERROR] = "temperror",
	[DKIM_PERMERROR] = "permerror"
};

const char *
dkim_result_str(enum dkim_result r)
{
	if ((size_t)r >= sizeof(result_words) / sizeof(result_words[0]))
		return "permerror";
	return result_words[r];
}

/* ---- tag-lists (RFC 6376 3.2) ---- */

static int
is_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t
skip_fws(const char *s, size_t len, size_t p)
{
	while (p < len && is_fws((unsigned char)s[p]))
		p++;
	return p;
}

int
dkim_tags_parse(const char *s, size_t len, struct dkim_tag *tags, size_t max)
{
	size_t	 p = 0, n = 0, start, namelen, vstart, vend, k;
	int	 c;

	for (;;) {
		p = skip_fws(s, len, p);
		if (p == len)
			break;
		start = p;
		if (!isalpha((unsigned char)s[p]))
			return -1;
		while (p < len && (isalnum((unsigned char)s[p]) ||
		    s[p] == '_'))
			p++;
		namelen = p - start;
		p = skip_fws(s, len, p);
		if (p == len || s[p] != '=')
			return -1;
		p = skip_fws(s, len, p + 1);
		vstart = vend = p;
		for (; p < len && s[p] != ';'; p++) {
			c = (unsigned char)s[p];
			if (is_fws(c))
				continue;
			if (c < 0x21 || c > 0x7e)
				return -1;
			vend = p + 1;
		}
		if (n == max)
			return -1;
		/* a name too long to be one we know is kept empty: ignored */
		if (namelen < sizeof(tags[n].name)) {
			memcpy(tags[n].name, s + start, namelen);
			tags[n].name[namelen] = '\0';
			for (k = 0; k < n; k++)
				if (strcmp(tags[k].name, tags[n].name) == 0)
					return -1;	/* 3.2: duplicate */
		} else
			tags[n].name[0] = '\0';
		tags[n].value = s + vstart;
		tags[n].len = vend - vstart;
		n++;
		if (p == len)
			break;
		p++;		/* the ';' */
	}
	return (int)n;
}

static const struct dkim_tag *
tag_find(const struct dkim_tag *tags, int n, const char *name)
{
	int	i;

	for (i = 0; i < n; i++)
		if (strcmp(tags[i].name, name) == 0)
			return &tags[i];
	return NULL;
}

static int
tag_is(const struct dkim_tag *t, const char *word)
{
	size_t	l = strlen(word);

	return t->len == l && strncasecmp(t->value, word, l) == 0;
}

/*
 * Does a colon-separated list (FWS allowed around the colons) hold word?
 * Case-insensitive.
 */
static int
list_has(const char *s, size_t len, const char *word)
{
	size_t	 p = 0, start, end, wl = strlen(word);

	while (p <= len) {
		p = skip_fws(s, len, p);
		start = p;
		while (p < len && s[p] != ':')
			p++;
		end = p;
		while (end > start && is_fws((unsigned char)s[end - 1]))
			end--;
		if (end - start == wl && strncasecmp(s + start, word, wl) == 0)
			return 1;
		p++;
	}
	return 0;
}

/* ---- base64 (RFC 6376 2.4: FWS may appear anywhere in it) ---- */

static int
b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

ssize_t
dkim_b64_decode(const char *s, size_t len, uint8_t *out, size_t outlen)
{
	uint32_t	 acc = 0;
	size_t		 p, n = 0, nq = 0, pad = 0;
	int		 c, v;

	for (p = 0; p < len; p++) {
		c = (unsigned char)s[p];
		if (is_fws(c))
			continue;
		if (c == '=') {
			pad++;
			nq++;
			if (pad > 2)
				return -1;
			continue;
		}
		if (pad > 0 || (v = b64_value(c)) == -1)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		if (++nq % 4 == 0) {
			if (n + 3 > outlen)
				return -1;
			out[n++] = (uint8_t)(acc >> 16);
			out[n++] = (uint8_t)(acc >> 8);
			out[n++] = (uint8_t)acc;
			acc = 0;
		}
	}
	if (nq % 4 != 0)
		return -1;
	if (pad > 0) {
		/* the last quad held 4 - pad characters */
		if (pad == 1) {
			if (n + 2 > outlen || (acc & 0x3) != 0)
				return -1;
			acc >>= 2;
			out[n++] = (uint8_t)(acc >> 8);
			out[n++] = (uint8_t)acc;
		} else {
			if (n + 1 > outlen || (acc & 0xf) != 0)
				return -1;
			acc >>= 4;
			out[n++] = (uint8_t)acc;
		}
	}
	return (ssize_t)n;
}

size_t
dkim_b64_encode(const uint8_t *in, size_t len, char *out)
{
	static const char	 a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t			 i, n = 0;
	uint32_t		 v;

	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		out[n++] = a[v >> 18];
		out[n++] = a[(v >> 12) & 63];
		out[n++] = a[(v >> 6) & 63];
		out[n++] = a[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[n++] = a[v >> 18];
		out[n++] = a[(v >> 12) & 63];
		out[n++] = '=';
		out[n++] = '=';
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[n++] = a[v >> 18];
		out[n++] = a[(v >> 12) & 63];
		out[n++] = a[(v >> 6) & 63];
		out[n++] = '=';
	}
	out[n] = '\0';
	return n;
}

/* ---- the signature field (RFC 6376 3.5) ---- */

/*
 * A domain or selector: dot-separated labels of letters, digits, '-'
 * and (selectors, and domains in practice) '_'.  Copied in lower case.
 */
static int
copy_name(const struct dkim_tag *t, char *out, size_t outlen)
{
	size_t	i, label = 0;
	int	c;

	if (t->len == 0 || t->len >= outlen || t->len > 253)
		return -1;
	for (i = 0; i < t->len; i++) {
		c = (unsigned char)t->value[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else
			return -1;
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		return -1;
	out[t->len] = '\0';
	return 0;
}

/*
 * t= and x=: digits only; RFC 6376 3.5 lets more than 12 digits be read
 * as infinite.
 */
static int
parse_time(const struct dkim_tag *t, int64_t *out)
{
	size_t	i;
	int64_t	v = 0;

	if (t->len == 0)
		return -1;
	for (i = 0; i < t->len; i++)
		if (!isdigit((unsigned char)t->value[i]))
			return -1;
	if (t->len > 12) {
		*out = INT64_MAX;
		return 0;
	}
	for (i = 0; i < t->len; i++)
		v = v * 10 + (t->value[i] - '0');
	*out = v;
	return 0;
}

static int
parse_count(const struct dkim_tag *t, uint64_t *out)
{
	size_t		i;
	uint64_t	v = 0;

	if (t->len == 0 || t->len > 76)
		return -1;
	for (i = 0; i < t->len; i++) {
		if (!isdigit((unsigned char)t->value[i]))
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			v = UINT64_MAX;	/* longer than any body */
		else
			v = v * 10 + (uint64_t)(t->value[i] - '0');
	}
	*out = v;
	return 0;
}

static int
parse_canon(const char *s, size_t len, uint8_t *out)
{
	if (len == 6 && strncasecmp(s, "simple", 6) == 0)
		*out = DKIM_CANON_SIMPLE;
	else if (len == 7 && strncasecmp(s, "relaxed", 7) == 0)
		*out = DKIM_CANON_RELAXED;
	else
		return -1;
	return 0;
}

static void
sig_error(struct dkim_vsig *v, const char *why)
{
	v->status = DKIM_NEUTRAL;
	snprintf(v->why, sizeof(v->why), "%s", why);
}

/* does the domain of i= lie in d= (equal, or a subdomain)? */
static int
auid_in_domain(const char *i, const char *d)
{
	const char	*at = strrchr(i, '@');
	size_t		 il, dl = strlen(d);

	if (at == NULL)
		return 0;
	at++;
	il = strlen(at);
	if (il == dl)
		return strcasecmp(at, d) == 0;
	return il > dl && at[il - dl - 1] == '.' &&
	    strcasecmp(at + il - dl, d) == 0;
}

void
dkim_sig_parse(const char *s, size_t len, struct dkim_vsig *v,
    struct dkim_sigtags *st)
{
	struct dkim_tag		 tags[DKIM_MAX_TAGS];
	const struct dkim_tag	*t;
	uint8_t			 bh[64];
	ssize_t			 r;
	size_t			 k, n;
	int			 ntags;

	memset(v, 0, sizeof(*v));
	memset(st, 0, sizeof(*st));
	v->t = v->x = -1;
	v->status = DKIM_NONE;
	if ((ntags = dkim_tags_parse(s, len, tags, DKIM_MAX_TAGS)) == -1) {
		sig_error(v, "signature syntax error");
		return;
	}
	if ((t = tag_find(tags, ntags, "v")) == NULL || !tag_is(t, "1")) {
		sig_error(v, "signature v= missing or not 1");
		return;
	}
	if ((t = tag_find(tags, ntags, "a")) == NULL) {
		sig_error(v, "signature a= missing");
		return;
	}
	if (tag_is(t, "rsa-sha256"))
		v->alg = DKIM_ALG_RSA_SHA256;
	else if (tag_is(t, "ed25519-sha256"))
		v->alg = DKIM_ALG_ED25519_SHA256;
	else if (tag_is(t, "rsa-sha1"))
		v->alg = DKIM_ALG_RSA_SHA1;
	else {
		sig_error(v, "unknown signature algorithm");
		return;
	}
	if ((t = tag_find(tags, ntags, "d")) == NULL ||
	    copy_name(t, v->d, sizeof(v->d)) == -1) {
		sig_error(v, "signature d= missing or invalid");
		return;
	}
	if ((t = tag_find(tags, ntags, "s")) == NULL ||
	    copy_name(t, v->s, sizeof(v->s)) == -1) {
		sig_error(v, "signature s= missing or invalid");
		return;
	}
	if ((t = tag_find(tags, ntags, "h")) == NULL) {
		sig_error(v, "signature h= missing");
		return;
	}
	st->h = t->value;
	st->hlen = t->len;
	if (!list_has(t->value, t->len, "from")) {
		sig_error(v, "signature h= lacks From");
		return;
	}
	if ((t = tag_find(tags, ntags, "b")) == NULL ||
	    (r = dkim_b64_decode(t->value, t->len, v->b, sizeof(v->b))) <= 0) {
		sig_error(v, "signature b= missing or invalid");
		return;
	}
	v->blen = (uint16_t)r;
	st->bval = t->value;
	st->blen = t->len;
	for (k = 0, n = 0; k < t->len && n + 1 < sizeof(v->bprefix); k++)
		if (!is_fws((unsigned char)t->value[k]))
			v->bprefix[n++] = t->value[k];
	if ((t = tag_find(tags, ntags, "bh")) == NULL ||
	    dkim_b64_decode(t->value, t->len, bh, sizeof(bh)) !=
	    (v->alg == DKIM_ALG_RSA_SHA1 ? 20 : 32)) {
		sig_error(v, "signature bh= missing or invalid");
		return;
	}
	memcpy(st->bh, bh, sizeof(st->bh));
	v->hcanon = v->bcanon = DKIM_CANON_SIMPLE;
	if ((t = tag_find(tags, ntags, "c")) != NULL) {
		const char	*slash = memchr(t->value, '/', t->len);
		size_t		 hl;

		hl = slash ? (size_t)(slash - t->value) : t->len;

		if (parse_canon(t->value, hl, &v->hcanon) == -1 ||
		    (slash != NULL && parse_canon(slash + 1,
		    t->len - hl - 1, &v->bcanon) == -1)) {
			sig_error(v, "unknown canonicalization");
			return;
		}
	}
	if ((t = tag_find(tags, ntags, "q")) != NULL &&
	    !list_has(t->value, t->len, "dns/txt")) {
		sig_error(v, "signature q= without dns/txt");
		return;
	}
	if ((t = tag_find(tags, ntags, "l")) != NULL) {
		if (parse_count(t, &st->l) == -1) {
			sig_error(v, "signature l= invalid");
			return;
		}
		st->has_l = 1;
	}
	if ((t = tag_find(tags, ntags, "t")) != NULL &&
	    parse_time(t, &v->t) == -1) {
		sig_error(v, "signature t= invalid");
		return;
	}
	if ((t = tag_find(tags, ntags, "x")) != NULL &&
	    parse_time(t, &v->x) == -1) {
		sig_error(v, "signature x= invalid");
		return;
	}
	if (v->t != -1 && v->x != -1 && v->x < v->t) {
		sig_error(v, "signature x= before t=");
		return;
	}
	if ((t = tag_find(tags, ntags, "i")) != NULL) {
		if (t->len == 0 || t->len >= sizeof(v->i)) {
			sig_error(v, "signature i= invalid");
			return;
		}
		memcpy(v->i, t->value, t->len);
		v->i[t->len] = '\0';
		if (strpbrk(v->i, " \t\r\n") != NULL ||
		    !auid_in_domain(v->i, v->d)) {
			sig_error(v, "signature i= not in d=");
			return;
		}
	} else
		snprintf(v->i, sizeof(v->i), "@%s", v->d);
}

/* ---- checks on what a worker sent (lookup) ---- */

static int
terminated(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

int
dkim_vsig_valid(const struct dkim_vsig *v)
{
	if (v->status > DKIM_PERMERROR || v->alg > DKIM_ALG_RSA_SHA1 ||
	    v->hcanon > DKIM_CANON_RELAXED || v->bcanon > DKIM_CANON_RELAXED ||
	    v->bh_ok > 1 || v->blen > sizeof(v->b))
		return -1;
	if (!terminated(v->d, sizeof(v->d)) ||
	    !terminated(v->s, sizeof(v->s)) ||
	    !terminated(v->i, sizeof(v->i)) ||
	    !terminated(v->bprefix, sizeof(v->bprefix)) ||
	    !terminated(v->why, sizeof(v->why)))
		return -1;
	/* one that needs its key names it, and has an AUID */
	if (v->status == DKIM_NONE && (v->d[0] == '\0' || v->s[0] == '\0' ||
	    strchr(v->i, '@') == NULL))
		return -1;
	return 0;
}

int
dkim_vsig_keyname(const struct dkim_vsig *v, char *out, size_t len)
{
	int	n;

	n = snprintf(out, len, "%s._domainkey.%s", v->s, v->d);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static enum dkim_result
vres(struct dkim_vres *res, enum dkim_result r, const char *why)
{
	res->result = r;
	snprintf(res->why, sizeof(res->why), "%s", why);
	return r;
}

enum dkim_result
dkim_vsig_precheck(const struct dkim_vsig *v, time_t now,
    struct dkim_vres *res)
{
	memset(res, 0, sizeof(*res));
	if (v->status != DKIM_NONE)
		return vres(res, (enum dkim_result)v->status, v->why);
	if (v->alg == DKIM_ALG_RSA_SHA1)
		return vres(res, DKIM_FAIL, "rsa-sha1 is not accepted "
		    "(RFC 8301 3.1)");
	if (v->alg != DKIM_ALG_RSA_SHA256 && v->alg != DKIM_ALG_ED25519_SHA256)
		return vres(res, DKIM_NEUTRAL, "unknown signature algorithm");
	if (v->x != -1 && v->x < (int64_t)now)
		return vres(res, DKIM_POLICY, "signature expired");
	if (v->t != -1 && v->t > (int64_t)now + DKIM_CLOCK_SKEW)
		return vres(res, DKIM_POLICY, "signature in the future");
	if (!v->bh_ok)
		return vres(res, DKIM_FAIL, "body hash did not verify");
	res->result = DKIM_NONE;
	return DKIM_NONE;
}

/* ---- the key record (RFC 6376 3.6.1, RFC 8463 4.2) ---- */

/*
 * Decoding an RSA key costs ~100 us in OpenSSL 3 (its decoder machinery),
 * as much as the verification itself: lookup sees the same few keys
 * again and again, so the last KEY_CACHE decoded are kept, by their
 * bytes.  A cached key is shared (a reference each).
 */
#define KEY_CACHE	64
#define KEY_CACHE_DER	1100		/* RSA-8192's SubjectPublicKeyInfo */

static struct {
	EVP_PKEY	*pkey;
	int		 ed25519;
	size_t		 len;
	uint8_t		 der[KEY_CACHE_DER];
} key_cache[KEY_CACHE];
static size_t	key_cache_next;

static EVP_PKEY	*key_decode_new(int, const uint8_t *, size_t);

static EVP_PKEY *
key_decode(int ed25519, const uint8_t *der, size_t len)
{
	EVP_PKEY	*pkey;
	size_t		 i;

	for (i = 0; i < KEY_CACHE; i++)
		if (key_cache[i].pkey != NULL && key_cache[i].len == len &&
		    key_cache[i].ed25519 == ed25519 &&
		    memcmp(key_cache[i].der, der, len) == 0)
			return EVP_PKEY_up_ref(key_cache[i].pkey) ?
			    key_cache[i].pkey : NULL;
	if ((pkey = key_decode_new(ed25519, der, len)) == NULL ||
	    len > KEY_CACHE_DER || !EVP_PKEY_up_ref(pkey))
		return pkey;
	i = key_cache_next++ % KEY_CACHE;
	EVP_PKEY_free(key_cache[i].pkey);
	key_cache[i].pkey = pkey;
	key_cache[i].ed25519 = ed25519;
	key_cache[i].len = len;
	memcpy(key_cache[i].der, der, len);
	return pkey;
}

static EVP_PKEY *
key_decode_new(int ed25519, const uint8_t *der, size_t len)
{
	const unsigned char	*p = der;
	EVP_PKEY		*pkey;

	if (ed25519) {
		if (len != 32)
			return NULL;
		return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
		    der, len);
	}
	/* SubjectPublicKeyInfo as everyone publishes; RSAPublicKey too */
	if ((pkey = d2i_PUBKEY(NULL, &p, (long)len)) != NULL) {
		if (p != der + len) {
			EVP_PKEY_free(pkey);
			return NULL;
		}
		return pkey;
	}
	p = der;
	if ((pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len)) != NULL &&
	    p != der + len) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

static int
verify_sig(EVP_PKEY *pkey, const struct dkim_vsig *v)
{
	EVP_PKEY_CTX	*pctx;
	EVP_MD_CTX	*mctx;
	int		 ok = 0;

	if (v->alg == DKIM_ALG_ED25519_SHA256) {
		/* RFC 8463 3: PureEdDSA over the SHA-256 hash's 32 bytes */
		if ((mctx = EVP_MD_CTX_new()) == NULL)
			return -1;
		if (EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pkey) == 1)
			ok = EVP_DigestVerify(mctx, v->b, v->blen, v->hh,
			    sizeof(v->hh)) == 1;
		EVP_MD_CTX_free(mctx);
		return ok;
	}
	if ((pctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL)
		return -1;
	if (EVP_PKEY_verify_init(pctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) == 1)
		ok = EVP_PKEY_verify(pctx, v->b, v->blen, v->hh,
		    sizeof(v->hh)) == 1;
	EVP_PKEY_CTX_free(pctx);
	return ok;
}

enum dkim_result
dkim_verify(const struct dkim_vsig *v, const char *keytxt, size_t keylen,
    time_t now, struct dkim_vres *res)
{
	struct dkim_tag		 tags[DKIM_MAX_TAGS];
	const struct dkim_tag	*t;
	uint8_t			*der;
	EVP_PKEY		*pkey;
	ssize_t			 derlen;
	int			 ntags, ed25519, ok;

	if (dkim_vsig_precheck(v, now, res) != DKIM_NONE)
		return res->result;
	ed25519 = v->alg == DKIM_ALG_ED25519_SHA256;
	if ((ntags = dkim_tags_parse(keytxt, keylen, tags,
	    DKIM_MAX_TAGS)) == -1)
		return vres(res, DKIM_PERMERROR, "key record syntax error");
	if ((t = tag_find(tags, ntags, "v")) != NULL && !tag_is(t, "DKIM1"))
		return vres(res, DKIM_PERMERROR, "key record v= not DKIM1");
	if ((t = tag_find(tags, ntags, "h")) != NULL &&
	    !list_has(t->value, t->len, "sha256"))
		return vres(res, DKIM_PERMERROR, "key h= excludes sha256");
	if ((t = tag_find(tags, ntags, "k")) != NULL ?
	    !tag_is(t, ed25519 ? "ed25519" : "rsa") : ed25519)
		return vres(res, DKIM_PERMERROR, "key type k= does not match "
		    "a=");
	if ((t = tag_find(tags, ntags, "s")) != NULL &&
	    !list_has(t->value, t->len, "*") &&
	    !list_has(t->value, t->len, "email"))
		return vres(res, DKIM_PERMERROR, "key s= not for email");
	if ((t = tag_find(tags, ntags, "t")) != NULL) {
		const char	*at = strrchr(v->i, '@');

		res->testing = list_has(t->value, t->len, "y");
		if (list_has(t->value, t->len, "s") &&
		    (at == NULL || strcasecmp(at + 1, v->d) != 0))
			return vres(res, DKIM_PERMERROR, "key t=s and i= in "
			    "a subdomain of d=");
	}
	if ((t = tag_find(tags, ntags, "p")) == NULL)
		return vres(res, DKIM_PERMERROR, "key record p= missing");
	if (t->len == 0)
		return vres(res, DKIM_FAIL, "key revoked");
	if ((der = malloc(DKIM_KEY_MAX)) == NULL)
		return vres(res, DKIM_TEMPERROR, "out of memory");
	derlen = dkim_b64_decode(t->value, t->len, der, DKIM_KEY_MAX);
	pkey = derlen > 0 ? key_decode(ed25519, der, (size_t)derlen) : NULL;
	free(der);
	if (pkey == NULL)
		return vres(res, DKIM_PERMERROR, "key p= invalid");
	if (EVP_PKEY_get_base_id(pkey) !=
	    (ed25519 ? EVP_PKEY_ED25519 : EVP_PKEY_RSA)) {
		EVP_PKEY_free(pkey);
		return vres(res, DKIM_PERMERROR, "key p= of the wrong type");
	}
	res->keybits = EVP_PKEY_get_bits(pkey);
	if (!ed25519 && res->keybits < DKIM_RSA_MIN_VERIFY) {
		EVP_PKEY_free(pkey);
		snprintf(res->why, sizeof(res->why), "RSA key of %d bits, "
		    "under %d (RFC 8301 3.2)", res->keybits,
		    DKIM_RSA_MIN_VERIFY);
		res->result = DKIM_FAIL;
		return DKIM_FAIL;
	}
	ok = verify_sig(pkey, v);
	EVP_PKEY_free(pkey);
	if (ok == -1)
		return vres(res, DKIM_TEMPERROR, "out of memory");
	if (!ok)
		return vres(res, DKIM_FAIL, "signature did not verify");
	return vres(res, DKIM_PASS, res->testing ? "verified (key in "
	    "testing mode)" : "verified");
}

/* ---- signing ---- */

int
dkim_sign_digest(void *key, enum dkim_alg alg, const uint8_t digest[32],
    uint8_t *sig, size_t *siglen)
{
	EVP_PKEY	*pkey = key;
	EVP_PKEY_CTX	*pctx;
	EVP_MD_CTX	*mctx;
	size_t		 need;
	int		 ok = 0;

	if (alg == DKIM_ALG_ED25519_SHA256) {
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519 ||
		    *siglen < 64 || (mctx = EVP_MD_CTX_new()) == NULL)
			return -1;
		if (EVP_DigestSignInit(mctx, NULL, NULL, NULL, pkey) == 1)
			ok = EVP_DigestSign(mctx, sig, siglen, digest, 32) == 1;
		EVP_MD_CTX_free(mctx);
		return ok ? 0 : -1;
	}
	if (alg != DKIM_ALG_RSA_SHA256 ||
	    EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA ||
	    EVP_PKEY_get_bits(pkey) < DKIM_RSA_MIN_SIGN)
		return -1;
	if ((pctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL)
		return -1;
	if (EVP_PKEY_sign_init(pctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) == 1 &&
	    EVP_PKEY_sign(pctx, NULL, &need, digest, 32) == 1 &&
	    need <= *siglen)
		ok = EVP_PKEY_sign(pctx, sig, siglen, digest, 32) == 1;
	EVP_PKEY_CTX_free(pctx);
	return ok ? 0 : -1;
}

/* the header's b= value, folded at 78 columns (a tab counts 8) */
ssize_t
dkim_sign_header(const struct dkim_sign *sg, const uint8_t *sig,
    size_t siglen, char *out, size_t outlen)
{
	char	 b64[(DKIM_SIG_MAX * 2 / 3 + 4) * 2];
	size_t	 n, blen, p, col, room, take;

	if (siglen == 0 || siglen > DKIM_SIG_MAX || sg->len >= outlen)
		return -1;
	blen = dkim_b64_encode(sig, siglen, b64);
	memcpy(out, sg->hdr, sg->len);
	n = sg->len;
	col = sg->col;
	for (p = 0; p < blen; p += take) {
		if (col >= 78) {
			if (n + 3 > outlen)
				return -1;
			memcpy(out + n, "\r\n\t", 3);
			n += 3;
			col = 8;
		}
		room = 78 - col;
		take = blen - p < room ? blen - p : room;
		if (n + take > outlen)
			return -1;
		memcpy(out + n, b64 + p, take);
		n += take;
		col += take;
	}
	if (n + 3 > outlen)
		return -1;
	memcpy(out + n, "\r\n", 3);
	return (ssize_t)(n + 2);
}

int
dkim_key_txt(void *key, char *out, size_t outlen)
{
	EVP_PKEY	*pkey = key;
	unsigned char	*der = NULL;
	uint8_t		 raw[32];
	char		*b64;
	size_t		 rawlen = sizeof(raw);
	int		 len, n;

	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
		char	e[48];

		if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 ||
		    rawlen != 32)
			return -1;
		dkim_b64_encode(raw, rawlen, e);
		n = snprintf(out, outlen, "v=DKIM1; k=ed25519; p=%s", e);
		return n < 0 || (size_t)n >= outlen ? -1 : 0;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
		return -1;
	if ((len = i2d_PUBKEY(pkey, &der)) <= 0)
		return -1;
	if ((b64 = malloc((size_t)len * 4 / 3 + 8)) == NULL) {
		OPENSSL_free(der);
		return -1;
	}
	dkim_b64_encode(der, (size_t)len, b64);
	OPENSSL_free(der);
	n = snprintf(out, outlen, "v=DKIM1; k=rsa; p=%s", b64);
	free(b64);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
