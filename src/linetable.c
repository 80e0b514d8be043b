// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Line tables of CPython 3.8 .. 3.15, decoded the way PyCode_Addr2Line of each version does. */
#include <limits.h>

#include "linetable.h"

static int clamp_line(int64_t line)
{
	return line < INT_MIN || line > INT_MAX ? -1 : (int)line;
}

/*
 * 3.8, 3.9 co_lnotab: (address increment: unsigned byte, line increment: signed byte) pairs.
 * The line of an offset is firstlineno plus the line increments of every pair reached before
 * the address passes the offset; the last range extends to the end of the code.
 */
static int lnotab(const uint8_t *p, size_t len, int firstlineno, int off, bool *ran_out)
{
	int64_t line = firstlineno, addr = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		addr += p[i];
		if (addr > off)
			return clamp_line(line);
		line += (int8_t)p[i + 1];
	}
	*ran_out = true;
	return clamp_line(line);
}

/*
 * 3.10 co_linetable (PEP 626): (byte length: unsigned, line delta: signed) pairs, each one a
 * range starting where the previous ended; a delta of -128 marks a range without a line and
 * leaves the running line alone.
 */
static int linetable310(const uint8_t *p, size_t len, int firstlineno, int off, bool *ran_out)
{
	int64_t line = firstlineno, end = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		int8_t ldelta = (int8_t)p[i + 1];
		int64_t start = end;

		end += p[i];
		if (ldelta != -128)
			line += ldelta;
		if (start <= off && off < end)
			return ldelta == -128 ? -1 : clamp_line(line);
	}
	*ran_out = true;
	return -1;
}

/*
 * Location table varints: 6-bit chunks, least significant first, 0x40 = more follow.
 * *cut: the table ended before the varint did.
 */
static uint64_t varint(const uint8_t *p, size_t len, size_t *i, bool *cut)
{
	uint64_t v = 0;
	unsigned shift = 0;

	while (*i < len) {
		uint8_t b = p[(*i)++];

		if (shift < 64)
			v |= (uint64_t)(b & 0x3f) << shift;
		shift += 6;
		if (!(b & 0x40))
			return v;
	}
	*cut = true;
	return v;
}

static int64_t svarint(const uint8_t *p, size_t len, size_t *i, bool *cut)
{
	uint64_t v = varint(p, len, i, cut);

	return v & 1 ? -(int64_t)(v >> 1 & INT32_MAX) : (int64_t)(v >> 1 & INT32_MAX);
}

/*
 * 3.11+ location table. Each entry starts with a byte 1CCCCLLL: LLL+1 code units, code CCCC:
 *   15 no location; 14 long form (svarint line delta, then end line, columns);
 *   13 no columns (svarint line delta); 10..12 one line, line delta CCCC-10;
 *   0..9 short form, same line. The running line changes by each entry's delta.
 * Unchanged from 3.11 to 3.15 (checked against the tables of real 3.11 .. 3.15 interpreters).
 */
static int locations(const uint8_t *p, size_t len, int firstlineno, int off, bool *ran_out)
{
	int64_t line = firstlineno, end = 0;
	size_t i = 0;

	while (i < len) {
		uint8_t first = p[i++];
		unsigned code = (first >> 3) & 15;
		int64_t start = end;
		bool noline = false, cut = false;

		end += ((first & 7) + 1) * 2;
		switch (code) {
		case 15:
			noline = true;
			break;
		case 14:
		case 13:
			line += svarint(p, len, &i, &cut);
			/* a table copied short, cut in the delta: this entry's line is unknown */
			if (cut)
				goto ran_out;
			break;
		case 12:
		case 11:
		case 10:
			line += code - 10;
			break;
		default:
			break;
		}
		/* skip the rest of the entry: the next entry is the next byte with bit 7 set */
		while (i < len && !(p[i] & 0x80))
			i++;
		if (start <= off && off < end)
			return noline ? -1 : clamp_line(line);
	}
ran_out:
	*ran_out = true;
	return -1;
}

int linetable__addr2line_ex(enum pyl_linetable kind, const uint8_t *table, size_t len,
			    int firstlineno, int byte_offset, bool *ran_out)
{
	bool dummy;

	if (!ran_out)
		ran_out = &dummy;
	*ran_out = false;
	if (byte_offset < 0)
		return firstlineno;
	if (!table)
		len = 0;
	switch (kind) {
	case PYL_LNOTAB:
		return lnotab(table, len, firstlineno, byte_offset, ran_out);
	case PYL_LINETABLE_310:
		return linetable310(table, len, firstlineno, byte_offset, ran_out);
	case PYL_LOCATIONS:
		return locations(table, len, firstlineno, byte_offset, ran_out);
	}
	return -1;
}

int linetable__addr2line(enum pyl_linetable kind, const uint8_t *table, size_t len,
			 int firstlineno, int byte_offset)
{
	return linetable__addr2line_ex(kind, table, len, firstlineno, byte_offset, NULL);
}
