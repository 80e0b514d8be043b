// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "flamering.h"
#include "stacks.h"

#define NS_PER_S 1000000000ULL

struct slot {
	uint64_t start;		/* ns, a multiple of slot_ns; 0: never used */
	struct stack_agg *agg;
	uint64_t dropped_seen;	/* the agg's dropped weight already counted */
};

struct flamering {
	pthread_mutex_t lock;
	uint64_t slot_ns;
	unsigned nslots;
	unsigned max_s;
	struct slot *slots;
	uint64_t dropped;
};

struct flamering *flamering__new(const struct flamering_opts *o)
{
	struct flamering *r = calloc(1, sizeof(*r));
	unsigned slot_s = o && o->slot_s ? o->slot_s : FLAMERING_DEFAULT_SLOT_S;
	size_t max_stacks = o && o->slot_max_stacks ? o->slot_max_stacks : FLAMERING_DEFAULT_SLOT_STACKS;

	if (!r)
		return NULL;
	r->max_s = o && o->max_s ? o->max_s : FLAMERING_DEFAULT_MAX_S;
	r->slot_ns = slot_s * NS_PER_S;
	/* the partial current slot, plus whole slots for max_s */
	r->nslots = (r->max_s + slot_s - 1) / slot_s + 1;
	r->slots = calloc(r->nslots, sizeof(*r->slots));
	if (!r->slots || pthread_mutex_init(&r->lock, NULL)) {
		free(r->slots);
		free(r);
		return NULL;
	}
	for (unsigned i = 0; i < r->nslots; i++)
		if (!(r->slots[i].agg = stack_agg__new(max_stacks))) {
			flamering__free(r);
			return NULL;
		}
	return r;
}

void flamering__free(struct flamering *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->nslots; i++)
		stack_agg__free(r->slots[i].agg);
	free(r->slots);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int flamering__add(struct flamering *r, uint64_t now_ns, const char *const *frames, size_t n, uint64_t weight)
{
	uint64_t start = now_ns - now_ns % r->slot_ns;
	struct slot *s = &r->slots[(now_ns / r->slot_ns) % r->nslots];
	uint64_t dropped;
	int ret;

	pthread_mutex_lock(&r->lock);
	if (s->start != start) {
		stack_agg__clear(s->agg);
		s->start = start;
		s->dropped_seen = 0;
	}
	ret = stack_agg__add(s->agg, frames, n, weight);
	dropped = stack_agg__dropped(s->agg);
	r->dropped += dropped - s->dropped_seen;
	s->dropped_seen = dropped;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

struct merge_ctx {
	struct stack_agg *out;
	const char *root;
};

static int merge_one(void *c, const char *const *frames, size_t n, uint64_t weight)
{
	struct merge_ctx *m = c;
	int ret;

	if (m->root && (!n || strcmp(frames[0], m->root)))
		return 0;
	ret = stack_agg__add(m->out, frames, n, weight);
	return ret == -E2BIG ? 0 : ret;	/* the output's own cap: its overflow stack */
}

int flamering__collect(struct flamering *r, uint64_t now_ns, unsigned seconds, const char *root,
		       struct stack_agg *out, uint64_t *from_ns)
{
	struct merge_ctx m = { .out = out, .root = root };
	uint64_t span, oldest = now_ns;
	int ret = 0;

	if (seconds > r->max_s)
		seconds = r->max_s;
	span = (uint64_t)seconds * NS_PER_S;
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < r->nslots && !ret; i++) {
		const struct slot *s = &r->slots[i];

		/* overlaps [now - span, now]: ends after its start, starts no later than now */
		if (!s->start || s->start > now_ns || s->start + r->slot_ns <= (now_ns > span ? now_ns - span : 0))
			continue;
		if (s->start < oldest)
			oldest = s->start;
		ret = stack_agg__foreach(s->agg, merge_one, &m);
	}
	pthread_mutex_unlock(&r->lock);
	if (from_ns)
		*from_ns = oldest;
	return ret;
}

uint64_t flamering__dropped(struct flamering *r)
{
	uint64_t d;

	pthread_mutex_lock(&r->lock);
	d = r->dropped;
	pthread_mutex_unlock(&r->lock);
	return d;
}

size_t flamering__stacks(struct flamering *r)
{
	size_t n = 0;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < r->nslots; i++)
		n += r->slots[i].start ? stack_agg__count(r->slots[i].agg) : 0;
	pthread_mutex_unlock(&r->lock);
	return n;
}
