/*
 * proc.c -- what every child does right after fork.
 */
#include <signal.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "mproc.h"
#include "privsep.h"
#include "smtpd.h"

static void	(*term_cb)(void);

void
proc_setup(const char *title)
{
	privsep_title(title);
	log_reopen();
	/* the parent coordinates shutdown; ^C in -d mode reaches us all */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
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

	term_cb = cb;
	if ((ev = evsignal_new(ev_base, SIGTERM, on_term, NULL)) == NULL)
		fatalx("evsignal_new");
	evsignal_add(ev, NULL);
}
