/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Uprobes confined to one process, without a perf event per probe.
 *
 * libbpf 1.1 (Debian 12) attaches a uprobe as a perf event opened for the target pid: a per-task
 * perf event. The kernel switches each such event out and in with the task at every context
 * switch, so a process that blocks on a socket twice per SQL statement paid about 5 us per
 * statement for the 13 events of the exec probes, more than the probes themselves
 * (docs/PERFORMANCE.md). A uprobe_multi link (BPF_TRACE_UPROBE_MULTI, Linux 6.6) filters by
 * process inside the uprobe and costs nothing at a context switch. libbpf 1.1 predates it, so
 * the link is made with the bpf() syscall; older kernels get the perf events.
 */
#ifndef PYTRACE_UPROBE_H
#define PYTRACE_UPROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct bpf_program;
struct bpf_link;

enum uprobe_kind {
	UPROBE_PERF,		/* a perf event per probe (libbpf) */
	UPROBE_MULTI,		/* a uprobe_multi link per probe */
};

/*
 * Which kind this kernel supports, probed once, unless uprobe__use_perf_events() was called
 * first (main.c does for PYTRACE_UPROBES=perf: to compare the two, and to test the fallback).
 */
enum uprobe_kind uprobe__kind(void);
/* Attach as perf events even where uprobe_multi links work (PYTRACE_UPROBES=perf, for tests). */
void uprobe__use_perf_events(void);
const char *uprobe__kind_name(enum uprobe_kind kind);

/* Make prog attachable as kind: call before the object is loaded. */
int uprobe__prepare(struct bpf_program *prog, enum uprobe_kind kind);

/* All zero: not attached. */
struct uprobe {
	struct bpf_link *link;	/* UPROBE_PERF */
	int fd;			/* UPROBE_MULTI: the link, when multi is set */
	bool multi;
};

/*
 * Attach prog at file offset off of path (entry, or return when retprobe), firing only in pid's
 * threads. Returns 0 or a negative errno.
 */
int uprobe__attach(struct uprobe *u, enum uprobe_kind kind, const struct bpf_program *prog, bool retprobe,
		   pid_t pid, const char *path, uint64_t off);
/*
 * UPROBE_MULTI only, for USDT probes and function sets: prog at cnt sites of path in pid (at their
 * return when retprobe), each with its semaphore's file offset (ref_ctr_offs, 0 for none; the
 * kernel counts it up while attached) and a cookie (bpf_get_attach_cookie). ref_ctr_offs and
 * cookies may be NULL. Returns 0 or a negative errno.
 */
int uprobe__attach_sites(struct uprobe *u, const struct bpf_program *prog, bool retprobe, pid_t pid,
			 const char *path, const uint64_t *offs, const uint64_t *ref_ctr_offs, const uint64_t *cookies,
			 unsigned cnt);
bool uprobe__attached(const struct uprobe *u);
/*
 * Detach u (zeroed on return). The kernel releases a uprobe link only after an RCU grace period
 * (~20 ms each here), so the release is left to a thread of its own: the probe may still fire
 * until uprobe__released(ticket) says it is gone. Returns that ticket; 0 if u was not attached.
 * Tickets are released in order.
 */
uint64_t uprobe__detach(struct uprobe *u);
bool uprobe__released(uint64_t ticket);
void uprobe__wait_released(uint64_t ticket);

#endif
