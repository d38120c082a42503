/*
 * test_dnsbl_rbldnsd.c -- lookup/dnsbl.c against rbldnsd(8), the DNS
 * block list server many lists run: a zone of an IPv4 set and an IPv6
 * trie, served on loopback (ports 15375-15379), asked through the lookup
 * process's own resolver.  rbldnsd builds its answers from the address
 * data itself, so this proves our question names (reversed octets,
 * IPv6 nibbles) against an implementation that is not ours.  Skipped
 * when rbldnsd is not installed (mk/deps.sh installs it, service off).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <event2/event.h>

#include "config.h"
#include "dns.h"
#include "dnsbl.h"
#include "log.h"
#include "mproc.h"
#include "proc.h"

#define RBLDNSD		"/usr/sbin/rbldnsd"
#define LOOP_LIMIT	15

static pid_t			rbldnsd_pid = -1;
static char			dir[] = "/tmp/test_rbldnsd.XXXXXX";
static int			done;
static struct dnsbl_result	bres;

static void
on_loop_timeout(evutil_socket_t fd, short ev, void *arg)
{
	event_base_loopbreak(ev_base);
}

static void
run_loop(void)
{
	struct event	*t;
	struct timeval	 tv = { 0, 20000 };
	time_t		 start = time(NULL);

	t = evtimer_new(ev_base, on_loop_timeout, NULL);
	assert_non_null(t);
	while (!done && time(NULL) - start < LOOP_LIMIT) {
		evtimer_add(t, &tv);
		event_base_loop(ev_base, EVLOOP_ONCE);
	}
	event_free(t);
	assert_true(done);
}

static int
write_data(const char *name, const char *text)
{
	char	 path[128];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, f);
	if (fclose(f) != 0 || chmod(path, 0644) == -1)
		return -1;
	return 0;
}

/*
 * bl.test: 127.0.0.2 and 192.0.2.0/24 (answer 127.0.0.2); under IPv6
 * 2001:db8:1::/48 (127.0.0.2) and 2001:db8:2::5 alone (127.0.0.4).
 */
static int
start_rbldnsd(void **state)
{
	char		bind[64];
	uint16_t	port;
	int		i, st;

	if (access(RBLDNSD, X_OK) == -1) {
		fprintf(stderr, "test_dnsbl_rbldnsd: %s not installed, "
		    "skipping\n", RBLDNSD);
		return 0;
	}
	/* rbldnsd drops to its own user: the data must be readable */
	if (mkdtemp(dir) == NULL || chmod(dir, 0755) == -1)
		return -1;
	if (write_data("v4", ":127.0.0.2:Listed $\n127.0.0.2\n"
	    "192.0.2.0/24\n") == -1 ||
	    write_data("v6", ":127.0.0.2:Listed $\n2001:db8:1::/48\n"
	    "2001:db8:2::5 :127.0.0.4:five\n") == -1)
		return -1;
	for (port = 15375; port <= 15379; port++) {
		snprintf(bind, sizeof(bind), "127.0.0.1/%u", port);
		if ((rbldnsd_pid = fork()) == -1)
			return -1;
		if (rbldnsd_pid == 0) {
			int	fd = open("/dev/null", O_WRONLY);

			if (fd != -1) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execl(RBLDNSD, "rbldnsd", "-n", "-b", bind, "-w", dir,
			    "bl.test:ip4set:v4", "bl.test:ip6trie:v6",
			    (char *)NULL);
			_exit(127);
		}
		for (i = 0; i < 50; i++) {
			usleep(100000);
			if (waitpid(rbldnsd_pid, &st, WNOHANG) == rbldnsd_pid)
				break;
			if (i >= 3)
				goto up;
		}
		rbldnsd_pid = -1;	/* port taken?  the next */
	}
	return -1;
up:
	assert_int_equal(dns_init_with("127.0.0.1", port, NULL), 0);
	return 0;
}

static int
stop_rbldnsd(void **state)
{
	char	path[128];
	int	st;

	if (rbldnsd_pid > 0) {
		dns_shutdown();
		kill(rbldnsd_pid, SIGTERM);
		waitpid(rbldnsd_pid, &st, 0);
	}
	snprintf(path, sizeof(path), "%s/v4", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/v6", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}

static void
cb(void *arg, const struct dnsbl_result *r)
{
	assert_false(done);
	bres = *r;
	done = 1;
}

static void
check(const struct dnsbl_set *set, const char *text)
{
	struct sockaddr_storage	ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	done = 0;
	memset(&bres, 0, sizeof(bres));
	dnsbl_check(set, &ss, cb, NULL);
	run_loop();
	assert_int_equal(bres.nfailed, 0);
}

static void
test_rbldnsd(void **state)
{
	struct dnsbl_set	set;
	char			err[256];

	if (rbldnsd_pid <= 0)
		skip();
	memset(&set, 0, sizeof(set));
	/* the zone twice: any answer (weight 1), only 127.0.0.4 (10) */
	assert_int_equal(dnsbl_parse_list("bl.test", &set.list[0], err,
	    sizeof(err)), 0);
	assert_int_equal(dnsbl_parse_list("bl.test=127.0.0.4*10",
	    &set.list[1], err, sizeof(err)), 0);
	set.nlist = 2;
	set.threshold = 1;
	dnsbl_cache_clear();

	check(&set, "127.0.0.2");
	assert_int_equal(bres.score, 1);
	check(&set, "192.0.2.77");
	assert_int_equal(bres.score, 1);
	assert_int_equal(bres.listed, 1);
	check(&set, "192.0.3.77");
	assert_int_equal(bres.score, 0);
	assert_int_equal(bres.listed, 0);
	/* the nibbles: inside the /48, at its edges, and one bit off */
	check(&set, "2001:db8:1:2::9");
	assert_int_equal(bres.score, 1);
	check(&set, "2001:db8:1:ffff:ffff:ffff:ffff:ffff");
	assert_int_equal(bres.score, 1);
	check(&set, "2001:db8:0:ffff::1");
	assert_int_equal(bres.score, 0);
	check(&set, "2001:db8:2::5");
	assert_int_equal(bres.score, 11);
	assert_int_equal(bres.nhit, 2);
	check(&set, "2001:db8:2::6");
	assert_int_equal(bres.score, 0);
	/* a v4-mapped address is the IPv4 one */
	check(&set, "::ffff:192.0.2.1");
	assert_int_equal(bres.score, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rbldnsd),
	};

	signal(SIGPIPE, SIG_IGN);
	log_init(1, 0);
	if ((ev_base = event_base_new()) == NULL)
		return 1;
	if ((conf = config_default()) == NULL)
		return 1;
	return cmocka_run_group_tests(tests, start_rbldnsd, stop_rbldnsd);
}
