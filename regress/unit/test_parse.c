/*
 * test_parse.c -- smtpd.conf parser: every statement, the example from
 * the design notes, the error messages (exact "FILE:LINE: " prefix), and
 * the size and duration helpers.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define MB (1024LL * 1024)

/* The name of the file the last parse_text() call wrote. */
static char last_path[64];

/* Write `text' to a fresh temporary file and parse it. */
static struct smtpd_config *
parse_text(const char *text, char *err, size_t errlen)
{
	struct smtpd_config *conf;
	size_t len = strlen(text), off = 0;
	ssize_t n;
	int fd;

	snprintf(last_path, sizeof(last_path), "/tmp/test_parse.XXXXXX");
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

/* Must parse; fails the test with the parser's message if not. */
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

/* Must fail with "FILE:LINE: MESSAGE..." (message compared as a prefix). */
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

static struct listener *
nth_listener(struct smtpd_config *conf, int n)
{
	struct listener *l;

	TAILQ_FOREACH(l, &conf->listeners, entry)
	if (n-- == 0)
		return l;
	fail_msg("no listener %d", n);
	return NULL;
}

static struct match *
nth_match(struct smtpd_config *conf, int n)
{
	struct match *m;

	TAILQ_FOREACH(m, &conf->matches, entry)
	if (n-- == 0)
		return m;
	fail_msg("no match %d", n);
	return NULL;
}

static int
count_listeners(struct smtpd_config *conf)
{
	struct listener *l;
	int n = 0;

	TAILQ_FOREACH(l, &conf->listeners, entry)
	n++;
	return n;
}

static void
assert_addr(const struct listener *l, int family, const char *addr,
	    uint16_t port)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(l->ss.ss_family, family);
	assert_int_equal(l->port, port);
	if (family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)&l->ss;
		assert_int_equal(l->sslen, sizeof(*sin));
		assert_int_equal(ntohs(sin->sin_port), port);
		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
	} else {
		sin6 = (const struct sockaddr_in6 *)(const void *)&l->ss;
		assert_int_equal(l->sslen, sizeof(*sin6));
		assert_int_equal(ntohs(sin6->sin6_port), port);
		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
	}
	assert_string_equal(buf, addr);
}

static void
test_example(void **state)
{
	struct smtpd_config *conf;
	struct action *local, *spool;
	struct match *m;

	(void)state;
	conf = parse_ok(
	    "spool \"/tmp/t/spool\"\n"
	    "socket \"/tmp/t/smtpd.sock\"\n"
	    "smtp workers 2\n"
	    "smtp max-message-size 10M\n"
	    "listen on 127.0.0.1 port 2525\n"
	    "action \"local\" maildir \"~/Maildir\"\n"
	    "action \"spool\" mbox\n"
	    "match from any for domain \"example.test\" action \"local\"\n"
	    "match from any for domain \"mbox.test\" action \"spool\"\n");
	assert_string_equal(conf->spool, "/tmp/t/spool");
	assert_string_equal(conf->socket, "/tmp/t/smtpd.sock");
	assert_int_equal(conf->smtp_workers, 2);
	assert_int_equal(conf->max_message_size, 10 * MB);
	assert_string_equal(conf->path, last_path);

	assert_int_equal(count_listeners(conf), 1);
	assert_addr(nth_listener(conf, 0), AF_INET, "127.0.0.1", 2525);
	assert_string_equal(nth_listener(conf, 0)->ifname, "127.0.0.1");
	assert_int_equal(nth_listener(conf, 0)->tls, LISTEN_TLS_NONE);
	assert_int_equal(nth_listener(conf, 0)->submission, 0);

	local = config_find_action(conf, "local");
	spool = config_find_action(conf, "spool");
	assert_non_null(local);
	assert_non_null(spool);
	assert_int_equal(local->type, ACTION_MAILDIR);
	assert_string_equal(local->path, "~/Maildir");
	assert_int_equal(local->forward_file, 1);
	assert_int_equal(spool->type, ACTION_MBOX);
	assert_null(config_find_action(conf, "nope"));

	m = nth_match(conf, 0);
	assert_int_equal(m->line, 8);
	assert_int_equal(m->from, MATCH_FROM_ANY);
	assert_int_equal(m->for_, MATCH_FOR_DOMAIN);
	assert_false(m->for_crit.is_table);
	assert_string_equal(m->for_crit.value, "example.test");
	assert_ptr_equal(m->action, local);
	m = nth_match(conf, 1);
	assert_int_equal(m->line, 9);
	assert_string_equal(m->for_crit.value, "mbox.test");
	assert_ptr_equal(m->action, spool);

	/* the rest stays at its default */
	assert_int_equal(conf->max_rcpt, 1000);
	assert_int_equal(conf->queue_ttl, 4 * 86400);
	config_free(conf);
}

static void
check_defaults(const struct smtpd_config *conf)
{
	char host[256] = "";

	assert_string_equal(conf->spool, "/var/spool/smtpd");
	assert_string_equal(conf->socket, "/var/run/smtpd.sock");
	gethostname(host, sizeof(host) - 1);
	if (host[0] != '\0')
		assert_string_equal(conf->hostname, host);
	assert_true(conf->mailname[0] != '\0');
	assert_int_equal(conf->smtp_workers, 0);
	assert_int_equal(conf->max_message_size, 35 * MB);
	assert_int_equal(conf->max_rcpt, 1000);
	assert_int_equal(conf->max_line, 1000);
	assert_int_equal(conf->max_sessions, 10000);
	assert_int_equal(conf->max_sessions_per_ip, 100);
	assert_int_equal(conf->max_messages_per_session, 1000);
	assert_int_equal(conf->vrfy, 1);
	assert_int_equal(conf->expn, 1);
	assert_int_equal(conf->timeout_cmd, 300);
	assert_int_equal(conf->timeout_data, 600);
	assert_int_equal(conf->queue_ttl, 4 * 86400);
	assert_int_equal(conf->bounce_warn, 4 * 3600);
	assert_int_equal(conf->retry_local, 60);
	assert_int_equal(conf->retry_remote, 300);
	assert_int_equal(conf->queue_max_inflight, 1000);
	assert_int_equal(conf->mda_max, 64);
	assert_int_equal(conf->mta_max_per_dest, 20);
	assert_int_equal(conf->mta_initial_per_dest, 5);
	assert_int_equal(conf->mta_rate_per_dest, 0);
	assert_int_equal(conf->mta_max_rcpt, 100);
	assert_int_equal(conf->mta_backoff, 30);
	assert_int_equal(conf->mta_sts, 1);
	assert_string_equal(conf->resolver, "");
	assert_true(TAILQ_EMPTY(&conf->tables));
	assert_true(TAILQ_EMPTY(&conf->pkis));
	assert_true(TAILQ_EMPTY(&conf->listeners));
	assert_true(TAILQ_EMPTY(&conf->actions));
	assert_true(TAILQ_EMPTY(&conf->matches));
}

static void
test_defaults(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = config_default();
	assert_non_null(conf);
	check_defaults(conf);
	config_free(conf);

	conf = parse_ok("");
	check_defaults(conf);
	config_free(conf);

	conf = parse_ok("# only a comment\n\n   \n\t# another\n");
	check_defaults(conf);
	config_free(conf);

	config_free(NULL);
}

static void
test_globals(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = parse_ok("spool /var/spool/other\n"
			"socket '/run/smtpd.sock'\n"
			"hostname mx1.example.org\n"
			"mailname example.org\n");
	assert_string_equal(conf->spool, "/var/spool/other");
	assert_string_equal(conf->socket, "/run/smtpd.sock");
	assert_string_equal(conf->hostname, "mx1.example.org");
	assert_string_equal(conf->mailname, "example.org");
	config_free(conf);

	/* without mailname (and no /etc/mailname) it follows hostname */
	if (access("/etc/mailname", F_OK) != 0) {
		conf = parse_ok("hostname mx2.example.org\n");
		assert_string_equal(conf->mailname, "mx2.example.org");
		config_free(conf);
	}
}

static void
test_smtp_options(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = parse_ok("smtp workers 0\n"
			"smtp max-message-size 512k\n"
			"smtp max-rcpt 50\n"
			"smtp max-line 2048\n"
			"smtp max-sessions 500\n"
			"smtp max-sessions-per-ip 7\n"
			"smtp max-messages 3\n"
			"smtp vrfy no\n"
			"smtp expn no\n"
			"smtp timeout 30s\n"
			"smtp data-timeout 2m\n");
	assert_int_equal(conf->smtp_workers, 0);
	assert_int_equal(conf->max_message_size, 512 * 1024);
	assert_int_equal(conf->max_rcpt, 50);
	assert_int_equal(conf->max_line, 2048);
	assert_int_equal(conf->max_sessions, 500);
	assert_int_equal(conf->max_sessions_per_ip, 7);
	assert_int_equal(conf->max_messages_per_session, 3);
	assert_int_equal(conf->vrfy, 0);
	assert_int_equal(conf->expn, 0);
	assert_int_equal(conf->timeout_cmd, 30);
	assert_int_equal(conf->timeout_data, 120);
	config_free(conf);

	conf = parse_ok("smtp vrfy yes\n"
			"smtp expn yes\n"
			"smtp max-message-size 35000000\n"
			"smtp timeout 90\n"
			"smtp max-message-size 1G\n"); /* the last one wins */
	assert_int_equal(conf->vrfy, 1);
	assert_int_equal(conf->expn, 1);
	assert_int_equal(conf->timeout_cmd, 90);
	assert_int_equal(conf->max_message_size, 1024 * MB);
	config_free(conf);
}

static void
test_queue_options(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = parse_ok("queue ttl 5d\n"
			"bounce warn-interval 2h\n"
			"queue retry-local 30s\n"
			"queue retry-remote 10m\n"
			"queue max-inflight 42\n"
			"mda max-processes 8\n"
			"mta max-conn-per-host 3\n");
	assert_int_equal(conf->queue_ttl, 5 * 86400);
	assert_int_equal(conf->bounce_warn, 2 * 3600);
	assert_int_equal(conf->retry_local, 30);
	assert_int_equal(conf->retry_remote, 600);
	assert_int_equal(conf->queue_max_inflight, 42);
	assert_int_equal(conf->mda_max, 8);
	assert_int_equal(conf->mta_max_per_dest, 3);
	config_free(conf);

	conf = parse_ok("bounce warn-interval 0\n");
	assert_int_equal(conf->bounce_warn, 0);
	config_free(conf);

	conf = parse_ok("mta mta-sts no\n");
	assert_int_equal(conf->mta_sts, 0);
	config_free(conf);
}

/* polite delivery: slow start, rate, recipients per message, back-off */
static void
test_mta_polite_options(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = parse_ok("mta initial-conn-per-host 2\n"
			"mta rate-per-dest 10/s\n"
			"mta max-rcpt-per-msg 3\n"
			"mta backoff-per-host 2m\n");
	assert_int_equal(conf->mta_initial_per_dest, 2);
	assert_int_equal(conf->mta_rate_per_dest, 36000);
	assert_int_equal(conf->mta_max_rcpt, 3);
	assert_int_equal(conf->mta_backoff, 120);
	config_free(conf);

	conf = parse_ok("mta rate-per-dest 30/m\n");
	assert_int_equal(conf->mta_rate_per_dest, 1800);
	config_free(conf);
	conf = parse_ok("mta rate-per-dest 1/h\n");
	assert_int_equal(conf->mta_rate_per_dest, 1);
	config_free(conf);
	conf = parse_ok("mta rate-per-dest 0\n");
	assert_int_equal(conf->mta_rate_per_dest, 0);
	config_free(conf);

	expect_error("mta rate-per-dest 10\n", 1,
		     "invalid rate \"10\" for mta rate-per-dest");
	expect_error("mta rate-per-dest 10/d\n", 1, "invalid rate");
	expect_error("mta rate-per-dest 10/\n", 1, "invalid rate");
	expect_error("mta rate-per-dest 10/ss\n", 1, "invalid rate");
	expect_error("mta rate-per-dest /s\n", 1, "invalid rate");
	expect_error("mta rate-per-dest 1001/s\n", 1,
		     "mta rate-per-dest must be between 0 and 3600000");
	expect_error("mta rate-per-dest 99999999999999999999/s\n", 1,
		     "mta rate-per-dest must be between");
	expect_error("mta max-rcpt-per-msg 0\n", 1,
		     "mta max-rcpt-per-msg must be between 1 and 100");
	expect_error("mta max-rcpt-per-msg 101\n", 1,
		     "mta max-rcpt-per-msg must be between 1 and 100");
	expect_error("mta initial-conn-per-host 0\n", 1,
		     "mta initial-conn-per-host must be between 1 and 1000");
	expect_error("mta backoff-per-host 0\n", 1,
		     "mta backoff-per-host must be between");
}

static void
test_resolver(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = parse_ok("resolver 127.0.0.53\n");
	assert_string_equal(conf->resolver, "127.0.0.53");
	assert_int_equal(conf->resolver_port, 53);
	config_free(conf);

	conf = parse_ok("resolver ::1 port 5353\n");
	assert_string_equal(conf->resolver, "::1");
	assert_int_equal(conf->resolver_port, 5353);
	config_free(conf);
}

/* "metrics listen on ADDR [port N]": off unless given, port 9180 */
static void
test_metrics_listen(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = parse_ok("resolver 127.0.0.53\n");
	assert_string_equal(conf->metrics_addr, "");
	config_free(conf);

	conf = parse_ok("metrics listen on 127.0.0.1\n");
	assert_string_equal(conf->metrics_addr, "127.0.0.1");
	assert_int_equal(conf->metrics_port, 9180);
	config_free(conf);

	conf = parse_ok("metrics listen on ::1 port 9100\n");
	assert_string_equal(conf->metrics_addr, "::1");
	assert_int_equal(conf->metrics_port, 9100);
	config_free(conf);

	expect_error("metrics on 127.0.0.1\n", 1,
		     "expected \"listen on\" after metrics");
	expect_error("metrics listen localhost\n", 1,
		     "expected \"on\" after metrics listen");
	expect_error("metrics listen on localhost\n", 1,
		     "metrics listen on: \"localhost\" is not an IPv4 or IPv6 "
		     "address");
	expect_error("metrics listen on 127.0.0.1\n"
		     "metrics listen on 127.0.0.2\n", 2,
		     "metrics listen given twice");
}

/* "dmarc reports from ADDRESS [org NAME]": off unless given */
static void
test_dmarc_reports(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = parse_ok("resolver 127.0.0.53\n");
	assert_string_equal(conf->dmarc_report_from, "");
	config_free(conf);

	conf = parse_ok("dmarc reports from \"dmarc@mx.example.org\"\n");
	assert_string_equal(conf->dmarc_report_from, "dmarc@mx.example.org");
	assert_string_equal(conf->dmarc_report_org, "");
	config_free(conf);

	conf = parse_ok("dmarc policy tag\n"
	    "dmarc reports from \"dmarc@example.org\" org \"Example, Inc.\"\n");
	assert_string_equal(conf->dmarc_report_from, "dmarc@example.org");
	assert_string_equal(conf->dmarc_report_org, "Example, Inc.");
	config_free(conf);

	expect_error("\ndmarc reports\n", 2, "dmarc reports: from");
	expect_error("dmarc reports from \"nobody\"\n", 1,
	    "dmarc reports from \"nobody\": not a user@domain");
	expect_error("dmarc reports from \"a@localhost\"\n", 1,
	    "dmarc reports from \"a@localhost\": not a user@domain");
	expect_error("dmarc reports from \"a@b.example\" org \"\xc3\xa9\"\n", 1,
	    "dmarc reports org: printable ASCII only");
	expect_error("dmarc reports from \"a@b.example\"\n"
	    "dmarc reports from \"c@b.example\"\n", 2,
	    "dmarc reports given twice");
	expect_error("dmarc sometimes\n", 1, "");

	/* TLS-RPT: the same grammar, its own settings, off by default */
	conf = parse_ok("dmarc reports from \"dmarc@example.org\"\n");
	assert_string_equal(conf->tlsrpt_report_from, "");
	config_free(conf);
	conf = parse_ok("tlsrpt reports from \"tls@example.org\" "
	    "org \"Example, Inc.\"\n");
	assert_string_equal(conf->tlsrpt_report_from, "tls@example.org");
	assert_string_equal(conf->tlsrpt_report_org, "Example, Inc.");
	assert_string_equal(conf->dmarc_report_from, "");
	config_free(conf);
	expect_error("tlsrpt reports from \"nobody\"\n", 1,
	    "tlsrpt reports from \"nobody\": not a user@domain");
	expect_error("tlsrpt reports from \"a@b.example\"\n"
	    "tlsrpt reports from \"c@b.example\"\n", 2,
	    "tlsrpt reports given twice");
	expect_error("tlsrpt reports from \"a@b.example\" org \"\"\n", 1,
	    "org name must not be empty");
	expect_error("tlsrpt now\n", 1,
	    "syntax error near \"now\", expected reports after tlsrpt");
}

static void
test_pki(void **state)
{
	struct smtpd_config *conf;
	struct pki *pki;

	(void)state;
	conf = parse_ok("pki mx.example.org cert \"/etc/ssl/mx.crt\"\n"
			"pki mx.example.org key \"/etc/ssl/private/mx.key\"\n"
			"pki other key /k\n"
			"pki other cert /c\n");
	pki = config_find_pki(conf, "mx.example.org");
	assert_non_null(pki);
	assert_string_equal(pki->cert_file, "/etc/ssl/mx.crt");
	assert_string_equal(pki->key_file, "/etc/ssl/private/mx.key");
	pki = config_find_pki(conf, "other");
	assert_non_null(pki);
	assert_string_equal(pki->cert_file, "/c");
	assert_string_equal(pki->key_file, "/k");
	assert_null(config_find_pki(conf, "none"));
	config_free(conf);
}

static void
test_tables(void **state)
{
	struct smtpd_config *conf;
	struct table *t;

	(void)state;
	conf =
	    parse_ok("table aliases file:/etc/mail/aliases\n"
		     "table vdom db:/etc/mail/vdom.db\n"
		     "table plain \"/etc/mail/plain\"\n"
		     "table list { a.example, \"b example\", c }\n"
		     "table map { joe = \"joe@example.org\", \"k 2\" = v2 }\n"
		     "table multi {\n"
		     "    one,\n"
		     "    two\n"
		     "    three\n"
		     "}\n"
		     "table empty { }\n");
	t = config_find_table(conf, "aliases");
	assert_non_null(t);
	assert_int_equal(t->backend, TABLE_FILE);
	assert_string_equal(t->path, "/etc/mail/aliases");
	t = config_find_table(conf, "vdom");
	assert_int_equal(t->backend, TABLE_DB);
	assert_string_equal(t->path, "/etc/mail/vdom.db");
	t = config_find_table(conf, "plain");
	assert_int_equal(t->backend, TABLE_FILE);
	assert_string_equal(t->path, "/etc/mail/plain");

	t = config_find_table(conf, "list");
	assert_int_equal(t->backend, TABLE_INLINE);
	assert_false(t->is_mapping);
	assert_int_equal(t->nentries, 3);
	assert_string_equal(t->entries[0].key, "a.example");
	assert_string_equal(t->entries[1].key, "b example");
	assert_string_equal(t->entries[2].key, "c");
	assert_null(t->entries[0].value);

	t = config_find_table(conf, "map");
	assert_true(t->is_mapping);
	assert_int_equal(t->nentries, 2);
	assert_string_equal(t->entries[0].key, "joe");
	assert_string_equal(t->entries[0].value, "joe@example.org");
	assert_string_equal(t->entries[1].key, "k 2");
	assert_string_equal(t->entries[1].value, "v2");

	t = config_find_table(conf, "multi");
	assert_int_equal(t->nentries, 3);
	assert_string_equal(t->entries[2].key, "three");

	t = config_find_table(conf, "empty");
	assert_int_equal(t->nentries, 0);
	assert_null(config_find_table(conf, "nope"));
	config_free(conf);
}

static void
test_table_large(void **state)
{
	struct smtpd_config *conf;
	struct table *t;
	char *text;
	size_t off;
	int i;

	(void)state;
	text = malloc(64 * 1024);
	assert_non_null(text);
	off = (size_t)sprintf(text, "table big {");
	for (i = 0; i < 1000; i++)
		off += (size_t)sprintf(text + off, "%sk%d = v%d",
				       i ? ", " : " ", i, i);
	sprintf(text + off, " }\n");
	conf = parse_ok(text);
	t = config_find_table(conf, "big");
	assert_int_equal(t->nentries, 1000);
	assert_string_equal(t->entries[999].key, "k999");
	assert_string_equal(t->entries[999].value, "v999");
	config_free(conf);
	free(text);
}

static void
test_listen(void **state)
{
	struct smtpd_config *conf;
	struct listener *l;

	(void)state;
	conf = parse_ok("listen on localhost\n"			 /* 0, 1 */
			"listen on any port 2526\n"		 /* 2, 3 */
			"listen on ::1 port 2527\n"		 /* 4 */
			"listen on all inet4 port 2528\n"	 /* 5 */
			"listen on localhost inet6 port 2529\n"	 /* 6 */
			"listen on 192.0.2.1 submission\n"	 /* 7 */
			"listen on 192.0.2.2 port 587 tag MSA\n" /* 8 */
			"listen on 192.0.2.3 check-sender-domain hostname "
			"mx.example.org\n"); /* 9 */
	assert_int_equal(count_listeners(conf), 10);
	assert_addr(nth_listener(conf, 0), AF_INET, "127.0.0.1", 25);
	assert_addr(nth_listener(conf, 1), AF_INET6, "::1", 25);
	assert_string_equal(nth_listener(conf, 1)->ifname, "localhost");
	assert_addr(nth_listener(conf, 2), AF_INET, "0.0.0.0", 2526);
	assert_addr(nth_listener(conf, 3), AF_INET6, "::", 2526);
	assert_addr(nth_listener(conf, 4), AF_INET6, "::1", 2527);
	assert_addr(nth_listener(conf, 5), AF_INET, "0.0.0.0", 2528);
	assert_addr(nth_listener(conf, 6), AF_INET6, "::1", 2529);
	l = nth_listener(conf, 7);
	assert_addr(l, AF_INET, "192.0.2.1", 587);
	assert_int_equal(l->submission, 1);
	l = nth_listener(conf, 8);
	assert_addr(l, AF_INET, "192.0.2.2", 587);
	assert_int_equal(l->submission, 1);
	assert_string_equal(l->tag, "MSA");
	l = nth_listener(conf, 9);
	assert_int_equal(l->check_sender_domain, 1);
	assert_string_equal(l->hostname, "mx.example.org");
	assert_int_equal(l->submission, 0);
	assert_int_equal(l->auth, LISTEN_AUTH_NONE);
	config_free(conf);

	/* "lo" is localhost too */
	conf = parse_ok("listen on lo port 10025\n");
	assert_int_equal(count_listeners(conf), 2);
	assert_addr(nth_listener(conf, 0), AF_INET, "127.0.0.1", 10025);
	assert_addr(nth_listener(conf, 1), AF_INET6, "::1", 10025);
	config_free(conf);
}

/* "proxy-protocol from": one network or a list; required, checked */
static void
test_listen_proxy(void **state)
{
	struct smtpd_config *conf;
	struct listener *l;

	(void)state;
	conf = parse_ok("listen on 192.0.2.25 proxy-protocol from 192.0.2.10\n"
	    "listen on 192.0.2.25 port 2525 proxy-protocol from {\n"
	    "\t192.0.2.0/28, 2001:db8::/32\n"
	    "\t198.51.100.7 } tag LB\n"
	    "listen on 192.0.2.25 port 2526\n");
	l = nth_listener(conf, 0);
	assert_int_equal(l->proxy_protocol, 1);
	assert_int_equal(l->nproxy_from, 1);
	assert_string_equal(l->proxy_from[0], "192.0.2.10");
	l = nth_listener(conf, 1);
	assert_int_equal(l->nproxy_from, 3);
	assert_string_equal(l->proxy_from[0], "192.0.2.0/28");
	assert_string_equal(l->proxy_from[1], "2001:db8::/32");
	assert_string_equal(l->proxy_from[2], "198.51.100.7");
	assert_string_equal(l->tag, "LB");
	assert_int_equal(nth_listener(conf, 2)->proxy_protocol, 0);
	config_free(conf);

	expect_error("listen on 127.0.0.1 proxy-protocol\n", 1,
	    "missing \"from\" after proxy-protocol");
	expect_error("listen on 127.0.0.1 proxy-protocol from\n", 1,
	    "missing address or network after proxy-protocol from");
	expect_error("listen on 127.0.0.1 proxy-protocol from 10.0.0.0/33\n",
	    1, "invalid address \"10.0.0.0/33\" after proxy-protocol from");
	expect_error("listen on 127.0.0.1 proxy-protocol from lb.example\n", 1,
	    "invalid address \"lb.example\"");
	expect_error("listen on 127.0.0.1 proxy-protocol from { }\n", 1,
	    "no address after proxy-protocol from");
	expect_error("listen on 127.0.0.1 proxy-protocol from 10.0.0.1 "
	    "proxy-protocol from 10.0.0.2\n", 1,
	    "listen option \"proxy-protocol\" given twice");
	expect_error("listen on 127.0.0.1 proxy-protocol from { 1.0.0.1 "
	    "1.0.0.2 1.0.0.3 1.0.0.4 1.0.0.5 1.0.0.6 1.0.0.7 1.0.0.8 1.0.0.9 "
	    "1.0.0.10 1.0.0.11 1.0.0.12 1.0.0.13 1.0.0.14 1.0.0.15 1.0.0.16 "
	    "1.0.0.17 }\n", 1, "at most 16 trusted proxies");
}

/* "smtp client-message-rate RATE" and the like; "smtp rate-exempt" */
static void
test_rate_limits(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = parse_ok("");
	assert_int_equal(conf->rate[RATE_CLIENT_CONN].n, 0);
	assert_int_equal(conf->rate[RATE_USER_RCPT].n, 0);
	assert_int_equal(conf->nrate_exempt, 0);
	config_free(conf);

	conf = parse_ok("smtp client-connection-rate 30/m\n"
	    "smtp client-message-rate 10/h\n"
	    "smtp client-rcpt-rate 2/s\n"
	    "smtp client-auth-failures 5/10m\n"
	    "smtp user-message-rate 100/d\n"
	    "smtp user-rcpt-rate 0\n"
	    "smtp rate-exempt { 10.0.0.0/8, 2001:db8::/32\n 192.0.2.1 }\n");
	assert_int_equal(conf->rate[RATE_CLIENT_CONN].n, 30);
	assert_int_equal(conf->rate[RATE_CLIENT_CONN].period, 60);
	assert_int_equal(conf->rate[RATE_CLIENT_MSG].n, 10);
	assert_int_equal(conf->rate[RATE_CLIENT_MSG].period, 3600);
	assert_int_equal(conf->rate[RATE_CLIENT_RCPT].n, 2);
	assert_int_equal(conf->rate[RATE_CLIENT_RCPT].period, 1);
	assert_int_equal(conf->rate[RATE_CLIENT_AUTHFAIL].n, 5);
	assert_int_equal(conf->rate[RATE_CLIENT_AUTHFAIL].period, 600);
	assert_int_equal(conf->rate[RATE_USER_MSG].n, 100);
	assert_int_equal(conf->rate[RATE_USER_MSG].period, 86400);
	assert_int_equal(conf->rate[RATE_USER_RCPT].n, 0);
	assert_int_equal(conf->nrate_exempt, 3);
	assert_string_equal(conf->rate_exempt[0], "10.0.0.0/8");
	assert_string_equal(conf->rate_exempt[1], "2001:db8::/32");
	assert_string_equal(conf->rate_exempt[2], "192.0.2.1");
	config_free(conf);

	conf = parse_ok("smtp rate-exempt 127.0.0.0/8\n");
	assert_int_equal(conf->nrate_exempt, 1);
	config_free(conf);

	expect_error("smtp client-message-rate 10\n", 1,
	    "invalid rate \"10\" for smtp client-message-rate");
	expect_error("smtp client-message-rate 10/x\n", 1, "invalid rate");
	expect_error("smtp client-message-rate /m\n", 1, "invalid rate");
	expect_error("smtp client-message-rate 10/10\n", 1, "invalid rate");
	expect_error("smtp client-message-rate 10/2d\n", 1,
	    "the window of smtp client-message-rate must be at most a day");
	expect_error("smtp client-rcpt-rate 1001/s\n", 1,
	    "smtp client-rcpt-rate must be at most 1000/s");
	expect_error("smtp client-rcpt-rate 2000000/h\n", 1,
	    "smtp client-rcpt-rate must be at most 1000000 per window");
	expect_error("smtp user-rcpt-rate\n", 1, "missing rate for smtp "
	    "user-rcpt-rate");
	expect_error("smtp rate-exempt\n", 1, "missing address or network "
	    "after smtp rate-exempt");
	expect_error("smtp rate-exempt 10.0.0.0/33\n", 1,
	    "invalid address \"10.0.0.0/33\" after smtp rate-exempt");
	expect_error("smtp rate-exempt 10.0.0.1\nsmtp rate-exempt 10.0.0.2\n",
	    2, "smtp rate-exempt given twice");
	expect_error("smtp rate-exempt { 1.0.0.1 "
	    "1.0.0.2 1.0.0.3 1.0.0.4 1.0.0.5 1.0.0.6 1.0.0.7 1.0.0.8 1.0.0.9 "
	    "1.0.0.10 1.0.0.11 1.0.0.12 1.0.0.13 1.0.0.14 1.0.0.15 1.0.0.16 "
	    "1.0.0.17 }\n", 1, "at most 16 exempt networks");
}

static void
test_listen_tls_auth(void **state)
{
	struct smtpd_config *conf;
	struct listener *l;

	(void)state;
	conf = parse_ok(
	    "hostname mx.example.org\n"
	    "table creds { joe = \"$2b$hash\" }\n"
	    "table senders { joe = joe@example.org }\n"
	    /* any order, pki found by the global hostname */
	    "listen on 127.0.0.1 auth <creds> tls port 2525\n"
	    "listen on 127.0.0.1 smtps pki other auth-optional\n"
	    "listen on 127.0.0.1 tls-require hostname other submission "
	    "senders <senders> auth\n"
	    "pki mx.example.org cert /c1\n"
	    "pki mx.example.org key /k1\n"
	    "pki other cert /c2\n"
	    "pki other key /k2\n");
	assert_int_equal(count_listeners(conf), 3);
	l = nth_listener(conf, 0);
	assert_addr(l, AF_INET, "127.0.0.1", 2525);
	assert_int_equal(l->tls, LISTEN_TLS_STARTTLS);
	assert_string_equal(l->pki, "mx.example.org");
	assert_int_equal(l->auth, LISTEN_AUTH_REQUIRE);
	assert_string_equal(l->auth_table, "creds");

	l = nth_listener(conf, 1);
	assert_addr(l, AF_INET, "127.0.0.1", 465);
	assert_int_equal(l->tls, LISTEN_TLS_SMTPS);
	assert_string_equal(l->pki, "other");
	assert_int_equal(l->auth, LISTEN_AUTH_OPTIONAL);
	assert_string_equal(l->auth_table, "");

	/* pki found by the listener's own hostname */
	l = nth_listener(conf, 2);
	assert_addr(l, AF_INET, "127.0.0.1", 587);
	assert_int_equal(l->tls, LISTEN_TLS_REQUIRE);
	assert_string_equal(l->pki, "other");
	assert_int_equal(l->submission, 1);
	assert_int_equal(l->senders_checked, 1);
	assert_string_equal(l->senders_table, "senders");
	assert_int_equal(l->auth, LISTEN_AUTH_REQUIRE);
	config_free(conf);
}

static void
test_actions(void **state)
{
	struct smtpd_config *conf;
	struct action *a;

	(void)state;
	conf = parse_ok(
	    "table aliases file:/etc/mail/aliases\n"
	    "table virt { \"@example.org\" = joe }\n"
	    "table users file:/etc/mail/users\n"
	    "table creds { label = \"user:pass\" }\n"
	    "action md maildir\n"
	    "action md2 maildir alias <aliases> forward-file no\n"
	    "action md3 maildir \"/var/vmail/%{user.username}\" "
	    "virtual <virt> userbase <users> user vmail\n"
	    "action box mbox alias <aliases>\n"
	    "action prog mda \"/usr/bin/procmail -f -\"\n"
	    "action lm lmtp \"/var/run/dovecot/lmtp\"\n"
	    "action lm2 lmtp 127.0.0.1:24\n"
	    "action out relay\n"
	    "action smart relay host \"smtp+tls://label@smtp.example.org:587\" "
	    "auth <creds> helo mx.example.org src 192.0.2.1\n"
	    "action v relay tls verify host smtp://[2001:db8::1]:25\n"
	    "action n relay tls no\n"
	    "action s relay host smtps://smtp.example.org tls\n"
	    "action t relay tls\n"
	    "action u relay host smtp+notls://10.0.0.1\n"
	    "action \"relay\" relay host lmtp://lmtp.example.org:24\n");

	a = config_find_action(conf, "md");
	assert_int_equal(a->type, ACTION_MAILDIR);
	assert_string_equal(a->path, "");
	assert_int_equal(a->forward_file, 1);
	a = config_find_action(conf, "md2");
	assert_string_equal(a->path, "");
	assert_string_equal(a->alias_table, "aliases");
	assert_int_equal(a->forward_file, 0);
	a = config_find_action(conf, "md3");
	assert_string_equal(a->path, "/var/vmail/%{user.username}");
	assert_string_equal(a->virtual_table, "virt");
	assert_string_equal(a->userbase_table, "users");
	assert_string_equal(a->user, "vmail");
	a = config_find_action(conf, "box");
	assert_int_equal(a->type, ACTION_MBOX);
	assert_string_equal(a->alias_table, "aliases");
	a = config_find_action(conf, "prog");
	assert_int_equal(a->type, ACTION_MDA);
	assert_string_equal(a->path, "/usr/bin/procmail -f -");
	a = config_find_action(conf, "lm");
	assert_int_equal(a->type, ACTION_LMTP);
	assert_string_equal(a->path, "/var/run/dovecot/lmtp");
	a = config_find_action(conf, "lm2");
	assert_string_equal(a->path, "127.0.0.1:24");

	a = config_find_action(conf, "out");
	assert_int_equal(a->type, ACTION_RELAY);
	assert_string_equal(a->relay_host, "");
	assert_int_equal(a->relay_tls, RELAY_TLS_OPPORTUNISTIC);
	a = config_find_action(conf, "smart");
	assert_string_equal(a->relay_host,
			    "smtp+tls://label@smtp.example.org:587");
	assert_string_equal(a->relay_auth_table, "creds");
	assert_string_equal(a->helo, "mx.example.org");
	assert_string_equal(a->relay_src, "192.0.2.1");
	assert_int_equal(a->relay_tls, RELAY_TLS_REQUIRE);
	a = config_find_action(conf, "v");
	assert_int_equal(a->relay_tls, RELAY_TLS_VERIFY);
	assert_string_equal(a->relay_host, "smtp://[2001:db8::1]:25");
	a = config_find_action(conf, "n");
	assert_int_equal(a->relay_tls, RELAY_TLS_NO);
	a = config_find_action(conf, "s");
	assert_int_equal(a->relay_tls, RELAY_TLS_VERIFY);
	a = config_find_action(conf, "t");
	assert_int_equal(a->relay_tls, RELAY_TLS_REQUIRE);
	a = config_find_action(conf, "u");
	assert_int_equal(a->relay_tls, RELAY_TLS_NO);
	a = config_find_action(conf, "relay");
	assert_string_equal(a->relay_host, "lmtp://lmtp.example.org:24");
	config_free(conf);
}

static void
test_match(void **state)
{
	struct smtpd_config *conf;
	struct match *m;
	struct action *a;

	(void)state;
	conf = parse_ok(
	    "table nets { 192.0.2.0/24 }\n"
	    "table doms { example.org, example.net }\n"
	    "table rcpts { a@example.org }\n"
	    "table users { joe }\n"
	    "table senders { \"@example.com\" }\n"
	    "table helos { mx.example.com }\n"
	    "action deliver mbox\n"
	    "action out relay\n"
	    "match for local action deliver\n"
	    "match from any for domain <doms> action deliver\n"
	    "match from src <nets> for any action out\n"
	    "match from src \"10.0.0.0/8\" for any action out\n"
	    "match from src 2001:db8::/32 for any action out\n"
	    "match from rdns for any reject\n"
	    "match from rdns <doms> for any reject\n"
	    "match from auth for any action out\n"
	    "match from auth <users> for any action out\n"
	    "match from socket for any action out\n"
	    "match !from local for rcpt-to <rcpts> action deliver\n"
	    "match for any !auth <users> mail-from <senders> tls "
	    "helo <helos> from any action out\n"
	    "match !for domain \"x.example\" mail-from \"joe@example.com\" "
	    "!tls !helo \"bad.example\" auth \"joe\" action deliver\n"
	    "match from any for any reject\n");
	a = config_find_action(conf, "deliver");

	m = nth_match(conf, 0);
	assert_int_equal(m->line, 9);
	assert_int_equal(m->from, MATCH_FROM_LOCAL); /* default */
	assert_false(m->from_crit.set);
	assert_int_equal(m->for_, MATCH_FOR_LOCAL);
	assert_true(m->for_crit.set);
	assert_ptr_equal(m->action, a);
	assert_false(m->reject);

	m = nth_match(conf, 1);
	assert_int_equal(m->for_, MATCH_FOR_DOMAIN);
	assert_true(m->for_crit.is_table);
	assert_string_equal(m->for_crit.value, "doms");

	m = nth_match(conf, 2);
	assert_int_equal(m->from, MATCH_FROM_SRC);
	assert_true(m->from_crit.is_table);
	assert_string_equal(m->from_crit.value, "nets");
	assert_int_equal(m->for_, MATCH_FOR_ANY);
	m = nth_match(conf, 3);
	assert_false(m->from_crit.is_table);
	assert_string_equal(m->from_crit.value, "10.0.0.0/8");
	m = nth_match(conf, 4);
	assert_string_equal(m->from_crit.value, "2001:db8::/32");

	m = nth_match(conf, 5);
	assert_int_equal(m->from, MATCH_FROM_RDNS);
	assert_string_equal(m->from_crit.value, "");
	assert_true(m->reject);
	assert_null(m->action);
	m = nth_match(conf, 6);
	assert_string_equal(m->from_crit.value, "doms");

	m = nth_match(conf, 7);
	assert_int_equal(m->from, MATCH_FROM_AUTH);
	assert_string_equal(m->from_crit.value, "");
	m = nth_match(conf, 8);
	assert_int_equal(m->from, MATCH_FROM_AUTH);
	assert_true(m->from_crit.is_table);
	m = nth_match(conf, 9);
	assert_int_equal(m->from, MATCH_FROM_SOCKET);

	m = nth_match(conf, 10);
	assert_true(m->from_crit.negate);
	assert_int_equal(m->from, MATCH_FROM_LOCAL);
	assert_int_equal(m->for_, MATCH_FOR_RCPT);
	assert_string_equal(m->for_crit.value, "rcpts");

	m = nth_match(conf, 11);
	assert_int_equal(m->from, MATCH_FROM_ANY);
	assert_int_equal(m->for_, MATCH_FOR_ANY);
	assert_true(m->auth.set);
	assert_true(m->auth.negate);
	assert_true(m->auth.is_table);
	assert_string_equal(m->auth.value, "users");
	assert_true(m->mail_from.set);
	assert_true(m->mail_from.is_table);
	assert_string_equal(m->mail_from.value, "senders");
	assert_true(m->tls.set);
	assert_false(m->tls.negate);
	assert_true(m->helo.set);
	assert_string_equal(m->helo.value, "helos");

	m = nth_match(conf, 12);
	assert_int_equal(m->from, MATCH_FROM_LOCAL);
	assert_true(m->for_crit.negate);
	assert_string_equal(m->for_crit.value, "x.example");
	assert_false(m->mail_from.is_table);
	assert_string_equal(m->mail_from.value, "joe@example.com");
	assert_true(m->tls.negate);
	assert_true(m->helo.negate);
	assert_string_equal(m->helo.value, "bad.example");
	assert_string_equal(m->auth.value, "joe");
	assert_ptr_equal(m->action, a);

	m = nth_match(conf, 13);
	assert_int_equal(m->line, 22);
	assert_true(m->reject);
	config_free(conf);
}

/* match tag NAME | <table>, negated too; a tag value is required */
static void
test_match_tag(void **state)
{
	struct smtpd_config *conf;
	struct match *m;

	(void)state;
	conf = parse_ok(
	    "table tags { FILTERED }\n"
	    "listen on 127.0.0.1 port 10028 tag FILTERED\n"
	    "action out relay\n"
	    "match from any tag FILTERED for any action out\n"
	    "match from any !tag <tags> for any reject\n");
	m = nth_match(conf, 0);
	assert_true(m->tag.set);
	assert_false(m->tag.negate);
	assert_false(m->tag.is_table);
	assert_string_equal(m->tag.value, "FILTERED");
	m = nth_match(conf, 1);
	assert_true(m->tag.set && m->tag.negate && m->tag.is_table);
	assert_string_equal(m->tag.value, "tags");
	config_free(conf);
	expect_error("action out relay\nmatch from any tag action out\n", 2,
	    "syntax error near \"action\", expected <table> or name after "
	    "tag");
	expect_error("action out relay\n"
	    "match tag A tag B for any action out\n", 2,
	    "match criterion \"tag\" given twice");
}

static void
test_lexer(void **state)
{
	struct smtpd_config *conf;
	struct table *t;

	(void)state;
	conf = parse_ok("# comment\n"
			"spool \"/a b/\\\"q\\\"\\\\\"   # trailing comment\n"
			"hostname \\\n"
			"    mx.example.org\n"
			"table t { 'single', \"x#y\", \"line\\\n"
			"continued\" }\r\n"
			"smtp max-rcpt\t\t77 \r\n"
			"action \"a\" mbox\n"
			"match from any \\\n"
			"  for any \\\n"
			"  action \"a\""); /* no final newline */
	assert_string_equal(conf->spool, "/a b/\"q\"\\");
	assert_string_equal(conf->hostname, "mx.example.org");
	t = config_find_table(conf, "t");
	assert_int_equal(t->nentries, 3);
	assert_string_equal(t->entries[0].key, "single");
	assert_string_equal(t->entries[1].key, "x#y");
	assert_string_equal(t->entries[2].key, "linecontinued");
	assert_int_equal(conf->max_rcpt, 77);
	assert_int_equal(nth_match(conf, 0)->line, 9);
	config_free(conf);
}

static void
test_macros(void **state)
{
	struct smtpd_config *conf;

	(void)state;
	conf = parse_ok("lan_addr = \"127.0.0.1\"\n"
			"size=20M\n"
			"name = \"mx.example.org\"\n"
			"name = \"mx2.example.org\"\n" /* redefinition wins */
			"listen on $lan_addr port 2525\n"
			"smtp max-message-size $size\n"
			"hostname $name\n"
			"spool \"/$not_expanded\"\n");
	assert_addr(nth_listener(conf, 0), AF_INET, "127.0.0.1", 2525);
	assert_int_equal(conf->max_message_size, 20 * MB);
	assert_string_equal(conf->hostname, "mx2.example.org");
	assert_string_equal(conf->spool, "/$not_expanded");
	config_free(conf);
}

static void
test_parse_file(void **state)
{
	static const char text[] = "smtp max-rcpt 12\nfoo\n";
	struct smtpd_config *conf;
	char err[256];
	FILE *fp;

	(void)state;
	fp = fmemopen((void *)(uintptr_t)text, strlen(text) - 4, "r");
	assert_non_null(fp);
	conf = config_parse_file(fp, "mem", err, sizeof(err));
	fclose(fp);
	assert_non_null(conf);
	assert_int_equal(conf->max_rcpt, 12);
	assert_string_equal(conf->path, "mem");
	config_free(conf);

	fp = fmemopen((void *)(uintptr_t)text, strlen(text), "r");
	assert_non_null(fp);
	conf = config_parse_file(fp, "mem", err, sizeof(err));
	fclose(fp);
	assert_null(conf);
	assert_string_equal(err, "mem:2: syntax error near \"foo\"");

	/* a NULL or empty error buffer is allowed */
	fp = fmemopen((void *)(uintptr_t)text, strlen(text), "r");
	assert_non_null(fp);
	assert_null(config_parse_file(fp, "mem", NULL, 0));
	fclose(fp);
}

static void
test_errors(void **state)
{
	char long_path[2100], text[2200];

	(void)state;
	expect_error("foo bar\n", 1, "syntax error near \"foo\"");
	expect_error("\n\n# c\nspool /x\nbogus\n", 5,
		     "syntax error near \"bogus\"");
	expect_error("action \"x\" foo\n", 1, "unknown action \"foo\"");
	expect_error("action a mbox\n\nmatch from any for any action "
		     "\"nope\"\n",
		     3, "no action \"nope\" defined");
	expect_error("table t { a }\ntable t { b }\n", 2,
		     "table \"t\" already defined");
	expect_error("action a mbox\naction a mbox\n", 2,
		     "action \"a\" already defined");
	expect_error("action a mbox alias <missing>\n", 1,
		     "no table \"missing\" defined");
	expect_error("action a mbox\nmatch from src <nets> action a\n", 2,
		     "no table \"nets\" defined");
	expect_error("hostname mx.example.org\nlisten on 127.0.0.1 tls\n", 2,
		     "tls requires a pki");
	expect_error("listen on 127.0.0.1 smtps pki nope\n", 1,
		     "no pki \"nope\" defined");
	expect_error("pki a cert /c\n", 1, "pki \"a\" has no key");
	expect_error("pki a cert /c\npki a cert /d\n", 2,
		     "pki \"a\": cert already specified");
	expect_error("smtp max-rcpt 0\n", 1,
		     "smtp max-rcpt must be between 1 and 100000");
	expect_error("smtp max-rcpt 99999999999999999999999\n", 1,
		     "smtp max-rcpt must be between 1 and 100000");
	expect_error("smtp max-rcpt -1\n", 1,
		     "invalid number \"-1\" for smtp max-rcpt");
	expect_error("smtp max-message-size 10X\n", 1,
		     "invalid size \"10X\" for smtp max-message-size");
	expect_error("smtp max-message-size 99999999999999G\n", 1,
		     "smtp max-message-size must be between");
	expect_error("smtp timeout 5x\n", 1,
		     "invalid duration \"5x\" for smtp timeout");
	expect_error("smtp timeout 0\n", 1,
		     "smtp timeout must be between 1 and 86400");
	expect_error("smtp vrfy maybe\n", 1,
		     "syntax error near \"maybe\", expected yes or no");
	expect_error("smtp frobnicate 1\n", 1,
		     "unknown smtp option \"frobnicate\"");
	expect_error("smtp max-rcpt\n", 1, "missing number for smtp max-rcpt");
	expect_error("listen on 127.0.0.1 port 70000\n", 1,
		     "listen port must be between 1 and 65535");
	expect_error("listen on 127.0.0.1\nlisten on 127.0.0.1\n", 2,
		     "duplicate listener on 127.0.0.1 port 25");
	expect_error("listen on 300.1.1.1\n", 1,
		     "unknown interface or address \"300.1.1.1\"");
	expect_error("listen on ::1 inet4\n", 1, "::1 is not an inet4");
	expect_error("listen on lo port 25 port 26\n", 1,
		     "listen option \"port\" given twice");
	expect_error("listen on lo tls smtps\n", 1,
		     "only one of tls, tls-require and smtps");
	expect_error("listen 127.0.0.1\n", 1,
		     "syntax error near \"127.0.0.1\", expected \"on\"");
	expect_error("listen on lo frob\n", 1, "syntax error near \"frob\"");

	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	snprintf(text, sizeof(text), "\nspool \"%s\"\n", long_path);
	expect_error(text, 2, "path for spool is too long");
	expect_error("spool relative/path\n", 1,
		     "spool must be an absolute path");
	expect_error("spool \"\"\n", 1, "path for spool must not be empty");

	expect_error("\nspool \"/unterminated\n", 2,
		     "unterminated quoted string");
	expect_error("table t { a, b\n", 1, "table \"t\": missing \"}\"");
	expect_error("table t { a, b = c }\n", 1,
		     "table \"t\": cannot mix list entries");
	expect_error("table t { a = 1, a = 2 }\n", 1,
		     "table \"t\": duplicate key \"a\"");
	expect_error("table t ftp:/x\n", 1, "unknown table source");
	expect_error("table t file:relative\n", 1,
		     "table \"t\": path must be absolute");
	expect_error("table t { a }\naction a mbox alias <t>\n", 2,
		     "table \"t\" must be a key = value mapping");

	expect_error("table a { x = y }\ntable v { x = y }\n"
		     "action a mbox alias <a> virtual <v>\n",
		     3, "only one of alias and virtual");
	expect_error(
	    "action r relay host \"http://example.org\"\n", 1,
	    "invalid relay host \"http://example.org\": unknown scheme");
	expect_error(
	    "action r relay host smtp://example.org:0\n", 1,
	    "invalid relay host \"smtp://example.org:0\": invalid port");
	expect_error("action r relay host \"smtp://\"\n", 1,
		     "invalid relay host \"smtp://\": missing host");
	expect_error("table c { a = b }\naction r relay auth <c>\n", 2,
		     "relay auth requires a relay host");
	/* issue 15: AUTH is offered only inside TLS; CRAM-MD5 needs a table */
	expect_error("hostname a.example\n\nlisten on 127.0.0.1 auth\n", 3,
		     "listen on 127.0.0.1: auth without tls, tls-require or "
		     "smtps: AUTH is only offered inside TLS");
	expect_error("table c { a = b }\n"
		     "listen on 127.0.0.1 port 2525 auth-optional <c>\n", 2,
		     "listen on 127.0.0.1: auth without tls");
	expect_error("pki a cert /c\npki a key /k\n"
		     "listen on 127.0.0.1 tls pki a auth auth-cram-md5\n", 3,
		     "listen on 127.0.0.1: auth-cram-md5 needs a credentials "
		     "table");
	expect_error("action r relay host smtps://a.example tls no\n", 1,
		     "\"tls no\" contradicts");
	expect_error("action r relay alias <x>\n", 1,
		     "\"alias\" is not valid for a relay action");
	expect_error("action r mbox host smtp://x\n", 1,
		     "\"host\" is only valid for a relay action");
	expect_error("action r mda\n", 1, "missing command after mda");
	expect_error("action r lmtp relative\n", 1, "lmtp destination must be");

	expect_error("action a mbox\nmatch from any for any\n", 2,
		     "match rule needs \"action NAME\", \"reject\" or \"defer\"");
	expect_error("action a mbox\nmatch from src \"10.0.0.0/33\" "
		     "action a\n",
		     2, "invalid address \"10.0.0.0/33\" after src");
	expect_error("action a mbox\nmatch from any from local action a\n", 2,
		     "match criterion \"from\" given twice");
	expect_error("action a mbox\nmatch from nowhere action a\n", 2,
		     "unknown \"from\" criterion \"nowhere\"");
	expect_error(
	    "action a mbox\nmatch ! action a\n", 2,
	    "syntax error near \"action\", expected criterion after \"!\"");
	expect_error(
	    "action a mbox\nmatch for domain action a\n", 2,
	    "syntax error near \"action\", expected <table> or domain");
	expect_error("action a mbox\nmatch for domain\n", 2,
		     "missing <table> or domain after domain");

	expect_error("listen on $nope\n", 1, "macro \"nope\" not defined");
	expect_error("1abc = \"x\"\n", 1, "invalid macro name \"1abc\"");
	expect_error("hostname \"bad host\"\n", 1,
		     "invalid hostname \"bad host\"");
	expect_error("resolver dns.example.org\n", 1,
		     "resolver must be an IPv4 or IPv6 address");
	expect_error("spool /x extra\n", 1, "syntax error near \"extra\"");
	expect_error("spool /x\x01\n", 1, "invalid character 0x01");
	expect_error("table t { a }\n\n\nmatch from src <t\n", 4,
		     "invalid table reference");

	/* errors after continuation lines are reported on the right line */
	expect_error("smtp \\\n  max-rcpt \\\n  abc\n", 3,
		     "invalid number \"abc\"");
}

static void
test_missing_file(void **state)
{
	char err[256];

	(void)state;
	assert_null(config_parse("/nonexistent/smtpd.conf", err, sizeof(err)));
	assert_string_equal(
	    err, "/nonexistent/smtpd.conf:0: No such file or directory");
}

static void
test_size(void **state)
{
	(void)state;
	assert_int_equal(config_parse_size("0"), 0);
	assert_int_equal(config_parse_size("1000"), 1000);
	assert_int_equal(config_parse_size("35000000"), 35000000);
	assert_int_equal(config_parse_size("512k"), 512 * 1024);
	assert_int_equal(config_parse_size("512K"), 512 * 1024);
	assert_int_equal(config_parse_size("10M"), 10 * MB);
	assert_int_equal(config_parse_size("10m"), 10 * MB);
	assert_int_equal(config_parse_size("10MB"), 10 * MB);
	assert_int_equal(config_parse_size("1G"), 1024 * MB);
	assert_int_equal(config_parse_size("2T"), 2 * 1024 * 1024 * MB);
	assert_int_equal(config_parse_size("100b"), 100);
	assert_int_equal(config_parse_size(""), -1);
	assert_int_equal(config_parse_size("M"), -1);
	assert_int_equal(config_parse_size("-1"), -1);
	assert_int_equal(config_parse_size("+1"), -1);
	assert_int_equal(config_parse_size(" 1"), -1);
	assert_int_equal(config_parse_size("1 "), -1);
	assert_int_equal(config_parse_size("1.5M"), -1);
	assert_int_equal(config_parse_size("10X"), -1);
	assert_int_equal(config_parse_size("10MM"), -1);
	assert_int_equal(config_parse_size("9223372036854775807"),
			 9223372036854775807LL);
	assert_int_equal(config_parse_size("9223372036854775808"), -1);
	assert_int_equal(config_parse_size("9999999999G"), -1);
	assert_int_equal(config_parse_size(NULL), -1);
}

static void
test_duration(void **state)
{
	(void)state;
	assert_int_equal(config_parse_duration("0"), 0);
	assert_int_equal(config_parse_duration("60"), 60);
	assert_int_equal(config_parse_duration("30s"), 30);
	assert_int_equal(config_parse_duration("5m"), 300);
	assert_int_equal(config_parse_duration("4h"), 4 * 3600);
	assert_int_equal(config_parse_duration("4d"), 4 * 86400);
	assert_int_equal(config_parse_duration("1w"), 7 * 86400);
	assert_int_equal(config_parse_duration(""), -1);
	assert_int_equal(config_parse_duration("s"), -1);
	assert_int_equal(config_parse_duration("-5m"), -1);
	assert_int_equal(config_parse_duration("5 m"), -1);
	assert_int_equal(config_parse_duration("5M"), -1);
	assert_int_equal(config_parse_duration("5ms"), -1);
	assert_int_equal(config_parse_duration("1.5h"), -1);
	assert_int_equal(config_parse_duration("106751991167301d"), -1);
	assert_int_equal(config_parse_duration(NULL), -1);
}

/*
 * config_forget_secrets(): lookup forgets only the tables a relay's auth
 * alone names; every other process forgets every inline table.  Names
 * stay, so references still resolve.
 */
static void
test_forget_secrets(void **state)
{
	static const char *text =
	    "table creds { alice = \"$6$salt$hash\" }\n"
	    "table relay { lbl = \"user:relaypass\" }\n"
	    "table both { lbl = \"user:both\" }\n"
	    "table aliases { postmaster = root }\n"
	    "listen on 127.0.0.1 port 2525 auth <creds> auth-plaintext\n"
	    "action \"out\" relay host smtp+tls://lbl@192.0.2.1 "
	    "auth <relay>\n"
	    "action \"out2\" relay host smtp+tls://lbl@192.0.2.2 "
	    "auth <both>\n"
	    "action \"local\" mbox alias <aliases>\n"
	    "match from any for domain <both> action \"local\"\n"
	    "match from auth for any action \"out\"\n";
	struct smtpd_config *conf;

	conf = parse_ok(text);
	config_forget_secrets(conf, CONF_FORGET_RELAY_AUTH);
	assert_int_equal(config_find_table(conf, "creds")->nentries, 1);
	assert_int_equal(config_find_table(conf, "relay")->nentries, 0);
	assert_true(config_find_table(conf, "relay")->forgotten);
	assert_null(config_find_table(conf, "relay")->entries);
	/* "both" is also a domain list of a match rule: lookup's too */
	assert_int_equal(config_find_table(conf, "both")->nentries, 1);
	assert_int_equal(config_find_table(conf, "aliases")->nentries, 1);
	assert_false(config_find_table(conf, "creds")->forgotten);
	config_forget_secrets(conf, CONF_FORGET_ALL);
	assert_int_equal(config_find_table(conf, "creds")->nentries, 0);
	assert_int_equal(config_find_table(conf, "both")->nentries, 0);
	assert_int_equal(config_find_table(conf, "aliases")->nentries, 0);
	assert_true(config_find_table(conf, "aliases")->forgotten);
	config_free(conf);
}

/* issue 18: the mail authentication statements and options */
static void
test_mail_auth(void **state)
{
	struct smtpd_config	*c;
	struct listener		*l;
	struct match		*m;
	struct action		*a;

	(void)state;
	c = parse_ok("table k { \"example.org\" = \"s:/k.pem\" }\n"
	    "dkim sign <k>\n"
	    "dnsbl \"zen.example=127.0.0.[2..11]*3\" \"ok.example*-2\" "
	    "threshold 3\n"
	    "dmarc policy quarantine\n"
	    "listen on 127.0.0.1 checks all-clients\n"
	    "listen on 127.0.0.1 port 2525 no-checks\n"
	    "listen on 127.0.0.1 port 2526 checks all-clients no-checks dkim "
	    "dnsbl\n"
	    "action a maildir \"~/Maildir\" junk\n"
	    "match from any spf softfail dnsbl for any defer\n"
	    "match from any !spf pass for any action a\n"
	    "match from any dkim permerror dmarc fail for any reject\n");
	assert_string_equal(c->dkim_sign_table, "k");
	assert_int_equal(c->ndnsbl, 2);
	assert_int_equal(c->dnsbl_threshold, 3);
	assert_int_equal(c->dmarc_policy, CONF_DMARC_QUARANTINE);
	l = TAILQ_FIRST(&c->listeners);
	assert_int_equal(l->checks, LISTEN_CHECKS_ALL_CLIENTS);
	assert_int_equal(TAILQ_NEXT(l, entry)->checks, LISTEN_CHECKS_NONE);
	l = TAILQ_NEXT(TAILQ_NEXT(l, entry), entry);
	assert_int_equal(l->checks, LISTEN_CHECKS_ALL_CLIENTS);
	assert_int_equal(l->checks_off, CHECK_DKIM | CHECK_DNSBL);
	a = TAILQ_FIRST(&c->actions);
	assert_int_equal(a->junk, 1);
	m = TAILQ_FIRST(&c->matches);
	assert_int_equal(m->reject, MATCH_DEFER);
	assert_true(m->spf.set && m->dnsbl.set);
	assert_string_equal(m->spf.value, "4");		/* softfail */
	m = TAILQ_NEXT(m, entry);
	assert_true(m->spf.set && m->spf.negate);
	assert_int_equal(c->rules_spf, 1);
	assert_int_equal(c->rules_dnsbl, 1);
	m = TAILQ_NEXT(m, entry);
	assert_string_equal(m->dkim.value, "6");
	assert_string_equal(m->dmarc.value, "2");
	assert_int_equal(c->rules_message, 1);
	config_free(c);
	expect_error("action a mbox\nmatch from any dmarc fail for any "
	    "action a\n", 2, "a rule with dkim or dmarc rejects or defers");
	expect_error("match from any dkim pass for domain \"x.example\" "
	    "reject\n", 1, "a rule with dkim or dmarc is for the whole "
	    "message");
	expect_error("match from any dmarc maybe for any reject\n", 1,
	    "syntax error near \"maybe\", expected a DMARC result");

	expect_error("dkim verify <k>\n", 1, "syntax error near \"verify\", "
	    "expected sign after dkim");
	expect_error("dnsbl \"zen.example*x\"\n", 1, "dnsbl \"zen.example*x\"");
	expect_error("dnsbl \"a.example\" threshold 0\n", 1,
	    "dnsbl threshold: a number from 1 to 1000");
	expect_error("dmarc policy loose\n", 1, "syntax error near \"loose\"");
	expect_error("listen on 127.0.0.1 no-checks checks all-clients\n", 1,
	    "listen option \"checks\" given twice");
	expect_error("listen on 127.0.0.1 checks some\n", 1,
	    "syntax error near \"some\"");
	expect_error("action a mbox junk\n", 1,
	    "junk is only valid for a maildir action");
	expect_error("action a mbox\nmatch spf maybe for any action a\n", 2,
	    "syntax error near \"maybe\", expected an SPF result");
	expect_error("action a mbox\nmatch dnsbl for any action a\n", 2,
	    "dnsbl criterion without DNS lists");
	expect_error("pki p cert /c\npki p key /k\n"
	    "action r relay pki q\nmatch for any action r\n", 3,
	    "no pki \"q\" defined");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_globals),
	    cmocka_unit_test(test_smtp_options),
	    cmocka_unit_test(test_queue_options),
	    cmocka_unit_test(test_mta_polite_options),
	    cmocka_unit_test(test_resolver),
	    cmocka_unit_test(test_metrics_listen),
	    cmocka_unit_test(test_pki),
	    cmocka_unit_test(test_tables),
	    cmocka_unit_test(test_table_large),
	    cmocka_unit_test(test_listen),
	    cmocka_unit_test(test_listen_proxy),
	    cmocka_unit_test(test_rate_limits),
	    cmocka_unit_test(test_listen_tls_auth),
	    cmocka_unit_test(test_actions),
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_match_tag),
	    cmocka_unit_test(test_lexer),
	    cmocka_unit_test(test_macros),
	    cmocka_unit_test(test_parse_file),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_dmarc_reports),
	    cmocka_unit_test(test_size),
	    cmocka_unit_test(test_duration),
	    cmocka_unit_test(test_forget_secrets),
	    cmocka_unit_test(test_mail_auth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
