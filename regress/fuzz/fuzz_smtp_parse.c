/*
 * fuzz_smtp_parse.c -- libFuzzer harness for smtp/smtp_parse.c: the
 * command splitter, MAIL/RCPT parameters, BDAT arguments, base64,
 * SASL PLAIN and a TLS-Required value, all fed the same hostile line.
 *
 * Beyond "does not crash", what is accepted is checked against the
 * promises: refusals carry a 501 or 555 reply, accepted values fit
 * their fields, base64 round-trips, SASL names carry no controls.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "smtp_parse.h"



static void
check_reply(int rc, const char *reply)
{
	if (rc == 0)
		return;
	CHECK(rc == -1);
	CHECK(strncmp(reply, "501 5.5.4 ", 10) == 0 ||
	    strncmp(reply, "555 5.5.4 ", 10) == 0);
}

static void
fuzz_params(const char *s)
{
	struct smtp_mail_params	mp;
	struct smtp_rcpt_params	rp;
	char			reply[SMTP_REPLY_MAX];
	int			rc, esmtp;

	for (esmtp = 0; esmtp <= 1; esmtp++) {
		reply[0] = '\0';
		rc = smtp_parse_mail_params(s, esmtp, &mp, reply,
		    sizeof(reply));
		check_reply(rc, reply);
		if (rc == 0) {
			CHECK(strlen(mp.envid) <= SMTP_ENVID_MAX);
			CHECK((mp.evflags & ~(EF_8BITMIME | EF_SMTPUTF8 |
			    EF_DSN_RET_FULL | EF_DSN_RET_HDRS |
			    EF_REQUIRETLS)) == 0);
			CHECK(!(mp.evflags & EF_DSN_RET_FULL) ||
			    !(mp.evflags & EF_DSN_RET_HDRS));
		}
		reply[0] = '\0';
		rc = smtp_parse_rcpt_params(s, esmtp, &rp, reply,
		    sizeof(reply));
		check_reply(rc, reply);
		if (rc == 0) {
			CHECK(strlen(rp.orcpt) < sizeof(rp.orcpt));
			CHECK(!(rp.notify & EF_NOTIFY_NEVER) ||
			    rp.notify == EF_NOTIFY_NEVER);
		}
	}
}

static void
fuzz_b64(const char *s, const uint8_t *raw, size_t len)
{
	unsigned char	 out[1024];
	char		*enc;
	size_t		 enclen = (len + 2) / 3 * 4 + 1;
	int		 n, m;

	n = smtp_b64_decode(s, out, sizeof(out));
	if (n >= 0) {
		char	again[2048];

		CHECK((size_t)n < sizeof(out));
		m = smtp_b64_encode(out, (size_t)n, again, sizeof(again));
		CHECK(m >= 0 && strcmp(again, s) == 0);
	}
	/* and every octet string encodes and decodes back */
	if (len > 700)
		return;
	if ((enc = malloc(enclen)) == NULL)
		return;
	m = smtp_b64_encode(raw, len, enc, enclen);
	CHECK(m == (int)enclen - 1);
	n = smtp_b64_decode(enc, out, sizeof(out));
	CHECK(n == (int)len && memcmp(out, raw, len) == 0);
	free(enc);
}

static void
fuzz_sasl(const uint8_t *data, size_t len)
{
	char	user[256], pass[256];
	size_t	i;

	if (smtp_parse_sasl_plain(data, len, user, sizeof(user), pass,
	    sizeof(pass)) != 0)
		return;
	CHECK(user[0] != '\0' && pass[0] != '\0');
	for (i = 0; user[i]; i++)
		CHECK((unsigned char)user[i] >= 0x20 && user[i] != 0x7f);
	for (i = 0; pass[i]; i++)
		CHECK((unsigned char)pass[i] >= 0x20 && pass[i] != 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	char		*s, *line, *args;
	uint64_t	 size;
	int		 last;

	if (len > 4096)
		return 0;
	if ((s = malloc(len + 1)) == NULL)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';

	if ((line = strdup(s)) != NULL) {
		(void)smtp_parse_command(line, &args);
		if (args != NULL)
			CHECK(args > line && args <= line + strlen(s));
		free(line);
	}
	fuzz_params(s);
	(void)smtp_parse_tls_required(s, strlen(s));
	if (smtp_parse_bdat(s, &size, &last) == 0)
		CHECK(last == 0 || last == 1);
	fuzz_b64(s, data, len);
	fuzz_sasl(data, len);
	free(s);
	return 0;
}
