/*
 * mda_lmtp.c -- delivery over LMTP (RFC 2033) for `lmtp "/socket"' and
 * `lmtp "host:port"' actions.
 *
 * This runs in one kind of pooled delivery process of mda.c: not the
 * recipient user (the LMTP server writes the mailbox as the user, which
 * is the point of LMTP) but the unprivileged daemon user, in the mta's
 * sandbox (sockets, no files, no exec).  The process keeps one
 * connection per destination open between messages and reuses it (RSET
 * only after a failed transaction); a cached connection that the server
 * closed meanwhile is opened again once.  Destinations named by host
 * are resolved when the process starts, before its sandbox.
 *
 * The process serves one delivery at a time with blocking I/O bounded
 * by poll() timeouts, like the rest of the delivery processes; each
 * transaction has one recipient, so its one reply after the data is
 * that recipient's result (RFC 2033 4.2).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mda.h"
#include "mda_proc.h"
#include "mta_reply.h"
#include "proto.h"
#include "proc.h"
#include "util.h"

#define LMTP_MAX_DEST		16
#define LMTP_TIMEOUT		300	/* seconds per reply */
#define LMTP_CONNECT_TIMEOUT	30

struct lmtp_dest {
	char			 name[CONF_PATH_MAX];	/* as configured */
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 resolved;
	int			 fd;
	uint32_t		 ext;
	int			 need_rset;
	char			 rbuf[MTA_LINE_MAX * 2];
	size_t			 rlen;
};

static struct lmtp_dest	dests[LMTP_MAX_DEST];
static size_t		ndests;


/* "/path" or "host:port" (host a name, an address, or [IPv6]) */
static int
lmtp_resolve(struct lmtp_dest *d)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)&d->ss;
	struct addrinfo		 hints, *res;
	char			 host[CONF_PATH_MAX], *colon, *h = host;

	memset(&d->ss, 0, sizeof(d->ss));
	if (d->name[0] == '/') {
		if (strlen(d->name) >= sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, d->name, strlen(d->name) + 1);
		d->sslen = sizeof(*sun);
		return 0;
	}
	snprintf(host, sizeof(host), "%s", d->name);
	if ((colon = strrchr(host, ':')) == NULL)
		return -1;
	*colon = '\0';
	if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
		colon[-1] = '\0';
		h = host + 1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(h, colon + 1, &hints, &res) != 0)
		return -1;
	memcpy(&d->ss, res->ai_addr, res->ai_addrlen);
	d->sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

void
mda_lmtp_init(void)
{
	struct action	*a;
	struct lmtp_dest *d;

	TAILQ_FOREACH(a, &conf->actions, entry) {
		if (a->type != ACTION_LMTP || ndests == LMTP_MAX_DEST)
			continue;
		d = &dests[ndests++];
		memset(d, 0, sizeof(*d));
		d->fd = -1;
		snprintf(d->name, sizeof(d->name), "%s", a->path);
		if (lmtp_resolve(d) == 0)
			d->resolved = 1;
		else
			log_warnx("lmtp destination %s of action %s does not "
			    "resolve", a->path, a->name);
	}
}

static void
lmtp_close(struct lmtp_dest *d)
{
	if (d->fd != -1)
		close(d->fd);
	d->fd = -1;
	d->rlen = 0;
	d->need_rset = 0;
}

static int
wait_fd(int fd, short events, int secs)
{
	struct pollfd	pfd = { fd, events, 0 };
	int		rc;

	do {
		rc = poll(&pfd, 1, secs * 1000);
	} while (rc == -1 && errno == EINTR);
	return rc == 1 ? 0 : -1;
}

static int
lmtp_write(struct lmtp_dest *d, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if (wait_fd(d->fd, POLLOUT, LMTP_TIMEOUT) == -1)
			return -1;
		w = send(d->fd, p, n, MSG_NOSIGNAL);
		if (w == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
lmtp_cmd(struct lmtp_dest *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
lmtp_cmd(struct lmtp_dest *d, const char *fmt, ...)
{
	char	line[CONF_PATH_MAX * 2];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return -1;
	memcpy(line + n, "\r\n", 2);
	return lmtp_write(d, line, (size_t)n + 2);
}

/* one whole reply; -1 on a broken connection or a malformed reply */
static int
lmtp_reply(struct lmtp_dest *d, struct mta_reply *r)
{
	char	*nl;
	size_t	 n;
	ssize_t	 got;
	int	 rc;

	mta_reply_init(r);
	for (;;) {
		while ((nl = memchr(d->rbuf, '\n', d->rlen)) != NULL) {
			n = (size_t)(nl - d->rbuf);
			if (n > 0 && d->rbuf[n - 1] == '\r')
				n--;
			rc = mta_reply_line(r, d->rbuf, n);
			d->rlen -= (size_t)(nl + 1 - d->rbuf);
			memmove(d->rbuf, nl + 1, d->rlen);
			if (rc == MTA_REPLY_BAD)
				return -1;
			if (rc == MTA_REPLY_DONE)
				return 0;
		}
		if (d->rlen == sizeof(d->rbuf))
			return -1;	/* a line longer than any reply line */
		if (wait_fd(d->fd, POLLIN, LMTP_TIMEOUT) == -1)
			return -1;
		got = recv(d->fd, d->rbuf + d->rlen, sizeof(d->rbuf) - d->rlen,
		    0);
		if (got == -1 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		d->rlen += (size_t)got;
	}
}

static int
lmtp_connect(struct lmtp_dest *d, char *err, size_t errlen)
{
	struct mta_reply	r;
	uint64_t		size;
	int			fl, soerr = 0;
	socklen_t		sl = sizeof(soerr);

	if ((d->fd = socket(d->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1) {
		textf(err, errlen, "4.4.0 lmtp %s: socket: %s", d->name,
		    strerror(errno));
		return -1;
	}
	if (connect(d->fd, (struct sockaddr *)&d->ss, d->sslen) == -1 &&
	    errno != EINPROGRESS) {
		textf(err, errlen, "4.4.1 lmtp %s: connect: %s", d->name,
		    strerror(errno));
		lmtp_close(d);
		return -1;
	}
	if (wait_fd(d->fd, POLLOUT, LMTP_CONNECT_TIMEOUT) == -1 ||
	    getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1 ||
	    soerr != 0) {
		textf(err, errlen, "4.4.1 lmtp %s: connect: %s", d->name,
		    soerr ? strerror(soerr) : "timed out");
		lmtp_close(d);
		return -1;
	}
	(void)fl;
	if (lmtp_reply(d, &r) == -1 || r.code != 220) {
		textf(err, errlen, "4.4.2 lmtp %s: no greeting", d->name);
		lmtp_close(d);
		return -1;
	}
	if (lmtp_cmd(d, "LHLO %s", conf->hostname) == -1 ||
	    lmtp_reply(d, &r) == -1 || r.code != 250) {
		textf(err, errlen, "4.4.2 lmtp %s: LHLO refused", d->name);
		lmtp_close(d);
		return -1;
	}
	d->ext = mta_reply_extensions(&r, &size);
	return 0;
}

/* the message: LF to CRLF, leading dots doubled, ".\r\n" at the end */
static int
lmtp_send_body(struct lmtp_dest *d, const struct spool_msg *msg)
{
	static char	in[32768], out[32768 * 2 + 8];
	off_t		off = 0;
	ssize_t		n, i;
	size_t		o;
	int		bol = 1;

	for (;;) {
		n = spool_msg_pread(msg, in, sizeof(in), off);
		if (n == -1)
			return -2;
		if (n == 0)
			break;
		for (i = 0, o = 0; i < n; i++) {
			if (bol && in[i] == '.')
				out[o++] = '.';
			if (in[i] == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				bol = 1;
			} else {
				out[o++] = in[i];
				bol = 0;
			}
		}
		if (lmtp_write(d, out, o) == -1)
			return -1;
		off += n;
	}
	return lmtp_write(d, bol ? ".\r\n" : "\r\n.\r\n", bol ? 3 : 5);
}

static struct lmtp_dest *
lmtp_dest_find(const char *name)
{
	size_t	i;

	for (i = 0; i < ndests; i++)
		if (strcmp(dests[i].name, name) == 0)
			return &dests[i];
	return NULL;
}

/*
 * One transaction.  Returns 1 when the connection broke before the
 * server answered anything of it (the caller may try a fresh one), else
 * 0 with the outcome in res.
 */
static int
lmtp_transaction(struct lmtp_dest *d, const struct envelope *evp,
    const struct spool_msg *msg, struct delivery_result *res)
{
	struct mta_reply	 r;
	char			 sender[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 dsn[16], line[ENV_TEXT_MAX];
	const char		*what;
	int			 rc;

	addr_to_string(&evp->sender, sender, sizeof(sender));
	addr_to_string(&evp->dest, rcpt, sizeof(rcpt));
	if (d->need_rset) {
		if (lmtp_cmd(d, "RSET") == -1 || lmtp_reply(d, &r) == -1)
			return 1;
		d->need_rset = 0;
	}
	what = "MAIL FROM";
	if (lmtp_cmd(d, "MAIL FROM:<%s>%s%s", sender,
	    (evp->flags & EF_8BITMIME) && (d->ext & MTA_EXT_8BITMIME) ?
	    " BODY=8BITMIME" : "",
	    (evp->flags & EF_SMTPUTF8) && (d->ext & MTA_EXT_SMTPUTF8) ?
	    " SMTPUTF8" : "") == -1 || lmtp_reply(d, &r) == -1)
		return 1;
	if (r.code / 100 != 2)
		goto refused;
	what = "RCPT TO";
	if (lmtp_cmd(d, "RCPT TO:<%s>", rcpt) == -1 ||
	    lmtp_reply(d, &r) == -1)
		goto broken;
	if (r.code / 100 != 2)
		goto refused;
	what = "DATA";
	if (lmtp_cmd(d, "DATA") == -1 || lmtp_reply(d, &r) == -1)
		goto broken;
	if (r.code != 354)
		goto refused;
	what = "end of DATA";
	if ((rc = lmtp_send_body(d, msg)) == -2) {
		lmtp_close(d);	/* mid-data: this connection is lost */
		res->status = PROTO_TEMPFAIL;
		textf(res->text, sizeof(res->text),
		    "4.3.0 cannot read the queued message");
		return 0;
	}
	if (rc == -1 || lmtp_reply(d, &r) == -1)
		goto broken;
	if (r.code / 100 != 2)
		goto refused;
	mta_reply_status(&r, dsn, sizeof(dsn));
	mta_reply_oneline(&r, line, sizeof(line));
	res->status = PROTO_OK;
	textf(res->text, sizeof(res->text), "%s %s", dsn, line);
	return 0;
refused:
	d->need_rset = 1;
	mta_reply_status(&r, dsn, sizeof(dsn));
	mta_reply_oneline(&r, line, sizeof(line));
	res->status = r.code >= 500 ? PROTO_PERMFAIL : PROTO_TEMPFAIL;
	textf(res->text, sizeof(res->text), "%s lmtp %s said: %s (in reply "
	    "to %s command)", r.code >= 500 ? dsn : (dsn[0] == '4' ? dsn :
	    "4.0.0"), d->name, line, what);
	return 0;
broken:
	lmtp_close(d);
	res->status = PROTO_TEMPFAIL;
	textf(res->text, sizeof(res->text), "4.4.2 lmtp %s: connection lost "
	    "or malformed reply (in reply to %s command)", d->name, what);
	return 0;
}

void
mda_lmtp_deliver(const char *name, const struct envelope *evp, int msgfd,
    struct delivery_result *res)
{
	struct lmtp_dest	*d;
	struct spool_msg	 msg;
	char			 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	int			 tries, cached;

	snprintf(res->relay, sizeof(res->relay), "lmtp %.200s", name);
	if ((d = lmtp_dest_find(name)) == NULL || !d->resolved) {
		res->status = PROTO_TEMPFAIL;
		textf(res->text, sizeof(res->text), "4.3.5 lmtp destination "
		    "%s is not usable (see the log at start-up)", name);
		return;
	}
	addr_to_string(&evp->dest, rcpt, sizeof(rcpt));
	spool_msg_set(&msg, msgfd, evp);
	if (mda_delivered_to_loop(&msg, rcpt)) {
		res->status = PROTO_PERMFAIL;
		textf(res->text, sizeof(res->text), "5.4.6 mail forwarding "
		    "loop for %s (Delivered-To already present)", rcpt);
		return;
	}
	for (tries = 0; tries < 2; tries++) {
		cached = d->fd != -1;
		if (!cached && lmtp_connect(d, res->text,
		    sizeof(res->text)) == -1) {
			res->status = PROTO_TEMPFAIL;
			return;
		}
		if (lmtp_transaction(d, evp, &msg, res) == 0)
			return;
		lmtp_close(d);
		if (!cached)
			break;	/* a fresh connection failed: no second go */
	}
	res->status = PROTO_TEMPFAIL;
	textf(res->text, sizeof(res->text), "4.4.2 lmtp %s: connection lost",
	    name);
}
