/*
 * proc.h -- the daemon's processes: each child's entry point, what the
 * parent hands it, and what all of them share (proc.c).  Each entry
 * point is defined in its process's folder (README.md, "Layout").
 *
 * The folder common/ is a library of what two or more processes share:
 * the imsg framing and every message (imsg.c, mproc.c, proto.h), logging,
 * addresses and envelopes, privilege drop, the child set-up here, the
 * control requests (ctl.h) and local submission (submit.c).  Nothing in
 * it includes a process folder's header.
 */
#ifndef POSTHASTE_PROC_H
#define POSTHASTE_PROC_H

#include <sys/types.h>
#include <stdint.h>

#include "config.h"

#define SMTPD_NAME	"Posthaste"
#ifndef SMTPD_VERSION		/* the Makefile takes it from debian/changelog */
#define SMTPD_VERSION	"unknown"
#endif
#define SMTPD_MAX_WORKERS 64
/*
 * Generations alive at once: the current one and those a reload retired
 * that still finish their sessions and deliveries (smtpd.c).  The parent
 * refuses a reload beyond these; the queue, which keeps a channel to
 * each generation's lookup and mta and to every worker, has room for
 * twice as many (a channel closes there a moment after the parent saw
 * its process exit).
 */
#define SMTPD_MAX_GENERATIONS	16
#define SMTPD_MAX_LIVE_WORKERS	256

/* the running configuration; every child inherits it across fork() */
extern struct smtpd_config	*conf;
extern int			 smtpd_debug;	/* -d */
extern int			 smtpd_verbose;	/* -v */

/*
 * Descriptors a child needs.  -1 where a child has no such peer; the
 * parent closes everything a child is not given before calling its main.
 */
struct proc_fds {
	int	parent;
	int	queue;
	int	lookup;
	int	mta;
	int	control;
	int	auth;				/* lookup, auth helper */
	int	smtp[SMTPD_MAX_WORKERS];	/* queue, lookup: one per worker */
	int	nsmtp;
	int	*listen;			/* smtp worker: its sockets */
	int	nlisten;
	int	ctlsock;			/* control: listening socket */
	int	metricsock;			/* control: GET /metrics, or -1 */
	int	keys;				/* smtp worker, mta: to keys */
	int	keys_dkim;			/* smtp worker: to keys, DKIM */
	int	smtp_dkim[SMTPD_MAX_WORKERS];	/* keys: one per worker */
	int	*keyfiles;			/* keys: per pki, cert and key */
	int	nkeyfiles;
};

void	smtp_main(int worker, struct proc_fds *)
	    __attribute__((noreturn));
void	queue_main(struct proc_fds *) __attribute__((noreturn));
void	lookup_main(struct proc_fds *) __attribute__((noreturn));
void	mta_main(struct proc_fds *) __attribute__((noreturn));
void	control_main(struct proc_fds *) __attribute__((noreturn));
void	keys_main(struct proc_fds *) __attribute__((noreturn));
#ifdef POSTHASTE_FUZZ
/* control.c, for regress/fuzz/fuzz_control.c only (mk/fuzz.mk) */
void	control_fuzz_start(int parent, int queue, int ctlsock);
int	control_fuzz_nclients(void);
#endif
void	auth_system_main(struct proc_fds *) __attribute__((noreturn));
/* does a listener authenticate against the system accounts? */
int	auth_system_needed(const struct smtpd_config *);

/* common child set-up: title, signals, event base; after privsep_drop */
void	proc_setup(const char *title);
/* install a libevent SIGTERM/SIGINT handler that calls cb */
void	proc_on_term(void (*cb)(void));

/* queue ids as text */
void	msgid_to_text(uint32_t, char buf[9]);
void	evpid_to_text(uint64_t, char buf[17]);
/*
 * Close every descriptor above stderr that is not in keep[] (sorted
 * here), nor the channel the process logs through (log.c).
 */
void	close_all_but(int *keep, int nkeep);

#endif
