/*
 * makemap.c -- compile text tables into Berkeley DB files; newaliases.
 *
 *	makemap [-U] [-d hash|btree] [-t map|set|aliases] [-o dbfile] file
 *	newaliases [-C smtpd.conf] [-f aliases]
 *
 * newaliases (also sendmail -bi, which runs this) compiles the aliases
 * file given with -f, as makemap(8) has always documented it; without
 * -f, the one smtpd.conf names, or SYSCONFDIR/aliases when smtpd.conf
 * names none or does not exist (a host where Posthaste is not set up
 * yet: what other MTAs' newaliases do).
 *
 * The text is parsed by the same code as file: tables (table/tabfile.c),
 * keys lower-cased, keys and values stored without a terminating NUL
 * (what table.c reads).  A duplicate key or an unparsable line is an
 * error reported as FILE:LINE, and then nothing is written.
 *
 * The database is built in a private temporary directory next to the
 * target (same file system), flushed and fsynced, then renamed over the
 * target and the directory fsynced: a running smtpd sees the old table
 * or the new one, never a half-written one, and notices the new inode by
 * itself.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "aliases.h"
#include "config.h"
#include "tabfile.h"

enum map_type { MAP_MAP, MAP_SET, MAP_ALIASES };

struct build {
	DB		*db;
	const char	*src;
	enum map_type	 type;
	size_t		 nkeys;
	size_t		 nwarn;
	size_t		 line;		/* of the entry being checked */
};

static const char	*progname = "makemap";

static __attribute__((noreturn)) void
usage(void)
{
	if (strcmp(progname, "newaliases") == 0)
		fprintf(stderr, "usage: newaliases [-C smtpd.conf] "
		    "[-f aliases]\n");
	else
		fprintf(stderr, "usage: makemap [-U] [-d hash|btree] "
		    "[-t map|set|aliases] [-o dbfile] file\n");
	exit(EX_USAGE);
}

static void
alias_bad(void *arg, const char *item, const char *why)
{
	struct build	*b = arg;

	fprintf(stderr, "%s: %s:%zu: \"%s\": %s\n", progname, b->src,
	    b->line, item, why);
	b->nwarn++;
}

static int
alias_ok(void *arg, const struct alias_item *it)
{
	return 0;
}

static int
add_entry(void *arg, const char *key, const char *value, size_t line,
    char *err, size_t errlen)
{
	struct build	*b = arg;
	DBT		 k, v;
	int		 rc;

	if (b->type == MAP_ALIASES) {
		/* each destination checked as the server will read it */
		b->line = line;
		if (alias_parse_list(value, alias_ok, alias_bad, b) == -1) {
			snprintf(err, errlen, "%s:%zu: out of memory", b->src,
			    line);
			return -1;
		}
	}
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)(uintptr_t)key;
	k.size = (u_int32_t)strlen(key);
	v.data = (void *)(uintptr_t)value;
	v.size = (u_int32_t)strlen(value);
	rc = b->db->put(b->db, NULL, &k, &v, DB_NOOVERWRITE);
	if (rc == DB_KEYEXIST) {
		snprintf(err, errlen, "%s:%zu: duplicate key \"%.64s\"",
		    b->src, line, key);
		return -1;
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s:%zu: %s", b->src, line,
		    db_strerror(rc));
		return -1;
	}
	b->nkeys++;
	return 0;
}

static int
fsync_path(const char *path, int flags)
{
	int	fd, rc;

	if ((fd = open(path, flags | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
make_map(const char *src, const char *dst, enum map_type type, DBTYPE dbtype)
{
	struct build	 b;
	struct stat	 sb;
	FILE		*fp;
	char		 dir[PATH_MAX], tmpdir[PATH_MAX + 32];
	char		 tmpfile[PATH_MAX + 64], dcopy[PATH_MAX];
	char		 err[PATH_MAX + 256];
	mode_t		 mode = 0644;
	int		 rc, flags;

	if (strlen(dst) >= sizeof(dcopy)) {
		fprintf(stderr, "%s: %s: name too long\n", progname, dst);
		return EX_USAGE;
	}
	if ((fp = fopen(src, "re")) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", progname, src,
		    strerror(errno));
		return EX_NOINPUT;
	}
	/* keep the mode of the table being replaced */
	if (stat(dst, &sb) == 0)
		mode = sb.st_mode & 0777;
	snprintf(dcopy, sizeof(dcopy), "%s", dst);
	snprintf(dir, sizeof(dir), "%s", dirname(dcopy));
	snprintf(tmpdir, sizeof(tmpdir), "%s/.makemap.XXXXXX", dir);
	if (mkdtemp(tmpdir) == NULL) {
		fprintf(stderr, "%s: mkdtemp in %s: %s\n", progname, dir,
		    strerror(errno));
		fclose(fp);
		return EX_CANTCREAT;
	}
	snprintf(tmpfile, sizeof(tmpfile), "%s/new.db", tmpdir);
	memset(&b, 0, sizeof(b));
	b.src = src;
	b.type = type;
	if ((rc = db_create(&b.db, NULL, 0)) != 0) {
		fprintf(stderr, "%s: db_create: %s\n", progname,
		    db_strerror(rc));
		goto fail;
	}
	if ((rc = b.db->open(b.db, NULL, tmpfile, NULL, dbtype,
	    DB_CREATE | DB_EXCL, mode)) != 0) {
		fprintf(stderr, "%s: %s: %s\n", progname, tmpfile,
		    db_strerror(rc));
		b.db->close(b.db, 0);
		b.db = NULL;
		goto fail;
	}
	flags = type == MAP_ALIASES ? TABFILE_ALIASES :
	    type == MAP_SET ? TABFILE_SET : 0;
	if (tabfile_parse(fp, src, flags, add_entry, &b, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", progname, err);
		goto fail;
	}
	if (b.nwarn > 0) {
		fprintf(stderr, "%s: %zu bad destination(s); %s not "
		    "written\n", progname, b.nwarn, dst);
		goto fail;
	}
	if ((rc = b.db->close(b.db, 0)) != 0) {
		b.db = NULL;
		fprintf(stderr, "%s: %s: %s\n", progname, tmpfile,
		    db_strerror(rc));
		goto fail;
	}
	b.db = NULL;
	/* umask may have narrowed it; a table must stay readable */
	if (chmod(tmpfile, mode) == -1 ||
	    fsync_path(tmpfile, O_RDONLY) == -1 ||
	    rename(tmpfile, dst) == -1 ||
	    fsync_path(dir, O_RDONLY | O_DIRECTORY) == -1) {
		fprintf(stderr, "%s: writing %s: %s\n", progname, dst,
		    strerror(errno));
		goto fail;
	}
	rmdir(tmpdir);
	fclose(fp);
	printf("%s: %zu %s written to %s\n", progname, b.nkeys,
	    b.nkeys == 1 ? "key" : "keys", dst);
	return 0;
fail:
	if (b.db != NULL)
		b.db->close(b.db, 0);
	unlink(tmpfile);
	rmdir(tmpdir);
	fclose(fp);
	return EX_DATAERR;
}

static int
dump_map(const char *path, enum map_type type)
{
	DB	*db;
	DBC	*cur;
	DBT	 k, v;
	int	 rc;

	if ((rc = db_create(&db, NULL, 0)) != 0 ||
	    (rc = db->open(db, NULL, path, NULL, DB_UNKNOWN, DB_RDONLY,
	    0)) != 0) {
		fprintf(stderr, "%s: %s: %s\n", progname, path,
		    db_strerror(rc));
		return EX_NOINPUT;
	}
	if ((rc = db->cursor(db, NULL, &cur, 0)) != 0) {
		fprintf(stderr, "%s: %s: %s\n", progname, path,
		    db_strerror(rc));
		db->close(db, 0);
		return EX_DATAERR;
	}
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	while ((rc = cur->get(cur, &k, &v, DB_NEXT)) == 0) {
		int	klen = (int)k.size, vlen = (int)v.size;

		/* tolerate NUL-terminated entries written by other tools */
		if (klen > 0 && ((char *)k.data)[klen - 1] == '\0')
			klen--;
		if (vlen > 0 && ((char *)v.data)[vlen - 1] == '\0')
			vlen--;
		if (vlen == 0 && type != MAP_ALIASES)
			printf("%.*s\n", klen, (char *)k.data);
		else
			printf("%.*s%s%.*s\n", klen, (char *)k.data,
			    type == MAP_ALIASES ? ": " : "\t", vlen,
			    (char *)v.data);
	}
	cur->close(cur);
	db->close(db, 0);
	if (rc != DB_NOTFOUND) {
		fprintf(stderr, "%s: %s: %s\n", progname, path,
		    db_strerror(rc));
		return EX_DATAERR;
	}
	return 0;
}

/* FILE into FILE.db, in aliases(5) syntax */
static int
newaliases_file(const char *src)
{
	char	dst[PATH_MAX];

	if ((size_t)snprintf(dst, sizeof(dst), "%s.db", src) >= sizeof(dst)) {
		fprintf(stderr, "%s: %s: name too long\n", progname, src);
		return EX_USAGE;
	}
	return make_map(src, dst, MAP_ALIASES, DB_HASH);
}

/*
 * newaliases without -f: the aliases table of smtpd.conf -- the one an
 * action uses with "alias <t>", else one named "aliases" -- compiled
 * from its text source (the .db path without ".db").  A file: table
 * needs no build.  No smtpd.conf, or one without an aliases table:
 * SYSCONFDIR/aliases.
 */
static int
newaliases(const char *confpath)
{
	struct smtpd_config	*c;
	struct table		*t = NULL;
	struct action		*a;
	struct stat		 sb;
	char			 err[CONF_PATH_MAX + 256], src[CONF_PATH_MAX];
	size_t			 n;
	int			 rc;

	if (stat(confpath, &sb) == -1 && errno == ENOENT)
		return newaliases_file(SMTPD_SYSCONFDIR "/aliases");
	if ((c = config_parse(confpath, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EX_CONFIG;
	}
	TAILQ_FOREACH(a, &c->actions, entry)
		if (a->alias_table[0] != '\0' &&
		    (t = config_find_table(c, a->alias_table)) != NULL)
			break;
	if (t == NULL)
		t = config_find_table(c, "aliases");
	if (t == NULL) {
		config_free(c);
		return newaliases_file(SMTPD_SYSCONFDIR "/aliases");
	}
	if (t->backend != TABLE_DB) {
		printf("%s: table %s is read as text; nothing to build\n",
		    progname, t->name);
		config_free(c);
		return 0;
	}
	n = strlen(t->path);
	if (n <= 3 || strcmp(t->path + n - 3, ".db") != 0) {
		fprintf(stderr, "%s: %s: the table file must end in .db so "
		    "that its source is known\n", progname, t->path);
		config_free(c);
		return EX_CONFIG;
	}
	snprintf(src, sizeof(src), "%.*s", (int)(n - 3), t->path);
	rc = make_map(src, t->path, MAP_ALIASES, DB_HASH);
	config_free(c);
	/*
	 * A running smtpd notices the new file by itself (table.c watches
	 * the inode), so no signal or control message is needed.
	 */
	return rc;
}

int
main(int argc, char **argv)
{
	const char	*out = NULL, *confpath = SMTPD_SYSCONFDIR "/smtpd.conf";
	const char	*aliases = NULL;
	char		 dst[PATH_MAX];
	enum map_type	 type = MAP_MAP;
	DBTYPE		 dbtype = DB_HASH;
	size_t		 n;
	int		 ch, dump = 0;

	n = strlen(argv[0]);
	if (n >= 10 && strcmp(argv[0] + n - 10, "newaliases") == 0) {
		progname = "newaliases";
		while ((ch = getopt(argc, argv, "C:f:")) != -1) {
			switch (ch) {
			case 'C':
				confpath = optarg;
				break;
			case 'f':
				aliases = optarg;
				break;
			default:
				usage();
			}
		}
		if (optind != argc)
			usage();
		if (aliases != NULL)
			return newaliases_file(aliases);
		return newaliases(confpath);
	}
	while ((ch = getopt(argc, argv, "d:o:t:U")) != -1) {
		switch (ch) {
		case 'd':
			if (strcmp(optarg, "hash") == 0)
				dbtype = DB_HASH;
			else if (strcmp(optarg, "btree") == 0)
				dbtype = DB_BTREE;
			else
				usage();
			break;
		case 'o':
			out = optarg;
			break;
		case 't':
			if (strcmp(optarg, "aliases") == 0)
				type = MAP_ALIASES;
			else if (strcmp(optarg, "set") == 0)
				type = MAP_SET;
			else if (strcmp(optarg, "map") == 0)
				type = MAP_MAP;
			else
				usage();
			break;
		case 'U':
			dump = 1;
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc)
		usage();
	if (dump)
		return dump_map(argv[optind], type);
	if (out == NULL) {
		if (snprintf(dst, sizeof(dst), "%s.db", argv[optind]) >=
		    (int)sizeof(dst))
			usage();
		out = dst;
	}
	return make_map(argv[optind], out, type, dbtype);
}
