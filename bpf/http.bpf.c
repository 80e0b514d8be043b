// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * HTTP/1.x request boundaries from the socket syscalls of traced processes (syscall
 * tracepoints, no kprobes). A connection is followed from its accept() to its
 * close(); a read on it that starts with a method token starts a request, a write that starts
 * with "HTTP/1." starts its response. Only a small prefix of such buffers is copied; the loader
 * parses it and assembles requests (src/requests.c). Other writes only move the connection's
 * last-write time, which rides along on the next event.
 *
 * Reads and writes are handled at their return alone, with one map lookup: the arguments are
 * still in the registers the task entered the kernel with (bpf_task_pt_regs), and a connection
 * is in `conns` only if a traced process accepted it. Most of these syscalls are ones this file
 * does not follow (a service's database traffic, the database server's own), and their cost is
 * the cold map lookups: one per syscall, where an entry and a return program took two or three.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "pytrace.h"
#include "http.h"
#include "maps.bpf.h"
#include "pystack.bpf.h"
#include "uvloop.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* x86_64 syscall numbers */
#define NR_read		0
#define NR_write	1
#define NR_close	3
#define NR_readv	19
#define NR_writev	20
#define NR_sendfile	40
#define NR_accept	43
#define NR_sendto	44
#define NR_recvfrom	45
#define NR_sendmsg	46
#define NR_recvmsg	47
#define NR_accept4	288

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HTTP_MAX_CONNS);
	__type(key, struct http_conn_key);
	__type(value, struct http_conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct http_event);
} ev_buf SEC(".maps");

/* The writer's stack at a response's start: only who runs it is kept (task_keys). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pt_stack);
} resp_stack SEC(".maps");

/* user_msghdr.msg_iov */
#define MSGHDR_IOV_OFF	16

static __always_inline __u64 first_iov_base(__u64 iov)
{
	__u64 base = 0;

	bpf_probe_read_user(&base, sizeof(base), (void *)iov);
	return base;
}

static __always_inline bool is_socket_call(long nr)
{
	switch (nr) {
	case NR_read: case NR_write: case NR_close: case NR_readv: case NR_writev: case NR_sendfile:
	case NR_accept: case NR_sendto: case NR_recvfrom: case NR_sendmsg: case NR_recvmsg: case NR_accept4:
		return true;
	}
	return false;
}

/*
 * close(): at the entry, while the fd is still this connection's; at the return, another thread
 * could already have accepted a new connection on the same number.
 */
static __always_inline int on_close(__s32 fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, zero = 0;
	struct http_conn_key key = { .pid = pid, .fd = fd };
	struct http_conn *conn;
	struct http_event *e;

	if (!pt_may_be_tracked(pid))
		return 0;	/* its connections, if any, go when the loader forgets it */
	conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn)
		return 0;
	e = bpf_map_lookup_elem(&ev_buf, &zero);
	if (e) {
		e->hdr.type = PT_EV_HTTP_CLOSE;
		e->hdr.pid = pid;
		e->tid = (__u32)id;
		e->fd = fd;
		e->ts = bpf_ktime_get_ns();
		e->last_write_ts = conn->last_write_ts;
		e->resp_bytes = conn->resp_bytes;
		e->flags = 0;
		e->len = 0;
		e->data_len = 0;
		e->pad = 0;
		e->task_frame = 0;
		e->root_frame = 0;
		e->route_obj = 0;
		e->server_obj = 0;
		e->host_frame = 0;
		if (bpf_ringbuf_output(&events, e, offsetof(struct http_event, data), pt_rb_flags()))
			pt_count(PT_CNT_HTTP_LOST);
	}
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* "GET ", "POST", "PUT ", "HEAD", "DELE", "PATC", "OPTI", "CONN", "TRAC": first 4 bytes. */
static __always_inline bool is_method(__u32 w)
{
	switch (w) {
	case 0x20544547:	/* "GET " */
	case 0x54534f50:	/* "POST" */
	case 0x20545550:	/* "PUT " */
	case 0x44414548:	/* "HEAD" */
	case 0x454c4544:	/* "DELE" */
	case 0x43544150:	/* "PATC" */
	case 0x4954504f:	/* "OPTI" */
	case 0x4e4e4f43:	/* "CONN" */
	case 0x43415254:	/* "TRAC" */
		return true;
	}
	return false;
}

/*
 * uWSGI's request packet (its binary protocol, which nginx's uwsgi_pass and uWSGI's own router
 * speak to the workers): modifier1 0 (a WSGI request), its vars' size (little-endian), modifier2
 * 0, then the vars, each a 16-bit length and bytes; the first var's key has a byte or more.
 */
static __always_inline bool is_uwsgi(__u32 head, long ret)
{
	__u32 size = (head >> 8) & 0xffff;

	return (head & 0xff) == 0 && (head >> 24) == 0 && size >= 6 && ret >= 8;
}

/*
 * Which task or greenlet writes a response: the writer's Python stack is walked for its
 * outermost coroutine frame and outermost frame (pystack.bpf.h), so that the loader can give the
 * response the statements that the same task sent (src/requests.h). One walk per response.
 */
static __always_inline void task_keys(struct http_event *e, __u32 pid, struct http_conn *conn)
{
	struct pt_proc *proc = bpf_map_lookup_elem(&procs, &pid);
	struct pt_stack *st;
	__u32 zero = 0;

	/* queued by transport.write() in the task, written now by the loop (uvloop_write below) */
	if (conn->w_ts && e->ts - conn->w_ts < PT_UV_QUEUED_TTL_NS) {
		e->task_frame = conn->w_task;
		e->root_frame = conn->w_root;
		e->route_obj = conn->w_route;
		e->server_obj = conn->w_server;
		e->host_frame = conn->w_host;
		conn->w_ts = 0;
		pt_count(PT_CNT_HTTP_QUEUED);
		return;
	}
	e->task_frame = 0;
	e->root_frame = 0;
	e->route_obj = 0;
	e->server_obj = 0;
	e->host_frame = 0;
	if (!proc)
		return;
	st = bpf_map_lookup_elem(&resp_stack, &zero);
	if (!st)
		return;
	st->flags = 0;
	pt_walk_stack(bpf_get_current_task_btf(), proc, st, 0);
	e->task_frame = st->task_frame;
	e->root_frame = st->root_frame;
	e->route_obj = st->route_obj;
	e->server_obj = st->server_obj;
	e->host_frame = st->host_frame;
}

/* The event buffer with everything but the data filled in; NULL: none. */
static __always_inline struct http_event *ev_head(__u32 type, __u32 pid, __u32 tid, __s32 fd, __u64 ts,
						  struct http_conn *conn, __u32 flags, __u64 len)
{
	struct http_event *e;
	__u32 zero = 0;

	e = bpf_map_lookup_elem(&ev_buf, &zero);
	if (!e)
		return NULL;
	e->hdr.type = type;
	e->hdr.pid = pid;
	e->tid = tid;
	e->fd = fd;
	e->ts = ts;
	e->last_write_ts = conn->last_write_ts;
	e->resp_bytes = conn->resp_bytes;
	e->flags = flags;
	e->len = len;
	e->pad = 0;
	if (type == PT_EV_HTTP_RESP) {
		task_keys(e, pid, conn);
	} else {
		e->task_frame = 0;
		e->root_frame = 0;
		e->route_obj = 0;
		e->server_obj = 0;
		e->host_frame = 0;
	}
	return e;
}

static __always_inline void ev_send(struct http_event *e, __u64 n)
{
	e->data_len = n;
	if (bpf_ringbuf_output(&events, e, offsetof(struct http_event, data) + n, pt_rb_flags()))
		pt_count(PT_CNT_HTTP_LOST);
}

static __always_inline void emit(__u32 type, __u32 pid, __u32 tid, __s32 fd, __u64 ts,
				 struct http_conn *conn, __u32 flags, __u64 len, __u64 buf, __u64 cap)
{
	struct http_event *e;
	__u64 n = len < cap ? len : cap;

	e = ev_head(type, pid, tid, fd, ts, conn, flags, len);
	if (!e)
		return;
	/* keep the verifier's view of n bounded: the compiler would reuse len */
	asm volatile("" : "+r"(n));
	if (n > HTTP_PREFIX_MAX)
		n = HTTP_PREFIX_MAX;
	if (bpf_probe_read_user(e->data, n, (void *)buf))
		n = 0;
	ev_send(e, n);
}

/*
 * A uWSGI request packet's vars. The ones the loader parses (the method, the target, the
 * protocol) may lie anywhere in it: nginx's uwsgi_params sends QUERY_STRING first and
 * REQUEST_URI, which holds the query again, fifth, so a long query string pushed both past any
 * fixed capture; other front ends send the vars in other orders. The packet's first
 * HTTP_UWSGI_READ bytes are copied with one read and their vars walked here, and the event
 * carries a packet of the wanted vars alone (HTTP_EF_UWSGI), the target last, so that a long
 * one is cut at its end, where its query string is. One ring record a request, where a fixed
 * 512-byte capture took two.
 */
struct uwsgi_buf {
	__u8 pkt[HTTP_UWSGI_READ + 16];	/* slack: a key's first 12 bytes are read at any var */
	__u8 out[512];			/* the packet sent: under 128 bytes, then the target */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct uwsgi_buf);
} uwsgi_bufs SEC(".maps");

enum { UW_METHOD, UW_PROTO, UW_URI, UW_INFO, UW_WANTED };

struct uwsgi_walk {
	struct uwsgi_buf *b;
	__u32 at;			/* the next var's offset in pkt */
	__u32 end;			/* what was read of the packet */
	__u32 var[UW_WANTED];		/* a wanted var's offset in pkt, 0: not seen */
	__u32 vlen[UW_WANTED];		/* its value's length, as the packet says */
};

#define UW_MASK	(HTTP_UWSGI_READ - 1)

/* bpf_loop's callback: one var a call, each a 16-bit key length, the key, a 16-bit value length, the value. */
static long uwsgi_var(__u32 i, void *data)
{
	struct uwsgi_walk *w = data;
	__u32 at = w->at, klen, vat, vlen, k4;
	const __u8 *p;
	__u64 k8;
	int which = -1;

	if (at + 4 > w->end)
		return 1;
	p = w->b->pkt + (at & UW_MASK);
	klen = p[0] | (__u32)p[1] << 8;
	vat = at + 2 + klen;
	if (!klen || vat + 2 > w->end)
		return 1;
	vlen = w->b->pkt[vat & UW_MASK] | (__u32)w->b->pkt[(vat + 1) & UW_MASK] << 8;
	k8 = *(const __u64 *)(p + 2);
	k4 = *(const __u32 *)(p + 10);
	if (k8 == 0x5f54534555514552ULL) {		/* "REQUEST_" */
		if (klen == 14 && k4 == 0x4854454d)	/* "METHOD" */
			which = UW_METHOD;
		else if (klen == 11 && (k4 & 0xffffff) == 0x495255)	/* "URI" */
			which = UW_URI;
	} else if (k8 == 0x464e495f48544150ULL && klen == 9 && (k4 & 0xff) == 'O') {	/* "PATH_INFO" */
		which = UW_INFO;
	} else if (k8 == 0x505f524556524553ULL && klen == 15 && k4 == 0x4f544f52) {	/* "SERVER_PROTOCOL" */
		which = UW_PROTO;
	}
	if (which >= 0) {
		w->var[which & 3] = at;
		w->vlen[which & 3] = vlen;
		/* all it needs (PATH_INFO stands in for a missing REQUEST_URI only): nginx's 8th var */
		if (w->var[UW_METHOD] && w->var[UW_PROTO] && w->var[UW_URI])
			return 1;
	}
	w->at = vat + 2 + vlen;
	return 0;
}

/* Var `which` copied whole to out at o (the target: as much of its value as was read and fits). */
static __always_inline __u32 uwsgi_put(struct uwsgi_walk *w, __u32 o, int which, bool target)
{
	__u32 at = w->var[which & 3], vlen = w->vlen[which & 3], klen, n;

	if (!at)
		return o;
	klen = w->b->pkt[at & UW_MASK] | (__u32)w->b->pkt[(at + 1) & UW_MASK] << 8;
	n = 4 + klen + vlen;
	if (at + n > w->end) {
		if (!target)
			return o;	/* a method or protocol cut off: left out, the loader says why */
		n = w->end - at;
	}
	if (target && o + n > HTTP_PREFIX_MAX)
		n = HTTP_PREFIX_MAX - o;
	o &= 127;
	n &= 511;
	if (n > 256)
		return o;
	bpf_probe_read_kernel(w->b->out + o, n, w->b->pkt + (at & UW_MASK));
	return o + n;
}

__noinline int uwsgi_request(struct http_conn *conn, __u64 id, __s32 fd, __u64 buf, long ret)
{
	struct uwsgi_walk w = {};
	struct http_event *e;
	__u32 zero = 0, o, size, n, tgt;
	__u64 len, rd;

	if (!conn)
		return 0;
	w.b = bpf_map_lookup_elem(&uwsgi_bufs, &zero);
	if (!w.b)
		return 0;
	rd = ret < HTTP_UWSGI_READ ? ret : HTTP_UWSGI_READ;
	asm volatile("" : "+r"(rd));
	rd &= 2 * HTTP_UWSGI_READ - 1;
	if (rd > HTTP_UWSGI_READ || bpf_probe_read_user(w.b->pkt, rd, (void *)buf))
		return 0;
	n = rd;
	size = w.b->pkt[1] | (__u32)w.b->pkt[2] << 8;
	w.end = 4 + size < n ? 4 + size : n;
	w.at = 4;
	bpf_loop(HTTP_UWSGI_VARS, uwsgi_var, &w, 0);

	/* the method (a token, at most 15 bytes) and the protocol ("HTTP/1.x") whole, or not at all */
	if (w.vlen[UW_METHOD] > 15)
		w.var[UW_METHOD] = 0;
	if (w.vlen[UW_PROTO] != 8)
		w.var[UW_PROTO] = 0;
	o = uwsgi_put(&w, 4, UW_METHOD, false);
	o = uwsgi_put(&w, o, UW_PROTO, false);
	tgt = w.var[UW_URI] ? UW_URI : UW_INFO;
	/* the packet's size had the target been sent whole, so that the loader sees a cut one as cut */
	size = o - 4;
	if (w.var[tgt & 3])
		size += 4 + (w.b->pkt[w.var[tgt & 3] & UW_MASK] | (__u32)w.b->pkt[(w.var[tgt & 3] + 1) & UW_MASK] << 8) +
			w.vlen[tgt & 3];
	o = uwsgi_put(&w, o, tgt, true);
	w.b->out[0] = 0;
	w.b->out[1] = size & 0xff;
	w.b->out[2] = size >> 8;
	w.b->out[3] = 0;
	len = 4 + size;
	e = ev_head(PT_EV_HTTP_REQ, id >> 32, (__u32)id, fd, bpf_ktime_get_ns(), conn, HTTP_EF_UWSGI, len);
	if (!e)
		return 0;
	n = o < HTTP_PREFIX_MAX ? o : HTTP_PREFIX_MAX;
	asm volatile("" : "+r"(n));
	if (n > HTTP_PREFIX_MAX)
		return 0;
	if (bpf_probe_read_kernel(e->data, n, w.b->out))
		return 0;
	ev_send(e, n);
	return 0;
}

static __always_inline bool is_read(long nr)
{
	return nr == NR_read || nr == NR_recvfrom || nr == NR_readv || nr == NR_recvmsg;
}

/*
 * Return of a socket syscall. regs are the task's registers as it entered the kernel: di is the
 * fd (or the listening socket), si the buffer (or iovec, or msghdr).
 */
static __always_inline int on_exit(long nr, struct pt_regs *regs, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id, head = 0;
	struct http_conn_key key = { .pid = pid };
	struct http_conn *conn;
	__u64 now, buf, msg = 0;

	if (ret <= 0)
		return 0;
	if (nr == NR_accept || nr == NR_accept4) {
		struct http_conn nc = {};

		if (!pt_is_tracked(pid))
			return 0;
		nc.accept_ts = bpf_ktime_get_ns();
		key.fd = (__s32)ret;
		if (bpf_map_update_elem(&conns, &key, &nc, BPF_ANY))
			pt_count(PT_CNT_HTTP_CONN_DROPPED);
		return 0;
	}
	/* The one lookup every other process's syscall pays: conns holds traced processes' only. */
	key.fd = (__s32)regs->di;
	conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn)
		return 0;
	now = bpf_ktime_get_ns();
	buf = regs->si;
	switch (nr) {
	case NR_readv:
	case NR_writev:
		buf = first_iov_base(buf);
		break;
	case NR_recvmsg:
	case NR_sendmsg:
		bpf_probe_read_user(&msg, sizeof(msg), (void *)(buf + MSGHDR_IOV_OFF));
		buf = msg ? first_iov_base(msg) : 0;
		break;
	case NR_sendfile:
		buf = 0;	/* file data: no status line in it */
		break;
	}
	if (buf && ret >= 4)
		bpf_probe_read_user(&head, sizeof(head), (void *)buf);
	if (is_read(nr)) {
		if (is_method(head)) {
			emit(PT_EV_HTTP_REQ, pid, tid, key.fd, now, conn, 0, ret, buf, HTTP_PREFIX_MAX);
			conn->phase = HTTP_PH_REQ;
			conn->cont_left = HTTP_CONT_READS;
		} else if (conn->phase != HTTP_PH_REQ && is_uwsgi(head, ret)) {
			uwsgi_request(conn, id, key.fd, buf, ret);
			/* the event has what the loader parses: the body's reads are not sent */
			conn->phase = HTTP_PH_REQ;
			conn->cont_left = 0;
		} else if (ret < 8 && conn->phase != HTTP_PH_REQ) {
			emit(PT_EV_HTTP_REQ, pid, tid, key.fd, now, conn, HTTP_EF_MAYBE, ret, buf, HTTP_PREFIX_MAX);
			conn->phase = HTTP_PH_REQ;
			conn->cont_left = HTTP_CONT_READS;
		} else if (conn->phase == HTTP_PH_REQ && conn->cont_left) {
			emit(PT_EV_HTTP_DATA, pid, tid, key.fd, now, conn, 0, ret, buf, HTTP_PREFIX_MAX);
			conn->cont_left--;
		}
	} else {
		/* "HTTP" then "/1." */
		if (head == 0x50545448) {
			emit(PT_EV_HTTP_RESP, pid, tid, key.fd, now, conn, 0, ret, buf, HTTP_STATUS_PREFIX);
			conn->phase = HTTP_PH_RESP;
			conn->resp_bytes = 0;
		}
		conn->last_write_ts = now;
		conn->resp_bytes += ret;
	}
	return 0;
}

/*
 * uvloop's transport.write() (uvloop.bpf.h): a response's start ("HTTP/1.", in a bytes object) is
 * seen as it is queued in its task, whose keys are noted on the connection for the write that
 * sends it (task_keys).
 */
const volatile __u32 bytes_data_off = 32;	/* PyBytesObject.ob_sval, 3.8-3.15 */

SEC("uprobe")
int uvloop_write(struct pt_regs *ctx)
{
	__u64 transport = PT_REGS_PARM1(ctx), data = PT_REGS_PARM2(ctx);
	__u32 pid = bpf_get_current_pid_tgid() >> 32, zero = 0;
	struct http_conn_key key = { .pid = pid };
	struct http_conn *conn;
	struct pt_proc *proc;
	struct pt_stack *st;
	__u64 head = 0;

	if (!pt_is_tracked(pid))
		return 0;
	key.fd = pt_uv_fd(transport);
	if (key.fd < 0)
		return 0;
	conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn)
		return 0;
	/* "HTTP/1." */
	if (bpf_probe_read_user(&head, 7, (void *)(data + bytes_data_off)) || head != 0x2e312f50545448ULL)
		return 0;
	proc = bpf_map_lookup_elem(&procs, &pid);
	st = bpf_map_lookup_elem(&resp_stack, &zero);
	if (!proc || !st)
		return 0;
	st->flags = 0;
	pt_walk_stack(bpf_get_current_task_btf(), proc, st, 0);
	conn->w_task = st->task_frame;
	conn->w_root = st->root_frame;
	conn->w_route = st->route_obj;
	conn->w_server = st->server_obj;
	conn->w_host = st->host_frame;
	conn->w_ts = bpf_ktime_get_ns();
	return 0;
}

/*
 * Two ways in. Per-syscall tracepoints (tracefs): only these syscalls run a program, and only at
 * their return (close at its entry). Raw syscall tracepoints (no tracefs needed): every syscall
 * of the host runs both, the number tested first. The loader loads one set.
 *
 * The per-syscall way is one program that the loader attaches to the return of each socket
 * syscall followed (src/httptrace.c's exit_syscalls; the syscall's number is in the context), as
 * bpf/pgwire.bpf.c's pg_sys_exit: the verifier checks it once, not once per syscall (eleven
 * programs, four of them walking a stack, took 0.64 s of CPU at every start, this one 0.2 s).
 */
SEC("tracepoint")
int tp_exit_socket(struct trace_event_raw_sys_exit *ctx)
{
	long nr = ctx->id;

	if (ctx->ret <= 0 || !is_socket_call(nr) || nr == NR_close ||
	    !pt_may_be_tracked(bpf_get_current_pid_tgid() >> 32))
		return 0;
	return on_exit(nr, (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf()), ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int tp_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	return on_close((__s32)ctx->args[0]);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(http_sys_enter, struct pt_regs *regs, long nr)
{
	/* Every syscall of the host comes here: the cheapest test first. */
	if (nr != NR_close)
		return 0;
	return on_close((__s32)regs->di);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(http_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;

	if (ret <= 0 || !is_socket_call(nr) || nr == NR_close ||
	    !pt_may_be_tracked(bpf_get_current_pid_tgid() >> 32))
		return 0;
	return on_exit(nr, regs, ret);
}
