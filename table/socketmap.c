/*
 * socketmap.c -- the socketmap: shared-table backend (backend.h).  A placeholder
 * until the backend lands: its tables fail every configuration check.
 */
#include <stdio.h>

#include "backend.h"

static void *
socketmap_open(const struct table *t, char *err, size_t errlen)
{
	(void)t;
	snprintf(err, errlen, "the socketmap: backend is not built yet");
	return NULL;
}

static int
socketmap_serves(void *h, enum table_service s)
{
	(void)h;
	(void)s;
	return 0;
}

static void
socketmap_query(void *h, struct table_query *q)
{
	(void)h;
	table_query_done(q, TABLE_ERROR, NULL);
}

static void
socketmap_close(void *h)
{
	(void)h;
}

const struct table_driver table_driver_socketmap = {
	.scheme = "socketmap",
	.has_file = 0,
	.open = socketmap_open,
	.serves = socketmap_serves,
	.query = socketmap_query,
	.close = socketmap_close,
};
