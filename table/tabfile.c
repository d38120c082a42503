/*
 * tabfile.c -- parse the text form of a table (see tabfile.h).
 *
 * Tables are written by administrators, so every problem is reported
 * with its file and line and nothing is guessed: an entry with a bad
 * key is an error, not a silently different key.
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tabfile.h"

struct entry {
	char	*key;
	char	*value;
	size_t	 len, cap;
	size_t	 line;
};

static int
value_append(struct entry *e, const char *s, char *err, size_t errlen,
    const char *name, size_t line)
{
	size_t	n = strlen(s), need;
	char	*nv;

	need = e->len + (e->len ? 1 : 0) + n + 1;
	if (need > TABFILE_VALUE_MAX) {
		snprintf(err, errlen, "%s:%zu: value too long (more than %d "
		    "bytes)", name, line, TABFILE_VALUE_MAX);
		return -1;
	}
	if (need > e->cap) {
		size_t ncap = e->cap ? e->cap : 128;

		while (ncap < need)
			ncap *= 2;
		if ((nv = realloc(e->value, ncap)) == NULL) {
			snprintf(err, errlen, "%s:%zu: out of memory", name,
			    line);
			return -1;
		}
		e->value = nv;
		e->cap = ncap;
	}
	if (e->len && n)
		e->value[e->len++] = ' ';
	memcpy(e->value + e->len, s, n + 1);
	e->len += n;
	return 0;
}

static int
flush(struct entry *e, int flags, tabfile_cb cb, void *arg, char *err,
    size_t errlen, const char *name)
{
	int	rc;

	if (e->key == NULL)
		return 0;
	if ((flags & TABFILE_SET) && e->len > 0) {
		snprintf(err, errlen, "%s:%zu: a set has keys only, found a "
		    "value after \"%.64s\"", name, e->line, e->key);
		rc = -1;
	} else if ((flags & TABFILE_ALIASES) && e->len == 0) {
		snprintf(err, errlen, "%s:%zu: alias \"%.64s\" has no value",
		    name, e->line, e->key);
		rc = -1;
	} else
		rc = cb(arg, e->key, e->value ? e->value : "", e->line, err,
		    errlen);
	free(e->key);
	e->key = NULL;
	e->len = 0;
	if (e->value)
		e->value[0] = '\0';
	return rc;
}

static char *
trim(char *s)
{
	char	*end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

static int
key_ok(const char *k)
{
	if (*k == '\0')
		return 0;
	for (; *k; k++)
		if (isspace((unsigned char)*k) || iscntrl((unsigned char)*k))
			return 0;
	return 1;
}

int
tabfile_parse(FILE *fp, const char *name, int flags, tabfile_cb cb,
    void *arg, char *err, size_t errlen)
{
	struct entry	 e;
	char		*line = NULL, *p, *k, *v, *c;
	size_t		 linecap = 0, lineno = 0;
	ssize_t		 n;
	int		 rc = 0;

	memset(&e, 0, sizeof(e));
	while ((n = getline(&line, &linecap, fp)) != -1) {
		lineno++;
		if (memchr(line, '\0', (size_t)n) != NULL) {
			snprintf(err, errlen, "%s:%zu: NUL byte in line", name,
			    lineno);
			rc = -1;
			break;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		p = trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		if (line[0] == ' ' || line[0] == '\t') {
			if (e.key == NULL) {
				snprintf(err, errlen, "%s:%zu: continuation "
				    "line without an entry", name, lineno);
				rc = -1;
				break;
			}
			if (value_append(&e, p, err, errlen, name, lineno) ==
			    -1) {
				rc = -1;
				break;
			}
			continue;
		}
		if ((rc = flush(&e, flags, cb, arg, err, errlen, name)) == -1)
			break;
		k = p;
		if (flags & TABFILE_ALIASES) {
			if ((v = strchr(k, ':')) == NULL) {
				snprintf(err, errlen, "%s:%zu: missing ':' "
				    "after the alias name", name, lineno);
				rc = -1;
				break;
			}
			*v++ = '\0';
			k = trim(k);
		} else {
			for (v = k; *v && *v != ' ' && *v != '\t'; v++)
				;
			if (*v)
				*v++ = '\0';
			v = trim(v);
			if (*v && strlen(k) > 1 && k[strlen(k) - 1] == ':')
				k[strlen(k) - 1] = '\0';
		}
		if (!key_ok(k)) {
			snprintf(err, errlen, "%s:%zu: invalid key", name,
			    lineno);
			rc = -1;
			break;
		}
		for (c = k; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if ((e.key = strdup(k)) == NULL) {
			snprintf(err, errlen, "%s:%zu: out of memory", name,
			    lineno);
			rc = -1;
			break;
		}
		e.line = lineno;
		if (value_append(&e, trim(v), err, errlen, name, lineno) ==
		    -1) {
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(fp)) {
		snprintf(err, errlen, "%s: read error", name);
		rc = -1;
	}
	if (rc == 0)
		rc = flush(&e, flags, cb, arg, err, errlen, name);
	free(e.key);
	free(e.value);
	free(line);
	return rc;
}
