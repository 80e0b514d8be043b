/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Names the Python stacks the BPF walker leaves (struct pt_stack) for any capability: the
 * sampler, SQL's call sites, --functions. Frames are "qualname (file:LINE)", root first, with
 * the bracketed markers the README lists ([thread ...] with threads, [truncated], [unknown],
 * [native], [not Python: comm], [Python starting: comm]).
 */
#ifndef PYTRACE_PYSTACKS_H
#define PYTRACE_PYSTACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pytrace_user.h"

#define PYSTACKS_MAX_FRAMES	(PT_MAX_FRAMES + 3)	/* walked frames and the markers around them */

struct procs;
struct jsonw;

struct pystacks_stats {
	uint64_t no_python;	/* stacks of processes without a known interpreter */
	uint64_t native;	/* of threads without a Python thread state */
	uint64_t truncated;	/* deeper than the walker keeps, or cut by a read error */
	uint64_t unresolved;	/* frames the symbolizer could not name */
	unsigned max_depth;	/* deepest Python stack seen */
	uint64_t name_reads;	/* reads of threading's registry (--threads) */
	uint64_t name_errors;	/* ... that failed (threading not imported, a torn read) */
};

struct pystacks;

/*
 * threads: each thread's name as the root frame, "[thread NAME tid=N]" (" main" for the main
 * thread): threading.Thread.name, read from the target (pythreads.h) when a thread not named
 * yet appears and every second; else the kernel's comm.
 */
struct pystacks *pystacks__new(struct procs *procs, bool threads);
void pystacks__free(struct pystacks *ps);
/* Remember tid's name (from a sample) for [thread ...] roots and markers. */
void pystacks__set_comm(struct pystacks *ps, uint32_t tid, const char *comm);
/*
 * Name st's frames, root first, into out[] (at most max). The strings stay valid until the
 * next call. Returns how many, 0 for a process that is not followed.
 */
size_t pystacks__name(struct pystacks *ps, uint32_t pid, uint32_t tid, const struct pt_stack *st,
		      const char **out, size_t max);
/* pid exec'd or exited: the code objects cached for it are stale. */
void pystacks__forget(struct pystacks *ps, uint32_t pid);
void pystacks__stats(const struct pystacks *ps, struct pystacks_stats *st);
/* With threads: the "threads" section of the JSON report (each thread seen, its latest name). */
void pystacks__write_json(const struct pystacks *ps, struct jsonw *w);

#endif
