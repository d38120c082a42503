/*
 * fuzz_rules.c -- libFuzzer harness for the lookup process's recipient
 * resolution: the "match" rules (lookup/rules.c) and the alias, virtual
 * and user expansion (lookup/expand.c) of the recipient a rule sends to
 * a local action, with the tables written inline in the configuration.
 *
 * Input: an smtpd.conf text, a NUL, then the request one field a line:
 * client address, HELO name, MAIL FROM, RCPT TO, the authenticated name
 * (empty: none) and flags (a digit: 1 TLS, 2 local, 4 authenticated).
 * Inputs that would read devices or include files are skipped: those
 * come from the administrator, not from a client.
 *
 * Beyond "does not crash": rule_find() gives the same answer twice; an
 * expansion ends with a known status, on failure with a 4xx or 5xx
 * reply, on success with at least one destination; and every
 * destination is one the queue would accept (proto_valid_lka_dest(), a
 * known type, a file's path absolute, at most the bound of
 * destinations).
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "fuzz.h"

#include "addr.h"
#include "config.h"
#include "envelope.h"
#include "log.h"
#include "proc.h"
#include "lookup.h"
#include "proto.h"

static size_t	ndest;

static void
emit(void *arg, const struct lka_dest *d)
{
	(void)arg;
	CHECK(proto_valid_lka_dest(d) == 0);
	CHECK(d->dest_type >= DEST_MAILBOX && d->dest_type <= DEST_REMOTE);
	if (d->dest_type == DEST_FILE)
		CHECK(d->path[0] == '/');
	if (d->dest_type == DEST_PROGRAM)
		CHECK(d->path[0] != '\0');
	ndest++;
	CHECK(ndest <= 1000);
}

static char *
next_line(char **p)
{
	char	*s = *p, *nl;

	if (s == NULL)
		return (char *)"";
	if ((nl = strchr(s, '\n')) != NULL) {
		*nl = '\0';
		*p = nl + 1;
	} else
		*p = NULL;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 inited;
	struct lka_rcpt_req	 req;
	struct smtpd_config	*c;
	struct match		*m, *m2;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&req.client;
	struct mailaddr		 a;
	const uint8_t		*nul;
	char			 err[512], reply[512], *s, *p, *f;
	const char		*rest;
	FILE			*fp;
	int			 rc, flags;

	if (!inited) {
		log_init(0, 0);
		inited = 1;
	}
	if (size > 16 * 1024 || (nul = memchr(data, '\0', size)) == NULL)
		return 0;
	if (memmem(data, size, "/dev/", 5) || memmem(data, size, "/proc/", 6) ||
	    memmem(data, size, "/sys/", 5) || memmem(data, size, "include",
	    7))
		return 0;
	if ((fp = fmemopen((void *)(uintptr_t)data, (size_t)(nul - data),
	    "r")) == NULL)
		return 0;
	c = config_parse_file(fp, "fuzz", err, sizeof(err));
	fclose(fp);
	/* FUZZ_RULES_SHOW=1 obj-fuzz/fuzz_rules FILE: what became of it */
	if (c == NULL) {
		if (getenv("FUZZ_RULES_SHOW") != NULL)
			fprintf(stderr, "config: %s\n", err);
		return 0;
	}
	snprintf(c->hostname, sizeof(c->hostname), "mx.example.org");
	conf = c;

	if ((s = malloc(size - (size_t)(nul - data))) == NULL)
		abort();
	memcpy(s, nul + 1, size - (size_t)(nul - data) - 1);
	s[size - (size_t)(nul - data) - 1] = '\0';
	p = s;
	memset(&req, 0, sizeof(req));
	req.reqid = 1;
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, next_line(&p), &sin->sin_addr) != 1)
		sin->sin_addr.s_addr = htonl(0xc0000201);
	snprintf(req.helo, sizeof(req.helo), "%s", next_line(&p));
	/* the paths as MAIL FROM and RCPT TO accept them */
	if (addr_parse_path(next_line(&p), &a, ADDR_ALLOW_NULL |
	    ADDR_ALLOW_UTF8, &rest) == ADDR_OK)
		req.mailfrom = a;
	f = next_line(&p);
	if (addr_parse_path(f, &a, ADDR_ALLOW_NODOMAIN | ADDR_ALLOW_UTF8,
	    &rest) != ADDR_OK)
		goto out;
	req.rcpt = a;
	snprintf(req.authname, sizeof(req.authname), "%s", next_line(&p));
	flags = next_line(&p)[0] - '0';
	if (flags & 1)
		req.flags |= SF_TLS;
	if (flags & 2)
		req.flags |= SF_LOCAL;
	if ((flags & 4) && req.authname[0])
		req.flags |= SF_AUTH;
	if (proto_valid_lka_rcpt_req(&req) != 0)
		goto out;

	rc = rule_find(&req, &m);
	CHECK(rc == 0 || rc == 1);
	CHECK(rule_find(&req, &m2) == rc && m2 == m);
	if (rc == 1 && !m->reject && m->action != NULL &&
	    m->action->type != ACTION_RELAY) {
		ndest = 0;
		reply[0] = '\0';
		rc = expand_recipient(&req, m->action, emit, NULL, reply,
		    sizeof(reply));
		CHECK(rc == PROTO_OK || rc == PROTO_PERMFAIL ||
		    rc == PROTO_TEMPFAIL);
		if (getenv("FUZZ_RULES_SHOW") != NULL)
			fprintf(stderr, "rule line %d: status %d, %zu "
			    "destinations, %s\n", m->line, rc, ndest, reply);
		if (rc == PROTO_OK)
			CHECK(ndest > 0);
		else
			CHECK((reply[0] == '4' || reply[0] == '5') &&
			    memchr(reply, '\n', strlen(reply)) == NULL);
	}
out:
	free(s);
	conf = NULL;
	config_free(c);
	return 0;
}
