/*
 * gzip.c -- a buffer gzipped (RFC 1952) in one call, for the aggregate
 * reports (DMARC, TLS-RPT): a day's report for one domain is small
 * enough to be compressed in memory at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "gzip.h"

unsigned char *
gzip_buffer(const void *data, size_t len, size_t *outlen)
{
	z_stream	 z;
	unsigned char	*out;
	uLong		 bound;

	if (len > UINT32_MAX)
		return NULL;
	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip header and trailer, not zlib's */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	bound = deflateBound(&z, (uLong)len) + 32;	/* + gzip framing */
	if ((out = malloc(bound)) == NULL) {
		deflateEnd(&z);
		return NULL;
	}
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)bound;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return NULL;
	}
	*outlen = z.total_out;
	deflateEnd(&z);
	return out;
}
