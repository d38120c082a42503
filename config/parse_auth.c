/*
 * parse_auth.c -- the mail authentication statements of smtpd.conf:
 *
 *	dkim sign <table>
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

#include "config.h"
#include "parse.h"

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
