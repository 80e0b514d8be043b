/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Aggregation of symbolized stacks: distinct stacks -> weight, folded text in and out. */
#ifndef PYTRACE_STACKS_H
#define PYTRACE_STACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "utf8.h"

#define STACK_AGG_DEFAULT_MAX	100000
#define STACK_AGG_DROPPED_FRAME	"[dropped: too many distinct stacks]"

struct stack_agg;

/* max_stacks caps distinct stacks (the overflow stack not counted); 0 = default */
struct stack_agg *stack_agg__new(size_t max_stacks);
void stack_agg__free(struct stack_agg *a);
/* Empty again, with its memory returned (a new report window); ids and frame pointers die. */
void stack_agg__clear(struct stack_agg *a);

/*
 * frames[0] is the outermost (root) frame, frames[n-1] the leaf. Frames are interned; ';' in a
 * frame is stored as ':' and CR/LF as ' ' so that every stack has one folded form.
 * Returns 0, -E2BIG when a new stack went to the overflow stack, -EINVAL, -ENOMEM.
 */
int stack_agg__add(struct stack_agg *a, const char *const *frames, size_t nframes, uint64_t weight);
/*
 * stack_agg__add, and *id set to the stack that got the weight (the overflow stack when the cap
 * sent it there; 0 on another error). stack_agg__add_id(a, id, w) then adds to that stack again
 * without hashing its frames, with the same result as adding the same frames. -EINVAL: bad id.
 */
int stack_agg__add_get_id(struct stack_agg *a, const char *const *frames, size_t nframes, uint64_t weight,
			  size_t *id);
int stack_agg__add_id(struct stack_agg *a, size_t id, uint64_t weight);
size_t stack_agg__count(const struct stack_agg *a);	/* distinct stacks, overflow included */
uint64_t stack_agg__total(const struct stack_agg *a);
uint64_t stack_agg__dropped(const struct stack_agg *a);

/*
 * Visits stacks sorted by folded string, those of weight 0 left out. Frame pointers are interned: equal strings are equal
 * pointers, valid until stack_agg__free(). A non-zero return from fn stops and is returned.
 */
typedef int (*stack_agg_visit_fn)(void *ctx, const char *const *frames, size_t nframes, uint64_t weight);
int stack_agg__foreach(const struct stack_agg *a, stack_agg_visit_fn fn, void *ctx);

/* "root;child;leaf COUNT\n" lines, sorted */
int stack_agg__write_folded(const struct stack_agg *a, FILE *f);
/* Blank lines and lines starting with '#' are skipped; -EINVAL on a malformed line. */
int stack_agg__read_folded(struct stack_agg *a, FILE *f);

/*
 * Top functions. A function is a frame without its line number: "f (a.py:12)" and "f (a.py:30)"
 * are both "f (a.py)"; "[...]" frames are taken whole. total counts a stack once even when the
 * function recurses. Sorted by self (or total) descending, then the other, then name.
 * .frame points into the aggregator. Returns the number filled or -errno.
 */
struct stack_agg_fn { const char *frame; uint64_t self, total; };
int stack_agg__top_functions(const struct stack_agg *a, struct stack_agg_fn *out, size_t max, bool by_self);

/* "qualname (path/file.py:LINE)" split into parts; name_len only when there is no " (...)". */
struct frame_parts {
	const char *name;
	size_t name_len;
	const char *file;	/* NULL if none */
	size_t file_len;
	unsigned long line;
	bool has_line;
};
void frame__parse(const char *frame, struct frame_parts *p);

#endif /* PYTRACE_STACKS_H */
