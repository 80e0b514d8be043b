/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PYTRACE_REPORT_H
#define PYTRACE_REPORT_H

#include <stdio.h>
#include "stacks.h"

/* The hottest functions (self and total) and the hottest stacks, for a terminal. */
void report__hot(const struct stack_agg *a, FILE *f, unsigned top);

#endif
