/*
 * ctl_spf.c -- "smtpctl check spf [-H] [-t seconds] IP HELO SENDER".
 *
 * The same evaluator the lookup process runs (lookup/spf.c), on a
 * libevent loop of its own and a resolver set up as the daemon's would
 * be (smtpd.conf's "resolver ADDR [port N]", else /etc/resolv.conf), so
 * what an administrator sees here is what a session would get.  No
 * daemon and no privileges are needed.  That is why this file, alone in
 * programs/, includes lookup/'s headers (by name, so the crossing
 * shows): it runs lookup's code, not a copy of it.
 *
 * Output: the result as the first word, then the explanation on the same
 * line (the exp= text for a fail); a second line says which term decided
 * and why.  Exit 0 whatever the result: the result is the output.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "lookup/dns.h"
#include "lookup/spf.h"
#include "mproc.h"
#include "ctl_spf.h"

static void
ctl_spf_usage(void)
{
	fprintf(stderr, "usage: smtpctl [-f config] check spf [-H] "
	    "[-t seconds] IP HELO SENDER\n");
}

static int
ctl_spf_addr(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

struct ctl_spf_wait {
	int			done;
	struct spf_result	res;
};

static void
ctl_spf_done(void *arg, const struct spf_result *res)
{
	struct ctl_spf_wait	*w = arg;

	w->res = *res;
	w->done = 1;
	event_base_loopbreak(ev_base);
}

/* the resolver and host name the daemon would use */
static int
ctl_spf_config(const char *cfg, char *resolver, size_t rlen,
    uint16_t *port, char *host, size_t hlen)
{
	struct smtpd_config	*c;
	char			 err[CONF_PATH_MAX + 256];

	resolver[0] = '\0';
	*port = 53;
	if ((c = config_parse(cfg, err, sizeof(err))) == NULL) {
		if (errno != ENOENT) {
			fprintf(stderr, "smtpctl: %s\n", err);
			return -1;
		}
		if (gethostname(host, hlen) == -1)
			snprintf(host, hlen, "unknown");
		host[hlen - 1] = '\0';
		return 0;
	}
	snprintf(resolver, rlen, "%s", c->resolver);
	*port = c->resolver_port;
	snprintf(host, hlen, "%s", c->hostname);
	config_free(c);
	return 0;
}

int
ctl_check_spf(const char *cfg, int argc, char **argv)
{
	struct spf_req		 req;
	struct ctl_spf_wait	 w;
	char			 resolver[CONF_HOST_MAX], *end;
	uint16_t		 port;
	long			 timeout = 0;
	int			 helo = 0;

	memset(&req, 0, sizeof(req));
	while (argc > 0 && argv[0][0] == '-' && argv[0][1] != '\0') {
		if (strcmp(argv[0], "-H") == 0) {
			helo = 1;
			argc--;
			argv++;
		} else if (strcmp(argv[0], "-t") == 0 && argc > 1) {
			errno = 0;
			timeout = strtol(argv[1], &end, 10);
			if (errno || *end || timeout < 1 || timeout > 60) {
				ctl_spf_usage();
				return 64;
			}
			argc -= 2;
			argv += 2;
		} else
			break;
	}
	if (argc != 3 || ctl_spf_addr(argv[0], &req.addr) == -1) {
		ctl_spf_usage();
		return 64;
	}
	if (strlen(argv[1]) >= sizeof(req.helo) ||
	    strlen(argv[2]) >= sizeof(req.sender)) {
		fprintf(stderr, "smtpctl: HELO or SENDER too long\n");
		return 64;
	}
	snprintf(req.helo, sizeof(req.helo), "%s", argv[1]);
	/* "<>" and "" are the null sender, <a@b> is a@b */
	snprintf(req.sender, sizeof(req.sender), "%s", argv[2]);
	if (req.sender[0] == '<' && req.sender[strlen(req.sender) - 1] ==
	    '>') {
		memmove(req.sender, req.sender + 1, strlen(req.sender));
		req.sender[strlen(req.sender) - 1] = '\0';
	}
	if (ctl_spf_config(cfg, resolver, sizeof(resolver), &port,
	    req.receiver, sizeof(req.receiver)) == -1)
		return 1;
	if ((ev_base = event_base_new()) == NULL) {
		fprintf(stderr, "smtpctl: event_base_new failed\n");
		return 1;
	}
	if (dns_init_with(resolver, port, "/etc/hosts") == -1) {
		fprintf(stderr, "smtpctl: cannot set up the resolver\n");
		return 1;
	}
	if (timeout > 0)
		spf_set_timeouts((int)timeout, 0);
	memset(&w, 0, sizeof(w));
	if (helo)
		spf_check_helo(&req, ctl_spf_done, &w);
	else
		spf_check(&req, ctl_spf_done, &w);
	while (!w.done)
		if (event_base_loop(ev_base, EVLOOP_ONCE) == -1)
			break;
	dns_shutdown();
	if (!w.done) {
		fprintf(stderr, "smtpctl: the event loop failed\n");
		return 1;
	}
	printf("%s %s\n", spf_result_name(w.res.result), w.res.explanation);
	printf("  domain=%s mechanism=%s comment=\"%s\"\n",
	    w.res.domain[0] ? w.res.domain : "-",
	    w.res.mechanism[0] ? w.res.mechanism : "-", w.res.smtp_comment);
	return 0;
}
