/*
 * proc_table.h -- the lines a proc: table's program writes (OpenSMTPD's
 * smtpd-tables(7) protocol, version 0.1), parsed strictly: proc.c reads
 * them, regress/unit/test_proc_table.c and regress/fuzz/fuzz_proc_table.c
 * prove the parser.  A line is given without its "\n"; anything this
 * refuses is garbage, and proc.c gives up on the program for it.
 */
#ifndef POSTHASTE_PROC_TABLE_H
#define POSTHASTE_PROC_TABLE_H

#include <stdint.h>

#include "backend.h"

#define PROC_PROTOCOL	"0.1"
#define PROC_ID_MAX	16	/* hex digits of a request's ID */
/* the longest line accepted: "lookup-result|ID|found|" and a value */
#define PROC_LINE_MAX	(TABLE_VALUE_MAX + 64)

/* "check" asks for membership only, "lookup" for a value */
enum proc_op {
	PROC_OP_LOOKUP,
	PROC_OP_CHECK,
};

struct proc_answer {
	enum proc_op	 op;		/* of the "-result" line */
	uint64_t	 id;
	int		 status;	/* TABLE_FOUND, _NOTFOUND, _ERROR */
	/* FOUND of a lookup: the value (may hold '|'); ERROR: the
	 * program's message or NULL; else NULL.  Points into the line. */
	const char	*text;
};

/*
 * "lookup-result|ID|found|VALUE", "lookup-result|ID|not-found",
 * "lookup-result|ID|error[|MESSAGE]", and the same for "check-result"
 * (whose "found" carries no value; one given is ignored).  ID: 1 to 16
 * lower-case hex digits without a leading zero, as proc.c writes them.
 * 0, or -1 for anything else.
 */
int	proc_parse_answer(const char *line, struct proc_answer *);

/* what a handshake line registers */
enum proc_register {
	PROC_REG_SERVICE,	/* one of ours: *service set */
	PROC_REG_OTHER,		/* an OpenSMTPD service we never ask */
	PROC_REG_READY,		/* "register|ready": the handshake is over */
};
/* "register|alias", "register|ready": the kind, or -1 */
int	proc_parse_register(const char *line, enum table_service *service);

/* which request asks a service: check for the membership services */
enum proc_op	proc_service_op(enum table_service);

#endif
