/*
 * offline.h -- submitting the messages left in the spool's offline
 * directory while the daemon was down.
 */
#ifndef POSTHASTE_OFFLINE_H
#define POSTHASTE_OFFLINE_H

#include <sys/types.h>

/*
 * Called by the parent once its children run (the control socket is
 * listening), and again from time to time while there is something to
 * pick up: forks one process that submits every offline message as its
 * owner and removes it.  Returns at once with its pid (-1: fork failed);
 * the parent reaps it and starts no other while it runs.
 */
pid_t	offline_enqueue_all(void);
/* is there anything in the offline directory?  (a look, as root) */
int	offline_pending(void);
/* the pick-up's exit status, from the parent's SIGCHLD handler */
void	offline_pickup_ended(int status);

#endif
