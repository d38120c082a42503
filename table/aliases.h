/*
 * aliases.h -- the right-hand side of aliases(5), virtual tables and
 * ~/.forward: a comma-separated list of destinations.
 */
#ifndef POSTHASTE_ALIASES_H
#define POSTHASTE_ALIASES_H

#include <stddef.h>

#include "addr.h"
#include "envelope.h"

enum alias_type {
	ALIAS_USERNAME = 1,	/* "user": a local user, or another alias */
	ALIAS_ADDRESS,		/* "user@domain": through the rules again */
	ALIAS_FILENAME,		/* "/path/to/file": append */
	ALIAS_PROGRAM,		/* "|command args": pipe */
	ALIAS_INCLUDE,		/* ":include:/path": more items from a file */
	ALIAS_ERROR,		/* "error:550 5.1.1 text": this SMTP reply */
};

struct alias_item {
	enum alias_type	 type;
	int		 literal;	/* "\user": the mailbox, no more
					 * aliasing or .forward */
	struct mailaddr	 addr;		/* ALIAS_ADDRESS */
	/* user name (lower-cased), path, command, or the SMTP reply */
	char		 value[ENV_PATH_MAX];
};

typedef int	(*alias_item_cb)(void *arg, const struct alias_item *);

/*
 * Parse one item (white space around it already removed; surrounding
 * double quotes are taken off here).  Returns 0, or -1 with a reason in
 * err.
 */
int	alias_parse_item(const char *s, struct alias_item *, char *err,
	    size_t errlen);

/*
 * Split a list on commas outside double quotes and parse each item.
 * Bad items are reported through bad_cb (may be NULL) and skipped, so
 * one broken entry does not take a whole list down; cb returning -1
 * stops.  Returns the number of good items, or -1 when cb stopped.
 */
typedef void	(*alias_bad_cb)(void *arg, const char *item, const char *why);
int	alias_parse_list(const char *list, alias_item_cb cb, alias_bad_cb,
	    void *arg);

/*
 * The content of a .forward or :include: file: one or more items per
 * line, '#' comment lines.  Lines are joined as a list.
 */
int	alias_parse_file_text(const char *text, size_t len, alias_item_cb,
	    alias_bad_cb, void *arg);

/* "550 5.1.1 text" from an error: item: code 4xx or 5xx, printable */
int	alias_valid_error(const char *s, char *reply, size_t replylen);

#endif
