/*
 * smtp_parse.h -- the pure parsing half of the SMTP server: command
 * verbs, MAIL/RCPT parameters, BDAT arguments, base64 for AUTH.
 *
 * Nothing here touches a session, the network or the configuration, so
 * every function can be unit-tested and fuzzed on its own.  Every input
 * is hostile; every function validates fully and says why it refused,
 * as the SMTP reply the session should send.
 */
#ifndef POSTHASTE_SMTP_PARSE_H
#define POSTHASTE_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

enum smtp_cmd {
	CMD_UNKNOWN,
	CMD_HELO,
	CMD_EHLO,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_BDAT,
	CMD_RSET,
	CMD_NOOP,
	CMD_QUIT,
	CMD_VRFY,
	CMD_EXPN,
	CMD_HELP,
	CMD_STARTTLS,
	CMD_AUTH,
	CMD_ETRN,
	CMD_OBSOLETE,		/* SEND, SOML, SAML, TURN: 502 */
};

/*
 * Split a command line (modified in place) into its verb and arguments.
 * *args points past the single space after the verb (NULL when there is
 * none); the verb is matched case-insensitively.
 */
enum smtp_cmd	smtp_parse_command(char *line, char **args);
const char	*smtp_cmd_name(enum smtp_cmd);

#define SMTP_REPLY_MAX	128	/* room for the error replies below */
#define SMTP_ENVID_MAX	100	/* RFC 3461 4.4 */

/* what MAIL FROM parameters asked for */
struct smtp_mail_params {
	uint32_t	evflags;	/* EF_8BITMIME, EF_SMTPUTF8, EF_DSN_RET_*,
					 * EF_REQUIRETLS */
	int		has_size;
	uint64_t	size;		/* SIZE=, when has_size */
	char		envid[SMTP_ENVID_MAX + 1];	/* as given (xtext) */
};

/* what RCPT TO parameters asked for */
struct smtp_rcpt_params {
	uint32_t	notify;		/* EF_NOTIFY_* */
	char		orcpt[ENV_TEXT_MAX];	/* as given */
};

/*
 * The parameters after the path, `esmtp' nonzero when the session said
 * EHLO (after HELO no parameter is allowed, RFC 1869 6).  Returns 0, or
 * -1 with the reply (501 bad value, 555 unknown parameter) in reply.
 */
int	smtp_parse_mail_params(const char *rest, int esmtp,
	    struct smtp_mail_params *, char *reply, size_t replylen);
int	smtp_parse_rcpt_params(const char *rest, int esmtp,
	    struct smtp_rcpt_params *, char *reply, size_t replylen);

/*
 * RFC 8689 3: the value of a "TLS-Required" header field (what follows
 * the colon, continuation lines joined, no line ends): 1 when it is
 * "No" (any case, white space around it), 0 for anything else.
 */
int	smtp_parse_tls_required(const char *value, size_t len);

/* "BDAT <size> [LAST]" arguments; -1 on a syntax error */
int	smtp_parse_bdat(const char *args, uint64_t *size, int *last);

/*
 * base64 (RFC 4648, padding required, no white space).  decode returns
 * the decoded length (out NUL-terminated, so outlen must leave room) or
 * -1; encode returns the encoded length or -1 when out is too small.
 */
int	smtp_b64_decode(const char *in, unsigned char *out, size_t outlen);
int	smtp_b64_encode(const unsigned char *in, size_t inlen, char *out,
	    size_t outlen);

/*
 * SASL PLAIN message "authzid NUL authcid NUL passwd" (RFC 4616).  An
 * authzid, if any, must equal authcid (no proxy authorisation here).
 */
int	smtp_parse_sasl_plain(const unsigned char *msg, size_t len,
	    char *user, size_t userlen, char *pass, size_t passlen);

#endif
