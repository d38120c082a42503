/*
 * tlsrpt_collect.c -- lookup's part of the TLS-RPT reports (RFC 8460):
 * each TLS outcome the mta saw under a DANE or MTA-STS policy
 * (IMSG_LKA_TLSRPT, mta/mta_tlsrpt.c) is passed on to the queue, which
 * keeps the day's outcomes and mails the reports (queue/tlsrpt_send.c),
 * with the URIs where the policy domain wants them.
 *
 * Why here: only lookup does DNS.  The policy domain's "_smtp._tls" TXT
 * record (section 3) is read when the outcome comes in -- the resolver
 * caches it, so a busy destination costs one query per TTL -- and an
 * outcome toward a domain that asks for no reports is not kept at all:
 * the spool holds only what will be sent.  The record is read strictly
 * (common/tlsrpt.c); more than one TLS-RPT record is as none (section
 * 3); only mailto: and https: URIs are kept, in the record's order.
 *
 * Mailing third parties is the administrator's decision: without
 * "tlsrpt reports from" nothing is looked up nor kept.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "lookup.h"
#include "mproc.h"
#include "proc.h"
#include "proto.h"
#include "tlsrpt.h"
#include "tlsrpt_rec.h"

#define TLSRPT_DNS_TIMEOUT	10	/* seconds */

static void
txt_cb(void *arg, const struct dns_result *res)
{
	struct queue_tlsrpt_record	*q = arg;
	struct tlsrpt_record		 rec, one;
	const char			*txt;
	size_t				 k, i;
	int				 n = 0, rc;

	if (res->status != DNS_OK)
		goto done;	/* no record, or none we can read now */
	for (k = 0; k < res->nrr; k++) {
		if (res->rr[k].type != DNS_T_TXT)
			continue;
		txt = dns_rr_txt(res, &res->rr[k]);
		if ((rc = tlsrpt_record_parse(txt, res->rr[k].txtlen,
		    &one)) == -1)
			continue;
		if (n++ == 0)
			rec = one;
		if (rc == -2)
			rec.nrua = 0;
	}
	if (n != 1 || rec.nrua == 0) {
		if (n > 0)
			log_info("tlsrpt: %s: %s TLS-RPT record, no reports",
			    q->o.policy_domain, n > 1 ? "more than one" :
			    "a malformed");
		goto done;
	}
	for (i = 0; i < rec.nrua && q->nrua < QUEUE_TLSRPT_RUA; i++)
		if (strncasecmp(rec.rua[i], "mailto:", 7) == 0 ||
		    tlsrpt_uri_https(rec.rua[i]))
			snprintf(q->rua[q->nrua++], sizeof(q->rua[0]), "%s",
			    rec.rua[i]);
	if (q->nrua == 0 || tlsrpt_rec_valid(q) == -1)
		goto done;
	mproc_compose(lookup_queue_channel(), IMSG_QUEUE_TLSRPT_RECORD, 0,
	    -1, q, sizeof(*q));
done:
	free(q);
}

void
tlsrpt_collect(const struct lka_tlsrpt *o)
{
	struct queue_tlsrpt_record	*q;
	char				 name[DNS_NAME_MAX + 16];
	char				*c;
	int				 n;

	if (conf->tlsrpt_report_from[0] == '\0')
		return;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		log_warn("tlsrpt: an outcome");
		return;
	}
	q->o = *o;
	for (c = q->o.policy_domain; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	n = snprintf(name, sizeof(name), "_smtp._tls.%s",
	    q->o.policy_domain);
	if (n < 0 || n > 253) {
		free(q);
		return;
	}
	dns_query(name, DNS_T_TXT, TLSRPT_DNS_TIMEOUT, txt_cb, q);
}
