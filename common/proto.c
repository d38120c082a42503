/*
 * proto.c -- payload checks for the messages in proto.h.
 */
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "log.h"
#include "mproc.h"
#include "proto.h"

void
proto_get(struct mproc *p, const struct imsg *m, void *out, size_t len)
{
	mproc_check_len(p, m, len);
	memcpy(out, m->data, len);
}

int
proto_valid_string(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL ? 0 : -1;
}

#define STR_OK(f)	(proto_valid_string((f), sizeof(f)) == 0)

static int
mailaddr_ok(const struct mailaddr *a)
{
	return STR_OK(a->user) && STR_OK(a->domain);
}

int
proto_valid_lka_rcpt_req(const struct lka_rcpt_req *r)
{
	if (!STR_OK(r->helo) || !STR_OK(r->authname) ||
	    !mailaddr_ok(&r->mailfrom) || !mailaddr_ok(&r->rcpt))
		return -1;
	return 0;
}

int
proto_valid_lka_dest(const struct lka_dest *d)
{
	if (d->dest_type < DEST_MAILBOX || d->dest_type > DEST_REMOTE)
		return -1;
	if (!mailaddr_ok(&d->dest) || !STR_OK(d->action) ||
	    !STR_OK(d->user) || !STR_OK(d->path))
		return -1;
	return 0;
}

int
proto_valid_lka_result(const struct lka_result *r)
{
	if (r->status > PROTO_PERMFAIL || !STR_OK(r->reply))
		return -1;
	return 0;
}

int
proto_valid_lka_auth_req(const struct lka_auth_req *r)
{
	if (!STR_OK(r->mech) || !STR_OK(r->user) || !STR_OK(r->pass))
		return -1;
	return 0;
}

int
proto_valid_auth_system_req(const struct auth_system_req *r)
{
	if (!STR_OK(r->user) || !STR_OK(r->pass))
		return -1;
	return 0;
}

int
proto_valid_auth_system_res(const struct auth_system_res *r)
{
	if (r->status > PROTO_PERMFAIL)
		return -1;
	return 0;
}

int
proto_valid_queue_msg_resp(const struct queue_msg_resp *r)
{
	if (r->status > PROTO_PERMFAIL || !STR_OK(r->reply))
		return -1;
	return 0;
}

int
proto_valid_delivery_result(const struct delivery_result *r)
{
	if (r->status > PROTO_PERMFAIL || !STR_OK(r->text) ||
	    !STR_OK(r->relay) || !STR_OK(r->reply) || r->dsn > DR_DSN_RELAYED)
		return -1;
	return 0;
}

int
proto_valid_ctl_request(const struct ctl_request *r)
{
	if (!STR_OK(r->arg) || !STR_OK(r->pattern))
		return -1;
	/* a pattern picks the envelopes by itself: no id with it */
	if (r->match > CTL_MATCH_RCPT || (r->match != CTL_MATCH_ID &&
	    r->id != 0))
		return -1;
	return 0;
}

int
proto_valid_ctl_reply(const struct ctl_reply *r)
{
	return STR_OK(r->text) ? 0 : -1;
}

int
proto_valid_ctl_table_lookup(const struct ctl_table_lookup *r)
{
	if (!STR_OK(r->table) || !STR_OK(r->service) || !STR_OK(r->key))
		return -1;
	return 0;
}

int
proto_valid_ctl_table_result(const struct ctl_table_result *r)
{
	if (r->status > CTL_TABLE_ERROR || !STR_OK(r->text))
		return -1;
	return 0;
}

int
proto_valid_ctl_queue_entry(const struct ctl_queue_entry *q)
{
	if (q->state >= CTL_QSTATE_MAX || !STR_OK(q->sender) ||
	    !STR_OK(q->recipient) || !STR_OK(q->error) || !STR_OK(q->held))
		return -1;
	return 0;
}

int
proto_direct_delivery(const struct envelope *evp, const struct action *a)
{
	return a != NULL && a->type == ACTION_MAILDIR &&
	    evp->dest_type == DEST_MAILBOX;
}

int
proto_valid_keys_sign_req(const struct keys_sign_req *r)
{
	if (r->op < KEYS_OP_RSA_PKCS1 || r->op > KEYS_OP_ED25519 ||
	    r->len == 0 || r->len > sizeof(r->data))
		return -1;
	if (r->saltlen < -1 || r->saltlen > KEYS_SIG_MAX)
		return -1;
	return 0;
}

int
proto_valid_keys_sign_res(const struct keys_sign_res *r)
{
	if (r->status != PROTO_OK && r->status != PROTO_PERMFAIL)
		return -1;
	if (r->len > sizeof(r->sig) || (r->status == PROTO_OK) != (r->len > 0))
		return -1;
	return 0;
}

int
proto_valid_keys_dkim_ident(const struct keys_dkim_ident *k)
{
	if (!STR_OK(k->domain) || !STR_OK(k->selector) ||
	    k->domain[0] == '\0' || k->selector[0] == '\0')
		return -1;
	if (k->op != 0 && k->op != KEYS_OP_RSA_PKCS1 &&
	    k->op != KEYS_OP_ED25519)
		return -1;
	return 0;
}

int
proto_valid_milter_connect(const struct milter_connect *c)
{
	if (c->status > PROTO_PERMFAIL || !STR_OK(c->name) ||
	    !STR_OK(c->error) || c->name[0] == '\0')
		return -1;
	return 0;
}

int
proto_valid_milter_stats(const struct milter_stats *s)
{
	if (s->state > MILTER_STATE_DOWN || !STR_OK(s->name) ||
	    !STR_OK(s->error) || s->name[0] == '\0')
		return -1;
	return 0;
}

int
proto_valid_ctl_milter(const struct ctl_milter *m)
{
	if (!STR_OK(m->address) || proto_valid_milter_stats(&m->st) == -1)
		return -1;
	return 0;
}
