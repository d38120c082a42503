/*
 * fuzz.h -- what every libFuzzer harness here shares.
 */
#ifndef POSTHASTE_FUZZ_H
#define POSTHASTE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* an invariant the code under test promised: abort, so libFuzzer keeps it */
#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

#endif
