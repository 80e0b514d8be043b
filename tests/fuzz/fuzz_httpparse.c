/* fuzz-sources: src/httpparse.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The HTTP/1.x request line, status line, pipelined-request and route parsers (folding, and a
 * framework's template placed on a path), on bytes as a traced socket's read or write would give
 * them: the whole input, and every prefix the capture could have cut it to (as "cut" and as
 * "wait for more").
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpparse.h"

static void one(const char *buf, size_t len, bool cut)
{
	struct http_req_line rl;
	char route[HTTP_ROUTE_MAX], tmpl[HTTP_ROUTE_MAX];
	bool multi;
	int status, r;

	r = http_parse_request_line(buf, len, cut, &rl);
	if (r == HTTP_PARSE_OK) {
		if (rl.consumed > len || !memchr(rl.method, 0, sizeof(rl.method)) ||
		    !memchr(rl.path, 0, sizeof(rl.path)))
			abort();
		if (http_route(rl.path, route, sizeof(route)) >= sizeof(route))
			abort();
		/* the path as a framework's declared route, placed on the path itself */
		if (!http_route_template(rl.path, tmpl, sizeof(tmpl), &multi)) {
			size_t n = http_route_join(tmpl, multi, rl.path, route, sizeof(route));

			if (n >= sizeof(route) || strlen(route) != n || (n && !strstr(route, tmpl)))
				abort();
		}
		/* as the caller does: the next request of a pipeline, only after a whole line */
		if (rl.consumed && http_next_request(buf, len) > len)
			abort();
	}
	if (http_parse_status_line(buf, len, &status) == HTTP_PARSE_OK && (status < 100 || status > 999))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the parsers read exactly len bytes: a copy of exactly that size lets ASan see an overread */
	char *buf = malloc(size ? size : 1);
	char *str;

	memcpy(buf, data, size);
	one(buf, size, false);
	one(buf, size, true);
	/* the capture's cut points: the BPF side keeps a prefix of the bytes */
	for (size_t n = 0; n < size && n < 300; n += 1 + n / 16)
		one(buf, n, true);
	if (http_next_request(buf, size) > size)
		abort();
	/* routes from any NUL-terminated target, absolute form included */
	str = malloc(size + 1);
	memcpy(str, data, size);
	str[size] = '\0';
	for (size_t cap = 1; cap <= HTTP_ROUTE_MAX; cap += 53) {
		char *route = malloc(cap);

		if (http_route(str, route, cap) >= cap || strlen(route) >= cap)
			abort();
		free(route);
	}
	free(str);
	free(buf);
	return 0;
}
