/*
 * dkim_keys.c -- the parent's part in DKIM signing: it reads the table
 * of signing keys ("dkim sign <table>", parse_auth.c), opens each key
 * file as root and hands the descriptor to the keys process, which
 * alone reads it (keys/keys_dkim.c).  At start, and again when
 * "smtpctl update table" names the table: keys then swaps in the new
 * set whole, so a key is rotated without a restart.
 *
 * An entry that is wrong (a domain or selector that is not one, a file
 * that cannot be opened) is logged and skipped; the others are used.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dkim_keys.h"
#include "log.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "table.h"

struct dkim_walk {
	struct mproc	*keys;
	const char	*table;
	int		 n;
};

static int
valid_label_chars(const char *s, int dots)
{
	if (*s == '\0' || *s == '.' || *s == '-')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' &&
		    !(dots && *s == '.'))
			return 0;
	return 1;
}

static void
send_key(struct dkim_walk *w, const char *domain, char *item)
{
	struct keys_dkim_ident	 k;
	char			*colon, *path, *end;
	int			 fd;

	while (isspace((unsigned char)*item))
		item++;
	end = item + strlen(item);
	while (end > item && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (*item == '\0')
		return;
	if ((colon = strchr(item, ':')) == NULL) {
		log_warnx("table %s: %s: \"%s\" is not selector:keyfile",
		    w->table, domain, item);
		return;
	}
	*colon = '\0';
	path = colon + 1;
	memset(&k, 0, sizeof(k));
	if (!valid_label_chars(domain, 1) || !valid_label_chars(item, 1) ||
	    strlen(domain) >= sizeof(k.domain) ||
	    strlen(item) >= sizeof(k.selector) || path[0] != '/') {
		log_warnx("table %s: %s: bad domain, selector or key file "
		    "(an absolute path)", w->table, domain);
		return;
	}
	if (w->n == KEYS_DKIM_MAX) {
		log_warnx("table %s: more than %d keys, the rest ignored",
		    w->table, KEYS_DKIM_MAX);
		return;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		log_warn("table %s: %s: selector %s: %s", w->table, domain,
		    item, path);
		return;
	}
	/* lengths checked above */
	memcpy(k.domain, domain, strlen(domain) + 1);
	for (end = k.domain; *end != '\0'; end++)
		*end = (char)tolower((unsigned char)*end);
	memcpy(k.selector, item, strlen(item) + 1);
	mproc_compose(w->keys, IMSG_KEYS_DKIM_KEY, 0, fd, &k, sizeof(k));
	w->n++;
}

static int
walk_entry(void *arg, const char *domain, const char *value)
{
	struct dkim_walk	*w = arg;
	char			 buf[4096], *item, *next;

	if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf)) {
		log_warnx("table %s: %s: value too long", w->table, domain);
		return 0;
	}
	for (item = buf; item != NULL; item = next) {
		if ((next = strchr(item, ',')) != NULL)
			*next++ = '\0';
		send_key(w, domain, item);
	}
	return 0;
}

void
dkim_keys_send(struct mproc *keys, int reload)
{
	struct dkim_walk	 w = { keys, conf->dkim_sign_table, 0 };
	struct table		*t;

	if (conf->dkim_sign_table[0] == '\0')
		return;
	if ((t = config_find_table(conf, conf->dkim_sign_table)) == NULL)
		fatalx("dkim sign: no table %s", conf->dkim_sign_table);
	if (reload)
		table_reload(t->name);
	if (table_foreach(t, walk_entry, &w) == TABLE_ERROR)
		log_warnx("table %s: cannot be read: DKIM keys unchanged",
		    t->name);
	else
		mproc_compose(keys, IMSG_KEYS_DKIM_DONE, 0, -1, NULL, 0);
}
