/*
 * smtp_parse.c -- SMTP command and parameter parsing, free of sessions.
 *
 * The session (smtp_session.c) decides what a command means in its
 * state; this file only decides whether the words are well-formed and
 * what they say.  Kept apart so that the unit tests and the fuzzer can
 * drive every branch with no daemon around.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "smtp_parse.h"

static const struct {
	const char	*name;
	enum smtp_cmd	 cmd;
} commands[] = {
	{ "HELO", CMD_HELO },		{ "EHLO", CMD_EHLO },
	{ "MAIL", CMD_MAIL },		{ "RCPT", CMD_RCPT },
	{ "DATA", CMD_DATA },		{ "BDAT", CMD_BDAT },
	{ "RSET", CMD_RSET },		{ "NOOP", CMD_NOOP },
	{ "QUIT", CMD_QUIT },		{ "VRFY", CMD_VRFY },
	{ "EXPN", CMD_EXPN },		{ "HELP", CMD_HELP },
	{ "STARTTLS", CMD_STARTTLS },	{ "AUTH", CMD_AUTH },
	{ "ETRN", CMD_ETRN },
	{ "SEND", CMD_OBSOLETE },	{ "SOML", CMD_OBSOLETE },
	{ "SAML", CMD_OBSOLETE },	{ "TURN", CMD_OBSOLETE },
};

enum smtp_cmd
smtp_parse_command(char *line, char **args)
{
	char	*sp;
	size_t	 i;

	*args = NULL;
	if ((sp = strchr(line, ' ')) != NULL) {
		*sp = '\0';
		*args = sp + 1;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcasecmp(line, commands[i].name) == 0)
			return commands[i].cmd;
	return CMD_UNKNOWN;
}

const char *
smtp_cmd_name(enum smtp_cmd cmd)
{
	size_t	i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].cmd == cmd)
			return commands[i].name;
	return "UNKNOWN";
}

/* split the parameters, copying them first: the caller's text stays */
static int
split_params(const char *rest, char *buf, size_t buflen,
    struct esmtp_param *params, char *reply, size_t replylen)
{
	int	n;

	if (strlen(rest) >= buflen) {
		snprintf(reply, replylen, "501 5.5.4 Parameters too long");
		return -1;
	}
	snprintf(buf, buflen, "%s", rest);
	if ((n = esmtp_parse_params(buf, params, ESMTP_PARAMS_MAX)) == -1) {
		snprintf(reply, replylen, "501 5.5.4 Syntax error in "
		    "parameters");
		return -1;
	}
	return n;
}

static int
unknown_param(const char *key, char *reply, size_t replylen)
{
	char	clean[32];
	size_t	i;

	/* the keyword is [A-Za-z0-9-] already; just bound it */
	for (i = 0; key[i] && i < sizeof(clean) - 1; i++)
		clean[i] = key[i];
	clean[i] = '\0';
	snprintf(reply, replylen, "555 5.5.4 Unsupported parameter %s",
	    clean);
	return -1;
}

static int
bad_value(const char *what, char *reply, size_t replylen)
{
	snprintf(reply, replylen, "501 5.5.4 Bad %s parameter", what);
	return -1;
}

/* 1*20DIGIT, no sign, no white space, fits in 64 bits */
static int
parse_number(const char *s, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;

	if (*s < '0' || *s > '9' || strlen(s) > 20)
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0)
		return -1;
	*out = v;
	return 0;
}

/* an xtext whose decoded form is printable ASCII (RFC 3461 4.4) */
static int
xtext_printable(const char *v, size_t maxdecoded)
{
	char	decoded[ENV_TEXT_MAX];
	int	n, i;

	if (maxdecoded >= sizeof(decoded))
		maxdecoded = sizeof(decoded) - 1;
	if ((n = xtext_decode(v, decoded, maxdecoded + 1)) <= 0)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)decoded[i] < 0x20 ||
		    (unsigned char)decoded[i] > 0x7e)
			return 0;
	return 1;
}

int
smtp_parse_mail_params(const char *rest, int esmtp,
    struct smtp_mail_params *mp, char *reply, size_t replylen)
{
	struct esmtp_param	 params[ESMTP_PARAMS_MAX];
	char			 buf[1024];
	int			 n, i, seen_body = 0, seen_ret = 0;
	int			 seen_auth = 0, seen_utf8 = 0, seen_rtls = 0;

	memset(mp, 0, sizeof(*mp));
	if ((n = split_params(rest, buf, sizeof(buf), params, reply,
	    replylen)) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		const char	*k = params[i].key, *v = params[i].value;

		if (!esmtp)
			return unknown_param(k, reply, replylen);
		if (strcasecmp(k, "SIZE") == 0) {
			if (mp->has_size || v == NULL ||
			    parse_number(v, &mp->size) == -1)
				return bad_value("SIZE", reply, replylen);
			mp->has_size = 1;
		} else if (strcasecmp(k, "BODY") == 0) {
			if (seen_body++ || v == NULL)
				return bad_value("BODY", reply, replylen);
			if (strcasecmp(v, "8BITMIME") == 0)
				mp->evflags |= EF_8BITMIME;
			else if (strcasecmp(v, "7BIT") != 0)
				return bad_value("BODY", reply, replylen);
		} else if (strcasecmp(k, "SMTPUTF8") == 0) {
			/* RFC 6531 3.4: no value */
			if (seen_utf8++ || v != NULL)
				return bad_value("SMTPUTF8", reply, replylen);
			mp->evflags |= EF_SMTPUTF8;
		} else if (strcasecmp(k, "REQUIRETLS") == 0) {
			/*
			 * RFC 8689 2: no value.  Whether the session may
			 * ask (only over TLS) is the session's to say.
			 */
			if (seen_rtls++ || v != NULL)
				return bad_value("REQUIRETLS", reply, replylen);
			mp->evflags |= EF_REQUIRETLS;
		} else if (strcasecmp(k, "RET") == 0) {
			if (seen_ret++ || v == NULL)
				return bad_value("RET", reply, replylen);
			if (strcasecmp(v, "FULL") == 0)
				mp->evflags |= EF_DSN_RET_FULL;
			else if (strcasecmp(v, "HDRS") == 0)
				mp->evflags |= EF_DSN_RET_HDRS;
			else
				return bad_value("RET", reply, replylen);
		} else if (strcasecmp(k, "ENVID") == 0) {
			if (mp->envid[0] || v == NULL ||
			    strlen(v) > SMTP_ENVID_MAX ||
			    !xtext_printable(v, SMTP_ENVID_MAX))
				return bad_value("ENVID", reply, replylen);
			snprintf(mp->envid, sizeof(mp->envid), "%s", v);
		} else if (strcasecmp(k, "AUTH") == 0) {
			/*
			 * RFC 4954 5: the submitter claimed by a client.  We
			 * never trust it (the session's own AUTH decides), but
			 * it must be well-formed: "<>" or an xtext mailbox.
			 */
			if (seen_auth++ || v == NULL ||
			    (strcmp(v, "<>") != 0 &&
			    !xtext_printable(v, 500)))
				return bad_value("AUTH", reply, replylen);
		} else
			return unknown_param(k, reply, replylen);
	}
	return 0;
}

int
smtp_parse_tls_required(const char *v, size_t len)
{
	/* tls-required = "TLS-Required:" [FWS] "No" CRLF */
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	return len == 2 && strncasecmp(v, "No", 2) == 0;
}

static int
parse_notify(const char *v, uint32_t *out)
{
	char	 buf[64], *tok, *save = NULL;
	uint32_t f = 0, bit;

	if (strlen(v) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", v);
	if (buf[0] == ',' || buf[0] == '\0' || buf[strlen(buf) - 1] == ',' ||
	    strstr(buf, ",,") != NULL)
		return -1;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(tok, "NEVER") == 0)
			bit = EF_NOTIFY_NEVER;
		else if (strcasecmp(tok, "SUCCESS") == 0)
			bit = EF_NOTIFY_SUCCESS;
		else if (strcasecmp(tok, "FAILURE") == 0)
			bit = EF_NOTIFY_FAILURE;
		else if (strcasecmp(tok, "DELAY") == 0)
			bit = EF_NOTIFY_DELAY;
		else
			return -1;
		if (f & bit)
			return -1;
		f |= bit;
	}
	/* RFC 3461 4.1: NEVER stands alone */
	if ((f & EF_NOTIFY_NEVER) && f != EF_NOTIFY_NEVER)
		return -1;
	*out = f;
	return 0;
}

int
smtp_parse_rcpt_params(const char *rest, int esmtp,
    struct smtp_rcpt_params *rp, char *reply, size_t replylen)
{
	struct esmtp_param	 params[ESMTP_PARAMS_MAX];
	char			 buf[1024];
	int			 n, i;

	memset(rp, 0, sizeof(*rp));
	if ((n = split_params(rest, buf, sizeof(buf), params, reply,
	    replylen)) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		const char	*k = params[i].key, *v = params[i].value;

		if (!esmtp)
			return unknown_param(k, reply, replylen);
		if (strcasecmp(k, "NOTIFY") == 0) {
			if (rp->notify || v == NULL ||
			    parse_notify(v, &rp->notify) == -1)
				return bad_value("NOTIFY", reply, replylen);
		} else if (strcasecmp(k, "ORCPT") == 0) {
			if (rp->orcpt[0] || v == NULL || !orcpt_valid(v) ||
			    strlen(v) >= sizeof(rp->orcpt))
				return bad_value("ORCPT", reply, replylen);
			snprintf(rp->orcpt, sizeof(rp->orcpt), "%s", v);
		} else
			return unknown_param(k, reply, replylen);
	}
	return 0;
}

int
smtp_parse_bdat(const char *args, uint64_t *size, int *last)
{
	char	 buf[64], *sp;

	*last = 0;
	if (args == NULL || strlen(args) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", args);
	if ((sp = strchr(buf, ' ')) != NULL) {
		*sp++ = '\0';
		if (strcasecmp(sp, "LAST") != 0)
			return -1;
		*last = 1;
	}
	return parse_number(buf, size);
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_value(unsigned char c)
{
	const char	*p;

	if (c == '\0' || (p = strchr(b64chars, c)) == NULL)
		return -1;
	return (int)(p - b64chars);
}

int
smtp_b64_decode(const char *in, unsigned char *out, size_t outlen)
{
	size_t	len = strlen(in), i, n = 0;
	int	v[4], k, pad;

	if (len % 4 != 0 || outlen == 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		pad = 0;
		for (k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad || (v[k] = b64_value((unsigned char)in[i + k]))
			    == -1)
				return -1;
		}
		/* RFC 4648 3.5: the bits the padding hides must be zero, so
		 * that one octet string has one encoding */
		if ((pad == 2 && (v[1] & 0xf) != 0) ||
		    (pad == 1 && (v[2] & 0x3) != 0))
			return -1;
		if (n + 3 - (size_t)pad >= outlen)
			return -1;
		out[n++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[n++] = (unsigned char)((v[1] & 0xf) << 4 | v[2] >> 2);
		if (pad < 1)
			out[n++] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
	}
	out[n] = '\0';
	return (int)n;
}

int
smtp_b64_encode(const unsigned char *in, size_t inlen, char *out,
    size_t outlen)
{
	size_t	i, n = 0;
	uint32_t v;

	if ((inlen + 2) / 3 * 4 >= outlen)
		return -1;
	for (i = 0; i < inlen; i += 3) {
		v = (uint32_t)in[i] << 16;
		if (i + 1 < inlen)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < inlen)
			v |= in[i + 2];
		out[n++] = b64chars[v >> 18 & 0x3f];
		out[n++] = b64chars[v >> 12 & 0x3f];
		out[n++] = i + 1 < inlen ? b64chars[v >> 6 & 0x3f] : '=';
		out[n++] = i + 2 < inlen ? b64chars[v & 0x3f] : '=';
	}
	out[n] = '\0';
	return (int)n;
}

/* a SASL string: non-empty, no NUL (split already), no control chars */
static int
sasl_copy(const unsigned char *p, size_t len, char *out, size_t outlen,
    int allow_empty)
{
	size_t	i;

	if ((len == 0 && !allow_empty) || len >= outlen)
		return -1;
	for (i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return -1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

int
smtp_parse_sasl_plain(const unsigned char *msg, size_t len, char *user,
    size_t userlen, char *pass, size_t passlen)
{
	const unsigned char	*nul1, *nul2;
	char			 authz[256];
	size_t			 zlen, ulen;

	if ((nul1 = memchr(msg, '\0', len)) == NULL)
		return -1;
	zlen = (size_t)(nul1 - msg);
	if ((nul2 = memchr(nul1 + 1, '\0', len - zlen - 1)) == NULL)
		return -1;
	ulen = (size_t)(nul2 - nul1 - 1);
	if (sasl_copy(msg, zlen, authz, sizeof(authz), 1) == -1 ||
	    sasl_copy(nul1 + 1, ulen, user, userlen, 0) == -1 ||
	    sasl_copy(nul2 + 1, len - zlen - ulen - 2, pass, passlen, 0) == -1)
		return -1;
	if (authz[0] != '\0' && strcmp(authz, user) != 0)
		return -1;
	return 0;
}
