/*
 * report_mail.c -- the queue's reports (DMARC aggregate reports,
 * TLS-RPT reports) as mail: the message text's parts (base64, a quoted
 * name, the date) and its way through the normal path -- lookup resolves
 * the recipient, the queue writes and commits the message like a DSN.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "addr.h"
#include "log.h"
#include "queue.h"
#include "queue_int.h"
#include "proc.h"
#include "util.h"

#define SEND_MAX_DESTS		16

/* one report message, waiting for lookup to resolve its recipient */
struct report {
	TAILQ_ENTRY(report)	 entry;
	uint32_t		 reqid;
	const char		*what;		/* "DMARC", "TLS-RPT": logs */
	struct mailaddr		 sender;
	struct mailaddr		 rcpt;
	char			 policy_domain[256];
	char			*text;
	size_t			 len;
	struct lka_dest		 dests[SEND_MAX_DESTS];
	size_t			 ndests;
};

static TAILQ_HEAD(, report) reports = TAILQ_HEAD_INITIALIZER(reports);
static uint32_t		 next_reqid;

void
report_mail_date(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* RFC 2045 base64, lines of 76 */
void
report_mail_base64(struct evbuffer *out, const unsigned char *p, size_t len)
{
	static const char	 b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char			 line[80];
	size_t			 i, n = 0;
	uint32_t		 v;

	for (i = 0; i < len; i += 3) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		line[n++] = b64[(v >> 18) & 63];
		line[n++] = b64[(v >> 12) & 63];
		line[n++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		line[n++] = i + 2 < len ? b64[v & 63] : '=';
		if (n == 76) {
			line[n++] = '\n';
			evbuffer_add(out, line, n);
			n = 0;
		}
	}
	if (n > 0) {
		line[n++] = '\n';
		evbuffer_add(out, line, n);
	}
}

/* a quoted-string of printable ASCII (the org name, from the config) */
void
report_mail_quoted(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, "\"", 1);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			evbuffer_add(out, "\\", 1);
		evbuffer_add(out, s, 1);
	}
	evbuffer_add(out, "\"", 1);
}

/*
 * The whole message, To: rcpt: the text before and after the place of
 * the To: header is the same for each rua of a domain, so it is built
 * once (head and body) and joined here.
 */
char *
report_mail_join(const char *head, const char *rcpt, const char *body,
    size_t *len)
{
	size_t	 hl = strlen(head), rl = strlen(rcpt), bl = strlen(body);
	char	*m;

	*len = hl + 5 + rl + 2 + bl;
	if ((m = malloc(*len + 1)) == NULL)
		return NULL;
	memcpy(m, head, hl);
	memcpy(m + hl, "To: <", 5);
	memcpy(m + hl + 5, rcpt, rl);
	memcpy(m + hl + 5 + rl, ">\n", 2);
	memcpy(m + hl + 5 + rl + 2, body, bl);
	m[*len] = '\0';
	return m;
}

int
report_mail_finish(struct evbuffer *h, struct evbuffer *b,
    const char *boundary, const unsigned char *gz, size_t gzlen,
    char **head, char **body)
{
	report_mail_base64(b, gz, gzlen);
	evbuffer_add_printf(b, "\n--%s--\n", boundary);
	*body = NULL;
	if ((*head = report_mail_text(h)) == NULL)
		return -1;
	if ((*body = report_mail_text(b)) == NULL) {
		free(*head);
		*head = NULL;
		return -1;
	}
	return 0;
}

char *
report_mail_text(struct evbuffer *b)
{
	size_t	 n = evbuffer_get_length(b);
	char	*s;

	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	if (evbuffer_remove(b, s, n) != (int)n) {
		free(s);
		return NULL;
	}
	s[n] = '\0';
	return s;
}

static void
report_free(struct report *r)
{
	free(r->text);
	free(r);
}

/*
 * One report message (text taken: freed here, whatever happens) from
 * sender to rcpt: lookup resolves the recipient, then
 * report_mail_lookup_result() queues it.  0, or -1 (logged).
 */
int
report_mail_send(const char *what, const char *policy_domain,
    const char *sender, const char *rcpt, char *text, size_t len)
{
	struct lka_rcpt_req	 req;
	struct report		*r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warn("%s: report for %s", what, policy_domain);
		free(text);
		return -1;
	}
	r->what = what;
	r->text = text;
	r->len = len;
	snprintf(r->policy_domain, sizeof(r->policy_domain), "%s",
	    policy_domain);
	if (addr_parse_mailbox(sender, &r->sender, 0) != 0 ||
	    addr_parse_mailbox(rcpt, &r->rcpt, 0) != 0) {
		log_warnx("%s: report for %s from %s to %s: not an address",
		    what, policy_domain, sender, rcpt);
		report_free(r);
		return -1;
	}
	r->reqid = REPORT_MAIL_REQID | (++next_reqid & ~REPORT_MAIL_REQID);
	TAILQ_INSERT_TAIL(&reports, r, entry);
	memset(&req, 0, sizeof(req));
	req.reqid = r->reqid;
	req.flags = SF_LOCAL;		/* from the local system */
	snprintf(req.helo, sizeof(req.helo), "%s", conf->hostname);
	req.mailfrom = r->sender;
	req.rcpt = r->rcpt;
	queue_lookup_request(&req);
	return 0;
}

static struct report *
report_find(uint32_t reqid)
{
	struct report	*r;

	TAILQ_FOREACH(r, &reports, entry)
		if (r->reqid == reqid)
			return r;
	return NULL;
}

void
report_mail_lookup_dest(const struct lka_dest *d)
{
	struct report	*r;

	if ((r = report_find(d->reqid)) == NULL)
		fatalx("lookup answered an unknown report request");
	if (r->ndests < SEND_MAX_DESTS)
		r->dests[r->ndests++] = *d;
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return fsync(fd);
}

void
report_mail_lookup_result(const struct lka_result *res)
{
	struct envelope	 evps[SEND_MAX_DESTS];
	struct report	*r;
	uint32_t	 msgid;
	size_t		 i;
	int		 fd;
	char		 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];

	if ((r = report_find(res->reqid)) == NULL)
		fatalx("lookup answered an unknown report request");
	TAILQ_REMOVE(&reports, r, entry);
	addr_to_string(&r->rcpt, rcpt, sizeof(rcpt));
	if (res->status != PROTO_OK || r->ndests == 0) {
		log_warnx("%s report for %s to %s refused: %s",
		    r->what, r->policy_domain, rcpt, res->reply);
		goto done;
	}
	if (queue_message_create(&msgid, &fd) == -1) {
		log_warnx("%s: cannot create the report for %s",
		    r->what, r->policy_domain);
		goto done;
	}
	if (write_all(fd, r->text, r->len) == -1) {
		log_warn("%s: writing the report for %s", r->what,
		    r->policy_domain);
		close(fd);
		queue_message_abort(msgid);
		goto done;
	}
	close(fd);
	memset(evps, 0, sizeof(evps));
	for (i = 0; i < r->ndests; i++) {
		struct envelope *n = &evps[i];

		queue_message_envelope(n, msgid, &r->dests[i]);
		n->rcpt = r->rcpt;
		n->sender = r->sender;
	}
	if (queue_message_commit(msgid, evps, r->ndests) == -1) {
		log_warnx("%s: cannot queue the report for %s",
		    r->what, r->policy_domain);
		goto done;
	}
	log_info("%08x: %s report for %s to %s queued", msgid,
	    r->what, r->policy_domain, rcpt);
done:
	report_free(r);
}
