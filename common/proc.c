/*
 * proc.c -- what every process of the daemon shares: the running
 * configuration and the flags of the command line, queue ids as text,
 * and what every child does right after fork.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "imsg.h"
#include "log.h"
#include "mproc.h"
#include "platform.h"
#include "privsep.h"
#include "proc.h"

/* the running configuration; every child inherits it across fork() */
struct smtpd_config	*conf;
int			 smtpd_debug;
int			 smtpd_verbose;

static void	(*term_cb)(void);

/*
 * libevent's own messages.  None is expected: a child forked from the
 * parent's running event loop has removed the parent's signal events
 * before it adds its own (smtpd.c, forget_parent_signals()).
 */
static void
libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_ERR)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

void
proc_setup(const char *title)
{
	sigset_t	term;

	imsg_pid_reset();
	event_set_log_callback(libevent_log);
	/*
	 * A SIGTERM that comes while the child is still setting up waits
	 * until its event loop can handle it (proc_on_term), so even a very
	 * early shutdown is a clean one.
	 */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, NULL);
	privsep_title(title);
	log_reopen();
	/* the parent coordinates shutdown; ^C in -d mode reaches us all */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	/* buffers come and go with every message: keep the heap */
	platform_malloc_tune();
}

static void
on_term(evutil_socket_t sig, short ev, void *arg)
{
	if (term_cb)
		term_cb();
	else
		exit(0);
}

void
proc_on_term(void (*cb)(void))
{
	struct event	*ev;
	sigset_t	 term;

	term_cb = cb;
	if ((ev = evsignal_new(ev_base, SIGTERM, on_term, NULL)) == NULL)
		fatalx("evsignal_new");
	evsignal_add(ev, NULL);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &term, NULL);
}

void
msgid_to_text(uint32_t id, char buf[9])
{
	snprintf(buf, 9, "%08x", id);
}

void
evpid_to_text(uint64_t id, char buf[17])
{
	snprintf(buf, 17, "%016llx", (unsigned long long)id);
}

static int
cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/*
 * Close every descriptor above stderr that is not in keep[], nor the
 * channel the process logs through (log.c).
 */
void
close_all_but(int *keep, int nkeep)
{
	int	i, from = 3, fd, logfd = log_channel_fd();

	qsort(keep, nkeep, sizeof(int), cmp_int);
	for (i = 0; i <= nkeep; i++) {
		fd = i < nkeep ? keep[i] : -1;
		if (logfd >= from && (fd == -1 || logfd < fd)) {
			if (logfd > from)
				platform_close_range(from, logfd - 1);
			from = logfd + 1;
		}
		if (fd < from)
			continue;
		if (fd > from)
			platform_close_range(from, fd - 1);
		from = fd + 1;
	}
	platform_close_range(from, ~0U);
}
