/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* HTTP/1.x request and status lines from the first bytes of a read or write, and routes. */
#ifndef PYTRACE_HTTPPARSE_H
#define PYTRACE_HTTPPARSE_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_METHOD_MAX	16
#define HTTP_PATH_MAX	256
#define HTTP_ROUTE_MAX	160
#define HTTP_ROUTE_ID	"{id}"

enum {
	HTTP_PARSE_BAD = -1,	/* not HTTP/1.x */
	HTTP_PARSE_MORE = 0,	/* a plausible start: more bytes needed */
	HTTP_PARSE_OK = 1,
};

struct http_req_line {
	char method[HTTP_METHOD_MAX];
	char path[HTTP_PATH_MAX];	/* request target as sent, cut to fit */
	bool path_cut;			/* the target went on past what was captured */
	int minor;			/* HTTP/1.minor; -1 when cut before the version */
	size_t consumed;		/* bytes through the line's end (0 when cut) */
	bool uwsgi;			/* from uWSGI's request packet, not a request line */
};

/*
 * Parses a request line at buf[0..len). cut: the data went on beyond len (the capture cap), so
 * a line that runs off the end is taken as far as it goes instead of waiting for more.
 */
int http_parse_request_line(const char *buf, size_t len, bool cut, struct http_req_line *out);
/* "HTTP/1.x NNN": the status code (100..999) in *status. */
int http_parse_status_line(const char *buf, size_t len, int *status);
/*
 * buf starts with a request whose line and headers are parsed here: the offset at which the
 * next request of a pipeline starts, when the headers (and a Content-Length body) end inside
 * buf and more bytes follow; else 0.
 */
size_t http_next_request(const char *buf, size_t len);
/*
 * A route from a request target: scheme and host dropped, query and fragment dropped, and
 * segments that look like ids (numbers, UUIDs, long hex strings) replaced by "{id}".
 * Returns the route's length (cut to size - 1).
 */
size_t http_route(const char *target, char *out, size_t size);
/*
 * A web framework's route template (src/routes.h) from the path its route was declared with
 * (raw, "/items/{item_id:int}") into out: converters dropped ("/items/{item_id}"), cut to size.
 * *multi: a {name:path} parameter spans any number of segments. 0, or -EINVAL for what is not a
 * path ("" or not starting with '/').
 */
int http_route_template(const char *raw, char *out, size_t size, bool *multi);
/*
 * The route of a request for target (its request target as sent) served by template tmpl
 * (http_route_template's) into out: tmpl, under target's leading segments (folded by http_route)
 * if tmpl has fewer than target: a Starlette Mount's route holds the path below the mount. With a
 * multi-segment parameter, the mount ends where the path meets the template's literal start.
 * Returns its length, or 0 (out empty) if tmpl cannot be placed (more segments than target, a
 * multi-segment parameter first under a mount).
 */
size_t http_route_join(const char *tmpl, bool multi, const char *target, char *out, size_t size);

#endif
