// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pidsweep on a real BPF hash map (as the HTTP layer's conns and the wire reader's pg_conns):
 * exited processes' entries go together, a second after the first exit or when PIDSWEEP_MAX
 * wait, and no other process's entry goes with them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include <cmocka.h>

#include "pidsweep.h"

struct key {
	uint32_t pid;
	int32_t fd;
};

static int map_fd = -1, map_errno;

static int setup(void **state)
{
	(void)state;
	map_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_pidsweep", sizeof(struct key), sizeof(uint32_t), 4096, NULL);
	map_errno = map_fd < 0 ? errno : 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (map_fd >= 0)
		close(map_fd);
	return 0;
}

static void put(uint32_t pid, int32_t fd)
{
	struct key k = { pid, fd };
	uint32_t v = 1;

	assert_int_equal(bpf_map_update_elem(map_fd, &k, &v, BPF_ANY), 0);
}

static unsigned count(uint32_t pid)
{
	struct key k, next;
	unsigned n = 0;
	int first = 1;

	while (!bpf_map_get_next_key(map_fd, first ? NULL : &k, &next)) {
		n += next.pid == pid;
		k = next;
		first = 0;
	}
	return n;
}

static void test_sweep(void **state)
{
	struct pidsweep ps;
	const uint64_t s = 1000000000ULL;

	(void)state;
	if (map_fd < 0) {
		/*
		 * Only an unprivileged run may skip, and it says why (tests/run-unit.sh prints the
		 * reason and counts the skip; under CI=true a skip fails the run). As root, a map
		 * that cannot be created is a failure.
		 */
		if (geteuid() != 0 && (map_errno == EPERM || map_errno == EACCES)) {
			print_message("SKIP REASON: creating a BPF hash map needs CAP_BPF and this test runs as uid %u "
				      "(%s); run the unit tests as root, as make check does\n",
				      (unsigned)geteuid(), strerror(map_errno));
			skip();
		}
		fail_msg("cannot create a BPF hash map (uid %u): %s", (unsigned)geteuid(), strerror(map_errno));
	}
	memset(&ps, 0, sizeof(ps));
	for (uint32_t pid = 10; pid < 13; pid++)
		for (int32_t fd = 0; fd < 40; fd++)
			put(pid, fd);
	pidsweep__add(&ps, map_fd, 10, 5 * s);
	pidsweep__add(&ps, map_fd, 10, 5 * s);	/* once */
	pidsweep__add(&ps, map_fd, 11, 5 * s + s / 2);
	assert_int_equal(ps.n, 2);
	pidsweep__tick(&ps, map_fd, 5 * s + s / 2);
	assert_int_equal(count(10), 40);
	/* a second after the first: both swept in one walk; pid 12 untouched */
	pidsweep__tick(&ps, map_fd, 6 * s);
	assert_int_equal(count(10), 0);
	assert_int_equal(count(11), 0);
	assert_int_equal(count(12), 40);
	assert_int_equal(ps.sweeps, 1);
	assert_int_equal(ps.deleted, 80);
	assert_int_equal(ps.n, 0);
	pidsweep__tick(&ps, map_fd, 60 * s);
	assert_int_equal(ps.sweeps, 1);	/* nothing waits: no walk */
	/* PIDSWEEP_MAX waiting: the next one sweeps them at once, and waits itself */
	for (uint32_t pid = 100; pid < 100 + PIDSWEEP_MAX; pid++) {
		put(pid, 3);
		pidsweep__add(&ps, map_fd, pid, 61 * s);
	}
	put(12, 41);
	assert_int_equal(count(100), 1);
	pidsweep__add(&ps, map_fd, 12, 61 * s);
	assert_int_equal(ps.sweeps, 2);
	assert_int_equal(count(100), 0);
	assert_int_equal(count(100 + PIDSWEEP_MAX - 1), 0);
	assert_int_equal(count(12), 41);
	pidsweep__run(&ps, map_fd);
	assert_int_equal(count(12), 0);
	assert_int_equal(ps.deleted, 80 + PIDSWEEP_MAX + 41);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
