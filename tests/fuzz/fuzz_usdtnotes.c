/* fuzz-sources: src/usdt.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The SystemTap SDT note reader (.note.stapsdt, .stapsdt.base) on any ELF file, then what
 * funcs does with the notes: classify them and parse each one's argument string. usdt reads a
 * path, so the input is written to a memfd and read through /proc/self/fd/N. The seeds are the
 * note sections of real interpreters (tests/fuzz/seeds/mkseeds.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "usdt.h"

#define MAX_NOTES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct usdt_note notes[MAX_NOTES];
	static char path[64];
	static int fd = -1;
	struct usdt_arg args[12];
	struct py_probes pp;
	int n;

	if (fd < 0) {
		fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	n = usdt__read_notes(path, notes, MAX_NOTES);
	if (n < 0)
		return 0;
	if (n > MAX_NOTES)
		n = MAX_NOTES;
	for (int i = 0; i < n; i++) {
		if (!memchr(notes[i].provider, 0, sizeof(notes[i].provider)) ||
		    !memchr(notes[i].name, 0, sizeof(notes[i].name)) ||
		    !memchr(notes[i].args, 0, sizeof(notes[i].args)))
			abort();
		/*
		 * Not checked: that ip_off and sema_off lie inside the file. A segment whose
		 * p_offset + p_filesz runs past the end of a cut file gives offsets past it, and
		 * the kernel refuses a uprobe there (-EINVAL), which funcs reports.
		 */
		usdt__parse_args(notes[i].args, args, 12);
	}
	usdt__classify(notes, n, 3, 11, &pp);
	usdt__level_str(pp.level);
	return 0;
}
