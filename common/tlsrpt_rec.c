/*
 * tlsrpt_rec.c -- a TLS-RPT outcome's checks and its line in the spool
 * (tlsrpt_rec.h says the format).
 *
 * The strings come from the network and DNS (an MX name, a policy
 * fetched over HTTPS, a reason from a peer's certificate), so each is
 * percent-encoded on the way out and decoded strictly on the way in; a
 * line that does not read exactly (torn by a crash, edited) is refused
 * whole.  Numbers are digits only and in range.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt.h"
#include "tlsrpt_rec.h"

#define REC_MAGIC	"t1"
#define REC_END		"."

#define ENDS(f)		(memchr((f), '\0', sizeof(f)) != NULL)

static int
addr_ok(const struct sockaddr_storage *ss)
{
	return ss->ss_family == 0 || ss->ss_family == AF_INET ||
	    ss->ss_family == AF_INET6;
}

int
tlsrpt_note_valid(const struct lka_tlsrpt *o)
{
	if (!ENDS(o->policy_domain) || o->policy_domain[0] == '\0' ||
	    !ENDS(o->mx_host) || !ENDS(o->reason) || !ENDS(o->policy))
		return -1;
	if (o->policy_type < TLSRPT_POLICY_NONE ||
	    o->policy_type > TLSRPT_POLICY_TLSA ||
	    o->result < 0 || o->result >= TLSRPT_NRESULTS)
		return -1;
	if (!addr_ok(&o->sending_ip) || !addr_ok(&o->receiving_ip))
		return -1;
	return 0;
}

int
tlsrpt_rec_valid(const struct queue_tlsrpt_record *r)
{
	const char	*s;
	uint32_t	 i;

	if (tlsrpt_note_valid(&r->o) == -1 || r->nrua < 1 ||
	    r->nrua > QUEUE_TLSRPT_RUA)
		return -1;
	for (i = 0; i < r->nrua; i++) {
		if (!ENDS(r->rua[i]) || r->rua[i][0] == '\0')
			return -1;
		for (s = r->rua[i]; *s != '\0'; s++)
			if (*s <= ' ' || *s > '~')
				return -1;
	}
	return 0;
}

/* ---- writing ---- */

struct lbuf {
	char	*p;
	size_t	 len, cap;
	int	 err;
};

static void
lb_char(struct lbuf *b, char c)
{
	if (b->err || b->len + 1 >= b->cap) {
		b->err = 1;
		return;
	}
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}

static void
lb_text(struct lbuf *b, const char *s)
{
	for (; *s != '\0'; s++)
		lb_char(b, *s);
}

static void
lb_str(struct lbuf *b, const char *s)
{
	static const char	hex[] = "0123456789ABCDEF";
	unsigned char		c;

	lb_char(b, ' ');
	if (*s == '\0') {
		lb_char(b, '-');
		return;
	}
	if (strcmp(s, "-") == 0) {
		lb_text(b, "%2D");
		return;
	}
	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c <= ' ' || c > '~' || c == '%') {
			lb_char(b, '%');
			lb_char(b, hex[c >> 4]);
			lb_char(b, hex[c & 15]);
		} else
			lb_char(b, (char)c);
	}
}

static void
lb_num(struct lbuf *b, int64_t v)
{
	char	buf[32];

	snprintf(buf, sizeof(buf), " %" PRId64, v);
	lb_text(b, buf);
}

static void
lb_ip(struct lbuf *b, const struct sockaddr_storage *ss)
{
	char		 ip[INET6_ADDRSTRLEN];
	const void	*a;

	if (ss->ss_family == 0) {
		lb_text(b, " -");
		return;
	}
	if (ss->ss_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)ss)->sin_addr;
	else
		a = &((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;
	if (inet_ntop(ss->ss_family, a, ip, sizeof(ip)) == NULL) {
		b->err = 1;
		return;
	}
	lb_char(b, ' ');
	lb_text(b, ip);
}

int
tlsrpt_rec_format(const struct queue_tlsrpt_record *r, int64_t when,
    char *out, size_t outlen)
{
	struct lbuf	b = { out, 0, outlen, 0 };
	uint32_t	i;

	if (outlen == 0 || when < 0 || tlsrpt_rec_valid(r) == -1)
		return -1;
	out[0] = '\0';
	lb_text(&b, REC_MAGIC);
	lb_num(&b, when);
	lb_str(&b, r->o.policy_domain);
	lb_num(&b, r->o.policy_type);
	lb_num(&b, r->o.result);
	lb_str(&b, r->o.mx_host);
	lb_ip(&b, &r->o.sending_ip);
	lb_ip(&b, &r->o.receiving_ip);
	lb_str(&b, r->o.reason);
	lb_str(&b, r->o.policy);
	lb_num(&b, r->nrua);
	for (i = 0; i < r->nrua; i++)
		lb_str(&b, r->rua[i]);
	lb_text(&b, " " REC_END "\n");
	if (b.err)
		return -1;
	return (int)b.len;
}

/* ---- reading ---- */

struct fields {
	const char	*p, *end;
};

/* the next field: [*s, *s + *n); -1 at the end or on a bad separator */
static int
next_field(struct fields *fs, const char **s, size_t *n)
{
	const char	*q;

	if (fs->p >= fs->end)
		return -1;
	for (q = fs->p; q < fs->end && *q != ' '; q++)
		;
	*s = fs->p;
	*n = (size_t)(q - fs->p);
	fs->p = q < fs->end ? q + 1 : q;
	return *n == 0 ? -1 : 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * A string field into out[size]: strict %XX (upper case, as written),
 * no NUL, no raw byte that would have been encoded.
 */
static int
get_str(struct fields *fs, char *out, size_t size)
{
	const char	*s;
	size_t		 n, i, o = 0;
	int		 hi, lo, c;

	if (next_field(fs, &s, &n) == -1)
		return -1;
	if (n == 1 && s[0] == '-') {
		out[0] = '\0';
		return 0;
	}
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c <= ' ' || c > '~')
			return -1;
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			if ((hi = hexval(s[i + 1])) == -1 ||
			    (lo = hexval(s[i + 2])) == -1)
				return -1;
			c = hi * 16 + lo;
			if (c == 0)
				return -1;
			i += 2;
		}
		if (o + 1 >= size)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

static int
get_num(struct fields *fs, int64_t max, int64_t *v)
{
	const char	*s;
	size_t		 n, i;

	if (next_field(fs, &s, &n) == -1 || n > 18)
		return -1;
	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return *v <= max ? 0 : -1;
}

static int
get_ip(struct fields *fs, struct sockaddr_storage *ss)
{
	char	ip[INET6_ADDRSTRLEN];
	struct sockaddr_in	*sin = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (get_str(fs, ip, sizeof(ip)) == -1)
		return -1;
	if (ip[0] == '\0')
		return 0;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

int
tlsrpt_rec_parse(const char *line, size_t len,
    struct queue_tlsrpt_record *r, int64_t *when)
{
	struct fields	 fs;
	const char	*s;
	size_t		 n;
	int64_t		 v;
	uint32_t	 i;

	memset(r, 0, sizeof(*r));
	if (len > 0 && line[len - 1] == '\n')
		len--;
	fs.p = line;
	fs.end = line + len;
	if (next_field(&fs, &s, &n) == -1 || n != strlen(REC_MAGIC) ||
	    memcmp(s, REC_MAGIC, n) != 0)
		return -1;
	if (get_num(&fs, INT64_MAX / 2, when) == -1 ||
	    get_str(&fs, r->o.policy_domain, sizeof(r->o.policy_domain)) ==
	    -1 || get_num(&fs, TLSRPT_POLICY_TLSA, &v) == -1)
		return -1;
	r->o.policy_type = (int32_t)v;
	if (get_num(&fs, TLSRPT_NRESULTS - 1, &v) == -1)
		return -1;
	r->o.result = (int32_t)v;
	if (get_str(&fs, r->o.mx_host, sizeof(r->o.mx_host)) == -1 ||
	    get_ip(&fs, &r->o.sending_ip) == -1 ||
	    get_ip(&fs, &r->o.receiving_ip) == -1 ||
	    get_str(&fs, r->o.reason, sizeof(r->o.reason)) == -1 ||
	    get_str(&fs, r->o.policy, sizeof(r->o.policy)) == -1 ||
	    get_num(&fs, QUEUE_TLSRPT_RUA, &v) == -1)
		return -1;
	r->nrua = (uint32_t)v;
	for (i = 0; i < r->nrua; i++)
		if (get_str(&fs, r->rua[i], sizeof(r->rua[i])) == -1)
			return -1;
	if (next_field(&fs, &s, &n) == -1 || n != 1 || s[0] != REC_END[0] ||
	    fs.p != fs.end)
		return -1;
	return tlsrpt_rec_valid(r);
}
