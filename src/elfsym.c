// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>
#include "elfsym.h"

static void scan_symtab(Elf *elf, Elf_Scn *scn, GElf_Shdr *sh, struct elf_sym_query *q, size_t n)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count, i, j;
	GElf_Sym sym;

	if (!data || !sh->sh_entsize)
		return;
	count = sh->sh_size / sh->sh_entsize;
	for (i = 0; i < count; i++) {
		const char *name;

		if (!gelf_getsym(data, i, &sym) || sym.st_shndx == SHN_UNDEF || !sym.st_value)
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name || !name[0])
			continue;
		for (j = 0; j < n; j++) {
			if (!q[j].value && strcmp(name, q[j].name) == 0) {
				q[j].value = sym.st_value;
				q[j].size = sym.st_size;
			}
		}
	}
}

static void elf_close(int fd, Elf *elf)
{
	if (elf)
		elf_end(elf);
	close(fd);
}

/* path opened as an ELF file: 0 with *fd and *elf set (for elf_close), or -errno (-ENOEXEC: not ELF). */
static int elf_open(const char *path, int *fd, Elf **elf)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	*elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!*elf || elf_kind(*elf) != ELF_K_ELF) {
		elf_close(*fd, *elf);
		return -ENOEXEC;
	}
	return 0;
}

int elfsym__lookup(const char *path, struct elf_sym_query *q, size_t n, struct elf_info *info)
{
	uint64_t min_vaddr = UINT64_MAX;
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	size_t i, phnum;
	int fd, err = 0;
	Elf *elf;

	for (i = 0; i < n; i++)
		q[i].value = q[i].size = 0;
	err = elf_open(path, &fd, &elf);
	if (err)
		return err;
	if (!gelf_getehdr(elf, &eh)) {
		err = -ENOEXEC;
		goto cleanup;
	}
	if (info) {
		info->is_dyn = eh.e_type == ET_DYN;
		if (elf_getphdrnum(elf, &phnum) == 0) {
			for (i = 0; i < phnum; i++) {
				GElf_Phdr ph;

				if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD && ph.p_vaddr < min_vaddr)
					min_vaddr = ph.p_vaddr;
			}
		}
		info->min_vaddr = min_vaddr == UINT64_MAX ? 0 : (min_vaddr & ~0xfffULL);
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM))
			scan_symtab(elf, scn, &sh, q, n);
	}
cleanup:
	elf_close(fd, elf);
	return err;
}

int elfsym__file_offsets(const char *path, struct elf_sym_query *q, size_t n, uint64_t *offs,
			 uint8_t (*code)[16])
{
	size_t i, j, phnum;
	int fd, err;
	Elf *elf;

	err = elfsym__lookup(path, q, n, NULL);
	if (!err)
		err = elf_open(path, &fd, &elf);
	if (err)
		return err;
	if (elf_getphdrnum(elf, &phnum)) {
		err = -ENOEXEC;
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		offs[i] = 0;
		memset(code[i], 0, sizeof(code[i]));
		for (j = 0; q[i].value && j < phnum; j++) {
			GElf_Phdr ph;

			if (!gelf_getphdr(elf, j, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) ||
			    q[i].value < ph.p_vaddr || q[i].value >= ph.p_vaddr + ph.p_filesz)
				continue;
			offs[i] = q[i].value - ph.p_vaddr + ph.p_offset;
			if (pread(fd, code[i], sizeof(code[i]), offs[i]) != (ssize_t)sizeof(code[i]))
				memset(code[i], 0, sizeof(code[i]));
			break;
		}
	}
cleanup:
	elf_close(fd, elf);
	return err;
}

int elfsym__section(const char *path, const char *name, void *buf, size_t cap, size_t *len)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	int fd, err = -ENOENT;
	Elf *elf;

	*len = 0;
	err = elf_open(path, &fd, &elf);
	if (err)
		return err;
	err = -ENOENT;
	if (elf_getshdrstrndx(elf, &shstrndx)) {
		err = -ENOEXEC;
		goto cleanup;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		const char *sname;
		GElf_Shdr sh;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || !(sname = elf_strptr(elf, shstrndx, sh.sh_name)) ||
		    strcmp(sname, name))
			continue;
		if (sh.sh_type != SHT_PROGBITS) {
			err = -ENOEXEC;	/* no bytes in the file (NOBITS): not what was asked for */
			break;
		}
		n = sh.sh_size < cap ? sh.sh_size : cap;
		err = 0;
		if (n && pread(fd, buf, n, sh.sh_offset) != (ssize_t)n)
			err = -EIO;
		else
			*len = n;
		break;
	}
cleanup:
	elf_close(fd, elf);
	return err;
}
