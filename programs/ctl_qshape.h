/*
 * ctl_qshape.h -- smtpctl show qshape: the envelopes of "show queue"
 * counted by destination domain (or sender domain) and age, in the
 * columns of Postfix's qshape(1).  Apart from smtpctl.c so that a unit
 * test runs the very table smtpctl prints.
 */
#ifndef POSTHASTE_CTL_QSHAPE_H
#define POSTHASTE_CTL_QSHAPE_H

#include <stdio.h>

#include "proto.h"

#define QSHAPE_BUCKETS	10	/* 5 10 20 ... 1280 minutes, then older */

struct qshape_row {
	char		domain[ADDR_DOMAIN_MAX + 1];
	unsigned long	total;
	unsigned long	age[QSHAPE_BUCKETS];
};

struct qshape {
	int			 by_sender;	/* -s: the sender's domain */
	struct qshape_row	 all;		/* TOTAL */
	struct qshape_row	*rows;
	size_t			 nrows, cap;
};

void	qshape_init(struct qshape *, int by_sender);
/* count one envelope; -1 when out of memory */
int	qshape_add(struct qshape *, const struct ctl_queue_entry *);
/* the table, TOTAL first, then the domains by count, most first */
void	qshape_print(FILE *, struct qshape *);
void	qshape_free(struct qshape *);

#endif
