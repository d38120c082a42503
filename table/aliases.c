/*
 * aliases.c -- parse alias values (aliases(5), virtual tables, .forward
 * and :include: files) into typed items.
 *
 * The text comes from administrators (aliases) and from ordinary users
 * (.forward), so it is checked strictly: no control characters anywhere,
 * user names are plain dot-atoms, addresses go through the same parser
 * as SMTP paths, and an "error:" reply must look like an SMTP reply.
 * Whether a file or program destination is allowed at all is decided
 * by the expansion (expand.c), which knows where the item came from.
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "aliases.h"

static int
has_ctl(const char *s)
{
	for (; *s; s++)
		if (iscntrl((unsigned char)*s) && *s != '\t')
			return 1;
	return 0;
}

int
alias_valid_error(const char *s, char *reply, size_t replylen)
{
	const char	*p;
	int		 n;

	/* RFC 5321 4.2: a 4yz or 5yz code, then text */
	if ((s[0] != '4' && s[0] != '5') || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]) || (s[3] != ' ' && s[3] != '\0'))
		return -1;
	for (p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return -1;
	if (s[3] == '\0')
		n = snprintf(reply, replylen, "%.3s %c.0.0 Rejected by an "
		    "alias", s, s[0]);
	else
		n = snprintf(reply, replylen, "%s", s);
	return n < 0 || (size_t)n >= replylen ? -1 : 0;
}

static int
username_ok(const char *s)
{
	struct mailaddr	a;
	char		buf[ADDR_LOCAL_MAX + 16];

	if (*s == '\0' || strlen(s) > ADDR_LOCAL_MAX)
		return 0;
	snprintf(buf, sizeof(buf), "%.64s@localhost", s);
	if (addr_parse_mailbox(buf, &a, 0) != ADDR_OK)
		return 0;
	return addr_local_is_plain(&a);
}

int
alias_parse_item(const char *s, struct alias_item *it, char *err,
    size_t errlen)
{
	char	buf[ENV_PATH_MAX], *p;
	size_t	n;

	memset(it, 0, sizeof(*it));
	n = strlen(s);
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	}
	if (n == 0) {
		snprintf(err, errlen, "empty item");
		return -1;
	}
	if (n >= sizeof(buf)) {
		snprintf(err, errlen, "item too long");
		return -1;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (has_ctl(buf) || memchr(buf, '"', n) != NULL) {
		snprintf(err, errlen, "control character or stray quote");
		return -1;
	}
	p = buf;
	if (*p == '|') {
		for (p++; *p == ' ' || *p == '\t'; p++)
			;
		if (*p == '\0') {
			snprintf(err, errlen, "empty command");
			return -1;
		}
		it->type = ALIAS_PROGRAM;
		snprintf(it->value, sizeof(it->value), "%s", p);
		return 0;
	}
	if (*p == '/') {
		if (strchr(p, ' ') || strchr(p, '\t') || strstr(p, "/../") ||
		    (n >= 3 && strcmp(p + n - 3, "/..") == 0)) {
			snprintf(err, errlen, "invalid file name");
			return -1;
		}
		it->type = ALIAS_FILENAME;
		snprintf(it->value, sizeof(it->value), "%s", p);
		return 0;
	}
	if (strncasecmp(p, ":include:", 9) == 0) {
		for (p += 9; *p == ' ' || *p == '\t'; p++)
			;
		if (*p != '/' || strchr(p, ' ') || strchr(p, '\t')) {
			snprintf(err, errlen, ":include: needs an absolute "
			    "path");
			return -1;
		}
		it->type = ALIAS_INCLUDE;
		snprintf(it->value, sizeof(it->value), "%s", p);
		return 0;
	}
	if (strncasecmp(p, "error:", 6) == 0) {
		for (p += 6; *p == ' ' || *p == '\t'; p++)
			;
		if (alias_valid_error(p, it->value, sizeof(it->value)) == -1) {
			snprintf(err, errlen, "error: needs a 4xx or 5xx "
			    "reply code and printable text");
			return -1;
		}
		it->type = ALIAS_ERROR;
		return 0;
	}
	if (*p == '\\') {
		it->literal = 1;
		p++;
	}
	if (strchr(p, '@') != NULL) {
		size_t	 l = strlen(p);

		if (it->literal) {
			snprintf(err, errlen, "\\ only before a user name");
			return -1;
		}
		/* "<user@domain>" is a common way of writing it */
		if (l >= 2 && p[0] == '<' && p[l - 1] == '>') {
			p[l - 1] = '\0';
			p++;
		}
		if (addr_parse_mailbox(p, &it->addr, 0) != ADDR_OK ||
		    it->addr.user[0] == '\0' || it->addr.domain[0] == '\0') {
			snprintf(err, errlen, "invalid address");
			return -1;
		}
		it->type = ALIAS_ADDRESS;
		addr_to_string(&it->addr, it->value, sizeof(it->value));
		return 0;
	}
	if (!username_ok(p)) {
		snprintf(err, errlen, "invalid user name");
		return -1;
	}
	it->type = ALIAS_USERNAME;
	snprintf(it->value, sizeof(it->value), "%s", p);
	for (p = it->value; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

int
alias_parse_list(const char *list, alias_item_cb cb, alias_bad_cb bad,
    void *arg)
{
	struct alias_item	 it;
	const char		*p = list, *start, *end;
	char			*item, err[128];
	int			 inq, n = 0;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		/* an error: reply is free text, commas included, to the end */
		if (strncasecmp(p, "error:", 6) == 0)
			p += strlen(p);
		for (inq = 0; *p && (inq || *p != ','); p++)
			if (*p == '"')
				inq = !inq;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((item = strndup(start, (size_t)(end - start))) == NULL)
			return -1;
		if (inq) {
			if (bad)
				bad(arg, item, "unbalanced quotes");
		} else if (alias_parse_item(item, &it, err, sizeof(err)) ==
		    -1) {
			if (bad)
				bad(arg, item, err);
		} else if (cb(arg, &it) == -1) {
			free(item);
			return -1;
		} else
			n++;
		free(item);
	}
	return n;
}

int
alias_parse_file_text(const char *text, size_t len, alias_item_cb cb,
    alias_bad_cb bad, void *arg)
{
	char	*joined, *line, *p, *save;
	size_t	 off = 0;
	int	 rc;

	if (memchr(text, '\0', len) != NULL) {
		if (bad)
			bad(arg, "", "NUL byte in file");
		return 0;
	}
	if ((joined = malloc(len * 2 + 1)) == NULL ||
	    (p = strndup(text, len)) == NULL) {
		free(joined);
		return -1;
	}
	joined[0] = '\0';
	save = p;
	while ((line = strsep(&p, "\n")) != NULL) {
		char	*l = line;
		size_t	 n;

		while (*l == ' ' || *l == '\t')
			l++;
		n = strlen(l);
		while (n > 0 && (l[n - 1] == '\r' || l[n - 1] == ' ' ||
		    l[n - 1] == '\t'))
			l[--n] = '\0';
		if (n == 0 || *l == '#')
			continue;
		if (off > 0)
			joined[off++] = ',';
		memcpy(joined + off, l, n);
		off += n;
		joined[off] = '\0';
	}
	free(save);
	rc = alias_parse_list(joined, cb, bad, arg);
	free(joined);
	return rc;
}
