/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Where each CPython version keeps the things the tracer reads. */
#ifndef PYTRACE_PYLAYOUT_H
#define PYTRACE_PYLAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PYL_NONE UINT32_MAX

enum pyl_linetable {
	PYL_LNOTAB,	/* 3.8, 3.9: co_lnotab, f_lasti in bytes */
	PYL_LINETABLE_310,	/* 3.10: co_linetable, f_lasti in code units */
	PYL_LOCATIONS,	/* 3.11+: location table, instruction pointer */
};

struct py_layout {
	unsigned major, minor;

	/* _PyRuntimeState */
	uint32_t rt_tss;		/* autoTSSkey (Py_tss_t: int initialized, then the key) */
	uint32_t rt_interp_head;	/* interpreters.head */
	/* PyInterpreterState */
	uint32_t is_threads_head;	/* tstate_head (<= 3.10) / threads.head */
	/* PyThreadState */
	uint32_t ts_next;
	uint32_t ts_thread_id;		/* pthread_t */
	uint32_t ts_native_thread_id;	/* 3.11+, else PYL_NONE */
	uint32_t ts_cframe;		/* 3.11, 3.12, else PYL_NONE */
	uint32_t ts_frame;		/* in tstate, or in cframe when ts_cframe is set */
	uint32_t ts_datastack;		/* tstate->datastack_chunk, then _top (3.11+), else PYL_NONE */
	/* frames (PyFrameObject <= 3.10, _PyInterpreterFrame 3.11+) */
	uint32_t fr_code;
	uint32_t fr_back;
	uint32_t fr_instr;
	uint32_t fr_owner;		/* PYL_NONE if frames need no owner check */
	uint8_t owner_cstack;		/* owner value of C-stack shim frames */
	uint32_t fr_gen;		/* PyFrameObject.f_gen (<= 3.10) or _PyInterpreterFrame.owner */
	uint8_t owner_gen;		/* 3.11+: FRAME_OWNED_BY_GENERATOR; 0: fr_gen is f_gen */
	bool instr_is_ptr;
	uint64_t code_mask;
	/* PyCodeObject */
	uint32_t co_flags;		/* CO_COROUTINE and co. */
	uint32_t co_firstlineno;
	uint32_t co_filename;
	uint32_t co_name;
	uint32_t co_qualname;		/* 3.11+, else PYL_NONE */
	uint32_t co_linetable;		/* co_lnotab (<= 3.9) or co_linetable */
	uint32_t co_code_adaptive;	/* 3.11+: first code unit, else PYL_NONE */
	enum pyl_linetable linetable;
	/* str and bytes */
	uint32_t str_state;		/* PyASCIIObject.state */
	uint32_t str_ascii_data;	/* compact ASCII data */
	uint32_t str_compact_data;	/* compact non-ASCII data */
	uint32_t bytes_size;		/* PyVarObject.ob_size */
	uint32_t bytes_data;		/* PyBytesObject.ob_sval */
};

/* The built-in layout of 3.MINOR, or NULL if that version is not supported. */
const struct py_layout *py_layout__builtin(unsigned major, unsigned minor);

/*
 * Refine *out (a copy of the built-in layout) from the interpreter's own _Py_DebugOffsets
 * (3.13+), read from the start of _PyRuntime into buf[0..len). Returns 0, or -EINVAL when
 * the cookie or version does not match, -ENOTSUP for a layout this build does not know.
 */
int py_layout__from_debug_offsets(struct py_layout *out, const void *buf, size_t len);

#endif
