/*
 * smtp_limits.c -- the rate limits of smtpd.conf(5) ("smtp
 * client-connection-rate 10/m", ...) applied to a session.
 *
 * The counting is common/ratelimit.c's, in memory shared by every
 * worker: the kernel hands one client's connections to any of them.
 * Per client address: connections (421 at the greeting), messages and
 * recipients (450 4.7.1, the command refused, the session goes on) and
 * failed AUTH (421 and close, and the address's next connections 421
 * until its window allows again).  An authenticated session's messages
 * and recipients count against its user's limits instead of its
 * address's: a submission server's users often share one address (a
 * NAT, a webmail host).  Local submission is never limited, nor are the
 * "smtp rate-exempt" networks.
 *
 * A client that goes on after RATE_REFUSALS_MAX refusals is not
 * listening: 421 and close, as for too many errors.  Every refusal goes
 * through session_log_reject() with "Client host rejected" or "Command
 * rejected" in Postfix's words, which fail2ban's postfix filter knows
 * (the 421s: etc/fail2ban/filter.d/posthaste.conf).
 *
 * With no limit configured nothing here locks or looks up anything.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "proc.h"
#include "proto.h"
#include "ratelimit.h"
#include "smtp_session.h"

#define RATE_REFUSALS_MAX	3

static int
limits_configured(void)
{
	int	k;

	for (k = 0; k < RATE_MAX; k++)
		if (conf->rate[k].n > 0)
			return 1;
	return 0;
}

static int
client_exempt(const struct session *s)
{
	int	i;

	for (i = 0; i < conf->nrate_exempt; i++)
		if (addr_in_cidr(&s->ss, conf->rate_exempt[i]))
			return 1;
	return 0;
}

int
smtp_limit_connect(struct session *s)
{
	const struct conf_rate	*r = conf->rate;

	s->rate_exempt = 1;
	if (!limits_configured() || client_exempt(s))
		return 1;
	s->rate_exempt = 0;
	if (r[RATE_CLIENT_AUTHFAIL].n > 0 && ratelimit_over(
	    RATE_CLIENT_AUTHFAIL, s->addr, &r[RATE_CLIENT_AUTHFAIL]) ==
	    RATELIMIT_OVER) {
		session_reject_close(s, "CONNECT", "421 4.7.0 %s Client host "
		    "rejected: too many authentication failures, try again "
		    "later", session_hostname(s));
		return 0;
	}
	if (r[RATE_CLIENT_CONN].n > 0 && ratelimit_take(RATE_CLIENT_CONN,
	    s->addr, &r[RATE_CLIENT_CONN]) == RATELIMIT_OVER) {
		session_reject_close(s, "CONNECT", "421 4.7.0 %s Client host "
		    "rejected: connection rate limit exceeded, try again "
		    "later", session_hostname(s));
		return 0;
	}
	return 1;
}

/* a message or recipient over its rate: 450, or 421 past the patience */
static int
limit_event(struct session *s, const char *stage,
    const struct mailaddr *rcpt, enum conf_rate_kind client_kind,
    enum conf_rate_kind user_kind, const char *what)
{
	enum conf_rate_kind	 kind;
	const char		*key;

	if ((s->flags & SS_LOCAL) || s->rate_exempt)
		return 1;
	if ((s->flags & SS_AUTH) && s->authname != NULL) {
		kind = user_kind;
		key = s->authname;
	} else {
		kind = client_kind;
		key = s->addr;
	}
	if (conf->rate[kind].n <= 0 ||
	    ratelimit_take(kind, key, &conf->rate[kind]) == RATELIMIT_OK)
		return 1;
	if (s->nrate_refused >= RATE_REFUSALS_MAX) {
		session_reject_close(s, stage, "421 4.7.0 %s Client host "
		    "rejected: too many commands over the rate limit, closing "
		    "connection", session_hostname(s));
		return 0;
	}
	s->nrate_refused++;
	session_reject(s, stage, rcpt, "450 4.7.1 %s rejected: %s rate "
	    "limit exceeded, try again later", kind == client_kind ?
	    "Client host" : "Command", what);
	return 0;
}

int
smtp_limit_mail(struct session *s)
{
	return limit_event(s, "MAIL", NULL, RATE_CLIENT_MSG, RATE_USER_MSG,
	    "message");
}

int
smtp_limit_rcpt(struct session *s, const struct mailaddr *rcpt)
{
	return limit_event(s, "RCPT", rcpt, RATE_CLIENT_RCPT, RATE_USER_RCPT,
	    "recipient");
}

/*
 * A failed AUTH (bad credentials, not our temporary failure): counted
 * whatever the limit, so that an address that goes on failing stays
 * out; over it, 421 and close.
 */
int
smtp_limit_auth_failed(struct session *s)
{
	const struct conf_rate	*r = &conf->rate[RATE_CLIENT_AUTHFAIL];

	if (r->n <= 0 || (s->flags & SS_LOCAL) || s->rate_exempt ||
	    ratelimit_count(RATE_CLIENT_AUTHFAIL, s->addr, r) == RATELIMIT_OK)
		return 1;
	session_reject_close(s, "AUTH", "421 4.7.0 %s Client host rejected: "
	    "too many authentication failures, try again later",
	    session_hostname(s));
	return 0;
}
