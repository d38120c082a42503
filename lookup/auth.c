/*
 * auth.c -- the lookup process's answers for what only some SMTP clients
 * may do: check AUTH credentials, and VRFY/EXPN for trusted clients.
 *
 * Credentials tables map a user name to a crypt(3) hash, e.g.
 *	alice	$6$salt$...		(SHA-512-crypt: smtpctl encrypt)
 *	bob	$2b$10$...		(bcrypt)
 * or, on listeners marked "auth-cram-md5", to a cleartext secret written
 *	carol	{plain}secret
 * which is what CRAM-MD5 needs (RFC 2195 computes an HMAC keyed with
 * the secret itself).  PLAIN and LOGIN work with either form.  Weak or
 * unknown hash formats (DES, MD5-crypt) never match.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <crypt.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "addr.h"
#include "destmac.h"
#include "log.h"
#include "lookup.h"
#include "mproc.h"
#include "proto.h"
#include "smtpd.h"

#define PLAIN_PREFIX	"{plain}"

/* a SHA-512-crypt setting: as much work for an unknown user */
#define DUMMY_HASH	"$6$posthaste.dummy$"

static struct crypt_data	cdata;

static struct listener *
listener_by_index(uint32_t idx)
{
	struct listener	*l;
	uint32_t	 i = 0;

	TAILQ_FOREACH(l, &conf->listeners, entry)
		if (i++ == idx)
			return l;
	return NULL;
}

/* crypt(3) formats we accept: modern, salted and slow */
static int
hash_acceptable(const char *h)
{
	static const char *const ok[] = {
		"$6$", "$5$", "$2b$", "$2a$", "$2y$", "$y$", "$gy$", "$7$",
	};
	size_t	i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncmp(h, ok[i], strlen(ok[i])) == 0)
			return 1;
	return 0;
}

static int
equal_ct(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b);

	if (la != lb)
		return 0;
	return CRYPTO_memcmp(a, b, la) == 0;
}

static int
check_password(const char *stored, const char *pass)
{
	const char	*h;

	if (strncmp(stored, PLAIN_PREFIX, strlen(PLAIN_PREFIX)) == 0)
		return equal_ct(stored + strlen(PLAIN_PREFIX), pass);
	if (!hash_acceptable(stored)) {
		log_warnx("auth: unsupported password hash format in "
		    "credentials table");
		return 0;
	}
	if ((h = crypt_r(pass, stored, &cdata)) == NULL || h[0] == '*')
		return 0;
	return equal_ct(h, stored);
}

/* RFC 2195: pass is "challenge digest" */
static int
check_cram(const char *stored, const char *pass)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0, i;
	char		 hex[EVP_MAX_MD_SIZE * 2 + 1];
	const char	*sp, *secret;

	if (strncmp(stored, PLAIN_PREFIX, strlen(PLAIN_PREFIX)) != 0)
		return 0;
	if ((sp = strrchr(pass, ' ')) == NULL)
		return 0;
	secret = stored + strlen(PLAIN_PREFIX);
	if (HMAC(EVP_md5(), secret, (int)strlen(secret),
	    (const unsigned char *)pass, (size_t)(sp - pass), mac,
	    &maclen) == NULL)
		return 0;
	for (i = 0; i < maclen; i++)
		snprintf(hex + i * 2, 3, "%02x", mac[i]);
	hex[maclen * 2] = '\0';
	i = (unsigned int)equal_ct(hex, sp + 1);
	OPENSSL_cleanse(mac, sizeof(mac));
	return (int)i;
}

void
lookup_auth(struct mproc *p, const struct lka_auth_req *req)
{
	struct lka_result	 r;
	struct listener		*l;
	struct table		*t;
	char			 stored[1024];
	int			 rc, cram;

	memset(&r, 0, sizeof(r));
	r.reqid = req->reqid;
	r.status = PROTO_PERMFAIL;
	if ((l = listener_by_index(req->listener)) == NULL)
		fatalx("auth request for unknown listener %u", req->listener);
	cram = strcmp(req->mech, "CRAM-MD5") == 0;
	if (l->auth_table[0] == '\0') {
		/* system accounts would need /etc/shadow, which we may not
		 * read: a credentials table is required */
		log_warnx("auth: listener %s has no credentials table; use "
		    "\"auth <table>\"", l->ifname);
		r.status = PROTO_TEMPFAIL;
		goto done;
	}
	if ((t = config_find_table(conf, l->auth_table)) == NULL)
		fatalx("auth: no table %s", l->auth_table);
	rc = table_lookup(t, req->user, stored, sizeof(stored));
	if (rc == TABLE_ERROR) {
		r.status = PROTO_TEMPFAIL;
		goto done;
	}
	if (rc != TABLE_FOUND) {
		if (!cram)
			(void)check_password(DUMMY_HASH, req->pass);
		goto done;
	}
	if (cram ? check_cram(stored, req->pass) :
	    check_password(stored, req->pass))
		r.status = PROTO_OK;
done:
	explicit_bzero(stored, sizeof(stored));
	explicit_bzero(&cdata, sizeof(cdata));
	mproc_compose(p, IMSG_LKA_AUTH, req->reqid, -1, &r, sizeof(r));
}

/*
 * Who may have VRFY and EXPN answered truthfully (and ask for ETRN):
 * authenticated clients, local submission, and the networks some rule
 * trusts -- a "match from src" that holds for the client, or "match from
 * local" (the default "from") for a loopback client.  Everyone else
 * gets 252 (RFC 5321 7.3).
 */
int
lookup_client_trusted(const struct lka_rcpt_req *req)
{
	struct match	*m;
	struct table	*t;
	int		 loopback;

	if (req->flags & (SF_AUTH | SF_LOCAL))
		return 1;
	loopback = addr_in_cidr(&req->client, "127.0.0.0/8") ||
	    addr_in_cidr(&req->client, "::1/128");
	TAILQ_FOREACH(m, &conf->matches, entry) {
		if (m->from_crit.negate || m->reject)
			continue;
		if (m->from == MATCH_FROM_LOCAL && loopback)
			return 1;
		if (m->from != MATCH_FROM_SRC)
			continue;
		if (!m->from_crit.is_table) {
			if (addr_in_cidr(&req->client, m->from_crit.value))
				return 1;
		} else if ((t = config_find_table(conf, m->from_crit.value))
		    != NULL && table_match_addr(t, &req->client))
			return 1;
	}
	return 0;
}

struct vrfy_ctx {
	struct mproc	*p;
	uint32_t	 ndest;
};

static void
vrfy_emit(void *arg, const struct lka_dest *d)
{
	struct vrfy_ctx	*ctx = arg;

	/* an EXPN of a huge list is cut short, not an error */
	if (ctx->ndest >= 100)
		return;
	ctx->ndest++;
	mproc_compose(ctx->p, IMSG_LKA_RCPT_DEST, d->reqid, -1, d, sizeof(*d));
}

static struct action *
first_local_action(void)
{
	struct action	*a;

	TAILQ_FOREACH(a, &conf->actions, entry)
		if (a->type != ACTION_RELAY)
			return a;
	return NULL;
}

void
lookup_vrfy(struct mproc *p, const struct lka_rcpt_req *req, int expn)
{
	struct lka_result	 r;
	struct lka_rcpt_req	 q = *req;
	struct match		*m;
	struct action		*a = NULL;
	struct vrfy_ctx		 ctx;
	char			 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];

	memset(&r, 0, sizeof(r));
	r.reqid = req->reqid;
	addr_to_string(&req->rcpt, rcpt, sizeof(rcpt));
	if (!lookup_client_trusted(req)) {
		r.status = PROTO_PERMFAIL;
		snprintf(r.reply, sizeof(r.reply), "252 2.5.0 Cannot %s "
		    "user, but will accept message and attempt delivery",
		    expn ? "EXPN" : "VRFY");
		goto done;
	}
	if (rule_find(&q, &m) && !m->reject && m->action != NULL)
		a = m->action;
	else if (q.rcpt.domain[0] == '\0')
		a = first_local_action();	/* a bare local name */
	if (a == NULL) {
		r.status = PROTO_PERMFAIL;
		snprintf(r.reply, sizeof(r.reply), "550 5.1.1 <%s>: not a "
		    "deliverable address here", rcpt);
		goto done;
	}
	if (a->type == ACTION_RELAY && !expn) {
		r.status = PROTO_PERMFAIL;
		snprintf(r.reply, sizeof(r.reply), "252 2.1.5 <%s>: cannot "
		    "verify a remote address, but will attempt delivery",
		    rcpt);
		goto done;
	}
	ctx.p = p;
	ctx.ndest = 0;
	r.status = expand_recipient(&q, a, vrfy_emit, &ctx, r.reply,
	    sizeof(r.reply));
	r.ndest = ctx.ndest;
done:
	mproc_compose(p, IMSG_LKA_RCPT_RESULT, req->reqid, -1, &r, sizeof(r));
}

/*
 * The fallback's destinations become envelopes, as an RCPT's do, so they
 * are sealed like rcpt.c's (the queue refuses, fatally, one that is not).
 */
static void
postmaster_emit(void *arg, const struct lka_dest *d)
{
	struct vrfy_ctx	*ctx = arg;
	struct lka_dest	 sealed = *d;
	const uint8_t	*key;

	if ((key = destmac_key()) == NULL)
		fatalx("lookup holds no destination key");
	destmac_compute(key, &sealed, sealed.mac);
	ctx->ndest++;
	mproc_compose(ctx->p, IMSG_LKA_RCPT_DEST, sealed.reqid, -1, &sealed,
	    sizeof(sealed));
}

/*
 * RFC 5321 4.5.1: mail for postmaster (bare, or at a local domain) is
 * accepted even when no rule or user matches: it goes to the
 * "postmaster" alias or user of the first local action, else to root's
 * alias.  `m' is the rule that matched the recipient, if any.
 */
int
lookup_postmaster(struct mproc *p, const struct lka_rcpt_req *req,
    struct match *m, uint32_t *ndest, char *reply, size_t replylen)
{
	static const char *const names[] = { "postmaster", "root" };
	struct lka_rcpt_req	 q = *req;
	struct action		*a;
	struct vrfy_ctx		 ctx;
	char			 why[512];
	size_t			 i;
	int			 rc = PROTO_PERMFAIL;

	if (strcasecmp(req->rcpt.user, "postmaster") != 0)
		return PROTO_PERMFAIL;
	if (m != NULL && m->reject)
		return PROTO_PERMFAIL;
	if (m != NULL && m->action != NULL && m->action->type != ACTION_RELAY)
		a = m->action;
	else if (req->rcpt.domain[0] == '\0' ||
	    rule_is_local_domain(req->rcpt.domain))
		a = first_local_action();
	else
		return PROTO_PERMFAIL;
	if (a == NULL)
		return PROTO_PERMFAIL;
	ctx.p = p;
	ctx.ndest = 0;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(q.rcpt.user, sizeof(q.rcpt.user), "%s", names[i]);
		rc = expand_recipient(&q, a, postmaster_emit, &ctx, why,
		    sizeof(why));
		if (rc != PROTO_PERMFAIL || ctx.ndest > 0)
			break;
	}
	if (rc == PROTO_OK)
		*ndest = ctx.ndest;
	else
		snprintf(reply, replylen, "%s", why);
	return rc;
}
