/*
 * dnsbl.c -- DNS block and allow lists in the lookup process (RFC 5782,
 * Postfix postscreen_dnsbl_sites semantics).
 *
 * Why it looks the way it does:
 *  - Every list of a set is asked at once and the answer waits for the
 *    slowest; a list that fails (timeout, SERVFAIL) simply did not
 *    answer: it is logged and counted, never turned into a rejection,
 *    since a broken list must not stop mail.
 *  - Answers are cached per question name for their TTL in a
 *    direct-mapped table of fixed size: a flood of distinct clients
 *    evicts older entries instead of growing the process (bounded
 *    memory, O(1) per question).  Negative answers carry no SOA here,
 *    so they live DNSBL_NEG_TTL.
 *  - List specs come from smtpd.conf: the parser says what is wrong in
 *    words the config parser prints after file:line.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "dns.h"
#include "dnsbl.h"
#include "log.h"
#include "mproc.h"
#include "util.h"

/* ---- the list spec ---- */

static void
set_bit(uint32_t *bits, unsigned int v)
{
	bits[v / 32] |= 1u << (v % 32);
}

static int
has_bit(const uint32_t *bits, unsigned int v)
{
	return (bits[v / 32] >> (v % 32)) & 1;
}

/* a number 0..255 at *pp, advancing; -1 if none */
static int
parse_octet(const char **pp, const char *end)
{
	const char	*p = *pp;
	int		 v = 0;

	if (p == end || !isdigit((unsigned char)*p))
		return -1;
	for (; p < end && isdigit((unsigned char)*p); p++) {
		v = v * 10 + (*p - '0');
		if (v > 255)
			return -1;
	}
	*pp = p;
	return v;
}

/* "d.d.d.d", each d a number or "[n;m..k]" */
static int
parse_pattern(const char *s, const char *end, struct dnsbl_filter *f,
    const char **why)
{
	const char	*p = s;
	int		 i, a, b;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < 4; i++) {
		if (i > 0) {
			if (p == end || *p != '.') {
				*why = "an address pattern needs 4 octets";
				return -1;
			}
			p++;
		}
		if (p < end && *p == '[') {
			for (p++;;) {
				if ((a = parse_octet(&p, end)) == -1) {
					*why = "expected a number 0..255 "
					    "in [...]";
					return -1;
				}
				b = a;
				if (end - p >= 2 && p[0] == '.' && p[1] == '.') {
					p += 2;
					if ((b = parse_octet(&p, end)) == -1 ||
					    b < a) {
						*why = "bad range n..m in [...]";
						return -1;
					}
				}
				for (; a <= b; a++)
					set_bit(f->octet[i], (unsigned int)a);
				if (p < end && *p == ';') {
					p++;
					continue;
				}
				if (p < end && *p == ']') {
					p++;
					break;
				}
				*why = "unclosed [ in an address pattern";
				return -1;
			}
		} else {
			if ((a = parse_octet(&p, end)) == -1) {
				*why = "expected a number 0..255 or [...]";
				return -1;
			}
			set_bit(f->octet[i], (unsigned int)a);
		}
	}
	if (p != end) {
		*why = "junk after an address pattern";
		return -1;
	}
	return 0;
}

int
dnsbl_parse_list(const char *spec, struct dnsbl_list *l, char *err,
    size_t errlen)
{
	const char	*s = spec, *end, *zend, *pend, *p, *why = NULL;
	size_t		 n, label = 0;
	long		 w;
	char		 num[16], *ep;

	memset(l, 0, sizeof(*l));
	l->weight = 1;
	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;

	/* the zone: up to '=' or '*' */
	for (zend = s; zend < end && *zend != '=' && *zend != '*'; zend++)
		;
	n = (size_t)(zend - s);
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0) {
		why = "no DNS zone";
		goto bad;
	}
	/* 64 nibble labels of an IPv6 question must fit before it */
	if (n > 253 - 64 || n >= sizeof(l->zone)) {
		why = "DNS zone too long";
		goto bad;
	}
	for (p = s; p < s + n; p++) {
		unsigned char	c = (unsigned char)*p;

		if (c == '.') {
			if (label == 0)
				break;
			label = 0;
		} else if ((isalnum(c) || c == '-' || c == '_') &&
		    ++label <= 63)
			;
		else
			break;
		l->zone[p - s] = (char)tolower(c);
	}
	if (p != s + n || label == 0) {
		why = "not a DNS zone name";
		goto bad;
	}
	l->zone[n] = '\0';

	/* the patterns: up to '*' */
	pend = zend;
	if (zend < end && *zend == '=') {
		const char	*ps;
		int		 depth = 0;

		for (pend = zend + 1; pend < end && *pend != '*'; pend++)
			;
		if (pend == zend + 1) {
			why = "nothing after '='";
			goto bad;
		}
		for (ps = p = zend + 1; p <= pend; p++) {
			if (p < pend && *p == '[')
				depth++;
			else if (p < pend && *p == ']')
				depth--;
			if (p < pend && (*p != ';' || depth > 0))
				continue;
			if (l->nfilter == DNSBL_MAX_FILTERS) {
				why = "too many address patterns";
				goto bad;
			}
			if (parse_pattern(ps, p, &l->filter[l->nfilter],
			    &why) == -1)
				goto bad;
			l->nfilter++;
			ps = p + 1;
		}
	}

	/* the weight */
	if (pend < end) {
		n = (size_t)(end - pend - 1);
		if (n == 0 || n >= sizeof(num)) {
			why = "weight: not a number";
			goto bad;
		}
		memcpy(num, pend + 1, n);
		num[n] = '\0';
		errno = 0;
		w = strtol(num, &ep, 10);
		if (*ep != '\0' || !(isdigit((unsigned char)num[0]) ||
		    num[0] == '-' || num[0] == '+') || errno) {
			why = "weight: not a number";
			goto bad;
		}
		if (w < -1000 || w > 1000) {
			why = "weight: out of range -1000..1000";
			goto bad;
		}
		l->weight = (int)w;
	}
	return 0;
bad:
	snprintf(err, errlen, "dnsbl list \"%.*s\": %s",
	    (int)(strlen(spec) > 100 ? 100 : strlen(spec)), spec, why);
	return -1;
}

/* ---- questions and answers ---- */

int
dnsbl_query_name(const struct sockaddr_storage *ss, const char *zone,
    char *out, size_t outlen)
{
	static const char	 hex[] = "0123456789abcdef";
	const uint8_t		*a;
	size_t			 n = 0, i;
	int			 r;

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 =
		    (const struct sockaddr_in6 *)ss;

		a = s6->sin6_addr.s6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			if (outlen < 65)
				return -1;
			for (i = 16; i-- > 0;) {
				out[n++] = hex[a[i] & 0xf];
				out[n++] = '.';
				out[n++] = hex[a[i] >> 4];
				out[n++] = '.';
			}
			r = snprintf(out + n, outlen - n, "%s", zone);
			return (r < 0 || (size_t)r >= outlen - n) ? -1 : 0;
		}
		a += 12;
	} else if (ss->ss_family == AF_INET)
		a = (const uint8_t *)
		    &((const struct sockaddr_in *)ss)->sin_addr.s_addr;
	else
		return -1;
	r = snprintf(out, outlen, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0],
	    zone);
	return (r < 0 || (size_t)r >= outlen) ? -1 : 0;
}

int
dnsbl_answer_hits(const struct dnsbl_list *l, const uint32_t *addrs,
    size_t naddrs)
{
	size_t	i, j;
	int	k;

	for (i = 0; i < naddrs; i++) {
		uint32_t	a = addrs[i];

		if (l->nfilter == 0) {
			if ((a >> 24) == 127 && (a >> 8) != 0x7fffff)
				return 1;
			continue;
		}
		for (j = 0; j < l->nfilter; j++) {
			for (k = 0; k < 4; k++)
				if (!has_bit(l->filter[j].octet[k],
				    (a >> (24 - 8 * k)) & 0xff))
					break;
			if (k == 4)
				return 1;
		}
	}
	return 0;
}

void
dnsbl_hits_text(const struct dnsbl_set *set, const struct dnsbl_result *res,
    char *out, size_t outlen)
{
	size_t	i, n = 0;
	int	r;

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < res->nhit; i++) {
		const struct dnsbl_list	*l = &set->list[res->hit[i]];

		if (l->weight <= 0)
			continue;
		r = snprintf(out + n, outlen - n, "%s%s", n ? ", " : "",
		    l->zone);
		if (r < 0 || (size_t)r >= outlen - n) {
			out[n] = '\0';	/* the whole names that fit */
			return;
		}
		n += (size_t)r;
	}
}

/* ---- the cache ---- */

struct dnsbl_entry {
	char		name[DNS_NAME_MAX];	/* "" when free */
	int64_t		expires;		/* monotonic ms */
	int		status;			/* DNS_OK, NXDOMAIN, NODATA */
	size_t		naddr;
	uint32_t	addr[DNSBL_MAX_ADDRS];
};

static struct dnsbl_entry	dnsbl_cache[DNSBL_CACHE_SIZE];
static uint64_t			dnsbl_hits, dnsbl_misses;

static struct dnsbl_entry *
cache_slot(const char *name)
{
	uint32_t	h = 2166136261u;	/* FNV-1a */

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return &dnsbl_cache[h % DNSBL_CACHE_SIZE];
}

static const struct dnsbl_entry *
cache_get(const char *name)
{
	struct dnsbl_entry	*e = cache_slot(name);

	if (strcmp(e->name, name) != 0 || e->expires <= monotonic_ms())
		return NULL;
	return e;
}

static void
cache_put(const char *name, int status, const uint32_t *addr, size_t naddr,
    uint32_t ttl)
{
	struct dnsbl_entry	*e = cache_slot(name);

	if (ttl == 0 || strlen(name) >= sizeof(e->name))
		return;
	if (ttl > DNSBL_TTL_MAX)
		ttl = DNSBL_TTL_MAX;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->expires = monotonic_ms() + (int64_t)ttl * 1000;
	e->status = status;
	e->naddr = naddr;
	if (naddr)
		memcpy(e->addr, addr, naddr * sizeof(*addr));
}

void
dnsbl_cache_clear(void)
{
	memset(dnsbl_cache, 0, sizeof(dnsbl_cache));
	dnsbl_hits = dnsbl_misses = 0;
}

void
dnsbl_cache_stats(uint64_t *hits, uint64_t *misses)
{
	*hits = dnsbl_hits;
	*misses = dnsbl_misses;
}

/* ---- one check ---- */

struct dnsbl_check;

struct dnsbl_query {
	struct dnsbl_check	*check;
	size_t			 index;
	int			 asked;
	char			 name[DNS_NAME_MAX];
};

struct dnsbl_check {
	struct dnsbl_set	 set;
	struct dnsbl_result	 res;
	struct dnsbl_query	 q[DNSBL_MAX_LISTS];
	size_t			 pending;
	dnsbl_cb		 cb;
	void			*arg;
};

static void
dnsbl_finish(struct dnsbl_check *c)
{
	struct dnsbl_result	*r = &c->res;
	const struct dnsbl_set	*set = &c->set;

	r->listed = r->score >= set->threshold;
	r->allowlisted = set->allow_threshold < 0 &&
	    r->score <= set->allow_threshold;
	c->cb(c->arg, r);
	free(c);
}

static void
dnsbl_deferred(evutil_socket_t fd, short ev, void *arg)
{
	dnsbl_finish(arg);
}

/* one list's answer, from the cache or the resolver */
static void
dnsbl_account(struct dnsbl_check *c, size_t i, const uint32_t *addr,
    size_t naddr)
{
	const struct dnsbl_list	*l = &c->set.list[i];

	if (!dnsbl_answer_hits(l, addr, naddr))
		return;
	c->res.score += l->weight;
	c->res.hit[c->res.nhit++] = i;
}

static void
dnsbl_dns_cb(void *arg, const struct dns_result *dr)
{
	struct dnsbl_query	*q = arg;
	struct dnsbl_check	*c = q->check;
	uint32_t		 addr[DNSBL_MAX_ADDRS], ttl = UINT32_MAX;
	size_t			 i, naddr = 0;

	switch (dr->status) {
	case DNS_OK:
		for (i = 0; i < dr->nrr && naddr < DNSBL_MAX_ADDRS; i++) {
			const struct sockaddr_in *s4 =
			    (const struct sockaddr_in *)&dr->rr[i].addr;

			if (dr->rr[i].type != DNS_T_A ||
			    s4->sin_family != AF_INET)
				continue;
			addr[naddr++] = ntohl(s4->sin_addr.s_addr);
			if (dr->rr[i].ttl < ttl)
				ttl = dr->rr[i].ttl;
		}
		cache_put(q->name, DNS_OK, addr, naddr,
		    naddr ? ttl : DNSBL_NEG_TTL);
		dnsbl_account(c, q->index, addr, naddr);
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		cache_put(q->name, dr->status, NULL, 0, DNSBL_NEG_TTL);
		break;
	default:
		log_info("dnsbl: %s did not answer for %s (DNS failure): "
		    "counted as not listed", c->set.list[q->index].zone,
		    q->name);
		c->res.nfailed++;
		break;
	}
	if (--c->pending == 0)
		dnsbl_finish(c);
}

void
dnsbl_check(const struct dnsbl_set *set, const struct sockaddr_storage *ss,
    dnsbl_cb cb, void *arg)
{
	struct dnsbl_check	*c;
	const struct dnsbl_entry *e;
	struct timeval		 now = { 0, 0 };
	size_t			 i, nask = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("%s: calloc", __func__);
	c->set = *set;
	if (c->set.nlist > DNSBL_MAX_LISTS)
		fatalx("%s: %zu lists", __func__, c->set.nlist);
	c->cb = cb;
	c->arg = arg;
	/* first the names and the cache; the questions after */
	for (i = 0; i < c->set.nlist; i++) {
		struct dnsbl_query	*q = &c->q[i];

		q->check = c;
		q->index = i;
		if (dnsbl_query_name(ss, c->set.list[i].zone, q->name,
		    sizeof(q->name)) == -1) {
			c->res.nfailed++;
			continue;
		}
		if ((e = cache_get(q->name)) != NULL) {
			dnsbl_hits++;
			dnsbl_account(c, i, e->addr, e->naddr);
			continue;
		}
		dnsbl_misses++;
		q->asked = 1;
		nask++;
	}
	/* pending is complete before any answer can come in */
	c->pending = nask;
	if (nask == 0) {
		if (event_base_once(ev_base, -1, EV_TIMEOUT, dnsbl_deferred, c,
		    &now) == -1)
			fatalx("%s: event_base_once", __func__);
		return;
	}
	for (i = 0; i < c->set.nlist; i++) {
		const struct dnsbl_query *q = &c->q[i];

		if (!q->asked)
			continue;
		dns_query(q->name, DNS_T_A, DNSBL_TIMEOUT, dnsbl_dns_cb,
		    &c->q[i]);
	}
}
