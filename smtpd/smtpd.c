/*
 * smtpd.c -- the privileged parent.
 *
 * The parent reads the configuration, prepares the spool, binds every
 * listening socket and the control socket, creates the IPC channels and
 * forks the children, each of which drops privileges at once.  It stays
 * root for two jobs only: forking local delivery processes as the
 * recipient user (mda.c), and supervising.  A core child that dies takes
 * the whole daemon down (fail closed): a half-running MTA that accepts
 * mail it cannot deliver, or delivers mail it cannot log, is worse than
 * one that is visibly down.
 *
 * What a recipient becomes (the mailbox, file or program, and the user
 * to deliver as) is decided by lookup alone: the smtp workers, which
 * face the network, only carry lookup's answers to the queue, sealed
 * with a key they never hold (destmac.h), and the queue refuses any
 * destination without lookup's seal.
 *
 * The folder smtpd/ is the parent process: this file (main(), the
 * children, reload, shutdown), pidfile.c, forward.c (a user's ~/.forward,
 * read as that user) and offline.c (sendmail's offline files).  It is root
 * and faces no network input; it starts the other processes through their
 * entry points (common/proc.h) and the pool of local delivery processes
 * through mda/mda_proc.h.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ctl.h"
#include "destmac.h"
#include "dkim_keys.h"
#include "forward.h"
#include "log.h"
#include "mda/mda_proc.h"
#include "milter_connect.h"
#include "mproc.h"
#include "offline.h"
#include "pidfile.h"
#include "platform.h"
#include "privsep.h"
#include "ratelimit.h"
#include "smtpcount.h"
#include "proto.h"
#include "sesscount.h"
#include "proc.h"
#include "sysusers.h"
#include "table.h"
#include "tls_policy.h"
#include "util.h"


enum child_kind { C_SMTP, C_QUEUE, C_LOOKUP, C_MTA, C_CONTROL, C_AUTH, C_KEYS };

/*
 * Children come in two kinds of lifetime.  The queue and control live as
 * long as the daemon.  Lookup, mta and the smtp workers form a
 * generation: a reload starts a new one with the new configuration and
 * retires the old one -- its workers stop accepting and finish their
 * sessions, its mta the deliveries it holds, then its lookup goes.
 */
#define MAX_CHILDREN	256

struct child {
	int		 used;
	enum child_kind	 kind;
	int		 index;
	int		 generation;
	pid_t		 pid;
	char		 title[32];
	struct mproc	 mp;		/* channel from the parent */
	int		 exited;
	int		 retiring;	/* of an old generation, stopping */
	time_t		 retire_by;	/* smtp, mta: SIGTERM then */
};

/*
 * How long a worker retired by a reload may go on serving the sessions
 * it had (smtp.c, smtp_retire()), and the old mta the deliveries it held
 * (mta.c, mta_retire()), before SIGTERM stops them (421 at a session's
 * next command outside a transaction; the queue retries what the mta
 * still held).  An idle session times out before that; this bounds the
 * few that keep sending.
 */
#define RETIRE_GRACE	300
/*
 * From SIGTERM to SIGKILL of what is left: smtpd(8) promises the
 * deliveries in flight this long (the mta waits MTA_STOP_SECS of it for
 * the replies to its ends of data, then the queue records them).
 */
#define SHUTDOWN_WAIT	30
#define OFFLINE_RESCAN_SECS 10	/* the offline directory, looked at again */
#define RETIRES_GENTLY(c) ((c)->kind == C_SMTP || (c)->kind == C_MTA)

static struct child	 children[MAX_CHILDREN];
static int		 generation;
static int		 shutting_down;
static int		 exit_status;
static struct event	*ev_shutdown_timer;
static struct event	*ev_retire;	/* on_retire_timer() */
static struct event	*ev_offline;	/* on_offline_timer() */
static pid_t		 offline_pid;	/* the pick-up running, or 0 */
static const char	*conf_path;

static struct child	*queue_child;
static int		 smtp_paused;	/* smtpctl pause smtp */
static struct event	*ev_signals[4];	/* CHLD, TERM, INT, HUP */

static void	parent_dispatch(struct mproc *, struct imsg *);
static void	parent_child_closed(struct mproc *);
static void	broadcast_smtp(uint32_t);
static void	lsocks_settle(int);
static void	lsocks_close_all(void);
static void	parent_shutdown(int status);

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr, "usage: smtpd [-dnVv] [-f file] [-P pidfile]\n");
	exit(1);
}

static void
mkdir_owned(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	struct stat	st;

	if (mkdir(path, mode) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	if (lstat(path, &st) == -1)
		fatal("stat %s", path);
	if (!S_ISDIR(st.st_mode))
		fatalx("%s: not a directory", path);
	if ((st.st_uid != uid || st.st_gid != gid) &&
	    chown(path, uid, gid) == -1)
		fatal("chown %s", path);
	if ((st.st_mode & 07777) != mode && chmod(path, mode) == -1)
		fatal("chmod %s", path);
}

/*
 * The spool is root's (0711) so that the queue, chrooted into it, cannot
 * rename it away; everything inside belongs to the queue user alone.
 */
static void
setup_spool(void)
{
	static const char *subdirs[] = {
		"incoming", "queue", "corrupt", "offline", "purge", "dmarc",
		"tlsrpt", NULL
	};
	struct passwd	*pw;
	char		 path[CONF_PATH_MAX + 32];
	uid_t		 quid;
	gid_t		 qgid;
	int		 i;

	if ((pw = getpwnam(SMTPD_QUEUE_USER)) == NULL)
		fatalx("user %s does not exist (see INSTALL)",
		    SMTPD_QUEUE_USER);
	quid = pw->pw_uid;
	qgid = pw->pw_gid;
	if (getpwnam(SMTPD_USER) == NULL)
		fatalx("user %s does not exist (see INSTALL)", SMTPD_USER);
	sysusers_init();	/* every child inherits the answer */
	mkdir_owned(conf->spool, 0711, 0, 0);
	for (i = 0; subdirs[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", conf->spool, subdirs[i]);
		/*
		 * offline/ takes mail from sendmail while the daemon is down:
		 * any user may create a file there, the sticky bit keeps
		 * users from touching each other's, and the pick-up checks
		 * owner, type and links before it submits anything.
		 */
		mkdir_owned(path, strcmp(subdirs[i], "offline") == 0 ?
		    01777 : 0700, quid, qgid);
	}
	/* lookup's MTA-STS policy cache (lookup/sts.c) is lookup's own */
	if ((pw = getpwnam(SMTPD_USER)) == NULL)
		fatalx("user %s does not exist (see INSTALL)", SMTPD_USER);
	snprintf(path, sizeof(path), "%s/sts", conf->spool);
	mkdir_owned(path, 0700, pw->pw_uid, pw->pw_gid);
	if (mkdir(SMTPD_EMPTY_DIR, 0755) == -1 && errno != EEXIST)
		fatal("mkdir %s", SMTPD_EMPTY_DIR);
}

/*
 * SO_REUSEPORT would let us share a port with another running instance
 * without a word; a plain bind first makes that an error.
 */
static void
probe_listener(struct listener *l)
{
	int	fd, on = 1;

	if ((fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
	    -1)
		fatal("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		fatal("setsockopt SO_REUSEADDR");
	if (l->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)
		fatal("setsockopt IPV6_V6ONLY");
	if (bind(fd, (struct sockaddr *)&l->ss, l->sslen) == -1)
		fatal("bind %s port %u", l->ifname, l->port);
	close(fd);
}

static int
bind_listener(struct listener *l)
{
	int	fd, on = 1;

	if ((fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		log_warn("socket");
		return -1;
	}
	/*
	 * Each worker gets its own socket on the same address: the kernel
	 * spreads new connections across the workers' accept queues, so no
	 * worker is woken for a connection another one takes.  It also lets
	 * a new generation listen while the old one is still draining.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1 ||
	    (l->ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)) {
		log_warn("setsockopt");
		close(fd);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&l->ss, l->sslen) == -1 ||
	    listen(fd, 1024) == -1) {
		log_warn("bind %s port %u", l->ifname, l->port);
		close(fd);
		return -1;
	}
	return fd;
}

static int
bind_control(void)
{
	struct sockaddr_un	sun;
	mode_t			old;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(conf->socket) >= sizeof(sun.sun_path))
		fatalx("socket path too long: %s", conf->socket);
	strncpy(sun.sun_path, conf->socket, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		fatal("socket");
	if (unlink(conf->socket) == -1 && errno != ENOENT)
		fatal("unlink %s", conf->socket);
	old = umask(0111);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("bind %s", conf->socket);
	umask(old);
	/* anyone may connect; control checks each peer's uid per command */
	if (chmod(conf->socket, 0666) == -1)
		fatal("chmod %s", conf->socket);
	if (listen(fd, 64) == -1)
		fatal("listen");
	return fd;
}

/*
 * The descriptors whoever started us left open (a shell's redirections,
 * an init system's or a test harness's pipes) are not ours to keep: the
 * parent runs for months as root and every child would inherit them.
 * Everything above stderr is closed before anything of ours is opened,
 * and 0-2 are made valid (/dev/null) so that no socket or file of ours
 * lands there to be written by a stray message to stdout.
 */
static void
fds_sanitize(void)
{
	int	fd;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		if (open("/dev/null", O_RDWR) != fd) {
			fprintf(stderr, "smtpd: cannot open /dev/null\n");
			exit(1);
		}
	}
	if (platform_close_range(3, ~0U) == -1) {
		fprintf(stderr, "smtpd: close_range: %s\n", strerror(errno));
		exit(1);
	}
}

static void
socketpair_or_die(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair");
}

static void
child_keep_fds(struct proc_fds *f)
{
	int	keep[SMTPD_MAX_WORKERS * 2 + 64 + 2 * CONF_MAX_PKIS], n = 0, i;

#define KEEP(x)	do { if ((x) != -1) keep[n++] = (x); } while (0)
	KEEP(f->parent);
	KEEP(f->queue);
	KEEP(f->lookup);
	KEEP(f->mta);
	KEEP(f->control);
	KEEP(f->auth);
	KEEP(f->ctlsock);
	KEEP(f->metricsock);
	KEEP(f->keys);
	KEEP(f->keys_dkim);
	for (i = 0; i < f->nkeyfiles; i++)
		KEEP(f->keyfiles[i]);
	for (i = 0; i < f->nsmtp; i++) {
		KEEP(f->smtp[i]);
		KEEP(f->smtp_dkim[i]);
	}
	for (i = 0; i < f->nlisten; i++)
		KEEP(f->listen[i]);
#undef KEEP
	close_all_but(keep, n);
	/* channels must survive nothing; no child ever execs */
	for (i = 0; i < n; i++)
		fcntl(keep[i], F_SETFD, 0);
}

static void
proc_fds_init(struct proc_fds *f)
{
	memset(f, 0, sizeof(*f));
	f->parent = f->queue = f->lookup = f->mta = f->control = -1;
	f->auth = -1;
	f->ctlsock = f->metricsock = -1;
	f->keys = f->keys_dkim = -1;
	memset(f->smtp_dkim, -1, sizeof(f->smtp_dkim));
}

/*
 * A child forked from the running event loop (a reload's generation)
 * inherits the parent's signal events.  libevent handles signals of one
 * event base per process, in globals: unless the child removes the
 * parent's, its own base's first signal event finds "signals already
 * added" to another base, and until then a signal would go to the
 * parent's handlers, writing to the parent's descriptor numbers.
 * Removing them touches no descriptor (signal events live outside
 * epoll) and restores the handlers the parent found.
 */
static void
forget_parent_signals(void)
{
	size_t	i;

	for (i = 0; i < sizeof(ev_signals) / sizeof(ev_signals[0]); i++)
		if (ev_signals[i] != NULL)
			evsignal_del(ev_signals[i]);
}

static void
spawn(struct child *c, struct proc_fds *f)
{
	pid_t	pid;

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		forget_parent_signals();
		/* only the queue and lookup may seal destinations */
		if (c->kind != C_QUEUE && c->kind != C_LOOKUP)
			destmac_key_forget();
		/*
		 * Table secrets: lookup keeps those it checks credentials
		 * against, the mta reads the relay passwords and then
		 * forgets the rest itself (mta_main()), every other child
		 * forgets them all now.
		 */
		if (c->kind == C_LOOKUP)
			config_forget_secrets(conf, CONF_FORGET_RELAY_AUTH);
		else if (c->kind != C_MTA)
			config_forget_secrets(conf, CONF_FORGET_ALL);
		child_keep_fds(f);
		switch (c->kind) {
		case C_SMTP:
			smtp_main(c->index, f);
		case C_QUEUE:
			queue_main(f);
		case C_LOOKUP:
			lookup_main(f);
		case C_MTA:
			mta_main(f);
		case C_CONTROL:
			control_main(f);
		case C_AUTH:
			auth_system_main(f);
		case C_KEYS:
			keys_main(f);
		}
		_exit(1);
	}
	c->pid = pid;
}

static struct child *
child_new(enum child_kind kind, int index, const char *title)
{
	struct child	*c;
	int		 i;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (!children[i].used)
			break;
	if (i == MAX_CHILDREN)
		fatalx("too many children (reloads piling up?)");
	c = &children[i];
	memset(c, 0, sizeof(*c));
	c->used = 1;
	c->kind = kind;
	c->index = index;
	c->generation = generation;
	snprintf(c->title, sizeof(c->title), "%s", title);
	return c;
}

/* fork a child and open the parent's channel to it */
static struct child *
start_child(enum child_kind kind, int index, const char *title,
    struct proc_fds *f)
{
	struct child	*c;
	int		 ps[2];

	socketpair_or_die(ps);
	c = child_new(kind, index, title);
	f->parent = ps[1];
	spawn(c, f);
	close(ps[1]);
	mproc_init(&c->mp, ps[0], c->title, parent_dispatch, c);
	c->mp.closed = parent_child_closed;
	return c;
}

/*
 * "metrics listen on": bound here (the port may be below 1024) and
 * handed to control, which serves it (control/metrics_http.c); -1 when
 * not configured.  At start only, as the control socket.
 */
static int
bind_metrics(void)
{
	struct listener		 l;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	int			 fd;

	if (conf->metrics_addr[0] == '\0')
		return -1;
	memset(&l, 0, sizeof(l));
	snprintf(l.ifname, sizeof(l.ifname), "%s", conf->metrics_addr);
	l.port = conf->metrics_port;
	sin = (struct sockaddr_in *)(void *)&l.ss;
	sin6 = (struct sockaddr_in6 *)(void *)&l.ss;
	if (inet_pton(AF_INET, conf->metrics_addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(l.port);
		l.sslen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, conf->metrics_addr,
	    &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(l.port);
		l.sslen = sizeof(*sin6);
	} else
		fatalx("metrics listen on %s: not an address",
		    conf->metrics_addr);
	probe_listener(&l);
	if ((fd = bind_listener(&l)) == -1)
		fatalx("metrics listen on %s port %u: cannot listen",
		    conf->metrics_addr, conf->metrics_port);
	return fd;
}

/* queue and control: for the whole life of the daemon */
static void
start_core(int ctlsock, int metricsock)
{
	struct proc_fds	 f;
	int		 qc[2];

	socketpair_or_die(qc);
	proc_fds_init(&f);
	f.control = qc[0];
	queue_child = start_child(C_QUEUE, 0, "queue", &f);
	proc_fds_init(&f);
	f.queue = qc[1];
	f.ctlsock = ctlsock;
	f.metricsock = metricsock;
	start_child(C_CONTROL, 0, "control", &f);
	close(qc[0]);
	close(qc[1]);
	close(ctlsock);
	if (metricsock != -1)
		close(metricsock);
}

static void
send_queue_conf(void)
{
	struct queue_conf	qc;

	memset(&qc, 0, sizeof(qc));
	qc.queue_ttl = conf->queue_ttl;
	qc.bounce_warn = conf->bounce_warn;
	qc.retry_local = conf->retry_local > 0 ? conf->retry_local : 60;
	qc.retry_remote = conf->retry_remote > 0 ? conf->retry_remote : 300;
	qc.max_inflight = conf->queue_max_inflight > 0 ?
	    conf->queue_max_inflight : 1000;
	snprintf(qc.hostname, sizeof(qc.hostname), "%s", conf->hostname);
	snprintf(qc.dmarc_report_from, sizeof(qc.dmarc_report_from), "%s",
	    conf->dmarc_report_from);
	snprintf(qc.dmarc_report_org, sizeof(qc.dmarc_report_org), "%s",
	    conf->dmarc_report_org);
	snprintf(qc.tlsrpt_report_from, sizeof(qc.tlsrpt_report_from), "%s",
	    conf->tlsrpt_report_from);
	snprintf(qc.tlsrpt_report_org, sizeof(qc.tlsrpt_report_org), "%s",
	    conf->tlsrpt_report_org);
	mproc_compose(&queue_child->mp, IMSG_QUEUE_CONF, 0, -1, &qc,
	    sizeof(qc));
}

/*
 * A generation: lookup, mta and the smtp workers, wired to each other
 * and -- through descriptors passed to it -- to the queue; and, when a
 * listener authenticates system accounts, the auth helper that lookup
 * asks (auth_system.c), which goes when its lookup does.
 */
/*
 * The files of every pki in use, opened here as root for the keys
 * process (keys.c), which alone reads them: per pki in conf->pkis
 * order, the certificate and the key, -1 for a pki nothing uses.
 * Returns how many slots were filled.  A file that cannot be opened
 * stops the start (or the reload) with its name.
 */
static int
open_key_files(int *fds)
{
	struct pki	*pki;
	int		 n = 0;

	TAILQ_FOREACH(pki, &conf->pkis, entry) {
		fds[n] = fds[n + 1] = -1;
		if (config_pki_used(conf, pki)) {
			if ((fds[n] = open(pki->cert_file,
			    O_RDONLY | O_CLOEXEC)) == -1)
				fatal("pki %s: %s", pki->name, pki->cert_file);
			if ((fds[n + 1] = open(pki->key_file,
			    O_RDONLY | O_CLOEXEC)) == -1)
				fatal("pki %s: %s", pki->name, pki->key_file);
		}
		n += 2;
	}
	return n;
}

static void
start_generation(int *listen_fds, int nl, int nworkers)
{
	int		 qs[SMTPD_MAX_WORKERS][2];	/* queue <-> smtp */
	int		 ls[SMTPD_MAX_WORKERS][2];	/* lookup <-> smtp */
	int		 ks[SMTPD_MAX_WORKERS][2];	/* keys <-> smtp */
	int		 kd[SMTPD_MAX_WORKERS][2];	/* the same, DKIM */
	int		 qm[2], ql[2], lm[2], km[2], la[2] = { -1, -1 };
	int		 keyfiles[2 * CONF_MAX_PKIS], nkeyfiles;
	struct child	*kc;
	struct proc_fds	 f;
	struct listener	*l;
	char		 title[32];
	int		 i;

	generation++;
	/* named before the workers that count under the names */
	TAILQ_FOREACH(l, &conf->listeners, entry)
		smtpcount_listener_add(l->ifname, l->port, l->tag);
	for (i = 0; i < nworkers; i++) {
		socketpair_or_die(qs[i]);
		socketpair_or_die(ls[i]);
		socketpair_or_die(ks[i]);
		socketpair_or_die(kd[i]);
	}
	socketpair_or_die(km);
	socketpair_or_die(qm);
	socketpair_or_die(ql);
	socketpair_or_die(lm);
	if (auth_system_needed(conf))
		socketpair_or_die(la);

	proc_fds_init(&f);
	for (i = 0; i < nworkers; i++)
		f.smtp[i] = ls[i][0];
	f.nsmtp = nworkers;
	f.queue = ql[1];
	f.mta = lm[0];
	f.auth = la[0];
	start_child(C_LOOKUP, 0, "lookup", &f);

	if (la[0] != -1) {
		proc_fds_init(&f);
		f.lookup = la[1];
		start_child(C_AUTH, 0, "auth", &f);
		close(la[0]);
		close(la[1]);
	}

	/* the keys first: no other child ever sees their files */
	nkeyfiles = open_key_files(keyfiles);
	proc_fds_init(&f);
	for (i = 0; i < nworkers; i++) {
		f.smtp[i] = ks[i][0];
		f.smtp_dkim[i] = kd[i][0];
	}
	f.nsmtp = nworkers;
	f.mta = km[0];
	f.keyfiles = keyfiles;
	f.nkeyfiles = nkeyfiles;
	kc = start_child(C_KEYS, 0, "keys", &f);
	dkim_keys_send(&kc->mp, 0);
	for (i = 0; i < nkeyfiles; i++)
		if (keyfiles[i] != -1)
			close(keyfiles[i]);
	for (i = 0; i < nworkers; i++) {
		close(ks[i][0]);
		close(kd[i][0]);
	}
	close(km[0]);

	proc_fds_init(&f);
	f.queue = qm[1];
	f.lookup = lm[1];
	f.keys = km[1];
	start_child(C_MTA, 0, "mta", &f);
	close(km[1]);

	for (i = 0; i < nworkers; i++) {
		snprintf(title, sizeof(title), "smtp worker %d", i + 1);
		proc_fds_init(&f);
		f.queue = qs[i][1];
		f.lookup = ls[i][1];
		f.keys = ks[i][1];
		f.keys_dkim = kd[i][1];
		f.listen = listen_fds + i * nl;
		f.nlisten = nl;
		start_child(C_SMTP, i + 1, title, &f);
	}

	/* a paused service stays paused across a reload */
	if (smtp_paused)
		broadcast_smtp(IMSG_PAUSE);

	/* the queue's ends travel to it; the parent keeps nothing else */
	send_queue_conf();
	mproc_compose(&queue_child->mp, IMSG_QUEUE_SET_LOOKUP, 0, ql[0],
	    NULL, 0);
	mproc_compose(&queue_child->mp, IMSG_QUEUE_SET_MTA, 0, qm[0], NULL, 0);
	for (i = 0; i < nworkers; i++) {
		mproc_compose(&queue_child->mp, IMSG_QUEUE_ADD_WORKER, 0,
		    qs[i][0], NULL, 0);
		close(qs[i][1]);
		close(ls[i][0]);
		close(ls[i][1]);
		close(ks[i][1]);
		close(kd[i][1]);
	}
	close(qm[1]);
	close(ql[1]);
	close(lm[0]);
	close(lm[1]);
	lsocks_settle(1);	/* the parent keeps the listening sockets */
}

/*
 * Every session is a descriptor: a worker holding thousands of idle
 * sessions needs far more than the usual soft limit of 1024.  Root may
 * raise the hard limit too; the children inherit it.
 */
static void
raise_fd_limit(void)
{
	struct rlimit	rl;
	rlim_t		want = (rlim_t)(conf->max_sessions > 0 ?
			    conf->max_sessions : 10000) + 4096;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		rl.rlim_max = want;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
		    (unsigned long long)rl.rlim_cur);
}

static int
worker_count(void)
{
	int	n = conf->smtp_workers;

	/*
	 * One per CPU but one: a worker serves thousands of sessions on
	 * its event loop, and the queue, lookup and delivery processes
	 * each message also goes through need a CPU too.  On two CPUs one
	 * worker took a sixth more mail per second than two, and less CPU
	 * per message: its turns of the event loop serve more sessions
	 * each, and fewer processes take turns on the CPUs.
	 */
	if (n <= 0)
		n = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	if (n <= 0)
		n = 1;
	if (n > SMTPD_MAX_WORKERS)
		n = SMTPD_MAX_WORKERS;
	return n;
}

/*
 * The listening sockets belong to the parent, one per listener and
 * worker (SO_REUSEPORT, bind_listener()), and outlive generations: a
 * reload that keeps an address hands the same sockets to the new
 * workers.  The kernel then goes on queueing connections on them, and
 * one that was waiting in an accept queue when the old worker stopped is
 * taken by the new one, where a socket closed and bound afresh would
 * have reset it.  Children other than the workers never hold them
 * (start_child() and every other fork close what they do not need).
 */
struct lsock {
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 worker;
	int			 fd;
	enum { LS_IDLE, LS_KEPT, LS_NEW } use;	/* by the next generation */
};
static struct lsock	*lsocks;
static size_t		 nlsocks;

static int
lsock_get(struct listener *l, int worker)
{
	struct lsock	*ls, *n;
	size_t		 i;
	int		 fd;

	for (i = 0; i < nlsocks; i++) {
		ls = &lsocks[i];
		if (ls->use == LS_IDLE && ls->worker == worker &&
		    ls->sslen == l->sslen &&
		    memcmp(&ls->ss, &l->ss, l->sslen) == 0) {
			ls->use = LS_KEPT;
			return ls->fd;
		}
	}
	if ((fd = bind_listener(l)) == -1)
		return -1;
	if ((n = reallocarray(lsocks, nlsocks + 1, sizeof(*n))) == NULL)
		fatal("reallocarray");
	lsocks = n;
	ls = &lsocks[nlsocks++];
	memset(ls, 0, sizeof(*ls));
	memcpy(&ls->ss, &l->ss, l->sslen);
	ls->sslen = l->sslen;
	ls->worker = worker;
	ls->fd = fd;
	ls->use = LS_NEW;
	return fd;
}

/*
 * After a generation started (keep) or failed to (!keep): close the
 * sockets it did not take, or the ones it bound.  Old workers close
 * their own copies when they retire.  At shutdown (lsocks_close_all())
 * all go at once, so that new clients are refused rather than left
 * waiting in an accept queue nobody reads.
 */
static void
lsocks_settle(int keep)
{
	size_t	i, n = 0;

	for (i = 0; i < nlsocks; i++) {
		if (keep ? lsocks[i].use == LS_IDLE :
		    lsocks[i].use == LS_NEW) {
			close(lsocks[i].fd);
			continue;
		}
		lsocks[i].use = LS_IDLE;
		lsocks[n++] = lsocks[i];
	}
	nlsocks = n;
}

static void
lsocks_close_all(void)
{
	size_t	i;

	for (i = 0; i < nlsocks; i++)
		close(lsocks[i].fd);
	nlsocks = 0;
}

/* every listener once per worker; NULL (logged) when one cannot bind */
static int *
bind_listeners(int nworkers, int *nlp)
{
	struct listener	*l;
	int		*fds, nl = 0, i, k;

	TAILQ_FOREACH(l, &conf->listeners, entry)
		nl++;
	if ((fds = calloc(nl * nworkers + 1, sizeof(int))) == NULL)
		fatal("calloc");
	for (i = 0; i < nworkers; i++) {
		k = 0;
		TAILQ_FOREACH(l, &conf->listeners, entry) {
			if ((fds[i * nl + k] = lsock_get(l, i)) == -1) {
				lsocks_settle(0);
				free(fds);
				return NULL;
			}
			k++;
		}
	}
	*nlp = nl;
	return fds;
}

/* a child's channel closed: SIGCHLD will tell why; stop reading it */
static void
parent_child_closed(struct mproc *p)
{
	if (p->ev)
		event_del(p->ev);
}

static const char *
describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		snprintf(buf, len, "killed by the seccomp sandbox (SIGSYS): "
		    "a forbidden system call");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "stopped");
	return buf;
}

/* slots of the children table in use (the queue's stays, even exited) */
static int
children_used(void)
{
	int	i, n = 0;

	for (i = 0; i < MAX_CHILDREN; i++)
		n += children[i].used != 0;
	return n;
}

static int
children_alive(int kind_mask, int retiring_only)
{
	int	i, n = 0;

	for (i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		if (c->used && !c->exited && (kind_mask & (1 << c->kind)) &&
		    (!retiring_only || c->retiring))
			n++;
	}
	return n;
}

static void
kill_children(int kind_mask, int sig)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		if (c->used && !c->exited && (kind_mask & (1 << c->kind)))
			kill(c->pid, sig);
	}
}

static void
shutdown_step(void)
{
	/*
	 * Workers and mtas first, while the queue still runs: every commit
	 * in flight is answered, every delivery result recorded.
	 */
	if (children_alive((1 << C_SMTP) | (1 << C_MTA), 0) > 0)
		return;
	if (children_alive(~(1 << C_SMTP), 0) > 0) {
		kill_children(~(1 << C_SMTP), SIGTERM);
		mda_shutdown();
		return;
	}
	if (mda_count() > 0) {
		mda_shutdown();
		return;
	}
	log_collect();		/* the children's last lines first */
	log_info("exiting");
	if (conf->socket[0])
		unlink(conf->socket);
	pid_file_remove();
	exit(exit_status);
}

/* a worker or the mta of generation g is still running */
static int
generation_busy(int g)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		if (c->used && !c->exited && c->generation == g &&
		    (c->kind == C_SMTP || c->kind == C_MTA))
			return 1;
	}
	return 0;
}

/* an old generation's lookup goes once its workers and mta are gone */
static void
retire_step(void)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		if (c->used && !c->exited && (c->kind == C_LOOKUP ||
		    c->kind == C_KEYS) && c->retiring &&
		    !generation_busy(c->generation))
			kill(c->pid, SIGTERM);
	}
}

static void
on_sigchld(evutil_socket_t sig, short ev, void *arg)
{
	char	desc[128];
	pid_t	pid;
	int	status, i;

	log_collect();		/* what a child said before it died */
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == offline_pid) {
			offline_pid = 0;
			offline_pickup_ended(status);
			continue;
		}
		if (mda_reaped(pid, status))
			continue;
		for (i = 0; i < MAX_CHILDREN; i++) {
			struct child *c = &children[i];

			if (!c->used || c->exited || c->pid != pid)
				continue;
			c->exited = 1;
			if (c->mp.ev)
				mproc_clear(&c->mp);
			if (c->kind == C_SMTP)
				milter_worker_gone(c);
			describe_status(status, desc, sizeof(desc));
			if (!shutting_down && !c->retiring) {
				log_warnx("%s (pid %d) %s; shutting down",
				    c->title, (int)pid, desc);
				parent_shutdown(1);
			} else if (!WIFEXITED(status) ||
			    WEXITSTATUS(status) != 0)
				log_warnx("%s (pid %d) %s", c->title,
				    (int)pid, desc);
			else
				log_debug("%s (pid %d) exited", c->title,
				    (int)pid);
			if (c != queue_child)
				c->used = 0;
		}
	}
	if (shutting_down)
		shutdown_step();
	else
		retire_step();
}

/*
 * Messages sendmail left in the offline directory while we ran (we did
 * not greet it in time, or the control socket was full) are picked up
 * within OFFLINE_RESCAN_SECS, not at the next start.
 */
static void
on_offline_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval	tv = { OFFLINE_RESCAN_SECS, 0 };
	pid_t		pid;

	if (!shutting_down && offline_pid == 0 && offline_pending() &&
	    (pid = offline_enqueue_all()) != -1)
		offline_pid = pid;
	evtimer_add(ev_offline, &tv);
}

static void
on_shutdown_timeout(evutil_socket_t fd, short ev, void *arg)
{
	log_warnx("children did not stop in time; killing them");
	kill_children(~0, SIGKILL);
	mda_kill_all();
}

static void
parent_shutdown(int status)
{
	struct timeval	tv = { SHUTDOWN_WAIT, 0 };
	int		i;

	if (status > exit_status)
		exit_status = status;
	if (shutting_down)
		return;
	shutting_down = 1;
	kill_children(1 << C_SMTP, SIGTERM);
	/*
	 * The mtas (a retiring one too) stop as a reload retires them, but
	 * at once: a delivery whose end of data is sent waits for its reply
	 * (mta.c, mta_retire()), nothing else does.  SIGTERM would cut it,
	 * and the message would go twice: the peer has it, the queue not
	 * its result.
	 */
	for (i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		if (c->used && !c->exited && c->kind == C_MTA)
			mproc_compose(&c->mp, IMSG_SHUTDOWN, 0, -1, NULL, 0);
	}
	lsocks_close_all();
	ev_shutdown_timer = evtimer_new(ev_base, on_shutdown_timeout, NULL);
	evtimer_add(ev_shutdown_timer, &tv);
	shutdown_step();
}

static void
on_sigterm(evutil_socket_t sig, short ev, void *arg)
{
	log_info("received signal %d, shutting down", (int)sig);
	parent_shutdown(0);
}

/* old workers whose grace ran out stop their sessions now */
static void
on_retire_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval	tv = { 0, 0 };
	time_t		now = time(NULL), next = 0;
	int		i;

	for (i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		if (!c->used || c->exited || !RETIRES_GENTLY(c) ||
		    !c->retiring || c->retire_by == 0)
			continue;
		if (c->retire_by <= now) {
			log_info("%s (pid %d) retired %d s ago, still has "
			    "sessions: stopping it", c->title, (int)c->pid,
			    RETIRE_GRACE);
			kill(c->pid, SIGTERM);
			c->retire_by = 0;
		} else if (next == 0 || c->retire_by < next)
			next = c->retire_by;
	}
	if (next != 0) {
		tv.tv_sec = next - now;
		evtimer_add(ev_retire, &tv);
	}
}

/*
 * The workers of the old generation stop accepting and serve the
 * sessions they have to their end (smtp_retire()); the new generation
 * already listens on the same sockets.  The old mta finishes the
 * deliveries it holds (mta_retire()) while the queue gives new ones to
 * the new mta.
 */
static void
retire_workers(void)
{
	struct timeval	tv = { RETIRE_GRACE, 0 };
	int		i;

	for (i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		if (!c->used || c->exited || !RETIRES_GENTLY(c) ||
		    !c->retiring || c->retire_by != 0)
			continue;
		c->retire_by = time(NULL) + RETIRE_GRACE;
		mproc_compose(&c->mp, IMSG_RETIRE, 0, -1, NULL, 0);
	}
	if (ev_retire == NULL &&
	    (ev_retire = evtimer_new(ev_base, on_retire_timer, NULL)) == NULL)
		fatalx("evtimer_new");
	if (!evtimer_pending(ev_retire, NULL))
		evtimer_add(ev_retire, &tv);
}

/*
 * SIGHUP: read smtpd.conf again.  A file with errors changes nothing.
 * Otherwise a new generation starts with the new configuration (its
 * lookup reads the tables afresh) and the old one retires: its workers
 * stop accepting and finish their sessions, its mta finishes the
 * deliveries it holds, its lookup follows them.
 * The queue and control stay; the queue takes the new queue settings.
 */
/*
 * A reload that did not happen: logged, and said in why for smtpctl
 * reload (why may be NULL).  Returns -1.
 */
static int reload_failed(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static int
reload_failed(char *why, size_t len, const char *fmt, ...)
{
	char	buf[1024];	/* struct ctl_reply's text */
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("%s", buf);
	if (why != NULL)
		snprintf(why, len, "%s", buf);
	return -1;
}

static int
parent_reload(char *why, size_t len)
{
	struct smtpd_config	*nconf, *old;
	char			 err[CONF_PATH_MAX + 256];
	int			*fds, nl, nworkers, i;

	if (shutting_down)
		return reload_failed(why, len, "reload refused: shutting down");
	if ((nconf = config_parse(conf_path, err, sizeof(err))) == NULL)
		return reload_failed(why, len, "reload failed, keeping the "
		    "running configuration: %s", err);
	if (config_check_tls_policy(nconf, NULL) > 0) {
		config_free(nconf);
		return reload_failed(why, len, "reload failed, keeping the "
		    "running configuration: bad TLS policy table");
	}
	if (table_remote_load(nconf, NULL) > 0) {
		config_free(nconf);
		return reload_failed(why, len, "reload failed, keeping the "
		    "running configuration: a shared table's configuration "
		    "is wrong");
	}
	if (strcmp(nconf->spool, conf->spool) != 0 ||
	    strcmp(nconf->socket, conf->socket) != 0) {
		config_free(nconf);
		return reload_failed(why, len, "reload failed: spool and "
		    "socket can only change with a restart");
	}
	old = conf;
	conf = nconf;
	nworkers = worker_count();
	/*
	 * Every generation a reload retires lives until its sessions and
	 * deliveries end (at most RETIRE_GRACE): a storm of reloads must
	 * not pile them up without bound.  One lookup per generation.
	 */
	if (children_alive(1 << C_LOOKUP, 0) >= SMTPD_MAX_GENERATIONS ||
	    children_alive(1 << C_SMTP, 0) + nworkers >
	    SMTPD_MAX_LIVE_WORKERS ||
	    children_used() + nworkers + 3 > MAX_CHILDREN) {
		conf = old;
		config_free(nconf);
		return reload_failed(why, len, "reload refused: %d older "
		    "generations of processes are still finishing their "
		    "sessions; keeping the running configuration, try again "
		    "later", children_alive(1 << C_LOOKUP, 1));
	}
	if ((fds = bind_listeners(nworkers, &nl)) == NULL) {
		conf = old;
		config_free(nconf);
		return reload_failed(why, len, "reload failed: cannot listen "
		    "as configured; keeping the running configuration");
	}
	for (i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		if (c->used && !c->exited && c->kind != C_QUEUE &&
		    c->kind != C_CONTROL)
			c->retiring = 1;
	}
	start_generation(fds, nl, nworkers);
	/* lookup and the mta have their copies now (spawn()) */
	config_forget_secrets(conf, CONF_FORGET_ALL);
	free(fds);
	retire_workers();
	retire_step();
	config_free(old);
	log_info("configuration reloaded from %s: %d smtp workers",
	    conf_path, nworkers);
	if (why != NULL)
		snprintf(why, len, "configuration reloaded from %s: %d smtp "
		    "workers", conf_path, nworkers);
	return 0;
}

/* lines for syslog: the children's, and those syslog did not take yet */
static struct event	*ev_log_retry;

static void
log_retry_in(int ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	if (ev_log_retry != NULL && !evtimer_pending(ev_log_retry, NULL))
		evtimer_add(ev_log_retry, &tv);
}

static void
on_log(evutil_socket_t fd, short ev, void *arg)
{
	int	ms;

	if ((ms = log_collect()) > 0)
		log_retry_in(ms);
}

static void
on_sighup(evutil_socket_t sig, short ev, void *arg)
{
	log_info("received SIGHUP, reloading the configuration");
	(void)parent_reload(NULL, 0);
}

/* smtpctl reload (root, checked by control): SIGHUP with an answer */
static void
ctl_reload(struct mproc *control, const struct ctl_request *req)
{
	struct ctl_reply	r;

	log_info("smtpctl reload, reloading the configuration");
	memset(&r, 0, sizeof(r));
	r.reqid = req->reqid;
	r.end = 1;
	r.status = parent_reload(r.text, sizeof(r.text)) == 0 ? 0 : 1;
	mproc_compose(control, IMSG_CTL_REPLY, 0, -1, &r, sizeof(r));
}

/* mda/ reports a local delivery's outcome; the queue gets it */
static void
parent_delivery_result(const struct delivery_result *r)
{
	if (queue_child == NULL || queue_child->exited)
		return;
	mproc_compose(&queue_child->mp, IMSG_MDA_RESULT, 0, -1, r,
	    sizeof(*r));
}

static void
parent_mda_channel(const struct mda_channel *ch, int fd)
{
	if (queue_child == NULL || queue_child->exited) {
		close(fd);
		return;
	}
	mproc_compose(&queue_child->mp, IMSG_MDA_CHANNEL, 0, fd, ch,
	    sizeof(*ch));
}

static void
broadcast_smtp(uint32_t type)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++) {
		struct child *c = &children[i];

		if (c->used && !c->exited && c->kind == C_SMTP)
			mproc_compose(&c->mp, type, 0, -1, NULL, 0);
	}
}

/* a local submission from control goes to the next smtp worker */
static void
parent_local_session(struct mproc *p, struct imsg *m)
{
	static int		 next;
	struct local_session	 ls;
	struct passwd		*pw;
	int			 i = 0, n;

	proto_get(p, m, &ls, sizeof(ls));
	if (m->fd == -1)
		fatalx("local session without a descriptor");
	if ((pw = getpwuid((uid_t)ls.uid)) == NULL) {
		log_warnx("local submission from unknown uid %u refused",
		    ls.uid);
		close(m->fd);
		return;
	}
	snprintf(ls.user, sizeof(ls.user), "%s", pw->pw_name);
	for (n = 0; n < MAX_CHILDREN; n++) {
		i = (next + n) % MAX_CHILDREN;
		if (children[i].used && children[i].kind == C_SMTP &&
		    !children[i].exited && !children[i].retiring)
			break;
	}
	if (n == MAX_CHILDREN) {
		close(m->fd);
		return;
	}
	next = i + 1;
	mproc_compose(&children[i].mp, IMSG_SMTP_LOCAL, 0, m->fd, &ls,
	    sizeof(ls));
}

/* the live child of a kind that is not retiring (lookup, control) */
static struct child *
current_child(enum child_kind kind)
{
	int	i;

	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i].used && !children[i].exited &&
		    !children[i].retiring && children[i].kind == kind)
			return &children[i];
	return NULL;
}

/*
 * smtpctl table lookup: control's question to the current lookup, and
 * its answer back to control (proto.h, struct ctl_table_lookup).
 */
static void
parent_table_lookup(struct child *c, struct mproc *p, struct imsg *m)
{
	struct ctl_table_lookup	 req;
	struct ctl_table_result	*r;
	struct child		*to;

	if (m->fd != -1)
		fatalx("unexpected descriptor from %s", c->title);
	if (m->hdr.type == IMSG_CTL_TABLE_LOOKUP) {
		if (c->kind != C_CONTROL)
			fatalx("table lookup from %s", c->title);
		PROTO_READ(p, m, &req, proto_valid_ctl_table_lookup);
		if ((to = current_child(C_LOOKUP)) != NULL) {
			mproc_compose(&to->mp, IMSG_CTL_TABLE_LOOKUP, 0, -1,
			    &req, sizeof(req));
			return;
		}
		if ((r = calloc(1, sizeof(*r))) == NULL)
			fatal("calloc");
		r->reqid = req.reqid;
		r->status = CTL_TABLE_ERROR;
		snprintf(r->text, sizeof(r->text), "lookup is not running");
		mproc_compose(p, IMSG_CTL_TABLE_RESULT, 0, -1, r, sizeof(*r));
		free(r);
		return;
	}
	if (c->kind != C_LOOKUP)
		fatalx("table lookup result from %s", c->title);
	if ((r = malloc(sizeof(*r))) == NULL)
		fatal("malloc");
	PROTO_READ(p, m, r, proto_valid_ctl_table_result);
	if ((to = current_child(C_CONTROL)) != NULL)
		mproc_compose(&to->mp, IMSG_CTL_TABLE_RESULT, 0, -1, r,
		    sizeof(*r));
	freezero(r, sizeof(*r));
}

static void
parent_dispatch(struct mproc *p, struct imsg *m)
{
	struct child		*c = p->arg;
	struct envelope		 evp;
	struct forward_req	 fwd;
	struct milter_connect	 mconn;
	struct milter_stats	 mstats;
	struct ctl_request	 req;
	int			 i;

	switch (m->hdr.type) {
	case IMSG_MILTER_CONNECT:
		if (c->kind != C_SMTP || m->fd != -1)
			fatalx("bad milter connect request from %s", c->title);
		PROTO_READ(p, m, &mconn, proto_valid_milter_connect);
		milter_connect_request(c, p, &mconn);
		break;
	case IMSG_MILTER_STATS:
		if (c->kind != C_SMTP || m->fd != -1)
			fatalx("bad milter counters from %s", c->title);
		PROTO_READ(p, m, &mstats, proto_valid_milter_stats);
		milter_stats_update(c, &mstats);
		break;
	case IMSG_CTL_REQUEST:
		/* control passes on what only the parent can answer */
		if (c->kind != C_CONTROL || m->fd != -1)
			fatalx("control request from %s", c->title);
		PROTO_READ(p, m, &req, proto_valid_ctl_request);
		if (req.cmd == CTL_RELOAD)
			ctl_reload(p, &req);
		else if (req.cmd == CTL_SHOW_MILTERS)
			milter_show(p, req.reqid);
		else
			fatalx("control request %u for the parent", req.cmd);
		break;
	case IMSG_PARENT_FORWARD:
		if (c->kind != C_LOOKUP)
			fatalx(".forward request from %s", c->title);
		PROTO_READ(p, m, &fwd, proto_valid_forward_req);
		if (m->fd != -1)
			fatalx("unexpected descriptor from %s", c->title);
		parent_forward(p, &fwd);
		break;
	case IMSG_LKA_UPDATE_TABLE:
		if (c->kind != C_CONTROL || m->len != 128 ||
		    memchr(m->data, '\0', 128) == NULL)
			fatalx("bad table update from %s", c->title);
		/* the DKIM keys: opened anew here, swapped in by keys */
		if (strcmp(m->data, conf->dkim_sign_table) == 0)
			for (i = 0; i < MAX_CHILDREN; i++)
				if (children[i].used && !children[i].exited &&
				    !children[i].retiring &&
				    children[i].kind == C_KEYS)
					dkim_keys_send(&children[i].mp, 1);
		for (i = 0; i < MAX_CHILDREN; i++)
			if (children[i].used && !children[i].exited &&
			    !children[i].retiring &&
			    children[i].kind == C_LOOKUP)
				mproc_compose(&children[i].mp,
				    IMSG_LKA_UPDATE_TABLE, 0, -1, m->data, 128);
		break;
	case IMSG_CTL_TABLE_LOOKUP:
	case IMSG_CTL_TABLE_RESULT:
		parent_table_lookup(c, p, m);
		break;
	case IMSG_PAUSE:
	case IMSG_RESUME:
		if (c->kind != C_CONTROL)
			fatalx("pause/resume from %s", c->title);
		mproc_check_len(p, m, 0);
		smtp_paused = m->hdr.type == IMSG_PAUSE;
		log_info("smtp %s by smtpctl", smtp_paused ? "paused" :
		    "resumed");
		broadcast_smtp(m->hdr.type);
		break;
	case IMSG_SMTP_LOCAL:
		if (c->kind != C_CONTROL)
			fatalx("local session from %s", c->title);
		parent_local_session(p, m);
		break;
	case IMSG_MDA_DELIVER:
		if (c->kind != C_QUEUE)
			fatalx("delivery request from %s", c->title);
		proto_get(p, m, &evp, sizeof(evp));
		if (envelope_valid(&evp) == -1 || m->fd == -1)
			fatalx("invalid delivery request from queue");
		mda_deliver(&evp, m->fd);
		break;
	default:
		fatalx("unexpected message %u from %s", m->hdr.type, c->title);
	}
}

int
main(int argc, char **argv)
{
	const char	*path = NULL, *pidpath = SMTPD_PIDFILE;
	char		 err[CONF_PATH_MAX + 256];
	struct listener	*l;
	struct event	*ev_log;
	int		*listen_fds, nl = 0, nworkers, ch, checkonly = 0, i;

	fds_sanitize();		/* before anything opens a file */
	privsep_title_init(argc, argv);
	while ((ch = getopt(argc, argv, "df:hnP:vV")) != -1) {
		switch (ch) {
		case 'd':
			smtpd_debug = 1;
			break;
		case 'f':
			path = optarg;
			break;
		case 'n':
			checkonly = 1;
			break;
		case 'P':
			pidpath = optarg;
			break;
		case 'v':
			smtpd_verbose++;
			break;
		case 'V':
			printf("%s %s\n", SMTPD_NAME, SMTPD_VERSION);
			exit(0);
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (path == NULL)
		path = SMTPD_SYSCONFDIR "/smtpd.conf";
	if ((conf = config_parse(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	if (checkonly) {
		/* each file as the process that will open it: config_check.c */
		if (config_check_files(conf, stderr) +
		    config_check_tls_policy(conf, stderr) +
		    table_remote_load(conf, stderr) > 0)
			exit(1);
		config_print_milters(conf, stdout);
		printf("configuration OK\n");
		exit(0);
	}
	if (geteuid() != 0) {
		fprintf(stderr, "smtpd: need root privileges\n");
		exit(1);
	}
	/* before anything is bound: "already running", not "in use" */
	if (pid_file_lock(pidpath) == -1)
		exit(1);
	log_init(smtpd_debug, smtpd_verbose);
	log_procname("parent");

	conf_path = path;
	(void)config_check_files(conf, NULL);	/* logged; files may appear */
	/* a TLS policy the mta could not apply is a configuration error */
	if (config_check_tls_policy(conf, NULL) > 0)
		fatalx("bad TLS policy table: not starting");
	/* read as root: the files may hold a database's password */
	if (table_remote_load(conf, NULL) > 0)
		fatalx("a shared table's configuration is wrong: not starting");
	raise_fd_limit();
	nworkers = worker_count();
	setup_spool();
	TAILQ_FOREACH(l, &conf->listeners, entry)
		probe_listener(l);
	if ((listen_fds = bind_listeners(nworkers, &nl)) == NULL)
		fatalx("cannot listen as configured");
	if (nl == 0)
		log_warnx("no listener configured; only local submission");

	if (!smtpd_debug && daemon(0, 0) == -1)
		fatal("daemon");
	pid_file_write();	/* bound, and the final pid */
	signal(SIGPIPE, SIG_IGN);
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	/* the children's log lines, on their way to syslog (log.c) */
	if (log_collector_fd() != -1) {
		if ((ev_log = event_new(ev_base, log_collector_fd(),
		    EV_READ | EV_PERSIST, on_log, NULL)) == NULL ||
		    event_add(ev_log, NULL) == -1 ||
		    (ev_log_retry = evtimer_new(ev_base, on_log, NULL)) ==
		    NULL)
			fatalx("event_new");
		log_backlog_wake(log_retry_in);
	}
	/*
	 * The key with which lookup seals the destinations it gives the
	 * workers and the queue checks them (destmac.h).  It is made here,
	 * before any child, and reaches the queue and every generation's
	 * lookup by fork alone: no message carries it, so lookup holds it
	 * before it can answer its first RCPT, with no start-up or reload
	 * ordering to get right.  Every other child wipes its copy at once
	 * (spawn(), and the forks in mda.c, mda_program.c, offline.c); the
	 * workers, mta, control and delivery processes never hold it.  We
	 * keep it for the lookups of later generations: the parent is root
	 * and could deliver anywhere anyway, so it loses nothing by it.
	 */
	destmac_key_generate();
	sched_batch();		/* every child inherits it (util.c) */
	mda_init(parent_delivery_result, parent_mda_channel);
	smtpcount_init();	/* the workers count, control reads */
	ratelimit_init();	/* likewise; it outlives reloads */
	start_core(bind_control(), bind_metrics());
	sesscount_init();	/* shared by every generation of workers */
	start_generation(listen_fds, nl, nworkers);
	/*
	 * The parent keeps no table secret: lookup and the mta took
	 * theirs through fork, no child is ever started again from this
	 * configuration (a child that dies stops the daemon), and a reload
	 * reads the file anew.  Every later fork (deliveries, the offline
	 * pick-up) starts without them.
	 */
	config_forget_secrets(conf, CONF_FORGET_ALL);
	free(listen_fds);
	privsep_title("parent");

	ev_signals[0] = evsignal_new(ev_base, SIGCHLD, on_sigchld, NULL);
	ev_signals[1] = evsignal_new(ev_base, SIGTERM, on_sigterm, NULL);
	ev_signals[2] = evsignal_new(ev_base, SIGINT, on_sigterm, NULL);
	ev_signals[3] = evsignal_new(ev_base, SIGHUP, on_sighup, NULL);
	for (i = 0; i < 4; i++)
		if (ev_signals[i] == NULL || evsignal_add(ev_signals[i],
		    NULL) == -1)
			fatalx("evsignal_add");
	/*
	 * A child that died before the SIGCHLD handler existed sent its
	 * signal to nobody: one pass of the reaper on the first turn of the
	 * loop finds it (and a child that died at start-up takes the daemon
	 * down at once rather than at the next signal).  The offline
	 * pick-up, which may be over in a moment, is forked only now.
	 */
	event_active(ev_signals[0], EV_SIGNAL, 1);
	if ((ev_offline = evtimer_new(ev_base, on_offline_timer, NULL)) ==
	    NULL)
		fatalx("evtimer_new");
	if ((offline_pid = offline_enqueue_all()) == -1)
		offline_pid = 0;
	on_offline_timer(-1, 0, NULL);	/* arms it; the pick-up runs */
	log_info("%s ready: %d smtp workers, %d listeners, spool %s",
	    SMTPD_NAME, nworkers, nl, conf->spool);
	event_base_dispatch(ev_base);
	return exit_status;
}
