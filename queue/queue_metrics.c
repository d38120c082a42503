/*
 * queue_metrics.c -- the queue's counters and gauges in the Prometheus
 * text format (common/metrics.c), for "smtpctl show metrics" and the
 * control process's GET /metrics.
 *
 * The queue is where the figures an operator graphs are true: a message
 * is received when it is durable (the 250 the client got), delivered,
 * deferred or bounced when an attempt's result lands here, and the
 * queue's size and age are read off the envelopes it holds.  Nothing is
 * kept for the metrics alone except the per-transport split and the
 * delivery delay histogram (queue.h struct queue_stats).
 *
 * The text goes to control as one IMSG_CTL_REPLY per line (a line is
 * far below struct ctl_reply's 1024 bytes: our names and labels are
 * fixed), the last one with the end flag.  Counters start at zero when
 * the daemon starts; Prometheus's rate() takes resets in its stride.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "proc.h"
#include "queue.h"
#include "queue_int.h"

/* from a local delivery's second to a retried relay's day */
const double queue_delay_bounds[QUEUE_DELAY_NBOUNDS] = {
	0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 86400
};

/* 1 KiB to 64 MiB, by fours */
const double queue_size_bounds[QUEUE_SIZE_NBOUNDS] = {
	1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216,
	67108864
};

/* a group commit is one sync: a millisecond on flash, more on disks */
const double queue_commit_bounds[QUEUE_COMMIT_NBOUNDS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1
};

static const char *const transports[3] = { "local", "relay", "lmtp" };

/*
 * relay: the mta's; lmtp: a mailbox an LMTP action hands to its server
 * (as mda/mda.c decides; the action looked up as queue_sched.c does);
 * local: the rest (mailboxes, files, programs).
 */
int
queue_transport(const struct envelope *evp)
{
	const struct action	*a;

	if (evp->dest_type == DEST_REMOTE)
		return QUEUE_TR_RELAY;
	if (evp->dest_type == DEST_MAILBOX && conf != NULL &&
	    (a = config_find_action(conf, evp->action)) != NULL &&
	    a->type == ACTION_LMTP)
		return QUEUE_TR_LMTP;
	return QUEUE_TR_LOCAL;
}

static void
by_transport(struct metrics *m, const char *name, const char *help,
    const uint64_t *v)
{
	int	i;

	metrics_family(m, name, "counter", help);
	for (i = 0; i < 3; i++)
		metrics_u64(m, name, v[i], "transport", transports[i], NULL);
}

/* what show queue calls each state, counted */
static void
queue_gauges(struct metrics *m)
{
	struct qenv	*e;
	uint64_t	 pending = 0, deferred = 0, inflight_ = 0, held = 0;
	uint64_t	 paused = 0;
	time_t		 now = time(NULL), oldest = 0;

	RB_FOREACH(e, qenv_tree, &envs) {
		if (e->inflight)
			inflight_++;
		else if (e->evp.flags & EF_HOLD)
			held++;
		else if (e->evp.flags & EF_PAUSED)
			paused++;
		else if (e->onlist == LIST_WAIT)
			deferred++;
		else
			pending++;
		if (oldest == 0 || e->evp.ctime < oldest)
			oldest = e->evp.ctime;
	}
	metrics_family(m, "posthaste_queue_envelopes", "gauge",
	    "Envelopes (one per recipient) in the queue, by state.");
	metrics_u64(m, "posthaste_queue_envelopes", pending, "state",
	    "pending", NULL);
	metrics_u64(m, "posthaste_queue_envelopes", deferred, "state",
	    "deferred", NULL);
	metrics_u64(m, "posthaste_queue_envelopes", inflight_, "state",
	    "inflight", NULL);
	metrics_u64(m, "posthaste_queue_envelopes", held, "state", "held",
	    NULL);
	metrics_u64(m, "posthaste_queue_envelopes", paused, "state",
	    "paused", NULL);
	metrics_family(m, "posthaste_queue_oldest_message_age_seconds",
	    "gauge", "Age of the oldest envelope in the queue (0: empty).");
	metrics_u64(m, "posthaste_queue_oldest_message_age_seconds",
	    oldest != 0 && now > oldest ? (uint64_t)(now - oldest) : 0, NULL);
}

static void
queue_metrics_build(struct metrics *m)
{
	metrics_family(m, "posthaste_messages_received_total", "counter",
	    "Messages accepted and made durable in the queue.");
	metrics_u64(m, "posthaste_messages_received_total",
	    queue_stats.queued, NULL);
	metrics_family(m, "posthaste_recipients_received_total", "counter",
	    "Envelopes (recipients) accepted into the queue.");
	metrics_u64(m, "posthaste_recipients_received_total",
	    queue_stats.envelopes, NULL);
	metrics_family(m, "posthaste_queue_commit_batches_total", "counter",
	    "Group commits of the spool (one sync each).");
	metrics_u64(m, "posthaste_queue_commit_batches_total",
	    queue_stats.commit_batches, NULL);
	by_transport(m, "posthaste_messages_delivered_total",
	    "Envelopes delivered, by transport.", queue_stats.delivered_by);
	by_transport(m, "posthaste_messages_deferred_total",
	    "Delivery attempts that failed temporarily, by transport.",
	    queue_stats.deferred_by);
	by_transport(m, "posthaste_messages_bounced_total",
	    "Envelopes that failed permanently or expired, by transport.",
	    queue_stats.bounced_by);
	queue_gauges(m);
	metrics_family(m, "posthaste_delivery_delay_seconds", "histogram",
	    "Time from queueing to successful delivery.");
	metrics_hist_write(m, "posthaste_delivery_delay_seconds",
	    &queue_stats.delivery_delay);
	metrics_family(m, "posthaste_message_size_bytes", "histogram",
	    "Size of the messages received, as spooled.");
	metrics_hist_write(m, "posthaste_message_size_bytes",
	    &queue_stats.message_size);
	metrics_family(m, "posthaste_queue_commit_latency_seconds",
	    "histogram", "Time from a worker's commit request to the "
	    "message being durable (the client's 250).");
	metrics_hist_write(m, "posthaste_queue_commit_latency_seconds",
	    &queue_stats.commit_latency);
}

void
queue_metrics_reply(struct mproc *p, uint32_t reqid)
{
	struct metrics	 m;
	const char	*text, *nl;
	size_t		 len;

	metrics_init(&m);
	queue_metrics_build(&m);
	if ((text = metrics_text(&m, &len)) == NULL) {
		log_warnx("metrics: cannot build the text");
		queue_ctl_reply(p, reqid, 1, 1, "cannot build the metrics");
		metrics_free(&m);
		return;
	}
	while (*text != '\0') {
		if ((nl = strchr(text, '\n')) == NULL)
			nl = text + strlen(text);
		queue_ctl_reply(p, reqid, 0, 0, "%.*s", (int)(nl - text),
		    text);
		text = *nl ? nl + 1 : nl;
	}
	queue_ctl_reply(p, reqid, 1, 0, NULL);
	metrics_free(&m);
}
