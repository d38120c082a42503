/*
 * fuzz.h -- what every libFuzzer harness here shares.
 */
#ifndef POSTHASTE_FUZZ_H
#define POSTHASTE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "imsg.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* an invariant the code under test promised: abort, so libFuzzer keeps it */
#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/*
 * Play a peer of the process under test: read what it sent on ib and
 * hand each message to one(), closing any descriptor it carried.  1 when
 * there was anything.
 */
static inline int
fuzz_serve(struct imsgbuf *ib, void (*one)(struct imsg *))
{
	struct imsg	m;
	int		any = 0, rc;

	while (imsg_read(ib) > 0)
		;
	while ((rc = imsg_get(ib, &m)) == 1) {
		any = 1;
		one(&m);
		if (m.fd != -1)
			close(m.fd);
	}
	CHECK(rc == 0);
	return any;
}

#endif
