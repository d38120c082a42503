/*
 * authres.c -- Authentication-Results (RFC 8601): the header we write,
 * and the authserv-id of the ones we receive.
 *
 * Why it looks the way it does:
 *  - What we write goes into every delivered message and is read by
 *    filters and mail clients that trust our authserv-id: every value
 *    is either a bare token/domain/address or a quoted-string with '"'
 *    and '\' escaped, control characters never pass (a CR or LF in a
 *    HELO name must not start a header of its own), comments have their
 *    parentheses escaped.
 *  - Folding happens only between words, "\n\t" (the spool stores LF),
 *    counting a tab as 8 columns, so that no line passes 78 columns
 *    unless one word alone is longer.
 *  - The parser only needs the authserv-id, but must find it exactly as
 *    a downstream reader would (RFC 8601 2.2: CFWS before it, nested
 *    comments, quoted-string ids): otherwise a forger could hide our id
 *    behind a comment and slip a header past the removal.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "authres.h"

#define TSPECIALS	"()<>@,;:\\\"/[]?="

static void
ar_append(struct authres *ar, const char *s, size_t n)
{
	if (ar->overflow || ar->len + n + 1 > sizeof(ar->buf)) {
		ar->overflow = 1;
		return;
	}
	memcpy(ar->buf + ar->len, s, n);
	ar->len += n;
	ar->buf[ar->len] = '\0';
	ar->col += n;
}

/*
 * One word, after a space or on a new line when it would pass the
 * limit (one column is kept for a ';' that may follow it) or when
 * newline says so (each method starts a line, for the reader's sake).
 * Never an empty continuation line: a word too long for any line goes
 * alone on its own.
 */
static void
ar_fold_word(struct authres *ar, const char *s, size_t n, int newline)
{
	if ((newline || ar->col + 1 + n + 1 > AUTHRES_COLS) &&
	    ar->col > 8) {
		ar_append(ar, "\n\t", 2);
		ar->col = 8;
	} else
		ar_append(ar, " ", 1);
	ar_append(ar, s, n);
}

static void
ar_word(struct authres *ar, const char *s, size_t n)
{
	ar_fold_word(ar, s, n, 0);
}

static int
is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++) {
		unsigned char	c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || strchr(TSPECIALS, c))
			return 0;
	}
	return 1;
}

static int
is_domain(const char *s, const char *e)
{
	size_t	label = 0;

	if (s == e)
		return 0;
	for (; s < e; s++) {
		unsigned char	c = (unsigned char)*s;

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_')
			label++;
		else
			return 0;
	}
	return label > 0;
}

static int
is_dot_atom(const char *s, const char *e)
{
	int	prev_dot = 1;

	for (; s < e; s++) {
		unsigned char	c = (unsigned char)*s;

		if (c == '.') {
			if (prev_dot)
				return 0;
			prev_dot = 1;
			continue;
		}
		if (!isalnum(c) && !strchr("!#$%&'*+-/=?^_`{|}~", c))
			return 0;
		prev_dot = 0;
	}
	return !prev_dot;
}

/* value as it may stand after '=' in the header (RFC 8601 2.2 pvalue) */
static void
format_value(const char *v, char *out, size_t outlen)
{
	const char	*at = strrchr(v, '@'), *end = v + strlen(v);
	size_t		 n = 0;

	if (is_token(v) || (at && (at == v || is_dot_atom(v, at)) &&
	    is_domain(at + 1, end))) {
		snprintf(out, outlen, "%s", v);
		return;
	}
	if (outlen < 3) {
		out[0] = '\0';
		return;
	}
	out[n++] = '"';
	for (; *v && n + 3 < outlen; v++) {
		unsigned char	c = (unsigned char)*v;

		if (c == '"' || c == '\\')
			out[n++] = '\\';
		out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[n++] = '"';
	out[n] = '\0';
}

void
authres_begin(struct authres *ar, const char *authserv_id)
{
	char	v[512];

	memset(ar, 0, sizeof(*ar));
	ar_append(ar, "Authentication-Results:", 23);
	format_value(authserv_id, v, sizeof(v));
	ar_word(ar, v, strlen(v));
}

void
authres_method(struct authres *ar, const char *method, const char *result,
    const char *reason)
{
	char	w[128];
	int	n;

	ar_append(ar, ";", 1);
	ar->nmethods++;
	n = snprintf(w, sizeof(w), "%s=%s", is_token(method) ? method :
	    "x-invalid", is_token(result) ? result : "permerror");
	if (n < 0 || (size_t)n >= sizeof(w)) {
		ar->overflow = 1;
		return;
	}
	ar_fold_word(ar, w, (size_t)n, 1);
	if (reason)
		authres_prop(ar, "reason", reason);
}

void
authres_prop(struct authres *ar, const char *name, const char *value)
{
	char	v[1024], w[1200];
	int	n;

	format_value(value, v, sizeof(v));
	n = snprintf(w, sizeof(w), "%s=%s", name, v);
	if (n < 0 || (size_t)n >= sizeof(w)) {
		ar->overflow = 1;
		return;
	}
	ar_word(ar, w, (size_t)n);
}

void
authres_comment(struct authres *ar, const char *text)
{
	char	w[1024];
	size_t	n = 0;

	w[n++] = '(';
	for (; *text && n + 4 < sizeof(w); text++) {
		unsigned char	c = (unsigned char)*text;

		if (c == '(' || c == ')' || c == '\\')
			w[n++] = '\\';
		w[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	w[n++] = ')';
	ar_word(ar, w, n);
}

const char *
authres_end(struct authres *ar, size_t *len)
{
	if (ar->nmethods == 0) {
		ar_append(ar, ";", 1);
		ar_word(ar, "none", 4);
	}
	ar_append(ar, "\n", 1);
	if (ar->overflow)
		return NULL;
	if (len)
		*len = ar->len;
	return ar->buf;
}

static int
given(const char *s)
{
	return s != NULL && *s != '\0';
}

void
authres_spf(struct authres *ar, const char *result, const char *mailfrom,
    const char *helo)
{
	authres_method(ar, "spf", result, NULL);
	if (given(mailfrom))
		authres_prop(ar, "smtp.mailfrom", mailfrom);
	if (given(helo))
		authres_prop(ar, "smtp.helo", helo);
}

void
authres_dkim(struct authres *ar, const char *result, const char *d,
    const char *s, const char *b)
{
	char	b8[9];

	authres_method(ar, "dkim", result, NULL);
	if (given(d))
		authres_prop(ar, "header.d", d);
	if (given(s))
		authres_prop(ar, "header.s", s);
	if (given(b)) {
		/* RFC 6008: enough of b= to tell signatures apart */
		snprintf(b8, sizeof(b8), "%s", b);
		authres_prop(ar, "header.b", b8);
	}
}

void
authres_dmarc(struct authres *ar, const char *result, const char *policy,
    const char *disposition, const char *from_domain)
{
	char	c[128];

	authres_method(ar, "dmarc", result, NULL);
	if (given(policy) && given(disposition)) {
		snprintf(c, sizeof(c), "p=%s dis=%s", policy, disposition);
		authres_comment(ar, c);
	}
	if (given(from_domain))
		authres_prop(ar, "header.from", from_domain);
}

void
authres_iprev(struct authres *ar, const char *result, const char *ip,
    const char *name)
{
	authres_method(ar, "iprev", result, NULL);
	if (given(ip))
		authres_prop(ar, "policy.iprev", ip);
	if (given(name))
		authres_comment(ar, name);
}

void
authres_dnsbl(struct authres *ar, const char *result, const char *zones,
    const char *ip)
{
	authres_method(ar, "dnsbl", result, NULL);
	if (given(zones))
		authres_comment(ar, zones);
	if (given(ip))
		authres_prop(ar, "policy.ip", ip);
}

/* ---- the parser ---- */

/* white space, folds and (nested) comments; -1 on an unclosed comment */
static int
skip_cfws(const char **pp, const char *end)
{
	const char	*p = *pp;

	while (p < end) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			p++;
			continue;
		}
		if (*p != '(')
			break;
		{
			int	depth = 0;

			for (; p < end; p++) {
				if (*p == '\\') {
					if (++p == end)
						return -1;
				} else if (*p == '(')
					depth++;
				else if (*p == ')' && --depth == 0)
					break;
			}
			if (p == end)
				return -1;
			p++;
		}
	}
	*pp = p;
	return 0;
}

int
authres_parse_id(const char *hdr, size_t len, char *id, size_t idlen)
{
	const char	*p = hdr, *end = hdr + len;
	static const char name[] = "Authentication-Results";
	size_t		 n = 0;

	if (idlen == 0 || memchr(hdr, '\0', len) != NULL)
		return -1;
	/*
	 * The field name, when given, is the name and a colon; a body
	 * whose id only begins with the same letters
	 * ("authentication-results.example") is read as a body.
	 */
	if (len >= sizeof(name) - 1 &&
	    strncasecmp(hdr, name, sizeof(name) - 1) == 0) {
		p += sizeof(name) - 1;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p == ':')
			p++;
		else
			p = hdr;
	}
	if (skip_cfws(&p, end) == -1 || p == end)
		return -1;
	if (*p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && ++p == end)
				return -1;
			if (*p == '\r' || *p == '\n')
				continue;	/* a fold inside */
			if (n + 1 >= idlen)
				return -1;
			id[n++] = *p;
		}
		if (p == end)
			return -1;
		p++;
	} else {
		for (; p < end; p++) {
			unsigned char	c = (unsigned char)*p;

			if (c <= 0x20 || c == 0x7f || strchr(TSPECIALS, c))
				break;
			if (n + 1 >= idlen)
				return -1;
			id[n++] = (char)c;
		}
	}
	id[n] = '\0';
	if (n == 0)
		return -1;
	/* then CFWS, and a version, a ';' or the end */
	if (skip_cfws(&p, end) == -1)
		return -1;
	if (p < end && *p != ';' && !isdigit((unsigned char)*p))
		return -1;
	return 0;
}

int
authres_is_ours(const char *hdr, size_t len, const char *ours)
{
	char	id[512];

	if (authres_parse_id(hdr, len, id, sizeof(id)) == -1)
		return -1;
	return strcasecmp(id, ours) == 0;
}
