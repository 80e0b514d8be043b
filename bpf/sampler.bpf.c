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

/* --gil: only samples of the thread holding the GIL */
const volatile bool gil_only = false;

/*
 * Whether the current thread holds its interpreter's GIL: the GIL is locked and its last_holder
 * is this thread's PyThreadState. Unknown (no GIL address, no thread state): kept.
 */
static __always_inline bool pt_holds_gil(struct task_struct *task, const struct pt_proc *proc)
{
	__u64 fsbase, tstate, holder;
	int locked = 0;

	if (!proc->gil)
		return true;
	fsbase = BPF_CORE_READ(task, thread.fsbase);
	tstate = fsbase ? pt_read_ptr(fsbase + proc->tstate_off) : 0;
	if (!tstate)
		return false;	/* no Python thread state: cannot hold the GIL */
	if (bpf_probe_read_user(&locked, sizeof(locked), (void *)(proc->gil + proc->gil_locked)))
		return true;
	holder = pt_read_ptr(proc->gil + proc->gil_holder);
	return locked == 1 && holder == tstate;
}

/*
 * Whether a sample wakes the loader at once. The others wait for its next poll (a tenth of a
 * second), and the loader names a sample's frames by reading their code objects from the process
 * then: what a process ran in its last tenth of a second before it ended, unless its code was
 * seen earlier, would be [unknown]. So a sample wakes the loader when it is one of its process's
 * first PT_EAGER_SAMPLES (struct pt_proc's samples_sent: a command of a few hundredths of a
 * second is named while it runs), or when its code objects, in their order, are new to its
 * process (seen_stacks: a key per process and hash of the codes, lines left out, so that a warm
 * service, whose stacks repeat, wakes nobody), at most once every PT_EAGER_GAP_NS over the host.
 * A wake-up costs the loader one turn of its loop: 30 us at most, 0.3% of a core at the cap.
 */
#define PT_EAGER_SAMPLES 16
#define PT_EAGER_GAP_NS 10000000ULL	/* at most 100 wake-ups a second, however many processes start */

struct pt_seen_key {
	__u32 pid;
	__u32 pad;
	__u64 hash;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pt_seen_key);
	__type(value, __u8);
} seen_stacks SEC(".maps");

__u64 eager_last_ns;	/* the last wake-up asked for (racy between CPUs: a wake-up more, harmless) */

static __always_inline bool pt_eager(struct pt_proc *proc, const struct pt_sample *s, __u32 pid, __u32 n)
{
	struct pt_seen_key k = { .pid = pid, .hash = 0xcbf29ce484222325ULL };
	__u64 now;
	__u32 i;
	__u8 one = 1;

	if (!proc || !n)
		return false;
	/* not atomic: two CPUs sampling at once may count one; a wake-up more, harmless */
	if (proc->samples_sent < PT_EAGER_SAMPLES) {
		proc->samples_sent++;
	} else {
		/* a plain loop: bpf_loop's call a frame cost three times the hash's work */
		for (i = 0; i < PT_MAX_FRAMES && i < n; i++)
			k.hash = (k.hash ^ s->stack.frames[i].code) * PT_HASH_MUL;
		if (bpf_map_lookup_elem(&seen_stacks, &k))
			return false;
		bpf_map_update_elem(&seen_stacks, &k, &one, BPF_ANY);
	}
	/* a sample not woken for is taken at the next wake-up, within the gap if samples come */
	now = bpf_ktime_get_ns();
	if (now - eager_last_ns < PT_EAGER_GAP_NS)
		return false;
	eager_last_ns = now;
	return true;
}

SEC("perf_event")
int sample_stack(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, zero = 0, size, n;
	bool wake;
	struct task_struct *task;
	struct pt_proc *proc;
	struct pt_sample *s;

	if (!pt_is_tracked(pid))
		return 0;
	s = bpf_map_lookup_elem(&sample_buf, &zero);
	if (!s)
		return 0;
	proc = bpf_map_lookup_elem(&procs, &pid);
	if (gil_only && proc && !pt_holds_gil(bpf_get_current_task_btf(), proc)) {
		pt_count(PT_CNT_GIL_DROPPED);
		return 0;
	}
	pt_count(PT_CNT_SAMPLES);

	s->hdr.type = PT_EV_SAMPLE;
	s->hdr.pid = pid;
	s->tid = (__u32)id;
	s->ts = bpf_ktime_get_ns();
	s->weight = 1;
	s->stack.nframes = 0;
	s->stack.flags = gil_only ? PT_SF_GIL : 0;
	s->cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(s->comm, sizeof(s->comm));

	if (proc) {
		task = bpf_get_current_task_btf();
		pt_walk_stack(task, proc, &s->stack, 0);
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
	wake = pt_eager(proc, s, pid, n);
	if (wake)
		pt_count(PT_CNT_SAMPLES_WOKE);
	if (bpf_ringbuf_output(&events, s, size, wake ? BPF_RB_FORCE_WAKEUP : pt_rb_flags()))
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
	/* every switch of the host: the bitmap first (a thread switched in belongs to next->tgid) */
	s = pt_may_be_tracked(next->tgid) ? bpf_map_lookup_elem(&offcpu_stacks, &tid) : NULL;
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
	pt_walk_stack(prev, proc, &s->stack, 0);	/* prev is current: its memory is the one mapped */
	if (bpf_map_update_elem(&offcpu_stacks, &tid, s, BPF_ANY) == 0)
		pt_count(PT_CNT_OFFCPU);
	return 0;
}

/*
 * --idle: off-CPU time in every output. When a traced thread blocks (leaves the CPU not
 * runnable), its stack is walked and the block is keyed by (stack hash, thread, reason). The
 * time is kept in the thread's task storage, not in a shared map: its switch-in adds the time
 * away there (no hash operation, no atomic: a task is switched on one CPU at a time), and the
 * sum goes to idle_agg only when the thread blocks under another key, every PT_IDLE_FLUSH_NS,
 * and when it exits. The loader reads idle_agg once a second, and at the end the threads' own
 * copies (open blocks and sums not yet flushed) through the iter/task program idle_dump. A key
 * seen for the first time is announced by one PT_SF_IDLE sample carrying its frames, which the
 * loader names while the code objects are alive. Every task the tool does not trace costs a
 * test of its bit in tracked_bits at switch-in and switch-out; nothing else.
 *
 * The walk is most of a block's cost (three or four user reads). A thread that blocks more
 * often than idle_walks_per_s times a second has 1 in k of its blocks walked, k set each
 * PT_IDLE_WIN_NS from its rate in the window before, chosen at random (bpf_get_prandom_u32),
 * and each walked block counts k times its time: an unbiased estimate, as perf's sampling of
 * events by count, which keeps every thread's cost bounded whatever its rate. Below that rate
 * every block is walked and timed exactly; 0 walks every block.
 */
const volatile bool idle = false;
const volatile __u32 idle_walks_per_s = 1000;

#define PT_IDLE_WIN_NS		10000000ULL	/* 10 ms */
#define PT_IDLE_K_MAX		1024

#define PT_IDLE_FLUSH_NS	100000000ULL	/* 100 ms: the most a thread's death can lose */
#define PT_PF_EXITING		0x00000004	/* include/linux/sched.h */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pt_idle_key);
	__type(value, struct pt_idle_val);
} idle_agg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pt_idle_thread);
} idle_task SEC(".maps");

/* Add a thread's sum to its key in idle_agg (which holds every key a thread can have: see below). */
static __always_inline void pt_idle_flush(struct pt_idle_thread *t, __u64 now)
{
	struct pt_idle_val *v;

	if (t->acc_count) {
		v = bpf_map_lookup_elem(&idle_agg, &t->key);
		if (v) {
			__sync_fetch_and_add(&v->ns, t->acc_ns);
			__sync_fetch_and_add(&v->count, t->acc_count);
		}
		t->acc_ns = 0;
		t->acc_count = 0;
	}
	t->flush_ts = now;
}

/* x86_64 syscall numbers */
#define NR_read 0
#define NR_write 1
#define NR_poll 7
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_select 23
#define NR_pause 34
#define NR_nanosleep 35
#define NR_connect 42
#define NR_accept 43
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_futex 202
#define NR_clock_nanosleep 230
#define NR_epoll_wait 232
#define NR_pselect6 270
#define NR_ppoll 271
#define NR_epoll_pwait 281
#define NR_accept4 288
#define NR_recvmmsg 299
#define NR_sendmmsg 307
#define NR_epoll_pwait2 441
#define NR_futex_waitv 449

#define PT_S_IFMT	00170000
#define PT_S_IFSOCK	0140000

/*
 * Whether fd of task (the current one) is a socket. task is the tracepoint's own (trusted BTF)
 * pointer, so the chain to the fd table is direct loads, not helper calls; the table's slot and
 * the file behind it are plain memory to the verifier and are read with the helper.
 */
static __always_inline bool pt_fd_is_socket(struct task_struct *task, __s64 fd)
{
	struct files_struct *files;
	struct fdtable *fdt;
	struct file *f = NULL;
	struct inode *inode = NULL;
	umode_t mode = 0;

	if (fd < 0)
		return false;
	files = task->files;
	if (!files)
		return false;
	fdt = files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return false;
	if (bpf_probe_read_kernel(&f, sizeof(f), (void *)fdt->fd + fd * sizeof(f)) || !f)
		return false;
	if (bpf_probe_read_kernel(&inode, sizeof(inode), &f->f_inode) || !inode ||
	    bpf_probe_read_kernel(&mode, sizeof(mode), &inode->i_mode))
		return false;
	return (mode & PT_S_IFMT) == PT_S_IFSOCK;
}

/* A socket wait on fd is a wait on PostgreSQL when the wire programs follow it as one. */
static __always_inline __u32 pt_socket_reason(__u32 pid, __s64 fd)
{
	struct pg_conn_key k = { .pid = pid, .fd = (__s32)fd };
	struct pg_conn *c = bpf_map_lookup_elem(&pg_conns, &k);

	return c && c->state != PG_ST_OTHER && c->state != PG_ST_CANDIDATE ? PT_IDLE_SQL : PT_IDLE_SOCKET;
}

static __always_inline __u32 pt_idle_reason(struct task_struct *task, __u32 pid)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long nr;
	__u64 a0, a1;
	int fd = -1;

	if (!regs)
		return PT_IDLE_OTHER;
	/* bpf_task_pt_regs() gives a BTF pointer: direct loads */
	nr = regs->orig_ax;
	a0 = regs->di;
	a1 = regs->si;
	switch (nr) {
	case NR_futex:
	case NR_futex_waitv:
		return PT_IDLE_LOCK;
	case NR_nanosleep:
	case NR_clock_nanosleep:
	case NR_pause:
		return PT_IDLE_SLEEP;
	case NR_select:
	case NR_pselect6:
		/* 3.8-3.10's time.sleep is select(0, NULL, NULL, NULL, &tv) */
		return a0 ? PT_IDLE_IO : PT_IDLE_SLEEP;
	case NR_poll:
	case NR_ppoll:
		if (!a1)
			return PT_IDLE_SLEEP;
		/* the first pollfd's fd: a socket module or driver waits on one socket */
		if (bpf_probe_read_user(&fd, sizeof(fd), (void *)a0))
			return PT_IDLE_IO;
		return pt_fd_is_socket(task, fd) ? pt_socket_reason(pid, fd) : PT_IDLE_IO;
	case NR_connect:
	case NR_accept:
	case NR_accept4:
		return PT_IDLE_SOCKET;
	case NR_sendto:
	case NR_recvfrom:
	case NR_sendmsg:
	case NR_recvmsg:
	case NR_recvmmsg:
	case NR_sendmmsg:
		return pt_socket_reason(pid, (__s64)a0);
	case NR_read:
	case NR_write:
	case NR_readv:
	case NR_writev:
	case NR_pread64:
	case NR_pwrite64:
		return pt_fd_is_socket(task, (__s64)a0) ? pt_socket_reason(pid, (__s64)a0) : PT_IDLE_IO;
	case NR_epoll_wait:
	case NR_epoll_pwait:
	case NR_epoll_pwait2:
		return PT_IDLE_IO;
	}
	return PT_IDLE_OTHER;
}

/* Blocked: left the CPU in an interruptible or uninterruptible sleep, not preempted nor dying. */
static __always_inline bool pt_blocked(bool preempt, struct task_struct *prev)
{
	unsigned int state;

	if (preempt)
		return false;
	if (bpf_core_field_exists(prev->__state))
		state = BPF_CORE_READ(prev, __state);
	else
		return false;
	return state & 3;	/* TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE */
}

SEC("tp_btf/sched_switch")
int BPF_PROG(idle_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct pt_idle_thread *t;
	struct pt_idle_key key = {};
	struct pt_idle_val zv = {};
	struct pt_sample *s;
	struct pt_proc *proc;
	__u32 pid, tid, zero = 0, size, n;
	__u64 now = 0;

	if (!idle)
		return 0;
	/* every switch of the host: the bitmap first, so that untraced tasks cost a load */
	t = pt_may_be_tracked(next->tgid) ? bpf_task_storage_get(&idle_task, next, NULL, 0) : NULL;
	if (t && t->ts) {
		__u32 scale = t->scale > 1 ? t->scale : 1;

		now = bpf_ktime_get_ns();
		t->acc_ns += (now - t->ts) * scale;
		t->acc_count += scale;
		t->ts = 0;
	}

	pid = prev->tgid;
	if (!pid || !pt_may_be_tracked(pid))
		return 0;
	if (!pt_blocked(preempt, prev)) {
		/* a thread's last switch: what it has not flushed goes now, or dies with it */
		if (prev->flags & PT_PF_EXITING) {
			t = bpf_task_storage_get(&idle_task, prev, NULL, 0);
			if (t)
				pt_idle_flush(t, 0);
		}
		return 0;
	}
	if (!now)
		now = bpf_ktime_get_ns();
	/* A thread walked before: above the walk rate, most blocks stop here (see above). */
	t = bpf_task_storage_get(&idle_task, prev, NULL, 0);
	if (t && idle_walks_per_s) {
		__u64 span = now - t->win_start;

		if (span >= PT_IDLE_WIN_NS) {
			/* k for the next window: blocks a second over the walks allowed, rounded up */
			__u64 k = (t->win_blocks * 1000000000ULL / idle_walks_per_s + span - 1) / span;

			t->k = k < 1 ? 1 : k > PT_IDLE_K_MAX ? PT_IDLE_K_MAX : k;
			t->win_start = now;
			t->win_blocks = 0;
		}
		t->win_blocks++;
		if (t->k > 1 && bpf_get_prandom_u32() % t->k) {
			pt_count(PT_CNT_IDLE_UNWALKED);
			return 0;
		}
	}
	/* procs holds the tracked pids that run Python: the one hash lookup that decides */
	proc = bpf_map_lookup_elem(&procs, &pid);
	s = bpf_map_lookup_elem(&sample_buf, &zero);
	if (!proc || !s)
		return 0;
	tid = prev->pid;
	s->stack.nframes = 0;
	s->stack.flags = PT_SF_OFFCPU | PT_SF_IDLE;
	/* prev is current: its memory is the one mapped, and its pt_regs are its syscall's */
	key.hash = pt_walk_stack(prev, proc, &s->stack, 0);
	key.pid = pid;
	key.tid = tid;
	key.reason = pt_idle_reason(prev, pid);
	if (!t) {
		t = bpf_task_storage_get(&idle_task, prev, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!t)
			return 0;
		t->win_start = now;
		t->k = 1;
	}
	t->scale = t->k > 1 ? t->k : 1;
	if (t->key.hash == key.hash && t->key.reason == key.reason && t->key.tid == tid && t->key.pid == pid) {
		/* blocked where it last did: its key is in idle_agg already */
		if (now - t->flush_ts >= PT_IDLE_FLUSH_NS)
			pt_idle_flush(t, now);
		t->ts = now;
		pt_count(PT_CNT_IDLE_BLOCKS);
		return 0;
	}
	pt_idle_flush(t, now);
	if (!bpf_map_lookup_elem(&idle_agg, &key)) {
		if (bpf_map_update_elem(&idle_agg, &key, &zv, BPF_NOEXIST) == 0) {
			/* first block with this key: its frames go to the loader, once */
			s->hdr.type = PT_EV_SAMPLE;
			s->hdr.pid = pid;
			s->tid = tid;
			s->ts = key.hash;
			s->weight = key.reason;
			s->cpu = bpf_get_smp_processor_id();
			BPF_CORE_READ_STR_INTO(&s->comm, prev, comm);
			n = s->stack.nframes;
			if (n > PT_MAX_FRAMES)
				n = PT_MAX_FRAMES;
			size = offsetof(struct pt_sample, stack.frames) + n * sizeof(struct pt_frame);
			if (bpf_ringbuf_output(&events, s, size, pt_rb_flags())) {
				pt_count(PT_CNT_LOST);
				bpf_map_delete_elem(&idle_agg, &key);
				t->key.hash = 0;	/* not a key: the next block under it tries again */
				return 0;
			}
		} else if (!bpf_map_lookup_elem(&idle_agg, &key)) {
			pt_count(PT_CNT_IDLE_DROPPED);
			t->key.hash = 0;
			return 0;
		}
	}
	t->key = key;
	t->ts = now;
	pt_count(PT_CNT_IDLE_BLOCKS);
	return 0;
}

/*
 * The end of a trace: each traced thread's open block and unflushed sum, as one struct
 * pt_idle_thread per thread, for the loader to add to what idle_agg holds.
 */
SEC("iter/task")
int idle_dump(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct pt_idle_thread *t;

	if (!task || !pt_may_be_tracked(task->tgid))
		return 0;
	t = bpf_task_storage_get(&idle_task, task, NULL, 0);
	if (!t || !t->key.hash || !(t->ts || t->acc_count))
		return 0;
	bpf_seq_write(ctx->meta->seq, t, sizeof(*t));
	return 0;
}
