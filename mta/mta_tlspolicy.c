/*
 * mta_tlspolicy.c -- the TLS policy table ("mta tls-policy <table>",
 * Postfix's smtp_tls_policy_maps): a TLS level per destination, which
 * wins over the action's "tls LEVEL".
 *
 * The key is the recipient domain of an MX route, or the relay host's
 * name; as in Postfix, "sub.example.org" is looked up as itself, then
 * as ".example.org", then ".org": an entry ".example.org" covers the
 * subdomains of example.org, not example.org itself.
 *
 * The table is read once, here, as root and before the chroot, like the
 * relay credentials (mta.c, mta_secrets_init()), not asked of lookup for
 * every new route.  A reload starts a new mta with the new configuration
 * (smtpd.c, the generations), and the parent checks every entry of the
 * new table before it does (config/tls_policy.c): a bad entry fails the
 * reload and the running mta keeps the policy it was started with, so
 * the policy an mta applies and the configuration it was started with
 * always go together.  Asking lookup instead would let a table edited
 * without a reload change the policy of the running mta with no check
 * of the whole table first, and would add a round trip to every route.
 * An edit takes effect at the next reload, as for the credentials.
 *
 * Only the keys and the values are kept, sorted; a value is parsed when
 * a route is made (tls_policy_parse(), the parser the parent checked it
 * with).  A value that no longer parses -- the file changed between the
 * parent's check and our read -- is logged and that destination is
 * deferred (mta.c, route_resolve()): never delivered with less than
 * the administrator wrote.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POSTHASTE_MTA_INTERNAL
#include "log.h"
#include "mta.h"
#include "proc.h"
#include "table.h"
#include "tls_policy.h"

struct policy_entry {
	char	*key;
	char	*value;
};

static struct policy_entry	*entries;
static size_t			 nentries;
static int			 unreadable;	/* every destination deferred */

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct policy_entry *)a)->key,
	    ((const struct policy_entry *)b)->key);
}

static int
load_cb(void *arg, const char *key, const char *value)
{
	struct policy_entry	*n;

	n = reallocarray(entries, nentries + 1, sizeof(*entries));
	if (n == NULL)
		fatal("reallocarray");
	entries = n;
	if ((entries[nentries].key = strdup(key)) == NULL ||
	    (entries[nentries].value = strdup(value ? value : "")) == NULL)
		fatal("strdup");
	nentries++;
	return 0;
}

void
mta_tlspolicy_init(void)
{
	struct table	*t;

	if (conf->mta_tls_policy[0] == '\0')
		return;
	if ((t = config_find_table(conf, conf->mta_tls_policy)) == NULL)
		fatalx("no table %s for mta tls-policy", conf->mta_tls_policy);
	if (table_foreach(t, load_cb, NULL) == TABLE_ERROR) {
		/*
		 * The parent read it a moment ago (it may have gone since):
		 * what it asks for is not known, so nothing goes out until a
		 * reload reads it again.  Not fatal: a reload must not stop
		 * the daemon.
		 */
		log_warnx("mta tls-policy: cannot read table %s: all remote "
		    "mail is deferred until a reload", t->name);
		unreadable = 1;
		return;
	}
	qsort(entries, nentries, sizeof(*entries), entry_cmp);
	log_debug("mta tls-policy: %zu entries from table %s", nentries,
	    t->name);
}

static const struct policy_entry *
find_exact(const char *key)
{
	struct policy_entry	k;

	k.key = (char *)(uintptr_t)key;
	return bsearch(&k, entries, nentries, sizeof(*entries), entry_cmp);
}

int
mta_tlspolicy_find(const char *dest, struct tls_policy *tp)
{
	const struct policy_entry	*e;
	const char			*p;
	char				 key[256], err[256];
	size_t				 i, len = strlen(dest);

	if (unreadable)
		return -1;
	if (nentries == 0 || len == 0 || len >= sizeof(key))
		return 0;
	for (i = 0; i < len; i++)
		key[i] = (char)tolower((unsigned char)dest[i]);
	key[len] = '\0';
	if (len > 1 && key[len - 1] == '.')
		key[--len] = '\0';	/* the root's dot */
	e = find_exact(key);
	/* then ".parent" for each parent domain, nearest first */
	for (p = strchr(key, '.'); e == NULL && p != NULL;
	    p = strchr(p + 1, '.'))
		e = find_exact(p);
	if (e == NULL)
		return 0;
	if (tls_policy_parse(e->value, tp, err, sizeof(err)) == -1) {
		log_warnx("mta tls-policy: table %s, entry \"%s\": %s: mail "
		    "for %s is deferred", conf->mta_tls_policy, e->key, err,
		    dest);
		return -1;
	}
	log_debug("mta tls-policy: %s: entry \"%s\": %s", dest, e->key,
	    conf_tls_level_name(tp->level));
	return 1;
}
