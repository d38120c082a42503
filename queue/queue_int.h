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
	int			 onlist;	/* 0, LIST_READY, LIST_WAIT,
						 * LIST_PARKED */
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
	int			 onspool;	/* queue_load(): file seen */
	/*
	 * incoming: the queue's own descriptor, for the tail it writes at
	 * commit.  At most one per session in DATA plus the workers'
	 * spares: the parent's raised RLIMIT_NOFILE has room for them.
	 */
	int			 fd;
	uint64_t		 body_size;	/* the message, without footer */
	int			 inline_env;	/* its envelope is in the file */
	int			 corrupt;	/* queue_load(): moved away */
};

#define LIST_READY	1
#define LIST_WAIT	2
#define LIST_PARKED	3

/* channels across reloads, old and current (smtpd.h) */
#define QUEUE_MAX_SMTP	(2 * SMTPD_MAX_LIVE_WORKERS)	/* workers */
#define QUEUE_MAX_PEERS	(2 * SMTPD_MAX_GENERATIONS)	/* mta, lookup */
