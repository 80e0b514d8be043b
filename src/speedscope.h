/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* speedscope's JSON file format (https://www.speedscope.app/file-format-schema.json). */
#ifndef PYTRACE_SPEEDSCOPE_H
#define PYTRACE_SPEEDSCOPE_H

#include <stddef.h>
#include <stdio.h>

struct stack_agg;

/*
 * One "sampled" profile with one sample per distinct stack, weighted. name NULL = "pytrace-bpf";
 * unit NULL = "none"; else one of speedscope's units ("nanoseconds", ...), -EINVAL otherwise.
 */
int speedscope__write(const struct stack_agg *a, FILE *f, const char *name, const char *unit);

/*
 * The same with one profile per root frame (--threads: per thread), named by it
 * ("[thread Worker-0 tid=12]" -> "Worker-0 tid=12"), its stacks without it.
 */
int speedscope__write_threads(const struct stack_agg *a, FILE *f, const char *name, const char *unit);

/* A JSON string with quotes; invalid UTF-8 becomes U+FFFD. */
int speedscope__json_string(FILE *f, const char *s, size_t len);

#endif /* PYTRACE_SPEEDSCOPE_H */
