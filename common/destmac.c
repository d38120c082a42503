/*
 * destmac.c -- the HMAC that lets the queue trust a destination only
 * lookup could have produced (destmac.h).
 *
 * The MAC is over a canonical encoding: a version label, then dest_type
 * as four big-endian bytes, then each string field as a four-byte
 * big-endian length and its bytes.  With lengths, no two different sets
 * of fields encode alike (a plain concatenation would let "ab"+"c" pass
 * for "a"+"bc", e.g. a user name that swallows the start of a path).
 */
#include <stdint.h>
#include <string.h>

#include <stdlib.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "destmac.h"
#include "log.h"
#include "proto.h"

#define DESTMAC_LABEL	"posthaste destination v1"

static uint8_t	key[DESTMAC_KEY_LEN];
static int	have_key;

/*
 * HMAC-SHA256 with the key's share of the work done once: a context
 * keyed per key, copied for each message (OpenSSL's one-shot HMAC()
 * fetches the algorithm and hashes the key every time).  Only the queue
 * and lookup fill this; the parent warms OpenSSL up without it, so no
 * child inherits keyed state (destmac_key_generate()).
 */
#define HMAC_CACHE	2
static struct {
	uint8_t		 key[DESTMAC_KEY_LEN];
	EVP_MAC_CTX	*ctx;
} hmac_cache[HMAC_CACHE];
static int	hmac_next;

static EVP_MAC_CTX *
hmac_keyed(const uint8_t k[DESTMAC_KEY_LEN])
{
	static EVP_MAC	*mac;
	OSSL_PARAM	 params[2];
	EVP_MAC_CTX	*ctx;
	int		 i;

	for (i = 0; i < HMAC_CACHE; i++)
		if (hmac_cache[i].ctx != NULL &&
		    CRYPTO_memcmp(hmac_cache[i].key, k, DESTMAC_KEY_LEN) == 0)
			return hmac_cache[i].ctx;
	if (mac == NULL && (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		fatalx("EVP_MAC_fetch HMAC");
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_MAC_CTX_new(mac)) == NULL ||
	    EVP_MAC_init(ctx, k, DESTMAC_KEY_LEN, params) != 1)
		fatalx("HMAC key set-up failed");
	i = hmac_next++ % HMAC_CACHE;
	EVP_MAC_CTX_free(hmac_cache[i].ctx);
	memcpy(hmac_cache[i].key, k, DESTMAC_KEY_LEN);
	hmac_cache[i].ctx = ctx;
	return ctx;
}

static void
hmac_cache_clear(void)
{
	int	i;

	for (i = 0; i < HMAC_CACHE; i++) {
		EVP_MAC_CTX_free(hmac_cache[i].ctx);
		hmac_cache[i].ctx = NULL;
		explicit_bzero(hmac_cache[i].key, sizeof(hmac_cache[i].key));
	}
}

/* HMAC of a then b (b may be empty) */
static void
hmac_sha256(const uint8_t k[DESTMAC_KEY_LEN], const void *a, size_t alen,
    const void *b, size_t blen, uint8_t out[DESTMAC_LEN])
{
	EVP_MAC_CTX	*c;
	size_t		 outl = 0;

	if ((c = EVP_MAC_CTX_dup(hmac_keyed(k))) == NULL ||
	    EVP_MAC_update(c, a, alen) != 1 ||
	    (blen > 0 && EVP_MAC_update(c, b, blen) != 1) ||
	    EVP_MAC_final(c, out, &outl, DESTMAC_LEN) != 1 ||
	    outl != DESTMAC_LEN)
		fatalx("HMAC failed");
	EVP_MAC_CTX_free(c);
}

struct encoder {
	uint8_t	buf[sizeof(DESTMAC_LABEL) + 4 + sizeof(struct lka_dest) +
		    8 * 4];
	size_t	len;
};

static void
put_u32(struct encoder *e, uint32_t v)
{
	if (e->len + 4 > sizeof(e->buf))
		fatalx("destmac: encoding overflow");
	e->buf[e->len++] = (uint8_t)(v >> 24);
	e->buf[e->len++] = (uint8_t)(v >> 16);
	e->buf[e->len++] = (uint8_t)(v >> 8);
	e->buf[e->len++] = (uint8_t)v;
}

/* a fixed-size field, up to its NUL (or its end, if it has none) */
static void
put_field(struct encoder *e, const char *s, size_t size)
{
	size_t	n = strnlen(s, size);

	put_u32(e, (uint32_t)n);
	if (e->len + n > sizeof(e->buf))
		fatalx("destmac: encoding overflow");
	memcpy(e->buf + e->len, s, n);
	e->len += n;
}

#define PUT_FIELD(e, f)	put_field((e), (f), sizeof(f))

void
destmac_compute(const uint8_t k[DESTMAC_KEY_LEN], const struct lka_dest *d,
    uint8_t tag[DESTMAC_LEN])
{
	struct encoder	e;

	e.len = 0;
	put_field(&e, DESTMAC_LABEL, sizeof(DESTMAC_LABEL));
	put_u32(&e, d->dest_type);
	PUT_FIELD(&e, d->dest.user);
	PUT_FIELD(&e, d->dest.domain);
	PUT_FIELD(&e, d->action);
	PUT_FIELD(&e, d->user);
	PUT_FIELD(&e, d->path);
	PUT_FIELD(&e, d->sender_override.user);
	PUT_FIELD(&e, d->sender_override.domain);
	hmac_sha256(k, e.buf, e.len, NULL, 0, tag);
	explicit_bzero(&e, sizeof(e));
}

int
destmac_verify(const uint8_t k[DESTMAC_KEY_LEN], const struct lka_dest *d,
    const uint8_t tag[DESTMAC_LEN])
{
	uint8_t	want[DESTMAC_LEN];
	int	rc;

	destmac_compute(k, d, want);
	rc = CRYPTO_memcmp(want, tag, DESTMAC_LEN) == 0 ? 0 : -1;
	explicit_bzero(want, sizeof(want));
	return rc;
}

/*
 * The seal covers the sender only where lookup chose one (list mail's
 * owner-LIST); otherwise the sender is the client's MAIL FROM, which it
 * does not cover.  So an envelope passes if its tag verifies with its
 * sender as lookup's choice, or with no choice at all.  A tag for a
 * chosen sender verifies neither way once the sender is changed.
 */
int
destmac_verify_envelope(const uint8_t k[DESTMAC_KEY_LEN],
    const struct envelope *evp)
{
	struct lka_dest	d;

	memset(&d, 0, sizeof(d));
	d.dest_type = evp->dest_type;
	d.dest = evp->dest;
	memcpy(d.action, evp->action, sizeof(d.action));
	memcpy(d.user, evp->user, sizeof(d.user));
	memcpy(d.path, evp->path, sizeof(d.path));
	/* the common case first: lookup chose no sender */
	if (destmac_verify(k, &d, evp->dest_mac) == 0)
		return 0;
	d.sender_override = evp->sender;
	return destmac_verify(k, &d, evp->dest_mac);
}

void
spool_footer_mac(const uint8_t k[DESTMAC_KEY_LEN], uint64_t body,
    size_t head, const char *env, size_t envlen, uint8_t mac[DESTMAC_LEN])
{
	static const char	 label1[] = "posthaste spool footer v1";
	static const char	 label2[] = "posthaste spool footer v2";
	uint8_t			 hd[sizeof(label1) - 1 + 16];
	size_t			 n = sizeof(label1) - 1;
	int			 i;

	memcpy(hd, head == 0 ? label1 : label2, n);
	for (i = 7; i >= 0; i--)
		hd[n++] = (uint8_t)(body >> (8 * i));
	for (i = 3; head > 0 && i >= 0; i--)
		hd[n++] = (uint8_t)((uint64_t)head >> (8 * i));
	for (i = 3; i >= 0; i--)
		hd[n++] = (uint8_t)((uint64_t)envlen >> (8 * i));
	hmac_sha256(k, hd, n, env, envlen, mac);
}

void
destmac_key_generate(void)
{
	static const uint8_t	throwaway[DESTMAC_KEY_LEN];
	struct lka_dest		d;
	uint8_t			tag[DESTMAC_LEN];

	arc4random_buf(key, sizeof(key));
	have_key = 1;
	/*
	 * OpenSSL reads its configuration and loads its providers on first
	 * use.  Use it once here, before the parent forks anything, so the
	 * queue and lookup never do that under their sandbox or chroot --
	 * with a key of zeros, and the keyed state dropped after: no child
	 * inherits anything derived from the real key.
	 */
	memset(&d, 0, sizeof(d));
	destmac_compute(throwaway, &d, tag);
	hmac_cache_clear();
}

void
destmac_key_forget(void)
{
	explicit_bzero(key, sizeof(key));
	have_key = 0;
	hmac_cache_clear();
}

const uint8_t *
destmac_key(void)
{
	return have_key ? key : NULL;
}
