/*
 * fuzz_control.c -- libFuzzer harness for the control process
 * (control/control.c): what any local user may write to smtpctl's socket.
 *
 * The seam is control_fuzz_start() (smtpd.h, compiled only under
 * -DPOSTHASTE_FUZZ): control_main() without the privilege drop, the
 * sandbox and its loop.  The harness listens on a Unix socket of a
 * scratch directory, connects as a client, writes the input, turns the
 * event loop a bounded number of times, and plays the queue (each
 * request is answered with one final reply) and the parent (a table
 * lookup: "not found").
 *
 * Input: byte 0 chooses raw mode (odd: the bytes go to the socket as
 * they are, imsg framing and all) or request mode (even: each request is
 * a command byte and an argument up to a NUL, framed as smtpctl does);
 * byte 1 is the size of the pieces written (0: at once).
 *
 * Beyond "does not crash" (a fatal() on client input would end the
 * process, which libFuzzer reports): what reaches the queue is a valid
 * request stamped with the kernel's uid and the client's id; the client
 * gets only well-formed replies of the three reply types; and once the
 * client hangs up, control holds no client any more.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fuzz.h"

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "mproc.h"
#include "proto.h"
#include "queue.h"
#include "proc.h"

#define LOOP_MAX	2000

static struct imsgbuf	parent_ib, queue_ib;
static struct sockaddr_un sun;
static char		sockdir[64];

/* the scratch directory goes when libFuzzer is done */
static void
cleanup(void)
{
	unlink(sun.sun_path);
	rmdir(sockdir);
}

static void
init(void)
{
	struct table	*t;
	int		 pa[2], qu[2], lfd;

	signal(SIGPIPE, SIG_IGN);
	log_init(0, 0);
	if ((conf = config_default()) == NULL)
		abort();
	/* a table "t", for smtpctl table lookup to reach the parent */
	if ((t = calloc(1, sizeof(*t))) == NULL)
		abort();
	snprintf(t->name, sizeof(t->name), "t");
	t->backend = TABLE_INLINE;
	TAILQ_INSERT_TAIL(&conf->tables, t, entry);
	if ((ev_base = event_base_new()) == NULL)
		abort();
	snprintf(sockdir, sizeof(sockdir), "/tmp/posthaste-fuzz-ctl-XXXXXX");
	if (mkdtemp(sockdir) == NULL)
		abort();
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/ctl.sock", sockdir);
	atexit(cleanup);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pa) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, qu) == -1 ||
	    (lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(lfd, 16) == -1)
		abort();
	imsgbuf_init(&parent_ib, pa[1]);
	imsgbuf_init(&queue_ib, qu[1]);
	control_fuzz_start(pa[0], qu[0], lfd);
}

/* the queue: check each request, answer it with one final reply */
static int
serve_queue(void)
{
	struct imsg		m;
	struct ctl_request	req;
	struct ctl_reply	r;
	int			any = 0, rc;

	while (imsg_read(&queue_ib) > 0)
		;
	while ((rc = imsg_get(&queue_ib, &m)) == 1) {
		any = 1;
		CHECK(m.hdr.type == IMSG_CTL_REQUEST);
		CHECK(m.len == sizeof(req) && m.fd == -1);
		memcpy(&req, m.data, sizeof(req));
		CHECK(proto_valid_ctl_request(&req) == 0);
		CHECK(req.uid == (uint32_t)getuid());
		CHECK(req.reqid != 0 && m.hdr.peerid == req.reqid);
		memset(&r, 0, sizeof(r));
		r.reqid = req.reqid;
		r.end = 1;
		snprintf(r.text, sizeof(r.text), "done %u", req.cmd);
		if (imsg_compose(&queue_ib, IMSG_CTL_REPLY, 0, -1, &r,
		    sizeof(r)) == -1)
			abort();
	}
	CHECK(rc == 0);
	(void)imsg_flush_nb(&queue_ib);
	return any;
}

static int
serve_parent(void)
{
	struct imsg	m;
	int		any = 0, rc;

	while (imsg_read(&parent_ib) > 0)
		;
	while ((rc = imsg_get(&parent_ib, &m)) == 1) {
		any = 1;
		CHECK(m.hdr.type == IMSG_SMTP_LOCAL ||
		    m.hdr.type == IMSG_LKA_UPDATE_TABLE ||
		    m.hdr.type == IMSG_PAUSE || m.hdr.type == IMSG_RESUME ||
		    m.hdr.type == IMSG_CTL_REQUEST ||
		    m.hdr.type == IMSG_CTL_TABLE_LOOKUP);
		CHECK((m.fd != -1) == (m.hdr.type == IMSG_SMTP_LOCAL));
		if (m.fd != -1)
			close(m.fd);
		if (m.hdr.type == IMSG_CTL_TABLE_LOOKUP) {
			/* smtpctl table lookup: lookup's answer, "not found" */
			struct ctl_table_lookup	 req;
			static struct ctl_table_result r;

			CHECK(m.len == sizeof(req));
			memcpy(&req, m.data, sizeof(req));
			CHECK(proto_valid_ctl_table_lookup(&req) == 0);
			memset(&r, 0, sizeof(r));
			r.reqid = req.reqid;
			r.status = CTL_TABLE_NOTFOUND;
			if (imsg_compose(&parent_ib, IMSG_CTL_TABLE_RESULT, 0,
			    -1, &r, sizeof(r)) == -1)
				abort();
		}
		if (m.hdr.type == IMSG_CTL_REQUEST) {
			/* show milters, the one request the parent answers */
			struct ctl_request	req;
			struct ctl_reply	r;

			CHECK(m.len == sizeof(req));
			memcpy(&req, m.data, sizeof(req));
			CHECK(proto_valid_ctl_request(&req) == 0);
			CHECK(req.cmd == CTL_SHOW_MILTERS);
			memset(&r, 0, sizeof(r));
			r.reqid = req.reqid;
			r.end = 1;
			if (imsg_compose(&parent_ib, IMSG_CTL_REPLY, 0, -1,
			    &r, sizeof(r)) == -1)
				abort();
		}
	}
	(void)imsg_flush_nb(&parent_ib);
	CHECK(rc == 0);
	return any;
}

/* what control said to the client: well-formed replies only */
static int
client_read(struct imsgbuf *ib, int *eof)
{
	struct imsg	m;
	ssize_t		n;
	int		any = 0, rc;

	while ((n = imsg_read(ib)) > 0)
		any = 1;
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		*eof = 1;
	while ((rc = imsg_get(ib, &m)) == 1) {
		CHECK(m.fd == -1);
		if (m.hdr.type == IMSG_CTL_REPLY) {
			struct ctl_reply r;

			CHECK(m.len == sizeof(r));
			memcpy(&r, m.data, sizeof(r));
			CHECK(proto_valid_ctl_reply(&r) == 0);
		} else if (m.hdr.type == IMSG_CTL_TABLE_RESULT) {
			static struct ctl_table_result r;

			CHECK(m.len == sizeof(r));
			memcpy(&r, m.data, sizeof(r));
			CHECK(proto_valid_ctl_table_result(&r) == 0);
		} else {
			CHECK(m.hdr.type == IMSG_CTL_QUEUE_ENTRY);
			CHECK(m.len == sizeof(struct ctl_queue_entry));
		}
	}
	CHECK(rc == 0);
	return any;
}

/* smtpctl table lookup: "TABLE SERVICE KEY" in arg */
static void
frame_table_lookup(struct imsgbuf *ib, const char *arg)
{
	struct ctl_table_lookup	 tl;
	char			*fields[3] = { tl.table, tl.service, tl.key };
	size_t			 sizes[3] = { sizeof(tl.table),
				    sizeof(tl.service), sizeof(tl.key) };
	size_t			 f = 0, n = 0;

	memset(&tl, 0, sizeof(tl));
	for (; *arg != '\0'; arg++) {
		if (*arg == ' ' && f < 2) {
			f++;
			n = 0;
		} else if (n < sizes[f] - 1)
			fields[f][n++] = *arg;
	}
	if (imsg_compose(ib, IMSG_CTL_TABLE_LOOKUP, 0, -1, &tl,
	    sizeof(tl)) == -1)
		abort();
}

/*
 * request mode: each request a command byte and its argument (0xff:
 * smtpctl table lookup)
 */
static size_t
frame_requests(const uint8_t *data, size_t size, uint8_t *out, size_t cap)
{
	struct imsgbuf		ib;
	struct ctl_request	req;
	struct imsg_chunk	*c;
	size_t			i = 0, o = 0, n;
	int			sv[2], table;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	imsgbuf_init(&ib, sv[0]);
	while (i < size) {
		memset(&req, 0, sizeof(req));
		table = data[i] == 0xff;
		req.cmd = data[i++] % (CTL_RELEASE + 1);
		req.uid = 0;	/* a lie control must not believe */
		for (n = 0; i < size && data[i] != '\0' &&
		    n < sizeof(req.arg) - 1; n++)
			req.arg[n] = (char)data[i++];
		if (i < size)
			i++;	/* the NUL */
		if (table) {
			frame_table_lookup(&ib, req.arg);
			continue;
		}
		if (imsg_compose(&ib, IMSG_CTL_REQUEST, 0, -1, &req,
		    sizeof(req)) == -1)
			abort();
	}
	TAILQ_FOREACH(c, &ib.wq, entry) {
		n = c->len - c->off;
		if (o + n > cap)
			break;
		memcpy(out + o, c->data + c->off, n);
		o += n;
	}
	imsgbuf_clear(&ib);
	close(sv[0]);
	close(sv[1]);
	return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 inited;
	static uint8_t		 framed[1024 * 1024];
	struct imsgbuf		 cib;
	const uint8_t		*in;
	size_t			 len, off = 0, chunk;
	int			 fd, turn, turns, eof = 0, idle = 0, closed = 0;

	if (!inited) {
		init();
		inited = 1;
	}
	/* 8 KB: some 25 requests, written a byte at a time at worst */
	if (size < 2 || size > 8 * 1024)
		return 0;
	chunk = data[1] ? data[1] : size;
	if (data[0] & 1) {
		in = data + 2;
		len = size - 2;
	} else {
		len = frame_requests(data + 2, size - 2, framed,
		    sizeof(framed));
		in = framed;
	}
	/* the writing takes its turns; then a bounded number more */
	turns = LOOP_MAX + (int)(len / chunk);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		abort();
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		abort();
	imsgbuf_init(&cib, fd);
	for (turn = 0; turn < turns; turn++) {
		int	progress = 0;

		if (!closed && off < len) {
			size_t	n = len - off < chunk ? len - off : chunk;
			ssize_t	w = write(fd, in + off, n);

			if (w > 0) {
				off += (size_t)w;
				progress = 1;
			} else if (w == -1 && errno != EAGAIN)
				off = len;	/* dropped */
		}
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		progress |= serve_queue();
		progress |= serve_parent();
		if (!closed)
			progress |= client_read(&cib, &eof);
		if (progress) {
			idle = 0;
			continue;
		}
		if (++idle < 4)
			continue;
		if (closed && control_fuzz_nclients() == 0)
			break;
		if (!closed) {
			/* all said (or dropped): hang up */
			imsgbuf_clear(&cib);
			close(fd);
			closed = 1;
			idle = 0;
		}
	}
	if (!closed) {
		imsgbuf_clear(&cib);
		close(fd);
	}
	CHECK(turn < turns);
	CHECK(control_fuzz_nclients() == 0);
	return 0;
}
