/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Walking a CPython thread's frame chain from BPF: shared by every program that records stacks. */
#ifndef PYTRACE_PYSTACK_BPF_H
#define PYTRACE_PYSTACK_BPF_H

#include "pytrace.h"

#include "maps.bpf.h"

struct pt_walk {
	const struct pt_offsets *off;
	struct pt_stack *s;
	__u64 frame;
	__u64 hash;		/* of the frames walked: identifies the stack */
	__u64 wlo, whi;		/* user addresses copied into pt_windows (empty: wlo == whi) */
	__u64 gen, root;	/* outermost generator-owned frame, outermost frame, so far */
	__u64 gen_code;		/* gen's code object */
	__u64 proxy_code;	/* struct pt_proc's (the outermost frame running it: s->proxy_frame) */
	__u64 route_code;	/* struct pt_proc's (the innermost frame running it: s->route_frame) */
	__u64 scope_code;	/* struct pt_proc's (the outermost frame running it: s->scope_frame) */
	__u64 send_code[2];	/* struct pt_proc's (the outermost frame running one: s->send_frame) */
	__u64 stop_code;	/* a frame running it ends the walk (PT_WALK_CUT), ~0: none */
	/* struct pt_proc's text_code while text_want, else NULL (the innermost: s->text_frame); a
	 * pointer, not a copy: the walk's stack is shared by its callers' (512 bytes in all) */
	const __u64 *text_code;
};

/*
 * 3.11+ keep a thread's frames contiguous in its data stack: one copy of the part in use
 * replaces a user read per frame (the reads, not the bytes, are what a walk costs). Frames
 * outside it (generators', older chunks') are read one by one. PT_FRAME_READ_MAX of slack lets
 * a masked field access at the window's end stay inside the buffer.
 */
struct pt_window_buf {
	__u8 data[PT_WINDOW + PT_FRAME_READ_MAX];
	__u8 frame[PT_FRAME_READ_MAX];	/* the head of a frame outside the window */
	__u64 rt_task, rt_code;		/* pt_walk_cut's: the running task's key and its code */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pt_window_buf);
} pt_windows SEC(".maps");

/*
 * A PHASES=1 build of the wire programs (bpf/pgwire.bpf.h) splits a walk's time here: slot 22
 * takes the reads before the frames (the thread state, its frame, the data stack's copy), slot
 * 23 the bytes of that copy; the frames' part stays in the walk's own slot.
 */
#ifndef PT_PHASE
#define PT_PHASE(k) do { } while (0)
#define PT_PHASE_ADD(k, v) do { } while (0)
#endif
#define PT_PH_WALK_READS	22
#define PT_PH_WALK_BYTES	23

#define PT_TS_SPAN	512	/* thread-state bytes read at once (power of two; spans seen: 200-264) */

#define PT_HASH_MUL 0x100000001b3ULL	/* FNV-1a 64-bit prime */

static __always_inline __u64 pt_read_ptr(__u64 addr)
{
	__u64 v = 0;

	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/*
 * A field of the frame copied into buf. The mask keeps the verifier sure the access stays
 * inside buf and is aligned to the field's size (every offset is, in every version).
 */
#define PT_FIELD(buf, off, type) \
	(*(type *)((buf) + ((off) & (PT_FRAME_READ_MAX - sizeof(type)) & ~(sizeof(type) - 1))))

/*
 * One frame of the walk: true to go on. The frame's head is taken from the window when it lies
 * in it, else read into win->frame (not into a buffer on the BPF stack: zeroing one for the
 * verifier cost more than the rest of a frame's work in the window).
 */
static __always_inline bool pt_walk_frame(struct pt_walk *w, struct pt_window_buf *win)
{
	const struct pt_offsets *off = w->off;
	struct pt_stack *s = w->s;
	__u64 frame = w->frame, code, instr;
	__u32 n = s->nframes, span = off->fr_span;
	__u8 *p;

	if (!frame)
		return false;
	if (span > PT_FRAME_READ_MAX - 8)
		span = PT_FRAME_READ_MAX - 8;
	if (frame >= w->wlo && frame + span <= w->whi) {
		p = win->data + ((frame - w->wlo) & (PT_WINDOW - 1));
	} else {
		p = win->frame;
		if (bpf_probe_read_user(p, span, (void *)frame))
			goto fault;	/* one read of the frame's head instead of one per field */
	}
	w->frame = PT_FIELD(p, off->fr_back, __u64);

	if (off->fr_owner != PT_NONE && PT_FIELD(p, off->fr_owner, __u8) == off->owner_cstack)
		return true;	/* C-stack shim frame */
	w->root = frame;	/* who runs the stack (pt_stack.task_frame): the outermost frame */

	if (n >= PT_MAX_FRAMES) {
		s->flags |= PT_SF_TRUNCATED;
		return false;
	}
	code = PT_FIELD(p, off->fr_code, __u64) & off->code_mask;
	if (off->instr_is_ptr)
		instr = PT_FIELD(p, off->fr_instr, __u64);
	else
		instr = (__u64)(__s64)PT_FIELD(p, off->fr_instr, __s32);
	/* and its outermost generator-owned frame, from the frame's head already read */
	if (off->fr_gen != PT_NONE &&
	    (off->gen_is_ptr ? PT_FIELD(p, off->fr_gen, __u64) != 0 :
	     PT_FIELD(p, off->fr_gen, __u8) == off->owner_gen)) {
		w->gen = frame;
		w->gen_code = code;
	}
	/* the outermost frame running proxy_code (struct pt_proc); with none (0), a frame without
	 * code matches, and pt_task_of ignores it */
	if (code == w->proxy_code)
		s->proxy_frame = frame;
	/* the innermost frame running route_code: its route object is read after the walk */
	if (code == w->route_code && !s->route_frame)
		s->route_frame = frame;
	if (code == w->scope_code)
		s->scope_frame = frame;
	/* the innermost frame running one of text_code, tagged with which (frames are 8-aligned) */
	if (w->text_code && code && !s->text_frame) {
		if (code == w->text_code[0])
			s->text_frame = frame;
		else if (code == w->text_code[1])
			s->text_frame = frame | 1;
		else if (code == w->text_code[2])
			s->text_frame = frame | 2;
	}
	if (code == w->send_code[0] || code == w->send_code[1])
		s->send_frame = frame;
	if (code) {
		s->frames[n].code = code;
		s->frames[n].instr = instr;
		s->nframes = n + 1;
		w->hash = (w->hash ^ code) * PT_HASH_MUL;
		w->hash = (w->hash ^ instr) * PT_HASH_MUL;
	}
	if (code == w->stop_code) {
		s->flags |= PT_SF_CUT;
		w->frame = 0;
		return false;
	}
	return true;
fault:
	s->flags |= PT_SF_READ_ERR;
	return false;
}

/*
 * bpf_loop's callback: one frame a call. (Two a call saved about 10% of a 30-frame walk, but
 * made the verifier's work on every program that walks five times larger: the libpq programs,
 * loaded when a process's first encrypted connection is seen, then took 0.4 s longer.)
 */
static long pt_walk_one(__u32 i, void *data)
{
	struct pt_walk *w = data;
	__u32 zero = 0;
	struct pt_window_buf *win = bpf_map_lookup_elem(&pt_windows, &zero);

	return !win || !pt_walk_frame(w, win);
}

/*
 * Copy the data stack's part in use into pt_windows: chunk is the thread's datastack_chunk, top
 * its datastack_top, limit its datastack_limit.
 */
static __always_inline void pt_copy_window(struct pt_walk *w, struct pt_window_buf *win, __u64 chunk, __u64 top,
					   __u64 limit)
{
	__u64 lo, hi, size;

	if (!chunk)
		return;
	lo = chunk + 24;			/* offsetof(_PyStackChunk, data) */
	hi = top + PT_FRAME_READ_MAX;		/* the top frame's head may be that short */
	if (hi > limit)
		hi = limit;
	if (hi <= lo)
		return;
	if (hi - lo > PT_WINDOW)
		lo = hi - PT_WINDOW;		/* the innermost frames; the rest one by one */
	size = hi - lo;
	if (size > PT_WINDOW || bpf_probe_read_user(win->data, size, (void *)lo))
		return;
	w->wlo = lo;
	w->whi = hi;
}

/*
 * The ASGI scope whose cell the frame holds at offset cell (struct pt_proc's scope_code), as a
 * task key; 0: unreadable.
 */
static __always_inline __u64 pt_scope_key(const struct pt_proc *proc, __u64 frame, __u32 cell)
{
	__u64 c = pt_read_ptr(frame + cell) & proc->off.code_mask;	/* 3.14 tags it */
	__u64 scope = c ? pt_read_ptr(c + proc->cell_ref) : 0;

	return scope ? scope | PT_TASK_SCOPE : 0;
}

/*
 * Who runs the stack: gen (its outermost coroutine frame, gen_code its code), or else the task a
 * thread pool's thread works for (struct pt_proc's proxy_code), from the frame that names it:
 * three to five reads, only on such threads; in either, the request's ASGI scope where a
 * BaseHTTPMiddleware's child task runs (struct pt_proc's scope_code; scope: the outermost frame
 * of its __call__, 0: none). 0: unknown. A global function: verified once on its own, and
 * called on every path, so that its branches do not multiply the states of its callers.
 */
__noinline __u64 pt_task_of(const struct pt_proc *proc, __u64 gen, __u64 gen_code, __u64 frame, __u64 scope)
{
	__u64 task, coro, code = 0;

	if (!proc)
		return gen;
	if (scope && proc->scope_code)
		return pt_scope_key(proc, scope, proc->scope_cell);
	if (gen && gen_code == proc->scope_child_code && proc->scope_child_code)
		return pt_scope_key(proc, gen, proc->scope_child_cell);
	if (gen)
		return gen;
	if (!frame || !proc->proxy_code || !proc->task_coro || !proc->coro_frame)
		return 0;
	task = pt_read_ptr(frame + proc->proxy_local) & proc->off.code_mask;	/* 3.14 tags it */
	if (task && proc->proxy_via_future) {
		/* the future the task awaits: its first callback wakes that task (0: not awaited yet) */
		task = pt_read_ptr(task + proc->fut_callback0);
		task = task ? pt_read_ptr(task + proc->wakeup_task) : 0;
	}
	coro = task ? pt_read_ptr(task + proc->task_coro) : 0;
	if (!coro)
		return 0;
	coro = proc->coro_frame_is_ptr ? pt_read_ptr(coro + proc->coro_frame) : coro + proc->coro_frame;
	if (!coro)
		return 0;
	/* a FastAPI def endpoint behind BaseHTTPMiddleware: the task is its child */
	if (proc->scope_child_code && !bpf_probe_read_user(&code, sizeof(code), (void *)(coro + proc->off.fr_code)) &&
	    (code & proc->off.code_mask) == proc->scope_child_code) {
		task = pt_scope_key(proc, coro, proc->scope_child_cell);
		return task ? task | PT_TASK_PROXY : 0;
	}
	return coro | PT_TASK_PROXY;
}

/*
 * An instance attribute of obj by its class's recipe (mode, off, slot: src/pythreads.h's struct
 * py_attr_recipe; the modes are its enum py_attr_mode): the object it holds, or 0.
 */
static __always_inline __u64 pt_obj_attr(const struct pt_proc *proc, __u64 obj, __u8 mode, __u16 off, __u16 slot)
{
	__u64 vals = 0, v;

	switch (mode) {
	case 1:		/* <= 3.10: a split dict */
		v = pt_read_ptr(obj + off);
		vals = v ? pt_read_ptr(v + proc->attr_dict_values) : 0;
		break;
	case 2:		/* 3.11 */
		vals = pt_read_ptr(obj - 32);
		break;
	case 3:		/* 3.12: tagged */
		v = pt_read_ptr(obj - 24);
		vals = v & 1 ? v + 1 : 0;
		break;
	case 4:		/* 3.13+: inline, if valid (PyDictValues' fourth byte) */
		v = pt_read_ptr(obj + off);
		vals = (v >> 24) & 0xff ? obj + off : 0;
		break;
	}
	v = vals ? pt_read_ptr(vals + slot) : 0;
	return v & 7 ? 0 : v;
}

/*
 * Where the text of the statement that the database driver's frame of a walk sends starts in
 * its memory (struct pt_proc's text_code: the walk's s->text_frame, found only while texts are
 * wanted), with its length in *len (bytes, or code units) and its form in *kind: 0, bytes as
 * they are, NUL-terminated (a compact ASCII str's data, a bytes' ob_sval); 1, 2 or 4, a compact
 * non-ASCII str's code units (Latin-1, UCS-2, UCS-4), which the loader makes UTF-8. 0: none, or
 * not a text a program copies (a str that is not compact).
 */
static __always_inline __u64 pt_text_at(const struct pt_proc *proc, const struct pt_stack *s, __s64 *len,
					__u32 *kind)
{
	__u32 state = 0, k, i = s->text_frame & 3;
	__u64 v;

	*len = 0;
	*kind = 0;
	if (!s->text_frame || i >= PT_TEXT_CODES)
		return 0;
	v = pt_read_ptr((s->text_frame & ~7ULL) + proc->text_local[i]) & proc->off.code_mask;
	if (v && !(v & 7) && proc->text_member[i])
		v = pt_read_ptr(v + proc->text_member[i]);
	if (!v || (v & 7) || bpf_probe_read_user(len, sizeof(*len), (void *)(v + 16)) || *len < 0)
		return 0;	/* PyASCIIObject.length, PyVarObject.ob_size: both at 16 */
	if (!proc->text_state)
		return v + proc->text_data;
	/* state: interned:2, kind:3, compact:1, ascii:1 (3.8-3.15) */
	if (bpf_probe_read_user(&state, sizeof(state), (void *)(v + proc->text_state)) || !(state & 0x20))
		return 0;
	if (state & 0x40)
		return v + proc->text_data;
	k = state >> 2 & 7;
	if (!proc->text_cdata || (k != 1 && k != 2 && k != 4))
		return 0;
	*kind = k;
	return v + proc->text_cdata;
}

/* The request's scope held by the server's object obj (struct pt_proc's send_code, attr_*), as a task key; 0: unknown. */
static __always_inline __u64 pt_server_scope(const struct pt_proc *proc, __u64 obj)
{
	__u64 v = pt_obj_attr(proc, obj, proc->attr_mode, proc->attr_off, proc->attr_slot);

	return v ? v | PT_TASK_SCOPE : 0;
}

/*
 * A streamed response's writer, frame its outermost (wrap's) frame: s->host_frame is its task
 * group's host, the task awaiting the response (struct pt_proc's host_cell); or, until the loader
 * knows where TaskGroup and CancelScope keep their attributes, the task group, tagged
 * PT_HOST_TASK_GROUP.
 */
static __always_inline void pt_host_key(const struct pt_proc *proc, struct pt_stack *s, __u64 frame)
{
	__u64 v;

	if (!frame || (frame & 7) || !proc->host_cell)
		return;
	v = pt_read_ptr(frame + proc->host_cell) & proc->off.code_mask;	/* 3.14 tags it */
	v = v ? pt_read_ptr(v + proc->cell_ref) : 0;			/* the TaskGroup */
	if (!v)
		return;
	if (!proc->host_attr[0].mode || !proc->host_attr[1].mode) {
		if (!(v & 7))
			s->host_frame = v | PT_HOST_TASK_GROUP;	/* for the loader to learn from */
		return;
	}
	v = pt_obj_attr(proc, v, proc->host_attr[0].mode, proc->host_attr[0].off, proc->host_attr[0].slot);
	v = v ? pt_obj_attr(proc, v, proc->host_attr[1].mode, proc->host_attr[1].off, proc->host_attr[1].slot) : 0;
	v = v && proc->task_coro ? pt_read_ptr(v + proc->task_coro) : 0;	/* the task's coroutine */
	if (!v)
		return;
	s->host_frame = proc->coro_frame_is_ptr ? pt_read_ptr(v + proc->coro_frame) : v + proc->coro_frame;
}

/*
 * A response streamed by a child task of its request's (gen_code: the stack's outermost
 * coroutine's code, struct pt_proc's writer_code), written through the server's send
 * (s->send_frame): s's task is the request's scope, read from the server's object, send's self;
 * or, until the loader knows where that object's class keeps it, the object is given as
 * s->server_obj. Beside it (and without the middleware, alone): the key of the task group's
 * host task, the task that awaits the response (pt_host_key). A global function, called on every
 * path: its branches, inlined in the walk, made every walking program's verification 50% longer.
 */
__noinline int pt_server_key(const struct pt_proc *proc, struct pt_stack *s, __u64 gen_code)
{
	__u64 obj, key, frame;

	if (!proc || !s || !proc->writer_code || gen_code != proc->writer_code)
		return 0;
	frame = s->task_frame;	/* the writer's own (wrap's frame), before a scope replaces it */
	if (!proc->scope_code || !s->send_frame) {
		pt_host_key(proc, s, frame);
		return 0;
	}
	obj = pt_read_ptr(s->send_frame + proc->send_local) & proc->off.code_mask;
	key = obj && proc->attr_mode ? pt_server_scope(proc, obj) : 0;
	if (!key)
		s->server_obj = obj;
	pt_host_key(proc, s, frame);
	if (!key)
		return 0;	/* a global function returns a scalar */
	s->task_frame = key;
	if (proc->scope_route_off && !s->route_obj) {
		/* FastAPI's route in the scope (struct pt_proc's scope_route_off): key, then value */
		__u64 keys = pt_read_ptr((key & ~7ULL) + proc->dict_keys), kv[2] = {};

		if (keys && !bpf_probe_read_user(kv, sizeof(kv), (void *)(keys + proc->scope_route_off)) &&
		    kv[0] == proc->scope_route_key)
			s->route_obj = kv[1] & proc->off.code_mask;
	}
	return 0;
}

/* Bytes of the running tasks' keys object read at once: a table of 8 or 16 slots, whole. */
#define PT_RT_READ	288
#define PT_RT_ENTRIES	10	/* entries of a 16-slot table (two thirds) */
#define PT_RT_TRIES	3	/* tasks checked, newest first */

/*
 * The coroutine frame of task (an _asyncio Task) if it runs on the thread whose data stack in
 * use is [lo, hi): the frame it was resumed from lies there (3.12+: through the entry frame that
 * _PyEval_EvalFrameDefault keeps on the C stack). Its code is left in win->rt_code. 0: not. A global function: in pt_running_task's loop, inlined, it made every walking program's
 * verification 100,000 instructions longer.
 */
__noinline __u64 pt_task_here(const struct pt_proc *proc, struct pt_window_buf *win, __u64 task, __u64 lo, __u64 hi)
{
	const struct pt_offsets *off;
	__u64 coro, frame, prev;
	__u32 span;

	if (!proc || !win || !task)
		return 0;
	off = &proc->off;
	span = off->fr_span;
	if (span > PT_FRAME_READ_MAX - 8)
		span = PT_FRAME_READ_MAX - 8;
	coro = pt_read_ptr(task + proc->task_coro);
	if (!coro || (coro & 7))
		return 0;
	frame = coro + proc->coro_frame;	/* 3.11+: in the coroutine object */
	if (bpf_probe_read_user(win->frame, span, (void *)frame))
		return 0;
	win->rt_code = PT_FIELD(win->frame, off->fr_code, __u64) & off->code_mask;
	prev = PT_FIELD(win->frame, off->fr_back, __u64);
	if (prev >= lo && prev < hi)
		return frame;
	if (!prev || off->fr_owner == PT_NONE || bpf_probe_read_user(win->frame, span, (void *)prev) ||
	    PT_FIELD(win->frame, off->fr_owner, __u8) != off->owner_cstack)
		return 0;
	prev = PT_FIELD(win->frame, off->fr_back, __u64);
	return prev >= lo && prev < hi ? frame : 0;
}

/*
 * The task the current thread runs, as the walk would key it: its coroutine's frame (the chain's
 * outermost coroutine frame). From the _asyncio module's running tasks, {loop: task} (struct
 * pt_proc's run_tasks; enter_task adds a loop's entry for each step of a task, leave_task deletes
 * it): one read of the dict's keys object, then for the newest live entries, pt_task_here. The
 * dict is every loop's, and other threads change it while this one is in a syscall: a task
 * counts only if its frame is running on this thread (a frame of another thread, or of no
 * thread, was not resumed from this one's data stack). Four or five reads where the chain takes
 * 10-25. 0: none found, the walk then keys the stack as before.
 */
static __always_inline __u64 pt_running_task(const struct pt_proc *proc, struct pt_window_buf *win, __u64 lo,
					     __u64 hi)
{
	__u64 keys, task, frame;
	__u32 log2_size, log2_ix, at, tries = 0;
	__s64 n, i;
	int k;

	if (!proc || !win || !proc->run_tasks || !proc->task_coro || proc->coro_frame_is_ptr)
		return 0;
	keys = pt_read_ptr(proc->run_tasks + proc->dict_keys);
	if (!keys || bpf_probe_read_user(win->data, PT_RT_READ, (void *)keys))
		return 0;
	log2_size = win->data[proc->dk_log2_size & 63];
	log2_ix = win->data[(proc->dk_log2_size + 1) & 63];
	if (win->data[(proc->dk_log2_size + 2) & 63] != 0)
		return 0;	/* not DICT_KEYS_GENERAL: no loop was ever a key */
	if (log2_size < 3 || log2_size > 4 || log2_ix != log2_size)
		return 0;	/* a larger table: more loops than the walk looks through */
	n = *(__s64 *)(win->data + (proc->dk_nentries & 56));
	at = (proc->dk_indices & 63) + (log2_ix == 3 ? 8 : 16);	/* the entries, after the indices */
	if (n <= 0 || n > PT_RT_ENTRIES || at + n * 24 > PT_RT_READ)
		return 0;
	for (k = 0; k < PT_RT_ENTRIES; k++) {
		i = n - 1 - k;	/* the newest first */
		if (i < 0)
			break;
		/* the entry: hash, key (the loop), value (its task); a deleted one is zeroed */
		task = *(__u64 *)(win->data + ((at + i * 24 + 16) & 511 & ~7ULL));	/* < PT_RT_READ: n checked */
		if (!task || (task & 7))
			continue;
		frame = pt_task_here(proc, win, task, lo, hi);
		if (frame)
			return frame;
		if (++tries >= PT_RT_TRIES)
			break;
	}
	return 0;
}

/*
 * A walk's frame to stop at (how: PT_WALK_CUT, a statement's): the route frame (struct pt_proc's
 * route_code), whose callees hold the call site, where the running task is read directly (its
 * key and code left in pt_windows' rt_task, rt_code): on 3.14+ from the thread state (tstate's
 * asyncio_running_task, struct pt_proc's ts_run_task), before from the _asyncio module's dict
 * (pt_running_task); else ~0, none. A global function: its branches, in pt_walk_thread, split
 * every walking program's states in two.
 */
__noinline __u64 pt_walk_cut(const struct pt_proc *proc, __u32 how, __u64 chunk, __u64 top, __u64 tstate)
{
	__u32 zero = 0;
	struct pt_window_buf *win = bpf_map_lookup_elem(&pt_windows, &zero);
	__u64 task;

	if (!win)
		return ~0ULL;
	win->rt_task = 0;
	if (!(how & PT_WALK_CUT) || !proc || !proc->route_code || !chunk)
		return ~0ULL;
	if (proc->ts_run_task) {
		/* this thread's own task (a callback of the loop's: none); pt_task_here still checks
		 * that its frame runs here, and gives its code */
		task = pt_read_ptr(tstate + proc->ts_run_task);
		if (task && !(task & 7))
			win->rt_task = pt_task_here(proc, win, task, chunk + 24, top);
	} else {
		win->rt_task = pt_running_task(proc, win, chunk + 24, top);
	}
	return win->rt_task ? proc->route_code : ~0ULL;
}

/* A pointer at offset at of the thread state, read from its copy at win (which starts at offset lo). */
#define PT_TS_FIELD(win, at, lo) (*(__u64 *)((win)->data + (((at) - (lo)) & (PT_TS_SPAN - 8))))

/*
 * Fill s (innermost frame first) with the Python stack of the current thread, and return a
 * hash of it. how: PT_WALK_CUT for a statement's stack, which stops at the route frame where the
 * running task is read directly (pt_running_task; s->flags then has PT_SF_CUT). The thread's PyThreadState pointer is at a fixed offset from its fsbase (its
 * task's thread.fsbase), which points at glibc's struct pthread: see struct pt_proc.
 *
 * User reads are what a walk costs (about 100 ns each here, whatever their size up to a few
 * kB): 3.11+ read the thread state once from its frame pointer to its data stack's three
 * pointers, then (3.11, 3.12) the CFrame's current frame, then the data stack's part in use;
 * the frames are then walked in that copy. 3.8-3.10 read each frame.
 *
 * A global function, verified once on its own. Inlined, it was verified again with every
 * state of every caller: the HTTP layer's write programs took 91,000 instructions to verify
 * (9,700 now), the sampler's 36,000 (9,600), pg_sys_exit 731,000 (690,000).
 */
__noinline __u64 pt_walk_thread(__u64 fsbase, const struct pt_proc *proc, struct pt_stack *s, __u32 how)
{
	const struct pt_offsets *off;
	struct pt_walk w = { .hash = 0xcbf29ce484222325ULL };
	__u64 tstate, frame = 0;
	__u32 zero = 0;

	if (!proc || !s)
		return 0;
	off = &proc->off;
	w.off = off;
	w.s = s;
	w.proxy_code = proc->proxy_code;
	w.route_code = proc->route_code ? proc->route_code : ~0ULL;	/* 0 would match code-less frames */
	w.scope_code = proc->scope_code ? proc->scope_code : ~0ULL;
	w.send_code[0] = proc->send_code[0] ? proc->send_code[0] : ~0ULL;
	w.send_code[1] = proc->send_code[1] ? proc->send_code[1] : ~0ULL;
	w.stop_code = ~0ULL;
	w.text_code = proc->text_want ? proc->text_code : NULL;
	s->nframes = 0;
	s->task_frame = 0;
	s->root_frame = 0;
	s->proxy_frame = 0;
	s->route_obj = 0;
	s->route_frame = 0;
	s->scope_frame = 0;
	s->send_frame = 0;
	s->server_obj = 0;
	s->host_frame = 0;
	s->text_frame = 0;
	if (!fsbase)
		goto no_tstate;
	tstate = pt_read_ptr(fsbase + proc->tstate_off);
	if (!tstate)
		goto no_tstate;

	if (off->ts_datastack != PT_NONE) {
		struct pt_window_buf *win = bpf_map_lookup_elem(&pt_windows, &zero);
		__u32 first = off->ts_cframe != PT_NONE ? off->ts_cframe : off->ts_frame;
		__u32 lo = first < off->ts_datastack ? first : off->ts_datastack;
		__u64 span = off->ts_datastack + 24 - lo, chunk, top, limit;

		if (!win || first + 8 > off->ts_datastack + 24 || off->ts_datastack < lo || span > PT_TS_SPAN)
			goto no_tstate;
		asm volatile("" : "+r"(span));
		span &= 2 * PT_TS_SPAN - 1;
		if (span > PT_TS_SPAN || bpf_probe_read_user(win->data, span, (void *)(tstate + lo)))
			goto no_tstate;
		frame = PT_TS_FIELD(win, first, lo);
		chunk = PT_TS_FIELD(win, off->ts_datastack, lo);
		top = PT_TS_FIELD(win, off->ts_datastack + 8, lo);
		limit = PT_TS_FIELD(win, off->ts_datastack + 16, lo);
		if (off->ts_cframe != PT_NONE) {
			if (!frame)
				goto no_tstate;
			frame = pt_read_ptr(frame + off->ts_frame);	/* the CFrame's current frame */
		}
		/* a statement's stack on an event loop: its task read directly, the walk cut short */
		w.stop_code = pt_walk_cut(proc, how, chunk, top, tstate);
		PT_PHASE(28);
		pt_copy_window(&w, win, chunk, top, limit);
		PT_PHASE_ADD(PT_PH_WALK_BYTES, w.whi - w.wlo);
		PT_PHASE(PT_PH_WALK_READS);
	} else if (off->ts_cframe != PT_NONE) {
		__u64 cframe = pt_read_ptr(tstate + off->ts_cframe);

		if (!cframe)
			goto no_tstate;
		frame = pt_read_ptr(cframe + off->ts_frame);
	} else {
		frame = pt_read_ptr(tstate + off->ts_frame);
	}
	w.frame = frame;
	bpf_loop(PT_MAX_WALK, pt_walk_one, &w, 0);
	if (w.stop_code != ~0ULL) {
		struct pt_window_buf *win = bpf_map_lookup_elem(&pt_windows, &zero);

		/*
		 * The task's key, even where the walk did not reach the chain's root; as the whole
		 * walk's: BaseHTTPMiddleware's scope where its __call__ runs below the route frame
		 * (a route's own middleware), or where the task is its child task (call_next's coro);
		 * an app's middleware runs the route in such a child task, never in its own.
		 */
		if (win)
			s->task_frame = pt_task_of(proc, win->rt_task, win->rt_code, 0, s->scope_frame);
		if (w.frame && !(s->flags & (PT_SF_TRUNCATED | PT_SF_READ_ERR)))
			s->flags |= PT_SF_TRUNCATED;
		return (w.hash ^ s->nframes ^ ((__u64)s->flags << 32)) | 1;
	}
	/*
	 * One read, out of the loop: in the loop's callback this branch and its read made every
	 * walking program's verification three times larger (libpq's probes: 9,800 instructions
	 * each, 33,500 so). A Route.handle frame is a coroutine's, outside the data stack's copy.
	 */
	if (s->route_frame) {
		s->route_obj = pt_read_ptr(s->route_frame + proc->route_local) & off->code_mask;
		if (proc->route_cell && s->route_obj)
			s->route_obj = pt_read_ptr(s->route_obj + proc->cell_ref);
		if (proc->route_via_attr && s->route_obj && !(s->route_obj & 7))
			s->route_obj = proc->route_attr.mode ?
				pt_obj_attr(proc, s->route_obj, proc->route_attr.mode, proc->route_attr.off,
					    proc->route_attr.slot) :
				pt_read_ptr(s->route_obj + 8);	/* ob_type */
	}
	if (w.frame && !(s->flags & (PT_SF_TRUNCATED | PT_SF_READ_ERR)))
		s->flags |= PT_SF_TRUNCATED;
	if (!(s->flags & (PT_SF_TRUNCATED | PT_SF_READ_ERR))) {
		__u32 co_flags = 0;

		/* a coroutine's (an asyncio task's), not a plain generator's (a loop in sync code) */
		if (w.gen && (off->co_flags == PT_NONE ||
			      bpf_probe_read_user(&co_flags, sizeof(co_flags), (void *)(w.gen_code + off->co_flags)) ||
			      !(co_flags & PT_CO_ASYNC)))
			w.gen = 0;
		s->task_frame = pt_task_of(proc, w.gen, w.gen_code, s->proxy_frame, s->scope_frame);
		pt_server_key(proc, s, w.gen_code);
		s->root_frame = w.root;
	}
	return (w.hash ^ s->nframes ^ ((__u64)s->flags << 32)) | 1;

no_tstate:
	s->flags |= PT_SF_NO_TSTATE;
	return 0;
}

/* pt_walk_thread() of task, which must be the current task (its memory is the one mapped) */
static __always_inline __u64 pt_walk_stack(struct task_struct *task, const struct pt_proc *proc,
					   struct pt_stack *s, __u32 how)
{
	return pt_walk_thread(task->thread.fsbase, proc, s, how);	/* a BTF pointer: a direct load */
}

#endif
