/*
 * smtp_session.h -- one SMTP session in an smtp worker.
 */
#ifndef POSTHASTE_SMTP_SESSION_H
#define POSTHASTE_SMTP_SESSION_H

#include <sys/socket.h>
#include <stddef.h>

#include "config.h"
#include "mproc.h"
#include "proto.h"

struct smtp_worker {
	int		id;
	struct mproc	parent;
	struct mproc	queue;
	struct mproc	lookup;
	size_t		nsessions;
};
extern struct smtp_worker smtp_worker;

void	session_init(void);
void	session_new(int fd, struct listener *, struct sockaddr_storage *,
	    socklen_t);
void	session_shutdown_all(void);
void	session_lookup_dest(const struct lka_dest *);
void	session_lookup_result(const struct lka_result *);
void	session_queue_created(const struct queue_msg_resp *, int fd);
void	session_queue_committed(const struct queue_msg_resp *);
void	smtp_maybe_exit(void);

/* smtp_tls.c */
void	smtp_tls_init(void);

#endif
