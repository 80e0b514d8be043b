// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* pprof writer: round trip through gunzip and protobuf-c's decoder; dedup; the top function. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <zlib.h>
#include <cmocka.h>

#include "pprof.h"
#include "profile.pb-c.h"
#include "stacks.h"

static Perftools__Profiles__Profile *gunzip_decode(const struct membuf *b)
{
	size_t cap = 1 << 20;
	uint8_t *out = malloc(cap);
	z_stream z = { 0 };
	Perftools__Profiles__Profile *prof;

	assert_non_null(out);
	/* gzip magic, then inflate with the gzip wrapper */
	assert_true(b->len > 18);
	assert_int_equal((uint8_t)b->data[0], 0x1f);
	assert_int_equal((uint8_t)b->data[1], 0x8b);
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (uint8_t *)b->data;
	z.avail_in = (uInt)b->len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	prof = perftools__profiles__profile__unpack(NULL, z.total_out, out);
	inflateEnd(&z);
	free(out);
	assert_non_null(prof);
	return prof;
}

static const char *str(const Perftools__Profiles__Profile *p, int64_t i)
{
	assert_true(i >= 0 && (size_t)i < p->n_string_table);
	return p->string_table[i];
}

static const Perftools__Profiles__Function *fn_of(const Perftools__Profiles__Profile *p, uint64_t loc_id,
						  int64_t *line)
{
	assert_true(loc_id >= 1 && loc_id <= p->n_location);
	const Perftools__Profiles__Location *l = p->location[loc_id - 1];

	assert_int_equal(l->id, loc_id);
	assert_int_equal(l->n_line, 1);
	*line = l->line[0]->line;
	assert_true(l->line[0]->function_id >= 1 && l->line[0]->function_id <= p->n_function);
	return p->function[l->line[0]->function_id - 1];
}

static void test_round_trip(void **state)
{
	struct pprof_opts o = { .period_ns = 10101010, .time_nanos = 1700000000000000000LL,
				.duration_nanos = 30000000000LL, .comment = "pytrace-bpf test" };
	struct pprof *p = pprof__new(&o);
	const char *s1[] = { "<module> (app.py:40)", "main (app.py:31)", "work (app/w.py:12)" };
	const char *s2[] = { "<module> (app.py:40)", "main (app.py:33)", "work (app/w.py:12)" };
	const char *s3[] = { "<module> (app.py:40)", "main (app.py:31)", "[sql] SELECT \"t\".\"id\" FROM \"t\" (x)" };
	const char *s4[] = { "[native]" };
	Perftools__Profiles__Profile *prof;
	struct membuf b;
	int64_t line;

	assert_non_null(p);
	assert_int_equal(pprof__add(p, s1, 3, 7), 0);
	assert_int_equal(pprof__add(p, s2, 3, 2), 0);
	assert_int_equal(pprof__add(p, s3, 3, 4), 0);
	assert_int_equal(pprof__add(p, s4, 1, 1), 0);
	assert_int_equal(pprof__add(p, s4, 0, 1), -EINVAL);
	/* <module>, main, work, [sql] ..., [native]: main at two lines is one function */
	assert_int_equal(pprof__nfunctions(p), 5);
	/* <module>:40, main:31, main:33, work:12, [sql], [native] */
	assert_int_equal(pprof__nlocations(p), 6);
	membuf__init(&b, 0);
	assert_int_equal(pprof__write_mem(p, &b), 0);
	prof = gunzip_decode(&b);

	assert_string_equal(prof->string_table[0], "");
	assert_int_equal(prof->n_sample_type, 2);
	assert_string_equal(str(prof, prof->sample_type[0]->type), "samples");
	assert_string_equal(str(prof, prof->sample_type[0]->unit), "count");
	assert_string_equal(str(prof, prof->sample_type[1]->type), "cpu");
	assert_string_equal(str(prof, prof->sample_type[1]->unit), "nanoseconds");
	assert_non_null(prof->period_type);
	assert_string_equal(str(prof, prof->period_type->type), "cpu");
	assert_int_equal(prof->period, 10101010);
	assert_int_equal(prof->time_nanos, 1700000000000000000LL);
	assert_int_equal(prof->duration_nanos, 30000000000LL);
	assert_int_equal(prof->n_comment, 1);
	assert_string_equal(str(prof, prof->comment[0]), "pytrace-bpf test");
	assert_int_equal(prof->n_function, 5);
	assert_int_equal(prof->n_location, 6);
	assert_int_equal(prof->n_sample, 4);

	/* sample 0: leaf first, values count and count x period */
	const Perftools__Profiles__Sample *s = prof->sample[0];
	const Perftools__Profiles__Function *f;

	assert_int_equal(s->n_location_id, 3);
	assert_int_equal(s->n_value, 2);
	assert_int_equal(s->value[0], 7);
	assert_int_equal(s->value[1], 7 * 10101010LL);
	f = fn_of(prof, s->location_id[0], &line);
	assert_string_equal(str(prof, f->name), "work");
	assert_string_equal(str(prof, f->filename), "app/w.py");
	assert_int_equal(line, 12);
	f = fn_of(prof, s->location_id[2], &line);
	assert_string_equal(str(prof, f->name), "<module>");
	assert_int_equal(line, 40);
	/* sample 1 shares the leaf location and differs in main's line */
	assert_int_equal(prof->sample[1]->location_id[0], s->location_id[0]);
	assert_int_not_equal(prof->sample[1]->location_id[1], s->location_id[1]);
	f = fn_of(prof, prof->sample[1]->location_id[1], &line);
	assert_string_equal(str(prof, f->name), "main");
	assert_int_equal(line, 33);
	/* bracket frames are functions named by the whole frame, without a file */
	f = fn_of(prof, prof->sample[2]->location_id[0], &line);
	assert_string_equal(str(prof, f->name), "[sql] SELECT \"t\".\"id\" FROM \"t\" (x)");
	assert_string_equal(str(prof, f->filename), "");
	assert_int_equal(line, 0);
	f = fn_of(prof, prof->sample[3]->location_id[0], &line);
	assert_string_equal(str(prof, f->name), "[native]");

	perftools__profiles__profile__free_unpacked(prof, NULL);
	membuf__free(&b);
	pprof__free(p);
}

/* folded stacks in, the function with most self samples is the one stack_agg names */
static void test_from_folded(void **state)
{
	struct stack_agg *a = stack_agg__new(0);
	FILE *f = fopen(TEST_DATA_DIR "/flame_basic.folded", "r");
	struct stack_agg_fn top[1];
	struct pprof_opts o = { .sample_type = "samples", .sample_unit = "count" };
	struct pprof *p = pprof__new(&o);
	Perftools__Profiles__Profile *prof;
	struct membuf b;
	uint64_t total = 0, best = 0, *self;
	size_t best_fn = 0;
	int64_t line;

	assert_non_null(f);
	assert_int_equal(stack_agg__read_folded(a, f), 0);
	fclose(f);
	assert_int_equal(stack_agg__top_functions(a, top, 1, true), 1);
	assert_int_equal(pprof__add_stacks(p, a), 0);
	assert_int_equal(pprof__nsamples(p), stack_agg__count(a));
	membuf__init(&b, 0);
	assert_int_equal(pprof__write_mem(p, &b), 0);
	prof = gunzip_decode(&b);
	assert_int_equal(prof->n_sample_type, 1);
	assert_null(prof->period_type);
	self = calloc(prof->n_function + 1, sizeof(*self));
	for (size_t i = 0; i < prof->n_sample; i++) {
		const Perftools__Profiles__Sample *s = prof->sample[i];

		assert_int_equal(s->n_value, 1);
		total += s->value[0];
		self[prof->location[s->location_id[0] - 1]->line[0]->function_id] += s->value[0];
	}
	assert_int_equal(total, stack_agg__total(a));
	for (size_t i = 1; i <= prof->n_function; i++) {
		if (self[i] > best) {
			best = self[i];
			best_fn = i;
		}
	}
	assert_int_equal(best, top[0].self);
	{
		/* stack_agg names it "name (file)" or "[...]" */
		const Perftools__Profiles__Function *fn = prof->function[best_fn - 1];
		char name[512];

		if (*str(prof, fn->filename))
			snprintf(name, sizeof(name), "%s (%s)", str(prof, fn->name), str(prof, fn->filename));
		else
			snprintf(name, sizeof(name), "%s", str(prof, fn->name));
		assert_string_equal(name, top[0].frame);
	}
	(void)line;
	free(self);
	perftools__profiles__profile__free_unpacked(prof, NULL);
	membuf__free(&b);
	pprof__free(p);
	stack_agg__free(a);
}

static void test_file_and_many(void **state)
{
	struct pprof *p = pprof__new(NULL);
	char frames[3][64];
	const char *fr[3] = { frames[0], frames[1], frames[2] };
	char *data = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&data, &len);

	/* enough distinct names to grow every table several times */
	for (int i = 0; i < 3000; i++) {
		snprintf(frames[0], sizeof(frames[0]), "root (r.py:1)");
		snprintf(frames[1], sizeof(frames[1]), "mid%d (m%d.py:%d)", i % 97, i % 13, i % 7);
		snprintf(frames[2], sizeof(frames[2]), "leaf%d (l.py:%d)", i, i);
		assert_int_equal(pprof__add(p, fr, 3, 1), 0);
	}
	/* functions are (name, file): i % 97 and i % 13 give 97 x 13 pairs */
	assert_int_equal(pprof__nfunctions(p), 1 + 97 * 13 + 3000);
	assert_int_equal(pprof__write_file(p, f), 0);
	fclose(f);
	assert_true(len > 100);
	struct membuf b = { .data = data, .len = len };
	Perftools__Profiles__Profile *prof = gunzip_decode(&b);

	assert_int_equal(prof->n_sample, 3000);
	perftools__profiles__profile__free_unpacked(prof, NULL);
	free(data);
	pprof__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_from_folded),
		cmocka_unit_test(test_file_and_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
