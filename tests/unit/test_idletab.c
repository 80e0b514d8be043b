// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* --idle's user side: BPF totals per key turned into microseconds on the key's stack. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "idletab.h"

static struct pt_idle_key key(uint64_t hash, uint32_t tid, uint32_t reason)
{
	return (struct pt_idle_key){ .hash = hash, .pid = 100, .tid = tid, .reason = reason };
}

static void test_advance(void **state)
{
	struct idletab *t = idletab__new();
	struct pt_idle_key a = key(0xabc, 101, PT_IDLE_SLEEP), b = key(0xabc, 101, PT_IDLE_LOCK);
	uint64_t us = 99;
	size_t id = 0;

	(void)state;
	assert_non_null(t);
	/* not announced yet: nothing consumed, the growth stays for later */
	assert_false(idletab__advance(t, &a, 5000, &id, &us));
	assert_int_equal(us, 0);
	assert_int_equal(idletab__set(t, &a, 7), 0);
	assert_true(idletab__advance(t, &a, 5000, &id, &us));
	assert_int_equal(id, 7);
	assert_int_equal(us, 5);
	/* the remainder below a microsecond carries: 5000 -> 6999 -> 7001 ns */
	assert_true(idletab__advance(t, &a, 6999, &id, &us));
	assert_int_equal(us, 1);
	assert_true(idletab__advance(t, &a, 7001, &id, &us));
	assert_int_equal(us, 1);
	/* no growth, or a total that went back (a read racing a reset): nothing */
	assert_true(idletab__advance(t, &a, 7001, &id, &us));
	assert_int_equal(us, 0);
	assert_true(idletab__advance(t, &a, 10, &id, &us));
	assert_int_equal(us, 0);
	/* another reason is another key */
	assert_false(idletab__advance(t, &b, 1000000, &id, &us));
	assert_int_equal(idletab__set(t, &b, 8), 0);
	assert_true(idletab__advance(t, &b, 1000000, &id, &us));
	assert_int_equal(id, 8);
	assert_int_equal(us, 1000);
	/* setting again replaces the stack, keeps what was consumed */
	assert_int_equal(idletab__set(t, &b, 9), 0);
	assert_true(idletab__advance(t, &b, 3000000, &id, &us));
	assert_int_equal(id, 9);
	assert_int_equal(us, 2000);
	assert_int_equal(idletab__count(t), 2);
	idletab__clear(t);
	assert_int_equal(idletab__count(t), 0);
	assert_false(idletab__advance(t, &a, 9000, &id, &us));
	idletab__free(t);
}

static void test_many(void **state)
{
	struct idletab *t = idletab__new();
	struct pt_idle_key k;
	uint64_t us;
	size_t id, i;

	(void)state;
	for (i = 0; i < 5000; i++) {
		k = key(i * 0x9e3779b97f4a7c15ULL, 1000 + i % 7, i % PT_IDLE_REASONS);
		assert_int_equal(idletab__set(t, &k, i + 1), 0);
	}
	assert_int_equal(idletab__count(t), 5000);
	for (i = 0; i < 5000; i++) {
		k = key(i * 0x9e3779b97f4a7c15ULL, 1000 + i % 7, i % PT_IDLE_REASONS);
		assert_true(idletab__advance(t, &k, (i + 1) * 1000, &id, &us));
		assert_int_equal(id, i + 1);
		assert_int_equal(us, i + 1);
	}
	idletab__free(t);
}

static void test_leaves(void **state)
{
	(void)state;
	assert_string_equal(idletab__leaf(PT_IDLE_SLEEP), "[off-cpu: sleep]");
	assert_string_equal(idletab__leaf(PT_IDLE_LOCK), "[off-cpu: lock]");
	assert_string_equal(idletab__leaf(PT_IDLE_SOCKET), "[off-cpu: socket]");
	assert_string_equal(idletab__leaf(PT_IDLE_IO), "[off-cpu: io]");
	assert_string_equal(idletab__leaf(PT_IDLE_SQL), "[off-cpu: sql]");
	assert_string_equal(idletab__leaf(PT_IDLE_OTHER), "[off-cpu: other]");
	assert_string_equal(idletab__leaf(PT_IDLE_REASONS), "[off-cpu: other]");
	assert_string_equal(idletab__leaf(0xffffffffu), "[off-cpu: other]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_advance),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_leaves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
