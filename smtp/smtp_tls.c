/*
 * smtp_tls.c -- TLS for smtp workers: STARTTLS (RFC 3207) and smtps
 * (implicit TLS, RFC 8314).
 *
 * Certificates are loaded once, while the worker is still root and
 * outside its chroot.  The private keys are not here at all: the keys
 * process holds them, and the SSL_CTX gets a stub key (keys_client.h)
 * whose signatures that process makes, one round trip per handshake.
 *
 * A listener may have several pkis ("pki a pki b", smtpd.conf(5)): the
 * first is the default, and the name a client asks for (SNI, RFC 6066
 * section 3) picks another -- the pki of that name, else the first
 * whose certificate is valid for it (X509_check_host: its DNS names or
 * wildcards).  The servername callback swaps the handshake's SSL_CTX
 * for that pki's; each SSL_CTX has its own stub key, so every key stays
 * in the keys process.  A name no pki serves gets the default, as a
 * client that sends no name does.
 *
 * The switch to TLS puts an OpenSSL bufferevent on the session's socket
 * in place of the plain session's own reading and writing (smtp_io.c).
 * What the client pipelined after STARTTLS has been discarded by then
 * (smtp_session.c, cmd_starttls), and the session starts over: a new
 * EHLO is required (RFC 3207 4.2).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "keys_client.h"
#include "log.h"
#include "smtp_session.h"
#include "smtpcount.h"
#include "proc.h"

/*
 * TLS 1.2 suites: forward secrecy and AEAD first, nothing weak.  No RSA
 * key exchange (kRSA): it would need the keys process to decrypt for
 * us, and it has no forward secrecy anyway.
 */
#define SMTP_TLS_CIPHERS \
	"HIGH:!aNULL:!eNULL:!kRSA:!MD5:!RC4:!3DES:!PSK:!SRP:!CAMELLIA:!ARIA:" \
	"@STRENGTH"

struct tls_ctx {
	const struct pki	*pki;
	SSL_CTX			*ctx;
};

static struct tls_ctx	*ctxs;
static size_t		 nctxs;
static int		 ssl_session_idx = -1;	/* SSL ex_data: the session */

static int	tls_servername_cb(SSL *, int *, void *);

static const char *
ssl_error(void)
{
	static char	buf[256];
	unsigned long	e = ERR_get_error();

	if (e == 0)
		return "unknown error";
	ERR_error_string_n(e, buf, sizeof(buf));
	return buf;
}

static SSL_CTX *
tls_ctx_new(const struct pki *pki)
{
	SSL_CTX		*ctx;
	EVP_PKEY	*pub, *stub;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		fatalx("SSL_CTX_new: %s", ssl_error());
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		fatalx("SSL_CTX_set_min_proto_version: %s", ssl_error());
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_TICKET);
	/* an idle TLS session should not hold 2 x 16 KB of record buffers */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!SSL_CTX_set_cipher_list(ctx, SMTP_TLS_CIPHERS))
		fatalx("SSL_CTX_set_cipher_list: %s", ssl_error());
	SSL_CTX_set_dh_auto(ctx, 1);
	if (!SSL_CTX_use_certificate_chain_file(ctx, pki->cert_file))
		fatalx("pki %s: certificate %s: %s", pki->name, pki->cert_file,
		    ssl_error());
	/* keys.c checked that the key matches this certificate */
	if ((pub = X509_get0_pubkey(SSL_CTX_get0_certificate(ctx))) == NULL ||
	    (stub = keys_client_stub((uint32_t)config_pki_index(conf, pki),
	    pub)) == NULL)
		fatalx("pki %s: certificate %s: unusable public key: %s",
		    pki->name, pki->cert_file, ssl_error());
	if (!SSL_CTX_use_PrivateKey(ctx, stub) ||
	    !SSL_CTX_check_private_key(ctx))
		fatalx("pki %s: %s", pki->name, ssl_error());
	EVP_PKEY_free(stub);
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername_cb);
	return ctx;
}

static void
tls_ctx_add(const struct listener *l, const char *name)
{
	struct pki	*pki;
	size_t		 i;

	if ((pki = config_find_pki(conf, name)) == NULL)
		fatalx("listener %s: no pki %s", l->ifname, name);
	for (i = 0; i < nctxs; i++)
		if (ctxs[i].pki == pki)
			return;
	if ((ctxs = reallocarray(ctxs, nctxs + 1, sizeof(*ctxs))) == NULL)
		fatal("reallocarray");
	ctxs[nctxs].pki = pki;
	ctxs[nctxs].ctx = tls_ctx_new(pki);
	nctxs++;
}

void
smtp_tls_init(void)
{
	struct listener	*l;
	int		 i;

	if ((ssl_session_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL,
	    NULL)) == -1)
		fatalx("SSL_get_ex_new_index");
	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (l->tls == LISTEN_TLS_NONE || l->pki[0] == '\0')
			continue;
		tls_ctx_add(l, l->pki);
		for (i = 0; i < l->nsni_pki; i++)
			tls_ctx_add(l, l->sni_pki[i]);
	}
}

static SSL_CTX *
ctx_by_pki(const char *name)
{
	size_t	i;

	for (i = 0; i < nctxs; i++)
		if (strcmp(ctxs[i].pki->name, name) == 0)
			return ctxs[i].ctx;
	return NULL;
}

static SSL_CTX *
ctx_for(const struct listener *l)
{
	if (l->tls == LISTEN_TLS_NONE || l->pki[0] == '\0')
		return NULL;
	return ctx_by_pki(l->pki);
}

/* the listener's pki for the name a client asked for, or NULL */
static SSL_CTX *
ctx_for_name(const struct listener *l, const char *name)
{
	const char	*pkis[LISTEN_SNI_MAX + 1];
	SSL_CTX		*ctx;
	X509		*cert;
	int		 i, n = 0;

	pkis[n++] = l->pki;
	for (i = 0; i < l->nsni_pki; i++)
		pkis[n++] = l->sni_pki[i];
	for (i = 0; i < n; i++)
		if (strcasecmp(pkis[i], name) == 0)
			return ctx_by_pki(pkis[i]);
	for (i = 0; i < n; i++)
		if ((ctx = ctx_by_pki(pkis[i])) != NULL &&
		    (cert = SSL_CTX_get0_certificate(ctx)) != NULL &&
		    X509_check_host(cert, name, 0,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1)
			return ctx;
	return NULL;
}

/*
 * SNI: the handshake goes on with the certificate (and stub key) of the
 * pki that serves the name, else with the listener's default.  Never an
 * alert: a client that asks for a name we do not serve still gets TLS.
 */
static int
tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
	const struct session	*s;
	const char		*name;
	SSL_CTX			*ctx;

	if ((s = SSL_get_ex_data(ssl, ssl_session_idx)) == NULL ||
	    s->l->nsni_pki == 0 ||
	    (name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) ==
	    NULL)
		return SSL_TLSEXT_ERR_OK;
	if ((ctx = ctx_for_name(s->l, name)) == NULL) {
		log_debug("%08x: SNI %.255s: no pki for it, the default %s",
		    s->id, name, s->l->pki);
		return SSL_TLSEXT_ERR_OK;
	}
	if (ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, ctx) == NULL) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	log_debug("%08x: SNI %.255s", s->id, name);
	return SSL_TLSEXT_ERR_OK;
}

int
smtp_tls_available(const struct session *s)
{
	if (s->flags & (SS_TLS | SS_LOCAL))
		return 0;
	if (s->l->tls != LISTEN_TLS_STARTTLS && s->l->tls != LISTEN_TLS_REQUIRE)
		return 0;
	return ctx_for(s->l) != NULL;
}

/* put an OpenSSL bufferevent, in accept state, on the session's socket */
static int
tls_switch(struct session *s)
{
	struct bufferevent	*bev;
	SSL_CTX			*ctx;
	SSL			*ssl;

	if ((ctx = ctx_for(s->l)) == NULL) {
		log_warnx("%08x: no TLS context", s->id);
		return -1;
	}
	if ((ssl = SSL_new(ctx)) == NULL) {
		log_warnx("%08x: SSL_new: %s", s->id, ssl_error());
		return -1;
	}
	if (SSL_set_ex_data(ssl, ssl_session_idx, s) != 1) {
		log_warnx("%08x: SSL_set_ex_data: %s", s->id, ssl_error());
		SSL_free(ssl);
		return -1;
	}
	/* from here on the TLS bufferevent owns the socket and the SSL */
	bev = bufferevent_openssl_socket_new(ev_base, s->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		log_warnx("%08x: bufferevent_openssl_socket_new failed",
		    s->id);
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	s->flags |= SS_TLS;
	s->state = S_TLS;
	session_io_tls(s, bev);
	return 0;
}

void
smtp_tls_starttls(struct session *s)
{
	if (tls_switch(s) == -1)
		session_close(s);
}

int
smtp_tls_accept(struct session *s)
{
	return tls_switch(s);
}

void
smtp_tls_connected(struct session *s)
{
	char	 desc[128];
	SSL	*ssl;
	int	 v = 0;

	log_info("%08x: TLS established with %s: %s", s->id, s->addr,
	    smtp_tls_describe(s, desc, sizeof(desc)));
	if (s->bev != NULL &&
	    (ssl = bufferevent_openssl_get_ssl(s->bev)) != NULL)
		v = SSL_version(ssl);
	smtpcount_add(v == TLS1_3_VERSION ? SC_TLS_13 :
	    v == TLS1_2_VERSION ? SC_TLS_12 : SC_TLS_OTHER);
	/*
	 * RFC 3207 4.2: forget everything the client said in the clear,
	 * its EHLO name and any authentication included.
	 */
	free(s->helo);
	s->helo = NULL;
	free(s->authname);
	s->authname = NULL;
	s->flags &= ~(SS_EHLO | SS_AUTH);
	s->state = S_CONNECTED;
	if (s->l->tls == LISTEN_TLS_SMTPS && s->milter == NULL)
		session_begin(s);
	session_process(s);
}

/*
 * Log why the TLS connection failed.  libevent's OpenSSL bufferevent
 * keeps OpenSSL's error codes and, after them, the SSL_get_error() value
 * of the call that failed (SSL_ERROR_SSL, SSL_ERROR_SYSCALL ...), which
 * is no OpenSSL error code: it has no library part, and printed as one
 * it reads "error:00000001:lib(0)::reason(1)".  It only says what kind
 * of failure the real errors describe; alone, it is said in words.  The
 * queue is a stack: bufferevent_get_openssl_error() takes the newest.
 */
static void
tls_log_errors(const struct session *s)
{
	unsigned long	 errs[8], e, kind = 0;
	char		 err[256], client[320];
	int		 n = 0;

	session_client(s, client, sizeof(client));
	while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
		if (ERR_GET_LIB(e) == 0)
			kind = e;
		else if (n < (int)(sizeof(errs) / sizeof(errs[0])))
			errs[n++] = e;
	}
	while (n-- > 0) {
		ERR_error_string_n(errs[n], err, sizeof(err));
		log_info("%08x: TLS error from %s: %s", s->id, client, err);
		kind = 0;
	}
	if (kind != 0)
		log_info("%08x: TLS error from %s: %s", s->id, client,
		    kind == SSL_ERROR_SYSCALL ? "connection closed or broken" :
		    kind == SSL_ERROR_SSL ? "protocol error" : "TLS failure");
}

const char *
smtp_tls_describe(const struct session *s, char *buf, size_t len)
{
	SSL		*ssl;

	if (buf == NULL) {
		tls_log_errors(s);
		return NULL;
	}
	if (s->bev == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(s->bev)) == NULL) {
		snprintf(buf, len, "no TLS");
		return buf;
	}
	snprintf(buf, len, "version=%s cipher=%s bits=%d",
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl),
	    SSL_get_cipher_bits(ssl, NULL));
	return buf;
}

/* the milter macros of a TLS session (smtp_milter.c) */
const char *
smtp_tls_macro(const struct session *s, const char *name, char *buf,
    size_t size)
{
	SSL		*ssl;
	X509		*cert;
	const char	*v = NULL;

	if (s->bev == NULL ||
	    (ssl = bufferevent_openssl_get_ssl(s->bev)) == NULL)
		return NULL;
	if (strcmp(name, "{tls_version}") == 0)
		v = SSL_get_version(ssl);
	else if (strcmp(name, "{cipher}") == 0)
		v = SSL_get_cipher_name(ssl);
	else if (strcmp(name, "{cipher_bits}") == 0) {
		snprintf(buf, size, "%d", SSL_get_cipher_bits(ssl, NULL));
		return buf;
	} else if (strcmp(name, "{cert_subject}") == 0 ||
	    strcmp(name, "{cert_issuer}") == 0) {
		if ((cert = SSL_get0_peer_certificate(ssl)) == NULL)
			return NULL;
		X509_NAME_oneline(strcmp(name, "{cert_subject}") == 0 ?
		    X509_get_subject_name(cert) : X509_get_issuer_name(cert),
		    buf, (int)size);
		return buf;
	}
	if (v == NULL)
		return NULL;
	snprintf(buf, size, "%s", v);
	return buf;
}
