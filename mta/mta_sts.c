/*
 * mta_sts.c -- MTA-STS (RFC 8461) as the mta applies it.
 *
 * Lookup finds, fetches and caches a domain's policy (lookup/sts.c) and
 * sends it with the MX answer (IMSG_LKA_MX_STS) when we ask for it:
 * for a route to a domain's MX hosts (no relay host) at the TLS levels
 * may, encrypt and dane, unless "mta mta-sts no".  verify, secure and
 * dane-only already ask for more (REQUIRETLS raises a route to verify),
 * "tls none" asked for nothing, and mail with "TLS-Required: No" (RFC
 * 8689) is sent as if there were no policy.
 *
 * Under a policy in mode "enforce" (RFC 8461 5):
 *  - only the MX hosts that match one of the policy's patterns are
 *    tried (4.1); with none left, the mail waits (4.7.5), never goes
 *    elsewhere;
 *  - each session must do STARTTLS and the certificate must verify
 *    (PKIX to the trust anchors, the MX host name: as "tls verify"),
 *    or the host is given up for the next; no fallback to plain text.
 * DANE wins where it applies (RFC 8461 2): a session whose TLS was
 * authenticated by usable TLSA records (MTA_TLS_DANE) is not judged by
 * the MTA-STS policy, and the dane branch of mta_session.c decides
 * first.  In mode "testing" mail goes as it would without a policy;
 * what enforce would have refused is only reported (TLS-RPT) and
 * logged.  Mode "none" changes nothing.
 *
 * Every outcome under a policy, and every failure to get one, goes to
 * TLS-RPT through mta_tlsrpt_note() with policy type "sts".
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#define POSTHASTE_MTA_INTERNAL
#include "log.h"
#include "mta.h"
#include "proc.h"
#include "proto.h"
#include "sts.h"
#include "tlsrpt.h"

static int	mta_sts_host_matches(const struct lka_mx_sts *, const char *);

int
mta_sts_wanted(const struct mta_route *rt)
{
	/* RFC 8689 4.1: "TLS-Required: No" mail ignores the policy */
	if (!conf->mta_sts || rt->scheme != MTA_SCHEME_MX ||
	    rt->domain[0] == '\0' || rt->action->relay_host[0] != '\0' ||
	    rt->tls_optional)
		return 0;
	switch (rt->tls_level) {
	case RELAY_TLS_OPPORTUNISTIC:
	case RELAY_TLS_REQUIRE:
	case RELAY_TLS_DANE:
		return 1;
	default:
		return 0;
	}
}

static int
mta_sts_mode(const struct mta_route *rt)
{
	if (rt->sts == NULL || rt->sts->status != LKA_STS_POLICY ||
	    !mta_sts_wanted(rt))
		return -1;
	return (int)rt->sts->mode;
}

int
mta_sts_host_listed(const struct mta_route *rt, const char *host)
{
	return rt->sts != NULL && mta_sts_host_matches(rt->sts, host);
}

int
mta_sts_enforced(const struct mta_route *rt)
{
	return mta_sts_mode(rt) == STS_MODE_ENFORCE;
}

int
mta_sts_testing(const struct mta_route *rt)
{
	return mta_sts_mode(rt) == STS_MODE_TESTING;
}

static int
mta_sts_host_matches(const struct lka_mx_sts *p, const char *host)
{
	uint32_t	i;

	for (i = 0; i < p->nmx; i++)
		if (sts_mx_match(p->mx[i], host))
			return 1;
	return 0;
}

/*
 * The policy as TLS-RPT's "policy-string" (RFC 8460 4.4): its lines,
 * in the canonical form of what lookup parsed.
 */
static void
mta_sts_report_policy(const struct mta_route *rt, const struct lka_mx_sts *p)
{
	char		*buf;
	size_t		 size = 128 + (size_t)STS_MX_MAX * (STS_NAME_MAX + 8);
	size_t		 n;
	uint32_t	 i;

	if ((buf = malloc(size)) == NULL)
		fatal("malloc");
	n = (size_t)snprintf(buf, size, "version: STSv1\nmode: %s",
	    sts_mode_name((int)p->mode));
	for (i = 0; i < p->nmx && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "\nmx: %s", p->mx[i]);
	if (n < size)
		snprintf(buf + n, size - n, "\nmax_age: %u", p->max_age);
	mta_tlsrpt_policy(rt, NULL, TLSRPT_POLICY_STS, buf);
	free(buf);
}

/*
 * Lookup's answer for the route, before its hosts: kept for the
 * sessions until the next resolution.  A failure to get a policy is no
 * policy (RFC 8461 5: mail goes as it would), but it is reported.
 */
void
mta_sts_set(struct mta_route *rt, const struct lka_mx_sts *sts)
{
	int	result = -1;

	if (rt->sts == NULL && (rt->sts = malloc(sizeof(*rt->sts))) == NULL)
		fatal("malloc");
	*rt->sts = *sts;
	switch (sts->status) {
	case LKA_STS_FETCH_ERROR:
		result = TLSRPT_STS_POLICY_FETCH_ERROR;
		break;
	case LKA_STS_INVALID:
		result = TLSRPT_STS_POLICY_INVALID;
		break;
	case LKA_STS_WEBPKI:
		result = TLSRPT_STS_WEBPKI_INVALID;
		break;
	case LKA_STS_POLICY:
		log_debug("mta-sts: %s: policy id %s, mode %s (%s)",
		    rt->domain, sts->id, sts_mode_name((int)sts->mode),
		    sts->detail);
		mta_sts_report_policy(rt, sts);
		break;
	}
	if (result != -1)
		mta_tlsrpt_note(rt, NULL, TLSRPT_POLICY_STS, result,
		    sts->detail);
}

/*
 * The route's hosts are in: under enforce, keep only those the policy
 * names.  0, or -1 when none is left (the route's tasks were deferred).
 */
int
mta_sts_filter_hosts(struct mta_route *rt)
{
	size_t	i, kept = 0;
	char	text[ENV_TEXT_MAX];
	int	mode = mta_sts_mode(rt);

	if (mode != STS_MODE_ENFORCE && mode != STS_MODE_TESTING)
		return 0;
	for (i = 0; i < rt->nhosts; i++) {
		/* DANE wins where the host has usable TLSA records (RFC
		 * 8461 2): it is authenticated that way, listed or not */
		if (mta_sts_host_matches(rt->sts, rt->hosts[i].name) ||
		    mta_dane_host_state(rt, &rt->hosts[i]) ==
		    LKA_TLSA_RECORD) {
			rt->hosts[kept++] = rt->hosts[i];
			continue;
		}
		log_info("mta-sts: %s: MX host %s is not in the policy "
		    "(mode %s)%s", rt->domain, rt->hosts[i].name,
		    sts_mode_name(mode), mode == STS_MODE_ENFORCE ?
		    ": not used" : "");
		/* testing: the session to it counts (mta_session.c) */
		if (mode == STS_MODE_TESTING) {
			rt->hosts[kept++] = rt->hosts[i];
			continue;
		}
		mta_tlsrpt_note(rt, &rt->hosts[i], TLSRPT_POLICY_STS,
		    TLSRPT_VALIDATION_FAILURE, MTA_STS_NOT_LISTED);
	}
	rt->nhosts = kept;
	if (kept > 0)
		return 0;
	snprintf(text, sizeof(text), "4.7.5 MTA-STS: no MX host of %s "
	    "matches its policy (id %s)", rt->domain, rt->sts->id);
	log_info("mta-sts: %s: %s", rt->domain, text + 6);
	mta_route_error(rt, PROTO_TEMPFAIL, text);
	return -1;
}

/* the RFC 8460 result type of a certificate verification failure */
int
mta_sts_verify_result(long vr)
{
	switch (vr) {
	case X509_V_OK:
		return TLSRPT_SUCCESS;
	case X509_V_ERR_HOSTNAME_MISMATCH:
		return TLSRPT_CERT_HOST_MISMATCH;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TLSRPT_CERT_EXPIRED;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		return TLSRPT_CERT_NOT_TRUSTED;
	default:
		return TLSRPT_VALIDATION_FAILURE;
	}
}
