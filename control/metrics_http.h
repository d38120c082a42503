/*
 * metrics_http.h -- GET /metrics in the control process (metrics_http.c).
 */
#ifndef POSTHASTE_METRICS_HTTP_H
#define POSTHASTE_METRICS_HTTP_H

#include <stdint.h>

#include <event2/event.h>

#include "proto.h"

/* the request ids of scrapes: apart from smtpctl clients' (1, 2, ...) */
#define METRICS_HTTP_REQID	0x80000000u

/* lfd: the listening socket the parent bound; ask: send
 * CTL_SHOW_METRICS with this reqid to the queue */
void	metrics_http_init(struct event_base *, int lfd,
	    void (*ask)(uint32_t reqid));
/* a reply line of the queue's for a scrape */
void	metrics_http_reply(const struct ctl_reply *);

#endif
