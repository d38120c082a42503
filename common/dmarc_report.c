/*
 * dmarc_report.c -- DMARC aggregate reports (RFC 7489 7.2, Appendix C).
 *
 * Why it looks the way it does:
 *  - The XML is written by one small writer that escapes every text
 *    node: selectors, domains and contact texts come from DNS, messages
 *    and the config, and a '<' or '&' in one must not break (or inject
 *    into) a report that the domain owner's software parses.
 *  - Element order follows the schema exactly (regress/dmarc/rua.xsd;
 *    sequences are ordered, and the test validates with xmllint), and
 *    no namespace is declared: that is what deployed receivers send and
 *    report parsers expect.
 *  - gzip through zlib in one call (gzip_buffer(), common/gzip.c): a
 *    day's report for one domain is small (one record per source and
 *    result combination).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "dmarc_report.h"

struct xbuf {
	char	*p;
	size_t	 len, cap;
	int	 err;
};

static void
xb_add(struct xbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t	 cap = b->cap ? b->cap : 4096;
		char	*np;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL) {
			b->err = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
xb_str(struct xbuf *b, const char *s)
{
	xb_add(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
xb_printf(struct xbuf *b, const char *fmt, ...)
{
	char	buf[512];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		b->err = 1;
		return;
	}
	xb_add(b, buf, (size_t)n);
}

/* text content, escaped; non-printable and non-ASCII bytes as '?' */
static void
xb_text(struct xbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char	c = (unsigned char)*s;

		switch (c) {
		case '&':
			xb_str(b, "&amp;");
			break;
		case '<':
			xb_str(b, "&lt;");
			break;
		case '>':
			xb_str(b, "&gt;");
			break;
		case '"':
			xb_str(b, "&quot;");
			break;
		default:
			if (c < 0x20 || c >= 0x7f)
				c = '?';
			xb_add(b, (const char *)&c, 1);
		}
	}
}

/* <name>text</name> at an indent */
static void
xb_elem(struct xbuf *b, int indent, const char *name, const char *text)
{
	xb_printf(b, "%*s<%s>", indent, "", name);
	xb_text(b, text);
	xb_printf(b, "</%s>\n", name);
}

static const char *
dkim_result_name(int r)
{
	static const char *names[] = { "none", "pass", "fail", "policy",
	    "neutral", "fail", "temperror", "permerror" };

	return r >= 0 && r < 8 ? names[r] : "permerror";
}

static const char *
spf_result_name(int r)
{
	static const char *names[] = { "none", "pass", "fail", "fail",
	    "neutral", "softfail", "temperror", "permerror" };

	return r >= 0 && r < 8 ? names[r] : "permerror";
}

/* IPv4 dotted, IPv6 as eight groups (RFC 4291 2.2 form 1) */
static int
ip_text(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		return inet_ntop(AF_INET, &s4->sin_addr, out,
		    (socklen_t)outlen) ? 0 : -1;
	}
	if (ss->ss_family == AF_INET6) {
		const uint8_t	*a =
		    ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
		int		 n;

		n = snprintf(out, outlen, "%x:%x:%x:%x:%x:%x:%x:%x",
		    a[0] << 8 | a[1], a[2] << 8 | a[3], a[4] << 8 | a[5],
		    a[6] << 8 | a[7], a[8] << 8 | a[9], a[10] << 8 | a[11],
		    a[12] << 8 | a[13], a[14] << 8 | a[15]);
		return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
	}
	return -1;
}

static int
valid_domain(const char *s)
{
	size_t	label = 0, n = 0;

	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++, n++) {
		unsigned char	c = (unsigned char)*s;

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((isalnum(c) || c == '-' || c == '_') &&
		    ++label <= 63)
			;
		else
			return 0;
	}
	return label > 0 && n <= 253;
}

/* a report id: also the left of the Subject's msg-id (dot-atom-text) */
static int
valid_id(const char *s)
{
	size_t	n;

	if (s == NULL || (n = strlen(s)) == 0 || n > 128 || s[0] == '.' ||
	    s[n - 1] == '.' || strstr(s, "..") != NULL)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-' &&
		    *s != '_')
			return 0;
	return 1;
}

static const char *
fo_text(int fo, char *buf, size_t len)
{
	size_t	n = 0;

	buf[0] = '\0';
	if (fo & DMARC_FO_0)
		n += (size_t)snprintf(buf + n, len - n, "%s0", n ? ":" : "");
	if (fo & DMARC_FO_1)
		n += (size_t)snprintf(buf + n, len - n, "%s1", n ? ":" : "");
	if (fo & DMARC_FO_D)
		n += (size_t)snprintf(buf + n, len - n, "%sd", n ? ":" : "");
	if (fo & DMARC_FO_S)
		snprintf(buf + n, len - n, "%ss", n ? ":" : "");
	if (buf[0] == '\0')
		snprintf(buf, len, "0");
	return buf;
}

static void
write_row(struct xbuf *b, const struct dmarc_report_row *r)
{
	char	ip[64];
	size_t	i;

	if (ip_text(&r->source_ip, ip, sizeof(ip)) == -1) {
		b->err = 1;
		return;
	}
	xb_str(b, "  <record>\n    <row>\n");
	xb_elem(b, 6, "source_ip", ip);
	xb_printf(b, "      <count>%" PRIu64 "</count>\n", r->count);
	xb_str(b, "      <policy_evaluated>\n");
	xb_elem(b, 8, "disposition", dmarc_policy_name(r->disposition));
	xb_elem(b, 8, "dkim", r->dkim_pass ? "pass" : "fail");
	xb_elem(b, 8, "spf", r->spf_pass ? "pass" : "fail");
	if (r->sampled_out)
		xb_str(b, "        <reason>\n"
		    "          <type>sampled_out</type>\n"
		    "        </reason>\n");
	xb_str(b, "      </policy_evaluated>\n    </row>\n");
	xb_str(b, "    <identifiers>\n");
	if (r->envelope_to[0] != '\0')
		xb_elem(b, 6, "envelope_to", r->envelope_to);
	xb_elem(b, 6, "envelope_from", r->envelope_from);
	xb_elem(b, 6, "header_from", r->header_from);
	xb_str(b, "    </identifiers>\n    <auth_results>\n");
	for (i = 0; i < r->ndkim && i < DMARC_MAX_DKIM; i++) {
		const struct dmarc_report_dkim	*d = &r->dkim[i];

		xb_str(b, "      <dkim>\n");
		xb_elem(b, 8, "domain", d->domain);
		if (d->selector[0] != '\0')
			xb_elem(b, 8, "selector", d->selector);
		xb_elem(b, 8, "result", dkim_result_name(d->result));
		xb_str(b, "      </dkim>\n");
	}
	/* "There will always be at least one SPF result." */
	xb_str(b, "      <spf>\n");
	xb_elem(b, 8, "domain", r->spf_domain);
	xb_elem(b, 8, "scope", r->spf_scope == DMARC_RPT_SPF_HELO ? "helo" :
	    "mfrom");
	xb_elem(b, 8, "result", spf_result_name(r->spf_result));
	xb_str(b, "      </spf>\n    </auth_results>\n  </record>\n");
}

char *
dmarc_report_xml(const struct dmarc_report_meta *m, const char *policy_domain,
    const struct dmarc_record *rec, const struct dmarc_report_row *rows,
    size_t nrow, size_t *len)
{
	struct xbuf	b = { NULL, 0, 0, 0 };
	char		fo[16];
	size_t		i;

	if (nrow == 0 || m->org_name == NULL || m->email == NULL ||
	    !valid_id(m->report_id) || !valid_domain(policy_domain) ||
	    m->end < m->begin)
		return NULL;
	xb_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<feedback>\n  <version>1.0</version>\n"
	    "  <report_metadata>\n");
	xb_elem(&b, 4, "org_name", m->org_name);
	xb_elem(&b, 4, "email", m->email);
	if (m->extra_contact_info)
		xb_elem(&b, 4, "extra_contact_info", m->extra_contact_info);
	xb_elem(&b, 4, "report_id", m->report_id);
	xb_printf(&b, "    <date_range>\n      <begin>%lld</begin>\n"
	    "      <end>%lld</end>\n    </date_range>\n",
	    (long long)m->begin, (long long)m->end);
	xb_str(&b, "  </report_metadata>\n  <policy_published>\n");
	xb_elem(&b, 4, "domain", policy_domain);
	xb_elem(&b, 4, "adkim", rec->adkim == DMARC_ALIGN_STRICT ? "s" : "r");
	xb_elem(&b, 4, "aspf", rec->aspf == DMARC_ALIGN_STRICT ? "s" : "r");
	xb_elem(&b, 4, "p", dmarc_policy_name(rec->policy));
	xb_elem(&b, 4, "sp", dmarc_policy_name(rec->subpolicy));
	xb_printf(&b, "    <pct>%d</pct>\n", rec->pct);
	xb_elem(&b, 4, "fo", fo_text(rec->fo, fo, sizeof(fo)));
	xb_str(&b, "  </policy_published>\n");
	for (i = 0; i < nrow; i++)
		write_row(&b, &rows[i]);
	xb_str(&b, "</feedback>\n");
	if (b.err) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}

int
dmarc_report_filename(const struct dmarc_report_meta *m,
    const char *policy_domain, const char *unique, char *out, size_t outlen)
{
	const char	*u;
	int		 n;

	if (!valid_domain(m->receiver) || !valid_domain(policy_domain) ||
	    m->end < m->begin)
		return -1;
	if (unique) {
		if (*unique == '\0')
			return -1;
		for (u = unique; *u; u++)
			if (!isalnum((unsigned char)*u))
				return -1;
	}
	n = snprintf(out, outlen, "%s!%s!%lld!%lld%s%s.xml.gz", m->receiver,
	    policy_domain, (long long)m->begin, (long long)m->end,
	    unique ? "!" : "", unique ? unique : "");
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

int
dmarc_report_subject(const struct dmarc_report_meta *m,
    const char *policy_domain, char *out, size_t outlen)
{
	int	n;

	if (!valid_domain(m->receiver) || !valid_domain(policy_domain) ||
	    !valid_id(m->report_id))
		return -1;
	n = snprintf(out, outlen, "Report Domain: %s Submitter: %s "
	    "Report-ID: <%s@%s>", policy_domain, m->receiver, m->report_id,
	    m->receiver);
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}
