// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Request and status lines from captured prefixes, pipelines, and route folding. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "httpparse.h"

#define S(x) x, sizeof(x) - 1

static void test_request_line(void **state)
{
	struct http_req_line rl;

	assert_int_equal(http_parse_request_line(S("GET /api/users?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"), false, &rl),
			 HTTP_PARSE_OK);
	assert_string_equal(rl.method, "GET");
	assert_string_equal(rl.path, "/api/users?x=1");
	assert_int_equal(rl.minor, 1);
	assert_int_equal(rl.consumed, 29);
	/* bare LF, HTTP/1.0, other methods */
	assert_int_equal(http_parse_request_line(S("DELETE /a/7 HTTP/1.0\n"), false, &rl), HTTP_PARSE_OK);
	assert_string_equal(rl.method, "DELETE");
	assert_int_equal(rl.minor, 0);
	assert_int_equal(rl.consumed, 21);
	assert_int_equal(http_parse_request_line(S("OPTIONS * HTTP/1.1\r\n"), false, &rl), HTTP_PARSE_OK);
	assert_string_equal(rl.path, "*");
}

static void test_request_split(void **state)
{
	const char *full = "POST /orders/42 HTTP/1.1\r\n";
	struct http_req_line rl;
	size_t i;

	/* every cut of the line asks for more, never says it is not HTTP */
	for (i = 1; i < strlen(full); i++)
		assert_int_equal(http_parse_request_line(full, i, false, &rl), HTTP_PARSE_MORE);
	assert_int_equal(http_parse_request_line(full, strlen(full), false, &rl), HTTP_PARSE_OK);
	assert_string_equal(rl.path, "/orders/42");
	/* cut at the capture cap: taken as far as it goes */
	assert_int_equal(http_parse_request_line(S("GET /very/long/pa"), true, &rl), HTTP_PARSE_OK);
	assert_string_equal(rl.path, "/very/long/pa");
	assert_true(rl.path_cut);
	assert_int_equal(rl.consumed, 0);
	assert_int_equal(http_parse_request_line(S("GET /a HTTP/1."), true, &rl), HTTP_PARSE_OK);
	assert_string_equal(rl.path, "/a");
}

static void test_request_bad(void **state)
{
	static const struct { const char *s; size_t n; } bad[] = {
		{ S("get /a HTTP/1.1\r\n") },		/* lower case */
		{ S("GET  /a HTTP/1.1\r\n") },		/* empty target */
		{ S("GET /a HTTP/2.0\r\n") },
		{ S("GET /a\r\n") },			/* HTTP/0.9 */
		{ S("GET /a HTTP/1.1\rX") },
		{ S("\x16\x03\x01\x02\x00\x01\x00\x01") },	/* a TLS ClientHello */
		{ S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") },	/* h2 preface */
		{ S("GET /\x01\xff HTTP/1.1\r\n") },
		{ S("VERYLONGMETHODNAMEXX / HTTP/1.1\r\n") },
		{ "GET /\0a HTTP/1.1\r\n", 18 },
		{ S(" GET / HTTP/1.1\r\n") },
	};
	struct http_req_line rl;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = http_parse_request_line(bad[i].s, bad[i].n, false, &rl);

		if (r != HTTP_PARSE_BAD)
			fail_msg("case %zu: %d", i, r);
	}
	/* binary noise of every length, at every cut */
	{
		unsigned char noise[64];
		size_t k;

		for (k = 0; k < sizeof(noise); k++)
			noise[k] = (unsigned char)(k * 97 + 13);
		for (k = 1; k <= sizeof(noise); k++)
			assert_int_not_equal(http_parse_request_line((char *)noise, k, true, &rl), HTTP_PARSE_OK);
	}
}

/* A uwsgi request packet of the vars given as key, value, ..., NULL, into buf: its length. */
static size_t uwsgi_packet(char *buf, size_t cap, ...)
{
	size_t n = 4;
	const char *k;
	va_list ap;

	va_start(ap, cap);
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);
		size_t kl = strlen(k), vl = strlen(v);

		assert_true(n + 4 + kl + vl <= cap);
		buf[n] = kl & 0xff;
		buf[n + 1] = kl >> 8;
		memcpy(buf + n + 2, k, kl);
		n += 2 + kl;
		buf[n] = vl & 0xff;
		buf[n + 1] = vl >> 8;
		memcpy(buf + n + 2, v, vl);
		n += 2 + vl;
	}
	va_end(ap);
	buf[0] = 0;
	buf[1] = (n - 4) & 0xff;
	buf[2] = (n - 4) >> 8;
	buf[3] = 0;
	return n;
}

static void test_uwsgi(void **state)
{
	char pkt[2048], q[600];
	struct http_req_line rl;
	size_t n, i;

	/* nginx's uwsgi_params order: the query string first, REQUEST_URI before PATH_INFO */
	n = uwsgi_packet(pkt, sizeof(pkt), "QUERY_STRING", "page=2", "REQUEST_METHOD", "GET", "CONTENT_TYPE", "",
			 "CONTENT_LENGTH", "", "REQUEST_URI", "/recipes/7/?page=2", "PATH_INFO", "/recipes/7/",
			 "SERVER_PROTOCOL", "HTTP/1.1", "REMOTE_ADDR", "127.0.0.1", NULL);
	assert_int_equal(http_parse_request_line(pkt, n, false, &rl), HTTP_PARSE_OK);
	assert_string_equal(rl.method, "GET");
	assert_string_equal(rl.path, "/recipes/7/?page=2");
	assert_int_equal(rl.minor, 1);
	assert_int_equal(rl.consumed, 0);	/* a body may follow: no pipeline */
	assert_false(rl.path_cut);
	/* every cut before the vars it needs asks for more; at the capture cap it is not a request */
	for (i = 1; i < 80; i++) {
		assert_int_equal(http_parse_request_line(pkt, i, false, &rl), HTTP_PARSE_MORE);
		assert_int_equal(http_parse_request_line(pkt, i, true, &rl), HTTP_PARSE_BAD);
	}
	/* no REQUEST_URI (a custom uwsgi_param set): PATH_INFO; HTTP/1.0; POST */
	n = uwsgi_packet(pkt, sizeof(pkt), "REQUEST_METHOD", "POST", "PATH_INFO", "/orders/", "SERVER_PROTOCOL",
			 "HTTP/1.0", NULL);
	memcpy(pkt + n, "a=1&b=2", 7);	/* the body, in the same read */
	assert_int_equal(http_parse_request_line(pkt, n + 7, false, &rl), HTTP_PARSE_OK);
	assert_string_equal(rl.method, "POST");
	assert_string_equal(rl.path, "/orders/");
	assert_int_equal(rl.minor, 0);
	/* uWSGI's own router: the method and target first, no protocol: HTTP/1.1 */
	n = uwsgi_packet(pkt, sizeof(pkt), "REQUEST_METHOD", "HEAD", "REQUEST_URI", "/health/", NULL);
	assert_int_equal(http_parse_request_line(pkt, n, false, &rl), HTTP_PARSE_OK);
	assert_string_equal(rl.path, "/health/");
	assert_int_equal(rl.minor, 1);
	/*
	 * What BPF sends of a packet (bpf/http.bpf.c, uwsgi_request): the wanted vars alone, the
	 * target last and cut at the capture, the size as if it had been sent whole
	 */
	{
		char uri[1500];

		memcpy(uri, "/cpu/?n=3000&pad=", 17);
		memset(uri + 17, 'x', sizeof(uri) - 18);
		uri[sizeof(uri) - 1] = 0;
		n = uwsgi_packet(pkt, sizeof(pkt), "REQUEST_METHOD", "GET", "SERVER_PROTOCOL", "HTTP/1.0",
				 "REQUEST_URI", uri, NULL);
		assert_true(n > 1500);
		assert_int_equal(http_parse_request_line(pkt, 256, true, &rl), HTTP_PARSE_OK);
		assert_string_equal(rl.method, "GET");
		assert_int_equal(rl.minor, 0);
		assert_memory_equal(rl.path, "/cpu/?n=3000&pad=xxx", 20);
	}
	/* a long query string: the target is past 256 bytes (the parser asks for more) */
	memset(q, 'x', 300);
	q[300] = 0;
	n = uwsgi_packet(pkt, sizeof(pkt), "QUERY_STRING", q, "REQUEST_METHOD", "GET", "REQUEST_URI", "/a/?x", NULL);
	assert_true(n > 256);
	assert_int_equal(http_parse_request_line(pkt, 256, false, &rl), HTTP_PARSE_MORE);
	assert_int_equal(http_parse_request_line(pkt, n, false, &rl), HTTP_PARSE_OK);
	assert_string_equal(rl.path, "/a/?x");
	/* the target cut by the capture: as far as it goes */
	n = uwsgi_packet(pkt, sizeof(pkt), "REQUEST_METHOD", "GET", "REQUEST_URI", "/a/bcdefgh", NULL);
	assert_int_equal(http_parse_request_line(pkt, n - 4, true, &rl), HTTP_PARSE_OK);
	assert_string_equal(rl.path, "/a/bcd");
	assert_true(rl.path_cut);
	/* not requests: no method, a bad method, a var past the packet, modifier2, an empty key */
	n = uwsgi_packet(pkt, sizeof(pkt), "REQUEST_URI", "/a/", "PATH_INFO", "/a/", NULL);
	assert_int_equal(http_parse_request_line(pkt, n, false, &rl), HTTP_PARSE_BAD);
	n = uwsgi_packet(pkt, sizeof(pkt), "REQUEST_METHOD", "get", "REQUEST_URI", "/a/", NULL);
	assert_int_equal(http_parse_request_line(pkt, n, false, &rl), HTTP_PARSE_BAD);
	n = uwsgi_packet(pkt, sizeof(pkt), "REQUEST_METHOD", "GET", "REQUEST_URI", "/a/", NULL);
	pkt[1] -= 2;	/* the packet ends inside the last value */
	assert_int_equal(http_parse_request_line(pkt, n, false, &rl), HTTP_PARSE_BAD);
	pkt[1] += 2;
	pkt[3] = 1;
	assert_int_equal(http_parse_request_line(pkt, n, false, &rl), HTTP_PARSE_BAD);
	assert_int_equal(http_parse_request_line(S("\0\x06\0\0\0\0\0\0\0\0"), false, &rl), HTTP_PARSE_BAD);
}

static void test_status_line(void **state)
{
	int st;

	assert_int_equal(http_parse_status_line(S("HTTP/1.1 200 OK\r\n"), &st), HTTP_PARSE_OK);
	assert_int_equal(st, 200);
	assert_int_equal(http_parse_status_line(S("HTTP/1.0 404 Not Found\r\n"), &st), HTTP_PARSE_OK);
	assert_int_equal(st, 404);
	assert_int_equal(http_parse_status_line(S("HTTP/1.1 204\r\n"), &st), HTTP_PARSE_OK);
	assert_int_equal(st, 204);
	assert_int_equal(http_parse_status_line(S("HTTP/1.1 50"), &st), HTTP_PARSE_MORE);
	assert_int_equal(http_parse_status_line(S("HTT"), &st), HTTP_PARSE_MORE);
	assert_int_equal(http_parse_status_line(S("HTTP/1.1 2x0 OK\r\n"), &st), HTTP_PARSE_BAD);
	assert_int_equal(http_parse_status_line(S("HTTP/1.1 099 OK\r\n"), &st), HTTP_PARSE_BAD);
	assert_int_equal(http_parse_status_line(S("HTTP/1.1 2000 OK\r\n"), &st), HTTP_PARSE_BAD);
	assert_int_equal(http_parse_status_line(S("<html>"), &st), HTTP_PARSE_BAD);
}

static void test_pipeline(void **state)
{
	const char *two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *body = "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\n\r\n";
	size_t n;

	n = http_next_request(two, strlen(two));
	assert_int_equal(n, 28);
	assert_memory_equal(two + n, "GET /b", 6);
	assert_int_equal(http_next_request(two + n, strlen(two) - n), 0);	/* nothing after */
	n = http_next_request(body, strlen(body));
	assert_memory_equal(body + n, "GET /c", 6);
	/* headers cut short, chunked bodies: unknown */
	assert_int_equal(http_next_request(S("GET /a HTTP/1.1\r\nHost: x\r\n")), 0);
	assert_int_equal(http_next_request(S("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")), 0);
	assert_int_equal(http_next_request(S("POST /a HTTP/1.1\r\nContent-Length: 99\r\n\r\nshort")), 0);
}

static void route_is(const char *path, const char *want)
{
	char out[HTTP_ROUTE_MAX];

	http_route(path, out, sizeof(out));
	if (strcmp(out, want))
		fail_msg("%s -> %s, want %s", path, out, want);
}

static void test_route(void **state)
{
	char tiny[8];

	route_is("/api/users/123", "/api/users/{id}");
	route_is("/api/users/123/", "/api/users/{id}/");
	route_is("/recipes/7/?page=2#top", "/recipes/{id}/");
	route_is("/o/550e8400-e29b-41d4-a716-446655440000/items", "/o/{id}/items");
	route_is("/blob/0123456789abcdef0123", "/blob/{id}");
	route_is("/blob/deadbeefdeadbeefdead", "/blob/deadbeefdeadbeefdead");	/* no digit: a word */
	route_is("/v2/files", "/v2/files");
	route_is("/abc123", "/abc123");
	route_is("http://example.com/a/9?x", "/a/{id}");
	route_is("http://example.com", "/");
	route_is("?q=1", "/");
	route_is("*", "*");
	route_is("/", "/");
	http_route("/abcdefghijkl", tiny, sizeof(tiny));
	assert_string_equal(tiny, "/abcdef");
}

static void tmpl_is(const char *raw, const char *want, bool want_multi)
{
	char out[HTTP_ROUTE_MAX];
	bool multi;

	assert_int_equal(http_route_template(raw, out, sizeof(out), &multi), 0);
	if (strcmp(out, want) || multi != want_multi)
		fail_msg("%s -> %s (multi %d), want %s (%d)", raw, out, multi, want, want_multi);
}

static void test_route_template(void **state)
{
	char out[HTTP_ROUTE_MAX], tiny[8];
	bool multi;

	tmpl_is("/items/{item_id}", "/items/{item_id}", false);		/* FastAPI */
	tmpl_is("/n1/{rid:int}/", "/n1/{rid}/", false);			/* Starlette's converters */
	tmpl_is("/u/{a:str}/{b:uuid}/x", "/u/{a}/{b}/x", false);
	tmpl_is("/files/{name:path}", "/files/{name}", true);
	tmpl_is("/{rest:path}", "/{rest}", true);
	tmpl_is("/a:b/{c}", "/a:b/{c}", false);				/* a colon outside a parameter */
	tmpl_is("/", "/", false);
	assert_int_equal(http_route_template("", out, sizeof(out), &multi), -EINVAL);
	assert_int_equal(http_route_template("items", out, sizeof(out), &multi), -EINVAL);
	assert_int_equal(http_route_template(NULL, out, sizeof(out), &multi), -EINVAL);
	assert_int_equal(http_route_template("/abcdefghijk", tiny, sizeof(tiny), &multi), 0);
	assert_string_equal(tiny, "/abcdef");
}

static void join_is(const char *tmpl, bool multi, const char *target, const char *want)
{
	char out[HTTP_ROUTE_MAX];
	size_t n = http_route_join(tmpl, multi, target, out, sizeof(out));

	if (strcmp(out, want) || n != strlen(want))
		fail_msg("%s on %s -> %s (%zu), want %s", tmpl, target, out, n, want);
}

static void test_route_join(void **state)
{
	char tiny[12];

	join_is("/n1/{rid}/", false, "/n1/5/", "/n1/{rid}/");
	join_is("/n1/{rid}/", false, "/n1/5/?x=1", "/n1/{rid}/");
	join_is("/items/{item_id}", false, "http://h/items/abc", "/items/{item_id}");
	/* under a Mount: the path's leading segments, folded */
	join_is("/fixed/{rid}/", false, "/api/fixed/9201/", "/api/fixed/{rid}/");
	join_is("/x/{a}", false, "/t/42/x/y", "/t/{id}/x/{a}");
	join_is("/", false, "/api/", "/api/");
	/* a path converter: as a whole path, or under the mount found by its literal start */
	join_is("/files/{name}", true, "/files/a/b/c", "/files/{name}");
	join_is("/files/{name}", true, "/api/files/a/b/c", "/api/files/{name}");
	join_is("/files/{name}", true, "/files/", "/files/{name}");
	/* cannot be placed: the folded path stands (empty) */
	join_is("/{rest}", true, "/api/a/b", "");
	join_is("/files/{name}", true, "/api/other/a", "");
	join_is("/a/{b}/c/", false, "/a/", "");
	assert_int_equal(http_route_join("/abcdefgh/{id}", false, "/abcdefgh/1", tiny, sizeof(tiny)), 0);
	assert_string_equal(tiny, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_line),
		cmocka_unit_test(test_request_split),
		cmocka_unit_test(test_request_bad),
		cmocka_unit_test(test_uwsgi),
		cmocka_unit_test(test_status_line),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_route_template),
		cmocka_unit_test(test_route_join),
	};

	return cmocka_run_group_tests_name("httpparse", tests, NULL, NULL);
}
