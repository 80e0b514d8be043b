/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types shared by the CPython USDT programs (function, GC, import probes) and the loader. */
#ifndef PYTRACE_FUNCS_H
#define PYTRACE_FUNCS_H

#include "pytrace.h"

#define FN_MAX_PATTERNS	8	/* --functions patterns the BPF prefilter knows */
#define FN_LIT_MAX	64	/* bytes of a pattern literal (name or file suffix) */
#define FN_NAME_MAX	128	/* bytes of a function name read from the probe (NUL included) */
#define FN_FILE_MAX	256	/* bytes of a file name read from the probe (NUL included) */
#define FN_STACK_MAX	16	/* open calls of candidate functions kept per thread */
#define FN_CALLER_FRAMES 3	/* interpreter frames read at entry to name the caller */
#define FN_MOD_MAX	96	/* bytes of a module name from the import probes */

enum funcs_event_type {
	PT_EV_FUNC_CALL = PT_EV_FUNC_FIRST,	/* a candidate function returned: one call with its duration */
	PT_EV_FUNC_GC = 49,	/* gc__start .. gc__done */
	PT_EV_FUNC_IMPORT = 50,	/* import__find__load__start .. done */
};

/* How a pattern part is matched by the BPF prefilter (a superset: user space decides exactly). */
enum fn_match_kind {
	FN_M_ANY = 0,
	FN_M_EXACT = 1,
	FN_M_PREFIX = 2,
	FN_M_SUFFIX = 3,
};

struct fn_filter {
	__u8 name_kind;		/* FN_M_* on the function name (co_name) */
	__u8 name_len;
	__u8 file_kind;		/* FN_M_ANY or FN_M_SUFFIX on the file name */
	__u8 file_len;
	char name[FN_LIT_MAX];
	char file[FN_LIT_MAX];
};

/* Verdicts cached per (pid, file pointer, name pointer). */
#define FN_V_NO		1	/* the prefilter or user space said no */
#define FN_V_CAND	2	/* passed the prefilter; user space has not decided yet */
#define FN_V_YES	3	/* user space matched it exactly */

struct fn_key {
	__u32 pid;
	__u32 pad;
	__u64 file;		/* const char * in the target */
	__u64 name;
};

/* Event flags */
#define FN_F_CALLER_READ_ERR	(1u << 0)
#define FN_F_NAME_TRUNC		(1u << 1)

struct fn_call {
	struct pt_event_hdr hdr;
	__u32 tid;
	__u32 flags;
	__u64 file_ptr, name_ptr;	/* key of the verdict cache */
	__u64 ts;		/* return time */
	__u64 dur_ns;
	__s32 lineno;
	__u32 nframes;		/* caller frames[] filled */
	struct pt_frame frames[FN_CALLER_FRAMES];	/* innermost first, read at entry */
	char name[FN_NAME_MAX];
	char file[FN_FILE_MAX];
};

struct fn_gc {
	struct pt_event_hdr hdr;
	__u32 tid;
	__s32 generation;
	__u64 dur_ns;
	__s64 collected;
};

struct fn_import {
	struct pt_event_hdr hdr;
	__u32 tid;
	__s32 found;
	__u64 dur_ns;
	char module[FN_MOD_MAX];
};

#endif /* PYTRACE_FUNCS_H */
