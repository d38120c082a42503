/*
 * test_spool_msg.c -- the message as delivered (common/spool_msg.c):
 * [added headers][message] read from a file that holds
 * [message][added headers][tail], at every offset and read size, byte
 * for byte what a plain file of the delivered message would give; and
 * the check of an added header block, which the queue applies to what a
 * worker claims.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include <cmocka.h>

#include "envelope.h"
#include "spool_msg.h"

static const char body[] = "Received: from a\nSubject: hi\n\nline 1\n"
    ".dot\nline 3\n";
static const char head[] = "Authentication-Results: mx.example;\n"
    "\tspf=pass smtp.mailfrom=example.org\nDKIM-Signature: v=1; a=x\n";
static const char tail[] = "version: 1\nend: ok\n#posthaste-spool 2...\n";

/* a spool file: message, added headers, then what follows them */
static int
spool_file(const char *h, size_t hl)
{
	char	name[] = "/tmp/test_spool_msg.XXXXXX";
	int	fd;

	fd = mkstemp(name);
	assert_true(fd != -1);
	unlink(name);
	assert_int_equal(write(fd, body, sizeof(body) - 1),
	    (ssize_t)sizeof(body) - 1);
	if (hl > 0)
		assert_int_equal(write(fd, h, hl), (ssize_t)hl);
	assert_int_equal(write(fd, tail, sizeof(tail) - 1),
	    (ssize_t)sizeof(tail) - 1);
	return fd;
}

/* every offset, every read size up to past the end */
static void
check_all(const struct spool_msg *m, const char *want, size_t wlen)
{
	char	buf[512];
	size_t	off, n;
	ssize_t	r;

	assert_int_equal(spool_msg_size(m), (int64_t)wlen);
	for (off = 0; off <= wlen + 2; off++)
		for (n = 1; n <= wlen + 3; n++) {
			size_t	exp = off >= wlen ? 0 :
			    (wlen - off < n ? wlen - off : n);

			memset(buf, 0, sizeof(buf));
			r = spool_msg_pread(m, buf, n, (int64_t)off);
			assert_int_equal(r, (ssize_t)exp);
			if (exp > 0)
				assert_memory_equal(buf, want + off, exp);
		}
}

static void
test_read_with_head(void **state)
{
	struct spool_msg	m;
	char			want[sizeof(head) + sizeof(body)];

	(void)state;
	m.fd = spool_file(head, sizeof(head) - 1);
	m.body = sizeof(body) - 1;
	m.head = sizeof(head) - 1;
	memcpy(want, head, sizeof(head) - 1);
	memcpy(want + sizeof(head) - 1, body, sizeof(body) - 1);
	check_all(&m, want, sizeof(head) - 1 + sizeof(body) - 1);
	/* a whole read in one call, as a delivery's first read is */
	{
		char	buf[4096];

		assert_int_equal(spool_msg_pread(&m, buf, sizeof(buf), 0),
		    (ssize_t)(sizeof(want) - 2));
		assert_memory_equal(buf, want, sizeof(want) - 2);
	}
	close(m.fd);
}

static void
test_read_without_head(void **state)
{
	struct spool_msg	m;

	(void)state;
	m.fd = spool_file(NULL, 0);
	m.body = sizeof(body) - 1;
	m.head = 0;
	check_all(&m, body, sizeof(body) - 1);
	close(m.fd);
}

static void
test_read_from_envelope(void **state)
{
	struct spool_msg	m;
	struct envelope		e;
	char			buf[8];

	(void)state;
	memset(&e, 0, sizeof(e));
	e.body_size = 5;
	e.head_size = 3;
	spool_msg_set(&m, 7, &e);
	assert_int_equal(m.fd, 7);
	assert_int_equal(m.body, 5);
	assert_int_equal(m.head, 3);
	/* a size that never came, or nonsense: EINVAL, no read */
	m.body = 0;
	errno = 0;
	assert_int_equal(spool_msg_pread(&m, buf, 1, 0), -1);
	assert_int_equal(errno, EINVAL);
	m.body = 5;
	m.head = -1;
	assert_int_equal(spool_msg_pread(&m, buf, 1, 0), -1);
	m.head = 0;
	assert_int_equal(spool_msg_pread(&m, buf, 1, -1), -1);
	/* a read error is the caller's to see */
	m.fd = -1;
	assert_int_equal(spool_msg_pread(&m, buf, 1, 0), -1);
	m.head = 3;
	assert_int_equal(spool_msg_pread(&m, buf, 8, 0), -1);
}

static void
test_head_valid(void **state)
{
	static const char *good[] = {
		"X: y\n",
		"Authentication-Results: mx.example; spf=pass\n",
		"A-R: a;\n\tdkim=pass\n  header.d=example.org\nB: c\n",
		"X:\n y\n",
	};
	static const char *bad[] = {
		"",				/* nothing */
		"X: y",				/* no line end */
		"X: y\r\n",			/* CR: the spool has LF */
		"X: y\n\n",			/* ends the header */
		" X: y\n",			/* a continuation first */
		"\tfolded\n",
		"X: y\n \n",			/* a continuation of nothing */
		"X y\n",			/* no colon */
		": y\n",			/* no name */
		"X : y\n",			/* space before the colon */
		".X: y\n",			/* would need dot-stuffing */
		"X_Y: z\n",
		"From x\n",			/* an mbox separator */
		"X: \xc3\xa9\n",		/* 8-bit */
		"X: a\x01" "b\n",		/* control */
		"X: a\x7f\n",
	};
	char	*big;
	size_t	 i, lines;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(spool_head_valid(good[i], strlen(good[i]),
		    NULL), 0);
	assert_int_equal(spool_head_valid(good[2], strlen(good[2]), &lines),
	    0);
	assert_int_equal(lines, 4);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(spool_head_valid(bad[i], strlen(bad[i]),
		    NULL), -1);
	/* a NUL inside: the length says where it ends, not the NUL */
	assert_int_equal(spool_head_valid("X: a\0b\n", 7, NULL), -1);
	/* lines of 998 bytes, not 999; SPOOL_HEAD_MAX bytes, not more */
	big = malloc(SPOOL_HEAD_MAX + 200);
	assert_non_null(big);
	memset(big, 'a', 999);
	big[0] = 'X';
	big[1] = ':';
	big[998] = '\n';
	assert_int_equal(spool_head_valid(big, 999, NULL), 0);
	big[998] = 'a';
	big[999] = '\n';
	assert_int_equal(spool_head_valid(big, 1000, NULL), -1);
	for (i = 0; i + 100 <= SPOOL_HEAD_MAX + 200; i += 100) {
		memset(big + i, ' ', 99);
		big[i] = ' ';
		big[i + 1] = 'x';
		big[i + 99] = '\n';
	}
	memcpy(big, "X:", 2);
	/* 16384 is not a multiple of 100: the block ends on a full line */
	assert_int_equal(spool_head_valid(big, 16300, NULL), 0);
	assert_int_equal(spool_head_valid(big, 16400, NULL), -1);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_with_head),
		cmocka_unit_test(test_read_without_head),
		cmocka_unit_test(test_read_from_envelope),
		cmocka_unit_test(test_head_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
