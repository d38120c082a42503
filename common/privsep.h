/*
 * privsep.h -- the privilege-drop ritual.  The sandboxes (sandbox_enter())
 * are the platform's: platform.h, included here for every caller.
 */
#ifndef POSTHASTE_PRIVSEP_H
#define POSTHASTE_PRIVSEP_H

#include <sys/types.h>

#include "platform.h"

#define SMTPD_USER		"_smtpd"
#define SMTPD_QUEUE_USER	"_smtpq"
#define SMTPD_EMPTY_DIR		"/var/empty"

/*
 * chroot (if chrootdir != NULL), chdir("/"), setgroups, setresgid,
 * setresuid -- each step checked, then verified.  Fatal on any failure.
 */
void	privsep_drop(const char *user, const char *chrootdir);
/* the same for a given uid/gid and supplementary groups (delivery) */
void	privsep_drop_ids(uid_t, gid_t, const gid_t *groups, int ngroups);
/* set the process title: "smtpd: NAME" */
void	privsep_title(const char *name);
void	privsep_title_init(int argc, char **argv);

#endif
