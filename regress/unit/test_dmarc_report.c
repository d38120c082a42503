/*
 * test_dmarc_report.c -- common/dmarc_report.c: the aggregate report's
 * XML validated against RFC 7489 Appendix C's schema (regress/dmarc/
 * rua.xsd) by xmllint(1) from libxml2-utils, its escaping, the gzip
 * read back by gzip(1) (an independent implementation), and 7.2.1.1's
 * file name and Subject.  Skipped when xmllint or gzip is missing
 * (mk/deps.sh installs libxml2-utils); run from the top of the tree.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "dmarc.h"
#include "dmarc_report.h"

#define XMLLINT		"/usr/bin/xmllint"
#define GZIP		"/bin/gzip"
#define SCHEMA		"regress/dmarc/rua.xsd"

static char	tmpdir[] = "/tmp/test_dmarc_report.XXXXXX";
static char	schema[256];

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE	*f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* run argv with stdout to outpath (or /dev/null); its exit status */
static int
run(char *const argv[], const char *outpath)
{
	pid_t	pid;
	int	st, fd;

	if ((pid = fork()) == -1)
		fail();
	if (pid == 0) {
		fd = open(outpath ? outpath : "/dev/null",
		    O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd == -1 || dup2(fd, 1) == -1)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
validates(const char *xml, size_t len)
{
	char	path[300];
	char	*argv[] = { XMLLINT, "--noout", "--nonet", "--schema", schema,
	    path, NULL };

	snprintf(path, sizeof(path), "%s/report.xml", tmpdir);
	write_file(path, xml, len);
	return run(argv, NULL) == 0;
}

/* the schema without its targetNamespace (see rua.xsd's note) */
static int
setup(void **state)
{
	FILE	*in, *out;
	char	 line[1024], *p;

	if (access(XMLLINT, X_OK) == -1 || access(GZIP, X_OK) == -1) {
		fprintf(stderr, "test_dmarc_report: xmllint or gzip missing, "
		    "skipping\n");
		return 0;
	}
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	if ((in = fopen(SCHEMA, "r")) == NULL) {
		fprintf(stderr, "test_dmarc_report: %s: run from the top of "
		    "the tree\n", SCHEMA);
		return -1;
	}
	snprintf(schema, sizeof(schema), "%s/rua.xsd", tmpdir);
	if ((out = fopen(schema, "w")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), in)) {
		if ((p = strstr(line, "targetNamespace=")) != NULL) {
			char	*q = strchr(p + 17, '"');

			if (q == NULL)
				return -1;
			memmove(p, q + 1, strlen(q + 1) + 1);
		}
		fputs(line, out);
	}
	fclose(in);
	return fclose(out) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	char	path[300];

	if (schema[0] == '\0')
		return 0;
	snprintf(path, sizeof(path), "%s/report.xml", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/report.xml.gz", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/unzipped.xml", tmpdir);
	unlink(path);
	unlink(schema);
	rmdir(tmpdir);
	return 0;
}

#define NEED_TOOLS() do {						\
	if (schema[0] == '\0')						\
		skip();							\
} while (0)

static const struct dmarc_report_meta meta = {
	"Example Receiver", "dmarc-noreply@mx.example.org",
	"https://example.org/dmarc", "20261207.example-1",
	"mx.example.org", 1796515200, 1796601599
};

static void
rows3(struct dmarc_report_row r[3])
{
	struct sockaddr_in	*s4 = (struct sockaddr_in *)&r[0].source_ip;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)&r[1].source_ip;

	memset(r, 0, 3 * sizeof(*r));
	s4->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.10", &s4->sin_addr), 1);
	r[0].count = 42;
	r[0].disposition = DMARC_POLICY_NONE;
	r[0].dkim_pass = r[0].spf_pass = 1;
	snprintf(r[0].header_from, sizeof(r[0].header_from), "example.com");
	snprintf(r[0].envelope_from, sizeof(r[0].envelope_from),
	    "bounce.example.com");
	snprintf(r[0].envelope_to, sizeof(r[0].envelope_to),
	    "example.org");
	r[0].ndkim = 2;
	snprintf(r[0].dkim[0].domain, sizeof(r[0].dkim[0].domain),
	    "example.com");
	snprintf(r[0].dkim[0].selector, sizeof(r[0].dkim[0].selector),
	    "s2026");
	r[0].dkim[0].result = DMARC_RPT_PASS;
	snprintf(r[0].dkim[1].domain, sizeof(r[0].dkim[1].domain),
	    "esp.test");
	/* hostile selector: escaped, controls and 8-bit replaced */
	snprintf(r[0].dkim[1].selector, sizeof(r[0].dkim[1].selector),
	    "<x>&\"y\x01\xc3\xa9");
	r[0].dkim[1].result = DMARC_RPT_TEMPERROR;
	snprintf(r[0].spf_domain, sizeof(r[0].spf_domain),
	    "bounce.example.com");
	r[0].spf_result = DMARC_RPT_PASS;

	s6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1",
	    &s6->sin6_addr), 1);
	r[1].count = 3;
	r[1].disposition = DMARC_POLICY_QUARANTINE;
	r[1].sampled_out = 1;
	snprintf(r[1].header_from, sizeof(r[1].header_from), "example.com");
	snprintf(r[1].spf_domain, sizeof(r[1].spf_domain), "helo.test");
	r[1].spf_scope = DMARC_RPT_SPF_HELO;
	r[1].spf_result = DMARC_RPT_SOFTFAIL;

	r[2] = r[0];
	r[2].ndkim = 1;
	r[2].dkim[0].selector[0] = '\0';	/* selector left out */
	r[2].dkim[0].result = DMARC_RPT_POLICY;
	r[2].envelope_to[0] = '\0';
	r[2].spf_result = DMARC_RPT_POLICY;	/* written as fail */
}

static void
test_xml_valid(void **state)
{
	struct dmarc_report_row	 r[3];
	struct dmarc_record	 rec;
	char			*xml, *bad, *p;
	size_t			 len;
	static const char	 txt[] = "v=DMARC1; p=reject; "
	    "sp=quarantine; adkim=s; pct=50; fo=1:d";

	NEED_TOOLS();
	rows3(r);
	assert_int_equal(dmarc_parse_record(txt, sizeof(txt) - 1, &rec,
	    NULL), 1);
	xml = dmarc_report_xml(&meta, "example.com", &rec, r, 3, &len);
	assert_non_null(xml);
	assert_int_equal(strlen(xml), len);
	assert_true(validates(xml, len));
	/* what a reader needs is there */
	assert_non_null(strstr(xml, "<source_ip>192.0.2.10</source_ip>"));
	assert_non_null(strstr(xml,
	    "<source_ip>2001:db8:0:0:0:0:0:1</source_ip>"));
	assert_non_null(strstr(xml, "<count>42</count>"));
	assert_non_null(strstr(xml, "<p>reject</p>"));
	assert_non_null(strstr(xml, "<sp>quarantine</sp>"));
	assert_non_null(strstr(xml, "<adkim>s</adkim>"));
	assert_non_null(strstr(xml, "<pct>50</pct>"));
	assert_non_null(strstr(xml, "<fo>1:d</fo>"));
	assert_non_null(strstr(xml, "<begin>1796515200</begin>"));
	assert_non_null(strstr(xml, "<type>sampled_out</type>"));
	assert_non_null(strstr(xml, "<scope>helo</scope>"));
	assert_non_null(strstr(xml, "<result>softfail</result>"));
	assert_non_null(strstr(xml,
	    "<selector>&lt;x&gt;&amp;&quot;y\?\?\?</selector>"));
	assert_null(strchr(xml, '\x01'));

	/* the check can fail: elements out of order do not validate */
	bad = strdup(xml);
	assert_non_null(bad);
	p = strstr(bad, "<version>1.0</version>");
	assert_non_null(p);
	memcpy(p, "<versiom>1.0</versiom>", 22);
	assert_false(validates(bad, len));
	free(bad);
	free(xml);

	/* one row without any DKIM, the minimum */
	xml = dmarc_report_xml(&meta, "example.com", &rec, &r[1], 1, &len);
	assert_non_null(xml);
	assert_true(validates(xml, len));
	free(xml);
}

static void
test_xml_refused(void **state)
{
	struct dmarc_report_row		r[3];
	struct dmarc_record		rec;
	struct dmarc_report_meta	m = meta;
	size_t				len;

	rows3(r);
	assert_int_equal(dmarc_parse_record("v=DMARC1; p=none", 16, &rec,
	    NULL), 1);
	assert_null(dmarc_report_xml(&meta, "example.com", &rec, r, 0,
	    &len));
	assert_null(dmarc_report_xml(&meta, "bad domain", &rec, r, 1, &len));
	m.report_id = "has space";
	assert_null(dmarc_report_xml(&m, "example.com", &rec, r, 1, &len));
	m = meta;
	m.end = m.begin - 1;
	assert_null(dmarc_report_xml(&m, "example.com", &rec, r, 1, &len));
	r[0].source_ip.ss_family = AF_UNIX;
	assert_null(dmarc_report_xml(&meta, "example.com", &rec, r, 1,
	    &len));
}

static void
test_gzip(void **state)
{
	struct dmarc_report_row	 r[3];
	struct dmarc_record	 rec;
	char			*xml, gz[300], unz[300];
	char			*argv[] = { GZIP, "-dc", gz, NULL };
	unsigned char		*z;
	size_t			 len, zlen;
	FILE			*f;
	char			*back;
	long			 n;

	NEED_TOOLS();
	rows3(r);
	assert_int_equal(dmarc_parse_record("v=DMARC1; p=none", 16, &rec,
	    NULL), 1);
	xml = dmarc_report_xml(&meta, "example.com", &rec, r, 3, &len);
	assert_non_null(xml);
	z = gzip_buffer(xml, len, &zlen);
	assert_non_null(z);
	assert_true(zlen > 18 && zlen < len);
	assert_int_equal(z[0], 0x1f);
	assert_int_equal(z[1], 0x8b);
	snprintf(gz, sizeof(gz), "%s/report.xml.gz", tmpdir);
	snprintf(unz, sizeof(unz), "%s/unzipped.xml", tmpdir);
	write_file(gz, z, zlen);
	assert_int_equal(run(argv, unz), 0);
	assert_non_null(f = fopen(unz, "r"));
	back = malloc(len + 1);
	assert_non_null(back);
	n = (long)fread(back, 1, len + 1, f);
	fclose(f);
	assert_int_equal(n, (long)len);
	assert_memory_equal(back, xml, len);
	free(back);
	free(z);
	free(xml);
	/* empty input is still a gzip file */
	z = gzip_buffer("", 0, &zlen);
	assert_non_null(z);
	free(z);
}

static void
test_name_subject(void **state)
{
	struct dmarc_report_meta	m = meta;
	char				buf[512];

	assert_int_equal(dmarc_report_filename(&meta, "example.com", NULL,
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf,
	    "mx.example.org!example.com!1796515200!1796601599.xml.gz");
	assert_int_equal(dmarc_report_filename(&meta, "example.com", "a1",
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf,
	    "mx.example.org!example.com!1796515200!1796601599!a1.xml.gz");
	assert_int_equal(dmarc_report_filename(&meta, "example.com", "a-1",
	    buf, sizeof(buf)), -1);
	assert_int_equal(dmarc_report_filename(&meta, "example.com", "",
	    buf, sizeof(buf)), -1);
	assert_int_equal(dmarc_report_filename(&meta, "ex!ample.com", NULL,
	    buf, sizeof(buf)), -1);
	assert_int_equal(dmarc_report_filename(&meta, "example.com", NULL,
	    buf, 20), -1);

	assert_int_equal(dmarc_report_subject(&meta, "example.com", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "Report Domain: example.com Submitter: "
	    "mx.example.org Report-ID: <20261207.example-1@mx.example.org>");
	m.receiver = "mx example";
	assert_int_equal(dmarc_report_subject(&m, "example.com", buf,
	    sizeof(buf)), -1);
	m = meta;
	m.report_id = "a..b";
	assert_int_equal(dmarc_report_subject(&m, "example.com", buf,
	    sizeof(buf)), -1);
	m.report_id = "x\r\nBcc: y";
	assert_int_equal(dmarc_report_subject(&m, "example.com", buf,
	    sizeof(buf)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xml_valid),
		cmocka_unit_test(test_xml_refused),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_name_subject),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
