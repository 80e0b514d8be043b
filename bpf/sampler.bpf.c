// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Timer-driven sampling of Python stacks, and off-CPU stacks for --functions' fallback. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "pytrace.h"
#include "pystack.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pt_sample);
} sample_buf SEC(".maps");

SEC("perf_event")
int sample_stack(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, zero = 0, size, n;
	struct task_struct *task;
	struct pt_proc *proc;
	struct pt_sample *s;

	if (!pt_is_tracked(pid))
		return 0;
	s = bpf_map_lookup_elem(&sample_buf, &zero);
	if (!s)
		return 0;
	pt_count(PT_CNT_SAMPLES);

	s->hdr.type = PT_EV_SAMPLE;
	s->hdr.pid = pid;
	s->tid = (__u32)id;
	s->ts = bpf_ktime_get_ns();
	s->weight = 1;
	s->stack.nframes = 0;
	s->stack.flags = 0;
	s->cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(s->comm, sizeof(s->comm));

	proc = bpf_map_lookup_elem(&procs, &pid);
	if (proc) {
		task = bpf_get_current_task_btf();
		pt_walk_stack(task, proc, &s->stack);
	} else {
		s->stack.flags |= PT_SF_NO_PROC;
	}
	if (s->stack.flags & PT_SF_NO_PROC)
		pt_count(PT_CNT_NO_PROC);
	if (s->stack.flags & PT_SF_NO_TSTATE)
		pt_count(PT_CNT_NO_TSTATE);
	if (s->stack.flags & PT_SF_READ_ERR)
		pt_count(PT_CNT_READ_ERR);
	if (s->stack.flags & PT_SF_TRUNCATED)
		pt_count(PT_CNT_TRUNCATED);

	n = s->stack.nframes;
	if (n > PT_MAX_FRAMES)
		n = PT_MAX_FRAMES;
	size = offsetof(struct pt_sample, stack.frames) + n * sizeof(struct pt_frame);
	if (bpf_ringbuf_output(&events, s, size, pt_rb_flags()))
		pt_count(PT_CNT_LOST);
	return 0;
}

/*
 * Off-CPU stacks (--functions fallback): when a traced thread leaves the CPU, walk its stack;
 * when it comes back, send that stack weighted by the nanoseconds it was away (blocked or
 * runnable). Off by default: the loader enables it, and this program, only when needed.
 */
const volatile bool offcpu = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct pt_sample);
} offcpu_stacks SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 tid = next->pid, pid, zero = 0, size, n;
	__u64 now = bpf_ktime_get_ns();
	struct pt_sample *s;
	struct pt_proc *proc;

	if (!offcpu)
		return 0;
	s = bpf_map_lookup_elem(&offcpu_stacks, &tid);
	if (s) {
		s->weight = now - s->ts;
		s->ts = now;
		s->cpu = bpf_get_smp_processor_id();
		n = s->stack.nframes;
		if (n > PT_MAX_FRAMES)
			n = PT_MAX_FRAMES;
		size = offsetof(struct pt_sample, stack.frames) + n * sizeof(struct pt_frame);
		if (bpf_ringbuf_output(&events, s, size, pt_rb_flags()))
			pt_count(PT_CNT_LOST);
		bpf_map_delete_elem(&offcpu_stacks, &tid);
	}

	pid = prev->tgid;
	tid = prev->pid;
	if (!pid || !pt_is_tracked(pid))
		return 0;
	proc = bpf_map_lookup_elem(&procs, &pid);
	s = bpf_map_lookup_elem(&sample_buf, &zero);
	if (!proc || !s)
		return 0;
	s->hdr.type = PT_EV_SAMPLE;
	s->hdr.pid = pid;
	s->tid = tid;
	s->ts = now;
	s->weight = 0;
	s->stack.nframes = 0;
	s->stack.flags = PT_SF_OFFCPU;
	s->cpu = bpf_get_smp_processor_id();
	BPF_CORE_READ_STR_INTO(&s->comm, prev, comm);
	pt_walk_stack(prev, proc, &s->stack);	/* prev is current: its memory is the one mapped */
	if (bpf_map_update_elem(&offcpu_stacks, &tid, s, BPF_ANY) == 0)
		pt_count(PT_CNT_OFFCPU);
	return 0;
}
