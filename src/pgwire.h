/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SQL statements from PostgreSQL's frontend/backend protocol (v3) as read on a socket: a framer
 * per direction, a classifier for the first bytes of a connection seen late, and a connection
 * state machine that pairs statements with their results (src/pgwire.c: framer and classifier;
 * src/pgwire_conn.c: pairing). Pure C, no libbpf. The framer and the classifier never
 * allocate; a connection allocates its tables when created, grows its queue and names table up
 * to their caps, and keeps the text of a named statement or portal when it is first seen.
 *
 * FRAMING RULE (the BPF side mirrors it; pgwire_framer is its reference implementation)
 *
 *  Per socket and direction the state is: phase, up to 8 header bytes not yet complete, and the
 *  payload bytes of the current message still to skip (u32). Chunks are the bytes of one
 *  syscall, in order.
 *  - Client, phase STARTUP (a connection seen from its start): messages are untyped,
 *    int32 len (>= 8, <= 10000, includes itself) + int32 code. code 196608 (3.0; any 0x0003xxxx)
 *    is a StartupMessage: phase becomes TYPED. 80877103 SSLRequest and 80877104 GSSENCRequest
 *    (len exactly 8) keep STARTUP and make the server side expect a one-byte answer.
 *    80877102 CancelRequest (len exactly 16): the connection carries nothing else.
 *    Anything else: LOST.
 *  - Server, answer pending: the next byte alone is the answer. 'S' (TLS) or 'G' (GSSAPI
 *    encryption): both directions become ENCRYPTED and are not read again. 'N': plaintext
 *    continues (client still in STARTUP). Any other byte is not consumed: it starts a typed
 *    message (an old server's ErrorResponse).
 *  - TYPED: type byte + int32 len (includes itself, not the type byte). The header is valid when
 *    the type is one of the direction's types (client: Q P B E D S H C X d c f F p; server:
 *    R K S Z C D T E N A I 1 2 3 n s t G H W c d V v), len >= 4, len <= 1 MiB for every type
 *    but the big ones (client Q P B F d p, server D d T E N V: len < 1 GiB), and fixed lengths
 *    hold (client S H c X: 4; server Z: 5; 1 2 3 n I s c: 4; K >= 12; R >= 8).
 *    An invalid header makes the direction LOST (counted once per loss).
 *  - Capture: a message's payload (after len) is copied up to the cap, except DataRow and
 *    CopyData ('D' from the server, 'd' either way): none of it. A record is due when the last
 *    byte of the message has been seen: type, len, the captured prefix (cut when shorter than
 *    len - 4), ts of the chunk holding its first byte and end_ts of the chunk holding its last.
 *  - LOST: a chunk is dropped unless it is a complete plausible chain (pgwire__chain(): 1..10
 *    messages, lengths ending exactly at the chunk's end, the classifier's checks), in which
 *    case the direction is TYPED again from that chunk's first byte. A server chunk ending with
 *    ReadyForQuery (Z 00 00 00 05 I|T|E) and a client chunk ending with Sync (S 00 00 00 04)
 *    are dropped but make the direction TYPED from the next chunk (also when the loss itself
 *    happened in such a chunk).
 *
 *  A BPF side that cannot keep a message across chunks may emit the record at the chunk holding
 *  its header, with what that chunk holds (cut set) and end_ts 0: statements complete on small
 *  messages (C, I, s, E, Z), which fit in the chunk that starts them. It should not send one
 *  record per DataRow (a read holds thousands): consecutive DataRows may travel as one 'D'
 *  record whose code is their count, and CopyData ('d') need not be sent at all.
 *
 * CLASSIFIER (first write or read seen on a socket of unknown state; see pgwire__classify_*)
 *  Client: a startup-phase packet whose int32 length is the whole write (StartupMessage with
 *  protocol 3.x ending in NUL, SSLRequest, GSSENCRequest, CancelRequest), else a chain
 *  (pgwire__chain()). Server: a chain, else a read ending with ReadyForQuery (READY_TAIL: frame
 *  from the next read). A write that is the middle of a long message (a 100 kB Query) is
 *  NOT_PG: ask again on the next one.
 *  Why text protocols cannot pass: four printable bytes after the first read as a length of at
 *  least 0x20202020 (514 MiB), over the 1 MiB limit of the small types; from '@' up they read
 *  as 1 GiB or more, over every limit; and a chain must still end exactly at the write's end.
 *  In BPF the walk is a bounded loop of PGWIRE_CHAIN_MAX headers (5-byte reads at computed
 *  offsets), each with at most two name scans of PGWIRE_NAME_MAX bytes and a last-byte read.
 *  Measured in tests/unit/test_pgwire.c, false positives: 0 of 15 HTTP/1.1 chunks (curl and
 *  python's http.server through the recording proxy), 0 of 11 TLS records, 0 of 25 RESP, JSON
 *  lines and other text protocols, 0 of 20,000 random buffers and 0 of 20,000 random buffers
 *  starting with a PostgreSQL type byte, for both classifiers. Recognized: every first write of
 *  the recorded connections; 102 of 103 later client writes as MIDSTREAM (the miss: a psycopg 3
 *  pipeline of more than 10 messages); 107 of 107 server reads (90 chains, 17 tails).
 *
 * PAIRING (pgwire_conn)
 *  Each Query (simple) and each Execute (extended) is one statement; a FunctionCall is one with
 *  the text "<function call oid N>". Client messages that the server answers in order are
 *  queued (Parse, Execute, Sync, Query, FunctionCall) and server messages take them off the
 *  head, as the server does; Bind, Describe and Close are not queued (their answers need no
 *  pairing). Latency runs from ts of the Query/Execute record to end_ts of the record that
 *  completes it: CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse for an
 *  Execute; ReadyForQuery for a Query. Statements are delivered at the ReadyForQuery that ends
 *  their batch (its transaction status is then known), or when the connection closes or is lost.
 *  - A Query with several statements ("SELECT 1; SELECT 2") is one statement: rows are the sum
 *    of the counted CommandCompletes, the tag is the last one, parts counts them. An error stops
 *    it (the server skips the rest).
 *  - Rows: the command tag's count (SELECT INSERT UPDATE DELETE MERGE FETCH MOVE COPY), else
 *    the DataRows seen (PortalSuspended, SHOW), else -1; -1 for anything not OK.
 *  - Extended protocol: an ErrorResponse fails the head message; the server then skips every
 *    message up to the next Sync. The Execute that failed, or the first Execute after the failed
 *    Parse/Bind/Describe, ends as ERROR; every later Execute (or Query) up to the Sync ends as
 *    SKIPPED at the ReadyForQuery. A failed Parse with no Execute behind it (asyncpg prepares
 *    with Parse/Describe/Flush) is reported itself, as an ERROR statement of its text; a failed
 *    Bind, Describe or Close with no Execute behind it is only counted (unpaired).
 *  - Execute of a statement prepared before tracing: kind PREPARED_UNKNOWN with its name,
 *    unless its text was learned elsewhere (pgwire_conn__learn) before the Bind.
 *  - A named portal is forgotten when an Execute of it is delivered other than suspended (run
 *    to its end, failed or skipped), as well as at its Close: the BPF side keeps pg8000 1.10's
 *    Close-and-Sync round trips to itself (an event with PG_EF_SYNC_KEPT brings a kept Sync
 *    back when its answer was not the expected one). A later Bind of the same name is another
 *    portal and stays. (Executing a portal again after it ran to its end finds no text.)
 *  - COPY: CopyIn/CopyOut/CopyBoth responses make the statement kind COPY; it completes at the
 *    CommandComplete after CopyDone (an Execute), or at the ReadyForQuery right after (a Query).
 *    Syncs the client sent before its CopyDone/CopyFail are ignored by the server in copy-in
 *    mode, and so here.
 *  - SQLSTATE 57014 (query_canceled: CancelRequest, statement_timeout) ends as CANCELLED.
 *  - NoticeResponse, NotificationResponse, ParameterStatus between statements are counted and
 *    do not touch pairing.
 *  - After a loss in either direction the statements in flight end as LOST; new statements are
 *    queued again once the server side has shown a ReadyForQuery and the client side is framed.
 *    (A pipelining client whose answers straddle that ReadyForQuery can be mispaired: counted in
 *    unpaired when it shows.)
 *  - Caps per connection: max_names (default 1024) named statements plus named portals; a Parse
 *    or Bind over the cap is counted in dropped_names and its Executes are PREPARED_UNKNOWN.
 *    max_inflight (default 4096) queued client messages (Parse, Execute, Sync, Query,
 *    FunctionCall): one more counts in dropped_stmts and is handled as a loss (pairing cannot
 *    go on without it).
 *    Text kept per statement: text_cap bytes (default 1024), cut flag set beyond.
 */
#ifndef PYTRACE_PGWIRE_H
#define PYTRACE_PGWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGWIRE_CODE_PROTO30		196608u		/* StartupMessage code: 3.0 */
#define PGWIRE_CODE_SSL		80877103u
#define PGWIRE_CODE_GSSENC		80877104u
#define PGWIRE_CODE_CANCEL		80877102u
#define PGWIRE_STARTUP_MAX	10000u		/* the server's own limit on a startup packet */
#define PGWIRE_SMALL_MAX	(1u << 20)	/* len limit of every type but the big ones */
#define PGWIRE_BIG_MAX		(1u << 30)	/* len limit of Q P B F d p / D d T E N V (exclusive) */
#define PGWIRE_CHAIN_MAX	10		/* messages walked by pgwire__chain() */
#define PGWIRE_NAME_MAX		64		/* statement/portal names kept, NUL included */

enum pgwire_dir {
	PGWIRE_CLIENT = 0,	/* frontend -> backend (the client's writes) */
	PGWIRE_SERVER = 1,	/* backend -> frontend (the client's reads) */
};

/* Record kinds: a framed message, or a change of the stream's state. */
enum pgwire_rec {
	PGWIRE_REC_MSG = 0,	/* a typed message: type, len, data */
	PGWIRE_REC_STARTUP,	/* untyped startup-phase message: code, len, data after the code */
	PGWIRE_REC_ANSWER,	/* the server's one-byte answer to SSLRequest/GSSENCRequest: type */
	PGWIRE_REC_LOST,	/* the direction could not be framed any more */
	PGWIRE_REC_RESYNC,	/* framed again */
	PGWIRE_REC_ENCRYPTED,	/* TLS or GSSAPI from here on: nothing more will be read */
};

struct pgwire_msg {
	enum pgwire_rec rec;
	uint8_t type;		/* type byte (MSG), answer byte (ANSWER), 0 otherwise */
	bool cut;		/* data_len < len - 4 (or len - 8 for STARTUP) */
	uint32_t len;		/* the length field: the message's size without the type byte */
	uint32_t code;		/* STARTUP: the protocol version or request code; server 'D':
				 * how many DataRows this record stands for (0: one) */
	const uint8_t *data;	/* captured payload prefix (after len; STARTUP: after the code) */
	uint32_t data_len;
	uint64_t ts;		/* chunk holding the first byte */
	uint64_t end_ts;	/* chunk holding the last byte (0: same as ts) */
};

typedef void (*pgwire_msg_fn)(void *ctx, enum pgwire_dir dir, const struct pgwire_msg *m);

enum pgwire_phase {
	PGWIRE_PH_STARTUP = 0,	/* client: untyped startup messages expected */
	PGWIRE_PH_TYPED,
	PGWIRE_PH_LOST,
	PGWIRE_PH_ENCRYPTED,
	PGWIRE_PH_DONE,		/* after a CancelRequest: nothing else is expected */
};

/* One direction's framing state; plain data, no allocation: the caller provides buf. */
struct pgwire_framer {
	uint8_t dir;
	uint8_t phase;
	uint8_t hdr_have;	/* header bytes gathered (5 typed, 8 startup) */
	bool answer_pending;	/* server: a one-byte SSL/GSS answer comes next */
	uint8_t hdr[8];
	uint32_t skip;		/* payload bytes of the current message still to come */
	uint32_t want;		/* payload bytes to capture for it */
	uint32_t have;		/* captured so far */
	uint64_t ts;		/* first byte of the current message */
	uint8_t *buf;
	uint32_t cap;
	uint64_t msgs, bytes, lost, resyncs, dropped_bytes;
};

/* phase: PGWIRE_PH_STARTUP for a client seen from its start, else PGWIRE_PH_TYPED. */
void pgwire_framer__init(struct pgwire_framer *f, enum pgwire_dir dir, enum pgwire_phase phase,
			 uint8_t *buf, uint32_t cap);
/* Frames one chunk; calls fn for every record completed in it. */
void pgwire_framer__feed(struct pgwire_framer *f, const uint8_t *data, size_t len, uint64_t ts,
			 pgwire_msg_fn fn, void *ctx);
/* Bytes of a message's payload the framer captures (and the BPF side copies). */
uint32_t pgwire__capture_len(enum pgwire_dir dir, uint8_t type, uint32_t len, uint32_t cap);
/* Whether a typed header is valid in dir (the framing rule above). */
bool pgwire__header_ok(enum pgwire_dir dir, uint8_t type, uint32_t len);

enum pgwire_class {
	PGWIRE_CLASS_NOT_PG = 0,
	PGWIRE_CLASS_STARTUP,		/* client: StartupMessage (protocol 3.x) */
	PGWIRE_CLASS_SSL_REQUEST,
	PGWIRE_CLASS_GSSENC_REQUEST,
	PGWIRE_CLASS_CANCEL,
	PGWIRE_CLASS_MIDSTREAM,	/* a chain of typed messages from the first byte to the last */
	PGWIRE_CLASS_READY_TAIL,	/* server: ends with ReadyForQuery; frame from the next read */
};

/*
 * A complete chain of 1..PGWIRE_CHAIN_MAX plausible messages covering buf exactly: returns the
 * count, or 0. Beyond pgwire__header_ok(): client Q ends in NUL; P, B, E, D, C names are NUL-
 * terminated printable ASCII within PGWIRE_NAME_MAX bytes; E and D/C lengths are exactly
 * name + their fixed fields; f ends in NUL; F len >= 14. Server Z status is I, T or E; C and
 * S end in NUL and C starts with an upper-case letter; E and N start with a field code among
 * SVC and end in NUL; R carries an auth code of 0..12.
 */
int pgwire__chain(enum pgwire_dir dir, const uint8_t *buf, size_t len);
/* The first write of a client on a socket of unknown state (the whole write). */
enum pgwire_class pgwire__classify_client(const uint8_t *buf, size_t len);
/* The first read of a client (a chain, or a read ending with ReadyForQuery). */
enum pgwire_class pgwire__classify_server(const uint8_t *buf, size_t len);
const char *pgwire__class_name(enum pgwire_class c);

enum pgwire_kind {
	PGWIRE_SIMPLE = 0,	/* Query */
	PGWIRE_EXTENDED,	/* Execute of a statement whose Parse was seen */
	PGWIRE_PREPARED_UNKNOWN,/* Execute of a statement prepared before tracing: name only */
	PGWIRE_COPY,		/* either protocol, answered by a Copy*Response */
	PGWIRE_FUNCTION,	/* FunctionCall */
};

enum pgwire_status {
	PGWIRE_OK = 0,
	PGWIRE_ERROR,
	PGWIRE_SKIPPED,		/* skipped by the server after an earlier error before Sync */
	PGWIRE_CANCELLED,	/* SQLSTATE 57014 */
	PGWIRE_CLOSED,		/* the connection ended first */
	PGWIRE_LOST,		/* the stream could not be framed any more */
};

struct pgwire_stmt {
	const char *text;	/* NUL-terminated; NULL for PREPARED_UNKNOWN */
	uint32_t text_len;
	bool text_cut;		/* text is a prefix (capture or text_cap) */
	bool suspended;		/* ended by PortalSuspended (Execute with a row limit) */
	bool tls;		/* the wire was encrypted (records fed from a TLS-aware source) */
	enum pgwire_kind kind;
	enum pgwire_status status;
	const char *name;	/* prepared statement name, "" unnamed, NULL for Query */
	uint64_t start_ns, end_ns;
	int64_t rows;		/* from the command tag, else DataRows seen; -1 unknown */
	uint64_t datarows;	/* DataRow messages seen */
	uint32_t parts;		/* CommandCompletes (several for a multi-statement Query) */
	char tag[32];		/* command tag without counts ("SELECT", "CREATE TABLE"), or "" */
	char sqlstate[6];	/* "" unless ERROR/CANCELLED */
	char severity[10];	/* ERROR, FATAL, ... (V field, else S) */
	char message[128];	/* M field, cut to fit */
	char txn;		/* transaction status after it: 'I', 'T', 'E', or 0 unknown */
};

typedef void (*pgwire_stmt_fn)(void *ctx, const struct pgwire_stmt *s);

struct pgwire_conn_opts {
	uint32_t text_cap;	/* statement text bytes kept (default 1024, max 65536) */
	uint32_t max_names;	/* named statements + portals (default 1024) */
	uint32_t max_inflight;	/* queued client messages (default 4096; the queue grows to it) */
	bool midstream;		/* the connection was open before tracing: no startup phase */
	pgwire_stmt_fn on_stmt;
	void *ctx;
};

struct pgwire_stats {
	uint64_t msgs[2], bytes[2];
	uint64_t stmts;			/* delivered */
	uint64_t lost;			/* losses of framing (either direction) */
	uint64_t resyncs;
	uint64_t lost_bytes;		/* bytes dropped while lost */
	uint64_t encrypted;		/* connections that went TLS/GSS */
	uint64_t dropped_names;		/* Parse/Bind of a name over max_names */
	uint64_t dropped_stmts;		/* statements over max_inflight */
	uint64_t unknown_prepared;	/* Executes of statements prepared before tracing */
	uint64_t learned;		/* names given their text by pgwire_conn__learn() */
	uint64_t unpaired;		/* server messages with nothing to answer */
	uint64_t bad_payload;		/* messages whose captured payload made no sense */
	uint64_t notices, notifications, param_status;
	uint64_t long_names;		/* names longer than PGWIRE_NAME_MAX - 1, cut */
	uint64_t cancel_requests;
};

struct pgwire_conn;

struct pgwire_conn *pgwire_conn__new(const struct pgwire_conn_opts *o);
/* Delivers what is in flight as CLOSED, then frees. NULL is fine. */
void pgwire_conn__free(struct pgwire_conn *c);
/* One chunk as a syscall saw it (ts: when), frames it and handles its records. */
void pgwire_conn__feed(struct pgwire_conn *c, enum pgwire_dir dir, const void *data, size_t len,
		       uint64_t ts);
/* One record framed elsewhere (the BPF side): what feed() does per record. */
void pgwire_conn__msg(struct pgwire_conn *c, enum pgwire_dir dir, const struct pgwire_msg *m);
/* The socket closed: statements in flight end as CLOSED. */
void pgwire_conn__close(struct pgwire_conn *c, uint64_t ts);
void pgwire_conn__stats(const struct pgwire_conn *c, struct pgwire_stats *st);
void pgwire_stats__add(struct pgwire_stats *dst, const struct pgwire_stats *src);
/* Backend pid and cancel key from BackendKeyData (0 if not seen): to match CancelRequests. */
void pgwire_conn__backend_key(const struct pgwire_conn *c, uint32_t *pid, uint32_t *key);
bool pgwire_conn__encrypted(const struct pgwire_conn *c);
/*
 * A statement prepared before tracing, whose Parse was never seen: whether stmt (a name as a
 * Bind carries it, cut as records are to PGWIRE_NAME_MAX - 1 bytes) has a known text, and
 * giving it one found elsewhere (the driver's memory, src/pgwiretrace.c), as its Parse would
 * have: its later Binds and Executes carry it. learn: 0, -EINVAL (unnamed), -ENOSPC (the
 * names table is full: counted in dropped_names).
 */
bool pgwire_conn__knows(struct pgwire_conn *c, const char *stmt);
/*
 * From a captured body (after the length) of a Bind or Parse (type): the statement's name, cut
 * as the connection cuts names (PGWIRE_NAME_MAX - 1 bytes), into out: false if the body ends
 * first. A Bind's count of parameter values, or -1 where the body ends first.
 */
bool pgwire__stmt_name(uint8_t type, const uint8_t *body, size_t len, char out[PGWIRE_NAME_MAX]);
int pgwire__bind_params(const uint8_t *body, size_t len);
/* The highest parameter ($N) a statement's text refers to outside quotes and comments, 0: none. */
int pgwire__max_param(const char *text, size_t len);
int pgwire_conn__learn(struct pgwire_conn *c, const char *stmt, const char *text, size_t len, bool cut);

const char *pgwire__status_name(enum pgwire_status s);
const char *pgwire__kind_name(enum pgwire_kind k);

#endif /* PYTRACE_PGWIRE_H */
