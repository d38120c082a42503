/*
 * mda_local.c -- local delivery writers: Maildir, mbox and plain files,
 * and the expansion of mailbox path templates.
 *
 * These run in a delivery child that has already become the recipient
 * user, so the kernel's permission checks are the access policy.  What
 * this file adds on top:
 *
 *  - durability: nothing is reported delivered before it has been
 *    fsynced (the file, and for Maildir the directory it was renamed
 *    into), so MDA_OK may safely let the queue forget the envelope;
 *  - refusal of files somebody else could have planted for us: a symlink
 *    or hard link named like our mailbox would otherwise let a local user
 *    make us append mail to a file of their choosing;
 *  - all-or-nothing appends: an mbox that ends in half a message corrupts
 *    every message after it, so a failed append is truncated away.
 *
 * Both the spool file and the destination are handled through one large
 * buffer: one pread(2) and one write(2) per 64 KB, never a call per line.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mda.h"
#include "util.h"

#define MDA_BUFSIZE	(64 * 1024)

#define LOCK_WAIT_SEC	30	/* give up on a dotlock or fcntl lock */
#define LOCK_STALE_SEC	300	/* a dotlock this old was left by a crash */
#define LOCK_PAUSE_MS	100	/* retry every 100..200 ms */

/* "Mon Jan  1 00:00:00 1970" */
#define MBOX_DATE_LEN	24

struct wbuf {
	int	 fd;
	char	*buf;
	size_t	 len;
	size_t	 size;
	off_t	 total;		/* bytes queued so far, flushed or not */
	int	 last;		/* last byte queued, -1 before the first */
};

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

/* what went wrong while copying: the spool side or the mailbox side */
enum copy_error {
	COPY_OK,
	COPY_READ,
	COPY_WRITE,
};

static int	fail(int, char *, size_t, const char *, ...)
		    __attribute__((format(printf, 4, 5)));

static int
fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/*
 * A failed system call while writing a mailbox is a temporary failure:
 * the queue retries, and the administrator fixes the disk or the
 * permissions in the meantime.  A full disk or quota gets its own status
 * (RFC 3463 4.2.2) so that the bounce, if it comes to that, says so.
 */
/* Success leaves no text behind: the caller supplies its own. */
static void
err_clear(char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

static int
fail_sys(char *err, size_t errlen, const char *label, const char *what,
    int e)
{
	if (e == EDQUOT || e == ENOSPC || e == EFBIG)
		return fail(MDA_TEMPFAIL, err, errlen,
		    "4.2.2 %s: %s: %s (mailbox full)", label, what,
		    strerror(e));
	return fail(MDA_TEMPFAIL, err, errlen, "4.2.0 %s: %s: %s", label,
	    what, strerror(e));
}

static int
fail_copy(char *err, size_t errlen, const char *label, enum copy_error ce,
    int e)
{
	if (ce == COPY_READ)
		return fail(MDA_TEMPFAIL, err, errlen,
		    "4.3.0 %s: reading queued message: %s", label,
		    strerror(e));
	return fail_sys(err, errlen, label, "write", e);
}

/*
 * The envelope was validated when it was received; this is the last line
 * of defence against a header injection through Return-Path or
 * Delivered-To, and against a From_ line that a reader would split.
 */
static int
header_safe(const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

static int
envelope_check(const struct mda_message *m, const char *label, char *err,
    size_t errlen)
{
	if (m->sender == NULL || !header_safe(m->sender))
		return fail(MDA_PERMFAIL, err, errlen,
		    "5.1.7 %s: invalid envelope sender", label);
	if (m->rcpt == NULL || m->rcpt[0] == '\0' || !header_safe(m->rcpt))
		return fail(MDA_PERMFAIL, err, errlen,
		    "5.1.3 %s: invalid envelope recipient", label);
	return MDA_OK;
}

/*
 * Buffered output.
 */

static int
wbuf_init(struct wbuf *w, int fd)
{
	w->fd = fd;
	w->len = 0;
	w->size = MDA_BUFSIZE;
	w->total = 0;
	w->last = -1;
	if ((w->buf = malloc(w->size)) == NULL)
		return -1;
	return 0;
}

static void
wbuf_free(struct wbuf *w)
{
	free(w->buf);
	w->buf = NULL;
}

static int
wbuf_flush(struct wbuf *w)
{
	if (w->len == 0)
		return 0;
	if (write_full(w->fd, w->buf, w->len) == -1)
		return -1;
	w->len = 0;
	return 0;
}

static int
wbuf_put(struct wbuf *w, const char *p, size_t n)
{
	size_t	room;

	if (n == 0)
		return 0;
	w->total += (off_t)n;
	w->last = (unsigned char)p[n - 1];
	while (n > 0) {
		if (w->len == w->size && wbuf_flush(w) == -1)
			return -1;
		room = w->size - w->len;
		if (room > n)
			room = n;
		memcpy(w->buf + w->len, p, room);
		w->len += room;
		p += room;
		n -= room;
	}
	return 0;
}

static int
wbuf_puts(struct wbuf *w, const char *s)
{
	return wbuf_put(w, s, strlen(s));
}

static int
wbuf_putc_n(struct wbuf *w, char c, size_t n)
{
	char	chunk[64];
	size_t	k;

	memset(chunk, c, sizeof(chunk));
	while (n > 0) {
		k = n < sizeof(chunk) ? n : sizeof(chunk);
		if (wbuf_put(w, chunk, k) == -1)
			return -1;
		n -= k;
	}
	return 0;
}

/* "Return-Path: <sender>\nDelivered-To: rcpt\n" */
static int
put_trace_headers(struct wbuf *w, const struct mda_message *m)
{
	if (wbuf_puts(w, "Return-Path: <") == -1 ||
	    wbuf_puts(w, m->sender) == -1 ||
	    wbuf_puts(w, ">\nDelivered-To: ") == -1 ||
	    wbuf_puts(w, m->rcpt) == -1 ||
	    wbuf_puts(w, "\n") == -1)
		return -1;
	return 0;
}

/*
 * Copy the spool message verbatim: what the caller read already, then the
 * rest, read straight into the buffer.
 */
static enum copy_error
copy_verbatim(struct wbuf *w, const struct mda_message *m, int *errp)
{
	off_t	off = (off_t)m->headlen;
	ssize_t	r;

	if (m->headlen > 0 && wbuf_put(w, m->head, m->headlen) == -1)
		goto bad_write;
	for (;;) {
		if (w->len == w->size && wbuf_flush(w) == -1)
			goto bad_write;
		r = msg_pread(m->fd, w->buf + w->len, w->size - w->len,
		    off, m->size);
		if (r == -1) {
			*errp = errno;
			return COPY_READ;
		}
		if (r == 0)
			break;
		w->len += (size_t)r;
		w->total += r;
		w->last = (unsigned char)w->buf[w->len - 1];
		off += r;
	}
	if (wbuf_flush(w) == -1)
		goto bad_write;
	return COPY_OK;

bad_write:
	*errp = errno;
	return COPY_WRITE;
}

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
	if (wbuf_putc_n(w, '>', q->ngt) == -1 ||
	    wbuf_put(w, mbox_from, q->nfrom) == -1)
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
				return wbuf_put(w, p, (size_t)(end - p));
			if (wbuf_put(w, p, (size_t)(nl + 1 - p)) == -1)
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
			if (wbuf_put(w, ">", 1) == -1 ||
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
		r = msg_pread(m->fd, rbuf, MDA_BUFSIZE, off, m->size);
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
	if (w->last != '\n' && wbuf_put(w, "\n", 1) == -1)
		goto bad_write;
	/* and is preceded by an empty line */
	if (wbuf_put(w, "\n", 1) == -1 || wbuf_flush(w) == -1)
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
		return fail_sys(err, errlen, label, "dotlock", ENAMETOOLONG);
	if (dotlock_create_tmp(dl, tmp, sizeof(tmp), path, host) == -1) {
		if (errno == EACCES)
			return MDA_OK;
		return fail_sys(err, errlen, label, "dotlock", errno);
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
			return fail(MDA_TEMPFAIL, err, errlen,
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
	return fail_sys(err, errlen, label, "dotlock", e);
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
	if (wbuf_puts(w, "From ") == -1)
		return -1;
	while ((sp = strchr(sender, ' ')) != NULL) {
		if (wbuf_put(w, sender, (size_t)(sp - sender)) == -1 ||
		    wbuf_put(w, "_", 1) == -1)
			return -1;
		sender = sp + 1;
	}
	if (wbuf_puts(w, sender) == -1 || wbuf_puts(w, " ") == -1 ||
	    wbuf_puts(w, date) == -1 || wbuf_puts(w, "\n") == -1)
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
			return fail(MDA_PERMFAIL, err, errlen,
			    "5.2.0 %s: unsafe file: %s", label,
			    e == ELOOP ? "symbolic link" : strerror(e));
		return fail_sys(err, errlen, label, "open", e);
	}
	if (fstat(fd, &st) == -1) {
		e = errno;
		(void)close(fd);
		return fail_sys(err, errlen, label, "fstat", e);
	}
	if ((why = mbox_unsafe(&st, geteuid())) != NULL) {
		(void)close(fd);
		return fail(MDA_PERMFAIL, err, errlen,
		    "5.2.0 %s: unsafe file: %s", label, why);
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		e = errno;
		(void)close(fd);
		return fail_sys(err, errlen, label, "fcntl", e);
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
			return fail(MDA_TEMPFAIL, err, errlen,
			    "4.2.0 %s: mailbox is locked (fcntl): timed out",
			    label);
		return fail_sys(err, errlen, label, "fcntl lock", errno);
	}
	if (fstat(fd, &st) == -1)
		return fail_sys(err, errlen, label, "fstat", errno);
	/*
	 * Renamed over, or removed (a reader may delete a mailbox it has
	 * emptied): appending to a file without that name loses the mail.
	 */
	if (lstat(path, &lst) == -1) {
		if (errno != ENOENT)
			return fail_sys(err, errlen, label, "lstat", errno);
		gone = 1;
	} else
		gone = lst.st_dev != st.st_dev || lst.st_ino != st.st_ino;
	if (gone || st.st_nlink == 0) {
		*replacedp = 1;
		return fail(MDA_TEMPFAIL, err, errlen,
		    "4.2.0 %s: mailbox replaced while locking", label);
	}
	/* and still safe: a link may have been added meanwhile */
	if ((why = mbox_unsafe(&st, owner)) != NULL)
		return fail(MDA_PERMFAIL, err, errlen,
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
		return fail(MDA_TEMPFAIL, err, errlen,
		    "4.3.0 %s: cannot format the date", label);
	if (wbuf_init(&w, fd) == -1)
		return fail_sys(err, errlen, label, "buffer", errno);
	if (put_from_line(&w, m->sender, date) == -1 ||
	    put_trace_headers(&w, m) == -1) {
		ce = COPY_WRITE;
		e = errno;
	} else
		ce = copy_mboxrd(&w, m, &e);
	wbuf_free(&w);
	if (ce != COPY_OK)
		return fail_copy(err, errlen, label, ce, e);
	if (fsync(fd) == -1)
		return fail_sys(err, errlen, label, "fsync", errno);
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

	err_clear(err, errlen);
	if ((rc = envelope_check(m, label, err, errlen)) != MDA_OK)
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
		err_clear(err, errlen);
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

	err_clear(err, errlen);
	dl.held = 0;
	if ((rc = envelope_check(m, label, err, errlen)) != MDA_OK)
		goto out;
	if (fstat(fd, &st) == -1) {
		rc = fail_sys(err, errlen, label, "fstat", errno);
		goto out;
	}
	if ((why = mbox_unsafe(&st, owner)) != NULL) {
		rc = fail(MDA_PERMFAIL, err, errlen,
		    "5.2.0 %s: unsafe file: %s", label, why);
		goto out;
	}
	/* opened O_NONBLOCK against a planted FIFO; a file now */
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		rc = fail_sys(err, errlen, label, "fcntl", errno);
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
		err_clear(err, errlen);
		return MDA_OK;
	}
	return append_deliver(path, "file", 0, m, err, errlen);
}

/*
 * Path templates.
 */

enum subst_kind {
	SUBST_DIR,		/* a directory: may contain '/' */
	SUBST_NAME,		/* one path component, never empty */
	SUBST_SENDER,		/* one path component, empty for <> */
};

static const struct expand_var {
	const char	*name;
	size_t		 off;
	enum subst_kind	 kind;
} expand_vars[] = {
	{ "user.username", offsetof(struct mda_expand_ctx, username),
	    SUBST_NAME },
	{ "user.directory", offsetof(struct mda_expand_ctx, homedir),
	    SUBST_DIR },
	{ "dest.user", offsetof(struct mda_expand_ctx, dest_user),
	    SUBST_NAME },
	{ "dest.domain", offsetof(struct mda_expand_ctx, dest_domain),
	    SUBST_NAME },
	{ "rcpt.user", offsetof(struct mda_expand_ctx, rcpt_user),
	    SUBST_NAME },
	{ "rcpt.domain", offsetof(struct mda_expand_ctx, rcpt_domain),
	    SUBST_NAME },
	{ "sender", offsetof(struct mda_expand_ctx, sender), SUBST_SENDER },
};

enum subst_case {
	CASE_KEEP,
	CASE_LOWER,
	CASE_UPPER,
};

/*
 * A value from an address must stay one path component: no '/', and no
 * leading '.' (which covers "." and ".." and hidden files).  Control
 * characters have no business in a file name either.
 */
static int
subst_valid(const char *v, enum subst_kind kind)
{
	const unsigned char	*p;

	if (v[0] == '\0')
		return kind == SUBST_SENDER;
	if (kind != SUBST_DIR && (v[0] == '.' || strchr(v, '/') != NULL))
		return 0;
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

static int
expand_append(char *out, size_t outlen, size_t *op, const char *s,
    size_t n, enum subst_case cs)
{
	size_t	i;
	char	c;

	if (n >= outlen - *op)
		return -1;
	for (i = 0; i < n; i++) {
		c = s[i];
		/* ASCII only: the locale must not change a path */
		if (cs == CASE_LOWER && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (cs == CASE_UPPER && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		out[(*op)++] = c;
	}
	out[*op] = '\0';
	return 0;
}

/* Expand the %{name[:modifier]} at `p' (just after "%{"); -1 if bad. */
static const char *
expand_one(const char *p, const struct mda_expand_ctx *ctx, char *out,
    size_t outlen, size_t *op)
{
	const struct expand_var	*var = NULL;
	const char		*end, *colon, *value;
	enum subst_case		 cs = CASE_KEEP;
	size_t			 namelen, i;

	if ((end = strchr(p, '}')) == NULL)
		return NULL;
	colon = memchr(p, ':', (size_t)(end - p));
	namelen = (size_t)((colon != NULL ? colon : end) - p);
	if (colon != NULL) {
		if ((size_t)(end - colon - 1) == 9 &&
		    strncmp(colon + 1, "lowercase", 9) == 0)
			cs = CASE_LOWER;
		else if ((size_t)(end - colon - 1) == 9 &&
		    strncmp(colon + 1, "uppercase", 9) == 0)
			cs = CASE_UPPER;
		else
			return NULL;
	}
	for (i = 0; i < sizeof(expand_vars) / sizeof(expand_vars[0]); i++)
		if (strlen(expand_vars[i].name) == namelen &&
		    strncmp(expand_vars[i].name, p, namelen) == 0) {
			var = &expand_vars[i];
			break;
		}
	if (var == NULL)
		return NULL;
	value = *(const char *const *)(const void *)((const char *)ctx +
	    var->off);
	if (value == NULL || !subst_valid(value, var->kind))
		return NULL;
	if (expand_append(out, outlen, op, value, strlen(value), cs) == -1)
		return NULL;
	return end + 1;
}

/* No ".." component may survive expansion, wherever it came from. */
static int
path_has_dotdot(const char *s)
{
	size_t	len = strlen(s);

	if (strcmp(s, "..") == 0 || strncmp(s, "../", 3) == 0)
		return 1;
	if (strstr(s, "/../") != NULL)
		return 1;
	return len >= 3 && strcmp(s + len - 3, "/..") == 0;
}

int
mda_expand_path(const char *tmpl, const struct mda_expand_ctx *ctx,
    char *out, size_t outlen)
{
	const char	*p = tmpl, *next;
	size_t		 o = 0, hlen;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (tmpl == NULL || ctx == NULL)
		return -1;

	if (p[0] == '~') {
		/* "~user" is not ours to resolve */
		if (p[1] != '\0' && p[1] != '/')
			goto bad;
		if (ctx->homedir == NULL ||
		    !subst_valid(ctx->homedir, SUBST_DIR))
			goto bad;
		hlen = strlen(ctx->homedir);
		/* "/home/u/" + "/Maildir" needs only one '/' between */
		if (p[1] == '/' && hlen > 1 && ctx->homedir[hlen - 1] == '/')
			hlen--;
		if (expand_append(out, outlen, &o, ctx->homedir, hlen,
		    CASE_KEEP) == -1)
			goto bad;
		p++;
	}
	while (*p != '\0') {
		if (p[0] != '%') {
			next = strchr(p, '%');
			if (next == NULL)
				next = p + strlen(p);
			if (expand_append(out, outlen, &o, p,
			    (size_t)(next - p), CASE_KEEP) == -1)
				goto bad;
			p = next;
		} else if (p[1] == '%') {
			if (expand_append(out, outlen, &o, "%", 1,
			    CASE_KEEP) == -1)
				goto bad;
			p += 2;
		} else if (p[1] == '{') {
			if ((p = expand_one(p + 2, ctx, out, outlen, &o)) ==
			    NULL)
				goto bad;
		} else
			goto bad;
	}
	if (out[0] == '\0' || path_has_dotdot(out))
		goto bad;
	return 0;

bad:
	out[0] = '\0';
	return -1;
}

/*
 * RFC 5321 6.3 / Postfix and qmail practice: a message that already
 * carries "Delivered-To: <this recipient>" has been here before and is
 * looping (a forward that points back, two aliases that point at each
 * other across hosts).  Only the header is read, and only so much of it.
 */
ssize_t
mda_read_head(int fd, int64_t size, char *buf, size_t len)
{
	return msg_pread(fd, buf, len, 0, size);
}

int
mda_head_loops(const char *head, size_t len, const char *rcpt)
{
	static const char	 key[] = "delivered-to:";
	const char		*p, *end, *nl, *v, *ve;
	size_t			 klen = sizeof(key) - 1, rlen = strlen(rcpt);

	if (len == 0)
		return 0;
	for (p = head, end = head + len; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		if (nl == p)
			break;	/* the end of the header */
		if ((size_t)(nl - p) < klen || strncasecmp(p, key, klen) != 0)
			continue;
		for (v = p + klen; v < nl && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = nl; ve > v && (ve[-1] == ' ' || ve[-1] == '\t' ||
		    ve[-1] == '\r'); ve--)
			;
		if (ve - v >= 2 && *v == '<' && ve[-1] == '>') {
			v++;
			ve--;
		}
		if ((size_t)(ve - v) == rlen && strncasecmp(v, rcpt, rlen) == 0)
			return 1;
	}
	return 0;
}

int
mda_delivered_to_loop(int fd, int64_t size, const char *rcpt)
{
	char	*buf;
	ssize_t	 n;
	int	 found;

	if ((buf = malloc(MDA_HEAD_MAX)) == NULL)
		return 0;
	n = mda_read_head(fd, size, buf, MDA_HEAD_MAX);
	found = n > 0 && mda_head_loops(buf, (size_t)n, rcpt);
	free(buf);
	return found;
}
