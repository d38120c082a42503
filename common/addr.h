/*
 * addr.h -- mail addresses and the SMTP command arguments that carry them.
 *
 * Everything here parses untrusted network input: every function
 * validates fully and reports failure rather than guessing.
 */
#ifndef POSTHASTE_ADDR_H
#define POSTHASTE_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1, octets */
#define ADDR_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2, octets */
#define ADDR_PATH_MAX	256	/* RFC 5321 4.5.3.1.3, incl. < > */

struct mailaddr {
	/*
	 * Local part exactly as written on the wire (a quoted local part
	 * keeps its quotes and backslashes, so "a@b"@host can never be
	 * mistaken for a@b).  Empty user and domain = the null path <>.
	 */
	char	user[ADDR_LOCAL_MAX + 1];
	char	domain[ADDR_DOMAIN_MAX + 1];	/* lower-cased if ASCII */
};

/* flags for addr_parse_path() */
#define ADDR_ALLOW_NULL		0x01	/* accept <> (MAIL FROM) */
#define ADDR_ALLOW_UTF8		0x02	/* RFC 6531 SMTPUTF8 in effect */
#define ADDR_ALLOW_NODOMAIN	0x04	/* accept <postmaster> (RCPT TO) */

/* results */
#define ADDR_OK			0
#define ADDR_ERR_SYNTAX		-1	/* malformed path */
#define ADDR_ERR_TOOLONG	-2	/* a length limit exceeded */
#define ADDR_ERR_UTF8		-3	/* 8-bit without ADDR_ALLOW_UTF8 */

/*
 * Parse the path at the start of `s' (after "MAIL FROM:" / "RCPT TO:",
 * leading spaces allowed): "<local@domain>", "<>" (if allowed),
 * "<@relay1,@relay2:local@domain>" (the source route is accepted and
 * ignored, RFC 5321 4.1.1.3 / C.).  Domains are RFC 5321 Domain (LDH
 * labels) or address literals [1.2.3.4] / [IPv6:...]; with
 * ADDR_ALLOW_UTF8, U-labels too.  On success *rest points after '>'
 * (to the ESMTP parameters, maybe preceded by spaces).
 */
int	addr_parse_path(const char *s, struct mailaddr *out, int flags,
	    const char **rest);

/* Parse a bare "local@domain" (config files, tables, aliases). */
int	addr_parse_mailbox(const char *s, struct mailaddr *out, int flags);

/* "user@domain", "" for the null path, "user" without a domain */
int	addr_to_string(const struct mailaddr *, char *buf, size_t len);

/* true when the local part is a plain dot-atom (no quotes, no '%', '!',
 * '@', no route): only such addresses may be resolved to local users */
int	addr_local_is_plain(const struct mailaddr *);

/* Strip "+detail" (returned in detail, may be NULL) from a local part. */
void	addr_split_subaddress(const char *user, char *base, size_t baselen,
	    char *detail, size_t detaillen);

/* ESMTP parameters, RFC 5321 4.1.2: esmtp-keyword ["=" esmtp-value] */
#define ESMTP_PARAMS_MAX	16
struct esmtp_param {
	const char	*key;		/* points into the caller's buffer */
	const char	*value;		/* NULL when absent */
};

/*
 * Split `s' (modified in place) into parameters.  Returns the number
 * found, or -1 on a syntax error (bad keyword or value characters,
 * more than max).
 */
int	esmtp_parse_params(char *s, struct esmtp_param *params, size_t max);

/* RFC 3461 4: xtext.  Return decoded/encoded length or -1. */
int	xtext_decode(const char *in, char *out, size_t outlen);
int	xtext_encode(const char *in, char *out, size_t outlen);

/* RFC 3461 4.2: ORCPT addr-type ";" xtext, e.g. "rfc822;a+40b". */
int	orcpt_valid(const char *value);
/* RFC 6533 3: utf-8-addr-xtext or -unitext, \x{HEXPOINT} escapes. */
int	utf8_addr_xtext_valid(const char *value);

/* Validate a domain name (LDH, or address literal); flags as above. */
int	domain_valid(const char *domain, int flags);

/* UTF-8 well-formedness (no overlongs, no surrogates). */
int	utf8_valid(const char *s, size_t len);

/* is the address inside a network ("192.0.2.0/24", "2001:db8::/32")? */
struct sockaddr_storage;
int	addr_in_cidr(const struct sockaddr_storage *, const char *cidr);

#endif
