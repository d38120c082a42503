/*
 * privsep.c -- dropping privileges.
 *
 * Every child follows the same fixed order: look up the user while
 * /etc/passwd is still visible, chroot, chdir, setgroups, setresgid,
 * setresuid, verify nothing can be regained, then the sandbox
 * (sandbox_enter(), platform/: seccomp on Linux, pledge on OpenBSD).
 * Group before user: once the uid is gone we could no longer change gids.
 */
#include <sys/types.h>

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "log.h"
#include "platform.h"
#include "privsep.h"

void
privsep_drop_ids(uid_t uid, gid_t gid, const gid_t *groups, int ngroups)
{
	uid_t	ru, eu, su;
	gid_t	rg, eg, sg;

	if (setgroups(ngroups, groups) == -1)
		fatal("setgroups");
	if (platform_setresgid(gid, gid, gid) == -1)
		fatal("setresgid");
	if (platform_setresuid(uid, uid, uid) == -1)
		fatal("setresuid");
	if (platform_getresuid(&ru, &eu, &su) == -1 || ru != uid ||
	    eu != uid || su != uid)
		fatalx("uid not dropped");
	if (platform_getresgid(&rg, &eg, &sg) == -1 || rg != gid ||
	    eg != gid || sg != gid)
		fatalx("gid not dropped");
	if (uid != 0 && setuid(0) != -1)
		fatalx("could regain root after dropping privileges");
	/* no core dumps of a process that saw other users' mail */
	if (platform_nodump() == -1)
		fatal("platform_nodump");
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

void
privsep_title_init(int argc, char **argv)
{
	platform_title_init(argc, argv);
}

void
privsep_title(const char *name)
{
	log_procname(name);
	platform_title(name);
}
