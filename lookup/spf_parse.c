/*
 * spf_parse.c -- the text side of SPF (RFC 7208): the record parser
 * (4.5, 4.6, 5, 6) and the macro expander (7).  No DNS and no state:
 * the evaluator in spf.c calls these, and so do the unit tests and the
 * fuzz harness, which feed them whatever a DNS TXT record can hold.
 *
 * A record is checked whole before any of it is evaluated (4.6: a
 * syntax error anywhere is a permerror, even after a matching term), so
 * the parser rejects anything outside the ABNF: non-ASCII bytes, control
 * characters between terms, bad CIDR lengths (leading zeros, too long),
 * a domain-spec that does not end in a top label or a macro, c, r and t
 * macros outside exp, duplicate redirect= or exp=.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "spf.h"

#define SPF_DELIMS	".-+,/_="

static int
spf_isalpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
spf_isdigit(int c)
{
	return c >= '0' && c <= '9';
}

static int
spf_isalnum(int c)
{
	return spf_isalpha(c) || spf_isdigit(c);
}

static int
spf_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* RFC 7208 4.5: "v=spf1" followed by a space or the end */
int
spf_record_is_spf1(const char *rec, size_t len)
{
	if (len < 6 || strncasecmp(rec, "v=spf1", 6) != 0)
		return 0;
	return len == 6 || rec[6] == ' ';
}

/*
 * One macro-expand at in[*i] (in[*i] == '%').  Writes the letter (or
 * '%', '_', '-' for the escapes), the digit count (0: none), reverse and
 * the delimiter set into the out arguments and advances *i past it.
 */
struct spf_macro {
	int	letter;		/* lower case; '%', '_', '-' for escapes */
	int	upper;		/* URL-escape the result */
	int	digits;		/* 0: all parts */
	int	reverse;
	char	delims[8];
};

static int
spf_macro_next(const char *in, size_t inlen, size_t *i, int flags,
    struct spf_macro *m)
{
	size_t	j = *i + 1, nd = 0;
	int	c;

	memset(m, 0, sizeof(*m));
	if (j >= inlen)
		return -1;
	if (in[j] == '%' || in[j] == '_' || in[j] == '-') {
		m->letter = in[j];
		*i = j + 1;
		return 0;
	}
	if (in[j] != '{' || ++j >= inlen)
		return -1;
	c = spf_lower((unsigned char)in[j]);
	if (strchr("slodiphcrtv", c) == NULL || c == '\0')
		return -1;
	if ((c == 'c' || c == 'r' || c == 't') && !(flags & SPF_MACRO_EXP))
		return -1;
	m->letter = c;
	m->upper = in[j] >= 'A' && in[j] <= 'Z';
	j++;
	for (; j < inlen && spf_isdigit((unsigned char)in[j]); j++) {
		if (m->digits < 1000)
			m->digits = m->digits * 10 + (in[j] - '0');
		nd++;
	}
	/* 7.3: a DIGIT transformer must be nonzero */
	if (nd > 0 && m->digits == 0)
		return -1;
	if (j < inlen && (in[j] == 'r' || in[j] == 'R')) {
		m->reverse = 1;
		j++;
	}
	for (; j < inlen && in[j] != '}'; j++) {
		if (in[j] == '\0' || strchr(SPF_DELIMS, in[j]) == NULL)
			return -1;
		if (strchr(m->delims, in[j]) == NULL &&
		    strlen(m->delims) < sizeof(m->delims) - 1)
			m->delims[strlen(m->delims)] = in[j];
	}
	if (j >= inlen)
		return -1;
	*i = j + 1;
	return 0;
}

/* a literal byte: macro-literal (%x21-24 / %x26-7E), space in exp */
static int
spf_macro_literal(int c, int flags)
{
	if (c == ' ')
		return (flags & SPF_MACRO_EXP) != 0;
	return c >= 0x21 && c <= 0x7e && c != '%';
}

int
spf_macro_check(const char *in, size_t inlen, int flags)
{
	struct spf_macro	m;
	size_t			i = 0;

	while (i < inlen) {
		if (in[i] == '%') {
			if (spf_macro_next(in, inlen, &i, flags, &m) == -1)
				return -1;
			continue;
		}
		if (!spf_macro_literal((unsigned char)in[i], flags))
			return -1;
		i++;
	}
	return 0;
}

int
spf_macro_uses(const char *in, size_t inlen, int letter)
{
	struct spf_macro	m;
	size_t			i = 0;

	while (i < inlen) {
		if (in[i] != '%') {
			i++;
			continue;
		}
		if (spf_macro_next(in, inlen, &i, SPF_MACRO_EXP, &m) == -1)
			return 0;
		if (m.letter == letter)
			return 1;
	}
	return 0;
}

struct spf_buf {
	char	*p;
	size_t	 len, size;
	int	 over;
};

static void
spf_put(struct spf_buf *b, const char *s, size_t n)
{
	if (b->over || n >= b->size - b->len) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* RFC 3986 unreserved characters stay, the rest become %XX (7.3) */
static void
spf_put_escaped(struct spf_buf *b, const char *s, size_t n)
{
	char	hex[4];
	size_t	i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (spf_isalnum(c) || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			spf_put(b, s + i, 1);
			continue;
		}
		snprintf(hex, sizeof(hex), "%%%02X", c);
		spf_put(b, hex, 3);
	}
}

/*
 * One macro's value through its transformers (7.3): split on the
 * delimiters, reverse if asked, keep the right-most `digits' parts, join
 * with dots.
 */
static void
spf_macro_transform(struct spf_buf *b, const struct spf_macro *m,
    const char *val)
{
	const char	*delims = m->delims[0] ? m->delims : ".";
	const char	*start[SPF_SENDER_MAX];
	size_t		 len[SPF_SENDER_MAX];
	char		 tmp[SPF_SENDER_MAX * 2];
	struct spf_buf	 t = { tmp, 0, sizeof(tmp), 0 };
	size_t		 n = 0, i, first;
	const char	*p = val, *q;

	tmp[0] = '\0';
	for (;;) {
		q = p + strcspn(p, delims);
		if (n == SPF_SENDER_MAX) {
			b->over = 1;
			return;
		}
		start[n] = p;
		len[n++] = (size_t)(q - p);
		if (*q == '\0')
			break;
		p = q + 1;
	}
	if (m->reverse) {
		for (i = 0; i < n / 2; i++) {
			const char	*s = start[i];
			size_t		 l = len[i];

			start[i] = start[n - 1 - i];
			len[i] = len[n - 1 - i];
			start[n - 1 - i] = s;
			len[n - 1 - i] = l;
		}
	}
	first = m->digits > 0 && (size_t)m->digits < n ?
	    n - (size_t)m->digits : 0;
	for (i = first; i < n; i++) {
		if (i > first)
			spf_put(&t, ".", 1);
		spf_put(&t, start[i], len[i]);
	}
	if (t.over) {
		b->over = 1;
		return;
	}
	if (m->upper)
		spf_put_escaped(b, tmp, t.len);
	else
		spf_put(b, tmp, t.len);
}

static const char *
spf_macro_value(const struct spf_macro_ctx *ctx, int letter, char *tbuf,
    size_t tlen)
{
	const char	*v = NULL;

	switch (letter) {
	case 's': v = ctx->sender; break;
	case 'l': v = ctx->local; break;
	case 'o': v = ctx->sender_domain; break;
	case 'd': v = ctx->domain; break;
	case 'i': v = ctx->ip; break;
	case 'c': v = ctx->client; break;
	case 'p': v = ctx->ptr; break;
	case 'v': v = ctx->ipver; break;
	case 'h': v = ctx->helo; break;
	case 'r': v = ctx->receiver; break;
	case 't':
		snprintf(tbuf, tlen, "%lld", (long long)ctx->now);
		return tbuf;
	}
	if (v == NULL)
		v = letter == 'p' || letter == 'r' ? "unknown" : "";
	return v;
}

int
spf_macro_expand(const struct spf_macro_ctx *ctx, const char *in,
    size_t inlen, int flags, char *out, size_t outlen)
{
	struct spf_macro	 m;
	struct spf_buf		 b = { out, 0, outlen, 0 };
	char			 tbuf[32];
	const char		*dot;
	size_t			 i = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	while (i < inlen) {
		if (in[i] != '%') {
			if (!spf_macro_literal((unsigned char)in[i], flags))
				return -1;
			spf_put(&b, in + i, 1);
			i++;
			continue;
		}
		if (spf_macro_next(in, inlen, &i, flags, &m) == -1)
			return -1;
		switch (m.letter) {
		case '%': spf_put(&b, "%", 1); break;
		case '_': spf_put(&b, " ", 1); break;
		case '-': spf_put(&b, "%20", 3); break;
		default:
			spf_macro_transform(&b, &m, spf_macro_value(ctx,
			    m.letter, tbuf, sizeof(tbuf)));
		}
	}
	if (b.over)
		return -1;
	if (!(flags & SPF_MACRO_DOMAIN))
		return 0;
	/* 7.3: longer than 253 characters: drop labels from the left */
	while (b.len > 253 && (dot = strchr(out, '.')) != NULL) {
		b.len -= (size_t)(dot + 1 - out);
		memmove(out, dot + 1, b.len + 1);
	}
	return b.len > 253 ? -1 : 0;
}

/*
 * domain-spec = macro-string domain-end; domain-end = ( "." toplabel
 * ["."] ) / macro-expand (4.6.1, 7.1).  toplabel: alphanumeric with a
 * letter, or with inner hyphens.
 */
static int
spf_domain_spec_ok(const char *s, size_t len)
{
	size_t	end, start, i;
	int	alpha = 0;

	if (len == 0 || spf_macro_check(s, len, 0) == -1)
		return 0;
	if (s[len - 1] == '}')
		return 1;	/* ends in a macro-expand (checked above) */
	end = len;
	if (s[end - 1] == '.')
		end--;
	start = end;
	while (start > 0 && s[start - 1] != '.')
		start--;
	if (start == 0 || start == end)
		return 0;	/* no "." before the top label, or empty */
	if (s[start] == '-' || s[end - 1] == '-')
		return 0;
	for (i = start; i < end; i++) {
		if (spf_isalpha((unsigned char)s[i]))
			alpha = 1;
		else if (s[i] != '-' && !spf_isdigit((unsigned char)s[i]))
			return 0;
	}
	if (!alpha) {
		/* all digits (and hyphens): needs an inner hyphen */
		for (i = start; i < end && s[i] != '-'; i++)
			;
		return i < end;
	}
	return 1;
}

/* a CIDR length: "0" or no leading zero, at most max; -1 if bad */
static int
spf_cidr_len(const char *s, size_t len, int max)
{
	int	v = 0;
	size_t	i;

	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (!spf_isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v > max ? -1 : v;
}

/* trailing digits of s[0..len): their start, or len if none */
static size_t
spf_trailing_digits(const char *s, size_t len)
{
	while (len > 0 && spf_isdigit((unsigned char)s[len - 1]))
		len--;
	return len;
}

/*
 * dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ], at the
 * end of arg; *arglen is cut to what precedes it.
 */
static int
spf_dual_cidr(const char *arg, size_t *arglen, struct spf_term *t)
{
	size_t	len = *arglen, d;

	d = spf_trailing_digits(arg, len);
	if (d < len && d >= 2 && arg[d - 1] == '/' && arg[d - 2] == '/') {
		if ((t->cidr6 = spf_cidr_len(arg + d, len - d, 128)) == -1)
			return -1;
		len = d - 2;
		d = spf_trailing_digits(arg, len);
	}
	if (d < len && d >= 1 && arg[d - 1] == '/') {
		if ((t->cidr4 = spf_cidr_len(arg + d, len - d, 32)) == -1)
			return -1;
		len = d - 1;
	}
	*arglen = len;
	return 0;
}

/* ip4-network: four decimal octets without leading zeros */
static int
spf_parse_ip4(const char *s, size_t len, unsigned char *ip)
{
	size_t	i = 0;
	int	part, v, nd;

	for (part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return -1;
			i++;
		}
		v = 0;
		nd = 0;
		while (i < len && spf_isdigit((unsigned char)s[i])) {
			if (nd == 1 && v == 0)
				return -1;
			v = v * 10 + (s[i++] - '0');
			if (++nd > 3 || v > 255)
				return -1;
		}
		if (nd == 0)
			return -1;
		ip[part] = (unsigned char)v;
	}
	return i == len ? 0 : -1;
}

static int
spf_parse_ip6(const char *s, size_t len, unsigned char *ip)
{
	char	buf[INET6_ADDRSTRLEN + 1];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, ip) == 1 ? 0 : -1;
}

static const struct {
	const char	*name;
	int		 type;
} spf_mechs[] = {
	{ "all", SPF_T_ALL }, { "include", SPF_T_INCLUDE }, { "a", SPF_T_A },
	{ "mx", SPF_T_MX }, { "ptr", SPF_T_PTR }, { "ip4", SPF_T_IP4 },
	{ "ip6", SPF_T_IP6 }, { "exists", SPF_T_EXISTS }, { NULL, 0 }
};

/* one term: s[0..len), no spaces in it */
static int
spf_parse_term(const char *s, size_t len, struct spf_term *t, char *err,
    size_t errlen)
{
	size_t		 n = 0, q = 0, arglen;
	const char	*arg;
	int		 i;

	memset(t, 0, sizeof(*t));
	t->text = s;
	t->textlen = len;
	t->result = SPF_PASS;
	t->cidr4 = 32;
	t->cidr6 = 128;
	switch (s[0]) {
	case '+': t->result = SPF_PASS; q = 1; break;
	case '-': t->result = SPF_FAIL; q = 1; break;
	case '~': t->result = SPF_SOFTFAIL; q = 1; break;
	case '?': t->result = SPF_NEUTRAL; q = 1; break;
	}
	/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
	if (q >= len || !spf_isalpha((unsigned char)s[q]))
		goto bad;
	for (n = q; n < len && (spf_isalnum((unsigned char)s[n]) ||
	    s[n] == '-' || s[n] == '_' || s[n] == '.'); n++)
		;
	if (n < len && s[n] == '=') {
		if (q != 0)
			goto bad;	/* a qualifier on a modifier */
		t->spec = s + n + 1;
		t->speclen = len - n - 1;
		if (n == 8 && strncasecmp(s, "redirect", 8) == 0)
			t->type = SPF_T_REDIRECT;
		else if (n == 3 && strncasecmp(s, "exp", 3) == 0)
			t->type = SPF_T_EXP;
		else {
			t->type = SPF_T_UNKNOWN;
			if (spf_macro_check(t->spec, t->speclen,
			    SPF_MACRO_EXP) == -1)
				goto bad;
			return 0;
		}
		if (!spf_domain_spec_ok(t->spec, t->speclen))
			goto bad;
		return 0;
	}
	for (i = 0; spf_mechs[i].name != NULL; i++)
		if (strlen(spf_mechs[i].name) == n - q &&
		    strncasecmp(s + q, spf_mechs[i].name, n - q) == 0)
			break;
	if (spf_mechs[i].name == NULL)
		goto bad;
	t->type = spf_mechs[i].type;
	arg = s + n;
	arglen = len - n;
	switch (t->type) {
	case SPF_T_ALL:
		if (arglen != 0)
			goto bad;
		return 0;
	case SPF_T_INCLUDE:
	case SPF_T_EXISTS:
		if (arglen < 2 || arg[0] != ':')
			goto bad;
		t->spec = arg + 1;
		t->speclen = arglen - 1;
		break;
	case SPF_T_A:
	case SPF_T_MX:
		if (spf_dual_cidr(arg, &arglen, t) == -1)
			goto bad;
		/* FALLTHROUGH */
	case SPF_T_PTR:
		if (arglen == 0)
			return 0;
		if (arg[0] != ':' || arglen < 2)
			goto bad;
		t->spec = arg + 1;
		t->speclen = arglen - 1;
		break;
	case SPF_T_IP4:
		if (arglen < 2 || arg[0] != ':')
			goto bad;
		arg++;
		arglen--;
		n = spf_trailing_digits(arg, arglen);
		if (n < arglen && n > 0 && arg[n - 1] == '/') {
			if ((t->cidr4 = spf_cidr_len(arg + n, arglen - n,
			    32)) == -1)
				goto bad;
			arglen = n - 1;
		}
		if (spf_parse_ip4(arg, arglen, t->ip) == -1)
			goto bad;
		return 0;
	case SPF_T_IP6:
		if (arglen < 2 || arg[0] != ':')
			goto bad;
		arg++;
		arglen--;
		n = spf_trailing_digits(arg, arglen);
		if (n < arglen && n > 0 && arg[n - 1] == '/') {
			if ((t->cidr6 = spf_cidr_len(arg + n, arglen - n,
			    128)) == -1)
				goto bad;
			arglen = n - 1;
		}
		if (spf_parse_ip6(arg, arglen, t->ip) == -1)
			goto bad;
		return 0;
	}
	if (!spf_domain_spec_ok(t->spec, t->speclen))
		goto bad;
	return 0;
 bad:
	snprintf(err, errlen, "syntax error in \"%.*s\"",
	    len > 64 ? 64 : (int)len, s);
	/* the report is printable ASCII: the term may not be */
	for (; *err; err++)
		if (*err < 0x20 || *err > 0x7e)
			*err = '?';
	return -1;
}

int
spf_record_parse(const char *rec, size_t len, struct spf_term **terms,
    char *err, size_t errlen)
{
	struct spf_term	*t;
	size_t		 i, j, n = 0;
	int		 nterms = 0, redirect = 0, exp = 0;

	*terms = NULL;
	if (!spf_record_is_spf1(rec, len)) {
		snprintf(err, errlen, "not an SPF version 1 record");
		return -1;
	}
	for (i = 6; i < len; i++) {
		if (rec[i] != ' ' && (i == 0 || rec[i - 1] == ' '))
			n++;
	}
	if ((t = calloc(n + 1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 6; i < len; i = j) {
		while (i < len && rec[i] == ' ')
			i++;
		if (i == len)
			break;
		for (j = i; j < len && rec[j] != ' '; j++)
			;
		if (spf_parse_term(rec + i, j - i, &t[nterms], err,
		    errlen) == -1)
			goto fail;
		if (t[nterms].type == SPF_T_REDIRECT && redirect++) {
			snprintf(err, errlen, "more than one redirect=");
			goto fail;
		}
		if (t[nterms].type == SPF_T_EXP && exp++) {
			snprintf(err, errlen, "more than one exp=");
			goto fail;
		}
		nterms++;
	}
	*terms = t;
	return nterms;
 fail:
	free(t);
	return -1;
}
