/*
 * parse.c -- read smtpd.conf into a struct smtpd_config.
 *
 * The grammar is OpenSMTPD's smtpd.conf(5) as its users know it: one
 * statement per line, "#" comments, 'single' or "double" quoted strings,
 * "\" at the end of a line to continue it, macros (name = "value", used
 * as $name), and the spool / socket / hostname / smtp / queue / pki /
 * table / listen / action / match statements.
 *
 * A small hand-written lexer turns the file into tokens and a
 * recursive-descent parser, one function per statement, fills in the
 * configuration.  Names that may be defined after they are used (tables,
 * pkis, actions) are recorded as references with their line number and
 * resolved once the whole file has been read, so every error can still
 * point at the line that caused it.  The first error stops the parse;
 * nothing is ever truncated, clamped or guessed.
 *
 * Keywords are only recognised as bare words: a "quoted" string is always
 * a value, so an action may be called "relay" and a maildir template may
 * be "alias".
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* A configuration file larger than this is a mistake, not a config. */
#define CONF_FILE_MAX (16 * 1024 * 1024)
/* How much of an offending token an error message quotes. */
#define ERR_TOKEN_SHOW 48

#define SECONDS_PER_DAY (24LL * 60 * 60)
#define DURATION_MAX (365 * SECONDS_PER_DAY)
#define SIZE_LIMIT                                                             \
	((long long)((unsigned long long)SIZE_MAX >                            \
			     (unsigned long long)LLONG_MAX                     \
			 ? (unsigned long long)LLONG_MAX                       \
			 : (unsigned long long)SIZE_MAX))

#define MAILNAME_FILE "/etc/mailname"

enum token_type {
	TOK_EOF,
	TOK_NEWLINE,
	TOK_WORD,   /* bare word, or the value of a $macro */
	TOK_STRING, /* "quoted" or 'quoted': never a keyword */
	TOK_TABLE,  /* <name>; text is the name */
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_COMMA,
	TOK_EQUAL,
	TOK_BANG,
	TOK_ERROR, /* the lexer failed; the error is already recorded */
};

struct token {
	enum token_type type;
	int line;
	char *text; /* always NUL-terminated */
	size_t len;
	size_t cap;
};

struct macro {
	struct macro *next;
	char *name;
	char *value;
};

enum ref_kind {
	REF_TABLE,	   /* a <table> used as a list or for its keys */
	REF_TABLE_MAPPING, /* a <table> used as key -> value */
	REF_PKI,	   /* "pki NAME" on a listener */
	REF_LISTENER_TLS,  /* tls without "pki NAME": find one by host */
	REF_PKI_COMPLETE,  /* a pki needs both cert and key */
	REF_ACTION,	   /* match ... action "NAME" */
};

struct ref {
	enum ref_kind kind;
	int line;
	char name[CONF_HOST_MAX];
	struct listener *listener; /* REF_LISTENER_TLS: first of n */
	int nlisteners;
	struct match *match; /* REF_ACTION */
};

struct parser {
	const char *file;
	const char *buf;
	size_t len;
	size_t pos;
	int line;
	struct token cur;   /* last token taken */
	struct token ahead; /* one token of lookahead */
	int have_ahead;
	struct macro *macros;
	struct ref *refs;
	size_t nrefs;
	size_t refs_cap;
	struct smtpd_config *conf;
	char *err;
	size_t errlen;
	int failed;
};

/*
 * Errors
 */

static int parse_error(struct parser *, int, const char *, ...)
    __attribute__((__format__(__printf__, 3, 4)));

/* Record the first error only; always returns -1 for "return error(...)". */
static int
parse_error(struct parser *p, int line, const char *fmt, ...)
{
	char msg[512], *c;
	va_list ap;

	if (p->failed)
		return -1;
	p->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* values quoted from the file: keep the message one clean line */
	for (c = msg; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	if (p->err != NULL && p->errlen > 0)
		snprintf(p->err, p->errlen, "%s:%d: %s", p->file, line, msg);
	return -1;
}

/*
 * A token as an error message quotes it: printable ASCII only (the file
 * may hold anything and the message ends up in a terminal or syslog),
 * and cut short if long.
 */
static const char *
token_show(const struct token *t, char *buf, size_t bufsz)
{
	const char *src = t->text;
	size_t i, n = 0;

	switch (t->type) {
	case TOK_LBRACE:
		return "{";
	case TOK_RBRACE:
		return "}";
	case TOK_COMMA:
		return ",";
	case TOK_EQUAL:
		return "=";
	case TOK_BANG:
		return "!";
	case TOK_NEWLINE:
		return "end of line";
	case TOK_EOF:
	case TOK_ERROR:
		return "end of file";
	default:
		break;
	}
	if (t->type == TOK_TABLE && n + 1 < bufsz)
		buf[n++] = '<';
	for (i = 0; i < t->len && n + 5 < bufsz; i++) {
		unsigned char c = (unsigned char)src[i];

		if (i == ERR_TOKEN_SHOW) {
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		buf[n++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
	}
	if (t->type == TOK_TABLE && n + 1 < bufsz)
		buf[n++] = '>';
	buf[n] = '\0';
	return buf;
}

static int
syntax_error(struct parser *p, const struct token *t)
{
	char show[ERR_TOKEN_SHOW + 8];

	if (t->type == TOK_NEWLINE)
		return parse_error(p, t->line, "unexpected end of line");
	if (t->type == TOK_EOF || t->type == TOK_ERROR)
		return parse_error(p, t->line, "unexpected end of file");
	return parse_error(p, t->line, "syntax error near \"%s\"",
			   token_show(t, show, sizeof(show)));
}

/* `what' was expected and `t' came instead. */
static int
unexpected(struct parser *p, const struct token *t, const char *what)
{
	char show[ERR_TOKEN_SHOW + 8];

	if (t->type == TOK_NEWLINE || t->type == TOK_EOF ||
	    t->type == TOK_ERROR)
		return parse_error(p, t->line, "missing %s", what);
	return parse_error(p, t->line, "syntax error near \"%s\", expected %s",
			   token_show(t, show, sizeof(show)), what);
}

/*
 * Lexer
 */

static int
lex_char(const struct parser *p, size_t off)
{
	if (p->pos + off >= p->len)
		return -1;
	return (unsigned char)p->buf[p->pos + off];
}

/* Length of a "\" line continuation at the current position, or 0. */
static size_t
lex_continuation(const struct parser *p)
{
	if (lex_char(p, 0) != '\\')
		return 0;
	if (lex_char(p, 1) == '\n')
		return 2;
	if (lex_char(p, 1) == '\r' && lex_char(p, 2) == '\n')
		return 3;
	return 0;
}

static int
is_word_char(int c)
{
	if (c <= ' ' || c == 0x7f)
		return 0;
	return strchr("{}<>,=!\"'#", c) == NULL;
}

static int
token_putc(struct parser *p, struct token *t, int c)
{
	char *text;
	size_t cap;

	if (t->len + 1 >= t->cap) {
		cap = t->cap * 2;
		if ((text = realloc(t->text, cap)) == NULL)
			return parse_error(p, p->line, "out of memory");
		t->text = text;
		t->cap = cap;
	}
	t->text[t->len++] = (char)c;
	t->text[t->len] = '\0';
	return 0;
}

static int
token_set(struct parser *p, struct token *t, const char *s)
{
	for (; *s != '\0'; s++)
		if (token_putc(p, t, (unsigned char)*s) == -1)
			return -1;
	return 0;
}

static int
lex_word(struct parser *p, struct token *t)
{
	int c;

	while ((c = lex_char(p, 0)) != -1 && is_word_char(c)) {
		if (lex_continuation(p) > 0)
			break;
		if (token_putc(p, t, c) == -1)
			return -1;
		p->pos++;
	}
	t->type = TOK_WORD;
	return 0;
}

static int
lex_quoted(struct parser *p, struct token *t)
{
	int quote, c, n;
	int start = p->line;

	quote = lex_char(p, 0);
	p->pos++;
	for (;;) {
		if ((c = lex_char(p, 0)) == -1 || c == '\n')
			return parse_error(p, start,
					   "unterminated quoted string");
		if (c == '\\' && lex_continuation(p) > 0) {
			p->pos += lex_continuation(p);
			p->line++;
			continue;
		}
		p->pos++;
		if (c == quote)
			break;
		if (c == '\\') {
			n = lex_char(p, 0);
			if (n == quote || n == '\\') {
				p->pos++;
				c = n;
			}
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return parse_error(
			    p, p->line,
			    "invalid character 0x%02x in quoted string", c);
		if (token_putc(p, t, c) == -1)
			return -1;
	}
	t->type = TOK_STRING;
	return 0;
}

/* <name>: a table reference, one token so that "< x >" is not one. */
static int
lex_table(struct parser *p, struct token *t)
{
	int c;

	p->pos++;
	while ((c = lex_char(p, 0)) != -1 && is_word_char(c)) {
		if (token_putc(p, t, c) == -1)
			return -1;
		p->pos++;
	}
	if (t->len == 0 || c != '>')
		return parse_error(p, p->line,
				   "invalid table reference, expected <name>");
	p->pos++;
	t->type = TOK_TABLE;
	return 0;
}

static int
is_macro_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

static const struct macro *
macro_find(const struct parser *p, const char *name)
{
	const struct macro *m;

	for (m = p->macros; m != NULL; m = m->next)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

/*
 * $name: replaced by the macro's value as one bare word.  The value is
 * not lexed again, so a macro can neither expand to several tokens nor
 * refer to itself.
 */
static int
lex_macro(struct parser *p, struct token *t)
{
	const struct macro *m;
	int c;

	p->pos++;
	while ((c = lex_char(p, 0)) != -1 && is_macro_char(c)) {
		if (token_putc(p, t, c) == -1)
			return -1;
		p->pos++;
	}
	if (t->len == 0 ||
	    (c != -1 && is_word_char(c) && lex_continuation(p) == 0))
		return parse_error(p, p->line, "invalid macro reference");
	if ((m = macro_find(p, t->text)) == NULL)
		return parse_error(p, p->line, "macro \"%s\" not defined",
				   t->text);
	t->len = 0;
	t->text[0] = '\0';
	if (token_set(p, t, m->value) == -1)
		return -1;
	t->type = TOK_WORD;
	return 0;
}

static int
lex_token(struct parser *p, struct token *t)
{
	size_t n;
	int c;

	for (;;) {
		c = lex_char(p, 0);
		if (c == ' ' || c == '\t' || c == '\r' || c == '\f' ||
		    c == '\v') {
			p->pos++;
			continue;
		}
		if ((n = lex_continuation(p)) > 0) {
			p->pos += n;
			p->line++;
			continue;
		}
		if (c == '#') {
			while ((c = lex_char(p, 0)) != -1 && c != '\n')
				p->pos++;
			continue;
		}
		break;
	}
	t->line = p->line;
	switch (c) {
	case -1:
		t->type = TOK_EOF;
		return 0;
	case '\n':
		p->pos++;
		p->line++;
		t->type = TOK_NEWLINE;
		return 0;
	case '{':
		t->type = TOK_LBRACE;
		break;
	case '}':
		t->type = TOK_RBRACE;
		break;
	case ',':
		t->type = TOK_COMMA;
		break;
	case '=':
		t->type = TOK_EQUAL;
		break;
	case '!':
		t->type = TOK_BANG;
		break;
	case '"':
	case '\'':
		return lex_quoted(p, t);
	case '<':
		return lex_table(p, t);
	case '$':
		return lex_macro(p, t);
	case '>':
		return parse_error(p, p->line, "syntax error near \">\"");
	default:
		if (!is_word_char(c))
			return parse_error(p, p->line,
					   "invalid character 0x%02x", c);
		return lex_word(p, t);
	}
	p->pos++;
	return 0;
}

static void
lex(struct parser *p, struct token *t)
{
	if (t->text == NULL) {
		if ((t->text = malloc(64)) == NULL) {
			parse_error(p, p->line, "out of memory");
			t->cap = 0;
		} else
			t->cap = 64;
	}
	t->len = 0;
	if (t->text != NULL)
		t->text[0] = '\0';
	t->line = p->line;
	if (p->failed || t->text == NULL || lex_token(p, t) == -1) {
		t->type = TOK_ERROR;
		t->len = 0;
		if (t->text != NULL)
			t->text[0] = '\0';
	}
}

/*
 * Parser primitives.  The token returned by next() stays valid until the
 * next call to next(); peek() does not disturb it.
 */

static struct token *
peek(struct parser *p)
{
	if (!p->have_ahead) {
		lex(p, &p->ahead);
		p->have_ahead = 1;
	}
	return &p->ahead;
}

static struct token *
next(struct parser *p)
{
	struct token tmp;

	peek(p);
	tmp = p->cur;
	p->cur = p->ahead;
	p->ahead = tmp;
	p->have_ahead = 0;
	return &p->cur;
}

static int
is_keyword(const struct token *t, const char *keyword)
{
	return t->type == TOK_WORD && strcmp(t->text, keyword) == 0;
}

static int
is_value(const struct token *t)
{
	return t->type == TOK_WORD || t->type == TOK_STRING;
}

static int
is_end(const struct token *t)
{
	return t->type == TOK_NEWLINE || t->type == TOK_EOF ||
	       t->type == TOK_ERROR;
}

/* A statement ends at a newline or at the end of the file. */
static int
expect_end(struct parser *p)
{
	struct token *t = peek(p);

	if (t->type == TOK_NEWLINE) {
		next(p);
		return 0;
	}
	if (t->type == TOK_EOF)
		return 0;
	return syntax_error(p, t);
}

static int
get_value(struct parser *p, const char *what, struct token **tp)
{
	struct token *t = next(p);

	*tp = t;
	if (!is_value(t))
		return unexpected(p, t, what);
	return 0;
}

/* Copy a value into a fixed-size field: never empty, never truncated. */
static int
copy_value(struct parser *p, const struct token *t, char *dst, size_t dstsz,
	   const char *what)
{
	if (t->len == 0)
		return parse_error(p, t->line, "%s must not be empty", what);
	if (t->len >= dstsz)
		return parse_error(p, t->line,
				   "%s is too long (at most %zu characters)",
				   what, dstsz - 1);
	memcpy(dst, t->text, t->len + 1);
	return 0;
}

static int
get_string(struct parser *p, char *dst, size_t dstsz, const char *what)
{
	struct token *t;

	if (get_value(p, what, &t) == -1)
		return -1;
	return copy_value(p, t, dst, dstsz, what);
}

static int
get_yesno(struct parser *p, const char *what, int *out)
{
	char expect[128];
	struct token *t = next(p);

	snprintf(expect, sizeof(expect), "yes or no for %s", what);
	if (is_keyword(t, "yes"))
		*out = 1;
	else if (is_keyword(t, "no"))
		*out = 0;
	else
		return unexpected(p, t, expect);
	return 0;
}

static struct ref *
add_ref(struct parser *p, enum ref_kind kind, int line, const char *name)
{
	struct ref *refs, *r;
	size_t cap, len = strlen(name);

	if (len >= sizeof(r->name)) {
		parse_error(p, line, "name \"%.48s...\" is too long", name);
		return NULL;
	}
	if (p->nrefs == p->refs_cap) {
		cap = p->refs_cap ? p->refs_cap * 2 : 16;
		if ((refs = reallocarray(p->refs, cap, sizeof(*refs))) ==
		    NULL) {
			parse_error(p, line, "out of memory");
			return NULL;
		}
		p->refs = refs;
		p->refs_cap = cap;
	}
	r = &p->refs[p->nrefs++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->line = line;
	memcpy(r->name, name, len + 1);
	return r;
}

/* <table> into dst, to be checked against the table list at the end. */
static int
get_table_ref(struct parser *p, char *dst, size_t dstsz, int mapping,
	      const char *what)
{
	struct token *t = next(p);

	if (t->type != TOK_TABLE)
		return unexpected(p, t, what);
	if (copy_value(p, t, dst, dstsz, "table name") == -1)
		return -1;
	if (add_ref(p, mapping ? REF_TABLE_MAPPING : REF_TABLE, t->line, dst) ==
	    NULL)
		return -1;
	return 0;
}

/*
 * Checks on values
 */

/* Host names as written in a config: LDH labels, "_" tolerated. */
static int
valid_hostname(const char *s)
{
	size_t len = strlen(s), i;

	if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-' ||
	    s[len - 1] == '.' || strstr(s, "..") != NULL)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_'))
			return 0;
	}
	return 1;
}

/* Printable ASCII without white space or `extra'. */
static int
valid_name(const char *s, const char *extra)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c >= 0x7f || strchr(extra, c) != NULL)
			return 0;
	}
	return 1;
}

/* Text without control characters or white space (UTF-8 allowed). */
static int
valid_pattern(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 0;
	return 1;
}

static int
valid_ip(const char *s)
{
	struct in_addr in4;
	struct in6_addr in6;

	return inet_pton(AF_INET, s, &in4) == 1 ||
	       inet_pton(AF_INET6, s, &in6) == 1;
}

/* Digits only, no sign: 0 ok, -1 not a number, -2 too large. */
static int
parse_decimal(const char *s, const char **end, long long *out)
{
	long long v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (LLONG_MAX - (*s - '0')) / 10)
			return -2;
		v = v * 10 + (*s - '0');
	}
	*end = s;
	*out = v;
	return 0;
}

/* "addr" or "addr/prefix", IPv4 or IPv6. */
static int
valid_cidr(const char *s)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/'), *end;
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	struct in_addr in4;
	struct in6_addr in6;
	long long prefix, max;

	if (len == 0 || len >= sizeof(addr))
		return 0;
	memcpy(addr, s, len);
	addr[len] = '\0';
	if (inet_pton(AF_INET, addr, &in4) == 1)
		max = 32;
	else if (inet_pton(AF_INET6, addr, &in6) == 1)
		max = 128;
	else
		return 0;
	if (slash == NULL)
		return 1;
	if (parse_decimal(slash + 1, &end, &prefix) != 0 || *end != '\0')
		return 0;
	return prefix <= max;
}

static int
valid_port_text(const char *s, long long *port)
{
	const char *end;

	return parse_decimal(s, &end, port) == 0 && *end == '\0' &&
	       *port >= 1 && *port <= 65535;
}

enum url_scheme {
	URL_SMTP,
	URL_SMTP_TLS,
	URL_SMTPS,
	URL_SMTP_NOTLS,
	URL_LMTP,
};

/*
 * scheme://[label@]host[:port] with host a name, an IPv4 address or
 * [IPv6].  Returns an error message or NULL.
 */
static const char *
check_relay_url(const char *url, enum url_scheme *scheme)
{
	static const struct {
		const char *prefix;
		enum url_scheme scheme;
	} schemes[] = {
	    {"smtp://", URL_SMTP},   {"smtp+tls://", URL_SMTP_TLS},
	    {"smtps://", URL_SMTPS}, {"smtp+notls://", URL_SMTP_NOTLS},
	    {"lmtp://", URL_LMTP},
	};
	char host[CONF_HOST_MAX];
	const char *rest = NULL, *at, *colon, *end;
	struct in6_addr in6;
	long long port;
	size_t i, len;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		len = strlen(schemes[i].prefix);
		if (strncmp(url, schemes[i].prefix, len) == 0) {
			rest = url + len;
			*scheme = schemes[i].scheme;
			break;
		}
	}
	if (rest == NULL)
		return "unknown scheme (expected smtp://, smtp+tls://, "
		       "smtps://, smtp+notls:// or lmtp://)";
	if ((at = strchr(rest, '@')) != NULL) {
		if (at == rest)
			return "empty label before \"@\"";
		for (; rest < at; rest++)
			if (!is_macro_char((unsigned char)*rest) &&
			    *rest != '-' && *rest != '.')
				return "invalid character in label";
		rest = at + 1;
	}
	if (*rest == '[') {
		if ((end = strchr(rest, ']')) == NULL)
			return "missing \"]\" after IPv6 address";
		len = (size_t)(end - rest - 1);
		if (len == 0 || len >= sizeof(host))
			return "invalid IPv6 address";
		memcpy(host, rest + 1, len);
		host[len] = '\0';
		if (inet_pton(AF_INET6, host, &in6) != 1)
			return "invalid IPv6 address";
		colon = end + 1;
		if (*colon != '\0' && *colon != ':')
			return "junk after \"]\"";
	} else {
		colon = strchr(rest, ':');
		len = colon ? (size_t)(colon - rest) : strlen(rest);
		if (len == 0)
			return "missing host";
		if (len >= sizeof(host))
			return "host name too long";
		memcpy(host, rest, len);
		host[len] = '\0';
		if (!valid_hostname(host))
			return "invalid host name";
	}
	if (colon != NULL && *colon == ':' &&
	    !valid_port_text(colon + 1, &port))
		return "invalid port";
	return NULL;
}

/*
 * Numbers, sizes and durations
 */

long long
config_parse_size(const char *s)
{
	const char *end;
	long long v, mult = 1;

	if (s == NULL || parse_decimal(s, &end, &v) != 0)
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		mult = 1024LL;
		end++;
		break;
	case 'm':
	case 'M':
		mult = 1024LL * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		mult = 1024LL * 1024 * 1024;
		end++;
		break;
	case 't':
	case 'T':
		mult = 1024LL * 1024 * 1024 * 1024;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || v > LLONG_MAX / mult)
		return -1;
	return v * mult;
}

long long
config_parse_duration(const char *s)
{
	const char *end;
	long long v, mult = 1;

	if (s == NULL || parse_decimal(s, &end, &v) != 0)
		return -1;
	switch (*end) {
	case 's':
		end++;
		break;
	case 'm':
		mult = 60;
		end++;
		break;
	case 'h':
		mult = 60 * 60;
		end++;
		break;
	case 'd':
		mult = SECONDS_PER_DAY;
		end++;
		break;
	case 'w':
		mult = 7 * SECONDS_PER_DAY;
		end++;
		break;
	default:
		break;
	}
	if (*end != '\0' || v > LLONG_MAX / mult)
		return -1;
	return v * mult;
}

enum scalar_kind {
	SCALAR_COUNT,	/* 1000 */
	SCALAR_BYTES,	/* 10M */
	SCALAR_SECONDS, /* 5m */
};

/*
 * A value that failed to parse only because it is too large: digits and
 * a suffix that parse fine with the number replaced by 1.  Reported as
 * out of range rather than as a typo.
 */
static int
is_overflow(enum scalar_kind kind, const char *s)
{
	char one[8];
	size_t digits = strspn(s, "0123456789");

	if (digits == 0 || strlen(s + digits) > sizeof(one) - 2)
		return 0;
	snprintf(one, sizeof(one), "1%s", s + digits);
	switch (kind) {
	case SCALAR_BYTES:
		return config_parse_size(one) >= 0;
	case SCALAR_SECONDS:
		return config_parse_duration(one) >= 0;
	default:
		return s[digits] == '\0';
	}
}

static int
get_scalar(struct parser *p, enum scalar_kind kind, const char *what,
	   long long min, long long max, long long *out)
{
	static const char *const kind_name[] = {
	    [SCALAR_COUNT] = "number",
	    [SCALAR_BYTES] = "size",
	    [SCALAR_SECONDS] = "duration",
	};
	char expect[128], show[ERR_TOKEN_SHOW + 8];
	struct token *t;
	const char *end;
	long long v;
	int rc;

	snprintf(expect, sizeof(expect), "%s for %s", kind_name[kind], what);
	if (get_value(p, expect, &t) == -1)
		return -1;
	switch (kind) {
	case SCALAR_BYTES:
		v = config_parse_size(t->text);
		rc = v < 0 ? -1 : 0;
		break;
	case SCALAR_SECONDS:
		v = config_parse_duration(t->text);
		rc = v < 0 ? -1 : 0;
		break;
	default:
		rc = parse_decimal(t->text, &end, &v);
		if (rc == 0 && *end != '\0')
			rc = -1;
		break;
	}
	if (rc == -1 && is_overflow(kind, t->text))
		rc = -2;
	if (rc == -1)
		return parse_error(p, t->line, "invalid %s \"%s\" for %s",
				   kind_name[kind],
				   token_show(t, show, sizeof(show)), what);
	if (rc == -2 || v < min || v > max)
		return parse_error(p, t->line,
				   "%s must be between %lld and %lld", what,
				   min, max);
	*out = v;
	return 0;
}

static int
get_port(struct parser *p, const char *what, uint16_t *port)
{
	long long v;

	if (get_scalar(p, SCALAR_COUNT, what, 1, 65535, &v) == -1)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/*
 * Simple statements: spool, socket, hostname, mailname, resolver, and
 * the "SECTION OPTION VALUE" settings.
 */

enum option_store {
	STORE_INT,
	STORE_SIZE,
	STORE_TIME,
};

struct option_spec {
	const char *section;
	const char *name;
	enum scalar_kind kind;
	int yesno;
	enum option_store store;
	size_t offset;
	long long min;
	long long max;
};

#define OPTION(sect, name, kind, yesno, store, field, min, max)                \
	{                                                                      \
		sect, name, kind, yesno, store,                                \
		    offsetof(struct smtpd_config, field), min, max             \
	}

static const struct option_spec option_specs[] = {
    OPTION("smtp", "workers", SCALAR_COUNT, 0, STORE_INT, smtp_workers, 0, 256),
    OPTION("smtp", "max-message-size", SCALAR_BYTES, 0, STORE_SIZE,
	   max_message_size, 1, SIZE_LIMIT),
    OPTION("smtp", "max-rcpt", SCALAR_COUNT, 0, STORE_SIZE, max_rcpt, 1,
	   100000),
    /* RFC 5321 4.5.3.1.6: at least 1000 octets with CRLF; allow less
     * only down to a size that still makes sense for testing */
    OPTION("smtp", "max-line", SCALAR_COUNT, 0, STORE_SIZE, max_line, 512,
	   1024 * 1024),
    OPTION("smtp", "max-sessions", SCALAR_COUNT, 0, STORE_INT, max_sessions, 1,
	   1000000),
    OPTION("smtp", "max-sessions-per-ip", SCALAR_COUNT, 0, STORE_INT,
	   max_sessions_per_ip, 1, 1000000),
    OPTION("smtp", "max-messages", SCALAR_COUNT, 0, STORE_INT,
	   max_messages_per_session, 1, 1000000),
    OPTION("smtp", "vrfy", SCALAR_COUNT, 1, STORE_INT, vrfy, 0, 1),
    OPTION("smtp", "expn", SCALAR_COUNT, 1, STORE_INT, expn, 0, 1),
    OPTION("smtp", "timeout", SCALAR_SECONDS, 0, STORE_TIME, timeout_cmd, 1,
	   SECONDS_PER_DAY),
    OPTION("smtp", "data-timeout", SCALAR_SECONDS, 0, STORE_TIME, timeout_data,
	   1, SECONDS_PER_DAY),
    OPTION("queue", "ttl", SCALAR_SECONDS, 0, STORE_TIME, queue_ttl, 1,
	   DURATION_MAX),
    OPTION("queue", "retry-local", SCALAR_SECONDS, 0, STORE_TIME, retry_local,
	   1, SECONDS_PER_DAY),
    OPTION("queue", "retry-remote", SCALAR_SECONDS, 0, STORE_TIME, retry_remote,
	   1, SECONDS_PER_DAY),
    OPTION("queue", "max-inflight", SCALAR_COUNT, 0, STORE_INT,
	   queue_max_inflight, 1, 1000000),
    /* 0 turns delay warnings off */
    OPTION("bounce", "warn-interval", SCALAR_SECONDS, 0, STORE_TIME,
	   bounce_warn, 0, DURATION_MAX),
    OPTION("mda", "max-processes", SCALAR_COUNT, 0, STORE_INT, mda_max, 1,
	   10000),
    OPTION("mta", "max-conn-per-host", SCALAR_COUNT, 0, STORE_INT,
	   mta_max_per_dest, 1, 1000),
};

static int
parse_option(struct parser *p, const char *section, int line)
{
	const struct option_spec *spec = NULL;
	char what[128], show[ERR_TOKEN_SHOW + 8];
	struct token *t;
	char *field;
	long long v;
	size_t i;
	int yes;

	(void)line;
	t = next(p);
	if (!is_value(t)) {
		snprintf(what, sizeof(what), "option after \"%s\"", section);
		return unexpected(p, t, what);
	}
	for (i = 0; i < sizeof(option_specs) / sizeof(option_specs[0]); i++)
		if (strcmp(option_specs[i].section, section) == 0 &&
		    is_keyword(t, option_specs[i].name)) {
			spec = &option_specs[i];
			break;
		}
	if (spec == NULL)
		return parse_error(p, t->line, "unknown %s option \"%s\"",
				   section, token_show(t, show, sizeof(show)));
	snprintf(what, sizeof(what), "%s %s", section, spec->name);
	if (spec->yesno) {
		if (get_yesno(p, what, &yes) == -1)
			return -1;
		v = yes;
	} else if (get_scalar(p, spec->kind, what, spec->min, spec->max, &v) ==
		   -1)
		return -1;
	field = (char *)p->conf + spec->offset;
	switch (spec->store) {
	case STORE_INT:
		*(int *)(void *)field = (int)v;
		break;
	case STORE_SIZE:
		*(size_t *)(void *)field = (size_t)v;
		break;
	case STORE_TIME:
		*(time_t *)(void *)field = (time_t)v;
		break;
	}
	return 0;
}

static int
parse_path_statement(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config *conf = p->conf;
	char *dst;
	char what[64];
	struct token *t;

	(void)line;
	dst = strcmp(keyword, "spool") == 0 ? conf->spool : conf->socket;
	snprintf(what, sizeof(what), "path for %s", keyword);
	if (get_value(p, what, &t) == -1 ||
	    copy_value(p, t, dst, CONF_PATH_MAX, what) == -1)
		return -1;
	if (dst[0] != '/')
		return parse_error(p, t->line, "%s must be an absolute path",
				   keyword);
	return 0;
}

static int
parse_hostname_statement(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config *conf = p->conf;
	char *dst;
	char what[64];
	struct token *t;

	(void)line;
	dst =
	    strcmp(keyword, "hostname") == 0 ? conf->hostname : conf->mailname;
	snprintf(what, sizeof(what), "name for %s", keyword);
	if (get_value(p, what, &t) == -1 ||
	    copy_value(p, t, dst, CONF_HOST_MAX, what) == -1)
		return -1;
	if (!valid_hostname(dst))
		return parse_error(p, t->line, "invalid %s \"%s\"", keyword,
				   dst);
	return 0;
}

static int
parse_resolver(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config *conf = p->conf;
	struct token *t;

	(void)keyword;
	(void)line;
	if (get_value(p, "address for resolver", &t) == -1 ||
	    copy_value(p, t, conf->resolver, sizeof(conf->resolver),
		       "resolver address") == -1)
		return -1;
	if (!valid_ip(conf->resolver))
		return parse_error(p, t->line,
				   "resolver must be an IPv4 or IPv6 address");
	conf->resolver_port = 53;
	if (is_keyword(peek(p), "port")) {
		next(p);
		return get_port(p, "resolver port", &conf->resolver_port);
	}
	return 0;
}

static int
parse_macro(struct parser *p)
{
	struct macro *m;
	struct token *t = &p->cur;
	char *name, *value;
	int line = t->line;
	size_t i;

	for (i = 0; i < t->len; i++)
		if (!is_macro_char((unsigned char)t->text[i]))
			break;
	if (i != t->len || (t->text[0] >= '0' && t->text[0] <= '9'))
		return parse_error(p, line, "invalid macro name \"%s\"",
				   t->text);
	if ((name = strdup(t->text)) == NULL)
		return parse_error(p, line, "out of memory");
	next(p); /* = */
	t = next(p);
	if (!is_value(t)) {
		free(name);
		return unexpected(p, t, "macro value");
	}
	if ((value = strdup(t->text)) == NULL) {
		free(name);
		return parse_error(p, line, "out of memory");
	}
	for (m = p->macros; m != NULL; m = m->next)
		if (strcmp(m->name, name) == 0) {
			free(m->value);
			m->value = value;
			free(name);
			return 0;
		}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		free(name);
		free(value);
		return parse_error(p, line, "out of memory");
	}
	m->name = name;
	m->value = value;
	m->next = p->macros;
	p->macros = m;
	return 0;
}

/*
 * pki NAME cert "FILE" / pki NAME key "FILE"
 */
static int
parse_pki(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config *conf = p->conf;
	char name[CONF_HOST_MAX];
	struct pki *pki;
	struct token *t;
	char *dst;
	const char *what;

	(void)keyword;
	if (get_string(p, name, sizeof(name), "pki name") == -1)
		return -1;
	if (!valid_name(name, ""))
		return parse_error(p, line, "invalid pki name \"%s\"", name);
	t = next(p);
	if (!is_keyword(t, "cert") && !is_keyword(t, "key"))
		return unexpected(p, t, "cert or key after pki name");
	what = is_keyword(t, "cert") ? "cert" : "key";
	if ((pki = config_find_pki(conf, name)) == NULL) {
		if ((pki = calloc(1, sizeof(*pki))) == NULL)
			return parse_error(p, line, "out of memory");
		memcpy(pki->name, name, sizeof(pki->name));
		TAILQ_INSERT_TAIL(&conf->pkis, pki, entry);
		if (add_ref(p, REF_PKI_COMPLETE, line, name) == NULL)
			return -1;
	}
	dst = what[0] == 'c' ? pki->cert_file : pki->key_file;
	if (dst[0] != '\0')
		return parse_error(p, line, "pki \"%s\": %s already specified",
				   name, what);
	if (get_value(p, what[0] == 'c' ? "cert file" : "key file", &t) == -1 ||
	    copy_value(p, t, dst, CONF_PATH_MAX,
		       what[0] == 'c' ? "cert file" : "key file") == -1)
		return -1;
	if (dst[0] != '/')
		return parse_error(
		    p, t->line, "pki %s file must be an absolute path", what);
	return 0;
}

/*
 * table NAME file:/path | db:/path | "/path" | { a, b } | { k = v, ... }
 */

static int
table_add_entry(struct parser *p, struct table *table, char *key, char *value,
		int line)
{
	struct table_entry *entries;
	size_t i;

	/* capacity is implied: 4, then doubled at every power of two */
	if (table->nentries == 0 ||
	    (table->nentries >= 4 &&
	     (table->nentries & (table->nentries - 1)) == 0)) {
		entries = reallocarray(
		    table->entries, table->nentries ? table->nentries * 2 : 4,
		    sizeof(*entries));
		if (entries == NULL) {
			free(key);
			free(value);
			return parse_error(p, line, "out of memory");
		}
		table->entries = entries;
	}
	if (value != NULL) {
		for (i = 0; i < table->nentries; i++)
			if (strcmp(table->entries[i].key, key) == 0) {
				parse_error(
				    p, line,
				    "table \"%s\": duplicate key \"%.48s\"",
				    table->name, key);
				free(key);
				free(value);
				return -1;
			}
	}
	table->entries[table->nentries].key = key;
	table->entries[table->nentries].value = value;
	table->nentries++;
	return 0;
}

static int
get_table_item(struct parser *p, struct table *table, struct token *t,
	       char **out)
{
	*out = NULL;
	if (!is_value(t))
		return unexpected(p, t, "table entry");
	if (t->len == 0)
		return parse_error(p, t->line, "table \"%s\": empty entry",
				   table->name);
	if ((*out = strdup(t->text)) == NULL)
		return parse_error(p, t->line, "out of memory");
	return 0;
}

/* Entries are separated by commas, newlines or both (as in OpenSMTPD). */
static int
parse_table_inline(struct parser *p, struct table *table, int line)
{
	struct token *t;
	char *key, *value;
	int mapping;

	table->backend = TABLE_INLINE;
	for (;;) {
		do {
			t = next(p);
		} while (t->type == TOK_NEWLINE);
		if (t->type == TOK_RBRACE)
			break;
		if (t->type == TOK_EOF)
			return parse_error(p, line,
					   "table \"%s\": missing \"}\"",
					   table->name);
		if (get_table_item(p, table, t, &key) == -1)
			return -1;
		value = NULL;
		if (peek(p)->type == TOK_EQUAL) {
			next(p);
			if (get_table_item(p, table, next(p), &value) == -1) {
				free(key);
				return -1;
			}
		}
		mapping = value != NULL;
		if (table->nentries > 0 && mapping != table->is_mapping) {
			free(key);
			free(value);
			return parse_error(
			    p, p->cur.line,
			    "table \"%s\": cannot mix list entries and "
			    "key = value entries",
			    table->name);
		}
		table->is_mapping = mapping;
		if (table_add_entry(p, table, key, value, p->cur.line) == -1)
			return -1;
		if (peek(p)->type == TOK_COMMA)
			next(p);
	}
	return 0;
}

static int
parse_table(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config *conf = p->conf;
	struct table *table;
	char name[CONF_NAME_MAX];
	struct token *t;
	const char *path;

	(void)keyword;
	if (get_string(p, name, sizeof(name), "table name") == -1)
		return -1;
	if (!valid_name(name, "{}<>,=!\"'#"))
		return parse_error(p, line, "invalid table name \"%s\"", name);
	if (config_find_table(conf, name) != NULL)
		return parse_error(p, line, "table \"%s\" already defined",
				   name);
	if ((table = calloc(1, sizeof(*table))) == NULL)
		return parse_error(p, line, "out of memory");
	memcpy(table->name, name, sizeof(table->name));
	TAILQ_INSERT_TAIL(&conf->tables, table, entry);

	t = next(p);
	if (t->type == TOK_LBRACE)
		return parse_table_inline(p, table, line);
	if (!is_value(t))
		return unexpected(p, t, "table source");
	if (strncmp(t->text, "file:", 5) == 0) {
		table->backend = TABLE_FILE;
		path = t->text + 5;
	} else if (strncmp(t->text, "db:", 3) == 0) {
		table->backend = TABLE_DB;
		path = t->text + 3;
	} else if (t->text[0] == '/') {
		table->backend = TABLE_FILE;
		path = t->text;
	} else {
		char show[ERR_TOKEN_SHOW + 8];

		return parse_error(
		    p, t->line,
		    "unknown table source \"%s\" (expected file:/path, "
		    "db:/path or { ... })",
		    token_show(t, show, sizeof(show)));
	}
	if (path[0] != '/')
		return parse_error(p, t->line,
				   "table \"%s\": path must be absolute", name);
	if (strlen(path) >= sizeof(table->path))
		return parse_error(
		    p, t->line,
		    "table \"%s\": path is too long (at most %zu characters)",
		    name, sizeof(table->path) - 1);
	memcpy(table->path, path, strlen(path) + 1);
	return 0;
}

/*
 * listen on ADDR|IFACE|localhost|any [options]
 */

enum listen_family {
	FAMILY_ANY,
	FAMILY_INET4,
	FAMILY_INET6,
};

static int
same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4, *b4;
	const struct sockaddr_in6 *a6, *b6;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		a4 = (const struct sockaddr_in *)(const void *)a;
		b4 = (const struct sockaddr_in *)(const void *)b;
		return a4->sin_port == b4->sin_port &&
		       a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	a6 = (const struct sockaddr_in6 *)(const void *)a;
	b6 = (const struct sockaddr_in6 *)(const void *)b;
	return a6->sin6_port == b6->sin6_port &&
	       a6->sin6_scope_id == b6->sin6_scope_id &&
	       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) ==
		   0;
}

/* Add one listener for `sa' (port filled in here) from the template. */
static int
add_listener(struct parser *p, const struct listener *tmpl,
	     const struct sockaddr *sa, int line, struct listener **first,
	     int *n)
{
	struct listener *l, *other;
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	char addr[INET6_ADDRSTRLEN];

	if ((l = malloc(sizeof(*l))) == NULL)
		return parse_error(p, line, "out of memory");
	*l = *tmpl;
	memset(&l->ss, 0, sizeof(l->ss));
	if (sa->sa_family == AF_INET) {
		l->sslen = sizeof(struct sockaddr_in);
		memcpy(&l->ss, sa, l->sslen);
		sin = (struct sockaddr_in *)(void *)&l->ss;
		sin->sin_port = htons(l->port);
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
	} else {
		l->sslen = sizeof(struct sockaddr_in6);
		memcpy(&l->ss, sa, l->sslen);
		sin6 = (struct sockaddr_in6 *)(void *)&l->ss;
		sin6->sin6_port = htons(l->port);
		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
	}
	TAILQ_FOREACH(other, &p->conf->listeners, entry)
	if (same_address(&other->ss, &l->ss)) {
		free(l);
		return parse_error(p, line, "duplicate listener on %s port %u",
				   addr, (unsigned)tmpl->port);
	}
	TAILQ_INSERT_TAIL(&p->conf->listeners, l, entry);
	if (*first == NULL)
		*first = l;
	(*n)++;
	return 0;
}

static int
add_listener_text(struct parser *p, const struct listener *tmpl, int family,
		  const char *text, int line, struct listener **first, int *n)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (family == AF_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		if (inet_pton(AF_INET, text, &sin.sin_addr) != 1)
			return parse_error(p, line, "bad address %s", text);
		return add_listener(p, tmpl, (struct sockaddr *)(void *)&sin,
				    line, first, n);
	}
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	if (inet_pton(AF_INET6, text, &sin6.sin6_addr) != 1)
		return parse_error(p, line, "bad address %s", text);
	return add_listener(p, tmpl, (struct sockaddr *)(void *)&sin6, line,
			    first, n);
}

static int
family_allowed(enum listen_family family, int af)
{
	return family == FAMILY_ANY ||
	       (family == FAMILY_INET4 && af == AF_INET) ||
	       (family == FAMILY_INET6 && af == AF_INET6);
}

static int
expand_interface(struct parser *p, const struct listener *tmpl,
		 enum listen_family family, int line, struct listener **first,
		 int *n)
{
	struct ifaddrs *ifap, *ifa;
	int found = 0, rc = 0;

	if (getifaddrs(&ifap) == -1)
		return parse_error(p, line, "getifaddrs: %s", strerror(errno));
	for (ifa = ifap; ifa != NULL && rc == 0; ifa = ifa->ifa_next) {
		if (ifa->ifa_name == NULL ||
		    strcmp(ifa->ifa_name, tmpl->ifname) != 0)
			continue;
		found = 1;
		if (ifa->ifa_addr == NULL ||
		    (ifa->ifa_addr->sa_family != AF_INET &&
		     ifa->ifa_addr->sa_family != AF_INET6) ||
		    !family_allowed(family, ifa->ifa_addr->sa_family))
			continue;
		rc = add_listener(p, tmpl, ifa->ifa_addr, line, first, n);
	}
	freeifaddrs(ifap);
	if (rc == -1)
		return -1;
	if (!found)
		return parse_error(p, line,
				   "unknown interface or address \"%s\"",
				   tmpl->ifname);
	if (*n == 0)
		return parse_error(p, line,
				   "interface \"%s\" has no usable address",
				   tmpl->ifname);
	return 0;
}

/* One listen statement may create several listeners: localhost, any, an
 * interface with several addresses. */
static int
expand_listen(struct parser *p, const struct listener *tmpl,
	      enum listen_family family, int line, struct listener **first,
	      int *n)
{
	const char *name = tmpl->ifname;
	struct addrinfo hints, *res;
	struct in_addr in4;
	int rc;

	if (strcmp(name, "localhost") == 0 || strcmp(name, "lo") == 0 ||
	    strcmp(name, "any") == 0 || strcmp(name, "all") == 0) {
		int local = name[0] == 'l';

		if (family != FAMILY_INET6 &&
		    add_listener_text(p, tmpl, AF_INET,
				      local ? "127.0.0.1" : "0.0.0.0", line,
				      first, n) == -1)
			return -1;
		if (family != FAMILY_INET4 &&
		    add_listener_text(p, tmpl, AF_INET6, local ? "::1" : "::",
				      line, first, n) == -1)
			return -1;
		return 0;
	}
	if (inet_pton(AF_INET, name, &in4) == 1) {
		if (family == FAMILY_INET6)
			return parse_error(p, line,
					   "%s is not an inet6 address", name);
		return add_listener_text(p, tmpl, AF_INET, name, line, first,
					 n);
	}
	if (strchr(name, ':') != NULL) {
		/* getaddrinfo rather than inet_pton: fe80::1%eth0 */
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_INET6;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		if (getaddrinfo(name, NULL, &hints, &res) != 0 || res == NULL)
			return parse_error(p, line,
					   "invalid IPv6 address \"%s\"", name);
		if (family == FAMILY_INET4 ||
		    res->ai_addrlen > sizeof(struct sockaddr_storage)) {
			freeaddrinfo(res);
			return parse_error(p, line,
					   "%s is not an inet4 address", name);
		}
		rc = add_listener(p, tmpl, res->ai_addr, line, first, n);
		freeaddrinfo(res);
		return rc;
	}
	return expand_interface(p, tmpl, family, line, first, n);
}

static int
listen_option_twice(struct parser *p, const struct token *t)
{
	return parse_error(p, t->line, "listen option \"%s\" given twice",
			   t->text);
}

static int
parse_listen(struct parser *p, const char *keyword, int line)
{
	struct listener tmpl, *first = NULL;
	enum listen_family family = FAMILY_ANY;
	struct token *t;
	int n = 0, have_port = 0, family_set = 0;
	int tls_set = 0, auth_set = 0;
	int submission_set = 0;
	struct ref *r;

	(void)keyword;
	memset(&tmpl, 0, sizeof(tmpl));
	if (!is_keyword(t = next(p), "on"))
		return unexpected(p, t, "\"on\" after listen");
	if (get_string(p, tmpl.ifname, sizeof(tmpl.ifname),
		       "address or interface for listen on") == -1)
		return -1;

	while (!is_end(t = peek(p))) {
		t = next(p);
		if (is_keyword(t, "inet4") || is_keyword(t, "inet6")) {
			if (family_set++)
				return listen_option_twice(p, t);
			family =
			    t->text[4] == '4' ? FAMILY_INET4 : FAMILY_INET6;
		} else if (is_keyword(t, "port")) {
			if (have_port++)
				return listen_option_twice(p, t);
			if (get_port(p, "listen port", &tmpl.port) == -1)
				return -1;
			if (tmpl.port == 587)
				tmpl.submission = 1;
		} else if (is_keyword(t, "tls") ||
			   is_keyword(t, "tls-require") ||
			   is_keyword(t, "smtps")) {
			if (tls_set++)
				return parse_error(
				    p, t->line,
				    "only one of tls, tls-require and smtps "
				    "may be given");
			tmpl.tls = is_keyword(t, "tls") ? LISTEN_TLS_STARTTLS
				   : is_keyword(t, "smtps")
				       ? LISTEN_TLS_SMTPS
				       : LISTEN_TLS_REQUIRE;
		} else if (is_keyword(t, "pki")) {
			if (tmpl.pki[0] != '\0')
				return listen_option_twice(p, t);
			if (get_value(p, "pki name", &t) == -1 ||
			    copy_value(p, t, tmpl.pki, sizeof(tmpl.pki),
				       "pki name") == -1 ||
			    add_ref(p, REF_PKI, t->line, tmpl.pki) == NULL)
				return -1;
		} else if (is_keyword(t, "auth") ||
			   is_keyword(t, "auth-optional")) {
			if (auth_set++)
				return parse_error(
				    p, t->line,
				    "only one of auth and auth-optional may "
				    "be given");
			tmpl.auth = is_keyword(t, "auth")
					? LISTEN_AUTH_REQUIRE
					: LISTEN_AUTH_OPTIONAL;
			if (peek(p)->type == TOK_TABLE &&
			    get_table_ref(p, tmpl.auth_table,
					  sizeof(tmpl.auth_table), 1,
					  "<table>") == -1)
				return -1;
		} else if (is_keyword(t, "hostname")) {
			if (tmpl.hostname[0] != '\0')
				return listen_option_twice(p, t);
			if (get_value(p, "listener hostname", &t) == -1 ||
			    copy_value(p, t, tmpl.hostname,
				       sizeof(tmpl.hostname),
				       "listener hostname") == -1)
				return -1;
			if (!valid_hostname(tmpl.hostname))
				return parse_error(p, t->line,
						   "invalid hostname \"%s\"",
						   tmpl.hostname);
		} else if (is_keyword(t, "tag")) {
			if (tmpl.tag[0] != '\0')
				return listen_option_twice(p, t);
			if (get_value(p, "tag name", &t) == -1 ||
			    copy_value(p, t, tmpl.tag, sizeof(tmpl.tag),
				       "tag") == -1)
				return -1;
			if (!valid_name(tmpl.tag, "{}<>,=!\"'#"))
				return parse_error(
				    p, t->line, "invalid tag \"%s\"", tmpl.tag);
		} else if (is_keyword(t, "senders")) {
			if (tmpl.senders_checked++)
				return listen_option_twice(p, t);
			if (get_table_ref(p, tmpl.senders_table,
					  sizeof(tmpl.senders_table), 1,
					  "<table> after senders") == -1)
				return -1;
		} else if (is_keyword(t, "check-sender-domain")) {
			if (tmpl.check_sender_domain++)
				return listen_option_twice(p, t);
		} else if (is_keyword(t, "submission")) {
			if (submission_set++)
				return listen_option_twice(p, t);
			tmpl.submission = 1;
		} else if (is_keyword(t, "auth-plaintext")) {
			/* AUTH offered without TLS too */
			if (tmpl.auth_plain_ok++)
				return listen_option_twice(p, t);
		} else if (is_keyword(t, "auth-cram-md5")) {
			if (tmpl.auth_cram_md5++)
				return listen_option_twice(p, t);
		} else
			return syntax_error(p, t);
	}
	if (!have_port)
		tmpl.port = tmpl.tls == LISTEN_TLS_SMTPS ? 465
			    : tmpl.submission		 ? 587
							 : 25;
	if (expand_listen(p, &tmpl, family, line, &first, &n) == -1)
		return -1;
	if (tmpl.tls != LISTEN_TLS_NONE && tmpl.pki[0] == '\0') {
		if ((r = add_ref(p, REF_LISTENER_TLS, line, tmpl.hostname)) ==
		    NULL)
			return -1;
		r->listener = first;
		r->nlisteners = n;
	}
	return 0;
}

/*
 * action "NAME" METHOD [options]
 */

static const char *const local_options[] = {
    "alias", "virtual", "userbase", "user", "forward-file",
};

static int
is_local_option(const struct token *t)
{
	size_t i;

	for (i = 0; i < sizeof(local_options) / sizeof(local_options[0]); i++)
		if (is_keyword(t, local_options[i]))
			return 1;
	return 0;
}

static int
action_option_twice(struct parser *p, const struct token *t)
{
	return parse_error(p, t->line, "action option \"%s\" given twice",
			   t->text);
}

static int
parse_relay_options(struct parser *p, struct action *a)
{
	struct token *t;
	enum url_scheme scheme = URL_SMTP;
	const char *why;
	int tls_set = 0, host_line = 0;

	while (!is_end(peek(p))) {
		t = next(p);
		if (is_keyword(t, "host")) {
			if (a->relay_host[0] != '\0')
				return action_option_twice(p, t);
			if (get_value(p, "URL after host", &t) == -1 ||
			    copy_value(p, t, a->relay_host,
				       sizeof(a->relay_host),
				       "relay host") == -1)
				return -1;
			host_line = t->line;
			if ((why = check_relay_url(a->relay_host, &scheme)) !=
			    NULL)
				return parse_error(
				    p, t->line,
				    "invalid relay host \"%.64s\": %s",
				    a->relay_host, why);
		} else if (is_keyword(t, "tls")) {
			if (tls_set++)
				return action_option_twice(p, t);
			a->relay_tls = RELAY_TLS_REQUIRE;
			if (is_keyword(peek(p), "verify")) {
				next(p);
				a->relay_tls = RELAY_TLS_VERIFY;
			} else if (is_keyword(peek(p), "no")) {
				next(p);
				a->relay_tls = RELAY_TLS_NO;
			}
		} else if (is_keyword(t, "auth")) {
			if (a->relay_auth_table[0] != '\0')
				return action_option_twice(p, t);
			if (get_table_ref(p, a->relay_auth_table,
					  sizeof(a->relay_auth_table), 1,
					  "<table> after auth") == -1)
				return -1;
			host_line = host_line ? host_line : t->line;
		} else if (is_keyword(t, "helo")) {
			if (a->helo[0] != '\0')
				return action_option_twice(p, t);
			if (get_value(p, "name after helo", &t) == -1 ||
			    copy_value(p, t, a->helo, sizeof(a->helo),
				       "helo name") == -1)
				return -1;
			if (!valid_hostname(a->helo))
				return parse_error(p, t->line,
						   "invalid helo name \"%s\"",
						   a->helo);
		} else if (is_keyword(t, "src")) {
			if (a->relay_src[0] != '\0')
				return action_option_twice(p, t);
			if (get_value(p, "address after src", &t) == -1 ||
			    copy_value(p, t, a->relay_src, sizeof(a->relay_src),
				       "src address") == -1)
				return -1;
			if (!valid_ip(a->relay_src))
				return parse_error(
				    p, t->line,
				    "src must be an IPv4 or IPv6 address");
		} else if (is_local_option(t))
			return parse_error(
			    p, t->line,
			    "\"%s\" is not valid for a relay action", t->text);
		else
			return syntax_error(p, t);
	}
	/* credentials are only ever sent to a named smarthost, never to
	 * whatever MX a recipient domain happens to publish */
	if (a->relay_auth_table[0] != '\0' && a->relay_host[0] == '\0')
		return parse_error(p, host_line,
				   "relay auth requires a relay host");
	switch (scheme) {
	case URL_SMTPS:
	case URL_SMTP_TLS:
		if (tls_set && a->relay_tls == RELAY_TLS_NO)
			return parse_error(
			    p, host_line,
			    "\"tls no\" contradicts the relay host URL");
		if (!tls_set)
			a->relay_tls = RELAY_TLS_REQUIRE;
		else if (scheme == URL_SMTPS &&
			 a->relay_tls == RELAY_TLS_REQUIRE)
			a->relay_tls = RELAY_TLS_VERIFY;
		break;
	case URL_SMTP_NOTLS:
		if (tls_set && a->relay_tls != RELAY_TLS_NO)
			return parse_error(
			    p, host_line,
			    "tls contradicts the smtp+notls:// relay host");
		a->relay_tls = RELAY_TLS_NO;
		break;
	default:
		break;
	}
	return 0;
}

static int
parse_local_options(struct parser *p, struct action *a)
{
	struct token *t;
	int forward_set = 0;

	while (!is_end(peek(p))) {
		t = next(p);
		if (is_keyword(t, "alias") || is_keyword(t, "virtual")) {
			if (a->alias_table[0] != '\0' ||
			    a->virtual_table[0] != '\0')
				return parse_error(
				    p, t->line,
				    "only one of alias and virtual may be "
				    "given");
			if (get_table_ref(p,
					  t->text[0] == 'a' ? a->alias_table
							    : a->virtual_table,
					  CONF_NAME_MAX, 1, "<table>") == -1)
				return -1;
		} else if (is_keyword(t, "userbase")) {
			if (a->userbase_table[0] != '\0')
				return action_option_twice(p, t);
			if (get_table_ref(p, a->userbase_table,
					  sizeof(a->userbase_table), 1,
					  "<table> after userbase") == -1)
				return -1;
		} else if (is_keyword(t, "user")) {
			if (a->user[0] != '\0')
				return action_option_twice(p, t);
			if (get_value(p, "user name", &t) == -1 ||
			    copy_value(p, t, a->user, sizeof(a->user),
				       "user name") == -1)
				return -1;
			if (!valid_name(a->user, "/:"))
				return parse_error(p, t->line,
						   "invalid user name \"%s\"",
						   a->user);
		} else if (is_keyword(t, "forward-file")) {
			if (forward_set++)
				return action_option_twice(p, t);
			if (get_yesno(p, "forward-file", &a->forward_file) ==
			    -1)
				return -1;
		} else if (is_keyword(t, "host") || is_keyword(t, "helo") ||
			   is_keyword(t, "src") || is_keyword(t, "tls") ||
			   is_keyword(t, "auth"))
			return parse_error(
			    p, t->line,
			    "\"%s\" is only valid for a relay action", t->text);
		else
			return syntax_error(p, t);
	}
	return 0;
}

static int
parse_action(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config *conf = p->conf;
	char name[CONF_NAME_MAX], show[ERR_TOKEN_SHOW + 8];
	struct action *a;
	struct token *t;

	(void)keyword;
	if (get_string(p, name, sizeof(name), "action name") == -1)
		return -1;
	if (config_find_action(conf, name) != NULL)
		return parse_error(p, line, "action \"%s\" already defined",
				   name);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return parse_error(p, line, "out of memory");
	memcpy(a->name, name, sizeof(a->name));
	a->forward_file = 1;
	a->relay_tls = RELAY_TLS_OPPORTUNISTIC;
	TAILQ_INSERT_TAIL(&conf->actions, a, entry);

	t = next(p);
	if (is_keyword(t, "maildir")) {
		a->type = ACTION_MAILDIR;
		t = peek(p);
		if (t->type == TOK_STRING ||
		    (t->type == TOK_WORD && !is_local_option(t))) {
			if (get_string(p, a->path, sizeof(a->path),
				       "maildir template") == -1)
				return -1;
		}
	} else if (is_keyword(t, "mbox")) {
		a->type = ACTION_MBOX;
	} else if (is_keyword(t, "mda")) {
		a->type = ACTION_MDA;
		if (get_string(p, a->path, sizeof(a->path),
			       "command after mda") == -1)
			return -1;
	} else if (is_keyword(t, "lmtp")) {
		a->type = ACTION_LMTP;
		if (get_value(p, "destination after lmtp", &t) == -1 ||
		    copy_value(p, t, a->path, sizeof(a->path),
			       "lmtp destination") == -1)
			return -1;
		if (a->path[0] != '/' && strchr(a->path, ':') == NULL)
			return parse_error(
			    p, t->line,
			    "lmtp destination must be \"/socket\" or "
			    "\"host:port\"");
	} else if (is_keyword(t, "relay")) {
		a->type = ACTION_RELAY;
		return parse_relay_options(p, a);
	} else if (is_value(t))
		return parse_error(
		    p, t->line,
		    "unknown action \"%s\" "
		    "(expected maildir, mbox, mda, lmtp or relay)",
		    token_show(t, show, sizeof(show)));
	else
		return unexpected(p, t, "maildir, mbox, mda, lmtp or relay");
	return parse_local_options(p, a);
}

/*
 * match [!]from ... [!]for ... [criteria] action "NAME" | reject
 */

static const char *const match_keywords[] = {
    "from", "for", "auth", "mail-from", "tls", "helo", "action", "reject",
};

static int
is_match_keyword(const struct token *t)
{
	size_t i;

	for (i = 0; i < sizeof(match_keywords) / sizeof(match_keywords[0]); i++)
		if (is_keyword(t, match_keywords[i]))
			return 1;
	return 0;
}

/*
 * A criterion's value: <table> or a literal.  `optional' accepts only a
 * quoted literal, since a bare word may be the next criterion; and a bare
 * keyword is never a value ("for domain action x" lacks the domain).
 */
static int
get_crit(struct parser *p, struct match_crit *c, int optional, const char *what)
{
	struct token *t = peek(p);

	if (t->type == TOK_TABLE) {
		c->is_table = 1;
		return get_table_ref(p, c->value, sizeof(c->value), 0, what);
	}
	if (optional && t->type != TOK_STRING)
		return 0;
	if (is_match_keyword(t))
		return unexpected(p, next(p), what);
	if (get_value(p, what, &t) == -1 ||
	    copy_value(p, t, c->value, sizeof(c->value), what) == -1)
		return -1;
	if (!valid_pattern(c->value))
		return parse_error(p, t->line, "invalid %s \"%.64s\"", what,
				   c->value);
	return 0;
}

static int
parse_match_from(struct parser *p, struct match *m)
{
	struct token *t = next(p);
	char show[ERR_TOKEN_SHOW + 8];

	if (is_keyword(t, "any"))
		m->from = MATCH_FROM_ANY;
	else if (is_keyword(t, "local"))
		m->from = MATCH_FROM_LOCAL;
	else if (is_keyword(t, "socket"))
		m->from = MATCH_FROM_SOCKET;
	else if (is_keyword(t, "src")) {
		m->from = MATCH_FROM_SRC;
		if (get_crit(p, &m->from_crit, 0,
			     "<table> or address after src") == -1)
			return -1;
		if (!m->from_crit.is_table && !valid_cidr(m->from_crit.value))
			return parse_error(
			    p, p->cur.line,
			    "invalid address \"%.64s\" after src",
			    m->from_crit.value);
	} else if (is_keyword(t, "rdns")) {
		m->from = MATCH_FROM_RDNS;
		return get_crit(p, &m->from_crit, 1, "rdns domain");
	} else if (is_keyword(t, "auth")) {
		m->from = MATCH_FROM_AUTH;
		return get_crit(p, &m->from_crit, 1, "auth user");
	} else if (is_value(t))
		return parse_error(p, t->line,
				   "unknown \"from\" criterion \"%s\"",
				   token_show(t, show, sizeof(show)));
	else
		return unexpected(p, t,
				  "any, local, socket, src, rdns or "
				  "auth after from");
	return 0;
}

static int
parse_match_for(struct parser *p, struct match *m)
{
	struct token *t = next(p);
	char show[ERR_TOKEN_SHOW + 8];

	if (is_keyword(t, "any"))
		m->for_ = MATCH_FOR_ANY;
	else if (is_keyword(t, "local"))
		m->for_ = MATCH_FOR_LOCAL;
	else if (is_keyword(t, "domain")) {
		m->for_ = MATCH_FOR_DOMAIN;
		return get_crit(p, &m->for_crit, 0,
				"<table> or domain after domain");
	} else if (is_keyword(t, "rcpt-to")) {
		m->for_ = MATCH_FOR_RCPT;
		return get_crit(p, &m->for_crit, 0,
				"<table> or address after rcpt-to");
	} else if (is_value(t))
		return parse_error(p, t->line,
				   "unknown \"for\" criterion \"%s\"",
				   token_show(t, show, sizeof(show)));
	else
		return unexpected(p, t,
				  "any, local, domain or rcpt-to "
				  "after for");
	return 0;
}

static int
parse_match(struct parser *p, const char *keyword, int line)
{
	struct match *m;
	struct match_crit *crit;
	struct token *t;
	struct ref *r;
	int negate;

	(void)keyword;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return parse_error(p, line, "out of memory");
	m->line = line;
	m->from = MATCH_FROM_LOCAL;
	m->for_ = MATCH_FOR_LOCAL;
	TAILQ_INSERT_TAIL(&p->conf->matches, m, entry);

	for (;;) {
		t = next(p);
		negate = 0;
		if (t->type == TOK_BANG) {
			negate = 1;
			t = next(p);
		}
		if (is_keyword(t, "from"))
			crit = &m->from_crit;
		else if (is_keyword(t, "for"))
			crit = &m->for_crit;
		else if (is_keyword(t, "auth"))
			crit = &m->auth;
		else if (is_keyword(t, "mail-from"))
			crit = &m->mail_from;
		else if (is_keyword(t, "tls"))
			crit = &m->tls;
		else if (is_keyword(t, "helo"))
			crit = &m->helo;
		else if (negate)
			return unexpected(p, t, "criterion after \"!\"");
		else if (is_keyword(t, "action") || is_keyword(t, "reject"))
			break;
		else if (is_end(t))
			return parse_error(
			    p, t->line,
			    "match rule needs \"action NAME\" or \"reject\"");
		else
			return syntax_error(p, t);

		if (crit->set)
			return parse_error(p, t->line,
					   "match criterion \"%s\" given twice",
					   t->text);
		crit->set = 1;
		crit->negate = negate;
		if (crit == &m->from_crit) {
			if (parse_match_from(p, m) == -1)
				return -1;
		} else if (crit == &m->for_crit) {
			if (parse_match_for(p, m) == -1)
				return -1;
		} else if (crit == &m->auth) {
			if (get_crit(p, crit, 1, "auth user") == -1)
				return -1;
		} else if (crit == &m->mail_from) {
			if (get_crit(p, crit, 0,
				     "<table> or address after mail-from") ==
			    -1)
				return -1;
		} else if (crit == &m->helo) {
			if (get_crit(p, crit, 0,
				     "<table> or name after helo") == -1)
				return -1;
		}
	}
	if (is_keyword(t, "reject")) {
		m->reject = 1;
		return 0;
	}
	if (get_string(p, m->action_name, sizeof(m->action_name),
		       "action name") == -1)
		return -1;
	if ((r = add_ref(p, REF_ACTION, line, m->action_name)) == NULL)
		return -1;
	r->match = m;
	return 0;
}

/*
 * The file
 */

static const struct {
	const char *keyword;
	int (*parse)(struct parser *, const char *, int);
} statements[] = {
    {"action", parse_action},
    {"bounce", parse_option},
    {"hostname", parse_hostname_statement},
    {"listen", parse_listen},
    {"mailname", parse_hostname_statement},
    {"match", parse_match},
    {"mda", parse_option},
    {"mta", parse_option},
    {"pki", parse_pki},
    {"queue", parse_option},
    {"resolver", parse_resolver},
    {"smtp", parse_option},
    {"socket", parse_path_statement},
    {"spool", parse_path_statement},
    {"table", parse_table},
};

static int
parse_statement(struct parser *p, struct token *t)
{
	size_t i;

	if (t->type != TOK_WORD)
		return syntax_error(p, t);
	if (peek(p)->type == TOK_EQUAL) {
		if (parse_macro(p) == -1)
			return -1;
		return expect_end(p);
	}
	for (i = 0; i < sizeof(statements) / sizeof(statements[0]); i++)
		if (strcmp(t->text, statements[i].keyword) == 0) {
			if (statements[i].parse(p, statements[i].keyword,
						t->line) == -1)
				return -1;
			return expect_end(p);
		}
	return syntax_error(p, t);
}

/* Everything that names something defined elsewhere in the file. */
static int
resolve_refs(struct parser *p)
{
	struct smtpd_config *conf = p->conf;
	struct listener *l;
	struct table *table;
	struct pki *pki;
	struct ref *r;
	const char *host;
	size_t i;
	int j;

	for (i = 0; i < p->nrefs; i++) {
		r = &p->refs[i];
		switch (r->kind) {
		case REF_TABLE:
		case REF_TABLE_MAPPING:
			if ((table = config_find_table(conf, r->name)) == NULL)
				return parse_error(p, r->line,
						   "no table \"%s\" defined",
						   r->name);
			if (r->kind == REF_TABLE_MAPPING &&
			    table->backend == TABLE_INLINE &&
			    table->nentries > 0 && !table->is_mapping)
				return parse_error(
				    p, r->line,
				    "table \"%s\" must be a key = value "
				    "mapping here",
				    r->name);
			break;
		case REF_PKI:
			if (config_find_pki(conf, r->name) == NULL)
				return parse_error(p, r->line,
						   "no pki \"%s\" defined",
						   r->name);
			break;
		case REF_LISTENER_TLS:
			host = r->name[0] != '\0' ? r->name : conf->hostname;
			if ((pki = config_find_pki(conf, host)) == NULL)
				return parse_error(
				    p, r->line,
				    "tls requires a pki: no \"pki\" option "
				    "and no pki \"%s\" defined",
				    host);
			for (l = r->listener, j = 0;
			     l != NULL && j < r->nlisteners;
			     l = TAILQ_NEXT(l, entry), j++)
				memcpy(l->pki, pki->name, sizeof(l->pki));
			break;
		case REF_PKI_COMPLETE:
			if ((pki = config_find_pki(conf, r->name)) == NULL)
				break;
			if (pki->cert_file[0] == '\0')
				return parse_error(p, r->line,
						   "pki \"%s\" has no cert",
						   r->name);
			if (pki->key_file[0] == '\0')
				return parse_error(p, r->line,
						   "pki \"%s\" has no key",
						   r->name);
			break;
		case REF_ACTION:
			r->match->action = config_find_action(conf, r->name);
			if (r->match->action == NULL)
				return parse_error(p, r->line,
						   "no action \"%s\" defined",
						   r->name);
			break;
		}
	}
	return 0;
}

/* Debian's /etc/mailname, if it holds a usable name. */
static void
read_mailname(char *dst, size_t dstsz)
{
	char line[CONF_HOST_MAX + 2];
	FILE *fp;
	size_t len;

	if ((fp = fopen(MAILNAME_FILE, "re")) == NULL)
		return;
	if (fgets(line, sizeof(line), fp) != NULL) {
		len = strcspn(line, "\r\n");
		line[len] = '\0';
		if (len < dstsz && valid_hostname(line))
			memcpy(dst, line, len + 1);
	}
	fclose(fp);
}

static void
config_finish(struct smtpd_config *conf)
{
	if (conf->mailname[0] == '\0')
		read_mailname(conf->mailname, sizeof(conf->mailname));
	if (conf->mailname[0] == '\0')
		memcpy(conf->mailname, conf->hostname, sizeof(conf->mailname));
}

static struct smtpd_config *
config_new(void)
{
	struct smtpd_config *conf;

	if ((conf = calloc(1, sizeof(*conf))) == NULL)
		return NULL;
	TAILQ_INIT(&conf->tables);
	TAILQ_INIT(&conf->pkis);
	TAILQ_INIT(&conf->listeners);
	TAILQ_INIT(&conf->actions);
	TAILQ_INIT(&conf->matches);
	memcpy(conf->spool, SMTPD_SPOOL_DEFAULT, sizeof(SMTPD_SPOOL_DEFAULT));
	memcpy(conf->socket, SMTPD_SOCKET_DEFAULT,
	       sizeof(SMTPD_SOCKET_DEFAULT));
	if (gethostname(conf->hostname, sizeof(conf->hostname) - 1) == -1)
		conf->hostname[0] = '\0';
	conf->hostname[sizeof(conf->hostname) - 1] = '\0';
	if (conf->hostname[0] == '\0')
		memcpy(conf->hostname, "localhost", sizeof("localhost"));

	conf->smtp_workers = 0;
	conf->max_message_size = 35 * 1024 * 1024;
	conf->max_rcpt = 1000;
	conf->max_line = 1000;
	conf->max_sessions = 10000;
	conf->max_sessions_per_ip = 100;
	conf->max_messages_per_session = 1000;
	conf->vrfy = 1;
	conf->expn = 1;
	conf->timeout_cmd = 5 * 60;
	conf->timeout_data = 10 * 60;

	conf->queue_ttl = 4 * SECONDS_PER_DAY;
	conf->bounce_warn = 4 * 60 * 60;
	conf->retry_local = 60;
	conf->retry_remote = 5 * 60;
	conf->queue_max_inflight = 1000;
	conf->mda_max = 64;
	conf->mta_max_per_dest = 20;

	conf->resolver_port = 53;
	return conf;
}

struct smtpd_config *
config_default(void)
{
	struct smtpd_config *conf;

	if ((conf = config_new()) == NULL)
		return NULL;
	config_finish(conf);
	return conf;
}

/* The whole file in memory, NUL-free or not (the lexer rejects NULs). */
static char *
read_all(FILE *fp, size_t *lenp, const char **why)
{
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, n;

	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if (cap > CONF_FILE_MAX + 8192) {
				*why = "file too large";
				free(buf);
				return NULL;
			}
			if ((nbuf = realloc(buf, cap)) == NULL) {
				*why = "out of memory";
				free(buf);
				return NULL;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (len > CONF_FILE_MAX) {
			*why = "file too large";
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		*why = strerror(errno);
		free(buf);
		return NULL;
	}
	*lenp = len;
	return buf;
}

static void
parser_cleanup(struct parser *p)
{
	struct macro *m;

	while ((m = p->macros) != NULL) {
		p->macros = m->next;
		free(m->name);
		free(m->value);
		free(m);
	}
	free(p->cur.text);
	free(p->ahead.text);
	free(p->refs);
}

struct smtpd_config *
config_parse_file(FILE *fp, const char *name, char *err, size_t errlen)
{
	struct parser p;
	struct token *t;
	struct smtpd_config *conf;
	const char *why = NULL;
	char *buf;
	size_t len;

	memset(&p, 0, sizeof(p));
	p.file = name != NULL ? name : "(config)";
	p.err = err;
	p.errlen = errlen;
	p.line = 1;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	if ((buf = read_all(fp, &len, &why)) == NULL) {
		parse_error(&p, 0, "%s", why);
		return NULL;
	}
	if ((conf = config_new()) == NULL) {
		free(buf);
		parse_error(&p, 0, "out of memory");
		return NULL;
	}
	p.buf = buf;
	p.len = len;
	p.conf = conf;
	if (strlen(p.file) >= sizeof(conf->path))
		parse_error(&p, 0, "file name is too long");
	else
		memcpy(conf->path, p.file, strlen(p.file) + 1);

	while (!p.failed) {
		t = next(&p);
		if (t->type == TOK_EOF || t->type == TOK_ERROR)
			break;
		if (t->type == TOK_NEWLINE)
			continue;
		if (parse_statement(&p, t) == -1)
			break;
	}
	if (!p.failed)
		resolve_refs(&p);
	if (!p.failed)
		config_finish(conf);

	parser_cleanup(&p);
	free(buf);
	if (p.failed) {
		config_free(conf);
		return NULL;
	}
	return conf;
}

struct smtpd_config *
config_parse(const char *path, char *err, size_t errlen)
{
	struct smtpd_config *conf;
	FILE *fp;

	if (path == NULL)
		path = SMTPD_CONF_DEFAULT;
	if ((fp = fopen(path, "re")) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s:0: %s", path,
				 strerror(errno));
		return NULL;
	}
	conf = config_parse_file(fp, path, err, errlen);
	fclose(fp);
	return conf;
}

void
config_free(struct smtpd_config *conf)
{
	struct table *table;
	struct pki *pki;
	struct listener *l;
	struct action *a;
	struct match *m;
	size_t i;

	if (conf == NULL)
		return;
	while ((table = TAILQ_FIRST(&conf->tables)) != NULL) {
		TAILQ_REMOVE(&conf->tables, table, entry);
		for (i = 0; i < table->nentries; i++) {
			free(table->entries[i].key);
			free(table->entries[i].value);
		}
		free(table->entries);
		free(table);
	}
	while ((pki = TAILQ_FIRST(&conf->pkis)) != NULL) {
		TAILQ_REMOVE(&conf->pkis, pki, entry);
		free(pki);
	}
	while ((l = TAILQ_FIRST(&conf->listeners)) != NULL) {
		TAILQ_REMOVE(&conf->listeners, l, entry);
		free(l);
	}
	while ((a = TAILQ_FIRST(&conf->actions)) != NULL) {
		TAILQ_REMOVE(&conf->actions, a, entry);
		free(a);
	}
	while ((m = TAILQ_FIRST(&conf->matches)) != NULL) {
		TAILQ_REMOVE(&conf->matches, m, entry);
		free(m);
	}
	free(conf);
}

struct table *
config_find_table(const struct smtpd_config *conf, const char *name)
{
	struct table *table;

	TAILQ_FOREACH(table, &conf->tables, entry)
	if (strcmp(table->name, name) == 0)
		return table;
	return NULL;
}

struct action *
config_find_action(const struct smtpd_config *conf, const char *name)
{
	struct action *a;

	TAILQ_FOREACH(a, &conf->actions, entry)
	if (strcmp(a->name, name) == 0)
		return a;
	return NULL;
}

struct pki *
config_find_pki(const struct smtpd_config *conf, const char *name)
{
	struct pki *pki;

	TAILQ_FOREACH(pki, &conf->pkis, entry)
	if (strcmp(pki->name, name) == 0)
		return pki;
	return NULL;
}
