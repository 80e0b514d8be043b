// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* SQL normalizer: fixture table, literal-only differences, cut text, hostile bytes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pg_query.h>

#include "sqlnorm.h"
#include "stacks.h"

#define ELLIPSIS "\xe2\x80\xa6"

static char buf[4096];

static const char *pat(const char *s, bool truncated)
{
	size_t n = sqlnorm__pattern(s, strlen(s), truncated, buf, sizeof(buf));

	assert_int_equal(n, strlen(buf));
	return buf;
}

/* valid UTF-8, where U+FFFD only appears as its own encoding */
static void assert_utf8(const char *s, size_t len)
{
	while (len) {
		uint32_t cp;
		size_t n = utf8_next(s, len, &cp);

		if (cp == 0xfffd && (n != 3 || memcmp(s, "\xef\xbf\xbd", 3)))
			fail_msg("invalid UTF-8 at \"%.20s\"", s);
		assert_true(cp != 0);
		s += n;
		len -= n;
	}
}

struct fixture {
	char *in[128], *exp[128];
	size_t n;
};

static void load_fixture(struct fixture *fx)
{
	FILE *f = fopen(TEST_DATA_DIR "/sql_patterns.txt", "r");
	char line[4096];

	assert_non_null(f);
	memset(fx, 0, sizeof(*fx));
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '<') {
			assert_true(fx->n < 128);
			fx->in[fx->n] = strdup(line + 2);
		} else if (line[0] == '>') {
			assert_non_null(fx->in[fx->n]);
			fx->exp[fx->n++] = strdup(line + 2);
		}
	}
	fclose(f);
	assert_true(fx->n >= 30);
}

static void free_fixture(struct fixture *fx)
{
	for (size_t i = 0; i < fx->n; i++) {
		free(fx->in[i]);
		free(fx->exp[i]);
	}
}

static void test_fixture_table(void **state)
{
	struct fixture fx;
	char again[4096];

	load_fixture(&fx);
	for (size_t i = 0; i < fx.n; i++) {
		if (strcmp(pat(fx.in[i], false), fx.exp[i]) != 0)
			fail_msg("\n in:  %s\n exp: %s\n got: %s", fx.in[i], fx.exp[i], buf);
		/* a complete pattern is its own pattern */
		sqlnorm__pattern(buf, strlen(buf), false, again, sizeof(again));
		assert_string_equal(again, buf);
	}
	free_fixture(&fx);
}

static void test_literals_only_differ(void **state)
{
	static const char *const pairs[][2] = {
		{ "SELECT * FROM t WHERE id = 1", "select * from T where ID = 99999" },
		{ "SELECT * FROM t WHERE id IN (1)", "SELECT * FROM t WHERE id IN (1, 2, 3, 4)" },
		{ "SELECT * FROM t WHERE name = 'a'", "SELECT * FROM t WHERE name = E'b\\'c'" },
		{ "INSERT INTO t (a) VALUES (1)", "INSERT INTO t (a) VALUES (2), (3), (4)" },
		{ "SELECT * FROM t WHERE x = ANY(ARRAY[1])", "SELECT * FROM t WHERE x = ANY(ARRAY[4, 5, 6])" },
		{ "SELECT * FROM t WHERE x > -1.5", "SELECT * FROM t WHERE x > 2e10" },
		{ "SELECT $$a$$ FROM t -- one", "SELECT 'b' FROM t /* two */" },
		{ "SELECT \"t\".\"id\" FROM \"t\" WHERE \"t\".\"u\" = 5 LIMIT 21",
		  "SELECT \"t\".\"id\" FROM \"t\" WHERE \"t\".\"u\" = 6 LIMIT 21" },
	};
	char a[256];

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		const char *x = pairs[i][0], *y = pairs[i][1];
		bool pa, pb;
		uint64_t fa, fb;

		sqlnorm__pattern(x, strlen(x), false, a, sizeof(a));
		assert_string_equal(pat(y, false), a);
		fa = sqlnorm__fingerprint(x, strlen(x), false, a, &pa);
		fb = sqlnorm__fingerprint(y, strlen(y), false, buf, &pb);
		assert_true(pa && pb);
		assert_int_equal(fa, fb);
	}
	/* a different table is a different statement */
	sqlnorm__pattern("SELECT 1 FROM a", 15, false, a, sizeof(a));
	assert_string_not_equal(pat("SELECT 1 FROM b", false), a);
}

static void test_pg_fingerprint(void **state)
{
	PgQueryFingerprintResult r = pg_query_fingerprint("SELECT 1");
	uint64_t f1, f2;
	bool from;

	assert_null(r.error);
	f1 = sqlnorm__fingerprint("SELECT 1", 8, false, pat("SELECT 1", false), &from);
	assert_true(from);
	assert_int_equal(f1, r.fingerprint);
	f2 = sqlnorm__fingerprint("SELECT 2;", 9, false, pat("SELECT 2;", false), &from);
	assert_true(from);
	assert_int_equal(f1, f2);
	pg_query_free_fingerprint_result(r);

	/* text that does not parse, text cut short, NUL inside: the pattern's hash */
	assert_int_equal(sqlnorm__fingerprint("SELECT %s", 9, false, pat("SELECT %s", false), &from),
			 sqlnorm__hash("SELECT ?"));
	assert_false(from);
	assert_int_equal(sqlnorm__fingerprint("SELECT 1", 8, true, pat("SELECT 1", true), &from),
			 sqlnorm__hash("SELECT ? " ELLIPSIS));
	assert_false(from);
	assert_int_equal(sqlnorm__fingerprint("SELECT 1\0 x", 11, false, "SELECT ? x", &from),
			 sqlnorm__hash("SELECT ? x"));
	assert_false(from);
	assert_int_equal(sqlnorm__fingerprint("SELECT 'a", 9, false, pat("SELECT 'a", false), NULL),
			 sqlnorm__hash("SELECT ? " ELLIPSIS));
	/* FNV-1a test vector */
	assert_int_equal(sqlnorm__hash("a"), 0xaf63dc4c8601ec8cULL);
}

static void test_truncated(void **state)
{
	static const char *const cases[][2] = {
		{ "SELECT * FROM t WHERE a IN (1, 2, 3", "SELECT * FROM t WHERE a IN (... " ELLIPSIS },
		{ "SELECT * FROM t WHERE a IN (1, 2, 3, 444", "SELECT * FROM t WHERE a IN (... " ELLIPSIS },
		{ "INSERT INTO t VALUES (1, 2), (3, 4), (5,", "INSERT INTO t VALUES (...) " ELLIPSIS },
		{ "INSERT INTO t VALUES (1, 2", "INSERT INTO t VALUES (... " ELLIPSIS },
		{ "SELECT * FROM t WHERE id IN ((1, 2), (3,", "SELECT * FROM t WHERE id IN (... " ELLIPSIS },
		/* the partial word or operator at the cut is dropped */
		{ "SELECT * FROM tab", "SELECT * FROM " ELLIPSIS },
		{ "SELECT * FROM t WHERE a <", "SELECT * FROM t WHERE a " ELLIPSIS },
		{ "SELECT a::", "SELECT a " ELLIPSIS },
		{ "SELECT a ", "SELECT a " ELLIPSIS },
		{ "SELECT a FROM t WHERE x = 'abc", "SELECT a FROM t WHERE x = ? " ELLIPSIS },
		{ "SELECT a FROM t WHERE x = 12", "SELECT a FROM t WHERE x = ? " ELLIPSIS },
		{ "SELECT a /* comm", "SELECT a " ELLIPSIS },
		{ "SELECT \"Abc", "SELECT " ELLIPSIS },
		{ "", ELLIPSIS },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(pat(cases[i][0], true), cases[i][1]);
	/* unterminated literals and comments mark complete text as cut, too */
	assert_string_equal(pat("SELECT $$ab", false), "SELECT ? " ELLIPSIS);
	assert_string_equal(pat("SELECT E'a\\'", false), "SELECT ? " ELLIPSIS);
	assert_string_equal(pat("SELECT 1 /* x", false), "SELECT ? " ELLIPSIS);
	assert_true(sqlnorm__is_cut(pat("SELECT 'x", false)));
	assert_false(sqlnorm__is_cut(pat("SELECT 'x'", false)));
	/* the same prefix gives the same pattern */
	assert_string_equal(pat("SELECT * FROM t WHERE a IN (1, 2", true),
			    "SELECT * FROM t WHERE a IN (... " ELLIPSIS);
}

static void check_prefixes(const char *s, size_t outsize)
{
	size_t len = strlen(s);
	char *out = malloc(outsize);

	for (size_t k = 0; k <= len; k++) {
		for (int t = 0; t < 2; t++) {
			size_t n = sqlnorm__pattern(s, k, t, out, outsize);

			assert_true(n < outsize);
			assert_int_equal(n, strlen(out));
			assert_utf8(out, n);
			if (t)
				assert_true(sqlnorm__is_cut(out));
		}
	}
	free(out);
}

static void test_every_prefix(void **state)
{
	static const char *const extra[] = {
		"SELECT E'\\xff\\'', U&\"a\"\"b\", $x$ $ $y$ $x$, /* /* */ */ 1 -- end\n, \xc3\xa9t\xc3\xa9",
		"INSERT INTO \"t\" VALUES (1, '\xe2\x82\xac'), ($1, %(p)s), (%s, ?) RETURNING \"id\";",
		"SELECT \xe2\x82\xac\xe2\x82, 'a\xff', \"\xf0\x9f\x98\x80\" FROM t WHERE a IN (-1, +2.5e3)",
	};
	struct fixture fx;

	load_fixture(&fx);
	for (size_t i = 0; i < fx.n; i++) {
		check_prefixes(fx.in[i], sizeof(buf));
		check_prefixes(fx.in[i], 40);
	}
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		check_prefixes(extra[i], sizeof(buf));
		check_prefixes(extra[i], SQLNORM_MIN_OUT);
		check_prefixes(extra[i], 23);
	}
	free_fixture(&fx);
}

static void test_bad_bytes(void **state)
{
	static const char nul[] = "SELECT a\0b FROM t WHERE c = 'x\0y'";
	char small[SQLNORM_MIN_OUT - 1] = "zz";

	assert_string_equal(pat("SELECT \xff\xfe FROM t\x80x", false),
			    "SELECT \xef\xbf\xbd\xef\xbf\xbd FROM t\xef\xbf\xbdx");
	assert_string_equal(pat("SELECT \"a\xc3\" FROM t", false), "SELECT \"a\xef\xbf\xbd\" FROM t");
	/* overlong and surrogate encodings */
	assert_string_equal(pat("SELECT x\xc0\xaf, y\xed\xa0\x80", false),
			    "SELECT x\xef\xbf\xbd\xef\xbf\xbd, y\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(pat("SELECT 'caf\xe9'", false), "SELECT ?");
	sqlnorm__pattern(nul, sizeof(nul) - 1, false, buf, sizeof(buf));
	assert_string_equal(buf, "SELECT a b FROM t WHERE c = ?");
	assert_string_equal(pat("SELECT\x01\x02 1\x7f", false), "SELECT ?");
	/* too small a buffer: empty; no buffer: nothing written */
	assert_int_equal(sqlnorm__pattern("SELECT 1", 8, false, small, sizeof(small)), 0);
	assert_string_equal(small, "");
	assert_int_equal(sqlnorm__pattern("SELECT 1", 8, false, NULL, 0), 0);
	assert_int_equal(sqlnorm__pattern(NULL, 0, false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

static void test_bounded_output(void **state)
{
	char big[20000], out[64];
	size_t n = 0, len;

	n += sprintf(big, "SELECT ");
	while (n < sizeof(big) - 40)
		n += sprintf(big + n, "col_%zu, ", n);
	sprintf(big + n, "x FROM t");
	len = sqlnorm__pattern(big, strlen(big), false, out, sizeof(out));
	assert_true(len < sizeof(out));
	assert_true(sqlnorm__is_cut(out));
	assert_memory_equal(out, "SELECT col_7, col_", 18);
	/* a long IN list still collapses in a small buffer */
	n = sprintf(big, "SELECT * FROM t WHERE id IN (");
	while (n < sizeof(big) - 40)
		n += sprintf(big + n, "%zu, ", n);
	sprintf(big + n, "1) AND x = 'y'");
	assert_string_equal(pat(big, false), "SELECT * FROM t WHERE id IN (...) AND x = ?");
	/* so do many VALUES rows, and repeated rows that are not plain values */
	n = sprintf(big, "INSERT INTO t (a, b) VALUES ");
	while (n < sizeof(big) - 40)
		n += sprintf(big + n, "(%zu, 'v'), ", n);
	sprintf(big + n, "(1, 'x') RETURNING id");
	assert_string_equal(pat(big, false), "INSERT INTO t (a, b) VALUES (...) RETURNING id");
	n = sprintf(big, "INSERT INTO t (a, b) VALUES ");
	while (n < sizeof(big) - 40)
		n += sprintf(big + n, "(%zu, now()), ", n);
	sprintf(big + n, "(1, now())");
	assert_string_equal(pat(big, false), "INSERT INTO t (a, b) VALUES (?, now())");
	assert_string_equal(pat("INSERT INTO t VALUES (1, now()), (2, 'x'), (3, 'y'), (4, now())", false),
			    "INSERT INTO t VALUES (?, now()), (...), (?, now())");
}

/*
 * Words are folded by ASCII rules and copied a run at a time: a run that crosses the end of
 * the buffer is dropped whole (no half words) or, inside a value list, squashed to "...".
 * Expected values are those of the byte-at-a-time normalizer this replaced.
 */
static void test_words_at_buffer_end(void **state)
{
	static const struct { const char *in; size_t size; const char *out; } cases[] = {
		{ "SeLeCt Current_Date, \"MiXed\", \xc3\x89" "Clair, AbC_9$x, select_x, _Under FROM Tbl WHERE nulls IS NOT NULL",
		  128, "SELECT CURRENT_DATE, \"MiXed\", \xc3\x89" "clair, abc_9$x, select_x, _under FROM tbl WHERE NULLS IS NOT NULL" },
		{ "SeLeCt Current_Date, \"MiXed\", \xc3\x89" "Clair, AbC_9$x", 48,
		  "SELECT CURRENT_DATE, \"MiXed\", \xc3\x89" "clair, " ELLIPSIS },
		{ "SELECT very_long_identifier_name_here FROM t", 40, "SELECT " ELLIPSIS },
		{ "SELECT very_long_identifier_name_here FROM t", 48, "SELECT very_long_identifier_name_here FROM " ELLIPSIS },
		{ "SELECT \"Quoted_Long_Name_\xc3\xa9_Here\" FROM t", 32, "SELECT " ELLIPSIS },
		{ "SELECT \"Quoted_Long_Name_\xc3\xa9_Here\" FROM t", 40, "SELECT \"Quoted_Long_Name_\xc3\xa9_Here\" " ELLIPSIS },
		{ "SELECT * FROM t WHERE id IN (1::Some_Very_Long_Type_Name_Here, 2::int) AND x = 1", 40,
		  "SELECT * FROM t WHERE id IN (...) " ELLIPSIS },
		{ "SELECT * FROM t WHERE id IN (1::Some_Very_Long_Type_Name_Here, 2::int) AND x = 1", 48,
		  "SELECT * FROM t WHERE id IN (...) AND x = ?" },
		{ "SELECT * FROM t WHERE id IN (1::Some_Very_Long_Type_Name_Here, 2::int", 40,
		  "SELECT * FROM t WHERE id IN (..." },
	};
	char out[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sqlnorm__pattern(cases[i].in, strlen(cases[i].in), false, out, cases[i].size);
		assert_string_equal(out, cases[i].out);
	}
}

static void test_random_bytes(void **state)
{
	static const char alpha[] = "SELECT'\"$-/*()[],;:.%?eEuU&xX01 \n\\abc\xc3\xa9\xff";
	char in[96], out[128];

	srand(7);
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = rand() % sizeof(in), n;

		for (size_t i = 0; i < len; i++)
			in[i] = rand() % 8 ? alpha[rand() % (sizeof(alpha) - 1)] : (char)rand();
		n = sqlnorm__pattern(in, len, rand() & 1, out, sizeof(out));
		assert_true(n < sizeof(out));
		assert_int_equal(n, strlen(out));
		assert_utf8(out, n);
	}
}

static void test_operation(void **state)
{
	static const char *const cases[][2] = {
		{ "SELECT ?", "SELECT" },
		{ "insert into t values (1)", "INSERT" },
		{ "  (SELECT 1) UNION (SELECT 2)", "SELECT" },
		{ "WITH a AS (SELECT 1), b AS (UPDATE t SET x = 1 RETURNING x) DELETE FROM u", "DELETE" },
		{ "WITH RECURSIVE \"select\" AS (SELECT 1) SELECT * FROM \"select\"", "SELECT" },
		{ "WITH x AS (SELECT 1) TABLE x", "WITH" },
		{ "BEGIN", "BEGIN" },
		{ "commit", "COMMIT" },
		{ "SAVEPOINT \"s1\"", "SAVEPOINT" },
		{ "vacuum analyze t", "VACUUM" },
		{ "[other patterns]", "" },
		{ "", "" },
	};
	char op[8];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sqlnorm__operation(cases[i][0], buf, 32);
		assert_string_equal(buf, cases[i][1]);
	}
	assert_int_equal(sqlnorm__operation("SAVEPOINT x", op, sizeof(op)), 7);
	assert_string_equal(op, "SAVEPOI");
}

static int teardown_group(void **state)
{
	sqlnorm__exit();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_table),
		cmocka_unit_test(test_literals_only_differ),
		cmocka_unit_test(test_pg_fingerprint),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_bad_bytes),
		cmocka_unit_test(test_bounded_output),
		cmocka_unit_test(test_words_at_buffer_end),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_operation),
	};

	return cmocka_run_group_tests(tests, NULL, teardown_group);
}
