// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "profile.h"
#include "http.h"
#include "profile.skel.h"
#include "procmem.h"
#include "pyproc.h"
#include "querycache.h"
#include "symbolize.h"
#include "util.h"

#define MAX_PROCS 16384	/* processes known at once; PYTRACE_MAX_PROCS overrides it (tests) */
#define MAX_SQL_FRAMES_P (PT_MAX_FRAMES + 3)
#define RETRY_NS (100 * 1000000ULL)	/* how often to retry inspecting a process */
#define RESCAN_NS (500 * 1000000ULL)	/* how often to look for a newly loaded libpq */
#define FREE_AFTER_NS (1000000000ULL)	/* events of an exited process still queued by then: none */
#define WATCHED_RESCAN_NS (10 * 1000000000ULL)	/* backstop, should a notice be lost */
#define AHEAD_DELAY_NS (20 * 1000000ULL)	/* a child that has not exec'd by then is probed ahead */
#define TID_COMMS 1024			/* thread names remembered from samples */
#define FRAME_LEN 384

enum tproc_state {
	TP_UNKNOWN,		/* not inspected yet, or exec'd since */
	TP_PYTHON,
	TP_NOT_PYTHON,		/* final until it execs */
};

struct tproc {
	pid_t pid;		/* 0: free slot */
	enum tproc_state state;
	bool live;
	bool libpq;		/* maps a libpq that is probed */
	bool ld_changed;	/* its dynamic linker loaded something since it was last scanned */
	uint64_t ld_notice_ns;	/* when it last told so (CLOCK_MONOTONIC) */
	uint64_t ahead_at;	/* a child without libpq: probe it ahead then, unless it execs first */
	uint64_t scanned_ns;	/* when its mappings were last looked through for libpq */
	bool watched;		/* its dynamic linker's notices bring it to be scanned */
	uint64_t dead_ns;	/* when it exited: the slot is freed FREE_AFTER_NS later */
	uint64_t last_try_ns;
	char comm[16];
	struct py_target py;
};

struct profiler {
	struct profiler_opts opts;
	struct profile_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link **links;
	int nlinks;
	struct stack_agg *stacks;
	struct symbolizer *sym;
	struct tproc *procs;	/* open addressing on pid, max_procs slots */
	uint32_t max_procs;
	struct profiler_stats st;
	struct sqltrace *sql;
	struct httptrace *http;
	struct funcs *funcs;
	struct query_cache *qcache;	/* statements' flame stacks and request ids */
	uint64_t last_rescan_ns;
	bool ld_changed;	/* some tproc has ld_changed set */
	unsigned ahead_pending;	/* tprocs with ahead_at set */
	uint64_t sample_weight;	/* per CPU sample: 1, or microseconds with sql_in_flame */
	struct { uint32_t tid; char comm[16]; } comms[TID_COMMS];
	char names[MAX_SQL_FRAMES_P][FRAME_LEN];	/* frame names being built */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint32_t tproc_home(const struct profiler *p, pid_t pid)
{
	return ((uint32_t)pid * 2654435761u) % p->max_procs;
}

static struct tproc *tproc_get(struct profiler *p, pid_t pid, bool create)
{
	uint32_t i = tproc_home(p, pid), n;

	for (n = 0; n < p->max_procs; n++, i = (i + 1) % p->max_procs) {
		if (p->procs[i].pid == pid)
			return &p->procs[i];
		if (!p->procs[i].pid) {
			if (!create)
				return NULL;
			memset(&p->procs[i], 0, sizeof(p->procs[i]));
			p->procs[i].pid = pid;
			p->procs[i].live = true;
			proc_comm(pid, p->procs[i].comm, sizeof(p->procs[i].comm));
			p->st.processes++;
			p->st.live++;
			return &p->procs[i];
		}
	}
	if (create)
		p->st.procs_dropped++;
	return NULL;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && pt_verbose < 2)
		return 0;
	if (level == LIBBPF_INFO && !pt_verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* Returns true if tp has a probed libpq now. ahead: sqltrace__scan_pid. */
static bool scan_libpq_ahead(struct profiler *p, struct tproc *tp, bool ahead)
{
	char err[512];
	int ret;

	if (!p->sql || tp->libpq || tp->state != TP_PYTHON || !tp->live)
		return tp->libpq;
	ret = sqltrace__scan_pid(p->sql, tp->pid, ahead, err, sizeof(err));
	if (ret > 0)
		tp->libpq = true;
	else if (ret < 0)
		wlog("%s\n", err);
	tp->scanned_ns = now_ns();
	tp->watched = sqltrace__watching(p->sql, tp->pid);
	return tp->libpq;
}

static bool scan_libpq(struct profiler *p, struct tproc *tp)
{
	return scan_libpq_ahead(p, tp, true);
}

/* --functions: read the interpreter's USDT notes and attach what it has. */
static void funcs_add(struct profiler *p, struct tproc *tp)
{
	char err[512];

	if (p->funcs && funcs__add_pid(p->funcs, tp->pid, &tp->py, err, sizeof(err)))
		wlog("%s\n", err);
}

/*
 * Free tp's slot some time after its process exited (samples of its other threads may still be
 * queued at the exit: they must find it dead, not count it as a new live process), so that a
 * collector left running through months of subprocesses and worker restarts keeps room for new
 * processes, and a reused pid starts afresh. Linear probing: the entries after it that would no
 * longer be found are shifted back into the hole (no tombstones). Pointers into the table are
 * stale afterwards.
 */
static void tproc_free(struct profiler *p, struct tproc *tp)
{
	uint32_t hole = tp - p->procs, j = hole;

	/* Emptied first: in a full table the scan below comes round to the hole and stops there. */
	memset(&p->procs[hole], 0, sizeof(p->procs[hole]));
	for (;;) {
		uint32_t h;
		bool between;

		j = (j + 1) % p->max_procs;
		if (!p->procs[j].pid)
			break;
		h = tproc_home(p, p->procs[j].pid);
		/* Entry j stays if its home lies cyclically in (hole, j]: it is still found from there. */
		between = hole < j ? (hole < h && h <= j) : (hole < h || h <= j);
		if (!between) {
			p->procs[hole] = p->procs[j];
			memset(&p->procs[j], 0, sizeof(p->procs[j]));
			hole = j;
		}
	}
}

/* Inspect tp and, if it is Python, hand its configuration to the BPF side. */
static int tproc_inspect(struct profiler *p, struct tproc *tp, char *err, size_t errlen)
{
	struct pt_proc cfg;
	char msg[512];
	int ret;

	tp->last_try_ns = now_ns();
	ret = py_target__inspect(tp->pid, &tp->py, err ? err : msg, err ? errlen : sizeof(msg));
	if (ret == -EAGAIN)
		return ret;
	if (ret) {
		if (ret != -ESRCH)
			tp->state = TP_NOT_PYTHON;
		vlog("pid %d: %s\n", tp->pid, err ? err : msg);
		return ret;
	}
	py_target__to_bpf(&tp->py, &cfg);
	ret = bpf_map_update_elem(bpf_map__fd(p->skel->maps.procs), &tp->pid, &cfg, BPF_ANY);
	if (ret) {
		ret = -errno;
		if (err)
			snprintf(err, errlen, "cannot configure pid %d: %s", tp->pid, strerror(-ret));
		return ret;
	}
	if (tp->state != TP_PYTHON)
		p->st.python_processes++;
	tp->state = TP_PYTHON;
	scan_libpq(p, tp);
	funcs_add(p, tp);
	vlog("pid %d: CPython %u.%u.%u in %s, _PyRuntime 0x%llx, thread state: %s%s%s\n",
	     tp->pid, tp->py.major, tp->py.minor, tp->py.micro, tp->py.binary,
	     (unsigned long long)tp->py.runtime, tp->py.tstate_how,
	     tp->py.tstate_checked ? "" : " (unchecked)",
	     tp->py.debug_offsets ? ", offsets from _Py_DebugOffsets" : "");
	return 0;
}

static int track_pid(struct profiler *p, pid_t pid, __u32 how)
{
	if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.tracked), &pid, &how, BPF_ANY))
		return -errno;
	return tproc_get(p, pid, true) ? 0 : -E2BIG;
}

static pid_t read_ppid(pid_t pid)
{
	char path[64], buf[512], *rp;
	pid_t ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	/* comm may hold spaces and parentheses: parse after the last ')'. */
	if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')))
		sscanf(rp + 2, "%*c %d", &ppid);
	fclose(f);
	return ppid;
}

/* Add the present descendants of root (new ones arrive through the fork tracepoint). */
static void track_descendants(struct profiler *p, pid_t root)
{
	bool added = true;
	int rounds;

	for (rounds = 0; added && rounds < 64; rounds++) {
		struct dirent *d;
		DIR *dir = opendir("/proc");

		added = false;
		if (!dir)
			return;
		while ((d = readdir(dir))) {
			pid_t pid = atoi(d->d_name), ppid;
			struct tproc *parent;

			if (pid <= 0 || pid == root || tproc_get(p, pid, false))
				continue;
			ppid = read_ppid(pid);
			parent = ppid > 0 ? tproc_get(p, ppid, false) : NULL;
			if (!parent)
				continue;
			if (track_pid(p, pid, PT_TRACK_CHILD) == 0) {
				tproc_inspect(p, tproc_get(p, pid, false), NULL, 0);
				added = true;
			}
		}
		closedir(dir);
	}
}

int profiler__add_root(struct profiler *p, pid_t pid, char *err, size_t errlen)
{
	struct tproc *tp;
	int ret, tries;

	ret = track_pid(p, pid, PT_TRACK_ROOT);
	if (ret) {
		snprintf(err, errlen, "cannot track pid %d: %s", pid, strerror(-ret));
		return ret;
	}
	tp = tproc_get(p, pid, false);
	/* A process started just now may still be initializing its interpreter. */
	for (tries = 0; tries < 20; tries++) {
		ret = tproc_inspect(p, tp, err, errlen);
		if (ret != -EAGAIN)
			break;
		usleep(50000);
	}
	if (ret)
		return ret;
	if (p->opts.follow_children)
		track_descendants(p, pid);
	return 0;
}

static void frame_name(char *buf, size_t size, const struct py_frame_sym *fs)
{
	const char *file = fs->file && fs->file[0] ? fs->file : "?";

	snprintf(buf, size, "%s (%s:%d)", fs->name && fs->name[0] ? fs->name : "?", file, fs->line);
}

static const char *thread_comm(struct profiler *p, uint32_t tid)
{
	return p->comms[tid % TID_COMMS].tid == tid ? p->comms[tid % TID_COMMS].comm : "?";
}

/*
 * Name the frames of a walked stack, root first, into out[] (strings in p->names, valid until
 * the next call). Returns how many.
 */
static size_t stack_frames(struct profiler *p, struct tproc *tp, uint32_t tid, const struct pt_stack *st,
			   const char **out, size_t max)
{
	int i, nframes = st->nframes < PT_MAX_FRAMES ? (int)st->nframes : PT_MAX_FRAMES;
	struct mem_reader mr;
	size_t n = 0;

	if (max < 3)
		return 0;
	max = max < MAX_SQL_FRAMES_P ? max : MAX_SQL_FRAMES_P;
	if (p->opts.threads) {
		snprintf(p->names[n], FRAME_LEN, "[thread %.16s tid=%u%s]", thread_comm(p, tid), tid,
			 tid == (uint32_t)tp->pid ? " main" : "");
		out[n] = p->names[n];
		n++;
	}
	if (st->flags & PT_SF_NO_PROC) {
		p->st.no_python++;
		if (tp->state == TP_UNKNOWN && now_ns() - tp->last_try_ns > RETRY_NS)
			tproc_inspect(p, tp, NULL, 0);
		snprintf(p->names[n], FRAME_LEN, "[%s %.16s]",
			 tp->state == TP_NOT_PYTHON ? "not Python:" : "Python starting:", thread_comm(p, tid));
		out[n] = p->names[n];
		return n + 1;
	}
	if (st->flags & (PT_SF_TRUNCATED | PT_SF_READ_ERR)) {
		p->st.truncated++;
		out[n++] = "[truncated]";
	}
	if ((unsigned)nframes > p->st.max_depth)
		p->st.max_depth = nframes;
	procmem__reader(&mr, tp->pid);
	for (i = nframes - 1; i >= 0 && n < max; i--) {
		struct py_frame_sym fs;
		int ret;

		ret = symbolizer__resolve(p->sym, tp->pid, &tp->py.layout, &mr, tp->py.pycode_type,
					  st->frames[i].code, st->frames[i].instr, &fs);
		/*
		 * The walker skips shim frames by their owner, so a frame whose code is not a code
		 * object (-ENOENT) means freed memory: a process exiting, say. Say so, don't skip.
		 */
		if (ret) {
			p->st.unresolved++;
			out[n++] = "[unknown]";
			continue;
		}
		frame_name(p->names[n], FRAME_LEN, &fs);
		out[n] = p->names[n];
		n++;
	}
	if (nframes == 0 && n < max) {
		if (st->flags & PT_SF_NO_TSTATE)
			p->st.native++;
		out[n++] = "[native]";
	}
	return n;
}

static size_t sql_frames(void *ctx, uint32_t pid, uint32_t tid, const struct pt_stack *st,
			 const char **out, size_t max)
{
	struct profiler *p = ctx;
	struct tproc *tp = tproc_get(p, pid, false);

	return tp ? stack_frames(p, tp, tid, st, out, max) : 0;
}

/*
 * The names of statements' stacks, for sqltrace: naming one anew may change what its stack id
 * stands for, so the statements remembered by stack id are forgotten.
 */
static size_t sql_stack_frames(void *ctx, uint32_t pid, uint32_t tid, const struct pt_stack *st,
			       const char **out, size_t max)
{
	struct profiler *p = ctx;

	if (p->qcache)
		query_cache__invalidate(p->qcache);
	return sql_frames(ctx, pid, tid, st, out, max);
}

/*
 * Each completed statement: to the requests it belongs to and, with --sql-in-flame, its time as
 * a leaf "[sql] pattern" under its stack. frames and call_site are what sqltrace named the
 * statement's (pid, stack id) through sql_stack_frames(), so a statement with the same stack id,
 * frame count and pattern as one remembered in qcache gets the same flame stack and request ids.
 */
static void sql_in_flame(void *ctx, const struct sql_query *q, const char *const *frames, size_t n,
			 const char *pattern, const char *call_site)
{
	struct profiler *p = ctx;
	const char *all[MAX_SQL_FRAMES_P + 1];
	char leaf[FRAME_LEN];
	uint64_t us = (q->end_ns - q->start_ns) / 1000;
	struct query_cache_val *m = NULL;
	size_t i;
	bool hit;

	if (p->qcache && (p->http || (p->opts.sql_in_flame && us)))
		m = query_cache__get(p->qcache, q->pid, q->stack_id, n, pattern, &hit);
	if (p->http) {
		struct requests *r = httptrace__requests(p->http);

		if (m && !m->req_ids) {
			m->req_pattern = requests__intern(r, pattern);
			m->req_site = requests__intern(r, call_site);
			m->req_ids = true;
		}
		if (m)
			requests__query_ids(r, q->pid, q->tid, q->start_ns, q->end_ns, m->req_pattern, m->req_site);
		else
			requests__query(r, q->pid, q->tid, q->start_ns, q->end_ns, pattern, call_site);
	}
	if (!p->opts.sql_in_flame || !us)
		return;
	if (m && m->flame_id) {
		stack_agg__add_id(p->stacks, m->flame_id, us);
		return;
	}
	for (i = 0; i < n && i < MAX_SQL_FRAMES_P; i++)
		all[i] = frames[i];
	if (!n)
		all[i++] = "[no Python stack]";
	snprintf(leaf, sizeof(leaf), "[sql] %s", pattern);
	all[i++] = leaf;
	stack_agg__add_get_id(p->stacks, all, i, us, m ? &m->flame_id : NULL);
}

static void handle_sample(struct profiler *p, const struct pt_sample *s)
{
	const char *frames[MAX_SQL_FRAMES_P];
	struct tproc *tp;
	size_t n;

	tp = tproc_get(p, s->hdr.pid, true);
	if (!tp)
		return;
	p->comms[s->tid % TID_COMMS].tid = s->tid;
	memcpy(p->comms[s->tid % TID_COMMS].comm, s->comm, sizeof(s->comm));
	n = stack_frames(p, tp, s->tid, &s->stack, frames, MAX_SQL_FRAMES_P);
	if (p->funcs)
		funcs__add_sample(p->funcs, s->hdr.pid, s->tid, frames, n,
				  s->stack.flags & PT_SF_OFFCPU ? s->weight :
				  1000000000ULL / (p->opts.rate_hz ? p->opts.rate_hz : 99),
				  s->stack.flags & PT_SF_OFFCPU);
	if (s->stack.flags & PT_SF_OFFCPU)
		return;	/* wall time for --functions only: flame graphs stay CPU samples */
	if (n && stack_agg__add(p->stacks, frames, n, p->sample_weight) == -E2BIG)
		p->st.stacks_dropped += p->sample_weight;
}

static void handle_proc_event(struct profiler *p, const struct pt_proc_event *e)
{
	struct tproc *tp, *parent;

	switch (e->hdr.type) {
	case PT_EV_FORK:
		tp = tproc_get(p, e->hdr.pid, true);
		parent = tproc_get(p, e->ppid, false);
		if (tp && parent && parent->state == TP_PYTHON) {
			/* The BPF side copied the parent's configuration; so do we. */
			tp->py = parent->py;
			tp->py.pid = e->hdr.pid;
			tp->state = TP_PYTHON;
			p->st.python_processes++;
			funcs_add(p, tp);
			/* Same libpq mappings, but probes are per process: attach the child's now. */
			tp->libpq = false;
			if (parent->libpq)
				scan_libpq(p, tp);
			else if (p->sql) {
				/*
				 * Most children of a process without libpq exec at once (subprocess):
				 * the watch, one link, now; the probes ahead, several, if it does not.
				 */
				if (!scan_libpq_ahead(p, tp, false) && tp->watched) {
					if (!tp->ahead_at)
						p->ahead_pending++;
					tp->ahead_at = now_ns() + AHEAD_DELAY_NS;
				}
			}
		}
		vlog("pid %d: forked from %d\n", e->hdr.pid, e->ppid);
		break;
	case PT_EV_EXEC:
		tp = tproc_get(p, e->hdr.pid, true);
		if (!tp)
			break;
		if (tp->state == TP_PYTHON)
			p->st.python_processes--;
		tp->state = TP_UNKNOWN;
		tp->libpq = false;
		tp->watched = false;
		tp->ahead_at = 0;
		symbolizer__forget(p->sym, e->hdr.pid);
		if (p->funcs)
			funcs__forget_pid(p->funcs, e->hdr.pid);
		if (p->sql)
			sqltrace__forget_pid(p->sql, e->hdr.pid);
		proc_comm(tp->pid, tp->comm, sizeof(tp->comm));
		vlog("pid %d: exec %s\n", e->hdr.pid, tp->comm);
		tproc_inspect(p, tp, NULL, 0);
		break;
	case PT_EV_EXIT:
		tp = tproc_get(p, e->hdr.pid, false);
		if (tp && tp->live) {
			tp->live = false;
			tp->ahead_at = 0;
			p->st.live--;
		}
		if (p->sql)
			sqltrace__forget_pid(p->sql, e->hdr.pid);
		if (p->http)
			httptrace__forget_pid(p->http, e->hdr.pid);
		if (p->funcs)
			funcs__exit_pid(p->funcs, e->hdr.pid);
		if (tp && !tp->dead_ns)
			tp->dead_ns = now_ns();
		vlog("pid %d: exited\n", e->hdr.pid);
		break;
	}
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct pt_event_hdr *h = data;
	struct profiler *p = ctx;

	if (size < sizeof(*h))
		return 0;
	if (h->type == PT_EV_SAMPLE && size >= offsetof(struct pt_sample, stack.frames))
		handle_sample(p, data);
	else if (h->type >= PT_EV_FUNC_CALL && h->type <= PT_EV_FUNC_LAST) {
		if (p->funcs)
			funcs__handle(p->funcs, data, size);
	}
	else if (h->type >= PT_EV_HTTP_REQ && h->type <= PT_EV_HTTP_LAST) {
		if (p->http)
			httptrace__handle(p->http, data, size);
	}
	else if (h->type == PT_EV_SQL_DLOPEN && size >= sizeof(struct sql_result)) {
		struct tproc *tp = tproc_get(p, h->pid, false);

		/* Scanned once the ring buffer is drained: a dlopen brings two of these. */
		if (tp && !tp->libpq) {
			tp->ld_notice_ns = ((const struct sql_result *)data)->ts;
			tp->ld_changed = true;
			p->ld_changed = true;
		}
	}
	else if (h->type >= PT_EV_SQL_SEND && p->sql)
		sqltrace__handle(p->sql, data, size);
	else if (h->type >= PT_EV_EXEC && h->type <= PT_EV_EXIT && size >= sizeof(struct pt_proc_event))
		handle_proc_event(p, data);
	return 0;
}

struct profiler *profiler__new(const struct profiler_opts *opts, char *err, size_t errlen)
{
	struct profiler *p = calloc(1, sizeof(*p));
	int ret;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->opts = *opts;
	p->max_procs = getenv("PYTRACE_MAX_PROCS") ? strtoul(getenv("PYTRACE_MAX_PROCS"), NULL, 10) : MAX_PROCS;
	if (p->max_procs < 16 || p->max_procs > 1U << 22)
		p->max_procs = MAX_PROCS;
	p->procs = calloc(p->max_procs, sizeof(*p->procs));
	p->stacks = stack_agg__new(opts->max_stacks);
	p->sym = symbolizer__new(0);
	if (!p->procs || !p->stacks || !p->sym) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	libbpf_set_print(libbpf_print);
	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = opts->btf_path);

	p->skel = profile_bpf__open_opts(&oo);
	if (!p->skel) {
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(errno));
		goto fail;
	}
	p->skel->rodata->follow_children = opts->follow_children;
	p->skel->rodata->offcpu = opts->offcpu;
	bpf_program__set_autoload(p->skel->progs.offcpu_switch, opts->offcpu);
	ret = profile_bpf__load(p->skel);
	if (ret) {
		snprintf(err, errlen, "cannot load the BPF programs: %s%s", strerror(-ret),
			 pt_verbose ? "" : " (run with -v for the verifier's log)");
		goto fail;
	}
	p->sample_weight = opts->sql_in_flame ? 1000000 / (opts->rate_hz ? opts->rate_hz : 99) : 1;
	if (opts->sql) {
		struct sqltrace_shared sh = {
			.procs = p->skel->maps.procs, .tracked = p->skel->maps.tracked,
			.counters = p->skel->maps.counters, .events = p->skel->maps.events,
			.frames = sql_stack_frames, .on_query = sql_in_flame, .ctx = p,
		};

		p->qcache = query_cache__new(0);
		p->sql = sqltrace__new(&opts->sql_opts, &sh, err, errlen);
		if (!p->sql || !p->qcache) {
			if (p->sql)
				snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	if (opts->http) {
		struct httptrace_shared hs = {
			.procs = p->skel->maps.procs, .tracked = p->skel->maps.tracked,
			.counters = p->skel->maps.counters, .events = p->skel->maps.events,
		};

		p->http = httptrace__new(&opts->http_opts, &hs, err, errlen);
		if (!p->http)
			goto fail;
	}
	if (opts->funcs) {
		struct funcs_shared fs = {
			.procs = p->skel->maps.procs, .tracked = p->skel->maps.tracked,
			.counters = p->skel->maps.counters, .events = p->skel->maps.events,
			.frames = sql_frames, .ctx = p,
		};

		p->funcs = funcs__new(&opts->funcs_opts, &fs, err, errlen);
		if (!p->funcs)
			goto fail;
	}
	p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.events), handle_event, p, NULL);
	if (!p->rb) {
		snprintf(err, errlen, "cannot create the ring buffer: %s", strerror(errno));
		goto fail;
	}
	return p;
fail:
	profiler__free(p);
	return NULL;
}

int profiler__attach(struct profiler *p, char *err, size_t errlen)
{
	int ncpus = libbpf_num_possible_cpus(), cpu, fd, ret;
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = p->opts.rate_hz,
	};

	ret = profile_bpf__attach(p->skel);
	if (ret) {
		snprintf(err, errlen, "cannot attach the process tracepoints: %s", strerror(-ret));
		return ret;
	}
	if (p->http) {
		ret = httptrace__attach(p->http, err, errlen);
		if (ret)
			return ret;
	}
	if (!p->opts.sample)
		return 0;
	if (ncpus <= 0) {
		snprintf(err, errlen, "cannot count CPUs: %s", strerror(-ncpus));
		return ncpus;
	}
	p->links = calloc(ncpus, sizeof(*p->links));
	if (!p->links)
		return -ENOMEM;
	for (cpu = 0; cpu < ncpus; cpu++) {
		fd = syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0) {
			if (errno == ENODEV)
				continue;	/* possible but offline CPU */
			ret = -errno;
			snprintf(err, errlen, "cannot open a CPU-clock perf event on CPU %d: %s", cpu, strerror(errno));
			return ret;
		}
		p->links[p->nlinks] = bpf_program__attach_perf_event(p->skel->progs.sample_stack, fd);
		if (!p->links[p->nlinks]) {
			ret = -errno;
			close(fd);
			snprintf(err, errlen, "cannot attach the sampler on CPU %d: %s", cpu, strerror(-ret));
			return ret;
		}
		p->nlinks++;
	}
	return 0;
}

/*
 * Drivers are imported lazily: look again for libpq in Python processes that had none. Every
 * RESCAN_NS, also free the slots of processes long gone.
 */
static void rescan_libpq(struct profiler *p)
{
	uint64_t now = now_ns();
	int i;

	if (p->sql && p->ld_changed) {
		p->ld_changed = false;
		for (i = 0; i < (int)p->max_procs; i++) {
			struct tproc *tp = &p->procs[i];

			if (tp->pid && tp->ld_changed) {
				tp->ld_changed = false;
				if (scan_libpq(p, tp))
					vlog("pid %d: libpq found %.1f ms after its dynamic linker's last notice\n", tp->pid,
					     (now_ns() - tp->ld_notice_ns) / 1e6);
			}
		}
	}
	if (p->sql && p->ahead_pending) {
		unsigned left = 0;

		for (i = 0; i < (int)p->max_procs; i++) {
			struct tproc *tp = &p->procs[i];

			if (!tp->ahead_at)
				continue;
			if (now < tp->ahead_at) {
				left++;
				continue;
			}
			tp->ahead_at = 0;
			if (tp->pid && tp->live && tp->state == TP_PYTHON && !tp->libpq)
				sqltrace__probe_ahead(p->sql, tp->pid);
		}
		p->ahead_pending = left;
	}
	if (now - p->last_rescan_ns < RESCAN_NS)
		return;
	p->last_rescan_ns = now;
	for (i = 0; i < (int)p->max_procs; i++) {
		struct tproc *tp = &p->procs[i];

		if (tp->pid && tp->dead_ns && now - tp->dead_ns > FREE_AFTER_NS) {
			tproc_free(p, tp);	/* an entry shifted into i waits for the next round */
			continue;
		}
		if (!p->sql || !tp->pid || !tp->live || tp->libpq)
			continue;
		/* A watched process is scanned on its dynamic linker's notice: now and then will do. */
		if (tp->watched && now - tp->scanned_ns < WATCHED_RESCAN_NS)
			continue;
		scan_libpq(p, tp);
	}
	if (p->sql)
		sqltrace__tick(p->sql, now);
}

int profiler__poll(struct profiler *p, int timeout_ms)
{
	int ret = ring_buffer__poll(p->rb, timeout_ms);

	rescan_libpq(p);
	if (p->http)
		httptrace__tick(p->http);
	/* Samples are queued without a wakeup to keep the collector idle: take them now. */
	if (ret >= 0) {
		int more = ring_buffer__consume(p->rb);

		if (more > 0)
			ret += more;
	}
	return ret == -EINTR ? 0 : ret;
}

void profiler__drain(struct profiler *p)
{
	ring_buffer__consume(p->rb);
	if (p->http)
		httptrace__flush(p->http);
}

struct stack_agg *profiler__stacks(struct profiler *p)
{
	return p->stacks;
}

struct sqltrace *profiler__sql(struct profiler *p)
{
	return p->sql;
}

struct funcs *profiler__funcs(struct profiler *p)
{
	return p->funcs;
}

struct httptrace *profiler__http(struct profiler *p)
{
	return p->http;
}

void profiler__stats(struct profiler *p, struct profiler_stats *st)
{
	__u64 vals[256], sum[PT_CNT_MAX] = {};
	int ncpus = libbpf_num_possible_cpus(), i, c;
	__u32 key;

	for (key = 0; key < PT_CNT_MAX && ncpus > 0 && ncpus <= 256; key++) {
		if (bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.counters), &key, vals))
			continue;
		for (c = 0; c < ncpus; c++)
			sum[key] += vals[c];
	}
	(void)i;
	p->st.samples = sum[PT_CNT_SAMPLES];
	p->st.lost = sum[PT_CNT_LOST];
	p->st.proc_lost = sum[PT_CNT_PROC_LOST];
	p->st.stacks_dropped = stack_agg__dropped(p->stacks);
	*st = p->st;
}

void profiler__describe(struct profiler *p, FILE *f)
{
	int i;

	for (i = 0; i < (int)p->max_procs; i++) {
		const struct tproc *tp = &p->procs[i];

		if (!tp->pid || tp->state != TP_PYTHON)
			continue;
		fprintf(f, "  pid %d (%s): CPython %u.%u in %s, offsets: %s, stacks: walked in BPF\n",
			tp->pid, tp->comm, tp->py.major, tp->py.minor, tp->py.binary,
			tp->py.debug_offsets ? "_Py_DebugOffsets" : "built-in table");
	}
}

void profiler__free(struct profiler *p)
{
	int i;

	if (!p)
		return;
	for (i = 0; i < p->nlinks; i++)
		bpf_link__destroy(p->links[i]);
	free(p->links);
	ring_buffer__free(p->rb);
	sqltrace__free(p->sql);
	query_cache__free(p->qcache);
	funcs__free(p->funcs);
	httptrace__free(p->http);
	profile_bpf__destroy(p->skel);
	symbolizer__free(p->sym);
	stack_agg__free(p->stacks);
	free(p->procs);
	free(p);
}
