// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* JSON writer: exact compact and pretty output, escaping of any bytes, misuse, validity. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jsonw.h"

struct out {
	char *buf;
	size_t len;
	FILE *f;
	struct jsonw *w;
};

static int setup(void **state)
{
	struct out *o = calloc(1, sizeof(*o));

	o->f = open_memstream(&o->buf, &o->len);
	o->w = jsonw__new(o->f);
	*state = o;
	return o->f && o->w ? 0 : -1;
}

static int teardown(void **state)
{
	struct out *o = *state;

	jsonw__free(o->w);
	fclose(o->f);
	free(o->buf);
	free(o);
	return 0;
}

static const char *text(struct out *o)
{
	fflush(o->f);
	return o->buf;
}

/* Python's json module as the reference parser; returns its exit status. */
static int python_validates(const char *json)
{
	FILE *p = popen("/usr/bin/python3 -c 'import json,sys; json.load(sys.stdin)'", "w");

	assert_non_null(p);
	fputs(json, p);
	return pclose(p);
}

static void test_compact(void **state)
{
	struct out *o = *state;
	struct jsonw *w = o->w;

	jsonw__start_object(w);
	jsonw__name(w, "a");
	jsonw__uint(w, UINT64_MAX);
	jsonw__name(w, "b");
	jsonw__start_array(w);
	jsonw__int(w, INT64_MIN);
	jsonw__bool(w, true);
	jsonw__bool(w, false);
	jsonw__null(w);
	jsonw__start_object(w);
	jsonw__end_object(w);
	jsonw__start_array(w);
	jsonw__end_array(w);
	jsonw__end_array(w);
	jsonw__name(w, "c");
	jsonw__double(w, 0.1);
	jsonw__name(w, "d");
	jsonw__double_fixed(w, 2.0 / 3, 3);
	jsonw__name(w, "e");
	jsonw__double(w, NAN);
	jsonw__name(w, "f");
	jsonw__double_fixed(w, -INFINITY, 2);
	jsonw__name(w, "g");
	jsonw__string(w, "x");
	assert_int_equal(jsonw__end_object(w), 0);
	assert_int_equal(jsonw__finish(w), 0);
	assert_string_equal(text(o),
		"{\"a\":18446744073709551615,\"b\":[-9223372036854775808,true,false,null,{},[]],"
		"\"c\":0.1,\"d\":0.667,\"e\":null,\"f\":null,\"g\":\"x\"}");
	assert_int_equal(python_validates(o->buf), 0);
}

/* The *_field helpers write exactly what name + value would. */
static void test_fields(void **state)
{
	struct out *o = *state;
	struct jsonw *w = o->w;

	jsonw__start_object(w);
	jsonw__string_field(w, "s", "x\"y");
	jsonw__uint_field(w, "u", 7);
	jsonw__int_field(w, "i", -7);
	jsonw__double_field(w, "d", 0.5);
	jsonw__double_fixed_field(w, "f", 1.0 / 3, 2);
	assert_int_equal(jsonw__bool_field(w, "b", true), 0);
	assert_int_equal(jsonw__end_object(w), 0);
	assert_int_equal(jsonw__finish(w), 0);
	assert_string_equal(text(o), "{\"s\":\"x\\\"y\",\"u\":7,\"i\":-7,\"d\":0.5,\"f\":0.33,\"b\":true}");
	/* a field where a value is due is misuse, and sticks */
	jsonw__start_array(w);
	assert_int_equal(jsonw__uint_field(w, "x", 1), -EINVAL);
}

static void test_pretty(void **state)
{
	struct out *o = *state;
	struct jsonw *w = o->w;

	jsonw__pretty(w, true);
	jsonw__start_object(w);
	jsonw__name(w, "queries");
	jsonw__start_array(w);
	jsonw__start_object(w);
	jsonw__name(w, "n");
	jsonw__uint(w, 1);
	jsonw__name(w, "e");
	jsonw__start_array(w);
	jsonw__end_array(w);
	jsonw__end_object(w);
	jsonw__uint(w, 2);
	jsonw__end_array(w);
	jsonw__end_object(w);
	assert_int_equal(jsonw__finish(w), 0);
	assert_string_equal(text(o),
		"{\n"
		"  \"queries\": [\n"
		"    {\n"
		"      \"n\": 1,\n"
		"      \"e\": []\n"
		"    },\n"
		"    2\n"
		"  ]\n"
		"}");
	assert_int_equal(python_validates(o->buf), 0);
}

static void test_strings(void **state)
{
	static const char raw[] = "q\"b\\s/\n\r\t\x01\x1f\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|"
				  "\xff\xc3|\xed\xa0\x80|\xef\xbf\xbd|\0end";
	struct out *o = *state;

	jsonw__start_array(o->w);
	jsonw__string_len(o->w, raw, sizeof(raw) - 1);
	jsonw__string(o->w, "");
	jsonw__end_array(o->w);
	assert_int_equal(jsonw__finish(o->w), 0);
	assert_string_equal(text(o),
		"[\"q\\\"b\\\\s/\\n\\r\\t\\u0001\\u001f\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|"
		"\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd|\\u0000end\",\"\"]");
	assert_int_equal(python_validates(o->buf), 0);
}

static void test_random_strings(void **state)
{
	struct out *o = *state;
	char s[64];

	srand(3);
	jsonw__start_object(o->w);
	for (int i = 0; i < 2000; i++) {
		size_t n = rand() % sizeof(s);

		for (size_t k = 0; k < n; k++)
			s[k] = (char)rand();
		jsonw__name(o->w, i % 2 ? "k" : "\xff key");
		jsonw__string_len(o->w, s, n);
	}
	jsonw__end_object(o->w);
	assert_int_equal(jsonw__finish(o->w), 0);
	assert_int_equal(python_validates(text(o)), 0);
}

static void test_misuse(void **state)
{
	struct out *o = *state;
	struct jsonw *w;

	/* a value where a name is due sticks as -EINVAL */
	jsonw__start_object(o->w);
	assert_int_equal(jsonw__uint(o->w, 1), -EINVAL);
	assert_int_equal(jsonw__name(o->w, "a"), -EINVAL);
	assert_int_equal(jsonw__finish(o->w), -EINVAL);

	w = jsonw__new(o->f);
	assert_int_equal(jsonw__name(w, "top"), -EINVAL);
	jsonw__free(w);

	w = jsonw__new(o->f);
	jsonw__start_array(w);
	assert_int_equal(jsonw__end_object(w), -EINVAL);
	jsonw__free(w);

	w = jsonw__new(o->f);
	jsonw__start_object(w);
	jsonw__name(w, "a");
	assert_int_equal(jsonw__name(w, "b"), -EINVAL);
	jsonw__free(w);

	w = jsonw__new(o->f);
	assert_int_equal(jsonw__end_array(w), -EINVAL);
	jsonw__free(w);

	w = jsonw__new(o->f);
	for (int i = 0; i < JSONW_MAX_DEPTH - 1; i++)
		jsonw__start_array(w);
	assert_int_equal(jsonw__start_array(w), -EINVAL);
	jsonw__free(w);

	w = jsonw__new(o->f);
	jsonw__start_object(w);
	assert_int_equal(jsonw__finish(w), -EINVAL);	/* still open */
	jsonw__free(w);
}

static void test_top_level_lines(void **state)
{
	struct out *o = *state;

	jsonw__uint(o->w, 1);
	jsonw__start_object(o->w);
	jsonw__end_object(o->w);
	assert_int_equal(jsonw__finish(o->w), 0);
	assert_string_equal(text(o), "1\n{}");
}

/*
 * The writer's buffer: values across its 4 kB and longer than it come out whole and in order; a
 * top-level value reaches the stream when it ends (a caller's own newline then follows it), and
 * jsonw__free hands over what an unfinished one wrote.
 */
static void test_buffered(void **state)
{
	struct out *o = *state;
	static char big[10001];
	char *want, *p;
	struct jsonw *w;

	memset(big, 'x', sizeof(big) - 1);
	big[5000] = '"';
	jsonw__start_array(o->w);
	for (int i = 0; i < 700; i++)
		jsonw__uint(o->w, (uint64_t)i);
	jsonw__string(o->w, big);
	jsonw__int(o->w, -1);
	jsonw__end_array(o->w);
	fputc('\n', o->f);	/* as requests.c ends a log line, before jsonw__free */
	want = malloc(20000);
	assert_non_null(want);
	p = want + sprintf(want, "[");
	for (int i = 0; i < 700; i++)
		p += sprintf(p, "%s%d", i ? "," : "", i);
	p += sprintf(p, ",\"%.5000s\\\"%s\",-1]\n", big, big + 5001);
	assert_string_equal(text(o), want);
	free(want);
	assert_int_equal(jsonw__finish(o->w), 0);

	w = jsonw__new(o->f);
	jsonw__start_object(w);
	jsonw__name(w, "a");
	jsonw__free(w);
	assert_string_equal(text(o) + strlen(text(o)) - 5, "{\"a\":");
}

static void test_write_error(void **state)
{
	FILE *f = fopen("/dev/full", "w");
	struct jsonw *w;
	char big[8192];
	int err = 0;

	assert_non_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	memset(big, 'a', sizeof(big));
	w = jsonw__new(f);
	jsonw__start_array(w);
	for (int i = 0; i < 4 && !err; i++)
		err = jsonw__string_len(w, big, sizeof(big));
	assert_int_equal(err, -EIO);
	assert_int_equal(jsonw__finish(w), -EIO);
	jsonw__free(w);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pretty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_top_level_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffered, setup, teardown),
		cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
