/*
 * test_authdns.c -- DMARC policy discovery (lookup/dmarc.c) and DNS
 * block/allow lists (lookup/dnsbl.c) against a real DNS server: dnsmasq
 * on loopback (ports 15370-15379), serving _dmarc TXT records and list
 * zones, through the lookup process's own resolver (dns_init_with on a
 * libevent loop).  Skipped when dnsmasq is not installed (mk/deps.sh
 * installs dnsmasq-base).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

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
#include "dmarc.h"
#include "dns.h"
#include "dnsbl.h"
#include "log.h"
#include "mproc.h"
#include "proc.h"

#define DNSMASQ		"/usr/sbin/dnsmasq"
#define LOOP_LIMIT	15	/* seconds any one check may run the loop */

static pid_t			dnsmasq_pid = -1;
static int			done;
static struct dmarc_result	mres;
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
start_dnsmasq(void **state)
{
	char		port[32];
	uint16_t	p;
	int		i, st;

	if (access(DNSMASQ, X_OK) == -1) {
		fprintf(stderr, "test_authdns: %s not installed, skipping\n",
		    DNSMASQ);
		return 0;
	}
	for (p = 15370; p <= 15379; p++) {
		snprintf(port, sizeof(port), "--port=%u", p);
		if ((dnsmasq_pid = fork()) == -1)
			return -1;
		if (dnsmasq_pid == 0) {
			execl(DNSMASQ, "dnsmasq", "--keep-in-foreground",
			    "--no-daemon", "--conf-file=/dev/null",
			    "--no-resolv", "--no-hosts", "--no-poll",
			    "--bind-interfaces", "--listen-address=127.0.0.1",
			    "--user=nobody", "--group=nogroup",
			    "--pid-file=", "--log-facility=/dev/null", port,
			    "--local=/test/", "--local-ttl=60",
			    /*
			     * broken.test: no server for it, so every
			     * question fails at once (REFUSED: SERVFAIL to
			     * the resolver), as a list that is down does;
			     * a forward to a dead port cost 33 s in retries
			     */
			    "--server=/broken.test/#",
			    /* DMARC: an org domain's record with sp= */
			    "--txt-record=_dmarc.example.test,"
			    "v=DMARC1; p=reject; sp=quarantine; "
			    "rua=mailto:agg@example.test",
			    /* a subdomain with its own record */
			    "--txt-record=_dmarc.own.example.test,"
			    "v=DMARC1; p=none",
			    /* a subdomain with only an SPF-like TXT there */
			    "--txt-record=_dmarc.other.example.test,"
			    "v=spf1 -all",
			    /* two DMARC records: none applies */
			    "--txt-record=_dmarc.multi.test,v=DMARC1; p=reject",
			    "--txt-record=_dmarc.multi.test,"
			    "v=DMARC1; p=quarantine",
			    /* ... also below an org domain with a record:
			       still none, no fallback (6.6.3 step 5) */
			    "--txt-record=_dmarc.multi.example.test,"
			    "v=DMARC1; p=none",
			    "--txt-record=_dmarc.multi.example.test,"
			    "v=DMARC1; p=none; pct=50",
			    /* one DMARC and one other record: fine */
			    "--txt-record=_dmarc.mixed.test,v=DMARC1; p=reject",
			    "--txt-record=_dmarc.mixed.test,hello",
			    /* an unusable record */
			    "--txt-record=_dmarc.bad.test,v=DMARC1; p=bogus",
			    /* a record in several character-strings */
			    "--txt-record=_dmarc.split.test,v=DMARC1; ,"
			    "p=quarantine; pct=0",
			    /* DNSBL: 127.0.0.2 on bl.test and on bl2.test
			       with an answer the filter ignores;
			       127.0.0.3 on the allow list; ::2 too */
			    "--host-record=2.0.0.127.bl.test,127.0.0.2",
			    "--host-record=2.0.0.127.bl2.test,127.0.0.9",
			    "--host-record=3.0.0.127.wl.test,127.0.0.2",
			    "--host-record=3.0.0.127.bl.test,127.0.0.4",
			    "--host-record=2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
			    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test,127.0.0.3",
			    /* 127.0.0.4: the list refuses (Spamhaus style) */
			    "--host-record=4.0.0.127.bl.test,127.255.255.254",
			    (char *)NULL);
			_exit(127);
		}
		for (i = 0; i < 50; i++) {
			usleep(100000);
			if (waitpid(dnsmasq_pid, &st, WNOHANG) == dnsmasq_pid)
				break;
			if (i >= 2)
				goto up;
		}
		dnsmasq_pid = -1;	/* port taken?  try the next */
	}
	return -1;
up:
	assert_int_equal(dns_init_with("127.0.0.1", p, NULL), 0);
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
dmarc_cb_fn(void *arg, const struct dmarc_result *r)
{
	assert_false(done);
	mres = *r;
	done = 1;
}

/* a message from `from' whose SPF passed for spf_domain */
static void
dmarc(const char *from, const char *spf_domain)
{
	struct dmarc_req	req;

	memset(&req, 0, sizeof(req));
	snprintf(req.from_domain, sizeof(req.from_domain), "%s", from);
	snprintf(req.spf_domain, sizeof(req.spf_domain), "%s", spf_domain);
	req.spf_result = DMARC_AUTH_PASS;
	done = 0;
	memset(&mres, 0, sizeof(mres));
	dmarc_check(&req, dmarc_cb_fn, NULL);
	/* never from inside the call */
	assert_false(done);
	run_loop();
}

static void
test_dmarc_discovery(void **state)
{
	NEED_DNSMASQ();

	/* the org domain's own record: p */
	dmarc("example.test", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_FAIL);
	assert_int_equal(mres.policy, DMARC_POLICY_REJECT);
	assert_int_equal(mres.disposition, DMARC_POLICY_REJECT);
	assert_string_equal(mres.policy_domain, "example.test");
	assert_int_equal(mres.record.nrua, 1);
	assert_string_equal(mres.record.rua[0], "mailto:agg@example.test");

	/* a subdomain without a record: the org domain's, with sp */
	dmarc("Deep.Sub.Example.Test", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_FAIL);
	assert_string_equal(mres.domain, "deep.sub.example.test");
	assert_string_equal(mres.org_domain, "example.test");
	assert_string_equal(mres.policy_domain, "example.test");
	assert_int_equal(mres.subdomain, 1);
	assert_int_equal(mres.policy, DMARC_POLICY_QUARANTINE);
	assert_int_equal(mres.disposition, DMARC_POLICY_QUARANTINE);
	/* relaxed SPF alignment with the parent passes */
	dmarc("deep.sub.example.test", "bounces.example.test");
	assert_int_equal(mres.result, DMARC_RESULT_PASS);
	assert_int_equal(mres.aligned_spf, 1);
	assert_int_equal(mres.disposition, DMARC_POLICY_NONE);

	/* a subdomain with its own record: that one, p not sp */
	dmarc("own.example.test", "elsewhere.test");
	assert_string_equal(mres.policy_domain, "own.example.test");
	assert_int_equal(mres.subdomain, 0);
	assert_int_equal(mres.policy, DMARC_POLICY_NONE);
	assert_int_equal(mres.result, DMARC_RESULT_FAIL);
	assert_int_equal(mres.disposition, DMARC_POLICY_NONE);

	/* only a non-DMARC TXT there: discarded, the org domain's */
	dmarc("other.example.test", "elsewhere.test");
	assert_string_equal(mres.policy_domain, "example.test");
	assert_int_equal(mres.policy, DMARC_POLICY_QUARANTINE);

	/* several DMARC records: none; one among others: used */
	dmarc("multi.test", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_NONE);
	assert_int_equal(mres.disposition, DMARC_POLICY_NONE);
	dmarc("multi.example.test", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_NONE);
	assert_int_equal(mres.disposition, DMARC_POLICY_NONE);
	dmarc("mixed.test", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_FAIL);
	assert_int_equal(mres.disposition, DMARC_POLICY_REJECT);

	/* nothing anywhere: none */
	dmarc("nothing.test", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_NONE);
	dmarc("a.b.nothing.test", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_NONE);

	/* an unusable record: permerror, no disposition */
	dmarc("bad.test", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_PERMERROR);
	assert_int_equal(mres.disposition, DMARC_POLICY_NONE);

	/* strings of one record joined; pct=0 spares the message */
	dmarc("split.test", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_FAIL);
	assert_int_equal(mres.policy, DMARC_POLICY_QUARANTINE);
	assert_int_equal(mres.disposition, DMARC_POLICY_NONE);
	assert_int_equal(mres.sampled_out, 1);

	/* the DNS failing: temperror, never a fail */
	dmarc("x.broken.test", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_TEMPERROR);
	assert_int_equal(mres.disposition, DMARC_POLICY_NONE);

	/* no valid From domain: permerror, still from the loop */
	dmarc("not a domain", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_PERMERROR);
	dmarc("", "elsewhere.test");
	assert_int_equal(mres.result, DMARC_RESULT_PERMERROR);
}

static void
dnsbl_cb_fn(void *arg, const struct dnsbl_result *r)
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
	dnsbl_check(set, &ss, dnsbl_cb_fn, NULL);
	assert_false(done);
	run_loop();
}

static void
make_set(struct dnsbl_set *set, const char **specs, int threshold,
    int allow_threshold)
{
	char	err[256];

	memset(set, 0, sizeof(*set));
	for (; *specs; specs++) {
		assert_int_equal(dnsbl_parse_list(*specs,
		    &set->list[set->nlist], err, sizeof(err)), 0);
		set->nlist++;
	}
	set->threshold = threshold;
	set->allow_threshold = allow_threshold;
}

static void
test_dnsbl_lists(void **state)
{
	static const char	*specs[] = { "bl.test*2",
	    "bl2.test=127.0.0.[2..4]", "wl.test*-5", "broken.test",
	    NULL };
	struct dnsbl_set	 set;
	char			 text[128];
	uint64_t		 hits, misses;

	NEED_DNSMASQ();
	dnsbl_cache_clear();
	make_set(&set, specs, 2, -3);

	/* listed on bl.test (2); bl2's answer filtered out */
	check(&set, "127.0.0.2");
	assert_int_equal(bres.score, 2);
	assert_int_equal(bres.listed, 1);
	assert_int_equal(bres.allowlisted, 0);
	assert_int_equal(bres.nhit, 1);
	assert_int_equal(bres.hit[0], 0);
	/* the broken list failed, and that was all */
	assert_int_equal(bres.nfailed, 1);
	dnsbl_hits_text(&set, &bres, text, sizeof(text));
	assert_string_equal(text, "bl.test");

	/* on bl.test (2) and the allow list (-5): allowlisted */
	check(&set, "127.0.0.3");
	assert_int_equal(bres.score, -3);
	assert_int_equal(bres.listed, 0);
	assert_int_equal(bres.allowlisted, 1);
	assert_int_equal(bres.nhit, 2);

	/* nowhere */
	check(&set, "127.0.0.5");
	assert_int_equal(bres.score, 0);
	assert_int_equal(bres.listed, 0);
	assert_int_equal(bres.nhit, 0);
	/* the list refused the query (127.255.255.254): not a listing */
	check(&set, "127.0.0.4");
	assert_int_equal(bres.nhit, 0);

	/* IPv6 in nibbles */
	check(&set, "::2");
	assert_int_equal(bres.score, 2);
	assert_int_equal(bres.listed, 1);

	/* asked again: from the cache (TTL 60), the broken list asked anew */
	dnsbl_cache_stats(&hits, &misses);
	assert_int_equal(hits, 0);
	check(&set, "127.0.0.2");
	assert_int_equal(bres.score, 2);
	assert_int_equal(bres.nfailed, 1);
	dnsbl_cache_stats(&hits, &misses);
	assert_int_equal(hits, 3);

	/* all from the cache: the callback still comes from the loop */
	{
		static const char *cached[] = { "bl.test*2", NULL };

		make_set(&set, cached, 1, 0);
		check(&set, "127.0.0.2");
		assert_int_equal(bres.listed, 1);
		assert_int_equal(bres.allowlisted, 0);
	}
	/* a set with no lists at all */
	memset(&set, 0, sizeof(set));
	set.threshold = 1;
	check(&set, "127.0.0.2");
	assert_int_equal(bres.listed, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dmarc_discovery),
		cmocka_unit_test(test_dnsbl_lists),
	};

	log_init(1, 0);
	if ((ev_base = event_base_new()) == NULL)
		return 1;
	if ((conf = config_default()) == NULL)
		return 1;
	if (dmarc_init() == -1)
		return 1;
	return cmocka_run_group_tests(tests, start_dnsmasq, stop_dnsmasq);
}
