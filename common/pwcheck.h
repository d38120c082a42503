/*
 * pwcheck.h -- compare a password with a stored crypt(3) hash.
 *
 * Shared by the two places that check passwords: lookup (credentials
 * tables) and the system-account helper (auth/auth_system.c).  Neither
 * the smtp workers nor any other network-facing process links a caller.
 */
#ifndef POSTHASTE_PWCHECK_H
#define POSTHASTE_PWCHECK_H

enum pwcheck_result {
	PWCHECK_MISMATCH,
	PWCHECK_MATCH,
	PWCHECK_UNSUPPORTED,	/* a weak or unknown hash format */
};

/*
 * crypt(3) the password with the stored hash as setting and compare in
 * constant time.  Only modern, salted and slow formats are accepted
 * (SHA-crypt, bcrypt, yescrypt, scrypt); DES and MD5-crypt never match.
 */
enum pwcheck_result	pwcheck_crypt(const char *hash, const char *pass);
/* spend about the time a real check would: for an unknown user */
void			pwcheck_dummy(const char *pass);
/*
 * Use the system's preferred hash method for pwcheck_dummy() (so an
 * unknown user costs what a real one does); call before a sandbox, it
 * may read random bytes.  Without it SHA-512-crypt is used.
 */
void			pwcheck_dummy_init(void);
/* constant-time comparison of two strings */
int			pwcheck_equal(const char *, const char *);

#endif
