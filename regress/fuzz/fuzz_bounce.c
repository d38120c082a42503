/*
 * fuzz_bounce.c -- libFuzzer harness for DSN construction (queue/
 * bounce.c, RFC 3464): the report the queue writes when a message fails,
 * is delayed, delivered or relayed, built from what a hostile sender and
 * a hostile remote server control -- the original message's headers and
 * body, the envelope's sender, ENVID and ORCPT (as the SMTP parser
 * accepted them), and the remote server's reply and our diagnostic.
 *
 * The seam is bounce_fuzz_write() (queue.h, compiled only under
 * -DPOSTHASTE_FUZZ): bounce_write() for one recipient.
 *
 * Input: byte 0 picks the kind of DSN and the envelope flags (RET=HDRS,
 * 8BITMIME, the null sender, a remote delivery); then, separated by NUL
 * bytes: MAIL FROM address, MAIL parameters, RCPT parameters, our
 * diagnostic, the server's reply, the relay's host name; the rest is the
 * original message (LF line ends, as spooled).
 *
 * Beyond "does not crash": the DSN's own header has exactly our fields;
 * the delivery-status part has only RFC 3464 fields (plus ours), one per
 * line, printable ASCII -- nothing a sender or a server said can add a
 * field or a line there; its Status is a well-formed X.Y.Z; and with
 * RET=HDRS (or for a success or delay report) no body line of the
 * original is copied.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fuzz.h"

#include "addr.h"
#include "config.h"
#include "envelope.h"
#include "log.h"
#include "proto.h"
#include "queue.h"
#include "smtp_parse.h"
#include "proc.h"

#define DSN_MSGID	0x0000abcdU

static const char *top_fields[] = {
	"Received:", "\tby ", "From:", "To:", "Subject:", "Date:",
	"Message-ID:", "Auto-Submitted:", "MIME-Version:", "Content-Type:",
	"\tboundary=", NULL
};

static const char *status_fields[] = {
	"Reporting-MTA: dns; ", "X-Posthaste-Queue-ID: ", "Arrival-Date: ",
	"Original-Envelope-Id: ", "Final-Recipient: rfc822; ",
	"Original-Recipient: ", "Action: ", "Status: ", "Remote-MTA: dns; ",
	"Diagnostic-Code: ", "Last-Attempt-Date: ", NULL
};

static int
starts_with_one(const char *line, size_t len, const char **set)
{
	size_t	i, n;

	for (i = 0; set[i]; i++) {
		n = strlen(set[i]);
		if (len >= n && memcmp(line, set[i], n) == 0)
			return 1;
	}
	return 0;
}

/* next field of the input, up to a NUL; NULL when none is left */
static const char *
next_field(const uint8_t **p, const uint8_t *end, char *out, size_t outlen)
{
	const uint8_t	*nul = memchr(*p, '\0', (size_t)(end - *p));
	size_t		 n;

	if (nul == NULL)
		return NULL;
	n = (size_t)(nul - *p);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = nul + 1;
	return out;
}

static void
check_status(const char *v, size_t len)
{
	size_t	i = 0, dots = 0;

	CHECK(len >= 5);
	CHECK(v[0] == '2' || v[0] == '4' || v[0] == '5');
	for (i = 1; i < len; i++) {
		if (v[i] == '.')
			dots++;
		else
			CHECK(v[i] >= '0' && v[i] <= '9');
	}
	CHECK(dots == 2);
}

static void
check_dsn(const char *p, size_t len, const char *boundary, int headers_only,
    const char *body_marker)
{
	const char	*end = p + len, *nl, *status;
	char		 delim[320], part[400];
	size_t		 n;

	CHECK(len > 0 && p[len - 1] == '\n');
	/* our own header, up to the first empty line */
	for (;;) {
		nl = memchr(p, '\n', (size_t)(end - p));
		CHECK(nl != NULL);
		if (nl == p)
			break;
		CHECK(starts_with_one(p, (size_t)(nl - p), top_fields));
		p = nl + 1;
	}
	/* the delivery-status part */
	snprintf(delim, sizeof(delim), "\n--%s\n", boundary);
	snprintf(part, sizeof(part), "%sContent-Type: "
	    "message/delivery-status\n\n", delim);
	status = memmem(p, (size_t)(end - p), part, strlen(part));
	CHECK(status != NULL);
	p = status + strlen(part);
	n = 0;
	for (;;) {
		size_t	i;

		nl = memchr(p, '\n', (size_t)(end - p));
		CHECK(nl != NULL);
		if (nl == p) {		/* a blank line between groups */
			if ((size_t)(end - nl) > 3 && nl[1] == '-' &&
			    nl[2] == '-')
				break;	/* the next part */
			p = nl + 1;
			continue;
		}
		CHECK(starts_with_one(p, (size_t)(nl - p), status_fields));
		for (i = 0; p + i < nl; i++)
			CHECK((unsigned char)p[i] >= 0x20 &&
			    (unsigned char)p[i] < 0x7f);
		if ((size_t)(nl - p) > 8 && memcmp(p, "Status: ", 8) == 0) {
			check_status(p + 8, (size_t)(nl - p) - 8);
			n++;
		}
		p = nl + 1;
	}
	CHECK(n == 1);			/* one recipient, one Status */
	/* the original: headers only when asked */
	if (headers_only && body_marker != NULL)
		CHECK(memmem(p, (size_t)(end - p), body_marker,
		    strlen(body_marker)) == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 inited;
	const uint8_t		*p, *end = data + size;
	struct envelope		 e;
	struct delivery_result	 r;
	struct smtp_mail_params	 mp;
	struct smtp_rcpt_params	 rp;
	struct mailaddr		 a;
	char			 f[1024], reply[SMTP_REPLY_MAX];
	char			 boundary[300], host[200];
	const char		*marker = NULL, *hdrend, *rest;
	char			*dsn;
	struct stat		 st;
	size_t			 i, mlen;
	int			 msgfd, outfd, action, flags, headers_only;

	if (!inited) {
		log_init(0, 0);
		if ((conf = config_default()) == NULL)
			abort();
		snprintf(conf->hostname, sizeof(conf->hostname),
		    "mx.example.org");
		inited = 1;
	}
	if (size < 1 || size > 128 * 1024)
		return 0;
	action = data[0] & 3;
	flags = data[0] >> 2;
	p = data + 1;

	memset(&e, 0, sizeof(e));
	memset(&r, 0, sizeof(r));
	e.id = (uint64_t)0x1234 << 32 | 1;
	e.ctime = 1700000000;
	e.lasttry = (flags & 8) ? 0 : 1700000100;
	e.dest_type = (flags & 4) ? DEST_REMOTE : DEST_MAILBOX;
	snprintf(e.action, sizeof(e.action), "deliver");
	if (e.dest_type != DEST_REMOTE)
		snprintf(e.user, sizeof(e.user), "bob");
	snprintf(e.dest.user, sizeof(e.dest.user), "bob");
	snprintf(e.dest.domain, sizeof(e.dest.domain), "example.net");
	e.rcpt = e.dest;
	/* the sender, as MAIL FROM accepted it */
	if (next_field(&p, end, f, sizeof(f)) == NULL)
		return 0;
	if (!(flags & 1) && addr_parse_path(f, &a, ADDR_ALLOW_UTF8 |
	    ADDR_ALLOW_NULL, &rest) == ADDR_OK)
		e.sender = a;
	if (next_field(&p, end, f, sizeof(f)) == NULL)
		return 0;
	if (smtp_parse_mail_params(f, 1, &mp, reply, sizeof(reply)) == 0) {
		e.flags |= mp.evflags;
		snprintf(e.envid, sizeof(e.envid), "%s", mp.envid);
	}
	if (flags & 2)
		e.flags |= EF_8BITMIME;
	if (next_field(&p, end, f, sizeof(f)) == NULL)
		return 0;
	if (smtp_parse_rcpt_params(f, 1, &rp, reply, sizeof(reply)) == 0) {
		e.flags |= rp.notify;
		snprintf(e.orcpt, sizeof(e.orcpt), "%s", rp.orcpt);
	}
	if (next_field(&p, end, r.text, sizeof(r.text)) == NULL ||
	    next_field(&p, end, r.reply, sizeof(r.reply)) == NULL ||
	    next_field(&p, end, f, sizeof(f)) == NULL)
		return 0;
	/* the relay as the mta names it: an LDH host name from DNS */
	for (i = 0; f[i] && i < sizeof(host) - 1; i++)
		host[i] = (f[i] >= 'a' && f[i] <= 'z') || f[i] == '.' ||
		    f[i] == '-' || (f[i] >= '0' && f[i] <= '9') ? f[i] : 'x';
	host[i] = '\0';
	snprintf(r.relay, sizeof(r.relay), "%s[192.0.2.1]:25", host);
	r.status = action == 0 ? PROTO_PERMFAIL : action == 1 ?
	    PROTO_TEMPFAIL : PROTO_OK;
	CHECK(envelope_valid(&e) == 0);

	mlen = (size_t)(end - p);
	if (mlen == 0)
		return 0;	/* never spooled: a worker writes Received: */
	if ((msgfd = memfd_create("orig", MFD_CLOEXEC)) == -1 ||
	    (outfd = memfd_create("dsn", MFD_CLOEXEC)) == -1)
		abort();
	if (mlen > 0 && write(msgfd, p, mlen) != (ssize_t)mlen)
		abort();
	/* a body line that would show if the body were copied */
	hdrend = memmem(p, mlen, "\n\n", 2);
	if (hdrend != NULL && memmem(hdrend, (size_t)((const char *)end -
	    hdrend), "BODYMARK", 8) != NULL && memmem(p, (size_t)(hdrend -
	    (const char *)p), "BODYMARK", 8) == NULL)
		marker = "BODYMARK";
	CHECK(bounce_fuzz_write(&e, (enum dsn_action)action, &r, msgfd,
	    (int64_t)mlen, DSN_MSGID, outfd) == 0);
	close(msgfd);

	CHECK(fstat(outfd, &st) == 0);
	if ((dsn = malloc((size_t)st.st_size + 1)) == NULL)
		abort();
	CHECK(pread(outfd, dsn, (size_t)st.st_size, 0) == st.st_size);
	close(outfd);
	snprintf(boundary, sizeof(boundary), "%08x/%s", DSN_MSGID,
	    conf->hostname);
	headers_only = (e.flags & EF_DSN_RET_HDRS) || action != 0;
	check_dsn(dsn, (size_t)st.st_size, boundary, headers_only, marker);
	free(dsn);
	return 0;
}
