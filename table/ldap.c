/*
 * ldap.c -- the ldap: shared-table backend (backend.h).  A placeholder
 * until the backend lands: its tables fail every configuration check.
 */
#include <stdio.h>

#include "backend.h"

static void *
ldap_open(const struct table *t, char *err, size_t errlen)
{
	(void)t;
	snprintf(err, errlen, "the ldap: backend is not built yet");
	return NULL;
}

static int
ldap_serves(void *h, enum table_service s)
{
	(void)h;
	(void)s;
	return 0;
}

static void
ldap_query(void *h, struct table_query *q)
{
	(void)h;
	table_query_done(q, TABLE_ERROR, NULL);
}

static void
ldap_close(void *h)
{
	(void)h;
}

const struct table_driver table_driver_ldap = {
	.scheme = "ldap",
	.has_file = 1,
	.open = ldap_open,
	.serves = ldap_serves,
	.query = ldap_query,
	.close = ldap_close,
};
