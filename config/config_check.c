/*
 * config_check.c -- can each process open the files smtpd.conf names?
 *
 * Parsing proves the file is well formed, not that the daemon can use
 * it: a credentials table under /root (mode 0600) parsed fine, and only
 * at run time did every AUTH get 454, because the lookup process that
 * reads it runs as _smtpd.  Permission bits, ACLs, a directory on the
 * way, a security module: the only sure answer is to try, so a child
 * becomes the user that will open each file and opens it.
 *
 * Who opens what:
 *   - file: and db: tables: lookup, as _smtpd, when first asked;
 *   - tables a relay action names with "auth", and "mta tls-policy":
 *     the mta, as root, before it drops privileges (mta.c,
 *     mta_secrets_init(); mta_tlspolicy.c);
 *   - "mta ca-file": the mta, as root (mta.c, mta_tls_init());
 *   - pki certificates and keys: each smtp worker, as root, before it
 *     drops privileges (smtp_tls.c).
 *
 * smtpd -n reports every file that fails as "FILE:LINE: ..." and exits
 * 1; the daemon logs the same at start-up and carries on, as it always
 * did (the files may appear later).  Only root can take another user's
 * identity: run by anyone else, the check says so and checks nothing.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "platform.h"
#include "privsep.h"

#define CHECK_NOT_REGULAR	250	/* child exit codes beyond errno */
#define CHECK_NO_IDENTITY	251

struct who {
	const char	*name;		/* "_smtpd (lookup)" */
	uid_t		 uid;
	gid_t		 gid;
};

/* open (or, exec: run) path as who, in a child; 0 or an errno-like code */
static int
open_as(const struct who *w, const char *path, int exec)
{
	struct stat	sb;
	pid_t		pid;
	int		status, fd;

	if ((pid = fork()) == -1)
		return errno;
	if (pid == 0) {
		if (w->uid != 0 && (setgroups(1, &w->gid) == -1 ||
		    platform_setresgid(w->gid, w->gid, w->gid) == -1 ||
		    platform_setresuid(w->uid, w->uid, w->uid) == -1))
			_exit(CHECK_NO_IDENTITY);
		if (exec && access(path, X_OK) == -1)
			_exit(errno > 0 && errno < CHECK_NOT_REGULAR ? errno :
			    EIO);
		if (exec)
			_exit(stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? 0 :
			    CHECK_NOT_REGULAR);
		if ((fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK)) == -1)
			_exit(errno > 0 && errno < CHECK_NOT_REGULAR ? errno :
			    EIO);
		if (fstat(fd, &sb) == -1)
			_exit(EIO);
		_exit(S_ISREG(sb.st_mode) ? 0 : CHECK_NOT_REGULAR);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return errno;
	if (!WIFEXITED(status))
		return EIO;
	return WEXITSTATUS(status);
}

static void report(FILE *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
report(FILE *out, const char *fmt, ...)
{
	char	buf[CONF_PATH_MAX * 3];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (out != NULL)
		fprintf(out, "%s\n", buf);
	else
		log_warnx("%s", buf);
}

static int
check_one(const struct smtpd_config *c, FILE *out, const struct who *w,
    int line, const char *what, const char *path, int exec)
{
	int	rc;

	if ((rc = open_as(w, path, exec)) == 0)
		return 0;
	report(out, "%s:%d: %s %s: %s cannot %s it: %s", c->path, line,
	    what, path, w->name, exec ? "run" : "read",
	    rc == CHECK_NOT_REGULAR ? "not a regular file" :
	    rc == CHECK_NO_IDENTITY ?
	    "cannot take that identity" : strerror(rc));
	return 1;
}

/* a table the mta reads as root: relay credentials */
static int
table_read_by_mta(const struct smtpd_config *c, const struct table *t)
{
	const struct action	*a;

	TAILQ_FOREACH(a, &c->actions, entry)
		if (a->type == ACTION_RELAY &&
		    strcmp(a->relay_auth_table, t->name) == 0)
			return 1;
	/* and the TLS policy table (mta/mta_tlspolicy.c) */
	return strcmp(c->mta_tls_policy, t->name) == 0;
}

/*
 * Only the pkis of TLS listeners and of relay actions (a client
 * certificate) are loaded: by the keys process (the key) and the smtp
 * workers and the mta (the certificate).
 */
int
config_pki_used(const struct smtpd_config *c, const struct pki *k)
{
	const struct listener	*l;
	const struct action	*a;
	int			 i;

	TAILQ_FOREACH(l, &c->listeners, entry) {
		if (l->tls == LISTEN_TLS_NONE)
			continue;
		if (strcmp(l->pki, k->name) == 0)
			return 1;
		for (i = 0; i < l->nsni_pki; i++)
			if (strcmp(l->sni_pki[i], k->name) == 0)
				return 1;
	}
	TAILQ_FOREACH(a, &c->actions, entry)
		if (a->type == ACTION_RELAY && strcmp(a->relay_pki, k->name) == 0)
			return 1;
	return 0;
}

int
config_check_files(const struct smtpd_config *c, FILE *out)
{
	struct who		 lookup, root = { "root (smtpd, for keys)",
				    0, 0 };
	const struct table	*t;
	const struct pki	*k;
	struct passwd		*pw;
	char			 what[CONF_HOST_MAX + 16];
	char			 prog[CONF_PATH_MAX];
	int			 n = 0;

	if (geteuid() != 0) {
		if (out != NULL)
			fprintf(out, "not root: not checked whether each "
			    "process can read the files the configuration "
			    "names\n");
		return 0;
	}
	if ((pw = getpwnam(SMTPD_USER)) == NULL) {
		report(out, "%s:0: user %s does not exist (see INSTALL)",
		    c->path, SMTPD_USER);
		return 1;
	}
	lookup.name = SMTPD_USER " (lookup)";
	lookup.uid = pw->pw_uid;
	lookup.gid = pw->pw_gid;
	TAILQ_FOREACH(t, &c->tables, entry) {
		if (t->backend == TABLE_INLINE)
			continue;
		snprintf(what, sizeof(what), "table %s:", t->name);
		if (t->backend == TABLE_REMOTE) {
			/*
			 * a shared table's file (pgsql:, ldap:, redis:) is
			 * read by the parent, as root, and checked by its
			 * backend (table_remote_load()); socketmap: names no
			 * file; a proc: program is run by lookup, as its user
			 */
			if (strcmp(t->scheme, "proc") == 0) {
				snprintf(prog, sizeof(prog), "%s", t->path);
				prog[strcspn(prog, " \t")] = '\0';
				n += check_one(c, out, &lookup, t->line, what,
				    prog, 1);
			}
			continue;
		}
		n += check_one(c, out, table_read_by_mta(c, t) ? &root :
		    &lookup, t->line, what, t->path, 0);
	}
	if (c->mta_ca_file[0] != '\0')
		n += check_one(c, out, &root, c->mta_ca_file_line,
		    "mta ca-file", c->mta_ca_file, 0);
	TAILQ_FOREACH(k, &c->pkis, entry) {
		if (!config_pki_used(c, k))
			continue;
		snprintf(what, sizeof(what), "pki %s cert", k->name);
		n += check_one(c, out, &root, k->cert_line, what,
		    k->cert_file, 0);
		snprintf(what, sizeof(what), "pki %s key", k->name);
		n += check_one(c, out, &root, k->key_line, what, k->key_file,
		    0);
	}
	return n;
}

int
config_pki_index(const struct smtpd_config *c, const struct pki *k)
{
	const struct pki	*p;
	int			 i = 0;

	TAILQ_FOREACH(p, &c->pkis, entry) {
		if (p == k)
			return i;
		i++;
	}
	return -1;
}
