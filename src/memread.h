/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Reading another address space: process_vm_readv in production, captured memory in tests. */
#ifndef PYTRACE_MEMREAD_H
#define PYTRACE_MEMREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mem_reader {
	/* Read exactly len bytes at addr into buf: 0, or -errno (-EFAULT if unmapped). */
	int (*read)(void *ctx, uint64_t addr, void *buf, size_t len);
	void *ctx;
};

static inline int mem_read(const struct mem_reader *mr, uint64_t addr, void *buf, size_t len)
{
	return mr->read(mr->ctx, addr, buf, len);
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
