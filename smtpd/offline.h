/*
 * offline.h -- submitting the messages left in the spool's offline
 * directory while the daemon was down.
 */
#ifndef POSTHASTE_OFFLINE_H
#define POSTHASTE_OFFLINE_H

/*
 * Called by the parent once its children run (the control socket is
 * listening): forks one process that submits every offline message as
 * its owner and removes it.  Returns at once; the parent reaps the
 * process like any unknown child.
 */
void	offline_enqueue_all(void);

#endif
