// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libpq uprobes: every statement a traced process sends, and every result it reads back.
 *
 * Two probe sets; the loader attaches one per process (struct sql_proc in sql.h says why):
 * - "send": PQsend* and PQgetResult (entry and return), PQpipelineSync. PQexec, PQexecParams,
 *   PQexecPrepared and PQprepare are PQsend* followed by PQgetResult until NULL, so this sees
 *   the synchronous and asynchronous APIs, and pipelines, alike; the loader pairs sends with
 *   results per connection. Each send is classified as nested (called from libpq's own code,
 *   that is from PQexec*) or direct, for the loader to choose.
 * - "exec": PQexec* and PQprepare, entry and return: one event per statement, complete; and
 *   the calls only the asynchronous API makes, as sentinels.
 * (libbpf 1.1's bpf_tracing.h predates BPF_UPROBE; BPF_KPROBE reads the same registers.)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "pytrace.h"
#include "sql.h"
#include "pystack.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 text_cap = 1024;	/* bytes of statement text kept, NUL included */

/* Python stacks of statements, by hash: sent once, referenced by every statement from there. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct pt_stack);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sql_send);
} send_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pt_stack);
} stack_buf SEC(".maps");

/* Per traced process: libpq's code range, and how the process calls libpq. Filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct sql_proc);
} sql_procs SEC(".maps");

/*
 * A thread's libpq calls in progress, from entry to return: a PQexec* call's arguments, and the
 * connection of a PQgetResult call. Task storage, not a hash on the thread id: no hashing, no
 * element to allocate and free at every call, and nothing left behind by a thread that dies
 * inside a call.
 */
struct exec_call {
	__u64 conn, name, text, ts;
	__u32 flags;
	__u32 active;		/* PQexec* entered, not returned yet */
	__u64 result_conn;	/* PQgetResult's connection, while in_result */
	__u32 in_result;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct exec_call);
} exec_calls SEC(".maps");

/*
 * While both probe sets are attached (the loader switching a process from one to the other),
 * calls made inside a PQexec* that the exec probes saw are theirs: the send probes skip them.
 * A call entered before the exec probes were last dropped never sees its return probe.
 */
static __always_inline bool claimed(const struct exec_call *c, const struct sql_proc *sp)
{
	return c && c->active && sp && c->ts > sp->exec_dropped_ns;
}

static __always_inline bool in_exec_call(const struct sql_proc *sp)
{
	return claimed(bpf_task_storage_get(&exec_calls, bpf_get_current_task_btf(), NULL, 0), sp);
}

/*
 * Fill a statement event: the Python stack of the calling thread (stored in the stacks map the
 * first time it is seen), the prepared statement's name and the text. Returns the wakeup flag
 * for the ring buffer: a new stack wakes the loader, which names it while the process lives.
 */
static __always_inline __u64 sql_fill(struct sql_send *e, __u32 pid, __u32 tid, __u64 conn,
				      const char *name, const char *text, __u32 flags, __u64 ts)
{
	__u32 zero = 0, cap = text_cap, off = 0;
	__u64 wakeup = 0;
	__s64 dlen = 0;
	struct pt_proc *proc;
	long n;

	e->hdr.type = PT_EV_SQL_SEND;
	e->hdr.pid = pid;
	e->tid = tid;
	e->flags = flags;
	e->conn = conn;
	e->ts = ts;
	e->stack_id = 0;
	e->name_len = 0;
	e->text_len = 0;
	e->status = 0;
	e->end_ts = 0;
	e->task_frame = 0;
	e->root_frame = 0;

	proc = bpf_map_lookup_elem(&procs, &pid);
	if (proc) {
		struct pt_stack *st = bpf_map_lookup_elem(&stack_buf, &zero);

		if (st) {
			st->nframes = 0;
			st->flags = 0;
			e->stack_id = pt_walk_stack(bpf_get_current_task_btf(), proc, st, 0);
			e->task_frame = st->task_frame;
			e->root_frame = st->root_frame;
			/* a statement prepared before tracing: the text its driver's frame holds */
			if ((flags & SQL_F_PREPARED) && !text && st->text_frame) {
				__u32 kind;

				/* as it is only: libpq's drivers' texts are bytes (psycopg 3's) */
				text = (const char *)pt_text_at(proc, st, &dlen, &kind);
				if (text && kind)
					text = NULL;
				if (text)
					e->flags |= SQL_F_DRIVER_TEXT;
			}
			/* Look first: an LRU update copies the whole value even when the key exists. */
			if (e->stack_id && !bpf_map_lookup_elem(&stacks, &e->stack_id) &&
			    !bpf_map_update_elem(&stacks, &e->stack_id, st, BPF_NOEXIST))
				wakeup = BPF_RB_FORCE_WAKEUP;
		}
	}

	if (name) {
		n = bpf_probe_read_user_str(e->data, SQL_NAME_MAX, name);
		if (n > 0) {
			off = n - 1;
			e->name_len = off;
		}
	}
	if (text) {
		if (cap > SQL_TEXT_MAX)
			cap = SQL_TEXT_MAX;
		if (off >= SQL_NAME_MAX)
			off = SQL_NAME_MAX - 1;
		n = bpf_probe_read_user_str(e->data + off, cap, text);
		if (n > 0) {
			e->text_len = n - 1;
			if ((__u32)n == cap || dlen > n - 1)
				e->flags |= SQL_F_TRUNCATED;
		}
	}
	return wakeup;
}

static __always_inline void sql_output(struct sql_send *e, __u64 wakeup)
{
	__u32 size = offsetof(struct sql_send, data) + e->name_len + e->text_len;

	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, wakeup ? wakeup : pt_rb_flags()))
		pt_count(PT_CNT_SQL_LOST);
}

/* Send probes: a statement leaves. Counted as nested in PQexec* or as a direct call. */
static __always_inline int sql_send(struct pt_regs *ctx, void *conn, const char *name, const char *text,
				    __u32 flags)
{
	__u64 id = bpf_get_current_pid_tgid(), ret_addr = 0, wakeup;
	__u32 pid = id >> 32, zero = 0;
	struct sql_proc *sp;
	struct sql_send *e;

	if (!pt_is_tracked(pid))
		return 0;
	sp = bpf_map_lookup_elem(&sql_procs, &pid);
	/*
	 * Until the loader has settled the process on these probes, a send may be an exec probe's
	 * (during a move), and is classified for the loader to choose by: one more user read and an
	 * atomic add on a line the process's other threads share. Settled, neither is needed.
	 */
	if (!sp || !sp->settled) {
		if (in_exec_call(sp))
			return 0;
		if (sp && !bpf_probe_read_user(&ret_addr, sizeof(ret_addr), (void *)PT_REGS_SP(ctx))) {
			if (ret_addr >= sp->text_lo && ret_addr < sp->text_hi)
				__sync_fetch_and_add(&sp->nested, 1);
			else
				__sync_fetch_and_add(&sp->direct, 1);
		}
	}
	pt_count(PT_CNT_SQL_CALLS);
	e = bpf_map_lookup_elem(&send_buf, &zero);
	if (!e)
		return 0;
	wakeup = sql_fill(e, pid, (__u32)id, (__u64)conn, name, text, flags, bpf_ktime_get_ns());
	pt_note_pqconn((__u64)conn, e->ts);
	sql_output(e, wakeup);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pq_send_query, void *conn, const char *query)
{
	return sql_send(ctx, conn, NULL, query, 0);
}

SEC("uprobe")
int BPF_KPROBE(pq_send_query_params, void *conn, const char *command)
{
	return sql_send(ctx, conn, NULL, command, SQL_F_PARAMS);
}

SEC("uprobe")
int BPF_KPROBE(pq_send_prepare, void *conn, const char *name, const char *query)
{
	return sql_send(ctx, conn, name, query, SQL_F_PREPARE | SQL_F_PARAMS);
}

SEC("uprobe")
int BPF_KPROBE(pq_send_query_prepared, void *conn, const char *name)
{
	return sql_send(ctx, conn, name, NULL, SQL_F_PREPARED | SQL_F_PARAMS);
}

SEC("uprobe")
int BPF_KPROBE(pq_get_result, void *conn)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct exec_call *c;
	struct sql_proc *sp;

	if (!pt_is_tracked(pid))
		return 0;
	c = bpf_task_storage_get(&exec_calls, bpf_get_current_task_btf(), NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return 0;
	sp = bpf_map_lookup_elem(&sql_procs, &pid);
	if ((!sp || !sp->settled) && claimed(c, sp))
		return 0;
	c->result_conn = (__u64)conn;
	c->in_result = 1;
	return 0;
}

static __always_inline void sql_result(__u32 type, __u64 conn, __s32 status)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sql_result *r;

	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		pt_count(PT_CNT_SQL_LOST);
		return;
	}
	r->hdr.type = type;
	r->hdr.pid = id >> 32;
	r->tid = (__u32)id;
	r->status = status;
	r->conn = conn;
	r->ts = bpf_ktime_get_ns();
	bpf_ringbuf_submit(r, pt_rb_flags());
}

SEC("uretprobe")
int BPF_KRETPROBE(pq_get_result_ret, void *res)
{
	struct exec_call *c = bpf_task_storage_get(&exec_calls, bpf_get_current_task_btf(), NULL, 0);
	__s32 status = SQL_ST_NULL;

	if (!c || !c->in_result)
		return 0;
	c->in_result = 0;
	if (res && bpf_probe_read_user(&status, sizeof(status), res + PG_RESULT_STATUS_OFF))
		status = PGRES_FATAL_ERROR_;
	sql_result(PT_EV_SQL_RESULT, c->result_conn, status);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pq_pipeline_sync, void *conn)
{
	if (!pt_is_tracked(bpf_get_current_pid_tgid() >> 32))
		return 0;
	sql_result(PT_EV_SQL_SYNC, (__u64)conn, 0);
	return 0;
}

/*
 * Exec probes: PQexec* and PQprepare, entry and return. They are the whole cost of a statement
 * here, so the entry only notes the arguments (the uprobe's pid filter already chose the process).
 */
static __always_inline int exec_enter(void *conn, const char *name, const char *text, __u32 flags)
{
	struct exec_call *c;

	c = bpf_task_storage_get(&exec_calls, bpf_get_current_task_btf(), NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return 0;
	c->conn = (__u64)conn;
	c->name = (__u64)name;
	c->text = (__u64)text;
	c->flags = flags;
	c->active = 1;
	c->ts = bpf_ktime_get_ns();
	pt_note_pqconn((__u64)conn, c->ts);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pq_exec, void *conn, const char *query)
{
	return exec_enter(conn, NULL, query, 0);
}

SEC("uprobe")
int BPF_KPROBE(pq_exec_params, void *conn, const char *command)
{
	return exec_enter(conn, NULL, command, SQL_F_PARAMS);
}

SEC("uprobe")
int BPF_KPROBE(pq_prepare, void *conn, const char *name, const char *query)
{
	return exec_enter(conn, name, query, SQL_F_PREPARE | SQL_F_PARAMS);
}

SEC("uprobe")
int BPF_KPROBE(pq_exec_prepared, void *conn, const char *name)
{
	return exec_enter(conn, name, NULL, SQL_F_PREPARED | SQL_F_PARAMS);
}

/*
 * One event per statement, made at the return: the caller's text is still alive and the Python
 * stack is the one that made the call (the thread has not left PQexec*).
 */
SEC("uretprobe")
int BPF_KRETPROBE(pq_exec_ret, void *res)
{
	__u64 id = bpf_get_current_pid_tgid(), end = bpf_ktime_get_ns(), wakeup;
	__u32 pid = id >> 32, zero = 0;
	struct exec_call *c = bpf_task_storage_get(&exec_calls, bpf_get_current_task_btf(), NULL, 0);
	__s32 status = PGRES_FATAL_ERROR_;	/* NULL: libpq could not even send it */
	struct sql_send *e;

	if (!c || !c->active)
		return 0;
	c->active = 0;
	e = bpf_map_lookup_elem(&send_buf, &zero);
	if (!e)
		return 0;
	wakeup = sql_fill(e, pid, (__u32)id, c->conn, (const char *)c->name, (const char *)c->text, c->flags, c->ts);
	if (res && bpf_probe_read_user(&status, sizeof(status), res + PG_RESULT_STATUS_OFF))
		status = PGRES_FATAL_ERROR_;
	e->hdr.type = PT_EV_SQL_EXEC;
	e->status = status;
	e->end_ts = end;
	sql_output(e, wakeup);
	return 0;
}

/* Exec probes: a call that only the asynchronous API makes. The first one wakes the loader. */
SEC("uprobe")
int BPF_KPROBE(pq_async_api, void *conn)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct sql_proc *sp = bpf_map_lookup_elem(&sql_procs, &pid);

	if (sp && __sync_fetch_and_add(&sp->async_calls, 1) == 0) {
		struct sql_result *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

		if (!r) {
			pt_count(PT_CNT_SQL_LOST);
			return 0;
		}
		r->hdr.type = PT_EV_SQL_ASYNC;
		r->hdr.pid = pid;
		r->tid = (__u32)bpf_get_current_pid_tgid();
		r->status = 0;
		r->conn = (__u64)conn;
		r->ts = bpf_ktime_get_ns();
		bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	}
	return 0;
}

/*
 * ld.so's _dl_debug_state, in Python processes without libpq yet: the dynamic linker calls it
 * after each change to a process's list of loaded objects (the r_brk hook of <link.h> that
 * debuggers use). A driver imported late then has its libpq probed as soon as it is mapped,
 * instead of at the loader's next look at the process's mappings.
 */
SEC("uprobe")
int BPF_KPROBE(dl_debug_state)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sql_result *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		pt_count(PT_CNT_SQL_LOST);
		return 0;
	}
	r->hdr.type = PT_EV_SQL_DLOPEN;
	r->hdr.pid = id >> 32;
	r->tid = (__u32)id;
	r->status = 0;
	r->conn = 0;
	r->ts = bpf_ktime_get_ns();
	bpf_ringbuf_submit(r, BPF_RB_FORCE_WAKEUP);
	return 0;
}
