/*
 * lka_proto.c -- payload checks for the lookup messages of proto.h that
 * came with issue 5 (rDNS, MX, .forward).  Same rules as proto.c: every
 * string NUL-terminated, every enum in range.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <string.h>

#include "proto.h"

#define STR_OK(f)	(proto_valid_string((f), sizeof(f)) == 0)

static int
family_ok(const struct sockaddr_storage *ss, int allow_unspec)
{
	if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6)
		return 1;
	return allow_unspec && (ss->ss_family == AF_UNSPEC ||
	    ss->ss_family == AF_UNIX);
}

int
proto_valid_mailaddr(const struct mailaddr *a)
{
	return STR_OK(a->user) && STR_OK(a->domain) ? 0 : -1;
}

int
proto_valid_lka_rdns(const struct lka_rdns *r)
{
	/* a local-socket session may ask too: it gets "no name" */
	if (!family_ok(&r->addr, 1) || r->status > PROTO_PERMFAIL ||
	    r->fcrdns > 1 || !STR_OK(r->name))
		return -1;
	return 0;
}

int
proto_valid_lka_mx_req(const struct lka_mx_req *r)
{
	if (!STR_OK(r->domain) || !STR_OK(r->relay_host))
		return -1;
	if (r->domain[0] == '\0' && r->relay_host[0] == '\0')
		return -1;
	return 0;
}

int
proto_valid_lka_mx_host(const struct lka_mx_host *h)
{
	if (!STR_OK(h->host) || !family_ok(&h->addr, 0))
		return -1;
	return 0;
}

int
proto_valid_forward_req(const struct forward_req *f)
{
	if (f->status > PROTO_PERMFAIL || !STR_OK(f->user) ||
	    f->user[0] == '\0' || strchr(f->user, '/') != NULL)
		return -1;
	return 0;
}
