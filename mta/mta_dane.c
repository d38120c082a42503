/*
 * mta_dane.c -- DANE for SMTP (RFC 7672): the TLSA records lookup found
 * for a route's MX hosts, and OpenSSL's DANE verifier (SSL_dane_*) set
 * up with them for a session's handshake.
 *
 * lookup validated the records with DNSSEC and kept only usable ones
 * (DANE-TA(2), DANE-EE(3); lookup/tlsa.c).  What a host's state means
 * for a session (mta_session.c): LKA_TLSA_RECORD, STARTTLS is required
 * and the peer's chain must match a record (TLS=verified-dane), else the
 * host is skipped with 4.7.5; LKA_TLSA_UNUSABLE, TLS is required but
 * not authenticated (RFC 7672 2.2); LKA_TLSA_BOGUS, the host is not used
 * (a failed lookup may be an attacker hiding records); LKA_TLSA_NONE,
 * "tls dane" is "tls may" and "tls dane-only" defers.
 *
 * Names (RFC 7672 3.2): DANE-EE(3) binds the key, no name is checked
 * (3.1.1); for DANE-TA(2) the certificate must carry the TLSA base
 * domain (the MX host name, also sent as SNI, 8.1) or the next-hop
 * domain the mail is for (3.2.2), wildcards only whole-label.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define POSTHASTE_MTA_INTERNAL
#include "log.h"
#include "mta.h"
#include "proto.h"

#define MTA_DANE_MAX_RECORDS	64	/* per route; more are ignored */

void
mta_dane_init(SSL_CTX *ctx)
{
	if (SSL_CTX_dane_enable(ctx) <= 0)
		fatalx("SSL_CTX_dane_enable");
}

int
mta_dane_wanted(const struct mta_route *rt)
{
	return rt->tls_level == RELAY_TLS_DANE ||
	    rt->tls_level == RELAY_TLS_DANE_ONLY;
}

int
mta_dane_host_state(const struct mta_route *rt, const struct mta_host *h)
{
	return mta_dane_wanted(rt) ? h->dane : LKA_TLSA_NONE;
}

void
mta_dane_reset(struct mta_route *rt)
{
	size_t	i;

	for (i = 0; i < rt->ntlsa; i++)
		free(rt->tlsa[i].data);
	free(rt->tlsa);
	rt->tlsa = NULL;
	rt->ntlsa = 0;
}

/*
 * A host's state: a bogus answer wins over records (never both for one
 * name from one lookup; the order is only a guard), records over
 * "unusable".
 */
static void
host_set_state(struct mta_host *h, int kind)
{
	if (h->dane == LKA_TLSA_BOGUS)
		return;
	if (kind == LKA_TLSA_UNUSABLE && h->dane == LKA_TLSA_RECORD)
		return;
	h->dane = kind;
}

void
mta_dane_note(struct mta_route *rt, const struct lka_mx_tlsa *t)
{
	struct mta_tlsa	*r;
	size_t		 i;
	int		 known = 0;

	for (i = 0; i < rt->nhosts; i++)
		if (strcmp(rt->hosts[i].name, t->host) == 0) {
			host_set_state(&rt->hosts[i], (int)t->kind);
			known = 1;
		}
	/* a host beyond MTA_HOSTS_MAX: never tried, nothing to keep */
	if (!known || t->kind != LKA_TLSA_RECORD)
		return;
	if (rt->ntlsa >= MTA_DANE_MAX_RECORDS) {
		log_warnx("dane: %s: more than %d TLSA records; the rest is "
		    "ignored", t->host, MTA_DANE_MAX_RECORDS);
		return;
	}
	if ((r = reallocarray(rt->tlsa, rt->ntlsa + 1, sizeof(*r))) == NULL)
		fatal("reallocarray");
	rt->tlsa = r;
	r = &rt->tlsa[rt->ntlsa];
	memset(r, 0, sizeof(*r));
	snprintf(r->host, sizeof(r->host), "%s", t->host);
	r->usage = t->usage;
	r->selector = t->selector;
	r->mtype = t->mtype;
	r->datalen = t->datalen;
	if ((r->data = malloc(t->datalen)) == NULL)
		fatal("malloc");
	memcpy(r->data, t->data, t->datalen);
	rt->ntlsa++;
}

int
mta_dane_start(SSL *ssl, const struct mta_route *rt,
    const struct mta_host *h)
{
	size_t	i;
	int	n = 0, rc;

	if (SSL_dane_enable(ssl, h->name) <= 0) {
		log_warnx("dane: %s: SSL_dane_enable failed", h->name);
		ERR_clear_error();
		return -1;
	}
	/* RFC 7672 3.1.1: DANE-EE(3) checks no name */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* the next-hop domain, for DANE-TA(2) (RFC 7672 3.2.2) */
	if (rt->domain[0] != '\0' && strcasecmp(rt->domain, h->name) != 0 &&
	    SSL_add1_host(ssl, rt->domain) != 1)
		log_warnx("dane: %s: cannot add the name %s", h->name,
		    rt->domain);
	for (i = 0; i < rt->ntlsa; i++) {
		if (strcmp(rt->tlsa[i].host, h->name) != 0)
			continue;
		rc = SSL_dane_tlsa_add(ssl, rt->tlsa[i].usage,
		    rt->tlsa[i].selector, rt->tlsa[i].mtype,
		    rt->tlsa[i].data, rt->tlsa[i].datalen);
		if (rc > 0)
			n++;
		else
			log_info("dane: %s: TLSA %u %u %u refused by OpenSSL",
			    h->name, rt->tlsa[i].usage, rt->tlsa[i].selector,
			    rt->tlsa[i].mtype);
	}
	ERR_clear_error();
	return n > 0 ? 0 : -1;
}

int
mta_dane_check(SSL *ssl, char *why, size_t len)
{
	X509	*cert;
	long	 vr;
	int	 depth;

	if ((cert = SSL_get1_peer_certificate(ssl)) == NULL) {
		snprintf(why, len, "no certificate");
		return 0;
	}
	X509_free(cert);
	vr = SSL_get_verify_result(ssl);
	depth = SSL_get0_dane_authority(ssl, NULL, NULL);
	if (vr == X509_V_OK && depth >= 0)
		return 1;
	snprintf(why, len, "%s", vr != X509_V_OK ?
	    X509_verify_cert_error_string(vr) : "no TLSA record matched");
	return 0;
}
