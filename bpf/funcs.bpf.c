// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPython's USDT probes: function__entry/function__return timed per call for the functions
 * that match --functions, gc__start/gc__done and import__find__load__start/done.
 *
 * Matching: a verdict per (pid, filename pointer, funcname pointer) is cached in an LRU map, so
 * a function that does not match costs one lookup after its first call. On a miss the names are
 * read and checked against a prefilter compiled by user space (exact name, name prefix/suffix,
 * file suffix: a superset of the globs); user space makes the exact decision on the first event
 * and writes the verdict back.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "pytrace.h"
#include "funcs.h"
#include "pystack.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 npatterns = 0;
const volatile struct fn_filter filters[FN_MAX_PATTERNS] = {};

struct fn_open {
	__u64 ts;
	__u64 file, name;
	__u32 verdict;
	__u32 nframes;
	struct pt_frame frames[FN_CALLER_FRAMES];
};

/* A ring: open call i (0 outermost) is e[(base + i) % FN_STACK_MAX]. */
struct fn_tstack {
	__u32 depth;
	__u32 base;
	struct fn_open e[FN_STACK_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fn_key);
	__type(value, __u8);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct fn_tstack);
} fstacks SEC(".maps");

struct fn_scratch {
	char name[FN_NAME_MAX];
	char file[FN_FILE_MAX];
	struct fn_call ev;
	struct pt_stack st;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fn_scratch);
} fscratch SEC(".maps");

struct gc_open {
	__u64 ts;
	__s32 gen;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct gc_open);
} gcs SEC(".maps");

#define IMP_DEPTH 8
struct imp_stack {
	__u32 depth;
	__u32 pad;
	__u64 ts[IMP_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct imp_stack);
} imps SEC(".maps");

/* a[off .. off+n) == lit[0 .. n) for a buffer of size (mask + 1) */
static __always_inline bool lit_eq(const char *a, __u32 off, __u32 mask, const volatile char *lit, __u32 n)
{
	__u32 j;

	for (j = 0; j < FN_LIT_MAX; j++) {
		if (j >= n)
			break;
		if (a[(off + j) & mask] != lit[j])
			return false;
	}
	return true;
}

/* len: bytes before the NUL; trunc: the string did not fit, its end is unknown */
static __always_inline bool part_match(__u8 kind, const volatile char *lit, __u32 n, const char *buf, __u32 len,
				       __u32 mask, bool trunc)
{
	switch (kind) {
	case FN_M_ANY:
		return true;
	case FN_M_EXACT:
		return !trunc && len == n && lit_eq(buf, 0, mask, lit, n);
	case FN_M_PREFIX:
		return len >= n && lit_eq(buf, 0, mask, lit, n);
	case FN_M_SUFFIX:
		if (trunc)
			return true;
		return len >= n && lit_eq(buf, len - n, mask, lit, n);
	}
	return false;
}

static __always_inline __u8 prefilter(struct fn_scratch *sc, const void *file, const void *name)
{
	long nl, fl;
	__u32 i;

	nl = bpf_probe_read_user_str(sc->name, sizeof(sc->name), name);
	fl = bpf_probe_read_user_str(sc->file, sizeof(sc->file), file);
	if (nl <= 0)
		return FN_V_NO;
	if (fl <= 0) {
		fl = 1;
		sc->file[0] = 0;
	}
	for (i = 0; i < FN_MAX_PATTERNS; i++) {
		const volatile struct fn_filter *f = &filters[i];

		if (i >= npatterns)
			break;
		if (!part_match(f->name_kind, f->name, f->name_len, sc->name, nl - 1, FN_NAME_MAX - 1,
				nl == FN_NAME_MAX))
			continue;
		if (!part_match(f->file_kind, f->file, f->file_len, sc->file, fl - 1, FN_FILE_MAX - 1,
				fl == FN_FILE_MAX))
			continue;
		return FN_V_CAND;
	}
	return FN_V_NO;
}

/* The interpreter's innermost frames (code, instruction), to name the caller in user space. */
static __always_inline __u32 read_frames(struct fn_scratch *sc, __u32 pid, struct pt_frame *out)
{
	struct task_struct *task = bpf_get_current_task_btf();
	const struct pt_proc *proc = bpf_map_lookup_elem(&procs, &pid);
	struct pt_walk w = { .s = &sc->st };
	__u64 fsbase, tstate;
	__u32 i, n;

	if (!proc)
		return 0;
	w.off = &proc->off;
	sc->st.nframes = 0;
	sc->st.flags = 0;
	fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (!fsbase)
		return 0;
	tstate = pt_read_ptr(fsbase + proc->tstate_off);
	if (!tstate)
		return 0;
	if (proc->off.ts_cframe != PT_NONE) {
		__u64 cframe = pt_read_ptr(tstate + proc->off.ts_cframe);

		if (!cframe)
			return 0;
		w.frame = pt_read_ptr(cframe + proc->off.ts_frame);
	} else {
		w.frame = pt_read_ptr(tstate + proc->off.ts_frame);
	}
	/* a few more steps than frames: C-stack shim frames are skipped on the way */
	bpf_loop(FN_CALLER_FRAMES + 3, pt_walk_one, &w, 0);
	n = sc->st.nframes;
	for (i = 0; i < FN_CALLER_FRAMES; i++) {
		if (i >= n)
			break;
		out[i] = sc->st.frames[i];
	}
	return n < FN_CALLER_FRAMES ? n : FN_CALLER_FRAMES;
}

SEC("usdt")
int BPF_USDT(func_entry, void *file, void *name, int lineno)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id, zero = 0, d;
	struct fn_key key = { .pid = pid, .file = (__u64)file, .name = (__u64)name };
	struct fn_scratch *sc;
	struct fn_tstack *st;
	struct fn_open *o;
	__u8 *vp, v;

	vp = bpf_map_lookup_elem(&verdicts, &key);
	if (vp && *vp == FN_V_NO)
		return 0;	/* the common case for a narrow pattern: one lookup */
	if (!pt_is_tracked(pid))
		return 0;
	sc = bpf_map_lookup_elem(&fscratch, &zero);
	if (!sc)
		return 0;
	if (!vp) {
		v = prefilter(sc, file, name);
		bpf_map_update_elem(&verdicts, &key, &v, BPF_NOEXIST);
		if (v == FN_V_NO)
			return 0;
	} else {
		v = *vp;
	}

	st = bpf_map_lookup_elem(&fstacks, &tid);
	if (!st) {
		static const struct fn_tstack empty;

		bpf_map_update_elem(&fstacks, &tid, &empty, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&fstacks, &tid);
		if (!st)
			return 0;
	}
	d = st->depth;
	if (d >= FN_STACK_MAX) {
		/* Full: forget the outermost open call (its return will find no entry). */
		st->base++;
		d = FN_STACK_MAX - 1;
		pt_count(PT_CNT_FUNC_DEEP);
	}
	o = &st->e[(st->base + d) & (FN_STACK_MAX - 1)];
	o->file = (__u64)file;
	o->name = (__u64)name;
	o->verdict = v;
	o->nframes = read_frames(sc, pid, o->frames);
	o->ts = bpf_ktime_get_ns();
	st->depth = d + 1;
	return 0;
}

SEC("usdt")
int BPF_USDT(func_return, void *file, void *name, int lineno)
{
	__u64 now = bpf_ktime_get_ns(), id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0, d, k, idx, size;
	struct fn_scratch *sc;
	struct fn_tstack *st;
	struct fn_open *o;
	struct fn_call *ev;
	long nl, fl;

	st = bpf_map_lookup_elem(&fstacks, &tid);
	if (!st || !st->depth)
		return 0;	/* no candidate call open on this thread */
	d = st->depth;
	if (d > FN_STACK_MAX)
		d = FN_STACK_MAX;
	/* The innermost open call of this function: calls above it never returned (unwound). */
	for (k = 0; k < FN_STACK_MAX; k++) {
		if (k >= d)
			return 0;	/* not a candidate: nothing to do */
		idx = (st->base + d - 1 - k) & (FN_STACK_MAX - 1);
		if (st->e[idx].file == (__u64)file && st->e[idx].name == (__u64)name)
			break;
	}
	if (k >= FN_STACK_MAX)
		return 0;
	idx = (st->base + d - 1 - k) & (FN_STACK_MAX - 1);
	st->depth = d - 1 - k;
	for (; k > 0; k--)
		pt_count(PT_CNT_FUNC_UNPAIRED);
	o = &st->e[idx];

	sc = bpf_map_lookup_elem(&fscratch, &zero);
	if (!sc)
		return 0;
	ev = &sc->ev;
	ev->hdr.type = PT_EV_FUNC_CALL;
	ev->hdr.pid = id >> 32;
	ev->tid = tid;
	ev->flags = 0;
	ev->file_ptr = o->file;
	ev->name_ptr = o->name;
	ev->ts = now;
	ev->dur_ns = now - o->ts;
	ev->lineno = lineno;
	ev->nframes = o->nframes;
	for (k = 0; k < FN_CALLER_FRAMES; k++)
		ev->frames[k] = o->frames[k];
	size = offsetof(struct fn_call, name);
	if (o->verdict != FN_V_YES) {
		/* user space has not seen this function yet: send its names */
		nl = bpf_probe_read_user_str(ev->name, sizeof(ev->name), name);
		fl = bpf_probe_read_user_str(ev->file, sizeof(ev->file), file);
		if (nl <= 0)
			ev->name[0] = 0;
		if (fl <= 0)
			ev->file[0] = 0;
		size = sizeof(*ev);
	}
	if (bpf_ringbuf_output(&events, ev, size, pt_rb_flags()))
		pt_count(PT_CNT_FUNC_LOST);
	return 0;
}

SEC("usdt")
int BPF_USDT(gc_start, int generation)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct gc_open g = { .ts = bpf_ktime_get_ns(), .gen = generation };

	if (!pt_is_tracked(id >> 32))
		return 0;
	bpf_map_update_elem(&gcs, &tid, &g, BPF_ANY);
	return 0;
}

SEC("usdt")
int BPF_USDT(gc_done, long collected)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
	__u32 tid = (__u32)id;
	struct gc_open *g = bpf_map_lookup_elem(&gcs, &tid);
	struct fn_gc *e;

	if (!g)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->hdr.type = PT_EV_FUNC_GC;
		e->hdr.pid = id >> 32;
		e->tid = tid;
		e->generation = g->gen;
		e->dur_ns = now - g->ts;
		e->collected = collected;
		bpf_ringbuf_submit(e, pt_rb_flags());
	} else {
		pt_count(PT_CNT_FUNC_LOST);
	}
	bpf_map_delete_elem(&gcs, &tid);
	return 0;
}

SEC("usdt")
int BPF_USDT(import_start, void *module)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, d;
	struct imp_stack *s;

	if (!pt_is_tracked(id >> 32))
		return 0;
	s = bpf_map_lookup_elem(&imps, &tid);
	if (!s) {
		static const struct imp_stack empty;

		bpf_map_update_elem(&imps, &tid, &empty, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&imps, &tid);
		if (!s)
			return 0;
	}
	d = s->depth;
	if (d < IMP_DEPTH) {
		asm volatile("" : "+r"(d));
		s->ts[d & (IMP_DEPTH - 1)] = bpf_ktime_get_ns();
	}
	s->depth++;
	return 0;
}

SEC("usdt")
int BPF_USDT(import_done, void *module, int found)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
	__u32 tid = (__u32)id, d;
	struct imp_stack *s = bpf_map_lookup_elem(&imps, &tid);
	struct fn_import *e;

	if (!s || !s->depth)
		return 0;
	d = --s->depth;
	if (d >= IMP_DEPTH)
		return 0;	/* nested too deep to have been timed */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		pt_count(PT_CNT_FUNC_LOST);
		return 0;
	}
	e->hdr.type = PT_EV_FUNC_IMPORT;
	e->hdr.pid = id >> 32;
	e->tid = tid;
	e->found = found;
	asm volatile("" : "+r"(d));	/* keep the mask: the verifier needs it */
	e->dur_ns = now - s->ts[d & (IMP_DEPTH - 1)];
	if (bpf_probe_read_user_str(e->module, sizeof(e->module), module) <= 0)
		e->module[0] = 0;
	bpf_ringbuf_submit(e, pt_rb_flags());
	return 0;
}
