/*
 * sandbox_linux.c -- the seccomp sandboxes (Linux, libseccomp).
 *
 * Each profile allows what its process does and no more; none may map
 * memory executable after start-up (W^X).  A build with sanitizers
 * (POSTHASTE_SAN) allows more and is never installed (Makefile, obj-san).
 * test_sandbox.py tries the forbidden calls through a test build.
 */
#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* glibc: the extensions this file wraps */
#endif

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <linux/landlock.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "platform.h"

/*
 * Landlock (Linux 5.13, ABI 1): reads confined to a set of paths
 * (sandbox_read_only()), on top of the seccomp filter, which already
 * keeps lookup from writing anything but beneath one directory
 * (sandbox_write_dir()).  Reading files, listing directories, writing
 * files and making and removing regular files are handled: writes are
 * allowed beneath that directory only, so that a name with ".." given
 * with its descriptor still cannot leave it.  Every other access is
 * the filter's business.  Rules name inodes: a directory covers a file
 * that is replaced in it by rename (makemap) later.  The raw system
 * calls, no liblandlock.
 */
#define RO_ACCESS	(LANDLOCK_ACCESS_FS_READ_FILE | \
			    LANDLOCK_ACCESS_FS_READ_DIR)
#define RW_ACCESS	(RO_ACCESS | LANDLOCK_ACCESS_FS_WRITE_FILE | \
			    LANDLOCK_ACCESS_FS_MAKE_REG | \
			    LANDLOCK_ACCESS_FS_REMOVE_FILE)

static int	ro_ruleset = -1;
static int	ro_state;	/* 0 not asked yet, 1 in use, -1 no Landlock */

static void
ro_add(const char *path, __u64 dir_access)
{
	struct landlock_path_beneath_attr	pb;
	struct stat				sb;
	int					fd;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) == -1) {
		/* what does not exist or cannot be reached is not read */
		if (errno == ENOENT || errno == EACCES || errno == ENOTDIR) {
			log_debug("sandbox: %s not in the read set: %s", path,
			    strerror(errno));
			return;
		}
		fatal("sandbox: %s", path);
	}
	if (fstat(fd, &sb) == -1)
		fatal("sandbox: fstat %s", path);
	memset(&pb, 0, sizeof(pb));
	pb.allowed_access = S_ISDIR(sb.st_mode) ? dir_access :
	    LANDLOCK_ACCESS_FS_READ_FILE;
	pb.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, ro_ruleset,
	    LANDLOCK_RULE_PATH_BENEATH, &pb, 0) == -1)
		fatal("landlock_add_rule %s", path);
	close(fd);
}

static void
ro_start(void)
{
	struct landlock_ruleset_attr	attr;
	long				abi;

	if (ro_state == 0) {
		abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
		    LANDLOCK_CREATE_RULESET_VERSION);
		if (abi < 1) {
			if (errno != ENOSYS && errno != EOPNOTSUPP)
				fatal("landlock_create_ruleset");
			log_info("sandbox: this kernel has no Landlock: reads "
			    "are not confined to the configured files");
			ro_state = -1;
			return;
		}
		memset(&attr, 0, sizeof(attr));
		attr.handled_access_fs = RW_ACCESS;
		if ((ro_ruleset = syscall(SYS_landlock_create_ruleset, &attr,
		    sizeof(attr), 0)) == -1)
			fatal("landlock_create_ruleset");
		ro_state = 1;
#ifdef POSTHASTE_SAN
		ro_add("/proc", RO_ACCESS);	/* the sanitizers' reports */
#endif
	}
}

void
sandbox_read_only(const char *path)
{
	ro_start();
	if (ro_state == 1)
		ro_add(path, RO_ACCESS);
}

static int	write_dirfd = -1;	/* sandbox_write_dir() */

void
sandbox_write_dir(const char *path, int dirfd)
{
	write_dirfd = dirfd;
	ro_start();
	if (ro_state == 1)
		ro_add(path, RW_ACCESS);
}

/* system calls every process needs, whatever it does */
static const int sc_base[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(close), SCMP_SYS(exit), SCMP_SYS(exit_group),
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise),	/* mmap, mprotect: sandbox_wx() */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(getpid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
	SCMP_SYS(getgid), SCMP_SYS(getegid),
	SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendto),
	SCMP_SYS(recvfrom),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigaction), SCMP_SYS(sigaltstack),
	SCMP_SYS(fcntl), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
	SCMP_SYS(lseek), SCMP_SYS(getrandom), SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(restart_syscall),
	SCMP_SYS(futex), SCMP_SYS(pipe2), SCMP_SYS(eventfd2),
	SCMP_SYS(statx), SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3),
	SCMP_SYS(getresuid), SCMP_SYS(getresgid), SCMP_SYS(getppid),
	SCMP_SYS(rseq), SCMP_SYS(set_robust_list),	/* a thread starting */
#ifdef POSTHASTE_SAN
	/* what the sanitizer runtimes need to report an error (and
	 * read-only opens: sandbox_enter) */
	SCMP_SYS(readlink),
	SCMP_SYS(readlinkat), SCMP_SYS(prctl), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64), SCMP_SYS(sched_yield), SCMP_SYS(uname),
	SCMP_SYS(getppid), SCMP_SYS(gettid), SCMP_SYS(tgkill),
	SCMP_SYS(getdents64), SCMP_SYS(sched_getaffinity), SCMP_SYS(kill),
	SCMP_SYS(clone), SCMP_SYS(wait4), SCMP_SYS(ptrace),
#endif
	-1
};

/*
 * The keys process: the tightest list of all.  It reads requests on the
 * channels it was given and writes answers, on its event loop; nothing
 * else -- no open, no socket, no pipe, no descriptor of any kind made
 * (sc_base is not used for it).
 */
static const int sc_keys[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
	SCMP_SYS(close), SCMP_SYS(exit), SCMP_SYS(exit_group),
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
	SCMP_SYS(getpid), SCMP_SYS(getrandom), SCMP_SYS(futex),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigaction), SCMP_SYS(restart_syscall),
	SCMP_SYS(fcntl), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
	SCMP_SYS(lseek),	/* stdio's fflush of the log stream */
#ifdef POSTHASTE_SAN
	SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(prctl),
	SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(sched_yield),
	SCMP_SYS(uname), SCMP_SYS(gettid), SCMP_SYS(tgkill),
	SCMP_SYS(getdents64), SCMP_SYS(sched_getaffinity), SCMP_SYS(kill),
	SCMP_SYS(clone), SCMP_SYS(wait4), SCMP_SYS(ptrace),
	SCMP_SYS(sigaltstack), SCMP_SYS(getppid),
#endif
	-1
};

/* network servers: accept clients and talk on sockets */
static const int sc_accept[] = {
	SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(getsockopt),
	SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
	SCMP_SYS(shutdown), -1
};

/* the smtp worker writes the spool file it is handed and syncs it */
static const int sc_smtp[] = {
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(pwrite64),
	SCMP_SYS(ftruncate), SCMP_SYS(pread64), -1
};

/* filesystem work inside a directory tree (queue, local delivery) */
static const int sc_files[] = {
	SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(mkdir), SCMP_SYS(mkdirat),
	SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(renameat2),
	SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(rmdir),
	SCMP_SYS(link), SCMP_SYS(linkat), SCMP_SYS(stat), SCMP_SYS(lstat),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(syncfs),
	SCMP_SYS(getdents64), SCMP_SYS(ftruncate), SCMP_SYS(fchmod),
	SCMP_SYS(fchown), SCMP_SYS(umask), SCMP_SYS(pread64),
	SCMP_SYS(pwrite64), SCMP_SYS(statfs), SCMP_SYS(fstatfs),
	SCMP_SYS(utimensat), SCMP_SYS(access), SCMP_SYS(faccessat),
	SCMP_SYS(uname), SCMP_SYS(flock), SCMP_SYS(chdir), SCMP_SYS(fchdir),
	SCMP_SYS(readlink), SCMP_SYS(readlinkat),
	-1
};

/*
 * Lookup reads its tables (text and Berkeley DB files, includes), the
 * password and group files through the name service, and .forward files
 * the parent opens for it: it never creates, renames, links, removes or
 * changes a file.  open and openat are added read-only (sandbox_ro_open).
 */
static const int sc_lookup[] = {
	SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(access), SCMP_SYS(faccessat),
	SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getdents64),
	SCMP_SYS(pread64), SCMP_SYS(statfs), SCMP_SYS(fstatfs),
	SCMP_SYS(uname), SCMP_SYS(flock),
	-1
};

/* outgoing connections and DNS; socket() itself: sandbox_sockets() */
static const int sc_client[] = {
	SCMP_SYS(connect), SCMP_SYS(bind),
	SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(shutdown),
	SCMP_SYS(sendmmsg), SCMP_SYS(recvmmsg), -1
};

/* the mta (and the LMTP client) read the spool file they are handed */
static const int sc_mta[] = {
	SCMP_SYS(pread64), -1
};

/*
 * The system-account helper reads the password and shadow files through
 * the name service; systemd's module may try its varlink socket.
 */
static const int sc_auth[] = {
	SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(access), SCMP_SYS(faccessat),
	SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getdents64),
	SCMP_SYS(uname), SCMP_SYS(connect), SCMP_SYS(getsockopt),
	SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
	-1
};

static void
sandbox_allow(scmp_filter_ctx ctx, const int *list)
{
	int	rc;

	for (; *list != -1; list++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, *list, 0);
		if (rc < 0 && rc != -EEXIST)
			fatalx("seccomp_rule_add %d: %s", *list, strerror(-rc));
	}
}

static void
sandbox_rule(scmp_filter_ctx ctx, int sc, unsigned int argc,
    const struct scmp_arg_cmp *args)
{
	int	rc;

	rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, sc, argc, args);
	if (rc < 0 && rc != -EEXIST)
		fatalx("seccomp_rule_add %d: %s", sc, strerror(-rc));
}

/* open and openat for reading only: no creating, truncating or writing */
static void
sandbox_ro_open(scmp_filter_ctx ctx)
{
	const scmp_datum_t	 wmask = O_ACCMODE | O_CREAT | O_TRUNC;
	struct scmp_arg_cmp	 ro_open = SCMP_A1(SCMP_CMP_MASKED_EQ, wmask, 0);
	struct scmp_arg_cmp	 ro_openat = SCMP_A2(SCMP_CMP_MASKED_EQ, wmask,
				    0);

	sandbox_rule(ctx, SCMP_SYS(open), 1, &ro_open);
	sandbox_rule(ctx, SCMP_SYS(openat), 1, &ro_openat);
}

/*
 * socket() for the given families, with the given types only (flags
 * SOCK_NONBLOCK and SOCK_CLOEXEC aside), protocol 0 or the type's own
 * (TCP, UDP): no raw, packet, netlink or any other kind of socket.
 */
static void
sandbox_sockets(scmp_filter_ctx ctx, const int *families, int dgram)
{
	const scmp_datum_t	 tmask = 0xffffffffU &
				    ~(scmp_datum_t)(SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct scmp_arg_cmp	 a[3];
	int			 t;

	for (; *families != -1; families++) {
		for (t = 0; t < (dgram ? 2 : 1); t++) {
			int type = t == 0 ? SOCK_STREAM : SOCK_DGRAM;
			int proto = *families == AF_UNIX ? 0 :
			    t == 0 ? IPPROTO_TCP : IPPROTO_UDP;

			a[0] = SCMP_A0(SCMP_CMP_EQ, *families, 0);
			a[1] = SCMP_A1(SCMP_CMP_MASKED_EQ, tmask, type);
			a[2] = SCMP_A2(SCMP_CMP_EQ, 0, 0);
			sandbox_rule(ctx, SCMP_SYS(socket), 3, a);
			if (proto != 0) {
				a[2] = SCMP_A2(SCMP_CMP_EQ, proto, 0);
				sandbox_rule(ctx, SCMP_SYS(socket), 3, a);
			}
		}
	}
}

/*
 * Creating, renaming and removing files relative to write_dirfd only:
 * the "*at" calls whose directory argument is that descriptor.  (A
 * name with ".." could still leave it; the callers make names without
 * "/" from validated host names.)
 */
static void
sandbox_dir_writes(scmp_filter_ctx ctx)
{
	struct scmp_arg_cmp	a[2];

	if (write_dirfd == -1)
		return;
	/* spelt out: clang finds SCMP_An()'s initializers incomplete */
	a[0] = (struct scmp_arg_cmp){ .arg = 0, .op = SCMP_CMP_EQ,
	    .datum_a = (scmp_datum_t)write_dirfd, .datum_b = 0 };
	sandbox_rule(ctx, SCMP_SYS(openat), 1, a);
	sandbox_rule(ctx, SCMP_SYS(unlinkat), 1, a);
	a[1] = (struct scmp_arg_cmp){ .arg = 2, .op = SCMP_CMP_EQ,
	    .datum_a = (scmp_datum_t)write_dirfd, .datum_b = 0 };
	sandbox_rule(ctx, SCMP_SYS(renameat), 2, a);
	sandbox_rule(ctx, SCMP_SYS(renameat2), 2, a);
}

/*
 * W^X: after start-up no process maps or makes memory executable; every
 * library it runs was mapped before the filter (the name service modules
 * are loaded on purpose first, lookup.c).  An exploit cannot stage code.
 */
static void
sandbox_wx(scmp_filter_ctx ctx)
{
	struct scmp_arg_cmp	noexec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC,
				    0);

	sandbox_rule(ctx, SCMP_SYS(mmap), 1, &noexec);
	sandbox_rule(ctx, SCMP_SYS(mprotect), 1, &noexec);
	/* pkey_mprotect, and remap_file_pages, are not allowed at all */
}

/* opens for reading only, unix sockets only, capability probes */
static void
sandbox_auth(scmp_filter_ctx ctx)
{
	struct scmp_arg_cmp	 unix_only = SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0);
	struct scmp_arg_cmp	 capbset = SCMP_A0(SCMP_CMP_EQ,
				    PR_CAPBSET_READ, 0);

	sandbox_allow(ctx, sc_auth);
	sandbox_ro_open(ctx);
	sandbox_rule(ctx, SCMP_SYS(socket), 1, &unix_only);
	sandbox_rule(ctx, SCMP_SYS(prctl), 1, &capbset);
}

#ifdef POSTHASTE_SAN
/*
 * In the binary for test_sandbox.py to find: a build with the sanitizer
 * allowances above must never be installed (mk/install.sh refuses it).
 */
__attribute__((used)) static const char san_marker[] =
    "POSTHASTE_SAN_SANDBOX_ALLOWANCES";
#endif

#ifdef POSTHASTE_TEST_SANDBOX
/*
 * The test build only (Makefile: obj/regress/smtpd-sandbox, never
 * installed): POSTHASTE_SANDBOX_TRY="profile:call" makes the process of
 * that profile try the call right after entering its sandbox, as code
 * an attacker took over could.  A call the filter forbids kills it; one
 * that returns is logged, and the process goes on.
 */
static const char *const profile_names[] = {
	[SANDBOX_SMTP] = "smtp", [SANDBOX_QUEUE] = "queue",
	[SANDBOX_LOOKUP] = "lookup", [SANDBOX_MTA] = "mta",
	[SANDBOX_CONTROL] = "control", [SANDBOX_MDA] = "mda",
	[SANDBOX_AUTH] = "auth", [SANDBOX_KEYS] = "keys",
};

static void
sandbox_test_try(enum sandbox_profile profile)
{
	const char	*want, *call;
	char		 path[64];
	void		*p;
	long		 rc = 0;
	size_t		 len;

	if ((want = getenv("POSTHASTE_SANDBOX_TRY")) == NULL)
		return;
	len = strlen(profile_names[profile]);
	if (strncmp(want, profile_names[profile], len) != 0 ||
	    want[len] != ':')
		return;
	call = want + len + 1;
	snprintf(path, sizeof(path), "/tmp/posthaste-sandbox-%d",
	    (int)getpid());
	log_info("sandbox test: %s tries %s", profile_names[profile], call);
	if (strcmp(call, "socket-raw6") == 0)
		rc = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	else if (strcmp(call, "socket-packet") == 0)
		rc = socket(AF_PACKET, SOCK_DGRAM, 0);
	else if (strcmp(call, "socket-inet") == 0)
		rc = socket(AF_INET, SOCK_STREAM, 0);
	else if (strcmp(call, "create") == 0)
		rc = open(path, O_CREAT | O_WRONLY, 0600);
	else if (strcmp(call, "unlink") == 0)
		rc = unlink(path);
	else if (strcmp(call, "rename") == 0)
		rc = rename(path, "/tmp/posthaste-sandbox-renamed");
	else if (strcmp(call, "mkdir") == 0)
		rc = mkdir(path, 0700);
	else if (strcmp(call, "read-outside") == 0) {
		/* test_sandbox.py made it, readable by all */
		if ((rc = open("/var/tmp/posthaste-landlock-probe",
		    O_RDONLY | O_CLOEXEC)) != -1)
			close((int)rc);
	} else if (strcmp(call, "read-etc") == 0) {
		if ((rc = open("/etc/passwd", O_RDONLY | O_CLOEXEC)) != -1)
			close((int)rc);
	}
	else if (strcmp(call, "sts-write") == 0) {
		/* lookup's MTA-STS cache directory: allowed */
		if ((rc = openat(write_dirfd, ".sandbox-probe", O_CREAT |
		    O_WRONLY | O_CLOEXEC, 0600)) != -1) {
			close((int)rc);
			rc = unlinkat(write_dirfd, ".sandbox-probe", 0);
		}
	} else if (strcmp(call, "sts-escape") == 0) {
		/* elsewhere (/tmp: anyone may write there) with the
		 * descriptor the filter allows: Landlock refuses */
		if ((rc = openat(write_dirfd, path, O_CREAT | O_WRONLY |
		    O_CLOEXEC, 0600)) != -1) {
			close((int)rc);
			(void)unlinkat(write_dirfd, path, 0);
		}
	}
	else if (strcmp(call, "mmap-exec") == 0) {
		p = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		rc = p == MAP_FAILED ? -1 : 0;
	} else if (strcmp(call, "mprotect-exec") == 0) {
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			fatal("sandbox test: mmap");
		rc = mprotect(p, 4096, PROT_READ | PROT_EXEC);
	} else if (strcmp(call, "pkey-mprotect-exec") == 0) {
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			fatal("sandbox test: mmap");
		rc = syscall(SYS_pkey_mprotect, p, 4096, PROT_READ | PROT_EXEC,
		    -1);
	} else
		fatalx("sandbox test: unknown call %s", call);
	log_warnx("sandbox test: %s survived %s: returned %ld%s%s",
	    profile_names[profile], call, rc, rc == -1 ? ", " : "",
	    rc == -1 ? strerror(errno) : "");
}
#endif

void
sandbox_enter(enum sandbox_profile profile)
{
	static const int inet_unix[] = { AF_INET, AF_INET6, AF_UNIX, -1 };
	scmp_filter_ctx	ctx;
	uint32_t	defact = SCMP_ACT_KILL_PROCESS;

	/* the process must never gain privileges through exec */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	/* the read set, if one was given (it needs no_new_privs) */
	if (ro_state == 1) {
		if (syscall(SYS_landlock_restrict_self, ro_ruleset, 0) == -1)
			fatal("landlock_restrict_self");
		close(ro_ruleset);
		ro_ruleset = -1;
	}
	if (getenv("POSTHASTE_SECCOMP_LOG") != NULL)
		defact = SCMP_ACT_LOG;	/* development: find missing calls */
	if ((ctx = seccomp_init(defact)) == NULL)
		fatalx("seccomp_init");
	/* every thread of the process (the queue's syncer) gets the filter */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0)
		fatalx("seccomp_attr_set TSYNC");
	sandbox_allow(ctx, profile == SANDBOX_KEYS ? sc_keys : sc_base);
	sandbox_wx(ctx);
#ifdef POSTHASTE_SAN
	sandbox_ro_open(ctx);	/* /proc/self/maps for a report */
#endif
	/* libevent asks how much is readable; no other ioctl */
	struct scmp_arg_cmp fionread = { 1, SCMP_CMP_EQ, FIONREAD, 0 };

	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	    fionread) < 0)
		fatalx("seccomp_rule_add ioctl");
	switch (profile) {
	case SANDBOX_SMTP:
		sandbox_allow(ctx, sc_accept);
		sandbox_allow(ctx, sc_smtp);
		break;
	case SANDBOX_CONTROL:
		sandbox_allow(ctx, sc_accept);
		break;
	case SANDBOX_QUEUE:
	case SANDBOX_MDA:
		sandbox_allow(ctx, sc_files);
		break;
	case SANDBOX_LOOKUP: {
		/* nss modules (systemd's) probe capabilities on first use */
		struct scmp_arg_cmp capbset = { 0, SCMP_CMP_EQ,
		    PR_CAPBSET_READ, 0 };

		sandbox_allow(ctx, sc_lookup);
		sandbox_ro_open(ctx);
		sandbox_dir_writes(ctx);	/* the MTA-STS cache */
		sandbox_allow(ctx, sc_client);
		/*
		 * DNS over UDP and TCP (libunbound, to the configured
		 * resolvers), unix stream sockets for the name service
		 * (nscd, systemd's userdb)
		 */
		sandbox_sockets(ctx, inet_unix, 1);
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
		    capbset) < 0)
			fatalx("seccomp_rule_add prctl");
		break;
	}
	case SANDBOX_MTA:
		/* SMTP over TCP, LMTP over TCP or a unix socket */
		sandbox_allow(ctx, sc_client);
		sandbox_sockets(ctx, inet_unix, 0);
		sandbox_allow(ctx, sc_mta);
		break;
	case SANDBOX_AUTH:
		sandbox_auth(ctx);
		break;
	case SANDBOX_KEYS:
		break;
	}
	if (seccomp_load(ctx) < 0)
		fatalx("seccomp_load");
	seccomp_release(ctx);
#ifdef POSTHASTE_TEST_SANDBOX
	sandbox_test_try(profile);
#endif
}

#endif /* __linux__ */
