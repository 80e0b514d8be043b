// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Metrics registry: escaping, histograms, caps and the dropped counter, both formats, Accept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <cmocka.h>

#include "promtext.h"

static char *expose(struct prom_registry *r, enum prom_format fmt)
{
	struct membuf b;

	membuf__init(&b, 0);
	assert_int_equal(prom_registry__write(r, fmt, &b), 0);
	return membuf__steal(&b, NULL);
}

static void assert_has(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("missing %s in:\n%s", needle, text);
}

static void test_names(void **state)
{
	assert_true(prom__valid_metric_name("http_server_request_duration_seconds"));
	assert_true(prom__valid_metric_name("a:b_c"));
	assert_false(prom__valid_metric_name("1abc"));
	assert_false(prom__valid_metric_name("a-b"));
	assert_false(prom__valid_metric_name(""));
	assert_false(prom__valid_metric_name("a.b"));
	assert_true(prom__valid_label_name("http_route"));
	assert_false(prom__valid_label_name("__name__"));
	assert_false(prom__valid_label_name("a:b"));
	assert_false(prom__valid_label_name("9x"));

	struct prom_registry *r = prom_registry__new();
	const char *dup[] = { "a", "a" }, *le[] = { "le" }, *bad[] = { "x-y" };
	double b[] = { 1, 0.5 };
	struct prom_family_opts o = { .name = "x", .type = PROM_COUNTER, .labels = dup, .nlabels = 2 };

	assert_null(prom_registry__family(r, &o));
	assert_int_equal(errno, EINVAL);
	o.labels = bad;
	o.nlabels = 1;
	assert_null(prom_registry__family(r, &o));
	o = (struct prom_family_opts){ .name = "h", .type = PROM_HISTOGRAM, .labels = le, .nlabels = 1,
				       .buckets = prom_buckets_db_client_duration, .nbuckets = 9 };
	assert_null(prom_registry__family(r, &o));
	o.nlabels = 0;
	o.buckets = b;
	o.nbuckets = 2;		/* not increasing */
	assert_null(prom_registry__family(r, &o));
	o = (struct prom_family_opts){ .name = "t_bytes", .unit = "seconds", .type = PROM_GAUGE };
	assert_null(prom_registry__family(r, &o));	/* unit must be the name's suffix */
	o.unit = "bytes";
	assert_non_null(prom_registry__family(r, &o));
	assert_null(prom_registry__family(r, &o));
	assert_int_equal(errno, EEXIST);
	o = (struct prom_family_opts){ .name = PROM_DROPPED_FAMILY "_total", .type = PROM_COUNTER };
	assert_null(prom_registry__family(r, &o));
	assert_int_equal(errno, EEXIST);
	prom_registry__free(r);
}

static void test_escaping(void **state)
{
	struct prom_registry *r = prom_registry__new();
	const char *labels[] = { "route", "q" };
	struct prom_family_opts o = { .name = "reqs_total", .help = "Back\\slash and\nnewline \"q\"",
				      .type = PROM_COUNTER, .labels = labels, .nlabels = 2 };
	struct prom_family *f = prom_registry__family(r, &o);
	const char *v1[] = { "a\"b", "c\\d\ne" }, *v2[] = { "bad\xff\xfeutf8", "caf\xc3\xa9" };
	char *t;

	assert_non_null(f);
	assert_int_equal(prom_family__add(f, v1, 2), 0);
	assert_int_equal(prom_family__add(f, v2, 1), 0);
	assert_int_equal(prom_family__add(f, v1, 0.5), 0);
	assert_int_equal(prom_family__add(f, v1, -1), -EINVAL);
	t = expose(r, PROM_FMT_TEXT);
	assert_has(t, "# HELP reqs_total Back\\\\slash and\\nnewline \"q\"\n");
	assert_has(t, "# TYPE reqs_total counter\n");
	assert_has(t, "reqs_total{route=\"a\\\"b\",q=\"c\\\\d\\ne\"} 2.5\n");
	assert_has(t, "reqs_total{route=\"bad\xEF\xBF\xBD\xEF\xBF\xBDutf8\",q=\"caf\xc3\xa9\"} 1\n");
	free(t);
	t = expose(r, PROM_FMT_OPENMETRICS);
	assert_has(t, "# HELP reqs Back\\\\slash and\\nnewline \\\"q\\\"\n");
	assert_has(t, "# TYPE reqs counter\n");
	assert_has(t, "reqs_total{route=\"a\\\"b\",q=\"c\\\\d\\ne\"} 2.5\n");
	free(t);
	prom_registry__free(r);
}

static void test_histogram(void **state)
{
	struct prom_registry *r = prom_registry__new();
	const char *labels[] = { "http_route" };
	struct prom_family_opts o = { .name = "http_server_request_duration_seconds", .unit = "seconds",
				      .help = "Duration of HTTP server requests.", .type = PROM_HISTOGRAM,
				      .labels = labels, .nlabels = 1,
				      .buckets = prom_buckets_http_server_duration,
				      .nbuckets = PROM_BUCKETS_HTTP_SERVER_DURATION_N };
	struct prom_family *f = prom_registry__family(r, &o);
	const char *v[] = { "/recipes/{id}" };
	struct prom_series *s;
	double sum;
	char *t;

	assert_non_null(f);
	s = prom_family__series(f, v);
	assert_non_null(s);
	/* 0.005 is in le="0.005" (upper bounds are inclusive), 0.3 in 0.5, 11 only in +Inf */
	assert_int_equal(prom_series__observe(s, 0.005), 0);
	assert_int_equal(prom_series__observe(s, 0.3), 0);
	assert_int_equal(prom_series__observe(s, 0.3), 0);
	assert_int_equal(prom_series__observe(s, 11), 0);
	assert_int_equal(prom_series__observe(s, NAN), 0);
	assert_int_equal(prom_series__add(s, 1), -EINVAL);
	assert_int_equal(prom_series__count(s, &sum), 4);
	assert_true(fabs(sum - 11.605) < 1e-9);
	t = expose(r, PROM_FMT_TEXT);
	assert_has(t, "# TYPE http_server_request_duration_seconds histogram\n");
	assert_null(strstr(t, "# UNIT"));
	assert_has(t, "http_server_request_duration_seconds_bucket{http_route=\"/recipes/{id}\",le=\"0.005\"} 1\n"
		      "http_server_request_duration_seconds_bucket{http_route=\"/recipes/{id}\",le=\"0.01\"} 1\n");
	assert_has(t, "le=\"0.25\"} 1\nhttp_server_request_duration_seconds_bucket{http_route=\"/recipes/{id}\",le=\"0.5\"} 3\n");
	assert_has(t, "le=\"10\"} 3\nhttp_server_request_duration_seconds_bucket{http_route=\"/recipes/{id}\",le=\"+Inf\"} 4\n"
		      "http_server_request_duration_seconds_sum{http_route=\"/recipes/{id}\"} 11.605\n"
		      "http_server_request_duration_seconds_count{http_route=\"/recipes/{id}\"} 4\n");
	free(t);
	t = expose(r, PROM_FMT_OPENMETRICS);
	assert_has(t, "# UNIT http_server_request_duration_seconds seconds\n");
	assert_has(t, "le=\"1.0\"} 3\n");
	assert_has(t, "le=\"0.005\"} 1\n");
	assert_has(t, "le=\"+Inf\"} 4\n");
	/* the exposition ends with # EOF and nothing after it */
	assert_true(strlen(t) > 6 && !strcmp(t + strlen(t) - 6, "# EOF\n"));
	free(t);
	prom_registry__free(r);
}

static void test_caps(void **state)
{
	struct prom_registry *r = prom_registry__new();
	const char *labels[] = { "service_name", "http_route" };
	struct prom_family_opts o = { .name = "reqs", .type = PROM_COUNTER, .labels = labels, .nlabels = 2,
				      .max_series = 3 };
	struct prom_family *f = prom_registry__family(r, &o);
	struct prom_family_opts g = { .name = "temp", .type = PROM_GAUGE };
	struct prom_family *fg = prom_registry__family(r, &g);
	char route[32];
	char *t;

	assert_non_null(f);
	for (int i = 0; i < 10; i++) {
		const char *v[] = { "web", route };

		snprintf(route, sizeof(route), "/r%d", i % 5);
		assert_int_equal(prom_family__add(f, v, 1), 0);
	}
	/* /r0../r2 got 2 each; /r3, /r4 (4 updates) went to the overflow series */
	assert_int_equal(prom_family__nseries(f), 3);
	assert_int_equal(prom_family__dropped(f), 4);
	assert_int_equal(prom_family__set(fg, NULL, -2.5), 0);
	t = expose(r, PROM_FMT_TEXT);
	assert_has(t, "reqs_total{service_name=\"web\",http_route=\"/r0\"} 2\n");
	assert_has(t, "reqs_total{service_name=\"other\",http_route=\"other\"} 4\n");
	assert_null(strstr(t, "/r3"));
	assert_has(t, "# TYPE pytrace_label_values_dropped_total counter\n");
	assert_has(t, "pytrace_label_values_dropped_total{metric=\"reqs\"} 4\n");
	assert_has(t, "pytrace_label_values_dropped_total{metric=\"temp\"} 0\n");
	assert_has(t, "temp -2.5\n");
	free(t);
	t = expose(r, PROM_FMT_OPENMETRICS);
	assert_has(t, "# TYPE pytrace_label_values_dropped counter\n");
	assert_has(t, "pytrace_label_values_dropped_total{metric=\"reqs\"} 4\n");
	free(t);

	/* long values are cut at a code point, so they cannot grow memory either */
	char big[1000];
	const char *v[] = { big, "x" };

	memset(big, 'a', sizeof(big) - 1);
	memcpy(big + 254, "\xc3\xa9", 2);	/* é across the 256-byte cut */
	big[sizeof(big) - 1] = '\0';
	struct prom_family_opts o2 = { .name = "long", .type = PROM_GAUGE, .labels = labels, .nlabels = 2 };
	struct prom_family *fl = prom_registry__family(r, &o2);
	struct prom_series *s1 = prom_family__series(fl, v);

	big[600] = 'b';		/* beyond the cut: same series */
	assert_ptr_equal(prom_family__series(fl, v), s1);
	t = expose(r, PROM_FMT_TEXT);
	{
		const char *p = strstr(t, "long{service_name=\"");
		const char *q;

		assert_non_null(p);
		p += strlen("long{service_name=\"");
		q = strchr(p, '"');
		assert_int_equal(q - p, 256);
		assert_memory_equal(q - 2, "\xc3\xa9", 2);
	}
	free(t);
	prom_registry__free(r);
}

static void test_double(void **state)
{
	struct membuf b;

	membuf__init(&b, 0);
	prom__write_double(&b, 0.1);
	membuf__putc(&b, ' ');
	prom__write_double(&b, 1e-9);
	membuf__putc(&b, ' ');
	prom__write_double(&b, 123456789012.0);
	membuf__putc(&b, ' ');
	prom__write_double(&b, INFINITY);
	membuf__putc(&b, ' ');
	prom__write_double(&b, -INFINITY);
	membuf__putc(&b, ' ');
	prom__write_double(&b, NAN);
	membuf__putc(&b, ' ');
	prom__write_double(&b, 1.0 / 3);
	assert_string_equal(b.data, "0.1 1e-09 123456789012 +Inf -Inf NaN 0.33333333333333331");
	membuf__free(&b);
}

static void test_negotiate(void **state)
{
	/* Prometheus 2.x's scrape header */
	assert_int_equal(prom__negotiate("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
					 "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
			 PROM_FMT_OPENMETRICS);
	/* with text preferred */
	assert_int_equal(prom__negotiate("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5"),
			 PROM_FMT_TEXT);
	assert_int_equal(prom__negotiate("application/openmetrics-text; version=1.0.0; q=0.2, text/plain; q=0.8"),
			 PROM_FMT_TEXT);
	assert_int_equal(prom__negotiate(NULL), PROM_FMT_TEXT);
	assert_int_equal(prom__negotiate(""), PROM_FMT_TEXT);
	assert_int_equal(prom__negotiate("*/*"), PROM_FMT_TEXT);	/* curl */
	assert_int_equal(prom__negotiate("Application/OpenMetrics-Text"), PROM_FMT_OPENMETRICS);
	assert_int_equal(prom__negotiate("application/openmetrics-text;version=\"1.0.0\""), PROM_FMT_OPENMETRICS);
	/* versions we do not write are skipped, q=0 refuses */
	assert_int_equal(prom__negotiate("application/openmetrics-text;version=2.0.0,text/plain"), PROM_FMT_TEXT);
	assert_int_equal(prom__negotiate("application/openmetrics-text;q=0,*/*;q=0.1"), PROM_FMT_TEXT);
	/* protobuf first (Prometheus with native histograms): not served, the next one wins */
	assert_int_equal(prom__negotiate("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
					 "encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,"
					 "text/plain;version=0.0.4;q=0.5"),
			 PROM_FMT_OPENMETRICS);
	/* equal q: the more specific range first, then header order */
	assert_int_equal(prom__negotiate("*/*,application/openmetrics-text"), PROM_FMT_OPENMETRICS);
	assert_int_equal(prom__negotiate("text/plain,application/openmetrics-text"), PROM_FMT_TEXT);
	assert_int_equal(prom__negotiate("garbage,;;,application/openmetrics-text;q=bad,application/openmetrics-text;q=0.3"),
			 PROM_FMT_OPENMETRICS);
	assert_string_equal(prom__content_type(PROM_FMT_TEXT), "text/plain; version=0.0.4; charset=utf-8");
	assert_string_equal(prom__content_type(PROM_FMT_OPENMETRICS),
			    "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

static struct prom_family *thr_f;

static void *writer(void *arg)
{
	const char *v[] = { (const char *)arg };

	for (int i = 0; i < 20000; i++)
		prom_family__observe(thr_f, v, i % 7 * 0.01);
	return NULL;
}

/* an update thread and a scrape thread at once: counts stay consistent (run under helgrind too) */
static void test_threads(void **state)
{
	struct prom_registry *r = prom_registry__new();
	const char *labels[] = { "k" };
	struct prom_family_opts o = { .name = "lat_seconds", .type = PROM_HISTOGRAM, .labels = labels, .nlabels = 1,
				      .buckets = prom_buckets_db_client_duration, .nbuckets = 9 };
	pthread_t t1, t2;

	thr_f = prom_registry__family(r, &o);
	pthread_create(&t1, NULL, writer, "a");
	pthread_create(&t2, NULL, writer, "b");
	for (int i = 0; i < 50; i++) {
		char *t = expose(r, PROM_FMT_TEXT);

		free(t);
	}
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	char *t = expose(r, PROM_FMT_TEXT);

	assert_has(t, "lat_seconds_count{k=\"a\"} 20000\n");
	assert_has(t, "lat_seconds_bucket{k=\"b\",le=\"+Inf\"} 20000\n");
	free(t);
	prom_registry__free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_double),
		cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
