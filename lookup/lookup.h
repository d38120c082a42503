/*
 * lookup.h -- the lookup process: rules, tables, recipient resolution.
 */
#ifndef POSTHASTE_LOOKUP_H
#define POSTHASTE_LOOKUP_H

#include <stddef.h>

#include "config.h"
#include "mproc.h"
#include "proto.h"

/* table.c: every backend behind one interface */
#define TABLE_FOUND	1
#define TABLE_NOTFOUND	0
#define TABLE_ERROR	-1
int	table_lookup(struct table *, const char *key, char *val, size_t len);
/* membership in a list table, or key present in a mapping */
int	table_match(struct table *, const char *key);
/* netaddr: is the address in the table's CIDR list? */
int	table_match_addr(struct table *, const struct sockaddr_storage *);
void	table_reload_all(void);

/* rules.c: the first matching "match" rule for a recipient */
int	rule_find(const struct lka_rcpt_req *, struct match **);
int	rule_is_local_domain(const char *domain);
int	addr_in_cidr(const struct sockaddr_storage *, const char *cidr);

/* auth.c: AUTH checks, VRFY/EXPN answers, the postmaster fallback */
void	lookup_auth(struct mproc *, const struct lka_auth_req *);
void	lookup_vrfy(struct mproc *, const struct lka_rcpt_req *, int expn);
int	lookup_client_trusted(const struct lka_rcpt_req *);
int	lookup_postmaster(struct mproc *, const struct lka_rcpt_req *,
	    struct match *, uint32_t *ndest, char *reply, size_t replylen);

/* expand.c: a recipient to its final destinations */
typedef void (*expand_emit)(void *arg, const struct lka_dest *);
/* returns PROTO_*; on failure reply holds the SMTP reply */
int	expand_recipient(const struct lka_rcpt_req *, struct action *,
	    expand_emit, void *arg, char *reply, size_t replylen);

#endif
