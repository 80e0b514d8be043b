// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A page cache in front of a mem_reader: see memcache.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "memcache.h"

static int cached_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct memcache *c = ctx;
	uint8_t *out = buf;

	if (addr + len < addr)
		return -EFAULT;
	while (len) {
		uint64_t page = addr & ~(uint64_t)(MEMCACHE_PAGE - 1);
		size_t off = addr - page, n = MEMCACHE_PAGE - off;
		unsigned slot = (unsigned)(page / MEMCACHE_PAGE) % MEMCACHE_PAGES;
		uint8_t *p = c->data + (size_t)slot * MEMCACHE_PAGE;

		if (n > len)
			n = len;
		if (c->tag[slot] == page + 1) {
			c->hits++;
		} else if (mem_read(c->under, page, p, MEMCACHE_PAGE)) {
			/* not readable whole (or gone): as asked, and its answer */
			int ret;

			c->tag[slot] = 0;
			c->direct++;
			ret = mem_read(c->under, addr, out, n);
			if (ret)
				return ret;
			goto next;
		} else {
			c->tag[slot] = page + 1;
			c->misses++;
		}
		memcpy(out, p + off, n);
next:
		out += n;
		addr += n;
		len -= n;
	}
	return 0;
}

int memcache__init(struct memcache *c, const struct mem_reader *under)
{
	memset(c, 0, sizeof(*c));
	c->tag = calloc(MEMCACHE_PAGES, sizeof(*c->tag));
	c->data = malloc((size_t)MEMCACHE_PAGES * MEMCACHE_PAGE);
	if (!c->tag || !c->data) {
		memcache__fini(c);
		return -ENOMEM;
	}
	c->under = under;
	c->mr.read = cached_read;
	c->mr.ctx = c;
	return 0;
}

void memcache__fini(struct memcache *c)
{
	free(c->tag);
	free(c->data);
	c->tag = NULL;
	c->data = NULL;
}
