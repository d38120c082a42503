/*
 * test_parse_milter.c -- the milter statements of smtpd.conf
 * (config/parse_milter.c): definitions and their socket addresses,
 * defaults, listener and sendmail chains (forward references included),
 * and every error with its exact "FILE:LINE: " prefix.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char last_path[64];

static struct smtpd_config *
parse_text(const char *text, char *err, size_t errlen)
{
	struct smtpd_config *conf;
	size_t len = strlen(text), off = 0;
	ssize_t n;
	int fd;

	snprintf(last_path, sizeof(last_path), "/tmp/test_pmilter.XXXXXX");
	fd = mkstemp(last_path);
	assert_true(fd != -1);
	while (off < len) {
		n = write(fd, text + off, len - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	assert_int_equal(close(fd), 0);
	conf = config_parse(last_path, err, errlen);
	unlink(last_path);
	return conf;
}

static struct smtpd_config *
parse_ok(const char *text)
{
	struct smtpd_config *conf;
	char err[512] = "";

	conf = parse_text(text, err, sizeof(err));
	if (conf == NULL)
		fail_msg("unexpected parse error: %s", err);
	return conf;
}

static void
expect_error(const char *text, int line, const char *message)
{
	struct smtpd_config *conf;
	char err[512] = "", want[512];

	conf = parse_text(text, err, sizeof(err));
	if (conf != NULL) {
		config_free(conf);
		fail_msg("parsed, expected error \"%d: %s\"", line, message);
	}
	snprintf(want, sizeof(want), "%s:%d: %s", last_path, line, message);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got \"%s\"\nwant \"%s...\"", err, want);
}

static void
test_definitions(void **state)
{
	struct smtpd_config *conf;
	struct milter_conf *mc;
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	const struct sockaddr_un *sun;
	struct in6_addr lo6;

	(void)state;
	conf = parse_ok(
	    "milter rspamd \"inet:127.0.0.1:11332\" connect-timeout 5s "
	    "command-timeout 1m eom-timeout 10m on-error accept\n"
	    "milter dkim unix:/run/opendkim/opendkim.sock\n"
	    "milter \"v6\" inet:[::1]:8891 on-error quarantine\n"
	    "milter sm local:/var/run/f.sock on-error reject\n");
	assert_int_equal(conf->nmilters, 4);
	assert_int_equal(conf->nlocal_milters, 0);

	mc = config_find_milter(conf, "rspamd");
	assert_non_null(mc);
	assert_int_equal(mc->index, 0);
	assert_int_equal(mc->line, 1);
	assert_string_equal(mc->address, "inet:127.0.0.1:11332");
	assert_int_equal(mc->ss.ss_family, AF_INET);
	assert_int_equal(mc->sslen, sizeof(struct sockaddr_in));
	sin = (const struct sockaddr_in *)(const void *)&mc->ss;
	assert_int_equal(ntohs(sin->sin_port), 11332);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(mc->connect_timeout, 5);
	assert_int_equal(mc->command_timeout, 60);
	assert_int_equal(mc->eom_timeout, 600);
	assert_int_equal(mc->on_error, MILTER_DEFAULT_ACCEPT);

	/* Postfix's defaults */
	mc = config_find_milter(conf, "dkim");
	assert_non_null(mc);
	assert_int_equal(mc->index, 1);
	assert_int_equal(mc->ss.ss_family, AF_UNIX);
	sun = (const struct sockaddr_un *)(const void *)&mc->ss;
	assert_string_equal(sun->sun_path, "/run/opendkim/opendkim.sock");
	assert_int_equal(mc->sslen, offsetof(struct sockaddr_un, sun_path) +
	    strlen("/run/opendkim/opendkim.sock") + 1);
	assert_int_equal(mc->connect_timeout, 30);
	assert_int_equal(mc->command_timeout, 30);
	assert_int_equal(mc->eom_timeout, 300);
	assert_int_equal(mc->on_error, MILTER_DEFAULT_TEMPFAIL);

	mc = config_milter_at(conf, 2);
	assert_non_null(mc);
	assert_string_equal(mc->name, "v6");
	assert_int_equal(mc->ss.ss_family, AF_INET6);
	sin6 = (const struct sockaddr_in6 *)(const void *)&mc->ss;
	assert_int_equal(ntohs(sin6->sin6_port), 8891);
	assert_int_equal(inet_pton(AF_INET6, "::1", &lo6), 1);
	assert_memory_equal(&sin6->sin6_addr, &lo6, sizeof(lo6));
	assert_int_equal(mc->on_error, MILTER_DEFAULT_QUARANTINE);

	mc = config_milter_at(conf, 3);
	assert_non_null(mc);
	assert_int_equal(mc->ss.ss_family, AF_UNIX);
	assert_int_equal(mc->on_error, MILTER_DEFAULT_REJECT);
	assert_null(config_milter_at(conf, 4));
	assert_null(config_milter_at(conf, -1));
	assert_null(config_find_milter(conf, "nope"));
	assert_string_equal(config_milter_on_error_name(
	    MILTER_DEFAULT_QUARANTINE), "quarantine");
	config_free(conf);
}

/* a name resolved when the file is read: localhost is always there */
static void
test_host_name(void **state)
{
	struct smtpd_config *conf;
	struct milter_conf *mc;
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	(void)state;
	conf = parse_ok("milter m inet:localhost:8891\n");
	mc = config_find_milter(conf, "m");
	assert_non_null(mc);
	if (mc->ss.ss_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)&mc->ss;
		assert_int_equal(ntohs(sin->sin_port), 8891);
		assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	} else {
		assert_int_equal(mc->ss.ss_family, AF_INET6);
		sin6 = (const struct sockaddr_in6 *)(const void *)&mc->ss;
		assert_int_equal(ntohs(sin6->sin6_port), 8891);
	}
	config_free(conf);
}

static void
test_chains(void **state)
{
	struct smtpd_config *conf;
	struct listener *l;
	int n = 0;

	(void)state;
	/* used before defined, commas optional, newlines inside braces */
	conf = parse_ok(
	    "listen on localhost port 2525 milter { b, a\n"
	    "   c }\n"
	    "listen on 127.0.0.1 port 2526 milter c\n"
	    "listen on 127.0.0.1 port 2527\n"
	    "sendmail milter { c a }\n"
	    "milter a inet:127.0.0.1:1\n"
	    "milter b inet:127.0.0.1:2\n"
	    "milter c unix:/run/c.sock\n");
	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (l->port == 2525) {
			/* 127.0.0.1 and ::1: both carry the chain */
			n++;
			assert_int_equal(l->nmilters, 3);
			assert_int_equal(l->milters[0], 1);
			assert_int_equal(l->milters[1], 0);
			assert_int_equal(l->milters[2], 2);
		} else if (l->port == 2526) {
			assert_int_equal(l->nmilters, 1);
			assert_int_equal(l->milters[0], 2);
		} else
			assert_int_equal(l->nmilters, 0);
	}
	assert_true(n >= 1);
	assert_int_equal(conf->nlocal_milters, 2);
	assert_int_equal(conf->local_milters[0], 2);
	assert_int_equal(conf->local_milters[1], 0);
	config_free(conf);

	conf = parse_ok("milter a inet:127.0.0.1:1\nsendmail milter a\n");
	assert_int_equal(conf->nlocal_milters, 1);
	assert_int_equal(conf->local_milters[0], 0);
	config_free(conf);

	/* the longest chain there may be */
	conf = parse_ok(
	    "milter a inet:127.0.0.1:1\nmilter b inet:127.0.0.1:1\n"
	    "milter c inet:127.0.0.1:1\nmilter d inet:127.0.0.1:1\n"
	    "milter e inet:127.0.0.1:1\nmilter f inet:127.0.0.1:1\n"
	    "milter g inet:127.0.0.1:1\nmilter h inet:127.0.0.1:1\n"
	    "sendmail milter { a b c d e f g h }\n");
	assert_int_equal(conf->nlocal_milters, CONF_MILTER_CHAIN);
	assert_int_equal(conf->local_milters[7], 7);
	config_free(conf);
}

static void
test_default_has_none(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = config_default();
	assert_non_null(conf);
	assert_int_equal(conf->nmilters, 0);
	assert_int_equal(conf->nlocal_milters, 0);
	assert_true(TAILQ_EMPTY(&conf->milters));
	config_free(conf);
	conf = parse_ok("# nothing\n");
	assert_int_equal(conf->nmilters, 0);
	config_free(conf);
}

static void
test_errors(void **state)
{
	char long_path[200], text[300];

	(void)state;
	expect_error("milter a inet:127.0.0.1:25\n\nmilter a unix:/x\n", 3,
	    "milter \"a\" already defined at line 1");
	expect_error("milter a inet:127.0.0.1:0\n", 1,
	    "milter \"a\": invalid port \"0\"");
	expect_error("milter a inet:127.0.0.1:65536\n", 1,
	    "milter \"a\": invalid port \"65536\"");
	expect_error("milter a inet:127.0.0.1:99999999999999999999\n", 1,
	    "milter \"a\": invalid port");
	expect_error("milter a inet:127.0.0.1:\n", 1,
	    "milter \"a\": invalid port");
	expect_error("milter a inet:127.0.0.1\n", 1,
	    "milter \"a\": missing port");
	expect_error("milter a inet:::1:25\n", 1,
	    "milter \"a\": an IPv6 address goes in brackets");
	expect_error("milter a inet:[::1\n", 1, "milter \"a\": missing \"]\"");
	expect_error("milter a inet:[::1]\n", 1,
	    "milter \"a\": inet:[IPv6]:PORT expected");
	expect_error("milter a inet:[nope]:25\n", 1,
	    "milter \"a\": invalid IPv6 address nope");
	expect_error("\nmilter a inet:no-such-host.invalid:25\n", 2,
	    "milter \"a\": cannot resolve no-such-host.invalid");
	expect_error("milter a inet:bad..host:25\n", 1,
	    "milter \"a\": invalid host");
	expect_error("milter a tcp:127.0.0.1:25\n", 1,
	    "milter \"a\": unknown address \"tcp:127.0.0.1:25\"");
	expect_error("milter a unix:run/x.sock\n", 1,
	    "milter \"a\": the socket path must be absolute");
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	snprintf(text, sizeof(text), "milter a unix:%s\n", long_path);
	expect_error(text, 1, "milter \"a\": socket path too long");
	expect_error("milter a\n", 1, "missing milter address");
	expect_error("milter\n", 1, "missing milter name");
	expect_error("milter {a} inet:127.0.0.1:25\n", 1, "syntax error");
	expect_error("milter a inet:127.0.0.1:25 timeout 5s\n", 1,
	    "milter \"a\": unknown option \"timeout\"");
	expect_error("milter a inet:127.0.0.1:25 connect-timeout 5x\n", 1,
	    "invalid duration \"5x\" for milter connect-timeout");
	expect_error("milter a inet:127.0.0.1:25 command-timeout 0s\n", 1,
	    "milter command-timeout must be between 1 and");
	expect_error("milter a inet:127.0.0.1:25 eom-timeout\n", 1,
	    "missing duration for milter eom-timeout");
	expect_error("milter a inet:127.0.0.1:25 eom-timeout 1m "
	    "eom-timeout 2m\n", 1, "milter \"a\": eom-timeout given twice");
	expect_error("milter a inet:127.0.0.1:25 on-error maybe\n", 1,
	    "syntax error near \"maybe\", expected tempfail, accept");
	expect_error("milter a inet:127.0.0.1:25 on-error accept "
	    "on-error reject\n", 1, "milter \"a\": on-error given twice");

	/* chains */
	expect_error("\nlisten on 127.0.0.1 port 2525 milter x\n", 2,
	    "no milter \"x\" defined");
	expect_error("milter a unix:/a\n\nsendmail milter { a x }\n", 3,
	    "no milter \"x\" defined");
	expect_error("milter a unix:/a\nsendmail milter { a a }\n", 2,
	    "milter \"a\" named twice in one chain");
	expect_error("listen on 127.0.0.1 port 2525 milter { a b c d e f g h "
	    "i }\n", 1, "at most 8 milters in a chain");
	expect_error("sendmail milter { }\n", 1, "empty milter chain");
	expect_error("sendmail milter { a\n", 2, "missing milter name");
	expect_error("sendmail milter\n", 1, "missing milter name");
	expect_error("sendmail filter a\n", 1,
	    "syntax error near \"filter\", expected milter after sendmail");
	expect_error("milter a unix:/a\nsendmail milter a\nsendmail milter a\n",
	    3, "sendmail milter given twice");
	expect_error("milter a unix:/a\n"
	    "listen on 127.0.0.1 port 2525 milter a milter a\n", 2,
	    "listen option \"milter\" given twice");
}

static void
test_too_many(void **state)
{
	char text[64 * (CONF_MAX_MILTERS + 1)];
	size_t off = 0;
	int i;

	(void)state;
	for (i = 0; i <= CONF_MAX_MILTERS; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "milter m%d inet:127.0.0.1:%d\n", i, 1000 + i);
	expect_error(text, CONF_MAX_MILTERS + 1, "too many milters (at most");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_definitions),
		cmocka_unit_test(test_host_name),
		cmocka_unit_test(test_chains),
		cmocka_unit_test(test_default_has_none),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_too_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
