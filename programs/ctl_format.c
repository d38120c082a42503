/*
 * ctl_format.c -- smtpctl's output of "show queue": see ctl_format.h.
 *
 * The fields come from the queue as they are stored: addresses may hold
 * quotes, backslashes and spaces (a quoted local part), the last error is
 * whatever a remote server answered.  Nothing is printed without going
 * through json.c (JSON) or text_safe() (text), so neither output can be
 * broken or a terminal driven by what a sender chose.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl_format.h"
#include "envelope.h"

static const char *const state_names[CTL_QSTATE_MAX] = {
	[CTL_QSTATE_PENDING] = "pending",
	[CTL_QSTATE_DEFERRED] = "deferred",
	[CTL_QSTATE_INFLIGHT] = "inflight",
	[CTL_QSTATE_PAUSED] = "paused",
	[CTL_QSTATE_REMOVING] = "removing",
	[CTL_QSTATE_BOUNCING] = "bouncing",
	[CTL_QSTATE_HELD] = "held",
};

const char *
ctl_queue_state_name(uint32_t state)
{
	if (state >= CTL_QSTATE_MAX || state_names[state] == NULL)
		return "unknown";
	return state_names[state];
}

/* later - earlier in seconds, 0 if not later; no overflow either way */
static uint64_t
age_of(int64_t earlier, int64_t later)
{
	return later > earlier ? (uint64_t)later - (uint64_t)earlier : 0;
}

void
ctl_queue_entry_json(struct json *j, const struct ctl_queue_entry *q)
{
	char	id[17], msgid[9];

	snprintf(id, sizeof(id), "%016" PRIx64, q->evpid);
	snprintf(msgid, sizeof(msgid), "%08" PRIx32, msgid_of(q->evpid));
	json_object_begin(j);
	json_kv_string(j, "id", id);
	json_kv_string(j, "message", msgid);
	json_key(j, "sender");
	json_string(j, q->sender, strnlen(q->sender, sizeof(q->sender)));
	json_key(j, "recipient");
	json_string(j, q->recipient, strnlen(q->recipient,
	    sizeof(q->recipient)));
	json_kv_string(j, "state", ctl_queue_state_name(q->state));
	json_kv_uint(j, "size", q->size);
	json_kv_int(j, "arrival", q->arrival);
	json_kv_uint(j, "age", age_of(q->arrival, q->now));
	json_kv_uint(j, "tries", q->tries);
	if (q->lasttry > 0)
		json_kv_int(j, "last_try", q->lasttry);
	else
		json_kv_null(j, "last_try");
	if (q->nexttry > 0)
		json_kv_int(j, "next_try", q->nexttry);
	else
		json_kv_null(j, "next_try");
	json_key(j, "error");
	json_string(j, q->error, strnlen(q->error, sizeof(q->error)));
	/* EF_HOLD's reason; null when not held (in flight, it may be) */
	if (q->held[0] != '\0') {
		json_key(j, "held");
		json_string(j, q->held, strnlen(q->held, sizeof(q->held)));
	} else
		json_kv_null(j, "held");
	json_object_end(j);
}

/* printable ASCII and well-formed UTF-8 as they are, the rest as '?' */
static void
text_safe(FILE *fp, const char *s, size_t max)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 len = strnlen(s, max), i = 0, n;

	while (i < len) {
		if (u[i] >= 0x20 && u[i] < 0x7f) {
			fputc(u[i++], fp);
			continue;
		}
		if (u[i] >= 0x80 &&
		    (n = utf8_sequence_len(u + i, len - i)) > 0) {
			fwrite(u + i, 1, n, fp);
			i += n;
			continue;
		}
		fputc('?', fp);
		i++;
	}
}

void
ctl_queue_entry_text(FILE *fp, const struct ctl_queue_entry *q)
{
	/* held: '!' after the id, as Postfix's mailq marks it */
	fprintf(fp, "%016" PRIx64 "%s ", q->evpid, q->held[0] != '\0' ?
	    "!" : "");
	if (q->sender[0] == '\0')
		fputs("<>", fp);
	else
		text_safe(fp, q->sender, sizeof(q->sender));
	fputs(" -> ", fp);
	text_safe(fp, q->recipient, sizeof(q->recipient));
	fprintf(fp, " size=%" PRIu64 " age=%" PRIu64 "s tries=%u state=%s",
	    q->size, age_of(q->arrival, q->now), q->tries,
	    ctl_queue_state_name(q->state));
	if (q->nexttry > q->now)
		fprintf(fp, " next=%" PRIu64 "s", age_of(q->now, q->nexttry));
	if (q->held[0] != '\0') {
		fputs(" held=", fp);
		text_safe(fp, q->held, sizeof(q->held));
	}
	if (q->error[0] != '\0') {
		fputs(" error=", fp);
		text_safe(fp, q->error, sizeof(q->error));
	}
	fputc('\n', fp);
}

void
ctl_text_safe(FILE *fp, const char *s, size_t max)
{
	text_safe(fp, s, max);
}
