/*
 * fuzz_socketmap.c -- libFuzzer harness for the socketmap: backend's
 * parsers (table/socketmap.c): the netstrings a server sends and the
 * replies inside them, and the unix:/inet: target of a table line.
 *
 * The first byte chooses: 0-1, the rest is what a server sent (each
 * netstring in it read in turn, as the connection does); 2, a table
 * line's target; 3, a key, sent as a request and read back.  Checked
 * beyond "does not crash": a netstring read is inside the input, ends
 * with ',' and its length is what its digits say; a reply is found with
 * a value, not found, or an error with a reason; a target that parses
 * has a family, a length and a map name without spaces; a request
 * reads back as one netstring holding "MAP KEY", whatever the key.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <ctype.h>
#include <string.h>

#include "fuzz.h"

#include "backend.h"
#include "socketmap.h"
#include "table.h"

static void
fuzz_stream(const char *buf, size_t len)
{
	size_t	 off, plen, used, at = 0;
	char	*value, why[256];
	int	 r, rc, bad;

	while (at < len) {
		r = netstring_parse(buf + at, len - at, SOCKETMAP_REPLY_MAX,
		    &off, &plen, &used);
		if (r != 1)
			break;
		CHECK(used <= len - at && off + plen + 1 == used);
		CHECK(buf[at + used - 1] == ',' && buf[at + off - 1] == ':');
		CHECK(plen <= SOCKETMAP_REPLY_MAX);
		why[0] = '\0';
		rc = socketmap_reply(buf + at + off, plen, &value, &bad, why,
		    sizeof(why));
		if (rc == TABLE_FOUND) {
			CHECK(value != NULL && !bad);
			CHECK(strlen(value) == plen - (plen > 2 ? 3 : 2));
			free(value);
		} else if (rc == TABLE_NOTFOUND)
			CHECK(value == NULL && !bad);
		else
			CHECK(rc == TABLE_ERROR && value == NULL &&
			    why[0] != '\0');
		at += used;
	}
}

static void
fuzz_target(const char *spec)
{
	struct socketmap_target	tg;
	char			err[256];
	size_t			i;

	err[0] = '\0';
	if (socketmap_target_parse(spec, &tg, err, sizeof(err)) == -1) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(tg.ss.ss_family == AF_UNIX || tg.ss.ss_family == AF_INET ||
	    tg.ss.ss_family == AF_INET6);
	CHECK(tg.sslen > 0 && tg.sslen <= sizeof(tg.ss));
	CHECK(tg.mapname[0] != '\0');
	for (i = 0; tg.mapname[i] != '\0'; i++)
		CHECK(isgraph((unsigned char)tg.mapname[i]));
}

static void
fuzz_request(const char *key)
{
	char	*req;
	size_t	 len, off, plen, used;

	if ((req = socketmap_request("map", key, &len)) == NULL)
		return;
	CHECK(netstring_parse(req, len, len, &off, &plen, &used) == 1);
	CHECK(used == len && plen == 4 + strlen(key));
	CHECK(memcmp(req + off, "map ", 4) == 0);
	CHECK(memcmp(req + off + 4, key, strlen(key)) == 0);
	free(req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*copy;

	if (size < 1 || size > 200000)
		return 0;
	/* NUL-terminated, in an allocation of exactly that size */
	if ((copy = malloc(size)) == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	switch (data[0] & 3) {
	case 0:
	case 1:
		fuzz_stream(copy, size - 1);
		break;
	case 2:
		fuzz_target(copy);
		break;
	default:
		fuzz_request(copy);
		break;
	}
	free(copy);
	return 0;
}
