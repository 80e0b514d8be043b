/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by the socket syscall programs (bpf/http.bpf.c) and the loader (src/httptrace.c). */
#ifndef PYTRACE_HTTP_H
#define PYTRACE_HTTP_H

#include "pytrace.h"

#define HTTP_PREFIX_MAX	256	/* bytes of a read or write copied to parse a request/status line */
#define HTTP_STATUS_PREFIX 16	/* "HTTP/1.1 200 OK": enough for the status code */
#define HTTP_MAX_CONNS	65536	/* connections followed at once (BPF hash map) */
#define HTTP_CONT_READS	2	/* reads after a request start sent along, for split request lines */

enum http_event_type {
	PT_EV_HTTP_REQ = PT_EV_HTTP_FIRST,	/* a read that starts a request (or may: too short to tell) */
	PT_EV_HTTP_DATA = 33,	/* a later read of the same request (split request lines) */
	PT_EV_HTTP_RESP = 34,	/* a write that starts a response ("HTTP/1.x NNN") */
	PT_EV_HTTP_CLOSE = 35,	/* a followed connection was closed */
};

/* Connection phase, BPF side */
#define HTTP_PH_IDLE	0	/* accepted, or between requests */
#define HTTP_PH_REQ	1	/* reading a request */
#define HTTP_PH_RESP	2	/* writing a response */

/* struct http_event.flags */
#define HTTP_EF_MAYBE	(1u << 0)	/* a read too short to recognize a method in */
/*
 * PT_EV_HTTP_REQ: data is a uWSGI request packet cut down in BPF to the vars the loader parses
 * (REQUEST_METHOD, SERVER_PROTOCOL, then REQUEST_URI or else PATH_INFO, its value last), and len
 * that packet's length had the target been sent whole (bpf/http.bpf.c, uwsgi_request).
 */
#define HTTP_EF_UWSGI	(1u << 1)
#define HTTP_UWSGI_READ	4096	/* bytes of a uWSGI packet walked for its vars (its default buffer-size) */
#define HTTP_UWSGI_VARS	128	/* vars walked at most */

/* Value of the (pid, fd) -> connection map. */
struct http_conn {
	__u64 accept_ts;
	__u64 last_write_ts;	/* the last write of any kind on the connection */
	__u64 resp_bytes;	/* bytes written since the last response start */
	__u32 phase;		/* HTTP_PH_* */
	__u32 cont_left;	/* continuation reads still to send (HTTP_CONT_READS) */
	/*
	 * Who queued the response the connection is about to write, for event loops that write
	 * outside the task (uvloop: a loop callback flushes what transport.write() buffered): the
	 * task keys of the writer's stack at transport.write(), noted by bpf/http.bpf.c's
	 * uvloop_write probe and taken by the write that starts the response. w_ts 0: none.
	 */
	__u64 w_task, w_root, w_route, w_server, w_host, w_ts;
};

struct http_conn_key {
	__u32 pid;
	__s32 fd;
};

struct http_event {
	struct pt_event_hdr hdr;
	__u32 tid;
	__s32 fd;
	__u64 ts;		/* bpf_ktime_get_ns() at the syscall's return */
	__u64 last_write_ts;	/* the connection's last write before this event (0: none) */
	__u64 resp_bytes;	/* bytes written in the response before this event */
	__u32 flags;		/* HTTP_EF_* */
	__u32 len;		/* bytes the syscall moved */
	__u32 data_len;		/* bytes of data[] sent */
	__u32 pad;
	/*
	 * PT_EV_HTTP_RESP: who writes the response (struct pt_stack's task_frame and root_frame,
	 * from the writer's Python stack), 0: unknown. Else 0.
	 */
	__u64 task_frame;
	__u64 root_frame;
	__u64 route_obj;	/* PT_EV_HTTP_RESP: the writer's pt_stack.route_obj, else 0 */
	__u64 server_obj;	/* PT_EV_HTTP_RESP: the writer's pt_stack.server_obj, else 0 */
	__u64 host_frame;	/* PT_EV_HTTP_RESP: the writer's pt_stack.host_frame, else 0 */
	char data[HTTP_PREFIX_MAX];	/* sent cut to data_len */
};

#endif
