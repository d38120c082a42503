/*
 * test_mproc.c -- common/mproc.c's flow control for untrusted peers
 * (issue 16): a client that sends requests and reads no answers is read
 * no further once our output to it passes the bound, and everything it
 * sent is still handled, in order, once it reads; an owner's hold stops
 * and resumes reading the same way.
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
#include <event2/event.h>

#include "imsg.h"
#include "mproc.h"

#define NREQ		200
#define REPLY_SIZE	(32 * 1024)

static struct mproc	 chan;
static int		 handled, closed, out_of_order;
static unsigned char	 reply[REPLY_SIZE];

static void
on_request(struct mproc *p, struct imsg *m)
{
	uint32_t	n;

	assert_int_equal(m->len, sizeof(n));
	memcpy(&n, m->data, sizeof(n));
	if (n != (uint32_t)handled)
		out_of_order = 1;
	handled++;
	mproc_compose(p, 2, n, -1, reply, sizeof(reply));
}

static void
on_closed(struct mproc *p)
{
	closed = 1;
	mproc_clear(p);
}

/* our end is chan on sv[0]; the client writes NREQ requests to sv[1] */
static int
setup(void **state)
{
	struct imsgbuf	ib;
	int		sv[2];
	uint32_t	i;

	handled = closed = out_of_order = 0;
	if ((ev_base = event_base_new()) == NULL)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		return -1;
	mproc_init(&chan, sv[0], "client", on_request, NULL);
	chan.closed = on_closed;
	chan.untrusted = 1;
	chan.throttle_reads = 1;
	imsgbuf_init(&ib, sv[1]);
	for (i = 0; i < NREQ; i++)
		assert_int_equal(imsg_compose(&ib, 1, 0, -1, &i, sizeof(i)),
		    0);
	assert_int_equal(imsg_flush(&ib), 0);
	imsgbuf_clear(&ib);
	*state = (void *)(intptr_t)sv[1];
	return 0;
}

static int
teardown(void **state)
{
	if (!closed && chan.ev != NULL)
		mproc_clear(&chan);
	close((int)(intptr_t)*state);
	event_base_free(ev_base);
	ev_base = NULL;
	return 0;
}

static void
turns(int n)
{
	while (n-- > 0)
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
}

/* read and count the client's replies: the number of messages */
static int
client_read(int fd, struct imsgbuf *ib)
{
	struct imsg	m;
	int		got = 0;

	while (imsg_read(ib) > 0)
		while (imsg_get(ib, &m) == 1)
			got++;
	return got;
}

static void
test_backlog_stops_reading_then_resumes(void **state)
{
	struct imsgbuf	ib;
	int		fd = (int)(intptr_t)*state, got = 0, i, first;

	turns(50);
	first = handled;
	/* stopped near the bound, with most requests left unread */
	assert_true(first > 0);
	assert_true(first < NREQ / 2);
	assert_true(chan.ib.wqlen <= MPROC_UNTRUSTED_WQ_MAX + REPLY_SIZE +
	    sizeof(struct imsg_hdr));
	turns(50);
	assert_int_equal(handled, first);
	/* the client reads: everything it asked is answered, in order */
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	imsgbuf_init(&ib, fd);
	for (i = 0; i < 100000 && got < NREQ; i++) {
		turns(1);
		got += client_read(fd, &ib);
	}
	imsgbuf_clear(&ib);
	assert_int_equal(got, NREQ);
	assert_int_equal(handled, NREQ);
	assert_int_equal(out_of_order, 0);
	assert_int_equal(closed, 0);
}

static void
test_hold_and_release(void **state)
{
	struct imsgbuf	ib;
	int		fd = (int)(intptr_t)*state, got = 0, i;

	mproc_hold_reading(&chan, 1);
	turns(20);
	assert_int_equal(handled, 0);
	mproc_hold_reading(&chan, 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	imsgbuf_init(&ib, fd);
	for (i = 0; i < 100000 && got < NREQ; i++) {
		turns(1);
		got += client_read(fd, &ib);
	}
	imsgbuf_clear(&ib);
	assert_int_equal(handled, NREQ);
	assert_int_equal(got, NREQ);
	assert_int_equal(out_of_order, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_backlog_stops_reading_then_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_and_release, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
