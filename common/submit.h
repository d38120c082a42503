/*
 * submit.h -- local submission: the client side of the control socket.
 *
 * Shared by sendmail(8) and by the daemon's offline pick-up (offline.c):
 * both hand a prepared message to smtpd through the control socket
 * (CTL_SUBMIT, then SMTP), and both fall back on the same files -- the
 * spool's offline directory and ~/dead.letter.
 */
#ifndef POSTHASTE_SUBMIT_H
#define POSTHASTE_SUBMIT_H

#include <stddef.h>

#include "addr.h"

struct strset;

#define SUBMIT_ADDR_MAX		(ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2)
#define SUBMIT_RCPT_MAX		100000	/* as "smtp max-rcpt" allows */
#define SUBMIT_ENVID_MAX	100	/* RFC 3461 4.4 */
#define SUBMIT_OFFLINE_DIR	"offline"

/* Everything needed to submit one message again, exactly. */
struct submission {
	char	  sender[SUBMIT_ADDR_MAX];	/* "" = the null sender */
	char	**rcpts;			/* "user@domain" each */
	size_t	  nrcpts;
	size_t	  rcptcap;
	struct strset *rcptset;		/* rcpts, case-folded, for dups */
	char	  notify[64];	/* RFC 3461 NOTIFY value, "" = none */
	char	  ret[8];	/* "FULL", "HDRS" or "" */
	char	  envid[SUBMIT_ENVID_MAX + 1];	/* raw, "" = none */
	char	 *msg;		/* LF line ends, not dot-stuffed */
	size_t	  msglen;
	int	  eightbit;	/* the message has 8-bit bytes */
};

struct submit_result {
	int	reached;	/* the daemon greeted us with 220 */
	int	queued;		/* the message was accepted (for some rcpts) */
	int	status;		/* EX_OK or a <sysexits.h> code */
	char	error[512];	/* the first error, for the user */
	char	queueid[32];	/* from "250 ... queued as ID" */
};

/* where errors and the -v dialogue go */
typedef void	(*submit_report_fn)(const char *line);

void	submission_init(struct submission *);
void	submission_free(struct submission *);
int	submission_add_rcpt(struct submission *, const char *);

/*
 * Connect to the control socket and ask for a submission session:
 * the socket, or -1 with errno set (the daemon is not running).
 */
int	submit_connect(const char *sockpath);

/*
 * Speak SMTP on fd (from submit_connect, closed here) to submit the
 * message.  `report' gets every recipient error; `trace' (or NULL) the
 * whole dialogue.
 */
void	submit_message(int fd, const struct submission *,
	    submit_report_fn report, submit_report_fn trace,
	    struct submit_result *);

/*
 * Write the submission into SPOOL/offline as a new file of the calling
 * user.  0, or -1 with a message in err.
 */
int	submit_offline_write(const char *spool, const struct submission *,
	    char *err, size_t errlen);
/*
 * Read an offline file back: 0, 1 when it is incomplete (still being
 * written, or torn), -1 when it is malformed; err says why.
 */
int	submit_offline_read(int fd, size_t maxsize, struct submission *,
	    char *err, size_t errlen);

/* Append the message to the user's ~/dead.letter: 0 or -1 (err set). */
int	submit_dead_letter(const struct submission *, char *err,
	    size_t errlen);

#endif
