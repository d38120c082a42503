/*
 * rules.c -- which "match" rule applies to a recipient.
 *
 * Rules are tried in the order they are written; the first whose every
 * criterion holds decides (an action, or reject).  No match at all means
 * the recipient is not ours to accept: relaying denied.
 *
 * "from rdns" uses only a forward-confirmed client name: a PTR record
 * alone is written by whoever owns the address block and proves
 * nothing about the name.
 *
 * Literal values mean what smtpd.conf(5) says they mean, as tables do:
 * "*.example.org" after "for domain" is every subdomain, "@example.org"
 * after "mail-from" every sender of that domain.  "tag" is the tag of
 * the listener the mail came in on; local submission and bounces come
 * in on none.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "log.h"
#include "lookup.h"
#include "proc.h"

static int
client_is_local(const struct lka_rcpt_req *req)
{
	/* addresses found by alias expansion count as submitted here */
	if (req->flags & (SF_LOCAL | SF_INTERNAL))
		return 1;
	return addr_in_cidr(&req->client, "127.0.0.0/8") ||
	    addr_in_cidr(&req->client, "::1/128");
}

int
rule_is_local_domain(const char *domain)
{
	if (domain[0] == '\0' || strcasecmp(domain, "localhost") == 0 ||
	    strcasecmp(domain, "localhost.localdomain") == 0)
		return 1;
	if (strcasecmp(domain, conf->hostname) == 0)
		return 1;
	if (conf->mailname[0] && strcasecmp(domain, conf->mailname) == 0)
		return 1;
	return 0;
}

/*
 * Set when a table could not answer while a rule was tried (a database
 * that is down, or an answer not in yet: table.h): that rule cannot be
 * decided, and neither can the rules after it.
 */
static int	table_failed;

static int
table_said(int rc)
{
	if (rc == TABLE_ERROR)
		table_failed = 1;
	return rc == TABLE_FOUND;
}

/* a literal or <table> value against a string key */
static int
crit_match_string(const struct match_crit *c, enum table_service service,
    const char *key)
{
	struct table	*t;

	if (!c->is_table)
		return strcasecmp(c->value, key) == 0;
	if ((t = config_find_table(conf, c->value)) == NULL)
		return 0;
	return table_said(table_match_as(t, service, key));
}

static int
crit_match_addr(const struct match_crit *c, const struct sockaddr_storage *ss)
{
	struct table	*t;

	if (!c->is_table)
		return addr_in_cidr(ss, c->value);
	if ((t = config_find_table(conf, c->value)) == NULL)
		return 0;
	return table_said(table_match_netaddr(t, ss));
}

/* a host name against a literal or <table>; "*.example.org" wildcards */
static int
crit_match_host(const struct match_crit *c, const char *name)
{
	struct table	*t;
	const char	*dot;

	if (c->is_table) {
		if ((t = config_find_table(conf, c->value)) == NULL)
			return 0;
		return table_said(table_match_domain(t, name));
	}
	if (strcasecmp(c->value, name) == 0)
		return 1;
	if (strncmp(c->value, "*.", 2) != 0)
		return 0;
	for (dot = strchr(name, '.'); dot != NULL; dot = strchr(dot + 1, '.'))
		if (strcasecmp(dot, c->value + 1) == 0)
			return 1;
	return 0;
}

static int
match_rdns(const struct match *m, const struct lka_rdns *rdns)
{
	if (rdns == NULL || rdns->status != PROTO_OK || !rdns->fcrdns ||
	    rdns->name[0] == '\0')
		return 0;
	if (m->from_crit.value[0] == '\0')
		return 1;
	return crit_match_host(&m->from_crit, rdns->name);
}

static int
match_from(const struct match *m, const struct lka_rcpt_req *req,
    const struct lka_rdns *rdns)
{
	int	r;

	switch (m->from) {
	case MATCH_FROM_ANY:
		r = 1;
		break;
	case MATCH_FROM_LOCAL:
		r = client_is_local(req);
		break;
	case MATCH_FROM_SOCKET:
		r = (req->flags & SF_LOCAL) != 0;
		break;
	case MATCH_FROM_SRC:
		r = crit_match_addr(&m->from_crit, &req->client);
		break;
	case MATCH_FROM_AUTH:
		r = (req->flags & SF_AUTH) != 0;
		if (r && m->from_crit.value[0])
			r = crit_match_string(&m->from_crit, TS_STRING,
			    req->authname);
		break;
	case MATCH_FROM_RDNS:
		r = match_rdns(m, rdns);
		break;
	default:
		r = 0;
		break;
	}
	return m->from_crit.negate ? !r : r;
}

/* a shared table: its query does wildcards itself, in one question */
static int
crit_remote(const struct match_crit *c)
{
	struct table	*t;

	return (t = config_find_table(conf, c->value)) != NULL &&
	    table_is_remote(t);
}

static int
match_for(const struct match *m, const struct lka_rcpt_req *req)
{
	char	addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	int	r;

	switch (m->for_) {
	case MATCH_FOR_ANY:
		r = 1;
		break;
	case MATCH_FOR_LOCAL:
		r = rule_is_local_domain(req->rcpt.domain);
		break;
	case MATCH_FOR_DOMAIN:
		if (!m->for_crit.is_table) {
			r = req->rcpt.domain[0] != '\0' &&
			    crit_match_host(&m->for_crit, req->rcpt.domain);
			break;
		}
		r = crit_match_string(&m->for_crit, TS_DOMAIN,
		    req->rcpt.domain);
		if (!r && m->for_crit.is_table && req->rcpt.domain[0] &&
		    !table_failed && !crit_remote(&m->for_crit)) {
			/* "*.example.org" style wildcard entries */
			const char *dot = strchr(req->rcpt.domain, '.');

			while (!r && dot != NULL) {
				char wild[ADDR_DOMAIN_MAX + 2];

				snprintf(wild, sizeof(wild), "*%s", dot);
				r = crit_match_string(&m->for_crit,
				    TS_DOMAIN, wild);
				dot = strchr(dot + 1, '.');
			}
		}
		break;
	case MATCH_FOR_RCPT:
		addr_to_string(&req->rcpt, addr, sizeof(addr));
		r = crit_match_string(&m->for_crit, TS_MAILADDR, addr);
		break;
	default:
		r = 0;
	}
	return m->for_crit.negate ? !r : r;
}

/* the sender against an address, "@domain", or a table of either */
static int
match_mail_from(const struct match_crit *c, const struct mailaddr *from)
{
	char	addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char	at[ADDR_DOMAIN_MAX + 2];

	addr_to_string(from, addr, sizeof(addr));
	if (crit_match_string(c, TS_MAILADDR, addr))
		return 1;
	if (from->domain[0] == '\0' || table_failed)
		return 0;		/* <> has no domain */
	snprintf(at, sizeof(at), "@%s", from->domain);
	return crit_match_string(c, TS_MAILADDR, at);
}

/* the tag of the listener the request came in on, NULL if none */
static const char *
request_tag(const struct lka_rcpt_req *req)
{
	struct listener	*l;
	uint32_t	 i = 0;

	if (req->flags & SF_LOCAL)
		return NULL;
	TAILQ_FOREACH(l, &conf->listeners, entry)
		if (i++ == req->listener)
			return l->tag[0] != '\0' ? l->tag : NULL;
	return NULL;
}

static int
crit_static(const struct match_crit *c)
{
	return !c->set || !c->is_table;
}

/*
 * Whether the rules that decided on `m' (it, and every rule before it
 * that did not match) looked at nothing but the request and the
 * configuration: no table, which may be rebuilt under a running
 * daemon, and no reverse DNS.
 */
int
rule_decided_statically(const struct match *m)
{
	const struct match	*r;

	TAILQ_FOREACH(r, &conf->matches, entry) {
		if (r->from == MATCH_FROM_RDNS || !crit_static(&r->from_crit) ||
		    !crit_static(&r->for_crit) || !crit_static(&r->auth) ||
		    !crit_static(&r->mail_from) || !crit_static(&r->helo) ||
		    !crit_static(&r->tag) || r->spf.set || r->dnsbl.set)
			return 0;
		if (r == m)
			return 1;
	}
	return 0;
}

/*
 * A trusted client, as Postfix's mynetworks: one some rule names with
 * "from src" (not negated).  The inbound checks skip its mail.
 */
int
rule_client_trusted(const struct sockaddr_storage *ss)
{
	const struct match	*m;

	TAILQ_FOREACH(m, &conf->matches, entry)
		if (m->from == MATCH_FROM_SRC && !m->from_crit.negate &&
		    crit_match_addr(&m->from_crit, ss))
			return 1;
	return 0;
}

int
rule_need_rdns(void)
{
	struct match	*m;

	TAILQ_FOREACH(m, &conf->matches, entry)
		if (m->from == MATCH_FROM_RDNS)
			return 1;
	return 0;
}

int
rule_find(const struct lka_rcpt_req *req, struct match **out)
{
	return rule_find_rdns(req, NULL, out);
}

/* every criterion of m but dkim and dmarc holds for req */
static int
rule_holds(const struct match *m, const struct lka_rcpt_req *req,
    const struct lka_rdns *rdns)
{
	if (!match_from(m, req, rdns) || !match_for(m, req))
		return 0;
	if (m->auth.set) {
		int r = (req->flags & SF_AUTH) != 0;

		if (r && m->auth.value[0])
			r = crit_match_string(&m->auth, TS_STRING,
			    req->authname);
		if (m->auth.negate ? r : !r)
			return 0;
	}
	if (m->mail_from.set) {
		int r = match_mail_from(&m->mail_from, &req->mailfrom);

		if (m->mail_from.negate ? r : !r)
			return 0;
	}
	if (m->tls.set) {
		int r = (req->flags & SF_TLS) != 0;

		if (m->tls.negate ? r : !r)
			return 0;
	}
	if (m->helo.set) {
		int r = crit_match_string(&m->helo, TS_STRING, req->helo);

		if (m->helo.negate ? r : !r)
			return 0;
	}
	if (m->tag.set) {
		const char	*tag = request_tag(req);
		int		 r = tag != NULL &&
		    crit_match_string(&m->tag, TS_STRING, tag);

		if (m->tag.negate ? r : !r)
			return 0;
	}
	/* the checks' results: false when the checks did not run */
	if (m->spf.set) {
		int r = (req->flags & SF_CHECKED) &&
		    req->spf == atoi(m->spf.value);

		if (m->spf.negate ? r : !r)
			return 0;
	}
	if (m->dnsbl.set) {
		int r = (req->flags & SF_DNSBL) != 0;

		if (m->dnsbl.negate ? r : !r)
			return 0;
	}
	return 1;
}

int
rule_find_rdns(const struct lka_rcpt_req *req, const struct lka_rdns *rdns,
    struct match **out)
{
	struct match	*m;

	int		 holds;

	*out = NULL;
	TAILQ_FOREACH(m, &conf->matches, entry) {
		/* the message's rules wait for the end of data */
		if (m->dkim.set || m->dmarc.set)
			continue;
		table_failed = 0;
		holds = rule_holds(m, req, rdns);
		if (table_failed) {
			log_debug("rule at line %d: a table could not answer",
			    m->line);
			return -1;
		}
		if (!holds)
			continue;
		*out = m;
		return 1;
	}
	return 0;
}

/*
 * The rules with "dkim" or "dmarc": tried at the end of data, in their
 * order, on the whole message (they are "for any", the parser sees to
 * it), when lookup has verified its signatures and evaluated DMARC.
 * dkim RESULT holds when some signature has that result ("none": the
 * message has none).  MATCH_REJECT, MATCH_DEFER, or 0 when none holds;
 * *line says which rule.
 */
int
rule_message(const struct lka_rcpt_req *req, const int *dkim, size_t ndkim,
    int dmarc, int *line)
{
	const struct match	*m;
	size_t			 i;
	int			 want, r;

	TAILQ_FOREACH(m, &conf->matches, entry) {
		if (!m->dkim.set && !m->dmarc.set)
			continue;
		if (!rule_holds(m, req, NULL))
			continue;
		if (m->dkim.set) {
			want = atoi(m->dkim.value);
			r = want == 0 && ndkim == 0;
			for (i = 0; i < ndkim && !r; i++)
				r = dkim[i] == want;
			if (m->dkim.negate ? r : !r)
				continue;
		}
		if (m->dmarc.set) {
			r = dmarc == atoi(m->dmarc.value);
			if (m->dmarc.negate ? r : !r)
				continue;
		}
		*line = m->line;
		return m->reject;
	}
	return 0;
}
