// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "elfsym.h"
#include "libpq.h"
#include "pidtab.h"
#include "procmaps.h"
#include "session.h"
#include "sql.skel.h"
#include "sqlmode.h"
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
struct pq_slot {
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
 * system's, is probed ahead in Python processes that have no libpq yet (watch_pid):
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


#define RESCAN_NS (500 * 1000000ULL)	/* how often to look for a newly loaded libpq */
#define WATCHED_RESCAN_NS (10 * 1000000000ULL)	/* backstop, should a notice be lost */
#define AHEAD_DELAY_NS (20 * 1000000ULL)	/* a child that has not exec'd by then is probed ahead */

/* What is known of each live Python process, for scheduling its scans. */
struct pq_proc {
	uint32_t pid;		/* key (pidtab.h) */
	bool libpq;		/* maps a libpq that is probed */
	bool ld_changed;	/* its dynamic linker loaded something since it was last scanned */
	bool watched;		/* its dynamic linker's notices bring it to be scanned */
	uint64_t ld_notice_ns;	/* when it last told so */
	uint64_t ahead_at;	/* a child without libpq: probe it ahead then, unless it execs first */
	uint64_t scanned_ns;	/* when its mappings were last looked through for libpq */
};

struct libpq {
	struct libpq_opts o;
	struct sql_bpf *skel;
	enum uprobe_kind uprobes;	/* how the probes are attached */
	bool loaded;
	struct pq_slot *slots;	/* MAX_PROBED slots */
	struct watch *watch;	/* MAX_WATCHED slots: processes whose dlopens are watched */
	int nslots;		/* slots in use */
	int nahead;		/* of which probed ahead, not mapped yet */
	struct libpq_file files[64];	/* distinct libpq files located */
	int nfiles;
	bool seeded;			/* the system's libpq was looked for */
	uint64_t unprobed;	/* processes left unprobed: MAX_PROBED reached */
	struct pidtab procs;	/* struct pq_proc */
	bool ld_changed;	/* some pq_proc has ld_changed set */
	unsigned ahead_pending;	/* pq_procs with ahead_at set */
	uint64_t last_rescan_ns;
	struct libpq_stats st;
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
static struct libpq_file *locate_file(struct libpq *s, dev_t dev, ino_t ino, const char *host,
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
static int attach_set(struct libpq *s, struct pq_slot *lp, enum sql_set set, char *err, size_t errlen)
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
static uint64_t detach_set(struct pq_slot *lp, enum sql_set set)
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
	struct libpq *s;
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

static void detach(struct pq_slot *lp)
{
	detach_set(lp, SQL_SET_SEND);
	detach_set(lp, SQL_SET_EXEC);
	memset(lp, 0, sizeof(*lp));
}

/* The libpq programs are loaded when first needed: a target that never has libpq pays nothing. */
static int ensure_loaded(struct libpq *s, char *err, size_t errlen)
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
static struct pq_slot *new_slot(struct libpq *s, pid_t pid, const struct libpq_file *f, const char *path)
{
	struct pq_slot *lp = NULL;
	int i;

	for (i = 0; i < MAX_PROBED && !lp; i++)
		if (!s->slots[i].pid)
			lp = &s->slots[i];
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
	lp->set = s->o.probes == SQL_PROBES_EXEC ? SQL_SET_EXEC : SQL_SET_SEND;
	return lp;
}

/* Attach lp's first set; frees the slot on failure. */
static int attach_slot(struct libpq *s, struct pq_slot *lp, char *err, size_t errlen)
{
	int ret = attach_set(s, lp, lp->set, err, errlen);
	struct timespec ts;

	if (ret) {
		detach(lp);
		return ret;
	}
	s->nslots++;
	s->nahead++;		/* until slot_mapped */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lp->ahead_until = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec + s->o.ahead_ttl_ns;
	return 0;
}

/* Detach lp and free its slot. */
static void free_slot(struct libpq *s, struct pq_slot *lp)
{
	if (lp->mapped)
		s->st.exec_processes -= lp->set == SQL_SET_EXEC;
	else
		s->nahead--;
	detach(lp);
	s->nslots--;
}

/* lp's process maps its file at m: the BPF side learns where its code is. */
static void slot_mapped(struct libpq *s, struct pq_slot *lp, struct libpq_file *f, const struct proc_map *m)
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
	struct libpq *s = c->s;
	struct libpq_file *f;
	struct pq_slot *lp;
	char host[600];
	struct stat sb;
	int i, ret;

	if (!m->path[0] || !strchr(m->perms, 'x') || !is_libpq(m->path))
		return 0;
	if (procmaps__host_path(c->pid, m, host, sizeof(host)) || stat(host, &sb))
		return 0;
	c->found = 1;
	for (i = 0; i < MAX_PROBED; i++) {
		lp = &s->slots[i];
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

static struct watch *watch_find(struct libpq *s, pid_t pid);
static void watch_pid(struct libpq *s, pid_t pid);
static void unwatch_pid(struct libpq *s, pid_t pid);
static void probe_ahead(struct libpq *s, pid_t pid);

static int scan_pid(struct libpq *s, pid_t pid, bool ahead, char *err, size_t errlen)
{
	char dummy[256];
	struct scan_ctx c = { .s = s, .pid = pid, .errbuf = err ? err : dummy,
			      .errlen = err ? errlen : sizeof(dummy) };
	int ret = procmaps__foreach(pid, scan_one, &c);

	if (ret >= 0 && !c.err && !c.found && !watch_find(s, pid)) {
		/* Watched from now on; a libpq mapped before the watch was armed is found here. */
		watch_pid(s, pid);
		if (watch_find(s, pid))
			ret = procmaps__foreach(pid, scan_one, &c);
	}
	if (c.err)
		return c.err;
	if (ret < 0)
		return ret;
	if (c.found) {
		s->st.processes_with_libpq++;
		unwatch_pid(s, pid);
	} else if (ahead) {
		probe_ahead(s, pid);
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

static struct watch *watch_find(struct libpq *s, pid_t pid)
{
	int i;

	for (i = 0; i < MAX_WATCHED; i++)
		if (s->watch[i].pid == pid)
			return &s->watch[i];
	return NULL;
}

/* The system's libpq, where Debian, Fedora and source builds put it, is probed ahead too. */
static void seed_files(struct libpq *s)
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
static bool has_slot(const struct libpq *s, pid_t pid, const struct libpq_file *f)
{
	int i;

	for (i = 0; i < MAX_PROBED; i++)
		if (s->slots[i].pid == pid && s->slots[i].dev == f->dev && s->slots[i].ino == f->ino)
			return true;
	return false;
}

static void probe_ahead(struct libpq *s, pid_t pid)
{
	char err[512];
	int i, n = 0;

	if (!watch_find(s, pid))
		return;		/* has a libpq, or is not watched: nothing to get ahead of */
	if (s->nahead >= MAX_AHEAD || s->nslots >= MAX_PROBED / 2) {
		vlog("pid %d: not probed ahead: %d slots probed ahead already, %d in use\n", pid, s->nahead,
		     s->nslots);
		return;		/* slots are for processes that map libpq */
	}
	seed_files(s);
	for (i = 0; i < s->nfiles && s->nahead < MAX_AHEAD; i++) {
		struct pq_slot *lp;

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
static void drop_ahead(struct libpq *s, pid_t pid)
{
	int i;

	for (i = 0; i < MAX_PROBED && s->nslots; i++) {
		struct pq_slot *lp = &s->slots[i];

		if (lp->pid == pid && !lp->mapped)
			free_slot(s, lp);
	}
}

static void watch_pid(struct libpq *s, pid_t pid)
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

static bool watching(struct libpq *s, pid_t pid)
{
	return pid && watch_find(s, pid);
}

static void unwatch_pid(struct libpq *s, pid_t pid)
{
	struct watch *w = pid ? watch_find(s, pid) : NULL;

	if (pid)
		drop_ahead(s, pid);
	if (w) {
		uprobe__detach(&w->link);
		w->pid = 0;
	}
}


/* Move lp's statements to set: attach it now, drop the other set after a grace period. */
static void switch_set(struct libpq *s, struct pq_slot *lp, enum sql_set set, uint64_t now)
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

static void drop_old_set(struct pq_slot *lp)
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
static bool exec_set_gone(struct libpq *s, struct pq_slot *lp)
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
static void settle(struct libpq *s, struct pq_slot *lp)
{
	int fd = bpf_map__fd(s->skel->maps.sql_procs);
	struct sql_proc sp;

	if (lp->settled || lp->set != SQL_SET_SEND || lp->drop_at || lp->exec_gone ||
	    !(lp->pinned || s->o.probes == SQL_PROBES_SEND))
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
static void review(struct libpq *s, struct pq_slot *lp, uint64_t now)
{
	struct sql_mode_in in = { .opt = s->o.probes, .cur = lp->set, .pinned = lp->pinned };
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

static void review_all(struct libpq *s, uint64_t now_ns)
{
	int i, seen;

	if (!s->loaded)
		return;
	for (i = 0, seen = 0; i < MAX_PROBED && seen < s->nslots; i++) {
		struct pq_slot *lp = &s->slots[i];

		if (!lp->pid)
			continue;
		if (!lp->mapped && now_ns >= lp->ahead_until) {
			vlog("pid %d: no libpq mapped %.1f s after it was probed ahead: probes dropped, the watch stays\n",
			     lp->pid, s->o.ahead_ttl_ns / 1e9);
			free_slot(s, lp);
			continue;
		}
		seen++;
		review(s, lp, now_ns);
	}
}

/* An asynchronous-API call in a process on the exec probes: back to the send probes now. */
void libpq__async_seen(struct libpq *s, uint32_t pid, uint64_t now)
{
	int i;

	for (i = 0; i < MAX_PROBED; i++)
		if (s->slots[i].pid == (pid_t)pid && s->slots[i].set == SQL_SET_EXEC)
			review(s, &s->slots[i], now);
}

struct libpq *libpq__new(const struct libpq_opts *o, const struct session_maps *maps, char *err, size_t errlen)
{
	struct libpq *s = calloc(1, sizeof(*s));
	struct bpf_program *prog;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->o = *o;
	if (!s->o.ahead_ttl_ns)
		s->o.ahead_ttl_ns = LIBPQ_AHEAD_TTL_NS;
	if (!s->o.text_cap)
		s->o.text_cap = 1024;
	s->slots = calloc(MAX_PROBED, sizeof(*s->slots));
	s->watch = calloc(MAX_WATCHED, sizeof(*s->watch));
	if (!s->slots || !s->watch || pidtab__init(&s->procs, o->max_procs ? o->max_procs : 16384, sizeof(struct pq_proc))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = o->btf_path);
	s->skel = sql_bpf__open_opts(&oo);
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
	s->skel->rodata->text_cap = s->o.text_cap + 1 > SQL_TEXT_MAX ? SQL_TEXT_MAX : s->o.text_cap + 1;
	if (session_maps__reuse(maps, s->skel->obj, err, errlen))
		goto fail;
	/* Loaded when a traced process first maps libpq: a target without one pays nothing. */
	return s;
fail:
	libpq__free(s);
	return NULL;
}

void libpq__free(struct libpq *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; s->slots && i < MAX_PROBED; i++)
		if (s->slots[i].pid)
			detach(&s->slots[i]);
	for (i = 0; s->watch && i < MAX_WATCHED; i++)
		if (s->watch[i].pid)
			uprobe__detach(&s->watch[i].link);
	free(s->watch);
	free(s->slots);
	pidtab__fini(&s->procs);
	sql_bpf__destroy(s->skel);
	free(s);
}

/* Returns true if pp's process has a probed libpq now. ahead: see scan_pid. */
static bool scan(struct libpq *s, struct pq_proc *pp, bool ahead)
{
	char err[512];
	int ret;

	if (pp->libpq)
		return true;
	ret = scan_pid(s, pp->pid, ahead, err, sizeof(err));
	if (ret > 0)
		pp->libpq = true;
	else if (ret < 0)
		wlog("%s\n", err);
	pp->scanned_ns = mono_ns();
	pp->watched = watching(s, pp->pid);
	return pp->libpq;
}

static struct pq_proc *proc_add(struct libpq *s, pid_t pid)
{
	struct pq_proc *pp = pidtab__add(&s->procs, pid, NULL);

	if (!pp)
		s->st.procs_dropped++;
	return pp;
}

void libpq__add_pid(struct libpq *s, pid_t pid)
{
	struct pq_proc *pp = proc_add(s, pid);

	if (pp)
		scan(s, pp, true);
}

bool libpq__has_pid(struct libpq *s, pid_t pid)
{
	return pidtab__get(&s->procs, pid) != NULL;
}

void libpq__fork(struct libpq *s, pid_t child, pid_t parent)
{
	struct pq_proc *pp = pidtab__get(&s->procs, parent), *cp;
	bool parent_libpq = pp && pp->libpq;

	cp = proc_add(s, child);
	if (!cp)
		return;
	/* Same libpq mappings, but probes are per process: attach the child's now. */
	if (parent_libpq) {
		scan(s, cp, true);
		return;
	}
	/*
	 * Most children of a process without libpq exec at once (subprocess): the watch, one link,
	 * now; the probes ahead, several, if it does not.
	 */
	if (!scan(s, cp, false) && cp->watched) {
		if (!cp->ahead_at)
			s->ahead_pending++;
		cp->ahead_at = mono_ns() + AHEAD_DELAY_NS;
	}
}

void libpq__forget_pid(struct libpq *s, pid_t pid)
{
	struct pq_proc *pp = pidtab__get(&s->procs, pid);
	int i;

	if (pp)
		pidtab__del(&s->procs, pp);
	unwatch_pid(s, pid);
	for (i = 0; i < MAX_PROBED && s->nslots; i++) {
		if (s->slots[i].pid == pid)
			free_slot(s, &s->slots[i]);
	}
	if (s->loaded)
		bpf_map_delete_elem(bpf_map__fd(s->skel->maps.sql_procs), &pid);
}

void libpq__dlopen(struct libpq *s, pid_t pid, uint64_t ts)
{
	struct pq_proc *pp = pidtab__get(&s->procs, pid);

	/* Scanned once the ring buffer is drained: a dlopen brings two of these. */
	if (pp && !pp->libpq) {
		pp->ld_notice_ns = ts;
		pp->ld_changed = true;
		s->ld_changed = true;
	}
}

/*
 * Drivers are imported lazily: look again for libpq in Python processes that had none, at once
 * on their dynamic linker's notice, and every RESCAN_NS otherwise.
 */
void libpq__tick(struct libpq *s, uint64_t now)
{
	uint32_t i;

	if (s->ld_changed) {
		s->ld_changed = false;
		for (i = 0; i < s->procs.cap; i++) {
			struct pq_proc *pp = pidtab__slot(&s->procs, i);

			if (pp && pp->ld_changed) {
				pp->ld_changed = false;
				if (scan(s, pp, true))
					vlog("pid %d: libpq found %.1f ms after its dynamic linker's last notice\n", pp->pid,
					     (mono_ns() - pp->ld_notice_ns) / 1e6);
			}
		}
	}
	if (s->ahead_pending) {
		unsigned left = 0;

		for (i = 0; i < s->procs.cap; i++) {
			struct pq_proc *pp = pidtab__slot(&s->procs, i);

			if (!pp || !pp->ahead_at)
				continue;
			if (now < pp->ahead_at) {
				left++;
				continue;
			}
			pp->ahead_at = 0;
			if (!pp->libpq)
				probe_ahead(s, pp->pid);
		}
		s->ahead_pending = left;
	}
	if (now - s->last_rescan_ns < RESCAN_NS)
		return;
	s->last_rescan_ns = now;
	for (i = 0; i < s->procs.cap; i++) {
		struct pq_proc *pp = pidtab__slot(&s->procs, i);

		if (!pp || pp->libpq)
			continue;
		/* A watched process is scanned on its dynamic linker's notice: now and then will do. */
		if (pp->watched && now - pp->scanned_ns < WATCHED_RESCAN_NS)
			continue;
		scan(s, pp, true);
	}
	review_all(s, now);
}

int libpq__stack(struct libpq *s, uint64_t id, struct pt_stack *st)
{
	if (!s->loaded || bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.stacks), &id, st))
		return -ENOENT;
	return 0;
}

void libpq__stats(struct libpq *s, struct libpq_stats *st)
{
	int i;

	s->st.libpq_files = 0;
	for (i = 0; i < s->nfiles; i++)
		s->st.libpq_files += s->files[i].mapped;
	s->st.attached_as = uprobe__kind_name(s->uprobes);
	s->st.unprobed = s->unprobed;
	*st = s->st;
}
