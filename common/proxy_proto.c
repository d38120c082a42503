/*
 * proxy_proto.c -- the PROXY protocol header, versions 1 (a text line)
 * and 2 (binary), as HAProxy's proxy-protocol.txt specifies them.
 *
 * A load balancer in front of a listener opens its connection to us
 * with this header, then relays the client's bytes untouched; the header
 * says which address and port the client connected from, and to.  It is
 * read once per connection, before the greeting, from a peer we were
 * told to trust (smtp/smtp_proxy.c checks that first): still, it is
 * bytes from the network, so every length is checked before it is used
 * and anything the specification does not allow is refused.
 *
 * The reader never consumes a byte past the header (PROXY_MORE says how
 * much is surely header), because what follows belongs to the session:
 * the TLS handshake on an implicit-TLS listener.
 *
 * Version 2 (section 2.2): 12-byte signature, version (high nibble, 2)
 * and command (LOCAL 0, PROXY 1), family and transport, 16-bit length
 * of what follows, then the addresses and TLVs.  LOCAL is the balancer
 * speaking for itself (a health check): the connection's own addresses
 * stand.  TLVs are walked to check they fit, and otherwise ignored.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "proxy_proto.h"

static const uint8_t	v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char	v1_sig[6] = "PROXY ";

#define V2_CMD_LOCAL	0x0
#define V2_CMD_PROXY	0x1
#define V2_AF_UNSPEC	0x0
#define V2_AF_INET	0x1
#define V2_AF_INET6	0x2
#define V2_AF_UNIX	0x3
#define V2_T_UNSPEC	0x0
#define V2_T_STREAM	0x1
#define V2_T_DGRAM	0x2
/* the address blocks: two addresses and two ports, or two paths */
#define V2_LEN_INET	12
#define V2_LEN_INET6	36
#define V2_LEN_UNIX	216

static int
bad(const char **why, const char *text)
{
	*why = text;
	return PROXY_BAD;
}

/* a decimal port: 1 to 5 digits, at most 65535 */
static int
v1_port(const char *s, uint16_t *port)
{
	unsigned long	v = 0;
	size_t		n;

	for (n = 0; s[n] != '\0'; n++) {
		if (s[n] < '0' || s[n] > '9' || n == 5)
			return -1;
		v = v * 10 + (unsigned long)(s[n] - '0');
	}
	if (n == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int
v1_addr(int family, const char *addr, const char *port,
    struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)(void *)ss;
	uint16_t		 p;

	memset(ss, 0, sizeof(*ss));
	if (v1_port(port, &p) == -1)
		return -1;
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(p);
		return inet_pton(AF_INET, addr, &sin->sin_addr) == 1 ? 0 : -1;
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(p);
	return inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1 ? 0 : -1;
}

/*
 * Version 1 (section 2.1): "PROXY" SP proto SP src SP dst SP sport SP
 * dport CRLF, single spaces, at most 107 bytes; proto TCP4, TCP6 or
 * UNKNOWN (then anything up to the CRLF, which we ignore).
 */
static int
parse_v1(const uint8_t *buf, size_t len, struct proxy_hdr *h, size_t *used,
    const char **why)
{
	char		 line[PROXY_V1_MAX + 1], *field[6], *p;
	size_t		 i, end, n;
	int		 family;

	for (end = 0; end < len && end < PROXY_V1_MAX; end++)
		if (buf[end] == '\n')
			break;
	if (end == len) {
		/* no LF yet: all of it is header */
		if (len >= PROXY_V1_MAX)
			return bad(why, "v1 header too long");
		*used = len;
		return PROXY_MORE;
	}
	if (end == PROXY_V1_MAX)
		return bad(why, "v1 header too long");
	if (end == 0 || buf[end - 1] != '\r')
		return bad(why, "v1 header not ended by CRLF");
	/* the line without "PROXY " and CRLF */
	n = end - 1 - sizeof(v1_sig);
	memcpy(line, buf + sizeof(v1_sig), n);
	line[n] = '\0';
	for (i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 ||
		    (unsigned char)line[i] > 0x7e)
			return bad(why, "v1 header with a control character");
	n = 0;
	for (p = line;; p++) {
		if (n == 6)
			return bad(why, "v1 header with too many fields");
		field[n++] = p;
		if ((p = strchr(p, ' ')) == NULL)
			break;
		*p = '\0';
		/* UNKNOWN: whatever follows is not ours to read */
		if (n == 1 && strcmp(field[0], "UNKNOWN") == 0)
			break;
	}
	memset(h, 0, sizeof(*h));
	h->version = 1;
	*used = end + 1;
	if (strcmp(field[0], "UNKNOWN") == 0)
		return PROXY_DONE;
	if (strcmp(field[0], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(field[0], "TCP6") == 0)
		family = AF_INET6;
	else
		return bad(why, "v1 header with an unknown protocol");
	if (n != 5)
		return bad(why, "v1 header without its four fields");
	for (i = 1; i < n; i++)
		if (field[i][0] == '\0')
			return bad(why, "v1 header with an empty field");
	if (v1_addr(family, field[1], field[3], &h->src) == -1 ||
	    v1_addr(family, field[2], field[4], &h->dst) == -1)
		return bad(why, "v1 header with a bad address or port");
	h->has_addr = 1;
	return PROXY_DONE;
}

static void
v2_inet(struct sockaddr_storage *ss, const uint8_t *addr,
    const uint8_t *port)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, addr, 4);
	memcpy(&sin->sin_port, port, 2);	/* both in network order */
}

static void
v2_inet6(struct sockaddr_storage *ss, const uint8_t *addr,
    const uint8_t *port)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, addr, 16);
	memcpy(&sin6->sin6_port, port, 2);
}

/* Type-length-value records after the addresses: each must fit. */
static int
v2_tlvs(const uint8_t *p, size_t left)
{
	size_t	n;

	while (left > 0) {
		if (left < 3)
			return -1;
		n = (size_t)p[1] << 8 | p[2];
		if (n > left - 3)
			return -1;
		p += 3 + n;
		left -= 3 + n;
	}
	return 0;
}

static int
parse_v2(const uint8_t *buf, size_t len, struct proxy_hdr *h, size_t *used,
    const char **why)
{
	const uint8_t	*body = buf + PROXY_V2_FIXED;
	size_t		 blen, alen;
	int		 cmd, fam, proto;

	if (len > 12 && (buf[12] >> 4) != 2)
		return bad(why, "v2 header of another version");
	if (len > 12 && (buf[12] & 0x0f) > V2_CMD_PROXY)
		return bad(why, "v2 header with an unknown command");
	if (len < PROXY_V2_FIXED) {
		*used = len;
		return PROXY_MORE;
	}
	blen = (size_t)buf[14] << 8 | buf[15];
	if (blen > PROXY_V2_BODY_MAX)
		return bad(why, "v2 header too long");
	if (len < PROXY_V2_FIXED + blen) {
		*used = len;
		return PROXY_MORE;
	}
	*used = PROXY_V2_FIXED + blen;
	memset(h, 0, sizeof(*h));
	h->version = 2;
	cmd = buf[12] & 0x0f;
	fam = buf[13] >> 4;
	proto = buf[13] & 0x0f;
	/* LOCAL: the address block, whatever it says, is not a client's */
	if (cmd == V2_CMD_LOCAL)
		return PROXY_DONE;
	if (proto > V2_T_DGRAM)
		return bad(why, "v2 header with an unknown transport");
	switch (fam) {
	case V2_AF_UNSPEC:
		/* 2.2: "the receiver ... must use the real connection
		 * endpoints"; nothing here has a known size to check */
		return PROXY_DONE;
	case V2_AF_INET:
		alen = V2_LEN_INET;
		break;
	case V2_AF_INET6:
		alen = V2_LEN_INET6;
		break;
	case V2_AF_UNIX:
		alen = V2_LEN_UNIX;
		break;
	default:
		return bad(why, "v2 header with an unknown address family");
	}
	if (proto != V2_T_STREAM)
		return bad(why, "v2 header for a transport other than a "
		    "stream");
	if (blen < alen)
		return bad(why, "v2 header shorter than its addresses");
	if (v2_tlvs(body + alen, blen - alen) == -1)
		return bad(why, "v2 header with a truncated TLV");
	if (fam == V2_AF_INET) {
		v2_inet(&h->src, body, body + 8);
		v2_inet(&h->dst, body + 4, body + 10);
		h->has_addr = 1;
	} else if (fam == V2_AF_INET6) {
		v2_inet6(&h->src, body, body + 32);
		v2_inet6(&h->dst, body + 16, body + 34);
		h->has_addr = 1;
	}
	/* AF_UNIX: a client on the balancer's host; keep the balancer's */
	return PROXY_DONE;
}

int
proxy_parse(const uint8_t *buf, size_t len, struct proxy_hdr *h,
    size_t *used, const char **why)
{
	size_t	n;

	*used = 0;
	*why = NULL;
	if (len == 0)
		return PROXY_MORE;
	if (buf[0] == v1_sig[0]) {
		n = len < sizeof(v1_sig) ? len : sizeof(v1_sig);
		if (memcmp(buf, v1_sig, n) != 0)
			return bad(why, "not a PROXY header");
		if (len < sizeof(v1_sig)) {
			*used = len;
			return PROXY_MORE;
		}
		return parse_v1(buf, len, h, used, why);
	}
	n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
	if (memcmp(buf, v2_sig, n) != 0)
		return bad(why, "not a PROXY header");
	if (len < sizeof(v2_sig)) {
		*used = len;
		return PROXY_MORE;
	}
	return parse_v2(buf, len, h, used, why);
}
