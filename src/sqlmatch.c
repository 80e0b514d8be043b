// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pytrace_user.h"
#include "sqlmatch.h"
#include "sql.h"

#define QUEUE_MAX	64	/* statements in flight on one connection (pipelines) */
#define PREP_MAX	128	/* prepared statements remembered per connection */

enum pend_kind { PK_QUERY, PK_PREPARE, PK_SYNC };

struct pending {
	enum pend_kind kind;
	bool got_result, error, truncated, prepared, params, named_only;
	uint32_t tid;
	uint64_t start, stack_id, task;
	char *text;
	size_t len;
	char *name;
};

struct prepared {
	char *name;
	char *text;
	size_t len;
	bool truncated;
	uint64_t last_use;
};

struct conn_state {
	struct conn_state *next;	/* hash chain */
	uint32_t pid;
	uint64_t conn;
	uint64_t last_ts;
	struct pending q[QUEUE_MAX];
	unsigned head, count;
	struct prepared prep[PREP_MAX];
	unsigned nprep;
};

struct sql_match {
	struct conn_state **buckets;
	size_t nbuckets, nconns, max_conns;
	sql_query_fn fn;
	void *ctx;
	struct sql_match_stats st;
};

static size_t bucket_of(const struct sql_match *m, uint32_t pid, uint64_t conn)
{
	uint64_t h = (conn ^ ((uint64_t)pid << 32)) * 0x9e3779b97f4a7c15ULL;

	return (h >> 20) % m->nbuckets;
}

struct sql_match *sql_match__new(size_t max_conns, sql_query_fn fn, void *ctx)
{
	struct sql_match *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->max_conns = max_conns ? max_conns : 4096;
	m->nbuckets = m->max_conns * 2 + 1;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (!m->buckets) {
		free(m);
		return NULL;
	}
	m->fn = fn;
	m->ctx = ctx;
	return m;
}

static void pending_free(struct pending *p)
{
	free(p->text);
	free(p->name);
	memset(p, 0, sizeof(*p));
}

static void conn_free(struct sql_match *m, struct conn_state *c)
{
	unsigned i;

	for (i = 0; i < c->count; i++)
		pending_free(&c->q[(c->head + i) % QUEUE_MAX]);
	m->st.evicted += c->count;
	for (i = 0; i < c->nprep; i++) {
		free(c->prep[i].name);
		free(c->prep[i].text);
	}
	free(c);
}

static void conn_unlink(struct sql_match *m, struct conn_state *c)
{
	struct conn_state **pp = &m->buckets[bucket_of(m, c->pid, c->conn)];

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	m->nconns--;
	conn_free(m, c);
}

static void evict_oldest(struct sql_match *m)
{
	struct conn_state *oldest = NULL, *c;
	size_t b;

	for (b = 0; b < m->nbuckets; b++)
		for (c = m->buckets[b]; c; c = c->next)
			if (!oldest || c->last_ts < oldest->last_ts)
				oldest = c;
	if (oldest)
		conn_unlink(m, oldest);
}

static struct conn_state *conn_get(struct sql_match *m, uint32_t pid, uint64_t conn, bool create)
{
	size_t b = bucket_of(m, pid, conn);
	struct conn_state *c;

	for (c = m->buckets[b]; c; c = c->next)
		if (c->pid == pid && c->conn == conn)
			return c;
	if (!create)
		return NULL;
	if (m->nconns >= m->max_conns)
		evict_oldest(m);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->pid = pid;
	c->conn = conn;
	c->next = m->buckets[b];
	m->buckets[b] = c;
	m->nconns++;
	return c;
}

static char *dup_bytes(const char *s, size_t len)
{
	char *d = malloc(len + 1);

	if (d) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

static struct prepared *prep_find(struct conn_state *c, const char *name, size_t len)
{
	unsigned i;

	for (i = 0; i < c->nprep; i++)
		if (strlen(c->prep[i].name) == len && memcmp(c->prep[i].name, name, len) == 0)
			return &c->prep[i];
	return NULL;
}

static void prep_store(struct conn_state *c, const char *name, size_t name_len, const char *text,
		       size_t len, bool truncated, uint64_t ts)
{
	struct prepared *p = prep_find(c, name, name_len);
	unsigned i, lru = 0;

	if (!p) {
		if (c->nprep < PREP_MAX) {
			p = &c->prep[c->nprep++];
		} else {
			for (i = 1; i < PREP_MAX; i++)
				if (c->prep[i].last_use < c->prep[lru].last_use)
					lru = i;
			p = &c->prep[lru];
			free(p->name);
			free(p->text);
		}
		p->name = dup_bytes(name, name_len);
		p->text = NULL;
	} else {
		free(p->text);
	}
	p->text = dup_bytes(text, len);
	p->len = p->text ? len : 0;
	p->truncated = truncated;
	p->last_use = ts;
}

bool sql_match__knows(struct sql_match *m, uint32_t pid, uint64_t conn, const char *name, size_t name_len)
{
	struct conn_state *c = conn_get(m, pid, conn, false);
	struct prepared *p = c ? prep_find(c, name, name_len) : NULL;

	return p && p->text;
}

int sql_match__learn(struct sql_match *m, uint32_t pid, uint64_t conn, const char *name, size_t name_len,
		     const char *text, size_t len, bool truncated, uint64_t ts)
{
	struct conn_state *c = conn_get(m, pid, conn, true);
	struct prepared *p;

	if (!c)
		return -ENOMEM;
	prep_store(c, name, name_len, text, strnlen(text, len), truncated, ts);
	p = prep_find(c, name, name_len);
	if (!p || !p->text)
		return -ENOMEM;
	m->st.learned++;
	return 0;
}

static struct pending *push(struct sql_match *m, struct conn_state *c)
{
	struct pending *p;

	if (c->count == QUEUE_MAX) {
		/* A result was lost: drop the oldest statement rather than the newest. */
		pending_free(&c->q[c->head]);
		c->head = (c->head + 1) % QUEUE_MAX;
		c->count--;
		m->st.evicted++;
	}
	p = &c->q[(c->head + c->count) % QUEUE_MAX];
	memset(p, 0, sizeof(*p));
	c->count++;
	return p;
}

static void pop(struct conn_state *c)
{
	pending_free(&c->q[c->head]);
	c->head = (c->head + 1) % QUEUE_MAX;
	c->count--;
}

void sql_match__send(struct sql_match *m, uint32_t pid, uint32_t tid, uint64_t conn, uint64_t ts,
		     uint32_t flags, const char *name, size_t name_len, const char *text, size_t text_len,
		     uint64_t stack_id)
{
	sql_match__send_task(m, pid, tid, conn, ts, flags, name, name_len, text, text_len, stack_id, 0);
}

void sql_match__send_task(struct sql_match *m, uint32_t pid, uint32_t tid, uint64_t conn, uint64_t ts,
			  uint32_t flags, const char *name, size_t name_len, const char *text, size_t text_len,
			  uint64_t stack_id, uint64_t task)
{
	struct conn_state *c = conn_get(m, pid, conn, true);
	struct pending *p;

	if (!c)
		return;
	c->last_ts = ts;
	p = push(m, c);
	p->tid = tid;
	p->start = ts;
	p->stack_id = stack_id;
	p->task = task;
	p->params = flags & SQL_F_PARAMS;
	p->truncated = flags & SQL_F_TRUNCATED;
	if (name)
		p->name = dup_bytes(name, name_len);
	if (flags & SQL_F_PREPARE) {
		p->kind = PK_PREPARE;
		prep_store(c, name ? name : "", name ? name_len : 0, text ? text : "", text ? text_len : 0,
			   p->truncated, ts);
		return;
	}
	p->kind = PK_QUERY;
	if (flags & SQL_F_PREPARED) {
		struct prepared *pr = prep_find(c, name ? name : "", name ? name_len : 0);

		p->prepared = true;
		if (pr && pr->text) {
			pr->last_use = ts;
			p->text = dup_bytes(pr->text, pr->len);
			p->len = pr->len;
			p->truncated = pr->truncated;
			return;
		}
		/* Prepared before tracing began: all we know is its name. */
		m->st.unknown_prepared++;
		p->named_only = true;
		p->len = (size_t)asprintf(&p->text, "EXECUTE %.*s", (int)(name ? name_len : 0), name ? name : "");
		if (!p->text)
			p->len = 0;
		return;
	}
	p->text = dup_bytes(text ? text : "", text ? text_len : 0);
	p->len = p->text ? text_len : 0;
}

static bool is_error(int32_t status)
{
	return status == PGRES_BAD_RESPONSE_ || status == PGRES_NONFATAL_ERROR_ ||
	       status == PGRES_FATAL_ERROR_ || status == PGRES_PIPELINE_ABORTED_;
}

void sql_match__result(struct sql_match *m, uint32_t pid, uint64_t conn, uint64_t ts, int32_t status)
{
	struct conn_state *c = conn_get(m, pid, conn, false);
	struct pending *h;

	if (!c || !c->count) {
		if (status != SQL_ST_NULL)
			m->st.orphan_results++;
		return;
	}
	c->last_ts = ts;
	h = &c->q[c->head];
	if (status == PGRES_PIPELINE_SYNC_) {
		if (h->kind == PK_SYNC)
			pop(c);
		else
			m->st.orphan_results++;
		return;
	}
	if (h->kind == PK_SYNC) {
		if (status != SQL_ST_NULL)
			m->st.orphan_results++;
		return;
	}
	if (status != SQL_ST_NULL) {
		h->got_result = true;
		h->error |= is_error(status);
		return;
	}
	if (!h->got_result)
		return;	/* PQgetResult polled before anything arrived */
	if (h->kind == PK_QUERY && m->fn) {
		struct sql_query q = {
			.pid = pid, .tid = h->tid, .conn = conn, .start_ns = h->start, .end_ns = ts,
			.text = h->text ? h->text : "", .len = h->len, .name = h->name,
			.truncated = h->truncated, .error = h->error, .prepared = h->prepared, .named_only = h->named_only,
			.params = h->params, .stack_id = h->stack_id, .task = h->task,
		};

		m->st.completed++;
		m->fn(m->ctx, &q);
	}
	pop(c);
}

void sql_match__exec(struct sql_match *m, uint32_t pid, uint32_t tid, uint64_t conn, uint64_t start,
		     uint64_t end, uint32_t flags, const char *name, size_t name_len, const char *text,
		     size_t text_len, uint64_t stack_id, int32_t status)
{
	sql_match__exec_task(m, pid, tid, conn, start, end, flags, name, name_len, text, text_len, stack_id,
			     status, 0);
}

void sql_match__exec_task(struct sql_match *m, uint32_t pid, uint32_t tid, uint64_t conn, uint64_t start,
			  uint64_t end, uint32_t flags, const char *name, size_t name_len, const char *text,
			  size_t text_len, uint64_t stack_id, int32_t status, uint64_t task)
{
	struct conn_state *c = conn_get(m, pid, conn, true);
	struct sql_query q = {
		.pid = pid, .tid = tid, .conn = conn, .start_ns = start, .end_ns = end,
		.text = text ? text : "", .len = text ? text_len : 0, .name = NULL,
		.truncated = flags & SQL_F_TRUNCATED, .error = is_error(status),
		.params = flags & SQL_F_PARAMS, .stack_id = stack_id, .task = task,
	};
	char *owned = NULL;
	char nbuf[SQL_NAME_MAX + 1];

	if (!c)
		return;
	c->last_ts = end;
	if (flags & SQL_F_PREPARE) {
		prep_store(c, name ? name : "", name ? name_len : 0, q.text, q.len, q.truncated, end);
		return;
	}
	if (flags & SQL_F_PREPARED) {
		struct prepared *pr = prep_find(c, name ? name : "", name ? name_len : 0);

		q.prepared = true;
		snprintf(nbuf, sizeof(nbuf), "%.*s", (int)(name ? name_len : 0), name ? name : "");
		q.name = nbuf;
		if (pr && pr->text) {
			pr->last_use = end;
			q.text = pr->text;
			q.len = pr->len;
			q.truncated = pr->truncated;
		} else {
			m->st.unknown_prepared++;
			q.named_only = true;
			q.len = (size_t)asprintf(&owned, "EXECUTE %s", nbuf);
			q.text = owned ? owned : "";
			if (!owned)
				q.len = 0;
		}
	}
	m->st.completed++;
	if (m->fn)
		m->fn(m->ctx, &q);
	free(owned);
}

void sql_match__sync(struct sql_match *m, uint32_t pid, uint64_t conn, uint64_t ts)
{
	struct conn_state *c = conn_get(m, pid, conn, true);
	struct pending *p;

	if (!c)
		return;
	c->last_ts = ts;
	p = push(m, c);
	p->kind = PK_SYNC;
	p->start = ts;
}

void sql_match__forget_pid(struct sql_match *m, uint32_t pid)
{
	struct conn_state **pp, *c;
	size_t b;

	for (b = 0; b < m->nbuckets; b++) {
		pp = &m->buckets[b];
		while ((c = *pp)) {
			if (c->pid == pid) {
				*pp = c->next;
				m->nconns--;
				conn_free(m, c);
			} else {
				pp = &c->next;
			}
		}
	}
}

void sql_match__stats(const struct sql_match *m, struct sql_match_stats *st)
{
	struct conn_state *c;
	size_t b;

	*st = m->st;
	st->pending = 0;
	for (b = 0; b < m->nbuckets; b++)
		for (c = m->buckets[b]; c; c = c->next)
			st->pending += c->count;
}

void sql_match__free(struct sql_match *m)
{
	struct conn_state *c, *n;
	size_t b;

	if (!m)
		return;
	for (b = 0; b < m->nbuckets; b++) {
		for (c = m->buckets[b]; c; c = n) {
			n = c->next;
			conn_free(m, c);
		}
	}
	free(m->buckets);
	free(m);
}
