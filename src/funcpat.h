/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --functions patterns: the exact match user space decides, and the BPF prefilter
 * (include/funcs.h's struct fn_filter) that lets through a superset of it. Pure: no libbpf.
 */
#ifndef PYTRACE_FUNCPAT_H
#define PYTRACE_FUNCPAT_H

#include <stdbool.h>
#include "pytrace_user.h"
#include "funcs.h"	/* include/funcs.h: struct fn_filter, shared with bpf/funcs.bpf.c */

#define FN_GLOB_MAX 256

/*
 * A --functions pattern. "FILEGLOB:FUNCGLOB" matches the file name and the function's name or
 * qualified name ('*views.py:*'); anything else is a glob on the dotted name module.qualname,
 * where the module is any dotted tail of the file path ('myapp.*', 'app.services.checkout').
 * '*' spans dots and slashes (fnmatch without FNM_PATHNAME).
 */
struct fn_pattern {
	char text[FN_GLOB_MAX];
	char file_glob[FN_GLOB_MAX];	/* ':' form only */
	char func_glob[FN_GLOB_MAX];
	bool qualified;			/* dotted-name form */
};

/* Compile text into p and the BPF prefilter f (a superset of what p matches). 0 or -EINVAL. */
int fn_pattern__compile(const char *text, struct fn_pattern *p, struct fn_filter *f);
/* Exact match. qualname may be NULL (the probes give co_name only). */
bool fn_pattern__match(const struct fn_pattern *p, const char *file, const char *name, const char *qualname);
/* Does the prefilter pass (file, name)? The user-space twin of the BPF check, for tests. */
bool fn_filter__pass(const struct fn_filter *f, const char *file, const char *name);

#endif
