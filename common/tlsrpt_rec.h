/*
 * tlsrpt_rec.h -- a TLS-RPT outcome as it travels (struct lka_tlsrpt
 * from the mta to lookup, struct queue_tlsrpt_record from lookup to the
 * queue; common/proto.h) and as it is kept: one line in the spool file
 * tlsrpt/records (queue/tlsrpt_send.c).
 *
 * The line: "t1", the time it was recorded (UTC seconds), then the
 * fields in order separated by one space: policy domain, policy type,
 * result, MX host, sending IP, receiving IP, reason, policy string, the
 * rua count and URIs, and "." at the end, so that a line cut short by a
 * crash (the file is appended without fsync) never parses.  Strings are
 * percent-encoded (every byte outside '!'..'~', and '%' itself, as %XX),
 * an empty string or an unknown address is "-"; so a policy string with
 * its newlines, or a reason with spaces, is one field.
 */
#ifndef POSTHASTE_TLSRPT_REC_H
#define POSTHASTE_TLSRPT_REC_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define TLSRPT_REC_LINE_MAX	(3 * TLSRPT_POLICY_STRING_MAX + 8192)

/* 0 when every field is in range and every string ends, else -1 */
int	tlsrpt_note_valid(const struct lka_tlsrpt *);
/* likewise, and 1 to QUEUE_TLSRPT_RUA URIs, each printable ASCII */
int	tlsrpt_rec_valid(const struct queue_tlsrpt_record *);

/* the line of a valid record, '\n'-terminated: its length, or -1 */
int	tlsrpt_rec_format(const struct queue_tlsrpt_record *, int64_t when,
	    char *out, size_t outlen);

/*
 * One line (len bytes, with or without its '\n'; any bytes): 0 and the
 * record (valid) and its time, or -1.
 */
int	tlsrpt_rec_parse(const char *line, size_t len,
	    struct queue_tlsrpt_record *, int64_t *when);

#endif
