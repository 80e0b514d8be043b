// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What the BPF walkers are told about a Python process's frameworks (procs.h): thread pools'
 * frames that name the task they work for, route frames, Starlette's middleware and streamed
 * responses, the server objects that hold a request's scope, and asyncio's running tasks; each
 * found in the process's modules or from the objects the walkers give, then handed to the BPF
 * side with the process's configuration (struct pt_proc).
 */
#include <errno.h>
#include <string.h>
#include "djroutes.h"
#include "memcache.h"
#include "procmem.h"
#include "procs_int.h"
#include "pythreads.h"
#include "pytrace_user.h"
#include "symbolize.h"

/* The index of the local named var in code's names (co_varnames, co_localsplusnames), or -1. */
static int local_index(const struct py_layout *l, const struct mem_reader *mr, uint64_t code, const char *var)
{
	uint64_t names = 0, n = 0, name, i;
	char buf[64];

	if (mem_read_u64(mr, code + l->co_varnames, &names) || !names || mem_read_u64(mr, names + l->bytes_size, &n))
		return -1;
	for (i = 0; i < n && i < 64; i++)
		if (!mem_read_u64(mr, names + l->tuple_items + 8 * i, &name) && name &&
		    py_read_str(l, mr, name, buf, sizeof(buf)) >= 0 && !strcmp(buf, var))
			return (int)i;
	return -1;
}

static const struct pool_frame pool_frames[] = {
	{ "asgiref.sync", "SyncToAsync", "thread_handler", "SyncToAsync.thread_handler", "/asgiref/sync.py",
	  "source_task", false },
	{ "anyio._backends._asyncio", "WorkerThread", "run", "WorkerThread.run", "/anyio/_backends/_asyncio.py",
	  "future", true },
};

#define POOL_GAP_MIN_NS (1000 * 1000000ULL)
#define POOL_GAP_MAX_NS (64 * 1000000000ULL)

const struct pool_frame *procs__pool_frame(const char *name, const char *file)
{
	for (size_t i = 0; i < sizeof(pool_frames) / sizeof(pool_frames[0]); i++)
		if (py_frame_is(name, file, pool_frames[i].qualname, pool_frames[i].method, pool_frames[i].file))
			return &pool_frames[i];
	return NULL;
}

void procs__thread_pool_frame(struct procs *p, struct proc *pr, uint64_t code, const struct pool_frame *pf)
{
	const struct py_layout *l = &pr->py.layout;
	struct mem_reader mr;
	int i;

	if (pr->state != PROC_PYTHON || !code || pr->py.proxy_code || pr->py.proxy_rejected == code ||
	    !l->task_coro || !l->gen_frame)
		return;
	/* asgiref up to 3.7 passes source_task; 3.8+ (self, loop, exc_info, task_context, ...) none */
	procmem__reader(&mr, pr->pid);
	i = local_index(l, &mr, code, pf->var);
	if (i < 0) {
		pr->py.proxy_rejected = code;
		vlog("pid %d: %s.%s has no local %s: its thread pool's statements are not given to tasks\n",
		     pr->pid, pf->module, pf->qualname, pf->var);
		return;
	}
	pr->py.proxy_code = code;
	pr->py.proxy_local = (uint32_t)i;
	pr->py.proxy_via_future = pf->via_future;
	if (procs_reconfigure(p, pr)) {
		pr->py.proxy_code = 0;
		pr->py.proxy_rejected = code;
		return;	/* it left meanwhile */
	}
	p->st.thread_pools++;
	tlog(p, "pid %d: its thread pool works for asyncio tasks (%s.%s names them)\n", pr->pid, pf->module,
	     pf->qualname);
}

void procs__want_wsgi_app(struct procs *p, uint32_t pid)
{
	struct proc *pr = procs__get(p, pid, false);

	if (!pr || pr->py.want_wsgi_app)
		return;
	pr->py.want_wsgi_app = true;
	pr->pool_next_ns = 0;	/* looked for at the next tick */
	pr->pool_gap_ns = 0;
	pr->mods_none = false;
}

void procs__route_frame(struct procs *p, struct proc *pr, uint64_t code, const struct route_frame *rf)
{
	const struct py_layout *l = &pr->py.layout;
	struct mem_reader mr;
	int i, cell;

	if (pr->state != PROC_PYTHON || !code || pr->py.route_code || pr->py.route_rejected == code ||
	    (rf->app == ROUTE_APP_WSGI_WORKER && !pr->py.want_wsgi_app))
		return;	/* a gunicorn worker's frame only where its app is needed (procs__want_wsgi_app) */
	procmem__reader(&mr, pr->pid);
	/* a closure's variable: its cell (3.11+: in the argument's own slot; <= 3.10: after the locals) */
	cell = pythreads__cell_index(l, &mr, code, rf->var);
	i = cell >= 0 ? cell : local_index(l, &mr, code, rf->var);
	if (i < 0) {
		pr->py.route_rejected = code;
		vlog("pid %d: %s.%s has no local %s: its requests keep their folded paths as routes\n", pr->pid,
		     rf->module, rf->qualname, rf->var);
		return;
	}
	pr->py.route_code = code;
	pr->py.route_local = (uint32_t)i;
	pr->py.route_cell = cell >= 0;
	pr->py.route_frame = (uint32_t)(rf - routes__frames);
	if (procs_reconfigure(p, pr)) {
		pr->py.route_code = 0;
		pr->py.route_rejected = code;
		return;	/* it left meanwhile */
	}
	p->st.route_frames++;
	tlog(p, "pid %d: its routes are read from %s.%s\n", pr->pid, rf->module, rf->qualname);
}

void procs__route_attr(struct procs *p, struct proc *pr, uint64_t type)
{
	const struct py_layout *l = &pr->py.layout;
	const struct route_frame *rf;
	struct py_attr_recipe r;
	struct mem_reader mr;
	int ret;

	if (pr->state != PROC_PYTHON || !pr->live || !type || pr->py.route_frame >= routes__nframes ||
	    pr->py.route_attr.mode || pr->py.route_attr_tries >= 8)
		return;
	rf = &routes__frames[pr->py.route_frame];
	if (!rf->app_attr)
		return;
	pr->py.route_attr_tries++;
	procmem__reader(&mr, pr->pid);
	ret = djroutes__is_subclass(l, &mr, pr->py.runtime, type, rf->module, rf->cls);
	ret = ret ?: pythreads__type_attr_recipe(l, &mr, type, rf->app_attr, &r);
	if (ret) {
		vlog("pid %d: where %s's class keeps %s not known yet: %s\n", pr->pid, rf->qualname, rf->app_attr,
		     ret == 1 ? "not its class" : strerror(-ret));
		return;
	}
	pr->py.route_attr = r;
	if (procs_reconfigure(p, pr)) {
		pr->py.route_attr.mode = PY_ATTR_NONE;
		return;	/* it left meanwhile */
	}
	tlog(p, "pid %d: the walker reads %s's %s itself\n", pr->pid, rf->cls, rf->app_attr);
}

/*
 * Database drivers' frames that hold the text of the statement they send, for an Execute that
 * names a statement prepared before tracing (struct pt_proc's text_code): a local of the
 * frame, or a __slots__ member of that local's object (its class in member_module). A process
 * takes up to PT_TEXT_CODES frames of one driver (the first found names it); the walker takes
 * the innermost of them on a statement's stack.
 */
struct text_frame {
	const char *driver, *module, *cls, *method, *var;
	const char *member_module, *member_cls, *member;
	bool bytes;	/* the text is a bytes object, else a str */
};

/* psycopg 3 (3.1: cursor.py; 3.2+: _cursor_base.py): BaseCursor's generator method's pgq */
#define PSYCOPG3_FRAME(module, method) \
	{ "psycopg 3", module, "BaseCursor", method, "pgq", "psycopg._queries", "PostgresQuery", "query", true }

static const struct text_frame text_frames[] = {
	/* asyncpg: fetch*, execute with arguments, executemany: the query str, the statement
	 * cache's key (alive while the statement is cached) */
	{ "asyncpg", "asyncpg.connection", "Connection", "_do_execute", "query", NULL, NULL, NULL, false },
	/* and a statement the app prepared (conn.prepare()): every run of the PreparedStatement
	 * goes through its __do_execute, whose self keeps the text in its slot _query */
	{ "asyncpg", "asyncpg.prepared_stmt", "PreparedStatement", "_PreparedStatement__do_execute", "self",
	  "asyncpg.prepared_stmt", "PreparedStatement", "_query", false },
	/*
	 * psycopg 3: the PostgresQuery it executes, whose query is the bytes it prepared (also the
	 * prepared-statement cache's key). Outside a pipeline the statement is written from
	 * _maybe_prepare_gen; in one (and executemany, which uses one where libpq has them), from
	 * the pipeline's _communicate_gen, called by _execute_gen or _executemany_gen_pipeline after
	 * _maybe_prepare_gen has returned: their pgq is the same statement's.
	 */
	PSYCOPG3_FRAME("psycopg.cursor", "_maybe_prepare_gen"),
	PSYCOPG3_FRAME("psycopg.cursor", "_execute_gen"),
	PSYCOPG3_FRAME("psycopg.cursor", "_executemany_gen_pipeline"),
	PSYCOPG3_FRAME("psycopg._cursor_base", "_maybe_prepare_gen"),
	PSYCOPG3_FRAME("psycopg._cursor_base", "_execute_gen"),
	PSYCOPG3_FRAME("psycopg._cursor_base", "_executemany_gen_pipeline"),
	/* pg8000 up to 1.1x (Debian 12's 1.10), whose statements are all named: the converted
	 * text, held by its statement cache */
	{ "pg8000", "pg8000.core", "Connection", "execute", "statement", NULL, NULL, NULL, false },
};

#define TEXT_WANT_NS (5 * 1000000000ULL)

void procs__want_text(struct procs *p, uint32_t pid, uint64_t now)
{
	struct proc *pr = procs__get(p, pid, false);

	if (!pr || pr->state != PROC_PYTHON || !pr->live || pr->py.free_threaded)
		return;
	if (pr->py.text_asks >= PROCS_TEXT_ASKS_MAX + 4 * pr->py.text_taken) {
		if (pr->py.text_asks++ == PROCS_TEXT_ASKS_MAX + 4 * pr->py.text_taken) {
			p->st.texts_given_up++;
			vlog("pid %d: its drivers' texts fail to be taken: not copied any more\n", pr->pid);
		}
		return;	/* the window left to expire */
	}
	pr->py.text_asks++;
	pr->py.text_want_until = now + TEXT_WANT_NS;
	if (pr->py.want_text)
		return;
	pr->py.want_text = true;
	if (pr->py.text_code[0]) {
		if (procs_reconfigure(p, pr))
			pr->py.want_text = false;
		else
			vlog("pid %d: statements prepared before tracing: their texts read from its driver\n", pr->pid);
		return;
	}
	/* its driver's frame looked for now: the statements sent meanwhile would keep their names */
	pr->pool_next_ns = 0;
	pr->pool_gap_ns = 0;
	pr->mods_none = false;
	procs_find_frames(p, pr, now);
}

void procs__text_taken(struct procs *p, uint32_t pid)
{
	struct proc *pr = procs__get(p, pid, false);

	if (pr)
		pr->py.text_taken++;
}

/* Texts no longer wanted (procs__want_text) after TEXT_WANT_NS without a nameless Execute. */
static void text_expire(struct procs *p, struct proc *pr, uint64_t now)
{
	if (!pr->py.want_text || now < pr->py.text_want_until)
		return;
	pr->py.want_text = false;
	if (pr->py.text_code[0] && procs_reconfigure(p, pr))
		return;	/* it left meanwhile */
}

static void text_frame_found(struct procs *p, struct proc *pr, const struct mem_reader *r, uint64_t code,
			     const struct text_frame *tf, uint64_t member_md)
{
	const struct py_layout *l = &pr->py.layout;
	uint32_t off = 0;
	uint64_t cls = 0;
	int i, k, ret = 0;

	for (k = 0; k < PT_TEXT_CODES && pr->py.text_code[k] && pr->py.text_code[k] != code; k++)
		;
	if (code == pr->py.text_rejected || k == PT_TEXT_CODES || pr->py.text_code[k] ||
	    (k && strcmp(pr->py.text_driver, tf->driver)))
		return;	/* rejected, no room, known, or another driver's (one per process) */
	i = local_index(l, r, code, tf->var);
	if (i >= 0 && tf->member) {
		ret = member_md ? pythreads__dict_get(l, r, member_md, tf->member_cls, &cls) : -ENOENT;
		ret = ret ?: pythreads__member_offset(l, r, cls, tf->member, &off);
	}
	if (i < 0 || ret) {
		pr->py.text_rejected = code;
		vlog("pid %d: %s.%s.%s: no local %s%s%s: statements prepared before tracing keep their names\n",
		     pr->pid, tf->module, tf->cls, tf->method, tf->var, tf->member ? " with a slot " : "",
		     tf->member ? tf->member : "");
		return;
	}
	pr->py.text_code[k] = code;
	pr->py.text_local[k] = (uint32_t)i;
	pr->py.text_driver = tf->driver;
	pr->py.text_member[k] = off;
	pr->py.text_bytes = tf->bytes;
	if (procs_reconfigure(p, pr)) {
		pr->py.text_code[k] = 0;
		return;	/* it left meanwhile */
	}
	tlog(p, "pid %d: texts of statements prepared before tracing are read from %s.%s.%s\n", pr->pid, tf->module,
	     tf->cls, tf->method);
}

static const struct scope_frame scope_frames[] = {
	{ "starlette.middleware.base", "BaseHTTPMiddleware", "__call__", { "call_next", "coro" }, "scope" },
};

/* Starlette's StreamingResponse: __call__ streams from a child task running its nested wrap() */
static const struct scope_frame stream_writer = {
	"starlette.responses", "StreamingResponse", "__call__", { "wrap", NULL }, NULL
};

/*
 * uvicorn's two HTTP/1.1 protocols (one RequestResponseCycle per request) and hypercorn's (one
 * HTTPStream per request), each holding its request's scope. A process runs one server: at most
 * two of these are found in it (struct pt_proc's send_code).
 */
static const struct server_send server_sends[] = {
	{ "uvicorn.protocols.http.h11_impl", "RequestResponseCycle", "send", "self", "scope" },
	{ "uvicorn.protocols.http.httptools_impl", "RequestResponseCycle", "send", "self", "scope" },
	{ "hypercorn.protocol.http_stream", "HTTPStream", "app_send", "self", "scope" },
};

int procs__server_scope(struct procs *p, struct proc *pr, uint64_t obj, uint64_t *key)
{
	struct mem_reader mr;
	uint64_t scope = 0;
	int ret;

	if (pr->state != PROC_PYTHON || !pr->live || !pr->py.send_code[0])
		return -ENOENT;
	procmem__reader(&mr, pr->pid);
	if (!pr->py.scope_attr.mode && pr->py.scope_attr_tries < 8) {
		/*
		 * Where the class keeps it, so that the walker reads it itself: worked out from the
		 * first objects, which may be gone (or another's) by now: the recipe is checked
		 * against a read by key
		 */
		struct py_attr_recipe r;

		pr->py.scope_attr_tries++;
		ret = pythreads__attr_recipe(&pr->py.layout, &mr, obj, server_sends[0].attr, &r);
		if (!ret) {
			pr->py.scope_attr = r;
			if (!procs_reconfigure(p, pr))
				tlog(p, "pid %d: the walker reads the server's request scope itself\n", pr->pid);
		}
	}
	ret = pythreads__attr(&pr->py.layout, &mr, obj, server_sends[0].attr, &scope);
	if (ret)
		return ret;
	if (!scope || (scope & 7))
		return -EINVAL;
	*key = scope | PT_TASK_SCOPE;
	return 0;
}

int procs__scope_route(struct procs *p, struct proc *pr, uint64_t scope, uint64_t *route)
{
	struct mem_reader mr;
	uint64_t key;
	uint32_t off;
	int ret;

	if (pr->state != PROC_PYTHON || !pr->live || (pr->py.scope_route_misses >= 8 && !pr->py.scope_route_off))
		return -ENOENT;
	procmem__reader(&mr, pr->pid);
	ret = pythreads__dict_entry(&pr->py.layout, &mr, scope, "route", &off, &key, route);
	if (ret == -ENOENT)
		pr->py.scope_route_misses++;
	if (ret || !*route)
		return ret ?: -ENOENT;
	if (!pr->py.scope_route_off && pr->py.scope_attr.mode) {
		pr->py.scope_route_off = off;
		pr->py.scope_route_key = key;
		if (!procs_reconfigure(p, pr))
			tlog(p, "pid %d: the walker reads FastAPI's route from the request's scope itself\n", pr->pid);
	}
	return 0;
}

static int scope_child(const struct py_target *t, const struct mem_reader *mr, uint64_t code,
		       const struct scope_frame *sf, uint64_t *child);

/* The streaming writer's code and the server's send (struct pt_proc's writer_code, send_code). */
static void find_writer(struct proc *pr, const struct mem_reader *mr)
{
	const struct scope_frame *sf = &stream_writer;
	uint64_t code, writer;
	unsigned n = 0;
	size_t i;
	int self, self0 = -1;

	if (pythreads__method_code(&pr->py.layout, mr, pr->py.runtime, sf->module, sf->cls, sf->method, &code) ||
	    scope_child(&pr->py, mr, code, sf, &writer))
		return;
	/* both protocols' modules may be imported (uvicorn's auto imports h11's first): each send */
	for (i = 0; i < sizeof(server_sends) / sizeof(server_sends[0]) && n < 2; i++) {
		const struct server_send *ss = &server_sends[i];

		int err = pythreads__method_code(&pr->py.layout, mr, pr->py.runtime, ss->module, ss->cls, ss->method, &code);

		if (err) {
			vlog("pid %d: no %s.%s.%s: %s\n", pr->pid, ss->module, ss->cls, ss->method, strerror(-err));
			continue;
		}
		self = local_index(&pr->py.layout, mr, code, ss->self);
		if (self < 0 || (n && self != self0))
			continue;
		self0 = self;
		pr->py.send_code[n++] = code;
	}
	if (!n)
		return;
	pr->py.writer_code = writer;
	pr->py.send_local = (uint32_t)self0;
}

/*
 * The child task's code inside the frame's (code): its nested functions, each defined in the one
 * before. 0 or -ENOENT.
 */
static int scope_child(const struct py_target *t, const struct mem_reader *mr, uint64_t code,
		       const struct scope_frame *sf, uint64_t *child)
{
	for (size_t i = 0; i < sizeof(sf->nested) / sizeof(sf->nested[0]) && sf->nested[i]; i++)
		if (pythreads__nested_code(&t->layout, mr, t->pycode_type, code, sf->nested[i], &code))
			return -ENOENT;
	*child = code;
	return 0;
}

static void scope_frame_found(struct procs *p, struct proc *pr, const struct mem_reader *mr, uint64_t code,
			      const struct scope_frame *sf)
{
	const struct py_layout *l = &pr->py.layout;
	uint64_t child = 0;
	int cell, child_cell = -1;

	if (pr->py.scope_rejected == code)
		return;
	cell = pythreads__cell_index(l, mr, code, sf->var);
	if (cell >= 0 && !scope_child(&pr->py, mr, code, sf, &child))
		child_cell = pythreads__cell_index(l, mr, child, sf->var);
	if (child_cell < 0) {
		pr->py.scope_rejected = code;
		vlog("pid %d: %s.%s's child task holds no cell %s: its endpoints' statements are not given to "
		     "their requests\n", pr->pid, sf->cls, sf->method, sf->var);
		return;
	}
	pr->py.scope_code = code;
	pr->py.scope_child_code = child;
	pr->py.scope_cell = (uint32_t)cell;
	pr->py.scope_child_cell = (uint32_t)child_cell;
	find_writer(pr, mr);
	if (procs_reconfigure(p, pr)) {
		pr->py.scope_code = 0;
		pr->py.scope_rejected = code;
		return;	/* it left meanwhile */
	}
	p->st.scope_frames++;
	tlog(p, "pid %d: the tasks of %s.%s go by the request's scope%s\n", pr->pid, sf->module, sf->cls,
	     pr->py.send_code[0] ? ", and its streamed responses by the server's" : "");
}

/*
 * A StreamingResponse's writer (wrap, nested in its __call__) and its cell of the task group,
 * whose host task awaits the response (struct pt_proc's host_cell): a plain StreamingResponse's
 * request's own task.
 */
static void find_host_writer(struct procs *p, struct proc *pr, const struct mem_reader *mr, uint64_t md)
{
	const struct scope_frame *sf = &stream_writer;
	uint64_t code, writer;
	int cell;

	if (pr->py.host_cell || pythreads__method_code_in(&pr->py.layout, mr, md, sf->cls, sf->method, &code) ||
	    pr->py.host_rejected == code || scope_child(&pr->py, mr, code, sf, &writer))
		return;
	cell = pythreads__cell_index(&pr->py.layout, mr, writer, "task_group");
	if (cell <= 0) {
		/* 0 would be the frame's first local: wrap's argument, not a free variable */
		pr->py.host_rejected = code;
		vlog("pid %d: StreamingResponse's writer holds no cell task_group: statements of streamed "
		     "responses' requests are not given to them\n", pr->pid);
		return;
	}
	pr->py.writer_code = writer;	/* find_writer's too, where it found the middleware */
	pr->py.host_cell = (uint32_t)cell;
	if (procs_reconfigure(p, pr)) {
		pr->py.host_cell = 0;
		return;	/* it left meanwhile */
	}
	p->st.stream_hosts++;
	tlog(p, "pid %d: streamed responses take their request's task's statements (their task group's host)\n",
	     pr->pid);
}

/*
 * Where anyio's TaskGroup keeps cancel_scope and CancelScope _host_task, from the classes
 * (anyio._backends._asyncio's): once an instance of each has set them, whatever instance is in
 * reach. 0 or -errno.
 */
static int host_type_recipes(const struct proc *pr, const struct mem_reader *mr, struct py_attr_recipe *r)
{
	const struct py_layout *l = &pr->py.layout;
	uint64_t md, tg, cs;
	int ret = pythreads__module_dict(l, mr, pr->py.runtime, "anyio._backends._asyncio", &md);

	ret = ret ?: pythreads__dict_get(l, mr, md, "TaskGroup", &tg);
	ret = ret ?: pythreads__dict_get(l, mr, md, "CancelScope", &cs);
	ret = ret ?: pythreads__type_attr_recipe(l, mr, tg, "cancel_scope", &r[0]);
	return ret ?: pythreads__type_attr_recipe(l, mr, cs, "_host_task", &r[1]);
}

int procs__host_recipes(struct procs *p, struct proc *pr, uint64_t obj)
{
	struct py_attr_recipe r[2];
	struct mem_reader mr;
	uint64_t cs;
	int ret;

	if (pr->state != PROC_PYTHON || !pr->live || !pr->py.host_cell)
		return -ENOENT;
	if (pr->py.host_attr[0].mode && pr->py.host_attr[1].mode)
		return 0;
	if (pr->py.host_attr_tries >= 8)
		return -EAGAIN;
	pr->py.host_attr_tries++;
	procmem__reader(&mr, pr->pid);
	/*
	 * From the classes: the instance given may be gone by now (a short stream's), but its
	 * class's keys hold its attributes since; else from the instance, checked by key
	 */
	ret = host_type_recipes(pr, &mr, r);
	if (ret) {
		ret = pythreads__attr_recipe(&pr->py.layout, &mr, obj, "cancel_scope", &r[0]);
		ret = ret ?: pythreads__attr(&pr->py.layout, &mr, obj, "cancel_scope", &cs);
		ret = ret ?: pythreads__attr_recipe(&pr->py.layout, &mr, cs, "_host_task", &r[1]);
	}
	if (ret)
		return ret;
	pr->py.host_attr[0] = r[0];
	pr->py.host_attr[1] = r[1];
	ret = procs_reconfigure(p, pr);
	if (ret) {
		memset(pr->py.host_attr, 0, sizeof(pr->py.host_attr));
		return ret;
	}
	tlog(p, "pid %d: the walker reads a streamed response's request task itself\n", pr->pid);
	return 0;
}

/* The modules procs_find_frames looks in, each once, and their __dicts__ (0: not imported). */
struct wanted {
	const char *names[PYTHREADS_MAX_MODULES];
	uint64_t mds[PYTHREADS_MAX_MODULES];
	unsigned n;
};

static void want(struct wanted *w, const char *module)
{
	for (unsigned i = 0; i < w->n; i++)
		if (!strcmp(w->names[i], module))
			return;
	if (w->n < PYTHREADS_MAX_MODULES)
		w->names[w->n++] = module;
}

/* module's __dict__ as found, or 0 */
static uint64_t wanted_md(const struct wanted *w, const char *module)
{
	for (unsigned i = 0; i < w->n; i++)
		if (!strcmp(w->names[i], module))
			return w->mds[i];
	return 0;
}

/*
 * The task a thread runs, read directly (struct pt_proc's run_tasks, ts_run_task). 3.11-3.13: the
 * _asyncio module's running tasks, {loop: task}: asyncio.tasks._current_tasks is that dict (the C
 * module's, or the pure-Python fallback's, kept the same way). 3.14+ keep each thread's in its
 * thread state, where the _asyncio module's .AsyncioDebug section says (found once asyncio.tasks
 * is imported: _asyncio is then too). 3.8-3.10 have no data-stack window for the walker's check
 * that a task runs on the walking thread (pt_task_here): not there; nor on free-threaded builds.
 */
#define RUN_TASKS_MODULE "asyncio.tasks"

static bool want_run_tasks(const struct proc *pr)
{
	if (pr->py.major != 3 || pr->py.minor < 11 || pr->py.free_threaded)
		return false;
	if (pr->py.minor >= 14)
		return !pr->py.no_run_task;
	return pr->py.layout.dk_log2;
}

static bool run_tasks_known(const struct proc *pr)
{
	return pr->py.run_tasks || pr->py.ts_run_task;
}

static void find_run_tasks(struct procs *p, struct proc *pr, const struct mem_reader *r, uint64_t md)
{
	uint64_t d = 0;
	int ret;

	if (pr->py.minor >= 14) {
		ret = py_target__find_running_task(&pr->py);
		if (ret == -EAGAIN)
			return;	/* asyncio.tasks imported, _asyncio not mapped: not seen so far */
		if (ret) {
			pr->py.no_run_task = true;
			vlog("pid %d: no offsets of asyncio's running task (%s): event-loop statements' stacks are walked whole\n",
			     pr->pid, strerror(-ret));
			return;
		}
		if (procs_reconfigure(p, pr)) {
			pr->py.ts_run_task = 0;
			return;
		}
		p->st.run_tasks++;
		tlog(p, "pid %d: its asyncio tasks are read from its threads' states (offset %u, .AsyncioDebug)\n",
		     pr->pid, pr->py.ts_run_task);
		return;
	}
	if (pythreads__dict_get(&pr->py.layout, r, md, "_current_tasks", &d) || !d || (d & 7))
		return;
	pr->py.run_tasks = d;
	if (procs_reconfigure(p, pr)) {
		pr->py.run_tasks = 0;
		return;	/* it left meanwhile */
	}
	p->st.run_tasks++;
	tlog(p, "pid %d: its asyncio tasks are read from asyncio.tasks._current_tasks\n", pr->pid);
}

static bool want_route_frame(const struct proc *pr, const struct route_frame *rf)
{
	return rf->app != ROUTE_APP_WSGI_WORKER || pr->py.want_wsgi_app;
}

void procs_find_frames(struct procs *p, struct proc *pr, uint64_t now)
{
	const struct py_layout *l = &pr->py.layout;
	struct wanted w = { .n = 0 };
	const struct mem_reader *r;
	struct memcache mc;
	struct mem_reader mr;
	uint64_t code, md;
	bool changed, need_text;
	size_t i;
	int found;

	if (pr->state == PROC_PYTHON)
		text_expire(p, pr, now);
	need_text = pr->py.want_text && !pr->py.text_code[0];
	if (pr->state != PROC_PYTHON || !pr->live ||
	    (pr->py.proxy_code && pr->py.route_code && pr->py.scope_code && pr->py.host_cell &&
	     (run_tasks_known(pr) || !want_run_tasks(pr)) && !need_text) ||
	    now < pr->pool_next_ns)
		return;
	pr->pool_gap_ns = pr->pool_gap_ns ? pr->pool_gap_ns * 2 : POOL_GAP_MIN_NS;
	if (pr->pool_gap_ns > POOL_GAP_MAX_NS)
		pr->pool_gap_ns = POOL_GAP_MAX_NS;
	pr->pool_next_ns = now + pr->pool_gap_ns;
	procmem__reader(&mr, pr->pid);
	procs_learn_hash(p, pr, &mr);
	changed = pythreads__modules_changed(l, &mr, pr->py.runtime, &pr->mods_stamp);
	if (pr->mods_none && !changed)
		return;	/* none of them then, no import since */

	for (i = 0; i < sizeof(pool_frames) / sizeof(pool_frames[0]) && !pr->py.proxy_code; i++)
		want(&w, pool_frames[i].module);
	for (i = 0; i < routes__nframes && !pr->py.route_code; i++)
		if (want_route_frame(pr, &routes__frames[i]))
			want(&w, routes__frames[i].module);
	for (i = 0; i < sizeof(scope_frames) / sizeof(scope_frames[0]) && !pr->py.scope_code; i++)
		want(&w, scope_frames[i].module);
	if (!pr->py.host_cell)
		want(&w, stream_writer.module);
	if (!run_tasks_known(pr) && want_run_tasks(pr))
		want(&w, RUN_TASKS_MODULE);
	for (i = 0; i < sizeof(text_frames) / sizeof(text_frames[0]) && need_text; i++) {
		want(&w, text_frames[i].module);
		if (text_frames[i].member_module)
			want(&w, text_frames[i].member_module);
	}

	r = memcache__init(&mc, &mr) ? &mr : &mc.mr;
	found = pythreads__module_dicts(l, r, pr->py.runtime, w.names, w.mds, w.n);
	pr->mods_none = found == 0;
	if (found <= 0)
		goto out;
	for (i = 0; i < sizeof(pool_frames) / sizeof(pool_frames[0]) && !pr->py.proxy_code; i++) {
		const struct pool_frame *pf = &pool_frames[i];

		md = wanted_md(&w, pf->module);
		if (md && !pythreads__method_code_in(l, r, md, pf->cls, pf->method, &code))
			procs__thread_pool_frame(p, pr, code, pf);
	}
	for (i = 0; i < routes__nframes && !pr->py.route_code; i++) {
		const struct route_frame *rf = &routes__frames[i];

		md = want_route_frame(pr, rf) ? wanted_md(&w, rf->module) : 0;
		if (md && !pythreads__method_code_in(l, r, md, rf->cls, rf->method, &code))
			procs__route_frame(p, pr, code, rf);
	}
	for (i = 0; i < sizeof(scope_frames) / sizeof(scope_frames[0]) && !pr->py.scope_code; i++) {
		const struct scope_frame *sf = &scope_frames[i];

		md = wanted_md(&w, sf->module);
		if (md && !pythreads__method_code_in(l, r, md, sf->cls, sf->method, &code))
			scope_frame_found(p, pr, r, code, sf);
	}
	md = wanted_md(&w, stream_writer.module);
	if (md)
		find_host_writer(p, pr, r, md);
	md = !run_tasks_known(pr) && want_run_tasks(pr) ? wanted_md(&w, RUN_TASKS_MODULE) : 0;
	if (md)
		find_run_tasks(p, pr, r, md);
	for (i = 0; i < sizeof(text_frames) / sizeof(text_frames[0]) && need_text; i++) {
		const struct text_frame *tf = &text_frames[i];

		md = wanted_md(&w, tf->module);
		if (md && !pythreads__method_code_in(l, r, md, tf->cls, tf->method, &code))
			text_frame_found(p, pr, r, code, tf, tf->member_module ? wanted_md(&w, tf->member_module) : 0);
	}
out:
	if (r != &mr)
		memcache__fini(&mc);
}

