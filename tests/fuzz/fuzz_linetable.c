/* fuzz-sources: src/linetable.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The three line-table decoders (co_lnotab <= 3.9, 3.10 co_linetable, the 3.11+ location
 * table) on any bytes, as read from a traced interpreter's memory. Input: kind (byte 0 % 3),
 * co_firstlineno (bytes 1-4, little endian), a cut point (byte 5: where a truncated copy of
 * the table ends, in 256ths of its length), then the table. Each input is decoded at 24 offsets
 * spread over the code the table could describe (and 3 before it), whole and cut.
 * Checks linetable.h's promise to the symbolizer: when a cut copy did not run out before the
 * offset (ran_out false), its line is the whole table's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linetable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum pyl_linetable kind;
	int32_t first;
	size_t len, cut;
	uint8_t *table;
	int64_t span, step;

	if (size < 6)
		return 0;
	kind = (enum pyl_linetable)(data[0] % 3);
	memcpy(&first, data + 1, 4);
	len = size - 6;
	cut = len * data[5] / 256;
	/* exactly len bytes, so that ASan sees a read past the table */
	table = malloc(len ? len : 1);
	memcpy(table, data + 6, len);
	/* 3.11+ entries cover up to 16 bytes of code each, older pairs up to 255 */
	span = (int64_t)len * (kind == PYL_LOCATIONS ? 16 : 128) + 4;
	step = span / 24 > 2 ? span / 24 : 2;
	for (int64_t off = -3; off < span; off += off < 0 ? 1 : step) {
		bool ran_out, cut_ran_out;
		int line = linetable__addr2line_ex(kind, len ? table : NULL, len, first, (int)off, &ran_out);
		int cut_line = linetable__addr2line_ex(kind, table, cut, first, (int)off, &cut_ran_out);

		if (off < 0 && (line != first || cut_line != first))
			abort();
		if (!cut_ran_out && cut_line != line)
			abort();
		if (off == step && linetable__addr2line(kind, table, len, first, (int)off) != line)
			abort();
	}
	free(table);
	return 0;
}
