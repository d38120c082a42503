/*
 * test_mda.c -- local delivery writers: Maildir, mbox, /file, and path
 * templates.  Every test works in its own mkdtemp(3) directory.
 */
/* nftw(3) is XSI: glibc shows it only for _XOPEN_SOURCE */
#define _XOPEN_SOURCE	700

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "mda.h"

#define NOBODY_UID	65534
#define NOBODY_GID	65534

static char	tdir[PATH_MAX];
static int	spool_seq;

/*
 * Helpers.
 */

static void
path_in(char *buf, size_t len, const char *name)
{
	int	n;

	n = snprintf(buf, len, "%s/%s", tdir, name);
	assert_true(n > 0 && (size_t)n < len);
}

static void
put_file(const char *path, const char *data, size_t len)
{
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static char *
slurp(const char *path, size_t *lenp)
{
	struct stat	 st;
	char		*buf;
	int		 fd;

	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	assert_int_equal(close(fd), 0);
	*lenp = (size_t)st.st_size;
	return buf;
}

/* A spool message: an unlinked file opened read-only, as the queue has. */
static int
spool(const char *data, size_t len)
{
	char	path[PATH_MAX], name[32];
	int	fd;

	static const char	 tail[] = "#posthaste-spool trailer: no reader "
				    "may deliver this\n";
	char			*buf;

	/* as in the queue: the file goes on after the message */
	(void)snprintf(name, sizeof(name), "spool.%d", spool_seq++);
	path_in(path, sizeof(path), name);
	assert_non_null(buf = malloc(len + sizeof(tail)));
	memcpy(buf, data, len);
	memcpy(buf + len, tail, sizeof(tail) - 1);
	put_file(path, buf, len + sizeof(tail) - 1);
	free(buf);
	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	assert_int_equal(unlink(path), 0);
	return fd;
}

static int
count_entries(const char *dir, const char *prefix)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (prefix == NULL ||
		    strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	}
	assert_int_equal(closedir(d), 0);
	return n;
}

/* "Return-Path: <s>\nDelivered-To: r\n" + msg, optionally fixed to end in \n */
static char *
expected_body(const char *sender, const char *rcpt, const char *msg,
    size_t msglen, int fixnl, size_t *lenp)
{
	char	*buf;
	size_t	 hl, cap;

	cap = strlen(sender) + strlen(rcpt) + msglen + 64;
	buf = malloc(cap);
	assert_non_null(buf);
	hl = (size_t)snprintf(buf, cap, "Return-Path: <%s>\nDelivered-To: %s\n",
	    sender, rcpt);
	memcpy(buf + hl, msg, msglen);
	*lenp = hl + msglen;
	if (fixnl && (msglen == 0 || msg[msglen - 1] != '\n'))
		buf[(*lenp)++] = '\n';
	buf[*lenp] = '\0';
	return buf;
}

/* Reference mboxrd quoting, one whole line at a time. */
static char *
ref_quote(const char *s, size_t len, size_t *outlen)
{
	char		*out;
	const char	*line, *end = s + len, *nl, *p;
	size_t		 o = 0;

	out = malloc(len * 2 + 2);
	assert_non_null(out);
	for (line = s; line < end; line = nl) {
		nl = memchr(line, '\n', (size_t)(end - line));
		nl = nl != NULL ? nl + 1 : end;
		for (p = line; p < nl && *p == '>'; p++)
			;
		if ((size_t)(nl - p) >= 5 && memcmp(p, "From ", 5) == 0)
			out[o++] = '>';
		memcpy(out + o, line, (size_t)(nl - line));
		o += (size_t)(nl - line);
	}
	*outlen = o;
	return out;
}

/*
 * Read an mboxrd file back: a message starts at every line beginning
 * "From " (inside a message such lines are quoted), ends before the
 * empty separator line, and loses one '>' on every ^>+From  line.
 */
struct parsed {
	char	*from;		/* the From_ line, without "\n" */
	char	*body;		/* unquoted */
	size_t	 len;
};

static int
parse_mbox(const char *data, size_t len, struct parsed *out, int max)
{
	const char	*p = data, *end = data + len, *nl, *q, *line;
	int		 n = 0;

	while (p < end) {
		assert_true(n < max);
		assert_true(end - p >= 5 && memcmp(p, "From ", 5) == 0);
		nl = memchr(p, '\n', (size_t)(end - p));
		assert_non_null(nl);
		out[n].from = strndup(p, (size_t)(nl - p));
		out[n].body = malloc((size_t)(end - p) + 1);
		assert_non_null(out[n].body);
		out[n].len = 0;
		for (line = nl + 1;; line = nl) {
			/* the separator: an empty line before a From_ or EOF */
			if (line < end && line[0] == '\n' &&
			    (line + 1 == end || (end - line - 1 >= 5 &&
			    memcmp(line + 1, "From ", 5) == 0))) {
				p = line + 1;
				break;
			}
			assert_true(line < end);	/* no separator */
			nl = memchr(line, '\n', (size_t)(end - line));
			assert_non_null(nl);	/* unterminated last line */
			nl++;
			for (q = line; q < nl && *q == '>'; q++)
				;
			if (q > line && nl - q >= 5 &&
			    memcmp(q, "From ", 5) == 0)
				line++;
			memcpy(out[n].body + out[n].len, line,
			    (size_t)(nl - line));
			out[n].len += (size_t)(nl - line);
		}
		n++;
	}
	return n;
}

static void
parsed_free(struct parsed *pm, int n)
{
	int	i;

	for (i = 0; i < n; i++) {
		free(pm[i].from);
		free(pm[i].body);
	}
}

static void
assert_from_line(const char *line, const char *sender)
{
	regex_t	re;
	char	pat[512];

	(void)snprintf(pat, sizeof(pat), "^From %s "
	    "(Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
	    "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
	    "[ 123][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4}$", sender);
	assert_int_equal(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, line, 0, NULL, 0) != 0)
		fail_msg("bad From_ line: \"%s\"", line);
	regfree(&re);
}

static double
now_sec(void)
{
	struct timespec	ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
deliver_mbox_str(const char *path, const char *sender, const char *rcpt,
    const char *msg, char *err, size_t errlen)
{
	struct mda_message	m;
	int			rc;

	memset(&m, 0, sizeof(m));
	m.file.fd = spool(msg, strlen(msg));
	m.file.body = (int64_t)(strlen(msg));
	m.sender = sender;
	m.rcpt = rcpt;
	m.hostname = "mx.example";
	rc = mda_mbox_deliver(path, &m, err, errlen);
	assert_int_equal(close(m.file.fd), 0);
	return rc;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static int
setup(void **state)
{
	const char	*tmp = getenv("TMPDIR");

	(void)state;
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	(void)snprintf(tdir, sizeof(tdir), "%s/test_mda.XXXXXX", tmp);
	if (mkdtemp(tdir) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	(void)chmod(tdir, 0700);
	return nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Maildir.
 */

static void
test_maildir_deliver(void **state)
{
	static const char *const msgs[] = {
		"Subject: one\n\nbody one\n",
		"Subject: two\n\nFrom here on nothing is quoted\n",
		"Subject: three\n\nno final newline",
		"\n",	/* never empty: the spool's starts with Received: */
	};
	char		 md[PATH_MAX], sub[PATH_MAX], err[256], *data, *exp;
	char		 seen[4] = { 0 };
	regex_t		 re;
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	struct mda_message m;
	size_t		 len, elen, i;
	long		 sz;
	const char	*s;

	(void)state;
	memset(&m, 0, sizeof(m));
	/* nested, missing, with a trailing slash: mkdir -p */
	path_in(md, sizeof(md), "home/u/Maildir/");
	m.sender = "alice@example.org";
	m.rcpt = "bob@example.net";
	m.hostname = "mx/a:b.example";
	for (i = 0; i < 4; i++) {
		m.file.fd = spool(msgs[i], strlen(msgs[i]));
		m.file.body = (int64_t)(strlen(msgs[i]));
		err[0] = '\0';
		assert_int_equal(mda_maildir_deliver(md, &m, err,
		    sizeof(err)), MDA_OK);
		assert_int_equal(close(m.file.fd), 0);
	}

	path_in(sub, sizeof(sub), "home/u/Maildir/tmp");
	assert_int_equal(count_entries(sub, NULL), 0);
	path_in(sub, sizeof(sub), "home/u/Maildir/cur");
	assert_int_equal(count_entries(sub, NULL), 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	path_in(sub, sizeof(sub), "home/u");
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	path_in(sub, sizeof(sub), "home/u/Maildir/new");
	assert_int_equal(count_entries(sub, NULL), 4);

	/* '/' and ':' in the host name are written \057 and \072 */
	assert_int_equal(regcomp(&re, "^[0-9]+\\.M[0-9]{6}P[0-9]+Q[0-9]+\\."
	    "mx\\\\057a\\\\072b\\.example,S=[0-9]+$", REG_EXTENDED | REG_NOSUB),
	    0);
	d = opendir(sub);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char	file[PATH_MAX * 2];

		if (de->d_name[0] == '.')
			continue;
		if (regexec(&re, de->d_name, 0, NULL, 0) != 0)
			fail_msg("bad Maildir name \"%s\"", de->d_name);
		(void)snprintf(file, sizeof(file), "%s/%s", sub, de->d_name);
		assert_int_equal(lstat(file, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0600);
		data = slurp(file, &len);
		s = strstr(de->d_name, ",S=");
		assert_non_null(s);
		sz = strtol(s + 3, NULL, 10);
		assert_int_equal(sz, (long)len);
		/* which message is it?  Each must appear exactly once. */
		for (i = 0; i < 4; i++) {
			exp = expected_body(m.sender, m.rcpt, msgs[i],
			    strlen(msgs[i]), 0, &elen);
			if (elen == len && memcmp(exp, data, len) == 0) {
				assert_int_equal(seen[i], 0);
				seen[i] = 1;
			}
			free(exp);
		}
		free(data);
	}
	assert_int_equal(closedir(d), 0);
	regfree(&re);
	for (i = 0; i < 4; i++)
		assert_int_equal(seen[i], 1);
}

static void
test_maildir_large_null_sender(void **state)
{
	char		 md[PATH_MAX], sub[PATH_MAX], file[PATH_MAX * 2];
	char		 err[256], *msg, *data, *exp;
	DIR		*d;
	struct dirent	*de;
	struct mda_message m;
	size_t		 len, elen, i, n = 3 * 65536 + 12345;

	(void)state;
	memset(&m, 0, sizeof(m));
	msg = malloc(n);
	assert_non_null(msg);
	for (i = 0; i < n; i++)
		msg[i] = (i % 73 == 72) ? '\n' : (char)('a' + i % 26);
	path_in(md, sizeof(md), "Maildir");
	m.file.fd = spool(msg, n);
	m.file.body = (int64_t)(n);
	m.sender = "";
	m.rcpt = "bob@example.net";
	m.hostname = NULL;	/* falls back to gethostname() */
	assert_int_equal(mda_maildir_deliver(md, &m, err, sizeof(err)),
	    MDA_OK);
	assert_int_equal(close(m.file.fd), 0);

	path_in(sub, sizeof(sub), "Maildir/new");
	d = opendir(sub);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			break;
	assert_non_null(de);
	(void)snprintf(file, sizeof(file), "%s/%s", sub, de->d_name);
	assert_int_equal(closedir(d), 0);
	data = slurp(file, &len);
	exp = expected_body("", m.rcpt, msg, n, 0, &elen);
	assert_true(strncmp(data, "Return-Path: <>\n", 16) == 0);
	assert_int_equal(len, elen);
	assert_memory_equal(data, exp, len);
	free(exp);
	free(data);
	free(msg);
}

static void
test_maildir_not_a_directory(void **state)
{
	char			md[PATH_MAX], err[256];
	struct mda_message	m;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.sender = "a@b";
	m.rcpt = "c@d";
	m.hostname = "h";
	m.file.fd = spool("x\n", 2);
	m.file.body = (int64_t)(2);

	/* the Maildir path is a file */
	path_in(md, sizeof(md), "file");
	put_file(md, "x", 1);
	assert_int_equal(mda_maildir_deliver(md, &m, err, sizeof(err)),
	    MDA_PERMFAIL);
	assert_true(strncmp(err, "5.2.0 ", 6) == 0);

	/* a component above it is a file */
	path_in(md, sizeof(md), "file/Maildir");
	assert_int_equal(mda_maildir_deliver(md, &m, err, sizeof(err)),
	    MDA_PERMFAIL);
	assert_true(strncmp(err, "5.2.0 ", 6) == 0);

	/* tmp/ is a file */
	path_in(md, sizeof(md), "md");
	assert_int_equal(mkdir(md, 0700), 0);
	path_in(md, sizeof(md), "md/tmp");
	put_file(md, "x", 1);
	path_in(md, sizeof(md), "md");
	assert_int_equal(mda_maildir_deliver(md, &m, err, sizeof(err)),
	    MDA_PERMFAIL);
	assert_true(strncmp(err, "5.2.0 ", 6) == 0);
	assert_int_equal(close(m.file.fd), 0);
}

static void
test_maildir_repair_and_errors(void **state)
{
	char			md[PATH_MAX], sub[PATH_MAX], err[256];
	struct mda_message	m;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.sender = "a@b";
	m.rcpt = "c@d";
	m.hostname = "h";

	/* only tmp/ exists: new/ and cur/ are created on the way */
	path_in(md, sizeof(md), "md");
	assert_int_equal(mkdir(md, 0700), 0);
	path_in(sub, sizeof(sub), "md/tmp");
	assert_int_equal(mkdir(sub, 0700), 0);
	m.file.fd = spool("x\n", 2);
	m.file.body = (int64_t)(2);
	assert_int_equal(mda_maildir_deliver(md, &m, err, sizeof(err)),
	    MDA_OK);
	assert_int_equal(close(m.file.fd), 0);
	path_in(sub, sizeof(sub), "md/new");
	assert_int_equal(count_entries(sub, NULL), 1);
	path_in(sub, sizeof(sub), "md/cur");
	assert_int_equal(count_entries(sub, NULL), 0);

	/* an unreadable spool file: temporary, and nothing left behind */
	m.file.fd = -1;
	assert_int_equal(mda_maildir_deliver(md, &m, err, sizeof(err)),
	    MDA_TEMPFAIL);
	assert_true(strncmp(err, "4.3.0 maildir: ", 15) == 0);
	path_in(sub, sizeof(sub), "md/tmp");
	assert_int_equal(count_entries(sub, NULL), 0);
	path_in(sub, sizeof(sub), "md/new");
	assert_int_equal(count_entries(sub, NULL), 1);

	/* header injection through the envelope is refused */
	m.file.fd = spool("x\n", 2);
	m.file.body = (int64_t)(2);
	m.sender = "a@b>\nX-Evil: 1";
	assert_int_equal(mda_maildir_deliver(md, &m, err, sizeof(err)),
	    MDA_PERMFAIL);
	m.sender = "a@b";
	m.rcpt = "c@d\r\nX-Evil: 1";
	assert_int_equal(mda_maildir_deliver(md, &m, err, sizeof(err)),
	    MDA_PERMFAIL);
	assert_int_equal(close(m.file.fd), 0);
	assert_int_equal(count_entries(sub, NULL), 1);
}

/* descriptors this process has open */
static int
open_fds(void)
{
	return count_entries("/proc/self/fd", NULL);
}

/*
 * The batch API as the delivery process drives it: deliveries begun into
 * one Maildir in one batch share a descriptor; a file is in new/ only
 * after _finish and out of tmp/ only then; _abort removes whichever of the
 * two it left; and the next batch opens the path again, so a Maildir
 * replaced between batches gets the next batch's mail.
 */
static void
test_maildir_batch(void **state)
{
	char			 md[PATH_MAX], old[PATH_MAX], sub[PATH_MAX];
	char			 err[256];
	struct mda_maildir_pending p[5];
	struct mda_message	 m;
	int			 fds, i;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.sender = "a@b";
	m.rcpt = "c@d";
	m.hostname = "h";
	m.file.fd = spool("x\n", 2);
	m.file.body = (int64_t)(2);
	path_in(md, sizeof(md), "Maildir");
	fds = open_fds();

	/* batch 1: three into one Maildir, which is created on the way */
	mda_maildir_next_batch();
	for (i = 0; i < 3; i++)
		assert_int_equal(mda_maildir_begin(md, &m, &p[i], err,
		    sizeof(err)), MDA_OK);
	assert_int_equal(open_fds(), fds + 1);
	path_in(sub, sizeof(sub), "Maildir/tmp");
	assert_int_equal(count_entries(sub, NULL), 3);
	path_in(sub, sizeof(sub), "Maildir/new");
	assert_int_equal(count_entries(sub, NULL), 0);
	assert_int_equal(mda_maildir_sync(), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(mda_maildir_finish(&p[i], err, sizeof(err)),
		    MDA_OK);
	assert_int_equal(count_entries(sub, NULL), 3);

	/*
	 * batch 2, begun while batch 1 waits for its sync: the Maildir is
	 * opened again, and it is another one now
	 */
	path_in(old, sizeof(old), "Maildir.old");
	assert_int_equal(rename(md, old), 0);
	mda_maildir_next_batch();
	for (i = 3; i < 5; i++)
		assert_int_equal(mda_maildir_begin(md, &m, &p[i], err,
		    sizeof(err)), MDA_OK);
	assert_int_equal(open_fds(), fds + 2);
	assert_int_equal(mda_maildir_sync(), 0);
	for (i = 0; i < 3; i++)
		mda_maildir_release(&p[i]);
	assert_int_equal(open_fds(), fds + 1);
	path_in(sub, sizeof(sub), "Maildir.old/new");
	assert_int_equal(count_entries(sub, NULL), 3);

	/* one of batch 2 fails before its rename, one after */
	mda_maildir_abort(&p[3]);
	assert_int_equal(mda_maildir_finish(&p[4], err, sizeof(err)), MDA_OK);
	path_in(sub, sizeof(sub), "Maildir/new");
	assert_int_equal(count_entries(sub, NULL), 1);
	mda_maildir_abort(&p[4]);
	assert_int_equal(count_entries(sub, NULL), 0);
	path_in(sub, sizeof(sub), "Maildir/tmp");
	assert_int_equal(count_entries(sub, NULL), 0);
	assert_int_equal(open_fds(), fds);

	/* nothing open: nothing to sync */
	assert_int_equal(mda_maildir_sync(), 0);
	assert_int_equal(close(m.file.fd), 0);
}

/* The one file in DIR/new. */
static char *
slurp_only_new(const char *dir, size_t *lenp)
{
	char		 sub[PATH_MAX + 8], file[PATH_MAX * 2];
	DIR		*d;
	struct dirent	*de;

	(void)snprintf(sub, sizeof(sub), "%s/new", dir);
	assert_int_equal(count_entries(sub, NULL), 1);
	d = opendir(sub);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL && de->d_name[0] == '.')
		;
	assert_non_null(de);
	(void)snprintf(file, sizeof(file), "%s/%s", sub, de->d_name);
	assert_int_equal(closedir(d), 0);
	return slurp(file, lenp);
}

/*
 * What the caller read already (the head) and what the writer reads on
 * from there make the message, wherever the cut falls: inside a "From "
 * that mboxrd quoting must see whole, at a buffer's edge, at the end.
 */
static void
test_head_then_rest(void **state)
{
	static const char small[] =
	    "Subject: s\n\nFrom here\n>From there\nFrom";
	static const size_t big_cuts[] = { 65535, 65536, 150000, 200000 };
	char		 path[PATH_MAX], name[64], err[256], *big;
	char		*data, *q, *exp;
	const char	*msg;
	struct mda_message m;
	size_t		 n, cut, len, qlen, elen, i, ncuts;
	int		 round;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.sender = "a@b";
	m.rcpt = "c@d";
	m.hostname = "h";
	big = malloc(200000);
	assert_non_null(big);
	for (i = 0; i < 200000; i++)
		big[i] = i % 61 == 60 ? '\n' : "From >x"[i % 7];
	for (round = 0; round < 2; round++) {
		msg = round == 0 ? small : big;
		n = round == 0 ? strlen(small) : 200000;
		ncuts = round == 0 ? n + 1 : 4;
		for (i = 0; i < ncuts; i++) {
			cut = round == 0 ? i : big_cuts[i];
			m.file.fd = spool(msg, n);
			m.file.body = (int64_t)(n);
			m.head = msg;
			m.headlen = cut;

			(void)snprintf(name, sizeof(name), "md.%d.%zu", round,
			    cut);
			path_in(path, sizeof(path), name);
			assert_int_equal(mda_maildir_deliver(path, &m, err,
			    sizeof(err)), MDA_OK);
			data = slurp_only_new(path, &len);
			exp = expected_body(m.sender, m.rcpt, msg, n, 0, &elen);
			assert_int_equal(len, elen);
			assert_memory_equal(data, exp, len);
			free(exp);
			free(data);

			(void)snprintf(name, sizeof(name), "mbox.%d.%zu",
			    round, cut);
			path_in(path, sizeof(path), name);
			assert_int_equal(mda_mbox_deliver(path, &m, err,
			    sizeof(err)), MDA_OK);
			data = slurp(path, &len);
			q = ref_quote(msg, n, &qlen);
			exp = expected_body(m.sender, m.rcpt, q, qlen, 1, &elen);
			assert_true(len > elen + 1);
			assert_memory_equal(data + len - elen - 1, exp, elen);
			free(exp);
			free(q);
			free(data);
			assert_int_equal(close(m.file.fd), 0);
		}
	}
	free(big);
}

/*
 * mbox.
 */

static void
test_mbox_deliver(void **state)
{
	static const char msg1[] =
	    "Subject: cheese\n"
	    "\n"
	    "From the cellar:\n"
	    "From \n"
	    ">From a quoted line\n"
	    ">>From a doubly quoted line\n"
	    "Fromage is not quoted\n"
	    "From\tneither is a tab\n"
	    " From not at the start\n"
	    ">>>Fromage\n"
	    ">\n"
	    "\n"
	    "From the end, without a newline";
	static const char msg1_quoted[] =
	    "Subject: cheese\n"
	    "\n"
	    ">From the cellar:\n"
	    ">From \n"
	    ">>From a quoted line\n"
	    ">>>From a doubly quoted line\n"
	    "Fromage is not quoted\n"
	    "From\tneither is a tab\n"
	    " From not at the start\n"
	    ">>>Fromage\n"
	    ">\n"
	    "\n"
	    ">From the end, without a newline\n";
	static const char msg2[] = "Subject: second\n\nFrom line two\n\n";
	char		 mbox[PATH_MAX], err[256], *data, *exp;
	struct parsed	 pm[4];
	struct stat	 st;
	const char	*nl;
	size_t		 len, elen, flen;
	int		 n;

	(void)state;
	path_in(mbox, sizeof(mbox), "mbox");
	assert_int_equal(deliver_mbox_str(mbox, "alice@example.org",
	    "bob@example.net", msg1, err, sizeof(err)), MDA_OK);
	assert_int_equal(stat(mbox, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* byte for byte: From_ line, trace headers, quoted body, blank */
	data = slurp(mbox, &len);
	nl = strchr(data, '\n');
	assert_non_null(nl);
	flen = (size_t)(nl - data);
	{
		char	*from = strndup(data, flen);

		assert_from_line(from, "alice@example\\.org");
		free(from);
	}
	exp = expected_body("alice@example.org", "bob@example.net",
	    msg1_quoted, strlen(msg1_quoted), 0, &elen);
	assert_int_equal(len, flen + 1 + elen + 1);
	assert_memory_equal(nl + 1, exp, elen);
	assert_int_equal(data[len - 1], '\n');
	free(exp);
	free(data);

	/* a second message, from the null sender */
	assert_int_equal(deliver_mbox_str(mbox, "", "carol@example.net", msg2,
	    err, sizeof(err)), MDA_OK);
	data = slurp(mbox, &len);
	n = parse_mbox(data, len, pm, 4);
	assert_int_equal(n, 2);
	assert_from_line(pm[0].from, "alice@example\\.org");
	assert_from_line(pm[1].from, "MAILER-DAEMON");
	exp = expected_body("alice@example.org", "bob@example.net", msg1,
	    strlen(msg1), 1, &elen);
	assert_int_equal(pm[0].len, elen);
	assert_memory_equal(pm[0].body, exp, elen);
	free(exp);
	exp = expected_body("", "carol@example.net", msg2, strlen(msg2), 1,
	    &elen);
	assert_int_equal(pm[1].len, elen);
	assert_memory_equal(pm[1].body, exp, elen);
	free(exp);
	parsed_free(pm, n);
	free(data);

	/* no lock or temporary file left next to the mailbox */
	assert_int_equal(count_entries(tdir, "mbox."), 0);
}

/* A message that ends in the middle of a possible ">>From " */
static void
test_mbox_partial_prefix_at_eof(void **state)
{
	static const char *const ends[] = { ">>Fr", ">", "From", "F" };
	char		 mbox[PATH_MAX], err[256], msg[64], *data;
	size_t		 len, i;

	(void)state;
	path_in(mbox, sizeof(mbox), "mbox");
	for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		(void)snprintf(msg, sizeof(msg), "S: x\n\n%s", ends[i]);
		assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", msg, err,
		    sizeof(err)), MDA_OK);
		data = slurp(mbox, &len);
		(void)snprintf(msg, sizeof(msg), "\nS: x\n\n%s\n\n", ends[i]);
		assert_true(len > strlen(msg));
		assert_string_equal(data + len - strlen(msg), msg);
		free(data);
	}
}

/* A sender with a space (quoted local part) keeps the From_ line parseable. */
static void
test_mbox_from_line_space(void **state)
{
	char		 mbox[PATH_MAX], err[256], *data;
	size_t		 len;

	(void)state;
	path_in(mbox, sizeof(mbox), "mbox");
	assert_int_equal(deliver_mbox_str(mbox, "\"a b\"@example.org",
	    "c@d", "x\n", err, sizeof(err)), MDA_OK);
	data = slurp(mbox, &len);
	assert_true(strncmp(data, "From \"a_b\"@example.org ", 23) == 0);
	assert_non_null(strstr(data, "\nReturn-Path: <\"a b\"@example.org>\n"));
	free(data);
}

/*
 * Quoting across the 64 KB buffer boundary: a ">>>>From " line placed at
 * every offset around it, plus random lines dense in near-misses.
 */
static void
test_mbox_quoting_boundaries(void **state)
{
	static const char *const pieces[] = {
		"From x\n", ">From y\n", ">>>From z\n", "Fromage\n", "From\n",
		">\n", ">>\n", "\n", "Fro\n", ">F\n", "text From \n",
		"plain words here\n", ">>>>>>>>>>>>>>From deep\n", "From ",
		">", "F", "\n",
	};
	char		 mbox[PATH_MAX], err[256], *msg, *data, *q, *exp;
	struct mda_message m;
	struct parsed	 pm[16];
	uint32_t	 rnd = 12345;
	size_t		 n, len, qlen, elen, k, cap = 300000;
	int		 i, np;

	(void)state;
	memset(&m, 0, sizeof(m));
	path_in(mbox, sizeof(mbox), "mbox");
	msg = malloc(cap + 64);
	assert_non_null(msg);
	m.sender = "a@b";
	m.rcpt = "c@d";
	m.hostname = "h";
	for (i = 0; i < 12; i++) {
		n = 0;
		if (i < 11) {
			/* fill to just before 65536 - i, then the From line */
			for (; n < 65536 - (size_t)i - 10; n++)
				msg[n] = (n % 50 == 49) ? '\n' : 'x';
			msg[n - 1] = '\n';
			while (n < 65536 - (size_t)i)
				msg[n++] = 'y';
			msg[n - 1] = '\n';
			memcpy(msg + n, ">>>>From boundary\nFrom ", 23);
			n += 23;
		}
		while (n < (i < 11 ? 70000 : cap)) {
			rnd ^= rnd << 13;
			rnd ^= rnd >> 17;
			rnd ^= rnd << 5;
			k = rnd % (sizeof(pieces) / sizeof(pieces[0]));
			memcpy(msg + n, pieces[k], strlen(pieces[k]));
			n += strlen(pieces[k]);
		}
		m.file.fd = spool(msg, n);
		m.file.body = (int64_t)(n);
		assert_int_equal(mda_mbox_deliver(mbox, &m, err, sizeof(err)),
		    MDA_OK);
		assert_int_equal(close(m.file.fd), 0);

		/* the raw bytes match the reference quoting */
		data = slurp(mbox, &len);
		q = ref_quote(msg, n, &qlen);
		exp = expected_body(m.sender, m.rcpt, q, qlen, 1, &elen);
		assert_true(len > elen + 1);
		assert_memory_equal(data + len - elen - 1, exp, elen);
		assert_int_equal(data[len - 1], '\n');
		free(exp);
		free(q);

		/* and reading back undoes it exactly */
		np = parse_mbox(data, len, pm, 16);
		assert_int_equal(np, i + 1);
		exp = expected_body(m.sender, m.rcpt, msg, n, 1, &elen);
		assert_int_equal(pm[i].len, elen);
		assert_memory_equal(pm[i].body, exp, elen);
		free(exp);
		parsed_free(pm, np);
		free(data);
	}
	free(msg);
}

static void
test_mbox_refuses_links(void **state)
{
	char		 mbox[PATH_MAX], target[PATH_MAX], err[256], *data;
	size_t		 len;

	(void)state;
	path_in(target, sizeof(target), "target");
	put_file(target, "precious\n", 9);

	/* a symlink planted under the mailbox name */
	path_in(mbox, sizeof(mbox), "mbox");
	assert_int_equal(symlink(target, mbox), 0);
	assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", "x\n", err,
	    sizeof(err)), MDA_PERMFAIL);
	assert_true(strncmp(err, "5.2.0 mbox: unsafe file", 23) == 0);
	assert_int_equal(unlink(mbox), 0);

	/* a hard link to somebody's file */
	assert_int_equal(link(target, mbox), 0);
	assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", "x\n", err,
	    sizeof(err)), MDA_PERMFAIL);
	assert_true(strncmp(err, "5.2.0 mbox: unsafe file", 23) == 0);
	assert_int_equal(unlink(mbox), 0);

	/* a FIFO: refused without hanging */
	assert_int_equal(mkfifo(mbox, 0600), 0);
	assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", "x\n", err,
	    sizeof(err)), MDA_PERMFAIL);
	assert_true(strncmp(err, "5.2.0 mbox: unsafe file", 23) == 0);
	assert_int_equal(unlink(mbox), 0);

	/* a directory */
	assert_int_equal(mkdir(mbox, 0700), 0);
	assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", "x\n", err,
	    sizeof(err)), MDA_PERMFAIL);
	assert_int_equal(rmdir(mbox), 0);

	/* somebody else's file (needs root to arrange) */
	if (geteuid() == 0) {
		put_file(mbox, "", 0);
		assert_int_equal(chown(mbox, NOBODY_UID, NOBODY_GID), 0);
		assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", "x\n",
		    err, sizeof(err)), MDA_PERMFAIL);
		assert_true(strncmp(err, "5.2.0 mbox: unsafe file", 23) == 0);
		assert_int_equal(unlink(mbox), 0);
	}

	data = slurp(target, &len);
	assert_int_equal(len, 9);
	assert_memory_equal(data, "precious\n", 9);
	free(data);
	assert_int_equal(count_entries(tdir, "mbox."), 0);
}

/*
 * A write that fails half-way (a file size limit with SIGXFSZ ignored,
 * as the delivery process runs) leaves the mailbox exactly as it was.
 */
static void
test_mbox_rollback(void **state)
{
	char		 mbox[PATH_MAX], err[256], *before, *after, *big;
	struct mda_message m;
	struct rlimit	 rl;
	struct stat	 st;
	size_t		 blen, alen, n = 200000;
	pid_t		 pid;
	int		 status;

	(void)state;
	memset(&m, 0, sizeof(m));
	path_in(mbox, sizeof(mbox), "mbox");
	assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d",
	    "Subject: first\n\nhello\n", err, sizeof(err)), MDA_OK);
	before = slurp(mbox, &blen);
	assert_int_equal(stat(mbox, &st), 0);

	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'z', n);
	big[n - 1] = '\n';
	big[n] = '\0';

	/* the spool file is written before the limit is lowered */
	m.file.fd = spool(big, n);
	m.file.body = (int64_t)(n);
	m.sender = "a@b";
	m.rcpt = "c@d";
	m.hostname = "h";
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		int	rc;

		if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR ||
		    getrlimit(RLIMIT_FSIZE, &rl) == -1)
			_exit(2);
		rl.rlim_cur = (rlim_t)st.st_size + 1000;
		if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
			_exit(3);
		rc = mda_mbox_deliver(mbox, &m, err, sizeof(err));
		if (rc != MDA_TEMPFAIL)
			_exit(4);
		if (strncmp(err, "4.2.2 mbox: write: ", 19) != 0 ||
		    strstr(err, "rollback failed") != NULL)
			_exit(5);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(close(m.file.fd), 0);

	after = slurp(mbox, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	assert_int_equal(count_entries(tdir, "mbox."), 0);
	free(after);

	/* a spool file that cannot be read: the mailbox is untouched */
	{
		int	p[2];

		assert_int_equal(pipe(p), 0);
		m.file.fd = p[0];	/* pread(2) on a pipe: ESPIPE */
		m.file.body = 1;
		m.sender = "a@b";
		m.rcpt = "c@d";
		m.hostname = "h";
		assert_int_equal(mda_mbox_deliver(mbox, &m, err, sizeof(err)),
		    MDA_TEMPFAIL);
		assert_true(strncmp(err, "4.3.0 mbox: ", 12) == 0);
		assert_int_equal(close(p[0]), 0);
		assert_int_equal(close(p[1]), 0);
	}
	after = slurp(mbox, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(after);
	free(before);
	free(big);
}

static void
test_mbox_stale_dotlock(void **state)
{
	char		 mbox[PATH_MAX], lock[PATH_MAX], err[256];
	struct timeval	 tv[2];
	struct stat	 st;
	double		 t0;

	(void)state;
	path_in(mbox, sizeof(mbox), "mbox");
	path_in(lock, sizeof(lock), "mbox.lock");
	put_file(lock, "99999\n", 6);
	assert_int_equal(gettimeofday(&tv[0], NULL), 0);
	tv[0].tv_sec -= 600;
	tv[1] = tv[0];
	assert_int_equal(utimes(lock, tv), 0);

	t0 = now_sec();
	assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", "x\n", err,
	    sizeof(err)), MDA_OK);
	assert_true(now_sec() - t0 < 5.0);
	assert_int_equal(lstat(lock, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(count_entries(tdir, "mbox."), 0);
}

/* A fresh dotlock is waited for, and taken when its holder lets go. */
static void
test_mbox_dotlock_wait(void **state)
{
	char		 mbox[PATH_MAX], lock[PATH_MAX], err[256];
	struct timespec	 ts = { 0, 500 * 1000000L };
	struct stat	 st;
	double		 t0, dt;
	pid_t		 pid;
	int		 status;

	(void)state;
	path_in(mbox, sizeof(mbox), "mbox");
	path_in(lock, sizeof(lock), "mbox.lock");
	put_file(lock, "1\n", 2);
	t0 = now_sec();
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		(void)nanosleep(&ts, NULL);
		_exit(unlink(lock) == 0 ? 0 : 1);
	}
	assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", "x\n", err,
	    sizeof(err)), MDA_OK);
	dt = now_sec() - t0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(dt >= 0.45);
	assert_true(dt < 5.0);
	assert_int_equal(lstat(lock, &st), -1);
	assert_int_equal(count_entries(tdir, "mbox."), 0);
}

/* An fcntl lock held by a mail reader is waited for. */
static void
test_mbox_fcntl_wait(void **state)
{
	char		 mbox[PATH_MAX], err[256], c;
	struct timespec	 ts = { 0, 500 * 1000000L };
	struct flock	 fl;
	double		 t0, dt;
	pid_t		 pid;
	int		 p[2], status, fd;

	(void)state;
	path_in(mbox, sizeof(mbox), "mbox");
	put_file(mbox, "", 0);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if ((fd = open(mbox, O_RDWR)) == -1 ||
		    fcntl(fd, F_SETLKW, &fl) == -1 ||
		    write(p[1], "L", 1) != 1)
			_exit(1);
		(void)nanosleep(&ts, NULL);
		_exit(0);	/* exit releases the lock */
	}
	assert_int_equal(close(p[1]), 0);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(close(p[0]), 0);
	t0 = now_sec();
	assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", "x\n", err,
	    sizeof(err)), MDA_OK);
	dt = now_sec() - t0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(dt >= 0.3);
	assert_true(dt < 5.0);
	assert_int_equal(count_entries(tdir, "mbox."), 0);
}

/*
 * A mail reader that rewrites the mailbox by rename while we wait for
 * its lock: we must not append to the old file, now without a name.
 */
static void
test_mbox_replaced_while_waiting(void **state)
{
	char		 mbox[PATH_MAX], fresh[PATH_MAX], err[256], c, *data;
	struct timespec	 ts = { 0, 400 * 1000000L };
	struct flock	 fl;
	size_t		 len;
	pid_t		 pid;
	int		 p[2], status, fd;

	(void)state;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	path_in(mbox, sizeof(mbox), "mbox");
	path_in(fresh, sizeof(fresh), "rewritten");
	put_file(mbox, "old\n", 4);
	put_file(fresh, "new\n", 4);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if ((fd = open(mbox, O_RDWR)) == -1 ||
		    fcntl(fd, F_SETLKW, &fl) == -1 ||
		    write(p[1], "L", 1) != 1)
			_exit(1);
		(void)nanosleep(&ts, NULL);
		if (rename(fresh, mbox) == -1)
			_exit(2);
		_exit(0);
	}
	assert_int_equal(close(p[1]), 0);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(close(p[0]), 0);
	assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", "x\n", err,
	    sizeof(err)), MDA_OK);
	assert_string_equal(err, "");	/* nothing left of the retry */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	data = slurp(mbox, &len);
	assert_true(strncmp(data, "new\nFrom a@b ", 13) == 0);
	free(data);

	/* removed (a reader deleting the mailbox it emptied): recreated */
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if ((fd = open(mbox, O_RDWR)) == -1 ||
		    fcntl(fd, F_SETLKW, &fl) == -1 ||
		    write(p[1], "L", 1) != 1)
			_exit(1);
		(void)nanosleep(&ts, NULL);
		if (unlink(mbox) == -1)
			_exit(2);
		_exit(0);
	}
	assert_int_equal(close(p[1]), 0);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(close(p[0]), 0);
	assert_int_equal(deliver_mbox_str(mbox, "a@b", "c@d", "y\n", err,
	    sizeof(err)), MDA_OK);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	data = slurp(mbox, &len);
	assert_true(strncmp(data, "From a@b ", 9) == 0);
	assert_non_null(strstr(data, "\ny\n\n"));
	free(data);
}

/*
 * A mail directory we cannot create files in (Debian's /var/mail without
 * group mail): no dotlock, the fcntl lock alone, and delivery succeeds.
 */
static void
test_mbox_unwritable_dir(void **state)
{
	char		 dir[PATH_MAX], mbox[PATH_MAX], err[256], *data;
	struct mda_message m;
	size_t		 len;
	pid_t		 pid;
	int		 status, rc;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.file.fd = spool("x\n", 2);
	m.file.body = (int64_t)(2);
	m.sender = "a@b";
	m.rcpt = "c@d";
	m.hostname = "h";
	path_in(dir, sizeof(dir), "mail");
	path_in(mbox, sizeof(mbox), "mail/user");
	assert_int_equal(mkdir(dir, 0755), 0);
	put_file(mbox, "", 0);
	if (geteuid() == 0) {
		/* root can write anywhere: deliver as nobody */
		assert_int_equal(chmod(tdir, 0755), 0);
		assert_int_equal(chown(mbox, NOBODY_UID, NOBODY_GID), 0);
		pid = fork();
		assert_true(pid != -1);
		if (pid == 0) {
			if (setgroups(0, NULL) == -1 ||
			    setgid(NOBODY_GID) == -1 ||
			    setuid(NOBODY_UID) == -1)
				_exit(10);
			_exit(mda_mbox_deliver(mbox, &m, err, sizeof(err)));
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), MDA_OK);
	} else {
		assert_int_equal(chmod(dir, 0555), 0);
		rc = mda_mbox_deliver(mbox, &m, err, sizeof(err));
		assert_int_equal(chmod(dir, 0755), 0);
		assert_int_equal(rc, MDA_OK);
	}
	assert_int_equal(close(m.file.fd), 0);
	data = slurp(mbox, &len);
	assert_true(strncmp(data, "From a@b ", 9) == 0);
	free(data);
	assert_int_equal(count_entries(dir, NULL), 1);
}

/* Python's mailbox module reads our mbox back as we meant it. */
static void
test_mbox_python(void **state)
{
	static const char script[] =
	    "import mailbox, sys\n"
	    "box = mailbox.mbox(sys.argv[1], create=False)\n"
	    "keys = box.keys()\n"
	    "for i, k in enumerate(keys):\n"
	    "    m = box.get_message(k)\n"
	    "    with open('%s/py.%d.raw' % (sys.argv[2], i), 'wb') as f:\n"
	    "        f.write(box.get_bytes(k))\n"
	    "    with open('%s/py.%d.hdr' % (sys.argv[2], i), 'w') as f:\n"
	    "        f.write('%s\\n%s\\n%s\\n' % (m.get_from().split()[0],\n"
	    "            m['Return-Path'], m['Delivered-To']))\n"
	    "sys.exit(0 if len(keys) == 3 else 1)\n";
	static const char *const msgs[] = {
		"Subject: a\n\nFrom the top\n>From quoted\nbody\n",
		"Subject: b\n\nno newline at the end",
		"Subject: c\n\n\n\nFrom \n\n",
	};
	static const char *const senders[] = { "a@x", "", "c@x" };
	static const char *const rcpts[] = { "r1@y", "r2@y", "r3@y" };
	char	 mbox[PATH_MAX], py[PATH_MAX], cmd[PATH_MAX * 3], err[256];
	char	 file[PATH_MAX], name[32], want[512], *data, *q, *exp;
	size_t	 len, qlen, elen;
	int	 i;

	(void)state;
	if (access("/usr/bin/python3", X_OK) == -1)
		skip();
	path_in(mbox, sizeof(mbox), "mbox");
	for (i = 0; i < 3; i++)
		assert_int_equal(deliver_mbox_str(mbox, senders[i], rcpts[i],
		    msgs[i], err, sizeof(err)), MDA_OK);
	path_in(py, sizeof(py), "check.py");
	put_file(py, script, strlen(script));
	assert_true(snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s %s",
	    py, mbox, tdir) < (int)sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	for (i = 0; i < 3; i++) {
		/* Python does not undo the quoting: compare the raw form */
		(void)snprintf(name, sizeof(name), "py.%d.raw", i);
		path_in(file, sizeof(file), name);
		data = slurp(file, &len);
		q = ref_quote(msgs[i], strlen(msgs[i]), &qlen);
		exp = expected_body(senders[i], rcpts[i], q, qlen, 1, &elen);
		assert_int_equal(len, elen);
		assert_memory_equal(data, exp, len);
		free(exp);
		free(q);
		free(data);
		(void)snprintf(name, sizeof(name), "py.%d.hdr", i);
		path_in(file, sizeof(file), name);
		data = slurp(file, &len);
		(void)snprintf(want, sizeof(want), "%s\n<%s>\n%s\n",
		    senders[i][0] != '\0' ? senders[i] : "MAILER-DAEMON",
		    senders[i], rcpts[i]);
		assert_string_equal(data, want);
		free(data);
	}
}

/*
 * /file deliveries: fcntl lock only, no directory creation, /dev/null.
 */
static void
test_file_deliver(void **state)
{
	char		 file[PATH_MAX], lock[PATH_MAX], dir[PATH_MAX];
	char		 err[256], *data;
	struct mda_message m;
	struct stat	 st;
	size_t		 len;
	double		 t0;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.sender = "a@b";
	m.rcpt = "c@d";
	m.hostname = "h";
	m.file.fd = spool("From me\nhi\n", 11);
	m.file.body = (int64_t)(11);

	/* a fresh dotlock does not concern /file deliveries */
	path_in(file, sizeof(file), "log");
	path_in(lock, sizeof(lock), "log.lock");
	put_file(lock, "1\n", 2);
	t0 = now_sec();
	assert_int_equal(mda_file_deliver(file, &m, err, sizeof(err)), MDA_OK);
	assert_true(now_sec() - t0 < 1.0);
	assert_int_equal(lstat(lock, &st), 0);
	data = slurp(file, &len);
	assert_true(strncmp(data, "From a@b ", 9) == 0);
	assert_non_null(strstr(data,
	    "\nReturn-Path: <a@b>\nDelivered-To: c@d\n>From me\nhi\n\n"));
	assert_int_equal(data[len - 1], '\n');
	assert_int_equal(data[len - 2], '\n');
	free(data);

	/* the directory is not created */
	path_in(file, sizeof(file), "nodir/log");
	assert_int_equal(mda_file_deliver(file, &m, err, sizeof(err)),
	    MDA_TEMPFAIL);
	assert_true(strncmp(err, "4.2.0 file: ", 12) == 0);
	path_in(dir, sizeof(dir), "nodir");
	assert_int_equal(lstat(dir, &st), -1);

	/* symlinks are refused here too */
	path_in(file, sizeof(file), "link");
	assert_int_equal(symlink("log", file), 0);
	assert_int_equal(mda_file_deliver(file, &m, err, sizeof(err)),
	    MDA_PERMFAIL);

	assert_int_equal(mda_file_deliver("/dev/null", &m, err, sizeof(err)),
	    MDA_OK);
	assert_int_equal(close(m.file.fd), 0);
}

/*
 * Path templates.
 */
static void
test_expand_path(void **state)
{
	static const struct {
		const char	*tmpl;
		const char	*want;	/* NULL: refused */
	} cases[] = {
		{ "~", "/home/bob" },
		{ "~/Maildir", "/home/bob/Maildir" },
		{ "~/", "/home/bob/" },
		{ "~bob/Maildir", NULL },
		{ "/var/mail/%{user.username}", "/var/mail/bob" },
		{ "%{user.directory}/Maildir", "/home/bob/Maildir" },
		{ "~/Maildir/.%{dest.user}", "/home/bob/Maildir/.Bob.Smith" },
		{ "/m/%{dest.domain:lowercase}/%{dest.user:lowercase}",
		    "/m/example.org/bob.smith" },
		{ "/m/%{dest.domain:uppercase}", "/m/EXAMPLE.ORG" },
		{ "/m/%{rcpt.user}@%{rcpt.domain}", "/m/bob+tag@Example.NET" },
		{ "/m/%{rcpt.domain:lowercase}", "/m/example.net" },
		{ "/m/%{sender}", "/m/alice@example.com" },
		{ "100%%/x", "100%/x" },
		{ "/m/%{nosuch}", NULL },
		{ "/m/%{dest.user:reverse}", NULL },
		{ "/m/%{dest.user", NULL },
		{ "/m/%x", NULL },
		{ "/m/%", NULL },
		{ "/m/../etc", NULL },
		{ "/m/..", NULL },
		{ "../m", NULL },
		{ "..", NULL },
		{ "/m/..x/y", "/m/..x/y" },
		{ "/m/x../y", "/m/x../y" },
		{ "", NULL },
	};
	struct mda_expand_ctx	ctx = {
		.username = "bob",
		.homedir = "/home/bob",
		.dest_user = "Bob.Smith",
		.dest_domain = "Example.ORG",
		.rcpt_user = "bob+tag",
		.rcpt_domain = "Example.NET",
		.sender = "alice@example.com",
	};
	struct mda_expand_ctx	bad;
	char			out[256];
	size_t			i;
	int			rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = mda_expand_path(cases[i].tmpl, &ctx, out, sizeof(out));
		if (cases[i].want == NULL) {
			if (rc != -1)
				fail_msg("\"%s\" expanded to \"%s\"",
				    cases[i].tmpl, out);
			assert_string_equal(out, "");
		} else {
			if (rc != 0)
				fail_msg("\"%s\" refused", cases[i].tmpl);
			assert_string_equal(out, cases[i].want);
		}
	}

	/* address parts must not walk the tree */
	bad = ctx;
	bad.dest_user = "../../etc";
	assert_int_equal(mda_expand_path("/m/%{dest.user}", &bad, out,
	    sizeof(out)), -1);
	bad.dest_user = "a/b";
	assert_int_equal(mda_expand_path("/m/%{dest.user}", &bad, out,
	    sizeof(out)), -1);
	bad.dest_user = ".hidden";
	assert_int_equal(mda_expand_path("/m/%{dest.user}", &bad, out,
	    sizeof(out)), -1);
	bad.dest_user = "..";
	assert_int_equal(mda_expand_path("/m/%{dest.user}/x", &bad, out,
	    sizeof(out)), -1);
	bad.dest_user = "";
	assert_int_equal(mda_expand_path("/m/%{dest.user}", &bad, out,
	    sizeof(out)), -1);
	bad.dest_user = "a\nb";
	assert_int_equal(mda_expand_path("/m/%{dest.user}", &bad, out,
	    sizeof(out)), -1);
	bad = ctx;
	bad.sender = "evil/../x@y";
	assert_int_equal(mda_expand_path("/m/%{sender}", &bad, out,
	    sizeof(out)), -1);
	bad.sender = "";		/* the null sender */
	assert_int_equal(mda_expand_path("/m/%{sender}", &bad, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "/m/");
	bad = ctx;
	bad.rcpt_domain = NULL;
	assert_int_equal(mda_expand_path("/m/%{rcpt.domain}", &bad, out,
	    sizeof(out)), -1);
	assert_int_equal(mda_expand_path("/m/x", &bad, out, sizeof(out)), 0);
	bad.homedir = NULL;
	assert_int_equal(mda_expand_path("~/x", &bad, out, sizeof(out)), -1);
	bad.homedir = "/home/bob/";
	assert_int_equal(mda_expand_path("~/x", &bad, out, sizeof(out)), 0);
	assert_string_equal(out, "/home/bob/x");

	/* no room */
	assert_int_equal(mda_expand_path("~/Maildir", &ctx, out, 10), -1);
	assert_int_equal(mda_expand_path("~/Maildir", &ctx, out, 18), 0);
	assert_string_equal(out, "/home/bob/Maildir");
	assert_int_equal(mda_expand_path("~/Maildir", &ctx, out, 17), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_maildir_deliver, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_maildir_large_null_sender,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_not_a_directory,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_repair_and_errors,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_maildir_batch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_head_then_rest, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mbox_deliver, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mbox_partial_prefix_at_eof,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_from_line_space,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_quoting_boundaries,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_refuses_links, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mbox_rollback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mbox_stale_dotlock, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mbox_dotlock_wait, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mbox_fcntl_wait, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mbox_replaced_while_waiting,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbox_unwritable_dir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mbox_python, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_deliver, setup,
		    teardown),
		cmocka_unit_test(test_expand_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
