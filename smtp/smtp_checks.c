/*
 * smtp_checks.c -- the inbound checks, the smtp worker's side (issue 18):
 * DNS block lists, SPF, DKIM verification and DMARC, and the one
 * Authentication-Results header (RFC 8601) that reports them.
 *
 * They run on mail from clients that are neither authenticated nor on
 * this host (loopback, the local socket) nor trusted (in a network a
 * rule names with "from src", as Postfix's mynetworks): "no-checks" on a
 * listener turns them off (or some of them), "checks all-clients" on for
 * loopback and authenticated clients too (smtpd.conf(5)).  Lookup
 * does the DNS work (lookup/checks.c); nothing here waits on DNS except
 * where the answer decides what to reply:
 *
 *  - at connect, the client's address goes to the DNS lists, while the
 *    banner is sent; the first command waits for the answer if it is not
 *    there yet, and a listed client gets 554 5.7.1 naming the lists and
 *    is disconnected.  Not on listeners that require AUTH (submission):
 *    users on listed dynamic addresses must still reach them;
 *  - SPF of MAIL FROM (and of the HELO name, RFC 7208 2.3, reported
 *    apart) starts when MAIL is accepted and runs while the client sends
 *    its recipients and data;
 *  - the message is hashed while it is spooled (common/dkim.c, the same
 *    hasher as for signing); at the end of data lookup verifies each
 *    DKIM-Signature and evaluates DMARC with the SPF result.  A DMARC
 *    failure under p=reject refuses the message (550 5.7.1), under
 *    p=quarantine marks it for the maildir "junk" option; "dmarc policy"
 *    says otherwise.  A DMARC temperror (the policy or a key could not
 *    be fetched) is never a rejection: the message is accepted and
 *    tagged dmarc=temperror.
 *
 * The header goes above the message without rewriting it
 * (smtp_data_add_header()).  Incoming Authentication-Results headers
 * that claim our authserv-id (or cannot be read) are dropped while the
 * message is spooled (smtp_data.c, with smtp_checks_forged()).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authres.h"
#include "dkim.h"
#include "log.h"
#include "smtpcount.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "smtp_session.h"
#include "lookup/dmarc.h"
#include "lookup/spf.h"

static uint32_t	txn_serial;

/* a client on this host: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 */
int
smtp_client_is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family != AF_INET6)
		return 0;
	if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
		return 1;
	return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
	    sin6->sin6_addr.s6_addr[12] == 127;
}

/* do the checks run on this session's mail (now)? */
int
smtp_checks_active(const struct session *s)
{
	if (s->l == NULL || s->l->checks == LISTEN_CHECKS_NONE ||
	    (s->flags & SS_LOCAL) || s->trusted)
		return 0;
	if (s->l->checks == LISTEN_CHECKS_ALL_CLIENTS)
		return 1;
	return !(s->flags & SS_AUTH) && !smtp_client_is_loopback(&s->ss);
}

/* is this check switched off on the session's listener? */
static int
check_off(const struct session *s, int check)
{
	return (s->l->checks_off & check) != 0;
}

/* ---- DNS lists ---- */

/*
 * At connect, lookup is asked whether the client is trusted (then the
 * checks skip it) and what the DNS lists say; the first command waits
 * for the answer.
 */
void
smtp_checks_connect(struct session *s)
{
	struct lka_dnsbl	r;

	if (!smtp_checks_active(s))
		return;
	memset(&r, 0, sizeof(r));
	r.reqid = s->id;
	r.addr = s->ss;
	r.ask_lists = conf->ndnsbl > 0 && !check_off(s, CHECK_DNSBL) &&
	    s->l->auth != LISTEN_AUTH_REQUIRE;
	s->dnsbl = DNSBL_PENDING;
	mproc_compose(&smtp_worker.lookup, IMSG_LKA_DNSBL, s->id, -1, &r,
	    sizeof(r));
}

/* before a command is read: 1 when the session must wait or is done */
int
smtp_checks_gate(struct session *s)
{
	if (s->dnsbl == DNSBL_PENDING) {
		s->flags |= SS_WAIT | SS_DNSBL;
		return 1;
	}
	/* a rule asks SPF: the recipients wait for its result */
	if (conf->rules_spf && s->tx != NULL && s->tx->checks &&
	    s->tx->spf.result == -1 &&
	    (s->state == S_MAIL || s->state == S_RCPT)) {
		s->flags |= SS_WAIT | SS_DNSBL;
		s->tx->checks_gated = 1;
		return 1;
	}
	return 0;
}

void
smtp_checks_dnsbl_reply(const struct lka_dnsbl *r)
{
	struct session	*s;
	char		 clean[sizeof(r->lists) * 4];

	if ((s = session_find(r->reqid)) == NULL ||
	    s->dnsbl != DNSBL_PENDING)
		return;
	s->dnsbl = r->listed ? DNSBL_LISTED : DNSBL_CLEAN;
	s->trusted = r->trusted;
	if (r->listed)
		smtpcount_add(SC_DNSBL_LISTED);
	if (r->nfailed > 0)
		log_info("%08x: dnsbl: %u list(s) did not answer for %s",
		    s->id, r->nfailed, s->addr);
	if (r->listed && conf->rules_dnsbl) {
		/* the match rules decide ("dnsbl" criterion) */
		log_info("%08x: dnsbl: %s listed by %s", s->id, s->addr,
		    log_sanitize(r->lists, clean, sizeof(clean)));
	} else if (r->listed) {
		log_sanitize(r->lists, clean, sizeof(clean));
		s->flags &= ~(SS_WAIT | SS_DNSBL);
		session_reject_close(s, "CONNECT", "554 5.7.1 Service "
		    "unavailable; client [%s] blocked using %s", s->addr,
		    clean);
		return;
	}
	if (s->flags & SS_DNSBL) {
		s->flags &= ~(SS_WAIT | SS_DNSBL);
		session_process(s);
	}
}

/* ---- SPF ---- */

void
smtp_checks_mail(struct session *s)
{
	struct txn	*tx = s->tx;
	struct lka_spf	 r;

	tx->serial = ++txn_serial;
	if (!smtp_checks_active(s))
		return;
	tx->checks = 1;
	tx->spf.result = tx->spf_helo.result = SPF_NONE;
	if (check_off(s, CHECK_SPF))
		return;
	memset(&r, 0, sizeof(r));
	r.reqid = s->id;
	r.serial = tx->serial;
	r.addr = s->ss;
	snprintf(r.helo, sizeof(r.helo), "%s", s->helo ? s->helo : "");
	if (tx->mailfrom.user[0] != '\0' || tx->mailfrom.domain[0] != '\0')
		snprintf(r.sender, sizeof(r.sender), "%s@%s",
		    tx->mailfrom.user, tx->mailfrom.domain);
	tx->spf.result = -1;		/* pending */
	mproc_compose(&smtp_worker.lookup, IMSG_LKA_SPF, s->id, -1, &r,
	    sizeof(r));
	/* and the HELO identity (RFC 7208 2.3), when it is a name */
	tx->spf_helo.result = SPF_NONE;
	if (s->helo != NULL && s->helo[0] != '[' &&
	    strchr(s->helo, '.') != NULL && r.sender[0] != '\0') {
		r.helo_only = 1;
		tx->spf_helo.result = -1;
		mproc_compose(&smtp_worker.lookup, IMSG_LKA_SPF, s->id, -1,
		    &r, sizeof(r));
	}
}

static void	authcheck_send(struct session *);

void
smtp_checks_spf_reply(const struct lka_spf *r)
{
	struct session	*s;

	if ((s = session_find(r->reqid)) == NULL || s->tx == NULL ||
	    s->tx->serial != r->serial || !s->tx->checks)
		return;
	if (r->helo_only)
		s->tx->spf_helo = *r;
	else {
		s->tx->spf = *r;
		smtpcount_check(SCK_SPF, spf_result_name(r->result));
	}
	if (s->tx->checks_waiting_spf && s->tx->spf.result != -1 &&
	    s->tx->spf_helo.result != -1) {
		s->tx->checks_waiting_spf = 0;
		authcheck_send(s);
	} else if (s->tx->checks_gated && s->tx->spf.result != -1) {
		/* the commands waiting for it go on (last: s may go) */
		s->tx->checks_gated = 0;
		s->flags &= ~(SS_WAIT | SS_DNSBL);
		session_process(s);
	}
}

/* ---- the end of data: DKIM, DMARC, the header ---- */

static void
authcheck_send(struct session *s)
{
	struct txn		*tx = s->tx;
	struct lka_authcheck	*r;
	const char		*from;
	size_t			 i, n;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("calloc");
	r->reqid = s->id;
	r->serial = tx->serial;
	session_lka_request(s, &r->ctx);
	r->ctx.mailfrom = tx->mailfrom;
	if (tx->spf.result >= 0) {
		r->ctx.flags |= SF_CHECKED;
		r->ctx.spf = tx->spf.result;
	}
	if (s->dnsbl == DNSBL_LISTED)
		r->ctx.flags |= SF_DNSBL;
	if ((from = dkim_msg_from_domain(tx->dkim)) != NULL)
		snprintf(r->from_domain, sizeof(r->from_domain), "%s", from);
	/* SPF's identity: MAIL FROM's domain, or the HELO name for <> */
	snprintf(r->spf_domain, sizeof(r->spf_domain), "%s",
	    tx->spf.domain[0] ? tx->spf.domain : tx->mailfrom.domain);
	r->spf_result = tx->spf.result;
	r->no_dmarc = check_off(s, CHECK_DMARC);
	n = check_off(s, CHECK_DKIM) ? 0 : dkim_msg_nsigs(tx->dkim);
	for (i = 0; i < n && i < LKA_AUTH_SIGS; i++)
		r->sigs[r->nsigs++] = *dkim_msg_vsig(tx->dkim, i);
	mproc_compose(&smtp_worker.lookup, IMSG_LKA_AUTHCHECK, s->id, -1, r,
	    sizeof(*r));
	free(r);
}

int
smtp_checks_end(struct session *s, void (*done)(struct session *, int))
{
	struct txn	*tx = s->tx;

	if (!tx->checks || tx->dkim == NULL)
		return 0;
	dkim_msg_end(tx->dkim);
	tx->checks_done = done;
	if (tx->spf.result == -1 || tx->spf_helo.result == -1)
		tx->checks_waiting_spf = 1;	/* sent when SPF is in */
	else
		authcheck_send(s);
	return 1;
}

static const char *
dkim_word(int r)
{
	static const char *const w[] = { "none", "pass", "fail", "policy",
	    "neutral", "temperror", "permerror" };

	return r >= 0 && r <= DKIM_PERMERROR ? w[r] : "permerror";
}

static const char *
iprev_word(const struct session *s)
{
	switch (s->iprev) {
	case IPREV_PASS:
		return "pass";
	case IPREV_FAIL:
		return "fail";
	case IPREV_TEMPERROR:
		return "temperror";
	}
	return NULL;
}

void
smtp_checks_authcheck_reply(const struct lka_authcheck_res *r)
{
	struct session		*s;
	struct txn		*tx;
	struct authres		 ar;
	const struct dkim_vsig	*v;
	const char		*hdr, *word, *pol;
	char			 sender[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 b[12], dis[32];
	size_t			 len, i;
	int			 err = 0;

	if ((s = session_find(r->reqid)) == NULL || (tx = s->tx) == NULL ||
	    tx->serial != r->serial || tx->checks_done == NULL)
		return;
	authres_begin(&ar, session_hostname(s));
	if (tx->mailfrom.user[0] != '\0' || tx->mailfrom.domain[0] != '\0')
		snprintf(sender, sizeof(sender), "%s@%s", tx->mailfrom.user,
		    tx->mailfrom.domain);
	else
		sender[0] = '\0';
	if (!check_off(s, CHECK_SPF))
		authres_spf(&ar, spf_result_name(tx->spf.result), sender,
		    sender[0] == '\0' ? s->helo : NULL);
	/* the HELO name's own result, when it was checked apart */
	if (sender[0] != '\0' && tx->spf_helo.domain[0] != '\0')
		authres_spf(&ar, spf_result_name(tx->spf_helo.result), NULL,
		    s->helo);
	for (i = 0; i < r->nsigs && i < dkim_msg_nsigs(tx->dkim); i++) {
		v = dkim_msg_vsig(tx->dkim, i);
		snprintf(b, sizeof(b), "%.8s", v->bprefix);
		authres_dkim(&ar, dkim_word(r->dkim[i].result), v->d, v->s, b);
		smtpcount_check(SCK_DKIM, dkim_word(r->dkim[i].result));
	}
	if (r->nsigs == 0 && !check_off(s, CHECK_DKIM)) {
		authres_method(&ar, "dkim", "none", NULL);
		smtpcount_check(SCK_DKIM, "none");
	}
	word = dmarc_result_name(r->dmarc_result);
	pol = dmarc_policy_name(r->dmarc_policy);
	snprintf(dis, sizeof(dis), "%s", r->dmarc_result == DMARC_RESULT_FAIL ?
	    dmarc_policy_name(r->dmarc_disposition) : "none");
	if (!check_off(s, CHECK_DMARC)) {
		authres_dmarc(&ar, word, r->dmarc_result == DMARC_RESULT_NONE ?
		    NULL : pol, r->dmarc_result == DMARC_RESULT_FAIL ? dis :
		    NULL, r->dmarc_domain[0] ? r->dmarc_domain : NULL);
		smtpcount_check(SCK_DMARC, word);
	}
	if (iprev_word(s) != NULL)
		authres_iprev(&ar, iprev_word(s), s->addr, s->rdns);
	if ((hdr = authres_end(&ar, &len)) == NULL ||
	    smtp_data_add_header(s, hdr) == -1)
		log_warnx("%08x: Authentication-Results too long: not added",
		    tx->msgid);
	log_info("%08x: auth: spf=%s dkim=%u dmarc=%s%s%s", tx->msgid,
	    spf_result_name(tx->spf.result), r->nsigs, word,
	    r->dmarc_result == DMARC_RESULT_FAIL ? " disposition=" : "",
	    r->dmarc_result == DMARC_RESULT_FAIL ? dis : "");
	if (r->dmarc_result == DMARC_RESULT_FAIL &&
	    conf->dmarc_policy != CONF_DMARC_TAG) {
		if (r->dmarc_disposition == DMARC_POLICY_REJECT &&
		    conf->dmarc_policy == CONF_DMARC_ENFORCE)
			err = DE_DMARC;
		else if (r->dmarc_disposition != DMARC_POLICY_NONE)
			tx->mp.evflags |= EF_QUARANTINE;
	}
	snprintf(tx->dmarc_domain, sizeof(tx->dmarc_domain), "%s",
	    r->dmarc_domain);
	/* a rule with dkim or dmarc (smtpd.conf line verdict_line) */
	if (!err && r->verdict != 0) {
		log_info("%08x: %s by the rule at line %d", tx->msgid,
		    r->verdict == MATCH_REJECT ? "rejected" : "deferred",
		    r->verdict_line);
		err = r->verdict == MATCH_REJECT ? DE_POLICY : DE_POLICY_DEFER;
	}
	tx->checks_done(s, err);
}

/*
 * An incoming Authentication-Results field (the whole field, LF-joined
 * lines): 1 when it must go (ours, or unreadable), 0 when it stays.
 */
int
smtp_checks_forged(const struct session *s, const char *field, size_t len)
{
	return authres_is_ours(field, len, session_hostname(s)) != 0;
}
