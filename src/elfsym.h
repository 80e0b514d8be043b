/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PYTRACE_ELFSYM_H
#define PYTRACE_ELFSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_sym_query {
	const char *name;
	uint64_t value;		/* st_value (link-time address), 0 if not found */
	uint64_t size;
};

struct elf_info {
	bool is_dyn;		/* ET_DYN: add the load bias to symbol values */
	uint64_t min_vaddr;	/* lowest PT_LOAD p_vaddr, page aligned down */
};

/* Look up each query's symbol in .symtab and .dynsym of path. Returns 0 or -errno. */
int elfsym__lookup(const char *path, struct elf_sym_query *q, size_t n, struct elf_info *info);

/*
 * For each query found, the file offset of its address (what a uprobe attaches to), and the
 * first bytes there. offs[i] is 0 where q[i] was not found. Returns 0 or -errno.
 */
int elfsym__file_offsets(const char *path, struct elf_sym_query *q, size_t n, uint64_t *offs,
			 uint8_t (*code)[16]);

/*
 * The bytes of path's section called name (".AsyncioDebug"), the first cap of them, as the file
 * holds them; *len: how many were copied. Returns 0, -ENOENT (no such section), or -errno.
 */
int elfsym__section(const char *path, const char *name, void *buf, size_t cap, size_t *len);
#endif
