/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --functions statistics and reports: per-function call latency and callers from the USDT probes,
 * each function's share of sampled wall-clock time where the probes are missing or partial, GC
 * pauses by generation and import times. Pure: no libbpf, no BPF maps. funcprobe.c feeds it from
 * the ring buffer and the sampler; a test feeds it directly.
 *
 * Rules:
 * - A function is (file, name): name is co_name for probe calls, the qualified name for samples.
 *   A probe call's qualified name is learned from its own frame when that frame is among the
 *   caller frames (CPython pushes it before the probe fires).
 * - Probe calls: one latency histogram per function (wall time from entry to return, exceptions
 *   included; a generator counts one call per resume: that is the BPF side's doing), and calls
 *   per calling frame. A caller is unknown when no frame could be named or the frame is a
 *   "[...]" pseudo-frame; callers past FUNCSTATS_MAX_CALLERS are counted as other.
 * - Samples: each matching frame of a stack gets the stack's weight once (recursion counts once),
 *   on- or off-CPU, and so does its calling frame ("[root]" at the root). A function's share is
 *   its weight over every sampled stack's. Samples of a live process whose probes are complete
 *   are ignored (unless the mode is FUNCS_SAMPLE): its calls are counted exactly. Samples of a
 *   process not in the table count.
 * - Bounds: FUNCSTATS_MAX_FUNCS functions, FUNCSTATS_MAX_PIDS processes (an exited process's
 *   entry is taken over when full), FUNCSTATS_MAX_IMPORTS modules (later ones still count in the
 *   imports histogram). What does not fit is counted (funcstats__drops).
 */
#ifndef PYTRACE_FUNCSTATS_H
#define PYTRACE_FUNCSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "usdt.h"

struct jsonw;

#define FUNCSTATS_MAX_FUNCS	4096	/* distinct functions reported */
#define FUNCSTATS_MAX_CALLERS	16	/* distinct callers kept per function */
#define FUNCSTATS_MAX_PIDS	1024
#define FUNCSTATS_MAX_IMPORTS	4096

enum funcs_mode {
	FUNCS_AUTO,		/* probes where complete, sampled shares elsewhere */
	FUNCS_SAMPLE,		/* sampled shares only (probes off) */
};

struct funcstats_opts {
	const char *const *patterns;	/* at most FN_MAX_PATTERNS (include/funcs.h) */
	int npatterns;
	enum funcs_mode mode;
};

/* A traced process, as the report shows it. The probe side fills it (funcstats__proc). */
struct funcstats_proc {
	pid_t pid;
	unsigned major, minor;		/* CPython version */
	char binary[512];
	struct py_probes pp;		/* what its interpreter offers */
	bool exited;			/* kept for the report; the entry may be taken by a new process */
};

/* Counters kept outside this module (the BPF side's and the event handler's), for the reports. */
struct funcstats_counters {
	uint64_t lost;			/* PT_CNT_FUNC_LOST: ring buffer full */
	uint64_t unpaired;		/* PT_CNT_FUNC_UNPAIRED: entries without a return */
	uint64_t too_deep;		/* PT_CNT_FUNC_DEEP */
	uint64_t offcpu_stacks;		/* PT_CNT_OFFCPU */
	uint64_t candidates_rejected;	/* passed the BPF prefilter, not the pattern */
	uint64_t events_unattributed;	/* call events of no known function */
};

/* What did not fit. */
struct funcstats_drops {
	uint64_t functions;		/* past FUNCSTATS_MAX_FUNCS (or its hash table) */
	uint64_t pids;			/* processes refused: the table full of live ones */
	uint64_t imports;		/* import events of modules past FUNCSTATS_MAX_IMPORTS */
};

struct funcstats;

/* NULL with a message: an invalid pattern, too many patterns, or out of memory. */
struct funcstats *funcstats__new(const struct funcstats_opts *o, char *err, size_t errlen);
void funcstats__free(struct funcstats *st);

/* Does any pattern match? qualname may be NULL. */
bool funcstats__match(const struct funcstats *st, const char *file, const char *name, const char *qualname);

/*
 * The live (not exited) entry of pid; with create, a new one when there is none: appended, or,
 * when the table is full, an exited process's entry taken over. NULL when not found or full
 * (counted in drops.pids when create). *fresh (may be NULL): the entry is new, zeroed but for pid.
 */
struct funcstats_proc *funcstats__proc(struct funcstats *st, pid_t pid, bool create, bool *fresh);
/* Its index, 0..FUNCSTATS_MAX_PIDS-1: for a caller keeping state of its own per process. */
int funcstats__proc_index(const struct funcstats *st, const struct funcstats_proc *p);
/* Is this process's answer sampled shares (its probes not complete, or FUNCS_SAMPLE)? */
bool funcstats__proc_sampled(const struct funcstats *st, const struct funcstats_proc *p);
/* Does any traced process need the sampled fallback (also when none is known yet)? */
bool funcstats__sampling_used(const struct funcstats *st);

/*
 * Probe calls. funcstats__func: the matched function (file, name) as a handle, created if new;
 * -1 when the table is full (counted). The caller has decided that it matches.
 * funcstats__add_call: one call of fn that took dur_ns; frames are the interpreter frames read
 * at its entry, named as "qualname (file:line)" (pystacks.h), root first; the innermost may be
 * fn's own frame. n == 0: the caller is unknown.
 */
int funcstats__func(struct funcstats *st, const char *file, const char *name);
void funcstats__add_call(struct funcstats *st, int fn, uint64_t dur_ns, const char *const *frames, size_t n);
/* Both in one: the handle, or -1 (full). */
int funcstats__call(struct funcstats *st, const char *file, const char *name, uint64_t dur_ns,
		    const char *const *frames, size_t n);

/* A collection of generation (0..2; others count in the total only) that freed collected objects. */
void funcstats__add_gc(struct funcstats *st, int generation, uint64_t dur_ns, int64_t collected);
/* An import of module (nested imports included in dur_ns); found: the last event's verdict. */
void funcstats__add_import(struct funcstats *st, const char *module, uint64_t dur_ns, int found);

/*
 * A sampled stack of pid (root first, frames named as above, "[...]" pseudo-frames allowed) and
 * the wall time it stands for, on or off CPU.
 */
void funcstats__add_sample(struct funcstats *st, uint32_t pid, uint32_t tid, const char *const *frames, size_t n,
			   uint64_t weight_ns, bool offcpu);

void funcstats__drops(const struct funcstats *st, struct funcstats_drops *d);

/* "Source: ..." of the report: what the answer comes from. */
const char *funcstats__source(const struct funcstats *st);
/* The text report. c may be NULL (all 0). */
void funcstats__report(struct funcstats *st, const struct funcstats_counters *c, FILE *out);
/* The "functions" section (an object), and the "gc" section (an object, imports included). */
void funcstats__write_json(struct funcstats *st, const struct funcstats_counters *c, struct jsonw *w);
void funcstats__write_gc_json(struct funcstats *st, struct jsonw *w);

#endif
