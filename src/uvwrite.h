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

struct bpf_object;
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
 * capability that wants the probe names its program (uvwrite__prog), and every program named is
 * attached, one link each, to each process found to import uvloop.
 *
 * The programs are loaded when the first such process is found, not at the capability's start:
 * each walks a stack, and verifying the two took about 0.19 s of every start, uvloop or not. A
 * program named lives in its capability's object, which loads without it
 * (bpf_program__set_autoload); uvwrite loads a second instance of that object with that program
 * alone, sharing every map of the first (session_maps__share_all).
 */
struct uvwrite_prog {
	const void *elf;		/* the object's ELF (its skeleton's X__elf_bytes) */
	size_t elf_size;
	const char *obj_name;		/* its skeleton's name ("http_bpf"): the maps' names follow it */
	const char *prog_name;		/* the program, left unloaded in obj */
	const char *btf_path;		/* as obj was opened with, or NULL */
	struct bpf_object *obj;		/* the capability's instance, loaded */
};

struct uvwrite *uvwrite__new(struct session *s);
void uvwrite__free(struct uvwrite *u);
/*
 * A program to attach (copied; the strings and the ELF must outlive u), at a capability's open:
 * its slot (>= 0) or -ENOSPC. A capability that loads its object again before the session polls
 * (httptrace's fallback to raw tracepoints) names the new instance for the same slot.
 */
int uvwrite__prog(struct uvwrite *u, const struct uvwrite_prog *p);
void uvwrite__set_obj(struct uvwrite *u, int slot, struct bpf_object *obj);
/* A Python process to look at (found, forked, or after an exec); nothing while no program is given. */
void uvwrite__add(struct uvwrite *u, pid_t pid);
/* pid exited or exec'd: its probes go. */
void uvwrite__forget(struct uvwrite *u, pid_t pid);
/* Look for uvloop in the processes whose time has come. */
void uvwrite__tick(struct uvwrite *u, uint64_t now_ns);
void uvwrite__stats(const struct uvwrite *u, struct uvwrite_stats *st);

#endif
