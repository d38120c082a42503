/*
 * mda_root.c -- delivery to root's mailbox, without running as root.
 *
 * RFC 5321 4.5.1 requires mail for postmaster to be accepted, and on most
 * hosts postmaster, the RFC 2142 role names and the system accounts end
 * at root, as does the output of root's cron jobs.  An installation that
 * has not (yet) aliased root to a person must not lose that mail, and no
 * delivery may run as root: a bug in a writer, or a .forward, a file or
 * a program chosen for root, would otherwise act with every privilege.
 * So root's mail has exactly one destination, MDA_MBOX_DIR/root as an
 * mbox (Debian Policy 11.6's place and format), whatever the action that
 * matched it says, and lookup never expands root's ~/.forward.
 *
 * The parent forks one process per delivery (root's mail is rare) through
 * mda_program.c's one-shot machinery.  Still root, it opens the mailbox
 * (O_APPEND, O_NOFOLLOW, O_NONBLOCK against a planted FIFO, created 0600
 * if missing), then becomes SMTPD_USER with the mail group (for the
 * dotlock in the mail spool, as every mbox delivery process has it),
 * enters the delivery sandbox, and only then reads the message and
 * appends it with mda_mbox_deliver_fd(): a regular file, one link, owned
 * by root, still the file of that name once the dotlock and the fcntl
 * lock are held.  The descriptor can only append to that one file.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mda.h"
#include "mda_proc.h"
#include "mproc.h"
#include "privsep.h"
#include "proc.h"

static void	root_report(int, const struct delivery_result *)
		    __attribute__((noreturn));

static void
root_report(int resfd, const struct delivery_result *r)
{
	struct imsgbuf	ib;

	imsgbuf_init(&ib, resfd);
	if (imsg_compose(&ib, IMSG_MDA_RESULT, 0, -1, r, sizeof(*r)) == -1 ||
	    imsg_flush(&ib) == -1)
		_exit(1);
	_exit(0);
}

/* the open, as root; errno is kept for the caller */
static int
root_open(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0600);
}

void
mda_root_child(int resfd, int msgfd, const struct envelope *evp,
    const struct passwd *pw, const char *unused)
{
	static char		 head[MDA_HEAD_MAX];
	struct delivery_result	 r;
	struct mda_message	 msg;
	struct passwd		*du;
	struct group		*gr;
	char			 sender[MDA_ADDR_MAX];
	char			 rcpt[MDA_ADDR_MAX];
	char			 path[PATH_MAX];
	gid_t			 groups[2];
	uid_t			 uid;
	gid_t			 gid;
	ssize_t			 n;
	int			 mboxfd, ngroups = 1, e, rc;

	mda_oneshot_setup(resfd, msgfd, "delivery root");
	memset(&r, 0, sizeof(r));
	r.evpid = evp->id;
	snprintf(r.relay, sizeof(r.relay), "local");
	if (pw->pw_uid != 0 || evp->dest_type != DEST_MAILBOX)
		fatalx("root's mailbox delivery for %s", pw->pw_name);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", MDA_MBOX_DIR,
	    pw->pw_name) >= sizeof(path))
		fatalx("mailbox path too long");

	errno = 0;
	if ((du = getpwnam(SMTPD_USER)) == NULL) {
		r.status = PROTO_TEMPFAIL;
		snprintf(r.text, sizeof(r.text), "4.3.0 user %s not found",
		    SMTPD_USER);
		root_report(resfd, &r);
	}
	uid = du->pw_uid;
	gid = du->pw_gid;
	if (uid == 0)
		fatalx("%s is root", SMTPD_USER);
	groups[0] = gid;
	if ((gr = getgrnam("mail")) != NULL)
		groups[ngroups++] = gr->gr_gid;

	mboxfd = root_open(path);
	e = errno;
	if (chdir("/") == -1)
		fatal("chdir");
	privsep_drop_ids(uid, gid, groups, ngroups);
	umask(077);
	sandbox_enter(SANDBOX_MDA);

	if (mboxfd == -1) {
		if (e == ELOOP || e == EISDIR || e == ENXIO) {
			r.status = PROTO_PERMFAIL;
			snprintf(r.text, sizeof(r.text), "5.2.0 mbox: unsafe "
			    "file: %s", e == ELOOP ? "symbolic link" :
			    strerror(e));
		} else {
			r.status = PROTO_TEMPFAIL;
			snprintf(r.text, sizeof(r.text), "4.2.0 mbox: open: "
			    "%s", strerror(e));
		}
		root_report(resfd, &r);
	}
	mda_message_init(&msg, evp, msgfd, sender, rcpt);
	n = mda_read_head(&msg.file, head, sizeof(head));
	msg.head = head;
	msg.headlen = n > 0 ? (size_t)n : 0;
	if (mda_head_loops(msg.head, msg.headlen, rcpt)) {
		close(mboxfd);
		r.status = PROTO_PERMFAIL;
		snprintf(r.text, sizeof(r.text), "5.4.6 mail forwarding "
		    "loop for %s (Delivered-To already present)", rcpt);
		root_report(resfd, &r);
	}
	rc = mda_mbox_deliver_fd(mboxfd, path, 0, &msg, r.text,
	    sizeof(r.text));
	switch (rc) {
	case MDA_OK:
		r.status = PROTO_OK;
		snprintf(r.text, sizeof(r.text), "2.0.0 delivered to %.200s",
		    path);
		break;
	case MDA_PERMFAIL:
		r.status = PROTO_PERMFAIL;
		break;
	default:
		r.status = PROTO_TEMPFAIL;
		break;
	}
	root_report(resfd, &r);
}
