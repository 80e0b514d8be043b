/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Statements through libpq: their events paired into statements (sqlmatch.h), counted (sqlstats.h),
 * named with their call sites, and reported. Finding and probing libpq is libpq.h's. */
#ifndef PYTRACE_SQLTRACE_H
#define PYTRACE_SQLTRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "libpq.h"
#include "pytrace_user.h"
#include "sqlmatch.h"
#include "sqlstats.h"
#include "stacks.h"

struct jsonw;

struct sqltrace_opts {
	bool enabled;
	unsigned text_cap;		/* bytes of statement text captured (default 1024) */
	bool show_literals;		/* keep literals in examples and the slow log */
	double slow_ms;			/* statements slower than this go to slow_log */
	FILE *slow_log;			/* JSON lines, or NULL */
	unsigned max_patterns;		/* 0: default */
	int probes;			/* enum sql_probe_opt (sqlmode.h): which libpq probes */
	uint64_t ahead_ttl_ns;		/* libpq.h; 0: default */
	bool in_flame;			/* statement time as [sql] leaves in the flame stacks (sqljoin.h) */
	bool no_libpq;			/* statements from another source only (the wire): no libpq probes */
	bool libpq_on_demand;		/* probe libpq only in processes named by sqltrace__probe_libpq */
};

/* Who hears of each completed statement (sqljoin.c); fields may be NULL. */
struct sqltrace_listener {
	/* a statement with its stack (root first), its pattern and call site (one of frames) */
	void (*on_query)(void *ctx, const struct sql_query *q, const char *const *frames, size_t nframes,
			 const char *pattern, const char *call_site);
	/* a stack id was named anew: what was remembered by stack id is stale */
	void (*on_stack_named)(void *ctx);
	void *ctx;
};

struct sqltrace_stats {
	struct libpq_stats libpq;
	uint64_t calls;			/* libpq calls seen in traced processes */
	uint64_t lost;			/* libpq events dropped (ring buffer full) */
	uint64_t stacks_missing;	/* statements whose stack had left the stacks map */
	uint64_t stacks_cut;		/* statements whose stack was walked to its route frame only, its
					   task read directly (struct pt_proc's run_tasks) */
	uint64_t libpq_left_to_wire;	/* libpq's statements on connections the wire serves: not counted twice */
	uint64_t named_only;		/* of those counted, run by the name of a statement prepared before
					   tracing whose text was never seen: their pattern "EXECUTE name" */
	struct sql_match_stats match;
};

struct sqltrace;

extern const struct capability sqltrace_capability;

#define SQLTRACE_MAX_LISTENERS	4
/* Adds a listener (sqljoin, the collector): 0, or -ENOSPC. */
int sqltrace__listen(struct sqltrace *s, const struct sqltrace_listener *l);
/* Where a source keeps the Python stacks its statements refer to (by the walker's hash). */
typedef int (*sqltrace_stack_fn)(void *ctx, uint64_t id, struct pt_stack *st);
/*
 * A statement from another source than libpq's probes (the wire protocol): counted, named with
 * its call site and passed on like libpq's. Its stack is looked up through lookup.
 */
void sqltrace__add_query(struct sqltrace *s, const struct sql_query *q, sqltrace_stack_fn lookup, void *ctx);
/*
 * With libpq_on_demand: probe pid's libpq now (a process with an encrypted connection, which only
 * libpq's probes can read).
 */
void sqltrace__probe_libpq(struct sqltrace *s, pid_t pid);
/*
 * Who decides whether a statement from libpq's probes is counted: keep(ctx, pid, conn) returns
 * false for a connection another source (the wire) serves. Without one, every one is.
 */
typedef bool (*sqltrace_keep_fn)(void *ctx, uint32_t pid, uint64_t conn);
void sqltrace__keep_libpq(struct sqltrace *s, sqltrace_keep_fn keep, void *ctx);
/* Name a stack now, while its process surely lives (a statement may complete after it exits). */
void sqltrace__name_stack(struct sqltrace *s, uint32_t pid, uint32_t tid, uint64_t id, sqltrace_stack_fn lookup,
			  void *ctx);
void sqltrace__stats(struct sqltrace *s, struct sqltrace_stats *st);
struct sql_stats *sqltrace__sql_stats(struct sqltrace *s);
/* The innermost frame of the application's own code (not site-packages, dist-packages or the
 * standard library), or NULL. frames are root first. */
const char *sqltrace__call_site(const char *const *frames, size_t n);

#endif
