/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The sampling session: BPF programs, the traced processes, and the stacks they yield. */
#ifndef PYTRACE_PROFILE_H
#define PYTRACE_PROFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "httptrace.h"
#include "funcs.h"
#include "sqltrace.h"
#include "stacks.h"

struct profiler_opts {
	bool sample;		/* CPU sampling for flame graphs and hot functions */
	bool sql;		/* statements through libpq */
	bool sql_in_flame;	/* statement time as [sql] leaves; stack weights become microseconds */
	struct sqltrace_opts sql_opts;
	bool http;		/* HTTP requests from socket syscalls, with their SQL */
	struct requests_opts http_opts;
	unsigned rate_hz;	/* samples per second per CPU */
	bool follow_children;
	bool threads;		/* thread name as the root frame */
	size_t max_stacks;	/* cap on distinct stacks (0: default) */
	const char *btf_path;	/* kernel BTF file, NULL: the running kernel's */
	bool funcs;		/* --functions: USDT function/GC/import probes */
	struct funcs_opts funcs_opts;
	bool offcpu;		/* also stacks of blocked threads, weighted by time away */
};

struct profiler_stats {
	uint64_t samples;	/* samples taken in traced processes */
	uint64_t lost;		/* dropped: ring buffer full */
	uint64_t proc_lost;	/* process events dropped */
	uint64_t no_python;	/* samples of processes without a known interpreter */
	uint64_t native;	/* samples of threads without a Python thread state */
	uint64_t truncated;	/* stacks deeper than the walker keeps, or cut by a read error */
	uint64_t unresolved;	/* frames the symbolizer could not name */
	uint64_t stacks_dropped;	/* samples folded into the overflow stack (cap reached) */
	unsigned processes;	/* processes traced so far */
	unsigned python_processes;
	unsigned live;		/* traced processes still running */
	uint64_t procs_dropped;	/* processes not followed: more than the table holds at once */
	unsigned max_depth;	/* deepest Python stack seen */
};

struct profiler;

/* Open and load the BPF programs. Returns NULL and a message in err on failure. */
struct profiler *profiler__new(const struct profiler_opts *opts, char *err, size_t errlen);
/* Trace pid and its present descendants. Fails (with a message) if pid is not a supported Python. */
int profiler__add_root(struct profiler *p, pid_t pid, char *err, size_t errlen);
/* Start sampling on every CPU. */
int profiler__attach(struct profiler *p, char *err, size_t errlen);
/* Wait up to timeout_ms for events and process them. Returns events handled or -errno. */
int profiler__poll(struct profiler *p, int timeout_ms);
/* Take whatever is still queued (at the end). */
void profiler__drain(struct profiler *p);
struct stack_agg *profiler__stacks(struct profiler *p);
/* The SQL side, or NULL when not tracing statements. */
struct sqltrace *profiler__sql(struct profiler *p);
/* The HTTP side, or NULL when not tracing requests. */
struct httptrace *profiler__http(struct profiler *p);
/* The --functions side, or NULL. */
struct funcs *profiler__funcs(struct profiler *p);
void profiler__stats(struct profiler *p, struct profiler_stats *st);
/* One line per traced Python process: pid, version, binary, how offsets were found. */
void profiler__describe(struct profiler *p, FILE *f);
void profiler__free(struct profiler *p);

#endif
