/*
 * ratelimit.c -- rate limits shared by the smtp workers (ratelimit.h).
 *
 * The kernel spreads one client's connections over all the workers, so
 * "10 messages a minute from this address" cannot be kept by a worker
 * alone.  As the session table (sesscount.c) does, the parent maps a
 * table into shared memory before it forks control and the workers; the
 * workers count under a process-shared mutex and control reads under it
 * for "smtpctl show limits".  The table outlives reloads (every
 * generation of workers inherits the same mapping); only the limits,
 * read from the configuration at each event, change.
 *
 * Counting is GCRA (the generic cell rate algorithm): per key and limit
 * one "theoretical arrival time" (TAT) in ms of the monotonic clock,
 * which all processes share.  With N events per period P, each event
 * moves the TAT on by the emission interval T = P/N; an event is
 * refused when the TAT is more than P - T ahead of now, so at most N
 * pass in any window of P and a burst of N is allowed.  No timer, no
 * list of events: one integer per key and limit.  An entry whose every
 * TAT is in the past holds nothing and is free for another key.
 *
 * Open addressing with a bounded probe, as sesscount.c.  A full
 * neighbourhood (a flood of distinct addresses) does not limit: the
 * event passes and the metrics count it (fail open: refusing mail
 * because of a table we sized is worse than letting a flood through the
 * other limits: max-sessions, max-sessions-per-ip).  A worker taken over
 * could change who is limited, nothing more: control copies only
 * integers and NUL-terminated keys of bounded length out of here; a
 * worker that dies takes the daemon down anyway.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "ratelimit.h"
#include "shm.h"
#include "smtpcount.h"
#include "util.h"

#define RATELIMIT_SLOTS		8192
#define RATELIMIT_PROBE		64	/* slots looked at per key, at most */
#define RATELIMIT_KEY_MAX	64	/* with the NUL */
#define RATELIMIT_KEY_CUT	46	/* a long key: its start, "~", a hash */

static const char *const names[RATE_MAX] = {
	[RATE_CLIENT_CONN] = "client-connection-rate",
	[RATE_CLIENT_MSG] = "client-message-rate",
	[RATE_CLIENT_RCPT] = "client-rcpt-rate",
	[RATE_CLIENT_AUTHFAIL] = "client-auth-failures",
	[RATE_USER_MSG] = "user-message-rate",
	[RATE_USER_RCPT] = "user-rcpt-rate",
};

struct ratelimit_limit {
	int64_t		tat;		/* ms, monotonic; <= now: nothing */
	struct conf_rate rate;		/* as at the last event, for show */
};

struct ratelimit_slot {
	char			key[RATELIMIT_KEY_MAX]; /* "": never used */
	int			user;	/* a SASL name, not an address */
	struct ratelimit_limit	limit[RATE_MAX];
};

struct ratelimit_table {
	pthread_mutex_t		lock;
	struct ratelimit_slot	slot[RATELIMIT_SLOTS];
};

static struct ratelimit_table	*table;

void
ratelimit_init(void)
{
	table = shm_alloc(sizeof(*table));
	shm_mutex_init(&table->lock, "rate limit table");
}

const char *
ratelimit_name(enum conf_rate_kind kind)
{
	return kind < RATE_MAX ? names[kind] : "other";
}

int
ratelimit_is_user(enum conf_rate_kind kind)
{
	return kind == RATE_USER_MSG || kind == RATE_USER_RCPT;
}

static uint64_t
hash(const char *s)
{
	uint64_t	h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* the key as kept: itself, or its start, "~" and a hash of it all */
static void
make_key(char *out, const char *key, uint64_t h)
{
	if (strlen(key) < RATELIMIT_KEY_MAX) {
		memcpy(out, key, strlen(key) + 1);
		return;
	}
	snprintf(out, RATELIMIT_KEY_MAX, "%.*s~%016llx", RATELIMIT_KEY_CUT,
	    key, (unsigned long long)h);
}

int
ratelimit_gcra(int64_t *tat, int64_t now, const struct conf_rate *r,
    int always)
{
	int64_t	period = (int64_t)r->period * 1000, t, interval;

	interval = period / r->n;
	if (interval < 1)
		interval = 1;
	t = *tat > now ? *tat : now;
	if (always) {
		/* bounded: a refused client is not kept out for ever */
		*tat = t + interval;
		if (*tat > now + 2 * period)
			*tat = now + 2 * period;
		return *tat - now > period ? RATELIMIT_OVER : RATELIMIT_OK;
	}
	if (t - now > period - interval)
		return RATELIMIT_OVER;
	*tat = t + interval;
	return RATELIMIT_OK;
}

static int
slot_idle(const struct ratelimit_slot *sl, int64_t now)
{
	int	k;

	for (k = 0; k < RATE_MAX; k++)
		if (sl->limit[k].tat > now)
			return 0;
	return 1;
}

/* the key's slot, or a new one for it (NULL: no room); locked */
static struct ratelimit_slot *
slot_get(const char *key, int user, int create, int64_t now)
{
	struct ratelimit_slot	*sl, *freeslot = NULL;
	char			 k[RATELIMIT_KEY_MAX];
	uint64_t		 h = hash(key);
	unsigned int		 i;

	make_key(k, key, h);
	for (i = 0; i < RATELIMIT_PROBE; i++) {
		sl = &table->slot[(h + i) % RATELIMIT_SLOTS];
		if (sl->key[0] == '\0') {
			if (freeslot == NULL)
				freeslot = sl;
			break;		/* never used: key is not further on */
		}
		if (sl->user == user && strcmp(sl->key, k) == 0)
			return sl;
		if (freeslot == NULL && slot_idle(sl, now))
			freeslot = sl;
	}
	if (!create || freeslot == NULL)
		return NULL;
	memset(freeslot, 0, sizeof(*freeslot));
	memcpy(freeslot->key, k, sizeof(k));
	freeslot->user = user;
	return freeslot;
}

/* mode: 0 take, 1 count always, 2 only look */
static int
ratelimit_event(enum conf_rate_kind kind, const char *key,
    const struct conf_rate *r, int mode)
{
	struct ratelimit_slot	*sl;
	struct ratelimit_limit	*l;
	int64_t			 now;
	int			 rc = RATELIMIT_OK;

	if (table == NULL || kind >= RATE_MAX || r->n <= 0 || r->period <= 0)
		return RATELIMIT_OK;
	now = monotonic_ms();
	pthread_mutex_lock(&table->lock);
	sl = slot_get(key, ratelimit_is_user(kind), mode != 2, now);
	if (sl == NULL) {
		pthread_mutex_unlock(&table->lock);
		if (mode != 2)
			smtpcount_rate_table_full();
		return RATELIMIT_OK;
	}
	l = &sl->limit[kind];
	if (mode == 2)
		rc = l->tat - now > (int64_t)r->period * 1000 ?
		    RATELIMIT_OVER : RATELIMIT_OK;
	else {
		rc = ratelimit_gcra(&l->tat, now, r, mode == 1);
		l->rate = *r;
	}
	pthread_mutex_unlock(&table->lock);
	if (rc == RATELIMIT_OVER)
		smtpcount_rate_limited(kind);
	return rc;
}

int
ratelimit_take(enum conf_rate_kind kind, const char *key,
    const struct conf_rate *r)
{
	return ratelimit_event(kind, key, r, 0);
}

int
ratelimit_count(enum conf_rate_kind kind, const char *key,
    const struct conf_rate *r)
{
	return ratelimit_event(kind, key, r, 1);
}

int
ratelimit_over(enum conf_rate_kind kind, const char *key,
    const struct conf_rate *r)
{
	return ratelimit_event(kind, key, r, 2);
}

static long long
ceil_s(int64_t ms)
{
	return ms <= 0 ? 0 : (long long)((ms + 999) / 1000);
}

size_t
ratelimit_show(char *buf, size_t len, size_t max)
{
	const struct ratelimit_slot	*sl;
	const struct ratelimit_limit	*l;
	int64_t				 now, period, interval, ahead, over;
	size_t				 i, n = 0, used = 0;
	long long			 count;
	char				 line[512], key[RATELIMIT_KEY_MAX];
	char				 clean[RATELIMIT_KEY_MAX * 4];
	int				 k, w;

	if (len > 0)
		buf[0] = '\0';
	if (table == NULL)
		return 0;
	now = monotonic_ms();
	pthread_mutex_lock(&table->lock);
	for (i = 0; i < RATELIMIT_SLOTS && n < max; i++) {
		sl = &table->slot[i];
		if (sl->key[0] == '\0')
			continue;
		for (k = 0; k < RATE_MAX && n < max; k++) {
			l = &sl->limit[k];
			if (l->tat <= now || l->rate.n <= 0 ||
			    l->rate.period <= 0)
				continue;
			period = (int64_t)l->rate.period * 1000;
			interval = period / l->rate.n;
			if (interval < 1)
				interval = 1;
			ahead = l->tat - now;
			count = (long long)((ahead + interval - 1) / interval);
			if (count * 2 < l->rate.n)
				continue;	/* not near its limit */
			/* past this, the next event is refused */
			over = ahead - (k == RATE_CLIENT_AUTHFAIL ? period :
			    period - interval);
			/*
			 * The key is ours or the client's: printable ASCII
			 * (addresses) or a SASL name, shown escaped.  A
			 * worker writes this memory: its end is not trusted.
			 */
			memcpy(key, sl->key, sizeof(key));
			key[sizeof(key) - 1] = '\0';
			w = snprintf(line, sizeof(line), "%s %s limit=%d/%ds "
			    "count=%lld clears=%llds%s", names[k],
			    log_sanitize(key, clean, sizeof(clean)),
			    l->rate.n,
			    l->rate.period, count, ceil_s(ahead),
			    over > 0 ? " limited" : "");
			if (w < 0 || (size_t)w >= sizeof(line))
				continue;
			if (over > 0) {
				int	w2;

				w2 = snprintf(line + w, sizeof(line) - w,
				    " retry=%llds", ceil_s(over));
				if (w2 < 0 || (size_t)w2 >= sizeof(line) - w)
					continue;
				w += w2;
			}
			if (used + (size_t)w + 2 > len)
				goto out;
			memcpy(buf + used, line, (size_t)w);
			buf[used + (size_t)w] = '\n';
			used += (size_t)w + 1;
			buf[used] = '\0';
			n++;
		}
	}
out:
	pthread_mutex_unlock(&table->lock);
	return n;
}
