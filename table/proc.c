/*
 * proc.c -- the proc: shared-table backend (backend.h).  A placeholder
 * until the backend lands: its tables fail every configuration check.
 */
#include <stdio.h>

#include "backend.h"

static void *
proc_open(const struct table *t, char *err, size_t errlen)
{
	(void)t;
	snprintf(err, errlen, "the proc: backend is not built yet");
	return NULL;
}

static int
proc_serves(void *h, enum table_service s)
{
	(void)h;
	(void)s;
	return 0;
}

static void
proc_query(void *h, struct table_query *q)
{
	(void)h;
	table_query_done(q, TABLE_ERROR, NULL);
}

static void
proc_close(void *h)
{
	(void)h;
}

const struct table_driver table_driver_proc = {
	.scheme = "proc",
	.has_file = 0,
	.open = proc_open,
	.serves = proc_serves,
	.query = proc_query,
	.close = proc_close,
};
