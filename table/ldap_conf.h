/*
 * ldap_conf.h -- the ldap: shared table's configuration file and its
 * search filters (ldap_conf.c); the driver is table/ldap.c.
 */
#ifndef POSTHASTE_LDAP_CONF_H
#define POSTHASTE_LDAP_CONF_H

#include <stddef.h>

#include "table.h"

#define LDAP_CONF_URL_MAX	256
#define LDAP_CONF_DN_MAX	512
#define LDAP_CONF_SECRET_MAX	256
#define LDAP_CONF_FILTER_MAX	1024
#define LDAP_CONF_ATTR_MAX	64
#define LDAP_CONF_NATTRS	3	/* userinfo: uid gid home */
#define LDAP_CONF_POOL_MAX	16
#define LDAP_CONF_POOL		2
#define LDAP_CONF_TIMEOUT	5	/* seconds */
#define LDAP_CONF_TIMEOUT_MAX	10	/* remote.c gives up at 15 s */

struct ldap_conf {
	char	url[LDAP_CONF_URL_MAX];		/* ldap://ADDR[:PORT] */
	char	binddn[LDAP_CONF_DN_MAX];	/* "username": "" anonymous */
	char	password[LDAP_CONF_SECRET_MAX];
	char	basedn[LDAP_CONF_DN_MAX];
	/* per service: "" when the configuration does not answer it */
	char	filter[TS_COUNT][LDAP_CONF_FILTER_MAX];
	char	attrs[TS_COUNT][LDAP_CONF_NATTRS][LDAP_CONF_ATTR_MAX];
	int	nattrs[TS_COUNT];
	int	pool;				/* connections */
	int	timeout;			/* seconds per query */
};

/*
 * Parse the text of a configuration file (NUL-terminated, len bytes).
 * 0, or -1 with err set to "FILE:LINE: why" (file names it).  The
 * password is in conf: wipe it with ldap_conf_clear().
 */
int	ldap_conf_parse(const char *text, size_t len, const char *file,
	    struct ldap_conf *conf, char *err, size_t errlen);
void	ldap_conf_clear(struct ldap_conf *);

/*
 * RFC 4515 3: the key as an assertion value, "*", "(", ")", "\" and
 * every byte outside printable ASCII written as "\XX".  The length
 * written, or -1 when out is too small.
 */
int	ldap_filter_escape(const char *key, char *out, size_t outlen);
/*
 * The service's filter with each "%s" replaced by the escaped key
 * ("%%" is a "%").  0, or -1 when it does not fit in out.
 */
int	ldap_filter_expand(const char *filter, const char *key, char *out,
	    size_t outlen);

#endif
