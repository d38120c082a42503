/*
 * smtp_milter.h -- the milter client's two halves, shared: smtp_milter.c
 * (connections, negotiation, macros, the SMTP stages) and
 * smtp_milter_eom.c (the message: headers, body, end of message, and the
 * changes the filters ask for).  Nothing outside smtp_milter*.c includes
 * it; the rest of the worker sees smtp_session.h's smtp_milter_*().
 */
#ifndef POSTHASTE_SMTP_MILTER_H
#define POSTHASTE_SMTP_MILTER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "milter.h"

struct session;
struct event;
struct evbuffer;
struct milter_eom;

/* what a connection is doing */
#define MC_WAITFD	0	/* the parent is connecting it */
#define MC_NEGOTIATE	1	/* OPTNEG sent */
#define MC_IDLE		2	/* ready, nothing asked */
#define MC_BUSY		3	/* a reply is awaited */
#define MC_DEAD		4	/* failed or closed: its on-error applies */
#define MC_DONE		5	/* accepted the connection: left alone */

struct milter_conn {
	struct milter_sess	*ms;
	struct milter_conf	*mc;
	int			 fd;
	int			 state;		/* MC_* */
	struct event		*ev_read;
	struct event		*ev_write;
	struct event		*ev_timer;
	struct evbuffer		*in;
	struct evbuffer		*out;
	uint32_t		 actions;	/* SMFIF_* it may use */
	uint32_t		 protocol;	/* SMFIP_* it asked */
	char			*symlist[SMFIM_COUNT];	/* NULL: defaults */
	char			*symbuf;	/* holds the lists */
	int			 msg_accepted;	/* "accept" for this message */
	int			 in_msg;	/* MAIL sent, no EOM or ABORT yet */
	int			 default_used;	/* its on-error applied */
	int			 modified;	/* it changed this message */
	int			 draining;	/* EOM: waits for its output */
};

/* the verdict of a stage (smtp_session.h's MILTER_*) and its reply */
struct milter_sess {
	struct session		*s;
	int			 n;
	struct milter_conn	 c[CONF_MILTER_CHAIN];
	int			 waiting;	/* connections not negotiated */
	int			 stage;		/* MS_* in progress, -1: none */
	int			 in_call;	/* inside smtp_milter_stage() */
	int			 cur;		/* the connection asked */
	const char		*arg;		/* the stage's argument */
	char			*argcopy;	/* which it points to */
	void			(*done)(struct session *, int);
	int			 verdict;
	int			 nlines;	/* the reply to give, if set */
	char			*lines[MILTER_REPLY_LINES];
	char			 replybuf[MILTER_REPLY_LINES *
				    (MILTER_REPLY_LINE_MAX + 2)];
	/* on-error tempfail or reject, or a refused connection: every
	 * later transaction gets this verdict and reply */
	int			 sticky;
	char			 sticky_reply[MILTER_REPLY_LINE_MAX];
	/* on-error quarantine used: this session's messages are held */
	char			 hold[128];
	struct milter_eom	*eom;		/* at the end of the message */
};

/* the stages */
#define MS_CONNECT	0
#define MS_HELO		1
#define MS_MAIL		2
#define MS_RCPT		3
#define MS_DATA		4
#define MS_UNKNOWN	5
#define MS_EOM		6	/* headers, body, end of message */

/* smtp_milter.c, for smtp_milter_eom.c */
int	milter_is_current(const struct milter_conn *);
int	milter_apply_default(struct milter_sess *, struct milter_conn *);
void	milter_send(struct milter_conn *);
void	milter_wait(struct milter_conn *, time_t timeout);
void	milter_fail(struct milter_conn *, const char *why, ...)
	    __attribute__((format(printf, 2, 3)));
void	milter_put_stage_macros(struct milter_conn *, int smfim, char cmd);
int	milter_set_reply(struct milter_sess *, const struct milter_reply *,
	    struct milter_conn *);
void	milter_stats_count(struct milter_conn *, int what);
void	milter_stage_done(struct milter_sess *);
/* what milter_stats_count() counts */
#define MST_MESSAGE	0
#define MST_ACCEPT	1
#define MST_REJECT	2
#define MST_TEMPFAIL	3
#define MST_DISCARD	4
#define MST_QUARANTINE	5
#define MST_MODIFIED	6
#define MST_REPLY_REJECT	7	/* a reply code of its own: 5xx */
#define MST_REPLY_TEMPFAIL	8	/* the same, 4xx */

/* smtp_milter_eom.c, for smtp_milter.c */
void	milter_eom_start(struct milter_sess *);
/* a reply from c while the message is being sent */
void	milter_eom_reply(struct milter_sess *, struct milter_conn *,
	    struct milter_reply *);
/* c can take more (its output drained) */
void	milter_eom_drained(struct milter_sess *, struct milter_conn *);
void	milter_eom_free(struct milter_sess *);

#endif
