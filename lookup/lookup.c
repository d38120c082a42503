/*
 * lookup.c -- the lookup process.
 *
 * Runs unprivileged but not chrooted (it reads the password database and
 * the tables), in its own sandbox.  It answers smtp workers' questions
 * about recipients and the mta's questions about hosts.
 *
 * Lookup alone decides what a recipient becomes.  The workers face the
 * network and are not trusted with that: each RCPT destination leaves
 * here sealed with a key the workers never hold (rcpt.c, destmac.h), and
 * the queue refuses a destination without the seal.  The key is the
 * parent's, inherited by fork (smtpd.c), so we hold it before the first
 * request, in every generation.
 *
 * The folder lookup/ is the lookup process: this file (its entry point and
 * dispatch), rules.c, rcpt.c and expand.c (recipients), auth.c, dns.c,
 * mx.c and sts.c (MTA-STS policies).  The table backends it reads are
 * the table/ library.
 */
#include <sys/types.h>

#include <grp.h>
#include <pwd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "addr.h"
#include "dns.h"
#include "log.h"
#include "lookup.h"
#include "mproc.h"
#include "privsep.h"
#include "proto.h"
#include "table.h"
#include "proc.h"

static struct mproc	l_parent, l_queue, l_mta;
static struct mproc	l_smtp[SMTPD_MAX_WORKERS];

static void
lookup_smtp_dispatch(struct mproc *p, struct imsg *m)
{
	struct lka_rcpt_req	req;
	struct lka_auth_req	areq;
	struct lka_rdns		rdns;

	switch (m->hdr.type) {
	case IMSG_LKA_RCPT:
		PROTO_READ(p, m, &req, proto_valid_lka_rcpt_req);
		rcpt_start(p, &req);
		break;
	case IMSG_LKA_VRFY:
	case IMSG_LKA_EXPN:
		PROTO_READ(p, m, &req, proto_valid_lka_rcpt_req);
		lookup_vrfy(p, &req, m->hdr.type == IMSG_LKA_EXPN);
		break;
	case IMSG_LKA_AUTH:
		PROTO_READ(p, m, &areq, proto_valid_lka_auth_req);
		lookup_auth(p, &areq);
		break;
	case IMSG_LKA_RDNS:
		PROTO_READ(p, m, &rdns, proto_valid_lka_rdns);
		dns_lka_rdns(p, &rdns);
		break;
	case IMSG_LKA_SENDER:
		PROTO_READ(p, m, &req, proto_valid_lka_rcpt_req);
		lookup_sender(p, &req);
		break;
	case IMSG_LKA_DNSBL: {
		struct lka_dnsbl r;

		PROTO_READ(p, m, &r, proto_valid_lka_dnsbl);
		checks_dnsbl(p, &r);
		break;
	}
	case IMSG_LKA_SPF: {
		struct lka_spf r;

		PROTO_READ(p, m, &r, proto_valid_lka_spf);
		checks_spf(p, &r);
		break;
	}
	case IMSG_LKA_AUTHCHECK: {
		struct lka_authcheck *r;

		if ((r = malloc(sizeof(*r))) == NULL)
			fatal("malloc");
		PROTO_READ(p, m, r, proto_valid_lka_authcheck);
		checks_authcheck(p, r);
		free(r);
		break;
	}
	case IMSG_LKA_ETRN: {
		struct lka_result r;

		/* RFC 1985: only trusted clients may start a queue run */
		PROTO_READ(p, m, &req, proto_valid_lka_rcpt_req);
		memset(&r, 0, sizeof(r));
		r.reqid = req.reqid;
		if (lookup_client_trusted(&req)) {
			r.status = PROTO_OK;
			r.ndest = strcmp(req.rcpt.user, "@") == 0;
			snprintf(r.reply, sizeof(r.reply), "%s",
			    req.rcpt.domain);
		} else {
			r.status = PROTO_PERMFAIL;
			snprintf(r.reply, sizeof(r.reply), "459 4.7.1 <%s>: "
			    "Node not allowed: not a trusted client",
			    req.rcpt.domain);
		}
		mproc_compose(p, IMSG_LKA_ETRN, req.reqid, -1, &r, sizeof(r));
		break;
	}
	default:
		fatalx("unexpected message %u from %s", m->hdr.type, p->name);
	}
}

static void
lookup_mta_dispatch(struct mproc *p, struct imsg *m)
{
	struct lka_mx_req	req;
	struct lka_tlsrpt	*o;

	switch (m->hdr.type) {
	case IMSG_LKA_MX:
		PROTO_READ(p, m, &req, proto_valid_lka_mx_req);
		dns_lka_mx(p, &req);
		break;
	case IMSG_LKA_TLSRPT:
		if ((o = malloc(sizeof(*o))) == NULL)
			fatal("malloc");
		PROTO_READ(p, m, o, proto_valid_lka_tlsrpt);
		tlsrpt_collect(o);
		free(o);
		break;
	default:
		fatalx("unexpected message %u from %s", m->hdr.type, p->name);
	}
}

static void
lookup_parent_dispatch(struct mproc *p, struct imsg *m)
{
	struct forward_req	fr;

	switch (m->hdr.type) {
	case IMSG_PARENT_FORWARD:
		PROTO_READ(p, m, &fr, proto_valid_forward_req);
		rcpt_forward_reply(&fr, m->fd);
		break;
	case IMSG_LKA_UPDATE_TABLE: {
		char name[128];

		proto_get(p, m, name, sizeof(name));
		if (proto_valid_string(name, sizeof(name)) == -1)
			fatalx("malformed table name from the parent");
		if (table_reload(name) == -1)
			log_warnx("update table %s: no such table", name);
		else
			log_info("table %s reloaded by smtpctl", name);
		break;
	}
	case IMSG_CTL_TABLE_LOOKUP: {
		struct ctl_table_lookup	req;

		PROTO_READ(p, m, &req, proto_valid_ctl_table_lookup);
		lookup_table_ctl(p, &req);
		break;
	}
	default:
		fatalx("unexpected message %u from %s", m->hdr.type, p->name);
	}
}

/*
 * A worker that exits (after a reload, its generation retiring) closes
 * its channel; the others still need us, so that is no reason to go.
 */
struct mproc *
lookup_queue_channel(void)
{
	return &l_queue;
}

static void
lookup_peer_closed(struct mproc *p)
{
	mproc_clear(p);
}

/* a file's directory: the file may be replaced in it (makemap, editors) */
static void
read_dir_of(void *arg, const char *path)
{
	char	dir[CONF_PATH_MAX], *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir) ||
	    (slash = strrchr(dir, '/')) == NULL)
		return;
	if (slash == dir)
		slash[1] = '\0';	/* a file in / */
	else
		*slash = '\0';
	sandbox_read_only(dir);
}

/*
 * What lookup may read once sandboxed (Landlock on Linux, unveil on
 * OpenBSD; issue 16): /etc (passwd, group, nsswitch.conf, resolv.conf,
 * hosts and the other name service files), systemd's userdb directory,
 * the CPU count in /sys, the directory of each file: and db: table, and
 * the directory of each :include: file an aliases table names.
 * .forward files are opened by the parent.  A reload starts a new
 * lookup with the new set; an :include: in a directory first named by
 * "smtpctl update table" is refused (a temporary failure, logged) until
 * then.
 */
static void
lookup_read_set(void)
{
	struct table	*t;

	sandbox_read_only("/etc");
	/* nss_systemd lists the userdb services' sockets here */
	sandbox_read_only("/run/systemd/userdb");
	/*
	 * Berkeley DB asks for the number of CPUs at each open: glibc reads
	 * it here, and else falls back to sched_getaffinity(), which the
	 * filter forbids (a reopened db: table killed lookup)
	 */
	sandbox_read_only("/sys/devices/system/cpu");
	TAILQ_FOREACH(t, &conf->tables, entry) {
		if (t->backend != TABLE_FILE && t->backend != TABLE_DB)
			continue;
		read_dir_of(NULL, t->path);
		if (table_is_aliases(t) &&
		    table_alias_includes(t, read_dir_of, NULL) == -1)
			log_warnx("table %s: :include: files not read", t->name);
	}
}

void
lookup_main(struct proc_fds *f)
{
	static char	names[SMTPD_MAX_WORKERS][24];
	int		i;

	proc_setup("lookup");
	privsep_drop(SMTPD_USER, NULL);
	/*
	 * Load the name service modules now: a first lookup maps shared
	 * libraries, which the sandbox would not allow later.
	 */
	(void)getpwnam("posthaste-nss-warmup");
	(void)getgrnam("posthaste-nss-warmup");
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	mproc_defer_turns();
	dns_init();	/* reads resolv.conf and hosts */
	checks_init();	/* reads the Public Suffix List */
	sts_init();	/* the trust anchors, the MTA-STS cache */
	table_remote_start(ev_base);	/* proc: starts its programs */
	lookup_read_set();
	sandbox_enter(SANDBOX_LOOKUP);
	mproc_init(&l_parent, f->parent, "parent", lookup_parent_dispatch,
	    NULL);
	rcpt_init(&l_parent);
	auth_system_init(f->auth);	/* "auth" without a table */
	/* the queue resolves bounce recipients like an smtp session */
	mproc_init(&l_queue, f->queue, "queue", lookup_smtp_dispatch, NULL);
	mproc_init(&l_mta, f->mta, "mta", lookup_mta_dispatch, NULL);
	/* an old generation's mta goes first; the queue may close too */
	l_mta.closed = lookup_peer_closed;
	l_queue.closed = lookup_peer_closed;
	for (i = 0; i < f->nsmtp; i++) {
		snprintf(names[i], sizeof(names[i]), "smtp worker %d", i + 1);
		mproc_init(&l_smtp[i], f->smtp[i], names[i],
		    lookup_smtp_dispatch, NULL);
		l_smtp[i].closed = lookup_peer_closed;
	}
	proc_on_term(NULL);
	event_base_dispatch(ev_base);
	exit(0);
}
