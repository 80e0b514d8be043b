// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libpq uprobes: every statement a traced process sends, and every result it reads back.
 * PQexec, PQexecParams, PQexecPrepared and PQprepare are PQsend* followed by PQgetResult
 * until NULL, so probing PQsend* and PQgetResult sees the synchronous and asynchronous APIs,
 * and pipelines, alike; the loader pairs sends with results per connection.
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

/* PQgetResult's connection, from entry to return, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} result_conn SEC(".maps");

static __always_inline int sql_send(void *conn, const char *name, const char *text, __u32 flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, zero = 0, cap = text_cap, off = 0, size;
	__u64 wakeup = 0;
	struct pt_proc *proc;
	struct sql_send *e;
	long n;

	if (!pt_is_tracked(pid))
		return 0;
	pt_count(PT_CNT_SQL_CALLS);
	e = bpf_map_lookup_elem(&send_buf, &zero);
	if (!e)
		return 0;
	e->hdr.type = PT_EV_SQL_SEND;
	e->hdr.pid = pid;
	e->tid = (__u32)id;
	e->flags = flags;
	e->conn = (__u64)conn;
	e->ts = bpf_ktime_get_ns();
	e->stack_id = 0;
	e->name_len = 0;
	e->text_len = 0;
	e->pad = 0;

	proc = bpf_map_lookup_elem(&procs, &pid);
	if (proc) {
		struct pt_stack *st = bpf_map_lookup_elem(&stack_buf, &zero);

		if (st) {
			st->nframes = 0;
			st->flags = 0;
			e->stack_id = pt_walk_stack(bpf_get_current_task_btf(), proc, st);
			/*
			 * A stack not seen before: the loader should name it while the process lives.
			 * Look first: an LRU update copies the whole value even when the key exists.
			 */
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
			if ((__u32)n == cap)
				e->flags |= SQL_F_TRUNCATED;
		}
	}
	size = offsetof(struct sql_send, data) + e->name_len + e->text_len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, wakeup ? wakeup : pt_rb_flags()))
		pt_count(PT_CNT_SQL_LOST);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pq_send_query, void *conn, const char *query)
{
	return sql_send(conn, NULL, query, 0);
}

SEC("uprobe")
int BPF_KPROBE(pq_send_query_params, void *conn, const char *command)
{
	return sql_send(conn, NULL, command, SQL_F_PARAMS);
}

SEC("uprobe")
int BPF_KPROBE(pq_send_prepare, void *conn, const char *name, const char *query)
{
	return sql_send(conn, name, query, SQL_F_PREPARE | SQL_F_PARAMS);
}

SEC("uprobe")
int BPF_KPROBE(pq_send_query_prepared, void *conn, const char *name)
{
	return sql_send(conn, name, NULL, SQL_F_PREPARED | SQL_F_PARAMS);
}

SEC("uprobe")
int BPF_KPROBE(pq_get_result, void *conn)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	__u64 c = (__u64)conn;

	if (!pt_is_tracked(id >> 32))
		return 0;
	bpf_map_update_elem(&result_conn, &tid, &c, BPF_ANY);
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
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__s32 status = SQL_ST_NULL;
	__u64 *conn = bpf_map_lookup_elem(&result_conn, &tid);

	if (!conn)
		return 0;
	if (res && bpf_probe_read_user(&status, sizeof(status), res + PG_RESULT_STATUS_OFF))
		status = PGRES_FATAL_ERROR_;
	sql_result(PT_EV_SQL_RESULT, *conn, status);
	bpf_map_delete_elem(&result_conn, &tid);
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
