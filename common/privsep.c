/*
 * privsep.c -- dropping privileges and entering the seccomp sandbox.
 *
 * Every child follows the same fixed order: look up the user while
 * /etc/passwd is still visible, chroot, chdir, setgroups, setresgid,
 * setresuid, verify nothing can be regained, then the syscall filter.
 * Group before user: once the uid is gone we could no longer change gids.
 */
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "privsep.h"

void
privsep_drop_ids(uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	uid_t	ru, eu, su;
	gid_t	rg, eg, sg;

	if (setgroups(ngroups, groups) == -1)
		fatal("setgroups");
	if (setresgid(gid, gid, gid) == -1)
		fatal("setresgid");
	if (setresuid(uid, uid, uid) == -1)
		fatal("setresuid");
	if (getresuid(&ru, &eu, &su) == -1 || ru != uid || eu != uid ||
	    su != uid)
		fatalx("uid not dropped");
	if (getresgid(&rg, &eg, &sg) == -1 || rg != gid || eg != gid ||
	    sg != gid)
		fatalx("gid not dropped");
	if (uid != 0 && setuid(0) != -1)
		fatalx("could regain root after dropping privileges");
	/* no core dumps of a process that saw other users' mail */
	if (prctl(PR_SET_DUMPABLE, 0) == -1)
		fatal("prctl(PR_SET_DUMPABLE)");
}

void
privsep_drop(const char *user, const char *chrootdir)
{
	struct passwd	*pw;
	uid_t		 uid;
	gid_t		 gid;

	if ((pw = getpwnam(user)) == NULL)
		fatalx("unknown user %s", user);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0)
		fatalx("user %s must not be root", user);
	if (chrootdir != NULL) {
		if (chroot(chrootdir) == -1)
			fatal("chroot %s", chrootdir);
	}
	if (chdir("/") == -1)
		fatal("chdir /");
	privsep_drop_ids(uid, gid, &gid, 1);
}

/* system calls every process needs, whatever it does */
static const int sc_base[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(close), SCMP_SYS(exit), SCMP_SYS(exit_group),
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(mprotect),
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
	/* what the sanitizer runtimes need to report an error */
	SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(readlink),
	SCMP_SYS(readlinkat), SCMP_SYS(prctl), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64), SCMP_SYS(sched_yield), SCMP_SYS(uname),
	SCMP_SYS(getppid), SCMP_SYS(gettid), SCMP_SYS(tgkill),
	SCMP_SYS(getdents64), SCMP_SYS(sched_getaffinity), SCMP_SYS(kill),
	SCMP_SYS(clone), SCMP_SYS(wait4), SCMP_SYS(ptrace),
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

/* filesystem work inside a directory tree */
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

/* outgoing connections and DNS */
static const int sc_client[] = {
	SCMP_SYS(socket), SCMP_SYS(connect), SCMP_SYS(bind),
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

/* opens for reading only, unix sockets only, capability probes */
static void
sandbox_auth(scmp_filter_ctx ctx)
{
	const scmp_datum_t	 wmask = O_ACCMODE | O_CREAT | O_TRUNC;
	struct scmp_arg_cmp	 ro_open = SCMP_A1(SCMP_CMP_MASKED_EQ, wmask, 0);
	struct scmp_arg_cmp	 ro_openat = SCMP_A2(SCMP_CMP_MASKED_EQ, wmask,
				    0);
	struct scmp_arg_cmp	 unix_only = SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0);
	struct scmp_arg_cmp	 capbset = SCMP_A0(SCMP_CMP_EQ,
				    PR_CAPBSET_READ, 0);

	sandbox_allow(ctx, sc_auth);
	sandbox_rule(ctx, SCMP_SYS(open), 1, &ro_open);
	sandbox_rule(ctx, SCMP_SYS(openat), 1, &ro_openat);
	sandbox_rule(ctx, SCMP_SYS(socket), 1, &unix_only);
	sandbox_rule(ctx, SCMP_SYS(prctl), 1, &capbset);
}

void
sandbox_enter(enum sandbox_profile profile)
{
	scmp_filter_ctx	ctx;
	uint32_t	defact = SCMP_ACT_KILL_PROCESS;

	/* the process must never gain privileges through exec */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	if (getenv("POSTHASTE_SECCOMP_LOG") != NULL)
		defact = SCMP_ACT_LOG;	/* development: find missing calls */
	if ((ctx = seccomp_init(defact)) == NULL)
		fatalx("seccomp_init");
	/* every thread of the process (the queue's syncer) gets the filter */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0)
		fatalx("seccomp_attr_set TSYNC");
	sandbox_allow(ctx, sc_base);
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

		sandbox_allow(ctx, sc_files);
		sandbox_allow(ctx, sc_client);
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
		    capbset) < 0)
			fatalx("seccomp_rule_add prctl");
		break;
	}
	case SANDBOX_MTA:
		sandbox_allow(ctx, sc_client);
		sandbox_allow(ctx, sc_mta);
		break;
	case SANDBOX_AUTH:
		sandbox_auth(ctx);
		break;
	}
	if (seccomp_load(ctx) < 0)
		fatalx("seccomp_load");
	seccomp_release(ctx);
}

/*
 * Process titles.  The kernel shows the memory that held argv (and the
 * environment right after it) as /proc/PID/cmdline; we copy argv and the
 * environment elsewhere once, then write each title over that area and
 * clear the rest, so no leftover of the old arguments shows in ps(1).
 */
static char	*title_area;
static size_t	 title_size;

void
privsep_title_init(int argc, char **argv)
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
privsep_title(const char *name)
{
	char	buf[128];
	int	len;

	log_procname(name);
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
