// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* speedscope writer: checked with a small JSON parser against the file-format schema's shape. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "speedscope.h"
#include "stacks.h"

#define ADD(a, w, ...) ({							\
	const char *_f[] = { __VA_ARGS__ };					\
	stack_agg__add(a, _f, sizeof(_f) / sizeof(_f[0]), w);			\
})

/* A minimal JSON tree: enough to validate syntax and look values up. */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype type;
	double num;
	char *str;		/* J_STR, decoded UTF-8 */
	struct jval *kids;	/* J_ARR items, J_OBJ values */
	char **keys;		/* J_OBJ */
	size_t n;
};

static void jfree(struct jval *v)
{
	for (size_t i = 0; i < v->n; i++) {
		jfree(&v->kids[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->str);
}

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r')
		(*p)++;
}

static void put_utf8(char **o, unsigned cp)
{
	if (cp < 0x80) {
		*(*o)++ = cp;
	} else if (cp < 0x800) {
		*(*o)++ = 0xc0 | cp >> 6;
		*(*o)++ = 0x80 | (cp & 0x3f);
	} else {
		*(*o)++ = 0xe0 | cp >> 12;
		*(*o)++ = 0x80 | ((cp >> 6) & 0x3f);
		*(*o)++ = 0x80 | (cp & 0x3f);
	}
}

static int parse_str(const char **p, char **out)
{
	char *o = *out = malloc(strlen(*p) + 1);

	for ((*p)++; **p != '"'; (*p)++) {
		unsigned char c = **p;
		unsigned cp;

		if (c < 0x20)
			return -1;	/* raw control characters are not JSON */
		if (c != '\\') {
			*o++ = c;
			continue;
		}
		switch (*++*p) {
		case '"': case '\\': case '/': *o++ = **p; break;
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case 'r': *o++ = '\r'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'u':
			if (sscanf(*p + 1, "%4x", &cp) != 1)
				return -1;
			put_utf8(&o, cp);
			*p += 4;
			break;
		default:
			return -1;
		}
	}
	(*p)++;
	*o = '\0';
	return 0;
}

static int parse_val(const char **p, struct jval *v)
{
	memset(v, 0, sizeof(*v));
	skip_ws(p);
	if (**p == '{' || **p == '[') {
		bool obj = **p == '{';
		char close = obj ? '}' : ']';

		v->type = obj ? J_OBJ : J_ARR;
		(*p)++;
		skip_ws(p);
		if (**p == close) {
			(*p)++;
			return 0;
		}
		for (;;) {
			v->kids = realloc(v->kids, (v->n + 1) * sizeof(*v->kids));
			if (obj) {
				v->keys = realloc(v->keys, (v->n + 1) * sizeof(*v->keys));
				skip_ws(p);
				v->keys[v->n] = NULL;
				if (**p != '"' || parse_str(p, &v->keys[v->n])) {
					v->n++;
					memset(&v->kids[v->n - 1], 0, sizeof(*v->kids));
					return -1;
				}
				skip_ws(p);
				if (*(*p)++ != ':') {
					memset(&v->kids[v->n++], 0, sizeof(*v->kids));
					return -1;
				}
			}
			if (parse_val(p, &v->kids[v->n++]))
				return -1;
			skip_ws(p);
			if (**p == ',') {
				(*p)++;
				continue;
			}
			return *(*p)++ == close ? 0 : -1;
		}
	}
	if (**p == '"') {
		v->type = J_STR;
		return parse_str(p, &v->str);
	}
	if (strncmp(*p, "null", 4) == 0 || strncmp(*p, "true", 4) == 0) {
		v->type = **p == 'n' ? J_NULL : J_BOOL;
		*p += 4;
		return 0;
	}
	if (**p == '-' || (**p >= '0' && **p <= '9')) {
		char *end;

		v->type = J_NUM;
		v->num = strtod(*p, &end);
		*p = end;
		return 0;
	}
	return -1;
}

static struct jval *get(struct jval *v, const char *key)
{
	assert_int_equal(v->type, J_OBJ);
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->keys[i], key) == 0)
			return &v->kids[i];
	}
	return NULL;
}

static struct jval *get_type(struct jval *v, const char *key, enum jtype type)
{
	struct jval *r = get(v, key);

	assert_non_null(r);
	assert_int_equal(r->type, type);
	return r;
}

static void parse_json(const char *s, struct jval *root)
{
	const char *p = s;

	assert_int_equal(parse_val(&p, root), 0);
	skip_ws(&p);
	assert_int_equal(*p, '\0');
}

static char *write_ss(const struct stack_agg *a, const char *name, const char *unit)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(speedscope__write(a, f, name, unit), 0);
	fclose(f);
	return buf;
}

/* The shape speedscope's schema asks for; returns the number of shared frames. */
static size_t check_profile(struct jval *root, const char *unit, uint64_t total, size_t nstacks)
{
	struct jval *frames, *prof, *samples, *weights;
	double sum = 0;

	assert_string_equal(get_type(root, "$schema", J_STR)->str, "https://www.speedscope.app/file-format-schema.json");
	assert_string_equal(get_type(root, "exporter", J_STR)->str, "pytrace-bpf");
	get_type(root, "name", J_STR);
	frames = get_type(get_type(root, "shared", J_OBJ), "frames", J_ARR);
	for (size_t i = 0; i < frames->n; i++) {
		struct jval *line = get(&frames->kids[i], "line");

		get_type(&frames->kids[i], "name", J_STR);
		if (line)
			assert_int_equal(line->type, J_NUM);
	}
	assert_int_equal(get_type(root, "profiles", J_ARR)->n, 1);
	prof = &get(root, "profiles")->kids[0];
	assert_string_equal(get_type(prof, "type", J_STR)->str, "sampled");
	assert_string_equal(get_type(prof, "unit", J_STR)->str, unit);
	assert_int_equal(get_type(prof, "startValue", J_NUM)->num, 0);
	assert_int_equal(get_type(prof, "endValue", J_NUM)->num, total);
	samples = get_type(prof, "samples", J_ARR);
	weights = get_type(prof, "weights", J_ARR);
	assert_int_equal(samples->n, nstacks);
	assert_int_equal(weights->n, nstacks);
	for (size_t i = 0; i < samples->n; i++) {
		assert_int_equal(samples->kids[i].type, J_ARR);
		assert_true(samples->kids[i].n > 0);
		for (size_t k = 0; k < samples->kids[i].n; k++) {
			struct jval *idx = &samples->kids[i].kids[k];

			assert_int_equal(idx->type, J_NUM);
			assert_true(idx->num >= 0 && idx->num < frames->n);
		}
		sum += weights->kids[i].num;
	}
	assert_int_equal(sum, total);
	return frames->n;
}

static int setup(void **state)
{
	*state = stack_agg__new(0);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	stack_agg__free(*state);
	return 0;
}

static void test_basic_file(void **state)
{
	struct stack_agg *a = *state;
	FILE *f = fopen(TEST_DATA_DIR "/flame_basic.folded", "r");
	struct jval root;
	char *json;

	assert_non_null(f);
	assert_int_equal(stack_agg__read_folded(a, f), 0);
	fclose(f);
	json = write_ss(a, "basic", "none");
	parse_json(json, &root);
	/* 27 distinct frame strings in flame_basic.folded */
	assert_int_equal(check_profile(&root, "none", 62, 11), 27);
	assert_string_equal(get(&root, "name")->str, "basic");
	jfree(&root);
	free(json);
}

static void test_frames_and_samples(void **state)
{
	struct stack_agg *a = *state;
	struct jval root, *frames, *samples, *weights, *fr;
	char *json;

	ADD(a, 7, "main (app.py:3)", "f (lib/x y.py:12)", "[native]");
	ADD(a, 5, "main (app.py:3)", "g (lib/z.py)");
	json = write_ss(a, NULL, "nanoseconds");
	parse_json(json, &root);
	assert_int_equal(check_profile(&root, "nanoseconds", 12, 2), 4);
	assert_string_equal(get(&root, "name")->str, "pytrace-bpf");
	frames = get(get(&root, "shared"), "frames");
	fr = &frames->kids[0];
	assert_string_equal(get(fr, "name")->str, "main");
	assert_string_equal(get(fr, "file")->str, "app.py");
	assert_int_equal(get(fr, "line")->num, 3);
	fr = &frames->kids[1];
	assert_string_equal(get(fr, "name")->str, "f");
	assert_string_equal(get(fr, "file")->str, "lib/x y.py");
	assert_int_equal(get(fr, "line")->num, 12);
	fr = &frames->kids[2];
	assert_string_equal(get(fr, "name")->str, "[native]");
	assert_null(get(fr, "file"));
	assert_null(get(fr, "line"));
	fr = &frames->kids[3];
	assert_string_equal(get(fr, "name")->str, "g");
	assert_string_equal(get(fr, "file")->str, "lib/z.py");
	assert_null(get(fr, "line"));

	/* sorted by folded string, root first: main;f;[native] before main;g */
	samples = get(&get(&root, "profiles")->kids[0], "samples");
	weights = get(&get(&root, "profiles")->kids[0], "weights");
	assert_int_equal(samples->kids[0].n, 3);
	assert_int_equal(samples->kids[0].kids[0].num, 0);
	assert_int_equal(samples->kids[0].kids[1].num, 1);
	assert_int_equal(samples->kids[0].kids[2].num, 2);
	assert_int_equal(samples->kids[1].n, 2);
	assert_int_equal(samples->kids[1].kids[0].num, 0);
	assert_int_equal(samples->kids[1].kids[1].num, 3);
	assert_int_equal(weights->kids[0].num, 7);
	assert_int_equal(weights->kids[1].num, 5);
	jfree(&root);
	free(json);
}

static void test_escaping(void **state)
{
	struct stack_agg *a = *state;
	struct jval root, *frames;
	char *json;

	ADD(a, 1, "[sql] SELECT \"a\\b\" FROM t WHERE x = '\x01\t'", "bad \xff utf8 (\xc3\xbc.py:1)");
	json = write_ss(a, "n\"ame", "none");
	assert_non_null(strstr(json, "\\\"a\\\\b\\\""));
	assert_non_null(strstr(json, "\\u0001\\t"));
	assert_non_null(strstr(json, "bad \\ufffd utf8"));
	parse_json(json, &root);
	check_profile(&root, "none", 1, 1);
	frames = get(get(&root, "shared"), "frames");
	assert_string_equal(get(&frames->kids[0], "name")->str, "[sql] SELECT \"a\\b\" FROM t WHERE x = '\x01\t'");
	assert_string_equal(get(&frames->kids[1], "name")->str, "bad \xef\xbf\xbd utf8");
	assert_string_equal(get(&frames->kids[1], "file")->str, "\xc3\xbc.py");
	assert_string_equal(get(&root, "name")->str, "n\"ame");
	jfree(&root);
	free(json);
}

static void test_empty_and_unit(void **state)
{
	struct stack_agg *a = *state;
	struct jval root;
	char *json = write_ss(a, "empty", NULL);

	parse_json(json, &root);
	assert_int_equal(check_profile(&root, "none", 0, 0), 0);
	jfree(&root);
	free(json);
	assert_int_equal(speedscope__write(a, stdout, "x", "furlongs"), -EINVAL);
}

/* --threads: one profile per thread root, named by it, its stacks without it. */
static void test_threads(void **state)
{
	struct stack_agg *a = *state;
	struct jval root, *profs, *frames, *p;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ADD(a, 7, "[thread MainThread tid=10 main]", "main (app.py:3)", "f (app.py:9)");
	ADD(a, 5, "[thread Wörker-0 tid=11]", "run (app.py:20)");
	ADD(a, 2, "[thread MainThread tid=10 main]", "main (app.py:4)");
	ADD(a, 1, "[thread lonely tid=12]");
	assert_non_null(f);
	assert_int_equal(speedscope__write_threads(a, f, "t", "none"), 0);
	fclose(f);
	parse_json(buf, &root);
	frames = get_type(get_type(&root, "shared", J_OBJ), "frames", J_ARR);
	profs = get_type(&root, "profiles", J_ARR);
	assert_int_equal(profs->n, 3);
	for (size_t i = 0; i < profs->n; i++) {
		struct jval *samples, *weights;
		double sum = 0;
		const char *name;

		p = &profs->kids[i];
		name = get_type(p, "name", J_STR)->str;
		samples = get_type(p, "samples", J_ARR);
		weights = get_type(p, "weights", J_ARR);
		assert_int_equal(samples->n, weights->n);
		for (size_t k = 0; k < weights->n; k++)
			sum += weights->kids[k].num;
		assert_int_equal(get_type(p, "endValue", J_NUM)->num, sum);
		if (!strcmp(name, "MainThread tid=10 main")) {
			assert_int_equal(sum, 9);
			assert_int_equal(samples->n, 2);
			/* without the thread's own frame: main first */
			assert_string_equal(get(&frames->kids[(size_t)samples->kids[0].kids[0].num], "name")->str, "main");
		} else if (!strcmp(name, "Wörker-0 tid=11")) {
			assert_int_equal(sum, 5);
		} else {
			/* a thread with no frame under it keeps its own */
			assert_string_equal(name, "lonely tid=12");
			assert_int_equal(samples->kids[0].n, 1);
		}
	}
	jfree(&root);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basic_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frames_and_samples, setup, teardown),
		cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_unit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
