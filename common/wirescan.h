/*
 * wirescan.h -- what a spooled message (LF line ends, no dot-stuffing)
 * will be on the wire: its size with CRLF and doubled leading dots
 * (RFC 1870 wants SIZE as transmitted), and whether its header or body
 * carries 8-bit bytes.  Fed in pieces of any size.
 */
#ifndef POSTHASTE_WIRESCAN_H
#define POSTHASTE_WIRESCAN_H

#include <stddef.h>
#include <stdint.h>

struct wirescan {
	uint64_t	size;
	int		header8bit;
	int		body8bit;
	/* state between pieces */
	int		bol, inhdr, prevlf, last;
};

void		wirescan_init(struct wirescan *);
void		wirescan_add(struct wirescan *, const char *, size_t);
/* the size on the wire, a final line end included */
uint64_t	wirescan_size(const struct wirescan *);

#endif
