// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hash.h"
#include "httpparse.h"
#include "jsonw.h"
#include "lathist.h"
#include "pidtab.h"
#include "pytrace_user.h"
#include "requests.h"

#define QUEUE		4	/* requests per connection: pipelining depth kept */
#define REQ_PATS	32	/* distinct (pattern, call site) pairs counted per request */
#define THREAD_QUERIES	1024	/* statements buffered per thread until its response */
#define TASK_RESPS	64	/* responses remembered per thread with the task that wrote them */
#define TASK_HOLD_NS	(30 * 1000000000ULL)	/* default task_hold_ns (requests.h) */
#define LINE_MAX_	(2 * 256)	/* a request line split over reads */
#define MAX_STRINGS	16384	/* interned patterns and call sites */
#define MAX_AGGS	2000	/* (method, route, status) kept */
#define MAX_FINDINGS	1000
#define FIRST_ALLOC	16	/* tables start this small and double up to their caps */
#define UWSGI_PIDS	64	/* processes that read uWSGI packets, remembered (never relays) */
#define RELAY_NS	1000000000ULL	/* a relay hands a request on within this (requests.h) */

/*
 * Interned strings: id = index + 1; 0 means "none" (or the table was full). strs and slots
 * start small and grow to cap and max_slots (at most half the slots in use), so a run that
 * interns a few strings does not pay for the whole cap up front.
 */
struct strtab {
	char **strs;
	uint32_t *slots;	/* ids, open addressing */
	size_t n, cap, nslots;
	size_t nstrs, max_slots;	/* strs allocated; nslots' final size */
};

struct req_pat {
	uint32_t pat, site;
	uint32_t count;
	uint64_t ns;
};

struct req {
	bool answered, multiplexed;
	bool uwsgi;			/* read from a uWSGI packet */
	bool relayed;			/* a relay's copy of another process's request: not counted */
	bool path_cut;			/* path is the target's start: the capture ended in it */
	bool by_task;			/* its statements are those of the task that wrote its response */
	uint64_t task;			/* that task (requests.h), 0: unknown */
	bool overlap;			/* read while its reader had other requests unanswered */
	uint64_t start, resp_ts, last_write;
	uint32_t reader, writer;
	int status;
	char method[HTTP_METHOD_MAX];
	char path[HTTP_PATH_MAX];
	char route[HTTP_ROUTE_MAX];	/* the framework's, placed (http_route_join); "": fold path */
	uint32_t nq;
	uint64_t sql_ns;
	unsigned npats;
	struct req_pat pats[REQ_PATS];
};

struct conn {
	uint32_t pid;
	int32_t fd;
	uint32_t family;		/* requests_opts.family_of, once known; 0: not yet */
	uint64_t last_event;
	unsigned head, n;		/* queue: q[head] is the oldest */
	struct req q[QUEUE];
	bool waiting;			/* a request line is being put together */
	uint32_t wait_tid;
	uint64_t wait_ts;
	size_t line_len;
	char line[LINE_MAX_];
};

struct tquery {
	uint64_t start, end;
	uint64_t task;			/* who sent it (requests.h), 0: unknown */
	uint32_t pat, site;
	bool done;			/* taken (by task) while older ones wait in the queue */
};

/* A response start and the task that wrote it: what a statement of that task may belong to. */
struct task_resp {
	uint64_t task, resp_ts;
	uint64_t start;			/* its request's read */
	uint64_t end;			/* its last write once complete; 0: still open */
	int32_t fd;
};

struct thread {
	uint32_t pid, tid;
	uint64_t last_read_ts;		/* the last request line this thread read */
	int32_t last_read_fd;
	unsigned open;			/* requests this thread read that are not answered yet */
	bool by_task;			/* served several requests at once: attributed by task from then on */
	bool served;			/* wrote a response */
	unsigned nresp;			/* resp[] written so far (a ring) */
	struct task_resp resp[TASK_RESPS];
	unsigned head, n;
	struct tquery q[THREAD_QUERIES];
};

struct agg {
	uint32_t route;
	int status;
	char method[HTTP_METHOD_MAX];
	uint64_t count, queries, sql_ns, total_ns;
	struct lathist hist;
};

struct finding {
	char method[HTTP_METHOD_MAX];
	uint32_t route, pat, site;
	uint64_t requests, repeats, total_ns;
	uint32_t per_request;		/* most repeats seen in one request */
};

struct pid_held {
	uint32_t pid;		/* key (pidtab.h) */
	uint32_t n;		/* its connections and threads in the tables */
};

struct requests {
	struct requests_opts o;
	struct conn **conns;		/* open addressing on (pid, fd) */
	size_t nconn_slots, nconns;
	struct thread **threads;	/* open addressing on (pid, tid) */
	size_t nthread_slots, nthreads;
	/*
	 * struct pid_held: how many of both each process holds, so that the exit of one that holds
	 * none (most processes that come and go) walks neither table; full: walk them anyway
	 */
	struct pidtab pids;
	bool pids_full;
	struct strtab strings;		/* patterns and call sites */
	struct strtab routes;
	uint32_t other_route;
	struct agg *aggs;		/* grown as (method, route, status) appear, to MAX_AGGS */
	size_t naggs, aggs_alloc;
	struct finding *findings;	/* likewise, to MAX_FINDINGS */
	size_t nfindings, findings_alloc;
	uint64_t last_tick;
	struct requests_stats st;
	struct { requests_done_fn fn; void *ctx; } listeners[REQUESTS_MAX_LISTENERS];
	int nlisteners;
	uint64_t strings_recycled;	/* times the pattern table started again (requests__reset) */
	uint32_t uwsgi_pids[UWSGI_PIDS];	/* a ring */
	unsigned nuwsgi;
	uint32_t http_families[UWSGI_PIDS];	/* families whose processes read plain HTTP: a ring */
	unsigned nhttp_families;
};

static int strtab_init(struct strtab *t, size_t cap)
{
	t->cap = cap;
	t->max_slots = 1;
	while (t->max_slots < 2 * cap)
		t->max_slots <<= 1;
	t->nslots = t->max_slots < 2 * FIRST_ALLOC ? t->max_slots : 2 * FIRST_ALLOC;
	t->nstrs = cap < FIRST_ALLOC ? cap : FIRST_ALLOC;
	t->strs = calloc(t->nstrs, sizeof(*t->strs));
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	return t->strs && t->slots ? 0 : -ENOMEM;
}

static void strtab_free(struct strtab *t)
{
	size_t i;

	for (i = 0; t->strs && i < t->n; i++)
		free(t->strs[i]);
	free(t->strs);
	free(t->slots);
}

static uint32_t strtab_find(const struct strtab *t, const char *s, size_t *slot)
{
	size_t i = hash64(s, strlen(s)) & (t->nslots - 1);

	while (t->slots[i]) {
		if (!strcmp(t->strs[t->slots[i] - 1], s))
			break;
		i = (i + 1) & (t->nslots - 1);
	}
	*slot = i;
	return t->slots[i];
}

/* Room for one more string: strs and slots doubled as needed (slots rehashed). */
static int strtab_grow(struct strtab *t)
{
	if (t->n == t->nstrs) {
		size_t n = 2 * t->nstrs < t->cap ? 2 * t->nstrs : t->cap;
		char **v = realloc(t->strs, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->strs = v;
		t->nstrs = n;
	}
	if (2 * (t->n + 1) > t->nslots && t->nslots < t->max_slots) {
		size_t n = 2 * t->nslots, i, j;
		uint32_t *v = calloc(n, sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (i = 0; i < t->nslots; i++) {
			if (!t->slots[i])
				continue;
			j = hash64(t->strs[t->slots[i] - 1], strlen(t->strs[t->slots[i] - 1])) & (n - 1);
			while (v[j])
				j = (j + 1) & (n - 1);
			v[j] = t->slots[i];
		}
		free(t->slots);
		t->slots = v;
		t->nslots = n;
	}
	return 0;
}

/* The id of s, adding it if there is room; 0 when full. */
static uint32_t strtab_intern(struct strtab *t, const char *s)
{
	size_t slot;
	uint32_t id;

	if (!s)
		return 0;
	id = strtab_find(t, s, &slot);
	if (id || t->n == t->cap)
		return id;
	if (strtab_grow(t))
		return 0;
	strtab_find(t, s, &slot);	/* the slots may have been rehashed */
	t->strs[t->n] = strdup(s);
	if (!t->strs[t->n])
		return 0;
	t->slots[slot] = ++t->n;
	return t->n;
}

static const char *strtab_get(const struct strtab *t, uint32_t id)
{
	return id && id <= t->n ? t->strs[id - 1] : NULL;
}

struct requests *requests__new(const struct requests_opts *o)
{
	struct requests *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->o = *o;
	if (!r->o.task_hold_ns)
		r->o.task_hold_ns = TASK_HOLD_NS;
	if (!r->o.n1_threshold)
		r->o.n1_threshold = 5;
	if (!r->o.max_routes)
		r->o.max_routes = 500;
	if (!r->o.max_conns)
		r->o.max_conns = 8192;
	if (!r->o.max_threads)
		r->o.max_threads = 1024;
	if (!r->o.idle_ns)
		r->o.idle_ns = 1000000000ULL;
	r->nconn_slots = 2 * r->o.max_conns;
	r->nthread_slots = 2 * r->o.max_threads;
	r->conns = calloc(r->nconn_slots, sizeof(*r->conns));
	r->threads = calloc(r->nthread_slots, sizeof(*r->threads));
	r->aggs_alloc = FIRST_ALLOC;
	r->aggs = calloc(r->aggs_alloc, sizeof(*r->aggs));
	r->findings_alloc = FIRST_ALLOC;
	r->findings = calloc(r->findings_alloc, sizeof(*r->findings));
	if (!r->conns || !r->threads || !r->aggs || !r->findings ||
	    pidtab__init(&r->pids, r->o.max_conns + r->o.max_threads, sizeof(struct pid_held)) ||
	    strtab_init(&r->strings, MAX_STRINGS) ||
	    strtab_init(&r->routes, r->o.max_routes + 1)) {
		requests__free(r);
		return NULL;
	}
	r->other_route = strtab_intern(&r->routes, REQUESTS_OTHER_ROUTES);
	return r;
}

void requests__free(struct requests *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; r->conns && i < r->nconn_slots; i++)
		free(r->conns[i]);
	for (i = 0; r->threads && i < r->nthread_slots; i++)
		free(r->threads[i]);
	free(r->conns);
	free(r->threads);
	pidtab__fini(&r->pids);
	free(r->aggs);
	free(r->findings);
	strtab_free(&r->strings);
	strtab_free(&r->routes);
	free(r);
}

/*
 * Room for one more element in *v (n used, *alloc allocated, at most max): doubled and the new
 * part zeroed as needed. Pointers into *v do not outlive a call that may grow it.
 */
static int grow_array(void **v, size_t size, size_t n, size_t *alloc, size_t max)
{
	size_t a;
	void *p;

	if (n < *alloc)
		return 0;
	if (*alloc >= max)
		return -ENOSPC;
	a = 2 * *alloc < max ? 2 * *alloc : max;
	p = realloc(*v, a * size);
	if (!p)
		return -ENOMEM;
	memset((char *)p + *alloc * size, 0, (a - *alloc) * size);
	*v = p;
	*alloc = a;
	return 0;
}

/* Slot of (a, b) in a table of pointers whose entries start with two uint32 keys. */
static size_t find_slot(void **tab, size_t nslots, uint32_t a, uint32_t b, bool *found)
{
	size_t i = (((uint64_t)a << 32 | b) * 0x9e3779b97f4a7c15ULL) >> 20 & (SIZE_MAX >> 1), n;

	for (n = 0; n < nslots; n++) {
		const uint32_t *e = tab[(i + n) % nslots];

		if (!e || (e[0] == a && e[1] == b)) {
			*found = e != NULL;
			return (i + n) % nslots;
		}
	}
	*found = false;
	return SIZE_MAX;
}

/* Removal from linear probing: re-place the entries of the cluster that follows. */
static void remove_slot(void **tab, size_t nslots, size_t slot)
{
	size_t i = (slot + 1) % nslots;

	tab[slot] = NULL;
	while (tab[i]) {
		void *e = tab[i];
		const uint32_t *k = e;
		bool found;
		size_t s;

		tab[i] = NULL;
		s = find_slot(tab, nslots, k[0], k[1], &found);
		tab[s] = e;
		i = (i + 1) % nslots;
	}
}

/* pid holds one more entry of the tables (by -1: one less) */
static void pid_held(struct requests *r, uint32_t pid, int by)
{
	struct pid_held *h = by > 0 ? pidtab__add(&r->pids, pid, NULL) : pidtab__get(&r->pids, pid);

	if (!h) {
		r->pids_full |= by > 0;
		return;
	}
	h->n += by;
	if (!h->n)
		pidtab__del(&r->pids, h);
}

static struct conn *conn_get(struct requests *r, uint32_t pid, int32_t fd, bool create)
{
	bool found;
	size_t s = find_slot((void **)r->conns, r->nconn_slots, pid, (uint32_t)fd, &found);
	struct conn *c;

	if (found)
		return r->conns[s];
	if (!create)
		return NULL;
	if (s == SIZE_MAX || r->nconns >= r->o.max_conns || !(c = calloc(1, sizeof(*c)))) {
		r->st.dropped_conns++;
		return NULL;
	}
	c->pid = pid;
	c->fd = fd;
	r->conns[s] = c;
	r->nconns++;
	pid_held(r, pid, 1);
	return c;
}

static void conn_remove(struct requests *r, struct conn *c)
{
	bool found;
	size_t s = find_slot((void **)r->conns, r->nconn_slots, c->pid, (uint32_t)c->fd, &found);

	if (found) {
		remove_slot((void **)r->conns, r->nconn_slots, s);
		r->nconns--;
		pid_held(r, c->pid, -1);
	}
	free(c);
}

static struct thread *thread_get(struct requests *r, uint32_t pid, uint32_t tid, bool create)
{
	bool found;
	size_t s = find_slot((void **)r->threads, r->nthread_slots, pid, tid, &found);
	struct thread *t;

	if (found)
		return r->threads[s];
	if (!create)
		return NULL;
	if (s == SIZE_MAX || r->nthreads >= r->o.max_threads || !(t = calloc(1, sizeof(*t)))) {
		r->st.dropped_threads++;
		return NULL;
	}
	t->pid = pid;
	t->tid = tid;
	t->last_read_fd = -1;
	r->threads[s] = t;
	r->nthreads++;
	pid_held(r, pid, 1);
	return t;
}

static uint32_t route_id(struct requests *r, const struct req *q)
{
	char route[HTTP_ROUTE_MAX];
	uint32_t id;

	if (q->route[0]) {
		memcpy(route, q->route, sizeof(route));
		r->st.framework_routes++;
	} else {
		http_route(q->path, route, sizeof(route));
	}
	id = strtab_intern(&r->routes, route);
	if (!id) {
		r->st.dropped_routes++;
		id = r->other_route;
	}
	return id;
}

static struct agg *agg_get(struct requests *r, const char *method, uint32_t route, int status)
{
	size_t i;

	for (i = 0; i < r->naggs; i++)
		if (r->aggs[i].route == route && r->aggs[i].status == status && !strcmp(r->aggs[i].method, method))
			return &r->aggs[i];
	if (r->naggs == MAX_AGGS || grow_array((void **)&r->aggs, sizeof(*r->aggs), r->naggs, &r->aggs_alloc, MAX_AGGS))
		return NULL;
	i = r->naggs++;
	r->aggs[i].route = route;
	r->aggs[i].status = status;
	snprintf(r->aggs[i].method, sizeof(r->aggs[i].method), "%s", method);
	lathist__init(&r->aggs[i].hist);
	return &r->aggs[i];
}

static void add_finding(struct requests *r, const struct req *q, uint32_t route, const struct req_pat *p)
{
	struct finding *f = NULL;
	size_t i;

	for (i = 0; i < r->nfindings; i++)
		if (r->findings[i].route == route && r->findings[i].pat == p->pat && r->findings[i].site == p->site &&
		    !strcmp(r->findings[i].method, q->method)) {
			f = &r->findings[i];
			break;
		}
	if (!f) {
		if (r->nfindings == MAX_FINDINGS ||
		    grow_array((void **)&r->findings, sizeof(*r->findings), r->nfindings, &r->findings_alloc,
			       MAX_FINDINGS)) {
			r->st.dropped_findings++;
			return;
		}
		f = &r->findings[r->nfindings++];
		snprintf(f->method, sizeof(f->method), "%s", q->method);
		f->route = route;
		f->pat = p->pat;
		f->site = p->site;
	}
	f->requests++;
	f->repeats += p->count;
	f->total_ns += p->ns;
	if (p->count > f->per_request)
		f->per_request = p->count;
}

static void log_request(struct requests *r, const struct conn *c, const struct req *q, const char *route,
			uint64_t total, unsigned n1)
{
	int plen = r->o.show_query ? (int)strlen(q->path) : (int)strcspn(q->path, "?");
	struct jsonw *w;
	unsigned i;

	if (r->o.lines) {
		fprintf(r->o.lines, "%s %.*s %d total=%.1fms sql=%.1fms(%uq)%s\n", q->method, plen, q->path, q->status,
			total / 1e6, q->sql_ns / 1e6, q->nq, n1 ? " N+1" : q->multiplexed ? " (SQL not attributed)" : "");
		fflush(r->o.lines);
	}
	if (!r->o.log || !(w = jsonw__new(r->o.log)))
		return;
	jsonw__start_object(w);
	jsonw__uint_field(w, "pid", c->pid);
	jsonw__uint_field(w, "tid", q->writer);
	jsonw__uint_field(w, "start_ns", q->start);
	jsonw__string_field(w, "method", q->method);
	jsonw__name(w, "path");
	jsonw__string_len(w, q->path, plen);
	jsonw__string_field(w, "route", route);
	jsonw__uint_field(w, "status", q->status);
	jsonw__double_fixed_field(w, "total_ms", total / 1e6, 3);
	jsonw__double_fixed_field(w, "sql_ms", q->sql_ns / 1e6, 3);
	jsonw__double_fixed_field(w, "other_ms", (total > q->sql_ns ? total - q->sql_ns : 0) / 1e6, 3);
	jsonw__uint_field(w, "queries", q->nq);
	jsonw__bool_field(w, "sql_attributed", !q->multiplexed);
	jsonw__bool_field(w, "by_task", q->by_task);
	jsonw__name(w, "patterns");
	jsonw__start_array(w);
	for (i = 0; i < q->npats; i++) {
		const char *site = strtab_get(&r->strings, q->pats[i].site);

		jsonw__start_object(w);
		jsonw__string_field(w, "pattern", q->pats[i].pat ? strtab_get(&r->strings, q->pats[i].pat) : "[other patterns]");
		jsonw__uint_field(w, "count", q->pats[i].count);
		jsonw__double_fixed_field(w, "ms", q->pats[i].ns / 1e6, 3);
		jsonw__name(w, "call_site");
		if (site)
			jsonw__string(w, site);
		else
			jsonw__null(w);
		jsonw__bool_field(w, "n_plus_one", q->pats[i].pat && q->pats[i].count >= r->o.n1_threshold);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__end_object(w);
	jsonw__free(w);
	fputc('\n', r->o.log);	/* flushed by requests__tick: a write per request costs more than the rest */
}

static void tell_listeners(struct requests *r, const struct conn *c, const struct req *q, const char *route,
			   uint64_t total)
{
	struct request_pat pats[REQ_PATS];
	struct request_done d = {
		.pid = c->pid,
		.tid = q->writer,
		.method = q->method,
		.route = route,
		.status = q->status,
		.start_ns = q->start,
		.total_ns = total,
		.sql_ns = q->sql_ns,
		.queries = q->nq,
		.sql_attributed = !q->multiplexed,
		.pats = pats,
		.npats = q->npats,
	};
	unsigned i;

	for (i = 0; i < q->npats; i++) {
		pats[i].pattern = q->pats[i].pat ? strtab_get(&r->strings, q->pats[i].pat) : NULL;
		pats[i].call_site = strtab_get(&r->strings, q->pats[i].site);
		pats[i].count = q->pats[i].count;
		pats[i].ns = q->pats[i].ns;
		pats[i].n_plus_one = q->pats[i].pat && q->pats[i].count >= r->o.n1_threshold;
	}
	for (i = 0; i < (unsigned)r->nlisteners; i++)
		r->listeners[i].fn(r->listeners[i].ctx, &d);
}

/* A request whose response is complete. */
static void complete(struct requests *r, const struct conn *c, struct req *q)
{
	uint64_t end = q->last_write > q->resp_ts ? q->last_write : q->resp_ts;
	uint64_t total = end > q->start ? end - q->start : 0;
	uint32_t route;
	struct agg *a;
	unsigned i, n1 = 0;

	if (q->relayed) {
		r->st.relayed++;	/* counted where it ran */
		return;
	}
	route = route_id(r, q);
	a = agg_get(r, q->method, route, q->status);

	if (!a) {
		route = r->other_route;
		r->st.dropped_routes++;
		a = agg_get(r, q->method, route, q->status);
	}
	r->st.requests++;
	if (a) {
		a->count++;
		a->queries += q->nq;
		a->sql_ns += q->sql_ns;
		a->total_ns += total;
		lathist__add(&a->hist, total);
	}
	for (i = 0; i < q->npats; i++)
		if (q->pats[i].pat && q->pats[i].count >= r->o.n1_threshold) {
			add_finding(r, q, route, &q->pats[i]);
			n1++;
		}
	if (q->by_task) {
		struct thread *t = thread_get(r, c->pid, q->writer, false);
		unsigned i;

		for (i = 0; t && i < TASK_RESPS; i++)
			if (t->resp[i].task == q->task && t->resp[i].resp_ts == q->resp_ts)
				t->resp[i].end = end;
	}
	log_request(r, c, q, strtab_get(&r->routes, route), total, n1);
	if (r->nlisteners)
		tell_listeners(r, c, q, strtab_get(&r->routes, route), total);
}

/* Complete the answered requests at the head of the queue (all, or all but the newest answered). */
static void complete_answered(struct requests *r, struct conn *c)
{
	while (c->n && c->q[c->head].answered) {
		complete(r, c, &c->q[c->head]);
		c->head = (c->head + 1) % QUEUE;
		c->n--;
	}
}

/* The connection wrote until last_write: the newest answered request's response did. */
static void note_last_write(struct conn *c, uint64_t last_write)
{
	unsigned i;

	for (i = c->n; i > 0; i--) {
		struct req *q = &c->q[(c->head + i - 1) % QUEUE];

		if (q->answered) {
			if (last_write >= q->resp_ts && last_write > q->last_write)
				q->last_write = last_write;
			return;
		}
	}
}

static bool in_ring(const uint32_t *ring, uint32_t v)
{
	for (unsigned i = 0; i < UWSGI_PIDS; i++)
		if (ring[i] == v)
			return true;
	return false;
}

static bool reads_uwsgi(const struct requests *r, uint32_t pid)
{
	return in_ring(r->uwsgi_pids, pid);
}

static uint32_t conn_family(struct requests *r, struct conn *c)
{
	if (!c->family && r->o.family_of)
		c->family = r->o.family_of(r->o.ctx, c->pid);
	return c->family;
}

/* A plain HTTP request read on c: its family may hold a relay (relay_match looks only there). */
static void note_http_family(struct requests *r, struct conn *c)
{
	uint32_t f = conn_family(r, c);

	if (f && !in_ring(r->http_families, f))
		r->http_families[r->nhttp_families++ % UWSGI_PIDS] = f;
}

/* The same target, as far as both were captured (a long one is cut at different lengths). */
static bool same_target(const struct req *a, const struct req *b)
{
	size_t la = strlen(a->path), lb = strlen(b->path);

	if (la != lb && !(la < lb ? a->path_cut : b->path_cut))
		return false;
	return !memcmp(a->path, b->path, la < lb ? la : lb);
}

/*
 * q, read from a uWSGI packet on c: the unanswered request of another process of its family that
 * a relay read and handed on to it, if any, is not counted (requests.h, "Relays").
 */
static void relay_match(struct requests *r, struct conn *c, const struct req *q)
{
	if (!reads_uwsgi(r, c->pid))
		r->uwsgi_pids[r->nuwsgi++ % UWSGI_PIDS] = c->pid;
	/* behind nginx no process of the family reads plain HTTP: no connection to look through */
	if (!conn_family(r, c) || !in_ring(r->http_families, c->family))
		return;
	for (size_t i = 0; i < r->nconn_slots; i++) {
		struct conn *o = r->conns[i];

		if (!o || o->pid == c->pid || !o->n)
			continue;
		if (conn_family(r, o) != c->family || reads_uwsgi(r, o->pid))
			continue;
		for (unsigned k = 0; k < o->n; k++) {
			struct req *x = &o->q[(o->head + k) % QUEUE];

			if (!x->answered && !x->relayed && !x->uwsgi && x->start <= q->start &&
			    q->start - x->start < RELAY_NS && !strcmp(x->method, q->method) && same_target(x, q)) {
				x->relayed = true;
				return;
			}
		}
	}
}

static void push_request(struct requests *r, struct conn *c, const struct http_req_line *rl)
{
	struct thread *t = thread_get(r, c->pid, c->wait_tid, true);
	struct req *q;

	if (c->n == QUEUE) {
		r->st.dropped_pipelined++;
		return;
	}
	q = &c->q[(c->head + c->n++) % QUEUE];
	memset(q, 0, offsetof(struct req, pats));
	q->start = c->wait_ts;
	q->reader = c->wait_tid;
	memcpy(q->method, rl->method, sizeof(q->method));
	memcpy(q->path, rl->path, sizeof(q->path));
	q->uwsgi = rl->uwsgi;
	q->path_cut = rl->path_cut;
	if (rl->uwsgi)
		relay_match(r, c, q);
	else if (r->o.family_of)
		note_http_family(r, c);
	if (t) {
		q->overlap = t->open > 0 && t->last_read_fd != c->fd;
		t->last_read_ts = c->wait_ts;
		t->last_read_fd = c->fd;
		t->open++;
	}
}

/* q will not be answered, or just was: its reader has one request less in hand. */
static void reader_done(struct requests *r, uint32_t pid, const struct req *q)
{
	struct thread *t = thread_get(r, pid, q->reader, false);

	if (t && t->open)
		t->open--;
}

/* Parse what has been put together of request lines; cut: the bytes went on past the buffer. */
static void parse_lines(struct requests *r, struct conn *c, bool cut)
{
	for (;;) {
		struct http_req_line rl;
		size_t next;
		int ret = http_parse_request_line(c->line, c->line_len, cut || c->line_len == LINE_MAX_, &rl);

		if (ret == HTTP_PARSE_MORE)
			return;
		c->waiting = false;
		if (ret == HTTP_PARSE_BAD) {
			r->st.not_http++;
			break;
		}
		push_request(r, c, &rl);
		next = rl.consumed ? http_next_request(c->line, c->line_len) : 0;
		if (!next || next >= c->line_len)
			break;
		/* pipelined: another request in the same read */
		memmove(c->line, c->line + next, c->line_len - next);
		c->line_len -= next;
		c->waiting = true;
		if (http_parse_request_line(c->line, c->line_len, true, &rl) == HTTP_PARSE_BAD) {
			c->waiting = false;
			break;	/* a body we could not measure: not a request */
		}
	}
	c->line_len = 0;
}

void requests__req(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
		   uint64_t last_write, bool maybe, const char *data, size_t data_len, size_t len)
{
	struct conn *c = conn_get(r, pid, fd, true);

	if (!c)
		return;
	c->last_event = ts;
	note_last_write(c, last_write);
	complete_answered(r, c);
	if (c->waiting && maybe && c->line_len + data_len <= LINE_MAX_) {
		memcpy(c->line + c->line_len, data, data_len);	/* another tiny piece */
		c->line_len += data_len;
	} else {
		c->waiting = true;
		c->wait_tid = tid;
		c->wait_ts = ts;
		c->line_len = data_len < LINE_MAX_ ? data_len : LINE_MAX_;
		memcpy(c->line, data, c->line_len);
	}
	parse_lines(r, c, data_len < len);
}

void requests__data(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
		    const char *data, size_t data_len, size_t len)
{
	struct conn *c = conn_get(r, pid, fd, false);
	size_t n;

	if (!c || !c->waiting)
		return;
	c->last_event = ts;
	n = LINE_MAX_ - c->line_len < data_len ? LINE_MAX_ - c->line_len : data_len;
	memcpy(c->line + c->line_len, data, n);
	c->line_len += n;
	parse_lines(r, c, n < len);
}

static void add_query(struct requests *r, struct req *q, const struct tquery *tq)
{
	uint64_t ns = tq->end - tq->start;
	unsigned i;

	q->nq++;
	q->sql_ns += ns;
	r->st.queries_attributed++;
	for (i = 0; i < q->npats; i++)
		if (q->pats[i].pat == tq->pat && q->pats[i].site == tq->site)
			break;
	if (i == q->npats && q->npats < REQ_PATS) {
		/* the slot may hold a pattern of an earlier request in this queue slot */
		memset(&q->pats[i], 0, sizeof(q->pats[i]));
		q->pats[i].pat = tq->pat;
		q->pats[i].site = tq->site;
		q->npats++;
	}
	if (i < q->npats) {
		q->pats[i].count++;
		q->pats[i].ns += ns;
	} else {
		r->st.dropped_patterns++;
	}
}

/* The oldest statement left the queue unclaimed: counted by why. */
static void count_unclaimed(struct requests *r, const struct thread *t, const struct tquery *tq)
{
	if (tq->done)
		return;
	if (!t->by_task)
		r->st.queries_outside++;
	else if (!tq->task)
		r->st.queries_task_unknown++;
	else
		r->st.queries_no_response++;
}

/* Drop the statements at the head of the queue that a task's request took. */
static void pop_done(struct thread *t)
{
	while (t->n && t->q[t->head].done) {
		t->head = (t->head + 1) % THREAD_QUERIES;
		t->n--;
	}
}

static void attribute(struct requests *r, struct req *q, struct thread *t, uint64_t until)
{
	pop_done(t);
	while (t->n) {
		struct tquery *tq = &t->q[t->head];

		if (tq->done) {
			/* taken by a task's request */
		} else if (tq->start >= q->start && tq->end <= until) {
			if (q->multiplexed)
				r->st.queries_unattributed++;
			else
				add_query(r, q, tq);
		} else if (tq->start < q->start) {
			r->st.queries_outside++;
		} else {
			break;	/* after the response started: the next request's */
		}
		t->head = (t->head + 1) % THREAD_QUERIES;
		t->n--;
	}
}

/* The response the thread last wrote for task, before the one being attributed; NULL: none kept. */
static struct task_resp *last_task_resp(struct thread *t, uint64_t task)
{
	unsigned i, n = t->nresp < TASK_RESPS ? t->nresp : TASK_RESPS;

	for (i = 0; i < n; i++) {
		struct task_resp *tr = &t->resp[(t->nresp - 1 - i) % TASK_RESPS];

		if (tr->task == task)
			return tr;
	}
	return NULL;
}

/*
 * Until when tr's response was written: its end, or if still open the last write the events seen
 * so far tell of (not the connection's live state: events are read behind time, and the
 * connection's later writes are later requests').
 */
static uint64_t task_resp_end(struct requests *r, uint32_t pid, const struct task_resp *tr)
{
	struct conn *c;
	uint64_t end = tr->resp_ts;
	unsigned i;

	if (tr->end)
		return tr->end;
	c = conn_get(r, pid, tr->fd, false);
	for (i = 0; c && i < c->n; i++) {
		const struct req *q = &c->q[(c->head + i) % QUEUE];

		if (q->answered && q->resp_ts == tr->resp_ts && q->last_write > end)
			end = q->last_write;
	}
	return end;
}

/*
 * The statements a process's thread pools sent for a task (PT_TASK_PROXY: asgiref's
 * sync_to_async, whose thread_handler names the task that awaits it) wait in one queue per
 * process, under this thread id (no thread has it), for a response of their task on any thread.
 */
#define POOL_TID 0

/*
 * Attribution by task (requests.h has the rule): the request q, whose response the task q->task
 * started writing at resp_ts on thread t, takes the statements of that task sent since q was read
 * and before resp_ts, from t's queue and from its process's thread pools'. A statement sent after
 * the task's previous response began and while that one was still being written could be
 * either's: neither takes it.
 */
static void take_task_queries(struct requests *r, struct req *q, uint64_t task, struct thread *t,
			      const struct task_resp *prev, uint64_t prev_end, uint64_t resp_ts)
{
	unsigned i;

	for (i = 0; i < t->n; i++) {
		struct tquery *tq = &t->q[(t->head + i) % THREAD_QUERIES];

		if (tq->done || tq->task != task || tq->start > resp_ts)
			continue;
		tq->done = true;
		if (tq->start < q->start)
			r->st.queries_outside++;	/* before its request: the task's earlier work */
		else if (prev && tq->start > prev->resp_ts && tq->start <= prev_end) {
			if (getenv("PYTRACE_DEBUG_TASKS"))
				fprintf(stderr, "AMBIG task %llx q %s start %llu resp %llu; stmt %llu; prev start %llu resp %llu end %llu(%llu) fd %d\n",
					(unsigned long long)q->task, q->path, (unsigned long long)q->start, (unsigned long long)resp_ts,
					(unsigned long long)tq->start, (unsigned long long)prev->start, (unsigned long long)prev->resp_ts,
					(unsigned long long)prev_end, (unsigned long long)prev->end, prev->fd);
			r->st.queries_ambiguous++;
		} else {
			add_query(r, q, tq);
			if (t->tid == POOL_TID)
				r->st.queries_pool_task++;
		}
	}
	pop_done(t);
}

/* The rule above for q's response as task's (its writer's, or the task its writer streams for). */
static void attribute_task_key(struct requests *r, struct req *q, uint64_t task, struct thread *t, int32_t fd,
			       uint64_t resp_ts)
{
	struct task_resp *prev = last_task_resp(t, task), *tr;
	uint64_t prev_end = prev ? task_resp_end(r, t->pid, prev) : 0;
	struct thread *pool = thread_get(r, t->pid, POOL_TID, false);

	take_task_queries(r, q, task, t, prev, prev_end, resp_ts);
	if (pool)
		take_task_queries(r, q, task, pool, prev, prev_end, resp_ts);
	tr = &t->resp[t->nresp++ % TASK_RESPS];
	tr->task = task;
	tr->resp_ts = resp_ts;
	tr->start = q->start;
	tr->end = 0;
	tr->fd = fd;
}

/*
 * A streamed response is written by a child task of the one that awaits it (host): both tasks'
 * statements are the request's, each by the rule.
 */
static void attribute_task(struct requests *r, struct req *q, struct thread *t, int32_t fd, uint64_t resp_ts,
			   uint64_t host)
{
	attribute_task_key(r, q, q->task, t, fd, resp_ts);
	if (host && host != q->task) {
		attribute_task_key(r, q, host, t, fd, resp_ts);
		r->st.requests_by_host_task++;
	}
}

void requests__resp(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
		    uint64_t last_write, const char *data, size_t data_len)
{
	requests__resp_task(r, pid, tid, fd, ts, last_write, data, data_len, 0);
}

void requests__resp_task(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
			 uint64_t last_write, const char *data, size_t data_len, uint64_t task)
{
	requests__resp_route(r, pid, tid, fd, ts, last_write, data, data_len, task, NULL, false);
}

void requests__resp_route(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
			  uint64_t last_write, const char *data, size_t data_len, uint64_t task, const char *tmpl,
			  bool multi)
{
	requests__resp_route_for(r, pid, tid, fd, ts, last_write, data, data_len, task, tmpl, multi, NULL);
}

void requests__resp_route_for(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
			      uint64_t last_write, const char *data, size_t data_len, uint64_t task,
			      const char *tmpl, bool multi, const char *for_path)
{
	requests__resp_host(r, pid, tid, fd, ts, last_write, data, data_len, task, 0, tmpl, multi, for_path);
}

void requests__resp_host(struct requests *r, uint32_t pid, uint32_t tid, int32_t fd, uint64_t ts,
			 uint64_t last_write, const char *data, size_t data_len, uint64_t task, uint64_t host,
			 const char *tmpl, bool multi, const char *for_path)
{
	struct conn *c = conn_get(r, pid, fd, false);
	struct thread *t;
	struct req *q = NULL;
	unsigned i;
	int status;

	if (!c) {
		r->st.orphan_responses++;
		return;
	}
	c->last_event = ts;
	if (http_parse_status_line(data, data_len, &status) != HTTP_PARSE_OK || status < 200)
		return;	/* 1xx: the final response follows */
	note_last_write(c, last_write);
	for (i = 0; i < c->n; i++) {
		q = &c->q[(c->head + i) % QUEUE];
		if (!q->answered)
			break;
		q = NULL;
	}
	/* The responses before this one are complete. */
	complete_answered(r, c);
	if (!q) {
		r->st.orphan_responses++;
		return;
	}
	q->answered = true;
	q->status = status;
	q->resp_ts = ts;
	if (tmpl && for_path) {
		size_t plen = strcspn(q->path, "?");

		if (strlen(for_path) == plen && !strncmp(q->path, for_path, plen)) {
			r->st.scope_routes++;
		} else {
			r->st.scope_routes_mismatched++;
			tmpl = NULL;
		}
	}
	if (tmpl && !http_route_join(tmpl, multi, q->path, q->route, sizeof(q->route))) {
		r->st.unplaced_routes++;
		tmpl = NULL;	/* the app's table (route_of) may name it whole */
	}
	if (!tmpl && r->o.route_of && !r->o.route_of(r->o.ctx, pid, q->method, q->path, q->route, sizeof(q->route)))
		q->route[0] = 0;
	q->writer = tid;
	q->task = task;
	reader_done(r, pid, q);
	t = thread_get(r, pid, tid, !!task);
	if (t) {
		t->served = true;
		/* the writer read another request meanwhile, or read this one while serving another */
		bool multiplexed = (t->last_read_ts > q->start && t->last_read_fd != fd) ||
				   (q->reader == tid && q->overlap);

		if (multiplexed && task)
			t->by_task = true;
		if (t->by_task && task) {
			q->by_task = true;
			r->st.requests_by_task++;
			if ((task & 1) == 0 && (task & PT_TASK_SCOPE))
				r->st.requests_by_scope++;
			attribute_task(r, q, t, fd, ts, host);
		} else if (t->by_task) {
			/* who wrote it is unknown: its statements wait for nothing and go unclaimed */
			q->multiplexed = true;
			r->st.multiplexed_requests++;
		} else {
			struct thread *pool = task ? thread_get(r, pid, POOL_TID, false) : NULL;

			if (multiplexed) {
				q->multiplexed = true;
				r->st.multiplexed_requests++;
			}
			attribute(r, q, t, ts);
			/* a thread pool's statements for this response's task: by task, before any
			 * request of the writer went by task (its first responses) */
			if (pool)
				take_task_queries(r, q, q->task, pool, NULL, 0, ts);
		}
	}
}

static void drop_unanswered(struct requests *r, struct conn *c)
{
	unsigned i;

	for (i = 0; i < c->n; i++)
		reader_done(r, c->pid, &c->q[(c->head + i) % QUEUE]);
	r->st.no_response += c->n;
	c->n = 0;
}

void requests__close(struct requests *r, uint32_t pid, int32_t fd, uint64_t ts, uint64_t last_write)
{
	struct conn *c = conn_get(r, pid, fd, false);

	if (!c)
		return;
	note_last_write(c, last_write);
	complete_answered(r, c);
	drop_unanswered(r, c);
	conn_remove(r, c);
}

uint32_t requests__intern(struct requests *r, const char *s)
{
	return strtab_intern(&r->strings, s);
}

static void thread_query(struct requests *r, struct thread *t, uint64_t start_ns, uint64_t end_ns,
			 uint32_t pattern, uint32_t call_site, uint64_t task)
{
	struct tquery *tq;

	pop_done(t);
	if (t->n == THREAD_QUERIES) {
		/* the oldest goes: lost if a request this thread read is still open */
		if (t->by_task)
			count_unclaimed(r, t, &t->q[t->head]);
		else if (t->q[t->head].start >= t->last_read_ts && t->last_read_ts)
			r->st.queries_dropped++;
		else
			r->st.queries_outside++;
		t->head = (t->head + 1) % THREAD_QUERIES;
		t->n--;
		pop_done(t);
	}
	tq = &t->q[(t->head + t->n++) % THREAD_QUERIES];
	tq->start = start_ns;
	tq->end = end_ns > start_ns ? end_ns : start_ns;
	tq->task = task;
	tq->done = false;
	tq->pat = pattern;
	tq->site = call_site;
}

void requests__query(struct requests *r, uint32_t pid, uint32_t tid, uint64_t start_ns, uint64_t end_ns,
		     const char *pattern, const char *call_site)
{
	requests__query_task(r, pid, tid, start_ns, end_ns, strtab_intern(&r->strings, pattern),
			     strtab_intern(&r->strings, call_site), 0);
}

void requests__query_ids(struct requests *r, uint32_t pid, uint32_t tid, uint64_t start_ns, uint64_t end_ns,
			 uint32_t pattern, uint32_t call_site)
{
	requests__query_task(r, pid, tid, start_ns, end_ns, pattern, call_site, 0);
}

void requests__query_task(struct requests *r, uint32_t pid, uint32_t tid, uint64_t start_ns, uint64_t end_ns,
			  uint32_t pattern, uint32_t call_site, uint64_t task)
{
	struct thread *t;

	if ((task & 1) == 0 && (task & PT_TASK_PROXY)) {
		/* a thread pool's, for a task: it waits for that task's response, on any thread */
		task &= ~PT_TASK_PROXY;
		t = thread_get(r, pid, POOL_TID, true);
		if (t)
			t->by_task = true;
	} else {
		t = thread_get(r, pid, tid, true);
	}
	if (t)
		thread_query(r, t, start_ns, end_ns, pattern, call_site, task);
}

#define POOL_PIDS 64

/*
 * Statements no task's response claimed within task_hold_ns (or at all, at the end) go. So do
 * those of threads that never read or answered a request in a process whose requests go by task:
 * a thread pool's (Starlette's run_in_threadpool, asgiref's sync_to_async), whose work for a
 * request the loop thread answers; nothing ties the two (counted apart, as queries_pool).
 */
static void expire_unclaimed(struct requests *r, uint64_t before)
{
	uint32_t pids[POOL_PIDS];
	unsigned npids = 0, k;
	size_t i;

	for (i = 0; i < r->nthread_slots; i++) {
		struct thread *t = r->threads[i];

		if (!t || !t->by_task)
			continue;
		for (k = 0; k < npids && pids[k] != t->pid; k++)
			;
		if (k == npids && npids < POOL_PIDS)
			pids[npids++] = t->pid;
		pop_done(t);
		while (t->n && t->q[t->head].start < before) {
			count_unclaimed(r, t, &t->q[t->head]);
			t->head = (t->head + 1) % THREAD_QUERIES;
			t->n--;
			pop_done(t);
		}
	}
	for (i = 0; npids && i < r->nthread_slots; i++) {
		struct thread *t = r->threads[i];

		if (!t || t->by_task || t->served || t->last_read_ts)
			continue;
		for (k = 0; k < npids && pids[k] != t->pid; k++)
			;
		if (k == npids)
			continue;
		while (t->n && t->q[t->head].start < before) {
			r->st.queries_pool++;
			t->head = (t->head + 1) % THREAD_QUERIES;
			t->n--;
		}
	}
}

static void complete_conn_now(struct requests *r, struct conn *c)
{
	if (r->o.last_write)
		note_last_write(c, r->o.last_write(r->o.ctx, c->pid, c->fd));
	complete_answered(r, c);
}

void requests__tick(struct requests *r, uint64_t now_ns)
{
	size_t i;

	if (now_ns - r->last_tick < r->o.idle_ns / 4)
		return;
	r->last_tick = now_ns;
	if (r->o.log)
		fflush(r->o.log);
	if (now_ns > r->o.task_hold_ns)
		expire_unclaimed(r, now_ns - r->o.task_hold_ns);
	for (i = 0; i < r->nconn_slots; i++) {
		struct conn *c = r->conns[i];

		if (c && c->n && c->q[c->head].answered && c->last_event + r->o.idle_ns < now_ns)
			complete_conn_now(r, c);
	}
}

void requests__flush(struct requests *r)
{
	size_t i;

	for (i = 0; i < r->nconn_slots; i++)
		if (r->conns[i])
			complete_conn_now(r, r->conns[i]);
	expire_unclaimed(r, UINT64_MAX);
	if (r->o.log)
		fflush(r->o.log);
}

void requests__forget_pid(struct requests *r, uint32_t pid)
{
	size_t i;

	if (!r->pids_full && !pidtab__get(&r->pids, pid))
		return;		/* holds nothing: no walk of both tables */
	for (i = 0; i < r->nconn_slots; i++) {
		struct conn *c = r->conns[i];

		if (c && c->pid == pid) {
			complete_conn_now(r, c);
			drop_unanswered(r, c);
			conn_remove(r, c);
			i--;	/* the slot may hold a moved entry now */
		}
	}
	for (i = 0; i < r->nthread_slots; i++) {
		struct thread *t = r->threads[i];

		if (t && t->pid == pid) {
			while (t->n) {
				if (t->by_task)
					count_unclaimed(r, t, &t->q[t->head]);
				else
					r->st.queries_outside++;
				t->head = (t->head + 1) % THREAD_QUERIES;
				t->n--;
			}
			free(t);
			remove_slot((void **)r->threads, r->nthread_slots, i);
			r->nthreads--;
			pid_held(r, pid, -1);
			i--;
		}
	}
}

int requests__listen(struct requests *r, requests_done_fn fn, void *ctx)
{
	if (r->nlisteners == REQUESTS_MAX_LISTENERS)
		return -ENOSPC;
	r->listeners[r->nlisteners].fn = fn;
	r->listeners[r->nlisteners].ctx = ctx;
	r->nlisteners++;
	return 0;
}

/*
 * Patterns and call sites are interned for as long as a collector runs; when the table is mostly
 * full at a window's end it starts again, so that a collector that runs for months still names
 * new patterns. Ids held by statements and requests in flight die with it: their statements stay
 * counted, as "[other patterns]" (callers forget the ids they keep: see requests__intern).
 */
static int recycle_strings(struct requests *r)
{
	struct strtab fresh = { 0 };
	size_t i;
	unsigned j;

	if (strtab_init(&fresh, MAX_STRINGS))
		return -ENOMEM;
	for (i = 0; i < r->nthread_slots; i++)
		if (r->threads[i])
			for (j = 0; j < THREAD_QUERIES; j++)
				r->threads[i]->q[j].pat = r->threads[i]->q[j].site = 0;
	for (i = 0; i < r->nconn_slots; i++)
		if (r->conns[i])
			for (j = 0; j < QUEUE; j++)
				r->conns[i]->q[j].npats = 0;
	strtab_free(&r->strings);
	r->strings = fresh;
	return 0;
}

int requests__reset(struct requests *r)
{
	struct strtab routes = { 0 };

	if (r->strings.n > MAX_STRINGS * 3 / 4 && !recycle_strings(r))
		r->strings_recycled++;
	/* Routes are looked up when a request completes: no id outlives this. */
	if (strtab_init(&routes, r->o.max_routes + 1))
		return -ENOMEM;
	strtab_free(&r->routes);
	r->routes = routes;
	r->other_route = strtab_intern(&r->routes, REQUESTS_OTHER_ROUTES);
	memset(r->aggs, 0, r->naggs * sizeof(*r->aggs));
	r->naggs = 0;
	memset(r->findings, 0, r->nfindings * sizeof(*r->findings));
	r->nfindings = 0;
	memset(&r->st, 0, sizeof(r->st));
	return 0;
}

void requests__stats(const struct requests *r, struct requests_stats *st)
{
	*st = r->st;
}

static int cmp_agg(const void *a, const void *b)
{
	const struct agg *x = *(const struct agg *const *)a, *y = *(const struct agg *const *)b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->total_ns < y->total_ns ? 1 : x->total_ns > y->total_ns ? -1 : 0;
}

static int cmp_agg_p95(const void *a, const void *b)
{
	const struct agg *x = *(const struct agg *const *)a, *y = *(const struct agg *const *)b;
	uint64_t px = lathist__percentile(&x->hist, 95), py = lathist__percentile(&y->hist, 95);

	return px < py ? 1 : px > py ? -1 : cmp_agg(a, b);
}

static int cmp_finding(const void *a, const void *b)
{
	const struct finding *x = *(const struct finding *const *)a, *y = *(const struct finding *const *)b;

	if (x->total_ns != y->total_ns)
		return x->total_ns < y->total_ns ? 1 : -1;
	return x->requests < y->requests ? 1 : x->requests > y->requests ? -1 : 0;
}

static const struct agg **sorted_aggs(const struct requests *r, int (*cmp)(const void *, const void *))
{
	const struct agg **v = calloc(r->naggs ? r->naggs : 1, sizeof(*v));
	size_t i;

	if (!v)
		return NULL;
	for (i = 0; i < r->naggs; i++)
		v[i] = &r->aggs[i];
	qsort(v, r->naggs, sizeof(*v), cmp);
	return v;
}

static const struct finding **sorted_findings(const struct requests *r)
{
	const struct finding **v = calloc(r->nfindings ? r->nfindings : 1, sizeof(*v));
	size_t i;

	if (!v)
		return NULL;
	for (i = 0; i < r->nfindings; i++)
		v[i] = &r->findings[i];
	qsort(v, r->nfindings, sizeof(*v), cmp_finding);
	return v;
}

int requests__write_json(const struct requests *r, struct jsonw *w)
{
	const struct agg **v = sorted_aggs(r, cmp_agg);
	size_t i;

	if (!v)
		return -ENOMEM;
	jsonw__start_array(w);
	for (i = 0; i < r->naggs; i++) {
		const struct agg *a = v[i];

		if (!a->count)
			continue;
		jsonw__start_object(w);
		jsonw__string_field(w, "method", a->method);
		jsonw__string_field(w, "route", strtab_get(&r->routes, a->route));
		jsonw__uint_field(w, "status", a->status);
		jsonw__uint_field(w, "count", a->count);
		jsonw__double_fixed_field(w, "p50_ms", lathist__percentile(&a->hist, 50) / 1e6, 3);
		jsonw__double_fixed_field(w, "p95_ms", lathist__percentile(&a->hist, 95) / 1e6, 3);
		jsonw__double_fixed_field(w, "p99_ms", lathist__percentile(&a->hist, 99) / 1e6, 3);
		jsonw__double_fixed_field(w, "max_ms", a->hist.max / 1e6, 3);
		jsonw__double_fixed_field(w, "avg_queries", (double)a->queries / a->count, 2);
		jsonw__double_fixed_field(w, "sql_share", a->total_ns ? (double)a->sql_ns / a->total_ns : 0, 4);
		jsonw__double_fixed_field(w, "total_ms", a->total_ns / 1e6, 3);
		jsonw__double_fixed_field(w, "sql_ms", a->sql_ns / 1e6, 3);
		jsonw__end_object(w);
	}
	free(v);
	return jsonw__end_array(w);
}

int requests__write_n1_json(const struct requests *r, struct jsonw *w)
{
	const struct finding **v = sorted_findings(r);
	size_t i;

	if (!v)
		return -ENOMEM;
	jsonw__start_array(w);
	for (i = 0; i < r->nfindings; i++) {
		const struct finding *f = v[i];
		const char *site = strtab_get(&r->strings, f->site);

		jsonw__start_object(w);
		jsonw__string_field(w, "method", f->method);
		jsonw__string_field(w, "route", strtab_get(&r->routes, f->route));
		jsonw__string_field(w, "pattern", strtab_get(&r->strings, f->pat));
		jsonw__uint_field(w, "per_request", f->per_request);
		jsonw__double_fixed_field(w, "avg_per_request", (double)f->repeats / f->requests, 2);
		jsonw__uint_field(w, "requests", f->requests);
		jsonw__double_fixed_field(w, "total_ms", f->total_ns / 1e6, 3);
		jsonw__name(w, "call_site");
		if (site)
			jsonw__string(w, site);
		else
			jsonw__null(w);
		jsonw__end_object(w);
	}
	free(v);
	return jsonw__end_array(w);
}

int requests__write_summary_json(const struct requests *r, struct jsonw *w)
{
	const struct requests_stats *s = &r->st;
	const struct { const char *name; uint64_t v; } f[] = {
		{ "requests", s->requests }, { "n1_threshold", r->o.n1_threshold },
		{ "routes", r->routes.n - 1 }, { "max_routes", r->o.max_routes },
		{ "not_http", s->not_http }, { "no_response", s->no_response }, { "relayed", s->relayed },
		{ "responses_without_request", s->orphan_responses },
		{ "dropped_connections", s->dropped_conns }, { "dropped_pipelined", s->dropped_pipelined },
		{ "dropped_threads", s->dropped_threads }, { "dropped_routes", s->dropped_routes },
		{ "framework_routes", s->framework_routes }, { "unplaced_route_templates", s->unplaced_routes },
		{ "route_templates_from_asgi_scope", s->scope_routes },
		{ "scope_route_templates_mismatched", s->scope_routes_mismatched },
		{ "dropped_findings", s->dropped_findings }, { "dropped_request_patterns", s->dropped_patterns },
		{ "queries_attributed", s->queries_attributed }, { "queries_outside_requests", s->queries_outside },
		{ "queries_unattributed_multiplexed", s->queries_unattributed },
		{ "requests_multiplexed", s->multiplexed_requests }, { "queries_dropped", s->queries_dropped },
		{ "requests_by_task", s->requests_by_task },
		{ "requests_by_asgi_scope", s->requests_by_scope },
		{ "requests_by_host_task", s->requests_by_host_task },
		{ "queries_unattributed_task_unknown", s->queries_task_unknown },
		{ "queries_unattributed_ambiguous_task", s->queries_ambiguous },
		{ "queries_unattributed_no_response", s->queries_no_response },
		{ "queries_unattributed_thread_pool", s->queries_pool },
		{ "queries_attributed_thread_pool", s->queries_pool_task },
	};
	size_t i;

	jsonw__start_object(w);
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		jsonw__name(w, f[i].name);
		jsonw__uint(w, f[i].v);
	}
	return jsonw__end_object(w);
}

int requests__report(const struct requests *r, FILE *f, unsigned top)
{
	const struct agg **v = sorted_aggs(r, cmp_agg_p95);
	const struct finding **fv = sorted_findings(r);
	size_t i;

	if (!v || !fv) {
		free(v);
		free(fv);
		return -ENOMEM;
	}
	fprintf(f, "HTTP requests: %llu, slowest routes by p95:\n", (unsigned long long)r->st.requests);
	fprintf(f, "  %-7s %-32s %6s %8s %9s %9s %9s %9s %8s %5s\n", "METHOD", "ROUTE", "STATUS", "COUNT",
		"P50 ms", "P95 ms", "P99 ms", "MAX ms", "QUERIES", "SQL%");
	for (i = 0; i < r->naggs && (!top || i < top); i++) {
		const struct agg *a = v[i];

		fprintf(f, "  %-7s %-32s %6d %8llu %9.2f %9.2f %9.2f %9.2f %8.1f %4.0f%%\n", a->method,
			strtab_get(&r->routes, a->route), a->status, (unsigned long long)a->count,
			lathist__percentile(&a->hist, 50) / 1e6, lathist__percentile(&a->hist, 95) / 1e6,
			lathist__percentile(&a->hist, 99) / 1e6, a->hist.max / 1e6, (double)a->queries / a->count,
			a->total_ns ? 100.0 * a->sql_ns / a->total_ns : 0);
	}
	if (r->nfindings) {
		fprintf(f, "\nN+1 queries (the same statement >= %u times in one request):\n", r->o.n1_threshold);
		for (i = 0; i < r->nfindings && (!top || i < top); i++) {
			const struct finding *x = fv[i];
			const char *site = strtab_get(&r->strings, x->site);

			fprintf(f, "  %s %s: %u x per request, in %llu request%s, %.1f ms in all\n", x->method,
				strtab_get(&r->routes, x->route), x->per_request, (unsigned long long)x->requests,
				x->requests == 1 ? "" : "s", x->total_ns / 1e6);
			fprintf(f, "      %.200s\n", strtab_get(&r->strings, x->pat));
			fprintf(f, "      at %s\n", site ? site : "(no application frame)");
		}
	} else if (r->st.requests) {
		fprintf(f, "\nNo N+1 queries (no statement repeated >= %u times in one request).\n", r->o.n1_threshold);
	}
	if (r->st.multiplexed_requests)
		fprintf(f, "\nNote: %llu requests were served by threads that handle several requests at once "
			"(asyncio?): their %llu statements are not attributed to requests.\n",
			(unsigned long long)r->st.multiplexed_requests, (unsigned long long)r->st.queries_unattributed);
	free(v);
	free(fv);
	return 0;
}
