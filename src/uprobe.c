// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Uprobes confined to one process: uprobe_multi links where the kernel has them (uprobe.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "uprobe.h"

/* From Linux 6.6's uapi/linux/bpf.h, which Debian 12's headers (6.1) predate. */
#define PT_BPF_TRACE_UPROBE_MULTI	48
#define PT_BPF_F_UPROBE_MULTI_RETURN	(1U << 0)

/* union bpf_attr as BPF_LINK_CREATE reads it for a uprobe_multi link. */
struct uprobe_multi_attr {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__u64 path;
	__u64 offsets;
	__u64 ref_ctr_offsets;
	__u64 cookies;
	__u32 cnt;
	__u32 multi_flags;
	__u32 pid;
	__u32 pad;
};

static int link_create(int prog_fd, const char *path, const __u64 *offs, const __u64 *ref_ctr_offs,
		       const __u64 *cookies, __u32 cnt, bool retprobe, pid_t pid)
{
	struct uprobe_multi_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_fd = prog_fd;
	attr.attach_type = PT_BPF_TRACE_UPROBE_MULTI;
	attr.path = (__u64)(unsigned long)path;
	attr.offsets = (__u64)(unsigned long)offs;
	attr.ref_ctr_offsets = (__u64)(unsigned long)ref_ctr_offs;
	attr.cookies = (__u64)(unsigned long)cookies;
	attr.cnt = cnt;
	attr.multi_flags = retprobe ? PT_BPF_F_UPROBE_MULTI_RETURN : 0;
	attr.pid = pid;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	return fd < 0 ? -errno : fd;
}

/*
 * A kernel that knows uprobe_multi links loads a program of that attach type, and refuses a link
 * on a path that is not a regular file with EBADF; one that does not refuses the link with EINVAL.
 */
static bool multi_supported(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = PT_BPF_TRACE_UPROBE_MULTI);
	__u64 off = 0;
	int prog, link;

	prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "pt_probe_upm", "GPL", insns, 2, &opts);
	if (prog < 0)
		return false;
	link = link_create(prog, "/", &off, NULL, NULL, 1, false, 0);
	if (link >= 0)
		close(link);
	close(prog);
	return link == -EBADF;
}

static int chosen_kind = -1;

void uprobe__use_perf_events(void)
{
	chosen_kind = UPROBE_PERF;
}

enum uprobe_kind uprobe__kind(void)
{
	if (chosen_kind < 0)
		chosen_kind = multi_supported() ? UPROBE_MULTI : UPROBE_PERF;
	return chosen_kind;
}

const char *uprobe__kind_name(enum uprobe_kind kind)
{
	return kind == UPROBE_MULTI ? "uprobe_multi links" : "perf events";
}

int uprobe__prepare(struct bpf_program *prog, enum uprobe_kind kind)
{
	if (kind != UPROBE_MULTI)
		return 0;
	return bpf_program__set_expected_attach_type(prog, (enum bpf_attach_type)PT_BPF_TRACE_UPROBE_MULTI);
}

int uprobe__attach(struct uprobe *u, enum uprobe_kind kind, const struct bpf_program *prog, bool retprobe,
		   pid_t pid, const char *path, uint64_t off)
{
	__u64 o = off;
	int fd;

	if (kind == UPROBE_PERF) {
		u->link = bpf_program__attach_uprobe(prog, retprobe, pid, path, off);
		return u->link ? 0 : -errno;
	}
	fd = link_create(bpf_program__fd(prog), path, &o, NULL, NULL, 1, retprobe, pid);
	if (fd < 0)
		return fd;
	u->fd = fd;
	u->multi = true;
	return 0;
}

int uprobe__attach_sites(struct uprobe *u, const struct bpf_program *prog, bool retprobe, pid_t pid,
			 const char *path, const uint64_t *offs, const uint64_t *ref_ctr_offs, const uint64_t *cookies,
			 unsigned cnt)
{
	int fd;

	fd = link_create(bpf_program__fd(prog), path, (const __u64 *)offs, (const __u64 *)ref_ctr_offs,
			 (const __u64 *)cookies, cnt, retprobe, pid);
	if (fd < 0)
		return fd;
	u->fd = fd;
	u->multi = true;
	return 0;
}

bool uprobe__attached(const struct uprobe *u)
{
	return u->multi || u->link;
}

/*
 * Releasing a uprobe link waits for an RCU grace period (uprobe_unregister_sync): about 20 ms
 * here, for each link. On the collector's loop that stalls everything behind it: a subprocess
 * forked and exec'd by a watched process cost the loop 23 ms, while the parent's libpq waited for
 * its probes. Links are handed to threads that release them; concurrent releases share their
 * grace periods, so a burst of exits does not queue up 20 ms per link. Four threads released
 * about 75 links a second here, fewer than 300 short-lived children of a process traced with
 * --functions left behind (4 links each, 7.5 s); sixteen kept up. A caller that needs a probe
 * gone before it goes on keeps the ticket and asks uprobe__released().
 */
#define RELEASERS 16

struct release {
	struct release *next;
	struct bpf_link *link;
	int fd;			/* -1: none */
	uint64_t ticket;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t more, done;
	struct release *head, *tail;
	uint64_t queued;		/* tickets handed out */
	uint64_t busy[RELEASERS];	/* the ticket each thread is releasing, 0: idle */
	int threads;
	bool failed;
} rel = { .lock = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER,
	  .done = PTHREAD_COND_INITIALIZER };

static void release_now(struct bpf_link *link, int fd)
{
	if (fd >= 0)
		close(fd);
	bpf_link__destroy(link);
}

/* With rel.lock held: every ticket up to this one is released. */
static uint64_t released_upto(void)
{
	uint64_t low = rel.head ? rel.head->ticket : rel.queued + 1;
	int i;

	for (i = 0; i < rel.threads; i++)
		if (rel.busy[i] && rel.busy[i] < low)
			low = rel.busy[i];
	return low - 1;
}

static void *releaser(void *arg)
{
	uint64_t *busy = arg;

	pthread_setname_np(pthread_self(), "pytrace-release");	/* 15 characters: the limit */
	pthread_mutex_lock(&rel.lock);
	for (;;) {
		struct release *r;

		while (!rel.head)
			pthread_cond_wait(&rel.more, &rel.lock);
		r = rel.head;
		rel.head = r->next;
		if (!rel.head)
			rel.tail = NULL;
		*busy = r->ticket;
		pthread_mutex_unlock(&rel.lock);
		release_now(r->link, r->fd);
		free(r);
		pthread_mutex_lock(&rel.lock);
		*busy = 0;
		pthread_cond_broadcast(&rel.done);
	}
	return NULL;
}

/*
 * With rel.lock held: one more thread, up to RELEASERS, unless an idle one is left for the
 * link about to be queued. They take no
 * signal: Ctrl-C and SIGTERM stay the loop's. Returns whether any thread runs.
 */
static bool releasers_running(void)
{
	int i, idle = 0, waiting = 0;
	sigset_t all, old;
	pthread_attr_t attr;
	struct release *r;
	pthread_t t;

	for (i = 0; i < rel.threads; i++)
		idle += !rel.busy[i];
	for (r = rel.head; r && waiting <= idle; r = r->next)
		waiting++;
	if (waiting < idle || rel.threads == RELEASERS || rel.failed)
		return rel.threads > 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);	/* close() and libbpf's link teardown only */
	if (pthread_create(&t, &attr, releaser, &rel.busy[rel.threads]) == 0)
		rel.threads++;
	else
		rel.failed = true;
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rel.threads > 0;
}

uint64_t uprobe__detach(struct uprobe *u)
{
	struct bpf_link *link = u->link;
	int fd = u->multi ? u->fd : -1;
	struct release *r;
	uint64_t ticket;

	memset(u, 0, sizeof(*u));
	if (!link && fd < 0)
		return 0;
	r = malloc(sizeof(*r));
	pthread_mutex_lock(&rel.lock);
	ticket = ++rel.queued;
	if (!r || !releasers_running()) {
		/* Released here and now, after the ones before it: the ticket is redeemed on return. */
		while (released_upto() < ticket - 1)
			pthread_cond_wait(&rel.done, &rel.lock);
		pthread_mutex_unlock(&rel.lock);
		free(r);
		release_now(link, fd);
		return ticket;
	}
	r->next = NULL;
	r->link = link;
	r->fd = fd;
	r->ticket = ticket;
	if (rel.tail)
		rel.tail->next = r;
	else
		rel.head = r;
	rel.tail = r;
	pthread_cond_signal(&rel.more);
	pthread_mutex_unlock(&rel.lock);
	return ticket;
}

bool uprobe__released(uint64_t ticket)
{
	bool done;

	pthread_mutex_lock(&rel.lock);
	done = released_upto() >= ticket;
	pthread_mutex_unlock(&rel.lock);
	return done;
}

void uprobe__wait_released(uint64_t ticket)
{
	pthread_mutex_lock(&rel.lock);
	while (released_upto() < ticket)
		pthread_cond_wait(&rel.done, &rel.lock);
	pthread_mutex_unlock(&rel.lock);
}
