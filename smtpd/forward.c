/*
 * forward.c -- ~/.forward files, opened by the privileged parent.
 *
 * The lookup process runs as _smtpd and cannot read users' home
 * directories, so it asks the parent, which opens the file as root and
 * hands over only the descriptor.  Root reads anything, so the checks
 * here stand in for the permission system:
 *
 *   - O_NOFOLLOW: a symbolic link planted as ~user/.forward could point
 *     at any file on the system (/etc/shadow) and have it parsed and its
 *     lines logged as bad addresses;
 *   - a regular file: a FIFO or device would block or misbehave;
 *   - owned by the user or root, and writable by nobody else: another
 *     user able to write it could make this user's mail run programs as
 *     this user.
 *
 * A .forward failing a check is ignored with a warning (mail goes to the
 * mailbox, as if there were none), which is what sendmail and Postfix
 * do; a system error is a temporary failure, so mail waits rather than
 * silently skipping a forward that should have applied.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"
#include "log.h"
#include "mproc.h"
#include "proto.h"
#include "sysusers.h"

void
forward_open(struct forward_req *req, int *fdp)
{
	struct passwd	*pw;
	struct stat	 sb;
	char		 path[PATH_MAX];
	int		 fd, n;

	*fdp = -1;
	req->status = PROTO_PERMFAIL;
	errno = 0;
	if ((pw = getpwnam(req->user)) == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH) {
			log_warn("forward: getpwnam %s", req->user);
			req->status = PROTO_TEMPFAIL;
		}
		return;
	}
	/*
	 * mail is never delivered as root, the daemon's own accounts or
	 * nobody (sysusers.c), so they have no .forward
	 */
	if (pw->pw_uid == 0 || sysusers_no_mailbox(pw->pw_uid) ||
	    pw->pw_dir == NULL || pw->pw_dir[0] != '/')
		return;
	n = snprintf(path, sizeof(path), "%s/.forward", pw->pw_dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC);
	if (fd == -1) {
		switch (errno) {
		case ENOENT:
		case ENOTDIR:
			return;		/* no .forward: the common case */
		case ELOOP:
			log_warnx("forward: %s is a symbolic link; ignored",
			    path);
			return;
		default:
			log_warn("forward: %s", path);
			req->status = PROTO_TEMPFAIL;
			return;
		}
	}
	if (fstat(fd, &sb) == -1) {
		log_warn("forward: fstat %s", path);
		close(fd);
		req->status = PROTO_TEMPFAIL;
		return;
	}
	if (!S_ISREG(sb.st_mode)) {
		log_warnx("forward: %s is not a regular file; ignored", path);
		close(fd);
		return;
	}
	if (sb.st_uid != pw->pw_uid && sb.st_uid != 0) {
		log_warnx("forward: %s is owned by uid %u, not %s; ignored",
		    path, (unsigned)sb.st_uid, pw->pw_name);
		close(fd);
		return;
	}
	if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		log_warnx("forward: %s is group or world writable; ignored",
		    path);
		close(fd);
		return;
	}
	req->status = PROTO_OK;
	*fdp = fd;
}

void
parent_forward(struct mproc *p, const struct forward_req *in)
{
	struct forward_req	req = *in;
	int			fd;

	forward_open(&req, &fd);
	mproc_compose(p, IMSG_PARENT_FORWARD, req.reqid, fd, &req,
	    sizeof(req));
}
