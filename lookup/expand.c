/*
 * expand.c -- from a recipient address to its final destinations.
 *
 * Local actions resolve the local part to a system user (after
 * "+detail" is dropped); relay actions pass the address through.  Only a
 * plain local part (a dot-atom without '%', '!' or quotes) is ever
 * resolved to a local user, so no source-route, percent-hack, bang-path
 * or quoted trick can turn a local recipient into a relayed one.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "log.h"
#include "lookup.h"
#include "smtpd.h"

static int
expand_local_user(const struct lka_rcpt_req *req, struct action *a,
    expand_emit emit, void *arg, char *reply, size_t replylen)
{
	struct lka_dest	 d;
	struct passwd	*pw;
	char		 base[ADDR_LOCAL_MAX + 1], user[ADDR_LOCAL_MAX + 1];
	char		 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	size_t		 i;

	addr_to_string(&req->rcpt, rcpt, sizeof(rcpt));
	if (!addr_local_is_plain(&req->rcpt))
		goto unknown;
	addr_split_subaddress(req->rcpt.user, base, sizeof(base), NULL, 0);
	for (i = 0; base[i]; i++)
		user[i] = (char)tolower((unsigned char)base[i]);
	user[i] = '\0';
	/* RFC 5321 4.5.1: postmaster always exists */
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL && errno != 0 && errno != ENOENT) {
		snprintf(reply, replylen, "451 4.3.0 <%s>: Temporary "
		    "failure in user lookup", rcpt);
		return PROTO_TEMPFAIL;
	}
	if (pw == NULL)
		goto unknown;
	if (pw->pw_uid == 0) {
		snprintf(reply, replylen, "550 5.1.1 <%s>: Recipient address "
		    "rejected: mail for root must be aliased to a user", rcpt);
		return PROTO_PERMFAIL;
	}
	memset(&d, 0, sizeof(d));
	d.reqid = req->reqid;
	d.dest_type = DEST_MAILBOX;
	d.dest = req->rcpt;
	snprintf(d.action, sizeof(d.action), "%s", a->name);
	snprintf(d.user, sizeof(d.user), "%s", pw->pw_name);
	emit(arg, &d);
	return PROTO_OK;
unknown:
	snprintf(reply, replylen, "550 5.1.1 <%s>: Recipient address "
	    "rejected: User unknown", rcpt);
	return PROTO_PERMFAIL;
}

int
expand_recipient(const struct lka_rcpt_req *req, struct action *a,
    expand_emit emit, void *arg, char *reply, size_t replylen)
{
	struct lka_dest	d;

	if (a->type == ACTION_RELAY) {
		memset(&d, 0, sizeof(d));
		d.reqid = req->reqid;
		d.dest_type = DEST_REMOTE;
		d.dest = req->rcpt;
		snprintf(d.action, sizeof(d.action), "%s", a->name);
		emit(arg, &d);
		return PROTO_OK;
	}
	return expand_local_user(req, a, emit, arg, reply, replylen);
}
