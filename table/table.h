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

#include "config.h"
#include "envelope.h"

/* table.c: every backend behind one interface */
#define TABLE_FOUND	1
#define TABLE_NOTFOUND	0
#define TABLE_ERROR	-1
int	table_lookup(struct table *, const char *key, char *val, size_t len);
/* membership in a list table, or key present in a mapping */
int	table_match(struct table *, const char *key);
/* every key and value; cb returns 1 to stop (TABLE_FOUND then) */
int	table_foreach(struct table *, int (*cb)(void *, const char *,
	    const char *), void *arg);
/* netaddr: is the address in the table's CIDR list? */
int	table_match_addr(struct table *, const struct sockaddr_storage *);
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

#endif
