/*
 * fuzz_lmtp.c -- libFuzzer harness for the LMTP client (mda_lmtp.c):
 * a whole delivery, mda_lmtp_deliver(), against a server whose replies
 * are the fuzzer's (greeting, LHLO capabilities, pipelined and
 * multi-line replies, short reads, a server that hangs up anywhere).
 *
 * The server is a thread on a Unix socket of a scratch directory: it
 * accepts, writes the reply script, shuts its side for writing and
 * keeps the connection until the delivery returns; what the client sent
 * is then read back.  Byte 0 of the input is the length of the message
 * (LF line ends, as in the spool); the message follows; the rest is the
 * script.
 *
 * Beyond "does not crash": the result is OK, TEMPFAIL or PERMFAIL with
 * a printable text that starts with a DSN status of the same class
 * (2, 4 or 5); and when the server accepted the message, the data the
 * client sent, undone (dot-unstuffing, CRLF to LF), is the message.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

#include "config.h"
#include "envelope.h"
#include "log.h"
#include "proc.h"
#include "mda_proc.h"
#include "proto.h"

static char		 sockpath[108];
static char		 sockdir[64];
static int		 lfd = -1;

/* the scratch directory goes when libFuzzer is done */
static void
cleanup(void)
{
	unlink(sockpath);
	rmdir(sockdir);
}

struct server {
	const uint8_t	*script;
	size_t		 len;
	int		 stop[2];	/* main -> thread: no one is coming */
	int		 conn;		/* accepted, or -1 */
};

static void *
server_run(void *arg)
{
	struct server	*sv = arg;
	struct pollfd	 pfd[2];
	size_t		 off = 0;
	ssize_t		 w;

	pfd[0].fd = lfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = sv->stop[0];
	pfd[1].events = POLLIN;
	if (poll(pfd, 2, 10000) <= 0 || !(pfd[0].revents & POLLIN))
		return NULL;
	if ((sv->conn = accept(lfd, NULL, NULL)) == -1)
		return NULL;
	while (off < sv->len) {
		w = send(sv->conn, sv->script + off, sv->len - off,
		    MSG_NOSIGNAL);
		if (w <= 0)
			break;		/* the client hung up */
		off += (size_t)w;
	}
	shutdown(sv->conn, SHUT_WR);
	return NULL;
}

static void
init(void)
{
	struct sockaddr_un	 sun;
	struct action		*a;

	signal(SIGPIPE, SIG_IGN);
	log_init(0, 0);
	if ((conf = config_default()) == NULL)
		abort();
	snprintf(conf->hostname, sizeof(conf->hostname), "mx.example.org");
	snprintf(sockdir, sizeof(sockdir), "/tmp/posthaste-fuzz-lmtp-XXXXXX");
	if (mkdtemp(sockdir) == NULL)
		abort();
	snprintf(sockpath, sizeof(sockpath), "%s/lmtp.sock", sockdir);
	atexit(cleanup);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		abort();
	snprintf(a->name, sizeof(a->name), "lmtp");
	a->type = ACTION_LMTP;
	snprintf(a->path, sizeof(a->path), "%s", sockpath);
	TAILQ_INSERT_TAIL(&conf->actions, a, entry);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sockpath);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(lfd, 4) == -1)
		abort();
	mda_lmtp_init();
}

static void
check_result(const struct delivery_result *res)
{
	const char	*t = res->text;
	char		 want;
	size_t		 i;

	CHECK(memchr(res->text, '\0', sizeof(res->text)) != NULL);
	CHECK(res->status == PROTO_OK || res->status == PROTO_TEMPFAIL ||
	    res->status == PROTO_PERMFAIL);
	want = res->status == PROTO_OK ? '2' :
	    res->status == PROTO_TEMPFAIL ? '4' : '5';
	CHECK(t[0] == want && t[1] == '.');
	CHECK(t[2] >= '0' && t[2] <= '9');
	for (i = 0; t[i]; i++)
		CHECK((unsigned char)t[i] >= 0x20 && t[i] != 0x7f);
}

/* what the client sent after DATA, undone, must be the message */
static void
check_data(const char *sent, size_t slen, const uint8_t *msg, size_t mlen)
{
	const char	*p, *end;
	char		*out;
	size_t		 o = 0;
	int		 bol = 1;

	if (memchr(msg, '\r', mlen) != NULL)
		return;		/* a CR of the message is not ours to undo */
	if ((p = memmem(sent, slen, "DATA\r\n", 6)) == NULL)
		CHECK(!"accepted without DATA");
	p += 6;
	end = sent + slen;
	if ((out = malloc(slen + 2)) == NULL)
		return;
	for (;;) {
		const char *nl = memmem(p, (size_t)(end - p), "\r\n", 2);

		CHECK(nl != NULL);	/* the data ends in CRLF.CRLF */
		if (nl - p == 1 && p[0] == '.')
			break;
		if (bol && p < nl && p[0] == '.') {
			CHECK(nl - p >= 2 && p[1] == '.');
			p++;
		}
		memcpy(out + o, p, (size_t)(nl - p));
		o += (size_t)(nl - p);
		out[o++] = '\n';
		p = nl + 2;
	}
	/* a message without a last LF got one */
	if (mlen > 0 && msg[mlen - 1] != '\n') {
		CHECK(o == mlen + 1 && out[mlen] == '\n');
		o--;
	}
	CHECK(o == mlen && memcmp(out, msg, mlen) == 0);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 inited;
	static char		 sent[256 * 1024];
	struct server		 sv;
	struct envelope		 evp;
	struct delivery_result	 res;
	pthread_t		 th;
	size_t			 mlen, slen = 0;
	ssize_t			 n;
	int			 msgfd;

	if (!inited) {
		init();
		inited = 1;
	}
	if (size < 1 || size > 64 * 1024)
		return 0;
	mlen = data[0];
	if (mlen > size - 1)
		mlen = size - 1;
	if ((msgfd = memfd_create("msg", MFD_CLOEXEC)) == -1)
		abort();
	if (mlen > 0 && write(msgfd, data + 1, mlen) != (ssize_t)mlen)
		abort();

	memset(&sv, 0, sizeof(sv));
	sv.script = data + 1 + mlen;
	sv.len = size - 1 - mlen;
	sv.conn = -1;
	if (pipe(sv.stop) == -1)
		abort();
	if (pthread_create(&th, NULL, server_run, &sv) != 0)
		abort();

	memset(&evp, 0, sizeof(evp));
	snprintf(evp.sender.user, sizeof(evp.sender.user), "alice");
	snprintf(evp.sender.domain, sizeof(evp.sender.domain), "example.org");
	snprintf(evp.dest.user, sizeof(evp.dest.user), "bob");
	snprintf(evp.dest.domain, sizeof(evp.dest.domain), "example.net");
	evp.rcpt = evp.dest;
	evp.flags = EF_8BITMIME;
	evp.body_size = (int64_t)mlen;
	memset(&res, 0xa5, sizeof(res));
	res.text[sizeof(res.text) - 1] = '\0';
	mda_lmtp_deliver(sockpath, &evp, msgfd, &res);

	if (write(sv.stop[1], "x", 1) != 1)
		abort();
	pthread_join(th, NULL);
	close(sv.stop[0]);
	close(sv.stop[1]);
	close(msgfd);
	check_result(&res);
	if (sv.conn != -1) {
		/* the client is done: what it sent is all in the socket */
		(void)fcntl(sv.conn, F_SETFL, O_NONBLOCK);
		while (slen < sizeof(sent) && (n = read(sv.conn, sent + slen,
		    sizeof(sent) - slen)) > 0)
			slen += (size_t)n;
		/* nothing before a greeting, and LHLO first */
		CHECK(slen == 0 || (slen >= 5 && memcmp(sent, "LHLO ", 5) ==
		    0));
		if (res.status == PROTO_OK)
			check_data(sent, slen, data + 1, mlen);
		close(sv.conn);
	}
	return 0;
}
