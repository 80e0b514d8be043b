// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdint.h>
#include <sys/uio.h>
#include "procmem.h"

static int procmem_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	pid_t pid = (pid_t)(intptr_t)ctx;
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n;

	if (!addr)
		return -EFAULT;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

#define READV_MAX 64	/* spans a call (IOV_MAX is 1024) */

/*
 * process_vm_readv stops at the first remote span it cannot read whole: that one failed, and the
 * rest is asked again in a call of its own.
 */
static void procmem_readv(void *ctx, struct mem_span *v, unsigned n)
{
	pid_t pid = (pid_t)(intptr_t)ctx;
	struct iovec local[READV_MAX], remote[READV_MAX];
	unsigned i = 0;

	while (i < n) {
		unsigned k, m = n - i < READV_MAX ? n - i : READV_MAX;
		ssize_t got;

		for (k = 0; k < m; k++) {
			local[k] = (struct iovec){ .iov_base = v[i + k].buf, .iov_len = v[i + k].len };
			remote[k] = (struct iovec){ .iov_base = (void *)(uintptr_t)v[i + k].addr, .iov_len = v[i + k].len };
		}
		got = v[i].addr ? process_vm_readv(pid, local, m, remote, m, 0) : 0;
		if (got < 0) {
			int err = -errno;

			if (err != -EFAULT) {	/* the process, not a span: none can be read */
				for (; i < n; i++)
					v[i].err = err;
				return;
			}
			got = 0;
		}
		for (k = 0; k < m && (size_t)got >= v[i + k].len; k++) {
			got -= (ssize_t)v[i + k].len;
			v[i + k].err = 0;
		}
		if (k < m)
			v[i + k++].err = -EFAULT;	/* read in part, or not at all */
		i += k;
	}
}

void procmem__reader(struct mem_reader *mr, pid_t pid)
{
	mr->read = procmem_read;
	mr->ctx = (void *)(intptr_t)pid;
	mr->readv = procmem_readv;
}
