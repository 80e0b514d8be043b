/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SQL from PostgreSQL's wire protocol: loads bpf/pgwire.bpf.c on the socket syscalls of traced
 * processes, keeps one protocol state machine (pgwire.h) per (pid, fd) connection, and hands each
 * completed statement to the SQL capability (sqltrace__add_query), which counts it, names its
 * call site and passes it on to requests and flame graphs like libpq's.
 *
 * Connections whose server answered an SSLRequest with 'S' are encrypted: they are counted per
 * process. With libpq_for_tls (--sql-source auto) such a process gets libpq's probes from then
 * on, and each statement is counted from one source only: libpq's probes note the PGconn a thread
 * sends on (pq_current, bpf/maps.bpf.h), the wire programs pass it on with the write that follows,
 * and a statement of libpq's on a PGconn the wire reads is left to the wire.
 *
 * A socket from before tracing that carries TLS records may be an encrypted PostgreSQL
 * connection, or HTTPS: where it leads decides (sockpeer.h). Only the first make the process
 * probed; the others would cost its every statement the probes' traps for nothing.
 */
#ifndef PYTRACE_PGWIRETRACE_H
#define PYTRACE_PGWIRETRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "sockpeer.h"

/* --sql-source */
enum sql_source {
	SQL_SOURCE_AUTO,	/* the wire; libpq's probes as well, for encrypted connections */
	SQL_SOURCE_WIRE,	/* the wire only */
	SQL_SOURCE_LIBPQ,	/* libpq's probes only (the design before the wire) */
};

struct pgwiretrace_opts {
	bool enabled;
	unsigned text_cap;	/* statement bytes kept (Query, Parse) */
	bool call_sites;	/* walk the sender's Python stack at each statement */
	bool whole_stacks;	/* and always to its root (--sql-in-flame, the slow log show it all): else
				   on an event loop, only to the route frame (PT_WALK_CUT) */
	bool libpq_for_tls;	/* --sql-source auto: libpq's probes serve the encrypted connections */
	struct sockpeer_ports pg_ports;	/* --pg-ports: a TLS socket from before tracing to one of
					   these (or to a local server's port) may be PostgreSQL's */
};

struct pgwiretrace_stats {
	uint64_t statements;		/* completed statements */
	uint64_t connections;		/* PostgreSQL connections seen */
	uint64_t tls_connections;	/* of which encrypted: not readable on the wire */
	uint64_t midstream;		/* connections recognised mid-stream (opened before tracing) */
	uint64_t lost;			/* events dropped: ring buffer full */
	uint64_t conns_dropped;		/* connections not followed: a table full */
	uint64_t desync;		/* chunks whose framing was lost (resynchronized later) */
	uint64_t long_chunks;		/* chunks with more messages than one BPF pass walks */
	uint64_t quiet_closes;		/* portal Close + Sync round trips the BPF side kept to itself */
	uint64_t libpq_kept;		/* statements from libpq's probes on encrypted or unknown connections */
	uint64_t libpq_left;		/* from libpq's probes on connections the wire reads: not counted */
};

struct pgwiretrace;

extern const struct capability pgwiretrace_capability;

void pgwiretrace__stats(struct pgwiretrace *p, struct pgwiretrace_stats *st);

/*
 * TLS sockets from before tracing left unread because they lead to no PostgreSQL port known
 * (sockpeer.h), by the port they lead to: HTTPS mostly, or a PostgreSQL server on a port no rule
 * names (--pg-ports). The first PGWIRE_OTHER_PORTS ports, then *more for the sockets to the rest.
 */
#define PGWIRE_OTHER_PORTS 8
struct pgwiretrace_port {
	uint16_t port;
	uint64_t sockets;
};
unsigned pgwiretrace__tls_unread(const struct pgwiretrace *p, struct pgwiretrace_port *ports, uint64_t *more);

#endif
