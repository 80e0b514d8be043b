// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* SQL aggregation: counts, percentiles, caps, call sites, literal hiding, JSON and report. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jsonw.h"
#include "lathist.h"
#include "sqlnorm.h"
#include "sqlstats.h"

#define MS 1000000ull

static int add(struct sql_stats *s, const char *sql, uint64_t ns, bool err, const char *site)
{
	return sql_stats__add(s, sql, strlen(sql), false, ns, err, site);
}

/* {"queries": [...], "summary": {...}} as text */
static char *to_json(const struct sql_stats *s, bool pretty)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct jsonw *w = jsonw__new(f);

	jsonw__pretty(w, pretty);
	jsonw__start_object(w);
	jsonw__name(w, "queries");
	assert_int_equal(sql_stats__write_json(s, w), 0);
	jsonw__name(w, "summary");
	assert_int_equal(sql_stats__write_summary_json(s, w), 0);
	jsonw__end_object(w);
	assert_int_equal(jsonw__finish(w), 0);
	jsonw__free(w);
	fclose(f);
	return buf;
}

/* Parses json with Python and runs the assertions in check (a Python expression list). */
static void python_check(const char *json, const char *check)
{
	char cmd[4096];
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import json,sys\nd = json.load(sys.stdin)\nq = d[\"queries\"]\n"
		 "s = d[\"summary\"]\n%s'", check);
	p = popen(cmd, "w");
	assert_non_null(p);
	fputs(json, p);
	assert_int_equal(pclose(p), 0);
}

static void test_counts_and_latency(void **state)
{
	struct sql_stats *s = sql_stats__new(NULL);
	const struct sql_pattern *v[4];
	struct sql_stats_summary sum;
	char sql[128], *json;

	for (int i = 1; i <= 100; i++) {
		snprintf(sql, sizeof(sql), "SELECT * FROM t WHERE id = %d AND name = 'n%d'", i, i);
		assert_int_equal(add(s, sql, i * MS, i % 10 == 0, "get (app.py:10)"), 0);
	}
	assert_int_equal(add(s, "BEGIN", 50000, false, NULL), 0);
	assert_int_equal(sql_stats__sorted(s, v, 4), 2);
	assert_string_equal(v[0]->pattern, "SELECT * FROM t WHERE id = ? AND name = ?");
	assert_string_equal(v[0]->operation, "SELECT");
	assert_true(v[0]->fp_from_pg_query);
	assert_int_equal(v[0]->count, 100);
	assert_int_equal(v[0]->errors, 10);
	assert_int_equal(v[0]->total_ns, 5050 * MS);
	assert_int_equal(v[0]->hist.max, 100 * MS);
	assert_true(llabs((long long)lathist__percentile(&v[0]->hist, 50) - (long long)(50 * MS)) <=
		    (long long)(50 * MS * LATHIST_REL_ERROR));
	assert_true(llabs((long long)lathist__percentile(&v[0]->hist, 95) - (long long)(95 * MS)) <=
		    (long long)(95 * MS * LATHIST_REL_ERROR));
	assert_string_equal(v[1]->pattern, "BEGIN");
	sql_stats__summary(s, &sum);
	assert_int_equal(sum.statements, 101);
	assert_int_equal(sum.errors, 10);
	assert_int_equal(sum.patterns, 2);
	assert_int_equal(sum.dropped_patterns, 0);

	json = to_json(s, true);
	python_check(json,
		"assert len(q) == 2\n"
		"a = q[0]\n"
		"assert a[\"pattern\"] == \"SELECT * FROM t WHERE id = ? AND name = ?\"\n"
		"assert len(a[\"fingerprint\"]) == 16 and int(a[\"fingerprint\"], 16) >= 0\n"
		"assert a[\"operation\"] == \"SELECT\" and a[\"count\"] == 100 and a[\"errors\"] == 10\n"
		"assert a[\"total_ms\"] == 5050 and a[\"mean_ms\"] == 50.5 and a[\"max_ms\"] == 100\n"
		"assert abs(a[\"p50_ms\"] - 50) <= 1 and abs(a[\"p95_ms\"] - 95) <= 2 and abs(a[\"p99_ms\"] - 99) <= 2\n"
		"assert a[\"call_sites\"] == [{\"frame\": \"get (app.py:10)\", \"count\": 100}]\n"
		"assert q[1][\"pattern\"] == \"BEGIN\" and q[1][\"call_sites\"] == [] and q[1][\"total_ms\"] == 0.05\n"
		"assert s[\"patterns\"] == 2 and s[\"statements\"] == 101 and s[\"dropped_patterns\"] == 0\n"
		"assert s[\"invalid_utf8\"] == 0\n");
	free(json);
	sql_stats__free(s);
}

static void test_fingerprint_per_pattern(void **state)
{
	struct sql_stats *s = sql_stats__new(NULL);
	const struct sql_pattern *v[4];

	add(s, "SELECT a FROM t WHERE b IN (1, 2)", 1, false, NULL);
	add(s, "select a from t where b in (3)", 1, false, NULL);
	add(s, "SELECT a FROM t WHERE b IN (%s, %s)", 1, false, NULL);
	sql_stats__add(s, "SELECT a FROM t WHERE b IN (1, 2, 3, 4", 37, true, 1, false, NULL);
	assert_int_equal(sql_stats__sorted(s, v, 4), 2);
	/* the first statement of the pattern gave the fingerprint */
	assert_true(v[0]->fp_from_pg_query);
	assert_int_equal(v[0]->count, 3);
	assert_false(v[1]->fp_from_pg_query);
	assert_string_equal(v[1]->pattern, "SELECT a FROM t WHERE b IN (... \xe2\x80\xa6");
	sql_stats__free(s);
}

static void test_pattern_cap(void **state)
{
	struct sql_stats_opts o = { .max_patterns = 3 };
	struct sql_stats *s = sql_stats__new(&o);
	const struct sql_pattern *v[8];
	struct sql_stats_summary sum;
	char sql[64], *json;

	for (int i = 0; i < 3; i++) {
		snprintf(sql, sizeof(sql), "SELECT * FROM t%d WHERE x = %d", i, i);
		assert_int_equal(add(s, sql, MS, false, NULL), 0);
	}
	for (int i = 3; i < 10; i++) {
		snprintf(sql, sizeof(sql), "SELECT * FROM t%d WHERE x = %d", i, i);
		assert_int_equal(add(s, sql, 10 * MS, i == 5, "f (a.py:1)"), -E2BIG);
		assert_int_equal(add(s, sql, 10 * MS, false, "f (a.py:1)"), -E2BIG);
	}
	/* known patterns still count */
	assert_int_equal(add(s, "SELECT * FROM t1 WHERE x = 99", MS, false, NULL), 0);
	sql_stats__summary(s, &sum);
	assert_int_equal(sum.patterns, 3);
	assert_int_equal(sum.dropped_statements, 14);
	assert_int_equal(sum.dropped_patterns, 7);
	assert_int_equal(sum.statements, 18);
	assert_int_equal(sql_stats__sorted(s, v, 8), 4);
	assert_true(v[0]->overflow);
	assert_string_equal(v[0]->pattern, SQL_STATS_OTHER_PATTERNS);
	assert_int_equal(v[0]->count, 14);
	assert_int_equal(v[0]->errors, 1);
	assert_int_equal(v[0]->total_ns, 140 * MS);
	assert_string_equal(v[1]->pattern, "SELECT * FROM t1 WHERE x = ?");
	assert_int_equal(sql_stats__sorted(s, v, 2), 2);

	json = to_json(s, false);
	python_check(json,
		"assert len(q) == 4 and q[0][\"pattern\"] == \"[other patterns]\" and q[0][\"count\"] == 14\n"
		"assert q[0][\"fingerprint\"] == \"0000000000000000\" and q[0][\"operation\"] == \"\"\n"
		"assert s[\"patterns\"] == 3 and s[\"dropped_patterns\"] == 7 and s[\"statements\"] == 18\n");
	free(json);
	sql_stats__free(s);
}

static void test_call_sites(void **state)
{
	struct sql_stats_opts o = { .max_sites_per_pattern = 2 };
	struct sql_stats *s = sql_stats__new(&o);
	const struct sql_pattern *v[1];
	char *json;

	for (int i = 0; i < 3; i++)
		add(s, "SELECT 1", 1, false, "a (x.py:1)");
	for (int i = 0; i < 5; i++)
		add(s, "SELECT 2", 1, false, "b (y.py:2)");
	add(s, "SELECT 3", 1, false, "c (z.py:3)");
	add(s, "SELECT 3", 1, false, "d (z.py:4)");
	add(s, "SELECT 3", 1, false, NULL);
	assert_int_equal(sql_stats__sorted(s, v, 1), 1);
	assert_int_equal(v[0]->count, 11);
	assert_int_equal(v[0]->nsites, 2);
	assert_string_equal(v[0]->sites[0].frame, "b (y.py:2)");
	assert_int_equal(v[0]->sites[0].count, 5);
	assert_string_equal(v[0]->sites[1].frame, "a (x.py:1)");
	assert_int_equal(v[0]->other_sites, 2);
	json = to_json(s, false);
	python_check(json,
		"assert q[0][\"call_sites\"] == [{\"frame\": \"b (y.py:2)\", \"count\": 5},"
		" {\"frame\": \"a (x.py:1)\", \"count\": 3}, {\"frame\": \"[other]\", \"count\": 2}]\n");
	free(json);
	sql_stats__free(s);
}

static void test_literal_hiding(void **state)
{
	static const char sql[] = "UPDATE users SET password = 'hunter2' WHERE email = 'bob@example.com'";
	struct sql_stats_opts o = { .show_literals = true };
	struct sql_stats *s = sql_stats__new(NULL);
	char *json;

	add(s, sql, MS, false, NULL);
	json = to_json(s, false);
	assert_null(strstr(json, "hunter2"));
	assert_null(strstr(json, "bob@"));
	python_check(json, "assert q[0][\"example\"] == q[0][\"pattern\"] == "
			   "\"UPDATE users SET password = ? WHERE email = ?\"\n");
	free(json);
	sql_stats__free(s);

	s = sql_stats__new(&o);
	add(s, sql, MS, false, NULL);
	add(s, "UPDATE users SET password = 'x' WHERE email = 'y'", MS, false, NULL);
	json = to_json(s, false);
	python_check(json, "assert q[0][\"example\"] == \"UPDATE users SET password = \\x27hunter2\\x27 "
			   "WHERE email = \\x27bob@example.com\\x27\"\nassert q[0][\"count\"] == 2\n");
	free(json);
	sql_stats__free(s);
}

static void test_bad_bytes(void **state)
{
	static const char nul[] = "SELECT a\0 FROM t";
	struct sql_stats_opts o = { .show_literals = true };
	struct sql_stats *s = sql_stats__new(&o);
	struct sql_stats_summary sum;
	char *json;

	add(s, "SELECT 'caf\xe9' FROM \"t\xff\"", MS, true, "f\xc3 (\x01.py:1)");
	assert_int_equal(sql_stats__add(s, nul, sizeof(nul) - 1, false, MS, false, NULL), 0);
	assert_int_equal(sql_stats__add(s, NULL, 0, false, MS, false, NULL), 0);
	assert_int_equal(sql_stats__add(s, NULL, 3, false, MS, false, NULL), -EINVAL);
	sql_stats__summary(s, &sum);
	assert_int_equal(sum.invalid_utf8, 1);
	assert_int_equal(sum.nul_bytes, 1);
	assert_int_equal(sum.statements, 3);
	json = to_json(s, false);
	python_check(json, "assert s[\"invalid_utf8\"] == 1 and s[\"nul_bytes\"] == 1\n"
			   "assert any(x[\"pattern\"] == \"SELECT ? FROM \\\"t\\ufffd\\\"\" for x in q)\n"
			   "assert any(x[\"example\"] == \"SELECT a\\x00 FROM t\" for x in q)\n");
	free(json);
	sql_stats__free(s);
}

static void test_report(void **state)
{
	struct sql_stats *s = sql_stats__new(NULL);
	char *buf = NULL, long_sql[600];
	size_t len = 0, n;
	FILE *f = open_memstream(&buf, &len);

	n = sprintf(long_sql, "SELECT ");
	while (n < sizeof(long_sql) - 40)
		n += sprintf(long_sql + n, "column_%zu, ", n);
	sprintf(long_sql + n, "x FROM t");
	add(s, "SELECT 1", 2 * MS, false, "fast (a.py:1)");
	add(s, long_sql, 30 * MS, true, "slow (b.py:2)");
	add(s, long_sql, 10 * MS, false, "slow (b.py:2)");
	assert_int_equal(sql_stats__report(s, f, 1), 0);
	fclose(f);
	assert_non_null(strstr(buf, "SQL: 3 statements, 2 patterns, 1 errors\n"));
	assert_non_null(strstr(buf, "     COUNT  ERRORS     TOTAL_MS    MEAN_MS     P95_MS     MAX_MS  PATTERN\n"));
	assert_non_null(strstr(buf, "         2       1       40.000     20.000"));
	assert_non_null(strstr(buf, "  SELECT column_7, "));
	assert_non_null(strstr(buf, "\xe2\x80\xa6\n"));
	assert_non_null(strstr(buf, "<- slow (b.py:2) (2 of 2)\n"));
	assert_null(strstr(buf, "fast"));	/* top 1 */
	for (char *line = buf; *line; line = strchr(line, '\n') + 1)
		assert_true(strchr(line, '\n') - line < 200);
	free(buf);
	sql_stats__free(s);
}

static void test_many_patterns(void **state)
{
	struct sql_stats *s = sql_stats__new(NULL);
	const struct sql_pattern **v = calloc(SQL_STATS_DEFAULT_MAX_PATTERNS + 1, sizeof(*v));
	struct sql_stats_summary sum;
	char sql[64];

	for (int i = 0; i < 2500; i++) {
		snprintf(sql, sizeof(sql), "SELECT %%s FROM t%d", i);	/* no libpg_query parse */
		add(s, sql, (uint64_t)i * 1000, false, NULL);
	}
	sql_stats__summary(s, &sum);
	assert_int_equal(sum.patterns, SQL_STATS_DEFAULT_MAX_PATTERNS);
	assert_int_equal(sum.dropped_statements, 500);
	assert_true(sum.dropped_patterns >= 495 && sum.dropped_patterns <= 500);
	assert_int_equal(sql_stats__sorted(s, v, SQL_STATS_DEFAULT_MAX_PATTERNS + 1),
			 SQL_STATS_DEFAULT_MAX_PATTERNS + 1);
	for (int i = 1; i <= SQL_STATS_DEFAULT_MAX_PATTERNS; i++)
		assert_true(v[i - 1]->total_ns >= v[i]->total_ns);
	free(v);
	sql_stats__free(s);
}

/*
 * Statement texts seen before are not normalized again: the same patterns, counts, sites,
 * examples and summary as normalizing every one, with a cache small enough to evict all the
 * time, texts too long to be kept, cut texts, bad bytes and patterns over the cap.
 */
static void test_text_cache(void **state)
{
	struct sql_stats_opts on = { .max_patterns = 8, .text_cache = 3, .show_literals = true }, off = on;
	struct sql_stats *c, *u;
	struct sql_stats_summary sc, su;
	char sql[1200], ref[SQL_STATS_PATTERN_MAX], *jc, *ju;
	const char *pc, *pu;

	off.no_text_cache = true;
	c = sql_stats__new(&on);
	u = sql_stats__new(&off);
	assert_non_null(c);
	assert_non_null(u);
	srand(11);
	for (int i = 0; i < 4000; i++) {
		int k = rand() % 6, v = rand() % 3;
		bool cut = rand() % 5 == 0;
		size_t n;
		int rc, ru;

		switch (rand() % 4) {
		case 0:
			n = sprintf(sql, "SELECT a FROM t%d WHERE id = %d", k, v);
			break;
		case 1:
			n = sprintf(sql, "SELECT '\xff%d' FROM \"u%d\"", v, k);
			break;
		case 2:
			n = sprintf(sql, "SELECT b%c FROM v%d WHERE x = %d", 0, k, v);
			break;
		default:
			n = sprintf(sql, "SELECT %d, ", v);
			while (n < 600 + (size_t)k)
				n += sprintf(sql + n, "c%zu, ", n);
			n += sprintf(sql + n, "z FROM w");
		}
		rc = sql_stats__add_pattern(c, sql, n, cut, (uint64_t)i * 1000, i % 7 == 0,
					    i % 3 ? "f (a.py:1)" : NULL, &pc);
		ru = sql_stats__add_pattern(u, sql, n, cut, (uint64_t)i * 1000, i % 7 == 0,
					    i % 3 ? "f (a.py:1)" : NULL, &pu);
		assert_int_equal(rc, ru);
		assert_string_equal(pc, pu);
		sqlnorm__pattern(sql, n, cut, ref, sizeof(ref));
		assert_string_equal(pc, ref);
	}
	assert_true(sql_stats__text_hits(c) > 100);
	assert_int_equal(sql_stats__text_hits(u), 0);
	sql_stats__summary(c, &sc);
	sql_stats__summary(u, &su);
	assert_memory_equal(&sc, &su, sizeof(sc));
	assert_true(sc.dropped_statements > 0 && sc.invalid_utf8 > 0 && sc.nul_bytes > 0);
	jc = to_json(c, true);
	ju = to_json(u, true);
	assert_string_equal(jc, ju);
	free(jc);
	free(ju);
	sql_stats__free(c);
	sql_stats__free(u);

	/* the default cache: the second time a text comes, it is found */
	c = sql_stats__new(NULL);
	assert_int_equal(add(c, "SELECT 1", MS, false, NULL), 0);
	assert_int_equal(add(c, "SELECT 1", MS, false, NULL), 0);
	assert_int_equal(add(c, "SELECT 2", MS, false, NULL), 0);
	assert_int_equal(sql_stats__text_hits(c), 1);
	sql_stats__free(c);
}

static int teardown_group(void **state)
{
	sqlnorm__exit();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_and_latency),
		cmocka_unit_test(test_fingerprint_per_pattern),
		cmocka_unit_test(test_pattern_cap),
		cmocka_unit_test(test_call_sites),
		cmocka_unit_test(test_literal_hiding),
		cmocka_unit_test(test_bad_bytes),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_many_patterns),
		cmocka_unit_test(test_text_cache),
	};

	return cmocka_run_group_tests(tests, NULL, teardown_group);
}
