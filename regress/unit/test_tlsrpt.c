/*
 * test_tlsrpt.c -- SMTP TLS Reporting (RFC 8460) in common/: the reader
 * of the "_smtp._tls" TXT record (section 3, the RFC's own examples and
 * the ways a record goes wrong), mailto: URIs, an outcome's spool line
 * (common/tlsrpt_rec.c), and the JSON report of a day of mixed results
 * (common/tlsrpt_report.c) read back by Python's json module (an
 * independent parser) and checked field by field against section 4;
 * the file name (5.1) and Subject (5.3).  The JSON check is skipped when
 * /usr/bin/python3 is missing.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tlsrpt.h"
#include "tlsrpt_rec.h"
#include "tlsrpt_report.h"

#define PYTHON	"/usr/bin/python3"

static void
test_record(void **state)
{
	static const struct {
		const char	*txt;
		int		 rc;
		size_t		 nrua;
		const char	*first, *last;
	} t[] = {
		/* RFC 8460 3.1's examples */
		{ "v=TLSRPTv1;rua=mailto:reports@example.com", 0, 1,
		    "mailto:reports@example.com", NULL },
		{ "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
		    0, 1, "https://reporting.example.com/v1/tlsrpt", NULL },
		{ "v=TLSRPTv1; rua=mailto:a@b.example,"
		    "https://r.example/v1", 0, 2, "mailto:a@b.example",
		    "https://r.example/v1" },
		{ "v=TLSRPTv1 ; rua=mailto:a@b.example , mailto:c@d.example ;",
		    0, 2, "mailto:a@b.example", "mailto:c@d.example" },
		{ "v=TLSRPTv1; rua=mailto:a@b.example; ext_1.x=some-value",
		    0, 1, "mailto:a@b.example", NULL },
		{ "v=TLSRPTv1; ext=1; rua=mailto:tls%2Crpt@b.example", 0, 1,
		    "mailto:tls%2Crpt@b.example", NULL },
		/* five: the first four kept */
		{ "v=TLSRPTv1; rua=mailto:1@x.example,mailto:2@x.example,"
		    "mailto:3@x.example,mailto:4@x.example,mailto:5@x.example",
		    0, 4, "mailto:1@x.example", "mailto:4@x.example" },
		/* not TLS-RPT records at all */
		{ "v=spf1 -all", -1, 0, NULL, NULL },
		{ "v=TLSRPTv10; rua=mailto:a@b.example", -1, 0, NULL, NULL },
		{ "v=tlsrptv1; rua=mailto:a@b.example", -1, 0, NULL, NULL },
		{ "", -1, 0, NULL, NULL },
		/* TLS-RPT records, malformed */
		{ "v=TLSRPTv1", -2, 0, NULL, NULL },
		{ "v=TLSRPTv1;", -2, 0, NULL, NULL },
		{ "v=TLSRPTv1; rua=", -2, 0, NULL, NULL },
		{ "v=TLSRPTv1; rua=reports", -2, 0, NULL, NULL },
		{ "v=TLSRPTv1; rua=mailto:", -2, 0, NULL, NULL },
		{ "v=TLSRPTv1; rua=mailto:a@b.example,", -2, 0, NULL, NULL },
		{ "v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example",
		    -2, 0, NULL, NULL },
		{ "v=TLSRPTv1;; rua=mailto:a@b.example", -2, 0, NULL, NULL },
		{ "v=TLSRPTv1; rua=mailto:a@b.example; x=a=b", -2, 0, NULL,
		    NULL },
		{ "v=TLSRPTv1; rua=mailto:a@b.example; =v", -2, 0, NULL, NULL },
		{ "v=TLSRPTv1; rua=mailto:a@b.example; _x=v", -2, 0, NULL,
		    NULL },
		{ "v=TLSRPTv1; rua=mailto:a@b.example x", -2, 0, NULL, NULL },
		{ "v=TLSRPTv1; ext=v", -2, 0, NULL, NULL },
	};
	struct tlsrpt_record	rec;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc = tlsrpt_record_parse(t[i].txt, strlen(t[i].txt), &rec);

		if (rc != t[i].rc)
			fail_msg("\"%s\": %d, not %d", t[i].txt, rc, t[i].rc);
		if (rc != 0)
			continue;
		assert_int_equal(rec.nrua, t[i].nrua);
		assert_string_equal(rec.rua[0], t[i].first);
		if (t[i].last)
			assert_string_equal(rec.rua[rec.nrua - 1], t[i].last);
	}
	/* the length is the caller's: no reading past it */
	assert_int_equal(tlsrpt_record_parse("v=TLSRPTv1; rua=mailto:a@b.x"
	    "YYYY", 28, &rec), 0);
	assert_string_equal(rec.rua[0], "mailto:a@b.x");
}

static void
test_uri(void **state)
{
	char	a[64];

	(void)state;
	assert_int_equal(tlsrpt_uri_mailto("mailto:tls%2Brpt@example.com",
	    a, sizeof(a)), 0);
	assert_string_equal(a, "tls+rpt@example.com");
	assert_int_equal(tlsrpt_uri_mailto("MAILTO:r@example.com?subject=x",
	    a, sizeof(a)), 0);
	assert_string_equal(a, "r@example.com");
	assert_int_equal(tlsrpt_uri_mailto("https://r.example/", a,
	    sizeof(a)), -1);
	assert_int_equal(tlsrpt_uri_mailto("mailto:a%40b@c.example", a,
	    sizeof(a)), -1);
	assert_int_equal(tlsrpt_uri_mailto("mailto:%0a@c.example", a,
	    sizeof(a)), -1);
	assert_int_equal(tlsrpt_uri_mailto("mailto:a@c.example%2", a,
	    sizeof(a)), -1);
	assert_int_equal(tlsrpt_uri_mailto("mailto:@c.example", a,
	    sizeof(a)), -1);
	assert_int_equal(tlsrpt_uri_mailto("mailto:abcdefghij@example.com",
	    a, 10), -1);
	assert_true(tlsrpt_uri_https("HTTPS://r.example/v1"));
	assert_false(tlsrpt_uri_https("http://r.example/v1"));
	assert_string_equal(tlsrpt_result_name(TLSRPT_STS_WEBPKI_INVALID),
	    "sts-webpki-invalid");
	assert_string_equal(tlsrpt_policy_type_name(TLSRPT_POLICY_NONE),
	    "no-policy-found");
	assert_null(tlsrpt_result_name(TLSRPT_NRESULTS));
}

static void
set_ip(struct sockaddr_storage *ss, const char *ip)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
}

static int
parse_str(const char *line, struct queue_tlsrpt_record *r)
{
	int64_t	when;

	return tlsrpt_rec_parse(line, strlen(line), r, &when);
}

static void
test_rec(void **state)
{
	static struct queue_tlsrpt_record	r, back;
	static char				line[TLSRPT_REC_LINE_MAX];
	int64_t					when;
	int					n;

	(void)state;
	memset(&r, 0, sizeof(r));
	snprintf(r.o.policy_domain, sizeof(r.o.policy_domain), "example.com");
	r.o.policy_type = TLSRPT_POLICY_STS;
	r.o.result = TLSRPT_CERT_EXPIRED;
	snprintf(r.o.mx_host, sizeof(r.o.mx_host), "mx1.example.com");
	set_ip(&r.o.receiving_ip, "2001:db8::25");
	snprintf(r.o.reason, sizeof(r.o.reason), "X509 expired 100%%: -");
	snprintf(r.o.policy, sizeof(r.o.policy),
	    "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400");
	r.nrua = 2;
	snprintf(r.rua[0], sizeof(r.rua[0]), "mailto:tls%%2Crpt@example.com");
	snprintf(r.rua[1], sizeof(r.rua[1]), "https://r.example/v1");
	n = tlsrpt_rec_format(&r, 1796601600, line, sizeof(line));
	assert_true(n > 0 && line[n - 1] == '\n');
	assert_null(memchr(line, '\n', (size_t)n - 1));
	assert_int_equal(tlsrpt_rec_parse(line, (size_t)n, &back, &when), 0);
	assert_int_equal(when, 1796601600);
	assert_memory_equal(&r, &back, sizeof(r));
	/* torn: no end marker */
	assert_int_equal(tlsrpt_rec_parse(line, (size_t)n - 3, &back, &when),
	    -1);
	/* a success without an address, reason or policy */
	memset(&r.o.receiving_ip, 0, sizeof(r.o.receiving_ip));
	r.o.result = TLSRPT_SUCCESS;
	memset(r.o.reason, 0, sizeof(r.o.reason));
	memset(r.o.policy, 0, sizeof(r.o.policy));
	memset(r.o.mx_host, 0, sizeof(r.o.mx_host));
	snprintf(r.o.mx_host, sizeof(r.o.mx_host), "-");
	n = tlsrpt_rec_format(&r, 5, line, sizeof(line));
	assert_true(n > 0);
	assert_int_equal(tlsrpt_rec_parse(line, (size_t)n, &back, &when), 0);
	assert_memory_equal(&r, &back, sizeof(r));
	/* refused on the way in */
	assert_int_equal(parse_str("t1 5 example.com 9 0 - - - - - 1 "
	    "mailto:a@b.example .", &back), -1);		/* type */
	assert_int_equal(parse_str("t1 5 example.com 1 12 - - - - - 1 "
	    "mailto:a@b.example .", &back), -1);		/* result */
	assert_int_equal(parse_str("t1 5 example.com 1 0 - - - - - 0 .",
	    &back), -1);					/* no rua */
	assert_int_equal(parse_str("t1 5 example.com 1 0 %00 - - - - 1 "
	    "mailto:a@b.example .", &back), -1);		/* NUL */
	assert_int_equal(parse_str("t1 5 example.com 1 0 %4 - - - - 1 "
	    "mailto:a@b.example .", &back), -1);		/* short %XX */
	assert_int_equal(parse_str("t1 5 example.com 1 0 - 1.2.3 - - - 1 "
	    "mailto:a@b.example .", &back), -1);		/* IP */
	assert_int_equal(parse_str("t1 5 example.com 1 0 - - - - - 1 "
	    "mailto:a@b.example . x", &back), -1);		/* after end */
	assert_int_equal(parse_str("t1 5 example.com 1 0 - - - - - 1 "
	    "mailto:a@b.example", &back), -1);			/* torn */
	assert_int_equal(parse_str("t1 5 example.com 1 0 - - - - - 1 "
	    "mailto:a@b.example .", &back), 0);
	/* too small a buffer */
	assert_int_equal(tlsrpt_rec_format(&r, 5, line, 20), -1);
}

/* a day toward example.com: an STS policy and a TLSA one */
static char *
day_report(struct tlsrpt_report_meta *m, size_t *len)
{
	static struct tlsrpt_failure	sts_f[2], tlsa_f[1];
	struct tlsrpt_policy_sum	ps[2];

	memset(m, 0, sizeof(*m));
	m->org_name = "Company-X \"Mail\"";
	m->contact_info = "mailto:sts-reporting@company-x.example";
	m->report_id = "1796687999.5a3c1f0e";
	m->submitter = "company-x.example";
	m->begin = 1796601600;		/* 2026-12-07T00:00:00Z */
	m->end = 1796601600 + 86399;
	memset(sts_f, 0, sizeof(sts_f));
	sts_f[0].result = TLSRPT_CERT_EXPIRED;
	set_ip(&sts_f[0].sending_ip, "2001:db8:abcd:0012::1");
	set_ip(&sts_f[0].receiving_ip, "203.0.113.56");
	snprintf(sts_f[0].mx_host, sizeof(sts_f[0].mx_host),
	    "mx2.mail.company-y.example");
	sts_f[0].count = 100;
	sts_f[1].result = TLSRPT_STARTTLS_NOT_SUPPORTED;
	set_ip(&sts_f[1].receiving_ip, "203.0.113.57");
	snprintf(sts_f[1].mx_host, sizeof(sts_f[1].mx_host),
	    "mx3.mail.company-y.example");
	snprintf(sts_f[1].reason, sizeof(sts_f[1].reason),
	    "no STARTTLS \x01 in EHLO");
	sts_f[1].count = 200;
	memset(tlsa_f, 0, sizeof(tlsa_f));
	tlsa_f[0].result = TLSRPT_TLSA_INVALID;
	snprintf(tlsa_f[0].mx_host, sizeof(tlsa_f[0].mx_host),
	    "mx.company-y.example");
	tlsa_f[0].count = 3;
	memset(ps, 0, sizeof(ps));
	ps[0].type = TLSRPT_POLICY_STS;
	ps[0].policy_string = "version: STSv1\nmode: testing\n"
	    "mx: *.mail.company-y.example\nmax_age: 86400";
	ps[0].mx_hosts = "mx1.mail.company-y.example";
	ps[0].success = 5326;
	ps[0].failure = 303;
	ps[0].fails = sts_f;
	ps[0].nfail = 2;
	ps[1].type = TLSRPT_POLICY_TLSA;
	ps[1].policy_string = "3 1 1 0123abcd\n3 0 1 4567ef01";
	ps[1].mx_hosts = "mx.company-y.example\nmx.backup.example";
	ps[1].success = 10;
	ps[1].failure = 3;
	ps[1].fails = tlsa_f;
	ps[1].nfail = 1;
	return tlsrpt_report_json(m, "company-y.example", ps, 2, len);
}

static const char check_py[] =
    "import json, sys\n"
    "r = json.load(open(sys.argv[1]))\n"
    "assert r['organization-name'] == 'Company-X \"Mail\"'\n"
    "assert r['date-range'] == {'start-datetime': '2026-12-07T00:00:00Z',"
    " 'end-datetime': '2026-12-07T23:59:59Z'}, r['date-range']\n"
    "assert r['contact-info'] == 'mailto:sts-reporting@company-x.example'\n"
    "assert r['report-id'] == '1796687999.5a3c1f0e'\n"
    "p = r['policies']\n"
    "assert len(p) == 2\n"
    "s = p[0]\n"
    "assert s['policy'] == {'policy-type': 'sts', 'policy-string': "
    "['version: STSv1', 'mode: testing', 'mx: *.mail.company-y.example',"
    " 'max_age: 86400'], 'policy-domain': 'company-y.example',"
    " 'mx-host': ['*.mail.company-y.example']}, s['policy']\n"
    "assert s['summary'] == {'total-successful-session-count': 5326,"
    " 'total-failure-session-count': 303}\n"
    "f = s['failure-details']\n"
    "assert f[0] == {'result-type': 'certificate-expired',"
    " 'sending-mta-ip': '2001:db8:abcd:12::1',"
    " 'receiving-mx-hostname': 'mx2.mail.company-y.example',"
    " 'receiving-ip': '203.0.113.56', 'failed-session-count': 100}, f[0]\n"
    "assert f[1] == {'result-type': 'starttls-not-supported',"
    " 'receiving-mx-hostname': 'mx3.mail.company-y.example',"
    " 'receiving-ip': '203.0.113.57', 'failed-session-count': 200,"
    " 'failure-reason-code': 'no STARTTLS \\x01 in EHLO'}, f[1]\n"
    "t = p[1]\n"
    "assert t['policy'] == {'policy-type': 'tlsa', 'policy-string': "
    "['3 1 1 0123abcd', '3 0 1 4567ef01'], 'policy-domain': "
    "'company-y.example', 'mx-host': ['mx.company-y.example',"
    " 'mx.backup.example']}, t['policy']\n"
    "assert t['summary']['total-failure-session-count'] == 3\n"
    "assert t['failure-details'] == [{'result-type': 'tlsa-invalid',"
    " 'receiving-mx-hostname': 'mx.company-y.example',"
    " 'failed-session-count': 3}]\n";

static void
test_report(void **state)
{
	struct tlsrpt_report_meta	 m;
	char				 path[] = "/tmp/test_tlsrpt.XXXXXX";
	char				*json;
	size_t				 len;
	pid_t				 pid;
	int				 fd, status;

	(void)state;
	json = day_report(&m, &len);
	assert_non_null(json);
	assert_int_equal(strlen(json), len);
	if (access(PYTHON, X_OK) == -1) {
		free(json);
		skip();
	}
	assert_true((fd = mkstemp(path)) != -1);
	assert_int_equal(write(fd, json, len), (ssize_t)len);
	close(fd);
	free(json);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		execl(PYTHON, PYTHON, "-c", check_py, path, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(path);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_refused_and_names(void **state)
{
	struct tlsrpt_report_meta	 m;
	struct tlsrpt_policy_sum	 ps;
	struct tlsrpt_failure		 f;
	char				 out[512], *json;
	size_t				 len;

	(void)state;
	json = day_report(&m, &len);
	free(json);
	memset(&ps, 0, sizeof(ps));
	ps.type = TLSRPT_POLICY_TLSA;
	/* no policy, a bad id, a bad domain, a failure of type success */
	assert_null(tlsrpt_report_json(&m, "company-y.example", &ps, 0, NULL));
	assert_null(tlsrpt_report_json(&m, "bad domain", &ps, 1, NULL));
	m.report_id = "a b";
	assert_null(tlsrpt_report_json(&m, "company-y.example", &ps, 1, NULL));
	m.report_id = "x.1";
	memset(&f, 0, sizeof(f));
	ps.fails = &f;
	ps.nfail = 1;
	assert_null(tlsrpt_report_json(&m, "company-y.example", &ps, 1, NULL));
	ps.nfail = 0;
	ps.type = 7;
	assert_null(tlsrpt_report_json(&m, "company-y.example", &ps, 1, NULL));
	assert_int_equal(tlsrpt_report_filename(&m, "company-y.example", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "company-x.example!company-y.example!"
	    "1796601600!1796687999.json.gz");
	assert_int_equal(tlsrpt_report_subject(&m, "company-y.example", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "Report Domain: company-y.example "
	    "Submitter: company-x.example Report-ID: "
	    "<x.1@company-x.example>");
	assert_int_equal(tlsrpt_report_subject(&m, "company-y.example", out,
	    20), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record),
		cmocka_unit_test(test_uri),
		cmocka_unit_test(test_rec),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_refused_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
