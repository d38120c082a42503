/*
 * mda_program.c -- delivery to a command: `mda "command"' actions and
 * "|command" destinations from aliases and .forward files.
 *
 * The pooled delivery processes of mda.c run in a sandbox without exec,
 * so a command needs a process of its own: the parent forks one per
 * delivery, which becomes the user for good (no saved ids), then forks
 * /bin/sh -c COMMAND in a session of its own, feeds it the message on
 * stdin, keeps the first MDA_PROG_OUTPUT bytes of its stdout and stderr
 * for the bounce, enforces MDA_PROG_TIMEOUT, and reports one struct
 * delivery_result on a socketpair.
 *
 * The command string comes from the administrator's smtpd.conf or from
 * the user's own aliases/.forward line, never from an address: envelope
 * addresses reach the command only as environment values, which no
 * shell parses.  The environment is fixed; nothing of the daemon's own
 * leaks through.
 *
 * Exit status 0 means delivered; 75 (EX_TEMPFAIL) try again later; any
 * other status bounces, with the sysexits meaning as the DSN status
 * where there is one.  A command killed by a signal or by the time limit
 * is tried again later: nothing was promised either way.
 *
 * Deliveries to root's mailbox (mda_root.c) use the same one-shot
 * processes and bookkeeping.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "destmac.h"
#include "log.h"
#include "mda.h"
#include "mda_proc.h"
#include "mproc.h"
#include "platform.h"
#include "privsep.h"
#include "proc.h"
#include "util.h"

#define MDA_PROG_TIMEOUT	300	/* seconds for one delivery */
#define MDA_PROG_OUTPUT		1024	/* bytes of output kept */
#define MDA_PROG_SHELL		"/bin/sh"
#define EX_TEMPFAIL_CODE	75

struct mda_prog {
	TAILQ_ENTRY(mda_prog) entry;
	pid_t		 pid;
	uint64_t	 evpid;
	struct mproc	 mp;
	int		 answered;	/* its result was passed on */
	int		 reaped;
	int		 closed;
};

static TAILQ_HEAD(, mda_prog) progs = TAILQ_HEAD_INITIALIZER(progs);
static int	nprogs;

static void	prog_child(int, int, const struct envelope *,
		    const struct passwd *, const char *)
		    __attribute__((noreturn));

int
mda_program_count(void)
{
	return nprogs;
}

static void
prog_result(uint64_t evpid, int status, const char *text)
{
	struct delivery_result	r;

	memset(&r, 0, sizeof(r));
	r.evpid = evpid;
	r.status = status;
	snprintf(r.text, sizeof(r.text), "%s", text);
	snprintf(r.relay, sizeof(r.relay), "local (command)");
	mda_report_result(&r);
}

static void
prog_maybe_free(struct mda_prog *pr)
{
	if (!pr->reaped || !pr->closed)
		return;
	if (!pr->answered)
		prog_result(pr->evpid, PROTO_TEMPFAIL,
		    "4.3.0 delivery command process died without a result");
	TAILQ_REMOVE(&progs, pr, entry);
	nprogs--;
	mproc_clear(&pr->mp);
	free(pr);
}

static void
prog_closed(struct mproc *p)
{
	struct mda_prog	*pr = p->arg;

	if (pr->closed)
		return;
	pr->closed = 1;
	event_del(p->ev);
	prog_maybe_free(pr);
}

static void
prog_dispatch(struct mproc *p, struct imsg *m)
{
	struct mda_prog		*pr = p->arg;
	struct delivery_result	 r;

	if (m->hdr.type != IMSG_MDA_RESULT || pr->answered)
		fatalx("unexpected message %u from a delivery command process",
		    m->hdr.type);
	PROTO_READ(p, m, &r, proto_valid_delivery_result);
	if (r.evpid != pr->evpid)
		fatalx("delivery command process answered for another "
		    "envelope");
	pr->answered = 1;
	mda_report_result(&r);
}

int
mda_program_reaped(pid_t pid, int status)
{
	struct mda_prog	*pr;

	TAILQ_FOREACH(pr, &progs, entry)
		if (pr->pid == pid)
			break;
	if (pr == NULL)
		return 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_warnx("delivery command process (pid %d) died (status "
		    "%d)", (int)pid, status);
	pr->reaped = 1;
	prog_maybe_free(pr);
	return 1;
}

void
mda_program_kill_all(void)
{
	struct mda_prog	*pr;

	TAILQ_FOREACH(pr, &progs, entry)
		if (!pr->reaped)
			kill(pr->pid, SIGKILL);
}

/*
 * Start one delivery in a process of its own, which runs `child' and
 * reports on its end of a socketpair.  fd (the spool message) is owned
 * from now on; the result reaches the queue through
 * mda_report_result().
 */
static void
oneshot_spawn(const struct envelope *evp, int fd, const struct passwd *pw,
    const char *command, const char *what,
    void (*child)(int, int, const struct envelope *, const struct passwd *,
    const char *))
{
	struct mda_prog	*pr;
	int		 sv[2];
	pid_t		 pid;

	if (nprogs >= conf->mda_max) {
		close(fd);
		prog_result(evp->id, PROTO_TEMPFAIL,
		    "4.3.2 too many delivery commands running");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		close(fd);
		prog_result(evp->id, PROTO_TEMPFAIL,
		    "4.3.0 cannot start the delivery process");
		return;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		close(fd);
		prog_result(evp->id, PROTO_TEMPFAIL,
		    "4.3.0 cannot start the delivery process");
		return;
	}
	if (pid == 0) {
		destmac_key_forget();	/* the parent's; see smtpd.c */
		close(sv[0]);
		child(sv[1], fd, evp, pw, command);
	}
	close(sv[1]);
	close(fd);
	if ((pr = calloc(1, sizeof(*pr))) == NULL)
		fatal("calloc");
	pr->pid = pid;
	pr->evpid = evp->id;
	mproc_init(&pr->mp, sv[0], "delivery command process", prog_dispatch,
	    pr);
	pr->mp.closed = prog_closed;
	TAILQ_INSERT_TAIL(&progs, pr, entry);
	nprogs++;
	log_debug("%016llx: %s for %s started (pid %d)",
	    (unsigned long long)evp->id, what, pw->pw_name, (int)pid);
}

void
mda_program_deliver(const struct envelope *evp, int fd,
    const struct passwd *pw, const char *command)
{
	oneshot_spawn(evp, fd, pw, command, "delivery command", prog_child);
}

/* root's mailbox: see mda_root.c */
void
mda_root_deliver(const struct envelope *evp, int fd, const struct passwd *pw)
{
	oneshot_spawn(evp, fd, pw, "", "delivery to root's mailbox",
	    mda_root_child);
}

/* ---- the delivery command process, as the user ---- */

struct prog_out {
	char	text[MDA_PROG_OUTPUT + 1];
	size_t	len;
};

static void
out_keep(struct prog_out *o, const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n && o->len < MDA_PROG_OUTPUT; i++) {
		unsigned char c = (unsigned char)p[i];

		/* one line of printable text for the bounce and the log */
		if (c < 0x20 || c >= 0x7f)
			c = ' ';
		if (c == ' ' && (o->len == 0 || o->text[o->len - 1] == ' '))
			continue;
		o->text[o->len++] = (char)c;
	}
	o->text[o->len] = '\0';
}

static int
set_env(char **env, size_t *n, size_t max, const char *key, const char *val)
{
	if (*n + 1 >= max || platform_asprintf(&env[*n], "%s=%s", key, val) == -1)
		return -1;
	(*n)++;
	env[*n] = NULL;
	return 0;
}

static void
child_exec(int in, int out, const char *command, char **env)
{
	sigset_t	set;

	/* its own session: a time-out kills the whole pipeline */
	if (setsid() == -1)
		_exit(127);
	if (dup2(in, 0) == -1 || dup2(out, 1) == -1 || dup2(out, 2) == -1)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	sched_restore();
	execle(MDA_PROG_SHELL, "sh", "-c", command, (char *)NULL, env);
	dprintf(2, "cannot run %s: %s\n", MDA_PROG_SHELL, strerror(errno));
	_exit(127);
}

static double
now_secs(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const struct {
	int		 code;
	const char	*dsn;
	const char	*name;
} sysexits[] = {
	{ 64, "5.3.0", "EX_USAGE" }, { 65, "5.6.0", "EX_DATAERR" },
	{ 66, "5.3.0", "EX_NOINPUT" }, { 67, "5.1.1", "EX_NOUSER" },
	{ 68, "5.1.2", "EX_NOHOST" }, { 69, "5.3.0", "EX_UNAVAILABLE" },
	{ 70, "5.3.0", "EX_SOFTWARE" }, { 71, "5.3.0", "EX_OSERR" },
	{ 72, "5.3.0", "EX_OSFILE" }, { 73, "5.2.0", "EX_CANTCREAT" },
	{ 74, "5.3.0", "EX_IOERR" }, { 75, "4.3.0", "EX_TEMPFAIL" },
	{ 76, "5.5.0", "EX_PROTOCOL" }, { 77, "5.7.1", "EX_NOPERM" },
	{ 78, "5.3.5", "EX_CONFIG" },
};


static void
prog_verdict(int wstatus, int timedout, const struct prog_out *o,
    struct delivery_result *r)
{
	const char	*dsn = "5.3.0", *name = "";
	size_t		 i;
	int		 code;

	if (timedout) {
		r->status = PROTO_TEMPFAIL;
		textf(r->text, sizeof(r->text), "4.3.0 command time limit "
		    "(%ds) exceeded%s%s", MDA_PROG_TIMEOUT, o->len ? ": " : "",
		    o->text);
		return;
	}
	if (WIFSIGNALED(wstatus)) {
		r->status = PROTO_TEMPFAIL;
		textf(r->text, sizeof(r->text), "4.3.0 command killed by "
		    "signal %d%s%s", WTERMSIG(wstatus), o->len ? ": " : "",
		    o->text);
		return;
	}
	code = WEXITSTATUS(wstatus);
	if (code == 0) {
		r->status = PROTO_OK;
		textf(r->text, sizeof(r->text), "2.0.0 delivered to "
		    "command%s%s", o->len ? ": " : "", o->text);
		return;
	}
	for (i = 0; i < sizeof(sysexits) / sizeof(sysexits[0]); i++)
		if (sysexits[i].code == code) {
			dsn = sysexits[i].dsn;
			name = sysexits[i].name;
		}
	r->status = code == EX_TEMPFAIL_CODE ? PROTO_TEMPFAIL : PROTO_PERMFAIL;
	textf(r->text, sizeof(r->text), "%s command exited with status "
	    "%d%s%s%s%s%s", dsn, code, *name ? " (" : "", name, *name ? ")" :
	    "", o->len ? ": " : "", o->text);
}

/* feed the message, collect output, wait; the verdict goes into r */
static void
prog_run(const struct spool_msg *msg, const char *head, pid_t pid, int in,
    int out, struct delivery_result *r)
{
	static char	 buf[65536];
	struct pollfd	 pfd[2];
	struct prog_out	 o;
	char		 obuf[4096];
	size_t		 hlen = strlen(head), blen = 0, boff = 0;
	off_t		 off = 0;
	double		 deadline = now_secs() + MDA_PROG_TIMEOUT;
	int		 in_open = 1, out_open = 1, eof = 0, wstatus = 0;
	int		 exited = 0, timedout = 0, tmo;
	ssize_t		 n;

	memset(&o, 0, sizeof(o));
	memcpy(buf, head, hlen);
	blen = hlen;
	while (out_open || !exited) {
		if (!exited && waitpid(pid, &wstatus, WNOHANG) == pid) {
			exited = 1;
			/* what it left in the pipe is read; not more waiting */
			deadline = now_secs() + 1;
		}
		if (now_secs() >= deadline) {
			if (!exited) {
				timedout = 1;
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
				if (waitpid(pid, &wstatus, 0) == pid)
					exited = 1;
			}
			break;
		}
		/* refill from the spool file */
		if (in_open && boff == blen && !eof) {
			n = spool_msg_pread(msg, buf, sizeof(buf), off);
			if (n == -1) {
				r->status = PROTO_TEMPFAIL;
				snprintf(r->text, sizeof(r->text),
				    "4.3.0 cannot read the queued message");
				kill(-pid, SIGKILL);
				waitpid(pid, &wstatus, 0);
				return;
			}
			if (n == 0)
				eof = 1;
			off += n;
			blen = (size_t)n;
			boff = 0;
		}
		if (in_open && boff == blen && eof) {
			close(in);
			in_open = 0;
		}
		pfd[0].fd = in_open ? in : -1;
		pfd[0].events = POLLOUT;
		pfd[1].fd = out_open ? out : -1;
		pfd[1].events = POLLIN;
		tmo = exited ? 50 : 200;	/* waitpid has no descriptor */
		if (poll(pfd, 2, tmo) == -1 && errno != EINTR)
			break;
		if (in_open && (pfd[0].revents & (POLLOUT | POLLERR |
		    POLLHUP))) {
			n = write(in, buf + boff, blen - boff);
			if (n == -1 && errno != EAGAIN && errno != EINTR) {
				/* it stopped reading: its exit status says */
				close(in);
				in_open = 0;
			} else if (n > 0)
				boff += (size_t)n;
		}
		if (out_open && (pfd[1].revents & (POLLIN | POLLERR |
		    POLLHUP))) {
			n = read(out, obuf, sizeof(obuf));
			if (n > 0)
				out_keep(&o, obuf, (size_t)n);
			else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(out);
				out_open = 0;
			}
		}
	}
	if (!exited && waitpid(pid, &wstatus, 0) != pid)
		wstatus = 0x7f00;	/* unknown: as if exit 127 */
	prog_verdict(wstatus, timedout, &o, r);
}

/*
 * The first steps of a one-shot delivery process (a command's, root's
 * mailbox's): only its result channel and the message stay open, it
 * finishes what it started whatever signal the daemon gets (the parent
 * waits for it), and it names itself.
 */
void
mda_oneshot_setup(int resfd, int msgfd, const char *title)
{
	int	keep[2];

	keep[0] = resfd;
	keep[1] = msgfd;
	close_all_but(keep, 2);
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	privsep_title(title);
	log_reopen();
}

static void
prog_child(int resfd, int msgfd, const struct envelope *evp,
    const struct passwd *pwin, const char *command)
{
	struct delivery_result	 r;
	struct imsgbuf		 ib;
	struct spool_msg	 msg;
	struct passwd		 pw = *pwin;
	char			*env[16], *head = NULL, *cmd;
	char			 sender[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 orig[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 base[ADDR_LOCAL_MAX + 1];
	char			 ext[ADDR_LOCAL_MAX + 1];
	int			 in[2], out[2];
	size_t			 nenv = 0;
	pid_t			 pid;

	mda_oneshot_setup(resfd, msgfd, "delivery command");
	memset(&r, 0, sizeof(r));
	r.evpid = evp->id;
	snprintf(r.relay, sizeof(r.relay), "local (command)");
	if ((pw.pw_name = strdup(pwin->pw_name)) == NULL ||
	    (pw.pw_dir = strdup(pwin->pw_dir)) == NULL ||
	    (pw.pw_shell = strdup(pwin->pw_shell && *pwin->pw_shell ?
	    pwin->pw_shell : MDA_PROG_SHELL)) == NULL ||
	    (cmd = strdup(command)) == NULL)
		_exit(1);
	if (chdir(pw.pw_dir) == -1 && chdir("/") == -1)
		fatal("chdir");
	privsep_drop_ids(pw.pw_uid, pw.pw_gid, &pw.pw_gid, 1);
	umask(077);

	addr_to_string(&evp->sender, sender, sizeof(sender));
	addr_to_string(&evp->dest, rcpt, sizeof(rcpt));
	addr_to_string(&evp->rcpt, orig, sizeof(orig));
	addr_split_subaddress(evp->dest.user, base, sizeof(base), ext,
	    sizeof(ext));
	spool_msg_set(&msg, msgfd, evp);
	if (mda_delivered_to_loop(&msg, rcpt)) {
		r.status = PROTO_PERMFAIL;
		snprintf(r.text, sizeof(r.text), "5.4.6 mail forwarding "
		    "loop for %s (Delivered-To already present)", rcpt);
		goto report;
	}
	env[0] = NULL;
	if (set_env(env, &nenv, 16, "HOME", pw.pw_dir) == -1 ||
	    set_env(env, &nenv, 16, "USER", pw.pw_name) == -1 ||
	    set_env(env, &nenv, 16, "LOGNAME", pw.pw_name) == -1 ||
	    set_env(env, &nenv, 16, "SHELL", pw.pw_shell) == -1 ||
	    set_env(env, &nenv, 16, "PATH", "/usr/bin:/bin") == -1 ||
	    set_env(env, &nenv, 16, "SENDER", sender) == -1 ||
	    set_env(env, &nenv, 16, "RECIPIENT", rcpt) == -1 ||
	    set_env(env, &nenv, 16, "ORIGINAL_RECIPIENT", orig) == -1 ||
	    set_env(env, &nenv, 16, "LOCAL", evp->dest.user) == -1 ||
	    set_env(env, &nenv, 16, "EXTENSION", ext) == -1 ||
	    set_env(env, &nenv, 16, "DOMAIN", evp->dest.domain) == -1 ||
	    platform_asprintf(&head, "Return-Path: <%s>\nDelivered-To: %s\n",
	    sender, rcpt) == -1)
		fatal("asprintf");
	if (platform_pipe2(in, O_CLOEXEC) == -1 ||
	    platform_pipe2(out, O_CLOEXEC) == -1)
		fatal("pipe2");
	if ((pid = fork()) == -1) {
		r.status = PROTO_TEMPFAIL;
		snprintf(r.text, sizeof(r.text), "4.3.0 fork: %s",
		    strerror(errno));
		goto report;
	}
	if (pid == 0) {
		close(resfd);
		close(msgfd);
		close(in[1]);
		close(out[0]);
		child_exec(in[0], out[1], cmd, env);
	}
	close(in[0]);
	close(out[1]);
	if (fcntl(in[1], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(out[0], F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl");
	prog_run(&msg, head, pid, in[1], out[0], &r);
report:
	imsgbuf_init(&ib, resfd);
	if (imsg_compose(&ib, IMSG_MDA_RESULT, 0, -1, &r, sizeof(r)) == -1 ||
	    imsg_flush(&ib) == -1)
		_exit(1);
	_exit(0);
}
