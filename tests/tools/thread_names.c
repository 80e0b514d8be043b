// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The Python thread names of a running process, as --threads reads them (src/pythreads.c):
 *   thread_names PID          each thread's tid and threading name
 *   thread_names -n N PID     also the time of N reads of the registry (what one refresh of
 *                             --threads costs) and of N lookups of it through sys.modules
 * Root (or CAP_SYS_PTRACE) to read another user's process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procmem.h"
#include "pyproc.h"
#include "pythreads.h"

#define MAX 1024

static struct mem_reader inner;
static unsigned long nreads;

static int counting_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	nreads++;
	return inner.read(inner.ctx, addr, buf, len);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	static struct py_thread_name names[MAX];
	struct py_target t;
	struct mem_reader mr;
	char err[512];
	uint64_t active;
	int iters = 0, pid, n, ret;
	double t0;

	if (argc == 4 && !strcmp(argv[1], "-n")) {
		iters = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 2 || (pid = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: thread_names [-n N] PID\n");
		return 2;
	}
	if (py_target__inspect(pid, &t, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	procmem__reader(&inner, pid);
	mr = (struct mem_reader){ .read = counting_read };
	ret = pythreads__find_active(&t.layout, &mr, t.runtime, &active);
	if (ret) {
		fprintf(stderr, "pid %d: threading._active not found: %s\n", pid, strerror(-ret));
		return 1;
	}
	n = pythreads__read_active(&t.layout, &mr, active, names, MAX);
	if (n < 0) {
		fprintf(stderr, "pid %d: reading threading._active: %s\n", pid, strerror(-n));
		return 1;
	}
	for (int i = 0; i < n; i++)
		printf("%u\t%s\n", names[i].tid, names[i].name);
	if (iters > 0) {
		nreads = 0;
		t0 = now_us();
		for (int i = 0; i < iters; i++)
			pythreads__read_active(&t.layout, &mr, active, names, MAX);
		printf("read of %d threads: %.1f us, %lu reads of its memory\n", n, (now_us() - t0) / iters,
		       nreads / iters);
		nreads = 0;
		t0 = now_us();
		for (int i = 0; i < iters; i++)
			pythreads__find_active(&t.layout, &mr, t.runtime, &active);
		printf("lookup through sys.modules: %.1f us, %lu reads\n", (now_us() - t0) / iters, nreads / iters);
	}
	return 0;
}
