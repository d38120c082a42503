/*
 * sched.c -- the scheduling class of mail work (Linux SCHED_BATCH).
 *
 * glibc declares SCHED_BATCH for _GNU_SOURCE only; the BSDs have no
 * such class (their SCHED_OTHER is all there is for us), so there both
 * calls do nothing.
 */
#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* glibc: SCHED_BATCH */
#endif
#endif

#include <sched.h>

#include "platform.h"

/*
 * Mail is throughput work, and SCHED_BATCH (sched(7)) says so: a process
 * of that class that wakes up does not preempt the one running on its
 * CPU; it runs when that one blocks or its slice ends.  A worker woken
 * by a client's command, the queue woken by a worker, the mta woken by
 * the queue each used to push the process that woke it off the CPU, at
 * the price of two context switches, and then found one event to handle
 * instead of the several that arrive while it waits its turn.  Measured
 * on the relay benchmark (20 sessions of 1 KB, two CPUs): 15-20 % more
 * messages a second and 0.30 -> 0.24 ms of CPU per message.  A reply can
 * wait for the rest of a time slice on a busy CPU, never on an idle one;
 * nothing in mail notices that.
 *
 * Only a process started under the default policy is moved: a policy
 * the administrator chose (chrt, systemd's CPUSchedulingPolicy=) stays.
 * No privilege is needed (it asks for less, not more), and where the
 * class does not exist this does nothing.
 */
static int	sched_changed;

void
sched_batch(void)
{
#ifdef SCHED_BATCH
	struct sched_param	sp = { .sched_priority = 0 };

	if (sched_getscheduler(0) != SCHED_OTHER)
		return;
	if (sched_setscheduler(0, SCHED_BATCH, &sp) == 0)
		sched_changed = 1;
#endif
}

/* a user's command runs as it would from a shell: the default class */
void
sched_restore(void)
{
#ifdef SCHED_BATCH
	struct sched_param	sp = { .sched_priority = 0 };

	if (sched_changed)
		(void)sched_setscheduler(0, SCHED_OTHER, &sp);
#endif
}
