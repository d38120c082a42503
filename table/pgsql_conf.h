/*
 * pgsql_conf.h -- the pgsql: table's configuration file and the
 * conversion of a query's rows into a table value, apart from libpq's
 * connections (pgsql.c) so that both can be tested without a server.
 */
#ifndef POSTHASTE_TABLE_PGSQL_CONF_H
#define POSTHASTE_TABLE_PGSQL_CONF_H

#include <stddef.h>

#include "table.h"

#define PGSQL_POOL_DEFAULT	2
#define PGSQL_POOL_MAX		16
#define PGSQL_TIMEOUT_DEFAULT	5	/* seconds */
#define PGSQL_TIMEOUT_MAX	15	/* remote.c gives up then */
#define PGSQL_PARAMS_MAX	40	/* conninfo keywords */
#define PGSQL_LINE_MAX		16384	/* bytes, a query included */

struct pgsql_conf {
	/* the conninfo string's keywords and values, NULL-terminated,
	 * with our defaults added (gssencmode=disable) */
	char	*keywords[PGSQL_PARAMS_MAX + 1];
	char	*values[PGSQL_PARAMS_MAX + 1];
	char	*query[TS_COUNT];	/* NULL: not served */
	int	 pool;
	int	 timeout;		/* seconds */
};

/*
 * Parse the file's text (len bytes, NUL-terminated; file names it in
 * errors).  0, or -1 with err "FILE:LINE: why" and nothing to free.
 */
int	pgsql_conf_parse(struct pgsql_conf *, const char *text, size_t len,
	    const char *file, char *err, size_t errlen);
/* wipe (the password) and free */
void	pgsql_conf_free(struct pgsql_conf *);

/*
 * The value for a service from a query's rows: cells[row * ncols + col],
 * NULL for SQL NULL.  TABLE_FOUND with *value malloc'd, TABLE_NOTFOUND,
 * or TABLE_ERROR with err saying why (the rows do not fit the service).
 */
int	pgsql_rows_value(enum table_service, const char *const *cells,
	    int nrows, int ncols, char **value, char *err, size_t errlen);

#endif
