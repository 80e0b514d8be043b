/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PYTRACE_REPORT_H
#define PYTRACE_REPORT_H

#include <stdio.h>
#include "stacks.h"

/* The hottest functions (self and total) and the hottest stacks, for a terminal. */
void report__hot(const struct stack_agg *a, FILE *f, unsigned top);

struct jsonw;
/*
 * The same as a JSON object: {"unit", "total", "top_self": [{"function", "self", "total",
 * "self_pct", "total_pct"}], "top_total": [...], "hottest_stacks": [{"weight", "pct",
 * "frames": [root ... leaf]}]}; unit names the weights ("samples" or "us"), mode (if not NULL)
 * what they measure: "cpu" (on-CPU samples), "cpu+sql" (and SQL time), "wall" (--idle: on-CPU
 * samples as time and off-CPU time).
 */
void report__hot_json(const struct stack_agg *a, struct jsonw *w, unsigned top, const char *unit,
		      const char *mode);

#endif
