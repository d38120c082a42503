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
 *
 * The folder config/ is a library: the parser runs in the parent (and in
 * smtpctl, sendmail and makemap, which read smtpd.conf too); config.h, the
 * in-memory form, is what every process inherits across fork().
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
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
 * Free a string that may be a secret (a table entry, a macro's value):
 * wiped first, so that no freed memory a child inherits still holds it.
 */
static void
free_secret(char *s)
{
	if (s != NULL)
		freezero(s, strlen(s) + 1);
}

int
conf_get_value(struct parser *p, const char *what, struct token **tp)
{
	struct token *t = tok_next(p);

	*tp = t;
	if (!tok_is_value(t))
		return parse_unexpected(p, t, what);
	return 0;
}

/* Copy a value into a fixed-size field: never empty, never truncated. */
int
conf_copy_value(struct parser *p, const struct token *t, char *dst, size_t dstsz,
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

int
conf_get_string(struct parser *p, char *dst, size_t dstsz, const char *what)
{
	struct token *t;

	if (conf_get_value(p, what, &t) == -1)
		return -1;
	return conf_copy_value(p, t, dst, dstsz, what);
}

int
conf_get_yesno(struct parser *p, const char *what, int *out)
{
	char expect[128];
	struct token *t = tok_next(p);

	snprintf(expect, sizeof(expect), "yes or no for %s", what);
	if (tok_is_keyword(t, "yes"))
		*out = 1;
	else if (tok_is_keyword(t, "no"))
		*out = 0;
	else
		return parse_unexpected(p, t, expect);
	return 0;
}

struct ref *
conf_add_ref(struct parser *p, enum ref_kind kind, int line, const char *name)
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
int
conf_get_table_ref(struct parser *p, char *dst, size_t dstsz, int mapping,
	      const char *what)
{
	struct token *t = tok_next(p);

	if (t->type != TOK_TABLE)
		return parse_unexpected(p, t, what);
	if (conf_copy_value(p, t, dst, dstsz, "table name") == -1)
		return -1;
	if (conf_add_ref(p, mapping ? REF_TABLE_MAPPING : REF_TABLE, t->line, dst) ==
	    NULL)
		return -1;
	return 0;
}

/*
 * Checks on values
 */

/* Host names as written in a config: LDH labels, "_" tolerated. */
int
conf_valid_hostname(const char *s)
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
int
conf_valid_name(const char *s, const char *extra)
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
int
conf_valid_pattern(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 0;
	return 1;
}

static const struct {
	const char	*word;
	enum relay_tls	 level;
} tls_levels[] = {
	{ "none", RELAY_TLS_NO },
	{ "no", RELAY_TLS_NO },
	{ "may", RELAY_TLS_OPPORTUNISTIC },
	{ "encrypt", RELAY_TLS_REQUIRE },
	{ "verify", RELAY_TLS_VERIFY },
	{ "secure", RELAY_TLS_SECURE },
	{ "dane", RELAY_TLS_DANE },
	{ "dane-only", RELAY_TLS_DANE_ONLY },
};

int
conf_tls_level(const char *word, enum relay_tls *level)
{
	size_t	i;

	for (i = 0; i < sizeof(tls_levels) / sizeof(tls_levels[0]); i++)
		if (strcmp(word, tls_levels[i].word) == 0) {
			*level = tls_levels[i].level;
			return 0;
		}
	return -1;
}

const char *
conf_tls_level_name(enum relay_tls level)
{
	size_t	i;

	for (i = 0; i < sizeof(tls_levels) / sizeof(tls_levels[0]); i++)
		if (tls_levels[i].level == level)
			return tls_levels[i].word;
	return "?";
}

int
conf_valid_ip(const char *s)
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
int
conf_valid_cidr(const char *s)
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


/*
 * scheme://[label@]host[:port] with host a name, an IPv4 address or
 * [IPv6].  Returns an error message or NULL.
 */
const char *
conf_check_relay_url(const char *url, enum url_scheme *scheme)
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
			if (!lex_is_macro_char((unsigned char)*rest) &&
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
		if (!conf_valid_hostname(host))
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
	SCALAR_RATE,	/* 10/s, 300/m, 1000/h: stored per hour */
};

/*
 * A rate "N/s", "N/m" or "N/h" as a count per hour (so 1/h and 1000/s
 * are both whole numbers); -1 when it does not parse.
 */
static long long
parse_rate(const char *s)
{
	const char *end;
	long long v, mult;

	if (parse_decimal(s, &end, &v) != 0)
		return -1;
	if (end[0] == '\0' && v == 0)
		return 0;	/* "0": no limit */
	if (end[0] != '/' || end[1] == '\0' || end[2] != '\0')
		return -1;
	switch (end[1]) {
	case 's':
		mult = 60 * 60;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 1;
		break;
	default:
		return -1;
	}
	if (v > LLONG_MAX / mult)
		return -1;
	return v * mult;
}

/*
 * A rate limit of the smtp workers: "N/s", "N/m", "N/h", "N/d" or
 * "N/DURATION" ("3/10s", "100/2h"): at most N events in any window of
 * that length.  Kept as a count AND a period: 10/m lets a client send
 * 10 at once and then one every 6 seconds, where 600/h would let it send
 * 600 at once.  "0" (no limit) gives 0 and 0.
 */
int
config_parse_rate(const char *s, long long *n, long long *period)
{
	const char	*end;
	long long	 v, t;

	if (parse_decimal(s, &end, &v) != 0)
		return -1;
	if (end[0] == '\0' && v == 0) {
		*n = *period = 0;
		return 0;
	}
	if (end[0] != '/' || end[1] == '\0')
		return -1;
	end++;
	if (end[1] == '\0' && strchr("smhd", end[0]) != NULL) {
		char	one[3] = { '1', end[0], '\0' };

		t = config_parse_duration(one);
	} else if (*end >= '0' && *end <= '9' &&
	    end[strlen(end) - 1] >= 'a')	/* a unit is required */
		t = config_parse_duration(end);
	else
		return -1;
	if (t <= 0)
		return -1;
	*n = v;
	*period = t;
	return 0;
}

/*
 * "smtp client-message-rate RATE" and the like: v is N, *period the
 * window in seconds (the range of N is checked by the caller)
 */
static int
get_rate_window(struct parser *p, const char *what, long long max,
    long long *v, long long *period)
{
	char		 expect[160], show[ERR_TOKEN_SHOW + 8];
	struct token	*t;

	snprintf(expect, sizeof(expect), "rate for %s", what);
	if (conf_get_value(p, expect, &t) == -1)
		return -1;
	if (config_parse_rate(t->text, v, period) == -1)
		return parse_error(p, t->line, "invalid rate \"%s\" for %s "
		    "(N/s, N/m, N/h, N/d or N/DURATION)",
		    tok_show(t, show, sizeof(show)), what);
	if (*period > SECONDS_PER_DAY)
		return parse_error(p, t->line, "the window of %s must be at "
		    "most a day", what);
	if (*v > max)
		return parse_error(p, t->line, "%s must be at most %lld per "
		    "window", what, max);
	if (*v > 0 && *v > *period * 1000)
		return parse_error(p, t->line, "%s must be at most 1000/s",
		    what);
	return 0;
}

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
	case SCALAR_RATE:
		return parse_rate(one) >= 0;
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
	    [SCALAR_RATE] = "rate",
	};
	char expect[128], show[ERR_TOKEN_SHOW + 8];
	struct token *t;
	const char *end;
	long long v;
	int rc;

	snprintf(expect, sizeof(expect), "%s for %s", kind_name[kind], what);
	if (conf_get_value(p, expect, &t) == -1)
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
	case SCALAR_RATE:
		v = parse_rate(t->text);
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
				   tok_show(t, show, sizeof(show)), what);
	if (rc == -2 || v < min || v > max)
		return parse_error(p, t->line,
				   "%s must be between %lld and %lld", what,
				   min, max);
	*out = v;
	return 0;
}

int
conf_get_duration(struct parser *p, const char *what, long long min,
    long long max, time_t *out)
{
	long long v;

	if (get_scalar(p, SCALAR_SECONDS, what, min, max, &v) == -1)
		return -1;
	*out = (time_t)v;
	return 0;
}

int
conf_get_port(struct parser *p, const char *what, uint16_t *port)
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
	STORE_RATE,	/* struct conf_rate: count and period */
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

#define RATE_OPTION(name, k)                                                   \
	{                                                                      \
		"smtp", name, SCALAR_RATE, 0, STORE_RATE,                      \
		    offsetof(struct smtpd_config, rate) +                      \
			(k) * sizeof(struct conf_rate), 0, 1000000             \
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
    /* rate limits (common/ratelimit.c), named after Postfix's anvil
     * settings; N up to a million per window, the window up to a day */
    RATE_OPTION("client-connection-rate", RATE_CLIENT_CONN),
    RATE_OPTION("client-message-rate", RATE_CLIENT_MSG),
    RATE_OPTION("client-rcpt-rate", RATE_CLIENT_RCPT),
    RATE_OPTION("client-auth-failures", RATE_CLIENT_AUTHFAIL),
    RATE_OPTION("user-message-rate", RATE_USER_MSG),
    RATE_OPTION("user-rcpt-rate", RATE_USER_RCPT),
    OPTION("smtp", "vrfy", SCALAR_COUNT, 1, STORE_INT, vrfy, 0, 1),
    OPTION("smtp", "expn", SCALAR_COUNT, 1, STORE_INT, expn, 0, 1),
    OPTION("smtp", "timeout", SCALAR_SECONDS, 0, STORE_TIME, timeout_cmd, 1,
	   SECONDS_PER_DAY),
    OPTION("smtp", "data-timeout", SCALAR_SECONDS, 0, STORE_TIME, timeout_data,
	   1, SECONDS_PER_DAY),
    /* slowloris: deadlines per record, not reset by every byte */
    OPTION("smtp", "command-deadline", SCALAR_SECONDS, 0, STORE_TIME,
	   deadline_cmd, 0, SECONDS_PER_DAY),
    OPTION("smtp", "data-deadline", SCALAR_SECONDS, 0, STORE_TIME,
	   deadline_data, 0, SECONDS_PER_DAY),
    OPTION("smtp", "data-min-rate", SCALAR_BYTES, 0, STORE_SIZE, data_min_rate,
	   0, 1024 * 1024 * 1024),
    OPTION("smtp", "data-rate-grace", SCALAR_SECONDS, 0, STORE_TIME,
	   data_rate_grace, 1, SECONDS_PER_DAY),
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
    /* slow start: a destination's first sessions (mta/mta_window.c) */
    OPTION("mta", "initial-conn-per-host", SCALAR_COUNT, 0, STORE_INT,
	   mta_initial_per_dest, 1, 1000),
    /* 0, the default, sets no limit; 1/h .. 1000/s */
    OPTION("mta", "rate-per-dest", SCALAR_RATE, 0, STORE_INT,
	   mta_rate_per_dest, 0, 1000 * 60 * 60),
    /* at most MTA_TASK_MAX_RCPT (mta/mta.h) */
    OPTION("mta", "max-rcpt-per-msg", SCALAR_COUNT, 0, STORE_INT,
	   mta_max_rcpt, 1, 100),
    OPTION("mta", "backoff-per-host", SCALAR_SECONDS, 0, STORE_TIME,
	   mta_backoff, 1, SECONDS_PER_DAY),
    /* 0, the default, sets no pace */
    OPTION("mta", "delay-per-dest", SCALAR_SECONDS, 0, STORE_TIME,
	   mta_delay_per_dest, 0, SECONDS_PER_DAY),
    /* MTA-STS policies of MX destinations (RFC 8461); on by default */
    OPTION("mta", "mta-sts", SCALAR_COUNT, 1, STORE_INT, mta_sts, 0, 1),
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
	t = tok_next(p);
	if (!tok_is_value(t)) {
		snprintf(what, sizeof(what), "option after \"%s\"", section);
		return parse_unexpected(p, t, what);
	}
	for (i = 0; i < sizeof(option_specs) / sizeof(option_specs[0]); i++)
		if (strcmp(option_specs[i].section, section) == 0 &&
		    tok_is_keyword(t, option_specs[i].name)) {
			spec = &option_specs[i];
			break;
		}
	if (spec == NULL)
		return parse_error(p, t->line, "unknown %s option \"%s\"",
				   section, tok_show(t, show, sizeof(show)));
	snprintf(what, sizeof(what), "%s %s", section, spec->name);
	field = (char *)p->conf + spec->offset;
	if (spec->store == STORE_RATE) {
		struct conf_rate	*r = (struct conf_rate *)(void *)field;
		long long		 period;

		if (get_rate_window(p, what, spec->max, &v, &period) == -1)
			return -1;
		r->n = (int)v;
		r->period = (int)period;
		return 0;
	}
	if (spec->yesno) {
		if (conf_get_yesno(p, what, &yes) == -1)
			return -1;
		v = yes;
	} else if (get_scalar(p, spec->kind, what, spec->min, spec->max, &v) ==
		   -1)
		return -1;
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
	case STORE_RATE:	/* above */
		break;
	}
	return 0;
}

/*
 * mta tls-policy <table>: per-destination TLS levels (tls_policy.h)
 * mta ca-file "FILE": the CAs "tls verify" and "secure" trust
 * mta OPTION VALUE: the numeric settings above
 */
static int
parse_mta(struct parser *p, const char *section, int line)
{
	struct smtpd_config *conf = p->conf;
	struct token *t = tok_peek(p);
	int kwline = t->line;

	if (tok_is_keyword(t, "tls-policy")) {
		tok_next(p);
		if (conf->mta_tls_policy[0] != '\0')
			return parse_error(p, kwline,
			    "mta tls-policy given twice");
		conf->mta_tls_policy_line = kwline;
		return conf_get_table_ref(p, conf->mta_tls_policy,
		    sizeof(conf->mta_tls_policy), 1,
		    "<table> after mta tls-policy");
	}
	if (tok_is_keyword(t, "ca-file")) {
		tok_next(p);
		if (conf->mta_ca_file[0] != '\0')
			return parse_error(p, kwline,
			    "mta ca-file given twice");
		conf->mta_ca_file_line = kwline;
		if (conf_get_value(p, "file for mta ca-file", &t) == -1 ||
		    conf_copy_value(p, t, conf->mta_ca_file,
		    sizeof(conf->mta_ca_file), "mta ca-file") == -1)
			return -1;
		if (conf->mta_ca_file[0] != '/')
			return parse_error(p, t->line,
			    "mta ca-file must be an absolute path");
		return 0;
	}
	return parse_option(p, section, line);
}

/*
 * smtp rate-exempt NET | { NET ... }: client networks no rate limit
 * applies to (common/ratelimit.c)
 * smtp OPTION VALUE: the settings above
 */
static int
parse_smtp(struct parser *p, const char *section, int line)
{
	struct smtpd_config *conf = p->conf;
	struct token *t = tok_peek(p);
	int kwline = t->line;

	if (tok_is_keyword(t, "rate-exempt")) {
		tok_next(p);
		if (conf->nrate_exempt > 0)
			return parse_error(p, kwline,
			    "smtp rate-exempt given twice");
		return conf_get_nets(p, "smtp rate-exempt", conf->rate_exempt,
		    &conf->nrate_exempt, RATE_EXEMPT_MAX, "exempt networks");
	}
	return parse_option(p, section, line);
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
	if (conf_get_value(p, what, &t) == -1 ||
	    conf_copy_value(p, t, dst, CONF_PATH_MAX, what) == -1)
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
	if (conf_get_value(p, what, &t) == -1 ||
	    conf_copy_value(p, t, dst, CONF_HOST_MAX, what) == -1)
		return -1;
	if (!conf_valid_hostname(dst))
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
	if (conf_get_value(p, "address for resolver", &t) == -1 ||
	    conf_copy_value(p, t, conf->resolver, sizeof(conf->resolver),
		       "resolver address") == -1)
		return -1;
	if (!conf_valid_ip(conf->resolver))
		return parse_error(p, t->line,
				   "resolver must be an IPv4 or IPv6 address");
	conf->resolver_port = 53;
	if (tok_is_keyword(tok_peek(p), "port")) {
		tok_next(p);
		return conf_get_port(p, "resolver port", &conf->resolver_port);
	}
	return 0;
}

/*
 * "metrics listen on ADDR [port N]": the address (an IP address, no
 * name: it is bound before any resolver runs) of the Prometheus
 * endpoint, port 9180 unless given (control/metrics_http.c).
 */
#define METRICS_PORT_DEFAULT	9180

static int
parse_metrics(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config *conf = p->conf;
	struct token *t;

	(void)keyword;
	if (!tok_is_keyword(tok_peek(p), "listen"))
		return parse_error(p, line, "expected \"listen on\" after "
				   "metrics");
	tok_next(p);
	if (!tok_is_keyword(tok_peek(p), "on"))
		return parse_error(p, line, "expected \"on\" after "
				   "metrics listen");
	tok_next(p);
	if (conf->metrics_addr[0] != '\0')
		return parse_error(p, line, "metrics listen given twice");
	if (conf_get_value(p, "address for metrics listen on", &t) == -1 ||
	    conf_copy_value(p, t, conf->metrics_addr,
		       sizeof(conf->metrics_addr), "metrics address") == -1)
		return -1;
	if (!conf_valid_ip(conf->metrics_addr))
		return parse_error(p, t->line, "metrics listen on: \"%s\" "
				   "is not an IPv4 or IPv6 address",
				   conf->metrics_addr);
	conf->metrics_port = METRICS_PORT_DEFAULT;
	if (tok_is_keyword(tok_peek(p), "port")) {
		tok_next(p);
		return conf_get_port(p, "metrics port", &conf->metrics_port);
	}
	return 0;
}

/*
 * "dnssec trust-anchor FILE": the DNSSEC trust anchors lookup validates
 * DANE's lookups with (lookup/dns.c reads the file, as the unprivileged
 * lookup user, at its start).  Checked here so that a typo is an error
 * with its line, not a lookup process that dies at start.
 */
static int
parse_dnssec(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config *conf = p->conf;
	struct token *t;

	(void)keyword;
	if (!tok_is_keyword(tok_peek(p), "trust-anchor"))
		return parse_error(p, line,
				   "expected \"trust-anchor\" after dnssec");
	tok_next(p);
	if (conf_get_value(p, "file for dnssec trust-anchor", &t) == -1 ||
	    conf_copy_value(p, t, conf->dnssec_anchor,
		       sizeof(conf->dnssec_anchor), "trust anchor file") == -1)
		return -1;
	if (conf->dnssec_anchor[0] != '/')
		return parse_error(p, t->line,
				   "dnssec trust-anchor must be an absolute path");
	if (access(conf->dnssec_anchor, R_OK) == -1)
		return parse_error(p, t->line, "dnssec trust-anchor %s: %s",
				   conf->dnssec_anchor, strerror(errno));
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
		if (!lex_is_macro_char((unsigned char)t->text[i]))
			break;
	if (i != t->len || (t->text[0] >= '0' && t->text[0] <= '9'))
		return parse_error(p, line, "invalid macro name \"%s\"",
				   t->text);
	if ((name = strdup(t->text)) == NULL)
		return parse_error(p, line, "out of memory");
	tok_next(p); /* = */
	t = tok_next(p);
	if (!tok_is_value(t)) {
		free(name);
		return parse_unexpected(p, t, "macro value");
	}
	if ((value = strdup(t->text)) == NULL) {
		free(name);
		return parse_error(p, line, "out of memory");
	}
	for (m = p->macros; m != NULL; m = m->next)
		if (strcmp(m->name, name) == 0) {
			free_secret(m->value);
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
	if (conf_get_string(p, name, sizeof(name), "pki name") == -1)
		return -1;
	if (!conf_valid_name(name, ""))
		return parse_error(p, line, "invalid pki name \"%s\"", name);
	t = tok_next(p);
	if (!tok_is_keyword(t, "cert") && !tok_is_keyword(t, "key"))
		return parse_unexpected(p, t, "cert or key after pki name");
	what = tok_is_keyword(t, "cert") ? "cert" : "key";
	if ((pki = config_find_pki(conf, name)) == NULL) {
		if (config_pki_index(conf, TAILQ_LAST(&conf->pkis, pkilist)) ==
		    CONF_MAX_PKIS - 1)
			return parse_error(p, line, "too many pkis (at most %d)",
			    CONF_MAX_PKIS);
		if ((pki = calloc(1, sizeof(*pki))) == NULL)
			return parse_error(p, line, "out of memory");
		memcpy(pki->name, name, sizeof(pki->name));
		TAILQ_INSERT_TAIL(&conf->pkis, pki, entry);
		if (conf_add_ref(p, REF_PKI_COMPLETE, line, name) == NULL)
			return -1;
	}
	dst = what[0] == 'c' ? pki->cert_file : pki->key_file;
	if (dst[0] != '\0')
		return parse_error(p, line, "pki \"%s\": %s already specified",
				   name, what);
	if (conf_get_value(p, what[0] == 'c' ? "cert file" : "key file", &t) == -1 ||
	    conf_copy_value(p, t, dst, CONF_PATH_MAX,
		       what[0] == 'c' ? "cert file" : "key file") == -1)
		return -1;
	if (dst[0] != '/')
		return parse_error(
		    p, t->line, "pki %s file must be an absolute path", what);
	if (what[0] == 'c')
		pki->cert_line = line;
	else
		pki->key_line = line;
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
			free_secret(key);
			free_secret(value);
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
				free_secret(key);
				free_secret(value);
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
	if (!tok_is_value(t))
		return parse_unexpected(p, t, "table entry");
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
			t = tok_next(p);
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
		if (tok_peek(p)->type == TOK_EQUAL) {
			tok_next(p);
			if (get_table_item(p, table, tok_next(p), &value) == -1) {
				free_secret(key);
				return -1;
			}
		}
		mapping = value != NULL;
		if (table->nentries > 0 && mapping != table->is_mapping) {
			free_secret(key);
			free_secret(value);
			return parse_error(
			    p, p->cur.line,
			    "table \"%s\": cannot mix list entries and "
			    "key = value entries",
			    table->name);
		}
		table->is_mapping = mapping;
		if (table_add_entry(p, table, key, value, p->cur.line) == -1)
			return -1;
		if (tok_peek(p)->type == TOK_COMMA)
			tok_next(p);
	}
	return 0;
}

/*
 * The shared-table backends (table/remote.c answers them in lookup):
 * "pgsql:/etc/posthaste/users.conf" (ldap: and redis: likewise name
 * their configuration file), "socketmap:unix:/run/map.sock:NAME" or
 * "socketmap:inet:127.0.0.1:9000:NAME", "proc:/usr/libexec/table-x".
 * Returns the length of the scheme with its colon, or 0.
 */
static const char *const remote_schemes[] = {
	"pgsql", "ldap", "redis", "socketmap", "proc",
};

static size_t
table_remote_scheme(const char *s)
{
	size_t	i, n;

	for (i = 0; i < sizeof(remote_schemes) / sizeof(*remote_schemes);
	    i++) {
		n = strlen(remote_schemes[i]);
		if (strncmp(s, remote_schemes[i], n) == 0 && s[n] == ':')
			return n + 1;
	}
	return 0;
}

/*
 * table NAME pgsql:/path [cache-ttl DURATION] [negative-ttl DURATION]
 * The file itself is read and checked by table_remote_load() (the
 * parent, as root: it may hold the database's password).
 */
static int
parse_table_remote(struct parser *p, struct table *table,
    const struct token *t, int line)
{
	size_t		 n = table_remote_scheme(t->text);
	const char	*rest = t->text + n;
	struct token	*o;

	table->backend = TABLE_REMOTE;
	memcpy(table->scheme, t->text, n - 1);
	table->scheme[n - 1] = '\0';
	if (rest[0] == '\0')
		return parse_error(p, t->line, "table \"%s\": %s: needs %s",
		    table->name, table->scheme,
		    strcmp(table->scheme, "socketmap") == 0 ?
		    "unix:/path:NAME or inet:HOST:PORT:NAME" :
		    strcmp(table->scheme, "proc") == 0 ? "a program's path" :
		    "a configuration file's path");
	if (strcmp(table->scheme, "socketmap") != 0 && rest[0] != '/')
		return parse_error(p, t->line,
		    "table \"%s\": path must be absolute", table->name);
	if (strlen(rest) >= sizeof(table->path))
		return parse_error(p, t->line, "table \"%s\": %s is too long "
		    "(at most %zu characters)", table->name, table->scheme,
		    sizeof(table->path) - 1);
	memcpy(table->path, rest, strlen(rest) + 1);
	table->line = line;
	table->cache_ttl = TABLE_CACHE_TTL;
	table->negative_ttl = TABLE_NEGATIVE_TTL;
	for (;;) {
		o = tok_peek(p);
		if (tok_is_keyword(o, "cache-ttl")) {
			(void)tok_next(p);
			if (conf_get_duration(p, "cache-ttl", 0, 86400,
			    &table->cache_ttl) == -1)
				return -1;
		} else if (tok_is_keyword(o, "negative-ttl")) {
			(void)tok_next(p);
			if (conf_get_duration(p, "negative-ttl", 0, 86400,
			    &table->negative_ttl) == -1)
				return -1;
		} else
			break;
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
	if (conf_get_string(p, name, sizeof(name), "table name") == -1)
		return -1;
	if (!conf_valid_name(name, "{}<>,=!\"'#"))
		return parse_error(p, line, "invalid table name \"%s\"", name);
	if (config_find_table(conf, name) != NULL)
		return parse_error(p, line, "table \"%s\" already defined",
				   name);
	if ((table = calloc(1, sizeof(*table))) == NULL)
		return parse_error(p, line, "out of memory");
	memcpy(table->name, name, sizeof(table->name));
	TAILQ_INSERT_TAIL(&conf->tables, table, entry);

	t = tok_next(p);
	if (t->type == TOK_LBRACE)
		return parse_table_inline(p, table, line);
	if (!tok_is_value(t))
		return parse_unexpected(p, t, "table source");
	if (strncmp(t->text, "file:", 5) == 0) {
		table->backend = TABLE_FILE;
		path = t->text + 5;
	} else if (strncmp(t->text, "db:", 3) == 0) {
		table->backend = TABLE_DB;
		path = t->text + 3;
	} else if (t->text[0] == '/') {
		table->backend = TABLE_FILE;
		path = t->text;
	} else if (table_remote_scheme(t->text) > 0) {
		return parse_table_remote(p, table, t, line);
	} else {
		char show[ERR_TOKEN_SHOW + 8];

		return parse_error(
		    p, t->line,
		    "unknown table source \"%s\" (expected file:/path, "
		    "db:/path, pgsql:, ldap:, redis:, socketmap:, proc: or "
		    "{ ... })",
		    tok_show(t, show, sizeof(show)));
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
	table->line = line;
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
    {"dkim", parse_dkim},
    {"dmarc", parse_dmarc},
    {"dnssec", parse_dnssec},
    {"dnsbl", parse_dnsbl},
    {"hostname", parse_hostname_statement},
    {"listen", parse_listen},
    {"mailname", parse_hostname_statement},
    {"match", parse_match},
    {"metrics", parse_metrics},
    {"mda", parse_option},
    {"milter", parse_milter},
    {"mta", parse_mta},
    {"pki", parse_pki},
    {"queue", parse_option},
    {"resolver", parse_resolver},
    {"sendmail", parse_sendmail},
    {"smtp", parse_smtp},
    {"socket", parse_path_statement},
    {"spool", parse_path_statement},
    {"table", parse_table},
    {"tlsrpt", parse_tlsrpt},
};


static int
parse_statement(struct parser *p, struct token *t)
{
	size_t i;

	if (t->type != TOK_WORD)
		return parse_syntax_error(p, t);
	if (tok_peek(p)->type == TOK_EQUAL) {
		if (parse_macro(p) == -1)
			return -1;
		return tok_expect_end(p);
	}
	for (i = 0; i < sizeof(statements) / sizeof(statements[0]); i++)
		if (strcmp(t->text, statements[i].keyword) == 0) {
			if (statements[i].parse(p, statements[i].keyword,
						t->line) == -1)
				return -1;
			return tok_expect_end(p);
		}
	return parse_syntax_error(p, t);
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
		case REF_MILTER:
			if (milter_resolve_ref(p, r) == -1)
				return -1;
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
		if (len < dstsz && conf_valid_hostname(line))
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
	TAILQ_INIT(&conf->milters);
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
	conf->deadline_cmd = 5 * 60;
	conf->deadline_data = 0;
	conf->data_min_rate = 1024;
	conf->data_rate_grace = 60;

	conf->queue_ttl = 4 * SECONDS_PER_DAY;
	conf->bounce_warn = 4 * 60 * 60;
	conf->retry_local = 60;
	conf->retry_remote = 5 * 60;
	conf->queue_max_inflight = 1000;
	conf->mda_max = 64;
	conf->mta_max_per_dest = 20;
	conf->mta_initial_per_dest = 5;	/* Postfix's initial concurrency */
	conf->mta_max_rcpt = 100;
	conf->mta_backoff = 30;
	conf->mta_sts = 1;

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

/*
 * The whole file in memory, NUL-free or not (the lexer rejects NULs).
 * Inline tables may hold secrets (credential hashes, relay passwords)
 * that only one process may keep (config_forget_secrets()): no copy of
 * the text is left behind in freed memory for every child to inherit,
 * here (recallocarray, freezero), in the lexer's token buffers, or in a
 * stdio buffer (config_fopen() makes the stream unbuffered).
 */
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
				freezero(buf, len);
				return NULL;
			}
			/* recallocarray wipes the copy it leaves */
			if ((nbuf = recallocarray(buf, buf ? cap / 2 : 0, cap,
			    1)) == NULL) {
				*why = "out of memory";
				freezero(buf, len);
				return NULL;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (len > CONF_FILE_MAX) {
			*why = "file too large";
			freezero(buf, len);
			return NULL;
		}
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		*why = strerror(errno);
		freezero(buf, len);
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
		free_secret(m->name);
		free_secret(m->value);
		free(m);
	}
	freezero(p->cur.text, p->cur.cap);
	freezero(p->ahead.text, p->ahead.cap);
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
		freezero(buf, len);
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
		t = tok_next(&p);
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
	freezero(buf, len);
	if (p.failed) {
		config_free(conf);
		return NULL;
	}
	return conf;
}

/*
 * A configuration file is a regular file: a FIFO would block the open
 * and a device (sendmail -C /dev/zero) the read, for ever.  So it is
 * opened without waiting, looked at, and only then read (as a stream,
 * bounded by CONF_FILE_MAX in read_all()).  NULL with errno set, EINVAL
 * for anything but a regular file.
 */
FILE *
config_fopen(const char *path)
{
	struct stat	st;
	FILE		*fp;
	int		fd, fl, saved;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1)
		goto fail;
	if ((fp = fdopen(fd, "r")) == NULL)
		goto fail;
	/* no stdio buffer: it would keep a copy of the text (read_all()) */
	if (setvbuf(fp, NULL, _IONBF, 0) != 0) {
		saved = errno;
		fclose(fp);
		errno = saved;
		return NULL;
	}
	return fp;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return NULL;
}

struct smtpd_config *
config_parse(const char *path, char *err, size_t errlen)
{
	struct smtpd_config *conf;
	FILE *fp;

	if (path == NULL)
		path = SMTPD_CONF_DEFAULT;
	if ((fp = config_fopen(path)) == NULL) {
		if (err != NULL && errlen > 0 && errno == EINVAL)
			snprintf(err, errlen, "%s:0: not a regular file",
				 path);
		else if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s:0: %s", path,
				 strerror(errno));
		return NULL;
	}
	conf = config_parse_file(fp, path, err, errlen);
	fclose(fp);
	return conf;
}

static void
table_forget_entries(struct table *table)
{
	size_t i;

	for (i = 0; i < table->nentries; i++) {
		free_secret(table->entries[i].key);
		free_secret(table->entries[i].value);
	}
	freezero(table->entries, table->nentries * sizeof(*table->entries));
	table->entries = NULL;
	table->nentries = 0;
}

static void
table_forget_remote(struct table *table)
{
	if (table->conf_text != NULL)
		freezero(table->conf_text, table->conf_len + 1);
	table->conf_text = NULL;
	table->conf_len = 0;
}

/* is the table named anywhere lookup uses tables (not a relay's auth)? */
static int
table_used_by_lookup(const struct smtpd_config *conf, const char *name)
{
	const struct listener *l;
	const struct action *a;
	const struct match *m;
	const struct match_crit *crits[7];
	size_t i;

	TAILQ_FOREACH(l, &conf->listeners, entry)
		if (strcmp(l->auth_table, name) == 0 ||
		    strcmp(l->senders_table, name) == 0)
			return 1;
	TAILQ_FOREACH(a, &conf->actions, entry)
		if (strcmp(a->alias_table, name) == 0 ||
		    strcmp(a->virtual_table, name) == 0 ||
		    strcmp(a->userbase_table, name) == 0)
			return 1;
	TAILQ_FOREACH(m, &conf->matches, entry) {
		crits[0] = &m->from_crit;
		crits[1] = &m->for_crit;
		crits[2] = &m->auth;
		crits[3] = &m->mail_from;
		crits[4] = &m->tls;
		crits[5] = &m->helo;
		crits[6] = &m->tag;
		for (i = 0; i < sizeof(crits) / sizeof(crits[0]); i++)
			if (crits[i]->is_table &&
			    strcmp(crits[i]->value, name) == 0)
				return 1;
	}
	return 0;
}

void
config_forget_secrets(struct smtpd_config *conf, enum conf_forget which)
{
	struct table *table;
	const struct action *a;
	int relay;

	TAILQ_FOREACH(table, &conf->tables, entry) {
		/* a database's password: only lookup asks databases */
		if (table->backend == TABLE_REMOTE &&
		    which != CONF_FORGET_RELAY_AUTH)
			table_forget_remote(table);
		if (table->backend != TABLE_INLINE)
			continue;
		if (which == CONF_FORGET_RELAY_AUTH) {
			relay = 0;
			TAILQ_FOREACH(a, &conf->actions, entry)
				if (strcmp(a->relay_auth_table,
				    table->name) == 0)
					relay = 1;
			if (!relay || table_used_by_lookup(conf, table->name))
				continue;
		}
		table_forget_entries(table);
		table->forgotten = 1;
	}
}

void
config_free(struct smtpd_config *conf)
{
	struct table *table;
	struct pki *pki;
	struct listener *l;
	struct action *a;
	struct match *m;

	if (conf == NULL)
		return;
	while ((table = TAILQ_FIRST(&conf->tables)) != NULL) {
		TAILQ_REMOVE(&conf->tables, table, entry);
		table_forget_entries(table);
		table_forget_remote(table);
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
	config_free_milters(conf);
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
