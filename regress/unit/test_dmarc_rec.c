/*
 * test_dmarc_rec.c -- common/dmarc_rec.c: a DMARC report row's checks
 * and its line in the spool (dmarc/records).  A full row (IPv4 and IPv6
 * sources, rua limits, DKIM signatures, empty strings) goes out and
 * comes back equal; the exact line is pinned (the file outlives the
 * binary that wrote it); torn, edited and hostile lines are refused;
 * rows that would break the line (spaces, 8-bit bytes, "-", values out
 * of range) are refused before writing.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "dmarc_rec.h"
#include "dmarc_report.h"

static void
row(struct queue_dmarc_record *r, const char *ip)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&r->source;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&r->source;

	memset(r, 0, sizeof(*r));
	if (strchr(ip, ':')) {
		sin6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
	} else {
		sin->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	}
	snprintf(r->policy_domain, sizeof(r->policy_domain), "example.com");
	r->p = DMARC_POLICY_REJECT;
	r->sp = DMARC_POLICY_QUARANTINE;
	r->pct = 50;
	r->adkim = DMARC_ALIGN_STRICT;
	r->aspf = DMARC_ALIGN_RELAXED;
	r->fo = DMARC_FO_1 | DMARC_FO_D;
	r->disposition = DMARC_POLICY_QUARANTINE;
	r->dkim_pass = 0;
	r->spf_pass = 1;
	r->sampled_out = 1;
	snprintf(r->header_from, sizeof(r->header_from), "mail.example.com");
	snprintf(r->envelope_from, sizeof(r->envelope_from), "bounce.test");
	snprintf(r->spf_domain, sizeof(r->spf_domain), "bounce.test");
	r->spf_scope = DMARC_RPT_SPF_MFROM;
	r->spf_result = DMARC_RPT_SOFTFAIL;
	r->nrua = 2;
	snprintf(r->rua[0].addr, sizeof(r->rua[0].addr), "rua@example.com");
	r->rua[0].maxsize = 10485760;
	snprintf(r->rua[1].addr, sizeof(r->rua[1].addr), "dmarc@report.test");
	r->ndkim = 2;
	snprintf(r->dkim[0].domain, sizeof(r->dkim[0].domain), "example.com");
	snprintf(r->dkim[0].selector, sizeof(r->dkim[0].selector), "s1");
	r->dkim[0].result = DMARC_RPT_FAIL;
	snprintf(r->dkim[1].domain, sizeof(r->dkim[1].domain), "esp.test");
	r->dkim[1].result = DMARC_RPT_PERMERROR;	/* no selector: "" */
}

static const char pinned[] =
    "v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
    "mail.example.com bounce.test bounce.test 0 5 2 "
    "rua@example.com 10485760 dmarc@report.test 0 "
    "2 example.com s1 2 esp.test - 7 .\n";

static void
test_round_trip(void **state)
{
	struct queue_dmarc_record	r, back;
	char				line[DMARC_REC_LINE_MAX];
	int64_t				when;
	int				n;

	(void)state;
	row(&r, "192.0.2.7");
	n = dmarc_rec_format(&r, 1765065600, line, sizeof(line));
	assert_int_equal(n, (int)strlen(pinned));
	assert_string_equal(line, pinned);
	assert_int_equal(dmarc_rec_parse(line, (size_t)n, &back, &when), 0);
	assert_int_equal(when, 1765065600);
	assert_memory_equal(&r, &back, sizeof(r));
	/* without its '\n' too */
	assert_int_equal(dmarc_rec_parse(line, (size_t)n - 1, &back, &when),
	    0);
	assert_memory_equal(&r, &back, sizeof(r));

	/* IPv6, null sender (HELO scope), no DKIM, one rua */
	row(&r, "2001:db8::1");
	memset(r.envelope_from, 0, sizeof(r.envelope_from));
	memset(r.spf_domain, 0, sizeof(r.spf_domain));
	r.spf_scope = DMARC_RPT_SPF_HELO;
	snprintf(r.spf_domain, sizeof(r.spf_domain), "helo.test");
	r.ndkim = 0;
	memset(r.dkim, 0, sizeof(r.dkim));
	r.nrua = 1;
	memset(&r.rua[1], 0, sizeof(r.rua[1]));
	n = dmarc_rec_format(&r, 0, line, sizeof(line));
	assert_true(n > 0);
	assert_non_null(strstr(line, " 2001:db8::1 "));
	assert_non_null(strstr(line, " - helo.test 1 "));
	assert_int_equal(dmarc_rec_parse(line, (size_t)n, &back, &when), 0);
	assert_memory_equal(&r, &back, sizeof(r));
	assert_int_equal(when, 0);
}

static void
test_format_refused(void **state)
{
	struct queue_dmarc_record	r;
	char				line[DMARC_REC_LINE_MAX];

	(void)state;
	row(&r, "192.0.2.7");
	assert_int_equal(dmarc_rec_format(&r, -1, line, sizeof(line)), -1);
	assert_int_equal(dmarc_rec_format(&r, 1, line, 20), -1);
	assert_int_equal(dmarc_rec_format(&r, 1, line, 0), -1);
#define REFUSED(change) do {						\
		row(&r, "192.0.2.7");					\
		change;							\
		assert_int_equal(dmarc_rec_valid(&r), -1);		\
		assert_int_equal(dmarc_rec_format(&r, 1, line,		\
		    sizeof(line)), -1);					\
	} while (0)
	REFUSED(r.source.ss_family = AF_UNIX);
	REFUSED(snprintf(r.header_from, sizeof(r.header_from), "a b.test"));
	REFUSED(snprintf(r.header_from, sizeof(r.header_from), "\xc3\xa9.test"));
	REFUSED(r.header_from[0] = '\0');
	REFUSED(r.policy_domain[0] = '\0');
	REFUSED(snprintf(r.envelope_from, sizeof(r.envelope_from), "-"));
	REFUSED(snprintf(r.dkim[0].selector, sizeof(r.dkim[0].selector),
	    "s\n1"));
	REFUSED(memset(r.spf_domain, 'a', sizeof(r.spf_domain)));
	REFUSED(r.p = 3);
	REFUSED(r.pct = 101);
	REFUSED(r.pct = -1);
	REFUSED(r.fo = 16);
	REFUSED(r.dkim_pass = 2);
	REFUSED(r.spf_result = DMARC_RPT_PERMERROR + 1);
	REFUSED(r.dkim[1].result = -1);
	REFUSED(r.nrua = 0);
	REFUSED(r.nrua = QUEUE_DMARC_RUA + 1);
	REFUSED(r.ndkim = QUEUE_DMARC_DKIM + 1);
	REFUSED(snprintf(r.rua[1].addr, sizeof(r.rua[1].addr), "no-at"));
#undef REFUSED
}

static void
test_parse_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		/* torn: the end marker is missing */
		"v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0",
		/* an unknown version */
		"v2 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0 .",
		/* two spaces: an empty field */
		"v1 1765065600  192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0 .",
		/* a trailing space */
		"v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0 . ",
		/* something after the end marker */
		"v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0 . x",
		/* not an address */
		"v1 1765065600 192.0.2.300 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0 .",
		/* a sign, a number too big, out of range */
		"v1 -1 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0 .",
		"v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 99999999999999999999 0 .",
		"v1 1765065600 192.0.2.7 example.com 2 1 101 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0 .",
		"v1 1765065600 192.0.2.7 example.com 2 1 +5 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0 .",
		/* counts that do not match the fields */
		"v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 2 "
		"rua@example.com 0 0 .",
		"v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 9 .",
		/* no rua at all */
		"v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 0 0 .",
		/* an 8-bit byte, a tab */
		"v1 1765065600 192.0.2.7 ex\xe9mple.com 2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0 .",
		"v1 1765065600 192.0.2.7 example.com\t2 1 50 1 0 6 1 0 1 1 "
		"mail.example.com bounce.test bounce.test 0 5 1 "
		"rua@example.com 0 0 .",
		/* "-" for the header From: domain, which may not be empty */
		"v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
		"- bounce.test bounce.test 0 5 1 rua@example.com 0 0 .",
	};
	struct queue_dmarc_record	r;
	int64_t				when;
	size_t				i;
	char				nul[] = "v1 1 192.0.2.7 a\0b";

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (dmarc_rec_parse(bad[i], strlen(bad[i]), &r, &when) != -1)
			fail_msg("accepted: %s", bad[i]);
	}
	assert_int_equal(dmarc_rec_parse(nul, sizeof(nul) - 1, &r, &when),
	    -1);
	/* the same line, good: the cases above differ in one thing each */
	assert_int_equal(dmarc_rec_parse(
	    "v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
	    "mail.example.com bounce.test bounce.test 0 5 1 "
	    "rua@example.com 0 0 .", 0 + strlen(
	    "v1 1765065600 192.0.2.7 example.com 2 1 50 1 0 6 1 0 1 1 "
	    "mail.example.com bounce.test bounce.test 0 5 1 "
	    "rua@example.com 0 0 ."), &r, &when), 0);
	assert_string_equal(r.rua[0].addr, "rua@example.com");
	assert_int_equal(r.nrua, 1);
	assert_int_equal(r.ndkim, 0);
}

static void
test_proto_validator(void **state)
{
	struct queue_dmarc_record	r;

	(void)state;
	row(&r, "192.0.2.7");
	assert_int_equal(proto_valid_queue_dmarc_record(&r), 0);
	r.policy_domain[0] = '\0';
	assert_int_equal(proto_valid_queue_dmarc_record(&r), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_format_refused),
		cmocka_unit_test(test_parse_refused),
		cmocka_unit_test(test_proto_validator),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
