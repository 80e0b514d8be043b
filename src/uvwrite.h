/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * uvloop's transport.write(), probed in each traced process that imports uvloop, so that a
 * response the loop writes later (outside its task) keeps the task that made it (bpf/http.bpf.c,
 * uvloop_write). The function is a method of an extension type, not a symbol (Debian strips
 * uvloop's): its address is read from the type's dict in the process (pythreads.h), looked for
 * when the process is found and then after 0.25 s, 0.5 s, 1 s ... up to every minute until found.
 */
#ifndef PYTRACE_UVWRITE_H
#define PYTRACE_UVWRITE_H

#include <stdint.h>
#include <sys/types.h>

struct bpf_program;
struct session;
struct uvwrite;

struct uvwrite_stats {
	unsigned processes;	/* processes whose uvloop write is probed (by every program given) */
	unsigned failed;	/* found, but the probe could not be attached */
	unsigned dropped;	/* processes not looked at: the table was full */
};

/*
 * One per session (session__uvwrite): the session tells it of processes and ticks it; each
 * capability that wants the probe gives its program (uvwrite__prog), and every program given is
 * attached, one link each, to each process found to import uvloop.
 */
struct uvwrite *uvwrite__new(struct session *s);
void uvwrite__free(struct uvwrite *u);
/*
 * prog, prepared (uprobe__prepare) with the kind uprobe__kind() gives, at a capability's open:
 * its slot (>= 0) or -ENOSPC. A capability that loads its object again before the session polls
 * (httptrace's fallback to raw tracepoints) puts the new program in the same slot.
 */
int uvwrite__prog(struct uvwrite *u, const struct bpf_program *prog);
void uvwrite__set_prog(struct uvwrite *u, int slot, const struct bpf_program *prog);
/* A Python process to look at (found, forked, or after an exec); nothing while no program is given. */
void uvwrite__add(struct uvwrite *u, pid_t pid);
/* pid exited or exec'd: its probes go. */
void uvwrite__forget(struct uvwrite *u, pid_t pid);
/* Look for uvloop in the processes whose time has come. */
void uvwrite__tick(struct uvwrite *u, uint64_t now_ns);
void uvwrite__stats(const struct uvwrite *u, struct uvwrite_stats *st);

#endif
