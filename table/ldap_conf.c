/*
 * ldap_conf.c -- the configuration file of an ldap: shared table, and
 * the search filters built from it (ldap_conf.h).
 *
 * The file is OpenSMTPD table-ldap's, one "keyword value" per line:
 *
 *	url ldap://192.0.2.10:389
 *	username cn=posthaste,dc=example,dc=org
 *	password secret
 *	basedn dc=example,dc=org
 *	alias_filter (&(objectClass=inetOrgPerson)(mail=%s))
 *	alias_attributes maildrop
 *	pool 2
 *	timeout 5s
 *
 * with SERVICE_filter / SERVICE_attributes for each service of table.h.
 * A value runs to the end of its line (DNs, filters and passwords hold
 * spaces); a line whose first non-blank is "#" is a comment.
 *
 * Anything unknown, repeated or malformed is an error with the file and
 * line: the parent reads the file as root at "smtpd -n", start and
 * reload (remote.c), so a typo never reaches the lookup process as a
 * table that silently answers "not found".
 *
 * The key asked reaches the server only as an RFC 4515 assertion value:
 * ldap_filter_escape() writes every byte that has a meaning in a filter
 * ("*", "(", ")", "\") and every byte outside printable ASCII as \XX,
 * so a client's "*)(uid=*" is a literal string that matches nothing,
 * never a wildcard or a second condition.
 *
 * The host in the URL must be an address: libldap resolves a name with
 * a blocking getaddrinfo(3), and the lookup process could no longer
 * read /etc/hosts once sandboxed.  ldaps:// is refused for a like
 * reason (libldap's TLS handshake blocks): use ldap:// on loopback or a
 * private network, or ldapi:// (a local socket).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "backend.h"
#include "ldap_conf.h"
#include "table.h"
#include "util.h"

#define LINE_MAX_LEN	4096

struct conf_parser {
	const char	*file;
	int		 line;
	char		*err;
	size_t		 errlen;
	/* where each keyword was seen: a second one is an error */
	int		 seen_url, seen_user, seen_pass, seen_base, seen_pool,
			 seen_timeout;
	int		 seen_filter[TS_COUNT], seen_attrs[TS_COUNT];
};

static int conf_error(struct conf_parser *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static int
conf_error(struct conf_parser *p, const char *fmt, ...)
{
	va_list	ap;
	char	why[512];

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s:%d: %s", p->file, p->line, why);
	return -1;
}

/* a keyword given once: 0, or the error naming the first place */
static int
once(struct conf_parser *p, int *seen, const char *keyword)
{
	if (*seen != 0)
		return conf_error(p, "%s given twice (first on line %d)",
		    keyword, *seen);
	*seen = p->line;
	return 0;
}

static int
copy_value(struct conf_parser *p, const char *keyword, const char *value,
    char *dst, size_t dstlen)
{
	if (*value == '\0')
		return conf_error(p, "%s needs a value", keyword);
	if (strlen(value) >= dstlen)
		return conf_error(p, "%s: longer than %zu characters",
		    keyword, dstlen - 1);
	memcpy(dst, value, strlen(value) + 1);
	return 0;
}

/* ldap://ADDR[:PORT][/] with a literal address, or ldapi://[PATH] */
static int
parse_url(struct conf_parser *p, const char *url, struct ldap_conf *c)
{
	const char	*h, *end, *port;
	char		 host[INET6_ADDRSTRLEN + 1];
	struct in6_addr	 a6;
	struct in_addr	 a4;
	size_t		 n;
	long		 v;
	char		*ep;

	if (copy_value(p, "url", url, c->url, sizeof(c->url)) == -1)
		return -1;
	if (strncmp(url, "ldapi://", 8) == 0) {
		for (h = url + 8; *h; h++)
			if (!isalnum((unsigned char)*h) &&
			    strchr("%._-", *h) == NULL)
				return conf_error(p, "url: an ldapi:// URL "
				    "holds only its socket's path, %%2F for "
				    "each \"/\"");
		return 0;
	}
	if (strncmp(url, "ldaps://", 8) == 0)
		return conf_error(p, "url: ldaps:// is not supported "
		    "(libldap's TLS handshake would block the lookup "
		    "process): use ldap:// on loopback or a private network, "
		    "or ldapi://");
	if (strncmp(url, "ldap://", 7) != 0)
		return conf_error(p, "url: expected ldap://ADDRESS[:PORT] or "
		    "ldapi://");
	h = url + 7;
	if (*h == '[') {
		if ((end = strchr(++h, ']')) == NULL)
			return conf_error(p, "url: no \"]\" after the IPv6 "
			    "address");
		port = end + 1;
	} else {
		end = h + strcspn(h, ":/");
		port = end;
	}
	n = (size_t)(end - h);
	if (n == 0 || n >= sizeof(host))
		return conf_error(p, "url: needs the server's address");
	memcpy(host, h, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &a4) != 1 &&
	    inet_pton(AF_INET6, host, &a6) != 1)
		return conf_error(p, "url: \"%s\" is not an IP address (a "
		    "name would be resolved blocking, and lookup cannot read "
		    "/etc/hosts once sandboxed)", host);
	if (*port == ':') {
		if (!isdigit((unsigned char)port[1]))
			return conf_error(p, "url: bad port");
		v = strtol(port + 1, &ep, 10);
		if (v < 1 || v > 65535)
			return conf_error(p, "url: bad port");
		port = ep;
	}
	if (*port == '/')
		port++;
	if (*port != '\0')
		return conf_error(p, "url: unexpected \"%s\" (no DN, "
		    "attributes or extensions in the URL: use basedn)", port);
	return 0;
}

/*
 * A filter template: "(...)", balanced parentheses, "%s" for the key at
 * least once and "%%" for a percent sign, nothing else after "%".
 */
static int
parse_filter(struct conf_parser *p, const char *keyword, const char *value,
    char *dst, size_t dstlen)
{
	const char	*s;
	int		 depth = 0, keys = 0;

	if (copy_value(p, keyword, value, dst, dstlen) == -1)
		return -1;
	if (value[0] != '(')
		return conf_error(p, "%s: a filter starts with \"(\"",
		    keyword);
	for (s = value; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return conf_error(p, "%s: control character", keyword);
		if (*s == '(')
			depth++;
		else if (*s == ')') {
			if (--depth < 0)
				return conf_error(p, "%s: unbalanced \")\"",
				    keyword);
			if (depth == 0 && s[1] != '\0')
				return conf_error(p, "%s: text after the "
				    "filter's closing \")\"", keyword);
		} else if (*s == '%') {
			if (s[1] == 's')
				keys++;
			else if (s[1] != '%')
				return conf_error(p, "%s: \"%%%c\": only %%s "
				    "(the key) and %%%% are known", keyword,
				    s[1] != '\0' ? s[1] : ' ');
			s++;
		}
	}
	if (depth != 0)
		return conf_error(p, "%s: unbalanced \"(\"", keyword);
	if (keys == 0)
		return conf_error(p, "%s: no %%s (where the key goes)",
		    keyword);
	return 0;
}

/* an attribute description: a name or an OID, with ";options" */
static int
attr_valid(const char *a)
{
	if (!isalnum((unsigned char)*a))
		return 0;
	for (; *a; a++)
		if (!isalnum((unsigned char)*a) && strchr("-.;", *a) == NULL)
			return 0;
	return 1;
}

static int
parse_attrs(struct conf_parser *p, const char *keyword, const char *value,
    struct ldap_conf *c, enum table_service s)
{
	const char	*a = value;
	size_t		 n;

	if (*value == '\0')
		return conf_error(p, "%s needs an attribute", keyword);
	while (*a != '\0') {
		n = strcspn(a, " \t");
		if (c->nattrs[s] == LDAP_CONF_NATTRS)
			return conf_error(p, "%s: more than %d attributes",
			    keyword, LDAP_CONF_NATTRS);
		if (n >= LDAP_CONF_ATTR_MAX)
			return conf_error(p, "%s: attribute name too long",
			    keyword);
		memcpy(c->attrs[s][c->nattrs[s]], a, n);
		c->attrs[s][c->nattrs[s]][n] = '\0';
		if (!attr_valid(c->attrs[s][c->nattrs[s]]))
			return conf_error(p, "%s: \"%s\" is not an attribute "
			    "name", keyword, c->attrs[s][c->nattrs[s]]);
		c->nattrs[s]++;
		a += n;
		a += strspn(a, " \t");
	}
	return 0;
}

static int
parse_number(struct conf_parser *p, const char *keyword, const char *value,
    int min, int max, int *out)
{
	char	*ep;
	long	 v;

	if (!isdigit((unsigned char)*value))
		return conf_error(p, "%s: expected a number from %d to %d",
		    keyword, min, max);
	v = strtol(value, &ep, 10);
	if (*ep != '\0' || v < min || v > max)
		return conf_error(p, "%s: expected a number from %d to %d",
		    keyword, min, max);
	*out = (int)v;
	return 0;
}

/* how many attributes each service takes: min, max */
static void
attrs_wanted(enum table_service s, int *min, int *max)
{
	switch (s) {
	case TS_USERINFO:
		*min = *max = 3;	/* uid gid home */
		break;
	case TS_ALIAS:
	case TS_CREDENTIALS:
	case TS_MAILADDRMAP:
		*min = *max = 1;
		break;
	default:			/* membership; a value if asked */
		*min = 0;
		*max = 1;
		break;
	}
}

/* "alias_filter" -> TS_ALIAS and 'f'; "alias_attributes" -> 'a' */
static int
service_keyword(const char *kw, enum table_service *s, char *kind)
{
	const char	*us = strrchr(kw, '_');
	char		 name[32];
	size_t		 n;

	if (us == NULL || (size_t)(us - kw) >= sizeof(name))
		return -1;
	n = (size_t)(us - kw);
	memcpy(name, kw, n);
	name[n] = '\0';
	if (table_service_parse(name, s) == -1)
		return -1;
	if (strcmp(us + 1, "filter") == 0)
		*kind = 'f';
	else if (strcmp(us + 1, "attributes") == 0)
		*kind = 'a';
	else
		return -1;
	return 0;
}

static int
parse_line(struct conf_parser *p, char *line, struct ldap_conf *c)
{
	enum table_service	 s;
	char			*kw = line, *value, kind;
	long long		 d;

	value = kw + strcspn(kw, " \t");
	if (*value != '\0') {
		*value++ = '\0';
		value += strspn(value, " \t");
	}
	if (strcmp(kw, "url") == 0)
		return once(p, &p->seen_url, kw) == -1 ? -1 :
		    parse_url(p, value, c);
	if (strcmp(kw, "username") == 0)
		return once(p, &p->seen_user, kw) == -1 ? -1 :
		    copy_value(p, kw, value, c->binddn, sizeof(c->binddn));
	if (strcmp(kw, "password") == 0)
		return once(p, &p->seen_pass, kw) == -1 ? -1 :
		    copy_value(p, kw, value, c->password,
		    sizeof(c->password));
	if (strcmp(kw, "basedn") == 0)
		return once(p, &p->seen_base, kw) == -1 ? -1 :
		    copy_value(p, kw, value, c->basedn, sizeof(c->basedn));
	if (strcmp(kw, "pool") == 0)
		return once(p, &p->seen_pool, kw) == -1 ? -1 :
		    parse_number(p, kw, value, 1, LDAP_CONF_POOL_MAX,
		    &c->pool);
	if (strcmp(kw, "timeout") == 0) {
		if (once(p, &p->seen_timeout, kw) == -1)
			return -1;
		d = config_parse_duration(value);
		if (d < 1 || d > LDAP_CONF_TIMEOUT_MAX)
			return conf_error(p, "timeout: expected a duration "
			    "from 1s to %ds", LDAP_CONF_TIMEOUT_MAX);
		c->timeout = (int)d;
		return 0;
	}
	if (service_keyword(kw, &s, &kind) == 0) {
		if (kind == 'f')
			return once(p, &p->seen_filter[s], kw) == -1 ? -1 :
			    parse_filter(p, kw, value, c->filter[s],
			    sizeof(c->filter[s]));
		return once(p, &p->seen_attrs[s], kw) == -1 ? -1 :
		    parse_attrs(p, kw, value, c, s);
	}
	return conf_error(p, "unknown keyword \"%.64s\"", kw);
}

/* what only the whole file can tell */
static int
check_conf(struct conf_parser *p, struct ldap_conf *c)
{
	int	s, min, max, any = 0;

	if (!p->seen_url)
		return conf_error(p, "no url");
	if (!p->seen_base)
		return conf_error(p, "no basedn");
	if (p->seen_user && !p->seen_pass) {
		p->line = p->seen_user;
		return conf_error(p, "username without password");
	}
	if (p->seen_pass && !p->seen_user) {
		p->line = p->seen_pass;
		return conf_error(p, "password without username");
	}
	for (s = 0; s < TS_COUNT; s++) {
		attrs_wanted((enum table_service)s, &min, &max);
		if (p->seen_attrs[s] && !p->seen_filter[s]) {
			p->line = p->seen_attrs[s];
			return conf_error(p, "%s_attributes without %s_filter",
			    table_service_name((enum table_service)s),
			    table_service_name((enum table_service)s));
		}
		if (!p->seen_filter[s])
			continue;
		any = 1;
		if (c->nattrs[s] < min || c->nattrs[s] > max) {
			p->line = p->seen_attrs[s] ? p->seen_attrs[s] :
			    p->seen_filter[s];
			if (min == max)
				return conf_error(p, "%s_attributes: the %s "
				    "service needs %d attribute%s",
				    table_service_name((enum table_service)s),
				    table_service_name((enum table_service)s),
				    min, min == 1 ? "" :
				    "s (uid, gid, home directory)");
			return conf_error(p, "%s_attributes: at most %d",
			    table_service_name((enum table_service)s), max);
		}
	}
	if (!any)
		return conf_error(p, "no SERVICE_filter: the table answers "
		    "nothing");
	return 0;
}

int
ldap_conf_parse(const char *text, size_t len, const char *file,
    struct ldap_conf *c, char *err, size_t errlen)
{
	struct conf_parser	 p;
	char			 line[LINE_MAX_LEN];
	const char		*s = text, *end = text + len, *nl;
	size_t			 n;
	char			*l, *e;

	memset(&p, 0, sizeof(p));
	memset(c, 0, sizeof(*c));
	p.file = file;
	p.err = err;
	p.errlen = errlen;
	c->pool = LDAP_CONF_POOL;
	c->timeout = LDAP_CONF_TIMEOUT;
	while (s < end) {
		p.line++;
		if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL)
			nl = end;
		n = (size_t)(nl - s);
		if (n >= sizeof(line)) {
			explicit_bzero(line, sizeof(line));
			ldap_conf_clear(c);
			return conf_error(&p, "line longer than %d bytes",
			    LINE_MAX_LEN - 1);
		}
		memcpy(line, s, n);
		line[n] = '\0';
		s = nl + 1;
		if (memchr(line, '\0', n) != NULL) {
			explicit_bzero(line, sizeof(line));
			ldap_conf_clear(c);
			return conf_error(&p, "NUL byte");
		}
		for (l = line; *l == ' ' || *l == '\t'; l++)
			;
		e = l + strlen(l);
		while (e > l && (e[-1] == ' ' || e[-1] == '\t' ||
		    e[-1] == '\r'))
			*--e = '\0';
		if (*l == '\0' || *l == '#')
			continue;
		if (parse_line(&p, l, c) == -1) {
			explicit_bzero(line, sizeof(line));
			ldap_conf_clear(c);
			return -1;
		}
	}
	explicit_bzero(line, sizeof(line));
	if (check_conf(&p, c) == -1) {
		ldap_conf_clear(c);
		return -1;
	}
	return 0;
}

void
ldap_conf_clear(struct ldap_conf *c)
{
	explicit_bzero(c, sizeof(*c));
}

int
ldap_filter_escape(const char *key, char *out, size_t outlen)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*k;
	size_t			 o = 0;

	for (k = (const unsigned char *)key; *k; k++) {
		if (*k < 0x20 || *k >= 0x7f || *k == '*' || *k == '(' ||
		    *k == ')' || *k == '\\') {
			if (o + 3 >= outlen)
				return -1;
			out[o++] = '\\';
			out[o++] = hex[*k >> 4];
			out[o++] = hex[*k & 0xf];
		} else {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = (char)*k;
		}
	}
	if (o >= outlen || o > INT_MAX)
		return -1;
	out[o] = '\0';
	return (int)o;
}

int
ldap_filter_expand(const char *filter, const char *key, char *out,
    size_t outlen)
{
	char	esc[3 * TABLE_KEY_MAX + 1];
	size_t	o = 0, n;
	int	elen;

	if ((elen = ldap_filter_escape(key, esc, sizeof(esc))) == -1)
		return -1;
	for (; *filter; filter++) {
		if (filter[0] == '%' && filter[1] == 's') {
			n = (size_t)elen;
			if (o + n >= outlen)
				return -1;
			memcpy(out + o, esc, n);
			o += n;
			filter++;
			continue;
		}
		if (filter[0] == '%' && filter[1] == '%')
			filter++;
		if (o + 1 >= outlen)
			return -1;
		out[o++] = *filter;
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}
