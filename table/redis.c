/*
 * redis.c -- the redis: shared-table backend (backend.h).  A placeholder
 * until the backend lands: its tables fail every configuration check.
 */
#include <stdio.h>

#include "backend.h"

static void *
redis_open(const struct table *t, char *err, size_t errlen)
{
	(void)t;
	snprintf(err, errlen, "the redis: backend is not built yet");
	return NULL;
}

static int
redis_serves(void *h, enum table_service s)
{
	(void)h;
	(void)s;
	return 0;
}

static void
redis_query(void *h, struct table_query *q)
{
	(void)h;
	table_query_done(q, TABLE_ERROR, NULL);
}

static void
redis_close(void *h)
{
	(void)h;
}

const struct table_driver table_driver_redis = {
	.scheme = "redis",
	.has_file = 1,
	.open = redis_open,
	.serves = redis_serves,
	.query = redis_query,
	.close = redis_close,
};
