/*
 * dmarc_rec.c -- a DMARC report row's checks and its line in the spool
 * (dmarc_rec.h says the format).
 *
 * Why it looks the way it does: the strings come from the network (the
 * From: domain, DKIM d= and s=, MAIL FROM, HELO) and from DNS (the rua
 * mailboxes), and one line is split on spaces again when the report is
 * built; so a string is a token (printable ASCII, no space) or the
 * record is not kept at all -- checked before writing and again after
 * reading, since the file may have been cut short or edited.  Numbers
 * are parsed strictly (digits only, in range).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc_rec.h"
#include "dmarc_report.h"

#define REC_MAGIC	"v1"
#define REC_END		"."
#define FIELDS_MAX	(24 + 2 * QUEUE_DMARC_RUA + 3 * QUEUE_DMARC_DKIM)

/* a token, or "" (written "-"); size is the field's */
static int
token_ok(const char *s, size_t size, int empty_ok)
{
	size_t	n = strnlen(s, size);

	if (n == size)
		return 0;
	if (n == 0)
		return empty_ok;
	if (strcmp(s, "-") == 0)
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~')
			return 0;
	return 1;
}

#define TOKEN(f, e)	token_ok((f), sizeof(f), (e))

static int
in_range(int32_t v, int32_t lo, int32_t hi)
{
	return v >= lo && v <= hi;
}

int
dmarc_rec_valid(const struct queue_dmarc_record *r)
{
	uint32_t	i;

	if (r->source.ss_family != AF_INET && r->source.ss_family != AF_INET6)
		return -1;
	if (!TOKEN(r->policy_domain, 0) || !TOKEN(r->header_from, 0) ||
	    !TOKEN(r->envelope_from, 1) || !TOKEN(r->spf_domain, 1))
		return -1;
	if (!in_range(r->p, DMARC_POLICY_NONE, DMARC_POLICY_REJECT) ||
	    !in_range(r->sp, DMARC_POLICY_NONE, DMARC_POLICY_REJECT) ||
	    !in_range(r->pct, 0, 100) ||
	    !in_range(r->adkim, DMARC_ALIGN_RELAXED, DMARC_ALIGN_STRICT) ||
	    !in_range(r->aspf, DMARC_ALIGN_RELAXED, DMARC_ALIGN_STRICT) ||
	    !in_range(r->fo, 0, DMARC_FO_0 | DMARC_FO_1 | DMARC_FO_D |
	    DMARC_FO_S) ||
	    !in_range(r->disposition, DMARC_POLICY_NONE, DMARC_POLICY_REJECT) ||
	    !in_range(r->dkim_pass, 0, 1) || !in_range(r->spf_pass, 0, 1) ||
	    !in_range(r->sampled_out, 0, 1) ||
	    !in_range(r->spf_scope, DMARC_RPT_SPF_MFROM, DMARC_RPT_SPF_HELO) ||
	    !in_range(r->spf_result, DMARC_RPT_NONE, DMARC_RPT_PERMERROR))
		return -1;
	if (r->nrua < 1 || r->nrua > QUEUE_DMARC_RUA ||
	    r->ndkim > QUEUE_DMARC_DKIM)
		return -1;
	for (i = 0; i < r->nrua; i++)
		if (!TOKEN(r->rua[i].addr, 0) ||
		    strchr(r->rua[i].addr, '@') == NULL)
			return -1;
	for (i = 0; i < r->ndkim; i++)
		if (!TOKEN(r->dkim[i].domain, 0) ||
		    !TOKEN(r->dkim[i].selector, 1) ||
		    !in_range(r->dkim[i].result, DMARC_RPT_NONE,
		    DMARC_RPT_PERMERROR))
			return -1;
	return 0;
}

struct lbuf {
	char	*p;
	size_t	 len, cap;
	int	 err;
};

static void
lb_add(struct lbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
lb_add(struct lbuf *b, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->err = 1;
		return;
	}
	b->len += (size_t)n;
}

static void
lb_str(struct lbuf *b, const char *s)
{
	lb_add(b, " %s", s[0] == '\0' ? "-" : s);
}

int
dmarc_rec_format(const struct queue_dmarc_record *r, int64_t when,
    char *out, size_t outlen)
{
	struct lbuf	 b = { out, 0, outlen, 0 };
	char		 ip[INET6_ADDRSTRLEN];
	const void	*a;
	uint32_t	 i;

	if (outlen == 0 || when < 0 || dmarc_rec_valid(r) == -1)
		return -1;
	if (r->source.ss_family == AF_INET)
		a = &((const struct sockaddr_in *)&r->source)->sin_addr;
	else
		a = &((const struct sockaddr_in6 *)&r->source)->sin6_addr;
	if (inet_ntop(r->source.ss_family, a, ip, sizeof(ip)) == NULL)
		return -1;
	lb_add(&b, "%s %" PRId64 " %s", REC_MAGIC, when, ip);
	lb_str(&b, r->policy_domain);
	lb_add(&b, " %d %d %d %d %d %d %d %d %d %d", (int)r->p, (int)r->sp,
	    (int)r->pct, (int)r->adkim, (int)r->aspf, (int)r->fo,
	    (int)r->disposition, (int)r->dkim_pass, (int)r->spf_pass,
	    (int)r->sampled_out);
	lb_str(&b, r->header_from);
	lb_str(&b, r->envelope_from);
	lb_str(&b, r->spf_domain);
	lb_add(&b, " %d %d %u", (int)r->spf_scope, (int)r->spf_result,
	    (unsigned)r->nrua);
	for (i = 0; i < r->nrua; i++) {
		lb_str(&b, r->rua[i].addr);
		lb_add(&b, " %" PRIu64, r->rua[i].maxsize);
	}
	lb_add(&b, " %u", (unsigned)r->ndkim);
	for (i = 0; i < r->ndkim; i++) {
		lb_str(&b, r->dkim[i].domain);
		lb_str(&b, r->dkim[i].selector);
		lb_add(&b, " %d", (int)r->dkim[i].result);
	}
	lb_add(&b, " %s\n", REC_END);
	if (b.err)
		return -1;
	return (int)b.len;
}

/* ---- reading ---- */

struct fields {
	char	*f[FIELDS_MAX];
	size_t	 n, next;
};

static const char *
next_field(struct fields *fs)
{
	if (fs->next >= fs->n)
		return NULL;
	return fs->f[fs->next++];
}

/* digits only, at most max */
static int
get_u64(struct fields *fs, uint64_t max, uint64_t *out)
{
	const char	*s = next_field(fs);
	uint64_t	 v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 20)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

static int
get_i32(struct fields *fs, int32_t *out)
{
	uint64_t	v;

	if (get_u64(fs, INT32_MAX, &v) == -1)
		return -1;
	*out = (int32_t)v;
	return 0;
}

static int
get_str(struct fields *fs, char *out, size_t outlen)
{
	const char	*s = next_field(fs);

	if (s == NULL)
		return -1;
	if (strcmp(s, "-") == 0)
		s = "";
	if (strlen(s) >= outlen)
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int
get_ip(struct fields *fs, struct sockaddr_storage *ss)
{
	const char		*s = next_field(fs);
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	if (s == NULL)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

static int
parse_fields(struct fields *fs, struct queue_dmarc_record *r, int64_t *when)
{
	const char	*s;
	uint64_t	 v;
	uint32_t	 i;

	if ((s = next_field(fs)) == NULL || strcmp(s, REC_MAGIC) != 0)
		return -1;
	if (get_u64(fs, INT64_MAX, &v) == -1)
		return -1;
	*when = (int64_t)v;
	if (get_ip(fs, &r->source) == -1 ||
	    get_str(fs, r->policy_domain, sizeof(r->policy_domain)) == -1 ||
	    get_i32(fs, &r->p) == -1 || get_i32(fs, &r->sp) == -1 ||
	    get_i32(fs, &r->pct) == -1 || get_i32(fs, &r->adkim) == -1 ||
	    get_i32(fs, &r->aspf) == -1 || get_i32(fs, &r->fo) == -1 ||
	    get_i32(fs, &r->disposition) == -1 ||
	    get_i32(fs, &r->dkim_pass) == -1 ||
	    get_i32(fs, &r->spf_pass) == -1 ||
	    get_i32(fs, &r->sampled_out) == -1 ||
	    get_str(fs, r->header_from, sizeof(r->header_from)) == -1 ||
	    get_str(fs, r->envelope_from, sizeof(r->envelope_from)) == -1 ||
	    get_str(fs, r->spf_domain, sizeof(r->spf_domain)) == -1 ||
	    get_i32(fs, &r->spf_scope) == -1 ||
	    get_i32(fs, &r->spf_result) == -1)
		return -1;
	if (get_u64(fs, QUEUE_DMARC_RUA, &v) == -1)
		return -1;
	r->nrua = (uint32_t)v;
	for (i = 0; i < r->nrua; i++)
		if (get_str(fs, r->rua[i].addr, sizeof(r->rua[i].addr)) == -1 ||
		    get_u64(fs, UINT64_MAX, &r->rua[i].maxsize) == -1)
			return -1;
	if (get_u64(fs, QUEUE_DMARC_DKIM, &v) == -1)
		return -1;
	r->ndkim = (uint32_t)v;
	for (i = 0; i < r->ndkim; i++)
		if (get_str(fs, r->dkim[i].domain,
		    sizeof(r->dkim[i].domain)) == -1 ||
		    get_str(fs, r->dkim[i].selector,
		    sizeof(r->dkim[i].selector)) == -1 ||
		    get_i32(fs, &r->dkim[i].result) == -1)
			return -1;
	if ((s = next_field(fs)) == NULL || strcmp(s, REC_END) != 0 ||
	    fs->next != fs->n)
		return -1;
	return dmarc_rec_valid(r);
}

int
dmarc_rec_parse(const char *line, size_t len, struct queue_dmarc_record *r,
    int64_t *when)
{
	struct fields	 fs;
	char		*copy, *p;
	int		 rc;

	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len == 0 || len >= DMARC_REC_LINE_MAX ||
	    memchr(line, '\0', len) != NULL)
		return -1;
	if ((copy = malloc(len + 1)) == NULL)
		return -1;
	memcpy(copy, line, len);
	copy[len] = '\0';
	memset(&fs, 0, sizeof(fs));
	memset(r, 0, sizeof(*r));
	rc = 0;
	/* exactly one space between fields: an empty field is an error */
	for (p = copy; rc == 0; ) {
		char	*sp = strchr(p, ' ');

		if (fs.n == FIELDS_MAX || *p == ' ' || *p == '\0')
			rc = -1;
		else
			fs.f[fs.n++] = p;
		if (sp == NULL)
			break;
		*sp = '\0';
		p = sp + 1;
	}
	if (rc == 0)
		rc = parse_fields(&fs, r, when);
	free(copy);
	if (rc == -1)
		memset(r, 0, sizeof(*r));
	return rc;
}
