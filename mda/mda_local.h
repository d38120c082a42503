/*
 * mda_local.h -- what the local writers share, and nobody else: the
 * failure texts, the envelope check, the output buffer and the verbatim
 * copy, all in mda_local.c; Maildir (mda_maildir.c) and mbox and plain
 * files (mda_mbox.c) use them.  mda.h is the writers' interface.
 */
#ifndef POSTHASTE_MDA_LOCAL_H
#define POSTHASTE_MDA_LOCAL_H

#include <sys/types.h>

#include <stddef.h>

#include "mda.h"

#define MDA_BUFSIZE	(64 * 1024)

struct wbuf {
	int	 fd;
	char	*buf;
	size_t	 len;
	size_t	 size;
	off_t	 total;		/* bytes queued so far, flushed or not */
	int	 last;		/* last byte queued, -1 before the first */
};

/* what went wrong while copying: the spool side or the mailbox side */
enum copy_error {
	COPY_OK,
	COPY_READ,
	COPY_WRITE,
};

int	fail(int, char *, size_t, const char *, ...)
	    __attribute__((format(printf, 4, 5)));
void	err_clear(char *, size_t);
int	fail_sys(char *, size_t, const char *, const char *, int);
int	fail_copy(char *, size_t, const char *, enum copy_error, int);
int	envelope_check(const struct mda_message *, const char *, char *,
	    size_t);
int	wbuf_init(struct wbuf *, int);
void	wbuf_free(struct wbuf *);
int	wbuf_flush(struct wbuf *);
int	wbuf_put(struct wbuf *, const char *, size_t);
int	wbuf_puts(struct wbuf *, const char *);
int	wbuf_putc_n(struct wbuf *, char, size_t);
int	put_trace_headers(struct wbuf *, const struct mda_message *);
enum copy_error copy_verbatim(struct wbuf *, const struct mda_message *,
	    int *);

#endif
