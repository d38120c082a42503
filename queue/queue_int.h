/*
 * queue_int.h -- what the queue process's own files share, and nobody
 * else: queue.h is the queue's interface to the rest of the daemon.
 *
 * The queue is one process on one event loop, split into files by job
 * (queue.c says which holds what): the structures and the few globals
 * below are that process's state, read and changed only from its loop
 * (the syncer thread of queue_commit.c only reads dfd_queue, which is
 * set before the thread starts).  The files call each other both ways
 * on purpose (the scheduler sends, a result reschedules, a commit or the
 * load schedules, control reaches all of them): they are that one loop's
 * parts, and nothing outside queue/ includes this header.
 */
#ifndef POSTHASTE_QUEUE_INT_H
#define POSTHASTE_QUEUE_INT_H

#include <sys/types.h>

#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "tree.h"
#include "envelope.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"

#define ENVELOPE_FILE_MAX	SPOOL_ENVELOPE_MAX

struct qmsg;

/*
 * A delivery process the parent started for the queue (mda.c,
 * mda_hand_over): the queue sends a user's Maildir deliveries to it and
 * reads the results, without the parent in between.
 */
struct mdachan {
	struct mproc		 mp;
	TAILQ_ENTRY(mdachan)	 entry;
	char			 user[ENV_NAME_MAX];
	int			 inflight;
	int			 retired;	/* a reload: no more work */
};

/*
 * A user's Maildir envelope went to the parent to get a delivery process
 * (the asker): the user's other Maildir envelopes wait here, off the
 * ready list, until the channel arrives or the asker's result does (the
 * parent delivered it itself).  Else a burst would make the parent start
 * a process per envelope until the first channel is back.
 */
struct chanwait {
	TAILQ_ENTRY(chanwait)	 entry;
	char			 user[ENV_NAME_MAX];
	uint64_t		 asker;
	TAILQ_HEAD(, qenv)	 parked;
};

struct qenv {
	TAILQ_ENTRY(qenv)	 sched;		/* ready or waiting list */
	RB_ENTRY(qenv)		 node;
	struct qmsg		*msg;
	struct envelope		 evp;
	int			 inflight;
	struct mproc		*via;		/* where it is in flight */
	struct mdachan		*chan;		/* via a delivery process */
	int64_t			 dispatched;	/* when, in ms */
	/* committed, in ms; 0 when loaded from the spool (evp.ctime, s) */
	int64_t			 arrived;
	int			 bouncing;	/* kept until its DSN is queued */
	int			 removed;	/* smtpctl remove, in flight */
	int			 onfile;	/* queue/EVPID exists */
	int			 onlist;	/* 0 (in flight, bouncing,
						 * held), LIST_READY,
						 * LIST_WAIT, LIST_PARKED */
	struct chanwait		*park;		/* LIST_PARKED: on whose list */
};

struct qmsg {
	RB_ENTRY(qmsg)		 node;
	uint32_t		 msgid;
	int			 committed;
	int			 worker;	/* channel that created it */
	int			 nenv;		/* envelopes still queued */
	struct envelope		*pending;	/* incoming envelopes */
	size_t			 npending, cappending;
	struct strset		*pending_ids;	/* their random parts */
	TAILQ_ENTRY(qmsg)	 batch;		/* commit batch */
	uint32_t		 commit_reqid;
	int64_t			 commit_start;	/* ms: the worker asked */
	int			 onspool;	/* queue_load(): file seen */
	/*
	 * incoming: the queue's own descriptor, for the tail it writes at
	 * commit.  At most one per session in DATA plus the workers'
	 * spares: the parent's raised RLIMIT_NOFILE has room for them.
	 */
	int			 fd;
	uint64_t		 body_size;	/* the message, without footer */
	uint64_t		 head_size;	/* headers added after it */
	int			 inline_env;	/* its envelope is in the file */
	int			 corrupt;	/* queue_load(): moved away */
};

#define LIST_READY	1
#define LIST_WAIT	2
#define LIST_PARKED	3

/* channels across reloads, old and current (smtpd.h) */
#define QUEUE_MAX_SMTP	(2 * SMTPD_MAX_LIVE_WORKERS)	/* workers */
#define QUEUE_MAX_PEERS	(2 * SMTPD_MAX_GENERATIONS)	/* mta, lookup */

RB_HEAD(qmsg_tree, qmsg);
RB_PROTOTYPE(qmsg_tree, qmsg, node, qmsg_cmp)
RB_HEAD(qenv_tree, qenv);
RB_PROTOTYPE(qenv_tree, qenv, node, qenv_cmp)

/* queue.c: the process and its channels */
extern struct mproc	 q_parent;
extern struct mproc	 q_smtp[QUEUE_MAX_SMTP];
extern int		 q_smtp_open[QUEUE_MAX_SMTP];
extern struct mproc	 q_mtas[QUEUE_MAX_PEERS], q_lookups[QUEUE_MAX_PEERS];
extern int		 q_mtas_open[QUEUE_MAX_PEERS];
extern int		 q_lookups_open[QUEUE_MAX_PEERS];
extern struct mproc	*q_mta, *q_lookup;
extern int		 dfd_incoming, dfd_queue, dfd_corrupt;
extern int		 dfd_dmarc;		/* -1: no reports */
extern struct event	*ev_commit, *ev_sched;
extern int		 inflight;
extern int		 paused_mda, paused_mta;
uint32_t	queue_random(void);

/* queue_spool.c: the files of the spool, and loading them at start-up */
extern uint8_t		 spool_key[SPOOL_MAC_LEN];
extern struct qmsg_tree	 msgs;
extern struct qenv_tree	 envs;
int		spool_nearly_full(void);
void		message_unlink(int, uint32_t);
struct qmsg	*qmsg_find(uint32_t);
void		qmsg_free(struct qmsg *);
void		qmsg_pending_clear(struct qmsg *);
void		message_discard(struct qmsg *);
struct qmsg	*message_create(int, int *);
int		write_envelope_at(int, const char *, const struct envelope *,
		    int);
struct qenv	*qenv_find(uint64_t);
void		qenv_remove(struct qenv *);
int		qenv_update(struct qenv *);
void		queue_load(void);

/* queue_commit.c: messages from the workers, made durable */
void		message_add_envelope(struct qmsg *, const struct envelope *);
int64_t		now_ms(void);
void		syncer_init(void);
void		commit_batch(evutil_socket_t, short, void *);
void		queue_smtp_dispatch(struct mproc *, struct imsg *);

/* queue_sched.c: which envelope goes when */
void		qenv_unlist(struct qenv *);
int		sched_ready(struct qenv *);
int		sched_wait(struct qenv *);
time_t		retry_delay(const struct envelope *);
void		on_sched_timer(evutil_socket_t, short, void *);
void		queue_schedule(void);

/* queue_deliver.c: the agents, their channels and their results */
void		log_delivery(const struct qenv *, const char *,
		    const struct delivery_result *);
void		queue_delivery_result(const struct delivery_result *);
struct mdachan	*mdachan_pick(const struct envelope *);
int		chanwait_park(struct qenv *);
void		chanwait_answered(uint64_t);
void		queue_mta_dispatch(struct mproc *, struct imsg *);
void		queue_lookup_dispatch(struct mproc *, struct imsg *);
void		queue_mta_closed(struct mproc *);
void		queue_lookup_closed(struct mproc *);
void		mdachan_retire_all(void);
void		mdachan_add(struct imsg *);

/*
 * report_mail.c: a report (DMARC, TLS-RPT) mailed through the normal
 * path.  Its lookups use request ids with REPORT_MAIL_REQID set
 * (bounce.c's never reach it).
 */
#define REPORT_MAIL_REQID	0x80000000U
struct evbuffer;
int		report_mail_send(const char *what, const char *policy_domain,
		    const char *sender, const char *rcpt, char *text,
		    size_t len);
void		report_mail_lookup_dest(const struct lka_dest *);
void		report_mail_lookup_result(const struct lka_result *);
void		report_mail_date(time_t, char *, size_t);
void		report_mail_base64(struct evbuffer *, const unsigned char *,
		    size_t);
void		report_mail_quoted(struct evbuffer *, const char *);
char		*report_mail_join(const char *head, const char *rcpt,
		    const char *body, size_t *len);
char		*report_mail_text(struct evbuffer *);
/* the gzipped report as the last base64 part of the multipart body b,
 * then header h and body b as strings; 0, or -1 with both NULL */
int		report_mail_finish(struct evbuffer *h, struct evbuffer *b,
		    const char *boundary, const unsigned char *gz,
		    size_t gzlen, char **head, char **body);

/*
 * report_journal.c: a report's rows in the spool (dfd: its folder) and
 * the daily run (send_now, when enabled()); line_time reads a line's
 * time (0, or -1 when the line does not read).
 */
struct event;
struct report_journal {
	const char	*what;			/* "dmarc": logs, folder */
	int		 dfd;
	size_t		 line_max;
	int		 jitter;		/* random delay, seconds */
	int		(*line_time)(const char *, size_t, int64_t *);
	int		(*enabled)(void);
	int		(*send_now)(void);
	int		 fd;			/* records, appending */
	struct event	*ev_day;
};
void		report_journal_init(struct report_journal *);
void		report_journal_append(struct report_journal *, const char *,
		    size_t);
/* the run's file (what an earlier run left, or else the records):
 * its fd, -2 when there is nothing, -1 on error */
int		report_journal_begin(struct report_journal *);
int		report_journal_read(struct report_journal *, int fd,
		    int (*)(void *, const char *, size_t), void *);
/* the run's reports are queued: its file goes */
void		report_journal_done(struct report_journal *);

/* dmarc_send.c: the DMARC aggregate reports */
void		dmarc_send_init(void);
void		dmarc_send_record(const struct queue_dmarc_record *);
int		dmarc_send_now(void);

/* tlsrpt_send.c: the TLS-RPT reports (RFC 8460) */
extern int		 dfd_tlsrpt;		/* -1: no reports */
void		tlsrpt_send_init(void);
void		tlsrpt_send_record(const struct queue_tlsrpt_record *);
int		tlsrpt_send_now(void);

/* queue_control.c: smtpctl's requests */
void		queue_control_dispatch(struct mproc *, struct imsg *);
void		ctl_removed_landed(struct qenv *,
		    const struct delivery_result *);
int		ctl_selects(const struct ctl_request *, const struct qenv *);

/*
 * queue_requeue.c: smtpctl requeue, recipients routed again.  Its
 * lookups use request ids with REQUEUE_REQID set (and not
 * REPORT_MAIL_REQID); bounce.c's have neither.
 */
#define REQUEUE_REQID	0x40000000U
void		ctl_requeue(struct mproc *, const struct ctl_request *);
void		requeue_lookup_dest(struct mproc *, const struct lka_dest *);
void		requeue_lookup_result(struct mproc *,
		    const struct lka_result *);
void		requeue_lookup_closed(struct mproc *);

#endif
