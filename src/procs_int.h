/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The process table's insides, shared by its two halves and no one else: procs.c (processes
 * found, followed, forked, exec'd and gone) and procs_frames.c (what the BPF walkers are told
 * about a process's frameworks: the frames and objects they look for, found in its modules).
 * The API is procs.h.
 */
#ifndef PYTRACE_PROCS_INT_H
#define PYTRACE_PROCS_INT_H

#include <stdint.h>
#include <stdio.h>
#include "memread.h"
#include "pidtab.h"
#include "procs.h"
#include "util.h"

/* A process listed in the reports. */
struct procs_seen {
	uint32_t pid;
	uint8_t major, minor;
	bool live;
	bool forked;		/* a fork of a Python process: unlisted if it execs (a subprocess) */
	char comm[16];
	char service[SERVICE_NAME_MAX];
};

struct procs {
	struct procs_opts o;
	struct pidtab tab;	/* struct proc */
	struct procs_stats st;
	uint64_t start_ns;
	bool any_pending;
	uint64_t pending_due_ns;	/* no pending process is due for a look before then */
	struct procs_seen seen[PROCS_SEEN_MAX];
	unsigned nseen;
	uint64_t seen_not_listed;
	uint32_t families;	/* the last struct proc.family given */
	struct pidtab fams;	/* struct family: the families with processes alive */
};

/* A family (struct proc.family) and how many of its processes are alive and Python. */
struct family {
	uint32_t family;	/* key (pidtab.h) */
	uint32_t live;
};

/* -v lines: time since the start and CLOCK_MONOTONIC (tests measure discovery with it). */
#define tlog(p, fmt, ...) do { if (pt_verbose) { uint64_t now_ = mono_ns(); \
	fprintf(stderr, "[+%.3fs mono %.3f] " fmt, (now_ - (p)->start_ns) / 1e9, now_ / 1e9, ##__VA_ARGS__); } } while (0)

/* Hand pr's configuration, changed, to the BPF side: 0, or -errno (the process left meanwhile). */
int procs_reconfigure(struct procs *p, struct proc *pr);
/*
 * How pr hashes a str, once (pythreads__learn_hash; a fork inherits it with the layout): from
 * then on every lookup in its dicts goes by hash instead of reading every key.
 */
void procs_learn_hash(struct procs *p, struct proc *pr, const struct mem_reader *mr);
/*
 * Look for the thread pools', route frames' and middlewares' functions in pr's modules (procs.h):
 * at most once per pool_gap_ns, until every kind is found. sys.modules is read once for all of
 * them, through a page cache (its keys are about a thousand strs in a Django process: one read
 * each, once per module looked for, was most of the collector's CPU in its first minute), and
 * not at all while no module was imported since a pass that found none of them.
 */
void procs_find_frames(struct procs *p, struct proc *pr, uint64_t now);

#endif
