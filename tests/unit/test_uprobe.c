// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Links released off the caller's thread (uprobe.c): tickets in order, each redeemed only once
 * every link up to it is closed. Pipes stand in for uprobe_multi link fds: closing one is all the
 * releasers do with a link's fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "uprobe.h"

#define N 200

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static void test_not_attached(void **state)
{
	struct uprobe u = { 0 };

	(void)state;
	assert_int_equal(uprobe__detach(&u), 0);
	assert_true(uprobe__released(0));
}

static void test_tickets_in_order(void **state)
{
	int rd[N], wr[N], i, j, p[2];
	uint64_t ticket[N];
	char c;

	(void)state;
	for (i = 0; i < N; i++) {
		assert_int_equal(pipe(p), 0);
		rd[i] = p[0];
		wr[i] = p[1];
	}
	for (i = 0; i < N; i++) {
		struct uprobe u = { .fd = wr[i], .multi = true };

		ticket[i] = uprobe__detach(&u);
		assert_false(uprobe__attached(&u));	/* zeroed for reuse at once */
		if (i)
			assert_true(ticket[i] == ticket[i - 1] + 1);
	}
	/* Redeemed tickets: every link up to them is closed, whatever the threads' order. */
	for (i = N / 4; i < N; i += N / 4) {
		uprobe__wait_released(ticket[i]);
		assert_true(uprobe__released(ticket[i]));
		for (j = 0; j <= i; j++)
			assert_false(fd_open(wr[j]));
	}
	uprobe__wait_released(ticket[N - 1]);
	for (i = 0; i < N; i++) {
		assert_false(fd_open(wr[i]));
		assert_int_equal(read(rd[i], &c, 1), 0);	/* the write end is gone: EOF */
		close(rd[i]);
	}
}

/* A caller polling a ticket (the exec set's drop) sees it redeemed without waiting on it. */
static void test_poll_until_released(void **state)
{
	struct uprobe u;
	uint64_t t;
	int p[2], spins = 0;

	(void)state;
	assert_int_equal(pipe(p), 0);
	u = (struct uprobe){ .fd = p[1], .multi = true };
	t = uprobe__detach(&u);
	while (!uprobe__released(t) && spins++ < 5000)
		usleep(1000);
	assert_true(uprobe__released(t));
	assert_false(fd_open(p[1]));
	close(p[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_attached),
		cmocka_unit_test(test_tickets_in_order),
		cmocka_unit_test(test_poll_until_released),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
