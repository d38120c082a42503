/*
 * fuzz_redis.c -- libFuzzer harness for the redis: backend's parsers
 * (table/redis.c): its configuration file, and the replies a server
 * sends (read by hiredis' own reader, then turned into an answer).
 *
 * The first byte chooses: even, the rest is a configuration file; odd,
 * the rest is a stream of RESP replies, each answered for every
 * service.  Checked beyond "does not crash": a configuration that
 * parses has a server (a numeric address or an absolute path), a query
 * with a key in it, sane limits, and expands any key into the same
 * number of arguments, the key whole inside one of them; it parses the
 * same way twice.  An answer is found with a value (no NUL, bounded),
 * not found without one, or an error with a reason.
 */
#include <string.h>

#include <hiredis/hiredis.h>

#include "fuzz.h"

#include "backend.h"
#include "redis.h"
#include "table.h"

static void
fuzz_conf(const char *text, size_t len)
{
	struct redis_conf	 rc, again;
	char			 err[512], *argv[REDIS_WORDS_MAX];
	size_t			 argvlen[REDIS_WORDS_MAX];
	static const char	 key[] = "k e\r\n%s\"y";
	int			 i, j, haskey;

	err[0] = '\0';
	if (redis_conf_parse("/f.conf", text, len, &rc, err,
	    sizeof(err)) == -1) {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(strncmp(err, "/f.conf", 7) == 0);
		return;
	}
	CHECK(rc.unix_path[0] == '/' || rc.host[0] != '\0');
	CHECK(rc.unix_path[0] != '/' || rc.port == 0);
	CHECK(rc.pool >= 1 && rc.pool <= REDIS_POOL_MAX);
	CHECK(rc.timeout_ms >= 100 && rc.timeout_ms <= 300000);
	for (i = 0; i < TS_COUNT; i++) {
		if (rc.query[i] == NULL)
			continue;
		CHECK(rc.query[i]->argc >= 1 &&
		    rc.query[i]->argc <= REDIS_WORDS_MAX);
		CHECK(redis_command_expand(rc.query[i], key, argv,
		    argvlen) == 0);
		for (j = 0, haskey = 0; j < rc.query[i]->argc; j++) {
			CHECK(strlen(argv[j]) == argvlen[j]);
			if (strstr(argv[j], key) != NULL)
				haskey = 1;
		}
		CHECK(haskey);
		redis_command_free_argv(rc.query[i]->argc, argv);
	}
	CHECK(redis_conf_parse("/f.conf", text, len, &again, err,
	    sizeof(err)) == 0);
	CHECK(strcmp(rc.host, again.host) == 0 && rc.port == again.port &&
	    rc.database == again.database && rc.pool == again.pool);
	redis_conf_free(&again);
	redis_conf_free(&rc);
}

/*
 * hiredis 0.14's reader allocates a list's element pointers as soon as
 * it reads the count ("*300000000"): that is the library's, and our
 * server's to avoid; the harness keeps to lists of at most 4096.
 */
static int
huge_list(const char *data, size_t len)
{
	size_t	i, j;
	long	n;

	for (i = 0; i < len; i++) {
		if (data[i] != '*')
			continue;
		for (j = i + 1, n = 0; j < len && data[j] >= '0' &&
		    data[j] <= '9'; j++)
			if ((n = n * 10 + (data[j] - '0')) > 4096)
				return 1;
	}
	return 0;
}

static void
fuzz_replies(const char *data, size_t len)
{
	redisReader	*rd;
	void		*reply;
	char		*value, why[256];
	int		 s, rc, n;

	if (huge_list(data, len))
		return;
	if ((rd = redisReaderCreate()) == NULL)
		return;
	if (redisReaderFeed(rd, data, len) != REDIS_OK)
		goto done;
	for (n = 0; n < 16; n++) {
		reply = NULL;
		if (redisReaderGetReply(rd, &reply) != REDIS_OK ||
		    reply == NULL)
			break;
		for (s = 0; s < TS_COUNT; s++) {
			why[0] = '\0';
			rc = redis_reply_answer(reply, (enum table_service)s,
			    &value, why, sizeof(why));
			switch (rc) {
			case TABLE_FOUND:
				CHECK(value != NULL);
				CHECK(strlen(value) <= TABLE_VALUE_MAX);
				free(value);
				break;
			case TABLE_NOTFOUND:
				CHECK(value == NULL);
				break;
			case TABLE_ERROR:
				CHECK(value == NULL && why[0] != '\0');
				break;
			default:
				CHECK(0);
			}
		}
		freeReplyObject(reply);
	}
done:
	redisReaderFree(rd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*copy;

	if (size < 1 || size > 65536)
		return 0;
	/* an allocation of exactly the input's size, for ASan */
	if ((copy = malloc(size - 1 + 1)) == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 1)
		fuzz_replies(copy, size - 1);
	else
		fuzz_conf(copy, size - 1);
	free(copy);
	return 0;
}
