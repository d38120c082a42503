/*
 * mproc.h -- an imsg channel to another process, driven by libevent.
 */
#ifndef POSTHASTE_MPROC_H
#define POSTHASTE_MPROC_H

#include <sys/queue.h>

#include <event2/event.h>

#include "imsg.h"

extern struct event_base	*ev_base;

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
/* payload length must be exactly `want', else a sibling is broken: fatal */
void	mproc_check_len(struct mproc *, const struct imsg *, size_t want);

#endif
