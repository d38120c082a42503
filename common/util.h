/*
 * util.h -- small helpers more than one program needs.
 */
#ifndef POSTHASTE_UTIL_H
#define POSTHASTE_UTIL_H

#include <stddef.h>

/* write all of it, again after EINTR; -1 with errno on failure */
int	write_full(int fd, const void *data, size_t len);
/* snprintf for texts that are cut to fit on purpose */
void	textf(char *out, size_t len, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#endif
