/*
 * self.c -- the path of the running program, where the system says it.
 *
 * newaliases (sendmail -bi) runs the makemap installed beside it, so a
 * build tree or a /usr/local install uses its own.  Linux tells through
 * /proc/self/exe, FreeBSD through the kern.proc.pathname sysctl;
 * OpenBSD has no reliable way, and the caller falls back to the usual
 * install paths.
 */
#include <sys/types.h>
#if defined(__FreeBSD__)
#include <sys/sysctl.h>
#endif

#include <errno.h>
#include <stddef.h>
#include <unistd.h>

#include "platform.h"

int
platform_self_path(char *buf, size_t len)
{
#if defined(__linux__)
	ssize_t	n;

	if (len == 0 || (n = readlink("/proc/self/exe", buf, len - 1)) <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
#elif defined(__FreeBSD__)
	int	mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, -1 };
	size_t	n = len;

	if (sysctl(mib, 4, buf, &n, NULL, 0) == -1)
		return -1;
	return 0;
#else
	(void)buf;
	(void)len;
	errno = ENOSYS;
	return -1;
#endif
}
