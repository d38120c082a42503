/*
 * test_imsg.c -- common/imsg.c: messages and the descriptors that travel
 * with them, several descriptors to a write, arrive paired as they were
 * sent, whatever the mix, and however small the socket's buffer.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "imsg.h"

/* a pipe whose read end carries `id' for the receiver to check */
static int
tagged_fd(uint32_t id)
{
	int	p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], &id, sizeof(id)), sizeof(id));
	close(p[1]);
	return p[0];
}

static int
open_fds(void)
{
	int	fd, n = 0;

	for (fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/*
 * `n' messages, every `every'-th one with a descriptor (0: none) and a
 * payload of `size' bytes, written with the socket's send buffer at
 * `sndbuf' so that writes are cut short, read back and checked.
 */
static void
round_trip(int n, int every, size_t size, int sndbuf)
{
	struct imsgbuf	 w, r;
	struct imsg	 m;
	unsigned char	*payload;
	uint32_t	 id, got;
	int		 sv[2], i, rc, next = 0, before;

	before = open_fds();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	if (sndbuf)
		assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF,
		    &sndbuf, sizeof(sndbuf)), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	imsgbuf_init(&w, sv[0]);
	imsgbuf_init(&r, sv[1]);
	assert_non_null(payload = calloc(1, size + sizeof(id)));
	for (i = 0; i < n; i++) {
		id = (uint32_t)i;
		memcpy(payload, &id, sizeof(id));
		assert_int_equal(imsg_compose(&w, 7, id, every && i % every ==
		    0 ? tagged_fd(id) : -1, payload, size + sizeof(id)), 0);
	}
	/* write what fits, read what came, until everything is through */
	while (next < n) {
		rc = imsg_flush_nb(&w);
		assert_int_not_equal(rc, -1);
		while (r.nrfds + IMSG_FDS_PER_WRITE <= IMSG_MAX_FDS &&
		    imsg_read(&r) > 0)
			;
		while ((rc = imsg_get(&r, &m)) == 1) {
			assert_int_equal(m.hdr.peerid, (uint32_t)next);
			memcpy(&id, m.data, sizeof(id));
			assert_int_equal(id, (uint32_t)next);
			if (every && next % every == 0) {
				assert_int_not_equal(m.fd, -1);
				assert_int_equal(read(m.fd, &got,
				    sizeof(got)), sizeof(got));
				assert_int_equal(got, (uint32_t)next);
				close(m.fd);
			} else
				assert_int_equal(m.fd, -1);
			next++;
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(r.nrfds, 0);
	free(payload);
	imsgbuf_clear(&w);
	imsgbuf_clear(&r);
	close(sv[0]);
	close(sv[1]);
	/* every descriptor sent was closed by the sender once sent */
	assert_int_equal(open_fds(), before);
}

static void
test_one_fd_each(void **state)
{
	(void)state;
	round_trip(100, 1, 16, 0);
}

static void
test_mixed(void **state)
{
	(void)state;
	round_trip(200, 3, 100, 0);
	round_trip(50, 0, 100, 0);
}

static void
test_short_writes(void **state)
{
	(void)state;
	/* messages larger than the buffer: every write is cut short */
	round_trip(40, 1, 6000, 4096);
	round_trip(60, 2, 3000, 4096);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_fd_each),
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_short_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
