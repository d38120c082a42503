/*
 * pidfile.c -- the parent's pid file (smtpd -P, default /run/smtpd.pid).
 *
 * rc scripts and admins find the daemon by it, and it keeps a second
 * daemon from starting over a running one.  What says "running" is a
 * lock, not the number in the file: the parent holds an flock(2) on the
 * file for as long as it lives, so a pid file a crash left behind (kill
 * -9, a power cut) is not locked and is simply taken over, and a pid the
 * kernel has since given to another process cannot fool us.  The lock
 * is taken before anything is bound, so a second daemon says "already
 * running" rather than "address in use"; the pid is written once the
 * sockets are bound and the process has become the daemon (daemon(3)
 * changes the pid); the file goes when the parent exits, cleanly or
 * by fatal() (an atexit handler that children, with other pids, skip).
 * No child inherits the descriptor (close-on-exec, and spawn() closes
 * what a child is not given).
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pidfile.h"

static int		 pid_fd = -1;
static const char	*pid_path;
static pid_t		 pid_owner;	/* children run atexit() handlers too */

/* exit() of the parent after a start-up error or fatal() */
static void
pidfile_atexit(void)
{
	if (getpid() == pid_owner)
		pid_file_remove();
}

int
pid_file_lock(const char *path)
{
	char	buf[32];
	ssize_t	n;
	int	fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    O_NOCTTY, 0644)) == -1) {
		fprintf(stderr, "smtpd: pid file %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK) {
			fprintf(stderr, "smtpd: lock pid file %s: %s\n", path,
			    strerror(errno));
			close(fd);
			return -1;
		}
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		fprintf(stderr, "smtpd: already running%s%s (pid file %s is "
		    "locked); stop it first, or give another pid file with "
		    "-P\n", buf[0] ? " as pid " : "", buf, path);
		close(fd);
		return -1;
	}
	pid_fd = fd;
	pid_path = path;
	pid_owner = getpid();
	if (atexit(pidfile_atexit) != 0) {
		fprintf(stderr, "smtpd: atexit failed\n");
		return -1;
	}
	return 0;
}

void
pid_file_write(void)
{
	char	buf[32];
	int	len;

	if (pid_fd == -1)
		return;
	pid_owner = getpid();		/* daemon(3) forked */
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(pid_fd, 0) == -1 ||
	    pwrite(pid_fd, buf, (size_t)len, 0) != len)
		log_warn("pid file %s", pid_path);
}

void
pid_file_remove(void)
{
	if (pid_fd == -1)
		return;
	/* still locked while we unlink: nobody takes it over half-gone */
	if (unlink(pid_path) == -1 && errno != ENOENT)
		log_warn("unlink %s", pid_path);
	close(pid_fd);
	pid_fd = -1;
}
