/*
 * addr.c -- parse and validate mail addresses, ESMTP parameters and xtext.
 *
 * Everything here sees bytes straight from the network, so each parser
 * walks its input one byte at a time, stops at the first byte it does not
 * expect and never looks further ahead than the byte it has just checked:
 * the terminating NUL is never a valid continuation, so no function can
 * read past the end of its input.  Output is written into fixed buffers
 * with every store bounded; nothing is allocated.
 *
 * The grammar is RFC 5321 4.1.2 (with the RFC 6531 additions when
 * ADDR_ALLOW_UTF8 is given), the limits RFC 5321 4.5.3.1, and xtext
 * RFC 3461 4.
 */

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

/* Longest address literal we can be shown: "[IPv6:" + 45 + "]". */
#define LITERAL_MAX	64

/* RFC 3461 4.2: "The entire ORCPT parameter MAY be up to 500 characters" */
#define ORCPT_MAX	500

#define DNS_LABEL_MAX	63	/* RFC 1035 2.3.4 */

_Static_assert(LITERAL_MAX + 2 <= ADDR_DOMAIN_MAX, "literal buffer");

static int	is_alpha(unsigned char);
static int	is_digit(unsigned char);
static int	is_atext(unsigned char);
static int	hex_value(unsigned char);
static size_t	utf8_sequence(const unsigned char *, size_t);
static size_t	utf8_address_char(const unsigned char *);
static int	parse_local(const unsigned char **, char *, int);
static int	parse_labels(const unsigned char **, char *, int);
static int	parse_literal(const unsigned char **, char *);
static int	parse_domain(const unsigned char **, char *, int, int);
static int	parse_mailbox(const unsigned char **, struct mailaddr *, int,
		    int);
static void	mailaddr_clear(struct mailaddr *);

static int
is_alpha(unsigned char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

static int
is_digit(unsigned char c)
{
	return (c >= '0' && c <= '9');
}

/* RFC 5322 3.2.3 atext, the ASCII part. */
static int
is_atext(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return 1;
	return (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * RFC 3461 4: hexchar = "+" two *upper case* hex digits.  Lower case is
 * refused so that every xtext string has exactly one decoding and one
 * spelling, which matters when ORCPT values are compared or logged.
 */
static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Length of the well-formed UTF-8 sequence at p, or 0.  At most `avail'
 * bytes are examined, and each continuation byte is checked before the
 * next is read, so a NUL-terminated string may pass SIZE_MAX: the NUL
 * is not a continuation byte and stops the walk.  Overlong forms,
 * UTF-16 surrogates and code points above U+10FFFF are refused
 * (RFC 3629 3).
 */
static size_t
utf8_sequence(const unsigned char *p, size_t avail)
{
	uint32_t	cp;
	size_t		len, i;

	if (avail == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] < 0xc2)	/* stray continuation, or overlong C0/C1 */
		return 0;
	if (p[0] < 0xe0) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] < 0xf0) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] < 0xf5) {
		len = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (len > avail)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
		return 0;
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0;
	if (cp > 0x10ffff)
		return 0;
	return len;
}

/*
 * One non-ASCII character inside an address (RFC 6531 UTF8-non-ascii).
 * The C1 controls U+0080..U+009F are well-formed UTF-8 but still
 * control characters, and an address never needs them.
 */
static size_t
utf8_address_char(const unsigned char *p)
{
	size_t	len;

	len = utf8_sequence(p, SIZE_MAX);
	if (len < 2)
		return 0;
	if (p[0] == 0xc2 && p[1] < 0xa0)
		return 0;
	return len;
}

int
utf8_valid(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n;

	while (len > 0) {
		if ((n = utf8_sequence(p, len)) == 0)
			return 0;
		p += n;
		len -= n;
	}
	return 1;
}

/*
 * Local-part = Dot-string / Quoted-string, copied as written (quotes and
 * backslashes kept) into out, which holds ADDR_LOCAL_MAX octets plus NUL.
 * Case is preserved: RFC 5321 2.4 leaves its meaning to the destination.
 */
static int
parse_local(const unsigned char **pp, char *out, int flags)
{
	const unsigned char	*p = *pp;
	size_t			 n = 0, len, i;
	int			 quoted, closed = 0, last_dot = 1;

	quoted = (*p == '"');
	if (quoted)
		out[n++] = (char)*p++;
	for (;;) {
		if (*p >= 0x80) {
			if (!(flags & ADDR_ALLOW_UTF8))
				return ADDR_ERR_UTF8;
			if ((len = utf8_address_char(p)) == 0)
				return ADDR_ERR_SYNTAX;
			last_dot = 0;
		} else if (quoted) {
			/*
			 * RFC 5321 qtextSMTP is %d32-33 / %d35-91 / %d93-126
			 * and quoted-pairSMTP is "\" %d32-126: no controls,
			 * so no CR or LF, even escaped.
			 */
			if (*p == '"') {
				closed = 1;
				len = 1;
			} else if (*p == '\\') {
				if (p[1] < 32 || p[1] > 126)
					return ADDR_ERR_SYNTAX;
				len = 2;
			} else if (*p >= 32 && *p <= 126)
				len = 1;
			else
				return ADDR_ERR_SYNTAX;
		} else {
			if (*p == '.') {
				if (last_dot)	/* leading or ".." */
					return ADDR_ERR_SYNTAX;
				last_dot = 1;
			} else if (is_atext(*p))
				last_dot = 0;
			else
				break;
			len = 1;
		}
		if (n + len > ADDR_LOCAL_MAX)
			return ADDR_ERR_TOOLONG;
		for (i = 0; i < len; i++)
			out[n++] = (char)*p++;
		if (closed)
			break;
	}
	if (!quoted && (n == 0 || last_dot))	/* empty, or trailing "." */
		return ADDR_ERR_SYNTAX;
	out[n] = '\0';
	*pp = p;
	return ADDR_OK;
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]:
 * labels of letters, digits and inner hyphens, 1..63 octets, no empty
 * label and so no trailing dot.  ASCII letters are lower-cased; with
 * ADDR_ALLOW_UTF8 a label may hold non-ASCII characters (a U-label).
 *
 * The last label may not be all digits (RFC 3696 2: top-level domains
 * are not numeric).  Otherwise "a@192.0.2.1" would be a host name that
 * a resolver falling back to inet_pton() could treat as an address,
 * slipping past whatever policy applies to real address literals.
 *
 * A U-label is limited to 63 octets of UTF-8 rather than 63 octets of its
 * A-label: that can refuse a few long but legal labels, and in exchange
 * this parser needs no Punycode.  Checking that the code points are
 * IDNA2008-valid is left to the resolver, which must convert the name
 * to an A-label before it can look it up anyway.
 */
static int
parse_labels(const unsigned char **pp, char *out, int flags)
{
	const unsigned char	*p = *pp;
	size_t			 n = 0, label = 0, len, i;
	int			 last_hyphen = 0, numeric = 1;

	for (;; p += len) {
		if (*p >= 0x80) {
			if (!(flags & ADDR_ALLOW_UTF8))
				return ADDR_ERR_UTF8;
			if ((len = utf8_address_char(p)) == 0)
				return ADDR_ERR_SYNTAX;
			last_hyphen = numeric = 0;
		} else if (is_digit(*p)) {
			len = 1;
			last_hyphen = 0;
		} else if (is_alpha(*p)) {
			len = 1;
			last_hyphen = numeric = 0;
		} else if (*p == '-') {
			if (label == 0)
				return ADDR_ERR_SYNTAX;
			len = 1;
			last_hyphen = 1;
			numeric = 0;
		} else if (*p == '.') {
			if (label == 0 || last_hyphen)
				return ADDR_ERR_SYNTAX;
			if (n + 1 > ADDR_DOMAIN_MAX)
				return ADDR_ERR_TOOLONG;
			out[n++] = '.';
			label = 0;
			numeric = 1;
			len = 1;
			continue;
		} else
			break;
		if (label + len > DNS_LABEL_MAX || n + len > ADDR_DOMAIN_MAX)
			return ADDR_ERR_TOOLONG;
		for (i = 0; i < len; i++) {
			if (p[i] >= 'A' && p[i] <= 'Z')
				out[n++] = (char)(p[i] - 'A' + 'a');
			else
				out[n++] = (char)p[i];
		}
		label += len;
	}
	if (label == 0 || last_hyphen)	/* empty, trailing "." or "-" */
		return ADDR_ERR_SYNTAX;
	if (numeric)
		return ADDR_ERR_SYNTAX;
	out[n] = '\0';
	*pp = p;
	return ADDR_OK;
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal )
 * "]".  The address itself is checked with inet_pton(), which refuses
 * leading zeros in IPv4 octets (no octal ambiguity).  RFC 5321's
 * General-address-literal ("[tag:...]") names no registered tag but
 * IPv6, so it is refused.  The "IPv6:" tag is matched without regard
 * to case and stored as "IPv6:", the hex digits lower-cased.
 */
static int
parse_literal(const unsigned char **pp, char *out)
{
	const unsigned char	*p = *pp + 1;
	unsigned char		 addr[sizeof(struct in6_addr)];
	char			 text[LITERAL_MAX];
	size_t			 n = 0, i;
	int			 v6;

	/* dcontent is %d33-90 / %d94-126; stop at the first byte outside. */
	while (*p != ']') {
		if (*p < 33 || *p > 126 || *p == '[' || *p == '\\')
			return ADDR_ERR_SYNTAX;
		if (n + 1 >= sizeof(text))
			return ADDR_ERR_SYNTAX;
		text[n++] = (char)*p++;
	}
	text[n] = '\0';
	p++;

	v6 = (strncasecmp(text, "IPv6:", 5) == 0);
	if (v6) {
		if (inet_pton(AF_INET6, text + 5, addr) != 1)
			return ADDR_ERR_SYNTAX;
		memcpy(text, "IPv6:", 5);
		for (i = 5; i < n; i++)
			if (text[i] >= 'A' && text[i] <= 'F')
				text[i] = (char)(text[i] - 'A' + 'a');
	} else if (inet_pton(AF_INET, text, addr) != 1)
		return ADDR_ERR_SYNTAX;

	/* n < LITERAL_MAX, so with the brackets it always fits */
	out[0] = '[';
	memcpy(out + 1, text, n);
	out[n + 1] = ']';
	out[n + 2] = '\0';
	*pp = p;
	return ADDR_OK;
}

/* out holds ADDR_DOMAIN_MAX octets plus NUL. */
static int
parse_domain(const unsigned char **pp, char *out, int flags, int literal_ok)
{
	if (**pp == '[') {
		if (!literal_ok)
			return ADDR_ERR_SYNTAX;
		return parse_literal(pp, out);
	}
	return parse_labels(pp, out, flags);
}

static void
mailaddr_clear(struct mailaddr *m)
{
	memset(m, 0, sizeof(*m));
}

/*
 * Mailbox = Local-part "@" ( Domain / address-literal ), or with
 * ADDR_ALLOW_NODOMAIN the bare "postmaster" that RFC 5321 4.5.1 requires
 * every server to accept (RCPT TO:<Postmaster>).  `routed' says a source
 * route preceded it, which the bare postmaster form does not allow.
 */
static int
parse_mailbox(const unsigned char **pp, struct mailaddr *m, int flags,
    int routed)
{
	const unsigned char	*p = *pp;
	int			 rc;

	if ((rc = parse_local(&p, m->user, flags)) != ADDR_OK)
		return rc;
	if (*p != '@') {
		/*
		 * "Postmaster" is case-insensitive (RFC 5321 4.5.1), unlike
		 * every other local part; store it in one spelling so that
		 * later lookups need not know about the exception.
		 */
		if (!(flags & ADDR_ALLOW_NODOMAIN) || routed ||
		    strcasecmp(m->user, "postmaster") != 0)
			return ADDR_ERR_SYNTAX;
		memcpy(m->user, "postmaster", sizeof("postmaster"));
		m->domain[0] = '\0';
		*pp = p;
		return ADDR_OK;
	}
	p++;
	if ((rc = parse_domain(&p, m->domain, flags, 1)) != ADDR_OK)
		return rc;
	*pp = p;
	return ADDR_OK;
}

int
addr_parse_path(const char *s, struct mailaddr *out, int flags,
    const char **rest)
{
	struct mailaddr		 m;
	const unsigned char	*p = (const unsigned char *)s, *start;
	char			 relay[ADDR_DOMAIN_MAX + 1];
	int			 rc, routed = 0;

	mailaddr_clear(&m);
	mailaddr_clear(out);

	/* Not RFC 5321, but common: "MAIL FROM: <a@b>". */
	while (*p == ' ')
		p++;
	start = p;
	if (*p++ != '<')
		return ADDR_ERR_SYNTAX;

	if (*p == '>') {
		if (!(flags & ADDR_ALLOW_NULL))
			return ADDR_ERR_SYNTAX;
		p++;
		goto done;
	}

	/*
	 * A-d-l = At-domain *( "," At-domain ) ":".  RFC 5321 4.1.1.3 says
	 * to accept and ignore the route; the relay names are still
	 * checked so that nothing unparsed hides in a path.  The path
	 * limit covers the route, so it also bounds this loop.
	 */
	if (*p == '@') {
		routed = 1;
		for (;;) {
			if (*p++ != '@')
				return ADDR_ERR_SYNTAX;
			rc = parse_domain(&p, relay, flags, 0);
			if (rc != ADDR_OK)
				return rc;
			if ((size_t)(p - start) > ADDR_PATH_MAX)
				return ADDR_ERR_TOOLONG;
			if (*p == ':')
				break;
			if (*p++ != ',')
				return ADDR_ERR_SYNTAX;
		}
		p++;
	}

	if ((rc = parse_mailbox(&p, &m, flags, routed)) != ADDR_OK)
		return rc;
	if (*p++ != '>')
		return ADDR_ERR_SYNTAX;

done:
	/* RFC 5321 4.5.3.1.3: 256 octets including "<" and ">". */
	if ((size_t)(p - start) > ADDR_PATH_MAX)
		return ADDR_ERR_TOOLONG;
	/*
	 * Parameters are separated from the path by a space: "<a@b>x" is
	 * not a path followed by a parameter.
	 */
	if (*p != '\0' && *p != ' ')
		return ADDR_ERR_SYNTAX;
	*out = m;
	if (rest != NULL)
		*rest = (const char *)p;
	return ADDR_OK;
}

int
addr_parse_mailbox(const char *s, struct mailaddr *out, int flags)
{
	struct mailaddr		 m;
	const unsigned char	*p = (const unsigned char *)s;
	int			 rc;

	mailaddr_clear(&m);
	mailaddr_clear(out);

	if (*p == '\0')
		return (flags & ADDR_ALLOW_NULL) ? ADDR_OK : ADDR_ERR_SYNTAX;
	if ((rc = parse_mailbox(&p, &m, flags, 0)) != ADDR_OK)
		return rc;
	if (*p != '\0')
		return ADDR_ERR_SYNTAX;
	/* Anything accepted here must also fit in a path, inside "<>". */
	if (strlen(m.user) + 1 + strlen(m.domain) > ADDR_PATH_MAX - 2)
		return ADDR_ERR_TOOLONG;
	*out = m;
	return ADDR_OK;
}

/*
 * Returns the length written, or -1 if buf is too small (buf is then
 * the empty string).  A domain without a local part is no address.
 */
int
addr_to_string(const struct mailaddr *m, char *buf, size_t len)
{
	int	n;

	if (len > 0)
		buf[0] = '\0';
	if (m->user[0] == '\0' && m->domain[0] != '\0')
		return -1;
	if (m->domain[0] == '\0')
		n = snprintf(buf, len, "%s", m->user);
	else
		n = snprintf(buf, len, "%s@%s", m->user, m->domain);
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			buf[0] = '\0';
		return -1;
	}
	return n;
}

/*
 * Plain means a dot-atom of atext without '%' and '!': the old source
 * routing forms "user%host" and "host!user" must never reach a local
 * lookup, or a local part could relay mail elsewhere.  The check does
 * not trust that the struct came from our parser.
 */
int
addr_local_is_plain(const struct mailaddr *m)
{
	const unsigned char	*p = (const unsigned char *)m->user;
	size_t			 len;
	int			 last_dot = 1;

	if (*p == '\0')
		return 0;
	for (; *p != '\0'; p += len) {
		len = 1;
		if (*p == '.') {
			if (last_dot)
				return 0;
			last_dot = 1;
			continue;
		}
		if (*p == '%' || *p == '!')
			return 0;
		if (*p >= 0x80) {
			if ((len = utf8_address_char(p)) == 0)
				return 0;
		} else if (!is_atext(*p))
			return 0;
		last_dot = 0;
	}
	return !last_dot;
}

/*
 * "base+detail" -> base, detail.  A quoted local part is returned whole
 * (its '+' may be inside the quotes), as is one that starts with '+'
 * (an empty base would match no user, or worse, a default).  If base
 * does not fit it is set to "" rather than truncated: a truncated name
 * could be a different, existing user.
 */
void
addr_split_subaddress(const char *user, char *base, size_t baselen,
    char *detail, size_t detaillen)
{
	const char	*plus;
	size_t		 blen, dlen;

	plus = (user[0] == '"' || user[0] == '+') ? NULL : strchr(user, '+');
	blen = (plus == NULL) ? strlen(user) : (size_t)(plus - user);
	dlen = (plus == NULL) ? 0 : strlen(plus + 1);

	if (baselen > 0) {
		if (blen < baselen) {
			memcpy(base, user, blen);
			base[blen] = '\0';
		} else
			base[0] = '\0';
	}
	if (detail != NULL && detaillen > 0) {
		if (dlen < detaillen) {
			memcpy(detail, plus == NULL ? "" : plus + 1, dlen);
			detail[dlen] = '\0';
		} else
			detail[0] = '\0';
	}
}

/*
 * Mail-parameters = esmtp-param *(SP esmtp-param)
 * esmtp-keyword   = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 * esmtp-value     = 1*(%d33-60 / %d62-126)
 *
 * Runs of spaces are tolerated between parameters and at either end.
 * RFC 6531 would allow UTF-8 in values, but no parameter we implement
 * needs it, so values stay ASCII.  On error the buffer is left partly
 * split and params partly filled.
 */
int
esmtp_parse_params(char *s, struct esmtp_param *params, size_t max)
{
	unsigned char	*p = (unsigned char *)s;
	size_t		 count = 0;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (count >= max)
			return -1;
		if (!is_alpha(*p) && !is_digit(*p))
			return -1;
		params[count].key = (const char *)p;
		params[count].value = NULL;
		while (is_alpha(*p) || is_digit(*p) || *p == '-')
			p++;
		if (*p == '=') {
			*p++ = '\0';
			params[count].value = (const char *)p;
			if (*p == '\0' || *p == ' ')	/* value is 1*... */
				return -1;
			while (*p >= 33 && *p <= 126 && *p != '=')
				p++;
		}
		count++;
		if (*p == '\0')
			break;
		if (*p != ' ')
			return -1;
		*p++ = '\0';
	}
	return (int)count;
}

/*
 * xtext = *( xchar / hexchar ), xchar = "!".."~" except "+" and "=".
 * A decoded NUL or control character is refused: the result is used as
 * a C string and may be written to the queue or a log, where a NUL
 * would cut it short and a CR or LF would forge a record.
 */
int
xtext_decode(const char *in, char *out, size_t outlen)
{
	const unsigned char	*p = (const unsigned char *)in;
	size_t			 n = 0;
	int			 hi, lo, c;

	if (outlen == 0)
		return -1;
	while (*p != '\0') {
		if (*p == '+') {
			if ((hi = hex_value(p[1])) < 0)
				return -1;
			if ((lo = hex_value(p[2])) < 0)
				return -1;
			c = hi << 4 | lo;
			if (c < 0x20 || c == 0x7f)
				return -1;
			p += 3;
		} else if (*p >= 33 && *p <= 126 && *p != '=')
			c = *p++;
		else
			return -1;
		if (n + 1 >= outlen || n >= INT_MAX)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return (int)n;
}

int
xtext_encode(const char *in, char *out, size_t outlen)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)in;
	size_t			 n = 0;

	if (outlen == 0)
		return -1;
	for (; *p != '\0'; p++) {
		if (*p >= 33 && *p <= 126 && *p != '+' && *p != '=') {
			if (n + 1 >= outlen)
				return -1;
			out[n++] = (char)*p;
			continue;
		}
		if (n + 3 >= outlen || n >= INT_MAX)
			return -1;
		out[n++] = '+';
		out[n++] = hex[*p >> 4];
		out[n++] = hex[*p & 0x0f];
	}
	out[n] = '\0';
	return (int)n;
}

/*
 * One EmbeddedUnicodeChar of RFC 6533 3, "\x{" HEXPOINT "}", at p: its
 * length, with the code point in *cp, or 0.  HEXPOINT is 2 to 6 hex
 * digits without leading zeros (two digits for values below 0x10) and
 * names a Unicode scalar value: at most 0x10FFFF, no surrogate.  NUL
 * is refused too: no address holds one, and the value is a C string.
 */
/* ABNF's HEXDIG (RFC 5234): its quoted letters match either case */
static int
hexdig_value(unsigned char c)
{
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return hex_value(c);
}

static size_t
embedded_unicode_char(const unsigned char *p, uint32_t *cp)
{
	size_t		i, ndig;
	uint32_t	v = 0;
	int		h;

	if (p[0] != '\\' || p[1] != 'x' || p[2] != '{')
		return 0;
	for (i = 3; (h = hexdig_value(p[i])) >= 0; i++) {
		if (i - 3 >= 6)
			return 0;
		v = v << 4 | (uint32_t)h;
	}
	ndig = i - 3;
	if (p[i] != '}' || ndig < 2 || (ndig > 2 && p[3] == '0'))
		return 0;
	if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return i + 1;
}

static size_t
utf8_put(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * utf-8-addr-xtext / utf-8-addr-unitext (RFC 6533 3): 1*(QCHAR /
 * QUCHAR / EmbeddedUnicodeChar), QCHAR being printable ASCII but "\",
 * "+" and "=", QUCHAR a UTF-8 character.  Decoded, the address must be
 * UTF-8 (a raw QUCHAR is checked, an escape is a scalar value) and not
 * empty.  Returns 1 when valid.
 */
int
utf8_addr_xtext_valid(const char *value)
{
	const unsigned char	*p = (const unsigned char *)value;
	unsigned char		 decoded[ORCPT_MAX * 4 + 1];
	size_t			 n = 0, len;
	uint32_t		 cp;

	if (*p == '\0')
		return 0;
	while (*p != '\0') {
		if (n + 4 >= sizeof(decoded))
			return 0;
		if (*p == '\\') {
			if ((len = embedded_unicode_char(p, &cp)) == 0)
				return 0;
			n += utf8_put(cp, decoded + n);
			p += len;
		} else if (*p >= 0x80) {
			decoded[n++] = *p++;
		} else if (*p >= 0x21 && *p <= 0x7e && *p != '+' &&
		    *p != '=')
			decoded[n++] = *p++;
		else
			return 0;
	}
	return utf8_valid((const char *)decoded, n);
}

/*
 * original-recipient-address = addr-type ";" xtext (RFC 3461 4.2).  The
 * addr-type is an atom; the address itself "is NOT constrained to
 * conform to the syntax rules for that addr-type", so only its xtext
 * encoding is checked, and that it is not empty.  The "utf-8" type has
 * its own encoding (RFC 6533 3 and 4), checked as such.
 */
int
orcpt_valid(const char *value)
{
	const unsigned char	*p = (const unsigned char *)value;
	char			 decoded[ORCPT_MAX + 1];

	if (strnlen(value, ORCPT_MAX + 1) > ORCPT_MAX)
		return 0;
	if (!is_atext(*p))
		return 0;
	while (is_atext(*p))
		p++;
	if (*p++ != ';')
		return 0;
	if (*p == '\0')
		return 0;
	if ((const char *)p - value == 6 && strncasecmp(value, "utf-8;", 6) == 0)
		return utf8_addr_xtext_valid((const char *)p);
	return xtext_decode((const char *)p, decoded, sizeof(decoded)) > 0;
}

/* Boolean, like the other *_valid(): 1 when valid. */
int
domain_valid(const char *domain, int flags)
{
	const unsigned char	*p = (const unsigned char *)domain;
	char			 scratch[ADDR_DOMAIN_MAX + 1];

	if (parse_domain(&p, scratch, flags, 1) != ADDR_OK)
		return 0;
	return *p == '\0';
}

int
addr_in_cidr(const struct sockaddr_storage *ss, const char *cidr)
{
	char		 buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned char	 net[16], addr[16];
	long		 bits;
	int		 family, alen, i;

	snprintf(buf, sizeof(buf), "%s", cidr);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, net) == 1) {
		family = AF_INET;
		alen = 4;
	} else if (inet_pton(AF_INET6, buf, net) == 1) {
		family = AF_INET6;
		alen = 16;
	} else
		return 0;
	bits = alen * 8;
	if (slash) {
		bits = strtol(slash, &end, 10);
		if (*slash == '\0' || *end || bits < 0 || bits > alen * 8)
			return 0;
	}
	if (ss->ss_family == AF_INET && family == AF_INET)
		memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else if (ss->ss_family == AF_INET6 && family == AF_INET6)
		memcpy(addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	else if (ss->ss_family == AF_INET6 && family == AF_INET &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)ss)->sin6_addr))
		memcpy(addr, ((const unsigned char *)&((const struct
		    sockaddr_in6 *)ss)->sin6_addr) + 12, 4);
	else
		return 0;
	for (i = 0; bits > 0; i++, bits -= 8) {
		unsigned char mask = bits >= 8 ? 0xff :
		    (unsigned char)(0xff << (8 - bits));

		if ((addr[i] & mask) != (net[i] & mask))
			return 0;
	}
	return 1;
}
