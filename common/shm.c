/*
 * shm.c -- shared anonymous memory (shm.h).
 *
 * The parent maps it before it forks: the children inherit the mapping,
 * nobody else can reach it, and nothing is left in /dev/shm.  Failing
 * here is failing to start.
 */
#include <sys/mman.h>

#include "log.h"
#include "shm.h"

void *
shm_alloc(size_t len)
{
	void	*p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED)
		fatal("mmap");
	return p;
}

void
shm_mutex_init(pthread_mutex_t *m, const char *what)
{
	pthread_mutexattr_t	attr;

	if (pthread_mutexattr_init(&attr) != 0 ||
	    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutex_init(m, &attr) != 0)
		fatalx("%s mutex", what);
	pthread_mutexattr_destroy(&attr);
}
