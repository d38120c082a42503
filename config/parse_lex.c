/*
 * parse_lex.c -- smtpd.conf's lexer and error reporting: tokens, quoted
 * strings, <table> references, $macros and \ continuations, and the
 * "FILE:LINE: message" every error is reported as.
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
#include "parse.h"

/*
 * Errors
 */

int parse_error(struct parser *, int, const char *, ...)
    __attribute__((__format__(__printf__, 3, 4)));

/* Record the first error only; always returns -1 for "return error(...)". */
int
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
const char *
tok_show(const struct token *t, char *buf, size_t bufsz)
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

int
parse_syntax_error(struct parser *p, const struct token *t)
{
	char show[ERR_TOKEN_SHOW + 8];

	if (t->type == TOK_NEWLINE)
		return parse_error(p, t->line, "unexpected end of line");
	if (t->type == TOK_EOF || t->type == TOK_ERROR)
		return parse_error(p, t->line, "unexpected end of file");
	return parse_error(p, t->line, "syntax error near \"%s\"",
			   tok_show(t, show, sizeof(show)));
}

/* `what' was expected and `t' came instead. */
int
parse_unexpected(struct parser *p, const struct token *t, const char *what)
{
	char show[ERR_TOKEN_SHOW + 8];

	if (t->type == TOK_NEWLINE || t->type == TOK_EOF ||
	    t->type == TOK_ERROR)
		return parse_error(p, t->line, "missing %s", what);
	return parse_error(p, t->line, "syntax error near \"%s\", expected %s",
			   tok_show(t, show, sizeof(show)), what);
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
		/* the old copy wiped: it may hold a table's secret */
		if ((text = recallocarray(t->text, t->cap, cap, 1)) == NULL)
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

int
lex_is_macro_char(int c)
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
	while ((c = lex_char(p, 0)) != -1 && lex_is_macro_char(c)) {
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
 * Parser primitives.  The token returned by tok_next() stays valid until the
 * next call to tok_next(); tok_peek() does not disturb it.
 */

struct token *
tok_peek(struct parser *p)
{
	if (!p->have_ahead) {
		lex(p, &p->ahead);
		p->have_ahead = 1;
	}
	return &p->ahead;
}

struct token *
tok_next(struct parser *p)
{
	struct token tmp;

	tok_peek(p);
	tmp = p->cur;
	p->cur = p->ahead;
	p->ahead = tmp;
	p->have_ahead = 0;
	return &p->cur;
}

int
tok_is_keyword(const struct token *t, const char *keyword)
{
	return t->type == TOK_WORD && strcmp(t->text, keyword) == 0;
}

int
tok_is_value(const struct token *t)
{
	return t->type == TOK_WORD || t->type == TOK_STRING;
}

int
tok_is_end(const struct token *t)
{
	return t->type == TOK_NEWLINE || t->type == TOK_EOF ||
	       t->type == TOK_ERROR;
}

/* A statement ends at a newline or at the end of the file. */
int
tok_expect_end(struct parser *p)
{
	struct token *t = tok_peek(p);

	if (t->type == TOK_NEWLINE) {
		tok_next(p);
		return 0;
	}
	if (t->type == TOK_EOF)
		return 0;
	return parse_syntax_error(p, t);
}

