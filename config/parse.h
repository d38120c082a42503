/*
 * parse.h -- what parse.c and parse_lex.c share: the parser's state,
 * tokens and the lexer.  Not for use outside smtpd.conf parsing.
 *
 * parse.c (the file, the tables and the checks after it) and
 * parse_rules.c (the listen, action and match statements) call each
 * other both ways on purpose: they are one recursive-descent parser cut
 * in two along its statements.
 */
#ifndef POSTHASTE_PARSE_H
#define POSTHASTE_PARSE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

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
	REF_MILTER,	   /* a chain's "milter NAME": listener or sendmail */
};

struct ref {
	enum ref_kind kind;
	int line;
	char name[CONF_HOST_MAX];
	struct listener *listener; /* REF_LISTENER_TLS: first of n;
				    * REF_MILTER: NULL = the sendmail chain */
	int nlisteners;
	int slot;	     /* REF_MILTER: the place in the chain */
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


int	parse_error(struct parser *p, int line, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
const char	*tok_show(const struct token *t, char *buf, size_t bufsz);
int	parse_syntax_error(struct parser *p, const struct token *t);
int	parse_unexpected(struct parser *p, const struct token *t, const char *what);
int	lex_is_macro_char(int c);
struct token	*tok_peek(struct parser *p);
struct token	*tok_next(struct parser *p);
int	tok_is_keyword(const struct token *t, const char *keyword);
int	tok_is_value(const struct token *t);
int	tok_is_end(const struct token *t);
int	tok_expect_end(struct parser *p);

enum url_scheme {
	URL_SMTP,
	URL_SMTP_TLS,
	URL_SMTPS,
	URL_SMTP_NOTLS,
	URL_LMTP,
};

/* parse.c and parse_rules.c */
int	conf_get_value(struct parser *p, const char *what,
	    struct token **tp);
int	conf_copy_value(struct parser *p, const struct token *t, char *dst,
	    size_t dstsz, const char *what);
int	conf_get_string(struct parser *p, char *dst, size_t dstsz,
	    const char *what);
int	conf_get_yesno(struct parser *p, const char *what, int *out);
struct ref	*conf_add_ref(struct parser *p, enum ref_kind kind, int line,
	    const char *name);
int	conf_get_table_ref(struct parser *p, char *dst, size_t dstsz,
	    int mapping, const char *what);
int	conf_valid_hostname(const char *s);
int	conf_valid_name(const char *s, const char *extra);
int	conf_valid_pattern(const char *s);
int	conf_valid_ip(const char *s);
int	conf_valid_cidr(const char *s);
int	conf_get_nets(struct parser *p, const char *what,
	    char (*nets)[LISTEN_CIDR_MAX], int *n, int max,
	    const char *toomany);
const char	*conf_check_relay_url(const char *url, enum url_scheme *scheme);
int	conf_get_port(struct parser *p, const char *what, uint16_t *port);
int	conf_get_duration(struct parser *p, const char *what, long long min,
	    long long max, time_t *out);

/* parse_milter.c: a chain's names, before its listeners exist */
struct milter_chain {
	int	n;
	int	line;			/* of the "milter" keyword */
	char	name[CONF_MILTER_CHAIN][CONF_NAME_MAX];
	int	lines[CONF_MILTER_CHAIN];
};
int	parse_milter(struct parser *p, const char *keyword, int line);
int	parse_sendmail(struct parser *p, const char *keyword, int line);
int	parse_milter_chain(struct parser *p, struct milter_chain *chain);
int	milter_chain_refs(struct parser *p, const struct milter_chain *chain,
	    struct listener *first, int n);
int	milter_resolve_ref(struct parser *p, const struct ref *r);
void	config_free_milters(struct smtpd_config *conf);

int	parse_listen(struct parser *p, const char *keyword, int line);
int	parse_action(struct parser *p, const char *keyword, int line);
int	parse_match(struct parser *p, const char *keyword, int line);
int	parse_dkim(struct parser *p, const char *keyword, int line);
int	parse_dnsbl(struct parser *p, const char *keyword, int line);
int	parse_dmarc(struct parser *p, const char *keyword, int line);
int	parse_tlsrpt(struct parser *p, const char *keyword, int line);

#endif
