// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * procmem: the /proc/PID/mem reader, on this test's own process and on forked children. Its
 * vector read gives each span its own verdict; a forked child's pages are read without being
 * copied (process_vm_readv made each page it read a private copy in the child); a file kept open
 * across the child's exec is opened again.
 */
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
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

/*
 * Spans close together are read in one range: in any order, overlapping, of any length (one
 * longer than a range), with a span across the end of a mapping among good ones beside it.
 */
static void test_readv_ranges(void **state)
{
	long page = sysconf(_SC_PAGESIZE);
	const size_t size = 64 * 1024;
	uint8_t *map = mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	static uint8_t got[160][6000];
	struct mem_span v[160];
	struct mem_reader mr;

	assert_true(map != MAP_FAILED);
	assert_int_equal(munmap(map + size, page), 0);
	for (size_t i = 0; i < size; i++)
		map[i] = (uint8_t)(i * 7 + (i >> 8));
	srand(11);
	for (unsigned i = 0; i < 160; i++) {
		size_t len = i == 5 ? 5000 : 1 + rand() % 300;
		size_t off = rand() % (size - len);

		v[i] = (struct mem_span){ .addr = (uintptr_t)(map + off), .buf = got[i], .len = len, .err = 1 };
	}
	v[9].addr = v[8].addr;	/* the same bytes twice */
	v[9].len = v[8].len;
	v[20] = (struct mem_span){ .addr = (uintptr_t)(map + size - 100), .buf = got[20], .len = 50, .err = 1 };
	v[21] = (struct mem_span){ .addr = (uintptr_t)(map + size - 40), .buf = got[21], .len = 80, .err = 1 };
	v[22] = (struct mem_span){ .addr = (uintptr_t)(map + size - 30), .buf = got[22], .len = 0, .err = 1 };
	procmem__reader(&mr, getpid());
	mem_readv(&mr, v, 160);
	for (unsigned i = 0; i < 160; i++) {
		if (i == 21) {
			assert_int_equal(v[i].err, -EFAULT);	/* 40 bytes mapped, 40 not */
			continue;
		}
		assert_int_equal(v[i].err, 0);
		assert_memory_equal(got[i], (uint8_t *)(uintptr_t)v[i].addr, v[i].len);
	}
	munmap(map, size);
}

/* pid's Private_Dirty in kB (smaps_rollup), -1 if unknown */
static long private_dirty_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Private_Dirty: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* A child that waits for a byte on p[0] (or for the test's end), then execs sleep (exec_after) or exits. */
static pid_t child_waiting(const int p[2], bool exec_after)
{
	pid_t pid = fork();
	char c;

	if (pid)
		return pid;
	close(p[1]);	/* a test that fails leaves: the read ends */
	if (read(p[0], &c, 1) == 1 && exec_after)
		execl("/bin/sleep", "sleep", "5", (char *)NULL);
	_exit(0);
}

static void test_fork_pages_not_copied(void **state)
{
	const size_t size = 16u << 20;
	long page = sysconf(_SC_PAGESIZE), before, after;
	uint8_t *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct mem_reader mr;
	int p[2], status;
	uint64_t w;
	pid_t child;

	assert_true(map != MAP_FAILED);
	memset(map, 0x5a, size);
	assert_int_equal(pipe(p), 0);
	child = child_waiting(p, true);
	assert_true(child > 0);
	before = private_dirty_kb(child);
	procmem__reader(&mr, child);
	for (size_t off = 0; off < size; off += (size_t)page) {
		w = 0;
		assert_int_equal(mem_read(&mr, (uintptr_t)(map + off), &w, sizeof(w)), 0);
		assert_true(w == 0x5a5a5a5a5a5a5a5aULL);
	}
	after = private_dirty_kb(child);
	if (before >= 0) {
		/* 16 MiB read a word a page: none of it copied into the child (process_vm_readv: +16 MB) */
		print_message("child's Private_Dirty %ld kB -> %ld kB\n", before, after);
		assert_true(after - before < 2048);
	}
	/* the child execs: the kept file is of its old address space, a new one is opened */
	assert_int_equal(write(p[1], "x", 1), 1);
	for (int i = 0; i < 200; i++) {
		char exe[64];
		ssize_t n;

		snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)child);
		char target[256];
		n = readlink(exe, target, sizeof(target) - 1);
		if (n > 0 && (target[n] = 0, strstr(target, "sleep")))
			break;
		usleep(10000);
	}
	w = 0;
	assert_int_equal(mem_read(&mr, (uintptr_t)map, &w, sizeof(w)), -EFAULT);	/* not there in sleep */
	/* gone */
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(mem_read(&mr, (uintptr_t)map, &w, sizeof(w)), -ESRCH);
	procmem__forget(child);
	close(p[0]);
	close(p[1]);
	munmap(map, size);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_readv),
		cmocka_unit_test(test_readv_ranges),
		cmocka_unit_test(test_fork_pages_not_copied),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
