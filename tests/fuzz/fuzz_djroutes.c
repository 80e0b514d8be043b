/* fuzz-sources: src/djroutes.c src/pythreads.c src/symbolize.c src/utf8.c src/linetable.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Django's URL patterns (read from the traced process's memory) and request targets (from the
 * network) through the translation to POSIX and the matcher. Input: lines; before a line "--",
 * patterns, each a kind byte and its text: 'r' a path() endpoint, 'x' a re_path() endpoint,
 * 'R' / 'X' a prefix (an include() level: the next patterns are under it, up to 4 levels; '<'
 * alone closes one; 'u' alone: werkzeug's rule of names, djroutes__set_unique); 's' a literal
 * stop (Starlette's mounted router's end), 'L' a language prefix (codes, '|'-separated:
 * i18n_patterns, the names taking the path's first segment), 'm' and a number the methods
 * (DJR_M_*) of the next endpoints; after it, targets, each matched (its name read whole),
 * "METHOD /path" for a method.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djroutes.h"

static const char *conv(void *ctx, const char *c, const char *param)
{
	if (!strcmp(c, "int"))
		return "[0-9]+";
	if (!strcmp(c, "str"))
		return "[^/]+";
	return *param == 'q' ? c : NULL;	/* the converter's name as a Python regex */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct djr_piece pieces[5];
	char *buf = malloc(size + 1), *line, *save = NULL, out[DJROUTES_LABEL_MAX];
	struct djroutes *t = djroutes__new();
	unsigned depth = 0, methods = 0;
	bool targets = false;

	if (!buf || !t)
		goto out;
	memcpy(buf, data, size);
	buf[size] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int ret;

		if (targets) {
			char *sp = strchr(line, ' ');
			bool named;

			if (sp) {
				*sp = 0;
				named = djroutes__match_method(t, line, sp + 1, out, sizeof(out));
			} else {
				named = djroutes__match(t, line, out, sizeof(out));
			}
			if (named && strlen(out) >= sizeof(out))
				abort();
			continue;
		}
		if (!strcmp(line, "--")) {
			targets = true;
			continue;
		}
		if (!strcmp(line, "u")) {
			djroutes__set_unique(t);
			continue;
		}
		if (!strcmp(line, "<")) {
			depth -= depth > 0;
			continue;
		}
		switch (line[0]) {
		case 'r':
		case 'R':
			ret = djroutes__route_piece(line + 1, line[0] == 'r', conv, NULL, &pieces[depth]);
			break;
		case 'x':
		case 'X':
			ret = djroutes__regex_piece(line + 1, line[0] == 'x', &pieces[depth]);
			break;
		case 's':
			ret = djroutes__literal_piece(line + 1, false, &pieces[depth]);
			pieces[depth].opaque = pieces[depth].stop = true;
			break;
		case 'L':
			if (djroutes__lang_piece(line + 1, &pieces[depth]))
				continue;
			if (depth < 4)
				depth++;
			continue;
		case 'm':
			methods = (unsigned)strtoul(line + 1, NULL, 0) & 0x3ff;
			continue;
		default:
			continue;
		}
		if (ret)
			continue;
		if (line[0] == 'R' || line[0] == 'X') {
			if (depth < 4)
				depth++;
			continue;
		}
		pieces[depth].methods = (uint16_t)methods;
		djroutes__add(t, pieces, depth + 1);
	}
	for (unsigned i = 0; i < djroutes__count(t); i++)
		if (strlen(djroutes__label(t, i)) >= DJROUTES_LABEL_MAX)
			abort();
	djroutes__hash(t);
out:
	djroutes__free(t);
	free(buf);
	return 0;
}
