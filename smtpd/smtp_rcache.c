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
#include <time.h>

#include "log.h"
#include "proto.h"
#include "smtp_session.h"

#define RCACHE_SLOTS		64	/* direct-mapped */
#define RCACHE_TTL_MAX_MS	10000	/* whatever lookup says */
#define RCACHE_MAX_DESTS	2

struct rcache_entry {
	struct lka_rcpt_req	key;
	uint64_t		expires;	/* ms, monotonic */
	struct lka_result	result;
	size_t			ndest;
	struct lka_dest		dests[RCACHE_MAX_DESTS];
};

/* an answer being received, for the cache once it is complete */
struct rcache_rec {
	struct lka_rcpt_req	key;
	size_t			ndest;
	int			overflow;
	struct lka_dest		dests[RCACHE_MAX_DESTS];
};

static struct rcache_entry	*slots[RCACHE_SLOTS];

static uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* the request as a key: what lookup decides by, nothing else */
static void
make_key(struct lka_rcpt_req *key, const struct lka_rcpt_req *req)
{
	*key = *req;	/* the session zeroed it before filling it in */
	key->reqid = 0;
	if (key->client.ss_family == AF_INET)
		((struct sockaddr_in *)&key->client)->sin_port = 0;
	else if (key->client.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&key->client)->sin6_port = 0;
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

	make_key(&key, req);
	e = slots[slot_of(&key)];
	if (e == NULL || now_ms() >= e->expires ||
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
	session_rcpt_result(s, &r);
	return 1;
}

/* the answer to this request is to be recorded as it arrives */
void
rcache_record(struct txn *tx, const struct lka_rcpt_req *req)
{
	rcache_rec_free(tx);
	if ((tx->rrec = calloc(1, sizeof(*tx->rrec))) == NULL)
		return;		/* no memory: no caching, no harm */
	make_key(&tx->rrec->key, req);
}

void
rcache_rec_dest(struct txn *tx, const struct lka_dest *d)
{
	struct rcache_rec	*rec = tx->rrec;

	if (rec == NULL)
		return;
	if (rec->ndest == RCACHE_MAX_DESTS)
		rec->overflow = 1;
	else
		rec->dests[rec->ndest++] = *d;
}

/* the result has come: an acceptance goes into the cache */
void
rcache_rec_done(struct txn *tx, const struct lka_result *r)
{
	struct rcache_rec	*rec = tx->rrec;
	struct rcache_entry	*e, **slot;

	if (rec == NULL)
		return;
	if (r->status == PROTO_OK && r->reuse_ms > 0 && !rec->overflow &&
	    r->ndest > 0 && r->ndest == rec->ndest) {
		slot = &slots[slot_of(&rec->key)];
		if ((e = *slot) == NULL && (e = *slot = malloc(sizeof(*e))) ==
		    NULL)
			goto done;
		e->key = rec->key;
		e->expires = now_ms() + (r->reuse_ms < RCACHE_TTL_MAX_MS ?
		    r->reuse_ms : RCACHE_TTL_MAX_MS);
		e->result = *r;
		e->ndest = rec->ndest;
		memcpy(e->dests, rec->dests, rec->ndest * sizeof(*e->dests));
	}
done:
	rcache_rec_free(tx);
}

void
rcache_rec_free(struct txn *tx)
{
	free(tx->rrec);
	tx->rrec = NULL;
}
