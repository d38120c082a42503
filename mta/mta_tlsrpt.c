/*
 * mta_tlsrpt.c -- TLS-RPT (RFC 8460) outcomes as the mta sees them.
 *
 * Each TLS outcome under a DANE or MTA-STS policy (a session that
 * negotiated and verified TLS, or one that failed to; a policy that
 * failed before any session) goes to lookup as one IMSG_LKA_TLSRPT.
 * Lookup reads the policy domain's "_smtp._tls" record and passes the
 * outcome on to the queue, which keeps the day's counts and mails the
 * reports (lookup/tlsrpt_collect.c, queue/tlsrpt_send.c).  Why not
 * count here: the mta is chrooted in an empty directory and restarts on
 * a reload, while counts must outlive both; and only lookup does DNS.
 *
 * The policy string of a report (section 4.3: the MTA-STS policy's
 * lines, or the TLSA records) comes from mta_tlsrpt_policy(), which the
 * DANE and MTA-STS code call when a route (MTA-STS) or one of its hosts
 * (DANE: each MX host has its own TLSA records, so its own policy in the
 * report) learns its policy: kept here per policy domain, host and type
 * (a small table, the least recently used entry replaced), so that
 * mta_tlsrpt_note() keeps its short signature.
 *
 * Nothing is sent when "tlsrpt reports" is off: lookup would drop it.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define POSTHASTE_MTA_INTERNAL
#include "config.h"
#include "log.h"
#include "mproc.h"
#include "mta.h"
#include "proc.h"
#include "proto.h"
#include "tlsrpt.h"

#define POLICIES_MAX	64

static struct {
	char	 domain[256];
	char	 host[256];		/* "": the whole domain's */
	int	 type;
	char	 policy[TLSRPT_POLICY_STRING_MAX];
	time_t	 used;
} policies[POLICIES_MAX];

static int
policy_is(size_t i, const char *domain, const char *host, int type)
{
	return policies[i].type == type &&
	    strcmp(policies[i].domain, domain) == 0 &&
	    strcmp(policies[i].host, host) == 0;
}

void
mta_tlsrpt_policy(const struct mta_route *rt, const struct mta_host *h,
    int policy_type, const char *policy_string)
{
	const char	*host = h != NULL ? h->name : "";
	size_t		 i, slot = 0;

	if (conf->tlsrpt_report_from[0] == '\0' || policy_string == NULL)
		return;
	for (i = 0; i < POLICIES_MAX; i++) {
		if (policy_is(i, rt->domain, host, policy_type)) {
			slot = i;
			break;
		}
		if (policies[i].used < policies[slot].used)
			slot = i;
	}
	snprintf(policies[slot].domain, sizeof(policies[slot].domain), "%s",
	    rt->domain);
	snprintf(policies[slot].host, sizeof(policies[slot].host), "%s",
	    host);
	policies[slot].type = policy_type;
	/* a policy longer than the field: cut at its last whole line */
	if (snprintf(policies[slot].policy, sizeof(policies[slot].policy),
	    "%s", policy_string) >= (int)sizeof(policies[slot].policy)) {
		char *nl = strrchr(policies[slot].policy, '\n');

		if (nl != NULL)
			*nl = '\0';
	}
	policies[slot].used = time(NULL);
}

/* the host's own policy, else the domain's, else none */
static const char *
policy_of(const char *domain, const char *host, int type)
{
	size_t	i, pass;

	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < POLICIES_MAX; i++)
			if (policy_is(i, domain, pass == 0 ? host : "", type)) {
				policies[i].used = time(NULL);
				return policies[i].policy;
			}
	return "";
}

/* the address without its port (a report counts by address) */
static void
ip_only(struct sockaddr_storage *dst, const struct sockaddr_storage *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src->ss_family == AF_INET) {
		struct sockaddr_in *d = (struct sockaddr_in *)dst;

		d->sin_family = AF_INET;
		d->sin_addr = ((const struct sockaddr_in *)src)->sin_addr;
	} else if (src->ss_family == AF_INET6) {
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)dst;

		d->sin6_family = AF_INET6;
		d->sin6_addr = ((const struct sockaddr_in6 *)src)->sin6_addr;
	}
}

/*
 * The kernel picks our address and port at connect(2), even a
 * non-blocking one still in progress: so getsockname(2) says now which
 * of our addresses the host sees.  Unknown (family 0) when it fails.
 */
void
mta_tlsrpt_source(struct mta_host *h, int fd)
{
	socklen_t	len = sizeof(h->src);

	if (conf->tlsrpt_report_from[0] == '\0')
		return;
	if (getsockname(fd, (struct sockaddr *)&h->src, &len) == -1) {
		log_warn("tlsrpt: getsockname");
		memset(&h->src, 0, sizeof(h->src));
	}
}

/*
 * A "tlsa" policy's string (RFC 8460 4.3): the host's usable TLSA
 * records as the route keeps them (mta_dane.c), "usage selector mtype
 * hex" a line; those that no longer fit are left out.
 */
static void
tlsa_policy(const struct mta_route *rt, const char *host, char *out,
    size_t outlen)
{
	static const char	 hex[] = "0123456789abcdef";
	const struct mta_tlsa	*t;
	size_t			 i, k, n = 0, need;
	int			 w;

	out[0] = '\0';
	for (i = 0; i < rt->ntlsa; i++) {
		t = &rt->tlsa[i];
		if (strcmp(t->host, host) != 0)
			continue;
		need = (n > 0) + 12 + 2 * (size_t)t->datalen;
		if (n + need >= outlen)
			break;
		w = snprintf(out + n, outlen - n, "%s%u %u %u ",
		    n > 0 ? "\n" : "", t->usage, t->selector, t->mtype);
		n += (size_t)w;
		for (k = 0; k < t->datalen; k++) {
			out[n++] = hex[t->data[k] >> 4];
			out[n++] = hex[t->data[k] & 15];
		}
		out[n] = '\0';
	}
}

void
mta_tlsrpt_note(const struct mta_route *rt, const struct mta_host *h,
    int policy_type, int result, const char *detail)
{
	struct lka_tlsrpt	o;

	log_debug("tlsrpt: %s %s policy %d result %d%s%s", rt->domain,
	    h != NULL ? h->name : "-", policy_type, result,
	    detail != NULL ? ": " : "", detail != NULL ? detail : "");
	if (conf->tlsrpt_report_from[0] == '\0' || rt->domain[0] == '\0')
		return;
	memset(&o, 0, sizeof(o));
	snprintf(o.policy_domain, sizeof(o.policy_domain), "%s", rt->domain);
	o.policy_type = policy_type;
	o.result = result;
	if (h != NULL) {
		snprintf(o.mx_host, sizeof(o.mx_host), "%s", h->name);
		ip_only(&o.receiving_ip, &h->ss);
		ip_only(&o.sending_ip, &h->src);
	}
	if (detail != NULL && result != TLSRPT_SUCCESS)
		snprintf(o.reason, sizeof(o.reason), "%s", detail);
	snprintf(o.policy, sizeof(o.policy), "%s",
	    policy_of(rt->domain, o.mx_host, policy_type));
	if (o.policy[0] == '\0' && policy_type == TLSRPT_POLICY_TLSA)
		tlsa_policy(rt, o.mx_host, o.policy, sizeof(o.policy));
	if (proto_valid_lka_tlsrpt(&o) == -1) {
		log_warnx("tlsrpt: %s: an outcome out of range, not counted",
		    rt->domain);
		return;
	}
	mproc_compose(mta_lookup_channel(), IMSG_LKA_TLSRPT, 0, -1, &o,
	    sizeof(o));
}
