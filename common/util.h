/*
 * util.h -- small helpers more than one program needs.
 */
#ifndef POSTHASTE_UTIL_H
#define POSTHASTE_UTIL_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

/* write all of it, again after EINTR; -1 with errno on failure */
int	write_full(int fd, const void *data, size_t len);
/* snprintf for texts that are cut to fit on purpose */
void	textf(char *out, size_t len, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* milliseconds of a clock that only goes forward, for intervals */
int64_t	monotonic_ms(void);


struct sockaddr_storage;
/*
 * The address bytes of an IPv4 or IPv6 socket address (4 or 16 in *len),
 * NULL for another family; and a hash of them, for small caches.
 */
const void	*sockaddr_ip(const struct sockaddr_storage *, size_t *len);
uint32_t	 sockaddr_ip_hash(const struct sockaddr_storage *);

#endif
