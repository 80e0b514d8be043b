// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "pidtab.h"

static inline void **slot(const struct pidtab *t, uint32_t i)
{
	return (void **)t->slots + i;
}

static inline uint32_t key_of(const void *rec)
{
	uint32_t k;

	memcpy(&k, rec, sizeof(k));
	return k;
}

static inline uint32_t key(const struct pidtab *t, uint32_t i)
{
	return *slot(t, i) ? key_of(*slot(t, i)) : 0;
}

static inline uint32_t home(const struct pidtab *t, uint32_t pid)
{
	return (uint32_t)(((uint64_t)pid * 2654435761u) % t->cap);
}

int pidtab__init(struct pidtab *t, uint32_t cap, size_t elem)
{
	memset(t, 0, sizeof(*t));
	if (!cap || elem < sizeof(uint32_t))
		return -EINVAL;
	t->slots = calloc(cap, sizeof(void *));
	if (!t->slots)
		return -ENOMEM;
	t->cap = cap;
	t->elem = elem;
	return 0;
}

void pidtab__fini(struct pidtab *t)
{
	for (uint32_t i = 0; t->slots && i < t->cap; i++)
		free(*slot(t, i));
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

static uint32_t find(const struct pidtab *t, uint32_t pid, bool *found)
{
	uint32_t i = home(t, pid), n, k;

	*found = false;
	for (n = 0; n < t->cap; n++, i = (i + 1) % t->cap) {
		k = key(t, i);
		if (k == pid) {
			*found = true;
			return i;
		}
		if (!k)
			return i;
	}
	return UINT32_MAX;	/* full, and not there */
}

void *pidtab__get(const struct pidtab *t, uint32_t pid)
{
	bool found;
	uint32_t i = find(t, pid, &found);

	return found ? *slot(t, i) : NULL;
}

void *pidtab__add(struct pidtab *t, uint32_t pid, bool *created)
{
	bool found;
	uint32_t i = find(t, pid, &found);
	void *rec;

	if (created)
		*created = false;
	if (found)
		return *slot(t, i);
	if (i == UINT32_MAX || !(rec = calloc(1, t->elem)))
		return NULL;
	memcpy(rec, &pid, sizeof(pid));
	*slot(t, i) = rec;
	t->n++;
	if (created)
		*created = true;
	return rec;
}

void pidtab__del(struct pidtab *t, void *rec)
{
	bool found;
	uint32_t hole = find(t, key_of(rec), &found), j = hole;

	if (!found || *slot(t, hole) != rec)
		return;
	/* Emptied first: in a full table the scan below comes round to the hole and stops there. */
	free(rec);
	*slot(t, hole) = NULL;
	t->n--;
	for (;;) {
		uint32_t h, k;
		bool stays;

		j = (j + 1) % t->cap;
		k = key(t, j);
		if (!k)
			break;
		h = home(t, k);
		/* Record j stays if its home lies cyclically in (hole, j]: it is still found from there. */
		stays = hole < j ? (hole < h && h <= j) : (hole < h || h <= j);
		if (!stays) {
			*slot(t, hole) = *slot(t, j);
			*slot(t, j) = NULL;
			hole = j;
		}
	}
}

void *pidtab__slot(const struct pidtab *t, uint32_t i)
{
	return i < t->cap ? *slot(t, i) : NULL;
}
