/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by the BPF programs and the loader: plain __u32/__u64 and #defines only. */
#ifndef PYTRACE_H
#define PYTRACE_H

#define PT_PID_WORDS	((1u << 22) / 64)	/* tracked_bits: one bit per pid up to PID_MAX_LIMIT (64-bit) */
#define PT_MAX_FRAMES	160	/* Python frames kept per stack; deeper stacks are marked truncated */
#define PT_MAX_WALK	256	/* frames visited per walk, C-stack shim frames included */
#define PT_NONE		0xffff	/* an offset the interpreter does not have */
#define PT_TASK_COMM_LEN 16
#define PT_FRAME_READ_MAX 128	/* bytes of a frame's head read at once (power of two) */
#define PT_WINDOW	16384	/* bytes of a thread's frame stack copied at once (power of two) */
#define PT_CO_ASYNC	0x380	/* CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR */

/* Where a version keeps its frames. Offsets in bytes; PT_NONE where absent. */
struct pt_offsets {
	__u16 ts_cframe;	/* tstate -> cframe pointer (3.11, 3.12) */
	__u16 ts_frame;		/* top frame pointer: in tstate, or in cframe when ts_cframe is set */
	__u16 fr_code;		/* frame -> code object (f_code, f_executable) */
	__u16 fr_back;		/* frame -> previous frame (f_back, previous) */
	__u16 fr_instr;		/* f_lasti (int) or prev_instr/instr_ptr (pointer) */
	__u16 fr_owner;		/* frame owner byte (3.12+), PT_NONE if not checked */
	__u8 instr_is_ptr;	/* 1: fr_instr is a pointer; 0: a 32-bit int */
	__u8 owner_cstack;	/* owner value of C-stack shim frames to skip */
	__u16 fr_span;		/* bytes from the frame's start covering every field above */
	__u16 ts_datastack;	/* tstate -> datastack_chunk, datastack_top, datastack_limit (3.11+) */
	__u16 fr_gen;		/* what tells a generator's frame: f_gen (<= 3.10), owner (3.11+) */
	__u8 gen_is_ptr;	/* 1: fr_gen is a pointer, non-NULL in generator frames (f_gen) */
	__u8 owner_gen;		/* 0: fr_gen is the owner byte, this value in generator frames */
	__u16 co_flags;		/* code object -> co_flags (CO_COROUTINE...), PT_NONE: not read */
	__u64 code_mask;	/* and-mask for the code pointer (3.14 tags _PyStackRef) */
};

/* Driver frames that may hold a statement's text (struct pt_proc's text_code) */
#define PT_TEXT_CODES	3

/* One traced process with a known interpreter. */
struct pt_proc {
	struct pt_offsets off;
	/*
	 * Where a thread's PyThreadState pointer sits, relative to its fsbase (struct pthread):
	 * the glibc TSD slot of the autoTSSkey (<= 3.14, positive), or the thread-local
	 * _Py_tss_gilstate in the static TLS block below the thread pointer (3.15, negative).
	 */
	__s64 tstate_off;
	/* --gil: the interpreter's struct _gil_runtime_state (0: unknown), and in it */
	__u64 gil;
	__u16 gil_locked;	/* int: held now */
	__u16 gil_holder;	/* last_holder: PyThreadState * */
	/*
	 * The sampler's: samples sent since the loader last configured the process. Its first
	 * PT_EAGER_SAMPLES wake the loader at once, which then names their code objects while the
	 * process lives (a short one may be gone by the next poll, and its frames unknown).
	 */
	__u32 samples_sent;
	/*
	 * A thread pool's thread working for an asyncio task. Two thread pools name the task in a
	 * frame of theirs: asgiref's SyncToAsync.thread_handler(self, loop, source_task, ...)
	 * runs each sync_to_async call (Django's sync views and ORM under ASGI) with the task that
	 * awaits it as an argument; anyio's WorkerThread.run (Starlette's run_in_threadpool:
	 * FastAPI's def endpoints) holds the future that task awaits, whose first callback wakes
	 * it. A stack that runs in no task of its own but passes through that frame gets the
	 * task's key (task_frame | PT_TASK_PROXY): task->task_coro, then the coroutine's frame,
	 * the address the task's own stacks give as their task_frame. Of the outermost such frame:
	 * sync code that calls async code that calls sync code (Django's sync middleware around
	 * its async handler) runs the inner sync code in the same thread, for a task
	 * async_to_sync made; the outer frame names the request's. One such code object per
	 * process: the first one seen.
	 */
	__u64 proxy_code;	/* that frame's code object, 0: not seen (yet) */
	__u16 proxy_local;	/* frame -> the local naming the task (or future) */
	__u16 task_coro;	/* _asyncio's TaskObj -> task_coro, 0: unknown */
	__u16 coro_frame;	/* coroutine -> gi_frame (<= 3.10, a pointer) or gi_iframe (3.11+) */
	__u8 coro_frame_is_ptr;
	__u8 proxy_via_future;	/* 1: the local is a future: its fut_callback0's wakeup_task */
	__u16 fut_callback0;
	__u16 wakeup_task;
	/*
	 * The web framework's route, where a frame of its holds the matched route object for the
	 * request's life (src/routes.h): Starlette's Route.handle(self, ...), FastAPI's routes
	 * among them. The walker gives the innermost such frame's local as pt_stack.route_obj (one
	 * read after the walk); the loader reads the route's template from that object (a static
	 * one: the app's own).
	 */
	__u16 route_local;	/* frame -> that local (f_localsplus + 8 * its index) */
	__u8 route_cell;	/* 1: the local is a cell (a closure takes it): its ob_ref (cell_ref) is
				   the object, read by the walker (the frame's cell dies with the frame;
				   Tornado's RequestHandler._execute's self) */
	__u8 route_via_attr;	/* 1: the object is a per-request one: give its attribute (route_attr),
				   or, until that is known, its type */
	__u64 route_code;	/* that frame's code object, 0: none (yet) */
	/*
	 * Starlette's BaseHTTPMiddleware (FastAPI's @app.middleware("http")) runs the endpoint in a
	 * child task of an anyio task group, call_next.<locals>.coro, and the response is written by
	 * the request's own task, in BaseHTTPMiddleware.__call__: no stack leads from one task to
	 * the other. Both hold the request's ASGI scope dict (coro's closure cell is __call__'s), so
	 * it names the request for both: a stack whose outermost coroutine runs the child's code, or
	 * that passes through __call__ (its outermost such frame), gets the scope's address |
	 * PT_TASK_SCOPE as its task_frame (src/requests.h). Two reads, on such stacks only.
	 */
	__u64 scope_code;	/* BaseHTTPMiddleware.__call__'s code object, 0: none (yet) */
	__u64 scope_child_code;	/* call_next.<locals>.coro's */
	__u16 scope_cell;	/* frame -> __call__'s cell of scope (f_localsplus + 8 * its index) */
	__u16 scope_child_cell;	/* frame -> coro's cell of scope (a free variable) */
	__u16 cell_ref;		/* PyCellObject.ob_ref */
	/*
	 * The response of such a request is written by yet another task: Starlette's
	 * StreamingResponse streams from a child task (__call__.<locals>.wrap), through the server's
	 * send, a method of its per-request object (uvicorn's RequestResponseCycle, whose `scope`
	 * attribute is the request's scope). A stack whose outermost coroutine runs writer_code
	 * and that passes through a send_code frame gives that frame's self as
	 * pt_stack.server_obj; the loader reads its scope (src/httptrace.c).
	 */
	__u16 send_local;	/* frame -> send's self (f_localsplus + 8 * its index) */
	__u64 writer_code;	/* StreamingResponse.__call__.<locals>.wrap's code object, 0: none (yet) */
	__u64 send_code[2];	/* the server's send methods' code objects (uvicorn: h11's, httptools') */
	/*
	 * Then the walker reads that object's scope itself (the loader's read comes too late: a
	 * short response's request is over, and its object freed, before the loader sees the
	 * write), once the loader has worked out where the class keeps it (src/pythreads.h,
	 * struct py_attr_recipe): attr_mode 0 until then.
	 */
	__u16 attr_off;		/* <= 3.10: tp_dictoffset; 3.13+: tp_basicsize */
	__u16 attr_slot;	/* the attribute's byte offset in the values array */
	__u16 attr_dict_values;	/* <= 3.10: PyDictObject.ma_values */
	__u8 attr_mode;		/* enum py_attr_mode */
	__u8 pad4;
	/*
	 * FastAPI's routes put themselves in the request's scope (scope["route"] = self): with the
	 * scope above, the writer takes the route from it as pt_stack.route_obj (two reads), where
	 * no Route.handle frame is on its stack. The scope dicts of one app get their keys in the
	 * same order: the entry's place is worked out by the loader from a first scope, and the
	 * walker checks the entry's key, the interned "route" str, before it takes the value.
	 */
	__u32 scope_route_off;	/* dict keys object -> that entry's key (the value follows); 0: unknown */
	__u16 dict_keys;	/* PyDictObject.ma_keys */
	__u16 pad5;
	__u64 scope_route_key;	/* the "route" str object */
	/*
	 * A plain StreamingResponse (no middleware) streams from its child task (writer_code) too,
	 * while its request's statements came from the request's own task, the one that awaits
	 * StreamingResponse.__call__: the host task of its anyio task group, whose key the writer
	 * gives beside its own (pt_stack.host_frame). It reads it from the child's closure (wrap's
	 * free variable task_group, a cell), then TaskGroup.cancel_scope, then
	 * CancelScope._host_task (each attribute by its class's recipe, worked out by the loader from
	 * a first TaskGroup: host_attr[0] and [1], mode 0 until then), then the task's coroutine
	 * frame, as pt_task_of's thread pools do: the key that task's own stacks have. Five to seven
	 * reads, on those writers' walks only.
	 */
	__u16 host_cell;	/* frame -> wrap's cell of task_group (f_localsplus + 8 * its index); 0: none */
	__u16 pad6;
	struct pt_attr {
		__u16 off;	/* as attr_off */
		__u16 slot;	/* as attr_slot */
		__u8 mode;	/* as attr_mode */
		__u8 pad[3];
	} host_attr[2];		/* TaskGroup.cancel_scope, CancelScope._host_task */
	/*
	 * Where the route frame's local is a per-request object that dies with its request, often
	 * before the loader reads it, its memory soon another object's (Tornado's RequestHandler, on
	 * a connection closed after one response), the walker gives its type (static) until the
	 * loader has worked out from it where the class keeps the app (src/routes.h's app_attr),
	 * then the app, by that recipe (route_via_attr): mode 0 until then.
	 */
	struct pt_attr route_attr;
	/*
	 * The asyncio task a thread runs, read without walking its coroutine chain (3.11-3.13): the
	 * _asyncio module's dict of running tasks, {loop: task} (asyncio.tasks._current_tasks), 0:
	 * not found (yet). A statement's walk (PT_WALK_CUT) takes the task's key from it and stops
	 * at the route frame (route_code): the chain's outer part, 10-15 coroutine frames read one
	 * by one on Starlette's stacks, is not read. pt_running_task.
	 */
	__u64 run_tasks;
	__u8 dk_log2_size;	/* PyDictKeysObject: dk_log2_size (dk_log2_index_bytes and dk_kind follow) */
	__u8 dk_nentries;
	__u8 dk_indices;
	__u8 pad7;
	/*
	 * 3.14+ keep the task a thread runs in its thread state (_PyThreadStateImpl's
	 * asyncio_running_task; the _asyncio module's .AsyncioDebug section gives the offset): the same
	 * cut, with one read instead of the dict's four or five. 0: not known.
	 */
	__u16 ts_run_task;
	__u8 pad8[2];
	/*
	 * A statement prepared before tracing: the wire carries only its name at each Execute. The
	 * driver's frame that sends it holds its text (src/procs_frames.c's text frames: asyncpg's
	 * Connection._do_execute's query and pg8000's Connection.execute's statement, strs; psycopg
	 * 3's BaseCursor._maybe_prepare_gen's pgq, whose slot `query` is the bytes it prepared, and
	 * in a pipeline, which writes later, _execute_gen's and _executemany_gen_pipeline's pgq;
	 * asyncpg's PreparedStatement.__do_execute's self, slot _query: up to PT_TEXT_CODES frames
	 * of one driver, the innermost on the stack taken). While the loader wants such texts (text_want: the process sent an Execute of a name it
	 * did not know in the last seconds), the programs that see the statement leave copy that
	 * text (pt_text_at): the object may be a str made for the one call, freed by the time the
	 * loader could read it, its memory soon another's. Two or three reads and a copy a
	 * statement then, none otherwise.
	 */
	__u64 text_code[PT_TEXT_CODES];	/* those frames' code objects, 0: none (yet) */
	__u16 text_local[PT_TEXT_CODES];	/* frame -> the local (f_localsplus + 8 * its index), per code */
	__u16 text_member[PT_TEXT_CODES];	/* the local's object -> the text (a __slots__ member), 0: the local is it */
	__u16 text_data;	/* the text object -> its bytes: a compact ASCII str's, or a bytes' ob_sval */
	__u16 text_state;	/* a str: its state (compact, ASCII and kind read); 0: a bytes object */
	__u16 text_cdata;	/* a str: a compact non-ASCII one's code units (PyCompactUnicodeObject's end) */
	__u8 text_want;
	__u8 pad9[5];
};

/* pt_walk_thread's how: a statement's stack, which may stop at the route frame (struct pt_proc's run_tasks) */
#define PT_WALK_CUT	1u

/* In a task_frame: the task a thread pool's thread works for (struct pt_proc), not its own. */
#define PT_TASK_PROXY	2ULL
/* In a host_frame: an anyio TaskGroup to learn from (struct pt_proc's host_attr), not a task key. */
#define PT_HOST_TASK_GROUP	2ULL
/* In a task_frame: an ASGI request's scope dict (struct pt_proc's scope_code), not a frame. */
#define PT_TASK_SCOPE	4ULL

/* How a traced pid came to be traced. */
#define PT_TRACK_ROOT	1	/* named on the command line */
#define PT_TRACK_CHILD	2	/* forked by a traced process */
#define PT_TRACK_HOST	3	/* host-wide: found by the /proc scan or at its exec */

/*
 * Event types. Each capability owns one range of them; the session dispatches a range to its
 * owner (src/session.c) and counts events whose type no capability owns. A new capability takes
 * the next free range here and defines its types inside it, in its own header.
 */
#define PT_EV_SAMPLE_FIRST	1	/* the sampler: struct pt_sample */
#define PT_EV_SAMPLE_LAST	1
#define PT_EV_PROC_FIRST	2	/* the process table (src/procs.c): struct pt_proc_event */
#define PT_EV_PROC_LAST		15
#define PT_EV_SQL_FIRST		16	/* statements through libpq (include/sql.h) */
#define PT_EV_SQL_LAST		31
#define PT_EV_HTTP_FIRST	32	/* HTTP requests on sockets (include/http.h) */
#define PT_EV_HTTP_LAST		47
#define PT_EV_FUNC_FIRST	48	/* --functions' USDT probes (include/funcs.h) */
#define PT_EV_FUNC_LAST		63
#define PT_EV_PG_FIRST		64	/* PostgreSQL's wire protocol on sockets (include/pg.h) */
#define PT_EV_PG_LAST		79
#define PT_EV_TYPES		80	/* every type is below this */

enum pt_event_type {
	PT_EV_SAMPLE = PT_EV_SAMPLE_FIRST,
	PT_EV_EXEC = PT_EV_PROC_FIRST,	/* a traced pid exec'd: its interpreter must be found again */
	PT_EV_FORK = 3,		/* a traced pid forked a new process */
	PT_EV_EXIT = 4,		/* a traced process exited */
	PT_EV_HELD = 5,		/* the launched command stopped at its first module load (session.bpf.c) */
};

/* Sample flags */
#define PT_SF_TRUNCATED	(1u << 0)	/* more frames than PT_MAX_FRAMES */
#define PT_SF_NO_PROC	(1u << 1)	/* traced pid without an interpreter config (yet) */
#define PT_SF_NO_TSTATE	(1u << 2)	/* thread has no Python thread state: native code */
#define PT_SF_READ_ERR	(1u << 3)	/* a frame could not be read; stack is partial */
#define PT_SF_OFFCPU	(1u << 4)	/* taken when the thread blocked, not by the timer */
#define PT_SF_IDLE	(1u << 5)	/* --idle: a new off-CPU stack; its time accrues in idle_agg */
#define PT_SF_GIL	(1u << 6)	/* --gil: the sampled thread held the GIL (else not sent) */
#define PT_SF_CUT	(1u << 7)	/* a statement's stack, whole down to its route frame (PT_WALK_CUT) */

/*
 * --idle: what a blocked thread waited on, from the syscall it was in when it left the CPU
 * (its pt_regs' orig_ax) and, for reads, writes and polls, the kind of file. A PT_SF_IDLE
 * pt_sample carries it in weight, and the stack's hash in ts.
 */
enum pt_idle_reason {
	PT_IDLE_OTHER,		/* not in a syscall we know (page fault, wait4, ...) */
	PT_IDLE_SLEEP,		/* nanosleep, clock_nanosleep, select/poll with no fds, pause */
	PT_IDLE_LOCK,		/* futex: Python's locks, the GIL, queues, joins, conditions */
	PT_IDLE_SOCKET,		/* socket calls, reads/writes of a socket, poll/select on one */
	PT_IDLE_IO,		/* reads/writes of files and pipes, epoll, poll/select on others */
	PT_IDLE_SQL,		/* a PostgreSQL statement in flight on the thread */
	PT_IDLE_REASONS,
};

/* Off-CPU time aggregated in BPF: per (stack, thread, reason), nanoseconds and blocks. */
struct pt_idle_key {
	__u64 hash;		/* pt_walk_stack's */
	__u32 pid, tid;
	__u32 reason;		/* enum pt_idle_reason */
	__u32 pad;
};

struct pt_idle_val {
	__u64 ns;		/* blocked, switch-out to switch-in */
	__u64 count;		/* blocks */
};

/*
 * --idle, per traced thread (task storage): its open block and the time of its last key not yet
 * added to idle_agg. The loader reads the threads' copies at the end through an iter/task program.
 */
struct pt_idle_thread {
	__u64 ts;		/* bpf_ktime_get_ns() at switch-out; 0: on CPU */
	struct pt_idle_key key;	/* where the current (or last) block's time goes */
	__u64 acc_ns;		/* blocked time of key not yet in idle_agg */
	__u64 acc_count;	/* blocks of key not yet in idle_agg */
	__u64 flush_ts;		/* when acc_* last went to idle_agg */
	__u64 win_start;	/* the current rate window (bpf/sampler.bpf.c: idle_walks_per_s) */
	__u32 win_blocks;	/* blocks in it so far */
	__u32 k;		/* 1 in k blocks is walked, and counts k times (1: every block) */
	__u32 scale;		/* the open block's weight: the k it was walked under */
	__u32 pad;
};

struct pt_frame {
	__u64 code;		/* code object address */
	__u64 instr;		/* instruction pointer (3.11+) or f_lasti (<= 3.10) */
};

struct pt_event_hdr {
	__u32 type;
	__u32 pid;
};

/* A Python stack as the walker leaves it. */
struct pt_stack {
	__u32 nframes;
	__u32 flags;		/* PT_SF_* */
	/*
	 * Who runs this stack, for attributing its work to a request (src/requests.h): the address
	 * of its outermost frame owned by a generator or coroutine (an asyncio task's top coroutine;
	 * its frame lives in the coroutine object, so the address is stable for the task's life),
	 * and of its outermost frame (a greenlet's run frame, a thread's first frame). 0: none, or
	 * the walk did not reach the root (truncated, read error). Not part of the stack's hash.
	 * A thread pool's thread that works for a task gets that task's, with PT_TASK_PROXY set.
	 */
	__u64 task_frame;
	__u64 root_frame;
	/*
	 * The walker's: the outermost frame running struct pt_proc's proxy_code. Kept here, in map
	 * or ring-buffer memory, and not on the BPF stack: the verifier tracks values on its stack,
	 * and one that a loop's callback may or may not set splits every caller's states in two.
	 */
	__u64 proxy_frame;
	/* the route object of the innermost frame running struct pt_proc's route_code (that frame:
	 * route_frame, the walker's), 0: none */
	__u64 route_obj;
	__u64 route_frame;
	/* the walker's: the outermost frames running struct pt_proc's scope_code, and send_code */
	__u64 scope_frame;
	__u64 send_frame;
	/* the send_code frame's self in a stack of the writer_code's task, where the walker did not
	 * read its scope itself; else 0 */
	__u64 server_obj;
	/*
	 * A streamed response's writer (struct pt_proc's writer_code): the task key of its task
	 * group's host, the task that awaits the response (host_cell), beside its own key; 0: none
	 * or not known. The statements that task sent before the stream are the response's too.
	 * Until the walker knows where TaskGroup and CancelScope keep their attributes: the
	 * TaskGroup | PT_HOST_TASK_GROUP, for the loader to work that out from.
	 */
	__u64 host_frame;
	/* the walker's: the innermost frame running one of struct pt_proc's text_code (while
	 * text_want), | its index there in the low bits */
	__u64 text_frame;
	struct pt_frame frames[PT_MAX_FRAMES];	/* innermost first; only nframes are sent */
};

struct pt_sample {
	struct pt_event_hdr hdr;
	__u32 tid;
	__u32 cpu;
	__u64 ts;		/* bpf_ktime_get_ns() */
	__u64 weight;		/* samples (1) or, for off-CPU, nanoseconds */
	char comm[PT_TASK_COMM_LEN];	/* thread name */
	struct pt_stack stack;	/* must stay last: sent cut to its nframes */
};

struct pt_proc_event {
	struct pt_event_hdr hdr;
	__u32 ppid;		/* PT_EV_FORK: the parent */
	__u32 pad;
	char comm[PT_TASK_COMM_LEN];
};

/* Counters the BPF side keeps in a per-CPU array; the loader sums and reports them. */
enum pt_counter {
	PT_CNT_SAMPLES,		/* samples of traced processes */
	PT_CNT_LOST,		/* ring buffer full: sample dropped */
	PT_CNT_NO_PROC,
	PT_CNT_NO_TSTATE,
	PT_CNT_READ_ERR,
	PT_CNT_TRUNCATED,
	PT_CNT_PROC_LOST,	/* fork/exec/exit events dropped */
	PT_CNT_SQL_LOST,	/* libpq events dropped: ring buffer full */
	PT_CNT_SQL_CALLS,	/* libpq calls seen in traced processes */
	PT_CNT_HTTP_LOST,	/* socket events dropped: ring buffer full */
	PT_CNT_HTTP_CONN_DROPPED,	/* accepted connections not followed: map full */
	PT_CNT_FUNC_LOST,	/* function/GC/import events dropped: ring buffer full */
	PT_CNT_FUNC_UNPAIRED,	/* open calls dropped: their return never came (unwound, lost) */
	PT_CNT_FUNC_DEEP,	/* candidate calls nested deeper than FN_STACK_MAX: not timed */
	PT_CNT_OFFCPU,		/* off-CPU stacks recorded */
	PT_CNT_PG_LOST,		/* wire-protocol events dropped: ring buffer full */
	PT_CNT_PG_CONN_DROPPED,	/* PostgreSQL connections not followed: map full */
	PT_CNT_PG_DESYNC,	/* a stream lost its message framing (resynchronized later) */
	PT_CNT_PG_LONG,		/* reads or writes with more messages than one pass walks */
	PT_CNT_IDLE_BLOCKS,	/* --idle: blocks of traced threads recorded */
	PT_CNT_IDLE_DROPPED,	/* --idle: blocks not recorded: idle_agg full */
	PT_CNT_IDLE_UNWALKED,	/* --idle: blocks above the walk rate left unwalked (their time estimated) */
	PT_CNT_GIL_DROPPED,	/* --gil: samples of threads not holding the GIL */
	PT_CNT_HTTP_QUEUED,	/* responses whose writer's task came from uvloop's transport.write() */
	PT_CNT_PG_QUIET,	/* portal Close + Sync round trips kept in the kernel (struct pg_conn.quiet) */
	PT_CNT_SAMPLES_WOKE,	/* samples that woke the loader at once (sampler.bpf.c's pt_eager) */
	PT_CNT_MAX,
};

#endif /* PYTRACE_H */
