// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --functions statistics without the kernel: probe calls and their callers, the sampled-shares
 * fallback, GC and imports, caps, the report's source line, the JSON sections (golden file).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "funcstats.h"
#include "jsonw.h"
#include "lathist.h"

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR "tests/data"
#endif

#define US 1000ull
#define MS 1000000ull

static const char *const app[] = { "app.*" };

static struct funcstats *new_stats(const char *const *pats, int n, enum funcs_mode mode)
{
	struct funcstats_opts o = { .patterns = pats, .npatterns = n, .mode = mode };
	char err[256] = "";
	struct funcstats *st = funcstats__new(&o, err, sizeof(err));

	assert_non_null(st);
	assert_string_equal(err, "");
	return st;
}

static struct funcstats_proc *add_proc(struct funcstats *st, pid_t pid, unsigned minor, enum py_probe_level level)
{
	bool fresh;
	struct funcstats_proc *p = funcstats__proc(st, pid, true, &fresh);

	assert_non_null(p);
	assert_true(fresh);
	p->major = 3;
	p->minor = minor;
	snprintf(p->binary, sizeof(p->binary), "/usr/bin/python3.%u", minor);
	p->pp.level = level;
	return p;
}

/* The "functions" section, compact or pretty. */
static char *json_of(struct funcstats *st, const struct funcstats_counters *c, bool pretty)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct jsonw *w = jsonw__new(f);

	jsonw__pretty(w, pretty);
	funcstats__write_json(st, c, w);
	assert_int_equal(jsonw__finish(w), 0);
	jsonw__free(w);
	fclose(f);
	return buf;
}

static char *gc_json_of(struct funcstats *st)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct jsonw *w = jsonw__new(f);

	funcstats__write_gc_json(st, w);
	assert_int_equal(jsonw__finish(w), 0);
	jsonw__free(w);
	fclose(f);
	return buf;
}

static char *report_of(struct funcstats *st, const struct funcstats_counters *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	funcstats__report(st, c, f);
	fclose(f);
	return buf;
}

static void assert_has(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("missing: %s\n---- in:\n%s", needle, hay);
}

/* hay has a before b */
static void assert_order(const char *hay, const char *a, const char *b)
{
	const char *pa = strstr(hay, a), *pb = strstr(hay, b);

	if (!pa || !pb || pa > pb)
		fail_msg("expected '%s' before '%s' in:\n%s", a, b, hay);
}

static void test_calls_and_percentiles(void **state)
{
	struct funcstats *st = new_stats(app, 1, FUNCS_AUTO);
	struct lathist h;
	char want[512], *js, *rep;
	int fn, i;

	add_proc(st, 100, 15, PY_PROBES_COMPLETE);
	lathist__init(&h);
	fn = funcstats__func(st, "/srv/app/cart.py", "total");
	assert_true(fn >= 0);
	for (i = 1; i <= 100; i++) {
		funcstats__add_call(st, fn, i * US, NULL, 0);
		lathist__add(&h, i * US);
	}
	for (i = 0; i < 10; i++)
		assert_int_equal(funcstats__call(st, "/srv/app/checkout.py", "checkout", 1 * MS, NULL, 0), fn + 1);
	/* the same (file, name) is the same function */
	assert_int_equal(funcstats__func(st, "/srv/app/cart.py", "total"), fn);
	/* a bad handle is ignored */
	funcstats__add_call(st, 4242, 1, NULL, 0);
	funcstats__add_call(st, -1, 1, NULL, 0);

	js = json_of(st, NULL, false);
	snprintf(want, sizeof(want),
		 "{\"function\":\"total\",\"name\":\"total\",\"file\":\"/srv/app/cart.py\",\"count\":100,"
		 "\"total_ns\":5050000,\"mean_ns\":50500,\"p50_ns\":%llu,\"p95_ns\":%llu,\"p99_ns\":%llu,"
		 "\"max_ns\":100000,\"callers\":[],\"callers_unknown\":100}",
		 (unsigned long long)lathist__percentile(&h, 50), (unsigned long long)lathist__percentile(&h, 95),
		 (unsigned long long)lathist__percentile(&h, 99));
	assert_has(js, want);
	assert_has(js, "\"count\":10,\"total_ns\":10000000,\"mean_ns\":1000000,\"p50_ns\":1000000");
	/* costliest first: checkout (10ms) before total (5.05ms) */
	assert_order(js, "\"function\":\"checkout\"", "\"function\":\"total\"");
	/* probes only: nothing sampled */
	assert_has(js, "\"sampled\":{\"wall_ns\":0,\"oncpu_ns\":0,\"offcpu_ns\":0,\"functions\":[]}");
	assert_has(js, "\"processes\":[{\"pid\":100,\"python\":\"3.15\",\"binary\":\"/usr/bin/python3.15\","
		   "\"probes\":\"complete\",\"probes_text\":\"USDT probes (complete)\",\"gc_probes\":false,"
		   "\"import_probes\":false,\"source\":\"usdt\"}]");

	rep = report_of(st, NULL);
	assert_has(rep, "\nFunctions matching 'app.*'\nSource: USDT probes (complete)\n");
	assert_has(rep, "  pid 100: CPython 3.15 (/usr/bin/python3.15): USDT probes (complete)\n");
	assert_has(rep, "       calls      total       mean        p50        p95        p99        max  function\n");
	assert_has(rep, "         100     5.05ms     50.5us ");
	assert_has(rep, "   100.0us  total (/srv/app/cart.py)\n");
	assert_has(rep, "          10    10.00ms     1.00ms     1.00ms     1.00ms     1.00ms     1.00ms  checkout (/srv/app/checkout.py)\n");
	assert_order(rep, "checkout (/srv/app/checkout.py)", "total (/srv/app/cart.py)");
	assert_has(rep, "(wall time from entry to return, exceptions included; a generator counts one call per resume;");
	assert_true(strstr(rep, "events lost") == NULL);
	/* complete probes everywhere: no sampled table */
	assert_true(strstr(rep, "Sampled wall-clock time") == NULL);
	assert_false(funcstats__sampling_used(st));
	free(js);
	free(rep);
	funcstats__free(st);
}

static void test_callers(void **state)
{
	struct funcstats *st = new_stats(app, 1, FUNCS_AUTO);
	const char *from_handler[] = { "main (/srv/app/main.py:1)", "handler (/srv/app/views.py:10)",
				       "Cart.total (/srv/app/cart.py:5)" };
	const char *from_other[] = { "other (/srv/app/views.py:20)", "Cart.total (/srv/app/cart.py:5)" };
	/* the callee's frame was not pushed yet: the innermost frame is the caller */
	const char *no_own[] = { "direct (/srv/app/jobs.py:7)" };
	const char *only_own[] = { "Cart.total (/srv/app/cart.py:5)" };
	const char *native[] = { "[native] (x:0)", "Cart.total (/srv/app/cart.py:5)" };
	const char *pseudo[] = { "[unknown]" };
	char name[64], frame[128], *js, *rep;
	const char *many[1];
	int fn, i;

	add_proc(st, 100, 15, PY_PROBES_COMPLETE);
	fn = funcstats__func(st, "/srv/app/cart.py", "total");
	for (i = 0; i < 5; i++)
		funcstats__add_call(st, fn, 2 * MS, from_handler, 3);
	for (i = 0; i < 3; i++)
		funcstats__add_call(st, fn, 2 * MS, from_other, 2);
	funcstats__add_call(st, fn, 2 * MS, no_own, 1);
	funcstats__add_call(st, fn, 2 * MS, only_own, 1);	/* unknown: nothing above it */
	funcstats__add_call(st, fn, 2 * MS, native, 2);	/* unknown: a pseudo-frame */
	funcstats__add_call(st, fn, 2 * MS, pseudo, 1);	/* unknown */
	funcstats__add_call(st, fn, 2 * MS, NULL, 0);	/* unknown */

	js = json_of(st, NULL, false);
	/* the qualified name was learned from the callee's own frame */
	assert_has(js, "\"function\":\"Cart.total\",\"name\":\"total\",\"file\":\"/srv/app/cart.py\",\"count\":13,");
	assert_has(js, "\"callers\":[{\"caller\":\"handler (/srv/app/views.py:10)\",\"calls\":5},"
		   "{\"caller\":\"other (/srv/app/views.py:20)\",\"calls\":3},"
		   "{\"caller\":\"direct (/srv/app/jobs.py:7)\",\"calls\":1}],\"callers_unknown\":4}");
	rep = report_of(st, NULL);
	assert_has(rep, "  Cart.total (/srv/app/cart.py)\n"
		   "    callers: 5 calls from handler (/srv/app/views.py:10)\n"
		   "             3 calls from other (/srv/app/views.py:20)\n"
		   "             1 calls from direct (/srv/app/jobs.py:7)\n");
	free(js);
	free(rep);

	/* past FUNCSTATS_MAX_CALLERS distinct callers: the first ones stay; JSON shows the top 5, text 3 */
	fn = funcstats__func(st, "/srv/app/util.py", "helper");
	for (i = 0; i < FUNCSTATS_MAX_CALLERS + 4; i++) {
		int k;

		snprintf(name, sizeof(name), "c%02d", i);
		snprintf(frame, sizeof(frame), "%s (/srv/app/c.py:%d)", name, i);
		many[0] = frame;
		for (k = 0; k <= i; k++)
			funcstats__add_call(st, fn, 1 * US, many, 1);
	}
	js = json_of(st, NULL, false);
	/* c19..c16 were not kept: c15 (16 calls) is the top caller */
	assert_has(js, "\"callers\":[{\"caller\":\"c15 (/srv/app/c.py:15)\",\"calls\":16},"
		   "{\"caller\":\"c14 (/srv/app/c.py:14)\",\"calls\":15},{\"caller\":\"c13 (/srv/app/c.py:13)\",\"calls\":14},"
		   "{\"caller\":\"c12 (/srv/app/c.py:12)\",\"calls\":13},{\"caller\":\"c11 (/srv/app/c.py:11)\",\"calls\":12}],"
		   "\"callers_unknown\":0}");
	rep = report_of(st, NULL);
	assert_has(rep, "    callers: 16 calls from c15 (/srv/app/c.py:15)\n"
		   "             15 calls from c14 (/srv/app/c.py:14)\n"
		   "             14 calls from c13 (/srv/app/c.py:13)\n  ");
	free(js);
	free(rep);
	funcstats__free(st);
}

static void test_sampled_shares(void **state)
{
	struct funcstats *st = new_stats(app, 1, FUNCS_AUTO);
	const char *query[] = { "[python3.12]", "main (/srv/app/main.py:1)", "handler (/srv/app/views.py:10)",
				"query (/srv/app/db.py:3)" };
	const char *wait[] = { "main (/srv/app/main.py:1)", "handler (/srv/app/views.py:10)",
			       "wait (/usr/lib/python3.12/selectors.py:451)" };
	const char *rec[] = { "main (/srv/app/main.py:1)", "handler (/srv/app/views.py:10)",
			      "handler (/srv/app/views.py:12)", "Cart.total (/srv/app/cart.py:5)" };
	const char *probed[] = { "main (/srv/app/main.py:1)" };
	char *js, *rep;

	add_proc(st, 200, 12, PY_PROBES_SILENT);
	add_proc(st, 300, 15, PY_PROBES_COMPLETE);
	assert_true(funcstats__sampling_used(st));
	funcstats__add_sample(st, 200, 201, query, 4, 10 * MS, false);
	funcstats__add_sample(st, 200, 201, wait, 3, 30 * MS, true);
	funcstats__add_sample(st, 200, 202, rec, 4, 10 * MS, false);	/* recursion: once per stack */
	/* a process with complete probes: its calls are counted exactly, its samples ignored */
	funcstats__add_sample(st, 300, 300, probed, 1, 1000 * MS, false);
	/* a process not in the table: counted */
	funcstats__add_sample(st, 999, 999, probed, 1, 50 * MS, true);

	js = json_of(st, NULL, false);
	assert_has(js, "\"sampled\":{\"wall_ns\":100000000,\"oncpu_ns\":20000000,\"offcpu_ns\":80000000,\"functions\":[");
	/* shares are inclusive (total, not self): main holds every stack */
	assert_has(js, "{\"function\":\"main\",\"file\":\"/srv/app/main.py\",\"share\":1,\"wall_ns\":100000000,"
		   "\"oncpu_ns\":20000000,\"offcpu_ns\":80000000,"
		   "\"callers\":[{\"caller\":\"[root]\",\"wall_ns\":100000000}]}");
	/* handler: 50ms, recursion counted once; its calling frame is main, and handler for itself never */
	assert_has(js, "{\"function\":\"handler\",\"file\":\"/srv/app/views.py\",\"share\":0.5,\"wall_ns\":50000000,"
		   "\"oncpu_ns\":20000000,\"offcpu_ns\":30000000,"
		   "\"callers\":[{\"caller\":\"main (/srv/app/main.py:1)\",\"wall_ns\":50000000}]}");
	assert_has(js, "{\"function\":\"query\",\"file\":\"/srv/app/db.py\",\"share\":0.1,\"wall_ns\":10000000,"
		   "\"oncpu_ns\":10000000,\"offcpu_ns\":0,"
		   "\"callers\":[{\"caller\":\"handler (/srv/app/views.py:10)\",\"wall_ns\":10000000}]}");
	assert_has(js, "{\"function\":\"Cart.total\",\"file\":\"/srv/app/cart.py\",\"share\":0.1,");
	/* not matching app.*: not reported */
	assert_true(strstr(js, "selectors") == NULL);
	assert_order(js, "\"function\":\"main\"", "\"function\":\"handler\"");
	/* no probe calls */
	assert_has(js, "\"calls\":[]");
	assert_has(js, "{\"pid\":200,\"python\":\"3.12\",\"binary\":\"/usr/bin/python3.12\",\"probes\":\"silent\",");
	assert_has(js, "\"source\":\"sampled\"}");

	rep = report_of(st, NULL);
	assert_has(rep, "Source: mixed: USDT probes where complete, sampled shares elsewhere\n");
	assert_has(rep, "  pid 200: CPython 3.12 (/usr/bin/python3.12): USDT probes (present but never "
		   "fired by CPython 3.12-3.14) -> sampled shares\n");
	assert_has(rep, "  pid 300: CPython 3.15 (/usr/bin/python3.15): USDT probes (complete)\n");
	assert_has(rep, "  Sampled wall-clock time: 0.100s (on-CPU 0.020s, off-CPU 0.080s) over all traced threads\n");
	assert_has(rep, "     share       wall     on-CPU    off-CPU  function\n");
	assert_has(rep, "    100.0%   100.00ms    20.00ms    80.00ms  main (/srv/app/main.py)\n"
		   "  callers:     100.0% of it from [root]\n");
	assert_has(rep, "     50.0%    50.00ms    20.00ms    30.00ms  handler (/srv/app/views.py)\n"
		   "  callers:     100.0% of it from main (/srv/app/main.py:1)\n");
	assert_has(rep, "     10.0%    10.00ms    10.00ms        0ns  query (/srv/app/db.py)\n");
	/* no probe table */
	assert_true(strstr(rep, "calls      total") == NULL);
	free(js);
	free(rep);
	funcstats__free(st);
}

/* Callers of a sampled function share its time: top two in the text, by weight. */
static void test_sampled_callers(void **state)
{
	struct funcstats *st = new_stats(app, 1, FUNCS_SAMPLE);
	const char *a[] = { "a (/srv/app/x.py:1)", "leaf (/srv/app/y.py:2)" };
	const char *b[] = { "b (/srv/app/x.py:5)", "leaf (/srv/app/y.py:2)" };
	const char *c[] = { "c (/srv/app/x.py:9)", "leaf (/srv/app/y.py:2)" };
	char *rep;

	/* FUNCS_SAMPLE: a process with complete probes is sampled too */
	add_proc(st, 100, 15, PY_PROBES_COMPLETE);
	funcstats__add_sample(st, 100, 100, a, 2, 6 * MS, false);
	funcstats__add_sample(st, 100, 100, b, 2, 3 * MS, true);
	funcstats__add_sample(st, 100, 100, c, 2, 1 * MS, false);
	rep = report_of(st, NULL);
	assert_has(rep, "Source: sampled shares (USDT probes not used: --functions-source=sample)\n");
	assert_has(rep, "  pid 100: CPython 3.15 (/usr/bin/python3.15): USDT probes (complete) -> sampled shares\n");
	assert_has(rep, "    100.0%    10.00ms     7.00ms     3.00ms  leaf (/srv/app/y.py)\n"
		   "  callers:      60.0% of it from a (/srv/app/x.py:1)\n"
		   "                30.0% of it from b (/srv/app/x.py:5)\n"
		   "     60.0%     6.00ms");
	free(rep);
	funcstats__free(st);
}

static void test_gc(void **state)
{
	struct funcstats *st = new_stats(app, 1, FUNCS_AUTO);
	struct funcstats_proc *p;
	char *js, *rep;
	int i;

	p = add_proc(st, 100, 15, PY_PROBES_COMPLETE);
	js = gc_json_of(st);
	assert_has(js, "{\"probes\":false,\"count\":0,\"total_ns\":0,\"mean_ns\":0,\"p50_ns\":0,");
	free(js);
	p->pp.gc_start = p->pp.gc_done = true;
	for (i = 0; i < 3; i++)
		funcstats__add_gc(st, 0, 1 * MS, 10);
	funcstats__add_gc(st, 2, 10 * MS, -1);	/* a negative count is not added */
	funcstats__add_gc(st, 7, 2 * MS, 0);	/* in the total only */
	js = gc_json_of(st);
	assert_has(js, "{\"probes\":true,\"count\":5,\"total_ns\":15000000,\"mean_ns\":3000000,");
	assert_has(js, "\"max_ns\":10000000,\"collected\":30,\"generations\":["
		   "{\"generation\":0,\"count\":3,\"total_ns\":3000000,\"mean_ns\":1000000,\"p50_ns\":1000000,"
		   "\"p95_ns\":1000000,\"p99_ns\":1000000,\"max_ns\":1000000},"
		   "{\"generation\":1,\"count\":0,\"total_ns\":0,\"mean_ns\":0,\"p50_ns\":0,\"p95_ns\":0,\"p99_ns\":0,\"max_ns\":0},"
		   "{\"generation\":2,\"count\":1,\"total_ns\":10000000,\"mean_ns\":10000000,\"p50_ns\":10000000,"
		   "\"p95_ns\":10000000,\"p99_ns\":10000000,\"max_ns\":10000000}]");
	assert_has(js, "\"imports\":{\"probes\":false,\"count\":0,");
	rep = report_of(st, NULL);
	assert_has(rep, "\nGC pauses (gc__start/gc__done): 5 collections, total 15.00ms, p50 1.01ms, p99 10.00ms, "
		   "max 10.00ms\n");
	assert_true(strstr(rep, "Imports") == NULL);
	free(js);
	free(rep);
	funcstats__free(st);
}

static void test_imports(void **state)
{
	struct funcstats *st = new_stats(app, 1, FUNCS_AUTO);
	const char *mods[] = { "m0", "m1", "m2", "m3", "m4", "m5" };
	struct funcstats_proc *p;
	char *js, *rep;
	int i;

	p = add_proc(st, 100, 15, PY_PROBES_COMPLETE);
	p->pp.import_start = p->pp.import_done = true;
	funcstats__add_import(st, "json", 2 * MS, 1);
	funcstats__add_import(st, "json", 2 * MS, 1);
	funcstats__add_import(st, "numpy", 50 * MS, 1);
	funcstats__add_import(st, "nosuch", 1 * MS, 0);
	for (i = 0; i < 6; i++)
		funcstats__add_import(st, mods[i], (10 + i) * US, 1);
	js = gc_json_of(st);
	assert_has(js, "\"imports\":{\"probes\":true,\"count\":10,\"total_ns\":55075000,");
	assert_has(js, "\"modules\":[{\"module\":\"numpy\",\"total_ns\":50000000,\"count\":1},"
		   "{\"module\":\"json\",\"total_ns\":4000000,\"count\":2},"
		   "{\"module\":\"nosuch\",\"total_ns\":1000000,\"count\":1},"
		   "{\"module\":\"m5\",\"total_ns\":15000,\"count\":1},");
	rep = report_of(st, NULL);
	/* the five costliest */
	assert_has(rep, "Imports (import__find__load_*): 10, 55.08ms including nested imports\n"
		   "     50.00ms  numpy\n      4.00ms  json\n      1.00ms  nosuch\n      15.0us  m5\n      14.0us  m4\n");
	assert_true(strstr(rep, "m3") == NULL);
	free(js);
	free(rep);
	funcstats__free(st);
}

static void test_caps(void **state)
{
	struct funcstats *st = new_stats(app, 1, FUNCS_AUTO);
	struct funcstats_drops d;
	struct funcstats_proc *p, *q;
	char name[64], *rep;
	bool fresh;
	int i, k;

	/* functions */
	for (i = 0; i < FUNCSTATS_MAX_FUNCS; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(funcstats__func(st, "/srv/app/m.py", name), i);
	}
	assert_int_equal(funcstats__func(st, "/srv/app/m.py", "one_too_many"), -1);
	assert_int_equal(funcstats__call(st, "/srv/app/m.py", "one_too_many", 1, NULL, 0), -1);
	/* known ones still count */
	assert_int_equal(funcstats__call(st, "/srv/app/m.py", "f7", 1 * MS, NULL, 0), 7);
	funcstats__drops(st, &d);
	assert_int_equal(d.functions, 2);
	assert_int_equal(d.pids, 0);
	assert_int_equal(d.imports, 0);

	/* processes: full of live ones -> refused; an exited one's entry is taken over */
	for (i = 0; i < FUNCSTATS_MAX_PIDS; i++) {
		p = funcstats__proc(st, 1000 + i, true, &fresh);
		assert_non_null(p);
		assert_true(fresh);
		assert_int_equal(funcstats__proc_index(st, p), i);
	}
	assert_null(funcstats__proc(st, 5000, true, &fresh));
	assert_false(fresh);
	/* found, not created */
	p = funcstats__proc(st, 1010, true, &fresh);
	assert_non_null(p);
	assert_false(fresh);
	assert_ptr_equal(funcstats__proc(st, 1010, false, NULL), p);
	p->exited = true;
	/* an exited process is no longer found */
	assert_null(funcstats__proc(st, 1010, false, NULL));
	q = funcstats__proc(st, 5000, true, &fresh);
	assert_ptr_equal(q, p);
	assert_true(fresh);
	assert_int_equal(q->pid, 5000);
	assert_false(q->exited);
	assert_int_equal(funcstats__proc_index(st, q), 10);
	assert_null(funcstats__proc(st, 5001, true, NULL));
	funcstats__drops(st, &d);
	assert_int_equal(d.pids, 2);

	/* imports: modules past the cap still count in the total */
	for (i = 0; i < FUNCSTATS_MAX_IMPORTS + 3; i++) {
		snprintf(name, sizeof(name), "mod%d", i);
		funcstats__add_import(st, name, 1 * US, 1);
	}
	funcstats__add_import(st, "mod0", 1 * US, 1);	/* a known one: counted */
	funcstats__drops(st, &d);
	assert_int_equal(d.imports, 3);
	assert_int_equal(d.functions, 2);
	rep = report_of(st, NULL);
	k = FUNCSTATS_MAX_IMPORTS + 4;
	snprintf(name, sizeof(name), "Imports (import__find__load_*): %d,", k);
	assert_has(rep, name);
	assert_has(rep, "  f7 (/srv/app/m.py)\n");
	free(rep);
	funcstats__free(st);
}

static void test_source_line(void **state)
{
	static const struct {
		enum py_probe_level levels[2];
		int n;
		enum funcs_mode mode;
		const char *source;
	} cases[] = {
		{ { PY_PROBES_COMPLETE }, 1, FUNCS_AUTO, "USDT probes (complete)" },
		{ { PY_PROBES_COMPLETE, PY_PROBES_COMPLETE }, 2, FUNCS_AUTO, "USDT probes (complete)" },
		{ { PY_PROBES_PARTIAL }, 1, FUNCS_AUTO,
		  "USDT probes (partial: 3.11 fires only for frames entered from C) - showing sampled shares" },
		{ { PY_PROBES_SILENT }, 1, FUNCS_AUTO,
		  "no USDT function probes fire in CPython 3.12-3.14 - sampled shares" },
		{ { PY_PROBES_NONE }, 1, FUNCS_AUTO, "no USDT probes - sampled shares" },
		{ { PY_PROBES_COMPLETE, PY_PROBES_NONE }, 2, FUNCS_AUTO,
		  "mixed: USDT probes where complete, sampled shares elsewhere" },
		{ { PY_PROBES_PARTIAL, PY_PROBES_SILENT }, 2, FUNCS_AUTO,
		  "mixed: USDT probes where complete, sampled shares elsewhere" },
		/* nothing known yet */
		{ { 0 }, 0, FUNCS_AUTO, "mixed: USDT probes where complete, sampled shares elsewhere" },
		{ { PY_PROBES_COMPLETE }, 1, FUNCS_SAMPLE,
		  "sampled shares (USDT probes not used: --functions-source=sample)" },
	};
	size_t i;
	int j;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct funcstats *st = new_stats(app, 1, cases[i].mode);
		char line[256], *rep, *js;

		for (j = 0; j < cases[i].n; j++)
			add_proc(st, 100 + j, 15, cases[i].levels[j]);
		assert_string_equal(funcstats__source(st), cases[i].source);
		rep = report_of(st, NULL);
		snprintf(line, sizeof(line), "\nSource: %s\n", cases[i].source);
		assert_has(rep, line);
		js = json_of(st, NULL, false);
		snprintf(line, sizeof(line), "\"source\":\"%s\"", cases[i].source);
		assert_has(js, line);
		free(rep);
		free(js);
		funcstats__free(st);
	}
}

/* An exited process keeps its line and its say in the source. */
static void test_exited_kept(void **state)
{
	struct funcstats *st = new_stats(app, 1, FUNCS_AUTO);
	struct funcstats_proc *p = add_proc(st, 100, 11, PY_PROBES_PARTIAL);
	char *rep;

	p->exited = true;
	add_proc(st, 100, 15, PY_PROBES_COMPLETE);	/* the same pid again: a new entry */
	rep = report_of(st, NULL);
	assert_has(rep, "Source: mixed: USDT probes where complete, sampled shares elsewhere\n");
	assert_has(rep, "  pid 100: CPython 3.11 (/usr/bin/python3.11): USDT probes (partial");
	assert_has(rep, "  pid 100: CPython 3.15 (/usr/bin/python3.15): USDT probes (complete)\n");
	free(rep);
	funcstats__free(st);
}

static void test_empty_and_counters(void **state)
{
	const char *const pats[] = { "app.*", "*views.py:*" };
	struct funcstats *st = new_stats(pats, 2, FUNCS_AUTO);
	struct funcstats_counters c = { .lost = 3, .unpaired = 2, .too_deep = 4, .offcpu_stacks = 5,
					.candidates_rejected = 6, .events_unattributed = 7 };
	char *rep, *js;

	add_proc(st, 100, 15, PY_PROBES_COMPLETE);
	rep = report_of(st, &c);
	assert_has(rep, "\nFunctions matching 'app.*' '*views.py:*'\n");
	assert_has(rep, "  (no matching function was seen)\n");
	/* the lost-events line comes with the calls table only */
	assert_true(strstr(rep, "events lost") == NULL);
	free(rep);
	funcstats__call(st, "/srv/app/a.py", "f", 1 * MS, NULL, 0);
	rep = report_of(st, &c);
	assert_has(rep, "  3 events lost (ring buffer full), 2 entries without a return\n");
	assert_true(strstr(rep, "no matching function") == NULL);
	js = json_of(st, &c, false);
	assert_has(js, "\"patterns\":[\"app.*\",\"*views.py:*\"]");
	assert_has(js, "\"candidates_rejected\":6,\"lost_events\":3,\"unpaired_entries\":2,\"too_deep\":4,"
		   "\"offcpu_stacks\":5,\"events_unattributed\":7}");
	free(rep);
	free(js);
	funcstats__free(st);
}

static void test_patterns(void **state)
{
	const char *const bad[] = { "app.*", ":x" };
	const char *const nine[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i" };
	struct funcstats_opts o = { .patterns = bad, .npatterns = 2 };
	char err[256] = "";
	struct funcstats *st;

	assert_null(funcstats__new(&o, err, sizeof(err)));
	assert_string_equal(err, "invalid --functions pattern ':x' (expected a glob such as 'myapp.*', "
			    "'app.views.index' or '*views.py:*')");
	o.patterns = nine;
	o.npatterns = 9;
	assert_null(funcstats__new(&o, err, sizeof(err)));
	assert_string_equal(err, "at most 8 --functions patterns");

	st = new_stats(app, 1, FUNCS_AUTO);
	assert_true(funcstats__match(st, "/srv/app/cart.py", "total", NULL));
	assert_true(funcstats__match(st, "/srv/app/cart.py", "total", "Cart.total"));
	assert_false(funcstats__match(st, "/srv/lib/cart.py", "total", NULL));
	funcstats__free(st);
}

/* The whole of both sections for a mixed run, against tests/data/funcstats.json. */
static void test_json_golden(void **state)
{
	struct funcstats *st = new_stats(app, 1, FUNCS_AUTO);
	const char *call[] = { "main (/srv/app/main.py:1)", "handler (/srv/app/views.py:10)",
			       "Cart.total (/srv/app/cart.py:5)" };
	const char *stack[] = { "[py]", "main (/srv/app/main.py:1)", "handler (/srv/app/views.py:10)",
				"wait (/usr/lib/python3.12/selectors.py:451)" };
	struct funcstats_counters c = { .lost = 1, .unpaired = 2, .too_deep = 3, .offcpu_stacks = 4,
					.candidates_rejected = 5, .events_unattributed = 6 };
	struct funcstats_proc *p;
	char *buf = NULL, *want;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len), *g;
	struct jsonw *w = jsonw__new(f);
	long n;
	int i;

	p = add_proc(st, 100, 15, PY_PROBES_COMPLETE);
	p->pp.gc_start = p->pp.gc_done = p->pp.import_start = p->pp.import_done = true;
	p = add_proc(st, 200, 12, PY_PROBES_SILENT);
	snprintf(p->binary, sizeof(p->binary), "/opt/py \"quoted\"/python3.12");
	for (i = 1; i <= 4; i++)
		funcstats__call(st, "/srv/app/cart.py", "total", i * MS, call, 3);
	funcstats__add_sample(st, 200, 200, stack, 4, 10 * MS, false);
	funcstats__add_sample(st, 200, 200, stack, 4, 30 * MS, true);
	funcstats__add_gc(st, 0, 1 * MS, 5);
	funcstats__add_gc(st, 1, 3 * MS, 2);
	funcstats__add_import(st, "json", 2 * MS, 1);

	jsonw__pretty(w, true);
	jsonw__start_object(w);
	jsonw__name(w, "functions");
	funcstats__write_json(st, &c, w);
	jsonw__name(w, "gc");
	funcstats__write_gc_json(st, w);
	jsonw__end_object(w);
	assert_int_equal(jsonw__finish(w), 0);
	jsonw__free(w);
	fclose(f);

	g = fopen(TEST_DATA_DIR "/funcstats.json", "r");
	if (!g || getenv("FUNCSTATS_GOLDEN_WRITE")) {
		/* FUNCSTATS_GOLDEN_WRITE=1: write the golden file anew (review the diff) */
		if (g)
			fclose(g);
		g = fopen(TEST_DATA_DIR "/funcstats.json", "w");
		assert_non_null(g);
		fprintf(g, "%s\n", buf);
		fclose(g);
		fail_msg("wrote " TEST_DATA_DIR "/funcstats.json: check it in");
	}
	fseek(g, 0, SEEK_END);
	n = ftell(g);
	rewind(g);
	want = calloc(1, n + 1);
	assert_int_equal(fread(want, 1, n, g), (size_t)n);
	fclose(g);
	if (n && want[n - 1] == '\n')
		want[n - 1] = 0;
	if (strcmp(buf, want))
		fail_msg("differs from " TEST_DATA_DIR "/funcstats.json:\n%s", buf);
	free(want);
	free(buf);
	funcstats__free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_calls_and_percentiles),
		cmocka_unit_test(test_callers),
		cmocka_unit_test(test_sampled_shares),
		cmocka_unit_test(test_sampled_callers),
		cmocka_unit_test(test_gc),
		cmocka_unit_test(test_imports),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_source_line),
		cmocka_unit_test(test_exited_kept),
		cmocka_unit_test(test_empty_and_counters),
		cmocka_unit_test(test_patterns),
		cmocka_unit_test(test_json_golden),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
