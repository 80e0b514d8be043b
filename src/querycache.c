// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Memo of completed statements' flame graph stacks and request ids, direct-mapped. */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "querycache.h"

struct slot {
	uint64_t gen;		/* the cache's generation when filled; older: empty */
	uint64_t hash;		/* of the whole key */
	uint64_t stack_id;
	uint32_t pid;
	uint32_t nframes;
	size_t plen;
	char *pattern;
	struct query_cache_val val;
};

struct query_cache {
	struct slot *slots;
	size_t mask;
	uint64_t gen;		/* starts at 1: calloc'ed slots are empty */
	struct query_cache_stats st;
};

struct query_cache *query_cache__new(unsigned slots)
{
	struct query_cache *c = calloc(1, sizeof(*c));
	size_t n = 1;

	if (!c)
		return NULL;
	while (n < (slots ? slots : QUERY_CACHE_DEFAULT_SLOTS))
		n <<= 1;
	c->slots = calloc(n, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return NULL;
	}
	c->mask = n - 1;
	c->gen = 1;
	return c;
}

void query_cache__free(struct query_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i <= c->mask; i++)
		free(c->slots[i].pattern);
	free(c->slots);
	free(c);
}

struct query_cache_val *query_cache__get(struct query_cache *c, uint32_t pid, uint64_t stack_id,
					 size_t nframes, const char *pattern, bool *hit)
{
	size_t plen;
	uint64_t h;
	struct slot *s;
	char *copy;

	*hit = false;
	if (!pattern)
		return NULL;
	plen = strlen(pattern);
	h = hash64_mix(hash64(pattern, plen) ^ stack_id ^ ((uint64_t)pid << 32 | (uint32_t)nframes));
	s = &c->slots[h & c->mask];
	if (s->gen == c->gen && s->hash == h && s->stack_id == stack_id && s->pid == pid &&
	    s->nframes == nframes && s->plen == plen && memcmp(s->pattern, pattern, plen) == 0) {
		c->st.hits++;
		*hit = true;
		return &s->val;
	}
	c->st.misses++;
	copy = malloc(plen + 1);
	if (!copy)
		return NULL;
	memcpy(copy, pattern, plen + 1);
	if (s->gen == c->gen)
		c->st.evictions++;
	free(s->pattern);
	*s = (struct slot){ .gen = c->gen, .hash = h, .stack_id = stack_id, .pid = pid,
			    .nframes = (uint32_t)nframes, .plen = plen, .pattern = copy };
	return &s->val;
}

void query_cache__invalidate(struct query_cache *c)
{
	c->gen++;
	c->st.invalidations++;
}

void query_cache__stats(const struct query_cache *c, struct query_cache_stats *st)
{
	*st = c->st;
}
