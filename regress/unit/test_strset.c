/*
 * test_strset.c -- common/strset.c: SipHash-2-4 against the paper's
 * vector, exact and case-insensitive membership, binary keys, and a
 * set grown to 100 000 keys (the documented max-rcpt).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "strset.h"

uint64_t	strset_siphash24(const uint8_t key[16], const void *, size_t);

static void
test_siphash_vector(void **state)
{
	uint8_t	key[16], msg[64];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(key); i++)
		key[i] = i;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = i;
	/* SipHash paper, appendix A: 15 bytes 00..0e under key 00..0f */
	assert_true(strset_siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
	/* the reference implementation's vectors.h, lengths 0 and 8 */
	assert_true(strset_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(strset_siphash24(key, msg, 8) == 0x93f5f5799a932462ULL);
}

static void
test_exact(void **state)
{
	struct strset	*set;

	(void)state;
	assert_non_null(set = strset_new(0));
	assert_int_equal(strset_has(set, "a", 1), 0);
	assert_int_equal(strset_add_str(set, "bob@example.org"), 1);
	assert_int_equal(strset_add_str(set, "bob@example.org"), 0);
	assert_int_equal(strset_add_str(set, "Bob@example.org"), 1);
	assert_int_equal(strset_add_str(set, ""), 1);
	assert_int_equal(strset_add_str(set, ""), 0);
	/* binary keys: a NUL inside, a prefix of another */
	assert_int_equal(strset_add(set, "a\0b", 3), 1);
	assert_int_equal(strset_add(set, "a\0c", 3), 1);
	assert_int_equal(strset_add(set, "a", 1), 1);
	assert_int_equal(strset_add(set, "a\0b", 3), 0);
	assert_int_equal(strset_has(set, "a\0c", 3), 1);
	assert_int_equal(strset_has(set, "a\0", 2), 0);
	assert_int_equal(strset_count(set), 6);
	strset_free(set);
	strset_free(NULL);
}

static void
test_icase(void **state)
{
	struct strset	*set;

	(void)state;
	assert_non_null(set = strset_new(STRSET_ICASE));
	assert_int_equal(strset_add_str(set, "Bob@Example.ORG"), 1);
	assert_int_equal(strset_add_str(set, "bob@example.org"), 0);
	assert_int_equal(strset_has(set, "BOB@EXAMPLE.ORG", 15), 1);
	/* only ASCII folds, as strcasecmp() in the C locale */
	assert_int_equal(strset_add_str(set, "\xc3\x89@x"), 1);
	assert_int_equal(strset_add_str(set, "\xc3\xa9@x"), 1);
	assert_int_equal(strset_add_str(set, "[@x"), 1);
	assert_int_equal(strset_add_str(set, "{@x"), 1);
	assert_int_equal(strset_count(set), 5);
	strset_free(set);
}

/* keys longer than the fold buffer, and one a prefix of the other */
static void
test_long_keys(void **state)
{
	struct strset	*set;
	char		 a[1000], b[1000];

	(void)state;
	memset(a, 'A', sizeof(a));
	memset(b, 'a', sizeof(b));
	assert_non_null(set = strset_new(STRSET_ICASE));
	assert_int_equal(strset_add(set, a, sizeof(a)), 1);
	assert_int_equal(strset_add(set, b, sizeof(b)), 0);
	assert_int_equal(strset_has(set, b, sizeof(b) - 1), 0);
	assert_int_equal(strset_add(set, b, sizeof(b) - 1), 1);
	strset_free(set);
	assert_non_null(set = strset_new(0));
	assert_int_equal(strset_add(set, a, sizeof(a)), 1);
	assert_int_equal(strset_add(set, b, sizeof(b)), 1);
	assert_int_equal(strset_has(set, a, sizeof(a)), 1);
	strset_free(set);
}

static void
test_many(void **state)
{
	struct strset	*set;
	char		 buf[64];
	int		 i;

	(void)state;
	assert_non_null(set = strset_new(STRSET_ICASE));
	for (i = 0; i < 100000; i++) {
		snprintf(buf, sizeof(buf), "user%d@example.org", i);
		assert_int_equal(strset_add_str(set, buf), 1);
	}
	for (i = 0; i < 100000; i++) {
		snprintf(buf, sizeof(buf), "USER%d@EXAMPLE.ORG", i);
		assert_int_equal(strset_add_str(set, buf), 0);
	}
	snprintf(buf, sizeof(buf), "user%d@example.org", 100000);
	assert_int_equal(strset_has(set, buf, strlen(buf)), 0);
	assert_int_equal(strset_count(set), 100000);
	strset_free(set);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_vector),
		cmocka_unit_test(test_exact),
		cmocka_unit_test(test_icase),
		cmocka_unit_test(test_long_keys),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
