/*
 * dmarc.c -- DMARC (RFC 7489) in the lookup process: record parser,
 * organizational domain, policy discovery, alignment and the verdict.
 *
 * Why it looks the way it does:
 *  - The organizational domain comes from the Public Suffix List through
 *    libpsl, loaded once with psl_latest(NULL) before the sandbox; that
 *    reads Debian's /usr/share/publicsuffix/public_suffix_list.dafsa
 *    (package publicsuffix, updated by apt; no copy lives in the tree).
 *  - Discovery is two TXT questions at most (6.6.3): _dmarc.<From
 *    domain>, then _dmarc.<organizational domain> when the first holds
 *    no DMARC record.  Both go through dns_query() on lookup's event
 *    loop; nothing here blocks.
 *  - A DNS failure is temperror, never fail: a resolver hiccup must not
 *    become a rejection.  For the same reason an aligned identifier whose
 *    own check failed temporarily (a DKIM key that could not be fetched)
 *    keeps a message without any aligned pass at temperror.
 *  - Records are untrusted input from the DNS: the parser reads exactly
 *    len bytes, copies into fixed fields with bounds, and rejects NULs
 *    and control characters.
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <libpsl.h>

#include "dmarc.h"
#include "dns.h"
#include "log.h"
#include "mproc.h"

static psl_ctx_t	*dmarc_psl;
static uint32_t		(*dmarc_uniform)(uint32_t) = arc4random_uniform;

/* ---- the record parser ---- */

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* the bounds of one token without surrounding white space */
static void
trim(const char **s, const char **e)
{
	while (*s < *e && is_wsp(**s))
		(*s)++;
	while (*e > *s && is_wsp((*e)[-1]))
		(*e)--;
}

static int
token_is(const char *s, const char *e, const char *word)
{
	size_t	n = strlen(word);

	return (size_t)(e - s) == n && strncasecmp(s, word, n) == 0;
}

static int
parse_policy(const char *s, const char *e)
{
	if (token_is(s, e, "none"))
		return DMARC_POLICY_NONE;
	if (token_is(s, e, "quarantine"))
		return DMARC_POLICY_QUARANTINE;
	if (token_is(s, e, "reject"))
		return DMARC_POLICY_REJECT;
	return -1;
}

static int
parse_align(const char *s, const char *e)
{
	if (token_is(s, e, "r"))
		return DMARC_ALIGN_RELAXED;
	if (token_is(s, e, "s"))
		return DMARC_ALIGN_STRICT;
	return -1;
}

/* 1*ndigits DIGIT into *out (saturating at max); -1 if not that */
static int
parse_number(const char *s, const char *e, size_t ndigits, uint64_t max,
    uint64_t *out)
{
	uint64_t	v = 0;

	if (s == e || (size_t)(e - s) > ndigits)
		return -1;
	for (; s < e; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			v = max;
	}
	*out = v;
	return 0;
}

/* fo: ("0" / "1" / "d" / "s") *(*WSP ":" *WSP same) */
static int
parse_fo(const char *s, const char *e)
{
	const char	*p, *q;
	int		 fo = 0;

	for (p = s; p <= e; p = q + 1) {
		const char	*ts, *te;

		for (q = p; q < e && *q != ':'; q++)
			;
		ts = p;
		te = q;
		trim(&ts, &te);
		if (token_is(ts, te, "0"))
			fo |= DMARC_FO_0;
		else if (token_is(ts, te, "1"))
			fo |= DMARC_FO_1;
		else if (token_is(ts, te, "d"))
			fo |= DMARC_FO_D;
		else if (token_is(ts, te, "s"))
			fo |= DMARC_FO_S;
		else
			return -1;
		if (q == e)
			break;
	}
	return fo;
}

/*
 * rf: Keyword *(*WSP ":" *WSP Keyword) (RFC 5321 Keyword: Ldh-str).  1
 * when afrf is among them, 0 when not, -1 on a syntax error.
 */
static int
parse_rf(const char *s, const char *e)
{
	const char	*p, *q;
	int		 afrf = 0;

	for (p = s; p <= e; p = q + 1) {
		const char	*ts, *te, *c;

		for (q = p; q < e && *q != ':'; q++)
			;
		ts = p;
		te = q;
		trim(&ts, &te);
		if (ts == te || !isalnum((unsigned char)*ts) ||
		    te[-1] == '-')
			return -1;
		for (c = ts; c < te; c++)
			if (!isalnum((unsigned char)*c) && *c != '-')
				return -1;
		if (token_is(ts, te, "afrf"))
			afrf = 1;
		if (q == e)
			break;
	}
	return afrf;
}

/*
 * One dmarc-uri: URI (RFC 3986 absolute: scheme ":" something) then
 * optionally "!" size [k/m/g/t].  Commas and '!' inside the URI must be
 * percent-encoded (RFC 7489 6.4), so they never appear here.
 */
static int
valid_uri(const char *s, const char *e)
{
	const char	*p = s;

	if (p == e || !isalpha((unsigned char)*p))
		return 0;
	for (p++; p < e && *p != ':'; p++)
		if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' &&
		    *p != '.')
			return 0;
	if (p == e || ++p == e)
		return 0;		/* no ':' or nothing after it */
	for (; p < e && *p != '!'; p++) {
		unsigned char	c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c))
			return 0;
	}
	if (p == e)
		return 1;
	/* "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] */
	if (++p == e || !isdigit((unsigned char)*p))
		return 0;
	while (p < e && isdigit((unsigned char)*p))
		p++;
	if (p < e && strchr("kmgtKMGT", *p))
		p++;
	return p == e;
}

/* rua/ruf: the valid URIs of the list; invalid ones are skipped */
static size_t
parse_uris(const char *s, const char *e, char uris[][DMARC_URI_MAX])
{
	const char	*p, *q;
	size_t		 n = 0;

	for (p = s; p <= e && n < DMARC_MAX_URI; p = q + 1) {
		const char	*ts, *te;

		for (q = p; q < e && *q != ','; q++)
			;
		ts = p;
		te = q;
		trim(&ts, &te);
		if (valid_uri(ts, te) && (size_t)(te - ts) < DMARC_URI_MAX) {
			memcpy(uris[n], ts, (size_t)(te - ts));
			uris[n][te - ts] = '\0';
			n++;
		}
		if (q == e)
			break;
	}
	return n;
}

int
dmarc_parse_record(const char *txt, size_t len, struct dmarc_record *rec,
    const char **err)
{
	const char	*end = txt + len, *p, *q;
	int		 seen_v = 0, p_seen = 0, sp_bad = 0, v;
	uint64_t	 num;
	unsigned int	 seen = 0;	/* tags already taken, a bit each */
	const char	*dummy;

	if (err == NULL)
		err = &dummy;
	*err = NULL;
	memset(rec, 0, sizeof(*rec));
	rec->subpolicy = -1;
	rec->pct = 100;
	rec->fo = DMARC_FO_0;
	rec->rf_afrf = 1;
	rec->ri = 86400;

	for (p = txt; p <= end; p = q + 1) {
		const char	*ts, *te, *eq, *vs, *ve;
		int		 bit, has_eq;

		for (q = p; q < end && *q != ';'; q++)
			;
		ts = p;
		te = q;
		trim(&ts, &te);
		if (ts == te) {
			if (!seen_v) {
				*err = "does not start with v=DMARC1";
				return 0;
			}
			if (q == end)
				break;
			continue;	/* empty: a trailing or doubled ';' */
		}
		for (eq = ts; eq < te && *eq != '='; eq++)
			;
		has_eq = eq < te;
		vs = has_eq ? eq + 1 : te;
		ve = te;
		trim(&vs, &ve);
		te = eq;
		trim(&ts, &te);

		if (!seen_v) {
			/* the first tag is v=DMARC1, exactly (6.4) */
			if (!has_eq || !token_is(ts, te, "v") ||
			    (size_t)(ve - vs) != 6 || memcmp(vs, "DMARC1", 6)) {
				*err = "does not start with v=DMARC1";
				return 0;
			}
			seen_v = 1;
			if (memchr(txt, '\0', len) != NULL) {
				*err = "NUL in the record";
				return -1;
			}
			if (q == end)
				break;
			continue;
		}
		/* a tag without '=' is ignored like an unknown one */
		bit = !has_eq ? -1 : token_is(ts, te, "p") ? 0 :
		    token_is(ts, te, "sp") ? 1 :
		    token_is(ts, te, "pct") ? 2 :
		    token_is(ts, te, "adkim") ? 3 :
		    token_is(ts, te, "aspf") ? 4 :
		    token_is(ts, te, "fo") ? 5 :
		    token_is(ts, te, "rf") ? 6 :
		    token_is(ts, te, "ri") ? 7 :
		    token_is(ts, te, "rua") ? 8 :
		    token_is(ts, te, "ruf") ? 9 : -1;
		if (bit == -1 || (seen & (1u << bit))) {
			if (q == end)
				break;
			continue;	/* unknown or repeated: ignored */
		}
		seen |= 1u << bit;
		switch (bit) {
		case 0:
			p_seen = 1;
			if ((v = parse_policy(vs, ve)) == -1)
				rec->p_invalid = 1;
			else
				rec->policy = v;
			break;
		case 1:
			if ((v = parse_policy(vs, ve)) == -1)
				sp_bad = 1;
			else
				rec->subpolicy = v;
			break;
		case 2:
			if (parse_number(vs, ve, 3, 1000, &num) == 0 &&
			    num <= 100)
				rec->pct = (int)num;
			break;
		case 3:
			if ((v = parse_align(vs, ve)) != -1)
				rec->adkim = v;
			break;
		case 4:
			if ((v = parse_align(vs, ve)) != -1)
				rec->aspf = v;
			break;
		case 5:
			if ((v = parse_fo(vs, ve)) != -1)
				rec->fo = v;
			break;
		case 6:
			if ((v = parse_rf(vs, ve)) != -1)
				rec->rf_afrf = v;
			break;
		case 7:
			if (parse_number(vs, ve, 32, UINT32_MAX, &num) == 0)
				rec->ri = (uint32_t)num;
			break;
		case 8:
			rec->nrua = parse_uris(vs, ve, rec->rua);
			break;
		case 9:
			rec->nruf = parse_uris(vs, ve, rec->ruf);
			break;
		}
		if (q == end)
			break;
	}
	if (!seen_v) {
		*err = "does not start with v=DMARC1";
		return 0;
	}
	if (!p_seen)
		rec->p_invalid = 1;
	if (sp_bad)
		rec->p_invalid = 1;
	if (rec->p_invalid) {
		/* 6.6.3 step 6: a valid rua= makes it p=none */
		if (rec->nrua == 0) {
			*err = p_seen ? "invalid p= or sp= and no valid rua=" :
			    "no p= and no valid rua=";
			return -1;
		}
		rec->policy = DMARC_POLICY_NONE;
		rec->subpolicy = DMARC_POLICY_NONE;
	}
	if (rec->subpolicy == -1)
		rec->subpolicy = rec->policy;
	return 1;
}

/* ---- domains ---- */

/*
 * A domain as DMARC compares it: lower case, no trailing dot, labels of
 * letters, digits, '-' and '_' of 1..63 bytes, 253 bytes at most.
 */
static int
domain_norm(const char *in, char *out, size_t outlen)
{
	size_t	n = strlen(in), i, label = 0;

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= outlen)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char	c = (unsigned char)in[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else
			return -1;
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

int
dmarc_init(void)
{
	if (dmarc_psl != NULL)
		return 0;
	if ((dmarc_psl = psl_latest(NULL)) == NULL) {
		if (psl_builtin() == NULL) {
			log_warnx("dmarc: no Public Suffix List: neither %s "
			    "nor libpsl's built-in one", psl_dist_filename());
			return -1;
		}
		log_warnx("dmarc: %s not loaded: libpsl's built-in Public "
		    "Suffix List is used", psl_dist_filename());
		return 0;
	}
	log_debug("dmarc: Public Suffix List: the newer of %s and libpsl's "
	    "built-in one", psl_dist_filename());
	return 0;
}

void
dmarc_shutdown(void)
{
	psl_free(dmarc_psl);
	dmarc_psl = NULL;
}

const char *
dmarc_psl_file(void)
{
	return psl_dist_filename();
}

int
dmarc_org_domain(const char *domain, char *out, size_t outlen)
{
	const psl_ctx_t	*psl = dmarc_psl ? dmarc_psl : psl_builtin();
	char		 norm[DMARC_DOMAIN_MAX];
	const char	*reg;

	if (domain_norm(domain, norm, sizeof(norm)) == -1)
		return -1;
	reg = psl ? psl_registrable_domain(psl, norm) : NULL;
	/* a public suffix itself (or no list): the domain is its own */
	if (reg == NULL)
		reg = norm;
	if (strlen(reg) >= outlen)
		return -1;
	memcpy(out, reg, strlen(reg) + 1);
	return 0;
}

int
dmarc_aligned(const char *from_domain, const char *auth_domain, int mode)
{
	char	a[DMARC_DOMAIN_MAX], b[DMARC_DOMAIN_MAX];

	if (domain_norm(from_domain, a, sizeof(a)) == -1 ||
	    domain_norm(auth_domain, b, sizeof(b)) == -1)
		return 0;
	if (strcmp(a, b) == 0)
		return 1;
	if (mode == DMARC_ALIGN_STRICT)
		return 0;
	if (dmarc_org_domain(a, a, sizeof(a)) == -1 ||
	    dmarc_org_domain(b, b, sizeof(b)) == -1)
		return 0;
	return strcmp(a, b) == 0;
}

/* ---- the verdict ---- */

void
dmarc_set_random(uint32_t (*uniform)(uint32_t))
{
	dmarc_uniform = uniform ? uniform : arc4random_uniform;
}

void
dmarc_evaluate(const struct dmarc_req *req, const struct dmarc_record *rec,
    int at_org, struct dmarc_result *res)
{
	size_t	i;
	int	tempfail = 0;

	res->aligned_spf = res->aligned_dkim = 0;
	res->dkim_domain[0] = '\0';
	res->disposition = DMARC_POLICY_NONE;
	res->sampled_out = 0;
	if (rec == NULL) {
		res->result = DMARC_RESULT_NONE;
		res->policy = DMARC_POLICY_NONE;
		res->reason = "no DMARC record";
		return;
	}
	res->record = *rec;
	/* sp= applies to a subdomain whose record is the org domain's */
	res->subdomain = at_org &&
	    strcasecmp(res->domain, res->policy_domain) != 0;
	res->policy = res->subdomain ? rec->subpolicy : rec->policy;

	if (req->spf_domain[0] != '\0' &&
	    dmarc_aligned(req->from_domain, req->spf_domain, rec->aspf)) {
		if (req->spf_result == DMARC_AUTH_PASS)
			res->aligned_spf = 1;
		else if (req->spf_result == DMARC_AUTH_TEMPERROR)
			tempfail = 1;
	}
	for (i = 0; i < req->ndkim && i < DMARC_MAX_DKIM; i++) {
		const struct dmarc_dkim	*d = &req->dkim[i];

		if (!dmarc_aligned(req->from_domain, d->domain, rec->adkim))
			continue;
		if (d->result == DMARC_AUTH_TEMPERROR)
			tempfail = 1;
		if (d->result != DMARC_AUTH_PASS || res->aligned_dkim)
			continue;
		res->aligned_dkim = 1;
		snprintf(res->dkim_domain, sizeof(res->dkim_domain), "%s",
		    d->domain);
	}
	if (res->aligned_spf || res->aligned_dkim) {
		res->result = DMARC_RESULT_PASS;
		res->reason = "aligned pass";
		return;
	}
	if (tempfail) {
		res->result = DMARC_RESULT_TEMPERROR;
		res->reason = "an aligned identifier failed temporarily";
		return;
	}
	res->result = DMARC_RESULT_FAIL;
	res->reason = "no aligned pass";
	res->disposition = res->policy;
	/*
	 * 6.6.4: a message outside the pct= sample gets the next less
	 * strict policy.  pct=100 always applies, pct=0 never: the draw
	 * is uniform in [0, 100).
	 */
	if (res->policy != DMARC_POLICY_NONE && rec->pct < 100 &&
	    dmarc_uniform(100) >= (uint32_t)rec->pct) {
		res->sampled_out = 1;
		res->disposition = res->policy - 1;
	}
}

const char *
dmarc_result_name(int r)
{
	switch (r) {
	case DMARC_RESULT_NONE:
		return "none";
	case DMARC_RESULT_PASS:
		return "pass";
	case DMARC_RESULT_FAIL:
		return "fail";
	case DMARC_RESULT_TEMPERROR:
		return "temperror";
	case DMARC_RESULT_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
dmarc_uri_mailto(const char *uri, char *addr, size_t addrlen,
    uint64_t *maxsize)
{
	const char	*p, *bang;
	size_t		 n = 0;
	uint64_t	 size = 0, mult = 1;

	if (strncasecmp(uri, "mailto:", 7) != 0 || addrlen == 0)
		return -1;
	p = uri + 7;
	if ((bang = strchr(p, '!')) != NULL) {
		const char	*s = bang + 1;

		for (; isdigit((unsigned char)*s); s++) {
			if (size > UINT64_MAX / 100)
				return -1;
			size = size * 10 + (uint64_t)(*s - '0');
		}
		switch (tolower((unsigned char)*s)) {
		case 'k': mult = 1ULL << 10; s++; break;
		case 'm': mult = 1ULL << 20; s++; break;
		case 'g': mult = 1ULL << 30; s++; break;
		case 't': mult = 1ULL << 40; s++; break;
		}
		if (s == bang + 1 || *s != '\0' || size > UINT64_MAX / mult)
			return -1;
		size *= mult;
	} else
		bang = p + strlen(p);
	for (; p < bang && *p != '?'; p++) {
		int	c = (unsigned char)*p;

		if (c == '%') {
			if (p + 2 >= bang || hexval(p[1]) == -1 ||
			    hexval(p[2]) == -1)
				return -1;
			c = hexval(p[1]) * 16 + hexval(p[2]);
			p += 2;
		}
		/* one plain address: no list, no controls, no spaces */
		if (c <= 0x20 || c >= 0x7f || c == ',' || c == '<' ||
		    c == '>' || n + 1 >= addrlen)
			return -1;
		addr[n++] = (char)c;
	}
	addr[n] = '\0';
	if (n == 0 || strchr(addr, '@') == NULL || addr[0] == '@' ||
	    addr[n - 1] == '@')
		return -1;
	if (maxsize)
		*maxsize = size;
	return 0;
}

/* ---- discovery ---- */

struct dmarc_check {
	struct dmarc_req	 req;
	struct dmarc_result	 res;
	dmarc_cb		 cb;
	void			*arg;
	int			 at_org;
};

static void	dmarc_ask(struct dmarc_check *);

static void
dmarc_done(struct dmarc_check *c)
{
	c->cb(c->arg, &c->res);
	free(c);
}

static void
dmarc_deferred(evutil_socket_t fd, short ev, void *arg)
{
	dmarc_done(arg);
}

static void
dmarc_dns_cb(void *arg, const struct dns_result *dr)
{
	struct dmarc_check	*c = arg;
	struct dmarc_record	 rec, found;
	size_t			 i, ndmarc = 0, nbad = 0;
	const char		*err = NULL, *why = NULL;

	if (dr->status == DNS_TEMPFAIL) {
		c->res.result = DMARC_RESULT_TEMPERROR;
		c->res.reason = "DNS failure in policy discovery";
		dmarc_done(c);
		return;
	}
	for (i = 0; dr->status == DNS_OK && i < dr->nrr; i++) {
		const struct dns_rr	*rr = &dr->rr[i];
		int			 r;

		if (rr->type != DNS_T_TXT)
			continue;
		r = dmarc_parse_record(dns_rr_txt(dr, rr), rr->txtlen, &rec,
		    &err);
		if (r == 0)
			continue;
		ndmarc++;
		if (r == 1)
			found = rec;
		else {
			nbad++;
			why = err;
		}
	}
	if (ndmarc > 1) {
		/* 6.6.3 step 5: several records, no DMARC processing */
		log_debug("dmarc: %s: %zu DMARC records, none applies",
		    c->res.policy_domain, ndmarc);
		c->res.result = DMARC_RESULT_NONE;
		c->res.reason = "several DMARC records";
		dmarc_done(c);
		return;
	}
	if (ndmarc == 1 && nbad == 1) {
		log_debug("dmarc: %s: record not usable: %s",
		    c->res.policy_domain, why ? why : "?");
		c->res.result = DMARC_RESULT_PERMERROR;
		c->res.reason = "DMARC record not usable";
		dmarc_done(c);
		return;
	}
	if (ndmarc == 1) {
		dmarc_evaluate(&c->req, &found, c->at_org, &c->res);
		dmarc_done(c);
		return;
	}
	if (!c->at_org && strcmp(c->res.domain, c->res.org_domain) != 0) {
		c->at_org = 1;
		snprintf(c->res.policy_domain, sizeof(c->res.policy_domain),
		    "%s", c->res.org_domain);
		dmarc_ask(c);
		return;
	}
	c->res.policy_domain[0] = '\0';
	dmarc_evaluate(&c->req, NULL, 0, &c->res);
	dmarc_done(c);
}

static void
dmarc_ask(struct dmarc_check *c)
{
	char	name[DNS_NAME_MAX];
	size_t	n = strlen(c->res.policy_domain);

	/* dmarc_check() saw to it that "_dmarc." fits */
	if (n + sizeof("_dmarc.") > sizeof(name))
		fatalx("%s: name too long", __func__);
	memcpy(name, "_dmarc.", 7);
	memcpy(name + 7, c->res.policy_domain, n + 1);
	dns_query(name, DNS_T_TXT, DMARC_TIMEOUT, dmarc_dns_cb, c);
}

void
dmarc_check(const struct dmarc_req *req, dmarc_cb cb, void *arg)
{
	struct dmarc_check	*c;
	struct timeval		 now = { 0, 0 };
	size_t			 i;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("%s: calloc", __func__);
	c->req = *req;
	c->req.from_domain[sizeof(c->req.from_domain) - 1] = '\0';
	c->req.spf_domain[sizeof(c->req.spf_domain) - 1] = '\0';
	for (i = 0; i < DMARC_MAX_DKIM; i++)
		c->req.dkim[i].domain[sizeof(c->req.dkim[i].domain) - 1] =
		    '\0';
	c->cb = cb;
	c->arg = arg;
	/*
	 * The From domain must be one, and its _dmarc name must fit in
	 * a DNS name: 246 bytes and "_dmarc." make the 253 of RFC 1035.
	 */
	if (domain_norm(c->req.from_domain, c->res.domain,
	    sizeof(c->res.domain)) == -1 ||
	    strlen(c->res.domain) > 246 ||
	    dmarc_org_domain(c->res.domain, c->res.org_domain,
	    sizeof(c->res.org_domain)) == -1) {
		c->res.result = DMARC_RESULT_PERMERROR;
		c->res.reason = "no valid From domain";
		if (event_base_once(ev_base, -1, EV_TIMEOUT, dmarc_deferred, c,
		    &now) == -1)
			fatalx("%s: event_base_once", __func__);
		return;
	}
	snprintf(c->res.policy_domain, sizeof(c->res.policy_domain), "%s",
	    c->res.domain);
	dmarc_ask(c);
}
