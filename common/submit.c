/*
 * submit.c -- local submission: the client side of the control socket.
 *
 * sendmail(8) and the daemon's offline pick-up both end up here with a
 * prepared message (headers fixed, recipients known) and the same three
 * ways to dispose of it:
 *
 *  1. the control socket: one IMSG_CTL_REQUEST (CTL_SUBMIT), after which
 *     the daemon hands the socket to an smtp worker and we speak plain
 *     SMTP on it; the worker knows who we are from SO_PEERCRED;
 *  2. when the daemon cannot be reached, a file in the spool's offline
 *     directory, picked up (as its owner) when the daemon starts;
 *  3. when neither works, ~/dead.letter, so that the user keeps the text.
 *
 * The offline file is self-describing and ends with a marker line, so a
 * file that is still being written (or was torn by a crash) is never
 * mistaken for a whole message:
 *
 *	posthaste-offline 1
 *	sender alice@example.org	(empty value: the null sender)
 *	rcpt bob@example.org		(one or more)
 *	notify SUCCESS,FAILURE		(optional)
 *	ret HDRS			(optional)
 *	envid xyz			(optional, printable ASCII)
 *	8bit 1				(optional)
 *	size N
 *					(empty line)
 *	N bytes of message		(LF line ends, not dot-stuffed)
 *	end
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "imsg.h"
#include "proto.h"
#include "ctl.h"
#include "strset.h"
#include "submit.h"
#include "util.h"

#define SUBMIT_TIMEOUT_MS	(10 * 60 * 1000)	/* per reply */
/* connect, and the 220 (or control's refusal) after it */
#define SUBMIT_GREETING_TIMEOUT_MS	(10 * 1000)
#define SUBMIT_LINE_MAX		4096
#define OFFLINE_MAGIC		"posthaste-offline 1"
#define OFFLINE_HEADER_MAX	(64 * 1024)	/* of header, not message */

void
submission_init(struct submission *s)
{
	memset(s, 0, sizeof(*s));
}

void
submission_free(struct submission *s)
{
	size_t	i;

	for (i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	free(s->msg);
	strset_free(s->rcptset);
	submission_init(s);
}

/* 0, 1 when already there (case-insensitively), -1 when out of memory */
int
submission_add_rcpt(struct submission *s, const char *rcpt)
{
	char	**n;
	size_t	  cap;

	/* a set, not a scan: sendmail -t with 100 000 recipients */
	if (s->rcptset == NULL &&
	    (s->rcptset = strset_new(STRSET_ICASE)) == NULL)
		return -1;
	if (strset_has(s->rcptset, rcpt, strlen(rcpt)))
		return 1;
	if (s->nrcpts >= SUBMIT_RCPT_MAX) {
		errno = E2BIG;
		return -1;
	}
	if (s->nrcpts == s->rcptcap) {
		cap = s->rcptcap ? s->rcptcap * 2 : 8;
		if ((n = reallocarray(s->rcpts, cap, sizeof(*n))) == NULL)
			return -1;
		s->rcpts = n;
		s->rcptcap = cap;
	}
	if ((s->rcpts[s->nrcpts] = strdup(rcpt)) == NULL)
		return -1;
	if (strset_add_str(s->rcptset, rcpt) == -1) {
		free(s->rcpts[s->nrcpts]);
		return -1;
	}
	s->nrcpts++;
	return 0;
}

/*
 * The control socket
 */

int
submit_connect(const char *sockpath)
{
	struct sockaddr_un	 sun;
	struct ctl_request	 req;
	struct imsgbuf		 ib;
	struct timeval		 tv;
	int			 fd, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sockpath) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, sockpath, strlen(sockpath));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/*
	 * A full listen backlog makes connect() wait; as long as the
	 * send timeout (Linux unix(7)), then EAGAIN: the daemon is as good
	 * as down.  The timeout is cleared again for the session.
	 */
	tv.tv_sec = SUBMIT_GREETING_TIMEOUT_MS / 1000;
	tv.tv_usec = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		goto fail;
	tv.tv_sec = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		goto fail;
	memset(&req, 0, sizeof(req));
	req.cmd = CTL_SUBMIT;
	imsgbuf_init(&ib, fd);
	if (imsg_compose(&ib, IMSG_CTL_REQUEST, 0, -1, &req, sizeof(req)) ==
	    -1 || imsg_flush(&ib) == -1) {
		imsgbuf_clear(&ib);
		goto fail;
	}
	imsgbuf_clear(&ib);
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/*
 * A small blocking SMTP client.  The peer is our own daemon, but its
 * answers are still checked: a reply that is not SMTP ends the session
 * with EX_SOFTWARE rather than being guessed at.
 */
struct smtp_conn {
	int			 fd;
	unsigned char		 rbuf[SUBMIT_LINE_MAX * 2];
	size_t			 rlen;
	unsigned char		 wbuf[65536];
	size_t			 wlen;
	int			 eof;
	int			 ioerr;
	int			 timeout_ms;	/* for the next reply */
	submit_report_fn	 trace;
	/* EHLO keywords */
	int			 has_dsn, has_8bitmime, has_size;
};

static int
conn_flush(struct smtp_conn *c)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < c->wlen) {
		n = send(c->fd, c->wbuf + off, c->wlen - off, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			c->ioerr = errno;
			c->wlen = 0;
			return -1;
		}
		off += (size_t)n;
	}
	c->wlen = 0;
	return 0;
}

static int
conn_write(struct smtp_conn *c, const void *data, size_t len)
{
	const unsigned char	*p = data;
	size_t			 n;

	while (len > 0) {
		if (c->wlen == sizeof(c->wbuf) && conn_flush(c) == -1)
			return -1;
		n = sizeof(c->wbuf) - c->wlen;
		if (n > len)
			n = len;
		memcpy(c->wbuf + c->wlen, p, n);
		c->wlen += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int
conn_command(struct smtp_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
conn_command(struct smtp_conn *c, const char *fmt, ...)
{
	char	line[SUBMIT_LINE_MAX], tline[SUBMIT_LINE_MAX + 8];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		c->ioerr = EMSGSIZE;
		return -1;
	}
	if (c->trace) {
		snprintf(tline, sizeof(tline), ">>> %s", line);
		c->trace(tline);
	}
	memcpy(line + n, "\r\n", 2);
	if (conn_write(c, line, (size_t)n + 2) == -1)
		return -1;
	return conn_flush(c);
}

/* one line without its CRLF into out: 0, or -1 on EOF/error/timeout */
static int
conn_getline(struct smtp_conn *c, char *out, size_t outlen)
{
	struct pollfd	 pfd;
	unsigned char	*nl;
	size_t		 len;
	ssize_t		 n;
	int		 rc;

	for (;;) {
		if ((nl = memchr(c->rbuf, '\n', c->rlen)) != NULL) {
			len = (size_t)(nl - c->rbuf);
			if (len > 0 && c->rbuf[len - 1] == '\r')
				len--;
			if (len >= outlen)
				len = outlen - 1;
			memcpy(out, c->rbuf, len);
			out[len] = '\0';
			len = (size_t)(nl - c->rbuf) + 1;
			memmove(c->rbuf, c->rbuf + len, c->rlen - len);
			c->rlen -= len;
			return 0;
		}
		if (c->rlen == sizeof(c->rbuf)) {
			c->ioerr = EMSGSIZE;
			return -1;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		if ((rc = poll(&pfd, 1, c->timeout_ms)) == -1 &&
		    errno == EINTR)
			continue;
		if (rc == -1) {
			c->ioerr = errno;
			return -1;
		}
		if (rc == 0) {
			c->ioerr = ETIMEDOUT;
			return -1;
		}
		n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen,
		    0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			c->ioerr = errno;
			return -1;
		}
		if (n == 0) {
			c->eof = 1;
			return -1;
		}
		c->rlen += (size_t)n;
	}
}

/*
 * A whole reply: its code (100..599), or -1 when the connection failed
 * (c->eof / c->ioerr) or -2 when the peer does not speak SMTP.  `text'
 * gets the last line, code included.  With `ehlo', the keywords of a
 * 250 reply are recorded.
 */
static int
conn_reply(struct smtp_conn *c, char *text, size_t textlen, int ehlo)
{
	char	line[SUBMIT_LINE_MAX], tline[SUBMIT_LINE_MAX + 8];
	int	code = -1, first = 1;

	for (;;) {
		if (conn_getline(c, line, sizeof(line)) == -1)
			return -1;
		if (c->trace) {
			snprintf(tline, sizeof(tline), "<<< %s", line);
			c->trace(tline);
		}
		if (strlen(line) < 3 || line[0] < '1' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
		    line[2] > '9' || (line[3] != '\0' && line[3] != ' ' &&
		    line[3] != '-'))
			return -2;
		if (first)
			code = atoi(line);
		else if (atoi(line) != code)
			return -2;
		if (ehlo && !first) {
			if (strncasecmp(line + 4, "DSN", 3) == 0 &&
			    (line[7] == '\0' || line[7] == ' '))
				c->has_dsn = 1;
			else if (strncasecmp(line + 4, "8BITMIME", 8) == 0)
				c->has_8bitmime = 1;
			else if (strncasecmp(line + 4, "SIZE", 4) == 0)
				c->has_size = 1;
		}
		first = 0;
		if (line[3] != '-') {
			snprintf(text, textlen, "%s", line);
			return code;
		}
	}
}

/*
 * Before the greeting, the control process may answer the request
 * itself (refused, or a temporary failure) with an IMSG_CTL_REPLY
 * instead of passing the socket on.  Binary data where "220" should be
 * is that reply.
 */
static int
conn_ctl_refusal(struct smtp_conn *c, char *text, size_t textlen,
    uint32_t *status)
{
	struct pollfd		pfd;
	struct imsg_hdr		hdr;
	struct ctl_reply	r;
	ssize_t			n;
	int			rc;

	pfd.fd = c->fd;
	pfd.events = POLLIN;
	while (c->rlen < sizeof(hdr) + sizeof(r)) {
		if ((rc = poll(&pfd, 1, c->timeout_ms)) == -1 &&
		    errno == EINTR)
			continue;
		if (rc <= 0)
			return -1;
		n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen,
		    0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		c->rlen += (size_t)n;
	}
	if (c->rlen < sizeof(hdr) + sizeof(r))
		return -1;
	memcpy(&hdr, c->rbuf, sizeof(hdr));
	if (hdr.type != IMSG_CTL_REPLY || hdr.len != sizeof(r))
		return -1;
	memcpy(&r, c->rbuf + sizeof(hdr), sizeof(r));
	r.text[sizeof(r.text) - 1] = '\0';
	snprintf(text, textlen, "%s", r.text[0] ? r.text : "refused");
	*status = r.status;
	return 0;
}

/* the data, CRLF line ends, dot-stuffed (RFC 5321 4.5.2), final dot */
static int
conn_send_data(struct smtp_conn *c, const char *msg, size_t len)
{
	const char	*p = msg, *end = msg + len, *nl;
	size_t		 n;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (*p == '.' && conn_write(c, ".", 1) == -1)
			return -1;
		if (conn_write(c, p, n) == -1 || conn_write(c, "\r\n", 2) == -1)
			return -1;
		p += n + (nl ? 1 : 0);
	}
	if (conn_write(c, ".\r\n", 3) == -1)
		return -1;
	if (c->trace)
		c->trace(">>> (message) .");
	return conn_flush(c);
}

static void
result_set(struct submit_result *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
result_set(struct submit_result *res, int status, const char *fmt, ...)
{
	va_list	ap;

	res->status = status;
	if (res->error[0] != '\0')
		return;		/* keep the first error */
	va_start(ap, fmt);
	vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
}

static void
result_conn_failed(struct submit_result *res, struct smtp_conn *c, int rc,
    const char *when)
{
	if (rc == -2)
		result_set(res, EX_SOFTWARE, "malformed reply from the mail "
		    "daemon %s", when);
	else if (c->eof)
		result_set(res, EX_TEMPFAIL, "the mail daemon closed the "
		    "connection %s", when);
	else
		result_set(res, c->ioerr == ETIMEDOUT ? EX_TEMPFAIL : EX_IOERR,
		    "connection to the mail daemon %s: %s", when,
		    strerror(c->ioerr));
}

static int
status_of(int code, int permanent)
{
	return code >= 500 ? permanent : EX_TEMPFAIL;
}

void
submit_message(int fd, const struct submission *s, submit_report_fn report,
    submit_report_fn trace, struct submit_result *res)
{
	struct smtp_conn	*c;
	char			 text[SUBMIT_LINE_MAX], params[512];
	char			 xenvid[SUBMIT_ENVID_MAX * 3 + 1];
	char			 msg[SUBMIT_LINE_MAX + 64], *p;
	size_t			 i, accepted = 0, rejected = 0;
	uint32_t		 ctlstatus;
	int			 code, dsn_warned = 0;

	memset(res, 0, sizeof(*res));
	res->status = EX_OK;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		result_set(res, EX_OSERR, "out of memory");
		return;
	}
	c->fd = fd;
	c->trace = trace;

	/*
	 * A daemon that does not greet us soon is as good as down (stopped,
	 * or its control socket held by others): the caller leaves the
	 * message offline rather than making the user wait.
	 */
	c->timeout_ms = SUBMIT_GREETING_TIMEOUT_MS;
	if ((code = conn_reply(c, text, sizeof(text), 0)) == -2) {
		if (conn_ctl_refusal(c, text, sizeof(text), &ctlstatus) == -1)
			result_conn_failed(res, c, -2, "at its greeting");
		else if (ctlstatus == CTL_STATUS_BUSY) {
			/* not served at all: as if not reached */
			result_set(res, EX_TEMPFAIL, "the mail daemon is busy: "
			    "%s", text);
		} else {
			res->reached = 1;
			result_set(res, strstr(text, "temporar") ?
			    EX_TEMPFAIL : EX_UNAVAILABLE,
			    "the mail daemon refused the submission: %s",
			    text);
		}
		goto done;
	}
	if (code == -1) {
		/* not reached: the caller may leave the message offline */
		result_conn_failed(res, c, code, "before its greeting");
		goto done;
	}
	res->reached = 1;
	c->timeout_ms = SUBMIT_TIMEOUT_MS;
	if (code != 220) {
		result_set(res, status_of(code, EX_UNAVAILABLE),
		    "the mail daemon refused the session: %s", text);
		goto quit;
	}
	if (conn_command(c, "EHLO localhost") == -1 ||
	    (code = conn_reply(c, text, sizeof(text), 1)) < 0) {
		result_conn_failed(res, c, code, "after EHLO");
		goto done;
	}
	if (code != 250) {
		if (conn_command(c, "HELO localhost") == -1 ||
		    (code = conn_reply(c, text, sizeof(text), 0)) < 0) {
			result_conn_failed(res, c, code, "after HELO");
			goto done;
		}
		if (code != 250) {
			result_set(res, status_of(code, EX_UNAVAILABLE),
			    "HELO refused: %s", text);
			goto quit;
		}
	}

	params[0] = '\0';
	p = params;
	if (s->eightbit && c->has_8bitmime)
		p += snprintf(p, sizeof(params) - (size_t)(p - params),
		    " BODY=8BITMIME");
	if (c->has_size)
		p += snprintf(p, sizeof(params) - (size_t)(p - params),
		    " SIZE=%zu", s->msglen);
	if ((s->ret[0] || s->envid[0] || s->notify[0]) && !c->has_dsn) {
		if (report)
			report("warning: the mail daemon does not offer DSN; "
			    "-N, -R and -V are ignored");
		dsn_warned = 1;
	}
	if (!dsn_warned && s->ret[0])
		p += snprintf(p, sizeof(params) - (size_t)(p - params),
		    " RET=%s", s->ret);
	if (!dsn_warned && s->envid[0]) {
		if (xtext_encode(s->envid, xenvid, sizeof(xenvid)) < 0) {
			result_set(res, EX_USAGE, "invalid envelope id");
			goto quit;
		}
		snprintf(p, sizeof(params) - (size_t)(p - params),
		    " ENVID=%s", xenvid);
	}
	if (conn_command(c, "MAIL FROM:<%s>%s", s->sender, params) == -1 ||
	    (code = conn_reply(c, text, sizeof(text), 0)) < 0) {
		result_conn_failed(res, c, code, "after MAIL FROM");
		goto done;
	}
	if (code != 250) {
		result_set(res, status_of(code, EX_UNAVAILABLE),
		    "sender <%s> refused: %s", s->sender, text);
		goto quit;
	}

	for (i = 0; i < s->nrcpts; i++) {
		if (conn_command(c, "RCPT TO:<%s>%s%s", s->rcpts[i],
		    !dsn_warned && s->notify[0] ? " NOTIFY=" : "",
		    !dsn_warned ? s->notify : "") == -1 ||
		    (code = conn_reply(c, text, sizeof(text), 0)) < 0) {
			result_conn_failed(res, c, code, "after RCPT TO");
			goto done;
		}
		if (code == 250 || code == 251) {
			accepted++;
			continue;
		}
		snprintf(msg, sizeof(msg), "<%s>: %s", s->rcpts[i], text);
		if (report)
			report(msg);
		if (code < 500) {
			/*
			 * A temporary failure for one recipient fails the
			 * whole message: sending it to the others only would
			 * leave the user to work out who still needs it.
			 */
			result_set(res, EX_TEMPFAIL, "recipient %s", msg);
			goto rset;
		}
		rejected++;
		result_set(res, EX_NOUSER, "recipient %s", msg);
	}
	if (accepted == 0)
		goto rset;

	if (conn_command(c, "DATA") == -1 ||
	    (code = conn_reply(c, text, sizeof(text), 0)) < 0) {
		result_conn_failed(res, c, code, "after DATA");
		goto done;
	}
	if (code != 354) {
		result_set(res, status_of(code, EX_DATAERR),
		    "message refused: %s", text);
		goto rset;
	}
	if (conn_send_data(c, s->msg, s->msglen) == -1 ||
	    (code = conn_reply(c, text, sizeof(text), 0)) < 0) {
		result_conn_failed(res, c, code, "after the message");
		goto done;
	}
	if (code != 250) {
		res->status = EX_OK;	/* a recipient error is moot now */
		res->error[0] = '\0';
		result_set(res, status_of(code, EX_DATAERR),
		    "message refused: %s", text);
		goto quit;
	}
	res->queued = 1;
	if ((p = strstr(text, "queued as ")) != NULL)
		snprintf(res->queueid, sizeof(res->queueid), "%.*s",
		    (int)strcspn(p + 10, " \t"), p + 10);
	res->status = rejected ? EX_NOUSER : EX_OK;
	goto quit;

rset:
	if (conn_command(c, "RSET") == 0)
		(void)conn_reply(c, text, sizeof(text), 0);
quit:
	if (conn_command(c, "QUIT") == 0)
		(void)conn_reply(c, text, sizeof(text), 0);
done:
	close(c->fd);
	free(c);
}

/*
 * The offline directory
 */


/* printable ASCII, no CR/LF: safe as one line of the offline header */
static int
line_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static int
offline_header(const struct submission *s, char **out, size_t *outlen)
{
	FILE	*fp;
	size_t	 i;
	int	 rc;

	if ((fp = open_memstream(out, outlen)) == NULL)
		return -1;
	fprintf(fp, "%s\nsender %s\n", OFFLINE_MAGIC, s->sender);
	for (i = 0; i < s->nrcpts; i++)
		fprintf(fp, "rcpt %s\n", s->rcpts[i]);
	if (s->notify[0])
		fprintf(fp, "notify %s\n", s->notify);
	if (s->ret[0])
		fprintf(fp, "ret %s\n", s->ret);
	if (s->envid[0])
		fprintf(fp, "envid %s\n", s->envid);
	if (s->eightbit)
		fprintf(fp, "8bit 1\n");
	fprintf(fp, "size %zu\n\n", s->msglen);
	rc = ferror(fp) ? -1 : 0;
	if (fclose(fp) == EOF)
		rc = -1;
	if (rc == -1) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

int
submit_offline_write(const char *spool, const struct submission *s,
    char *err, size_t errlen)
{
	char		 dir[1100], path[1200], *hdr = NULL;
	unsigned char	 rnd[6];
	size_t		 hdrlen = 0, i;
	int		 fd, dfd, saved;

	if (!line_safe(s->sender) || !line_safe(s->notify) ||
	    !line_safe(s->ret) || !line_safe(s->envid)) {
		snprintf(err, errlen, "unsafe envelope text");
		return -1;
	}
	for (i = 0; i < s->nrcpts; i++)
		if (!line_safe(s->rcpts[i])) {
			snprintf(err, errlen, "unsafe recipient");
			return -1;
		}
	snprintf(dir, sizeof(dir), "%s/%s", spool, SUBMIT_OFFLINE_DIR);
	if (getentropy(rnd, sizeof(rnd)) == -1) {
		snprintf(err, errlen, "getentropy: %s", strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%lld.%ld.%02x%02x%02x%02x%02x%02x",
	    dir, (long long)time(NULL), (long)getpid(), rnd[0], rnd[1],
	    rnd[2], rnd[3], rnd[4], rnd[5]);
	/*
	 * The directory is world-writable and sticky, like /tmp: create
	 * exclusively, never follow a link someone planted, private mode.
	 */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (offline_header(s, &hdr, &hdrlen) == -1 ||
	    write_full(fd, hdr, hdrlen) == -1 ||
	    write_full(fd, s->msg, s->msglen) == -1 ||
	    write_full(fd, "end\n", 4) == -1 || fsync(fd) == -1) {
		saved = errno;
		free(hdr);
		close(fd);
		unlink(path);
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
		return -1;
	}
	free(hdr);
	if (close(fd) == -1) {
		saved = errno;
		unlink(path);
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
		return -1;
	}
	/* the name too must survive a crash: we report success next */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

static int
read_whole(int fd, size_t maxsize, char **out, size_t *outlen)
{
	char	*buf = NULL, *n;
	size_t	 len = 0, cap = 0;
	ssize_t	 r;

	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			if ((n = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				return -1;
			}
			buf = n;
		}
		if ((r = read(fd, buf + len, cap - len)) == -1) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > maxsize) {
			free(buf);
			errno = EFBIG;
			return -1;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

int
submit_offline_read(int fd, size_t maxsize, struct submission *s,
    char *err, size_t errlen)
{
	struct mailaddr	 addr;
	char		*buf, *p, *nl, *key, *val, *end;
	size_t		 len, size = 0;
	int		 have_size = 0, have_sender = 0;
	unsigned long long v;

	submission_init(s);
	if (read_whole(fd, maxsize + OFFLINE_HEADER_MAX, &buf, &len) == -1) {
		snprintf(err, errlen, "read: %s", strerror(errno));
		return -1;
	}
	p = buf;
	if ((nl = memchr(p, '\n', len)) == NULL ||
	    (size_t)(nl - p) != strlen(OFFLINE_MAGIC) ||
	    memcmp(p, OFFLINE_MAGIC, strlen(OFFLINE_MAGIC)) != 0) {
		free(buf);
		snprintf(err, errlen, "not an offline message");
		return nl == NULL ? 1 : -1;
	}
	p = nl + 1;
	for (;;) {
		if ((nl = memchr(p, '\n', len - (size_t)(p - buf))) == NULL)
			goto incomplete;
		*nl = '\0';
		if (*p == '\0') {
			p = nl + 1;
			break;
		}
		key = p;
		if ((val = strchr(p, ' ')) == NULL)
			goto malformed;
		*val++ = '\0';
		p = nl + 1;
		if (!line_safe(val))
			goto malformed;
		if (strcmp(key, "sender") == 0 && !have_sender) {
			if (val[0] && addr_parse_mailbox(val, &addr,
			    ADDR_ALLOW_UTF8) != ADDR_OK)
				goto malformed;
			snprintf(s->sender, sizeof(s->sender), "%s", val);
			have_sender = 1;
		} else if (strcmp(key, "rcpt") == 0) {
			if (addr_parse_mailbox(val, &addr, ADDR_ALLOW_UTF8) !=
			    ADDR_OK || submission_add_rcpt(s, val) == -1)
				goto malformed;
		} else if (strcmp(key, "notify") == 0 &&
		    strlen(val) < sizeof(s->notify))
			memcpy(s->notify, val, strlen(val) + 1);
		else if (strcmp(key, "ret") == 0 && (strcmp(val, "FULL") == 0 ||
		    strcmp(val, "HDRS") == 0))
			memcpy(s->ret, val, strlen(val) + 1);
		else if (strcmp(key, "envid") == 0 &&
		    strlen(val) < sizeof(s->envid))
			memcpy(s->envid, val, strlen(val) + 1);
		else if (strcmp(key, "8bit") == 0)
			s->eightbit = 1;
		else if (strcmp(key, "size") == 0 && !have_size) {
			errno = 0;
			v = strtoull(val, &end, 10);
			if (errno || *end || val[0] < '0' || val[0] > '9' ||
			    v > maxsize)
				goto malformed;
			size = (size_t)v;
			have_size = 1;
		} else
			goto malformed;
	}
	if (!have_size || !have_sender || s->nrcpts == 0)
		goto malformed;
	/* exactly the message, then the end marker, then nothing */
	if (len - (size_t)(p - buf) < size + 4)
		goto incomplete;
	if (len - (size_t)(p - buf) != size + 4 ||
	    memcmp(p + size, "end\n", 4) != 0)
		goto malformed;
	if ((s->msg = malloc(size + 1)) == NULL) {
		free(buf);
		submission_free(s);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(s->msg, p, size);
	s->msg[size] = '\0';
	s->msglen = size;
	free(buf);
	return 0;
incomplete:
	free(buf);
	submission_free(s);
	snprintf(err, errlen, "incomplete");
	return 1;
malformed:
	free(buf);
	submission_free(s);
	snprintf(err, errlen, "malformed");
	return -1;
}

/*
 * ~/dead.letter, in mbox (mboxrd) form so that several failed messages
 * stay apart and any mail reader can open it.
 */
int
submit_dead_letter(const struct submission *s, char *err, size_t errlen)
{
	struct passwd	*pw;
	struct stat	 st;
	char		 path[1100], date[64];
	const char	*p, *end, *nl, *q;
	FILE		*fp;
	time_t		 now = time(NULL);
	int		 fd;

	if ((pw = getpwuid(getuid())) == NULL || pw->pw_dir == NULL ||
	    pw->pw_dir[0] != '/') {
		snprintf(err, errlen, "no home directory");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/dead.letter", pw->pw_dir);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != getuid()) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file of yours", path);
		return -1;
	}
	if ((fp = fdopen(fd, "a")) == NULL) {
		close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", localtime(&now));
	fprintf(fp, "From %s %s\n", s->sender[0] ? s->sender :
	    "MAILER-DAEMON", date);
	for (p = s->msg, end = s->msg + s->msglen; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		for (q = p; q < nl && *q == '>'; q++)
			;
		if (nl - q >= 5 && memcmp(q, "From ", 5) == 0)
			fputc('>', fp);
		fwrite(p, 1, (size_t)(nl - p), fp);
		fputc('\n', fp);
	}
	fputc('\n', fp);
	if (fflush(fp) == EOF || ferror(fp) || fsync(fileno(fp)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		fclose(fp);
		return -1;
	}
	if (fclose(fp) == EOF) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
