/*
 * dkim_msg.c -- the DKIM streaming hasher: a message goes through once,
 * line by line as the smtp worker spools it, and comes out with every
 * body hash its DKIM-Signature fields ask for, their header hashes, and
 * what our own signature needs (RFC 6376 3.4 canonicalization, 3.7 the
 * hashes, 5.4 the fields to sign).
 *
 * Why streaming: the worker never holds a message in memory, and reading
 * the spool file again at the end of data would cost a pass over every
 * byte.  So the header section is kept (bounded by DKIM_HDR_MAX: it is
 * all the header hashes need), and the body goes through one SHA-256
 * per distinct (body canonicalization, l=) at once; the trailing empty
 * lines that canonicalization drops are only counted, and hashed when a
 * line with content follows them.
 *
 * Lines come without their line end (smtp_data.c's msg_line() form):
 * every line ends in CRLF in the canonical form, including a last one
 * the client sent without (on the wire it always has one).
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "dkim.h"

enum { ST_HEADERS, ST_BODY, ST_ENDED };

/* one body hash */
struct bodyhash {
	EVP_MD_CTX	*ctx;
	uint8_t		 canon;
	uint64_t	 limit;		/* l=, or UINT64_MAX */
	uint64_t	 total;		/* canonical body bytes seen */
	uint64_t	 pending;	/* empty lines held back */
	int		 content;	/* a line with content was hashed */
	uint8_t		 digest[32];
};

/* one header field: raw, CRLF between its lines, none at its end */
struct field {
	size_t		 off, len, namelen;
};

struct rsig {
	struct dkim_vsig	 v;
	uint8_t			 bh[32];
	int			 slot;		/* -1: no body hash */
};

struct dkim_msg {
	int		 state;
	int		 want_sign;
	int		 overflow;
	int		 nomem;
	char		*hdr;
	size_t		 hdrlen, hdrcap;
	struct field	*fields;
	size_t		 nfields, fieldcap;
	struct bodyhash	 bh[DKIM_MAX_SIGS + 1];
	size_t		 nbh;
	int		 sign_slot;
	struct rsig	 sigs[DKIM_MAX_SIGS];
	size_t		 nsigs, nignored;
	char		*line;		/* relaxed copy of a body line */
	size_t		 linecap;
	int		 nfrom;
	char		 from_domain[DKIM_DOMAIN_MAX];
};

/* ---- canonicalization (RFC 6376 3.4) ---- */

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

size_t
dkim_canon_header_relaxed(const char *s, size_t len, char *out)
{
	const char	*colon = memchr(s, ':', len);
	size_t		 namelen, p, n = 0;
	int		 space = 0, any = 0;

	namelen = colon ? (size_t)(colon - s) : len;
	/* 3.4.2: lower-case name, no WSP before or after the colon */
	while (namelen > 0 && is_wsp((unsigned char)s[namelen - 1]))
		namelen--;
	for (p = 0; p < namelen; p++)
		out[n++] = (char)tolower((unsigned char)s[p]);
	out[n++] = ':';
	for (p = colon ? (size_t)(colon - s) + 1 : len; p < len; p++) {
		int	c = (unsigned char)s[p];

		if (c == '\r' || c == '\n')	/* unfold */
			continue;
		if (is_wsp(c)) {
			space = 1;
			continue;
		}
		if (space && any)
			out[n++] = ' ';
		space = 0;
		any = 1;
		out[n++] = (char)c;
	}
	out[n++] = '\r';
	out[n++] = '\n';
	return n;
}

size_t
dkim_canon_body_relaxed(char *s, size_t len)
{
	size_t	p, n = 0;
	int	space = 0;

	/* 3.4.4: WSP runs become one SP, WSP at the end of a line goes */
	for (p = 0; p < len; p++) {
		if (is_wsp((unsigned char)s[p])) {
			space = 1;
			continue;
		}
		if (space)
			s[n++] = ' ';
		space = 0;
		s[n++] = s[p];
	}
	return n;
}

/* ---- body hashes ---- */

static void
bh_update(struct bodyhash *b, const void *data, size_t len)
{
	uint64_t	take = len;

	if (b->total < b->limit) {
		if (take > b->limit - b->total)
			take = b->limit - b->total;
		EVP_DigestUpdate(b->ctx, data, (size_t)take);
	}
	b->total += len;
}

/* one canonical line (without CRLF) */
static void
bh_line(struct bodyhash *b, const char *s, size_t len)
{
	if (len == 0) {
		b->pending++;
		return;
	}
	/* the empty lines held back were not at the end after all */
	for (; b->pending > 0; b->pending--) {
		if (b->total >= b->limit) {
			b->total += 2 * b->pending;
			b->pending = 0;
			break;
		}
		bh_update(b, "\r\n", 2);
	}
	bh_update(b, s, len);
	bh_update(b, "\r\n", 2);
	b->content = 1;
}

static void
bh_end(struct bodyhash *b)
{
	unsigned int	len = sizeof(b->digest);

	/* 3.4.3: an empty simple body is one CRLF; 3.4.4: relaxed, none */
	if (b->canon == DKIM_CANON_SIMPLE && !b->content)
		bh_update(b, "\r\n", 2);
	if (EVP_DigestFinal_ex(b->ctx, b->digest, &len) != 1)
		memset(b->digest, 0, sizeof(b->digest));
}

/* the slot hashing (canon, limit), a new one if need be; -1 if none */
static int
bh_slot(struct dkim_msg *m, uint8_t canon, uint64_t limit)
{
	struct bodyhash	*b;
	size_t		 k;

	for (k = 0; k < m->nbh; k++)
		if (m->bh[k].canon == canon && m->bh[k].limit == limit)
			return (int)k;
	if (m->nbh == sizeof(m->bh) / sizeof(m->bh[0]))
		return -1;
	b = &m->bh[m->nbh];
	memset(b, 0, sizeof(*b));
	if ((b->ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(b->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(b->ctx);
		b->ctx = NULL;
		m->nomem = 1;
		return -1;
	}
	b->canon = canon;
	b->limit = limit;
	return (int)m->nbh++;
}

static void
body_line(struct dkim_msg *m, const char *s, size_t len)
{
	size_t	 k, rlen = 0;
	int	 relaxed_done = 0;

	for (k = 0; k < m->nbh; k++) {
		struct bodyhash	*b = &m->bh[k];

		if (b->canon == DKIM_CANON_SIMPLE) {
			bh_line(b, s, len);
			continue;
		}
		if (!relaxed_done) {
			if (len > m->linecap) {
				char	*p = realloc(m->line, len);

				if (p == NULL) {
					m->nomem = 1;
					return;
				}
				m->line = p;
				m->linecap = len;
			}
			if (len > 0)
				memcpy(m->line, s, len);
			rlen = dkim_canon_body_relaxed(m->line, len);
			relaxed_done = 1;
		}
		bh_line(b, m->line, rlen);
	}
}

/* ---- the header section ---- */

static int
field_is(const struct dkim_msg *m, const struct field *f, const char *name,
    size_t namelen)
{
	return f->namelen == namelen &&
	    strncasecmp(m->hdr + f->off, name, namelen) == 0;
}

/* a field's first line: a name of printable characters, then a colon */
static size_t
field_name(const char *s, size_t len)
{
	size_t	p, n;

	for (p = 0; p < len && s[p] != ':'; p++)
		if ((unsigned char)s[p] <= 32 || (unsigned char)s[p] > 126)
			break;
	n = p;
	/* the obsolete "Name :" */
	while (p < len && is_wsp((unsigned char)s[p]))
		p++;
	if (n == 0 || p == len || s[p] != ':')
		return 0;
	return n;
}

static int
hdr_append(struct dkim_msg *m, const char *s, size_t len, int fold)
{
	size_t	need = m->hdrlen + len + (fold ? 2 : 0);

	if (need > DKIM_HDR_MAX) {
		m->overflow = 1;
		return -1;
	}
	if (need > m->hdrcap) {
		size_t	 cap = m->hdrcap ? m->hdrcap : 4096;
		char	*p;

		while (cap < need)
			cap *= 2;
		if ((p = realloc(m->hdr, cap)) == NULL) {
			m->nomem = 1;
			return -1;
		}
		m->hdr = p;
		m->hdrcap = cap;
	}
	if (fold) {
		memcpy(m->hdr + m->hdrlen, "\r\n", 2);
		m->hdrlen += 2;
	}
	memcpy(m->hdr + m->hdrlen, s, len);
	m->hdrlen += len;
	return 0;
}

/*
 * The domain of the one address in a From: value (RFC 5322 3.4):
 * comments and quoted strings set aside, then the addr-spec inside <>
 * or the whole.  Several addresses, groups, or a domain literal: -1.
 */
static int
from_domain(const char *s, size_t len, char *out, size_t outlen)
{
	char	*clean, *lt, *gt, *at, *addr, *end;
	size_t	 p, n = 0;
	int	 depth = 0, quoted = 0, ret = -1;

	if ((clean = malloc(len + 1)) == NULL)
		return -1;
	for (p = 0; p < len; p++) {
		int	c = (unsigned char)s[p];

		if (c == '\\' && (depth > 0 || quoted)) {
			p++;
			continue;
		}
		if (quoted) {
			if (c == '"') {
				quoted = 0;
				clean[n++] = 'q';
			}
			continue;
		}
		if (c == '(') {
			depth++;
			continue;
		}
		if (depth > 0) {
			if (c == ')')
				depth--;
			continue;
		}
		if (c == '"') {
			quoted = 1;
			continue;
		}
		clean[n++] = (c == '\r' || c == '\n' || c == '\t') ? ' ' :
		    (char)c;
	}
	clean[n] = '\0';
	if (depth > 0 || quoted)
		goto done;
	lt = strchr(clean, '<');
	if (lt != NULL) {
		if ((gt = strchr(lt, '>')) == NULL || strchr(lt + 1, '<') ||
		    strchr(gt + 1, '>') || strchr(gt + 1, ','))
			goto done;
		*gt = '\0';
		addr = lt + 1;
		if (memchr(clean, ',', (size_t)(lt - clean)) != NULL ||
		    memchr(clean, ':', (size_t)(lt - clean)) != NULL)
			goto done;
	} else {
		if (strchr(clean, ',') != NULL || strchr(clean, ':') != NULL)
			goto done;
		addr = clean;
	}
	if ((at = strrchr(addr, '@')) == NULL)
		goto done;
	at++;
	while (is_wsp((unsigned char)*at))
		at++;
	for (end = at; *end != '\0' && !is_wsp((unsigned char)*end); end++)
		;
	if (*end != '\0') {
		char	*q = end;

		while (is_wsp((unsigned char)*q))
			q++;
		if (*q != '\0')
			goto done;
	}
	if (end > at && end[-1] == '.')
		end--;
	if (end == at || (size_t)(end - at) >= outlen || end - at > 253)
		goto done;
	for (p = 0; at + p < end; p++) {
		int	c = (unsigned char)at[p];

		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			goto done;
		out[p] = (char)tolower(c);
	}
	out[p] = '\0';
	ret = 0;
done:
	free(clean);
	return ret;
}

/* hash one field, canonicalized; sigfield: without its final CRLF */
static int
hash_field(EVP_MD_CTX *ctx, uint8_t canon, const char *s, size_t len,
    int sigfield)
{
	char	*buf;
	size_t	 n;
	int	 ok;

	if (canon == DKIM_CANON_SIMPLE) {
		if (EVP_DigestUpdate(ctx, s, len) != 1)
			return -1;
		return sigfield ? 0 :
		    EVP_DigestUpdate(ctx, "\r\n", 2) == 1 ? 0 : -1;
	}
	if ((buf = malloc(len + 2)) == NULL)
		return -1;
	n = dkim_canon_header_relaxed(s, len, buf);
	if (sigfield)
		n -= 2;
	ok = EVP_DigestUpdate(ctx, buf, n) == 1;
	free(buf);
	return ok ? 0 : -1;
}

/*
 * The fields an h= list names, in its order, each name taking the last
 * instance not yet taken (RFC 6376 5.4.2); a name with none left adds
 * nothing.
 */
static int
hash_hlist(const struct dkim_msg *m, EVP_MD_CTX *ctx, uint8_t canon,
    const char *h, size_t hlen)
{
	uint8_t	*used;
	size_t	 p = 0, start, end, k;
	int	 ret = 0;

	if ((used = calloc(m->nfields + 1, 1)) == NULL)
		return -1;
	while (p <= hlen && ret == 0) {
		while (p < hlen && (is_wsp((unsigned char)h[p]) ||
		    h[p] == '\r' || h[p] == '\n'))
			p++;
		start = p;
		while (p < hlen && h[p] != ':')
			p++;
		end = p;
		while (end > start && (is_wsp((unsigned char)h[end - 1]) ||
		    h[end - 1] == '\r' || h[end - 1] == '\n'))
			end--;
		p++;
		if (end == start)
			continue;
		for (k = m->nfields; k-- > 0;) {
			const struct field	*f = &m->fields[k];

			if (used[k] || !field_is(m, f, h + start, end - start))
				continue;
			used[k] = 1;
			ret = hash_field(ctx, canon, m->hdr + f->off, f->len,
			    0);
			break;
		}
	}
	free(used);
	return ret;
}

/*
 * The header hash of received signature: its h= fields, then its own
 * field with the b= value (and the FWS around it) taken out (3.7).
 */
static int
sig_header_hash(const struct dkim_msg *m, const struct field *f,
    struct rsig *rs, const struct dkim_sigtags *st)
{
	const char	*raw = m->hdr + f->off;
	char		*copy;
	size_t		 vstart, vend, n;
	EVP_MD_CTX	*ctx;
	unsigned int	 len = sizeof(rs->v.hh);
	int		 ok = 0;

	vstart = (size_t)(st->bval - raw);
	while (vstart > 0 && raw[vstart - 1] != '=')
		vstart--;
	vend = (size_t)(st->bval - raw) + st->blen;
	while (vend < f->len && raw[vend] != ';')
		vend++;
	if ((copy = malloc(f->len)) == NULL)
		return -1;
	memcpy(copy, raw, vstart);
	memcpy(copy + vstart, raw + vend, f->len - vend);
	n = vstart + f->len - vend;
	if ((ctx = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    hash_hlist(m, ctx, rs->v.hcanon, st->h, st->hlen) == 0 &&
	    hash_field(ctx, rs->v.hcanon, copy, n, 1) == 0 &&
	    EVP_DigestFinal_ex(ctx, rs->v.hh, &len) == 1)
		ok = 1;
	EVP_MD_CTX_free(ctx);
	free(copy);
	return ok ? 0 : -1;
}

static void
headers_done(struct dkim_msg *m)
{
	static const char	 sig_name[] = "DKIM-Signature";
	size_t			 k;

	m->state = ST_BODY;
	if (m->overflow || m->nomem)
		return;
	for (k = 0; k < m->nfields; k++) {
		const struct field	*f = &m->fields[k];
		struct dkim_sigtags	 st;
		struct rsig		*rs;
		const char		*val;

		if (field_is(m, f, "From", 4)) {
			val = (const char *)memchr(m->hdr + f->off, ':',
			    f->len) + 1;
			if (++m->nfrom == 1 && from_domain(val, f->len -
			    (size_t)(val - (m->hdr + f->off)), m->from_domain,
			    sizeof(m->from_domain)) == -1)
				m->from_domain[0] = '\0';
			continue;
		}
		if (!field_is(m, f, sig_name, sizeof(sig_name) - 1))
			continue;
		if (m->nsigs == DKIM_MAX_SIGS) {
			m->nignored++;
			continue;
		}
		rs = &m->sigs[m->nsigs++];
		rs->slot = -1;
		val = (const char *)memchr(m->hdr + f->off, ':',
		    f->len) + 1;
		dkim_sig_parse(val, f->len - (size_t)(val - (m->hdr + f->off)),
		    &rs->v, &st);
		if (rs->v.status != DKIM_NONE ||
		    rs->v.alg == DKIM_ALG_RSA_SHA1)
			continue;
		memcpy(rs->bh, st.bh, sizeof(rs->bh));
		if (sig_header_hash(m, f, rs, &st) == -1 ||
		    (rs->slot = bh_slot(m, rs->v.bcanon,
		    st.has_l ? st.l : UINT64_MAX)) == -1) {
			rs->v.status = DKIM_TEMPERROR;
			snprintf(rs->v.why, sizeof(rs->v.why),
			    "out of memory");
		}
	}
	if (m->nfrom != 1)
		m->from_domain[0] = '\0';
	if (m->want_sign)
		m->sign_slot = bh_slot(m, DKIM_CANON_RELAXED, UINT64_MAX);
}

/* ---- the API ---- */

struct dkim_msg *
dkim_msg_new(int want_sign)
{
	struct dkim_msg	*m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->want_sign = want_sign;
	m->sign_slot = -1;
	return m;
}

void
dkim_msg_free(struct dkim_msg *m)
{
	size_t	k;

	if (m == NULL)
		return;
	for (k = 0; k < m->nbh; k++)
		EVP_MD_CTX_free(m->bh[k].ctx);
	free(m->hdr);
	free(m->fields);
	free(m->line);
	free(m);
}

void
dkim_msg_line(struct dkim_msg *m, const char *s, size_t len)
{
	size_t	namelen;

	if (m->state == ST_ENDED)
		return;
	if (m->state == ST_BODY) {
		body_line(m, s, len);
		return;
	}
	if (len == 0) {		/* the separator, not in the body */
		headers_done(m);
		return;
	}
	if (is_wsp((unsigned char)s[0]) && m->nfields > 0) {
		/* past the limit, a short line must not join a kept field */
		if (m->overflow || m->nomem)
			return;
		if (hdr_append(m, s, len, 1) == 0)
			m->fields[m->nfields - 1].len += len + 2;
		return;
	}
	if ((namelen = field_name(s, len)) == 0) {
		/* no header section, or its end without the empty line */
		headers_done(m);
		body_line(m, s, len);
		return;
	}
	if (m->overflow || m->nomem)
		return;
	if (m->nfields == m->fieldcap) {
		size_t		 cap = m->fieldcap ? m->fieldcap * 2 : 32;
		struct field	*f;

		f = reallocarray(m->fields, cap, sizeof(*f));

		if (f == NULL) {
			m->nomem = 1;
			return;
		}
		m->fields = f;
		m->fieldcap = cap;
	}
	if (hdr_append(m, s, len, 0) == -1)
		return;
	m->fields[m->nfields].off = m->hdrlen - len;
	m->fields[m->nfields].len = len;
	m->fields[m->nfields].namelen = namelen;
	m->nfields++;
}

int
dkim_msg_headers_done(const struct dkim_msg *m)
{
	return m->state != ST_HEADERS;
}

void
dkim_msg_end(struct dkim_msg *m)
{
	size_t	k;

	if (m->state == ST_ENDED)
		return;
	if (m->state == ST_HEADERS)
		headers_done(m);
	m->state = ST_ENDED;
	for (k = 0; k < m->nbh; k++)
		bh_end(&m->bh[k]);
	for (k = 0; k < m->nsigs; k++) {
		struct rsig		*rs = &m->sigs[k];
		const struct bodyhash	*b;

		if (rs->slot < 0)
			continue;
		b = &m->bh[rs->slot];
		/* l= past the end of the body: not the body signed */
		rs->v.bh_ok = (b->limit == UINT64_MAX ||
		    b->limit <= b->total) &&
		    memcmp(b->digest, rs->bh, sizeof(rs->bh)) == 0;
	}
}

int
dkim_msg_overflow(const struct dkim_msg *m)
{
	return m->overflow || m->nomem;
}

const char *
dkim_msg_from_domain(const struct dkim_msg *m)
{
	if (m->state == ST_HEADERS || m->from_domain[0] == '\0')
		return NULL;
	return m->from_domain;
}

size_t
dkim_msg_nsigs(const struct dkim_msg *m)
{
	return m->state == ST_ENDED ? m->nsigs : 0;
}

size_t
dkim_msg_nsigs_ignored(const struct dkim_msg *m)
{
	return m->nignored;
}

const struct dkim_vsig *
dkim_msg_vsig(const struct dkim_msg *m, size_t k)
{
	if (m->state != ST_ENDED || k >= m->nsigs)
		return NULL;
	return &m->sigs[k].v;
}

/* ---- our own signature ---- */

/*
 * RFC 6376 5.4.1's fields, and the ones the issue adds; those marked 1
 * are over-signed: listed once more than present, so that none can be
 * added after signing.
 */
static const struct {
	const char	*name;
	int		 over;
} sign_fields[] = {
	{ "From", 1 }, { "To", 1 }, { "Cc", 1 }, { "Subject", 1 },
	{ "Date", 1 }, { "Message-ID", 1 }, { "MIME-Version", 1 },
	{ "Content-Type", 1 }, { "Content-Transfer-Encoding", 1 },
	{ "Reply-To", 0 }, { "In-Reply-To", 0 }, { "References", 0 },
	{ "Resent-Date", 0 }, { "Resent-From", 0 }, { "Resent-To", 0 },
	{ "Resent-Cc", 0 }, { "List-Id", 0 }, { "List-Help", 0 },
	{ "List-Unsubscribe", 0 }, { "List-Subscribe", 0 },
	{ "List-Post", 0 }, { "List-Owner", 0 }, { "List-Archive", 0 },
};

/* a header being built, folded at 78 columns (a tab counts 8) */
struct hbuf {
	char	*s;
	size_t	 len, cap, col;
	int	 err;
};

static void
hb_raw(struct hbuf *b, const char *s, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->err = 1;
		return;
	}
	memcpy(b->s + b->len, s, len);
	b->len += len;
	b->s[b->len] = '\0';
	b->col += len;
}

/* a piece that must not be split, after a space or a fold */
static void
hb_word(struct hbuf *b, const char *s, int space)
{
	size_t	len = strlen(s);

	if (b->col + len + (space ? 1 : 0) > 78) {
		hb_raw(b, "\r\n\t", 3);
		b->col = 8;
	} else if (space)
		hb_raw(b, " ", 1);
	hb_raw(b, s, len);
}

static int
name_ok(const char *s)
{
	size_t	i, n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '.' && s[i] != '_')
			return 0;
	return strstr(s, "..") == NULL;
}

int
dkim_sign_prepare(const struct dkim_msg *m, const char *domain,
    const char *selector, enum dkim_alg alg, time_t when,
    struct dkim_sign *sg, uint8_t digest[32], char *why, size_t whylen)
{
	struct hbuf	 b;
	char		 hlist[1024], word[160];
	size_t		 hl = 0, k, j, count;
	EVP_MD_CTX	*ctx;
	unsigned int	 dlen = 32;
	int		 ok = 0, first = 1;

	memset(sg, 0, sizeof(*sg));
	if (m->state != ST_ENDED || m->sign_slot < 0) {
		snprintf(why, whylen, "no body hash for signing");
		return -1;
	}
	if (dkim_msg_overflow(m)) {
		snprintf(why, whylen, "header section over %d bytes",
		    DKIM_HDR_MAX);
		return -1;
	}
	if (m->nfrom != 1) {
		snprintf(why, whylen, "not exactly one From: field");
		return -1;
	}
	if (!name_ok(domain) || !name_ok(selector) ||
	    strlen(selector) >= DKIM_SELECTOR_MAX) {
		snprintf(why, whylen, "invalid domain or selector");
		return -1;
	}
	if (alg != DKIM_ALG_RSA_SHA256 && alg != DKIM_ALG_ED25519_SHA256) {
		snprintf(why, whylen, "algorithm not for signing");
		return -1;
	}
	/* the h= list: each field present, over-signed ones once more */
	for (k = 0; k < sizeof(sign_fields) / sizeof(sign_fields[0]); k++) {
		size_t	nl = strlen(sign_fields[k].name);

		for (j = 0, count = 0; j < m->nfields; j++)
			if (field_is(m, &m->fields[j], sign_fields[k].name, nl))
				count++;
		count += (size_t)sign_fields[k].over;
		for (; count > 0; count--) {
			if (hl + nl + 2 > sizeof(hlist)) {
				snprintf(why, whylen, "too many fields");
				return -1;
			}
			if (hl > 0)
				hlist[hl++] = ':';
			memcpy(hlist + hl, sign_fields[k].name, nl);
			hl += nl;
		}
	}
	hlist[hl] = '\0';

	b.s = sg->hdr;
	b.cap = sizeof(sg->hdr);
	b.len = 0;
	b.col = 0;
	b.err = 0;
	sg->hdr[0] = '\0';
	hb_raw(&b, "DKIM-Signature:", 15);
	hb_word(&b, "v=1;", 1);
	hb_word(&b, alg == DKIM_ALG_RSA_SHA256 ? "a=rsa-sha256;" :
	    "a=ed25519-sha256;", 1);
	hb_word(&b, "c=relaxed/relaxed;", 1);
	snprintf(word, sizeof(word), "d=%s;", domain);
	hb_word(&b, word, 1);
	snprintf(word, sizeof(word), "s=%s;", selector);
	hb_word(&b, word, 1);
	snprintf(word, sizeof(word), "t=%lld;", (long long)when);
	hb_word(&b, word, 1);
	/* h= folds before a name: FWS may surround its colons */
	for (k = 0; k < hl; k = j + 1) {
		char	piece[64];
		size_t	pl;

		for (j = k; j < hl && hlist[j] != ':'; j++)
			;
		pl = j - k;
		snprintf(piece, sizeof(piece), "%s%.*s%s", first ? "h=" : "",
		    (int)pl, hlist + k, j < hl ? ":" : ";");
		hb_word(&b, piece, first);
		first = 0;
	}
	{
		char	bh64[48];

		dkim_b64_encode(m->bh[m->sign_slot].digest, 32, bh64);
		snprintf(word, sizeof(word), "bh=%s;", bh64);
	}
	hb_word(&b, word, 1);
	hb_word(&b, "b=", 1);
	if (b.err) {
		snprintf(why, whylen, "signature header too long");
		return -1;
	}
	sg->alg = alg;
	sg->len = b.len;
	sg->col = b.col;

	if ((ctx = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    hash_hlist(m, ctx, DKIM_CANON_RELAXED, hlist, hl) == 0 &&
	    hash_field(ctx, DKIM_CANON_RELAXED, sg->hdr, sg->len, 1) == 0 &&
	    EVP_DigestFinal_ex(ctx, digest, &dlen) == 1)
		ok = 1;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}
