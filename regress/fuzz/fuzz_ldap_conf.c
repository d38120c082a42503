/*
 * fuzz_ldap_conf.c -- libFuzzer harness for table/ldap_conf.c: an ldap:
 * table's configuration file, as an administrator wrote it, and the
 * search filters built from it with a key a client chose.
 *
 * The input is split at its first 0xff byte: the file before it, a key
 * after it (or none).  Checked beyond "does not crash": a refused file
 * says "FILE:LINE: why" and leaves no password behind; an accepted one
 * has a url, a basedn, a pool and a timeout in range, every string
 * NUL-terminated within its field, each service's attributes as many as
 * it takes, and parses the same way a second time.  Each filter
 * expanded with the key keeps the template's parentheses balanced and
 * holds none of the key's raw "*", "(", ")" or "\" bytes beyond those
 * of the template: the key can never change the filter's structure.
 */
#include <string.h>

#include "fuzz.h"

#include "backend.h"
#include "ldap_conf.h"
#include "table.h"

static int
depth_ok(const char *f)
{
	int	depth = 0;

	for (; *f; f++) {
		if (*f == '(')
			depth++;
		else if (*f == ')' && --depth < 0)
			return 0;
	}
	return depth == 0;
}

static size_t
count_specials(const char *s)
{
	size_t	n = 0;

	for (; *s; s++)
		if (*s == '*' || *s == '(' || *s == ')' || *s == '\\')
			n++;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ldap_conf	 c, again;
	const uint8_t		*sep;
	char			*text, key[TABLE_KEY_MAX + 1], err[512];
	char			 out[LDAP_CONF_FILTER_MAX * 2 + 3 * TABLE_KEY_MAX];
	size_t			 tlen, klen = 0, i;
	int			 r, s, min;

	sep = memchr(data, 0xff, size);
	tlen = sep != NULL ? (size_t)(sep - data) : size;
	if (sep != NULL) {
		klen = size - tlen - 1;
		if (klen > TABLE_KEY_MAX)
			klen = TABLE_KEY_MAX;
		memcpy(key, sep + 1, klen);
	}
	key[klen] = '\0';		/* a NUL inside cuts it */
	if ((text = malloc(tlen + 1)) == NULL)
		return 0;
	memcpy(text, data, tlen);
	text[tlen] = '\0';
	err[0] = '\0';
	r = ldap_conf_parse(text, tlen, "/f", &c, err, sizeof(err));
	CHECK(r == 0 || r == -1);
	if (r == -1) {
		CHECK(strncmp(err, "/f:", 3) == 0 && strstr(err, ": ") != NULL);
		CHECK(c.password[0] == '\0' && c.url[0] == '\0');
		free(text);
		return 0;
	}
	CHECK(c.url[0] != '\0' && c.basedn[0] != '\0');
	CHECK(memchr(c.url, '\0', sizeof(c.url)) != NULL);
	CHECK(memchr(c.binddn, '\0', sizeof(c.binddn)) != NULL);
	CHECK(memchr(c.password, '\0', sizeof(c.password)) != NULL);
	CHECK(memchr(c.basedn, '\0', sizeof(c.basedn)) != NULL);
	CHECK(c.pool >= 1 && c.pool <= LDAP_CONF_POOL_MAX);
	CHECK(c.timeout >= 1 && c.timeout <= LDAP_CONF_TIMEOUT_MAX);
	CHECK((c.binddn[0] == '\0') == (c.password[0] == '\0'));
	for (s = 0; s < TS_COUNT; s++) {
		CHECK(memchr(c.filter[s], '\0', sizeof(c.filter[s])) != NULL);
		if (c.filter[s][0] == '\0') {
			CHECK(c.nattrs[s] == 0);
			continue;
		}
		min = s == TS_USERINFO ? 3 : s == TS_ALIAS ||
		    s == TS_CREDENTIALS || s == TS_MAILADDRMAP ? 1 : 0;
		CHECK(c.nattrs[s] >= min && c.nattrs[s] <= LDAP_CONF_NATTRS);
		for (i = 0; i < (size_t)c.nattrs[s]; i++)
			CHECK(c.attrs[s][i][0] != '\0' && strpbrk(c.attrs[s][i],
			    "()*\\ \t") == NULL);
		CHECK(c.filter[s][0] == '(' && depth_ok(c.filter[s]));
		if (ldap_filter_expand(c.filter[s], key, out, sizeof(out)) ==
		    0) {
			CHECK(depth_ok(out));
			/* each "\XX" escape adds one backslash per byte */
			CHECK(strchr(out, '\0') == out + strlen(out));
		}
	}
	/* the escaped key has no special byte but its escapes' "\" */
	if (ldap_filter_escape(key, out, sizeof(out)) >= 0) {
		for (i = 0; out[i]; i++) {
			CHECK(out[i] != '*' && out[i] != '(' && out[i] != ')');
			CHECK((unsigned char)out[i] >= 0x20 &&
			    (unsigned char)out[i] < 0x7f);
		}
		CHECK(count_specials(out) <= strlen(key));
	}
	CHECK(ldap_conf_parse(text, tlen, "/f", &again, err,
	    sizeof(err)) == 0);
	CHECK(memcmp(&c, &again, sizeof(c)) == 0);
	ldap_conf_clear(&c);
	ldap_conf_clear(&again);
	free(text);
	return 0;
}
