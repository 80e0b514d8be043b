// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The cost floor of reading socket traffic on the socket layer's own tracepoints
 * (sock:sock_send_length, sock:sock_recv_length: Linux 6.3+, fired in sock_sendmsg and
 * sock_recvmsg) attached raw through BTF (tp_btf: BPF_TRACE_RAW_TP), not through perf events
 * as bpftrace attaches them. The loader's mode picks how much of the proposed design's path runs:
 *   0 empty: nothing (the attachment alone: sf_*_empty);
 *   1 miss:  the untraced path: the pid's bit in `bits`, clear for every pid of the host;
 *   2 regs:  the start of the traced path, for the pids whose bits the loader set: the syscall's
 *            number and its buffer and length arguments from the task's entry registers, and
 *            the socket's cookie.
 * And, to weigh one raw program on every syscall's return against the perf-event syscall
 * tracepoints the tool attaches per syscall (sys_exit_read, ...):
 *   3 sysexit-empty: an empty tp_btf/sys_exit program;
 *   4 sysexit-miss:  the same testing the pid's bit (what every untraced process would pay).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SF_EMPTY	0
#define SF_MISS		1
#define SF_REGS		2
#define SF_PID_WORDS	((1u << 22) / 64)	/* one bit per pid up to PID_MAX_LIMIT (64-bit) */

const volatile int mode = SF_MISS;	/* miss or regs: mode empty has programs of its own */

/* The loader sets the bits of the -p pids through mmap, as pytrace's tracked_bits. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SF_PID_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} bits SEC(".maps");

struct sf_acc {
	__u64 runs;	/* traced-path runs: the loader reports them, so a run shows it was taken */
	__u64 sum;	/* what was read, kept so that the compiler keeps the reads */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sf_acc);
} acc SEC(".maps");

static __always_inline int on_sock(struct sock *sk)
{
	__u32 pid, i, zero = 0;
	struct sf_acc *a;
	struct pt_regs *r;
	__u64 *w, v;

	pid = bpf_get_current_pid_tgid() >> 32;
	i = pid >> 6;
	w = bpf_map_lookup_elem(&bits, &i);
	if (!w || !((*w >> (pid & 63)) & 1))
		return 0;
	a = bpf_map_lookup_elem(&acc, &zero);
	if (!a)
		return 0;
	if (mode == SF_REGS) {	/* rodata: the verifier drops the branch in mode miss */
		/* the registers the task entered the kernel with: direct loads of a trusted pointer */
		r = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		v = r->orig_ax + r->si + r->dx;
		v += bpf_get_socket_cookie(sk);
		a->sum += v;
	}
	a->runs++;
	return 0;
}

/*
 * Mode empty loads these two instead of the two below (the loader turns autoload off for the
 * others): a test of `mode` here would leave its load in the program, where bpftrace's empty
 * programs are two instructions.
 */
SEC("tp_btf/sock_send_length")
int BPF_PROG(sf_send_empty)
{
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sf_recv_empty)
{
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sf_send, struct sock *sk, int ret, int flags)
{
	return on_sock(sk);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sf_recv, struct sock *sk, int ret, int flags)
{
	return on_sock(sk);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sf_sysexit_empty)
{
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sf_sysexit, struct pt_regs *regs, long ret)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32, i = pid >> 6, zero = 0;
	struct sf_acc *a;
	__u64 *w;

	w = bpf_map_lookup_elem(&bits, &i);
	if (!w || !((*w >> (pid & 63)) & 1))
		return 0;
	a = bpf_map_lookup_elem(&acc, &zero);
	if (a)
		a->runs++;
	return 0;
}
