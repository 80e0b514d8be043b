// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "memcache.h"
#include "procmaps.h"
#include "procmem.h"
#include "procs.h"
#include "pythreads.h"
#include "session.h"
#include "uprobe.h"
#include "util.h"
#include "uvwrite.h"

#define MAX_PROCS 256	/* processes looked at at once (the rest counted as dropped) */
#define MAX_PROGS 2	/* the HTTP layer's and the wire reader's */
#define GAP_MIN_NS (250 * 1000000ULL)
#define GAP_MAX_NS (64 * 1000000000ULL)

/* The method probed: the base class of uvloop's TCP, pipe and TLS-less stream transports. */
#define UV_MODULE "uvloop.loop"
#define UV_CLASS "UVStream"
#define UV_METHOD "write"

/* Lookups that fail otherwise than "not imported" before a process is given up on: its memory
 * is read while it runs (a dict resized as it is read reads as garbage), so one is not enough. */
#define MAX_ERRORS 4

struct uv_proc {
	pid_t pid;		/* 0: free */
	bool done;		/* probed, or given up on */
	unsigned errors;	/* failed lookups (not "not imported") */
	uint64_t next_ns, gap_ns;
	struct py_modules_stamp mods;	/* how far the looks into sys.modules went (not imported there) */
	struct uprobe links[MAX_PROGS];
};

/* A program named (struct uvwrite_prog), and its own instance once loaded. */
struct uv_prog {
	struct uvwrite_prog p;
	struct bpf_object *late;	/* the second instance, with p.prog_name alone */
	struct bpf_program *prog;	/* in it, loaded */
	bool failed;			/* could not be loaded: not tried again */
};

struct uvwrite {
	struct session *s;
	struct uv_prog progs[MAX_PROGS];
	unsigned nprogs;
	enum uprobe_kind kind;
	struct uv_proc procs[MAX_PROCS];
	struct uvwrite_stats st;
};

struct uvwrite *uvwrite__new(struct session *s)
{
	struct uvwrite *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->s = s;
	u->kind = uprobe__kind();
	return u;
}

int uvwrite__prog(struct uvwrite *u, const struct uvwrite_prog *p)
{
	if (u->nprogs >= MAX_PROGS)
		return -ENOSPC;
	u->progs[u->nprogs] = (struct uv_prog){ .p = *p };
	return (int)u->nprogs++;
}

void uvwrite__set_obj(struct uvwrite *u, int slot, struct bpf_object *obj)
{
	if (slot >= 0 && (unsigned)slot < u->nprogs)
		u->progs[slot].p.obj = obj;
}

/*
 * up's program, loaded (a second instance of its capability's object with it alone, every map
 * shared with the first), or NULL: it could not be (said once, on stderr).
 */
static struct bpf_program *prog_of(struct uvwrite *u, struct uv_prog *up)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = up->p.obj_name, .btf_custom_path = up->p.btf_path);
	struct bpf_program *prog;
	char err[256] = "";
	int ret;

	if (up->prog || up->failed)
		return up->prog;
	up->late = bpf_object__open_mem(up->p.elf, up->p.elf_size, &oo);
	if (!up->late) {
		ret = -errno;
		snprintf(err, sizeof(err), "cannot open its object: %s", strerror(-ret));
		goto fail;
	}
	bpf_object__for_each_program(prog, up->late)
		bpf_program__set_autoload(prog, !strcmp(bpf_program__name(prog), up->p.prog_name));
	prog = bpf_object__find_program_by_name(up->late, up->p.prog_name);
	if (!prog || uprobe__prepare(prog, u->kind)) {
		snprintf(err, sizeof(err), "cannot prepare it: %s", prog ? strerror(errno) : "not in its object");
		goto fail;
	}
	if (session_maps__share_all(up->late, up->p.obj, err, sizeof(err)))
		goto fail;
	ret = bpf_object__load(up->late);
	if (ret) {
		snprintf(err, sizeof(err), "cannot load it: %s%s", strerror(-ret),
			 pt_verbose ? "" : " (run with -v for the verifier's log)");
		goto fail;
	}
	vlog("uvloop's transport.write: %s loaded\n", up->p.prog_name);
	up->prog = prog;
	return prog;
fail:
	wlog("uvloop's transport.write: the program %s: %s; what uvloop's loops write keeps no task\n",
	     up->p.prog_name, err);
	bpf_object__close(up->late);
	up->late = NULL;
	up->failed = true;
	return NULL;
}

/* Detach every probe of up. */
static void detach(struct uv_proc *up)
{
	for (unsigned k = 0; k < MAX_PROGS; k++)
		if (uprobe__attached(&up->links[k]))
			uprobe__detach(&up->links[k]);
}

void uvwrite__free(struct uvwrite *u)
{
	if (!u)
		return;
	for (unsigned i = 0; i < MAX_PROCS; i++)
		if (u->procs[i].pid)
			uvwrite__forget(u, u->procs[i].pid);
	for (unsigned k = 0; k < u->nprogs; k++)
		bpf_object__close(u->progs[k].late);
	free(u);
}

void uvwrite__add(struct uvwrite *u, pid_t pid)
{
	struct uv_proc *free_slot = NULL;

	if (!u->nprogs)
		return;
	for (unsigned i = 0; i < MAX_PROCS; i++) {
		if (u->procs[i].pid == pid)
			return;
		if (!free_slot && !u->procs[i].pid)
			free_slot = &u->procs[i];
	}
	if (!free_slot) {
		u->st.dropped++;
		return;
	}
	*free_slot = (struct uv_proc){ .pid = pid };
}

void uvwrite__forget(struct uvwrite *u, pid_t pid)
{
	for (unsigned i = 0; i < MAX_PROCS; i++) {
		struct uv_proc *up = &u->procs[i];

		if (up->pid != pid)
			continue;
		detach(up);
		up->pid = 0;
	}
}

struct find_map {
	pid_t pid;
	uint64_t addr, off;
	char path[512];
};

/* The file mapping that holds the function: its path from here and the function's file offset. */
static int find_map(void *ctx, const struct proc_map *m)
{
	struct find_map *f = ctx;

	if (f->addr < m->start || f->addr >= m->end || m->perms[2] != 'x' || !m->path[0])
		return 0;
	if (procmaps__host_path(f->pid, m, f->path, sizeof(f->path)))
		return -ENOENT;
	f->off = f->addr - m->start + m->offset;
	return 1;
}

/* 0: probed; -ESRCH: gone or not Python; -ENOENT/-EAGAIN: not there yet; else an error. */
static int probe(struct uvwrite *u, struct uv_proc *up)
{
	struct proc *pr = procs__get(session__procs(u->s), (uint32_t)up->pid, false);
	struct find_map f = { .pid = up->pid };
	const struct mem_reader *r;
	struct memcache mc;
	struct mem_reader mr;
	int ret;

	if (!pr || pr->state != PROC_PYTHON || !pr->live)
		return -ESRCH;
	procmem__reader(&mr, up->pid);
	/*
	 * Only the modules imported since the last look, through a page cache: sys.modules' keys (a
	 * thousand strs in a Django worker), read one by one at each look, were a fifth of the
	 * collector's CPU where gunicorn replaces its workers often (a new process is looked at 0,
	 * 0.25, 0.5 and 1 s after it is found, while it imports its app)
	 */
	r = memcache__init(&mc, &mr) ? &mr : &mc.mr;
	ret = pythreads__module_dict_since(&pr->py.layout, r, pr->py.runtime, UV_MODULE, &f.addr, &up->mods);
	ret = ret ?: pythreads__method_cfunc(&pr->py.layout, r, pr->py.runtime, UV_MODULE, UV_CLASS, UV_METHOD,
				      &f.addr);
	if (r != &mr)
		memcache__fini(&mc);
	if (ret)
		return ret;
	ret = procmaps__foreach(up->pid, find_map, &f);
	if (ret != 1)
		return ret < 0 ? ret : -ENOENT;
	for (unsigned k = 0; k < u->nprogs; k++) {
		struct bpf_program *prog = prog_of(u, &u->progs[k]);

		ret = prog ? uprobe__attach(&up->links[k], u->kind, prog, false, up->pid, f.path, f.off) : -ENOEXEC;
		if (ret) {
			detach(up);
			return ret;
		}
	}
	vlog("pid %d: uvloop's transport.write probed (%u program%s, %s+0x%llx): what the loop writes keeps its "
	     "task\n", up->pid, u->nprogs, u->nprogs == 1 ? "" : "s", f.path, (unsigned long long)f.off);
	return 0;
}

void uvwrite__tick(struct uvwrite *u, uint64_t now_ns)
{
	for (unsigned i = 0; i < MAX_PROCS; i++) {
		struct uv_proc *up = &u->procs[i];
		int ret;

		if (!up->pid || up->done || now_ns < up->next_ns)
			continue;
		up->gap_ns = up->gap_ns ? up->gap_ns * 2 : GAP_MIN_NS;
		if (up->gap_ns > GAP_MAX_NS)
			up->gap_ns = GAP_MAX_NS;
		up->next_ns = now_ns + up->gap_ns;
		ret = probe(u, up);
		if (!ret) {
			up->done = true;
			u->st.processes++;
		} else if (ret == -ESRCH) {
			up->pid = 0;	/* gone, or not Python after all */
		} else if (ret != -ENOENT && ret != -EAGAIN && ++up->errors >= MAX_ERRORS) {
			up->done = true;
			u->st.failed++;
			vlog("pid %d: uvloop's transport.write cannot be probed (%s): what its loop writes keeps "
			     "no task\n", up->pid, strerror(-ret));
		}
	}
}

void uvwrite__stats(const struct uvwrite *u, struct uvwrite_stats *st)
{
	*st = u->st;
}
