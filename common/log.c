/*
 * log.c -- syslog or stderr logging, shared by every process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int	 log_foreground;
static pid_t	 log_pid;	/* set with the process name */
static int	 log_verbose;
static char	 log_name[64] = "smtpd";
/*
 * log_batch(): lines wait here for log_flush().  One write of at most
 * PIPE_BUF bytes, so a pipe (the journal's) never mixes it with another
 * process's lines.
 */
static char	 batch[4096];
static size_t	 batch_len;
static void	(*batch_wake)(void);

void
log_flush(void)
{
	if (batch_len > 0)
		(void)!write(STDERR_FILENO, batch, batch_len);
	batch_len = 0;
}

void
log_batch(void (*wake)(void))
{
	static int	registered;

	batch_wake = wake;
	batch_len = 0;
	if (wake != NULL && !registered && atexit(log_flush) == 0)
		registered = 1;
}

void
log_init(int foreground, int verbose)
{
	log_foreground = foreground;
	log_verbose = verbose;
	if (!foreground)
		openlog("smtpd", LOG_PID | LOG_NDELAY, LOG_MAIL);
	tzset();
}

/*
 * After a child closed every inherited descriptor: connect to syslog
 * again now, while socket() is still allowed by the sandbox.
 */
void
log_reopen(void)
{
	if (log_foreground)
		return;
	closelog();
	openlog("smtpd", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_procname(const char *name)
{
	log_pid = getpid();
	snprintf(log_name, sizeof(log_name), "%s", name);
}

const char *
log_getprocname(void)
{
	return log_name;
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

int
log_getverbose(void)
{
	return log_verbose;
}

static void	vlog(int, const char *, va_list, int, int)
		    __attribute__((format(printf, 2, 0)));

static void
vlog(int pri, const char *fmt, va_list ap, int with_errno, int saved_errno)
{
	char	msg[2048];
	int	n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if (with_errno && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - n, ": %s",
		    strerror(saved_errno));
	if (log_foreground) {
		/* one write per line so lines from processes don't mix */
		char	line[2200];
		int	len;

		len = snprintf(line, sizeof(line), "smtpd[%d] %s: %s\n",
		    (int)(log_pid ? log_pid : getpid()), log_name, msg);
		if (len > (int)sizeof(line) - 1)
			len = sizeof(line) - 1;
		if (len <= 0)
			return;
		if (batch_wake != NULL && pri != LOG_CRIT) {
			if (batch_len + len > sizeof(batch))
				log_flush();
			memcpy(batch + batch_len, line, len);
			if ((batch_len += len) == (size_t)len)
				batch_wake();
			return;
		}
		log_flush();	/* what came before goes first */
		(void)!write(STDERR_FILENO, line, len);
	} else
		syslog(pri, "%s: %s", log_name, msg);
}

#define LOGFN(fn, pri, errflag, cond)			\
void							\
fn(const char *fmt, ...)				\
{							\
	va_list	ap;					\
	int	saved = errno;				\
							\
	if (!(cond))					\
		return;					\
	va_start(ap, fmt);				\
	vlog(pri, fmt, ap, errflag, saved);		\
	va_end(ap);					\
	errno = saved;					\
}

LOGFN(log_warn, LOG_WARNING, 1, 1)
LOGFN(log_warnx, LOG_WARNING, 0, 1)
LOGFN(log_info, LOG_INFO, 0, 1)
LOGFN(log_debug, LOG_DEBUG, 0, log_verbose)

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 1, saved);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 0, 0);
	va_end(ap);
	exit(1);
}

const char *
log_sanitize(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t	o = 0;

	if (outlen == 0)
		return out;
	for (; *in != '\0' && o + 5 < outlen; in++) {
		unsigned char c = (unsigned char)*in;

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = c;
			continue;
		}
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 0xf];
	}
	out[o] = '\0';
	return out;
}
