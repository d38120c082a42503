/*
 * ctl_milter.h -- how smtpctl shows the mail filters ("show milters"):
 * a line of text or a JSON object per filter.  Apart from smtpctl.c so
 * that the unit tests run the very code smtpctl prints with.
 */
#ifndef POSTHASTE_CTL_MILTER_H
#define POSTHASTE_CTL_MILTER_H

#include <stdio.h>

#include "json.h"
#include "proto.h"

/* "unused", "up", "down"; "unknown" out of range */
const char	*ctl_milter_state_name(uint32_t);
/* one filter as a JSON object, the whole document of j */
void		 ctl_milter_json(struct json *, const struct ctl_milter *);
/* one filter as a line of text */
void		 ctl_milter_text(FILE *, const struct ctl_milter *);

#endif
