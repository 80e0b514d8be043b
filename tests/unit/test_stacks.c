// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Stack aggregation: merging, cap, ordering, folded text, top functions, frame parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stacks.h"

#define ADD(a, w, ...) ({							\
	const char *_f[] = { __VA_ARGS__ };					\
	stack_agg__add(a, _f, sizeof(_f) / sizeof(_f[0]), w);			\
})

static int setup_agg(void **state)
{
	*state = stack_agg__new(0);
	return *state ? 0 : -1;
}

static int teardown_agg(void **state)
{
	stack_agg__free(*state);
	return 0;
}

/* Folded text of a, caller frees. */
static char *folded(const struct stack_agg *a)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(stack_agg__write_folded(a, f), 0);
	fclose(f);
	return buf;
}

static int read_str(struct stack_agg *a, const char *s)
{
	FILE *f = fmemopen((void *)s, strlen(s), "r");
	int err;

	assert_non_null(f);
	err = stack_agg__read_folded(a, f);
	fclose(f);
	return err;
}

static void test_merge_equal_stacks(void **state)
{
	struct stack_agg *a = *state;
	char buf[32];
	const char *fr[] = { "main (a.py:1)", buf };
	char *out;

	strcpy(buf, "leaf (a.py:2)");
	assert_int_equal(stack_agg__add(a, fr, 2, 1), 0);
	strcpy(buf, "other (a.py:3)");	/* frames are copied: the first stack is unchanged */
	assert_int_equal(stack_agg__add(a, fr, 2, 10), 0);
	strcpy(buf, "leaf (a.py:2)");
	assert_int_equal(stack_agg__add(a, fr, 2, 2), 0);
	assert_int_equal(ADD(a, 3, "main (a.py:1)", "leaf (a.py:2)"), 0);
	assert_int_equal(ADD(a, 5, "main (a.py:1)"), 0);

	assert_int_equal(stack_agg__count(a), 3);
	assert_int_equal(stack_agg__total(a), 21);
	assert_int_equal(stack_agg__dropped(a), 0);
	out = folded(a);
	assert_string_equal(out, "main (a.py:1) 5\n"
				 "main (a.py:1);leaf (a.py:2) 6\n"
				 "main (a.py:1);other (a.py:3) 10\n");
	free(out);
}

static void test_invalid_args(void **state)
{
	struct stack_agg *a = *state;
	const char *fr[] = { "a", NULL };

	assert_int_equal(stack_agg__add(a, fr, 0, 1), -EINVAL);
	assert_int_equal(stack_agg__add(a, fr, 2, 1), -EINVAL);
	assert_int_equal(stack_agg__count(a), 0);
	assert_int_equal(stack_agg__total(a), 0);
}

static void test_cap_and_dropped(void **state)
{
	struct stack_agg *a = stack_agg__new(3);
	char *out;

	assert_int_equal(ADD(a, 1, "r", "a"), 0);
	assert_int_equal(ADD(a, 2, "r", "b"), 0);
	assert_int_equal(ADD(a, 3, "r", "c"), 0);
	assert_int_equal(ADD(a, 4, "r", "d"), -E2BIG);
	assert_int_equal(ADD(a, 5, "r", "e"), -E2BIG);
	/* known stacks are still counted once the cap is reached */
	assert_int_equal(ADD(a, 10, "r", "a"), 0);

	assert_int_equal(stack_agg__count(a), 4);
	assert_int_equal(stack_agg__total(a), 25);
	assert_int_equal(stack_agg__dropped(a), 9);
	out = folded(a);
	assert_string_equal(out, STACK_AGG_DROPPED_FRAME " 9\nr;a 11\nr;b 2\nr;c 3\n");
	free(out);
	stack_agg__free(a);
}

/* A stack's id adds to it again without its frames, and to the overflow stack what went there. */
static void test_add_by_id(void **state)
{
	struct stack_agg *a = stack_agg__new(2), *b = stack_agg__new(2);
	const char *x[] = { "r", "f (a.py:1)", "[sql] SELECT ?" }, *y[] = { "r", "g (a.py:2)" }, *z[] = { "r", "h" };
	const char *d[] = { STACK_AGG_DROPPED_FRAME };
	size_t idx, idy, idz, idd, id2;
	char *fa, *fb;

	assert_int_equal(stack_agg__add_get_id(a, x, 3, 5, &idx), 0);
	assert_int_equal(stack_agg__add_get_id(a, y, 2, 1, &idy), 0);
	assert_int_equal(stack_agg__add_get_id(a, z, 2, 2, &idz), -E2BIG);	/* over the cap */
	assert_true(idx && idy && idz && idx != idy && idz != idx && idz != idy);
	assert_int_equal(stack_agg__add_get_id(a, x, 3, 1, &id2), 0);
	assert_int_equal(id2, idx);
	assert_int_equal(stack_agg__add_id(a, idx, 7), 0);
	assert_int_equal(stack_agg__add_id(a, idz, 3), -E2BIG);
	/* the overflow stack added by its own frame is counted like any stack, not as dropped */
	assert_int_equal(stack_agg__add_get_id(a, d, 1, 4, &idd), 0);
	assert_int_equal(stack_agg__add_id(a, idd, 1), 0);
	assert_int_equal(stack_agg__add_id(a, 0, 1), -EINVAL);
	assert_int_equal(stack_agg__add_id(a, stack_agg__count(a) + 1, 1), -EINVAL);

	/* the same as adding the frames each time */
	assert_int_equal(stack_agg__add(b, x, 3, 5), 0);
	assert_int_equal(stack_agg__add(b, y, 2, 1), 0);
	assert_int_equal(stack_agg__add(b, z, 2, 2), -E2BIG);
	assert_int_equal(stack_agg__add(b, x, 3, 1), 0);
	assert_int_equal(stack_agg__add(b, x, 3, 7), 0);
	assert_int_equal(stack_agg__add(b, z, 2, 3), -E2BIG);
	assert_int_equal(stack_agg__add(b, d, 1, 4), 0);
	assert_int_equal(stack_agg__add(b, d, 1, 1), 0);
	fa = folded(a);
	fb = folded(b);
	assert_string_equal(fa, fb);
	assert_string_equal(fa, STACK_AGG_DROPPED_FRAME " 10\nr;f (a.py:1);[sql] SELECT ? 13\nr;g (a.py:2) 1\n");
	assert_int_equal(stack_agg__total(a), stack_agg__total(b));
	assert_int_equal(stack_agg__dropped(a), 5);
	assert_int_equal(stack_agg__dropped(b), 5);
	assert_int_equal(stack_agg__add_get_id(a, NULL, 0, 1, &id2), -EINVAL);
	assert_int_equal(id2, 0);
	free(fa);
	free(fb);
	stack_agg__free(a);
	stack_agg__free(b);
}

static int collect(void *ctx, const char *const *frames, size_t n, uint64_t weight)
{
	char *buf = ctx;

	for (size_t i = 0; i < n; i++) {
		strcat(buf, frames[i]);
		strcat(buf, i + 1 < n ? ";" : "|");
	}
	return 0;
}

static int stop_at_second(void *ctx, const char *const *frames, size_t n, uint64_t weight)
{
	return ++*(int *)ctx == 2 ? 42 : 0;
}

static void test_sorted_by_folded(void **state)
{
	struct stack_agg *a = *state;
	char buf[256] = "";
	int calls = 0;

	ADD(a, 1, "b");
	ADD(a, 1, "a", "b");
	ADD(a, 1, "a!");	/* '!' < ';': "a!" sorts between "a" and "a;b" */
	ADD(a, 1, "a");
	ADD(a, 1, "B");
	ADD(a, 1, "a", "a");
	assert_int_equal(stack_agg__foreach(a, collect, buf), 0);
	assert_string_equal(buf, "B|a|a!|a;a|a;b|b|");
	assert_int_equal(stack_agg__foreach(a, stop_at_second, &calls), 42);
	assert_int_equal(calls, 2);
}

/* Below shared outer frames (compared by pointer, fold_cmp) the order is still the folded bytes'. */
static void test_sorted_below_shared(void **state)
{
	struct stack_agg *a = *state;
	char buf[256] = "";

	ADD(a, 1, "r", "a", "x");
	ADD(a, 1, "r", "a.b");	/* '.' < ';': before "r;a;x" although "a" < "a.b" */
	ADD(a, 1, "r", "a!");
	ADD(a, 1, "r");
	ADD(a, 1, "r", "a");
	ADD(a, 1, "r", "a", "x", "y");
	ADD(a, 1, "r", "a", "w");
	assert_int_equal(stack_agg__foreach(a, collect, buf), 0);
	assert_string_equal(buf, "r|r;a|r;a!|r;a.b|r;a;w|r;a;x|r;a;x;y|");
}

static int check_interned(void *ctx, const char *const *frames, size_t n, uint64_t weight)
{
	const char **seen = ctx;

	if (!*seen)
		*seen = frames[0];
	return *seen == frames[0] ? 0 : -1;
}

static void test_frames_interned(void **state)
{
	struct stack_agg *a = *state;
	const char *seen = NULL;

	ADD(a, 1, "root", "x");
	ADD(a, 1, "root", "y");
	assert_int_equal(stack_agg__foreach(a, check_interned, &seen), 0);
}

static void test_folded_escaping(void **state)
{
	struct stack_agg *a = *state;
	char *out;

	assert_int_equal(ADD(a, 2, "[sql] SELECT 1; SELECT 2", "multi\nline\r\nframe"), 0);
	/* the same stack once escaped: one stack */
	assert_int_equal(ADD(a, 3, "[sql] SELECT 1: SELECT 2", "multi line  frame"), 0);
	assert_int_equal(stack_agg__count(a), 1);
	out = folded(a);
	assert_string_equal(out, "[sql] SELECT 1: SELECT 2;multi line  frame 5\n");
	free(out);
}

static void test_folded_roundtrip(void **state)
{
	struct stack_agg *a = *state, *b = stack_agg__new(0);
	char path[512], *in = NULL, *out, *again;
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/flame_basic.folded", TEST_DATA_DIR);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(getdelim(&in, &cap, '\0', f) > 0);
	fclose(f);

	assert_int_equal(read_str(a, in), 0);
	assert_int_equal(stack_agg__count(a), 11);
	assert_int_equal(stack_agg__total(a), 62);
	out = folded(a);
	assert_string_equal(out, in);	/* the file is stored sorted */
	assert_int_equal(read_str(b, out), 0);
	again = folded(b);
	assert_string_equal(again, out);
	assert_int_equal(stack_agg__total(b), stack_agg__total(a));
	free(in);
	free(out);
	free(again);
	stack_agg__free(b);
}

static void test_read_folded_lines(void **state)
{
	struct stack_agg *a = *state;
	char *out;

	assert_int_equal(read_str(a, "# comment\n\nmain;work 3\r\nmain;work 4\nmain;frame with spaces 1\nlast 2"), 0);
	out = folded(a);
	assert_string_equal(out, "last 2\nmain;frame with spaces 1\nmain;work 7\n");
	free(out);
	assert_int_equal(read_str(a, "main;work\n"), -EINVAL);
	assert_int_equal(read_str(a, "main;work 12x\n"), -EINVAL);
	assert_int_equal(read_str(a, "main;work -1\n"), -EINVAL);
	assert_int_equal(read_str(a, " 5\n"), -EINVAL);
	assert_int_equal(stack_agg__total(a), 10);
}

static void test_read_folded_cap(void **state)
{
	struct stack_agg *a = stack_agg__new(1);

	/* the cap does not stop reading: the rest goes to the overflow stack */
	assert_int_equal(read_str(a, "a 1\nb 2\nc 3\na 4\n"), -E2BIG);
	assert_int_equal(stack_agg__total(a), 10);
	assert_int_equal(stack_agg__dropped(a), 5);
	stack_agg__free(a);
}

static void test_deep_and_many(void **state)
{
	struct stack_agg *a = *state;
	const char *frames[300];
	char names[300][32];
	size_t n = 0;

	for (int i = 0; i < 300; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d (d.py:%d)", i, i + 1);
		frames[i] = names[i];
	}
	assert_int_equal(stack_agg__add(a, frames, 300, 1), 0);
	assert_int_equal(stack_agg__add(a, frames, 300, 1), 0);
	/* 20000 distinct stacks: every table grows several times */
	for (int i = 0; i < 20000; i++) {
		char leaf[32];
		const char *fr[] = { "root", leaf };

		snprintf(leaf, sizeof(leaf), "leaf%d", i);
		assert_int_equal(stack_agg__add(a, fr, 2, (uint64_t)i), 0);
		n++;
	}
	assert_int_equal(stack_agg__count(a), n + 1);
	assert_int_equal(stack_agg__total(a), 2 + 20000ull * 19999 / 2);
}

static void test_top_functions(void **state)
{
	struct stack_agg *a = *state;
	struct stack_agg_fn top[10];
	int n;

	ADD(a, 5, "main (m.py:1)", "fib (f.py:3)", "fib (f.py:4)", "fib (f.py:4)");
	ADD(a, 3, "main (m.py:1)", "fib (f.py:3)", "[native]");
	ADD(a, 2, "main (m.py:2)", "io (m.py:9)");
	ADD(a, 1, "main (m.py:2)");

	n = stack_agg__top_functions(a, top, 10, true);
	assert_int_equal(n, 4);
	assert_string_equal(top[0].frame, "fib (f.py)");
	assert_int_equal(top[0].self, 5);
	assert_int_equal(top[0].total, 8);	/* recursion: each stack counted once */
	assert_string_equal(top[1].frame, "[native]");
	assert_int_equal(top[1].self, 3);
	assert_string_equal(top[2].frame, "io (m.py)");
	assert_string_equal(top[3].frame, "main (m.py)");
	assert_int_equal(top[3].self, 1);
	assert_int_equal(top[3].total, 11);

	n = stack_agg__top_functions(a, top, 2, false);
	assert_int_equal(n, 2);
	assert_string_equal(top[0].frame, "main (m.py)");
	assert_int_equal(top[0].total, 11);
	assert_string_equal(top[1].frame, "fib (f.py)");
	assert_int_equal(stack_agg__top_functions(a, top, 0, false), 0);
}

static void test_frame_parse(void **state)
{
	struct frame_parts p;

	frame__parse("Foo.bar (pkg/mod (x).py:123)", &p);
	assert_int_equal(p.name_len, 7);
	assert_memory_equal(p.name, "Foo.bar", 7);
	assert_non_null(p.file);
	assert_int_equal(p.file_len, 14);
	assert_memory_equal(p.file, "pkg/mod (x).py", 14);
	assert_true(p.has_line);
	assert_int_equal(p.line, 123);

	frame__parse("f (a.py:12)", &p);
	assert_int_equal(p.name_len, 1);
	assert_int_equal(p.file_len, 4);
	assert_memory_equal(p.file, "a.py", 4);
	assert_int_equal(p.line, 12);

	frame__parse("sleep (<built-in>:0)", &p);
	assert_true(p.has_line);
	assert_memory_equal(p.file, "<built-in>", p.file_len);

	frame__parse("g (C:\\x.py)", &p);
	assert_false(p.has_line);
	assert_memory_equal(p.file, "C:\\x.py", p.file_len);

	frame__parse("[sql] SELECT f (x:1)", &p);
	assert_null(p.file);
	assert_int_equal(p.name_len, strlen("[sql] SELECT f (x:1)"));

	frame__parse("plain", &p);
	assert_null(p.file);
	assert_int_equal(p.name_len, 5);
}

static void test_utf8_next(void **state)
{
	static const struct { const char *s; size_t n; uint32_t cp; } cases[] = {
		{ "A", 1, 'A' },
		{ "\xc3\xa9", 2, 0xe9 },
		{ "\xe5\x90\x8d", 3, 0x540d },
		{ "\xf0\x9f\x94\xa5", 4, 0x1f525 },
		{ "\xff", 1, 0xfffd },
		{ "\xc0\xaf", 1, 0xfffd },		/* overlong */
		{ "\xed\xa0\x80", 1, 0xfffd },		/* surrogate */
		{ "\xe5\x90", 1, 0xfffd },		/* truncated */
		{ "\xc3(", 1, 0xfffd },			/* bad continuation */
		{ "\xf4\x90\x80\x80", 1, 0xfffd },	/* > U+10FFFF */
	};
	uint32_t cp;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(utf8_next(cases[i].s, strlen(cases[i].s), &cp), cases[i].n);
		assert_int_equal(cp, cases[i].cp);
	}
	assert_int_equal(utf8_next("", 0, &cp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_merge_equal_stacks, setup_agg, teardown_agg),
		cmocka_unit_test_setup_teardown(test_invalid_args, setup_agg, teardown_agg),
		cmocka_unit_test(test_cap_and_dropped),
		cmocka_unit_test(test_add_by_id),
		cmocka_unit_test_setup_teardown(test_sorted_by_folded, setup_agg, teardown_agg),
		cmocka_unit_test_setup_teardown(test_sorted_below_shared, setup_agg, teardown_agg),
		cmocka_unit_test_setup_teardown(test_frames_interned, setup_agg, teardown_agg),
		cmocka_unit_test_setup_teardown(test_folded_escaping, setup_agg, teardown_agg),
		cmocka_unit_test_setup_teardown(test_folded_roundtrip, setup_agg, teardown_agg),
		cmocka_unit_test_setup_teardown(test_read_folded_lines, setup_agg, teardown_agg),
		cmocka_unit_test(test_read_folded_cap),
		cmocka_unit_test_setup_teardown(test_deep_and_many, setup_agg, teardown_agg),
		cmocka_unit_test_setup_teardown(test_top_functions, setup_agg, teardown_agg),
		cmocka_unit_test(test_frame_parse),
		cmocka_unit_test(test_utf8_next),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
