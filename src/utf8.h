/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* UTF-8 decoding, for every module that writes names or statements into text formats. */
#ifndef PYTRACE_UTF8_H
#define PYTRACE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decodes one UTF-8 code point of s[0..len): returns the bytes used (>= 1 when len > 0) and sets
 * *cp, or U+FFFD for an invalid, overlong, surrogate or truncated sequence (consuming one byte).
 */
size_t utf8_next(const char *s, size_t len, uint32_t *cp);

/*
 * Appends code point c to buf[*n..size-1) as UTF-8 if it fits whole (a lone surrogate as U+FFFD,
 * NUL as '?': the result stays a C string) and advances *n: true, or false when it does not fit.
 * Does not terminate buf.
 */
bool utf8_put(char *buf, size_t size, size_t *n, uint32_t c);

/* Code unit i of a str's data p of kind 1, 2 or 4 (Latin-1, UCS-2, UCS-4; host order). */
uint32_t ucs_unit(const void *p, size_t i, unsigned kind);

/*
 * A str's code units as CPython keeps them (kind 1: Latin-1, 2: UCS-2, 4: UCS-4; units of
 * count * kind bytes at data, host order) into buf as UTF-8, whole code points only, NUL-terminated
 * (size >= 1): returns the bytes written; *used (if not NULL) the units converted, count unless
 * buf filled first.
 */
size_t utf8_from_ucs(const void *data, size_t count, unsigned kind, char *buf, size_t size, size_t *used);

#endif
