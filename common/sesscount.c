/*
 * sesscount.c -- a session table shared by the smtp workers.
 *
 * Connections are spread over the workers by the kernel, so a limit per
 * client address or on the whole server cannot be kept by each worker
 * alone.  The parent maps a small table into shared memory before it
 * forks any worker; workers count under a process-shared mutex.  A worker
 * that corrupted the table could only change who is refused, and a worker
 * that dies takes the daemon down anyway.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "sesscount.h"
#include "shm.h"

#define SESSCOUNT_SLOTS	16384
#define SESSCOUNT_PROBE	64	/* slots looked at per address, at most */

struct sesscount_slot {
	char	addr[46];	/* "" never used; n == 0: free for reuse */
	int	n;
};

struct sesscount_table {
	pthread_mutex_t		lock;
	int			total;
	struct sesscount_slot	slot[SESSCOUNT_SLOTS];
};

static struct sesscount_table	*table;

void
sesscount_init(void)
{
	table = shm_alloc(sizeof(*table));
	shm_mutex_init(&table->lock, "session table");
}

static unsigned int
hash(const char *s)
{
	unsigned int	h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

int
sesscount_take(const char *addr, int max_per_ip, int max_total, int *handle)
{
	struct sesscount_slot	*sl, *freeslot = NULL;
	unsigned int		 h, i;
	int			 rc = SESSCOUNT_OK;

	*handle = -1;
	if (table == NULL)
		return SESSCOUNT_OK;
	pthread_mutex_lock(&table->lock);
	if (max_total > 0 && table->total >= max_total) {
		rc = SESSCOUNT_TOTAL;
		goto out;
	}
	h = hash(addr);
	for (i = 0; i < SESSCOUNT_PROBE; i++) {
		sl = &table->slot[(h + i) % SESSCOUNT_SLOTS];
		if (sl->addr[0] == '\0') {
			if (freeslot == NULL)
				freeslot = sl;
			break;		/* never used: addr is not further on */
		}
		if (strcmp(sl->addr, addr) == 0) {
			if (sl->n == 0 || max_per_ip <= 0 ||
			    sl->n < max_per_ip) {
				sl->n++;
				*handle = (int)(sl - table->slot);
				table->total++;
			} else
				rc = SESSCOUNT_PER_IP;
			goto out;
		}
		if (sl->n == 0 && freeslot == NULL)
			freeslot = sl;
	}
	table->total++;
	if (freeslot != NULL) {
		snprintf(freeslot->addr, sizeof(freeslot->addr), "%s", addr);
		freeslot->n = 1;
		*handle = (int)(freeslot - table->slot);
	} else
		*handle = -2;	/* counted in the total only */
out:
	pthread_mutex_unlock(&table->lock);
	return rc;
}

void
sesscount_release(int handle)
{
	if (table == NULL || handle == -1)
		return;
	pthread_mutex_lock(&table->lock);
	if (handle >= 0 && handle < SESSCOUNT_SLOTS &&
	    table->slot[handle].n > 0)
		table->slot[handle].n--;
	if (table->total > 0)
		table->total--;
	pthread_mutex_unlock(&table->lock);
}
