// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

/* OpenSSL's functions probed, and how (bpf/pgtls.bpf.c). */
static const struct {
	const char *name;
	enum pg_tls_fn fn;
	bool data_at_entry;	/* pgtls_data at its entry (a write), else pgtls_enter */
	bool ret;		/* pgtls_data at its return (a read) */
} fns[] = {
	{ "SSL_write_ex", PG_TLS_WRITE_EX, true, false }, { "SSL_write", PG_TLS_WRITE, true, false },
	{ "SSL_read_ex", PG_TLS_READ_EX, false, true }, { "SSL_read", PG_TLS_READ, false, true },
	{ "SSL_free", PG_TLS_FREE, false, false },
};
#define NFNS (sizeof(fns) / sizeof(fns[0]))

struct tls_proc {
	pid_t pid;			/* 0: free */
	enum pgtls_verdict verdict;	/* decided once */
	/* uprobe_multi: three links (attach()); perf events: one per probe */
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
	    uprobe__prepare(t->skel->progs.pgtls_data, t->kind)) {
		snprintf(err, errlen, "cannot prepare the TLS probes: %s", strerror(errno));
		goto fail;
	}
	t->skel->rodata->text_cap = o->text_cap;
	t->skel->rodata->call_sites = o->call_sites;
	t->skel->rodata->cut_stacks = o->call_sites && !o->whole_stacks;
	pg_caps_fill(t->skel->bss->pg_caps, o->text_cap);
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

/*
 * A uprobe on an instruction the kernel emulates (push, call, nop) costs about 0.5 us a hit here;
 * one it must single-step about 11.5 us (../shared/DOMAIN.md section 3). OpenSSL 3's SSL_write_ex
 * and SSL_read_ex begin with `sub $8,%rsp; call <ssl_write_internal or ssl_read_internal>`, and
 * those take the same arguments (ssl, buf, num, size_t *done), serve SSL_write and SSL_read too,
 * and begin with a push: probe them instead (measured: docs/PERFORMANCE.md). The return probe of
 * a read must be at a function's first instruction, where the return address is on the stack.
 * The internal function's file offset, or 0 if code (the first bytes at off) is not that shape.
 */
static uint64_t internal_fn(int fd, uint64_t off, const uint8_t *code)
{
	uint8_t first[2];
	int32_t rel;
	uint64_t at;

	if (code[0] != 0x48 || code[1] != 0x83 || code[2] != 0xec || code[4] != 0xe8)
		return 0;
	memcpy(&rel, code + 5, sizeof(rel));
	at = off + 9 + (int64_t)rel;	/* the call's target, in the same segment as the call */
	if (pread(fd, first, sizeof(first), (off_t)at) != (ssize_t)sizeof(first))
		return 0;
	if ((first[0] >= 0x50 && first[0] <= 0x57) || (first[0] == 0x41 && first[1] >= 0x50 && first[1] <= 0x57))
		return at;
	return 0;
}

/* One link of sites: a program at each (offset, cookie), at entries or returns. */
struct link_set {
	uint64_t at[NFNS], cookies[NFNS];
	unsigned n;
};

static void add_site(struct link_set *ls, uint64_t at, enum pg_tls_fn fn)
{
	ls->at[ls->n] = at;
	ls->cookies[ls->n++] = fn;
}

/*
 * Three links: pgtls_enter at the entries of the reads and SSL_free, pgtls_data at the entries
 * of the writes and at the returns of the reads, each with cookies naming the function.
 */
static int attach(struct pgtls *t, struct tls_proc *tp, const char *path)
{
	struct elf_sym_query q[NFNS];
	uint64_t offs[NFNS], inner_w = 0, inner_r = 0;
	uint8_t code[NFNS][16];
	struct link_set sets[3] = { 0 };	/* enter, data at entries, data at returns */
	unsigned i, l = 0;
	int ret, fd;

	for (i = 0; i < NFNS; i++)
		q[i] = (struct elf_sym_query){ .name = fns[i].name };
	ret = elfsym__file_offsets(path, q, NFNS, offs, code);
	if (ret)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	for (i = 0; i < NFNS && fd >= 0; i++) {
		if (offs[i] && fns[i].fn == PG_TLS_WRITE_EX)
			inner_w = internal_fn(fd, offs[i], code[i]);
		if (offs[i] && fns[i].fn == PG_TLS_READ_EX)
			inner_r = internal_fn(fd, offs[i], code[i]);
	}
	if (fd >= 0)
		close(fd);
	if (inner_w)
		add_site(&sets[1], inner_w, PG_TLS_WRITE_EX);
	if (inner_r) {
		add_site(&sets[0], inner_r, PG_TLS_READ_EX);
		add_site(&sets[2], inner_r, PG_TLS_READ_EX);
	}
	for (i = 0; i < NFNS; i++) {
		bool write = fns[i].fn == PG_TLS_WRITE || fns[i].fn == PG_TLS_WRITE_EX;

		if (!offs[i] || (write && inner_w) ||
		    ((fns[i].fn == PG_TLS_READ || fns[i].fn == PG_TLS_READ_EX) && inner_r))
			continue;
		add_site(&sets[fns[i].data_at_entry ? 1 : 0], offs[i], fns[i].fn);
		if (fns[i].ret)
			add_site(&sets[2], offs[i], fns[i].fn);
	}
	if (!sets[1].n || !sets[2].n)
		return -ENOENT;	/* no SSL_write or no SSL_read: not OpenSSL's libssl */
	vlog("pid %d: OpenSSL's %s probed%s\n", tp->pid, path,
	     inner_w && inner_r ? " at its internal write and read functions" : "");
	t->st.internal += inner_w && inner_r;
	for (int k = 0; k < 3; k++) {
		const struct bpf_program *prog = k ? t->skel->progs.pgtls_data : t->skel->progs.pgtls_enter;
		bool retprobe = k == 2;

		if (t->kind == UPROBE_MULTI) {
			ret = uprobe__attach_sites(&tp->links[l++], prog, retprobe, tp->pid, path, sets[k].at, NULL,
						   sets[k].cookies, sets[k].n);
			if (ret)
				return ret;
			continue;
		}
		for (i = 0; i < sets[k].n; i++) {
			LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = sets[k].cookies[i], .retprobe = retprobe);

			tp->links[l].link = bpf_program__attach_uprobe_opts(prog, tp->pid, path, sets[k].at[i], &uo);
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
