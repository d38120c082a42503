/*
 * mta_tlsrpt.c -- TLS-RPT (RFC 8460) outcomes as the mta sees them.
 *
 * For now only logged at debug level; the counting and the daily
 * reports are being built (issue 20).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <string.h>

#define POSTHASTE_MTA_INTERNAL
#include "log.h"
#include "mta.h"
#include "tlsrpt.h"

void
mta_tlsrpt_note(const struct mta_route *rt, const struct mta_host *h,
    int policy_type, int result, const char *detail)
{
	log_debug("tlsrpt: %s %s policy %d result %d%s%s", rt->domain,
	    h != NULL ? h->name : "-", policy_type, result,
	    detail != NULL ? ": " : "", detail != NULL ? detail : "");
}

/*
 * A stand-in until the tlsrpt branch (which keeps the policy strings)
 * is merged: on a conflict here, take that branch's file.
 */
void
mta_tlsrpt_policy(const struct mta_route *rt, const struct mta_host *h,
    int policy_type, const char *policy_string)
{
	(void)h;
	log_debug("tlsrpt: %s policy %d: %zu bytes", rt->domain, policy_type,
	    policy_string != NULL ? strlen(policy_string) : 0);
}
