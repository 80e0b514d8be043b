// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>
#include "pystacks.h"
#include "querycache.h"
#include "requests.h"
#include "session.h"
#include "sqljoin.h"
#include "stacks.h"

#define LEAF_LEN 384

struct sqljoin {
	struct requests *req;		/* NULL: no HTTP */
	struct stack_agg *stacks;	/* NULL: no [sql] leaves */
	struct query_cache *qcache;
};

static void on_stack_named(void *ctx)
{
	struct sqljoin *j = ctx;

	query_cache__invalidate(j->qcache);
}

/*
 * The frame CPython itself puts at the bottom of a thread: the main module (or runpy's for -m), or
 * threading's bootstrap. A stack that ends there runs in no greenlet; on an event loop's thread
 * it runs in no task either (a loop callback: a write that the transport deferred; uvloop's,
 * which it always defers, get their task from its probe: uvwrite.h), so its root frame names no
 * task.
 */
static bool thread_bottom(const char *frame)
{
	static const char *const names[] = { "<module> (", "_run_module_as_main (", "Thread._bootstrap (",
					     "_bootstrap (" };
	size_t i;

	for (i = 0; frame && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strncmp(frame, names[i], strlen(names[i])))
			return true;
	return false;
}

/*
 * frames and call_site are what sqltrace named the statement's (pid, stack id), so a statement
 * with the same stack id, frame count and pattern as one remembered in qcache gets the same flame
 * stack and request ids.
 */
static void on_query(void *ctx, const struct sql_query *q, const char *const *frames, size_t n,
		     const char *pattern, const char *call_site)
{
	struct sqljoin *j = ctx;
	const char *all[PYSTACKS_MAX_FRAMES + 1];
	char leaf[LEAF_LEN];
	uint64_t us = (q->end_ns - q->start_ns) / 1000;
	struct query_cache_val *m = NULL;
	uint64_t task = q->task;
	size_t i;
	bool hit;

	if ((task & 1) && (!n || thread_bottom(frames[0])))
		task = 0;	/* a root frame (pt_task_key), and no greenlet's */
	if (j->req || (j->stacks && us))
		m = query_cache__get(j->qcache, q->pid, q->stack_id, n, pattern, &hit);
	if (j->req) {
		if (m && !m->req_ids) {
			m->req_pattern = requests__intern(j->req, pattern);
			m->req_site = requests__intern(j->req, call_site);
			m->req_ids = true;
		}
		if (m)
			requests__query_task(j->req, q->pid, q->tid, q->start_ns, q->end_ns, m->req_pattern, m->req_site,
					     task);
		else
			requests__query_task(j->req, q->pid, q->tid, q->start_ns, q->end_ns,
					     requests__intern(j->req, pattern), requests__intern(j->req, call_site), task);
	}
	if (!j->stacks || !us)
		return;
	if (m && m->flame_id) {
		stack_agg__add_id(j->stacks, m->flame_id, us);
		return;
	}
	for (i = 0; i < n && i < PYSTACKS_MAX_FRAMES; i++)
		all[i] = frames[i];
	if (!n)
		all[i++] = "[no Python stack]";
	snprintf(leaf, sizeof(leaf), "[sql] %s", pattern);
	all[i++] = leaf;
	stack_agg__add_get_id(j->stacks, all, i, us, m ? &m->flame_id : NULL);
}

static void sqljoin_free(void *c)
{
	struct sqljoin *j = c;

	if (!j)
		return;
	query_cache__free(j->qcache);
	free(j);
}

/* Only where there is something to join: statements, and requests or [sql] leaves. */
static void *sqljoin_open(struct session *ss, const struct session_opts *o, char *err, size_t errlen)
{
	struct sqltrace *sql = session__cap(ss, "sql");
	struct httptrace *http = session__cap(ss, "http");
	struct sampler *sampler = session__cap(ss, "sampler");
	struct sqltrace_listener l = { .on_query = on_query, .on_stack_named = on_stack_named };
	struct sqljoin *j;

	if (!sql || (!http && !(o->sql.in_flame && sampler)))
		return NULL;
	j = calloc(1, sizeof(*j));
	if (!j || !(j->qcache = query_cache__new(0))) {
		free(j);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	j->req = http ? httptrace__requests(http) : NULL;
	j->stacks = o->sql.in_flame && sampler ? sampler__stacks(sampler) : NULL;
	l.ctx = j;
	sqltrace__listen(sql, &l);
	return j;
}

const struct capability sqljoin_capability = {
	.name = "sqljoin",
	.open = sqljoin_open,
	.free = sqljoin_free,
};
