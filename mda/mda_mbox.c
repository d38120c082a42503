/*
 * mda_mbox.c -- appending to an mbox (a dotlock and an fcntl lock, a
 * From_ line, mboxrd quoting) and to a plain file (aliases "/file").
 *
 * Split from mda_local.c, whose opening comment holds for this file
 * too: it runs as the recipient user (or on a descriptor root opened,
 * mda_mbox_deliver_fd()), reports nothing delivered before it is
 * fsynced, refuses a mailbox that is not a regular file of one link that
 * the recipient owns, and truncates a failed append away.
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
#include "util.h"

#define LOCK_WAIT_SEC	30	/* give up on a dotlock or fcntl lock */
#define LOCK_STALE_SEC	300	/* a dotlock this old was left by a crash */
#define LOCK_PAUSE_MS	100	/* retry every 100..200 ms */

/* "Mon Jan  1 00:00:00 1970" */
#define MBOX_DATE_LEN	24

/* The mboxrd quoting state at the start of a line of the message. */
struct mboxrd {
	int	 bol;		/* at the beginning of a line */
	size_t	 ngt;		/* '>' seen at the start of this line */
	size_t	 nfrom;		/* bytes of "From " matched after them */
};

struct dotlock {
	char	 path[PATH_MAX];
	dev_t	 dev;
	ino_t	 ino;
	int	 held;
};

/*
 * mboxrd: a line matching ^>*From  gets one more '>', so that a reader
 * can undo the quoting exactly by removing one '>' from the same lines.
 * The start of a line may straddle two reads, so the '>'s and the part
 * of "From " seen so far are counted, not buffered, and written out once
 * the line has been decided.
 */
static const char mbox_from[] = "From ";

static int
mboxrd_release(struct wbuf *w, struct mboxrd *q)
{
	if (mda_wbuf_putc_n(w, '>', q->ngt) == -1 ||
	    mda_wbuf_put(w, mbox_from, q->nfrom) == -1)
		return -1;
	q->bol = 0;
	return 0;
}

static int
mboxrd_put(struct wbuf *w, struct mboxrd *q, const char *p, size_t n)
{
	const char	*end = p + n, *nl;

	while (p < end) {
		if (!q->bol) {
			nl = memchr(p, '\n', (size_t)(end - p));
			if (nl == NULL)
				return mda_wbuf_put(w, p, (size_t)(end - p));
			if (mda_wbuf_put(w, p, (size_t)(nl + 1 - p)) == -1)
				return -1;
			p = nl + 1;
			q->bol = 1;
			q->ngt = 0;
			q->nfrom = 0;
			continue;
		}
		if (q->nfrom == 0 && *p == '>') {
			q->ngt++;
			p++;
			continue;
		}
		if (*p == mbox_from[q->nfrom]) {
			p++;
			if (++q->nfrom < sizeof(mbox_from) - 1)
				continue;
			if (mda_wbuf_put(w, ">", 1) == -1 ||
			    mboxrd_release(w, q) == -1)
				return -1;
			continue;
		}
		/* not a From_ line: emit what was held back, go on as usual */
		if (mboxrd_release(w, q) == -1)
			return -1;
	}
	return 0;
}

static enum copy_error
copy_mboxrd(struct wbuf *w, const struct mda_message *m, int *errp)
{
	struct mboxrd	 q = { 1, 0, 0 };
	char		*rbuf;
	off_t		 off = (off_t)m->headlen;
	ssize_t		 r;

	if (m->headlen > 0 && mboxrd_put(w, &q, m->head, m->headlen) == -1)
		goto bad_write;
	if ((rbuf = malloc(MDA_BUFSIZE)) == NULL) {
		*errp = errno;
		return COPY_READ;
	}
	for (;;) {
		r = spool_msg_pread(&m->file, rbuf, MDA_BUFSIZE, off);
		if (r == -1) {
			*errp = errno;
			free(rbuf);
			return COPY_READ;
		}
		if (r == 0)
			break;
		off += r;
		if (mboxrd_put(w, &q, rbuf, (size_t)r) == -1) {
			*errp = errno;
			free(rbuf);
			return COPY_WRITE;
		}
	}
	free(rbuf);
	if (q.bol && mboxrd_release(w, &q) == -1)
		goto bad_write;
	/* the next From_ line must start a line of its own */
	if (w->last != '\n' && mda_wbuf_put(w, "\n", 1) == -1)
		goto bad_write;
	/* and is preceded by an empty line */
	if (mda_wbuf_put(w, "\n", 1) == -1 || mda_wbuf_flush(w) == -1)
		goto bad_write;
	return COPY_OK;

bad_write:
	*errp = errno;
	return COPY_WRITE;
}

/*
 * mbox and plain files.
 */

static int
lock_wait_start(struct timespec *start)
{
	return clock_gettime(CLOCK_MONOTONIC, start);
}

static int
lock_wait_over(const struct timespec *start)
{
	struct timespec	now;

	if (clock_gettime(CLOCK_MONOTONIC, &now) == -1)
		return 1;
	return now.tv_sec - start->tv_sec >= LOCK_WAIT_SEC;
}

/*
 * Sleep 100..200 ms.  The jitter keeps two deliveries to the same mailbox
 * from retrying in lock step.  An interrupted sleep is just a shorter
 * one: the deadline is what bounds the wait.
 */
static void
lock_pause(void)
{
	struct timespec	ts;
	long		ms;

	ms = LOCK_PAUSE_MS + (long)arc4random_uniform(LOCK_PAUSE_MS);
	ts.tv_sec = 0;
	ts.tv_nsec = ms * 1000000L;
	(void)nanosleep(&ts, NULL);
}

/*
 * The dotlock's temporary name: "path.lock.<host>.<pid>.<random>", with
 * the host cut short rather than have the name exceed NAME_MAX.
 */
static int
dotlock_tmpname(char *buf, size_t len, const char *path, const char *host)
{
	char		 safehost[64], local[256];
	const char	*base;
	size_t		 fixed, room, i;
	int		 n;

	if (host == NULL || host[0] == '\0') {
		if (gethostname(local, sizeof(local)) == -1)
			local[0] = '\0';
		local[sizeof(local) - 1] = '\0';
		host = local;
	}
	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	/* ".lock." + "." + pid (at most 10 digits) + "." + 8 hex digits */
	fixed = strlen(base) + 6 + 1 + 10 + 1 + 8;
	room = fixed < NAME_MAX ? NAME_MAX - fixed : 0;
	if (room > sizeof(safehost) - 1)
		room = sizeof(safehost) - 1;
	for (i = 0; i < room && host[i] != '\0'; i++) {
		unsigned char c = (unsigned char)host[i];

		safehost[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' ? (char)c :
		    '_';
	}
	safehost[i] = '\0';
	n = snprintf(buf, len, "%s.lock.%s.%ld.%08x", path, safehost,
	    (long)getpid(), (unsigned int)arc4random());
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Create the dotlock's temporary file; -1 and EACCES if the dir is not ours. */
static int
dotlock_create_tmp(struct dotlock *dl, char *tmp, size_t tmplen,
    const char *path, const char *host)
{
	struct stat	st;
	char		line[32];
	int		fd, n, e, attempt;

	for (attempt = 0;; attempt++) {
		if (dotlock_tmpname(tmp, tmplen, path, host) == -1)
			return -1;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_NOCTTY | O_CLOEXEC, 0600);
		if (fd != -1)
			break;
		if (errno != EEXIST || attempt >= 8)
			return -1;
	}
	/* the pid inside is for the administrator looking at a stuck lock */
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (fstat(fd, &st) == -1 || write_full(fd, line, (size_t)n) == -1) {
		e = errno;
		(void)close(fd);
		(void)unlink(tmp);
		errno = e;
		return -1;
	}
	if (close(fd) == -1) {
		e = errno;
		(void)unlink(tmp);
		errno = e;
		return -1;
	}
	dl->dev = st.st_dev;
	dl->ino = st.st_ino;
	return 0;
}

/*
 * Take "path.lock" the way that is safe on NFS, where O_EXCL is not:
 * create a file of our own, link(2) it to the lock name, and believe the
 * link count of our file rather than link's return value (the reply to a
 * link that worked may be lost and the retransmission fail with EEXIST).
 *
 * If we cannot create files in the mailbox directory (Debian's /var/mail
 * is root:mail 2775 and we may not be in group mail), there is no
 * dotlock to be had and the fcntl lock alone protects the append; that is
 * what every other program in that position does too.
 */
static int
dotlock_acquire(struct dotlock *dl, const char *path, const char *host,
    const char *label, char *err, size_t errlen)
{
	char		tmp[PATH_MAX];
	struct stat	st;
	struct timespec	start;
	int		e, linked;

	dl->held = 0;
	if ((size_t)snprintf(dl->path, sizeof(dl->path), "%s.lock", path) >=
	    sizeof(dl->path))
		return mda_fail_sys(err, errlen, label, "dotlock",
		    ENAMETOOLONG);
	if (dotlock_create_tmp(dl, tmp, sizeof(tmp), path, host) == -1) {
		if (errno == EACCES)
			return MDA_OK;
		return mda_fail_sys(err, errlen, label, "dotlock", errno);
	}
	if (lock_wait_start(&start) == -1) {
		e = errno;
		goto fail;
	}
	for (;;) {
		linked = link(tmp, dl->path) == 0;
		e = errno;
		if (lstat(tmp, &st) == -1) {
			e = errno;
			goto fail;
		}
		if (linked || st.st_nlink == 2)
			break;
		if (e != EEXIST)
			goto fail;
		if (lock_wait_over(&start)) {
			(void)unlink(tmp);
			return mda_fail(MDA_TEMPFAIL, err, errlen,
			    "4.2.0 %s: mailbox is locked (dotlock): timed out",
			    label);
		}
		if (lstat(dl->path, &st) == -1) {
			if (errno == ENOENT)
				continue;	/* just released */
			e = errno;
			goto fail;
		}
		/* a lock this old was left by a crashed program */
		if (time(NULL) - st.st_mtime > LOCK_STALE_SEC) {
			if (unlink(dl->path) == -1 && errno != ENOENT) {
				e = errno;
				goto fail;
			}
			continue;
		}
		lock_pause();
	}
	dl->held = 1;
	if (unlink(tmp) == -1) {
		e = errno;
		goto fail;
	}
	return MDA_OK;

fail:
	if (dl->held) {
		(void)unlink(dl->path);
		dl->held = 0;
	}
	(void)unlink(tmp);
	return mda_fail_sys(err, errlen, label, "dotlock", e);
}

static void
dotlock_release(struct dotlock *dl)
{
	struct stat	st;

	if (!dl->held)
		return;
	dl->held = 0;
	/*
	 * If our lock was broken as stale and somebody else holds the name
	 * now, it is theirs.  A lock we fail to remove goes stale in five
	 * minutes; the mail is delivered either way.
	 */
	if (lstat(dl->path, &st) == 0 && st.st_dev == dl->dev &&
	    st.st_ino == dl->ino)
		(void)unlink(dl->path);
}

static int
fcntl_lock_wait(int fd, int *timedoutp)
{
	struct flock	fl;
	struct timespec	start;

	*timedoutp = 0;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;		/* l_start = l_len = 0: whole file */
	if (lock_wait_start(&start) == -1)
		return -1;
	for (;;) {
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EACCES && errno != EAGAIN)
			return -1;
		if (lock_wait_over(&start)) {
			*timedoutp = 1;
			return -1;
		}
		lock_pause();
	}
}

/*
 * Only a regular file that is ours and has no other name: a hard link to
 * somebody's file in a directory we can write would otherwise get our
 * mail appended, and a device or FIFO would hang or leak it.
 */
static const char *
mbox_unsafe(const struct stat *st, uid_t owner)
{
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_nlink != 1)
		return "more than one link";
	if (st->st_uid != owner)
		return "not owned by the recipient";
	return NULL;
}

/* "Sun Nov 22 14:00:00 2026", as asctime(3) but without the locale */
static int
mbox_date(char *buf, size_t len)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm	tm;
	time_t		now;

	if ((now = time(NULL)) == (time_t)-1 || localtime_r(&now, &tm) == NULL)
		return -1;
	if (tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11)
		return -1;
	(void)snprintf(buf, len, "%s %s %2d %02d:%02d:%02d %d",
	    days[tm.tm_wday], months[tm.tm_mon], tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
	return 0;
}

/*
 * "From sender date\n".  A quoted local part may contain spaces, which
 * would make readers take part of the address for the date; they become
 * '_' here (the Return-Path header keeps the address exactly).
 */
static int
put_from_line(struct wbuf *w, const char *sender, const char *date)
{
	const char	*sp;

	if (sender[0] == '\0')
		sender = "MAILER-DAEMON";
	if (mda_wbuf_puts(w, "From ") == -1)
		return -1;
	while ((sp = strchr(sender, ' ')) != NULL) {
		if (mda_wbuf_put(w, sender, (size_t)(sp - sender)) == -1 ||
		    mda_wbuf_put(w, "_", 1) == -1)
			return -1;
		sender = sp + 1;
	}
	if (mda_wbuf_puts(w, sender) == -1 || mda_wbuf_puts(w, " ") == -1 ||
	    mda_wbuf_puts(w, date) == -1 || mda_wbuf_puts(w, "\n") == -1)
		return -1;
	return 0;
}

/* Open the mailbox for appending, refusing anything but our own file. */
static int
mbox_open(const char *path, const char *label, int *fdp, char *err,
    size_t errlen)
{
	struct stat	 st;
	const char	*why;
	int		 fd, flags, e;

	/*
	 * O_NONBLOCK only so that a FIFO planted under the name cannot
	 * hang us in open(2); it is cleared once we know it is a file.
	 */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd == -1) {
		e = errno;
		if (e == ELOOP || e == EISDIR || e == ENXIO)
			return mda_fail(MDA_PERMFAIL, err, errlen,
			    "5.2.0 %s: unsafe file: %s", label,
			    e == ELOOP ? "symbolic link" : strerror(e));
		return mda_fail_sys(err, errlen, label, "open", e);
	}
	if (fstat(fd, &st) == -1) {
		e = errno;
		(void)close(fd);
		return mda_fail_sys(err, errlen, label, "fstat", e);
	}
	if ((why = mbox_unsafe(&st, geteuid())) != NULL) {
		(void)close(fd);
		return mda_fail(MDA_PERMFAIL, err, errlen,
		    "5.2.0 %s: unsafe file: %s", label, why);
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		e = errno;
		(void)close(fd);
		return mda_fail_sys(err, errlen, label, "fcntl", e);
	}
	*fdp = fd;
	return MDA_OK;
}

/*
 * Lock the open mailbox and return its size.  The name is checked again
 * under the lock: a mail reader that rewrites the mailbox by rename may
 * have replaced the file between our open and our lock (*replacedp).
 */
static int
mbox_lock(int fd, const char *path, uid_t owner, const char *label,
    off_t *sizep, int *replacedp, char *err, size_t errlen)
{
	struct stat	 st, lst;
	const char	*why;
	int		 timedout, gone;

	*replacedp = 0;
	if (fcntl_lock_wait(fd, &timedout) == -1) {
		if (timedout)
			return mda_fail(MDA_TEMPFAIL, err, errlen,
			    "4.2.0 %s: mailbox is locked (fcntl): timed out",
			    label);
		return mda_fail_sys(err, errlen, label, "fcntl lock", errno);
	}
	if (fstat(fd, &st) == -1)
		return mda_fail_sys(err, errlen, label, "fstat", errno);
	/*
	 * Renamed over, or removed (a reader may delete a mailbox it has
	 * emptied): appending to a file without that name loses the mail.
	 */
	if (lstat(path, &lst) == -1) {
		if (errno != ENOENT)
			return mda_fail_sys(err, errlen, label, "lstat", errno);
		gone = 1;
	} else
		gone = lst.st_dev != st.st_dev || lst.st_ino != st.st_ino;
	if (gone || st.st_nlink == 0) {
		*replacedp = 1;
		return mda_fail(MDA_TEMPFAIL, err, errlen,
		    "4.2.0 %s: mailbox replaced while locking", label);
	}
	/* and still safe: a link may have been added meanwhile */
	if ((why = mbox_unsafe(&st, owner)) != NULL)
		return mda_fail(MDA_PERMFAIL, err, errlen,
		    "5.2.0 %s: unsafe file: %s", label, why);
	*sizep = st.st_size;
	return MDA_OK;
}

/* Write one message at the end of the locked mailbox and fsync it. */
static int
mbox_write(int fd, const struct mda_message *m, const char *label,
    char *err, size_t errlen)
{
	char		date[MBOX_DATE_LEN + 8];
	struct wbuf	w;
	enum copy_error	ce;
	int		e = 0;

	if (mbox_date(date, sizeof(date)) == -1)
		return mda_fail(MDA_TEMPFAIL, err, errlen,
		    "4.3.0 %s: cannot format the date", label);
	if (mda_wbuf_init(&w, fd) == -1)
		return mda_fail_sys(err, errlen, label, "buffer", errno);
	if (put_from_line(&w, m->sender, date) == -1 ||
	    mda_put_trace_headers(&w, m) == -1) {
		ce = COPY_WRITE;
		e = errno;
	} else
		ce = copy_mboxrd(&w, m, &e);
	mda_wbuf_free(&w);
	if (ce != COPY_OK)
		return mda_fail_copy(err, errlen, label, ce, e);
	if (fsync(fd) == -1)
		return mda_fail_sys(err, errlen, label, "fsync", errno);
	return MDA_OK;
}

/*
 * Cut a failed append off again, so that the mailbox never ends in half
 * a message that the next one would be glued to.
 */
static void
mbox_rollback(int fd, off_t size, char *err, size_t errlen)
{
	size_t	len;

	if (ftruncate(fd, size) == 0 && fsync(fd) == 0)
		return;
	if (err != NULL && errlen > 0) {
		len = strlen(err);
		(void)snprintf(err + len, errlen - len,
		    " (rollback failed: %s)", strerror(errno));
	}
}

static int
append_deliver(const char *path, const char *label, int use_dotlock,
    const struct mda_message *m, char *err, size_t errlen)
{
	struct dotlock	dl;
	off_t		size = 0;
	int		fd = -1, rc, replaced, attempt;

	mda_err_clear(err, errlen);
	if ((rc = mda_envelope_check(m, label, err, errlen)) != MDA_OK)
		return rc;
	dl.held = 0;
	if (use_dotlock && (rc = dotlock_acquire(&dl, path, m->hostname,
	    label, err, errlen)) != MDA_OK)
		return rc;
	for (attempt = 0;; attempt++) {
		if ((rc = mbox_open(path, label, &fd, err, errlen)) != MDA_OK) {
			dotlock_release(&dl);
			return rc;
		}
		rc = mbox_lock(fd, path, geteuid(), label, &size, &replaced,
		    err, errlen);
		if (!replaced || attempt == 2)
			break;
		(void)close(fd);	/* nothing written yet */
	}
	if (rc == MDA_OK) {
		/* a retry may have left the text of the replaced attempt */
		mda_err_clear(err, errlen);
		if ((rc = mbox_write(fd, m, label, err, errlen)) != MDA_OK)
			mbox_rollback(fd, size, err, errlen);
	}
	/*
	 * Closing drops the fcntl lock.  Its result cannot change the
	 * outcome: success was decided by fsync above, and a failure has
	 * been rolled back already.
	 */
	(void)close(fd);
	dotlock_release(&dl);
	return rc;
}

int
mda_mbox_deliver(const char *path, const struct mda_message *m, char *err,
    size_t errlen)
{
	return append_deliver(path, "mbox", 1, m, err, errlen);
}

/*
 * Root's mailbox, opened by root (the only one who may) and handed to a
 * process that is not root: the same locks and checks as above, except
 * that the file is root's and cannot be opened again here.  A mailbox
 * replaced between that open and our locks (a reader rewriting it by
 * rename) is a temporary failure; the next attempt opens the new one.
 */
int
mda_mbox_deliver_fd(int fd, const char *path, uid_t owner,
    const struct mda_message *m, char *err, size_t errlen)
{
	struct dotlock	 dl;
	struct stat	 st;
	const char	*why, *label = "mbox";
	off_t		 size = 0;
	int		 rc, replaced, flags;

	mda_err_clear(err, errlen);
	dl.held = 0;
	if ((rc = mda_envelope_check(m, label, err, errlen)) != MDA_OK)
		goto out;
	if (fstat(fd, &st) == -1) {
		rc = mda_fail_sys(err, errlen, label, "fstat", errno);
		goto out;
	}
	if ((why = mbox_unsafe(&st, owner)) != NULL) {
		rc = mda_fail(MDA_PERMFAIL, err, errlen,
		    "5.2.0 %s: unsafe file: %s", label, why);
		goto out;
	}
	/* opened O_NONBLOCK against a planted FIFO; a file now */
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		rc = mda_fail_sys(err, errlen, label, "fcntl", errno);
		goto out;
	}
	if ((rc = dotlock_acquire(&dl, path, m->hostname, label, err,
	    errlen)) != MDA_OK)
		goto out;
	rc = mbox_lock(fd, path, owner, label, &size, &replaced, err,
	    errlen);
	if (rc == MDA_OK && (rc = mbox_write(fd, m, label, err, errlen)) !=
	    MDA_OK)
		mbox_rollback(fd, size, err, errlen);
out:
	(void)close(fd);	/* drops the fcntl lock, before the dotlock */
	dotlock_release(&dl);
	return rc;
}

int
mda_file_deliver(const char *path, const struct mda_message *m, char *err,
    size_t errlen)
{
	/* "user: /dev/null" in aliases discards, as administrators expect */
	if (strcmp(path, "/dev/null") == 0) {
		mda_err_clear(err, errlen);
		return MDA_OK;
	}
	return append_deliver(path, "file", 0, m, err, errlen);
}
