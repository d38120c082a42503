/*
 * fuzz_http_request.c -- libFuzzer harness for control/http_request.c,
 * the request head of the metrics endpoint (GET /metrics), which anyone
 * who reaches the configured address may send.
 *
 * Checked beyond "does not crash", what control/metrics_http.c relies
 * on: HTTP_REQ_MORE only while the head is shorter than its bound (so a
 * client cannot make us wait for ever), a path that is an absolute path
 * of printable bytes within HTTP_PATH_MAX; and the verdict does not
 * depend on how the bytes arrived: a prefix the parser already decided
 * on is decided the same way for the whole (unless the rest holds a
 * NUL, which refuses the whole).
 */
#include <string.h>

#include "fuzz.h"

#include "http_request.h"

static void
check_path(const struct http_request *r)
{
	size_t	i, n = strlen(r->path);

	CHECK(n > 0 && n < HTTP_PATH_MAX && r->path[0] == '/');
	for (i = 0; i < n; i++)
		CHECK((unsigned char)r->path[i] > 0x20 &&
		    r->path[i] != 0x7f && r->path[i] != '?');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request		 r, r2;
	enum http_request_status	 rc, rc2;
	const char			*buf = (const char *)data;
	size_t				 cut;

	rc = http_request_parse(buf, size, &r);
	if (rc == HTTP_REQ_MORE)
		CHECK(size < HTTP_REQUEST_MAX);
	if (rc == HTTP_REQ_OK || rc == HTTP_REQ_METHOD)
		check_path(&r);
	if (size == 0)
		return 0;
	cut = data[0] % size;
	rc2 = http_request_parse(buf, cut, &r2);
	if (rc2 == HTTP_REQ_MORE || memchr(buf, '\0', size) != NULL)
		return 0;
	CHECK(rc2 == rc);
	if (rc == HTTP_REQ_OK) {
		CHECK(strcmp(r.path, r2.path) == 0);
		CHECK(r.head == r2.head);
	}
	return 0;
}
