/* fuzz-sources: src/sqlnorm.c src/stacks.c src/utf8.c src/util.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * SQL text -> pattern -> operation and fingerprint (libpg_query), as sqlstats runs them on the
 * statement text captured from a traced process. First byte: bit 0 the text was cut at the
 * capture cap, bits 1-3 the output size, bits 4-5 how the rest is a text: 0 its bytes as they are,
 * 1, 2, 3 a str's code units of 1, 2 or 4 bytes (a driver's text, as the wire programs copy
 * it), made UTF-8 first (utf8_from_ucs: whole code points, valid UTF-8, NUL-terminated).
 * Checks what sqlnorm.h promises: a NUL-terminated pattern shorter than the buffer, valid
 * UTF-8, marked as cut when the text was.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqlnorm.h"
#include "stacks.h"
#include "utf8.h"

static bool valid_utf8(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t k = utf8_next(s + i, n - i, &cp);

		if (!k || (k == 1 && cp == 0xfffd))	/* a real U+FFFD is 3 bytes */
			return false;
		i += k;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t outsizes[8] = { 0, 1, 15, 16, 17, 40, 512, 8192 };
	char op[32], *text, *out;
	size_t outsize, len, n;
	bool truncated, pgq;

	if (!size)
		return 0;
	truncated = data[0] & 1;
	outsize = outsizes[data[0] >> 1 & 7];
	len = size - 1;
	if (data[0] >> 4 & 3) {
		static const unsigned kinds[4] = { 0, 1, 2, 4 };
		unsigned kind = kinds[data[0] >> 4 & 3];
		size_t units = len / kind, cap = 4 * units + 1, used;

		text = malloc(cap);
		len = utf8_from_ucs(data + 1, units, kind, text, cap, &used);
		if (used != units || len >= cap || strlen(text) != len || !valid_utf8(text, len))
			abort();	/* room for every unit: all made UTF-8 */
		n = utf8_from_ucs(data + 1, units, kind, text, len / 2 + 1, &used);
		if (used > units || n > len / 2 || strlen(text) != n || !valid_utf8(text, n))
			abort();	/* cut: whole code points only */
		len = utf8_from_ucs(data + 1, units, kind, text, cap, NULL);
	} else {
		text = malloc(len ? len : 1);	/* exactly the text: no NUL after it, as captured */
		memcpy(text, data + 1, len);
	}
	out = malloc(outsize ? outsize : 1);
	n = sqlnorm__pattern(len ? text : NULL, len, truncated, out, outsize);
	if (outsize) {
		if (n >= outsize || strlen(out) != n)
			abort();
		if (outsize >= SQLNORM_MIN_OUT) {
			if (!valid_utf8(out, n))
				abort();
			if (truncated && !sqlnorm__is_cut(out))
				abort();
			if (sqlnorm__operation(out, op, sizeof(op)) >= sizeof(op))
				abort();
			sqlnorm__fingerprint(text, len, truncated, out, &pgq);
		}
	}
	free(out);
	free(text);
	return 0;
}
