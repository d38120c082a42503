/*
 * mime7bit.h -- 8-bit MIME mail made 7-bit for a peer without 8BITMIME
 * (RFC 6152 section 3, RFC 2045, RFC 2046), the way Postfix does it.
 *
 * Two passes over the same spooled message (LF line ends, no dot-
 * stuffing), each fed in pieces of any size:
 *
 *   1. mime7bit_new(), mime7bit_feed()..., mime7bit_finish(): reads the
 *	MIME structure and decides, before anything is sent, whether the
 *	message can be converted at all (mime7bit_error() says why not)
 *	and which parts must be re-encoded.
 *   2. mime7bit_convert(), mime7bit_feed()..., mime7bit_finish(): the
 *	same bytes again, written converted through the output function.
 *
 * Memory is bounded: one line buffer, a stack of MIME7BIT_MAX_DEPTH
 * nesting levels, and one byte per MIME entity (at most
 * MIME7BIT_MAX_ENTITIES).  What is converted and what is refused is
 * told at the top of mime7bit.c.
 */
#ifndef POSTHASTE_MIME7BIT_H
#define POSTHASTE_MIME7BIT_H

#include <stddef.h>

#define MIME7BIT_MAX_DEPTH	32	/* nested multiparts and messages */
#define MIME7BIT_MAX_ENTITIES	20000	/* header+body units in a message */
#define MIME7BIT_LINE_MAX	4096	/* longer lines go on in pieces */

struct mime7bit;

/* the converted output, with LF line ends; -1 stops the conversion */
typedef int	(*mime7bit_out)(void *arg, const char *data, size_t len);

struct mime7bit	*mime7bit_new(void);
void		 mime7bit_free(struct mime7bit *);
/* -1 once the message is known not to be convertible, or out wrote -1 */
int		 mime7bit_feed(struct mime7bit *, const char *data, size_t len);
int		 mime7bit_finish(struct mime7bit *);
/* after a successful first pass: rewind for the second; -1 if it failed */
int		 mime7bit_convert(struct mime7bit *, mime7bit_out, void *arg);
/* after the first pass: how many parts will be re-encoded (0: none) */
size_t		 mime7bit_nconverted(const struct mime7bit *);
/* why a pass failed (a sentence without status code), or NULL */
const char	*mime7bit_error(const struct mime7bit *);

#endif
