/*
 * report_journal.c -- the queue's reports (DMARC, TLS-RPT) keep the
 * day's rows in a journal in the spool: appended one line at a time,
 * renamed to "sending" when the day is reported on, read back a block at
 * a time, unlinked when the reports are queued; and a timer that starts
 * a run a little after each UTC midnight (and at start-up, when the
 * journal holds an earlier day's rows or a run was left half done).
 *
 * Best effort, and the durability says so: rows are appended without
 * fsync (a crash may lose the last ones, and a torn last line is refused
 * by its reader); a crash after the rename and before the unlink
 * reports those rows again at start-up (a duplicate, which receivers
 * tolerate); a crash after the unlink loses reports whose messages were
 * not committed yet.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "queue.h"
#include "queue_int.h"
#include "proc.h"
#include "util.h"

#define RECORDS_FILE		"records"
#define SENDING_FILE		"sending"
#define DAY			86400
#define AFTER_MIDNIGHT		60	/* seconds into the new day */
#define RETRY_SECS		30	/* no lookup channel yet */

void
report_journal_append(struct report_journal *j, const char *line, size_t n)
{
	if (j->dfd == -1)
		return;
	if (j->fd == -1 && (j->fd = openat(j->dfd, RECORDS_FILE,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		log_warn("%s: open %s/%s", j->what, j->what, RECORDS_FILE);
		return;
	}
	/* O_APPEND: one write per line, so lines never interleave */
	if (write(j->fd, line, n) != (ssize_t)n)
		log_warn("%s: append to %s/%s", j->what, j->what,
		    RECORDS_FILE);
}

/* a run left half done (fstatat: the queue's sandbox allows it) */
static int
sending_exists(struct report_journal *j)
{
	struct stat	st;

	return fstatat(j->dfd, SENDING_FILE, &st, 0) == 0;
}

int
report_journal_begin(struct report_journal *j)
{
	int	fd;

	if (j->dfd == -1)
		return -1;
	if (!sending_exists(j)) {
		if (j->fd != -1) {
			close(j->fd);
			j->fd = -1;
		}
		if (renameat(j->dfd, RECORDS_FILE, j->dfd, SENDING_FILE) ==
		    -1) {
			if (errno == ENOENT)
				return -2;
			log_warn("%s: rename %s/%s", j->what, j->what,
			    RECORDS_FILE);
			return -1;
		}
	}
	if ((fd = openat(j->dfd, SENDING_FILE, O_RDONLY | O_CLOEXEC)) == -1)
		log_warn("%s: open %s/%s", j->what, j->what, SENDING_FILE);
	return fd;
}

/*
 * The file's lines, read a block at a time (the file may be big; a
 * line never is, j->line_max at most): each to cb.  Lines cb refuses,
 * torn or too long are counted and logged, never fatal.  0, or -1 when
 * nothing could be read.
 */
int
report_journal_read(struct report_journal *j, int fd,
    int (*cb)(void *, const char *, size_t), void *arg)
{
	char	*buf, *p, *nl;
	size_t	 have = 0, bad = 0, cap;
	ssize_t	 got;
	int	 skipping = 0;

	cap = 4 * j->line_max;
	if ((buf = malloc(cap)) == NULL) {
		log_warn("%s: reading the rows", j->what);
		return -1;
	}
	for (;;) {
		got = read(fd, buf + have, cap - have);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1)
			log_warn("%s: read %s/%s", j->what, j->what,
			    SENDING_FILE);
		if (got <= 0)
			break;
		have += (size_t)got;
		p = buf;
		while ((nl = memchr(p, '\n', have - (size_t)(p - buf))) !=
		    NULL) {
			if (!skipping && cb(arg, p, (size_t)(nl - p)) == -1)
				bad++;
			skipping = 0;
			p = nl + 1;
		}
		have -= (size_t)(p - buf);
		memmove(buf, p, have);
		if (have == cap) {		/* no line is that long */
			bad++;
			skipping = 1;
			have = 0;
		}
	}
	if (have > 0 && !skipping)		/* torn: no '\n' */
		bad++;
	if (bad)
		log_warnx("%s: %zu report rows unreadable or over the "
		    "limits, skipped", j->what, bad);
	free(buf);
	return 0;
}

void
report_journal_done(struct report_journal *j)
{
	if (unlinkat(j->dfd, SENDING_FILE, 0) == -1)
		log_warn("%s: unlink %s/%s", j->what, j->what, SENDING_FILE);
}

/*
 * The first row's time in the journal; -1 when there is no file or it
 * is empty, -2 when its first line does not read (then its rows are
 * reported now rather than never).
 */
static int64_t
records_first(struct report_journal *j)
{
	char		*line;
	ssize_t		 n;
	int64_t		 when = -1;
	char		*nl;
	int		 fd;

	if ((fd = openat(j->dfd, RECORDS_FILE, O_RDONLY | O_CLOEXEC)) ==
	    -1)
		return -1;
	if ((line = malloc(j->line_max)) == NULL) {
		close(fd);
		return -1;
	}
	n = read(fd, line, j->line_max - 1);
	close(fd);
	if (n <= 0)
		when = -1;
	else if ((nl = memchr(line, '\n', (size_t)n)) == NULL ||
	    j->line_time(line, (size_t)(nl - line), &when) == -1)
		when = -2;
	free(line);
	return when;
}

static void
arm(struct report_journal *j, time_t secs)
{
	struct timeval	tv = { secs, 0 };

	evtimer_add(j->ev_day, &tv);
}

/* the next run: a minute into the next UTC day, and up to j->jitter */
static time_t
next_day(struct report_journal *j, time_t now)
{
	time_t	secs = DAY - now % DAY + AFTER_MIDNIGHT;

	if (j->jitter > 0)
		secs += (time_t)(queue_random() % (uint32_t)j->jitter);
	return secs;
}

/*
 * At start-up (once lookup is there) and then after each UTC midnight:
 * report when a run was left half done or the rows are from a day that
 * has ended.
 */
static void
on_day_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct report_journal	*j = arg;
	time_t			 now = time(NULL);
	int64_t			 first;

	if (!j->enabled()) {
		arm(j, next_day(j, now));
		return;
	}
	if (q_lookup == NULL) {
		arm(j, RETRY_SECS);
		return;
	}
	first = records_first(j);
	if (sending_exists(j) ||
	    first == -2 || (first >= 0 && first / DAY < (int64_t)now / DAY))
		j->send_now();
	arm(j, next_day(j, now));
}

void
report_journal_init(struct report_journal *j)
{
	j->fd = -1;
	if (j->dfd == -1)
		return;
	if ((j->ev_day = evtimer_new(ev_base, on_day_timer, j)) == NULL)
		fatalx("evtimer_new");
	arm(j, RETRY_SECS / 10);
}
