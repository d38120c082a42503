/*
 * tlsa.c -- TLSA records (RFC 6698) as DANE for SMTP reads them (RFC
 * 7672): which records an SMTP client may use, and what a validated
 * answer means for the MX host it was asked for.  mx.c asks; dns.c
 * parses the wire.
 *
 * Only DANE-TA(2) and DANE-EE(3) are usable for SMTP (RFC 7672 3.1.3):
 * an MX host's certificate is not expected to chain to any CA the
 * client knows, so PKIX-TA(0) and PKIX-EE(1) mean nothing here.  A
 * record whose matching type says SHA-256 or SHA-512 must carry a digest
 * of that length (RFC 7671 10.1.2: an unusable record is ignored, never
 * an error).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>

#include "dns.h"
#include "proto.h"

int
dns_tlsa_usable(uint8_t usage, uint8_t selector, uint8_t mtype,
    size_t datalen)
{
	if (usage != 2 && usage != 3)
		return 0;
	if (selector > 1)
		return 0;
	switch (mtype) {
	case 0:
		return datalen > 0 && datalen <= DNS_TLSA_DATA_MAX;
	case 1:
		return datalen == 32;
	case 2:
		return datalen == 64;
	default:
		return 0;
	}
}

int
dns_tlsa_name(const char *host, uint16_t port, char *buf, size_t len)
{
	int	n;

	n = snprintf(buf, len, "_%u._tcp.%s", port, host);
	return n < 0 || (size_t)n >= len || (size_t)n >= DNS_NAME_MAX ? -1 : 0;
}

/*
 * RFC 7672 2.2: a secure answer with records is used; a secure denial
 * (NODATA, NXDOMAIN) and any insecure answer mean no DANE for the host;
 * a failed lookup (bogus, SERVFAIL, timeout: DNS_TEMPFAIL) may hide
 * records an attacker suppressed, so the host must not be used without
 * DANE (2.2: "the SMTP client MUST NOT ... plaintext").
 */
int
dns_tlsa_kind(const struct dns_result *res)
{
	size_t	i;

	if (res->status == DNS_TEMPFAIL || res->bogus)
		return LKA_TLSA_BOGUS;
	if (res->status != DNS_OK || !res->secure)
		return LKA_TLSA_NONE;
	for (i = 0; i < res->nrr; i++)
		if (dns_tlsa_usable(res->rr[i].tlsa_usage,
		    res->rr[i].tlsa_selector, res->rr[i].tlsa_mtype,
		    res->rr[i].txtlen))
			return LKA_TLSA_RECORD;
	return LKA_TLSA_UNUSABLE;
}

_Static_assert(DNS_TLSA_DATA_MAX == LKA_TLSA_DATA_MAX,
    "a TLSA record lookup keeps fits in its message");
