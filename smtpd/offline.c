/*
 * offline.c -- submit the messages sendmail(8) left while we were down.
 *
 * The spool's offline directory is world-writable and sticky (1777, as
 * /tmp): sendmail has no privileges, so that is the only way a user can
 * leave a message there.  Everything in it is therefore untrusted.  The
 * root-owned part here only looks: a file is considered when it is a
 * regular file (not a symbolic link, not a device or FIFO that could
 * block us), has exactly one link (a hard link to someone else's file
 * would otherwise be submitted in their name), and belongs to an existing
 * user who is not one of the daemon's own.  Then a child takes on that
 * user's identity -- groups, gid, uid -- before it opens the file, checks
 * it is still the same file, and submits it through the control socket
 * exactly as sendmail would have: the daemon sees the user's uid on the
 * socket, so an offline file can never claim more than its owner could
 * have sent directly.
 *
 * The parent must not wait for any of this (it has a daemon to run), so
 * one process walks the directory; the parent reaps it, and runs it at
 * start-up and then whenever the directory is not empty, one at a time.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "destmac.h"
#include "imsg.h"
#include "log.h"
#include "offline.h"
#include "platform.h"
#include "privsep.h"
#include "proc.h"
#include "submit.h"

#define OFFLINE_MAX_FILES	100000
#define OFFLINE_MAX_GROUPS	256

static void
offline_report(const char *line)
{
	char	clean[1024];

	log_warnx("%s", log_sanitize(line, clean, sizeof(clean)));
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * In the per-file child: become the owner, then submit.  Everything worth
 * knowing is logged here; the exit status only says 0 (submitted) or
 * EX_TEMPFAIL (the daemon could not take it now: try again soon).
 */
static __attribute__((noreturn)) void
offline_submit_file(int dfd, const char *name, const struct stat *seen,
    const struct passwd *pw)
{
	struct submission	 sub;
	struct submit_result	 res;
	struct stat		 st;
	gid_t			 groups[OFFLINE_MAX_GROUPS];
	char			 err[1200];
	int			 ngroups = OFFLINE_MAX_GROUPS, fd, sfd, rc;

	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) == -1) {
		/* too many groups: the primary one is enough to submit */
		groups[0] = pw->pw_gid;
		ngroups = 1;
	}
	privsep_drop_ids(pw->pw_uid, pw->pw_gid, groups, ngroups);

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1) {
		log_warn("%s", name);
		_exit(1);
	}
	if (fstat(fd, &st) == -1) {
		log_warn("%s: fstat", name);
		_exit(1);
	}
	/* the file we looked at as root, not one swapped in meanwhile */
	if (st.st_dev != seen->st_dev || st.st_ino != seen->st_ino ||
	    !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    st.st_uid != pw->pw_uid) {
		log_warnx("%s changed while being examined; left "
		    "alone", name);
		_exit(1);
	}
	rc = submit_offline_read(fd, conf->max_message_size, &sub, err,
	    sizeof(err));
	close(fd);
	if (rc == 1) {
		log_warnx("%s (user %s): %s; left for a later pick-up",
		    name, pw->pw_name, err);
		_exit(1);
	}
	if (rc == -1) {
		log_warnx("%s (user %s): %s; left alone", name,
		    pw->pw_name, err);
		_exit(1);
	}
	if ((sfd = submit_connect(conf->socket)) == -1) {
		log_warn("%s: connect %s", name, conf->socket);
		_exit(EX_TEMPFAIL);
	}
	submit_message(sfd, &sub, offline_report, NULL, &res);
	if (res.queued) {
		if (unlinkat(dfd, name, 0) == -1)
			log_warn("%s: unlink (submitted as %s)",
			    name, res.queueid);
		log_info("%s user=%s submitted, queued as %s%s",
		    name, pw->pw_name, res.queueid,
		    res.status ? " (some recipients refused)" : "");
		_exit(0);
	}
	if (!res.reached || res.status == EX_TEMPFAIL ||
	    res.status == EX_IOERR || res.status == EX_OSERR) {
		log_warnx("%s user=%s: %s; left for a later pick-up",
		    name, pw->pw_name, res.error);
		_exit(EX_TEMPFAIL);
	}
	/* refused for good: give it back to the user, as sendmail would */
	if (submit_dead_letter(&sub, err, sizeof(err)) == -1) {
		log_warnx("%s user=%s: %s; and cannot save it to "
		    "dead.letter: %s; left alone", name, pw->pw_name,
		    res.error, err);
		_exit(1);
	}
	if (unlinkat(dfd, name, 0) == -1)
		log_warn("%s: unlink", name);
	log_warnx("%s user=%s: %s; returned to ~%s/dead.letter",
	    name, pw->pw_name, res.error, pw->pw_name);
	_exit(1);
}

/* may this file be submitted at all?  (as root, without opening it) */
static struct passwd *
offline_owner(int dfd, const char *name, struct stat *st)
{
	struct passwd	*pw;

	if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno != ENOENT)
			log_warn("%s", name);
		return NULL;
	}
	if (!S_ISREG(st->st_mode)) {
		log_warnx("%s: not a regular file; ignored", name);
		return NULL;
	}
	if (st->st_nlink != 1) {
		log_warnx("%s: %lu links; ignored", name,
		    (unsigned long)st->st_nlink);
		return NULL;
	}
	if ((pw = getpwuid(st->st_uid)) == NULL) {
		log_warnx("%s: owner uid %lu is no user; ignored",
		    name, (unsigned long)st->st_uid);
		return NULL;
	}
	if (strcmp(pw->pw_name, SMTPD_USER) == 0 ||
	    strcmp(pw->pw_name, SMTPD_QUEUE_USER) == 0) {
		log_warnx("%s: owned by %s, which never submits "
		    "mail; ignored", name, pw->pw_name);
		return NULL;
	}
	return pw;
}

/* 1 when a message was left because the daemon could not take it now */
static int
offline_walk(void)
{
	struct stat	  st;
	struct passwd	 *pw, owner;
	struct dirent	 *de;
	DIR		 *dir;
	char		  path[CONF_PATH_MAX + 32], **names = NULL, **n;
	size_t		  nnames = 0, cap = 0, i;
	pid_t		  pid;
	int		  dfd, dirfd2, status;
	size_t		  done = 0, again = 0;

	snprintf(path, sizeof(path), "%s/%s", conf->spool,
	    SUBMIT_OFFLINE_DIR);
	if ((dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			log_warn("%s", path);
		return 0;
	}
	/* fdopendir owns its descriptor; dfd stays for the *at calls */
	if ((dirfd2 = dup(dfd)) == -1 || (dir = fdopendir(dirfd2)) == NULL) {
		log_warn("%s", path);
		if (dirfd2 != -1)
			close(dirfd2);
		close(dfd);
		return 0;
	}
	while ((de = readdir(dir)) != NULL && nnames < OFFLINE_MAX_FILES) {
		if (de->d_name[0] == '.')
			continue;
		if (nnames == cap) {
			cap = cap ? cap * 2 : 64;
			if ((n = reallocarray(names, cap, sizeof(*n))) == NULL)
				fatal("reallocarray");
			names = n;
		}
		if ((names[nnames] = strdup(de->d_name)) == NULL)
			fatal("strdup");
		nnames++;
	}
	closedir(dir);
	/* oldest first: the names start with the time they were made */
	if (nnames > 0)
		qsort(names, nnames, sizeof(*names), name_cmp);

	for (i = 0; i < nnames; i++) {
		if ((pw = offline_owner(dfd, names[i], &st)) == NULL)
			continue;
		owner = *pw;
		if ((pid = fork()) == -1) {
			log_warn("fork");
			break;
		}
		if (pid == 0)
			offline_submit_file(dfd, names[i], &st, &owner);
		while (waitpid(pid, &status, 0) == -1)
			if (errno != EINTR)
				fatal("waitpid");
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			done++;
		else if (WIFEXITED(status) &&
		    WEXITSTATUS(status) == EX_TEMPFAIL)
			again++;
	}
	if (nnames > 0)
		log_info("%zu message(s) submitted, %zu left",
		    done, nnames - done);
	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	close(dfd);
	return again > 0;
}

/*
 * sendmail leaves a message here also while the daemon runs (it did not
 * answer in time, or its control socket was full), so the parent looks
 * again from time to time; only the names are read, nothing is opened.
 * A new file changes the directory's mtime; files a pick-up left (torn,
 * refused, a user without a home) are looked at again only every
 * OFFLINE_RETRY_SECS, so that they do not fill the log.
 */
#define OFFLINE_RETRY_SECS	600

static struct timespec	scanned_mtime;	/* the directory's, at the last */
static time_t		scanned_at;

static int
offline_dir_mtime(struct timespec *ts)
{
	struct stat	st;
	char		path[CONF_PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", conf->spool,
	    SUBMIT_OFFLINE_DIR);
	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode))
		return -1;
	*ts = st.st_mtim;
	return 0;
}

int
offline_pending(void)
{
	struct timespec	 ts;
	struct dirent	*de;
	DIR		*dir;
	char		 path[CONF_PATH_MAX + 32];
	int		 found = 0;

	if (offline_dir_mtime(&ts) == -1)
		return 0;
	if (ts.tv_sec == scanned_mtime.tv_sec &&
	    ts.tv_nsec == scanned_mtime.tv_nsec &&
	    time(NULL) - scanned_at < OFFLINE_RETRY_SECS)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", conf->spool,
	    SUBMIT_OFFLINE_DIR);
	if ((dir = opendir(path)) == NULL)
		return 0;
	while (!found && (de = readdir(dir)) != NULL)
		found = de->d_name[0] != '.';
	closedir(dir);
	return found;
}

pid_t
offline_enqueue_all(void)
{
	sigset_t	all;
	pid_t		pid;
	int		logfd;

	/* what this pick-up will see; a later change is looked at again */
	if (offline_dir_mtime(&scanned_mtime) == -1)
		memset(&scanned_mtime, 0, sizeof(scanned_mtime));
	scanned_at = time(NULL);
	if ((pid = fork()) == -1) {
		log_warn("offline pick-up: fork");
		return -1;
	}
	if (pid != 0)
		return pid;
	destmac_key_forget();	/* the parent's; see smtpd.c */

	/* the parent's handlers and descriptors are not ours */
	signal(SIGCHLD, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* all but the channel we log through (log.c) */
	if ((logfd = log_channel_fd()) > 3 &&
	    platform_close_range(3, logfd - 1) == -1)
		fatal("close_range");
	if (platform_close_range(logfd >= 3 ? logfd + 1 : 3, ~0U) == -1)
		fatal("close_range");
	log_reopen();
	imsg_pid_reset();
	log_procname("offline");
	privsep_title("offline");
	_exit(offline_walk() ? EX_TEMPFAIL : 0);
}

/*
 * The pick-up ended with EX_TEMPFAIL: a message was left because the
 * daemon could not take it then (its control socket was not up yet at
 * start, or full): look again at the next rescan, not OFFLINE_RETRY_SECS
 * later.
 */
void
offline_pickup_ended(int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == EX_TEMPFAIL)
		memset(&scanned_mtime, 0, sizeof(scanned_mtime));
}
