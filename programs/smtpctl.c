/*
 * smtpctl.c -- control a running smtpd over its control socket.
 *
 * What the daemon sends is printed through ctl_format.c (show queue),
 * ctl_qshape.c (show qshape, counted from show queue's entries) or json.c
 * (-j): never a field pasted into output by hand, since the fields hold
 * what senders and remote servers chose.
 *
 * The folder programs/ holds the user programs, apart from the daemon:
 * smtpctl.c, sendmail.c (also mailq and newaliases) and makemap.c.  They
 * speak to the daemon only through the control socket (common/ctl.h,
 * common/submit.c) and share no memory with it.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl_dkim.h"
#include "ctl_format.h"
#include "ctl_milter.h"
#include "ctl_qshape.h"
#include "ctl_spf.h"
#include "envelope.h"
#include "imsg.h"
#include "json.h"
#include "platform.h"
#include "proto.h"
#include "ctl.h"

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr,
	    "usage: smtpctl [-s socket] [-f config] command [argument]\n"
	    "commands:\n"
	    "  show queue [-j]          show status | stats [-j]\n"
	    "  show milters [-j]\n"
	    "  show message [-e] [-h] ID\n"
	    "  show envelope ID         show qshape [-s] [STATE]\n"
	    "  monitor\n"
	    "  schedule ID|all|from PATTERN|to PATTERN|domain DOMAIN\n"
	    "  remove ID|all|from PATTERN|to PATTERN|domain DOMAIN\n"
	    "  hold ID|all|from PATTERN|to PATTERN|domain DOMAIN\n"
	    "  release ID|all|from PATTERN|to PATTERN|domain DOMAIN\n"
	    "  requeue ID|all|from PATTERN|to PATTERN|domain DOMAIN\n"
	    "  pause envelope ID|all    resume envelope ID|all\n"
	    "  pause mda|mta|smtp       resume mda|mta|smtp\n"
	    "  log verbose|brief        update table NAME\n"
	    "  table lookup NAME SERVICE KEY\n"
	    "  show metrics             show limits\n"
	    "  reload\n"
	    "  encrypt [password]       print a SHA-512-crypt hash\n"
	    "  dkim keygen [-t rsa|ed25519] [-b bits] -d domain -s selector "
	    "-o keyfile\n"
	    "  check spf [-H] [-t seconds] IP HELO SENDER\n"
	    "  dmarc report now         tlsrpt report now\n");
	exit(64);
}

static int
parse_id(const char *s, uint64_t *id)
{
	char	*end;

	if (strcmp(s, "all") == 0) {
		*id = 0;
		return 0;
	}
	errno = 0;
	*id = strtoull(s, &end, 16);
	if (errno || *end || *s == '\0' || *id == 0 ||
	    (strlen(s) != 8 && strlen(s) != 16))
		return -1;
	return 0;
}

/*
 * Which envelopes schedule, remove, hold, release and requeue act on:
 * ID|all, "from PATTERN", "to PATTERN" (globs, ctl.h), or "domain
 * DOMAIN", the recipients "*@DOMAIN" (schedule domain: Postfix's flush
 * of a site).
 */
static void
parse_select(int argc, char **argv, struct ctl_request *req)
{
	const char	*what = argv[0];
	int		 n;

	if (argc == 1) {
		if (parse_id(what, &req->id) == -1) {
			fprintf(stderr, "smtpctl: invalid id: %s\n", what);
			exit(64);
		}
		return;
	}
	if (argc != 2)
		usage();
	if (strcmp(what, "from") == 0)
		req->match = CTL_MATCH_SENDER;
	else if (strcmp(what, "to") == 0 || strcmp(what, "domain") == 0)
		req->match = CTL_MATCH_RCPT;
	else
		usage();
	if (what[0] == 'd' && (argv[1][0] == '\0' ||
	    strchr(argv[1], '@') != NULL)) {
		fprintf(stderr, "smtpctl: invalid domain: %s\n", argv[1]);
		exit(64);
	}
	n = snprintf(req->pattern, sizeof(req->pattern), "%s%s",
	    what[0] == 'd' ? "*@" : "", argv[1]);
	if (n < 0 || (size_t)n >= sizeof(req->pattern)) {
		fprintf(stderr, "smtpctl: pattern too long\n");
		exit(64);
	}
}

/* the socket named in the configuration, when -s is not given */
static void
socket_from_config(const char *path, char *out, size_t len)
{
	FILE	*fp;
	char	 line[1200], *p, *q;

	snprintf(out, len, "%s", SMTPD_SOCKET_DEFAULT);
	if ((fp = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL) {
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		if (strncmp(p, "socket", 6) != 0 || (p[6] != ' ' &&
		    p[6] != '\t'))
			continue;
		for (p += 6; *p == ' ' || *p == '\t' || *p == '"'; p++)
			;
		for (q = p; *q && *q != '"' && *q != '\n' && *q != ' '; q++)
			;
		*q = '\0';
		snprintf(out, len, "%s", p);
	}
	fclose(fp);
}

/*
 * "smtpctl encrypt [password]": a SHA-512-crypt hash for a credentials
 * table.  Without an argument the password is read from standard input
 * (one line), which keeps it out of ps(1) and shell history.
 */
static int
encrypt_password(const char *arg)
{
	char		 buf[1024];
	char		 salt[PLATFORM_CRYPT_SETTING_MAX];
	const char	*pw = arg, *h;

	if (pw == NULL) {
		if (fgets(buf, sizeof(buf), stdin) == NULL) {
			fprintf(stderr, "smtpctl: no password on standard "
			    "input\n");
			return 1;
		}
		buf[strcspn(buf, "\r\n")] = '\0';
		pw = buf;
	}
	if (*pw == '\0') {
		fprintf(stderr, "smtpctl: empty password\n");
		return 1;
	}
	if (platform_crypt_setting("$6$", salt, sizeof(salt)) == -1) {
		fprintf(stderr, "smtpctl: crypt_gensalt: %s\n",
		    strerror(errno));
		return 1;
	}
	if ((h = platform_crypt(pw, salt)) == NULL || h[0] == '*') {
		fprintf(stderr, "smtpctl: crypt failed\n");
		return 1;
	}
	printf("%s\n", h);
	explicit_bzero(buf, sizeof(buf));
	platform_crypt_wipe();
	return 0;
}

enum out_mode { OUT_LINES, OUT_RAW, OUT_QUEUE, OUT_QUEUE_JSON, OUT_STATS,
	OUT_MILTERS, OUT_MILTERS_JSON, OUT_ENTRIES, OUT_HEADERS };

/* OUT_ENTRIES: each envelope of show queue to a function of the caller */
struct entry_sink {
	int	(*fn)(const struct ctl_queue_entry *, void *);
	void	*arg;
};

static int
ctl_connect(const char *sock)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "smtpctl: socket path too long\n");
		exit(64);
	}
	memcpy(sun.sun_path, sock, strlen(sock));
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "smtpctl: cannot connect to %s: %s (is smtpd "
		    "running?)\n", sock, strerror(errno));
		exit(69);
	}
	return fd;
}

struct stats {
	char	key[32][64];
	long long val[32];
	int	n;
};

/* a finished JSON document on a line of its own, or an error */
static void
print_json(struct json *j)
{
	const char	*doc;
	size_t		 len;

	if ((doc = json_finish(j, &len)) == NULL) {
		fprintf(stderr, "smtpctl: cannot build the JSON output\n");
		exit(70);
	}
	fwrite(doc, 1, len, stdout);
	fputc('\n', stdout);
	json_free(j);
}

static void
print_milter(const struct ctl_milter *m, int json)
{
	struct json	j;

	if (!json) {
		ctl_milter_text(stdout, m);
		return;
	}
	json_init(&j);
	ctl_milter_json(&j, m);
	print_json(&j);
}

static void
print_queue_entry(const struct ctl_queue_entry *q, int json)
{
	struct json	j;

	if (!json) {
		ctl_queue_entry_text(stdout, q);
		return;
	}
	json_init(&j);
	ctl_queue_entry_json(&j, q);
	print_json(&j);
}

/* smtpctl show stats -j: one object, a member per counter */
static void
print_stats_json(const struct stats *st)
{
	struct json	j;
	int		i;

	json_init(&j);
	json_object_begin(&j);
	for (i = 0; i < st->n; i++)
		json_kv_int(&j, st->key[i], st->val[i]);
	json_object_end(&j);
	print_json(&j);
}

/*
 * show message -h: the message's text up to the empty line that ends its
 * header (LF or CRLF), across the chunks of one message
 */
static void
print_headers(const char *text)
{
	static int	done, bol = 1, cr;

	for (; *text != '\0' && !done; text++) {
		if (bol && *text == '\n') {
			done = 1;
			break;
		}
		if (bol && *text == '\r' && !cr) {
			cr = 1;
			continue;
		}
		if (cr) {
			cr = 0;
			if (*text == '\n') {
				done = 1;
				break;
			}
			fputc('\r', stdout);
		}
		fputc(*text, stdout);
		bol = *text == '\n';
	}
}

/*
 * One request, its replies printed as asked; -1 when the daemon said
 * something failed.  OUT_STATS collects key=value replies in arg (a
 * struct stats), OUT_ENTRIES gives show queue's to arg's function.
 */
static int
ctl_call(const char *sock, const struct ctl_request *req, enum out_mode mode,
    void *arg)
{
	struct stats		*st = mode == OUT_STATS ? arg : NULL;
	struct entry_sink	*sink = mode == OUT_ENTRIES ? arg : NULL;
	struct imsgbuf		ib;
	struct imsg		m;
	struct ctl_reply	r;
	struct ctl_queue_entry	q;
	struct ctl_milter	mi;
	ssize_t			n;
	int			fd, failed = 0, nmilters = 0;

	fd = ctl_connect(sock);
	imsgbuf_init(&ib, fd);
	if (imsg_compose(&ib, IMSG_CTL_REQUEST, 0, -1, req, sizeof(*req)) ==
	    -1 || imsg_flush(&ib) == -1) {
		perror("smtpctl: write");
		exit(74);
	}
	for (;;) {
		if ((n = imsg_read(&ib)) == -1 && errno != EAGAIN) {
			perror("smtpctl: read");
			exit(74);
		}
		if (n == 0) {
			fprintf(stderr, "smtpctl: connection closed\n");
			exit(74);
		}
		while (imsg_get(&ib, &m) == 1) {
			if ((mode == OUT_QUEUE || mode == OUT_QUEUE_JSON ||
			    mode == OUT_ENTRIES) &&
			    m.hdr.type == IMSG_CTL_QUEUE_ENTRY &&
			    m.len == sizeof(q)) {
				memcpy(&q, m.data, sizeof(q));
				if (proto_valid_ctl_queue_entry(&q) == -1) {
					fprintf(stderr, "smtpctl: bad reply\n");
					exit(76);
				}
				if (sink == NULL)
					print_queue_entry(&q,
					    mode == OUT_QUEUE_JSON);
				else if (sink->fn(&q, sink->arg) == -1) {
					perror("smtpctl");
					exit(71);
				}
				continue;
			}
			if ((mode == OUT_MILTERS || mode == OUT_MILTERS_JSON) &&
			    m.hdr.type == IMSG_CTL_MILTER &&
			    m.len == sizeof(mi)) {
				memcpy(&mi, m.data, sizeof(mi));
				if (proto_valid_ctl_milter(&mi) == -1) {
					fprintf(stderr, "smtpctl: bad reply\n");
					exit(76);
				}
				print_milter(&mi, mode == OUT_MILTERS_JSON);
				nmilters++;
				continue;
			}
			if (m.hdr.type != IMSG_CTL_REPLY ||
			    m.len != sizeof(r)) {
				fprintf(stderr, "smtpctl: bad reply\n");
				exit(76);
			}
			memcpy(&r, m.data, sizeof(r));
			r.text[sizeof(r.text) - 1] = '\0';
			if (r.status)
				failed = 1;
			if (r.text[0] == '\0')
				;
			else if (r.status)
				fprintf(stderr, "%s\n", r.text);
			else if (mode == OUT_STATS && st && st->n < 32) {
				char *eq = strchr(r.text, '=');

				if (eq) {
					*eq = '\0';
					snprintf(st->key[st->n],
					    sizeof(st->key[0]), "%.63s", r.text);
					st->val[st->n++] = atoll(eq + 1);
				}
			} else if (mode == OUT_RAW)
				fputs(r.text, stdout);
			else if (mode == OUT_HEADERS)
				print_headers(r.text);
			else
				printf("%s\n", r.text);
			if (r.end) {
				if (mode == OUT_MILTERS && nmilters == 0 &&
				    !r.status)
					printf("no milters configured\n");
				imsgbuf_clear(&ib);
				close(fd);
				fflush(stdout);
				return failed ? -1 : 0;
			}
		}
	}
}

#define CTL_TABLE_WAIT	30	/* seconds for an answer to table lookup */

/*
 * smtpctl table lookup NAME SERVICE KEY: the value on stdout (nothing
 * for a list's member) and exit 0; not found: 1; a temporary failure, an
 * unknown table or service, or any refusal: the reason on stderr and 2.
 */
static int
ctl_table_lookup(const char *sock, char **argv)
{
	struct ctl_table_lookup	 req;
	struct ctl_table_result	*r;
	struct ctl_reply	 rep;
	struct imsgbuf		 ib;
	struct imsg		 m;
	struct pollfd		 pfd;
	ssize_t			 n;
	int			 fd, status;

	memset(&req, 0, sizeof(req));
	if (strlen(argv[0]) >= sizeof(req.table) ||
	    strlen(argv[1]) >= sizeof(req.service) ||
	    strlen(argv[2]) >= sizeof(req.key)) {
		fprintf(stderr, "smtpctl: table name, service or key too "
		    "long\n");
		return CTL_TABLE_ERROR;
	}
	memcpy(req.table, argv[0], strlen(argv[0]));
	memcpy(req.service, argv[1], strlen(argv[1]));
	memcpy(req.key, argv[2], strlen(argv[2]));
	fd = ctl_connect(sock);
	imsgbuf_init(&ib, fd);
	if (imsg_compose(&ib, IMSG_CTL_TABLE_LOOKUP, 0, -1, &req,
	    sizeof(req)) == -1 || imsg_flush(&ib) == -1) {
		perror("smtpctl: write");
		exit(74);
	}
	for (;;) {
		/*
		 * A shared table gives up after 15 seconds; a request lost
		 * with its lookup process (a reload) is never answered
		 */
		pfd.fd = fd;
		pfd.events = POLLIN;
		if ((n = poll(&pfd, 1, CTL_TABLE_WAIT * 1000)) == 0) {
			fprintf(stderr, "smtpctl: no answer in %d seconds\n",
			    CTL_TABLE_WAIT);
			return CTL_TABLE_ERROR;
		}
		if (n == -1 && errno != EINTR) {
			perror("smtpctl: poll");
			exit(74);
		}
		if ((n = imsg_read(&ib)) == -1 && errno != EAGAIN &&
		    errno != EINTR) {
			perror("smtpctl: read");
			exit(74);
		}
		if (n == 0) {
			fprintf(stderr, "smtpctl: connection closed\n");
			exit(74);
		}
		if (imsg_get(&ib, &m) != 1)
			continue;
		if (m.hdr.type == IMSG_CTL_REPLY && m.len == sizeof(rep)) {
			/* refused before the request was read (busy) */
			memcpy(&rep, m.data, sizeof(rep));
			rep.text[sizeof(rep.text) - 1] = '\0';
			fprintf(stderr, "smtpctl: %s\n", rep.text);
			return CTL_TABLE_ERROR;
		}
		if (m.hdr.type != IMSG_CTL_TABLE_RESULT ||
		    m.len != sizeof(*r)) {
			fprintf(stderr, "smtpctl: bad reply\n");
			exit(76);
		}
		if ((r = malloc(sizeof(*r))) == NULL) {
			perror("smtpctl: malloc");
			exit(71);
		}
		memcpy(r, m.data, sizeof(*r));
		if (proto_valid_ctl_table_result(r) == -1) {
			fprintf(stderr, "smtpctl: bad reply\n");
			exit(76);
		}
		status = (int)r->status;
		if (status == CTL_TABLE_FOUND && r->text[0] != '\0')
			printf("%s\n", r->text);
		else if (status == CTL_TABLE_ERROR)
			fprintf(stderr, "smtpctl: table %s: %s\n", req.table,
			    r->text);
		freezero(r, sizeof(*r));
		imsgbuf_clear(&ib);
		close(fd);
		if (fflush(stdout) == EOF) {
			perror("smtpctl: stdout");
			exit(74);
		}
		return status;
	}
}

struct qshape_sink {
	struct qshape	*qs;
	const char	*state;		/* only envelopes in it; NULL: all */
};

static int
qshape_entry(const struct ctl_queue_entry *q, void *arg)
{
	struct qshape_sink	*k = arg;

	if (k->state != NULL &&
	    strcmp(ctl_queue_state_name(q->state), k->state) != 0)
		return 0;
	return qshape_add(k->qs, q);
}

/* smtpctl show qshape [-s] [STATE]: show queue, counted (ctl_qshape.c) */
static int
ctl_qshape(const char *sock, int by_sender, const char *state)
{
	struct ctl_request	req;
	struct qshape		qs;
	struct qshape_sink	k = { &qs, state };
	struct entry_sink	sink = { qshape_entry, &k };

	memset(&req, 0, sizeof(req));
	req.cmd = CTL_SHOW_QUEUE_ENTRIES;
	qshape_init(&qs, by_sender);
	if (ctl_call(sock, &req, OUT_ENTRIES, &sink) == -1) {
		qshape_free(&qs);
		return 1;
	}
	qshape_print(stdout, &qs);
	qshape_free(&qs);
	return fflush(stdout) == EOF ? 1 : 0;
}

struct evpid_list {
	uint64_t	 id;		/* a message's (8 hex) or an envelope's */
	uint64_t	*evpids;
	size_t		 n, cap;
};

static int
evpid_entry(const struct ctl_queue_entry *q, void *arg)
{
	struct evpid_list	*l = arg;
	uint64_t		*n;

	if (q->evpid != l->id && msgid_of(q->evpid) != l->id)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		if ((n = reallocarray(l->evpids, l->cap, sizeof(*n))) == NULL)
			return -1;
		l->evpids = n;
	}
	l->evpids[l->n++] = q->evpid;
	return 0;
}

/*
 * smtpctl show message [-e] [-h] ID: with -e the envelope of each of its
 * recipients first (show envelope), as postcat -q shows a queue file's
 * records; with -h the message's header only.  The envelopes are those
 * show queue lists at the time: one delivered meanwhile is "no such
 * envelope" on stderr, and the exit status 1.
 */
static int
ctl_show_message(const char *sock, uint64_t id, int envelopes, int headers)
{
	struct ctl_request	req;
	struct evpid_list	l;
	struct entry_sink	sink = { evpid_entry, &l };
	size_t			i;
	int			rc = 0;

	memset(&req, 0, sizeof(req));
	memset(&l, 0, sizeof(l));
	if (envelopes) {
		l.id = id;
		req.cmd = CTL_SHOW_QUEUE_ENTRIES;
		if (ctl_call(sock, &req, OUT_ENTRIES, &sink) == -1)
			return 1;
		if (l.n == 0) {
			fprintf(stderr, "no such message\n");
			return 1;
		}
		for (i = 0; i < l.n; i++) {
			printf("*** ENVELOPE %016" PRIx64 " ***\n",
			    l.evpids[i]);
			req.cmd = CTL_SHOW_ENVELOPE;
			req.id = l.evpids[i];
			if (ctl_call(sock, &req, OUT_RAW, NULL) == -1)
				rc = 1;
		}
		free(l.evpids);
		printf("*** MESSAGE %s ***\n", headers ? "HEADER" :
		    "CONTENTS");
	}
	req.cmd = CTL_SHOW_MESSAGE;
	req.id = id;
	if (ctl_call(sock, &req, headers ? OUT_HEADERS : OUT_RAW, NULL) == -1)
		rc = 1;
	return rc;
}

/* smtpctl monitor: the counters every second, as changes, until ^C */
static int
ctl_monitor(const char *sock)
{
	struct ctl_request	req;
	struct stats		prev, cur;
	int			i, line = 0;

	memset(&req, 0, sizeof(req));
	req.cmd = CTL_SHOW_STATS;
	memset(&prev, 0, sizeof(prev));
	for (;;) {
		memset(&cur, 0, sizeof(cur));
		if (ctl_call(sock, &req, OUT_STATS, &cur) == -1)
			return 1;
		if (line++ % 20 == 0) {
			for (i = 0; i < cur.n; i++)
				printf("%s%s", i ? " " : "", cur.key[i]);
			printf("\n");
		}
		for (i = 0; i < cur.n; i++)
			printf("%s%lld", i ? " " : "", prev.n ?
			    cur.val[i] - prev.val[i] : cur.val[i]);
		printf("\n");
		fflush(stdout);
		prev = cur;
		sleep(1);
	}
}

int
main(int argc, char **argv)
{
	struct ctl_request	 req;
	enum out_mode		 mode;
	const char		*sock = NULL, *cfg = SMTPD_CONF_DEFAULT;
	char			 sockbuf[CONF_PATH_MAX];
	struct stats		 st;
	int			 ch, json = 0, show_queue = 0;
	int			 raw = 0, monitor = 0, rc;
	int			 qshape = 0, by_sender = 0, msg_env = 0;
	int			 msg_head = 0;
	const char		*qstate = NULL;
	char			**table_args = NULL;

	while ((ch = getopt(argc, argv, "+f:s:")) != -1) {
		switch (ch) {
		case 'f':
			cfg = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (strcmp(argv[0], "encrypt") == 0) {
		if (argc > 2)
			usage();
		return encrypt_password(argc == 2 ? argv[1] : NULL);
	}
	if (strcmp(argv[0], "dkim") == 0)
		return ctl_dkim(argc, argv);
	if (strcmp(argv[0], "check") == 0 && argc >= 2 &&
	    strcmp(argv[1], "spf") == 0)
		return ctl_check_spf(cfg, argc - 2, argv + 2);
	memset(&req, 0, sizeof(req));
	if (strcmp(argv[0], "show") == 0 && argc >= 2) {
		if (argc > 2 && (strcmp(argv[1], "queue") == 0 ||
		    strcmp(argv[1], "stats") == 0 ||
		    strcmp(argv[1], "milters") == 0)) {
			if (argc > 3 || strcmp(argv[2], "-j") != 0)
				usage();
			json = 1;
		}
		if (strcmp(argv[1], "queue") == 0) {
			req.cmd = CTL_SHOW_QUEUE_ENTRIES;
			show_queue = 1;
		} else if (strcmp(argv[1], "stats") == 0)
			req.cmd = CTL_SHOW_STATS;
		else if (strcmp(argv[1], "milters") == 0)
			req.cmd = CTL_SHOW_MILTERS;
		else if (strcmp(argv[1], "metrics") == 0 && argc == 2)
			req.cmd = CTL_SHOW_METRICS;
		else if (strcmp(argv[1], "limits") == 0 && argc == 2)
			req.cmd = CTL_SHOW_LIMITS;
		else if (strcmp(argv[1], "status") == 0 && argc == 2)
			req.cmd = CTL_SHOW_STATUS;
		else if (strcmp(argv[1], "qshape") == 0) {
			int	i;

			qshape = 1;
			for (i = 2; i < argc; i++)
				if (strcmp(argv[i], "-s") == 0 && !by_sender)
					by_sender = 1;
				else if (argv[i][0] != '-' && qstate == NULL)
					qstate = argv[i];
				else
					usage();
			if (qstate != NULL) {
				uint32_t s;

				for (s = 0; s < CTL_QSTATE_MAX; s++)
					if (strcmp(ctl_queue_state_name(s),
					    qstate) == 0)
						break;
				if (s == CTL_QSTATE_MAX) {
					fprintf(stderr, "smtpctl: unknown "
					    "state: %s\n", qstate);
					exit(64);
				}
			}
		} else if (strcmp(argv[1], "message") == 0 && argc >= 3) {
			int	i;

			for (i = 2; i < argc - 1; i++)
				if (strcmp(argv[i], "-e") == 0)
					msg_env = 1;
				else if (strcmp(argv[i], "-h") == 0)
					msg_head = 1;
				else
					usage();
			req.cmd = CTL_SHOW_MESSAGE;
			raw = 1;
			if (parse_id(argv[argc - 1], &req.id) == -1 ||
			    req.id == 0) {
				fprintf(stderr, "smtpctl: invalid id: %s\n",
				    argv[argc - 1]);
				exit(64);
			}
		} else if (strcmp(argv[1], "envelope") == 0 && argc == 3) {
			req.cmd = CTL_SHOW_ENVELOPE;
			raw = 1;
			if (parse_id(argv[2], &req.id) == -1 || req.id == 0) {
				fprintf(stderr, "smtpctl: invalid id: %s\n",
				    argv[2]);
				exit(64);
			}
		} else
			usage();
	} else if (strcmp(argv[0], "monitor") == 0 && argc == 1) {
		monitor = 1;
	} else if ((strcmp(argv[0], "schedule") == 0 ||
	    strcmp(argv[0], "remove") == 0) && argc >= 2) {
		req.cmd = argv[0][0] == 's' ? CTL_SCHEDULE : CTL_REMOVE;
		parse_select(argc - 1, argv + 1, &req);
	} else if ((strcmp(argv[0], "hold") == 0 ||
	    strcmp(argv[0], "release") == 0) && argc >= 2) {
		struct passwd	*pw;

		req.cmd = argv[0][0] == 'h' ? CTL_HOLD : CTL_RELEASE;
		parse_select(argc - 1, argv + 1, &req);
		/* for the reason, "smtpctl hold by NAME"; the queue checks it */
		if ((pw = getpwuid(getuid())) != NULL)
			snprintf(req.arg, sizeof(req.arg), "%s", pw->pw_name);
	} else if (strcmp(argv[0], "reload") == 0 && argc == 1) {
		/* SIGHUP's reload, with its outcome */
		req.cmd = CTL_RELOAD;
	} else if (strcmp(argv[0], "requeue") == 0 && argc >= 2) {
		/* routed again under the running configuration, then due */
		req.cmd = CTL_REQUEUE;
		parse_select(argc - 1, argv + 1, &req);
	} else if ((strcmp(argv[0], "pause") == 0 ||
	    strcmp(argv[0], "resume") == 0) && argc >= 2) {
		int pause = strcmp(argv[0], "pause") == 0;

		if (strcmp(argv[1], "envelope") == 0 && argc == 3) {
			req.cmd = pause ? CTL_PAUSE_ENVELOPE :
			    CTL_RESUME_ENVELOPE;
			if (parse_id(argv[2], &req.id) == -1) {
				fprintf(stderr, "smtpctl: invalid id: %s\n",
				    argv[2]);
				exit(64);
			}
		} else if (strcmp(argv[1], "mda") == 0)
			req.cmd = pause ? CTL_PAUSE_MDA : CTL_RESUME_MDA;
		else if (strcmp(argv[1], "mta") == 0)
			req.cmd = pause ? CTL_PAUSE_MTA : CTL_RESUME_MTA;
		else if (strcmp(argv[1], "smtp") == 0)
			req.cmd = pause ? CTL_PAUSE_SMTP : CTL_RESUME_SMTP;
		else
			usage();
	} else if (strcmp(argv[0], "update") == 0 && argc == 3 &&
	    strcmp(argv[1], "table") == 0) {
		req.cmd = CTL_UPDATE_TABLE;
		if (strlen(argv[2]) >= sizeof(req.arg)) {
			fprintf(stderr, "smtpctl: table name too long\n");
			exit(64);
		}
		snprintf(req.arg, sizeof(req.arg), "%s", argv[2]);
	} else if (strcmp(argv[0], "table") == 0 && argc == 5 &&
	    strcmp(argv[1], "lookup") == 0) {
		table_args = argv + 2;
	} else if (strcmp(argv[0], "dmarc") == 0 && argc == 3 &&
	    strcmp(argv[1], "report") == 0 && strcmp(argv[2], "now") == 0) {
		req.cmd = CTL_DMARC_REPORT_NOW;
	} else if (strcmp(argv[0], "tlsrpt") == 0 && argc == 3 &&
	    strcmp(argv[1], "report") == 0 && strcmp(argv[2], "now") == 0) {
		req.cmd = CTL_TLSRPT_REPORT_NOW;
	} else if (strcmp(argv[0], "log") == 0 && argc == 2) {
		if (strcmp(argv[1], "verbose") == 0)
			req.cmd = CTL_LOG_VERBOSE;
		else if (strcmp(argv[1], "brief") == 0)
			req.cmd = CTL_LOG_BRIEF;
		else
			usage();
	} else
		usage();

	if (sock == NULL) {
		socket_from_config(cfg, sockbuf, sizeof(sockbuf));
		sock = sockbuf;
	}
	if (monitor)
		return ctl_monitor(sock);
	if (table_args != NULL)
		return ctl_table_lookup(sock, table_args);
	if (qshape)
		return ctl_qshape(sock, by_sender, qstate);
	if (msg_env || msg_head)
		return ctl_show_message(sock, req.id, msg_env, msg_head);
	if (req.cmd == CTL_SHOW_STATS && json) {
		memset(&st, 0, sizeof(st));
		if ((rc = ctl_call(sock, &req, OUT_STATS, &st)) == 0)
			print_stats_json(&st);
		return rc == 0 ? 0 : 1;
	}
	mode = show_queue ? (json ? OUT_QUEUE_JSON : OUT_QUEUE) :
	    req.cmd == CTL_SHOW_MILTERS ? (json ? OUT_MILTERS_JSON :
	    OUT_MILTERS) : raw ? OUT_RAW : OUT_LINES;
	return ctl_call(sock, &req, mode, NULL) == 0 ? 0 : 1;
}
