/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* HTTP requests of traced processes from their socket syscalls, assembled by src/requests.c. */
#ifndef PYTRACE_HTTPTRACE_H
#define PYTRACE_HTTPTRACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "requests.h"

struct bpf_map;

struct httptrace_shared {
	struct bpf_map *procs, *tracked, *counters, *events;	/* the profiler's maps, reused */
};

struct httptrace_stats {
	const char *hook;		/* "per-syscall tracepoints" or "raw syscall tracepoints" */
	uint64_t lost;			/* socket events dropped: ring buffer full */
	uint64_t conns_dropped;		/* accepted connections not followed: BPF map full */
	struct requests_stats req;
};

struct httptrace;

/* ro.last_write and ro.ctx are set here. */
struct httptrace *httptrace__new(const struct requests_opts *ro, const struct httptrace_shared *sh,
				 char *err, size_t errlen);
int httptrace__attach(struct httptrace *h, char *err, size_t errlen);
/* An event of type PT_EV_HTTP_*. */
void httptrace__handle(struct httptrace *h, const void *data, size_t size);
void httptrace__tick(struct httptrace *h);
/* Complete what is complete (the end of the session). */
void httptrace__flush(struct httptrace *h);
void httptrace__forget_pid(struct httptrace *h, pid_t pid);
void httptrace__stats(struct httptrace *h, struct httptrace_stats *st);
struct requests *httptrace__requests(struct httptrace *h);
void httptrace__free(struct httptrace *h);

#endif
