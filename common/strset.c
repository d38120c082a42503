/*
 * strset.c -- a set of byte strings: open addressing with linear
 * probing, at most half full, each key copied once.
 *
 * Why SipHash (Aumasson and Bernstein, 2012) under a random key: the
 * keys are recipient addresses a client chose.  With a fixed hash a
 * client could send addresses that all fall into one chain and bring
 * back the quadratic cost this set exists to remove.  SipHash-2-4 is
 * written here from the paper's description; test_strset.c checks it
 * against the paper's test vector.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


#include "strset.h"

struct strset_entry {
	uint64_t	 hash;
	size_t		 len;
	unsigned char	*key;		/* NULL: a free slot */
};

struct strset {
	int			 flags;
	uint8_t			 sipkey[16];
	size_t			 count;
	size_t			 size;	/* a power of two, or 0 */
	struct strset_entry	*slots;
};

#define STRSET_MIN	16
#define ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t
load64_le(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	    (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 |
	    (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	    (uint64_t)p[7] << 56;
}

#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

/* exported for test_strset.c only (not in the header) */
uint64_t	strset_siphash24(const uint8_t key[16], const void *, size_t);

uint64_t
strset_siphash24(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t	*in = data;
	uint64_t	 k0 = load64_le(key), k1 = load64_le(key + 8);
	uint64_t	 v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t	 v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t	 v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t	 v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t	 m, b = (uint64_t)len << 56;
	size_t		 i, left = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		m = load64_le(in + i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	/* the last 0-7 bytes, little-endian, under the length byte */
	for (; left > 0; left--)
		b |= (uint64_t)in[i + left - 1] << (8 * (left - 1));
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static unsigned char
fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

struct strset *
strset_new(int flags)
{
	struct strset	*set;

	if ((set = calloc(1, sizeof(*set))) == NULL)
		return NULL;
	set->flags = flags;
	arc4random_buf(set->sipkey, sizeof(set->sipkey));
	return set;
}

void
strset_free(struct strset *set)
{
	size_t	i;

	if (set == NULL)
		return;
	for (i = 0; i < set->size; i++)
		free(set->slots[i].key);
	free(set->slots);
	free(set);
}

size_t
strset_count(const struct strset *set)
{
	return set->count;
}

/* the slot holding the key, or the free slot where it would go */
static struct strset_entry *
strset_slot(const struct strset *set, uint64_t hash, const void *key,
    size_t len)
{
	struct strset_entry	*e;
	size_t			 i, mask = set->size - 1;

	for (i = hash & mask;; i = (i + 1) & mask) {
		e = &set->slots[i];
		if (e->key == NULL)
			return e;
		if (e->hash == hash && e->len == len &&
		    memcmp(e->key, key, len) == 0)
			return e;
	}
}

static int
strset_grow(struct strset *set)
{
	struct strset_entry	*old = set->slots, *e;
	size_t			 oldsize = set->size, nsize, i;

	nsize = oldsize ? oldsize * 2 : STRSET_MIN;
	if (nsize < oldsize)
		return -1;
	if ((set->slots = calloc(nsize, sizeof(*set->slots))) == NULL) {
		set->slots = old;
		return -1;
	}
	set->size = nsize;
	for (i = 0; i < oldsize; i++) {
		if (old[i].key == NULL)
			continue;
		e = strset_slot(set, old[i].hash, old[i].key, old[i].len);
		*e = old[i];
	}
	free(old);
	return 0;
}

/*
 * The key as the set compares it: as given, or folded for STRSET_ICASE
 * into buf when it fits (keys are addresses and ids: short), else into
 * memory the caller frees (*allocp).  NULL when out of memory.
 */
static const unsigned char *
strset_norm(const struct strset *set, const void *key, size_t len,
    unsigned char *buf, size_t bufsize, unsigned char **allocp)
{
	const unsigned char	*k = key;
	unsigned char		*c = buf;
	size_t			 i;

	*allocp = NULL;
	if (!(set->flags & STRSET_ICASE))
		return k;
	if (len > bufsize && (c = *allocp = malloc(len)) == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		c[i] = fold(k[i]);
	return c;
}

int
strset_add(struct strset *set, const void *key, size_t len)
{
	struct strset_entry	*e;
	const unsigned char	*k;
	unsigned char		 buf[256], *alloc, *c;
	uint64_t		 hash;

	if ((set->count + 1) * 2 > set->size && strset_grow(set) == -1) {
		errno = ENOMEM;
		return -1;
	}
	if ((k = strset_norm(set, key, len, buf, sizeof(buf), &alloc)) == NULL)
		return -1;
	hash = strset_siphash24(set->sipkey, k, len);
	e = strset_slot(set, hash, k, len);
	if (e->key != NULL) {
		free(alloc);
		return 0;
	}
	if ((c = malloc(len ? len : 1)) == NULL) {
		free(alloc);
		return -1;
	}
	if (len > 0)
		memcpy(c, k, len);
	free(alloc);
	e->hash = hash;
	e->len = len;
	e->key = c;
	set->count++;
	return 1;
}

int
strset_add_str(struct strset *set, const char *s)
{
	return strset_add(set, s, strlen(s));
}

int
strset_has(const struct strset *set, const void *key, size_t len)
{
	const unsigned char	*k;
	unsigned char		 buf[256], *alloc;
	uint64_t		 hash;
	int			 found;

	if (set->count == 0)
		return 0;
	/* out of memory for a long folded key: say "absent", as documented */
	if ((k = strset_norm(set, key, len, buf, sizeof(buf), &alloc)) == NULL)
		return 0;
	hash = strset_siphash24(set->sipkey, k, len);
	found = strset_slot(set, hash, k, len)->key != NULL;
	free(alloc);
	return found;
}
