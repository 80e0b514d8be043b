// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * procmem: the process_vm_readv reader, on this test's own process. Its vector read must give
 * each span its own verdict: process_vm_readv stops at the first remote span it cannot read
 * whole, and the spans after it must still be read.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "procmem.h"

static void test_read(void **state)
{
	static const char text[] = "pytrace-bpf reads another process";
	struct mem_reader mr;
	char buf[64];

	procmem__reader(&mr, getpid());
	assert_int_equal(mem_read(&mr, (uintptr_t)text, buf, sizeof(text)), 0);
	assert_string_equal(buf, text);
	assert_int_equal(mem_read(&mr, 0, buf, 8), -EFAULT);
	assert_int_equal(mem_read(&mr, 0x10, buf, 8), -EFAULT);
}

static void test_readv(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t words[200], got[200];
	struct mem_span v[200];
	struct mem_reader mr;

	assert_true(map != MAP_FAILED);
	memset(map, 0xab, 2 * page);
	assert_int_equal(munmap(map + page, page), 0);	/* the second page unmapped */
	for (unsigned i = 0; i < 200; i++)
		words[i] = 0x1000 + i;
	procmem__reader(&mr, getpid());
	assert_non_null(mr.readv);
	/*
	 * Spans that read, one unmapped, one read in part (across the end of the mapping), a null
	 * address, and more than one call's worth (64 a call) after them.
	 */
	for (unsigned i = 0; i < 200; i++) {
		v[i] = (struct mem_span){ .addr = (uintptr_t)&words[i], .buf = &got[i], .len = 8, .err = 1 };
		got[i] = 0;
	}
	v[3].addr = 0x10;
	v[70].addr = (uintptr_t)(map + page - 4);	/* 4 bytes mapped, 4 not */
	v[71].addr = (uintptr_t)(map + page + 64);
	v[150].addr = 0;
	mem_readv(&mr, v, 200);
	for (unsigned i = 0; i < 200; i++) {
		if (i == 3 || i == 70 || i == 71 || i == 150) {
			assert_int_equal(v[i].err, -EFAULT);
			continue;
		}
		assert_int_equal(v[i].err, 0);
		assert_int_equal(got[i], 0x1000 + i);
	}
	/* a process that is gone: every span says so */
	procmem__reader(&mr, 0x3fffffff);
	v[0].err = v[1].err = 1;
	v[0].addr = (uintptr_t)&words[0];
	v[1].addr = (uintptr_t)&words[1];
	mem_readv(&mr, v, 2);
	assert_int_equal(v[0].err, -ESRCH);
	assert_int_equal(v[1].err, -ESRCH);
	munmap(map, page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_readv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
