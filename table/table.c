/*
 * table.c -- table backends: inline, text file, Berkeley DB (hash or
 * btree), and the services built on them (aliases, domains, virtual
 * users, credentials, netaddr, userinfo, mailaddr).
 *
 * Keys are compared lower-cased (makemap stores them lower-cased).  A
 * text file is read into a sorted array and read again when it changes
 * (mtime with nanoseconds, size or inode); a .db file is reopened when it
 * is replaced (makemap renames a new file into place), so an edited or
 * rebuilt table is picked up by itself, and "smtpctl update table"
 * (table_reload) forces it.  A table that cannot be read answers
 * TABLE_ERROR, which callers turn into a temporary failure: mail waits
 * for the administrator instead of bouncing.
 *
 * The folder table/ is a library: the lookup process answers every table
 * query through it; the mta reads its relay credentials through it once,
 * before it drops privileges; makemap(8) shares its file formats
 * (tabfile.c, aliases.c).
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "aliases.h"
#include "backend.h"
#include "log.h"
#include "table.h"
#include "proc.h"
#include "tabfile.h"

struct kv {
	char	*key;
	char	*val;		/* "" in a list */
	size_t	 seq;		/* order in the source, to keep the first */
};

struct table_state {
	struct table	*t;
	struct kv	*kv;
	size_t		 nkv, cap;
	DB		*db;
	struct timespec	 mtime;
	off_t		 size;
	ino_t		 ino;
	dev_t		 dev;
	uid_t		 owner;
	int		 loaded;
};

static struct table_state	*states;
static size_t			 nstates;

static int
kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

static int
kv_cmp_seq(const void *a, const void *b)
{
	const struct kv	*x = a, *y = b;
	int		 c;

	if ((c = strcmp(x->key, y->key)) != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
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

	/* wiped: a value may be a secret (config_forget_secrets()) */
	for (i = 0; i < st->nkv; i++) {
		freezero(st->kv[i].key, strlen(st->kv[i].key) + 1);
		freezero(st->kv[i].val, strlen(st->kv[i].val) + 1);
	}
	free(st->kv);
	st->kv = NULL;
	st->nkv = st->cap = 0;
	if (st->db) {
		st->db->close(st->db, 0);
		st->db = NULL;
	}
	st->loaded = 0;
}

static int
kv_add(struct table_state *st, const char *k, const char *v)
{
	if (st->nkv == st->cap) {
		size_t		 ncap = st->cap ? st->cap * 2 : 16;
		struct kv	*n = reallocarray(st->kv, ncap, sizeof(*n));

		if (n == NULL)
			return -1;
		st->kv = n;
		st->cap = ncap;
	}
	if ((st->kv[st->nkv].key = strdup(k)) == NULL)
		return -1;
	if ((st->kv[st->nkv].val = strdup(v ? v : "")) == NULL) {
		free(st->kv[st->nkv].key);
		return -1;
	}
	lower(st->kv[st->nkv].key);
	st->kv[st->nkv].seq = st->nkv;
	st->nkv++;
	return 0;
}

/* sort, and keep the first of duplicate keys (makemap refuses them) */
static void
kv_sort(struct table_state *st)
{
	size_t	i, j;

	qsort(st->kv, st->nkv, sizeof(*st->kv), kv_cmp_seq);
	for (i = 0, j = 0; i < st->nkv; i++) {
		if (j > 0 && strcmp(st->kv[j - 1].key, st->kv[i].key) == 0) {
			log_warnx("table %s: duplicate key \"%s\" ignored",
			    st->t->name, st->kv[i].key);
			freezero(st->kv[i].key, strlen(st->kv[i].key) + 1);
			freezero(st->kv[i].val, strlen(st->kv[i].val) + 1);
			continue;
		}
		st->kv[j++] = st->kv[i];
	}
	st->nkv = j;
}

/* is this table read as aliases(5) (by an action's "alias <t>")? */
int
table_is_aliases(const struct table *t)
{
	struct action	*a;

	if (conf == NULL)
		return 0;
	TAILQ_FOREACH(a, &conf->actions, entry)
		if (strcmp(a->alias_table, t->name) == 0)
			return 1;
	return 0;
}

static int
load_file_entry(void *arg, const char *key, const char *value, size_t line,
    char *err, size_t errlen)
{
	struct table_state	*st = arg;

	if (kv_add(st, key, value) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
load_file(struct table_state *st)
{
	FILE	*fp;
	char	 err[CONF_PATH_MAX + 128];
	int	 rc;

	if ((fp = fopen(st->t->path, "re")) == NULL) {
		log_warn("table %s: %s", st->t->name, st->t->path);
		return -1;
	}
	rc = tabfile_parse(fp, st->t->path, table_is_aliases(st->t) ?
	    TABFILE_ALIASES : 0, load_file_entry, st, err, sizeof(err));
	fclose(fp);
	if (rc == -1) {
		log_warnx("table %s: %s", st->t->name, err);
		return -1;
	}
	kv_sort(st);
	return 0;
}

static int
load_inline(struct table_state *st)
{
	size_t	i;

	if (st->t->forgotten)
		fatalx("table %s: its entries were wiped in this process",
		    st->t->name);

	for (i = 0; i < st->t->nentries; i++)
		if (kv_add(st, st->t->entries[i].key,
		    st->t->entries[i].value) == -1)
			return -1;
	kv_sort(st);
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
		if (st->loaded && (sb.st_mtim.tv_sec != st->mtime.tv_sec ||
		    sb.st_mtim.tv_nsec != st->mtime.tv_nsec ||
		    sb.st_size != st->size || sb.st_ino != st->ino ||
		    sb.st_dev != st->dev)) {
			log_info("table %s changed on disk, reloading",
			    t->name);
			state_clear(st);
		}
		st->mtime = sb.st_mtim;
		st->size = sb.st_size;
		st->ino = sb.st_ino;
		st->dev = sb.st_dev;
		st->owner = sb.st_uid;
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
	case TABLE_REMOTE:
		fatalx("table %s: a shared table has no local state", t->name);
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
table_reload(const char *name)
{
	struct table	*t;
	size_t		 i;

	if ((t = config_find_table(conf, name)) == NULL)
		return -1;
	/* a relay's credentials: the mta's, nothing of it is held here */
	if (t->forgotten)
		return 0;
	if (t->backend == TABLE_REMOTE) {
		table_remote_flush(t);
		return 0;
	}
	for (i = 0; i < nstates; i++)
		if (states[i].t == t)
			state_clear(&states[i]);
	return table_state(t) == NULL ? -1 : 0;
}

int
table_owner(struct table *t, uid_t *uid)
{
	struct table_state	*st;

	if (t->backend == TABLE_INLINE || t->backend == TABLE_REMOTE ||
	    (st = table_state(t)) == NULL)
		return -1;
	*uid = st->owner;
	return 0;
}

static int
local_get(struct table *t, const char *key, char **val)
{
	struct table_state	*st;
	struct kv		 k, *f;
	char			 lk[1024];
	DBT			 dkey, dval;
	int			 rc;

	if (val)
		*val = NULL;
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

			/* tolerate a stored terminating NUL (other tools) */
			if (n > 0 && ((char *)dval.data)[n - 1] == '\0')
				n--;
			if (memchr(dval.data, '\0', n) != NULL) {
				log_warnx("table %s: NUL in the value of %s",
				    t->name, lk);
				return TABLE_ERROR;
			}
			if ((*val = malloc(n + 1)) == NULL)
				return TABLE_ERROR;
			memcpy(*val, dval.data, n);
			(*val)[n] = '\0';
		}
		return TABLE_FOUND;
	}
	k.key = lk;
	f = bsearch(&k, st->kv, st->nkv, sizeof(*st->kv), kv_cmp);
	if (f == NULL)
		return TABLE_NOTFOUND;
	if (val && (*val = strdup(f->val)) == NULL)
		return TABLE_ERROR;
	return TABLE_FOUND;
}

/* a file: or db: table answers every service from the same keys */
static int
table_get(struct table *t, enum table_service service, const char *key,
    char **val)
{
	if (t->backend == TABLE_REMOTE)
		return table_remote_get(t, service, key, val);
	return local_get(t, key, val);
}

int
table_lookup_alloc(struct table *t, const char *key, char **val)
{
	return table_get(t, TS_STRING, key, val);
}

int
table_lookup_alias(struct table *t, const char *key, char **val)
{
	return table_get(t, TS_ALIAS, key, val);
}

int
table_match_as(struct table *t, enum table_service service, const char *key)
{
	return table_get(t, service, key, NULL);
}

/* a value into the caller's buffer */
static int
lookup_into(struct table *t, enum table_service service, const char *key,
    char *val, size_t len)
{
	char	*v = NULL;
	int	 rc;

	rc = table_get(t, service, key, val ? &v : NULL);
	if (rc != TABLE_FOUND || val == NULL)
		return rc;
	if (strlen(v) >= len) {
		log_warnx("table %s: value of %s too long", t->name, key);
		freezero(v, strlen(v) + 1);
		return TABLE_ERROR;
	}
	memcpy(val, v, strlen(v) + 1);
	freezero(v, strlen(v) + 1);
	return TABLE_FOUND;
}

int
table_lookup(struct table *t, const char *key, char *val, size_t len)
{
	return lookup_into(t, TS_STRING, key, val, len);
}

int
table_match(struct table *t, const char *key)
{
	return table_lookup(t, key, NULL, 0);
}

/*
 * Walk every key (netaddr and mailaddr tables are matched by content,
 * not by exact key; the DKIM signing keys are all loaded).  cb returns 1
 * to stop with a match.
 */
int
table_foreach(struct table *t, int (*cb)(void *, const char *,
    const char *), void *arg)
{
	struct table_state	*st;
	DBC			*cur;
	DBT			 k, v;
	char			*ks, *vs;
	size_t			 i;
	int			 rc, found = 0;

	if (t->backend == TABLE_REMOTE) {
		/* table_remote_load() refuses them where a walk is needed */
		log_warnx("table %s: a %s: table cannot be listed", t->name,
		    t->scheme);
		return TABLE_ERROR;
	}
	if ((st = table_state(t)) == NULL)
		return TABLE_ERROR;
	if (st->db == NULL) {
		for (i = 0; i < st->nkv; i++)
			if (cb(arg, st->kv[i].key, st->kv[i].val))
				return TABLE_FOUND;
		return TABLE_NOTFOUND;
	}
	if ((rc = st->db->cursor(st->db, NULL, &cur, 0)) != 0) {
		log_warnx("table %s: cursor: %s", t->name, db_strerror(rc));
		return TABLE_ERROR;
	}
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	while (!found && (rc = cur->get(cur, &k, &v, DB_NEXT)) == 0) {
		if ((ks = strndup(k.data, k.size)) == NULL ||
		    (vs = strndup(v.data, v.size)) == NULL) {
			free(ks);
			rc = ENOMEM;
			break;
		}
		found = cb(arg, ks, vs);
		free(ks);
		free(vs);
	}
	cur->close(cur);
	if (found)
		return TABLE_FOUND;
	if (rc != DB_NOTFOUND) {
		log_warnx("table %s: %s", t->name, db_strerror(rc));
		return TABLE_ERROR;
	}
	return TABLE_NOTFOUND;
}

static int
cidr_cb(void *arg, const char *key, const char *val)
{
	return addr_in_cidr(arg, key);
}

int
table_match_netaddr(struct table *t, const struct sockaddr_storage *ss)
{
	char	a[INET6_ADDRSTRLEN];

	if (t->backend != TABLE_REMOTE)
		return table_foreach(t, cidr_cb, (void *)(uintptr_t)ss);
	/* the server decides: e.g. SQL's inet <<= */
	if ((ss->ss_family != AF_INET || inet_ntop(AF_INET,
	    &((const struct sockaddr_in *)ss)->sin_addr, a, sizeof(a)) ==
	    NULL) && (ss->ss_family != AF_INET6 || inet_ntop(AF_INET6,
	    &((const struct sockaddr_in6 *)ss)->sin6_addr, a, sizeof(a)) ==
	    NULL))
		return TABLE_NOTFOUND;
	return table_get(t, TS_NETADDR, a, NULL);
}

int
table_match_addr(struct table *t, const struct sockaddr_storage *ss)
{
	return table_match_netaddr(t, ss) == TABLE_FOUND;
}

int
table_lookup_userinfo(struct table *t, const char *user,
    struct table_userinfo *ui)
{
	char		 val[CONF_PATH_MAX + 64], *p, *e;
	size_t		 len;
	unsigned long	 n;
	int		 rc, i;

	if ((rc = lookup_into(t, TS_USERINFO, user, val, sizeof(val))) !=
	    TABLE_FOUND)
		return rc;
	/* "uid:gid:home" */
	p = val;
	for (i = 0; i < 2; i++) {
		errno = 0;
		n = strtoul(p, &e, 10);
		if (e == p || *e != ':' || errno != 0 || n >= UINT_MAX ||
		    *p == '-' || *p == '+')
			goto bad;
		if (i == 0)
			ui->uid = (uid_t)n;
		else
			ui->gid = (gid_t)n;
		p = e + 1;
	}
	if (*p != '/' || (len = strlen(p)) >= sizeof(ui->home))
		goto bad;
	memcpy(ui->home, p, len + 1);	/* checked: gcc -O0 cannot see it */
	return TABLE_FOUND;
bad:
	log_warnx("table %s: userinfo for %s is not uid:gid:/home", t->name,
	    user);
	return TABLE_ERROR;
}

int
table_lookup_credentials(struct table *t, const char *user, char *hash,
    size_t len)
{
	char	val[1024], *colon;
	int	rc;

	if ((rc = lookup_into(t, TS_CREDENTIALS, user, val, sizeof(val))) !=
	    TABLE_FOUND)
		return rc;
	/* "user:hash" in the value is accepted as well as the bare hash */
	colon = strchr(val, ':');
	if (colon != NULL && val[0] != '$' &&
	    strncasecmp(val, user, (size_t)(colon - val)) == 0 &&
	    strlen(user) == (size_t)(colon - val))
		memmove(val, colon + 1, strlen(colon + 1) + 1);
	if (strlen(val) >= len)
		return TABLE_ERROR;
	memcpy(hash, val, strlen(val) + 1);
	return TABLE_FOUND;
}

/*
 * mailaddr: may `key' (an authenticated user) send as `from'?  The
 * value is a list of "user@domain" or "@domain" entries, separated by
 * commas or white space.
 */
int
table_match_mailaddr(struct table *t, const char *key,
    const struct mailaddr *from)
{
	char	*val, *p, *tok, full[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	int	 rc, found = 0;

	if ((rc = table_get(t, TS_MAILADDRMAP, key, &val)) != TABLE_FOUND)
		return rc;
	addr_to_string(from, full, sizeof(full));
	for (p = val; !found && (tok = strsep(&p, ", \t")) != NULL;) {
		if (*tok == '\0')
			continue;
		if (tok[0] == '@')
			found = strcasecmp(tok + 1, from->domain) == 0;
		else
			found = strcasecmp(tok, full) == 0;
	}
	free(val);
	return found ? TABLE_FOUND : TABLE_NOTFOUND;
}

/* domain: the name itself or a "*.parent" wildcard entry */
int
table_match_domain(struct table *t, const char *domain)
{
	char		 wild[ADDR_DOMAIN_MAX + 2];
	const char	*dot;
	int		 rc;

	if ((rc = table_match_as(t, TS_DOMAIN, domain)) != TABLE_NOTFOUND)
		return rc;
	/* a shared table's query does its own wildcards, in one question */
	if (t->backend == TABLE_REMOTE)
		return TABLE_NOTFOUND;
	for (dot = strchr(domain, '.'); dot != NULL;
	    dot = strchr(dot + 1, '.')) {
		snprintf(wild, sizeof(wild), "*%s", dot);
		if ((rc = table_match_as(t, TS_DOMAIN, wild)) !=
		    TABLE_NOTFOUND)
			return rc;
	}
	return TABLE_NOTFOUND;
}

/*
 * Wipe every loaded table (the mta, once it has copied the relay
 * credentials it needs): nothing read from a table stays behind.
 */
void
table_forget_all(void)
{
	size_t	i;

	for (i = 0; i < nstates; i++)
		state_clear(&states[i]);
	free(states);
	states = NULL;
	nstates = 0;
}

struct include_walk {
	void	(*cb)(void *, const char *);
	void	 *arg;
};

static int
include_item_cb(void *arg, const struct alias_item *it)
{
	struct include_walk	*w = arg;

	if (it->type == ALIAS_INCLUDE)
		w->cb(w->arg, it->value);
	return 0;
}

static int
include_entry_cb(void *arg, const char *key, const char *val)
{
	if (val != NULL)
		(void)alias_parse_list(val, include_item_cb, NULL, arg);
	return 0;
}

/*
 * Every ":include:" path an aliases table names, to cb (lookup's read
 * set, lookup.c).  Bad items are skipped here: expansion reports them.
 */
int
table_alias_includes(struct table *t, void (*cb)(void *, const char *),
    void *arg)
{
	struct include_walk	w = { cb, arg };

	return table_foreach(t, include_entry_cb, &w) == TABLE_ERROR ? -1 : 0;
}

/*
 * "smtpctl table lookup NAME SERVICE KEY": what the daemon would see.
 * A list answers "" when the key is in it.
 */
int
table_lookup_service(struct table *t, enum table_service service,
    const char *key, char **val)
{
	struct sockaddr_storage	 ss;
	struct table_userinfo	 ui;
	int			 rc;

	*val = NULL;
	switch (service) {
	case TS_NETADDR:
		memset(&ss, 0, sizeof(ss));
		if (inet_pton(AF_INET, key,
		    &((struct sockaddr_in *)&ss)->sin_addr) == 1)
			ss.ss_family = AF_INET;
		else if (inet_pton(AF_INET6, key,
		    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
			ss.ss_family = AF_INET6;
		else
			return TABLE_NOTFOUND;
		rc = table_match_netaddr(t, &ss);
		break;
	case TS_DOMAIN:
		rc = table_match_domain(t, key);
		break;
	case TS_USERINFO:
		if ((rc = table_lookup_userinfo(t, key, &ui)) != TABLE_FOUND)
			return rc;
		if ((*val = malloc(sizeof(ui.home) + 32)) == NULL)
			return TABLE_ERROR;
		snprintf(*val, sizeof(ui.home) + 32, "%u:%u:%s",
		    (unsigned)ui.uid, (unsigned)ui.gid, ui.home);
		return TABLE_FOUND;
	default:
		return table_get(t, service, key, val);
	}
	if (rc == TABLE_FOUND && (*val = strdup("")) == NULL)
		return TABLE_ERROR;
	return rc;
}
