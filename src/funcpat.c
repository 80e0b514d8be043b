// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include "funcpat.h"

static void lit_set(char *dst, __u8 *len, const char *src, size_t n, bool keep_tail)
{
	if (n > FN_LIT_MAX - 1) {
		if (keep_tail)
			src += n - (FN_LIT_MAX - 1);
		n = FN_LIT_MAX - 1;
	}
	memcpy(dst, src, n);
	dst[n] = 0;
	*len = (__u8)n;
}

/* After the last wildcard of glob ('*', '?', or a [...] class): the literal tail. */
static const char *literal_tail(const char *glob)
{
	const char *p, *tail = glob;

	for (p = glob; *p; p++)
		if (*p == '*' || *p == '?' || *p == ']' || (*p == '[' && !strchr(p, ']')))
			tail = p + 1;
	return tail;
}

/*
 * The prefilter on co_name for a function glob G. Whatever G matches ends with co_name, after a
 * '.' or whole (qualified names and module.qualname alike), so: no wildcard -> co_name is G's
 * last dotted part; a literal tail with a dot -> co_name is the part after that dot; a literal
 * tail without one -> co_name ends with it; no literal tail -> anything.
 */
static void name_filter(const char *glob, struct fn_filter *f)
{
	const char *tail = literal_tail(glob), *dot = strrchr(tail, '.');

	if (tail == glob && !strpbrk(glob, "*?[")) {
		dot = strrchr(glob, '.');
		tail = dot ? dot + 1 : glob;
		f->name_kind = strlen(tail) > FN_LIT_MAX - 1 ? FN_M_PREFIX : FN_M_EXACT;
		lit_set(f->name, &f->name_len, tail, strlen(tail), false);
	} else if (dot) {
		f->name_kind = strlen(dot + 1) > FN_LIT_MAX - 1 ? FN_M_PREFIX : FN_M_EXACT;
		lit_set(f->name, &f->name_len, dot + 1, strlen(dot + 1), false);
	} else if (*tail) {
		f->name_kind = FN_M_SUFFIX;
		lit_set(f->name, &f->name_len, tail, strlen(tail), true);
	} else {
		f->name_kind = FN_M_ANY;
	}
}

int fn_pattern__compile(const char *text, struct fn_pattern *p, struct fn_filter *f)
{
	const char *colon, *star;
	size_t n = strlen(text);

	memset(p, 0, sizeof(*p));
	memset(f, 0, sizeof(*f));
	if (!n || n >= FN_GLOB_MAX)
		return -EINVAL;
	snprintf(p->text, sizeof(p->text), "%s", text);
	colon = strrchr(text, ':');
	if (colon) {
		size_t fl = colon - text;

		if (!fl || !colon[1])
			return -EINVAL;
		memcpy(p->file_glob, text, fl);
		p->file_glob[fl] = 0;
		snprintf(p->func_glob, sizeof(p->func_glob), "%s", colon + 1);
		/* file: a literal tail after the last wildcard, as a suffix */
		star = literal_tail(p->file_glob);
		if (*star) {
			f->file_kind = FN_M_SUFFIX;
			lit_set(f->file, &f->file_len, star, strlen(star), true);
		}
	} else {
		p->qualified = true;
		snprintf(p->func_glob, sizeof(p->func_glob), "%s", text);
	}
	name_filter(p->func_glob, f);
	return 0;
}

static bool glob(const char *g, const char *s)
{
	return s && fnmatch(g, s, 0) == 0;
}

/* Try g on "tail.func" for each dotted tail of file's module path, and on func alone. */
static bool match_qualified(const char *g, const char *file, const char *func)
{
	char mod[FN_GLOB_MAX * 2], cand[FN_GLOB_MAX * 3];
	const char *comps[64];
	size_t lens[64];
	int nc = 0, k, i;
	const char *p, *e;

	if (glob(g, func))
		return true;
	if (!file || file[0] == '<')
		return false;
	snprintf(mod, sizeof(mod), "%s", file);
	e = strrchr(mod, '.');
	if (e && (!strcmp(e, ".py") || !strcmp(e, ".pyw") || !strcmp(e, ".pyc")))
		mod[e - mod] = 0;
	for (p = mod; *p && nc < 64;) {
		const char *slash = strchr(p, '/');
		size_t l = slash ? (size_t)(slash - p) : strlen(p);

		if (l) {
			comps[nc] = p;
			lens[nc++] = l;
		}
		if (!slash)
			break;
		p = slash + 1;
	}
	if (nc && lens[nc - 1] == 8 && !strncmp(comps[nc - 1], "__init__", 8))
		nc--;
	for (k = nc - 1; k >= 0; k--) {
		size_t o = 0;

		for (i = k; i < nc; i++) {
			if (o + lens[i] + 2 >= sizeof(cand))
				return false;
			memcpy(cand + o, comps[i], lens[i]);
			o += lens[i];
			cand[o++] = '.';
		}
		snprintf(cand + o, sizeof(cand) - o, "%s", func);
		if (glob(g, cand))
			return true;
	}
	return false;
}

bool fn_pattern__match(const struct fn_pattern *p, const char *file, const char *name, const char *qualname)
{
	if (!p->qualified)
		return glob(p->file_glob, file ? file : "") &&
		       (glob(p->func_glob, name) || glob(p->func_glob, qualname));
	return match_qualified(p->func_glob, file, name) ||
	       (qualname && strcmp(qualname, name ? name : "") && match_qualified(p->func_glob, file, qualname));
}

static bool part_pass(__u8 kind, const char *lit, size_t n, const char *s)
{
	size_t l = strlen(s);

	switch (kind) {
	case FN_M_ANY:
		return true;
	case FN_M_EXACT:
		return l == n && !memcmp(s, lit, n);
	case FN_M_PREFIX:
		return l >= n && !memcmp(s, lit, n);
	case FN_M_SUFFIX:
		return l >= n && !memcmp(s + l - n, lit, n);
	}
	return false;
}

bool fn_filter__pass(const struct fn_filter *f, const char *file, const char *name)
{
	return part_pass(f->name_kind, f->name, f->name_len, name) &&
	       part_pass(f->file_kind, f->file, f->file_len, file);
}
