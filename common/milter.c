/*
 * milter.c -- the milter protocol codec (see milter.h): packets for a
 * mail filter, and the checks on what it answers.
 *
 * The encoders build each packet in one reserved extent of the output
 * buffer and commit it whole, so a failure (ENOMEM, an argument out of
 * bounds) never leaves half a packet queued for the filter.
 *
 * The decoder trusts nothing.  A filter is a separate program, often
 * third-party, reachable over TCP; what it sends ends up in the spool
 * (headers), in envelopes (recipients, the sender, the quarantine
 * reason) and in SMTP replies.  So every string must be NUL-terminated
 * inside the packet, every reply carries exactly the fields libmilter
 * sends for it (no trailing bytes: libmilter sends none), and the
 * strings are checked for what would corrupt the place they go to:
 *
 *   header names	1 or more of %x21-39 / %x3B-7E (RFC 5322 ftext:
 *			printable US-ASCII, no ':' and no space);
 *   header values	any byte but the C0 controls and DEL, except HTAB
 *			and folding: a line end (LF, or CRLF, which is
 *			turned into LF in place, since the spool has LF
 *			line ends) followed by SP or HTAB and by at least
 *			one byte that is neither (a line of blanks only is
 *			taken by some parsers for the empty line that ends
 *			the header, and would let a filter smuggle header
 *			fields into the body or the reverse);  8-bit bytes
 *			pass (RFC 6532 headers);
 *   addresses, the	no C0 controls and no DEL (they would break the
 *   quarantine reason,	envelope line or the log line they are written
 *   macro lists	to); 8-bit bytes pass (SMTPUTF8 addresses);
 *   ESMTP arguments	printable US-ASCII and SP only (RFC 5321 4.1.2).
 *
 * The SMTP reply a filter asks for (SMFIR_REPLYCODE) is checked by
 * milter_reply_check() when the caller is about to use it.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "milter.h"

/* a packet under construction: one extent reserved in the output */
struct packet {
	struct evbuffer	*out;
	struct evbuffer_iovec v;
	uint8_t		*p;	/* next byte to write */
	size_t		 size;	/* of the whole packet */
};

/*
 * Reserve room for a packet of command cmd with datalen bytes of data
 * and write its length and command byte.  The length field counts the
 * command byte and the data, and must stay within MILTER_PACKET_MAX, the
 * bound our own decoder (and any sane filter) puts on a packet.
 */
static int
packet_begin(struct packet *pk, struct evbuffer *out, char cmd,
    size_t datalen)
{
	uint32_t	n;

	if (datalen >= MILTER_PACKET_MAX) {
		errno = EINVAL;
		return -1;
	}
	pk->out = out;
	pk->size = 4 + 1 + datalen;
	if (evbuffer_reserve_space(out, pk->size, &pk->v, 1) != 1 ||
	    pk->v.iov_len < pk->size) {
		errno = ENOMEM;
		return -1;
	}
	pk->p = pk->v.iov_base;
	n = htonl((uint32_t)(1 + datalen));
	memcpy(pk->p, &n, 4);
	pk->p[4] = (uint8_t)cmd;
	pk->p += 5;
	return 0;
}

static void
packet_bytes(struct packet *pk, const void *data, size_t len)
{
	if (len > 0)
		memcpy(pk->p, data, len);
	pk->p += len;
}

/* a string and its NUL */
static void
packet_str(struct packet *pk, const char *s, size_t len)
{
	packet_bytes(pk, s, len);
	*pk->p++ = '\0';
}

static void
packet_u32(struct packet *pk, uint32_t v)
{
	v = htonl(v);
	packet_bytes(pk, &v, 4);
}

static int
packet_end(struct packet *pk)
{
	pk->v.iov_len = pk->size;
	if (evbuffer_commit_space(pk->out, &pk->v, 1) == -1) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* n + m, or SIZE_MAX when it would overflow (then refused as too long) */
static size_t
size_add(size_t n, size_t m)
{
	return n > SIZE_MAX - m ? SIZE_MAX : n + m;
}

int
milter_put_optneg(struct evbuffer *out, uint32_t version, uint32_t actions,
    uint32_t protocol)
{
	struct packet	pk;

	if (packet_begin(&pk, out, SMFIC_OPTNEG, 12) == -1)
		return -1;
	packet_u32(&pk, version);
	packet_u32(&pk, actions);
	packet_u32(&pk, protocol);
	return packet_end(&pk);
}

int
milter_put_empty(struct evbuffer *out, char cmd)
{
	struct packet	pk;

	switch (cmd) {
	case SMFIC_DATA:
	case SMFIC_EOH:
	case SMFIC_BODYEOB:
	case SMFIC_ABORT:
	case SMFIC_QUIT:
	case SMFIC_QUIT_NC:
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (packet_begin(&pk, out, cmd, 0) == -1)
		return -1;
	return packet_end(&pk);
}

int
milter_put_macros(struct evbuffer *out, char cmd,
    const struct milter_macro *m, size_t n)
{
	struct packet	pk;
	size_t		i, len = 1;

	switch (cmd) {
	case SMFIC_CONNECT:
	case SMFIC_HELO:
	case SMFIC_MAIL:
	case SMFIC_RCPT:
	case SMFIC_DATA:
	case SMFIC_EOH:
	case SMFIC_BODYEOB:
	case SMFIC_UNKNOWN:
	case SMFIC_HEADER:	/* Postfix: the queue id before each */
	case SMFIC_BODY:
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (m[i].name == NULL || m[i].name[0] == '\0' ||
		    m[i].value == NULL) {
			errno = EINVAL;
			return -1;
		}
		len = size_add(len, size_add(strlen(m[i].name), 1));
		len = size_add(len, size_add(strlen(m[i].value), 1));
	}
	if (packet_begin(&pk, out, SMFIC_MACRO, len) == -1)
		return -1;
	*pk.p++ = (uint8_t)cmd;
	for (i = 0; i < n; i++) {
		packet_str(&pk, m[i].name, strlen(m[i].name));
		packet_str(&pk, m[i].value, strlen(m[i].value));
	}
	return packet_end(&pk);
}

int
milter_put_connect(struct evbuffer *out, const char *hostname,
    const struct sockaddr_storage *ss, const char *path)
{
	struct packet		 pk;
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	char			 text[INET6_ADDRSTRLEN];
	const char		*addr = NULL;
	char			 family = 'U';
	uint16_t		 port = 0;
	size_t			 hlen, len;

	if (hostname == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (ss != NULL && ss->ss_family == AF_INET) {
		sin = (const struct sockaddr_in *)ss;
		if (inet_ntop(AF_INET, &sin->sin_addr, text,
		    sizeof(text)) == NULL)
			return -1;
		family = '4';
		port = sin->sin_port;	/* already in network order */
		addr = text;
	} else if (ss != NULL && ss->ss_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)ss;
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, text,
		    sizeof(text)) == NULL)
			return -1;
		family = '6';
		port = sin6->sin6_port;
		addr = text;
	} else if (ss != NULL && ss->ss_family == AF_UNIX) {
		family = 'L';
		addr = path != NULL ? path : "";
	}
	hlen = strlen(hostname);
	len = size_add(hlen, 2);
	if (addr != NULL)
		len = size_add(len, size_add(2, size_add(strlen(addr), 1)));
	if (packet_begin(&pk, out, SMFIC_CONNECT, len) == -1)
		return -1;
	packet_str(&pk, hostname, hlen);
	*pk.p++ = (uint8_t)family;
	if (addr != NULL) {
		packet_bytes(&pk, &port, 2);
		packet_str(&pk, addr, strlen(addr));
	}
	return packet_end(&pk);
}

/* a packet of one string: HELO, UNKNOWN */
static int
put_string(struct evbuffer *out, char cmd, const char *s)
{
	struct packet	pk;
	size_t		len;

	if (s == NULL) {
		errno = EINVAL;
		return -1;
	}
	len = strlen(s);
	if (packet_begin(&pk, out, cmd, size_add(len, 1)) == -1)
		return -1;
	packet_str(&pk, s, len);
	return packet_end(&pk);
}

int
milter_put_helo(struct evbuffer *out, const char *helo)
{
	return put_string(out, SMFIC_HELO, helo);
}

int
milter_put_unknown(struct evbuffer *out, const char *line)
{
	return put_string(out, SMFIC_UNKNOWN, line);
}

int
milter_put_envaddr(struct evbuffer *out, char cmd, const char *addr,
    const char *const *args, size_t nargs)
{
	struct packet	pk;
	size_t		i, len;

	if ((cmd != SMFIC_MAIL && cmd != SMFIC_RCPT) || addr == NULL) {
		errno = EINVAL;
		return -1;
	}
	len = size_add(strlen(addr), 1);
	for (i = 0; i < nargs; i++) {
		if (args[i] == NULL) {
			errno = EINVAL;
			return -1;
		}
		len = size_add(len, size_add(strlen(args[i]), 1));
	}
	if (packet_begin(&pk, out, cmd, len) == -1)
		return -1;
	packet_str(&pk, addr, strlen(addr));
	for (i = 0; i < nargs; i++)
		packet_str(&pk, args[i], strlen(args[i]));
	return packet_end(&pk);
}

int
milter_put_header(struct evbuffer *out, const char *name, size_t namelen,
    const char *value, size_t valuelen)
{
	struct packet	pk;

	if (name == NULL || value == NULL ||
	    memchr(name, '\0', namelen) != NULL ||
	    memchr(value, '\0', valuelen) != NULL) {
		errno = EINVAL;
		return -1;
	}
	if (packet_begin(&pk, out, SMFIC_HEADER,
	    size_add(size_add(namelen, 1), size_add(valuelen, 1))) == -1)
		return -1;
	packet_str(&pk, name, namelen);
	packet_str(&pk, value, valuelen);
	return packet_end(&pk);
}

int
milter_put_body(struct evbuffer *out, const void *data, size_t len)
{
	struct packet	pk;

	if (len > MILTER_CHUNK_MAX || (data == NULL && len > 0)) {
		errno = EINVAL;
		return -1;
	}
	if (packet_begin(&pk, out, SMFIC_BODY, len) == -1)
		return -1;
	packet_bytes(&pk, data, len);
	return packet_end(&pk);
}

long
milter_frame(const uint8_t *buf, size_t avail)
{
	uint32_t	n;

	if (avail < 4)
		return 0;
	memcpy(&n, buf, 4);
	n = ntohl(n);
	if (n == 0 || n > MILTER_PACKET_MAX)
		return -1;
	if (avail - 4 < n)
		return 0;
	return 4 + (long)n;
}

/* the data of a reply being decoded */
struct reader {
	uint8_t		*p, *end;
};

static int
read_u32(struct reader *rd, uint32_t *v)
{
	if (rd->end - rd->p < 4)
		return -1;
	memcpy(v, rd->p, 4);
	*v = ntohl(*v);
	rd->p += 4;
	return 0;
}

/* a NUL-terminated string inside the data */
static char *
read_str(struct reader *rd)
{
	uint8_t	*nul, *s = rd->p;

	if (rd->p >= rd->end ||
	    (nul = memchr(rd->p, '\0', (size_t)(rd->end - rd->p))) == NULL)
		return NULL;
	rd->p = nul + 1;
	return (char *)s;
}

/* no C0 control and no DEL: what an envelope or a log line can hold */
static int
text_ok(const char *s)
{
	const unsigned char	*u;

	for (u = (const unsigned char *)s; *u != '\0'; u++)
		if (*u < 0x20 || *u == 0x7f)
			return 0;
	return 1;
}

/* ESMTP parameters: printable US-ASCII and SP */
static int
args_ok(const char *s)
{
	const unsigned char	*u;

	for (u = (const unsigned char *)s; *u != '\0'; u++)
		if (*u < 0x20 || *u > 0x7e)
			return 0;
	return 1;
}

/* RFC 5322 field name: 1*ftext, %d33-57 / %d59-126 */
static int
header_name_ok(const char *s)
{
	const unsigned char	*u;

	if (*s == '\0')
		return 0;
	for (u = (const unsigned char *)s; *u != '\0'; u++)
		if (*u < 0x21 || *u > 0x7e || *u == ':')
			return 0;
	return 1;
}

/*
 * A header value as the file comment says: CRLF becomes LF in place
 * (the string gets shorter), a line end must be followed by SP or HTAB
 * and then by something else than blanks before the next line end.
 */
static int
header_value_fix(char *s, const char **err)
{
	unsigned char	*r, *w, *q;

	for (r = w = (unsigned char *)s; *r != '\0'; r++) {
		if (*r == '\r') {
			if (r[1] != '\n') {
				*err = "bare CR in a header value";
				return -1;
			}
			continue;	/* the LF that follows is kept */
		}
		if (*r == '\n') {
			if (r[1] != ' ' && r[1] != '\t') {
				*err = "header value: line end not "
				    "followed by a blank";
				return -1;
			}
			for (q = r + 1; *q == ' ' || *q == '\t'; q++)
				;
			if (*q == '\0' || *q == '\r' || *q == '\n') {
				*err = "header value: a folded line of "
				    "blanks only";
				return -1;
			}
		} else if ((*r < 0x20 && *r != '\t') || *r == 0x7f) {
			*err = "control character in a header value";
			return -1;
		}
		*w++ = *r;
	}
	*w = '\0';
	return 0;
}

/* name\0value\0, both checked; the value may be rewritten */
static int
read_header(struct reader *rd, struct milter_reply *r, const char **err)
{
	char	*value;

	if ((r->name = read_str(rd)) == NULL ||
	    (value = read_str(rd)) == NULL) {
		*err = "header name or value without its NUL";
		return -1;
	}
	if (!header_name_ok(r->name)) {
		*err = "header name empty or not printable";
		return -1;
	}
	if (header_value_fix(value, err) == -1)
		return -1;
	r->value = value;
	return 0;
}

/*
 * addr\0, then args\0 where the reply may carry them (ADDRCPT_PAR,
 * CHGFROM: smfi_addrcpt_par() and smfi_chgfrom() send the arguments as
 * one string, or nothing when there are none).
 */
static int
read_addr(struct reader *rd, struct milter_reply *r, int with_args,
    int may_be_empty, const char **err)
{
	if ((r->addr = read_str(rd)) == NULL) {
		*err = "address without its NUL";
		return -1;
	}
	if (!may_be_empty && r->addr[0] == '\0') {
		*err = "empty address";
		return -1;
	}
	if (!text_ok(r->addr)) {
		*err = "control character in an address";
		return -1;
	}
	if (!with_args || rd->p == rd->end)
		return 0;
	if ((r->args = read_str(rd)) == NULL) {
		*err = "ESMTP arguments without their NUL";
		return -1;
	}
	if (!args_ok(r->args)) {
		*err = "ESMTP arguments not printable US-ASCII";
		return -1;
	}
	return 0;
}

/*
 * SMFIR_OPTNEG: version, actions, protocol steps; then what
 * smfi_setsymlist() asked for, as libmilter appends it: pairs of a stage
 * (uint32) and the list of macro names for it, NUL-terminated.
 */
static int
read_optneg(struct reader *rd, struct milter_reply *r, const char **err)
{
	uint32_t	 stage;
	char		*list;

	if (read_u32(rd, &r->version) == -1 ||
	    read_u32(rd, &r->actions) == -1 ||
	    read_u32(rd, &r->protocol) == -1) {
		*err = "OPTNEG too short";
		return -1;
	}
	if (r->version < 2 || r->version > MILTER_VERSION) {
		*err = "OPTNEG: unsupported protocol version";
		return -1;
	}
	while (rd->p < rd->end) {
		if (read_u32(rd, &stage) == -1 ||
		    (list = read_str(rd)) == NULL) {
			*err = "OPTNEG: truncated macro list";
			return -1;
		}
		if (stage >= SMFIM_COUNT) {
			*err = "OPTNEG: macro list for an unknown stage";
			return -1;
		}
		if (r->symlist[stage] != NULL) {
			*err = "OPTNEG: two macro lists for one stage";
			return -1;
		}
		if (!text_ok(list)) {
			*err = "OPTNEG: control character in a macro list";
			return -1;
		}
		r->symlist[stage] = list;
	}
	return 0;
}

int
milter_parse_reply(uint8_t *pkt, size_t len, struct milter_reply *r,
    const char **err)
{
	struct reader	rd;
	uint32_t	n;

	memset(r, 0, sizeof(*r));
	*err = NULL;
	if (len < 5) {
		*err = "packet too short";
		return -1;
	}
	memcpy(&n, pkt, 4);
	n = ntohl(n);
	if (n != len - 4 || n > MILTER_PACKET_MAX) {
		*err = "packet length does not match its size";
		return -1;
	}
	r->cmd = (char)pkt[4];
	rd.p = pkt + 5;
	rd.end = pkt + len;

	switch (r->cmd) {
	case SMFIR_ACCEPT:
	case SMFIR_CONTINUE:
	case SMFIR_DISCARD:
	case SMFIR_REJECT:
	case SMFIR_TEMPFAIL:
	case SMFIR_SKIP:
	case SMFIR_PROGRESS:
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		break;
	case SMFIR_OPTNEG:
		if (read_optneg(&rd, r, err) == -1)
			return -1;
		break;
	case SMFIR_ADDHEADER:
		if (read_header(&rd, r, err) == -1)
			return -1;
		break;
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		if (read_u32(&rd, &r->index) == -1) {
			*err = "header index missing";
			return -1;
		}
		if (read_header(&rd, r, err) == -1)
			return -1;
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
		if (read_addr(&rd, r, 0, 0, err) == -1)
			return -1;
		break;
	case SMFIR_ADDRCPT_PAR:
		if (read_addr(&rd, r, 1, 0, err) == -1)
			return -1;
		break;
	case SMFIR_CHGFROM:
		if (read_addr(&rd, r, 1, 1, err) == -1)
			return -1;
		break;
	case SMFIR_REPLBODY:
		r->data = rd.p;
		r->len = (size_t)(rd.end - rd.p);
		rd.p = rd.end;
		break;
	case SMFIR_QUARANTINE:
		if ((r->text = read_str(&rd)) == NULL) {
			*err = "quarantine reason without its NUL";
			return -1;
		}
		if (r->text[0] == '\0' || !text_ok(r->text)) {
			*err = "quarantine reason empty or not text";
			return -1;
		}
		break;
	case SMFIR_REPLYCODE:
		/* the text itself: milter_reply_check() */
		if ((r->text = read_str(&rd)) == NULL) {
			*err = "reply text without its NUL";
			return -1;
		}
		break;
	case SMFIR_SETSYMLIST:
		/* libmilter sends the lists inside its OPTNEG reply only */
		*err = "SETSYMLIST outside the OPTNEG reply";
		return -1;
	default:
		*err = "unknown reply";
		return -1;
	}
	if (rd.p != rd.end) {
		*err = "trailing bytes after the reply";
		return -1;
	}
	return 0;
}

int
milter_reply_check(const char *text, char *buf, size_t bufsize,
    char *lines[MILTER_REPLY_LINES], int *code, const char **err)
{
	const char	*p = text, *e, *next;
	char		*w = buf;
	size_t		 len, copy, i;
	int		 n = 0, c, last;

	*err = NULL;
	/* each line's NUL takes the place of its line end (1 or 2 bytes) */
	if (bufsize < strlen(text) + 1) {
		*err = "reply buffer too small";
		return -1;
	}
	*code = 0;
	for (;;) {
		for (e = p; *e != '\0' && *e != '\r' && *e != '\n'; e++)
			;
		len = (size_t)(e - p);
		if (*e == '\r' && e[1] != '\n') {
			*err = "bare CR in the reply";
			return -1;
		}
		next = *e == '\0' ? e : e + (*e == '\r' ? 2 : 1);
		last = *e == '\0';
		if (!last && *next == '\0') {
			*err = "empty last line in the reply";
			return -1;
		}
		if (n == MILTER_REPLY_LINES) {
			*err = "too many lines in the reply";
			return -1;
		}
		if (len > MILTER_REPLY_LINE_MAX) {
			*err = "reply line too long";
			return -1;
		}
		if (len < 3 || (p[0] != '4' && p[0] != '5') ||
		    p[1] < '0' || p[1] > '5' || p[2] < '0' || p[2] > '9') {
			*err = "reply line without a 4xx or 5xx code";
			return -1;
		}
		c = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (n > 0 && c != *code) {
			*err = "reply lines with different codes";
			return -1;
		}
		*code = c;
		if (!last && (len == 3 || p[3] != '-')) {
			*err = "reply line but the last without '-'";
			return -1;
		}
		if (last && len > 3 && p[3] != ' ') {
			*err = "last reply line without ' '";
			return -1;
		}
		for (i = 4; i < len; i++)
			if (((unsigned char)p[i] < 0x20 && p[i] != '\t') ||
			    (unsigned char)p[i] > 0x7e) {
				*err = "reply text not printable US-ASCII";
				return -1;
			}
		copy = (last && len == 4) ? 3 : len;
		lines[n++] = w;
		memcpy(w, p, copy);
		w[copy] = '\0';
		w += copy + 1;
		if (last)
			break;
		p = next;
	}
	return n;
}

const char *
milter_macro_canon(const char *name, char *buf, size_t size)
{
	const char	*s = name;
	size_t		 len, i;

	len = strlen(name);
	if (len >= 2 && name[0] == '{' && name[len - 1] == '}') {
		s = name + 1;
		len -= 2;
	}
	if (len == 0)
		return NULL;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e ||
		    s[i] == '{' || s[i] == '}')
			return NULL;
	if (len == 1) {
		if (size < 2)
			return NULL;
		buf[0] = s[0];
		buf[1] = '\0';
		return buf;
	}
	if (size < len + 3)
		return NULL;
	buf[0] = '{';
	memcpy(buf + 1, s, len);
	buf[len + 1] = '}';
	buf[len + 2] = '\0';
	return buf;
}

const char *
milter_reply_name(char cmd)
{
	switch (cmd) {
	case SMFIR_ADDRCPT:	return "addrcpt";
	case SMFIR_DELRCPT:	return "delrcpt";
	case SMFIR_ADDRCPT_PAR:	return "addrcpt_par";
	case SMFIR_SHUTDOWN:	return "shutdown";
	case SMFIR_ACCEPT:	return "accept";
	case SMFIR_REPLBODY:	return "replbody";
	case SMFIR_CONTINUE:	return "continue";
	case SMFIR_DISCARD:	return "discard";
	case SMFIR_CHGFROM:	return "chgfrom";
	case SMFIR_CONN_FAIL:	return "conn_fail";
	case SMFIR_ADDHEADER:	return "addheader";
	case SMFIR_INSHEADER:	return "insheader";
	case SMFIR_SETSYMLIST:	return "setsymlist";
	case SMFIR_CHGHEADER:	return "chgheader";
	case SMFIR_PROGRESS:	return "progress";
	case SMFIR_QUARANTINE:	return "quarantine";
	case SMFIR_REJECT:	return "reject";
	case SMFIR_SKIP:	return "skip";
	case SMFIR_TEMPFAIL:	return "tempfail";
	case SMFIR_REPLYCODE:	return "replycode";
	case SMFIR_OPTNEG:	return "optneg";
	default:		return "?";
	}
}

const char *
milter_command_name(char cmd)
{
	switch (cmd) {
	case SMFIC_ABORT:	return "abort";
	case SMFIC_BODY:	return "body";
	case SMFIC_CONNECT:	return "connect";
	case SMFIC_MACRO:	return "macro";
	case SMFIC_BODYEOB:	return "eom";
	case SMFIC_HELO:	return "helo";
	case SMFIC_QUIT_NC:	return "quit_nc";
	case SMFIC_HEADER:	return "header";
	case SMFIC_MAIL:	return "mail";
	case SMFIC_EOH:		return "eoh";
	case SMFIC_OPTNEG:	return "optneg";
	case SMFIC_QUIT:	return "quit";
	case SMFIC_RCPT:	return "rcpt";
	case SMFIC_DATA:	return "data";
	case SMFIC_UNKNOWN:	return "unknown";
	default:		return "?";
	}
}
