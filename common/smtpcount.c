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
 *
 * The listeners' names are the one text in the page: the parent alone
 * writes them, each slot once, before it publishes the slot count
 * (release); readers take the count (acquire) and read only the slots
 * below it, and control copies each name with a bound before it trusts
 * it, so a worker that scribbled on the page gives a wrong label (which
 * the metrics writer escapes), never an overrun.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "shm.h"
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

/*
 * The results of the checks: one list of words for all three methods,
 * each method showing the words it can give (RFC 8601's registry).
 */
enum check_word { CW_NONE, CW_PASS, CW_FAIL, CW_SOFTFAIL, CW_NEUTRAL,
	CW_POLICY, CW_TEMPERROR, CW_PERMERROR, CW_MAX };
static const char *const check_words[CW_MAX] = {
	"none", "pass", "fail", "softfail", "neutral", "policy",
	"temperror", "permerror"
};
#define CWB(w)	(1u << (w))
static const struct {
	const char	*family, *help;
	unsigned	 words;
} checks[SCK_MAX] = {
	{ "posthaste_spf_results_total", "SPF results of the MAIL FROM "
	    "identity (RFC 7208), by result.", CWB(CW_NONE) | CWB(CW_PASS) |
	    CWB(CW_FAIL) | CWB(CW_SOFTFAIL) | CWB(CW_NEUTRAL) |
	    CWB(CW_TEMPERROR) | CWB(CW_PERMERROR) },
	{ "posthaste_dkim_results_total", "DKIM results (RFC 6376), one per "
	    "signature verified, none for a message without one.",
	    CWB(CW_NONE) | CWB(CW_PASS) | CWB(CW_FAIL) | CWB(CW_POLICY) |
	    CWB(CW_NEUTRAL) | CWB(CW_TEMPERROR) | CWB(CW_PERMERROR) },
	{ "posthaste_dmarc_results_total", "DMARC results (RFC 7489), one "
	    "per message checked, by result.", CWB(CW_NONE) | CWB(CW_PASS) |
	    CWB(CW_FAIL) | CWB(CW_TEMPERROR) | CWB(CW_PERMERROR) },
};

static const char *const milter_actions[SCM_MAX] = {
	"accept", "reject", "tempfail", "discard", "quarantine",
	"replycode", "modify"
};

struct smtpcount_listener {
	char			addr[SMTPCOUNT_LABEL_MAX];	/* "ADDR:PORT" */
	char			tag[SMTPCOUNT_LABEL_MAX];
	_Atomic int64_t		open;
};

struct smtpcount_table {
	_Atomic uint64_t	n[SC_MAX];
	_Atomic int64_t		open;
	_Atomic uint64_t	reject[NSTAGES][2];	/* 4xx, 5xx */
	_Atomic uint64_t	rcpt[RR_MAX];
	_Atomic uint64_t	limited[RATE_MAX];	/* ratelimit.c */
	_Atomic uint64_t	rate_table_full;
	_Atomic uint64_t	check[SCK_MAX][CW_MAX];
	_Atomic uint64_t	milter[SCM_MAX];
	_Atomic int		nlisteners;	/* slots published */
	struct smtpcount_listener listener[SMTPCOUNT_LISTENERS];
};

static struct smtpcount_table	*table;

void
smtpcount_init(void)
{
	int	i;

	table = shm_alloc(sizeof(*table));
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
	for (i = 0; i < SCK_MAX; i++)
		for (j = 0; j < CW_MAX; j++)
			atomic_init(&table->check[i][j], 0);
	for (i = 0; i < SCM_MAX; i++)
		atomic_init(&table->milter[i], 0);
	for (i = 0; i < SMTPCOUNT_LISTENERS; i++)
		atomic_init(&table->listener[i].open, 0);
	atomic_init(&table->nlisteners, 0);
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
smtpcount_check(enum smtpcount_check method, const char *result)
{
	int	w;

	if (table == NULL || method >= SCK_MAX || result == NULL)
		return;
	for (w = 0; w < CW_MAX; w++)
		if ((checks[method].words & CWB(w)) &&
		    strcmp(result, check_words[w]) == 0)
			break;
	if (w == CW_MAX)
		w = CW_PERMERROR;
	atomic_fetch_add_explicit(&table->check[method][w], 1,
	    memory_order_relaxed);
}

void
smtpcount_milter(enum smtpcount_milter action)
{
	if (table != NULL && action < SCM_MAX)
		atomic_fetch_add_explicit(&table->milter[action], 1,
		    memory_order_relaxed);
}

/* "127.0.0.1:25", "[::1]:587", "eth0:25": the listener as written */
static void
listener_name(char *buf, size_t len, const char *ifname, uint16_t port)
{
	if (strchr(ifname, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", ifname, (unsigned)port);
	else
		snprintf(buf, len, "%s:%u", ifname, (unsigned)port);
}

int
smtpcount_listener_slot(const char *ifname, uint16_t port, const char *tag)
{
	char	name[SMTPCOUNT_LABEL_MAX];
	int	i, n;

	if (table == NULL)
		return -1;
	listener_name(name, sizeof(name), ifname, port);
	n = atomic_load_explicit(&table->nlisteners, memory_order_acquire);
	for (i = 0; i < n && i < SMTPCOUNT_LISTENERS; i++)
		if (strncmp(table->listener[i].addr, name,
		    sizeof(name)) == 0 && strncmp(table->listener[i].tag, tag,
		    SMTPCOUNT_LABEL_MAX - 1) == 0)
			return i;
	return -1;
}

/* in the parent only: the one writer of the names */
void
smtpcount_listener_add(const char *ifname, uint16_t port, const char *tag)
{
	struct smtpcount_listener	*sl;
	int				 n;

	if (table == NULL || smtpcount_listener_slot(ifname, port, tag) != -1)
		return;
	n = atomic_load_explicit(&table->nlisteners, memory_order_relaxed);
	if (n >= SMTPCOUNT_LISTENERS) {
		log_warnx("metrics: more than %d listeners: %s port %u has "
		    "no sessions gauge of its own", SMTPCOUNT_LISTENERS,
		    ifname, (unsigned)port);
		return;
	}
	sl = &table->listener[n];
	listener_name(sl->addr, sizeof(sl->addr), ifname, port);
	snprintf(sl->tag, sizeof(sl->tag), "%s", tag);
	atomic_store_explicit(&table->nlisteners, n + 1,
	    memory_order_release);
}

void
smtpcount_listener_open(int slot, int delta)
{
	if (table != NULL && slot >= 0 && slot < SMTPCOUNT_LISTENERS)
		atomic_fetch_add_explicit(&table->listener[slot].open, delta,
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

/* each name copied with its bound: the page is the workers' too */
static void
listeners_write(struct metrics *m)
{
	char	addr[SMTPCOUNT_LABEL_MAX], tag[SMTPCOUNT_LABEL_MAX];
	int64_t	open;
	int	i, n;

	if (table == NULL)
		return;
	n = atomic_load_explicit(&table->nlisteners, memory_order_acquire);
	for (i = 0; i < n && i < SMTPCOUNT_LISTENERS; i++) {
		memcpy(addr, table->listener[i].addr, sizeof(addr));
		addr[sizeof(addr) - 1] = '\0';
		memcpy(tag, table->listener[i].tag, sizeof(tag));
		tag[sizeof(tag) - 1] = '\0';
		open = atomic_load_explicit(&table->listener[i].open,
		    memory_order_relaxed);
		metrics_u64(m, "posthaste_smtp_listener_sessions_open",
		    open > 0 ? (uint64_t)open : 0, "listener", addr, "tag", tag,
		    NULL);
	}
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
	metrics_family(m, "posthaste_smtp_listener_sessions_open", "gauge",
	    "SMTP sessions open now, by listener (address as written and "
	    "port) and its tag.");
	listeners_write(m);
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
	metrics_family(m, "posthaste_dnsbl_listed_total", "counter",
	    "SMTP clients a DNS blocklist named.");
	metrics_u64(m, "posthaste_dnsbl_listed_total", get(SC_DNSBL_LISTED),
	    NULL);
	for (i = 0; i < SCK_MAX; i++) {
		metrics_family(m, checks[i].family, "counter", checks[i].help);
		for (c = 0; c < CW_MAX; c++)
			if (checks[i].words & CWB(c))
				metrics_u64(m, checks[i].family, table != NULL ?
				    atomic_load_explicit(&table->check[i][c],
				    memory_order_relaxed) : 0, "result",
				    check_words[c], NULL);
	}
	metrics_family(m, "posthaste_milter_actions_total", "counter",
	    "What milters answered, by action (modify: a message changed "
	    "at its end, also counted as accept).");
	for (i = 0; i < SCM_MAX; i++)
		metrics_u64(m, "posthaste_milter_actions_total", table != NULL ?
		    atomic_load_explicit(&table->milter[i],
		    memory_order_relaxed) : 0, "action", milter_actions[i],
		    NULL);
}
