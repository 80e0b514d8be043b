// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>
#include "jsonw.h"
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

/* The hottest stacks with their frames, root first, for the JSON report. */
struct hot_frames {
	char **frames;
	size_t n;
	uint64_t weight;
};

struct hot_json_ctx {
	struct hot_frames *top;
	unsigned n, max;
};

static void hot_frames_free(struct hot_frames *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		free(h->frames[i]);
	free(h->frames);
	memset(h, 0, sizeof(*h));
}

static int keep_hot_frames(void *ctx, const char *const *frames, size_t nframes, uint64_t weight)
{
	struct hot_json_ctx *h = ctx;
	struct hot_frames hf = { .weight = weight };
	unsigned at;
	size_t i;

	if (h->n == h->max && weight <= h->top[h->n - 1].weight)
		return 0;
	hf.frames = calloc(nframes ? nframes : 1, sizeof(*hf.frames));
	if (!hf.frames)
		return -1;
	for (i = 0; i < nframes; i++) {
		hf.frames[i] = strdup(frames[i]);
		if (!hf.frames[i]) {
			hf.n = i;
			hot_frames_free(&hf);
			return -1;
		}
	}
	hf.n = nframes;
	if (h->n == h->max)
		hot_frames_free(&h->top[--h->n]);
	for (at = h->n; at > 0 && h->top[at - 1].weight < weight; at--)
		h->top[at] = h->top[at - 1];
	h->top[at] = hf;
	h->n++;
	return 0;
}

static void json_functions(const struct stack_agg *a, struct jsonw *w, unsigned top, bool by_self, uint64_t total)
{
	struct stack_agg_fn *fns = calloc(top ? top : 1, sizeof(*fns));
	int n, i;

	jsonw__start_array(w);
	if (fns) {
		n = stack_agg__top_functions(a, fns, top, by_self);
		for (i = 0; i < n; i++) {
			jsonw__start_object(w);
			jsonw__string_field(w, "function", fns[i].frame);
			jsonw__uint_field(w, "self", fns[i].self);
			jsonw__uint_field(w, "total", fns[i].total);
			jsonw__double_fixed_field(w, "self_pct", 100.0 * fns[i].self / total, 2);
			jsonw__double_fixed_field(w, "total_pct", 100.0 * fns[i].total / total, 2);
			jsonw__end_object(w);
		}
		free(fns);
	}
	jsonw__end_array(w);
}

void report__hot_json(const struct stack_agg *a, struct jsonw *w, unsigned top, const char *unit, const char *mode)
{
	uint64_t total = stack_agg__total(a);
	struct hot_json_ctx h = { .max = 5 };
	unsigned i;
	size_t k;

	jsonw__start_object(w);
	jsonw__string_field(w, "unit", unit);
	if (mode)
		jsonw__string_field(w, "mode", mode);
	jsonw__uint_field(w, "total", total);
	jsonw__name(w, "top_self");
	if (total)
		json_functions(a, w, top, true, total);
	else
		jsonw__start_array(w), jsonw__end_array(w);
	jsonw__name(w, "top_total");
	if (total)
		json_functions(a, w, top, false, total);
	else
		jsonw__start_array(w), jsonw__end_array(w);
	jsonw__name(w, "hottest_stacks");
	jsonw__start_array(w);
	h.top = total ? calloc(h.max + 1, sizeof(*h.top)) : NULL;
	if (h.top) {
		stack_agg__foreach(a, keep_hot_frames, &h);
		for (i = 0; i < h.n; i++) {
			jsonw__start_object(w);
			jsonw__uint_field(w, "weight", h.top[i].weight);
			jsonw__double_fixed_field(w, "pct", 100.0 * h.top[i].weight / total, 2);
			jsonw__name(w, "frames");
			jsonw__start_array(w);
			for (k = 0; k < h.top[i].n; k++)
				jsonw__string(w, h.top[i].frames[k]);
			jsonw__end_array(w);
			jsonw__end_object(w);
			hot_frames_free(&h.top[i]);
		}
		free(h.top);
	}
	jsonw__end_array(w);
	jsonw__end_object(w);
}
