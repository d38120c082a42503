/*
 * sysusers.c -- the accounts mail is never delivered as.
 *
 * The daemon's processes run as _smtpd (workers, lookup, mta, control,
 * the auth helper, root's mbox appender, LMTP delivery) and _smtpq (the
 * queue, which owns the spool).  A delivery process running as one of
 * them could read or rewrite the spool, or whatever else those processes
 * trust, so no mailbox, file or program is ever delivered as either,
 * whatever the recipient: RCPT TO:<_smtpq@here> is an unknown user unless
 * an alias sends it elsewhere.  "nobody" runs the files and programs of
 * root's alias tables and by convention owns no files, so it gets no
 * mailbox either (its files and programs are still run as it).  Other
 * system accounts are users like any other (smtpd.conf(5)).
 *
 * Compared by uid, not by name: a second passwd entry sharing a uid is
 * the same account.  Resolved once per process (the parent does it
 * before it forks, so every child starts with the answer): the daemon
 * refuses to start without its users, and their ids do not change while
 * it runs.
 */
#include <sys/types.h>

#include <pwd.h>
#include <stddef.h>

#include "privsep.h"
#include "sysusers.h"

#define SYSUSERS_NOBODY	"nobody"

static int	resolved;
static int	has_smtpd, has_smtpq, has_nobody;
static uid_t	uid_smtpd, uid_smtpq, uid_nobody;

static int
resolve(const char *name, uid_t *uid)
{
	struct passwd	*pw;

	if ((pw = getpwnam(name)) == NULL)
		return 0;
	*uid = pw->pw_uid;
	return 1;
}

void
sysusers_init(void)
{
	if (resolved)
		return;
	has_smtpd = resolve(SMTPD_USER, &uid_smtpd);
	has_smtpq = resolve(SMTPD_QUEUE_USER, &uid_smtpq);
	has_nobody = resolve(SYSUSERS_NOBODY, &uid_nobody);
	resolved = 1;
}

int
sysusers_is_daemon(uid_t uid)
{
	sysusers_init();
	return (has_smtpd && uid == uid_smtpd) ||
	    (has_smtpq && uid == uid_smtpq);
}

int
sysusers_no_mailbox(uid_t uid)
{
	return sysusers_is_daemon(uid) || (has_nobody && uid == uid_nobody);
}
