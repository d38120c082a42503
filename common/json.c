/*
 * json.c -- a small JSON writer (RFC 8259); see json.h for why and for
 * how strings are escaped.
 *
 * The document grows in one heap buffer.  An allocation failure or a
 * call out of place sets `broken' and every later call does nothing, so
 * callers write the whole document and check once, at json_finish().
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void
json_init(struct json *j)
{
	memset(j, 0, sizeof(*j));
}

void
json_free(struct json *j)
{
	free(j->buf);
	memset(j, 0, sizeof(*j));
}

static void
put(struct json *j, const char *s, size_t n)
{
	size_t	 want;
	char	*nb;

	if (j->broken)
		return;
	if (n >= SIZE_MAX / 2 - j->len) {
		j->broken = 1;
		return;
	}
	if (j->len + n + 1 > j->cap) {
		want = j->cap ? j->cap : 256;
		while (want < j->len + n + 1)
			want *= 2;
		if ((nb = realloc(j->buf, want)) == NULL) {
			j->broken = 1;
			return;
		}
		j->buf = nb;
		j->cap = want;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

/*
 * Before any value: is one allowed here?  Writes the comma between array
 * elements.  In an object a value is allowed only right after its key.
 */
static int
value_begin(struct json *j)
{
	if (j->broken)
		return 0;
	if (j->depth == 0) {
		if (j->done) {
			j->broken = 1;	/* one top-level value only */
			return 0;
		}
		return 1;
	}
	if (j->kind[j->depth - 1] == 'o') {
		if (!j->after_key) {
			j->broken = 1;
			return 0;
		}
		j->after_key = 0;
		return 1;
	}
	if (j->count[j->depth - 1]++ > 0)
		put(j, ",", 1);
	return 1;
}

/* after a complete value: at the top level the document is done */
static void
value_end(struct json *j)
{
	if (j->depth == 0)
		j->done = 1;
}

static void
open_level(struct json *j, char kind)
{
	if (!value_begin(j))
		return;
	if (j->depth == JSON_DEPTH_MAX) {
		j->broken = 1;
		return;
	}
	j->kind[j->depth] = kind;
	j->count[j->depth] = 0;
	j->depth++;
	put(j, kind == 'o' ? "{" : "[", 1);
}

static void
close_level(struct json *j, char kind)
{
	if (j->broken)
		return;
	if (j->depth == 0 || j->kind[j->depth - 1] != kind || j->after_key) {
		j->broken = 1;
		return;
	}
	j->depth--;
	put(j, kind == 'o' ? "}" : "]", 1);
	value_end(j);
}

void
json_object_begin(struct json *j)
{
	open_level(j, 'o');
}

void
json_object_end(struct json *j)
{
	close_level(j, 'o');
}

void
json_array_begin(struct json *j)
{
	open_level(j, 'a');
}

void
json_array_end(struct json *j)
{
	close_level(j, 'a');
}

/*
 * RFC 3629 section 4: the well-formed sequences.  Overlong forms,
 * surrogates (U+D800-DFFF) and anything past U+10FFFF are not.
 */
size_t
utf8_sequence_len(const unsigned char *s, size_t avail)
{
	unsigned char	c = s[0], lo = 0x80, hi = 0xbf;
	size_t		n, i;

	if (avail == 0)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (avail < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static void
put_escaped(struct json *j, const char *str, size_t len)
{
	const unsigned char	*s = (const unsigned char *)str;
	char			 esc[8];
	size_t			 i = 0, run, n;

	put(j, "\"", 1);
	while (i < len && !j->broken) {
		/* the longest run that needs nothing, in one copy */
		for (run = i; run < len && s[run] >= 0x20 && s[run] < 0x7f &&
		    s[run] != '"' && s[run] != '\\'; run++)
			;
		if (run > i) {
			put(j, str + i, run - i);
			i = run;
			continue;
		}
		if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)s[i];
			put(j, esc, 2);
			i++;
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", s[i]);
			put(j, esc, 6);
			i++;
		} else if ((n = utf8_sequence_len(s + i, len - i)) > 0) {
			put(j, str + i, n);
			i += n;
		} else {
			put(j, "\\ufffd", 6);
			i++;
		}
	}
	put(j, "\"", 1);
}

void
json_key(struct json *j, const char *key)
{
	if (j->broken)
		return;
	if (key == NULL || j->depth == 0 || j->kind[j->depth - 1] != 'o' ||
	    j->after_key) {
		j->broken = 1;
		return;
	}
	if (j->count[j->depth - 1]++ > 0)
		put(j, ",", 1);
	put_escaped(j, key, strlen(key));
	put(j, ":", 1);
	j->after_key = 1;
}

void
json_string(struct json *j, const char *s, size_t len)
{
	if (s == NULL && len > 0) {
		j->broken = 1;
		return;
	}
	if (!value_begin(j))
		return;
	put_escaped(j, s ? s : "", len);
	value_end(j);
}

void
json_cstring(struct json *j, const char *s)
{
	if (s == NULL)
		json_null(j);
	else
		json_string(j, s, strlen(s));
}

static void
put_literal(struct json *j, const char *lit)
{
	if (!value_begin(j))
		return;
	put(j, lit, strlen(lit));
	value_end(j);
}

void
json_int(struct json *j, int64_t v)
{
	char	num[24];

	snprintf(num, sizeof(num), "%" PRId64, v);
	put_literal(j, num);
}

void
json_uint(struct json *j, uint64_t v)
{
	char	num[24];

	snprintf(num, sizeof(num), "%" PRIu64, v);
	put_literal(j, num);
}

void
json_bool(struct json *j, int v)
{
	put_literal(j, v ? "true" : "false");
}

void
json_null(struct json *j)
{
	put_literal(j, "null");
}

void
json_kv_string(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_cstring(j, s);
}

void
json_kv_int(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_int(j, v);
}

void
json_kv_uint(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	json_uint(j, v);
}

void
json_kv_null(struct json *j, const char *key)
{
	json_key(j, key);
	json_null(j);
}

const char *
json_finish(struct json *j, size_t *len)
{
	if (j->broken || !j->done || j->depth != 0 || j->buf == NULL)
		return NULL;
	if (len != NULL)
		*len = j->len;
	return j->buf;
}
