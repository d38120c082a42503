/*
 * sesscount.h -- sessions per client address, and in all, counted across
 * every smtp worker (and every generation of them).
 */
#ifndef POSTHASTE_SESSCOUNT_H
#define POSTHASTE_SESSCOUNT_H

#define SESSCOUNT_OK		0
#define SESSCOUNT_PER_IP	1	/* the address has its share */
#define SESSCOUNT_TOTAL		2	/* the server is full */

/* in the parent, before any worker is forked */
void	sesscount_init(void);
/*
 * Count a new session from addr.  Returns SESSCOUNT_OK (and a handle for
 * sesscount_release in *handle, -1 when the table had no room, which is
 * not a reason to refuse) or why it must be refused (nothing counted).
 */
int	sesscount_take(const char *addr, int max_per_ip, int max_total,
	    int *handle);
void	sesscount_release(int handle);

#endif
