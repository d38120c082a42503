/*
 * http_request.c -- the request of the metrics endpoint, checked
 * (RFC 9112 section 3: request-line = method SP request-target SP
 * HTTP-version CRLF; section 5: field lines until an empty line).
 *
 * The peer is anyone who can reach the configured address, so the
 * parser trusts nothing: the whole head must fit HTTP_REQUEST_MAX bytes,
 * a NUL or another control character (but HTAB in field values) anywhere
 * makes it malformed, and so does a field line without a colon, a field
 * name with white space before it (obs-fold, RFC 9112 5.2) or a request
 * target that is not an absolute path.  Bare LF line ends are accepted
 * as RFC 9112 2.2 allows.  Field values are not looked at: the answer
 * is the same for every scraper.
 */
#include <string.h>

#include "http_request.h"

/* the end of the head (after the empty line), or NULL */
static const char *
head_end(const char *buf, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return buf + i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return buf + i + 3;
	}
	return NULL;
}

static int
is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* one line without its end: [s, e) */
static int
request_line(const char *s, const char *e, struct http_request *r,
    int *is_get)
{
	const char	*m, *t, *v;
	size_t		 n;

	for (m = s; m < e && is_tchar(*m); m++)
		;
	if (m == s || m == e || *m != ' ')
		return -1;
	t = m + 1;
	for (v = t; v < e && *v != ' '; v++)
		if ((unsigned char)*v <= 0x20 || *v == 0x7f)
			return -1;
	if (v == e || v == t || *t != '/')
		return -1;
	if ((size_t)(e - (v + 1)) != 8 || (memcmp(v + 1, "HTTP/1.1", 8) != 0 &&
	    memcmp(v + 1, "HTTP/1.0", 8) != 0))
		return -1;
	for (n = 0; t + n < v && t[n] != '?'; n++)
		;
	if (n >= sizeof(r->path))
		return -1;
	memcpy(r->path, t, n);
	r->path[n] = '\0';
	*is_get = 0;
	r->head = 0;
	if (m - s == 3 && memcmp(s, "GET", 3) == 0)
		*is_get = 1;
	else if (m - s == 4 && memcmp(s, "HEAD", 4) == 0)
		*is_get = r->head = 1;
	return 0;
}

static int
field_line(const char *s, const char *e)
{
	const char	*p;

	for (p = s; p < e && is_tchar(*p); p++)
		;
	if (p == s || p == e || *p != ':')
		return -1;
	for (p++; p < e; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return -1;
	return 0;
}

enum http_request_status
http_request_parse(const char *buf, size_t len, struct http_request *r)
{
	const char	*end, *s, *e, *nl;
	int		 is_get = 0, first = 1;

	memset(r, 0, sizeof(*r));
	if (memchr(buf, '\0', len) != NULL)
		return HTTP_REQ_BAD;
	if ((end = head_end(buf, len)) == NULL)
		return len >= HTTP_REQUEST_MAX ? HTTP_REQ_BAD : HTTP_REQ_MORE;
	if ((size_t)(end - buf) > HTTP_REQUEST_MAX)
		return HTTP_REQ_BAD;
	for (s = buf; s < end; s = nl + 1) {
		nl = memchr(s, '\n', (size_t)(end - s));
		e = nl;
		if (e > s && e[-1] == '\r')
			e--;
		if (e == s)		/* the empty line: the end */
			break;
		if (first) {
			if (request_line(s, e, r, &is_get) == -1)
				return HTTP_REQ_BAD;
			first = 0;
		} else if (field_line(s, e) == -1)
			return HTTP_REQ_BAD;
	}
	if (first)
		return HTTP_REQ_BAD;
	return is_get ? HTTP_REQ_OK : HTTP_REQ_METHOD;
}
