/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The traced processes: which pids are followed (the BPF side's `tracked` map), which of them
 * run a supported CPython (its `procs` map, filled here after inspecting the interpreter), and
 * their fork, exec and exit. Capabilities keep their own per-process state in their own tables
 * and learn of changes through the listener hooks; nothing of theirs lives here.
 *
 * A process's record outlives its exit by PROCS_FREE_AFTER_NS: samples of its other threads may
 * still be queued at the exit and must find it dead, not count it as a new live process. Then
 * the slot is freed, so a collector that runs through any number of subprocesses and worker
 * restarts keeps room for new processes. Events of processes beyond the table's size are counted
 * (procs_stats.dropped), not followed.
 */
#ifndef PYTRACE_PROCS_H
#define PYTRACE_PROCS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "pyproc.h"
#include "routes.h"
#include "service.h"

#define PROCS_DEFAULT_MAX	16384
#define PROCS_FREE_AFTER_NS	1000000000ULL
#define PROCS_SEEN_MAX		512	/* processes listed in the reports (the rest counted) */
#define PROCS_FILTERS_MAX	32	/* --comm, --exclude-comm names each */

struct jsonw;

enum proc_state {
	PROC_UNKNOWN,		/* not inspected yet, or exec'd since */
	PROC_PYTHON,
	PROC_NOT_PYTHON,	/* final until it execs */
	PROC_FILTERED,		/* under --pid: followed for its descendants, not sampled (filters) */
};

struct proc {
	uint32_t pid;		/* key (pidtab.h) */
	enum proc_state state;
	bool live;
	uint64_t dead_ns;	/* when it exited (CLOCK_MONOTONIC) */
	uint64_t last_try_ns;	/* when it was last inspected */
	uint64_t pending_ns;	/* when it exec'd or appeared, while not known yet */
	int last_err;		/* what its last inspection said (0, -ENOEXEC, ...) */
	char comm[16];
	char service[SERVICE_NAME_MAX];	/* service.h: set when found Python; a fork inherits it */
	struct py_target py;	/* valid in PROC_PYTHON */
	uint32_t family;	/* in PROC_PYTHON: the same for the processes forked from one exec
				   (their memory began as one: symbolizer__resolve_in), never 0 */
	bool in_family;		/* counted among its family's live processes */
	uint64_t pool_next_ns;	/* when to look for a thread pool's frame again (procs__thread_pool_frame) */
	uint64_t pool_gap_ns;
	struct py_modules_stamp mods_stamp;	/* sys.modules at the last look (procs_find_frames) */
	bool mods_none;		/* that look found none of the modules looked for */
};

/* Called as processes change; pointers are valid during the call only. Any may be NULL. */
struct procs_listener {
	/* p was inspected and runs a supported CPython: as a root, a descendant, or after an exec */
	void (*on_python)(void *ctx, const struct proc *p);
	/* a Python process forked: child has its parent's interpreter, and is not announced again */
	void (*on_fork)(void *ctx, const struct proc *child, const struct proc *parent);
	/* pid replaced its program: forget what was known of it (on_python follows if it is Python) */
	void (*on_exec)(void *ctx, pid_t pid);
	void (*on_exit)(void *ctx, pid_t pid);
	void *ctx;
};

/*
 * Which processes are followed, host-wide or within a --pid subtree: a process must match one of
 * comms (if any), none of exclude_comms, and be in cgroup or below it (if set). Kernel comms are
 * compared exactly.
 */
struct procs_filter {
	const char *comms[PROCS_FILTERS_MAX];
	unsigned ncomms;
	const char *exclude_comms[PROCS_FILTERS_MAX];
	unsigned nexclude;
	const char *cgroup;	/* a cgroup v2 path as /proc/PID/cgroup shows it ("/a/b"), NULL: any */
};

struct procs_opts {
	uint32_t max_procs;	/* records at once, 0: PROCS_DEFAULT_MAX */
	bool follow_children;
	bool host_wide;		/* every CPython on the host (procs__add_host); non-Python ones are dropped */
	struct procs_filter filter;
	const char *service_name;	/* every process's service name, NULL: service__name() */
	int procs_fd, tracked_fd;	/* the BPF side's maps */
	uint64_t *tracked_bits;		/* the BPF side's tracked_bits, mapped (PT_PID_WORDS words), or NULL */
	struct procs_listener listener;
};

struct procs_stats {
	unsigned processes;	/* traced so far */
	unsigned python;	/* of which Python, counted once per program they ran */
	unsigned live;		/* still running */
	uint64_t dropped;	/* process events not followed: the table was full */
	unsigned thread_pools;	/* processes whose thread pool works for tasks (procs__thread_pool_frame) */
	unsigned route_frames;	/* processes whose routes are read from their framework (routes.h) */
	unsigned run_tasks;	/* processes whose running asyncio tasks are read directly (struct pt_proc) */
	unsigned dicts_by_hash;	/* programs whose dicts are looked up by hash (pythreads__learn_hash) */
	unsigned forks_found_running;	/* found running, and known as forks of a traced process (family) */
	unsigned scope_frames;	/* processes whose BaseHTTPMiddleware's tasks go by request (procs__scope_frames) */
	unsigned stream_hosts;	/* processes whose StreamingResponses' writers give their host task */
	unsigned texts_given_up;	/* processes no longer given their drivers' texts (procs__text_taken) */
};

struct procs;

struct procs *procs__new(const struct procs_opts *o);
/* Whether a process of family (struct proc.family) is alive and Python. */
bool procs__family_alive(const struct procs *p, uint32_t family);
void procs__free(struct procs *p);
/* Trace pid and, with follow_children, its present descendants. Fails (message in err) if pid is
 * not a supported Python. */
int procs__add_root(struct procs *p, pid_t pid, char *err, size_t errlen);
/*
 * Trace pid, a command the tracer started and holds before its exec: not inspected now (it
 * runs the tracer's own program); its exec is, and inspected again until its interpreter is
 * ready. With follow_children, what it starts is followed.
 */
int procs__add_launched(struct procs *p, pid_t pid, char *err, size_t errlen);
/* Whether some process is waiting for its interpreter to be ready (inspected at each poll). */
bool procs__any_pending(const struct procs *p);
/*
 * Under --pid or a command: pid waits for its interpreter (stopped by the hold, session.c):
 * inspect it now. True once the verdict is in (Python, not Python, or gone).
 */
bool procs__settle(struct procs *p, pid_t pid);
/*
 * Whether what pid sent (a statement, a request) is to be reported. Under --pid or a command,
 * every process followed counts (the command's own children are its work, Python or not).
 * Host-wide, only a process known to run Python counts, as for samples: every exec on the host is
 * followed until its verdict (inspected again every 40 ms), and psql, pg_dump or any other
 * program talks to PostgreSQL well within that. One not judged yet is inspected now, at most
 * once a millisecond: it ran far enough to send what it sent, so its libraries are mapped and, if
 * it is a CPython, its interpreter is ready.
 */
bool procs__ours(struct procs *p, uint32_t pid);
/*
 * Host-wide: follow every process now running a supported CPython and passing the filters (a
 * scan of /proc; the tracer itself, kernel threads and zombies are never followed). Those that
 * appear later come as exec events (the BPF side's host_wide). Returns how many were found.
 */
int procs__add_host(struct procs *p, char *err, size_t errlen);
/* Inspect again the processes that exec'd but are not known yet (every poll). */
void procs__pending(struct procs *p, uint64_t now_ns);
/* Whether pid (with its kernel comm) passes the filters. */
bool procs__admit(const struct procs *p, pid_t pid, const char *comm);
/*
 * --cgroup's argument (a directory under /sys/fs/cgroup, absolute or relative to it) as
 * /proc/PID/cgroup names it ("/a/b", "/" for the root) in out. -ENOENT/-ENOTDIR/-EINVAL with a
 * message in err.
 */
int procs__cgroup_path(const char *arg, char *out, size_t outlen, char *err, size_t errlen);
/* An event of type PT_EV_EXEC, PT_EV_FORK or PT_EV_EXIT. */
void procs__handle(struct procs *p, const void *data, size_t size);
/* pid's record, NULL if not followed; create: follow a pid the BPF side reports (a sample). */
struct proc *procs__get(struct procs *p, uint32_t pid, bool create);
/* A process whose interpreter was not ready: inspect it again, at most every 100 ms. */
void procs__retry(struct procs *p, struct proc *pr);
/*
 * What the BPF walkers are told about a process's frameworks (src/procs_frames.c), below.
 *
 * The thread pools' frames that name the task their thread works for (struct pt_proc's
 * proxy_code): asgiref's SyncToAsync.thread_handler (sync_to_async: Django under ASGI) and
 * anyio's WorkerThread.run (Starlette's run_in_threadpool: FastAPI's def endpoints).
 */
struct pool_frame {
	const char *module, *cls, *method;	/* where its function is: module.cls.method */
	const char *qualname;			/* its code's co_qualname (3.11+; co_name: method) */
	const char *file;			/* how its code's co_filename ends */
	const char *var;			/* its local that names the task, or the future it awaits */
	bool via_future;
};

/* The thread-pool frame that a frame named name (co_qualname or co_name) in file is, or NULL. */
const struct pool_frame *procs__pool_frame(const char *name, const char *file);
/*
 * A stack of pr showed code, the code object of pf's frame. If code has pf's local, the BPF
 * walkers give the stacks that pass through it the task it names. Cheap when already known.
 * The tool also looks for these functions in each Python process's modules when it finds the
 * process, and again now and then (1 s, then twice as long each time, up to a minute) until one
 * is there: this is for a frame seen before that.
 */
void procs__thread_pool_frame(struct procs *p, struct proc *pr, uint64_t code, const struct pool_frame *pf);
/* The same for a route frame (routes.h): the BPF walkers then give its route object. */
void procs__route_frame(struct procs *p, struct proc *pr, uint64_t code, const struct route_frame *rf);
/*
 * The route frame's local is a per-request object (routes.h's app_attr), whose type the walker
 * gave: where that class keeps the app, for the walker to read it itself (struct pt_proc's
 * route_attr), once type is checked to be the frame's class or a subclass. At most 8 tried.
 */
void procs__route_attr(struct procs *p, struct proc *pr, uint64_t type);
/*
 * pid serves a Flask app that is not a module global (an app factory's): its gunicorn worker's
 * frame (routes.h, ROUTE_APP_WSGI_WORKER) is looked for from the next tick on, so that the walker
 * gives the worker, whose `wsgi` is the app, with each response. Not before: the frame's local is
 * one read more on every walk of the process's threads.
 */
void procs__want_wsgi_app(struct procs *p, uint32_t pid);
/*
 * pid sent an Execute of a statement prepared before tracing (now: CLOCK_MONOTONIC ns): for the
 * next seconds its wire walkers give the text its driver's frame holds (struct pt_proc's
 * text_code, looked for from the next tick on where not known yet), with each chunk.
 */
void procs__want_text(struct procs *p, uint32_t pid, uint64_t now);
/*
 * A name of pid's took the text its driver gave (procs__want_text). A process that asks
 * PROCS_TEXT_ASKS_MAX times more than four times what it took is not given texts again: their
 * copies would cost every statement and buy nothing (statements sent through no frame of the
 * driver's: libpq's own calls).
 */
#define PROCS_TEXT_ASKS_MAX 64
void procs__text_taken(struct procs *p, uint32_t pid);
/*
 * Starlette's BaseHTTPMiddleware (FastAPI's @app.middleware("http")): the function that runs a
 * request's endpoint in a child task, and the variable both tasks' frames hold the request's
 * ASGI scope in (struct pt_proc's scope_code). Found in pr's modules with the frames above.
 */
struct scope_frame {
	const char *module, *cls, *method;	/* the request's task's frame: module.cls.method */
	const char *nested[2];			/* the child task's function: defined in method's nested[0] */
	const char *var;			/* the closure variable holding the scope */
};
/*
 * The response of such a request is streamed by another child task (struct pt_proc's
 * writer_code) through the server's send method, whose self's attribute holds the scope: the
 * loader reads it from the object the walker gives (pt_stack.server_obj) with the response.
 */
struct server_send {
	const char *module, *cls, *method;	/* the server's send: module.cls.method(self, ...) */
	const char *self, *attr;		/* its local naming its object, that object's scope */
};
/*
 * The scope of a request, read from pr's server object obj (pt_stack.server_obj), as a task key
 * (PT_TASK_SCOPE): 0 or -errno. The first one also tells where the object's class keeps it: the
 * BPF walkers then read it themselves (struct pt_proc's attr_mode).
 */
int procs__server_scope(struct procs *p, struct proc *pr, uint64_t obj, uint64_t *key);
/*
 * A streamed response's writer gave its anyio TaskGroup obj (pt_stack.server_obj, tagged
 * PT_SERVER_TASK_GROUP) before the walkers knew where TaskGroup and CancelScope keep their
 * attributes: work that out from it (struct pt_proc's host_attr). That response gets no host
 * task: obj is read after the fact, and may be another request's by then. 0 (the walkers now
 * read the host task themselves) or -errno.
 */
int procs__host_recipes(struct procs *p, struct proc *pr, uint64_t obj);
/*
 * FastAPI's route in a request's scope dict (scope["route"]), read by the loader: the route
 * object, 0 or -errno (-ENOENT: none, a Starlette route). The first ones also tell where the
 * scope dicts keep it: the BPF walkers then read it themselves (struct pt_proc's
 * scope_route_off), once pr's walkers read the scope (attr_mode). After 8 scopes without one (an
 * app of Starlette's own routes) and none with, none is read again.
 */
int procs__scope_route(struct procs *p, struct proc *pr, uint64_t scope, uint64_t *route);
/* Free the records of processes gone for PROCS_FREE_AFTER_NS. */
void procs__tick(struct procs *p, uint64_t now_ns);
void procs__stats(const struct procs *p, struct procs_stats *st);
/* One line per Python process: pid, version, binary, how offsets were found. */
void procs__describe(const struct procs *p, FILE *f);
/* The processes followed, with their services (the text report; host-wide mode). */
void procs__report(const struct procs *p, FILE *f);
/* The "processes" section of the JSON report. */
void procs__write_json(const struct procs *p, struct jsonw *w);

#endif
