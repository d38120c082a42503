/*
 * mda.c -- local delivery processes, forked by the parent as the user.
 *
 * Forking and exec'ing a delivery program per message is what makes
 * local delivery slow in most MTAs.  Instead the parent keeps a small
 * pool of long-lived delivery processes per (uid, needs-mail-group):
 * each one has become that user for good, sits in its own seccomp
 * sandbox, and serves delivery requests that carry the envelope and the
 * spool file descriptor.  A process idle for MDA_IDLE_SECS exits.  No
 * delivery process ever runs as root: mail for root (uid 0) goes only to
 * its mbox, appended by a process that is not root (mda_root.c).
 *
 * The folder mda/ is local delivery.  This file runs in the parent: the
 * pool, and the fork into each delivery process; mda_local.c (Maildir,
 * mbox), mda_program.c, mda_root.c and mda_lmtp.c run in the delivery
 * processes (mda_program.c and mda_root.c also hold the parent's side of
 * their one-shot processes).  The parent reaches this folder only through
 * mda_proc.h and gives it its callbacks with mda_init(), so mda/ calls
 * nothing in smtpd/.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "destmac.h"
#include "log.h"
#include "mda.h"
#include "mda_proc.h"
#include "mproc.h"
#include "pwcache.h"
#include "privsep.h"
#include "proc.h"
#include "sysusers.h"
#include "util.h"

#define MDA_IDLE_SECS	30
#define MDA_PER_USER	4	/* processes serving one user at once */
#define MDA_BATCH_MAX	64	/* requests begun between two syncs */
#define MDA_SYNC_GAP_MS	20	/* under load, a sync at most this often */

/*
 * Kinds of delivery process: as the user, as the user with the mail
 * group (mbox spool), and LMTP clients, which run as the daemon user
 * because the LMTP server does the writing as the recipient.
 */
#define MDA_KIND_USER	0
#define MDA_KIND_MBOX	1
#define MDA_KIND_LMTP	2

static int	child_kind;	/* in a delivery process: what it is */

struct mda_job {
	TAILQ_ENTRY(mda_job) entry;
	uint64_t	evpid;
};

struct mda_proc {
	TAILQ_ENTRY(mda_proc) entry;
	uid_t		 uid;
	int		 kind;		/* MDA_KIND_* */
	pid_t		 pid;
	struct mproc	 mp;
	int		 closed;
	int		 handed;	/* its channel went to the queue */
	int		 inflight;
	TAILQ_HEAD(, mda_job) jobs;
	char		 name[64];
};

static TAILQ_HEAD(, mda_proc) procs = TAILQ_HEAD_INITIALIZER(procs);

/* the parent's side (smtpd.c, mda_init): where results and channels go */
static void	(*report_result)(const struct delivery_result *);
static void	(*report_channel)(const struct mda_channel *, int fd);

void
mda_init(void (*result)(const struct delivery_result *),
    void (*channel)(const struct mda_channel *, int fd))
{
	report_result = result;
	report_channel = channel;
}

void
mda_report_result(const struct delivery_result *r)
{
	report_result(r);
}
static int	nprocs;

static void	mda_child_main(int fd, const struct passwd *, int kind)
		    __attribute__((noreturn));

int
mda_count(void)
{
	return nprocs + mda_program_count();
}

static void
result(uint64_t evpid, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
result(uint64_t evpid, int status, const char *fmt, ...)
{
	struct delivery_result	r;
	va_list			ap;

	memset(&r, 0, sizeof(r));
	r.evpid = evpid;
	r.status = status;
	va_start(ap, fmt);
	vsnprintf(r.text, sizeof(r.text), fmt, ap);
	va_end(ap);
	snprintf(r.relay, sizeof(r.relay), "local");
	mda_report_result(&r);
}

static void
proc_fail_jobs(struct mda_proc *mp, const char *why)
{
	struct mda_job	*j;

	while ((j = TAILQ_FIRST(&mp->jobs)) != NULL) {
		TAILQ_REMOVE(&mp->jobs, j, entry);
		result(j->evpid, PROTO_TEMPFAIL, "4.3.0 %s", why);
		free(j);
	}
	mp->inflight = 0;
}

static void
proc_closed(struct mproc *p)
{
	struct mda_proc	*mp = p->arg;

	if (mp->closed)
		return;
	mp->closed = 1;
	event_del(p->ev);
	proc_fail_jobs(mp, "delivery process went away");
}

static void
proc_dispatch(struct mproc *p, struct imsg *m)
{
	struct mda_proc		*mp = p->arg;
	struct delivery_result	 r;
	struct mda_job		*j;

	if (m->hdr.type != IMSG_MDA_RESULT)
		fatalx("unexpected message %u from %s", m->hdr.type, mp->name);
	PROTO_READ(p, m, &r, proto_valid_delivery_result);
	TAILQ_FOREACH(j, &mp->jobs, entry)
		if (j->evpid == r.evpid)
			break;
	if (j == NULL)
		fatalx("%s answered for an envelope it was not given",
		    mp->name);
	TAILQ_REMOVE(&mp->jobs, j, entry);
	free(j);
	mp->inflight--;
	mda_report_result(&r);
}

/*
 * A new delivery process.  With handfd, its channel is not the parent's:
 * the descriptor is returned there, for the queue (mda_hand_over).
 */
static struct mda_proc *
proc_spawn(const struct passwd *pw, int kind, int *handfd)
{
	struct mda_proc	*mp;
	int		 sv[2];
	pid_t		 pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		return NULL;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	if (pid == 0) {
		destmac_key_forget();	/* the parent's; see smtpd.c */
		close(sv[0]);
		mda_child_main(sv[1], pw, kind);
	}
	close(sv[1]);
	if ((mp = calloc(1, sizeof(*mp))) == NULL)
		fatal("calloc");
	mp->uid = pw->pw_uid;
	mp->kind = kind;
	mp->pid = pid;
	TAILQ_INIT(&mp->jobs);
	snprintf(mp->name, sizeof(mp->name), "delivery process for %s",
	    pw->pw_name);
	if (handfd != NULL) {
		mp->handed = 1;
		*handfd = sv[0];
	} else {
		mproc_init(&mp->mp, sv[0], mp->name, proc_dispatch, mp);
		mp->mp.closed = proc_closed;
	}
	TAILQ_INSERT_TAIL(&procs, mp, entry);
	nprocs++;
	log_debug("started %s (pid %d)%s", mp->name, (int)pid,
	    handfd != NULL ? " for the queue" : "");
	return mp;
}

static struct mda_proc *
proc_pick(const struct passwd *pw, int kind)
{
	struct mda_proc	*mp, *best = NULL;
	int		 n = 0;

	/*
	 * Load one process before starting the next: a delivery process
	 * makes a whole batch durable with one sync (see mda_batch_turn),
	 * so a deeper backlog in one process is cheaper than shallow ones
	 * in several.  Another process starts only when the backlog is over
	 * a batch (a slow mailbox, a big message), so one stuck delivery
	 * cannot hold up the rest of a user's mail for long.
	 */
	TAILQ_FOREACH(mp, &procs, entry) {
		if (mp->closed || mp->handed || mp->uid != pw->pw_uid ||
		    mp->kind != kind)
			continue;
		n++;
		if (best == NULL || mp->inflight < best->inflight)
			best = mp;
	}
	if (best != NULL && (best->inflight < MDA_BATCH_MAX ||
	    n >= MDA_PER_USER))
		return best;
	if (nprocs >= conf->mda_max && best != NULL)
		return best;
	if (nprocs >= conf->mda_max)
		return NULL;
	return proc_spawn(pw, kind, NULL);
}

/*
 * Maildir deliveries for a user without a process of the queue's: a new
 * delivery process whose channel goes to the queue, which then sends the
 * user's Maildir mail to it directly (the parent no longer relays every
 * message and its result).  The envelope that asked comes back with the
 * channel, for the queue to send again.  0 if handed over.
 */
static int
mda_hand_over(const struct envelope *evp, int fd, const struct passwd *pw)
{
	struct mda_proc		*mp;
	struct mda_channel	 ch;
	int			 chanfd, n = 0;

	TAILQ_FOREACH(mp, &procs, entry)
		if (mp->uid == pw->pw_uid && mp->kind == MDA_KIND_USER)
			n++;
	if (n >= MDA_PER_USER || nprocs >= conf->mda_max ||
	    proc_spawn(pw, MDA_KIND_USER, &chanfd) == NULL)
		return -1;
	close(fd);		/* the queue opens the message itself */
	memset(&ch, 0, sizeof(ch));
	ch.evpid = evp->id;
	snprintf(ch.user, sizeof(ch.user), "%s", evp->user);
	report_channel(&ch, chanfd);
	return 0;
}

void
mda_deliver(const struct envelope *evp, int fd)
{
	struct passwd	*pw;
	struct action	*a;
	struct mda_proc	*mp;
	struct mda_job	*j;
	int		 kind;

	if ((a = config_find_action(conf, evp->action)) == NULL) {
		close(fd);
		result(evp->id, PROTO_TEMPFAIL,
		    "4.3.5 action \"%s\" is no longer configured", evp->action);
		return;
	}
	if (evp->dest_type == DEST_REMOTE || a->type == ACTION_RELAY) {
		close(fd);
		result(evp->id, PROTO_TEMPFAIL,
		    "4.3.5 a remote envelope was sent to local delivery");
		return;
	}
	/* a cached answer: this runs for every local delivery */
	errno = 0;
	if ((pw = pwcache_getpwnam(evp->user)) == NULL) {
		close(fd);
		if (errno != 0)
			result(evp->id, PROTO_TEMPFAIL,
			    "4.3.0 user database lookup failed");
		else
			result(evp->id, PROTO_PERMFAIL,
			    "5.1.1 no such user: %s", evp->user);
		return;
	}
	if (pw->pw_uid == 0) {
		/*
		 * Root's mail is only ever appended to its mbox, whatever
		 * the action: no file, program, Maildir or LMTP as root.
		 * Lookup emits nothing else for root; this is the backstop.
		 */
		if (evp->dest_type != DEST_MAILBOX) {
			close(fd);
			result(evp->id, PROTO_PERMFAIL, "5.7.1 refusing to "
			    "deliver to a file or program as root");
			return;
		}
		mda_root_deliver(evp, fd, pw);
		return;
	}
	/*
	 * Never as the daemon's own accounts, nor a mailbox as nobody
	 * (common/sysusers.c): lookup refuses them; this is the backstop.
	 */
	if (sysusers_is_daemon(pw->pw_uid) || (evp->dest_type ==
	    DEST_MAILBOX && sysusers_no_mailbox(pw->pw_uid))) {
		close(fd);
		result(evp->id, PROTO_PERMFAIL, "5.1.1 refusing to deliver "
		    "as %s, which never receives mail", evp->user);
		return;
	}
	/* a command needs exec, which the pooled processes cannot do */
	if ((evp->dest_type == DEST_PROGRAM || (a->type == ACTION_MDA &&
	    evp->dest_type == DEST_MAILBOX)) && (pw = getpwnam(evp->user)) ==
	    NULL) {
		/* its environment wants the whole entry (the shell) */
		close(fd);
		result(evp->id, PROTO_TEMPFAIL, "4.3.0 user database lookup "
		    "failed");
		return;
	}
	if (evp->dest_type == DEST_PROGRAM) {
		mda_program_deliver(evp, fd, pw, evp->path);
		return;
	}
	if (a->type == ACTION_MDA && evp->dest_type == DEST_MAILBOX) {
		mda_program_deliver(evp, fd, pw, a->path);
		return;
	}
	kind = a->type == ACTION_MBOX && evp->dest_type == DEST_MAILBOX ?
	    MDA_KIND_MBOX : MDA_KIND_USER;
	if (proto_direct_delivery(evp, a) && mda_hand_over(evp, fd, pw) == 0)
		return;
	if (a->type == ACTION_LMTP && evp->dest_type == DEST_MAILBOX) {
		errno = 0;
		if ((pw = pwcache_getpwnam(SMTPD_USER)) == NULL) {
			close(fd);
			result(evp->id, PROTO_TEMPFAIL, "4.3.0 user %s for "
			    "LMTP delivery not found", SMTPD_USER);
			return;
		}
		kind = MDA_KIND_LMTP;
	}
	if ((mp = proc_pick(pw, kind)) == NULL) {
		close(fd);
		result(evp->id, PROTO_TEMPFAIL,
		    "4.3.2 too many delivery processes");
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->evpid = evp->id;
	TAILQ_INSERT_TAIL(&mp->jobs, j, entry);
	mp->inflight++;
	mproc_compose(&mp->mp, IMSG_MDA_DELIVER, 0, fd, evp, sizeof(*evp));
}

int
mda_reaped(pid_t pid, int status)
{
	struct mda_proc	*mp;

	if (mda_program_reaped(pid, status))
		return 1;
	TAILQ_FOREACH(mp, &procs, entry)
		if (mp->pid == pid)
			break;
	if (mp == NULL)
		return 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
			log_warnx("%s (pid %d) killed by the seccomp sandbox",
			    mp->name, (int)pid);
		else
			log_warnx("%s (pid %d) died (status %d)", mp->name,
			    (int)pid, status);
	}
	proc_fail_jobs(mp, "delivery process died");
	TAILQ_REMOVE(&procs, mp, entry);
	nprocs--;
	if (!mp->handed)
		mproc_clear(&mp->mp);
	free(mp);
	return 1;
}

void
mda_shutdown(void)
{
	struct mda_proc	*mp;

	/* closing the channel lets each finish its delivery and exit */
	TAILQ_FOREACH(mp, &procs, entry) {
		/* (the queue's processes end when the queue does) */
		if (!mp->closed && !mp->handed) {
			mp->closed = 1;
			event_del(mp->mp.ev);
			shutdown(mp->mp.ib.fd, SHUT_RDWR);
		}
	}
}

void
mda_kill_all(void)
{
	struct mda_proc	*mp;

	TAILQ_FOREACH(mp, &procs, entry)
		kill(mp->pid, SIGKILL);
	mda_program_kill_all();
}

/*
 * The delivery process.  It is the user for good (no saved ids), in a
 * sandbox without exec, and reads requests until its channel closes or
 * it has been idle for a while.
 */
/*
 * What the mailbox writers need of a queued message: its file, size and
 * envelope addresses (written into sender and rcpt, each of
 * MDA_ADDR_MAX bytes, which msg then points to).
 */
void
mda_message_init(struct mda_message *msg, const struct envelope *evp,
    int fd, char *sender, char *rcpt)
{
	addr_to_string(&evp->sender, sender, MDA_ADDR_MAX);
	addr_to_string(&evp->dest, rcpt, MDA_ADDR_MAX);
	memset(msg, 0, sizeof(*msg));
	spool_msg_set(&msg->file, fd, evp);
	msg->sender = sender;
	msg->rcpt = rcpt;
	msg->hostname = conf->hostname;
}

/*
 * One delivery.  A Maildir delivery only begins here when `pend' is given
 * (1 is returned): the batch completes it after its syncs.
 */
static int
mda_child_deliver(const struct passwd *pw, struct envelope *evp, int fd,
    struct delivery_result *r, struct mda_maildir_pending *pend)
{
	struct mda_message	 msg;
	struct mda_expand_ctx	 ctx;
	struct action		*a;
	char			 sender[MDA_ADDR_MAX];
	char			 rcpt[MDA_ADDR_MAX];
	char			 path[CONF_PATH_MAX];
	static char		 head[MDA_HEAD_MAX];
	const char		*tmpl;
	ssize_t			 n;
	int			 rc;

	memset(r, 0, sizeof(*r));
	r->evpid = evp->id;
	snprintf(r->relay, sizeof(r->relay), "local");
	if (child_kind != MDA_KIND_LMTP && strcmp(evp->user, pw->pw_name) != 0)
		fatalx("delivery for %s sent to process of %s", evp->user,
		    pw->pw_name);
	mda_message_init(&msg, evp, fd, sender, rcpt);
	a = config_find_action(conf, evp->action);
	if (a == NULL) {
		r->status = PROTO_TEMPFAIL;
		snprintf(r->text, sizeof(r->text), "4.3.5 no action %s",
		    evp->action);
		return 0;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.username = pw->pw_name;
	ctx.homedir = pw->pw_dir;
	ctx.dest_user = evp->dest.user;
	ctx.dest_domain = evp->dest.domain;
	ctx.rcpt_user = evp->rcpt.user;
	ctx.rcpt_domain = evp->rcpt.domain;
	ctx.sender = sender;

	if (child_kind == MDA_KIND_LMTP) {
		if (a->type != ACTION_LMTP)
			fatalx("%s delivery sent to the LMTP process",
			    evp->action);
		mda_lmtp_deliver(a->path, evp, fd, r);
		return 0;
	}
	n = mda_read_head(&msg.file, head, sizeof(head));
	msg.head = head;
	msg.headlen = n > 0 ? (size_t)n : 0;
	if (mda_head_loops(msg.head, msg.headlen, rcpt)) {
		r->status = PROTO_PERMFAIL;
		snprintf(r->text, sizeof(r->text), "5.4.6 mail forwarding "
		    "loop for %s (Delivered-To already present)", rcpt);
		return 0;
	}
	if (evp->dest_type == DEST_FILE) {
		rc = mda_file_deliver(evp->path, &msg, r->text,
		    sizeof(r->text));
	} else if (a->type == ACTION_MBOX) {
		snprintf(path, sizeof(path), "%s/%s", MDA_MBOX_DIR,
		    pw->pw_name);
		rc = mda_mbox_deliver(path, &msg, r->text, sizeof(r->text));
	} else {
		tmpl = a->path[0] ? a->path : "~/Maildir";
		if (mda_expand_path(tmpl, &ctx, path, sizeof(path)) == -1) {
			r->status = PROTO_PERMFAIL;
			snprintf(r->text, sizeof(r->text),
			    "5.3.5 cannot expand maildir path \"%.200s\"", tmpl);
			return 0;
		}
		/* "junk": DMARC quarantine into the Maildir++ folder Junk */
		if (a->junk && (evp->flags & EF_QUARANTINE) &&
		    strlcat(path, "/.Junk", sizeof(path)) >= sizeof(path)) {
			r->status = PROTO_PERMFAIL;
			snprintf(r->text, sizeof(r->text),
			    "5.3.5 maildir path too long");
			return 0;
		}
		if (pend != NULL) {
			rc = mda_maildir_begin(path, &msg, pend, r->text,
			    sizeof(r->text));
			if (rc == MDA_OK)
				return 1;
		} else
			rc = mda_maildir_deliver(path, &msg, r->text,
			    sizeof(r->text));
	}
	switch (rc) {
	case MDA_OK:
		r->status = PROTO_OK;
		if (r->text[0] == '\0')
			snprintf(r->text, sizeof(r->text), "2.0.0 delivered");
		break;
	case MDA_PERMFAIL:
		r->status = PROTO_PERMFAIL;
		break;
	default:
		r->status = PROTO_TEMPFAIL;
		break;
	}
	return 0;
}

/*
 * Maildir deliveries are made durable in a pipeline, one syncfs() per
 * turn.  Each turn begins the requests that have arrived (their messages
 * written into tmp/, batch k+1) while the batch before (k) waits in new/
 * for its renames to reach the disk; then one sync covers both:
 *
 *	begin k+1 in tmp/	k renamed into new/ last turn
 *	syncfs			k's renames and k+1's files are on disk
 *	report k		delivered
 *	rename k+1 into new/	it waits for the next turn's sync
 *
 * A file is renamed only after a sync that followed its writing, and a
 * success is reported only after a sync that followed its rename.  Under
 * load that is one sync per batch rather than two.  When nothing new has
 * arrived the next turn comes at once, begins nothing and only syncs: no
 * result waits for more work.  Other kinds of delivery are complete (and
 * durable) when they return, and are reported right away.
 */
struct mda_batch {
	struct {
		struct mda_maildir_pending	p;
		struct delivery_result		r;
	}	item[MDA_BATCH_MAX];
	int	n;
};

static void
mda_child_report(struct imsgbuf *ib, const struct delivery_result *r)
{
	if (imsg_compose(ib, IMSG_MDA_RESULT, 0, -1, r, sizeof(*r)) == -1)
		_exit(0);
}

static void
mda_child_flush(struct imsgbuf *ib)
{
	struct pollfd	wfd;
	int		rc;

	while ((rc = imsg_flush_nb(ib)) != 1) {
		if (rc == -1)
			_exit(0);
		wfd.fd = ib->fd;
		wfd.events = POLLOUT;
		(void)poll(&wfd, 1, 1000);
	}
}

/*
 * Read what the parent has sent, without waiting.  Each request carries
 * a descriptor, and the kernel hands them over one recvmsg() each: read
 * until nothing is left, or until the imsg buffer holds all the
 * descriptors it can (a batch's worth), so that everything waiting is
 * begun together.  1 at the end of the stream.
 */
static int
mda_child_read(struct imsgbuf *ib)
{
	ssize_t	n;

	while (ib->nrfds + IMSG_FDS_PER_WRITE <= IMSG_MAX_FDS) {
		if ((n = imsg_read(ib)) == 0)
			return 1;
		if (n == -1)
			return errno != EAGAIN && errno != EWOULDBLOCK;
	}
	return 0;
}

/*
 * Take up to a batch of the requests read, and deliver them.  Begun
 * Maildir deliveries join `b'; every other one is reported.  Returns how
 * many requests were taken.
 */
static int
mda_child_begin(const struct passwd *pw, struct imsgbuf *ib,
    struct mda_batch *b)
{
	struct envelope	 evp;
	struct imsg	 m;
	int		 n, rc;

	if (b->n == 0)
		mda_maildir_next_batch();
	for (n = 0; b->n < MDA_BATCH_MAX; n++) {
		if ((rc = imsg_get(ib, &m)) == -1)
			fatalx("malformed stream from the parent");
		if (rc == 0)
			break;
		if (m.hdr.type != IMSG_MDA_DELIVER || m.len != sizeof(evp) ||
		    m.fd == -1)
			fatalx("bad request from the parent");
		memcpy(&evp, m.data, sizeof(evp));
		if (envelope_valid(&evp) == -1)
			fatalx("invalid envelope from the parent");
		/* the queue talks to some directly: only its own user's mail */
		if (child_kind != MDA_KIND_LMTP &&
		    strcmp(evp.user, pw->pw_name) != 0)
			fatalx("a delivery for %s sent to %s's process",
			    evp.user, pw->pw_name);
		if (mda_child_deliver(pw, &evp, m.fd, &b->item[b->n].r,
		    child_kind == MDA_KIND_LMTP ? NULL : &b->item[b->n].p))
			b->n++;
		else
			mda_child_report(ib, &b->item[b->n].r);
		close(m.fd);
	}
	return n;
}

/*
 * One turn of the pipeline: one sync for the renames of `renamed' and the
 * files of `written'; `renamed' is reported; `written' is renamed into
 * new/ and kept for the next turn's sync.  A failed sync fails both: their
 * files are removed and the queue tries them again later.
 */
static void
mda_batch_turn(struct imsgbuf *ib, struct mda_batch *written,
    struct mda_batch *renamed)
{
	struct delivery_result	*r;
	int			 i, n, ok = 1;

	if (mda_maildir_sync() == -1) {
		log_warn("syncfs");
		ok = 0;
	}
	for (i = 0; i < renamed->n; i++) {
		r = &renamed->item[i].r;
		if (ok) {
			mda_maildir_release(&renamed->item[i].p);
			r->status = PROTO_OK;
			snprintf(r->text, sizeof(r->text), "2.0.0 delivered");
		} else {
			mda_maildir_abort(&renamed->item[i].p);
			r->status = PROTO_TEMPFAIL;
			snprintf(r->text, sizeof(r->text),
			    "4.3.0 maildir: sync failed");
		}
		mda_child_report(ib, r);
	}
	renamed->n = 0;
	for (i = n = 0; i < written->n; i++) {
		r = &written->item[i].r;
		if (!ok) {
			mda_maildir_abort(&written->item[i].p);
			r->status = PROTO_TEMPFAIL;
			snprintf(r->text, sizeof(r->text),
			    "4.3.0 maildir: sync failed");
			mda_child_report(ib, r);
		} else if (mda_maildir_finish(&written->item[i].p, r->text,
		    sizeof(r->text)) != MDA_OK) {
			/* finish removed the file; this one is retried */
			r->status = PROTO_TEMPFAIL;
			mda_child_report(ib, r);
		} else if (n++ != i)
			written->item[n - 1] = written->item[i];
	}
	written->n = n;
}

static void
mda_child_main(int fd, const struct passwd *pwin, int kind)
{
	struct passwd		 pw = *pwin;
	struct imsgbuf		 ib;
	struct pollfd		 pfd;
	struct group		*gr;
	struct mda_batch	*written, *renamed, *swap;
	gid_t			 groups[2];
	int			 ngroups = 1, keep[1], rc, n, taken, eof = 0;
	int64_t			 last_sync = 0, wait;
	char			 title[64];
	static struct mda_batch	 batch[2];

	keep[0] = fd;
	close_all_but(keep, 1);
	imsg_pid_reset();
	/* copy what we need before the struct's storage can change */
	if ((pw.pw_name = strdup(pwin->pw_name)) == NULL ||
	    (pw.pw_dir = strdup(pwin->pw_dir)) == NULL)
		_exit(1);
	signal(SIGTERM, SIG_IGN);	/* finish, then exit on EOF */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	groups[0] = pw.pw_gid;
	child_kind = kind;
	if (kind == MDA_KIND_MBOX && (gr = getgrnam("mail")) != NULL)
		groups[ngroups++] = gr->gr_gid;
	snprintf(title, sizeof(title), "delivery %s%s", pw.pw_name,
	    kind == MDA_KIND_LMTP ? " (lmtp)" : "");
	privsep_title(title);
	log_reopen();
	if (chdir(pw.pw_dir) == -1 && chdir("/") == -1)
		fatal("chdir");
	privsep_drop_ids(pw.pw_uid, pw.pw_gid, groups, ngroups);
	umask(077);
	if (child_kind == MDA_KIND_LMTP) {
		/* names resolve now; the sandbox has sockets, no files */
		mda_lmtp_init();
		sandbox_enter(SANDBOX_MTA);
	} else
		sandbox_enter(SANDBOX_MDA);

	if ((n = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, n | O_NONBLOCK) == -1)
		fatal("fcntl");
	imsgbuf_init(&ib, fd);
	written = &batch[0];
	renamed = &batch[1];
	for (;;) {
		if (!eof)
			eof = mda_child_read(&ib);
		/* at the end of the stream nobody will hear more results */
		taken = eof ? 0 : mda_child_begin(&pw, &ib, written);
		/*
		 * Under load, gather: each sync is a journal commit, and a
		 * commit every few messages is work the file system does
		 * for every process on it (the queue's commits wait behind
		 * ours).  So when the last sync was less than
		 * MDA_SYNC_GAP_MS ago and the batch has room, more requests
		 * are waited for, for the rest of the gap, before the next
		 * one.  A lone message, or the first after a pause, is
		 * synced at once.
		 */
		if (taken > 0 && !eof && written->n < MDA_BATCH_MAX &&
		    (wait = last_sync + MDA_SYNC_GAP_MS - monotonic_ms()) > 0) {
			mda_child_flush(&ib);	/* other kinds' results */
			pfd.fd = fd;
			pfd.events = POLLIN;
			if ((rc = poll(&pfd, 1, (int)wait)) == -1 &&
			    errno != EINTR)
				fatal("poll");
			if (rc > 0)
				continue;
		}
		if (written->n > 0 || renamed->n > 0) {
			mda_batch_turn(&ib, written, renamed);
			last_sync = monotonic_ms();
			swap = renamed;
			renamed = written;
			written = swap;
		}
		mda_child_flush(&ib);
		if (taken > 0 || renamed->n > 0)
			continue;
		if (eof)
			_exit(0);
		pfd.fd = fd;
		pfd.events = POLLIN;
		do {
			rc = poll(&pfd, 1, MDA_IDLE_SECS * 1000);
		} while (rc == -1 && errno == EINTR);
		if (rc == -1)
			fatal("poll");
		if (rc == 0)
			_exit(0);	/* idle */
	}
}
