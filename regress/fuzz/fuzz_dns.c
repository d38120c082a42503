/*
 * fuzz_dns.c -- libFuzzer harness for lookup/dns.c's dns_parse_answer():
 * the DNS reply as the lookup process receives it from the resolver (and
 * so, through a resolver that passes answers on, from any name server on
 * the Internet).  The first byte chooses the question type and the
 * resolver's result code; the rest is the wire message.  TXT records
 * must lie whole and NUL-terminated inside the answer's text buffer.
 *
 * Beyond "does not crash", the promises of dns.h are checked: a known
 * status, at most DNS_MAX_RR records (none unless DNS_OK), all of the type asked, names lower
 * case LDH without a trailing dot and NUL-terminated inside their field,
 * addresses of the family the type says, a status of DNS_OK exactly when
 * there are records.  With DNS_Q_ANYNAME (SPF's MX and PTR questions),
 * names are any printable ASCII without spaces, still lower case.
 */

#include <sys/socket.h>
#include <netinet/in.h>

#include <ctype.h>
#include <string.h>

#include "fuzz.h"

#include "dns.h"

static const int qtypes[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_PTR,
    DNS_T_TXT, DNS_T_MX | DNS_Q_ANYNAME, DNS_T_PTR | DNS_Q_ANYNAME };

static void
check_name(const char *name, int may_be_empty)
{
	size_t	n = strnlen(name, DNS_NAME_MAX);

	CHECK(n < DNS_NAME_MAX);
	CHECK(may_be_empty || n > 0);
	if (n == 0)
		return;
	CHECK(name[0] != '.' && name[n - 1] != '.');
	CHECK(strstr(name, "..") == NULL);
	for (; *name; name++)
		CHECK(islower((unsigned char)*name) ||
		    isdigit((unsigned char)*name) || *name == '-' ||
		    *name == '_' || *name == '.');
}

/* DNS_Q_ANYNAME: printable ASCII without spaces, not ending in '\\' */
static void
check_any_name(const char *name, int may_be_empty)
{
	size_t	n = strnlen(name, DNS_NAME_MAX);

	CHECK(n < DNS_NAME_MAX);
	CHECK(may_be_empty || n > 0);
	if (n == 0)
		return;
	CHECK(name[n - 1] != '\\');
	for (; *name; name++)
		CHECK(*name > ' ' && *name < 0x7f &&
		    !isupper((unsigned char)*name));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_result	res;
	const struct dns_rr		*r;
	int				qtype, rcode;
	size_t				i;

	if (size < 1)
		return 0;
	qtype = qtypes[(data[0] & 7) % 7];
	/* mostly NOERROR; sometimes NXDOMAIN or SERVFAIL from the resolver */
	rcode = (data[0] >> 3) == 1 ? 3 : (data[0] >> 3) == 2 ? 2 : 0;
	memset(&res, 0xa5, sizeof(res));
	dns_parse_answer(&res, qtype, rcode, data + 1, (int)(size - 1));

	CHECK(res.status == DNS_OK || res.status == DNS_NODATA ||
	    res.status == DNS_NXDOMAIN || res.status == DNS_TEMPFAIL);
	CHECK(res.nrr <= DNS_MAX_RR);
	CHECK((res.status == DNS_OK) == (res.nrr > 0));
	for (i = 0; i < res.nrr; i++) {
		r = &res.rr[i];
		CHECK(r->type == (qtype & ~DNS_Q_ANYNAME));
		switch (qtype) {
		case DNS_T_A:
			CHECK(r->addr.ss_family == AF_INET);
			break;
		case DNS_T_AAAA:
			CHECK(r->addr.ss_family == AF_INET6);
			break;
		case DNS_T_MX:
			/* "" is the null MX's root (RFC 7505) */
			check_name(r->name, 1);
			break;
		case DNS_T_PTR:
			check_name(r->name, 0);
			break;
		case DNS_T_MX | DNS_Q_ANYNAME:
			check_any_name(r->name, 1);
			break;
		case DNS_T_PTR | DNS_Q_ANYNAME:
			check_any_name(r->name, 0);
			break;
		case DNS_T_TXT:
			CHECK(r->txt < res.txtused);
			CHECK(r->txtlen < res.txtused - r->txt);
			CHECK(res.txtused <= DNS_TXT_MAX);
			CHECK(res.txtbuf[r->txt + r->txtlen] == '\0');
			break;
		}
	}
	return 0;
}
