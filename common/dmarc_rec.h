/*
 * dmarc_rec.h -- the rows of the DMARC aggregate reports as they travel
 * and as they are kept: struct queue_dmarc_record (common/proto.h, from
 * lookup to the queue) and its line in the spool file dmarc/records
 * (queue/dmarc_send.c).
 *
 * Who calls what: lookup (lookup/checks.c) fills a record and drops it
 * unless dmarc_rec_valid(); the queue's proto_valid_queue_dmarc_record()
 * is the same check (a bad one from lookup is a bug: fatal), then
 * dmarc_rec_format() makes its line.  When the reports are sent, the
 * queue reads the file back with dmarc_rec_parse(), which trusts
 * nothing: a torn or edited line is refused and skipped.
 *
 * The line: "v1", the time it was recorded (UTC seconds), then the
 * fields of the struct in order, separated by one space, numbers in
 * decimal, an empty string as "-", the rua and DKIM lists each after
 * their count, and "." at the end, so that a line cut short by a crash
 * (the file is appended without fsync) never parses.  Every string is a
 * token: printable ASCII without space, never "-" itself.
 */
#ifndef POSTHASTE_DMARC_REC_H
#define POSTHASTE_DMARC_REC_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define DMARC_REC_LINE_MAX	8192	/* with its '\n' and NUL */

/* 0 when every field is in range and every string a token, else -1 */
int	dmarc_rec_valid(const struct queue_dmarc_record *);

/*
 * The line of a valid record, recorded at when, '\n'-terminated, into
 * out: its length, or -1 (invalid record, out too small).
 */
int	dmarc_rec_format(const struct queue_dmarc_record *, int64_t when,
	    char *out, size_t outlen);

/*
 * One line (len bytes, with or without its '\n'; may hold any byte):
 * 0 and the record (valid) and its time, or -1.
 */
int	dmarc_rec_parse(const char *line, size_t len,
	    struct queue_dmarc_record *, int64_t *when);

#endif
