/*
 * util.c -- small helpers more than one program needs.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int
write_full(int fd, const void *data, size_t len)
{
	const char	*p = data;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
textf(char *out, size_t len, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

int64_t
monotonic_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const void *
sockaddr_ip(const struct sockaddr_storage *ss, size_t *len)
{
	if (ss->ss_family == AF_INET) {
		*len = 4;
		return &((const struct sockaddr_in *)ss)->sin_addr;
	}
	if (ss->ss_family == AF_INET6) {
		*len = 16;
		return &((const struct sockaddr_in6 *)ss)->sin6_addr;
	}
	*len = 0;
	return NULL;
}

/* FNV-1a over the address bytes; 0 for another family */
uint32_t
sockaddr_ip_hash(const struct sockaddr_storage *ss)
{
	const unsigned char	*b;
	size_t			 len, i;
	uint32_t		 h = 2166136261u;

	if ((b = sockaddr_ip(ss, &len)) == NULL)
		return 0;
	for (i = 0; i < len; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}
