/*
 * mda_proc.h -- the parent's pool of local delivery processes.
 */
#ifndef POSTHASTE_MDA_PROC_H
#define POSTHASTE_MDA_PROC_H

#include <sys/types.h>

#include "envelope.h"
#include "proto.h"

/* route one envelope (and its message fd, now owned) to a process */
void	mda_deliver(const struct envelope *, int fd);
/* SIGCHLD: 1 if pid was a delivery process (handled) */
int	mda_reaped(pid_t, int status);
void	mda_shutdown(void);
void	mda_kill_all(void);
int	mda_count(void);
/*
 * The parent's side, given once before the first delivery (smtpd.c):
 * result() takes each delivery's outcome to the queue, channel() a
 * delivery process's channel (fd, now owned) to the queue.  Callbacks
 * rather than calls into smtpd.c, so that mda/ does not reach into the
 * parent's file.
 */
void	mda_init(void (*result)(const struct delivery_result *),
	    void (*channel)(const struct mda_channel *, int fd));
/* mda_program.c and mda_root.c report through it too */
void	mda_report_result(const struct delivery_result *);

/* mda_program.c: "|command" and mda "command", one process each */
struct passwd;
void	mda_program_deliver(const struct envelope *, int fd,
	    const struct passwd *, const char *command);
int	mda_program_reaped(pid_t, int status);
/* mda.c: a message's envelope addresses, as the mailbox writers take them */
#define MDA_ADDR_MAX	(ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2)
struct mda_message;
void	mda_message_init(struct mda_message *, const struct envelope *,
	    int fd, char *sender, char *rcpt);
/* the first steps of every one-shot delivery process */
void	mda_oneshot_setup(int resfd, int msgfd, const char *title);
/* mda_root.c: root's mailbox, in the same kind of one-shot process */
void	mda_root_deliver(const struct envelope *, int fd,
	    const struct passwd *);
void	mda_root_child(int resfd, int msgfd, const struct envelope *,
	    const struct passwd *, const char *unused)
	    __attribute__((noreturn));
int	mda_program_count(void);
void	mda_program_kill_all(void);

/* mda_lmtp.c: in the LMTP delivery process */
void	mda_lmtp_init(void);
void	mda_lmtp_deliver(const char *dest, const struct envelope *, int fd,
	    struct delivery_result *);


#endif
