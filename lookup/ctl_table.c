/*
 * ctl_table.c -- smtpctl table lookup NAME SERVICE KEY, answered by the
 * lookup process: what a table says for that key, asked as the service
 * asks it (table_lookup_service()), so an administrator sees exactly
 * what the daemon sees, from file:, db:, inline and shared tables alike
 * (like Postfix's postmap -q).
 *
 * A shared table (pgsql:, proc: ...) whose answer is not cached stalls
 * the request: it is parked and run again from the start when the
 * answer is in (table.h), as an RCPT is.  The key is lower-cased first,
 * as every key the daemon asks is.  The answer goes back through the
 * parent to control, which hands it to smtpctl.
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lookup.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "table.h"

struct ctl_table_job {
	struct table_stall	 stall;
	struct mproc		*p;
	struct ctl_table_lookup	 req;
};

static void
job_reply(struct ctl_table_job *j, int status, const char *text)
{
	struct ctl_table_result	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("calloc");
	r->reqid = j->req.reqid;
	r->status = (uint32_t)status;
	if (strlen(text) >= sizeof(r->text)) {
		r->status = CTL_TABLE_ERROR;
		snprintf(r->text, sizeof(r->text), "the value is longer than "
		    "%d bytes", CTL_TABLE_VALUE_MAX);
	} else
		memcpy(r->text, text, strlen(text) + 1);
	mproc_compose(j->p, IMSG_CTL_TABLE_RESULT, 0, -1, r, sizeof(*r));
	freezero(r, sizeof(*r));
}

static void
job_run(void *arg)
{
	struct ctl_table_job	*j = arg;
	struct table		*t;
	enum table_service	 s;
	char			*val = NULL;
	char			 key[CTL_TABLE_KEY_MAX + 1];
	size_t			 i;
	int			 rc;

	/* control checked both against the same configuration */
	if ((t = config_find_table(conf, j->req.table)) == NULL) {
		job_reply(j, CTL_TABLE_ERROR, "no such table");
		goto done;
	}
	if (table_service_parse(j->req.service, &s) == -1) {
		job_reply(j, CTL_TABLE_ERROR, "no such service");
		goto done;
	}
	if (t->forgotten) {
		job_reply(j, CTL_TABLE_ERROR, "a relay's credentials: only "
		    "the mta holds them");
		goto done;
	}
	for (i = 0; j->req.key[i] != '\0'; i++)
		key[i] = (char)tolower((unsigned char)j->req.key[i]);
	key[i] = '\0';
	table_stall_begin(&j->stall);
	rc = table_lookup_service(t, s, key, &val);
	if (table_stall_end()) {
		if (val != NULL)
			freezero(val, strlen(val) + 1);
		/* the answer is not in yet: asked again then */
		table_stall_park(&j->stall, job_run, j);
		return;
	}
	if (rc == TABLE_FOUND)
		job_reply(j, CTL_TABLE_FOUND, val != NULL ? val : "");
	else if (rc == TABLE_NOTFOUND)
		job_reply(j, CTL_TABLE_NOTFOUND, "");
	else
		job_reply(j, CTL_TABLE_ERROR, "temporary failure: the table "
		    "did not answer (see the log)");
	if (val != NULL)
		freezero(val, strlen(val) + 1);
	table_stall_done(&j->stall);
done:
	freezero(j, sizeof(*j));
}

void
lookup_table_ctl(struct mproc *p, const struct ctl_table_lookup *req)
{
	struct ctl_table_job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->p = p;
	j->req = *req;
	log_info("table %s: %s \"%s\" asked by smtpctl", req->table,
	    req->service, req->key);
	job_run(j);
}
