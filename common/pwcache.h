/*
 * pwcache.h -- getpwnam() answers remembered for a second.
 */
#ifndef POSTHASTE_PWCACHE_H
#define POSTHASTE_PWCACHE_H

struct passwd;

/*
 * Name, uid, gid and home only (the other fields are empty); the answer
 * lives until the next call.
 */
struct passwd	*pwcache_getpwnam(const char *);

#endif
