/*
 * spool_msg.h -- a committed message as every reader of the spool sees
 * it: the headers added after its body was seen, then the message.
 *
 * At the end of data the smtp worker may have header fields that depend
 * on the whole message (Authentication-Results, DKIM-Signature, RFC 8601
 * and 6376).  They belong at the top, but the message is already in the
 * spool file from offset 0, and moving it would cost a rewrite of every
 * byte.  So the worker writes them after the message (one pwrite) and
 * the queue records their length in the footer (envelope.h, footer
 * version 2).  A file is then
 *
 *	[message: body bytes][added headers: head bytes][envelope][footer]
 *
 * and the message its readers deliver is [added headers][message].
 * spool_msg_pread() is that view: a logical offset into the message as
 * delivered, mapped onto the file.  The queue fills a struct spool_msg
 * from the footer (body_size and head_size of the envelope it hands
 * over); local delivery (mda/), the mta, bounces and smtpctl read
 * through it and never see the layout.  With no added headers it is one
 * pread(2) per call, as before.
 */
#ifndef POSTHASTE_SPOOL_MSG_H
#define POSTHASTE_SPOOL_MSG_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

/*
 * At most this many bytes of added headers per message: a DKIM signature
 * with a 4096-bit RSA key and a long h= list, and an Authentication-
 * Results with every method, fit several times over.
 */
#define SPOOL_HEAD_MAX		16384

struct spool_msg {
	int	 fd;	/* the spool file, read with pread(2) only */
	int64_t	 body;	/* the message as received, from offset 0 */
	int64_t	 head;	/* the added headers, at offset body; or 0 */
};

/* the size of the message as delivered: added headers and message */
#define spool_msg_size(m)	((m)->head + (m)->body)

struct envelope;
/*
 * The view of the message file fd that the queue handed over with evp
 * (its body_size and head_size): what a delivery agent reads through.
 */
void	spool_msg_set(struct spool_msg *, int fd, const struct envelope *);

/*
 * pread(2) of the message as delivered, at logical offset off: up to n
 * bytes, 0 at its end (the file goes on after it), -1 with errno on
 * failure (EINVAL for a size that never came: body of 0 or less, or a
 * negative offset or head).  A read that starts in the added headers and
 * has room left goes on into the message (a second pread), so callers
 * see the same full reads as from a plain file.  EINTR is retried.
 */
ssize_t	spool_msg_pread(const struct spool_msg *, void *buf, size_t n,
	    int64_t off);

/*
 * Is buf, of len bytes, a block of added header fields as the spool keeps
 * them: 1 to SPOOL_HEAD_MAX bytes of complete lines, each ending in LF
 * (the spool's line end; no CR anywhere), each at most 998 bytes before
 * it (RFC 5322 2.1.1), of printable US-ASCII and HTAB only; the first
 * line of each field is "name:" with a name of letters, digits and '-'
 * (so no line can begin with '.': nothing to dot-stuff, and the size on
 * the wire is len plus one CR per line), a continuation line begins with
 * SP or HTAB and has something else on it, and no line is empty (an
 * empty line would end the header there).  0 if so, -1 if not; *lines
 * (if not NULL) gets the number of lines.  The queue checks what a
 * worker claims with it (the worker is not trusted to), and the worker
 * checks what it is asked to add.
 */
int	spool_head_valid(const char *buf, size_t len, size_t *lines);

#endif
