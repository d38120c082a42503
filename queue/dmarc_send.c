/*
 * dmarc_send.c -- DMARC aggregate reports (RFC 7489 7.2), the queue's
 * part: keeping the day's rows and mailing the reports.
 *
 * Lookup sends one row per message DMARC judged under a record that asks
 * for reports (lookup/dmarc_collect.c; IMSG_QUEUE_DMARC_RECORD); each is
 * appended as one line to dmarc/records in the spool (common/dmarc_rec.h
 * says the line).  Once a UTC day ends -- at the first minute of the
 * next, or at start-up when the file holds an earlier day's rows, or at
 * once for `smtpctl dmarc report now' -- the file is renamed to
 * dmarc/sending, read back, its rows grouped per policy domain (equal
 * rows counted), and for each domain one report is built
 * (common/dmarc_report.h) and mailed to each of its rua mailboxes: an
 * ordinary message that lookup resolves and the queue delivers by the
 * normal path, like a DSN (bounce.c).  Then dmarc/sending goes.
 *
 * Reports are best effort, and the durability says so: rows are
 * appended without fsync (a crash may lose the last ones, and a torn
 * last line is refused by its missing end marker); a crash after the
 * rename and before the unlink mails those reports again at start-up
 * (a duplicate, which receivers tolerate); a crash after the unlink
 * loses reports whose messages were not committed yet.  The report
 * messages themselves, once committed, are as durable as any mail.
 *
 * A report bigger than a URI's "!size" limit is not sent to that URI
 * (RFC 7489 7.2.1.1: MUST NOT), with a log line.  Each report message
 * has the configured address as its envelope sender, so a failed one
 * bounces to whoever runs the reports.
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
#include <event2/event.h>

#include "addr.h"
#include "dmarc_rec.h"
#include "dmarc_report.h"
#include "log.h"
#include "queue.h"
#include "queue_int.h"
#include "proc.h"
#include "util.h"

/*
 * Distinct rows (a row is ~4 KB: 40 MB at most) and policy domains in
 * one run; equal rows are counted, not kept, so a busy day from few
 * sources stays far below.  What is over is logged and skipped.
 */
#define SEND_MAX_ROWS		10000
#define SEND_MAX_DOMAINS	2000

/* one policy domain's rows of a run */
struct domain_rows {
	char				 name[DMARC_DOMAIN_MAX];
	struct queue_dmarc_record	 last;	/* policy and rua: newest */
	struct dmarc_report_row		*rows;
	size_t				 nrow, cap;
	int64_t				 begin;
};

static int	dmarc_enabled(void);
static int	dmarc_line_time(const char *, size_t, int64_t *);

static struct report_journal journal = {
	.what = "dmarc",
	.dfd = -1,
	.line_max = DMARC_REC_LINE_MAX,
	.jitter = 0,
	.line_time = dmarc_line_time,
	.enabled = dmarc_enabled,
	.send_now = dmarc_send_now,
	.fd = -1,
};

static int
dmarc_enabled(void)
{
	return conf->dmarc_report_from[0] != '\0';
}

static int
dmarc_line_time(const char *line, size_t len, int64_t *when)
{
	struct queue_dmarc_record	*r;
	int				 rc;

	if ((r = malloc(sizeof(*r))) == NULL)
		return -1;
	rc = dmarc_rec_parse(line, len, r, when);
	free(r);
	return rc;
}

/* ---- recording ---- */

void
dmarc_send_record(const struct queue_dmarc_record *r)
{
	char	 line[DMARC_REC_LINE_MAX];
	int	 n;

	if (conf->dmarc_report_from[0] == '\0' || dfd_dmarc == -1)
		return;
	if ((n = dmarc_rec_format(r, (int64_t)time(NULL), line,
	    sizeof(line))) == -1) {
		log_warnx("dmarc: a report row for %s that cannot be written",
		    r->policy_domain);
		return;
	}
	report_journal_append(&journal, line, (size_t)n);
}

/* ---- grouping the rows ---- */

static void
row_of(const struct queue_dmarc_record *r, struct dmarc_report_row *w)
{
	uint32_t	i;

	memset(w, 0, sizeof(*w));
	w->source_ip = r->source;
	w->count = 1;
	w->disposition = r->disposition;
	w->dkim_pass = r->dkim_pass;
	w->spf_pass = r->spf_pass;
	w->sampled_out = r->sampled_out;
	snprintf(w->header_from, sizeof(w->header_from), "%s",
	    r->header_from);
	snprintf(w->envelope_from, sizeof(w->envelope_from), "%s",
	    r->envelope_from);
	for (i = 0; i < r->ndkim && i < DMARC_MAX_DKIM; i++) {
		snprintf(w->dkim[i].domain, sizeof(w->dkim[i].domain), "%s",
		    r->dkim[i].domain);
		snprintf(w->dkim[i].selector, sizeof(w->dkim[i].selector),
		    "%s", r->dkim[i].selector);
		w->dkim[i].result = r->dkim[i].result;
	}
	w->ndkim = i;
	snprintf(w->spf_domain, sizeof(w->spf_domain), "%s", r->spf_domain);
	w->spf_scope = r->spf_scope;
	w->spf_result = r->spf_result;
}

/* equal but for the count (rows are zeroed before they are filled) */
static int
row_same(const struct dmarc_report_row *a, const struct dmarc_report_row *b)
{
	struct dmarc_report_row	x = *a, y = *b;

	x.count = y.count = 0;
	return memcmp(&x, &y, sizeof(x)) == 0;
}

/* FNV-1a over the row but its count, and the domain it belongs to */
static uint32_t
row_hash(const struct dmarc_report_row *w, size_t dom)
{
	struct dmarc_report_row	 x = *w;
	const unsigned char	*p = (const unsigned char *)&x;
	uint32_t		 h = 2166136261U ^ (uint32_t)dom;
	size_t			 i;

	x.count = 0;
	for (i = 0; i < sizeof(x); i++)
		h = (h ^ p[i]) * 16777619U;
	return h;
}

/*
 * A run's rows: per policy domain, and a hash of every distinct row
 * (domain, index), so that counting equal rows stays linear however
 * many there are: the queue's loop waits while this runs.
 */
struct run {
	struct domain_rows	*doms;
	size_t			 ndom;
	struct {
		uint32_t	 dom, row;
	}			*slot;		/* dom UINT32_MAX: free */
	size_t			 nslot, total;
	struct queue_dmarc_record *rec;		/* a line's, while read */
};

static int
run_add(struct run *run, size_t dom, const struct dmarc_report_row *w)
{
	struct domain_rows	*d = &run->doms[dom];
	struct dmarc_report_row	*n;
	size_t			 i;

	i = row_hash(w, dom) & (run->nslot - 1);
	for (;; i = (i + 1) & (run->nslot - 1)) {
		if (run->slot[i].dom == UINT32_MAX)
			break;
		if (run->slot[i].dom == dom &&
		    row_same(&d->rows[run->slot[i].row], w)) {
			d->rows[run->slot[i].row].count++;
			return 0;
		}
	}
	/* the table holds SEND_MAX_ROWS in 2 * SEND_MAX_ROWS slots */
	if (run->total >= SEND_MAX_ROWS)
		return -1;
	if (d->nrow == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;

		if ((n = reallocarray(d->rows, cap, sizeof(*n))) == NULL)
			return -1;
		d->rows = n;
		d->cap = cap;
	}
	run->slot[i].dom = (uint32_t)dom;
	run->slot[i].row = (uint32_t)d->nrow;
	d->rows[d->nrow++] = *w;
	run->total++;
	return 0;
}

static int
run_line(struct run *run, const char *line, size_t len,
    struct queue_dmarc_record *r)
{
	struct domain_rows	*nd;
	struct dmarc_report_row	 w;
	int64_t			 when;
	size_t			 i;

	if (dmarc_rec_parse(line, len, r, &when) == -1)
		return -1;
	for (i = 0; i < run->ndom; i++)
		if (strcmp(run->doms[i].name, r->policy_domain) == 0)
			break;
	if (i == run->ndom) {
		if (run->ndom == SEND_MAX_DOMAINS || (nd = reallocarray(
		    run->doms, run->ndom + 1, sizeof(*nd))) == NULL)
			return -1;
		run->doms = nd;
		memset(&nd[i], 0, sizeof(nd[i]));
		snprintf(nd[i].name, sizeof(nd[i].name), "%s",
		    r->policy_domain);
		nd[i].begin = when;
		run->ndom++;
	}
	run->doms[i].last = *r;
	if (when < run->doms[i].begin)
		run->doms[i].begin = when;
	row_of(r, &w);
	return run_add(run, i, &w);
}

/* one line of the file into the run: 0, or -1 (refused, logged) */
static int
run_cb(void *arg, const char *line, size_t len)
{
	struct run	*run = arg;

	return run_line(run, line, len, run->rec);
}

/*
 * The file's rows by policy domain (report_journal_read()): 0, or -1
 * when nothing could be read.
 */
static int
read_rows(int fd, struct run *run)
{
	size_t	i;
	int	rc;

	memset(run, 0, sizeof(*run));
	run->nslot = 1;
	while (run->nslot < 2 * SEND_MAX_ROWS)
		run->nslot *= 2;
	if ((run->rec = malloc(sizeof(*run->rec))) == NULL ||
	    (run->slot = calloc(run->nslot, sizeof(*run->slot))) == NULL) {
		log_warn("dmarc: reading the rows");
		free(run->rec);
		return -1;
	}
	for (i = 0; i < run->nslot; i++)
		run->slot[i].dom = UINT32_MAX;
	rc = report_journal_read(&journal, fd, run_cb, run);
	free(run->slot);
	run->slot = NULL;
	free(run->rec);
	run->rec = NULL;
	return rc;
}

/* ---- the message ---- */

/* the report's head (without To:) and body; 0 or -1 */
static int
build_report(const struct domain_rows *d, time_t end, char **head,
    char **body)
{
	struct dmarc_report_meta	 m;
	struct dmarc_record		 rec;
	struct evbuffer			*h = NULL, *b = NULL;
	unsigned char			*gz = NULL;
	char				*xml = NULL, *at;
	char				 id[64], fname[1024], subj[1024];
	char				 date[64], boundary[128];
	char				 b1[32], b2[32];
	size_t				 xlen, gzlen;
	int				 rc = -1;

	*head = *body = NULL;
	memset(&m, 0, sizeof(m));
	m.org_name = conf->dmarc_report_org[0] ? conf->dmarc_report_org :
	    conf->hostname;
	m.email = conf->dmarc_report_from;
	if ((at = strrchr(conf->dmarc_report_from, '@')) == NULL)
		return -1;
	m.receiver = at + 1;
	snprintf(id, sizeof(id), "%lld.%08x", (long long)end, queue_random());
	m.report_id = id;
	m.begin = (time_t)d->begin;
	m.end = end;
	memset(&rec, 0, sizeof(rec));
	rec.policy = d->last.p;
	rec.subpolicy = d->last.sp;
	rec.pct = d->last.pct;
	rec.adkim = d->last.adkim;
	rec.aspf = d->last.aspf;
	rec.fo = d->last.fo;
	if ((xml = dmarc_report_xml(&m, d->name, &rec, d->rows, d->nrow,
	    &xlen)) == NULL ||
	    (gz = gzip_buffer(xml, xlen, &gzlen)) == NULL ||
	    dmarc_report_filename(&m, d->name, NULL, fname,
	    sizeof(fname)) == -1 ||
	    dmarc_report_subject(&m, d->name, subj, sizeof(subj)) == -1 ||
	    (h = evbuffer_new()) == NULL || (b = evbuffer_new()) == NULL)
		goto done;
	report_mail_date(end, date, sizeof(date));
	snprintf(boundary, sizeof(boundary), "=_dmarc_%s", id);
	evbuffer_add_printf(h, "From: ");
	report_mail_quoted(h, m.org_name);
	evbuffer_add_printf(h, " <%s>\n", m.email);
	evbuffer_add_printf(b,
	    "Subject: %s\n"
	    "Date: %s\n"
	    "Message-ID: <%s@%s>\n"
	    "Auto-Submitted: auto-generated\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"%s\"\n"
	    "\n"
	    "This is a MIME-encapsulated message.\n"
	    "\n"
	    "--%s\n"
	    "Content-Type: text/plain; charset=us-ascii\n"
	    "\n"
	    "This is a DMARC aggregate report (RFC 7489) from %s\n"
	    "about mail from %s received by %s,\n"
	    "from %s to %s (UTC seconds %lld to %lld).\n"
	    "\n"
	    "--%s\n"
	    "Content-Type: application/gzip; name=\"%s\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment; filename=\"%s\"\n"
	    "\n",
	    subj, date, id, m.receiver, boundary, boundary, m.email, d->name,
	    conf->hostname, (report_mail_date(m.begin, b1, sizeof(b1)), b1),
	    (report_mail_date(m.end, b2, sizeof(b2)), b2),
	    (long long)m.begin, (long long)m.end, boundary, fname, fname);
	rc = report_mail_finish(h, b, boundary, gz, gzlen, head, body);
done:
	if (h != NULL)
		evbuffer_free(h);
	if (b != NULL)
		evbuffer_free(b);
	free(xml);
	free(gz);
	return rc;
}

/* ---- sending ---- */

/* one message per rua mailbox; lookup resolves each */
static void
send_domain(const struct domain_rows *d, time_t end)
{
	char		*head, *body, *text;
	size_t		 len;
	uint32_t	 i;

	if (build_report(d, end, &head, &body) == -1) {
		log_warnx("dmarc: cannot build the report for %s", d->name);
		return;
	}
	for (i = 0; i < d->last.nrua; i++) {
		if ((text = report_mail_join(head, d->last.rua[i].addr, body,
		    &len)) == NULL) {
			log_warn("dmarc: report for %s", d->name);
			break;
		}
		if (d->last.rua[i].maxsize != 0 &&
		    len > d->last.rua[i].maxsize) {
			log_info("dmarc: report for %s to %s not sent: %zu "
			    "bytes, over its limit of %" PRIu64, d->name,
			    d->last.rua[i].addr, len,
			    d->last.rua[i].maxsize);
			free(text);
			continue;
		}
		report_mail_send("DMARC", d->name, conf->dmarc_report_from,
		    d->last.rua[i].addr, text, len);
	}
	free(head);
	free(body);
}

/*
 * Report what dmarc/sending holds (what an earlier run left), or else
 * what dmarc/records holds.  The number of domains reported on, or -1.
 */
int
dmarc_send_now(void)
{
	struct run		 run;
	size_t			 i;
	int			 fd;

	if (dfd_dmarc == -1 || conf->dmarc_report_from[0] == '\0')
		return -1;
	if (q_lookup == NULL)
		return -1;
	if ((fd = report_journal_begin(&journal)) == -2)
		return 0;
	if (fd == -1)
		return -1;
	if (read_rows(fd, &run) == -1) {
		close(fd);
		return -1;		/* kept for the next try */
	}
	close(fd);
	for (i = 0; i < run.ndom; i++)
		send_domain(&run.doms[i], time(NULL));
	for (i = 0; i < run.ndom; i++)
		free(run.doms[i].rows);
	free(run.doms);
	report_journal_done(&journal);
	log_info("dmarc: aggregate reports for %zu domains", run.ndom);
	return (int)run.ndom;
}

/* ---- when ---- */

void
dmarc_send_init(void)
{
	journal.dfd = dfd_dmarc;
	report_journal_init(&journal);
}
