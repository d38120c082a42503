/*
 * pwcache.c -- the password database, remembered for a second.
 *
 * Every recipient costs one or two getpwnam() calls, and each one opens,
 * reads and closes /etc/passwd (and stats nsswitch.conf).  Within a burst
 * of mail the same few users come back again and again: answers, "no such
 * user" included, are kept for PWCACHE_TTL seconds, so a user added or
 * removed is seen within that time.  A failed lookup (errno set) is never
 * kept.
 */
#include <sys/types.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pwcache.h"

#define PWCACHE_SLOTS	64
#define PWCACHE_TTL	1

struct pw_slot {
	char	name[64];
	time_t	at;
	int	found;
	uid_t	uid;
	gid_t	gid;
	char	dir[256];
};

static struct pw_slot	slots[PWCACHE_SLOTS];
static struct passwd	answer;
static char		answer_name[64], answer_dir[256];
static char		empty[] = "";

static unsigned int
slot_of(const char *name)
{
	unsigned int	h = 5381;

	for (; *name; name++)
		h = h * 33 + (unsigned char)*name;
	return h % PWCACHE_SLOTS;
}

static struct passwd *
fill(const struct pw_slot *sl)
{
	snprintf(answer_name, sizeof(answer_name), "%s", sl->name);
	snprintf(answer_dir, sizeof(answer_dir), "%s", sl->dir);
	memset(&answer, 0, sizeof(answer));
	answer.pw_name = answer_name;
	answer.pw_passwd = empty;
	answer.pw_uid = sl->uid;
	answer.pw_gid = sl->gid;
	answer.pw_gecos = empty;
	answer.pw_dir = answer_dir;
	answer.pw_shell = empty;
	return &answer;
}

struct passwd *
pwcache_getpwnam(const char *name)
{
	struct pw_slot	*sl = &slots[slot_of(name)];
	struct passwd	*pw;
	time_t		 now = time(NULL);

	if (strlen(name) >= sizeof(sl->name) ||
	    strcmp(sl->name, name) != 0 || now - sl->at >= PWCACHE_TTL) {
		errno = 0;
		pw = getpwnam(name);
		if (pw == NULL && errno != 0 && errno != ENOENT &&
		    errno != ESRCH)
			return NULL;	/* temporary: not remembered */
		if (strlen(name) >= sizeof(sl->name) || (pw != NULL &&
		    (strlen(pw->pw_name) >= sizeof(sl->name) ||
		    strlen(pw->pw_dir) >= sizeof(sl->dir)))) {
			errno = 0;
			return pw;	/* too long to keep */
		}
		snprintf(sl->name, sizeof(sl->name), "%s", name);
		sl->at = now;
		sl->found = pw != NULL;
		if (pw != NULL) {
			sl->uid = pw->pw_uid;
			sl->gid = pw->pw_gid;
			snprintf(sl->dir, sizeof(sl->dir), "%s", pw->pw_dir);
		}
	}
	errno = 0;
	if (!sl->found)
		return NULL;
	return fill(sl);
}
