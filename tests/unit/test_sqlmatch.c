// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Pairing libpq sends with results, as the drivers' call sequences produce them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "pytrace_user.h"
#include "sqlmatch.h"
#include "sqlmode.h"
#include "sqltrace.h"

#define MAXQ 64

struct seen {
	struct sql_query q[MAXQ];
	char text[MAXQ][128];
	int n;
};

static void on_query(void *ctx, const struct sql_query *q)
{
	struct seen *s = ctx;

	assert_true(s->n < MAXQ);
	s->q[s->n] = *q;
	snprintf(s->text[s->n], sizeof(s->text[0]), "%.*s", (int)q->len, q->text);
	s->q[s->n].text = s->text[s->n];
	s->n++;
}

#define PID 100
#define CONN 0x1000

static void send(struct sql_match *m, uint64_t conn, uint64_t ts, uint32_t flags, const char *name,
		 const char *text)
{
	sql_match__send(m, PID, PID + 1, conn, ts, flags, name, name ? strlen(name) : 0, text,
			text ? strlen(text) : 0, 7);
}

struct fixture {
	struct sql_match *m;
	struct seen s;
};

static int fx_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->m = sql_match__new(0, on_query, &f->s);
	*state = f;
	return f->m ? 0 : -1;
}

static int fx_teardown(void **state)
{
	struct fixture *f = *state;

	sql_match__free(f->m);
	free(f);
	return 0;
}

/* PQexec = PQsendQuery, PQgetResult -> result, PQgetResult -> NULL */
static void test_sync_exec(void **state)
{
	struct fixture *f = *state;
	struct sql_match_stats st;

	send(f->m, CONN, 1000, 0, NULL, "SELECT 1");
	sql_match__result(f->m, PID, CONN, 1500, 2 /* PGRES_TUPLES_OK */);
	assert_int_equal(f->s.n, 0);
	sql_match__result(f->m, PID, CONN, 1600, SQL_ST_NULL);
	assert_int_equal(f->s.n, 1);
	assert_string_equal(f->s.text[0], "SELECT 1");
	assert_int_equal(f->s.q[0].start_ns, 1000);
	assert_int_equal(f->s.q[0].end_ns, 1600);
	assert_false(f->s.q[0].error);
	assert_int_equal(f->s.q[0].stack_id, 7);
	/* Drivers call PQgetResult again after NULL: nothing happens. */
	sql_match__result(f->m, PID, CONN, 1700, SQL_ST_NULL);
	sql_match__stats(f->m, &st);
	assert_int_equal(st.completed, 1);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.orphan_results, 0);
}

/* psycopg's async loop polls PQgetResult before the result is in: a NULL with no result yet. */
static void test_poll_before_result(void **state)
{
	struct fixture *f = *state;

	send(f->m, CONN, 10, SQL_F_PARAMS, NULL, "SELECT $1");
	sql_match__result(f->m, PID, CONN, 11, SQL_ST_NULL);
	assert_int_equal(f->s.n, 0);
	sql_match__result(f->m, PID, CONN, 20, 2);
	sql_match__result(f->m, PID, CONN, 21, SQL_ST_NULL);
	assert_int_equal(f->s.n, 1);
	assert_true(f->s.q[0].params);
	assert_int_equal(f->s.q[0].end_ns, 21);
}

static void test_error_result(void **state)
{
	struct fixture *f = *state;

	send(f->m, CONN, 10, 0, NULL, "SELECT * FROM missing");
	sql_match__result(f->m, PID, CONN, 20, 7 /* PGRES_FATAL_ERROR */);
	sql_match__result(f->m, PID, CONN, 21, SQL_ST_NULL);
	assert_int_equal(f->s.n, 1);
	assert_true(f->s.q[0].error);
}

/* A multi-statement text yields several results, then one NULL: one statement. */
static void test_multi_result(void **state)
{
	struct fixture *f = *state;

	send(f->m, CONN, 10, 0, NULL, "SELECT 1; SELECT 2");
	sql_match__result(f->m, PID, CONN, 20, 2);
	sql_match__result(f->m, PID, CONN, 21, 2);
	sql_match__result(f->m, PID, CONN, 22, SQL_ST_NULL);
	assert_int_equal(f->s.n, 1);
}

/* Pipeline: three sends and a sync, results in order, a NULL after each, the sync's result. */
static void test_pipeline(void **state)
{
	struct fixture *f = *state;
	struct sql_match_stats st;

	send(f->m, CONN, 10, SQL_F_PARAMS, NULL, "INSERT a");
	send(f->m, CONN, 11, SQL_F_PARAMS, NULL, "INSERT b");
	send(f->m, CONN, 12, SQL_F_PARAMS, NULL, "INSERT c");
	sql_match__sync(f->m, PID, CONN, 13);
	sql_match__result(f->m, PID, CONN, 20, 1);
	sql_match__result(f->m, PID, CONN, 21, SQL_ST_NULL);
	sql_match__result(f->m, PID, CONN, 22, 7);
	sql_match__result(f->m, PID, CONN, 23, SQL_ST_NULL);
	/* after an error the rest of the pipeline is aborted */
	sql_match__result(f->m, PID, CONN, 24, 11 /* PGRES_PIPELINE_ABORTED */);
	sql_match__result(f->m, PID, CONN, 25, SQL_ST_NULL);
	sql_match__result(f->m, PID, CONN, 26, 10 /* PGRES_PIPELINE_SYNC */);
	assert_int_equal(f->s.n, 3);
	assert_string_equal(f->s.text[0], "INSERT a");
	assert_false(f->s.q[0].error);
	assert_int_equal(f->s.q[0].end_ns, 21);
	assert_string_equal(f->s.text[1], "INSERT b");
	assert_true(f->s.q[1].error);
	assert_string_equal(f->s.text[2], "INSERT c");
	assert_true(f->s.q[2].error);
	assert_int_equal(f->s.q[2].start_ns, 12);
	sql_match__stats(f->m, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.orphan_results, 0);
}

/* One send of flags at ts on conn, its result (status) and the NULL result after it. */
static void round_trip(struct sql_match *m, uint64_t conn, uint64_t ts, uint32_t flags, const char *name,
		       const char *text, int32_t status)
{
	send(m, conn, ts, flags, name, text);
	sql_match__result(m, PID, conn, ts + 1, status);
	sql_match__result(m, PID, conn, ts + 2, SQL_ST_NULL);
}

/* psycopg 3 after prepare_threshold: PQsendPrepare(name, text), then PQsendQueryPrepared(name). */
static void test_prepared(void **state)
{
	struct fixture *f = *state;
	struct sql_match_stats st;

	round_trip(f->m, CONN, 10, SQL_F_PREPARE | SQL_F_PARAMS, "_pg3_0", "SELECT $1::int", 1);
	assert_int_equal(f->s.n, 0);	/* preparing is not running */
	round_trip(f->m, CONN, 20, SQL_F_PREPARED | SQL_F_PARAMS, "_pg3_0", NULL, 2);
	round_trip(f->m, CONN, 30, SQL_F_PREPARED | SQL_F_PARAMS, "_pg3_0", NULL, 2);
	assert_int_equal(f->s.n, 2);
	assert_string_equal(f->s.text[0], "SELECT $1::int");
	assert_string_equal(f->s.text[1], "SELECT $1::int");
	assert_true(f->s.q[1].prepared);
	/* Prepared on another connection: unknown here. */
	round_trip(f->m, CONN + 8, 40, SQL_F_PREPARED, "_pg3_0", NULL, 2);
	assert_int_equal(f->s.n, 3);
	assert_string_equal(f->s.text[2], "EXECUTE _pg3_0");
	assert_true(f->s.q[2].named_only);
	/* its text found in the driver (sqltrace.c's driver_text): from then on, as if prepared here */
	assert_false(sql_match__knows(f->m, PID, CONN + 8, "_pg3_0", 6));
	assert_true(sql_match__knows(f->m, PID, CONN, "_pg3_0", 6));
	assert_int_equal(sql_match__learn(f->m, PID, CONN + 8, "_pg3_0", 6, "SELECT $1::int * 2", 18, false, 43), 0);
	assert_true(sql_match__knows(f->m, PID, CONN + 8, "_pg3_0", 6));
	round_trip(f->m, CONN + 8, 50, SQL_F_PREPARED, "_pg3_0", NULL, 2);
	assert_int_equal(f->s.n, 4);
	assert_string_equal(f->s.text[3], "SELECT $1::int * 2");
	assert_false(f->s.q[3].named_only);
	sql_match__stats(f->m, &st);
	assert_int_equal(st.unknown_prepared, 1);
	assert_int_equal(st.learned, 1);
}

static void exec_(struct sql_match *m, uint64_t conn, uint64_t start, uint64_t end, uint32_t flags,
		  const char *name, const char *text, int32_t status)
{
	sql_match__exec(m, PID, PID + 1, conn, start, end, flags, name, name ? strlen(name) : 0, text,
			text ? strlen(text) : 0, 9, status);
}

/* The exec probes: PQexec*, PQprepare and PQexecPrepared each seen whole, at their return. */
static void test_exec_events(void **state)
{
	struct fixture *f = *state;
	struct sql_match_stats st;

	exec_(f->m, CONN, 10, 15, 0, NULL, "SELECT 1", 2);
	assert_int_equal(f->s.n, 1);
	assert_string_equal(f->s.text[0], "SELECT 1");
	assert_int_equal(f->s.q[0].start_ns, 10);
	assert_int_equal(f->s.q[0].end_ns, 15);
	assert_int_equal(f->s.q[0].stack_id, 9);
	assert_false(f->s.q[0].error);
	/* A failed statement, and one libpq refused to send (NULL result: reported as an error). */
	exec_(f->m, CONN, 20, 25, SQL_F_PARAMS, NULL, "SELECT 1/0", PGRES_FATAL_ERROR_);
	assert_true(f->s.q[1].error);
	assert_true(f->s.q[1].params);
	/* PQprepare defines; PQexecPrepared runs it, on this connection only. */
	exec_(f->m, CONN, 30, 31, SQL_F_PREPARE | SQL_F_PARAMS, "s1", "SELECT $1::int", 1);
	assert_int_equal(f->s.n, 2);
	exec_(f->m, CONN, 40, 42, SQL_F_PREPARED | SQL_F_PARAMS, "s1", NULL, 2);
	assert_int_equal(f->s.n, 3);
	assert_string_equal(f->s.text[2], "SELECT $1::int");
	assert_true(f->s.q[2].prepared);
	exec_(f->m, CONN + 8, 50, 52, SQL_F_PREPARED, "s1", NULL, 2);
	assert_string_equal(f->s.text[3], "EXECUTE s1");
	/* A text cut at the capture cap stays marked. */
	exec_(f->m, CONN, 60, 61, SQL_F_TRUNCATED, NULL, "SELECT a, b, c FROM", 2);
	assert_true(f->s.q[4].truncated);
	/* Statements queued by the send probes on the same connection are not disturbed. */
	send(f->m, CONN, 70, 0, NULL, "SELECT 2");
	exec_(f->m, CONN, 71, 72, 0, NULL, "SELECT 3", 2);
	sql_match__result(f->m, PID, CONN, 73, 2);
	sql_match__result(f->m, PID, CONN, 74, SQL_ST_NULL);
	assert_int_equal(f->s.n, 7);
	assert_string_equal(f->s.text[5], "SELECT 3");
	assert_string_equal(f->s.text[6], "SELECT 2");
	sql_match__stats(f->m, &st);
	assert_int_equal(st.completed, 7);
	assert_int_equal(st.unknown_prepared, 1);
	assert_int_equal(st.pending, 0);
}

/* Which probe set a process gets (sqlmode.h). */
static void test_probe_mode(void **state)
{
	struct sql_mode_in in = { .opt = SQL_PROBES_AUTO, .cur = SQL_SET_SEND };
	struct sql_mode_out out;

	(void)state;
	/* Learning: too few sends yet. */
	in.nested = SQL_LEARN_SENDS - 1;
	out = sql_mode__next(&in);
	assert_int_equal(out.set, SQL_SET_SEND);
	assert_false(out.pin);
	/* Enough, all from inside PQexec*: one probe pair per statement. */
	in.nested = SQL_LEARN_SENDS;
	out = sql_mode__next(&in);
	assert_int_equal(out.set, SQL_SET_EXEC);
	/* One direct PQsend* call: the application uses the asynchronous API; stay, for good. */
	in.direct = 1;
	out = sql_mode__next(&in);
	assert_int_equal(out.set, SQL_SET_SEND);
	assert_true(out.pin);
	in.pinned = true;
	in.direct = 0;
	out = sql_mode__next(&in);
	assert_int_equal(out.set, SQL_SET_SEND);
	/* On the exec probes: stay until a sentinel fires, then back for good. */
	in = (struct sql_mode_in){ .opt = SQL_PROBES_AUTO, .cur = SQL_SET_EXEC, .nested = 1000 };
	out = sql_mode__next(&in);
	assert_int_equal(out.set, SQL_SET_EXEC);
	assert_false(out.pin);
	in.async_calls = 1;
	out = sql_mode__next(&in);
	assert_int_equal(out.set, SQL_SET_SEND);
	assert_true(out.pin);
	/* --libpq-probes=send never moves; =exec starts there and still comes back. */
	in = (struct sql_mode_in){ .opt = SQL_PROBES_SEND, .cur = SQL_SET_SEND, .nested = 1000 };
	assert_int_equal(sql_mode__next(&in).set, SQL_SET_SEND);
	in = (struct sql_mode_in){ .opt = SQL_PROBES_EXEC, .cur = SQL_SET_EXEC, .async_calls = 3 };
	assert_int_equal(sql_mode__next(&in).set, SQL_SET_SEND);
}

/* Two connections interleaved on one thread (asyncio): each keeps its own queue. */
static void test_interleaved_connections(void **state)
{
	struct fixture *f = *state;

	send(f->m, CONN, 10, 0, NULL, "SELECT a");
	send(f->m, CONN + 8, 11, 0, NULL, "SELECT b");
	sql_match__result(f->m, PID, CONN + 8, 20, 2);
	sql_match__result(f->m, PID, CONN, 21, 2);
	sql_match__result(f->m, PID, CONN + 8, 22, SQL_ST_NULL);
	sql_match__result(f->m, PID, CONN, 23, SQL_ST_NULL);
	assert_int_equal(f->s.n, 2);
	assert_string_equal(f->s.text[0], "SELECT b");
	assert_int_equal(f->s.q[0].end_ns, 22);
	assert_string_equal(f->s.text[1], "SELECT a");
	assert_int_equal(f->s.q[1].end_ns, 23);
}

/* Results of statements sent before tracing began are counted, not matched. */
static void test_orphans_and_forget(void **state)
{
	struct fixture *f = *state;
	struct sql_match_stats st;

	sql_match__result(f->m, PID, CONN, 5, 2);
	sql_match__result(f->m, PID, CONN, 6, SQL_ST_NULL);
	send(f->m, CONN, 10, 0, NULL, "SELECT 1");
	sql_match__forget_pid(f->m, PID);
	sql_match__result(f->m, PID, CONN, 11, 2);
	sql_match__stats(f->m, &st);
	assert_int_equal(st.orphan_results, 2);
	assert_int_equal(st.evicted, 1);
	assert_int_equal(st.pending, 0);
	assert_int_equal(f->s.n, 0);
}

/* Memory stays bounded: connections beyond the cap evict the least recently used. */
static void test_connection_cap(void **state)
{
	struct seen s = {};
	struct sql_match *m = sql_match__new(4, on_query, &s);
	struct sql_match_stats st;
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		sql_match__send(m, PID, PID, 0x100 + i, 10 + i, 0, NULL, 0, "SELECT 1", 8, 0);
	sql_match__stats(m, &st);
	assert_int_equal(st.pending, 4);
	assert_int_equal(st.evicted, 6);
	/* the newest are still there */
	sql_match__result(m, PID, 0x109, 30, 2);
	sql_match__result(m, PID, 0x109, 31, SQL_ST_NULL);
	assert_int_equal(s.n, 1);
	/* and so is a long pipeline's tail when its queue overflows */
	for (i = 0; i < 100; i++)
		sql_match__send(m, PID, PID, 0x200, 100 + i, 0, NULL, 0, "SELECT 2", 8, 0);
	sql_match__stats(m, &st);
	assert_true(st.pending <= 4 + 64);
	sql_match__free(m);
}

/* The call site is the innermost frame of the application, not of a library or the stdlib. */
static void test_call_site(void **state)
{
	const char *django[] = {
		"<module> (/usr/bin/gunicorn:33)",
		"recipes (/srv/app/recipes/views.py:24)",
		"recipe_name (/srv/app/recipes/views.py:12)",
		"ForwardManyToOneDescriptor.__get__ (/usr/lib/python3/dist-packages/django/db/models/fields/related_descriptors.py:187)",
		"CursorWrapper._execute (/usr/lib/python3/dist-packages/django/db/backends/utils.py:84)",
	};
	const char *venv[] = {
		"main (/home/u/proj/run.py:3)",
		"execute (/home/u/venv/lib/python3.12/site-packages/psycopg/cursor.py:723)",
	};
	const char *stdlib_only[] = {
		"Thread._bootstrap (/usr/lib/python3.11/threading.py:995)",
		"<listcomp> (<frozen importlib._bootstrap>:241)",
		"[native]",
	};

	(void)state;
	assert_string_equal(sqltrace__call_site(django, 5), django[2]);
	assert_string_equal(sqltrace__call_site(venv, 2), venv[0]);
	assert_null(sqltrace__call_site(stdlib_only, 3));
	assert_null(sqltrace__call_site(NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sync_exec, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_poll_before_result, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_error_result, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_multi_result, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_pipeline, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_prepared, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_exec_events, fx_setup, fx_teardown),
		cmocka_unit_test(test_probe_mode),
		cmocka_unit_test_setup_teardown(test_interleaved_connections, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_orphans_and_forget, fx_setup, fx_teardown),
		cmocka_unit_test(test_connection_cap),
		cmocka_unit_test(test_call_site),
	};

	return cmocka_run_group_tests_name("sqlmatch", tests, NULL, NULL);
}
