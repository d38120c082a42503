/*
 * tlsrpt_send.c -- SMTP TLS Reporting (RFC 8460), the queue's part:
 * keeping the day's TLS outcomes and mailing the reports.
 *
 * Lookup sends one record per outcome the mta saw under a DANE or
 * MTA-STS policy, for domains whose "_smtp._tls" record asks for reports
 * (lookup/tlsrpt_collect.c; IMSG_QUEUE_TLSRPT_RECORD); each is appended
 * as one line to tlsrpt/records in the spool (common/tlsrpt_rec.h says
 * the line; report_journal.c keeps the file, as for the DMARC reports).
 * Once a UTC day ends -- after its midnight with a random delay of up to
 * an hour (RFC 8460 does not ask for one; it spreads the load that every
 * sender's midnight puts on the receivers), at start-up when the file
 * holds an earlier day's outcomes, or at once for `smtpctl tlsrpt report
 * now' -- the outcomes are summed per policy domain and, within it, per
 * policy (type and policy string): successful and failed sessions, and
 * the failures alike in every field of section 4.3 counted together.
 * For each domain one report is built (common/tlsrpt_report.h), gzipped
 * and mailed to each mailto: URI of the domain's newest record, as
 * section 5.3 says: multipart/report; report-type="tlsrpt", the
 * TLS-Report-Domain and TLS-Report-Submitter headers, the Subject with
 * the report id, the application/tlsrpt+gzip part named as 5.1 says.
 * The messages go through the normal path (report_mail.c) with the
 * configured address as their envelope sender, so a failed one bounces
 * to whoever runs the reports.
 *
 * https: URIs (section 3: POST) are not served yet: the queue cannot
 * open sockets, and the HTTPS client lives in lookup (MTA-STS); they are
 * logged and skipped.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "gzip.h"
#include "log.h"
#include "proc.h"
#include "queue.h"
#include "queue_int.h"
#include "tlsrpt.h"
#include "tlsrpt_rec.h"
#include "tlsrpt_report.h"

#define DAY			86400
#define JITTER			3600	/* seconds of random delay */
/*
 * Bounds of one run; outcomes over them are logged and skipped (the
 * summary still counts a failure whose details no longer fit).
 */
#define SEND_MAX_DOMAINS	2000
#define SEND_MAX_POLICIES	16	/* per domain */
#define SEND_MAX_FAILS		64	/* failure-details per policy */
#define SEND_MAX_MX		16	/* mx hosts seen per policy */

/* one policy of a domain, and what happened under it */
struct policy_sum {
	int			 type;
	char			*policy;	/* lines */
	char			*mx;		/* hosts seen, lines */
	size_t			 nmx;
	uint64_t		 success, failure;
	struct tlsrpt_failure	 fails[SEND_MAX_FAILS];
	size_t			 nfail;
};

struct domain_sum {
	char			 name[256];
	struct queue_tlsrpt_record last;	/* rua: the newest */
	int64_t			 first, newest;	/* outcome times */
	struct policy_sum	*pols[SEND_MAX_POLICIES];
	size_t			 npol;
};

struct run {
	struct domain_sum	**doms;
	size_t			 ndom;
	size_t			 hint;		/* the last line's domain */
	struct queue_tlsrpt_record *rec;	/* a line's, while read */
};

static int	tlsrpt_enabled(void);
static int	tlsrpt_line_time(const char *, size_t, int64_t *);

static struct report_journal journal = {
	.what = "tlsrpt",
	.dfd = -1,
	.line_max = TLSRPT_REC_LINE_MAX,
	.jitter = JITTER,
	.line_time = tlsrpt_line_time,
	.enabled = tlsrpt_enabled,
	.send_now = tlsrpt_send_now,
	.fd = -1,
};

static int
tlsrpt_enabled(void)
{
	return conf->tlsrpt_report_from[0] != '\0';
}

static int
tlsrpt_line_time(const char *line, size_t len, int64_t *when)
{
	struct queue_tlsrpt_record	*r;
	int				 rc;

	if ((r = malloc(sizeof(*r))) == NULL)
		return -1;
	rc = tlsrpt_rec_parse(line, len, r, when);
	free(r);
	return rc;
}

/* ---- recording ---- */

void
tlsrpt_send_record(const struct queue_tlsrpt_record *r)
{
	char	*line;
	int	 n;

	if (!tlsrpt_enabled() || dfd_tlsrpt == -1)
		return;
	if ((line = malloc(TLSRPT_REC_LINE_MAX)) == NULL) {
		log_warn("tlsrpt: an outcome for %s", r->o.policy_domain);
		return;
	}
	if ((n = tlsrpt_rec_format(r, (int64_t)time(NULL), line,
	    TLSRPT_REC_LINE_MAX)) == -1)
		log_warnx("tlsrpt: an outcome for %s that cannot be written",
		    r->o.policy_domain);
	else
		report_journal_append(&journal, line, (size_t)n);
	free(line);
}

/* ---- summing the outcomes ---- */

/* s joined to the lines of *list unless it is one of them already */
static int
add_line(char **list, size_t *n, const char *s)
{
	const char	*p = *list;
	size_t		 sl = strlen(s), ll;
	char		*nl;

	if (*s == '\0')
		return 0;
	while (p != NULL && *p != '\0') {
		if (strncmp(p, s, sl) == 0 && (p[sl] == '\n' || p[sl] == '\0'))
			return 0;
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	if (*n >= SEND_MAX_MX)
		return 0;
	ll = *list ? strlen(*list) : 0;
	if ((nl = realloc(*list, ll + sl + 2)) == NULL)
		return -1;
	if (ll > 0)
		nl[ll++] = '\n';
	memcpy(nl + ll, s, sl + 1);
	*list = nl;
	(*n)++;
	return 0;
}

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static void
count_failure(struct policy_sum *ps, const struct lka_tlsrpt *o)
{
	struct tlsrpt_failure	*f;
	size_t			 i;

	for (i = 0; i < ps->nfail; i++) {
		f = &ps->fails[i];
		if (f->result == o->result &&
		    strcmp(f->mx_host, o->mx_host) == 0 &&
		    strcmp(f->reason, o->reason) == 0 &&
		    same_addr(&f->sending_ip, &o->sending_ip) &&
		    same_addr(&f->receiving_ip, &o->receiving_ip)) {
			f->count++;
			return;
		}
	}
	if (ps->nfail == SEND_MAX_FAILS)
		return;		/* in the summary, not in the details */
	f = &ps->fails[ps->nfail++];
	memset(f, 0, sizeof(*f));
	f->result = o->result;
	f->sending_ip = o->sending_ip;
	f->receiving_ip = o->receiving_ip;
	snprintf(f->mx_host, sizeof(f->mx_host), "%s", o->mx_host);
	snprintf(f->reason, sizeof(f->reason), "%s", o->reason);
	f->count = 1;
}

static struct domain_sum *
find_domain(struct run *run, const char *name)
{
	struct domain_sum	**nd, *d;
	size_t			  i;

	/* outcomes come in bursts per destination: try the last first */
	if (run->hint < run->ndom &&
	    strcmp(run->doms[run->hint]->name, name) == 0)
		return run->doms[run->hint];
	for (i = 0; i < run->ndom; i++)
		if (strcmp(run->doms[i]->name, name) == 0) {
			run->hint = i;
			return run->doms[i];
		}
	if (run->ndom == SEND_MAX_DOMAINS || (nd = reallocarray(run->doms,
	    run->ndom + 1, sizeof(*nd))) == NULL)
		return NULL;
	run->doms = nd;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->first = INT64_MAX;
	run->hint = run->ndom;
	run->doms[run->ndom++] = d;
	return d;
}

static struct policy_sum *
find_policy(struct domain_sum *d, int type, const char *policy)
{
	struct policy_sum	*ps;
	size_t			 i;

	for (i = 0; i < d->npol; i++)
		if (d->pols[i]->type == type &&
		    strcmp(d->pols[i]->policy, policy) == 0)
			return d->pols[i];
	if (d->npol == SEND_MAX_POLICIES ||
	    (ps = calloc(1, sizeof(*ps))) == NULL)
		return NULL;
	if ((ps->policy = strdup(policy)) == NULL) {
		free(ps);
		return NULL;
	}
	ps->type = type;
	d->pols[d->npol++] = ps;
	return ps;
}

/* one line into the run: 0, or -1 (unreadable, over the bounds) */
static int
run_line(void *arg, const char *line, size_t len)
{
	struct run			*run = arg;
	struct queue_tlsrpt_record	*r = run->rec;
	struct domain_sum		*d;
	struct policy_sum		*ps;
	int64_t				 when;

	if (tlsrpt_rec_parse(line, len, r, &when) == -1 ||
	    (d = find_domain(run, r->o.policy_domain)) == NULL ||
	    (ps = find_policy(d, r->o.policy_type, r->o.policy)) == NULL)
		return -1;
	if (when >= d->newest) {
		d->newest = when;
		d->last = *r;
	}
	if (when < d->first)
		d->first = when;
	if (add_line(&ps->mx, &ps->nmx, r->o.mx_host) == -1)
		return -1;
	if (r->o.result == TLSRPT_SUCCESS)
		ps->success++;
	else {
		ps->failure++;
		count_failure(ps, &r->o);
	}
	return 0;
}

static void
run_free(struct run *run)
{
	size_t	i, k;

	for (i = 0; i < run->ndom; i++) {
		for (k = 0; k < run->doms[i]->npol; k++) {
			free(run->doms[i]->pols[k]->policy);
			free(run->doms[i]->pols[k]->mx);
			free(run->doms[i]->pols[k]);
		}
		free(run->doms[i]);
	}
	free(run->doms);
	free(run->rec);
}

/* ---- the message ---- */

/*
 * The period: from the start of the first outcome's UTC day to the end
 * of the newest one's (23:59:59), or to now when that day is today
 * (`smtpctl tlsrpt report now').
 */
static void
period(const struct domain_sum *d, time_t now, time_t *begin, time_t *end)
{
	*begin = (time_t)(d->first - d->first % DAY);
	*end = (time_t)(d->newest - d->newest % DAY + DAY - 1);
	if (*end > now)
		*end = now;
	if (*end < *begin)
		*end = *begin;
}

/* the report's head (without To:) and body; 0 or -1 */
static int
build_report(const struct domain_sum *d, time_t now, char **head,
    char **body)
{
	struct tlsrpt_report_meta	 m;
	struct tlsrpt_policy_sum	 ps[SEND_MAX_POLICIES];
	struct evbuffer			*h = NULL, *b = NULL;
	unsigned char			*gz = NULL;
	char				*json = NULL, *at;
	char				 id[64], fname[1024], subj[1024];
	char				 date[64], boundary[128], contact[300];
	size_t				 jlen, gzlen, i;
	int				 rc = -1;

	*head = *body = NULL;
	memset(&m, 0, sizeof(m));
	if ((at = strrchr(conf->tlsrpt_report_from, '@')) == NULL)
		return -1;
	m.org_name = conf->tlsrpt_report_org[0] ? conf->tlsrpt_report_org :
	    conf->hostname;
	snprintf(contact, sizeof(contact), "mailto:%s",
	    conf->tlsrpt_report_from);
	m.contact_info = contact;
	m.submitter = at + 1;
	period(d, now, &m.begin, &m.end);
	snprintf(id, sizeof(id), "%lld.%08x", (long long)m.end,
	    queue_random());
	m.report_id = id;
	for (i = 0; i < d->npol; i++) {
		memset(&ps[i], 0, sizeof(ps[i]));
		ps[i].type = d->pols[i]->type;
		ps[i].policy_string = d->pols[i]->policy;
		ps[i].mx_hosts = d->pols[i]->mx;
		ps[i].success = d->pols[i]->success;
		ps[i].failure = d->pols[i]->failure;
		ps[i].fails = d->pols[i]->fails;
		ps[i].nfail = d->pols[i]->nfail;
	}
	if ((json = tlsrpt_report_json(&m, d->name, ps, d->npol,
	    &jlen)) == NULL ||
	    (gz = gzip_buffer(json, jlen, &gzlen)) == NULL ||
	    tlsrpt_report_filename(&m, d->name, fname, sizeof(fname)) == -1 ||
	    tlsrpt_report_subject(&m, d->name, subj, sizeof(subj)) == -1 ||
	    (h = evbuffer_new()) == NULL || (b = evbuffer_new()) == NULL)
		goto done;
	report_mail_date(now, date, sizeof(date));
	snprintf(boundary, sizeof(boundary), "=_tlsrpt_%s", id);
	evbuffer_add_printf(h, "From: ");
	report_mail_quoted(h, m.org_name);
	evbuffer_add_printf(h, " <%s>\n", conf->tlsrpt_report_from);
	evbuffer_add_printf(b,
	    "Subject: %s\n"
	    "Date: %s\n"
	    "Message-ID: <%s@%s>\n"
	    "TLS-Report-Domain: %s\n"
	    "TLS-Report-Submitter: %s\n"
	    "Auto-Submitted: auto-generated\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=\"tlsrpt\";\n"
	    "\tboundary=\"%s\"\n"
	    "\n"
	    "This is a MIME-encapsulated message.\n"
	    "\n"
	    "--%s\n"
	    "Content-Type: text/plain; charset=us-ascii\n"
	    "\n"
	    "This is an SMTP TLS report (RFC 8460) from %s\n"
	    "about mail delivered to %s by %s,\n"
	    "UTC seconds %lld to %lld.\n"
	    "\n"
	    "--%s\n"
	    "Content-Type: application/tlsrpt+gzip; name=\"%s\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment; filename=\"%s\"\n"
	    "\n",
	    subj, date, id, m.submitter, d->name, m.submitter, boundary,
	    boundary, conf->tlsrpt_report_from, d->name, conf->hostname,
	    (long long)m.begin, (long long)m.end, boundary, fname, fname);
	rc = report_mail_finish(h, b, boundary, gz, gzlen, head, body);
done:
	if (h != NULL)
		evbuffer_free(h);
	if (b != NULL)
		evbuffer_free(b);
	free(json);
	free(gz);
	return rc;
}

/* one message per mailto: URI; lookup resolves each */
static void
send_domain(const struct domain_sum *d, time_t now)
{
	char		*head, *body, *text;
	char		 addr[512];
	size_t		 len;
	uint32_t	 i;

	if (build_report(d, now, &head, &body) == -1) {
		log_warnx("tlsrpt: cannot build the report for %s", d->name);
		return;
	}
	for (i = 0; i < d->last.nrua; i++) {
		if (tlsrpt_uri_https(d->last.rua[i])) {
			log_info("tlsrpt: report for %s to %s not sent: "
			    "https: reporting is not supported yet", d->name,
			    d->last.rua[i]);
			continue;
		}
		if (tlsrpt_uri_mailto(d->last.rua[i], addr,
		    sizeof(addr)) == -1) {
			log_info("tlsrpt: report for %s to %s not sent: not "
			    "a mailto: URI we can use", d->name,
			    d->last.rua[i]);
			continue;
		}
		if ((text = report_mail_join(head, addr, body, &len)) ==
		    NULL) {
			log_warn("tlsrpt: report for %s", d->name);
			break;
		}
		report_mail_send("TLS-RPT", d->name,
		    conf->tlsrpt_report_from, addr, text, len);
	}
	free(head);
	free(body);
}

/*
 * Report what tlsrpt/sending holds (what an earlier run left), or else
 * what tlsrpt/records holds.  The number of domains reported on, or -1.
 */
int
tlsrpt_send_now(void)
{
	struct run	run;
	time_t		now = time(NULL);
	size_t		i;
	int		fd;

	if (dfd_tlsrpt == -1 || !tlsrpt_enabled() || q_lookup == NULL)
		return -1;
	if ((fd = report_journal_begin(&journal)) == -2)
		return 0;
	if (fd == -1)
		return -1;
	memset(&run, 0, sizeof(run));
	if ((run.rec = malloc(sizeof(*run.rec))) == NULL ||
	    report_journal_read(&journal, fd, run_line, &run) == -1) {
		close(fd);
		run_free(&run);
		return -1;		/* kept for the next try */
	}
	close(fd);
	for (i = 0; i < run.ndom; i++)
		send_domain(run.doms[i], now);
	report_journal_done(&journal);
	log_info("tlsrpt: TLS reports for %zu domains", run.ndom);
	i = run.ndom;
	run_free(&run);
	return (int)i;
}

void
tlsrpt_send_init(void)
{
	journal.dfd = dfd_tlsrpt;
	report_journal_init(&journal);
}
