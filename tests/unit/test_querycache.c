// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Statement memo: every part of the key counts, invalidation forgets all, eviction, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "querycache.h"

static struct query_cache_val *get(struct query_cache *c, uint32_t pid, uint64_t id, size_t n, const char *pat,
				   bool expect_hit)
{
	bool hit = !expect_hit;
	struct query_cache_val *v = query_cache__get(c, pid, id, n, pat, &hit);

	assert_non_null(v);
	assert_int_equal(hit, expect_hit);
	return v;
}

static void test_key(void **state)
{
	struct query_cache *c = query_cache__new(0);
	struct query_cache_val *v;
	struct query_cache_stats st;
	char pat[64];
	bool hit;

	assert_non_null(c);
	v = get(c, 10, 0xabc, 40, "SELECT ?", false);
	assert_int_equal(v->flame_id, 0);
	assert_false(v->req_ids);
	v->flame_id = 7;
	v->req_ids = true;
	v->req_pattern = 3;
	v->req_site = 4;
	/* a copy of the pattern is kept: another buffer with the same text hits */
	strcpy(pat, "SELECT ?");
	v = get(c, 10, 0xabc, 40, pat, true);
	assert_int_equal(v->flame_id, 7);
	assert_true(v->req_ids);
	assert_int_equal(v->req_pattern, 3);
	assert_int_equal(v->req_site, 4);
	strcpy(pat, "garbage");
	get(c, 10, 0xabc, 40, "SELECT ?", true);
	/* each part of the key tells entries apart (with 4096 slots these do not collide) */
	assert_int_equal(get(c, 11, 0xabc, 40, "SELECT ?", false)->flame_id, 0);
	assert_int_equal(get(c, 10, 0xabd, 40, "SELECT ?", false)->flame_id, 0);
	assert_int_equal(get(c, 10, 0xabc, 0, "SELECT ?", false)->flame_id, 0);
	assert_int_equal(get(c, 10, 0xabc, 40, "SELECT ? ", false)->flame_id, 0);
	assert_int_equal(get(c, 10, 0xabc, 40, "SELECT", false)->flame_id, 0);
	assert_int_equal(get(c, 10, 0xabc, 40, "", false)->flame_id, 0);
	assert_int_equal(get(c, 10, 0xabc, 40, "SELECT ?", true)->flame_id, 7);
	/* no pattern, no entry */
	assert_null(query_cache__get(c, 10, 0xabc, 40, NULL, &hit));
	assert_false(hit);
	query_cache__stats(c, &st);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.misses, 7);
	query_cache__free(c);
}

static void test_invalidate(void **state)
{
	struct query_cache *c = query_cache__new(0);
	struct query_cache_stats st;

	for (uint32_t pid = 1; pid <= 4; pid++)
		get(c, pid, 1, 3, "SELECT ?", false)->flame_id = pid;
	get(c, 2, 1, 3, "SELECT ?", true);
	query_cache__invalidate(c);
	for (uint32_t pid = 1; pid <= 4; pid++) {
		struct query_cache_val *v = get(c, pid, 1, 3, "SELECT ?", false);

		assert_int_equal(v->flame_id, 0);	/* fresh, not the old values */
		v->flame_id = 100 + pid;
	}
	for (uint32_t pid = 1; pid <= 4; pid++)
		assert_int_equal(get(c, pid, 1, 3, "SELECT ?", true)->flame_id, 100 + pid);
	query_cache__stats(c, &st);
	assert_int_equal(st.invalidations, 1);
	query_cache__free(c);
}

/* One slot: every new key evicts the last; memory stays one entry (valgrind sees no leak). */
static void test_eviction(void **state)
{
	struct query_cache *c = query_cache__new(1);
	struct query_cache_stats st;
	char pat[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(pat, sizeof(pat), "SELECT %d", i % 3);
		get(c, 1, 1, 1, pat, false)->flame_id = i + 1;
		assert_int_equal(get(c, 1, 1, 1, pat, true)->flame_id, i + 1);
	}
	query_cache__stats(c, &st);
	assert_int_equal(st.evictions, 999);
	assert_int_equal(st.hits, 1000);
	query_cache__free(c);
	query_cache__free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_invalidate),
		cmocka_unit_test(test_eviction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
