/*
 * control.c -- the control process: smtpctl's socket.
 *
 * Anyone may connect; each request is stamped with the peer's uid as the
 * kernel reports it (SO_PEERCRED), never as the client claims it.  Only
 * root may change anything.  A client that sends something malformed is
 * dropped; it cannot harm the daemon.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "mproc.h"
#include "privsep.h"
#include "proto.h"
#include "queue.h"
#include "smtpd.h"

#define CONTROL_MAX_CLIENTS	64

struct ctl_client {
	TAILQ_ENTRY(ctl_client) entry;
	uint32_t	 id;
	uid_t		 uid;
	struct mproc	 mp;
	int		 closing;
};

static TAILQ_HEAD(, ctl_client) clients = TAILQ_HEAD_INITIALIZER(clients);
static int		 nclients;
static uint32_t		 next_client;
static struct mproc	 c_parent, c_queue;
static struct event	*ev_accept;

static struct ctl_client *
client_find(uint32_t id)
{
	struct ctl_client	*c;

	TAILQ_FOREACH(c, &clients, entry)
		if (c->id == id)
			return c;
	return NULL;
}

static void
client_free(struct ctl_client *c)
{
	TAILQ_REMOVE(&clients, c, entry);
	mproc_clear(&c->mp);
	free(c);
	nclients--;
	if (nclients < CONTROL_MAX_CLIENTS)
		event_add(ev_accept, NULL);
}

static void
client_free_cb(evutil_socket_t fd, short ev, void *arg)
{
	client_free(arg);
}

/*
 * From inside the client's own dispatch the client must outlive the
 * call: stop reading it now, free it on the next turn of the loop.
 */
static void
client_free_later(struct ctl_client *c)
{
	struct timeval	tv = { 0, 0 };

	if (c->closing)
		return;
	c->closing = 1;
	mproc_stop_reading(&c->mp);
	if (event_base_once(ev_base, -1, EV_TIMEOUT, client_free_cb, c,
	    &tv) == -1)
		fatalx("event_base_once");
}

static void
client_closed(struct mproc *p)
{
	client_free(p->arg);
}

static void
client_reply(struct ctl_client *c, int status, const char *text)
{
	struct ctl_reply	r;

	memset(&r, 0, sizeof(r));
	r.end = 1;
	r.status = status;
	snprintf(r.text, sizeof(r.text), "%s", text);
	mproc_compose(&c->mp, IMSG_CTL_REPLY, 0, -1, &r, sizeof(r));
}

static int
cmd_needs_root(uint32_t cmd)
{
	switch (cmd) {
	case CTL_SHOW_QUEUE:
	case CTL_SHOW_STATS:
	case CTL_SHOW_STATUS:
	case CTL_SUBMIT:
		return 0;
	default:
		return 1;
	}
}

/*
 * Local submission (sendmail): the client's socket goes to an smtp
 * worker, by way of the parent, which adds the user name; from then on
 * the client speaks SMTP to the worker.  The client waits for the 220
 * greeting before it writes, so nothing is left unread here.
 */
static void
control_submit(struct ctl_client *c)
{
	struct local_session	ls;
	int			fd;

	if ((fd = dup(c->mp.ib.fd)) == -1) {
		log_warn("dup");
		client_reply(c, 1, "temporary failure");
		return;
	}
	memset(&ls, 0, sizeof(ls));
	ls.uid = (uint32_t)c->uid;
	mproc_compose(&c_parent, IMSG_SMTP_LOCAL, c->id, fd, &ls, sizeof(ls));
	client_free_later(c);
}

static void
client_dispatch(struct mproc *p, struct imsg *m)
{
	struct ctl_client	*c = p->arg;
	struct ctl_request	 req;

	if (c->closing) {
		if (m->fd != -1)
			close(m->fd);
		return;
	}
	if (m->hdr.type != IMSG_CTL_REQUEST || m->len != sizeof(req) ||
	    m->fd != -1) {
		if (m->fd != -1)
			close(m->fd);
		log_warnx("malformed request from uid %u; dropped",
		    (unsigned)c->uid);
		client_free_later(c);
		return;
	}
	memcpy(&req, m->data, sizeof(req));
	if (proto_valid_ctl_request(&req) == -1) {
		log_warnx("invalid request from uid %u; dropped",
		    (unsigned)c->uid);
		client_free_later(c);
		return;
	}
	req.uid = c->uid;		/* what the kernel says, not the client */
	req.reqid = c->id;
	if (cmd_needs_root(req.cmd) && c->uid != 0) {
		client_reply(c, 1, "permission denied");
		return;
	}
	switch (req.cmd) {
	case CTL_SUBMIT:
		control_submit(c);
		return;
	case CTL_UPDATE_TABLE: {
		char name[128];

		if (config_find_table(conf, req.arg) == NULL ||
		    strlen(req.arg) >= sizeof(name)) {
			client_reply(c, 1, "no such table");
			return;
		}
		memset(name, 0, sizeof(name));
		memcpy(name, req.arg, strlen(req.arg));
		mproc_compose(&c_parent, IMSG_LKA_UPDATE_TABLE, c->id, -1,
		    name, sizeof(name));
		client_reply(c, 0, "table reloaded");
		return;
	}
	case CTL_PAUSE_SMTP:
	case CTL_RESUME_SMTP:
		mproc_compose(&c_parent, req.cmd == CTL_PAUSE_SMTP ?
		    IMSG_PAUSE : IMSG_RESUME, c->id, -1, NULL, 0);
		client_reply(c, 0, req.cmd == CTL_PAUSE_SMTP ?
		    "smtp paused" : "smtp resumed");
		return;
	case CTL_LOG_VERBOSE:
	case CTL_LOG_BRIEF:
		log_setverbose(req.cmd == CTL_LOG_VERBOSE);
		client_reply(c, 0, "logging level changed");
		return;
	default:
		mproc_compose(&c_queue, IMSG_CTL_REQUEST, c->id, -1, &req,
		    sizeof(req));
	}
}

static void
on_accept(evutil_socket_t lfd, short ev, void *arg)
{
	struct ctl_client	*c;
	struct ucred		 cred;
	socklen_t		 len = sizeof(cred);
	int			 fd;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) ==
	    -1) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("SO_PEERCRED");
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->id = ++next_client;
	c->uid = cred.uid;
	mproc_init(&c->mp, fd, "control client", client_dispatch, c);
	c->mp.closed = client_closed;
	c->mp.untrusted = 1;
	TAILQ_INSERT_TAIL(&clients, c, entry);
	if (++nclients >= CONTROL_MAX_CLIENTS)
		event_del(ev_accept);
}

static void
control_queue_dispatch(struct mproc *p, struct imsg *m)
{
	struct ctl_reply	 r;
	struct ctl_client	*c;

	switch (m->hdr.type) {
	case IMSG_CTL_REPLY:
		PROTO_READ(p, m, &r, proto_valid_ctl_reply);
		if ((c = client_find(r.reqid)) == NULL)
			return;		/* the client went away */
		mproc_compose(&c->mp, IMSG_CTL_REPLY, 0, -1, &r, sizeof(r));
		break;
	default:
		fatalx("unexpected message %u from queue", m->hdr.type);
	}
}

static void
control_parent_dispatch(struct mproc *p, struct imsg *m)
{
	fatalx("unexpected message %u from parent", m->hdr.type);
}

void
control_main(struct proc_fds *f)
{
	proc_setup("control");
	privsep_drop(SMTPD_USER, SMTPD_EMPTY_DIR);
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	sandbox_enter(SANDBOX_CONTROL);
	mproc_init(&c_parent, f->parent, "parent", control_parent_dispatch,
	    NULL);
	mproc_init(&c_queue, f->queue, "queue", control_queue_dispatch, NULL);
	ev_accept = event_new(ev_base, f->ctlsock, EV_READ | EV_PERSIST,
	    on_accept, NULL);
	event_add(ev_accept, NULL);
	proc_on_term(NULL);
	event_base_dispatch(ev_base);
	exit(0);
}
