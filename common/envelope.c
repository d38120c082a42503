/*
 * envelope.c -- the on-disk form of an envelope.
 *
 *	version: 1
 *	id: 0123456789abcdef
 *	...
 *	end: ok
 *
 * One "key: value" per line.  Every value is escaped on write (a byte
 * below 0x20, 0x7f or a backslash becomes \xNN), so no stored text --
 * an address, a HELO name, a remote server's error line -- can ever
 * forge a line or a key (CVE-2020-8794 class).  On read every key must
 * be known and appear once, every value must be well formed and in
 * range, and the "end" marker must be last, so a torn or tampered file
 * is detected instead of trusted.
 *
 * Keys added later are optional, so an older file still loads:
 * "wire-size", and "hold-reason" (EF_HOLD's reason, printable text; the
 * flag and the reason come together or not at all).  A file with a
 * hold-reason is refused by a version that predates it: only held mail
 * has one.  New flags need no key: EF_REQUIRETLS and EF_TLS_OPTIONAL
 * (RFC 8689) are bits of "flags", which every version reads whole.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "spool_msg.h"

enum fkind { F_U64HEX, F_I64, F_U32, F_U32HEX, F_DEST, F_ADDR, F_STR };

struct field {
	const char	*key;
	enum fkind	 kind;
	size_t		 off;
	size_t		 size;		/* F_STR: buffer size */
	int		 required;
};

#define FLD(k, kind, member, req) \
	{ k, kind, offsetof(struct envelope, member), \
	  sizeof(((struct envelope *)0)->member), req }

static const struct field fields[] = {
	FLD("id", F_U64HEX, id, 1),
	FLD("ctime", F_I64, ctime, 1),
	FLD("lasttry", F_I64, lasttry, 0),
	FLD("nexttry", F_I64, nexttry, 0),
	FLD("tries", F_U32, tries, 0),
	FLD("flags", F_U32HEX, flags, 0),
	FLD("uid", F_U32, uid, 0),
	FLD("wire-size", F_I64, wire_size, 0),
	FLD("dest-type", F_DEST, dest_type, 1),
	FLD("sender", F_ADDR, sender, 1),
	FLD("rcpt", F_ADDR, rcpt, 1),
	FLD("dest", F_ADDR, dest, 1),
	FLD("action", F_STR, action, 1),
	FLD("user", F_STR, user, 0),
	FLD("path", F_STR, path, 0),
	FLD("helo", F_STR, helo, 0),
	FLD("client", F_STR, client, 0),
	FLD("authname", F_STR, authname, 0),
	FLD("envid", F_STR, envid, 0),
	FLD("orcpt", F_STR, orcpt, 0),
	FLD("errorline", F_STR, errorline, 0),
	/* after every older key: a file without it is not held */
	FLD("hold-reason", F_STR, hold_reason, 0),
};
#define NFIELDS	(sizeof(fields) / sizeof(fields[0]))

static const char *dest_names[] = {
	NULL, "mailbox", "file", "program", "remote"
};

static int
escape(const char *in, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t	o = 0;

	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 0x20 || c == 0x7f || c == '\\') {
			if (o + 4 >= len)
				return -1;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		} else {
			if (o + 1 >= len)
				return -1;
			out[o++] = c;
		}
	}
	out[o] = '\0';
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
unescape(const char *in, size_t inlen, char *out, size_t len)
{
	size_t	i, o = 0;

	for (i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		int	hi, lo;

		if (c < 0x20 || c == 0x7f)
			return -1;
		if (c == '\\') {
			if (i + 3 >= inlen)
				return -1;
			if (in[i + 1] != 'x' ||
			    (hi = hexval((unsigned char)in[i + 2])) == -1 ||
			    (lo = hexval((unsigned char)in[i + 3])) == -1)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			if (c == 0)
				return -1;
			i += 3;
		}
		if (o + 1 >= len)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

int
envelope_dump(const struct envelope *e, char *buf, size_t len)
{
	char	val[ENV_PATH_MAX * 4 + 16];
	char	addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	size_t	i, o;
	int	n;

	if (envelope_valid(e) == -1)
		return -1;
	n = snprintf(buf, len, "version: %d\n", ENVELOPE_VERSION);
	if (n < 0 || (size_t)n >= len)
		return -1;
	o = n;
	for (i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		const char	   *p = (const char *)e + f->off;

		switch (f->kind) {
		case F_U64HEX:
			snprintf(val, sizeof(val), "%016" PRIx64,
			    *(const uint64_t *)(const void *)p);
			break;
		case F_I64:
			snprintf(val, sizeof(val), "%" PRId64,
			    *(const int64_t *)(const void *)p);
			break;
		case F_U32:
			snprintf(val, sizeof(val), "%" PRIu32,
			    *(const uint32_t *)(const void *)p);
			break;
		case F_U32HEX:
			snprintf(val, sizeof(val), "%08" PRIx32,
			    *(const uint32_t *)(const void *)p);
			break;
		case F_DEST:
			snprintf(val, sizeof(val), "%s",
			    dest_names[*(const uint32_t *)(const void *)p]);
			break;
		case F_ADDR:
			if (addr_to_string((const struct mailaddr *)
			    (const void *)p, addr, sizeof(addr)) == -1)
				return -1;
			if (escape(addr, val, sizeof(val)) == -1)
				return -1;
			break;
		case F_STR:
			if (p[0] == '\0' && !f->required)
				continue;
			if (escape(p, val, sizeof(val)) == -1)
				return -1;
			break;
		}
		n = snprintf(buf + o, len - o, "%s: %s\n", f->key, val);
		if (n < 0 || (size_t)n >= len - o)
			return -1;
		o += n;
	}
	n = snprintf(buf + o, len - o, "end: ok\n");
	if (n < 0 || (size_t)n >= len - o)
		return -1;
	return (int)(o + n);
}

static int
parse_u64(const char *s, int base, uint64_t max, uint64_t *out)
{
	char			*end;
	unsigned long long	 v;

	if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "user@domain" or "" back into a mailaddr, with full validation */
static int
parse_addr(const char *s, struct mailaddr *a)
{
	memset(a, 0, sizeof(*a));
	if (*s == '\0')
		return 0;
	return addr_parse_mailbox(s, a, ADDR_ALLOW_UTF8 |
	    ADDR_ALLOW_NODOMAIN) == ADDR_OK ? 0 : -1;
}

int
envelope_load(const char *buf, size_t len, struct envelope *e)
{
	char		 seen[NFIELDS];
	char		 val[ENV_PATH_MAX + 16];
	const char	*p = buf, *end = buf + len, *nl, *colon;
	size_t		 i;
	int		 version_ok = 0, ended = 0;

	memset(e, 0, sizeof(*e));
	memset(seen, 0, sizeof(seen));
	while (p < end) {
		size_t	klen;

		if (ended)
			return -1;	/* nothing after the end marker */
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			return -1;	/* torn last line */
		if ((colon = memchr(p, ':', nl - p)) == NULL ||
		    colon + 1 >= nl || colon[1] != ' ')
			return -1;
		klen = colon - p;
		if (unescape(colon + 2, nl - colon - 2, val, sizeof(val)) == -1)
			return -1;
		if (klen == 7 && memcmp(p, "version", 7) == 0) {
			if (version_ok || p != buf || strcmp(val, "1") != 0)
				return -1;
			version_ok = 1;
			p = nl + 1;
			continue;
		}
		if (klen == 3 && memcmp(p, "end", 3) == 0) {
			if (strcmp(val, "ok") != 0)
				return -1;
			ended = 1;
			p = nl + 1;
			continue;
		}
		if (!version_ok)
			return -1;
		for (i = 0; i < NFIELDS; i++)
			if (strlen(fields[i].key) == klen &&
			    memcmp(fields[i].key, p, klen) == 0)
				break;
		if (i == NFIELDS || seen[i])
			return -1;	/* unknown or duplicate key */
		seen[i] = 1;
		{
			const struct field *f = &fields[i];
			char		   *dst = (char *)e + f->off;
			uint64_t	    v;
			size_t		    d;

			switch (f->kind) {
			case F_U64HEX:
				if (strlen(val) != 16 ||
				    parse_u64(val, 16, UINT64_MAX, &v) == -1)
					return -1;
				memcpy(dst, &v, sizeof(uint64_t));
				break;
			case F_I64: {
				int64_t	sv;

				if (parse_u64(val, 10, INT64_MAX, &v) == -1)
					return -1;
				sv = (int64_t)v;
				memcpy(dst, &sv, sizeof(sv));
				break;
			}
			case F_U32:
			case F_U32HEX: {
				uint32_t	uv;

				if (parse_u64(val, f->kind == F_U32 ? 10 : 16,
				    UINT32_MAX, &v) == -1)
					return -1;
				uv = (uint32_t)v;
				memcpy(dst, &uv, sizeof(uv));
				break;
			}
			case F_DEST: {
				uint32_t	dt = 0;

				for (d = 1; d <= DEST_REMOTE; d++)
					if (strcmp(val, dest_names[d]) == 0)
						dt = d;
				if (dt == 0)
					return -1;
				memcpy(dst, &dt, sizeof(dt));
				break;
			}
			case F_ADDR:
				if (parse_addr(val, (struct mailaddr *)
				    (void *)dst) == -1)
					return -1;
				break;
			case F_STR:
				if (strlen(val) >= f->size)
					return -1;
				memcpy(dst, val, strlen(val) + 1);
				break;
			}
		}
		p = nl + 1;
	}
	if (!ended)
		return -1;
	for (i = 0; i < NFIELDS; i++)
		if (fields[i].required && !seen[i])
			return -1;
	return envelope_valid(e);
}

static int
str_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

/*
 * Text an admin reads in smtpctl's and mailq's lines and in the log, as
 * it came (a milter's reply, smtpctl's user): no control character, so
 * none can end a line or drive a terminal.  Bytes from 0x80 are left to
 * the readers (UTF-8 is shown, the rest as '?').
 */
static int
text_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* system user names: what useradd accepts, nothing a shell would parse */
static int
username_ok(const char *s)
{
	if (*s == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
		    *s == '.'))
			return 0;
	return 1;
}

int
envelope_valid(const struct envelope *e)
{
	if (!str_ok(e->sender.user, sizeof(e->sender.user)) ||
	    !str_ok(e->sender.domain, sizeof(e->sender.domain)) ||
	    !str_ok(e->rcpt.user, sizeof(e->rcpt.user)) ||
	    !str_ok(e->rcpt.domain, sizeof(e->rcpt.domain)) ||
	    !str_ok(e->dest.user, sizeof(e->dest.user)) ||
	    !str_ok(e->dest.domain, sizeof(e->dest.domain)) ||
	    !str_ok(e->action, sizeof(e->action)) ||
	    !str_ok(e->user, sizeof(e->user)) ||
	    !str_ok(e->path, sizeof(e->path)) ||
	    !str_ok(e->helo, sizeof(e->helo)) ||
	    !str_ok(e->client, sizeof(e->client)) ||
	    !str_ok(e->authname, sizeof(e->authname)) ||
	    !str_ok(e->envid, sizeof(e->envid)) ||
	    !str_ok(e->orcpt, sizeof(e->orcpt)) ||
	    !str_ok(e->errorline, sizeof(e->errorline)) ||
	    !str_ok(e->hold_reason, sizeof(e->hold_reason)))
		return -1;
	/* held with a reason, and a reason only while held */
	if (!(e->flags & EF_HOLD) != (e->hold_reason[0] == '\0') ||
	    !text_printable(e->hold_reason))
		return -1;
	/* RFC 8689 4.1: with REQUIRETLS the header field is ignored */
	if ((e->flags & EF_REQUIRETLS) && (e->flags & EF_TLS_OPTIONAL))
		return -1;
	if (e->dest_type < DEST_MAILBOX || e->dest_type > DEST_REMOTE)
		return -1;
	if (e->action[0] == '\0' || !username_ok(e->user))
		return -1;
	/* only alias/forward expansion may produce a file or a program */
	if ((e->dest_type == DEST_FILE || e->dest_type == DEST_PROGRAM) !=
	    (e->path[0] != '\0'))
		return -1;
	if (e->dest_type == DEST_FILE && e->path[0] != '/')
		return -1;
	if ((e->dest_type != DEST_REMOTE) && e->user[0] == '\0')
		return -1;
	if (e->ctime < 0 || e->lasttry < 0 || e->nexttry < 0 ||
	    e->wire_size < 0)
		return -1;
	return 0;
}

/* ---- the spool footer (envelope.h) ---- */

#define FOOTER_HEAD	"#posthaste-spool 1 body="
#define FOOTER2_HEAD	"#posthaste-spool 2 body="
#define FOOTER_HEADLEN	" head="
#define FOOTER_MID	" envelope="
#define FOOTER_MAC	" mac="

size_t
spool_footer_format(char buf[SPOOL_FOOTER_MAX + 1], struct spool_footer *f)
{
	static const char	hex[] = "0123456789abcdef";
	int			n, i;

	if (f->head == 0)
		n = snprintf(buf, SPOOL_FOOTER_MAX + 1, FOOTER_HEAD "%020llu"
		    FOOTER_MID "%06u" FOOTER_MAC, (unsigned long long)f->body,
		    (unsigned)f->envlen);
	else
		n = snprintf(buf, SPOOL_FOOTER_MAX + 1, FOOTER2_HEAD "%020llu"
		    FOOTER_HEADLEN "%05u" FOOTER_MID "%06u" FOOTER_MAC,
		    (unsigned long long)f->body, (unsigned)f->head,
		    (unsigned)f->envlen);
	for (i = 0; i < SPOOL_MAC_LEN && n + 2 < SPOOL_FOOTER_MAX; i++) {
		buf[n++] = hex[f->mac[i] >> 4];
		buf[n++] = hex[f->mac[i] & 15];
	}
	buf[n++] = '\n';
	buf[n] = '\0';
	f->len = (size_t)n;
	return f->len;
}

/* n decimal digits exactly; 0 and the value, or -1 */
static int
fixed_digits(const char *p, size_t n, uint64_t *v)
{
	uint64_t	x = 0;
	size_t		i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(p[i] - '0');
	}
	*v = x;
	return 0;
}

/* "literal" then n digits at *pp, which moves past them */
static int
footer_field(const char **pp, const char *lit, size_t n, uint64_t *v)
{
	size_t	l = strlen(lit);

	if (memcmp(*pp, lit, l) != 0 || fixed_digits(*pp + l, n, v) == -1)
		return -1;
	*pp += l + n;
	return 0;
}

/* one footer of either version, exactly fl bytes at p */
static int
footer_parse_at(const char *p, size_t fl, uint64_t filesize,
    struct spool_footer *f)
{
	uint64_t	 b, h = 0, e;
	int		 i, hi, lo;

	if (fl == SPOOL_FOOTER_LEN) {
		if (footer_field(&p, FOOTER_HEAD, 20, &b) == -1)
			return -1;
	} else {
		if (footer_field(&p, FOOTER2_HEAD, 20, &b) == -1 ||
		    footer_field(&p, FOOTER_HEADLEN, 5, &h) == -1 ||
		    h == 0 || h > SPOOL_HEAD_MAX)
			return -1;
	}
	if (footer_field(&p, FOOTER_MID, 6, &e) == -1 ||
	    memcmp(p, FOOTER_MAC, sizeof(FOOTER_MAC) - 1) != 0)
		return -1;
	p += sizeof(FOOTER_MAC) - 1;
	for (i = 0; i < SPOOL_MAC_LEN; i++, p += 2) {
		if ((hi = hexval((unsigned char)p[0])) == -1 ||
		    (lo = hexval((unsigned char)p[1])) == -1)
			return -1;
		f->mac[i] = (uint8_t)(hi << 4 | lo);
	}
	/* each size is bounded, so the sum cannot wrap */
	if (*p != '\n' || e >= SPOOL_ENVELOPE_MAX || filesize < fl ||
	    e + h > filesize - fl || b != filesize - fl - e - h)
		return -1;
	f->body = b;
	f->head = (size_t)h;
	f->envlen = (size_t)e;
	f->len = fl;
	return 0;
}

int
spool_footer_parse(const char *buf, size_t len, uint64_t filesize,
    struct spool_footer *f)
{
	if (len > SPOOL_FOOTER_MAX || len > filesize)
		return -1;
	/*
	 * Version 1 first: most files.  Its last 130 bytes never parse as
	 * version 1 when the footer is version 2 (they begin in the
	 * digits), and a version 1 footer that parses is taken.
	 */
	if (len >= SPOOL_FOOTER_LEN && footer_parse_at(buf + len -
	    SPOOL_FOOTER_LEN, SPOOL_FOOTER_LEN, filesize, f) == 0)
		return 0;
	if (len >= SPOOL_FOOTER2_LEN && footer_parse_at(buf + len -
	    SPOOL_FOOTER2_LEN, SPOOL_FOOTER2_LEN, filesize, f) == 0)
		return 0;
	return -1;
}
