/*
 * mta_window.c -- polite delivery's arithmetic (mta_window.h): a
 * destination's concurrency window, a host's back-off, and the replies
 * that mean "too busy".
 *
 * Why slow start: a burst of mail for one destination must not open as
 * many connections as there are messages.  Receivers count connections
 * per client and answer "421 too many connections" (or greylist the
 * client) long before they run out of capacity, and each refused
 * connection costs both sides more than a reused one.  So a route
 * starts with a few sessions, lets each of them carry several messages
 * (the session takes the next task when it is done), and grows only
 * while the destination keeps accepting mail.  A refusal shrinks the
 * window at once; a host that keeps refusing is left alone for a
 * back-off that doubles with each failure in a row.
 *
 * The window says how many sessions a destination may have, not that it
 * should have them: a new one is opened only while the messages waiting
 * would keep the open sessions busy for longer than setting up one more
 * takes and then a message's time (both measured per route), so that
 * the new one does not arrive when the others have cleared the queue.  On a fast peer a burst of 20 is
 * carried by the first few sessions, each taking the next message as
 * it finishes; on a slow one the sessions grow with the window.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mta_window.h"

void
mta_window_init(struct mta_window *w, int initial, int max)
{
	if (max < 1)
		max = 1;
	if (initial < 1)
		initial = 1;
	w->max = max;
	w->limit = initial < max ? initial : max;
	w->fails = 0;
	w->setup_us = w->txn_us = 0;
}

void
mta_window_success(struct mta_window *w)
{
	w->fails = 0;
	if (w->limit < w->max)
		w->limit++;
}

void
mta_window_failure(struct mta_window *w)
{
	if (w->fails < 1000)
		w->fails++;
	if (w->limit > 1)
		w->limit--;
}

/* a moving average that follows a change within a few samples */
static void
average(uint32_t *avg, uint32_t us)
{
	if (us == 0)
		us = 1;
	*avg = *avg == 0 ? us : (uint32_t)(((uint64_t)*avg * 3 + us) / 4);
}

void
mta_window_note_setup(struct mta_window *w, uint32_t us)
{
	average(&w->setup_us, us);
}

void
mta_window_note_txn(struct mta_window *w, uint32_t us)
{
	average(&w->txn_us, us);
}

int
mta_window_may_open(const struct mta_window *w, int nsessions,
    size_t nwaiting)
{
	if (nsessions >= w->limit || nwaiting == 0)
		return 0;
	if (nsessions <= 0 || w->setup_us == 0 || w->txn_us == 0)
		return 1;
	/*
	 * The open sessions carry the backlog in nwaiting * txn / nsessions;
	 * a new one is worth it when that outlasts its set-up by at least
	 * MTA_WINDOW_MIN_CARRY messages' time (it would carry that many): on
	 * a slow peer, about one message waiting per open session.
	 */
	return (uint64_t)nwaiting * w->txn_us > (uint64_t)nsessions *
	    ((uint64_t)w->setup_us + MTA_WINDOW_MIN_CARRY *
	    (uint64_t)w->txn_us);
}

time_t
mta_backoff_secs(time_t base, unsigned fails)
{
	unsigned	shift;

	if (base <= 0)
		return 0;
	shift = fails > 1 ? fails - 1 : 0;
	if (shift > MTA_BACKOFF_MAX_SHIFT)
		shift = MTA_BACKOFF_MAX_SHIFT;
	return base << shift;
}

/* needle (lower case) in hay, ignoring the case of hay */
static int
has_word(const char *hay, const char *needle)
{
	size_t	n = strlen(needle), i;

	for (; *hay != '\0'; hay++) {
		for (i = 0; i < n; i++)
			if (hay[i] == '\0' || tolower((unsigned char)hay[i]) !=
			    needle[i])
				break;
		if (i == n)
			return 1;
	}
	return 0;
}

int
mta_reply_throttles(int code, const char *text)
{
	static const char *const busy[] = {
		"too many connections",
		"too many concurrent",
		"too many sessions",
		"connection rate",
		"connection limit",
	};
	size_t	i;

	if (code == 421)
		return 1;
	if (code < 400 || code > 499 || text == NULL)
		return 0;
	for (i = 0; i < sizeof(busy) / sizeof(busy[0]); i++)
		if (has_word(text, busy[i]))
			return 1;
	return 0;
}
