/*
 * pgsql.c -- the pgsql: shared-table backend (backend.h).  A placeholder
 * until the backend lands: its tables fail every configuration check.
 */
#include <stdio.h>

#include "backend.h"

static void *
pgsql_open(const struct table *t, char *err, size_t errlen)
{
	(void)t;
	snprintf(err, errlen, "the pgsql: backend is not built yet");
	return NULL;
}

static int
pgsql_serves(void *h, enum table_service s)
{
	(void)h;
	(void)s;
	return 0;
}

static void
pgsql_query(void *h, struct table_query *q)
{
	(void)h;
	table_query_done(q, TABLE_ERROR, NULL);
}

static void
pgsql_close(void *h)
{
	(void)h;
}

const struct table_driver table_driver_pgsql = {
	.scheme = "pgsql",
	.has_file = 1,
	.open = pgsql_open,
	.serves = pgsql_serves,
	.query = pgsql_query,
	.close = pgsql_close,
};
