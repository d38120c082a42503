/*
 * mproc.h -- an imsg channel to another process, driven by libevent.
 */
#ifndef POSTHASTE_MPROC_H
#define POSTHASTE_MPROC_H

#include <sys/queue.h>

#include <event2/event.h>

#include "imsg.h"

extern struct event_base	*ev_base;

/*
 * A peer that is less trusted than we are (an smtpctl or sendmail
 * client, a delivery process running as a user) may send requests and
 * never read the answers.  On a channel marked untrusted (with a closed()
 * handler), more than MPROC_UNTRUSTED_WQ_MAX bytes waiting to be written,
 * of which nothing could be written for drain_timeout seconds (by default
 * MPROC_DRAIN_TIMEOUT), close it; with
 * throttle_reads also set, nothing more is read from it meanwhile, so a
 * client cannot make us answer more than that.  Reads are throttled only
 * where the peer's progress does not depend on our reading: a delivery
 * process blocks on writing its results, and stopping to read those
 * while its requests wait would deadlock both ends (it is dropped, and
 * its envelopes retried, only when it stops reading altogether).
 * Sibling channels are never limited: a sibling that stops reading is a
 * bug, and the daemon would only deadlock.
 */
#define MPROC_UNTRUSTED_WQ_MAX	(256 * 1024)
#define MPROC_DRAIN_TIMEOUT	30

struct mproc;
typedef void	(*mproc_handler)(struct mproc *, struct imsg *);
typedef void	(*mproc_closed)(struct mproc *);

struct mproc {
	struct imsgbuf	 ib;
	struct event	*ev;
	short		 events;
	const char	*name;		/* the peer, for logs */
	mproc_handler	 handler;
	mproc_closed	 closed;	/* NULL: losing the peer is fatal */
	int		 untrusted;	/* a client: malformed input closes */
	int		 stopped;	/* mproc_stop_reading() was called */
	int		 throttle_reads; /* untrusted: no reads while backlogged */
	int		 held;		/* mproc_hold_reading(): owner says wait */
	int		 paused;	/* not reading: held, or output backlog */
	struct event	*ev_drain;	/* untrusted backlog: closed() when due */
	int		 drain_timeout;	/* seconds; 0: never closed for that */
	uint64_t	 drain_mark;	/* ib.wtotal when ev_drain was armed */
	void		*arg;
	int		 dirty;		/* composed, not yet written */
	TAILQ_ENTRY(mproc) dirty_entry;
};

void	mproc_init(struct mproc *, int fd, const char *name,
	    mproc_handler, void *arg);
void	mproc_compose(struct mproc *, uint32_t type, uint32_t peerid, int fd,
	    const void *data, size_t len);
void	mproc_clear(struct mproc *);
/*
 * Between begin and end, composed messages wait and each channel is
 * written once at the end: several messages to one peer share a
 * sendmsg().  Every dispatch of incoming messages is such a section.
 */
void	mproc_defer_begin(void);
void	mproc_defer_end(void);
/*
 * From now on in this process, everything composed during one turn of
 * the event loop is written at the end of that turn: one sendmsg() per
 * peer for all the sessions whose input arrived together.
 */
void	mproc_defer_turns(void);
/* read nothing more from this channel (its descriptor changes hands) */
void	mproc_stop_reading(struct mproc *);
/*
 * Read nothing more from this channel until released (hold 0); what is
 * already buffered waits too.  For the owner's own flow control: control
 * holds a client that has too many requests in flight.
 */
void	mproc_hold_reading(struct mproc *, int hold);
/* payload length must be exactly `want', else a sibling is broken: fatal */
void	mproc_check_len(struct mproc *, const struct imsg *, size_t want);

#endif
