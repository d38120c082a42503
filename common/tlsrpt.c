/*
 * tlsrpt.c -- the words of RFC 8460 and the reader of a policy domain's
 * "_smtp._tls" TXT record (section 3), which says where the domain wants
 * its TLS reports.
 *
 * The record comes from DNS, so anyone who runs a zone writes it: it is
 * read strictly by the ABNF of section 3 and a record that does not
 * follow it is not used (no reports is the safe side: mail to an address
 * the domain did not clearly name is what a lenient reader would risk).
 * Extension fields are checked for their syntax and ignored.  Nothing
 * here allocates; every bound is the caller's buffer.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tlsrpt.h"

static const char *const policy_names[] = {
	"no-policy-found", "sts", "tlsa"
};

static const char *const result_names[TLSRPT_NRESULTS] = {
	"success",
	"starttls-not-supported",
	"certificate-host-mismatch",
	"certificate-expired",
	"certificate-not-trusted",
	"validation-failure",
	"tlsa-invalid",
	"dnssec-invalid",
	"dane-required",
	"sts-policy-fetch-error",
	"sts-policy-invalid",
	"sts-webpki-invalid",
};

const char *
tlsrpt_policy_type_name(int t)
{
	if (t < TLSRPT_POLICY_NONE || t > TLSRPT_POLICY_TLSA)
		return NULL;
	return policy_names[t];
}

const char *
tlsrpt_result_name(int r)
{
	if (r < 0 || r >= TLSRPT_NRESULTS)
		return NULL;
	return result_names[r];
}

#define VERSION		"v=TLSRPTv1"

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static int
ext_name_ok(const char *p, size_t n)
{
	size_t	i;

	if (n == 0 || n > 32 || !isalnum((unsigned char)p[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '_' &&
		    p[i] != '-' && p[i] != '.')
			return 0;
	return 1;
}

/* ext-value = 1*(%x21-3A / %x3C / %x3E-7E): no ';', '=', space */
static int
ext_value_ok(const char *p, size_t n)
{
	size_t	i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ';' || p[i] == '=')
			return 0;
	return 1;
}

/*
 * A URI of the rua list: a scheme (RFC 3986 3.1) and ':', then visible
 * ASCII without ',' and ';' (section 3: a "," or "!" in a URI is
 * percent-encoded, and ';' ends the field).
 */
static int
uri_ok(const char *p, size_t n)
{
	size_t	i;

	if (n == 0 || !isalpha((unsigned char)p[0]))
		return 0;
	for (i = 1; i < n && p[i] != ':'; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '+' &&
		    p[i] != '-' && p[i] != '.')
			return 0;
	if (i == n || i + 1 == n)
		return 0;
	for (; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',' || p[i] == ';')
			return 0;
	return 1;
}

/* tlsrpt-rua's value: tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri) */
static int
parse_rua(const char *p, size_t n, struct tlsrpt_record *rec)
{
	size_t	i = 0, start, end;

	for (;;) {
		start = i;
		while (i < n && p[i] != ',' && !is_wsp(p[i]))
			i++;
		end = i;
		if (!uri_ok(p + start, end - start))
			return -1;
		if (rec->nrua < TLSRPT_MAX_RUA && end - start < TLSRPT_URI_MAX) {
			memcpy(rec->rua[rec->nrua], p + start, end - start);
			rec->rua[rec->nrua][end - start] = '\0';
			rec->nrua++;
		}
		while (i < n && is_wsp(p[i]))
			i++;
		if (i == n)
			return 0;
		if (p[i] != ',')
			return -1;
		i++;
		while (i < n && is_wsp(p[i]))
			i++;
	}
}

int
tlsrpt_record_parse(const char *txt, size_t len, struct tlsrpt_record *rec)
{
	const char	*p, *end = txt + len, *f, *eq;
	size_t		 vl = strlen(VERSION), fl;
	int		 seen_rua = 0;

	memset(rec, 0, sizeof(*rec));
	if (len < vl || memcmp(txt, VERSION, vl) != 0)
		return -1;
	p = txt + vl;
	if (p < end && !is_wsp(*p) && *p != ';')
		return -1;		/* "v=TLSRPTv10": another version */
	for (;;) {
		/* field-delim = *WSP ";" *WSP */
		while (p < end && is_wsp(*p))
			p++;
		if (p == end)
			break;
		if (*p != ';')
			return -2;
		p++;
		while (p < end && is_wsp(*p))
			p++;
		if (p == end)
			break;		/* the optional trailing delimiter */
		f = p;
		while (p < end && *p != ';')
			p++;
		fl = (size_t)(p - f);
		while (fl > 0 && is_wsp(f[fl - 1]))
			fl--;
		if ((eq = memchr(f, '=', fl)) == NULL)
			return -2;
		if (eq - f == 3 && memcmp(f, "rua", 3) == 0) {
			if (seen_rua++ ||
			    parse_rua(eq + 1, fl - 4, rec) == -1)
				return -2;
		} else if (!ext_name_ok(f, (size_t)(eq - f)) ||
		    !ext_value_ok(eq + 1, fl - (size_t)(eq - f) - 1))
			return -2;
	}
	if (!seen_rua || rec->nrua == 0)
		return -2;
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
tlsrpt_uri_mailto(const char *uri, char *addr, size_t addrlen)
{
	const char	*p;
	size_t		 n = 0, at = 0;
	int		 hi, lo, c;

	if (addrlen == 0 || strncasecmp(uri, "mailto:", 7) != 0)
		return -1;
	for (p = uri + 7; *p != '\0' && *p != '?'; p++) {
		c = (unsigned char)*p;
		if (c == '%') {
			if ((hi = hexval(p[1])) == -1 ||
			    (lo = hexval(p[2])) == -1)
				return -1;
			c = hi * 16 + lo;
			p += 2;
		}
		if (c <= ' ' || c > '~' || n + 1 >= addrlen)
			return -1;
		if (c == '@')
			at++;
		addr[n++] = (char)c;
	}
	addr[n] = '\0';
	if (at != 1 || addr[0] == '@' || addr[n - 1] == '@')
		return -1;
	return 0;
}

int
tlsrpt_uri_https(const char *uri)
{
	return strncasecmp(uri, "https:", 6) == 0;
}
