/*
 * mta.c -- the mta process: remote delivery over SMTP.
 *
 * Skeleton for now: every remote envelope is deferred with a clear
 * reason, so remote mail waits safely in the queue until the SMTP client
 * lands (issue 6).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "mproc.h"
#include "privsep.h"
#include "proto.h"
#include "smtpd.h"

static struct mproc	m_parent, m_queue, m_lookup;

static void
mta_queue_dispatch(struct mproc *p, struct imsg *m)
{
	struct envelope		evp;
	struct delivery_result	r;

	switch (m->hdr.type) {
	case IMSG_MTA_DELIVER:
		proto_get(p, m, &evp, sizeof(evp));
		if (m->fd == -1 || envelope_valid(&evp) == -1)
			fatalx("invalid delivery request from queue");
		close(m->fd);
		memset(&r, 0, sizeof(r));
		r.evpid = evp.id;
		r.status = PROTO_TEMPFAIL;
		snprintf(r.text, sizeof(r.text), "4.4.0 remote delivery is "
		    "not available yet");
		snprintf(r.relay, sizeof(r.relay), "none");
		mproc_compose(p, IMSG_MTA_RESULT, 0, -1, &r, sizeof(r));
		break;
	default:
		fatalx("unexpected message %u from queue", m->hdr.type);
	}
}

static void
mta_other_dispatch(struct mproc *p, struct imsg *m)
{
	fatalx("unexpected message %u from %s", m->hdr.type, p->name);
}

void
mta_main(struct proc_fds *f)
{
	proc_setup("mta");
	privsep_drop(SMTPD_USER, SMTPD_EMPTY_DIR);
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	sandbox_enter(SANDBOX_MTA);
	mproc_init(&m_parent, f->parent, "parent", mta_other_dispatch, NULL);
	mproc_init(&m_queue, f->queue, "queue", mta_queue_dispatch, NULL);
	mproc_init(&m_lookup, f->lookup, "lookup", mta_other_dispatch, NULL);
	proc_on_term(NULL);
	event_base_dispatch(ev_base);
	exit(0);
}
