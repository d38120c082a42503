/*
 * test_dns.c -- the lookup process's resolver (lookup/dns.c, lookup/mx.c)
 * against a real DNS server: dnsmasq, started here on a random loopback
 * port and serving test zones with MX, null MX, CNAME, AAAA, PTR and
 * missing records.  Skipped when dnsmasq is not installed (mk/deps.sh
 * installs dnsmasq-base).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
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
#include "log.h"
#include "proc.h"
#include "mproc.h"
#include "proto.h"

#define DNSMASQ		"/usr/sbin/dnsmasq"
#define LOOP_LIMIT	15	/* seconds any one test may run the loop */

static pid_t		dnsmasq_pid = -1;
static uint16_t		dnsmasq_port;

/* results collected by the callbacks */
static int			done;
static struct dns_result	qres;
static struct lka_rdns		rres;
static struct lka_result	lres;
static struct lka_mx_host	hosts[64];
static size_t			nhosts;

static void
on_loop_timeout(evutil_socket_t fd, short ev, void *arg)
{
	event_base_loopbreak(ev_base);
}

/* run the loop until a callback sets done, at most LOOP_LIMIT seconds */
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

static void
query_cb(void *arg, const struct dns_result *r)
{
	qres = *r;
	done = 1;
}

static void
query(const char *name, int type)
{
	done = 0;
	memset(&qres, 0, sizeof(qres));
	dns_query(name, type, 10, query_cb, NULL);
	/* never from inside dns_query, even for /etc/hosts answers */
	assert_false(done);
	run_loop();
}

static void
rdns_cb(void *arg, const struct lka_rdns *r)
{
	rres = *r;
	done = 1;
}

static void
rdns(const char *ip)
{
	struct lka_rdns	req;

	memset(&req, 0, sizeof(req));
	req.reqid = 7;
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&req.addr;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&req.addr;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	done = 0;
	memset(&rres, 0, sizeof(rres));
	dns_rdns(&req, rdns_cb, NULL);
	run_loop();
	assert_int_equal(rres.reqid, 7);
	assert_int_equal(proto_valid_lka_rdns(&rres), 0);
}

static void
result_cb(void *arg, const struct lka_result *r)
{
	lres = *r;
	done = 1;
}

static void
host_cb(void *arg, const struct lka_mx_host *h)
{
	assert_false(done);
	assert_true(nhosts < sizeof(hosts) / sizeof(hosts[0]));
	assert_int_equal(proto_valid_lka_mx_host(h), 0);
	hosts[nhosts++] = *h;
}

static void
mx(const char *domain, const char *relay)
{
	struct lka_mx_req	req;

	memset(&req, 0, sizeof(req));
	req.reqid = 42;
	snprintf(req.domain, sizeof(req.domain), "%s", domain);
	snprintf(req.relay_host, sizeof(req.relay_host), "%s", relay);
	done = 0;
	nhosts = 0;
	memset(&lres, 0, sizeof(lres));
	dns_mx(&req, host_cb, result_cb, NULL);
	run_loop();
	assert_int_equal(lres.reqid, 42);
	assert_int_equal(lres.ndest, nhosts);
}

static void
sender(const char *domain)
{
	struct lka_rcpt_req	req;

	memset(&req, 0, sizeof(req));
	req.reqid = 9;
	snprintf(req.mailfrom.user, sizeof(req.mailfrom.user), "someone");
	snprintf(req.mailfrom.domain, sizeof(req.mailfrom.domain), "%s",
	    domain);
	done = 0;
	memset(&lres, 0, sizeof(lres));
	dns_check_sender(&req, result_cb, NULL);
	run_loop();
	assert_int_equal(lres.reqid, 9);
}

static const char *
addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)ss)->sin6_addr, buf,
		    (socklen_t)len);
	return buf;
}

static uint16_t
addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/*
 * The test zones.  Everything under .test and the reverse zones is
 * answered by dnsmasq itself (--local), so a name it does not know is
 * NXDOMAIN and a known name without the asked type is NODATA.
 * "broken.test" is forwarded to a closed port: SERVFAIL.
 */
static int
start_dnsmasq(void **state)
{
	char	port[32];
	int	i, tries;

	if (access(DNSMASQ, X_OK) == -1) {
		fprintf(stderr, "test_dns: %s not installed, skipping\n",
		    DNSMASQ);
		return 0;
	}
	for (tries = 0; tries < 5; tries++) {
		int	st;

		dnsmasq_port = (uint16_t)(30000 + arc4random_uniform(10000));
		snprintf(port, sizeof(port), "--port=%u", dnsmasq_port);
		if ((dnsmasq_pid = fork()) == -1)
			return -1;
		if (dnsmasq_pid == 0) {
			execl(DNSMASQ, "dnsmasq", "--keep-in-foreground",
			    "--no-daemon", "--conf-file=/dev/null",
			    "--no-resolv", "--no-hosts", "--no-poll",
			    "--bind-interfaces", "--listen-address=127.0.0.1",
			    "--user=nobody", "--group=nogroup",
			    "--pid-file=", "--log-facility=/dev/null", port,
			    "--local=/test/", "--local=/127.in-addr.arpa/",
			    "--local=/ip6.arpa/",
			    "--server=/broken.test/127.0.0.1#1",
			    /* MX, preferences 10, 20, 20 */
			    "--mx-host=mx.test,mx1.mx.test,10",
			    "--mx-host=mx.test,mx2.mx.test,20",
			    "--mx-host=mx.test,mx3.mx.test,20",
			    "--host-record=mx1.mx.test,127.0.0.11",
			    "--host-record=mx2.mx.test,127.0.0.12,::12",
			    "--host-record=mx3.mx.test,127.0.0.13",
			    /* no MX: A and AAAA of the domain itself */
			    "--host-record=aonly.test,127.0.0.20",
			    "--host-record=v6only.test,::20",
			    /* RFC 7505 null MX: preference 0, root target */
			    "--dns-rr=nullmx.test,15,000000",
			    "--host-record=nullmx.test,127.0.0.21",
			    /* an MX host without any address */
			    "--mx-host=noaddr.test,ghost.noaddr.test,10",
			    /* the domain is an alias of one with an MX */
			    "--cname=alias.test,real.test",
			    "--mx-host=real.test,mx1.mx.test,5",
			    "--host-record=real.test,127.0.0.22",
			    /* rDNS: confirmed, PTR only, and none */
			    "--host-record=client.test,127.0.0.30",
			    "--ptr-record=31.0.0.127.in-addr.arpa,liar.test",
			    "--host-record=liar.test,127.0.0.99",
			    "--host-record=client6.test,fd00::30",
			    "--host-record=relay.test,127.0.0.40",
			    "--txt-record=txtonly.test,hello",
			    (char *)NULL);
			_exit(127);
		}
		/* is it up and serving?  a PTR of a known name answers */
		for (i = 0; i < 50; i++) {
			usleep(100000);
			if (waitpid(dnsmasq_pid, &st, WNOHANG) == dnsmasq_pid)
				break;
			if (i >= 2)
				goto up;
		}
		dnsmasq_pid = -1;	/* port taken?  try another */
	}
	return -1;
up:
	assert_int_equal(dns_init_with("127.0.0.1", dnsmasq_port, NULL), 0);
	return 0;
}

static int
stop_dnsmasq(void **state)
{
	int	st;

	dns_shutdown();
	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, &st, 0);
	}
	return 0;
}

#define NEED_DNSMASQ() do {						\
	if (dnsmasq_pid <= 0)						\
		skip();							\
} while (0)

static void
test_a_aaaa(void **state)
{
	char	buf[64];

	NEED_DNSMASQ();
	query("mx2.mx.test", DNS_T_A);
	assert_int_equal(qres.status, DNS_OK);
	assert_int_equal(qres.nrr, 1);
	assert_string_equal(addr_text(&qres.rr[0].addr, buf, sizeof(buf)),
	    "127.0.0.12");
	query("mx2.mx.test", DNS_T_AAAA);
	assert_int_equal(qres.status, DNS_OK);
	assert_string_equal(addr_text(&qres.rr[0].addr, buf, sizeof(buf)),
	    "::12");
	query("mx1.mx.test", DNS_T_AAAA);
	assert_int_equal(qres.status, DNS_NODATA);
	query("nonexistent.test", DNS_T_A);
	assert_int_equal(qres.status, DNS_NXDOMAIN);
	query("x.broken.test", DNS_T_A);
	assert_int_equal(qres.status, DNS_TEMPFAIL);
}

static void
test_mx_order(void **state)
{
	char	buf[64];
	size_t	i;
	int	saw2first = 0, saw3first = 0, round;

	NEED_DNSMASQ();
	/* equal preferences come in random order: both orders show up */
	for (round = 0; round < 40 && !(saw2first && saw3first); round++) {
		mx("mx.test", "");
		assert_int_equal(lres.status, PROTO_OK);
		assert_int_equal(nhosts, 4);
		assert_string_equal(hosts[0].host, "mx1.mx.test");
		assert_int_equal(hosts[0].preference, 10);
		assert_string_equal(addr_text(&hosts[0].addr, buf,
		    sizeof(buf)), "127.0.0.11");
		assert_int_equal(addr_port(&hosts[0].addr), 0);
		for (i = 1; i < nhosts; i++)
			assert_int_equal(hosts[i].preference, 20);
		if (strcmp(hosts[1].host, "mx2.mx.test") == 0) {
			/* a host's IPv4 address before its IPv6 one */
			assert_string_equal(addr_text(&hosts[1].addr, buf,
			    sizeof(buf)), "127.0.0.12");
			assert_string_equal(addr_text(&hosts[2].addr, buf,
			    sizeof(buf)), "::12");
			assert_string_equal(hosts[3].host, "mx3.mx.test");
			saw2first = 1;
		} else {
			assert_string_equal(hosts[1].host, "mx3.mx.test");
			assert_string_equal(hosts[2].host, "mx2.mx.test");
			saw3first = 1;
		}
	}
	assert_true(saw2first && saw3first);
}

static void
test_mx_fallbacks(void **state)
{
	char	buf[64];

	NEED_DNSMASQ();
	/* RFC 5321 5.1: no MX, the A record is the implicit MX */
	mx("aonly.test", "");
	assert_int_equal(lres.status, PROTO_OK);
	assert_int_equal(nhosts, 1);
	assert_string_equal(hosts[0].host, "aonly.test");
	assert_string_equal(addr_text(&hosts[0].addr, buf, sizeof(buf)),
	    "127.0.0.20");
	/* ... or the AAAA */
	mx("v6only.test", "");
	assert_int_equal(lres.status, PROTO_OK);
	assert_int_equal(nhosts, 1);
	assert_string_equal(addr_text(&hosts[0].addr, buf, sizeof(buf)),
	    "::20");
	/* RFC 7505: null MX is a permanent failure, A record or not */
	mx("nullmx.test", "");
	assert_int_equal(lres.status, PROTO_PERMFAIL);
	assert_int_equal(nhosts, 0);
	assert_non_null(strstr(lres.reply, "5.1.10"));
	/* NXDOMAIN: bounce */
	mx("nonexistent.test", "");
	assert_int_equal(lres.status, PROTO_PERMFAIL);
	assert_int_equal(strncmp(lres.reply, "550 5.1.2", 9), 0);
	/* SERVFAIL: try again later */
	mx("broken.test", "");
	assert_int_equal(lres.status, PROTO_TEMPFAIL);
	assert_int_equal(lres.reply[0], '4');
	/* an MX whose host has no address */
	mx("noaddr.test", "");
	assert_int_equal(lres.status, PROTO_PERMFAIL);
	assert_int_equal(nhosts, 0);
	/* CNAME followed to a domain with an MX */
	mx("alias.test", "");
	assert_int_equal(lres.status, PROTO_OK);
	assert_true(nhosts >= 1);
	assert_string_equal(hosts[0].host, "mx1.mx.test");
	/* an address literal needs no DNS */
	mx("[127.0.0.77]", "");
	assert_int_equal(lres.status, PROTO_OK);
	assert_int_equal(nhosts, 1);
	assert_string_equal(addr_text(&hosts[0].addr, buf, sizeof(buf)),
	    "127.0.0.77");
	mx("[IPv6:::1]", "");
	assert_int_equal(lres.status, PROTO_OK);
	assert_string_equal(addr_text(&hosts[0].addr, buf, sizeof(buf)),
	    "::1");
}

static void
test_mx_relay_host(void **state)
{
	char	buf[64];

	NEED_DNSMASQ();
	mx("mx.test", "smtp://relay.test:2525");
	assert_int_equal(lres.status, PROTO_OK);
	assert_int_equal(nhosts, 1);
	assert_string_equal(hosts[0].host, "relay.test");
	assert_string_equal(addr_text(&hosts[0].addr, buf, sizeof(buf)),
	    "127.0.0.40");
	assert_int_equal(addr_port(&hosts[0].addr), 2525);
	mx("mx.test", "smtp+tls://label@[127.0.0.41]:587");
	assert_int_equal(lres.status, PROTO_OK);
	assert_int_equal(nhosts, 1);
	assert_string_equal(addr_text(&hosts[0].addr, buf, sizeof(buf)),
	    "127.0.0.41");
	assert_int_equal(addr_port(&hosts[0].addr), 587);
	mx("mx.test", "smtp://nonexistent.test");
	assert_int_equal(lres.status, PROTO_PERMFAIL);
}

static void
test_relay_url(void **state)
{
	char		host[256];
	uint16_t	port;

	assert_int_equal(dns_parse_relay_url("smtp://a.example:25", host,
	    sizeof(host), &port), 0);
	assert_string_equal(host, "a.example");
	assert_int_equal(port, 25);
	assert_int_equal(dns_parse_relay_url("smtps://[::1]:465", host,
	    sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 465);
	assert_int_equal(dns_parse_relay_url("lmtp://b.example", host,
	    sizeof(host), &port), 0);
	assert_string_equal(host, "b.example");
	assert_int_equal(port, 0);
	assert_int_equal(dns_parse_relay_url("smtp://a:0", host,
	    sizeof(host), &port), -1);
	assert_int_equal(dns_parse_relay_url("smtp://a:99999", host,
	    sizeof(host), &port), -1);
	assert_int_equal(dns_parse_relay_url("smtp://", host,
	    sizeof(host), &port), -1);
	assert_int_equal(dns_parse_relay_url("smtp://[::1", host,
	    sizeof(host), &port), -1);
}

static void
test_rdns(void **state)
{
	NEED_DNSMASQ();
	rdns("127.0.0.30");
	assert_int_equal(rres.status, PROTO_OK);
	assert_string_equal(rres.name, "client.test");
	assert_int_equal(rres.fcrdns, 1);
	/* a PTR whose name does not lead back: not confirmed */
	rdns("127.0.0.31");
	assert_int_equal(rres.status, PROTO_OK);
	assert_string_equal(rres.name, "liar.test");
	assert_int_equal(rres.fcrdns, 0);
	rdns("127.0.0.32");
	assert_int_equal(rres.status, PROTO_PERMFAIL);
	assert_string_equal(rres.name, "");
	rdns("fd00::30");
	assert_int_equal(rres.status, PROTO_OK);
	assert_string_equal(rres.name, "client6.test");
	assert_int_equal(rres.fcrdns, 1);
	/* v4-mapped IPv6 is reversed as IPv4 */
	rdns("::ffff:127.0.0.30");
	assert_int_equal(rres.status, PROTO_OK);
	assert_string_equal(rres.name, "client.test");
	assert_int_equal(rres.fcrdns, 1);
}

static int		nrdns;
static struct lka_rdns	rres2[2];

static void
rdns_cb2(void *arg, const struct lka_rdns *r)
{
	rres2[nrdns++] = *r;
	done = nrdns == 2;
}

/*
 * Two questions for one address at once are asked once and both get the
 * answer, each with its own request id; then the answer comes from the
 * cache, still never from inside dns_rdns().
 */
static void
test_rdns_shared_and_cached(void **state)
{
	struct lka_rdns		 req;
	struct sockaddr_in	*s4 = (struct sockaddr_in *)&req.addr;
	int			 i;

	NEED_DNSMASQ();
	memset(&req, 0, sizeof(req));
	s4->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "127.0.0.30", &s4->sin_addr), 1);
	for (i = 0; i < 2; i++) {
		nrdns = 0;
		done = 0;
		req.reqid = 100;
		dns_rdns(&req, rdns_cb2, NULL);
		req.reqid = 101;
		dns_rdns(&req, rdns_cb2, NULL);
		assert_int_equal(nrdns, 0);
		run_loop();
		assert_int_equal(nrdns, 2);
		assert_int_equal(rres2[0].reqid, 100);
		assert_int_equal(rres2[1].reqid, 101);
		assert_int_equal(rres2[0].status, PROTO_OK);
		assert_string_equal(rres2[1].name, "client.test");
		assert_int_equal(rres2[1].fcrdns, 1);
	}
}

static void
test_sender(void **state)
{
	NEED_DNSMASQ();
	sender("mx.test");
	assert_int_equal(lres.status, PROTO_OK);
	sender("aonly.test");
	assert_int_equal(lres.status, PROTO_OK);
	sender("v6only.test");
	assert_int_equal(lres.status, PROTO_OK);
	sender("nonexistent.test");
	assert_int_equal(lres.status, PROTO_PERMFAIL);
	assert_int_equal(strncmp(lres.reply, "550 5.1.8 ", 10), 0);
	/* exists, but no MX/A/AAAA */
	sender("txtonly.test");
	assert_int_equal(lres.status, PROTO_PERMFAIL);
	sender("nullmx.test");
	assert_int_equal(lres.status, PROTO_PERMFAIL);
	assert_int_equal(strncmp(lres.reply, "550 5.7.27 ", 11), 0);
	sender("broken.test");
	assert_int_equal(lres.status, PROTO_TEMPFAIL);
	assert_int_equal(strncmp(lres.reply, "450 4.1.8 ", 10), 0);
	/* no DNS for the null sender or our own names */
	sender("");
	assert_int_equal(lres.status, PROTO_OK);
	sender("localhost");
	assert_int_equal(lres.status, PROTO_OK);
}

static void
test_ptr_name(void **state)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)&ss;
	char			 buf[128];

	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &s6->sin6_addr),
	    1);
	assert_int_equal(dns_ptr_name(&ss, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_int_equal(dns_ptr_name(&ss, buf, 20), -1);
	ss.ss_family = AF_UNIX;
	assert_int_equal(dns_ptr_name(&ss, buf, sizeof(buf)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ptr_name),
		cmocka_unit_test(test_relay_url),
		cmocka_unit_test(test_a_aaaa),
		cmocka_unit_test(test_mx_order),
		cmocka_unit_test(test_mx_fallbacks),
		cmocka_unit_test(test_mx_relay_host),
		/* first: its first round must really ask */
		cmocka_unit_test(test_rdns_shared_and_cached),
		cmocka_unit_test(test_rdns),
		cmocka_unit_test(test_sender),
	};

	log_init(1, 0);
	if ((ev_base = event_base_new()) == NULL)
		return 1;
	if ((conf = config_default()) == NULL)
		return 1;
	snprintf(conf->hostname, sizeof(conf->hostname), "mail.local.test");
	return cmocka_run_group_tests(tests, start_dnsmasq, stop_dnsmasq);
}
