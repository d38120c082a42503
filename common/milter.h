/*
 * milter.h -- the milter protocol, version 6, as a codec: the packets an
 * MTA sends a mail filter and the filter's replies (Sendmail's libmilter
 * protocol, as Postfix speaks it; no libmilter linked).
 *
 * A packet is a 4-byte length in network order (the command byte and
 * its data), the command byte, then the data; strings in the data are
 * NUL-terminated.  This file only encodes and decodes: no I/O, no
 * state.  The smtp worker's client (smtp/smtp_milter.c) drives a chain
 * of filters with it; unit tests and the fuzz harness call it directly.
 *
 * Everything a filter sends is untrusted input: milter_frame() bounds a
 * packet before anyone buffers it whole, milter_parse_reply() checks
 * every field (lengths, NUL termination, the strings each reply must
 * carry) before a caller reads it, and the reply texts a filter asks us
 * to give the SMTP client are checked line by line
 * (milter_reply_check()).
 */
#ifndef POSTHASTE_MILTER_H
#define POSTHASTE_MILTER_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define MILTER_VERSION		6

/* commands, MTA to filter (SMFIC_*) */
#define SMFIC_ABORT		'A'	/* abort the current message */
#define SMFIC_BODY		'B'	/* a body chunk */
#define SMFIC_CONNECT		'C'
#define SMFIC_MACRO		'D'	/* macros for the command that follows */
#define SMFIC_BODYEOB		'E'	/* end of message */
#define SMFIC_HELO		'H'
#define SMFIC_QUIT_NC		'K'	/* quit, a new connection follows */
#define SMFIC_HEADER		'L'
#define SMFIC_MAIL		'M'
#define SMFIC_EOH		'N'
#define SMFIC_OPTNEG		'O'
#define SMFIC_QUIT		'Q'
#define SMFIC_RCPT		'R'
#define SMFIC_DATA		'T'
#define SMFIC_UNKNOWN		'U'

/* replies and modifications, filter to MTA (SMFIR_*) */
#define SMFIR_ADDRCPT		'+'
#define SMFIR_DELRCPT		'-'
#define SMFIR_ADDRCPT_PAR	'2'	/* with ESMTP arguments */
#define SMFIR_SHUTDOWN		'4'	/* 421: close the session */
#define SMFIR_ACCEPT		'a'
#define SMFIR_REPLBODY		'b'
#define SMFIR_CONTINUE		'c'
#define SMFIR_DISCARD		'd'
#define SMFIR_CHGFROM		'e'
#define SMFIR_CONN_FAIL		'f'
#define SMFIR_ADDHEADER		'h'
#define SMFIR_INSHEADER		'i'
#define SMFIR_SETSYMLIST	'l'
#define SMFIR_CHGHEADER		'm'
#define SMFIR_PROGRESS		'p'
#define SMFIR_QUARANTINE	'q'
#define SMFIR_REJECT		'r'
#define SMFIR_SKIP		's'
#define SMFIR_TEMPFAIL		't'
#define SMFIR_REPLYCODE		'y'
#define SMFIR_OPTNEG		'O'

/* actions a filter may take (SMFIF_*), negotiated */
#define SMFIF_ADDHDRS		0x0001
#define SMFIF_CHGBODY		0x0002
#define SMFIF_ADDRCPT		0x0004
#define SMFIF_DELRCPT		0x0008
#define SMFIF_CHGHDRS		0x0010
#define SMFIF_QUARANTINE	0x0020
#define SMFIF_CHGFROM		0x0040
#define SMFIF_ADDRCPT_PAR	0x0080
#define SMFIF_SETSYMLIST	0x0100
#define SMFIF_ALL		0x01ff

/* protocol steps and flags (SMFIP_*), negotiated */
#define SMFIP_NOCONNECT		0x000001
#define SMFIP_NOHELO		0x000002
#define SMFIP_NOMAIL		0x000004
#define SMFIP_NORCPT		0x000008
#define SMFIP_NOBODY		0x000010
#define SMFIP_NOHDRS		0x000020
#define SMFIP_NOEOH		0x000040
#define SMFIP_NR_HDR		0x000080	/* no reply to a header */
#define SMFIP_NOUNKNOWN		0x000100
#define SMFIP_NODATA		0x000200
#define SMFIP_SKIP		0x000400	/* the MTA understands SKIP */
#define SMFIP_RCPT_REJ		0x000800	/* send rejected RCPTs too */
#define SMFIP_NR_CONN		0x001000
#define SMFIP_NR_HELO		0x002000
#define SMFIP_NR_MAIL		0x004000
#define SMFIP_NR_RCPT		0x008000
#define SMFIP_NR_DATA		0x010000
#define SMFIP_NR_UNKN		0x020000
#define SMFIP_NR_EOH		0x040000
#define SMFIP_NR_BODY		0x080000
#define SMFIP_HDR_LEADSPC	0x100000	/* keep the space after ':' */
#define SMFIP_ALL		0x1fffff

/* the stages a filter may ask macros for (SMFIR_SETSYMLIST, SMFIM_*) */
#define SMFIM_CONNECT		0
#define SMFIM_HELO		1
#define SMFIM_ENVFROM		2
#define SMFIM_ENVRCPT		3
#define SMFIM_DATA		4
#define SMFIM_EOM		5
#define SMFIM_EOH		6
#define SMFIM_COUNT		7

/* a body chunk we send is at most this long (libmilter's limit) */
#define MILTER_CHUNK_MAX	65535
/*
 * A packet from a filter may be at most this long (length field): a
 * replacement body chunk or a header it adds is far below it; more is a
 * broken or hostile filter, refused before it is buffered.
 */
#define MILTER_PACKET_MAX	(1024 * 1024)
/* a reply text a filter gives the SMTP client: lines, each line's size */
#define MILTER_REPLY_LINES	32
#define MILTER_REPLY_LINE_MAX	512

/*
 * Encoding: each appends one whole packet to out and returns 0, or -1
 * if out could not grow (ENOMEM) or an argument is out of bounds (a
 * string longer than MILTER_PACKET_MAX, a body chunk over
 * MILTER_CHUNK_MAX).  Note that libmilter takes no command with more
 * than 64 KB of data unless the filter negotiated a larger size
 * (Sendmail's SMFIP_MDS_256K 0x10000000 / SMFIP_MDS_1M 0x20000000,
 * not offered here): tried, a 70000-byte header makes it stop
 * answering; the caller keeps what it sends (a header field) within
 * MILTER_CHUNK_MAX.
 */
int	milter_put_optneg(struct evbuffer *out, uint32_t version,
	    uint32_t actions, uint32_t protocol);
/* a packet with no data: SMFIC_DATA, EOH, BODYEOB, ABORT, QUIT, QUIT_NC */
int	milter_put_empty(struct evbuffer *out, char cmd);

struct milter_macro {
	const char	*name;	/* "j", "{daemon_name}"... as sent */
	const char	*value;
};
/*
 * SMFIC_MACRO for the command cmd that follows it (SMFIC_CONNECT,
 * HELO, MAIL, RCPT, DATA, HEADER, EOH, BODY, BODYEOB, UNKNOWN): n
 * name/value pairs.
 * With n == 0 nothing is appended (and 0 returned).
 */
int	milter_put_macros(struct evbuffer *out, char cmd,
	    const struct milter_macro *, size_t n);
/*
 * SMFIC_CONNECT: the client's host name ("[192.0.2.1]" when it has
 * none, as Postfix sends), then its family and port and address text
 * from ss: '4' or '6' with the port (taken from ss, where it is in
 * network order already, and sent so) and the address in text
 * ("192.0.2.1", "2001:db8::1": no "IPv6:" prefix), 'L' for a unix
 * socket with port 0 and path text ("" if path is NULL); ss NULL or any
 * other family sends 'U' (unknown) and no port or address.
 */
int	milter_put_connect(struct evbuffer *out, const char *hostname,
	    const struct sockaddr_storage *ss, const char *path);
int	milter_put_helo(struct evbuffer *out, const char *helo);
/*
 * SMFIC_MAIL or SMFIC_RCPT: the address as given with its angle
 * brackets ("<a@b>", "<>"), then each ESMTP argument ("SIZE=100").
 */
int	milter_put_envaddr(struct evbuffer *out, char cmd, const char *addr,
	    const char *const *args, size_t nargs);
/*
 * SMFIC_HEADER: name (without ':') and value (what follows the ':',
 * folded lines separated by a bare LF, no final line end; the caller
 * strips the leading space unless the filter asked SMFIP_HDR_LEADSPC).
 * name and value are counted, not NUL-terminated; a NUL inside either
 * is refused (-1).
 */
int	milter_put_header(struct evbuffer *out, const char *name,
	    size_t namelen, const char *value, size_t valuelen);
/* SMFIC_BODY: len <= MILTER_CHUNK_MAX bytes (CRLF line ends) */
int	milter_put_body(struct evbuffer *out, const void *data, size_t len);
/* SMFIC_UNKNOWN: the command line as the client sent it */
int	milter_put_unknown(struct evbuffer *out, const char *line);

/*
 * Framing.  Given the first avail bytes of a filter's stream, returns
 * the size of the first whole packet (4 + its length) when all of it is
 * there, 0 when more must be read first, -1 when the length announced
 * is 0 or over MILTER_PACKET_MAX (the filter is broken: drop it).
 */
long	milter_frame(const uint8_t *buf, size_t avail);

/* one decoded reply; every pointer points into the packet given */
struct milter_reply {
	char		 cmd;		/* SMFIR_* */
	/* SMFIR_OPTNEG */
	uint32_t	 version, actions, protocol;
	/* per stage SMFIM_*: the macro names the filter wants, a list
	 * separated by spaces; NULL where it gave none */
	const char	*symlist[SMFIM_COUNT];
	/* INSHEADER, CHGHEADER: the position or occurrence (see below) */
	uint32_t	 index;
	/* ADDHEADER, INSHEADER, CHGHEADER: the field; value "" with
	 * CHGHEADER deletes that occurrence */
	const char	*name, *value;
	/* ADDRCPT, ADDRCPT_PAR, DELRCPT, CHGFROM: the address (as sent,
	 * angle brackets or not); args the ESMTP arguments or NULL */
	const char	*addr, *args;
	/* REPLYCODE: the reply; QUARANTINE: the reason */
	const char	*text;
	/* REPLBODY: a piece of the new body (CRLF line ends) */
	const uint8_t	*data;
	size_t		 len;
};

/*
 * Decode the packet pkt of size len (as milter_frame() measured it, the
 * length field included).  The packet is modified (strings are NUL-
 * terminated in place where the protocol leaves them so) and must stay
 * alive while r is used.  0 and r filled in, or -1 with *err saying
 * what is wrong: an unknown reply, a string without its NUL, a missing
 * field, trailing bytes where the reply has none (libmilter sends no
 * data with accept, continue, discard, reject, tempfail, skip,
 * progress, shutdown, conn_fail: a lone NUL is refused too), a header
 * name that is empty or not printable, a header value that would not
 * be one header field in the spool, an OPTNEG with a version under 2
 * or over MILTER_VERSION or a macro list for a stage >= SMFIM_COUNT or
 * twice for one stage, an SMFIR_SETSYMLIST packet (libmilter sends the
 * lists inside its OPTNEG reply only), control characters in an
 * address, a quarantine reason or a macro list.  What exactly passes is
 * in milter.c's opening comment.  Header values are the one field
 * modified: a CRLF in them becomes LF (the spool's line end).  The
 * REPLYCODE text is only checked to be a string here: see
 * milter_reply_check().  Flags outside what was offered (OPTNEG) and
 * header indexes are the caller's to judge.
 */
int	milter_parse_reply(uint8_t *pkt, size_t len, struct milter_reply *r,
	    const char **err);

/*
 * An SMFIR_REPLYCODE text as libmilter makes it ("550 5.7.1 text", or
 * several lines "550-5.7.1 a\r\n550 5.7.1 b"; lines separated by CRLF
 * or LF): check it and split it into lines.  Accepted: 1 to
 * MILTER_REPLY_LINES lines, each a three-digit code 4xx or 5xx, the
 * same on every line (second digit 0-5, RFC 5321 4.2), then '-' on
 * every line but the last and ' ' (or the end) on the last, then
 * printable US-ASCII (and HTAB) only, no empty line (a trailing line
 * end is one), each
 * line at most MILTER_REPLY_LINE_MAX bytes.  lines[i] gets the i-th
 * line as the SMTP client will see it ("550-5.7.1 a"; a last line with
 * no text gets no trailing space), each NUL-terminated in buf (at
 * least strlen(text) + 1 bytes: each line's NUL takes the place of its
 * line end).  Returns the number of lines and *code (e.g. 550), or -1
 * with *err.
 */
int	milter_reply_check(const char *text, char *buf, size_t bufsize,
	    char *lines[MILTER_REPLY_LINES], int *code, const char **err);

/*
 * The one spelling of a macro name that the smtp worker compares: a
 * name of one character bare ("i", "j", "_"), a longer one in braces
 * ("{auth_type}"), whichever way the filter wrote it ("auth_type" and
 * "{auth_type}" are one macro).  Writes it into buf and returns buf, or
 * NULL for a name that is empty, too long for buf, or not made of
 * printable characters other than space and braces.
 */
const char *milter_macro_canon(const char *name, char *buf, size_t size);

/*
 * printable names for logs and smtpctl: "continue", "reject"...; "?"
 * for a byte that is no reply (command)
 */
const char *milter_reply_name(char cmd);
const char *milter_command_name(char cmd);

#endif
