/*
 * mta_reply.c -- strict parsing of SMTP and LMTP replies (RFC 5321 4.2).
 *
 *	Reply-line = *( Reply-code "-" [ textstring ] CRLF )
 *		     Reply-code [ SP textstring ] CRLF
 *
 * Every line of a reply must carry the same three-digit code, with the
 * first digit 2 to 5 and the second 0 to 5.  Anything else -- a missing
 * separator, a code that changes in the middle, a line or a reply too
 * long -- makes the whole reply malformed, which the caller treats as a
 * temporary failure of that server: we never guess what a broken server
 * meant, and we never let its bytes travel further than our own escaped
 * copy of them (CVE-2020-8794: reply text that ended up in a bounce or
 * an envelope unescaped).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta_reply.h"

void
mta_reply_init(struct mta_reply *r)
{
	r->code = 0;
	r->done = 0;
	r->nlines = 0;
	r->len = 0;
	r->text[0] = '\0';
}

/*
 * Append one byte; anything but printable ASCII becomes '?'.  The text
 * is escaped again wherever it is stored or logged, but a plain
 * printable copy here means no later consumer (a bounce body, a log
 * analyser) can be surprised by what a remote server chose to send.
 */
static int
reply_putc(struct mta_reply *r, unsigned char c)
{
	if (r->len + 1 >= sizeof(r->text))
		return -1;
	r->text[r->len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	r->text[r->len] = '\0';
	return 0;
}

/* the line separator inside text */
static int
reply_newline(struct mta_reply *r)
{
	if (r->len + 1 >= sizeof(r->text))
		return -1;
	r->text[r->len++] = '\n';
	r->text[r->len] = '\0';
	return 0;
}

int
mta_reply_line(struct mta_reply *r, const char *line, size_t len)
{
	int	code;
	size_t	i;

	if (r->done)
		mta_reply_init(r);
	if (len < 3 || len > MTA_LINE_MAX)
		return MTA_REPLY_BAD;
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '5' || line[2] < '0' || line[2] > '9')
		return MTA_REPLY_BAD;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines > 0 && code != r->code)
		return MTA_REPLY_BAD;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return MTA_REPLY_BAD;
	if (++r->nlines > MTA_REPLY_MAX_LINES)
		return MTA_REPLY_BAD;
	r->code = code;
	if (r->nlines > 1 && reply_newline(r) == -1)
		return MTA_REPLY_BAD;
	for (i = 4; i < len; i++) {
		/* a NUL or a bare CR inside a line is not text */
		if (line[i] == '\0' || line[i] == '\r')
			return MTA_REPLY_BAD;
		if (reply_putc(r, (unsigned char)line[i]) == -1)
			return MTA_REPLY_BAD;
	}
	if (len > 3 && line[3] == '-')
		return MTA_REPLY_MORE;
	r->done = 1;
	return MTA_REPLY_DONE;
}

/* "D.DDD.DDD" with 1-3 digits per part after the class; its length */
static size_t
status_len(const char *s, int cls)
{
	size_t	i = 0, n, part;

	if (s[0] - '0' != cls || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; isdigit((unsigned char)s[i]); n++, i++)
			;
		if (n < 1 || n > 3)
			return 0;
		if (part == 0 && s[i++] != '.')
			return 0;
	}
	if (s[i] != '\0' && s[i] != ' ' && s[i] != '\n')
		return 0;
	return i;
}

void
mta_reply_status(const struct mta_reply *r, char *out, size_t len)
{
	int	cls = r->code / 100;
	size_t	n;

	if (cls < 2 || cls > 5)
		cls = 4;
	if (cls == 3)
		cls = 2;	/* 354: intermediate success */
	n = status_len(r->text, cls);
	if (n > 0 && n < len) {
		memcpy(out, r->text, n);
		out[n] = '\0';
		return;
	}
	snprintf(out, len, "%d.0.0", cls);
}

void
mta_reply_oneline(const struct mta_reply *r, char *out, size_t len)
{
	size_t	o, i;
	int	n;

	n = snprintf(out, len, "%03d", r->code);
	if (n < 0 || (size_t)n >= len)
		return;
	o = n;
	if (r->len > 0 && o + 1 < len)
		out[o++] = ' ';
	for (i = 0; i < r->len && o + 1 < len; i++) {
		if (r->text[i] == '\n') {
			if (o + 3 >= len)
				break;
			memcpy(out + o, " / ", 3);
			o += 3;
		} else
			out[o++] = r->text[i];
	}
	out[o] = '\0';
}

/* does the line (up to '\n' or NUL) start with keyword kw, then end/SP? */
static const char *
ext_match(const char *line, const char *kw)
{
	size_t	n = strlen(kw);

	if (strncasecmp(line, kw, n) != 0)
		return NULL;
	if (line[n] == '\0' || line[n] == '\n')
		return line + n;
	if (line[n] == ' ' || line[n] == '=')
		return line + n + 1;
	return NULL;
}

static uint32_t
auth_mechs(const char *p)
{
	uint32_t	ext = 0;
	size_t		n;

	while (*p != '\0' && *p != '\n') {
		while (*p == ' ')
			p++;
		for (n = 0; p[n] != '\0' && p[n] != '\n' && p[n] != ' '; n++)
			;
		if (n == 5 && strncasecmp(p, "PLAIN", 5) == 0)
			ext |= MTA_EXT_AUTH_PLAIN;
		if (n == 5 && strncasecmp(p, "LOGIN", 5) == 0)
			ext |= MTA_EXT_AUTH_LOGIN;
		p += n;
	}
	return ext;
}

uint32_t
mta_reply_extensions(const struct mta_reply *r, uint64_t *size)
{
	const char		*line, *v;
	char			*end;
	unsigned long long	 n;
	uint32_t		 ext = 0;

	*size = 0;
	/* the first line is the server's name and greeting, not a keyword */
	if ((line = strchr(r->text, '\n')) == NULL)
		return 0;
	for (line++; *line != '\0'; ) {
		if (ext_match(line, "PIPELINING"))
			ext |= MTA_EXT_PIPELINING;
		else if (ext_match(line, "8BITMIME"))
			ext |= MTA_EXT_8BITMIME;
		else if (ext_match(line, "SMTPUTF8"))
			ext |= MTA_EXT_SMTPUTF8;
		else if (ext_match(line, "DSN"))
			ext |= MTA_EXT_DSN;
		else if (ext_match(line, "STARTTLS"))
			ext |= MTA_EXT_STARTTLS;
		else if (ext_match(line, "ENHANCEDSTATUSCODES"))
			ext |= MTA_EXT_ENHANCED;
		else if (ext_match(line, "REQUIRETLS"))
			ext |= MTA_EXT_REQUIRETLS;
		else if ((v = ext_match(line, "AUTH")) != NULL)
			ext |= auth_mechs(v);
		else if ((v = ext_match(line, "SIZE")) != NULL) {
			ext |= MTA_EXT_SIZE;
			if (isdigit((unsigned char)*v)) {
				errno = 0;
				n = strtoull(v, &end, 10);
				if (errno == 0 && (*end == '\0' ||
				    *end == '\n' || *end == ' '))
					*size = n;
			}
		}
		if ((line = strchr(line, '\n')) == NULL)
			break;
		line++;
	}
	return ext;
}

int
mta_xtext_valid(const char *s)
{
	static const char hexu[] = "0123456789ABCDEF";

	if (*s == '\0')
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '+') {
			if (s[1] == '\0' || s[2] == '\0' ||
			    strchr(hexu, s[1]) == NULL ||
			    strchr(hexu, s[2]) == NULL)
				return 0;
			s += 2;
			continue;
		}
		if (c < 33 || c > 126 || c == '=')
			return 0;
	}
	return 1;
}
