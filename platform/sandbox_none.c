/*
 * sandbox_none.c -- systems with neither seccomp nor pledge (FreeBSD).
 *
 * No syscall sandbox: each child still runs as its own unprivileged
 * user, chrooted where DESIGN.md says (common/privsep.c).  Capsicum
 * (cap_enter(2)) is not practical for us: capability mode takes away
 * the global namespaces (open(2) of a path, connect(2) and bind(2) to
 * an address; only openat(2) beneath a directory descriptor opened
 * before remains), and lookup opens its tables, includes,
 * .forward files and the name service's files by path, libunbound
 * opens sockets to the resolvers, the mta and lookup connect() to
 * addresses chosen at run time, and the queue creates and renames
 * spool files by name.  Making each of those go through descriptors
 * opened before cap_enter() would be a redesign, not a port.
 */
#if !defined(__linux__) && !defined(__OpenBSD__)

#include "platform.h"

void
sandbox_read_only(const char *path)
{
	(void)path;
}

void
sandbox_write_dir(const char *path, int dirfd)
{
	(void)path;
	(void)dirfd;
}

void
sandbox_enter(enum sandbox_profile profile)
{
	(void)profile;
}

#endif
