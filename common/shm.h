/*
 * shm.h -- memory the parent shares with the children it forks after
 * (the session table, the rate limits, the smtp workers' counters).
 */
#ifndef POSTHASTE_SHM_H
#define POSTHASTE_SHM_H

#include <pthread.h>
#include <stddef.h>

/* len bytes of zeroed memory shared with children forked later */
void	*shm_alloc(size_t len);
/* a mutex in such memory, usable by all of them; what names it if not */
void	 shm_mutex_init(pthread_mutex_t *, const char *what);

#endif
