/*
 * json.h -- a small JSON writer (RFC 8259) for structured output.
 *
 * Every machine-readable output (smtpctl -j) is built with this writer
 * and never by hand, so that no value a client or a peer chose -- an
 * address with quotes, a remote server's reply with control characters
 * or bytes that are not UTF-8 -- can break the document or forge a
 * field.  The writer keeps track of nesting and commas; a call out of
 * place (a value where a key is due, an end without a begin) marks the
 * document broken and json_finish() then fails instead of returning it.
 *
 * Strings are taken as byte arrays and written as:
 *	'"' and '\\'			escaped with a backslash
 *	0x00-0x1f and 0x7f		\u00XX
 *	well-formed UTF-8 (RFC 3629)	as is
 *	any other byte			\ufffd, one per byte (the REPLACEMENT
 *					CHARACTER), so the output is always
 *					valid UTF-8 and says where bytes were
 *					lost
 */
#ifndef POSTHASTE_JSON_H
#define POSTHASTE_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_DEPTH_MAX	16

struct json {
	char		*buf;
	size_t		 len, cap;
	int		 broken;	/* misuse or out of memory */
	int		 depth;
	/* per level: 'o' object, 'a' array; and what comes next */
	char		 kind[JSON_DEPTH_MAX];
	int		 count[JSON_DEPTH_MAX];	/* members written */
	int		 after_key;	/* a key was written, its value is due */
	int		 done;		/* the top-level value is complete */
};

void	json_init(struct json *);
/* frees the buffer; the struct may be initialised again */
void	json_free(struct json *);

void	json_object_begin(struct json *);
void	json_object_end(struct json *);
void	json_array_begin(struct json *);
void	json_array_end(struct json *);
/* an object member's name: the next call writes its value */
void	json_key(struct json *, const char *);

/* values: inside an array, after a key, or as the whole document */
void	json_string(struct json *, const char *, size_t);
void	json_cstring(struct json *, const char *);	/* NULL: null */
void	json_int(struct json *, int64_t);
void	json_uint(struct json *, uint64_t);
void	json_bool(struct json *, int);
void	json_null(struct json *);

/* key and value in one call */
void	json_kv_string(struct json *, const char *, const char *);
void	json_kv_int(struct json *, const char *, int64_t);
void	json_kv_uint(struct json *, const char *, uint64_t);
void	json_kv_null(struct json *, const char *);

/*
 * The document, NUL-terminated, with its length in *len (may be NULL);
 * NULL when it is incomplete or broken.  The buffer stays the writer's.
 */
const char *json_finish(struct json *, size_t *len);

/* length of the well-formed UTF-8 sequence at s (1-4), 0 if none */
size_t	utf8_sequence_len(const unsigned char *s, size_t avail);

#endif
