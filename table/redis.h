/*
 * redis.h -- the redis: backend's configuration file and its answers
 * (redis.c), apart from the connections so that the unit tests and the
 * fuzz harness reach them without a server.
 *
 * The file (read by the parent as root: it may hold a password), one
 * statement a line, '#' starts a comment line:
 *
 *	server 127.0.0.1:6379		(or server /run/redis/redis.sock)
 *	password SECRET			(AUTH, the rest of the line)
 *	database 2			(SELECT)
 *	timeout 5s			(per query; ms, s, m)
 *	pool 2				(connections)
 *	query_alias GET alias:%s	(one per service, words)
 *
 * A query is split into words; "%s" inside a word stands for the key,
 * and the word becomes one argument of the command (redis' own
 * protocol carries its length): a key can never add an argument or a
 * command, whatever bytes it holds.  "%%" is a '%'.
 */
#ifndef POSTHASTE_TABLE_REDIS_H
#define POSTHASTE_TABLE_REDIS_H

#include <stddef.h>

#include "table.h"

#define REDIS_WORDS_MAX		16	/* words of a query */
#define REDIS_WORD_MAX		256	/* bytes of a word, key aside */
#define REDIS_PASSWORD_MAX	512
#define REDIS_POOL_MAX		32
#define REDIS_PORT_DEFAULT	6379
#define REDIS_TIMEOUT_DEFAULT	5000	/* ms */

struct redis_command {
	int	 argc;
	char	*argv[REDIS_WORDS_MAX];
};

struct redis_conf {
	char			 unix_path[108];	/* sun_path; "" TCP */
	char			 host[64];		/* numeric IPv4 */
	int			 port;
	char			*password;		/* NULL: no AUTH */
	long			 database;		/* -1: no SELECT */
	int			 timeout_ms;
	int			 pool;
	struct redis_command	*query[TS_COUNT];	/* NULL: not served */
};

/*
 * Parse the file's text (len bytes, no NUL inside); file names it in
 * the errors, "FILE:LINE: why".  0, or -1 with err set (and nothing to
 * free).
 */
int	redis_conf_parse(const char *file, const char *text, size_t len,
	    struct redis_conf *, char *err, size_t errlen);
/* wipes the password too */
void	redis_conf_free(struct redis_conf *);
/* "127.0.0.1:6379" or the socket's path, for the logs */
const char *redis_conf_server(const struct redis_conf *, char *, size_t);

/*
 * The command for a key: argc words in argv (each malloc'd, with its
 * length in argvlen).  -1 on memory shortage.
 */
int	redis_command_expand(const struct redis_command *, const char *key,
	    char **argv, size_t *argvlen);
void	redis_command_free_argv(int argc, char **argv);

/*
 * A reply's answer for the service: TABLE_FOUND with *value malloc'd,
 * TABLE_NOTFOUND, or TABLE_ERROR with why set.  nil, 0, an empty list
 * or a list of nils: not found; a string or a status: the value; an
 * integer other than 0: found (its digits); a list: its strings joined
 * with ", " (userinfo: with ':', "uid:gid:/home" from HMGET); an error
 * reply, a nested list or a NUL in a string: an error.
 */
struct redisReply;
int	redis_reply_answer(const struct redisReply *, enum table_service,
	    char **value, char *why, size_t whylen);

#endif
