/*
 * http_request.h -- the one HTTP request the metrics endpoint reads
 * (control/metrics_http.c): request line and headers, checked, nothing
 * more.  No body, no keep-alive, no chunking: a scraper sends GET /metrics
 * and reads until we close.
 */
#ifndef POSTHASTE_HTTP_REQUEST_H
#define POSTHASTE_HTTP_REQUEST_H

#include <stddef.h>

#define HTTP_REQUEST_MAX	8192	/* request line and headers */
#define HTTP_PATH_MAX		256

enum http_request_status {
	HTTP_REQ_MORE,		/* no blank line yet: read on */
	HTTP_REQ_OK,		/* a GET or HEAD: path and head are set */
	HTTP_REQ_BAD,		/* malformed, or too long: 400 */
	HTTP_REQ_METHOD,	/* well formed, not GET or HEAD: 405 */
};

struct http_request {
	int	head;			/* HEAD: the headers only */
	char	path[HTTP_PATH_MAX];	/* without the query */
};

enum http_request_status http_request_parse(const char *, size_t,
	    struct http_request *);

#endif
