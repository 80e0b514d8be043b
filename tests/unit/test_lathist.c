// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Latency histogram: bucket layout, percentiles against exact ones, clamping, merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "lathist.h"

static struct lathist h, h2;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* xorshift: reproducible across libcs */
static uint64_t rnd(void)
{
	static uint64_t x = 88172645463325252ULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static void test_empty_and_small(void **state)
{
	lathist__init(&h);
	assert_int_equal(lathist__percentile(&h, 50), 0);
	assert_true(lathist__mean(&h) == 0);
	for (uint64_t v = 1; v <= 10; v++)
		lathist__add(&h, v);
	/* below LATHIST_SUB every value has its own bucket */
	assert_int_equal(lathist__percentile(&h, 50), 5);
	assert_int_equal(lathist__percentile(&h, 10), 1);
	assert_int_equal(lathist__percentile(&h, 0), 1);
	assert_int_equal(lathist__percentile(&h, 95), 10);
	assert_int_equal(lathist__percentile(&h, 100), 10);
	assert_int_equal(h.count, 10);
	assert_int_equal(h.sum, 55);
	assert_true(lathist__mean(&h) == 5.5);
	assert_int_equal(h.min, 1);
	assert_int_equal(h.max, 10);
}

static void test_bucket_layout(void **state)
{
	unsigned prev = 0;
	uint64_t lo, hi;

	for (uint64_t v = 0; v < (1ull << 43); v = v < 100000 ? v + 1 : v + v / 997) {
		unsigned b = lathist__bucket(v);

		assert_true(b >= prev && b < LATHIST_NBUCKETS);
		lathist__bucket_range(b, &lo, &hi);
		assert_true(lo <= v && v <= hi);
		if (b < LATHIST_NBUCKETS - 1)
			assert_true((double)(hi - lo + 1) / 2 <= LATHIST_REL_ERROR * (double)lo + 0.5);
		prev = b;
	}
	assert_int_equal(lathist__bucket(UINT64_MAX), LATHIST_NBUCKETS - 1);
	/* adjacent buckets tile the range */
	for (unsigned b = 0; b + 1 < LATHIST_NBUCKETS; b++) {
		uint64_t lo2, hi2;

		lathist__bucket_range(b, &lo, &hi);
		lathist__bucket_range(b + 1, &lo2, &hi2);
		assert_int_equal(hi + 1, lo2);
	}
	assert_true(sizeof(struct lathist) < 12 * 1024);
}

static void check_random(uint64_t (*gen)(void), size_t n)
{
	static const double ps[] = { 1, 10, 25, 50, 75, 90, 95, 99, 99.9 };
	uint64_t *v = malloc(n * sizeof(*v));

	lathist__init(&h);
	for (size_t i = 0; i < n; i++) {
		v[i] = gen();
		lathist__add(&h, v[i]);
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		size_t rank = (size_t)ceil(ps[k] / 100 * n);
		uint64_t exact = v[rank ? rank - 1 : 0], got = lathist__percentile(&h, ps[k]);

		if (fabs((double)got - (double)exact) > LATHIST_REL_ERROR * (double)exact + 0.5)
			fail_msg("p%g: got %llu, exact %llu", ps[k], (unsigned long long)got,
				 (unsigned long long)exact);
	}
	assert_int_equal(lathist__percentile(&h, 100), v[n - 1]);
	assert_int_equal(h.max, v[n - 1]);
	assert_int_equal(h.min, v[0]);
	free(v);
}

/* log-uniform from 1 ns to ~20 min */
static uint64_t gen_loguniform(void)
{
	return (uint64_t)exp((double)(rnd() % 1000000) / 1000000 * log(1.2e12)) + 1;
}

/* database-like: a 0.3-3 ms body and a slow tail */
static uint64_t gen_db(void)
{
	uint64_t v = 300000 + rnd() % 2700000;

	return rnd() % 100 == 0 ? v * (10 + rnd() % 300) : v;
}

static uint64_t gen_few(void)
{
	static const uint64_t vals[] = { 7, 1000, 1000001, 123456789 };

	return vals[rnd() % 4];
}

static void test_random_percentiles(void **state)
{
	check_random(gen_loguniform, 100000);
	check_random(gen_db, 100000);
	check_random(gen_few, 1000);
	check_random(gen_db, 1);
}

static void test_clamp(void **state)
{
	const uint64_t two_hours = 7200ull * 1000000000;

	lathist__init(&h);
	lathist__add(&h, 1000);
	lathist__add(&h, two_hours);
	lathist__add(&h, UINT64_MAX);
	assert_int_equal(h.buckets[LATHIST_NBUCKETS - 1], 2);
	assert_int_equal(h.max, UINT64_MAX);
	assert_int_equal(h.sum, UINT64_MAX);	/* saturated */
	assert_int_equal(lathist__percentile(&h, 100), UINT64_MAX);
	assert_int_equal(lathist__percentile(&h, 50), UINT64_MAX);
	assert_int_equal(lathist__percentile(&h, 10), 1000);

	lathist__init(&h);
	lathist__add(&h, two_hours);
	assert_int_equal(lathist__percentile(&h, 50), two_hours);
	assert_int_equal(h.sum, two_hours);
}

static void test_merge(void **state)
{
	struct lathist *whole = malloc(sizeof(*whole));

	lathist__init(&h);
	lathist__init(&h2);
	lathist__init(whole);
	for (int i = 0; i < 10000; i++) {
		uint64_t v = gen_db();

		lathist__add(i % 3 ? &h : &h2, v);
		lathist__add(whole, v);
	}
	lathist__merge(&h, &h2);
	assert_memory_equal(&h, whole, sizeof(h));
	lathist__init(&h2);
	lathist__merge(&h, &h2);	/* empty: no change, min stays */
	assert_memory_equal(&h, whole, sizeof(h));
	lathist__merge(&h2, whole);
	assert_memory_equal(&h2, whole, sizeof(h));
	free(whole);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_and_small),
		cmocka_unit_test(test_bucket_layout),
		cmocka_unit_test(test_random_percentiles),
		cmocka_unit_test(test_clamp),
		cmocka_unit_test(test_merge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
