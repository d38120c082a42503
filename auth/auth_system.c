/*
 * auth_system.c -- the helper that checks system accounts' passwords.
 *
 * "listen on ... auth" without a table lets users authenticate with
 * their system password.  The hashes are in /etc/shadow, which neither
 * the smtp workers (they face the network) nor lookup (it parses DNS
 * answers and tables) may read.  This small process can: it takes a
 * name and a password from lookup, answers yes, no or "try later", and
 * nothing else.  The hash never leaves it, and it talks to nobody who
 * faces the network.  It is a process of its own, not a job for the
 * parent, because a check costs tens of milliseconds of CPU by design
 * (yescrypt, SHA-crypt): a client guessing passwords must not be able to
 * stall the parent, which forks every local delivery.
 *
 * Privileges: on Debian /etc/shadow is root:shadow 0640, so the helper
 * runs as _smtpd with the shadow group, as unix_chkpwd does; where no
 * group may read it (mode 0000 or 0600) it stays root but holds no other
 * group, and the seccomp allow-list lets it open files read-only and do
 * little else.  It is not chrooted: the name service reads /etc.
 *
 * Who is refused, whatever the password: unknown users; root (uid 0: a
 * mail client is no place to type root's password, and a guesser would
 * love it); accounts with no password, a locked one ("!" or "*", which
 * passwd -l and useradd leave), or one past its expiry date (shadow's
 * field 8).  The login shell is not looked at: mail-only accounts with
 * /usr/sbin/nologin are the common case on a mail host, and Dovecot does
 * the same.  Each refusal costs a hash computation of the system's
 * default method, so timing does not tell unknown users from known ones.
 * Weak hash formats (DES, MD5-crypt) are refused as in tables
 * (common/pwcheck.c); the log says so, so the admin can set a new one.
 *
 * crypt(3) and not PAM: PAM runs the modules /etc/pam.d chooses, which
 * may load shared libraries, prompt, block on the network, or need
 * system calls no allow-list can predict; for the one question asked
 * here ("is this the password in the shadow file?") libxcrypt answers
 * with no moving parts.  Sites whose users live in LDAP or Kerberos use
 * a credentials table, or Dovecot's SASL, instead.
 *
 * The folder auth/ is this helper process alone; lookup is its only peer.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "mproc.h"
#include "privsep.h"
#include "proto.h"
#include "pwcheck.h"
#include "platform.h"
#include "proc.h"


static struct mproc	a_parent, a_lookup;

/* as smtp_auth_offered(): "auth", or a submission port, without a table */
int
auth_system_needed(const struct smtpd_config *c)
{
	const struct listener	*l;

	TAILQ_FOREACH(l, &c->listeners, entry)
		if ((l->auth != LISTEN_AUTH_NONE || l->submission) &&
		    l->auth_table[0] == '\0')
			return 1;
	return 0;
}

/* refused whatever the password: still spend a check's time */
static uint32_t
refuse(const char *user, const char *pass, const char *why)
{
	char	clean[1024];

	pwcheck_dummy(pass);
	if (why != NULL)
		log_info("system account %s %s", log_sanitize(user,
		    clean, sizeof(clean)), why);
	return PROTO_PERMFAIL;
}

static uint32_t
system_check(const char *user, const char *pass)
{
	struct passwd	*pw;
	const char	*hash;
	int		 expired;
	char		 clean[1024];

	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH) {
			log_warn("getpwnam");
			return PROTO_TEMPFAIL;
		}
		return refuse(user, pass, NULL);
	}
	if (pw->pw_uid == 0)
		return refuse(user, pass, "has uid 0: refused over SMTP");
	if (platform_shadow(pw, &hash, &expired) == -1) {
		log_warnx("cannot read %s for %s: %s", PLATFORM_SHADOW_FILE,
		    log_sanitize(user, clean, sizeof(clean)),
		    strerror(errno));
		return PROTO_TEMPFAIL;
	}
	if (expired)
		return refuse(user, pass, "has expired");
	if (hash == NULL || hash[0] == '\0')
		return refuse(user, pass, "has no password");
	if (hash[0] == '!' || hash[0] == '*')
		return refuse(user, pass, "is locked");
	if (strcmp(hash, "x") == 0)
		return refuse(user, pass, "has no shadow entry");
	switch (pwcheck_crypt(hash, pass)) {
	case PWCHECK_MATCH:
		return PROTO_OK;
	case PWCHECK_UNSUPPORTED:
		log_warnx("system account %s has a weak or unknown "
		    "password hash format (DES, MD5-crypt?): refused; set a "
		    "new password", log_sanitize(user, clean, sizeof(clean)));
		return refuse(user, pass, NULL);
	default:
		return PROTO_PERMFAIL;
	}
}

static void
auth_lookup_dispatch(struct mproc *p, struct imsg *m)
{
	struct auth_system_req	req;
	struct auth_system_res	res;

	if (m->hdr.type != IMSG_AUTH_SYSTEM)
		fatalx("unexpected message %u from %s", m->hdr.type, p->name);
	PROTO_READ(p, m, &req, proto_valid_auth_system_req);
	memset(&res, 0, sizeof(res));
	res.reqid = req.reqid;
	res.status = system_check(req.user, req.pass);
	explicit_bzero(&req, sizeof(req));
	mproc_compose(p, IMSG_AUTH_SYSTEM, res.reqid, -1, &res, sizeof(res));
}

static void
auth_parent_dispatch(struct mproc *p, struct imsg *m)
{
	fatalx("unexpected message %u from %s", m->hdr.type, p->name);
}

/* _smtpd with the group that may read the shadow file, else root */
static void
auth_system_drop(void)
{
	struct passwd	*pw;
	struct stat	 sb;
	uid_t		 uid;
	gid_t		 gid;

	if ((pw = getpwnam(SMTPD_USER)) == NULL)
		fatalx("unknown user %s", SMTPD_USER);
	uid = pw->pw_uid;
	if (chdir("/") == -1)
		fatal("chdir /");
	if (stat(PLATFORM_SHADOW_FILE, &sb) == 0 && sb.st_gid != 0 &&
	    (sb.st_mode & S_IRGRP)) {
		gid = sb.st_gid;
		privsep_drop_ids(uid, gid, &gid, 1);
		log_debug("checking system passwords as %s with group %u",
		    SMTPD_USER, (unsigned)gid);
		return;
	}
	privsep_drop_ids(0, 0, NULL, 0);
	log_debug("checking system passwords as root: no group may read %s",
	    PLATFORM_SHADOW_FILE);
}

void
auth_system_main(struct proc_fds *f)
{
	proc_setup("auth");
	auth_system_drop();
	/* load the name service modules before the sandbox (lookup.c) */
	(void)getpwnam("posthaste-nss-warmup");
	platform_shadow_warmup();
	pwcheck_dummy_init();
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	sandbox_enter(SANDBOX_AUTH);
	mproc_init(&a_parent, f->parent, "parent", auth_parent_dispatch,
	    NULL);
	mproc_init(&a_lookup, f->lookup, "lookup", auth_lookup_dispatch,
	    NULL);
	proc_on_term(NULL);
	event_base_dispatch(ev_base);
	exit(0);
}
