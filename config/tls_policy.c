/*
 * tls_policy.c -- the values of the TLS policy table (tls_policy.h).
 *
 * The grammar is Postfix's smtp_tls_policy_maps, reduced to what we
 * implement: a level word (conf_tls_level()), then attributes
 * NAME=VALUE.  Only match= exists today: for verify and secure, the
 * names the peer's certificate must match, ':'-separated, where the
 * words hostname, nexthop and dot-nexthop stand for the names known at
 * delivery time.  Anything else -- an unknown level or attribute, match=
 * on a level that does not verify names, an empty or malformed name --
 * is an error, never ignored: an administrator who wrote a policy must
 * not get a weaker one than written without being told.
 *
 * A table's values are read by two processes: the parent checks them
 * all whenever it reads smtpd.conf, so that "smtpd -n", the start and a
 * reload refuse a bad entry with its file and line; the mta parses them
 * again when it loads the table before its chroot (the file may have
 * changed in between: the mta then defers that destination, see
 * mta/mta_tlspolicy.c).
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "parse.h"
#include "tabfile.h"
#include "table.h"
#include "tls_policy.h"

static int policy_error(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static int
policy_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* a DNS name, or ".name" for its subdomains */
static int
match_name_valid(const char *s)
{
	if (*s == '.')
		s++;
	return conf_valid_hostname(s);
}

static int
policy_parse_match(const char *list, struct tls_policy *tp, char *err,
    size_t errlen)
{
	const char	*p = list, *end;
	size_t		 n;

	if (*list == '\0')
		return policy_error(err, errlen, "match= needs a name");
	for (;;) {
		end = strchr(p, ':');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n == 0)
			return policy_error(err, errlen, "match=%s: empty name",
			    list);
		if (tp->nmatch >= TLS_POLICY_MATCH_MAX)
			return policy_error(err, errlen, "match=: more than "
			    "%d names", TLS_POLICY_MATCH_MAX);
		if (n >= sizeof(tp->match[0]))
			return policy_error(err, errlen, "match=: name too "
			    "long");
		memcpy(tp->match[tp->nmatch], p, n);
		tp->match[tp->nmatch][n] = '\0';
		if (!match_name_valid(tp->match[tp->nmatch]))
			return policy_error(err, errlen, "match=: invalid name "
			    "\"%s\"", tp->match[tp->nmatch]);
		tp->nmatch++;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

int
tls_policy_parse(const char *value, struct tls_policy *tp, char *err,
    size_t errlen)
{
	char		 word[CONF_PATH_MAX];
	const char	*p = value, *start;
	size_t		 n;
	int		 first = 1;

	memset(tp, 0, sizeof(*tp));
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		n = (size_t)(p - start);
		if (n >= sizeof(word))
			return policy_error(err, errlen, "field too long");
		memcpy(word, start, n);
		word[n] = '\0';
		if (first) {
			first = 0;
			if (conf_tls_level(word, &tp->level) == -1)
				return policy_error(err, errlen, "unknown TLS "
				    "level \"%.64s\" (none, may, encrypt, "
				    "verify, secure, dane, dane-only)", word);
			continue;
		}
		if (strncmp(word, "match=", 6) == 0) {
			if (tp->level != RELAY_TLS_VERIFY &&
			    tp->level != RELAY_TLS_SECURE)
				return policy_error(err, errlen, "match= only "
				    "applies to verify and secure, not %s",
				    conf_tls_level_name(tp->level));
			if (policy_parse_match(word + 6, tp, err, errlen) == -1)
				return -1;
			continue;
		}
		return policy_error(err, errlen, "unknown attribute \"%.64s\" "
		    "(only match= is known)", word);
	}
	if (first)
		return policy_error(err, errlen, "no TLS level");
	return 0;
}

/* ---- the parent's check of a whole table ---- */

struct check {
	const struct smtpd_config	*conf;
	const struct table		*t;
	FILE				*out;
	const char			*file;	/* where lines are counted */
	int				 line;	/* 0: that of each entry */
	int				 problems;
};

static void
check_report(struct check *c, size_t line, const char *key, const char *why)
{
	char	buf[CONF_PATH_MAX + 512];

	snprintf(buf, sizeof(buf), "%s:%zu: TLS policy table %s: \"%.253s\": "
	    "%s", c->file, line, c->t->name, key, why);
	if (c->out != NULL)
		fprintf(c->out, "%s\n", buf);
	else
		log_warnx("%s", buf);
	c->problems++;
}

static void
check_entry(struct check *c, size_t line, const char *key, const char *value)
{
	struct tls_policy	tp;
	char			err[256];

	if (!match_name_valid(key)) {
		check_report(c, line, key, "the key must be a domain or "
		    "\".domain\" (its subdomains)");
		return;
	}
	if (value == NULL || tls_policy_parse(value, &tp, err,
	    sizeof(err)) == -1)
		check_report(c, line, key, value == NULL ? "no value" : err);
}

static int
check_file_cb(void *arg, const char *key, const char *value, size_t line,
    char *err, size_t errlen)
{
	check_entry(arg, line, key, value[0] != '\0' ? value : NULL);
	return 0;
}

static int
check_db_cb(void *arg, const char *key, const char *value)
{
	struct check	*c = arg;

	check_entry(c, (size_t)c->line, key, value);
	return 0;
}

int
config_check_tls_policy(const struct smtpd_config *conf, FILE *out)
{
	struct check	 c;
	struct table	*t;
	FILE		*fp;
	char		 err[CONF_PATH_MAX + 128], why[CONF_PATH_MAX + 64];
	size_t		 i;

	if (conf->mta_tls_policy[0] == '\0' ||
	    (t = config_find_table(conf, conf->mta_tls_policy)) == NULL)
		return 0;
	memset(&c, 0, sizeof(c));
	c.conf = conf;
	c.t = t;
	c.out = out;
	c.file = conf->path;
	c.line = t->line;
	switch (t->backend) {
	case TABLE_INLINE:
		c.line = conf->mta_tls_policy_line;
		for (i = 0; i < t->nentries; i++)
			check_entry(&c, (size_t)c.line, t->entries[i].key,
			    t->entries[i].value);
		break;
	case TABLE_FILE:
		c.file = t->path;
		if ((fp = fopen(t->path, "re")) == NULL) {
			snprintf(why, sizeof(why), "cannot read %s: %s",
			    t->path, strerror(errno));
			c.file = conf->path;
			check_report(&c, (size_t)t->line, t->name, why);
			break;
		}
		if (tabfile_parse(fp, t->path, 0, check_file_cb, &c, err,
		    sizeof(err)) == -1) {
			c.file = conf->path;
			check_report(&c, (size_t)t->line, t->name, err);
		}
		fclose(fp);
		break;
	case TABLE_DB:
		/* no lines in a .db: the table's own line, and the key */
		if (table_foreach(t, check_db_cb, &c) == TABLE_ERROR)
			check_report(&c, (size_t)t->line, t->name,
			    "cannot read the table");
		break;
	case TABLE_REMOTE:
		/* refused by table_remote_load(): the mta reads it once */
		break;
	}
	return c.problems;
}
