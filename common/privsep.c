/*
 * privsep.c -- dropping privileges and entering the seccomp sandbox.
 *
 * Every child follows the same fixed order: look up the user while
 * /etc/passwd is still visible, chroot, chdir, setgroups, setresgid,
 * setresuid, verify nothing can be regained, then the syscall filter.
 * Group before user: once the uid is gone we could no longer change gids.
 *
 * Each profile allows what its process does and no more; none may map
 * memory executable after start-up (W^X).  A build with sanitizers
 * (POSTHASTE_SAN) allows more and is never installed (Makefile, obj-san).
 * test_sandbox.py tries the forbidden calls through a test build.
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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
