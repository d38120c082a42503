/*
 * forward.h -- the parent opens users' ~/.forward files for lookup.
 */
#ifndef POSTHASTE_FORWARD_H
#define POSTHASTE_FORWARD_H

#include "proto.h"

struct mproc;

/*
 * Open ~user/.forward as root and decide whether it may be used; fills
 * in status (PROTO_OK with *fd, PROTO_PERMFAIL none or refused,
 * PROTO_TEMPFAIL error).  Split out of parent_forward() for tests.
 */
void	forward_open(struct forward_req *, int *fd);
/* IMSG_PARENT_FORWARD from lookup: answer with the fd (or none) */
void	parent_forward(struct mproc *lookup, const struct forward_req *);

#endif
