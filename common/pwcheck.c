/*
 * pwcheck.c -- compare a password with a stored crypt(3) hash.
 *
 * One policy for every password Posthaste checks, whether it comes from
 * a credentials table (lookup) or from /etc/shadow (the system-account
 * helper): the stored hash is the crypt(3) setting, the result is
 * compared in constant time, and only formats that are salted and slow
 * are accepted.  An attacker who reads a DES or MD5-crypt hash can brute
 * force it in hours; accepting one would make its weakness ours.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "platform.h"
#include "pwcheck.h"

/* a SHA-512-crypt setting: as much work for an unknown user */
static char	dummy_setting[PLATFORM_CRYPT_SETTING_MAX] =
    "$6$posthaste.dummy$";

static int
hash_acceptable(const char *h)
{
	static const char *const ok[] = {
		"$6$", "$5$", "$2b$", "$2a$", "$2y$", "$y$", "$gy$", "$7$",
	};
	size_t	i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncmp(h, ok[i], strlen(ok[i])) == 0)
			return 1;
	return 0;
}

int
pwcheck_equal(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b);

	if (la != lb)
		return 0;
	return CRYPTO_memcmp(a, b, la) == 0;
}

enum pwcheck_result
pwcheck_crypt(const char *hash, const char *pass)
{
	const char		*h;
	enum pwcheck_result	 rc = PWCHECK_MISMATCH;

	if (!hash_acceptable(hash))
		return PWCHECK_UNSUPPORTED;
	if ((h = platform_crypt(pass, hash)) != NULL && h[0] != '*' &&
	    pwcheck_equal(h, hash))
		rc = PWCHECK_MATCH;
	/* the result (and libxcrypt's work area) are wiped after each use */
	platform_crypt_wipe();
	return rc;
}

void
pwcheck_dummy(const char *pass)
{
	(void)pwcheck_crypt(dummy_setting, pass);
}

void
pwcheck_dummy_init(void)
{
	char	setting[PLATFORM_CRYPT_SETTING_MAX];

	/* NULL prefix: the system's default (yescrypt on Debian) */
	if (platform_crypt_setting(NULL, setting, sizeof(setting)) == -1 ||
	    !hash_acceptable(setting))
		return;
	memcpy(dummy_setting, setting, sizeof(dummy_setting));
}
