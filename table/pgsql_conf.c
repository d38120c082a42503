/*
 * pgsql_conf.c -- the pgsql: table's configuration file, and what a
 * query's rows mean for each table service.
 *
 * The file (read by the parent as root: it holds the password) is one
 * setting a line, OpenSMTPD's table-postgres style:
 *
 *	conninfo host=127.0.0.1 port=5432 dbname=mail user=u password=p
 *	query_alias SELECT dest FROM aliases WHERE name = $1
 *	pool 2
 *	timeout 5s
 *
 * A '#' starts a comment only at the start of a line (SQL and passwords
 * may hold one).  Each query takes the key as its one parameter, $1:
 * the key is never pasted into SQL.  The conninfo string is libpq's,
 * checked here with PQconninfoParse(); what would make libpq block the
 * lookup process or read files inside its sandbox is refused: a host
 * NAME (libpq resolves it with a blocking getaddrinfo(); give hostaddr=,
 * a numeric host or a unix socket directory), service= (a file), the
 * SSL certificate files (read at connect time, after the sandbox
 * closed the file system) and sslmode verify-ca/verify-full (which need
 * them).  user= is required (else libpq asks the password database).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "backend.h"
#include "config.h"
#include "pgsql_conf.h"

/* conninfo keywords refused, and why */
static const struct {
	const char	*keyword;
	const char	*why;
} refused[] = {
	{ "service", "reads pg_service.conf: give the parameters themselves" },
	{ "sslcert", "certificate files cannot be read inside the lookup "
	    "sandbox" },
	{ "sslkey", "certificate files cannot be read inside the lookup "
	    "sandbox" },
	{ "sslrootcert", "certificate files cannot be read inside the lookup "
	    "sandbox" },
	{ "sslcrl", "certificate files cannot be read inside the lookup "
	    "sandbox" },
	{ "sslcrldir", "certificate files cannot be read inside the lookup "
	    "sandbox" },
};

/* added unless the conninfo says otherwise */
static const struct {
	const char	*keyword;
	const char	*value;
} defaults[] = {
	/* GSSAPI would read Kerberos files inside the sandbox */
	{ "gssencmode", "disable" },
	{ "application_name", "posthaste" },
	{ "client_encoding", "UTF8" },
};

/* a word of the file in an error message: printable, short */
static void
show(char *dst, size_t len, const char *s, size_t n)
{
	size_t	i;

	if (n > len - 4)
		n = len - 4;
	for (i = 0; i < n; i++)
		dst[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	dst[i] = '\0';
}

static int
is_numeric_address(const char *s)
{
	struct in6_addr	a6;
	struct in_addr	a4;

	return inet_pton(AF_INET, s, &a4) == 1 ||
	    inet_pton(AF_INET6, s, &a6) == 1;
}

/*
 * Each comma-separated entry of host= (without hostaddr=) must be a
 * numeric address, a unix socket directory or empty (the default
 * socket): a name would be resolved by a blocking getaddrinfo().
 */
static const char *
check_hosts(const char *hosts, int numeric_only)
{
	char		 one[256];
	const char	*p = hosts, *comma;
	size_t		 n;

	for (;;) {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n >= sizeof(one))
			return "a host entry is too long";
		memcpy(one, p, n);
		one[n] = '\0';
		if (numeric_only) {
			if (!is_numeric_address(one))
				return "hostaddr= must be numeric addresses";
		} else if (one[0] != '\0' && one[0] != '/' &&
		    !is_numeric_address(one))
			return "host= must be a numeric address or a unix "
			    "socket directory (libpq would resolve a name "
			    "with a blocking call): give hostaddr=";
		if (comma == NULL)
			return NULL;
		p = comma + 1;
	}
}

static int
parse_conninfo(struct pgsql_conf *pc, const char *s, const char *file,
    int line, char *err, size_t errlen)
{
	PQconninfoOption	*opts, *o;
	char			*perr = NULL;
	const char		*why = NULL;
	int			 n = 0, has_user = 0, has_hostaddr = 0;
	size_t			 i;

	if ((opts = PQconninfoParse(s, &perr)) == NULL) {
		char	msg[256];

		if (perr == NULL)
			return table_conf_error(err, errlen, file, line,
			    "conninfo: out of memory");
		show(msg, sizeof(msg), perr, strcspn(perr, "\n"));
		PQfreemem(perr);
		return table_conf_error(err, errlen, file, line, "conninfo: %s",
		    msg);
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		for (i = 0; i < sizeof(refused) / sizeof(*refused); i++)
			if (strcmp(o->keyword, refused[i].keyword) == 0) {
				why = refused[i].why;
				break;
			}
		if (why != NULL) {
			table_conf_error(err, errlen, file, line,
			    "conninfo: %s= %s",
			    o->keyword, why);
			goto fail;
		}
		if (strcmp(o->keyword, "sslmode") == 0 &&
		    strncmp(o->val, "verify-", 7) == 0) {
			table_conf_error(err, errlen, file, line,
			    "conninfo: sslmode="
			    "%s needs a CA file, which cannot be read inside "
			    "the lookup sandbox (require encrypts)",
			    strcmp(o->val, "verify-ca") == 0 ? "verify-ca" :
			    "verify-full");
			goto fail;
		}
		if (strcmp(o->keyword, "user") == 0 && o->val[0] != '\0')
			has_user = 1;
		if (strcmp(o->keyword, "hostaddr") == 0 && o->val[0] != '\0') {
			has_hostaddr = 1;
			if ((why = check_hosts(o->val, 1)) != NULL) {
				table_conf_error(err, errlen, file, line,
				    "conninfo: %s", why);
				goto fail;
			}
		}
	}
	for (o = opts; o->keyword != NULL; o++)
		if (!has_hostaddr && o->val != NULL &&
		    strcmp(o->keyword, "host") == 0 &&
		    (why = check_hosts(o->val, 0)) != NULL) {
			table_conf_error(err, errlen, file, line,
			    "conninfo: %s",
			    why);
			goto fail;
		}
	if (!has_user) {
		table_conf_error(err, errlen, file, line, "conninfo: user= is "
		    "required");
		goto fail;
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (n >= PGSQL_PARAMS_MAX - 2) {
			table_conf_error(err, errlen, file, line,
			    "conninfo: too "
			    "many parameters");
			goto fail;
		}
		if ((pc->keywords[n] = strdup(o->keyword)) == NULL ||
		    (pc->values[n] = strdup(o->val)) == NULL) {
			n++;
			table_conf_error(err, errlen, file, line,
			    "out of memory");
			goto fail;
		}
		n++;
	}
	for (i = 0; i < sizeof(defaults) / sizeof(*defaults); i++) {
		for (o = opts; o->keyword != NULL; o++)
			if (o->val != NULL &&
			    strcmp(o->keyword, defaults[i].keyword) == 0)
				break;
		if (o->keyword != NULL)
			continue;
		if ((pc->keywords[n] = strdup(defaults[i].keyword)) == NULL ||
		    (pc->values[n] = strdup(defaults[i].value)) == NULL) {
			n++;
			table_conf_error(err, errlen, file, line,
			    "out of memory");
			goto fail;
		}
		n++;
	}
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL)
			explicit_bzero(o->val, strlen(o->val));
	PQconninfoFree(opts);
	return 0;
fail:
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL)
			explicit_bzero(o->val, strlen(o->val));
	PQconninfoFree(opts);
	return -1;
}

/* exactly the parameter $1, at least once, and no other $N */
static const char *
check_query(const char *q)
{
	const char	*p;
	int		 ones = 0;

	for (p = q; (p = strchr(p, '$')) != NULL; p++) {
		if (!isdigit((unsigned char)p[1]))
			continue;
		if (p[1] != '1' || isdigit((unsigned char)p[2]))
			return "only $1 (the key) may be a parameter";
		ones++;
	}
	return ones > 0 ? NULL : "no $1: the key must be the query's "
	    "parameter";
}

static int
set_number(const char *kw, const char *arg, long long min, long long max,
    int duration, int *out, const char *file, int line, char *err,
    size_t errlen)
{
	long long	 v;
	char		*end;

	if (duration)
		v = config_parse_duration(arg);
	else {
		v = -1;
		if (isdigit((unsigned char)arg[0]) && strlen(arg) < 10) {
			v = strtoll(arg, &end, 10);
			if (*end != '\0')
				v = -1;
		}
	}
	if (v < min || v > max)
		return table_conf_error(err, errlen, file, line,
		    "%s: expected a %s "
		    "from %lld to %lld%s", kw, duration ? "duration" :
		    "number", min, max, duration ? " seconds" : "");
	*out = (int)v;
	return 0;
}

int
pgsql_conf_parse(struct pgsql_conf *pc, const char *text, size_t len,
    const char *file, char *err, size_t errlen)
{
	const char	*p = text, *end = text + len, *eol, *kw, *arg, *why;
	char		 line_buf[PGSQL_LINE_MAX], what[64];
	size_t		 kwlen, n;
	int		 line = 0, has_pool = 0, has_timeout = 0;
	int		 has_conninfo = 0;
	int		 s, any_query = 0;

	memset(pc, 0, sizeof(*pc));
	pc->pool = PGSQL_POOL_DEFAULT;
	pc->timeout = PGSQL_TIMEOUT_DEFAULT;
	for (; p < end; p = eol + 1) {
		line++;
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		n = (size_t)(eol - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
		    p[n - 1] == '\r'))
			n--;
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		if (n == 0 || *p == '#')
			continue;
		if (n >= sizeof(line_buf)) {
			table_conf_error(err, errlen, file, line,
			    "line longer than "
			    "%zu bytes", sizeof(line_buf) - 1);
			goto fail;
		}
		memcpy(line_buf, p, n);
		line_buf[n] = '\0';
		if (memchr(line_buf, '\0', n) != NULL) {
			table_conf_error(err, errlen, file, line, "NUL byte");
			goto fail;
		}
		kw = line_buf;
		kwlen = strcspn(kw, " \t");
		arg = kw + kwlen;
		arg += strspn(arg, " \t");
		line_buf[kwlen] = '\0';
		show(what, sizeof(what), kw, kwlen);
		if (*arg == '\0') {
			table_conf_error(err, errlen, file, line,
			    "%s: expected a "
			    "value", what);
			goto fail;
		}
		if (strcmp(kw, "conninfo") == 0) {
			if (has_conninfo++) {
				table_conf_error(err, errlen, file, line,
				    "duplicate conninfo");
				goto fail;
			}
			if (parse_conninfo(pc, arg, file, line, err,
			    errlen) == -1)
				goto fail;
			explicit_bzero(line_buf, sizeof(line_buf));
			continue;
		}
		if (strcmp(kw, "pool") == 0) {
			if (has_pool++) {
				table_conf_error(err, errlen, file, line,
				    "duplicate pool");
				goto fail;
			}
			if (set_number("pool", arg, 1, PGSQL_POOL_MAX, 0,
			    &pc->pool, file, line, err, errlen) == -1)
				goto fail;
			continue;
		}
		if (strcmp(kw, "timeout") == 0) {
			if (has_timeout++) {
				table_conf_error(err, errlen, file, line,
				    "duplicate timeout");
				goto fail;
			}
			if (set_number("timeout", arg, 1, PGSQL_TIMEOUT_MAX, 1,
			    &pc->timeout, file, line, err, errlen) == -1)
				goto fail;
			continue;
		}
		s = table_query_keyword(kw);
		if (s == TS_COUNT) {
			table_conf_error(err, errlen, file, line,
			    "unknown keyword "
			    "\"%s\"", what);
			goto fail;
		}
		if (pc->query[s] != NULL) {
			table_conf_error(err, errlen, file, line,
			    "duplicate %s",
			    what);
			goto fail;
		}
		if ((why = check_query(arg)) != NULL) {
			table_conf_error(err, errlen, file, line,
			    "%s: %s", what,
			    why);
			goto fail;
		}
		if ((pc->query[s] = strdup(arg)) == NULL) {
			table_conf_error(err, errlen, file, line,
			    "out of memory");
			goto fail;
		}
		any_query = 1;
	}
	explicit_bzero(line_buf, sizeof(line_buf));
	if (!has_conninfo) {
		table_conf_error(err, errlen, file, 0, "no conninfo line");
		goto fail;
	}
	if (!any_query) {
		table_conf_error(err, errlen, file, 0,
		    "no query_* line: the table "
		    "answers nothing");
		goto fail;
	}
	return 0;
fail:
	explicit_bzero(line_buf, sizeof(line_buf));
	pgsql_conf_free(pc);
	return -1;
}

void
pgsql_conf_free(struct pgsql_conf *pc)
{
	int	i;

	for (i = 0; i < PGSQL_PARAMS_MAX + 1; i++) {
		free(pc->keywords[i]);
		if (pc->values[i] != NULL)
			freezero(pc->values[i], strlen(pc->values[i]) + 1);
	}
	for (i = 0; i < TS_COUNT; i++)
		free(pc->query[i]);
	memset(pc, 0, sizeof(*pc));
}

/* the text of rows[.][0] joined with ", " (alias, mailaddrmap) */
static int
join_rows(const char *const *cells, int nrows, char **value, char *err,
    size_t errlen)
{
	size_t	 len = 0, n;
	char	*v;
	int	 r;

	for (r = 0; r < nrows; r++)
		if (cells[r] != NULL && cells[r][0] != '\0') {
			n = strlen(cells[r]);
			if (n > TABLE_VALUE_MAX ||
			    len + n + 2 > TABLE_VALUE_MAX) {
				snprintf(err, errlen, "the rows make more "
				    "than %d bytes", TABLE_VALUE_MAX);
				return TABLE_ERROR;
			}
			len += n + 2;
		}
	if (len == 0)
		return TABLE_NOTFOUND;
	if ((v = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return TABLE_ERROR;
	}
	v[0] = '\0';
	for (r = 0; r < nrows; r++)
		if (cells[r] != NULL && cells[r][0] != '\0') {
			if (v[0] != '\0')
				strlcat(v, ", ", len + 1);
			strlcat(v, cells[r], len + 1);
		}
	*value = v;
	return TABLE_FOUND;
}

static int
all_digits(const char *s)
{
	if (*s == '\0' || strlen(s) > 10)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

int
pgsql_rows_value(enum table_service s, const char *const *cells,
    int nrows, int ncols, char **value, char *err, size_t errlen)
{
	const char	*uid, *gid, *home;
	size_t		 n;

	*value = NULL;
	if (nrows < 0 || ncols < 0) {
		snprintf(err, errlen, "no rows");
		return TABLE_ERROR;
	}
	switch (s) {
	case TS_STRING:
	case TS_DOMAIN:
	case TS_NETADDR:
	case TS_MAILADDR:
		/* membership: any row */
		if (nrows == 0)
			return TABLE_NOTFOUND;
		if ((*value = strdup("")) == NULL) {
			snprintf(err, errlen, "out of memory");
			return TABLE_ERROR;
		}
		return TABLE_FOUND;
	case TS_ALIAS:
	case TS_MAILADDRMAP:
		if (nrows == 0)
			return TABLE_NOTFOUND;
		if (ncols != 1) {
			snprintf(err, errlen, "%d columns, expected 1", ncols);
			return TABLE_ERROR;
		}
		return join_rows(cells, nrows, value, err, errlen);
	case TS_CREDENTIALS:
		if (nrows == 0)
			return TABLE_NOTFOUND;
		if (ncols != 1) {
			snprintf(err, errlen, "%d columns, expected 1 (the "
			    "hash)", ncols);
			return TABLE_ERROR;
		}
		if (nrows > 1) {
			snprintf(err, errlen, "%d rows for one user", nrows);
			return TABLE_ERROR;
		}
		if (cells[0] == NULL || cells[0][0] == '\0')
			return TABLE_NOTFOUND;
		if (strlen(cells[0]) > TABLE_VALUE_MAX) {
			snprintf(err, errlen, "a hash longer than %d bytes",
			    TABLE_VALUE_MAX);
			return TABLE_ERROR;
		}
		if ((*value = strdup(cells[0])) == NULL) {
			snprintf(err, errlen, "out of memory");
			return TABLE_ERROR;
		}
		return TABLE_FOUND;
	case TS_USERINFO:
		if (nrows == 0)
			return TABLE_NOTFOUND;
		if (ncols != 3) {
			snprintf(err, errlen, "%d columns, expected 3 (uid, "
			    "gid, home)", ncols);
			return TABLE_ERROR;
		}
		if (nrows > 1) {
			snprintf(err, errlen, "%d rows for one user", nrows);
			return TABLE_ERROR;
		}
		uid = cells[0];
		gid = cells[1];
		home = cells[2];
		if (uid == NULL || gid == NULL || home == NULL ||
		    !all_digits(uid) || !all_digits(gid) || home[0] != '/' ||
		    strlen(home) > TABLE_VALUE_MAX - 24) {
			snprintf(err, errlen, "uid and gid must be numbers, "
			    "home an absolute path");
			return TABLE_ERROR;
		}
		n = strlen(uid) + strlen(gid) + strlen(home) + 3;
		if ((*value = malloc(n)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return TABLE_ERROR;
		}
		snprintf(*value, n, "%s:%s:%s", uid, gid, home);
		return TABLE_FOUND;
	default:
		snprintf(err, errlen, "unknown service");
		return TABLE_ERROR;
	}
}
