/*
 * smtpcount.c -- counters shared by the smtp workers (smtpcount.h).
 *
 * The kernel spreads connections over the workers, so no worker alone
 * knows how many AUTH failures the server saw.  As the session table
 * (sesscount.c) does, the parent maps one page of shared memory before
 * it forks control and the workers; the workers add with C11 atomics (no
 * lock a worker could hold against control) and control reads.  A
 * worker taken over could make the figures lie, nothing more: control
 * reads only integers from here, and a worker that dies takes the daemon
 * down anyway.  Processes forked without it (tools, tests) count
 * nothing.
 */
#include <sys/mman.h>

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "smtpcount.h"

/*
 * Refusals by the stage logged (a fixed list: the label's values are
 * ours, never the client's) and the reply's class; refused recipients
 * also by the reason their enhanced status code (RFC 3463) gives.
 */
static const char *const stages[] = {
	"CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT",
	"END-OF-MESSAGE", "AUTH", "other"
};
#define NSTAGES		(sizeof(stages) / sizeof(stages[0]))
#define STAGE_RCPT	4
enum rcpt_reason { RR_UNKNOWN_USER, RR_DENIED, RR_TEMPORARY, RR_OTHER,
	RR_MAX };
static const char *const rcpt_reasons[RR_MAX] = {
	"unknown_user", "denied", "temporary", "other"
};

struct smtpcount_table {
	_Atomic uint64_t	n[SC_MAX];
	_Atomic int64_t		open;
	_Atomic uint64_t	reject[NSTAGES][2];	/* 4xx, 5xx */
	_Atomic uint64_t	rcpt[RR_MAX];
	_Atomic uint64_t	limited[RATE_MAX];	/* ratelimit.c */
	_Atomic uint64_t	rate_table_full;
};

static struct smtpcount_table	*table;

void
smtpcount_init(void)
{
	int	i;

	table = mmap(NULL, sizeof(*table), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (table == MAP_FAILED)
		fatal("mmap");
	size_t	j;

	for (i = 0; i < SC_MAX; i++)
		atomic_init(&table->n[i], 0);
	atomic_init(&table->open, 0);
	for (j = 0; j < NSTAGES; j++) {
		atomic_init(&table->reject[j][0], 0);
		atomic_init(&table->reject[j][1], 0);
	}
	for (i = 0; i < RR_MAX; i++)
		atomic_init(&table->rcpt[i], 0);
	for (i = 0; i < RATE_MAX; i++)
		atomic_init(&table->limited[i], 0);
	atomic_init(&table->rate_table_full, 0);
}

void
smtpcount_rate_limited(int kind)
{
	if (table != NULL && kind >= 0 && kind < RATE_MAX)
		atomic_fetch_add_explicit(&table->limited[kind], 1,
		    memory_order_relaxed);
}

void
smtpcount_rate_table_full(void)
{
	if (table != NULL)
		atomic_fetch_add_explicit(&table->rate_table_full, 1,
		    memory_order_relaxed);
}

void
smtpcount_reject(const char *stage, const char *reply)
{
	size_t	i;
	int	rr;

	if (table == NULL || reply == NULL)
		return;
	for (i = 0; i < NSTAGES - 1; i++)
		if (strcmp(stage, stages[i]) == 0)
			break;
	atomic_fetch_add_explicit(&table->reject[i][reply[0] == '4' ? 0 : 1],
	    1, memory_order_relaxed);
	if (i != STAGE_RCPT)
		return;
	/* "550 5.1.1 ...": the enhanced code after the reply code */
	if (reply[0] == '4')
		rr = RR_TEMPORARY;
	else if (strncmp(reply + 3, " 5.1.1 ", 7) == 0 ||
	    strncmp(reply + 3, "-5.1.1 ", 7) == 0)
		rr = RR_UNKNOWN_USER;
	else if (strncmp(reply + 3, " 5.7.", 5) == 0 ||
	    strncmp(reply + 3, "-5.7.", 5) == 0)
		rr = RR_DENIED;
	else
		rr = RR_OTHER;
	atomic_fetch_add_explicit(&table->rcpt[rr], 1, memory_order_relaxed);
}

void
smtpcount_add(enum smtpcount_event ev)
{
	if (table != NULL && ev < SC_MAX)
		atomic_fetch_add_explicit(&table->n[ev], 1,
		    memory_order_relaxed);
}

void
smtpcount_open(int delta)
{
	if (table != NULL)
		atomic_fetch_add_explicit(&table->open, delta,
		    memory_order_relaxed);
}

static uint64_t
get(enum smtpcount_event ev)
{
	return table != NULL ? atomic_load_explicit(&table->n[ev],
	    memory_order_relaxed) : 0;
}

void
smtpcount_metrics(struct metrics *m)
{
	int64_t	open = table != NULL ? atomic_load_explicit(&table->open,
	    memory_order_relaxed) : 0;
	size_t	i;
	int	c;

	metrics_family(m, "posthaste_smtp_connections_total", "counter",
	    "SMTP sessions begun (including those refused at once).");
	metrics_u64(m, "posthaste_smtp_connections_total", get(SC_CONNECTION),
	    NULL);
	metrics_family(m, "posthaste_smtp_sessions_refused_total", "counter",
	    "SMTP sessions refused with 421 at connect, by reason.");
	metrics_u64(m, "posthaste_smtp_sessions_refused_total",
	    get(SC_REFUSED_TOTAL), "reason", "server_limit", NULL);
	metrics_u64(m, "posthaste_smtp_sessions_refused_total",
	    get(SC_REFUSED_PER_IP), "reason", "client_limit", NULL);
	metrics_family(m, "posthaste_smtp_sessions_open", "gauge",
	    "SMTP sessions open now, all listeners together.");
	metrics_u64(m, "posthaste_smtp_sessions_open",
	    open > 0 ? (uint64_t)open : 0, NULL);
	metrics_family(m, "posthaste_smtp_auth_total", "counter",
	    "SMTP AUTH attempts that were answered, by result.");
	metrics_u64(m, "posthaste_smtp_auth_total", get(SC_AUTH_SUCCESS),
	    "result", "success", NULL);
	metrics_u64(m, "posthaste_smtp_auth_total", get(SC_AUTH_FAILURE),
	    "result", "failure", NULL);
	metrics_family(m, "posthaste_smtp_rejects_total", "counter",
	    "SMTP commands and connections refused, by stage and class.");
	for (i = 0; i < NSTAGES; i++)
		for (c = 0; c < 2; c++)
			metrics_u64(m, "posthaste_smtp_rejects_total",
			    table != NULL ? atomic_load_explicit(
			    &table->reject[i][c], memory_order_relaxed) : 0,
			    "stage", stages[i], "class", c ? "5xx" : "4xx",
			    NULL);
	metrics_family(m, "posthaste_smtp_recipients_rejected_total",
	    "counter", "RCPT TO refused, by reason (from the enhanced "
	    "status code: 5.1.1 unknown_user, 5.7.x denied, 4.x.x "
	    "temporary).");
	for (i = 0; i < RR_MAX; i++)
		metrics_u64(m, "posthaste_smtp_recipients_rejected_total",
		    table != NULL ? atomic_load_explicit(&table->rcpt[i],
		    memory_order_relaxed) : 0, "reason", rcpt_reasons[i],
		    NULL);
	metrics_family(m, "posthaste_smtp_tls_sessions_total", "counter",
	    "SMTP sessions that established TLS, by protocol version.");
	metrics_u64(m, "posthaste_smtp_tls_sessions_total", get(SC_TLS_12),
	    "version", "TLSv1.2", NULL);
	metrics_u64(m, "posthaste_smtp_tls_sessions_total", get(SC_TLS_13),
	    "version", "TLSv1.3", NULL);
	metrics_u64(m, "posthaste_smtp_tls_sessions_total",
	    get(SC_TLS_OTHER), "version", "other", NULL);
	metrics_family(m, "posthaste_smtp_rate_limited_total", "counter",
	    "SMTP connections and commands refused by a rate limit, by the "
	    "limit's setting (smtp client-message-rate ...).");
	for (i = 0; i < RATE_MAX; i++)
		metrics_u64(m, "posthaste_smtp_rate_limited_total",
		    table != NULL ? atomic_load_explicit(&table->limited[i],
		    memory_order_relaxed) : 0, "limit",
		    ratelimit_name((enum conf_rate_kind)i), NULL);
	metrics_family(m, "posthaste_smtp_rate_table_full_total", "counter",
	    "Rate-limited events let through because the rate limit table "
	    "had no room for their key.");
	metrics_u64(m, "posthaste_smtp_rate_table_full_total",
	    table != NULL ? atomic_load_explicit(&table->rate_table_full,
	    memory_order_relaxed) : 0, NULL);
}
