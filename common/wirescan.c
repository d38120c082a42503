/*
 * wirescan.c -- a spooled message's size and 8-bit content on the wire.
 *
 * A line (or the piece of one in this call) at a time: memchr() finds
 * the line ends, and the 8-bit test ORs the bytes together a machine
 * word at a time.  The header ends at the first empty line.
 */
#include "wirescan.h"

#include <string.h>

/* eight bytes at a time: most mail is ASCII, and every byte is looked at */
static int
has_8bit(const char *p, size_t len)
{
	uint64_t	word, acc = 0;
	unsigned char	tail = 0;
	size_t		i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&word, p + i, sizeof(word));
		acc |= word;
	}
	for (; i < len; i++)
		tail |= (unsigned char)p[i];
	return ((acc & 0x8080808080808080ULL) | (tail & 0x80)) != 0;
}

void
wirescan_init(struct wirescan *w)
{
	memset(w, 0, sizeof(*w));
	w->bol = 1;
	w->inhdr = 1;
	w->prevlf = 1;		/* an empty first line: no header at all */
	w->last = '\n';
}

void
wirescan_add(struct wirescan *w, const char *buf, size_t n)
{
	const char	*p, *end, *nl;
	size_t		 len;

	if (n == 0)
		return;
	for (p = buf, end = buf + n; p < end; p = nl ? nl + 1 : end) {
		if (w->bol && *p == '.')
			w->size++;
		nl = memchr(p, '\n', end - p);
		len = (nl ? nl : end) - p;
		if (len > 0) {
			if ((!w->body8bit || (w->inhdr && !w->header8bit)) &&
			    has_8bit(p, len)) {
				w->body8bit = 1;
				if (w->inhdr)
					w->header8bit = 1;
			}
			w->prevlf = 0;
			w->bol = 0;
		}
		w->size += len;
		if (nl != NULL) {
			w->size += 2;
			if (w->prevlf)
				w->inhdr = 0;
			w->prevlf = 1;
			w->bol = 1;
		}
	}
	w->last = (unsigned char)buf[n - 1];
}

uint64_t
wirescan_size(const struct wirescan *w)
{
	return w->size + (w->last != '\n' ? 2 : 0);
}
