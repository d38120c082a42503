/*
 * fuzz_proxy.c -- libFuzzer harness for common/proxy_proto.c, the PROXY
 * protocol header (v1 text, v2 binary) a load balancer sends first.
 *
 * Checked beyond "does not crash", the promises smtp/smtp_proxy.c
 * relies on: PROXY_MORE claims no byte it was not given (the reader
 * consumes exactly that from the socket); PROXY_DONE's length is within
 * the input and the bound of its version; a header names a client only
 * with an inet4/inet6 address on both ends; PROXY_BAD says why.  And
 * the answer does not depend on how the bytes arrived: fed in two
 * pieces, as the reader would (consuming what PROXY_MORE claimed), the
 * parser ends with the same verdict and length.
 */
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"

#include "proxy_proto.h"

static void
check_done(const struct proxy_hdr *h, size_t used, size_t size)
{
	CHECK(used > 0 && used <= size);
	CHECK(h->version == 1 || h->version == 2);
	CHECK(used <= (h->version == 1 ? PROXY_V1_MAX : PROXY_HDR_MAX));
	if (h->has_addr) {
		CHECK(h->src.ss_family == AF_INET ||
		    h->src.ss_family == AF_INET6);
		CHECK(h->dst.ss_family == h->src.ss_family);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr	 h, h2;
	const char		*why;
	size_t			 used, used2, cut;
	int			 rc, rc2;

	rc = proxy_parse(data, size, &h, &used, &why);
	if (rc == PROXY_BAD) {
		CHECK(why != NULL && why[0] != '\0');
	} else if (rc == PROXY_MORE) {
		CHECK(used == size);
		CHECK(size < PROXY_HDR_MAX);
	} else {
		CHECK(rc == PROXY_DONE);
		check_done(&h, used, size);
	}
	if (size == 0)
		return 0;
	/* the first byte says where to cut: a reader's two reads */
	cut = data[0] % size;
	rc2 = proxy_parse(data, cut, &h2, &used2, &why);
	if (rc2 == PROXY_BAD) {
		/* refused early: the whole is refused too */
		CHECK(rc == PROXY_BAD);
		return 0;
	}
	if (rc2 == PROXY_DONE) {
		CHECK(rc == PROXY_DONE && used2 == used);
		CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
		return 0;
	}
	CHECK(used2 == cut);
	rc2 = proxy_parse(data, size, &h2, &used2, &why);
	CHECK(rc2 == rc);
	if (rc == PROXY_DONE) {
		CHECK(used2 == used);
		CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
	}
	return 0;
}
