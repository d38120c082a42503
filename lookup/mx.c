/*
 * mx.c -- where mail for a domain goes, for the mta (IMSG_LKA_MX).
 *
 * RFC 5321 5.1: the MX records sorted by preference (hosts of equal
 * preference in random order, to spread the load as the RFC asks); no MX
 * at all means the domain's own A/AAAA records, as an implicit MX of
 * preference 0; a null MX (RFC 7505) means the domain accepts no mail.
 * NXDOMAIN is permanent, a DNS failure temporary.  With a relay host
 * ("relay host smtp://host:port") that host is resolved instead, and its
 * port passed along.
 *
 * Every MX host's A and AAAA are asked at once; the answers are sent in
 * MX order when all are in.  IPv4 addresses of a host come before its
 * IPv6 ones: a host without IPv6 connectivity then finds a working
 * address first.
 *
 * DANE (LKA_MX_DANE, RFC 7672 2.2): every question goes to the
 * validating resolver.  A bogus MX answer defers the domain.  A host
 * whose MX RRset (or the relay host's name, which the configuration
 * gave) and address records are all secure gets its TLSA records looked
 * up at _PORT._tcp.HOST; what they say (tlsa.c) follows the hosts as
 * IMSG_LKA_MX_TLSA.  An insecure MX RRset or host means no DANE for it,
 * and no TLSA question: records under an insecure name prove nothing.
 * (A host name that is a CNAME is looked up under the name the MX gave,
 * not under the CNAME's target: RFC 7672 2.2.2's first choice is not
 * made.)
 *
 * When the mta asks for it (LKA_MX_STS), the domain's MTA-STS policy
 * (sts.c) travels with the answer, ahead of the hosts.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "log.h"
#include "mproc.h"
#include "proto.h"

#define MX_TIMEOUT	30	/* seconds per query */
#define MX_MAX_HOSTS	16	/* MX hosts tried */
#define MX_MAX_ADDRS	8	/* addresses per host and family */

struct mx_host {
	uint32_t	 preference;
	uint32_t	 order;		/* random, among equal preferences */
	char		 name[DNS_NAME_MAX];
	struct dns_result *res[2];	/* A, AAAA */
	struct dns_result *tlsa;	/* DANE: its TLSA answer, or NULL */
};

struct mx_state {
	struct lka_mx_req	 req;
	dns_mx_host_cb		 host_cb;
	dns_mx_tlsa_cb		 tlsa_cb;
	dns_result_cb		 done_cb;
	void			*arg;
	uint16_t		 port;		/* from the relay URL */
	int			 implicit;	/* no MX: the domain itself */
	struct mx_host		 hosts[MX_MAX_HOSTS];
	size_t			 nhosts;
	size_t			 pending;
	int			 mx_status;	/* DNS_* of the MX query */
	int			 dnssec;	/* DNS_Q_DNSSEC when DANE */
	int			 mx_secure;	/* the MX answer validated */
};

struct mx_addr_query {
	struct mx_state	*st;
	size_t		 host;
	int		 family;	/* 0 A, 1 AAAA */
};

int
dns_parse_relay_url(const char *url, char *host, size_t hostlen,
    uint16_t *port)
{
	const char	*p, *end, *at;
	char		*e;
	size_t		 n;
	long		 v;

	*port = 0;
	if ((p = strstr(url, "://")) != NULL)
		p += 3;
	else
		p = url;
	/* "smtp://label@host": the label names credentials, not the host */
	if ((end = strchr(p, '/')) == NULL)
		end = p + strlen(p);
	if ((at = memchr(p, '@', (size_t)(end - p))) != NULL)
		p = at + 1;
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (close == NULL)
			return -1;
		n = (size_t)(close - p - 1);
		if (n == 0 || n >= hostlen)
			return -1;
		memcpy(host, p + 1, n);
		host[n] = '\0';
		p = close + 1;
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		n = (size_t)((colon ? colon : end) - p);
		if (n == 0 || n >= hostlen)
			return -1;
		memcpy(host, p, n);
		host[n] = '\0';
		p += n;
	}
	if (p < end && *p == ':') {
		v = strtol(p + 1, &e, 10);
		if (e == p + 1 || e != end || v < 1 || v > 65535)
			return -1;
		*port = (uint16_t)v;
	} else if (p != end)
		return -1;
	return 0;
}

static int
mx_host_cmp(const void *a, const void *b)
{
	const struct mx_host	*x = a, *y = b;

	if (x->preference != y->preference)
		return x->preference < y->preference ? -1 : 1;
	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return 0;
}

static void
mx_finish(struct mx_state *st, uint32_t status, const char *fmt_code,
    const char *why)
{
	struct lka_result	r;

	memset(&r, 0, sizeof(r));
	r.reqid = st->req.reqid;
	r.status = status;
	if (status != PROTO_OK)
		snprintf(r.reply, sizeof(r.reply), "%s %.300s: %s", fmt_code,
		    st->req.relay_host[0] ? st->req.relay_host :
		    st->req.domain, why);
	st->done_cb(st->arg, &r);
}

static void
mx_free(struct mx_state *st)
{
	size_t	i;

	for (i = 0; i < st->nhosts; i++) {
		free(st->hosts[i].res[0]);
		free(st->hosts[i].res[1]);
		free(st->hosts[i].tlsa);
	}
	free(st);
}

/* what the TLSA answer of one host says, as IMSG_LKA_MX_TLSA messages */
static void
mx_emit_tlsa(struct mx_state *st, const struct mx_host *mh)
{
	struct lka_mx_tlsa	 t;
	const struct dns_rr	*r;
	size_t			 i;
	int			 kind;

	if (mh->tlsa == NULL || st->tlsa_cb == NULL)
		return;
	kind = dns_tlsa_kind(mh->tlsa);
	if (kind == LKA_TLSA_NONE)
		return;
	memset(&t, 0, sizeof(t));
	t.reqid = st->req.reqid;
	snprintf(t.host, sizeof(t.host), "%s", mh->name);
	if (kind != LKA_TLSA_RECORD) {
		log_info("dane: %s: %s", mh->name, kind == LKA_TLSA_BOGUS ?
		    "TLSA lookup failed or did not validate" :
		    "no usable TLSA record");
		t.kind = (uint32_t)kind;
		st->tlsa_cb(st->arg, &t);
		return;
	}
	for (i = 0; i < mh->tlsa->nrr; i++) {
		r = &mh->tlsa->rr[i];
		if (!dns_tlsa_usable(r->tlsa_usage, r->tlsa_selector,
		    r->tlsa_mtype, r->txtlen))
			continue;
		t.kind = LKA_TLSA_RECORD;
		t.usage = r->tlsa_usage;
		t.selector = r->tlsa_selector;
		t.mtype = r->tlsa_mtype;
		t.datalen = (uint16_t)r->txtlen;
		memcpy(t.data, dns_rr_txt(mh->tlsa, r), r->txtlen);
		st->tlsa_cb(st->arg, &t);
	}
}

/* every address query is in: send the hosts in order, then the result */
static void
mx_emit(struct mx_state *st)
{
	struct lka_mx_host	 h;
	struct mx_host		*mh;
	size_t			 i, j, nsent = 0;
	int			 f, tempfail = 0;
	struct lka_result	 r;

	for (i = 0; i < st->nhosts; i++) {
		mh = &st->hosts[i];
		for (f = 0; f < 2; f++) {
			const struct dns_result *res = mh->res[f];

			if (res->status == DNS_TEMPFAIL)
				tempfail = 1;
			for (j = 0; j < res->nrr && j < MX_MAX_ADDRS; j++) {
				memset(&h, 0, sizeof(h));
				h.reqid = st->req.reqid;
				h.preference = mh->preference;
				snprintf(h.host, sizeof(h.host), "%s",
				    mh->name);
				h.addr = res->rr[j].addr;
				if (h.addr.ss_family == AF_INET)
					((struct sockaddr_in *)&h.addr)->
					    sin_port = htons(st->port);
				else
					((struct sockaddr_in6 *)&h.addr)->
					    sin6_port = htons(st->port);
				st->host_cb(st->arg, &h);
				nsent++;
			}
		}
	}
	if (nsent > 0) {
		for (i = 0; i < st->nhosts; i++)
			mx_emit_tlsa(st, &st->hosts[i]);
		memset(&r, 0, sizeof(r));
		r.reqid = st->req.reqid;
		r.status = PROTO_OK;
		r.ndest = (uint32_t)nsent;
		st->done_cb(st->arg, &r);
	} else if (tempfail)
		mx_finish(st, PROTO_TEMPFAIL, "451 4.4.3",
		    "cannot resolve the mail exchangers now");
	else if (st->implicit && st->mx_status == DNS_NXDOMAIN)
		mx_finish(st, PROTO_PERMFAIL, "550 5.1.2",
		    "domain not found");
	else if (st->implicit)
		mx_finish(st, PROTO_PERMFAIL, "550 5.1.2",
		    "no MX, A or AAAA record");
	else
		mx_finish(st, PROTO_PERMFAIL, "550 5.4.4",
		    "mail exchangers have no address");
	mx_free(st);
}

static void
mx_tlsa_cb(void *arg, const struct dns_result *res)
{
	struct mx_addr_query	*q = arg;
	struct mx_state		*st = q->st;

	if ((st->hosts[q->host].tlsa = malloc(sizeof(*res))) == NULL)
		fatal("malloc");
	*st->hosts[q->host].tlsa = *res;
	free(q);
	if (--st->pending == 0)
		mx_emit(st);
}

/*
 * RFC 7672 2.2.2: TLSA records are looked for only where the MX RRset
 * and the host's address records are secure.  Every answer that gave
 * addresses must be (a secure A with an insecure AAAA could send us to
 * an address an attacker chose).
 */
static int
mx_host_secure(const struct mx_state *st, const struct mx_host *mh)
{
	int	f, any = 0;

	if (!st->mx_secure)
		return 0;
	for (f = 0; f < 2; f++) {
		if (mh->res[f]->status != DNS_OK)
			continue;
		if (!mh->res[f]->secure)
			return 0;
		any = 1;
	}
	return any;
}

static void
mx_resolve_tlsa(struct mx_state *st)
{
	struct mx_addr_query	*q;
	char			 name[DNS_NAME_MAX];
	size_t			 i, n = 0;
	int			 sec[MX_MAX_HOSTS];

	for (i = 0; i < st->nhosts; i++) {
		sec[i] = mx_host_secure(st, &st->hosts[i]) &&
		    dns_tlsa_name(st->hosts[i].name, st->port ? st->port : 25,
		    name, sizeof(name)) == 0;
		n += sec[i];
		if (!sec[i])
			log_debug("dane: %s: not DNSSEC-secure, no TLSA lookup",
			    st->hosts[i].name);
	}
	if (n == 0) {
		mx_emit(st);
		return;
	}
	st->pending = n;
	for (i = 0; i < st->nhosts; i++) {
		if (!sec[i])
			continue;
		if ((q = calloc(1, sizeof(*q))) == NULL)
			fatal("calloc");
		q->st = st;
		q->host = i;
		dns_tlsa_name(st->hosts[i].name, st->port ? st->port : 25,
		    name, sizeof(name));
		dns_query(name, DNS_T_TLSA | DNS_Q_DNSSEC, MX_TIMEOUT,
		    mx_tlsa_cb, q);
	}
}

static void
mx_addr_cb(void *arg, const struct dns_result *res)
{
	struct mx_addr_query	*q = arg;
	struct mx_state		*st = q->st;
	struct dns_result	*copy;

	if ((copy = malloc(sizeof(*copy))) == NULL)
		fatal("malloc");
	*copy = *res;
	st->hosts[q->host].res[q->family] = copy;
	free(q);
	if (--st->pending > 0)
		return;
	if (st->dnssec)
		mx_resolve_tlsa(st);
	else
		mx_emit(st);
}

/* an address literal, "[1.2.3.4]" or a bare IP: no DNS needed */
static int
mx_literal(struct mx_state *st, const char *name)
{
	struct dns_result	*res;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	char			 buf[DNS_NAME_MAX];
	size_t			 n = strlen(name);
	int			 v6 = 0;

	if (name[0] == '[' && n > 2 && name[n - 1] == ']') {
		snprintf(buf, sizeof(buf), "%.*s", (int)(n - 2), name + 1);
		if (strncasecmp(buf, "IPv6:", 5) == 0) {
			memmove(buf, buf + 5, strlen(buf + 5) + 1);
			v6 = 1;
		}
	} else
		snprintf(buf, sizeof(buf), "%s", name);
	if ((res = calloc(2, sizeof(*res))) == NULL)
		fatal("calloc");
	res[0].status = res[1].status = DNS_NODATA;
	sin = (struct sockaddr_in *)&res[0].rr[0].addr;
	sin6 = (struct sockaddr_in6 *)&res[1].rr[0].addr;
	if (!v6 && inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		res[0].status = DNS_OK;
		res[0].nrr = 1;
	} else if (strchr(buf, ':') != NULL &&
	    inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		res[1].status = DNS_OK;
		res[1].nrr = 1;
	} else {
		free(res);
		return 0;
	}
	st->nhosts = 1;
	snprintf(st->hosts[0].name, sizeof(st->hosts[0].name), "%s", name);
	if ((st->hosts[0].res[0] = malloc(sizeof(*res))) == NULL ||
	    (st->hosts[0].res[1] = malloc(sizeof(*res))) == NULL)
		fatal("malloc");
	*st->hosts[0].res[0] = res[0];
	*st->hosts[0].res[1] = res[1];
	free(res);
	return 1;
}

static void
mx_resolve_hosts(struct mx_state *st)
{
	struct mx_addr_query	*q;
	size_t			 i;
	int			 f;

	st->pending = st->nhosts * 2;
	for (i = 0; i < st->nhosts; i++) {
		for (f = 0; f < 2; f++) {
			if ((q = calloc(1, sizeof(*q))) == NULL)
				fatal("calloc");
			q->st = st;
			q->host = i;
			q->family = f;
			dns_query(st->hosts[i].name, (f ? DNS_T_AAAA :
			    DNS_T_A) | st->dnssec, MX_TIMEOUT, mx_addr_cb, q);
		}
	}
}

static void
mx_cb(void *arg, const struct dns_result *res)
{
	struct mx_state	*st = arg;
	size_t		 i;

	st->mx_status = res->status;
	st->mx_secure = res->secure;
	if (res->bogus) {
		/* RFC 7672 2.2.1: a bogus MX RRset is a lookup failure */
		mx_finish(st, PROTO_TEMPFAIL, "451 4.7.5",
		    "MX records failed DNSSEC validation");
		mx_free(st);
		return;
	}
	switch (res->status) {
	case DNS_TEMPFAIL:
		mx_finish(st, PROTO_TEMPFAIL, "451 4.4.3",
		    "DNS lookup failed temporarily");
		mx_free(st);
		return;
	case DNS_NXDOMAIN:
		mx_finish(st, PROTO_PERMFAIL, "550 5.1.2", "domain not found");
		mx_free(st);
		return;
	case DNS_NODATA:
		/* RFC 5321 5.1: the domain itself is the implicit MX */
		st->implicit = 1;
		st->nhosts = 1;
		snprintf(st->hosts[0].name, sizeof(st->hosts[0].name), "%s",
		    st->req.domain);
		mx_resolve_hosts(st);
		return;
	}
	/* RFC 7505 3: exactly one MX, target "." (any preference) */
	for (i = 0; i < res->nrr; i++) {
		if (res->rr[i].name[0] != '\0')
			continue;
		if (res->nrr == 1) {
			mx_finish(st, PROTO_PERMFAIL, "556 5.1.10",
			    "domain accepts no mail (null MX)");
			mx_free(st);
			return;
		}
	}
	for (i = 0; i < res->nrr && st->nhosts < MX_MAX_HOSTS; i++) {
		struct mx_host *h = &st->hosts[st->nhosts];

		/* a "." among real MXes is a misconfiguration: skip it */
		if (res->rr[i].name[0] == '\0')
			continue;
		h->preference = res->rr[i].preference;
		h->order = arc4random();
		snprintf(h->name, sizeof(h->name), "%s", res->rr[i].name);
		st->nhosts++;
	}
	if (st->nhosts == 0) {
		mx_finish(st, PROTO_PERMFAIL, "556 5.1.10",
		    "domain accepts no mail (null MX)");
		mx_free(st);
		return;
	}
	qsort(st->hosts, st->nhosts, sizeof(st->hosts[0]), mx_host_cmp);
	mx_resolve_hosts(st);
}

void
dns_mx(const struct lka_mx_req *req, dns_mx_host_cb host_cb,
    dns_result_cb done_cb, void *arg)
{
	dns_mx_dane(req, host_cb, NULL, done_cb, arg);
}

void
dns_mx_dane(const struct lka_mx_req *req, dns_mx_host_cb host_cb,
    dns_mx_tlsa_cb tlsa_cb, dns_result_cb done_cb, void *arg)
{
	struct mx_state	*st;
	char		 host[DNS_NAME_MAX];

	if ((st = calloc(1, sizeof(*st))) == NULL)
		fatal("calloc");
	st->req = *req;
	st->host_cb = host_cb;
	st->tlsa_cb = tlsa_cb;
	st->done_cb = done_cb;
	st->arg = arg;
	st->dnssec = (req->flags & LKA_MX_DANE) ? DNS_Q_DNSSEC : 0;
	if (req->relay_host[0] != '\0') {
		/* the configuration named it: as trusted as a secure MX */
		st->mx_secure = 1;
		if (dns_parse_relay_url(req->relay_host, host, sizeof(host),
		    &st->port) == -1) {
			/* the parser checked it; a bad one is a config bug */
			mx_finish(st, PROTO_PERMFAIL, "550 5.3.5",
			    "invalid relay host");
			mx_free(st);
			return;
		}
		if (mx_literal(st, host)) {
			mx_emit(st);
			return;
		}
		st->nhosts = 1;
		snprintf(st->hosts[0].name, sizeof(st->hosts[0].name), "%s",
		    host);
		mx_resolve_hosts(st);
		return;
	}
	if (req->domain[0] == '[') {
		/* RFC 5321 4.1.3: an address literal is the host itself */
		if (mx_literal(st, req->domain))
			mx_emit(st);
		else {
			mx_finish(st, PROTO_PERMFAIL, "550 5.1.2",
			    "invalid address literal");
			mx_free(st);
		}
		return;
	}
	dns_query(req->domain, DNS_T_MX | st->dnssec, MX_TIMEOUT, mx_cb, st);
}

/*
 * One IMSG_LKA_MX from the mta.  With LKA_MX_STS the domain's MTA-STS
 * policy is looked up alongside the MX hosts (sts.c), and the answer
 * waits for both: the policy goes first, so that the mta has it when
 * the hosts arrive.  The hosts (and with LKA_MX_DANE their TLSA
 * records, which follow them) are kept until then.
 */
struct lka_mx_job {
	struct mproc		*p;
	int			 want_sts;
	int			 sts_done;
	int			 mx_done;
	struct lka_mx_sts	 sts;
	struct lka_mx_host	*hosts;
	size_t			 nhosts;
	struct lka_mx_tlsa	*tlsa;		/* DANE: after the hosts */
	size_t			 ntlsa;
	struct lka_result	 result;
};

static void
lka_mx_flush(struct lka_mx_job *job)
{
	size_t	i;

	if (!job->mx_done || (job->want_sts && !job->sts_done))
		return;
	if (job->want_sts)
		mproc_compose(job->p, IMSG_LKA_MX_STS, job->sts.reqid, -1,
		    &job->sts, sizeof(job->sts));
	for (i = 0; i < job->nhosts; i++)
		mproc_compose(job->p, IMSG_LKA_MX_HOST, job->hosts[i].reqid,
		    -1, &job->hosts[i], sizeof(job->hosts[i]));
	for (i = 0; i < job->ntlsa; i++)
		mproc_compose(job->p, IMSG_LKA_MX_TLSA, job->tlsa[i].reqid,
		    -1, &job->tlsa[i], sizeof(job->tlsa[i]));
	mproc_compose(job->p, IMSG_LKA_MX_RESULT, job->result.reqid, -1,
	    &job->result, sizeof(job->result));
	free(job->hosts);
	free(job->tlsa);
	free(job);
}

static void
lka_mx_host_reply(void *arg, const struct lka_mx_host *h)
{
	struct lka_mx_job	*job = arg;
	struct lka_mx_host	*n;

	if ((n = reallocarray(job->hosts, job->nhosts + 1,
	    sizeof(*job->hosts))) == NULL)
		fatal("reallocarray");
	job->hosts = n;
	job->hosts[job->nhosts++] = *h;
}

static void
lka_mx_result_reply(void *arg, const struct lka_result *r)
{
	struct lka_mx_job	*job = arg;

	job->result = *r;
	job->mx_done = 1;
	lka_mx_flush(job);
}

static void
lka_mx_sts_reply(void *arg, const struct lka_mx_sts *sts)
{
	struct lka_mx_job	*job = arg;

	job->sts = *sts;
	job->sts_done = 1;
	lka_mx_flush(job);
}

static void
lka_mx_tlsa_reply(void *arg, const struct lka_mx_tlsa *t)
{
	struct lka_mx_job	*job = arg;
	struct lka_mx_tlsa	*n;

	if ((n = reallocarray(job->tlsa, job->ntlsa + 1,
	    sizeof(*job->tlsa))) == NULL)
		fatal("reallocarray");
	job->tlsa = n;
	job->tlsa[job->ntlsa++] = *t;
}

void
dns_lka_mx(struct mproc *p, const struct lka_mx_req *req)
{
	struct lka_mx_job	*job;

	if ((job = calloc(1, sizeof(*job))) == NULL)
		fatal("calloc");
	job->p = p;
	/* MTA-STS is about a domain's MX hosts, never a relay host */
	job->want_sts = (req->flags & LKA_MX_STS) &&
	    req->relay_host[0] == '\0' && req->domain[0] != '\0';
	if (job->want_sts)
		sts_lookup(req->reqid, req->domain, lka_mx_sts_reply, job);
	dns_mx_dane(req, lka_mx_host_reply, lka_mx_tlsa_reply,
	    lka_mx_result_reply, job);
}
