/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The PostgreSQL wire protocol's reader, shared by the programs that give it bytes: the socket
 * syscalls' (pgwire.bpf.c) and the TLS library's probes (pgtls.bpf.c). See pgwire.bpf.c.
 */
#ifndef PYTRACE_PGWIRE_BPF_H
#define PYTRACE_PGWIRE_BPF_H

#include "pytrace.h"
#include "pg.h"
#include "maps.bpf.h"

#ifdef PT_PHASES
/*
 * make PHASES=1: where a traced chunk's time goes, summed per CPU (bench/wire_phases.py reads
 * and explains it). Each PT_PHASE(k) adds the time since the previous mark to slot k. Slots: 0-5
 * and 10-15 the phases of client and server chunks (see PG_PH_*), 6 and 16 their counts; 20
 * walks, 21 their frames. Slot 31 holds the last mark's time.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} pg_phases SEC(".maps");

/* subprograms, not inlined: their keys would grow pg_chunk's stack past the calls' 512 bytes */
static __noinline void pg_phase_add(__u32 k, __u64 v)
{
	__u64 *c = bpf_map_lookup_elem(&pg_phases, &k);

	if (c)
		*c += v;
}

static __noinline void pg_phase_mark(__u32 k)
{
	__u32 last = 31;
	__u64 *t = bpf_map_lookup_elem(&pg_phases, &last), now = bpf_ktime_get_ns();

	if (!t)
		return;
	if (k < 31)
		pg_phase_add(k, now - *t);
	*t = now;
}
#define PT_PHASE(k) pg_phase_mark(k)
#define PT_PHASE_ADD(k, v) pg_phase_add(k, v)
#else
#define PT_PHASE(k) do { } while (0)
#define PT_PHASE_ADD(k, v) do { } while (0)
#endif

#include "pystack.bpf.h"
#include "uvloop.bpf.h"

const volatile __u32 text_cap = 1024;	/* statement bytes kept (Query, Parse), NUL included */
const volatile bool call_sites = true;	/* walk the sender's Python stack at a statement's write */
/* and stop at the route frame where the running task is read directly (PT_WALK_CUT): no consumer
 * of the whole stack (--sql-in-flame, the slow log) */
const volatile bool cut_stacks = false;
/*
 * Set by the loader before it first probes a process's libpq (an encrypted connection): until
 * then no thread has a PGconn in pq_current, and a write need not look (a task-storage lookup
 * per statement).
 */
volatile bool libpq_probed;

/* x86_64 syscall numbers */
#define NR_read		0
#define NR_write	1
#define NR_readv	19
#define NR_writev	20
#define NR_sendto	44
#define NR_recvfrom	45
#define NR_sendmsg	46
#define NR_recvmsg	47

#define EINPROGRESS	115
#define AF_UNIX		1
#define AF_INET		2
#define AF_INET6	10

#define PG_PROTO_V3	0x00030000
#define PG_SSLREQ	80877103
#define PG_GSSREQ	80877104
#define PG_CANCEL	80877102
#define PG_LEN_MAX	(1u << 30)	/* PostgreSQL's own limit for a message */
#define MIDSTREAM_MSGS	10

/* pg_conns: in maps.bpf.h (--idle tells a wait on PostgreSQL by it) */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_event);
} pg_ev_buf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_text);
} pg_text_buf SEC(".maps");

/*
 * A chunk of at most PG_LOCAL_MAX bytes (a statement, a short result: nearly every chunk) is
 * copied once and walked here: one user read instead of two or three per message (each read of
 * user memory cost about 100 ns here; see docs/PERFORMANCE.md, "Where a statement's BPF time
 * goes"). PG_LOCAL_SLACK lets a 5-byte header read at a masked offset stay inside.
 */
#define PG_LOCAL_MAX	512
#define PG_LOCAL_SLACK	8

struct pg_local {
	__u8 b[PG_LOCAL_MAX + PG_LOCAL_SLACK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pg_local);
} pg_local_buf SEC(".maps");

/* Python stacks of statements, by hash: sent once, referenced by every statement from there. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct pt_stack);
} pg_stacks SEC(".maps");

/*
 * The stack id this CPU put in (or found in) pg_stacks last: a statement from the same stack
 * (an N+1 loop's) skips the hash lookup, about 150 ns. The entry was the LRU's newest then.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pg_last_stack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pt_stack);
} pg_stack_buf SEC(".maps");

/* user_msghdr.msg_iov */
#define MSGHDR_IOV_OFF	16

struct chunk {
	__u64 buf;
	__u32 len;		/* bytes of buf to walk: what the syscall moved, within the first iovec */
};

static __always_inline bool is_read(long nr)
{
	return nr == NR_read || nr == NR_recvfrom || nr == NR_readv || nr == NR_recvmsg;
}

/* Where the bytes are: the buffer, or the first iovec's (writev, sendmsg, ...). */
static __always_inline struct chunk chunk_of(long nr, struct pt_regs *regs, long ret)
{
	struct chunk c = { .buf = regs->si, .len = ret };
	struct { __u64 base, len; } iov = {};
	__u64 msg = 0;

	switch (nr) {
	case NR_recvmsg:
	case NR_sendmsg:
		bpf_probe_read_user(&msg, sizeof(msg), (void *)(c.buf + MSGHDR_IOV_OFF));
		c.buf = msg;
		/* fall through: msg_iov is an iovec array */
	case NR_readv:
	case NR_writev:
		if (!c.buf || bpf_probe_read_user(&iov, sizeof(iov), (void *)c.buf))
			iov.base = iov.len = 0;
		c.buf = iov.base;
		if (iov.len < c.len)
			c.len = iov.len;
		break;
	}
	return c;
}

static __always_inline __u32 be32(const __u8 *p)
{
	return ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | p[3];
}

static __always_inline bool frontend_type(__u8 t)
{
	switch (t) {
	case 'Q': case 'P': case 'B': case 'E': case 'S': case 'H': case 'D': case 'C': case 'X':
	case 'd': case 'c': case 'f': case 'F': case 'p':
		return true;
	}
	return false;
}

static __always_inline bool backend_type(__u8 t)
{
	switch (t) {
	case 'R': case 'K': case 'S': case 'Z': case 'C': case 'D': case 'E': case 'N': case 'A':
	case 'T': case 't': case 'n': case '1': case '2': case '3': case 'I': case 's': case 'G':
	case 'H': case 'W': case 'd': case 'c': case 'V': case 'v':
		return true;
	}
	return false;
}

/*
 * Server messages the loader reads nothing from (src/pgwire_conn.c, server_msg), as bits by type
 * (0x00-0x3f, 0x40-0x7f): no record is kept for them. Authentication, RowDescription,
 * ParameterDescription, NoData, BindComplete, CloseComplete, CopyData, CopyDone,
 * NegotiateProtocolVersion; and DataRow, counted instead (pg_conn.drows). Tested by arithmetic,
 * not a switch: record() keeps one branch, which the verifier follows in each of the walk's states
 * (a switch there cost it 140,000 more instructions).
 */
#define PG_BIT(t)	(1ULL << ((t) & 63))
#define PG_UNREAD_LO	(PG_BIT('2') | PG_BIT('3'))
#define PG_UNREAD_HI	(PG_BIT('D') | PG_BIT('R') | PG_BIT('T') | PG_BIT('c') | PG_BIT('d') | \
			 PG_BIT('n') | PG_BIT('t') | PG_BIT('v'))

static __always_inline __u64 server_unread(__u8 dir, __u8 type)
{
	__u64 hi = (type >> 6) & 1, bits = PG_UNREAD_LO ^ ((PG_UNREAD_LO ^ PG_UNREAD_HI) & -hi);

	/* dir is PG_DIR_SERVER (1) or PG_DIR_CLIENT (0); types from 0x80 are none of them */
	return (bits >> (type & 63)) & 1 & (dir & 1) & (1 ^ (type >> 7));
}

/*
 * Body bytes worth keeping of a message (the rest is skipped by its length), by direction and
 * type: filled by the loader (pgwire__caps) in writable global data, not read-only data. The
 * verifier then knows a record's cap as any value to 65535 whatever the type, and a message
 * walk's states for different types are the same: with a constant cap per type it followed each
 * type's on its own, and the walk's callbacks were three quarters of pg_sys_exit's verification.
 */
__u16 pg_caps[2][128];

static __always_inline __u32 cap_of(__u8 dir, __u8 type)
{
	return pg_caps[dir & 1][type & 127];
}

/*
 * A chain of well-formed messages from off to exactly the end of the chunk, at most
 * MIDSTREAM_MSGS of them: how a chunk is known to start a message when nothing says so (a
 * connection opened before tracing, or one whose framing was lost). Client chunks must hold a
 * statement (Q, P, B or E) and Sync and Flush must have their fixed length; a Query must end in
 * NUL.
 */
struct chain {
	__u64 buf;
	__u32 len, off;
	__u8 dir;
	bool statement;
	int verdict;		/* 1: a chain to the end, -1: not one, 0: undecided */
};

static long chain_one(__u32 i, void *data)
{
	struct chain *ch = data;
	__u32 off = ch->off, len = ch->len, mlen;
	__u8 h[5], last;

	if (off == len) {
		ch->verdict = ch->dir == PG_DIR_SERVER || ch->statement ? 1 : -1;
		return 1;
	}
	if (len - off < 5 || bpf_probe_read_user(h, 5, (void *)(ch->buf + off)))
		goto no;
	mlen = be32(h + 1);
	if (mlen < 4 || mlen > PG_LEN_MAX || mlen + 1 > len - off)
		goto no;
	if (ch->dir == PG_DIR_CLIENT) {
		if (!frontend_type(h[0]))
			goto no;
		if ((h[0] == 'S' || h[0] == 'H' || h[0] == 'c') && mlen != 4)
			goto no;
		if (h[0] == 'Q' && (mlen < 5 || bpf_probe_read_user(&last, 1, (void *)(ch->buf + off + mlen)) || last))
			goto no;
		ch->statement |= h[0] == 'Q' || h[0] == 'P' || h[0] == 'B' || h[0] == 'E';
	} else {
		if (!backend_type(h[0]))
			goto no;
		if (h[0] == 'Z' && mlen != 5)
			goto no;
	}
	ch->off = off + mlen + 1;
	return 0;
no:
	ch->verdict = -1;
	return 1;
}

/*
 * A chain of well-formed messages from the start to exactly the end of the chunk, at most
 * MIDSTREAM_MSGS of them: how a chunk is known to start a message when nothing says so (a
 * connection opened before tracing, or one whose framing was lost). Client chunks must hold a
 * statement (Q, P, B or E), Sync and Flush must have their fixed length, and a Query must end in
 * NUL (the same rule as pgwire__chain() in src/pgwire.c, a little looser).
 */
static __always_inline bool pg_chain(__u64 buf, __u32 len, __u8 dir)
{
	struct chain ch = { .buf = buf, .len = len, .dir = dir };

	bpf_loop(MIDSTREAM_MSGS + 1, chain_one, &ch, 0);
	return ch.verdict == 1;
}

struct walk {
	struct pg_event *e;
	struct pg_conn *conn;
	__u8 *local;		/* the chunk's bytes, copied (pg_local_buf), or NULL: read them where they are */
	__u64 buf;
	__u32 len, off;
	__u32 pos;		/* bytes of records in e->data */
	__u8 dir;
	bool statement;		/* a Query or Execute went out in this chunk */
	bool broken;
};

/* Send the records gathered so far (an event without records only when force). */
static __always_inline void flush(struct walk *w, __u32 flags, bool force)
{
	struct pg_event *e = w->e;
	__u32 size = offsetof(struct pg_event, data) + (w->pos & (PG_EV_DATA - 1));

	/* a kept Sync (pg_quiet) goes out with the chunk's first event, records or not */
	if (!e->nrec && !force && !(e->flags & PG_EF_SYNC_KEPT))
		return;
	e->data_len = w->pos;
	e->flags |= flags;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, pt_rb_flags()))
		pt_count(PT_CNT_PG_LOST);
	e->nrec = 0;
	e->flags &= ~(PG_EF_MORE | PG_EF_STARTUP | PG_EF_SSLREQ | PG_EF_RESYNC | PG_EF_MIDSTREAM |
		      PG_EF_SYNC_KEPT);
	w->pos = 0;
}

/*
 * New connections' states, for map updates: read-only data, not built on the BPF stack, where
 * a caller of pg_chunk has little room (the stack of a chain of calls is limited to 512 bytes).
 */
static const struct pg_conn pg_conn_new[] = {
	[PG_ST_CANDIDATE] = { .state = PG_ST_CANDIDATE }, [PG_ST_STREAM] = { .state = PG_ST_STREAM },
	[PG_ST_OTHER] = { .state = PG_ST_OTHER },
};

/* Send e as it is, without records (no struct walk on the caller's stack: see pg_chunk). */
static __always_inline void send_bare(struct pg_event *e, __u16 flags)
{
	e->flags = flags;
	e->data_len = 0;
	e->nrec = 0;
	if (bpf_ringbuf_output(&events, e, offsetof(struct pg_event, data), pt_rb_flags()))
		pt_count(PT_CNT_PG_LOST);
}

/* Append a record of a message whose body starts at body (in the chunk) and is len-4 long. */
static __always_inline void record(struct walk *w, __u8 type, __u8 rflags, __u32 mlen, __u32 body, const bool local)
{
	__u32 cap = type ? cap_of(w->dir, type) : 8, avail = 0, n, pos;
	struct pg_rec *r;

	if (server_unread(w->dir, type)) {
		w->conn->drows += type == 'D';	/* carried by the next record */
		return;
	}

	if (body < w->len)
		avail = w->len - body;
	n = mlen - 4;
	if (n > cap) {
		n = cap;
		rflags |= PG_RF_CUT;
	}
	if (n > avail) {
		n = avail;
		rflags |= PG_RF_CUT;
	}
	if (n > PG_CAP_MAX - 1)
		n = PG_CAP_MAX - 1;
	if (w->pos + sizeof(*r) + n + 8 > PG_EV_DATA)
		flush(w, PG_EF_MORE, false);
	pos = w->pos & (PG_EV_DATA - 1);
	r = (struct pg_rec *)(w->e->data + pos);
	r->type = type;
	r->flags = rflags;
	r->len = mlen;
	r->rows_before = 0;
	r->pad = 0;
	if (w->dir == PG_DIR_SERVER) {
		r->rows_before = w->conn->drows;
		w->conn->drows = 0;
	}
	pos += sizeof(*r);
	/* keep the verifier's view of n bounded: the compiler would reuse an unbounded copy */
	asm volatile("" : "+r"(n));
	n &= PG_CAP_MAX - 1;
	if (n && local) {
		/* n <= avail: the copy stays within the chunk's bytes */
		if (bpf_probe_read_kernel(w->e->data + (pos & (PG_EV_DATA - 1)), n,
					  w->local + (body & (PG_LOCAL_MAX - 1))))
			n = 0;
	} else if (n && bpf_probe_read_user(w->e->data + (pos & (PG_EV_DATA - 1)), n, (void *)(w->buf + body))) {
		n = 0;
	}
	r = (struct pg_rec *)(w->e->data + (w->pos & (PG_EV_DATA - 1)));
	r->caplen = n;
	w->pos = (w->pos + sizeof(*r) + n + 7) & ~7u;
	w->e->nrec++;
}

/*
 * Step over a message's body of len bytes from w->off: at once if the chunk holds all of it,
 * else across the chunks that follow (pg_conn.skip). The next iteration reads the next message;
 * before, an iteration went to each skip alone (twice the iterations for a result's short
 * messages).
 */
static __always_inline long skip_body(struct walk *w, struct pg_conn *c, __u8 dir, __u32 len)
{
	__u32 left = w->len - w->off;

	if (w->off > w->len || len >= left) {
		c->skip[dir] = w->off > w->len ? len : len - left;
		w->off = w->len;
		return 1;
	}
	w->off += len;
	return 0;
}

/*
 * One message (or the rest of one) of the chunk; returns 1 to stop. local: its bytes are in
 * w->local (a constant: each case is its own loop body, which the verifier checks apart, at a
 * third of the cost of one body that tests it).
 */
/*
 * Bytes of a split header to read now: n within 1-4, bounded in the very register the read gets
 * (the compiler would otherwise test a copy, and the verifier see the read's size unbounded).
 */
static __always_inline __u32 hdr_take(__u32 n)
{
	if (n > 4)
		n = 4;
	if (n < 1)
		n = 1;
	asm volatile("" : "+r"(n));
	return n & 7;
}

static __always_inline long walk_msg(struct walk *w, const bool local)
{
	struct pg_conn *c = w->conn;
	__u8 dir = w->dir & 1, h[5] = {}, held;
	__u32 left, mlen, rest;

	if (w->off >= w->len)
		return 1;
	left = w->len - w->off;
	/* the body of a message begun in an earlier chunk */
	rest = c->skip[dir];
	if (rest) {
		if (rest >= left) {
			c->skip[dir] = rest - left;
			w->off = w->len;
			return 1;
		}
		c->skip[dir] = 0;
		w->off += rest;
		return 0;
	}
	held = c->hlen[dir] & 7;
	if (held) {
		/* a header split across chunks: complete it */
		__u32 need = 5 - held, take;

		if (held > 4)
			goto lost;
		take = hdr_take(need < left ? need : left);
		if (bpf_probe_read_user(c->hdr[dir] + held, take, (void *)(w->buf + w->off)))
			goto lost;
		w->off += take;
		if (take < need) {
			c->hlen[dir] = held + take;
			return 1;
		}
		__builtin_memcpy(h, c->hdr[dir], 5);
		c->hlen[dir] = 0;
		mlen = be32(h + 1);
		if (mlen < 4 || mlen > PG_LEN_MAX || !(dir == PG_DIR_CLIENT ? frontend_type(h[0]) : backend_type(h[0])))
			goto lost;
		record(w, h[0], PG_RF_CONT, mlen, w->off, local);
		return skip_body(w, c, dir, mlen - 4);
	}
	if (left < 5) {
		__u32 take = hdr_take(left);

		if (bpf_probe_read_user(c->hdr[dir], take, (void *)(w->buf + w->off)))
			goto lost;
		c->hlen[dir] = take;
		w->off = w->len;
		return 1;
	}
	if (local) {
		__u8 *p = w->local + (w->off & (PG_LOCAL_MAX - 1));

		h[0] = p[0];
		h[1] = p[1];
		h[2] = p[2];
		h[3] = p[3];
		h[4] = p[4];
	} else if (bpf_probe_read_user(h, 5, (void *)(w->buf + w->off))) {
		goto lost;
	}
	mlen = be32(h + 1);
	if (mlen < 4 || mlen > PG_LEN_MAX || !(dir == PG_DIR_CLIENT ? frontend_type(h[0]) : backend_type(h[0])))
		goto lost;
	if (dir == PG_DIR_CLIENT && (h[0] == 'Q' || h[0] == 'E'))
		w->statement = true;
	record(w, h[0], 0, mlen, w->off + 5, local);
	w->off += 5;
	return skip_body(w, c, dir, mlen - 4);
lost:
	w->broken = true;
	return 1;
}

static long walk_one(__u32 i, void *data)
{
	return walk_msg(data, false);
}

static long walk_local_one(__u32 i, void *data)
{
	return walk_msg(data, true);
}

/* phases: + PG_PH_SERVER for a server chunk's */
enum { PG_PH_PRE, PG_PH_EVENT, PG_PH_MSGS, PG_PH_WALK, PG_PH_STACKS, PG_PH_FLUSH, PG_PH_COUNT,
       PG_PH_SERVER = 10, PG_PH_WALKS = 20, PG_PH_FRAMES = 21, PG_PH_START = 31 };

/*
 * Walk the current thread's stack into pg_stack_buf and put it in pg_stacks: its id (0: none),
 * with st set to the walk. Process pid's, proc its configuration.
 */
static __always_inline __u64 stack_put(const struct pt_proc *proc, struct pt_stack *st)
{
	__u64 *last, id;
	__u32 zero = 0;

	st->nframes = 0;
	st->flags = 0;
	PT_PHASE(PG_PH_START);
	id = pt_walk_stack(bpf_get_current_task_btf(), proc, st, cut_stacks ? PT_WALK_CUT : 0);
	PT_PHASE(PG_PH_WALK);
	PT_PHASE_ADD(PG_PH_WALKS, 1);
	PT_PHASE_ADD(PG_PH_FRAMES, st->nframes);
	last = bpf_map_lookup_elem(&pg_last_stack, &zero);
	if (!id || (last && *last == id)) {
		PT_PHASE(PG_PH_STACKS);
		return id;
	}
	/* Look first: an LRU update copies the whole value even when the key exists. */
	if (!bpf_map_lookup_elem(&pg_stacks, &id))
		bpf_map_update_elem(&pg_stacks, &id, st, BPF_NOEXIST);
	if (last)
		*last = id;
	PT_PHASE(PG_PH_STACKS);
	return id;
}

/*
 * The text the driver's frame holds, from at (pt_text_at; len: its length, kind its form), as a
 * PT_EV_PG_TEXT event for connection (pid, fd): bytes up to their NUL, or a str's code units, as
 * many as can make text_cap bytes of UTF-8. A global function: verified once, not with every
 * state of its callers (pg_sys_exit's are many).
 */
__noinline int pg_text_out(__u64 at, __u64 len, __u32 pid, __s32 fd, __u32 kind)
{
	__u32 zero = 0, cap = text_cap;
	struct pg_text *t = bpf_map_lookup_elem(&pg_text_buf, &zero);
	__u64 n;
	long r;

	if (!t || !at)
		return 0;
	if (cap > PG_TEXT_MAX)
		cap = PG_TEXT_MAX;
	if (!kind) {
		r = bpf_probe_read_user_str(t->text, cap, (void *)at);
		if (r <= 0)
			return 0;
		n = (__u64)r - 1;
	} else {
		/* each code unit makes one byte of UTF-8 or more: cap - 1 of them are enough */
		n = len < cap - 1 ? len : cap - 1;
		n *= kind;
		if (n > PG_TEXT_MAX)
			n = PG_TEXT_MAX & ~(__u64)(kind - 1);
		/* bound the very register passed */
		asm volatile("" : "+r"(n));
		n &= 2 * PG_TEXT_MAX - 1;
		if (!n || n > PG_TEXT_MAX || bpf_probe_read_user(t->text, n, (void *)at))
			return 0;
	}
	t->hdr.type = PT_EV_PG_TEXT;
	t->hdr.pid = pid;
	t->fd = fd;
	t->caplen = (__u32)n;
	t->kind = kind;
	t->len = len;
	if (bpf_ringbuf_output(&events, t, offsetof(struct pg_text, text) + (n & (2 * PG_TEXT_MAX - 1)),
			       pt_rb_flags()))
		pt_count(PT_CNT_PG_LOST);
	return 0;
}

static __always_inline void text_send(const struct pt_proc *proc, const struct pt_stack *st, __u32 pid, __s32 fd)
{
	__s64 len;
	__u32 kind;
	__u64 at = pt_text_at(proc, st, &len, &kind);

	if (at)
		pg_text_out(at, (__u64)len, pid, fd, kind);
}

/*
 * The sender's stack for a chunk that holds a statement: the one uvloop's probe noted when the
 * bytes were queued (uvloop.bpf.h), if fresh, else the current thread's.
 */
static __always_inline void walk_stack(struct pg_event *e, __u32 pid, struct pg_conn *c)
{
	struct pt_proc *proc;
	struct pt_stack *st;
	__u32 zero = 0;

	e->stack_id = 0;
	if (c->q_ts && e->ts - c->q_ts < PT_UV_QUEUED_TTL_NS) {
		e->stack_id = c->q_stack;
		e->task_frame = c->q_task;
		e->root_frame = c->q_root;
		c->q_ts = 0;
		return;
	}
	proc = bpf_map_lookup_elem(&procs, &pid);
	if (!proc || !call_sites)
		return;
	st = bpf_map_lookup_elem(&pg_stack_buf, &zero);
	if (!st)
		return;
	e->stack_id = stack_put(proc, st);
	e->task_frame = st->task_frame;
	e->root_frame = st->root_frame;
	if (st->text_frame)
		text_send(proc, st, pid, e->fd);
}

static __always_inline struct pg_event *event(__u32 type, __u32 pid, __u32 tid, __s32 fd, __u8 dir, long ret)
{
	__u32 zero = 0;
	struct pg_event *e = bpf_map_lookup_elem(&pg_ev_buf, &zero);

	if (!e)
		return NULL;
	e->hdr.type = type;
	e->hdr.pid = pid;
	e->tid = tid;
	e->fd = fd;
	e->ts = bpf_ktime_get_ns();
	e->stack_id = 0;
	e->task_frame = 0;
	e->root_frame = 0;
	e->pqconn = dir == PG_DIR_CLIENT && libpq_probed ? pt_pqconn_now(e->ts) : 0;
	e->len = ret;
	e->dir = dir;
	e->flags = 0;
	e->nrec = 0;
	e->data_len = 0;
	return e;
}

/* A client chunk starting with an untyped startup message: its 4-byte length, then a code. */
static __always_inline int startup(struct pg_conn *c, struct chunk *ch, __u32 pid, __u32 tid, __s32 fd, long ret)
{
	__u8 h[8];
	__u32 mlen, code;
	struct pg_event *e;
	struct walk w = { .buf = ch->buf, .len = ch->len, .dir = PG_DIR_CLIENT, .conn = c };

	if (ch->len < 8 || bpf_probe_read_user(h, 8, (void *)ch->buf))
		return -1;
	mlen = be32(h);
	code = be32(h + 4);
	if (code == PG_SSLREQ || code == PG_GSSREQ) {
		if (mlen != 8)
			return -1;
		c->state = PG_ST_SSL_WAIT;
	} else if (code == PG_PROTO_V3) {
		if (mlen < 8 || mlen > 10000)
			return -1;
		c->state = PG_ST_STREAM;
		c->skip[PG_DIR_CLIENT] = mlen > ch->len ? mlen - ch->len : 0;
	} else if (code == PG_CANCEL) {
		if (mlen != 16)
			return -1;
		c->state = PG_ST_OTHER;	/* a cancel connection: nothing follows */
	} else {
		return -1;
	}
	e = event(PT_EV_PG_DATA, pid, tid, fd, PG_DIR_CLIENT, ret);
	if (!e)
		return 0;
	w.e = e;
	e->flags = code == PG_PROTO_V3 ? PG_EF_STARTUP : code == PG_CANCEL ? 0 : PG_EF_SSLREQ;
	record(&w, 0, 0, mlen, 4, false);
	flush(&w, 0, true);
	return 0;
}

/*
 * pg8000 1.10 closes each statement's portal in a round trip of its own: a chunk of Close
 * (portal), Flush and Sync, answered by CloseComplete and ReadyForQuery. Neither carries anything
 * the loader reports (it forgets a portal when its Execute completes: src/pgwire.h), so both stay
 * here, half of such a driver's events: a client chunk of exactly those messages is not sent and
 * its Sync is kept (pg_conn.quiet); the server chunks after it are not sent either if they are
 * exactly the answer, in one read or two (the CloseComplete leaves at the Flush, the
 * ReadyForQuery at the Sync). Any other chunk, of either side, goes out with PG_EF_SYNC_KEPT: the
 * loader takes the kept Sync first. Whole chunks only, told by their bytes before any walk: a
 * kept chunk costs its copy and these compares, no event and no message walk.
 */
#define PG_SYNC_MSG	0x0400000053ULL		/* 'S', length 4: the bytes of a Sync, little-endian */
#define PG_FLUSH_MSG	0x0400000048ULL		/* 'H', length 4 */

static __always_inline __u64 pg_bytes5(const __u8 *p)
{
	return (__u64)p[0] | (__u64)p[1] << 8 | (__u64)p[2] << 16 | (__u64)p[3] << 24 | (__u64)p[4] << 32;
}

/*
 * A whole chunk of len bytes, copied to lb, on a connection with nothing split (how: dir, and
 * the event's first flags << 8: none): 1 if it is a pair or its answer, kept here.
 * A global function, verified once: inlined, its branches would multiply pg_chunk's states.
 */
__noinline int pg_quiet(struct pg_conn *c, const struct pg_local *lb, __u32 len, __u32 how)
{
	__u32 dir = how & 1, mlen, rest;
	const __u8 *b;

	if (!c || !lb || (how >> 8) || c->skip[dir] || c->hlen[dir] || len > PG_LOCAL_MAX)
		return 0;
	b = lb->b;
	if (dir == PG_DIR_SERVER) {
		if (!c->quiet || c->drows)
			return 0;
		if (c->quiet == 1 && len == 5 && pg_bytes5(b) == 0x0400000033ULL) {
			c->quiet = 2;	/* CloseComplete alone: its ReadyForQuery comes next */
			return 1;
		}
		if (c->quiet == 1 && len == 11 && pg_bytes5(b) == 0x0400000033ULL &&
		    pg_bytes5(b + 5) == 0x050000005aULL)
			goto answered;
		if (c->quiet == 2 && len == 6 && pg_bytes5(b) == 0x050000005aULL)
			goto answered;
		return 0;
answered:
		c->quiet = 0;
		pt_count(PT_CNT_PG_QUIET);
		return 1;
	}
	/* Close: 'C', its length, 'P', the portal's name and its NUL; [Flush]; Sync */
	if (c->quiet || len < 12 || b[0] != 'C' || b[5] != 'P')
		return 0;
	mlen = be32(b + 1);
	if (mlen < 6 || mlen + 1 + 5 > len)
		return 0;
	rest = len - mlen - 1;
	if ((rest != 5 && rest != 10) || b[mlen & (PG_LOCAL_MAX - 1)] ||
	    pg_bytes5(b + ((len - 5) & (PG_LOCAL_MAX - 1))) != PG_SYNC_MSG ||
	    (rest == 10 && pg_bytes5(b + ((mlen + 1) & (PG_LOCAL_MAX - 1))) != PG_FLUSH_MSG))
		return 0;
	c->quiet = 1;
	return 1;
}

/*
 * A chunk of the client's (dir PG_DIR_CLIENT) or the server's bytes on connection conn (its
 * pg_conn_key as pid << 32 | fd), whose state c has: its messages walked, their records sent, a
 * statement's stack walked. The syscalls' program gives the socket's bytes; the TLS library's
 * probes (pgtls.bpf.c) the plaintext of an encrypted connection. lens: the bytes at buf to walk
 * (low half) and the bytes the call moved (high half: more, when they were in other iovecs);
 * how: dir, and the event's first flags << 8 (five arguments at most).
 *
 * A global function, verified once on its own instead of with every state of its caller:
 * pg_sys_exit took 635,000 instructions to verify inlined, 215,000 so (start-up system time
 * 1.4-1.6 s before, 0.8 s after). Its caller's stack must then stay small: the chain of
 * calls down to pt_task_of shares 512 bytes (pg_conn_new, send_bare).
 */
__noinline int pg_chunk(__u64 conn, struct pg_conn *c, __u64 buf, __u64 lens, __u32 how)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, pid = conn >> 32;
	struct pg_conn_key key = { .pid = pid, .fd = (__s32)conn };
	struct chunk ch = { .buf = buf, .len = (__u32)lens };
	long ret = lens >> 32;
	__u8 dir = how & 0xff;
	__u16 eflags = how >> 8;
	struct pg_event *e;
	struct walk w = {};

	if (!c)
		return 0;

	switch (c->state) {
	case PG_ST_CANDIDATE:
		if (dir != PG_DIR_CLIENT)
			return 0;	/* a server speaks first: not a PostgreSQL client connection */
		if (startup(c, &ch, pid, tid, key.fd, ret))
			c->state = PG_ST_OTHER;
		return 0;
	case PG_ST_SSL_WAIT: {
		__u8 answer = 0;

		if (dir != PG_DIR_SERVER) {
			/* no answer read yet and the client writes: a startup after a refused request */
			if (startup(c, &ch, pid, tid, key.fd, ret))
				c->state = PG_ST_LOST;
			return 0;
		}
		bpf_probe_read_user(&answer, 1, (void *)ch.buf);
		e = event(PT_EV_PG_DATA, pid, tid, key.fd, PG_DIR_SERVER, ret);
		if (answer == 'S' || answer == 'G') {
			c->state = PG_ST_TLS;
			if (e) {
				e->flags = PG_EF_TLS;
				w.e = e;
				flush(&w, 0, true);
			}
			return 0;
		}
		/* 'N': the client goes on in the clear, with a StartupMessage */
		c->state = PG_ST_CANDIDATE;
		return 0;
	}
	case PG_ST_LOST:
		if (!pg_chain(ch.buf, ch.len, dir))
			return 0;
		c->state = PG_ST_STREAM;
		c->skip[0] = c->skip[1] = 0;
		c->hlen[0] = c->hlen[1] = 0;
		eflags |= PG_EF_RESYNC;
		break;
	}

	PT_PHASE(dir == PG_DIR_CLIENT ? PG_PH_PRE : PG_PH_SERVER + PG_PH_PRE);
	e = event(PT_EV_PG_DATA, pid, tid, key.fd, dir, ret);
	if (!e)
		return 0;
	e->flags = eflags;
	w.e = e;
	w.conn = c;
	w.buf = ch.buf;
	w.len = ch.len;
	w.dir = dir;
	if (ch.len <= PG_LOCAL_MAX) {
		__u32 zero = 0;
		struct pg_local *lb = bpf_map_lookup_elem(&pg_local_buf, &zero);
		__u64 n = ch.len;

		/* bound the very register passed: the compiler would test a zero-extended copy */
		asm volatile("" : "+r"(n));
		n &= 2 * PG_LOCAL_MAX - 1;
		if (lb && n <= PG_LOCAL_MAX && !bpf_probe_read_user(lb->b, n, (void *)ch.buf)) {
			w.local = lb->b;
			if (pg_quiet(c, lb, ch.len, dir | (__u32)eflags << 8))
				return 0;
		}
	}
	/* a Sync kept, and this chunk not its answer: the loader takes it first */
	if (c->quiet) {
		e->flags |= PG_EF_SYNC_KEPT;
		c->quiet = 0;
	}
	PT_PHASE(dir == PG_DIR_CLIENT ? PG_PH_EVENT : PG_PH_SERVER + PG_PH_EVENT);
	if (w.local)
		bpf_loop(PG_WALK_MAX, walk_local_one, &w, 0);
	else
		bpf_loop(PG_WALK_MAX, walk_one, &w, 0);
	if (w.off < w.len && !w.broken) {
		pt_count(PT_CNT_PG_LONG);
		w.broken = true;
	}
	if (ch.len < (__u32)ret)
		w.broken = true;	/* bytes in other iovecs were not walked */
	if (w.broken) {
		pt_count(PT_CNT_PG_DESYNC);
		c->state = PG_ST_LOST;
		e->flags |= PG_EF_PARTIAL;
	}
	PT_PHASE(dir == PG_DIR_CLIENT ? PG_PH_MSGS : PG_PH_SERVER + PG_PH_MSGS);
	if (w.statement)
		walk_stack(e, pid, c);
	flush(&w, 0, eflags || w.broken);
	PT_PHASE(dir == PG_DIR_CLIENT ? PG_PH_FLUSH : PG_PH_SERVER + PG_PH_FLUSH);
	PT_PHASE_ADD(dir == PG_DIR_CLIENT ? PG_PH_COUNT : PG_PH_SERVER + PG_PH_COUNT, 1);
	return 0;
}

/* Connection key ends (its socket closed, its TLS object freed): tell the loader, forget it. */
static __always_inline int pg_close(struct pg_conn_key key)
{
	struct pg_conn *c;
	struct pg_event *e;

	c = bpf_map_lookup_elem(&pg_conns, &key);
	if (!c)
		return 0;
	if (c->state != PG_ST_CANDIDATE && c->state != PG_ST_OTHER) {
		e = event(PT_EV_PG_CLOSE, key.pid, (__u32)bpf_get_current_pid_tgid(), key.fd, 0, 0);
		if (e)
			send_bare(e, c->state == PG_ST_TLS ? PG_EF_TLS : 0);
	}
	bpf_map_delete_elem(&pg_conns, &key);
	return 0;
}

#endif
