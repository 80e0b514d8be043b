/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * uvloop's UVStream.write(self, data), a METH_O C function whose address src/uvwrite.c finds in
 * each process that imports uvloop. uvloop buffers a small write, and a loop callback flushes it
 * after the ready callbacks have run: the write syscall of a response, or of asyncpg's statement,
 * happens outside the task that made it, where no stack names that task or the statement's call
 * site. A probe here runs in the task, as the bytes are queued; it notes the writer's stack on
 * the connection for the write syscall that sends them (http.bpf.c, pgwire.bpf.c).
 *
 * The connection's fd is read from the transport: a Cython extension type whose first field, after
 * the object's head and its vtable pointer, is its libuv handle (uv_handle_t *). In libuv 1.x's
 * public structs, a handle begins with `void *data` (uvloop points it back at the transport) and
 * its type at byte 16 (UV_TCP, or UV_NAMED_PIPE for a unix socket), and a stream's fd is
 * io_watcher.fd, at byte 184 on x86_64. The handle is taken only if it points back at the
 * transport and has one of those types: another layout is not read as a socket.
 */
#ifndef PYTRACE_UVLOOP_BPF_H
#define PYTRACE_UVLOOP_BPF_H

const volatile __u32 uv_handle_off = 24;
const volatile __u32 uv_fd_off = 184;

/* How long a queued write's writer is kept for the syscall that sends it. */
#define PT_UV_QUEUED_TTL_NS 1000000000ULL

#define PT_UV_NAMED_PIPE	7	/* uv_handle_type (uv.h), stable in libuv 1.x */
#define PT_UV_TCP		12

struct pt_uv_handle_head {
	__u64 data;		/* uv_handle_t.data: uvloop's transport */
	__u64 loop;
	__u32 type;		/* uv_handle_type */
};

/* The fd of uvloop transport t, or -1. */
static __always_inline __s32 pt_uv_fd(__u64 t)
{
	struct pt_uv_handle_head h;
	__u64 handle = 0;
	__s32 fd = -1;

	if (bpf_probe_read_user(&handle, sizeof(handle), (void *)(t + uv_handle_off)) || !handle ||
	    bpf_probe_read_user(&h, sizeof(h), (void *)handle) || h.data != t ||
	    (h.type != PT_UV_TCP && h.type != PT_UV_NAMED_PIPE) ||
	    bpf_probe_read_user(&fd, sizeof(fd), (void *)(handle + uv_fd_off)))
		return -1;
	return fd;
}

#endif
