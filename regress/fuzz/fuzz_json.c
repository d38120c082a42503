/*
 * fuzz_json.c -- libFuzzer harness for common/json.c and the show queue
 * objects smtpctl builds with it (programs/ctl_format.c).
 *
 * The input is cut into fields (a 0xfe byte ends one) that go, as they
 * are, into every string of a struct ctl_queue_entry and into the keys
 * and values of a second document whose shape the input also chooses
 * (nesting, numbers, literals).  Each document must then:
 *	- parse with the strict RFC 8259 parser below (written apart from
 *	  the writer: its own UTF-8 check, escapes, numbers), as one value
 *	  with nothing after it;
 *	- give back every string exactly as fed in, but with each byte that
 *	  is not part of well-formed UTF-8 read as U+FFFD;
 *	- be refused by json_finish() only when the calls were out of place.
 * A broken promise aborts, which libFuzzer records as a crash.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "ctl_format.h"
#include "json.h"

/* ---- a strict parser: what any JSON reader must accept ---- */

struct parser {
	const unsigned char	*p, *end;
	int			 depth;
	/* the decoded strings, in document order, each NUL-separated */
	unsigned char		*out;
	size_t			 outlen, outcap;
	size_t			 nstrings;
};

static void
out_put(struct parser *ps, const void *s, size_t n)
{
	if (ps->outlen + n > ps->outcap) {
		size_t want = (ps->outcap + n) * 2;

		ps->out = realloc(ps->out, want);
		CHECK(ps->out != NULL);
		ps->outcap = want;
	}
	memcpy(ps->out + ps->outlen, s, n);
	ps->outlen += n;
}

static void
out_codepoint(struct parser *ps, unsigned long cp)
{
	unsigned char	b[4];
	size_t		n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18);
		b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	out_put(ps, b, n);
}

static void
skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
	    *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int	parse_value(struct parser *);

static int
hex4(struct parser *ps, unsigned long *v)
{
	int	i;

	*v = 0;
	if (ps->end - ps->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		unsigned char c = *ps->p++;

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned long)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned long)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* one raw UTF-8 character, decoded by hand (RFC 3629 table) */
static int
raw_char(struct parser *ps, unsigned long *cp)
{
	const unsigned char	*p = ps->p;
	unsigned long		 c = *p, min;
	size_t			 n, i;

	if (c < 0x80) {
		n = 1;
		min = 0;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return -1;
	if ((size_t)(ps->end - p) < n)
		return -1;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	ps->p += n;
	*cp = c;
	return 0;
}

static int
parse_string(struct parser *ps)
{
	unsigned long	cp, lo;

	if (ps->p >= ps->end || *ps->p != '"')
		return -1;
	ps->p++;
	for (;;) {
		if (ps->p >= ps->end)
			return -1;
		if (*ps->p == '"') {
			ps->p++;
			out_put(ps, "", 1);
			ps->nstrings++;
			return 0;
		}
		if (*ps->p < 0x20)
			return -1;	/* RFC 8259 7: must be escaped */
		if (*ps->p != '\\') {
			if (raw_char(ps, &cp) == -1)
				return -1;
			out_codepoint(ps, cp);
			continue;
		}
		if (++ps->p >= ps->end)
			return -1;
		switch (*ps->p++) {
		case '"': cp = '"'; break;
		case '\\': cp = '\\'; break;
		case '/': cp = '/'; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			if (hex4(ps, &cp) == -1)
				return -1;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return -1;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (ps->end - ps->p < 6 || ps->p[0] != '\\' ||
				    ps->p[1] != 'u')
					return -1;
				ps->p += 2;
				if (hex4(ps, &lo) == -1 || lo < 0xdc00 ||
				    lo > 0xdfff)
					return -1;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			break;
		default:
			return -1;
		}
		out_codepoint(ps, cp);
	}
}

static int
parse_number(struct parser *ps)
{
	const unsigned char	*start = ps->p;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end)
		return -1;
	if (*ps->p == '0')
		ps->p++;
	else if (*ps->p >= '1' && *ps->p <= '9')
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	else
		return -1;
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return -1;
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return -1;
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	return ps->p > start ? 0 : -1;
}

static int
parse_literal(struct parser *ps, const char *lit)
{
	size_t	n = strlen(lit);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0)
		return -1;
	ps->p += n;
	return 0;
}

static int
parse_container(struct parser *ps, int object)
{
	char	close = object ? '}' : ']';

	if (++ps->depth > 64)
		return -1;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		skip_ws(ps);
		if (object) {
			if (parse_string(ps) == -1)
				return -1;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p++ != ':')
				return -1;
		}
		if (parse_value(ps) == -1)
			return -1;
		skip_ws(ps);
		if (ps->p >= ps->end)
			return -1;
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p++ != close)
			return -1;
		ps->depth--;
		return 0;
	}
}

static int
parse_value(struct parser *ps)
{
	skip_ws(ps);
	if (ps->p >= ps->end)
		return -1;
	switch (*ps->p) {
	case '{':
		return parse_container(ps, 1);
	case '[':
		return parse_container(ps, 0);
	case '"':
		return parse_string(ps);
	case 't':
		return parse_literal(ps, "true");
	case 'f':
		return parse_literal(ps, "false");
	case 'n':
		return parse_literal(ps, "null");
	default:
		return parse_number(ps);
	}
}

/* the whole document: one value, then nothing */
static void
parse_document(struct parser *ps, const char *doc, size_t len)
{
	memset(ps, 0, sizeof(*ps));
	ps->p = (const unsigned char *)doc;
	ps->end = ps->p + len;
	CHECK(memchr(doc, '\0', len) == NULL);
	CHECK(parse_value(ps) == 0);
	skip_ws(ps);
	CHECK(ps->p == ps->end);
	CHECK(ps->depth == 0);
}

/* ---- what the strings must read back as ---- */

/* in, with each byte outside well-formed UTF-8 as U+FFFD, then a NUL */
static void
expected_put(struct parser *want, const char *s, size_t len)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 i = 0, n;
	struct parser		 tmp;
	unsigned long		 cp;

	while (i < len) {
		tmp.p = u + i;
		tmp.end = u + len;
		if (raw_char(&tmp, &cp) == 0) {
			n = (size_t)(tmp.p - (u + i));
			out_put(want, u + i, n);
			i += n;
		} else {
			out_codepoint(want, 0xfffd);
			i++;
		}
	}
	out_put(want, "", 1);
	want->nstrings++;
}

/* fields of the input, each ended by 0xfe (or the end) */
struct fields {
	const uint8_t	*p, *end;
};

static size_t
next_field(struct fields *f, const char **s)
{
	const uint8_t	*start = f->p, *q;

	q = memchr(f->p, 0xfe, (size_t)(f->end - f->p));
	if (q == NULL)
		q = f->end;
	*s = (const char *)start;
	f->p = q < f->end ? q + 1 : q;
	return (size_t)(q - start);
}

static void
copy_field(char *dst, size_t size, const char *s, size_t len)
{
	/* the wire carries NUL-terminated arrays: a NUL ends the string */
	len = strnlen(s, len);
	if (len >= size)
		len = size - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

static void
compare(const struct parser *got, const struct parser *want)
{
	CHECK(got->nstrings == want->nstrings);
	CHECK(got->outlen == want->outlen);
	CHECK(want->outlen == 0 ||
	    memcmp(got->out, want->out, want->outlen) == 0);
}

/* every string field of smtpctl's show queue object */
static void
fuzz_queue_entry(const uint8_t *data, size_t size)
{
	struct ctl_queue_entry	 q;
	struct fields		 f = { data, data + size };
	struct parser		 got, want;
	struct json		 j;
	const char		*s, *doc;
	size_t			 len, doclen;
	char			 idbuf[17], msgbuf[9];
	FILE			*fp;
	char			*text = NULL;
	size_t			 textlen = 0;

	memset(&q, 0, sizeof(q));
	len = next_field(&f, &s);
	copy_field(q.sender, sizeof(q.sender), s, len);
	len = next_field(&f, &s);
	copy_field(q.recipient, sizeof(q.recipient), s, len);
	len = next_field(&f, &s);
	copy_field(q.error, sizeof(q.error), s, len);
	len = next_field(&f, &s);	/* none: not held, "held": null */
	copy_field(q.held, sizeof(q.held), s, len);
	if (size >= 8)
		memcpy(&q.evpid, data, 8);
	if (size >= 16)
		memcpy(&q.arrival, data + 8, 8);
	if (size >= 24)
		memcpy(&q.nexttry, data + 16, 8);
	if (size >= 32)
		memcpy(&q.now, data + 24, 8);
	q.state = size ? data[size - 1] % (CTL_QSTATE_MAX + 1) : 0;
	q.size = size;
	q.tries = (uint32_t)size * 7;

	json_init(&j);
	ctl_queue_entry_json(&j, &q);
	CHECK((doc = json_finish(&j, &doclen)) != NULL);
	parse_document(&got, doc, doclen);

	/* keys and values, in the order ctl_queue_entry_json() writes */
	memset(&want, 0, sizeof(want));
	snprintf(idbuf, sizeof(idbuf), "%016llx", (unsigned long long)q.evpid);
	snprintf(msgbuf, sizeof(msgbuf), "%08x", (unsigned)(q.evpid >> 32));
	expected_put(&want, "id", 2);
	expected_put(&want, idbuf, 16);
	expected_put(&want, "message", 7);
	expected_put(&want, msgbuf, 8);
	expected_put(&want, "sender", 6);
	expected_put(&want, q.sender, strlen(q.sender));
	expected_put(&want, "recipient", 9);
	expected_put(&want, q.recipient, strlen(q.recipient));
	expected_put(&want, "state", 5);
	s = ctl_queue_state_name(q.state);
	expected_put(&want, s, strlen(s));
	expected_put(&want, "size", 4);
	expected_put(&want, "arrival", 7);
	expected_put(&want, "age", 3);
	expected_put(&want, "tries", 5);
	expected_put(&want, "last_try", 8);
	expected_put(&want, "next_try", 8);
	expected_put(&want, "error", 5);
	expected_put(&want, q.error, strlen(q.error));
	expected_put(&want, "held", 4);
	if (q.held[0] != '\0')
		expected_put(&want, q.held, strlen(q.held));
	compare(&got, &want);
	free(got.out);
	free(want.out);
	json_free(&j);

	/* the text line: one line, no control character, valid UTF-8 */
	if ((fp = open_memstream(&text, &textlen)) == NULL)
		return;
	ctl_queue_entry_text(fp, &q);
	fclose(fp);
	CHECK(textlen > 0 && text[textlen - 1] == '\n');
	for (len = 0; len + 1 < textlen; len++)
		CHECK((unsigned char)text[len] >= 0x20 &&
		    text[len] != 0x7f);
	memset(&got, 0, sizeof(got));
	got.p = (const unsigned char *)text;
	got.end = got.p + textlen;
	while (got.p < got.end) {
		unsigned long cp;

		CHECK(raw_char(&got, &cp) == 0);
	}
	free(text);
}

/*
 * A document the input shapes: each opcode byte opens or closes a
 * container, writes a key or a value of some kind; the strings are the
 * input's fields.  The parser must accept whatever json_finish() gives,
 * and the writer must give one whenever the calls were in order.
 */
static void
fuzz_shapes(const uint8_t *data, size_t size)
{
	struct json	 j;
	struct parser	 got, want;
	struct fields	 f;
	const char	*s, *doc;
	char		 kinds[JSON_DEPTH_MAX + 2], *key;
	size_t		 n, len, doclen, ops;
	int		 depth = 0, need_value = 0, ok = 1, top_done = 0;
	int64_t		 v;

	if (size < 2)
		return;
	ops = data[0] % 64;
	if ((size_t)ops + 1 > size)
		ops = size - 1;
	f.p = data + 1 + ops;
	f.end = data + size;
	json_init(&j);
	memset(&want, 0, sizeof(want));
	for (n = 0; n < ops; n++) {
		uint8_t op = data[1 + n];
		int in_obj = depth > 0 && kinds[depth - 1] == 'o';
		int value_ok = !top_done && (depth == 0 ? 1 :
		    in_obj ? need_value : 1);

		switch (op % 8) {
		case 0:
		case 1:
			if (op % 8 == 0)
				json_object_begin(&j);
			else
				json_array_begin(&j);
			if (!value_ok || depth == JSON_DEPTH_MAX) {
				ok = 0;
				break;
			}
			need_value = 0;
			kinds[depth++] = op % 8 == 0 ? 'o' : 'a';
			break;
		case 2:
		case 3:
			if (op % 8 == 2)
				json_object_end(&j);
			else
				json_array_end(&j);
			if (depth == 0 || kinds[depth - 1] !=
			    (op % 8 == 2 ? 'o' : 'a') || need_value) {
				ok = 0;
				break;
			}
			if (--depth == 0)
				top_done = 1;
			break;
		case 4:
			/* json_key takes a C string: up to a NUL */
			len = next_field(&f, &s);
			len = strnlen(s, len);
			CHECK((key = malloc(len + 1)) != NULL);
			memcpy(key, s, len);
			key[len] = '\0';
			json_key(&j, key);
			if (!in_obj || need_value || top_done) {
				free(key);
				ok = 0;
				break;
			}
			expected_put(&want, key, len);
			free(key);
			need_value = 1;
			break;
		case 5:
			len = next_field(&f, &s);
			json_string(&j, s, len);
			if (!value_ok) {
				ok = 0;
				break;
			}
			expected_put(&want, s, len);
			need_value = 0;
			if (depth == 0)
				top_done = 1;
			break;
		default:
			v = (int64_t)((uint64_t)op << 56 | n * 0x9e3779b9u);
			if (op % 8 == 6)
				json_int(&j, v);
			else if (op & 0x80)
				json_uint(&j, (uint64_t)v);
			else if (op & 0x40)
				json_bool(&j, op & 0x20);
			else
				json_null(&j);
			if (!value_ok) {
				ok = 0;
				break;
			}
			need_value = 0;
			if (depth == 0)
				top_done = 1;
			break;
		}
		if (!ok)
			break;
	}
	doc = json_finish(&j, &doclen);
	if (ok && depth == 0 && top_done) {
		CHECK(doc != NULL);
		parse_document(&got, doc, doclen);
		compare(&got, &want);
		free(got.out);
	} else
		CHECK(doc == NULL);
	free(want.out);
	json_free(&j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_queue_entry(data, size);
	fuzz_shapes(data, size);
	return 0;
}
