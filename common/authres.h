/*
 * authres.h -- Authentication-Results (RFC 8601): build the one header
 * we add to a received message, and tell whether an incoming one claims
 * our authserv-id (such forgeries are removed, RFC 8601 5).
 *
 * Shared (common/): the smtp worker builds the header at end of data
 * from the results lookup sends it and drops forged ones while it reads
 * the message's header; tests and tools use the same code.
 *
 * Building:
 *	struct authres ar;
 *	authres_begin(&ar, "mx.example.org");
 *	authres_method(&ar, "spf", "pass", NULL);
 *	authres_prop(&ar, "smtp.mailfrom", "alice@example.com");
 *	...
 *	hdr = authres_end(&ar, &len);
 * gives "Authentication-Results: mx.example.org;\n\tspf=pass ...\n":
 * LF line ends (the spool's), folded with "\n\t" so no line passes 78
 * columns unless a single word is longer, each method on a line of its
 * own, values quoted (RFC 2045 quoted-string) when they are neither a
 * token nor an address or domain, control characters replaced by '?'
 * (bytes from 0x80 are kept: UTF-8 under RFC 6532), comments escaped.
 */
#ifndef POSTHASTE_AUTHRES_H
#define POSTHASTE_AUTHRES_H

#include <stddef.h>

#define AUTHRES_MAX	4096	/* the whole header, folded */
#define AUTHRES_COLS	78	/* RFC 5322 2.1.1 SHOULD */

struct authres {
	char	buf[AUTHRES_MAX];
	size_t	len;
	size_t	col;		/* columns used on the current line */
	int	nmethods;
	int	overflow;	/* did not fit: authres_end() says NULL */
};

void	authres_begin(struct authres *, const char *authserv_id);
/*
 * A resinfo: "method=result", with reason="..." when reason is not
 * NULL.  method and result are keywords from the IANA registry (the
 * caller's constants; not checked beyond being a token).
 */
void	authres_method(struct authres *, const char *method,
	    const char *result, const char *reason);
/* a property of the current method: "ptype.property=value" */
void	authres_prop(struct authres *, const char *name, const char *value);
/* a comment after what came before: "(text)", escaped */
void	authres_comment(struct authres *, const char *text);
/*
 * The finished header, NUL-terminated, "\n" at the end, and its length;
 * "; none" when no method was added (RFC 8601 2.2 no-result).  NULL when
 * it did not fit in AUTHRES_MAX (a caller bug or absurd input: add no
 * header then, and log).
 */
const char *authres_end(struct authres *, size_t *len);

/*
 * Shorthands for what Posthaste reports (each adds one method; NULL or
 * "" arguments are left out):
 *	spf=RESULT smtp.mailfrom=ADDR smtp.helo=HELO
 *	dkim=RESULT header.d=D header.s=S header.b=FIRST-8-OF-B
 *	dmarc=RESULT (p=POLICY dis=DISPOSITION) header.from=DOMAIN
 *	iprev=RESULT policy.iprev=ADDR (NAME)
 *	dnsbl=RESULT (zone list hit) policy.ip=ADDR  (Posthaste's own
 *	    method name, not registered: RFC 8601 2.7.6 lets receivers
 *	    ignore unknown methods)
 */
void	authres_spf(struct authres *, const char *result, const char *mailfrom,
	    const char *helo);
void	authres_dkim(struct authres *, const char *result, const char *d,
	    const char *s, const char *b);
void	authres_dmarc(struct authres *, const char *result, const char *policy,
	    const char *disposition, const char *from_domain);
void	authres_iprev(struct authres *, const char *result, const char *ip,
	    const char *name);
void	authres_dnsbl(struct authres *, const char *result, const char *zones,
	    const char *ip);

/*
 * The authserv-id of an incoming Authentication-Results header: hdr is
 * the field (with or without its "Authentication-Results:" name; folded
 * lines, CRLF or LF, allowed), len its length.  CFWS (white space, folds,
 * nested comments with quoted-pairs) is skipped; the id is a token or a
 * quoted-string (unescaped into id).  0, or -1 when the field is
 * malformed before the id ends (unclosed comment or quote, no id, a NUL,
 * or id too small).
 */
int	authres_parse_id(const char *hdr, size_t len, char *id, size_t idlen);

/*
 * Is this header ours?  1 when its authserv-id equals ours
 * (case-insensitive), 0 when it is someone else's, -1 when it is
 * malformed: its claim cannot be told, and the smtp worker removes it
 * too (a header we cannot parse is no use to anyone downstream who
 * trusts our id, and may be crafted to confuse them).
 */
int	authres_is_ours(const char *hdr, size_t len, const char *ours);

#endif
