/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Statements through libpq: finding libpq in traced processes, probing it, pairing and counting. */
#ifndef PYTRACE_SQLTRACE_H
#define PYTRACE_SQLTRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "pytrace_user.h"
#include "sqlmatch.h"
#include "sqlstats.h"
#include "stacks.h"

struct bpf_map;
struct jsonw;

struct sqltrace_opts {
	unsigned text_cap;		/* bytes of statement text captured (default 1024) */
	bool show_literals;		/* keep literals in examples and the slow log */
	double slow_ms;			/* statements slower than this go to slow_log */
	FILE *slow_log;			/* JSON lines, or NULL */
	unsigned max_patterns;		/* 0: default */
	int probes;			/* enum sql_probe_opt (sqlmode.h): which libpq probes */
};

/* Turns a Python stack into frame names, root first; returns how many were written. */
typedef size_t (*sqltrace_frames_fn)(void *ctx, uint32_t pid, uint32_t tid, const struct pt_stack *st,
				     const char **out, size_t max);
/* Called for each completed statement with its stack (root first) and its pattern. */
typedef void (*sqltrace_query_fn)(void *ctx, const struct sql_query *q, const char *const *frames,
				  size_t nframes, const char *pattern, const char *call_site);

struct sqltrace_shared {
	struct bpf_map *procs, *tracked, *counters, *events;	/* the profiler's maps, reused */
	sqltrace_frames_fn frames;
	sqltrace_query_fn on_query;	/* optional */
	void *ctx;
};

struct sqltrace_stats {
	unsigned libpq_files;		/* distinct libpq files probed */
	unsigned processes_with_libpq;
	uint64_t unprobed;		/* processes with libpq left unprobed (cap reached) */
	uint64_t calls;			/* libpq calls seen in traced processes */
	uint64_t lost;			/* libpq events dropped (ring buffer full) */
	uint64_t stacks_missing;	/* statements whose stack had left the stacks map */
	int64_t exec_processes;		/* processes now on the exec probes (sqlmode.h) */
	uint64_t to_exec, to_send;	/* moves between the probe sets */
	uint64_t async_calls_in_exec;	/* asynchronous-API calls seen before a move back to send */
	const char *attached_as;	/* uprobe__kind_name(): "uprobe_multi links" or "perf events" */
	struct sql_match_stats match;
};

struct sqltrace;

struct sqltrace *sqltrace__new(const struct sqltrace_opts *o, const struct sqltrace_shared *sh,
			       char *err, size_t errlen);
void sqltrace__free(struct sqltrace *s);
/*
 * Find libpq in pid's mappings and probe any copy not probed yet: 1 if pid maps libpq, 0 if
 * not, -errno if probing failed (message in err). A pid without one is watched
 * (sqltrace__watch_pid) and, with ahead, probed ahead (sqltrace__probe_ahead).
 */
int sqltrace__scan_pid(struct sqltrace *s, pid_t pid, bool ahead, char *err, size_t errlen);
/* An event of type PT_EV_SQL_*. */
void sqltrace__handle(struct sqltrace *s, const void *data, size_t size);
void sqltrace__forget_pid(struct sqltrace *s, pid_t pid);
/*
 * Watch pid's dynamic linker (uprobe_multi kernels): each change to its loaded objects then
 * comes as a PT_EV_SQL_DLOPEN event, on which the caller scans pid again. sqltrace__scan_pid
 * watches a process without libpq, and stops watching one with it.
 */
void sqltrace__watch_pid(struct sqltrace *s, pid_t pid);
void sqltrace__unwatch_pid(struct sqltrace *s, pid_t pid);
bool sqltrace__watching(struct sqltrace *s, pid_t pid);
/*
 * Attach a watched pid's probes on each libpq file known so far (the system's, and any a traced
 * process mapped) that it has none on yet: the kernel arms them as pid maps the file. A few
 * uprobe links each: for a child just forked, call it once the child has not exec'd for a while.
 */
void sqltrace__probe_ahead(struct sqltrace *s, pid_t pid);
/* Review each process's probe set (sqlmode.h); call every few hundred milliseconds. */
void sqltrace__tick(struct sqltrace *s, uint64_t now_ns);
void sqltrace__stats(struct sqltrace *s, struct sqltrace_stats *st);
struct sql_stats *sqltrace__sql_stats(struct sqltrace *s);
/* The innermost frame of the application's own code (not site-packages, dist-packages or the
 * standard library), or NULL. frames are root first. */
const char *sqltrace__call_site(const char *const *frames, size_t n);

#endif
