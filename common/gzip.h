/*
 * gzip.h -- a buffer gzipped in one call (common/gzip.c), for the
 * aggregate reports (DMARC, TLS-RPT).
 */
#ifndef POSTHASTE_GZIP_H
#define POSTHASTE_GZIP_H

#include <stddef.h>

/* gzip (RFC 1952) of data: a malloc'd buffer, or NULL */
unsigned char *gzip_buffer(const void *data, size_t len,
	    size_t *outlen);

#endif
