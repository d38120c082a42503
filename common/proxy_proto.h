/*
 * proxy_proto.h -- the PROXY protocol header (HAProxy's specification,
 * versions 1 and 2) that a TCP load balancer sends before the client's
 * first byte, saying who the client is.  Read by the smtp workers on a
 * "proxy-protocol" listener (smtp/smtp_proxy.c); a parser of bytes from
 * the network, shared with its unit tests and fuzz harness.
 */
#ifndef POSTHASTE_PROXY_PROTO_H
#define POSTHASTE_PROXY_PROTO_H

#include <sys/types.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

/* v1: "PROXY ... \r\n", the CRLF included (the specification's bound) */
#define PROXY_V1_MAX		107
/* v2: the fixed part (signature, version/command, family, length) */
#define PROXY_V2_FIXED		16
/*
 * v2: what may follow the fixed part.  The addresses take at most 216
 * bytes (AF_UNIX); the rest is TLVs, which we skip.  A load balancer
 * sending more than this (many TLVs) is refused rather than buffered.
 */
#define PROXY_V2_BODY_MAX	1024
#define PROXY_HDR_MAX		(PROXY_V2_FIXED + PROXY_V2_BODY_MAX)

#define PROXY_DONE	1	/* a whole header: *used is its length */
#define PROXY_MORE	0	/* not yet: *used bytes are surely header */
#define PROXY_BAD	-1	/* not a PROXY header: *why says why */

struct proxy_hdr {
	int			 version;	/* 1 or 2 */
	/*
	 * 0: the header names no client (v1 UNKNOWN, v2 LOCAL -- the
	 * balancer's own health check --, v2 UNSPEC or AF_UNIX): keep
	 * the addresses of the connection.
	 */
	int			 has_addr;
	struct sockaddr_storage	 src;		/* the client, with its port */
	struct sockaddr_storage	 dst;		/* where it connected to */
};

/*
 * Read the header at the start of buf (len bytes, from the first byte
 * of the connection).  PROXY_DONE fills h and sets *used to the header's
 * length (what follows is the client's).  PROXY_MORE: the header is not
 * complete; *used (<= len) bytes are certainly part of it, so a reader
 * may consume them from the socket without taking any byte beyond the
 * header.  PROXY_BAD: *why is a static text for the log.
 */
int	proxy_parse(const uint8_t *buf, size_t len, struct proxy_hdr *h,
	    size_t *used, const char **why);

#endif
