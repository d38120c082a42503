/*
 * platform.h -- the one interface between Posthaste and the system it
 * runs on.
 *
 * Process code is written against POSIX (with the BSD extensions that
 * _DEFAULT_SOURCE gives on glibc) and this header; everything that
 * differs between Linux, OpenBSD and FreeBSD lives in platform/, chosen
 * by #if there and nowhere else.  Each file here does one job:
 *
 *	sandbox_linux.c	  seccomp allow-lists (libseccomp)
 *	sandbox_openbsd.c pledge(2)
 *	sandbox_none.c	  the others (FreeBSD): no syscall sandbox
 *	ids.c		  setres[ug]id, getres[ug]id; no core dumps
 *	fd.c		  closing descriptor ranges, accept4, pipe2
 *	peercred.c	  who is at the other end of a unix socket
 *	sockbuf.c	  a socket send buffer beyond the usual limit
 *	durable.c	  syncfs(2), where there is one
 *	crypt.c		  crypt(3) settings (salts) and hashing
 *	shadow.c	  system accounts' password hashes
 *	self.c		  the running program's path
 *	proctitle.c	  what ps(1) shows
 *	sched.c		  the scheduling class (SCHED_BATCH)
 *	malloc.c	  allocator tuning (glibc)
 *	libc.c		  asprintf, vasprintf
 *
 * Used directly everywhere, since Linux, FreeBSD (10) and OpenBSD (5.7)
 * all have them: SOCK_NONBLOCK and SOCK_CLOEXEC in socket(2) and
 * socketpair(2), MSG_NOSIGNAL, O_CLOEXEC, O_DIRECTORY, getentropy(3).
 *
 * A file here may define _GNU_SOURCE at its top; no other file needs
 * it.  Failures are returned as -1 with errno (the caller decides what
 * is fatal), except in the sandbox, which is fatal by design.
 */
#ifndef POSTHASTE_PLATFORM_H
#define POSTHASTE_PLATFORM_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stddef.h>

/*
 * A whole-filesystem sync.  Where there is one (Linux syncfs(2)), the
 * queue commits in groups: write and rename many files, then one
 * platform_syncfs() of the spool makes them all durable.  Elsewhere
 * every file and directory is fsync()ed on its own.
 */
#if defined(__linux__)
#define PLATFORM_HAS_SYNCFS	1
#else
#define PLATFORM_HAS_SYNCFS	0
#endif
/* sync the file system fd is on; -1 and ENOSYS where there is none */
int	platform_syncfs(int fd);

/*
 * The sandbox each child enters after dropping privileges.  A call
 * outside the profile kills the process (Linux: SIGSYS, OpenBSD:
 * SIGABRT); fatal on any failure to set it up.
 */
enum sandbox_profile {
	SANDBOX_SMTP,
	SANDBOX_QUEUE,
	SANDBOX_LOOKUP,
	SANDBOX_MTA,
	SANDBOX_CONTROL,
	SANDBOX_MDA,		/* local delivery as a user, no exec */
	SANDBOX_AUTH,		/* system passwords: read-only files */
	SANDBOX_KEYS,		/* private keys: channels only, nothing else */
};
void	sandbox_enter(enum sandbox_profile);
/*
 * Before sandbox_enter(): the process may read under this path (a file,
 * or a directory and everything beneath it) and nowhere else, where the
 * platform confines reads by path: Landlock on Linux (5.13 and later;
 * on an older kernel or one without it, nothing is confined), unveil(2)
 * on OpenBSD.  Only lookup uses it.  A path that does not exist is
 * skipped.  Fatal on any other failure.
 */
void	sandbox_read_only(const char *path);
/*
 * Before sandbox_enter(SANDBOX_LOOKUP): the process may create, write,
 * rename and remove files in the directory path, opened as dirfd, and
 * nowhere else: on Linux through dirfd only (openat, renameat and
 * unlinkat relative to it; seccomp compares the descriptor argument)
 * and, where Landlock is, beneath path only; on OpenBSD by unveil(2).
 * Lookup's MTA-STS policy cache (lookup/sts.c).
 */
void	sandbox_write_dir(const char *path, int dirfd);

/* native on Linux, FreeBSD and OpenBSD; glibc declares them for GNU */
int	platform_setresuid(uid_t, uid_t, uid_t);
int	platform_setresgid(gid_t, gid_t, gid_t);
int	platform_getresuid(uid_t *, uid_t *, uid_t *);
int	platform_getresgid(gid_t *, gid_t *, gid_t *);
/* no core dump and no debugger attach by our own uid */
int	platform_nodump(void);

/* close every descriptor from first to last; last ~0U: all from first */
int	platform_close_range(unsigned int first, unsigned int last);
/* accept(2) a new descriptor already non-blocking and close-on-exec */
int	platform_accept_nb(int, struct sockaddr *, socklen_t *);
/* pipe(2) with O_CLOEXEC and/or O_NONBLOCK on both ends from the start */
int	platform_pipe2(int fds[2], int flags);
/* open(2)'s O_NOATIME where there is one (Linux), else 0 */
int	platform_o_noatime(void);

/* the effective uid of the peer of a connected unix stream socket */
int	platform_peer_uid(int fd, uid_t *uid);
/*
 * The sender's pid on each datagram of a unix socket, from the kernel:
 * platform_passcred() asks for it on the receiving socket, recvmsg()
 * with a control buffer of PLATFORM_CRED_SPACE bytes, then
 * platform_cred_pid() finds it (0: the system does not tell).
 */
#define PLATFORM_CRED_SPACE	256
int	platform_passcred(int fd);
pid_t	platform_cred_pid(struct msghdr *);

/* SO_SNDBUF of size bytes, past the system's limit where root may */
int	platform_sndbuf(int fd, int size);

/*
 * A setting (method and a fresh salt) for crypt(3).  prefix is a method
 * ("$6$" for SHA-512-crypt) or NULL for the system's preferred one;
 * where the system has no choice (OpenBSD: bcrypt only) prefix is
 * ignored.  -1 and errno on failure.
 */
int	platform_crypt_setting(const char *prefix, char *buf, size_t len);
#define PLATFORM_CRYPT_SETTING_MAX	192
/*
 * crypt(3) into static storage: valid until the next call or
 * platform_crypt_wipe(), which clears it.  NULL or a string starting
 * with '*' on failure.
 */
const char *platform_crypt(const char *pass, const char *setting);
void	platform_crypt_wipe(void);

/* the process title: ps(1) shows "smtpd: NAME" */
void	platform_title_init(int argc, char **argv);
void	platform_title(const char *name);

/*
 * The scheduling class of mail work (sched.c): sched_batch() once in the
 * daemon's parent, before any child, so every process inherits it;
 * sched_restore() in a child that is about to run a user's command.
 */
void	sched_batch(void);
void	sched_restore(void);

/* allocator settings for a process that allocates per message */
void	platform_malloc_tune(void);

/* asprintf(3), vasprintf(3) */
int	platform_asprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	platform_vasprintf(char **, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));

/*
 * A system account's password hash and whether the account has expired
 * (shadow.c); *hash may be the passwd entry's own ("x", "*") where there
 * is no shadow entry.  -1 (errno EACCES or EPERM) when the hashes cannot
 * be read by this process.  platform_shadow_warmup() before a sandbox
 * loads what the name service needs.  PLATFORM_SHADOW_FILE is where the
 * hashes live, for the privilege drop and the log.
 */
#if defined(__linux__)
#define PLATFORM_SHADOW_FILE	"/etc/shadow"
#else
#define PLATFORM_SHADOW_FILE	"/etc/spwd.db"
#endif
struct passwd;
int	platform_shadow(const struct passwd *, const char **hash,
	    int *expired);
void	platform_shadow_warmup(void);

/* the running program's absolute path (self.c); -1 where unknown */
int	platform_self_path(char *buf, size_t len);

#endif
