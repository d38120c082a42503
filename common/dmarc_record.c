/*
 * dmarc_record.c -- the names of a DMARC record's policies, for lookup
 * (logs, Authentication-Results) and the queue (aggregate reports).
 */
#include "dmarc_record.h"

const char *
dmarc_policy_name(int p)
{
	switch (p) {
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	}
	return "none";
}

