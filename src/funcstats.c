// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "funcpat.h"
#include "funcstats.h"
#include "jsonw.h"
#include "lathist.h"

#define FN_HASH		8192		/* open addressing on (file, name) */

struct caller {
	char *name;
	uint64_t calls;
};

struct fn_stat {
	char *name;		/* co_name (probes) or qualname (samples) */
	char *qualname;		/* NULL until known */
	char *file;
	bool matched;		/* passed the exact match */
	struct lathist *h;	/* probe calls; NULL until the first */
	struct caller callers[FUNCSTATS_MAX_CALLERS];	/* probes: calls per call site */
	struct caller scallers[FUNCSTATS_MAX_CALLERS];	/* samples: wall ns per calling frame */
	int nscallers;
	int ncallers;
	uint64_t other_callers, unknown_callers;
	uint64_t oncpu_ns, offcpu_ns;	/* sampled */
	uint64_t last_sample_seq;	/* counted once per stack */
};

struct imp_stat {
	char *module;
	uint64_t ns;
	uint64_t count;
	int found;
};

struct funcstats {
	enum funcs_mode mode;
	struct fn_pattern pats[FN_MAX_PATTERNS];
	int npats;
	struct fn_stat *fns;
	int nfns;
	int fn_hash[FN_HASH];	/* index + 1 */
	struct funcstats_proc *procs;
	int nprocs;
	uint64_t sample_seq;
	uint64_t wall_ns, wall_oncpu_ns, wall_offcpu_ns;	/* every sampled stack */
	struct funcstats_drops drops;
	struct lathist gc;
	struct lathist gc_gen[3];
	uint64_t gc_collected;
	struct imp_stat *imps;
	int nimps;
	struct lathist imp_h;
	uint64_t imports;
};

struct funcstats *funcstats__new(const struct funcstats_opts *o, char *err, size_t errlen)
{
	struct funcstats *st = calloc(1, sizeof(*st));
	struct fn_filter filt;
	int i;

	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->mode = o->mode;
	st->fns = calloc(FUNCSTATS_MAX_FUNCS, sizeof(*st->fns));
	st->imps = calloc(FUNCSTATS_MAX_IMPORTS, sizeof(*st->imps));
	st->procs = calloc(FUNCSTATS_MAX_PIDS, sizeof(*st->procs));
	if (!st->fns || !st->imps || !st->procs) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	lathist__init(&st->gc);
	for (i = 0; i < 3; i++)
		lathist__init(&st->gc_gen[i]);
	lathist__init(&st->imp_h);
	if (o->npatterns > FN_MAX_PATTERNS) {
		snprintf(err, errlen, "at most %d --functions patterns", FN_MAX_PATTERNS);
		goto fail;
	}
	for (i = 0; i < o->npatterns; i++) {
		if (fn_pattern__compile(o->patterns[i], &st->pats[i], &filt)) {
			snprintf(err, errlen, "invalid --functions pattern '%s' (expected a glob such as "
				 "'myapp.*', 'app.views.index' or '*views.py:*')", o->patterns[i]);
			goto fail;
		}
	}
	st->npats = o->npatterns;
	return st;
fail:
	funcstats__free(st);
	return NULL;
}

void funcstats__free(struct funcstats *st)
{
	int i, j;

	if (!st)
		return;
	for (i = 0; st->fns && i < st->nfns; i++) {
		free(st->fns[i].name);
		free(st->fns[i].qualname);
		free(st->fns[i].file);
		free(st->fns[i].h);
		for (j = 0; j < st->fns[i].ncallers; j++)
			free(st->fns[i].callers[j].name);
		for (j = 0; j < st->fns[i].nscallers; j++)
			free(st->fns[i].scallers[j].name);
	}
	for (i = 0; st->imps && i < st->nimps; i++)
		free(st->imps[i].module);
	free(st->imps);
	free(st->fns);
	free(st->procs);
	free(st);
}

bool funcstats__match(const struct funcstats *st, const char *file, const char *name, const char *qualname)
{
	int i;

	for (i = 0; i < st->npats; i++)
		if (fn_pattern__match(&st->pats[i], file, name, qualname))
			return true;
	return false;
}

/* ---- processes ---- */

struct funcstats_proc *funcstats__proc(struct funcstats *st, pid_t pid, bool create, bool *fresh)
{
	struct funcstats_proc *p = NULL;
	int i;

	if (fresh)
		*fresh = false;
	for (i = 0; i < st->nprocs; i++)
		if (st->procs[i].pid == pid && !st->procs[i].exited)
			return &st->procs[i];
	if (!create)
		return NULL;
	if (st->nprocs < FUNCSTATS_MAX_PIDS) {
		p = &st->procs[st->nprocs++];
	} else {
		/* Full: a process that has exited gives up its entry (and its line in the report). */
		for (i = 0; i < st->nprocs && !p; i++)
			if (st->procs[i].exited)
				p = &st->procs[i];
		if (!p) {
			st->drops.pids++;
			return NULL;
		}
	}
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	if (fresh)
		*fresh = true;
	return p;
}

int funcstats__proc_index(const struct funcstats *st, const struct funcstats_proc *p)
{
	return (int)(p - st->procs);
}

bool funcstats__proc_sampled(const struct funcstats *st, const struct funcstats_proc *p)
{
	return st->mode == FUNCS_SAMPLE || p->pp.level != PY_PROBES_COMPLETE;
}

bool funcstats__sampling_used(const struct funcstats *st)
{
	int i;

	for (i = 0; i < st->nprocs; i++)
		if (funcstats__proc_sampled(st, &st->procs[i]))
			return true;
	return st->nprocs == 0;
}

/* ---- aggregation ---- */

static uint64_t fnv(const char *a, const char *b)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *a; a++)
		h = (h ^ (uint8_t)*a) * 0x100000001b3ULL;
	h = (h ^ 0xff) * 0x100000001b3ULL;
	for (; *b; b++)
		h = (h ^ (uint8_t)*b) * 0x100000001b3ULL;
	return h;
}

/* The function (file, name), created if new; -1 when the table is full. */
static int fn_get(struct funcstats *st, const char *file, const char *name)
{
	uint32_t i = fnv(file, name) % FN_HASH, n;

	for (n = 0; n < FN_HASH; n++, i = (i + 1) % FN_HASH) {
		int k = st->fn_hash[i] - 1;

		if (k < 0)
			break;
		if (!strcmp(st->fns[k].file, file) && !strcmp(st->fns[k].name, name))
			return k;
	}
	if (n == FN_HASH || st->nfns >= FUNCSTATS_MAX_FUNCS) {
		st->drops.functions++;
		return -1;
	}
	st->fns[st->nfns].name = strdup(name);
	st->fns[st->nfns].file = strdup(file);
	st->fn_hash[i] = st->nfns + 1;
	return st->nfns++;
}

int funcstats__func(struct funcstats *st, const char *file, const char *name)
{
	int k = fn_get(st, file, name);

	if (k >= 0)
		st->fns[k].matched = true;
	return k;
}

/* "qualname (file:line)" -> qualname and file, in place (buf is modified). */
static bool split_frame(char *buf, char **qual, char **file)
{
	char *open = strrchr(buf, '('), *colon;

	if (!open || open == buf || open[-1] != ' ')
		return false;
	colon = strrchr(open, ':');
	if (!colon)
		return false;
	open[-1] = 0;
	*colon = 0;
	*qual = buf;
	*file = open + 1;
	return true;
}

static void add_caller(struct fn_stat *s, const char *caller)
{
	int i;

	for (i = 0; i < s->ncallers; i++)
		if (!strcmp(s->callers[i].name, caller)) {
			s->callers[i].calls++;
			return;
		}
	if (s->ncallers < FUNCSTATS_MAX_CALLERS) {
		s->callers[s->ncallers].name = strdup(caller);
		s->callers[s->ncallers++].calls = 1;
		return;
	}
	s->other_callers++;
}

/* Sampled: the calling frame (call site) and the wall time spent below it in this function. */
static void add_scaller(struct fn_stat *s, const char *caller, uint64_t ns)
{
	int i;

	for (i = 0; i < s->nscallers; i++)
		if (!strcmp(s->scallers[i].name, caller)) {
			s->scallers[i].calls += ns;
			return;
		}
	if (s->nscallers < FUNCSTATS_MAX_CALLERS) {
		s->scallers[s->nscallers].name = strdup(caller);
		s->scallers[s->nscallers++].calls = ns;
	}
}

/* Name the caller from the frames read at entry; learn the qualified name on the way. */
static void note_caller(struct fn_stat *s, const char *const *names, size_t n)
{
	char buf[1024], *q, *file;
	size_t i;

	if (!n) {
		s->unknown_callers++;
		return;
	}
	/* Root first: the innermost is last. Is it the callee's own frame (pushed before the probe)? */
	i = n - 1;
	snprintf(buf, sizeof(buf), "%s", names[i]);
	if (split_frame(buf, &q, &file) && !strcmp(file, s->file)) {
		size_t ql = strlen(q), nl = strlen(s->name);

		if (ql >= nl && !strcmp(q + ql - nl, s->name) && (ql == nl || q[ql - nl - 1] == '.')) {
			if (!s->qualname)
				s->qualname = strdup(q);
			if (i == 0) {
				s->unknown_callers++;
				return;
			}
			i--;
		}
	}
	if (names[i][0] == '[')
		s->unknown_callers++;
	else
		add_caller(s, names[i]);
}

void funcstats__add_call(struct funcstats *st, int fn, uint64_t dur_ns, const char *const *frames, size_t n)
{
	struct fn_stat *s;

	if (fn < 0 || fn >= st->nfns)
		return;
	s = &st->fns[fn];
	if (!s->h) {
		s->h = malloc(sizeof(*s->h));
		if (!s->h)
			return;
		lathist__init(s->h);
	}
	lathist__add(s->h, dur_ns);
	note_caller(s, frames, n);
}

int funcstats__call(struct funcstats *st, const char *file, const char *name, uint64_t dur_ns,
		    const char *const *frames, size_t n)
{
	int fn = funcstats__func(st, file, name);

	if (fn >= 0)
		funcstats__add_call(st, fn, dur_ns, frames, n);
	return fn;
}

void funcstats__add_gc(struct funcstats *st, int generation, uint64_t dur_ns, int64_t collected)
{
	lathist__add(&st->gc, dur_ns);
	if (generation >= 0 && generation < 3)
		lathist__add(&st->gc_gen[generation], dur_ns);
	if (collected > 0)
		st->gc_collected += collected;
}

void funcstats__add_import(struct funcstats *st, const char *module, uint64_t dur_ns, int found)
{
	int i;

	st->imports++;
	lathist__add(&st->imp_h, dur_ns);
	for (i = 0; i < st->nimps; i++)
		if (!strcmp(st->imps[i].module, module))
			break;
	if (i == st->nimps) {
		if (st->nimps >= FUNCSTATS_MAX_IMPORTS) {
			st->drops.imports++;
			return;
		}
		st->imps[i].module = strdup(module);
		st->nimps++;
	}
	st->imps[i].ns += dur_ns;
	st->imps[i].count++;
	st->imps[i].found = found;
}

void funcstats__add_sample(struct funcstats *st, uint32_t pid, uint32_t tid, const char *const *frames, size_t n,
			   uint64_t weight_ns, bool offcpu)
{
	struct funcstats_proc *p = funcstats__proc(st, pid, false, NULL);
	char buf[1024], *q, *file;
	size_t i;

	if (p && !funcstats__proc_sampled(st, p))
		return;
	st->sample_seq++;
	st->wall_ns += weight_ns;
	if (offcpu)
		st->wall_offcpu_ns += weight_ns;
	else
		st->wall_oncpu_ns += weight_ns;
	for (i = 0; i < n; i++) {
		struct fn_stat *s;
		const char *name;
		int k;

		snprintf(buf, sizeof(buf), "%s", frames[i]);
		if (!split_frame(buf, &q, &file))
			continue;
		/* the probes' co_name is the qualified name's last part */
		name = strrchr(q, '.') ? strrchr(q, '.') + 1 : q;
		if (!funcstats__match(st, file, name, q))
			continue;
		k = fn_get(st, file, q);
		if (k < 0)
			continue;
		s = &st->fns[k];
		s->matched = true;
		if (!s->qualname)
			s->qualname = strdup(q);
		if (s->last_sample_seq == st->sample_seq)
			continue;	/* recursion: once per stack */
		s->last_sample_seq = st->sample_seq;
		if (offcpu)
			s->offcpu_ns += weight_ns;
		else
			s->oncpu_ns += weight_ns;
		add_scaller(s, i > 0 && frames[i - 1][0] != '[' ? frames[i - 1] : "[root]", weight_ns);
	}
}

void funcstats__drops(const struct funcstats *st, struct funcstats_drops *d)
{
	*d = st->drops;
}

/* ---- reports ---- */

const char *funcstats__source(const struct funcstats *st)
{
	bool probes = false, partial = false, none = false, silent = false;
	int i;

	for (i = 0; i < st->nprocs; i++) {
		switch (st->procs[i].pp.level) {
		case PY_PROBES_COMPLETE: probes = true; break;
		case PY_PROBES_PARTIAL: partial = true; break;
		case PY_PROBES_SILENT: silent = true; break;
		default: none = true; break;
		}
	}
	if (st->mode == FUNCS_SAMPLE)
		return "sampled shares (USDT probes not used: --functions-source=sample)";
	if (probes && !partial && !none && !silent)
		return "USDT probes (complete)";
	if (partial && !probes && !none && !silent)
		return "USDT probes (partial: 3.11 fires only for frames entered from C) - showing sampled shares";
	if (silent && !probes && !none && !partial)
		return "no USDT function probes fire in CPython 3.12-3.14 - sampled shares";
	if (none && !probes && !partial && !silent)
		return "no USDT probes - sampled shares";
	return "mixed: USDT probes where complete, sampled shares elsewhere";
}

static const char *source_key(const struct funcstats *st, const struct funcstats_proc *fp)
{
	if (st->mode == FUNCS_SAMPLE)
		return "sampled";
	return fp->pp.level == PY_PROBES_COMPLETE ? "usdt" : "sampled";
}

static const char *level_key(enum py_probe_level l)
{
	switch (l) {
	case PY_PROBES_COMPLETE: return "complete";
	case PY_PROBES_PARTIAL: return "partial";
	case PY_PROBES_SILENT: return "silent";
	default: return "none";
	}
}

static const char *display(const struct fn_stat *s)
{
	return s->qualname ? s->qualname : s->name;
}

static int cmp_total(const void *a, const void *b, void *ctx)
{
	const struct fn_stat *fa = &((struct funcstats *)ctx)->fns[*(const int *)a];
	const struct fn_stat *fb = &((struct funcstats *)ctx)->fns[*(const int *)b];
	uint64_t ta = fa->h ? fa->h->sum : 0, tb = fb->h ? fb->h->sum : 0;

	if (ta == tb) {
		ta = fa->oncpu_ns + fa->offcpu_ns;
		tb = fb->oncpu_ns + fb->offcpu_ns;
	}
	return ta < tb ? 1 : ta > tb ? -1 : 0;
}

static int cmp_callers(const void *a, const void *b)
{
	const struct caller *ca = a, *cb = b;

	return ca->calls < cb->calls ? 1 : ca->calls > cb->calls ? -1 : 0;
}

/* Matched functions, costliest first; returns how many. */
static int sorted(struct funcstats *st, int *idx)
{
	int i, n = 0;

	for (i = 0; i < st->nfns; i++)
		if (st->fns[i].matched && (st->fns[i].h || st->fns[i].oncpu_ns + st->fns[i].offcpu_ns))
			idx[n++] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_total, st);
	for (i = 0; i < n; i++) {
		qsort(st->fns[idx[i]].callers, st->fns[idx[i]].ncallers, sizeof(struct caller), cmp_callers);
		qsort(st->fns[idx[i]].scallers, st->fns[idx[i]].nscallers, sizeof(struct caller), cmp_callers);
	}
	return n;
}

static void fmt_ns(char *buf, size_t size, double ns)
{
	if (ns >= 1e9)
		snprintf(buf, size, "%.3fs", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(buf, size, "%.2fms", ns / 1e6);
	else if (ns >= 1e3)
		snprintf(buf, size, "%.1fus", ns / 1e3);
	else
		snprintf(buf, size, "%.0fns", ns);
}

static int cmp_imp(const void *a, const void *b)
{
	const struct imp_stat *x = a, *y = b;

	return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

void funcstats__report(struct funcstats *st, const struct funcstats_counters *c, FILE *out)
{
	int *idx = calloc(st->nfns + 1, sizeof(int)), n, i, j, shown = 0;
	char a[6][24];

	if (!idx)
		return;
	n = sorted(st, idx);
	fprintf(out, "\nFunctions matching");
	for (i = 0; i < st->npats; i++)
		fprintf(out, " '%s'", st->pats[i].text);
	fprintf(out, "\nSource: %s\n", funcstats__source(st));
	for (i = 0; i < st->nprocs; i++)
		fprintf(out, "  pid %d: CPython %u.%u (%s): %s%s\n", st->procs[i].pid, st->procs[i].major,
			st->procs[i].minor, st->procs[i].binary, usdt__level_str(st->procs[i].pp.level),
			funcstats__proc_sampled(st, &st->procs[i]) ? " -> sampled shares" : "");
	for (i = 0; i < n; i++) {
		struct fn_stat *s = &st->fns[idx[i]];

		if (!s->h)
			continue;
		if (!shown++)
			fprintf(out, "  %10s %10s %10s %10s %10s %10s %10s  function\n", "calls", "total", "mean",
				"p50", "p95", "p99", "max");
		fmt_ns(a[0], sizeof(a[0]), (double)s->h->sum);
		fmt_ns(a[1], sizeof(a[1]), lathist__mean(s->h));
		fmt_ns(a[2], sizeof(a[2]), (double)lathist__percentile(s->h, 50));
		fmt_ns(a[3], sizeof(a[3]), (double)lathist__percentile(s->h, 95));
		fmt_ns(a[4], sizeof(a[4]), (double)lathist__percentile(s->h, 99));
		fmt_ns(a[5], sizeof(a[5]), (double)s->h->max);
		fprintf(out, "  %10llu %10s %10s %10s %10s %10s %10s  %s (%s)\n", (unsigned long long)s->h->count,
			a[0], a[1], a[2], a[3], a[4], a[5], display(s), s->file);
		for (j = 0; j < s->ncallers && j < 3; j++)
			fprintf(out, "  %10s %llu calls from %s\n", j ? "" : "callers:",
				(unsigned long long)s->callers[j].calls, s->callers[j].name);
	}
	if (shown) {
		uint64_t lost = c ? c->lost : 0, unpaired = c ? c->unpaired : 0;

		fprintf(out, "  (wall time from entry to return, exceptions included; a generator counts one call "
			"per resume; calls already running when tracing began are not counted)\n");
		if (lost || unpaired)
			fprintf(out, "  %llu events lost (ring buffer full), %llu entries without a return\n",
				(unsigned long long)lost, (unsigned long long)unpaired);
	}
	if (funcstats__sampling_used(st)) {
		fprintf(out, "  Sampled wall-clock time: %.3fs (on-CPU %.3fs, off-CPU %.3fs) over all traced threads\n",
			st->wall_ns / 1e9, st->wall_oncpu_ns / 1e9, st->wall_offcpu_ns / 1e9);
		shown = 0;
		for (i = 0; i < n; i++) {
			struct fn_stat *s = &st->fns[idx[i]];
			uint64_t t = s->oncpu_ns + s->offcpu_ns;

			if (!t)
				continue;
			if (!shown++)
				fprintf(out, "  %8s %10s %10s %10s  function\n", "share", "wall", "on-CPU", "off-CPU");
			fmt_ns(a[0], sizeof(a[0]), (double)t);
			fmt_ns(a[1], sizeof(a[1]), (double)s->oncpu_ns);
			fmt_ns(a[2], sizeof(a[2]), (double)s->offcpu_ns);
			fprintf(out, "  %7.1f%% %10s %10s %10s  %s (%s)\n", st->wall_ns ? 100.0 * t / st->wall_ns : 0,
				a[0], a[1], a[2], display(s), s->file);
			for (j = 0; j < s->nscallers && j < 2; j++)
				fprintf(out, "  %8s %9.1f%% of it from %s\n", j ? "" : "callers:",
					100.0 * s->scallers[j].calls / t, s->scallers[j].name);
		}
	}
	if (!n)
		fprintf(out, "  (no matching function was seen)\n");
	if (st->gc.count) {
		fmt_ns(a[0], sizeof(a[0]), (double)st->gc.sum);
		fmt_ns(a[1], sizeof(a[1]), (double)lathist__percentile(&st->gc, 50));
		fmt_ns(a[2], sizeof(a[2]), (double)lathist__percentile(&st->gc, 99));
		fmt_ns(a[3], sizeof(a[3]), (double)st->gc.max);
		fprintf(out, "\nGC pauses (gc__start/gc__done): %llu collections, total %s, p50 %s, p99 %s, max %s\n",
			(unsigned long long)st->gc.count, a[0], a[1], a[2], a[3]);
	}
	if (st->imports) {
		fmt_ns(a[0], sizeof(a[0]), (double)st->imp_h.sum);
		fprintf(out, "Imports (import__find__load_*): %llu, %s including nested imports\n",
			(unsigned long long)st->imports, a[0]);
		qsort(st->imps, st->nimps, sizeof(*st->imps), cmp_imp);
		for (i = 0; i < st->nimps && i < 5; i++) {
			fmt_ns(a[1], sizeof(a[1]), (double)st->imps[i].ns);
			fprintf(out, "  %10s  %s\n", a[1], st->imps[i].module);
		}
	}
	free(idx);
}

static void json_hist(struct jsonw *w, const struct lathist *h)
{
	jsonw__uint_field(w, "count", h->count);
	jsonw__uint_field(w, "total_ns", h->sum);
	jsonw__double_fixed_field(w, "mean_ns", lathist__mean(h), 0);
	jsonw__uint_field(w, "p50_ns", lathist__percentile(h, 50));
	jsonw__uint_field(w, "p95_ns", lathist__percentile(h, 95));
	jsonw__uint_field(w, "p99_ns", lathist__percentile(h, 99));
	jsonw__uint_field(w, "max_ns", h->count ? h->max : 0);
}

void funcstats__write_json(struct funcstats *st, const struct funcstats_counters *c, struct jsonw *w)
{
	int *idx = calloc(st->nfns + 1, sizeof(int)), n, i, j;

	n = idx ? sorted(st, idx) : 0;
	jsonw__start_object(w);
	jsonw__name(w, "patterns");
	jsonw__start_array(w);
	for (i = 0; i < st->npats; i++)
		jsonw__string(w, st->pats[i].text);
	jsonw__end_array(w);
	jsonw__string_field(w, "source", funcstats__source(st));
	jsonw__name(w, "processes");
	jsonw__start_array(w);
	for (i = 0; i < st->nprocs; i++) {
		const struct funcstats_proc *fp = &st->procs[i];

		jsonw__start_object(w);
		jsonw__uint_field(w, "pid", fp->pid);
		jsonw__name(w, "python");
		{
			char v[16];

			snprintf(v, sizeof(v), "%u.%u", fp->major, fp->minor);
			jsonw__string(w, v);
		}
		jsonw__string_field(w, "binary", fp->binary);
		jsonw__string_field(w, "probes", level_key(fp->pp.level));
		jsonw__string_field(w, "probes_text", usdt__level_str(fp->pp.level));
		jsonw__bool_field(w, "gc_probes", fp->pp.gc_start && fp->pp.gc_done);
		jsonw__bool_field(w, "import_probes", fp->pp.import_start && fp->pp.import_done);
		jsonw__string_field(w, "source", source_key(st, fp));
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__name(w, "calls");
	jsonw__start_array(w);
	for (i = 0; i < n; i++) {
		struct fn_stat *s = &st->fns[idx[i]];

		if (!s->h)
			continue;
		jsonw__start_object(w);
		jsonw__string_field(w, "function", display(s));
		jsonw__string_field(w, "name", s->name);
		jsonw__string_field(w, "file", s->file);
		json_hist(w, s->h);
		jsonw__name(w, "callers");
		jsonw__start_array(w);
		for (j = 0; j < s->ncallers && j < 5; j++) {
			jsonw__start_object(w);
			jsonw__string_field(w, "caller", s->callers[j].name);
			jsonw__uint_field(w, "calls", s->callers[j].calls);
			jsonw__end_object(w);
		}
		jsonw__end_array(w);
		jsonw__uint_field(w, "callers_unknown", s->unknown_callers);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__name(w, "sampled");
	jsonw__start_object(w);
	jsonw__uint_field(w, "wall_ns", st->wall_ns);
	jsonw__uint_field(w, "oncpu_ns", st->wall_oncpu_ns);
	jsonw__uint_field(w, "offcpu_ns", st->wall_offcpu_ns);
	jsonw__name(w, "functions");
	jsonw__start_array(w);
	for (i = 0; i < n; i++) {
		struct fn_stat *s = &st->fns[idx[i]];
		uint64_t t = s->oncpu_ns + s->offcpu_ns;

		if (!t)
			continue;
		jsonw__start_object(w);
		jsonw__string_field(w, "function", display(s));
		jsonw__string_field(w, "file", s->file);
		jsonw__double_field(w, "share", st->wall_ns ? (double)t / st->wall_ns : 0);
		jsonw__uint_field(w, "wall_ns", t);
		jsonw__uint_field(w, "oncpu_ns", s->oncpu_ns);
		jsonw__uint_field(w, "offcpu_ns", s->offcpu_ns);
		jsonw__name(w, "callers");
		jsonw__start_array(w);
		for (j = 0; j < s->nscallers && j < 5; j++) {
			jsonw__start_object(w);
			jsonw__string_field(w, "caller", s->scallers[j].name);
			jsonw__uint_field(w, "wall_ns", s->scallers[j].calls);
			jsonw__end_object(w);
		}
		jsonw__end_array(w);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__end_object(w);
	jsonw__uint_field(w, "candidates_rejected", c ? c->candidates_rejected : 0);
	jsonw__uint_field(w, "lost_events", c ? c->lost : 0);
	jsonw__uint_field(w, "unpaired_entries", c ? c->unpaired : 0);
	jsonw__uint_field(w, "too_deep", c ? c->too_deep : 0);
	jsonw__uint_field(w, "offcpu_stacks", c ? c->offcpu_stacks : 0);
	jsonw__uint_field(w, "events_unattributed", c ? c->events_unattributed : 0);
	jsonw__end_object(w);
	free(idx);
}


void funcstats__write_gc_json(struct funcstats *st, struct jsonw *w)
{
	bool gc = false, imp = false;
	int i;

	for (i = 0; i < st->nprocs; i++) {
		gc |= st->procs[i].pp.gc_start && st->procs[i].pp.gc_done;
		imp |= st->procs[i].pp.import_start && st->procs[i].pp.import_done;
	}
	jsonw__start_object(w);
	jsonw__bool_field(w, "probes", gc);
	json_hist(w, &st->gc);
	jsonw__uint_field(w, "collected", st->gc_collected);
	jsonw__name(w, "generations");
	jsonw__start_array(w);
	for (i = 0; i < 3; i++) {
		jsonw__start_object(w);
		jsonw__uint_field(w, "generation", i);
		json_hist(w, &st->gc_gen[i]);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__name(w, "imports");
	jsonw__start_object(w);
	jsonw__bool_field(w, "probes", imp);
	json_hist(w, &st->imp_h);
	jsonw__name(w, "modules");
	jsonw__start_array(w);
	qsort(st->imps, st->nimps, sizeof(*st->imps), cmp_imp);
	for (i = 0; i < st->nimps && i < 100; i++) {
		jsonw__start_object(w);
		jsonw__string_field(w, "module", st->imps[i].module);
		jsonw__uint_field(w, "total_ns", st->imps[i].ns);
		jsonw__uint_field(w, "count", st->imps[i].count);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__end_object(w);
	jsonw__end_object(w);
}
