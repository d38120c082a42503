/*
 * sts.c -- MTA-STS (RFC 8461) in the lookup process: a domain's policy
 * for the mta, found, fetched and kept.
 *
 * When the mta asks for a domain's MX hosts with LKA_MX_STS (mx.c), we
 * ask DNS for the "_mta-sts.DOMAIN" TXT record.  Exactly one record
 * beginning "v=STSv1;" that parses gives the policy id (RFC 8461 3.1).
 * If the cache holds an unexpired policy of that id, that is the
 * answer; otherwise the policy is fetched from
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt (3.3): HTTPS only, the
 * server's certificate verified for the name against the trust anchors
 * the mta uses ("mta ca-file", else the system's), no redirects, a 200 with Content-Type text/plain, at most
 * STS_POLICY_MAX bytes, bounded in time.  The host's addresses come
 * from our own resolver (libunbound, the configured "resolver") and are
 * handed to libcurl, which then never resolves anything itself (no
 * threads, no blocking getaddrinfo).  libcurl's multi interface runs on
 * this process's libevent loop: curl tells us which sockets to watch
 * and when to call it back (socket_cb, timer_cb), and we tell it what
 * happened (curl_multi_socket_action).
 *
 * When the record cannot be had (a DNS failure, no record, an invalid
 * one) or the fetch fails, an unexpired cached policy is used as it is
 * (5.1: a policy stays in force until it expires, which protects
 * against an attacker who suppresses the record or the web server);
 * without one the domain has no policy, and the failure is passed on
 * for TLS-RPT.
 *
 * The cache: the directory "sts" in the spool (made by the parent,
 * owned by our user, 0700), one file per domain named after it (a
 * validated lower-case host name, so no "/" and no leading "."), in the
 * format of common/sts.h: the TXT id, when it was fetched, and the
 * policy text as the server sent it, which is parsed again on every
 * read.  It is written to ".new.DOMAIN" and renamed over the old file;
 * there is no fsync: a crash may leave a torn or empty file, which the
 * reader refuses (the final "end" line) and which costs one fetch.
 * It is read again at every request (mx routes are resolved again
 * every few minutes at most), so a new lookup after a reload or a
 * restart has it at once.  The file of a domain whose policy expired
 * and that publishes no record any more is removed.  The directory is opened before the
 * sandbox; the seccomp filter allows creating, renaming and removing
 * files only beneath that descriptor (platform.h sandbox_write_dir()).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/x509.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "mproc.h"
#include "platform.h"
#include "proc.h"
#include "proto.h"
#include "sts.h"

#define STS_DNS_TIMEOUT		10	/* seconds per DNS query */
#define STS_CONNECT_TIMEOUT	10	/* seconds to connect to the server */
#define STS_FETCH_TIMEOUT	30	/* seconds for the whole fetch */
#define STS_MAX_ADDRS		8	/* policy host addresses tried */
#define STS_CACHE_MAX		(STS_POLICY_MAX + 512)	/* a cache file */

struct sts_job {
	uint32_t	 reqid;
	char		 domain[DNS_NAME_MAX];
	sts_result_cb	 cb;
	void		*arg;
	int		 cached;	/* cache holds an unexpired policy */
	int		 cache_file;	/* the domain has a cache file */
	struct sts_cache cache;
	char		 id[STS_ID_MAX];	/* the TXT record's */
	/* the fetch */
	int		 pending;	/* A and AAAA queries out */
	size_t		 naddrs;
	char		 addrs[2 * STS_MAX_ADDRS][INET6_ADDRSTRLEN + 2];
	CURL		*easy;
	struct curl_slist *resolve;
	char		*body;
	size_t		 bodylen;
	int		 too_big;
	char		 errbuf[CURL_ERROR_SIZE];
};

struct sts_addr_query {
	struct sts_job	*job;
	int		 family;
};

/* what curl watches on one socket */
struct sts_sock {
	struct event	*ev;
};

static CURLM		*multi;
static struct event	*ev_timer;
static int		 cache_dir = -1;
static char		*ca_pem;	/* the trust anchors, read at start */
static size_t		 ca_pem_len;

static void	sts_check_done(void);

/* ---- answers ---- */

static void
sts_free(struct sts_job *job)
{
	if (job->easy != NULL)
		curl_easy_cleanup(job->easy);
	curl_slist_free_all(job->resolve);
	free(job->body);
	free(job);
}

static void
sts_answer_policy(struct sts_job *job, const char *id,
    const struct sts_policy *p, const char *how)
{
	struct lka_mx_sts	r;
	size_t			i;

	memset(&r, 0, sizeof(r));
	r.reqid = job->reqid;
	r.status = LKA_STS_POLICY;
	r.mode = (uint32_t)p->mode;
	r.max_age = p->max_age;
	r.nmx = (uint32_t)p->nmx;
	snprintf(r.id, sizeof(r.id), "%s", id);
	for (i = 0; i < p->nmx; i++)
		snprintf(r.mx[i], sizeof(r.mx[i]), "%s", p->mx[i]);
	snprintf(r.detail, sizeof(r.detail), "%s", how);
	log_debug("mta-sts: %s: policy id %s, mode %s (%s)", job->domain, id,
	    sts_mode_name(p->mode), how);
	job->cb(job->arg, &r);
	sts_free(job);
}

/*
 * No policy to give: status LKA_STS_NONE, or the failure to get one.
 * An unexpired cached policy is given instead (RFC 8461 5.1).
 */
static void
sts_answer_fail(struct sts_job *job, uint32_t status, const char *why)
{
	struct lka_mx_sts	r;

	if (job->cached) {
		if (status != LKA_STS_NONE)
			log_info("mta-sts: %s: %s; the cached policy (id %s) "
			    "stays in force", job->domain, why, job->cache.id);
		sts_answer_policy(job, job->cache.id, &job->cache.policy,
		    "cached");
		return;
	}
	if (status != LKA_STS_NONE)
		log_info("mta-sts: %s: no policy: %s", job->domain, why);
	memset(&r, 0, sizeof(r));
	r.reqid = job->reqid;
	r.status = status;
	snprintf(r.detail, sizeof(r.detail), "%s", why);
	job->cb(job->arg, &r);
	sts_free(job);
}

/* ---- the cache ---- */

static void
sts_cache_load(struct sts_job *job)
{
	char		*buf;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd;
	time_t		 now = time(NULL);

	if (cache_dir == -1)
		return;
	if ((fd = openat(cache_dir, job->domain, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			log_warn("mta-sts: cache file %s", job->domain);
		return;
	}
	job->cache_file = 1;
	if ((buf = malloc(STS_CACHE_MAX)) == NULL)
		fatal("malloc");
	while (len < STS_CACHE_MAX &&
	    (n = read(fd, buf + len, STS_CACHE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (sts_cache_decode(buf, len, &job->cache) == -1)
		log_info("mta-sts: cache file %s is not valid: ignored",
		    job->domain);
	else if (job->cache.fetched <= now &&
	    now - job->cache.fetched < (time_t)job->cache.policy.max_age)
		job->cached = 1;
	else
		log_debug("mta-sts: %s: the cached policy expired",
		    job->domain);
	free(buf);
}

static void
sts_cache_store(struct sts_job *job, time_t fetched)
{
	char	*buf, tmp[DNS_NAME_MAX + 8];
	long	 n;
	size_t	 off;
	ssize_t	 w;
	int	 fd;

	if (cache_dir == -1)
		return;
	if ((buf = malloc(STS_CACHE_MAX)) == NULL)
		fatal("malloc");
	if ((n = sts_cache_encode(buf, STS_CACHE_MAX, job->id, fetched,
	    job->body, job->bodylen)) == -1)
		fatalx("mta-sts: a policy does not fit its cache file");
	snprintf(tmp, sizeof(tmp), ".new.%s", job->domain);
	if ((fd = openat(cache_dir, tmp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1) {
		log_warn("mta-sts: cache file %s", tmp);
		free(buf);
		return;
	}
	for (off = 0; off < (size_t)n; off += (size_t)w)
		if ((w = write(fd, buf + off, (size_t)n - off)) <= 0)
			break;
	free(buf);
	if (off < (size_t)n || close(fd) == -1) {
		log_warn("mta-sts: writing cache file %s", tmp);
		if (off < (size_t)n)
			close(fd);
		if (unlinkat(cache_dir, tmp, 0) == -1)
			log_warn("mta-sts: unlink %s", tmp);
		return;
	}
	if (renameat(cache_dir, tmp, cache_dir, job->domain) == -1) {
		log_warn("mta-sts: rename %s", tmp);
		if (unlinkat(cache_dir, tmp, 0) == -1)
			log_warn("mta-sts: unlink %s", tmp);
	}
}

/* ---- curl on the event loop ---- */

static void
sts_sock_event(evutil_socket_t fd, short what, void *arg)
{
	int	flags = 0, running;

	(void)arg;
	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(multi, fd, flags, &running);
	sts_check_done();
}

static void
sts_timer_event(evutil_socket_t fd, short what, void *arg)
{
	int	running;

	(void)fd;
	(void)what;
	(void)arg;
	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	sts_check_done();
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what, or no longer */
static int
sts_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
	struct sts_sock	*ss = socketp;
	short		 kind = EV_PERSIST;

	(void)easy;
	(void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (ss != NULL) {
			event_free(ss->ev);
			free(ss);
		}
		curl_multi_assign(multi, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (ss == NULL) {
		if ((ss = calloc(1, sizeof(*ss))) == NULL)
			fatal("calloc");
		curl_multi_assign(multi, s, ss);
	} else
		event_free(ss->ev);
	if ((ss->ev = event_new(ev_base, s, kind, sts_sock_event, NULL)) ==
	    NULL || event_add(ss->ev, NULL) == -1)
		fatalx("mta-sts: event_new");
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: call curl back in ms milliseconds; -1 never */
static int
sts_timer_cb(CURLM *m, long ms, void *userp)
{
	struct timeval	tv;

	(void)m;
	(void)userp;
	if (ms < 0) {
		evtimer_del(ev_timer);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev_timer, &tv);
	return 0;
}

static size_t
sts_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sts_job	*job = arg;
	size_t		 n = size * nmemb;

	if (n > STS_POLICY_MAX - job->bodylen) {
		job->too_big = 1;
		return 0;	/* curl stops with CURLE_WRITE_ERROR */
	}
	memcpy(job->body + job->bodylen, data, n);
	job->bodylen += n;
	return n;
}

/* "text/plain", any case, alone or with parameters (RFC 8461 3.2) */
static int
sts_text_plain(const char *ct)
{
	if (ct == NULL || strncasecmp(ct, "text/plain", 10) != 0)
		return 0;
	return ct[10] == '\0' || ct[10] == ';' || ct[10] == ' ' ||
	    ct[10] == '\t';
}

static void
sts_fetched(struct sts_job *job, CURLcode rc)
{
	struct sts_policy	 p;
	const char		*why, *ct = NULL;
	char			 text[300];
	long			 code = 0;

	if (rc != CURLE_OK) {
		snprintf(text, sizeof(text), "fetching the policy failed: %s",
		    job->errbuf[0] ? job->errbuf : curl_easy_strerror(rc));
		if (rc == CURLE_PEER_FAILED_VERIFICATION ||
		    rc == CURLE_SSL_CACERT_BADFILE)
			sts_answer_fail(job, LKA_STS_WEBPKI, text);
		else if (job->too_big || rc == CURLE_FILESIZE_EXCEEDED)
			sts_answer_fail(job, LKA_STS_INVALID,
			    "the policy is larger than 64 KB");
		else
			sts_answer_fail(job, LKA_STS_FETCH_ERROR, text);
		return;
	}
	curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(job->easy, CURLINFO_CONTENT_TYPE, &ct);
	if (code != 200) {
		/* RFC 8461 3.3: only a 200 is a policy; no redirects */
		snprintf(text, sizeof(text), "fetching the policy failed: "
		    "HTTP status %ld", code);
		sts_answer_fail(job, LKA_STS_FETCH_ERROR, text);
		return;
	}
	if (!sts_text_plain(ct)) {
		snprintf(text, sizeof(text), "the policy's media type is "
		    "%.100s, not text/plain", ct ? ct : "not given");
		sts_answer_fail(job, LKA_STS_INVALID, text);
		return;
	}
	if (sts_policy_parse(job->body, job->bodylen, &p, &why) == -1) {
		snprintf(text, sizeof(text), "the policy is not valid: %s",
		    why);
		sts_answer_fail(job, LKA_STS_INVALID, text);
		return;
	}
	log_info("mta-sts: %s: fetched policy id %s, mode %s, max_age %u",
	    job->domain, job->id, sts_mode_name(p.mode), p.max_age);
	sts_cache_store(job, time(NULL));
	sts_answer_policy(job, job->id, &p, "fetched");
}

static void
sts_check_done(void)
{
	struct sts_job	*job;
	CURLMsg		*msg;
	CURL		*easy;
	char		*priv;
	int		 left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		job = (struct sts_job *)(void *)priv;
		curl_multi_remove_handle(multi, easy);
		sts_fetched(job, msg->data.result);
	}
}

#define SETOPT(e, opt, val) do {					\
	if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)		\
		fatalx("mta-sts: curl_easy_setopt %s", #opt);		\
} while (0)

static void
sts_fetch_start(struct sts_job *job)
{
	struct curl_blob	 ca;
	char			 url[DNS_NAME_MAX + 64];
	char			 entry[DNS_NAME_MAX + 64 +
				    2 * STS_MAX_ADDRS * (INET6_ADDRSTRLEN + 3)];
	size_t			 i, n;

	if (job->naddrs == 0) {
		sts_answer_fail(job, LKA_STS_FETCH_ERROR, "the policy host "
		    "mta-sts.DOMAIN has no address");
		return;
	}
	/* "HOST:443:ADDR,ADDR": curl connects there, resolving nothing */
	n = (size_t)snprintf(entry, sizeof(entry), "mta-sts.%s:443:",
	    job->domain);
	for (i = 0; i < job->naddrs; i++)
		n += (size_t)snprintf(entry + n, sizeof(entry) - n, "%s%s",
		    i ? "," : "", job->addrs[i]);
	if ((job->resolve = curl_slist_append(NULL, entry)) == NULL)
		fatalx("mta-sts: curl_slist_append");
	snprintf(url, sizeof(url), "https://mta-sts.%s/.well-known/"
	    "mta-sts.txt", job->domain);
	if ((job->body = malloc(STS_POLICY_MAX)) == NULL)
		fatal("malloc");
	if ((job->easy = curl_easy_init()) == NULL)
		fatalx("mta-sts: curl_easy_init");
	SETOPT(job->easy, CURLOPT_URL, url);
	SETOPT(job->easy, CURLOPT_PRIVATE, (char *)job);
	SETOPT(job->easy, CURLOPT_ERRORBUFFER, job->errbuf);
	SETOPT(job->easy, CURLOPT_RESOLVE, job->resolve);
	/* RFC 8461 3.3: HTTPS, and no redirects followed */
	SETOPT(job->easy, CURLOPT_PROTOCOLS_STR, "https");
	SETOPT(job->easy, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(job->easy, CURLOPT_PROXY, "");	/* none, whatever env says */
	SETOPT(job->easy, CURLOPT_NOSIGNAL, 1L);
	/* fetches are rare: no idle connection kept open after one */
	SETOPT(job->easy, CURLOPT_FORBID_REUSE, 1L);
	SETOPT(job->easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SETOPT(job->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(job->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	/* the trust anchors read at start; no file or directory later */
	SETOPT(job->easy, CURLOPT_CAINFO, NULL);
	SETOPT(job->easy, CURLOPT_CAPATH, NULL);
	if (ca_pem != NULL) {
		ca.data = ca_pem;
		ca.len = ca_pem_len;
		ca.flags = CURL_BLOB_NOCOPY;
		SETOPT(job->easy, CURLOPT_CAINFO_BLOB, &ca);
	}
	SETOPT(job->easy, CURLOPT_CONNECTTIMEOUT, (long)STS_CONNECT_TIMEOUT);
	SETOPT(job->easy, CURLOPT_TIMEOUT, (long)STS_FETCH_TIMEOUT);
	SETOPT(job->easy, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)STS_POLICY_MAX);
	SETOPT(job->easy, CURLOPT_WRITEFUNCTION, sts_write_cb);
	SETOPT(job->easy, CURLOPT_WRITEDATA, job);
	SETOPT(job->easy, CURLOPT_USERAGENT, "Posthaste MTA-STS");
	log_debug("mta-sts: %s: fetching %s (%s)", job->domain, url, entry);
	if (curl_multi_add_handle(multi, job->easy) != CURLM_OK)
		fatalx("mta-sts: curl_multi_add_handle");
}

static void
sts_addr_cb(void *arg, const struct dns_result *res)
{
	struct sts_addr_query	*q = arg;
	struct sts_job		*job = q->job;
	const void		*a;
	size_t			 i;
	int			 family = q->family;

	free(q);
	for (i = 0; res->status == DNS_OK && i < res->nrr &&
	    i < STS_MAX_ADDRS; i++) {
		char ip[INET6_ADDRSTRLEN];

		if (family == AF_INET)
			a = &((const struct sockaddr_in *)&res->rr[i].addr)->
			    sin_addr;
		else
			a = &((const struct sockaddr_in6 *)&res->rr[i].addr)->
			    sin6_addr;
		if (inet_ntop(family, a, ip, sizeof(ip)) == NULL)
			continue;
		/* curl's form: an IPv6 address in brackets */
		snprintf(job->addrs[job->naddrs], sizeof(job->addrs[0]),
		    family == AF_INET6 ? "[%s]" : "%s", ip);
		job->naddrs++;
	}
	if (--job->pending == 0)
		sts_fetch_start(job);
}

/* ---- the record ---- */

static void
sts_txt_cb(void *arg, const struct dns_result *res)
{
	struct sts_job		*job = arg;
	struct sts_addr_query	*q;
	char			 name[DNS_NAME_MAX + 16];
	const char		*txt = NULL;
	size_t			 i, nsts = 0, len = 0;
	int			 f;

	if (res->status == DNS_TEMPFAIL) {
		sts_answer_fail(job, LKA_STS_NONE, "the _mta-sts record "
		    "cannot be had now");
		return;
	}
	for (i = 0; res->status == DNS_OK && i < res->nrr; i++) {
		const char *t = dns_rr_txt(res, &res->rr[i]);

		if (!sts_txt_is_sts(t, res->rr[i].txtlen))
			continue;
		nsts++;
		txt = t;
		len = res->rr[i].txtlen;
	}
	/*
	 * The domain publishes no record any more and its policy ran out:
	 * its cache file goes (a domain that drops MTA-STS leaves nothing)
	 */
	if (nsts == 0 && job->cache_file && !job->cached &&
	    unlinkat(cache_dir, job->domain, 0) == -1 && errno != ENOENT)
		log_warn("mta-sts: unlink cache file %s", job->domain);
	/* RFC 8461 3.1: not exactly one record, or not valid: no policy */
	if (nsts != 1 || sts_txt_parse(txt, len, job->id) == -1) {
		sts_answer_fail(job, LKA_STS_NONE, nsts == 0 ? "no record" :
		    nsts > 1 ? "several _mta-sts records" :
		    "the _mta-sts record is not valid");
		return;
	}
	if (job->cached && strcmp(job->cache.id, job->id) == 0) {
		sts_answer_policy(job, job->id, &job->cache.policy, "cached");
		return;
	}
	/* a new id, no policy, or an expired one: fetch */
	snprintf(name, sizeof(name), "mta-sts.%s", job->domain);
	job->pending = 2;
	for (f = 0; f < 2; f++) {
		if ((q = calloc(1, sizeof(*q))) == NULL)
			fatal("calloc");
		q->job = job;
		q->family = f ? AF_INET6 : AF_INET;
		dns_query(name, f ? DNS_T_AAAA : DNS_T_A, STS_DNS_TIMEOUT,
		    sts_addr_cb, q);
	}
}

void
sts_lookup(uint32_t reqid, const char *domain, sts_result_cb cb, void *arg)
{
	struct sts_job	*job;
	char		 name[DNS_NAME_MAX + 16];

	if ((job = calloc(1, sizeof(*job))) == NULL)
		fatal("calloc");
	job->reqid = reqid;
	job->cb = cb;
	job->arg = arg;
	snprintf(job->domain, sizeof(job->domain), "%s", domain);
	if (sts_domain_valid(job->domain) == -1) {
		/* an address literal or a name that is no host name */
		sts_answer_fail(job, LKA_STS_NONE, "not a host name");
		return;
	}
	sts_cache_load(job);
	snprintf(name, sizeof(name), "_mta-sts.%s", job->domain);
	dns_query(name, DNS_T_TXT, STS_DNS_TIMEOUT, sts_txt_cb, job);
}

/*
 * The trust anchors, the mta's own (mta.c): "mta ca-file", else what
 * OpenSSL's tools would read.  Read as our user, before the sandbox.
 */
static void
sts_read_ca(void)
{
	const char	*cafile;
	struct stat	 st;
	ssize_t		 n;
	int		 fd;

	cafile = conf->mta_ca_file[0] != '\0' ? conf->mta_ca_file :
	    getenv(X509_get_default_cert_file_env());
	if (cafile == NULL)
		cafile = X509_get_default_cert_file();
	if ((fd = open(cafile, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1 || st.st_size <= 0 ||
	    st.st_size > 64 * 1024 * 1024 ||
	    (ca_pem = malloc((size_t)st.st_size)) == NULL) {
		log_warnx("mta-sts: cannot read the CA bundle %s: policy "
		    "fetches will fail", cafile);
		if (fd != -1)
			close(fd);
		return;
	}
	for (ca_pem_len = 0; ca_pem_len < (size_t)st.st_size;
	    ca_pem_len += (size_t)n)
		if ((n = read(fd, ca_pem + ca_pem_len, (size_t)st.st_size -
		    ca_pem_len)) <= 0)
			break;
	close(fd);
}

void
sts_init(void)
{
	char	path[CONF_PATH_MAX + 8];

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("mta-sts: curl_global_init");
	if ((multi = curl_multi_init()) == NULL)
		fatalx("mta-sts: curl_multi_init");
	if (curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION,
	    sts_socket_cb) != CURLM_OK ||
	    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION,
	    sts_timer_cb) != CURLM_OK)
		fatalx("mta-sts: curl_multi_setopt");
	if ((ev_timer = evtimer_new(ev_base, sts_timer_event, NULL)) == NULL)
		fatalx("mta-sts: evtimer_new");
	sts_read_ca();
	snprintf(path, sizeof(path), "%s/sts", conf->spool);
	if ((cache_dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		log_warn("mta-sts: the policy cache %s", path);
	else {
		sandbox_read_only(path);
		sandbox_write_dir(path, cache_dir);
	}
}
