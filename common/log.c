/*
 * log.c -- syslog or stderr logging, shared by every process.
 *
 * With -d every process writes its own lines to stderr.  Otherwise the
 * parent alone talks to syslog, and the children hand it their lines.
 * A child cannot own a syslog connection: the sandbox forbids socket(),
 * so the reconnection libc's syslog() tries when syslogd is missing or
 * restarted would kill it (SIGSYS), and a blocking send to a syslogd
 * that does not read would stop it.  Logging must never do either.
 *
 * So log_init() makes one datagram socketpair before any child exists.
 * Every child inherits the sending end (close_all_but() keeps it) and
 * sends each line as one datagram without waiting: when the parent is
 * behind and the socket buffer is full, the line is dropped and
 * counted, and the count is logged with the next line that gets
 * through.  The parent reads the other end on its event loop
 * (log_collect()), takes the sender's pid from the kernel (SO_PASSCRED
 * on Linux: platform/peercred.c; so a child cannot pose as another) and writes the line to /dev/log
 * itself: a datagram socket that names the path at each send, so a
 * syslogd that was restarted (a new socket at the same path) is found
 * at the next line.  A syslogd that is behind or away never makes the
 * parent wait either: its lines wait in a bounded backlog, tried again
 * from the event loop, and what does not fit is dropped and counted.  The syslog tag is Postfix's shape,
 * "smtpd/SERVICE[PID]:" (smtpd/smtpd for the smtp workers, as Postfix's
 * SMTP server is postfix/smtpd; smtpd/queue ...), which log analysers
 * such as pflogsumm and fail2ban know how to take apart.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "platform.h"

#ifndef LOG_DEVLOG
#define LOG_DEVLOG	"/dev/log"
#endif
/* the most lines log_collect() forwards in one turn of the event loop */
#define LOG_COLLECT_MAX	256
/* what the parent keeps for a syslogd that is behind or away */
#define LOG_BACKLOG_SIZE	(1 << 20)

enum log_dest {
	LOG_DEST_LIBC,		/* not initialised (the tools): libc */
	LOG_DEST_STDERR,	/* -d */
	LOG_DEST_DEVLOG,	/* the parent: its own socket to /dev/log */
	LOG_DEST_PARENT,	/* a child: datagrams to the parent */
};

static enum log_dest	 log_dest = LOG_DEST_LIBC;
static int		 log_devlog = -1;	/* the parent's to syslog */
static int		 log_rx = -1;		/* the parent reads here */
static int		 log_tx = -1;		/* children send here */
static unsigned long	 log_dropped;	/* lost, not yet told */
static char		 log_service[16] = "parent";
static char		*backlog;		/* the parent's: backlog_push() */
static size_t		 bl_head, bl_tail;
static void		(*backlog_wake)(int);
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
	int	sv[2], size = 4 << 20;

	log_foreground = foreground;
	log_verbose = verbose;
	tzset();
	if (foreground) {
		log_dest = LOG_DEST_STDERR;
		return;
	}
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    (log_devlog = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		openlog("smtpd", LOG_PID | LOG_NDELAY, LOG_MAIL);
		fatal("log_init: socket");
	}
	log_rx = sv[0];
	log_tx = sv[1];
	if (fcntl(log_rx, F_SETFL, O_NONBLOCK) == -1 ||
	    platform_passcred(log_rx) == -1)
		fatal("log_init: log channel");
	/*
	 * Room for a few thousand lines while the parent is busy: the
	 * children's datagrams count against the sending end's buffer.
	 * Root may go past wmem_max; if not, the default must do.
	 */
	(void)platform_sndbuf(log_tx, size);
	log_dest = LOG_DEST_DEVLOG;
}

/*
 * In a child, after it closed every inherited descriptor but the log
 * channel (close_all_but()): from now on its lines go to the parent.
 * The parent's own descriptors were closed with the rest; forget them.
 */
void
log_reopen(void)
{
	switch (log_dest) {
	case LOG_DEST_DEVLOG:
		log_devlog = -1;
		log_rx = -1;
		log_dest = LOG_DEST_PARENT;
		/* the parent's backlog and count are the parent's to tell */
		free(backlog);
		backlog = NULL;
		bl_head = bl_tail = 0;
		log_dropped = 0;
		break;
	case LOG_DEST_LIBC:
		closelog();
		openlog("smtpd", LOG_PID | LOG_NDELAY, LOG_MAIL);
		break;
	default:
		break;
	}
}

int
log_channel_fd(void)
{
	return log_tx;
}

int
log_collector_fd(void)
{
	return log_dest == LOG_DEST_DEVLOG ? log_rx : -1;
}

void
log_procname(const char *name)
{
	size_t	i;

	log_pid = getpid();
	snprintf(log_name, sizeof(log_name), "%s", name);
	/* the syslog service: the first word, "smtp" of "smtp worker 1" */
	for (i = 0; i < sizeof(log_service) - 1 && isalpha((unsigned char)
	    name[i]); i++)
		log_service[i] = name[i];
	log_service[i] = '\0';
	if (i == 0)
		snprintf(log_service, sizeof(log_service), "smtpd");
	/*
	 * The SMTP server is "smtpd" in syslog, Postfix's name for it:
	 * pflogsumm counts receptions and rejections only from a service
	 * of that name (smtpd/smtpd[PID]: with --syslog-name=smtpd).
	 */
	else if (strcmp(log_service, "smtp") == 0)
		snprintf(log_service, sizeof(log_service), "smtpd");
}

/* the parent: one datagram to /dev/log, named at each send; never waits */
static int
devlog_send(const char *line, size_t len)
{
	static struct sockaddr_un sun;

	if (sun.sun_family == 0) {
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", LOG_DEVLOG);
	}
	return sendto(log_devlog, line, len, MSG_DONTWAIT | MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, sizeof(sun)) == -1 ? -1 : 0;
}

/*
 * Lines syslog did not take yet, oldest first, each a 2-octet length and
 * the datagram (with the time of the event).  A syslogd that is only
 * behind (its queue full: EAGAIN) is tried again the next millisecond,
 * one that is absent every second; what does not fit is dropped and
 * counted, and the count is logged once the backlog is out.
 */
static int
backlog_push(const char *line, size_t len)
{
	uint16_t	n = (uint16_t)len;

	if (backlog == NULL && (backlog = malloc(LOG_BACKLOG_SIZE)) == NULL)
		return -1;
	if (bl_tail + 2 + len > LOG_BACKLOG_SIZE && bl_head > 0) {
		memmove(backlog, backlog + bl_head, bl_tail - bl_head);
		bl_tail -= bl_head;
		bl_head = 0;
	}
	if (bl_tail + 2 + len > LOG_BACKLOG_SIZE)
		return -1;
	memcpy(backlog + bl_tail, &n, 2);
	memcpy(backlog + bl_tail + 2, line, len);
	bl_tail += 2 + len;
	return 0;
}

/* 0 once the backlog is out; else the milliseconds to wait and retry */
static int
backlog_flush(void)
{
	char		note[160];
	uint16_t	n;
	int		len;

	while (bl_head < bl_tail) {
		memcpy(&n, backlog + bl_head, 2);
		if (devlog_send(backlog + bl_head + 2, n) == -1)
			return errno == EAGAIN || errno == ENOBUFS ? 1 : 1000;
		bl_head += 2 + n;
	}
	bl_head = bl_tail = 0;
	if (log_dropped == 0)
		return 0;
	len = snprintf(note, sizeof(note), "<%d>smtpd/parent[%d]: log: %lu "
	    "lines were dropped: syslog did not take them", LOG_MAIL |
	    LOG_WARNING, (int)getpid(), log_dropped);
	log_dropped = 0;
	if (devlog_send(note, len) == 0 || backlog_push(note, len) == -1)
		return 0;
	return errno == EAGAIN || errno == ENOBUFS ? 1 : 1000;
}

/* a line for syslog from the parent, or one a child handed it */
static void
devlog_line(int pri, const char *service, pid_t pid, const char *msg)
{
	char		 line[2400], stamp[32];
	struct tm	 tm;
	time_t		 now = time(NULL);
	int		 len, err = 0, empty = bl_head == bl_tail;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm) == 0)
		stamp[0] = '\0';
	len = snprintf(line, sizeof(line), "<%d>%s smtpd/%s[%d]: %s",
	    LOG_MAIL | (pri & LOG_PRIMASK), stamp, service, (int)pid, msg);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(line))
		len = sizeof(line) - 1;
	if (empty) {
		if (devlog_send(line, len) == 0)
			return;
		err = errno;
	}
	if (backlog_push(line, len) == -1)
		log_dropped++;
	else if (empty && backlog_wake != NULL)
		backlog_wake(err == EAGAIN || err == ENOBUFS ? 1 : 1000);
}

void
log_backlog_wake(void (*wake)(int))
{
	backlog_wake = wake;
}

/*
 * A child: one datagram "PRI SERVICE MESSAGE" to the parent, without
 * waiting.  Lines that find the channel full are counted, and the count
 * goes ahead of the next line that fits.
 */
static void
parent_line(int pri, const char *msg)
{
	char	line[2200];
	int	len;

	if (log_dropped > 0) {
		len = snprintf(line, sizeof(line), "%d %s log: %lu lines were "
		    "dropped: the parent did not take them", LOG_WARNING,
		    log_service, log_dropped);
		if (send(log_tx, line, len, MSG_DONTWAIT | MSG_NOSIGNAL) ==
		    -1) {
			log_dropped++;
			return;
		}
		log_dropped = 0;
	}
	len = snprintf(line, sizeof(line), "%d %s %s", pri & LOG_PRIMASK,
	    log_service, msg);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(line))
		len = sizeof(line) - 1;
	if (send(log_tx, line, len, MSG_DONTWAIT | MSG_NOSIGNAL) == -1)
		log_dropped++;
}

/*
 * The parent: forward what the children sent, at most LOG_COLLECT_MAX
 * lines a call.  A child is trusted with its text no more than it
 * must be: its pid comes from the kernel, the service must be a word,
 * and control characters (a forged second line) become '?'.
 */
int
log_collect(void)
{
	char		 buf[2200], service[16], *p, *msg;
	union {
		struct cmsghdr	hdr;
		char		buf[PLATFORM_CRED_SPACE];
	}		 cbuf;
	struct msghdr	 mh;
	struct iovec	 iov;
	ssize_t		 n;
	size_t		 i;
	pid_t		 pid;
	int		 count, pri;

	if (log_dest != LOG_DEST_DEVLOG)
		return 0;
	for (count = 0; count < LOG_COLLECT_MAX; count++) {
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = buf;
		iov.iov_len = sizeof(buf) - 1;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		if ((n = recvmsg(log_rx, &mh, MSG_DONTWAIT)) == -1)
			break;		/* EAGAIN: nothing more */
		buf[n] = '\0';
		pid = platform_cred_pid(&mh);
		pri = LOG_INFO;
		if (buf[0] >= '0' && buf[0] <= '7' && buf[1] == ' ')
			pri = buf[0] - '0';
		p = buf[0] != '\0' && buf[1] == ' ' ? buf + 2 : buf;
		for (i = 0; i < sizeof(service) - 1 && isalpha((unsigned char)
		    p[i]); i++)
			service[i] = p[i];
		service[i] = '\0';
		if (i == 0 || p[i] != ' ') {
			snprintf(service, sizeof(service), "unknown");
			msg = p;
		} else
			msg = p + i + 1;
		for (p = msg; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		devlog_line(pri, service, pid, msg);
	}
	return backlog_flush();
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
		return;
	}
	switch (log_dest) {
	case LOG_DEST_DEVLOG:
		devlog_line(pri, log_service, getpid(), msg);
		break;
	case LOG_DEST_PARENT:
		parent_line(pri, msg);
		break;
	default:
		syslog(pri, "%s: %s", log_name, msg);
		break;
	}
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
