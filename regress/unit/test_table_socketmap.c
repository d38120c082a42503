/*
 * test_table_socketmap.c -- the socketmap: backend's wire format
 * (table/socketmap.c, socketmap.h): the strict netstring reader (only
 * digits without a leading zero, ':' and ',', at most 100000 bytes, as
 * Postfix's client), the request for a key, the server's replies, and
 * the unix:/inet: targets.  The connections are tested against a server
 * by regress/integration/test_table_socketmap.py.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "socketmap.h"
#include "table.h"

static int
ns(const char *buf, size_t *off, size_t *plen, size_t *used)
{
	return netstring_parse(buf, strlen(buf), SOCKETMAP_REPLY_MAX, off,
	    plen, used);
}

static void
test_netstring(void **state)
{
	size_t	off, plen, used;
	char	big[16];

	(void)state;
	assert_int_equal(ns("5:OK ab,", &off, &plen, &used), 1);
	assert_int_equal(off, 2);
	assert_int_equal(plen, 5);
	assert_int_equal(used, 8);
	/* what follows is the next netstring's */
	assert_int_equal(ns("0:,3:abc,", &off, &plen, &used), 1);
	assert_int_equal(plen, 0);
	assert_int_equal(used, 3);
	/* any byte inside: a ',' and a ':' */
	assert_int_equal(ns("3:,:,,", &off, &plen, &used), 1);
	assert_int_equal(plen, 3);

	/* incomplete */
	assert_int_equal(ns("", &off, &plen, &used), 0);
	assert_int_equal(ns("1", &off, &plen, &used), 0);
	assert_int_equal(ns("12", &off, &plen, &used), 0);
	assert_int_equal(ns("5:", &off, &plen, &used), 0);
	assert_int_equal(ns("5:OK ab", &off, &plen, &used), 0);
	assert_int_equal(ns("100000:", &off, &plen, &used), 0);

	/* malformed */
	assert_int_equal(ns(":", &off, &plen, &used), -1);
	assert_int_equal(ns("x:", &off, &plen, &used), -1);
	assert_int_equal(ns(" 5:OK ab,", &off, &plen, &used), -1);
	assert_int_equal(ns("+5:OK ab,", &off, &plen, &used), -1);
	assert_int_equal(ns("05:OK ab,", &off, &plen, &used), -1);
	assert_int_equal(ns("00:", &off, &plen, &used), -1);
	assert_int_equal(ns("5;OK ab,", &off, &plen, &used), -1);
	assert_int_equal(ns("5:OK ab;", &off, &plen, &used), -1);
	assert_int_equal(ns("4:OK ab,", &off, &plen, &used), -1);
	assert_int_equal(ns("100001:", &off, &plen, &used), -1);
	snprintf(big, sizeof(big), "%s", "99999999999999");
	assert_int_equal(ns(big, &off, &plen, &used), -1);
	/* a NUL is a byte like another */
	assert_int_equal(netstring_parse("3:a\0b,", 6, 10, &off, &plen,
	    &used), 1);
	assert_int_equal(plen, 3);
	/* the caller's own limit */
	assert_int_equal(netstring_parse("11:", 3, 10, &off, &plen, &used),
	    -1);
}

static void
test_request(void **state)
{
	char	*r;
	size_t	 len, off, plen, used;

	(void)state;
	r = socketmap_request("virtual", "alice@example.org", &len);
	assert_non_null(r);
	assert_int_equal(len, strlen("25:virtual alice@example.org,"));
	assert_memory_equal(r, "25:virtual alice@example.org,", len);
	free(r);
	/* a key with spaces, a comma and a colon: still one netstring */
	r = socketmap_request("m", "\"a b\",c:d", &len);
	assert_non_null(r);
	assert_memory_equal(r, "11:m \"a b\",c:d,", len);
	assert_int_equal(netstring_parse(r, len, 100, &off, &plen, &used), 1);
	assert_int_equal(used, len);
	assert_memory_equal(r + off, "m \"a b\",c:d", plen);
	free(r);
	r = socketmap_request("m", "", &len);
	assert_memory_equal(r, "2:m ,", len);
	free(r);
}

static int
rep(const char *s, char **value, int *bad, char *why, size_t whylen)
{
	why[0] = '\0';
	return socketmap_reply(s, strlen(s), value, bad, why, whylen);
}

static void
test_reply(void **state)
{
	char	*v, why[256];
	int	 bad;

	(void)state;
	assert_int_equal(rep("OK a, b", &v, &bad, why, sizeof(why)),
	    TABLE_FOUND);
	assert_string_equal(v, "a, b");
	assert_int_equal(bad, 0);
	free(v);
	assert_int_equal(rep("OK ", &v, &bad, why, sizeof(why)),
	    TABLE_FOUND);
	assert_string_equal(v, "");
	free(v);
	assert_int_equal(rep("OK", &v, &bad, why, sizeof(why)), TABLE_FOUND);
	assert_string_equal(v, "");
	free(v);
	assert_int_equal(rep("NOTFOUND ", &v, &bad, why, sizeof(why)),
	    TABLE_NOTFOUND);
	assert_null(v);
	assert_int_equal(rep("NOTFOUND", &v, &bad, why, sizeof(why)),
	    TABLE_NOTFOUND);
	assert_int_equal(rep("TEMP database\x01 down", &v, &bad, why,
	    sizeof(why)), TABLE_ERROR);
	assert_int_equal(bad, 0);
	assert_string_equal(why, "TEMP database? down");
	assert_int_equal(rep("TIMEOUT slow", &v, &bad, why, sizeof(why)),
	    TABLE_ERROR);
	assert_int_equal(bad, 0);
	/* PERM: a temporary failure for the client all the same */
	assert_int_equal(rep("PERM no such map", &v, &bad, why, sizeof(why)),
	    TABLE_ERROR);
	assert_int_equal(bad, 0);
	assert_non_null(strstr(why, "no such map"));

	/* not the protocol: the connection goes */
	assert_int_equal(rep("OKAY x", &v, &bad, why, sizeof(why)),
	    TABLE_ERROR);
	assert_int_equal(bad, 1);
	assert_int_equal(rep("ok x", &v, &bad, why, sizeof(why)),
	    TABLE_ERROR);
	assert_int_equal(bad, 1);
	assert_int_equal(rep("", &v, &bad, why, sizeof(why)), TABLE_ERROR);
	assert_int_equal(bad, 1);
	assert_int_equal(rep("NOTFOUNDx", &v, &bad, why, sizeof(why)),
	    TABLE_ERROR);
	assert_int_equal(bad, 1);
	/* a NUL inside a value is no value */
	assert_int_equal(socketmap_reply("OK a\0b", 6, &v, &bad, why,
	    sizeof(why)), TABLE_ERROR);
	assert_null(v);
}

static void
target_bad(const char *spec, const char *want)
{
	struct socketmap_target	tg;
	char			err[256] = "";

	if (socketmap_target_parse(spec, &tg, err, sizeof(err)) != -1)
		fail_msg("\"%s\" was accepted", spec);
	if (strstr(err, want) == NULL)
		fail_msg("\"%s\": \"%s\" does not say \"%s\"", spec, err, want);
}

static void
test_target(void **state)
{
	struct socketmap_target	 tg;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&tg.ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&tg.ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&tg.ss;
	char			 err[256], a[64];

	(void)state;
	assert_int_equal(socketmap_target_parse("unix:/run/sm:x.sock:virtual",
	    &tg, err, sizeof(err)), 0);
	assert_int_equal(sun->sun_family, AF_UNIX);
	assert_string_equal(sun->sun_path, "/run/sm:x.sock");
	assert_string_equal(tg.mapname, "virtual");

	assert_int_equal(socketmap_target_parse("inet:192.0.2.1:8080:m", &tg,
	    err, sizeof(err)), 0);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8080);
	assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)),
	    "192.0.2.1");
	assert_string_equal(tg.mapname, "m");

	assert_int_equal(socketmap_target_parse("inet:[2001:db8::1]:25:mm",
	    &tg, err, sizeof(err)), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 25);
	assert_string_equal(inet_ntop(AF_INET6, &sin6->sin6_addr, a,
	    sizeof(a)), "2001:db8::1");

	target_bad("", "expected unix:");
	target_bad("unix:/run/sm", "expected unix:");
	target_bad("unix:/run/sm:", "expected unix:");
	target_bad("unix::m", "absolute path");
	target_bad("unix:sm:m", "absolute path");
	target_bad("tcp:192.0.2.1:25:m", "expected unix:");
	target_bad("inet:192.0.2.1:m", "expected inet:HOST:PORT");
	target_bad("inet:192.0.2.1:0:m", "bad port");
	target_bad("inet:192.0.2.1:65536:m", "bad port");
	target_bad("inet:192.0.2.1:12a:m", "bad port");
	target_bad("inet:localhost:25:m", "not a numeric address");
	target_bad("inet:2001:db8::1:25:m", "not a numeric address");
	target_bad("inet:[192.0.2.1]:25:m", "not a numeric address");
	target_bad("inet:[2001:db8::1]25:m", "expected inet:[IPV6]");
	target_bad("inet::25:m", "bad host");
	target_bad("inet:192.0.2.1:25:a\tb", "space or a control");
	target_bad("inet:192.0.2.1:25:"
	    "a123456789b123456789c123456789d123456789e123456789f123456789g123",
	    "map name longer");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netstring),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_target),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
