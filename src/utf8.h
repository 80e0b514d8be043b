/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* UTF-8 decoding, for every module that writes names or statements into text formats. */
#ifndef PYTRACE_UTF8_H
#define PYTRACE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes one UTF-8 code point of s[0..len): returns the bytes used (>= 1 when len > 0) and sets
 * *cp, or U+FFFD for an invalid, overlong, surrogate or truncated sequence (consuming one byte).
 */
size_t utf8_next(const char *s, size_t len, uint32_t *cp);

#endif
