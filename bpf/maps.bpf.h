/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Maps every pytrace BPF object shares; the loader makes later objects reuse the first's. */
#ifndef PYTRACE_MAPS_BPF_H
#define PYTRACE_MAPS_BPF_H

#include "pytrace.h"
#include "pg.h"

/* Processes whose interpreter the loader has inspected; children inherit their parent's entry. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pt_proc);
} procs SEC(".maps");

/* Every traced pid (value: PT_TRACK_*), Python or not yet known. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} tracked SEC(".maps");

/*
 * The same pids as one bit each (pid_max is at most 2^22 on 64-bit: 512 kB). An array lookup is
 * inlined by the verifier: the programs on every process's syscalls test this first, and a
 * process that is not traced (nearly every syscall on a host) costs a load and a shift instead
 * of a hash lookup (measured: docs/PERFORMANCE.md, "The miss path"). A set bit only sends the
 * caller on to its own lookup; the loader and session.bpf.c set a bit before the pid enters
 * tracked and clear it after it leaves. User space writes it through mmap, with atomics.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PT_PID_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} tracked_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

/* Wake the loader only once this much is queued: it polls anyway, and wakeups cost CPU. */
const volatile __u64 rb_wakeup_bytes = 256 * 1024;

static __always_inline void pt_count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		*c += 1;
}

/* Events queued on this CPU since the ring buffer's fill was last looked at. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rb_since_query SEC(".maps");

#define PT_RB_QUERY_EVERY 32

/*
 * Wake the loader once rb_wakeup_bytes are queued. Reading the fill touches the consumer's
 * position, which the loader's CPU writes: a cache miss per event. Look every 32 events per CPU
 * instead (the loader also polls every 100 ms).
 */
static __always_inline __u64 pt_rb_flags(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&rb_since_query, &zero);

	if (n && ++*n % PT_RB_QUERY_EVERY)
		return BPF_RB_NO_WAKEUP;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= rb_wakeup_bytes ?
	       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/*
 * The libpq connection a thread is sending a statement on, noted by libpq's send probes
 * (sql.bpf.c) and read by the wire programs (pgwire.bpf.c) at the write that follows: how the
 * loader tells which PGconn a socket is, so that each statement is counted from one source only.
 */
struct pt_pqconn {
	__u64 conn;		/* PGconn * */
	__u64 ts;		/* bpf_ktime_get_ns() of the probe */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pt_pqconn);
} pq_current SEC(".maps");

#define PT_PQCONN_FRESH_NS	(10 * 1000000ULL)	/* a write this soon after the probe is its statement's */

static __always_inline void pt_note_pqconn(__u64 conn, __u64 ts)
{
	struct pt_pqconn *c = bpf_task_storage_get(&pq_current, bpf_get_current_task_btf(), NULL,
						    BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (c) {
		c->conn = conn;
		c->ts = ts;
	}
}

/* The PGconn the current thread's libpq call is writing for, or 0. */
static __always_inline __u64 pt_pqconn_now(__u64 now)
{
	struct pt_pqconn *c = bpf_task_storage_get(&pq_current, bpf_get_current_task_btf(), NULL, 0);

	return c && now - c->ts < PT_PQCONN_FRESH_NS ? c->conn : 0;
}

/*
 * The PostgreSQL connections the wire programs follow (pgwire.bpf.c), per (pid, fd); shared so
 * that --idle (sampler.bpf.c) can tell a thread blocked on one: a wait on the database.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PG_MAX_CONNS);
	__type(key, struct pg_conn_key);
	__type(value, struct pg_conn);
} pg_conns SEC(".maps");

/* Whether pid may be traced: false surely means it is not (see tracked_bits). */
static __always_inline bool pt_may_be_tracked(__u32 pid)
{
	__u32 i = pid >> 6;
	__u64 *w = bpf_map_lookup_elem(&tracked_bits, &i);

	return w && (*w >> (pid & 63)) & 1;
}

static __always_inline void pt_track_bit(__u32 pid, bool on)
{
	__u32 i = pid >> 6;
	__u64 *w = bpf_map_lookup_elem(&tracked_bits, &i);

	if (!w)
		return;
	if (on)
		__sync_fetch_and_or(w, 1ULL << (pid & 63));
	else
		__sync_fetch_and_and(w, ~(1ULL << (pid & 63)));
}

static __always_inline bool pt_is_tracked(__u32 pid)
{
	return pt_may_be_tracked(pid) && bpf_map_lookup_elem(&tracked, &pid) != NULL;
}

#endif
