/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One tracing session: the core BPF object (process tracepoints, the CPU sampler's program and
 * the maps every BPF object shares), the ring buffer all events arrive on, the traced processes
 * (procs.h), the stack namer (pystacks.h), and the capabilities registered with it.
 *
 * A capability is a module with its own BPF object, state and reports (sampler, SQL, HTTP,
 * functions, ...). It registers through struct capability: the session opens it, dispatches the
 * event types it owns to it, tells it of processes, ticks it, and asks it for its JSON section,
 * its summary and its text report. Event types are owned by ranges (PT_EV_*_FIRST..LAST in
 * include/pytrace.h); the session refuses overlapping ranges at start and counts events of types
 * nobody owns. Adding a capability: its files, its options in struct session_opts, one line in
 * session.c's table, and its command-line options in main.c.
 */
#ifndef PYTRACE_SESSION_H
#define PYTRACE_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "collector.h"
#include "funcprobe.h"
#include "httptrace.h"
#include "pgwiretrace.h"
#include "procs.h"
#include "sampler.h"
#include "sqltrace.h"

struct bpf_map;
struct bpf_object;
struct bpf_object_skeleton;
struct jsonw;
struct session;
struct pystacks;
struct uvwrite;

/* The maps every pytrace BPF object shares (bpf/maps.bpf.h): the session's object owns them. */
struct session_maps {
	struct bpf_map *procs, *tracked, *counters, *events;
	struct bpf_map *pq_current;	/* a thread's libpq connection in use (libpq probes -> wire) */
	struct bpf_map *tracked_bits;	/* tracked's pids as bits: the prefilter of every program */
	struct bpf_map *pg_conns;	/* PostgreSQL connections on the wire (pgwire -> --idle) */
};

/* Make obj (opened, not loaded) use the session's shared maps instead of its own copies. */
int session_maps__reuse(const struct session_maps *m, struct bpf_object *obj, char *err, size_t errlen);
/*
 * Make obj (opened, not loaded) use every map of src (loaded), by name, its global data included:
 * obj is a second instance of src's object, opened to load a program that src left unloaded
 * (bpf_program__set_autoload) until a process needs it. Its programs then see src's state.
 */
int session_maps__share_all(struct bpf_object *obj, const struct bpf_object *src, char *err, size_t errlen);

struct session_opts {
	bool follow_children;
	/*
	 * Every CPython process on the host, those running now and those that start later
	 * (session__add_host), instead of --pid's subtree; filter narrows either. The session then
	 * runs until stopped: session__live() may fall to 0 and rise again.
	 */
	bool host_wide;
	struct procs_filter filter;	/* --comm, --exclude-comm, --cgroup (procs.h) */
	const char *service_name;	/* --service-name: every process's service, NULL: derived (service.h) */
	const char *btf_path;		/* kernel BTF file, NULL: the running kernel's */
	uint32_t max_procs;		/* processes at once, 0: PROCS_DEFAULT_MAX */
	bool threads;			/* each thread's name as the root frame of its stacks */
	/*
	 * A command the tracer started (launch.h), or 0: after each exec of it or of a process it
	 * started (followed), that process is held at the first Python source it opens until its
	 * interpreter is known (bpf/session.bpf.c).
	 */
	pid_t hold_pid;
	/* capabilities: each has an `enabled` flag */
	struct sampler_opts sampler;
	struct sqltrace_opts sql;
	struct httptrace_opts http;
	struct funcs_opts funcs;
	struct pgwiretrace_opts pgwire;
	struct collector_opts collector;
};

#define SESSION_WROTE_FILES	(1u << 0)	/* some output file (flame, folded, speedscope, JSON) */
#define SESSION_WROTE_JSON	(1u << 1)	/* the JSON report */

struct capability {
	const char *name;
	unsigned ev_first, ev_last;	/* event types owned (PT_EV_*_FIRST..LAST); 0, 0: none */
	/* NULL with err[0] == 0: not enabled; NULL with a message: failed. Called in table order. */
	void *(*open)(struct session *s, const struct session_opts *o, char *err, size_t errlen);
	/* every capability is open: start producing events */
	int (*attach)(void *c, char *err, size_t errlen);
	void (*on_event)(void *c, const void *data, size_t size);
	/* process hooks (procs.h): */
	void (*on_python)(void *c, const struct proc *p);
	void (*on_fork)(void *c, const struct proc *child, const struct proc *parent);
	void (*on_exec)(void *c, pid_t pid);
	void (*on_exit)(void *c, pid_t pid);
	/* after each poll, with CLOCK_MONOTONIC now */
	void (*tick)(void *c, uint64_t now_ns);
	/* the end: take what is complete */
	void (*flush)(void *c);
	/* a new report window (the collector): drop the aggregates the reports are made of */
	void (*reset)(void *c);
	/* stderr: a line of what was captured; and, after the outputs, warnings */
	void (*summary)(void *c, FILE *f);
	/* its fields of the JSON report's top-level object */
	void (*write_json)(void *c, struct jsonw *w);
	/* its part of the text report (stdout); written: the SESSION_WROTE_* outputs asked for */
	void (*report)(void *c, FILE *f, unsigned written);
	/* whether it collected anything (NULL: it does not count) */
	bool (*collected)(void *c);
	void (*free)(void *c);
};

struct session *session__new(const struct session_opts *o, char *err, size_t errlen);
void session__free(struct session *s);
/* Trace pid and (with follow_children) its descendants. */
int session__add_root(struct session *s, pid_t pid, char *err, size_t errlen);
/* Trace pid, a command started by the caller and held before its exec (procs__add_launched). */
int session__add_launched(struct session *s, pid_t pid, char *err, size_t errlen);
/*
 * Host-wide (opts.host_wide): arm the BPF side's exec hook, then follow every CPython process
 * running now that passes opts.filter. Call before session__attach, instead of session__add_root.
 * Returns how many were found now (0 is fine: they may start later) or -errno.
 */
int session__add_host(struct session *s, char *err, size_t errlen);
/* Whether the session follows the whole host (samples then get their service as root frame). */
bool session__host_wide(const struct session *s);
/* Start every capability. */
int session__attach(struct session *s, char *err, size_t errlen);
/* Wait up to timeout_ms for events and handle them. Returns events handled or -errno. */
int session__poll(struct session *s, int timeout_ms);
/* Take what is still queued and complete what is complete (the end). */
void session__drain(struct session *s);
/* Traced processes still running. */
unsigned session__live(const struct session *s);

/* For capabilities */
const struct session_maps *session__maps(const struct session *s);
struct procs *session__procs(struct session *s);
struct pystacks *session__pystacks(struct session *s);
/* uvloop's transport.write probe (uvwrite.h): give it a program at open; the session runs it. */
struct uvwrite *session__uvwrite(struct session *s);
struct bpf_object *session__obj(struct session *s);
/*
 * Load skel's object in a thread of its own, beside the capabilities opened after the caller:
 * the kernel's verification of each object is most of the tool's start (docs/PERFORMANCE.md),
 * and on two CPUs two of them verify at once. When every capability is open the session waits
 * for the load and calls done(ctx, ret, err, errlen) with its result (0 or -errno), where the
 * caller finishes what needed the object loaded; done's non-zero return (with a message in err)
 * fails the session. Until then the caller must not touch skel. 0, or -errno if no thread could
 * be started (then nothing was done: load it in place).
 */
int session__load_later(struct session *s, struct bpf_object_skeleton *skel,
			int (*done)(void *ctx, int ret, char *err, size_t errlen), void *ctx);
/* A capability opened before the caller, by name ("sampler", "sql", "http", "functions"), or NULL. */
void *session__cap(struct session *s, const char *name);
/* A counter of the BPF side (enum pt_counter), summed over CPUs. */
uint64_t session__counter(const struct session *s, unsigned which);
/* Events whose type no capability owns (a BPF/loader mismatch): should stay 0. */
uint64_t session__unowned(const struct session *s);

/* Reports: every capability's, in table order. */
void session__describe(const struct session *s, FILE *f);
void session__write_json(struct session *s, struct jsonw *w);
void session__summary(struct session *s, FILE *f);
void session__report(struct session *s, FILE *f, unsigned written);
/* A new report window: every capability drops its aggregates (counters of losses stay). */
void session__reset(struct session *s);
/* Whether anything at all was collected (samples, statements, requests, calls). */
bool session__collected(struct session *s);

#endif
