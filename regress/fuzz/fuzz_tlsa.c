/*
 * fuzz_tlsa.c -- libFuzzer harness for TLSA answers (RFC 6698) on their
 * way from the resolver to the mta: lookup/dns.c's dns_parse_answer()
 * with the TLSA type, then lookup/tlsa.c's judgement of the answer and
 * of each record, then the IMSG_LKA_MX_TLSA check the mta applies
 * (common/lka_proto.c).  The first byte chooses the resolver's result
 * code and whether the answer validated; the rest is the wire message.
 * With the first byte's high bit set, the rest is instead a line of a
 * trust anchor file for dns_anchor_ok() ("dnssec trust-anchor").
 *
 * Beyond "does not crash": records only of the TLSA type, each with 1
 * to DNS_TLSA_DATA_MAX bytes of data lying inside the used part of the
 * text buffer; dns_tlsa_kind() says LKA_TLSA_RECORD exactly when the
 * answer is secure and holds a usable record; and every record lookup
 * would send passes the mta's check (a record that did not would kill
 * the mta as a broken sibling).
 */

#include <sys/socket.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "fuzz.h"

#include "dns.h"
#include "proto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_result	res;
	static struct lka_mx_tlsa	t;
	const struct dns_rr		*r;
	int				rcode, kind, usable = 0;
	size_t				i;

	if (size < 1)
		return 0;
	if (data[0] & 0x80) {
		static char	line[4096];

		if (size - 1 >= sizeof(line))
			return 0;
		memcpy(line, data + 1, size - 1);
		line[size - 1] = '\0';
		(void)dns_anchor_ok(line);
		return 0;
	}
	rcode = (data[0] & 3) == 1 ? 3 : (data[0] & 3) == 2 ? 2 : 0;
	memset(&res, 0xa5, sizeof(res));
	dns_parse_answer(&res, DNS_T_TLSA | DNS_Q_DNSSEC, rcode, data + 1,
	    (int)(size - 1));
	res.secure = (data[0] & 4) != 0;
	res.bogus = (data[0] & 8) != 0 && res.status == DNS_TEMPFAIL;

	CHECK(res.status == DNS_OK || res.status == DNS_NODATA ||
	    res.status == DNS_NXDOMAIN || res.status == DNS_TEMPFAIL);
	CHECK(res.nrr <= DNS_MAX_RR);
	CHECK((res.status == DNS_OK) == (res.nrr > 0));
	CHECK(res.txtused <= DNS_TXT_MAX);
	for (i = 0; i < res.nrr; i++) {
		r = &res.rr[i];
		CHECK(r->type == DNS_T_TLSA);
		CHECK(r->txtlen >= 1 && r->txtlen <= DNS_TLSA_DATA_MAX);
		CHECK(r->txt < res.txtused);
		CHECK(r->txtlen < res.txtused - r->txt);
		if (!dns_tlsa_usable(r->tlsa_usage, r->tlsa_selector,
		    r->tlsa_mtype, r->txtlen))
			continue;
		usable = 1;
		/* as lookup/mx.c sends it */
		memset(&t, 0, sizeof(t));
		snprintf(t.host, sizeof(t.host), "mx.example.test");
		t.kind = LKA_TLSA_RECORD;
		t.usage = r->tlsa_usage;
		t.selector = r->tlsa_selector;
		t.mtype = r->tlsa_mtype;
		t.datalen = (uint16_t)r->txtlen;
		memcpy(t.data, dns_rr_txt(&res, r), r->txtlen);
		CHECK(proto_valid_lka_mx_tlsa(&t) == 0);
	}
	kind = dns_tlsa_kind(&res);
	CHECK(kind == LKA_TLSA_NONE || kind == LKA_TLSA_RECORD ||
	    kind == LKA_TLSA_UNUSABLE || kind == LKA_TLSA_BOGUS);
	CHECK((kind == LKA_TLSA_RECORD) ==
	    (res.status == DNS_OK && res.secure && usable));
	CHECK((kind == LKA_TLSA_BOGUS) == (res.status == DNS_TEMPFAIL));
	return 0;
}
