// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* PostgreSQL wire protocol v3: statements paired with their results (rules in pgwire.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pgwire.h"

#define TEXT_CAP_DEFAULT	1024u
#define TEXT_CAP_MAX		65536u
#define NAMES_DEFAULT		1024u
#define INFLIGHT_DEFAULT	4096u
#define INFLIGHT_MIN		16u

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- the connection ---- */

enum unit_kind { U_PARSE, U_EXECUTE, U_SYNC, U_QUERY, U_FUNCALL };

struct unit {
	uint8_t kind;
	uint8_t stmt_kind;
	bool done;		/* answered */
	bool skipped;		/* skipped by the server after an error */
	bool failed;		/* an ErrorResponse belongs to it */
	bool record;		/* deliver a statement for it */
	bool ignored;		/* a Sync sent in copy-in mode */
	bool suspended;
	bool text_cut;
	bool counted;		/* a command tag with a count was seen */
	uint8_t end_status;	/* CLOSED or LOST when ended by a flush, else 0 */
	uint32_t text_len;
	uint32_t parts;
	uint64_t start, end;
	int64_t rows;
	uint64_t datarows;
	char name[PGWIRE_NAME_MAX];
	char portal[PGWIRE_NAME_MAX];	/* Execute: its portal's name, "" for the unnamed one */
	uint32_t portal_gen;		/* and the Bind that made it (struct name_ent's gen) */
	char tag[32];
	char sqlstate[6];
	char severity[10];
	char message[128];
};

struct name_ent {
	uint8_t used;		/* 0 free, 'S' statement, 'P' portal */
	bool known;		/* text known (portal: its statement's) */
	bool cut;
	uint32_t text_len;
	uint32_t gen;		/* portal: which Bind made it, of the connection's */
	char name[PGWIRE_NAME_MAX];
	char stmt[PGWIRE_NAME_MAX];	/* portal: its statement's name */
	char *text;		/* text_cap + 1 bytes */
};

struct pgwire_conn {
	struct pgwire_conn_opts o;
	struct pgwire_framer fr[2];
	uint8_t *fbuf;
	struct unit *q;
	char *qtext;		/* text of unit i at qtext + i * (text_cap + 1) */
	uint32_t qcap, qhead, qlen, qcur;	/* qcur: answered units from the head */
	struct name_ent *tab;
	uint32_t tabcap, tabused;
	uint32_t binds;		/* Binds seen: the portals' gen */
	struct name_ent unnamed_stmt, unnamed_portal;
	bool encrypted, copy_in, err_open, desync, terminated, closed;
	bool lost_dir[2];	/* between a LOST and a RESYNC record */
	uint32_t backend_pid, backend_key;
	struct pgwire_stats st;
};

static uint32_t tsize(const struct pgwire_conn *c)
{
	return c->o.text_cap + 1;
}

static struct unit *qat(struct pgwire_conn *c, uint32_t i)	/* i-th from the head */
{
	return &c->q[(c->qhead + i) % c->qcap];
}

static char *qtext_at(struct pgwire_conn *c, uint32_t i)
{
	return c->qtext + (size_t)((c->qhead + i) % c->qcap) * tsize(c);
}

struct pgwire_conn *pgwire_conn__new(const struct pgwire_conn_opts *o)
{
	struct pgwire_conn *c = calloc(1, sizeof(*c));
	uint32_t fcap;

	if (!c)
		return NULL;
	c->o = *o;
	if (!c->o.text_cap)
		c->o.text_cap = TEXT_CAP_DEFAULT;
	if (c->o.text_cap > TEXT_CAP_MAX)
		c->o.text_cap = TEXT_CAP_MAX;
	if (!c->o.max_names)
		c->o.max_names = NAMES_DEFAULT;
	if (!c->o.max_inflight)
		c->o.max_inflight = INFLIGHT_DEFAULT;
	if (c->o.max_inflight < 4)
		c->o.max_inflight = 4;
	fcap = c->o.text_cap + 2 * PGWIRE_NAME_MAX;	/* Parse: name, then the text */
	c->fbuf = malloc(2 * (size_t)fcap);
	c->qcap = c->o.max_inflight < INFLIGHT_MIN ? c->o.max_inflight : INFLIGHT_MIN;
	c->q = calloc(c->qcap, sizeof(*c->q));
	c->qtext = malloc((size_t)c->qcap * tsize(c));
	c->unnamed_stmt.text = malloc(tsize(c));
	c->unnamed_portal.text = malloc(tsize(c));
	if (!c->fbuf || !c->q || !c->qtext || !c->unnamed_stmt.text || !c->unnamed_portal.text) {
		pgwire_conn__free(c);
		return NULL;
	}
	pgwire_framer__init(&c->fr[0], PGWIRE_CLIENT, o->midstream ? PGWIRE_PH_TYPED : PGWIRE_PH_STARTUP,
			    c->fbuf, fcap);
	pgwire_framer__init(&c->fr[1], PGWIRE_SERVER, PGWIRE_PH_TYPED, c->fbuf + fcap, fcap);
	return c;
}

/* ---- names: statements and portals, open addressing with backward-shift deletion ---- */

static uint32_t name_hash(uint8_t kind, const char *s)
{
	uint32_t h = 2166136261u ^ kind;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static struct name_ent *name_find(struct pgwire_conn *c, uint8_t kind, const char *name)
{
	uint32_t i, mask;

	if (!name[0])
		return kind == 'S' ? &c->unnamed_stmt : &c->unnamed_portal;
	if (!c->tab)
		return NULL;
	mask = c->tabcap - 1;
	for (i = name_hash(kind, name) & mask; c->tab[i].used; i = (i + 1) & mask)
		if (c->tab[i].used == kind && !strcmp(c->tab[i].name, name))
			return &c->tab[i];
	return NULL;
}

/* The entry for name, new or old; NULL when the table is full. */
static struct name_ent *name_put(struct pgwire_conn *c, uint8_t kind, const char *name)
{
	struct name_ent *e = name_find(c, kind, name);
	uint32_t i, mask;

	if (e)
		return e;
	if (c->tabused >= c->o.max_names)
		return NULL;
	if (!c->tab || (2 * (c->tabused + 1) > c->tabcap && c->tabcap < 2 * c->o.max_names)) {
		/* grow to keep the load under 1/2: 16 entries first, at most 2 * max_names */
		uint32_t cap = c->tab ? 2 * c->tabcap : 16, j;
		struct name_ent *nt = calloc(cap, sizeof(*nt));

		if (!nt)
			return NULL;
		for (j = 0; j < c->tabcap; j++) {
			if (!c->tab[j].used) {
				free(c->tab[j].text);
				continue;
			}
			for (i = name_hash(c->tab[j].used, c->tab[j].name) & (cap - 1); nt[i].used;
			     i = (i + 1) & (cap - 1))
				;
			nt[i] = c->tab[j];
		}
		free(c->tab);
		c->tab = nt;
		c->tabcap = cap;
	}
	mask = c->tabcap - 1;
	for (i = name_hash(kind, name) & mask; c->tab[i].used; i = (i + 1) & mask)
		;
	e = &c->tab[i];
	if (!e->text && !(e->text = malloc(tsize(c))))
		return NULL;
	/* nothing of a deleted entry's state survives (a fuzzer find: stale known, garbage text) */
	e->known = e->cut = false;
	e->text_len = 0;
	e->text[0] = 0;
	e->stmt[0] = 0;
	e->used = kind;
	strcpy(e->name, name);
	c->tabused++;
	return e;
}

static void name_del(struct pgwire_conn *c, uint8_t kind, const char *name)
{
	struct name_ent *e = name_find(c, kind, name);
	uint32_t i, j, k, mask;

	if (!e)
		return;
	if (!name[0]) {
		e->known = false;
		e->used = 0;
		return;
	}
	mask = c->tabcap - 1;
	i = (uint32_t)(e - c->tab);
	free(e->text);
	e->text = NULL;
	e->used = 0;
	c->tabused--;
	/* Backward shift: move later entries of the probe run into the hole. */
	for (j = (i + 1) & mask; c->tab[j].used; j = (j + 1) & mask) {
		k = name_hash(c->tab[j].used, c->tab[j].name) & mask;
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			c->tab[i] = c->tab[j];
			memset(&c->tab[j], 0, sizeof(c->tab[j]));
			i = j;
		}
	}
}

bool pgwire_conn__knows(struct pgwire_conn *c, const char *stmt)
{
	const struct name_ent *e = name_find(c, 'S', stmt);

	return e && e->known;
}

int pgwire_conn__learn(struct pgwire_conn *c, const char *stmt, const char *text, size_t len, bool cut)
{
	struct name_ent *e;

	if (!stmt[0] || strlen(stmt) >= PGWIRE_NAME_MAX)
		return -EINVAL;
	len = strnlen(text, len);	/* a NUL ends it, as it ends a Parse's */
	e = name_put(c, 'S', stmt);
	if (!e) {
		c->st.dropped_names++;
		return -ENOSPC;
	}
	if (len > c->o.text_cap) {
		len = c->o.text_cap;
		cut = true;
	}
	memcpy(e->text, text, len);
	e->text[len] = 0;
	e->text_len = (uint32_t)len;
	e->cut = cut;
	e->known = true;
	c->st.learned++;
	return 0;
}

/* Reads a NUL-terminated name at *p (within end): copies up to PGWIRE_NAME_MAX - 1 bytes. */
static bool take_name(struct pgwire_conn *c, const uint8_t **p, const uint8_t *end, char *out)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	size_t n;

	if (!z)
		return false;
	n = (size_t)(z - *p);
	if (n >= PGWIRE_NAME_MAX) {
		c->st.long_names++;
		n = PGWIRE_NAME_MAX - 1;
	}
	memcpy(out, *p, n);
	out[n] = 0;
	*p = z + 1;
	return true;
}

/* Copies text at p (up to a NUL, end, or text_cap) into out; returns its length. */
static uint32_t take_text(struct pgwire_conn *c, const uint8_t *p, const uint8_t *end, bool msg_cut,
			  char *out, bool *cut)
{
	const uint8_t *z = memchr(p, 0, (size_t)(end - p));
	size_t n = z ? (size_t)(z - p) : (size_t)(end - p);

	*cut = !z && msg_cut;
	if (!z && !msg_cut)
		c->st.bad_payload++;
	if (n > c->o.text_cap) {
		n = c->o.text_cap;
		*cut = true;
	}
	memcpy(out, p, n);
	out[n] = 0;
	return (uint32_t)n;
}

/* ---- the queue ---- */

static bool q_grow(struct pgwire_conn *c)
{
	uint32_t ncap = c->qcap * 2, i;
	struct unit *nq;
	char *nt;

	if (ncap > c->o.max_inflight)
		ncap = c->o.max_inflight;
	if (ncap <= c->qcap)
		return false;
	nq = calloc(ncap, sizeof(*nq));
	nt = malloc((size_t)ncap * tsize(c));
	if (!nq || !nt) {
		free(nq);
		free(nt);
		return false;
	}
	for (i = 0; i < c->qlen; i++) {
		nq[i] = *qat(c, i);
		memcpy(nt + (size_t)i * tsize(c), qtext_at(c, i), tsize(c));
	}
	free(c->q);
	free(c->qtext);
	c->q = nq;
	c->qtext = nt;
	c->qcap = ncap;
	c->qhead = 0;
	return true;
}

static void deliver(struct pgwire_conn *c, uint32_t i, char txn)
{
	struct unit *u = qat(c, i);
	struct pgwire_stmt s = {};

	if (!u->record)
		return;
	s.kind = u->stmt_kind;
	s.text = s.kind == PGWIRE_PREPARED_UNKNOWN ? NULL : qtext_at(c, i);
	s.text_len = s.text ? u->text_len : 0;
	s.text_cut = u->text_cut;
	s.suspended = u->suspended;
	s.tls = c->encrypted;
	s.name = u->kind == U_QUERY || u->kind == U_FUNCALL ? NULL : u->name;
	s.start_ns = u->start;
	/* events of two CPUs may arrive a little out of order: never a negative latency */
	s.end_ns = u->end > u->start ? u->end : u->start;
	s.datarows = u->datarows;
	s.parts = u->parts;
	memcpy(s.tag, u->tag, sizeof(s.tag));
	memcpy(s.sqlstate, u->sqlstate, sizeof(s.sqlstate));
	memcpy(s.severity, u->severity, sizeof(s.severity));
	memcpy(s.message, u->message, sizeof(s.message));
	s.txn = txn;
	if (u->end_status)
		s.status = u->end_status;
	else if (u->failed)
		s.status = strcmp(u->sqlstate, "57014") ? PGWIRE_ERROR : PGWIRE_CANCELLED;
	else if (u->skipped)
		s.status = PGWIRE_SKIPPED;
	else
		s.status = PGWIRE_OK;
	s.rows = u->counted ? u->rows : u->datarows ? (int64_t)u->datarows : -1;
	if (s.status != PGWIRE_OK)
		s.rows = -1;
	c->st.stmts++;
	if (c->o.on_stmt)
		c->o.on_stmt(c->o.ctx, &s);
}

/*
 * A named portal is forgotten once an Execute of it ends other than suspended: run to its end,
 * failed or skipped (nothing is left to fetch). Its Close may never be seen: the BPF side keeps
 * pg8000's to itself (struct pg_conn.quiet), and a driver may leave its portals to the end of
 * the transaction. Only the Bind this Execute used: a later one of the same name stays.
 */
static void portal_done(struct pgwire_conn *c, const struct unit *u)
{
	const struct name_ent *e;

	if (u->kind != U_EXECUTE || !u->portal[0] || u->suspended)
		return;
	e = name_find(c, 'P', u->portal);
	if (e && e->gen == u->portal_gen)
		name_del(c, 'P', u->portal);
}

/* Delivers or drops the first n units. */
static void q_pop(struct pgwire_conn *c, uint32_t n, char txn)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		portal_done(c, qat(c, i));
		deliver(c, i, txn);
	}
	c->qhead = (c->qhead + n) % c->qcap;
	c->qlen -= n;
	c->qcur = c->qcur > n ? c->qcur - n : 0;
}

/* Everything in flight ends: answered statements as they are, the rest with status st. */
static void q_flush(struct pgwire_conn *c, enum pgwire_status st, uint64_t ts)
{
	uint32_t i;

	for (i = 0; i < c->qlen; i++) {
		struct unit *u = qat(c, i);

		if (u->record && !u->done && !u->failed && !u->skipped) {
			u->end = ts;
			u->end_status = (uint8_t)st;
		}
	}
	q_pop(c, c->qlen, 0);
	c->qhead = c->qlen = c->qcur = 0;
}

static void lose(struct pgwire_conn *c, uint64_t ts);

static struct unit *q_push(struct pgwire_conn *c, enum unit_kind kind, uint64_t ts, char **text)
{
	struct unit *u;

	if (c->qlen == c->qcap && !q_grow(c)) {
		/* Pairing cannot go on without this message: start again as after a loss. */
		c->st.dropped_stmts++;
		lose(c, ts);
		return NULL;
	}
	u = qat(c, c->qlen);
	memset(u, 0, sizeof(*u));
	u->kind = kind;
	u->start = ts;
	u->rows = 0;
	*text = qtext_at(c, c->qlen);
	(*text)[0] = 0;
	c->qlen++;
	if (c->err_open && kind != U_SYNC)
		u->done = u->skipped = true;	/* the server skips it: an error came before */
	return u;
}

/* The unit awaiting an answer, past Syncs ignored in copy-in mode and skipped messages. */
static struct unit *q_cur(struct pgwire_conn *c)
{
	while (c->qcur < c->qlen && (qat(c, c->qcur)->done ||
				     (qat(c, c->qcur)->ignored && qat(c, c->qcur)->kind == U_SYNC)))
		c->qcur++;
	return c->qcur < c->qlen ? qat(c, c->qcur) : NULL;
}

/* ---- client messages ---- */

static void client_msg(struct pgwire_conn *c, const struct pgwire_msg *m)
{
	const uint8_t *p = m->data, *end = m->data + m->data_len;
	char name[PGWIRE_NAME_MAX], stmt[PGWIRE_NAME_MAX];
	struct name_ent *e, *s;
	struct unit *u;
	uint32_t n;
	bool cut;
	char *text;

	switch (m->type) {
	case 'Q':
		if (c->desync)
			return;
		if (!(u = q_push(c, U_QUERY, m->ts, &text)))
			return;
		u->record = true;
		u->stmt_kind = PGWIRE_SIMPLE;
		u->text_len = take_text(c, p, end, m->cut, text, &u->text_cut);
		return;
	case 'P':
		if (!take_name(c, &p, end, name)) {
			c->st.bad_payload++;
			return;
		}
		e = name_put(c, 'S', name);
		if (!e)
			c->st.dropped_names++;
		/* the name -> text mapping is kept even while pairing waits after a loss */
		u = c->desync ? NULL : q_push(c, U_PARSE, m->ts, &text);
		if (!u && !e)
			return;
		if (!u)
			text = e->text;
		n = take_text(c, p, end, m->cut, text, &cut);
		if (u) {
			u->stmt_kind = PGWIRE_EXTENDED;
			strcpy(u->name, name);
			u->text_len = n;
			u->text_cut = cut;
		}
		if (e) {
			if (text != e->text)
				memcpy(e->text, text, n + 1);
			e->text_len = n;
			e->cut = cut;
			e->known = true;
		}
		return;
	case 'B':
		if (!take_name(c, &p, end, name) || !take_name(c, &p, end, stmt)) {
			c->st.bad_payload++;
			return;
		}
		e = name_put(c, 'P', name);
		if (!e) {
			c->st.dropped_names++;
			return;
		}
		strcpy(e->stmt, stmt);
		e->gen = ++c->binds;
		s = name_find(c, 'S', stmt);
		e->known = s && s->known;
		if (e->known) {
			memcpy(e->text, s->text, s->text_len + 1);
			e->text_len = s->text_len;
			e->cut = s->cut;
		}
		return;
	case 'E':
		if (!take_name(c, &p, end, name)) {
			c->st.bad_payload++;
			return;
		}
		if (c->desync)
			return;
		e = name_find(c, 'P', name);
		if (!(u = q_push(c, U_EXECUTE, m->ts, &text)))
			return;
		u->record = true;
		strcpy(u->portal, name);
		u->portal_gen = e ? e->gen : 0;
		if (e && e->known) {
			u->stmt_kind = PGWIRE_EXTENDED;
			strcpy(u->name, e->stmt);
			memcpy(text, e->text, e->text_len + 1);
			u->text_len = e->text_len;
			u->text_cut = e->cut;
		} else {
			u->stmt_kind = PGWIRE_PREPARED_UNKNOWN;
			strcpy(u->name, e ? e->stmt : name);
			c->st.unknown_prepared++;
		}
		return;
	case 'C':
		if (m->data_len < 2 || (p[0] != 'S' && p[0] != 'P')) {
			c->st.bad_payload++;
			return;
		}
		p++;
		if (take_name(c, &p, end, name))
			name_del(c, m->data[0], name);
		return;
	case 'S':
		if (c->copy_in || c->desync)
			return;
		if (q_push(c, U_SYNC, m->ts, &text))
			c->err_open = false;
		return;
	case 'F':
		if (c->desync)
			return;
		if (!(u = q_push(c, U_FUNCALL, m->ts, &text)))
			return;
		u->record = true;
		u->stmt_kind = PGWIRE_FUNCTION;
		if (m->data_len >= 4) {
			u->text_len = (uint32_t)snprintf(text, tsize(c), "<function call oid %u>", be32(p));
			if (u->text_len >= tsize(c))
				u->text_len = tsize(c) - 1;
		}
		return;
	case 'c':
	case 'f':
		c->copy_in = false;
		return;
	case 'X':
		c->terminated = true;
		return;
	}
}

/* ---- server messages ---- */

/* "INSERT 0 5" -> tag "INSERT", rows 5 (counted); "CREATE TABLE" -> tag, not counted. */
static void parse_tag(struct unit *u, const struct pgwire_msg *m)
{
	const char *s = (const char *)m->data;
	size_t n = m->data_len, end, w;
	const char *z = memchr(s, 0, n);
	int64_t rows = 0;
	bool num = false;

	if (z)
		n = (size_t)(z - s);
	end = n;
	/* strip trailing numbers */
	for (;;) {
		size_t e = end, b;

		while (e > 0 && s[e - 1] == ' ')
			e--;
		b = e;
		while (b > 0 && s[b - 1] >= '0' && s[b - 1] <= '9')
			b--;
		if (b == e || (b > 0 && s[b - 1] != ' '))
			break;
		if (!num) {
			size_t k;

			rows = 0;
			for (k = b; k < e && k < b + 15; k++)	/* below 2^50: sums cannot overflow */
				rows = rows * 10 + (s[k] - '0');
			num = true;
		}
		end = b;
	}
	while (end > 0 && s[end - 1] == ' ')
		end--;
	w = end < sizeof(u->tag) - 1 ? end : sizeof(u->tag) - 1;
	memcpy(u->tag, s, w);
	u->tag[w] = 0;
	if (num) {
		static const char *const counted[] = { "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE",
						       "FETCH", "MOVE", "COPY" };
		size_t i;

		for (i = 0; i < sizeof(counted) / sizeof(counted[0]); i++) {
			if (!strcmp(u->tag, counted[i])) {
				u->rows = u->rows + rows < INT64_MAX / 2 ? u->rows + rows : INT64_MAX / 2;
				u->counted = true;
				break;
			}
		}
	}
}

static void copy_field(char *dst, size_t size, const char *src, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

static void parse_error(struct unit *u, const struct pgwire_msg *m)
{
	const char *p = (const char *)m->data, *end = p + m->data_len;
	bool have_v = false;

	while (p < end && *p) {
		char code = *p++;
		const char *z = memchr(p, 0, (size_t)(end - p));
		size_t n = z ? (size_t)(z - p) : (size_t)(end - p);

		switch (code) {
		case 'C':
			if (z)
				copy_field(u->sqlstate, sizeof(u->sqlstate), p, n);
			break;
		case 'M':
			copy_field(u->message, sizeof(u->message), p, n);
			break;
		case 'V':
			copy_field(u->severity, sizeof(u->severity), p, n);
			have_v = true;
			break;
		case 'S':
			if (!have_v)
				copy_field(u->severity, sizeof(u->severity), p, n);
			break;
		}
		if (!z)
			break;
		p = z + 1;
	}
}

static void server_error(struct pgwire_conn *c, const struct pgwire_msg *m)
{
	struct unit *u = q_cur(c), *x, *first = NULL;
	uint32_t i;
	uint64_t end = m->end_ts ? m->end_ts : m->ts;

	c->copy_in = false;	/* an error ends copy-in mode: Syncs count again */
	if (!u || u->kind == U_SYNC) {
		/* Bind, Describe or Close failed (not queued), or an error outside any statement. */
		c->st.unpaired++;
		return;
	}
	if (u->kind == U_QUERY || u->kind == U_FUNCALL) {
		if (!u->failed) {
			u->failed = true;
			parse_error(u, m);
		}
		return;
	}
	/* Extended: the head failed; the server skips everything up to the next Sync. */
	for (i = c->qcur; i < c->qlen; i++) {
		x = qat(c, i);
		if (x->kind == U_SYNC && !x->ignored)
			break;
		if (x->kind == U_EXECUTE && !x->done && !first)
			first = x;
		else if (x->kind != U_PARSE && !x->done)
			x->skipped = true;	/* Execute, or a Query sent before the Sync */
		x->done = true;
	}
	if (!first && u->kind == U_PARSE) {
		first = u;
		u->record = true;	/* a failed Parse with no Execute behind it */
	}
	if (first) {
		first->failed = true;
		first->end = end;
		parse_error(first, m);
	} else {
		c->st.unpaired++;
	}
	c->qcur = i;
	if (i == c->qlen)
		c->err_open = true;
}

static void server_ready(struct pgwire_conn *c, const struct pgwire_msg *m)
{
	char txn = m->data_len >= 1 ? (char)m->data[0] : 0;
	uint64_t end = m->end_ts ? m->end_ts : m->ts;
	uint32_t i;

	if (c->desync) {
		if (!c->lost_dir[PGWIRE_CLIENT] && !c->lost_dir[PGWIRE_SERVER])
			c->desync = false;
		return;
	}
	for (i = c->qcur; i < c->qlen; i++) {
		struct unit *u = qat(c, i);

		if ((u->ignored && u->kind == U_SYNC) || u->skipped)
			continue;	/* never answered */
		if (u->kind == U_SYNC || u->kind == U_QUERY || u->kind == U_FUNCALL)
			break;
	}
	if (i == c->qlen)
		return;		/* the end of the startup, or of a batch sent before tracing */
	for (uint32_t j = c->qcur; j <= i; j++) {
		struct unit *u = qat(c, j);

		if ((u->kind == U_QUERY || u->kind == U_FUNCALL) && !u->skipped) {
			u->end = end;
			u->done = true;
		} else if (u->kind == U_EXECUTE && !u->done) {
			c->st.unpaired++;
			u->skipped = true;
			u->end = end;
		}
	}
	for (uint32_t j = 0; j <= i; j++) {
		struct unit *u = qat(c, j);

		if (u->skipped && !u->end)
			u->end = end;
	}
	c->copy_in = false;
	q_pop(c, i + 1, txn);
}

static void server_msg(struct pgwire_conn *c, const struct pgwire_msg *m)
{
	struct unit *u;
	uint64_t end = m->end_ts ? m->end_ts : m->ts;

	switch (m->type) {
	case 'S':
		c->st.param_status++;
		return;
	case 'N':
		c->st.notices++;
		return;
	case 'A':
		c->st.notifications++;
		return;
	case 'K':
		if (m->data_len >= 8) {
			c->backend_pid = be32(m->data);
			c->backend_key = be32(m->data + 4);
		}
		return;
	case 'R': case 't': case 'T': case 'n': case '2': case '3': case 'd': case 'c': case 'v':
		return;
	}
	if (c->desync) {
		if (m->type == 'Z')
			server_ready(c, m);
		return;
	}
	u = q_cur(c);
	switch (m->type) {
	case 'Z':
		server_ready(c, m);
		return;
	case 'E':
		server_error(c, m);
		return;
	case '1':
		if (u && u->kind == U_PARSE) {
			u->done = true;
			c->qcur++;
		} else {
			c->st.unpaired++;
		}
		return;
	}
	if (!u || (u->kind != U_EXECUTE && u->kind != U_QUERY && u->kind != U_FUNCALL)) {
		c->st.unpaired++;
		return;
	}
	switch (m->type) {
	case 'D':
		u->datarows += m->code ? m->code : 1;	/* code: DataRows folded into one record */
		return;
	case 'C':
	case 'I':
		u->parts++;
		if (m->type == 'C')
			parse_tag(u, m);
		else
			u->tag[0] = 0;
		if (u->kind == U_EXECUTE) {
			u->done = true;
			u->end = end;
			c->qcur++;
		}
		return;
	case 's':
		if (u->kind == U_EXECUTE) {
			u->suspended = u->done = true;
			u->end = end;
			c->qcur++;
		}
		return;
	case 'V':
		return;
	case 'G': case 'H': case 'W':
		u->stmt_kind = PGWIRE_COPY;
		if (m->type == 'G') {
			c->copy_in = true;
			if (u->kind == U_EXECUTE) {
				/* Syncs sent with the Execute are ignored by the server in copy-in mode. */
				for (uint32_t i = c->qcur + 1; i < c->qlen; i++)
					if (qat(c, i)->kind == U_SYNC)
						qat(c, i)->ignored = true;
			}
		}
		return;
	}
	c->st.unpaired++;
}

static void lose(struct pgwire_conn *c, uint64_t ts)
{
	c->st.lost++;
	q_flush(c, PGWIRE_LOST, ts);
	c->desync = true;
	c->copy_in = c->err_open = false;
}

static void handle(void *ctx, enum pgwire_dir dir, const struct pgwire_msg *m)
{
	struct pgwire_conn *c = ctx;

	switch (m->rec) {
	case PGWIRE_REC_MSG:
		c->st.msgs[dir]++;
		c->st.bytes[dir] += (uint64_t)m->len + 1;
		if (dir == PGWIRE_CLIENT)
			client_msg(c, m);
		else
			server_msg(c, m);
		return;
	case PGWIRE_REC_STARTUP:
		c->st.msgs[dir]++;
		c->st.bytes[dir] += m->len;
		if (m->code == PGWIRE_CODE_SSL || m->code == PGWIRE_CODE_GSSENC)
			c->fr[PGWIRE_SERVER].answer_pending = true;
		else if (m->code == PGWIRE_CODE_CANCEL)
			c->st.cancel_requests++;
		return;
	case PGWIRE_REC_ANSWER:
		if (m->type == 'S' || m->type == 'G') {
			c->encrypted = true;
			c->st.encrypted = 1;
			c->fr[0].phase = c->fr[1].phase = PGWIRE_PH_ENCRYPTED;
		}
		return;
	case PGWIRE_REC_LOST:
		c->lost_dir[dir] = true;
		lose(c, m->ts);
		return;
	case PGWIRE_REC_RESYNC:
		c->lost_dir[dir] = false;
		c->st.resyncs++;
		return;
	case PGWIRE_REC_ENCRYPTED:
		return;
	}
}

void pgwire_conn__msg(struct pgwire_conn *c, enum pgwire_dir dir, const struct pgwire_msg *m)
{
	if (c && !c->closed)
		handle(c, dir, m);
}

void pgwire_conn__feed(struct pgwire_conn *c, enum pgwire_dir dir, const void *data, size_t len,
		       uint64_t ts)
{
	if (!c || c->closed || (dir != PGWIRE_CLIENT && dir != PGWIRE_SERVER))
		return;
	pgwire_framer__feed(&c->fr[dir], data, len, ts, handle, c);
}

void pgwire_conn__close(struct pgwire_conn *c, uint64_t ts)
{
	if (!c || c->closed)
		return;
	q_flush(c, PGWIRE_CLOSED, ts);
	c->closed = true;
}

void pgwire_conn__free(struct pgwire_conn *c)
{
	uint32_t i;

	if (!c)
		return;
	if (c->q && c->qtext)
		pgwire_conn__close(c, 0);
	for (i = 0; c->tab && i < c->tabcap; i++)
		free(c->tab[i].text);
	free(c->tab);
	free(c->unnamed_stmt.text);
	free(c->unnamed_portal.text);
	free(c->q);
	free(c->qtext);
	free(c->fbuf);
	free(c);
}

void pgwire_conn__stats(const struct pgwire_conn *c, struct pgwire_stats *st)
{
	*st = c->st;
	st->lost_bytes = c->fr[0].dropped_bytes + c->fr[1].dropped_bytes;
}

void pgwire_stats__add(struct pgwire_stats *dst, const struct pgwire_stats *src)
{
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)src;
	size_t i;

	for (i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++)
		d[i] += s[i];
}

void pgwire_conn__backend_key(const struct pgwire_conn *c, uint32_t *pid, uint32_t *key)
{
	*pid = c->backend_pid;
	*key = c->backend_key;
}

bool pgwire_conn__encrypted(const struct pgwire_conn *c)
{
	return c->encrypted;
}

const char *pgwire__status_name(enum pgwire_status s)
{
	static const char *const names[] = { "ok", "error", "skipped", "cancelled", "closed", "lost" };

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

const char *pgwire__kind_name(enum pgwire_kind k)
{
	static const char *const names[] = { "simple", "extended", "unknown", "copy", "function" };

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}
