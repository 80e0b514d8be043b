/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --functions: per-call latency of matching Python functions from CPython's USDT probes where
 * they are complete, otherwise each function's share of wall-clock time from on- and off-CPU
 * stack samples; GC pauses and import times from the gc__* / import__* probes.
 */
#ifndef PYTRACE_FUNCS_H_USER
#define PYTRACE_FUNCS_H_USER

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "pytrace_user.h"
#include "../include/funcs.h"	/* the BPF-shared types (this file shadows the name) */
#include "pyproc.h"
#include "usdt.h"

struct session_maps;
struct pystacks;
struct jsonw;

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

enum funcs_mode {
	FUNCS_AUTO,		/* probes where complete, sampled shares elsewhere */
	FUNCS_SAMPLE,		/* sampled shares only (probes off) */
};

struct funcs_opts {
	bool enabled;
	const char *const *patterns;
	int npatterns;
	enum funcs_mode mode;
	unsigned rate_hz;	/* on-CPU sample weight: 1e9 / rate_hz ns */
	bool gc;		/* GC and import probes where present */
};

struct funcs;

extern const struct capability funcs_capability;

/*
 * Open and load the USDT programs on the session's shared maps; names (may be NULL) names the
 * callers' frames. The capability does this; tests drive it directly.
 */
struct funcs *funcs__new(const struct funcs_opts *o, const struct session_maps *maps, struct pystacks *names,
			 char *err, size_t errlen);
void funcs__free(struct funcs *f);
/*
 * What pid's interpreter offers, before anything is loaded: main uses it to decide whether the
 * sampling fallback (on- and off-CPU) is needed. 0 or -errno with a message.
 */
int funcs__detect(pid_t pid, struct py_target *py, struct py_probes *pp, char *err, size_t errlen);
/* Read pid's probes and attach the USDT programs it supports. 0, or -errno (message in err). */
int funcs__add_pid(struct funcs *f, pid_t pid, const struct py_target *py, char *err, size_t errlen);
/* pid exec'd: detach its probes (they are attached again when it is inspected). */
void funcs__forget_pid(struct funcs *f, pid_t pid);
/* pid exited: detach its probes; its report line stays while the table has room. */
void funcs__exit_pid(struct funcs *f, pid_t pid);
/* An event of type PT_EV_FUNC_*. */
void funcs__handle(struct funcs *f, const void *data, size_t size);
/* A sampled stack (root first) and the wall time it stands for, for the fallback. */
void funcs__add_sample(struct funcs *f, uint32_t pid, uint32_t tid, const char *const *frames, size_t n,
		       uint64_t weight_ns, bool offcpu);
/* Does any traced process need the sampled fallback? */
bool funcs__sampling_used(const struct funcs *f);
void funcs__report(struct funcs *f, FILE *out);
/* The "functions" section (an object), and the "gc" section (an object, imports included). */
void funcs__write_json(struct funcs *f, struct jsonw *w);
void funcs__write_gc_json(struct funcs *f, struct jsonw *w);

#endif
