/*
 * milter_probe.c -- speaks to a real mail filter through common/milter.h
 * only, so that regress/integration/test_milter_codec.py can hold the
 * codec up against libmilter (python3-milter): our packets must mean to
 * libmilter what we meant, and what libmilter sends must decode to what
 * the filter asked for.
 *
 *	milter_probe HOST PORT < SCRIPT
 *
 * SCRIPT has one step a line, tokens separated by spaces; in a token
 * \xNN, \r, \n, \t, \\ stand for a byte (\x20 for a space):
 *
 *	optneg VERSION ACTIONS PROTOCOL		(numbers as strtoul base 0)
 *	macro CMD NAME VALUE ...		(CMD one character)
 *	connect HOST 4|6 ADDR PORT | connect HOST unix PATH |
 *	connect HOST none
 *	helo NAME | mail ADDR ARG... | rcpt ADDR ARG... | data |
 *	header NAME VALUE | eoh | body TEXT | eom | abort | unknown LINE |
 *	quit
 *
 * For each step it prints "step NAME", then every reply that step got,
 * one a line: the reply's name and its fields as KEY=VALUE, values
 * escaped as above (a REPLYCODE also gets code= and line= from
 * milter_reply_check()).  The steps the filter negotiated away
 * (SMFIP_NO*) are not sent ("skipped" is printed), and no reply is
 * awaited where it asked for none (SMFIP_NR_*) or where the protocol has
 * none (macro, abort, quit); after SKIP, body chunks are not sent.  An
 * end of message reads replies until one that ends it.  A reply that
 * does not decode prints "error WHY" and exits 2.  Every read has a
 * deadline (10 s).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "milter.h"

#define MAXTOK	64

static int		 sock = -1;
static uint32_t		 protocol;	/* as the filter negotiated it */
static int		 skipped_body;

static void
die(const char *what)
{
	printf("error %s\n", what);
	exit(2);
}

/* decode the escapes of one token in place; its length */
static size_t
unescape(char *s)
{
	char	*r = s, *w = s;
	char	 hex[3];

	while (*r != '\0') {
		if (*r != '\\') {
			*w++ = *r++;
			continue;
		}
		r++;
		switch (*r) {
		case 'r':	*w++ = '\r'; r++; break;
		case 'n':	*w++ = '\n'; r++; break;
		case 't':	*w++ = '\t'; r++; break;
		case '\\':	*w++ = '\\'; r++; break;
		case 'x':
			if (!isxdigit((unsigned char)r[1]) ||
			    !isxdigit((unsigned char)r[2]))
				die("bad \\x escape in the script");
			hex[0] = r[1];
			hex[1] = r[2];
			hex[2] = '\0';
			*w++ = (char)strtoul(hex, NULL, 16);
			r += 3;
			break;
		default:
			die("bad escape in the script");
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static void
put_escaped(const char *key, const void *data, size_t len)
{
	const unsigned char	*u = data;
	size_t			 i;

	printf(" %s=", key);
	for (i = 0; i < len; i++) {
		if (u[i] == '\\')
			fputs("\\\\", stdout);
		else if (u[i] > 0x20 && u[i] < 0x7f)
			putchar(u[i]);
		else
			printf("\\x%02x", u[i]);
	}
}

static void
put_str(const char *key, const char *s)
{
	if (s != NULL)
		put_escaped(key, s, strlen(s));
}

static void
flush_out(struct evbuffer *out)
{
	while (evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, sock) <= 0)
			die("write to the filter");
}

/* read one whole packet into pkt (static), return its size */
static size_t
read_packet(uint8_t **pktp)
{
	static uint8_t	*pkt;
	static size_t	 have, used;
	long		 n;
	ssize_t		 r;
	uint8_t		*np;

	/* drop the packet returned last time */
	if (used > 0) {
		memmove(pkt, pkt + used, have - used);
		have -= used;
		used = 0;
	}
	for (;;) {
		if ((n = milter_frame(pkt, have)) == -1)
			die("milter_frame refused the length");
		if (n > 0) {
			used = (size_t)n;
			*pktp = pkt;
			return used;
		}
		if ((np = realloc(pkt, have + 65536)) == NULL)
			die("out of memory");
		pkt = np;
		r = read(sock, pkt + have, 65536);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			die("read from the filter (timeout?)");
		if (r == 0)
			die("the filter closed the connection");
		have += (size_t)r;
	}
}

/* the end of a step: whatever is not a modification or progress */
static int
final(char cmd)
{
	switch (cmd) {
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_REPLBODY:
	case SMFIR_CHGFROM:
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
	case SMFIR_QUARANTINE:
	case SMFIR_PROGRESS:
		return 0;
	default:
		return 1;
	}
}

static char
read_reply(void)
{
	struct milter_reply	 r;
	const char		*err;
	uint8_t			*pkt;
	size_t			 len, i;
	char			 name[16], buf[8192];
	char			*lines[MILTER_REPLY_LINES];
	int			 n, code;

	len = read_packet(&pkt);
	if (milter_parse_reply(pkt, len, &r, &err) == -1)
		die(err);
	printf("%s", milter_reply_name(r.cmd));
	switch (r.cmd) {
	case SMFIR_OPTNEG:
		printf(" version=%u actions=0x%x protocol=0x%x",
		    r.version, r.actions, r.protocol);
		for (i = 0; i < SMFIM_COUNT; i++) {
			snprintf(name, sizeof(name), "sym%zu", i);
			put_str(name, r.symlist[i]);
		}
		protocol = r.protocol;
		break;
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		printf(" index=%u", r.index);
		/* FALLTHROUGH */
	case SMFIR_ADDHEADER:
		put_str("name", r.name);
		put_str("value", r.value);
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_DELRCPT:
	case SMFIR_CHGFROM:
		put_str("addr", r.addr);
		put_str("args", r.args);
		break;
	case SMFIR_REPLBODY:
		put_escaped("data", r.data, r.len);
		break;
	case SMFIR_QUARANTINE:
		put_str("text", r.text);
		break;
	case SMFIR_REPLYCODE:
		put_str("text", r.text);
		if (strlen(r.text) + 1 + MILTER_REPLY_LINES > sizeof(buf))
			die("reply text too long for the probe");
		n = milter_reply_check(r.text, buf, sizeof(buf), lines, &code,
		    &err);
		if (n == -1) {
			put_str("refused", err);
			break;
		}
		printf(" code=%d", code);
		for (i = 0; i < (size_t)n; i++)
			put_str("line", lines[i]);
		break;
	}
	printf("\n");
	return r.cmd;
}

/* the protocol bits that spare a step, and that spare its reply */
struct stepbits {
	const char	*name;
	uint32_t	 no, nr;
};

static const struct stepbits steps[] = {
	{ "connect", SMFIP_NOCONNECT, SMFIP_NR_CONN },
	{ "helo", SMFIP_NOHELO, SMFIP_NR_HELO },
	{ "mail", SMFIP_NOMAIL, SMFIP_NR_MAIL },
	{ "rcpt", SMFIP_NORCPT, SMFIP_NR_RCPT },
	{ "data", SMFIP_NODATA, SMFIP_NR_DATA },
	{ "header", SMFIP_NOHDRS, SMFIP_NR_HDR },
	{ "eoh", SMFIP_NOEOH, SMFIP_NR_EOH },
	{ "body", SMFIP_NOBODY, SMFIP_NR_BODY },
	{ "unknown", SMFIP_NOUNKNOWN, SMFIP_NR_UNKN },
	{ "eom", 0, 0 },
	{ "optneg", 0, 0 },
};

/* build one step's packet into out; -1 if it is not known */
static int
encode(struct evbuffer *out, char **tok, int ntok)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct milter_macro	 m[MAXTOK / 2];
	const char		*cmd = tok[0];
	int			 i, rc = -1;
	size_t			 n;

	if (strcmp(cmd, "optneg") == 0 && ntok == 4)
		rc = milter_put_optneg(out, strtoul(tok[1], NULL, 0),
		    strtoul(tok[2], NULL, 0), strtoul(tok[3], NULL, 0));
	else if (strcmp(cmd, "macro") == 0 && ntok >= 2 && ntok % 2 == 0) {
		for (i = 2, n = 0; i < ntok; i += 2, n++) {
			m[n].name = tok[i];
			m[n].value = tok[i + 1];
		}
		rc = milter_put_macros(out, tok[1][0], m, n);
	} else if (strcmp(cmd, "connect") == 0 && ntok >= 3) {
		memset(&ss, 0, sizeof(ss));
		if (strcmp(tok[2], "4") == 0 && ntok == 5) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons(atoi(tok[4]));
			if (inet_pton(AF_INET, tok[3], &sin->sin_addr) != 1)
				die("bad IPv4 address in the script");
			rc = milter_put_connect(out, tok[1], &ss, NULL);
		} else if (strcmp(tok[2], "6") == 0 && ntok == 5) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(atoi(tok[4]));
			if (inet_pton(AF_INET6, tok[3], &sin6->sin6_addr) != 1)
				die("bad IPv6 address in the script");
			rc = milter_put_connect(out, tok[1], &ss, NULL);
		} else if (strcmp(tok[2], "unix") == 0 && ntok == 4) {
			ss.ss_family = AF_UNIX;
			rc = milter_put_connect(out, tok[1], &ss, tok[3]);
		} else if (strcmp(tok[2], "none") == 0 && ntok == 3)
			rc = milter_put_connect(out, tok[1], NULL, NULL);
	} else if (strcmp(cmd, "helo") == 0 && ntok == 2)
		rc = milter_put_helo(out, tok[1]);
	else if ((strcmp(cmd, "mail") == 0 || strcmp(cmd, "rcpt") == 0) &&
	    ntok >= 2)
		rc = milter_put_envaddr(out, cmd[0] == 'm' ? SMFIC_MAIL :
		    SMFIC_RCPT, tok[1], (const char *const *)tok + 2,
		    (size_t)ntok - 2);
	else if (strcmp(cmd, "data") == 0 && ntok == 1)
		rc = milter_put_empty(out, SMFIC_DATA);
	else if (strcmp(cmd, "header") == 0 && ntok == 3)
		rc = milter_put_header(out, tok[1], strlen(tok[1]), tok[2],
		    strlen(tok[2]));
	else if (strcmp(cmd, "eoh") == 0 && ntok == 1)
		rc = milter_put_empty(out, SMFIC_EOH);
	else if (strcmp(cmd, "body") == 0 && ntok == 2)
		rc = milter_put_body(out, tok[1], strlen(tok[1]));
	else if (strcmp(cmd, "eom") == 0 && ntok == 1)
		rc = milter_put_empty(out, SMFIC_BODYEOB);
	else if (strcmp(cmd, "abort") == 0 && ntok == 1)
		rc = milter_put_empty(out, SMFIC_ABORT);
	else if (strcmp(cmd, "unknown") == 0 && ntok == 2)
		rc = milter_put_unknown(out, tok[1]);
	else if (strcmp(cmd, "quit") == 0 && ntok == 1)
		rc = milter_put_empty(out, SMFIC_QUIT);
	return rc;
}

static void
step(struct evbuffer *out, char **tok, int ntok)
{
	const struct stepbits	*sb = NULL;
	size_t			 i;
	char			 c;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (strcmp(steps[i].name, tok[0]) == 0)
			sb = &steps[i];
	printf("step %s\n", tok[0]);
	if (sb != NULL && (protocol & sb->no)) {
		printf("skipped\n");
		return;
	}
	if (strcmp(tok[0], "body") == 0 && skipped_body) {
		printf("skipped\n");
		return;
	}
	if (strcmp(tok[0], "mail") == 0)
		skipped_body = 0;
	if (encode(out, tok, ntok) == -1)
		die("cannot encode this step");
	flush_out(out);
	if (sb == NULL || (protocol & sb->nr))
		return;
	do {
		c = read_reply();
		if (c == SMFIR_SKIP && strcmp(tok[0], "body") == 0)
			skipped_body = 1;
	} while (strcmp(tok[0], "eom") == 0 && !final(c));
	/* PROGRESS may come before any reply */
	while (c == SMFIR_PROGRESS)
		c = read_reply();
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	 sin;
	struct timeval		 tv = { 10, 0 };
	struct evbuffer		*out;
	char			 line[131072], *tok[MAXTOK], *p;
	int			 ntok;

	if (argc != 3) {
		fprintf(stderr, "usage: milter_probe HOST PORT < SCRIPT\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1)
		die("bad HOST");
	if ((sock = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket");
	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
		die("setsockopt");
	if (connect(sock, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		die("connect");
	if ((out = evbuffer_new()) == NULL)
		die("evbuffer_new");
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		ntok = 0;
		for (p = strtok(line, " "); p != NULL; p = strtok(NULL, " ")) {
			if (ntok == MAXTOK)
				die("too many tokens");
			unescape(p);
			tok[ntok++] = p;
		}
		if (ntok > 0)
			step(out, tok, ntok);
	}
	evbuffer_free(out);
	close(sock);
	return 0;
}
