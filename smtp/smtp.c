/*
 * smtp.c -- an smtp worker: accepts clients and runs their sessions.
 *
 * Each worker is pre-forked, unprivileged, chrooted into an empty
 * directory and sandboxed.  It serves many sessions on one event loop;
 * a slow or hostile client costs a few hundred bytes of state and never
 * blocks anyone.  The worker knows no users and no tables: every
 * recipient is resolved by the lookup process, and message data goes
 * straight into a spool file whose descriptor the queue hands over.
 *
 * The folder smtp/ is the smtp worker process and nothing else: smtp.c
 * (the worker), smtp_session.c (the state machine) and the files it calls
 * for each part of a session.  It talks to the queue, lookup and the
 * parent over imsg (common/proto.h) and includes no other process's header.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "keys_client.h"
#include "log.h"
#include "mproc.h"
#include "platform.h"
#include "privsep.h"
#include "proto.h"
#include "smtp_session.h"
#include "proc.h"

struct smtp_worker	 smtp_worker;

struct accept_slot {
	int		 fd;
	uint32_t	 lindex;	/* position in conf->listeners */
	struct listener	*l;
	struct event	*ev;
};

static struct accept_slot	*slots;
static int			 nslots;
static int			 stopping;
static int			 retiring;	/* a reload replaced us */
static int			 paused;	/* smtpctl pause smtp */
static struct event		*ev_resume_accept;

static void	smtp_queue_dispatch(struct mproc *, struct imsg *);
static void	smtp_lookup_dispatch(struct mproc *, struct imsg *);
static void	smtp_parent_dispatch(struct mproc *, struct imsg *);

static void
accept_pause(void)
{
	struct timeval	tv = { 1, 0 };
	int		i;

	for (i = 0; i < nslots; i++)
		event_del(slots[i].ev);
	evtimer_add(ev_resume_accept, &tv);
}

static void
accept_resume(evutil_socket_t fd, short ev, void *arg)
{
	int	i;

	if (stopping || retiring || paused)
		return;
	for (i = 0; i < nslots; i++)
		event_add(slots[i].ev, NULL);
}

/* connections taken: fewer than ACCEPT_BATCH when no more wait */
#define ACCEPT_BATCH	32
static int
accept_some(struct accept_slot *slot)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 fd, n;

	/*
	 * Until EAGAIN, a few at most: fairness between listeners and
	 * sessions.  The failing accept4() that ends most wakeups is the
	 * cheaper way: taking one per wakeup and leaving the rest to the
	 * next turn of the loop (the socket is level-triggered) cost more
	 * epoll_wait() and imsg reads than it saved (smtp-source, 20
	 * sessions: 30.5 system calls per message against 31.7).
	 */
	for (n = 0; n < ACCEPT_BATCH; n++) {
		sslen = sizeof(ss);
		fd = platform_accept_nb(slot->fd, (struct sockaddr *)&ss,
		    &sslen);
		if (fd == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR || errno == ECONNABORTED)
				return n;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				log_warn("accept");
				accept_pause();
				return n;
			}
			fatal("accept");
		}
		session_new(fd, slot->l, slot->lindex, &ss, sslen);
	}
	return n;
}

static void
on_accept(evutil_socket_t lfd, short ev, void *arg)
{
	accept_some(arg);
}

static void
slots_close(void)
{
	int	i;

	for (i = 0; i < nslots; i++) {
		event_del(slots[i].ev);
		close(slots[i].fd);
	}
	nslots = 0;
	evtimer_del(ev_resume_accept);
}

/* SIGTERM: the daemon stops; sessions end at their next chance (421) */
static void
smtp_shutdown(void)
{
	if (stopping)
		return;
	stopping = 1;
	slots_close();
	log_debug("stopping: %zu sessions open", smtp_worker.nsessions);
	session_shutdown_all();
	smtp_maybe_exit();
}

/*
 * A reload started a new generation of workers with the new
 * configuration, on the same listening sockets where the address stayed
 * (smtpd.c).  We stop accepting, but first take the connections already
 * queued on our sockets: a socket the new configuration no longer has
 * would reset them when it closes.  Every session we hold is served to
 * its end under the configuration it started with, as if nothing had
 * happened -- a client that connected a moment before the reload must
 * not see "421 shutting down" at its next command.  We exit when the
 * last one ends; the parent sends SIGTERM (smtp_shutdown) to a worker
 * whose sessions outlive its grace period.
 */
static void
smtp_retire(void)
{
	char	title[48];
	int	i, n;

	if (stopping || retiring)
		return;
	retiring = 1;
	snprintf(title, sizeof(title), "smtp worker %d (retired)",
	    smtp_worker.id);
	privsep_title(title);	/* ps tells the generations apart */
	/* bounded: the new generation takes new ones meanwhile */
	for (i = 0; i < nslots && !paused; i++)
		for (n = 0; n < 8; n++)
			if (accept_some(&slots[i]) < ACCEPT_BATCH)
				break;
	slots_close();
	log_debug("retired by a reload: %zu sessions open",
	    smtp_worker.nsessions);
	smtp_maybe_exit();
}

int
smtp_stopping(void)
{
	return stopping;
}

void
smtp_maybe_exit(void)
{
	if ((stopping || retiring) && smtp_worker.nsessions == 0)
		exit(0);
}

void
smtp_main(int worker, struct proc_fds *f)
{
	struct listener	*l;
	char		 title[32];
	int		 i;

	snprintf(title, sizeof(title), "smtp worker %d", worker);
	proc_setup(title);
	smtp_worker.id = worker;
	/*
	 * Certificates are read while we are still root and outside the
	 * chroot; the keys stay in the keys process (keys_client.h).
	 */
	keys_client_init(f->keys);
	smtp_tls_init();
	privsep_drop(SMTPD_USER, SMTPD_EMPTY_DIR);
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	mproc_defer_turns();
	sandbox_enter(SANDBOX_SMTP);

	mproc_init(&smtp_worker.parent, f->parent, "parent",
	    smtp_parent_dispatch, NULL);
	mproc_init(&smtp_worker.queue, f->queue, "queue",
	    smtp_queue_dispatch, NULL);
	smtp_dkim_init(f->keys_dkim);
	mproc_init(&smtp_worker.lookup, f->lookup, "lookup",
	    smtp_lookup_dispatch, NULL);

	nslots = f->nlisten;
	if ((slots = calloc(nslots + 1, sizeof(*slots))) == NULL)
		fatal("calloc");
	i = 0;
	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (i >= nslots)
			break;
		slots[i].fd = f->listen[i];
		slots[i].lindex = (uint32_t)i;
		slots[i].l = l;
		slots[i].ev = event_new(ev_base, slots[i].fd,
		    EV_READ | EV_PERSIST, on_accept, &slots[i]);
		event_add(slots[i].ev, NULL);
		i++;
	}
	ev_resume_accept = evtimer_new(ev_base, accept_resume, NULL);
	proc_on_term(smtp_shutdown);
	session_init();
	smtp_milter_init();
	event_base_dispatch(ev_base);
	exit(0);
}

static void
smtp_parent_dispatch(struct mproc *p, struct imsg *m)
{
	struct local_session	ls;
	struct milter_connect	mcr;

	switch (m->hdr.type) {
	case IMSG_MILTER_CONNECT:
		proto_get(p, m, &mcr, sizeof(mcr));
		if (proto_valid_milter_connect(&mcr) == -1)
			fatalx("parent: malformed milter connection");
		smtp_milter_connected(&mcr, m->fd);
		break;
	case IMSG_SMTP_LOCAL:
		proto_get(p, m, &ls, sizeof(ls));
		if (m->fd == -1 || proto_valid_string(ls.user,
		    sizeof(ls.user)) == -1 || ls.user[0] == '\0')
			fatalx("parent: malformed local session");
		if (stopping) {
			close(m->fd);
			break;
		}
		session_new_local(m->fd, &ls);
		break;
	case IMSG_PAUSE:
	case IMSG_RESUME:
		mproc_check_len(p, m, 0);
		/* open sessions go on; only new connections wait */
		paused = m->hdr.type == IMSG_PAUSE;
		if (paused) {
			int i;

			for (i = 0; i < nslots; i++)
				event_del(slots[i].ev);
		} else
			accept_resume(-1, 0, NULL);
		break;
	case IMSG_RETIRE:
		mproc_check_len(p, m, 0);
		smtp_retire();
		break;
	default:
		fatalx("unexpected message %u from parent", m->hdr.type);
	}
}

static void
smtp_queue_dispatch(struct mproc *p, struct imsg *m)
{
	struct queue_msg_resp	r;

	switch (m->hdr.type) {
	case IMSG_QUEUE_CREATED:
		PROTO_READ(p, m, &r, proto_valid_queue_msg_resp);
		if ((r.status == PROTO_OK) != (m->fd != -1))
			fatalx("queue: descriptor and status disagree");
		session_queue_created(&r, m->fd);
		break;
	case IMSG_QUEUE_COMMITTED:
		PROTO_READ(p, m, &r, proto_valid_queue_msg_resp);
		session_queue_committed(&r);
		break;
	case IMSG_QUEUE_ETRN: {
		struct queue_etrn q;

		proto_get(p, m, &q, sizeof(q));
		if (proto_valid_string(q.domain, sizeof(q.domain)) == -1)
			fatalx("queue: malformed ETRN reply");
		session_queue_etrn(&q);
		break;
	}
	default:
		fatalx("unexpected message %u from queue", m->hdr.type);
	}
}

static void
smtp_lookup_dispatch(struct mproc *p, struct imsg *m)
{
	struct lka_dest		d;
	struct lka_result	r;
	struct lka_rdns		rdns;
	struct session		*s;

	switch (m->hdr.type) {
	case IMSG_LKA_RCPT_DEST:
		PROTO_READ(p, m, &d, proto_valid_lka_dest);
		session_lookup_dest(&d);
		break;
	case IMSG_LKA_RCPT_RESULT:
		PROTO_READ(p, m, &r, proto_valid_lka_result);
		session_lookup_result(&r);
		break;
	case IMSG_LKA_SENDER:
		PROTO_READ(p, m, &r, proto_valid_lka_result);
		session_lookup_sender(&r);
		break;
	case IMSG_LKA_ETRN:
		PROTO_READ(p, m, &r, proto_valid_lka_result);
		session_lookup_etrn(&r);
		break;
	case IMSG_LKA_RDNS:
		PROTO_READ(p, m, &rdns, proto_valid_lka_rdns);
		session_lookup_rdns(&rdns);
		break;
	case IMSG_LKA_DNSBL: {
		struct lka_dnsbl bl;

		PROTO_READ(p, m, &bl, proto_valid_lka_dnsbl);
		smtp_checks_dnsbl_reply(&bl);
		break;
	}
	case IMSG_LKA_SPF: {
		struct lka_spf sp;

		PROTO_READ(p, m, &sp, proto_valid_lka_spf);
		smtp_checks_spf_reply(&sp);
		break;
	}
	case IMSG_LKA_AUTHCHECK: {
		struct lka_authcheck_res ar;

		PROTO_READ(p, m, &ar, proto_valid_lka_authcheck_res);
		smtp_checks_authcheck_reply(&ar);
		break;
	}
	case IMSG_LKA_AUTH:
		PROTO_READ(p, m, &r, proto_valid_lka_result);
		if ((s = session_find(r.reqid)) != NULL)
			smtp_auth_result(s, &r);
		break;
	default:
		fatalx("unexpected message %u from lookup", m->hdr.type);
	}
}
