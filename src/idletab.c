// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "idletab.h"

struct idle_ent {
	struct pt_idle_key key;
	size_t id;		/* stack_agg id */
	uint64_t seen_ns;	/* the BPF total at the last advance */
	bool used;
};

struct idletab {
	struct idle_ent *e;	/* open addressing, power-of-two capacity */
	size_t cap, n;
};

struct idletab *idletab__new(void)
{
	return calloc(1, sizeof(struct idletab));
}

void idletab__free(struct idletab *t)
{
	if (!t)
		return;
	free(t->e);
	free(t);
}

void idletab__clear(struct idletab *t)
{
	free(t->e);
	memset(t, 0, sizeof(*t));
}

static uint64_t key_hash(const struct pt_idle_key *k)
{
	return hash64_mix(k->hash ^ ((uint64_t)k->pid << 32 | k->tid) * 0x9e3779b97f4a7c15ULL ^ k->reason);
}

static bool key_eq(const struct pt_idle_key *a, const struct pt_idle_key *b)
{
	return a->hash == b->hash && a->pid == b->pid && a->tid == b->tid && a->reason == b->reason;
}

static struct idle_ent *find(const struct idletab *t, const struct pt_idle_key *k)
{
	size_t j;

	if (!t->cap)
		return NULL;
	for (j = key_hash(k) & (t->cap - 1); t->e[j].used; j = (j + 1) & (t->cap - 1))
		if (key_eq(&t->e[j].key, k))
			return &t->e[j];
	return &t->e[j];	/* the free slot it would take */
}

static int grow(struct idletab *t)
{
	struct idletab nt = { .cap = t->cap ? t->cap * 2 : 256 };
	size_t i;

	nt.e = calloc(nt.cap, sizeof(*nt.e));
	if (!nt.e)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->e[i].used)
			*find(&nt, &t->e[i].key) = t->e[i];
	free(t->e);
	nt.n = t->n;
	*t = nt;
	return 0;
}

int idletab__set(struct idletab *t, const struct pt_idle_key *k, size_t id)
{
	struct idle_ent *e;

	if ((t->n + 1) * 2 > t->cap && grow(t))
		return -ENOMEM;
	e = find(t, k);
	if (!e->used) {
		e->used = true;
		e->key = *k;
		e->key.pad = 0;
		t->n++;
	}
	e->id = id;
	return 0;
}

bool idletab__advance(struct idletab *t, const struct pt_idle_key *k, uint64_t total_ns, size_t *id,
		      uint64_t *add_us)
{
	struct idle_ent *e = find(t, k);

	*add_us = 0;
	if (!e || !e->used)
		return false;
	*id = e->id;
	if (total_ns > e->seen_ns) {
		*add_us = total_ns / 1000 - e->seen_ns / 1000;
		e->seen_ns = total_ns;
	}
	return true;
}

size_t idletab__count(const struct idletab *t)
{
	return t->n;
}

const char *idletab__leaf(uint32_t reason)
{
	static const char *const leaves[PT_IDLE_REASONS] = {
		[PT_IDLE_OTHER] = "[off-cpu: other]",
		[PT_IDLE_SLEEP] = "[off-cpu: sleep]",
		[PT_IDLE_LOCK] = "[off-cpu: lock]",
		[PT_IDLE_SOCKET] = "[off-cpu: socket]",
		[PT_IDLE_IO] = "[off-cpu: io]",
		[PT_IDLE_SQL] = "[off-cpu: sql]",
	};

	return reason < PT_IDLE_REASONS ? leaves[reason] : leaves[PT_IDLE_OTHER];
}
