/*
 * test_destmac.c -- lookup's seal on destinations (common/destmac.c):
 * the same fields under the same key give the same tag; a change to any
 * field that decides where or how mail is delivered, or another key,
 * and the tag no longer verifies; the fields lookup does not decide
 * (reqid, the tag itself) are not covered; field boundaries count,
 * so bytes moved from one field to the next make another tag; and the
 * queue's check of a worker's envelope, where the sender is covered only
 * if lookup chose it.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "destmac.h"
#include "proto.h"

static const uint8_t	key[DESTMAC_KEY_LEN] =
    "0123456789abcdef0123456789abcde";

static void
sample(struct lka_dest *d)
{
	memset(d, 0, sizeof(*d));
	d->reqid = 7;
	d->dest_type = DEST_PROGRAM;
	snprintf(d->dest.user, sizeof(d->dest.user), "list");
	snprintf(d->dest.domain, sizeof(d->dest.domain), "b.example");
	snprintf(d->action, sizeof(d->action), "local");
	snprintf(d->user, sizeof(d->user), "alice");
	snprintf(d->path, sizeof(d->path), "|/usr/bin/procmail -a list");
	snprintf(d->sender_override.user, sizeof(d->sender_override.user),
	    "owner-list");
	snprintf(d->sender_override.domain,
	    sizeof(d->sender_override.domain), "b.example");
}

static void
test_same_fields_same_tag(void **state)
{
	struct lka_dest	a, b;
	uint8_t		ta[DESTMAC_LEN], tb[DESTMAC_LEN];

	(void)state;
	sample(&a);
	sample(&b);
	destmac_compute(key, &a, ta);
	destmac_compute(key, &b, tb);
	assert_memory_equal(ta, tb, DESTMAC_LEN);
	assert_int_equal(destmac_verify(key, &b, ta), 0);
}

static void
test_uncovered_fields(void **state)
{
	struct lka_dest	d;
	uint8_t		tag[DESTMAC_LEN];

	(void)state;
	sample(&d);
	destmac_compute(key, &d, tag);
	/* the request id is the asker's, and the tag is not over itself */
	d.reqid = 99;
	memset(d.mac, 0xa5, sizeof(d.mac));
	assert_int_equal(destmac_verify(key, &d, tag), 0);
	/* past a string's NUL nothing is read */
	d.path[sizeof(d.path) - 1] = 'x';
	d.path[sizeof(d.path) - 2] = '\0';
	assert_int_equal(destmac_verify(key, &d, tag), 0);
}

/* each covered field, changed by one byte or one value */
static void
test_each_field_covered(void **state)
{
	struct lka_dest	d;
	uint8_t		tag[DESTMAC_LEN];
	int		i;

	(void)state;
	sample(&d);
	destmac_compute(key, &d, tag);
	for (i = 0; i < 9; i++) {
		sample(&d);
		switch (i) {
		case 0:
			d.dest_type = DEST_FILE;
			break;
		case 1:
			d.dest.user[0] = 'L';
			break;
		case 2:
			d.dest.domain[0] = 'c';
			break;
		case 3:
			d.action[0] = 'L';
			break;
		case 4:
			snprintf(d.user, sizeof(d.user), "bob");
			break;
		case 5:
			snprintf(d.path, sizeof(d.path), "|/bin/sh -c evil");
			break;
		case 6:
			d.sender_override.user[0] = 'O';
			break;
		case 7:
			d.sender_override.domain[0] = 'c';
			break;
		case 8:
			/* no override: keep MAIL FROM */
			memset(&d.sender_override, 0,
			    sizeof(d.sender_override));
			break;
		}
		if (destmac_verify(key, &d, tag) != -1)
			fail_msg("change %d still verifies", i);
	}
}

static void
test_field_boundaries(void **state)
{
	struct lka_dest	a, b;
	uint8_t		tag[DESTMAC_LEN];

	(void)state;
	/* "alice" + "|x" against "alice|" + "x": same bytes in a row */
	sample(&a);
	snprintf(a.user, sizeof(a.user), "alice");
	snprintf(a.path, sizeof(a.path), "|x");
	sample(&b);
	snprintf(b.user, sizeof(b.user), "alice|");
	snprintf(b.path, sizeof(b.path), "x");
	destmac_compute(key, &a, tag);
	assert_int_equal(destmac_verify(key, &b, tag), -1);
	/* an empty field is still a field */
	sample(&a);
	a.dest.domain[0] = '\0';
	snprintf(a.action, sizeof(a.action), "b.example");
	sample(&b);
	snprintf(b.dest.domain, sizeof(b.dest.domain), "b.example");
	b.action[0] = '\0';
	destmac_compute(key, &a, tag);
	assert_int_equal(destmac_verify(key, &b, tag), -1);
}

static void
test_other_key(void **state)
{
	struct lka_dest	d;
	uint8_t		tag[DESTMAC_LEN], other[DESTMAC_KEY_LEN];

	(void)state;
	sample(&d);
	destmac_compute(key, &d, tag);
	memcpy(other, key, sizeof(other));
	other[DESTMAC_KEY_LEN - 1] ^= 1;
	assert_int_equal(destmac_verify(other, &d, tag), -1);
	/* and a tag with one bit off */
	tag[DESTMAC_LEN - 1] ^= 0x80;
	assert_int_equal(destmac_verify(key, &d, tag), -1);
}

/* an envelope as the worker builds it from a sealed destination */
static void
envelope_from(struct envelope *e, const struct lka_dest *d,
    const char *mailfrom)
{
	memset(e, 0, sizeof(*e));
	if (d->sender_override.user[0] || d->sender_override.domain[0])
		e->sender = d->sender_override;
	else
		snprintf(e->sender.user, sizeof(e->sender.user), "%s",
		    mailfrom);
	snprintf(e->rcpt.user, sizeof(e->rcpt.user), "as-given");
	e->dest = d->dest;
	e->dest_type = d->dest_type;
	memcpy(e->action, d->action, sizeof(e->action));
	memcpy(e->user, d->user, sizeof(e->user));
	memcpy(e->path, d->path, sizeof(e->path));
	memcpy(e->dest_mac, d->mac, sizeof(e->dest_mac));
}

static void
test_envelope(void **state)
{
	struct lka_dest	d;
	struct envelope	e;

	(void)state;
	/* lookup chose no sender: the client's MAIL FROM, any, passes */
	sample(&d);
	memset(&d.sender_override, 0, sizeof(d.sender_override));
	destmac_compute(key, &d, d.mac);
	envelope_from(&e, &d, "anyone");
	assert_int_equal(destmac_verify_envelope(key, &e), 0);
	snprintf(e.sender.user, sizeof(e.sender.user), "someone-else");
	snprintf(e.rcpt.user, sizeof(e.rcpt.user), "rcpt-uncovered");
	snprintf(e.orcpt, sizeof(e.orcpt), "rfc822;x@y");
	assert_int_equal(destmac_verify_envelope(key, &e), 0);
	/* what a worker taken over would like the queue to run */
	snprintf(e.path, sizeof(e.path), "|/bin/sh -c evil");
	assert_int_equal(destmac_verify_envelope(key, &e), -1);
	envelope_from(&e, &d, "anyone");
	e.dest_type = DEST_FILE;
	assert_int_equal(destmac_verify_envelope(key, &e), -1);
	envelope_from(&e, &d, "anyone");
	snprintf(e.user, sizeof(e.user), "root");
	assert_int_equal(destmac_verify_envelope(key, &e), -1);
	envelope_from(&e, &d, "anyone");
	memset(e.dest_mac, 0, sizeof(e.dest_mac));
	assert_int_equal(destmac_verify_envelope(key, &e), -1);

	/* lookup chose owner-list: that sender and no other */
	sample(&d);
	destmac_compute(key, &d, d.mac);
	envelope_from(&e, &d, "anyone");
	assert_int_equal(destmac_verify_envelope(key, &e), 0);
	snprintf(e.sender.user, sizeof(e.sender.user), "anyone");
	assert_int_equal(destmac_verify_envelope(key, &e), -1);
	memset(&e.sender, 0, sizeof(e.sender));
	assert_int_equal(destmac_verify_envelope(key, &e), -1);
}

static void
test_process_key(void **state)
{
	struct lka_dest	d;
	uint8_t		tag[DESTMAC_LEN], zero[DESTMAC_KEY_LEN];
	const uint8_t	*k;

	(void)state;
	assert_null(destmac_key());
	destmac_key_generate();
	assert_non_null(k = destmac_key());
	memset(zero, 0, sizeof(zero));
	assert_memory_not_equal(k, zero, DESTMAC_KEY_LEN);
	sample(&d);
	destmac_compute(k, &d, tag);
	assert_int_equal(destmac_verify(k, &d, tag), 0);
	destmac_key_forget();
	assert_null(destmac_key());
	/* wiped, not just disowned */
	assert_memory_equal(k, zero, DESTMAC_KEY_LEN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_fields_same_tag),
		cmocka_unit_test(test_uncovered_fields),
		cmocka_unit_test(test_each_field_covered),
		cmocka_unit_test(test_field_boundaries),
		cmocka_unit_test(test_other_key),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_process_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
