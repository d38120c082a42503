/*
 * libc.c -- C library functions every system we run on has, but glibc
 * (2.36, Debian 12) declares only for _GNU_SOURCE.
 *
 * asprintf(3) and vasprintf(3) are native on FreeBSD and OpenBSD (and in
 * POSIX.1-2024); the rest of the tree is compiled without _GNU_SOURCE,
 * so it calls them through here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* glibc: the extensions this file wraps */
#endif

#include <stdarg.h>
#include <stdio.h>

#include "platform.h"

int
platform_vasprintf(char **ret, const char *fmt, va_list ap)
{
	return vasprintf(ret, fmt, ap);
}

int
platform_asprintf(char **ret, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	return n;
}
