/*
 * mta.c -- the mta process: remote delivery over SMTP.
 *
 * The queue hands us one envelope at a time (IMSG_MTA_DELIVER, with the
 * spool message's descriptor).  Envelopes are sorted into routes: one
 * per relay action and destination -- the recipient domain, whose MX
 * hosts lookup resolves, or the action's "relay host" URL.  Within a
 * route, envelopes of the same message and sender that arrive in the
 * same turn of the event loop become one task (one transaction with many
 * RCPTs), which is how the queue's one-by-one dispatch still yields one
 * copy of a message per destination.
 *
 * Sessions (mta_session.c) take tasks from their route: an idle cached
 * session first, otherwise a new connection while the route has fewer
 * than its concurrency window allows (slow start, mta_window.c: from
 * "mta initial-conn-per-host" up to "mta max-conn-per-host", one more
 * per delivery, one fewer per refused session).  A burst for one
 * destination thus opens a few connections that each carry several
 * messages.  A task holds at most "mta max-rcpt-per-msg" recipients;
 * "mta rate-per-dest" and "mta delay-per-dest" space the messages a
 * route hands out.  Every recipient's outcome goes back to the queue as
 * its own struct delivery_result.
 *
 * Nothing a remote server sends ever changes an envelope: the results
 * carry our own escaped copy of its reply text, and the queue writes
 * that through the envelope escaping again.
 *
 * The folder mta/ is the mta process: this file (routes and tasks),
 * mta_session.c (the SMTP/LMTP client), mta_io.c (its sockets),
 * mta_sts.c (MTA-STS policies), mta_7bit.c and mime7bit.c (8-bit to
 * 7-bit).  The reply parser is shared with the LMTP delivery process,
 * so it lives in common/mta_reply.c.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define POSTHASTE_MTA_INTERNAL
#include "cabundle.h"
#include "keys_client.h"
#include "log.h"
#include "table.h"
#include "mproc.h"
#include "mta.h"
#include "privsep.h"
#include "proto.h"
#include "tls_policy.h"
#include "proc.h"
#include "util.h"
#include "wirescan.h"

#define MTA_RESOLVE_TTL	300	/* seconds a route trusts its host list */
/*
 * At shutdown, how long the replies to ends of data are waited for: below
 * the parent's own bound (smtpd.c, SHUTDOWN_WAIT), so that the results
 * still reach the queue before anything is killed.
 */
#define MTA_STOP_SECS	25

SSL_CTX			*mta_ssl_ctx;
int			 mta_ssl_ca_loaded;
static char		*ca_pem;		/* the CA bundle, read before the chroot */
static size_t		 ca_pem_len;

static struct mproc	 m_parent, m_queue, m_lookup;
static TAILQ_HEAD(, mta_route) routes = TAILQ_HEAD_INITIALIZER(routes);
static uint32_t		 mta_reqid;
static int		 retiring;	/* mta_retire() */
static int		 stopping;	/* mta_retire(1): the daemon stops */

/* credentials for smarthosts, read from the secrets tables at start-up */
struct mta_secret {
	const struct action	*action;
	char			*user;
	char			*pass;
};
static struct mta_secret *secrets;
static size_t		  nsecrets;

static void	mta_route_kick_cb(evutil_socket_t, short, void *);

struct mproc *
mta_lookup_channel(void)
{
	return &m_lookup;
}

double
mta_elapsed_ms(const struct timespec *since)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000.0 +
	    (now.tv_nsec - since->tv_nsec) / 1e6;
}

const char *
mta_tls_auth_name(enum mta_tls_auth a)
{
	switch (a) {
	case MTA_TLS_NONE:
		return "none";
	case MTA_TLS_ANON:
		return "anonymous";
	case MTA_TLS_VERIFIED:
		return "verified";
	case MTA_TLS_DANE:
		return "verified-dane";
	}
	return "?";
}

int
mta_addr_utf8(const struct mailaddr *a)
{
	const char	*p;

	for (p = a->user; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return 1;
	for (p = a->domain; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return 1;
	return 0;
}

/* ---- results ---- */

static void
rcpt_send_result(struct mta_task *t, struct mta_rcpt *r, int status,
    const char *relay, const char *text)
{
	struct delivery_result	res;
	double			wait;

	memset(&res, 0, sizeof(res));
	res.evpid = r->evp.id;
	res.status = status;
	snprintf(res.text, sizeof(res.text), "%s", text);
	snprintf(res.relay, sizeof(res.relay), "%s", relay ? relay : "none");
	if (status == PROTO_OK)
		res.dsn = r->dsn;
	snprintf(res.reply, sizeof(res.reply), "%s", t->reply);
	/* waiting includes the set-up of the session that took it */
	wait = t->started ? (t->t_taken.tv_sec - t->t_arrived.tv_sec) *
	    1000.0 + (t->t_taken.tv_nsec - t->t_arrived.tv_nsec) / 1e6 -
	    t->delay_conn : mta_elapsed_ms(&t->t_arrived);
	res.delay_wait = wait > 0 ? (uint32_t)wait : 0;
	res.delay_conn = t->delay_conn;
	if (t->started)
		res.delay_xfer = (uint32_t)mta_elapsed_ms(&t->t_taken);
	r->done = 1;
	mproc_compose(&m_queue, IMSG_MTA_RESULT, 0, -1, &res, sizeof(res));
}

void
mta_rcpt_result(struct mta_task *t, size_t i, int status, const char *relay,
    const char *fmt, ...)
{
	char	text[ENV_TEXT_MAX];
	va_list	ap;

	if (i >= t->nrcpts || t->rcpts[i].done)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	rcpt_send_result(t, &t->rcpts[i], status, relay, text);
}

void
mta_task_fail(struct mta_task *t, int status, const char *relay,
    const char *fmt, ...)
{
	char	text[ENV_TEXT_MAX];
	va_list	ap;
	size_t	i;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (i = 0; i < t->nrcpts; i++)
		if (!t->rcpts[i].done)
			rcpt_send_result(t, &t->rcpts[i], status, relay, text);
}

void
mta_task_free(struct mta_task *t)
{
	size_t	i;

	/* a task must never vanish with a recipient unanswered */
	for (i = 0; i < t->nrcpts; i++)
		if (!t->rcpts[i].done)
			rcpt_send_result(t, &t->rcpts[i], PROTO_TEMPFAIL, NULL,
			    "4.3.0 delivery attempt ended without a result");
	if (t->msg.fd != -1)
		close(t->msg.fd);
	free(t->rcpts);
	free(t);
}

void
mta_task_drop(struct mta_task *t)
{
	if (t->msg.fd != -1)
		close(t->msg.fd);
	free(t->rcpts);
	free(t);
}

void
mta_task_requeue(struct mta_task *t)
{
	struct mta_route	*rt = t->route;

	t->started = 0;
	TAILQ_INSERT_HEAD(&rt->tasks, t, entry);
	rt->ntasks++;
	mta_route_kick(rt);
}

/* ---- the message: what it needs from the peer ---- */

/*
 * One pass over the spool file: the exact size on the wire (CRLF line
 * ends and dot-stuffing, RFC 1870 wants the size as transmitted), and
 * whether the header or the body carries 8-bit bytes.
 */
static int
mta_task_scan(struct mta_task *t)
{
	static char	 buf[65536];
	struct wirescan	 w;
	ssize_t		 n;
	off_t		 off = 0;

	wirescan_init(&w);
	for (;;) {
		n = spool_msg_pread(&t->msg, buf, sizeof(buf), off);
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		wirescan_add(&w, buf, n);
		off += n;
	}
	t->wire_size = wirescan_size(&w);
	t->header8bit = w.header8bit;
	t->body8bit = w.body8bit;
	return 0;
}

/* ---- routes ---- */

static uint16_t
scheme_port(enum mta_scheme s)
{
	switch (s) {
	case MTA_SCHEME_SMTPS:
		return 465;
	case MTA_SCHEME_LMTP:
		return 24;
	default:
		return 25;
	}
}

/*
 * The relay host URL, already checked by parse.c:
 * scheme://[label@]host[:port], host a name, IPv4 or [IPv6].
 */
static int
route_parse_url(struct mta_route *rt, const char *url)
{
	static const struct {
		const char	*prefix;
		enum mta_scheme	 scheme;
	} schemes[] = {
		{ "smtp://", MTA_SCHEME_SMTP },
		{ "smtp+tls://", MTA_SCHEME_SMTP_TLS },
		{ "smtps://", MTA_SCHEME_SMTPS },
		{ "smtp+notls://", MTA_SCHEME_SMTP_NOTLS },
		{ "lmtp://", MTA_SCHEME_LMTP },
	};
	const char	*p = NULL, *at, *end, *colon;
	size_t		 i, n;
	long		 port;
	char		*ep;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		n = strlen(schemes[i].prefix);
		if (strncmp(url, schemes[i].prefix, n) == 0) {
			p = url + n;
			rt->scheme = schemes[i].scheme;
			break;
		}
	}
	if (p == NULL)
		return -1;
	if ((at = strchr(p, '@')) != NULL) {
		n = at - p;
		if (n == 0 || n >= sizeof(rt->label))
			return -1;
		memcpy(rt->label, p, n);
		rt->label[n] = '\0';
		p = at + 1;
	}
	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL)
			return -1;
		n = end - p - 1;
		p++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strchr(p, ':');
		n = colon ? (size_t)(colon - p) : strlen(p);
	}
	if (n == 0 || n >= sizeof(rt->host))
		return -1;
	memcpy(rt->host, p, n);
	rt->host[n] = '\0';
	if (colon != NULL) {
		errno = 0;
		port = strtol(colon + 1, &ep, 10);
		if (errno || *ep != '\0' || port < 1 || port > 65535)
			return -1;
		rt->port = (uint16_t)port;
	}
	return 0;
}

static void
route_resolve(struct mta_route *rt)
{
	struct lka_mx_req	req;

	if (rt->scheme == MTA_SCHEME_LMTP) {
		mta_route_error(rt, PROTO_TEMPFAIL, "4.3.5 lmtp:// relay hosts "
		    "are not supported; use an lmtp action");
		return;
	}
	if (rt->tls_policy_bad) {
		/* logged by mta_tlspolicy_find(); never a weaker policy */
		mta_route_error(rt, PROTO_TEMPFAIL, "4.7.5 the TLS policy "
		    "table's entry for the destination is invalid");
		return;
	}
	memset(&req, 0, sizeof(req));
	req.reqid = rt->reqid = ++mta_reqid;
	snprintf(req.domain, sizeof(req.domain), "%s", rt->domain);
	snprintf(req.relay_host, sizeof(req.relay_host), "%s",
	    rt->action->relay_host);
	/* the MTA-STS policy comes anew with each resolution */
	free(rt->sts);
	rt->sts = NULL;
	if (mta_sts_wanted(rt))
		req.flags |= LKA_MX_STS;
	if (mta_dane_wanted(rt))
		req.flags |= LKA_MX_DANE;
	rt->resolving = 1;
	rt->nhosts = 0;
	mta_dane_reset(rt);
	mproc_compose(&m_lookup, IMSG_LKA_MX, 0, -1, &req, sizeof(req));
}

/*
 * The TLS policy table's entry for the destination (the recipient
 * domain, or the relay host's name) wins over the action's level.
 */
static void
route_tls_policy(struct mta_route *rt)
{
	struct tls_policy	tp;
	int			rc;

	rc = mta_tlspolicy_find(rt->domain[0] != '\0' ? rt->domain :
	    rt->host, &tp);
	if (rc == -1) {
		rt->tls_policy_bad = 1;
		return;
	}
	if (rc == 0)
		return;
	rt->tls_level = tp.level;
	if ((rt->tls_policy = malloc(sizeof(*rt->tls_policy))) == NULL)
		fatal("malloc");
	*rt->tls_policy = tp;
}

/*
 * RFC 8689 on a new route of REQUIRETLS or "TLS-Required: No" mail.
 * REQUIRETLS needs a verified certificate: a level that would not check
 * one ("may", "encrypt") checks it; "no" and the DANE levels stay (a
 * session without a verified peer is refused for it then).  TLS-Required
 * No (4.2.2): TLS is still tried, and nothing more is required.
 */
static void
route_tls_needs(struct mta_route *rt, uint32_t evflags)
{
	if (evflags & EF_REQUIRETLS) {
		rt->requiretls = 1;
		if (rt->tls_level == RELAY_TLS_OPPORTUNISTIC ||
		    rt->tls_level == RELAY_TLS_REQUIRE)
			rt->tls_level = RELAY_TLS_VERIFY;
	} else if (evflags & EF_TLS_OPTIONAL) {
		rt->tls_optional = 1;
		if (rt->tls_level != RELAY_TLS_NO)
			rt->tls_level = RELAY_TLS_OPPORTUNISTIC;
	}
}

static struct mta_route *
route_find(struct action *a, const char *domain, uint32_t evflags)
{
	struct mta_route	*rt;
	size_t			 i;
	int			 rtls = (evflags & EF_REQUIRETLS) != 0;
	int			 topt = !rtls && (evflags & EF_TLS_OPTIONAL);

	/* a smarthost takes every domain; otherwise one route per domain */
	if (a->relay_host[0] != '\0')
		domain = "";
	TAILQ_FOREACH(rt, &routes, entry)
		if (rt->action == a && strcasecmp(rt->domain, domain) == 0 &&
		    rt->requiretls == rtls && rt->tls_optional == topt)
			return rt;
	if ((rt = calloc(1, sizeof(*rt))) == NULL)
		fatal("calloc");
	rt->action = a;
	snprintf(rt->domain, sizeof(rt->domain), "%s", domain);
	rt->scheme = MTA_SCHEME_MX;
	rt->tls_level = a->relay_tls;
	mta_window_init(&rt->window, conf->mta_initial_per_dest,
	    conf->mta_max_per_dest);
	if (a->relay_host[0] != '\0' &&
	    route_parse_url(rt, a->relay_host) == -1)
		fatalx("relay host \"%s\" of action %s does not parse",
		    a->relay_host, a->name);
	route_tls_policy(rt);
	route_tls_needs(rt, evflags);
	TAILQ_INIT(&rt->tasks);
	TAILQ_INIT(&rt->sessions);
	if ((rt->ev_kick = event_new(ev_base, -1, 0, mta_route_kick_cb, rt)) ==
	    NULL)
		fatal("event_new");
	for (i = 0; i < nsecrets; i++)
		if (secrets[i].action == a) {
			rt->auth_user = secrets[i].user;
			rt->auth_pass = secrets[i].pass;
		}
	TAILQ_INSERT_TAIL(&routes, rt, entry);
	return rt;
}

static void
route_free(struct mta_route *rt)
{
	TAILQ_REMOVE(&routes, rt, entry);
	mta_dane_reset(rt);
	free(rt->tls_policy);
	event_free(rt->ev_kick);
	if (rt->ev_pace != NULL)
		event_free(rt->ev_pace);
	free(rt->sts);
	free(rt);
}

/*
 * Every waiting task of the route fails the same way: no host to send
 * to, or every host refused.
 */
void
mta_route_error(struct mta_route *rt, int status, const char *text)
{
	struct mta_task	*t;

	rt->lasterr_status = status;
	if (text != rt->lasterr) {
		snprintf(rt->lasterr, sizeof(rt->lasterr), "%s", text);
		rt->lasterr_conn = 0;
		rt->lasterr_at = time(NULL);
	}
	while ((t = TAILQ_FIRST(&rt->tasks)) != NULL) {
		TAILQ_REMOVE(&rt->tasks, t, entry);
		rt->ntasks--;
		mta_task_fail(t, status, NULL, "%s", text);
		mta_task_free(t);
	}
	mta_route_kick(rt);
}

void
mta_route_delivered(struct mta_route *rt, const struct mta_task *t)
{
	int	before = rt->window.limit;

	mta_window_success(&rt->window);
	mta_window_note_txn(&rt->window, (uint32_t)(mta_elapsed_ms(
	    &t->t_taken) * 1000));
	if (rt->window.limit != before && rt->ntasks > 0)
		mta_route_kick(rt);
}

/*
 * Hosts that sent us away lately, by address.  A route's host list goes
 * with the route -- freed as soon as it has nothing to do, refilled by
 * each MX lookup -- but a back-off must outlive it: otherwise the
 * queue's next retry of the mail that failed would make a new route
 * that connects at once, and a host that says 421 would see a
 * connection at every retry of every message.  An entry is forgotten
 * one back-off after its end, so that failures in a row double it.
 */
struct mta_backoff {
	TAILQ_ENTRY(mta_backoff) entry;
	struct sockaddr_storage	 ss;
	time_t			 until;		/* no connection before */
	time_t			 forget;	/* then a fresh start */
	unsigned		 fails;
	char			 text[ENV_TEXT_MAX];	/* why, for the queue */
};
static TAILQ_HEAD(, mta_backoff) backoffs = TAILQ_HEAD_INITIALIZER(backoffs);

static int
ss_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in	*a4, *b4;
	const struct sockaddr_in6	*a6, *b6;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		a4 = (const struct sockaddr_in *)a;
		b4 = (const struct sockaddr_in *)b;
		return a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		a6 = (const struct sockaddr_in6 *)a;
		b6 = (const struct sockaddr_in6 *)b;
		return a6->sin6_port == b6->sin6_port &&
		    memcmp(&a6->sin6_addr, &b6->sin6_addr,
		    sizeof(a6->sin6_addr)) == 0;
	}
	return 0;
}

/* the host's entry, or NULL; drops the entries forgotten by now */
static struct mta_backoff *
backoff_find(const struct sockaddr_storage *ss, time_t now)
{
	struct mta_backoff	*b, *tmp;

	TAILQ_FOREACH_SAFE(b, &backoffs, entry, tmp) {
		if (b->forget <= now) {
			TAILQ_REMOVE(&backoffs, b, entry);
			free(b);
			continue;
		}
		if (ss_equal(&b->ss, ss))
			return b;
	}
	return NULL;
}

int
mta_host_usable(const struct mta_host *h, time_t now)
{
	struct mta_backoff	*b;

	if (h->dead_until > now)
		return 0;
	return (b = backoff_find(&h->ss, now)) == NULL || b->until <= now;
}

void
mta_route_ready(struct mta_route *rt, struct mta_host *h, uint32_t setup_us)
{
	struct mta_backoff	*b;

	mta_window_note_setup(&rt->window, setup_us);

	if ((b = backoff_find(&h->ss, time(NULL))) != NULL) {
		TAILQ_REMOVE(&backoffs, b, entry);
		free(b);
	}
}

/* why the route's hosts are backed off, or NULL */
static const char *
route_backoff_text(struct mta_route *rt)
{
	struct mta_backoff	*b;
	time_t			 now = time(NULL);
	size_t			 i;

	for (i = 0; i < rt->nhosts; i++)
		if ((b = backoff_find(&rt->hosts[i].ss, now)) != NULL &&
		    b->until > now)
			return b->text;
	return NULL;
}

void
mta_route_refused(struct mta_route *rt, struct mta_host *h,
    const char *text)
{
	struct mta_backoff	*b;
	time_t			 now = time(NULL), secs;

	mta_window_failure(&rt->window);
	if (h == NULL)
		return;
	if ((b = backoff_find(&h->ss, now)) == NULL) {
		if ((b = calloc(1, sizeof(*b))) == NULL)
			fatal("calloc");
		b->ss = h->ss;
		TAILQ_INSERT_TAIL(&backoffs, b, entry);
	}
	snprintf(b->text, sizeof(b->text), "%s", text);
	h->dead_until = b->until;
	/* the other sessions of one wave fail too: that is one failure */
	if (b->until > now)
		return;
	if (b->fails < 1000)
		b->fails++;
	secs = mta_backoff_secs(conf->mta_backoff, b->fails);
	h->dead_until = b->until = now + secs;
	b->forget = b->until + secs;
	log_info("mta: %s: not connecting again for %lld s (failure %u in "
	    "a row); %s allows %d session%s now", h->name, (long long)secs,
	    b->fails, rt->domain[0] ? rt->domain : rt->host,
	    rt->window.limit, rt->window.limit == 1 ? "" : "s");
}

static void
route_pace_cb(evutil_socket_t fd, short ev, void *arg)
{
	mta_route_kick(arg);
}

/* microseconds between two messages to one destination; 0: no pace */
static int64_t
route_pace_us(void)
{
	if (conf->mta_delay_per_dest > 0)
		return (int64_t)conf->mta_delay_per_dest * 1000000;
	if (conf->mta_rate_per_dest > 0)
		return (int64_t)3600 * 1000000 / conf->mta_rate_per_dest;
	return 0;
}

/*
 * "mta delay-per-dest" (at least that long between two messages to one
 * destination, as Postfix's default_destination_rate_delay, and like it
 * one connection at a time then) and "mta rate-per-dest" (at most that
 * many messages per second, minute or hour; as many connections as the
 * window allows, but no new one while it is too early for a message).
 * 1 when a message may go now; otherwise a timer kicks the route when it
 * is time.
 */
static int
route_pace_ready(struct mta_route *rt)
{
	struct timespec	now;
	struct timeval	tv;
	int64_t		wait_us;

	if (route_pace_us() == 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	wait_us = (int64_t)(rt->next_take.tv_sec - now.tv_sec) * 1000000 +
	    (rt->next_take.tv_nsec - now.tv_nsec) / 1000;
	if (wait_us <= 0)
		return 1;
	if (rt->ev_pace == NULL && (rt->ev_pace = evtimer_new(ev_base,
	    route_pace_cb, rt)) == NULL)
		fatal("evtimer_new");
	if (!evtimer_pending(rt->ev_pace, NULL)) {
		tv.tv_sec = wait_us / 1000000;
		tv.tv_usec = wait_us % 1000000;
		evtimer_add(rt->ev_pace, &tv);
	}
	return 0;
}

/* a message goes now: the next one not before one interval from now */
static void
route_pace_taken(struct mta_route *rt)
{
	int64_t	us = route_pace_us();

	if (us == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &rt->next_take);
	rt->next_take.tv_sec += us / 1000000;
	rt->next_take.tv_nsec += (us % 1000000) * 1000;
	if (rt->next_take.tv_nsec >= 1000000000) {
		rt->next_take.tv_sec++;
		rt->next_take.tv_nsec -= 1000000000;
	}
}

struct mta_task *
mta_route_take(struct mta_route *rt)
{
	struct mta_task	*t;

	if ((t = TAILQ_FIRST(&rt->tasks)) == NULL || !route_pace_ready(rt))
		return NULL;
	route_pace_taken(rt);
	TAILQ_REMOVE(&rt->tasks, t, entry);
	rt->ntasks--;
	t->started = 1;
	clock_gettime(CLOCK_MONOTONIC, &t->t_taken);
	return t;
}

/* do the route's work on the next turn of the loop, once */
void
mta_route_kick(struct mta_route *rt)
{
	event_active(rt->ev_kick, EV_TIMEOUT, 0);
}

static int
route_all_dead(struct mta_route *rt)
{
	time_t	now = time(NULL);
	size_t	i;

	for (i = 0; i < rt->nhosts; i++)
		if (mta_host_usable(&rt->hosts[i], now))
			return 0;
	return 1;
}

static void
mta_route_kick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct mta_route	*rt = arg;
	struct mta_session	*s;
	struct mta_task		*t;
	const char		*why;

	if (rt->ntasks == 0 && rt->nsessions == 0 &&
	    (!rt->resolving || stopping)) {
		route_free(rt);
		if (retiring && TAILQ_EMPTY(&routes))
			exit(0);
		return;
	}
	if (rt->ntasks == 0 || rt->resolving)
		return;
	if (rt->resolved && rt->nsessions == 0 &&
	    time(NULL) - rt->resolved_at > MTA_RESOLVE_TTL)
		rt->resolved = 0;
	if (!rt->resolved) {
		route_resolve(rt);
		return;
	}
	while (rt->ntasks > 0) {
		if ((s = mta_session_idle(rt)) != NULL) {
			if ((t = mta_route_take(rt)) == NULL)
				break;	/* paced: the timer comes back */
			mta_session_give(s, t);
			continue;
		}
		/* one connection at a time with a delay, as Postfix */
		if (conf->mta_delay_per_dest > 0 && rt->nsessions >= 1)
			break;
		if ((size_t)rt->nconnecting >= rt->ntasks ||
		    !mta_window_may_open(&rt->window, rt->nsessions,
		    rt->ntasks - (size_t)rt->nconnecting))
			break;
		/*
		 * Paced: a new session only when it is time for a message
		 * and no session being set up will take that one anyway.
		 */
		if (route_pace_us() > 0 && (rt->nconnecting > 0 ||
		    !route_pace_ready(rt)))
			break;
		if (route_all_dead(rt)) {
			/* nothing left to try now; the queue retries later */
			if (rt->nsessions == 0)
				mta_route_error(rt, rt->lasterr_status ?
				    rt->lasterr_status : PROTO_TEMPFAIL,
				    rt->lasterr[0] ? rt->lasterr :
				    (why = route_backoff_text(rt)) != NULL ?
				    why : "4.4.1 no host to connect to");
			break;
		}
		mta_session_new(rt);
	}
}

/* ---- the queue ---- */

static void
mta_deliver(const struct envelope *evp, int fd)
{
	struct delivery_result	 r;
	struct action		*a;
	struct mta_route	*rt;
	struct mta_task		*t;
	struct mta_rcpt		*nr;
	const char		*why = NULL;

	if (stopping) {
		/* not begun: the queue keeps it for the next start */
		close(fd);
		return;
	}
	a = config_find_action(conf, evp->action);
	if (a == NULL)
		why = "4.3.5 the envelope's action is no longer configured";
	else if (a->type != ACTION_RELAY)
		why = "4.3.5 the envelope's action is not a relay action";
	else if (a->relay_host[0] == '\0' && evp->dest.domain[0] == '\0')
		why = "5.1.3 the recipient address has no domain";
	if (why != NULL) {
		close(fd);
		memset(&r, 0, sizeof(r));
		r.evpid = evp->id;
		r.status = why[0] == '5' ? PROTO_PERMFAIL : PROTO_TEMPFAIL;
		snprintf(r.text, sizeof(r.text), "%s", why);
		snprintf(r.relay, sizeof(r.relay), "none");
		mproc_compose(&m_queue, IMSG_MTA_RESULT, 0, -1, &r, sizeof(r));
		return;
	}
	rt = route_find(a, evp->dest.domain, evp->flags);
	/* same message, same sender, not yet taken: one more RCPT */
	TAILQ_FOREACH(t, &rt->tasks, entry) {
		if (t->msgid == msgid_of(evp->id) &&
		    t->nrcpts < (size_t)conf->mta_max_rcpt &&
		    t->nrcpts < MTA_TASK_MAX_RCPT &&
		    strcmp(t->rcpts[0].evp.sender.user, evp->sender.user) == 0 &&
		    strcmp(t->rcpts[0].evp.sender.domain,
		    evp->sender.domain) == 0 &&
		    t->rcpts[0].evp.flags == evp->flags &&
		    strcmp(t->rcpts[0].evp.envid, evp->envid) == 0)
			break;
	}
	if (t != NULL) {
		close(fd);
		nr = reallocarray(t->rcpts, t->nrcpts + 1, sizeof(*nr));
		if (nr == NULL)
			fatal("reallocarray");
		t->rcpts = nr;
		memset(&nr[t->nrcpts], 0, sizeof(*nr));
		nr[t->nrcpts++].evp = *evp;
		return;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->rcpts = calloc(1, sizeof(*t->rcpts))) == NULL)
		fatal("calloc");
	t->route = rt;
	t->msgid = msgid_of(evp->id);
	spool_msg_set(&t->msg, fd, evp);
	t->rcpts[0].evp = *evp;
	t->nrcpts = 1;
	clock_gettime(CLOCK_MONOTONIC, &t->t_arrived);
	if (evp->flags & EF_MEASURED) {
		/* the smtp worker measured it as it spooled it */
		t->wire_size = (uint64_t)evp->wire_size;
		t->header8bit = (evp->flags & EF_HEADER_8BIT) != 0;
		t->body8bit = (evp->flags & (EF_HEADER_8BIT |
		    EF_BODY_8BIT)) != 0;
	} else if (mta_task_scan(t) == -1) {
		log_warn("%08x: cannot read the message", t->msgid);
		mta_task_fail(t, PROTO_TEMPFAIL, NULL,
		    "4.3.0 cannot read the queued message");
		mta_task_free(t);
		return;
	}
	TAILQ_INSERT_TAIL(&rt->tasks, t, entry);
	rt->ntasks++;
	mta_route_kick(rt);
}

static void
mta_queue_dispatch(struct mproc *p, struct imsg *m)
{
	struct envelope	evp;

	switch (m->hdr.type) {
	case IMSG_MTA_DELIVER:
		proto_get(p, m, &evp, sizeof(evp));
		if (m->fd == -1 || envelope_valid(&evp) == -1 ||
		    evp.dest_type != DEST_REMOTE)
			fatalx("invalid delivery request from queue");
		mta_deliver(&evp, m->fd);
		break;
	default:
		fatalx("unexpected message %u from queue", m->hdr.type);
	}
}

/* ---- lookup: MX hosts ---- */

static struct mta_route *
route_by_reqid(uint32_t reqid)
{
	struct mta_route	*rt;

	TAILQ_FOREACH(rt, &routes, entry)
		if (rt->resolving && rt->reqid == reqid)
			return rt;
	return NULL;
}

static void
mta_lookup_dispatch(struct mproc *p, struct imsg *m)
{
	struct lka_mx_host	 h;
	struct lka_mx_sts	*sts;
	struct lka_mx_tlsa	 tlsa;
	struct lka_result	 res;
	struct mta_route	*rt;
	struct mta_host		*mh;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	uint16_t		 port;
	char			 text[ENV_TEXT_MAX];

	switch (m->hdr.type) {
	case IMSG_LKA_MX_HOST:
		proto_get(p, m, &h, sizeof(h));
		if (proto_valid_string(h.host, sizeof(h.host)) == -1 ||
		    (h.addr.ss_family != AF_INET &&
		    h.addr.ss_family != AF_INET6))
			fatalx("invalid MX host from lookup");
		if ((rt = route_by_reqid(h.reqid)) == NULL && stopping)
			break;	/* its route is gone */
		if (rt == NULL)
			fatalx("MX host for an unknown request from lookup");
		if (rt->nhosts >= MTA_HOSTS_MAX)
			break;	/* enough to try; the rest is ignored */
		mh = &rt->hosts[rt->nhosts++];
		memset(mh, 0, sizeof(*mh));
		snprintf(mh->name, sizeof(mh->name), "%s", h.host);
		mh->preference = h.preference;
		mh->ss = h.addr;
		port = rt->port ? rt->port : scheme_port(rt->scheme);
		if (mh->ss.ss_family == AF_INET) {
			sin = (struct sockaddr_in *)&mh->ss;
			if (sin->sin_port == 0)
				sin->sin_port = htons(port);
		} else {
			sin6 = (struct sockaddr_in6 *)&mh->ss;
			if (sin6->sin6_port == 0)
				sin6->sin6_port = htons(port);
		}
		break;
	case IMSG_LKA_MX_STS:
		/* large: not on the stack */
		if ((sts = malloc(sizeof(*sts))) == NULL)
			fatal("malloc");
		PROTO_READ(p, m, sts, proto_valid_lka_mx_sts);
		if ((rt = route_by_reqid(sts->reqid)) == NULL && !stopping)
			fatalx("MTA-STS policy for an unknown request from "
			    "lookup");
		if (rt != NULL)
			mta_sts_set(rt, sts);
		free(sts);
		break;
	case IMSG_LKA_MX_TLSA:
		/* after the hosts, before the result: the hosts' DANE */
		PROTO_READ(p, m, &tlsa, proto_valid_lka_mx_tlsa);
		if ((rt = route_by_reqid(tlsa.reqid)) == NULL && stopping)
			break;
		if (rt == NULL)
			fatalx("TLSA records for an unknown request from "
			    "lookup");
		if (!mta_dane_wanted(rt))
			fatalx("TLSA records that were not asked for from "
			    "lookup");
		mta_dane_note(rt, &tlsa);
		break;
	case IMSG_LKA_MX_RESULT:
		PROTO_READ(p, m, &res, proto_valid_lka_result);
		if ((rt = route_by_reqid(res.reqid)) == NULL && stopping)
			break;
		if (rt == NULL)
			fatalx("MX result for an unknown request from lookup");
		rt->resolving = 0;
		if (res.status == PROTO_OK && rt->nhosts > 0 &&
		    mta_sts_filter_hosts(rt) == -1)
			break;	/* MTA-STS enforce: no host may be used */
		if (res.status == PROTO_OK && rt->nhosts > 0) {
			rt->resolved = 1;
			rt->resolved_at = time(NULL);
			mta_route_kick(rt);
			break;
		}
		/* lookup's reply is "NNN X.Y.Z text"; keep from X.Y.Z on */
		if (strlen(res.reply) > 4 && res.reply[3] == ' ')
			snprintf(text, sizeof(text), "%s", res.reply + 4);
		else if (res.reply[0] != '\0')
			snprintf(text, sizeof(text), "%s", res.reply);
		else
			snprintf(text, sizeof(text), "%s",
			    "4.4.3 no mail host found for the domain");
		mta_route_error(rt, res.status == PROTO_PERMFAIL ?
		    PROTO_PERMFAIL : PROTO_TEMPFAIL, text);
		break;
	default:
		fatalx("unexpected message %u from lookup", m->hdr.type);
	}
}

/*
 * A reload started a new mta, and the queue sends its work there from
 * now on.  We deliver what we already hold, with the configuration we
 * started with -- cutting a transaction short after its "." could make
 * the peer deliver the message twice -- QUIT every session as soon as
 * it has nothing to do, and exit when no route is left.  The parent
 * sends SIGTERM after its grace period (smtpd.c, RETIRE_GRACE): what
 * we still hold then is retried by the queue when our channel closes.
 *
 * When the daemon stops (stop: IMSG_SHUTDOWN), smtpd(8) promises the
 * deliveries in flight their end, for the same reason: a session whose
 * "." went out waits for its reply, sends the result to the queue and
 * QUITs; every other session ends at once and nothing new begins (what
 * we held goes back to the queue untried: a transaction cut before its
 * "." delivers nothing).  MTA_STOP_SECS bounds the wait.  With nothing
 * in flight we exit at once.
 */
int
mta_retiring(void)
{
	return retiring;
}

int
mta_stopping(void)
{
	return stopping;
}

static void
on_stop_timeout(evutil_socket_t fd, short ev, void *arg)
{
	log_warnx("stopping: no reply to the end of data within %d s; the "
	    "queue will try those messages again", MTA_STOP_SECS);
	exit(0);
}

static void
mta_stop(void)
{
	struct mta_route	*rt;
	struct mta_task		*t;
	struct event		*ev;
	struct timeval		 tv = { MTA_STOP_SECS, 0 };
	int			 waiting = 0;

	stopping = 1;
	TAILQ_FOREACH(rt, &routes, entry) {
		while ((t = TAILQ_FIRST(&rt->tasks)) != NULL) {
			TAILQ_REMOVE(&rt->tasks, t, entry);
			rt->ntasks--;
			mta_task_drop(t);
		}
		if (rt->ev_pace != NULL)
			evtimer_del(rt->ev_pace);
		mta_session_stop(rt);
		waiting += rt->nsessions;
		mta_route_kick(rt);
	}
	if (TAILQ_EMPTY(&routes))
		exit(0);
	if (waiting > 0)
		log_info("stopping: waiting for the reply to the end of data "
		    "in %d session%s", waiting, waiting == 1 ? "" : "s");
	if ((ev = evtimer_new(ev_base, on_stop_timeout, NULL)) == NULL)
		fatal("evtimer_new");
	evtimer_add(ev, &tv);
}

static void
mta_retire(int stop)
{
	struct mta_route	*rt;

	if (stop && !stopping) {
		retiring = 1;
		mta_stop();
		return;
	}
	if (retiring)
		return;
	retiring = 1;
	log_debug("retired by a reload");
	TAILQ_FOREACH(rt, &routes, entry) {
		mta_session_quit_idle(rt);
		mta_route_kick(rt);
	}
	if (TAILQ_EMPTY(&routes))
		exit(0);
}

static void
mta_parent_dispatch(struct mproc *p, struct imsg *m)
{
	switch (m->hdr.type) {
	case IMSG_RETIRE:
		mproc_check_len(p, m, 0);
		mta_retire(0);
		break;
	case IMSG_SHUTDOWN:
		mproc_check_len(p, m, 0);
		mta_retire(1);
		break;
	default:
		fatalx("unexpected message %u from %s", m->hdr.type,
		    p->name);
	}
}

/* ---- start-up ---- */

/*
 * The chroot has no CA store and no tables: read both now.  OpenSSL
 * parses the whole default CA file at load time; the hashed directory
 * lookup would be lazy and fail inside the chroot, so it is not used.
 */
static void
mta_tls_init(void)
{
	if ((mta_ssl_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		fatalx("SSL_CTX_new");
	SSL_CTX_set_mode(mta_ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(mta_ssl_ctx, SSL_VERIFY_NONE, NULL);
	mta_dane_init(mta_ssl_ctx);
	mta_tlscache_init(mta_ssl_ctx);
	/*
	 * Only the bytes are read here, as root before the chroot: parsing
	 * a few hundred certificates is slow, and that can wait until the
	 * process is unprivileged (mta_tls_load_cas).
	 */
	ca_pem = cabundle_read(conf->mta_ca_file, &ca_pem_len,
	    "\"relay tls verify\" will fail");
}

/*
 * Client certificates ("relay ... pki NAME"), for servers that ask for
 * one: the chain read now, as root; the key is a stub whose signatures
 * the keys process makes (keys_client.h).  Indexed by pki id.
 */
struct mta_client_pki {
	X509		*cert;
	STACK_OF(X509)	*chain;
	EVP_PKEY	*stub;
};
static struct mta_client_pki	client_pkis[CONF_MAX_PKIS];

static void
mta_tls_client_certs(void)
{
	struct mta_client_pki	*cp;
	struct action		*a;
	struct pki		*pki;
	X509			*x;
	EVP_PKEY		*pub;
	BIO			*bio;
	int			 id;

	TAILQ_FOREACH(a, &conf->actions, entry) {
		if (a->type != ACTION_RELAY || a->relay_pki[0] == '\0' ||
		    (pki = config_find_pki(conf, a->relay_pki)) == NULL ||
		    (id = config_pki_index(conf, pki)) < 0 ||
		    client_pkis[id].cert != NULL)
			continue;
		cp = &client_pkis[id];
		if ((bio = BIO_new_file(pki->cert_file, "r")) == NULL ||
		    (cp->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) ==
		    NULL)
			fatalx("pki %s: cannot read the certificate %s",
			    pki->name, pki->cert_file);
		if ((cp->chain = sk_X509_new_null()) == NULL)
			fatalx("sk_X509_new_null");
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
			if (!sk_X509_push(cp->chain, x))
				fatalx("sk_X509_push");
		BIO_free(bio);
		ERR_clear_error();
		if ((pub = X509_get0_pubkey(cp->cert)) == NULL ||
		    (cp->stub = keys_client_stub((uint32_t)id, pub)) == NULL)
			fatalx("pki %s: certificate %s: unusable public key",
			    pki->name, pki->cert_file);
	}
}

void
mta_tls_use_client_cert(SSL *ssl, const struct action *a)
{
	struct mta_client_pki	*cp;
	struct pki		*pki;
	int			 id;

	if (a->relay_pki[0] == '\0' ||
	    (pki = config_find_pki(conf, a->relay_pki)) == NULL ||
	    (id = config_pki_index(conf, pki)) < 0 ||
	    (cp = &client_pkis[id])->cert == NULL)
		return;
	if (SSL_use_certificate(ssl, cp->cert) != 1 ||
	    SSL_use_PrivateKey(ssl, cp->stub) != 1 ||
	    SSL_set1_chain(ssl, cp->chain) != 1)
		fatalx("pki %s: cannot use the client certificate",
		    pki->name);
}

static void
mta_tls_load_cas(void)
{
	STACK_OF(X509_INFO)	*infos;
	X509_STORE		*store;
	BIO			*bio;
	int			 i, n = 0;

	if (ca_pem == NULL)
		return;
	store = SSL_CTX_get_cert_store(mta_ssl_ctx);
	if ((bio = BIO_new_mem_buf(ca_pem, (int)ca_pem_len)) == NULL)
		fatalx("BIO_new_mem_buf");
	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	BIO_free(bio);
	for (i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *xi = sk_X509_INFO_value(infos, i);

		if (xi->x509 && X509_STORE_add_cert(store, xi->x509) == 1)
			n++;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	ERR_clear_error();
	free(ca_pem);
	ca_pem = NULL;
	if (n > 0)
		mta_ssl_ca_loaded = 1;
	else
		log_warnx("no CA certificate loaded: \"relay tls verify\" "
		    "will fail");
}

static void
mta_secrets_init(void)
{
	struct action	*a;
	struct table	*t;
	char		 val[1024], *colon;
	struct mta_route tmp;

	TAILQ_FOREACH(a, &conf->actions, entry) {
		if (a->type != ACTION_RELAY || a->relay_auth_table[0] == '\0')
			continue;
		memset(&tmp, 0, sizeof(tmp));
		if (route_parse_url(&tmp, a->relay_host) == -1 ||
		    tmp.label[0] == '\0') {
			log_warnx("action %s: relay auth needs a label in the "
			    "host URL (smtp+tls://label@host)", a->name);
			continue;
		}
		if ((t = config_find_table(conf, a->relay_auth_table)) ==
		    NULL || table_lookup(t, tmp.label, val, sizeof(val)) !=
		    TABLE_FOUND || (colon = strchr(val, ':')) == NULL) {
			log_warnx("action %s: no \"user:password\" for label "
			    "%s in table %s", a->name, tmp.label,
			    a->relay_auth_table);
			explicit_bzero(val, sizeof(val));
			continue;
		}
		*colon = '\0';
		secrets = reallocarray(secrets, nsecrets + 1,
		    sizeof(*secrets));
		if (secrets == NULL)
			fatal("reallocarray");
		secrets[nsecrets].action = a;
		if ((secrets[nsecrets].user = strdup(val)) == NULL ||
		    (secrets[nsecrets].pass = strdup(colon + 1)) == NULL)
			fatal("strdup");
		nsecrets++;
		explicit_bzero(val, sizeof(val));
	}
}

void
mta_main(struct proc_fds *f)
{
	proc_setup("mta");
	keys_client_init(f->keys);
	mta_tls_init();
	mta_tls_client_certs();
	mta_secrets_init();
	mta_tlspolicy_init();
	/* the credentials are copied: no other table entry stays here */
	config_forget_secrets(conf, CONF_FORGET_ALL);
	table_forget_all();
	privsep_drop(SMTPD_USER, SMTPD_EMPTY_DIR);
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	mproc_defer_turns();
	mta_io_init();
	sandbox_enter(SANDBOX_MTA);
	mta_tls_load_cas();
	mproc_init(&m_parent, f->parent, "parent", mta_parent_dispatch, NULL);
	mproc_init(&m_queue, f->queue, "queue", mta_queue_dispatch, NULL);
	mproc_init(&m_lookup, f->lookup, "lookup", mta_lookup_dispatch, NULL);
	proc_on_term(NULL);
	event_base_dispatch(ev_base);
	exit(0);
}

#ifdef POSTHASTE_FUZZ
/*
 * Only in mk/fuzz.mk's build (regress/fuzz/fuzz_mta_session.c): the mta
 * as mta_main() sets it up, without the privilege drop, the sandbox, the
 * CA store, the secrets and the loop, which the harness turns itself
 * while it plays the queue and lookup on the far ends of the channels.
 */
void
mta_fuzz_start(int queue, int lookup)
{
	if ((mta_ssl_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		fatalx("SSL_CTX_new");
	SSL_CTX_set_mode(mta_ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(mta_ssl_ctx, SSL_VERIFY_NONE, NULL);
	mta_dane_init(mta_ssl_ctx);
	mta_tlscache_init(mta_ssl_ctx);
	mproc_defer_turns();
	mta_io_init();
	mproc_init(&m_queue, queue, "queue", mta_queue_dispatch, NULL);
	mproc_init(&m_lookup, lookup, "lookup", mta_lookup_dispatch, NULL);
}

/* what a reload does to idle sessions (QUIT), without retiring */
void
mta_fuzz_quit_idle(void)
{
	struct mta_route	*rt;

	TAILQ_FOREACH(rt, &routes, entry)
		mta_session_quit_idle(rt);
}

/* each input starts afresh: no host backed off by the one before */
void
mta_fuzz_forget_backoffs(void)
{
	struct mta_backoff	*b;

	while ((b = TAILQ_FIRST(&backoffs)) != NULL) {
		TAILQ_REMOVE(&backoffs, b, entry);
		free(b);
	}
}

/* routes still held: each goes once its tasks and sessions are done */
int
mta_fuzz_nroutes(void)
{
	struct mta_route	*rt;
	int			 n = 0;

	TAILQ_FOREACH(rt, &routes, entry)
		n++;
	return n;
}
#endif
