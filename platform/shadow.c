/*
 * shadow.c -- a system account's password hash, where the system keeps
 * it away from the world.
 *
 * Linux keeps hashes in /etc/shadow, read with getspnam(3), with the
 * account's expiry date in days.  The BSDs keep them in the master
 * password database (/etc/spwd.db, root only), which getpwnam(3) reads
 * when called by root: pw_passwd is then the hash, and pw_expire the
 * expiry time in seconds.  Only auth/auth_system.c uses this.
 */
#include <sys/types.h>

#include <errno.h>
#include <pwd.h>
#include <stddef.h>
#include <time.h>
#if defined(__linux__)
#include <shadow.h>
#endif

#include "platform.h"

int
platform_shadow(const struct passwd *pw, const char **hash, int *expired)
{
#if defined(__linux__)
	struct spwd	*sp;
	long		 today;

	*hash = pw->pw_passwd;
	*expired = 0;
	errno = 0;
	if ((sp = getspnam(pw->pw_name)) == NULL)
		return errno == EACCES || errno == EPERM ? -1 : 0;
	*hash = sp->sp_pwdp;
	today = (long)(time(NULL) / (24 * 60 * 60));
	*expired = sp->sp_expire > 0 && today >= sp->sp_expire;
	return 0;
#else
	*hash = pw->pw_passwd;
	*expired = pw->pw_expire > 0 && time(NULL) >= pw->pw_expire;
	return 0;
#endif
}

void
platform_shadow_warmup(void)
{
#if defined(__linux__)
	(void)getspnam("posthaste-nss-warmup");
#endif
}
