/*
 * socketmap.h -- the socketmap: backend's wire format (socketmap.c):
 * where to connect, netstrings, and the server's replies, apart from
 * the connections so that the unit tests and the fuzz harness reach
 * them.
 *
 * The protocol is Sendmail's socket map, also Postfix's
 * socketmap_table(5): over a stream, each request is a netstring
 * "LEN:MAPNAME KEY," and each reply one netstring "OK value",
 * "NOTFOUND ", "TEMP reason", "TIMEOUT reason" or "PERM reason".  A
 * netstring is the payload's length in decimal, ':', the payload (any
 * bytes), ','.
 */
#ifndef POSTHASTE_TABLE_SOCKETMAP_H
#define POSTHASTE_TABLE_SOCKETMAP_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>

/* the longest reply payload accepted, as Postfix's client */
#define SOCKETMAP_REPLY_MAX	100000
#define SOCKETMAP_MAPNAME_MAX	64

struct socketmap_target {
	struct sockaddr_storage	 ss;	/* AF_UNIX, AF_INET or AF_INET6 */
	socklen_t		 sslen;
	char			 mapname[SOCKETMAP_MAPNAME_MAX];
};

/*
 * "unix:/path:MAPNAME" or "inet:HOST:PORT:MAPNAME" (HOST numeric:
 * 192.0.2.1 or [2001:db8::1]).  0, or -1 with err set.
 */
int	socketmap_target_parse(const char *, struct socketmap_target *,
	    char *err, size_t errlen);

/*
 * A netstring at the start of buf (len bytes): 1 and the payload's
 * offset and length, and how many bytes the netstring took; 0 when more
 * bytes are needed; -1 when it is malformed (not digits, a leading
 * zero, no ':' or ',', longer than max).
 */
int	netstring_parse(const char *buf, size_t len, size_t max,
	    size_t *off, size_t *plen, size_t *used);

/*
 * A request "LEN:MAPNAME KEY," for the key: malloc'd, its length in
 * *len.  NULL on memory shortage.
 */
char	*socketmap_request(const char *mapname, const char *key, size_t *len);

/*
 * A reply's payload (len bytes): TABLE_FOUND with *value (malloc'd),
 * TABLE_NOTFOUND, or TABLE_ERROR with why (the server's reason, made
 * printable; or what was wrong with the reply, *bad set then: a
 * protocol error, which ends the connection).
 */
int	socketmap_reply(const char *payload, size_t len, char **value,
	    int *bad, char *why, size_t whylen);

#endif
