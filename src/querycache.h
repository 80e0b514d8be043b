/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What a completed statement's stack and pattern were turned into, remembered by (process,
 * stack id, frame count, pattern): the flame graph stack its time goes to and the ids the
 * requests table gave its pattern and call site. A statement from a known place then costs a
 * lookup instead of hashing every frame name again.
 *
 * The stack id stands for the frame names only as long as they are not named anew: whoever
 * names stacks calls query_cache__invalidate() each time it does, and every entry is forgotten.
 */
#ifndef PYTRACE_QUERYCACHE_H
#define PYTRACE_QUERYCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUERY_CACHE_DEFAULT_SLOTS	4096

/* Values the caller fills; zeroed in a new entry. */
struct query_cache_val {
	size_t flame_id;		/* stack_agg id, 0: not known yet */
	bool req_ids;			/* req_pattern and req_site are set */
	uint32_t req_pattern, req_site;	/* requests__intern() ids */
};

struct query_cache_stats {
	uint64_t hits, misses;
	uint64_t evictions;		/* a live entry replaced by another key */
	uint64_t invalidations;
};

struct query_cache;

/* slots: rounded up to a power of two; 0: the default. Direct-mapped: memory stays bounded. */
struct query_cache *query_cache__new(unsigned slots);
void query_cache__free(struct query_cache *c);
/*
 * The entry of this statement: values from before (*hit), or a new zeroed entry taking the slot
 * (*hit false). NULL when none could be made (pattern NULL, out of memory): do without.
 * pattern is copied.
 * The pointer is valid until the next call.
 */
struct query_cache_val *query_cache__get(struct query_cache *c, uint32_t pid, uint64_t stack_id,
					 size_t nframes, const char *pattern, bool *hit);
/* Forget every entry: stack ids may stand for other names from now on. O(1). */
void query_cache__invalidate(struct query_cache *c);
void query_cache__stats(const struct query_cache *c, struct query_cache_stats *st);

#endif /* PYTRACE_QUERYCACHE_H */
