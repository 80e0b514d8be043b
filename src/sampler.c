// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <time.h>
#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "idletab.h"
#include "links.h"
#include "jsonw.h"
#include "procs.h"
#include "pystacks.h"
#include "report.h"
#include "sampler.h"
#include "sampler.skel.h"
#include "session.h"
#include "stacks.h"
#include "util.h"

#define MAX_LISTENERS 4

struct sampler {
	struct session *session;
	struct sampler_opts o;
	struct sampler_bpf *skel;
	struct bpf_link **links;
	int nlinks;
	struct stack_agg *stacks;
	struct pystacks *names;
	uint64_t weight;	/* per CPU sample: 1, or microseconds with us_weights */
	uint64_t handled;	/* on-CPU samples that reached the collector */
	struct idletab *idle;	/* --idle: BPF keys -> stacks */
	uint64_t idle_read_ns;	/* CLOCK_MONOTONIC of the last read of idle_agg */
	uint64_t idle_us;
	bool sql_leaves;	/* statements are [sql] leaves (sqljoin.h): their waits are there already */
	uint64_t idle_sql_us;	/* off-CPU waits on PostgreSQL left to those leaves */
	struct { sampler_listener_fn fn; void *ctx; } listeners[MAX_LISTENERS];
	int nlisteners;
	struct sampler_stats st;
};

static void sampler_free(void *c)
{
	struct sampler *s = c;

	if (!s)
		return;
	if (s->links)
		links__destroy(s->links, s->nlinks);
	free(s->links);
	if (s->skel)
		links__detach_skeleton(s->skel->skeleton);
	sampler_bpf__destroy(s->skel);
	stack_agg__free(s->stacks);
	idletab__free(s->idle);
	free(s);
}

static int sampler_loaded(void *ctx, int ret, char *err, size_t errlen)
{
	(void)ctx;
	if (ret)
		snprintf(err, errlen, "cannot load the sampler's BPF programs: %s%s", strerror(-ret),
			 pt_verbose ? "" : " (run with -v for the verifier's log)");
	return ret;
}

/*
 * Always opened: its stacks are the flame-graph outputs' input, which --sql-in-flame also feeds.
 * The BPF object is loaded only when sampling is on.
 */
static void *sampler_open(struct session *ss, const struct session_opts *so, char *err, size_t errlen)
{
	struct sampler *s = calloc(1, sizeof(*s));
	int ret;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->session = ss;
	s->o = so->sampler;
	if (!s->o.rate_hz)
		s->o.rate_hz = 99;
	s->names = session__pystacks(ss);
	s->sql_leaves = so->sql.enabled && so->sql.in_flame;
	s->stacks = stack_agg__new(s->o.max_stacks);
	if (!s->stacks) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (s->o.idle)
		s->o.us_weights = true;
	s->weight = s->o.us_weights ? 1000000 / s->o.rate_hz : 1;
	if (!s->o.enabled)
		return s;
	if (s->o.idle && !(s->idle = idletab__new())) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = so->btf_path);
	s->skel = sampler_bpf__open_opts(&oo);
	if (!s->skel) {
		snprintf(err, errlen, "cannot open the sampler's BPF object: %s", strerror(errno));
		goto fail;
	}
	s->skel->rodata->offcpu = s->o.offcpu;
	bpf_program__set_autoload(s->skel->progs.offcpu_switch, s->o.offcpu);
	s->skel->rodata->idle = s->o.idle;
	s->skel->rodata->idle_walks_per_s = s->o.idle_walks_per_s;
	s->skel->rodata->gil_only = s->o.gil;
	bpf_program__set_autoload(s->skel->progs.idle_switch, s->o.idle);
	bpf_program__set_autoload(s->skel->progs.idle_dump, s->o.idle);
	if (session_maps__reuse(session__maps(ss), s->skel->obj, err, errlen))
		goto fail;
	/* verified beside the capabilities opened after this one (session__load_later) */
	if (!session__load_later(ss, s->skel->skeleton, sampler_loaded, s))
		return s;
	ret = sampler_loaded(s, sampler_bpf__load(s->skel), err, errlen);
	if (ret)
		goto fail;
	return s;
fail:
	sampler_free(s);
	return NULL;
}

static int sampler_attach(void *c, char *err, size_t errlen)
{
	struct sampler *s = c;
	int ncpus = libbpf_num_possible_cpus(), cpu, fd, ret;
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = s->o.rate_hz,
	};

	if (!s->o.enabled)
		return 0;
	if (s->o.offcpu) {
		s->links = calloc(1, sizeof(*s->links));
		if (!s->links)
			return -ENOMEM;
		s->links[0] = bpf_program__attach(s->skel->progs.offcpu_switch);
		if (!s->links[0]) {
			ret = -errno;
			snprintf(err, errlen, "cannot attach the off-CPU program: %s", strerror(-ret));
			return ret;
		}
		s->nlinks = 1;
	}
	if (s->o.idle) {
		struct bpf_link **l = realloc(s->links, (s->nlinks + 1) * sizeof(*l));

		if (!l)
			return -ENOMEM;
		s->links = l;
		s->links[s->nlinks] = bpf_program__attach(s->skel->progs.idle_switch);
		if (!s->links[s->nlinks]) {
			ret = -errno;
			snprintf(err, errlen, "cannot attach the off-CPU (--idle) program: %s", strerror(-ret));
			return ret;
		}
		s->nlinks++;
	}
	if (ncpus <= 0) {
		snprintf(err, errlen, "cannot count CPUs: %s", strerror(-ncpus));
		return ncpus;
	}
	s->links = realloc(s->links, (ncpus + s->nlinks) * sizeof(*s->links));
	if (!s->links)
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
		s->links[s->nlinks] = bpf_program__attach_perf_event(s->skel->progs.sample_stack, fd);
		if (!s->links[s->nlinks]) {
			ret = -errno;
			close(fd);
			snprintf(err, errlen, "cannot attach the sampler on CPU %d: %s", cpu, strerror(-ret));
			return ret;
		}
		s->nlinks++;
	}
	return 0;
}

/* A new off-CPU key (PT_SF_IDLE): its stack, with what it waited on as the leaf, weight 0 yet. */
static void idle_announced(struct sampler *s, const struct pt_sample *e, const char **frames, size_t n)
{
	struct pt_idle_key k = { .hash = e->ts, .pid = e->hdr.pid, .tid = e->tid, .reason = (__u32)e->weight };
	size_t id = 0;

	if (!s->idle)
		return;
	if (k.reason == PT_IDLE_SQL && s->sql_leaves) {
		idletab__set(s->idle, &k, 0);	/* the statement's [sql] leaf has this time */
		return;
	}
	frames[n++] = idletab__leaf(k.reason);
	if (stack_agg__add_get_id(s->stacks, frames, n, 0, &id) == -ENOMEM || !id)
		return;
	idletab__set(s->idle, &k, id);
}

static void idle_add(struct sampler *s, size_t id, uint64_t us)
{
	if (!us)
		return;
	if (!id) {
		s->idle_sql_us += us;
		return;
	}
	if (stack_agg__add_id(s->stacks, id, us) == -E2BIG)
		s->st.stacks_dropped += us;
	s->idle_us += us;
}

/* Turn the growth of idle_agg since the last read into microseconds on each key's stack. */
static void idle_read(struct sampler *s)
{
	int fd = bpf_map__fd(s->skel->maps.idle_agg);
	struct pt_idle_key k, next, *prev = NULL;
	struct pt_idle_val v;
	uint64_t us;
	size_t id;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, &v))
			continue;
		if (!idletab__advance(s->idle, &k, v.ns, &id, &us))
			continue;	/* its announcement is still queued */
		idle_add(s, id, us);
	}
}

/*
 * A traced process exited: take what its keys hold, then free them, so that idle_agg (16384
 * keys) does not fill up with the dead in a long trace with worker churn.
 */
static void sampler_on_exit(void *c, pid_t pid)
{
	struct sampler *s = c;
	struct pt_idle_key k, next, *prev = NULL;
	int fd;

	if (!s->idle)
		return;
	idle_read(s);
	fd = bpf_map__fd(s->skel->maps.idle_agg);
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		if (k.pid == (uint32_t)pid && bpf_map_delete_elem(fd, &k) == 0)
			continue;	/* deleted: carry on from the same place */
		prev = &k;
	}
}

static uint64_t mono_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void sampler_tick(void *c, uint64_t now_ns)
{
	struct sampler *s = c;

	if (!s->idle || now_ns - s->idle_read_ns < 1000000000ULL)
		return;
	s->idle_read_ns = now_ns;
	idle_read(s);
}

/*
 * The end: what idle_agg holds now, plus what the threads hold themselves (see idle_switch):
 * their sums not flushed yet and their blocks still open, counted up to now (their switch-in
 * comes after the outputs). They are read by running the iter/task program idle_dump, which
 * writes one struct pt_idle_thread per such thread. bpf_ktime_get_ns() is CLOCK_MONOTONIC.
 */
static void sampler_flush(void *c)
{
	struct sampler *s = c;
	struct pt_idle_thread t[64];
	struct bpf_link *link;
	struct pt_idle_val v;
	uint64_t now, us, add;
	int fd, afd, err;
	ssize_t got;
	size_t id, i;

	if (!s->idle)
		return;
	idle_read(s);
	afd = bpf_map__fd(s->skel->maps.idle_agg);
	link = bpf_program__attach_iter(s->skel->progs.idle_dump, NULL);
	if (!link) {
		err = -errno;
		wlog("--idle: cannot read the threads' own blocked time (%s): the time not yet flushed "
		     "(up to 100 ms a thread) and the blocks still open are missing\n", strerror(-err));
		return;
	}
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		wlog("--idle: cannot read the threads' own blocked time (%s): the time not yet flushed "
		     "(up to 100 ms a thread) and the blocks still open are missing\n", strerror(errno));
		bpf_link__destroy(link);
		return;
	}
	now = mono_now_ns();
	while ((got = read(fd, t, sizeof(t))) > 0) {
		for (i = 0; i < (size_t)got / sizeof(t[0]); i++) {
			add = t[i].acc_ns;
			if (t[i].ts && t[i].ts <= now)
				add += (now - t[i].ts) * (t[i].scale > 1 ? t[i].scale : 1);
			if (!add || bpf_map_lookup_elem(afd, &t[i].key, &v))
				continue;
			if (idletab__advance(s->idle, &t[i].key, v.ns + add, &id, &us))
				idle_add(s, id, us);
		}
	}
	if (got < 0)
		wlog("--idle: reading the threads' own blocked time: %s\n", strerror(errno));
	close(fd);
	bpf_link__destroy(link);
}

/* --gil on a free-threaded build: there is no GIL to hold; its samples are all kept. */
static void sampler_on_python(void *c, const struct proc *p)
{
	struct sampler *s = c;

	if (s->o.gil && p->py.free_threaded)
		wlog("pid %d runs a free-threaded CPython %u.%u: --gil does not apply to it (no GIL); all its samples are kept\n",
		     p->pid, p->py.major, p->py.minor);
	else if (s->o.gil && !p->py.gil)
		wlog("pid %d: the GIL of CPython %u.%u was not found: --gil keeps all its samples\n", p->pid,
		     p->py.major, p->py.minor);
}

static void sampler_event(void *c, const void *data, size_t size)
{
	struct sampler *s = c;
	const struct pt_sample *e = data;
	const char *frames[PYSTACKS_MAX_FRAMES];
	bool offcpu, host = session__host_wide(s->session);
	const struct proc *pr;
	size_t n;
	int i;

	if (size < offsetof(struct pt_sample, stack.frames))
		return;
	/*
	 * Host-wide, only processes known to run Python count: one not inspected yet, or on its way
	 * out of the maps (not Python, filtered), has samples queued that belong to nobody.
	 */
	pr = procs__get(session__procs(s->session), e->hdr.pid, !host);
	if (!pr || pr->state == PROC_FILTERED || (host && pr->state != PROC_PYTHON))
		return;
	offcpu = e->stack.flags & PT_SF_OFFCPU;
	pystacks__set_comm(s->names, e->tid, e->comm);
	if (host) {
		/* the service is the root frame, above --threads' thread frame */
		frames[0] = pr->service;
		n = pystacks__name(s->names, e->hdr.pid, e->tid, &e->stack, frames + 1, PYSTACKS_MAX_FRAMES - 2);
		n = n ? n + 1 : 0;
	} else {
		n = pystacks__name(s->names, e->hdr.pid, e->tid, &e->stack, frames, PYSTACKS_MAX_FRAMES - 1);
	}
	if (e->stack.flags & PT_SF_IDLE) {
		idle_announced(s, e, frames, n);
		return;
	}
	for (i = 0; i < s->nlisteners; i++)
		s->listeners[i].fn(s->listeners[i].ctx, e->hdr.pid, e->tid, frames, n,
				   offcpu ? e->weight : 1000000000ULL / s->o.rate_hz, offcpu);
	if (offcpu)
		return;	/* wall time for the listeners only: flame graphs stay CPU samples */
	s->handled++;
	if (n && stack_agg__add(s->stacks, frames, n, s->weight) == -E2BIG)
		s->st.stacks_dropped += s->weight;
}

void sampler__stats(struct sampler *s, struct sampler_stats *st)
{
	/*
	 * The samples this report is made of; the BPF side's own count also has those still queued
	 * or taken between the last read of the ring buffer and the detach, which no output holds.
	 */
	s->st.samples = s->handled;
	s->st.lost = session__counter(s->session, PT_CNT_LOST);
	s->st.stacks_dropped = stack_agg__dropped(s->stacks);
	s->st.idle_us = s->idle_us;
	s->st.idle_sql_us = s->idle_sql_us;
	s->st.idle_blocks = session__counter(s->session, PT_CNT_IDLE_BLOCKS);
	s->st.idle_dropped = session__counter(s->session, PT_CNT_IDLE_DROPPED);
	s->st.idle_unwalked = session__counter(s->session, PT_CNT_IDLE_UNWALKED);
	s->st.gil_dropped = session__counter(s->session, PT_CNT_GIL_DROPPED);
	s->st.woke = session__counter(s->session, PT_CNT_SAMPLES_WOKE);
	*st = s->st;
}

static void sampler_summary(void *c, FILE *f)
{
	struct sampler *s = c;
	struct pystacks_stats ps;
	struct sampler_stats st;
	char unwalked[96] = "";

	if (!s->o.enabled)
		return;
	sampler__stats(s, &st);
	pystacks__stats(s->names, &ps);
	fprintf(f, "%llu samples, deepest stack %u frames; lost %llu, native %llu, not Python %llu, "
		"truncated %llu, unresolved frames %llu, dropped (stack cap) %llu.\n",
		(unsigned long long)st.samples, ps.max_depth, (unsigned long long)st.lost,
		(unsigned long long)ps.native, (unsigned long long)ps.no_python,
		(unsigned long long)ps.truncated, (unsigned long long)ps.unresolved,
		(unsigned long long)st.stacks_dropped);
	if (s->o.gil)
		fprintf(f, "--gil: %llu samples of threads not holding the GIL left out.\n",
			(unsigned long long)st.gil_dropped);
	if (s->o.idle && st.idle_unwalked)
		snprintf(unwalked, sizeof(unwalked), ", %llu more above %u walks a second a thread (estimated)",
			 (unsigned long long)st.idle_unwalked, s->o.idle_walks_per_s);
	if (s->o.idle)
		fprintf(f, "Off-CPU (--idle): %.3f s blocked in %llu blocks of traced threads walked%s (and %.3f s "
			"waiting on PostgreSQL, in the [sql] leaves); not recorded (map full) %llu.\n", st.idle_us / 1e6,
			(unsigned long long)st.idle_blocks, st.idle_unwalked ? unwalked : "", st.idle_sql_us / 1e6,
			(unsigned long long)st.idle_dropped);
	if (st.lost)
		wlog("%llu samples were lost (ring buffer full): lower --rate\n", (unsigned long long)st.lost);
}

static void sampler_json(void *c, struct jsonw *w)
{
	struct sampler *s = c;
	struct pystacks_stats ps;
	struct sampler_stats st;

	sampler__stats(s, &st);
	pystacks__stats(s->names, &ps);
	jsonw__name(w, "samples");
	jsonw__start_object(w);
	jsonw__uint_field(w, "taken", st.samples);
	jsonw__uint_field(w, "lost", st.lost);
	jsonw__uint_field(w, "truncated", ps.truncated);
	jsonw__uint_field(w, "dropped_stack_cap", st.stacks_dropped);
	jsonw__uint_field(w, "woke_the_loader", st.woke);
	if (s->o.gil)
		jsonw__uint_field(w, "not_gil_holder", st.gil_dropped);
	if (s->o.idle) {
		jsonw__uint_field(w, "offcpu_us", st.idle_us);
		jsonw__uint_field(w, "offcpu_sql_us", st.idle_sql_us);
		jsonw__uint_field(w, "offcpu_blocks", st.idle_blocks);
		jsonw__uint_field(w, "offcpu_dropped", st.idle_dropped);
		jsonw__uint_field(w, "offcpu_blocks_unwalked", st.idle_unwalked);
		jsonw__uint_field(w, "offcpu_walks_per_s", s->o.idle_walks_per_s);
	}
	jsonw__end_object(w);
	if (!s->o.enabled)
		return;
	/* What the text report holds: the hottest functions (self and total) and stacks. */
	jsonw__name(w, "profile");
	report__hot_json(s->stacks, w, 15, s->o.us_weights ? "us" : "samples",
			 s->o.idle ? "wall" : s->o.us_weights ? "cpu+sql" : "cpu");
}

static void sampler_report(void *c, FILE *f, unsigned written)
{
	struct sampler *s = c;

	if (s->o.enabled && !(written & SESSION_WROTE_FILES)) {
		if (s->o.idle)
			fprintf(f, "\nWall-clock time (--idle): on-CPU samples and off-CPU time, %.3f s in all\n",
				stack_agg__total(s->stacks) / 1e6);
		report__hot(s->stacks, f, 15);
	}
}

static void sampler_reset(void *c)
{
	struct sampler *s = c;

	stack_agg__clear(s->stacks);
	if (s->idle)
		idletab__clear(s->idle);	/* the stack ids died: keys are announced once, so lost */
	s->handled = 0;
}

static bool sampler_collected(void *c)
{
	struct sampler *s = c;

	return s->handled > 0 || s->idle_us > 0;
}

struct stack_agg *sampler__stacks(struct sampler *s)
{
	return s->stacks;
}

uint64_t sampler__weight(const struct sampler *s)
{
	return s->weight;
}

unsigned sampler__rate(const struct sampler *s)
{
	return s->o.rate_hz;
}

void sampler__listen(struct sampler *s, sampler_listener_fn fn, void *ctx)
{
	if (s->nlisteners < MAX_LISTENERS) {
		s->listeners[s->nlisteners].fn = fn;
		s->listeners[s->nlisteners].ctx = ctx;
		s->nlisteners++;
	}
}

const struct capability sampler_capability = {
	.name = "sampler",
	.ev_first = PT_EV_SAMPLE_FIRST,
	.ev_last = PT_EV_SAMPLE_LAST,
	.open = sampler_open,
	.attach = sampler_attach,
	.on_event = sampler_event,
	.on_python = sampler_on_python,
	.on_exit = sampler_on_exit,
	.tick = sampler_tick,
	.flush = sampler_flush,
	.summary = sampler_summary,
	.write_json = sampler_json,
	.report = sampler_report,
	.reset = sampler_reset,
	.collected = sampler_collected,
	.free = sampler_free,
};
