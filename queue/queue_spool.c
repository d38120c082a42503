/*
 * queue_spool.c -- the queue's files: what a message and its envelopes
 * are on disk, and the spool read back at start-up.
 *
 * Here: the index of the spool in memory (the msgs and envs trees), a
 * new message file in incoming/, envelope files, the order in which a
 * delivered envelope and its message leave, and queue_load() with the
 * footers' format and key (queue/.format, queue/.key).  What a crash
 * leaves at each step, and why start-up may remove it, is in the
 * opening comment of queue.c; the comment by each function gives its
 * part of that order.  The commit itself (rename, then sync) is
 * queue_commit.c's.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "queue.h"
#include "queue_int.h"
#include "strset.h"
#include "util.h"

#define SPOOL_FORMAT_FILE	".format"
#define SPOOL_KEY_FILE		".key"
#define SPOOL_FORMAT		"2\n"
#define SPOOL_MIN_FREE_PCT	2	/* below this, refuse new mail */
#ifdef CLOCK_MONOTONIC_COARSE
#define QUEUE_CLOCK		CLOCK_MONOTONIC_COARSE	/* no system call */
#else
#define QUEUE_CLOCK		CLOCK_MONOTONIC
#endif

static int	qmsg_cmp(struct qmsg *a, struct qmsg *b)
{
	return a->msgid < b->msgid ? -1 : a->msgid > b->msgid;
}
static int	qenv_cmp(struct qenv *a, struct qenv *b)
{
	return a->evp.id < b->evp.id ? -1 : a->evp.id > b->evp.id;
}
RB_GENERATE(qmsg_tree, qmsg, node, qmsg_cmp)
RB_GENERATE(qenv_tree, qenv, node, qenv_cmp)

uint8_t				 spool_key[SPOOL_MAC_LEN];	/* spool_key_load() */
struct qmsg_tree		 msgs = RB_INITIALIZER(&msgs);
struct qenv_tree		 envs = RB_INITIALIZER(&envs);

/*
 * Asked for every new message.  With room to spare (64 MB and 2% of the
 * inodes above the limits) the answer is kept for a tenth of a second: a
 * statvfs() per message is a system call per message.  Near the limit
 * every message asks again.
 */
int
spool_nearly_full(void)
{
	static struct timespec	 checked;
	static int		 roomy;
	struct timespec		 now;
	struct statvfs		 sv;
	uint64_t		 minblocks, minfiles;

	clock_gettime(QUEUE_CLOCK, &now);
	if (roomy && (now.tv_sec - checked.tv_sec) * 1000 +
	    (now.tv_nsec - checked.tv_nsec) / 1000000 < 100)
		return 0;
	checked = now;
	roomy = 0;
	if (fstatvfs(dfd_queue, &sv) == -1 || sv.f_blocks == 0)
		return 0;
	minblocks = (uint64_t)sv.f_blocks * SPOOL_MIN_FREE_PCT / 100;
	minfiles = (uint64_t)sv.f_files * SPOOL_MIN_FREE_PCT / 100;
	if (sv.f_bavail < minblocks || (sv.f_files > 0 &&
	    sv.f_favail < minfiles))
		return 1;
	roomy = sv.f_frsize > 0 && sv.f_bavail - minblocks >
	    (64ULL << 20) / sv.f_frsize && sv.f_favail >= 2 * minfiles;
	return 0;
}

/*
 * The spool is flat: incoming/MSGID while a message is received, then
 * queue/MSGID for the message and queue/EVPID (MSGID followed by eight
 * more hex digits) for each envelope.  No directory per message: a
 * mkdir and an rmdir per message are two more inodes and blocks for
 * every journal commit to write.
 */
void
message_unlink(int dfd, uint32_t msgid)
{
	char	name[9];

	msgid_to_text(msgid, name);
	if (unlinkat(dfd, name, 0) == -1 && errno != ENOENT)
		log_warn("unlink %s", name);
}

struct qmsg *
qmsg_find(uint32_t msgid)
{
	struct qmsg	key;

	key.msgid = msgid;
	return RB_FIND(qmsg_tree, &msgs, &key);
}

/* the envelopes a message held until its commit, and their ids */
void
qmsg_pending_clear(struct qmsg *m)
{
	free(m->pending);
	m->pending = NULL;
	m->npending = m->cappending = 0;
	strset_free(m->pending_ids);
	m->pending_ids = NULL;
}

void
qmsg_free(struct qmsg *m)
{
	RB_REMOVE(qmsg_tree, &msgs, m);
	if (m->fd != -1)
		close(m->fd);
	qmsg_pending_clear(m);
	free(m);
}

static struct qmsg *
qmsg_new(uint32_t msgid, int worker)
{
	struct qmsg	*m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		fatal("calloc");
	m->msgid = msgid;
	m->worker = worker;
	m->fd = -1;
	RB_INSERT(qmsg_tree, &msgs, m);
	return m;
}

/* the envelope files of a commit that failed */
static void
pending_unlink(struct qmsg *m)
{
	char	name[17];
	size_t	i;

	for (i = 0; i < m->npending; i++) {
		evpid_to_text(m->pending[i].id, name);
		if (unlinkat(dfd_queue, name, 0) == -1 && errno != ENOENT)
			log_warn("unlink queue/%s", name);
	}
}

/* everything of a message that did not commit, wherever it got to */
void
message_discard(struct qmsg *m)
{
	pending_unlink(m);
	message_unlink(dfd_incoming, m->msgid);
	message_unlink(dfd_queue, m->msgid);
	qmsg_free(m);
}

/* a new message file in incoming/; NULL on failure */
struct qmsg *
message_create(int worker, int *fdp)
{
	struct qmsg	*m;
	char		 name[9];
	uint32_t	 msgid;
	int		 fd, tries;

	for (tries = 0; tries < 100; tries++) {
		msgid = queue_random();
		if (msgid == 0 || qmsg_find(msgid) != NULL)
			continue;
		msgid_to_text(msgid, name);
		if ((fd = openat(dfd_incoming, name, O_RDWR | O_CREAT |
		    O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1) {
			if (errno == EEXIST)
				continue;
			log_warn("create incoming/%s", name);
			return NULL;
		}
		/* the writer gets a copy; the queue's writes the footer */
		if ((*fdp = dup(fd)) == -1) {
			log_warn("dup");
			close(fd);
			unlinkat(dfd_incoming, name, 0);
			return NULL;
		}
		m = qmsg_new(msgid, worker);
		m->fd = fd;
		return m;
	}
	return NULL;
}

int
write_envelope_at(int dfd, const char *name, const struct envelope *evp,
    int dosync)
{
	char	buf[ENVELOPE_FILE_MAX];
	int	fd, len;

	if ((len = envelope_dump(evp, buf, sizeof(buf))) == -1) {
		log_warnx("envelope %016" PRIx64 " does not serialise",
		    evp->id);
		return -1;
	}
	if ((fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		log_warn("create envelope %s", name);
		return -1;
	}
	if (write(fd, buf, len) != len || (dosync && fsync(fd) == -1)) {
		log_warn("write envelope %s", name);
		close(fd);
		unlinkat(dfd, name, 0);
		return -1;
	}
	return close(fd);
}

struct qenv *
qenv_find(uint64_t evpid)
{
	struct qenv	key;

	key.evp.id = evpid;
	return RB_FIND(qenv_tree, &envs, &key);
}

int
queue_open_message(uint32_t msgid, int64_t *body_size, int64_t *head_size)
{
	struct qmsg	*m;
	char		 name[9];
	int		 fd;

	if ((m = qmsg_find(msgid)) == NULL || !m->committed) {
		errno = ENOENT;
		return -1;
	}
	*body_size = (int64_t)m->body_size;
	*head_size = (int64_t)m->head_size;
	msgid_to_text(msgid, name);
	/*
	 * A delivery's read of a file just written would update its atime
	 * (relatime does once after a write): an inode for the journal to
	 * commit, per message, for nothing.  The queue owns these files.
	 */
	if (platform_o_noatime() != 0 &&
	    ((fd = openat(dfd_queue, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    platform_o_noatime())) != -1 || errno != EPERM))
		return fd;
	fd = openat(dfd_queue, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd;
}

void
qenv_remove(struct qenv *e)
{
	struct qmsg	*m = e->msg;
	char		 name[17];

	/*
	 * An envelope file first, then the message: a message alone is
	 * removed at start-up.  But an envelope that is in its message goes
	 * with it, and a newer copy in a file must outlive it (an envelope
	 * file alone is removed at start-up, the message's copy is not).
	 */
	evpid_to_text(e->evp.id, name);
	if (m->inline_env)
		message_unlink(dfd_queue, m->msgid);
	if (e->onfile && unlinkat(dfd_queue, name, 0) == -1 &&
	    errno != ENOENT)
		log_warn("unlink queue/%s", name);
	qenv_unlist(e);
	RB_REMOVE(qenv_tree, &envs, e);
	free(e);
	if (--m->nenv == 0) {
		if (!m->inline_env)
			message_unlink(dfd_queue, m->msgid);
		qmsg_free(m);
	}
}

/*
 * The envelope as it is now, in queue/EVPID (written aside, synced, then
 * renamed over the old one): a retry, smtpctl hold or release.  A pause
 * stays out of it: it is kept in memory only (smtpctl(8)), and a held
 * envelope must come back after a restart held, not paused as well.
 */
int
qenv_update(struct qenv *e)
{
	struct envelope	stored;
	char		name[17], tmp[24];
	int		rc;

	evpid_to_text(e->evp.id, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	stored = e->evp;
	stored.flags &= ~EF_PAUSED;
	rc = write_envelope_at(dfd_queue, tmp, &stored, 1);
	if (rc == 0 && renameat(dfd_queue, tmp, dfd_queue, name) == -1) {
		log_warn("rename queue/%s", tmp);
		unlinkat(dfd_queue, tmp, 0);
		rc = -1;
	}
	if (rc == 0)
		e->onfile = 1;
	return rc;
}

/* ---- start-up ---- */

static void
move_corrupt(int dfd, const char *name, const char *why)
{
	char	dst[64];

	snprintf(dst, sizeof(dst), "%s.%lld", name, (long long)time(NULL));
	log_warnx("%s %s is corrupt (%s): moved to corrupt/",
	    strlen(name) == 8 ? "message" : "envelope", name, why);
	if (renameat(dfd, name, dfd_corrupt, dst) == -1)
		log_warn("rename %s to corrupt/", name);
}

/* queue_load(): the message an entry belongs to, made if new */
static struct qmsg *
load_qmsg(uint32_t msgid)
{
	struct qmsg	*m;

	if ((m = qmsg_find(msgid)) != NULL)
		return m;
	m = qmsg_new(msgid, -1);
	m->committed = 1;
	return m;
}

/* queue_load(): no queue/.format, so the messages end where their files do */
static int	spool_legacy;

/*
 * queue_load(): a message file.  Its footer gives the message's size and
 * perhaps its envelope (kept in m->pending until every envelope file has
 * been read: a file is newer).  A file without a valid footer was not
 * written by a commit: moved to corrupt/, and its envelopes with it.
 */
static void
load_message(const char *name, uint32_t msgid)
{
	char			 tail[ENVELOPE_FILE_MAX + SPOOL_FOOTER_MAX + 1];
	uint8_t			 want[SPOOL_MAC_LEN];
	struct qmsg		*m = load_qmsg(msgid);
	struct envelope		 evp;
	struct spool_footer	 f;
	struct stat		 st;
	size_t			 tl;
	const char		*why = "cannot read it";
	int			 fd;

	if ((fd = openat(dfd_queue, name, (spool_legacy ? O_RDWR : O_RDONLY) |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 || fstat(fd, &st) == -1)
		goto bad;
	tl = st.st_size < SPOOL_FOOTER_MAX ? (size_t)st.st_size :
	    SPOOL_FOOTER_MAX;
	if (spool_legacy) {
		/*
		 * The whole file is the message: give it its footer, unless
		 * a conversion that was cut short did already.  (Only one
		 * without an envelope or added headers counts: a message's
		 * own text can at worst end itself early, never bring an
		 * envelope.)
		 */
		if (st.st_size >= SPOOL_FOOTER_LEN &&
		    pread(fd, tail, tl, st.st_size - tl) == (ssize_t)tl &&
		    spool_footer_parse(tail, tl, (uint64_t)st.st_size,
		    &f) == 0 && f.envlen == 0 && f.head == 0) {
			spool_footer_mac(spool_key, f.body, 0, "", 0, want);
			if (CRYPTO_memcmp(f.mac, want, sizeof(want)) == 0)
				goto loaded;
		}
		memset(&f, 0, sizeof(f));
		f.body = (uint64_t)st.st_size;
		spool_footer_mac(spool_key, f.body, 0, "", 0, f.mac);
		spool_footer_format(tail, &f);
		if (pwrite(fd, tail, f.len, st.st_size) != (ssize_t)f.len ||
		    fsync(fd) == -1)
			fatal("queue/%s: add footer", name);
	} else {
		why = "no valid footer";
		if (st.st_size < SPOOL_FOOTER_LEN ||
		    pread(fd, tail, tl, st.st_size - tl) != (ssize_t)tl ||
		    spool_footer_parse(tail, tl, (uint64_t)st.st_size,
		    &f) == -1)
			goto bad;
		why = "footer does not verify";
		if (f.envlen > 0 && pread(fd, tail, f.envlen,
		    (off_t)(f.body + f.head)) != (ssize_t)f.envlen)
			goto bad;
		spool_footer_mac(spool_key, f.body, f.head, tail, f.envlen,
		    want);
		if (CRYPTO_memcmp(f.mac, want, sizeof(want)) != 0)
			goto bad;
		why = "invalid envelope";
		if (f.envlen > 0 && (envelope_load(tail, f.envlen, &evp) ==
		    -1 || msgid_of(evp.id) != msgid || (uint32_t)evp.id == 0))
			goto bad;
	}
loaded:
	close(fd);
	m->onspool = 1;
	m->body_size = f.body;
	m->head_size = f.head;
	if (f.envlen > 0) {
		m->inline_env = 1;
		message_add_envelope(m, &evp);
		m->pending[0].id = evp.id;	/* not a new one */
	}
	return;
bad:
	if (fd != -1)
		close(fd);
	m->corrupt = 1;
	move_corrupt(dfd_queue, name, why);
}

static void
load_envelope(const char *name, uint64_t evpid)
{
	char		 buf[ENVELOPE_FILE_MAX];
	struct qenv	*e;
	ssize_t		 n;
	int		 fd;

	if ((fd = openat(dfd_queue, name, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		log_warn("open queue/%s", name);
		return;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if ((e = calloc(1, sizeof(*e))) == NULL)
		fatal("calloc");
	if (n <= 0 || n == (ssize_t)sizeof(buf) ||
	    envelope_load(buf, n, &e->evp) == -1 || e->evp.id != evpid) {
		free(e);
		move_corrupt(dfd_queue, name, "invalid content");
		return;
	}
	e->msg = load_qmsg(msgid_of(evpid));
	e->onfile = 1;
	RB_INSERT(qenv_tree, &envs, e);
	e->msg->nenv++;
}

/* one name in queue/: a message, an envelope or a leftover */
static void
load_entry(const char *name)
{
	size_t		 len = strlen(name);
	uint64_t	 v;
	char		*end;

	if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
		/* an envelope update that was interrupted */
		unlinkat(dfd_queue, name, 0);
		return;
	}
	v = strtoull(name, &end, 16);
	if (*end != '\0' || (len != 8 && len != 16) || v == 0 ||
	    !isxdigit((unsigned char)name[0])) {
		move_corrupt(dfd_queue, name, "unexpected name");
		return;
	}
	if (len == 8)
		load_message(name, (uint32_t)v);
	else if ((uint32_t)v == 0)
		move_corrupt(dfd_queue, name, "bad envelope id");
	else
		load_envelope(name, v);
}

/*
 * queue/.format says every message has a footer.  A spool without it was
 * written before footers existed: queue_load() gives each message one,
 * then writes the marker.  Anything else in it is a spool we do not know.
 */
static int
spool_format_known(void)
{
	char	buf[16];
	ssize_t	n;
	int	fd;

	if ((fd = openat(dfd_queue, SPOOL_FORMAT_FILE, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			fatal("queue/%s", SPOOL_FORMAT_FILE);
		return 0;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != sizeof(SPOOL_FORMAT) - 1 ||
	    memcmp(buf, SPOOL_FORMAT, n) != 0)
		fatalx("queue/%s: a spool format this version does not know",
		    SPOOL_FORMAT_FILE);
	return 1;
}

/*
 * The key of the footers' macs (envelope.h), made at the first start and
 * kept in queue/, which only the queue can read.  It appears whole or
 * not at all (written aside, then renamed): a key file of the wrong
 * size is damage we cannot repair -- a new key would send every queued
 * message to corrupt/ -- so we say so and stop.
 */
static void
spool_key_load(void)
{
	static const char	 tmp[] = SPOOL_KEY_FILE ".tmp";
	ssize_t			 n;
	int			 fd;

	if ((fd = openat(dfd_queue, SPOOL_KEY_FILE, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) != -1) {
		n = read(fd, spool_key, sizeof(spool_key));
		close(fd);
		if (n != sizeof(spool_key))
			fatalx("queue/%s: not %zu bytes; restore it from a "
			    "backup (a new key would make every queued "
			    "message unreadable)", SPOOL_KEY_FILE,
			    sizeof(spool_key));
		return;
	}
	if (errno != ENOENT)
		fatal("queue/%s", SPOOL_KEY_FILE);
	arc4random_buf(spool_key, sizeof(spool_key));
	if ((fd = openat(dfd_queue, tmp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1 ||
	    write(fd, spool_key, sizeof(spool_key)) != sizeof(spool_key) ||
	    fsync(fd) == -1 || close(fd) == -1 ||
	    renameat(dfd_queue, tmp, dfd_queue, SPOOL_KEY_FILE) == -1 ||
	    fsync(dfd_queue) == -1)
		fatal("queue/%s", SPOOL_KEY_FILE);
}

static void
spool_format_write(void)
{
	int	fd;

	if ((fd = openat(dfd_queue, SPOOL_FORMAT_FILE, O_WRONLY | O_CREAT |
	    O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) == -1 ||
	    write(fd, SPOOL_FORMAT, sizeof(SPOOL_FORMAT) - 1) !=
	    sizeof(SPOOL_FORMAT) - 1 || fsync(fd) == -1 || close(fd) == -1 ||
	    fsync(dfd_queue) == -1)
		fatal("queue/%s", SPOOL_FORMAT_FILE);
}

/*
 * Rebuild the schedule from queue/.  An envelope whose message file is
 * not there was written by a commit that never finished (the message is
 * renamed in last), so it was never acknowledged: removed.  A message
 * without envelopes is what a delivery left when it stopped between its
 * two unlinks: removed.  An envelope in its message file counts unless
 * a file of its own, written later, says otherwise.
 */
void
queue_load(void)
{
	struct dirent	*de;
	struct qmsg	*m, *mtmp;
	struct qenv	*e, *etmp;
	DIR		*dir;
	char		 name[17];
	int		 fd, n = 0, held = 0;
	time_t		 now = time(NULL);

	spool_legacy = !spool_format_known();
	spool_key_load();

	/* never acknowledged: the clients still have these */
	if ((fd = dup(dfd_incoming)) == -1 || (dir = fdopendir(fd)) == NULL)
		fatal("incoming/");
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dfd_incoming, de->d_name, 0) == -1)
			log_warn("unlink incoming/%s", de->d_name);
	}
	closedir(dir);

	if ((fd = dup(dfd_queue)) == -1 || (dir = fdopendir(fd)) == NULL)
		fatal("queue/");
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			load_entry(de->d_name);
	closedir(dir);
	if (spool_legacy) {
		spool_format_write();
		spool_legacy = 0;
	}

	RB_FOREACH(m, qmsg_tree, &msgs) {
		if (m->npending == 1 && qenv_find(m->pending[0].id) == NULL) {
			if ((e = calloc(1, sizeof(*e))) == NULL)
				fatal("calloc");
			e->evp = m->pending[0];
			e->msg = m;
			RB_INSERT(qenv_tree, &envs, e);
			m->nenv++;
		}
		qmsg_pending_clear(m);
	}

	RB_FOREACH_SAFE(e, qenv_tree, &envs, etmp) {
		evpid_to_text(e->evp.id, name);
		if (e->msg->corrupt) {
			move_corrupt(dfd_queue, name, "its message is corrupt");
			RB_REMOVE(qenv_tree, &envs, e);
			e->msg->nenv--;
			free(e);
			continue;
		}
		if (e->msg->onspool) {
			/* a held one goes on no list (queue_sched.c) */
			if (e->evp.nexttry > now)
				held += sched_wait(e);
			else
				held += sched_ready(e);
			continue;
		}
		log_info("queue/%s: its message never committed, removed",
		    name);
		unlinkat(dfd_queue, name, 0);
		RB_REMOVE(qenv_tree, &envs, e);
		e->msg->nenv--;
		free(e);
	}
	RB_FOREACH_SAFE(m, qmsg_tree, &msgs, mtmp) {
		if (m->nenv == 0) {
			if (m->onspool)
				message_unlink(dfd_queue, m->msgid);
			qmsg_free(m);
		} else
			n++;
	}
	if (n)
		log_info("%d messages loaded from the spool", n);
	if (held)
		log_info("%d envelopes held (smtpctl release)", held);
}
