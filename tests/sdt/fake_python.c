// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Stands in for a CPython built --with-dtrace: fires python:function__entry/function__return
 * with CPython's arguments (filename, funcname, lineno), guarded by semaphores the way
 * PyDTrace_FUNCTION_ENTRY_ENABLED() guards them, so nothing fires unless a tracer set them.
 *
 * usage: fake_python GOFILE N SLEEP_US NOISE
 *   prints "ready PID", waits for GOFILE to exist, then:
 *   - one stray entry of "work" (never returns) and one stray return of "outer" (never entered),
 *   - N x outer() -> work(), work()   (work sleeps SLEEP_US)
 *   - NOISE x noise()                 (no sleep; a non-matching function)
 *   - prints "done NS_PER_NOISE_CALL FIRED" and exits. FIRED counts probe sites reached with the
 *     semaphore set, so a test can tell "not attached" from "attached, not matched".
 */
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/sdt.h>

unsigned short python_function__entry_semaphore __attribute__((section(".probes")));
unsigned short python_function__return_semaphore __attribute__((section(".probes")));

static const char FILE_NAME[] = "/srv/fake/app.py";
static unsigned long fired;

static void entry(const char *name, int line)
{
	if (python_function__entry_semaphore) {
		fired++;
		STAP_PROBE3(python, function__entry, FILE_NAME, name, line);
	}
}

static void ret(const char *name, int line)
{
	if (python_function__return_semaphore) {
		fired++;
		STAP_PROBE3(python, function__return, FILE_NAME, name, line);
	}
}

/* Separate strings per function, as code objects have: the tracer keys on the pointers. */
static const char N_OUTER[] = "outer", N_WORK[] = "work", N_NOISE[] = "noise";

static __attribute__((noinline)) void work(long sleep_us)
{
	entry(N_WORK, 10);
	usleep(sleep_us);
	ret(N_WORK, 12);
}

static __attribute__((noinline)) void outer(long sleep_us)
{
	entry(N_OUTER, 20);
	work(sleep_us);
	work(sleep_us);
	ret(N_OUTER, 23);
}

static __attribute__((noinline)) void noise(void)
{
	entry(N_NOISE, 30);
	ret(N_NOISE, 31);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n, sleep_us, nnoise, i;
	double t0;

	if (argc != 5) {
		fprintf(stderr, "usage: %s GOFILE N SLEEP_US NOISE\n", argv[0]);
		return 2;
	}
	n = atol(argv[2]);
	sleep_us = atol(argv[3]);
	nnoise = atol(argv[4]);
	printf("ready %d\n", getpid());
	fflush(stdout);
	while (access(argv[1], F_OK))
		usleep(10000);
	entry(N_WORK, 10);	/* stray: unwound without a return */
	ret(N_OUTER, 23);	/* stray: a return whose entry came before the tracer */
	for (i = 0; i < n; i++)
		outer(sleep_us);
	t0 = now_ns();
	for (i = 0; i < nnoise; i++)
		noise();
	printf("done %.1f %lu\n", nnoise ? (now_ns() - t0) / nnoise : 0.0, fired);
	fflush(stdout);
	return 0;
}
