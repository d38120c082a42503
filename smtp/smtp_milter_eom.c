/*
 * smtp_milter_eom.c -- the message through the filters: its header
 * fields, the end of the header, the body in chunks, the end of message,
 * and the changes the filters ask for then.
 *
 * As Postfix's cleanup does, the message is sent when it is complete,
 * read back from the spool file (it is in the page cache): the filters
 * cost the client nothing while it sends, and a filter that is slow to
 * answer holds up only this message.  Each filter gets the whole message
 * in turn, as the filters before it left it ("several filters in a
 * chain, each seeing the previous ones' changes").
 *
 * The message is a model while the filters run: a list of header fields
 * (those the worker added after the body -- Authentication-Results --,
 * those in the spool file, and those filters added), and a body that is
 * the file's or a filter's replacement.  Changes are made to the model;
 * after the last filter it is written back:
 *  - fields added above the file's header, and nothing else changed: they
 *    join the added headers (spool_msg.h), no byte of the file moves;
 *  - anything else (a field changed, deleted, added lower down, a new
 *    body): the message is written again into its own file, from offset
 *    0, the file's old body copied aside first into a spare spool file
 *    (or memory, when the worker has no spare).  The queue id stays.
 * Either way it happens before the commit: the client's 250 covers the
 * message as the filters left it, and a crash before then leaves nothing.
 *
 * Envelope changes: a changed sender replaces MAIL FROM; deleted
 * recipients leave the transaction; added ones are resolved by lookup
 * like RCPT TO (and sealed by it, destmac.h) -- one it refuses is logged
 * and left out.  A message left with no recipient is dropped (logged),
 * as Postfix does.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "addr.h"
#include "dkim.h"
#include "log.h"
#include "milter.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "smtp_milter.h"
#include "smtp_parse.h"
#include "smtp_session.h"
#include "spool_msg.h"

#define H_ADDED		0	/* the worker's added headers */
#define H_FILE		1	/* in the spool file, unchanged */
#define H_NEW		2	/* a filter's, or one it changed */

struct mhdr {
	char	*name;
	char	*value;		/* what follows the ':', folded lines
				 * LF-joined, no final line end */
	int	 origin;	/* H_* */
	size_t	 fileno;	/* H_FILE: its place in the file */
};

/* where a filter is in the message */
#define P_HEADERS	0
#define P_EOH		1
#define P_BODY		2
#define P_EOM		3
#define P_EOMWAIT	4

#define OUT_HIWAT	(256 * 1024)	/* queued to a filter, unanswered */
/* what the filters may make of a message: beyond, a filter misbehaves */
#define MAX_FIELDS	10000		/* header fields in the model */
#define MAX_DELRCPT	10000
#define BODY_READ	(MILTER_CHUNK_MAX / 2)	/* raw, <= 64K as CRLF */

struct addrcpt {
	char	*addr;
	char	*args;
};

struct milter_eom {
	struct mhdr	*h;
	size_t		 nh, caph;
	size_t		 nfile;		/* fields in the file */
	int64_t		 body_off;	/* the file's body begins here */
	int		 blank;		/* the file has its empty line */
	struct evbuffer	*body;		/* a replacement body, CRLF, or NULL */
	struct evbuffer	*newbody;	/* one being received */
	/* the filter being asked */
	int		 phase;
	size_t		 hi;		/* the next field to send */
	int64_t		 boff;		/* the next body byte to send */
	int		 bcr;		/* the last body byte sent was CR */
	/* envelope changes */
	char		*chgfrom, *chgfrom_args;
	char		**delrcpt;
	size_t		 ndelrcpt;
	struct addrcpt	*addrcpt;
	size_t		 naddrcpt, iaddrcpt;
	char		 hold[128];	/* quarantined: why */
	int		 changed;	/* a filter changed the message */
	int		 loaded;	/* the model is made (eom_model()) */
};

static void	eom_next_filter(struct milter_sess *);
static void	eom_pump(struct milter_sess *, struct milter_conn *);
static void	eom_finish(struct milter_sess *);

/* ---- the model ---- */

static void
hdr_free(struct mhdr *h)
{
	free(h->name);
	free(h->value);
}

void
milter_eom_free(struct milter_sess *ms)
{
	struct milter_eom	*e = ms->eom;
	size_t			 i;

	if (e == NULL)
		return;
	for (i = 0; i < e->nh; i++)
		hdr_free(&e->h[i]);
	free(e->h);
	if (e->body != NULL)
		evbuffer_free(e->body);
	if (e->newbody != NULL)
		evbuffer_free(e->newbody);
	free(e->chgfrom);
	free(e->chgfrom_args);
	for (i = 0; i < e->ndelrcpt; i++)
		free(e->delrcpt[i]);
	free(e->delrcpt);
	for (i = 0; i < e->naddrcpt; i++) {
		free(e->addrcpt[i].addr);
		free(e->addrcpt[i].args);
	}
	free(e->addrcpt);
	free(e);
	ms->eom = NULL;
}

/* insert a field at position at (nh: at the end) */
static struct mhdr *
hdr_insert(struct milter_eom *e, size_t at, const char *name, size_t nlen,
    const char *value, size_t vlen, int origin)
{
	struct mhdr	*h;

	if (e->nh == e->caph) {
		size_t ncap = e->caph ? e->caph * 2 : 32;

		if ((h = reallocarray(e->h, ncap, sizeof(*h))) == NULL)
			fatal("reallocarray");
		e->h = h;
		e->caph = ncap;
	}
	if (at > e->nh)
		at = e->nh;
	memmove(&e->h[at + 1], &e->h[at], (e->nh - at) * sizeof(*e->h));
	h = &e->h[at];
	memset(h, 0, sizeof(*h));
	if ((h->name = strndup(name, nlen)) == NULL ||
	    (h->value = strndup(value, vlen)) == NULL)
		fatal("strndup");
	h->origin = origin;
	e->nh++;
	return h;
}

static void
hdr_delete(struct milter_eom *e, size_t at)
{
	hdr_free(&e->h[at]);
	memmove(&e->h[at], &e->h[at + 1], (e->nh - at - 1) * sizeof(*e->h));
	e->nh--;
}

/*
 * Fields from a block of LF-ended lines: "name:value", continuation lines
 * begin with SP or HTAB.  Returns the bytes used: up to the first line
 * that is neither (the empty line, or a body with no header), or all.
 */
static size_t
hdr_parse_block(struct milter_eom *e, const char *p, size_t len, int origin,
    int *blank)
{
	const char	*end = p + len, *line = p, *nl, *colon, *fstart = NULL;
	const char	*fend = NULL;

	*blank = 0;
	while (line < end) {
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;
		if (line[0] == ' ' || line[0] == '\t') {
			if (fstart == NULL)
				break;		/* no field to continue */
			fend = nl;
			line = nl + (nl < end);
			continue;
		}
		if (fstart != NULL) {
			colon = memchr(fstart, ':', (size_t)(fend - fstart));
			hdr_insert(e, e->nh, fstart, (size_t)(colon - fstart),
			    colon + 1, (size_t)(fend - colon - 1), origin);
			if (origin == H_FILE)
				e->h[e->nh - 1].fileno = e->nfile++;
			fstart = NULL;
		}
		if (nl == line) {
			*blank = 1;
			break;
		}
		for (colon = line; colon < nl && *colon != ':' &&
		    *colon > 0x20 && *colon < 0x7f; colon++)
			;
		if (colon == line || colon == nl || *colon != ':')
			break;		/* not a field: the body begins */
		fstart = line;
		fend = nl;
		line = nl + (nl < end);
	}
	if (fstart != NULL) {
		colon = memchr(fstart, ':', (size_t)(fend - fstart));
		hdr_insert(e, e->nh, fstart, (size_t)(colon - fstart),
		    colon + 1, (size_t)(fend - colon - 1), origin);
		if (origin == H_FILE)
			e->h[e->nh - 1].fileno = e->nfile++;
	}
	return (size_t)(line - p);
}

/* the end of a header block: an empty line */
static int
has_blank_line(const char *p, size_t len)
{
	const char	*nl;

	if (len > 0 && p[0] == '\n')
		return 1;
	for (; (nl = memchr(p, '\n', len)) != NULL; len -= (size_t)(nl + 1 -
	    p), p = nl + 1)
		if ((size_t)(nl + 1 - p) < len && nl[1] == '\n')
			return 1;
	return 0;
}

/*
 * The model of the message as it stands: added fields, then the file's.
 * Made when first needed: a filter that asked for neither header nor
 * body and changes nothing (a no-op, or one that only looks at the
 * envelope) costs no read of the message.
 */
static int
eom_model(struct milter_sess *ms)
{
	struct session		*s = ms->s;
	struct txn		*tx = s->tx;
	struct milter_eom	*e = ms->eom;
	struct evbuffer		*b;
	char			 buf[65536];
	ssize_t			 n;
	int64_t			 off = 0;
	size_t			 used, len;
	int			 blank;
	char			*p;

	if (e->loaded)
		return 0;
	e->loaded = 1;
	if (s->addhead_len > 0)
		hdr_parse_block(e, s->addhead, s->addhead_len, H_ADDED,
		    &blank);
	/* the file's header block, up to its empty line */
	if ((b = evbuffer_new()) == NULL)
		fatal("evbuffer_new");
	for (;;) {
		n = pread(tx->msgfd, buf, sizeof(buf), (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_warn("%08x: milter: spool read", tx->msgid);
			evbuffer_free(b);
			return -1;
		}
		if (n > 0 && off + n > (int64_t)tx->spooled)
			n = (ssize_t)((int64_t)tx->spooled - off);
		if (n > 0)
			evbuffer_add(b, buf, (size_t)n);
		off += n;
		len = evbuffer_get_length(b);
		p = (char *)evbuffer_pullup(b, -1);
		if (n <= 0 || has_blank_line(p, len))
			break;
	}
	len = evbuffer_get_length(b);
	p = (char *)evbuffer_pullup(b, -1);
	used = hdr_parse_block(e, p, len, H_FILE, &blank);
	e->blank = blank;
	e->body_off = (int64_t)used + (blank ? 1 : 0);
	if (e->body_off > (int64_t)tx->spooled)
		e->body_off = (int64_t)tx->spooled;
	evbuffer_free(b);
	return 0;
}

/* ---- sending ---- */

static int
leadspc(const struct milter_conn *c)
{
	return (c->protocol & SMFIP_HDR_LEADSPC) != 0;
}

static void
send_header(struct milter_conn *c, const struct mhdr *h)
{
	const char	*v = h->value;
	size_t		 nlen, vlen;

	/* Postfix strips the spaces after the ':', not a tab */
	if (!leadspc(c))
		while (*v == ' ')
			v++;
	nlen = strlen(h->name);
	vlen = strlen(v);
	/* libmilter drops a command of more than 64 KB, and the filter
	 * with it: a longer field is shown cut (it is not changed) */
	if (nlen + vlen + 2 > MILTER_CHUNK_MAX)
		vlen = nlen + 2 < MILTER_CHUNK_MAX ? MILTER_CHUNK_MAX - nlen -
		    2 : 0;
	if (milter_put_header(c->out, h->name, nlen, v, vlen) == -1)
		fatalx("milter_put_header");
}

/*
 * The next piece of the body, CRLF line ends, into chunk: its length, 0
 * at its end, -1 if the spool could not be read (the filter must not
 * judge a body cut short: the message gets 451).
 */
static ssize_t
body_chunk(struct milter_sess *ms, char *chunk)
{
	struct milter_eom	*e = ms->eom;
	struct txn		*tx = ms->s->tx;
	char			 raw[BODY_READ];
	ssize_t			 n;
	size_t			 i, out = 0;

	if (e->body != NULL) {
		/* a replacement, already CRLF */
		struct evbuffer_ptr	pos;

		n = (ssize_t)((int64_t)evbuffer_get_length(e->body) - e->boff);
		if (n <= 0)
			return 0;
		if (n > MILTER_CHUNK_MAX)
			n = MILTER_CHUNK_MAX;
		if (evbuffer_ptr_set(e->body, &pos, (size_t)e->boff,
		    EVBUFFER_PTR_SET) == -1 || (n = evbuffer_copyout_from(e->body,
		    &pos, chunk, (size_t)n)) <= 0)
			return 0;
		e->boff += n;
		return n;
	}
	do {
		n = pread(tx->msgfd, raw, sizeof(raw), (off_t)(e->body_off +
		    e->boff));
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		log_warn("%08x: milter: spool read", tx->msgid);
		return -1;
	}
	if (e->body_off + e->boff + n > (int64_t)tx->spooled)
		n = (ssize_t)((int64_t)tx->spooled - e->body_off - e->boff);
	for (i = 0; i < (size_t)n; i++) {
		if (raw[i] == '\n')
			chunk[out++] = '\r';
		chunk[out++] = raw[i];
	}
	e->boff += n;
	return (ssize_t)out;
}

/* send what the filter takes next; wait where it answers */
static void
eom_pump(struct milter_sess *ms, struct milter_conn *c)
{
	struct milter_eom	*e = ms->eom;
	static char		 chunk[MILTER_CHUNK_MAX];
	ssize_t			 n;

	while (c->state != MC_DEAD) {
		if (evbuffer_get_length(c->out) > OUT_HIWAT) {
			milter_send(c);
			if (c->state == MC_DEAD)
				break;
			if (evbuffer_get_length(c->out) > OUT_HIWAT) {
				/* on when it is written: milter_eom_drained() */
				c->draining = 1;
				milter_wait(c, c->mc->eom_timeout);
				return;
			}
		}
		switch (e->phase) {
		case P_HEADERS:
			if (!(c->protocol & SMFIP_NOHDRS) && eom_model(ms) == -1)
				goto local_error;
			if ((c->protocol & SMFIP_NOHDRS) || e->hi >= e->nh) {
				e->phase = P_EOH;
				continue;
			}
			/*
			 * Our own Received: field, the file's first, is not
			 * shown (Postfix does not show its own either), but
			 * it counts in the positions of INSHEADER.
			 */
			if (e->h[e->hi].origin == H_FILE &&
			    e->h[e->hi].fileno == 0 &&
			    strcasecmp(e->h[e->hi].name, "Received") == 0) {
				e->hi++;
				continue;
			}
			/* Postfix: the queue id before each field */
			milter_put_stage_macros(c, SMFIM_EOH, SMFIC_HEADER);
			send_header(c, &e->h[e->hi++]);
			if (c->protocol & SMFIP_NR_HDR)
				continue;
			break;
		case P_EOH:
			e->phase = P_BODY;
			e->boff = 0;
			if (c->protocol & SMFIP_NOEOH)
				continue;
			milter_put_stage_macros(c, SMFIM_EOH, SMFIC_EOH);
			if (milter_put_empty(c->out, SMFIC_EOH) == -1)
				fatalx("milter_put_empty");
			if (c->protocol & SMFIP_NR_EOH)
				continue;
			break;
		case P_BODY:
			if (!(c->protocol & SMFIP_NOBODY) && eom_model(ms) == -1)
				goto local_error;
			if ((c->protocol & SMFIP_NOBODY) ||
			    (n = body_chunk(ms, chunk)) == 0) {
				e->phase = P_EOM;
				continue;
			}
			if (n == -1)
				goto local_error;
			/* one chunk, one packet, one reply */
			milter_put_stage_macros(c, SMFIM_EOH, SMFIC_BODY);
			if (milter_put_body(c->out, chunk, (size_t)n) == -1)
				fatalx("milter_put_body");
			if (c->protocol & SMFIP_NR_BODY)
				continue;
			break;
		case P_EOM:
			milter_put_stage_macros(c, SMFIM_EOM, SMFIC_BODYEOB);
			if (milter_put_empty(c->out, SMFIC_BODYEOB) == -1)
				fatalx("milter_put_empty");
			e->phase = P_EOMWAIT;
			break;
		default:
			return;
		}
		/* a reply is due */
		milter_send(c);
		if (c->state == MC_DEAD)
			break;
		milter_wait(c, c->mc->eom_timeout);
		return;
	}
	/* it failed while we wrote: its on-error decides */
	milter_eom_reply(ms, c, NULL);
	return;
local_error:
	ms->verdict = MILTER_TEMPFAIL;
	ms->nlines = 0;
	milter_stage_done(ms);
}

void
milter_eom_drained(struct milter_sess *ms, struct milter_conn *c)
{
	if (!c->draining || ms->eom == NULL)
		return;
	c->draining = 0;
	evtimer_del(c->ev_timer);
	c->state = MC_IDLE;
	eom_pump(ms, c);
}

/* ---- the filters in turn ---- */

static void
eom_next_filter(struct milter_sess *ms)
{
	struct milter_conn	*c;

	for (; ms->cur < ms->n; ms->cur++) {
		c = &ms->c[ms->cur];
		if (c->state == MC_DONE || c->msg_accepted)
			continue;
		if (c->state == MC_DEAD) {
			if (milter_apply_default(ms, c))
				continue;
			milter_stage_done(ms);
			return;
		}
		milter_stats_count(c, MST_MESSAGE);
		ms->eom->phase = P_HEADERS;
		ms->eom->hi = 0;
		ms->eom->boff = 0;
		eom_pump(ms, c);
		return;
	}
	eom_finish(ms);
}

void
milter_eom_start(struct milter_sess *ms)
{
	struct session	*s = ms->s;

	if (s->tx->discard) {
		ms->verdict = MILTER_DISCARD;
		milter_stage_done(ms);
		return;
	}
	milter_eom_free(ms);
	if ((ms->eom = calloc(1, sizeof(*ms->eom))) == NULL)
		fatal("calloc");
	ms->cur = 0;
	eom_next_filter(ms);
}

/* ---- changes ---- */

static int
header_has_crlf_garbage(const char *v)
{
	return strchr(v, '\r') != NULL;
}

/* the value a filter gave, as it will stand after the ':' */
static void
hdr_value_from(const struct milter_conn *c, const char *v, char **out)
{
	if (leadspc(c) || *v == '\0') {
		if ((*out = strdup(v)) == NULL)
			fatal("strdup");
		return;
	}
	if ((*out = malloc(strlen(v) + 2)) == NULL)
		fatal("malloc");
	(*out)[0] = ' ';
	memcpy(*out + 1, v, strlen(v) + 1);
}

static struct mhdr *
hdr_add(struct milter_eom *e, struct milter_conn *c, size_t at,
    const char *name, const char *value)
{
	struct mhdr	*h;
	char		*v;

	hdr_value_from(c, value, &v);
	h = hdr_insert(e, at, name, strlen(name), v, strlen(v), H_NEW);
	free(v);
	return h;
}

static int
may(const struct milter_conn *c, uint32_t action)
{
	if (c->actions & action)
		return 1;
	milter_fail((struct milter_conn *)c, "a change it did not negotiate");
	return 0;
}

static char *
strdup_or_null(const char *s)
{
	char	*p;

	if (s == NULL)
		return NULL;
	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

/* a change asked at the end of message: 0, or -1 (the filter failed) */
static int
eom_change(struct milter_sess *ms, struct milter_conn *c,
    const struct milter_reply *r)
{
	struct milter_eom	*e = ms->eom;
	size_t			 i, n;
	char			*v;

	switch (r->cmd) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
	case SMFIR_REPLBODY:
		if (eom_model(ms) == -1) {
			milter_fail(c, "the message could not be read");
			return -1;
		}
		e->changed = 1;
		break;
	}
	if ((r->cmd == SMFIR_ADDHEADER || r->cmd == SMFIR_INSHEADER ||
	    r->cmd == SMFIR_CHGHEADER) && e->nh >= MAX_FIELDS) {
		milter_fail(c, "too many header fields");
		return -1;
	}
	switch (r->cmd) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
		if (!may(c, SMFIF_ADDHDRS))
			return -1;
		if (header_has_crlf_garbage(r->value)) {
			milter_fail(c, "a header value with CR");
			return -1;
		}
		hdr_add(e, c, r->cmd == SMFIR_ADDHEADER ? e->nh : r->index,
		    r->name, r->value);
		break;
	case SMFIR_CHGHEADER:
		if (!may(c, SMFIF_CHGHDRS))
			return -1;
		if (header_has_crlf_garbage(r->value)) {
			milter_fail(c, "a header value with CR");
			return -1;
		}
		/* the index-th field of that name, from 1 (0 is 1 too) */
		for (i = 0, n = 0; i < e->nh; i++)
			if (strcasecmp(e->h[i].name, r->name) == 0 &&
			    ++n >= (r->index ? r->index : 1))
				break;
		if (i == e->nh) {
			if (r->value[0] != '\0')
				hdr_add(e, c, e->nh, r->name, r->value);
			break;
		}
		if (r->value[0] == '\0') {
			hdr_delete(e, i);
			break;
		}
		hdr_value_from(c, r->value, &v);
		free(e->h[i].value);
		e->h[i].value = v;
		e->h[i].origin = H_NEW;
		break;
	case SMFIR_REPLBODY:
		if (!may(c, SMFIF_CHGBODY))
			return -1;
		if (e->newbody == NULL && (e->newbody = evbuffer_new()) ==
		    NULL)
			fatal("evbuffer_new");
		if (evbuffer_get_length(e->newbody) + r->len >
		    conf->max_message_size + 65536) {
			milter_fail(c, "replacement body too large");
			return -1;
		}
		evbuffer_add(e->newbody, r->data, r->len);
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_ADDRCPT_PAR:
		if (!may(c, r->cmd == SMFIR_ADDRCPT ? SMFIF_ADDRCPT :
		    SMFIF_ADDRCPT_PAR))
			return -1;
		if (e->naddrcpt >= conf->max_rcpt) {
			milter_fail(c, "too many recipients added");
			return -1;
		}
		if ((e->addrcpt = reallocarray(e->addrcpt, e->naddrcpt + 1,
		    sizeof(*e->addrcpt))) == NULL)
			fatal("reallocarray");
		e->addrcpt[e->naddrcpt].addr = strdup_or_null(r->addr);
		e->addrcpt[e->naddrcpt].args = strdup_or_null(r->args);
		e->naddrcpt++;
		break;
	case SMFIR_DELRCPT:
		if (!may(c, SMFIF_DELRCPT))
			return -1;
		if (e->ndelrcpt >= MAX_DELRCPT) {
			milter_fail(c, "too many recipients deleted");
			return -1;
		}
		if ((e->delrcpt = reallocarray(e->delrcpt, e->ndelrcpt + 1,
		    sizeof(*e->delrcpt))) == NULL)
			fatal("reallocarray");
		e->delrcpt[e->ndelrcpt++] = strdup_or_null(r->addr);
		break;
	case SMFIR_CHGFROM:
		if (!may(c, SMFIF_CHGFROM))
			return -1;
		free(e->chgfrom);
		free(e->chgfrom_args);
		e->chgfrom = strdup_or_null(r->addr);
		e->chgfrom_args = strdup_or_null(r->args);
		break;
	case SMFIR_QUARANTINE:
		if (!may(c, SMFIF_QUARANTINE))
			return -1;
		snprintf(e->hold, sizeof(e->hold), "milter %.32s: %.80s",
		    c->mc->name, r->text[0] ? r->text : "quarantined");
		milter_stats_count(c, MST_QUARANTINE);
		break;
	default:
		milter_fail(c, "reply '%s' not allowed at end of message",
		    milter_reply_name(r->cmd));
		return -1;
	}
	c->modified = 1;
	return 0;
}

/* the new body a filter sent is the body now (CRLF as received) */
static void
eom_take_body(struct milter_eom *e)
{
	if (e->newbody == NULL)
		return;
	if (e->body != NULL)
		evbuffer_free(e->body);
	e->body = e->newbody;
	e->newbody = NULL;
}

void
milter_eom_reply(struct milter_sess *ms, struct milter_conn *c,
    struct milter_reply *r)
{
	struct milter_eom	*e = ms->eom;

	if (e == NULL)
		return;
	if (r == NULL) {
		/* c failed: its changes to this message are void */
		if (e->newbody != NULL) {
			evbuffer_free(e->newbody);
			e->newbody = NULL;
		}
		if (milter_apply_default(ms, c)) {
			ms->cur++;
			eom_next_filter(ms);
		} else
			milter_stage_done(ms);
		return;
	}
	/*
	 * c stays MC_BUSY until its reply is known to be a good one: one
	 * that makes it fail must find it so, for milter_fail() to go on
	 * with its on-error action (else the message waits for ever).
	 */
	evtimer_del(c->ev_timer);
	c->draining = 0;
	if (e->phase == P_EOMWAIT) {
		switch (r->cmd) {
		case SMFIR_CONTINUE:
		case SMFIR_ACCEPT:
			c->state = MC_IDLE;
			c->in_msg = 0;
			eom_take_body(e);
			if (c->modified)
				milter_stats_count(c, MST_MODIFIED);
			milter_stats_count(c, MST_ACCEPT);
			ms->cur++;
			eom_next_filter(ms);
			return;
		}
		switch (milter_set_reply(ms, r, c)) {
		case 1:
			c->state = MC_IDLE;
			c->in_msg = 0;
			milter_stage_done(ms);
			return;
		case -1:
			return;
		}
		if (eom_change(ms, c, r) == -1)
			return;		/* milter_fail() went on */
		milter_wait(c, c->mc->eom_timeout);
		return;
	}
	/* a reply to a header, the end of the header or a body chunk */
	switch (r->cmd) {
	case SMFIR_CONTINUE:
		c->state = MC_IDLE;
		eom_pump(ms, c);
		return;
	case SMFIR_SKIP:
		if (e->phase != P_BODY) {
			milter_fail(c, "skip outside the body");
			return;
		}
		c->state = MC_IDLE;
		e->phase = P_EOM;
		eom_pump(ms, c);
		return;
	case SMFIR_ACCEPT:
		/* the rest of this message is no business of this filter's */
		c->state = MC_IDLE;
		c->msg_accepted = 1;
		c->in_msg = 0;
		milter_stats_count(c, MST_ACCEPT);
		ms->cur++;
		eom_next_filter(ms);
		return;
	}
	switch (milter_set_reply(ms, r, c)) {
	case 1:
		c->state = MC_IDLE;
		c->in_msg = 0;
		milter_stage_done(ms);
		return;
	case -1:
		return;
	}
	milter_fail(c, "reply '%s' not allowed before the end of message",
	    milter_reply_name(r->cmd));
}

/* ---- writing the changes back ---- */

/* is the model the file's fields, in order, under some new ones? */
static int
eom_only_added_on_top(const struct milter_eom *e, size_t *top)
{
	size_t	i, first = e->nh - e->nfile;

	if (e->body != NULL || e->nh < e->nfile)
		return 0;
	for (i = 0; i < first; i++)
		if (e->h[i].origin == H_FILE)
			return 0;
	for (i = first; i < e->nh; i++)
		if (e->h[i].origin != H_FILE || e->h[i].fileno != i - first)
			return 0;
	*top = first;
	return 1;
}

static void
hdr_serialize(struct evbuffer *b, const struct mhdr *h)
{
	evbuffer_add_printf(b, "%s:%s\n", h->name, h->value);
}

/* the body as the spool keeps it: LF line ends, CRLF and bare CR made LF */
static void
body_to_lf(struct evbuffer *in, struct evbuffer *out)
{
	struct evbuffer_iovec	 v[8];
	int			 n, i;
	size_t			 j, start;
	int			 cr = 0;

	while (evbuffer_get_length(in) > 0) {
		size_t done = 0;

		n = evbuffer_peek(in, -1, NULL, v, 8);
		for (i = 0; i < n && i < 8; i++) {
			const char *p = v[i].iov_base;

			for (j = 0, start = 0; j < v[i].iov_len; j++) {
				if (p[j] != '\r' && !(p[j] == '\n' && cr)) {
					cr = 0;
					continue;
				}
				if (p[j] == '\n') {
					/* the LF of a CRLF: the CR made it */
					start = j + 1;
					cr = 0;
					continue;
				}
				evbuffer_add(out, p + start, j - start);
				evbuffer_add(out, "\n", 1);
				start = j + 1;
				cr = 1;
			}
			evbuffer_add(out, p + start, v[i].iov_len - start);
			done += v[i].iov_len;
		}
		evbuffer_drain(in, done);
	}
	/* a message ends with a line end */
	if (evbuffer_get_length(out) > 0) {
		struct evbuffer_ptr	pos;
		char			last;

		evbuffer_ptr_set(out, &pos, evbuffer_get_length(out) - 1,
		    EVBUFFER_PTR_SET);
		if (evbuffer_copyout_from(out, &pos, &last, 1) == 1 &&
		    last != '\n')
			evbuffer_add(out, "\n", 1);
	}
}

static int
write_all(int fd, const char *p, size_t n, int64_t off)
{
	ssize_t	w;

	while (n > 0) {
		w = pwrite(fd, p, n, (off_t)off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static int
write_evbuffer(int fd, struct evbuffer *b, int64_t *off)
{
	struct evbuffer_iovec	 v[16];
	int			 n, i;

	while (evbuffer_get_length(b) > 0) {
		n = evbuffer_peek(b, -1, NULL, v, 16);
		for (i = 0; i < n && i < 16; i++) {
			if (write_all(fd, v[i].iov_base, v[i].iov_len,
			    *off) == -1)
				return -1;
			*off += (int64_t)v[i].iov_len;
			evbuffer_drain(b, v[i].iov_len);
			break;
		}
	}
	return 0;
}

/* copy len bytes at from in fd to to in tfd (files of the spool) */
static int
copy_range(int fd, int64_t from, int tfd, int64_t to, int64_t len)
{
	char	buf[65536];
	ssize_t	n;

	while (len > 0) {
		n = pread(fd, buf, len < (int64_t)sizeof(buf) ? (size_t)len :
		    sizeof(buf), (off_t)from);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (write_all(tfd, buf, (size_t)n, to) == -1)
			return -1;
		from += n;
		to += n;
		len -= n;
	}
	return 0;
}

/*
 * The message was written again: measure it again for the envelope
 * (wirescan.h: size on the wire, where the 8-bit bytes are) and, when
 * we sign it, hash it again for the signer (DKIM signs after the
 * filters), in one read of the new file.
 */
static int
eom_reread(struct session *s)
{
	struct txn	*tx = s->tx;
	char		 buf[65536], *line;
	struct evbuffer	*b = NULL;
	int64_t		 off = 0;
	ssize_t		 n;
	size_t		 len;

	wirescan_init(&tx->wire);
	if (tx->dkim != NULL && smtp_dkim_want_sign(s)) {
		dkim_msg_free(tx->dkim);
		if ((tx->dkim = dkim_msg_new(1)) == NULL ||
		    (b = evbuffer_new()) == NULL)
			fatal("dkim_msg_new");
	}
	while (off < (int64_t)tx->spooled) {
		n = pread(tx->msgfd, buf, sizeof(buf), (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (b != NULL)
				evbuffer_free(b);
			return -1;	/* the envelope would be wrong */
		}
		if (off + n > (int64_t)tx->spooled)
			n = (ssize_t)((int64_t)tx->spooled - off);
		off += n;
		wirescan_add(&tx->wire, buf, (size_t)n);
		if (b == NULL)
			continue;
		evbuffer_add(b, buf, (size_t)n);
		while ((line = evbuffer_readln(b, &len,
		    EVBUFFER_EOL_LF)) != NULL) {
			dkim_msg_line(tx->dkim, line, len);
			free(line);
		}
	}
	if (b != NULL)
		evbuffer_free(b);
	tx->msgsize = (size_t)wirescan_size(&tx->wire);
	return 0;
}

/*
 * Write the model back: into the added headers when that is all that
 * changed, else the whole message anew.  0, or -1 (a local error: the
 * message gets 451).
 */
static int
eom_write(struct milter_sess *ms)
{
	struct session		*s = ms->s;
	struct txn		*tx = s->tx;
	struct milter_eom	*e = ms->eom;
	struct evbuffer		*hb, *body = NULL;
	size_t			 top, i, len;
	int64_t			 off = 0, blen = 0;
	uint32_t		 spare_id = 0;
	int			 spare_fd = -1, rc = -1;
	char			*p;

	if ((hb = evbuffer_new()) == NULL)
		fatal("evbuffer_new");
	if (eom_only_added_on_top(e, &top)) {
		for (i = 0; i < top; i++)
			hdr_serialize(hb, &e->h[i]);
		len = evbuffer_get_length(hb);
		if (len <= SPOOL_HEAD_MAX &&
		    spool_head_valid((p = (char *)evbuffer_pullup(hb, -1)),
		    len, &s->addhead_lines) == 0) {
			if (s->addhead == NULL &&
			    (s->addhead = malloc(SPOOL_HEAD_MAX)) == NULL)
				fatal("malloc");
			memcpy(s->addhead, p, len);
			s->addhead_len = len;
			evbuffer_free(hb);
			return 0;
		}
		if (len == 0) {
			s->addhead_len = s->addhead_lines = 0;
			evbuffer_free(hb);
			return 0;
		}
		evbuffer_drain(hb, len);
	}
	/* the whole message anew */
	for (i = 0; i < e->nh; i++)
		hdr_serialize(hb, &e->h[i]);
	if (e->body != NULL) {
		if ((body = evbuffer_new()) == NULL)
			fatal("evbuffer_new");
		body_to_lf(e->body, body);
		blen = (int64_t)evbuffer_get_length(body);
	} else
		blen = (int64_t)tx->spooled - e->body_off;
	if (blen > 0 || e->blank)
		evbuffer_add(hb, "\n", 1);
	if (body == NULL && blen > 0) {
		/* the old body, aside, before the file is overwritten */
		if (smtp_data_take_spare(&spare_id, &spare_fd) == -1) {
			if (blen > (int64_t)64 * 1024 * 1024) {
				log_warnx("%08x: milter: no spare file to "
				    "rewrite the message", tx->msgid);
				goto done;
			}
			if ((body = evbuffer_new()) == NULL)
				fatal("evbuffer_new");
			for (off = e->body_off; off < (int64_t)tx->spooled;) {
				char	buf[65536];
				ssize_t	n = pread(tx->msgfd, buf, sizeof(buf),
				    (off_t)off);

				if (n == -1 && errno == EINTR)
					continue;
				if (n <= 0)
					goto done;
				evbuffer_add(body, buf, (size_t)n);
				off += n;
			}
		} else if (copy_range(tx->msgfd, e->body_off, spare_fd, 0,
		    blen) == -1) {
			log_warn("%08x: milter: copy of the body", tx->msgid);
			goto done;
		}
	}
	off = 0;
	len = evbuffer_get_length(hb);
	if (write_evbuffer(tx->msgfd, hb, &off) == -1)
		goto io;
	if (body != NULL) {
		if (write_evbuffer(tx->msgfd, body, &off) == -1)
			goto io;
	} else if (blen > 0) {
		if (copy_range(spare_fd, 0, tx->msgfd, off, blen) == -1)
			goto io;
		off += blen;
	}
	if (ftruncate(tx->msgfd, (off_t)off) == -1)
		goto io;
	tx->spooled = (uint64_t)off;
	s->addhead_len = s->addhead_lines = 0;
	if (eom_reread(s) == -1)
		goto io;
	rc = 0;
	goto done;
io:
	log_warn("%08x: milter: rewrite of the message", tx->msgid);
done:
	if (spare_fd != -1)
		smtp_data_return_spare(spare_id, spare_fd);
	evbuffer_free(hb);
	if (body != NULL)
		evbuffer_free(body);
	return rc;
}

/* a "<a@b>" or "a@b" from a filter, as a path */
static int
parse_path(const char *text, struct mailaddr *a, int flags)
{
	char		 buf[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 8];
	const char	*rest;

	if (text == NULL)
		return -1;
	if (text[0] == '<')
		snprintf(buf, sizeof(buf), "%s", text);
	else
		snprintf(buf, sizeof(buf), "<%s>", text);
	if (addr_parse_path(buf, a, flags, &rest) != ADDR_OK || *rest != '\0')
		return -1;
	return 0;
}

static void
eom_envelope(struct milter_sess *ms)
{
	struct session		*s = ms->s;
	struct txn		*tx = s->tx;
	struct milter_eom	*e = ms->eom;
	struct smtp_mail_params	 mp;
	struct mailaddr		 a;
	char			 reply[SMTP_REPLY_MAX], text[600];
	size_t			 i, j, k;

	if (e->chgfrom != NULL) {
		if (parse_path(e->chgfrom, &a, ADDR_ALLOW_NULL |
		    ADDR_ALLOW_UTF8) == -1)
			log_warnx("%08x: milter: sender \"%s\" not an "
			    "address: not changed", tx->msgid, e->chgfrom);
		else if (e->chgfrom_args != NULL &&
		    smtp_parse_mail_params(e->chgfrom_args, 1, &mp, reply,
		    sizeof(reply)) == -1)
			log_warnx("%08x: milter: sender arguments \"%s\": %s",
			    tx->msgid, e->chgfrom_args, reply);
		else {
			tx->mailfrom = a;
			addr_to_string(&a, text, sizeof(text));
			if (e->chgfrom_args != NULL) {
				tx->mp.evflags = (tx->mp.evflags &
				    ~(EF_DSN_RET_FULL | EF_DSN_RET_HDRS)) |
				    mp.evflags;
				if (mp.envid[0])
					snprintf(tx->mp.envid,
					    sizeof(tx->mp.envid), "%s",
					    mp.envid);
			}
			log_info("%08x: milter: sender changed to <%s>",
			    tx->msgid, text);
		}
	}
	for (i = 0; i < e->ndelrcpt; i++) {
		if (parse_path(e->delrcpt[i], &a, ADDR_ALLOW_NODOMAIN |
		    ADDR_ALLOW_UTF8) == -1)
			continue;
		for (j = 0, k = 0; j < tx->ndests; j++) {
			if (strcasecmp(tx->dests[j].rcpt.user, a.user) == 0 &&
			    strcasecmp(tx->dests[j].rcpt.domain, a.domain) ==
			    0) {
				free(tx->dests[j].orcpt);
				continue;
			}
			tx->dests[k++] = tx->dests[j];
		}
		if (k != tx->ndests) {
			addr_to_string(&a, text, sizeof(text));
			log_info("%08x: milter: recipient <%s> removed",
			    tx->msgid, text);
		}
		tx->ndests = k;
	}
}

/* the next recipient a filter added, to lookup; or the end */
static void
eom_addrcpt_next(struct milter_sess *ms)
{
	struct session		*s = ms->s;
	struct txn		*tx = s->tx;
	struct milter_eom	*e = ms->eom;
	struct lka_rcpt_req	 req;
	char			 reply[SMTP_REPLY_MAX];

	while (e->iaddrcpt < e->naddrcpt) {
		struct addrcpt *ar = &e->addrcpt[e->iaddrcpt++];

		memset(&tx->rp_pending, 0, sizeof(tx->rp_pending));
		if (parse_path(ar->addr, &tx->rcpt_pending,
		    ADDR_ALLOW_NODOMAIN | ((tx->mp.evflags & EF_SMTPUTF8) ?
		    ADDR_ALLOW_UTF8 : 0)) == -1 || (ar->args != NULL &&
		    smtp_parse_rcpt_params(ar->args, 1, &tx->rp_pending,
		    reply, sizeof(reply)) == -1)) {
			log_warnx("%08x: milter: recipient \"%s\" not "
			    "added: not an address or bad arguments",
			    tx->msgid, ar->addr ? ar->addr : "");
			continue;
		}
		tx->ndests_before = tx->ndests;
		session_rcpt_request(s, &req);
		s->flags |= SS_MILTER_RCPT;
		mproc_compose(&smtp_worker.lookup, IMSG_LKA_RCPT, s->id, -1,
		    &req, sizeof(req));
		return;
	}
	if (tx->ndests == 0) {
		log_info("%08x: milter: no recipient left: message dropped",
		    tx->msgid);
		ms->verdict = MILTER_DISCARD;
	}
	milter_eom_free(ms);
	milter_stage_done(ms);
}

/* lookup's answer on an added recipient (smtp_session.c kept or dropped
 * its destinations) */
void
smtp_milter_rcpt_done(struct session *s, int ok, const char *reply)
{
	struct milter_sess	*ms = s->milter;
	char			 text[600];

	s->flags &= ~SS_MILTER_RCPT;
	if (ms == NULL || ms->eom == NULL)
		return;
	addr_to_string(&s->tx->rcpt_pending, text, sizeof(text));
	if (ok)
		log_info("%08x: milter: recipient <%s> added", s->tx->msgid,
		    text);
	else
		log_warnx("%08x: milter: recipient <%s> not added: %s",
		    s->tx->msgid, text, reply);
	eom_addrcpt_next(ms);
}

static void
eom_finish(struct milter_sess *ms)
{
	struct session		*s = ms->s;
	struct milter_eom	*e = ms->eom;

	if (e->hold[0])
		snprintf(s->tx->hold, sizeof(s->tx->hold), "%s", e->hold);
	else if (ms->hold[0])
		snprintf(s->tx->hold, sizeof(s->tx->hold), "%s", ms->hold);
	if (e->changed && eom_write(ms) == -1) {
		ms->verdict = MILTER_TEMPFAIL;
		ms->nlines = 0;
		milter_eom_free(ms);
		milter_stage_done(ms);
		return;
	}
	eom_envelope(ms);
	eom_addrcpt_next(ms);
}
