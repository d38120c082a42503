/*
 * tabfile.h -- the text form of tables, shared by the file: backend
 * (table.c) and makemap(8): one parser, so a file means the same thing
 * whether it is read as text or compiled into a .db.
 */
#ifndef POSTHASTE_TABFILE_H
#define POSTHASTE_TABFILE_H

#include <stddef.h>
#include <stdio.h>

#define TABFILE_ALIASES		0x01	/* "key: value", aliases(5) */
#define TABFILE_SET		0x02	/* keys only; a value is an error */

#define TABFILE_VALUE_MAX	(64 * 1024)

/*
 * Called once per entry, key lower-cased, value "" in a list.  `line' is
 * where the entry's key is.  Return -1 to stop (the callback wrote err).
 */
typedef int	(*tabfile_cb)(void *arg, const char *key, const char *value,
		    size_t line, char *err, size_t errlen);

/*
 * Logical lines: a line starting with white space continues the
 * previous entry's value (joined with one space); blank lines and lines
 * whose first non-blank character is '#' are comments.  Without
 * TABFILE_ALIASES an entry is "key value" (a ':' ending the key is
 * dropped when a value follows, so "key: value" works too) or a lone
 * "key".  With it, the key ends at the first ':', which is required.
 * Returns 0, or -1 with "NAME:LINE: reason" in err.
 */
int	tabfile_parse(FILE *, const char *name, int flags, tabfile_cb,
	    void *arg, char *err, size_t errlen);

#endif
