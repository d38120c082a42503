/*
 * lka_proto.c -- payload checks for the lookup messages of proto.h that
 * came with issue 5 (rDNS, MX, .forward).  Same rules as proto.c: every
 * string NUL-terminated, every enum in range.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "dmarc_rec.h"
#include "tlsrpt_rec.h"
#include "proto.h"
#include "sts.h"

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
	if (!STR_OK(r->domain) || !STR_OK(r->relay_host) ||
	    (r->flags & ~(LKA_MX_DANE | LKA_MX_STS)) != 0)
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

_Static_assert(sizeof(((struct lka_mx_sts *)0)->id) == STS_ID_MAX &&
    sizeof(((struct lka_mx_sts *)0)->mx) / STS_NAME_MAX == STS_MX_MAX &&
    sizeof(((struct lka_mx_sts *)0)->mx[0]) == STS_NAME_MAX,
    "struct lka_mx_sts and common/sts.h disagree");

/* the policy as common/sts.c would have accepted it */
int
proto_valid_lka_mx_sts(const struct lka_mx_sts *r)
{
	char	name[STS_NAME_MAX];
	size_t	i, off;

	if (r->status > LKA_STS_WEBPKI || r->mode > STS_MODE_ENFORCE ||
	    r->max_age > STS_MAX_AGE_MAX || r->nmx > STS_MX_MAX ||
	    !STR_OK(r->id) || !STR_OK(r->detail))
		return -1;
	if (r->status != LKA_STS_POLICY)
		return r->nmx == 0 ? 0 : -1;
	if (r->mode != STS_MODE_NONE && r->nmx == 0)
		return -1;
	for (i = 0; i < r->nmx; i++) {
		if (!STR_OK(r->mx[i]))
			return -1;
		off = strncmp(r->mx[i], "*.", 2) == 0 ? 2 : 0;
		snprintf(name, sizeof(name), "%s", r->mx[i] + off);
		if (sts_domain_valid(name) == -1 ||
		    strcmp(name, r->mx[i] + off) != 0)
			return -1;
	}
	return 0;
}

int
proto_valid_lka_mx_tlsa(const struct lka_mx_tlsa *t)
{
	if (!STR_OK(t->host) || t->host[0] == '\0')
		return -1;
	switch (t->kind) {
	case LKA_TLSA_RECORD:
		if ((t->usage != 2 && t->usage != 3) || t->selector > 1)
			return -1;
		if ((t->mtype == 0 && (t->datalen == 0 ||
		    t->datalen > LKA_TLSA_DATA_MAX)) ||
		    (t->mtype == 1 && t->datalen != 32) ||
		    (t->mtype == 2 && t->datalen != 64) || t->mtype > 2)
			return -1;
		return 0;
	case LKA_TLSA_UNUSABLE:
	case LKA_TLSA_BOGUS:
		return t->datalen == 0 ? 0 : -1;
	default:
		return -1;
	}
}

int
proto_valid_forward_req(const struct forward_req *f)
{
	if (f->status > PROTO_PERMFAIL || !STR_OK(f->user) ||
	    f->user[0] == '\0' || strchr(f->user, '/') != NULL)
		return -1;
	return 0;
}

int
proto_valid_lka_dnsbl(const struct lka_dnsbl *r)
{
	if (!family_ok(&r->addr, 0) || r->listed < 0 || r->listed > 1 ||
	    r->trusted < 0 || r->trusted > 1 || r->ask_lists > 1 ||
	    !STR_OK(r->lists))
		return -1;
	return 0;
}

int
proto_valid_lka_spf(const struct lka_spf *r)
{
	if (!family_ok(&r->addr, 0) || !STR_OK(r->helo) ||
	    !STR_OK(r->sender) || !STR_OK(r->domain) ||
	    !STR_OK(r->mechanism) || !STR_OK(r->explanation) ||
	    r->result < 0 || r->result > 6 || r->helo_only > 1)
		return -1;
	return 0;
}

int
proto_valid_lka_authcheck(const struct lka_authcheck *r)
{
	uint32_t	i;

	if (!STR_OK(r->from_domain) || !STR_OK(r->spf_domain) ||
	    r->spf_result < 0 || r->spf_result > 6 || r->no_dmarc > 1 ||
	    r->nsigs > LKA_AUTH_SIGS || proto_valid_lka_rcpt_req(&r->ctx) == -1)
		return -1;
	for (i = 0; i < r->nsigs; i++)
		if (dkim_vsig_valid(&r->sigs[i]) == -1)
			return -1;
	return 0;
}

int
proto_valid_lka_authcheck_res(const struct lka_authcheck_res *r)
{
	uint32_t	i;

	if (r->nsigs > LKA_AUTH_SIGS || !STR_OK(r->dmarc_domain) ||
	    r->verdict < 0 || r->verdict > 2)
		return -1;
	for (i = 0; i < r->nsigs; i++)
		if (!STR_OK(r->dkim[i].why))
			return -1;
	return 0;
}

int
proto_valid_queue_dmarc_record(const struct queue_dmarc_record *r)
{
	return dmarc_rec_valid(r);
}

int
proto_valid_lka_tlsrpt(const struct lka_tlsrpt *o)
{
	return tlsrpt_note_valid(o);
}

int
proto_valid_queue_tlsrpt_record(const struct queue_tlsrpt_record *r)
{
	return tlsrpt_rec_valid(r);
}
