/* fuzz-sources: src/elfsym.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Symbol lookup and symbol -> file offset in an ELF file (libpython, libpq, a python binary:
 * files a traced process maps, so any bytes). elfsym reads a path, so the input is written to
 * a memfd and read through /proc/self/fd/N. The seeds are small real ELF files of this machine
 * (tests/fuzz/seeds/mkseeds.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elfsym.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	static int fd = -1;
	struct elf_sym_query q[] = {
		{ .name = "_PyRuntime" }, { .name = "Py_Version" }, { .name = "PQsendQuery" },
		{ .name = "main" }, { .name = "_start" }, { .name = "_init" }, { .name = "" },
	};
	const size_t n = sizeof(q) / sizeof(q[0]);
	uint64_t offs[sizeof(q) / sizeof(q[0])];
	uint8_t code[sizeof(q) / sizeof(q[0])][16];
	struct elf_info info;

	if (fd < 0) {
		fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	elfsym__lookup(path, q, n, &info);
	/* offsets past the end of a cut file are possible (see fuzz_usdtnotes.c): not checked */
	elfsym__file_offsets(path, q, n, offs, code);
	return 0;
}
