// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "funcs.h"
#include "funcs.skel.h"
#include "jsonw.h"
#include "lathist.h"
#include "procmaps.h"
#include "pystacks.h"
#include "session.h"
#include "uprobe.h"
#include "util.h"

#define MAX_FUNCS	4096		/* distinct functions reported */
#define FN_HASH		8192		/* open addressing on (file, name) */
#define ID_HASH		65536		/* (pid, file ptr, name ptr) -> function */
#define MAX_CALLERS	16		/* distinct callers kept per function */
#define MAX_PIDS	1024
#define MAX_NOTES	64
#define MAX_IMPORTS	4096
#define FRAME_NAMES	(PT_MAX_FRAMES + 3)

/* ---- patterns ---- */

static void lit_set(char *dst, __u8 *len, const char *src, size_t n, bool keep_tail)
{
	if (n > FN_LIT_MAX - 1) {
		if (keep_tail)
			src += n - (FN_LIT_MAX - 1);
		n = FN_LIT_MAX - 1;
	}
	memcpy(dst, src, n);
	dst[n] = 0;
	*len = (__u8)n;
}

/* After the last wildcard of glob ('*', '?', or a [...] class): the literal tail. */
static const char *literal_tail(const char *glob)
{
	const char *p, *tail = glob;

	for (p = glob; *p; p++)
		if (*p == '*' || *p == '?' || *p == ']' || (*p == '[' && !strchr(p, ']')))
			tail = p + 1;
	return tail;
}

/*
 * The prefilter on co_name for a function glob G. Whatever G matches ends with co_name, after a
 * '.' or whole (qualified names and module.qualname alike), so: no wildcard -> co_name is G's
 * last dotted part; a literal tail with a dot -> co_name is the part after that dot; a literal
 * tail without one -> co_name ends with it; no literal tail -> anything.
 */
static void name_filter(const char *glob, struct fn_filter *f)
{
	const char *tail = literal_tail(glob), *dot = strrchr(tail, '.');

	if (tail == glob && !strpbrk(glob, "*?[")) {
		dot = strrchr(glob, '.');
		tail = dot ? dot + 1 : glob;
		f->name_kind = strlen(tail) > FN_LIT_MAX - 1 ? FN_M_PREFIX : FN_M_EXACT;
		lit_set(f->name, &f->name_len, tail, strlen(tail), false);
	} else if (dot) {
		f->name_kind = strlen(dot + 1) > FN_LIT_MAX - 1 ? FN_M_PREFIX : FN_M_EXACT;
		lit_set(f->name, &f->name_len, dot + 1, strlen(dot + 1), false);
	} else if (*tail) {
		f->name_kind = FN_M_SUFFIX;
		lit_set(f->name, &f->name_len, tail, strlen(tail), true);
	} else {
		f->name_kind = FN_M_ANY;
	}
}

int fn_pattern__compile(const char *text, struct fn_pattern *p, struct fn_filter *f)
{
	const char *colon, *star;
	size_t n = strlen(text);

	memset(p, 0, sizeof(*p));
	memset(f, 0, sizeof(*f));
	if (!n || n >= FN_GLOB_MAX)
		return -EINVAL;
	snprintf(p->text, sizeof(p->text), "%s", text);
	colon = strrchr(text, ':');
	if (colon) {
		size_t fl = colon - text;

		if (!fl || !colon[1])
			return -EINVAL;
		memcpy(p->file_glob, text, fl);
		p->file_glob[fl] = 0;
		snprintf(p->func_glob, sizeof(p->func_glob), "%s", colon + 1);
		/* file: a literal tail after the last wildcard, as a suffix */
		star = literal_tail(p->file_glob);
		if (*star) {
			f->file_kind = FN_M_SUFFIX;
			lit_set(f->file, &f->file_len, star, strlen(star), true);
		}
	} else {
		p->qualified = true;
		snprintf(p->func_glob, sizeof(p->func_glob), "%s", text);
	}
	name_filter(p->func_glob, f);
	return 0;
}

static bool glob(const char *g, const char *s)
{
	return s && fnmatch(g, s, 0) == 0;
}

/* Try g on "tail.func" for each dotted tail of file's module path, and on func alone. */
static bool match_qualified(const char *g, const char *file, const char *func)
{
	char mod[FN_GLOB_MAX * 2], cand[FN_GLOB_MAX * 3];
	const char *comps[64];
	size_t lens[64];
	int nc = 0, k, i;
	const char *p, *e;

	if (glob(g, func))
		return true;
	if (!file || file[0] == '<')
		return false;
	snprintf(mod, sizeof(mod), "%s", file);
	e = strrchr(mod, '.');
	if (e && (!strcmp(e, ".py") || !strcmp(e, ".pyw") || !strcmp(e, ".pyc")))
		mod[e - mod] = 0;
	for (p = mod; *p && nc < 64;) {
		const char *slash = strchr(p, '/');
		size_t l = slash ? (size_t)(slash - p) : strlen(p);

		if (l) {
			comps[nc] = p;
			lens[nc++] = l;
		}
		if (!slash)
			break;
		p = slash + 1;
	}
	if (nc && lens[nc - 1] == 8 && !strncmp(comps[nc - 1], "__init__", 8))
		nc--;
	for (k = nc - 1; k >= 0; k--) {
		size_t o = 0;

		for (i = k; i < nc; i++) {
			if (o + lens[i] + 2 >= sizeof(cand))
				return false;
			memcpy(cand + o, comps[i], lens[i]);
			o += lens[i];
			cand[o++] = '.';
		}
		snprintf(cand + o, sizeof(cand) - o, "%s", func);
		if (glob(g, cand))
			return true;
	}
	return false;
}

bool fn_pattern__match(const struct fn_pattern *p, const char *file, const char *name, const char *qualname)
{
	if (!p->qualified)
		return glob(p->file_glob, file ? file : "") &&
		       (glob(p->func_glob, name) || glob(p->func_glob, qualname));
	return match_qualified(p->func_glob, file, name) ||
	       (qualname && strcmp(qualname, name ? name : "") && match_qualified(p->func_glob, file, qualname));
}

static bool part_pass(__u8 kind, const char *lit, size_t n, const char *s)
{
	size_t l = strlen(s);

	switch (kind) {
	case FN_M_ANY:
		return true;
	case FN_M_EXACT:
		return l == n && !memcmp(s, lit, n);
	case FN_M_PREFIX:
		return l >= n && !memcmp(s, lit, n);
	case FN_M_SUFFIX:
		return l >= n && !memcmp(s + l - n, lit, n);
	}
	return false;
}

bool fn_filter__pass(const struct fn_filter *f, const char *file, const char *name)
{
	return part_pass(f->name_kind, f->name, f->name_len, name) &&
	       part_pass(f->file_kind, f->file, f->file_len, file);
}

/* ---- aggregation ---- */

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
	struct caller callers[MAX_CALLERS];	/* probes: calls per call site */
	struct caller scallers[MAX_CALLERS];	/* samples: wall ns per calling frame */
	int nscallers;
	int ncallers;
	uint64_t other_callers, unknown_callers;
	uint64_t oncpu_ns, offcpu_ns;	/* sampled */
	uint64_t last_sample_seq;	/* counted once per stack */
};

struct id_slot {
	uint32_t pid;
	uint64_t file, name;
	int fn;			/* -1: not a match; index into fns otherwise; slot free when pid == 0 */
};

struct fpid {
	pid_t pid;
	struct py_probes pp;
	unsigned major, minor;
	char binary[512];
	bool attached;
	struct uprobe links[6];
	int nlinks;
	uint64_t gone;		/* after an exec: the old image's links are released after this ticket */
	bool exited;		/* kept for the report; its slot may be taken by a new process */
	char why[160];		/* for the report: what was attached or why not */
};

struct imp_stat {
	char *module;
	uint64_t ns;
	uint64_t count;
	int found;
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

struct funcs {
	struct funcs_opts opts;
	struct session_maps maps;
	struct pystacks *names_of;	/* names caller frames; NULL: callers unknown */
	struct funcs_bpf *skel;
	enum uprobe_kind uprobes;
	struct { dev_t dev; ino_t ino; uint64_t ip_off; } specs[MAX_SPECS];	/* by spec id */
	int nspecs;
	struct fn_pattern pats[FN_MAX_PATTERNS];
	int npats;
	struct fn_stat *fns;
	int nfns;
	int fn_hash[FN_HASH];	/* index + 1 */
	struct id_slot *ids;
	struct fpid pids[MAX_PIDS];
	int npids;
	uint64_t sample_seq;
	uint64_t wall_ns, wall_oncpu_ns, wall_offcpu_ns;	/* every sampled stack */
	uint64_t candidates_rejected, calls_unknown, fns_dropped;
	struct lathist gc;
	struct lathist gc_gen[3];
	uint64_t gc_collected;
	struct imp_stat *imps;
	int nimps;
	struct lathist imp_h;
	uint64_t imports;
	uint64_t func_events;
	struct pt_stack *st;	/* scratch for naming caller frames */
	const char *names[FRAME_NAMES];
};

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
static int fn_get(struct funcs *f, const char *file, const char *name)
{
	uint32_t i = fnv(file, name) % FN_HASH, n;

	for (n = 0; n < FN_HASH; n++, i = (i + 1) % FN_HASH) {
		int k = f->fn_hash[i] - 1;

		if (k < 0)
			break;
		if (!strcmp(f->fns[k].file, file) && !strcmp(f->fns[k].name, name))
			return k;
	}
	if (n == FN_HASH || f->nfns >= MAX_FUNCS) {
		f->fns_dropped++;
		return -1;
	}
	f->fns[f->nfns].name = strdup(name);
	f->fns[f->nfns].file = strdup(file);
	f->fn_hash[i] = f->nfns + 1;
	return f->nfns++;
}

static struct id_slot *id_get(struct funcs *f, uint32_t pid, uint64_t file, uint64_t name, bool create)
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

static bool any_match(struct funcs *f, const char *file, const char *name, const char *qualname)
{
	int i;

	for (i = 0; i < f->npats; i++)
		if (fn_pattern__match(&f->pats[i], file, name, qualname))
			return true;
	return false;
}

struct funcs *funcs__new(const struct funcs_opts *o, const struct session_maps *maps, struct pystacks *names,
			 char *err, size_t errlen)
{
	struct funcs *f = calloc(1, sizeof(*f));
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
	f->fns = calloc(MAX_FUNCS, sizeof(*f->fns));
	f->ids = calloc(ID_HASH, sizeof(*f->ids));
	f->imps = calloc(MAX_IMPORTS, sizeof(*f->imps));
	f->st = calloc(1, sizeof(*f->st));
	if (!f->fns || !f->ids || !f->imps || !f->st) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	lathist__init(&f->gc);
	for (i = 0; i < 3; i++)
		lathist__init(&f->gc_gen[i]);
	lathist__init(&f->imp_h);
	if (o->npatterns > FN_MAX_PATTERNS) {
		snprintf(err, errlen, "at most %d --functions patterns", FN_MAX_PATTERNS);
		goto fail;
	}
	f->skel = funcs_bpf__open();
	if (!f->skel) {
		snprintf(err, errlen, "cannot open the USDT BPF object: %s", strerror(errno));
		goto fail;
	}
	for (i = 0; i < o->npatterns; i++) {
		if (fn_pattern__compile(o->patterns[i], &f->pats[i], &filt)) {
			snprintf(err, errlen, "invalid --functions pattern '%s' (expected a glob such as "
				 "'myapp.*', 'app.views.index' or '*views.py:*')", o->patterns[i]);
			goto fail;
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
	funcs__free(f);
	return NULL;
}

void funcs__free(struct funcs *f)
{
	int i, j;

	if (!f)
		return;
	for (i = 0; i < f->npids; i++)
		for (j = 0; j < f->pids[i].nlinks; j++)
			uprobe__detach(&f->pids[i].links[j]);
	funcs_bpf__destroy(f->skel);
	for (i = 0; f->fns && i < f->nfns; i++) {
		free(f->fns[i].name);
		free(f->fns[i].qualname);
		free(f->fns[i].file);
		free(f->fns[i].h);
		for (j = 0; j < f->fns[i].ncallers; j++)
			free(f->fns[i].callers[j].name);
		for (j = 0; j < f->fns[i].nscallers; j++)
			free(f->fns[i].scallers[j].name);
	}
	for (i = 0; f->imps && i < f->nimps; i++)
		free(f->imps[i].module);
	free(f->imps);
	free(f->fns);
	free(f->ids);
	free(f->st);
	free(f);
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

int funcs__detect(pid_t pid, struct py_target *py, struct py_probes *pp, char *err, size_t errlen)
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

static struct fpid *fpid_get(struct funcs *f, pid_t pid, bool create)
{
	int i;

	struct fpid *fp = NULL;

	for (i = 0; i < f->npids; i++)
		if (f->pids[i].pid == pid && !f->pids[i].exited)
			return &f->pids[i];
	if (!create)
		return NULL;
	if (f->npids < MAX_PIDS) {
		fp = &f->pids[f->npids++];
	} else {
		/* Full: a process that has exited gives up its slot (and its line in the report). */
		for (i = 0; i < f->npids && !fp; i++)
			if (f->pids[i].exited)
				fp = &f->pids[i];
		if (!fp)
			return NULL;
	}
	memset(fp, 0, sizeof(*fp));
	fp->pid = pid;
	return fp;
}

/* The spec id (attach cookie) of a probe site of host, its arguments written for usdt.bpf.h. */
static int spec_for(struct funcs *f, const struct stat *sb, const struct usdt_note *n)
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
static int attach_sites(struct funcs *f, struct fpid *fp, struct bpf_program *prog, const char *host,
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
	return uprobe__attach_sites(&fp->links[fp->nlinks], prog, fp->pid, host, offs, refs, cookies, cnt);
}

static int attach_one(struct funcs *f, struct fpid *fp, struct bpf_program *prog, const char *host,
		      const char *name, const struct usdt_note *notes, int nnotes, char *err, size_t errlen)
{
	int ret = 0;

	if (fp->nlinks >= (int)ARRAY_SIZE(fp->links))
		ret = -E2BIG;
	else if (f->uprobes == UPROBE_MULTI)
		ret = attach_sites(f, fp, prog, host, name, notes, nnotes);
	else if (!(fp->links[fp->nlinks].link = bpf_program__attach_usdt(prog, fp->pid, host, "python", name, NULL)))
		ret = -errno;
	if (ret) {
		snprintf(err, errlen, "cannot attach python:%s in pid %d: %s", name, fp->pid, strerror(-ret));
		return ret;
	}
	fp->nlinks++;
	return 0;
}

int funcs__add_pid(struct funcs *f, pid_t pid, const struct py_target *py, char *err, size_t errlen)
{
	struct fpid *fp = fpid_get(f, pid, true);
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
	fp->major = py->major;
	fp->minor = py->minor;
	snprintf(fp->binary, sizeof(fp->binary), "%s", py->binary);
	ret = read_probes(py, &fp->pp, host, sizeof(host), notes, &nnotes);
	if (ret) {
		snprintf(err, errlen, "cannot read the SDT notes of %s: %s", host, strerror(-ret));
		return ret;
	}
	fp->attached = true;
	fn = fp->pp.level == PY_PROBES_COMPLETE && f->opts.mode == FUNCS_AUTO && f->npats;
	if (fn) {
		ret = attach_one(f, fp, f->skel->progs.func_entry, host, "function__entry", notes, nnotes, err, errlen);
		if (!ret)
			ret = attach_one(f, fp, f->skel->progs.func_return, host, "function__return", notes, nnotes, err, errlen);
		if (ret)
			return ret;
	}
	if (f->opts.gc && fp->pp.gc_start && fp->pp.gc_done) {
		ret = attach_one(f, fp, f->skel->progs.gc_start, host, "gc__start", notes, nnotes, err, errlen);
		if (!ret)
			ret = attach_one(f, fp, f->skel->progs.gc_done, host, "gc__done", notes, nnotes, err, errlen);
		if (ret)
			return ret;
	}
	if (f->opts.gc && fp->pp.import_start && fp->pp.import_done) {
		ret = attach_one(f, fp, f->skel->progs.import_start, host, "import__find__load__start", notes, nnotes, err, errlen);
		if (!ret)
			ret = attach_one(f, fp, f->skel->progs.import_done, host, "import__find__load__done", notes, nnotes, err, errlen);
		if (ret)
			return ret;
	}
	vlog("pid %d: %s (%d python:* notes)%s, as %s\n", pid, usdt__level_str(fp->pp.level), fp->pp.nnotes,
	     fn ? ", function probes attached" : "", uprobe__kind_name(f->uprobes));
	return 0;
}

/* pid exec'd: its probes went with the old image; attach again when it is inspected anew. */
void funcs__forget_pid(struct funcs *f, pid_t pid)
{
	struct fpid *fp = fpid_get(f, pid, false);
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
void funcs__exit_pid(struct funcs *f, pid_t pid)
{
	struct fpid *fp = fpid_get(f, pid, false);
	int i;

	if (!fp)
		return;
	for (i = 0; i < fp->nlinks; i++)
		uprobe__detach(&fp->links[i]);
	fp->nlinks = 0;
	fp->exited = true;
}

static bool sampled_pid(const struct funcs *f, const struct fpid *fp)
{
	return f->opts.mode == FUNCS_SAMPLE || fp->pp.level != PY_PROBES_COMPLETE;
}

bool funcs__sampling_used(const struct funcs *f)
{
	int i;

	for (i = 0; i < f->npids; i++)
		if (sampled_pid(f, &f->pids[i]))
			return true;
	return f->npids == 0;
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
	if (s->ncallers < MAX_CALLERS) {
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
	if (s->nscallers < MAX_CALLERS) {
		s->scallers[s->nscallers].name = strdup(caller);
		s->scallers[s->nscallers++].calls = ns;
	}
}

/* Name the caller from the frames read at entry; learn the qualified name on the way. */
static void note_caller(struct funcs *f, const struct fn_call *e, struct fn_stat *s)
{
	char buf[1024], *q, *file;
	size_t n, i;

	if (!e->nframes || !f->names_of) {
		s->unknown_callers++;
		return;
	}
	f->st->nframes = e->nframes;
	f->st->flags = 0;
	for (i = 0; i < e->nframes && i < FN_CALLER_FRAMES; i++)
		f->st->frames[i] = e->frames[i];
	n = pystacks__name(f->names_of, e->hdr.pid, e->tid, f->st, f->names, FRAME_NAMES);
	if (!n) {
		s->unknown_callers++;
		return;
	}
	/* Root first: the innermost is last. Is it the callee's own frame (pushed before the probe)? */
	i = n - 1;
	snprintf(buf, sizeof(buf), "%s", f->names[i]);
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
	if (f->names[i][0] == '[')
		s->unknown_callers++;
	else
		add_caller(s, f->names[i]);
}

static void handle_call(struct funcs *f, const struct fn_call *e, size_t size)
{
	struct id_slot *id = id_get(f, e->hdr.pid, e->file_ptr, e->name_ptr, true);
	struct fn_key key = { .pid = e->hdr.pid, .file = e->file_ptr, .name = e->name_ptr };
	bool full = size >= sizeof(*e);
	struct fn_stat *s;
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
		if (!any_match(f, file, name, NULL)) {
			/* passed the prefilter, not the glob: stop it in BPF from now on */
			v = FN_V_NO;
			bpf_map_update_elem(bpf_map__fd(f->skel->maps.verdicts), &key, &v, BPF_ANY);
			f->candidates_rejected++;
			return;
		}
		id->fn = fn_get(f, file, name);
		if (id->fn < 0)
			return;
		f->fns[id->fn].matched = true;
		v = FN_V_YES;
		bpf_map_update_elem(bpf_map__fd(f->skel->maps.verdicts), &key, &v, BPF_ANY);
	}
	if (id->fn < 0) {
		f->calls_unknown++;	/* a name-less event for a function not seen yet (evicted) */
		return;
	}
	s = &f->fns[id->fn];
	if (!s->h) {
		s->h = malloc(sizeof(*s->h));
		if (!s->h)
			return;
		lathist__init(s->h);
	}
	lathist__add(s->h, e->dur_ns);
	note_caller(f, e, s);
}

static void handle_import(struct funcs *f, const struct fn_import *e)
{
	char mod[FN_MOD_MAX + 1];
	int i;

	memcpy(mod, e->module, FN_MOD_MAX);
	mod[FN_MOD_MAX] = 0;
	f->imports++;
	lathist__add(&f->imp_h, e->dur_ns);
	for (i = 0; i < f->nimps; i++)
		if (!strcmp(f->imps[i].module, mod))
			break;
	if (i == f->nimps) {
		if (f->nimps >= MAX_IMPORTS)
			return;
		f->imps[i].module = strdup(mod);
		f->nimps++;
	}
	f->imps[i].ns += e->dur_ns;
	f->imps[i].count++;
	f->imps[i].found = e->found;
}

void funcs__handle(struct funcs *f, const void *data, size_t size)
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

			lathist__add(&f->gc, g->dur_ns);
			if (g->generation >= 0 && g->generation < 3)
				lathist__add(&f->gc_gen[g->generation], g->dur_ns);
			if (g->collected > 0)
				f->gc_collected += g->collected;
		}
		break;
	case PT_EV_FUNC_IMPORT:
		if (size >= sizeof(struct fn_import))
			handle_import(f, data);
		break;
	}
}

void funcs__add_sample(struct funcs *f, uint32_t pid, uint32_t tid, const char *const *frames, size_t n,
		       uint64_t weight_ns, bool offcpu)
{
	struct fpid *fp = fpid_get(f, pid, false);
	char buf[1024], *q, *file;
	size_t i;

	if (fp && !sampled_pid(f, fp))
		return;
	f->sample_seq++;
	f->wall_ns += weight_ns;
	if (offcpu)
		f->wall_offcpu_ns += weight_ns;
	else
		f->wall_oncpu_ns += weight_ns;
	for (i = 0; i < n; i++) {
		struct fn_stat *s;
		const char *name;
		int k;

		snprintf(buf, sizeof(buf), "%s", frames[i]);
		if (!split_frame(buf, &q, &file))
			continue;
		/* the probes' co_name is the qualified name's last part */
		name = strrchr(q, '.') ? strrchr(q, '.') + 1 : q;
		if (!any_match(f, file, name, q))
			continue;
		k = fn_get(f, file, q);
		if (k < 0)
			continue;
		s = &f->fns[k];
		s->matched = true;
		if (!s->qualname)
			s->qualname = strdup(q);
		if (s->last_sample_seq == f->sample_seq)
			continue;	/* recursion: once per stack */
		s->last_sample_seq = f->sample_seq;
		if (offcpu)
			s->offcpu_ns += weight_ns;
		else
			s->oncpu_ns += weight_ns;
		add_scaller(s, i > 0 && frames[i - 1][0] != '[' ? frames[i - 1] : "[root]", weight_ns);
	}
}

/* ---- reports ---- */

/* A shared per-CPU counter, summed. */
static uint64_t counter(struct funcs *f, __u32 key)
{
	int ncpus = libbpf_num_possible_cpus(), c;
	uint64_t vals[256], sum = 0;

	if (ncpus <= 0 || ncpus > 256 || bpf_map_lookup_elem(bpf_map__fd(f->maps.counters), &key, vals))
		return 0;
	for (c = 0; c < ncpus; c++)
		sum += vals[c];
	return sum;
}


static const char *source_text(struct funcs *f)
{
	bool probes = false, partial = false, none = false, silent = false;
	int i;

	for (i = 0; i < f->npids; i++) {
		switch (f->pids[i].pp.level) {
		case PY_PROBES_COMPLETE: probes = true; break;
		case PY_PROBES_PARTIAL: partial = true; break;
		case PY_PROBES_SILENT: silent = true; break;
		default: none = true; break;
		}
	}
	if (f->opts.mode == FUNCS_SAMPLE)
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

static const char *source_key(const struct funcs *f, const struct fpid *fp)
{
	if (f->opts.mode == FUNCS_SAMPLE)
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
	const struct fn_stat *fa = &((struct funcs *)ctx)->fns[*(const int *)a];
	const struct fn_stat *fb = &((struct funcs *)ctx)->fns[*(const int *)b];
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
static int sorted(struct funcs *f, int *idx)
{
	int i, n = 0;

	for (i = 0; i < f->nfns; i++)
		if (f->fns[i].matched && (f->fns[i].h || f->fns[i].oncpu_ns + f->fns[i].offcpu_ns))
			idx[n++] = i;
	qsort_r(idx, n, sizeof(*idx), cmp_total, f);
	for (i = 0; i < n; i++) {
		qsort(f->fns[idx[i]].callers, f->fns[idx[i]].ncallers, sizeof(struct caller), cmp_callers);
		qsort(f->fns[idx[i]].scallers, f->fns[idx[i]].nscallers, sizeof(struct caller), cmp_callers);
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

void funcs__report(struct funcs *f, FILE *out)
{
	int *idx = calloc(f->nfns + 1, sizeof(int)), n, i, j, shown = 0;
	char a[6][24];

	if (!idx)
		return;
	n = sorted(f, idx);
	fprintf(out, "\nFunctions matching");
	for (i = 0; i < f->npats; i++)
		fprintf(out, " '%s'", f->pats[i].text);
	fprintf(out, "\nSource: %s\n", source_text(f));
	for (i = 0; i < f->npids; i++)
		fprintf(out, "  pid %d: CPython %u.%u (%s): %s%s\n", f->pids[i].pid, f->pids[i].major,
			f->pids[i].minor, f->pids[i].binary, usdt__level_str(f->pids[i].pp.level),
			sampled_pid(f, &f->pids[i]) ? " -> sampled shares" : "");
	for (i = 0; i < n; i++) {
		struct fn_stat *s = &f->fns[idx[i]];

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
		uint64_t lost = counter(f, PT_CNT_FUNC_LOST), unpaired = counter(f, PT_CNT_FUNC_UNPAIRED);

		fprintf(out, "  (wall time from entry to return, exceptions included; a generator counts one call "
			"per resume; calls already running when tracing began are not counted)\n");
		if (lost || unpaired)
			fprintf(out, "  %llu events lost (ring buffer full), %llu entries without a return\n",
				(unsigned long long)lost, (unsigned long long)unpaired);
	}
	if (funcs__sampling_used(f)) {
		fprintf(out, "  Sampled wall-clock time: %.3fs (on-CPU %.3fs, off-CPU %.3fs) over all traced threads\n",
			f->wall_ns / 1e9, f->wall_oncpu_ns / 1e9, f->wall_offcpu_ns / 1e9);
		shown = 0;
		for (i = 0; i < n; i++) {
			struct fn_stat *s = &f->fns[idx[i]];
			uint64_t t = s->oncpu_ns + s->offcpu_ns;

			if (!t)
				continue;
			if (!shown++)
				fprintf(out, "  %8s %10s %10s %10s  function\n", "share", "wall", "on-CPU", "off-CPU");
			fmt_ns(a[0], sizeof(a[0]), (double)t);
			fmt_ns(a[1], sizeof(a[1]), (double)s->oncpu_ns);
			fmt_ns(a[2], sizeof(a[2]), (double)s->offcpu_ns);
			fprintf(out, "  %7.1f%% %10s %10s %10s  %s (%s)\n", f->wall_ns ? 100.0 * t / f->wall_ns : 0,
				a[0], a[1], a[2], display(s), s->file);
			for (j = 0; j < s->nscallers && j < 2; j++)
				fprintf(out, "  %8s %9.1f%% of it from %s\n", j ? "" : "callers:",
					100.0 * s->scallers[j].calls / t, s->scallers[j].name);
		}
	}
	if (!n)
		fprintf(out, "  (no matching function was seen)\n");
	if (f->gc.count) {
		fmt_ns(a[0], sizeof(a[0]), (double)f->gc.sum);
		fmt_ns(a[1], sizeof(a[1]), (double)lathist__percentile(&f->gc, 50));
		fmt_ns(a[2], sizeof(a[2]), (double)lathist__percentile(&f->gc, 99));
		fmt_ns(a[3], sizeof(a[3]), (double)f->gc.max);
		fprintf(out, "\nGC pauses (gc__start/gc__done): %llu collections, total %s, p50 %s, p99 %s, max %s\n",
			(unsigned long long)f->gc.count, a[0], a[1], a[2], a[3]);
	}
	if (f->imports) {
		fmt_ns(a[0], sizeof(a[0]), (double)f->imp_h.sum);
		fprintf(out, "Imports (import__find__load_*): %llu, %s including nested imports\n",
			(unsigned long long)f->imports, a[0]);
		qsort(f->imps, f->nimps, sizeof(*f->imps), cmp_imp);
		for (i = 0; i < f->nimps && i < 5; i++) {
			fmt_ns(a[1], sizeof(a[1]), (double)f->imps[i].ns);
			fprintf(out, "  %10s  %s\n", a[1], f->imps[i].module);
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

void funcs__write_json(struct funcs *f, struct jsonw *w)
{
	int *idx = calloc(f->nfns + 1, sizeof(int)), n, i, j;

	n = idx ? sorted(f, idx) : 0;
	jsonw__start_object(w);
	jsonw__name(w, "patterns");
	jsonw__start_array(w);
	for (i = 0; i < f->npats; i++)
		jsonw__string(w, f->pats[i].text);
	jsonw__end_array(w);
	jsonw__string_field(w, "source", source_text(f));
	jsonw__name(w, "processes");
	jsonw__start_array(w);
	for (i = 0; i < f->npids; i++) {
		const struct fpid *fp = &f->pids[i];

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
		jsonw__string_field(w, "source", source_key(f, fp));
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__name(w, "calls");
	jsonw__start_array(w);
	for (i = 0; i < n; i++) {
		struct fn_stat *s = &f->fns[idx[i]];

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
	jsonw__uint_field(w, "wall_ns", f->wall_ns);
	jsonw__uint_field(w, "oncpu_ns", f->wall_oncpu_ns);
	jsonw__uint_field(w, "offcpu_ns", f->wall_offcpu_ns);
	jsonw__name(w, "functions");
	jsonw__start_array(w);
	for (i = 0; i < n; i++) {
		struct fn_stat *s = &f->fns[idx[i]];
		uint64_t t = s->oncpu_ns + s->offcpu_ns;

		if (!t)
			continue;
		jsonw__start_object(w);
		jsonw__string_field(w, "function", display(s));
		jsonw__string_field(w, "file", s->file);
		jsonw__double_field(w, "share", f->wall_ns ? (double)t / f->wall_ns : 0);
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
	jsonw__uint_field(w, "candidates_rejected", f->candidates_rejected);
	jsonw__uint_field(w, "lost_events", counter(f, PT_CNT_FUNC_LOST));
	jsonw__uint_field(w, "unpaired_entries", counter(f, PT_CNT_FUNC_UNPAIRED));
	jsonw__uint_field(w, "too_deep", counter(f, PT_CNT_FUNC_DEEP));
	jsonw__uint_field(w, "offcpu_stacks", counter(f, PT_CNT_OFFCPU));
	jsonw__uint_field(w, "events_unattributed", f->calls_unknown);
	jsonw__end_object(w);
	free(idx);
}


void funcs__write_gc_json(struct funcs *f, struct jsonw *w)
{
	bool gc = false, imp = false;
	int i;

	for (i = 0; i < f->npids; i++) {
		gc |= f->pids[i].pp.gc_start && f->pids[i].pp.gc_done;
		imp |= f->pids[i].pp.import_start && f->pids[i].pp.import_done;
	}
	jsonw__start_object(w);
	jsonw__bool_field(w, "probes", gc);
	json_hist(w, &f->gc);
	jsonw__uint_field(w, "collected", f->gc_collected);
	jsonw__name(w, "generations");
	jsonw__start_array(w);
	for (i = 0; i < 3; i++) {
		jsonw__start_object(w);
		jsonw__uint_field(w, "generation", i);
		json_hist(w, &f->gc_gen[i]);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__name(w, "imports");
	jsonw__start_object(w);
	jsonw__bool_field(w, "probes", imp);
	json_hist(w, &f->imp_h);
	jsonw__name(w, "modules");
	jsonw__start_array(w);
	qsort(f->imps, f->nimps, sizeof(*f->imps), cmp_imp);
	for (i = 0; i < f->nimps && i < 100; i++) {
		jsonw__start_object(w);
		jsonw__string_field(w, "module", f->imps[i].module);
		jsonw__uint_field(w, "total_ns", f->imps[i].ns);
		jsonw__uint_field(w, "count", f->imps[i].count);
		jsonw__end_object(w);
	}
	jsonw__end_array(w);
	jsonw__end_object(w);
	jsonw__end_object(w);
}

/* ---- the capability ---- */

static void on_sample(void *c, uint32_t pid, uint32_t tid, const char *const *frames, size_t n,
		      uint64_t weight_ns, bool offcpu)
{
	funcs__add_sample(c, pid, tid, frames, n, weight_ns, offcpu);
}

static void *funcs_open(struct session *ss, const struct session_opts *so, char *err, size_t errlen)
{
	struct sampler *sampler = session__cap(ss, "sampler");
	struct funcs *f;

	if (!so->funcs.enabled)
		return NULL;
	f = funcs__new(&so->funcs, session__maps(ss), session__pystacks(ss), err, errlen);
	if (f && sampler)
		sampler__listen(sampler, on_sample, f);
	return f;
}

static void funcs_on_python(void *c, const struct proc *p)
{
	char err[512];

	if (funcs__add_pid(c, p->pid, &p->py, err, sizeof(err)))
		wlog("%s\n", err);
}

static void funcs_on_fork(void *c, const struct proc *child, const struct proc *parent)
{
	funcs_on_python(c, child);
}

static void funcs_on_exec(void *c, pid_t pid)
{
	funcs__forget_pid(c, pid);
}

static void funcs_on_exit(void *c, pid_t pid)
{
	funcs__exit_pid(c, pid);
}

static void funcs_event(void *c, const void *data, size_t size)
{
	funcs__handle(c, data, size);
}

static void funcs_json(void *c, struct jsonw *w)
{
	jsonw__name(w, "functions");
	funcs__write_json(c, w);
	jsonw__name(w, "gc");
	funcs__write_gc_json(c, w);
}

static void funcs_report(void *c, FILE *f, unsigned written)
{
	if (!(written & SESSION_WROTE_JSON))
		funcs__report(c, f);
}

/* Its report always says what it found, even "no calls": the run is not empty. */
static bool funcs_collected(void *c)
{
	return true;
}

static void funcs_free_cap(void *c)
{
	funcs__free(c);
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
