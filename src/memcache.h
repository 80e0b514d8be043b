/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A page cache in front of a mem_reader, for the readers that walk many small Python objects of
 * a process once (its route tables: djapps.h). Each of their reads is a few bytes (a pointer, a
 * str's header); Python's objects sit close together (pymalloc's pools and arenas), so reading
 * whole 4 KiB pages and keeping the last MEMCACHE_PAGES of them turns most of those reads into
 * copies: a read of 4 KiB costs about what one of 8 bytes does.
 *
 * What a read returns is a page as it was when first read: for the length of one walk of
 * static objects (a few milliseconds), as a direct read would have seen it, give or take the
 * walk's own tearing, which the readers already tolerate. Not for memory that changes as it is
 * read (a thread's stack). A page that cannot be read whole is read as asked, uncached.
 */
#ifndef PYTRACE_MEMCACHE_H
#define PYTRACE_MEMCACHE_H

#include <stdint.h>
#include "memread.h"

#define MEMCACHE_PAGES	256	/* 1 MiB, direct-mapped by page number */
#define MEMCACHE_PAGE	4096

struct memcache {
	struct mem_reader mr;		/* reads through the cache: give &c->mr to the readers */
	const struct mem_reader *under;
	uint64_t *tag;			/* page address + 1 of each slot; 0: empty */
	uint8_t *data;			/* MEMCACHE_PAGES pages */
	uint64_t hits, misses, direct;	/* pages copied, pages read, reads past the cache */
};

/* A cache over under (which must outlive it): 0 or -ENOMEM. */
int memcache__init(struct memcache *c, const struct mem_reader *under);
void memcache__fini(struct memcache *c);

#endif
