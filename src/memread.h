/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Reading another address space: /proc/PID/mem in production (procmem.h), captured memory in tests. */
#ifndef PYTRACE_MEMREAD_H
#define PYTRACE_MEMREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One of several reads made at once (mem_readv): err is set to 0 or -errno. */
struct mem_span {
	uint64_t addr;
	void *buf;
	size_t len;
	int err;
};

struct mem_reader {
	/* Read exactly len bytes at addr into buf: 0, or -errno (-EFAULT if unmapped). */
	int (*read)(void *ctx, uint64_t addr, void *buf, size_t len);
	void *ctx;
	/* Optional: each span as read would, in fewer calls or with less set-up each. */
	void (*readv)(void *ctx, struct mem_span *v, unsigned n);
};

static inline int mem_read(const struct mem_reader *mr, uint64_t addr, void *buf, size_t len)
{
	return mr->read(mr->ctx, addr, buf, len);
}

/* Each span of v read, its err set: in one call where the reader can, else one by one. */
static inline void mem_readv(const struct mem_reader *mr, struct mem_span *v, unsigned n)
{
	if (mr->readv) {
		mr->readv(mr->ctx, v, n);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		v[i].err = mr->read(mr->ctx, v[i].addr, v[i].buf, v[i].len);
}

static inline int mem_read_u64(const struct mem_reader *mr, uint64_t addr, uint64_t *v)
{
	return mr->read(mr->ctx, addr, v, sizeof(*v));
}

static inline int mem_read_u32(const struct mem_reader *mr, uint64_t addr, uint32_t *v)
{
	return mr->read(mr->ctx, addr, v, sizeof(*v));
}

#endif
