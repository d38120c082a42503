/*
 * ids.c -- real, effective and saved ids, and no core dumps.
 *
 * setresuid(2), setresgid(2), getresuid(2) and getresgid(2) are native
 * on Linux, FreeBSD and OpenBSD alike; they are wrapped only because
 * glibc declares them for _GNU_SOURCE, which no other file defines.
 *
 * A process that has seen other users' mail must not leave it in a core
 * file, nor be open to a debugger running as its own (unprivileged)
 * uid: Linux marks it not dumpable (prctl PR_SET_DUMPABLE, which also
 * forbids ptrace by that uid).  On FreeBSD procctl(2) PROC_TRACE_CTL
 * disables tracing; OpenBSD already lets only root trace a process that
 * changed its ids (P_SUGID).  Both BSDs get a zero core size limit
 * (RLIMIT_CORE) against dumps.
 */
#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* glibc: the extensions this file wraps */
#endif
#endif

#include <sys/types.h>
#if defined(__linux__)
#include <sys/prctl.h>
#elif defined(__FreeBSD__)
#include <sys/procctl.h>
#include <sys/wait.h>
#endif
#include <sys/resource.h>

#include <unistd.h>

#include "platform.h"

int
platform_setresuid(uid_t r, uid_t e, uid_t s)
{
	return setresuid(r, e, s);
}

int
platform_setresgid(gid_t r, gid_t e, gid_t s)
{
	return setresgid(r, e, s);
}

int
platform_getresuid(uid_t *r, uid_t *e, uid_t *s)
{
	return getresuid(r, e, s);
}

int
platform_getresgid(gid_t *r, gid_t *e, gid_t *s)
{
	return getresgid(r, e, s);
}

#if defined(__linux__)

int
platform_nodump(void)
{
	return prctl(PR_SET_DUMPABLE, 0);
}

#else

int
platform_nodump(void)
{
	struct rlimit	rl = { 0, 0 };
#if defined(__FreeBSD__)
	int		ctl = PROC_TRACE_CTL_DISABLE;

	if (procctl(P_PID, getpid(), PROC_TRACE_CTL, &ctl) == -1)
		return -1;
#endif
	return setrlimit(RLIMIT_CORE, &rl);
}

#endif
