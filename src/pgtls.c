// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "elfsym.h"
#include "pg.h"
#include "pgtls.h"
#include "pgtls.skel.h"
#include "procmaps.h"
#include "session.h"
#include "uprobe.h"
#include "util.h"

#define MAX_PROCS 256	/* processes probed at once (the rest counted as failed) */

/* OpenSSL's functions probed, and how (struct tls_call in bpf/pgtls.bpf.c). */
static const struct {
	const char *name;
	enum pg_tls_fn fn;
	bool ret;		/* a return probe too */
} fns[] = {
	{ "SSL_write_ex", PG_TLS_WRITE_EX, true }, { "SSL_write", PG_TLS_WRITE, true },
	{ "SSL_read_ex", PG_TLS_READ_EX, true }, { "SSL_read", PG_TLS_READ, true },
	{ "SSL_free", PG_TLS_FREE, false },
};
#define NFNS (sizeof(fns) / sizeof(fns[0]))

struct tls_proc {
	pid_t pid;			/* 0: free */
	enum pgtls_verdict verdict;	/* decided once */
	/* uprobe_multi: one link for the entries, one for the returns; perf events: one each */
	struct uprobe links[2 * NFNS];
};

struct pgtls {
	struct pgtls_opts o;
	struct pgtls_bpf *skel;
	enum uprobe_kind kind;
	bool loaded, load_failed;
	struct tls_proc procs[MAX_PROCS];
	struct pgtls_stats st;
};

struct pgtls *pgtls__new(const struct pgtls_opts *o, char *err, size_t errlen)
{
	struct pgtls *t = calloc(1, sizeof(*t));
	LIBBPF_OPTS(bpf_object_open_opts, oo, .btf_custom_path = o->btf_path);

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->o = *o;
	t->skel = pgtls_bpf__open_opts(&oo);
	if (!t->skel) {
		snprintf(err, errlen, "cannot open the TLS BPF object: %s", strerror(errno));
		goto fail;
	}
	t->kind = uprobe__kind();
	if (uprobe__prepare(t->skel->progs.pgtls_enter, t->kind) ||
	    uprobe__prepare(t->skel->progs.pgtls_return, t->kind)) {
		snprintf(err, errlen, "cannot prepare the TLS probes: %s", strerror(errno));
		goto fail;
	}
	t->skel->rodata->text_cap = o->text_cap;
	t->skel->rodata->call_sites = o->call_sites;
	if (session_maps__reuse(o->maps, t->skel->obj, err, errlen))
		goto fail;
	if (bpf_map__reuse_fd(t->skel->maps.pg_stacks, bpf_map__fd(o->pg_stacks)) ||
	    bpf_map__reuse_fd(t->skel->maps.pg_last_stack, bpf_map__fd(o->pg_last_stack))) {
		snprintf(err, errlen, "cannot share the wire reader's stacks with the TLS BPF object: %s",
			 strerror(errno));
		goto fail;
	}
	return t;
fail:
	pgtls__free(t);
	return NULL;
}

void pgtls__free(struct pgtls *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < MAX_PROCS; i++)
		if (t->procs[i].pid)
			pgtls__forget(t, t->procs[i].pid);
	pgtls_bpf__destroy(t->skel);
	free(t);
}

struct find_ctx {
	pid_t pid;
	bool libpq;
	char ssl[512];			/* OpenSSL's libssl, as a path that opens it from here */
};

static int find_libs(void *ctx, const struct proc_map *m)
{
	struct find_ctx *f = ctx;
	const char *base = strrchr(m->path, '/');

	base = base ? base + 1 : m->path;
	/* libpq.so.5 (system), libpq-<hash>.so.5.NN (wheels' copies), as src/libpq.c names them */
	if ((!strncmp(base, "libpq.so", 8) || !strncmp(base, "libpq-", 6)) && strstr(base, ".so"))
		f->libpq = true;
	if (!f->ssl[0] && !strncmp(base, "libssl.so", 9) &&
	    procmaps__host_path(f->pid, m, f->ssl, sizeof(f->ssl)))
		f->ssl[0] = '\0';
	return 0;
}

/* pgtls_enter at every function's entry, pgtls_return at the returns, cookies naming them. */
static int attach(struct pgtls *t, struct tls_proc *tp, const char *path)
{
	struct elf_sym_query q[NFNS];
	uint64_t offs[NFNS], at[2][NFNS], cookies[2][NFNS];
	uint8_t code[NFNS][16];
	unsigned i, n[2] = { 0, 0 }, l = 0;
	int ret;

	for (i = 0; i < NFNS; i++)
		q[i] = (struct elf_sym_query){ .name = fns[i].name };
	ret = elfsym__file_offsets(path, q, NFNS, offs, code);
	if (ret)
		return ret;
	for (i = 0; i < NFNS; i++) {
		for (int r = 0; r <= fns[i].ret; r++) {
			if (!offs[i])
				continue;
			at[r][n[r]] = offs[i];
			cookies[r][n[r]++] = fns[i].fn;
		}
	}
	if (!n[1])
		return -ENOENT;	/* neither SSL_write nor SSL_read: not OpenSSL's libssl */
	for (int r = 0; r < 2; r++) {
		const struct bpf_program *prog = r ? t->skel->progs.pgtls_return : t->skel->progs.pgtls_enter;

		if (t->kind == UPROBE_MULTI) {
			ret = uprobe__attach_sites(&tp->links[l++], prog, r, tp->pid, path, at[r], NULL, cookies[r], n[r]);
			if (ret)
				return ret;
			continue;
		}
		for (i = 0; i < n[r]; i++) {
			LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = cookies[r][i], .retprobe = r);

			tp->links[l].link = bpf_program__attach_uprobe_opts(prog, tp->pid, path, at[r][i], &uo);
			if (!tp->links[l++].link)
				return -errno;
		}
	}
	return 0;
}

enum pgtls_verdict pgtls__encrypted(struct pgtls *t, pid_t pid)
{
	struct tls_proc *tp = NULL;
	struct find_ctx f = { .pid = pid };
	int ret;

	for (unsigned i = 0; i < MAX_PROCS; i++) {
		if (t->procs[i].pid == pid)
			return t->procs[i].verdict;
		if (!tp && !t->procs[i].pid)
			tp = &t->procs[i];
	}
	if (!tp) {
		t->st.failed++;
		return PGTLS_NONE;
	}
	procmaps__foreach(pid, find_libs, &f);
	tp->pid = pid;
	if (f.libpq) {
		t->st.with_libpq++;
		tp->verdict = PGTLS_LIBPQ;
		return PGTLS_LIBPQ;
	}
	if (!f.ssl[0]) {
		vlog("pid %d: an encrypted PostgreSQL connection, but no OpenSSL (libssl) mapped: it cannot be read\n",
		     pid);
		goto fail;
	}
	if (!t->loaded && !t->load_failed) {
		ret = pgtls_bpf__load(t->skel);
		if (ret) {
			wlog("cannot load the TLS BPF programs: %s: encrypted connections without libpq are not read\n",
			     strerror(-ret));
			t->load_failed = true;
		}
		t->loaded = !ret;
	}
	if (!t->loaded)
		goto fail;
	ret = attach(t, tp, f.ssl);
	if (ret) {
		vlog("pid %d: cannot probe %s: %s\n", pid, f.ssl, strerror(-ret));
		goto fail;
	}
	tp->verdict = PGTLS_READ;
	t->st.processes++;
	vlog("pid %d: an encrypted PostgreSQL connection without libpq: reading its plaintext through %s\n", pid,
	     f.ssl);
	return PGTLS_READ;
fail:
	pgtls__forget(t, pid);
	tp->pid = pid;		/* not again: a verdict per process */
	tp->verdict = PGTLS_NONE;
	t->st.failed++;
	return PGTLS_NONE;
}

void pgtls__forget(struct pgtls *t, pid_t pid)
{
	for (unsigned i = 0; i < MAX_PROCS; i++) {
		struct tls_proc *tp = &t->procs[i];

		if (tp->pid != pid)
			continue;
		for (unsigned j = 0; j < 2 * NFNS; j++)
			uprobe__detach(&tp->links[j]);
		memset(tp, 0, sizeof(*tp));
	}
}

void pgtls__stats(const struct pgtls *t, struct pgtls_stats *st)
{
	*st = t->st;
}
