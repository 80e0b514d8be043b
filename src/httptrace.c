// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "http.h"
#include "http.skel.h"
#include "httptrace.h"
#include "djapps.h"
#include "hash.h"
#include "httpparse.h"
#include "jsonw.h"
#include "links.h"
#include "pidsweep.h"
#include "procmem.h"
#include "pythreads.h"
#include "symbolize.h"
#include "pytrace_user.h"
#include "routes.h"
#include "session.h"
#include "sockpeer.h"
#include "tracefs.h"
#include "uprobe.h"
#include "util.h"
#include "uvwrite.h"

/*
 * Route objects whose templates were read (routes.h), by (pid, address): direct-mapped, a new
 * one takes its slot's place. They are the apps' own, alive as long as the app: one read each.
 */
#define ROUTE_SLOTS 256
#define HTTP_ADOPT_MAX 8192	/* connections from before tracing followed, per process */

struct route_slot {
	uint32_t pid;
	uint64_t obj;			/* 0: empty */
	int err;			/* 0, or why it has no template (read again after ROUTE_RETRY_NS) */
	uint64_t err_ns;
	bool multi;
	char tmpl[HTTP_ROUTE_MAX];
};

#define ROUTE_RETRY_NS (10 * 1000000000ULL)

struct httptrace {
	struct session *session;
	struct httptrace_opts o;
	struct http_bpf *skel;
	struct requests *req;
	struct pidsweep gone;	/* exited processes whose connections leave the conns map */
	bool per_syscall;	/* per-syscall tracepoints; else raw syscall tracepoints */
	struct route_slot routes[ROUTE_SLOTS];
	struct djapps *patterns;	/* Django's URL patterns, Flask's rules, per process */
	uint64_t route_reads, route_errors;
	uint64_t scope_reads, scope_errors;	/* server_scope() */
	uint64_t host_reads, host_errors;	/* host_recipes() */
	uint64_t scope_route_reads, scope_route_errors;	/* scope_route() */
	uint64_t self_start;		/* our start, in clock ticks since boot (/proc/self/stat) */
	uint64_t adopted, adopt_failed;	/* connections accepted before tracing, followed from then */
	uint64_t not_python;		/* host-wide: events of processes not running Python (procs__ours) */
	int uv_slot;		/* its program's slot in the session's uvloop probe (uvwrite.h) */
	struct bpf_link *exit_links[11];	/* tp_exit_socket on each of exit_syscalls */
};

/* The syscalls whose return the one per-syscall program follows (bpf/http.bpf.c's tp_exit_socket). */
static const char *const exit_syscalls[] = {
	"sys_exit_accept", "sys_exit_accept4", "sys_exit_read", "sys_exit_recvfrom", "sys_exit_readv",
	"sys_exit_recvmsg", "sys_exit_write", "sys_exit_sendto", "sys_exit_writev", "sys_exit_sendmsg",
	"sys_exit_sendfile64",
};

_Static_assert(sizeof(exit_syscalls) / sizeof(exit_syscalls[0]) ==
	       sizeof(((struct httptrace *)0)->exit_links) / sizeof(struct bpf_link *), "one link per syscall");

/* The skeleton's programs (close's entry, or the raw ones), then tp_exit_socket on each syscall's return. */
static int attach(struct httptrace *h)
{
	int ret = http_bpf__attach(h->skel);

	for (size_t i = 0; !ret && h->per_syscall && i < ARRAY_SIZE(exit_syscalls); i++) {
		h->exit_links[i] = bpf_program__attach_tracepoint(h->skel->progs.tp_exit_socket, "syscalls",
								  exit_syscalls[i]);
		if (!h->exit_links[i])
			ret = -errno;
	}
	if (ret) {
		links__destroy(h->exit_links, ARRAY_SIZE(h->exit_links));
		links__detach_skeleton(h->skel->skeleton);
	}
	return ret;
}

/* Open and load the object with one set of programs: per-syscall ("tp_") or raw ("http_sys_"). */
static int open_load(struct httptrace *h, char *err, size_t errlen)
{
	struct bpf_program *prog;
	int ret;

	http_bpf__destroy(h->skel);
	h->skel = http_bpf__open();
	if (!h->skel) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the HTTP BPF object: %s", strerror(errno));
		return ret;
	}
	bpf_object__for_each_program(prog, h->skel->obj) {
		const char *name = bpf_program__name(prog);

		if (!strncmp(name, "tp_", 3))
			bpf_program__set_autoload(prog, h->per_syscall);
		else if (!strncmp(name, "http_sys_", 9))
			bpf_program__set_autoload(prog, !h->per_syscall);
	}
	/* loaded by uvwrite in an instance of its own, at the first process that imports uvloop */
	bpf_program__set_autoload(h->skel->progs.uvloop_write, false);
	ret = session_maps__reuse(session__maps(h->session), h->skel->obj, err, errlen);
	if (ret)
		return ret;
	ret = http_bpf__load(h->skel);
	if (ret)
		snprintf(err, errlen, "cannot load the HTTP BPF programs: %s", strerror(-ret));
	return ret;
}

static uint64_t conn_last_write(void *ctx, uint32_t pid, int32_t fd)
{
	struct httptrace *h = ctx;
	struct http_conn_key k = { .pid = pid, .fd = fd };
	struct http_conn c;

	if (bpf_map_lookup_elem(bpf_map__fd(h->skel->maps.conns), &k, &c))
		return 0;
	return c.last_write_ts;
}

static void httptrace_free(void *c);
static uint64_t start_ticks(const char *pid);

static bool pattern_route(void *ctx, uint32_t pid, const char *method, const char *target, char *out, size_t size)
{
	struct httptrace *h = ctx;

	return djapps__route(h->patterns, session__procs(h->session), pid, method, target, out, size);
}

/* pid's family (struct proc.family): uWSGI's router is its workers' (requests.h, "Relays"). */
static uint32_t proc_family(void *ctx, uint32_t pid)
{
	struct httptrace *h = ctx;
	const struct proc *pr = procs__get(session__procs(h->session), pid, false);

	return pr && pr->state == PROC_PYTHON ? pr->family : 0;
}

static void *httptrace_open(struct session *ss, const struct session_opts *so, char *err, size_t errlen)
{
	struct httptrace *h;
	struct requests_opts o = so->http.req;
	const void *elf;
	size_t elf_size;
	int ret;

	if (!so->http.enabled)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->session = ss;
	h->o = so->http;
	h->self_start = start_ticks("self");
	o.last_write = conn_last_write;
	o.route_of = pattern_route;
	o.family_of = proc_family;
	o.ctx = h;
	h->patterns = djapps__new();
	h->req = h->patterns ? requests__new(&o) : NULL;
	if (!h->req) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	h->per_syscall = !h->o.raw_hook && tracefs__syscall_events();
	ret = open_load(h, err, errlen);
	if (ret && h->per_syscall) {
		vlog("HTTP: %s with per-syscall tracepoints; trying raw syscall tracepoints\n", err);
		h->per_syscall = false;
		ret = open_load(h, err, errlen);
	}
	if (ret)
		goto fail;
	elf = http_bpf__elf_bytes(&elf_size);
	h->uv_slot = uvwrite__prog(session__uvwrite(ss), &(struct uvwrite_prog){
		.elf = elf, .elf_size = elf_size, .obj_name = "http_bpf",
		.prog_name = "uvloop_write", .obj = h->skel->obj });
	if (h->uv_slot < 0) {
		snprintf(err, errlen, "cannot add the uvloop probe");
		goto fail;
	}
	return h;
fail:
	httptrace_free(h);
	return NULL;
}

static int httptrace_attach(void *c, char *err, size_t errlen)
{
	struct httptrace *h = c;
	int ret = attach(h);

	if (ret && h->per_syscall) {
		vlog("HTTP: cannot attach the per-syscall tracepoints (%s); trying raw syscall tracepoints\n",
		     strerror(-ret));
		h->per_syscall = false;
		ret = open_load(h, err, errlen);
		if (ret)
			return ret;
		uvwrite__set_obj(session__uvwrite(h->session), h->uv_slot, h->skel->obj);
		ret = attach(h);
	}
	if (ret)
		snprintf(err, errlen, "cannot attach the syscall tracepoints: %s", strerror(-ret));
	else
		vlog("HTTP: requests from %s\n", h->per_syscall ? "per-syscall tracepoints" : "raw syscall tracepoints");
	return ret;
}

/* The template of route object obj of pid (routes.h), or NULL (with *multi) if none can be read. */
static const char *route_template(struct httptrace *h, uint32_t pid, uint64_t obj, bool *multi)
{
	struct route_slot *rs = &h->routes[(hash64_mix(obj ^ pid)) % ROUTE_SLOTS];
	struct proc *pr;
	struct mem_reader mr;

	if (!obj)
		return NULL;
	if (rs->obj != obj || rs->pid != pid || (rs->err && mono_ns() - rs->err_ns > ROUTE_RETRY_NS)) {
		pr = procs__get(session__procs(h->session), pid, false);
		if (!pr || pr->state != PROC_PYTHON || !pr->live)
			return NULL;
		rs->pid = pid;
		rs->obj = obj;
		procmem__reader(&mr, pid);
		h->route_reads++;
		rs->err = routes__read(&pr->py.layout, &mr, &routes__frames[pr->py.route_frame], obj, rs->tmpl,
				       sizeof(rs->tmpl), &rs->multi);
		if (rs->err) {
			h->route_errors++;
			rs->err_ns = mono_ns();
			vlog("pid %u: the route at 0x%llx has no template: %s\n", pid, (unsigned long long)obj,
			     strerror(-rs->err));
		}
	}
	*multi = rs->multi;
	return rs->err ? NULL : rs->tmpl;
}

/*
 * A response streamed by a child task of its request's (struct pt_proc's writer_code): its task
 * is the request's scope, read from the server's object for the request now, while the response
 * is being written. The object outlives it only if its request is still served: else its memory
 * may hold a later request's object, whose scope no statement sent before this response has.
 */
static void server_scope(struct httptrace *h, uint32_t pid, uint64_t obj, uint64_t *task)
{
	struct procs *ps = session__procs(h->session);
	struct proc *pr = procs__get(ps, pid, false);
	uint64_t key;
	int err;

	h->scope_reads++;
	err = pr ? procs__server_scope(ps, pr, obj, &key) : -ESRCH;
	if (err) {
		h->scope_errors++;
		vlog("pid %u: no scope in the server's object at 0x%llx: %s\n", pid, (unsigned long long)obj,
		     strerror(-err));
		return;
	}
	*task = key;
}

/*
 * A streamed response's writer gave its task group (PT_HOST_TASK_GROUP) where the walker does
 * not read its host task yet: the walkers learn to (procs__host_recipes). This response keeps
 * no host task: its task group may be another's by now.
 */
static void host_recipes(struct httptrace *h, uint32_t pid, uint64_t tg)
{
	struct procs *ps = session__procs(h->session);
	struct proc *pr = procs__get(ps, pid, false);
	int err = pr ? procs__host_recipes(ps, pr, tg) : -ESRCH;

	h->host_reads++;
	if (err) {
		h->host_errors++;
		vlog("pid %u: no host task in the task group at 0x%llx: %s\n", pid, (unsigned long long)tg,
		     strerror(-err));
	}
}

/*
 * A Starlette app made by a factory (no module global holds it): the app of a request's ASGI
 * scope (scope["app"], Starlette.__call__'s), read now; the scope may be another's or gone by
 * then: its app is checked to be one (starroutes__read_app), else a later response's is tried.
 */
static void scope_app(struct httptrace *h, uint32_t pid, uint64_t scope)
{
	struct proc *pr = procs__get(session__procs(h->session), pid, false);
	struct mem_reader mr;
	uint64_t app;

	if (!pr || pr->state != PROC_PYTHON || !pr->live)
		return;
	procmem__reader(&mr, pid);
	if (!pythreads__dict_get(&pr->py.layout, &mr, scope, "app", &app) && app && !(app & 7))
		djapps__app(h->patterns, pid, app, ROUTE_APP_STARLETTE);
}

/*
 * FastAPI's route, from the request's ASGI scope (a scope key: PT_TASK_SCOPE): APIRoute.matches
 * puts the route in scope["route"] (FastAPI 0.6x-0.11x; Starlette's own routes do not), which
 * behind BaseHTTPMiddleware is the only way to it (the writer's stack has no Route.handle). The
 * scope is read now, after the response began: its memory may hold a later request's scope by
 * then, so its "path" goes with the template (requests__resp_route_for checks it).
 */
static const char *scope_route(struct httptrace *h, uint32_t pid, uint64_t scope, bool *multi, char *path,
			       size_t size)
{
	struct proc *pr = procs__get(session__procs(h->session), pid, false);
	struct mem_reader mr;
	uint64_t route, p;
	int err;

	if (!pr || pr->state != PROC_PYTHON || !pr->live)
		return NULL;
	procmem__reader(&mr, pid);
	h->scope_route_reads++;
	err = procs__scope_route(session__procs(h->session), pr, scope, &route);
	err = err ?: pythreads__dict_get(&pr->py.layout, &mr, scope, "path", &p);
	if (!err && py_read_str(&pr->py.layout, &mr, p, path, size) < 0)
		err = -EINVAL;
	if (err) {
		if (err != -ENOENT)
			h->scope_route_errors++;
		return NULL;
	}
	return route_template(h, pid, route, multi);
}

static void httptrace_event(void *c, const void *data, size_t size)
{
	struct httptrace *h = c;
	const struct http_event *e = data;
	size_t at = offsetof(struct http_event, data);

	if (size < at || size < at + e->data_len || e->data_len > HTTP_PREFIX_MAX)
		return;
	/* before any connection of the pid is touched: a verdict of "not Python" forgets them */
	if (!procs__ours(session__procs(h->session), e->hdr.pid)) {
		h->not_python++;
		return;
	}
	switch (e->hdr.type) {
	case PT_EV_HTTP_REQ:
		requests__req(h->req, e->hdr.pid, e->tid, e->fd, e->ts, e->last_write_ts,
			      e->flags & HTTP_EF_MAYBE, e->data, e->data_len, e->len);
		break;
	case PT_EV_HTTP_DATA:
		requests__data(h->req, e->hdr.pid, e->tid, e->fd, e->ts, e->data, e->data_len, e->len);
		break;
	case PT_EV_HTTP_RESP: {
		bool multi = false;
		const char *tmpl = NULL;
		struct proc *pr = e->route_obj ? procs__get(session__procs(h->session), e->hdr.pid, false) : NULL;

		/* an app's object (aiohttp's request handler, gunicorn's worker): its table names it */
		if (pr && pr->state == PROC_PYTHON && pr->py.route_frame < routes__nframes &&
		    routes__frames[pr->py.route_frame].app) {
			/*
			 * a per-request object's (Tornado's handler): the walker gives its type until it
			 * knows where the class keeps the app, then the app (struct pt_proc's route_attr)
			 */
			if (routes__frames[pr->py.route_frame].app_attr && !pr->py.route_attr.mode) {
				if (djapps__wants_app(h->patterns, e->hdr.pid))
					procs__route_attr(session__procs(h->session), pr, e->route_obj);
			} else {
				djapps__app(h->patterns, e->hdr.pid, e->route_obj, routes__frames[pr->py.route_frame].app);
			}
		} else
			tmpl = route_template(h, e->hdr.pid, e->route_obj, &multi);

		uint64_t task = pt_task_key(e->task_frame, e->root_frame);

		char path[HTTP_PATH_MAX];
		bool scoped = false;

		uint64_t host = e->host_frame;

		if (e->server_obj)
			server_scope(h, e->hdr.pid, e->server_obj, &task);
		if (host & PT_HOST_TASK_GROUP) {
			host_recipes(h, e->hdr.pid, host & ~7ULL);
			host = 0;
		}
		if (!tmpl && !(task & 1) && (task & PT_TASK_SCOPE) && djapps__wants_app(h->patterns, e->hdr.pid))
			scope_app(h, e->hdr.pid, task & ~7ULL);
		if (!tmpl && !(task & 1) && (task & PT_TASK_SCOPE)) {
			tmpl = scope_route(h, e->hdr.pid, task & ~(uint64_t)7, &multi, path, sizeof(path));
			scoped = tmpl != NULL;
		}
		requests__resp_host(h->req, e->hdr.pid, e->tid, e->fd, e->ts, e->last_write_ts, e->data, e->data_len,
				    task, host, tmpl, multi, scoped ? path : NULL);
		break;
	}
	case PT_EV_HTTP_CLOSE:
		requests__close(h->req, e->hdr.pid, e->fd, e->ts, e->last_write_ts);
		break;
	}
}

static void httptrace_tick(void *c, uint64_t now)
{
	struct httptrace *h = c;

	requests__tick(h->req, now);
	pidsweep__tick(&h->gone, bpf_map__fd(h->skel->maps.conns), now);
}

static void httptrace_reset(void *c)
{
	struct httptrace *h = c;

	requests__reset(h->req);
}

static void httptrace_flush(void *c)
{
	struct httptrace *h = c;

	requests__flush(h->req);
}

/* The start of pid ("self" for ours) in clock ticks since boot: /proc/PID/stat's 22nd field. */
static uint64_t start_ticks(const char *pid)
{
	char path[64], buf[1024], *rp;
	unsigned long long t = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	/* after the comm's last ')': state is the 3rd field, starttime the 22nd */
	if (!fgets(buf, sizeof(buf), f) || !(rp = strrchr(buf, ')')) ||
	    sscanf(rp + 2, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
		   &t) != 1)
		t = 0;
	fclose(f);
	return t;
}

/*
 * A process that ran before the tool started may hold connections it accepted then: an HTTP
 * server's keep-alive connections (a load balancer's or a proxy's, kept for minutes or hours).
 * Their accept() was never seen, so nothing would follow them: they are found in /proc
 * (sockpeer__accepted) and put in `conns` as accept() would, between two requests. A request in
 * flight meanwhile gives its response no request (an orphan response, counted); the next ones
 * are followed. A process started after the tool is not looked at: its accepts are seen.
 */
static void httptrace_on_python(void *c, const struct proc *p)
{
	struct httptrace *h = c;
	char pid[16];
	uint64_t started;
	int *fds, n;

	snprintf(pid, sizeof(pid), "%u", p->pid);
	started = start_ticks(pid);
	if (!started || !h->self_start || started > h->self_start)
		return;
	fds = malloc(HTTP_ADOPT_MAX * sizeof(*fds));
	n = fds ? sockpeer__accepted((pid_t)p->pid, fds, HTTP_ADOPT_MAX) : -ENOMEM;
	for (int i = 0; i < n; i++) {
		struct http_conn_key k = { .pid = p->pid, .fd = fds[i] };
		struct http_conn nc = { .phase = HTTP_PH_IDLE };

		/* BPF_NOEXIST: one the programs saw accepted since is theirs */
		if (!bpf_map_update_elem(bpf_map__fd(h->skel->maps.conns), &k, &nc, BPF_NOEXIST))
			h->adopted++;
		else if (errno != EEXIST)
			h->adopt_failed++;
	}
	if (n > 0)
		vlog("pid %u: %d connection%s accepted before tracing followed from now\n", p->pid, n, n == 1 ? "" : "s");
	free(fds);
}

/* pid's route objects are gone with it (exit) or with its program (exec) */
static void forget_routes(struct httptrace *h, pid_t pid)
{
	for (unsigned i = 0; i < ROUTE_SLOTS; i++)
		if (h->routes[i].pid == (uint32_t)pid)
			h->routes[i].obj = 0;
}

static void httptrace_on_exec(void *c, pid_t pid)
{
	struct httptrace *h = c;

	forget_routes(h, pid);
	djapps__forget(h->patterns, pid);
}

static void httptrace_on_exit(void *c, pid_t pid)
{
	struct httptrace *h = c;

	requests__forget_pid(h->req, pid);
	forget_routes(h, pid);
	djapps__forget(h->patterns, pid);
	/* The exited process's connections: its close() calls were never seen (exit closes). */
	pidsweep__add(&h->gone, bpf_map__fd(h->skel->maps.conns), (uint32_t)pid, mono_ns());
}

void httptrace__stats(struct httptrace *h, struct httptrace_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->hook = h->per_syscall ? "per-syscall tracepoints" : "raw syscall tracepoints";
	st->lost = session__counter(h->session, PT_CNT_HTTP_LOST);
	st->conns_dropped = session__counter(h->session, PT_CNT_HTTP_CONN_DROPPED);
	st->route_reads = h->route_reads;
	st->route_errors = h->route_errors;
	st->scope_reads = h->scope_reads;
	st->scope_errors = h->scope_errors;
	st->host_reads = h->host_reads;
	st->host_errors = h->host_errors;
	st->scope_route_reads = h->scope_route_reads;
	st->adopted = h->adopted;
	st->adopt_failed = h->adopt_failed;
	st->scope_route_errors = h->scope_route_errors;
	st->queued_writers = session__counter(h->session, PT_CNT_HTTP_QUEUED);
	djapps__stats(h->patterns, &st->django);
	uvwrite__stats(session__uvwrite(h->session), &st->uvloop);
	requests__stats(h->req, &st->req);
}

struct requests *httptrace__requests(struct httptrace *h)
{
	return h->req;
}

static void httptrace_free(void *c)
{
	struct httptrace *h = c;

	if (!h)
		return;
	links__destroy(h->exit_links, ARRAY_SIZE(h->exit_links));
	if (h->skel)
		links__detach_skeleton(h->skel->skeleton);
	http_bpf__destroy(h->skel);
	requests__free(h->req);
	djapps__free(h->patterns);
	free(h);
}

static void httptrace_json(void *c, struct jsonw *w)
{
	struct httptrace *h = c;
	struct httptrace_stats st;

	httptrace__stats(h, &st);
	jsonw__name(w, "http");
	jsonw__start_object(w);
	jsonw__string_field(w, "source", st.hook);
	jsonw__uint_field(w, "lost_events", st.lost);
	jsonw__uint_field(w, "connections_not_followed", st.conns_dropped + st.adopt_failed);
	jsonw__uint_field(w, "connections_from_before_tracing", st.adopted);
	jsonw__uint_field(w, "events_of_processes_not_python", h->not_python);
	jsonw__uint_field(w, "route_template_reads", st.route_reads);
	jsonw__uint_field(w, "route_template_errors", st.route_errors);
	jsonw__uint_field(w, "streamed_response_scope_reads", st.scope_reads);
	jsonw__uint_field(w, "streamed_response_scope_errors", st.scope_errors);
	jsonw__uint_field(w, "streamed_response_host_reads", st.host_reads);
	jsonw__uint_field(w, "streamed_response_host_errors", st.host_errors);
	jsonw__uint_field(w, "scope_route_reads", st.scope_route_reads);
	jsonw__uint_field(w, "scope_route_errors", st.scope_route_errors);
	jsonw__name(w, "url_patterns");
	jsonw__start_object(w);
	jsonw__uint_field(w, "processes_read", st.django.processes);
	jsonw__uint_field(w, "flask_processes_read", st.django.flask_processes);
	jsonw__uint_field(w, "aiohttp_processes_read", st.django.aiohttp_processes);
	jsonw__uint_field(w, "tornado_processes_read", st.django.tornado_processes);
	jsonw__uint_field(w, "starlette_processes_read", st.django.starlette_processes);
	jsonw__uint_field(w, "tables", st.django.tables);
	jsonw__uint_field(w, "endpoints", st.django.endpoints);
	jsonw__uint_field(w, "endpoints_not_translatable", st.django.opaque);
	jsonw__uint_field(w, "patterns_skipped", st.django.skipped);
	jsonw__uint_field(w, "reads", st.django.reads);
	jsonw__uint_field(w, "read_errors", st.django.read_errors);
	jsonw__uint_field(w, "tables_too_long", st.django.too_long);
	jsonw__uint_field(w, "processes_dropped", st.django.dropped);
	jsonw__uint_field(w, "requests_named", st.django.named);
	jsonw__end_object(w);
	jsonw__name(w, "uvloop");
	jsonw__start_object(w);
	jsonw__uint_field(w, "processes_probed", st.uvloop.processes);
	jsonw__uint_field(w, "processes_failed", st.uvloop.failed);
	jsonw__uint_field(w, "processes_not_looked_at", st.uvloop.dropped);
	jsonw__uint_field(w, "responses_writer_from_probe", st.queued_writers);
	jsonw__end_object(w);
	jsonw__name(w, "assembly");
	requests__write_summary_json(h->req, w);
	jsonw__end_object(w);
	jsonw__name(w, "requests");
	requests__write_json(h->req, w);
	jsonw__name(w, "n_plus_one");
	requests__write_n1_json(h->req, w);
}

static void httptrace_summary(void *c, FILE *f)
{
	struct httptrace *h = c;
	struct httptrace_stats st;

	httptrace__stats(h, &st);
	fprintf(f, "HTTP: %llu requests (%s); lost events %llu, connections not followed %llu, "
		"not HTTP %llu, unanswered %llu, SQL statements in requests %llu, outside %llu, "
		"unattributed (thread served several requests at once) %llu; by task: %llu requests, statements "
		"of an unknown task %llu, ambiguous %llu, claimed by no response %llu, of thread pools %llu "
		"(and %llu attributed by the task they ran for).\n",
		(unsigned long long)st.req.requests, st.hook, (unsigned long long)st.lost,
		(unsigned long long)(st.conns_dropped + st.req.dropped_conns),
		(unsigned long long)st.req.not_http, (unsigned long long)st.req.no_response,
		(unsigned long long)st.req.queries_attributed, (unsigned long long)st.req.queries_outside,
		(unsigned long long)st.req.queries_unattributed, (unsigned long long)st.req.requests_by_task,
		(unsigned long long)st.req.queries_task_unknown, (unsigned long long)st.req.queries_ambiguous,
		(unsigned long long)st.req.queries_no_response, (unsigned long long)st.req.queries_pool,
		(unsigned long long)st.req.queries_pool_task);
	if (st.req.relayed)
		fprintf(f, "HTTP: %llu requests read by a relay (uWSGI's --http router) are counted where they ran.\n",
			(unsigned long long)st.req.relayed);
	if (st.uvloop.processes || st.uvloop.failed)
		fprintf(f, "HTTP on uvloop: transport.write probed in %u process%s (%u could not be), %llu responses "
			"given the task that queued them.\n", st.uvloop.processes, st.uvloop.processes == 1 ? "" : "es",
			st.uvloop.failed, (unsigned long long)st.queued_writers);
	if (st.lost)
		wlog("%llu socket events were lost (ring buffer full): request counts are low\n",
		     (unsigned long long)st.lost);
}

static void httptrace_report(void *c, FILE *f, unsigned written)
{
	struct httptrace *h = c;
	struct requests_stats st;

	requests__stats(h->req, &st);
	if (!(written & SESSION_WROTE_FILES) && st.requests) {
		fprintf(f, "\n");
		requests__report(h->req, f, 20);
	}
}

const struct capability httptrace_capability = {
	.name = "http",
	.ev_first = PT_EV_HTTP_FIRST,
	.ev_last = PT_EV_HTTP_LAST,
	.open = httptrace_open,
	.attach = httptrace_attach,
	.on_event = httptrace_event,
	.on_python = httptrace_on_python,
	.on_exec = httptrace_on_exec,
	.on_exit = httptrace_on_exit,
	.tick = httptrace_tick,
	.flush = httptrace_flush,
	.reset = httptrace_reset,
	.summary = httptrace_summary,
	.write_json = httptrace_json,
	.report = httptrace_report,
	.free = httptrace_free,
};
