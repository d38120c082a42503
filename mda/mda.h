/*
 * mda.h -- local delivery writers.  These run in a delivery process that
 * has already become the recipient user, or (root's mailbox only) the
 * daemon's user holding a descriptor root opened; they never run as root.
 *
 * mda.c, mda_program.c and mda_root.c call each other both ways on
 * purpose: the pool (mda.c) hands programs and root's mailbox to their
 * one-shot processes, which report through mda_report_result() and share
 * the one-shot set-up (mda_oneshot_setup) and the mailbox writers.
 */
#ifndef POSTHASTE_MDA_H
#define POSTHASTE_MDA_H

#include <stddef.h>
#include <sys/types.h>

#include "spool_msg.h"

/* the mbox spool (Debian Policy 11.6): MDA_MBOX_DIR/USER */
#define MDA_MBOX_DIR	"/var/mail"

/* results; a delivery reports exactly one of these to the queue */
#define MDA_OK		0
#define MDA_TEMPFAIL	1	/* try again later (4.x.x) */
#define MDA_PERMFAIL	2	/* bounce (5.x.x) */

struct mda_message {
	struct spool_msg file;	/* the spool message, read through
				 * spool_msg_pread() from 0 (added headers
				 * first); LF line endings, no dot-stuffing */
	const char	*head;	/* its first headlen bytes, read already */
	size_t		 headlen;	/* (the writers read on from there) */
	const char	*sender;	/* envelope sender; "" = null path <> */
	const char	*rcpt;		/* final recipient "user@domain", for
					 * Delivered-To */
	const char	*hostname;	/* this host, for Maildir names */
};

/*
 * Deliver into the Maildir at `path' (created with tmp/ new/ cur/, 0700,
 * if missing).  Prepends Return-Path and Delivered-To.  The file is
 * written in tmp/, fsynced, renamed into new/, and new/ is fsynced.
 * err receives a human-readable reason on failure (with an enhanced
 * status code prefix, e.g. "4.2.0 Maildir tmp/: Permission denied").
 */
int	mda_maildir_deliver(const char *path, const struct mda_message *,
	    char *err, size_t errlen);

/*
 * A batch of Maildir deliveries shares its syncs: _begin writes each
 * message into tmp/ without syncing; the caller then makes them all
 * durable at once (mda_maildir_sync), _finish renames each into new/, and
 * a later sync makes the renames durable.  Only after that may success be
 * reported.  _abort removes what a failed delivery left; _release lets go
 * of a delivery that is complete.
 *
 * The deliveries begun into one Maildir between two calls of
 * mda_maildir_next_batch() share one open directory.  mda_maildir_sync()
 * makes everything written or renamed so far in the Maildirs that pending
 * deliveries hold durable, with one syncfs() per file system.
 */
struct mda_maildir;
struct mda_maildir_pending {
	struct mda_maildir *md;		/* the Maildir, NULL when let go */
	char	tmpname[300];		/* "tmp/NAME" */
	char	newname[340];		/* "new/NAME,S=SIZE" */
	char	victim[340];		/* what to unlink on failure */
};
void	mda_maildir_next_batch(void);
int	mda_maildir_begin(const char *path, const struct mda_message *,
	    struct mda_maildir_pending *, char *err, size_t errlen);
int	mda_maildir_sync(void);
int	mda_maildir_finish(struct mda_maildir_pending *, char *err,
	    size_t errlen);
void	mda_maildir_abort(struct mda_maildir_pending *);
void	mda_maildir_release(struct mda_maildir_pending *);

/*
 * Append to the mbox file at `path' (e.g. /var/mail/USER): O_APPEND,
 * O_NOFOLLOW, regular file with one link owned by the caller's euid; a
 * dotlock (path.lock) and an fcntl write lock, both with bounded waits; a
 * "From sender date" line; mboxrd quoting (any line matching ^>*From  gets
 * one more '>'); a blank line after the message; fsync.  On any failure
 * after writing began, the file is truncated back to its original size.
 */
int	mda_mbox_deliver(const char *path, const struct mda_message *,
	    char *err, size_t errlen);

/*
 * The same append to an mbox that root opened for us (root's own mailbox,
 * which no delivery process may open as root): fd is taken over and
 * closed; the file must be a regular file with one link owned by `owner',
 * and still be the one named `path' once locked (dotlock, then fcntl).
 */
int	mda_mbox_deliver_fd(int fd, const char *path, uid_t owner,
	    const struct mda_message *, char *err, size_t errlen);

/* Append to a regular file (aliases "/file"): same as mbox, no dotlock. */
int	mda_file_deliver(const char *path, const struct mda_message *,
	    char *err, size_t errlen);

/*
 * Expand a maildir path template for a user: "~" / "~/x" -> home,
 * %{user.username} %{user.directory} %{dest.user} %{dest.domain}
 * %{rcpt.user} %{rcpt.domain} %{sender}; with :lowercase modifier
 * e.g. %{dest.domain:lowercase}.  Characters '/' and leading '.' in
 * substituted address parts are refused (returns -1), so no address can
 * walk the tree.
 */
struct mda_expand_ctx {
	const char	*username;
	const char	*homedir;
	const char	*dest_user;
	const char	*dest_domain;
	const char	*rcpt_user;
	const char	*rcpt_domain;
	const char	*sender;
};
int	mda_expand_path(const char *tmpl, const struct mda_expand_ctx *,
	    char *out, size_t outlen);

/*
 * 1 when the message's header already has "Delivered-To: rcpt" (any
 * case, with or without <>): delivering again would loop (5.4.6).  Only
 * the first MDA_HEAD_MAX bytes are looked at.  A delivery that goes on to
 * write the message reads them with mda_read_head() (bytes read, or -1),
 * checks them with mda_head_loops() and hands them to the writer as the
 * message's head, so they are read only once.
 */
#define MDA_HEAD_MAX	(256 * 1024)
int	mda_delivered_to_loop(const struct spool_msg *, const char *rcpt);
ssize_t	mda_read_head(const struct spool_msg *, char *buf, size_t len);
int	mda_head_loops(const char *head, size_t len, const char *rcpt);

/*
 * Notes on the above, as implemented in mda_local.c:
 *
 * mda_expand_path() returns 0 with the result in `out', or -1 with `out'
 * set to "" (unknown %{name} or modifier, a NULL or refused value, a
 * "~user" form, an empty result or one with a ".." component, or no
 * room).  "%%" is a literal '%'; any other '%' not followed by '{' is
 * refused.  Modifiers are ASCII-only: :lowercase and :uppercase.  Address
 * values (and user.username) must be non-empty -- except %{sender},
 * which is "" for the null sender -- and contain no '/', no control
 * characters, and no leading '.'.
 *
 * mda_file_deliver("/dev/null", ...) discards the message and returns
 * MDA_OK, so that "user: /dev/null" in aliases works as administrators
 * expect.
 *
 * The delivery process should ignore SIGXFSZ: a file size limit then
 * shows up as EFBIG, a temporary failure with the append rolled back.
 */

#endif
