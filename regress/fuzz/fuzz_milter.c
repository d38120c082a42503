/*
 * fuzz_milter.c -- libFuzzer harness for common/milter.c, the codec of
 * the milter protocol: what a mail filter (untrusted, over TCP) sends.
 *
 * The input is read as a filter's stream: milter_frame() cuts it into
 * packets, each copied into an allocation of exactly its size and
 * decoded by milter_parse_reply(); a REPLYCODE's text goes through
 * milter_reply_check().  The whole input is also given, as one string,
 * to milter_reply_check() and milter_macro_canon(), and as a header to
 * the encoder, whose packet milter_frame() must measure exactly.
 *
 * Checked beyond "does not crash": what the decoder accepts keeps the
 * promises of milter.c's opening comment (header names, folded values
 * with LF only, no controls in addresses and reasons, printable ESMTP
 * arguments, macro lists for known stages only), every pointer lies
 * inside the packet with its NUL there; an accepted reply text has 1 to
 * MILTER_REPLY_LINES lines of the same 4xx/5xx code, each within
 * MILTER_REPLY_LINE_MAX bytes, printable, with the separators right; a
 * canonical macro name is one of the two spellings.
 */
#include <string.h>

#include <event2/buffer.h>

#include "fuzz.h"

#include "milter.h"

/* s is a NUL-terminated string inside [pkt, pkt + len) */
static void
check_inside(const uint8_t *pkt, size_t len, const char *s)
{
	const uint8_t	*u = (const uint8_t *)s;

	CHECK(u >= pkt + 5 && u < pkt + len);
	CHECK(memchr(u, '\0', (size_t)(pkt + len - u)) != NULL);
}

static void
check_text(const char *s)
{
	for (; *s != '\0'; s++)
		CHECK((unsigned char)*s >= 0x20 && (unsigned char)*s != 0x7f);
}

static void
check_header(const struct milter_reply *r)
{
	const char	*s;

	CHECK(r->name[0] != '\0');
	for (s = r->name; *s != '\0'; s++)
		CHECK(*s > 0x20 && *s < 0x7f && *s != ':');
	for (s = r->value; *s != '\0'; s++) {
		CHECK(*s != '\r' && *s != 0x7f);
		CHECK((unsigned char)*s >= 0x20 || *s == '\t' || *s == '\n');
		if (*s == '\n') {
			CHECK(s[1] == ' ' || s[1] == '\t');
			s++;
			while (s[1] == ' ' || s[1] == '\t')
				s++;
			CHECK(s[1] != '\0' && s[1] != '\n');
		}
	}
}

static void
check_lines(char **lines, int n, int code)
{
	size_t	len, j;
	int	i;

	CHECK(n >= 1 && n <= MILTER_REPLY_LINES);
	CHECK(code >= 400 && code <= 559);
	for (i = 0; i < n; i++) {
		len = strlen(lines[i]);
		CHECK(len >= 3 && len <= MILTER_REPLY_LINE_MAX);
		CHECK((lines[i][0] - '0') * 100 + (lines[i][1] - '0') * 10 +
		    (lines[i][2] - '0') == code);
		if (i < n - 1)
			CHECK(len >= 4 && lines[i][3] == '-');
		else
			CHECK(len == 3 || (len > 4 && lines[i][3] == ' '));
		for (j = 4; j < len; j++)
			CHECK((lines[i][j] >= 0x20 && lines[i][j] < 0x7f) ||
			    lines[i][j] == '\t');
	}
}

static void
reply_text(const char *text)
{
	char	*buf, *lines[MILTER_REPLY_LINES];
	size_t	 size = strlen(text) + 1;
	const char *err;
	int	 n, code;

	if ((buf = malloc(size)) == NULL)
		return;
	n = milter_reply_check(text, buf, size, lines, &code, &err);
	if (n == -1)
		CHECK(err != NULL);
	else
		check_lines(lines, n, code);
	free(buf);
}

static void
one_packet(const uint8_t *data, size_t len)
{
	struct milter_reply	 r;
	const char		*err;
	uint8_t			*pkt;
	size_t			 i;

	if ((pkt = malloc(len)) == NULL)
		return;
	memcpy(pkt, data, len);
	if (milter_parse_reply(pkt, len, &r, &err) == -1) {
		CHECK(err != NULL);
		free(pkt);
		return;
	}
	CHECK(r.cmd == (char)pkt[4]);
	switch (r.cmd) {
	case SMFIR_OPTNEG:
		CHECK(r.version >= 2 && r.version <= MILTER_VERSION);
		for (i = 0; i < SMFIM_COUNT; i++)
			if (r.symlist[i] != NULL) {
				check_inside(pkt, len, r.symlist[i]);
				check_text(r.symlist[i]);
			}
		break;
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		check_inside(pkt, len, r.name);
		check_inside(pkt, len, r.value);
		check_header(&r);
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_DELRCPT:
	case SMFIR_CHGFROM:
		check_inside(pkt, len, r.addr);
		check_text(r.addr);
		CHECK(r.cmd == SMFIR_CHGFROM || r.addr[0] != '\0');
		if (r.args != NULL) {
			check_inside(pkt, len, r.args);
			for (i = 0; r.args[i] != '\0'; i++)
				CHECK(r.args[i] >= 0x20 && r.args[i] < 0x7f);
		}
		break;
	case SMFIR_REPLBODY:
		CHECK(r.data == pkt + 5 && r.len == len - 5);
		break;
	case SMFIR_QUARANTINE:
		check_inside(pkt, len, r.text);
		check_text(r.text);
		CHECK(r.text[0] != '\0');
		break;
	case SMFIR_REPLYCODE:
		check_inside(pkt, len, r.text);
		reply_text(r.text);
		break;
	default:
		CHECK(len == 5);
		break;
	}
	free(pkt);
}

static void
macro_name(const char *s)
{
	char		 buf[64];
	const char	*c;
	size_t		 len, i;

	if ((c = milter_macro_canon(s, buf, sizeof(buf))) == NULL)
		return;
	CHECK(c == buf);
	len = strlen(c);
	CHECK(len == 1 || (len >= 4 && c[0] == '{' && c[len - 1] == '}'));
	for (i = len == 1 ? 0 : 1; i < (len == 1 ? 1 : len - 1); i++)
		CHECK(c[i] > 0x20 && c[i] < 0x7f && c[i] != '{' &&
		    c[i] != '}');
}

/* the encoder: a packet milter_frame() measures exactly */
static void
encode(const char *s, size_t len)
{
	struct evbuffer	*out;
	uint8_t		*p;
	size_t		 half = len / 2;

	if ((out = evbuffer_new()) == NULL)
		return;
	if (milter_put_header(out, s, half, s + half, len - half) == 0) {
		CHECK(memchr(s, '\0', len) == NULL);
		p = evbuffer_pullup(out, -1);
		CHECK(p != NULL);
		CHECK(milter_frame(p, evbuffer_get_length(out)) ==
		    (long)evbuffer_get_length(out));
		CHECK(p[4] == SMFIC_HEADER);
	} else
		CHECK(evbuffer_get_length(out) == 0);
	evbuffer_free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t	 off = 0;
	long	 n;
	char	*s;

	while (off < size) {
		n = milter_frame(data + off, size - off);
		if (n <= 0)
			break;
		CHECK((size_t)n <= size - off && n >= 5 &&
		    n <= 4 + MILTER_PACKET_MAX);
		one_packet(data + off, (size_t)n);
		off += (size_t)n;
	}
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	reply_text(s);
	macro_name(s);
	encode(s, size);
	free(s);
	return 0;
}
