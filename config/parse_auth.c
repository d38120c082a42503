/*
 * parse_auth.c -- the mail authentication statements of smtpd.conf:
 *
 *	dkim sign <table>
 *	dnsbl "zone[=pattern...][*weight]" ... [threshold N]
 *	dmarc policy enforce | quarantine | tag
 *	dmarc reports from "ADDRESS" [org "NAME"]
 *	tlsrpt reports from "ADDRESS" [org "NAME"]
 *
 * The table maps a signing domain to its keys, "selector:keyfile",
 * several separated by commas (an RSA and an Ed25519 key side by side):
 *
 *	example.org	rsa2026:/etc/posthaste/dkim/example.org.rsa.pem,
 *			ed2026:/etc/posthaste/dkim/example.org.ed25519.pem
 *
 * Its entries are checked when the parent loads them for the keys
 * process (smtpd/dkim_keys.c), at start and at "smtpctl update table":
 * an entry that is wrong is logged with the table's name and skipped.
 */
#include <string.h>

#include <stdio.h>

#include "addr.h"
#include "config.h"
#include "parse.h"
#include "lookup/dnsbl.h"

int
parse_dkim(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config	*conf = p->conf;
	struct token		*t = tok_next(p);

	(void)keyword;
	if (!tok_is_keyword(t, "sign"))
		return parse_unexpected(p, t, "sign after dkim");
	if (conf->dkim_sign_table[0] != '\0')
		return parse_error(p, line, "dkim sign given twice");
	return conf_get_table_ref(p, conf->dkim_sign_table,
	    sizeof(conf->dkim_sign_table), 1, "<table> after dkim sign");
}

/* the list specs are checked by the code that will use them */
int
parse_dnsbl(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config	*conf = p->conf;
	struct dnsbl_list	 l;
	struct token		*t;
	char			 err[128];

	(void)keyword;
	if (conf->ndnsbl > 0)
		return parse_error(p, line, "dnsbl given twice: name every "
		    "list in one statement");
	while (!tok_is_end(tok_peek(p))) {
		if (tok_is_keyword(tok_peek(p), "threshold")) {
			tok_next(p);
			t = tok_next(p);
			if (t->type != TOK_WORD || sscanf(t->text, "%d",
			    &conf->dnsbl_threshold) != 1 ||
			    conf->dnsbl_threshold < 1 ||
			    conf->dnsbl_threshold > 1000)
				return parse_error(p, t->line, "dnsbl threshold: "
				    "a number from 1 to 1000");
			continue;
		}
		if (conf->ndnsbl == CONF_MAX_DNSBL)
			return parse_error(p, line, "at most %d DNS lists",
			    CONF_MAX_DNSBL);
		if (conf_get_value(p, "DNS list", &t) == -1 ||
		    conf_copy_value(p, t, conf->dnsbl[conf->ndnsbl],
		    sizeof(conf->dnsbl[0]), "DNS list") == -1)
			return -1;
		if (dnsbl_parse_list(conf->dnsbl[conf->ndnsbl], &l, err,
		    sizeof(err)) == -1)
			return parse_error(p, t->line, "dnsbl \"%s\": %s",
			    conf->dnsbl[conf->ndnsbl], err);
		conf->ndnsbl++;
	}
	if (conf->ndnsbl == 0)
		return parse_error(p, line, "dnsbl: no list named");
	return 0;
}

/*
 * Aggregate reports (DMARC, TLS-RPT) are mail to third parties (the rua=
 * addresses of the domains we receive from or deliver to): off unless
 * "KEYWORD reports from ADDRESS [org NAME]" names the sender.  The
 * address is the report's From: and contact, and its domain our name
 * in the reports (the file name, the Subject); the org name defaults
 * to the host name.
 */
static int
parse_reports_from(struct parser *p, int line, const char *kw, char *from,
    size_t fromlen, char *org, size_t orglen)
{
	struct mailaddr		 a;
	struct token		*t;
	const char		*c;

	if (from[0] != '\0')
		return parse_error(p, line, "%s reports given twice", kw);
	if (!tok_is_keyword(tok_next(p), "from"))
		return parse_error(p, line, "%s reports: from \"ADDRESS\" "
		    "expected", kw);
	if (conf_get_value(p, "address after reports from", &t) == -1 ||
	    conf_copy_value(p, t, from, fromlen, "address") == -1)
		return -1;
	if (addr_parse_mailbox(from, &a, 0) != 0 ||
	    a.user[0] == '\0' || strchr(a.domain, '.') == NULL ||
	    a.domain[0] == '[')
		return parse_error(p, t->line, "%s reports from \"%s\": "
		    "not a user@domain address", kw, from);
	if (!tok_is_keyword(tok_peek(p), "org"))
		return 0;
	tok_next(p);
	if (conf_get_value(p, "name after org", &t) == -1 ||
	    conf_copy_value(p, t, org, orglen, "org name") == -1)
		return -1;
	/* it goes into the report and the mail's text: ASCII */
	for (c = org; *c != '\0'; c++)
		if (*c < ' ' || *c > '~')
			return parse_error(p, t->line, "%s reports org: "
			    "printable ASCII only", kw);
	if (org[0] == '\0')
		return parse_error(p, t->line, "%s reports org: empty", kw);
	return 0;
}

/* "tlsrpt reports from ADDRESS [org NAME]": TLS-RPT (RFC 8460) */
int
parse_tlsrpt(struct parser *p, const char *keyword, int line)
{
	struct token	*t = tok_next(p);

	if (!tok_is_keyword(t, "reports"))
		return parse_unexpected(p, t, "reports after tlsrpt");
	return parse_reports_from(p, line, keyword,
	    p->conf->tlsrpt_report_from, sizeof(p->conf->tlsrpt_report_from),
	    p->conf->tlsrpt_report_org, sizeof(p->conf->tlsrpt_report_org));
}

int
parse_dmarc(struct parser *p, const char *keyword, int line)
{
	struct token	*t = tok_next(p);

	if (tok_is_keyword(t, "reports"))
		return parse_reports_from(p, line, keyword,
		    p->conf->dmarc_report_from,
		    sizeof(p->conf->dmarc_report_from),
		    p->conf->dmarc_report_org,
		    sizeof(p->conf->dmarc_report_org));
	if (!tok_is_keyword(t, "policy"))
		return parse_unexpected(p, t, "policy or reports after dmarc");
	t = tok_next(p);
	if (tok_is_keyword(t, "enforce"))
		p->conf->dmarc_policy = CONF_DMARC_ENFORCE;
	else if (tok_is_keyword(t, "quarantine"))
		p->conf->dmarc_policy = CONF_DMARC_QUARANTINE;
	else if (tok_is_keyword(t, "tag"))
		p->conf->dmarc_policy = CONF_DMARC_TAG;
	else
		return parse_unexpected(p, t, "enforce, quarantine or tag");
	return 0;
}
