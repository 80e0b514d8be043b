/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Types shared by the wire-protocol programs (bpf/pgwire.bpf.c) and the loader (src/pgwire*.c):
 * PostgreSQL's frontend/backend protocol v3 read on the socket syscalls of traced processes.
 *
 * The BPF side frames each direction of a connection into messages and sends, per read or
 * write, one event with a record per message: its type, its full length and a bounded prefix of
 * its body. Bodies are never copied whole: a Query or Parse keeps its statement up to the text
 * cap, names are short, DataRow and other bulk messages keep nothing. The loader pairs the
 * records into statements (src/pgwire.c).
 */
#ifndef PYTRACE_PG_H
#define PYTRACE_PG_H

#include "pytrace.h"

#define PG_MAX_CONNS	16384		/* connections followed at once */
#define PG_EV_DATA	16384		/* record bytes per event (power of two) */
#define PG_CAP_MAX	8192		/* body bytes kept per message, at most (power of two) */
#define PG_NAME_CAP	160		/* body bytes kept of Bind, Execute, Close, Describe, Parse's name */
#define PG_ERR_CAP	256		/* of ErrorResponse and NoticeResponse (SQLSTATE, message) */
#define PG_TAG_CAP	64		/* of CommandComplete (its tag) */
#define PG_WALK_MAX	8192		/* messages walked per read or write */

enum pgwire_event_type {
	PT_EV_PG_DATA = PT_EV_PG_FIRST,	/* a read or write of a PostgreSQL connection: struct pg_event */
	PT_EV_PG_CLOSE = 65,		/* the connection was closed: struct pg_event without records */
	PT_EV_PG_CONN = 66,		/* an encrypted connection's libpq PGconn (pqconn): struct pg_event */
	PT_EV_PG_TLS_SEEN = 67,		/* a TLS record written on a socket not followed: perhaps an
					   encrypted PostgreSQL connection opened before tracing */
	PT_EV_PG_TEXT = 68,		/* the text the driver's frame holds for the statement the
					   connection's next client chunk carries: struct pg_text */
};

/* Direction */
#define PG_DIR_CLIENT	0		/* written by the traced process */
#define PG_DIR_SERVER	1		/* read by it */

/* Connection state, BPF side (struct pg_conn.state) */
#define PG_ST_CANDIDATE	0	/* connected, nothing written yet: the first write decides */
#define PG_ST_STREAM	1	/* framing messages */
#define PG_ST_SSL_WAIT	2	/* SSLRequest or GSSENCRequest sent: a one-byte answer comes */
#define PG_ST_TLS	3	/* encrypted: nothing to read here */
#define PG_ST_LOST	4	/* framing lost: waiting for a chunk that starts a message */
#define PG_ST_OTHER	5	/* not PostgreSQL: ignored until closed */

/* struct pg_event.flags */
#define PG_EF_STARTUP	(1u << 0)	/* the write is a StartupMessage (record type 0) */
#define PG_EF_SSLREQ	(1u << 1)	/* an SSLRequest or GSSENCRequest (record type 0) */
#define PG_EF_TLS	(1u << 2)	/* the server answered 'S' (or 'G'): the connection is encrypted */
#define PG_EF_RESYNC	(1u << 3)	/* framing was lost before this chunk; it starts a message */
#define PG_EF_MIDSTREAM	(1u << 4)	/* first chunk of a connection opened before tracing */
#define PG_EF_MORE	(1u << 5)	/* more records of the same read or write follow in another event */
#define PG_EF_PARTIAL	(1u << 6)	/* the chunk had more messages than were walked: framing lost */
#define PG_EF_SYNC_KEPT	(1u << 7)	/* a Sync (and the Close of a portal) that the BPF side kept
					   to itself preceded this chunk: its answer was not the
					   CloseComplete and ReadyForQuery it waited for (struct
					   pg_conn.quiet) */

/* struct pg_rec.flags */
#define PG_RF_CUT	(1u << 0)	/* body cut: by the cap or by the end of the read or write */
#define PG_RF_CONT	(1u << 1)	/* the message started in an earlier read or write (its header
					   was split): only its type and length are known */

/*
 * One message; caplen body bytes follow, then padding to 8 bytes. DataRows get no record of
 * their own: none of their bytes is wanted, only how many there were, which the next record of
 * the connection's server side carries (rows_before), in this read or a later one.
 */
struct pg_rec {
	__u8 type;		/* message type byte; 0 for the untyped startup messages */
	__u8 flags;		/* PG_RF_* */
	__u16 caplen;
	__u32 len;		/* the message's length field (itself included, type byte not) */
	__u32 rows_before;	/* DataRows between the previous record and this one */
	__u32 pad;
};

struct pg_event {
	struct pt_event_hdr hdr;
	__u32 tid;
	__s32 fd;
	__u64 ts;		/* bpf_ktime_get_ns() at the syscall's return */
	__u64 stack_id;		/* client chunks with a statement: the sender's Python stack, 0: none */
	__u64 pqconn;		/* client chunks written inside a probed libpq call: its PGconn, else 0 */
	__u64 task_frame;	/* with stack_id: who sent it (struct pt_stack's task_frame), 0: unknown */
	__u64 root_frame;	/* and its root_frame */
	__u32 len;		/* bytes the syscall moved */
	__u16 dir;		/* PG_DIR_* */
	__u16 flags;		/* PG_EF_* */
	__u32 nrec;
	__u32 data_len;		/* bytes of data[] sent */
	__u8 data[PG_EV_DATA + PG_CAP_MAX + 64];	/* records; sent cut to data_len (at most PG_EV_DATA) */
};

/*
 * A statement's text as the sending frame of its driver holds it (struct pt_proc's text_code),
 * sent just before the client chunk that carries the statement (or, on uvloop, when the
 * statement is queued): for an Execute of a statement prepared before tracing, which the wire
 * names only. text[] is cut to caplen bytes.
 */
#define PG_TEXT_MAX	8192
struct pg_text {
	struct pt_event_hdr hdr;
	__s32 fd;
	__u32 caplen;		/* bytes of text[] sent (no NUL) */
	__u32 kind;		/* 0: text[] is the bytes; 1, 2, 4: a str's code units of that size */
	__u32 pad;
	__u64 len;		/* the text's length in the object (bytes, or code units) */
	char text[PG_TEXT_MAX];
};

/* Per (pid, fd) */
struct pg_conn_key {
	__u32 pid;
	__s32 fd;		/* a socket, or pg_tls_fd() of a TLS object */
};

/*
 * The plaintext of an encrypted connection read through the TLS library's probes
 * (bpf/pgtls.bpf.c) is a connection of its own, keyed by its TLS object (OpenSSL's SSL *): as
 * a negative fd, never a socket's. Bits 4-34 of a heap pointer (16-byte aligned).
 */
static inline __s32 pg_tls_fd(__u64 ssl)
{
	return (__s32)(0x80000000u | (__u32)(ssl >> 4));
}

/* What a pgtls probe is attached to: its BPF cookie. */
enum pg_tls_fn {
	PG_TLS_WRITE = 1,	/* SSL_write(ssl, buf, num): returns the bytes written */
	PG_TLS_WRITE_EX,	/* SSL_write_ex(ssl, buf, num, size_t *written): returns 1 */
	PG_TLS_READ,		/* SSL_read(ssl, buf, num) */
	PG_TLS_READ_EX,		/* SSL_read_ex(ssl, buf, num, size_t *readbytes) */
	PG_TLS_FREE,		/* SSL_free(ssl): its connection ends */
};

struct pg_conn {
	__u32 state;		/* PG_ST_* */
	__u32 skip[2];		/* per direction: body bytes of the current message still to come */
	__u64 pqconn;		/* encrypted: the PGconn last reported for it */
	__u32 drows;		/* server side: DataRows not yet carried by a record */
	__u32 pad2;
	__u8 hlen[2];		/* per direction: bytes of a split header held in hdr (< 5) */
	/*
	 * 1: the last client chunk was a portal's Close and a Sync alone (pg8000 1.10's second round
	 * trip of every statement), kept from the loader; the server's answer, a CloseComplete and
	 * a ReadyForQuery alone, is then kept too (2: its CloseComplete read, in a read of its own).
	 * Any other chunk first tells the loader of the Sync (PG_EF_SYNC_KEPT).
	 */
	__u8 quiet;
	__u8 pad[5];
	__u8 hdr[2][16];	/* 5 used; the slack keeps the verifier's bounds simple */
	/*
	 * The writer of bytes queued by uvloop's transport.write() and sent later by a loop callback
	 * (bpf/uvloop.bpf.h): its stack's id in pg_stacks and its task keys, noted by the probe in
	 * the task, taken by the next client chunk. q_ts 0: none.
	 */
	__u64 q_stack, q_task, q_root, q_ts;
};

#ifndef __bpf__
/*
 * The body bytes the BPF side keeps of each message, by direction and type: its pg_caps, which
 * each loader of bpf/pgwire.bpf.h fills before the load (text_cap: its rodata's, the statement's
 * NUL counted). A Query's text; a Parse's name, then its text; the names of Bind, Execute, Close
 * and Describe; a CommandComplete's tag; an ErrorResponse's fields; a ReadyForQuery's status; a
 * copy's format. Nothing of the others (DataRow above all).
 */
static inline void pg_caps_fill(__u16 caps[2][128], __u32 text_cap)
{
	__u16 *c = caps[PG_DIR_CLIENT], *s = caps[PG_DIR_SERVER];

	__builtin_memset(caps, 0, 2 * 128 * sizeof(caps[0][0]));
	c['Q'] = (__u16)text_cap;
	c['P'] = (__u16)(text_cap + 64);
	c['B'] = c['E'] = c['C'] = c['D'] = PG_NAME_CAP;
	s['C'] = PG_TAG_CAP;
	s['E'] = PG_ERR_CAP;
	s['Z'] = 1;
	s['G'] = s['H'] = s['W'] = 1;	/* copy format */
}
#endif

#endif
