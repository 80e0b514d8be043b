// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "funcprobe.h"
#include "funcs.skel.h"
#include "jsonw.h"
#include "procmaps.h"
#include "pystacks.h"
#include "session.h"
#include "uprobe.h"
#include "util.h"

#define ID_HASH		65536		/* (pid, file ptr, name ptr) -> function */
#define MAX_NOTES	64
#define FRAME_NAMES	(PT_MAX_FRAMES + 3)

struct id_slot {
	uint32_t pid;
	uint64_t file, name;
	int fn;			/* -1: not a match; a funcstats handle otherwise; slot free when pid == 0 */
};

/* A process's links, beside its funcstats_proc entry (same index). */
struct fpid {
	bool attached;
	struct uprobe links[6];
	int nlinks;
	uint64_t gone;		/* after an exec: the old image's links are released after this ticket */
};

/*
 * libbpf's usdt.bpf.h reads a probe's arguments from this (struct __bpf_usdt_spec), found by the
 * attach cookie. With uprobe_multi links the tool fills it itself (spec_for); with perf events
 * bpf_program__attach_usdt does.
 */
struct usdt_spec {
	struct {
		uint64_t val_off;
		uint32_t arg_type;	/* enum __bpf_usdt_arg_type */
		short reg_off;
		bool arg_signed;
		char arg_bitshift;
	} args[12];
	uint64_t usdt_cookie;
	short arg_cnt;
};

#define MAX_SPECS 256	/* BPF_USDT_MAX_SPEC_CNT */

struct funcprobe {
	struct funcs_opts opts;
	struct session_maps maps;
	struct pystacks *names_of;	/* names caller frames; NULL: callers unknown */
	struct funcs_bpf *skel;
	struct funcstats *stats;
	enum uprobe_kind uprobes;
	struct { dev_t dev; ino_t ino; uint64_t ip_off; } specs[MAX_SPECS];	/* by spec id */
	int nspecs;
	int npats;
	struct id_slot *ids;
	struct fpid *pids;	/* FUNCSTATS_MAX_PIDS, by funcstats__proc_index */
	uint64_t candidates_rejected, calls_unknown;
	uint64_t func_events;
	struct pt_stack *st;	/* scratch for naming caller frames */
	const char *names[FRAME_NAMES];
};

static struct id_slot *id_get(struct funcprobe *f, uint32_t pid, uint64_t file, uint64_t name, bool create)
{
	uint64_t h = ((uint64_t)pid * 0x9e3779b97f4a7c15ULL) ^ (file * 0xff51afd7ed558ccdULL) ^ (name * 31);
	uint32_t i = (uint32_t)(h >> 20) % ID_HASH, n;

	for (n = 0; n < ID_HASH; n++, i = (i + 1) % ID_HASH) {
		struct id_slot *s = &f->ids[i];

		if (s->pid == pid && s->file == file && s->name == name)
			return s;
		if (!s->pid) {
			if (!create)
				return NULL;
			s->pid = pid;
			s->file = file;
			s->name = name;
			s->fn = -1;
			return s;
		}
	}
	return NULL;
}

struct funcprobe *funcprobe__new(const struct funcs_opts *o, const struct session_maps *maps,
				 struct pystacks *names, char *err, size_t errlen)
{
	struct funcprobe *f = calloc(1, sizeof(*f));
	struct funcstats_opts so = { .patterns = o->patterns, .npatterns = o->npatterns, .mode = o->mode };
	struct fn_pattern pat;
	struct fn_filter filt;
	struct bpf_program *prog;
	int i, ret;

	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->opts = *o;
	f->maps = *maps;
	f->names_of = names;
	f->ids = calloc(ID_HASH, sizeof(*f->ids));
	f->pids = calloc(FUNCSTATS_MAX_PIDS, sizeof(*f->pids));
	f->st = calloc(1, sizeof(*f->st));
	if (!f->ids || !f->pids || !f->st) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (o->npatterns > FN_MAX_PATTERNS) {
		snprintf(err, errlen, "at most %d --functions patterns", FN_MAX_PATTERNS);
		goto fail;
	}
	f->skel = funcs_bpf__open();
	if (!f->skel) {
		snprintf(err, errlen, "cannot open the USDT BPF object: %s", strerror(errno));
		goto fail;
	}
	/* The statistics compile the patterns for the exact match (and say which is invalid). */
	f->stats = funcstats__new(&so, err, errlen);
	if (!f->stats)
		goto fail;
	for (i = 0; i < o->npatterns; i++) {
		if (fn_pattern__compile(o->patterns[i], &pat, &filt)) {
			snprintf(err, errlen, "invalid --functions pattern '%s'", o->patterns[i]);
			goto fail;	/* not reached: funcstats__new refused it */
		}
		memcpy((void *)&f->skel->rodata->filters[i], &filt, sizeof(filt));
	}
	f->npats = o->npatterns;
	f->skel->rodata->npatterns = o->npatterns;
	f->uprobes = uprobe__kind();
	if (bpf_map__value_size(f->skel->maps.__bpf_usdt_specs) != sizeof(struct usdt_spec)) {
		snprintf(err, errlen, "usdt.bpf.h's struct __bpf_usdt_spec is %u bytes, this build expects %zu",
			 bpf_map__value_size(f->skel->maps.__bpf_usdt_specs), sizeof(struct usdt_spec));
		goto fail;
	}
	bpf_object__for_each_program(prog, f->skel->obj) {
		if (uprobe__prepare(prog, f->uprobes)) {
			snprintf(err, errlen, "cannot prepare the USDT BPF programs for %s", uprobe__kind_name(f->uprobes));
			goto fail;
		}
	}
	if (session_maps__reuse(maps, f->skel->obj, err, errlen))
		goto fail;
	ret = funcs_bpf__load(f->skel);
	if (ret) {
		snprintf(err, errlen, "cannot load the USDT BPF programs: %s", strerror(-ret));
		goto fail;
	}
	return f;
fail:
	funcprobe__free(f);
	return NULL;
}

void funcprobe__free(struct funcprobe *f)
{
	int i, j;

	if (!f)
		return;
	for (i = 0; f->pids && i < FUNCSTATS_MAX_PIDS; i++)
		for (j = 0; j < f->pids[i].nlinks; j++)
			uprobe__detach(&f->pids[i].links[j]);
	funcs_bpf__destroy(f->skel);
	funcstats__free(f->stats);
	free(f->pids);
	free(f->ids);
	free(f->st);
	free(f);
}

struct funcstats *funcprobe__stats(struct funcprobe *f)
{
	return f->stats;
}

static int read_probes(const struct py_target *py, struct py_probes *pp, char *host, size_t hostlen,
		       struct usdt_note *notes, int *nnotes)
{
	int n;

	snprintf(host, hostlen, "%s", py->binary_host);
	n = usdt__read_notes(host, notes, MAX_NOTES);
	if (n < 0)
		return n;
	*nnotes = n < MAX_NOTES ? n : MAX_NOTES;
	usdt__classify(notes, *nnotes, py->major, py->minor, pp);
	return 0;
}

int funcprobe__detect(pid_t pid, struct py_target *py, struct py_probes *pp, char *err, size_t errlen)
{
	char host[600];
	int ret, tries;

	for (tries = 0; tries < 20; tries++) {
		ret = py_target__inspect(pid, py, err, errlen);
		if (ret != -EAGAIN)
			break;
		usleep(50000);
	}
	if (ret)
		return ret;
	{
		struct usdt_note notes[MAX_NOTES];
		int n;

		ret = read_probes(py, pp, host, sizeof(host), notes, &n);
	}
	if (ret)
		snprintf(err, errlen, "cannot read the SDT notes of %s: %s", host, strerror(-ret));
	return ret;
}

/* pid's live entry in the statistics (*p) and its links beside it; NULL when none (or full). */
static struct fpid *fpid_get(struct funcprobe *f, pid_t pid, bool create, struct funcstats_proc **p)
{
	bool fresh;
	struct fpid *fp;

	*p = funcstats__proc(f->stats, pid, create, &fresh);
	if (!*p)
		return NULL;
	fp = &f->pids[funcstats__proc_index(f->stats, *p)];
	if (fresh)
		memset(fp, 0, sizeof(*fp));
	return fp;
}

/* The spec id (attach cookie) of a probe site of host, its arguments written for usdt.bpf.h. */
static int spec_for(struct funcprobe *f, const struct stat *sb, const struct usdt_note *n)
{
	struct usdt_arg args[12];
	struct usdt_spec spec;
	int i, nargs, id;

	for (i = 0; i < f->nspecs; i++)
		if (f->specs[i].dev == sb->st_dev && f->specs[i].ino == sb->st_ino && f->specs[i].ip_off == n->ip_off)
			return i;
	if (f->nspecs >= MAX_SPECS)
		return -E2BIG;
	nargs = usdt__parse_args(n->args, args, 12);
	if (nargs < 0)
		return nargs;
	memset(&spec, 0, sizeof(spec));
	for (i = 0; i < nargs; i++) {
		spec.args[i].val_off = (uint64_t)args[i].val_off;
		spec.args[i].arg_type = args[i].type;
		spec.args[i].reg_off = args[i].reg_off;
		spec.args[i].arg_signed = args[i].is_signed;
		spec.args[i].arg_bitshift = args[i].bitshift;
	}
	spec.arg_cnt = (short)nargs;
	id = f->nspecs;
	if (bpf_map_update_elem(bpf_map__fd(f->skel->maps.__bpf_usdt_specs), &id, &spec, BPF_ANY))
		return -errno;
	f->specs[id].dev = sb->st_dev;
	f->specs[id].ino = sb->st_ino;
	f->specs[id].ip_off = n->ip_off;
	f->nspecs++;
	return id;
}

/* Every site of python:name in host, as one uprobe_multi link with a cookie per site. */
static int attach_sites(struct funcprobe *f, struct fpid *fp, pid_t pid, struct bpf_program *prog, const char *host,
			const char *name, const struct usdt_note *notes, int nnotes)
{
	uint64_t offs[MAX_NOTES], refs[MAX_NOTES], cookies[MAX_NOTES];
	struct stat sb;
	unsigned cnt = 0;
	int i, id;

	if (stat(host, &sb))
		return -errno;
	for (i = 0; i < nnotes; i++) {
		if (strcmp(notes[i].provider, "python") || strcmp(notes[i].name, name))
			continue;
		if (!notes[i].ip_off)
			return -ENOEXEC;
		id = spec_for(f, &sb, &notes[i]);
		if (id < 0)
			return id;
		offs[cnt] = notes[i].ip_off;
		refs[cnt] = notes[i].sema_off;
		cookies[cnt] = (uint64_t)id;
		cnt++;
	}
	if (!cnt)
		return -ENOENT;
	return uprobe__attach_sites(&fp->links[fp->nlinks], prog, false, pid, host, offs, refs, cookies, cnt);
}

static int attach_one(struct funcprobe *f, struct fpid *fp, pid_t pid, struct bpf_program *prog, const char *host,
		      const char *name, const struct usdt_note *notes, int nnotes, char *err, size_t errlen)
{
	int ret = 0;

	if (fp->nlinks >= (int)ARRAY_SIZE(fp->links))
		ret = -E2BIG;
	else if (f->uprobes == UPROBE_MULTI)
		ret = attach_sites(f, fp, pid, prog, host, name, notes, nnotes);
	else if (!(fp->links[fp->nlinks].link = bpf_program__attach_usdt(prog, pid, host, "python", name, NULL)))
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "cannot attach python:%s in pid %d: %s", name, pid, strerror(-ret));
		return ret;
	}
	fp->nlinks++;
	return 0;
}

int funcprobe__add_pid(struct funcprobe *f, pid_t pid, const struct py_target *py, char *err, size_t errlen)
{
	struct funcstats_proc *p;
	struct fpid *fp = fpid_get(f, pid, true, &p);
	struct usdt_note notes[MAX_NOTES];
	int nnotes = 0;
	char host[600];
	bool fn;
	int ret = 0;

	if (!fp)
		return -E2BIG;
	if (fp->attached)
		return 0;
	/*
	 * Python exec'd into Python: the old links are on the same binary and the same process, so
	 * until they are released they would count the new image's calls a second time.
	 */
	if (fp->gone) {
		uprobe__wait_released(fp->gone);
		fp->gone = 0;
	}
	p->major = py->major;
	p->minor = py->minor;
	snprintf(p->binary, sizeof(p->binary), "%s", py->binary);
	ret = read_probes(py, &p->pp, host, sizeof(host), notes, &nnotes);
	if (ret) {
		snprintf(err, errlen, "cannot read the SDT notes of %s: %s", host, strerror(-ret));
		return ret;
	}
	fp->attached = true;
	fn = p->pp.level == PY_PROBES_COMPLETE && f->opts.mode == FUNCS_AUTO && f->npats;
	if (fn) {
		ret = attach_one(f, fp, pid, f->skel->progs.func_entry, host, "function__entry", notes, nnotes, err, errlen);
		if (!ret)
			ret = attach_one(f, fp, pid, f->skel->progs.func_return, host, "function__return", notes, nnotes, err, errlen);
		if (ret)
			return ret;
	}
	if (f->opts.gc && p->pp.gc_start && p->pp.gc_done) {
		ret = attach_one(f, fp, pid, f->skel->progs.gc_start, host, "gc__start", notes, nnotes, err, errlen);
		if (!ret)
			ret = attach_one(f, fp, pid, f->skel->progs.gc_done, host, "gc__done", notes, nnotes, err, errlen);
		if (ret)
			return ret;
	}
	if (f->opts.gc && p->pp.import_start && p->pp.import_done) {
		ret = attach_one(f, fp, pid, f->skel->progs.import_start, host, "import__find__load__start", notes, nnotes, err, errlen);
		if (!ret)
			ret = attach_one(f, fp, pid, f->skel->progs.import_done, host, "import__find__load__done", notes, nnotes, err, errlen);
		if (ret)
			return ret;
	}
	vlog("pid %d: %s (%d python:* notes)%s, as %s\n", pid, usdt__level_str(p->pp.level), p->pp.nnotes,
	     fn ? ", function probes attached" : "", uprobe__kind_name(f->uprobes));
	return 0;
}

/* pid exec'd: its probes went with the old image; attach again when it is inspected anew. */
void funcprobe__forget_pid(struct funcprobe *f, pid_t pid)
{
	struct funcstats_proc *p;
	struct fpid *fp = fpid_get(f, pid, false, &p);
	int i;

	if (!fp)
		return;
	for (i = 0; i < fp->nlinks; i++) {
		uint64_t t = uprobe__detach(&fp->links[i]);

		if (t)
			fp->gone = t;
	}
	fp->nlinks = 0;
	fp->attached = false;
}

/* pid exited: its links go now (a long run would otherwise keep every exited process's fds). */
void funcprobe__exit_pid(struct funcprobe *f, pid_t pid)
{
	struct funcstats_proc *p;
	struct fpid *fp = fpid_get(f, pid, false, &p);
	int i;

	if (!fp)
		return;
	for (i = 0; i < fp->nlinks; i++)
		uprobe__detach(&fp->links[i]);
	fp->nlinks = 0;
	p->exited = true;
}


/* The caller's frames read at entry, named root first into f->names: how many (0: unknown). */
static size_t name_callers(struct funcprobe *f, const struct fn_call *e)
{
	size_t i;

	if (!e->nframes || !f->names_of)
		return 0;
	f->st->nframes = e->nframes;
	f->st->flags = 0;
	for (i = 0; i < e->nframes && i < FN_CALLER_FRAMES; i++)
		f->st->frames[i] = e->frames[i];
	return pystacks__name(f->names_of, e->hdr.pid, e->tid, f->st, f->names, FRAME_NAMES);
}

static void handle_call(struct funcprobe *f, const struct fn_call *e, size_t size)
{
	struct id_slot *id = id_get(f, e->hdr.pid, e->file_ptr, e->name_ptr, true);
	struct fn_key key = { .pid = e->hdr.pid, .file = e->file_ptr, .name = e->name_ptr };
	bool full = size >= sizeof(*e);
	__u8 v;

	f->func_events++;
	if (!id) {
		f->calls_unknown++;
		return;
	}
	if (full && id->fn < 0) {
		char name[FN_NAME_MAX + 1], file[FN_FILE_MAX + 1];

		memcpy(name, e->name, FN_NAME_MAX);
		name[FN_NAME_MAX] = 0;
		memcpy(file, e->file, FN_FILE_MAX);
		file[FN_FILE_MAX] = 0;
		if (!funcstats__match(f->stats, file, name, NULL)) {
			/* passed the prefilter, not the glob: stop it in BPF from now on */
			v = FN_V_NO;
			bpf_map_update_elem(bpf_map__fd(f->skel->maps.verdicts), &key, &v, BPF_ANY);
			f->candidates_rejected++;
			return;
		}
		id->fn = funcstats__func(f->stats, file, name);
		if (id->fn < 0)
			return;
		v = FN_V_YES;
		bpf_map_update_elem(bpf_map__fd(f->skel->maps.verdicts), &key, &v, BPF_ANY);
	}
	if (id->fn < 0) {
		f->calls_unknown++;	/* a name-less event for a function not seen yet (evicted) */
		return;
	}
	funcstats__add_call(f->stats, id->fn, e->dur_ns, f->names, name_callers(f, e));
}

void funcprobe__handle(struct funcprobe *f, const void *data, size_t size)
{
	const struct pt_event_hdr *h = data;

	switch (h->type) {
	case PT_EV_FUNC_CALL:
		if (size >= offsetof(struct fn_call, name))
			handle_call(f, data, size);
		break;
	case PT_EV_FUNC_GC:
		if (size >= sizeof(struct fn_gc)) {
			const struct fn_gc *g = data;

			funcstats__add_gc(f->stats, g->generation, g->dur_ns, g->collected);
		}
		break;
	case PT_EV_FUNC_IMPORT:
		if (size >= sizeof(struct fn_import)) {
			const struct fn_import *e = data;
			char mod[FN_MOD_MAX + 1];

			memcpy(mod, e->module, FN_MOD_MAX);
			mod[FN_MOD_MAX] = 0;
			funcstats__add_import(f->stats, mod, e->dur_ns, e->found);
		}
		break;
	}
}

/* ---- reports ---- */

/* A shared per-CPU counter, summed. */
static uint64_t counter(struct funcprobe *f, __u32 key)
{
	int ncpus = libbpf_num_possible_cpus(), c;
	uint64_t vals[256], sum = 0;

	if (ncpus <= 0 || ncpus > 256 || bpf_map_lookup_elem(bpf_map__fd(f->maps.counters), &key, vals))
		return 0;
	for (c = 0; c < ncpus; c++)
		sum += vals[c];
	return sum;
}

void funcprobe__counters(struct funcprobe *f, struct funcstats_counters *c)
{
	c->lost = counter(f, PT_CNT_FUNC_LOST);
	c->unpaired = counter(f, PT_CNT_FUNC_UNPAIRED);
	c->too_deep = counter(f, PT_CNT_FUNC_DEEP);
	c->offcpu_stacks = counter(f, PT_CNT_OFFCPU);
	c->candidates_rejected = f->candidates_rejected;
	c->events_unattributed = f->calls_unknown;
}

void funcprobe__report(struct funcprobe *f, FILE *out)
{
	struct funcstats_counters c;

	funcprobe__counters(f, &c);
	funcstats__report(f->stats, &c, out);
}

void funcprobe__write_json(struct funcprobe *f, struct jsonw *w)
{
	struct funcstats_counters c;

	funcprobe__counters(f, &c);
	funcstats__write_json(f->stats, &c, w);
}

void funcprobe__write_gc_json(struct funcprobe *f, struct jsonw *w)
{
	funcstats__write_gc_json(f->stats, w);
}

/* ---- the capability ---- */

static void on_sample(void *c, uint32_t pid, uint32_t tid, const char *const *frames, size_t n,
		      uint64_t weight_ns, bool offcpu)
{
	struct funcprobe *f = c;

	funcstats__add_sample(f->stats, pid, tid, frames, n, weight_ns, offcpu);
}

static void *funcs_open(struct session *ss, const struct session_opts *so, char *err, size_t errlen)
{
	struct sampler *sampler = session__cap(ss, "sampler");
	struct funcprobe *f;

	if (!so->funcs.enabled)
		return NULL;
	f = funcprobe__new(&so->funcs, session__maps(ss), session__pystacks(ss), err, errlen);
	if (f && sampler)
		sampler__listen(sampler, on_sample, f);
	return f;
}

static void funcs_on_python(void *c, const struct proc *p)
{
	char err[512];

	if (funcprobe__add_pid(c, p->pid, &p->py, err, sizeof(err)))
		wlog("%s\n", err);
}

static void funcs_on_fork(void *c, const struct proc *child, const struct proc *parent)
{
	funcs_on_python(c, child);
}

static void funcs_on_exec(void *c, pid_t pid)
{
	funcprobe__forget_pid(c, pid);
}

static void funcs_on_exit(void *c, pid_t pid)
{
	funcprobe__exit_pid(c, pid);
}

static void funcs_event(void *c, const void *data, size_t size)
{
	funcprobe__handle(c, data, size);
}

static void funcs_json(void *c, struct jsonw *w)
{
	jsonw__name(w, "functions");
	funcprobe__write_json(c, w);
	jsonw__name(w, "gc");
	funcprobe__write_gc_json(c, w);
}

static void funcs_report(void *c, FILE *f, unsigned written)
{
	if (!(written & SESSION_WROTE_JSON))
		funcprobe__report(c, f);
}

/* Its report always says what it found, even "no calls": the run is not empty. */
static bool funcs_collected(void *c)
{
	return true;
}

static void funcs_free_cap(void *c)
{
	funcprobe__free(c);
}

const struct capability funcs_capability = {
	.name = "functions",
	.ev_first = PT_EV_FUNC_FIRST,
	.ev_last = PT_EV_FUNC_LAST,
	.open = funcs_open,
	.on_event = funcs_event,
	.on_python = funcs_on_python,
	.on_fork = funcs_on_fork,
	.on_exec = funcs_on_exec,
	.on_exit = funcs_on_exit,
	.write_json = funcs_json,
	.report = funcs_report,
	.collected = funcs_collected,
	.free = funcs_free_cap,
};
