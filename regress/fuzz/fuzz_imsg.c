/*
 * fuzz_imsg.c -- libFuzzer harness for common/imsg.c, the framing every
 * process reads its channels with (and the control socket reads from
 * local users' smtpctl and sendmail).
 *
 * The input goes down a socket pair in pieces whose sizes the input's
 * first bytes choose; the reader reads and takes messages as they come.
 * Whatever imsg_get() returns must lie within what was read, a message
 * that says it carries a descriptor without one must be refused, and
 * nothing may be taken twice.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

#include "imsg.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct imsgbuf	 r;
	struct imsg	 m;
	size_t		 off, piece, taken = 0;
	ssize_t		 n;
	int		 sv[2], rc, broken = 0;

	if (len < 1 || len > 1 << 20)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		return 0;
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) == -1)
		abort();
	imsgbuf_init(&r, sv[1]);
	piece = (size_t)data[0] * 64 + 1;
	for (off = 1; off < len && !broken; off += piece) {
		size_t	k = len - off < piece ? len - off : piece;

		if (write(sv[0], data + off, k) != (ssize_t)k)
			break;	/* a full socket: enough of this input */
		while ((n = imsg_read(&r)) > 0)
			;
		CHECK(n == -1);
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			break;	/* too big a message: refused, fine */
		while ((rc = imsg_get(&r, &m)) == 1) {
			CHECK(m.len == m.hdr.len && m.len <= IMSG_MAX_PAYLOAD);
			CHECK(m.fd == -1);	/* none was ever sent */
			CHECK((const unsigned char *)m.data >= r.rbuf &&
			    (const unsigned char *)m.data + m.len <=
			    r.rbuf + r.rlen);
			taken += sizeof(m.hdr) + m.len;
		}
		if (rc == -1)
			broken = 1;	/* malformed: the caller drops the peer */
	}
	CHECK(taken <= len);
	imsgbuf_clear(&r);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
