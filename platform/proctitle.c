/*
 * proctitle.c -- what ps(1) shows for each process: "smtpd: NAME".
 *
 * The BSDs have setproctitle(3), which puts the program name and a
 * colon in front by itself.  Linux has none: see below.
 */
#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* glibc: the extensions this file wraps */
#endif
#endif

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform.h"

#if defined(__OpenBSD__) || defined(__FreeBSD__)

void
platform_title_init(int argc, char **argv)
{
}

void
platform_title(const char *name)
{
	setproctitle("%s", name);
}

#else

extern char	**environ;

/*
 * Linux (and any other system without setproctitle).  The kernel shows
 * the memory that held argv (and the environment right after it) as
 * /proc/PID/cmdline; we copy argv and the
 * environment elsewhere once, then write each title over that area and
 * clear the rest, so no leftover of the old arguments shows in ps(1).
 */
static char	*title_area;
static size_t	 title_size;

void
platform_title_init(int argc, char **argv)
{
	char	*start, *end, **env;
	int	 i, n;

	if (argc < 1 || argv[0] == NULL)
		return;
	start = argv[0];
	end = argv[0] + strlen(argv[0]) + 1;
	for (i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	for (n = 0; environ[n] != NULL; n++)
		if (environ[n] == end)
			end = environ[n] + strlen(environ[n]) + 1;
	/* move what lives in the area before we write over it */
	if ((env = calloc(n + 1, sizeof(*env))) == NULL)
		return;
	for (i = 0; i < n; i++)
		if ((env[i] = strdup(environ[i])) == NULL)
			return;
	environ = env;
	for (i = 0; i < argc; i++)
		if ((argv[i] = strdup(argv[i])) == NULL)
			return;
	title_area = start;
	title_size = end - start;
}

void
platform_title(const char *name)
{
	char	buf[128];
	int	len;

	if (title_area == NULL || title_size < 2)
		return;
	len = snprintf(buf, sizeof(buf), "smtpd: %s", name);
	if (len < 0)
		return;
	if ((size_t)len >= title_size)
		len = (int)title_size - 1;
	memset(title_area, 0, title_size);
	memcpy(title_area, buf, len);
}

#endif
