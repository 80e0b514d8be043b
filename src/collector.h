/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The long-running collector (--prometheus): a capability that listens to the others (CPU
 * samples, statements, requests) and turns what they see into Prometheus metrics, profile
 * windows and a JSON report per window, served by the exporter (exporter.h, libmicrohttpd).
 *
 * Metrics (OpenTelemetry semantic conventions as Prometheus spells them; no pid, no literal in
 * any label; every family capped by max_series, overflow counted in
 * pytrace_label_values_dropped_total):
 *   http_server_request_duration_seconds{service_name, http_request_method, http_route,
 *       http_response_status_code}                                  histogram, semconv buckets
 *   db_client_operation_duration_seconds{service_name, db_system_name, db_operation_name,
 *       db_collection_name, db_query_summary, db_response_status_code}   histogram, semconv buckets
 *   pytrace_http_request_db_operations{service_name, http_request_method, http_route}
 *       statements per request                                      histogram
 *   pytrace_n_plus_one_total{service_name, http_request_method, http_route, db_query_summary,
 *       code_function_name, code_file_path, code_line_number}        requests with an N+1 there
 *   pytrace_cpu_samples_total{service_name}                          on-CPU stack samples
 *   self-monitoring: pytrace_processes_followed, pytrace_services, pytrace_events_lost_total{kind},
 *       pytrace_profile_stacks_dropped_total, pytrace_bpf_map_entries{map},
 *       pytrace_bpf_map_max_entries{map}, pytrace_build_info{version}, process_cpu_seconds_total,
 *       process_resident_memory_bytes, process_open_fds, process_start_time_seconds.
 *
 * Windows: CPU samples go to a ring of per-interval aggregates (flamering.h) that
 * /flame.svg?seconds=N and /debug/pprof/profile?seconds=N read; every report_s seconds the
 * session's JSON report (the same document as --json) is rendered for /report.json and every
 * capability starts a new window (session__reset), so that nothing grows with uptime.
 *
 * Service names (service_name, the flame graphs' root frames): from the process (procs.h: its
 * OTEL_SERVICE_NAME, gunicorn's proc name, its script or module), at most max_services distinct
 * ones, then "other" (counted).
 */
#ifndef PYTRACE_COLLECTOR_H
#define PYTRACE_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COLLECTOR_DEFAULT_PORT		9464	/* OpenTelemetry's Prometheus exporter's port */
#define COLLECTOR_DEFAULT_REPORT_S	60
#define COLLECTOR_DEFAULT_MAX_SERVICES	200
#define COLLECTOR_SERVICE_MAX		64

struct collector_opts {
	bool enabled;
	char address[64];		/* numeric IPv4/IPv6, no brackets; "" for 127.0.0.1 */
	uint16_t port;			/* 0: an ephemeral port (printed at start) */
	const char *auth_user, *auth_password;	/* basic auth, both or neither */
	const char *tls_cert, *tls_key;		/* PEM files, both or neither */
	unsigned max_series;		/* per metric family; 0: PROM_DEFAULT_MAX_SERIES */
	unsigned max_services;		/* 0: COLLECTOR_DEFAULT_MAX_SERVICES */
	unsigned window_max_s;		/* longest /flame.svg and pprof window; 0: FLAMERING_DEFAULT_MAX_S */
	size_t slot_max_stacks;		/* distinct stacks per profile interval; 0: default */
	unsigned report_s;		/* /report.json's window; 0: COLLECTOR_DEFAULT_REPORT_S */
	void (*on_ready)(void *ctx, const char *url);	/* the endpoint listens (url of /metrics) */
	void *ready_ctx;
};

/*
 * "[ADDR:]PORT" as --prometheus takes it: "9464" (127.0.0.1), "0.0.0.0:9464", "[::]:9464",
 * "[::1]:0". Fills o->address and o->port; -EINVAL with the reason in err.
 */
int collector__parse_listen(const char *arg, struct collector_opts *o, char *err, size_t errlen);
/* A basic-auth file: its first line "user:password". Caller frees both. -errno with err. */
int collector__read_auth(const char *path, char **user, char **password, char *err, size_t errlen);

/* The query summary's labels for a pattern; what the collector caches (exposed for tests). */
struct collector;
extern const struct capability collector_capability;

struct collector_stats {
	uint64_t samples, statements, requests, n_plus_one;
	uint64_t windows;		/* report windows completed */
	uint64_t services_dropped;	/* processes counted as service "other" */
};
void collector__stats(struct collector *c, struct collector_stats *st);

#endif
