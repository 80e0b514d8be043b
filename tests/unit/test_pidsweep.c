// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pidsweep: exited processes' entries go together, a second after the first exit or when
 * PIDSWEEP_MAX wait, and no other process's entry goes with them. On a real BPF hash map (as the
 * HTTP layer's conns and the wire reader's pg_conns) where the test may make one: as root, as
 * make check runs it, a map that cannot be made fails the test. Without the privilege, on a map
 * kept here with a hash map's semantics for bpf_map_get_next_key (a key not found gives the
 * first; the walk deletes behind itself): the same checks run, nothing is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

static int map_fd = -1;

/* The map kept here: keys in the order they were put (a BPF hash map's order is its buckets'). */
#define FAKE_MAX 4096
static struct key fake_keys[FAKE_MAX];
static bool fake_used[FAKE_MAX];
static unsigned fake_n;

static int fake_find(const struct key *k)
{
	for (unsigned i = 0; i < fake_n; i++)
		if (fake_used[i] && fake_keys[i].pid == k->pid && fake_keys[i].fd == k->fd)
			return (int)i;
	return -1;
}

static int fake_next_key(int fd, const void *key, void *next)
{
	int at = key ? fake_find(key) : -1;	/* not found: from the first, as the kernel does */

	(void)fd;
	for (unsigned i = (unsigned)(at + 1); i < fake_n; i++) {
		if (fake_used[i]) {
			memcpy(next, &fake_keys[i], sizeof(struct key));
			return 0;
		}
	}
	return -ENOENT;
}

static int fake_delete_key(int fd, const void *key)
{
	int at = fake_find(key);

	(void)fd;
	if (at < 0)
		return -ENOENT;
	fake_used[at] = false;
	return 0;
}

static const struct pidsweep_ops fake_ops = { .next_key = fake_next_key, .delete_key = fake_delete_key };
static const struct pidsweep_ops *ops;	/* NULL: the BPF map's */

static int setup(void **state)
{
	(void)state;
	map_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "test_pidsweep", sizeof(struct key), sizeof(uint32_t), 4096, NULL);
	if (map_fd >= 0)
		return 0;
	if (geteuid() == 0) {
		fprintf(stderr, "test_pidsweep: cannot create a BPF hash map as root: %s\n", strerror(errno));
		return -1;	/* the group fails */
	}
	fprintf(stderr, "test_pidsweep: uid %u may not make a BPF map (%s): the sweep runs on the test's own map\n",
		(unsigned)geteuid(), strerror(errno));
	ops = &fake_ops;
	map_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);	/* a descriptor to pass: pidsweep refuses -1 */
	return map_fd < 0 ? -1 : 0;
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

	if (!ops) {
		assert_int_equal(bpf_map_update_elem(map_fd, &k, &v, BPF_ANY), 0);
		return;
	}
	assert_true(fake_n < FAKE_MAX);
	fake_keys[fake_n] = k;
	fake_used[fake_n++] = true;
}

static unsigned count(uint32_t pid)
{
	struct key k, next;
	unsigned n = 0;
	int first = 1;

	while (!(ops ? ops->next_key(map_fd, first ? NULL : &k, &next) :
		       bpf_map_get_next_key(map_fd, first ? NULL : &k, &next))) {
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
	memset(&ps, 0, sizeof(ps));
	ps.ops = ops;
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
