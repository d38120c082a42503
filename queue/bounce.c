/*
 * bounce.c -- delivery status notifications (RFC 3464).
 */
#include <inttypes.h>

#include "log.h"
#include "queue.h"

void
queue_bounce(uint32_t msgid, const struct envelope *evp)
{
	if (evp->sender.user[0] == '\0' && evp->sender.domain[0] == '\0')
		return;		/* never bounce a bounce */
	log_warnx("%016" PRIx64 ": bounce not generated: DSN support is "
	    "not built yet", evp->id);
}
