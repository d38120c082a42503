/*
 * backend.h -- what a shared-table backend (PostgreSQL, LDAP, Redis,
 * socketmap, proc) provides to table/remote.c, which caches its answers
 * and parks the requests that wait for them.
 *
 * A backend runs in the lookup process, on lookup's libevent loop, and
 * never blocks it: query() starts a question and returns; the answer
 * comes later through table_query_done(), exactly once per query (it
 * may also come from within query() itself, e.g. a socket that is
 * already gone).  A backend keeps its own pool of connections, its
 * query timeout, and reconnects with a back-off; a server that is down
 * is TABLE_ERROR (a temporary failure for the client), never
 * TABLE_NOTFOUND.
 *
 * Keys reach the backend as they are (lower-cased, printable, at most
 * TABLE_KEY_MAX bytes) and must be passed to the server as a parameter
 * (a bound query parameter, an escaped LDAP filter value, a Redis
 * argument, a netstring): never pasted into a command.  A value is
 * text without NUL; table.c validates it like any table's value.
 */
#ifndef POSTHASTE_TABLE_BACKEND_H
#define POSTHASTE_TABLE_BACKEND_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "table.h"

struct event_base;

#define TABLE_KEY_MAX	512	/* longest key asked (an address) */
#define TABLE_VALUE_MAX	65536	/* longest answer accepted */

struct table_query {
	const struct table	*table;
	enum table_service	 service;
	const char		*key;	/* valid until the answer */
	void			*priv;	/* remote.c's */
};

/*
 * The answer: TABLE_FOUND with the value (a list service may answer
 * "" or NULL: membership only), TABLE_NOTFOUND, or TABLE_ERROR (logged
 * by the backend, with the table's name).  The query is freed here.
 */
void	table_query_done(struct table_query *, int status, const char *value);

/*
 * A server's outages, for a driver that keeps no timer of its own: each
 * logged once when it starts and once when it ends, the server tried
 * again after a back-off (1 s, doubling to 30 s) during which questions
 * are answered TABLE_ERROR at once.
 */
struct table_outage {
	int	down;		/* logged */
	int	backoff;	/* seconds, 0: none */
	time_t	retry_at;	/* monotonic, 0: none */
};
/* a failure: one back-off step per outage, not per connection */
void	table_outage_fail(struct table_outage *, const struct table *,
	    const char *server, const char *why);
/* an answer: the outage, if any, is over */
void	table_outage_over(struct table_outage *, const struct table *,
	    const char *server);
/* still backing off: do not try the server yet */
int	table_outage_waiting(const struct table_outage *);

/* "query_alias" ...: the service a driver's keyword names, or TS_COUNT */
enum table_service table_query_keyword(const char *);

/* a driver's configuration error: "FILE:LINE: why" into err; -1 */
int	table_conf_error(char *err, size_t errlen, const char *file, int line,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* table.c's way in (remote.c): see table_stall_begin() in table.h */
int	table_remote_get(struct table *, enum table_service, const char *key,
	    char **val);

struct table_driver {
	const char	*scheme;	/* "pgsql" */
	/* does the table line name a configuration file (read for it) */
	int		 has_file;
	/*
	 * Parse the configuration (t->conf_text, or t->path for socketmap
	 * and proc): a handle, or NULL with err set to "FILE:LINE: why".
	 * Opens no connection: the parent calls it to check a
	 * configuration (smtpd -n, start, reload), then close().
	 */
	void		*(*open)(const struct table *, char *err, size_t errlen);
	/*
	 * lookup, before it enters its sandbox: what needs the file
	 * system, fork or exec (proc: starts its program).  May be NULL.
	 * -1 is logged; the table then answers TABLE_ERROR.
	 */
	int		 (*start)(void *, struct event_base *);
	/* does the configuration answer this service (pgsql: a query) */
	int		 (*serves)(void *, enum table_service);
	void		 (*query)(void *, struct table_query *);
	void		 (*close)(void *);
};

extern const struct table_driver	table_driver_pgsql;
extern const struct table_driver	table_driver_ldap;
extern const struct table_driver	table_driver_redis;
extern const struct table_driver	table_driver_socketmap;
extern const struct table_driver	table_driver_proc;

#endif
