/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The tool's own BPF programs and the kernel's counts of them (struct bpf_prog_info's run_time_ns
 * and run_cnt, which move only while kernel.bpf_stats_enabled is 1), summed by program name into
 * totals that only grow, though programs come and go: uvloop's and OpenSSL's probes are loaded
 * per process and unloaded with it. A read is selfprogs__begin(), selfprogs__add() for each
 * program loaded now (by id; a second fd of the same program is ignored), selfprogs__end(); a
 * program is counted from its first read (all it ran since it was loaded), and one unloaded
 * between two reads loses what it ran after the first. Bounded: SELFPROGS_MAX programs (more
 * are counted in dropped), SELFPROGS_NAMES names (the last is "other", for the rest).
 */
#ifndef PYTRACE_SELFPROGS_H
#define PYTRACE_SELFPROGS_H

#include <stdbool.h>
#include <stdint.h>

#define SELFPROGS_MAX		256
#define SELFPROGS_NAMES		64
#define SELFPROGS_NAME_LEN	16	/* BPF_OBJ_NAME_LEN */

struct selfprogs_prog {
	uint32_t id;
	bool seen;		/* in this read */
	uint64_t ns, runs;	/* at the last read */
};

struct selfprogs_name {
	char name[SELFPROGS_NAME_LEN];
	uint64_t ns, runs;	/* summed growth */
};

struct selfprogs {
	struct selfprogs_prog progs[SELFPROGS_MAX];
	unsigned nprogs;
	struct selfprogs_name names[SELFPROGS_NAMES];
	unsigned nnames;
	uint64_t dropped;	/* programs not followed: SELFPROGS_MAX were */
};

void selfprogs__begin(struct selfprogs *sp);
/* Program id, named name (NULL or "": "unnamed"), with its counts now. */
void selfprogs__add(struct selfprogs *sp, uint32_t id, const char *name, uint64_t run_ns, uint64_t runs);
void selfprogs__end(struct selfprogs *sp);

#endif
