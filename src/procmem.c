// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Reading a live process's memory through /proc/PID/mem, not process_vm_readv.
 *
 * process_vm_readv pins the pages it reads (pin_user_pages_remote, FOLL_PIN), and since Linux
 * 5.19 the kernel unshares an anonymous copy-on-write page before it lets it be pinned
 * (gup_must_unshare): every page of a forked process that the tool read became a private copy in
 * that process, with a TLB shootdown of its CPUs. A prefork server's workers (gunicorn's, uWSGI's)
 * share nearly all their pages with the master, and the tool reads their module tables, code
 * objects and URL patterns: on this kernel (6.18), reading 64 bytes of each page of a forked
 * child's 64 MiB grew its Private_Dirty by 65 MB through process_vm_readv, by 0.2 MB through
 * /proc/PID/mem (access_remote_vm takes the pages without pinning them). In the collector's soak
 * (gunicorn workers replaced every 1.25 s) the unsharing faults were 12% of the collector's CPU.
 *
 * A file of /proc/PID/mem is opened once per process and kept (FD_SLOTS, least recently used
 * out, procmem__forget at its exit). It stays bound to the address space it was opened on: after
 * an exec, or once the process is gone and its pid reused, a read gives 0 bytes, and the file is
 * opened again once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "procmem.h"

#define FD_SLOTS 64

/* Per thread: the collector reads on its main thread only, but nothing here needs a lock so. */
static __thread struct fd_slot {
	pid_t pid;
	int fd;
	unsigned long used;
} slots[FD_SLOTS];
static __thread unsigned long clock_;

static void slot_close(struct fd_slot *s)
{
	if (s->pid)
		close(s->fd);
	s->pid = 0;
	s->fd = -1;
}

/* pid's open file, opened anew if fresh: >= 0, or -ESRCH (gone) or another -errno. */
static int mem_fd(pid_t pid, bool fresh)
{
	struct fd_slot *s = NULL, *lru = &slots[0];
	char path[32];

	for (unsigned i = 0; i < FD_SLOTS; i++) {
		if (slots[i].pid == pid) {
			s = &slots[i];
			break;
		}
		if (slots[i].used < lru->used)
			lru = &slots[i];
	}
	if (s && !fresh) {
		s->used = ++clock_;
		return s->fd;
	}
	if (!s)
		s = lru;
	slot_close(s);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	s->pid = pid;
	s->used = ++clock_;
	return s->fd;
}

void procmem__forget(pid_t pid)
{
	for (unsigned i = 0; i < FD_SLOTS; i++)
		if (slots[i].pid == pid && pid)
			slot_close(&slots[i]);
}

/*
 * One read of len bytes at addr: 0, -EFAULT (not mapped, or in part), -ESRCH (the process is
 * gone), or another -errno. A read of 0 bytes means the file's address space is gone (an exec,
 * an exit): once more on a file opened anew.
 */
static int read_at(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = mem_fd(pid, attempt > 0);
		ssize_t n;

		if (fd < 0)
			return fd;
		n = pread(fd, buf, len, (off_t)addr);
		if (n == (ssize_t)len)
			return 0;
		if (n > 0)
			return -EFAULT;	/* read in part: the rest is not mapped */
		if (n < 0)
			return errno == EIO ? -EFAULT : -errno;	/* EIO: nothing mapped there */
	}
	return -ESRCH;	/* 0 bytes, twice: no address space */
}

static int procmem_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	if (!addr || addr > INT64_MAX - len)
		return -EFAULT;
	if (!len)
		return 0;
	return read_at((pid_t)(intptr_t)ctx, addr, buf, len);
}

#define MERGE_SPAN 4096	/* spans within this many bytes of each other are read at once */
#define MERGE_MAX 256		/* spans sorted per call; beyond, one by one */

struct span_at {
	uint64_t addr;
	unsigned i;
};

static int by_addr(const void *a, const void *b)
{
	const struct span_at *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/*
 * Spans close together (code objects of one module lie near each other) in one read of the range
 * that covers them: a read's fixed cost (the syscall, the address space's lock, a page walk) is
 * most of what a header of a few hundred bytes costs. A range that does not read whole (a hole
 * between the spans) has its spans read one by one, so each keeps its own verdict; a process gone
 * fails every span not read yet.
 */
static void procmem_readv(void *ctx, struct mem_span *v, unsigned n)
{
	static __thread uint8_t range[MERGE_SPAN];
	struct span_at at[MERGE_MAX];
	unsigned m = 0, a, b, k;

	for (k = 0; k < n; k++) {
		v[k].err = 1;	/* not read yet */
		if (!v[k].addr || v[k].addr > INT64_MAX - v[k].len)
			v[k].err = -EFAULT;
		else if (!v[k].len)
			v[k].err = 0;
		else if (m < MERGE_MAX && v[k].len <= MERGE_SPAN)
			at[m++] = (struct span_at){ v[k].addr, k };
	}
	qsort(at, m, sizeof(at[0]), by_addr);
	for (a = 0; a < m; a = b) {
		uint64_t lo = at[a].addr, hi = lo + v[at[a].i].len;
		int err;

		for (b = a + 1; b < m && at[b].addr + v[at[b].i].len - lo <= MERGE_SPAN; b++)
			if (at[b].addr + v[at[b].i].len > hi)
				hi = at[b].addr + v[at[b].i].len;
		if (b - a < 2)
			continue;	/* alone: read below */
		err = read_at((pid_t)(intptr_t)ctx, lo, range, hi - lo);
		if (err == -ESRCH)
			goto gone;
		if (err)
			continue;	/* a hole: each span on its own below */
		for (k = a; k < b; k++) {
			struct mem_span *s = &v[at[k].i];

			memcpy(s->buf, range + (s->addr - lo), s->len);
			s->err = 0;
		}
	}
	for (k = 0; k < n; k++) {
		if (v[k].err != 1)
			continue;
		v[k].err = read_at((pid_t)(intptr_t)ctx, v[k].addr, v[k].buf, v[k].len);
		if (v[k].err == -ESRCH)
			goto gone;
	}
	return;
gone:
	for (k = 0; k < n; k++)
		if (v[k].err == 1)
			v[k].err = -ESRCH;
}

void procmem__reader(struct mem_reader *mr, pid_t pid)
{
	mr->read = procmem_read;
	mr->ctx = (void *)(intptr_t)pid;
	mr->readv = procmem_readv;
}
