// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The HTTP endpoint on an ephemeral 127.0.0.1 port with fake callbacks, spoken to over plain
 * sockets: routes, status codes and content types, argument checks, methods, basic auth,
 * 50 concurrent connections, loopback-only by default, stop during a request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "exporter.h"
#include "promtext.h"

struct resp {
	int status;
	char head[4096];
	char *body;
	size_t body_len;
};

static int connect_to(const char *addr, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, addr, &sin.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* sends req on fd, reads to EOF; 0 or -1 if the connection gave no status line */
static int exchange(int fd, const char *req, struct resp *r)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *sep;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		free(buf);
		return -1;
	}
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	close(fd);
	if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
		free(buf);
		return -1;
	}
	sep = strstr(buf, "\r\n\r\n");
	assert_non_null(sep);
	snprintf(r->head, sizeof(r->head), "%.*s", (int)(sep - buf), buf);
	r->body_len = len - (sep + 4 - buf);
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, sep + 4, r->body_len + 1);
	free(buf);
	return 0;
}

static void request(uint16_t port, const char *method, const char *path, const char *extra, struct resp *r)
{
	char req[1024];
	int fd = connect_to("127.0.0.1", port);

	assert_true(fd >= 0);
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s\r\n", method, path,
		 extra ? extra : "");
	assert_int_equal(exchange(fd, req, r), 0);
}

static void assert_header(const struct resp *r, const char *h)
{
	if (!strcasestr(r->head, h))
		fail_msg("missing header %s in:\n%s", h, r->head);
}

static int flame_calls;

static int fake_flame(void *ctx, const struct exporter_request *req, struct exporter_reply *rep)
{
	__atomic_fetch_add(&flame_calls, 1, __ATOMIC_RELAXED);
	if (req->service && strcmp(req->service, "recipes")) {
		snprintf(rep->reason, sizeof(rep->reason), "unknown service %s", req->service);
		return 404;
	}
	fprintf(rep->body, "<svg>%d</svg>", req->seconds);
	return 200;
}

static int slow_report(void *ctx, const struct exporter_request *req, struct exporter_reply *rep)
{
	usleep(300 * 1000);
	fputs("{}", rep->body);
	return 200;
}

struct fixture {
	struct prom_registry *reg;
	struct exporter *e;
	uint16_t port;
};

static int setup_with(void **state, const char *user, const char *pass)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *labels[] = { "route" }, *v[] = { "/x\"y" };
	struct prom_family_opts o = { .name = "reqs_total", .help = "Requests.", .type = PROM_COUNTER,
				      .labels = labels, .nlabels = 1 };
	char err[256];

	f->reg = prom_registry__new();
	prom_family__add(prom_registry__family(f->reg, &o), v, 3);
	struct exporter_opts eo = { .registry = f->reg, .flame = fake_flame, .report = slow_report,
				    .max_seconds = 600, .basic_auth_user = user, .basic_auth_password = pass,
				    .threads = 4 };

	if (exporter__start(&eo, &f->e, err, sizeof(err)))
		fail_msg("start: %s", err);
	f->port = exporter__port(f->e);
	assert_true(f->port > 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL, NULL);
}

static int setup_auth(void **state)
{
	return setup_with(state, "prom", "s3cret:with:colons");
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	exporter__stop(f->e);
	prom_registry__free(f->reg);
	free(f);
	return 0;
}

static void test_parse_seconds(void **state)
{
	char why[128];
	int s = 0;

	assert_int_equal(exporter__parse_seconds("30", 600, &s, why, sizeof(why)), 0);
	assert_int_equal(s, 30);
	assert_int_equal(exporter__parse_seconds("600", 600, &s, why, sizeof(why)), 0);
	assert_int_equal(exporter__parse_seconds(NULL, 600, &s, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "seconds missing"));
	assert_int_equal(exporter__parse_seconds("", 600, &s, why, sizeof(why)), -EINVAL);
	assert_int_equal(exporter__parse_seconds("abc", 600, &s, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "not a whole number"));
	assert_int_equal(exporter__parse_seconds("1.5", 600, &s, why, sizeof(why)), -EINVAL);
	assert_int_equal(exporter__parse_seconds("-5", 600, &s, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "positive"));
	assert_int_equal(exporter__parse_seconds("0", 600, &s, why, sizeof(why)), -EINVAL);
	assert_int_equal(exporter__parse_seconds("601", 600, &s, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "cap of 600"));
	assert_int_equal(exporter__parse_seconds("99999999999999999999999", 600, &s, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "cap"));
}

static void test_routes(void **state)
{
	struct fixture *f = *state;
	struct resp r;

	request(f->port, "GET", "/metrics", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type: text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(r.body, "reqs_total{route=\"/x\\\"y\"} 3\n"));
	assert_null(strstr(r.body, "# EOF"));
	free(r.body);

	request(f->port, "GET", "/metrics", "Accept: application/openmetrics-text;version=1.0.0,"
		"application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8");
	assert_true(r.body_len > 6 && !strcmp(r.body + r.body_len - 6, "# EOF\n"));
	free(r.body);

	request(f->port, "HEAD", "/metrics", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	free(r.body);

	request(f->port, "GET", "/healthz", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	free(r.body);

	request(f->port, "GET", "/nope", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_header(&r, "Content-Type: text/plain");
	assert_non_null(strstr(r.body, "unknown path /nope"));
	/* one line */
	assert_ptr_equal(strchr(r.body, '\n'), r.body + r.body_len - 1);
	free(r.body);

	request(f->port, "GET", "/flame.svg?seconds=10", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type: image/svg+xml");
	assert_string_equal(r.body, "<svg>10</svg>");
	free(r.body);

	request(f->port, "GET", "/flame.svg?seconds=10&service=recipes", NULL, &r);
	assert_int_equal(r.status, 200);
	free(r.body);

	request(f->port, "GET", "/flame.svg?seconds=10&service=nosuch", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "unknown service nosuch\n");
	free(r.body);

	static const char *const bad[][2] = {
		{ "/flame.svg", "seconds missing" },
		{ "/flame.svg?service=recipes", "seconds missing" },
		{ "/flame.svg?seconds=", "seconds missing" },
		{ "/flame.svg?seconds=ten", "not a whole number" },
		{ "/flame.svg?seconds=-3", "positive" },
		{ "/flame.svg?seconds=100000", "cap of 600" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		request(f->port, "GET", bad[i][0], NULL, &r);
		assert_int_equal(r.status, 400);
		if (!strstr(r.body, bad[i][1]))
			fail_msg("%s: %s", bad[i][0], r.body);
		free(r.body);
	}
	/* a route the collector did not supply */
	request(f->port, "GET", "/debug/pprof/profile?seconds=5", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "not enabled"));
	free(r.body);

	request(f->port, "GET", "/report.json", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "Content-Type: application/json");
	free(r.body);

	/* read-only: other methods get 405 and change nothing */
	int calls = flame_calls;
	static const char *const methods[] = { "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		request(f->port, methods[i], "/flame.svg?seconds=1", "Content-Length: 0\r\n", &r);
		assert_int_equal(r.status, 405);
		assert_header(&r, "Allow: GET, HEAD");
		free(r.body);
	}
	assert_int_equal(flame_calls, calls);

	struct exporter_stats st;

	exporter__stats(f->e, &st);
	assert_int_equal(st.scrapes_text, 2);	/* GET and HEAD */
	assert_int_equal(st.scrapes_openmetrics, 1);
	assert_true(st.bad_requests >= 14);
}

static void test_auth(void **state)
{
	struct fixture *f = *state;
	struct resp r;

	request(f->port, "GET", "/metrics", NULL, &r);
	assert_int_equal(r.status, 401);
	assert_header(&r, "WWW-Authenticate: Basic realm=\"pytrace-bpf\"");
	free(r.body);
	/* prom:wrong */
	request(f->port, "GET", "/metrics", "Authorization: Basic cHJvbTp3cm9uZw==\r\n", &r);
	assert_int_equal(r.status, 401);
	free(r.body);
	/* prom:s3cret:with:colons */
	request(f->port, "GET", "/metrics", "Authorization: Basic cHJvbTpzM2NyZXQ6d2l0aDpjb2xvbnM=\r\n", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "reqs_total"));
	free(r.body);
	/* every route is behind it, 404s too */
	request(f->port, "GET", "/nope", NULL, &r);
	assert_int_equal(r.status, 401);
	free(r.body);
	request(f->port, "GET", "/report.json", NULL, &r);
	assert_int_equal(r.status, 401);
	free(r.body);
	/* but /healthz, for probes that carry no credentials: it tells only that the collector runs */
	request(f->port, "GET", "/healthz", NULL, &r);
	assert_int_equal(r.status, 200);
	free(r.body);

	struct exporter_stats st;

	exporter__stats(f->e, &st);
	assert_int_equal(st.auth_failures, 4);
}

#define NCONC 50

static uint16_t conc_port;
static pthread_barrier_t conc_barrier;
static int conc_status[NCONC];

static void *conc_client(void *arg)
{
	long i = (long)arg;
	int fd = connect_to("127.0.0.1", conc_port);
	struct resp r;

	/* every connection is open before any request is sent */
	pthread_barrier_wait(&conc_barrier);
	if (fd < 0)
		return NULL;
	if (exchange(fd, i % 2 ? "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
			       : "GET /flame.svg?seconds=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r) == 0) {
		conc_status[i] = r.status;
		free(r.body);
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fixture *f = *state;
	pthread_t t[NCONC];

	conc_port = f->port;
	pthread_barrier_init(&conc_barrier, NULL, NCONC);
	for (long i = 0; i < NCONC; i++)
		pthread_create(&t[i], NULL, conc_client, (void *)i);
	for (int i = 0; i < NCONC; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&conc_barrier);
	for (int i = 0; i < NCONC; i++)
		assert_int_equal(conc_status[i], 200);
}

static void test_loopback_only(void **state)
{
	struct fixture *f = *state;
	struct ifaddrs *ifa, *i;
	char addr[INET_ADDRSTRLEN];
	int tried = 0;

	assert_int_equal(getifaddrs(&ifa), 0);
	for (i = ifa; i; i = i->ifa_next) {
		struct sockaddr_in *sin = (struct sockaddr_in *)i->ifa_addr;
		int fd;

		if (!sin || sin->sin_family != AF_INET || (ntohl(sin->sin_addr.s_addr) >> 24) == 127)
			continue;
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		fd = connect_to(addr, f->port);
		if (fd >= 0)
			close(fd);
		/* the host's own non-loopback address reaches no listener */
		assert_int_equal(fd, -ECONNREFUSED);
		tried++;
	}
	freeifaddrs(ifa);
	if (!tried)
		print_message("no non-loopback IPv4 address here: only 127.0.0.1 checked\n");
	int fd = connect_to("127.0.0.1", f->port);

	assert_true(fd >= 0);
	close(fd);
}

static void *slow_client(void *arg)
{
	struct resp r;
	int fd = connect_to("127.0.0.1", *(uint16_t *)arg);

	if (fd >= 0 && exchange(fd, "GET /report.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r) == 0)
		free(r.body);
	return NULL;
}

/* stop while a callback is running: it returns after the request, nothing runs afterwards */
static void test_stop_mid_request(void **state)
{
	struct fixture *f = *state;
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, slow_client, &f->port);
	usleep(100 * 1000);
	exporter__stop(f->e);
	f->e = NULL;
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_true(connect_to("127.0.0.1", f->port) < 0);
}

static void test_start_errors(void **state)
{
	struct exporter_opts o = { .address = "localhost" };
	struct exporter *e, *e2;
	char err[256];

	assert_int_equal(exporter__start(&o, &e, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "numeric"));
	o = (struct exporter_opts){ .basic_auth_user = "u" };
	assert_int_equal(exporter__start(&o, &e, err, sizeof(err)), -EINVAL);
	o = (struct exporter_opts){ .tls_cert_file = "/nonexistent/cert.pem", .tls_key_file = "/nonexistent/key.pem" };
	assert_true(exporter__start(&o, &e, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "/nonexistent/cert.pem"));
	/* the port in use */
	o = (struct exporter_opts){ 0 };
	assert_int_equal(exporter__start(&o, &e, err, sizeof(err)), 0);
	o.port = exporter__port(e);
	assert_true(exporter__start(&o, &e2, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot listen on 127.0.0.1"));
	exporter__stop(e);
	exporter__stop(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_seconds),
		cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth, setup_auth, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_mid_request, setup, teardown),
		cmocka_unit_test(test_start_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
