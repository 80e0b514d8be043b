// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The exporter's pieces driven from the command line, for tests/integration/test_exporter_tools.sh:
 *   exporter_demo metrics text|openmetrics      a demo exposition (nasty label values) on stdout
 *   exporter_demo pprof IN.folded OUT.pb.gz [PERIOD_NS]   folded stacks -> gzipped pprof
 *   exporter_demo serve PORT [USER PASSWORD]    the exporter with the demo registry and fake
 *                                               routes, until SIGTERM/SIGINT; prints its stats
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exporter.h"
#include "pprof.h"
#include "promtext.h"
#include "stacks.h"

static struct prom_registry *demo_registry(void)
{
	struct prom_registry *r = prom_registry__new();
	const char *http_labels[] = { "service_name", "http_request_method", "http_route", "http_response_status_code" };
	const char *db_labels[] = { "service_name", "db_system_name", "db_operation_name", "db_collection_name",
				    "db_query_summary" };
	const char *lost_labels[] = { "kind" };
	struct prom_family_opts http = { .name = "http_server_request_duration_seconds", .unit = "seconds",
					 .help = "Duration of HTTP server requests.", .type = PROM_HISTOGRAM,
					 .labels = http_labels, .nlabels = 4,
					 .buckets = prom_buckets_http_server_duration,
					 .nbuckets = PROM_BUCKETS_HTTP_SERVER_DURATION_N, .max_series = 6 };
	struct prom_family_opts db = { .name = "db_client_operation_duration_seconds", .unit = "seconds",
				       .help = "Duration of database client operations.", .type = PROM_HISTOGRAM,
				       .labels = db_labels, .nlabels = 5, .buckets = prom_buckets_db_client_duration,
				       .nbuckets = PROM_BUCKETS_DB_CLIENT_DURATION_N };
	struct prom_family_opts lost = { .name = "pytrace_events_lost_total", .help = "Events lost, by kind.",
					 .type = PROM_COUNTER, .labels = lost_labels, .nlabels = 1 };
	struct prom_family_opts rss = { .name = "process_resident_memory_bytes", .unit = "bytes",
					.help = "Resident memory size in bytes.", .type = PROM_GAUGE };
	struct prom_family_opts cpu = { .name = "process_cpu_seconds_total", .unit = "seconds",
					.help = "Total user and system CPU time spent in seconds.", .type = PROM_COUNTER };
	struct prom_family *fh = prom_registry__family(r, &http), *fd = prom_registry__family(r, &db);
	struct prom_family *fl = prom_registry__family(r, &lost), *fr = prom_registry__family(r, &rss);
	struct prom_family *fc = prom_registry__family(r, &cpu);
	static const char *const routes[] = {
		"/recipes/{id}", "/say \"hi\"", "C:\\path\\x", "line1\nline2", "bad \xff\xfe utf8", "caf\xc3\xa9 \xe2\x9c\x93",
		"", "/a", "/b", "/c",
	};

	if (!fh || !fd || !fl || !fr || !fc) {
		fprintf(stderr, "exporter_demo: registry: %s\n", strerror(errno));
		exit(1);
	}
	for (int i = 0; i < 200; i++) {
		const char *v[] = { "recipes", i % 3 ? "GET" : "POST", routes[i % 10], i % 7 ? "200" : "500" };

		prom_family__observe(fh, v, (i % 50) * 0.013);
	}
	const char *d1[] = { "recipes", "postgresql", "SELECT", "recipes_recipe", "SELECT recipes_recipe" };
	const char *d2[] = { "recipes", "postgresql", "SELECT", "", "SELECT recipes_recipe auth_user" };
	const char *d3[] = { "recipes", "postgresql", "INSERT", "orders", "INSERT orders" };

	for (int i = 0; i < 100; i++) {
		prom_family__observe(fd, d1, i * 0.0007);
		prom_family__observe(fd, i % 2 ? d2 : d3, i * 0.01);
	}
	const char *k1[] = { "stack" }, *k2[] = { "sql \"ring\" full\\" };

	prom_family__add(fl, k1, 3);
	prom_family__add(fl, k2, 0);
	prom_family__set(fr, NULL, 12345678);
	prom_family__set(fc, NULL, 1.25);
	return r;
}

static int do_metrics(const char *fmt)
{
	struct prom_registry *r = demo_registry();
	struct membuf b;

	membuf__init(&b, 0);
	if (prom_registry__write(r, !strcmp(fmt, "openmetrics") ? PROM_FMT_OPENMETRICS : PROM_FMT_TEXT, &b))
		return 1;
	fwrite(b.data, 1, b.len, stdout);
	membuf__free(&b);
	prom_registry__free(r);
	return 0;
}

static int do_pprof(const char *in, const char *out, const char *period)
{
	struct stack_agg *a = stack_agg__new(0);
	struct pprof_opts o = { .period_ns = period ? atoll(period) : 0, .time_nanos = (int64_t)time(NULL) * 1000000000LL,
				.duration_nanos = 10000000000LL };
	FILE *fi = fopen(in, "r"), *fo;
	struct stack_agg_fn top[1];
	struct pprof *p;
	int err;

	if (!fi || stack_agg__read_folded(a, fi)) {
		fprintf(stderr, "exporter_demo: cannot read %s\n", in);
		return 1;
	}
	fclose(fi);
	p = pprof__new(&o);
	fo = fopen(out, "w");
	if (!p || !fo || pprof__add_stacks(p, a) || (err = pprof__write_file(p, fo))) {
		fprintf(stderr, "exporter_demo: cannot write %s\n", out);
		return 1;
	}
	fclose(fo);
	/* the function with the most self samples, as stack_agg names it, for the script to compare */
	if (stack_agg__top_functions(a, top, 1, true) == 1)
		printf("top %s %llu\n", top[0].frame, (unsigned long long)top[0].self);
	pprof__free(p);
	stack_agg__free(a);
	return 0;
}

static int fake_flame(void *ctx, const struct exporter_request *req, struct exporter_reply *rep)
{
	if (req->service && strcmp(req->service, "recipes")) {
		snprintf(rep->reason, sizeof(rep->reason), "unknown service %.64s", req->service);
		return 404;
	}
	fprintf(rep->body, "<svg xmlns=\"http://www.w3.org/2000/svg\"><!-- %d s --></svg>\n", req->seconds);
	return 200;
}

static int fake_report(void *ctx, const struct exporter_request *req, struct exporter_reply *rep)
{
	fputs("{\"requests\":[]}\n", rep->body);
	return 200;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int do_serve(const char *port, const char *user, const char *password)
{
	struct prom_registry *r = demo_registry();
	struct exporter_opts o = { .port = (uint16_t)atoi(port), .registry = r, .flame = fake_flame,
				   .report = fake_report, .basic_auth_user = user, .basic_auth_password = password };
	struct exporter_stats st;
	struct exporter *e;
	char err[256];

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (exporter__start(&o, &e, err, sizeof(err))) {
		fprintf(stderr, "exporter_demo: %s\n", err);
		return 1;
	}
	printf("listening on 127.0.0.1:%u\n", exporter__port(e));
	fflush(stdout);
	while (!stop)
		pause();
	exporter__stats(e, &st);
	exporter__stop(e);
	printf("requests %llu text %llu openmetrics %llu bad %llu auth_failures %llu errors %llu\n",
	       (unsigned long long)st.requests, (unsigned long long)st.scrapes_text,
	       (unsigned long long)st.scrapes_openmetrics, (unsigned long long)st.bad_requests,
	       (unsigned long long)st.auth_failures, (unsigned long long)st.errors);
	prom_registry__free(r);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "metrics"))
		return do_metrics(argv[2]);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "pprof"))
		return do_pprof(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
	if ((argc == 3 || argc == 5) && !strcmp(argv[1], "serve"))
		return do_serve(argv[2], argc == 5 ? argv[3] : NULL, argc == 5 ? argv[4] : NULL);
	fprintf(stderr, "usage: exporter_demo metrics text|openmetrics\n"
			"       exporter_demo pprof IN.folded OUT.pb.gz [PERIOD_NS]\n"
			"       exporter_demo serve PORT [USER PASSWORD]\n");
	return 2;
}
