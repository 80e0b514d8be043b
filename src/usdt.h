/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Reading an ELF file's SystemTap SDT notes (.note.stapsdt), and what CPython's say. */
#ifndef PYTRACE_USDT_H
#define PYTRACE_USDT_H

#include <stdbool.h>
#include <stdint.h>

struct usdt_note {
	char provider[32];
	char name[64];
	uint64_t pc, base, sema;	/* link-time addresses, as readelf -n shows them */
	char args[128];			/* e.g. "8@%rbx 8@%r12 -4@%eax" */
	uint64_t ip_off, sema_off;	/* file offsets of the probe site and its semaphore (0: none) */
};

/* Up to max notes of path into out. Returns how many there are (may exceed max), or -errno. */
int usdt__read_notes(const char *path, struct usdt_note *out, int max);
/* Parse one note's descriptor (the bytes after the note's name): 0 or -EINVAL. */
int usdt__parse_desc(const void *desc, unsigned size, struct usdt_note *n);

/*
 * Where one argument of a probe lives, in the terms of libbpf's usdt.bpf.h (struct
 * __bpf_usdt_arg_spec), which reads it in BPF: a constant, a register, or memory at a register
 * plus an offset; 1, 2, 4 or 8 bytes, signed or not.
 */
enum usdt_arg_type {
	USDT_ARG_CONST = 0,	/* BPF_USDT_ARG_CONST */
	USDT_ARG_REG = 1,	/* BPF_USDT_ARG_REG */
	USDT_ARG_REG_DEREF = 2,	/* BPF_USDT_ARG_REG_DEREF */
};

struct usdt_arg {
	enum usdt_arg_type type;
	int64_t val_off;	/* the constant, or the offset from the register */
	short reg_off;		/* offsetof(struct pt_regs, the register), x86_64 */
	bool is_signed;
	char bitshift;		/* 64 - 8 * size */
};

/* Parse an x86_64 argument string ("8@%rbx -4@%eax 8@-24(%rbp) 4@$5"): the count, or -EINVAL. */
int usdt__parse_args(const char *args, struct usdt_arg *out, int max);

/* Which python:* probes an interpreter has, and whether its function probes can be trusted. */
enum py_probe_level {
	PY_PROBES_NONE,		/* no function__entry/function__return */
	PY_PROBES_PARTIAL,	/* present, but fire only for some calls (3.11: frames entered from C) */
	PY_PROBES_SILENT,	/* present in the notes, but this version never fires them (3.12-3.14) */
	PY_PROBES_COMPLETE,	/* present and fire for every Python call (<= 3.10, 3.15+) */
};

struct py_probes {
	bool function_entry, function_return;
	bool gc_start, gc_done;
	bool import_start, import_done;
	int nnotes;		/* python:* notes seen */
	enum py_probe_level level;
};

/* Classify the notes of a CPython major.minor. */
void usdt__classify(const struct usdt_note *notes, int n, unsigned major, unsigned minor,
		    struct py_probes *out);
/* "USDT probes (complete)", ... : the source statement the report prints. */
const char *usdt__level_str(enum py_probe_level l);

#endif
