/*
 * ctl_milter.c -- smtpctl's output of "show milters": see ctl_milter.h.
 *
 * A line per filter, in the order smtpd.conf defines them:
 *
 *	NAME ADDRESS state=up|down|unused [since=TIME] sessions=N
 *	    messages=N accepted=N rejected=N tempfailed=N discarded=N
 *	    quarantined=N modified=N errors=N on-error-used=N
 *	    [error-at=TIME error=TEXT]
 *
 * TIME is UTC, ISO 8601.  The error text is last on the line: it is what
 * a filter or the system said and may hold spaces; it goes through
 * ctl_text_safe(), and through json.c with -j, so that neither output
 * can be broken by it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl_format.h"
#include "ctl_milter.h"

static const char *const state_names[] = {
	[MILTER_STATE_UNUSED] = "unused",
	[MILTER_STATE_UP] = "up",
	[MILTER_STATE_DOWN] = "down",
};

const char *
ctl_milter_state_name(uint32_t state)
{
	if (state >= sizeof(state_names) / sizeof(state_names[0]))
		return "unknown";
	return state_names[state];
}

static const char *
utc(int64_t t, char *buf, size_t len)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
	return buf;
}

struct counter {
	const char	*text;	/* text output */
	const char	*json;	/* JSON member */
	uint64_t	 value;
};

static size_t
counters(const struct milter_stats *s, struct counter *c)
{
	size_t	n = 0;

#define COUNTER(t, j, f)	c[n].text = t; c[n].json = j; c[n++].value = f
	COUNTER("sessions", "sessions", s->sessions);
	COUNTER("messages", "messages", s->messages);
	COUNTER("accepted", "accepted", s->accepted);
	COUNTER("rejected", "rejected", s->rejected);
	COUNTER("tempfailed", "tempfailed", s->tempfailed);
	COUNTER("discarded", "discarded", s->discarded);
	COUNTER("quarantined", "quarantined", s->quarantined);
	COUNTER("modified", "modified", s->modified);
	COUNTER("errors", "errors", s->errors);
	COUNTER("on-error-used", "on_error_used", s->defaults);
#undef COUNTER
	return n;
}

void
ctl_milter_json(struct json *j, const struct ctl_milter *m)
{
	const struct milter_stats	*s = &m->st;
	struct counter			 c[16];
	size_t				 i, n = counters(s, c);

	json_object_begin(j);
	json_key(j, "name");
	json_string(j, s->name, strnlen(s->name, sizeof(s->name)));
	json_key(j, "address");
	json_string(j, m->address, strnlen(m->address, sizeof(m->address)));
	json_kv_string(j, "state", ctl_milter_state_name(s->state));
	if (s->state != MILTER_STATE_UNUSED && s->since > 0)
		json_kv_int(j, "since", s->since);
	else
		json_kv_null(j, "since");
	for (i = 0; i < n; i++)
		json_kv_uint(j, c[i].json, c[i].value);
	if (s->error[0] != '\0') {
		json_kv_int(j, "error_at", s->error_at);
		json_key(j, "error");
		json_string(j, s->error, strnlen(s->error, sizeof(s->error)));
	} else {
		json_kv_null(j, "error_at");
		json_kv_null(j, "error");
	}
	json_object_end(j);
}

void
ctl_milter_text(FILE *fp, const struct ctl_milter *m)
{
	const struct milter_stats	*s = &m->st;
	struct counter			 c[16];
	char				 t[64];
	size_t				 i, n = counters(s, c);

	ctl_text_safe(fp, s->name, sizeof(s->name));
	fputc(' ', fp);
	ctl_text_safe(fp, m->address, sizeof(m->address));
	fprintf(fp, " state=%s", ctl_milter_state_name(s->state));
	if (s->state != MILTER_STATE_UNUSED && s->since > 0)
		fprintf(fp, " since=%s", utc(s->since, t, sizeof(t)));
	for (i = 0; i < n; i++)
		fprintf(fp, " %s=%" PRIu64, c[i].text, c[i].value);
	if (s->error[0] != '\0') {
		fprintf(fp, " error-at=%s error=", utc(s->error_at, t,
		    sizeof(t)));
		ctl_text_safe(fp, s->error, sizeof(s->error));
	}
	fputc('\n', fp);
}
