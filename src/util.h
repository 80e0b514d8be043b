/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PYTRACE_UTIL_H
#define PYTRACE_UTIL_H

#include <stdio.h>

extern int pt_verbose;

#define elog(fmt, ...) fprintf(stderr, "pytrace-bpf: " fmt, ##__VA_ARGS__)
#define wlog(fmt, ...) fprintf(stderr, "pytrace-bpf: warning: " fmt, ##__VA_ARGS__)
#define vlog(fmt, ...) do { if (pt_verbose) fprintf(stderr, fmt, ##__VA_ARGS__); } while (0)
#define dlog(fmt, ...) do { if (pt_verbose > 1) fprintf(stderr, fmt, ##__VA_ARGS__); } while (0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
