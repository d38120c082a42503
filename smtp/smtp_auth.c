/*
 * smtp_auth.c -- SMTP AUTH (RFC 4954): PLAIN, LOGIN and CRAM-MD5.
 *
 * The worker only runs the exchange; the lookup process, which can read
 * the credentials table, checks the password (IMSG_LKA_AUTH).  A failed
 * attempt is answered after a delay that doubles with every failure in
 * the session, on a timer so the worker never sleeps; after
 * AUTH_MAX_FAILURES the client is disconnected.
 *
 * AUTH is offered only on a TLS session, unless the listener says
 * "auth-plaintext".  CRAM-MD5 needs the cleartext secret on our side, so
 * it is offered only on listeners marked "auth-cram-md5", whose table
 * holds "{plain}SECRET" entries.
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "mproc.h"
#include "proto.h"
#include "smtp_parse.h"
#include "smtp_session.h"
#include "smtpcount.h"
#include "proc.h"

#define AUTH_MAX_FAILURES	3
#ifndef POSTHASTE_FUZZ
#define AUTH_DELAY_MS		500	/* first failure; doubles */
#else
/* mk/fuzz.mk only: fuzz_smtp_session runs sessions without waiting */
#define AUTH_DELAY_MS		0
#endif

enum auth_mech {
	MECH_PLAIN,
	MECH_LOGIN,
	MECH_CRAM_MD5,
};

struct auth_state {
	enum auth_mech	mech;
	int		step;		/* LOGIN: 0 user, 1 password */
	char		user[256];
	char		challenge[128];	/* CRAM-MD5 */
};

int
smtp_auth_offered(const struct session *s)
{
	if (s->flags & SS_LOCAL)
		return 0;
	if (s->l->auth == LISTEN_AUTH_NONE && !s->l->submission)
		return 0;
	return (s->flags & SS_TLS) || s->l->auth_plain_ok;
}

/*
 * "auth" requires it; so does a submission port (587) unless it says
 * "auth-optional": RFC 6409 4.3 and what a Postfix or OpenSMTPD admin
 * gets from the stock submission service.
 */
int
smtp_auth_required(const struct session *s)
{
	if (s->flags & SS_LOCAL)
		return 0;
	if (s->l->auth == LISTEN_AUTH_REQUIRE)
		return 1;
	return s->l->submission && s->l->auth != LISTEN_AUTH_OPTIONAL;
}

const char *
smtp_auth_mechanisms(const struct session *s)
{
	return s->l->auth_cram_md5 ? "AUTH PLAIN LOGIN CRAM-MD5" :
	    "AUTH PLAIN LOGIN";
}

void
smtp_auth_free(struct session *s)
{
	if (s->auth == NULL)
		return;
	explicit_bzero(s->auth, sizeof(*s->auth));
	free(s->auth);
	s->auth = NULL;
}

static void
auth_done(struct session *s)
{
	smtp_auth_free(s);
	s->state = S_HELO;
}

static void
auth_check(struct session *s, const char *user, const char *pass)
{
	struct lka_auth_req	req;

	memset(&req, 0, sizeof(req));
	req.reqid = s->id;
	req.listener = s->lindex;
	snprintf(req.mech, sizeof(req.mech), "%s", s->auth->mech ==
	    MECH_PLAIN ? "PLAIN" : s->auth->mech == MECH_LOGIN ? "LOGIN" :
	    "CRAM-MD5");
	if (strlcpy(req.user, user, sizeof(req.user)) >= sizeof(req.user) ||
	    strlcpy(req.pass, pass, sizeof(req.pass)) >= sizeof(req.pass)) {
		char	client[320];

		log_warnx("warning: %s: SASL %s authentication failed: "
		    "credentials too long", session_client(s, client,
		    sizeof(client)), req.mech);
		smtpcount_add(SC_AUTH_FAILURE);
		explicit_bzero(&req, sizeof(req));
		auth_done(s);
		if (smtp_limit_auth_failed(s))
			session_reply(s, "535 5.7.8 Authentication "
			    "credentials invalid");
		return;
	}
	if (user != s->auth->user)
		memcpy(s->auth->user, req.user, sizeof(s->auth->user));
	s->flags |= SS_WAIT;
	mproc_compose(&smtp_worker.lookup, IMSG_LKA_AUTH, s->id, -1, &req,
	    sizeof(req));
	explicit_bzero(&req, sizeof(req));
}

static int
auth_decode(struct session *s, const char *b64, unsigned char *out,
    size_t outlen)
{
	int	n;

	if ((n = smtp_b64_decode(b64, out, outlen)) == -1) {
		session_reply(s, "501 5.5.2 Cannot decode response");
		auth_done(s);
		session_error(s);
	}
	return n;
}

static void
auth_plain(struct session *s, const char *b64)
{
	unsigned char	msg[1024];
	char		user[256], pass[256];
	int		n;

	if ((n = auth_decode(s, b64, msg, sizeof(msg))) == -1)
		return;
	if (smtp_parse_sasl_plain(msg, (size_t)n, user, sizeof(user), pass,
	    sizeof(pass)) == -1) {
		explicit_bzero(msg, sizeof(msg));
		session_reply(s, "501 5.5.2 Malformed PLAIN response");
		auth_done(s);
		session_error(s);
		return;
	}
	auth_check(s, user, pass);
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(pass, sizeof(pass));
}

static void
auth_login(struct session *s, const char *b64)
{
	unsigned char	buf[512];
	int		n, i;

	if ((n = auth_decode(s, b64, buf, sizeof(buf))) == -1)
		return;
	for (i = 0; i < n; i++)
		if (buf[i] < 0x20 || buf[i] == 0x7f)
			break;
	if (n == 0 || i < n || n >= 256) {
		explicit_bzero(buf, sizeof(buf));
		session_reply(s, "501 5.5.2 Malformed LOGIN response");
		auth_done(s);
		session_error(s);
		return;
	}
	if (s->auth->step == 0) {
		/* n < 256 was checked above */
		memcpy(s->auth->user, buf, (size_t)n + 1);
		s->auth->step = 1;
		s->state = S_AUTH;
		session_reply(s, "334 UGFzc3dvcmQ6");	/* Password: */
		return;
	}
	auth_check(s, s->auth->user, (char *)buf);
	explicit_bzero(buf, sizeof(buf));
}

static void
auth_cram(struct session *s, const char *b64)
{
	unsigned char	 buf[512];
	char		 pass[256], *sp;
	int		 n, i;

	if ((n = auth_decode(s, b64, buf, sizeof(buf))) == -1)
		return;
	/* "user digest", the digest 32 lower-case hex digits */
	sp = strrchr((char *)buf, ' ');
	if (sp == NULL || sp == (char *)buf || strlen(sp + 1) != 32 ||
	    memchr(buf, '\0', (size_t)n) != NULL)
		goto bad;
	for (i = 1; i <= 32; i++)
		if (!isxdigit((unsigned char)sp[i]) ||
		    isupper((unsigned char)sp[i]))
			goto bad;
	*sp = '\0';
	for (i = 0; buf[i]; i++)
		if (buf[i] < 0x20 || buf[i] == 0x7f)
			goto bad;
	snprintf(pass, sizeof(pass), "%s %s", s->auth->challenge, sp + 1);
	auth_check(s, (char *)buf, pass);
	return;
bad:
	session_reply(s, "501 5.5.2 Malformed CRAM-MD5 response");
	auth_done(s);
	session_error(s);
}

static void
auth_response(struct session *s, const char *b64)
{
	switch (s->auth->mech) {
	case MECH_PLAIN:
		auth_plain(s, b64);
		break;
	case MECH_LOGIN:
		auth_login(s, b64);
		break;
	case MECH_CRAM_MD5:
		auth_cram(s, b64);
		break;
	}
}

void
smtp_auth_command(struct session *s, char *args)
{
	char		*ir = NULL, b64[256];
	enum auth_mech	 mech;

	if (!smtp_auth_offered(s)) {
		if (s->flags & SS_LOCAL || (s->l->auth == LISTEN_AUTH_NONE &&
		    !s->l->submission))
			session_reply(s, "503 5.5.1 Error: authentication "
			    "not enabled");
		else
			session_reply(s, "538 5.7.11 Encryption required for "
			    "requested authentication mechanism");
		session_error(s);
		return;
	}
	if (s->state < S_HELO || !(s->flags & SS_EHLO)) {
		session_reply(s, "503 5.5.1 Error: send EHLO first");
		session_error(s);
		return;
	}
	if (s->flags & SS_AUTH) {
		session_reply(s, "503 5.5.1 Error: already authenticated");
		session_error(s);
		return;
	}
	if (s->tx != NULL) {
		session_reply(s, "503 5.5.1 Error: AUTH not permitted during "
		    "a mail transaction");
		session_error(s);
		return;
	}
	if (args == NULL || *args == '\0') {
		session_reply(s, "501 5.5.4 Syntax: AUTH mechanism "
		    "[initial-response]");
		session_error(s);
		return;
	}
	if ((ir = strchr(args, ' ')) != NULL)
		*ir++ = '\0';
	if (strcasecmp(args, "PLAIN") == 0)
		mech = MECH_PLAIN;
	else if (strcasecmp(args, "LOGIN") == 0)
		mech = MECH_LOGIN;
	else if (strcasecmp(args, "CRAM-MD5") == 0 && s->l->auth_cram_md5)
		mech = MECH_CRAM_MD5;
	else {
		session_reply(s, "504 5.5.4 Unrecognized authentication type");
		session_error(s);
		return;
	}
	if (ir != NULL && (mech == MECH_CRAM_MD5 || *ir == '\0' ||
	    strchr(ir, ' ') != NULL)) {
		session_reply(s, "501 5.5.4 Syntax: AUTH mechanism "
		    "[initial-response]");
		session_error(s);
		return;
	}
	if ((s->auth = calloc(1, sizeof(*s->auth))) == NULL) {
		session_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	s->auth->mech = mech;
	s->state = S_AUTH;
	/* RFC 4954 4: "=" is an empty initial response */
	if (ir != NULL) {
		if (strcmp(ir, "*") == 0) {
			session_reply(s, "501 5.7.0 Authentication aborted");
			auth_done(s);
			return;
		}
		auth_response(s, strcmp(ir, "=") == 0 ? "" : ir);
		return;
	}
	switch (mech) {
	case MECH_PLAIN:
		session_reply(s, "334 ");
		break;
	case MECH_LOGIN:
		session_reply(s, "334 VXNlcm5hbWU6");	/* Username: */
		break;
	case MECH_CRAM_MD5:
		/* RFC 2195: a unique msg-id style challenge */
		snprintf(s->auth->challenge, sizeof(s->auth->challenge),
		    "<%08x.%lld@%s>", arc4random(), (long long)time(NULL),
		    session_hostname(s));
		if (smtp_b64_encode((unsigned char *)s->auth->challenge,
		    strlen(s->auth->challenge), b64, sizeof(b64)) == -1) {
			session_reply(s, "454 4.7.0 Temporary authentication "
			    "failure");
			auth_done(s);
			return;
		}
		session_reply(s, "334 %s", b64);
		break;
	}
}

/* a response line in the exchange; NULL when it was malformed */
void
smtp_auth_line(struct session *s, char *line)
{
	if (line == NULL) {
		session_reply(s, "501 5.5.2 Malformed response line");
		auth_done(s);
		session_error(s);
		return;
	}
	if (strcmp(line, "*") == 0) {
		session_reply(s, "501 5.7.0 Authentication aborted");
		auth_done(s);
		return;
	}
	auth_response(s, line);
}

static void
auth_failed_later(evutil_socket_t fd, short ev, void *arg)
{
	struct session	*s = arg;

	s->flags &= ~SS_WAIT;
	if (s->nauthfail >= AUTH_MAX_FAILURES) {
		char	reply[128];

		snprintf(reply, sizeof(reply), "421 4.7.0 %s Too many "
		    "authentication failures", session_hostname(s));
		session_log_reject(s, "AUTH", reply, NULL);
		session_reply_close(s, "%s", reply);
		return;
	}
	session_reply(s, "535 5.7.8 Authentication credentials invalid");
	session_process(s);
}

void
smtp_auth_result(struct session *s, const struct lka_result *r)
{
	struct timeval	 tv;
	long		 ms;
	char		 clean[1024], client[320];
	const char	*mech;

	if (!(s->flags & SS_WAIT) || s->auth == NULL)
		return;
	if (r->status == PROTO_OK)		/* the metrics */
		smtpcount_add(SC_AUTH_SUCCESS);
	else if (r->status != PROTO_TEMPFAIL)
		smtpcount_add(SC_AUTH_FAILURE);

	/*
	 * Postfix's lines: fail2ban's postfix filter (mode auth) bans on
	 * "authentication failed", so a failure on our side (tempfail) must
	 * not say it.  A success says "ID: auth: client=": pflogsumm would
	 * count "ID: client=" as a message received (that line is the
	 * message's, smtp_data.c).
	 */
	session_client(s, client, sizeof(client));
	mech = s->auth->mech == MECH_PLAIN ? "PLAIN" : s->auth->mech ==
	    MECH_LOGIN ? "LOGIN" : "CRAM-MD5";
	log_sanitize(s->auth->user, clean, sizeof(clean));
	if (r->status == PROTO_OK)
		log_info("%08x: auth: client=%s, sasl_method=%s, "
		    "sasl_username=%s", s->id, client, mech, clean);
	else if (r->status == PROTO_TEMPFAIL)
		log_warnx("warning: %s: SASL %s authentication unavailable: "
		    "temporary failure, sasl_username=%s", client, mech,
		    clean);
	else
		log_warnx("warning: %s: SASL %s authentication failed: "
		    "authentication failure, sasl_username=%s", client, mech,
		    clean);
	if (r->status == PROTO_OK) {
		s->auth_mech = mech;
		free(s->authname);
		if ((s->authname = strdup(s->auth->user)) == NULL)
			fatal("strdup");
		s->flags |= SS_AUTH;
		s->flags &= ~SS_WAIT;
		auth_done(s);
		session_reply(s, "235 2.7.0 Authentication successful");
		session_process(s);
		return;
	}
	auth_done(s);
	if (r->status == PROTO_TEMPFAIL) {
		s->flags &= ~SS_WAIT;
		session_reply(s, "454 4.7.0 Temporary authentication failure");
		session_process(s);
		return;
	}
	if (!smtp_limit_auth_failed(s)) {	/* 421, closing */
		s->flags &= ~SS_WAIT;
		return;
	}
	/* stay SS_WAIT: nothing else is read until the delay is over */
	s->nauthfail++;
	ms = (long)AUTH_DELAY_MS << (s->nauthfail - 1);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (s->ev_delay == NULL &&
	    (s->ev_delay = evtimer_new(ev_base, auth_failed_later, s)) ==
	    NULL)
		fatalx("evtimer_new");
	evtimer_add(s->ev_delay, &tv);
}
