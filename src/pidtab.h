/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A fixed-size open-addressing table of per-process records, keyed by pid: linear probing, and
 * deletion by backward shift (no tombstones), so that a collector left running through months
 * of short-lived processes keeps finding room. Each record starts with its key, a uint32_t pid,
 * and is allocated when its pid is added and freed when it is deleted: the table itself holds
 * only pointers, so memory follows the processes alive, not the capacity (records of a
 * kilobyte and more, in tables of 16384, would otherwise be touched page by page as pids come
 * and go, and a collector's resident memory would creep up to the whole table). A record stays
 * where it is until pidtab__del frees it.
 */
#ifndef PYTRACE_PIDTAB_H
#define PYTRACE_PIDTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pidtab {
	void *slots;		/* cap pointers to records, NULL: free */
	size_t elem;		/* bytes per record, the uint32_t key first */
	uint32_t cap;		/* slots */
	uint32_t n;		/* records in use */
};

/* cap slots of elem bytes each; -ENOMEM or 0. */
int pidtab__init(struct pidtab *t, uint32_t cap, size_t elem);
void pidtab__fini(struct pidtab *t);
/* The record of pid, or NULL. pid must not be 0. */
void *pidtab__get(const struct pidtab *t, uint32_t pid);
/*
 * The record of pid, created zeroed (but for its key) if absent: *created says which. NULL when
 * the table is full.
 */
void *pidtab__add(struct pidtab *t, uint32_t pid, bool *created);
/* Remove and free rec (a record of the table). */
void pidtab__del(struct pidtab *t, void *rec);
/* The i-th slot (0 <= i < cap), or NULL when it is free: for scans of the whole table. */
void *pidtab__slot(const struct pidtab *t, uint32_t i);

#endif
