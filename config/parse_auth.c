/*
 * parse_auth.c -- the mail authentication statements of smtpd.conf:
 *
 *	dkim sign <table>
 *	dnsbl "zone[=pattern...][*weight]" ... [threshold N]
 *	dmarc policy enforce | quarantine | tag
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

int
parse_dmarc(struct parser *p, const char *keyword, int line)
{
	struct token	*t = tok_next(p);

	(void)keyword;
	(void)line;
	if (!tok_is_keyword(t, "policy"))
		return parse_unexpected(p, t, "policy after dmarc");
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
