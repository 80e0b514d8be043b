/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --functions: the capability and its libbpf side. Loads bpf/funcs.bpf.c on the session's shared
 * maps, reads each Python process's SDT notes and attaches the function, GC and import probes it
 * offers, turns the events into calls for funcstats.h (which keeps the statistics and writes the
 * reports), and hands it the sampler's stacks for processes whose probes are missing or partial.
 * Patterns: funcpat.h. BPF-shared types: include/funcs.h.
 */
#ifndef PYTRACE_FUNCPROBE_H
#define PYTRACE_FUNCPROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "funcpat.h"
#include "funcstats.h"
#include "pyproc.h"
#include "usdt.h"

struct session_maps;
struct pystacks;
struct jsonw;

struct funcs_opts {
	bool enabled;
	const char *const *patterns;
	int npatterns;
	enum funcs_mode mode;
	unsigned rate_hz;	/* on-CPU sample weight: 1e9 / rate_hz ns */
	bool gc;		/* GC and import probes where present */
};

struct funcprobe;

extern const struct capability funcs_capability;

/*
 * Open and load the USDT programs on the session's shared maps; names (may be NULL) names the
 * callers' frames. The capability does this; tests drive it directly.
 */
struct funcprobe *funcprobe__new(const struct funcs_opts *o, const struct session_maps *maps,
				 struct pystacks *names, char *err, size_t errlen);
void funcprobe__free(struct funcprobe *f);
/*
 * What pid's interpreter offers, before anything is loaded: main uses it to decide whether the
 * sampling fallback (on- and off-CPU) is needed. 0 or -errno with a message.
 */
int funcprobe__detect(pid_t pid, struct py_target *py, struct py_probes *pp, char *err, size_t errlen);
/* Read pid's probes and attach the USDT programs it supports. 0, or -errno (message in err). */
int funcprobe__add_pid(struct funcprobe *f, pid_t pid, const struct py_target *py, char *err, size_t errlen);
/* pid exec'd: detach its probes (they are attached again when it is inspected). */
void funcprobe__forget_pid(struct funcprobe *f, pid_t pid);
/* pid exited: detach its probes; its report line stays while the table has room. */
void funcprobe__exit_pid(struct funcprobe *f, pid_t pid);
/* An event of type PT_EV_FUNC_*. */
void funcprobe__handle(struct funcprobe *f, const void *data, size_t size);
/* The statistics it feeds. */
struct funcstats *funcprobe__stats(struct funcprobe *f);
/* The counters the reports show (the BPF side's, summed over CPUs, and the handler's). */
void funcprobe__counters(struct funcprobe *f, struct funcstats_counters *c);
/* The reports: funcstats.h's, with the counters. */
void funcprobe__report(struct funcprobe *f, FILE *out);
void funcprobe__write_json(struct funcprobe *f, struct jsonw *w);
void funcprobe__write_gc_json(struct funcprobe *f, struct jsonw *w);

#endif
