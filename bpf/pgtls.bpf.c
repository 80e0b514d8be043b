// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The plaintext of encrypted PostgreSQL connections of drivers without libpq (asyncpg, pg8000),
 * for the wire reader (pgwire.bpf.h). Python's ssl module hands OpenSSL the bytes to encrypt
 * (SSL_write_ex; SSL_write before 3.10) and takes the bytes decrypted (SSL_read_ex, SSL_read),
 * whether the socket is its own (pg8000's blocking SSLSocket) or asyncio's memory BIOs
 * (asyncpg): these probes give the wire reader those bytes as the syscalls' program gives a
 * plain socket's. The loader attaches them, with a BPF cookie naming the function (enum
 * pg_tls_fn), to one process at a time: one whose connection turned encrypted and which has no
 * libpq (libpq's own probes serve libpq's connections, src/libpq.c). It loads this object with
 * the first such process, so that a run without one verifies none of it.
 *
 * A write traps once (its entry, about 1 us here), a read twice (entry and return, 1.7 us more:
 * its arguments are kept at the entry, its bytes read at the return).
 *
 * A TLS object is a connection of its own, keyed (pid, pg_tls_fd(ssl)). It becomes PostgreSQL's
 * at a StartupMessage (its first plaintext), or, for one opened before tracing, at a write that
 * is a chain of frontend messages (as on a socket); other TLS traffic of the process (HTTPS)
 * is looked at and left. SSL_free ends it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "pgwire.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* A call in progress: its arguments, from its entry to its return (by thread). */
struct tls_call {
	__u64 ssl, buf;
	__u64 done;		/* the _ex functions' size_t * of bytes moved; 0: the return value says */
	__u32 kind;		/* enum pg_tls_fn */
	__u32 pad;
};

/* LRU: a call whose return never comes (its thread killed inside it) must not fill it up */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct tls_call);
} pg_tls_calls SEC(".maps");

/* A StartupMessage (protocol 3.0) at the start of buf: a TLS object's first plaintext. */
static __always_inline bool startup_msg(__u64 buf, __u32 len)
{
	__u8 h[8];
	__u32 mlen;

	if (len < 8 || bpf_probe_read_user(h, 8, (void *)buf))
		return false;
	mlen = be32(h);
	return be32(h + 4) == PG_PROTO_V3 && mlen >= 8 && mlen <= 10000;
}

/* The entry of SSL_read(_ex): its arguments, for its return; of SSL_free: its connection ends. */
SEC("uprobe")
int pgtls_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 kind = (__u32)bpf_get_attach_cookie(ctx);
	struct tls_call a = {
		.ssl = PT_REGS_PARM1(ctx), .buf = PT_REGS_PARM2(ctx), .kind = kind,
		.done = kind == PG_TLS_READ_EX ? PT_REGS_PARM4(ctx) : 0,
	};

	if (kind == PG_TLS_FREE) {
		struct pg_conn_key key = { .pid = id >> 32, .fd = pg_tls_fd(a.ssl) };

		return pg_close(key);
	}
	bpf_map_update_elem(&pg_tls_calls, &id, &a, BPF_ANY);
	return 0;
}

/*
 * The bytes: at the entry of SSL_write(_ex), all num of them (a write succeeds whole, or fails
 * and is retried with the same bytes: Python's memory BIOs never fail, its blocking sockets
 * wait; a retry after SSL_ERROR_WANT_WRITE on a non-blocking one is read twice and costs that
 * connection's framing until it resynchronizes), which saves a return probe per statement; at
 * the return of SSL_read(_ex), those it read.
 */
SEC("uprobe")
int pgtls_data(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), n = 0;
	__u32 kind = (__u32)bpf_get_attach_cookie(ctx);
	struct pg_conn_key key = { .pid = id >> 32 };
	struct tls_call *ap, a;
	struct pg_conn *c;
	struct chunk ch;
	__u16 eflags = 0;
	__u8 dir;

	if (kind == PG_TLS_WRITE || kind == PG_TLS_WRITE_EX) {
		a.ssl = PT_REGS_PARM1(ctx);
		a.buf = PT_REGS_PARM2(ctx);
		n = kind == PG_TLS_WRITE ? (__u64)(int)PT_REGS_PARM3(ctx) : PT_REGS_PARM3(ctx);
		dir = PG_DIR_CLIENT;
	} else {
		long ret = PT_REGS_RC(ctx);

		ap = bpf_map_lookup_elem(&pg_tls_calls, &id);
		if (!ap)
			return 0;
		a = *ap;
		bpf_map_delete_elem(&pg_tls_calls, &id);
		if (a.done) {
			if (ret != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)a.done))
				return 0;
		} else {
			if (ret <= 0)
				return 0;
			n = ret;
		}
		dir = PG_DIR_SERVER;
	}
	if (!n || n > 0x7fffffff)
		return 0;
	key.fd = pg_tls_fd(a.ssl);
	ch.buf = a.buf;
	ch.len = n;
	c = bpf_map_lookup_elem(&pg_conns, &key);
	if (!c) {
		__u32 state = PG_ST_CANDIDATE;

		if (dir != PG_DIR_CLIENT)
			return 0;
		if (!startup_msg(ch.buf, ch.len)) {
			if (!pg_chain(ch.buf, ch.len, PG_DIR_CLIENT))
				return 0;	/* not PostgreSQL (HTTPS, ...), or not recognisable yet */
			state = PG_ST_STREAM;
			eflags = PG_EF_MIDSTREAM;
		}
		if (bpf_map_update_elem(&pg_conns, &key, state == PG_ST_STREAM ? &pg_conn_new[PG_ST_STREAM] :
					&pg_conn_new[PG_ST_CANDIDATE], BPF_NOEXIST)) {
			pt_count(PT_CNT_PG_CONN_DROPPED);
			return 0;
		}
		c = bpf_map_lookup_elem(&pg_conns, &key);
		if (!c)
			return 0;
	}
	if (c->state == PG_ST_OTHER || c->state == PG_ST_TLS)
		return 0;
	return pg_chunk((__u64)key.pid << 32 | (__u32)key.fd, c, ch.buf, n << 32 | ch.len, dir | (__u32)eflags << 8);
}
