/*
 * peercred.c -- who is at the other end of a unix socket, as the kernel
 * says, never as the peer claims.
 *
 * Stream sockets (control, local submission): the peer's effective uid
 * when it connected.  Linux: SO_PEERCRED; FreeBSD and OpenBSD:
 * getpeereid(3) (OpenBSD's SO_PEERCRED has another struct; getpeereid
 * is the one call both have).
 *
 * Datagram sockets (the log channel, common/log.c): the sender's pid on
 * each message, so a child cannot write lines in another's name.
 * Linux: SO_PASSCRED, and an SCM_CREDENTIALS message on each datagram.
 * FreeBSD (13.0): LOCAL_CREDS_PERSISTENT, and SCM_CREDS2 (struct
 * sockcred2) on each.  OpenBSD has no per-message credentials: the pid
 * is 0 (unknown) there, and log lines carry no pid from the kernel.
 */
#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* glibc: the extensions this file wraps */
#endif
#endif

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <string.h>
#include <unistd.h>

#include "platform.h"

#if defined(__linux__)

int
platform_peer_uid(int fd, uid_t *uid)
{
	struct ucred	cred;
	socklen_t	len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return -1;
	*uid = cred.uid;
	return 0;
}

int
platform_passcred(int fd)
{
	int	on = 1;

	return setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
}

pid_t
platform_cred_pid(struct msghdr *mh)
{
	struct ucred	 cred;
	struct cmsghdr	*cm;
	pid_t		 pid = 0;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_CREDENTIALS &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(cred))) {
			memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
			pid = cred.pid;
		}
	}
	return pid;
}

#else

int
platform_peer_uid(int fd, uid_t *uid)
{
	gid_t	gid;

	return getpeereid(fd, uid, &gid);
}

#if defined(__FreeBSD__)

int
platform_passcred(int fd)
{
	int	on = 1;

	return setsockopt(fd, SOL_LOCAL, LOCAL_CREDS_PERSISTENT, &on,
	    sizeof(on));
}

pid_t
platform_cred_pid(struct msghdr *mh)
{
	struct sockcred2	 cred;
	struct cmsghdr		*cm;
	pid_t			 pid = 0;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_CREDS2 &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(cred))) {
			memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
			pid = cred.sc_pid;
		}
	}
	return pid;
}

#else

int
platform_passcred(int fd)
{
	(void)fd;
	return 0;
}

pid_t
platform_cred_pid(struct msghdr *mh)
{
	(void)mh;
	return 0;
}

#endif
#endif
