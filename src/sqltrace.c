// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "elfsym.h"
#include "jsonw.h"
#include "procmaps.h"
#include "sql.skel.h"
#include "sqlmode.h"
#include "sqlnorm.h"
#include "sqltrace.h"
#include "uprobe.h"
#include "util.h"

#define MAX_PROBED	4096	/* (process, libpq) pairs probed at once */
/*
 * Probes ahead are few and brief. Each (process, file) pair is a consumer on the file's uprobes,
 * and the kernel calls every consumer's handler at every hit, in any process, to be turned away
 * by its pid filter: about 23 ns a consumer a hit here, 2.3 us more per send+result pair with 32
 * bystanders probed ahead (docs/PERFORMANCE.md). A process that never maps libpq must not tax
 * the traced statements for long: after AHEAD_TTL_NS its probes go and the watch alone stays.
 * Late imports happen at start-up (an application's modules, a worker's boot), well inside it.
 */
#define MAX_AHEAD	8
#define AHEAD_TTL_NS	(10 * 1000000000ULL)	/* PYTRACE_AHEAD_TTL_MS overrides it, for tests */
#define STACK_CACHE	4096	/* symbolized statement stacks kept */
#define MAX_SQL_FRAMES	(PT_MAX_FRAMES + 2)

/*
 * The libpq entry points the Python drivers use (see DOMAIN.md section 4), in two sets: the
 * loader attaches one per process, and both for a moment while it moves a process from one to
 * the other (sqlmode.h). The sentinels are calls only the asynchronous API makes (not PQisBusy:
 * psycopg2's synchronous connect calls it once).
 */
enum probe_id {
	P_SEND_QUERY, P_SEND_PARAMS, P_SEND_PREPARE, P_SEND_PREPARED, P_GET_RESULT, P_GET_RESULT_RET,
	P_PIPELINE_SYNC,
	P_EXEC, P_EXEC_RET, P_EXEC_PARAMS, P_EXEC_PARAMS_RET, P_PREPARE, P_PREPARE_RET,
	P_EXEC_PREPARED, P_EXEC_PREPARED_RET, P_CONSUME_INPUT, P_FLUSH,
	P_MAX
};
static const struct {
	const char *sym;
	enum sql_set set;
	bool retprobe;
	bool optional;		/* PQpipelineSync: libpq 14+ */
} probes[P_MAX] = {
	[P_SEND_QUERY] = { "PQsendQuery", SQL_SET_SEND },
	[P_SEND_PARAMS] = { "PQsendQueryParams", SQL_SET_SEND },
	[P_SEND_PREPARE] = { "PQsendPrepare", SQL_SET_SEND },
	[P_SEND_PREPARED] = { "PQsendQueryPrepared", SQL_SET_SEND },
	[P_GET_RESULT] = { "PQgetResult", SQL_SET_SEND },
	[P_GET_RESULT_RET] = { "PQgetResult", SQL_SET_SEND, true },
	[P_PIPELINE_SYNC] = { "PQpipelineSync", SQL_SET_SEND, false, true },
	[P_EXEC] = { "PQexec", SQL_SET_EXEC },
	[P_EXEC_RET] = { "PQexec", SQL_SET_EXEC, true },
	[P_EXEC_PARAMS] = { "PQexecParams", SQL_SET_EXEC },
	[P_EXEC_PARAMS_RET] = { "PQexecParams", SQL_SET_EXEC, true },
	[P_PREPARE] = { "PQprepare", SQL_SET_EXEC },
	[P_PREPARE_RET] = { "PQprepare", SQL_SET_EXEC, true },
	[P_EXEC_PREPARED] = { "PQexecPrepared", SQL_SET_EXEC },
	[P_EXEC_PREPARED_RET] = { "PQexecPrepared", SQL_SET_EXEC, true },
	[P_CONSUME_INPUT] = { "PQconsumeInput", SQL_SET_EXEC },
	[P_FLUSH] = { "PQflush", SQL_SET_EXEC },
};

#define SWITCH_GRACE_NS (500 * 1000000ULL)	/* both sets attached this long while switching */

/*
 * Probes are attached per process, not per file: a uprobe with a pid filter installs its
 * breakpoints only in that process, so other programs using the same libpq pay nothing.
 */
struct libpq {
	pid_t pid;		/* 0: free slot */
	dev_t dev;
	ino_t ino;
	char path[256];		/* as the process names it */
	char host[600];		/* how to open it from here */
	uint64_t offs[P_MAX];	/* where each probe goes: file offsets, 0 if absent */
	struct uprobe links[P_MAX];
	bool mapped;		/* false: attached ahead, before the process maps the file */
	uint64_t ahead_until;	/* not mapped by then (CLOCK_MONOTONIC): the probes go */
	enum sql_set set;	/* the set that records statements */
	bool pinned;		/* on the send probes for good */
	bool settled;		/* and told the BPF side so (struct sql_proc.settled) */
	uint64_t drop_at;	/* the other set is still attached until then (0: it is not) */
	uint64_t exec_gone;	/* the exec set's links are released after this ticket (0: they are) */
};

/*
 * A Python process without libpq yet, with a probe on its dynamic linker's _dl_debug_state
 * (sql.bpf.c): a libpq that a late import maps is probed at once, not at the next rescan.
 */
#define MAX_WATCHED	1024
struct watch {
	pid_t pid;		/* 0: free slot */
	struct uprobe link;
};

/*
 * A libpq file, located once: where its probes go. Each one a traced process maps, and the
 * system's, is probed ahead in Python processes that have no libpq yet (sqltrace__watch_pid):
 * a uprobe registered on a file before the process maps it has its breakpoints written by the
 * kernel as the file is mapped, so a driver imported late loses not even its first statement.
 */
struct libpq_file {
	dev_t dev;
	ino_t ino;
	char host[600];		/* a path to it from here: any will do, a uprobe is on the inode */
	uint64_t offs[P_MAX];
	bool known;		/* a libpq this tool can probe */
	bool mapped;		/* some traced process mapped it: counted in the report */
};

struct stack_entry {
	uint32_t pid;
	uint64_t id;		/* 0: free */
	char **frames;		/* root first */
	size_t n;
	const char *call_site;	/* one of frames, or NULL */
};

struct sqltrace {
	struct sqltrace_opts opts;
	struct sqltrace_shared sh;
	struct sql_bpf *skel;
	enum uprobe_kind uprobes;	/* how the probes are attached */
	bool loaded;
	struct libpq *libpq;	/* MAX_PROBED slots */
	struct watch *watch;	/* MAX_WATCHED slots: processes whose dlopens are watched */
	int nlibpq;		/* slots in use */
	int nahead;		/* of which probed ahead, not mapped yet */
	uint64_t ahead_ttl_ns;		/* AHEAD_TTL_NS, or PYTRACE_AHEAD_TTL_MS (tests) */
	struct libpq_file files[64];	/* distinct libpq files located */
	int nfiles;
	bool seeded;			/* the system's libpq was looked for */
	uint64_t unprobed;	/* processes left unprobed: MAX_PROBED reached */
	struct sql_match *match;
	struct sql_stats *stats;
	struct stack_entry *cache;	/* direct-mapped on (pid, id) */
	struct sqltrace_stats st;
};

static struct bpf_program *probe_prog(struct sql_bpf *skel, enum probe_id p)
{
	switch (p) {
	case P_SEND_QUERY: return skel->progs.pq_send_query;
	case P_SEND_PARAMS: return skel->progs.pq_send_query_params;
	case P_SEND_PREPARE: return skel->progs.pq_send_prepare;
	case P_SEND_PREPARED: return skel->progs.pq_send_query_prepared;
	case P_GET_RESULT: return skel->progs.pq_get_result;
	case P_GET_RESULT_RET: return skel->progs.pq_get_result_ret;
	case P_PIPELINE_SYNC: return skel->progs.pq_pipeline_sync;
	case P_EXEC: return skel->progs.pq_exec;
	case P_EXEC_PARAMS: return skel->progs.pq_exec_params;
	case P_PREPARE: return skel->progs.pq_prepare;
	case P_EXEC_PREPARED: return skel->progs.pq_exec_prepared;
	case P_EXEC_RET: case P_EXEC_PARAMS_RET: case P_PREPARE_RET: case P_EXEC_PREPARED_RET:
		return skel->progs.pq_exec_ret;
	case P_CONSUME_INPUT: case P_FLUSH:
		return skel->progs.pq_async_api;
	default: return NULL;
	}
}

/*
 * A uprobe on an instruction the kernel can emulate costs ~0.5 us; one it must single-step,
 * ~11 us (DOMAIN.md section 3). libpq's PQsendQuery is `mov $1,%edx; jmp PQsendQueryInternal`:
 * probe the jmp, where the arguments we read (rdi, rsi) are still intact.
 */
static uint64_t emulable_offset(uint64_t off, const uint8_t *code)
{
	if (code[0] >= 0xb8 && code[0] <= 0xbf && (code[5] == 0xe9 || code[5] == 0xeb))
		return off + 5;
	return off;
}

static void query_done(void *ctx, const struct sql_query *q);
static void async_seen(struct sqltrace *s, uint32_t pid, uint64_t now);

struct sqltrace *sqltrace__new(const struct sqltrace_opts *o, const struct sqltrace_shared *sh,
			       char *err, size_t errlen)
{
	struct sql_stats_opts so = { .max_patterns = o->max_patterns, .show_literals = o->show_literals };
	struct sqltrace *s = calloc(1, sizeof(*s));
	struct bpf_program *prog;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->opts = *o;
	s->ahead_ttl_ns = getenv("PYTRACE_AHEAD_TTL_MS") ? strtoull(getenv("PYTRACE_AHEAD_TTL_MS"), NULL, 10) * 1000000ULL :
			  AHEAD_TTL_NS;
	if (!s->opts.text_cap)
		s->opts.text_cap = 1024;
	s->sh = *sh;
	s->match = sql_match__new(0, query_done, s);
	s->stats = sql_stats__new(&so);
	s->cache = calloc(STACK_CACHE, sizeof(*s->cache));
	s->libpq = calloc(MAX_PROBED, sizeof(*s->libpq));
	s->watch = calloc(MAX_WATCHED, sizeof(*s->watch));
	if (!s->match || !s->stats || !s->cache || !s->libpq || !s->watch) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->skel = sql_bpf__open();
	if (!s->skel) {
		snprintf(err, errlen, "cannot open the libpq BPF object: %s", strerror(errno));
		goto fail;
	}
	s->uprobes = uprobe__kind();
	bpf_object__for_each_program(prog, s->skel->obj) {
		if (uprobe__prepare(prog, s->uprobes)) {
			snprintf(err, errlen, "cannot prepare the libpq BPF programs for %s", uprobe__kind_name(s->uprobes));
			goto fail;
		}
	}
	/* The statement text keeps its NUL in the BPF buffer: one more byte than the user's cap. */
	s->skel->rodata->text_cap = s->opts.text_cap + 1 > SQL_TEXT_MAX ? SQL_TEXT_MAX : s->opts.text_cap + 1;
	if (bpf_map__reuse_fd(s->skel->maps.procs, bpf_map__fd(sh->procs)) ||
	    bpf_map__reuse_fd(s->skel->maps.tracked, bpf_map__fd(sh->tracked)) ||
	    bpf_map__reuse_fd(s->skel->maps.counters, bpf_map__fd(sh->counters)) ||
	    bpf_map__reuse_fd(s->skel->maps.events, bpf_map__fd(sh->events))) {
		snprintf(err, errlen, "cannot share maps with the libpq BPF object: %s", strerror(errno));
		goto fail;
	}
	/* Loaded when a traced process first maps libpq: a target without one pays nothing. */
	return s;
fail:
	sqltrace__free(s);
	return NULL;
}

/*
 * Where each probe goes in f; the PQsend* and PQgetResult probes must all be there. Returns 0,
 * 1 if f is not a libpq this tool knows, or a negative errno if its symbols could not be read.
 */
static int locate_probes(struct libpq_file *f, const char *name, char *err, size_t errlen)
{
	struct elf_sym_query q[P_MAX];
	uint8_t code[P_MAX][16];
	int i, ret;

	for (i = 0; i < P_MAX; i++)
		q[i].name = probes[i].sym;
	ret = elfsym__file_offsets(f->host, q, P_MAX, f->offs, code);
	if (ret) {
		snprintf(err, errlen, "cannot read the symbols of %s: %s", name, strerror(-ret));
		return ret;
	}
	for (i = 0; i < P_MAX; i++) {
		if (!f->offs[i] && probes[i].set == SQL_SET_SEND && !probes[i].optional) {
			snprintf(err, errlen, "%s has no %s: not a libpq this tool knows", name, probes[i].sym);
			return 1;
		}
		if (f->offs[i] && !probes[i].retprobe)
			f->offs[i] = emulable_offset(f->offs[i], code[i]);
	}
	return 0;
}

static bool is_file(const char *path, dev_t dev, ino_t ino)
{
	struct stat sb;

	return stat(path, &sb) == 0 && sb.st_dev == dev && sb.st_ino == ino;
}

/*
 * The file (dev, ino), reachable here as host, located on first sight. Returns NULL with err set
 * when it is not a libpq this tool knows (remembered: not read again), when its symbols cannot
 * be read now (not remembered: host may be a /proc/PID/root path of a process that just went),
 * or when no slot is left. The path kept for probing ahead is the process's own name for the file
 * where that names it here too (it outlives the process), else host, replaced by a later one
 * once it stops leading to the file.
 */
static struct libpq_file *locate_file(struct sqltrace *s, dev_t dev, ino_t ino, const char *host,
				      const char *name, char *err, size_t errlen)
{
	struct libpq_file *f;
	int i, ret;

	for (i = 0; i < s->nfiles; i++) {
		f = &s->files[i];
		if (f->dev == dev && f->ino == ino) {
			if (!f->known)
				snprintf(err, errlen, "%s is not a libpq this tool knows", name);
			else if (!is_file(f->host, dev, ino))
				snprintf(f->host, sizeof(f->host), "%s", host);
			return f->known ? f : NULL;
		}
	}
	if (s->nfiles == (int)ARRAY_SIZE(s->files)) {
		snprintf(err, errlen, "%s: more than %zu distinct libpq files", name, ARRAY_SIZE(s->files));
		return NULL;
	}
	f = &s->files[s->nfiles];
	memset(f, 0, sizeof(*f));
	f->dev = dev;
	f->ino = ino;
	snprintf(f->host, sizeof(f->host), "%s", is_file(name, dev, ino) ? name : host);
	ret = locate_probes(f, name, err, errlen);
	if (ret < 0)
		return NULL;	/* unread: looked at again next time */
	s->nfiles++;
	f->known = ret == 0;
	return f->known ? f : NULL;
}

/*
 * Attach the probes of set (those not attached yet) in lp's process. Return probes go first: a
 * call whose entry probe claims it (in_exec_call) must find its return probe armed, or the send
 * probes would skip its statement and nothing would report it.
 */
static int attach_set(struct sqltrace *s, struct libpq *lp, enum sql_set set, char *err, size_t errlen)
{
	int k, i, ret;

	for (k = 0; k < 2 * P_MAX; k++) {
		i = k % P_MAX;
		if ((k < P_MAX) != probes[i].retprobe)
			continue;
		if (probes[i].set != set || uprobe__attached(&lp->links[i]) || !lp->offs[i])
			continue;
		ret = uprobe__attach(&lp->links[i], s->uprobes, probe_prog(s->skel, i), probes[i].retprobe, lp->pid,
				     lp->host, lp->offs[i]);
		if (ret) {
			snprintf(err, errlen, "cannot probe %s in %s: %s", probes[i].sym, lp->path, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Returns the ticket after which all of set's links are gone (uprobe__released), 0 if none. */
static uint64_t detach_set(struct libpq *lp, enum sql_set set)
{
	uint64_t ticket = 0, t;
	int i;

	for (i = 0; i < P_MAX; i++) {
		if (probes[i].set == set && (t = uprobe__detach(&lp->links[i])))
			ticket = t;
	}
	return ticket;
}

struct scan_ctx {
	struct sqltrace *s;
	pid_t pid;
	int found;
	int err;
	char *errbuf;
	size_t errlen;
};

static bool is_libpq(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	/* libpq.so.5 (system), libpq-<hash>.so.5.NN (auditwheel copies in wheels) */
	return (strncmp(base, "libpq.so", 8) == 0 || strncmp(base, "libpq-", 6) == 0) && strstr(base, ".so");
}

static void detach(struct libpq *lp)
{
	detach_set(lp, SQL_SET_SEND);
	detach_set(lp, SQL_SET_EXEC);
	memset(lp, 0, sizeof(*lp));
}

/* The libpq programs are loaded when first needed: a target that never has libpq pays nothing. */
static int ensure_loaded(struct sqltrace *s, char *err, size_t errlen)
{
	int ret;

	if (s->loaded)
		return 0;
	ret = sql_bpf__load(s->skel);
	if (ret) {
		snprintf(err, errlen, "cannot load the libpq BPF programs: %s", strerror(-ret));
		return ret;
	}
	s->loaded = true;
	return 0;
}

/* A free slot for pid's probes on f, set up but not attached; NULL if none is left. */
static struct libpq *new_slot(struct sqltrace *s, pid_t pid, const struct libpq_file *f, const char *path)
{
	struct libpq *lp = NULL;
	int i;

	for (i = 0; i < MAX_PROBED && !lp; i++)
		if (!s->libpq[i].pid)
			lp = &s->libpq[i];
	if (!lp) {
		s->unprobed++;
		return NULL;
	}
	lp->pid = pid;
	lp->dev = f->dev;
	lp->ino = f->ino;
	snprintf(lp->path, sizeof(lp->path), "%.*s", (int)sizeof(lp->path) - 1, path);
	snprintf(lp->host, sizeof(lp->host), "%s", f->host);
	memcpy(lp->offs, f->offs, sizeof(lp->offs));
	lp->set = s->opts.probes == SQL_PROBES_EXEC ? SQL_SET_EXEC : SQL_SET_SEND;
	return lp;
}

/* Attach lp's first set; frees the slot on failure. */
static int attach_slot(struct sqltrace *s, struct libpq *lp, char *err, size_t errlen)
{
	int ret = attach_set(s, lp, lp->set, err, errlen);
	struct timespec ts;

	if (ret) {
		detach(lp);
		return ret;
	}
	s->nlibpq++;
	s->nahead++;		/* until slot_mapped */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lp->ahead_until = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec + s->ahead_ttl_ns;
	return 0;
}

/* Detach lp and free its slot. */
static void free_slot(struct sqltrace *s, struct libpq *lp)
{
	if (lp->mapped)
		s->st.exec_processes -= lp->set == SQL_SET_EXEC;
	else
		s->nahead--;
	detach(lp);
	s->nlibpq--;
}

/* lp's process maps its file at m: the BPF side learns where its code is. */
static void slot_mapped(struct sqltrace *s, struct libpq *lp, struct libpq_file *f, const struct proc_map *m)
{
	/* The first libpq of a process holds its state: sends returning into its code are nested. */
	struct sql_proc proc = { .text_lo = m->start, .text_hi = m->end };

	bpf_map_update_elem(bpf_map__fd(s->skel->maps.sql_procs), &lp->pid, &proc, BPF_NOEXIST);
	snprintf(lp->path, sizeof(lp->path), "%.*s", (int)sizeof(lp->path) - 1, m->path);
	s->nahead--;
	s->st.exec_processes += lp->set == SQL_SET_EXEC;
	lp->mapped = true;
	if (f)
		f->mapped = true;
}

static int scan_one(void *ctx, const struct proc_map *m)
{
	struct scan_ctx *c = ctx;
	struct sqltrace *s = c->s;
	struct libpq_file *f;
	struct libpq *lp;
	char host[600];
	struct stat sb;
	int i, ret;

	if (!m->path[0] || !strchr(m->perms, 'x') || !is_libpq(m->path))
		return 0;
	if (procmaps__host_path(c->pid, m, host, sizeof(host)) || stat(host, &sb))
		return 0;
	c->found = 1;
	for (i = 0; i < MAX_PROBED; i++) {
		lp = &s->libpq[i];
		if (lp->pid != c->pid || lp->dev != sb.st_dev || lp->ino != sb.st_ino)
			continue;
		if (!lp->mapped) {
			slot_mapped(s, lp, locate_file(s, lp->dev, lp->ino, host, m->path, c->errbuf, c->errlen), m);
			vlog("pid %d: libpq %s mapped, probed ahead (%s probes, as %s)\n", c->pid, m->path,
			     sql_set__name(lp->set), uprobe__kind_name(s->uprobes));
		}
		return 0;
	}
	ret = ensure_loaded(s, c->errbuf, c->errlen);
	if (ret) {
		c->err = ret;
		return 1;
	}
	f = locate_file(s, sb.st_dev, sb.st_ino, host, m->path, c->errbuf, c->errlen);
	if (!f && !is_file(host, sb.st_dev, sb.st_ino))
		return 0;	/* the process went while it was looked at: nothing to say */
	if (!f) {
		c->err = -ENOENT;
		return 1;
	}
	lp = new_slot(s, c->pid, f, m->path);
	if (!lp)
		return 0;
	ret = attach_slot(s, lp, c->errbuf, c->errlen);
	if (ret == -ESRCH)
		return 0;	/* gone meanwhile (a subprocess's exec): its exit event follows */
	if (ret) {
		c->err = ret;
		return 1;
	}
	slot_mapped(s, lp, f, m);
	vlog("pid %d: probing libpq %s (%s probes, as %s)\n", c->pid, m->path, sql_set__name(lp->set),
	     uprobe__kind_name(s->uprobes));
	return 0;
}

static struct watch *watch_find(struct sqltrace *s, pid_t pid);

int sqltrace__scan_pid(struct sqltrace *s, pid_t pid, bool ahead, char *err, size_t errlen)
{
	char dummy[256];
	struct scan_ctx c = { .s = s, .pid = pid, .errbuf = err ? err : dummy,
			      .errlen = err ? errlen : sizeof(dummy) };
	int ret = procmaps__foreach(pid, scan_one, &c);

	if (ret >= 0 && !c.err && !c.found && !watch_find(s, pid)) {
		/* Watched from now on; a libpq mapped before the watch was armed is found here. */
		sqltrace__watch_pid(s, pid);
		if (watch_find(s, pid))
			ret = procmaps__foreach(pid, scan_one, &c);
	}
	if (c.err)
		return c.err;
	if (ret < 0)
		return ret;
	if (c.found) {
		s->st.processes_with_libpq++;
		sqltrace__unwatch_pid(s, pid);
	} else if (ahead) {
		sqltrace__probe_ahead(s, pid);
	}
	return c.found;
}

struct ldso_ctx {
	pid_t pid;
	char host[600];
};

static bool is_ldso(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return strncmp(base, "ld-", 3) == 0 && strstr(base, ".so");	/* ld-linux-x86-64.so.2 */
}

static int find_ldso(void *ctx, const struct proc_map *m)
{
	struct ldso_ctx *c = ctx;

	if (!m->path[0] || !strchr(m->perms, 'x') || !is_ldso(m->path))
		return 0;
	return procmaps__host_path(c->pid, m, c->host, sizeof(c->host)) == 0;
}

static struct watch *watch_find(struct sqltrace *s, pid_t pid)
{
	int i;

	for (i = 0; i < MAX_WATCHED; i++)
		if (s->watch[i].pid == pid)
			return &s->watch[i];
	return NULL;
}

/* The system's libpq, where Debian, Fedora and source builds put it, is probed ahead too. */
static void seed_files(struct sqltrace *s)
{
	static const char *const system_libpq[] = {
		"/usr/lib/x86_64-linux-gnu/libpq.so.5", "/usr/lib/aarch64-linux-gnu/libpq.so.5",
		"/usr/lib64/libpq.so.5", "/usr/lib/libpq.so.5", "/usr/local/pgsql/lib/libpq.so.5",
	};
	char err[256];
	struct stat sb;
	size_t i;

	if (s->seeded)
		return;
	s->seeded = true;
	for (i = 0; i < ARRAY_SIZE(system_libpq); i++)
		if (stat(system_libpq[i], &sb) == 0 && S_ISREG(sb.st_mode))
			locate_file(s, sb.st_dev, sb.st_ino, system_libpq[i], system_libpq[i], err, sizeof(err));
}

/*
 * Attach pid's probes on each known libpq file it has not mapped: breakpoints are written as it
 * maps one. They cost the process nothing before, and a process that never maps the file
 * nothing at all. Their statements are recorded at once; the BPF side learns where the code is
 * (struct sql_proc) at the next scan, which the dynamic linker's notice brings within ms.
 */
static bool has_slot(const struct sqltrace *s, pid_t pid, const struct libpq_file *f)
{
	int i;

	for (i = 0; i < MAX_PROBED; i++)
		if (s->libpq[i].pid == pid && s->libpq[i].dev == f->dev && s->libpq[i].ino == f->ino)
			return true;
	return false;
}

void sqltrace__probe_ahead(struct sqltrace *s, pid_t pid)
{
	char err[512];
	int i, n = 0;

	if (!watch_find(s, pid))
		return;		/* has a libpq, or is not watched: nothing to get ahead of */
	if (s->nahead >= MAX_AHEAD || s->nlibpq >= MAX_PROBED / 2) {
		vlog("pid %d: not probed ahead: %d slots probed ahead already, %d in use\n", pid, s->nahead,
		     s->nlibpq);
		return;		/* slots are for processes that map libpq */
	}
	seed_files(s);
	for (i = 0; i < s->nfiles && s->nahead < MAX_AHEAD; i++) {
		struct libpq *lp;

		if (!s->files[i].known || has_slot(s, pid, &s->files[i]) ||
		    !(lp = new_slot(s, pid, &s->files[i], s->files[i].host)))
			continue;
		if (attach_slot(s, lp, err, sizeof(err)))
			vlog("pid %d: cannot probe %s ahead: %s\n", pid, s->files[i].host, err);
		else
			n++;
	}
	if (n)
		vlog("pid %d: probed %d libpq file%s ahead\n", pid, n, n == 1 ? "" : "s");
}

/* Once pid maps a libpq, or goes: the probes attached ahead on files it did not map go. */
static void drop_ahead(struct sqltrace *s, pid_t pid)
{
	int i;

	for (i = 0; i < MAX_PROBED && s->nlibpq; i++) {
		struct libpq *lp = &s->libpq[i];

		if (lp->pid == pid && !lp->mapped)
			free_slot(s, lp);
	}
}

void sqltrace__watch_pid(struct sqltrace *s, pid_t pid)
{
	struct elf_sym_query q = { .name = "_dl_debug_state" };
	struct ldso_ctx c = { .pid = pid };
	uint8_t code[1][16];
	char err[256];
	uint64_t off = 0;
	struct watch *w;
	int ret;

	/* As a perf event, the probe would cost the process at every context switch: rescan only. */
	if (s->uprobes != UPROBE_MULTI || watch_find(s, pid))
		return;
	w = watch_find(s, 0);
	if (!w || procmaps__foreach(pid, find_ldso, &c) != 1 ||
	    elfsym__file_offsets(c.host, &q, 1, &off, code) || !off)
		return;		/* static, or no dynamic linker we know: the rescan still finds libpq */
	if (ensure_loaded(s, err, sizeof(err))) {
		wlog("%s\n", err);
		return;
	}
	ret = uprobe__attach(&w->link, s->uprobes, s->skel->progs.dl_debug_state, false, pid, c.host, off);
	if (ret) {
		vlog("pid %d: cannot watch %s for libpq: %s\n", pid, c.host, strerror(-ret));
		return;
	}
	w->pid = pid;
	vlog("pid %d: no libpq yet; watching its dynamic linker for one\n", pid);
}

bool sqltrace__watching(struct sqltrace *s, pid_t pid)
{
	return pid && watch_find(s, pid);
}

void sqltrace__unwatch_pid(struct sqltrace *s, pid_t pid)
{
	struct watch *w = pid ? watch_find(s, pid) : NULL;

	if (pid)
		drop_ahead(s, pid);
	if (w) {
		uprobe__detach(&w->link);
		w->pid = 0;
	}
}

static bool is_library_file(const char *file, size_t len)
{
	static const char *const marks[] = { "/site-packages/", "/dist-packages/", "/lib/python3" };
	size_t i;

	if (!file || !len || file[0] == '<')	/* <frozen ...>, <string> */
		return true;
	for (i = 0; i < ARRAY_SIZE(marks); i++)
		if (memmem(file, len, marks[i], strlen(marks[i])))
			return true;
	return false;
}

const char *sqltrace__call_site(const char *const *frames, size_t n)
{
	size_t i;

	for (i = n; i > 0; i--) {
		struct frame_parts fp;

		frame__parse(frames[i - 1], &fp);
		if (fp.file && !is_library_file(fp.file, fp.file_len))
			return frames[i - 1];
	}
	return NULL;
}

static void cache_entry_free(struct stack_entry *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->frames[i]);
	free(e->frames);
	memset(e, 0, sizeof(*e));
}

/* The symbolized stack of a statement, cached per (pid, stack id). */
static const struct stack_entry *stack_get(struct sqltrace *s, uint32_t pid, uint32_t tid, uint64_t id)
{
	struct stack_entry *e = &s->cache[((id ^ pid) * 0x9e3779b97f4a7c15ULL) >> 52 & (STACK_CACHE - 1)];
	const char *frames[MAX_SQL_FRAMES];
	struct pt_stack st;
	size_t n, i;

	if (!id)
		return NULL;
	if (e->id == id && e->pid == pid)
		return e;
	if (!s->loaded || bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.stacks), &id, &st)) {
		s->st.stacks_missing++;
		return NULL;
	}
	n = s->sh.frames(s->sh.ctx, pid, tid, &st, frames, MAX_SQL_FRAMES);
	cache_entry_free(e);
	e->frames = calloc(n ? n : 1, sizeof(*e->frames));
	if (!e->frames)
		return NULL;
	for (i = 0; i < n; i++) {
		e->frames[i] = strdup(frames[i]);
		if (!e->frames[i]) {
			e->n = i;
			cache_entry_free(e);
			return NULL;
		}
	}
	e->n = n;
	e->pid = pid;
	e->id = id;
	e->call_site = sqltrace__call_site((const char *const *)e->frames, n);
	return e;
}

static void slow_log(struct sqltrace *s, const struct sql_query *q, const struct stack_entry *st,
		     const char *pattern)
{
	struct jsonw *w = jsonw__new(s->opts.slow_log);
	size_t i;

	if (!w)
		return;
	jsonw__start_object(w);
	jsonw__uint_field(w, "pid", q->pid);
	jsonw__uint_field(w, "tid", q->tid);
	jsonw__uint_field(w, "start_ns", q->start_ns);
	jsonw__double_fixed_field(w, "duration_ms", (q->end_ns - q->start_ns) / 1e6, 3);
	jsonw__bool_field(w, "error", q->error);
	jsonw__string_field(w, "pattern", pattern);
	if (s->opts.show_literals) {
		jsonw__name(w, "text");
		jsonw__string_len(w, q->text, q->len);
	}
	jsonw__bool_field(w, "truncated", q->truncated);
	jsonw__name(w, "call_site");
	if (st && st->call_site)
		jsonw__string(w, st->call_site);
	else
		jsonw__null(w);
	jsonw__name(w, "stack");
	jsonw__start_array(w);
	for (i = 0; st && i < st->n; i++)
		jsonw__string(w, st->frames[i]);
	jsonw__end_array(w);
	jsonw__end_object(w);
	jsonw__free(w);
	fputc('\n', s->opts.slow_log);
	fflush(s->opts.slow_log);
}

static void query_done(void *ctx, const struct sql_query *q)
{
	struct sqltrace *s = ctx;
	const struct stack_entry *st = stack_get(s, q->pid, q->tid, q->stack_id);
	uint64_t dur = q->end_ns > q->start_ns ? q->end_ns - q->start_ns : 0;
	const char *site = st ? st->call_site : NULL, *pattern;

	/* the pattern the statistics computed (or remembered for this text): not normalized twice */
	sql_stats__add_pattern(s->stats, q->text, q->len, q->truncated, dur, q->error, site, &pattern);
	if (s->opts.slow_log && dur >= s->opts.slow_ms * 1e6)
		slow_log(s, q, st, pattern);
	if (s->sh.on_query)
		s->sh.on_query(s->sh.ctx, q, st ? (const char *const *)st->frames : NULL, st ? st->n : 0,
			       pattern, site);
}

void sqltrace__handle(struct sqltrace *s, const void *data, size_t size)
{
	const struct pt_event_hdr *h = data;

	switch (h->type) {
	case PT_EV_SQL_SEND: {
		const struct sql_send *e = data;
		size_t at = offsetof(struct sql_send, data);

		if (size < at || size < at + e->name_len + e->text_len)
			return;
		/*
		 * Name the stack now, while the process surely lives: a statement can complete
		 * after it has exited (BPF wakes us early for stacks it had not seen before).
		 */
		stack_get(s, e->hdr.pid, e->tid, e->stack_id);
		sql_match__send(s->match, e->hdr.pid, e->tid, e->conn, e->ts, e->flags,
				(e->flags & (SQL_F_PREPARE | SQL_F_PREPARED)) ? e->data : NULL, e->name_len,
				e->data + e->name_len, e->text_len, e->stack_id);
		break;
	}
	case PT_EV_SQL_RESULT: {
		const struct sql_result *r = data;

		if (size >= sizeof(*r))
			sql_match__result(s->match, r->hdr.pid, r->conn, r->ts, r->status);
		break;
	}
	case PT_EV_SQL_SYNC: {
		const struct sql_result *r = data;

		if (size >= sizeof(*r))
			sql_match__sync(s->match, r->hdr.pid, r->conn, r->ts);
		break;
	}
	case PT_EV_SQL_EXEC: {
		const struct sql_send *e = data;
		size_t at = offsetof(struct sql_send, data);

		if (size < at || size < at + e->name_len + e->text_len)
			return;
		sql_match__exec(s->match, e->hdr.pid, e->tid, e->conn, e->ts, e->end_ts, e->flags,
				(e->flags & (SQL_F_PREPARE | SQL_F_PREPARED)) ? e->data : NULL, e->name_len,
				e->data + e->name_len, e->text_len, e->stack_id, e->status);
		break;
	}
	case PT_EV_SQL_ASYNC: {
		const struct sql_result *r = data;

		if (size >= sizeof(*r))
			async_seen(s, r->hdr.pid, r->ts);
		break;
	}
	}
}

void sqltrace__forget_pid(struct sqltrace *s, pid_t pid)
{
	int i;

	sql_match__forget_pid(s->match, pid);
	sqltrace__unwatch_pid(s, pid);
	for (i = 0; i < MAX_PROBED && s->nlibpq; i++) {
		if (s->libpq[i].pid == pid)
			free_slot(s, &s->libpq[i]);
	}
	if (s->loaded)
		bpf_map_delete_elem(bpf_map__fd(s->skel->maps.sql_procs), &pid);
}

/* Move lp's statements to set: attach it now, drop the other set after a grace period. */
static void switch_set(struct sqltrace *s, struct libpq *lp, enum sql_set set, uint64_t now)
{
	char err[512];

	if (attach_set(s, lp, set, err, sizeof(err))) {
		wlog("pid %d: %s\n", lp->pid, err);
		detach_set(lp, set);
		lp->pinned = true;	/* stay where statements are seen */
		return;
	}
	vlog("pid %d: libpq statements now from the %s probes\n", lp->pid, sql_set__name(set));
	if (set == SQL_SET_EXEC) {
		s->st.to_exec++;
		s->st.exec_processes++;
	} else {
		s->st.to_send++;
		s->st.exec_processes--;
	}
	lp->set = set;
	/*
	 * A call in flight when the new set arrived completes through the old one: keep both for a
	 * moment. Where both see a call, the exec probes' claim wins (in_exec_call in sql.bpf.c).
	 */
	lp->drop_at = now + SWITCH_GRACE_NS;
}

static void drop_old_set(struct libpq *lp)
{
	if (lp->set == SQL_SET_SEND)
		lp->exec_gone = detach_set(lp, SQL_SET_EXEC);
	else
		detach_set(lp, SQL_SET_SEND);
	lp->drop_at = 0;
}

/*
 * Whether the exec set dropped from lp is gone from the kernel. From then on, calls whose return
 * probe went with it claim nothing: the BPF side voids claims older than exec_dropped_ns. Set
 * before the links are released, an exec probe firing in between would leave a claim that never
 * ends, and the send probes would skip that thread's statements.
 */
static bool exec_set_gone(struct sqltrace *s, struct libpq *lp)
{
	int fd = bpf_map__fd(s->skel->maps.sql_procs);
	struct sql_proc sp;

	if (!lp->exec_gone)
		return true;
	if (!uprobe__released(lp->exec_gone))
		return false;
	lp->exec_gone = 0;
	if (!bpf_map_lookup_elem(fd, &lp->pid, &sp)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		sp.exec_dropped_ns = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
		bpf_map_update_elem(fd, &lp->pid, &sp, BPF_EXIST);
	}
	return true;
}

/*
 * A process that stays on the send probes for good, with no exec probe left attached: its send
 * programs need neither look for exec probes' claims nor classify sends any more.
 */
static void settle(struct sqltrace *s, struct libpq *lp)
{
	int fd = bpf_map__fd(s->skel->maps.sql_procs);
	struct sql_proc sp;

	if (lp->settled || lp->set != SQL_SET_SEND || lp->drop_at || lp->exec_gone ||
	    !(lp->pinned || s->opts.probes == SQL_PROBES_SEND))
		return;
	if (bpf_map_lookup_elem(fd, &lp->pid, &sp))
		return;
	sp.settled = 1;
	if (bpf_map_update_elem(fd, &lp->pid, &sp, BPF_EXIST))
		return;
	lp->settled = true;
	vlog("pid %d: libpq statements from the send probes for good\n", lp->pid);
}

/* Choose lp's probe set again from what its probes counted. */
static void review(struct sqltrace *s, struct libpq *lp, uint64_t now)
{
	struct sql_mode_in in = { .opt = s->opts.probes, .cur = lp->set, .pinned = lp->pinned };
	struct sql_mode_out out;
	struct sql_proc sp;

	if (!lp->mapped)
		return;		/* probed ahead: nothing to choose by yet */

	if (lp->drop_at) {
		if (now < lp->drop_at)
			return;
		drop_old_set(lp);
	}
	if (!exec_set_gone(s, lp))
		return;		/* next tick: the mode is chosen again once the move is complete */
	settle(s, lp);
	if (lp->pinned || bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.sql_procs), &lp->pid, &sp))
		return;
	in.direct = sp.direct;
	in.nested = sp.nested;
	in.async_calls = sp.async_calls;
	out = sql_mode__next(&in);
	if (out.pin && !lp->pinned && lp->set == SQL_SET_EXEC)
		s->st.async_calls_in_exec += sp.async_calls;
	lp->pinned = out.pin;
	if (out.set != lp->set)
		switch_set(s, lp, out.set, now);
	settle(s, lp);
}

void sqltrace__tick(struct sqltrace *s, uint64_t now_ns)
{
	int i, seen;

	if (!s->loaded)
		return;
	for (i = 0, seen = 0; i < MAX_PROBED && seen < s->nlibpq; i++) {
		struct libpq *lp = &s->libpq[i];

		if (!lp->pid)
			continue;
		if (!lp->mapped && now_ns >= lp->ahead_until) {
			vlog("pid %d: no libpq mapped %.1f s after it was probed ahead: probes dropped, the watch stays\n",
			     lp->pid, s->ahead_ttl_ns / 1e9);
			free_slot(s, lp);
			continue;
		}
		seen++;
		review(s, lp, now_ns);
	}
}

/* An asynchronous-API call in a process on the exec probes: back to the send probes now. */
static void async_seen(struct sqltrace *s, uint32_t pid, uint64_t now)
{
	int i;

	for (i = 0; i < MAX_PROBED; i++)
		if (s->libpq[i].pid == (pid_t)pid && s->libpq[i].set == SQL_SET_EXEC)
			review(s, &s->libpq[i], now);
}

void sqltrace__stats(struct sqltrace *s, struct sqltrace_stats *st)
{
	__u64 vals[256];
	int ncpus = libbpf_num_possible_cpus(), c, i;
	__u32 key;

	s->st.libpq_files = 0;
	for (i = 0; i < s->nfiles; i++)
		s->st.libpq_files += s->files[i].mapped;
	s->st.attached_as = uprobe__kind_name(s->uprobes);
	s->st.unprobed = s->unprobed;
	s->st.calls = s->st.lost = 0;
	for (key = PT_CNT_SQL_LOST; key <= PT_CNT_SQL_CALLS && ncpus > 0 && ncpus <= 256; key++) {
		if (bpf_map_lookup_elem(bpf_map__fd(s->sh.counters), &key, vals))
			continue;
		for (c = 0; c < ncpus; c++)
			*(key == PT_CNT_SQL_LOST ? &s->st.lost : &s->st.calls) += vals[c];
	}
	sql_match__stats(s->match, &s->st.match);
	*st = s->st;
}

struct sql_stats *sqltrace__sql_stats(struct sqltrace *s)
{
	return s->stats;
}

void sqltrace__free(struct sqltrace *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; s->libpq && i < MAX_PROBED; i++)
		if (s->libpq[i].pid)
			detach(&s->libpq[i]);
	for (i = 0; s->watch && i < MAX_WATCHED; i++)
		if (s->watch[i].pid)
			uprobe__detach(&s->watch[i].link);
	free(s->watch);
	free(s->libpq);
	sql_bpf__destroy(s->skel);
	sql_match__free(s->match);
	sql_stats__free(s->stats);
	if (s->cache) {
		for (i = 0; i < STACK_CACHE; i++)
			cache_entry_free(&s->cache[i]);
		free(s->cache);
	}
	free(s);
}
