/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --idle's user side: the off-CPU keys the BPF side aggregates (bpf/sampler.bpf.c idle_agg:
 * stack hash, thread, reason -> nanoseconds blocked) and the flame stack each became. The BPF
 * totals only grow; each read turns the growth since the last one into microseconds for that
 * stack, the unit every wall-clock output uses (an on-CPU sample is 1e6 / rate of them).
 */
#ifndef PYTRACE_IDLETAB_H
#define PYTRACE_IDLETAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pytrace_user.h"

struct idletab;

struct idletab *idletab__new(void);
void idletab__free(struct idletab *t);
void idletab__clear(struct idletab *t);

/* The stack (stack_agg id) a key's time goes to; -ENOMEM. Setting it again replaces it. */
int idletab__set(struct idletab *t, const struct pt_idle_key *k, size_t id);
/*
 * The BPF total of k is now total_ns: *id its stack, and the microseconds to add since the
 * last call (whole microseconds: the rest carries to the next). false: k has no stack yet
 * (its announcement is still queued, or was lost); nothing is consumed.
 */
bool idletab__advance(struct idletab *t, const struct pt_idle_key *k, uint64_t total_ns, size_t *id,
		      uint64_t *add_us);
size_t idletab__count(const struct idletab *t);

/* The leaf frame of a reason: "[off-cpu: sleep]"; an unknown one is "[off-cpu: other]". */
const char *idletab__leaf(uint32_t reason);

#endif
