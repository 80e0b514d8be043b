/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Instruction offset -> source line, from the line tables of CPython 3.8 .. 3.15. */
#ifndef PYTRACE_LINETABLE_H
#define PYTRACE_LINETABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pylayout.h"

/*
 * The source line of the instruction at byte_offset (bytes from the first code unit) in a
 * code object whose line table is table[0..len) and whose co_firstlineno is firstlineno.
 *   PYL_LNOTAB         co_lnotab (3.8, 3.9): every instruction has a line.
 *   PYL_LINETABLE_310  co_linetable (3.10, PEP 626).
 *   PYL_LOCATIONS      the location table of 3.11 .. 3.15 (InternalDocs/locations.md).
 * Returns the line, or -1 when the instruction has no line or lies past the table's end.
 * A negative byte_offset (frame not started: f_lasti -1, prev_instr one unit before the code)
 * gives firstlineno, as PyCode_Addr2Line does. Never reads outside table[0..len).
 */
int linetable__addr2line(enum pyl_linetable kind, const uint8_t *table, size_t len,
			 int firstlineno, int byte_offset);

/* The same; *ran_out (if not NULL) tells whether the whole table was consumed before the
 * offset was reached (a truncated copy of a table can then not be trusted for that offset). */
int linetable__addr2line_ex(enum pyl_linetable kind, const uint8_t *table, size_t len,
			    int firstlineno, int byte_offset, bool *ran_out);

#endif
