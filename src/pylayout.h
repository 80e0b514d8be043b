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

/* Where an instance keeps its attributes (threading.Thread's _name): see pythreads.c. */
enum pyl_objdict {
	PYL_DICT_OFFSET,	/* <= 3.10: a dict at obj + type->tp_dictoffset */
	PYL_DICT_MANAGED_311,	/* 3.11: values at obj-32, or a dict at obj-24 */
	PYL_DICT_MANAGED_312,	/* 3.12: obj-24 holds a dict, or values with the low bit set */
	PYL_DICT_INLINE,	/* 3.13+: a dict at obj-24, else values inline at obj + tp_basicsize */
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
	uint32_t fr_localsplus;		/* f_localsplus (<= 3.10) or localsplus: arguments, then locals */
	/* generators and asyncio tasks: a thread pool's work for a task (struct pt_proc) */
	uint32_t gen_frame;		/* PyGenObject.gi_frame (<= 3.10, a pointer) or gi_iframe (3.11+) */
	uint32_t task_coro;		/* _asyncio's TaskObj.task_coro (Modules/_asynciomodule.c) */
	uint32_t fut_callback0;		/* FutureObj.fut_callback0: the awaiting task's wakeup callback */
	uint32_t wakeup_task;		/* that callback -> its task: TaskWakeupMethWrapper.ww_task
					 * (<= 3.9), PyCFunctionObject.m_self (3.10+) */
	/* PyCodeObject */
	uint32_t co_varnames;		/* co_varnames (<= 3.10) or co_localsplusnames: a tuple */
	uint32_t co_consts;		/* a tuple: nested functions' code objects among them */
	/* <= 3.10, else PYL_NONE (co_localsplusnames names cells and free variables too): frames
	 * keep the cells after the co_nlocals locals, then the free variables */
	uint32_t co_nlocals;		/* int */
	uint32_t co_cellvars;		/* a tuple */
	uint32_t co_freevars;		/* a tuple */
	uint32_t tuple_items;		/* PyTupleObject.ob_item (3.14 put ob_hash before it) */
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
	/* the GIL (--gil): struct _gil_runtime_state, found through one of the first two */
	uint32_t rt_gil;		/* _PyRuntimeState.ceval.gil (<= 3.11), else PYL_NONE */
	uint32_t is_ceval_gil;		/* PyInterpreterState.ceval.gil, a pointer (3.12+), else PYL_NONE */
	uint32_t gil_locked;		/* int: held now */
	uint32_t gil_holder;		/* last_holder: the PyThreadState * that holds or last held it */
	/* Objects that thread names are read from (pythreads.c) */
	uint32_t is_modules;		/* PyInterpreterState.modules (imports.modules 3.12+): sys.modules */
	uint32_t mod_dict;		/* PyModuleObject.md_dict */
	uint32_t dict_keys;		/* PyDictObject.ma_keys */
	uint32_t dict_values;		/* PyDictObject.ma_values (split tables) */
	bool dk_log2;			/* 3.11+: dk_log2_size, dk_log2_index_bytes and dk_kind bytes */
	uint32_t dk_size;		/* dk_size (Py_ssize_t), or dk_log2_size (uint8) */
	uint32_t dk_nentries;
	uint32_t dk_indices;
	uint32_t dv_values;		/* PyDictValues.values (3.11+; 0 before: a plain array) */
	uint32_t tp_dict;		/* PyTypeObject.tp_dict: a class's own attributes */
	uint32_t func_code;		/* PyFunctionObject.func_code */
	uint32_t tp_basicsize;		/* PyTypeObject */
	uint32_t tp_flags;
	uint32_t tp_dictoffset;
	uint32_t ht_cached_keys;	/* PyHeapTypeObject: the keys its instances share */
	enum pyl_objdict objdict;
	uint32_t long_size;		/* ob_size (<= 3.11), long_value.lv_tag (3.12+) */
	uint32_t long_digits;		/* ob_digit (30-bit digits) */
	bool long_tag;			/* 3.12+: lv_tag = ndigits << 3 | sign */
	/*
	 * Not a layout but how this process hashes a str, in its own copy (struct py_target): the
	 * key of its _Py_HashSecret and SipHash's compression rounds (1: SipHash-1-3, 3.11+'s; 2:
	 * SipHash-2-4), once checked against the hashes its strs cache (pythreads__learn_hash).
	 * With it a dict is looked up as CPython does, by hash; PYL_HASH_UNKNOWN: its keys are read
	 * in order, PYL_HASH_NONE: checked, and not SipHash.
	 */
	uint8_t hash_rounds;
	uint64_t hash_k0, hash_k1;
};

#define PYL_HASH_UNKNOWN 0
#define PYL_HASH_NONE 0xff

/* The built-in layout of 3.MINOR, or NULL if that version is not supported. */
const struct py_layout *py_layout__builtin(unsigned major, unsigned minor);

/*
 * Refine *out (a copy of the built-in layout) from the interpreter's own _Py_DebugOffsets
 * (3.13+), read from the start of _PyRuntime into buf[0..len). Returns 0, or -EINVAL when
 * the cookie or version does not match, -ENOTSUP for a layout this build does not know.
 */
int py_layout__from_debug_offsets(struct py_layout *out, const void *buf, size_t len);

/*
 * The offset in the thread state of the asyncio task it runs (_PyThreadStateImpl's
 * asyncio_running_task), from the bytes of an .AsyncioDebug section (len of them): the _asyncio
 * module's Py_AsyncioModuleDebugOffsets, 3.14+. task_coro is the layout's TaskObj.task_coro,
 * which the section's must equal. 0: not a table that makes sense.
 */
uint32_t py_layout__asyncio_running_task(const void *sec, size_t len, uint32_t task_coro);
#define PYL_ASYNCIO_DEBUG_LEN	(13 * 8)	/* the bytes of that section it reads */

#endif
