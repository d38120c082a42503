/*
 * dns.c -- asynchronous DNS for the lookup process: the libunbound
 * context, one-query plumbing, reverse DNS of clients and the sender
 * domain check.  MX routing for the mta lives in mx.c.
 *
 * libunbound runs on our own libevent base (ub_ctx_create_event): no
 * resolver thread and no forked helper, so the lookup process stays one
 * single-threaded process under one seccomp filter.  Its answers come as
 * wire-format packets, parsed here with libresolv's ns_* routines into
 * the records of the asked type only; names are checked to be plain host
 * names before anyone (a Received header, a log line) sees them.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <unbound.h>
#include <unbound-event.h>

#include "addr.h"
#include "dns.h"
#include "log.h"
#include "lookup.h"
#include "mproc.h"
#include "proc.h"
#include "util.h"

#define DNS_RDNS_TIMEOUT	10	/* seconds per query, client waits */
#define DNS_SENDER_TIMEOUT	20
#define DNS_RDNS_MAX_NAMES	4	/* PTR names tried for confirmation */

static struct ub_ctx	*ub;
/*
 * The validating context of DNS_Q_DNSSEC queries (DANE), with the trust
 * anchor: a separate one, so that a forwarder that cannot answer DNSSEC
 * questions (a site's resolver for private zones, a test's) makes only
 * DANE lookups fail, never the ordinary ones.
 */
static struct ub_ctx	*ub_sec;
static char		 ub_fwd[128];	/* the forwarder, for ub_sec too */
static char		 ub_hosts[256];

struct dns_query {
	struct event		*ev;	/* timeout, and deferred delivery */
	dns_cb			 cb;
	void			*arg;
	int			 type;
	int			 submitting;	/* inside ub_resolve_event */
	int			 answered;	/* unbound is done with us */
	int			 delivered;	/* cb has run (e.g. timeout) */
	struct dns_result	 res;
};

/*
 * unbound answers some zones itself (RFC 6761 names such as "test.",
 * loopback and private reverse zones).  Behind a configured resolver
 * that is wrong for a mail server: the site's resolver knows the PTR
 * records of its private networks and its internal names, and only it
 * should answer.  Without a forwarder (iterating from the root servers)
 * the defaults stay, so private names never leak to the Internet.
 */
static void
dns_unblock_local_zones(struct ub_ctx *ctx)
{
	static const char *zones[] = {
		"test.", "invalid.", "home.arpa.", "local.",
		"127.in-addr.arpa.", "10.in-addr.arpa.", "168.192.in-addr.arpa.",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
		    "0.ip6.arpa.",
		"d.f.ip6.arpa.", NULL
	};
	char	buf[128];
	int	i, rc;

	if ((rc = ub_ctx_set_option(ctx, "unblock-lan-zones:", "yes")) != 0 ||
	    (rc = ub_ctx_set_option(ctx, "insecure-lan-zones:", "yes")) != 0)
		log_warnx("dns: unblock-lan-zones: %s", ub_strerror(rc));
	for (i = 0; zones[i] != NULL; i++) {
		/* "nodefault" is not honoured through ub_ctx_set_option */
		snprintf(buf, sizeof(buf), "%s transparent", zones[i]);
		if ((rc = ub_ctx_set_option(ctx, "local-zone:", buf)) != 0)
			log_warnx("dns: local-zone %s: %s", buf,
			    ub_strerror(rc));
	}
}

/* a context on ev_base, forwarding to ub_fwd ("": resolv.conf) */
static struct ub_ctx *
dns_ctx_new(void)
{
	struct ub_ctx	*ctx;
	int		 rc, forwarding = 0;

	if ((ctx = ub_ctx_create_event(ev_base)) == NULL) {
		log_warnx("dns: ub_ctx_create_event failed");
		return NULL;
	}
	/*
	 * Local resolvers (127.0.0.53, a dnsmasq, a test server) are the
	 * common case for an MTA host; unbound refuses to query loopback
	 * addresses unless told otherwise.
	 */
	if ((rc = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no")) !=
	    0)
		log_warnx("dns: do-not-query-localhost: %s", ub_strerror(rc));
	if (ub_fwd[0] != '\0') {
		if ((rc = ub_ctx_set_fwd(ctx, ub_fwd)) != 0) {
			log_warnx("dns: resolver %s: %s", ub_fwd,
			    ub_strerror(rc));
			ub_ctx_delete(ctx);
			return NULL;
		}
		forwarding = 1;
	} else if ((rc = ub_ctx_resolvconf(ctx, NULL)) != 0)
		log_warnx("dns: /etc/resolv.conf: %s; resolving from the "
		    "root servers", ub_strerror(rc));
	else
		forwarding = 1;
	if (forwarding)
		dns_unblock_local_zones(ctx);
	if (ub_hosts[0] != '\0' && (rc = ub_ctx_hosts(ctx, ub_hosts)) != 0)
		log_warnx("dns: %s: %s", ub_hosts, ub_strerror(rc));
	return ctx;
}

int
dns_init_with(const char *addr, uint16_t port, const char *hosts)
{
	if (ub != NULL)
		dns_shutdown();
	ub_fwd[0] = '\0';
	if (addr != NULL && addr[0] != '\0') {
		if (strchr(addr, ':') != NULL || port != 53)
			snprintf(ub_fwd, sizeof(ub_fwd), "%s@%u", addr,
			    port ? port : 53);
		else
			snprintf(ub_fwd, sizeof(ub_fwd), "%s", addr);
	}
	snprintf(ub_hosts, sizeof(ub_hosts), "%s", hosts ? hosts : "");
	if ((ub = dns_ctx_new()) == NULL)
		return -1;
	return 0;
}

/* a decimal number of at most `max' */
static int
dns_anchor_num(const char *tok, unsigned long max)
{
	char		*end;
	unsigned long	 v;

	if (*tok < '0' || *tok > '9')
		return 0;
	v = strtoul(tok, &end, 10);
	return *end == '\0' && v <= max;
}

/*
 * "OWNER [TTL] [IN] DS keytag alg digesttype HEX..." or "... DNSKEY
 * flags protocol alg BASE64...": libunbound keeps the text and parses it
 * only at the first query, so a typo is caught here, at start-up, and
 * not as a DANE lookup that fails at every delivery.
 */
int
dns_anchor_ok(const char *line)
{
	char		 buf[4096], *tok[64], *save = NULL, *t;
	const char	*chars;
	size_t		 n = 0, i, k, type;

	snprintf(buf, sizeof(buf), "%s", line);
	for (t = strtok_r(buf, " \t", &save); t != NULL && n < 64;
	    t = strtok_r(NULL, " \t", &save))
		tok[n++] = t;
	for (type = 1; type < n && type < 4; type++)
		if (strcasecmp(tok[type], "DS") == 0 ||
		    strcasecmp(tok[type], "DNSKEY") == 0)
			break;
	if (type >= n || type >= 4 || n < type + 5)
		return 0;
	if (strcasecmp(tok[type], "DS") == 0) {
		if (!dns_anchor_num(tok[type + 1], 65535) ||
		    !dns_anchor_num(tok[type + 2], 255) ||
		    !dns_anchor_num(tok[type + 3], 255))
			return 0;
		chars = "0123456789abcdefABCDEF";
	} else {
		if (!dns_anchor_num(tok[type + 1], 65535) ||
		    strcmp(tok[type + 2], "3") != 0 ||
		    !dns_anchor_num(tok[type + 3], 255))
			return 0;
		chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789+/=";
	}
	for (i = type + 4; i < n; i++)
		for (k = 0; tok[i][k] != '\0'; k++)
			if (strchr(chars, tok[i][k]) == NULL)
				return 0;
	return 1;
}

/* one line of a trust anchor file: a record, or nothing (blank, ';') */
static int
dns_anchor_line(const char *file, int lineno, char *line)
{
	char	*p, *semi;
	int	 rc;

	/* ';' starts a comment (keytags in root.key); none in DS/DNSKEY */
	if ((semi = strchr(line, ';')) != NULL)
		*semi = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	for (p = line; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '\0')
		return 0;
	if (!dns_anchor_ok(p)) {
		log_warnx("%s:%d: not a DS or DNSKEY record", file, lineno);
		return -1;
	}
	if ((rc = ub_ctx_add_ta(ub_sec, p)) != 0) {
		log_warnx("%s:%d: trust anchor refused: %s", file, lineno,
		    ub_strerror(rc));
		return -1;
	}
	return 1;
}

int
dns_init_dnssec(const char *file)
{
	FILE	*fp;
	char	 line[4096];
	int	 lineno = 0, n = 0, rc = 0, r;

	if (ub_sec != NULL)
		ub_ctx_delete(ub_sec);
	if ((ub_sec = dns_ctx_new()) == NULL)
		return -1;
	if ((fp = fopen(file, "re")) == NULL) {
		log_warn("dnssec trust anchor %s", file);
		goto fail;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if ((r = dns_anchor_line(file, lineno, line)) == -1)
			rc = -1;
		else
			n += r;
	}
	if (ferror(fp)) {
		log_warn("dnssec trust anchor %s", file);
		rc = -1;
	}
	fclose(fp);
	if (rc == 0 && n == 0) {
		log_warnx("%s: no trust anchor in the file", file);
		rc = -1;
	}
	if (rc == 0)
		return 0;
fail:
	ub_ctx_delete(ub_sec);
	ub_sec = NULL;
	return -1;
}

/*
 * The trust anchor: "dnssec trust-anchor FILE", else Debian's root key
 * when dns-root-data is installed, else none (DANE never applies: every
 * TLSA answer is insecure).  A configured file that does not load is
 * fatal: the administrator asked for DANE with it.
 */
void
dns_init(void)
{
	if (dns_init_with(conf->resolver, conf->resolver_port,
	    "/etc/hosts") == -1)
		fatalx("dns: cannot set up the resolver");
	if (conf->dnssec_anchor[0] != '\0') {
		if (dns_init_dnssec(conf->dnssec_anchor) == -1)
			fatalx("dns: cannot load the DNSSEC trust anchor %s",
			    conf->dnssec_anchor);
	} else if (access(DNS_ROOT_ANCHOR, R_OK) == 0 &&
	    dns_init_dnssec(DNS_ROOT_ANCHOR) == -1)
		log_warnx("dns: no DNSSEC validation: %s does not load; "
		    "DANE is off", DNS_ROOT_ANCHOR);
}

void
dns_shutdown(void)
{
	if (ub != NULL)
		ub_ctx_delete(ub);
	if (ub_sec != NULL)
		ub_ctx_delete(ub_sec);
	ub = ub_sec = NULL;
}

/* a host name we are willing to pass on: LDH labels (and '_') */
static int
dns_name_ok(const char *s)
{
	size_t	label = 0;

	if (*s == '\0' || strlen(s) >= DNS_NAME_MAX)
		return 0;
	for (; *s; s++) {
		if (*s == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

/*
 * DNS_Q_ANYNAME: any printable ASCII (the presentation form escapes the
 * rest), for SPF, whose domain-specs may hold any visible character.
 */
static int
dns_name_any_ok(const char *s)
{
	const char	*p;

	for (p = s; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return 0;
	/* one ending in an escaped dot (a\.) lost it above: not a name */
	return p == s || p[-1] != '\\';
}

/* a name from the wire: lower case, no trailing dot, "" for the root */
static int
dns_name_from_wire(const ns_msg *msg, const unsigned char *p, char *out,
    size_t outlen, int anyname)
{
	size_t	n;
	char	*c;

	if (ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg), p, out,
	    outlen) == -1)
		return -1;
	n = strlen(out);
	if (n > 0 && out[n - 1] == '.')
		out[--n] = '\0';
	for (c = out; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (n == 0)
		return 0;
	if (anyname)
		return dns_name_any_ok(out) ? 0 : -1;
	return dns_name_ok(out) ? 0 : -1;
}

/*
 * One TXT record's character-strings (length byte, bytes), joined, into
 * res->txtbuf.  -1 when the strings overrun the data (a malformed
 * message), 0 when it does not fit in what is left of txtbuf, 1 kept.
 */
static int
dns_txt_from_wire(struct dns_result *res, struct dns_rr *r,
    const unsigned char *rd, size_t rdlen)
{
	size_t	i, n, at = res->txtused, len = 0;

	for (i = 0; i < rdlen; i += 1 + n) {
		n = rd[i];
		if (n > rdlen - i - 1)
			return -1;
	}
	if (rdlen > sizeof(res->txtbuf) - at - 1)
		return 0;
	for (i = 0; i < rdlen; i += 1 + n) {
		n = rd[i];
		memcpy(res->txtbuf + at + len, rd + i + 1, n);
		len += n;
	}
	res->txtbuf[at + len] = '\0';
	r->txt = (uint32_t)at;
	r->txtlen = (uint32_t)len;
	res->txtused = at + len + 1;
	return 1;
}

/*
 * A TLSA record (RFC 6698 2.1): usage, selector, matching type, then the
 * association data, which goes to txtbuf.  0 when it is left out: no
 * data, more than DNS_TLSA_DATA_MAX, or no room left in txtbuf.
 */
static int
dns_tlsa_from_wire(struct dns_result *res, struct dns_rr *r,
    const unsigned char *rd, size_t rdlen)
{
	size_t	at = res->txtused, len;

	if (rdlen < 4 || rdlen - 3 > DNS_TLSA_DATA_MAX)
		return 0;
	len = rdlen - 3;
	if (len > sizeof(res->txtbuf) - at - 1)
		return 0;
	r->tlsa_usage = rd[0];
	r->tlsa_selector = rd[1];
	r->tlsa_mtype = rd[2];
	memcpy(res->txtbuf + at, rd + 3, len);
	res->txtbuf[at + len] = '\0';
	r->txt = (uint32_t)at;
	r->txtlen = (uint32_t)len;
	res->txtused = at + len + 1;
	return 1;
}

void
dns_parse_answer(struct dns_result *res, int qtype, int rcode,
    const unsigned char *pkt, int len)
{
	ns_msg		 msg;
	ns_rr		 rr;
	struct dns_rr	*r;
	int		 i, n, anyname = (qtype & DNS_Q_ANYNAME) != 0;

	qtype &= ~DNS_Q_FLAGS;
	res->nrr = 0;
	res->txtused = 0;
	if (rcode == ns_r_nxdomain) {
		res->status = DNS_NXDOMAIN;
		return;
	}
	res->status = DNS_TEMPFAIL;
	if (rcode != ns_r_noerror || pkt == NULL || len <= 0)
		return;
	if (ns_initparse(pkt, len, &msg) == -1)
		return;
	rcode = ns_msg_getflag(msg, ns_f_rcode);
	if (rcode == ns_r_nxdomain) {
		res->status = DNS_NXDOMAIN;
		return;
	}
	if (rcode != ns_r_noerror)
		return;
	n = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < n && res->nrr < DNS_MAX_RR; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1) {
			/* malformed: trust none of it */
			res->nrr = 0;
			return;
		}
		if (ns_rr_class(rr) != ns_c_in || (int)ns_rr_type(rr) != qtype)
			continue;
		r = &res->rr[res->nrr];
		memset(r, 0, sizeof(*r));
		r->type = (uint16_t)qtype;
		r->ttl = ns_rr_ttl(rr);
		switch (qtype) {
		case DNS_T_A: {
			struct sockaddr_in *sin = (struct sockaddr_in *)&r->addr;

			if (ns_rr_rdlen(rr) != 4)
				continue;
			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, ns_rr_rdata(rr), 4);
			break;
		}
		case DNS_T_AAAA: {
			struct sockaddr_in6 *sin6 =
			    (struct sockaddr_in6 *)&r->addr;

			if (ns_rr_rdlen(rr) != 16)
				continue;
			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, ns_rr_rdata(rr), 16);
			break;
		}
		case DNS_T_MX:
			if (ns_rr_rdlen(rr) < 3)
				continue;
			r->preference = (uint16_t)ns_get16(ns_rr_rdata(rr));
			if (dns_name_from_wire(&msg, ns_rr_rdata(rr) + 2,
			    r->name, sizeof(r->name), anyname) == -1)
				continue;
			break;
		case DNS_T_PTR:
			if (dns_name_from_wire(&msg, ns_rr_rdata(rr), r->name,
			    sizeof(r->name), anyname) == -1 || r->name[0] == '\0')
				continue;
			break;
		case DNS_T_TLSA:
			if (!dns_tlsa_from_wire(res, r, ns_rr_rdata(rr),
			    ns_rr_rdlen(rr)))
				continue;
			break;
		case DNS_T_TXT:
			switch (dns_txt_from_wire(res, r, ns_rr_rdata(rr),
			    ns_rr_rdlen(rr))) {
			case -1:
				res->nrr = 0;
				return;
			case 0:
				continue;
			}
			break;
		default:
			continue;
		}
		res->nrr++;
	}
	res->status = res->nrr > 0 ? DNS_OK : DNS_NODATA;
}

static void
dns_query_free(struct dns_query *q)
{
	event_free(q->ev);
	free(q);
}

static void
dns_query_deliver(struct dns_query *q)
{
	q->delivered = 1;
	evtimer_del(q->ev);
	q->cb(q->arg, &q->res);
}

/* unbound's answer; may run inside ub_resolve_event (/etc/hosts data) */
static void
dns_ub_cb(void *arg, int rcode, void *pkt, int len, int sec, char *bogus,
    int ratelimited)
{
	struct dns_query	*q = arg;

	q->answered = 1;
	if (q->delivered) {
		/* timed out earlier; the caller has moved on */
		dns_query_free(q);
		return;
	}
	dns_parse_answer(&q->res, q->type, rcode, pkt, len);
	q->res.secure = sec == 2;
	if (sec == 1) {
		/* bogus DNSSEC: do not believe it, try again later */
		if (bogus != NULL)
			log_info("dns: DNSSEC validation failed: %s", bogus);
		q->res.status = DNS_TEMPFAIL;
		q->res.bogus = 1;
		q->res.nrr = 0;
	}
	if (q->submitting)
		return;		/* dns_query() schedules the delivery */
	dns_query_deliver(q);
	dns_query_free(q);
}

static void
dns_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dns_query	*q = arg;

	if (q->answered) {
		dns_query_deliver(q);
		dns_query_free(q);
		return;
	}
	q->res.status = DNS_TEMPFAIL;
	q->res.nrr = 0;
	dns_query_deliver(q);
	/* freed when unbound finally calls back */
}

void
dns_query(const char *name, int type, int timeout, dns_cb cb, void *arg)
{
	struct dns_query	*q;
	struct ub_ctx		*ctx;
	struct timeval		 tv;
	int			 rc;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		fatal("calloc");
	if ((q->ev = evtimer_new(ev_base, dns_timer_cb, q)) == NULL)
		fatal("evtimer_new");
	q->cb = cb;
	q->arg = arg;
	q->type = type;
	q->res.status = DNS_TEMPFAIL;
	/* without a trust anchor, DNSSEC questions get insecure answers */
	ctx = (type & DNS_Q_DNSSEC) && ub_sec != NULL ? ub_sec : ub;
	if (ctx == NULL) {
		rc = UB_INITFAIL;
	} else {
		q->submitting = 1;
		rc = ub_resolve_event(ctx, name, type & ~DNS_Q_FLAGS,
		    ns_c_in, q, dns_ub_cb, NULL);
		q->submitting = 0;
	}
	if (rc != 0) {
		log_warnx("dns: query %s type %d: %s", name, type,
		    ub_strerror(rc));
		q->answered = 1;
	}
	if (q->answered) {
		/* deliver from the loop, never from inside this call */
		event_active(q->ev, EV_TIMEOUT, 0);
		return;
	}
	tv.tv_sec = timeout;
	tv.tv_usec = 0;
	evtimer_add(q->ev, &tv);
}

/* v4-mapped IPv6 as plain IPv4, so it reverses and compares as IPv4 */
static void
dns_unmap(const struct sockaddr_storage *in, struct sockaddr_storage *out)
{
	const struct sockaddr_in6	*sin6 = (const void *)in;
	struct sockaddr_in		*sin = (void *)out;

	memset(out, 0, sizeof(*out));
	if (in->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, (const unsigned char *)
		    &sin6->sin6_addr + 12, 4);
		return;
	}
	*out = *in;
}

int
dns_ptr_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	struct sockaddr_storage	 a;
	const unsigned char	*b;
	size_t			 off = 0;
	int			 i, n;

	dns_unmap(ss, &a);
	if (a.ss_family == AF_INET) {
		b = (const unsigned char *)&((struct sockaddr_in *)&a)->sin_addr;
		n = snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2],
		    b[1], b[0]);
		return n < 0 || (size_t)n >= len ? -1 : 0;
	}
	if (a.ss_family != AF_INET6)
		return -1;
	b = (const unsigned char *)&((struct sockaddr_in6 *)&a)->sin6_addr;
	for (i = 15; i >= 0; i--) {
		n = snprintf(buf + off, len - off, "%x.%x.", b[i] & 0xf,
		    b[i] >> 4);
		if (n < 0 || (size_t)n >= len - off)
			return -1;
		off += (size_t)n;
	}
	n = snprintf(buf + off, len - off, "ip6.arpa");
	return n < 0 || (size_t)n >= len - off ? -1 : 0;
}

int
dns_addr_equal(const struct sockaddr_storage *x,
    const struct sockaddr_storage *y)
{
	struct sockaddr_storage	a, b;

	dns_unmap(x, &a);
	dns_unmap(y, &b);
	if (a.ss_family != b.ss_family)
		return 0;
	if (a.ss_family == AF_INET)
		return memcmp(&((struct sockaddr_in *)&a)->sin_addr,
		    &((struct sockaddr_in *)&b)->sin_addr, 4) == 0;
	if (a.ss_family == AF_INET6)
		return memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr,
		    &((struct sockaddr_in6 *)&b)->sin6_addr, 16) == 0;
	return 0;
}

/*
 * Reverse DNS.  Forward confirmation matters: whoever controls the
 * client's address block writes its PTR records and can claim any name;
 * only a name whose own A/AAAA records lead back to the address was put
 * there by the name's owner too.
 */
struct rdns_waiter {
	TAILQ_ENTRY(rdns_waiter) entry;
	dns_rdns_cb		 cb;
	void			*arg;
	uint32_t		 reqid;
};

struct rdns_state {
	TAILQ_ENTRY(rdns_state)	 entry;		/* rdns_inflight */
	struct lka_rdns		 reply;
	struct sockaddr_storage	 addr;		/* unmapped */
	TAILQ_HEAD(, rdns_waiter) waiters;
	char			 names[DNS_RDNS_MAX_NAMES][DNS_NAME_MAX];
	size_t			 nnames, next;
	int			 tempfail;
	int			 cacheable;
	struct event		*ev;		/* a cached answer's delivery */
};

/*
 * Answers are kept a while per address, and a question already asked is
 * not asked again: clients come back (a busy sender opens a connection
 * per message, and `match from rdns' asks for every recipient), and a
 * resolver that does not answer would otherwise collect one pending
 * query per connection.
 */
#define RDNS_CACHE_SLOTS	256
#define RDNS_TTL_OK		300	/* seconds, a name or "none" */
#define RDNS_TTL_TEMPFAIL	10

struct rdns_cached {
	struct sockaddr_storage	 addr;		/* unmapped; AF_UNSPEC: free */
	time_t			 expires;
	struct lka_rdns		 reply;
};

static struct rdns_cached	rdns_cache[RDNS_CACHE_SLOTS];
static TAILQ_HEAD(, rdns_state)	rdns_inflight =
				    TAILQ_HEAD_INITIALIZER(rdns_inflight);

static void	rdns_forward_next(struct rdns_state *);
static void	rdns_done(struct rdns_state *);

/* a cached answer too is delivered from the loop, never from dns_rdns() */
static void
rdns_cached_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct rdns_state	*st = arg;

	event_free(st->ev);
	rdns_done(st);
}

static struct rdns_cached *
rdns_slot(const struct sockaddr_storage *a)
{
	return &rdns_cache[sockaddr_ip_hash(a) % RDNS_CACHE_SLOTS];
}

static void
rdns_done(struct rdns_state *st)
{
	struct rdns_waiter	*w;
	struct rdns_cached	*c;

	if (st->cacheable) {
		TAILQ_REMOVE(&rdns_inflight, st, entry);
		c = rdns_slot(&st->addr);
		c->addr = st->addr;
		c->reply = st->reply;
		c->expires = time(NULL) + (st->reply.status ==
		    PROTO_TEMPFAIL ? RDNS_TTL_TEMPFAIL : RDNS_TTL_OK);
	}
	while ((w = TAILQ_FIRST(&st->waiters)) != NULL) {
		TAILQ_REMOVE(&st->waiters, w, entry);
		st->reply.reqid = w->reqid;
		w->cb(w->arg, &st->reply);
		free(w);
	}
	free(st);
}

static void
rdns_forward_cb(void *arg, const struct dns_result *res)
{
	struct rdns_state	*st = arg;
	size_t			 i;

	if (res->status == DNS_TEMPFAIL)
		st->tempfail = 1;
	for (i = 0; i < res->nrr; i++) {
		if (dns_addr_equal(&res->rr[i].addr, &st->addr)) {
			snprintf(st->reply.name, sizeof(st->reply.name), "%s",
			    st->names[st->next - 1]);
			st->reply.fcrdns = 1;
			st->reply.status = PROTO_OK;
			rdns_done(st);
			return;
		}
	}
	rdns_forward_next(st);
}

static void
rdns_forward_next(struct rdns_state *st)
{
	if (st->next < st->nnames) {
		dns_query(st->names[st->next++], st->addr.ss_family == AF_INET ?
		    DNS_T_A : DNS_T_AAAA, DNS_RDNS_TIMEOUT, rdns_forward_cb, st);
		return;
	}
	/* a name, but not confirmed: report it, flagged as such */
	snprintf(st->reply.name, sizeof(st->reply.name), "%s", st->names[0]);
	st->reply.fcrdns = 0;
	st->reply.status = st->tempfail ? PROTO_TEMPFAIL : PROTO_OK;
	rdns_done(st);
}

static void
rdns_ptr_cb(void *arg, const struct dns_result *res)
{
	struct rdns_state	*st = arg;
	size_t			 i;

	switch (res->status) {
	case DNS_OK:
		break;
	case DNS_TEMPFAIL:
		st->reply.status = PROTO_TEMPFAIL;
		rdns_done(st);
		return;
	default:
		st->reply.status = PROTO_PERMFAIL;
		rdns_done(st);
		return;
	}
	for (i = 0; i < res->nrr && st->nnames < DNS_RDNS_MAX_NAMES; i++)
		snprintf(st->names[st->nnames++], DNS_NAME_MAX, "%s",
		    res->rr[i].name);
	rdns_forward_next(st);
}

void
dns_rdns(const struct lka_rdns *req, dns_rdns_cb cb, void *arg)
{
	struct rdns_state	*st;
	struct rdns_waiter	*w;
	struct rdns_cached	*c;
	struct sockaddr_storage	 addr;
	char			 ptr[128];

	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatal("calloc");
	w->cb = cb;
	w->arg = arg;
	w->reqid = req->reqid;
	dns_unmap(&req->addr, &addr);
	if (addr.ss_family == AF_INET || addr.ss_family == AF_INET6) {
		c = rdns_slot(&addr);
		if (c->addr.ss_family != AF_UNSPEC &&
		    dns_addr_equal(&c->addr, &addr) &&
		    c->expires > time(NULL)) {
			if ((st = calloc(1, sizeof(*st))) == NULL ||
			    (st->ev = event_new(ev_base, -1, 0,
			    rdns_cached_cb, st)) == NULL)
				fatal("rdns");
			TAILQ_INIT(&st->waiters);
			TAILQ_INSERT_TAIL(&st->waiters, w, entry);
			st->reply = c->reply;
			st->reply.addr = req->addr;
			event_active(st->ev, EV_TIMEOUT, 0);
			return;
		}
		TAILQ_FOREACH(st, &rdns_inflight, entry)
			if (dns_addr_equal(&st->addr, &addr)) {
				TAILQ_INSERT_TAIL(&st->waiters, w, entry);
				return;
			}
	}
	if ((st = calloc(1, sizeof(*st))) == NULL)
		fatal("calloc");
	TAILQ_INIT(&st->waiters);
	TAILQ_INSERT_TAIL(&st->waiters, w, entry);
	st->reply.reqid = req->reqid;
	st->reply.addr = req->addr;
	st->reply.status = PROTO_PERMFAIL;
	st->addr = addr;
	if (dns_ptr_name(&req->addr, ptr, sizeof(ptr)) == -1) {
		/* a local (unix socket) client has no reverse name */
		rdns_done(st);
		return;
	}
	st->cacheable = 1;
	TAILQ_INSERT_TAIL(&rdns_inflight, st, entry);
	dns_query(ptr, DNS_T_PTR, DNS_RDNS_TIMEOUT, rdns_ptr_cb, st);
}

static void
lka_rdns_reply(void *arg, const struct lka_rdns *r)
{
	struct mproc	*p = arg;

	mproc_compose(p, IMSG_LKA_RDNS, r->reqid, -1, r, sizeof(*r));
}

void
dns_lka_rdns(struct mproc *p, const struct lka_rdns *req)
{
	dns_rdns(req, lka_rdns_reply, p);
}

/*
 * Sender domain check, as Postfix's reject_unknown_sender_domain: a
 * MAIL FROM domain that can receive no mail (no MX, no A, no AAAA, or a
 * null MX) cannot receive our bounces either.
 */
struct sender_state {
	dns_result_cb		 cb;
	void			*arg;
	struct lka_result	 r;
	char			 domain[ADDR_DOMAIN_MAX + 1];
	char			 from[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	int			 step;	/* 0 MX, 1 A, 2 AAAA */
};

static void
sender_done(struct sender_state *st, uint32_t status, const char *code,
    const char *why)
{
	st->r.status = status;
	if (code != NULL)
		snprintf(st->r.reply, sizeof(st->r.reply), "%s <%s>: Sender "
		    "address rejected: domain %s", code, st->from, why);
	st->cb(st->arg, &st->r);
	free(st);
}

static void
sender_cb(void *arg, const struct dns_result *res)
{
	static const int	 types[] = { DNS_T_MX, DNS_T_A, DNS_T_AAAA };
	struct sender_state	*st = arg;

	switch (res->status) {
	case DNS_OK:
		/* RFC 7505 3: a lone MX with target "." */
		if (st->step == 0 && res->nrr == 1 && res->rr[0].name[0] ==
		    '\0') {
			sender_done(st, PROTO_PERMFAIL, "550 5.7.27",
			    "accepts no mail (null MX)");
			return;
		}
		sender_done(st, PROTO_OK, NULL, NULL);
		return;
	case DNS_TEMPFAIL:
		sender_done(st, PROTO_TEMPFAIL, "450 4.1.8",
		    "cannot be looked up now, try again later");
		return;
	case DNS_NXDOMAIN:
		sender_done(st, PROTO_PERMFAIL, "550 5.1.8", "not found");
		return;
	}
	if (++st->step >= 3) {
		sender_done(st, PROTO_PERMFAIL, "550 5.1.8",
		    "has no MX, A or AAAA record");
		return;
	}
	dns_query(st->domain, types[st->step], DNS_SENDER_TIMEOUT, sender_cb,
	    st);
}

void
dns_check_sender(const struct lka_rcpt_req *req, dns_result_cb cb, void *arg)
{
	struct sender_state	*st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		fatal("calloc");
	st->cb = cb;
	st->arg = arg;
	st->r.reqid = req->reqid;
	snprintf(st->domain, sizeof(st->domain), "%s", req->mailfrom.domain);
	addr_to_string(&req->mailfrom, st->from, sizeof(st->from));
	/*
	 * The null sender, address literals and our own names need no DNS.
	 * Nor can we check an internationalized (U-label) domain: without
	 * IDNA there is no A-label to ask for, and refusing a valid sender
	 * is worse than not checking it.
	 */
	if (st->domain[0] == '\0' || st->domain[0] == '[' ||
	    !dns_name_ok(st->domain) || rule_is_local_domain(st->domain)) {
		sender_done(st, PROTO_OK, NULL, NULL);
		return;
	}
	dns_query(st->domain, DNS_T_MX, DNS_SENDER_TIMEOUT, sender_cb, st);
}

static void
lka_sender_reply(void *arg, const struct lka_result *r)
{
	struct mproc	*p = arg;

	mproc_compose(p, IMSG_LKA_SENDER, r->reqid, -1, r, sizeof(*r));
}

void
dns_lka_sender(struct mproc *p, const struct lka_rcpt_req *req)
{
	dns_check_sender(req, lka_sender_reply, p);
}
