/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Finding a process's CPython interpreter: version, _PyRuntime, layout and thread-state key. */
#ifndef PYTRACE_PYPROC_H
#define PYTRACE_PYPROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "pylayout.h"
#include "pythreads.h"
#include "pytrace_user.h"

struct py_target {
	pid_t pid;
	unsigned major, minor, micro;
	char binary[512];	/* the file holding the interpreter, as /proc/PID/maps names it */
	char binary_host[600];	/* a path that opens that file from here */
	bool shared;		/* interpreter in libpython*.so */
	uint64_t runtime;	/* &_PyRuntime in the target */
	uint64_t pycode_type;	/* &PyCode_Type in the target */
	uint64_t hash_secret;	/* &_Py_HashSecret in the target, or 0 (pythreads__learn_hash) */
	uint64_t stack_end;	/* the top of its main thread's stack: placed at random by each exec,
				   the same in a fork (struct proc.family), 0 if not seen */
	bool debug_offsets;	/* layout read from the interpreter's _Py_DebugOffsets */
	struct py_layout layout;
	int64_t tstate_off;	/* thread state pointer at fsbase + tstate_off (struct pt_proc) */
	char tstate_how[96];	/* how tstate_off was found, for -v */
	bool tstate_checked;	/* confirmed against the interpreter's own thread list */
	bool free_threaded;	/* 3.13t+: no GIL (its _Py_DebugOffsets say so) */
	uint64_t gil;		/* the main interpreter's struct _gil_runtime_state, or 0 */
	/*
	 * The thread-pool frame that names the task its thread works for (struct pt_proc's
	 * proxy_code: asgiref's or anyio's), once a stack showed it: 0 until then. A fork keeps it (same memory); an exec clears it with the rest.
	 */
	uint64_t proxy_code;
	uint32_t proxy_local;		/* the index of the local that names the task, or its future */
	bool proxy_via_future;
	uint64_t proxy_rejected;	/* a code object of that name whose locals did not match */
	/* the web framework's route frame (struct pt_proc's route_code; src/routes.h), likewise */
	uint64_t route_code;
	uint32_t route_local;		/* the index of its local holding the route object */
	bool route_cell;		/* that local is a cell (struct pt_proc's route_cell) */
	struct py_attr_recipe route_attr;	/* where the local's class keeps routes.h's app_attr (mode 0: not known) */
	unsigned route_attr_tries;	/* objects it was worked out from, up to 8 */
	uint32_t route_frame;		/* which of routes__frames it is */
	bool want_wsgi_app;		/* gunicorn's worker frames are route frames too (procs.h) */
	uint64_t route_rejected;
	/*
	 * The database driver's frame that holds the text of a statement it executes (struct
	 * pt_proc's text_code; procs_frames.c's text frames), looked for while wanted: want_text,
	 * until text_want_until (an Execute of a statement prepared before tracing was seen).
	 */
	uint64_t text_code[PT_TEXT_CODES];	/* one driver's frames: code objects, 0: none */
	uint32_t text_local[PT_TEXT_CODES];	/* the index of each one's local */
	const char *text_driver;	/* their driver (text_code[0] found) */
	uint32_t text_member[PT_TEXT_CODES];	/* that local's slot holding the text, 0: the local itself */
	bool text_bytes;		/* the text is a bytes object (else a str) */
	bool want_text;
	uint64_t text_want_until;	/* CLOCK_MONOTONIC ns */
	uint32_t text_asks, text_taken;	/* procs__want_text's calls, procs__text_taken's */
	uint64_t text_rejected;
	/* the _asyncio module's running tasks, {loop: task} (struct pt_proc's run_tasks): 0 until found */
	uint64_t run_tasks;
	/*
	 * 3.14+: the thread state's asyncio_running_task (struct pt_proc's ts_run_task), from the
	 * _asyncio module's .AsyncioDebug section (py_target__find_running_task): 0 until found;
	 * no_run_task: looked for and not there (nothing to look for again)
	 */
	uint32_t ts_run_task;
	bool no_run_task;
	/*
	 * Starlette's BaseHTTPMiddleware.__call__ and its child task's coroutine, whose cells of
	 * the request's ASGI scope name the request (struct pt_proc's scope_code), once found: 0
	 * until then.
	 */
	uint64_t scope_code, scope_child_code;
	uint32_t scope_cell, scope_child_cell;	/* their cells' indices in f_localsplus / localsplus */
	uint64_t scope_rejected;	/* a __call__ whose closures did not match */
	/* and the child task that streams its response, and the server's send (struct pt_proc's
	 * writer_code, send_code): 0 until found */
	uint64_t writer_code, send_code[2];
	uint32_t send_local;		/* the index of send's self (the same in each) */
	struct py_attr_recipe scope_attr;	/* where send's self keeps the scope (mode 0: not known) */
	unsigned scope_attr_tries;	/* objects it was worked out from, up to 8 */
	/* where a scope dict keeps "route" (struct pt_proc's scope_route_off, scope_route_key) */
	uint32_t scope_route_off;
	uint64_t scope_route_key;
	unsigned scope_route_misses;	/* scopes without it (Starlette's own routes): 8, and none is read */
	/*
	 * A StreamingResponse's writer (writer_code) and its cell of the task group (struct
	 * pt_proc's host_cell), whose host task (the request's, for a plain one) the walker reads through
	 * TaskGroup.cancel_scope and CancelScope._host_task (host_attr: mode 0 until worked out
	 * from the classes at a first TaskGroup given, host_attr_tries of them at most 8).
	 */
	uint32_t host_cell;		/* the cell's index in f_localsplus / localsplus; 0 with no writer_code */
	struct py_attr_recipe host_attr[2];
	unsigned host_attr_tries;
	uint64_t host_rejected;		/* a writer whose closure holds no task_group */
};

/*
 * Inspect pid. Returns 0, or:
 *  -ESRCH    no such process
 *  -ENOEXEC  not a Python process
 *  -ENOTSUP  a CPython version pytrace-bpf does not support (t->major/minor say which)
 *  -EAGAIN   the interpreter is not initialized yet, or the process has just exec'd and the
 *            loader has not mapped its libraries yet (try again shortly)
 *  other -errno for read errors.
 * A message for the user is written to err.
 */
int py_target__inspect(pid_t pid, struct py_target *t, char *err, size_t errlen);
/*
 * Read the interpreter symbols of the program a command would exec (argv0 found on PATH as
 * execvp would), ahead of its exec (pytrace-bpf -- COMMAND): inspecting the process after the exec
 * then finds them cached instead of reading a large symbol table while the program starts.
 */
void py_binary__prime(const char *argv0);

/*
 * 3.14+: set t->ts_run_task from the .AsyncioDebug section of the interpreter's file (_asyncio
 * built in) or of the _asyncio module's shared object that pid maps. Returns 0; -EAGAIN: no
 * _asyncio mapped yet; -ENOENT: an _asyncio without the section, or one whose offsets do not
 * make sense; -ENOTSUP: not 3.14+ or free-threaded; other -errno.
 */
int py_target__find_running_task(struct py_target *t);

/* The per-process configuration the BPF stack walker needs. */
void py_target__to_bpf(const struct py_target *t, struct pt_proc *p);

/* Read /proc/PID/comm into buf (empty on failure). */
void proc_comm(pid_t pid, char *buf, size_t size);

#endif
