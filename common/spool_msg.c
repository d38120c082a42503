/*
 * spool_msg.c -- the message as delivered, [added headers][message],
 * read from a spool file that holds them the other way round; and the
 * check of an added header block (spool_msg.h says why the layout).
 */
#include <sys/types.h>

#include <errno.h>
#include <unistd.h>

#include "envelope.h"
#include "spool_msg.h"

/* one pread of the file, again after EINTR */
static ssize_t
pread_retry(int fd, void *buf, size_t n, int64_t off)
{
	ssize_t	r;

	do {
		r = pread(fd, buf, n, (off_t)off);
	} while (r == -1 && errno == EINTR);
	return r;
}

void
spool_msg_set(struct spool_msg *m, int fd, const struct envelope *evp)
{
	m->fd = fd;
	m->body = evp->body_size;
	m->head = evp->head_size;
}

ssize_t
spool_msg_pread(const struct spool_msg *m, void *buf, size_t n, int64_t off)
{
	char	*p = buf;
	ssize_t	 r, got;

	if (m->body <= 0 || m->head < 0 || off < 0) {
		errno = EINVAL;
		return -1;
	}
	if (off >= m->head) {
		/* in the message: where most of the bytes are */
		off -= m->head;
		if (off >= m->body)
			return 0;
		if ((uint64_t)n > (uint64_t)(m->body - off))
			n = (size_t)(m->body - off);
		return pread_retry(m->fd, buf, n, off);
	}
	/* in the added headers, which the file holds after the message */
	got = (uint64_t)n > (uint64_t)(m->head - off) ?
	    (ssize_t)(m->head - off) : (ssize_t)n;
	if ((r = pread_retry(m->fd, p, (size_t)got, m->body + off)) <= 0)
		return r;
	if (r < got || (size_t)r == n)
		return r;
	/* room left: go on with the message, as a plain file would */
	n -= (size_t)r;
	if ((uint64_t)n > (uint64_t)m->body)
		n = (size_t)m->body;
	if ((got = pread_retry(m->fd, p + r, n, 0)) == -1)
		return r;	/* the next call reports it */
	return r + got;
}

static int
is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-';
}

int
spool_head_valid(const char *buf, size_t len, size_t *lines)
{
	const unsigned char	*p = (const unsigned char *)buf;
	const unsigned char	*end = p + len, *line, *q;
	size_t			 n = 0;

	if (len == 0 || len > SPOOL_HEAD_MAX || p[len - 1] != '\n')
		return -1;
	for (line = p; line < end; line = q + 1) {
		int	text = 0;

		/* a line: printable ASCII and HTAB, up to its LF */
		for (q = line; *q != '\n'; q++) {
			if (*q != '\t' && (*q < 0x20 || *q > 0x7e))
				return -1;
			if (*q != ' ' && *q != '\t')
				text = 1;
		}
		if (q == line || q - line > 998 || !text)
			return -1;
		if (*line == ' ' || *line == '\t') {
			/* a continuation, of a field begun above */
			if (line == p)
				return -1;
		} else {
			const unsigned char *c = line;

			while (c < q && is_name_char(*c))
				c++;
			if (c == line || c == q || *c != ':')
				return -1;
		}
		n++;
	}
	if (lines != NULL)
		*lines = n;
	return 0;
}
