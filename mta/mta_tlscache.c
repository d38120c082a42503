/*
 * mta_tlscache.c -- TLS session resumption toward the hosts we deliver
 * to often.
 *
 * A full handshake costs the peer and us a key exchange and a
 * certificate chain; a resumed one (a TLS 1.3 ticket, or a TLS 1.2
 * session ticket or id) costs neither.  A relay that sends mail to the
 * same few hosts all day resumes almost every session.
 *
 * Sessions are kept per key: the caller's words for what the session
 * proved and where it went (the action, the TLS level, the host's name
 * and address), so that a session verified under one policy is never
 * resumed under another, nor toward another name.  OpenSSL hands us
 * new sessions through the context's callback (TLS 1.3 tickets arrive
 * after the handshake, some servers send several: the latest wins);
 * the table is small and fixed, the oldest entry goes when it is full,
 * and an entry expires with the session's own lifetime.  Nothing is
 * kept across restarts: the mta's memory only.
 */
#include <sys/types.h>
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#define POSTHASTE_MTA_INTERNAL
#include "log.h"
#include "mta.h"

#define TLSCACHE_SIZE	256
#define TLSCACHE_KEY	1024

struct tlscache_entry {
	char		 key[TLSCACHE_KEY];
	SSL_SESSION	*sess;
	time_t		 stored;
};

static struct tlscache_entry	 cache[TLSCACHE_SIZE];
static int			 key_index = -1;	/* SSL ex_data */
static uint64_t			 nresumed, nfull;

static struct tlscache_entry *
tlscache_find(const char *key)
{
	size_t	i;

	for (i = 0; i < TLSCACHE_SIZE; i++)
		if (cache[i].sess != NULL && strcmp(cache[i].key, key) == 0)
			return &cache[i];
	return NULL;
}

static void
tlscache_drop(struct tlscache_entry *e)
{
	SSL_SESSION_free(e->sess);
	memset(e, 0, sizeof(*e));
}

/* OpenSSL: a new session (or ticket) for the connection ssl */
static int
tlscache_new_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tlscache_entry	*e, *oldest = NULL;
	const char		*key;
	size_t			 i;

	key = SSL_get_ex_data(ssl, key_index);
	if (key == NULL || !SSL_SESSION_is_resumable(sess))
		return 0;
	if ((e = tlscache_find(key)) == NULL) {
		for (i = 0; i < TLSCACHE_SIZE; i++) {
			if (cache[i].sess == NULL) {
				e = &cache[i];
				break;
			}
			if (oldest == NULL || cache[i].stored < oldest->stored)
				oldest = &cache[i];
		}
		if (e == NULL)
			e = oldest;
	}
	if (e->sess != NULL)
		tlscache_drop(e);
	/*
	 * A copy: the connection's own session is marked not resumable
	 * when the connection ends without a close_notify (OpenSSL's
	 * ssl_clear_bad_session), which a peer hanging up after QUIT
	 * does.  Since TLS 1.1 that no longer forbids resuming it (RFC
	 * 5246 7.2.1; TLS 1.3 tickets never depended on it), and what the
	 * handshake proved holds all the same.
	 */
	if ((e->sess = SSL_SESSION_dup(sess)) == NULL) {
		memset(e, 0, sizeof(*e));
		return 0;
	}
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->stored = time(NULL);
	return 0;
}

static void
tlscache_key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

void
mta_tlscache_init(SSL_CTX *ctx)
{
	if (key_index == -1 && (key_index = SSL_get_ex_new_index(0, NULL,
	    NULL, NULL, tlscache_key_free)) == -1)
		fatalx("SSL_get_ex_new_index");
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tlscache_new_cb);
}

void
mta_tlscache_resume(SSL *ssl, const char *key)
{
	struct tlscache_entry	*e;
	char			*k;
	time_t			 now = time(NULL);

	if ((k = strdup(key)) == NULL)
		fatal("strdup");
	if (SSL_set_ex_data(ssl, key_index, k) != 1)
		fatalx("SSL_set_ex_data");
	if ((e = tlscache_find(key)) == NULL)
		return;
	if ((time_t)(SSL_SESSION_get_time(e->sess) +
	    SSL_SESSION_get_timeout(e->sess)) <= now) {
		tlscache_drop(e);
		return;
	}
	if (SSL_set_session(ssl, e->sess) != 1)
		log_debug("tls cache: %s: session not usable", key);
	else
		log_debug("tls cache: resuming %s", key);
}

void
mta_tlscache_count(SSL *ssl)
{
	if (SSL_session_reused(ssl))
		nresumed++;
	else
		nfull++;
}

void
mta_tlscache_stats(uint64_t *full, uint64_t *resumed)
{
	*full = nfull;
	*resumed = nresumed;
}
