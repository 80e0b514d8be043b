/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libpq's uprobes: finding libpq in the traced Python processes (a system libpq.so.5 or a copy
 * bundled in a wheel, mapped at start or by a late import), attaching the libpq programs of
 * bpf/sql.bpf.c per process, choosing each process's probe set (sqlmode.h), probing ahead of a
 * late import, and watching the dynamic linker for one. Events of these probes are handled by
 * sqltrace.c; this module owns the BPF object and its per-process state.
 *
 * A process without libpq is scanned again when its dynamic linker says it loaded something
 * (uprobe_multi kernels), else every 500 ms; a child forked by a process without libpq gets
 * probes ahead after AHEAD_DELAY (most exec at once, subprocess), and probes ahead go after a
 * time-to-live when no libpq shows up (their cost to other processes is in docs/PERFORMANCE.md).
 */
#ifndef PYTRACE_LIBPQ_H
#define PYTRACE_LIBPQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "pytrace_user.h"

struct session_maps;

#define LIBPQ_AHEAD_TTL_NS	(10 * 1000000000ULL)

struct libpq_opts {
	int probes;			/* enum sql_probe_opt (sqlmode.h) */
	unsigned text_cap;		/* statement bytes the probes capture */
	uint64_t ahead_ttl_ns;		/* probes ahead live this long (0: LIBPQ_AHEAD_TTL_NS) */
	uint32_t max_procs;		/* Python processes followed at once (0: default) */
	const char *btf_path;
};

struct libpq_stats {
	unsigned libpq_files;		/* distinct libpq files probed */
	unsigned processes_with_libpq;
	uint64_t unprobed;		/* processes with libpq left unprobed (cap reached) */
	int64_t exec_processes;		/* processes now on the exec probes (sqlmode.h) */
	uint64_t to_exec, to_send;	/* moves between the probe sets */
	uint64_t async_calls_in_exec;	/* asynchronous-API calls seen before a move back to send */
	uint64_t procs_dropped;		/* Python processes not followed: table full */
	const char *attached_as;	/* uprobe__kind_name(): "uprobe_multi links" or "perf events" */
};

struct libpq;

struct libpq *libpq__new(const struct libpq_opts *o, const struct session_maps *maps, char *err, size_t errlen);
void libpq__free(struct libpq *lq);
/* A Python process: probe its libpq, or watch it for one. */
void libpq__add_pid(struct libpq *lq, pid_t pid);
/* Whether pid is followed (libpq__add_pid or libpq__fork). */
bool libpq__has_pid(struct libpq *lq, pid_t pid);
/* A Python process forked from parent: its own probes now, or ahead shortly. */
void libpq__fork(struct libpq *lq, pid_t child, pid_t parent);
/* pid exec'd or exited: its probes, watch and state go. */
void libpq__forget_pid(struct libpq *lq, pid_t pid);
/* PT_EV_SQL_DLOPEN: pid's dynamic linker changed its loaded objects (ts: bpf_ktime_get_ns). */
void libpq__dlopen(struct libpq *lq, pid_t pid, uint64_t ts);
/* PT_EV_SQL_ASYNC: an asynchronous-API call in a process on the exec probes. */
void libpq__async_seen(struct libpq *lq, uint32_t pid, uint64_t now);
/* After each poll: scans after notices, probes ahead, rescans and probe-set reviews. */
void libpq__tick(struct libpq *lq, uint64_t now_ns);
/* The Python stack a statement's probe left in the stacks map under id. */
int libpq__stack(struct libpq *lq, uint64_t id, struct pt_stack *st);
void libpq__stats(struct libpq *lq, struct libpq_stats *st);

#endif
