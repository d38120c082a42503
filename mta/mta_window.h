/*
 * mta_window.h -- polite delivery: how many connections one destination
 * gets (slow start and feedback), how long a host that refused us is
 * left alone, and which replies say "too busy".  Pure logic without a
 * clock or I/O (mta_window.c), so that regress/unit/test_mta_window.c
 * can drive it; mta.c and mta_session.c apply it.
 */
#ifndef POSTHASTE_MTA_WINDOW_H
#define POSTHASTE_MTA_WINDOW_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MTA_BACKOFF_MAX_SHIFT	4	/* a host's back-off grows to 16x */
#define MTA_WINDOW_MIN_CARRY	1	/* messages a new session must get */

/*
 * A destination's concurrency window, as Postfix's queue manager keeps
 * one per destination: it starts at "mta initial-conn-per-host", grows
 * by one for each delivery the destination accepts (positive feedback)
 * up to "mta max-conn-per-host", and shrinks by one for each session
 * that fails to connect or is refused at set-up (negative feedback),
 * never below 1.
 */
struct mta_window {
	int		 limit;		/* sessions allowed now */
	int		 max;
	unsigned	 fails;		/* failed sessions in a row */
	/* moving averages, microseconds; 0: nothing measured yet */
	uint32_t	 setup_us;	/* connect to ready for mail */
	uint32_t	 txn_us;	/* a transaction, MAIL to its end */
};

void	mta_window_init(struct mta_window *, int initial, int max);
/* the destination took a message: one more session allowed */
void	mta_window_success(struct mta_window *);
/* a session failed or was refused: one fewer (never below 1) */
void	mta_window_failure(struct mta_window *);
/* what setting up a session, and a transaction, took */
void	mta_window_note_setup(struct mta_window *, uint32_t us);
void	mta_window_note_txn(struct mta_window *, uint32_t us);
/*
 * 1 when one more session is allowed next to nsessions and worth it for
 * nwaiting messages: the window has room, and the sessions there are
 * would take longer to carry the waiting messages than a new session
 * takes to be set up and to carry MTA_WINDOW_MIN_CARRY of them (until
 * both times are measured, the window alone).  So a burst that the open
 * sessions clear quickly opens no more of them.
 */
int	mta_window_may_open(const struct mta_window *, int nsessions,
	    size_t nwaiting);

/*
 * How long a host is left alone after its fails-th failure in a row
 * (fails >= 1): base, doubled for each further failure, at most
 * base << MTA_BACKOFF_MAX_SHIFT.
 */
time_t	mta_backoff_secs(time_t base, unsigned fails);

/*
 * 1 when a reply tells us to go away for now rather than refusing this
 * message: 421 (RFC 5321 3.8: the server closes the channel), or a 4xx
 * whose text says the server has too many connections (Postfix's
 * "4.7.0 too many connections", Exim's "too many concurrent SMTP
 * connections", "connection rate limit exceeded").  text: the reply's
 * text after the code, NUL-terminated, any bytes.
 */
int	mta_reply_throttles(int code, const char *text);

#endif
