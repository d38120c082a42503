/*
 * mta_tlsrpt.c -- TLS-RPT (RFC 8460) outcomes as the mta sees them.
 *
 * For now only logged at debug level; the counting and the daily
 * reports are being built (issue 20).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>

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
