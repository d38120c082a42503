/*
 * table.c -- table backends: inline, text file, Berkeley DB hash.
 *
 * Keys are compared lower-cased (makemap stores them lower-cased).  A
 * text file is read into a sorted array and read again when its mtime
 * changes; a .db file is reopened when it is replaced (makemap renames a
 * new file into place), so an edited table is picked up by itself.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "lookup.h"
#include "smtpd.h"

struct kv {
	char	*key;
	char	*val;		/* "" in a list */
};

struct table_state {
	struct table	*t;
	struct kv	*kv;
	size_t		 nkv;
	DB		*db;
	time_t		 mtime;
	ino_t		 ino;
	int		 loaded;
};

static struct table_state	*states;
static size_t			 nstates;

static int
kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static void
state_clear(struct table_state *st)
{
	size_t	i;

	for (i = 0; i < st->nkv; i++) {
		free(st->kv[i].key);
		free(st->kv[i].val);
	}
	free(st->kv);
	st->kv = NULL;
	st->nkv = 0;
	if (st->db) {
		st->db->close(st->db, 0);
		st->db = NULL;
	}
	st->loaded = 0;
}

static int
kv_add(struct table_state *st, size_t *cap, const char *k, const char *v)
{
	if (st->nkv == *cap) {
		size_t		 ncap = *cap ? *cap * 2 : 16;
		struct kv	*n = reallocarray(st->kv, ncap, sizeof(*n));

		if (n == NULL)
			return -1;
		st->kv = n;
		*cap = ncap;
	}
	if ((st->kv[st->nkv].key = strdup(k)) == NULL ||
	    (st->kv[st->nkv].val = strdup(v ? v : "")) == NULL)
		return -1;
	lower(st->kv[st->nkv].key);
	st->nkv++;
	return 0;
}

/*
 * Text tables: "key value" or "key: value" per line (a mapping), or one
 * "key" per line (a list); '#' starts a comment; a line starting with
 * white space continues the previous value (aliases(5) style).
 */
static int
load_file(struct table_state *st)
{
	FILE	*fp;
	char	*line = NULL, *p, *k, *v;
	size_t	 linecap = 0, cap = 0;
	ssize_t	 n;
	int	 rc = 0;

	if ((fp = fopen(st->t->path, "re")) == NULL) {
		log_warn("table %s: %s", st->t->name, st->t->path);
		return -1;
	}
	while ((n = getline(&line, &linecap, fp)) != -1) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		if ((line[0] == ' ' || line[0] == '\t') && st->nkv > 0) {
			char	*old = st->kv[st->nkv - 1].val, *joined;

			for (p = line; *p == ' ' || *p == '\t'; p++)
				;
			if (*p == '\0')
				continue;
			if (asprintf(&joined, "%s %s", old, p) == -1) {
				rc = -1;
				break;
			}
			free(old);
			st->kv[st->nkv - 1].val = joined;
			continue;
		}
		for (k = line; *k == ' ' || *k == '\t'; k++)
			;
		if (*k == '\0')
			continue;
		for (p = k; *p && *p != ' ' && *p != '\t' && *p != ':'; p++)
			;
		v = NULL;
		if (*p) {
			*p++ = '\0';
			while (*p == ' ' || *p == '\t' || *p == ':')
				p++;
			v = p;
			for (p = v + strlen(v); p > v && (p[-1] == ' ' ||
			    p[-1] == '\t'); p--)
				p[-1] = '\0';
		}
		if (kv_add(st, &cap, k, v) == -1) {
			rc = -1;
			break;
		}
	}
	free(line);
	fclose(fp);
	if (rc == 0)
		qsort(st->kv, st->nkv, sizeof(*st->kv), kv_cmp);
	return rc;
}

static int
load_inline(struct table_state *st)
{
	size_t	i, cap = 0;

	for (i = 0; i < st->t->nentries; i++)
		if (kv_add(st, &cap, st->t->entries[i].key,
		    st->t->entries[i].value) == -1)
			return -1;
	qsort(st->kv, st->nkv, sizeof(*st->kv), kv_cmp);
	return 0;
}

static int
load_db(struct table_state *st)
{
	int	rc;

	if ((rc = db_create(&st->db, NULL, 0)) != 0) {
		log_warnx("table %s: db_create: %s", st->t->name,
		    db_strerror(rc));
		st->db = NULL;
		return -1;
	}
	if ((rc = st->db->open(st->db, NULL, st->t->path, NULL, DB_UNKNOWN,
	    DB_RDONLY, 0)) != 0) {
		log_warnx("table %s: %s: %s", st->t->name, st->t->path,
		    db_strerror(rc));
		st->db->close(st->db, 0);
		st->db = NULL;
		return -1;
	}
	return 0;
}

static struct table_state *
table_state(struct table *t)
{
	struct table_state	*st = NULL;
	struct stat		 sb;
	size_t			 i;

	for (i = 0; i < nstates; i++)
		if (states[i].t == t)
			st = &states[i];
	if (st == NULL) {
		struct table_state *n;

		n = reallocarray(states, nstates + 1, sizeof(*n));
		if (n == NULL)
			return NULL;
		states = n;
		st = &states[nstates++];
		memset(st, 0, sizeof(*st));
		st->t = t;
	}
	if (t->backend != TABLE_INLINE) {
		if (stat(t->path, &sb) == -1) {
			log_warn("table %s: %s", t->name, t->path);
			state_clear(st);
			return NULL;
		}
		if (st->loaded && (sb.st_mtime != st->mtime ||
		    sb.st_ino != st->ino)) {
			log_info("table %s changed on disk, reloading",
			    t->name);
			state_clear(st);
		}
		st->mtime = sb.st_mtime;
		st->ino = sb.st_ino;
	}
	if (st->loaded)
		return st;
	switch (t->backend) {
	case TABLE_INLINE:
		if (load_inline(st) == -1)
			goto fail;
		break;
	case TABLE_FILE:
		if (load_file(st) == -1)
			goto fail;
		break;
	case TABLE_DB:
		if (load_db(st) == -1)
			goto fail;
		break;
	}
	st->loaded = 1;
	return st;
fail:
	state_clear(st);
	return NULL;
}

void
table_reload_all(void)
{
	size_t	i;

	for (i = 0; i < nstates; i++)
		state_clear(&states[i]);
}

int
table_lookup(struct table *t, const char *key, char *val, size_t len)
{
	struct table_state	*st;
	struct kv		 k, *f;
	char			 lk[1024];
	DBT			 dkey, dval;
	int			 rc;

	if ((st = table_state(t)) == NULL)
		return TABLE_ERROR;
	if (strlen(key) >= sizeof(lk))
		return TABLE_NOTFOUND;
	snprintf(lk, sizeof(lk), "%s", key);
	lower(lk);
	if (st->db) {
		memset(&dkey, 0, sizeof(dkey));
		memset(&dval, 0, sizeof(dval));
		dkey.data = lk;
		dkey.size = (u_int32_t)strlen(lk);
		rc = st->db->get(st->db, NULL, &dkey, &dval, 0);
		if (rc == DB_NOTFOUND)
			return TABLE_NOTFOUND;
		if (rc != 0) {
			log_warnx("table %s: %s", t->name, db_strerror(rc));
			return TABLE_ERROR;
		}
		if (val) {
			size_t n = dval.size;

			if (n >= len)
				return TABLE_ERROR;
			memcpy(val, dval.data, n);
			val[n] = '\0';
			/* tolerate a stored terminating NUL */
			if (n > 0 && val[n - 1] == '\0')
				n--;
		}
		return TABLE_FOUND;
	}
	k.key = lk;
	f = bsearch(&k, st->kv, st->nkv, sizeof(*st->kv), kv_cmp);
	if (f == NULL)
		return TABLE_NOTFOUND;
	if (val) {
		if (strlen(f->val) >= len)
			return TABLE_ERROR;
		memcpy(val, f->val, strlen(f->val) + 1);
	}
	return TABLE_FOUND;
}

int
table_match(struct table *t, const char *key)
{
	return table_lookup(t, key, NULL, 0);
}

int
table_match_addr(struct table *t, const struct sockaddr_storage *ss)
{
	struct table_state	*st;
	size_t			 i;

	if ((st = table_state(t)) == NULL || st->db != NULL)
		return 0;
	for (i = 0; i < st->nkv; i++)
		if (addr_in_cidr(ss, st->kv[i].key))
			return 1;
	return 0;
}
