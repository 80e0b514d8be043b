// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * For bench/requests_overhead.py --configs ...,client-delay: loaded into the service with LD_PRELOAD,
 * it spins PT_DELAY_NS (5000) before each send() and sendto() while the first byte of
 * /dev/shm/ptdelay is 1, after each recv() and recvfrom() that returns data while it is 2, or
 * after each send() and sendto() (where a tracer's programs on the syscall's exit run) while it
 * is 3.
 * No tracer: what a per-statement latency alone does to the service and PostgreSQL, to tell it
 * from what a tracer costs beside it, and whether it matters where in the round trip it falls
 * (before the statement leaves, or after its result came back).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
static volatile unsigned char *flag;
static long delay_ns;
static void init(void) {
	int fd = open("/dev/shm/ptdelay", O_RDONLY);
	if (fd >= 0) { flag = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0); if (flag == MAP_FAILED) flag = NULL; close(fd); }
	delay_ns = getenv("PT_DELAY_NS") ? atol(getenv("PT_DELAY_NS")) : 5000;
}
static void spin(int when) {
	struct timespec a, b;
	if (!flag) init();
	if (!flag || flag[0] != when) return;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do clock_gettime(CLOCK_MONOTONIC, &b); while ((b.tv_sec - a.tv_sec) * 1000000000L + b.tv_nsec - a.tv_nsec < delay_ns);
}
ssize_t send(int fd, const void *buf, size_t n, int fl) {
	static ssize_t (*real)(int, const void *, size_t, int);
	if (!real) real = dlsym(RTLD_NEXT, "send");
	ssize_t r;
	spin(1); r = real(fd, buf, n, fl); spin(3); return r;
}
ssize_t sendto(int fd, const void *buf, size_t n, int fl, const struct sockaddr *a, socklen_t l) {
	static ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	if (!real) real = dlsym(RTLD_NEXT, "sendto");
	ssize_t r;
	spin(1); r = real(fd, buf, n, fl, a, l); spin(3); return r;
}
ssize_t recv(int fd, void *buf, size_t n, int fl) {
	static ssize_t (*real)(int, void *, size_t, int);
	ssize_t r;
	if (!real) real = dlsym(RTLD_NEXT, "recv");
	r = real(fd, buf, n, fl);
	if (r > 0) spin(2);
	return r;
}
ssize_t recvfrom(int fd, void *buf, size_t n, int fl, struct sockaddr *a, socklen_t *l) {
	static ssize_t (*real)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t r;
	if (!real) real = dlsym(RTLD_NEXT, "recvfrom");
	r = real(fd, buf, n, fl, a, l);
	if (r > 0) spin(2);
	return r;
}
