/*
 * mta_reply.h -- SMTP and LMTP replies as a client reads them: the
 * parser the mta process shares with the LMTP client of the delivery
 * processes (mda/mda_lmtp.c).
 */
#ifndef POSTHASTE_MTA_REPLY_H
#define POSTHASTE_MTA_REPLY_H

#include <stddef.h>
#include <stdint.h>

/*
 * RFC 5321 4.5.3.1.5 allows 512 octets per reply line; real servers
 * send a little more, so accept a generous line but no more.  A reply
 * longer than MTA_REPLY_MAX_LINES lines or MTA_REPLY_MAX bytes is a
 * broken or hostile server.
 */
#define MTA_LINE_MAX		2048
#define MTA_REPLY_MAX		8192
#define MTA_REPLY_MAX_LINES	64

/*
 * One SMTP/LMTP reply, collected line by line.  text holds every line's
 * text (after "NNN-" / "NNN "), one per '\n', with anything that is not
 * printable ASCII replaced by '?': nothing a remote server sends reaches
 * a log line, an envelope or a bounce as it was sent.
 */
struct mta_reply {
	int	 code;			/* 200..599, or 0 before the first line */
	int	 done;			/* the last line was seen */
	size_t	 nlines;
	size_t	 len;
	char	 text[MTA_REPLY_MAX];
};

#define MTA_REPLY_MORE	0	/* a continuation line: wait for more */
#define MTA_REPLY_DONE	1	/* that was the last line */
#define MTA_REPLY_BAD	-1	/* malformed: a temporary failure */

void	mta_reply_init(struct mta_reply *);
/* feed one line without its CRLF / LF */
int	mta_reply_line(struct mta_reply *, const char *line, size_t len);
/*
 * The enhanced status code (RFC 3463) at the start of the first line,
 * if there is one whose class matches the reply code; else the default
 * "C.0.0" for the reply's class.  out needs 16 bytes.
 */
void	mta_reply_status(const struct mta_reply *, char *out, size_t len);
/* "NNN text / text ..." in one line, truncated to fit */
void	mta_reply_oneline(const struct mta_reply *, char *out, size_t len);

/* EHLO keywords we act on */
#define MTA_EXT_PIPELINING	0x0001
#define MTA_EXT_SIZE		0x0002
#define MTA_EXT_8BITMIME	0x0004
#define MTA_EXT_SMTPUTF8	0x0008
#define MTA_EXT_DSN		0x0010
#define MTA_EXT_STARTTLS	0x0020
#define MTA_EXT_AUTH_PLAIN	0x0040
#define MTA_EXT_AUTH_LOGIN	0x0080
#define MTA_EXT_ENHANCED	0x0100
#define MTA_EXT_REQUIRETLS	0x0200	/* RFC 8689 */

/* the extensions of an EHLO (or LHLO) reply; *size = SIZE limit or 0 */
uint32_t mta_reply_extensions(const struct mta_reply *, uint64_t *size);

/* true when s is a valid RFC 3461 xtext (ENVID, ORCPT values) */
int	mta_xtext_valid(const char *s);

#endif
