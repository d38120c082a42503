/*
 * expand.c -- from a recipient address to its final destinations.
 *
 * A work list of nodes, processed in order: an address goes through the
 * match rules (relay, or a local action), a user name through the
 * action's alias or virtual table, then its ~/.forward, then becomes a
 * mailbox; files, programs, :include: files and error: replies come from
 * alias values.  Each step that finds more items queues them one level
 * deeper.  Three guards keep any table from running away: a depth limit
 * (10, as sendmail), a "seen" set that expands any alias, address,
 * include file or .forward once per recipient (which stops loops and
 * suppresses duplicates), and a bound on nodes and destinations.
 *
 * Only a plain local part (a dot-atom without '%', '!' or quotes) is
 * ever resolved to a local user, so no source-route, percent-hack,
 * bang-path or quoted trick can turn a local recipient into a relayed
 * one.  Files and programs are honoured from aliases (the
 * administrator's) and ~/.forward (the user's own rights), never from
 * :include: files, whose content may be maintained by others, and never
 * as root.
 *
 * Root (any uid 0 account) that no alias catches still gets its mail, so
 * that postmaster (RFC 5321 4.5.1) and cron work on a host where root is
 * not aliased: as a mailbox destination only, which the parent always
 * appends to root's mbox in /var/mail without running as root
 * (mda/mda_root.c).  Root's ~/.forward is never read: it would run
 * files and programs as root.
 *
 * The daemon's own accounts (_smtpd, _smtpq) and nobody have no mailbox
 * (common/sysusers.c): as users they are unknown, unless an alias sends
 * their mail elsewhere, and a table they own runs its files and programs
 * as nobody, as one of root's does.  Other system accounts are users.
 *
 * Reading ~/.forward needs the privileged parent, so expansion can
 * pause: the caller's forward callback asks, and expand_forward_done()
 * resumes with the descriptor.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "aliases.h"
#include "log.h"
#include "platform.h"
#include "lookup.h"
#include "pwcache.h"
#include "privsep.h"
#include "proc.h"
#include "sysusers.h"

#define EXPAND_DEPTH_MAX	10
#define EXPAND_NODES_MAX	10000
#define EXPAND_FILE_MAX		(1024 * 1024)	/* :include:, .forward */
#define EXPAND_ALIAS_USER	"nobody"	/* files/programs of root's
						 * alias tables run as this */

enum origin {
	ORIGIN_RCPT,		/* the recipient itself */
	ORIGIN_ALIAS,		/* an alias or virtual table value */
	ORIGIN_FORWARD,		/* a user's ~/.forward */
	ORIGIN_INCLUDE,		/* a :include: file */
};

struct expand_node {
	TAILQ_ENTRY(expand_node) entry;
	struct alias_item	 it;
	int			 depth;
	enum origin		 origin;
	int			 noalias;	/* "user: user": the user */
	struct action		*action;
	struct mailaddr		 dest;		/* the last address seen */
	struct mailaddr		 sender_override;
	char			 run_as[ENV_NAME_MAX];	/* files, programs */
	char			 sysuser[ENV_NAME_MAX];	/* waiting .forward */
};

struct expand {
	struct lka_rcpt_req	 req;
	struct action		*action;
	TAILQ_HEAD(, expand_node) queue;
	char			**seen;
	size_t			 nseen, capseen;
	size_t			 nnodes;
	expand_emit		 emit;
	expand_forward		 forward;
	expand_done		 done;
	void			*arg;
	uint32_t		 ndest, maxdest;
	int			 status;
	char			 reply[512];
	char			 rcpt[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	struct expand_node	*waiting;
};

enum step { STEP_DONE, STEP_WAIT };

static void	expand_run(struct expand *);

static void
expand_fail(struct expand *e, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
expand_fail(struct expand *e, int status, const char *fmt, ...)
{
	va_list	ap;

	if (e->status != PROTO_OK)
		return;		/* the first error is the one to report */
	e->status = status;
	va_start(ap, fmt);
	vsnprintf(e->reply, sizeof(e->reply), fmt, ap);
	va_end(ap);
}

/* 1 if key was already seen (and so must not be expanded again) */
static int
seen(struct expand *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
seen(struct expand *e, const char *fmt, ...)
{
	va_list	 ap;
	char	*key, **n;
	size_t	 i;

	va_start(ap, fmt);
	if (platform_vasprintf(&key, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	for (i = 0; i < e->nseen; i++)
		if (strcmp(e->seen[i], key) == 0) {
			free(key);
			return 1;
		}
	if (e->nseen == e->capseen) {
		size_t ncap = e->capseen ? e->capseen * 2 : 32;

		if ((n = reallocarray(e->seen, ncap, sizeof(*n))) == NULL)
			fatal("reallocarray");
		e->seen = n;
		e->capseen = ncap;
	}
	e->seen[e->nseen++] = key;
	return 0;
}

static struct expand_node *
node_new(struct expand *e, const struct expand_node *parent)
{
	struct expand_node	*n;

	if (e->nnodes >= EXPAND_NODES_MAX) {
		expand_fail(e, PROTO_PERMFAIL, "550 5.4.6 <%s>: alias "
		    "expansion too large", e->rcpt);
		return NULL;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL)
		fatal("calloc");
	e->nnodes++;
	if (parent != NULL) {
		n->depth = parent->depth + 1;
		n->action = parent->action;
		n->dest = parent->dest;
		n->sender_override = parent->sender_override;
		snprintf(n->run_as, sizeof(n->run_as), "%s", parent->run_as);
	}
	return n;
}

static void
emit_dest(struct expand *e, const struct expand_node *n, int type,
    const char *user, const char *path)
{
	struct lka_dest	d;
	char		dest[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];

	/*
	 * Duplicate suppression: the same delivery.  The address only
	 * tells local deliveries apart when the action's path depends on
	 * it (a vmail tree, "/var/vmail/%{dest.domain}/%{dest.user}");
	 * otherwise "list: bob, bob@here" gives bob one copy.  A relayed
	 * one is its address: "list: a@remote, b@remote" is two.
	 */
	dest[0] = '\0';
	if (type == DEST_REMOTE || strstr(n->action->path, "%{") != NULL)
		addr_to_string(&n->dest, dest, sizeof(dest));
	if (seen(e, "d:%d:%s:%s:%s:%s", type, n->action->name, user, path,
	    dest))
		return;
	if (e->ndest >= e->maxdest) {
		expand_fail(e, PROTO_PERMFAIL, "550 5.5.3 <%s>: alias "
		    "expands to too many recipients", e->rcpt);
		return;
	}
	memset(&d, 0, sizeof(d));
	d.reqid = e->req.reqid;
	d.dest_type = (uint32_t)type;
	d.dest = n->dest;
	d.sender_override = n->sender_override;
	snprintf(d.action, sizeof(d.action), "%s", n->action->name);
	snprintf(d.user, sizeof(d.user), "%s", user);
	snprintf(d.path, sizeof(d.path), "%s", path);
	e->ndest++;
	e->emit(e->arg, &d);
}

struct push_ctx {
	struct expand			*e;
	const struct expand_node	*parent;
	enum origin			 origin;
	const char			*self;	/* the alias key / user */
	const char			*where;	/* for log lines */
	int				 stop;
};

static int
push_item(void *arg, const struct alias_item *it)
{
	struct push_ctx		*c = arg;
	struct expand_node	*n;

	if ((n = node_new(c->e, c->parent)) == NULL) {
		c->stop = 1;
		return -1;
	}
	n->it = *it;
	n->origin = c->origin;
	/*
	 * "user: user, other" and a .forward naming its own user mean
	 * that user's mailbox, not the alias (or .forward) again.
	 */
	if (it->type == ALIAS_USERNAME && c->self != NULL &&
	    strcasecmp(it->value, c->self) == 0)
		n->noalias = 1;
	if (it->type == ALIAS_USERNAME && it->literal)
		n->noalias = 1;
	TAILQ_INSERT_TAIL(&c->e->queue, n, entry);
	return 0;
}

static void
push_bad(void *arg, const char *item, const char *why)
{
	struct push_ctx	*c = arg;
	char		 clean[256];

	log_warnx("%s: ignoring \"%s\": %s", c->where,
	    log_sanitize(item, clean, sizeof(clean)), why);
}

static int
depth_ok(struct expand *e, const struct expand_node *n)
{
	if (n->depth + 1 > EXPAND_DEPTH_MAX) {
		expand_fail(e, PROTO_PERMFAIL, "550 5.4.6 <%s>: alias "
		    "expansion too deep (loop?)", e->rcpt);
		return 0;
	}
	return 1;
}

/* who runs "/file" and "|command" items of an alias table */
static void
alias_run_as(struct action *a, struct table *t, char *out, size_t len)
{
	struct passwd	*pw;
	uid_t		 owner;

	if (a->user[0] != '\0') {
		snprintf(out, len, "%s", a->user);
		return;
	}
	/*
	 * Postfix's rule: the table owner's rights, unless that is root
	 * (or one of the daemon's own accounts, which never deliver)
	 */
	if (table_owner(t, &owner) == 0 && owner != 0 &&
	    !sysusers_is_daemon(owner) && (pw = getpwuid(owner)) != NULL) {
		snprintf(out, len, "%s", pw->pw_name);
		return;
	}
	snprintf(out, len, "%s", EXPAND_ALIAS_USER);
}

/*
 * Look `key' up in an alias (or virtual) table; when found, queue its
 * items.  Returns TABLE_FOUND, TABLE_NOTFOUND, or TABLE_ERROR after
 * failing the expansion.
 */
static int
expand_table(struct expand *e, struct expand_node *n, struct table *t,
    const char *key, const char *self)
{
	struct push_ctx	 c;
	char		*val, owner[ADDR_LOCAL_MAX + 16], where[512];
	int		 rc;

	rc = table_lookup_alias(t, key, &val);
	if (rc == TABLE_ERROR) {
		expand_fail(e, PROTO_TEMPFAIL, "451 4.3.0 <%s>: Temporary "
		    "failure in alias lookup", e->rcpt);
		return TABLE_ERROR;
	}
	if (rc == TABLE_NOTFOUND)
		return TABLE_NOTFOUND;
	if (seen(e, "t:%s:%s", t->name, key)) {
		/* a loop back to an alias being expanded, or a duplicate */
		free(val);
		return TABLE_FOUND;
	}
	if (!depth_ok(e, n)) {
		free(val);
		return TABLE_ERROR;
	}
	/*
	 * Sendmail's owner-LIST convention: errors about list mail go to
	 * the list's owner, not to whoever wrote to the list.  Never for a
	 * bounce (null sender): that would turn it into a mail that can
	 * bounce again.
	 */
	if (key[0] != '@' && strchr(key, '@') == NULL &&
	    e->req.mailfrom.user[0] != '\0' &&
	    strlen(key) + 6 <= ADDR_LOCAL_MAX) {
		snprintf(owner, sizeof(owner), "owner-%s", key);
		if (table_match_as(t, TS_ALIAS, owner) == TABLE_FOUND) {
			memcpy(n->sender_override.user, owner,
			    strlen(owner) + 1);
			snprintf(n->sender_override.domain,
			    sizeof(n->sender_override.domain), "%s",
			    n->dest.domain[0] ? n->dest.domain :
			    conf->hostname);
		}
	}
	alias_run_as(n->action, t, n->run_as, sizeof(n->run_as));
	snprintf(where, sizeof(where), "table %s, key %s", t->name, key);
	memset(&c, 0, sizeof(c));
	c.e = e;
	c.parent = n;
	c.origin = ORIGIN_ALIAS;
	c.self = self;
	c.where = where;
	if (alias_parse_list(val, push_item, push_bad, &c) == -1 && !c.stop)
		fatal("alias_parse_list");
	free(val);
	return TABLE_FOUND;
}

static enum step
expand_address(struct expand *e, struct expand_node *n)
{
	struct lka_rcpt_req	 req;
	struct match		*m;
	struct expand_node	*u;
	struct table		*t;
	char			 addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	char			 base[ADDR_LOCAL_MAX + 1], key[sizeof(addr)];
	char			 clean[sizeof(addr) * 4];
	int			 rc;

	addr_to_string(&n->it.addr, addr, sizeof(addr));
	if (seen(e, "a:%s", addr))
		return STEP_DONE;
	n->dest = n->it.addr;
	if (n->origin != ORIGIN_RCPT) {
		/*
		 * An address found in an alias goes through the rules again,
		 * as mail submitted locally would (SF_INTERNAL makes "from
		 * local" rules match), so the rules decide whether it is
		 * relayed, delivered here, or refused.
		 */
		req = e->req;
		req.rcpt = n->it.addr;
		req.flags |= SF_INTERNAL;
		if ((rc = rule_find(&req, &m)) == -1) {
			expand_fail(e, PROTO_TEMPFAIL, "451 4.3.0 <%s>: "
			    "Temporary lookup failure", e->rcpt);
			return STEP_DONE;
		}
		if (rc == 0 || m->reject || m->action == NULL) {
			log_warnx("alias expansion of <%s>: no rule accepts "
			    "<%s>", e->rcpt, log_sanitize(addr, clean,
			    sizeof(clean)));
			expand_fail(e, PROTO_PERMFAIL, "550 5.7.1 <%s>: alias "
			    "target is not deliverable", e->rcpt);
			return STEP_DONE;
		}
		n->action = m->action;
	}
	if (n->action->type == ACTION_RELAY) {
		emit_dest(e, n, DEST_REMOTE, "", "");
		return STEP_DONE;
	}
	if (n->action->virtual_table[0] != '\0') {
		if ((t = config_find_table(conf, n->action->virtual_table)) ==
		    NULL) {
			expand_fail(e, PROTO_TEMPFAIL, "451 4.3.5 <%s>: "
			    "virtual table missing", e->rcpt);
			return STEP_DONE;
		}
		/* user+detail@domain, user@domain, then @domain (catch-all) */
		addr_split_subaddress(n->it.addr.user, base, sizeof(base),
		    NULL, 0);
		rc = expand_table(e, n, t, addr, NULL);
		if (rc == TABLE_NOTFOUND && strcmp(base, n->it.addr.user)) {
			snprintf(key, sizeof(key), "%s@%s", base,
			    n->it.addr.domain);
			rc = expand_table(e, n, t, key, NULL);
		}
		if (rc == TABLE_NOTFOUND) {
			snprintf(key, sizeof(key), "@%s", n->it.addr.domain);
			rc = expand_table(e, n, t, key, NULL);
		}
		if (rc == TABLE_NOTFOUND)
			expand_fail(e, PROTO_PERMFAIL, "550 5.1.1 <%s>: "
			    "Recipient address rejected: User unknown",
			    e->rcpt);
		return STEP_DONE;
	}
	if (!addr_local_is_plain(&n->it.addr) ||
	    strlen(n->it.addr.user) >= sizeof(u->it.value)) {
		expand_fail(e, PROTO_PERMFAIL, "550 5.1.1 <%s>: Recipient "
		    "address rejected: User unknown", e->rcpt);
		return STEP_DONE;
	}
	/* the local part, as a user name of this action, same level */
	if ((u = node_new(e, n)) == NULL)
		return STEP_DONE;
	u->depth = n->depth;
	u->origin = n->origin;
	u->it.type = ALIAS_USERNAME;
	snprintf(u->it.value, sizeof(u->it.value), "%s", n->it.addr.user);
	for (char *c = u->it.value; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	TAILQ_INSERT_HEAD(&e->queue, u, entry);
	return STEP_DONE;
}

static enum step
expand_username(struct expand *e, struct expand_node *n)
{
	struct action		*a = n->action;
	struct table		*t;
	struct table_userinfo	 ui;
	struct passwd		*pw;
	const char		*tname;
	char			 base[ADDR_LOCAL_MAX + 1];
	int			 rc;

	addr_split_subaddress(n->it.value, base, sizeof(base), NULL, 0);
	if (!n->noalias && (a->alias_table[0] || a->virtual_table[0])) {
		tname = a->alias_table[0] ? a->alias_table : a->virtual_table;
		if ((t = config_find_table(conf, tname)) == NULL) {
			expand_fail(e, PROTO_TEMPFAIL, "451 4.3.5 <%s>: "
			    "alias table missing", e->rcpt);
			return STEP_DONE;
		}
		/* "user+detail" first, then the bare user */
		rc = expand_table(e, n, t, n->it.value, n->it.value);
		if (rc == TABLE_NOTFOUND && strcmp(base, n->it.value) != 0)
			rc = expand_table(e, n, t, base, base);
		if (rc != TABLE_NOTFOUND)
			return STEP_DONE;
	}
	if (a->userbase_table[0] != '\0') {
		if ((t = config_find_table(conf, a->userbase_table)) == NULL) {
			expand_fail(e, PROTO_TEMPFAIL, "451 4.3.5 <%s>: "
			    "userbase table missing", e->rcpt);
			return STEP_DONE;
		}
		rc = table_lookup_userinfo(t, base, &ui);
		if (rc == TABLE_NOTFOUND)
			goto unknown;
		if (rc == TABLE_ERROR)
			goto tempfail;
		errno = 0;
		if ((pw = getpwuid(ui.uid)) == NULL) {
			log_warnx("userbase %s: no system user has uid %u "
			    "(for %s)", t->name, (unsigned)ui.uid, base);
			goto tempfail;
		}
		if (pw->pw_uid == 0) {
			/* a virtual mailbox store owned by root is a mistake */
			log_warnx("userbase %s: %s maps to uid 0", t->name,
			    base);
			goto unknown;
		}
		if (sysusers_no_mailbox(pw->pw_uid)) {
			log_warnx("userbase %s: %s maps to %s, which never "
			    "receives mail", t->name, base, pw->pw_name);
			goto unknown;
		}
		/* one vmail account serves many mailboxes: no .forward */
		emit_dest(e, n, DEST_MAILBOX, pw->pw_name, "");
		return STEP_DONE;
	}
	if (a->user[0] != '\0') {
		/* "user NAME": every recipient delivered as that account */
		errno = 0;
		pw = pwcache_getpwnam(a->user);
		if (pw != NULL && sysusers_no_mailbox(pw->pw_uid)) {
			log_warnx("action %s: user %s never receives mail",
			    a->name, a->user);
			goto unknown;
		}
		emit_dest(e, n, DEST_MAILBOX, a->user, "");
		return STEP_DONE;
	}
	errno = 0;
	pw = pwcache_getpwnam(base);
	if (pw == NULL && errno != 0 && errno != ENOENT && errno != ESRCH)
		goto tempfail;
	if (pw == NULL)
		goto unknown;
	if (pw->pw_uid == 0) {
		/* root's mbox, never its .forward (see the top) */
		emit_dest(e, n, DEST_MAILBOX, pw->pw_name, "");
		return STEP_DONE;
	}
	/* the daemon's own accounts: as if there were no such user */
	if (sysusers_no_mailbox(pw->pw_uid))
		goto unknown;
	/* each user's .forward once: a .forward naming its user ends there */
	if (e->forward != NULL && a->forward_file && !n->it.literal &&
	    !seen(e, "f:%s", pw->pw_name)) {
		snprintf(n->sysuser, sizeof(n->sysuser), "%s", pw->pw_name);
		return STEP_WAIT;
	}
	emit_dest(e, n, DEST_MAILBOX, pw->pw_name, "");
	return STEP_DONE;
unknown:
	expand_fail(e, PROTO_PERMFAIL, "550 5.1.1 <%s>: Recipient address "
	    "rejected: User unknown", e->rcpt);
	return STEP_DONE;
tempfail:
	expand_fail(e, PROTO_TEMPFAIL, "451 4.3.0 <%s>: Temporary failure in "
	    "user lookup", e->rcpt);
	return STEP_DONE;
}

static void
expand_file_program(struct expand *e, struct expand_node *n)
{
	struct passwd	*pw;
	char		 clean[ENV_PATH_MAX * 4];

	log_sanitize(n->it.value, clean, sizeof(clean));
	if (n->origin == ORIGIN_INCLUDE) {
		log_warnx("expansion of <%s>: %s from an include file "
		    "ignored: %s", e->rcpt, n->it.type == ALIAS_PROGRAM ?
		    "program" : "file", clean);
		return;
	}
	if ((pw = getpwnam(n->run_as)) == NULL || pw->pw_uid == 0 ||
	    sysusers_is_daemon(pw->pw_uid)) {
		log_warnx("expansion of <%s>: %s ignored: no unprivileged "
		    "user %s to run it as", e->rcpt, clean, n->run_as);
		return;
	}
	emit_dest(e, n, n->it.type == ALIAS_PROGRAM ? DEST_PROGRAM : DEST_FILE,
	    pw->pw_name, n->it.value);
}

static void
expand_include(struct expand *e, struct expand_node *n)
{
	struct push_ctx	 c;
	struct stat	 sb;
	char		*buf = NULL, where[ENV_PATH_MAX + 32];
	ssize_t		 r;
	size_t		 len = 0;
	int		 fd;

	if (n->origin != ORIGIN_ALIAS) {
		log_warnx("expansion of <%s>: :include: only from aliases",
		    e->rcpt);
		return;
	}
	if (seen(e, "i:%s", n->it.value) || !depth_ok(e, n))
		return;
	if ((fd = open(n->it.value, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) ==
	    -1 || fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > EXPAND_FILE_MAX ||
	    (buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		log_warn("include file %s", n->it.value);
		goto fail;
	}
	while (len < (size_t)sb.st_size) {
		r = read(fd, buf + len, (size_t)sb.st_size - len);
		if (r == -1) {
			log_warn("include file %s", n->it.value);
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	snprintf(where, sizeof(where), "include file %s", n->it.value);
	memset(&c, 0, sizeof(c));
	c.e = e;
	c.parent = n;
	c.origin = ORIGIN_INCLUDE;
	c.where = where;
	if (alias_parse_file_text(buf, len, push_item, push_bad, &c) == -1 &&
	    !c.stop)
		fatal("alias_parse_file_text");
	free(buf);
	return;
fail:
	if (fd != -1)
		close(fd);
	free(buf);
	expand_fail(e, PROTO_TEMPFAIL, "451 4.3.0 <%s>: cannot read an "
	    "include file", e->rcpt);
}

static enum step
expand_node(struct expand *e, struct expand_node *n)
{
	switch (n->it.type) {
	case ALIAS_ADDRESS:
		return expand_address(e, n);
	case ALIAS_USERNAME:
		return expand_username(e, n);
	case ALIAS_FILENAME:
	case ALIAS_PROGRAM:
		expand_file_program(e, n);
		break;
	case ALIAS_INCLUDE:
		expand_include(e, n);
		break;
	case ALIAS_ERROR:
		expand_fail(e, n->it.value[0] == '4' ? PROTO_TEMPFAIL :
		    PROTO_PERMFAIL, "%s", n->it.value);
		break;
	}
	return STEP_DONE;
}

static void
expand_free(struct expand *e)
{
	struct expand_node	*n;
	size_t			 i;

	while ((n = TAILQ_FIRST(&e->queue)) != NULL) {
		TAILQ_REMOVE(&e->queue, n, entry);
		free(n);
	}
	free(e->waiting);
	for (i = 0; i < e->nseen; i++)
		free(e->seen[i]);
	free(e->seen);
	free(e);
}

static void
expand_run(struct expand *e)
{
	struct expand_node	*n;

	while (e->status == PROTO_OK && (n = TAILQ_FIRST(&e->queue)) !=
	    NULL) {
		TAILQ_REMOVE(&e->queue, n, entry);
		if (expand_node(e, n) == STEP_WAIT) {
			e->waiting = n;
			/* last thing: the callback may resume (and free) e */
			e->forward(e->arg, e, n->sysuser);
			return;
		}
		free(n);
	}
	if (e->status == PROTO_OK && e->ndest == 0)
		expand_fail(e, PROTO_PERMFAIL, "550 5.4.6 <%s>: alias "
		    "expansion leads nowhere (loop?)", e->rcpt);
	e->done(e->arg, e->status, e->status == PROTO_OK ? "" : e->reply,
	    e->ndest);
	expand_free(e);
}

void
expand_forward_done(struct expand *e, int fd, int status)
{
	struct expand_node	*n = e->waiting;
	struct push_ctx		 c;
	struct stat		 sb;
	char			*buf = NULL, where[ENV_NAME_MAX + 32];
	size_t			 len = 0;
	ssize_t			 r;
	int			 nitems = 0;

	if (n == NULL)
		fatalx("expand_forward_done: nothing waiting");
	e->waiting = NULL;
	if (status == PROTO_TEMPFAIL) {
		expand_fail(e, PROTO_TEMPFAIL, "451 4.3.0 <%s>: Temporary "
		    "failure reading a .forward file", e->rcpt);
		goto out;
	}
	if (status == PROTO_OK && fd != -1) {
		/* the parent checked owner, mode and type; we check size */
		if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
		    sb.st_size > EXPAND_FILE_MAX ||
		    (buf = malloc((size_t)sb.st_size + 1)) == NULL) {
			log_warnx("%s: .forward unusable (too large?)",
			    n->sysuser);
			goto mailbox;
		}
		while (len < (size_t)sb.st_size) {
			r = read(fd, buf + len, (size_t)sb.st_size - len);
			if (r == -1) {
				log_warn("%s: .forward", n->sysuser);
				expand_fail(e, PROTO_TEMPFAIL, "451 4.3.0 "
				    "<%s>: Temporary failure reading a "
				    ".forward file", e->rcpt);
				goto out;
			}
			if (r == 0)
				break;
			len += (size_t)r;
		}
		if (!depth_ok(e, n))
			goto out;
		snprintf(where, sizeof(where), "~%s/.forward", n->sysuser);
		/* its files and programs run as the user, not as anyone else */
		snprintf(n->run_as, sizeof(n->run_as), "%s", n->sysuser);
		memset(&c, 0, sizeof(c));
		c.e = e;
		c.parent = n;
		c.origin = ORIGIN_FORWARD;
		c.self = n->sysuser;
		c.where = where;
		nitems = alias_parse_file_text(buf, len, push_item, push_bad,
		    &c);
		if (nitems == -1 && !c.stop)
			fatal("alias_parse_file_text");
		if (nitems != 0)
			goto out;
		/* an empty .forward is no .forward */
	}
mailbox:
	emit_dest(e, n, DEST_MAILBOX, n->sysuser, "");
out:
	if (fd != -1)
		close(fd);
	free(buf);
	free(n);
	expand_run(e);
}

void
expand_start(const struct lka_rcpt_req *req, struct action *a,
    expand_emit emit, expand_forward forward, expand_done done, void *arg,
    uint32_t maxdest)
{
	struct expand		*e;
	struct expand_node	*n;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		fatal("calloc");
	e->req = *req;
	e->action = a;
	TAILQ_INIT(&e->queue);
	e->emit = emit;
	e->forward = forward;
	e->done = done;
	e->arg = arg;
	e->maxdest = maxdest;
	e->status = PROTO_OK;
	addr_to_string(&req->rcpt, e->rcpt, sizeof(e->rcpt));
	if ((n = node_new(e, NULL)) == NULL)
		fatalx("expand_start");
	n->origin = ORIGIN_RCPT;
	n->action = a;
	n->it.type = ALIAS_ADDRESS;
	n->it.addr = req->rcpt;
	n->dest = req->rcpt;
	/* <postmaster> without a domain (RFC 5321 4.1.1.3) is ours */
	if (n->it.addr.domain[0] == '\0')
		snprintf(n->dest.domain, sizeof(n->dest.domain), "%s",
		    conf->hostname);
	TAILQ_INSERT_TAIL(&e->queue, n, entry);
	expand_run(e);
}

/* the synchronous form, without ~/.forward (VRFY, EXPN, tests) */
struct sync_ctx {
	int	 status;
	char	*reply;
	size_t	 replylen;
};

struct sync_arg {
	void		*user_arg;
	struct sync_ctx	*s;
	expand_emit	 emit;
};

static void
sync_done(void *arg, int status, const char *reply, uint32_t ndest)
{
	struct sync_arg	*sa = arg;

	sa->s->status = status;
	snprintf(sa->s->reply, sa->s->replylen, "%s", reply);
}

static void
sync_emit(void *arg, const struct lka_dest *d)
{
	struct sync_arg	*sa = arg;

	sa->emit(sa->user_arg, d);
}

int
expand_recipient(const struct lka_rcpt_req *req, struct action *a,
    expand_emit emit, void *arg, char *reply, size_t replylen)
{
	struct sync_ctx	s;
	struct sync_arg	sa;

	s.status = PROTO_TEMPFAIL;
	s.reply = reply;
	s.replylen = replylen;
	sa.user_arg = arg;
	sa.s = &s;
	sa.emit = emit;
	expand_start(req, a, sync_emit, NULL, sync_done, &sa, 1000);
	return s.status;
}
