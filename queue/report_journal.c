/*
 * report_journal.c -- the queue's reports (DMARC, TLS-RPT) keep the
 * day's rows in a journal in the spool: appended one line at a time,
 * renamed to "sending" when the day is reported on, read back a block at
 * a time, unlinked when the reports are queued; and a timer that starts
 * a run a little after each UTC midnight.
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

/*
 * The file's rows by policy domain, read a block at a time (the file
 * may be big; a line never is): 0, or -1 when nothing could be read.
 * Lines that do not parse (torn, edited) or go over the limits are
 * counted and logged, never fatal.
 */
static int
read_rows(int fd, struct run *run)
{
	struct queue_dmarc_record	*r;
	char				*buf, *p, *nl;
	size_t				 have = 0, bad = 0, i, cap;
	ssize_t				 got;
	int				 skipping = 0;

	memset(run, 0, sizeof(*run));
	cap = 4 * DMARC_REC_LINE_MAX;
	run->nslot = 1;
	while (run->nslot < 2 * SEND_MAX_ROWS)
		run->nslot *= 2;
	if ((buf = malloc(cap)) == NULL ||
	    (r = malloc(sizeof(*r))) == NULL ||
	    (run->slot = calloc(run->nslot, sizeof(*run->slot))) == NULL) {
		log_warn("dmarc: reading the rows");
		free(buf);
		free(run->slot);
		return -1;
	}
	for (i = 0; i < run->nslot; i++)
		run->slot[i].dom = UINT32_MAX;
	for (;;) {
		got = read(fd, buf + have, cap - have);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1)
			log_warn("dmarc: read dmarc/%s", SENDING_FILE);
		if (got <= 0)
			break;
		have += (size_t)got;
		p = buf;
		while ((nl = memchr(p, '\n', have - (size_t)(p - buf))) !=
		    NULL) {
			if (!skipping && run_line(run, p, (size_t)(nl - p),
			    r) == -1)
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
		log_warnx("dmarc: %zu report rows unreadable or over the "
		    "limits, skipped", bad);
	free(run->slot);
	run->slot = NULL;
	free(r);
	free(buf);
	return 0;
}

/* a run left half done (fstatat: the queue's sandbox allows it) */
static int
sending_exists(void)
{
	struct stat	st;

	return fstatat(dfd_dmarc, SENDING_FILE, &st, 0) == 0;
}

/*
 * The first row's time in dmarc/records; -1 when there is no file or
 * it is empty, -2 when its first line does not read (then its rows are
 * reported now rather than never).
 */
static int64_t
records_first(void)
{
	struct queue_dmarc_record	*r;
	char				 line[DMARC_REC_LINE_MAX];
	ssize_t				 n;
	int64_t				 when = -1;
	char				*nl;
	int				 fd;

	if ((fd = openat(dfd_dmarc, RECORDS_FILE, O_RDONLY | O_CLOEXEC)) ==
	    -1)
		return -1;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	if ((nl = memchr(line, '\n', (size_t)n)) == NULL)
		return -2;
	if ((r = malloc(sizeof(*r))) == NULL)
		return -1;
	if (dmarc_rec_parse(line, (size_t)(nl - line), r, &when) == -1)
		when = -2;
	free(r);
	return when;
}

static void
arm(time_t secs)
{
	struct timeval	tv = { secs, 0 };

	evtimer_add(ev_day, &tv);
}

/*
 * At start-up (once lookup is there) and then a minute into each UTC
 * day: report when a run was left half done or the rows are from a day
 * that has ended.
 */
static void
on_day_timer(evutil_socket_t fd, short ev, void *arg)
{
	time_t	now = time(NULL);
	int64_t	first;

	if (conf->dmarc_report_from[0] == '\0') {
		arm(DAY - now % DAY + AFTER_MIDNIGHT);
		return;
	}
	if (q_lookup == NULL) {
		arm(RETRY_SECS);
		return;
	}
	first = records_first();
	if (sending_exists() ||
	    first == -2 || (first >= 0 && first / DAY < (int64_t)now / DAY))
		dmarc_send_now();
	arm(DAY - now % DAY + AFTER_MIDNIGHT);
}
