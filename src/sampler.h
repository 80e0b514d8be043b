/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CPU sampling: a CPU-clock perf event per CPU runs the session object's stack walker
 * (bpf/profile.bpf.c); each sample's stack is named (pystacks.h) and counted in a stack_agg, the
 * input of every flame-graph output. With offcpu, stacks of threads leaving the CPU arrive too,
 * weighted by their time away: they go to the sample listeners (--functions' wall-clock shares),
 * never into the flame stacks. With idle (--idle), the off-CPU time of blocked threads goes into
 * the flame stacks (bpf/sampler.bpf.c idle_switch, idletab.h) and every weight is microseconds.
 */
#ifndef PYTRACE_SAMPLER_H
#define PYTRACE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stack_agg;

struct sampler_opts {
	bool enabled;
	unsigned rate_hz;	/* samples per second per CPU */
	size_t max_stacks;	/* cap on distinct stacks (0: default) */
	bool offcpu;		/* also stacks of blocked threads (needs the session's offcpu program) */
	bool us_weights;	/* weigh samples in microseconds (1e6 / rate_hz each), for [sql] leaves */
	bool gil;		/* --gil: only samples of the thread holding the GIL */
	bool idle;		/* --idle: off-CPU time of blocked threads too, in microseconds (us_weights) */
	unsigned idle_walks_per_s;	/* --idle-walks: a thread's blocks walked a second before 1 in k are (0: all) */
};

struct sampler_stats {
	uint64_t samples;	/* taken in traced processes */
	uint64_t lost;		/* ring buffer full */
	uint64_t stacks_dropped;	/* weight folded into the overflow stack (cap reached) */
	uint64_t idle_us;	/* --idle: off-CPU microseconds in the stacks */
	uint64_t idle_sql_us;	/* --idle: waits on PostgreSQL, left to the [sql] leaves */
	uint64_t idle_blocks;	/* --idle: blocks recorded by BPF */
	uint64_t idle_dropped;	/* --idle: blocks not recorded (idle_agg full) */
	uint64_t idle_unwalked;	/* --idle: blocks not walked (above the walk rate), counted in the estimate */
	uint64_t gil_dropped;	/* --gil: samples of threads not holding the GIL */
	uint64_t woke;		/* samples that woke the loader at once (new code, a process's first) */
};

/* A named sample: frames root first; weight in ns of wall time it stands for. */
typedef void (*sampler_listener_fn)(void *ctx, uint32_t pid, uint32_t tid, const char *const *frames,
				    size_t n, uint64_t weight_ns, bool offcpu);

struct sampler;

extern const struct capability sampler_capability;

struct stack_agg *sampler__stacks(struct sampler *s);
/* Weight of one CPU sample in the stacks: 1, or microseconds with us_weights. */
uint64_t sampler__weight(const struct sampler *s);
unsigned sampler__rate(const struct sampler *s);
void sampler__listen(struct sampler *s, sampler_listener_fn fn, void *ctx);
void sampler__stats(struct sampler *s, struct sampler_stats *st);

#endif
