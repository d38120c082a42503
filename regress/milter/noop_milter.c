/*
 * noop_milter.c -- the no-op mail filter of "make bench SCENARIOS=milter"
 * (a test fixture: built by mk/bench.sh into obj/, never installed).
 *
 * Issue 19's speed target compares Posthaste's milter client with
 * Postfix's on the same filter, so the filter must cost as little as a
 * filter can and be the same program for both: a libmilter filter with
 * only an end-of-message callback that lets every message through.  Its
 * xxfi_negotiate is NULL on purpose, as in most small filters: libmilter
 * then asks the MTA not to send the steps that have no callback.  From
 * libmilter's sources (listener.c, 8.14 and later): a NULL xxfi_connect,
 * xxfi_helo, xxfi_envfrom, xxfi_envrcpt, xxfi_header, xxfi_eoh, xxfi_body,
 * xxfi_data, xxfi_unknown sets SMFIP_NOCONNECT, NOHELO, NOMAIL, NORCPT,
 * NOHDRS, NOEOH, NOBODY, NODATA, NOUNKNOWN in its option reply (engine.c
 * st_optionneg; NODATA and NOUNKNOWN only when the MTA offers them), and
 * asks for no SMFIP_NR_* "no reply" bit: every step an MTA still sends
 * costs a reply.  xxfi_abort and xxfi_close change nothing there; they
 * are here to count.  The counts below show what each MTA was offered
 * and what came back, so nobody needs to take this comment's word.
 *
 * What it counts is the point of the bench: the round trips per message
 * each MTA makes (a round trip = a command the MTA waits on, i.e. one
 * final reply: continue, accept, reject, tempfail, discard, reply code,
 * skip, or the option reply).  The callbacks only see the steps that
 * have one; a command for a step without a callback is answered by
 * libmilter itself.  So the fixture links libmilter statically and wraps
 * libmilter's two I/O functions, mi_rd_cmd() (one command read) and
 * mi_wr_cmd() (one reply written), with the linker's --wrap (see
 * mk/bench.sh): every command received and every reply sent is counted
 * by kind, whatever libmilter does with it.  Their prototypes are not
 * in an installed header; they are the same in 8.12's comm.c and in
 * Debian 12's 8.17.1 (used here), and the counts check themselves: the
 * end-of-message callbacks must equal the SMFIC_BODYEOB commands read
 * ("wrappers_ok").
 *
 * Usage: noop_milter -p inet:PORT@127.0.0.1 | unix:/PATH -o COUNTS
 * The totals (connections, messages, callbacks, commands and replies by
 * kind, the macro packets by the stage they are for, the round trips,
 * what was negotiated, this process's CPU time) go to COUNTS as "name
 * value" lines: on SIGUSR1 (and it keeps running) and when SIGTERM,
 * SIGINT or SIGHUP stops it (libmilter's own signal thread catches those
 * and makes smfi_main() return).  The file is
 * written beside and renamed, so a reader never sees half of it.
 */

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

/* libmilter's private I/O functions (libmilter.h, not installed) */
char	*__real_mi_rd_cmd(int, struct timeval *, char *, size_t *, char *);
int	 __real_mi_wr_cmd(int, struct timeval *, int, char *, size_t);
char	*__wrap_mi_rd_cmd(int, struct timeval *, char *, size_t *, char *);
int	 __wrap_mi_wr_cmd(int, struct timeval *, int, char *, size_t);

/* one counter per command or reply byte (mi_rd_cmd's errors are 1..7) */
static atomic_ulong	commands[256];
static atomic_ulong	replies[256];
/* SMFIC_MACRO by the stage it is for (its first byte, a command) */
static atomic_ulong	macros[256];
static atomic_ulong	cb_eom, cb_abort, cb_close;
/* the last option negotiation seen: what the MTA offered, the answer */
static atomic_ulong	offer_version, offer_actions, offer_protocol;
static atomic_ulong	reply_version, reply_actions, reply_protocol;

static const char	*counts_path;

struct code_name {
	int		 code;
	const char	*name;
};

static const struct code_name	command_names[] = {
	{ SMFIC_ABORT, "abort" }, { SMFIC_BODY, "body" },
	{ SMFIC_CONNECT, "connect" }, { SMFIC_MACRO, "macro" },
	{ SMFIC_BODYEOB, "bodyeob" }, { SMFIC_HELO, "helo" },
	{ SMFIC_QUIT_NC, "quit_nc" }, { SMFIC_HEADER, "header" },
	{ SMFIC_MAIL, "mail" }, { SMFIC_EOH, "eoh" },
	{ SMFIC_OPTNEG, "optneg" }, { SMFIC_QUIT, "quit" },
	{ SMFIC_RCPT, "rcpt" }, { SMFIC_DATA, "data" },
	{ SMFIC_UNKNOWN, "unknown" },
	/* mi_rd_cmd()'s error codes (libmilter.h) */
	{ 1, "error_timeout" }, { 2, "error_select" }, { 3, "error_malloc" },
	{ 4, "error_recv" }, { 5, "eof" }, { 6, "error_unknown" },
	{ 7, "error_toobig" },
};

static const struct code_name	reply_names[] = {
	{ SMFIR_ADDRCPT, "addrcpt" }, { SMFIR_DELRCPT, "delrcpt" },
	{ SMFIR_ADDRCPT_PAR, "addrcpt_par" }, { SMFIR_SHUTDOWN, "shutdown" },
	{ SMFIR_ACCEPT, "accept" }, { SMFIR_REPLBODY, "replbody" },
	{ SMFIR_CONTINUE, "continue" }, { SMFIR_DISCARD, "discard" },
	{ SMFIR_CHGFROM, "chgfrom" }, { SMFIR_CONN_FAIL, "conn_fail" },
	{ SMFIR_ADDHEADER, "addheader" }, { SMFIR_INSHEADER, "insheader" },
	{ SMFIR_SETSYMLIST, "setsymlist" }, { SMFIR_CHGHEADER, "chgheader" },
	{ SMFIR_PROGRESS, "progress" }, { SMFIR_QUARANTINE, "quarantine" },
	{ SMFIR_REJECT, "reject" }, { SMFIR_SKIP, "skip" },
	{ SMFIR_TEMPFAIL, "tempfail" }, { SMFIR_REPLYCODE, "replycode" },
	{ SMFIC_OPTNEG, "optneg" },
};

/*
 * The replies that end a round trip: the MTA waits for one of these after
 * each command it expects an answer to.  Modifications and progress come
 * before one of them, inside the same round trip.
 */
static const char	final_replies[] = {
	SMFIR_ACCEPT, SMFIR_CONTINUE, SMFIR_DISCARD, SMFIR_REJECT,
	SMFIR_TEMPFAIL, SMFIR_REPLYCODE, SMFIR_SKIP, SMFIR_SHUTDOWN,
	SMFIR_CONN_FAIL, SMFIC_OPTNEG,
};

static unsigned long
get32(const char *p)
{
	const unsigned char	*u = (const unsigned char *)p;

	return (unsigned long)u[0] << 24 | (unsigned long)u[1] << 16 |
	    (unsigned long)u[2] << 8 | u[3];
}

char *
__wrap_mi_rd_cmd(int sd, struct timeval *timeout, char *cmd, size_t *rlen,
    char *name)
{
	char	*buf;

	buf = __real_mi_rd_cmd(sd, timeout, cmd, rlen, name);
	atomic_fetch_add(&commands[(unsigned char)*cmd], 1);
	if (*cmd == SMFIC_MACRO && buf != NULL && *rlen >= 1)
		atomic_fetch_add(&macros[(unsigned char)buf[0]], 1);
	if (*cmd == SMFIC_OPTNEG && buf != NULL && *rlen >= 12) {
		atomic_store(&offer_version, get32(buf));
		atomic_store(&offer_actions, get32(buf + 4));
		atomic_store(&offer_protocol, get32(buf + 8));
	}
	return buf;
}

int
__wrap_mi_wr_cmd(int sd, struct timeval *timeout, int cmd, char *buf,
    size_t len)
{
	atomic_fetch_add(&replies[(unsigned char)cmd], 1);
	if (cmd == SMFIC_OPTNEG && buf != NULL && len >= 12) {
		atomic_store(&reply_version, get32(buf));
		atomic_store(&reply_actions, get32(buf + 4));
		atomic_store(&reply_protocol, get32(buf + 8));
	}
	return __real_mi_wr_cmd(sd, timeout, cmd, buf, len);
}

static sfsistat
noop_eom(SMFICTX *ctx)
{
	(void)ctx;
	atomic_fetch_add(&cb_eom, 1);
	return SMFIS_CONTINUE;
}

static sfsistat
noop_abort(SMFICTX *ctx)
{
	(void)ctx;
	atomic_fetch_add(&cb_abort, 1);
	return SMFIS_CONTINUE;
}

static sfsistat
noop_close(SMFICTX *ctx)
{
	(void)ctx;
	atomic_fetch_add(&cb_close, 1);
	return SMFIS_CONTINUE;
}

static void
write_names(FILE *fp, const char *kind, atomic_ulong *counts,
    const struct code_name *n, size_t nnames)
{
	size_t		 i, j;
	unsigned long	 v;

	for (i = 0; i < 256; i++) {
		if ((v = atomic_load(&counts[i])) == 0)
			continue;
		for (j = 0; j < nnames; j++)
			if (n[j].code == (int)i)
				break;
		if (j < nnames)
			fprintf(fp, "%s.%s %lu\n", kind, n[j].name, v);
		else
			fprintf(fp, "%s.0x%02zx %lu\n", kind, i, v);
	}
}

/* the totals into counts_path, through a file renamed over it */
static int
write_counts(void)
{
	char		 tmp[4096];
	FILE		*fp;
	struct rusage	 ru;
	unsigned long	 round_trips = 0;
	size_t		 i;
	int		 n;

	n = snprintf(tmp, sizeof tmp, "%s.tmp", counts_path);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		fprintf(stderr, "noop_milter: %s: name too long\n",
		    counts_path);
		return -1;
	}
	if ((fp = fopen(tmp, "w")) == NULL) {
		fprintf(stderr, "noop_milter: %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof final_replies; i++)
		round_trips += atomic_load(
		    &replies[(unsigned char)final_replies[i]]);
	if (getrusage(RUSAGE_SELF, &ru) == -1)
		memset(&ru, 0, sizeof ru);
	fprintf(fp, "connections %lu\n", atomic_load(&cb_close));
	fprintf(fp, "messages %lu\n", atomic_load(&cb_eom));
	fprintf(fp, "round_trips %lu\n", round_trips);
	fprintf(fp, "callback.eom %lu\n", atomic_load(&cb_eom));
	fprintf(fp, "callback.abort %lu\n", atomic_load(&cb_abort));
	fprintf(fp, "callback.close %lu\n", atomic_load(&cb_close));
	write_names(fp, "command", commands, command_names,
	    sizeof command_names / sizeof command_names[0]);
	write_names(fp, "macro_for", macros, command_names,
	    sizeof command_names / sizeof command_names[0]);
	write_names(fp, "reply", replies, reply_names,
	    sizeof reply_names / sizeof reply_names[0]);
	fprintf(fp, "offered.version %lu\n", atomic_load(&offer_version));
	fprintf(fp, "offered.actions 0x%lx\n", atomic_load(&offer_actions));
	fprintf(fp, "offered.protocol 0x%lx\n", atomic_load(&offer_protocol));
	fprintf(fp, "negotiated.version %lu\n", atomic_load(&reply_version));
	fprintf(fp, "negotiated.actions 0x%lx\n",
	    atomic_load(&reply_actions));
	fprintf(fp, "negotiated.protocol 0x%lx\n",
	    atomic_load(&reply_protocol));
	fprintf(fp, "cpu_user_s %ld.%06ld\n", (long)ru.ru_utime.tv_sec,
	    (long)ru.ru_utime.tv_usec);
	fprintf(fp, "cpu_sys_s %ld.%06ld\n", (long)ru.ru_stime.tv_sec,
	    (long)ru.ru_stime.tv_usec);
	/* the wrappers must have seen what the callbacks saw */
	fprintf(fp, "wrappers_ok %d\n", atomic_load(&commands[SMFIC_BODYEOB])
	    == atomic_load(&cb_eom) ? 1 : 0);
	if (ferror(fp) || fclose(fp) == EOF) {
		fprintf(stderr, "noop_milter: %s: write failed\n", tmp);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, counts_path) == -1) {
		fprintf(stderr, "noop_milter: rename %s: %s\n", tmp,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/*
 * SIGUSR1: write the totals, keep running.  Blocked in every thread, as
 * are the signals libmilter's own thread waits for (it blocks them only
 * when smfi_main() starts, after this thread exists: a SIGTERM must not
 * find this thread open to it and kill the process unwritten).
 */
static void *
usr1_thread(void *arg)
{
	sigset_t	*set = arg;
	int		 sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		write_counts();
	}
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr, "usage: noop_milter -p inet:PORT@HOST|unix:/PATH "
	    "-o COUNTS\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	static sigset_t		 usr1;
	sigset_t		 block;
	struct smfiDesc		 desc;
	pthread_t		 tid;
	const char		*conn = NULL;
	int			 ch, r;

	while ((ch = getopt(argc, argv, "o:p:")) != -1) {
		switch (ch) {
		case 'o':
			counts_path = optarg;
			break;
		case 'p':
			conn = optarg;
			break;
		default:
			usage();
		}
	}
	if (conn == NULL || counts_path == NULL || optind != argc)
		usage();

	memset(&desc, 0, sizeof desc);
	desc.xxfi_name = "noop";
	desc.xxfi_version = SMFI_VERSION;
	desc.xxfi_flags = 0;		/* no modifications asked for */
	desc.xxfi_eom = noop_eom;
	desc.xxfi_abort = noop_abort;
	desc.xxfi_close = noop_close;
	/* every other callback, xxfi_negotiate included, stays NULL */

	/* blocked before libmilter starts its threads, so they inherit it */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	block = usr1;
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	if ((r = pthread_sigmask(SIG_BLOCK, &block, NULL)) != 0 ||
	    (r = pthread_create(&tid, NULL, usr1_thread, &usr1)) != 0) {
		fprintf(stderr, "noop_milter: %s\n", strerror(r));
		return 1;
	}
	if (smfi_setconn((char *)conn) == MI_FAILURE ||
	    smfi_register(desc) == MI_FAILURE) {
		fprintf(stderr, "noop_milter: cannot set up %s\n", conn);
		return 1;
	}
	/* an empty file at once: the bench knows the filter came up */
	if (write_counts() == -1)
		return 1;
	r = smfi_main();
	if (write_counts() == -1)
		return 1;
	return r == MI_SUCCESS ? 0 : 1;
}
