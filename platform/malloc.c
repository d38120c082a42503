/*
 * malloc.c -- allocator settings for the daemon's processes (glibc).
 *
 * Message buffers come and go with every message: glibc would give the
 * top of the heap back after each and fault it in again for the next (a
 * brk() and page faults per 100 KB message).  Keep up to a few MB
 * instead, and serve big buffers from the heap, not mmap().  The BSDs'
 * allocators (jemalloc on FreeBSD, otto-malloc on OpenBSD) have their
 * own policy and no such knob: nothing is done there.
 */
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "platform.h"

void
platform_malloc_tune(void)
{
#ifdef M_TRIM_THRESHOLD
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}
