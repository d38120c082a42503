/*
 * ratelimit.h -- the smtp workers' rate limits (smtpd.conf(5) "smtp
 * client-message-rate 10/m" and the like), kept per client address and
 * per authenticated user across every worker (and every generation of
 * them) in memory the parent shares before it forks; control reads the
 * same table for "smtpctl show limits" (common/ratelimit.c).
 */
#ifndef POSTHASTE_RATELIMIT_H
#define POSTHASTE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define RATELIMIT_OK		0
#define RATELIMIT_OVER		1	/* refuse */

/* in the parent, before control and any worker are forked */
void	ratelimit_init(void);

/* "client-message-rate" etc.: the setting's name (a fixed list) */
const char	*ratelimit_name(enum conf_rate_kind);
/* is this one of the per-user limits (key: the SASL name)? */
int	ratelimit_is_user(enum conf_rate_kind);

/*
 * One event of kind for key (a client address or a user name) under r:
 * RATELIMIT_OK and counted, or RATELIMIT_OVER and not counted (more
 * than r->n in a window of r->period).  No limit (r->n == 0), or no
 * room in the table (counted in the metrics): RATELIMIT_OK.
 */
int	ratelimit_take(enum conf_rate_kind, const char *key,
	    const struct conf_rate *r);
/*
 * Count one event whatever the limit (failed AUTH: an attacker's
 * failures keep counting) and say RATELIMIT_OVER once more than r->n
 * fell in the window.
 */
int	ratelimit_count(enum conf_rate_kind, const char *key,
	    const struct conf_rate *r);
/* more than r->n in the window now?  Nothing counted. */
int	ratelimit_over(enum conf_rate_kind, const char *key,
	    const struct conf_rate *r);

/*
 * The keys at or past half of their limit, a line each ("KIND KEY
 * limit=N/Ps count=C clears=Ss [limited retry=Rs]"), into buf,
 * each ending in a newline (at most max of them, and as many as fit);
 * returns their number.  Taken under the lock, so a consistent view.
 */
size_t	ratelimit_show(char *buf, size_t len, size_t max);

/*
 * The arithmetic (GCRA, on one "theoretical arrival time" in ms), apart
 * for the unit tests: now and *tat in ms.
 */
int	ratelimit_gcra(int64_t *tat, int64_t now, const struct conf_rate *r,
	    int always);

#endif
