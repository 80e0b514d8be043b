/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PYTRACE_UTIL_H
#define PYTRACE_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

extern int pt_verbose;

#define elog(fmt, ...) fprintf(stderr, "pytrace-bpf: " fmt, ##__VA_ARGS__)
#define wlog(fmt, ...) fprintf(stderr, "pytrace-bpf: warning: " fmt, ##__VA_ARGS__)
#define vlog(fmt, ...) do { if (pt_verbose) fprintf(stderr, fmt, ##__VA_ARGS__); } while (0)
#define dlog(fmt, ...) do { if (pt_verbose > 1) fprintf(stderr, fmt, ##__VA_ARGS__); } while (0)

/* CLOCK_MONOTONIC in nanoseconds: the clock bpf_ktime_get_ns() reads. */
static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
