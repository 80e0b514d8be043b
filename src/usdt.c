// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "usdt.h"

#define NT_STAPSDT 3

/* desc: pc, base, semaphore (3 x 8 bytes), then provider, name, args as NUL-terminated strings. */
int usdt__parse_desc(const void *desc, unsigned size, struct usdt_note *n)
{
	const char *p = (const char *)desc + 24, *end = (const char *)desc + size;
	const char *strs[3];
	int i;

	if (size < 24 + 3)
		return -EINVAL;
	memcpy(&n->pc, desc, 8);
	memcpy(&n->base, (const char *)desc + 8, 8);
	memcpy(&n->sema, (const char *)desc + 16, 8);
	for (i = 0; i < 3; i++) {
		const char *z = memchr(p, 0, end - p);

		if (!z)
			return -EINVAL;
		strs[i] = p;
		p = z + 1;
	}
	snprintf(n->provider, sizeof(n->provider), "%s", strs[0]);
	snprintf(n->name, sizeof(n->name), "%s", strs[1]);
	snprintf(n->args, sizeof(n->args), "%s", strs[2]);
	return 0;
}

/* The file offset of a link-time address: through the loadable segment that holds it. */
static uint64_t vaddr_to_off(Elf *e, uint64_t vaddr)
{
	size_t i, n;
	GElf_Phdr ph;

	if (!vaddr || elf_getphdrnum(e, &n))
		return 0;
	for (i = 0; i < n; i++) {
		if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz)
			return vaddr - ph.p_vaddr + ph.p_offset;
	}
	return 0;
}

int usdt__read_notes(const char *path, struct usdt_note *out, int max)
{
	Elf_Scn *scn = NULL;
	int fd, count = 0, i;
	uint64_t base = 0;	/* where .stapsdt.base is: notes record it as linked, before prelinking */
	size_t shstrndx;
	Elf *e;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_getshdrstrndx(e, &shstrndx)) {
		count = -EINVAL;
		goto out;
	}
	while ((scn = elf_nextscn(e, scn))) {
		size_t off = 0, name_off, desc_off;
		GElf_Shdr sh;
		GElf_Nhdr nh;
		Elf_Data *d;
		const char *sname;

		if (!gelf_getshdr(scn, &sh))
			continue;
		sname = elf_strptr(e, shstrndx, sh.sh_name);
		if (sname && !strcmp(sname, ".stapsdt.base"))
			base = sh.sh_addr;
		if (sh.sh_type != SHT_NOTE || !sname || strcmp(sname, ".note.stapsdt"))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			struct usdt_note n;

			if (nh.n_type != NT_STAPSDT || nh.n_namesz != 8 ||
			    memcmp((const char *)d->d_buf + name_off, "stapsdt", 8))
				continue;
			if (usdt__parse_desc((const char *)d->d_buf + desc_off, nh.n_descsz, &n))
				continue;
			if (count < max)
				out[count] = n;
			count++;
		}
	}
	for (i = 0; i < count && i < max; i++) {
		uint64_t pc = out[i].pc + (base && out[i].base ? base - out[i].base : 0);

		out[i].ip_off = vaddr_to_off(e, pc);
		out[i].sema_off = vaddr_to_off(e, out[i].sema);
	}
out:
	if (e)
		elf_end(e);
	close(fd);
	return count;
}

void usdt__classify(const struct usdt_note *notes, int n, unsigned major, unsigned minor,
		    struct py_probes *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		const char *nm = notes[i].name;

		if (strcmp(notes[i].provider, "python"))
			continue;
		out->nnotes++;
		out->function_entry |= !strcmp(nm, "function__entry");
		out->function_return |= !strcmp(nm, "function__return");
		out->gc_start |= !strcmp(nm, "gc__start");
		out->gc_done |= !strcmp(nm, "gc__done");
		out->import_start |= !strcmp(nm, "import__find__load__start");
		out->import_done |= !strcmp(nm, "import__find__load__done");
	}
	if (!out->function_entry || !out->function_return)
		out->level = PY_PROBES_NONE;
	else if (major == 3 && minor == 11)
		out->level = PY_PROBES_PARTIAL;		/* cpython issue 98894 */
	else if (major == 3 && minor >= 12 && minor <= 14)
		out->level = PY_PROBES_SILENT;		/* cpython issue 110385 */
	else
		out->level = PY_PROBES_COMPLETE;
}

const char *usdt__level_str(enum py_probe_level l)
{
	switch (l) {
	case PY_PROBES_COMPLETE:
		return "USDT probes (complete)";
	case PY_PROBES_PARTIAL:
		return "USDT probes (partial: 3.11 fires only for frames entered from C)";
	case PY_PROBES_SILENT:
		return "USDT probes (present but never fired by CPython 3.12-3.14)";
	default:
		return "no USDT probes";
	}
}

/* struct pt_regs (x86_64) offset of a register, by any of its names; -1 if unknown. */
static int reg_off(const char *name)
{
	static const struct { const char *names[4]; int off; } regs[] = {
		{ { "rax", "eax", "ax", "al" }, 80 },	{ { "rbx", "ebx", "bx", "bl" }, 40 },
		{ { "rcx", "ecx", "cx", "cl" }, 88 },	{ { "rdx", "edx", "dx", "dl" }, 96 },
		{ { "rsi", "esi", "si", "sil" }, 104 },	{ { "rdi", "edi", "di", "dil" }, 112 },
		{ { "rbp", "ebp", "bp", "bpl" }, 32 },	{ { "rsp", "esp", "sp", "spl" }, 152 },
		{ { "rip", "eip", "ip", NULL }, 128 },
	};
	static const int rn_off[8] = { 72, 64, 56, 48, 24, 16, 8, 0 };	/* r8 .. r15 */
	size_t i, j;
	char *end;
	long n;

	for (i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		for (j = 0; j < 4; j++)
			if (regs[i].names[j] && !strcmp(name, regs[i].names[j]))
				return regs[i].off;
	if (name[0] != 'r')
		return -1;
	n = strtol(name + 1, &end, 10);	/* r8, r8d, r8w, r8b */
	if (n < 8 || n > 15 || (*end && strcmp(end, "d") && strcmp(end, "w") && strcmp(end, "b")))
		return -1;
	return rn_off[n - 8];
}

/* One "SIZE@LOCATION": %reg, OFF(%reg), $CONST. */
static int parse_arg(const char *a, size_t len, struct usdt_arg *out)
{
	char buf[64], reg[16], *p, *end;
	long size;
	int off;

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, a, len);
	buf[len] = 0;
	size = strtol(buf, &end, 10);
	if (*end != '@' || !size)
		return -EINVAL;
	out->is_signed = size < 0;
	size = labs(size);
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return -EINVAL;
	out->bitshift = (char)(64 - 8 * size);
	p = end + 1;
	out->val_off = 0;
	out->reg_off = 0;
	if (*p == '$') {
		out->type = USDT_ARG_CONST;
		out->val_off = strtoll(p + 1, &end, 0);
		return *end ? -EINVAL : 0;
	}
	if (*p == '%') {
		out->type = USDT_ARG_REG;
		off = reg_off(p + 1);
	} else {
		out->type = USDT_ARG_REG_DEREF;
		out->val_off = strtoll(p, &end, 0);
		if (end[0] != '(' || end[1] != '%' || sscanf(end + 2, "%15[a-z0-9])", reg) != 1 ||
		    end[2 + strlen(reg)] != ')' || end[3 + strlen(reg)])
			return -EINVAL;
		off = reg_off(reg);
	}
	if (off < 0)
		return -EINVAL;
	out->reg_off = (short)off;
	return 0;
}

int usdt__parse_args(const char *args, struct usdt_arg *out, int max)
{
	const char *p = args;
	int n = 0;

	while (*p) {
		size_t len;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		len = strcspn(p, " ");
		if (n >= max || parse_arg(p, len, &out[n]))
			return -EINVAL;
		n++;
		p += len;
	}
	return n;
}
