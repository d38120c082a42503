/*
 * mda_local.c -- local delivery writers: Maildir, mbox and plain files,
 * and the expansion of mailbox path templates.  This file holds what
 * they share (failure texts, the envelope check, buffered output and the
 * verbatim copy, declared in mda_local.h), the path templates and the
 * Delivered-To loop check; Maildir is in mda_maildir.c, mbox and plain
 * files in mda_mbox.c.
 *
 * These run in a delivery child that has already become the recipient
 * user, so the kernel's permission checks are the access policy.  What
 * this file adds on top:
 *
 *  - durability: nothing is reported delivered before it has been
 *    fsynced (the file, and for Maildir the directory it was renamed
 *    into), so MDA_OK may safely let the queue forget the envelope;
 *  - refusal of files somebody else could have planted for us: a symlink
 *    or hard link named like our mailbox would otherwise let a local user
 *    make us append mail to a file of their choosing;
 *  - all-or-nothing appends: an mbox that ends in half a message corrupts
 *    every message after it, so a failed append is truncated away.
 *
 * Both the spool file and the destination are handled through one large
 * buffer: one pread(2) and one write(2) per 64 KB, never a call per line.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mda.h"
#include "mda_local.h"
#include "util.h"

int
mda_fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/*
 * A failed system call while writing a mailbox is a temporary failure:
 * the queue retries, and the administrator fixes the disk or the
 * permissions in the meantime.  A full disk or quota gets its own status
 * (RFC 3463 4.2.2) so that the bounce, if it comes to that, says so.
 */
/* Success leaves no text behind: the caller supplies its own. */
void
mda_err_clear(char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
}

int
mda_fail_sys(char *err, size_t errlen, const char *label, const char *what,
    int e)
{
	if (e == EDQUOT || e == ENOSPC || e == EFBIG)
		return mda_fail(MDA_TEMPFAIL, err, errlen,
		    "4.2.2 %s: %s: %s (mailbox full)", label, what,
		    strerror(e));
	return mda_fail(MDA_TEMPFAIL, err, errlen, "4.2.0 %s: %s: %s", label,
	    what, strerror(e));
}

int
mda_fail_copy(char *err, size_t errlen, const char *label, enum copy_error ce,
    int e)
{
	if (ce == COPY_READ)
		return mda_fail(MDA_TEMPFAIL, err, errlen,
		    "4.3.0 %s: reading queued message: %s", label,
		    strerror(e));
	return mda_fail_sys(err, errlen, label, "write", e);
}

/*
 * The envelope was validated when it was received; this is the last line
 * of defence against a header injection through Return-Path or
 * Delivered-To, and against a From_ line that a reader would split.
 */
static int
header_safe(const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

int
mda_envelope_check(const struct mda_message *m, const char *label, char *err,
    size_t errlen)
{
	if (m->sender == NULL || !header_safe(m->sender))
		return mda_fail(MDA_PERMFAIL, err, errlen,
		    "5.1.7 %s: invalid envelope sender", label);
	if (m->rcpt == NULL || m->rcpt[0] == '\0' || !header_safe(m->rcpt))
		return mda_fail(MDA_PERMFAIL, err, errlen,
		    "5.1.3 %s: invalid envelope recipient", label);
	return MDA_OK;
}

/*
 * Buffered output.
 */

int
mda_wbuf_init(struct wbuf *w, int fd)
{
	w->fd = fd;
	w->len = 0;
	w->size = MDA_BUFSIZE;
	w->total = 0;
	w->last = -1;
	if ((w->buf = malloc(w->size)) == NULL)
		return -1;
	return 0;
}

void
mda_wbuf_free(struct wbuf *w)
{
	free(w->buf);
	w->buf = NULL;
}

int
mda_wbuf_flush(struct wbuf *w)
{
	if (w->len == 0)
		return 0;
	if (write_full(w->fd, w->buf, w->len) == -1)
		return -1;
	w->len = 0;
	return 0;
}

int
mda_wbuf_put(struct wbuf *w, const char *p, size_t n)
{
	size_t	room;

	if (n == 0)
		return 0;
	w->total += (off_t)n;
	w->last = (unsigned char)p[n - 1];
	while (n > 0) {
		if (w->len == w->size && mda_wbuf_flush(w) == -1)
			return -1;
		room = w->size - w->len;
		if (room > n)
			room = n;
		memcpy(w->buf + w->len, p, room);
		w->len += room;
		p += room;
		n -= room;
	}
	return 0;
}

int
mda_wbuf_puts(struct wbuf *w, const char *s)
{
	return mda_wbuf_put(w, s, strlen(s));
}

int
mda_wbuf_putc_n(struct wbuf *w, char c, size_t n)
{
	char	chunk[64];
	size_t	k;

	memset(chunk, c, sizeof(chunk));
	while (n > 0) {
		k = n < sizeof(chunk) ? n : sizeof(chunk);
		if (mda_wbuf_put(w, chunk, k) == -1)
			return -1;
		n -= k;
	}
	return 0;
}

/* "Return-Path: <sender>\nDelivered-To: rcpt\n" */
int
mda_put_trace_headers(struct wbuf *w, const struct mda_message *m)
{
	if (mda_wbuf_puts(w, "Return-Path: <") == -1 ||
	    mda_wbuf_puts(w, m->sender) == -1 ||
	    mda_wbuf_puts(w, ">\nDelivered-To: ") == -1 ||
	    mda_wbuf_puts(w, m->rcpt) == -1 ||
	    mda_wbuf_puts(w, "\n") == -1)
		return -1;
	return 0;
}

/*
 * Copy the spool message verbatim: what the caller read already, then the
 * rest, read straight into the buffer.
 */
enum copy_error
mda_copy_verbatim(struct wbuf *w, const struct mda_message *m, int *errp)
{
	off_t	off = (off_t)m->headlen;
	ssize_t	r;

	if (m->headlen > 0 && mda_wbuf_put(w, m->head, m->headlen) == -1)
		goto bad_write;
	for (;;) {
		if (w->len == w->size && mda_wbuf_flush(w) == -1)
			goto bad_write;
		r = spool_msg_pread(&m->file, w->buf + w->len,
		    w->size - w->len, off);
		if (r == -1) {
			*errp = errno;
			return COPY_READ;
		}
		if (r == 0)
			break;
		w->len += (size_t)r;
		w->total += r;
		w->last = (unsigned char)w->buf[w->len - 1];
		off += r;
	}
	if (mda_wbuf_flush(w) == -1)
		goto bad_write;
	return COPY_OK;

bad_write:
	*errp = errno;
	return COPY_WRITE;
}
/*
 * Path templates.
 */

enum subst_kind {
	SUBST_DIR,		/* a directory: may contain '/' */
	SUBST_NAME,		/* one path component, never empty */
	SUBST_SENDER,		/* one path component, empty for <> */
};

static const struct expand_var {
	const char	*name;
	size_t		 off;
	enum subst_kind	 kind;
} expand_vars[] = {
	{ "user.username", offsetof(struct mda_expand_ctx, username),
	    SUBST_NAME },
	{ "user.directory", offsetof(struct mda_expand_ctx, homedir),
	    SUBST_DIR },
	{ "dest.user", offsetof(struct mda_expand_ctx, dest_user),
	    SUBST_NAME },
	{ "dest.domain", offsetof(struct mda_expand_ctx, dest_domain),
	    SUBST_NAME },
	{ "rcpt.user", offsetof(struct mda_expand_ctx, rcpt_user),
	    SUBST_NAME },
	{ "rcpt.domain", offsetof(struct mda_expand_ctx, rcpt_domain),
	    SUBST_NAME },
	{ "sender", offsetof(struct mda_expand_ctx, sender), SUBST_SENDER },
};

enum subst_case {
	CASE_KEEP,
	CASE_LOWER,
	CASE_UPPER,
};

/*
 * A value from an address must stay one path component: no '/', and no
 * leading '.' (which covers "." and ".." and hidden files).  Control
 * characters have no business in a file name either.
 */
static int
subst_valid(const char *v, enum subst_kind kind)
{
	const unsigned char	*p;

	if (v[0] == '\0')
		return kind == SUBST_SENDER;
	if (kind != SUBST_DIR && (v[0] == '.' || strchr(v, '/') != NULL))
		return 0;
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

static int
expand_append(char *out, size_t outlen, size_t *op, const char *s,
    size_t n, enum subst_case cs)
{
	size_t	i;
	char	c;

	if (n >= outlen - *op)
		return -1;
	for (i = 0; i < n; i++) {
		c = s[i];
		/* ASCII only: the locale must not change a path */
		if (cs == CASE_LOWER && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (cs == CASE_UPPER && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		out[(*op)++] = c;
	}
	out[*op] = '\0';
	return 0;
}

/* Expand the %{name[:modifier]} at `p' (just after "%{"); -1 if bad. */
static const char *
expand_one(const char *p, const struct mda_expand_ctx *ctx, char *out,
    size_t outlen, size_t *op)
{
	const struct expand_var	*var = NULL;
	const char		*end, *colon, *value;
	enum subst_case		 cs = CASE_KEEP;
	size_t			 namelen, i;

	if ((end = strchr(p, '}')) == NULL)
		return NULL;
	colon = memchr(p, ':', (size_t)(end - p));
	namelen = (size_t)((colon != NULL ? colon : end) - p);
	if (colon != NULL) {
		if ((size_t)(end - colon - 1) == 9 &&
		    strncmp(colon + 1, "lowercase", 9) == 0)
			cs = CASE_LOWER;
		else if ((size_t)(end - colon - 1) == 9 &&
		    strncmp(colon + 1, "uppercase", 9) == 0)
			cs = CASE_UPPER;
		else
			return NULL;
	}
	for (i = 0; i < sizeof(expand_vars) / sizeof(expand_vars[0]); i++)
		if (strlen(expand_vars[i].name) == namelen &&
		    strncmp(expand_vars[i].name, p, namelen) == 0) {
			var = &expand_vars[i];
			break;
		}
	if (var == NULL)
		return NULL;
	value = *(const char *const *)(const void *)((const char *)ctx +
	    var->off);
	if (value == NULL || !subst_valid(value, var->kind))
		return NULL;
	if (expand_append(out, outlen, op, value, strlen(value), cs) == -1)
		return NULL;
	return end + 1;
}

/* No ".." component may survive expansion, wherever it came from. */
static int
path_has_dotdot(const char *s)
{
	size_t	len = strlen(s);

	if (strcmp(s, "..") == 0 || strncmp(s, "../", 3) == 0)
		return 1;
	if (strstr(s, "/../") != NULL)
		return 1;
	return len >= 3 && strcmp(s + len - 3, "/..") == 0;
}

int
mda_expand_path(const char *tmpl, const struct mda_expand_ctx *ctx,
    char *out, size_t outlen)
{
	const char	*p = tmpl, *next;
	size_t		 o = 0, hlen;

	if (out == NULL || outlen == 0)
		return -1;
	out[0] = '\0';
	if (tmpl == NULL || ctx == NULL)
		return -1;

	if (p[0] == '~') {
		/* "~user" is not ours to resolve */
		if (p[1] != '\0' && p[1] != '/')
			goto bad;
		if (ctx->homedir == NULL ||
		    !subst_valid(ctx->homedir, SUBST_DIR))
			goto bad;
		hlen = strlen(ctx->homedir);
		/* "/home/u/" + "/Maildir" needs only one '/' between */
		if (p[1] == '/' && hlen > 1 && ctx->homedir[hlen - 1] == '/')
			hlen--;
		if (expand_append(out, outlen, &o, ctx->homedir, hlen,
		    CASE_KEEP) == -1)
			goto bad;
		p++;
	}
	while (*p != '\0') {
		if (p[0] != '%') {
			next = strchr(p, '%');
			if (next == NULL)
				next = p + strlen(p);
			if (expand_append(out, outlen, &o, p,
			    (size_t)(next - p), CASE_KEEP) == -1)
				goto bad;
			p = next;
		} else if (p[1] == '%') {
			if (expand_append(out, outlen, &o, "%", 1,
			    CASE_KEEP) == -1)
				goto bad;
			p += 2;
		} else if (p[1] == '{') {
			if ((p = expand_one(p + 2, ctx, out, outlen, &o)) ==
			    NULL)
				goto bad;
		} else
			goto bad;
	}
	if (out[0] == '\0' || path_has_dotdot(out))
		goto bad;
	return 0;

bad:
	out[0] = '\0';
	return -1;
}

/*
 * RFC 5321 6.3 / Postfix and qmail practice: a message that already
 * carries "Delivered-To: <this recipient>" has been here before and is
 * looping (a forward that points back, two aliases that point at each
 * other across hosts).  Only the header is read, and only so much of it.
 */
ssize_t
mda_read_head(const struct spool_msg *msg, char *buf, size_t len)
{
	return spool_msg_pread(msg, buf, len, 0);
}

int
mda_head_loops(const char *head, size_t len, const char *rcpt)
{
	static const char	 key[] = "delivered-to:";
	const char		*p, *end, *nl, *v, *ve;
	size_t			 klen = sizeof(key) - 1, rlen = strlen(rcpt);

	if (len == 0)
		return 0;
	for (p = head, end = head + len; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		if (nl == p)
			break;	/* the end of the header */
		if ((size_t)(nl - p) < klen || strncasecmp(p, key, klen) != 0)
			continue;
		for (v = p + klen; v < nl && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = nl; ve > v && (ve[-1] == ' ' || ve[-1] == '\t' ||
		    ve[-1] == '\r'); ve--)
			;
		if (ve - v >= 2 && *v == '<' && ve[-1] == '>') {
			v++;
			ve--;
		}
		if ((size_t)(ve - v) == rlen && strncasecmp(v, rcpt, rlen) == 0)
			return 1;
	}
	return 0;
}

int
mda_delivered_to_loop(const struct spool_msg *msg, const char *rcpt)
{
	char	*buf;
	ssize_t	 n;
	int	 found;

	if ((buf = malloc(MDA_HEAD_MAX)) == NULL)
		return 0;
	n = mda_read_head(msg, buf, MDA_HEAD_MAX);
	found = n > 0 && mda_head_loops(buf, (size_t)n, rcpt);
	free(buf);
	return found;
}
