// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A socket syscall loop for bench/sock_tp_cost.sh: one process writes 20 bytes on one end of a
 * unix socketpair and reads them on the other, N times; prints the best of RUNS runs in ns per
 * syscall (noise only ever slows a run down). Usage: sockpair_loop [N (300000)] [RUNS (5)]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 300000;
	int runs = argc > 2 ? atoi(argv[2]) : 5, sv[2];
	double best = 0;
	char b[64] = { 0 };

	if (n <= 0 || runs <= 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		perror("sockpair_loop");
		return 1;
	}
	for (int r = 0; r < runs; r++) {
		double t0 = now_ns(), t;

		for (long i = 0; i < n; i++)
			if (write(sv[0], b, 20) != 20 || read(sv[1], b, sizeof(b)) <= 0) {
				perror("sockpair_loop");
				return 1;
			}
		t = now_ns() - t0;
		if (!r || t < best)
			best = t;
	}
	printf("%.1f\n", best / (2.0 * n));
	return 0;
}
