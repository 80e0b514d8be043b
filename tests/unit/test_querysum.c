// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* db.query.summary of real Django ORM statements, semconv's examples, cut text, no literals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "querysum.h"
#include "sqlnorm.h"

static const struct {
	const char *sql, *summary, *operation, *collection;
} cases[] = {
	/* the demo's views (demo/recipes): the N+1 page, its select_related twin, the detail page */
	{ "SELECT \"recipes_recipe\".\"id\", \"recipes_recipe\".\"title\", \"recipes_recipe\".\"author_id\" FROM "
	  "\"recipes_recipe\" ORDER BY \"recipes_recipe\".\"id\" ASC",
	  "SELECT recipes_recipe", "SELECT", "recipes_recipe" },
	{ "SELECT \"recipes_author\".\"id\", \"recipes_author\".\"name\" FROM \"recipes_author\" WHERE "
	  "\"recipes_author\".\"id\" = 17 LIMIT 21",
	  "SELECT recipes_author", "SELECT", "recipes_author" },
	{ "SELECT \"recipes_recipe\".\"id\", \"recipes_recipe\".\"title\", \"recipes_author\".\"name\" FROM "
	  "\"recipes_recipe\" INNER JOIN \"recipes_author\" ON (\"recipes_recipe\".\"author_id\" = "
	  "\"recipes_author\".\"id\") WHERE \"recipes_recipe\".\"id\" = 3 LIMIT 21",
	  "SELECT recipes_recipe recipes_author", "SELECT", "" },
	/* tests/data/sql_patterns.txt */
	{ "SELECT (1) AS \"a\" FROM \"django_session\" WHERE \"django_session\".\"session_key\" = 'x8fj2k' LIMIT 1",
	  "SELECT django_session", "SELECT", "django_session" },
	{ "INSERT INTO \"recipes_ingredient\" (\"recipe_id\", \"name\", \"grams\") VALUES (7, 'flour', 250.5), "
	  "(7, 'sugar', 100) RETURNING \"recipes_ingredient\".\"id\"",
	  "INSERT recipes_ingredient", "INSERT", "recipes_ingredient" },
	{ "UPDATE \"recipes_recipe\" SET \"views\" = (\"recipes_recipe\".\"views\" + 1) WHERE \"recipes_recipe\".\"id\" = 42",
	  "UPDATE recipes_recipe", "UPDATE", "recipes_recipe" },
	{ "SELECT COUNT(*) AS \"__count\" FROM \"recipes_recipe\" WHERE (\"recipes_recipe\".\"published\" AND "
	  "\"recipes_recipe\".\"created\" >= '2024-01-01T00:00:00+00:00'::timestamptz)",
	  "SELECT recipes_recipe", "SELECT", "recipes_recipe" },
	{ "SELECT \"t\".\"id\" FROM \"t\" WHERE NOT (\"t\".\"id\" IN (1, 2)) FOR UPDATE SKIP LOCKED",
	  "SELECT t", "SELECT", "t" },
	{ "DELETE FROM \"django_session\" WHERE \"django_session\".\"session_key\" IN ('a', 'b')",
	  "DELETE django_session", "DELETE", "django_session" },
	{ "SAVEPOINT \"s140240_x1\"", "SAVEPOINT", "SAVEPOINT", "" },
	{ "RELEASE SAVEPOINT \"s140240_x1\"", "RELEASE", "RELEASE", "" },
	{ "BEGIN", "BEGIN", "BEGIN", "" },
	{ "COMMIT", "COMMIT", "COMMIT", "" },
	/* Django's prefetch_related and subqueries */
	{ "SELECT \"auth_user\".\"id\" FROM \"auth_user\" WHERE \"auth_user\".\"id\" IN (SELECT U0.\"user_id\" FROM "
	  "\"auth_user_groups\" U0 WHERE U0.\"group_id\" = 3)",
	  "SELECT auth_user SELECT auth_user_groups", "SELECT", "" },
	{ "INSERT INTO \"orders\" (\"a\") VALUES (1) ON CONFLICT (\"a\") DO UPDATE SET \"a\" = EXCLUDED.\"a\"",
	  "INSERT orders", "INSERT", "orders" },
	/* semantic conventions' examples (docs/db/database-spans.md) */
	{ "SELECT * FROM wuser_table WHERE username = $1", "SELECT wuser_table", "SELECT", "wuser_table" },
	{ "INSERT INTO shipping_details (order_id, address) SELECT order_id, address FROM orders WHERE order_id = $1",
	  "INSERT shipping_details SELECT orders", "INSERT", "" },
	{ "SELECT * FROM songs, artists WHERE songs.artist_id = artists.id", "SELECT songs artists", "SELECT", "" },
	{ "SELECT order_date FROM (SELECT * FROM orders o JOIN customers c ON o.customer_id = c.customer_id) x",
	  "SELECT SELECT orders customers", "SELECT", "" },
	{ "SELECT * FROM \"song list\", public.\"Artists\"", "SELECT \"song list\" public.\"Artists\"", "SELECT", "" },
	/* a WITH clause first, as written; UNION is two selects */
	{ "WITH big AS (SELECT id FROM orders WHERE total > 100) SELECT * FROM big JOIN customers USING (id)",
	  "SELECT orders SELECT big customers", "SELECT", "" },
	{ "SELECT a FROM t1 UNION ALL SELECT a FROM t2", "SELECT t1 SELECT t2", "SELECT", "" },
	/* DDL and utility statements name their relation */
	{ "CREATE TABLE recipes_tag (id serial PRIMARY KEY, name text)", "CREATE recipes_tag", "CREATE", "recipes_tag" },
	{ "TRUNCATE recipes_tag", "TRUNCATE recipes_tag", "TRUNCATE", "recipes_tag" },
	{ "SET search_path TO 'secret_schema'", "SET", "SET", "" },
	/* two statements in one call */
	{ "BEGIN; UPDATE accounts SET balance = balance - 5 WHERE id = 9", "BEGIN UPDATE accounts", "BEGIN", "accounts" },
};

static void test_parse_tree(void **state)
{
	struct query_summary s;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		querysum__from_text(cases[i].sql, strlen(cases[i].sql), false, &s);
		if (strcmp(s.summary, cases[i].summary) || strcmp(s.operation, cases[i].operation) ||
		    strcmp(s.collection, cases[i].collection))
			fail_msg("%s\n got [%s] [%s] [%s]\nwant [%s] [%s] [%s]", cases[i].sql, s.summary, s.operation,
				 s.collection, cases[i].summary, cases[i].operation, cases[i].collection);
		assert_true(s.from_parse_tree);
	}
}

/* cut text (the capture cap) and unparsable text: the pattern's keywords and names */
static void test_fallback(void **state)
{
	const char *sql = "SELECT \"recipes_recipe\".\"id\", \"recipes_author\".\"name\" FROM \"recipes_recipe\" "
			  "INNER JOIN \"recipes_author\" ON (\"recipes_recipe\".\"author_id\" = \"recipes_author\".\"id\") "
			  "WHERE \"recipes_recipe\".\"title\" = 'my secret title' AND \"recipes_recipe\".\"id\" IN (SELECT";
	struct query_summary s;

	querysum__from_text(sql, strlen(sql), true, &s);
	assert_false(s.from_parse_tree);
	assert_string_equal(s.summary, "SELECT recipes_recipe recipes_author");
	assert_string_equal(s.operation, "SELECT");
	assert_string_equal(s.collection, "");

	querysum__from_text(sql, 60, true, &s);	/* cut before FROM */
	assert_string_equal(s.summary, "SELECT");

	static const char *const cut[][2] = {
		{ "UPDATE \"recipes_recipe\" SET \"views\" = (\"recipes_recipe\".\"views\" + 1) WHERE \"recipes_rec",
		  "UPDATE recipes_recipe" },
		{ "INSERT INTO \"orders\" (\"a\", \"b\") VALUES (1, 'x'), (2, 'y'), (3, ", "INSERT orders" },
		{ "DELETE FROM public.\"Sessions\" WHERE id = 1 AND x", "DELETE public.\"Sessions\"" },
		{ "SELECT * FROM t WHERE id IN (SELECT x FROM u) FOR UPDATE OF t NOWAIT AND", "SELECT t SELECT u" },
	};
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		querysum__from_text(cut[i][0], strlen(cut[i][0]), true, &s);
		if (strcmp(s.summary, cut[i][1]))
			fail_msg("%s: [%s]", cut[i][0], s.summary);
	}
	/* not SQL PostgreSQL parses: the pattern still gives operation and table */
	querysum__from_text("SELECT FROM FROM x WHERE", 24, false, &s);
	assert_false(s.from_parse_tree);
	assert_string_equal(s.operation, "SELECT");
}

/* 255 characters at most, never cut inside a name */
static void test_bounded(void **state)
{
	char sql[8192], name[64];
	struct query_summary s;
	size_t n = snprintf(sql, sizeof(sql), "SELECT * FROM ");

	for (int i = 0; i < 60; i++) {
		snprintf(name, sizeof(name), "table_number_%02d", i);
		n += snprintf(sql + n, sizeof(sql) - n, "%s%s", i ? ", " : "", name);
	}
	querysum__from_text(sql, n, false, &s);
	assert_true(strlen(s.summary) <= QUERYSUM_MAX_LEN);
	assert_true(strlen(s.summary) > 200);
	/* whole names only: the summary ends with a complete one */
	const char *last = strrchr(s.summary, ' ') + 1;

	assert_int_equal(strlen(last), strlen("table_number_00"));
	assert_int_equal(strncmp(last, "table_number_", 13), 0);
}

/* no literal from any fixture statement reaches a summary */
static void test_no_literals(void **state)
{
	FILE *f = fopen(TEST_DATA_DIR "/sql_patterns.txt", "r");
	char line[4096];
	struct query_summary s;
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\n");

		if (strncmp(line, "< ", 2))
			continue;
		line[len] = '\0';
		for (int cut = 0; cut < 2; cut++) {
			querysum__from_text(line + 2, cut ? (len - 2) / 2 : len - 2, cut, &s);
			assert_null(strchr(s.summary, '\''));
			assert_null(strchr(s.summary, '?'));
			assert_null(strchr(s.summary, '$'));
			for (const char *p = s.summary; *p; p++)
				if (*p >= '0' && *p <= '9')
					/* digits only inside identifiers */
					assert_true(p > s.summary && p[-1] != ' ');
		}
		n++;
	}
	fclose(f);
	assert_true(n > 20);
}

static int teardown_all(void **state)
{
	sqlnorm__exit();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_tree),
		cmocka_unit_test(test_fallback),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_no_literals),
	};

	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
