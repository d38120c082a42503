/*
 * fuzz_aliases.c -- libFuzzer harness for table/aliases.c (alias
 * values, .forward text) and table/tabfile.c (the text table format).
 *
 * Beyond "does not crash": every accepted item keeps its promises (a
 * NUL-terminated value with no control characters, absolute paths for
 * files and includes, a 4xx/5xx reply for error:, a user name that is a
 * plain lower-case local part), and every table entry has a non-empty,
 * lower-case key without white space.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "aliases.h"
#include "tabfile.h"



static int
item_cb(void *arg, const struct alias_item *it)
{
	const char	*p;

	CHECK(memchr(it->value, '\0', sizeof(it->value)) != NULL);
	for (p = it->value; *p; p++)
		CHECK(!iscntrl((unsigned char)*p) || *p == '\t');
	switch (it->type) {
	case ALIAS_FILENAME:
	case ALIAS_INCLUDE:
		CHECK(it->value[0] == '/');
		break;
	case ALIAS_PROGRAM:
		CHECK(it->value[0] != '\0');
		break;
	case ALIAS_ERROR:
		CHECK(it->value[0] == '4' || it->value[0] == '5');
		break;
	case ALIAS_USERNAME:
		CHECK(it->value[0] != '\0' && strchr(it->value, '@') == NULL);
		for (p = it->value; *p; p++)
			CHECK(!isupper((unsigned char)*p));
		break;
	case ALIAS_ADDRESS:
		CHECK(it->addr.user[0] != '\0' && it->addr.domain[0] != '\0');
		break;
	default:
		CHECK(0);
	}
	return 0;
}

static int
entry_cb(void *arg, const char *key, const char *value, size_t line,
    char *err, size_t errlen)
{
	const char	*p;

	CHECK(key[0] != '\0' && line > 0);
	for (p = key; *p; p++)
		CHECK(!isspace((unsigned char)*p) && !isupper((unsigned char)*p));
	CHECK(strlen(value) < TABFILE_VALUE_MAX);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*s, err[512];
	FILE	*fp;
	int	 flags;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)alias_parse_list(s, item_cb, NULL, NULL);
	(void)alias_parse_file_text((const char *)data, size, item_cb, NULL,
	    NULL);
	free(s);
	for (flags = 0; flags <= TABFILE_ALIASES; flags += TABFILE_ALIASES) {
		if ((fp = fmemopen((void *)(uintptr_t)data, size, "r")) ==
		    NULL)
			continue;
		(void)tabfile_parse(fp, "fuzz", flags, entry_cb, NULL, err,
		    sizeof(err));
		fclose(fp);
	}
	return 0;
}
