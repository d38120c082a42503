/*
 * mta_7bit.c -- the mta's side of the 8-bit to 7-bit conversion: a
 * message sent with BODY=8BITMIME whose next hop does not offer
 * 8BITMIME is converted (mime7bit.c) instead of bounced (RFC 6152
 * section 3), as Postfix does.
 *
 * Before MAIL FROM, mta_7bit_prepare() reads the spooled message once
 * through the converter's first pass: only a message that cannot be
 * converted (mime7bit.c says which) bounces with 5.6.3, and it bounces
 * before anything is sent, since a DATA cannot be taken back half way.
 * That read blocks the mta's loop for as long as reading the message
 * takes (tens of milliseconds for the largest); it happens only for
 * this rare combination, and the file is in the page cache the body
 * pass then reads again.  While the body goes out, mta_7bit_feed()
 * converts each block read and writes the result to the session's
 * output with CRLF line ends and dot-stuffing (RFC 5321 4.5.2), as the
 * session does for a message sent as it is.  The SIZE parameter stays
 * the size of the message as spooled: RFC 1870 wants an estimate.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define POSTHASTE_MTA_INTERNAL
#include "log.h"
#include "mime7bit.h"
#include "mta.h"
#include "proto.h"
#include "util.h"

struct mta_7bit {
	struct mime7bit	*mime;
	/* where the block being converted goes */
	struct evbuffer	*out;
	int		*bol;		/* the wire is at a line start */
};

/* converted text to the wire: LF to CRLF, a leading dot doubled */
static int
wire_add(void *arg, const char *data, size_t n)
{
	struct mta_7bit		*w = arg;
	struct evbuffer_iovec	 v;
	const char		*p, *end, *nl;
	char			*o;
	size_t			 len;

	if (evbuffer_reserve_space(w->out, 2 * n, &v, 1) < 1 ||
	    v.iov_len < 2 * n)
		return -1;
	o = v.iov_base;
	for (p = data, end = data + n; p < end; p = nl ? nl + 1 : end) {
		if (*w->bol && *p == '.')
			*o++ = '.';
		nl = memchr(p, '\n', end - p);
		len = (nl ? nl : end) - p;
		memcpy(o, p, len);
		o += len;
		if (nl != NULL) {
			*o++ = '\r';
			*o++ = '\n';
			*w->bol = 1;
		} else if (len > 0)
			*w->bol = 0;
	}
	v.iov_len = o - (char *)v.iov_base;
	return evbuffer_commit_space(w->out, &v, 1);
}

void
mta_7bit_free(struct mta_7bit *c)
{
	if (c == NULL)
		return;
	mime7bit_free(c->mime);
	free(c);
}

int
mta_7bit_prepare(struct mta_task *t, const char *relay, struct mta_7bit **convp)
{
	static char	 buf[65536];
	struct mta_7bit	*c;
	struct mime7bit	*m;
	int64_t		 off = 0;
	ssize_t		 n;

	*convp = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->mime = mime7bit_new()) == NULL) {
		log_warn("%08x: 7-bit conversion", t->msgid);
		free(c);
		mta_task_fail(t, PROTO_TEMPFAIL, relay, "4.3.0 out of memory "
		    "converting the message to 7-bit for %s", relay);
		return -1;
	}
	m = c->mime;
	for (;;) {
		n = spool_msg_pread(&t->msg, buf, sizeof(buf), off);
		if (n == -1) {
			log_warn("%08x: read message", t->msgid);
			mta_7bit_free(c);
			mta_task_fail(t, PROTO_TEMPFAIL, relay, "4.3.0 cannot "
			    "read the queued message");
			return -1;
		}
		if (n == 0 || mime7bit_feed(m, buf, n) == -1)
			break;
		off += n;
	}
	if (mime7bit_finish(m) == -1 ||
	    mime7bit_convert(m, wire_add, c) == -1) {
		mta_task_fail(t, PROTO_PERMFAIL, relay, "5.6.3 %s does not "
		    "support 8BITMIME and this message cannot be converted to "
		    "7-bit: %s", relay, mime7bit_error(m));
		mta_7bit_free(c);
		return -1;
	}
	log_info("%08x: converting %zu MIME part%s to 7-bit for %s",
	    t->msgid, mime7bit_nconverted(m),
	    mime7bit_nconverted(m) == 1 ? "" : "s", relay);
	*convp = c;
	return 0;
}

int
mta_7bit_feed(struct mta_7bit *c, const char *data, size_t n,
    struct evbuffer *out, int *bol)
{
	c->out = out;
	c->bol = bol;
	return mime7bit_feed(c->mime, data, n);
}

int
mta_7bit_finish(struct mta_7bit *c, struct evbuffer *out, int *bol)
{
	c->out = out;
	c->bol = bol;
	return mime7bit_finish(c->mime);
}
