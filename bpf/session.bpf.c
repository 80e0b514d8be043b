// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The session's own object: it defines the maps every other object shares (maps.bpf.h), and
 * follows traced processes across fork, exec and exit.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "pytrace.h"
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile bool follow_children = true;
/*
 * Host-wide: every exec of an untracked process puts it in `tracked` and tells the loader, which
 * keeps it if it turns out to run a supported CPython (and passes the filters) and removes it
 * otherwise. Execs are rare; the socket and syscall programs stay cheap for everyone else.
 */
const volatile bool host_wide = false;
const volatile __u32 self_tgid = 0;	/* the tracer: never followed */
/*
 * `pytrace-bpf -- COMMAND`: after each exec of the command, or of a process it started that is
 * followed (tracked), the process is stopped (SIGSTOP) at the first .py or .pyc file it opens,
 * which a CPython does once its runtime and main thread exist and before any code of the
 * program runs, until the loader has found its interpreter; the loader then lets it go on
 * (SIGCONT) and removes it from `held`. A command started so, and every Python it starts, loses
 * no sample and no statement of its start, however late the loader gets to them. (Under --pid
 * or host-wide nothing is ever stopped: those processes were not started by the tool.)
 */
const volatile bool hold_execs = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} held SEC(".maps");

#define PT_SIGSTOP 19
#define PT_HOLD_PATH 256	/* a power of two: the bytes of a path looked at */

static __always_inline void proc_event(__u32 type, __u32 pid, __u32 ppid)
{
	struct pt_proc_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		pt_count(PT_CNT_PROC_LOST);
		return;
	}
	e->hdr.type = type;
	e->hdr.pid = pid;
	e->ppid = ppid;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(track_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ppid = parent->tgid, pid = child->tgid, how = PT_TRACK_CHILD;
	struct pt_proc *proc;

	if (!follow_children || child->pid != child->tgid)
		return 0;	/* a new thread, not a new process */
	if (!pt_is_tracked(ppid))
		return 0;
	pt_track_bit(pid, true);
	bpf_map_update_elem(&tracked, &pid, &how, BPF_ANY);
	/* A forked child runs the parent's interpreter at the same addresses until it execs. */
	proc = bpf_map_lookup_elem(&procs, &ppid);
	if (proc)
		bpf_map_update_elem(&procs, &pid, proc, BPF_ANY);
	proc = bpf_map_lookup_elem(&procs, &pid);
	if (proc)
		proc->samples_sent = 0;	/* its own first samples wake the loader (sampler.bpf.c) */
	proc_event(PT_EV_FORK, pid, ppid);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(track_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = p->tgid, how = PT_TRACK_HOST;

	if (!pt_is_tracked(pid)) {
		if (!host_wide || pid == self_tgid || (p->flags & 0x00200000 /* PF_KTHREAD */))
			return 0;
		pt_track_bit(pid, true);
		bpf_map_update_elem(&tracked, &pid, &how, BPF_NOEXIST);
	}
	bpf_map_delete_elem(&procs, &pid);
	if (hold_execs) {
		__u32 one = 1;

		bpf_map_update_elem(&held, &pid, &one, BPF_ANY);	/* full: not held, as before */
	}
	proc_event(PT_EV_EXEC, pid, 0);
	return 0;
}

/* Whether the NUL-terminated name in buf (n bytes with its NUL) ends in ".py" or ".pyc". */
static __always_inline bool python_source(const char *buf, long n)
{
	if (n >= 5 && n <= PT_HOLD_PATH) {
		const char *t = buf + ((n - 5) & (PT_HOLD_PATH - 1));

		if (t[0] == '.' && t[1] == 'p' && t[2] == 'y' && t[3] == 'c')
			return true;
	}
	if (n >= 4 && n <= PT_HOLD_PATH) {
		const char *t = buf + ((n - 4) & (PT_HOLD_PATH - 1));

		if (t[0] == '.' && t[1] == 'p' && t[2] == 'y')
			return true;
	}
	return false;
}

/* Loaded only for a command the tracer starts (hold_execs): see hold_execs above. */
SEC("tracepoint/syscalls/sys_enter_openat")
int hold_at_import(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	char buf[PT_HOLD_PATH + 8];
	struct pt_proc_event *e;
	long n;

	if (!pt_may_be_tracked(pid) || !bpf_map_lookup_elem(&held, &pid))
		return 0;
	if (bpf_map_lookup_elem(&procs, &pid)) {
		bpf_map_delete_elem(&held, &pid);	/* found already: nothing to wait for */
		return 0;
	}
	n = bpf_probe_read_user_str(buf, PT_HOLD_PATH, (const void *)ctx->args[1]);
	if (!python_source(buf, n))
		return 0;
	/*
	 * No event, no stop: the loader must hear of every stop it has to end. The stop is sent
	 * before the event is seen, so the loader's SIGCONT always comes after it (and discards it
	 * if it is still pending).
	 */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		pt_count(PT_CNT_PROC_LOST);
		return 0;
	}
	e->hdr.type = PT_EV_HELD;
	e->hdr.pid = pid;
	e->ppid = 0;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_send_signal(PT_SIGSTOP);
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(track_exit, struct task_struct *p)
{
	__u32 pid = p->tgid;

	if (p->pid != p->tgid || !pt_is_tracked(pid))
		return 0;
	proc_event(PT_EV_EXIT, pid, 0);
	bpf_map_delete_elem(&procs, &pid);
	bpf_map_delete_elem(&tracked, &pid);
	bpf_map_delete_elem(&held, &pid);
	pt_track_bit(pid, false);
	return 0;
}
