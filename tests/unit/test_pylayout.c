// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * py_layout__builtin sanity, and py_layout__from_debug_offsets on the first 4 KiB of the
 * .PyRuntime sections of Debian sid's python3.13, 3.14 and 3.15 (tests/data/debug_offsets_*.bin).
 * The numbers themselves are checked against the headers by tests/offsets/run.sh.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pylayout.h"

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR "tests/data"
#endif

static void test_builtin_range(void **state)
{
	for (unsigned m = 8; m <= 15; m++) {
		const struct py_layout *l = py_layout__builtin(3, m);

		assert_non_null(l);
		assert_int_equal(l->major, 3);
		assert_int_equal(l->minor, m);
	}
	assert_null(py_layout__builtin(3, 7));
	assert_null(py_layout__builtin(3, 16));
	assert_null(py_layout__builtin(2, 7));
	assert_null(py_layout__builtin(4, 0));
}

static void test_builtin_sanity(void **state)
{
	for (unsigned m = 8; m <= 15; m++) {
		const struct py_layout *l = py_layout__builtin(3, m);

		/* Offsets present in every version, small and pointer-aligned where pointers. */
		assert_true(l->rt_interp_head < 4096 && l->rt_interp_head % 8 == 0);
		assert_true(l->is_threads_head < 16384 && l->is_threads_head % 8 == 0);
		assert_int_equal(l->ts_next, 8);
		assert_true(l->ts_frame % 8 == 0 && l->fr_code % 8 == 0 && l->fr_back % 8 == 0);
		assert_true(l->co_filename < 256 && l->co_name < 256 && l->co_linetable < 256);
		assert_int_equal(l->str_state, 32);
		assert_int_equal(l->bytes_size, 16);
		assert_int_equal(l->bytes_data, 32);
		assert_true(l->str_ascii_data < l->str_compact_data);

		/* What changed when. */
		assert_int_equal(l->instr_is_ptr, m >= 11);
		assert_int_equal(l->ts_native_thread_id == PYL_NONE, m <= 10);
		assert_int_equal(l->ts_cframe != PYL_NONE, m == 11 || m == 12);
		assert_int_equal(l->co_qualname == PYL_NONE, m <= 10);
		assert_int_equal(l->co_code_adaptive == PYL_NONE, m <= 10);
		assert_int_equal(l->fr_owner != PYL_NONE, m >= 12);
		if (l->fr_owner != PYL_NONE)
			assert_int_equal(l->owner_cstack, 3);
		assert_int_equal(l->rt_tss == PYL_NONE, m >= 15);
		if (m >= 14)
			assert_true(l->code_mask == ~(uint64_t)3);
		else
			assert_true(l->code_mask == ~(uint64_t)0);
		assert_int_equal(l->linetable,
				 m <= 9 ? PYL_LNOTAB : m == 10 ? PYL_LINETABLE_310 : PYL_LOCATIONS);
		assert_int_equal(l->str_ascii_data, m <= 11 ? 48 : 40);
		assert_int_equal(l->str_compact_data, m <= 11 ? 72 : 56);
	}
}

static void test_builtin_known_values(void **state)
{
	const struct py_layout *l;

	/* The chain DOMAIN.md says was walked from BPF on Debian's 3.11. */
	l = py_layout__builtin(3, 11);
	assert_int_equal(l->rt_tss, 592);
	assert_int_equal(l->ts_cframe, 56);
	assert_int_equal(l->ts_frame, 8);
	assert_int_equal(l->fr_code, 32);
	assert_int_equal(l->fr_back, 48);
	assert_int_equal(l->fr_instr, 56);
	/* 3.14: owner moved to 74; the entry frame is owner 3, not FRAME_OWNED_BY_CSTACK (4). */
	l = py_layout__builtin(3, 14);
	assert_int_equal(l->fr_owner, 74);
	assert_int_equal(l->owner_cstack, 3);
	assert_int_equal(l->ts_frame, 72);
}

/* Field by field: struct py_layout has padding that copies need not preserve. */
static void assert_layout_equal(const struct py_layout *a, const struct py_layout *b)
{
#define EQ(f) assert_true((uint64_t)a->f == (uint64_t)b->f);
	EQ(major) EQ(minor) EQ(rt_tss) EQ(rt_interp_head) EQ(is_threads_head) EQ(ts_next)
	EQ(ts_thread_id) EQ(ts_native_thread_id) EQ(ts_cframe) EQ(ts_frame) EQ(fr_code)
	EQ(fr_back) EQ(fr_instr) EQ(fr_owner) EQ(owner_cstack) EQ(instr_is_ptr) EQ(code_mask)
	EQ(co_firstlineno) EQ(co_filename) EQ(co_name) EQ(co_qualname) EQ(co_linetable)
	EQ(co_code_adaptive) EQ(linetable) EQ(str_state) EQ(str_ascii_data)
	EQ(str_compact_data) EQ(bytes_size) EQ(bytes_data)
#undef EQ
}

struct fixture {
	unsigned minor;
	unsigned char *buf;
	size_t len;
};

static int load(void **state, unsigned minor)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[512];
	FILE *fp;

	if (!f)
		return -1;
	f->minor = minor;
	snprintf(path, sizeof(path), TEST_DATA_DIR "/debug_offsets_3.%u.bin", minor);
	fp = fopen(path, "rb");
	if (!fp) {
		free(f);
		return -1;
	}
	f->buf = malloc(8192);
	f->len = f->buf ? fread(f->buf, 1, 8192, fp) : 0;
	fclose(fp);
	if (f->len < 1024) {
		free(f->buf);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int setup_313(void **state) { return load(state, 13); }
static int setup_314(void **state) { return load(state, 14); }
static int setup_315(void **state) { return load(state, 15); }

static int teardown(void **state)
{
	struct fixture *f = *state;

	free(f->buf);
	free(f);
	return 0;
}

/* A copy of the built-in layout with every field the debug offsets cover set wrong. */
static struct py_layout spoiled(unsigned minor)
{
	struct py_layout l = *py_layout__builtin(3, minor);

	l.rt_interp_head = l.is_threads_head = l.ts_next = l.ts_frame = 1;
	l.ts_thread_id = l.ts_native_thread_id = l.fr_back = l.fr_code = l.fr_instr = 1;
	l.co_filename = l.co_name = l.co_qualname = l.co_linetable = l.co_firstlineno = 1;
	l.co_code_adaptive = l.bytes_size = l.bytes_data = l.str_state = l.str_ascii_data = 1;
	if (minor >= 15)
		l.str_compact_data = 1;
	if (l.fr_owner != PYL_NONE)
		l.fr_owner = 1;
	return l;
}

static void test_parse(void **state)
{
	struct fixture *f = *state;
	const struct py_layout *want = py_layout__builtin(3, f->minor);
	struct py_layout l = spoiled(f->minor);

	assert_int_equal(py_layout__from_debug_offsets(&l, f->buf, f->len), 0);
	assert_layout_equal(&l, want);
}

static void test_bad_cookie(void **state)
{
	struct fixture *f = *state;
	struct py_layout l = *py_layout__builtin(3, f->minor), before = l;

	f->buf[1] ^= 0x20;
	assert_int_equal(py_layout__from_debug_offsets(&l, f->buf, f->len), -EINVAL);
	f->buf[1] ^= 0x20;
	assert_layout_equal(&l, &before);
}

static void test_truncated(void **state)
{
	struct fixture *f = *state;
	struct py_layout l = *py_layout__builtin(3, f->minor), before = l;
	size_t lens[] = { 0, 8, 16, 24, 100, 500 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		assert_int_equal(py_layout__from_debug_offsets(&l, f->buf, lens[i]), -EINVAL);
	assert_layout_equal(&l, &before);
}

static void test_wrong_version(void **state)
{
	struct fixture *f = *state;
	unsigned other = f->minor == 13 ? 14 : 13;
	struct py_layout l = *py_layout__builtin(3, other);

	/* The buffer's PY_VERSION_HEX names another minor than the layout it would refine. */
	assert_int_equal(py_layout__from_debug_offsets(&l, f->buf, f->len), -EINVAL);
}

static void test_free_threaded(void **state)
{
	struct fixture *f = *state;
	struct py_layout l = *py_layout__builtin(3, f->minor);

	f->buf[16] = 1;		/* free_threaded follows cookie and version */
	assert_int_equal(py_layout__from_debug_offsets(&l, f->buf, f->len), -ENOTSUP);
	f->buf[16] = 0;
}

static void test_implausible_offset(void **state)
{
	struct fixture *f = *state;
	struct py_layout l = *py_layout__builtin(3, f->minor);
	uint64_t big = 1u << 30, save;

	/* runtime_state.interpreters_head, beyond runtime_state.size */
	memcpy(&save, f->buf + 40, 8);
	memcpy(f->buf + 40, &big, 8);
	assert_int_equal(py_layout__from_debug_offsets(&l, f->buf, f->len), -EINVAL);
	memcpy(f->buf + 40, &save, 8);
}

static void test_unknown_minor(void **state)
{
	struct py_layout l = *py_layout__builtin(3, 12);
	unsigned char buf[2048] = "xdebugpy";
	uint64_t v = 0x030c01f0;	/* 3.12.1: no _Py_DebugOffsets in that version */

	memcpy(buf + 8, &v, 8);
	assert_int_equal(py_layout__from_debug_offsets(&l, buf, sizeof(buf)), -ENOTSUP);
}

#define FIXTURE_TESTS(s)							\
	cmocka_unit_test_setup_teardown(test_parse, s, teardown),		\
	cmocka_unit_test_setup_teardown(test_bad_cookie, s, teardown),		\
	cmocka_unit_test_setup_teardown(test_truncated, s, teardown),		\
	cmocka_unit_test_setup_teardown(test_wrong_version, s, teardown),	\
	cmocka_unit_test_setup_teardown(test_free_threaded, s, teardown),	\
	cmocka_unit_test_setup_teardown(test_implausible_offset, s, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_range),
		cmocka_unit_test(test_builtin_sanity),
		cmocka_unit_test(test_builtin_known_values),
		cmocka_unit_test(test_unknown_minor),
		FIXTURE_TESTS(setup_313),
		FIXTURE_TESTS(setup_314),
		FIXTURE_TESTS(setup_315),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
