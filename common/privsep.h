/*
 * privsep.h -- the privilege-drop ritual and the seccomp sandboxes.
 */
#ifndef POSTHASTE_PRIVSEP_H
#define POSTHASTE_PRIVSEP_H

#include <sys/types.h>

#define SMTPD_USER		"_smtpd"
#define SMTPD_QUEUE_USER	"_smtpq"
#define SMTPD_EMPTY_DIR		"/var/empty"

enum sandbox_profile {
	SANDBOX_SMTP,
	SANDBOX_QUEUE,
	SANDBOX_LOOKUP,
	SANDBOX_MTA,
	SANDBOX_CONTROL,
	SANDBOX_MDA,		/* local delivery as a user, no exec */
	SANDBOX_AUTH,		/* system passwords: read-only files */
};

/*
 * chroot (if chrootdir != NULL), chdir("/"), setgroups, setresgid,
 * setresuid -- each step checked, then verified.  Fatal on any failure.
 */
void	privsep_drop(const char *user, const char *chrootdir);
/* the same for a given uid/gid and supplementary groups (delivery) */
void	privsep_drop_ids(uid_t, gid_t, const gid_t *groups, int ngroups);
/* install the allow-list; default action kills the process */
void	sandbox_enter(enum sandbox_profile);
/* set the process title: "smtpd: NAME" */
void	privsep_title(const char *name);
void	privsep_title_init(int argc, char **argv);

#endif
