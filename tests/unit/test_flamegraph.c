// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* SVG flame graph writer: escaping, structure, colours, omission, and a golden file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "flamegraph.h"
#include "stacks.h"

#define ADD(a, w, ...) ({							\
	const char *_f[] = { __VA_ARGS__ };					\
	stack_agg__add(a, _f, sizeof(_f) / sizeof(_f[0]), w);			\
})

static char *read_file(const char *path)
{
	char *buf = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	if (getdelim(&buf, &cap, '\0', f) < 0) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static struct stack_agg *load_basic(void)
{
	struct stack_agg *a = stack_agg__new(0);
	FILE *f = fopen(TEST_DATA_DIR "/flame_basic.folded", "r");

	assert_non_null(f);
	assert_int_equal(stack_agg__read_folded(a, f), 0);
	fclose(f);
	return a;
}

static int setup_basic(void **state)
{
	*state = load_basic();
	return 0;
}

static int setup_empty(void **state)
{
	*state = stack_agg__new(0);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	stack_agg__free(*state);
	return 0;
}

/* noinline: at -O3 gcc takes the result for a pointer to the local buf (-Wdangling-pointer) */
__attribute__((noinline))
static char *render(const struct stack_agg *a, const struct flame_opts *opts)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(flamegraph__write_svg(a, f, opts), 0);
	fclose(f);
	return buf;
}

static int count(const char *s, const char *needle)
{
	int n = 0;

	for (; (s = strstr(s, needle)); s += strlen(needle))
		n++;
	return n;
}

/* fill="..." of the frame whose title starts with name, copied into col */
static void fill_of(const char *svg, const char *name, char *col, size_t size)
{
	char key[256];
	const char *p, *e;

	snprintf(key, sizeof(key), "<title>%s (", name);
	p = strstr(svg, key);
	assert_non_null(p);
	p = strstr(p, "fill=\"");
	assert_non_null(p);
	p += 6;
	e = strchr(p, '"');
	assert_true((size_t)(e - p) < size);
	memcpy(col, p, e - p);
	col[e - p] = '\0';
}

/* Every byte sequence decodes, and each U+FFFD is a real EF BF BD, not an invalid byte. */
static void assert_valid_utf8(const char *s)
{
	size_t len = strlen(s);

	while (len) {
		uint32_t cp;
		size_t n = utf8_next(s, len, &cp);

		if (cp == 0xfffd)
			assert_memory_equal(s, "\xef\xbf\xbd", 3);
		s += n;
		len -= n;
	}
}

static void test_escaping(void **state)
{
	struct stack_agg *a = *state;
	char *svg;

	ADD(a, 3, "<module> (a&b.py:1)", "say \"hi\" it's (x.py:2)", "bad \xff\xfe utf8 \xe5\x90 end", "ctl\x01x");
	ADD(a, 1, "名前 (ü.py:3)");
	svg = render(a, NULL);
	assert_non_null(strstr(svg, "<title>&lt;module&gt; (a&amp;b.py:1) (3 samples, 75.00%)</title>"));
	assert_non_null(strstr(svg, "<title>say &quot;hi&quot; it&apos;s (x.py:2) (3 samples, 75.00%)</title>"));
	assert_non_null(strstr(svg, "<title>bad \xef\xbf\xbd\xef\xbf\xbd utf8 \xef\xbf\xbd\xef\xbf\xbd end (3 samples"));
	assert_non_null(strstr(svg, "<title>ctl\xef\xbf\xbdx (3 samples"));
	assert_non_null(strstr(svg, "<title>名前 (ü.py:3) (1 samples, 25.00%)</title>"));
	assert_null(strstr(svg, "a&b"));
	assert_null(strstr(svg, "\x01"));
	assert_valid_utf8(svg);
	free(svg);
}

static void test_structure(void **state)
{
	struct stack_agg *a = *state;
	struct flame_opts o = { .title = "T <1>", .subtitle = "pid 1234, 99 Hz, 12 s" };
	char *svg = render(a, &o);

	/* 30 distinct frames in the tree plus "all": one <g> each, plus the frames container */
	assert_int_equal(count(svg, "<title>"), 31);
	assert_int_equal(count(svg, "<g "), 32);
	assert_int_equal(count(svg, "<g id=\"frames\">"), 1);
	assert_int_equal(count(svg, "<rect "), 32);	/* frames and the background */
	assert_int_equal(count(svg, "</text></g>"), 31);
	assert_non_null(strstr(svg, "<title>all (62 samples, 100.00%)</title>"));
	assert_non_null(strstr(svg, "<title>main (app.py:31) (34 samples, 54.84%)</title>"));
	/* merged under the same parent: fib (fib.py:4) appears at two depths, 12 and 9 */
	assert_non_null(strstr(svg, "<title>fib (fib.py:4) (12 samples, 19.35%)</title>"));
	assert_non_null(strstr(svg, "<title>fib (fib.py:4) (9 samples, 14.52%)</title>"));
	assert_non_null(strstr(svg, "data-x=\"0\" data-w=\"62\" data-d=\"0\""));
	assert_non_null(strstr(svg, ">T &lt;1&gt;</text>"));
	assert_non_null(strstr(svg, ">pid 1234, 99 Hz, 12 s</text>"));
	/* the script and its controls */
	assert_non_null(strstr(svg, "<script type=\"text/ecmascript\"><![CDATA["));
	assert_int_equal(count(svg, "]]>"), 1);
	assert_non_null(strstr(svg, "var total = 62,"));
	assert_non_null(strstr(svg, "function zoom(g)"));
	assert_non_null(strstr(svg, "function unzoom()"));
	assert_non_null(strstr(svg, "function search(term)"));
	assert_non_null(strstr(svg, "Matched: "));
	assert_non_null(strstr(svg, "e.keyCode === 70"));	/* Ctrl-F */
	assert_non_null(strstr(svg, "id=\"unzoom\" class=\"hide\""));
	assert_non_null(strstr(svg, ">Reset Zoom</text>"));
	assert_non_null(strstr(svg, ">Search</text>"));
	assert_non_null(strstr(svg, "<text id=\"details\""));
	/* truncated labels end in "..", and short frames get none */
	assert_non_null(strstr(svg, ">escape (app/temp..</text>"));
	assert_non_null(strstr(svg, "<title>tiny (app/jobs.py:40)"));
	assert_non_null(strstr(svg, "\"></text></g>"));
	free(svg);
}

static void test_labels_and_counts(void **state)
{
	struct stack_agg *a = *state;
	struct flame_opts o = { .count_name = "ns", .width = 400 };
	char *svg;

	ADD(a, 1234567, "a_rather_long_function_name_that_will_not_fit (somewhere/deep/module.py:1)");
	ADD(a, 1, "x");
	svg = render(a, &o);
	assert_non_null(strstr(svg, "(1,234,567 ns, 100.00%)</title>"));
	assert_non_null(strstr(svg, "(1,234,568 ns, 100.00%)</title>"));
	/* 380 px / (12 * 0.59) = 53 characters: 51 kept, then ".." */
	assert_non_null(strstr(svg, ">a_rather_long_function_name_that_will_not_fit (some..</text>"));
	assert_non_null(strstr(svg, "width=\"400\""));
	free(svg);
}

static void test_colors_stable(void **state)
{
	struct stack_agg *a = stack_agg__new(0), *b = stack_agg__new(0);
	char c1[32], c2[32], c3[32];
	char *s1, *s2;
	int r, g, bl;

	ADD(a, 5, "main (m.py:1)", "render (app/t.py:10)");
	ADD(b, 1, "other (o.py:7)", "x (x.py:1)", "render (app/t.py:99)");
	ADD(b, 9, "[native]");
	ADD(b, 2, "[sql] SELECT 1");
	s1 = render(a, NULL);
	s2 = render(b, NULL);
	fill_of(s1, "render (app/t.py:10)", c1, sizeof(c1));
	fill_of(s2, "render (app/t.py:99)", c2, sizeof(c2));
	assert_string_equal(c1, c2);
	flamegraph__frame_color("render (elsewhere.py:1)", c3, sizeof(c3));
	assert_string_equal(c1, c3);
	fill_of(s2, "other (o.py:7)", c3, sizeof(c3));
	assert_string_not_equal(c1, c3);

	/* hot palette for Python, blue for SQL, grey for other [...] frames */
	assert_int_equal(sscanf(c1, "rgb(%d,%d,%d)", &r, &g, &bl), 3);
	assert_true(r >= 205 && g <= 230 && bl <= 55);
	fill_of(s2, "[sql] SELECT 1", c3, sizeof(c3));
	assert_int_equal(sscanf(c3, "rgb(%d,%d,%d)", &r, &g, &bl), 3);
	assert_true(bl > r && bl > g && bl >= 205);
	fill_of(s2, "[native]", c3, sizeof(c3));
	assert_int_equal(sscanf(c3, "rgb(%d,%d,%d)", &r, &g, &bl), 3);
	assert_true(r == g && bl - r <= 10);
	free(s1);
	free(s2);
	stack_agg__free(a);
	stack_agg__free(b);
}

static void test_min_width(void **state)
{
	struct stack_agg *a = *state;
	struct flame_opts keep = { .min_width = -1 };
	char *svg;

	/* 1180 px for 100001 samples: one sample is 0.0118 px, under the default 0.1 */
	ADD(a, 100000, "main (m.py:1)", "big (m.py:2)");
	ADD(a, 1, "main (m.py:1)", "small (m.py:3)", "smaller (m.py:4)");
	svg = render(a, NULL);
	assert_null(strstr(svg, "small (m.py:3)"));
	assert_null(strstr(svg, "smaller (m.py:4)"));
	/* the parent still accounts for them */
	assert_non_null(strstr(svg, "<title>main (m.py:1) (100,001 samples, 100.00%)</title>"));
	assert_int_equal(count(svg, "<title>"), 3);
	free(svg);

	svg = render(a, &keep);
	assert_int_equal(count(svg, "<title>"), 5);
	assert_non_null(strstr(svg, "<title>smaller (m.py:4) (1 samples, 0.00%)</title>"));
	free(svg);
}

static double rect_y(const char *svg, const char *name)
{
	char key[128];
	const char *p;

	snprintf(key, sizeof(key), "<title>%s (", name);
	p = strstr(svg, key);
	assert_non_null(p);
	p = strstr(p, " y=\"");
	assert_non_null(p);
	return atof(p + 4);
}

static void test_inverted(void **state)
{
	struct stack_agg *a = *state;
	struct flame_opts inv = { .inverted = true };
	char *s1, *s2;

	ADD(a, 1, "root", "leaf");
	s1 = render(a, NULL);
	s2 = render(a, &inv);
	assert_true(rect_y(s1, "root") > rect_y(s1, "leaf"));
	assert_true(rect_y(s2, "root") < rect_y(s2, "leaf"));
	assert_non_null(strstr(s2, ">Icicle Graph</text>"));
	assert_non_null(strstr(s1, ">Flame Graph</text>"));
	free(s1);
	free(s2);
}

static void test_empty(void **state)
{
	struct stack_agg *a = *state;
	struct flame_opts bad = { .width = 5 };
	char *svg = render(a, NULL);

	assert_int_equal(count(svg, "<title>"), 0);
	assert_non_null(strstr(svg, "</svg>\n"));
	free(svg);
	assert_int_equal(flamegraph__write_svg(a, stdout, &bad), -EINVAL);
}

/* flame_basic.folded -> flame_basic.svg; PYTRACE_UPDATE_GOLDEN=1 rewrites the golden file. */
static void test_golden(void **state)
{
	struct stack_agg *a = *state;
	struct flame_opts o = { .title = "pytrace-bpf golden", .subtitle = "pid 1234, 99 Hz, 12 s" };
	const char *path = TEST_DATA_DIR "/flame_basic.svg";
	const char *update = getenv("PYTRACE_UPDATE_GOLDEN");
	char *svg = render(a, &o), *want;

	if (update && strcmp(update, "1") == 0) {
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs(svg, f);
		assert_int_equal(fclose(f), 0);
	}
	want = read_file(path);
	assert_non_null(want);
	assert_string_equal(svg, want);
	free(svg);
	free(want);
}

/* --idle: weights are microseconds, tooltips give time; stacks of weight 0 are not drawn. */
static void test_time_tooltips(void **state)
{
	struct stack_agg *a = *state;
	struct flame_opts o = { .title = "wall", .count_name = "us", .time_us = true };
	char buf[32], *svg;
	size_t id = 0;

	flamegraph__fmt_time_us(0, buf, sizeof(buf));
	assert_string_equal(buf, "0 us");
	flamegraph__fmt_time_us(999, buf, sizeof(buf));
	assert_string_equal(buf, "999 us");
	flamegraph__fmt_time_us(1000, buf, sizeof(buf));
	assert_string_equal(buf, "1.00 ms");
	flamegraph__fmt_time_us(12345, buf, sizeof(buf));
	assert_string_equal(buf, "12.35 ms");
	flamegraph__fmt_time_us(999999, buf, sizeof(buf));
	assert_string_equal(buf, "1000.00 ms");
	flamegraph__fmt_time_us(1000000, buf, sizeof(buf));
	assert_string_equal(buf, "1.000 s");
	flamegraph__fmt_time_us(4567890123ULL, buf, sizeof(buf));
	assert_string_equal(buf, "4567.890 s");

	ADD(a, 1950000, "main (m.py:1)", "sleeper (m.py:4)", "[off-cpu: sleep]");
	ADD(a, 50000, "main (m.py:1)", "work (m.py:9)");
	{
		const char *f[] = { "main (m.py:1)", "never (m.py:7)", "[off-cpu: lock]" };

		/* announced by BPF, no time yet: not drawn */
		assert_int_equal(stack_agg__add_get_id(a, f, 3, 0, &id), 0);
		assert_true(id != 0);
	}
	svg = render(a, &o);
	assert_non_null(strstr(svg, "<title>all (2.000 s, 100.00%)</title>"));
	assert_non_null(strstr(svg, "<title>[off-cpu: sleep] (1.950 s, 97.50%)</title>"));
	assert_non_null(strstr(svg, "<title>work (m.py:9) (50.00 ms, 2.50%)</title>"));
	assert_null(strstr(svg, " samples, "));
	assert_null(strstr(svg, "never"));
	assert_null(strstr(svg, "[off-cpu: lock]"));
	free(svg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_escaping, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_structure, setup_basic, teardown),
		cmocka_unit_test_setup_teardown(test_labels_and_counts, setup_empty, teardown),
		cmocka_unit_test(test_colors_stable),
		cmocka_unit_test_setup_teardown(test_min_width, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_inverted, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_empty, setup_empty, teardown),
		cmocka_unit_test_setup_teardown(test_golden, setup_basic, teardown),
		cmocka_unit_test_setup_teardown(test_time_tooltips, setup_empty, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
