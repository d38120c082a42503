/*
 * sysusers.h -- the accounts mail is never delivered as.
 */
#ifndef POSTHASTE_SYSUSERS_H
#define POSTHASTE_SYSUSERS_H

#include <sys/types.h>

/* resolve the accounts now (the parent, before it forks); idempotent */
void	sysusers_init(void);
/* 1 if uid is one the daemon's own processes run as (_smtpd, _smtpq) */
int	sysusers_is_daemon(uid_t);
/* 1 if no mailbox is ever delivered as uid: the daemon's, and nobody */
int	sysusers_no_mailbox(uid_t);

#endif
