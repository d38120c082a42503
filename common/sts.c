/*
 * sts.c -- the MTA-STS (RFC 8461) record, policy and cache file
 * parsers, and the MX pattern match (sts.h says what each accepts).
 *
 * Strict where the RFC's grammar is, since a sender that reads more
 * into a policy than was published could refuse mail on its account:
 * a policy or record that breaks the grammar is no policy at all (RFC
 * 8461 3.1, 3.2), and the domain is treated as publishing none.
 * Nothing here allocates; every read is bounded by the length given.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sts.h"

static int
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* sts-ext-name / sts-policy-ext-name: (ALPHA / DIGIT) *31(... "_" "-" ".") */
static int
ext_name_ok(const char *s, size_t n)
{
	size_t	i;

	if (n == 0 || n > 32 || !is_alnum((unsigned char)s[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-' && s[i] != '.')
			return 0;
	return 1;
}

int
sts_txt_is_sts(const char *txt, size_t len)
{
	size_t	i;

	if (len < 7 || memcmp(txt, "v=STSv1", 7) != 0)
		return 0;
	for (i = 7; i < len && is_wsp((unsigned char)txt[i]); i++)
		;
	return i < len && txt[i] == ';';
}

/*
 * RFC 8461 3.1:
 *   sts-text-record = sts-version 1*(*WSP field-delim *WSP sts-field)
 *                     [field-delim]
 *   sts-id = %s"id=" 1*32(ALPHA / DIGIT)
 *   sts-extension = sts-ext-name "=" sts-ext-value
 *   sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
 */
int
sts_txt_parse(const char *txt, size_t len, char *id)
{
	size_t	i, start, nfields = 0, eq;
	int	have_id = 0;

	if (!sts_txt_is_sts(txt, len))
		return -1;
	i = 7;
	for (;;) {
		while (i < len && is_wsp((unsigned char)txt[i]))
			i++;
		if (i == len)
			break;
		if (txt[i] != ';')
			return -1;
		i++;
		while (i < len && is_wsp((unsigned char)txt[i]))
			i++;
		if (i == len)
			break;		/* the optional final ";" (and WSP) */
		start = i;
		while (i < len && txt[i] != ';' && !is_wsp((unsigned char)
		    txt[i]))
			i++;
		/* one field: start .. i */
		for (eq = start; eq < i && txt[eq] != '='; eq++)
			;
		if (eq == i || eq + 1 == i)
			return -1;
		if (!ext_name_ok(txt + start, eq - start))
			return -1;
		if (eq - start == 2 && memcmp(txt + start, "id", 2) == 0) {
			size_t k, n = i - eq - 1;

			if (have_id || n > STS_ID_MAX - 1)
				return -1;
			for (k = eq + 1; k < i; k++)
				if (!is_alnum((unsigned char)txt[k]))
					return -1;
			memcpy(id, txt + eq + 1, n);
			id[n] = '\0';
			have_id = 1;
		} else {
			size_t k;

			for (k = eq + 1; k < i; k++) {
				unsigned char c = (unsigned char)txt[k];

				if (c < 0x21 || c > 0x7e || c == '=')
					return -1;
			}
		}
		nfields++;
	}
	return nfields > 0 && have_id ? 0 : -1;
}

const char *
sts_mode_name(int mode)
{
	switch (mode) {
	case STS_MODE_NONE:
		return "none";
	case STS_MODE_TESTING:
		return "testing";
	case STS_MODE_ENFORCE:
		return "enforce";
	}
	return "?";
}

int
sts_domain_valid(char *name)
{
	size_t	i, label = 0, n = strlen(name);

	if (n == 0 || n > 253)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			/* no empty label; none ends with a hyphen */
			if (label == 0 || name[i - 1] == '-')
				return -1;
			label = 0;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			name[i] = (char)(c - 'A' + 'a');
		else if (!is_alnum(c) && c != '-')
			return -1;
		if (label == 0 && c == '-')
			return -1;
		if (++label > 63)
			return -1;
	}
	return label == 0 || name[n - 1] == '-' ? -1 : 0;
}

/* sts-policy-mx-value = ["*."] Domain; stored lower case */
static int
mx_pattern_ok(const char *v, size_t n, char *out)
{
	size_t	off = 0;

	if (n >= STS_NAME_MAX)
		return 0;
	memcpy(out, v, n);
	out[n] = '\0';
	if (n > 2 && out[0] == '*' && out[1] == '.')
		off = 2;
	return sts_domain_valid(out + off) == 0;
}

/* sts-policy-ext-value: vchar [*(%x20 / vchar) vchar], UTF-8 allowed */
static int
ext_value_ok(const char *v, size_t n)
{
	size_t	i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

#define F_VERSION	0x1
#define F_MODE		0x2
#define F_MAX_AGE	0x4

/*
 * One "key: value" line (without its terminator, trailing WSP already
 * off).  RFC 8461 3.2: field-delim = ":" *WSP; names are case
 * sensitive.
 */
static int
policy_field(const char *line, size_t n, struct sts_policy *p, int *seen,
    const char **why)
{
	const char	*colon, *v;
	size_t		 klen, vlen, i;
	unsigned long	 age;

	if ((colon = memchr(line, ':', n)) == NULL) {
		*why = "a line without \":\"";
		return -1;
	}
	klen = (size_t)(colon - line);
	v = colon + 1;
	vlen = n - klen - 1;
	while (vlen > 0 && is_wsp((unsigned char)*v)) {
		v++;
		vlen--;
	}
	if (!ext_name_ok(line, klen)) {
		*why = "a field name that is not valid";
		return -1;
	}
	if (klen == 7 && memcmp(line, "version", 7) == 0) {
		if (*seen & F_VERSION) {
			*why = "version given twice";
			return -1;
		}
		*seen |= F_VERSION;
		if (vlen != 5 || memcmp(v, "STSv1", 5) != 0) {
			*why = "version is not STSv1";
			return -1;
		}
	} else if (klen == 4 && memcmp(line, "mode", 4) == 0) {
		if (*seen & F_MODE) {
			*why = "mode given twice";
			return -1;
		}
		*seen |= F_MODE;
		if (vlen == 7 && memcmp(v, "enforce", 7) == 0)
			p->mode = STS_MODE_ENFORCE;
		else if (vlen == 7 && memcmp(v, "testing", 7) == 0)
			p->mode = STS_MODE_TESTING;
		else if (vlen == 4 && memcmp(v, "none", 4) == 0)
			p->mode = STS_MODE_NONE;
		else {
			*why = "an unknown mode";
			return -1;
		}
	} else if (klen == 7 && memcmp(line, "max_age", 7) == 0) {
		if (*seen & F_MAX_AGE) {
			*why = "max_age given twice";
			return -1;
		}
		*seen |= F_MAX_AGE;
		/* 1*10(DIGIT) */
		if (vlen == 0 || vlen > 10) {
			*why = "max_age is not 1 to 10 digits";
			return -1;
		}
		age = 0;
		for (i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9') {
				*why = "max_age is not a number";
				return -1;
			}
			age = age * 10 + (unsigned long)(v[i] - '0');
		}
		p->max_age = age > STS_MAX_AGE_MAX ? STS_MAX_AGE_MAX :
		    (uint32_t)age;
	} else if (klen == 2 && memcmp(line, "mx", 2) == 0) {
		if (p->nmx == STS_MX_MAX) {
			*why = "too many mx patterns";
			return -1;
		}
		if (!mx_pattern_ok(v, vlen, p->mx[p->nmx])) {
			*why = "an mx pattern that is not a host name";
			return -1;
		}
		p->nmx++;
	} else if (!ext_value_ok(v, vlen)) {
		*why = "an extension field's value is not valid";
		return -1;
	}
	return 0;
}

int
sts_policy_parse(const char *buf, size_t len, struct sts_policy *p,
    const char **why)
{
	const char	*line, *nl, *end = buf + len;
	size_t		 n;
	int		 seen = 0;

	memset(p, 0, sizeof(*p));
	*why = NULL;
	if (len > STS_POLICY_MAX) {
		*why = "larger than 64 KB";
		return -1;
	}
	if (memchr(buf, '\0', len) != NULL) {
		*why = "a NUL byte";
		return -1;
	}
	for (line = buf; line < end; line = nl + 1) {
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;	/* the last line needs no terminator */
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (memchr(line, '\r', n) != NULL) {
			*why = "a CR not followed by LF";
			return -1;
		}
		if (n == 0) {
			/*
			 * The grammar has no empty line; servers commonly end
			 * the file with one more newline, which is harmless
			 * there and only there.
			 */
			const char *q;

			for (q = nl; q < end; q++)
				if (*q != '\r' && *q != '\n')
					break;
			if (q == end)
				break;
			*why = "an empty line";
			return -1;
		}
		/* sts-policy-field *WSP: trailing WSP is allowed */
		while (n > 0 && is_wsp((unsigned char)line[n - 1]))
			n--;
		if (n == 0 || is_wsp((unsigned char)line[0])) {
			*why = "a line that starts with white space";
			return -1;
		}
		if (policy_field(line, n, p, &seen, why) == -1)
			return -1;
		if (nl == end)
			break;
	}
	if ((seen & (F_VERSION | F_MODE | F_MAX_AGE)) !=
	    (F_VERSION | F_MODE | F_MAX_AGE)) {
		*why = !(seen & F_VERSION) ? "no version" :
		    !(seen & F_MODE) ? "no mode" : "no max_age";
		return -1;
	}
	if (p->mode != STS_MODE_NONE && p->nmx == 0) {
		*why = "no mx pattern";
		return -1;
	}
	return 0;
}

int
sts_mx_match(const char *pattern, const char *host)
{
	size_t	hl = strlen(host), pl = strlen(pattern);
	const char *dot;

	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (hl == 0 || pl == 0)
		return 0;
	if (pl > 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* the host's first label, then exactly the rest */
		if ((dot = memchr(host, '.', hl)) == NULL || dot == host)
			return 0;
		return hl - (size_t)(dot - host) == pl - 1 &&
		    strncasecmp(dot, pattern + 1, pl - 1) == 0;
	}
	return hl == pl && strncasecmp(host, pattern, hl) == 0;
}

int
sts_policy_mx_match(const struct sts_policy *p, const char *host)
{
	size_t	i;

	for (i = 0; i < p->nmx; i++)
		if (sts_mx_match(p->mx[i], host))
			return 1;
	return 0;
}

long
sts_cache_encode(char *buf, size_t size, const char *id, time_t fetched,
    const char *policy, size_t policylen)
{
	int	n;

	n = snprintf(buf, size, "posthaste-sts-cache 1\nid %s\nfetched %lld\n"
	    "length %zu\n", id, (long long)fetched, policylen);
	if (n < 0 || (size_t)n + policylen + 4 > size)
		return -1;
	memcpy(buf + n, policy, policylen);
	memcpy(buf + n + policylen, "end\n", 4);
	return (long)((size_t)n + policylen + 4);
}

/* "key value\n" at *pos: the value's start and length; -1 if not there */
static int
cache_line(const char *buf, size_t len, size_t *pos, const char *key,
    const char **val, size_t *vlen)
{
	size_t		 kl = strlen(key);
	const char	*nl;

	if (len - *pos < kl + 2 || memcmp(buf + *pos, key, kl) != 0 ||
	    buf[*pos + kl] != ' ')
		return -1;
	*val = buf + *pos + kl + 1;
	if ((nl = memchr(*val, '\n', len - *pos - kl - 1)) == NULL)
		return -1;
	*vlen = (size_t)(nl - *val);
	*pos = (size_t)(nl - buf) + 1;
	return 0;
}

static int
cache_number(const char *v, size_t n, unsigned long long max,
    unsigned long long *out)
{
	size_t	i;

	*out = 0;
	if (n == 0 || n > 19)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		*out = *out * 10 + (unsigned long long)(v[i] - '0');
	}
	return *out <= max ? 0 : -1;
}

int
sts_cache_decode(const char *buf, size_t len, struct sts_cache *c)
{
	static const char	 magic[] = "posthaste-sts-cache 1\n";
	const char		*v, *why;
	size_t			 pos = sizeof(magic) - 1, vl, k;
	unsigned long long	 num, plen;

	memset(c, 0, sizeof(*c));
	if (len < pos || memcmp(buf, magic, pos) != 0)
		return -1;
	if (cache_line(buf, len, &pos, "id", &v, &vl) == -1 || vl == 0 ||
	    vl >= STS_ID_MAX)
		return -1;
	for (k = 0; k < vl; k++)
		if (!is_alnum((unsigned char)v[k]))
			return -1;
	memcpy(c->id, v, vl);
	if (cache_line(buf, len, &pos, "fetched", &v, &vl) == -1 ||
	    cache_number(v, vl, (unsigned long long)INT32_MAX * 4, &num) == -1)
		return -1;
	c->fetched = (time_t)num;
	if (cache_line(buf, len, &pos, "length", &v, &vl) == -1 ||
	    cache_number(v, vl, STS_POLICY_MAX, &plen) == -1)
		return -1;
	if (len - pos != plen + 4 || memcmp(buf + pos + plen, "end\n", 4) != 0)
		return -1;
	if (sts_policy_parse(buf + pos, (size_t)plen, &c->policy, &why) == -1)
		return -1;
	return 0;
}
