// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "jsonw.h"
#include "libpq.h"
#include "procs.h"
#include "pystacks.h"
#include "session.h"
#include "sqlmode.h"
#include "sqltrace.h"
#include "util.h"

#define STACK_CACHE	4096	/* symbolized statement stacks kept */
#define SWEEP_NS	(5 * 1000000000ULL)	/* the dead's stacks leave the cache this often */
#define MAX_SQL_FRAMES	(PT_MAX_FRAMES + 2)

struct stack_entry {
	uint32_t pid;
	uint64_t id;		/* 0: free */
	char **frames;		/* root first */
	size_t n;
	const char *call_site;	/* one of frames, or NULL */
	bool cut;		/* walked down to its route frame only (PT_SF_CUT) */
};

struct sqltrace {
	struct sqltrace_opts opts;
	struct session *session;
	struct libpq *libpq;
	struct pystacks *names;
	struct sqltrace_listener listeners[SQLTRACE_MAX_LISTENERS];
	int nlisteners;
	struct sql_match *match;
	struct sql_stats *stats;
	struct stack_entry *cache;	/* direct-mapped on (pid, id) */
	uint64_t stacks_missing;	/* statements whose stack had left the stacks map */
	uint64_t stacks_cut;		/* statements whose stack was walked to its route frame only */
	uint64_t wire_statements;	/* statements given by another source (sqltrace__add_query) */
	sqltrace_keep_fn keep;		/* libpq statements: counted unless another source serves them */
	void *keep_ctx;
	uint64_t left_to_wire;
	uint64_t last_sweep;	/* of the stack cache */
	/* statements prepared before tracing, their texts read from the driver (driver_text) */
	uint64_t texts_learned;
	uint64_t named_only;	/* statements counted as "EXECUTE name" (struct sql_query's named_only) */
};

static void query_done(void *ctx, const struct sql_query *q);

static bool is_library_file(const char *file, size_t len)
{
	static const char *const marks[] = { "/site-packages/", "/dist-packages/", "/lib/python3" };
	size_t i;

	if (!file || !len || file[0] == '<')	/* <frozen ...>, <string> */
		return true;
	for (i = 0; i < ARRAY_SIZE(marks); i++)
		if (memmem(file, len, marks[i], strlen(marks[i])))
			return true;
	return false;
}

const char *sqltrace__call_site(const char *const *frames, size_t n)
{
	size_t i;

	for (i = n; i > 0; i--) {
		struct frame_parts fp;

		frame__parse(frames[i - 1], &fp);
		if (fp.file && !is_library_file(fp.file, fp.file_len))
			return frames[i - 1];
	}
	return NULL;
}

static void cache_entry_free(struct stack_entry *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->frames[i]);
	free(e->frames);
	memset(e, 0, sizeof(*e));
}

/* The symbolized stack of a statement, cached per (pid, stack id). */
static int libpq_stack(void *ctx, uint64_t id, struct pt_stack *st)
{
	return libpq__stack(ctx, id, st);
}

static const struct stack_entry *stack_get(struct sqltrace *s, uint32_t pid, uint32_t tid, uint64_t id,
					   sqltrace_stack_fn lookup, void *lctx)
{
	struct stack_entry *e = &s->cache[((id ^ pid) * 0x9e3779b97f4a7c15ULL) >> 52 & (STACK_CACHE - 1)];
	const char *frames[MAX_SQL_FRAMES];
	struct pt_stack st;
	size_t n, i;

	if (!id)
		return NULL;
	if (e->id == id && e->pid == pid)
		return e;
	if (!lookup || lookup(lctx, id, &st)) {
		s->stacks_missing++;
		return NULL;
	}
	/* Naming one anew may change what its stack id stands for: listeners forget it. */
	for (int i = 0; i < s->nlisteners; i++)
		if (s->listeners[i].on_stack_named)
			s->listeners[i].on_stack_named(s->listeners[i].ctx);
	n = pystacks__name(s->names, pid, tid, &st, frames, MAX_SQL_FRAMES);
	cache_entry_free(e);
	e->frames = calloc(n ? n : 1, sizeof(*e->frames));
	if (!e->frames)
		return NULL;
	for (i = 0; i < n; i++) {
		e->frames[i] = strdup(frames[i]);
		if (!e->frames[i]) {
			e->n = i;
			cache_entry_free(e);
			return NULL;
		}
	}
	e->n = n;
	e->pid = pid;
	e->id = id;
	e->call_site = sqltrace__call_site((const char *const *)e->frames, n);
	e->cut = st.flags & PT_SF_CUT;
	return e;
}

static void slow_log(struct sqltrace *s, const struct sql_query *q, const struct stack_entry *st,
		     const char *pattern)
{
	struct jsonw *w = jsonw__new(s->opts.slow_log);
	size_t i;

	if (!w)
		return;
	jsonw__start_object(w);
	jsonw__uint_field(w, "pid", q->pid);
	jsonw__uint_field(w, "tid", q->tid);
	jsonw__uint_field(w, "start_ns", q->start_ns);
	jsonw__double_fixed_field(w, "duration_ms", (q->end_ns - q->start_ns) / 1e6, 3);
	jsonw__bool_field(w, "error", q->error);
	jsonw__string_field(w, "pattern", pattern);
	if (s->opts.show_literals) {
		jsonw__name(w, "text");
		jsonw__string_len(w, q->text, q->len);
	}
	jsonw__bool_field(w, "truncated", q->truncated);
	jsonw__name(w, "call_site");
	if (st && st->call_site)
		jsonw__string(w, st->call_site);
	else
		jsonw__null(w);
	jsonw__name(w, "stack");
	jsonw__start_array(w);
	for (i = 0; st && i < st->n; i++)
		jsonw__string(w, st->frames[i]);
	jsonw__end_array(w);
	jsonw__end_object(w);
	jsonw__free(w);
	fputc('\n', s->opts.slow_log);
	fflush(s->opts.slow_log);
}

static void add_query(struct sqltrace *s, const struct sql_query *q, sqltrace_stack_fn lookup, void *lctx)
{
	const struct stack_entry *st = stack_get(s, q->pid, q->tid, q->stack_id, lookup, lctx);
	uint64_t dur = q->end_ns > q->start_ns ? q->end_ns - q->start_ns : 0;
	const char *site = st ? st->call_site : NULL, *pattern;

	if (st && st->cut)
		s->stacks_cut++;
	s->named_only += q->named_only;

	/* the pattern the statistics computed (or remembered for this text): not normalized twice */
	sql_stats__add_pattern(s->stats, q->text, q->len, q->truncated, dur, q->error, site, &pattern);
	sql_stats__note_result(s->stats, q->rows_known ? q->rows : -1, q->sqlstate);
	if (s->opts.slow_log && dur >= s->opts.slow_ms * 1e6)
		slow_log(s, q, st, pattern);
	for (int i = 0; i < s->nlisteners; i++)
		if (s->listeners[i].on_query)
			s->listeners[i].on_query(s->listeners[i].ctx, q, st ? (const char *const *)st->frames : NULL,
						 st ? st->n : 0, pattern, site);
}

static void query_done(void *ctx, const struct sql_query *q)
{
	struct sqltrace *s = ctx;

	if (s->keep && !s->keep(s->keep_ctx, q->pid, q->conn)) {
		s->left_to_wire++;
		return;
	}
	add_query(s, q, s->libpq ? libpq_stack : NULL, s->libpq);
}

void sqltrace__keep_libpq(struct sqltrace *s, sqltrace_keep_fn keep, void *ctx)
{
	s->keep = keep;
	s->keep_ctx = ctx;
}

void sqltrace__probe_libpq(struct sqltrace *s, pid_t pid)
{
	if (s->libpq && !libpq__has_pid(s->libpq, pid)) {
		vlog("pid %d: an encrypted PostgreSQL connection: probing its libpq\n", pid);
		libpq__add_pid(s->libpq, pid);
	}
}

void sqltrace__add_query(struct sqltrace *s, const struct sql_query *q, sqltrace_stack_fn lookup, void *ctx)
{
	s->wire_statements++;
	add_query(s, q, lookup, ctx);
}

void sqltrace__name_stack(struct sqltrace *s, uint32_t pid, uint32_t tid, uint64_t id, sqltrace_stack_fn lookup,
			  void *ctx)
{
	stack_get(s, pid, tid, id, lookup, ctx);
}

/*
 * libpq's probes (encrypted connections) running a statement prepared before tracing: as on the
 * wire (src/pgwiretrace.c's driver_text), its process's walkers are asked for the text its
 * driver's frame holds, which a later execution's event carries after the name
 * (SQL_F_DRIVER_TEXT): the name takes it. At PQsendQueryPrepared the frame is the statement's
 * own (a pipeline's statements are each sent by their own call).
 */
static void driver_text(struct sqltrace *s, const struct sql_send *e)
{
	if (!(e->flags & SQL_F_PREPARED) || !e->name_len ||
	    sql_match__knows(s->match, e->hdr.pid, e->conn, e->data, e->name_len))
		return;
	procs__want_text(session__procs(s->session), e->hdr.pid, mono_ns());
	if (!(e->flags & SQL_F_DRIVER_TEXT) || !e->text_len)
		return;
	if (!sql_match__learn(s->match, e->hdr.pid, e->conn, e->data, e->name_len, e->data + e->name_len, e->text_len,
			      e->flags & SQL_F_TRUNCATED, e->ts)) {
		procs__text_taken(session__procs(s->session), e->hdr.pid);
		s->texts_learned++;
	}
}

static void sqltrace_event(void *c, const void *data, size_t size)
{
	struct sqltrace *s = c;
	const struct pt_event_hdr *h = data;

	switch (h->type) {
	case PT_EV_SQL_SEND: {
		const struct sql_send *e = data;
		size_t at = offsetof(struct sql_send, data);

		if (size < at || size < at + e->name_len + e->text_len)
			return;
		driver_text(s, e);
		/*
		 * Name the stack now, while the process surely lives: a statement can complete
		 * after it has exited (BPF wakes us early for stacks it had not seen before).
		 */
		stack_get(s, e->hdr.pid, e->tid, e->stack_id, libpq_stack, s->libpq);
		sql_match__send_task(s->match, e->hdr.pid, e->tid, e->conn, e->ts, e->flags,
				     (e->flags & (SQL_F_PREPARE | SQL_F_PREPARED)) ? e->data : NULL, e->name_len,
				     e->data + e->name_len, e->text_len, e->stack_id,
				     pt_task_key(e->task_frame, e->root_frame));
		break;
	}
	case PT_EV_SQL_RESULT: {
		const struct sql_result *r = data;

		if (size >= sizeof(*r))
			sql_match__result(s->match, r->hdr.pid, r->conn, r->ts, r->status);
		break;
	}
	case PT_EV_SQL_SYNC: {
		const struct sql_result *r = data;

		if (size >= sizeof(*r))
			sql_match__sync(s->match, r->hdr.pid, r->conn, r->ts);
		break;
	}
	case PT_EV_SQL_EXEC: {
		const struct sql_send *e = data;
		size_t at = offsetof(struct sql_send, data);

		if (size < at || size < at + e->name_len + e->text_len)
			return;
		driver_text(s, e);
		sql_match__exec_task(s->match, e->hdr.pid, e->tid, e->conn, e->ts, e->end_ts, e->flags,
				     (e->flags & (SQL_F_PREPARE | SQL_F_PREPARED)) ? e->data : NULL, e->name_len,
				     e->data + e->name_len, e->text_len, e->stack_id, e->status,
				     pt_task_key(e->task_frame, e->root_frame));
		break;
	}
	case PT_EV_SQL_DLOPEN: {
		const struct sql_result *r = data;

		if (size >= sizeof(*r))
			libpq__dlopen(s->libpq, r->hdr.pid, r->ts);
		break;
	}
	case PT_EV_SQL_ASYNC: {
		const struct sql_result *r = data;

		if (size >= sizeof(*r))
			libpq__async_seen(s->libpq, r->hdr.pid, r->ts);
		break;
	}
	}
}

static void sqltrace_free(void *c)
{
	struct sqltrace *s = c;
	int i;

	if (!s)
		return;
	libpq__free(s->libpq);
	sql_match__free(s->match);
	sql_stats__free(s->stats);
	if (s->cache) {
		for (i = 0; i < STACK_CACHE; i++)
			cache_entry_free(&s->cache[i]);
		free(s->cache);
	}
	free(s);
}

static void *sqltrace_open(struct session *ss, const struct session_opts *so, char *err, size_t errlen)
{
	const struct sqltrace_opts *o = &so->sql;
	struct sql_stats_opts sto = { .max_patterns = o->max_patterns, .show_literals = o->show_literals };
	struct libpq_opts lo = {
		.probes = o->probes, .text_cap = o->text_cap, .ahead_ttl_ns = o->ahead_ttl_ns,
		.max_procs = so->max_procs, .btf_path = so->btf_path,
	};
	struct sqltrace *s;

	if (!o->enabled)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->opts = *o;
	if (!s->opts.text_cap)
		s->opts.text_cap = 1024;
	s->session = ss;
	s->names = session__pystacks(ss);
	s->match = sql_match__new(0, query_done, s);
	s->stats = sql_stats__new(&sto);
	s->cache = calloc(STACK_CACHE, sizeof(*s->cache));
	if (!s->match || !s->stats || !s->cache) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (o->no_libpq)
		return s;
	s->libpq = libpq__new(&lo, session__maps(ss), err, errlen);
	if (!s->libpq)
		goto fail;
	return s;
fail:
	sqltrace_free(s);
	return NULL;
}

static void sqltrace_on_python(void *c, const struct proc *p)
{
	struct sqltrace *s = c;

	if (s->libpq && !s->opts.libpq_on_demand)
		libpq__add_pid(s->libpq, p->pid);
}

static void sqltrace_on_fork(void *c, const struct proc *child, const struct proc *parent)
{
	struct sqltrace *s = c;

	if (s->libpq && (!s->opts.libpq_on_demand || libpq__has_pid(s->libpq, parent->pid)))
		libpq__fork(s->libpq, child->pid, parent->pid);
}

static void sqltrace_forget(void *c, pid_t pid)
{
	struct sqltrace *s = c;

	sql_match__forget_pid(s->match, pid);
	if (s->libpq)
		libpq__forget_pid(s->libpq, pid);
}

/*
 * Stacks of processes gone for a while leave the cache (a collector through worker churn would
 * otherwise fill all of it with the dead's stacks: megabytes of frame names).
 */
static void sweep_cache(struct sqltrace *s)
{
	struct procs *procs = session__procs(s->session);

	for (size_t i = 0; i < STACK_CACHE; i++) {
		const struct proc *pr;

		if (!s->cache[i].frames)
			continue;
		/* a process's record goes a second after its exit (procs.h): statements are complete by then */
		pr = procs__get(procs, s->cache[i].pid, false);
		if (!pr)
			cache_entry_free(&s->cache[i]);
	}
}

static void sqltrace_tick(void *c, uint64_t now)
{
	struct sqltrace *s = c;

	if (now - s->last_sweep > SWEEP_NS) {
		s->last_sweep = now;
		sweep_cache(s);
	}

	if (s->libpq)
		libpq__tick(s->libpq, now);
}

int sqltrace__listen(struct sqltrace *s, const struct sqltrace_listener *l)
{
	if (s->nlisteners == SQLTRACE_MAX_LISTENERS)
		return -ENOSPC;
	s->listeners[s->nlisteners++] = *l;
	return 0;
}

void sqltrace__stats(struct sqltrace *s, struct sqltrace_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (s->libpq)
		libpq__stats(s->libpq, &st->libpq);
	else
		st->libpq.attached_as = "not used";
	st->lost = session__counter(s->session, PT_CNT_SQL_LOST);
	st->calls = session__counter(s->session, PT_CNT_SQL_CALLS);
	st->stacks_missing = s->stacks_missing;
	st->stacks_cut = s->stacks_cut;
	st->libpq_left_to_wire = s->left_to_wire;
	st->named_only = s->named_only;
	sql_match__stats(s->match, &st->match);
}

struct sql_stats *sqltrace__sql_stats(struct sqltrace *s)
{
	return s->stats;
}

static const char *probes_opt_name(int opt)
{
	return opt == SQL_PROBES_SEND ? "send" : opt == SQL_PROBES_EXEC ? "exec" : "auto";
}

static void sqltrace_json(void *c, struct jsonw *w)
{
	struct sqltrace *s = c;
	struct sqltrace_stats st;
	struct procs_stats ps;

	sqltrace__stats(s, &st);
	procs__stats(session__procs(s->session), &ps);
	jsonw__name(w, "sql");
	sql_stats__write_summary_json(s->stats, w);
	jsonw__name(w, "sql_capture");
	jsonw__start_object(w);
	jsonw__string_field(w, "source", !s->libpq ? "wire" : s->opts.libpq_on_demand ? "auto" : "libpq");
	jsonw__uint_field(w, "libpq_statements_left_to_the_wire", st.libpq_left_to_wire);
	jsonw__uint_field(w, "libpq_files", st.libpq.libpq_files);
	jsonw__uint_field(w, "libpq_calls", st.calls);
	jsonw__uint_field(w, "lost_events", st.lost);
	jsonw__uint_field(w, "stacks_to_route_frame", st.stacks_cut);
	jsonw__uint_field(w, "results_without_statement", st.match.orphan_results);
	jsonw__uint_field(w, "unfinished_statements", st.match.pending);
	jsonw__uint_field(w, "dropped_statements", st.match.evicted);
	jsonw__uint_field(w, "unknown_prepared", st.match.unknown_prepared);
	jsonw__uint_field(w, "statements_named_only", st.named_only);
	jsonw__name(w, "prepared_before_tracing");
	jsonw__start_object(w);
	jsonw__uint_field(w, "texts_from_driver", s->texts_learned);
	jsonw__uint_field(w, "processes_given_up", ps.texts_given_up);
	jsonw__end_object(w);
	jsonw__string_field(w, "probes", probes_opt_name(s->opts.probes));
	jsonw__string_field(w, "attached_as", st.libpq.attached_as);
	jsonw__uint_field(w, "moves_to_exec_probes", st.libpq.to_exec);
	jsonw__uint_field(w, "moves_to_send_probes", st.libpq.to_send);
	jsonw__uint_field(w, "async_calls_on_exec_probes", st.libpq.async_calls_in_exec);
	jsonw__end_object(w);
	jsonw__name(w, "queries");
	sql_stats__write_json(s->stats, w);
}

static void sqltrace_summary(void *c, FILE *f)
{
	struct sqltrace *s = c;
	struct sqltrace_stats st;

	sqltrace__stats(s, &st);
	if (!s->libpq || s->opts.libpq_on_demand)
		return;	/* the wire's summary says it all */
	fprintf(f, "SQL: %llu statements from %u process%s with libpq (%u libpq file%s); lost events %llu, "
		"results without a statement %llu, unfinished %llu.\n",
		(unsigned long long)st.match.completed, st.libpq.processes_with_libpq,
		st.libpq.processes_with_libpq == 1 ? "" : "es", st.libpq.libpq_files,
		st.libpq.libpq_files == 1 ? "" : "s", (unsigned long long)st.lost,
		(unsigned long long)st.match.orphan_results, (unsigned long long)st.match.pending);
	if (st.libpq.async_calls_in_exec)
		wlog("%llu asynchronous libpq calls came while only PQexec* was probed: statements sent with them "
		     "before the probes changed were not recorded\n", (unsigned long long)st.libpq.async_calls_in_exec);
	if (st.lost)
		wlog("%llu libpq events were lost (ring buffer full): statement counts are low\n",
		     (unsigned long long)st.lost);
}

static void sqltrace_report(void *c, FILE *f, unsigned written)
{
	struct sqltrace *s = c;
	struct sql_match_stats ms;

	sql_match__stats(s->match, &ms);
	if (!(written & SESSION_WROTE_FILES) && (ms.completed || s->wire_statements)) {
		fprintf(f, "\nSQL patterns by total time:\n");
		sql_stats__report(s->stats, f, 20);
	}
}

static void sqltrace_reset(void *c)
{
	struct sqltrace *s = c;
	struct sql_stats_opts sto = { .max_patterns = s->opts.max_patterns, .show_literals = s->opts.show_literals };
	struct sql_stats *st = sql_stats__new(&sto);

	if (!st)
		return;	/* out of memory: the window goes on */
	sql_stats__free(s->stats);
	s->stats = st;
	/* listeners may remember patterns by pointer: they were freed */
	for (int i = 0; i < s->nlisteners; i++)
		if (s->listeners[i].on_stack_named)
			s->listeners[i].on_stack_named(s->listeners[i].ctx);
}

static bool sqltrace_collected(void *c)
{
	struct sqltrace *s = c;
	struct sql_match_stats ms;

	sql_match__stats(s->match, &ms);
	return ms.completed > 0 || s->wire_statements > 0;
}

const struct capability sqltrace_capability = {
	.name = "sql",
	.ev_first = PT_EV_SQL_FIRST,
	.ev_last = PT_EV_SQL_LAST,
	.open = sqltrace_open,
	.on_event = sqltrace_event,
	.on_python = sqltrace_on_python,
	.on_fork = sqltrace_on_fork,
	.on_exec = sqltrace_forget,
	.on_exit = sqltrace_forget,
	.tick = sqltrace_tick,
	.summary = sqltrace_summary,
	.write_json = sqltrace_json,
	.report = sqltrace_report,
	.reset = sqltrace_reset,
	.collected = sqltrace_collected,
	.free = sqltrace_free,
};
