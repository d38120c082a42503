/*
 * smtp_query.c -- the commands with which a client asks rather than
 * sends mail: VRFY and EXPN (RFC 5321 3.5), HELP, and ETRN (RFC 1985).
 *
 * Split from smtp_session.c, whose state machine calls them: each that
 * needs lookup (VRFY, EXPN, ETRN; ETRN then the queue) sets SS_WAIT
 * and stops the loop, and the answer resumes it, so pipelined commands
 * are still answered in order.  Whether VRFY and EXPN are offered, and
 * which clients may ask for ETRN, is the configuration's and lookup's
 * to say.
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "smtp_session.h"
#include "util.h"

/* ---- VRFY, EXPN ---- */

void
cmd_vrfy(struct session *s, char *args, int expn)
{
	struct lka_rcpt_req	 req;
	const char		*verb = expn ? "EXPN" : "VRFY", *lt, *rest;
	size_t			 i;

	if (!(expn ? conf->expn : conf->vrfy)) {
		session_reply(s, "502 5.5.1 %s command is disabled", verb);
		return;
	}
	if (args == NULL || *args == '\0') {
		session_reply(s, "501 5.5.4 Syntax: %s address", verb);
		session_error(s);
		return;
	}
	session_lka_request(s, &req);
	if ((lt = strchr(args, '<')) != NULL) {
		/* "Some Name <user@domain>" */
		if (addr_parse_path(lt, &req.rcpt, ADDR_ALLOW_NODOMAIN,
		    &rest) != ADDR_OK || *rest != '\0')
			goto bad;
	} else if (strchr(args, '@') != NULL) {
		if (addr_parse_mailbox(args, &req.rcpt, 0) != ADDR_OK)
			goto bad;
	} else {
		/* a bare local part, resolved against the local domain */
		if (strlen(args) > ADDR_LOCAL_MAX)
			goto bad;
		for (i = 0; args[i]; i++)
			if (!isalnum((unsigned char)args[i]) &&
			    strchr("!#$%&'*+-/=?^_`{|}~.", args[i]) == NULL)
				goto bad;
		snprintf(req.rcpt.user, sizeof(req.rcpt.user), "%s", args);
	}
	s->flags |= SS_WAIT | (expn ? SS_EXPN : SS_VRFY);
	mproc_compose(&smtp_worker.lookup, expn ? IMSG_LKA_EXPN :
	    IMSG_LKA_VRFY, s->id, -1, &req, sizeof(req));
	return;
bad:
	session_reply(s, "501 5.1.3 Bad address syntax");
	session_error(s);
}

static void
format_dest(const struct lka_dest *d, char *buf, size_t len)
{
	char	addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2], clean[1100];

	addr_to_string(&d->dest, addr, sizeof(addr));
	switch (d->dest_type) {
	case DEST_MAILBOX:
		snprintf(buf, len, "%s <%s>", d->user, addr);
		break;
	case DEST_FILE:
	case DEST_PROGRAM:
		snprintf(buf, len, "%s", log_sanitize(d->path, clean,
		    sizeof(clean)));
		break;
	default:
		snprintf(buf, len, "<%s>", addr);
		break;
	}
}

void
vrfy_dest(struct session *s, const struct lka_dest *d)
{
	char	line[1200];

	format_dest(d, line, sizeof(line));
	if (s->pending != NULL) {
		if (s->flags & SS_VRFY)
			return;		/* one answer is enough */
		session_reply(s, "250-2.1.5 %s", s->pending);
		free(s->pending);
	}
	if ((s->pending = strdup(line)) == NULL)
		fatal("strdup");
}

void
vrfy_result(struct session *s, const struct lka_result *r)
{
	const char	*verb = (s->flags & SS_EXPN) ? "EXPN" : "VRFY";

	s->flags &= ~(SS_VRFY | SS_EXPN);
	if (r->status == PROTO_OK && s->pending != NULL)
		session_reply(s, "250 2.1.5 %s", s->pending);
	else if (r->status != PROTO_OK && r->reply[0])
		/* probing for users is worth a line a log watcher sees */
		session_reject(s, verb, NULL, "%s", r->reply);
	else
		session_reply(s, "%s", r->reply[0] ? r->reply :
		    "252 2.5.0 Cannot verify user, but will accept message "
		    "and attempt delivery");
	free(s->pending);
	s->pending = NULL;
}

void
cmd_help(struct session *s)
{
	session_reply(s, "214-2.0.0 This is %s; commands:", SMTPD_NAME);
	session_reply(s, "214-2.0.0   HELO EHLO MAIL RCPT DATA BDAT RSET "
	    "NOOP QUIT");
	session_reply(s, "214-2.0.0   VRFY EXPN HELP STARTTLS AUTH ETRN");
	session_reply(s, "214 2.0.0 End of HELP info");
}

void
cmd_etrn(struct session *s, char *args)
{
	if (args == NULL || *args == '\0') {
		session_reply(s, "501 5.5.4 Syntax: ETRN node");
		session_error(s);
		return;
	}
	if (s->state < S_HELO) {
		session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		session_error(s);
		return;
	}
	if (s->tx != NULL) {
		session_reply(s, "503 5.5.1 Error: ETRN inside a mail "
		    "transaction");
		session_error(s);
		return;
	}
	{
		struct lka_rcpt_req	 req;
		const char		*node = args;

		session_lka_request(s, &req);
		/* RFC 1985 5.3: "@domain" is the domain and its subdomains */
		if (*node == '@')
			node++;
		if (*args == '#') {
			session_reply(s, "458 4.3.0 Unable to queue messages "
			    "for node %.*s: queue names are not supported",
			    64, args);
			return;
		}
		if (strlen(node) > ADDR_DOMAIN_MAX ||
		    !domain_valid(node, 0)) {
			session_reply(s, "501 5.5.4 Syntax: ETRN [@]domain");
			session_error(s);
			return;
		}
		snprintf(req.rcpt.domain, sizeof(req.rcpt.domain), "%s", node);
		/* remember the subdomain flag in the local part slot */
		snprintf(req.rcpt.user, sizeof(req.rcpt.user), "%s",
		    *args == '@' ? "@" : "");
		s->flags |= SS_WAIT | SS_ETRN;
		mproc_compose(&smtp_worker.lookup, IMSG_LKA_ETRN, s->id, -1,
		    &req, sizeof(req));
	}
}

/* lookup said whether this client may ask; then the queue does it */
void
session_lookup_etrn(const struct lka_result *r)
{
	struct session		*s;
	struct queue_etrn	 q;

	if ((s = session_find(r->reqid)) == NULL || !(s->flags & SS_ETRN))
		return;
	if (r->status != PROTO_OK) {
		s->flags &= ~(SS_WAIT | SS_ETRN);
		session_reject(s, "ETRN", NULL, "%s", r->reply[0] ? r->reply :
		    "459 4.7.1 Node not allowed: not a trusted client");
		session_process(s);
		return;
	}
	memset(&q, 0, sizeof(q));
	q.reqid = s->id;
	snprintf(q.domain, sizeof(q.domain), "%.255s", r->reply);
	q.subdomains = r->ndest;
	mproc_compose(&smtp_worker.queue, IMSG_QUEUE_ETRN, s->id, -1, &q,
	    sizeof(q));
}

void
session_queue_etrn(const struct queue_etrn *q)
{
	struct session	*s;

	if ((s = session_find(q->reqid)) == NULL || !(s->flags & SS_ETRN))
		return;
	s->flags &= ~(SS_WAIT | SS_ETRN);
	/* RFC 1985 5.1 */
	if (q->count == 0)
		session_reply(s, "251 2.0.0 OK, no messages waiting for node "
		    "%s", q->domain);
	else
		session_reply(s, "253 2.0.0 OK, %u pending messages for node "
		    "%s started", q->count, q->domain);
	session_process(s);
}
