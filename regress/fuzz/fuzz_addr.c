/*
 * fuzz_addr.c -- libFuzzer harness for common/addr.c.
 *
 * Every parser gets the input in an allocation of exactly its size (plus
 * the NUL where the API wants a string), so ASan reports any read past
 * the end.  Beyond "does not crash", each accepted result is checked
 * against what the API promises: limits kept, no control characters,
 * ASCII domains lower-cased, and what one function produces the others
 * accept unchanged.  A broken promise aborts, which libFuzzer records as
 * a crash.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "addr.h"



static void	check_text(const char *, size_t, int);
static void	check_mailaddr(const struct mailaddr *, int);
static void	fuzz_path(const char *, size_t, int);
static void	fuzz_mailbox(const char *, int);
static void	fuzz_params(const uint8_t *, size_t);
static void	fuzz_xtext(const char *, size_t);

/* A NUL-terminated string of at most max octets, no controls, and
 * 8-bit only when UTF-8 is allowed (then well-formed). */
static void
check_text(const char *s, size_t max, int flags)
{
	size_t	len, i;

	len = strnlen(s, max + 1);
	CHECK(len <= max);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		CHECK(c >= 0x20 && c != 0x7f);
		if (!(flags & ADDR_ALLOW_UTF8))
			CHECK(c < 0x80);
	}
	CHECK(utf8_valid(s, len));
}

static void
check_mailaddr(const struct mailaddr *m, int flags)
{
	struct mailaddr	again;
	char		buf[ADDR_PATH_MAX + 1];
	char		base[ADDR_LOCAL_MAX + 1], detail[ADDR_LOCAL_MAX + 1];
	size_t		i;
	int		n;

	check_text(m->user, ADDR_LOCAL_MAX, flags);
	check_text(m->domain, ADDR_DOMAIN_MAX, flags);

	if (m->user[0] == '\0') {
		/* only the null path has an empty local part */
		CHECK(m->domain[0] == '\0');
		CHECK(flags & ADDR_ALLOW_NULL);
		CHECK(!addr_local_is_plain(m));
	} else if (m->domain[0] == '\0') {
		CHECK(flags & ADDR_ALLOW_NODOMAIN);
		CHECK(strcmp(m->user, "postmaster") == 0);
	} else {
		CHECK(domain_valid(m->domain, flags));
		/* lower-cased, bar the canonical "[IPv6:" tag */
		i = (strncmp(m->domain, "[IPv6:", 6) == 0) ? 6 : 0;
		for (; m->domain[i] != '\0'; i++)
			CHECK(m->domain[i] < 'A' || m->domain[i] > 'Z');
	}

	/* printing and re-reading gives the same address */
	n = addr_to_string(m, buf, sizeof(buf));
	CHECK(n >= 0 && (size_t)n == strlen(buf));
	CHECK(n <= ADDR_PATH_MAX - 2);
	CHECK(addr_parse_mailbox(buf, &again, flags) == ADDR_OK);
	CHECK(strcmp(again.user, m->user) == 0);
	CHECK(strcmp(again.domain, m->domain) == 0);

	/* a plain local part has none of the routing characters */
	if (addr_local_is_plain(m))
		CHECK(strpbrk(m->user, "%!@\"") == NULL);

	addr_split_subaddress(m->user, base, sizeof(base), detail,
	    sizeof(detail));
	CHECK(strlen(base) <= strlen(m->user));
	CHECK(strncmp(base, m->user, strlen(base)) == 0);
	addr_split_subaddress(m->user, base, sizeof(base), NULL, 0);
}

static void
fuzz_path(const char *s, size_t len, int flags)
{
	struct mailaddr	 m;
	const char	*rest = NULL;
	int		 rc;

	rc = addr_parse_path(s, &m, flags, &rest);
	CHECK(rc == ADDR_OK || rc == ADDR_ERR_SYNTAX ||
	    rc == ADDR_ERR_TOOLONG || rc == ADDR_ERR_UTF8);
	if (rc != ADDR_OK) {
		CHECK(m.user[0] == '\0' && m.domain[0] == '\0');
		return;
	}
	CHECK(rest != NULL && rest > s && rest <= s + len);
	CHECK(rest[-1] == '>');
	CHECK(*rest == '\0' || *rest == ' ');
	check_mailaddr(&m, flags);
}

static void
fuzz_mailbox(const char *s, int flags)
{
	struct mailaddr	m;
	int		rc;

	rc = addr_parse_mailbox(s, &m, flags);
	if (rc != ADDR_OK) {
		CHECK(m.user[0] == '\0' && m.domain[0] == '\0');
		return;
	}
	check_mailaddr(&m, flags);
}

static void
fuzz_params(const uint8_t *data, size_t size)
{
	struct esmtp_param	 params[ESMTP_PARAMS_MAX];
	char			*buf;
	const char		*p;
	int			 n, i;

	if ((buf = malloc(size + 1)) == NULL)
		return;
	memcpy(buf, data, size);
	buf[size] = '\0';
	n = esmtp_parse_params(buf, params, ESMTP_PARAMS_MAX);
	CHECK(n >= -1 && n <= ESMTP_PARAMS_MAX);
	for (i = 0; i < n; i++) {
		CHECK(params[i].key >= buf && params[i].key < buf + size);
		for (p = params[i].key; *p != '\0'; p++)
			CHECK((*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') ||
			    (*p == '-' && p != params[i].key));
		CHECK(p != params[i].key);
		if (params[i].value == NULL)
			continue;
		CHECK(params[i].value > buf && params[i].value < buf + size);
		CHECK(*params[i].value != '\0');
		for (p = params[i].value; *p != '\0'; p++)
			CHECK(*p >= 33 && *p <= 126 && *p != '=');
		/* ORCPT-shaped values must not crash the checker */
		(void)orcpt_valid(params[i].value);
	}
	free(buf);
}

static void
fuzz_xtext(const char *s, size_t len)
{
	char	*dec, *enc, *again;
	size_t	 enclen;
	int	 n, m;

	/* decoding never grows; encoding at most triples */
	enclen = 3 * len + 1;
	dec = malloc(len + 1);
	enc = malloc(enclen);
	again = malloc(len + 1);
	if (dec == NULL || enc == NULL || again == NULL)
		goto out;

	n = xtext_decode(s, dec, len + 1);
	if (n >= 0) {
		CHECK((size_t)n <= len && strlen(dec) == (size_t)n);
		/* what decodes re-encodes to something that decodes the
		 * same (not necessarily the same spelling: "+41" is "A") */
		m = xtext_encode(dec, enc, enclen);
		CHECK(m >= 0 && strlen(enc) == (size_t)m);
		CHECK(xtext_decode(enc, again, len + 1) == n);
		CHECK(memcmp(again, dec, (size_t)n + 1) == 0);
	}

	n = xtext_encode(s, enc, enclen);
	CHECK(n >= 0 && (size_t)n < enclen && strlen(enc) == (size_t)n);
	/* too small a buffer fails cleanly */
	if (n > 0)
		CHECK(xtext_encode(s, enc, (size_t)n) == -1);
	(void)orcpt_valid(s);
out:
	free(dec);
	free(enc);
	free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*s;
	size_t	 len;
	int	 flags;

	/* raw bytes, not NUL-terminated: only `size' may be read */
	(void)utf8_valid((const char *)data, size);

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	len = strlen(s);	/* an embedded NUL ends the C string */

	for (flags = 0; flags <= (ADDR_ALLOW_NULL | ADDR_ALLOW_UTF8 |
	    ADDR_ALLOW_NODOMAIN); flags++) {
		fuzz_path(s, len, flags);
		fuzz_mailbox(s, flags);
		if (domain_valid(s, flags))
			CHECK(len > 0 && len <= ADDR_DOMAIN_MAX);
	}
	free(s);

	fuzz_params(data, size);

	/* a fresh exact-size copy: fuzz_params wrote into its own */
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_xtext(s, strlen(s));
	free(s);
	return 0;
}
