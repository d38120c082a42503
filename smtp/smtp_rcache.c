/*
 * smtp_rcache.c -- recipients lookup has just accepted, remembered by
 * an smtp worker for a second.
 *
 * Every RCPT TO is resolved by lookup (rules, aliases, virtual tables,
 * users, ~/.forward).  A host that relays a burst of mail for the same
 * addresses asks the same question over and over, and each answer costs
 * a round trip between two processes.  Lookup says with each acceptance
 * how long the asker may reuse it (lka_result.reuse_ms): a while when
 * only the request and the configuration decided it (a recipient
 * relayed by rules without tables), never when a table, a user or a
 * ~/.forward had a say -- those can change under a running daemon, and
 * the next RCPT must see the change.  When a request is the same as one
 * answered that recently -- every field lookup sees, client address,
 * HELO, AUTH name, sender and recipient alike; only the client's port
 * and the request id may differ -- the session gets the same
 * destinations and the same 250 without asking.
 *
 * Refusals and temporary failures are never reused (lookup logs
 * refusals, and a temporary failure may be over), nor answers with more
 * than RCACHE_MAX_DESTS destinations.  A reload starts new workers, with
 * empty caches, so a changed configuration is asked about afresh.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proto.h"
#include "smtp_session.h"
#include "util.h"

#define RCACHE_SLOTS		64	/* direct-mapped */
#define RCACHE_TTL_MAX_MS	10000	/* whatever lookup says */
#define RCACHE_MAX_DESTS	2

struct rcache_entry {
	struct lka_rcpt_req	key;
	int64_t			expires;	/* ms, monotonic_ms() */
	struct lka_result	result;
	size_t			ndest;
	struct lka_dest		dests[RCACHE_MAX_DESTS];
};

static struct rcache_entry	*slots[RCACHE_SLOTS];

/* a request as a key: what lookup decides by, nothing else */
static void
make_key(struct lka_rcpt_req *req)
{
	req->reqid = 0;
	if (req->client.ss_family == AF_INET)
		((struct sockaddr_in *)&req->client)->sin_port = 0;
	else if (req->client.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&req->client)->sin6_port = 0;
}

static size_t
slot_of(const struct lka_rcpt_req *key)
{
	const unsigned char	*p = (const unsigned char *)key;
	uint64_t		 h = 1469598103934665603ULL;	/* FNV-1a */
	size_t			 i;

	for (i = 0; i < sizeof(*key); i++) {
		if (p[i] == 0)
			continue;	/* mostly zeroes: skip them quickly */
		h = (h ^ p[i]) * 1099511628211ULL;
		h ^= i;
	}
	return (size_t)(h % RCACHE_SLOTS);
}

/*
 * A fresh answer to this request, replayed to the session as if lookup
 * had sent it: its destinations, then its result, with the session's
 * id.  Returns 0 when there is none (ask lookup).
 */
int
rcache_replay(struct session *s, const struct lka_rcpt_req *req)
{
	struct lka_rcpt_req	 key;
	struct rcache_entry	*e;
	struct lka_dest		 d;
	struct lka_result	 r;
	size_t			 i;

	key = *req;	/* zeroed before it was filled in: padding too */
	make_key(&key);
	e = slots[slot_of(&key)];
	if (e == NULL || monotonic_ms() >= e->expires ||
	    memcmp(&e->key, &key, sizeof(key)) != 0)
		return 0;
	log_debug("%08x: RCPT answered as lookup did a moment ago", s->id);
	s->flags |= SS_WAIT;
	for (i = 0; i < e->ndest; i++) {
		d = e->dests[i];
		d.reqid = s->id;
		session_lookup_dest(&d);
	}
	r = e->result;
	r.reqid = s->id;
	r.reuse_ms = 0;		/* a replay does not make the answer younger */
	session_rcpt_result(s, &r);
	return 1;
}

/*
 * Lookup has accepted the session's pending recipient and says the answer
 * may be reused: keep it, with the destinations the session took from it.
 * They are the transaction's last ones, unless some were merged with an
 * earlier recipient's (then the counts differ, and nothing is kept).
 */
void
rcache_store(const struct session *s, const struct lka_result *r)
{
	const struct txn	*tx = s->tx;
	struct lka_rcpt_req	 req;
	struct rcache_entry	*e, **slot;
	size_t			 i, n = tx->ndests - tx->ndests_before;

	if (r->ndest == 0 || n != r->ndest || n > RCACHE_MAX_DESTS)
		return;
	session_rcpt_request(s, &req);
	make_key(&req);
	slot = &slots[slot_of(&req)];
	if ((e = *slot) == NULL && (e = *slot = malloc(sizeof(*e))) == NULL)
		return;		/* no memory: no caching, no harm */
	e->key = req;
	e->expires = monotonic_ms() + (r->reuse_ms < RCACHE_TTL_MAX_MS ?
	    r->reuse_ms : RCACHE_TTL_MAX_MS);
	e->result = *r;
	e->ndest = n;
	for (i = 0; i < n; i++)
		e->dests[i] = tx->dests[tx->ndests_before + i].d;
}
