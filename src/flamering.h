/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The collector's profile windows: a ring of per-interval stack aggregates, so that
 * /flame.svg?seconds=N and /debug/pprof/profile?seconds=N answer from the last N seconds with
 * memory bounded however long the collector runs (never one ever-growing table).
 *
 * Time is cut into slots of slot_s seconds (CLOCK_MONOTONIC). A sample goes to the slot of its
 * arrival; the slot that comes round again after max_s seconds is cleared first. A window of N
 * seconds is made of every slot that overlaps [now - N, now]: the current, partial slot and as
 * many whole ones as it takes, so it covers at least N seconds and at most N + slot_s
 * (flamering__collect says exactly which span).
 *
 * Bounds: each slot keeps at most slot_max_stacks distinct stacks (then its overflow stack, and
 * the weight is counted as dropped), so memory is at most (max_s / slot_s + 1) x slot_max_stacks
 * stacks with their frames.
 *
 * Threads: one mutex; the collector's loop adds while the endpoint's threads collect.
 */
#ifndef PYTRACE_FLAMERING_H
#define PYTRACE_FLAMERING_H

#include <stddef.h>
#include <stdint.h>

#define FLAMERING_DEFAULT_SLOT_S	10
#define FLAMERING_DEFAULT_MAX_S		600
#define FLAMERING_DEFAULT_SLOT_STACKS	2000

struct stack_agg;
struct flamering;

struct flamering_opts {
	unsigned slot_s;		/* 0: FLAMERING_DEFAULT_SLOT_S */
	unsigned max_s;			/* the longest window; 0: FLAMERING_DEFAULT_MAX_S */
	size_t slot_max_stacks;		/* 0: FLAMERING_DEFAULT_SLOT_STACKS */
};

struct flamering *flamering__new(const struct flamering_opts *o);
void flamering__free(struct flamering *r);
/* A stack (root first) seen at now_ns. 0, -E2BIG (went to the slot's overflow stack), -errno. */
int flamering__add(struct flamering *r, uint64_t now_ns, const char *const *frames, size_t n, uint64_t weight);
/*
 * Adds to out the stacks of the last `seconds` (capped at max_s) before now_ns; with root, only
 * stacks whose root frame is root. *from_ns: the start of the oldest slot taken (now_ns when
 * none). Returns 0 or -errno.
 */
int flamering__collect(struct flamering *r, uint64_t now_ns, unsigned seconds, const char *root,
		       struct stack_agg *out, uint64_t *from_ns);
/* Weight that went to overflow stacks (slot caps), since the start. */
uint64_t flamering__dropped(struct flamering *r);
/* Distinct stacks held now, in all slots. */
size_t flamering__stacks(struct flamering *r);

#endif
