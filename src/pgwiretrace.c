// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "jsonw.h"
#include "links.h"
#include "pg.h"
#include "pgwire.h"
#include "pgwire.skel.h"
#include "pgtls.h"
#include "pgwiretrace.h"
#include "pidsweep.h"
#include "pidtab.h"
#include "procs.h"
#include "session.h"
#include "sqltrace.h"
#include "tracefs.h"
#include "uprobe.h"
#include "utf8.h"
#include "util.h"
#include "uvwrite.h"

#define MAX_CONNS	PG_MAX_CONNS	/* connections followed at once, as on the BPF side */
#define MAX_PROCS	4096		/* processes with a PostgreSQL connection, for the per-process counts */

#define ORIGINS 64	/* client chunks remembered per connection: who sent what (pipelines) */
#define PEERS_READ 2	/* a process's first connections whose port is read, to learn PostgreSQL's */
#define TLS_WAIT 64	/* TLS sockets judged not PostgreSQL's, judged again if their port is learned */

/* One connection: its protocol state machine, and who sent its recent chunks. */
struct conn {
	uint64_t key;		/* pid << 32 | fd; 0: free */
	struct pgwire_conn *pw;
	struct pgwiretrace *owner;
	bool tls;
	unsigned norigins;	/* origins[] written so far (a ring) */
	struct { uint64_t ts, stack_id, task; uint32_t tid; } origins[ORIGINS];
	/* the driver's text for the next client chunk (PT_EV_PG_TEXT; driver_text), text_cap + 1 bytes */
	char *text;
	uint32_t text_len;
	bool text_cut, text_valid;
};

/*
 * Which PGconn is which socket (libpq_for_tls): the wire programs pass the PGconn a thread was
 * sending on with the write that follows. A PGconn's address is reused by a later connection;
 * the entry is rewritten at that connection's first write, before any of its results.
 */
#define PQCONNS 8192
struct pqconn {
	uint64_t key;		/* pid ^ PGconn hash; 0: free */
	uint32_t pid;
	uint64_t conn;
	bool tls;
};

/* Per process: which source served how many statements (the JSON's sql_sources). */
struct proc_src {
	uint32_t pid;		/* key (pidtab.h) */
	uint64_t wire;		/* statements read on the wire */
	uint64_t libpq;		/* statements from libpq's probes (encrypted connections) */
	uint64_t wire_tls;	/* of the wire's, read in the plaintext of encrypted ones (pgtls.h) */
	uint32_t connections, tls;	/* PostgreSQL connections, and encrypted ones */
	uint8_t peers_read;		/* of its connections, whose port was read (PEERS_READ) */
	uint32_t live;			/* of its connections, those followed now (forget_pid) */
};

struct pgwiretrace {
	struct session *session;
	struct pgwiretrace_opts o;
	struct pgwire_bpf *skel;
	struct bpf_link *links[8];	/* pg_sys_exit on each read and write syscall */
	struct pidsweep gone;		/* exited processes whose connections leave pg_conns */
	struct sqltrace *sql;
	struct pgtls *tls;		/* --sql-source auto: encrypted connections without libpq */
	bool uvloop;			/* uvloop's transport.write probed too: asyncpg's statements on uvloop */
	const char *btf_path;		/* the session's (PYTRACE_BTF), for the TLS object */
	struct conn **conns;		/* open addressing on key, MAX_CONNS slots; a conn stays put (its
				   protocol state's callback holds its address) */
	struct pidtab procs;		/* struct proc_src */
	struct pqconn *pqconns;		/* PQCONNS slots, direct-mapped with 4 probes */
	struct pgwiretrace_stats st;
	uint64_t conns_dropped;		/* here: the table was full */
	uint64_t procs_dropped;
	uint64_t unfinished;		/* statements whose connection closed or lost framing first */
	uint64_t skipped;		/* skipped by the server after an error in their pipeline */
	uint64_t unknown_prepared;	/* executions of statements prepared before tracing */
	/* such statements' texts read from the driver's frame at a send (driver_text) */
	uint64_t texts_learned;		/* names given their text */
	uint64_t texts_ambiguous;	/* chunks that Bind other statements too: none taken */
	uint64_t texts_mismatched;	/* texts whose parameters are not the Bind's: not taken */
	uint64_t tls_seen;		/* sockets not followed that carried TLS (PT_EV_PG_TLS_SEEN) */
	uint64_t not_python;		/* host-wide: events of processes not running Python (procs__ours) */
	uint64_t tls_not_pg;		/* of which not PostgreSQL's (sockpeer.h): no probes for them */
	uint64_t tls_unknown_peer;	/* of which /proc could not tell: probed, as if PostgreSQL's */
	struct pgwiretrace_port tls_other[PGWIRE_OTHER_PORTS];	/* those not PostgreSQL's, by the
					   port they lead to (the first ones; the rest in tls_other_more): the
					   summary and the collector name them, for --pg-ports */
	uint64_t tls_other_more;
	/*
	 * Ports learned as PostgreSQL's: those that connections followed here lead to (a server on
	 * another host, on a port neither the defaults nor --pg-ports name). An encrypted socket from
	 * before tracing to one of them is PostgreSQL's, in any process; one judged otherwise before
	 * the port was learned (tls_wait, a ring) is judged again.
	 */
	struct sockpeer_ports learned;
	struct { uint32_t pid; int32_t fd; uint16_t port; } tls_wait[TLS_WAIT];
	unsigned ntls_wait;		/* entries written (the ring's next is ntls_wait % TLS_WAIT) */
	uint64_t tls_learned;		/* unknown TLS sockets found PostgreSQL's by a learned port */
	uint64_t tls_wait_dropped;	/* judged not PostgreSQL's, then out of the ring: not judged again */
};

static uint64_t conn_key(uint32_t pid, int32_t fd)
{
	return (uint64_t)pid << 32 | (uint32_t)fd;
}

static uint32_t home(uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 40) % MAX_CONNS;
}

static struct conn *conn_find(struct pgwiretrace *p, uint64_t key)
{
	uint32_t i = home(key), n;

	for (n = 0; n < MAX_CONNS; n++, i = (i + 1) % MAX_CONNS) {
		if (!p->conns[i])
			return NULL;
		if (p->conns[i]->key == key)
			return p->conns[i];
	}
	return NULL;
}

static struct conn *conn_add(struct pgwiretrace *p, uint64_t key)
{
	uint32_t i = home(key), n;

	for (n = 0; n < MAX_CONNS; n++, i = (i + 1) % MAX_CONNS) {
		if (!p->conns[i]) {
			struct conn *c = calloc(1, sizeof(*c));

			if (!c)
				break;
			c->key = key;
			p->conns[i] = c;
			return c;
		}
	}
	p->conns_dropped++;
	return NULL;
}

/* Free c's slot; entries after it that would no longer be found move back (no tombstones). */
static void conn_del(struct pgwiretrace *p, struct conn *c)
{
	uint32_t hole = home(c->key), j, n;
	struct proc_src *src;

	for (n = 0; n < MAX_CONNS && p->conns[hole] != c; n++)
		hole = (hole + 1) % MAX_CONNS;
	if (n == MAX_CONNS)
		return;
	src = pidtab__get(&p->procs, (uint32_t)(c->key >> 32));
	if (src && src->live)
		src->live--;
	pgwire_conn__free(c->pw);
	free(c->text);
	free(c);
	p->conns[hole] = NULL;
	for (j = hole;;) {
		uint32_t h;
		bool stays;

		j = (j + 1) % MAX_CONNS;
		if (!p->conns[j])
			break;
		h = home(p->conns[j]->key);
		stays = hole < j ? (hole < h && h <= j) : (hole < h || h <= j);
		if (!stays) {
			p->conns[hole] = p->conns[j];
			p->conns[j] = NULL;
			hole = j;
		}
	}
}

static struct proc_src *proc_src(struct pgwiretrace *p, uint32_t pid)
{
	struct proc_src *ps = pidtab__add(&p->procs, pid, NULL);

	if (!ps)
		p->procs_dropped++;
	return ps;
}

static struct pqconn *pqconn_slot(struct pgwiretrace *p, uint32_t pid, uint64_t conn, bool create)
{
	uint64_t key = (conn ^ ((uint64_t)pid << 40)) * 0x9e3779b97f4a7c15ULL | 1;
	uint32_t i, home = key >> 51, victim = home % PQCONNS;

	for (i = 0; i < 4; i++) {
		struct pqconn *q = &p->pqconns[(home + i) % PQCONNS];

		if (q->pid == pid && q->conn == conn)
			return q;
		if (!q->key)
			victim = (home + i) % PQCONNS;
	}
	if (!create)
		return NULL;
	p->pqconns[victim] = (struct pqconn){ .key = key, .pid = pid, .conn = conn };
	return &p->pqconns[victim];
}

/* A PGconn seen writing on a socket: plaintext (read here) or encrypted (libpq's). */
static void pqconn_seen(struct pgwiretrace *p, uint32_t pid, uint64_t conn, bool tls)
{
	struct pqconn *q;

	if (!conn || !p->o.libpq_for_tls)
		return;
	q = pqconn_slot(p, pid, conn, true);
	q->tls = tls;
}

/* sqltrace: is a statement of libpq's probes one the wire has not read? */
static bool keep_libpq(void *ctx, uint32_t pid, uint64_t conn)
{
	struct pgwiretrace *p = ctx;
	struct pqconn *q = pqconn_slot(p, pid, conn, false);
	struct proc_src *src;

	if (q && !q->tls) {
		p->st.libpq_left++;
		return false;
	}
	p->st.libpq_kept++;
	src = proc_src(p, pid);
	if (src)
		src->libpq++;
	return true;
}

static int stack_lookup(void *ctx, uint64_t id, struct pt_stack *st)
{
	struct pgwiretrace *p = ctx;

	if (bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.pg_stacks), &id, st))
		return -ENOENT;
	return 0;
}

/*
 * The thread and stack of the client chunk a statement started in: its start is that chunk's
 * timestamp. A pipeline's statements were sent in earlier chunks than the one in flight.
 */
static void origin(const struct conn *c, uint64_t ts, uint32_t *tid, uint64_t *stack_id, uint64_t *task)
{
	unsigned i, n = c->norigins < ORIGINS ? c->norigins : ORIGINS;

	*tid = 0;
	*stack_id = 0;
	*task = 0;
	for (i = 0; i < n; i++) {
		unsigned k = (c->norigins - 1 - i) % ORIGINS;

		if (c->origins[k].ts == ts) {
			*tid = c->origins[k].tid;
			*stack_id = c->origins[k].stack_id;
			*task = c->origins[k].task;
			return;
		}
	}
}

/* A statement the protocol state machine completed. */
static void on_statement(void *ctx, const struct pgwire_stmt *ps)
{
	struct conn *c = ctx;
	struct pgwiretrace *p = c->owner;
	uint32_t pid = c->key >> 32;
	char unknown[PGWIRE_NAME_MAX + 16];
	struct sql_query q = {
		.pid = pid,
		.conn = c->key,
		.start_ns = ps->start_ns,
		.end_ns = ps->end_ns >= ps->start_ns ? ps->end_ns : ps->start_ns,
		.text = ps->text,
		.len = ps->text_len,
		.name = ps->name,
		.truncated = ps->text_cut,
		.error = ps->status != PGWIRE_OK,
		.prepared = ps->kind == PGWIRE_EXTENDED && ps->name && ps->name[0],
		.params = ps->kind == PGWIRE_EXTENDED,
	};
	struct proc_src *src;

	if (ps->status == PGWIRE_CLOSED || ps->status == PGWIRE_LOST) {
		p->unfinished++;	/* no completion seen: no latency to report */
		return;
	}
	if (!ps->text) {
		/* prepared before tracing: named, as libpq's probes named it */
		snprintf(unknown, sizeof(unknown), "EXECUTE %s", ps->name ? ps->name : "");
		q.text = unknown;
		q.len = strlen(unknown);
		q.named_only = true;
		p->unknown_prepared++;
	}
	origin(c, ps->start_ns, &q.tid, &q.stack_id, &q.task);
	q.rows_known = ps->rows >= 0 && ps->status == PGWIRE_OK;
	q.rows = ps->rows;
	/* both 6 bytes, NUL-terminated (a formatted copy here was a tenth of the collector's time) */
	_Static_assert(sizeof(q.sqlstate) == sizeof(ps->sqlstate), "SQLSTATE buffers differ");
	if (ps->status != PGWIRE_SKIPPED)
		memcpy(q.sqlstate, ps->sqlstate, sizeof(q.sqlstate));
	q.sqlstate[sizeof(q.sqlstate) - 1] = 0;
	p->st.statements++;
	if (ps->status == PGWIRE_SKIPPED)
		p->skipped++;
	src = proc_src(p, pid);
	if (src) {
		src->wire++;
		src->wire_tls += (int32_t)(uint32_t)c->key < 0;	/* pg_tls_fd(): a TLS object's plaintext */
	}
	sqltrace__add_query(p->sql, &q, stack_lookup, p);
}

static void encrypted(struct pgwiretrace *p, pid_t pid);

/*
 * A connection followed here is PostgreSQL's (its StartupMessage, its SSLRequest, its frontend
 * messages): where it leads is a PostgreSQL port, learned for the encrypted sockets from before
 * tracing (tls_socket_may_be_pg) of every process. Read for a process's first PEERS_READ
 * connections only (one /proc/PID/net read each; a process mostly talks to one server or two),
 * as they come, while the socket is surely open.
 */
static void learn_port(struct pgwiretrace *p, pid_t pid, int fd)
{
	struct sockpeer sp;
	unsigned i, j, n;

	if (sockpeer__get(pid, fd, &sp) || sp.kind != SOCKPEER_TCP_OUT ||
	    sockpeer__ports_has(&p->o.pg_ports, sp.remote_port) || !sockpeer__ports_add(&p->learned, sp.remote_port))
		return;
	vlog("pid %d: a PostgreSQL connection to port %u: TLS sockets from before tracing to that port are "
	     "PostgreSQL's too\n", (int)pid, sp.remote_port);
	/* those judged otherwise: their processes get the probes now, if the socket is still the one
	 * judged (not closed, its descriptor not reused) */
	n = p->ntls_wait < TLS_WAIT ? p->ntls_wait : TLS_WAIT;
	for (i = 0; i < n; i++) {
		struct sockpeer now;

		if (p->tls_wait[i].port != sp.remote_port || !p->tls_wait[i].pid)
			continue;
		if (sockpeer__get(p->tls_wait[i].pid, p->tls_wait[i].fd, &now) || now.kind != SOCKPEER_TCP_OUT ||
		    now.remote_port != sp.remote_port) {
			p->tls_wait[i].pid = 0;
			continue;
		}
		p->tls_not_pg--;
		p->tls_learned++;
		encrypted(p, p->tls_wait[i].pid);
		p->tls_wait[i].pid = 0;
	}
	/* the ports left alone: not this one now */
	for (i = j = 0; i < ARRAY_SIZE(p->tls_other); i++)
		if (p->tls_other[i].port != sp.remote_port)
			p->tls_other[j++] = p->tls_other[i];
	while (j < ARRAY_SIZE(p->tls_other))
		p->tls_other[j++] = (struct pgwiretrace_port){ 0 };
}

static struct conn *conn_get(struct pgwiretrace *p, const struct pg_event *e, bool create)
{
	uint64_t key = conn_key(e->hdr.pid, e->fd);
	struct conn *c = conn_find(p, key);
	struct proc_src *src;

	if (c || !create)
		return c;
	c = conn_add(p, key);
	if (!c)
		return NULL;
	{
		struct pgwire_conn_opts po = {
			.text_cap = p->o.text_cap, .midstream = e->flags & PG_EF_MIDSTREAM,
			.on_stmt = on_statement, .ctx = c,
		};

		c->owner = p;
		c->pw = pgwire_conn__new(&po);
	}
	if (!c->pw) {
		conn_del(p, c);
		return NULL;
	}
	p->st.connections++;
	if (e->flags & PG_EF_MIDSTREAM)
		p->st.midstream++;
	src = proc_src(p, e->hdr.pid);
	if (src) {
		src->connections++;
		src->live++;
	}
	if (src && p->o.libpq_for_tls && src->peers_read < PEERS_READ) {
		src->peers_read++;
		learn_port(p, e->hdr.pid, e->fd);
	}
	return c;
}

/*
 * pid has an encrypted connection (--sql-source auto): its plaintext through OpenSSL's probes,
 * or, where it maps libpq, libpq's own (which see statements before encryption).
 */
static void encrypted(struct pgwiretrace *p, pid_t pid)
{
	if (!p->o.libpq_for_tls || pgtls__encrypted(p->tls, pid) != PGTLS_LIBPQ)
		return;
	p->skel->bss->libpq_probed = true;	/* before the probes: none is missed */
	sqltrace__probe_libpq(p->sql, pid);
}

/* A socket from before tracing carried TLS: may it be PostgreSQL's (sockpeer.h)? Counted. */
static bool tls_socket_may_be_pg(struct pgwiretrace *p, pid_t pid, int fd)
{
	struct sockpeer sp;
	unsigned i;

	switch (sockpeer__pg(pid, fd, &p->o.pg_ports, &sp)) {
	case SOCKPEER_PG_YES:
		return true;
	case SOCKPEER_PG_UNKNOWN:
		p->tls_unknown_peer++;
		return true;
	case SOCKPEER_PG_NO:
		break;
	}
	if (sp.kind == SOCKPEER_TCP_OUT && sockpeer__ports_has(&p->learned, sp.remote_port)) {
		p->tls_learned++;
		return true;
	}
	p->tls_not_pg++;
	if (sp.kind == SOCKPEER_TCP_OUT) {
		unsigned k = p->ntls_wait++ % TLS_WAIT;

		if (p->tls_wait[k].pid)
			p->tls_wait_dropped++;
		p->tls_wait[k].pid = pid;
		p->tls_wait[k].fd = fd;
		p->tls_wait[k].port = sp.remote_port;
	}
	if (sp.kind == SOCKPEER_TCP_OUT) {
		for (i = 0; i < ARRAY_SIZE(p->tls_other); i++) {
			if (!p->tls_other[i].port)
				p->tls_other[i].port = sp.remote_port;
			if (p->tls_other[i].port == sp.remote_port) {
				p->tls_other[i].sockets++;
				break;
			}
		}
		if (i == ARRAY_SIZE(p->tls_other))
			p->tls_other_more++;
	}
	dlog("pid %d fd %d: TLS on a socket not PostgreSQL's (kind %d, port %u -> %u): not probed\n", (int)pid, fd,
	     sp.kind, sp.local_port, sp.remote_port);
	return false;
}

/*
 * A client chunk that Binds a statement prepared before tracing (no Parse of it seen): the
 * connection knows only its name. Its process's walkers are asked for the text its driver's
 * frame holds (procs__want_text, struct pt_proc's text_code), which the programs copy from
 * then on and send just before the chunk (PT_EV_PG_TEXT: on_text), and the name takes it as a
 * Parse would have given it, where the chunk shows it to be that statement's: every Bind of
 * the chunk names it (a pipeline's write, flushed from another statement's frame, gives none),
 * and the text has as many parameters ($N) as the Binds carry values (procs__text_taken).
 */
static void driver_text(struct pgwiretrace *p, struct conn *c, const struct pg_event *e, size_t at, size_t end)
{
	char stmt[PGWIRE_NAME_MAX], first[PGWIRE_NAME_MAX] = "", parsed[4][PGWIRE_NAME_MAX];
	bool mixed = false;
	int params = -2, k;
	unsigned i, nparsed = 0;

	for (i = 0; i < e->nrec && at + sizeof(struct pg_rec) <= end; i++) {
		const struct pg_rec *r = (const void *)((const char *)e + at);
		const uint8_t *body = (const uint8_t *)r + sizeof(*r);

		if (at + sizeof(*r) + r->caplen > end)
			break;
		at += (sizeof(*r) + r->caplen + 7) & ~(size_t)7;
		if (r->type == 'P' && pgwire__stmt_name(r->type, body, r->caplen, stmt) && stmt[0] && nparsed < 4)
			strcpy(parsed[nparsed++], stmt);
		if (r->type != 'B' || !pgwire__stmt_name(r->type, body, r->caplen, stmt))
			continue;
		k = pgwire__bind_params(body, r->caplen);
		if (!first[0] && params == -2) {
			strcpy(first, stmt);
			params = k;
		} else if (strcmp(first, stmt)) {
			mixed = true;
		} else if (k != params) {
			params = -1;
		}
	}
	for (i = 0; i < nparsed && strcmp(parsed[i], first); i++)
		;
	if (!first[0] || i < nparsed || pgwire_conn__knows(c->pw, first))
		return;	/* none, or prepared in this chunk (a Parse before its Bind), or known */
	procs__want_text(session__procs(p->session), e->hdr.pid, mono_ns());
	if (!c->text_valid)
		return;
	if (mixed || params < 0) {
		p->texts_ambiguous++;
		return;
	}
	k = pgwire__max_param(c->text, c->text_len);
	if (c->text_cut ? k > params : k != params) {
		p->texts_mismatched++;	/* the frame sent another statement */
		return;
	}
	if (!pgwire_conn__learn(c->pw, first, c->text, c->text_len, c->text_cut)) {
		procs__text_taken(session__procs(p->session), e->hdr.pid);
		p->texts_learned++;
		dlog("pid %d fd %d: statement %s prepared before tracing: %.80s\n", (int)e->hdr.pid, e->fd, first,
		     c->text);
	}
}

/* The driver's text for the connection's next client chunk (driver_text). */
static void on_text(struct pgwiretrace *p, const struct pg_text *t, size_t size)
{
	struct conn *c;

	if (size < offsetof(struct pg_text, text) || t->caplen > PG_TEXT_MAX ||
	    size < offsetof(struct pg_text, text) + t->caplen)
		return;
	c = conn_find(p, conn_key(t->hdr.pid, t->fd));
	if (!c)
		return;
	if (!c->text && !(c->text = malloc((size_t)p->o.text_cap + 1)))
		return;
	if (t->kind) {
		/* a str's code units (not ASCII): UTF-8, as the driver encodes it for the wire */
		size_t used;

		if (t->kind != 1 && t->kind != 2 && t->kind != 4)
			return;
		c->text_len = (uint32_t)utf8_from_ucs(t->text, t->caplen / t->kind, t->kind, c->text,
						      (size_t)p->o.text_cap + 1, &used);
		c->text_cut = t->len > used;
	} else {
		c->text_len = t->caplen < p->o.text_cap ? t->caplen : p->o.text_cap;
		memcpy(c->text, t->text, c->text_len);
		c->text[c->text_len] = 0;
		c->text_len = (uint32_t)strlen(c->text);	/* a NUL inside ends it */
		c->text_cut = t->len > c->text_len;
	}
	c->text_valid = true;
}

static void handle_data(struct pgwiretrace *p, const struct pg_event *e, size_t size)
{
	size_t end = offsetof(struct pg_event, data) + e->data_len, at = offsetof(struct pg_event, data);
	struct conn *c;
	uint32_t i;

	if (size < at || e->data_len > PG_EV_DATA || size < end)
		return;
	c = conn_get(p, e, true);
	if (!c)
		return;
	if (e->flags & PG_EF_TLS) {
		struct pgwire_msg m = { .rec = PGWIRE_REC_ANSWER, .type = 'S', .ts = e->ts, .end_ts = e->ts };
		struct proc_src *src = proc_src(p, e->hdr.pid);

		if (!c->tls) {
			c->tls = true;
			p->st.tls_connections++;
			if (src)
				src->tls++;
		}
		pgwire_conn__msg(c->pw, PGWIRE_SERVER, &m);
		encrypted(p, e->hdr.pid);
		return;
	}
	if (e->flags & PG_EF_RESYNC) {
		struct pgwire_msg m = { .rec = PGWIRE_REC_RESYNC, .ts = e->ts, .end_ts = e->ts };

		pgwire_conn__msg(c->pw, e->dir, &m);
	}
	if (e->flags & PG_EF_SYNC_KEPT) {
		/* the Sync of a portal's Close that the BPF side kept, its answer not as it expected */
		struct pgwire_msg m = { .rec = PGWIRE_REC_MSG, .type = 'S', .len = 4, .ts = e->ts, .end_ts = e->ts };

		pgwire_conn__msg(c->pw, PGWIRE_CLIENT, &m);
	}
	if (e->dir == PG_DIR_CLIENT) {
		unsigned k = c->norigins++ % ORIGINS;

		pqconn_seen(p, e->hdr.pid, e->pqconn, false);

		c->origins[k].ts = e->ts;
		c->origins[k].tid = e->tid;
		c->origins[k].stack_id = e->stack_id;
		c->origins[k].task = pt_task_key(e->task_frame, e->root_frame);
		driver_text(p, c, e, at, end);
		c->text_valid = false;	/* a text is for the chunk that follows it */
	}
	/* Records, each followed by its body and padded to 8 bytes. */
	for (i = 0; i < e->nrec && at + sizeof(struct pg_rec) <= end; i++) {
		const struct pg_rec *r = (const void *)((const char *)e + at);
		const uint8_t *body = (const uint8_t *)r + sizeof(*r);
		struct pgwire_msg m = {
			.rec = PGWIRE_REC_MSG, .type = r->type, .len = r->len, .data = body, .data_len = r->caplen,
			.cut = (r->flags & PG_RF_CUT) || (uint32_t)r->caplen + 4 < r->len, .ts = e->ts, .end_ts = e->ts,
		};

		if (at + sizeof(*r) + r->caplen > end)
			break;
		if (r->rows_before) {
			/* the DataRows before this record: their count (pgwire_conn counts code rows) */
			struct pgwire_msg d = { .rec = PGWIRE_REC_MSG, .type = 'D', .len = 4, .code = r->rows_before,
						.ts = e->ts, .end_ts = e->ts };

			pgwire_conn__msg(c->pw, PGWIRE_SERVER, &d);
		}
		if (!r->type) {
			/* untyped startup message: its code, then what was kept after it */
			if (r->caplen < 4)
				goto next;
			m.rec = PGWIRE_REC_STARTUP;
			m.code = (uint32_t)body[0] << 24 | (uint32_t)body[1] << 16 | (uint32_t)body[2] << 8 | body[3];
			m.data = body + 4;
			m.data_len = r->caplen - 4;
			m.cut = r->len > 8 + m.data_len;
		}
		pgwire_conn__msg(c->pw, e->dir == PG_DIR_CLIENT ? PGWIRE_CLIENT : PGWIRE_SERVER, &m);
next:
		at += (sizeof(*r) + r->caplen + 7) & ~(size_t)7;
	}
	if (e->flags & PG_EF_PARTIAL) {
		struct pgwire_msg m = { .rec = PGWIRE_REC_LOST, .ts = e->ts, .end_ts = e->ts };

		pgwire_conn__msg(c->pw, e->dir, &m);
	}
	/* Name a statement's stack while its process surely lives. */
	if (e->dir == PG_DIR_CLIENT && e->stack_id)
		sqltrace__name_stack(p->sql, e->hdr.pid, e->tid, e->stack_id, stack_lookup, p);
}

static void pgwiretrace_event(void *ctx, const void *data, size_t size)
{
	struct pgwiretrace *p = ctx;
	const struct pg_event *e = data;
	struct conn *c;

	if (size < sizeof(struct pt_event_hdr))
		return;
	/* before any connection of the pid is touched: a verdict of "not Python" forgets them */
	if (!procs__ours(session__procs(p->session), e->hdr.pid)) {
		p->not_python++;
		return;
	}
	if (e->hdr.type == PT_EV_PG_TEXT) {
		on_text(p, data, size);	/* shorter than a pg_event's head */
		return;
	}
	if (size < offsetof(struct pg_event, data))
		return;
	switch (e->hdr.type) {
	case PT_EV_PG_DATA:
		handle_data(p, e, size);
		break;
	case PT_EV_PG_CONN:
		pqconn_seen(p, e->hdr.pid, e->pqconn, true);
		break;
	case PT_EV_PG_TLS_SEEN:
		/* perhaps an encrypted PostgreSQL connection from before tracing, which the probes
		 * recognise at its next statement; perhaps HTTPS, which they would not serve */
		p->tls_seen++;
		if (p->o.libpq_for_tls && tls_socket_may_be_pg(p, e->hdr.pid, e->fd))
			encrypted(p, e->hdr.pid);
		break;
	case PT_EV_PG_CLOSE:
		c = conn_get(p, e, false);
		if (c) {
			pgwire_conn__close(c->pw, e->ts);
			conn_del(p, c);
		}
		break;
	}
}

/* pid exited or exec'd: its connections end (their close() calls were never seen). */
static void forget_pid(void *ctx, pid_t pid)
{
	struct pgwiretrace *p = ctx;
	const struct proc_src *src = pidtab__get(&p->procs, (uint32_t)pid);
	uint32_t i;

	/* most processes that come and go never had one: no walk of every slot for them */
	for (i = 0; (src ? src->live : p->procs_dropped) && i < MAX_CONNS; i++) {
		struct conn *c;

		while ((c = p->conns[i]) && (uint32_t)(c->key >> 32) == (uint32_t)pid) {
			pgwire_conn__close(c->pw, mono_ns());
			conn_del(p, c);	/* may shift another entry into slot i: look again */
		}
	}
	pidsweep__add(&p->gone, bpf_map__fd(p->skel->maps.pg_conns), (uint32_t)pid, mono_ns());
	if (p->tls)
		pgtls__forget(p->tls, pid);
	for (i = 0; i < TLS_WAIT; i++)
		if (p->tls_wait[i].pid == (uint32_t)pid)
			p->tls_wait[i].pid = 0;
}

static void pgwiretrace_tick(void *ctx, uint64_t now_ns)
{
	struct pgwiretrace *p = ctx;

	pidsweep__tick(&p->gone, bpf_map__fd(p->skel->maps.pg_conns), now_ns);
}

static void pgwiretrace_free(void *ctx)
{
	struct pgwiretrace *p = ctx;
	uint32_t i;

	if (!p)
		return;
	for (i = 0; p->conns && i < MAX_CONNS; i++)
		if (p->conns[i]) {
			pgwire_conn__free(p->conns[i]->pw);
			free(p->conns[i]->text);
			free(p->conns[i]);
		}
	free(p->conns);
	free(p->pqconns);
	pidtab__fini(&p->procs);
	links__destroy(p->links, ARRAY_SIZE(p->links));
	pgtls__free(p->tls);
	if (p->skel)
		links__detach_skeleton(p->skel->skeleton);
	pgwire_bpf__destroy(p->skel);
	free(p);
}

/* The object is loaded (ret: its result): what needs its maps. */
static int pgwire_loaded(void *ctx, int ret, char *err, size_t errlen)
{
	struct pgwiretrace *p = ctx;

	if (ret) {
		snprintf(err, errlen, "cannot load the wire-protocol BPF programs: %s%s", strerror(-ret),
			 pt_verbose ? "" : " (run with -v for the verifier's log)");
		return ret;
	}
	if (p->o.libpq_for_tls) {
		struct pgtls_opts to = {
			.maps = session__maps(p->session), .pg_stacks = p->skel->maps.pg_stacks,
			.pg_last_stack = p->skel->maps.pg_last_stack, .text_cap = p->skel->rodata->text_cap,
			.call_sites = p->o.call_sites, .whole_stacks = p->o.whole_stacks, .btf_path = p->btf_path,
		};

		p->tls = pgtls__new(&to, err, errlen);
		if (!p->tls)
			return -EINVAL;
		sqltrace__keep_libpq(p->sql, keep_libpq, p);
	}
	return 0;
}

static void *pgwiretrace_open(struct session *ss, const struct session_opts *so, char *err, size_t errlen)
{
	struct pgwiretrace *p;

	if (!so->pgwire.enabled)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->session = ss;
	p->o = so->pgwire;
	p->sql = session__cap(ss, "sql");
	if (!p->sql) {
		snprintf(err, errlen, "the wire protocol needs the SQL capability");
		goto fail;
	}
	p->conns = calloc(MAX_CONNS, sizeof(*p->conns));
	p->pqconns = calloc(PQCONNS, sizeof(*p->pqconns));
	if (!p->conns || !p->pqconns || pidtab__init(&p->procs, MAX_PROCS, sizeof(struct proc_src))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!tracefs__syscall_events()) {
		snprintf(err, errlen, "the wire protocol needs the per-syscall tracepoints (tracefs at " TRACEFS ")");
		goto fail;
	}
	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = so->btf_path);
	p->skel = pgwire_bpf__open_opts(&oo);
	if (!p->skel) {
		snprintf(err, errlen, "cannot open the wire-protocol BPF object: %s", strerror(errno));
		goto fail;
	}
	/* The text keeps its NUL on the wire: one more byte than the user's cap. */
	p->skel->rodata->text_cap = p->o.text_cap + 1 > PG_CAP_MAX - 64 ? PG_CAP_MAX - 64 : p->o.text_cap + 1;
	p->skel->rodata->call_sites = p->o.call_sites;
	p->skel->rodata->cut_stacks = p->o.call_sites && !p->o.whole_stacks;
	pg_caps_fill(p->skel->bss->pg_caps, p->skel->rodata->text_cap);
	if (session_maps__reuse(session__maps(ss), p->skel->obj, err, errlen))
		goto fail;
	/* loaded by uvwrite in an instance of its own, at the first process that imports uvloop */
	bpf_program__set_autoload(p->skel->progs.uvloop_write_pg, false);
	if (p->o.call_sites) {
		size_t elf_size;
		const void *elf = pgwire_bpf__elf_bytes(&elf_size);
		const struct uvwrite_prog up = {
			.elf = elf, .elf_size = elf_size, .obj_name = "pgwire_bpf",
			.prog_name = "uvloop_write_pg", .btf_path = so->btf_path,
			.obj = p->skel->obj,
		};

		if (uvwrite__prog(session__uvwrite(ss), &up) < 0) {
			snprintf(err, errlen, "cannot add the uvloop probe");
			goto fail;
		}
		p->uvloop = true;
	}
	p->btf_path = so->btf_path;
	/* verified beside the capabilities opened after this one (session__load_later) */
	if (!session__load_later(ss, p->skel->skeleton, pgwire_loaded, p))
		return p;
	if (pgwire_loaded(p, pgwire_bpf__load(p->skel), err, errlen))
		goto fail;
	return p;
fail:
	pgwiretrace_free(p);
	return NULL;
}

/* The syscalls whose return the one read/write program follows (bpf/pgwire.bpf.c). */
static const char *const rw_syscalls[] = {
	"sys_exit_read", "sys_exit_recvfrom", "sys_exit_readv", "sys_exit_recvmsg",
	"sys_exit_write", "sys_exit_sendto", "sys_exit_writev", "sys_exit_sendmsg",
};

static int pgwiretrace_attach(void *ctx, char *err, size_t errlen)
{
	struct pgwiretrace *p = ctx;
	int ret = pgwire_bpf__attach(p->skel);	/* connect and close */
	size_t i;

	if (ret) {
		snprintf(err, errlen, "cannot attach the wire-protocol programs: %s", strerror(-ret));
		return ret;
	}
	for (i = 0; i < ARRAY_SIZE(rw_syscalls); i++) {
		p->links[i] = bpf_program__attach_tracepoint(p->skel->progs.pg_sys_exit, "syscalls", rw_syscalls[i]);
		if (!p->links[i]) {
			ret = -errno;
			snprintf(err, errlen, "cannot attach the wire-protocol program to %s: %s", rw_syscalls[i],
				 strerror(-ret));
			return ret;
		}
	}
	vlog("SQL: statements from PostgreSQL's wire protocol on the socket syscalls\n");
	return 0;
}

/* The end: statements still waiting for their completion stay unfinished, counted. */
static void pgwiretrace_flush(void *ctx)
{
}

unsigned pgwiretrace__tls_unread(const struct pgwiretrace *p, struct pgwiretrace_port *ports, uint64_t *more)
{
	unsigned n = 0;

	for (unsigned i = 0; i < PGWIRE_OTHER_PORTS; i++)
		if (p->tls_other[i].port && p->tls_other[i].sockets)
			ports[n++] = p->tls_other[i];
	*more = p->tls_other_more;
	return n;
}

void pgwiretrace__stats(struct pgwiretrace *p, struct pgwiretrace_stats *st)
{
	*st = p->st;
	st->lost = session__counter(p->session, PT_CNT_PG_LOST);
	st->conns_dropped = session__counter(p->session, PT_CNT_PG_CONN_DROPPED) + p->conns_dropped;
	st->desync = session__counter(p->session, PT_CNT_PG_DESYNC);
	st->long_chunks = session__counter(p->session, PT_CNT_PG_LONG);
	st->quiet_closes = session__counter(p->session, PT_CNT_PG_QUIET);
}

static void pgwiretrace_json(void *ctx, struct jsonw *w)
{
	struct pgwiretrace *p = ctx;
	struct pgwiretrace_stats st;
	uint32_t i;

	pgwiretrace__stats(p, &st);
	jsonw__name(w, "sql_wire");
	jsonw__start_object(w);
	jsonw__uint_field(w, "statements", st.statements);
	jsonw__uint_field(w, "connections", st.connections);
	jsonw__uint_field(w, "tls_connections", st.tls_connections);
	jsonw__uint_field(w, "recognised_midstream", st.midstream);
	if (p->uvloop) {
		struct uvwrite_stats us;

		uvwrite__stats(session__uvwrite(p->session), &us);
		/* processes whose statements queued by uvloop keep their sender's stack (uvwrite.h) */
		jsonw__uint_field(w, "uvloop_processes_probed", us.processes);
		jsonw__uint_field(w, "uvloop_processes_failed", us.failed);
	}
	jsonw__uint_field(w, "skipped_after_error", p->skipped);
	jsonw__uint_field(w, "unfinished", p->unfinished);
	jsonw__uint_field(w, "unknown_prepared", p->unknown_prepared);
	jsonw__name(w, "prepared_before_tracing");
	jsonw__start_object(w);
	jsonw__uint_field(w, "texts_from_driver", p->texts_learned);
	jsonw__uint_field(w, "chunks_ambiguous", p->texts_ambiguous);
	jsonw__uint_field(w, "texts_mismatched", p->texts_mismatched);
	jsonw__end_object(w);
	jsonw__uint_field(w, "lost_events", st.lost);
	jsonw__uint_field(w, "connections_not_followed", st.conns_dropped);
	jsonw__uint_field(w, "framing_lost", st.desync);
	jsonw__uint_field(w, "chunks_too_long", st.long_chunks);
	jsonw__uint_field(w, "portal_close_round_trips_kept_in_kernel", st.quiet_closes);
	jsonw__uint_field(w, "events_of_processes_not_python", p->not_python);
	jsonw__bool_field(w, "libpq_for_encrypted", p->o.libpq_for_tls);
	jsonw__uint_field(w, "libpq_statements", st.libpq_kept);
	jsonw__uint_field(w, "libpq_statements_left_to_the_wire", st.libpq_left);
	if (p->tls) {
		struct pgtls_stats ts;

		pgtls__stats(p->tls, &ts);
		jsonw__name(w, "tls_plaintext");
		jsonw__start_object(w);
		jsonw__uint_field(w, "processes_probed", ts.processes);
		jsonw__uint_field(w, "processes_probed_at_internal_functions", ts.internal);
		jsonw__uint_field(w, "processes_not_probed", ts.failed);
		jsonw__uint_field(w, "processes_left_to_libpq", ts.with_libpq);
		jsonw__uint_field(w, "unknown_tls_sockets", p->tls_seen);
		jsonw__uint_field(w, "unknown_tls_sockets_not_postgres", p->tls_not_pg);
		jsonw__uint_field(w, "unknown_tls_sockets_unresolved", p->tls_unknown_peer);
		jsonw__uint_field(w, "unknown_tls_sockets_postgres_by_learned_port", p->tls_learned);
		jsonw__uint_field(w, "unknown_tls_sockets_not_judged_again", p->tls_wait_dropped);
		jsonw__name(w, "postgres_ports_learned");
		jsonw__start_array(w);
		for (i = 0; i < p->learned.n; i++)
			jsonw__uint(w, p->learned.port[i]);
		jsonw__end_array(w);
		jsonw__end_object(w);
	}
	jsonw__name(w, "processes");
	jsonw__start_array(w);
	for (i = 0; i < p->procs.cap; i++) {
		const struct proc_src *ps = pidtab__slot(&p->procs, i);

		if (!ps)
			continue;
		jsonw__start_object(w);
		jsonw__uint_field(w, "pid", ps->pid);
		jsonw__uint_field(w, "wire_statements", ps->wire);
		jsonw__uint_field(w, "wire_statements_tls", ps->wire_tls);
		jsonw__uint_field(w, "libpq_statements", ps->libpq);
		jsonw__uint_field(w, "connections", ps->connections);
		jsonw__uint_field(w, "tls_connections", ps->tls);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__uint_field(w, "processes_not_counted", p->procs_dropped);
	jsonw__end_object(w);
}

static void pgwiretrace_summary(void *ctx, FILE *f)
{
	struct pgwiretrace *p = ctx;
	struct pgwiretrace_stats st;

	pgwiretrace__stats(p, &st);
	fprintf(f, "SQL on the wire: %llu statements on %llu PostgreSQL connection%s (%llu encrypted, %llu "
		"recognised mid-stream); lost events %llu, framing lost %llu.",
		(unsigned long long)st.statements, (unsigned long long)st.connections,
		st.connections == 1 ? "" : "s", (unsigned long long)st.tls_connections,
		(unsigned long long)st.midstream, (unsigned long long)st.lost, (unsigned long long)st.desync);
	if (p->o.libpq_for_tls)
		fprintf(f, " From libpq's probes (encrypted connections): %llu.", (unsigned long long)st.libpq_kept);
	if (p->tls) {
		struct pgtls_stats ts;

		pgtls__stats(p->tls, &ts);
		if (ts.processes)
			fprintf(f, " Encrypted connections read through OpenSSL's probes in %u process%s.", ts.processes,
				ts.processes == 1 ? "" : "es");
	}
	if (p->tls_not_pg) {
		unsigned i;

		fprintf(f, " %llu TLS socket%s from before tracing led elsewhere than PostgreSQL (",
			(unsigned long long)p->tls_not_pg, p->tls_not_pg == 1 ? "" : "s");
		for (i = 0; i < ARRAY_SIZE(p->tls_other) && p->tls_other[i].port; i++)
			fprintf(f, "%s%u", i ? ", " : "ports ", p->tls_other[i].port);
		fprintf(f, "%s): not probed%s.", i ? "" : "accepted connections, unix sockets, or closed before seen",
			i ? " (--pg-ports names PostgreSQL's)" : "");
	}
	if (p->unknown_prepared || p->texts_learned) {
		struct procs_stats ps;

		procs__stats(session__procs(p->session), &ps);
		fprintf(f, " Statements prepared before tracing: %llu text%s read from the driver, %llu execution%s "
			"named only (EXECUTE name)", (unsigned long long)p->texts_learned,
			p->texts_learned == 1 ? "" : "s", (unsigned long long)p->unknown_prepared,
			p->unknown_prepared == 1 ? "" : "s");
		if (ps.texts_given_up)
			fprintf(f, "; texts no longer copied in %u process%s, whose names took too few of them "
				"(sent through no frame of its driver's)", ps.texts_given_up, ps.texts_given_up == 1 ? "" : "es");
		fputc('.', f);
	}
	if (p->learned.n) {
		unsigned i;

		fprintf(f, " PostgreSQL port%s learned from its connections:", p->learned.n == 1 ? "" : "s");
		for (i = 0; i < p->learned.n; i++)
			fprintf(f, "%s %u", i ? "," : "", p->learned.port[i]);
		fputc('.', f);
	}
	fputc('\n', f);
	if (st.tls_connections && !p->o.libpq_for_tls)
		wlog("%llu encrypted PostgreSQL connection%s could not be read on the wire: --sql-source auto reads them "
		     "through libpq's probes\n", (unsigned long long)st.tls_connections, st.tls_connections == 1 ? "" : "s");
	if (st.lost)
		wlog("%llu wire-protocol events were lost (ring buffer full): statement counts are low\n",
		     (unsigned long long)st.lost);
}

/* A new report window: the per-process counts start again (the table would fill with the dead). */
static void pgwiretrace_reset(void *ctx)
{
	struct pgwiretrace *p = ctx;
	struct pidtab fresh;

	if (pidtab__init(&fresh, MAX_PROCS, sizeof(struct proc_src)))
		return;
	pidtab__fini(&p->procs);
	p->procs = fresh;
	p->procs_dropped = 0;
}

const struct capability pgwiretrace_capability = {
	.name = "pgwire",
	.ev_first = PT_EV_PG_FIRST,
	.ev_last = PT_EV_PG_LAST,
	.open = pgwiretrace_open,
	.attach = pgwiretrace_attach,
	.on_event = pgwiretrace_event,
	.on_exec = forget_pid,
	.on_exit = forget_pid,
	.tick = pgwiretrace_tick,
	.flush = pgwiretrace_flush,
	.reset = pgwiretrace_reset,
	.summary = pgwiretrace_summary,
	.write_json = pgwiretrace_json,
	.free = pgwiretrace_free,
};
