// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
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

int usdt__read_notes(const char *path, struct usdt_note *out, int max)
{
	Elf_Scn *scn = NULL;
	int fd, count = 0;
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

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		sname = elf_strptr(e, shstrndx, sh.sh_name);
		if (!sname || strcmp(sname, ".note.stapsdt"))
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
