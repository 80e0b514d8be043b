/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The collector's HTTP endpoint, served by libmicrohttpd (its internal polling thread and a
 * small thread pool; no HTTP parsing of our own). Read-only: GET and HEAD only (405 otherwise),
 * and no route changes anything.
 *
 *   /metrics                     the registry, text 0.0.4 or OpenMetrics 1.0 by Accept
 *   /healthz                     "ok" (or the collector's callback); open without credentials
 *   /flame.svg?seconds=N[&service=S]      flame graph of the last N seconds
 *   /debug/pprof/profile?seconds=N[&service=S]  gzipped pprof of the last N seconds
 *   /report.json                 the JSON report of the last window
 *
 * seconds is required where listed: a decimal integer from 1 to max_seconds, else 400 with
 * the reason. Other paths get 404. Errors are one line of text/plain. A route callback reports
 * an unknown service (or anything else) by returning 404/400 with rep->reason set.
 *
 * It listens on 127.0.0.1 unless an address is given (a numeric IPv4 or IPv6 address).
 * Basic auth and TLS come from libmicrohttpd; TLS needs a build with it (Debian's has GnuTLS):
 * exporter__start() fails with a message otherwise.
 *
 * Threads: callbacks run on libmicrohttpd's threads, several at once; they must be thread-safe
 * and must not block (they answer from data already collected). exporter__stop() waits for
 * requests in progress, so a callback never runs after it returns; after the stop begins, new
 * connections are refused.
 */
#ifndef PYTRACE_EXPORTER_H
#define PYTRACE_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EXPORTER_DEFAULT_ADDRESS	"127.0.0.1"
#define EXPORTER_DEFAULT_MAX_CONNS	128
#define EXPORTER_DEFAULT_THREADS	2
#define EXPORTER_DEFAULT_MAX_SECONDS	3600	/* the flame and pprof windows' cap */
#define EXPORTER_TIMEOUT_S		30	/* idle connections are closed after it */

struct prom_registry;
struct exporter;

struct exporter_request {
	const char *path;
	const char *method;		/* "GET" or "HEAD" (the body is then not sent) */
	int seconds;			/* validated ?seconds= for routes that take it, else 0 */
	const char *service;		/* ?service=, or NULL */
};

struct exporter_reply {
	FILE *body;			/* write the body here (a memory stream) */
	const char *content_type;	/* preset to the route's type; may be changed */
	char reason[200];		/* one line, for a status >= 400 */
};

/* Returns an HTTP status: 200, or 400/404/503 with rep->reason set. */
typedef int (*exporter_route_fn)(void *ctx, const struct exporter_request *req, struct exporter_reply *rep);

struct exporter_opts {
	const char *address;		/* default EXPORTER_DEFAULT_ADDRESS */
	uint16_t port;			/* 0: an ephemeral port (exporter__port() says which) */
	const char *basic_auth_user;	/* both or neither */
	const char *basic_auth_password;
	const char *tls_cert_file;	/* PEM, both or neither */
	const char *tls_key_file;
	unsigned max_connections;	/* default EXPORTER_DEFAULT_MAX_CONNS */
	unsigned threads;		/* default EXPORTER_DEFAULT_THREADS */
	unsigned max_seconds;		/* default EXPORTER_DEFAULT_MAX_SECONDS */
	struct prom_registry *registry;	/* /metrics; NULL: 404 */
	void (*before_scrape)(void *ctx);	/* e.g. refresh process_* gauges; optional */
	exporter_route_fn healthz;	/* optional: "ok" */
	exporter_route_fn flame;	/* NULL: the route answers 404 */
	exporter_route_fn pprof;
	exporter_route_fn report;
	void *ctx;
};

struct exporter_stats {
	uint64_t requests;
	uint64_t scrapes_text, scrapes_openmetrics;
	uint64_t bad_requests;		/* 400, 404, 405 */
	uint64_t auth_failures;		/* 401 */
	uint64_t errors;		/* 5xx */
};

/*
 * Starts serving; 0 and *out, or -errno with a one-line message in err (address not numeric,
 * port in use, TLS not built in, unreadable certificate, ...).
 */
int exporter__start(const struct exporter_opts *o, struct exporter **out, char *err, size_t errlen);
uint16_t exporter__port(const struct exporter *e);
void exporter__stats(const struct exporter *e, struct exporter_stats *st);
/* Stops (waiting for requests in progress) and frees. NULL is fine. */
void exporter__stop(struct exporter *e);

/*
 * The seconds argument's check, for callers and tests: 0 and *out, or -EINVAL with the reason
 * ("seconds missing", "seconds is not a number", "seconds must be positive", "seconds above
 * the cap of N").
 */
int exporter__parse_seconds(const char *s, unsigned max, int *out, char *reason, size_t len);

#endif /* PYTRACE_EXPORTER_H */
