// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>
#include "procmem.h"
#include "procs.h"
#include "pystacks.h"
#include "symbolize.h"

#define TID_COMMS 1024			/* thread names remembered from samples */
#define FRAME_LEN 384

struct pystacks {
	struct procs *procs;
	struct symbolizer *sym;
	bool threads;
	struct pystacks_stats st;
	struct { uint32_t tid; char comm[16]; } comms[TID_COMMS];
	char names[PYSTACKS_MAX_FRAMES][FRAME_LEN];	/* frame names being built */
};

struct pystacks *pystacks__new(struct procs *procs, bool threads)
{
	struct pystacks *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return NULL;
	ps->procs = procs;
	ps->threads = threads;
	ps->sym = symbolizer__new(0);
	if (!ps->sym) {
		free(ps);
		return NULL;
	}
	return ps;
}

void pystacks__free(struct pystacks *ps)
{
	if (!ps)
		return;
	symbolizer__free(ps->sym);
	free(ps);
}

void pystacks__set_comm(struct pystacks *ps, uint32_t tid, const char *comm)
{
	ps->comms[tid % TID_COMMS].tid = tid;
	memcpy(ps->comms[tid % TID_COMMS].comm, comm, sizeof(ps->comms[0].comm));
}

static const char *thread_comm(const struct pystacks *ps, uint32_t tid)
{
	return ps->comms[tid % TID_COMMS].tid == tid ? ps->comms[tid % TID_COMMS].comm : "?";
}

static void frame_name(char *buf, size_t size, const struct py_frame_sym *fs)
{
	const char *file = fs->file && fs->file[0] ? fs->file : "?";

	snprintf(buf, size, "%s (%s:%d)", fs->name && fs->name[0] ? fs->name : "?", file, fs->line);
}

size_t pystacks__name(struct pystacks *ps, uint32_t pid, uint32_t tid, const struct pt_stack *st,
		      const char **out, size_t max)
{
	int i, nframes = st->nframes < PT_MAX_FRAMES ? (int)st->nframes : PT_MAX_FRAMES;
	struct proc *pr = procs__get(ps->procs, pid, false);
	struct mem_reader mr;
	size_t n = 0;

	if (!pr || max < 3)
		return 0;
	max = max < PYSTACKS_MAX_FRAMES ? max : PYSTACKS_MAX_FRAMES;
	if (ps->threads) {
		snprintf(ps->names[n], FRAME_LEN, "[thread %.16s tid=%u%s]", thread_comm(ps, tid), tid,
			 tid == pid ? " main" : "");
		out[n] = ps->names[n];
		n++;
	}
	if (st->flags & PT_SF_NO_PROC) {
		ps->st.no_python++;
		procs__retry(ps->procs, pr);
		snprintf(ps->names[n], FRAME_LEN, "[%s %.16s]",
			 pr->state == PROC_NOT_PYTHON ? "not Python:" : "Python starting:", thread_comm(ps, tid));
		out[n] = ps->names[n];
		return n + 1;
	}
	if (st->flags & (PT_SF_TRUNCATED | PT_SF_READ_ERR)) {
		ps->st.truncated++;
		out[n++] = "[truncated]";
	}
	if ((unsigned)nframes > ps->st.max_depth)
		ps->st.max_depth = nframes;
	procmem__reader(&mr, pid);
	for (i = nframes - 1; i >= 0 && n < max; i--) {
		struct py_frame_sym fs;
		int ret;

		ret = symbolizer__resolve(ps->sym, pid, &pr->py.layout, &mr, pr->py.pycode_type,
					  st->frames[i].code, st->frames[i].instr, &fs);
		/*
		 * The walker skips shim frames by their owner, so a frame whose code is not a code
		 * object (-ENOENT) means freed memory: a process exiting, say. Say so, don't skip.
		 */
		if (ret) {
			ps->st.unresolved++;
			out[n++] = "[unknown]";
			continue;
		}
		frame_name(ps->names[n], FRAME_LEN, &fs);
		out[n] = ps->names[n];
		n++;
	}
	if (nframes == 0 && n < max) {
		if (st->flags & PT_SF_NO_TSTATE)
			ps->st.native++;
		out[n++] = "[native]";
	}
	return n;
}

void pystacks__forget(struct pystacks *ps, uint32_t pid)
{
	symbolizer__forget(ps->sym, pid);
}

void pystacks__stats(const struct pystacks *ps, struct pystacks_stats *st)
{
	*st = ps->st;
}
