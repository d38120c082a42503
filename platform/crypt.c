/*
 * crypt.c -- crypt(3) settings and hashing.
 *
 * A "setting" is the method and a fresh random salt ("$6$<16 chars>$"),
 * what crypt(3) is handed with a password to make a new hash; checking
 * a password hands it the stored hash instead (common/pwcheck.c).
 *
 * Linux (libxcrypt): crypt_gensalt_rn(3) and crypt_r(3).  Its default
 * method (prefix NULL) is yescrypt on Debian.
 * FreeBSD: crypt_r(3) (12.0) knows SHA-512-crypt ("$6$"), which is
 * also what we choose when asked for the default; the salt is 16
 * characters of crypt's alphabet from arc4random_uniform(3).
 * OpenBSD: crypt(3) does bcrypt only.  Its one interface that makes a
 * salt is crypt_newhash(3), which hashes a password with it: we hash a
 * throwaway one and keep the setting part of the result ("$2b$", the
 * rounds, "$", 22 salt characters: 29 characters).
 */
#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* glibc: the extensions this file wraps */
#endif
#endif

#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <crypt.h>
#endif
#if defined(__OpenBSD__)
#include <pwd.h>
#endif

#include "platform.h"

#if defined(__linux__)

_Static_assert(PLATFORM_CRYPT_SETTING_MAX >= CRYPT_GENSALT_OUTPUT_SIZE,
    "PLATFORM_CRYPT_SETTING_MAX too small for libxcrypt");

int
platform_crypt_setting(const char *prefix, char *buf, size_t len)
{
	if (crypt_gensalt_rn(prefix, 0, NULL, 0, buf, (int)len) == NULL)
		return -1;
	return 0;
}

#elif defined(__OpenBSD__)

/* "$2b$" NN "$" and 22 characters of salt */
#define BCRYPT_SETTING_LEN	29

int
platform_crypt_setting(const char *prefix, char *buf, size_t len)
{
	char	hash[_PASSWORD_LEN], pass[16];

	(void)prefix;	/* bcrypt is the only method */
	if (len <= BCRYPT_SETTING_LEN) {
		errno = ERANGE;
		return -1;
	}
	arc4random_buf(pass, sizeof(pass) - 1);
	pass[sizeof(pass) - 1] = '\0';
	if (crypt_newhash(pass, "bcrypt,a", hash, sizeof(hash)) == -1)
		return -1;
	explicit_bzero(pass, sizeof(pass));
	if (strlen(hash) <= BCRYPT_SETTING_LEN) {
		errno = EINVAL;
		return -1;
	}
	memcpy(buf, hash, BCRYPT_SETTING_LEN);
	buf[BCRYPT_SETTING_LEN] = '\0';
	explicit_bzero(hash, sizeof(hash));
	return 0;
}

const char *
platform_crypt(const char *pass, const char *setting)
{
	return crypt(pass, setting);
}

void
platform_crypt_wipe(void)
{
	/* crypt(3)'s own static result; nothing of ours to clear */
}

#else	/* FreeBSD */

#define SHA512_SALT_LEN	16

int
platform_crypt_setting(const char *prefix, char *buf, size_t len)
{
	static const char	alphabet[] = "./0123456789"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	size_t			i;

	if (prefix != NULL && strcmp(prefix, "$6$") != 0) {
		errno = EINVAL;
		return -1;
	}
	if (len < 3 + SHA512_SALT_LEN + 2) {
		errno = ERANGE;
		return -1;
	}
	memcpy(buf, "$6$", 3);
	for (i = 0; i < SHA512_SALT_LEN; i++)
		buf[3 + i] = alphabet[arc4random_uniform(sizeof(alphabet) - 1)];
	buf[3 + SHA512_SALT_LEN] = '$';
	buf[3 + SHA512_SALT_LEN + 1] = '\0';
	return 0;
}

#endif

#if !defined(__OpenBSD__)
/*
 * Linux (libxcrypt) and FreeBSD: crypt_r(3) into our own crypt_data,
 * large (32 KB and more): static, and wiped after each use.
 */
static struct crypt_data	cdata;

const char *
platform_crypt(const char *pass, const char *setting)
{
	return crypt_r(pass, setting, &cdata);
}

void
platform_crypt_wipe(void)
{
	explicit_bzero(&cdata, sizeof(cdata));
}
#endif
