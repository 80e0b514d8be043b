// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Context-switch-heavy ping-pong between two processes through pipes, for
 * bench/flame_overhead.py --idle: what the sched_switch program costs a process pytrace-bpf
 * does not trace. Usage: pingpong SECONDS [CPU_A CPU_B]. Prints "round_trips=N elapsed=S
 * ns_per_round_trip=X". Each round trip is two blocks and two wake-ups (four context switches
 * when both sides share a CPU, or each side switching to and from idle when they do not).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

int main(int argc, char **argv)
{
	int a[2], b[2], ca = argc > 3 ? atoi(argv[2]) : -1, cb = argc > 3 ? atoi(argv[3]) : -1;
	double secs = argc > 1 ? atof(argv[1]) : 2, t0, t;
	unsigned long n = 0;
	char c = 'x';
	pid_t pid;

	if (pipe(a) || pipe(b))
		return 1;
	pid = fork();
	if (pid == 0) {
		close(a[1]);
		close(b[0]);
		pin(cb);
		while (read(a[0], &c, 1) == 1)
			if (write(b[1], &c, 1) != 1)
				break;
		_exit(0);
	}
	close(a[0]);
	close(b[1]);
	pin(ca);
	t0 = now();
	do {
		for (int i = 0; i < 256; i++) {
			if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1)
				return 1;
		}
		n += 256;
		t = now();
	} while (t - t0 < secs);
	close(a[1]);
	waitpid(pid, NULL, 0);
	printf("round_trips=%lu elapsed=%.6f ns_per_round_trip=%.1f\n", n, t - t0, (t - t0) * 1e9 / n);
	return 0;
}
