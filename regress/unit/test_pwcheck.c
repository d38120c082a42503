/*
 * test_pwcheck.c -- the one password policy (common/pwcheck.c) that
 * credentials tables and the system-account helper share: each accepted
 * crypt(3) method matches its password and nothing else; DES, MD5-crypt,
 * locked ("!", "*") and empty hashes never match, whatever the password;
 * the dummy check for unknown users runs with the system's default
 * method and matches nothing.
 */

#include <crypt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pwcheck.h"

static const char	*password = "correct horse";

/* a fresh hash of password with the method prefix, or NULL */
static const char *
hash_with(const char *prefix, char *out, size_t len)
{
	static struct crypt_data	cd;
	char				setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char			*h;

	if (crypt_gensalt_rn(prefix, 0, NULL, 0, setting,
	    sizeof(setting)) == NULL)
		return NULL;
	if ((h = crypt_r(password, setting, &cd)) == NULL || h[0] == '*')
		return NULL;
	snprintf(out, len, "%s", h);
	return out;
}

static void
test_modern_methods(void **state)
{
	static const char *const prefixes[] = { "$6$", "$5$", "$2b$", "$y$" };
	char	buf[512];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (hash_with(prefixes[i], buf, sizeof(buf)) == NULL)
			continue;	/* a libxcrypt without it */
		assert_int_equal(pwcheck_crypt(buf, password), PWCHECK_MATCH);
		assert_int_equal(pwcheck_crypt(buf, "correct horsE"),
		    PWCHECK_MISMATCH);
		assert_int_equal(pwcheck_crypt(buf, ""), PWCHECK_MISMATCH);
	}
	/* the SHA-512 one always exists */
	assert_non_null(hash_with("$6$", buf, sizeof(buf)));
}

static void
test_weak_and_locked_never_match(void **state)
{
	char	buf[512], locked[520];

	(void)state;
	/* MD5-crypt and DES: refused even with the right password */
	if (hash_with("$1$", buf, sizeof(buf)) != NULL)
		assert_int_equal(pwcheck_crypt(buf, password),
		    PWCHECK_UNSUPPORTED);
	if (hash_with("ab", buf, sizeof(buf)) != NULL)
		assert_int_equal(pwcheck_crypt(buf, password),
		    PWCHECK_UNSUPPORTED);
	/* usermod -L puts "!" before a good hash */
	assert_non_null(hash_with("$6$", buf, sizeof(buf)));
	snprintf(locked, sizeof(locked), "!%s", buf);
	assert_int_not_equal(pwcheck_crypt(locked, password), PWCHECK_MATCH);
	assert_int_not_equal(pwcheck_crypt("*", password), PWCHECK_MATCH);
	assert_int_not_equal(pwcheck_crypt("!", ""), PWCHECK_MATCH);
	assert_int_not_equal(pwcheck_crypt("", ""), PWCHECK_MATCH);
	assert_int_not_equal(pwcheck_crypt("", password), PWCHECK_MATCH);
}

static void
test_equal(void **state)
{
	(void)state;
	assert_true(pwcheck_equal("abc", "abc"));
	assert_false(pwcheck_equal("abc", "abd"));
	assert_false(pwcheck_equal("abc", "abcd"));
	assert_true(pwcheck_equal("", ""));
}

static void
test_dummy(void **state)
{
	(void)state;
	/* must not crash or match anything, before and after init */
	pwcheck_dummy(password);
	pwcheck_dummy_init();
	pwcheck_dummy(password);
	pwcheck_dummy("");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_modern_methods),
		cmocka_unit_test(test_weak_and_locked_never_match),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_dummy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
