/*
 * tlsrpt_report.c -- the JSON of an SMTP TLS report (RFC 8460 4), its
 * file name and Subject; tlsrpt_report.h says who calls what.
 *
 * Built with the project's JSON writer (json.c), never by hand: the
 * policy strings come from DNS and HTTPS, the MX names from DNS and the
 * failure reasons from a peer's certificate, and none of them may break
 * the document.  The dates are RFC 3339 date-times in UTC (4.4).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "json.h"
#include "tlsrpt_report.h"

static void
kv_datetime(struct json *j, const char *key, time_t t)
{
	struct tm	tm;
	char		buf[32];

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		json_key(j, key);
		json_array_end(j);	/* marks the document broken */
		return;
	}
	json_kv_string(j, key, buf);
}

static void
kv_ip(struct json *j, const char *key, const struct sockaddr_storage *ss)
{
	char	buf[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    (const void *)ss)->sin_addr, buf, sizeof(buf));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)ss)->sin6_addr, buf, sizeof(buf));
	else
		return;
	json_kv_string(j, key, buf);
}

/* each line of s as a string of the array being written */
static void
lines(struct json *j, const char *s, const char *prefix)
{
	const char	*nl, *p;
	size_t		 n, pl = prefix ? strlen(prefix) : 0;

	for (p = s; p != NULL && *p != '\0'; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (prefix) {
			/* "mx: pattern" lines only, the pattern trimmed */
			if (n <= pl || strncmp(p, prefix, pl) != 0)
				continue;
			p += pl;
			n -= pl;
			while (n > 0 && (*p == ' ' || *p == '\t')) {
				p++;
				n--;
			}
			while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				n--;
		}
		if (n > 0)
			json_string(j, p, n);
	}
}

/* the sts policy's "mx:" lines, or else the hosts seen */
static void
mx_hosts(struct json *j, const struct tlsrpt_policy_sum *ps)
{
	const char	*p;
	int		 has_mx = 0;

	if (ps->type == TLSRPT_POLICY_STS && ps->policy_string != NULL)
		for (p = ps->policy_string; p != NULL; p = strchr(p, '\n')) {
			if (*p == '\n')
				p++;
			if (strncmp(p, "mx:", 3) == 0) {
				has_mx = 1;
				break;
			}
		}
	json_key(j, "mx-host");
	json_array_begin(j);
	if (has_mx)
		lines(j, ps->policy_string, "mx:");
	else
		lines(j, ps->mx_hosts, NULL);
	json_array_end(j);
}

static int
write_policy(struct json *j, const char *policy_domain,
    const struct tlsrpt_policy_sum *ps)
{
	const struct tlsrpt_failure	*f;
	const char			*type, *res;
	size_t				 i;

	if ((type = tlsrpt_policy_type_name(ps->type)) == NULL)
		return -1;
	json_object_begin(j);
	json_key(j, "policy");
	json_object_begin(j);
	json_kv_string(j, "policy-type", type);
	if (ps->policy_string != NULL && *ps->policy_string != '\0') {
		json_key(j, "policy-string");
		json_array_begin(j);
		lines(j, ps->policy_string, NULL);
		json_array_end(j);
	}
	json_kv_string(j, "policy-domain", policy_domain);
	mx_hosts(j, ps);
	json_object_end(j);
	json_key(j, "summary");
	json_object_begin(j);
	json_kv_uint(j, "total-successful-session-count", ps->success);
	json_kv_uint(j, "total-failure-session-count", ps->failure);
	json_object_end(j);
	if (ps->nfail > 0) {
		json_key(j, "failure-details");
		json_array_begin(j);
		for (i = 0; i < ps->nfail; i++) {
			f = &ps->fails[i];
			if (f->result == TLSRPT_SUCCESS ||
			    (res = tlsrpt_result_name(f->result)) == NULL)
				return -1;
			json_object_begin(j);
			json_kv_string(j, "result-type", res);
			kv_ip(j, "sending-mta-ip", &f->sending_ip);
			if (f->mx_host[0] != '\0')
				json_kv_string(j, "receiving-mx-hostname",
				    f->mx_host);
			kv_ip(j, "receiving-ip", &f->receiving_ip);
			json_kv_uint(j, "failed-session-count", f->count);
			if (f->reason[0] != '\0')
				json_kv_string(j, "failure-reason-code",
				    f->reason);
			json_object_end(j);
		}
		json_array_end(j);
	}
	json_object_end(j);
	return 0;
}

/* a report id: the left of the Subject's msg-id (dot-atom-text) */
static int
valid_id(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 128)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr(".-_+", *s) == NULL)
			return 0;
	return 1;
}

static int
valid_meta(const struct tlsrpt_report_meta *m, const char *policy_domain)
{
	return m->org_name != NULL && m->contact_info != NULL &&
	    valid_id(m->report_id) && m->submitter != NULL &&
	    domain_valid(m->submitter, 0) && policy_domain != NULL &&
	    domain_valid(policy_domain, 0) && m->begin <= m->end;
}

char *
tlsrpt_report_json(const struct tlsrpt_report_meta *m,
    const char *policy_domain, const struct tlsrpt_policy_sum *ps,
    size_t npolicy, size_t *len)
{
	struct json	 j;
	const char	*doc;
	char		*out = NULL;
	size_t		 i, n;

	if (!valid_meta(m, policy_domain) || npolicy == 0)
		return NULL;
	json_init(&j);
	json_object_begin(&j);
	json_kv_string(&j, "organization-name", m->org_name);
	json_key(&j, "date-range");
	json_object_begin(&j);
	kv_datetime(&j, "start-datetime", m->begin);
	kv_datetime(&j, "end-datetime", m->end);
	json_object_end(&j);
	json_kv_string(&j, "contact-info", m->contact_info);
	json_kv_string(&j, "report-id", m->report_id);
	json_key(&j, "policies");
	json_array_begin(&j);
	for (i = 0; i < npolicy; i++)
		if (write_policy(&j, policy_domain, &ps[i]) == -1)
			goto done;
	json_array_end(&j);
	json_object_end(&j);
	if ((doc = json_finish(&j, &n)) == NULL ||
	    (out = malloc(n + 1)) == NULL)
		goto done;
	memcpy(out, doc, n + 1);
	if (len)
		*len = n;
done:
	json_free(&j);
	return out;
}

int
tlsrpt_report_filename(const struct tlsrpt_report_meta *m,
    const char *policy_domain, char *out, size_t outlen)
{
	int	n;

	if (!valid_meta(m, policy_domain))
		return -1;
	n = snprintf(out, outlen, "%s!%s!%lld!%lld.json.gz", m->submitter,
	    policy_domain, (long long)m->begin, (long long)m->end);
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

int
tlsrpt_report_subject(const struct tlsrpt_report_meta *m,
    const char *policy_domain, char *out, size_t outlen)
{
	int	n;

	if (!valid_meta(m, policy_domain))
		return -1;
	n = snprintf(out, outlen, "Report Domain: %s Submitter: %s "
	    "Report-ID: <%s@%s>", policy_domain, m->submitter, m->report_id,
	    m->submitter);
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}
