/*
 * test_mime7bit.c -- mta/mime7bit.c, the 8-bit to 7-bit MIME
 * converter of the mta: each message goes through both passes, fed
 * whole and fed a byte at a time (the output must not depend on how
 * the input was cut), the output must be 7-bit with lines of at most
 * 76 characters in the parts converted, and every converted part must
 * decode back to the bytes it had.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mime7bit.h"

struct out {
	char	*buf;
	size_t	 len, cap;
};

static int
out_add(void *arg, const char *p, size_t n)
{
	struct out	*o = arg;

	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->buf = realloc(o->buf, o->cap);
		assert_non_null(o->buf);
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->buf[o->len] = '\0';
	return 0;
}

static int
feed(struct mime7bit *c, const char *in, size_t len, size_t chunk)
{
	size_t	off, n;

	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		if (mime7bit_feed(c, in + off, n) == -1)
			return -1;
	}
	return mime7bit_finish(c);
}

/* both passes with input cut in pieces of chunk bytes; NULL: refused */
static char *
convert_chunked(const char *in, size_t len, size_t chunk, size_t *nconv,
    const char **err)
{
	struct mime7bit	*c = mime7bit_new();
	struct out	 o = { NULL, 0, 0 };

	assert_non_null(c);
	if (feed(c, in, len, chunk) == -1) {
		if (err != NULL)
			*err = mime7bit_error(c);
		assert_non_null(mime7bit_error(c));
		assert_int_equal(mime7bit_convert(c, out_add, &o), -1);
		mime7bit_free(c);
		return NULL;
	}
	if (nconv != NULL)
		*nconv = mime7bit_nconverted(c);
	assert_int_equal(mime7bit_convert(c, out_add, &o), 0);
	assert_int_equal(feed(c, in, len, chunk), 0);
	mime7bit_free(c);
	out_add(&o, "", 0);
	return o.buf;
}

/* converted whole and a byte at a time: the same output, 7-bit */
static char *
convert(const char *in, size_t *nconv)
{
	char	*a, *b;
	size_t	 i, len = strlen(in);

	a = convert_chunked(in, len, len ? len : 1, nconv, NULL);
	if (a == NULL)
		return NULL;
	b = convert_chunked(in, len, 1, NULL, NULL);
	assert_non_null(b);
	assert_string_equal(a, b);
	free(b);
	b = convert_chunked(in, len, 7, NULL, NULL);
	assert_string_equal(a, b);
	free(b);
	if (nconv == NULL || *nconv > 0)
		for (i = 0; a[i] != '\0'; i++)
			assert_true((unsigned char)a[i] < 0x80);
	return a;
}

static const char *
refused(const char *in)
{
	const char	*err = NULL;

	assert_null(convert_chunked(in, strlen(in), strlen(in), NULL, &err));
	assert_non_null(err);
	return err;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	fail_msg("bad hex digit %c", ch);
	return 0;
}

/* quoted-printable decoded, hard line breaks as LF; lines <= 76 */
static char *
qp_decode(const char *p, size_t len)
{
	char	*o = calloc(1, len + 1), *q = o;
	size_t	 col = 0;

	assert_non_null(o);
	while (len > 0) {
		if (*p == '\n') {
			assert_true(col <= 76);
			/* no blank may end an encoded line */
			assert_true(q == o || col == 0 || (p[-1] != ' ' &&
			    p[-1] != '\t'));
			*q++ = '\n';
			p++, len--, col = 0;
		} else if (*p == '=' && len >= 2 && p[1] == '\n') {
			assert_true(col + 1 <= 76);
			p += 2, len -= 2, col = 0;
		} else if (*p == '=') {
			assert_true(len >= 3);
			*q++ = (char)(hexval(p[1]) << 4 | hexval(p[2]));
			p += 3, len -= 3, col += 3;
		} else {
			assert_true(*p != '\r');
			assert_true((unsigned char)*p < 0x80);
			*q++ = *p++;
			len--, col++;
		}
	}
	assert_true(col <= 76);
	*q = '\0';
	return o;
}

static int
b64val(char ch)
{
	const char	*s = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/", *f = strchr(s, ch);

	assert_non_null(f);
	return (int)(f - s);
}

/* base64 decoded; the length in *n */
static char *
b64_decode(const char *p, size_t len, size_t *n)
{
	char		*o = calloc(1, len + 1);
	unsigned	 acc = 0;
	int		 bits = 0;
	size_t		 col = 0;

	assert_non_null(o);
	*n = 0;
	for (; len > 0; p++, len--) {
		if (*p == '\n') {
			assert_true(col <= 76);
			col = 0;
			continue;
		}
		col++;
		if (*p == '=')
			break;
		acc = acc << 6 | b64val(*p);
		if ((bits += 6) >= 8) {
			bits -= 8;
			o[(*n)++] = (char)(acc >> bits);
		}
	}
	return o;
}

/*
 * Part n (0 = the first) between "--boundary" lines: its header and
 * body (without the line end before the next delimiter), copied.
 */
static void
part_of(const char *msg, const char *boundary, int n, char **hdr,
    char **body)
{
	char		 delim[128];
	const char	*p = msg, *start, *end, *sep;

	snprintf(delim, sizeof(delim), "\n--%s", boundary);
	for (; n >= 0; n--) {
		p = strstr(p, delim);
		assert_non_null(p);
		p += strlen(delim);
	}
	p = strchr(p, '\n') + 1;
	start = p;
	end = strstr(p, delim);
	assert_non_null(end);
	sep = strstr(start, "\n\n");
	if (start[0] == '\n')
		sep = start - 1;
	assert_true(sep != NULL && sep < end);
	*hdr = strndup(start, sep + 1 - start);
	*body = strndup(sep + 2, end - (sep + 2));
}

static void
test_7bit_untouched(void **state)
{
	const char	*msgs[] = {
		"Subject: plain\n\nHello.\n",
		"MIME-Version: 1.0\nContent-Type: multipart/mixed; "
		    "boundary=b\n\npre\n--b\nContent-Type: text/plain\n\n"
		    "x=y trailing  \n--b--\nepi\n",
		"Subject: no final LF\n\nlast",
		"",
		"Subject: x\n",
	};
	size_t		 i, nconv;
	char		*o;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		o = convert(msgs[i], &nconv);
		assert_non_null(o);
		assert_int_equal(nconv, 0);
		assert_string_equal(o, msgs[i]);
		free(o);
	}
}

static void
test_nonmime(void **state)
{
	const char	*in = "From: a@b\nSubject: s\n\nca\xc3\xa9 = 100%\n"
	    "line two \n.dot\n";
	char		*o, *d, *body;
	size_t		 nconv;

	o = convert(in, &nconv);
	assert_int_equal(nconv, 1);
	/* RFC 1428 section 3's fields, after the original ones */
	assert_non_null(strstr(o, "From: a@b\nSubject: s\nMIME-Version: 1.0\n"
	    "Content-Type: text/plain; charset=unknown-8bit\n"
	    "Content-Transfer-Encoding: quoted-printable\n\n"));
	body = strstr(o, "\n\n") + 2;
	assert_string_equal(body, "ca=C3=A9 =3D 100%\nline two=20\n.dot\n");
	d = qp_decode(body, strlen(body));
	assert_string_equal(d, "ca\xc3\xa9 = 100%\nline two \n.dot\n");
	free(d);
	free(o);
}

#define NESTED								\
	"MIME-Version: 1.0\n"						\
	"Subject: nested\n"						\
	"Content-Type: multipart/mixed;\n"				\
	"\tboundary=\"outer b\"\n"					\
	"Content-Transfer-Encoding: 8bit\n"				\
	"\n"								\
	"This is a MIME message.\n"					\
	"--outer b\n"							\
	"Content-Type: multipart/alternative; boundary=inner\n"	\
	"\n"								\
	"--inner\n"							\
	"Content-Type: text/plain; charset=utf-8\n"			\
	"Content-Transfer-Encoding: 8bit\n"				\
	"\n"								\
	"Gr\xc3\xbc\xc3\x9f""e\n"					\
	"--inner\n"							\
	"Content-Type: text/html\n"					\
	"Content-Transfer-Encoding: 7bit\n"				\
	"\n"								\
	"<p>seven bit</p>\n"						\
	"--inner--\n"							\
	"--outer b\n"							\
	"Content-Type: application/octet-stream\n"			\
	"Content-Transfer-Encoding:\n"					\
	" 8bit\n"							\
	"\n"								\
	"\x01\xff\xfe\n"						\
	"\n"								\
	"bin\xe9\n"							\
	"--outer b\n"							\
	"Content-Type: message/rfc822\n"				\
	"\n"								\
	"Subject: inner message\n"					\
	"Content-Type: text/plain\n"					\
	"\n"								\
	"inner \xe9t\xe9\n"						\
	"--outer b  \n"							\
	"Content-Type: text/plain\n"					\
	"Content-Transfer-Encoding: base64\n"				\
	"\n"								\
	"aGVsbG8=\n"							\
	"--outer b--\n"							\
	"epilogue\n"

static void
test_nested(void **state)
{
	char	*o, *h, *b, *d, *inner;
	size_t	 nconv, n;

	o = convert(NESTED, &nconv);
	assert_int_equal(nconv, 3);
	/* the top: 8bit became 7bit, the folded Content-Type kept */
	assert_non_null(strstr(o, "Subject: nested\nContent-Type: "
	    "multipart/mixed;\n\tboundary=\"outer b\"\n"
	    "Content-Transfer-Encoding: 7bit\n\nThis is a MIME message.\n"));
	assert_null(strstr(o, "8bit"));

	/* the alternative: quoted-printable, and the 7bit html untouched */
	part_of(o, "outer b", 0, &h, &b);
	assert_string_equal(h, "Content-Type: multipart/alternative; "
	    "boundary=inner\n");
	free(h);
	free(b);
	part_of(o, "inner", 0, &h, &b);
	assert_string_equal(h, "Content-Type: text/plain; charset=utf-8\n"
	    "Content-Transfer-Encoding: quoted-printable\n");
	d = qp_decode(b, strlen(b));
	assert_string_equal(d, "Gr\xc3\xbc\xc3\x9f""e");
	free(d);
	free(h);
	free(b);
	part_of(o, "inner", 1, &h, &b);
	assert_string_equal(h, "Content-Type: text/html\n"
	    "Content-Transfer-Encoding: 7bit\n");
	assert_string_equal(b, "<p>seven bit</p>");
	free(h);
	free(b);

	/* application/octet-stream: base64 of the CRLF form, the folded
	 * encoding field replaced whole */
	part_of(o, "outer b", 1, &h, &b);
	assert_string_equal(h, "Content-Type: application/octet-stream\n"
	    "Content-Transfer-Encoding: base64\n");
	d = b64_decode(b, strlen(b), &n);
	assert_int_equal(n, 11);
	assert_memory_equal(d, "\x01\xff\xfe\r\n\r\nbin\xe9", 11);
	free(d);
	free(h);
	free(b);

	/* the encapsulated message: its own part converted */
	part_of(o, "outer b", 2, &h, &b);
	assert_string_equal(h, "Content-Type: message/rfc822\n");
	inner = strstr(b, "\n\n");
	assert_non_null(inner);
	assert_true(strncmp(b, "Subject: inner message\nContent-Type: "
	    "text/plain\nContent-Transfer-Encoding: quoted-printable\n\n",
	    inner + 2 - b) == 0);
	assert_string_equal(inner + 2, "inner =E9t=E9");
	free(h);
	free(b);

	/* already base64, 7-bit: untouched; padding after the delimiter */
	part_of(o, "outer b", 3, &h, &b);
	assert_string_equal(h, "Content-Type: text/plain\n"
	    "Content-Transfer-Encoding: base64\n");
	assert_string_equal(b, "aGVsbG8=");
	free(h);
	free(b);
	assert_non_null(strstr(o, "\n--outer b  \n"));
	assert_true(strlen(o) > 10 &&
	    strcmp(o + strlen(o) - 22, "\n--outer b--\nepilogue\n") == 0);
	free(o);
}

static void
test_long_lines(void **state)
{
	char	*in, *o, *body, *d, *expect;
	size_t	 i, nconv, len = 10000;

	/* one line of 10000 bytes (past the line buffer), then a short one */
	in = malloc(len + 100);
	expect = malloc(len + 100);
	assert_non_null(in);
	assert_non_null(expect);
	strcpy(in, "Content-Type: text/plain\nMIME-Version: 1.0\n\n");
	body = in + strlen(in);
	for (i = 0; i < len; i++)
		body[i] = i % 97 == 0 ? (char)0xe9 : i % 13 == 0 ? ' ' :
		    i % 89 == 0 ? '=' : (char)('a' + i % 26);
	body[len] = '\0';
	strcat(body, " \nend\n");
	strcpy(expect, body);
	o = convert(in, &nconv);
	assert_int_equal(nconv, 1);
	d = strstr(o, "\n\n") + 2;
	d = qp_decode(d, strlen(d));
	assert_string_equal(d, expect);
	free(d);
	free(o);
	free(in);
	free(expect);
}

static void
test_crlf(void **state)
{
	const char	*lf = "Content-Type: text/plain\n\nl\xe9 1\nl2 \n";
	const char	*crlf = "Content-Type: text/plain\r\n\r\n"
	    "l\xe9 1\r\nl2 \r\n";
	const char	*bare = "Content-Type: text/plain\n\na\rb\xe9\r\r\n";
	const char	*bin = "Content-Type: image/x\r\n\r\n\xff\r\nx\r\n";
	char		*a, *b, *d;
	size_t		 n;

	a = convert(lf, NULL);
	b = convert(crlf, NULL);
	/* the header is passed as it was; the bodies encode alike */
	assert_string_equal(strstr(a, "\n\n") + 2, strstr(b, "\n\r\n") + 3);
	assert_string_equal(strstr(a, "\n\n") + 2, "l=E9 1\nl2=20\n");
	free(a);
	free(b);
	/* a CR that does not end a line is data */
	a = convert(bare, NULL);
	d = qp_decode(strstr(a, "\n\n") + 2, strlen(strstr(a, "\n\n") + 2));
	assert_string_equal(d, "a\rb\xe9\r\n");
	free(d);
	free(a);
	/* base64 of the canonical form: CRLF whatever the spool had */
	a = convert(bin, NULL);
	b = strstr(a, "\n\r\n") + 3;
	d = b64_decode(b, strlen(b), &n);
	assert_int_equal(n, 6);
	assert_memory_equal(d, "\xff\r\nx\r\n", 6);
	free(d);
	free(a);
}

static void
test_digest_default(void **state)
{
	const char	*in = "MIME-Version: 1.0\n"
	    "Content-Type: multipart/digest; boundary=d\n\n"
	    "--d\n\nSubject: one\n\nbody \xe9\n--d--\n";
	char		*o;
	size_t		 nconv;

	/* a digest part defaults to message/rfc822: its body converted */
	o = convert(in, &nconv);
	assert_int_equal(nconv, 1);
	assert_non_null(strstr(o, "--d\n\nSubject: one\n"
	    "Content-Type: text/plain; charset=unknown-8bit\n"
	    "Content-Transfer-Encoding: quoted-printable\n\nbody =E9\n"
	    "--d--\n"));
	free(o);
}

static void
test_refused(void **state)
{
	assert_non_null(strstr(refused("Subject: caf\xc3\xa9\n\nx\n"),
	    "message header"));
	assert_non_null(strstr(refused("MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
	    "Content-Type: text/plain; name=\xe9\n\nx\n--b--\n"),
	    "part header"));
	assert_non_null(strstr(refused("MIME-Version: 1.0\n"
	    "Content-Transfer-Encoding: base64\n\n\xe9\n"),
	    "re-encoded"));
	assert_non_null(strstr(refused("MIME-Version: 1.0\n"
	    "Content-Type: message/partial; id=1\n\n\xe9\n"), "re-encoded"));
	assert_non_null(strstr(refused("MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed\n\n\xe9\n"), "re-encoded"));
	assert_non_null(strstr(refused("MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=b\n\npre \xe9\n--b\n\n"
	    "x\n--b--\n"), "preamble"));
	assert_non_null(strstr(refused("MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n"
	    "epi \xe9\n"), "epilogue"));
}

static void
test_unterminated(void **state)
{
	/* inner multipart never closed: the outer delimiter ends it */
	const char	*in = "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
	    "Content-Type: multipart/mixed; boundary=i\n\n--i\n\n\xe9\n--o\n"
	    "Content-Type: text/plain\n\nok\n--o--";
	char		*o;
	size_t		 nconv;

	o = convert(in, &nconv);
	assert_int_equal(nconv, 1);
	assert_non_null(strstr(o, "--i\nContent-Type: text/plain; "
	    "charset=unknown-8bit\nContent-Transfer-Encoding: "
	    "quoted-printable\n\n=E9\n--o\nContent-Type: text/plain\n\nok\n"
	    "--o--\n"));
	free(o);
}

static void
test_base64_lines(void **state)
{
	char	 in[4096], *o, *d;
	size_t	 i, n, hl;

	hl = (size_t)snprintf(in, sizeof(in),
	    "MIME-Version: 1.0\nContent-Type: application/x\n\n");
	for (i = 0; i < 1000; i++)
		in[hl + i] = i % 100 == 99 ? '\n' : (char)(0x80 + i % 100);
	in[hl + 1000] = '\0';
	o = convert(in, NULL);
	d = strstr(o, "\n\n") + 2;
	d = b64_decode(d, strlen(d), &n);
	/* ten lines of 99 bytes, each with CRLF, the last one too (EOF) */
	assert_int_equal(n, 1010);
	for (i = 0; i < n; i++)
		assert_int_equal((unsigned char)d[i], i % 101 == 99 ? '\r' :
		    i % 101 == 100 ? '\n' : 0x80 + i % 101);
	free(d);
	free(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_7bit_untouched),
		cmocka_unit_test(test_nonmime),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_digest_default),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_base64_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
