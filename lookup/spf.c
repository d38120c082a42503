/*
 * spf.c -- the SPF evaluator (RFC 7208 4-6) on the lookup process's
 * event loop: check_host() for MAIL FROM or HELO, one DNS question at a
 * time through dns_query(), as a small state machine over a stack of
 * records (the checked domain's, then one per include:).
 *
 * Why a state machine and not a resolver library (libspf2): the lookup
 * process serves every session of every worker from one thread, so no
 * step may block; libspf2 resolves synchronously and has a poor security
 * record.  The text side (record parser, macros) is in spf_parse.c.
 *
 * Limits, all from RFC 7208 4.6.4 and 11: at most ten DNS terms
 * (include, a, mx, ptr, exists, redirect) per check, at most two of their
 * lookups void (NXDOMAIN or no answer), at most ten names from an MX or
 * PTR answer; each query times out on its own, and the whole check after
 * SPF_TIMEOUT_TOTAL seconds (temperror).  A record is parsed whole before
 * it is evaluated: a syntax error anywhere is a permerror.
 *
 * Lifetime: a check lives until its result is delivered (or it is
 * cancelled) AND the DNS question in flight has come back: dns_query()
 * has no cancel, so a cancelled or timed-out check waits, silent, for
 * that last callback and only then is freed.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "dns.h"
#include "log.h"
#include "mproc.h"
#include "spf.h"

static int	spf_query_timeout = SPF_TIMEOUT_QUERY;
static int	spf_total_timeout = SPF_TIMEOUT_TOTAL;

/* what the DNS question in flight is for */
enum spf_wait {
	W_NONE,
	W_RECORD,	/* TXT of the current frame's domain */
	W_A,		/* a: A/AAAA of the target */
	W_MX,		/* mx: MX of the target */
	W_MX_ADDR,	/* mx: A/AAAA of names[iname] */
	W_PTR,		/* ptr / %{p}: PTR of the client */
	W_PTR_ADDR,	/* A/AAAA of ptr_names[iptr] */
	W_EXISTS,	/* exists: A of the target */
	W_EXP		/* exp=: TXT of the explanation */
};

#define EXP_NONE	0
#define EXP_DOMAIN	1	/* expanding exp='s domain-spec */
#define EXP_TEXT	2	/* expanding the explanation's text */

/* one record being evaluated: the checked domain's, or an include's */
struct spf_frame {
	struct spf_frame	*parent;	/* NULL: the top record */
	int			 redirected;	/* reached by redirect= */
	char			 domain[SPF_DOMAIN_MAX];
	char			*record;	/* NULL: not fetched yet */
	struct spf_term		*terms;
	int			 nterms;
	int			 next;		/* term being evaluated */
};

struct spf_check {
	struct spf_req		 req;
	spf_cb			 cb;
	void			*arg;
	struct event		*deadline;	/* the whole-check ceiling */
	struct event		*kick;		/* first step, from the loop */
	int			 inflight;	/* a dns_query() pending */
	int			 finished;	/* delivered or cancelled */
	enum spf_wait		 wait;
	int			 dns_terms;
	int			 voids;
	struct spf_frame	*frame;

	/* the term being evaluated */
	int			 counted;	/* in dns_terms already */
	char			 target[SPF_DOMAIN_MAX];
	int			 found;
	char			 names[SPF_MAX_NAMES][SPF_DOMAIN_MAX];
	int			 nnames, iname;

	/* PTR validation (5.5), shared by ptr and %{p}, done once */
	int			 ptr_state;	/* 0 no, 1 asking, 2 known */
	int			 ptr_void;	/* the PTR lookup was void */
	char			 ptr_names[SPF_MAX_NAMES][SPF_DOMAIN_MAX];
	int			 ptr_ok[SPF_MAX_NAMES];
	int			 nptr, iptr;
	char			 ptr_choice[SPF_DOMAIN_MAX];

	/* identity and macro values */
	struct sockaddr_storage	 ip;		/* unmapped */
	char			 sender[SPF_SENDER_MAX];
	char			 local[SPF_SENDER_MAX];
	char			 sender_domain[SPF_DOMAIN_MAX];
	char			 ip_dots[80];	/* %{i} */
	char			 ip_text[INET6_ADDRSTRLEN];	/* %{c} */

	/* the final answer, before exp= */
	const struct spf_term	*exp;		/* in frame's terms */
	int			 exp_stage;	/* EXP_* */
	char			 exp_text[2048];
	struct spf_result	 res;
};

static void	spf_run(struct spf_check *);
static void	spf_finish(struct spf_check *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	spf_term_done(struct spf_check *, int);
static void	spf_exp_start(struct spf_check *);
static void	spf_ptr_start(struct spf_check *);

const char *
spf_result_name(int r)
{
	switch (r) {
	case SPF_NONE: return "none";
	case SPF_NEUTRAL: return "neutral";
	case SPF_PASS: return "pass";
	case SPF_FAIL: return "fail";
	case SPF_SOFTFAIL: return "softfail";
	case SPF_TEMPERROR: return "temperror";
	case SPF_PERMERROR: return "permerror";
	}
	return "unknown";
}

void
spf_set_timeouts(int query, int total)
{
	spf_query_timeout = query > 0 ? query : SPF_TIMEOUT_QUERY;
	spf_total_timeout = total > 0 ? total : SPF_TIMEOUT_TOTAL;
}

/* printable ASCII copy (for results that reach logs and replies) */
static void
spf_copy_clean(char *dst, size_t dlen, const char *src, size_t slen)
{
	size_t	i;

	if (dlen == 0)
		return;
	for (i = 0; i < slen && i < dlen - 1 && src[i] != '\0'; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

static void
spf_frame_free(struct spf_frame *f)
{
	free(f->terms);
	free(f->record);
	free(f);
}

static void
spf_free(struct spf_check *c)
{
	struct spf_frame	*f;

	while ((f = c->frame) != NULL) {
		c->frame = f->parent;
		spf_frame_free(f);
	}
	event_free(c->deadline);
	event_free(c->kick);
	free(c);
}

static struct spf_frame *
spf_frame_new(struct spf_check *c, const char *domain)
{
	struct spf_frame	*f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		fatal("calloc");
	snprintf(f->domain, sizeof(f->domain), "%s", domain);
	f->parent = c->frame;
	c->frame = f;
	return f;
}

/* the DNS question for the current step; the answer goes to spf_dns_cb */
static void	spf_dns_cb(void *, const struct dns_result *);

static void
spf_ask(struct spf_check *c, enum spf_wait w, const char *name, int type)
{
	char	buf[SPF_DOMAIN_MAX * 4];
	size_t	i, n = 0;

	c->wait = w;
	c->inflight = 1;
	if (w == W_MX_ADDR || w == W_PTR_ADDR) {
		/* names from MX and PTR answers: presentation form already */
		dns_query(name, type, spf_query_timeout, spf_dns_cb, c);
		return;
	}
	/*
	 * An expanded domain-spec may hold any visible character and
	 * spaces (%_); the resolver takes presentation form, so those
	 * with a meaning there are escaped (RFC 1035 5.1).
	 */
	for (i = 0; name[i] != '\0' && n < sizeof(buf) - 5; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch <= 0x20 || ch >= 0x7f)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			    "\\%03u", ch);
		else {
			if (strchr("\"();\\@$", ch) != NULL)
				buf[n++] = '\\';
			buf[n++] = (char)ch;
		}
	}
	buf[n] = '\0';
	dns_query(buf, type, spf_query_timeout, spf_dns_cb, c);
}

static int
spf_addr_type(const struct spf_check *c)
{
	return c->ip.ss_family == AF_INET6 ? DNS_T_AAAA : DNS_T_A;
}

static const unsigned char *
spf_addr_bytes(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return (const unsigned char *)
		    &((const struct sockaddr_in6 *)ss)->sin6_addr;
	return (const unsigned char *)
	    &((const struct sockaddr_in *)ss)->sin_addr;
}

/* the first `bits' bits of a and b are equal */
static int
spf_prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
	int	n = bits / 8, r = bits % 8;

	if (memcmp(a, b, (size_t)n) != 0)
		return 0;
	if (r == 0)
		return 1;
	return ((a[n] ^ b[n]) & (0xff << (8 - r))) == 0;
}

/* does the client fall in addr/cidr (cidr4 or cidr6 by its family)? */
static int
spf_addr_match(const struct spf_check *c, const struct sockaddr_storage *a,
    int cidr4, int cidr6)
{
	if (a->ss_family != c->ip.ss_family)
		return 0;
	return spf_prefix_equal(spf_addr_bytes(&c->ip), spf_addr_bytes(a),
	    c->ip.ss_family == AF_INET6 ? cidr6 : cidr4);
}

static int
spf_name_under(const char *name, const char *domain)
{
	size_t	n = strlen(name), d = strlen(domain);

	if (n == d)
		return strcasecmp(name, domain) == 0;
	return n > d && name[n - d - 1] == '.' &&
	    strcasecmp(name + n - d, domain) == 0;
}

/* %{p} (7.3): the target itself, else a name under it, else any */
static const char *
spf_ptr_macro(struct spf_check *c, const char *domain)
{
	int	i, pick = -1;

	for (i = 0; i < c->nptr; i++) {
		if (!c->ptr_ok[i])
			continue;
		if (strcasecmp(c->ptr_names[i], domain) == 0) {
			pick = i;
			break;
		}
		if (pick == -1 || (spf_name_under(c->ptr_names[i], domain) &&
		    !spf_name_under(c->ptr_names[pick], domain)))
			pick = i;
	}
	if (pick == -1)
		return "unknown";
	snprintf(c->ptr_choice, sizeof(c->ptr_choice), "%s",
	    c->ptr_names[pick]);
	return c->ptr_choice;
}

static int
spf_expand(struct spf_check *c, const char *in, size_t inlen, int flags,
    char *out, size_t outlen)
{
	struct spf_macro_ctx	ctx;
	char			big[4096];

	memset(&ctx, 0, sizeof(ctx));
	ctx.sender = c->sender;
	ctx.local = c->local;
	ctx.sender_domain = c->sender_domain;
	ctx.domain = c->frame->domain;
	ctx.ip = c->ip_dots;
	ctx.client = c->ip_text;
	ctx.ptr = c->ptr_state == 2 ? spf_ptr_macro(c, c->frame->domain) :
	    "unknown";
	ctx.ipver = c->ip.ss_family == AF_INET6 ? "ip6" : "in-addr";
	ctx.helo = c->req.helo;
	ctx.receiver = c->req.receiver[0] ? c->req.receiver : "unknown";
	ctx.now = time(NULL);
	/* room for what 7.3 then cuts to 253 characters from the left */
	if (spf_macro_expand(&ctx, in, inlen, flags, big, sizeof(big)) == -1 ||
	    strlen(big) >= outlen)
		return -1;
	memcpy(out, big, strlen(big) + 1);
	return 0;
}

/*
 * A name we may ask about (after expansion): non-empty labels of at most
 * 63 characters.  Anything else cannot exist in the DNS; such a target
 * simply matches nothing (a void lookup).
 */
static int
spf_name_ok(const char *s)
{
	size_t	label = 0;

	if (*s == '\0' || strlen(s) > 253)
		return 0;
	for (; *s; s++) {
		if (*s == '.') {
			if (label == 0 && s[1] != '\0')
				return 0;
			label = 0;
			continue;
		}
		if (++label > 63)
			return 0;
	}
	return 1;
}

/* 4.3: a domain check_host() can start from; else the result is none */
static int
spf_domain_ok(const char *s)
{
	if (!spf_name_ok(s) || s[0] == '.' || s[0] == '[' ||
	    strchr(s, '.') == NULL)
		return 0;
	/* one label with a trailing dot is no FQDN either */
	return strchr(s, '.') != s + strlen(s) - 1;
}

/* void lookups (4.6.4): more than two is a permerror; 0 to go on */
static int
spf_void(struct spf_check *c)
{
	if (++c->voids > SPF_MAX_VOID) {
		spf_finish(c, SPF_PERMERROR, "more than %d void DNS lookups "
		    "(RFC 7208 4.6.4)", SPF_MAX_VOID);
		return -1;
	}
	return 0;
}

static void
spf_deliver(struct spf_check *c)
{
	c->finished = 1;
	evtimer_del(c->deadline);
	event_del(c->kick);
	c->cb(c->arg, &c->res);
	if (!c->inflight)
		spf_free(c);
}

static void
spf_default_explanation(struct spf_check *c)
{
	struct spf_result	*r = &c->res;

	switch (r->result) {
	case SPF_FAIL:
		snprintf(r->explanation, sizeof(r->explanation), "%s does "
		    "not designate %s as permitted sender", r->domain,
		    c->ip_text);
		break;
	case SPF_PASS:
		snprintf(r->explanation, sizeof(r->explanation), "%s "
		    "designates %s as permitted sender", r->domain,
		    c->ip_text);
		break;
	case SPF_SOFTFAIL:
		snprintf(r->explanation, sizeof(r->explanation), "%s does "
		    "not designate %s as permitted sender (softfail)",
		    r->domain, c->ip_text);
		break;
	case SPF_NEUTRAL:
		snprintf(r->explanation, sizeof(r->explanation), "%s makes "
		    "no assertion about %s", r->domain, c->ip_text);
		break;
	case SPF_NONE:
		snprintf(r->explanation, sizeof(r->explanation), "%s has no "
		    "SPF record", r->domain[0] ? r->domain : "the identity");
		break;
	default:
		snprintf(r->explanation, sizeof(r->explanation), "%s",
		    r->smtp_comment);
	}
	if (r->smtp_comment[0] == '\0')
		snprintf(r->smtp_comment, sizeof(r->smtp_comment), "%s",
		    r->explanation);
}

/* the end: any result, errors included, from anywhere in the recursion */
static void
spf_finish(struct spf_check *c, int result, const char *fmt, ...)
{
	char	buf[SPF_EXP_MAX];
	va_list	ap;

	c->res.result = result;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		spf_copy_clean(c->res.smtp_comment,
		    sizeof(c->res.smtp_comment), buf, strlen(buf));
	}
	spf_default_explanation(c);
	spf_deliver(c);
}

/*
 * A record's result (a matched term's qualifier, or neutral at its end).
 * An include's pass is a match of the include term in the record above
 * (5.2); its fail, softfail and neutral are no match.  The top record's
 * result is the answer, with exp= fetched for a fail (6.2; an include's
 * own exp= is never used, a redirect's replaces the first record's).
 */
static void
spf_frame_result(struct spf_check *c, int result, const struct spf_term *t)
{
	struct spf_frame	*f = c->frame;
	int			 i;

	if (f->parent != NULL) {
		c->frame = f->parent;
		spf_frame_free(f);
		spf_term_done(c, result == SPF_PASS);
		return;
	}
	c->res.result = result;
	if (t != NULL)
		spf_copy_clean(c->res.mechanism, sizeof(c->res.mechanism),
		    t->text, t->textlen);
	else
		snprintf(c->res.mechanism, sizeof(c->res.mechanism),
		    "default");
	c->exp = NULL;
	for (i = 0; i < f->nterms; i++)
		if (f->terms[i].type == SPF_T_EXP)
			c->exp = &f->terms[i];
	if (result != SPF_FAIL || c->exp == NULL) {
		spf_finish(c, result, NULL);
		return;
	}
	spf_exp_start(c);
}

/*
 * exp= (6.2): its domain-spec expanded, the one TXT record there fetched,
 * its text expanded.  Either expansion may need %{p}, whose PTR lookups
 * come first; spf_run() resumes at exp_stage.  Any trouble gives the
 * default explanation.
 */
static void
spf_exp_start(struct spf_check *c)
{
	c->exp_stage = EXP_DOMAIN;
	if (spf_macro_uses(c->exp->spec, c->exp->speclen, 'p') &&
	    c->ptr_state == 0) {
		spf_ptr_start(c);
		return;
	}
	if (spf_expand(c, c->exp->spec, c->exp->speclen, SPF_MACRO_DOMAIN,
	    c->target, sizeof(c->target)) == -1 || !spf_name_ok(c->target)) {
		spf_finish(c, SPF_FAIL, NULL);
		return;
	}
	spf_ask(c, W_EXP, c->target, DNS_T_TXT);
}

static void
spf_exp_text(struct spf_check *c)
{
	char	buf[SPF_EXP_MAX];
	size_t	i;

	c->exp_stage = EXP_TEXT;
	if (spf_macro_uses(c->exp_text, strlen(c->exp_text), 'p') &&
	    c->ptr_state == 0) {
		spf_ptr_start(c);
		return;
	}
	if (spf_expand(c, c->exp_text, strlen(c->exp_text), SPF_MACRO_EXP,
	    buf, sizeof(buf)) == -1) {
		spf_finish(c, SPF_FAIL, NULL);
		return;
	}
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e) {
			spf_finish(c, SPF_FAIL, NULL);
			return;
		}
	snprintf(c->res.explanation, sizeof(c->res.explanation), "%s", buf);
	snprintf(c->res.smtp_comment, sizeof(c->res.smtp_comment), "%s", buf);
	spf_deliver(c);
}

/* 5.5: PTR names of the client, then each one's forward lookup */
static void
spf_ptr_start(struct spf_check *c)
{
	char	name[DNS_NAME_MAX];

	c->ptr_state = 1;
	c->nptr = c->iptr = 0;
	c->ptr_void = 0;
	if (dns_ptr_name(&c->ip, name, sizeof(name)) == -1) {
		c->ptr_state = 2;
		spf_run(c);
		return;
	}
	spf_ask(c, W_PTR, name, DNS_T_PTR | DNS_Q_ANYNAME);
}

static void
spf_ptr_next(struct spf_check *c)
{
	if (c->iptr < c->nptr) {
		spf_ask(c, W_PTR_ADDR, c->ptr_names[c->iptr],
		    spf_addr_type(c));
		return;
	}
	c->ptr_state = 2;
	spf_run(c);
}

/* the ptr mechanism, once the validated names are known */
static void
spf_ptr_match(struct spf_check *c)
{
	int	i, match = 0;

	if (c->ptr_void && spf_void(c) == -1)
		return;
	for (i = 0; i < c->nptr; i++)
		if (c->ptr_ok[i] && spf_name_under(c->ptr_names[i],
		    c->target))
			match = 1;
	spf_term_done(c, match);
}

static void
spf_mx_next(struct spf_check *c)
{
	if (c->iname < c->nnames) {
		spf_ask(c, W_MX_ADDR, c->names[c->iname], spf_addr_type(c));
		return;
	}
	spf_term_done(c, 0);
}

/*
 * Start the current term.  Returns 1 matched, 0 not matched, -1 when
 * the answer comes later (a query is in flight, or the check is over).
 */
static int
spf_term_start(struct spf_check *c, const struct spf_term *t)
{
	struct spf_frame	*f = c->frame;
	struct sockaddr_storage	 net;

	switch (t->type) {
	case SPF_T_ALL:
		return 1;
	case SPF_T_IP4:
	case SPF_T_IP6:
		memset(&net, 0, sizeof(net));
		net.ss_family = t->type == SPF_T_IP4 ? AF_INET : AF_INET6;
		memcpy((void *)spf_addr_bytes(&net), t->ip,
		    t->type == SPF_T_IP4 ? 4 : 16);
		return spf_addr_match(c, &net, t->cidr4, t->cidr6);
	case SPF_T_REDIRECT:
	case SPF_T_EXP:
	case SPF_T_UNKNOWN:
		return 0;	/* modifiers are not evaluated in order */
	}

	/* the DNS mechanisms: counted, then their target expanded */
	if (!c->counted) {
		c->counted = 1;
		if (++c->dns_terms > SPF_MAX_DNS_TERMS) {
			spf_finish(c, SPF_PERMERROR, "more than %d DNS "
			    "mechanisms (RFC 7208 4.6.4)", SPF_MAX_DNS_TERMS);
			return -1;
		}
	}
	if (t->spec != NULL && spf_macro_uses(t->spec, t->speclen, 'p') &&
	    c->ptr_state == 0) {
		spf_ptr_start(c);
		return -1;
	}
	if (t->spec == NULL)
		snprintf(c->target, sizeof(c->target), "%s", f->domain);
	else if (spf_expand(c, t->spec, t->speclen, SPF_MACRO_DOMAIN,
	    c->target, sizeof(c->target)) == -1) {
		spf_finish(c, SPF_PERMERROR, "bad macro in \"%.*s\"",
		    (int)t->textlen, t->text);
		return -1;
	}
	if (t->type == SPF_T_PTR) {
		if (c->ptr_state == 0) {
			spf_ptr_start(c);
			return -1;
		}
		spf_ptr_match(c);
		return -1;
	}
	if (!spf_name_ok(c->target)) {
		if (t->type == SPF_T_INCLUDE) {
			spf_finish(c, SPF_PERMERROR, "include of an invalid "
			    "name \"%s\"", c->target);
			return -1;
		}
		if (spf_void(c) == -1)
			return -1;
		return 0;
	}
	switch (t->type) {
	case SPF_T_INCLUDE:
		spf_frame_new(c, c->target);
		c->counted = 0;
		spf_run(c);
		return -1;
	case SPF_T_A:
		spf_ask(c, W_A, c->target, spf_addr_type(c));
		return -1;
	case SPF_T_MX:
		spf_ask(c, W_MX, c->target, DNS_T_MX | DNS_Q_ANYNAME);
		return -1;
	case SPF_T_EXISTS:
		spf_ask(c, W_EXISTS, c->target, DNS_T_A);
		return -1;
	}
	fatalx("spf: term type %d", t->type);
}

/* the current term matched or not: its result, or on to the next */
static void
spf_term_done(struct spf_check *c, int match)
{
	struct spf_frame	*f = c->frame;
	const struct spf_term	*t = &f->terms[f->next];

	c->counted = 0;
	if (match) {
		spf_frame_result(c, t->result, t);
		return;
	}
	f->next++;
	spf_run(c);
}

/* the records of a frame's domain: exactly one "v=spf1" (4.5) */
static void
spf_record(struct spf_check *c, const struct dns_result *res)
{
	struct spf_frame	*f = c->frame;
	const char		*txt = NULL;
	char			 err[128];
	size_t			 i, n = 0, len = 0;
	int			 missing;

	if (res->status == DNS_TEMPFAIL) {
		spf_finish(c, SPF_TEMPERROR, "DNS failure looking up the SPF "
		    "record of %s", f->domain);
		return;
	}
	for (i = 0; i < res->nrr; i++) {
		const char *s = dns_rr_txt(res, &res->rr[i]);

		if (!spf_record_is_spf1(s, res->rr[i].txtlen))
			continue;
		txt = s;
		len = res->rr[i].txtlen;
		n++;
	}
	if (n > 1) {
		spf_finish(c, SPF_PERMERROR, "%s has more than one SPF record",
		    f->domain);
		return;
	}
	if (n == 0) {
		missing = f->parent != NULL || f->redirected;
		if (!missing) {
			spf_finish(c, SPF_NONE, "%s has no SPF record",
			    f->domain);
			return;
		}
		spf_finish(c, SPF_PERMERROR, "%s of %s: no SPF record",
		    f->parent != NULL ? "include" : "redirect", f->domain);
		return;
	}
	if ((f->record = malloc(len + 1)) == NULL)
		fatal("malloc");
	memcpy(f->record, txt, len);
	f->record[len] = '\0';
	if ((f->nterms = spf_record_parse(f->record, len, &f->terms, err,
	    sizeof(err))) == -1) {
		spf_finish(c, SPF_PERMERROR, "%s: %s", f->domain, err);
		return;
	}
	f->next = 0;
	spf_run(c);
}

/* a fail's exp= answer: exactly one TXT record, expanded (6.2) */
static void
spf_exp(struct spf_check *c, const struct dns_result *res)
{
	const char	*txt;

	if (res->status != DNS_OK || res->nrr != 1) {
		spf_finish(c, SPF_FAIL, NULL);
		return;
	}
	txt = dns_rr_txt(res, &res->rr[0]);
	if (strlen(txt) != res->rr[0].txtlen ||
	    res->rr[0].txtlen >= sizeof(c->exp_text)) {
		spf_finish(c, SPF_FAIL, NULL);
		return;
	}
	memcpy(c->exp_text, txt, res->rr[0].txtlen + 1);
	spf_exp_text(c);
}

static void
spf_dns_cb(void *arg, const struct dns_result *res)
{
	struct spf_check	*c = arg;
	size_t			 i;
	int			 match = 0;

	c->inflight = 0;
	if (c->finished) {
		spf_free(c);
		return;
	}
	switch (c->wait) {
	case W_NONE:
		fatalx("spf: an answer nobody asked for");
	case W_RECORD:
		spf_record(c, res);
		return;
	case W_EXP:
		spf_exp(c, res);
		return;
	case W_A:
	case W_EXISTS:
		if (res->status == DNS_TEMPFAIL) {
			spf_finish(c, SPF_TEMPERROR, "DNS failure looking up "
			    "%s", c->target);
			return;
		}
		if (res->nrr == 0) {
			if (spf_void(c) == 0)
				spf_term_done(c, 0);
			return;
		}
		for (i = 0; i < res->nrr && !match; i++) {
			const struct spf_term *t =
			    &c->frame->terms[c->frame->next];

			match = c->wait == W_EXISTS ||
			    spf_addr_match(c, &res->rr[i].addr, t->cidr4,
			    t->cidr6);
		}
		spf_term_done(c, match);
		return;
	case W_MX:
		if (res->status == DNS_TEMPFAIL) {
			spf_finish(c, SPF_TEMPERROR, "DNS failure looking up "
			    "MX of %s", c->target);
			return;
		}
		if (res->nrr == 0) {
			if (spf_void(c) == 0)
				spf_term_done(c, 0);
			return;
		}
		if (res->nrr > SPF_MAX_NAMES) {
			spf_finish(c, SPF_PERMERROR, "%s has more than %d MX "
			    "records (RFC 7208 4.6.4)", c->target,
			    SPF_MAX_NAMES);
			return;
		}
		c->nnames = c->iname = 0;
		for (i = 0; i < res->nrr; i++)
			if (res->rr[i].name[0] != '\0')
				snprintf(c->names[c->nnames++],
				    sizeof(c->names[0]), "%s",
				    res->rr[i].name);
		spf_mx_next(c);
		return;
	case W_MX_ADDR: {
		const struct spf_term *t = &c->frame->terms[c->frame->next];

		if (res->status == DNS_TEMPFAIL) {
			spf_finish(c, SPF_TEMPERROR, "DNS failure looking up "
			    "%s", c->names[c->iname]);
			return;
		}
		for (i = 0; i < res->nrr; i++)
			if (spf_addr_match(c, &res->rr[i].addr, t->cidr4,
			    t->cidr6)) {
				spf_term_done(c, 1);
				return;
			}
		c->iname++;
		spf_mx_next(c);
		return;
	}
	case W_PTR:
		/* 5.5: a DNS error here is no match, not a temperror */
		c->ptr_void = res->status == DNS_NXDOMAIN ||
		    res->status == DNS_NODATA;
		for (i = 0; i < res->nrr && c->nptr < SPF_MAX_NAMES; i++) {
			c->ptr_ok[c->nptr] = 0;
			snprintf(c->ptr_names[c->nptr++],
			    sizeof(c->ptr_names[0]), "%s", res->rr[i].name);
		}
		spf_ptr_next(c);
		return;
	case W_PTR_ADDR:
		for (i = 0; i < res->nrr; i++)
			if (spf_addr_match(c, &res->rr[i].addr, 32, 128))
				c->ptr_ok[c->iptr] = 1;
		c->iptr++;
		spf_ptr_next(c);
		return;
	}
}

/*
 * Evaluate from where the current frame stands until a question is in
 * flight or the check is over.
 */
static void
spf_run(struct spf_check *c)
{
	struct spf_frame	*f;
	const struct spf_term	*t;
	int			 i, r;

	f = c->frame;
	if (f->record == NULL) {
		spf_ask(c, W_RECORD, f->domain, DNS_T_TXT);
		return;
	}
	if (c->exp_stage == EXP_DOMAIN) {
		/* back from the PTR lookups of a %{p} in exp= */
		spf_exp_start(c);
		return;
	}
	if (c->exp_stage == EXP_TEXT) {
		spf_exp_text(c);
		return;
	}
	while (f->next < f->nterms) {
		t = &f->terms[f->next];
		if ((r = spf_term_start(c, t)) == -1)
			return;
		if (r == 1) {
			spf_frame_result(c, t->result, t);
			return;
		}
		c->counted = 0;
		f->next++;
	}
	/* no term matched: redirect= (6.1), else neutral (4.7) */
	for (i = 0; i < f->nterms; i++)
		if (f->terms[i].type == SPF_T_REDIRECT)
			break;
	if (i == f->nterms) {
		spf_frame_result(c, SPF_NEUTRAL, NULL);
		return;
	}
	t = &f->terms[i];
	if (!c->counted) {
		c->counted = 1;
		if (++c->dns_terms > SPF_MAX_DNS_TERMS) {
			spf_finish(c, SPF_PERMERROR, "more than %d DNS "
			    "mechanisms (RFC 7208 4.6.4)", SPF_MAX_DNS_TERMS);
			return;
		}
	}
	if (spf_macro_uses(t->spec, t->speclen, 'p') && c->ptr_state == 0) {
		spf_ptr_start(c);
		return;
	}
	if (spf_expand(c, t->spec, t->speclen, SPF_MACRO_DOMAIN, c->target,
	    sizeof(c->target)) == -1 || !spf_name_ok(c->target)) {
		spf_finish(c, SPF_PERMERROR, "redirect to an invalid name");
		return;
	}
	/* the redirect's record takes this one's place, exp= included */
	c->counted = 0;
	free(f->terms);
	free(f->record);
	f->terms = NULL;
	f->record = NULL;
	f->nterms = f->next = 0;
	f->redirected = 1;
	snprintf(f->domain, sizeof(f->domain), "%s", c->target);
	spf_ask(c, W_RECORD, f->domain, DNS_T_TXT);
}

static void
spf_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct spf_check	*c = arg;

	if (c->exp_stage != EXP_NONE) {
		/* the result is known; only its explanation was late (6.2) */
		spf_finish(c, SPF_FAIL, NULL);
		return;
	}
	spf_finish(c, SPF_TEMPERROR, "SPF check of %s took longer than %d "
	    "seconds", c->res.domain, spf_total_timeout);
}

static void
spf_kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct spf_check	*c = arg;

	if (c->frame == NULL) {
		spf_finish(c, SPF_NONE, NULL);
		return;
	}
	spf_run(c);
}

void
spf_macro_ip(const struct sockaddr_storage *ss, char *dots, size_t dlen,
    char *text, size_t tlen)
{
	const unsigned char	*b = spf_addr_bytes(ss);
	size_t			 off = 0;
	int			 i, n;

	if (ss->ss_family == AF_INET6) {
		for (i = 0; i < 16; i++) {
			n = snprintf(dots + off, dlen - off, "%s%x.%x",
			    i ? "." : "", b[i] >> 4, b[i] & 0xf);
			if (n < 0 || (size_t)n >= dlen - off)
				break;
			off += (size_t)n;
		}
	} else
		snprintf(dots, dlen, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
	if (inet_ntop(ss->ss_family, b, text, (socklen_t)tlen) == NULL)
		snprintf(text, tlen, "unknown");
}

static struct spf_check *
spf_start(const struct spf_req *req, int helo, spf_cb cb, void *arg)
{
	struct spf_check		*c;
	const struct sockaddr_in6	*sin6;
	struct sockaddr_in		*sin;
	const char			*at, *dom;
	struct timeval			 tv;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	c->req = *req;
	c->req.helo[sizeof(c->req.helo) - 1] = '\0';
	c->req.sender[sizeof(c->req.sender) - 1] = '\0';
	c->req.receiver[sizeof(c->req.receiver) - 1] = '\0';
	c->cb = cb;
	c->arg = arg;
	if ((c->deadline = evtimer_new(ev_base, spf_deadline_cb, c)) ==
	    NULL || (c->kick = evtimer_new(ev_base, spf_kick_cb, c)) == NULL)
		fatal("evtimer_new");

	/* an IPv4-mapped IPv6 client is checked as IPv4 (5) */
	c->ip = req->addr;
	sin6 = (const struct sockaddr_in6 *)&req->addr;
	if (req->addr.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memset(&c->ip, 0, sizeof(c->ip));
		sin = (struct sockaddr_in *)&c->ip;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, (const unsigned char *)
		    &sin6->sin6_addr + 12, 4);
	}
	spf_macro_ip(&c->ip, c->ip_dots, sizeof(c->ip_dots), c->ip_text,
	    sizeof(c->ip_text));

	/* 2.4, 4.3: the null sender is postmaster@helo; no local part too */
	if (helo || c->req.sender[0] == '\0')
		snprintf(c->sender, sizeof(c->sender), "postmaster@%s",
		    c->req.helo);
	else if ((at = strrchr(c->req.sender, '@')) == NULL)
		snprintf(c->sender, sizeof(c->sender), "postmaster@%.*s",
		    SPF_DOMAIN_MAX, c->req.sender);
	else if (at == c->req.sender)
		snprintf(c->sender, sizeof(c->sender), "postmaster%.*s",
		    SPF_DOMAIN_MAX, c->req.sender);
	else
		snprintf(c->sender, sizeof(c->sender), "%s", c->req.sender);
	at = strrchr(c->sender, '@');
	snprintf(c->local, sizeof(c->local), "%.*s", (int)(at - c->sender),
	    c->sender);
	dom = at + 1;
	snprintf(c->sender_domain, sizeof(c->sender_domain), "%s", dom);
	spf_copy_clean(c->res.domain, sizeof(c->res.domain), dom,
	    strlen(dom));

	tv.tv_sec = spf_total_timeout;
	tv.tv_usec = 0;
	evtimer_add(c->deadline, &tv);
	/* malformed domain, IP literal, or no IP family we know: none */
	if ((c->ip.ss_family == AF_INET || c->ip.ss_family == AF_INET6) &&
	    spf_domain_ok(dom) && strlen(dom) < SPF_DOMAIN_MAX)
		spf_frame_new(c, dom);
	event_active(c->kick, EV_TIMEOUT, 0);
	return c;
}

struct spf_check *
spf_check(const struct spf_req *req, spf_cb cb, void *arg)
{
	return spf_start(req, 0, cb, arg);
}

struct spf_check *
spf_check_helo(const struct spf_req *req, spf_cb cb, void *arg)
{
	return spf_start(req, 1, cb, arg);
}

void
spf_cancel(struct spf_check *c)
{
	if (c == NULL || c->finished)
		return;
	c->finished = 1;
	if (!c->inflight)
		spf_free(c);
	else {
		evtimer_del(c->deadline);
		event_del(c->kick);
	}
}
