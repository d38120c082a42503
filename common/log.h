/*
 * log.h -- logging for every process.
 *
 * syslog facility mail by default; with -d, lines go to stderr prefixed
 * by the process name.  Without -d the parent alone talks to syslog and
 * the children hand it their lines (log.c says why and how).
 * fatal()/fatalx() are for broken invariants only: they log and exit
 * the process, which brings the whole daemon down.
 */
#ifndef POSTHASTE_LOG_H
#define POSTHASTE_LOG_H

#include <stdarg.h>
#include <stddef.h>

void	log_init(int foreground, int verbose);
void	log_reopen(void);		/* in a child, before the sandbox */
int	log_channel_fd(void);		/* every child keeps it open */
/*
 * The parent: log_collect() forwards what the children sent (on
 * log_collector_fd() readable) and what syslog did not take before;
 * it returns 0, or the milliseconds after which to call it again.
 * wake(ms) asks for that call when a line of the parent's own starts
 * a backlog.
 */
int	log_collector_fd(void);
int	log_collect(void);
void	log_backlog_wake(void (*wake)(int ms));
void	log_procname(const char *);	/* "smtp worker 1", "queue" ... */
const char *log_getprocname(void);
void	log_setverbose(int);
int	log_getverbose(void);
/*
 * With -d, a process that works in event loop turns (mproc_defer_turns)
 * writes the lines of a turn together at its end: log_batch(wake) turns
 * that on, wake() is called for the first line of a batch, log_flush()
 * writes it (at the end of the turn, at exit, before a fatal line).
 * log_batch(NULL) turns it off and drops a batch (a child after fork).
 */
void	log_batch(void (*wake)(void));
void	log_flush(void);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* Escape untrusted text for a log line: non-printables as \xNN. */
const char *log_sanitize(const char *in, char *out, size_t outlen);

#endif
