// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The page cache in front of a mem_reader (src/memcache.h), over a fake address space. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "memcache.h"

#define BASE	0x7f0000000000ULL	/* where the fake space starts: four pages */
#define PAGES	4
#define HOLE	2			/* its third page is unmapped */

struct space {
	uint8_t bytes[PAGES * MEMCACHE_PAGE];
	unsigned reads;
	uint64_t last_len;
};

static int fake_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct space *s = ctx;

	s->reads++;
	s->last_len = len;
	if (addr < BASE || addr + len > BASE + sizeof(s->bytes) || addr + len < addr)
		return -EFAULT;
	/* any byte in the hole fails the whole read, as process_vm_readv does at its start */
	if (addr < BASE + (HOLE + 1) * MEMCACHE_PAGE && addr + len > BASE + HOLE * MEMCACHE_PAGE)
		return -EFAULT;
	memcpy(buf, s->bytes + (addr - BASE), len);
	return 0;
}

static void test_reads(void **state)
{
	static struct space s;
	struct mem_reader under = { fake_read, &s };
	struct memcache c;
	uint8_t buf[64];
	uint64_t v;

	for (size_t i = 0; i < sizeof(s.bytes); i++)
		s.bytes[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(memcache__init(&c, &under), 0);
	/* a first read fills its page, the next in it is a copy */
	assert_int_equal(mem_read_u64(&c.mr, BASE + 8, &v), 0);
	assert_memory_equal(&v, s.bytes + 8, 8);
	assert_int_equal(s.last_len, MEMCACHE_PAGE);
	assert_int_equal(mem_read(&c.mr, BASE + 100, buf, 40), 0);
	assert_memory_equal(buf, s.bytes + 100, 40);
	assert_int_equal(s.reads, 1);
	assert_int_equal(c.hits, 1);
	/* across two pages: the second page read, the first copied */
	assert_int_equal(mem_read(&c.mr, BASE + MEMCACHE_PAGE - 20, buf, 64), 0);
	assert_memory_equal(buf, s.bytes + MEMCACHE_PAGE - 20, 64);
	assert_int_equal(s.reads, 2);
	/* the hole: the page cannot be read whole, the read as asked fails as the reader says */
	assert_int_equal(mem_read_u64(&c.mr, BASE + HOLE * MEMCACHE_PAGE + 16, &v), -EFAULT);
	assert_int_equal(c.direct, 1);
	/* a read from the last mapped page into the hole fails; before it, its page is kept */
	assert_int_equal(mem_read(&c.mr, BASE + HOLE * MEMCACHE_PAGE - 8, buf, 16), -EFAULT);
	assert_int_equal(mem_read_u64(&c.mr, BASE + HOLE * MEMCACHE_PAGE - 8, &v), 0);
	assert_memory_equal(&v, s.bytes + HOLE * MEMCACHE_PAGE - 8, 8);
	/* past the end, and a length that wraps */
	assert_int_equal(mem_read_u64(&c.mr, BASE + PAGES * MEMCACHE_PAGE, &v), -EFAULT);
	assert_int_equal(mem_read(&c.mr, ~0ULL - 4, buf, 16), -EFAULT);
	/* a page of the same slot that cannot be read empties the slot (its read may have written it) */
	s.reads = 0;
	assert_int_equal(mem_read_u64(&c.mr, BASE + 8 + (uint64_t)MEMCACHE_PAGES * MEMCACHE_PAGE, &v), -EFAULT);
	assert_int_equal(mem_read_u64(&c.mr, BASE + 8, &v), 0);
	assert_int_equal(s.reads, 3);	/* the page, the read as asked, BASE's page again */
	memcache__fini(&c);
	memcache__fini(&c);	/* twice is harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
