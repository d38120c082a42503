/*
 * table.h -- table backends (inline, text file, Berkeley DB) and the
 * services built on them, behind one interface.  A library: the lookup
 * process answers every table query; the mta reads its relay
 * credentials once at start-up, before it drops privileges; makemap(8)
 * and the parsers share the file formats (tabfile.h, aliases.h).
 */
#ifndef POSTHASTE_TABLE_H
#define POSTHASTE_TABLE_H

#include <sys/types.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "envelope.h"

/* table.c: every backend behind one interface */
#define TABLE_FOUND	1
#define TABLE_NOTFOUND	0
#define TABLE_ERROR	-1

/*
 * What a question is for.  A file: or db: table answers every service
 * from the same keys; a shared table (pgsql:, ldap: ...) has one query
 * per service in its configuration (table/backend.h).
 */
enum table_service {
	TS_STRING,	/* a key in a list: "from auth <users>", helo... */
	TS_ALIAS,	/* aliases and virtual: key -> "a, b, |cmd" */
	TS_DOMAIN,	/* a domain of ours */
	TS_CREDENTIALS,	/* user -> crypt(3) hash */
	TS_NETADDR,	/* an address (text) in a listed network */
	TS_USERINFO,	/* user -> "uid:gid:/home" */
	TS_MAILADDR,	/* an address in a list: "mail-from <t>" */
	TS_MAILADDRMAP,	/* user -> the addresses they may send as */
	TS_COUNT
};
/* "alias" ... for smtpctl and the configurations; NULL out of range */
const char	*table_service_name(enum table_service);
int		 table_service_parse(const char *, enum table_service *);
/* any service by name (smtpctl table lookup): the value, malloc'd */
int	table_lookup_service(struct table *, enum table_service,
	    const char *key, char **val);
/* is the table a shared one, asked asynchronously (remote.c) */
int	table_is_remote(const struct table *);
int	table_lookup(struct table *, const char *key, char *val, size_t len);
/* membership in a list table, or key present in a mapping */
int	table_match(struct table *, const char *key);
/* every key and value; cb returns 1 to stop (TABLE_FOUND then) */
int	table_foreach(struct table *, int (*cb)(void *, const char *,
	    const char *), void *arg);
/* netaddr: is the address in the table's CIDR list? */
int	table_match_addr(struct table *, const struct sockaddr_storage *);
/* the same, TABLE_FOUND, TABLE_NOTFOUND or TABLE_ERROR */
int	table_match_netaddr(struct table *, const struct sockaddr_storage *);
/* a key in a list, asked as a service (TS_STRING, TS_MAILADDR) */
int	table_match_as(struct table *, enum table_service, const char *key);
/* aliases and virtual tables: the value, malloc'd */
int	table_lookup_alias(struct table *, const char *key, char **val);
void	table_reload_all(void);
/* wipe and drop every loaded table (values may be secrets) */
void	table_forget_all(void);

/* "smtpctl update table NAME": drop and reload; -1 unknown or broken */
int	table_reload(const char *name);
/* the value in a malloc'd string (free it), any length */
int	table_lookup_alloc(struct table *, const char *key, char **val);
/* domain: the name or a "*.parent" entry */
int	table_match_domain(struct table *, const char *domain);
/* userinfo: "uid:gid:/home" for a virtual user */
struct table_userinfo {
	uid_t	uid;
	gid_t	gid;
	char	home[CONF_PATH_MAX];
};
int	table_lookup_userinfo(struct table *, const char *user,
	    struct table_userinfo *);
/* credentials: the crypt(3) hash stored for a user ("user:hash" too) */
int	table_lookup_credentials(struct table *, const char *user,
	    char *hash, size_t len);
/* mailaddr: may authenticated user `key' use MAIL FROM `from'? */
int	table_match_mailaddr(struct table *, const char *key,
	    const struct mailaddr *from);
/* used by an "alias <t>" action, so read as aliases(5) text */
int	table_is_aliases(const struct table *);
/* every ":include:" path named in an aliases table, to cb; -1 on error */
int	table_alias_includes(struct table *, void (*cb)(void *, const char *),
	    void *arg);
/* uid owning the file of a file:/db: table */
int	table_owner(struct table *, uid_t *);

/*
 * remote.c: the shared tables' cache, and the requests that wait.
 *
 * A question to a shared table whose answer is not cached starts a
 * query and answers TABLE_ERROR at once, marking the caller's request
 * (the current struct table_stall) as stalled.  The lookup process then
 * drops the reply it was about to send, parks the request, and runs it
 * again from the start once every answer it waited for is in the cache
 * (pinned there until the request is done, so a cache TTL of 0 still
 * serves the replay).  Requests are pure lookups, so running one again
 * changes nothing but the answer.
 */
struct table_pin;
struct table_stall {
	int		 stalled;	/* this run met an unanswered query */
	int		 waiting;	/* answers still to come */
	int		 runs;		/* to bound a chain of replays */
	struct table_pin *pins;		/* cache entries held for replays */
	void		(*resume)(void *);
	void		*arg;
};
/* the request being run: until table_stall_end() or table_stall_done() */
void	table_stall_begin(struct table_stall *);
/*
 * The run is over: 1 if it stalled and is not parked yet (park it,
 * table_stall_park(), instead of replying).  0 after the request was
 * parked or done within the run (it may be freed: never pass it here).
 */
int	table_stall_end(void);
/* call resume(arg) once every answer is in; the request runs again */
void	table_stall_park(struct table_stall *, void (*resume)(void *),
	    void *arg);
/* the request is done (replied, or dropped): its pins go; ends the run */
void	table_stall_done(struct table_stall *);

/*
 * The parent: read each shared table's configuration file and check it
 * with its backend (also that no shared table serves what is read once
 * at start: relay credentials, the TLS policy, DKIM keys).  Errors to
 * out (or the log when NULL); returns how many.
 */
struct smtpd_config;
int	table_remote_load(struct smtpd_config *, FILE *out);
/* lookup, before its sandbox: open every shared table */
struct event_base;
void	table_remote_start(struct event_base *);
/* "smtpctl update table": forget a shared table's cached answers */
void	table_remote_flush(const struct table *);

#endif
