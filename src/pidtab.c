// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "pidtab.h"

static inline char *slot(const struct pidtab *t, uint32_t i)
{
	return (char *)t->slots + (size_t)i * t->elem;
}

static inline uint32_t key(const struct pidtab *t, uint32_t i)
{
	uint32_t k;

	memcpy(&k, slot(t, i), sizeof(k));
	return k;
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
	t->slots = calloc(cap, elem);
	if (!t->slots)
		return -ENOMEM;
	t->cap = cap;
	t->elem = elem;
	return 0;
}

void pidtab__fini(struct pidtab *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

void *pidtab__get(const struct pidtab *t, uint32_t pid)
{
	uint32_t i = home(t, pid), n, k;

	for (n = 0; n < t->cap; n++, i = (i + 1) % t->cap) {
		k = key(t, i);
		if (k == pid)
			return slot(t, i);
		if (!k)
			return NULL;
	}
	return NULL;
}

void *pidtab__add(struct pidtab *t, uint32_t pid, bool *created)
{
	uint32_t i = home(t, pid), n, k;

	if (created)
		*created = false;
	for (n = 0; n < t->cap; n++, i = (i + 1) % t->cap) {
		k = key(t, i);
		if (k == pid)
			return slot(t, i);
		if (!k) {
			memset(slot(t, i), 0, t->elem);
			memcpy(slot(t, i), &pid, sizeof(pid));
			t->n++;
			if (created)
				*created = true;
			return slot(t, i);
		}
	}
	return NULL;
}

void pidtab__del(struct pidtab *t, void *rec)
{
	uint32_t hole = (uint32_t)(((char *)rec - (char *)t->slots) / t->elem), j = hole;

	/* Emptied first: in a full table the scan below comes round to the hole and stops there. */
	memset(slot(t, hole), 0, t->elem);
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
			memcpy(slot(t, hole), slot(t, j), t->elem);
			memset(slot(t, j), 0, t->elem);
			hole = j;
		}
	}
}

void *pidtab__slot(const struct pidtab *t, uint32_t i)
{
	return i < t->cap && key(t, i) ? slot(t, i) : NULL;
}
