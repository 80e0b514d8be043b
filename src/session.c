// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "jsonw.h"
#include "links.h"
#include "pystacks.h"
#include "session.h"
#include "session.skel.h"
#include "sqljoin.h"
#include "util.h"
#include "uvwrite.h"

#define TICK_NS (100 * 1000000ULL)	/* capabilities' housekeeping at most this often */
#define PROCS_TICK_NS (500 * 1000000ULL)	/* exited processes' records freed this often */

/*
 * The capabilities, in the order they are opened, ticked and reported (the JSON report's
 * sections follow it). A capability may use those before it (session__cap).
 */
static const struct capability *const capabilities[] = {
	&sampler_capability,
	&sqltrace_capability,
	&pgwiretrace_capability,	/* statements from the wire: into SQL's statistics */
	&httptrace_capability,
	&funcs_capability,
	&sqljoin_capability,	/* statements to requests and [sql] leaves: after SQL, HTTP and the sampler */
	&collector_capability,	/* metrics, profile windows and the endpoint: after everything it listens to */
};

#define NCAPS ARRAY_SIZE(capabilities)

/* A capability's object loading in a thread of its own (session__load_later). */
struct late_load {
	pthread_t thread;
	struct bpf_object_skeleton *skel;
	int ret;
	int (*done)(void *ctx, int ret, char *err, size_t errlen);
	void *ctx;
};

#define MAX_LATE_LOADS 4

struct session {
	struct session_opts opts;
	struct late_load loads[MAX_LATE_LOADS];
	unsigned nloads;		/* started, not waited for yet */
	struct session_bpf *skel;
	struct session_maps maps;
	struct ring_buffer *rb;
	struct procs *procs;
	struct pystacks *pystacks;
	struct uvwrite *uv;		/* uvloop's transport.write, for the capabilities that probe it */
	void *caps[NCAPS];		/* each capability's state, NULL when not enabled */
	/* event type -> index in capabilities[] + 1 (0: nobody) */
	unsigned char owner[PT_EV_TYPES];
	uint64_t unowned;
	uint64_t last_tick_ns, last_procs_tick_ns;
	bool procs_attached;	/* the process tracepoints (session__add_host attaches them early) */
	uint64_t *tracked_bits;	/* maps.tracked_bits, mapped: procs sets and clears its pids' bits */
	uint64_t holds;		/* PT_EV_HELD events: stops of the launched command's processes */
};

#define TRACKED_BITS_SIZE ((size_t)PT_PID_WORDS * sizeof(uint64_t))

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && pt_verbose < 2)
		return 0;
	if (level == LIBBPF_INFO && !pt_verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

int session_maps__reuse(const struct session_maps *m, struct bpf_object *obj, char *err, size_t errlen)
{
	const struct { const char *name; struct bpf_map *shared; } maps[] = {
		{ "procs", m->procs }, { "tracked", m->tracked }, { "counters", m->counters }, { "events", m->events },
		{ "pq_current", m->pq_current }, { "tracked_bits", m->tracked_bits },
		{ "pg_conns", m->pg_conns },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(maps); i++) {
		struct bpf_map *own = bpf_object__find_map_by_name(obj, maps[i].name);

		if (!own || !maps[i].shared)
			continue;	/* an object that does not use this one, or a caller without it */
		if (bpf_map__reuse_fd(own, bpf_map__fd(maps[i].shared))) {
			int ret = -errno;

			snprintf(err, errlen, "cannot share the %s map with the BPF object %s: %s", maps[i].name,
				 bpf_object__name(obj), strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int session_maps__share_all(struct bpf_object *obj, const struct bpf_object *src, char *err, size_t errlen)
{
	struct bpf_map *own;

	bpf_object__for_each_map(own, obj) {
		const char *name = bpf_map__name(own);
		const struct bpf_map *theirs = bpf_object__find_map_by_name(src, name);
		int ret;

		if (!theirs || bpf_map__fd(theirs) < 0) {
			snprintf(err, errlen, "BPF object %s: no loaded map %s to share", bpf_object__name(obj), name);
			return -ENOENT;
		}
		/* the definition follows the fd's (libbpf takes it from the kernel), whatever was resized */
		if (bpf_map__reuse_fd(own, bpf_map__fd(theirs))) {
			ret = -errno;
			snprintf(err, errlen, "BPF object %s: cannot share the map %s: %s", bpf_object__name(obj), name,
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Process hooks: the stack namer first, then every capability in order. */
#define FOR_EACH_CAP(s, i) for (i = 0; i < NCAPS; i++) if ((s)->caps[i])

static void sess_on_python(void *ctx, const struct proc *p)
{
	struct session *s = ctx;
	size_t i;

	uvwrite__add(s->uv, (pid_t)p->pid);
	FOR_EACH_CAP(s, i)
		if (capabilities[i]->on_python)
			capabilities[i]->on_python(s->caps[i], p);
}

static void sess_on_fork(void *ctx, const struct proc *child, const struct proc *parent)
{
	struct session *s = ctx;
	size_t i;

	uvwrite__add(s->uv, (pid_t)child->pid);
	FOR_EACH_CAP(s, i)
		if (capabilities[i]->on_fork)
			capabilities[i]->on_fork(s->caps[i], child, parent);
}

static void sess_on_exec(void *ctx, pid_t pid)
{
	struct session *s = ctx;
	size_t i;

	pystacks__forget(s->pystacks, pid);
	uvwrite__forget(s->uv, pid);
	FOR_EACH_CAP(s, i)
		if (capabilities[i]->on_exec)
			capabilities[i]->on_exec(s->caps[i], pid);
}

static void sess_on_exit(void *ctx, pid_t pid)
{
	struct session *s = ctx;
	size_t i;

	/* its code objects' names: a collector through months of worker churn keeps none of them */
	pystacks__forget(s->pystacks, pid);
	uvwrite__forget(s->uv, pid);
	FOR_EACH_CAP(s, i)
		if (capabilities[i]->on_exit)
			capabilities[i]->on_exit(s->caps[i], pid);
}

/*
 * A process of the launched command's tree stopped at its first module load (PT_EV_HELD): find
 * its interpreter now, then let it go on. Until the verdict is in (an interpreter still
 * starting), it stops again at its next module load; a verdict (Python, or not) ends its hold
 * until its next exec.
 */
static void hold_event(struct session *s, pid_t pid)
{
	uint64_t t0 = mono_ns();
	bool settled = procs__settle(s->procs, pid);

	if (settled)
		bpf_map__delete_elem(s->skel->maps.held, &(__u32){ pid }, sizeof(__u32), 0);
	if (kill(pid, SIGCONT) && errno != ESRCH)
		fprintf(stderr, "warning: cannot let pid %d go on (SIGCONT): %s\n", pid, strerror(errno));
	s->holds++;
	if (pt_verbose)
		fprintf(stderr, "pid %d: held at its first module load for %.1f ms (%s)\n", pid,
			(mono_ns() - t0) / 1e6, settled ? "interpreter found, or not Python" : "not ready yet");
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct pt_event_hdr *h = data;
	struct session *s = ctx;
	unsigned who;

	if (size < sizeof(*h))
		return 0;
	if (h->type == PT_EV_HELD) {
		hold_event(s, h->pid);
		return 0;
	}
	if (h->type >= PT_EV_PROC_FIRST && h->type <= PT_EV_PROC_LAST) {
		procs__handle(s->procs, data, size);
		return 0;
	}
	who = h->type < PT_EV_TYPES ? s->owner[h->type] : 0;
	if (who && s->caps[who - 1])
		capabilities[who - 1]->on_event(s->caps[who - 1], data, size);
	else if (!who)
		s->unowned++;
	return 0;
}

/* Give each capability its event range; two owners of one type is a bug: refuse to start. */
static int claim_ranges(struct session *s, char *err, size_t errlen)
{
	size_t i;
	unsigned t;

	for (t = PT_EV_PROC_FIRST; t <= PT_EV_PROC_LAST; t++)
		s->owner[t] = 0xff;	/* the process table's */
	for (i = 0; i < NCAPS; i++) {
		const struct capability *c = capabilities[i];

		if (!c->ev_first)
			continue;
		if (c->ev_first > c->ev_last || c->ev_last >= PT_EV_TYPES || !c->on_event) {
			snprintf(err, errlen, "capability %s: bad event range %u-%u", c->name, c->ev_first, c->ev_last);
			return -EINVAL;
		}
		for (t = c->ev_first; t <= c->ev_last; t++) {
			if (s->owner[t]) {
				snprintf(err, errlen, "capability %s: event type %u is taken", c->name, t);
				return -EINVAL;
			}
			s->owner[t] = i + 1;
		}
	}
	for (t = PT_EV_PROC_FIRST; t <= PT_EV_PROC_LAST; t++)
		s->owner[t] = 0;
	return 0;
}

static void *late_load_run(void *arg)
{
	struct late_load *l = arg;

	l->ret = bpf_object__load_skeleton(l->skel);
	return NULL;
}

int session__load_later(struct session *s, struct bpf_object_skeleton *skel,
			int (*done)(void *ctx, int ret, char *err, size_t errlen), void *ctx)
{
	struct late_load *l;
	int ret;

	if (s->nloads >= MAX_LATE_LOADS)
		return -ENOSPC;
	l = &s->loads[s->nloads];
	*l = (struct late_load){ .skel = skel, .done = done, .ctx = ctx };
	ret = pthread_create(&l->thread, NULL, late_load_run, l);
	if (ret)
		return -ret;
	s->nloads++;
	return 0;
}

/*
 * Wait for the loads started (in their order), each then finished by its capability; the first
 * failure's message in err. All are waited for, whatever fails: none is left running.
 */
static int wait_loads(struct session *s, char *err, size_t errlen)
{
	int first = 0;

	for (unsigned i = 0; i < s->nloads; i++) {
		struct late_load *l = &s->loads[i];
		char msg[512] = "";
		int ret;

		pthread_join(l->thread, NULL);
		ret = l->done(l->ctx, l->ret, msg, sizeof(msg));
		if (ret && !first) {
			first = ret;
			snprintf(err, errlen, "%s", msg[0] ? msg : strerror(ret < 0 ? -ret : ret));
		}
	}
	s->nloads = 0;
	return first;
}

struct session *session__new(const struct session_opts *o, char *err, size_t errlen)
{
	struct session *s = calloc(1, sizeof(*s));
	struct procs_opts po = {
		.max_procs = o->max_procs, .follow_children = o->follow_children || o->host_wide,
		.host_wide = o->host_wide, .filter = o->filter, .service_name = o->service_name,
	};
	size_t i;
	int ret;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->opts = *o;
	err[0] = 0;
	if (claim_ranges(s, err, errlen))
		goto fail;
	libbpf_set_print(libbpf_print);
	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = o->btf_path);

	s->skel = session_bpf__open_opts(&oo);
	if (!s->skel) {
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(errno));
		goto fail;
	}
	s->skel->rodata->follow_children = po.follow_children;
	s->skel->rodata->host_wide = o->host_wide;
	s->skel->rodata->self_tgid = getpid();
	s->skel->rodata->hold_execs = o->hold_pid > 0 && !o->host_wide;
	if (!s->skel->rodata->hold_execs)
		bpf_program__set_autoload(s->skel->progs.hold_at_import, false);
	ret = session_bpf__load(s->skel);
	if (ret) {
		snprintf(err, errlen, "cannot load the BPF programs: %s%s", strerror(-ret),
			 pt_verbose ? "" : " (run with -v for the verifier's log)");
		goto fail;
	}
	s->maps = (struct session_maps){
		.procs = s->skel->maps.procs, .tracked = s->skel->maps.tracked,
		.counters = s->skel->maps.counters, .events = s->skel->maps.events,
		.pq_current = s->skel->maps.pq_current, .tracked_bits = s->skel->maps.tracked_bits,
		.pg_conns = s->skel->maps.pg_conns,
	};
	s->tracked_bits = mmap(NULL, TRACKED_BITS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			       bpf_map__fd(s->maps.tracked_bits), 0);
	if (s->tracked_bits == MAP_FAILED) {
		s->tracked_bits = NULL;
		snprintf(err, errlen, "cannot map the BPF side's pid bitmap: %s", strerror(errno));
		goto fail;
	}
	po.tracked_bits = s->tracked_bits;
	po.procs_fd = bpf_map__fd(s->maps.procs);
	po.tracked_fd = bpf_map__fd(s->maps.tracked);
	po.listener = (struct procs_listener){
		.on_python = sess_on_python, .on_fork = sess_on_fork, .on_exec = sess_on_exec, .on_exit = sess_on_exit, .ctx = s,
	};
	s->procs = procs__new(&po);
	s->pystacks = s->procs ? pystacks__new(s->procs, o->threads) : NULL;
	s->uv = uvwrite__new(s);
	if (!s->pystacks || !s->uv) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < NCAPS; i++) {
		s->caps[i] = capabilities[i]->open(s, o, err, errlen);
		if (!s->caps[i] && err[0])
			goto fail;
	}
	if (wait_loads(s, err, errlen))
		goto fail;
	s->rb = ring_buffer__new(bpf_map__fd(s->maps.events), handle_event, s, NULL);
	if (!s->rb) {
		snprintf(err, errlen, "cannot create the ring buffer: %s", strerror(errno));
		goto fail;
	}
	return s;
fail:
	if (!err[0])
		snprintf(err, errlen, "out of memory");
	session__free(s);
	return NULL;
}

void session__free(struct session *s)
{
	size_t i;

	if (!s)
		return;
	/* a capability that failed to open after another's load began: that load ends first */
	for (unsigned k = 0; k < s->nloads; k++)
		pthread_join(s->loads[k].thread, NULL);
	s->nloads = 0;
	ring_buffer__free(s->rb);
	/* never leave a process stopped: the holds not ended yet end here */
	if (s->skel && s->skel->rodata->hold_execs) {
		__u32 key, next, *prev = NULL;

		while (!bpf_map__get_next_key(s->skel->maps.held, prev, &next, sizeof(next))) {
			kill((pid_t)next, SIGCONT);
			key = next;
			prev = &key;
		}
	}
	uvwrite__free(s->uv);	/* its probes, before the capabilities' programs */
	/* in reverse: a capability may hold on to those before it */
	for (i = NCAPS; i > 0; i--)
		if (s->caps[i - 1])
			capabilities[i - 1]->free(s->caps[i - 1]);
	if (s->skel)
		links__detach_skeleton(s->skel->skeleton);
	session_bpf__destroy(s->skel);
	pystacks__free(s->pystacks);
	procs__free(s->procs);
	if (s->tracked_bits)
		munmap(s->tracked_bits, TRACKED_BITS_SIZE);
	free(s);
}

static int attach_procs(struct session *s, char *err, size_t errlen);

/*
 * The fork, exec and exit hooks first: a child forked while the others attach (seconds on a busy
 * host) is then followed, not lost between the scan of the descendants and the attach.
 */
int session__add_root(struct session *s, pid_t pid, char *err, size_t errlen)
{
	int ret = attach_procs(s, err, errlen);

	return ret ? ret : procs__add_root(s->procs, pid, err, errlen);
}

int session__add_launched(struct session *s, pid_t pid, char *err, size_t errlen)
{
	return procs__add_launched(s->procs, pid, err, errlen);
}

static int attach_procs(struct session *s, char *err, size_t errlen)
{
	int ret;

	if (s->procs_attached)
		return 0;
	ret = session_bpf__attach(s->skel);
	if (ret) {
		snprintf(err, errlen, "cannot attach the process tracepoints: %s", strerror(-ret));
		return ret;
	}
	s->procs_attached = true;
	return 0;
}

int session__add_host(struct session *s, char *err, size_t errlen)
{
	int ret;

	if (!s->opts.host_wide) {
		snprintf(err, errlen, "host-wide mode was not asked for when the session was made (opts.host_wide)");
		return -EINVAL;
	}
	/* The exec hook first: a process that starts during the scan is then seen one way or the other. */
	ret = attach_procs(s, err, errlen);
	if (ret)
		return ret;
	return procs__add_host(s->procs, err, errlen);
}

bool session__host_wide(const struct session *s)
{
	return s->opts.host_wide;
}

int session__attach(struct session *s, char *err, size_t errlen)
{
	size_t i;
	int ret;

	ret = attach_procs(s, err, errlen);
	if (ret)
		return ret;
	FOR_EACH_CAP(s, i) {
		if (capabilities[i]->attach && (ret = capabilities[i]->attach(s->caps[i], err, errlen)))
			return ret;
	}
	/*
	 * uvloop's probes on the processes found running, before the caller says it traces: their
	 * programs are loaded by the first that imports uvloop (uvwrite.h), which takes a fifth of a
	 * second, in which what the loop writes would keep no task.
	 */
	uvwrite__tick(s->uv, mono_ns());
	return 0;
}

int session__poll(struct session *s, int timeout_ms)
{
	int ret;
	uint64_t now;
	size_t i;

	/* under --pid or a command: a process waiting for its interpreter is looked at again within ms */
	if (!s->opts.host_wide && procs__any_pending(s->procs) && timeout_ms > 5)
		timeout_ms = 5;
	ret = ring_buffer__poll(s->rb, timeout_ms);
	now = mono_ns();

	FOR_EACH_CAP(s, i)
		if (capabilities[i]->tick)
			capabilities[i]->tick(s->caps[i], now);
	uvwrite__tick(s->uv, now);
	procs__pending(s->procs, now);
	if (now - s->last_procs_tick_ns >= PROCS_TICK_NS) {
		s->last_procs_tick_ns = now;
		procs__tick(s->procs, now);
	}
	/* Samples are queued without a wakeup to keep the collector idle: take them now. */
	if (ret >= 0) {
		int more = ring_buffer__consume(s->rb);

		if (more > 0)
			ret += more;
	}
	return ret == -EINTR ? 0 : ret;
}

void session__drain(struct session *s)
{
	size_t i;

	ring_buffer__consume(s->rb);
	FOR_EACH_CAP(s, i)
		if (capabilities[i]->flush)
			capabilities[i]->flush(s->caps[i]);
}

unsigned session__live(const struct session *s)
{
	struct procs_stats st;

	procs__stats(s->procs, &st);
	return st.live;
}

const struct session_maps *session__maps(const struct session *s)
{
	return &s->maps;
}

struct procs *session__procs(struct session *s)
{
	return s->procs;
}

struct uvwrite *session__uvwrite(struct session *s)
{
	return s->uv;
}

struct pystacks *session__pystacks(struct session *s)
{
	return s->pystacks;
}

struct bpf_object *session__obj(struct session *s)
{
	return s->skel->obj;
}

void *session__cap(struct session *s, const char *name)
{
	size_t i;

	FOR_EACH_CAP(s, i)
		if (!strcmp(capabilities[i]->name, name))
			return s->caps[i];
	return NULL;
}

uint64_t session__counter(const struct session *s, unsigned which)
{
	__u64 vals[256], sum = 0;
	int ncpus = libbpf_num_possible_cpus(), c;
	__u32 key = which;

	if (which >= PT_CNT_MAX || ncpus <= 0 || ncpus > 256 ||
	    bpf_map_lookup_elem(bpf_map__fd(s->maps.counters), &key, vals))
		return 0;
	for (c = 0; c < ncpus; c++)
		sum += vals[c];
	return sum;
}

uint64_t session__unowned(const struct session *s)
{
	return s->unowned;
}

void session__describe(const struct session *s, FILE *f)
{
	procs__describe(s->procs, f);
}

void session__write_json(struct session *s, struct jsonw *w)
{
	size_t i;

	procs__write_json(s->procs, w);
	pystacks__write_json(s->pystacks, w);
	FOR_EACH_CAP(s, i)
		if (capabilities[i]->write_json)
			capabilities[i]->write_json(s->caps[i], w);
}

void session__reset(struct session *s)
{
	size_t i;

	FOR_EACH_CAP(s, i)
		if (capabilities[i]->reset)
			capabilities[i]->reset(s->caps[i]);
}

void session__summary(struct session *s, FILE *f)
{
	struct procs_stats st;
	size_t i;

	procs__stats(s->procs, &st);
	fprintf(f, "%u process%s traced (%u Python).", st.processes, st.processes == 1 ? "" : "es", st.python);
	if (st.dropped)
		fprintf(f, " %llu process events not followed: too many processes alive at once.",
			(unsigned long long)st.dropped);
	fputc('\n', f);
	FOR_EACH_CAP(s, i)
		if (capabilities[i]->summary)
			capabilities[i]->summary(s->caps[i], f);
	if (s->unowned)
		wlog("%llu events of unknown types were dropped (a BPF object from another build?)\n",
		     (unsigned long long)s->unowned);
}

void session__report(struct session *s, FILE *f, unsigned written)
{
	size_t i;

	if (s->opts.host_wide)
		procs__report(s->procs, f);
	FOR_EACH_CAP(s, i)
		if (capabilities[i]->report)
			capabilities[i]->report(s->caps[i], f, written);
}

bool session__collected(struct session *s)
{
	size_t i;

	FOR_EACH_CAP(s, i)
		if (capabilities[i]->collected && capabilities[i]->collected(s->caps[i]))
			return true;
	return false;
}
