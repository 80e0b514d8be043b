// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * PostgreSQL's frontend/backend protocol (v3) read on the socket syscalls of traced processes:
 * every driver (libpq's, asyncpg, pg8000), no uprobe trap. See include/pg.h for what is sent.
 *
 * A connection is followed from its connect() (TCP or unix socket) by a traced process; its first
 * write says whether it is PostgreSQL (StartupMessage, SSLRequest, GSSENCRequest). A connection
 * opened before tracing began is recognised at a write that is a short chain of well-formed
 * frontend messages ending exactly at the write's end (pg_midstream). An SSLRequest answered 'S'
 * makes the connection encrypted: nothing more is read from it here.
 *
 * Each direction is framed: the 5-byte header (type, length) of each message is read, the body
 * is skipped by its length, across reads; a header split across two reads is kept in the
 * connection's state. Framing that goes wrong (a length below 4 or absurd, more messages than
 * one pass walks) marks the connection lost until a chunk starts with a chain of messages again.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "pgwire.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Sockets not followed whose writes were not PostgreSQL's: the HTTP server's own connections
 * (accepted: never a client's), and connections from before tracing to Redis, to other services.
 * Each of their writes would be tested as a chain of frontend messages (pg_chain: about 0.5 us a
 * write). After NOTPG_TRIES writes in a row fail the test, only one write in NOTPG_SKIP + 1 is
 * tested: a connection from before tracing that is PostgreSQL's after all (its first writes cut
 * mid-message: a long statement, a COPY) is then recognised within that many writes. An LRU map:
 * an entry evicted only costs the tests again. connect() and close() end an entry: a new
 * connection on the same fd is followed from its start (pg_conns), never tested here.
 */
#define NOTPG_TRIES	8
#define NOTPG_SKIP	63

struct pg_notpg {
	__u32 fails;		/* writes in a row that failed the test */
	__u32 skip;		/* writes left to let through untested */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct pg_conn_key);
	__type(value, struct pg_notpg);
} pg_notpg SEC(".maps");

/* A write on a socket not followed failed the test: count it, and rest the socket after a few. */
static __always_inline void not_pg(struct pg_conn_key *key, struct pg_notpg *np)
{
	struct pg_notpg first = { .fails = 1 };

	if (!np) {
		bpf_map_update_elem(&pg_notpg, key, &first, BPF_ANY);
		return;
	}
	if (++np->fails >= NOTPG_TRIES)
		np->skip = NOTPG_SKIP;
}

/*
 * A traced process writes a TLS record (application data) on a socket not followed: perhaps an
 * encrypted PostgreSQL connection opened before tracing, which only the TLS library's probes
 * can read (pgtls.bpf.c). Told once per socket, which is then ignored until closed.
 */
static __always_inline void tls_seen(struct pg_conn_key key, __u32 tid, struct chunk *ch)
{
	struct pg_event *e;
	__u8 h[5];

	if (ch->len < 5 || bpf_probe_read_user(h, 5, (void *)ch->buf) || h[0] != 0x17 || h[1] != 3 || h[2] > 4 ||
	    5 + ((__u32)h[3] << 8 | h[4]) > ch->len)
		return;
	if (bpf_map_update_elem(&pg_conns, &key, &pg_conn_new[PG_ST_OTHER], BPF_NOEXIST))
		return;
	e = event(PT_EV_PG_TLS_SEEN, key.pid, tid, key.fd, PG_DIR_CLIENT, ch->len);
	if (e)
		send_bare(e, 0);
}

static __always_inline int on_exit(long nr, struct pt_regs *regs, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	struct pg_conn_key key = { .pid = pid, .fd = (__s32)regs->di };
	struct pg_conn *c;
	struct pg_event *e;
	struct chunk ch;
	__u8 dir = is_read(nr) ? PG_DIR_SERVER : PG_DIR_CLIENT;
	__u16 eflags = 0;

	if (ret <= 0)
		return 0;
	PT_PHASE(PG_PH_START);
	c = bpf_map_lookup_elem(&pg_conns, &key);
	if (!c) {
		struct pg_notpg *np;

		/* A connection from before tracing: only a traced process's write can make it one. */
		if (dir != PG_DIR_CLIENT || !pt_is_tracked(pid))
			return 0;
		np = bpf_map_lookup_elem(&pg_notpg, &key);
		if (np && np->skip) {
			np->skip--;
			return 0;
		}
		ch = chunk_of(nr, regs, ret);
		if (!ch.buf || ch.len != (__u32)ret)
			return 0;
		if (!pg_chain(ch.buf, ch.len, PG_DIR_CLIENT)) {
			tls_seen(key, tid, &ch);
			not_pg(&key, np);
			return 0;
		}
		if (np)
			bpf_map_delete_elem(&pg_notpg, &key);
		if (bpf_map_update_elem(&pg_conns, &key, &pg_conn_new[PG_ST_STREAM], BPF_NOEXIST)) {
			pt_count(PT_CNT_PG_CONN_DROPPED);
			return 0;
		}
		c = bpf_map_lookup_elem(&pg_conns, &key);
		if (!c)
			return 0;
		eflags = PG_EF_MIDSTREAM;
	} else {
		if (c->state == PG_ST_OTHER)
			return 0;
		if (c->state == PG_ST_TLS) {
			/* Encrypted: only which PGconn it is, for libpq's probes to serve it alone. */
			__u64 pq = dir == PG_DIR_CLIENT ? pt_pqconn_now(bpf_ktime_get_ns()) : 0;

			if (pq && pq != c->pqconn) {
				c->pqconn = pq;
				e = event(PT_EV_PG_CONN, pid, tid, key.fd, PG_DIR_CLIENT, ret);
				if (e)
					send_bare(e, PG_EF_TLS);
			}
			return 0;
		}
		ch = chunk_of(nr, regs, ret);
		if (!ch.buf)
			return 0;
	}
	return pg_chunk((__u64)key.pid << 32 | (__u32)key.fd, c, ch.buf, (__u64)(__u32)ret << 32 | ch.len, dir | (__u32)eflags << 8);
}

/* connect() by a traced process, to a TCP or unix-domain address: a candidate. */
static __always_inline int on_connect(struct pt_regs *regs, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	struct pg_conn_key key = { .pid = pid, .fd = (__s32)regs->di };
	__u16 family = 0;

	if ((ret && ret != -EINPROGRESS) || !pt_is_tracked(pid))
		return 0;
	bpf_probe_read_user(&family, sizeof(family), (void *)regs->si);
	if (family != AF_INET && family != AF_INET6 && family != AF_UNIX)
		return 0;
	if (bpf_map_update_elem(&pg_conns, &key, &pg_conn_new[PG_ST_CANDIDATE], BPF_ANY))
		pt_count(PT_CNT_PG_CONN_DROPPED);
	bpf_map_delete_elem(&pg_notpg, &key);
	return 0;
}

/*
 * uvloop's transport.write() (uvloop.bpf.h), in the task that queues a statement (asyncpg's
 * protocol writes through it): the writer's stack is walked now and noted on the connection, for
 * the client chunk that a loop callback sends later (walk_stack). A connection from before tracing
 * is not one yet at its first statement: that one keeps the loop's stack.
 */
SEC("uprobe")
int uvloop_write_pg(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32, zero = 0;
	struct pg_conn_key key = { .pid = pid };
	struct pt_proc *proc;
	struct pt_stack *st;
	struct pg_conn *c;

	if (!call_sites || !pt_is_tracked(pid))
		return 0;
	key.fd = pt_uv_fd(PT_REGS_PARM1(ctx));
	if (key.fd < 0)
		return 0;
	c = bpf_map_lookup_elem(&pg_conns, &key);
	if (!c || (c->state != PG_ST_STREAM && c->state != PG_ST_LOST))
		return 0;
	proc = bpf_map_lookup_elem(&procs, &pid);
	st = bpf_map_lookup_elem(&pg_stack_buf, &zero);
	if (!proc || !st)
		return 0;
	c->q_stack = stack_put(proc, st);
	c->q_task = st->task_frame;
	c->q_root = st->root_frame;
	c->q_ts = bpf_ktime_get_ns();
	if (st->text_frame)
		text_send(proc, st, pid, key.fd);
	return 0;
}

static __always_inline int on_close(__s32 fd)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct pg_conn_key key = { .pid = pid, .fd = fd };

	if (!pt_may_be_tracked(pid))
		return 0;
	bpf_map_delete_elem(&pg_notpg, &key);
	return pg_close(key);
}

/*
 * One program for the return of every read and write syscall followed: the loader attaches it
 * to each one's tracepoint (the syscall's number is in the context), so the verifier checks it
 * once instead of once per syscall (eight copies took it 1.3 s of CPU at start).
 */
SEC("tracepoint")
int pg_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	long nr = ctx->id;

	/* Every process's reads and writes come here: the cheapest test first. */
	if (ctx->ret <= 0 || !pt_may_be_tracked(bpf_get_current_pid_tgid() >> 32))
		return 0;
	switch (nr) {
	case NR_read: case NR_recvfrom: case NR_readv: case NR_recvmsg:
	case NR_write: case NR_sendto: case NR_writev: case NR_sendmsg:
		return on_exit(nr, (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf()), ctx->ret);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int pg_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	return on_connect((struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf()), ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int pg_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	return on_close((__s32)ctx->args[0]);
}
