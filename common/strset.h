/*
 * strset.h -- a set of byte strings, O(1) per insertion and lookup.
 *
 * Recipients are deduplicated in three places (the smtp worker per
 * transaction, the queue's envelope ids per message, sendmail -t): each
 * used a linear scan, so a client allowed 100 000 recipients made them
 * quadratic.  The keys come from the network, so the hash is SipHash
 * under a random key per set: a client cannot pick colliding keys.
 */
#ifndef POSTHASTE_STRSET_H
#define POSTHASTE_STRSET_H

#include <stddef.h>

#define STRSET_ICASE	0x1	/* ASCII letters compare case-insensitively */

struct strset;

/* NULL when out of memory */
struct strset	*strset_new(int flags);
void		 strset_free(struct strset *);
/* 1 when added, 0 when it was already there, -1 when out of memory */
int		 strset_add(struct strset *, const void *key, size_t len);
int		 strset_add_str(struct strset *, const char *);
/* 1 when there, 0 when not (or, for a STRSET_ICASE key over 256 bytes,
 * when there is no memory to fold it) */
int		 strset_has(const struct strset *, const void *key,
		    size_t len);
size_t		 strset_count(const struct strset *);

#endif
