/*
 * fuzz_queue_control.c -- libFuzzer harness for the queue's handling of
 * smtpctl's requests (queue/queue_control.c, and what they reach: the
 * scheduler, removal in and out of flight, the spool's files).
 *
 * The seam is queue_fuzz_start() (queue.h, compiled only under
 * -DPOSTHASTE_FUZZ): queue_main() without the privilege drop, the
 * chroot, the sandbox and the loop, on a scratch spool in /dev/shm.  The
 * harness plays control (the requests, as control passes them on: the
 * kernel's uid, and root for all but the four show requests a user may
 * make), the mta and the parent (they take the deliveries the scheduler
 * sends and answer them when the input says so).
 *
 * Each input starts from the same queue: four messages committed through
 * the queue's own commit (queue_message_commit(), as for a bounce) with
 * seven envelopes -- remote and local, root's and two users' local
 * submissions, one message of 1500 bytes with NUL bytes in it, an old
 * error with control characters -- three of them in flight (the
 * in-flight limit).  The input is a list of operations: a request (a
 * command byte below 0xc0, then a byte choosing the id -- all, an
 * envelope, its message, eight bytes of the input, one that does not
 * exist -- and the uid), or an agent's answer (a byte from 0xc0: OK or a
 * temporary failure, and the length of what follows: a byte that picks
 * one envelope in flight, then the text).  At the end everything is
 * removed, what is in flight answered, and the spool must be empty.
 *
 * Beyond "does not crash" (a fatal() ends the process): each request
 * gets one final reply, last, with its id; no reply or entry for another;
 * a user is shown only the envelopes he submitted; show envelope is a
 * dump envelope_load() takes back, with that id; show message is the
 * message (NUL shown as ^@); the in-flight count of show status is the
 * number of deliveries the agents hold; nothing is sent to an agent
 * while it is paused, no envelope while it is paused or held (smtpctl
 * hold, EF_HOLD) or twice; an envelope shown held has its reason, and
 * one shown with a reason is held (or in flight, removed, bouncing);
 * and after the clean-up (remove all: held ones too) the queue holds
 * nothing and the spool's folders are empty but for .format and .key.
 *
 * The harness plays lookup too, for smtpctl requeue (the command byte
 * that would be CTL_NONE is CTL_REQUEUE, its next byte the way lookup
 * answers: the same destination, a new one, two, none, a temporary
 * failure, or its channel closes, and the parent sends a new one).  A
 * requeue's lookups carry REQUEUE_REQID and the recipient of an
 * envelope of the queue; its reply counts "N requeued, M unchanged",
 * none requeued unless lookup gave exactly one destination, and a new
 * destination is what show envelope then shows.
 */
#include <sys/stat.h>
#include <sys/socket.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz.h"

#include "config.h"
#include "ctl.h"
#include "destmac.h"
#include "envelope.h"
#include "imsg.h"
#include "log.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "queue.h"

#define KNOWN_MAX	16
#define FLIGHT_MAX	16
#define LOOP_MAX	64	/* turns for one operation to settle */

static struct imsgbuf	 parent_ib, control_ib, mta_ib, lookup_ib;
static char		 spooldir[64];

/* the envelopes of the queue each input starts with */
struct known {
	uint64_t	 evpid;
	uint32_t	 uid;		/* EF_LOCAL: who submitted it */
	int		 local;		/* EF_LOCAL */
	const char	*body;
	size_t		 len;
	char		 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
};
static struct known	 known[KNOWN_MAX];
static int		 learning;	/* the ids are not known yet */
static size_t		 nknown;

/* the deliveries the agents hold */
struct flight {
	uint64_t	 evpid;
	int		 remote;
};
static struct flight	 flights[FLIGHT_MAX];
static size_t		 nflights;
static int		 mta_paused, mda_paused;

/* how the harness, as lookup, answers a requeue (LOOKUP_*) */
enum {
	LOOKUP_SAME,		/* the envelope's destination again */
	LOOKUP_NEW,		/* another address, same kind */
	LOOKUP_TWO,		/* an alias of two now */
	LOOKUP_NONE,		/* refused: no destination */
	LOOKUP_TEMP,		/* a temporary failure */
	LOOKUP_CLOSE,		/* the channel closes unanswered */
	LOOKUP_MODES
};
static int		 lookup_mode;
static size_t		 lookup_asked;

static char		 body_big[1500];
static const char	 body_a[] = "Subject: a\n\nhello\n.\n";
static const char	 body_c[] = "Subject: c\n\nfor a mailbox\n";
static const char	 body_d[] = "Subject: d\n\n\xc3\xa9t\xc3\xa9\n";

static void
rmtree_files(const char *dir, int keep_dots)
{
	char		 path[256];
	struct dirent	*de;
	DIR		*d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (keep_dots && de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

/* the scratch spool goes when libFuzzer is done */
static void
cleanup(void)
{
	static const char *sub[] = { "incoming", "queue", "corrupt" };
	char	path[128];
	size_t	i;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", spooldir, sub[i]);
		rmtree_files(path, 0);
		rmdir(path);
	}
	rmdir(spooldir);
}

/* a (new) lookup process, from the parent, as at a reload */
static void
lookup_channel(void)
{
	int	lk[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, lk) == -1)
		abort();
	imsgbuf_init(&lookup_ib, lk[1]);
	if (imsg_compose(&parent_ib, IMSG_QUEUE_SET_LOOKUP, 0, lk[0], NULL,
	    0) == -1 || imsg_flush(&parent_ib) == -1)
		abort();
	/* imsg_compose() closes the queue's end once it has gone */
}

static void
init(void)
{
	static const char *sub[] = { "incoming", "queue", "corrupt" };
	char	path[128];
	int	pa[2], ctl[2], mta[2];
	size_t	i;

	/* the queue checks lookup's seal on a requeue's destination */
	destmac_key_generate();

	signal(SIGPIPE, SIG_IGN);
	log_init(0, 0);
	if ((conf = config_default()) == NULL)
		abort();
	snprintf(conf->hostname, sizeof(conf->hostname), "mx.example.org");
	/* three in flight at most: the others wait on the ready list */
	conf->queue_max_inflight = 3;
	if ((ev_base = event_base_new()) == NULL)
		abort();
	/* tmpfs: the commit's syncs cost nothing */
	snprintf(spooldir, sizeof(spooldir),
	    "/dev/shm/posthaste-fuzz-queue-XXXXXX");
	if (mkdtemp(spooldir) == NULL)
		abort();
	atexit(cleanup);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", spooldir, sub[i]);
		if (mkdir(path, 0700) == -1)
			abort();
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pa) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, ctl) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, mta) == -1)
		abort();
	imsgbuf_init(&parent_ib, pa[1]);
	imsgbuf_init(&control_ib, ctl[1]);
	imsgbuf_init(&mta_ib, mta[1]);
	/* 1500 bytes, NULs and all: show message goes in 511-byte pieces */
	for (i = 0; i < sizeof(body_big); i++)
		body_big[i] = i % 61 == 60 ? '\n' : i % 97 == 0 ? '\0' :
		    (char)('a' + i % 26);
	queue_fuzz_start(spooldir, pa[0], ctl[0], mta[0]);
	lookup_channel();
}

/* ---- the agents ---- */

static struct known *
known_find(uint64_t evpid)
{
	size_t	i;

	for (i = 0; i < nknown; i++)
		if (known[i].evpid == evpid)
			return &known[i];
	return NULL;
}

static struct flight *
flight_find(uint64_t evpid)
{
	size_t	i;

	for (i = 0; i < nflights; i++)
		if (flights[i].evpid == evpid)
			return &flights[i];
	return NULL;
}

/* a delivery from the scheduler, to the mta or (local) the parent */
static void
agent_take(struct imsg *m, int remote)
{
	struct envelope	evp;

	CHECK(m->hdr.type == (remote ? IMSG_MTA_DELIVER : IMSG_MDA_DELIVER));
	CHECK(m->len == sizeof(evp) && m->fd != -1);
	memcpy(&evp, m->data, sizeof(evp));
	CHECK(envelope_valid(&evp) == 0);
	CHECK((evp.dest_type == DEST_REMOTE) == remote);
	/* never while its agent is paused or it is held, never twice */
	CHECK(remote ? !mta_paused : !mda_paused);
	CHECK(!(evp.flags & (EF_PAUSED | EF_HOLD)));
	CHECK(evp.hold_reason[0] == '\0');
	CHECK(flight_find(evp.id) == NULL);
	CHECK(learning || known_find(evp.id) != NULL);
	CHECK(nflights < FLIGHT_MAX);
	flights[nflights].evpid = evp.id;
	flights[nflights].remote = remote;
	nflights++;
}

static int
serve_agent(struct imsgbuf *ib, int remote)
{
	struct imsg	m;
	int		any = 0, rc;

	while (imsg_read(ib) > 0)
		;
	while ((rc = imsg_get(ib, &m)) == 1) {
		any = 1;
		agent_take(&m, remote);
		if (m.fd != -1)
			close(m.fd);
	}
	CHECK(rc == 0);
	return any;
}

/* the agent holding flights[i] answers */
static void
agent_answer(size_t i, int status, const char *text, size_t textlen)
{
	struct delivery_result	r;
	struct flight		f = flights[i];

	memset(&r, 0, sizeof(r));
	r.evpid = f.evpid;
	r.status = (uint32_t)status;
	if (textlen > sizeof(r.text) - 1)
		textlen = sizeof(r.text) - 1;
	memcpy(r.text, text, textlen);
	snprintf(r.relay, sizeof(r.relay), "%s", f.remote ?
	    "mx.example.net[192.0.2.1]:25" : "local");
	if (imsg_compose(f.remote ? &mta_ib : &parent_ib, f.remote ?
	    IMSG_MTA_RESULT : IMSG_MDA_RESULT, 0, -1, &r, sizeof(r)) == -1 ||
	    imsg_flush(f.remote ? &mta_ib : &parent_ib) == -1)
		abort();
	flights[i] = flights[--nflights];
}

/* ---- lookup, for requeue ---- */

static void
lookup_send(uint32_t type, const void *data, size_t len)
{
	if (imsg_compose(&lookup_ib, type, 0, -1, data, len) == -1 ||
	    imsg_flush(&lookup_ib) == -1)
		abort();
}

/* one destination of the envelope whose recipient req names */
static void
lookup_dest(const struct lka_rcpt_req *req, const struct envelope *like,
    const char *user)
{
	struct lka_dest	d;

	memset(&d, 0, sizeof(d));
	d.reqid = req->reqid;
	d.dest_type = like->dest_type;
	d.dest = req->rcpt;
	if (user != NULL)
		snprintf(d.dest.user, sizeof(d.dest.user), "%s", user);
	memcpy(d.action, like->action, sizeof(d.action));
	memcpy(d.user, like->user, sizeof(d.user));
	destmac_compute(destmac_key(), &d, d.mac);
	lookup_send(IMSG_LKA_RCPT_DEST, &d, sizeof(d));
}

/*
 * A requeue's questions, answered as lookup_mode says; 1 when there were
 * any.  The envelopes were all made by mkevp(): a remote one has action
 * "relay" and no user, a local one "local" and its user.
 */
static int
serve_lookup(void)
{
	struct imsg		m;
	struct lka_rcpt_req	req;
	struct lka_result	r;
	struct envelope		like;
	int			any = 0, rc;

	while (imsg_read(&lookup_ib) > 0)
		;
	while ((rc = imsg_get(&lookup_ib, &m)) == 1) {
		any = 1;
		CHECK(m.hdr.type == IMSG_LKA_RCPT && m.fd == -1);
		CHECK(m.len == sizeof(req));
		memcpy(&req, m.data, sizeof(req));
		CHECK(proto_valid_lka_rcpt_req(&req) == 0);
		/* requeue's ids: not bounce.c's, not report_mail.c's */
		CHECK((req.reqid & 0xc0000000U) == 0x40000000U);
		CHECK(strcmp(req.mailfrom.user, "alice") == 0);
		lookup_asked++;
		if (lookup_mode == LOOKUP_CLOSE)
			continue;
		memset(&like, 0, sizeof(like));
		like.dest_type = strcmp(req.rcpt.domain, "example.net") == 0 ?
		    DEST_REMOTE : DEST_MAILBOX;
		snprintf(like.action, sizeof(like.action), "%s",
		    like.dest_type == DEST_REMOTE ? "relay" : "local");
		if (like.dest_type != DEST_REMOTE)
			snprintf(like.user, sizeof(like.user), "%s",
			    req.rcpt.user);
		memset(&r, 0, sizeof(r));
		r.reqid = req.reqid;
		r.status = PROTO_OK;
		switch (lookup_mode) {
		case LOOKUP_SAME:
			lookup_dest(&req, &like, NULL);
			r.ndest = 1;
			break;
		case LOOKUP_NEW:
			lookup_dest(&req, &like, "moved");
			r.ndest = 1;
			break;
		case LOOKUP_TWO:
			lookup_dest(&req, &like, "one");
			lookup_dest(&req, &like, "two");
			r.ndest = 2;
			break;
		case LOOKUP_NONE:
			r.status = PROTO_PERMFAIL;
			snprintf(r.reply, sizeof(r.reply), "550 5.7.1 no");
			break;
		default:
			r.status = PROTO_TEMPFAIL;
			snprintf(r.reply, sizeof(r.reply), "451 4.3.0 later");
			break;
		}
		lookup_send(IMSG_LKA_RCPT_RESULT, &r, sizeof(r));
	}
	CHECK(rc == 0);
	if (any && lookup_mode == LOOKUP_CLOSE) {
		/* gone unanswered; a reload brings another */
		imsgbuf_clear(&lookup_ib);
		close(lookup_ib.fd);
		lookup_channel();
	}
	return any;
}

/* ---- control ---- */

struct answer {
	uint32_t	 reqid;
	int		 ended;
	uint32_t	 status;
	char		 text[8192];	/* the text replies, one per line */
	size_t		 tlen;
	char		 raw[8192];	/* the same, one after another */
	size_t		 rlen;
	size_t		 nentries;
	uint32_t	 uid;
};

static int
may_see(const struct known *k, uint32_t uid)
{
	return uid == 0 || (k->local && k->uid == uid);
}

static int
serve_control(struct answer *a)
{
	struct imsg		 m;
	struct ctl_reply	 r;
	struct ctl_queue_entry	 q;
	struct known		*k;
	size_t			 n;
	int			 any = 0, rc;

	while (imsg_read(&control_ib) > 0)
		;
	while ((rc = imsg_get(&control_ib, &m)) == 1) {
		any = 1;
		CHECK(m.fd == -1);
		CHECK(!a->ended);	/* the final reply comes last */
		CHECK(m.hdr.peerid == a->reqid);
		if (m.hdr.type == IMSG_CTL_QUEUE_ENTRY) {
			CHECK(m.len == sizeof(q));
			memcpy(&q, m.data, sizeof(q));
			CHECK(proto_valid_ctl_queue_entry(&q) == 0);
			CHECK(q.reqid == a->reqid);
			a->nentries++;
			if (learning) {
				for (n = 0; n < nknown; n++)
					if (strcmp(known[n].rcpt,
					    q.recipient) == 0)
						known[n].evpid = q.evpid;
				continue;
			}
			/* what the user may see, and its size */
			CHECK((k = known_find(q.evpid)) != NULL);
			CHECK(may_see(k, a->uid));
			CHECK(q.size == k->len);
			CHECK((q.state == CTL_QSTATE_INFLIGHT ||
			    q.state == CTL_QSTATE_REMOVING) ==
			    (flight_find(q.evpid) != NULL));
			/* held: with its reason; a reason: held */
			CHECK(q.state != CTL_QSTATE_HELD ||
			    strcmp(q.held, "smtpctl hold by fuzz") == 0);
			CHECK(q.held[0] == '\0' ||
			    q.state == CTL_QSTATE_HELD ||
			    q.state == CTL_QSTATE_INFLIGHT ||
			    q.state == CTL_QSTATE_REMOVING ||
			    q.state == CTL_QSTATE_BOUNCING);
			continue;
		}
		CHECK(m.hdr.type == IMSG_CTL_REPLY);
		CHECK(m.len == sizeof(r));
		memcpy(&r, m.data, sizeof(r));
		CHECK(proto_valid_ctl_reply(&r) == 0);
		CHECK(r.reqid == a->reqid);
		CHECK(r.status == 0 || r.status == 1);
		n = strlen(r.text);
		if (a->tlen + n + 1 < sizeof(a->text)) {
			memcpy(a->text + a->tlen, r.text, n);
			a->tlen += n;
			a->text[a->tlen++] = '\n';
			a->text[a->tlen] = '\0';
		}
		if (a->rlen + n + 1 < sizeof(a->raw)) {
			memcpy(a->raw + a->rlen, r.text, n);
			a->rlen += n;
			a->raw[a->rlen] = '\0';
		}
		/* show queue: one line per envelope the user may see */
		if (!learning && !r.end && n >= 17 && r.text[16] == '|') {
			uint64_t id = strtoull(r.text, NULL, 16);

			CHECK((k = known_find(id)) != NULL);
			CHECK(may_see(k, a->uid));
		}
		if (r.end) {
			a->ended = 1;
			a->status = r.status;
		}
	}
	CHECK(rc == 0);
	return any;
}

/* one turn of everything; 1 when anything moved */
static int
turn_once(struct answer *a)
{
	int	progress = 0;

	event_base_loop(ev_base, EVLOOP_NONBLOCK);
	progress |= serve_agent(&mta_ib, 1);
	progress |= serve_agent(&parent_ib, 0);
	progress |= serve_lookup();
	if (a != NULL)
		progress |= serve_control(a);
	return progress;
}

static void
settle(struct answer *a)
{
	int	turn;

	for (turn = 0; turn < LOOP_MAX; turn++)
		if (!turn_once(a) && (a == NULL || a->ended))
			return;
	CHECK(!"the queue did not settle");
}

static uint32_t	 reqids;
/* the next request picks by pattern (ctl.h CTL_MATCH_*), not by id */
static uint32_t	 next_match;
static const char *next_pattern = "";

static void
request(uint32_t cmd, uint32_t uid, uint64_t id, struct answer *a)
{
	struct ctl_request	req;

	memset(&req, 0, sizeof(req));
	req.reqid = ++reqids;
	req.cmd = cmd;
	req.uid = uid;
	req.id = id;
	snprintf(req.arg, sizeof(req.arg), "fuzz");
	req.match = next_match;
	snprintf(req.pattern, sizeof(req.pattern), "%s", next_pattern);
	next_match = CTL_MATCH_ID;
	next_pattern = "";
	CHECK(proto_valid_ctl_request(&req) == 0);
	memset(a, 0, sizeof(*a));
	a->reqid = req.reqid;
	a->uid = uid;
	if (imsg_compose(&control_ib, IMSG_CTL_REQUEST, req.reqid, -1, &req,
	    sizeof(req)) == -1 || imsg_flush(&control_ib) == -1)
		abort();
	settle(a);
	CHECK(a->ended);
	/* FUZZ_QUEUE_SHOW=1 obj-fuzz/fuzz_queue_control FILE: the dialog */
	if (getenv("FUZZ_QUEUE_SHOW") != NULL)
		fprintf(stderr, "> cmd %u uid %u id %016" PRIx64 ": %u, %zu "
		    "entries, %zu in flight\n%s", cmd, uid, id, a->status,
		    a->nentries, nflights, a->text);
}

/* "queue: N envelopes, M in flight" */
static void
check_status(struct answer *a, int *nenv)
{
	const char	*p;
	int		 n, m;

	request(CTL_SHOW_STATUS, 0, 0, a);
	CHECK((p = strstr(a->text, "queue: ")) != NULL);
	CHECK(sscanf(p, "queue: %d envelopes, %d in flight", &n, &m) == 2);
	CHECK(m == (int)nflights);
	CHECK(strstr(a->text, mta_paused ? "mta: paused" : "mta: running") !=
	    NULL);
	CHECK(strstr(a->text, mda_paused ? "mda: paused" : "mda: running") !=
	    NULL);
	if (nenv != NULL)
		*nenv = n;
}

/* show message: the message, a NUL shown as ^@ */
static void
check_message(const struct answer *a, const struct known *k)
{
	const char	*t = a->raw;
	size_t		 i, o = 0;

	for (i = 0; i < k->len; i++) {
		if (k->body[i] == '\0') {
			CHECK(o + 2 <= a->rlen && t[o] == '^' &&
			    t[o + 1] == '@');
			o += 2;
			continue;
		}
		CHECK(o < a->rlen && t[o] == k->body[i]);
		o++;
	}
	CHECK(o == a->rlen);
}

/* ---- the queue each input starts with ---- */

static void
add_message(const char *body, size_t len, struct envelope *evps, size_t n)
{
	uint32_t	msgid;
	size_t		i;
	int		fd;

	CHECK(queue_message_create(&msgid, &fd) == 0);
	CHECK(write(fd, body, len) == (ssize_t)len);
	CHECK(queue_message_commit(msgid, evps, n) == 0);
	close(fd);
	for (i = 0; i < n; i++) {
		addr_to_string(&evps[i].dest, known[nknown].rcpt,
		    sizeof(known[nknown].rcpt));
		known[nknown].uid = evps[i].uid;
		known[nknown].local = (evps[i].flags & EF_LOCAL) != 0;
		known[nknown].body = body;
		known[nknown].len = len;
		known[nknown].evpid = 0;	/* from the queue, below */
		nknown++;
	}
}

static void
mkevp(struct envelope *e, const char *rcpt, int remote, uint32_t uid)
{
	memset(e, 0, sizeof(*e));
	e->ctime = time(NULL);
	e->dest_type = remote ? DEST_REMOTE : DEST_MAILBOX;
	snprintf(e->sender.user, sizeof(e->sender.user), "alice");
	snprintf(e->sender.domain, sizeof(e->sender.domain), "example.org");
	snprintf(e->dest.user, sizeof(e->dest.user), "%s", rcpt);
	snprintf(e->dest.domain, sizeof(e->dest.domain), remote ?
	    "example.net" : "example.org");
	e->rcpt = e->dest;
	snprintf(e->action, sizeof(e->action), remote ? "relay" : "local");
	if (!remote)
		snprintf(e->user, sizeof(e->user), "%s", rcpt);
	/* no DSN: a failure or success would need lookup */
	e->flags = EF_NOTIFY_NEVER;
	if (uid != 0) {
		e->flags |= EF_LOCAL;
		e->uid = uid;
	}
}

static void
setup(void)
{
	struct envelope		evps[3];
	struct answer		a;
	size_t			i;

	nknown = 0;
	learning = 1;
	queue_fuzz_seed(0x706f737468617374ULL);
	mkevp(&evps[0], "bob", 1, 0);
	add_message(body_a, sizeof(body_a) - 1, evps, 1);
	mkevp(&evps[0], "carol", 1, 1000);
	mkevp(&evps[1], "dave", 1, 1000);
	mkevp(&evps[2], "\"e|v\\\"e\"", 1, 1000);
	add_message(body_big, sizeof(body_big), evps, 3);
	mkevp(&evps[0], "frank", 0, 0);
	add_message(body_c, sizeof(body_c) - 1, evps, 1);
	mkevp(&evps[0], "gina", 1, 1001);
	snprintf(evps[0].errorline, sizeof(evps[0].errorline),
	    "4.4.1 said \x01\x7f|\xff\\n \"x\"");
	mkevp(&evps[1], "h\xc3\xa9", 1, 1001);
	evps[1].flags |= EF_SMTPUTF8;
	add_message(body_d, sizeof(body_d) - 1, evps, 2);
	settle(NULL);
	/* a commit of our own is not scheduled at once: this schedules */
	request(CTL_RESUME_MTA, 0, 0, &a);

	/* the ids the queue gave them: the recipients say which is which */
	request(CTL_SHOW_QUEUE_ENTRIES, 0, 0, &a);
	CHECK(a.nentries == nknown);
	learning = 0;
	for (i = 0; i < nknown; i++)
		CHECK(known[i].evpid != 0);
	for (i = 0; i < nflights; i++)
		CHECK(known_find(flights[i].evpid) != NULL);
}

/* after the input: everything goes, and nothing is left on the spool */
static void
teardown(void)
{
	struct answer	 a;
	struct dirent	*de;
	char		 path[128];
	DIR		*d;
	int		 n;

	request(CTL_REMOVE, 0, 0, &a);
	while (nflights > 0)
		agent_answer(0, PROTO_OK, "2.0.0 ok", 8);
	settle(NULL);
	mta_paused = 0;
	request(CTL_RESUME_MTA, 0, 0, &a);
	mda_paused = 0;
	request(CTL_RESUME_MDA, 0, 0, &a);
	check_status(&a, &n);
	CHECK(n == 0);
	request(CTL_SHOW_QUEUE_ENTRIES, 0, 0, &a);
	CHECK(a.nentries == 0);
	snprintf(path, sizeof(path), "%s/queue", spooldir);
	CHECK((d = opendir(path)) != NULL);
	while ((de = readdir(d)) != NULL)
		CHECK(de->d_name[0] == '.');
	closedir(d);
	snprintf(path, sizeof(path), "%s/incoming", spooldir);
	CHECK((d = opendir(path)) != NULL);
	while ((de = readdir(d)) != NULL)
		CHECK(de->d_name[0] == '.');
	closedir(d);
	nknown = 0;
}

/* what control keeps for itself and never passes on */
static int
control_own(uint32_t cmd)
{
	return cmd == CTL_SUBMIT || cmd == CTL_UPDATE_TABLE ||
	    cmd == CTL_PAUSE_SMTP || cmd == CTL_RESUME_SMTP ||
	    cmd == CTL_LOG_VERBOSE || cmd == CTL_LOG_BRIEF;
}

static int
user_may(uint32_t cmd)
{
	return cmd == CTL_SHOW_QUEUE || cmd == CTL_SHOW_QUEUE_ENTRIES ||
	    cmd == CTL_SHOW_STATS || cmd == CTL_SHOW_STATUS;
}

static void
one_request(const uint8_t *data, size_t size, size_t *ip, uint8_t op)
{
	static const uint32_t	 uids[4] = { 0, 1000, 1001, 4242 };
	struct answer		 a;
	struct known		*k = NULL;
	uint32_t		 cmd = op % (CTL_RELEASE + 1);
	uint32_t		 uid;
	uint64_t		 id = 0;
	uint8_t			 b;
	size_t			 sel, j;
	int			 nrq = 0, nun = 0;

	(void)k;
	/* CTL_NONE (the queue's "unknown command") stands for requeue,
	 * and its next byte says how lookup answers */
	if (cmd == CTL_NONE) {
		cmd = CTL_REQUEUE;
		lookup_mode = (*ip < size ? data[(*ip)++] : 0) % LOOKUP_MODES;
		lookup_asked = 0;
	}
	b = *ip < size ? data[(*ip)++] : 0;
	sel = b & 0x0f;

	if (control_own(cmd))
		return;
	if (sel >= 1 && sel <= 8) {
		k = &known[(sel - 1) % nknown];
		id = k->evpid;
	} else if (sel >= 9 && sel <= 12) {
		k = &known[(sel - 9) * 2 % nknown];
		id = msgid_of(k->evpid);
	} else if (sel == 13) {
		for (j = 0; j < 8 && *ip < size; j++)
			id = id << 8 | data[(*ip)++];
	} else if (sel == 0 && *ip < size && (data[*ip] & 0x80) &&
	    cmd >= CTL_SCHEDULE && cmd != CTL_SHOW_MESSAGE_BODY) {
		/* from/to PATTERN: globs, broken ones too, and case */
		static const char *const pats[8] = { "*", "", "*@*", "[a-",
		    "*\\", "?*", "*@EXAMPLE.NET", "[c-e]*@*" };
		uint8_t	pb = data[(*ip)++];

		next_match = (pb & 1) ? CTL_MATCH_RCPT : CTL_MATCH_SENDER;
		next_pattern = pats[(pb >> 1) & 7];
	} else if (sel == 14)
		id = 0xdeadbeef00000001ULL;
	else if (sel == 15)
		id = 0x7fffffff;
	uid = user_may(cmd) ? uids[(b >> 4) & 3] : 0;
	if ((b >> 6) == 0)
		uid = 0;
	/* a resume sends what waited in the same turn as its reply */
	if (cmd == CTL_PAUSE_MTA || cmd == CTL_RESUME_MTA)
		mta_paused = cmd == CTL_PAUSE_MTA;
	if (cmd == CTL_PAUSE_MDA || cmd == CTL_RESUME_MDA)
		mda_paused = cmd == CTL_PAUSE_MDA;
	request(cmd, uid, id, &a);

	switch (cmd) {
	case CTL_SHOW_ENVELOPE:
		if (a.status == 0) {
			struct envelope	evp;

			/* the dump as stored, then an empty end */
			CHECK(envelope_load(a.raw, a.rlen, &evp) == 0);
			CHECK(evp.id == id);
			CHECK(!(evp.flags & EF_HOLD) ||
			    strcmp(evp.hold_reason, "smtpctl hold by fuzz") ==
			    0);
		}
		break;
	case CTL_HOLD:
	case CTL_RELEASE:
		/* "all" never fails (tmpfs: every write works), an
		 * envelope that never was always does */
		if (id == 0)
			CHECK(a.status == 0);
		if (sel == 14)
			CHECK(a.status == 1);
		break;
	case CTL_SHOW_MESSAGE:
		if (a.status == 0) {
			for (j = 0; j < nknown; j++)
				if (known[j].evpid == id ||
				    msgid_of(known[j].evpid) == id)
					break;
			CHECK(j < nknown);
			check_message(&a, &known[j]);
		}
		break;
	case CTL_SHOW_STATUS:
		check_status(&a, NULL);
		break;
	case CTL_REQUEUE:
		if (a.status == 1 && strstr(a.text, "no such envelope")) {
			CHECK(id != 0 && lookup_asked == 0);
			break;
		}
		/* tmpfs: every write works */
		CHECK(a.status == 0);
		CHECK(sscanf(a.text, "%d requeued, %d unchanged", &nrq,
		    &nun) == 2);
		CHECK(nrq >= 0 && nun >= 0 && (size_t)nrq <= lookup_asked);
		if (lookup_mode >= LOOKUP_TWO)
			CHECK(nrq == 0);
		/* one envelope, re-routed: show envelope has its new address */
		if (nrq == 1 && sel >= 1 && sel <= 8) {
			struct envelope	evp;

			request(CTL_SHOW_ENVELOPE, 0, id, &a);
			CHECK(a.status == 0);
			CHECK(envelope_load(a.raw, a.rlen, &evp) == 0);
			CHECK(lookup_mode != LOOKUP_NEW ||
			    strcmp(evp.dest.user, "moved") == 0);
		}
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 inited;
	size_t		 i = 0, len;
	uint8_t		 op;

	if (!inited) {
		init();
		inited = 1;
	}
	if (size > 4096)
		return 0;
	setup();
	while (i < size) {
		op = data[i++];
		if (op < 0xc0) {
			one_request(data, size, &i, op);
			continue;
		}
		/* an agent answers one of the deliveries it holds */
		len = (size_t)((op >> 1) & 0x1f);
		if (len > size - i)
			len = size - i;
		/* the first byte says which, the rest is the text */
		if (nflights > 0 && len > 0) {
			agent_answer(data[i] % nflights, (op & 1) ?
			    PROTO_TEMPFAIL : PROTO_OK,
			    (const char *)data + i + 1, len - 1);
			settle(NULL);
		}
		i += len;
	}
	teardown();
	return 0;
}
