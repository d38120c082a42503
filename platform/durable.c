/*
 * durable.c -- a whole-filesystem sync, where the system has one.
 *
 * Linux's syncfs(2) writes out and waits for everything dirty on one
 * file system: the queue's group commit (one call for a batch of
 * messages) and the Maildir pipeline are built on it.  The BSDs have
 * none: their sync(2) only schedules the writes and returns (FreeBSD,
 * OpenBSD sync(2)), which makes nothing durable, so there
 * PLATFORM_HAS_SYNCFS is 0 and the callers fsync(2) each file and
 * directory instead.
 */
#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* glibc: the extensions this file wraps */
#endif
#endif

#include <errno.h>
#include <unistd.h>

#include "platform.h"

int
platform_syncfs(int fd)
{
#if PLATFORM_HAS_SYNCFS
	return syncfs(fd);
#else
	(void)fd;
	errno = ENOSYS;
	return -1;
#endif
}
