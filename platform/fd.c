/*
 * fd.c -- descriptors: closing ranges, and new ones born close-on-exec.
 *
 * Every child closes all it inherited but the few it keeps
 * (close_all_but(), common/proc.c).  Linux (5.9, glibc 2.34) and
 * FreeBSD (12.2) do a range in one close_range(2); OpenBSD has
 * closefrom(2) for "from here on" and a range below that is closed one
 * descriptor at a time, as on any other system.
 *
 * accept4(2) and pipe2(2) exist on all three (FreeBSD 10, OpenBSD 5.7);
 * glibc declares them for _GNU_SOURCE only, hence the wrappers.  A
 * descriptor that is close-on-exec from birth cannot leak into a program
 * a delivery runs, even if another thread forks in between.
 */
#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* glibc: the extensions this file wraps */
#endif
#endif

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "platform.h"

#if !defined(__linux__) && !defined(__FreeBSD__)
/* close [first, last] one by one; EBADF is what most of them give */
static int
close_each(unsigned int first, unsigned int last)
{
	long		max = sysconf(_SC_OPEN_MAX);
	unsigned int	fd;

	if (max > 0 && (unsigned long)max - 1 < last)
		last = (unsigned int)(max - 1);
	for (fd = first; fd <= last && fd <= INT_MAX; fd++) {
		if (close((int)fd) == -1 && errno != EBADF && errno != EINTR)
			return -1;
		if (fd == last)
			break;
	}
	return 0;
}
#endif

int
platform_close_range(unsigned int first, unsigned int last)
{
#if defined(__linux__) || defined(__FreeBSD__)
	return close_range(first, last, 0);
#elif defined(__OpenBSD__)
	if (first > INT_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (last == ~0U)
		return closefrom((int)first);
	return close_each(first, last);
#else
	return close_each(first, last);
#endif
}

int
platform_accept_nb(int fd, struct sockaddr *sa, socklen_t *salen)
{
	return accept4(fd, sa, salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int
platform_pipe2(int fds[2], int flags)
{
	return pipe2(fds, flags);
}

/*
 * Linux's O_NOATIME (a GNU declaration in glibc): reading a file does not
 * update its access time.  The BSDs have no such flag: 0 there.
 */
int
platform_o_noatime(void)
{
#ifdef O_NOATIME
	return O_NOATIME;
#else
	return 0;
#endif
}
