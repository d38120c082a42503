/*
 * mime7bit.c -- 8-bit MIME mail made 7-bit for a peer without 8BITMIME.
 *
 * RFC 6152 section 3: a message sent with BODY=8BITMIME may go to a
 * server that does not offer 8BITMIME only once it has been converted to
 * 7-bit MIME.  Bouncing it (5.6.3) loses mail that Postfix and Sendmail
 * deliver, so the mta converts it, part by part:
 *
 *   - A leaf part whose body carries 8-bit bytes and whose encoding is
 *     an identity one (none, 7bit, 8bit, binary: RFC 2045 6.1) is
 *     re-encoded: quoted-printable for the text types (it stays
 *     readable and keeps its lines), base64 for everything else.  Its
 *     Content-Transfer-Encoding field is replaced.  Quoted-printable
 *     keeps the line structure (a hard line break is a CRLF); base64
 *     encodes the canonical CRLF line ends, except the last one before a
 *     boundary, which belongs to the delimiter (RFC 2046 5.1.1).
 *   - A multipart or message/rfc822 above a converted part now holds
 *     7-bit data only: an 8bit/binary label on it becomes 7bit.
 *   - A message without MIME (no MIME-Version) and an 8-bit body gets
 *     the fields RFC 1428 section 3 gives for just this case:
 *     MIME-Version: 1.0, Content-Type: text/plain; charset=unknown-8bit
 *     (only when it has no Content-Type) and the new encoding.
 *   - Everything else is passed through byte for byte: parts without
 *     8-bit bytes (whatever their label), the headers, the boundaries.
 *
 * Refused, so that the mta bounces the message with 5.6.3 before it
 * sends anything (the first pass decides; the second cannot fail on the
 * same bytes):
 *   - 8-bit bytes in any header, the message's or a part's: RFC 2047
 *     could encode some fields, but not addresses or parameters without
 *     knowing each field's syntax; kept simple, as documented.
 *   - 8-bit bytes in a part that cannot be re-encoded: one already
 *     labelled quoted-printable or base64 (or an unknown encoding), a
 *     message type other than message/rfc822 (RFC 2046 5.2: partial
 *     and external-body are 7bit only; message/global is not
 *     re-encoded either), a multipart that is not well formed (no
 *     boundary, an encoding on it, nested deeper than
 *     MIME7BIT_MAX_DEPTH).
 *   - 8-bit bytes in a multipart's preamble or epilogue, which no
 *     encoding covers.
 *   - More than MIME7BIT_MAX_ENTITIES parts.
 *
 * The input is read a line at a time into a buffer of MIME7BIT_LINE_MAX
 * bytes; a longer line goes on in pieces (it cannot be a boundary).  A
 * CR before the LF is part of the line end in the parts re-encoded, and
 * left as it is everywhere else.  Changing the body breaks DKIM
 * signatures over it, which is accepted (Postfix does the same).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#include "mime7bit.h"

#define BOUNDARY_MAX	200	/* RFC 2046 says 70; some say more */
#define FIELD_MAX	1024	/* of Content-Type kept for parsing */
#define CTE_MAX		64

#define E_CONVERT	0x01	/* a leaf to re-encode */
#define E_RELABEL	0x02	/* a container above one: label 7bit */

enum cte { CTE_NONE, CTE_7BIT, CTE_8BIT, CTE_BINARY, CTE_OTHER };
enum kind { K_LEAF, K_MULTIPART, K_MESSAGE };
enum phase { P_HEADER, P_BODY, P_PREAMBLE, P_EPILOGUE };
enum field { F_NONE, F_OTHER, F_CTYPE, F_CTE, F_MIMEVER };
enum enc { ENC_NONE, ENC_QP, ENC_B64 };

struct frame {
	size_t		 entity;
	enum kind	 kind;
	enum phase	 phase;
	int		 noencode;	/* 8-bit here cannot be converted */
	int		 digest;	/* multipart/digest */
	int		 in_digest;	/* the parent is multipart/digest */
	size_t		 blen;
	char		 boundary[BOUNDARY_MAX + 1];
};

struct mime7bit {
	int		 converting;	/* second pass */
	int		 failed;
	const char	*error;
	mime7bit_out	 out;
	void		*arg;
	char		 obuf[8192];	/* output not yet handed to out */
	size_t		 olen;

	/* one byte of E_* per entity, in the order they start */
	uint8_t		*eflags;
	size_t		 nentities, cap, next_entity, nconverted;

	struct frame	 stack[MIME7BIT_MAX_DEPTH];
	size_t		 depth;		/* frames in use, >= 1 */

	/* the line being read */
	char		 line[MIME7BIT_LINE_MAX];
	size_t		 llen;
	int		 lstart;	/* line holds the start of a line */

	/* the header being read (the top frame's) */
	enum field	 field;
	int		 dropping;	/* convert: this field is left out */
	int		 has_ctype, has_mimever, dropped_cte;
	char		 ctype[FIELD_MAX];
	size_t		 ctlen;
	char		 cte[CTE_MAX];
	size_t		 ctelen;

	/* the encoder of the leaf being converted */
	enum enc	 enc;
	int		 col;		/* output characters on this line */
	int		 pend_ws;	/* QP: a blank that may end the line */
	int		 pend_cr;	/* a CR that may end the line */
	int		 pend_crlf;	/* base64: a line end not yet encoded */
	unsigned char	 b64[3];
	int		 nb64;
};

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char hexchars[] = "0123456789ABCDEF";

static int
has_8bit(const char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] & 0x80)
			return 1;
	return 0;
}

static int
fail(struct mime7bit *c, const char *why)
{
	if (!c->failed) {
		c->failed = 1;
		c->error = why;
	}
	return -1;
}

static int
flush(struct mime7bit *c)
{
	size_t	n = c->olen;

	c->olen = 0;
	if (n > 0 && c->out(c->arg, c->obuf, n) == -1)
		return fail(c, "the converted message could not be written");
	return 0;
}

/* output goes out in blocks: most pieces are a few bytes long */
static int
emit(struct mime7bit *c, const char *p, size_t len)
{
	if (!c->converting || len == 0)
		return 0;
	if (len > sizeof(c->obuf) - c->olen) {
		if (flush(c) == -1)
			return -1;
		if (len > sizeof(c->obuf)) {
			if (c->out(c->arg, p, len) == -1)
				return fail(c, "the converted message could "
				    "not be written");
			return 0;
		}
	}
	memcpy(c->obuf + c->olen, p, len);
	c->olen += len;
	return 0;
}

static int
emits(struct mime7bit *c, const char *s)
{
	return emit(c, s, strlen(s));
}

static void
reset_parse(struct mime7bit *c)
{
	memset(c->stack, 0, sizeof(c->stack));
	c->depth = 1;
	c->stack[0].phase = P_HEADER;
	c->next_entity = 1;
	c->llen = 0;
	c->lstart = 1;
	c->field = F_NONE;
	c->dropping = 0;
	c->has_ctype = c->has_mimever = c->dropped_cte = 0;
	c->ctlen = c->ctelen = 0;
	c->enc = ENC_NONE;
}

struct mime7bit *
mime7bit_new(void)
{
	struct mime7bit	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->cap = 16;
	if ((c->eflags = calloc(c->cap, 1)) == NULL) {
		free(c);
		return NULL;
	}
	c->nentities = 1;	/* the message itself */
	reset_parse(c);
	return c;
}

void
mime7bit_free(struct mime7bit *c)
{
	if (c == NULL)
		return;
	free(c->eflags);
	free(c);
}

const char *
mime7bit_error(const struct mime7bit *c)
{
	return c->failed ? c->error : NULL;
}

size_t
mime7bit_nconverted(const struct mime7bit *c)
{
	return c->nconverted;
}

int
mime7bit_convert(struct mime7bit *c, mime7bit_out out, void *arg)
{
	if (c->failed || c->converting)
		return -1;
	c->converting = 1;
	c->olen = 0;
	c->out = out;
	c->arg = arg;
	reset_parse(c);
	return 0;
}

/* a new entity (a body part, an encapsulated message): its index */
static int
new_entity(struct mime7bit *c, size_t *idx)
{
	uint8_t	*n;

	if (c->converting) {
		if (c->next_entity >= c->nentities)
			return fail(c, "the message changed between passes");
		*idx = c->next_entity++;
		return 0;
	}
	if (c->nentities >= MIME7BIT_MAX_ENTITIES)
		return fail(c, "too many MIME parts to convert");
	if (c->nentities == c->cap) {
		if ((n = realloc(c->eflags, c->cap * 2)) == NULL)
			return fail(c, "out of memory");
		memset(n + c->cap, 0, c->cap);
		c->eflags = n;
		c->cap *= 2;
	}
	*idx = c->nentities++;
	c->next_entity = c->nentities;
	return 0;
}

static struct frame *
top(struct mime7bit *c)
{
	return &c->stack[c->depth - 1];
}

/* the header of a new entity starts in the frame above the top */
static int
push_entity(struct mime7bit *c, int in_digest)
{
	struct frame	*f;
	size_t		 idx;

	if (c->depth >= MIME7BIT_MAX_DEPTH)
		/* header_end() leaves room: only a guard */
		return fail(c, "MIME parts nested too deep");
	if (new_entity(c, &idx) == -1)
		return -1;
	f = &c->stack[c->depth++];
	memset(f, 0, sizeof(*f));
	f->entity = idx;
	f->kind = K_LEAF;
	f->phase = P_HEADER;
	f->in_digest = in_digest;
	c->field = F_NONE;
	c->dropping = 0;
	c->has_ctype = c->has_mimever = c->dropped_cte = 0;
	c->ctlen = c->ctelen = 0;
	return 0;
}

/* ---- the encoders ---- */

static int
qp_put(struct mime7bit *c, const char *s, int n)
{
	/* 76 characters a line at most, the soft break's '=' included */
	if (c->col + n > 75) {
		if (emit(c, "=\n", 2) == -1)
			return -1;
		c->col = 0;
	}
	c->col += n;
	return emit(c, s, n);
}

static int
qp_put_encoded(struct mime7bit *c, unsigned char b)
{
	char	e[3] = { '=', hexchars[b >> 4], hexchars[b & 15] };

	return qp_put(c, e, 3);
}

/* what was held back is followed by something else than the line end */
static int
qp_release(struct mime7bit *c)
{
	char	ws;

	if (c->pend_ws) {
		ws = (char)c->pend_ws;
		c->pend_ws = 0;
		if (qp_put(c, &ws, 1) == -1)
			return -1;
	}
	if (c->pend_cr) {
		c->pend_cr = 0;
		if (qp_put_encoded(c, '\r') == -1)
			return -1;
	}
	return 0;
}

static int
qp_byte(struct mime7bit *c, unsigned char b)
{
	char	ch = (char)b;

	/* the common case, without the calls */
	if (b >= 33 && b <= 126 && b != '=' && !c->pend_ws && !c->pend_cr &&
	    c->col < 75 && c->olen < sizeof(c->obuf)) {
		c->obuf[c->olen++] = ch;
		c->col++;
		return 0;
	}
	if (b == '\r' && !c->pend_cr) {
		/* with a blank before it, both may still end the line */
		c->pend_cr = 1;
		return 0;
	}
	if (qp_release(c) == -1)
		return -1;
	if (b == '\r') {
		c->pend_cr = 1;
		return 0;
	}
	if (b == ' ' || b == '\t') {
		c->pend_ws = b;
		return 0;
	}
	if (b >= 33 && b <= 126 && b != '=')
		return qp_put(c, &ch, 1);
	return qp_put_encoded(c, b);
}

/* a hard line end: a blank before it is encoded (RFC 2045 6.7 (3)) */
static int
qp_eol(struct mime7bit *c, int eof)
{
	if (c->pend_ws) {
		if (qp_put_encoded(c, (unsigned char)c->pend_ws) == -1)
			return -1;
		c->pend_ws = 0;
	}
	if (c->pend_cr && eof && qp_put_encoded(c, '\r') == -1)
		return -1;
	c->pend_cr = 0;
	c->col = 0;
	return eof ? 0 : emit(c, "\n", 1);
}

static int
b64_group(struct mime7bit *c)
{
	char	o[4];
	int	n = c->nb64;

	if (n == 0)
		return 0;
	if (n < 3)
		memset(c->b64 + n, 0, 3 - n);
	o[0] = b64chars[c->b64[0] >> 2];
	o[1] = b64chars[((c->b64[0] & 3) << 4) | (c->b64[1] >> 4)];
	o[2] = n > 1 ? b64chars[((c->b64[1] & 15) << 2) | (c->b64[2] >> 6)] :
	    '=';
	o[3] = n > 2 ? b64chars[c->b64[2] & 63] : '=';
	c->nb64 = 0;
	if (c->olen + 5 <= sizeof(c->obuf)) {
		/* the common case, without the calls */
		memcpy(c->obuf + c->olen, o, 4);
		c->olen += 4;
		if ((c->col += 4) >= 76) {
			c->col = 0;
			c->obuf[c->olen++] = '\n';
		}
		return 0;
	}
	if (emit(c, o, 4) == -1)
		return -1;
	if ((c->col += 4) >= 76) {
		c->col = 0;
		return emit(c, "\n", 1);
	}
	return 0;
}

static int
b64_raw(struct mime7bit *c, unsigned char b)
{
	c->b64[c->nb64++] = b;
	return c->nb64 == 3 ? b64_group(c) : 0;
}

static int
b64_byte(struct mime7bit *c, unsigned char b)
{
	if (!c->pend_crlf && !c->pend_cr && b != '\r') {
		c->b64[c->nb64++] = b;
		return c->nb64 == 3 ? b64_group(c) : 0;
	}
	if (c->pend_crlf) {
		c->pend_crlf = 0;
		if (b64_raw(c, '\r') == -1 || b64_raw(c, '\n') == -1)
			return -1;
	}
	if (c->pend_cr) {
		c->pend_cr = 0;
		if (b64_raw(c, '\r') == -1)
			return -1;
	}
	if (b == '\r') {
		c->pend_cr = 1;
		return 0;
	}
	return b64_raw(c, b);
}

static int
b64_eol(struct mime7bit *c)
{
	/* an empty line: the line end before it is data after all */
	if (c->pend_crlf &&
	    (b64_raw(c, '\r') == -1 || b64_raw(c, '\n') == -1))
		return -1;
	c->pend_cr = 0;		/* a CR before the LF is the line end's */
	c->pend_crlf = 1;
	return 0;
}

/*
 * The end of the part being encoded.  At a boundary the last line end
 * belongs to the delimiter; at the end of the message it is data.
 */
static int
enc_end(struct mime7bit *c, int eof)
{
	enum enc	e = c->enc;

	c->enc = ENC_NONE;
	if (e == ENC_QP)
		return qp_eol(c, 1);	/* an unterminated last line */
	if (e != ENC_B64)
		return 0;
	if (c->pend_crlf && eof &&
	    (b64_raw(c, '\r') == -1 || b64_raw(c, '\n') == -1))
		return -1;
	if (c->pend_cr && b64_raw(c, '\r') == -1)
		return -1;
	c->pend_crlf = c->pend_cr = 0;
	if (b64_group(c) == -1)
		return -1;
	if (c->col > 0) {
		c->col = 0;
		return emit(c, "\n", 1);
	}
	return 0;
}

/* ---- headers ---- */

static int
is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* RFC 2045 5.1 tspecials, controls and space end a token */
static int
is_tspecial(char ch)
{
	return (unsigned char)ch <= ' ' || (unsigned char)ch >= 127 ||
	    strchr("()<>@,;:\\\"/[]?=", ch) != NULL;
}

static void
skip_cfws(const char **pp, const char *end)
{
	const char	*p = *pp;
	int		 level;

	for (;;) {
		while (p < end && (is_blank(*p) || *p == '\r' || *p == '\n'))
			p++;
		if (p >= end || *p != '(')
			break;
		for (level = 0; p < end; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '(')
				level++;
			else if (*p == ')' && --level == 0) {
				p++;
				break;
			}
		}
	}
	*pp = p;
}

/* a token, cut to cap - 1 bytes; its full length */
static size_t
token(const char **pp, const char *end, char *out, size_t cap)
{
	const char	*p = *pp;
	size_t		 n = 0, len = 0;

	for (; p < end && !is_tspecial(*p); p++, len++)
		if (n + 1 < cap)
			out[n++] = *p;
	out[n] = '\0';
	*pp = p;
	return len;
}

/* Content-Type: type "/" subtype *(";" parameter), RFC 2045 5.1 */
static void
parse_ctype(const char *p, size_t len, char *type, size_t tcap, char *sub,
    size_t scap, char *bnd, size_t *blen)
{
	const char	*end = p + len;
	char		 name[32], val[BOUNDARY_MAX + 1];
	size_t		 n;

	*blen = 0;
	sub[0] = '\0';
	skip_cfws(&p, end);
	token(&p, end, type, tcap);
	skip_cfws(&p, end);
	if (p < end && *p == '/') {
		p++;
		skip_cfws(&p, end);
		token(&p, end, sub, scap);
	}
	while (p < end) {
		skip_cfws(&p, end);
		if (p >= end)
			break;
		if (*p != ';') {
			p++;	/* junk: on to the next parameter */
			continue;
		}
		p++;
		skip_cfws(&p, end);
		token(&p, end, name, sizeof(name));
		skip_cfws(&p, end);
		if (p >= end || *p != '=')
			continue;
		p++;
		skip_cfws(&p, end);
		if (p < end && *p == '"') {
			for (p++, n = 0; p < end && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < end)
					p++;
				if (n < sizeof(val))
					val[n] = *p;
				n++;
			}
			if (p < end)
				p++;
			if (n < sizeof(val))
				val[n] = '\0';
		} else
			n = token(&p, end, val, sizeof(val));
		if (strcasecmp(name, "boundary") == 0 && *blen == 0 &&
		    n > 0 && n <= BOUNDARY_MAX) {
			memcpy(bnd, val, n);
			bnd[n] = '\0';
			*blen = n;
		}
	}
}

static enum cte
parse_cte(const char *p, size_t len)
{
	const char	*end = p + len;
	char		 v[16];
	size_t		 n;

	skip_cfws(&p, end);
	n = token(&p, end, v, sizeof(v));
	if (n == 0)
		return CTE_NONE;
	if (strcasecmp(v, "7bit") == 0)
		return CTE_7BIT;
	if (strcasecmp(v, "8bit") == 0)
		return CTE_8BIT;
	if (strcasecmp(v, "binary") == 0)
		return CTE_BINARY;
	return CTE_OTHER;	/* quoted-printable, base64, x-token */
}

/* a header field's name (RFC 5322 2.2, blanks before ':' tolerated) */
static enum field
field_of(const char *p, size_t len, size_t *value)
{
	size_t	i, nlen;

	for (i = 0; i < len && p[i] != ':' && (unsigned char)p[i] > ' ' &&
	    (unsigned char)p[i] < 127; i++)
		;
	nlen = i;
	while (i < len && is_blank(p[i]))
		i++;
	if (nlen == 0 || i >= len || p[i] != ':')
		return F_NONE;
	*value = i + 1;
	if (nlen == 12 && strncasecmp(p, "Content-Type", 12) == 0)
		return F_CTYPE;
	if (nlen == 25 && strncasecmp(p, "Content-Transfer-Encoding", 25) == 0)
		return F_CTE;
	if (nlen == 12 && strncasecmp(p, "MIME-Version", 12) == 0)
		return F_MIMEVER;
	return F_OTHER;
}

static void
collect(char *buf, size_t *len, size_t cap, const char *p, size_t n,
    int has_nl)
{
	if (has_nl && n > 0 && p[n - 1] == '\r')
		n--;		/* unfolding removes the line end */
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, p, n);
	*len += n;
	buf[*len] = '\0';
}

static int	dispatch(struct mime7bit *, const char *, size_t, int, int);

/*
 * The end of an entity's header: what its body is, and in the second
 * pass the fields that go with a new encoding.  implicit: the header
 * ended on a line that is not a field (no empty line).
 */
static int
header_end(struct mime7bit *c, int implicit)
{
	struct frame	*f = top(c);
	uint8_t		 fl = c->eflags[f->entity];
	char		 type[32], sub[64];
	enum cte	 cte = parse_cte(c->cte, c->ctelen);
	int		 identity, text, added = 0;

	type[0] = '\0';
	if (c->has_ctype)
		parse_ctype(c->ctype, c->ctlen, type, sizeof(type), sub,
		    sizeof(sub), f->boundary, &f->blen);
	if (type[0] == '\0' || sub[0] == '\0') {
		/* RFC 2045 5.2, RFC 2046 5.1.5 (digest) */
		strlcpy(type, f->in_digest ? "message" : "text", sizeof(type));
		strlcpy(sub, f->in_digest ? "rfc822" : "plain", sizeof(sub));
		f->blen = 0;
	}
	identity = cte != CTE_OTHER;
	text = strcasecmp(type, "text") == 0;

	if (c->converting && (fl & (E_CONVERT | E_RELABEL))) {
		if (f->entity == 0 && !c->has_mimever) {
			if (emits(c, "MIME-Version: 1.0\n") == -1)
				return -1;
			added = 1;
		}
		if ((fl & E_CONVERT) && !c->has_ctype) {
			if (emits(c, "Content-Type: text/plain; "
			    "charset=unknown-8bit\n") == -1)
				return -1;
			added = 1;
		}
		if (fl & E_CONVERT) {
			if (emits(c, text ?
			    "Content-Transfer-Encoding: quoted-printable\n" :
			    "Content-Transfer-Encoding: base64\n") == -1)
				return -1;
			added = 1;
		} else if (c->dropped_cte) {
			if (emits(c, "Content-Transfer-Encoding: 7bit\n") == -1)
				return -1;
			added = 1;
		}
		if (implicit && added && emit(c, "\n", 1) == -1)
			return -1;
	}
	c->field = F_NONE;
	c->dropping = 0;

	f->kind = K_LEAF;
	f->phase = P_BODY;
	if (strcasecmp(type, "multipart") == 0) {
		if (identity && f->blen > 0 && c->depth < MIME7BIT_MAX_DEPTH) {
			f->kind = K_MULTIPART;
			f->phase = P_PREAMBLE;
			f->digest = strcasecmp(sub, "digest") == 0;
			return 0;
		}
		f->noencode = 1;
		return 0;
	}
	if (strcasecmp(type, "message") == 0) {
		if (strcasecmp(sub, "rfc822") == 0 && identity &&
		    c->depth < MIME7BIT_MAX_DEPTH) {
			f->kind = K_MESSAGE;
			return push_entity(c, 0);
		}
		f->noencode = 1;
		return 0;
	}
	f->noencode = !identity;
	if (c->converting && (fl & E_CONVERT)) {
		c->enc = text ? ENC_QP : ENC_B64;
		c->col = c->pend_ws = c->pend_cr = c->pend_crlf = 0;
		c->nb64 = 0;
	}
	return 0;
}

static int
header_piece(struct mime7bit *c, const char *p, size_t len, int has_nl,
    int start)
{
	struct frame	*f = top(c);
	enum field	 fld;
	size_t		 v = 0;

	if (start) {
		if (has_nl && (len == 0 || (len == 1 && p[0] == '\r'))) {
			if (header_end(c, 0) == -1 || emit(c, p, len) == -1)
				return -1;
			return emit(c, "\n", 1);
		}
		if (!is_blank(p[0]) || c->field == F_NONE) {
			if ((fld = field_of(p, len, &v)) == F_NONE) {
				/* the body starts without an empty line */
				if (header_end(c, 1) == -1)
					return -1;
				return dispatch(c, p, len, has_nl, start);
			}
			if (fld == F_CTYPE && c->has_ctype)
				fld = F_OTHER;	/* the first one counts */
			c->dropping = fld == F_CTE && c->converting &&
			    (c->eflags[f->entity] & (E_CONVERT | E_RELABEL));
			if (c->dropping)
				c->dropped_cte = 1;
			if (fld == F_CTE && c->ctelen > 0)
				fld = F_OTHER;
			if (fld == F_CTYPE)
				c->has_ctype = 1;
			else if (fld == F_MIMEVER)
				c->has_mimever = 1;
			c->field = fld;
		}
	}
	if (has_8bit(p, len))
		return fail(c, f->entity == 0 ? "8-bit bytes in the message "
		    "header cannot be converted to 7-bit" : "8-bit bytes in "
		    "a MIME part header cannot be converted to 7-bit");
	if (c->field == F_CTYPE)
		collect(c->ctype, &c->ctlen, sizeof(c->ctype), p + v, len - v,
		    has_nl);
	else if (c->field == F_CTE)
		collect(c->cte, &c->ctelen, sizeof(c->cte), p + v, len - v,
		    has_nl);
	if (c->dropping)
		return 0;
	if (emit(c, p, len) == -1)
		return -1;
	return has_nl ? emit(c, "\n", 1) : 0;
}

/* ---- bodies ---- */

static int
body_piece(struct mime7bit *c, const char *p, size_t len, int has_nl)
{
	struct frame	*f = top(c);
	size_t		 i;

	if (!c->converting) {
		if (f->kind != K_LEAF || f->phase != P_BODY) {
			if (has_8bit(p, len))
				return fail(c, "8-bit bytes in a multipart "
				    "preamble or epilogue cannot be converted "
				    "to 7-bit");
			return 0;
		}
		if ((c->eflags[f->entity] & E_CONVERT) || !has_8bit(p, len))
			return 0;
		if (f->noencode)
			return fail(c, "8-bit bytes in a MIME part that "
			    "cannot be re-encoded (already encoded, a "
			    "message/* other than rfc822, or a malformed "
			    "multipart)");
		c->eflags[f->entity] |= E_CONVERT;
		c->nconverted++;
		for (i = 0; i + 1 < c->depth; i++)
			c->eflags[c->stack[i].entity] |= E_RELABEL;
		return 0;
	}
	if (c->enc == ENC_NONE) {
		if (emit(c, p, len) == -1)
			return -1;
		return has_nl ? emit(c, "\n", 1) : 0;
	}
	for (i = 0; i < len; i++)
		if ((c->enc == ENC_QP ? qp_byte(c, (unsigned char)p[i]) :
		    b64_byte(c, (unsigned char)p[i])) == -1)
			return -1;
	if (!has_nl)
		return 0;
	return c->enc == ENC_QP ? qp_eol(c, 0) : b64_eol(c);
}

static int
dispatch(struct mime7bit *c, const char *p, size_t len, int has_nl,
    int start)
{
	if (top(c)->phase == P_HEADER)
		return header_piece(c, p, len, has_nl, start);
	return body_piece(c, p, len, has_nl);
}

/* the multipart (a stack index) whose delimiter this line is, or -1 */
static int
boundary_of(struct mime7bit *c, const char *p, size_t len, int *close)
{
	struct frame	*f;
	size_t		 d, n;

	if (len < 3 || p[0] != '-' || p[1] != '-')
		return -1;
	for (d = c->depth; d-- > 0;) {
		f = &c->stack[d];
		if (f->kind != K_MULTIPART || f->phase == P_EPILOGUE ||
		    len < 2 + f->blen ||
		    memcmp(p + 2, f->boundary, f->blen) != 0)
			continue;
		n = 2 + f->blen;
		*close = len >= n + 2 && p[n] == '-' && p[n + 1] == '-';
		if (*close)
			n += 2;
		/* RFC 2046 5.1.1: transport padding may follow */
		while (n < len && (is_blank(p[n]) || p[n] == '\r'))
			n++;
		if (n == len)
			return (int)d;
	}
	return -1;
}

/*
 * A delimiter of the multipart at stack index d: it ends every part
 * opened inside it (an enclosing delimiter closes unterminated inner
 * multiparts, RFC 2046 5.1.2), then opens the next part or the epilogue.
 */
static int
on_boundary(struct mime7bit *c, size_t d, int close, const char *p,
    size_t len)
{
	struct frame	*f = &c->stack[d];

	if (c->enc != ENC_NONE && enc_end(c, 0) == -1)
		return -1;
	c->depth = d + 1;
	c->field = F_NONE;
	c->dropping = 0;
	if (emit(c, p, len) == -1 || emit(c, "\n", 1) == -1)
		return -1;
	if (close) {
		f->phase = P_EPILOGUE;
		return 0;
	}
	f->phase = P_BODY;
	return push_entity(c, f->digest);
}

static int
line_piece(struct mime7bit *c, const char *p, size_t len, int has_nl,
    int start)
{
	int	d, close;

	if (start && (d = boundary_of(c, p, len, &close)) != -1)
		return on_boundary(c, (size_t)d, close, p, len);
	return dispatch(c, p, len, has_nl, start);
}

int
mime7bit_feed(struct mime7bit *c, const char *data, size_t len)
{
	const char	*p = data, *end = data + len, *nl;
	size_t		 n, room;
	int		 whole;

	while (p < end && !c->failed) {
		nl = memchr(p, '\n', end - p);
		n = (nl != NULL ? nl : end) - p;
		if (c->llen == 0 && nl != NULL && n < sizeof(c->line)) {
			/* a whole line in the input: no copy */
			line_piece(c, p, n, 1, c->lstart);
			c->lstart = 1;
			p = nl + 1;
			continue;
		}
		room = sizeof(c->line) - c->llen;
		whole = n <= room;
		if (!whole)
			n = room;
		memcpy(c->line + c->llen, p, n);
		c->llen += n;
		p += n;
		if (whole && nl != NULL) {
			line_piece(c, c->line, c->llen, 1, c->lstart);
			c->llen = 0;
			c->lstart = 1;
			p++;
		} else if (c->llen == sizeof(c->line)) {
			/* a long line goes on in pieces */
			line_piece(c, c->line, c->llen, 0, c->lstart);
			c->llen = 0;
			c->lstart = 0;
		}
	}
	if (c->failed)
		return -1;
	return c->converting ? flush(c) : 0;
}

int
mime7bit_finish(struct mime7bit *c)
{
	int	d, close;

	if (c->failed)
		return -1;
	/* a last line without its LF */
	if (c->llen > 0) {
		if (c->lstart && (d = boundary_of(c, c->line, c->llen,
		    &close)) != -1)
			on_boundary(c, (size_t)d, close, c->line, c->llen);
		else
			dispatch(c, c->line, c->llen, 0, c->lstart);
		c->llen = 0;
		c->lstart = 1;
		if (c->failed)
			return -1;
	}
	if (c->enc != ENC_NONE && enc_end(c, 1) == -1)
		return -1;
	return c->converting ? flush(c) : 0;
}
