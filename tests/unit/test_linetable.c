// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* linetable__addr2line against the tables and line maps of real interpreters (tests/data/lt_*.txt,
 * made by tests/tools/gen_linetables.py), plus hand-made and malformed tables. */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "linetable.h"

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR "tests/data"
#endif

struct range { int start, end, line; };

struct code {
	char name[128];
	int firstlineno;
	enum pyl_linetable kind;
	uint8_t *table;
	size_t len;
	struct range *ranges;
	size_t nranges;
};

static int unhex(const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s);

	*out = NULL;
	*len = 0;
	if (!strcmp(s, "-"))
		return 0;
	if (n % 2)
		return -1;
	/* an exact-size heap copy, so that valgrind sees any read past the end */
	*out = malloc(n / 2 ? n / 2 : 1);
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		(*out)[i] = v;
	}
	*len = n / 2;
	return 0;
}

static enum pyl_linetable parse_kind(const char *s)
{
	if (!strcmp(s, "lnotab"))
		return PYL_LNOTAB;
	if (!strcmp(s, "linetable310"))
		return PYL_LINETABLE_310;
	assert_string_equal(s, "locations");
	return PYL_LOCATIONS;
}

/* Check every code unit of every code object in one fixture; returns the number of offsets. */
static size_t check_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, checked = 0, ncode = 0;
	struct code c = { 0 };

	assert_non_null(f);
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "code ", 5)) {
			char kind[32];
			char *hex = malloc(strlen(line));

			free(c.table);
			assert_int_equal(sscanf(line, "code %127s %d %31s %s", c.name, &c.firstlineno,
						kind, hex), 4);
			c.kind = parse_kind(kind);
			assert_int_equal(unhex(hex, &c.table, &c.len), 0);
			free(hex);
			ncode++;
		} else if (!strncmp(line, "lines ", 6)) {
			char *save = NULL;
			int last_end = 0, last_line = -1;

			for (char *tok = strtok_r(line + 6, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
				struct range r;

				assert_int_equal(sscanf(tok, "%d-%d:%d", &r.start, &r.end, &r.line), 3);
				for (int off = r.start; off < r.end; off += 2) {
					int got = linetable__addr2line(c.kind, c.table, c.len,
								       c.firstlineno, off);

					if (got != r.line)
						fail_msg("%s: %s offset %d: line %d, expected %d", path,
							 c.name, off, got, r.line);
					checked++;
				}
				last_end = r.end;
				last_line = r.line;
			}
			/* Past the end of the code: lnotab repeats the last line, the others know none. */
			assert_int_equal(linetable__addr2line(c.kind, c.table, c.len, c.firstlineno,
							      last_end + 1000),
					 c.kind == PYL_LNOTAB ? last_line : -1);
			assert_int_equal(linetable__addr2line(c.kind, c.table, c.len, c.firstlineno, -2),
					 c.firstlineno);
			/* Every truncation of the real table stays in bounds (valgrind checks the reads). */
			for (size_t n = 0; n < c.len; n++) {
				uint8_t *cut = malloc(n ? n : 1);

				memcpy(cut, c.table, n);
				int step = last_end / 32 & ~1;

				for (int off = 0; off <= last_end; off += step > 2 ? step : 2)
					linetable__addr2line(c.kind, n ? cut : NULL, n, c.firstlineno, off);
				linetable__addr2line(c.kind, n ? cut : NULL, n, c.firstlineno, last_end + 2);
				free(cut);
			}
		}
	}
	free(c.table);
	free(line);
	fclose(f);
	assert_true(ncode >= 10);
	return checked;
}

static void test_real_tables(void **state)
{
	glob_t g;
	bool seen[16] = { false };
	size_t total = 0;

	assert_int_equal(glob(TEST_DATA_DIR "/lt_3.*.txt", 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *base = strrchr(g.gl_pathv[i], '/') + 1;
		unsigned minor = 0;

		assert_int_equal(sscanf(base, "lt_3.%u.", &minor), 1);
		if (minor < 16)
			seen[minor] = true;
		total += check_file(g.gl_pathv[i]);
	}
	globfree(&g);
	for (unsigned m = 8; m <= 15; m++)
		if (!seen[m])
			fail_msg("no line table fixture for 3.%u", m);
	assert_true(total > 1000);
}

static void test_lnotab_handmade(void **state)
{
	/* 3.8: +6 bytes line +1, +0 bytes line +127 (split jump), +2 bytes line -3 */
	const uint8_t t[] = { 6, 1, 0, 127, 2, 0xfd };

	assert_int_equal(linetable__addr2line(PYL_LNOTAB, t, sizeof(t), 10, 0), 10);
	assert_int_equal(linetable__addr2line(PYL_LNOTAB, t, sizeof(t), 10, 4), 10);
	assert_int_equal(linetable__addr2line(PYL_LNOTAB, t, sizeof(t), 10, 6), 138);
	assert_int_equal(linetable__addr2line(PYL_LNOTAB, t, sizeof(t), 10, 8), 135);
	assert_int_equal(linetable__addr2line(PYL_LNOTAB, t, sizeof(t), 10, 500), 135);
	assert_int_equal(linetable__addr2line(PYL_LNOTAB, t, 5, 10, 8), 138); /* odd length */
	assert_int_equal(linetable__addr2line(PYL_LNOTAB, NULL, 0, 7, 4), 7);
	assert_int_equal(linetable__addr2line(PYL_LNOTAB, t, sizeof(t), 10, -1), 10);
}

static void test_linetable310_handmade(void **state)
{
	/* 4 bytes at +1, 2 bytes without a line, 0 bytes +127, 6 bytes +3 */
	const uint8_t t[] = { 4, 1, 2, 0x80, 0, 127, 6, 3 };

	assert_int_equal(linetable__addr2line(PYL_LINETABLE_310, t, sizeof(t), 1, 0), 2);
	assert_int_equal(linetable__addr2line(PYL_LINETABLE_310, t, sizeof(t), 1, 2), 2);
	assert_int_equal(linetable__addr2line(PYL_LINETABLE_310, t, sizeof(t), 1, 4), -1);
	assert_int_equal(linetable__addr2line(PYL_LINETABLE_310, t, sizeof(t), 1, 6), 132);
	assert_int_equal(linetable__addr2line(PYL_LINETABLE_310, t, sizeof(t), 1, 10), 132);
	assert_int_equal(linetable__addr2line(PYL_LINETABLE_310, t, sizeof(t), 1, 12), -1);
	assert_int_equal(linetable__addr2line(PYL_LINETABLE_310, t, 7, 1, 6), -1); /* odd length */
}

static void test_locations_handmade(void **state)
{
	const uint8_t t[] = {
		0x80 | 13 << 3 | 0, 0x02,		/* 1 unit, no columns, line +1 */
		0x80 | 0 << 3 | 1, 0x05,		/* 2 units, short form, same line */
		0x80 | 15 << 3 | 0,			/* 1 unit, no location */
		0x80 | 14 << 3 | 2, 0x45, 0x04, 0, 1, 2, /* 3 units, long form, line -(0x45&0x3f|4<<6)/2 */
		0x80 | 11 << 3 | 0, 3, 4,		/* 1 unit, one line form, line +1 */
	};
	bool ran_out;

	assert_int_equal(linetable__addr2line(PYL_LOCATIONS, t, sizeof(t), 1000, 0), 1001);
	assert_int_equal(linetable__addr2line(PYL_LOCATIONS, t, sizeof(t), 1000, 2), 1001);
	assert_int_equal(linetable__addr2line(PYL_LOCATIONS, t, sizeof(t), 1000, 4), 1001);
	assert_int_equal(linetable__addr2line(PYL_LOCATIONS, t, sizeof(t), 1000, 6), -1);
	/* 0x45, 0x04: 5 | 4 << 6 = 261, odd -> -130 */
	assert_int_equal(linetable__addr2line(PYL_LOCATIONS, t, sizeof(t), 1000, 8), 871);
	assert_int_equal(linetable__addr2line(PYL_LOCATIONS, t, sizeof(t), 1000, 12), 871);
	assert_int_equal(linetable__addr2line(PYL_LOCATIONS, t, sizeof(t), 1000, 14), 872);
	assert_int_equal(linetable__addr2line_ex(PYL_LOCATIONS, t, sizeof(t), 1000, 16, &ran_out), -1);
	assert_true(ran_out);
	assert_int_equal(linetable__addr2line_ex(PYL_LOCATIONS, t, sizeof(t), 1000, 14, &ran_out), 872);
	assert_false(ran_out);
	/* a varint that never ends, and continuation bytes where an entry should start */
	const uint8_t bad[] = { 0x80 | 14 << 3, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f,
				0x7f, 0x7f, 0x7f, 0x7f, 0x7f };
	uint8_t *heap = malloc(sizeof(bad));

	memcpy(heap, bad, sizeof(bad));
	for (int off = 0; off < 40; off += 2)
		linetable__addr2line(PYL_LOCATIONS, heap, sizeof(bad), 1, off);
	free(heap);
}

/* Random bytes for every kind: no read outside the buffer (valgrind), no crash. */
static void test_garbage(void **state)
{
	uint32_t x = 12345;

	for (int iter = 0; iter < 2000; iter++) {
		size_t len = iter % 64;
		uint8_t *t = malloc(len ? len : 1);

		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245 + 12345;
			t[i] = x >> 16;
		}
		for (int k = PYL_LNOTAB; k <= PYL_LOCATIONS; k++)
			for (int off = -4; off < 300; off += 2)
				linetable__addr2line(k, t, len, INT32_MAX - 3, off);
		free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_tables),
		cmocka_unit_test(test_lnotab_handmade),
		cmocka_unit_test(test_linetable310_handmade),
		cmocka_unit_test(test_locations_handmade),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
