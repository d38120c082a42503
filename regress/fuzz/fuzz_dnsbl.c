/*
 * fuzz_dnsbl.c -- libFuzzer harness for lookup/dnsbl.c's list spec
 * parser (smtpd.conf "zone=pattern;...*weight"), and the answer filter
 * and question names built from what it accepts.
 *
 * Checked beyond "does not crash": an accepted spec has a lower-case
 * zone of LDH/underscore labels that fits an IPv6 question, a weight in
 * -1000..1000 and at most DNSBL_MAX_FILTERS patterns; a rejected one
 * has an error message; question names for an IPv4 and an IPv6 address
 * fit DNS_NAME_MAX and end in the zone.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <ctype.h>
#include <string.h>

#include "fuzz.h"

#include "dns.h"
#include "dnsbl.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dnsbl_list	l;
	struct sockaddr_storage		ss;
	char				*spec, err[256], name[DNS_NAME_MAX];
	const char			*z;
	uint32_t			addrs[4] = { 0x7f000002, 0x7f00000a,
	    0x7fffffff, 0x0a000001 };
	size_t				zl;
	int				r;

	if ((spec = malloc(size + 1)) == NULL)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	err[0] = '\0';
	r = dnsbl_parse_list(spec, &l, err, sizeof(err));
	free(spec);
	CHECK(r == 0 || r == -1);
	if (r == -1) {
		CHECK(err[0] != '\0');
		return 0;
	}
	zl = strnlen(l.zone, DNSBL_ZONE_MAX);
	CHECK(zl > 0 && zl < DNSBL_ZONE_MAX && zl <= 253 - 64);
	for (z = l.zone; *z; z++)
		CHECK(islower((unsigned char)*z) || isdigit((unsigned char)*z) ||
		    *z == '-' || *z == '_' || *z == '.');
	CHECK(l.weight >= -1000 && l.weight <= 1000);
	CHECK(l.nfilter <= DNSBL_MAX_FILTERS);
	r = dnsbl_answer_hits(&l, addrs, 4);
	CHECK(r == 0 || r == 1);

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET6;
	((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr[15] = 1;
	CHECK(dnsbl_query_name(&ss, l.zone, name, sizeof(name)) == 0);
	CHECK(strlen(name) == 64 + zl && strcmp(name + 64, l.zone) == 0);
	ss.ss_family = AF_INET;
	CHECK(dnsbl_query_name(&ss, l.zone, name, sizeof(name)) == 0);
	CHECK(strcmp(name + strlen(name) - zl, l.zone) == 0);
	return 0;
}
