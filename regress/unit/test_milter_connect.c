/*
 * test_milter_connect.c -- the parent's connector to mail filters
 * (smtpd/milter_connect.c), driven as the parent drives it: a worker's
 * channel (a socketpair), a real configuration, real sockets on
 * loopback and in /tmp, the event loop turned by hand.  Proves the
 * answers (socket passed and non-blocking, refused, no such file, timed
 * out, no such milter), the bound on connects in progress, a worker
 * that goes away with its connects pending, and the counters summed for
 * smtpctl show milters.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "milter_connect.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"

static struct mproc	 worker;		/* the parent's end */
static struct imsgbuf	 wib;			/* the worker's end */
static int		 wfd;
static char		 sock_path[128];
static char		 dir_path[64];

static void
on_worker(struct mproc *p, struct imsg *m)
{
	(void)p;
	(void)m;
	fail_msg("the worker sent nothing");
}

/* a TCP listener on 127.0.0.1, its port in *port */
static int
tcp_listener(int backlog, uint16_t *port)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* a port nobody listens on (bound, then closed) */
static uint16_t
closed_port(void)
{
	uint16_t	port;

	close(tcp_listener(1, &port));
	return port;
}

static void
load_conf(const char *text)
{
	char	path[] = "/tmp/test_mconn.XXXXXX", err[512] = "";
	int	fd;

	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	conf = config_parse(path, err, sizeof(err));
	unlink(path);
	if (conf == NULL)
		fail_msg("%s", err);
}

static int
setup(void **state)
{
	int	sv[2];

	(void)state;
	if ((ev_base = event_base_new()) == NULL)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		return -1;
	mproc_init(&worker, sv[0], "worker", on_worker, NULL);
	wfd = sv[1];
	imsgbuf_init(&wib, wfd);
	snprintf(dir_path, sizeof(dir_path), "/tmp/test_mconn.XXXXXX");
	if (mkdtemp(dir_path) == NULL)
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/f.sock", dir_path);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	milter_worker_gone(&worker);
	if (worker.ev != NULL)
		mproc_clear(&worker);
	imsgbuf_clear(&wib);
	close(wfd);
	config_free(conf);
	conf = NULL;
	unlink(sock_path);
	rmdir(dir_path);
	event_base_free(ev_base);
	ev_base = NULL;
	return 0;
}

/* turn the loop until the worker has an answer; 0, or -1 after ms */
static int
answer(struct milter_connect *ans, int *fd, int ms)
{
	struct pollfd	pfd = { .fd = wfd, .events = POLLIN };
	struct imsg	m;
	ssize_t		n;
	int		waited = 0;

	for (;;) {
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		if (imsg_get(&wib, &m) == 1) {
			assert_int_equal(m.hdr.type, IMSG_MILTER_CONNECT);
			assert_int_equal(m.len, sizeof(*ans));
			memcpy(ans, m.data, sizeof(*ans));
			assert_int_equal(proto_valid_milter_connect(ans), 0);
			*fd = m.fd;
			return 0;
		}
		if (waited >= ms)
			return -1;
		if (poll(&pfd, 1, 10) == 1) {
			n = imsg_read(&wib);
			assert_true(n > 0);
		} else
			waited += 10;
	}
}

static void
request(const char *name, uint32_t reqid)
{
	struct milter_connect	req;

	memset(&req, 0, sizeof(req));
	req.reqid = reqid;
	snprintf(req.name, sizeof(req.name), "%s", name);
	milter_connect_request(&worker, &worker, &req);
}

static void
test_inet_ok(void **state)
{
	struct milter_connect	ans;
	struct milter_stats	st;
	char			text[256];
	uint16_t		port;
	int			lfd, fd, afd;

	(void)state;
	lfd = tcp_listener(16, &port);
	snprintf(text, sizeof(text), "milter up inet:127.0.0.1:%u\n", port);
	load_conf(text);
	request("up", 42);
	assert_int_equal(answer(&ans, &fd, 5000), 0);
	assert_int_equal(ans.reqid, 42);
	assert_string_equal(ans.name, "up");
	assert_int_equal(ans.status, PROTO_OK);
	assert_string_equal(ans.error, "");
	assert_true(fd != -1);
	/* non-blocking for the worker's loop */
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true((afd = accept(lfd, NULL, NULL)) != -1);
	assert_int_equal(write(fd, "x", 1), 1);
	close(afd);
	close(fd);
	close(lfd);
	/* nothing failed: no counters of the parent's own */
	milter_stats_sum("up", &st);
	assert_int_equal(st.state, MILTER_STATE_UNUSED);
	assert_int_equal(st.errors, 0);
}

static void
test_inet_refused(void **state)
{
	struct milter_connect	ans;
	struct milter_stats	st;
	char			text[256], want[256];
	uint16_t		port = closed_port();
	int			fd;

	(void)state;
	snprintf(text, sizeof(text), "milter down inet:127.0.0.1:%u\n", port);
	load_conf(text);
	request("down", 7);
	assert_int_equal(answer(&ans, &fd, 5000), 0);
	assert_int_equal(ans.reqid, 7);
	assert_int_equal(ans.status, PROTO_TEMPFAIL);
	assert_int_equal(fd, -1);
	snprintf(want, sizeof(want), "connect to inet:127.0.0.1:%u: %s",
	    port, strerror(ECONNREFUSED));
	assert_string_equal(ans.error, want);

	/* the parent's own record: errors, DOWN, the last error */
	request("down", 8);
	assert_int_equal(answer(&ans, &fd, 5000), 0);
	milter_stats_sum("down", &st);
	assert_string_equal(st.name, "down");
	assert_int_equal(st.errors, 2);
	assert_int_equal(st.state, MILTER_STATE_DOWN);
	assert_true(st.since > 0 && st.since <= time(NULL));
	assert_true(st.error_at >= st.since);
	assert_string_equal(st.error, want);
}

static void
test_unix(void **state)
{
	struct milter_connect	ans;
	struct sockaddr_un	sun;
	char			text[512], want[512];
	int			lfd, fd;

	(void)state;
	snprintf(text, sizeof(text), "milter u unix:%s\nmilter l local:%s\n",
	    sock_path, sock_path);
	load_conf(text);

	/* no socket there yet */
	request("u", 1);
	assert_int_equal(answer(&ans, &fd, 5000), 0);
	assert_int_equal(ans.status, PROTO_TEMPFAIL);
	snprintf(want, sizeof(want), "connect to unix:%s: %s", sock_path,
	    strerror(ENOENT));
	assert_string_equal(ans.error, want);

	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, sock_path, strlen(sock_path) + 1);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	request("l", 2);
	assert_int_equal(answer(&ans, &fd, 5000), 0);
	assert_int_equal(ans.status, PROTO_OK);
	assert_true(fd != -1);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	close(lfd);
}

static void
test_no_such_milter(void **state)
{
	struct milter_connect	ans;
	struct milter_stats	st;
	int			fd;

	(void)state;
	load_conf("milter a inet:127.0.0.1:9\n");
	request("b", 3);
	assert_int_equal(answer(&ans, &fd, 5000), 0);
	assert_int_equal(ans.status, PROTO_TEMPFAIL);
	assert_int_equal(fd, -1);
	assert_string_equal(ans.error, "no such milter");
	milter_stats_sum("b", &st);
	assert_int_equal(st.errors, 0);
}

/*
 * A listener whose accept queue is full and never accepted from: the
 * kernel drops further SYNs, so a connect stays in progress.  *fill
 * holds the connections that filled it.
 */
static int
black_hole(uint16_t *port, int fill[4])
{
	struct sockaddr_in	sin;
	int			lfd, i, fl;

	lfd = tcp_listener(0, port);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(*port);
	for (i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM, 0);
		fl = fcntl(fill[i], F_GETFL);
		fcntl(fill[i], F_SETFL, fl | O_NONBLOCK);
		(void)connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	usleep(200 * 1000);
	return lfd;
}

static void
test_timeout(void **state)
{
	struct milter_connect	ans;
	char			text[256], want[256];
	uint16_t		port;
	time_t			t0;
	int			lfd, fd, fill[4], i;

	(void)state;
	lfd = black_hole(&port, fill);
	snprintf(text, sizeof(text), "milter slow inet:127.0.0.1:%u "
	    "connect-timeout 1s\n", port);
	load_conf(text);
	t0 = time(NULL);
	request("slow", 9);
	/* the parent's loop is not held: the request returned at once */
	assert_true(time(NULL) - t0 <= 1);
	assert_int_equal(answer(&ans, &fd, 5000), 0);
	if (ans.status == PROTO_OK) {
		close(fd);
		skip();		/* this kernel took it after all */
	}
	snprintf(want, sizeof(want), "connect to inet:127.0.0.1:%u: timed "
	    "out after 1s", port);
	assert_string_equal(ans.error, want);
	assert_int_equal(fd, -1);
	for (i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
}

static int
open_fds(void)
{
	int	fd, n = 0;

	for (fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			n++;
	return n;
}

/* beyond the bound: TEMPFAIL at once; a worker gone: its sockets close */
static void
test_bound_and_worker_gone(void **state)
{
	struct milter_connect	ans;
	char			text[256];
	uint16_t		port;
	int			lfd, fd, fill[4], i, before;

	(void)state;
	lfd = black_hole(&port, fill);
	snprintf(text, sizeof(text), "milter slow inet:127.0.0.1:%u "
	    "connect-timeout 60s\n", port);
	load_conf(text);
	before = open_fds();
	for (i = 0; i < MILTER_CONNECT_MAX_PENDING; i++)
		request("slow", (uint32_t)i);
	assert_int_equal(answer(&ans, &fd, 100), -1);	/* all pending */
	if (open_fds() != before + MILTER_CONNECT_MAX_PENDING)
		skip();		/* some connected: not a black hole here */
	request("slow", 1000);
	assert_int_equal(answer(&ans, &fd, 1000), 0);
	assert_int_equal(ans.reqid, 1000);
	assert_int_equal(ans.status, PROTO_TEMPFAIL);
	assert_string_equal(ans.error,
	    "too many connections to filters in progress");

	milter_worker_gone(&worker);
	assert_int_equal(open_fds(), before);
	assert_int_equal(answer(&ans, &fd, 200), -1);	/* nobody answered */
	for (i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
}

static void
test_stats_sum(void **state)
{
	struct milter_stats	a, b, st;
	int			other;

	(void)state;
	load_conf("milter f inet:127.0.0.1:9\nmilter g inet:127.0.0.1:9\n");
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "f");
	a.state = MILTER_STATE_UP;
	a.since = 100;
	a.sessions = 3;
	a.messages = 2;
	a.accepted = 1;
	a.rejected = 1;
	a.errors = 1;
	a.error_at = 90;
	snprintf(a.error, sizeof(a.error), "old error");
	b = a;
	b.state = MILTER_STATE_DOWN;
	b.since = 200;
	b.error_at = 200;
	snprintf(b.error, sizeof(b.error), "timeout at end of message");
	b.defaults = 1;
	milter_stats_update(&worker, &a);
	milter_stats_update(&other, &b);
	milter_stats_sum("f", &st);
	assert_int_equal(st.sessions, 6);
	assert_int_equal(st.messages, 4);
	assert_int_equal(st.rejected, 2);
	assert_int_equal(st.errors, 2);
	assert_int_equal(st.defaults, 1);
	assert_int_equal(st.state, MILTER_STATE_DOWN);
	assert_int_equal(st.since, 200);
	assert_string_equal(st.error, "timeout at end of message");

	/* the latest totals replace the earlier ones */
	a.sessions = 10;
	a.state = MILTER_STATE_UP;
	a.since = 300;
	milter_stats_update(&worker, &a);
	milter_stats_sum("f", &st);
	assert_int_equal(st.sessions, 13);
	assert_int_equal(st.state, MILTER_STATE_UP);
	assert_int_equal(st.since, 300);

	/* a worker that exits no longer counts */
	milter_worker_gone(&other);
	milter_stats_sum("f", &st);
	assert_int_equal(st.sessions, 10);
	assert_string_equal(st.error, "old error");

	milter_stats_sum("g", &st);
	assert_int_equal(st.state, MILTER_STATE_UNUSED);
	assert_int_equal(st.since, 0);
	assert_int_equal(st.sessions, 0);
}

/* what smtpctl gets: one IMSG_CTL_MILTER per filter, then the end */
static void
test_show(void **state)
{
	struct ctl_milter	cm;
	struct ctl_reply	r;
	struct imsg		m;
	struct pollfd		pfd = { .fd = -1, .events = POLLIN };
	int			n = 0, end = 0, tries;

	(void)state;
	load_conf("milter f inet:127.0.0.1:9 on-error accept\n"
	    "milter g unix:/run/g.sock\n");
	pfd.fd = wfd;
	milter_show(&worker, 77);
	for (tries = 0; tries < 500 && !end; tries++) {
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		if (poll(&pfd, 1, 10) == 1)
			assert_true(imsg_read(&wib) > 0);
		while (imsg_get(&wib, &m) == 1) {
			if (m.hdr.type == IMSG_CTL_REPLY) {
				assert_int_equal(m.len, sizeof(r));
				memcpy(&r, m.data, sizeof(r));
				assert_int_equal(r.reqid, 77);
				assert_int_equal(r.end, 1);
				assert_int_equal(r.status, 0);
				end = 1;
				continue;
			}
			assert_int_equal(m.hdr.type, IMSG_CTL_MILTER);
			assert_int_equal(m.len, sizeof(cm));
			memcpy(&cm, m.data, sizeof(cm));
			assert_int_equal(proto_valid_ctl_milter(&cm), 0);
			assert_int_equal(cm.reqid, 77);
			assert_string_equal(cm.st.name, n == 0 ? "f" : "g");
			assert_string_equal(cm.address, n == 0 ?
			    "inet:127.0.0.1:9" : "unix:/run/g.sock");
			assert_int_equal(cm.st.state, MILTER_STATE_UNUSED);
			n++;
		}
	}
	assert_int_equal(end, 1);
	assert_int_equal(n, 2);
}

/*
 * A filter that is down: five failures, one log line; it comes back
 * (something listens on its port now): logged, and its state is up.
 */
static void
test_log_once_then_recovery(void **state)
{
	struct milter_connect	ans;
	struct milter_stats	st;
	char			text[256], path[] = "/tmp/test_mconn.log.XXXXXX";
	char			buf[4096], *c;
	uint16_t		port = closed_port();
	ssize_t			n;
	int			fd, lfd, logfd, saved, i, lines = 0;

	(void)state;
	snprintf(text, sizeof(text), "milter flaky inet:127.0.0.1:%u\n", port);
	load_conf(text);
	logfd = mkstemp(path);
	assert_true(logfd != -1);
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	assert_int_equal(dup2(logfd, 2), 2);
	for (i = 0; i < 5; i++) {
		request("flaky", (uint32_t)i);
		assert_int_equal(answer(&ans, &fd, 5000), 0);
		assert_int_equal(ans.status, PROTO_TEMPFAIL);
	}
	milter_stats_sum("flaky", &st);
	assert_int_equal(st.errors, 5);
	assert_int_equal(st.state, MILTER_STATE_DOWN);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	{
		struct sockaddr_in	sin;
		int			one = 1;

		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin.sin_port = htons(port);
		if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
			dup2(saved, 2);
			close(lfd);
			skip();		/* someone took the port meanwhile */
		}
	}
	assert_int_equal(listen(lfd, 4), 0);
	request("flaky", 99);
	assert_int_equal(answer(&ans, &fd, 5000), 0);
	assert_int_equal(ans.status, PROTO_OK);
	close(fd);
	close(lfd);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);

	n = pread(logfd, buf, sizeof(buf) - 1, 0);
	close(logfd);
	assert_true(n > 0);
	buf[n] = '\0';
	for (c = buf; (c = strstr(c, "milter flaky: connect to")) != NULL; c++)
		lines++;
	if (lines != 1)
		fail_msg("%d lines for 5 failures:\n%s", lines, buf);
	assert_non_null(strstr(buf, "milter flaky: reachable again"));
	milter_stats_sum("flaky", &st);
	assert_int_equal(st.state, MILTER_STATE_UP);
	assert_int_equal(st.errors, 5);	/* the past failures still count */
}

static void
test_validators(void **state)
{
	struct milter_connect	c;
	struct milter_stats	s;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(proto_valid_milter_connect(&c), -1);	/* no name */
	snprintf(c.name, sizeof(c.name), "x");
	assert_int_equal(proto_valid_milter_connect(&c), 0);
	c.status = 7;
	assert_int_equal(proto_valid_milter_connect(&c), -1);
	c.status = PROTO_OK;
	memset(c.error, 'e', sizeof(c.error));
	assert_int_equal(proto_valid_milter_connect(&c), -1);

	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "x");
	assert_int_equal(proto_valid_milter_stats(&s), 0);
	s.state = MILTER_STATE_DOWN + 1;
	assert_int_equal(proto_valid_milter_stats(&s), -1);
	s.state = MILTER_STATE_UP;
	memset(s.name, 'n', sizeof(s.name));
	assert_int_equal(proto_valid_milter_stats(&s), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inet_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inet_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_such_milter, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_and_worker_gone,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_sum, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_show, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_once_then_recovery,
		    setup, teardown),
		cmocka_unit_test(test_validators),
	};

	log_init(1, 0);		/* the lines to stderr, where a test reads */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
