/*
 * ctl_format.h -- how smtpctl shows what the daemon sends it: the
 * envelopes of "show queue" as text lines or as JSON objects.  Apart
 * from smtpctl.c (which has main()) so that the unit tests and the fuzz
 * harness run the very code smtpctl prints with.
 */
#ifndef POSTHASTE_CTL_FORMAT_H
#define POSTHASTE_CTL_FORMAT_H

#include <stdio.h>

#include "json.h"
#include "proto.h"

/* "pending", "deferred", ...; "unknown" out of range */
const char	*ctl_queue_state_name(uint32_t);
/* one envelope as a JSON object, the whole document of j */
void		 ctl_queue_entry_json(struct json *, const struct ctl_queue_entry *);
/*
 * one envelope as a line of text; control and non-UTF-8 bytes as '?'; a
 * held one has '!' after its id (as in Postfix's mailq) and held=REASON
 */
void		 ctl_queue_entry_text(FILE *, const struct ctl_queue_entry *);
/* at most max bytes of s: printable ASCII and UTF-8 as is, else '?' */
void		 ctl_text_safe(FILE *, const char *s, size_t max);

#endif
