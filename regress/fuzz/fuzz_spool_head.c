/*
 * fuzz_spool_head.c -- libFuzzer harness for spool_head_valid()
 * (common/spool_msg.c), the queue's check of the header block an smtp
 * worker claims it added after a message.
 *
 * Whatever it accepts every reader must be able to put at the top of a
 * message as it is: at most SPOOL_HEAD_MAX bytes of lines ending in LF,
 * no CR, NUL or 8-bit byte, no empty line, no line over 998 bytes, none
 * beginning with '.' (the mta would have to dot-stuff it, and SIZE= is
 * counted without), the first a "name:" line; and the line count it
 * reports must be the number of LFs.  Then the same bytes are read back
 * through spool_msg_pread() from a file laid out as the spool does,
 * [message][head], at a few offsets and sizes.
 */
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_msg.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char	body[] = "Subject: x\n\nbody\n";

static void
check_read(const uint8_t *head, size_t len)
{
	static char	 name[] = "/tmp/fuzz_spool_head.XXXXXX";
	static int	 fd = -1;
	static char	 want[SPOOL_HEAD_MAX + sizeof(body)];
	char		 buf[SPOOL_HEAD_MAX + sizeof(body)];
	struct spool_msg m;
	size_t		 total = len + sizeof(body) - 1, off, n;
	ssize_t		 r;

	if (fd == -1) {
		if ((fd = mkstemp(name)) == -1)
			abort();
		unlink(name);
	}
	if (ftruncate(fd, 0) == -1 ||
	    pwrite(fd, body, sizeof(body) - 1, 0) != sizeof(body) - 1 ||
	    pwrite(fd, head, len, sizeof(body) - 1) != (ssize_t)len ||
	    pwrite(fd, "tail", 4, (off_t)total) != 4)
		abort();
	memcpy(want, head, len);
	memcpy(want + len, body, sizeof(body) - 1);
	m.fd = fd;
	m.body = sizeof(body) - 1;
	m.head = (int64_t)len;
	for (off = 0; off <= total; off += 1 + total / 7) {
		n = (off * 31 + len) % (total + 2) + 1;
		r = spool_msg_pread(&m, buf, n, (int64_t)off);
		if (r != (ssize_t)(total - off < n ? total - off : n) ||
		    memcmp(buf, want + off, (size_t)r) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t	lines, lf = 0, i;

	if (spool_head_valid((const char *)data, size, &lines) == -1)
		return 0;
	if (size == 0 || size > SPOOL_HEAD_MAX || data[size - 1] != '\n' ||
	    data[0] == ' ' || data[0] == '\t' || data[0] == ':')
		abort();
	for (i = 0; i < size; i++) {
		if (data[i] == '\n') {
			lf++;
			if (i + 1 < size && (data[i + 1] == '\n' ||
			    data[i + 1] == '.'))
				abort();
		} else if (data[i] == '\r' || data[i] == '\0' ||
		    data[i] >= 0x80)
			abort();
	}
	if (data[0] == '.' || lf != lines)
		abort();
	check_read(data, size);
	return 0;
}
