/*
 * smtp_deadline.c -- deadlines per record, against slowloris clients.
 *
 * "smtp timeout" and "data-timeout" are inactivity timers: every byte
 * resets them, so a client trickling one byte every few seconds kept a
 * session (and its message file, its memory, a slot under
 * max-sessions-per-ip) for ever.  As Postfix's smtpd_per_record_deadline
 * does, a record now has a deadline of its own, counted from its start
 * and not moved by the bytes that arrive:
 *
 *  - a command line (or an AUTH response line) must be whole within
 *    "smtp command-deadline" of its first byte;
 *  - the DATA or BDAT phase of a transaction, from the first message
 *    byte the server waits for to the end of the transaction, must
 *    average "smtp data-min-rate" bytes per second once it is older
 *    than "smtp data-rate-grace", and end within "smtp data-deadline"
 *    when one is set.
 *
 * The defaults (5 minutes for a line, 1 KB/s after a minute, no total)
 * never cut a real client: a client writes a command in one piece, and
 * a link slower than 1 KB/s cannot carry mail at all.
 *
 * The deadlines are checked when input arrives (a trickle is input),
 * before it is handled; a client that stops sending altogether meets
 * the inactivity timer as before.  Only the client's own time counts:
 * while the session waits for lookup or the queue, complete lines may
 * sit in the buffer and no line deadline runs.
 */
#include <sys/types.h>

#include <stdint.h>

#include <event2/buffer.h>

#include "log.h"
#include "smtp_session.h"
#include "proc.h"
#include "util.h"

static int
in_data_phase(const struct session *s)
{
	return s->tx != NULL && (s->state == S_DATA || s->state == S_BDAT ||
	    s->dl_data_start != 0);
}

static void
deadline_cut(struct session *s, const char *what)
{
	log_info("%08x: %s deadline exceeded, client %s [%s]", s->id, what,
	    s->rdns ? s->rdns : "unknown", s->addr);
	s->flags |= SS_TIMEDOUT;
	session_reply_close(s, "421 4.4.2 %s Timeout (%s too slow), closing "
	    "connection", session_hostname(s), what);
	session_set_timeout(s);
}

/*
 * Input arrived (it is in s->in already): 0 to handle it, -1 when the
 * session missed a deadline and is closing.
 */
int
session_deadline_check(struct session *s)
{
	size_t		 len;
	int64_t		 now, elapsed;
	uint64_t	 want;

	/*
	 * While the session waits for lookup or the queue (a commit of
	 * many recipients may take a while), what the client pipelines is
	 * not late: the server is.
	 */
	if (s->flags & (SS_CLOSING | SS_TIMEDOUT | SS_WAIT))
		return 0;
	len = evbuffer_get_length(s->in);
	if (len > s->dl_in_left)
		s->dl_data_bytes += len - s->dl_in_left;
	s->dl_in_left = len;
	if (s->dl_data_start != 0) {
		now = monotonic_ms();
		elapsed = now - s->dl_data_start;
		if (conf->deadline_data > 0 &&
		    elapsed > (int64_t)conf->deadline_data * 1000) {
			deadline_cut(s, "data");
			return -1;
		}
		want = (uint64_t)conf->data_min_rate * (uint64_t)elapsed / 1000;
		if (conf->data_min_rate > 0 &&
		    elapsed > (int64_t)conf->data_rate_grace * 1000 &&
		    s->dl_data_bytes < want) {
			deadline_cut(s, "data rate");
			return -1;
		}
		return 0;
	}
	if (s->dl_line_start != 0 && conf->deadline_cmd > 0 &&
	    monotonic_ms() - s->dl_line_start >
	    (int64_t)conf->deadline_cmd * 1000) {
		deadline_cut(s, "command line");
		return -1;
	}
	return 0;
}

/*
 * session_process() has handled what it could: start or stop the clocks.
 * `lines' is how many command lines it took; a partial line left in
 * the buffer after one was taken is a new record.
 */
void
session_deadline_update(struct session *s, size_t lines)
{
	int	partial;

	s->dl_in_left = evbuffer_get_length(s->in);
	if (in_data_phase(s)) {
		if (s->dl_data_start == 0) {
			s->dl_data_start = monotonic_ms();
			s->dl_data_bytes = 0;
		}
		s->dl_line_start = 0;
		return;
	}
	s->dl_data_start = 0;
	/* waiting for lookup, the queue or the client to read: our turn */
	if (s->flags & (SS_WAIT | SS_CLOSING | SS_OUTFULL) ||
	    s->state == S_TLS) {
		s->dl_line_start = 0;
		return;
	}
	partial = s->dl_in_left > 0 || (s->flags & SS_LONGLINE);
	if (!partial)
		s->dl_line_start = 0;
	else if (s->dl_line_start == 0 || lines > 0)
		s->dl_line_start = monotonic_ms();
}
