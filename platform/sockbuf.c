/*
 * sockbuf.c -- a send buffer larger than the system's default limit.
 *
 * The log channel's sending end holds the children's lines while the
 * parent is busy (common/log.c).  On Linux root may go past wmem_max
 * with SO_SNDBUFFORCE; elsewhere (and when that is refused) SO_SNDBUF,
 * which the system caps at its own limit (FreeBSD kern.ipc.maxsockbuf).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include "platform.h"

int
platform_sndbuf(int fd, int size)
{
#if defined(__linux__)
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size,
	    sizeof(size)) == 0)
		return 0;
#endif
	return setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}
