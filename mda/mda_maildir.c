/*
 * mda_maildir.c -- delivery into a Maildir: tmp/, fsync, rename into
 * new/, fsync of new/ (mda.h), one message or a batch that shares its
 * syncs.
 *
 * Split from mda_local.c, whose opening comment holds for this file
 * too: it runs as the recipient user, reports nothing delivered before
 * it is durable, and never follows a name somebody else could plant.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mda.h"
#include "mda_local.h"
#include "platform.h"
#include "util.h"

/* room for the escaped host name inside a Maildir file name */
#define MAILDIR_HOST_MAX	160

/*
 * Maildir.
 */

/*
 * mkdir -p with mode 0700.  Only the missing tail of the path is
 * created: components that exist are never touched, so a path under a
 * directory we cannot write fails with that directory's EACCES.
 */
static int
mkdir_parents(const char *path)
{
	char	 buf[PATH_MAX];
	char	*slash;
	size_t	 len;

	len = strlen(path);
	if (len == 0 || len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';

	/* up, cutting off the last component, until one can be made */
	while (mkdir(buf, 0700) == -1 && errno != EEXIST) {
		if (errno != ENOENT)
			return -1;
		if ((slash = strrchr(buf, '/')) == NULL || slash == buf) {
			errno = ENOENT;
			return -1;
		}
		*slash = '\0';
	}
	/* and down again, putting back one separator at a time */
	while (strlen(buf) < len) {
		buf[strlen(buf)] = '/';
		if (mkdir(buf, 0700) == -1 && errno != EEXIST)
			return -1;
	}
	return 0;
}

static int
maildir_subdirs(int dfd)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	size_t	i;

	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
		if (mkdirat(dfd, sub[i], 0700) == -1 && errno != EEXIST)
			return -1;
	return 0;
}

/*
 * The host part of a Maildir name must not contain '/' (a path
 * separator) or ':' (which starts the info part); the Maildir spec
 * writes them as \057 and \072.
 */
static void
maildir_host(const char *host, char *out, size_t outlen)
{
	char		 local[256];
	const char	*esc;
	size_t		 o = 0;

	if (host == NULL || host[0] == '\0') {
		if (gethostname(local, sizeof(local)) == -1)
			local[0] = '\0';
		local[sizeof(local) - 1] = '\0';
		host = local[0] != '\0' ? local : "localhost";
	}
	for (; *host != '\0'; host++) {
		esc = *host == '/' ? "\\057" : *host == ':' ? "\\072" : NULL;
		if (esc != NULL) {
			if (o + 4 >= outlen)
				break;
			memcpy(out + o, esc, 4);
			o += 4;
		} else {
			if (o + 1 >= outlen)
				break;
			out[o++] = *host;
		}
	}
	out[o] = '\0';
}

/* time.M<usec>P<pid>Q<counter>.<host> */
static int
maildir_name(char *buf, size_t len, pid_t pid, const char *host)
{
	static unsigned int	counter;
	struct timespec		ts;
	int			n;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return -1;
	n = snprintf(buf, len, "%lld.M%06ldP%ldQ%u.%s", (long long)ts.tv_sec,
	    ts.tv_nsec / 1000, (long)pid, ++counter, host);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* A path component that is a file is a configuration error: bounce. */
static int
maildir_fail(char *err, size_t errlen, const char *what, int e)
{
	if (e == ENOTDIR)
		return mda_fail(MDA_PERMFAIL, err, errlen,
		    "5.2.0 maildir: %s: %s", what, strerror(e));
	return mda_fail_sys(err, errlen, "maildir", what, e);
}

/*
 * An open Maildir.  The deliveries that a batch begins into one Maildir
 * share it: one open() per Maildir and batch rather than one per message.
 * A batch is begun in a few milliseconds, and the next batch opens the
 * path again, so a Maildir that is moved or replaced gets the next
 * batch's mail, as it would have with a descriptor per message.
 */
struct mda_maildir {
	struct mda_maildir	*next;		/* all open Maildirs */
	char			*path;
	int			 dfd;
	dev_t			 dev;		/* its file system, for syncfs */
	pid_t			 pid;		/* for unique names */
	int			 created;	/* tmp/ new/ cur/ made once */
	int			 current;	/* of the batch being begun */
	int			 refs;		/* deliveries that hold it */
};

static struct mda_maildir	*maildirs;

/*
 * The Maildir at `path', opened (and created with its parents if missing)
 * unless the batch being begun has it open already and `share' is set.
 */
static int
maildir_get(const char *path, int share, struct mda_maildir **mdp,
    char *err, size_t errlen)
{
	struct mda_maildir	*md;
	struct stat		 st;
	int			 dfd, created = 0, e;

	for (md = share ? maildirs : NULL; md != NULL; md = md->next)
		if (md->current && strcmp(md->path, path) == 0) {
			md->refs++;
			*mdp = md;
			return MDA_OK;
		}
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1 && errno == ENOENT) {
		if (mkdir_parents(path) == -1)
			return maildir_fail(err, errlen, "mkdir", errno);
		created = 1;
		dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (dfd == -1)
		return maildir_fail(err, errlen, "open", errno);
	if (created && maildir_subdirs(dfd) == -1) {
		e = errno;
		(void)close(dfd);
		return maildir_fail(err, errlen, "mkdir", e);
	}
	if (fstat(dfd, &st) == -1) {
		e = errno;
		(void)close(dfd);
		return maildir_fail(err, errlen, "fstat", e);
	}
	if ((md = calloc(1, sizeof(*md))) == NULL ||
	    (md->path = strdup(path)) == NULL) {
		e = errno;
		free(md);
		(void)close(dfd);
		return mda_fail_sys(err, errlen, "maildir", "memory", e);
	}
	md->dfd = dfd;
	md->dev = st.st_dev;
	md->pid = getpid();
	md->created = created;
	md->current = share;
	md->refs = 1;
	md->next = maildirs;
	maildirs = md;
	*mdp = md;
	return MDA_OK;
}

static void
maildir_put(struct mda_maildir *md)
{
	struct mda_maildir	**pp;

	if (--md->refs > 0)
		return;
	for (pp = &maildirs; *pp != md; pp = &(*pp)->next)
		;
	*pp = md->next;
	(void)close(md->dfd);	/* read-only directory: nothing to lose */
	free(md->path);
	free(md);
}

void
mda_maildir_next_batch(void)
{
	struct mda_maildir	*md;

	for (md = maildirs; md != NULL; md = md->next)
		md->current = 0;
}

/*
 * One syncfs() per file system that an open Maildir is on.  Everything
 * still pending holds its Maildir open, so this covers all of it.  Where
 * the platform has no syncfs (platform.h), each file was fsynced as it
 * was written (mda_maildir_begin) and only the renames are left: an
 * fsync of each open Maildir's new/.
 */
int
mda_maildir_sync(void)
{
	struct mda_maildir	*md, *seen;
	int			 rc = 0, e = 0, ndfd;

	for (md = maildirs; md != NULL; md = md->next) {
		if (!PLATFORM_HAS_SYNCFS) {
			if ((ndfd = openat(md->dfd, "new", O_RDONLY |
			    O_DIRECTORY | O_CLOEXEC)) == -1 ||
			    fsync(ndfd) == -1) {
				e = errno;
				rc = -1;
			}
			if (ndfd != -1)
				(void)close(ndfd);
			continue;
		}
		for (seen = maildirs; seen != md; seen = seen->next)
			if (seen->dev == md->dev)
				break;
		if (seen == md && platform_syncfs(md->dfd) == -1) {
			e = errno;
			rc = -1;
		}
	}
	if (rc == -1)
		errno = e;
	return rc;
}

/* Create tmp/<unique>, creating tmp/ new/ cur/ once if they are missing. */
static int
maildir_create_tmp(struct mda_maildir *md, const char *host, char *name,
    size_t namelen, char *tmpname, size_t tmplen)
{
	int	fd, attempt;

	for (attempt = 0;; attempt++) {
		if (maildir_name(name, namelen, md->pid, host) == -1)
			return -1;
		if ((size_t)snprintf(tmpname, tmplen, "tmp/%s", name) >=
		    tmplen) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = openat(md->dfd, tmpname, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
		if (fd != -1)
			return fd;
		if (errno == ENOENT && !md->created) {
			md->created = 1;
			if (maildir_subdirs(md->dfd) == -1)
				return -1;
			continue;
		}
		/*
		 * A name is unique by construction; EEXIST can only mean
		 * the clock stepped back under a reused pid.  Next counter.
		 */
		if (errno != EEXIST || attempt >= 8)
			return -1;
	}
}

/*
 * The two halves of a Maildir delivery.  maildir_write() puts the message
 * in tmp/; maildir_publish() renames it into new/.  Between them the file
 * must reach the disk, and after the rename new/ must: a single delivery
 * fsyncs the file and the directory; a batch (mda_maildir_begin/_finish)
 * lets the caller make a whole batch durable with one sync each time.
 */
static int
maildir_write(const struct mda_message *m, int dosync,
    struct mda_maildir_pending *p, char *err, size_t errlen)
{
	char		 host[MAILDIR_HOST_MAX + 1];
	char		 name[NAME_MAX + 1];
	struct wbuf	 w;
	enum copy_error	 ce;
	int		 fd, rc, e;

	maildir_host(m->hostname, host, sizeof(host));
	if ((fd = maildir_create_tmp(p->md, host, name, sizeof(name),
	    p->tmpname, sizeof(p->tmpname))) == -1)
		return maildir_fail(err, errlen, "create in tmp/", errno);
	snprintf(p->victim, sizeof(p->victim), "%s", p->tmpname);

	if (mda_wbuf_init(&w, fd) == -1) {
		rc = mda_fail_sys(err, errlen, "maildir", "buffer", errno);
		(void)close(fd);
		return rc;
	}
	e = 0;
	if (mda_put_trace_headers(&w, m) == -1) {
		ce = COPY_WRITE;
		e = errno;
	} else
		ce = mda_copy_verbatim(&w, m, &e);
	mda_wbuf_free(&w);
	if (ce != COPY_OK) {
		rc = mda_fail_copy(err, errlen, "maildir", ce, e);
		(void)close(fd);
		return rc;
	}
	if (dosync && fsync(fd) == -1) {
		rc = mda_fail_sys(err, errlen, "maildir", "fsync", errno);
		(void)close(fd);
		return rc;
	}
	/* on NFS a write error may first be reported by close() */
	if (close(fd) == -1)
		return mda_fail_sys(err, errlen, "maildir", "close", errno);

	/* Maildir++ carries the size in the name so readers need no stat */
	if ((size_t)snprintf(p->newname, sizeof(p->newname), "new/%s,S=%lld",
	    name, (long long)w.total) >= sizeof(p->newname))
		return mda_fail_sys(err, errlen, "maildir", "rename into new/",
		    ENAMETOOLONG);
	return MDA_OK;
}

static int
maildir_publish(struct mda_maildir_pending *p, char *err, size_t errlen)
{
	struct mda_maildir	*md = p->md;
	int			 e;

	while (renameat(md->dfd, p->tmpname, md->dfd, p->newname) == -1) {
		e = errno;
		if (e == ENOENT && !md->created) {
			md->created = 1;
			if (maildir_subdirs(md->dfd) == 0)
				continue;
			e = errno;
		}
		return maildir_fail(err, errlen, "rename into new/", e);
	}
	snprintf(p->victim, sizeof(p->victim), "%s", p->newname);
	return MDA_OK;
}

static int
maildir_sync_new(int dfd, char *err, size_t errlen)
{
	int	ndfd;

	/* the rename is durable only once new/ itself is on disk */
	if ((ndfd = openat(dfd, "new", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return maildir_fail(err, errlen, "open new/", errno);
	if (fsync(ndfd) == -1) {
		(void)close(ndfd);
		return mda_fail_sys(err, errlen, "maildir", "fsync new/",
		    errno);
	}
	(void)close(ndfd);	/* read-only directory: nothing to lose */
	return MDA_OK;
}

/*
 * Not delivered, so the queue will try again: leave nothing that a
 * reader could take for a first copy.  If the unlink fails too, the error
 * already reported is the one that matters.
 */
void
mda_maildir_abort(struct mda_maildir_pending *p)
{
	if (p->md != NULL && p->victim[0])
		(void)unlinkat(p->md->dfd, p->victim, 0);
	mda_maildir_release(p);
}

void
mda_maildir_release(struct mda_maildir_pending *p)
{
	if (p->md != NULL)
		maildir_put(p->md);
	p->md = NULL;
}

int
mda_maildir_begin(const char *path, const struct mda_message *m,
    struct mda_maildir_pending *p, char *err, size_t errlen)
{
	int	rc;

	memset(p, 0, sizeof(*p));
	mda_err_clear(err, errlen);
	if ((rc = mda_envelope_check(m, "maildir", err, errlen)) != MDA_OK)
		return rc;
	if ((rc = maildir_get(path, 1, &p->md, err, errlen)) != MDA_OK)
		return rc;
	/* synced by the batch's mda_maildir_sync(), or here without syncfs */
	if ((rc = maildir_write(m, !PLATFORM_HAS_SYNCFS, p, err,
	    errlen)) != MDA_OK)
		mda_maildir_abort(p);
	return rc;
}

int
mda_maildir_finish(struct mda_maildir_pending *p, char *err, size_t errlen)
{
	int	rc;

	if ((rc = maildir_publish(p, err, errlen)) != MDA_OK)
		mda_maildir_abort(p);
	return rc;
}

int
mda_maildir_deliver(const char *path, const struct mda_message *m,
    char *err, size_t errlen)
{
	struct mda_maildir_pending	p;
	int				rc;

	memset(&p, 0, sizeof(p));
	mda_err_clear(err, errlen);
	if ((rc = mda_envelope_check(m, "maildir", err, errlen)) != MDA_OK)
		return rc;
	if ((rc = maildir_get(path, 0, &p.md, err, errlen)) != MDA_OK)
		return rc;
	if ((rc = maildir_write(m, 1, &p, err, errlen)) != MDA_OK ||
	    (rc = maildir_publish(&p, err, errlen)) != MDA_OK ||
	    (rc = maildir_sync_new(p.md->dfd, err, errlen)) != MDA_OK) {
		mda_maildir_abort(&p);
		return rc;
	}
	mda_maildir_release(&p);
	return MDA_OK;
}
