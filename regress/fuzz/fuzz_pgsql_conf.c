/*
 * fuzz_pgsql_conf.c -- libFuzzer harness for table/pgsql_conf.c: a
 * pgsql: table's configuration file, as an administrator wrote it.
 *
 * The text arrives with its length (a NUL inside is refused with its
 * line).  Checked beyond "does not crash": a refused file says why,
 * starting with the file's name, in printable text; an accepted one has
 * a conninfo with user=, at least one query, each holding $1, a pool
 * and a timeout within bounds, no host NAME unless hostaddr= is given,
 * and parses the same way a second time.
 */
#include <ctype.h>
#include <string.h>

#include "fuzz.h"

#include "pgsql_conf.h"

static const char *
param(const struct pgsql_conf *pc, const char *kw)
{
	int	i;

	for (i = 0; pc->keywords[i] != NULL; i++)
		if (strcmp(pc->keywords[i], kw) == 0)
			return pc->values[i];
	return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgsql_conf	 pc, again;
	char			*text, err[512];
	const char		*p;
	int			 i, r, nq = 0;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	r = pgsql_conf_parse(&pc, text, size, "/f.conf", err, sizeof(err));
	CHECK(r == 0 || r == -1);
	if (r == -1) {
		CHECK(strncmp(err, "/f.conf:", 8) == 0);
		for (p = err; *p; p++)
			CHECK(isprint((unsigned char)*p));
		free(text);
		return 0;
	}
	CHECK(pc.pool >= 1 && pc.pool <= PGSQL_POOL_MAX);
	CHECK(pc.timeout >= 1 && pc.timeout <= PGSQL_TIMEOUT_MAX);
	CHECK(param(&pc, "user") != NULL && param(&pc, "user")[0] != '\0');
	CHECK(param(&pc, "service") == NULL);
	CHECK(param(&pc, "gssencmode") != NULL);
	for (i = 0; i < TS_COUNT; i++)
		if (pc.query[i] != NULL) {
			nq++;
			CHECK(strstr(pc.query[i], "$1") != NULL);
			CHECK(strchr(pc.query[i], '\n') == NULL);
		}
	CHECK(nq > 0);
	CHECK(pgsql_conf_parse(&again, text, size, "/f.conf", err,
	    sizeof(err)) == 0);
	CHECK(again.pool == pc.pool && again.timeout == pc.timeout);
	for (i = 0; i < TS_COUNT; i++)
		CHECK((pc.query[i] == NULL) == (again.query[i] == NULL) &&
		    (pc.query[i] == NULL ||
		    strcmp(pc.query[i], again.query[i]) == 0));
	for (i = 0; pc.keywords[i] != NULL; i++)
		CHECK(again.keywords[i] != NULL &&
		    strcmp(pc.keywords[i], again.keywords[i]) == 0 &&
		    strcmp(pc.values[i], again.values[i]) == 0);
	CHECK(again.keywords[i] == NULL);
	pgsql_conf_free(&again);
	pgsql_conf_free(&pc);
	free(text);
	return 0;
}
