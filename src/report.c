// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>
#include "report.h"

#define CALLER_SEP "\n      <- "

struct hot_stack {
	char *folded;
	uint64_t weight;
};

struct hot_ctx {
	struct hot_stack *top;
	unsigned n, max;
};

static int keep_hot(void *ctx, const char *const *frames, size_t nframes, uint64_t weight)
{
	struct hot_ctx *h = ctx;
	size_t len = 0, i;
	unsigned at;
	char *s;

	if (h->n == h->max && weight <= h->top[h->n - 1].weight)
		return 0;
	for (i = 0; i < nframes; i++)
		len += strlen(frames[i]) + sizeof(CALLER_SEP);
	s = malloc(len + 1);
	if (!s)
		return -1;
	s[0] = '\0';
	/* Leaf first: that is where the time is; callers follow. */
	for (i = nframes; i > 0; i--) {
		strcat(s, frames[i - 1]);
		if (i > 1)
			strcat(s, CALLER_SEP);
	}
	if (h->n == h->max) {
		free(h->top[h->n - 1].folded);
		h->n--;
	}
	for (at = h->n; at > 0 && h->top[at - 1].weight < weight; at--)
		h->top[at] = h->top[at - 1];
	h->top[at].folded = s;
	h->top[at].weight = weight;
	h->n++;
	return 0;
}

static void print_functions(const struct stack_agg *a, FILE *f, unsigned top, bool by_self, uint64_t total)
{
	struct stack_agg_fn *fns = calloc(top, sizeof(*fns));
	int n, i;

	if (!fns)
		return;
	n = stack_agg__top_functions(a, fns, top, by_self);
	fprintf(f, "\nTop functions by %s time:\n  %7s %7s  %s\n", by_self ? "self" : "total", "self%", "total%", "function");
	for (i = 0; i < n; i++)
		fprintf(f, "  %6.2f%% %6.2f%%  %s\n", 100.0 * fns[i].self / total, 100.0 * fns[i].total / total,
			fns[i].frame);
	free(fns);
}

void report__hot(const struct stack_agg *a, FILE *f, unsigned top)
{
	uint64_t total = stack_agg__total(a);
	struct hot_ctx h = { .max = 5 };
	unsigned i;

	if (!total) {
		fprintf(f, "No samples.\n");
		return;
	}
	print_functions(a, f, top, true, total);
	print_functions(a, f, top, false, total);
	h.top = calloc(h.max + 1, sizeof(*h.top));
	if (!h.top)
		return;
	stack_agg__foreach(a, keep_hot, &h);
	fprintf(f, "\nHottest stacks:\n");
	for (i = 0; i < h.n; i++) {
		fprintf(f, "  %6.2f%%  %s\n", 100.0 * h.top[i].weight / total, h.top[i].folded);
		free(h.top[i].folded);
	}
	free(h.top);
}
