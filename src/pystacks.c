// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonw.h"
#include "procmem.h"
#include "procs.h"
#include "pystacks.h"
#include "pythreads.h"
#include "symbolize.h"
#include "util.h"

static const char UNKNOWN_FRAME[] = "[unknown]";

#define TID_COMMS 1024			/* thread names remembered from samples */
#define FRAME_LEN 384
#define NAMED_PROCS 64			/* processes whose Python thread names are kept (by pid) */
#define NAMED_THREADS 256		/* threads per process */
#define NAMES_STALE_NS (1000 * 1000000ULL)	/* names read again this often while sampled */
#define NAMES_UNKNOWN_NS (200 * 1000000ULL)	/* ... or this soon for a thread not named yet */
#define NAMED_OTHERS 32			/* threads without a Python name not read again for (per process) */
#define SEEN_THREADS 1024		/* threads listed in the JSON report (by tid) */

/* A process's threading names, as last read. */
struct named_proc {
	uint32_t pid;
	uint64_t active;		/* threading._active, 0: not found yet */
	uint64_t read_ns;
	bool gone;			/* exited or exec'd: its names kept for the report, not read */
	uint64_t find_ns;		/* when threading._active was last looked for in vain */
	/* threads reads did not name (C threads, say): after two, read with the rest only */
	struct { uint32_t tid, misses; } others[NAMED_OTHERS];
	int nothers;
	int n, nall;
	struct py_thread_name t[NAMED_THREADS];
	struct py_thread_name all[NAMED_THREADS];	/* every thread read, its latest name (the report) */
};

struct pystacks {
	struct procs *procs;
	struct symbolizer *sym;
	bool threads;
	struct pystacks_stats st;
	struct { uint32_t tid; char comm[16]; } comms[TID_COMMS];
	struct named_proc *named[NAMED_PROCS];
	struct { uint32_t pid, tid; bool python; char name[PYTHREADS_NAME_MAX]; } seen[SEEN_THREADS];
	char names[PYSTACKS_MAX_FRAMES][FRAME_LEN];	/* frame names being built */
};

struct pystacks *pystacks__new(struct procs *procs, bool threads)
{
	struct pystacks *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return NULL;
	ps->procs = procs;
	ps->threads = threads;
	ps->sym = symbolizer__new(0);
	if (!ps->sym) {
		free(ps);
		return NULL;
	}
	return ps;
}

void pystacks__free(struct pystacks *ps)
{
	if (!ps)
		return;
	symbolizer__free(ps->sym);
	for (size_t i = 0; i < NAMED_PROCS; i++)
		free(ps->named[i]);
	free(ps);
}

void pystacks__set_comm(struct pystacks *ps, uint32_t tid, const char *comm)
{
	ps->comms[tid % TID_COMMS].tid = tid;
	memcpy(ps->comms[tid % TID_COMMS].comm, comm, sizeof(ps->comms[0].comm));
}

/* The kernel's name of the thread: from its samples, else /proc/PID/task/TID/comm. */
static const char *thread_comm(struct pystacks *ps, uint32_t pid, uint32_t tid)
{
	char path[64], comm[16];
	FILE *f;

	if (ps->comms[tid % TID_COMMS].tid == tid)
		return ps->comms[tid % TID_COMMS].comm;
	snprintf(path, sizeof(path), "/proc/%u/task/%u/comm", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return "?";
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = 0;
	fclose(f);
	comm[strcspn(comm, "\n")] = 0;
	if (!comm[0])
		return "?";
	pystacks__set_comm(ps, tid, comm);
	return ps->comms[tid % TID_COMMS].comm;
}

/* Read pr's threading registry again (found first if need be); the old names stay on an error. */
static void read_names(struct pystacks *ps, struct named_proc *np, const struct proc *pr, uint64_t now)
{
	struct mem_reader mr;
	int n = -ENOENT;

	np->read_ns = now;
	ps->st.name_reads++;
	procmem__reader(&mr, pr->pid);
	if (np->active)
		n = pythreads__read_active(&pr->py.layout, &mr, np->active, np->t, NAMED_THREADS);
	/*
	 * Not found yet (threading not imported yet), or gone: looked for through sys.modules again,
	 * at most every NAMES_UNKNOWN_NS (threads without a Python name stop asking after two reads).
	 */
	if (n < 0 && (!np->find_ns || now - np->find_ns >= NAMES_UNKNOWN_NS)) {
		np->active = 0;
		if (pythreads__find_active(&pr->py.layout, &mr, pr->py.runtime, &np->active) == 0) {
			np->find_ns = 0;
			n = pythreads__read_active(&pr->py.layout, &mr, np->active, np->t, NAMED_THREADS);
		} else {
			np->active = 0;
			np->find_ns = now;
		}
	}
	if (n < 0) {
		ps->st.name_errors++;
		return;
	}
	np->n = n;
	for (int i = 0; i < n; i++) {
		int j;

		for (j = 0; j < np->nall && np->all[j].tid != np->t[i].tid; j++)
			;
		if (j == np->nall && np->nall < NAMED_THREADS)
			np->nall++;
		if (j < np->nall)
			np->all[j] = np->t[i];
	}
}

/*
 * Whether tid was missing from two reads: not Python's. Once only, it may be a thread caught
 * between its start and its entry in threading's registry.
 */
static bool is_other(const struct named_proc *np, uint32_t tid)
{
	for (int i = 0; i < np->nothers; i++)
		if (np->others[i].tid == tid)
			return np->others[i].misses >= 2;
	return false;
}

static void missed(struct named_proc *np, uint32_t tid)
{
	int i;

	for (i = 0; i < np->nothers && np->others[i].tid != tid; i++)
		;
	if (i == np->nothers) {
		if (np->nothers == NAMED_OTHERS)
			return;
		np->others[np->nothers++].tid = tid;
		np->others[i].misses = 0;
	}
	np->others[i].misses++;
}

/* Where tid is in np->all (every thread a read named), or -1. */
static int all_index(const struct named_proc *np, uint32_t tid)
{
	for (int i = 0; i < np->nall; i++)
		if (np->all[i].tid == tid)
			return i;
	return -1;
}

/*
 * pid's record: its slot is found by probing from pid % NAMED_PROCS, so that processes whose pids
 * share a slot do not wipe each other's names. create: a free slot, else one of a process gone,
 * else the one read longest ago, is taken afresh.
 */
static struct named_proc *named_slot(struct pystacks *ps, uint32_t pid, bool create)
{
	struct named_proc *np, *victim = NULL;
	size_t i, k, vi = 0;

	for (k = 0; k < NAMED_PROCS; k++) {
		i = (pid + k) % NAMED_PROCS;
		np = ps->named[i];
		if (np && np->pid == pid)
			return np;
	}
	if (!create)
		return NULL;
	for (k = 0; k < NAMED_PROCS; k++) {
		i = (pid + k) % NAMED_PROCS;
		np = ps->named[i];
		if (!np) {
			victim = NULL;
			vi = i;
			break;
		}
		if (!victim || (np->gone && !victim->gone) ||
		    (np->gone == victim->gone && np->read_ns < victim->read_ns)) {
			victim = np;
			vi = i;
		}
	}
	if (!victim) {
		victim = ps->named[vi] = calloc(1, sizeof(*victim));
		if (!victim)
			return NULL;
	}
	memset(victim, 0, offsetof(struct named_proc, t));
	victim->pid = pid;
	return victim;
}

/*
 * tid's name: threading's (Thread.name), read from the process's memory when a thread not named
 * yet shows up (at most every NAMES_UNKNOWN_NS) and every NAMES_STALE_NS; MainThread for the
 * main thread of a Python process without one; else the kernel's comm.
 */
static const char *thread_name(struct pystacks *ps, const struct proc *pr, uint32_t pid, uint32_t tid,
			       bool *python)
{
	struct named_proc *np;
	const char *name = NULL;
	uint64_t now;
	int i;

	*python = false;
	if (!pr || pr->state != PROC_PYTHON)
		return thread_comm(ps, pid, tid);
	np = named_slot(ps, pid, true);
	if (!np)
		return thread_comm(ps, pid, tid);
	if (np->gone && pr->live) {	/* exec'd into another program: afresh */
		memset(np, 0, offsetof(struct named_proc, t));
		np->pid = pid;
	}
	for (i = 0; i < np->n && np->t[i].tid != tid; i++)
		;
	now = mono_ns();
	/* a sample queued before the process exited: the names it had, not a read of a dead process */
	if (!np->gone &&
	    (!np->read_ns || now - np->read_ns >= (i == np->n && !is_other(np, tid) ? NAMES_UNKNOWN_NS : NAMES_STALE_NS))) {
		read_names(ps, np, pr, now);
		for (i = 0; i < np->n && np->t[i].tid != tid; i++)
			;
		if (i == np->n)
			missed(np, tid);
	}
	if (i < np->n) {
		name = np->t[i].name;
		*python = true;
	} else if ((i = all_index(np, tid)) >= 0) {
		/* left the registry since (a joined thread, a sample queued before it ended): its last name */
		name = np->all[i].name;
		*python = true;
	} else if (tid == pid) {
		name = "MainThread";	/* threading not imported (yet): what it would call it */
	}
	return name ? name : thread_comm(ps, pid, tid);
}

/* Remember tid's latest name for the JSON report. */
static void seen_thread(struct pystacks *ps, uint32_t pid, uint32_t tid, const char *name, bool python)
{
	typeof(ps->seen[0]) *e = &ps->seen[tid % SEEN_THREADS];

	e->pid = pid;
	e->tid = tid;
	e->python = python;
	snprintf(e->name, sizeof(e->name), "%s", name);
}

/* Append s to buf[*n], cut to size - 1 bytes in all (NUL added by the caller). */
static void put(char *buf, size_t size, size_t *n, const char *s, size_t len)
{
	if (*n + len > size - 1)
		len = size - 1 - *n;
	memcpy(buf + *n, s, len);
	*n += len;
}

/*
 * "name (file:line)", as snprintf would write it; by hand, because every frame of every sample
 * comes here: snprintf took a quarter of the collector's time sampling at 999 Hz.
 */
static void frame_name(char *buf, size_t size, const struct py_frame_sym *fs)
{
	const char *name = fs->name && fs->name[0] ? fs->name : "?";
	const char *file = fs->file && fs->file[0] ? fs->file : "?";
	char num[16], *p = num + sizeof(num);
	unsigned v = fs->line < 0 ? 0u - (unsigned)fs->line : (unsigned)fs->line;
	size_t n = 0;

	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	if (fs->line < 0)
		*--p = '-';
	put(buf, size, &n, name, strlen(name));
	put(buf, size, &n, " (", 2);
	put(buf, size, &n, file, strlen(file));
	put(buf, size, &n, ":", 1);
	put(buf, size, &n, p, (size_t)(num + sizeof(num) - p));
	put(buf, size, &n, ")", 1);
	buf[n] = 0;
}

/* What pystacks__name noted of a code object, in its symbolizer entry (py_frame_sym.mark). */
enum {
	MARK_CHECKED = 1,	/* the frame tables below were looked at */
	MARK_POOL = 2,		/* a thread pool's frame (procs__pool_frame) */
	MARK_ROUTE = 4,		/* a route frame (routes__frame) */
};

/* Is fs a thread pool's frame, a route frame? Looked up in their tables once per code object. */
static uint8_t frame_marks(const struct py_frame_sym *fs)
{
	if (!(*fs->mark & MARK_CHECKED))
		*fs->mark = MARK_CHECKED | (procs__pool_frame(fs->name, fs->file) ? MARK_POOL : 0) |
			    (routes__frame(fs->name, fs->file) ? MARK_ROUTE : 0);
	return *fs->mark;
}

size_t pystacks__name(struct pystacks *ps, uint32_t pid, uint32_t tid, const struct pt_stack *st,
		      const char **out, size_t max)
{
	int i, nframes = st->nframes < PT_MAX_FRAMES ? (int)st->nframes : PT_MAX_FRAMES;
	struct proc *pr = procs__get(ps->procs, pid, false);
	struct mem_reader mr;
	size_t n = 0;

	if (!pr || max < 3)
		return 0;
	max = max < PYSTACKS_MAX_FRAMES ? max : PYSTACKS_MAX_FRAMES;
	if (ps->threads) {
		bool python;
		const char *name = thread_name(ps, pr, pid, tid, &python);

		snprintf(ps->names[n], FRAME_LEN, "[thread %s tid=%u%s]", name, tid, tid == pid ? " main" : "");
		/* a name is the user's text: no control characters in a frame */
		for (char *c = ps->names[n]; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		seen_thread(ps, pid, tid, name, python);
		out[n] = ps->names[n];
		n++;
	}
	if (st->flags & PT_SF_NO_PROC) {
		ps->st.no_python++;
		procs__retry(ps->procs, pr);
		snprintf(ps->names[n], FRAME_LEN, "[%s %.16s]",
			 pr->state == PROC_NOT_PYTHON ? "not Python:" : "Python starting:", thread_comm(ps, pid, tid));
		out[n] = ps->names[n];
		return n + 1;
	}
	if (st->flags & (PT_SF_TRUNCATED | PT_SF_READ_ERR)) {
		ps->st.truncated++;
		out[n++] = "[truncated]";
	}
	if ((unsigned)nframes > ps->st.max_depth)
		ps->st.max_depth = nframes;
	procmem__reader(&mr, pid);
	{
		uint64_t codes[PT_MAX_FRAMES];

		for (i = 0; i < nframes; i++)
			codes[i] = st->frames[i].code;
		symbolizer__recheck_many(ps->sym, pid, &pr->py.layout, &mr, pr->py.pycode_type, codes,
					 (unsigned)nframes);
	}
	for (i = nframes - 1; i >= 0 && n < max; i--) {
		struct py_frame_sym fs;
		int ret;

		ret = symbolizer__resolve_in(ps->sym, pid, pr->family, &pr->py.layout, &mr, pr->py.pycode_type,
					     st->frames[i].code, st->frames[i].instr, &fs);
		/*
		 * The walker skips shim frames by their owner, so a frame whose code is not a code
		 * object (-ENOENT) means freed memory: a process exiting, say. Say so, don't skip.
		 */
		if (ret) {
			ps->st.unresolved++;
			/* a run of them is one frame: a tower of [unknown] tells no more than one */
			if (!n || out[n - 1] != UNKNOWN_FRAME)
				out[n++] = UNKNOWN_FRAME;
			continue;
		}
		if (!pr->py.proxy_code && (frame_marks(&fs) & MARK_POOL))
			procs__thread_pool_frame(ps->procs, pr, st->frames[i].code,
						 procs__pool_frame(fs.name, fs.file));
		if (!pr->py.route_code && (frame_marks(&fs) & MARK_ROUTE))
			procs__route_frame(ps->procs, pr, st->frames[i].code, routes__frame(fs.name, fs.file));
		frame_name(ps->names[n], FRAME_LEN, &fs);
		out[n] = ps->names[n];
		n++;
	}
	if (nframes == 0 && n < max) {
		if (st->flags & PT_SF_NO_TSTATE)
			ps->st.native++;
		out[n++] = "[native]";
	}
	return n;
}

void pystacks__forget(struct pystacks *ps, uint32_t pid)
{
	struct named_proc *np = named_slot(ps, pid, false);
	const struct proc *pr = procs__get(ps->procs, pid, false);

	/* its code objects' names stay for its family's next processes while the family lives */
	symbolizer__forget(ps->sym, pid, pr && procs__family_alive(ps->procs, pr->family));
	procmem__forget(pid);
	if (np)	/* exec'd or gone: its registry with it (names kept for the report) */
		np->gone = true;
}

void pystacks__write_json(const struct pystacks *ps, struct jsonw *w)
{
	/* the code objects named: read from their process, or taken from a fork's family after one read */
	jsonw__name(w, "code_objects");
	jsonw__start_object(w);
	jsonw__uint_field(w, "cached", symbolizer__size(ps->sym));
	jsonw__uint_field(w, "read", symbolizer__misses(ps->sym));
	jsonw__uint_field(w, "from_family", symbolizer__kin(ps->sym));
	jsonw__uint_field(w, "found_replaced", symbolizer__stale(ps->sym));
	jsonw__end_object(w);
	if (!ps->threads)
		return;
	/* the threads seen in stacks, with the name of their latest ones */
	jsonw__name(w, "threads");
	jsonw__start_object(w);
	jsonw__uint_field(w, "name_reads", ps->st.name_reads);
	jsonw__uint_field(w, "name_read_errors", ps->st.name_errors);
	jsonw__name(w, "named");
	jsonw__start_array(w);
	for (size_t i = 0; i < SEEN_THREADS; i++) {
		if (!ps->seen[i].tid)
			continue;
		jsonw__start_object(w);
		jsonw__uint_field(w, "pid", ps->seen[i].pid);
		jsonw__uint_field(w, "tid", ps->seen[i].tid);
		jsonw__string_field(w, "name", ps->seen[i].name);
		jsonw__string_field(w, "source", ps->seen[i].python ? "threading" : "os");
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	/* every thread threading's registries held when read, sampled or not (sleeping ones too) */
	jsonw__name(w, "python_threads");
	jsonw__start_array(w);
	for (size_t i = 0; i < NAMED_PROCS; i++) {
		const struct named_proc *np = ps->named[i];

		for (int j = 0; np && j < np->nall; j++) {
			jsonw__start_object(w);
			jsonw__uint_field(w, "pid", np->pid);
			jsonw__uint_field(w, "tid", np->all[j].tid);
			jsonw__string_field(w, "name", np->all[j].name);
			jsonw__end_object(w);
		}
	}
	jsonw__end_array(w);
	jsonw__end_object(w);
}

void pystacks__stats(const struct pystacks *ps, struct pystacks_stats *st)
{
	*st = ps->st;
}
