// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Uprobes confined to one process: uprobe_multi links where the kernel has them (uprobe.h). */
#include <errno.h>
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

enum uprobe_kind uprobe__kind(void)
{
	static int kind = -1;
	const char *env;

	if (kind < 0) {
		env = getenv("PYTRACE_UPROBES");
		kind = (env && strcmp(env, "perf") == 0) || !multi_supported() ? UPROBE_PERF : UPROBE_MULTI;
	}
	return kind;
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

int uprobe__attach_sites(struct uprobe *u, const struct bpf_program *prog, pid_t pid, const char *path,
			 const uint64_t *offs, const uint64_t *ref_ctr_offs, const uint64_t *cookies, unsigned cnt)
{
	int fd;

	fd = link_create(bpf_program__fd(prog), path, (const __u64 *)offs, (const __u64 *)ref_ctr_offs,
			 (const __u64 *)cookies, cnt, false, pid);
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

void uprobe__detach(struct uprobe *u)
{
	if (u->multi)
		close(u->fd);
	bpf_link__destroy(u->link);
	memset(u, 0, sizeof(*u));
}
