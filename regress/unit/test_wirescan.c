/*
 * test_wirescan.c -- common/wirescan.c: the size on the wire and the
 * 8-bit flags of a spooled message, whatever pieces it is fed in.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wirescan.h"

/* the definition, one byte at a time: CRLF line ends, leading dots doubled */
static uint64_t
reference_size(const char *m, size_t n)
{
	uint64_t	size = 0;
	size_t		i;
	int		bol = 1;

	for (i = 0; i < n; i++) {
		if (bol && m[i] == '.')
			size++;
		size += m[i] == '\n' ? 2 : 1;
		bol = m[i] == '\n';
	}
	if (n > 0 && m[n - 1] != '\n')
		size += 2;
	return size;
}

static void
check_all_splits(const char *m, int hdr8, int body8)
{
	struct wirescan	w;
	size_t		n = strlen(m), a, b;

	for (a = 0; a <= n; a++)
		for (b = a; b <= n; b++) {
			wirescan_init(&w);
			wirescan_add(&w, m, a);
			wirescan_add(&w, m + a, b - a);
			wirescan_add(&w, m + b, n - b);
			if (wirescan_size(&w) != reference_size(m, n) ||
			    w.header8bit != hdr8 || w.body8bit != body8)
				fail_msg("split %zu/%zu: size %llu (want %llu), "
				    "8bit %d/%d", a, b,
				    (unsigned long long)wirescan_size(&w),
				    (unsigned long long)reference_size(m, n),
				    w.header8bit, w.body8bit);
		}
}

static void
test_splits(void **state)
{
	(void)state;
	check_all_splits("Subject: x\n\n.dot\n..two\nplain\n.\n", 0, 0);
	check_all_splits("Subject: x\n\nno final newline", 0, 0);
	check_all_splits("Subject: caf\xc3\xa9\n\nbody\n", 1, 1);
	check_all_splits("Subject: x\n\nbody caf\xc3\xa9\n", 0, 1);
	/* an empty first line: no header at all */
	check_all_splits("\n\xc3\xa9\n", 0, 1);
	check_all_splits("", 0, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_splits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
