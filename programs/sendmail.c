/*
 * sendmail.c -- the sendmail(8), mailq and newaliases interface.
 *
 * One program, chosen by argv[0] or by mode flag: read a message from
 * standard input and submit it to smtpd over the control socket (the
 * default, -bm), relay an SMTP dialogue on stdin/stdout (-bs), list the
 * queue (-bp, mailq), ask for a queue run (-q), or rebuild the aliases
 * database (-bi, newaliases: runs makemap in its newaliases mode).
 *
 * This program has no privileges and needs none: the daemon learns who
 * we are from the kernel (SO_PEERCRED), so nothing here is a security
 * boundary.  The sender policy applied here only keeps users from doing
 * by accident what the daemon would not honour anyway.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "imsg.h"
#include "platform.h"
#include "proto.h"
#include "ctl.h"
#include "submit.h"
#include "util.h"

#ifndef SMTPD_SYSCONFDIR
#define SMTPD_SYSCONFDIR	"/etc"
#endif

#define MAKEMAP_NAME		"makemap"
#define BS_LINGER_MS		(10 * 1000)	/* -bs: silence before EOF */
#define SCAN_CONF_MAX		(16 * 1024 * 1024)	/* as the parser */
#define BS_GREETING_MS		(10 * 1000)	/* -bs: connect to 220 */

enum mode {
	MODE_DELIVER,		/* -bm */
	MODE_SMTP,		/* -bs */
	MODE_QUEUE,		/* -bp, mailq */
	MODE_ALIASES,		/* -bi, newaliases */
	MODE_RUNQUEUE,		/* -q */
};

struct options {
	enum mode	 mode;
	const char	*conffile;
	const char	*fullname;	/* -F */
	const char	*sender;	/* -f / -r */
	int		 extract;	/* -t */
	int		 ignore_dots;	/* -i, -oi */
	int		 verbose;	/* -v */
	char		 notify[64];	/* -N */
	char		 ret[8];	/* -R */
	const char	*envid;		/* -V */
};

/* what smtpd.conf says about where the daemon is and who we are */
struct instance {
	char	socket[CONF_PATH_MAX];
	char	spool[CONF_PATH_MAX];
	char	mailname[CONF_HOST_MAX];
	char	hostname[CONF_HOST_MAX];
};

static const char	*progname = "sendmail";
static struct passwd	 me;		/* a copy: getpw* reuse their buffer */

static void	warnmsg(const char *, ...) __attribute__((format(printf, 1, 2)));
static void	die(int, const char *, ...)
		    __attribute__((format(printf, 2, 3), noreturn));

static void
warnmsg(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
die(int status, const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void
report_line(const char *line)
{
	fprintf(stderr, "%s: %s\n", progname, line);
}

static void
trace_line(const char *line)
{
	fprintf(stderr, "%s\n", line);
}

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr,
	    "usage: sendmail [-itv] [-C file] [-F fullname] [-f sender] "
	    "[-N dsn] [-R ret]\n"
	    "                [-V envid] [-o option] [--] [recipient ...]\n"
	    "       sendmail -bs | -bp | -bi | -q [-C file]\n"
	    "       mailq [-C file]\n"
	    "       newaliases [-C smtpd.conf] [-f aliases]\n");
	exit(EX_USAGE);
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t	ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n)) == NULL)
		die(EX_OSERR, "out of memory");
	return p;
}

/*
 * Options.  Sendmail's command line predates getopt: "-oi", "-bm",
 * "-q30m", "-f sender" and "-fsender" all occur in the wild, and
 * recipients end the options.  So it is parsed by hand.
 */

static void
set_notify(struct options *o, const char *arg)
{
	char	 buf[64], *p, *word, out[64] = "";
	size_t	 n = 0;
	int	 never = 0, other = 0;

	if (strlen(arg) >= sizeof(buf))
		die(EX_USAGE, "invalid -N value: %s", arg);
	memcpy(buf, arg, strlen(arg) + 1);
	for (p = buf; (word = strsep(&p, ",")) != NULL;) {
		if (strcasecmp(word, "never") == 0)
			never = 1;
		else if (strcasecmp(word, "success") == 0 ||
		    strcasecmp(word, "failure") == 0 ||
		    strcasecmp(word, "delay") == 0)
			other = 1;
		else
			die(EX_USAGE, "invalid -N value: %s (expected never, "
			    "or success, failure, delay)", arg);
		/* the output is never longer than the input */
		if (n > 0)
			out[n++] = ',';
		for (; *word; word++)
			out[n++] = (char)toupper((unsigned char)*word);
		out[n] = '\0';
	}
	if (never && other)
		die(EX_USAGE, "invalid -N value: never excludes the others");
	memcpy(o->notify, out, sizeof(out));
}

/*
 * -oX options that only tune how Sendmail itself delivers or reports
 * (the daemon decides that): d DeliveryMode (-odi, -odb, -odq), e
 * ErrorMode (-oem, -oee, -oep, -oeq, -oew), m MeToo, 7 SevenBitInput, 8
 * EightBitMode, L LogLevel, r Timeout, s SuperSafe, c HoldExpensive.
 * Silently accepted; -oi is used; any other warns.
 */
#define SILENT_O	"dem78Lrsc"

/* the same as -O LongName=value */
static int
silent_long_option(const char *v)
{
	static const char	*names[] = { "DeliveryMode", "ErrorMode",
	    "MeToo", "SevenBitInput", "EightBitMode", "LogLevel", "Timeout",
	    "SuperSafe", "HoldExpensive" };
	size_t			 i, n;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		n = strlen(names[i]);
		if (strncasecmp(v, names[i], n) == 0 &&
		    (v[n] == '=' || v[n] == '\0' || v[n] == '.'))
			return 1;
	}
	return 0;
}

/* an option's argument: "-fvalue" or "-f value" */
static const char *
optarg_of(char **argv, int *i, const char *rest)
{
	if (*rest)
		return rest;
	if (argv[*i + 1] == NULL)
		die(EX_USAGE, "option %s requires an argument", argv[*i]);
	return argv[++*i];
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	const char	*arg, *v;
	int		 i;

	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (strcmp(arg, "--") == 0)
			return i + 1;
		if (arg[0] != '-' || arg[1] == '\0')
			return i;
		switch (arg[1]) {
		case 'b':
			if (strcmp(arg, "-bm") == 0)
				o->mode = MODE_DELIVER;
			else if (strcmp(arg, "-bs") == 0)
				o->mode = MODE_SMTP;
			else if (strcmp(arg, "-bp") == 0)
				o->mode = MODE_QUEUE;
			else if (strcmp(arg, "-bi") == 0)
				o->mode = MODE_ALIASES;
			else
				die(EX_USAGE, "mode %s is not supported (use "
				    "smtpd(8) and smtpctl(8))", arg);
			break;
		case 'C':
			o->conffile = optarg_of(argv, &i, arg + 2);
			break;
		case 'F':
			o->fullname = optarg_of(argv, &i, arg + 2);
			break;
		case 'f':
		case 'r':
			o->sender = optarg_of(argv, &i, arg + 2);
			break;
		case 'i':
			if (arg[2] != '\0')
				goto unknown;
			o->ignore_dots = 1;
			break;
		case 'N':
			set_notify(o, optarg_of(argv, &i, arg + 2));
			break;
		case 'o':
			v = optarg_of(argv, &i, arg + 2);
			if (strcmp(v, "i") == 0)
				o->ignore_dots = 1;
			else if (v[0] == '\0' || strchr(SILENT_O, v[0]) == NULL)
				warnmsg("option -o%s ignored", v);
			break;
		case 'O':
			v = optarg_of(argv, &i, arg + 2);
			if (strcasecmp(v, "IgnoreDots") == 0 ||
			    strncasecmp(v, "IgnoreDots=t", 12) == 0)
				o->ignore_dots = 1;
			else if (!silent_long_option(v))
				warnmsg("option -O %s ignored", v);
			break;
		case 'B':
			/* the daemon finds 8-bit data by itself */
			v = optarg_of(argv, &i, arg + 2);
			if (strcasecmp(v, "7BIT") != 0 &&
			    strcasecmp(v, "8BITMIME") != 0)
				warnmsg("option -B %s ignored", v);
			break;
		case 'I':
			if (arg[2] != '\0')
				goto unknown;
			o->mode = MODE_ALIASES;
			break;
		case 'q':
			o->mode = MODE_RUNQUEUE;
			if (arg[2] != '\0')
				warnmsg("%s: the daemon runs the queue by "
				    "itself; running it once now", arg);
			break;
		case 'R':
			v = optarg_of(argv, &i, arg + 2);
			if (strcasecmp(v, "full") == 0)
				memcpy(o->ret, "FULL", 5);
			else if (strcasecmp(v, "hdrs") == 0)
				memcpy(o->ret, "HDRS", 5);
			else
				die(EX_USAGE, "invalid -R value: %s (expected "
				    "full or hdrs)", v);
			break;
		case 't':
			if (arg[2] != '\0')
				goto unknown;
			o->extract = 1;
			break;
		case 'V':
			o->envid = optarg_of(argv, &i, arg + 2);
			if (strlen(o->envid) > SUBMIT_ENVID_MAX)
				die(EX_USAGE, "-V: envelope id longer than %d",
				    SUBMIT_ENVID_MAX);
			for (v = o->envid; *v; v++)
				if (*v < 0x21 || *v > 0x7e)
					die(EX_USAGE, "-V: envelope id must "
					    "be printable ASCII");
			break;
		case 'v':
			if (arg[2] != '\0')
				goto unknown;
			o->verbose = 1;
			break;
		/*
		 * What mail programs and cron pass by habit and what has no
		 * meaning here (sendmail(8) lists them): silently accepted.
		 * -A c|m (submit.cf or sendmail.cf), -h hops, -L syslog label
		 */
		case 'A':
		case 'h':
		case 'L':
			(void)optarg_of(argv, &i, arg + 2);
			break;
		/* -e[mpqew] error mode, -G gateway, -m me too, -n no
		 * aliasing, -U initial submission */
		case 'e':
		case 'G':
		case 'm':
		case 'n':
		case 'U':
			break;
		/* understood but not done: said so */
		case 'X':
			v = optarg_of(argv, &i, arg + 2);
			warnmsg("option -X %s ignored: no traffic log", v);
			break;
		case 'd':
		case 'x':
			warnmsg("option %s ignored", arg);
			break;
		default:
		unknown:
			warnmsg("unknown option %s", arg);
			usage();
		}
	}
	return i;
}

/*
 * The instance: smtpd.conf gives the socket, the spool and the mail
 * name.  A file we may not read (it may hold secrets) or that has an
 * error (the daemon may still run an older, valid one) is no reason to
 * refuse mail: the defaults, and what a quick look at the file finds,
 * are used then.
 */
static void
scan_conf_line(const char *path, struct instance *in)
{
	FILE	*fp;
	char	 line[CONF_PATH_MAX + 64], *p, *q, *dst;
	size_t	 dstlen, nread = 0;

	/* a regular file (not -C /dev/zero or a FIFO), and only so much */
	if ((fp = config_fopen(path)) == NULL)
		return;
	while (nread < SCAN_CONF_MAX && fgets(line, sizeof(line), fp) !=
	    NULL) {
		nread += strlen(line) + 1;
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		if (strncmp(p, "socket", 6) == 0 && (p[6] == ' ' ||
		    p[6] == '\t')) {
			dst = in->socket;
			dstlen = sizeof(in->socket);
			p += 6;
		} else if (strncmp(p, "spool", 5) == 0 && (p[5] == ' ' ||
		    p[5] == '\t')) {
			dst = in->spool;
			dstlen = sizeof(in->spool);
			p += 5;
		} else
			continue;
		for (; *p == ' ' || *p == '\t' || *p == '"' || *p == '\''; p++)
			;
		for (q = p; *q && *q != '"' && *q != '\'' && *q != '\n' &&
		    *q != ' ' && *q != '\t' && *q != '#'; q++)
			;
		*q = '\0';
		if (p[0] == '/')
			snprintf(dst, dstlen, "%s", p);
	}
	fclose(fp);
}

static void
load_instance(const char *path, int explicit, struct instance *in)
{
	struct smtpd_config	*c;
	char			 err[CONF_PATH_MAX + 256];

	if ((c = config_parse(path, err, sizeof(err))) != NULL) {
		snprintf(in->socket, sizeof(in->socket), "%s", c->socket);
		snprintf(in->spool, sizeof(in->spool), "%s", c->spool);
		snprintf(in->mailname, sizeof(in->mailname), "%s",
		    c->mailname);
		snprintf(in->hostname, sizeof(in->hostname), "%s",
		    c->hostname);
		config_free(c);
		return;
	}
	if (explicit || errno != ENOENT)
		warnmsg("%s; using defaults", err);
	if ((c = config_default()) == NULL)
		die(EX_OSERR, "out of memory");
	snprintf(in->socket, sizeof(in->socket), "%s", c->socket);
	snprintf(in->spool, sizeof(in->spool), "%s", c->spool);
	snprintf(in->mailname, sizeof(in->mailname), "%s", c->mailname);
	snprintf(in->hostname, sizeof(in->hostname), "%s", c->hostname);
	config_free(c);
	scan_conf_line(path, in);
}

/*
 * Addresses
 */

/* "user" -> "user@mailname"; then checked as a mailbox */
static int
qualify(const char *in, const struct instance *inst, char *out,
    size_t outlen)
{
	struct mailaddr	a;
	int		n;

	if (strchr(in, '@') == NULL && in[0] != '"')
		n = snprintf(out, outlen, "%s@%s", in, inst->mailname);
	else
		n = snprintf(out, outlen, "%s", in);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	if (addr_parse_mailbox(out, &a, ADDR_ALLOW_UTF8) != ADDR_OK)
		return -1;
	return 0;
}

/*
 * An RFC 5322 address-list, leniently: display names, comments, quoted
 * strings, <angle addresses> with an obsolete route, and groups
 * ("undisclosed-recipients:;").  Each address found is passed to add().
 */
struct addr_sink {
	struct submission	*sub;
	const struct instance	*inst;
	const char		*where;
	int			 bad;
};

static void
sink_add(struct addr_sink *k, const char *addr)
{
	char	q[SUBMIT_ADDR_MAX];

	if (addr[0] == '\0')
		return;
	if (qualify(addr, k->inst, q, sizeof(q)) == -1) {
		warnmsg("invalid address %s%s%s", addr,
		    k->where ? " in " : "", k->where ? k->where : "");
		k->bad = 1;
		return;
	}
	if (submission_add_rcpt(k->sub, q) == -1)
		die(EX_OSERR, "too many recipients or out of memory");
}

static void
parse_address_list(const char *s, struct addr_sink *k)
{
	char	 bare[SUBMIT_ADDR_MAX * 2], angle[SUBMIT_ADDR_MAX * 2];
	size_t	 nb = 0, na = 0;
	int	 in_angle = 0, have_angle = 0, depth, overflow = 0;
	char	*colon;

	for (;; s++) {
		if (*s == '\0' || (!in_angle && (*s == ',' || *s == ';'))) {
			bare[nb] = angle[na] = '\0';
			if (overflow) {
				warnmsg("address too long%s%s",
				    k->where ? " in " : "",
				    k->where ? k->where : "");
				k->bad = 1;
			} else if (have_angle) {
				/* <@a,@b:user@dom>: drop the route */
				if (angle[0] == '@' &&
				    (colon = strchr(angle, ':')) != NULL)
					sink_add(k, colon + 1);
				else
					sink_add(k, angle);
			} else
				sink_add(k, bare);
			nb = na = 0;
			have_angle = in_angle = overflow = 0;
			if (*s == '\0')
				return;
			continue;
		}
		if (*s == '(') {
			for (depth = 1, s++; *s && depth; s++) {
				if (*s == '\\' && s[1])
					s++;
				else if (*s == '(')
					depth++;
				else if (*s == ')')
					depth--;
			}
			s--;
			continue;
		}
		if (*s == '"') {
			/* a quoted string: part of a local part, or a name */
			do {
				if (*s == '\\' && s[1]) {
					if (in_angle && na < sizeof(angle) - 2)
						angle[na++] = *s;
					else if (!in_angle &&
					    nb < sizeof(bare) - 2)
						bare[nb++] = *s;
					s++;
				}
				if (in_angle && na < sizeof(angle) - 1)
					angle[na++] = *s;
				else if (!in_angle && nb < sizeof(bare) - 1)
					bare[nb++] = *s;
				else
					overflow = 1;
				s++;
			} while (*s && *s != '"');
			if (*s == '\0')
				s--;
			else if (in_angle && na < sizeof(angle) - 1)
				angle[na++] = '"';
			else if (!in_angle && nb < sizeof(bare) - 1)
				bare[nb++] = '"';
			continue;
		}
		if (*s == '<' && !in_angle) {
			in_angle = have_angle = 1;
			na = 0;
			continue;
		}
		if (*s == '>' && in_angle) {
			in_angle = 0;
			continue;
		}
		if (*s == ':' && !in_angle) {
			/* "group name:" -- what came before is no address */
			nb = 0;
			continue;
		}
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			continue;
		if (in_angle) {
			if (na < sizeof(angle) - 1)
				angle[na++] = *s;
			else
				overflow = 1;
		} else if (nb < sizeof(bare) - 1)
			bare[nb++] = *s;
		else
			overflow = 1;
	}
}

/*
 * -f: root may use any sender; anyone else only their own address or
 * the null sender.  Anything else is ignored with a warning, so that a
 * script with a stale -f still gets its mail out.
 */
static void
choose_sender(const struct options *o, const struct instance *inst,
    struct submission *sub)
{
	char		 want[SUBMIT_ADDR_MAX], *at;
	size_t		 len;
	const char	*s = o->sender;

	snprintf(sub->sender, sizeof(sub->sender), "%s@%s", me.pw_name,
	    inst->mailname);
	if (s == NULL)
		return;
	len = strlen(s);
	if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
		s++;
		len -= 2;
	}
	if (len == 0) {
		sub->sender[0] = '\0';
		return;
	}
	if (len >= sizeof(want))
		die(EX_USAGE, "sender address too long");
	memcpy(want, s, len);
	want[len] = '\0';
	if (me.pw_uid != 0) {
		at = strrchr(want, '@');
		if (at)
			*at = '\0';
		if (strcmp(want, me.pw_name) != 0 || (at && strcasecmp(at + 1,
		    inst->mailname) != 0 && strcasecmp(at + 1,
		    inst->hostname) != 0)) {
			if (at)
				*at = '@';
			warnmsg("sender %s ignored: only root may set another "
			    "user's address; using %s", want, sub->sender);
			return;
		}
		if (at)
			*at = '@';
	}
	if (qualify(want, inst, sub->sender, sizeof(sub->sender)) == -1)
		die(EX_USAGE, "invalid sender address: %s", want);
}

/*
 * The message
 */

struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

static void
buf_add(struct buf *b, const void *data, size_t len)
{
	char	*n;
	size_t	 cap;

	if (b->cap - b->len < len + 1) {
		cap = b->cap ? b->cap : 65536;
		while (cap - b->len < len + 1) {
			if (cap > SIZE_MAX / 2)
				die(EX_OSERR, "message too large");
			cap *= 2;
		}
		if ((n = realloc(b->data, cap)) == NULL)
			die(EX_OSERR, "out of memory");
		b->data = n;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static void
buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	char	*s;
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = platform_vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		die(EX_OSERR, "out of memory");
	buf_add(b, s, (size_t)n);
	free(s);
}

/*
 * Standard input into LF-terminated lines.  Without -i a line holding
 * only "." ends the message, as it always has for sendmail.
 */
static void
read_message(const struct options *o, struct buf *out)
{
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	while ((n = getline(&line, &cap, stdin)) != -1) {
		if (n > 0 && line[n - 1] == '\n') {
			n--;
			if (n > 0 && line[n - 1] == '\r')
				n--;
		}
		if (!o->ignore_dots && n == 1 && line[0] == '.')
			break;
		buf_add(out, line, (size_t)n);
		buf_add(out, "\n", 1);
	}
	if (ferror(stdin))
		die(EX_IOERR, "reading the message: %s", strerror(errno));
	free(line);
}

/* the length of the header field name at s, or 0 when s is no field */
static size_t
field_name_len(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (s[i] == ':')
			return i;
		if ((unsigned char)s[i] <= 32 || (unsigned char)s[i] >= 127)
			return 0;
	}
	return 0;
}

static int
field_is(const char *s, size_t namelen, const char *name)
{
	return strlen(name) == namelen && strncasecmp(s, name, namelen) == 0;
}

/* RFC 2047 "B" encoding of a UTF-8 display name, when it needs one */
static void
add_display_name(struct buf *b, const char *name)
{
	static const char	 b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char	*p;
	size_t			 i, len = strlen(name);
	int			 eightbit = 0, special = 0;

	for (p = (const unsigned char *)name; *p; p++) {
		if (*p >= 0x80)
			eightbit = 1;
		else if (*p < 0x20 || *p == 0x7f)
			return;		/* no control characters in a header */
		else if (strchr("()<>[]:;@\\,.\"", *p) != NULL)
			special = 1;
	}
	if (len == 0)
		return;
	if (eightbit) {
		buf_add(b, "=?UTF-8?B?", 10);
		p = (const unsigned char *)name;
		for (i = 0; i + 2 < len; i += 3) {
			char	q[4] = { b64[p[i] >> 2],
			    b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			    b64[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)],
			    b64[p[i + 2] & 63] };

			buf_add(b, q, 4);
		}
		if (len - i == 1) {
			char	q[4] = { b64[p[i] >> 2], b64[(p[i] & 3) << 4],
			    '=', '=' };

			buf_add(b, q, 4);
		} else if (len - i == 2) {
			char	q[4] = { b64[p[i] >> 2],
			    b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
			    b64[(p[i + 1] & 15) << 2], '=' };

			buf_add(b, q, 4);
		}
		buf_add(b, "?= ", 3);
	} else if (special) {
		buf_add(b, "\"", 1);
		for (p = (const unsigned char *)name; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_add(b, "\\", 1);
			buf_add(b, p, 1);
		}
		buf_add(b, "\" ", 2);
	} else {
		buf_add(b, name, len);
		buf_add(b, " ", 1);
	}
}

static void
full_name(const struct options *o, char *out, size_t outlen)
{
	size_t	n;

	if (o->fullname != NULL) {
		snprintf(out, outlen, "%s", o->fullname);
		return;
	}
	/* the GECOS field: "Full Name,room,phone,..." */
	n = me.pw_gecos ? strcspn(me.pw_gecos, ",") : 0;
	snprintf(out, outlen, "%.*s", (int)n, n ? me.pw_gecos : "");
}

/*
 * Header addresses are qualified like the envelope's: "bob" becomes
 * "bob@mailname", as Postfix's append_at_myorigin does for mail
 * submitted locally, in the same fields: the sender fields (From,
 * Sender, Reply-To, Errors-To, Return-Receipt-To), the recipient fields
 * (To, Cc, Apparently-To) and their Resent- forms (Bcc goes anyway).
 * An address is left as it is when it has a domain, is a quoted string,
 * or is no single word (a display name without <>, a group's name).
 */
static const char *const addr_fields[] = {
	"From", "Sender", "Reply-To", "Errors-To", "Return-Receipt-To",
	"To", "Cc", "Apparently-To", "Resent-From", "Resent-Sender",
	"Resent-Reply-To", "Resent-To", "Resent-Cc",
};

struct addr_elem {
	size_t	end;		/* the ',' or ';' after it, or the length */
	size_t	angle_close;	/* where its '>' is */
	size_t	bare_end;	/* after the last byte of a bare address */
	int	have_angle, in_angle, multiword, overflow;
	size_t	alen;
	char	addr[SUBMIT_ADDR_MAX];
};

static void
elem_add(struct addr_elem *e, char ch)
{
	if (e->alen + 1 >= sizeof(e->addr))
		e->overflow = 1;
	else
		e->addr[e->alen++] = ch;
}

/* one element of an address list from v[i], the way parse_address_list
 * reads it */
static void
scan_address(const char *v, size_t len, size_t i, struct addr_elem *e)
{
	int	depth, gap = 0;

	memset(e, 0, sizeof(*e));
	for (; i < len; i++) {
		if (!e->in_angle && (v[i] == ',' || v[i] == ';'))
			break;
		if (v[i] == '(') {
			for (depth = 1, i++; i < len && depth; i++) {
				if (v[i] == '\\' && i + 1 < len)
					i++;
				else if (v[i] == '(')
					depth++;
				else if (v[i] == ')')
					depth--;
			}
			i--;
			gap = 1;
			continue;
		}
		if (v[i] == '<' && !e->have_angle) {
			e->have_angle = e->in_angle = 1;
			e->alen = 0;
			continue;
		}
		if (v[i] == '>' && e->in_angle) {
			e->in_angle = 0;
			e->angle_close = i;
			continue;
		}
		if (v[i] == ':' && !e->in_angle) {
			/* "group name:" was no address */
			e->alen = e->bare_end = 0;
			e->multiword = gap = 0;
			continue;
		}
		if (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' ||
		    v[i] == '\n') {
			gap = 1;
			continue;
		}
		if (e->have_angle && !e->in_angle)
			continue;	/* after the <address> */
		if (gap && e->alen > 0 && !e->in_angle)
			e->multiword = 1;
		gap = 0;
		if (v[i] == '"') {
			do {
				if (v[i] == '\\' && i + 1 < len)
					elem_add(e, v[i++]);
				elem_add(e, v[i++]);
			} while (i < len && v[i] != '"');
			if (i < len)
				elem_add(e, '"');
			else
				i--;
		} else
			elem_add(e, v[i]);
		if (!e->in_angle)
			e->bare_end = i + 1;
	}
	e->end = i;
}

/* a field's value, its addresses qualified */
static void
add_qualified(struct buf *out, const char *v, size_t len,
    const struct instance *inst)
{
	struct addr_elem	 e;
	char			 q[SUBMIT_ADDR_MAX];
	const char		*end = v + len;
	size_t			 i = 0, at, eol = len;

	/*
	 * The field's line end stays last: an element that runs to the end
	 * (an unterminated quoted string) must not get its "@domain" after
	 * the LF, where it would start a line that is no field.
	 */
	while (eol > 0 && (v[eol - 1] == '\n' || v[eol - 1] == '\r'))
		eol--;
	len = eol;
	while (i < len) {
		scan_address(v, len, i, &e);
		at = e.have_angle ? e.angle_close : e.bare_end;
		e.addr[e.alen] = '\0';
		if (!e.overflow && e.alen > 0 && at > i &&
		    !(e.have_angle && (e.in_angle || e.angle_close == 0)) &&
		    !(!e.have_angle && e.multiword) &&
		    strchr(e.addr, '@') == NULL && e.addr[0] != '"' &&
		    qualify(e.addr, inst, q, sizeof(q)) == 0) {
			buf_add(out, v + i, at - i);
			buf_printf(out, "@%s", inst->mailname);
			buf_add(out, v + at, e.end - at);
		} else
			buf_add(out, v + i, e.end - i);
		i = e.end;
		if (i < len)
			buf_add(out, v + i++, 1);	/* ',' or ';' */
	}
	buf_add(out, v + len, (size_t)(end - (v + len)));
}

static int
is_address_field(const char *field, size_t namelen)
{
	size_t	i;

	for (i = 0; i < sizeof(addr_fields) / sizeof(addr_fields[0]); i++)
		if (field_is(field, namelen, addr_fields[i]))
			return 1;
	return 0;
}

/*
 * Fix up the message: drop a Unix "From " line and every Bcc, add From,
 * Date and Message-ID when missing, qualify the header's addresses, and
 * with -t collect the recipients from To/Cc/Bcc (the Resent- set when
 * there is one).
 */
static void
prepare_message(const struct options *o, const struct instance *inst,
    struct buf *in, struct submission *sub, struct addr_sink *sink)
{
	struct buf	 out = { NULL, 0, 0 }, rcpthdr[2] = { { NULL, 0, 0 },
			    { NULL, 0, 0 } };
	const char	*p = in->data ? in->data : "", *end = p + in->len;
	const char	*nl, *field, *fend;
	size_t		 namelen, i;
	int		 have_from = 0, have_date = 0, have_msgid = 0;
	int		 resent = 0, drop, r, eoh = 0;
	char		 name[256], date[64], host[CONF_HOST_MAX];
	unsigned char	 rnd[8];
	time_t		 now = time(NULL);
	struct tm	*tm;

	if (end - p >= 5 && memcmp(p, "From ", 5) == 0) {
		nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	/* the header: fields, each with its continuation lines */
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		fend = nl ? nl + 1 : end;
		if (*p == '\n') {
			eoh = 1;
			break;
		}
		if ((namelen = field_name_len(p, (size_t)(fend - p))) == 0)
			break;		/* the body starts without a blank */
		field = p;
		while (fend < end && (*fend == ' ' || *fend == '\t')) {
			nl = memchr(fend, '\n', (size_t)(end - fend));
			fend = nl ? nl + 1 : end;
		}
		p = fend;
		drop = 0;
		if (field_is(field, namelen, "From"))
			have_from = 1;
		else if (field_is(field, namelen, "Date"))
			have_date = 1;
		else if (field_is(field, namelen, "Message-ID"))
			have_msgid = 1;
		else if (field_is(field, namelen, "Bcc") ||
		    field_is(field, namelen, "Resent-Bcc"))
			drop = 1;
		if (namelen > 7 && strncasecmp(field, "Resent-", 7) == 0)
			resent = 1;
		/* value of To/Cc/Bcc into set 0, Resent-* into set 1 */
		for (r = 0; r < 2; r++)
			if (field_is(field, namelen, r ? "Resent-To" : "To") ||
			    field_is(field, namelen, r ? "Resent-Cc" : "Cc") ||
			    field_is(field, namelen, r ? "Resent-Bcc" :
			    "Bcc")) {
				buf_add(&rcpthdr[r], field + namelen + 1,
				    (size_t)(fend - field) - namelen - 1);
				buf_add(&rcpthdr[r], ",", 1);
			}
		if (!drop && is_address_field(field, namelen)) {
			buf_add(&out, field, namelen + 1);
			add_qualified(&out, field + namelen + 1,
			    (size_t)(fend - field) - namelen - 1, inst);
		} else if (!drop)
			buf_add(&out, field, (size_t)(fend - field));
		/* a last field without its LF gets one, unless dropped:
		 * that LF alone would end the header before From and Date */
		if (!drop && fend > field && fend[-1] != '\n')
			buf_add(&out, "\n", 1);
	}
	if (!have_from) {
		full_name(o, name, sizeof(name));
		buf_add(&out, "From: ", 6);
		add_display_name(&out, name);
		if (sub->sender[0])
			buf_printf(&out, "<%s>\n", sub->sender);
		else
			buf_printf(&out, "<%s@%s>\n", me.pw_name,
			    inst->mailname);
	}
	if (!have_date) {
		if ((tm = localtime(&now)) == NULL ||
		    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z",
		    tm) == 0)
			die(EX_OSERR, "cannot format the date");
		buf_printf(&out, "Date: %s\n", date);
	}
	if (!have_msgid) {
		if (getentropy(rnd, sizeof(rnd)) == -1)
			die(EX_OSERR, "getentropy: %s", strerror(errno));
		snprintf(host, sizeof(host), "%s", inst->mailname);
		strftime(date, sizeof(date), "%Y%m%d%H%M%S", gmtime(&now));
		buf_printf(&out, "Message-ID: <%s.%02x%02x%02x%02x%02x%02x%02x"
		    "%02x@%s>\n", date, rnd[0], rnd[1], rnd[2], rnd[3],
		    rnd[4], rnd[5], rnd[6], rnd[7], host);
	}
	buf_add(&out, "\n", 1);
	if (eoh)
		p++;		/* the blank line, written above */
	if (p < end)
		buf_add(&out, p, (size_t)(end - p));

	if (o->extract) {
		sink->where = resent ? "the Resent- headers" : "the headers";
		if (rcpthdr[resent].data)
			parse_address_list(rcpthdr[resent].data, sink);
		sink->where = NULL;
	}
	free(rcpthdr[0].data);
	free(rcpthdr[1].data);
	free(in->data);
	in->data = NULL;

	sub->msg = out.data ? out.data : xmalloc(1);
	sub->msglen = out.len;
	for (i = 0; i < sub->msglen; i++)
		if ((unsigned char)sub->msg[i] >= 0x80) {
			sub->eightbit = 1;
			break;
		}
}

/* the message could not be submitted: keep it for the user */
static __attribute__((noreturn)) void
fail_message(const struct submission *sub, int status, const char *why)
{
	char	err[1200];

	warnmsg("%s", why);
	if (sub->msg == NULL)
		exit(status);
	if (submit_dead_letter(sub, err, sizeof(err)) == -1)
		warnmsg("the message could not be saved either: %s", err);
	else
		warnmsg("the message was saved in ~/dead.letter");
	exit(status);
}

static int
mode_deliver(const struct options *o, const struct instance *inst,
    char **rcpts, int nrcpts)
{
	struct submission	sub;
	struct submit_result	res;
	struct addr_sink	sink;
	struct buf		in = { NULL, 0, 0 };
	char			err[1200];
	int			i, fd;

	submission_init(&sub);
	choose_sender(o, inst, &sub);
	memcpy(sub.notify, o->notify, sizeof(sub.notify));
	memcpy(sub.ret, o->ret, sizeof(sub.ret));
	if (o->envid)
		snprintf(sub.envid, sizeof(sub.envid), "%s", o->envid);
	memset(&sink, 0, sizeof(sink));
	sink.sub = &sub;
	sink.inst = inst;
	for (i = 0; i < nrcpts; i++)
		parse_address_list(rcpts[i], &sink);
	if (sink.bad)
		die(EX_USAGE, "invalid recipient on the command line");
	if (nrcpts == 0 && !o->extract)
		die(EX_USAGE, "no recipients given (and no -t)");

	read_message(o, &in);
	prepare_message(o, inst, &in, &sub, &sink);
	if (sink.bad)
		fail_message(&sub, EX_DATAERR, "invalid recipient address in "
		    "the message's headers");
	if (sub.nrcpts == 0)
		fail_message(&sub, EX_USAGE, "no recipients found");

	if ((fd = submit_connect(inst->socket)) == -1) {
		if (o->verbose)
			warnmsg("cannot connect to %s: %s", inst->socket,
			    strerror(errno));
		goto offline;
	}
	submit_message(fd, &sub, report_line, o->verbose ? trace_line : NULL,
	    &res);
	if (!res.reached)
		goto offline;
	if (res.queued) {
		if (o->verbose)
			warnmsg("queued as %s", res.queueid);
		submission_free(&sub);
		/* some recipients refused: said above, and in the status */
		return res.status;
	}
	fail_message(&sub, res.status, res.error);

offline:
	/* the daemon is down: smtpd picks the file up when it starts */
	if (submit_offline_write(inst->spool, &sub, err, sizeof(err)) == -1) {
		char	why[1400];

		snprintf(why, sizeof(why), "the mail daemon is not running "
		    "and the message cannot be left for it: %s", err);
		fail_message(&sub, EX_TEMPFAIL, why);
	}
	if (o->verbose)
		warnmsg("the mail daemon is not running; the message will be "
		    "sent when it starts");
	submission_free(&sub);
	return EX_OK;
}


/* -bs: after the control request, copy bytes both ways unchanged */
static int
mode_smtp(const struct instance *inst)
{
	struct pollfd	pfd[2];
	char		buf[16384];
	ssize_t		n;
	int		fd, rc, in_open = 1, greeted = 0;

	if ((fd = submit_connect(inst->socket)) == -1) {
		printf("421 4.3.0 Mail system unavailable\r\n");
		fflush(stdout);
		die(EX_UNAVAILABLE, "cannot connect to %s: %s", inst->socket,
		    strerror(errno));
	}
	/*
	 * Nothing may be written before the greeting: until the daemon has
	 * handed the socket to an smtp worker, what we write would be read
	 * (and lost) by the control process.
	 */
	for (;;) {
		pfd[0].fd = in_open == 1 && greeted ? STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = fd;
		pfd[1].events = POLLIN;
		if ((rc = poll(pfd, 2, !greeted ? BS_GREETING_MS :
		    in_open ? -1 : BS_LINGER_MS)) == -1) {
			if (errno == EINTR)
				continue;
			die(EX_OSERR, "poll: %s", strerror(errno));
		}
		if (rc == 0 && !greeted) {
			/* the daemon is stuck or its socket is held: say so */
			printf("421 4.3.0 Mail system not answering\r\n");
			fflush(stdout);
			die(EX_TEMPFAIL, "the mail daemon did not greet us in "
			    "%d seconds", BS_GREETING_MS / 1000);
		}
		if (rc == 0) {
			if (shutdown(fd, SHUT_WR) == -1 && errno != ENOTCONN)
				die(EX_IOERR, "shutdown: %s", strerror(errno));
			in_open = -1;	/* closed, and no more timeouts */
			continue;
		}
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			if ((n = read(fd, buf, sizeof(buf))) == -1) {
				if (errno == EINTR)
					continue;
				die(EX_IOERR, "read: %s", strerror(errno));
			}
			if (n == 0)
				break;
			/*
			 * Before the greeting, anything but SMTP is the
			 * control process refusing the session (busy).
			 */
			if (!greeted && (buf[0] < '0' || buf[0] > '9')) {
				printf("421 4.3.0 Mail system busy, try again "
				    "later\r\n");
				fflush(stdout);
				die(EX_TEMPFAIL, "the mail daemon refused the "
				    "session");
			}
			if (memchr(buf, '\n', (size_t)n) != NULL)
				greeted = 1;
			if (write_full(STDOUT_FILENO, buf, (size_t)n) == -1)
				die(EX_IOERR, "write: %s", strerror(errno));
		}
		if (in_open == 1 &&
		    (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			if ((n = read(STDIN_FILENO, buf, sizeof(buf))) == -1) {
				if (errno == EINTR)
					continue;
				die(EX_IOERR, "read: %s", strerror(errno));
			}
			if (n == 0) {
				/*
				 * The client may have written everything at
				 * once, QUIT included; closing our side now
				 * would end the session before the daemon
				 * has answered it all.  So wait for the
				 * daemon to close, and close only once it
				 * has been silent for a while.
				 */
				in_open = 0;
				continue;
			}
			if (write_full(fd, buf, (size_t)n) == -1)
				die(EX_IOERR, "write: %s", strerror(errno));
		}
	}
	close(fd);
	return EX_OK;
}

/*
 * "ID|sender|rcpt|age|tries|state|held|error", as smtpctl shows it; the
 * error is the rest of the line (a remote server's text may hold '|').
 * A held envelope (held: its reason, without '|') gets a '!' after its
 * id, as in Postfix's mailq.
 */
static void
print_queue_line(const char *text)
{
	char	 buf[1100], *f[8], *p = buf;
	int	 n = 0;

	snprintf(buf, sizeof(buf), "%s", text);
	while (n < 7 && (f[n] = strsep(&p, "|")) != NULL)
		n++;
	if (n < 7 || p == NULL) {
		printf("%s\n", text);
		return;
	}
	f[7] = p;
	printf("%s%s %s -> %s age=%ss tries=%s state=%s%s%s%s%s\n", f[0],
	    f[6][0] ? "!" : "", f[1][0] ? f[1] : "<>", f[2], f[3], f[4], f[5],
	    f[6][0] ? " held=" : "", f[6], f[7][0] ? " error=" : "", f[7]);
}

/* one control request; replies are printed, the exit status returned */
static int
control_request(const struct instance *inst, uint32_t cmd, int queue_list)
{
	struct sockaddr_un	 sun;
	struct ctl_request	 req;
	struct ctl_reply	 r;
	struct imsgbuf		 ib;
	struct imsg		 m;
	ssize_t			 n;
	int			 fd, status = EX_OK, lines = 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(inst->socket) >= sizeof(sun.sun_path))
		die(EX_CONFIG, "socket path too long: %s", inst->socket);
	memcpy(sun.sun_path, inst->socket, strlen(inst->socket));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die(EX_OSERR, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		die(EX_UNAVAILABLE, "cannot connect to %s: %s (is smtpd "
		    "running?)", inst->socket, strerror(errno));
	memset(&req, 0, sizeof(req));
	req.cmd = cmd;
	req.id = 0;		/* all */
	imsgbuf_init(&ib, fd);
	if (imsg_compose(&ib, IMSG_CTL_REQUEST, 0, -1, &req, sizeof(req)) ==
	    -1 || imsg_flush(&ib) == -1)
		die(EX_IOERR, "write: %s", strerror(errno));
	for (;;) {
		if ((n = imsg_read(&ib)) == -1 && errno != EAGAIN)
			die(EX_IOERR, "read: %s", strerror(errno));
		if (n == 0)
			die(EX_IOERR, "the mail daemon closed the connection");
		while (imsg_get(&ib, &m) == 1) {
			if (m.hdr.type != IMSG_CTL_REPLY || m.len != sizeof(r))
				die(EX_SOFTWARE, "malformed reply from the "
				    "mail daemon");
			memcpy(&r, m.data, sizeof(r));
			r.text[sizeof(r.text) - 1] = '\0';
			if (r.status)
				status = strstr(r.text, "permission") ?
				    EX_NOPERM : EX_UNAVAILABLE;
			if (r.text[0] && queue_list && !r.end && !r.status) {
				print_queue_line(r.text);
				lines++;
			} else if (r.text[0])
				fprintf(r.status ? stderr : stdout, "%s\n",
				    r.text);
			if (r.end) {
				if (queue_list && lines == 0 && !r.status)
					printf("Mail queue is empty\n");
				imsgbuf_clear(&ib);
				close(fd);
				return status;
			}
		}
	}
}

/*
 * -bi and newaliases: makemap in its newaliases mode, from next to us if
 * it is there.  `args' are its options: newaliases's own command line
 * ([-C smtpd.conf] [-f aliases]) or, for -bi, -C when one was given.
 */
static __attribute__((noreturn)) void
mode_aliases(char *const *args)
{
	static const char *const fallback[] = {
		"/usr/sbin/" MAKEMAP_NAME, "/usr/local/sbin/" MAKEMAP_NAME,
	};
	char	 self[PATH_MAX], path[PATH_MAX + 16], *slash;
	size_t	 i;

	if (platform_self_path(self, sizeof(self)) == 0) {
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/%s", self,
			    MAKEMAP_NAME);
			if (access(path, X_OK) == 0) {
				execv(path, args);
				die(EX_OSERR, "%s: %s", path, strerror(errno));
			}
		}
	}
	for (i = 0; i < sizeof(fallback) / sizeof(fallback[0]); i++)
		if (access(fallback[i], X_OK) == 0) {
			execv(fallback[i], args);
			die(EX_OSERR, "%s: %s", fallback[i], strerror(errno));
		}
	die(EX_UNAVAILABLE, "cannot find %s", MAKEMAP_NAME);
}

/*
 * No set-user-id or set-group-id bit is needed or expected; should an
 * installation add one anyway, it is given up before anything else.
 */
static void
drop_setid(void)
{
	gid_t	gid = getgid();
	uid_t	uid = getuid();

	if (platform_setresgid(gid, gid, gid) == -1 ||
	    platform_setresuid(uid, uid, uid) == -1)
		die(EX_OSERR, "cannot drop privileges: %s", strerror(errno));
}

int
main(int argc, char **argv)
{
	struct options	 o;
	struct instance	 inst;
	struct passwd	*pw;
	const char	*base;
	char		 conf[CONF_PATH_MAX];
	int		 first;

	drop_setid();
	signal(SIGPIPE, SIG_IGN);
	memset(&o, 0, sizeof(o));
	memset(&inst, 0, sizeof(inst));
	base = argv[0] ? argv[0] : "sendmail";
	if (strrchr(base, '/'))
		base = strrchr(base, '/') + 1;
	if (ends_with(base, "mailq")) {
		progname = "mailq";
		o.mode = MODE_QUEUE;
	} else if (ends_with(base, "newaliases")) {
		/* its options are makemap's newaliases options */
		progname = "newaliases";
		argv[0] = (char *)"newaliases";
		mode_aliases(argv);
	}
	first = parse_options(argc, argv, &o);
	if (o.mode == MODE_ALIASES) {
		char	*args[] = { (char *)"newaliases", (char *)"-C",
		    (char *)o.conffile, NULL };

		if (o.conffile == NULL)
			args[1] = NULL;
		mode_aliases(args);
	}

	errno = 0;
	if ((pw = getpwuid(getuid())) == NULL)
		die(EX_NOUSER, "who are you? (uid %u is not in the password "
		    "database)", (unsigned)getuid());
	me = *pw;
	if ((me.pw_name = strdup(pw->pw_name)) == NULL ||
	    (me.pw_dir = strdup(pw->pw_dir)) == NULL ||
	    (me.pw_gecos = strdup(pw->pw_gecos ? pw->pw_gecos : "")) == NULL)
		die(EX_OSERR, "out of memory");

	snprintf(conf, sizeof(conf), "%s", o.conffile ? o.conffile :
	    SMTPD_SYSCONFDIR "/smtpd.conf");
	load_instance(conf, o.conffile != NULL, &inst);

	switch (o.mode) {
	case MODE_SMTP:
		return mode_smtp(&inst);
	case MODE_QUEUE:
		return control_request(&inst, CTL_SHOW_QUEUE, 1);
	case MODE_RUNQUEUE:
		if (getuid() != 0)
			die(EX_NOPERM, "only root may run the queue");
		return control_request(&inst, CTL_SCHEDULE, 0);
	default:
		return mode_deliver(&o, &inst, argv + first, argc - first);
	}
}
