/*
 * destmac.h -- lookup's seal on the destinations it produces.
 *
 * The smtp worker carries each destination lookup gave it (struct
 * lka_dest) into the envelope it sends the queue.  The worker is the most
 * exposed process; if it could write any destination it liked, a worker
 * taken over by a client could have the queue run "|any command" as any
 * user.  So lookup tags each destination with an HMAC-SHA256 under a key
 * that only the parent, the queue and lookup hold, and the queue accepts
 * an envelope only if its tag verifies (queue_envelope()).
 */
#ifndef POSTHASTE_DESTMAC_H
#define POSTHASTE_DESTMAC_H

#include <stdint.h>

#define DESTMAC_KEY_LEN		32
#define DESTMAC_LEN		32	/* HMAC-SHA256 */

/*
 * The mac in a spool file's footer (envelope.h): HMAC-SHA256 under the
 * queue's spool key (queue/.key) of a label, the message's size (8 bytes,
 * big-endian), the envelope's length (4 bytes) and the envelope text.
 * With added headers (head > 0, footer version 2) the label is another
 * and their length (4 bytes) follows the message's size, so no version 1
 * mac passes for a version 2 one or back.
 */
void	spool_footer_mac(const uint8_t key[DESTMAC_KEY_LEN], uint64_t body,
	    size_t head, const char *env, size_t envlen,
	    uint8_t mac[DESTMAC_LEN]);

struct envelope;
struct lka_dest;

/*
 * The tag of d's delivery fields (dest_type, dest, action, user, path,
 * sender_override) under key; d->reqid and d->mac are not covered.
 */
void	destmac_compute(const uint8_t key[DESTMAC_KEY_LEN],
	    const struct lka_dest *d, uint8_t tag[DESTMAC_LEN]);
/* 0 if tag is d's tag under key, -1 if not (constant time) */
int	destmac_verify(const uint8_t key[DESTMAC_KEY_LEN],
	    const struct lka_dest *d, const uint8_t tag[DESTMAC_LEN]);
/*
 * 0 if the destination of evp (a worker's envelope) carries the tag
 * lookup gave it, -1 if not
 */
int	destmac_verify_envelope(const uint8_t key[DESTMAC_KEY_LEN],
	    const struct envelope *evp);

/*
 * This process's copy of the key.  The parent makes it before it forks
 * anything; every child but the queue and lookup forgets it at once.
 */
void	destmac_key_generate(void);
void	destmac_key_forget(void);
/* NULL if this process does not hold the key */
const uint8_t *destmac_key(void);

#endif
