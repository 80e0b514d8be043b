// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Where each CPython version keeps the things the tracer reads (x86_64, release, GIL builds).
 *
 * Every number below is checked by tests/offsets/run.sh: offsetof() against the version's own
 * headers (Py_BUILD_CORE, internal/ included), the real _Py_DebugOffsets of 3.13+ binaries,
 * and a walk of a running interpreter's own memory (tests/offsets/live_walk.py).
 */
#include <errno.h>
#include <string.h>

#include "pylayout.h"

#define NONE PYL_NONE
#define ALL_BITS (~(uint64_t)0)

/*
 * All versions: PyASCIIObject.state 32, PyVarObject.ob_size 16, PyBytesObject.ob_sval 32.
 * Thread names (pythreads.c): PyModuleObject.md_dict 16, PyDictObject.ma_keys/ma_values 32/40,
 * PyTypeObject's tp_basicsize/tp_flags/tp_dictoffset 32/168/288, PyLongObject's digits at 24.
 * 3.8-3.10 do not install their dict keys object (Objects/dict-common.h) nor, 3.8 and 3.9,
 * PyModuleObject (Objects/moduleobject.c): those rows are from the sources and checked on
 * running interpreters by tests/offsets/live_walk.py, which reads threading's names the same way.
 * PyInterpreterState's modules and PyHeapTypeObject's ht_cached_keys move with each version;
 * 3.14 and 3.15's modules are Debian's (a JIT build grows the interpreter state), and 3.13+
 * take it from _Py_DebugOffsets (imports_modules) anyway.
 */
static const struct py_layout layouts[] = {
	/* 3.8.18 headers (pyenv): pycore_pystate.h, frameobject.h, code.h. */
	{
		.major = 3, .minor = 8,
		.rt_tss = 1392, .rt_interp_head = 32, .is_threads_head = 8,
		.ts_next = 8, .ts_thread_id = 176, .ts_native_thread_id = NONE,
		.ts_datastack = NONE,
		.ts_cframe = NONE, .ts_frame = 24,
		.fr_code = 32, .fr_back = 24, .fr_instr = 104, .fr_owner = NONE,
		.owner_cstack = 0, .instr_is_ptr = false, .code_mask = ALL_BITS,
		.fr_gen = 96, .owner_gen = 0,
		.fr_localsplus = 360, .gen_frame = 16, .task_coro = 112, .co_varnames = 72, .tuple_items = 24,
		.fut_callback0 = 24, .wakeup_task = 16,
		.tp_dict = 264, .func_code = 16,
		.co_consts = 56, .co_nlocals = 28, .co_cellvars = 88, .co_freevars = 80,
		.co_flags = 36, .co_firstlineno = 40, .co_filename = 104, .co_name = 112, .co_qualname = NONE,
		.co_linetable = 120, .co_code_adaptive = NONE, .linetable = PYL_LNOTAB,
		.str_state = 32, .str_ascii_data = 48, .str_compact_data = 72,
		.bytes_size = 16, .bytes_data = 32,
		.rt_gil = 1152, .is_ceval_gil = NONE, .gil_locked = 16, .gil_holder = 8,
		.is_modules = 56, .mod_dict = 16, .dict_keys = 32, .dict_values = 40,
		.dk_log2 = false, .dk_size = 8, .dk_nentries = 32, .dk_indices = 40, .dv_values = 0,
		.tp_basicsize = 32, .tp_flags = 168, .tp_dictoffset = 288, .ht_cached_keys = 872,
		.objdict = PYL_DICT_OFFSET, .long_size = 16, .long_digits = 24, .long_tag = false,
	},
	/* 3.9.18 headers (pyenv): pycore_runtime.h, pycore_interp.h, frameobject.h. */
	{
		.major = 3, .minor = 9,
		.rt_tss = 584, .rt_interp_head = 32, .is_threads_head = 8,
		.ts_next = 8, .ts_thread_id = 176, .ts_native_thread_id = NONE,
		.ts_datastack = NONE,
		.ts_cframe = NONE, .ts_frame = 24,
		.fr_code = 32, .fr_back = 24, .fr_instr = 104, .fr_owner = NONE,
		.owner_cstack = 0, .instr_is_ptr = false, .code_mask = ALL_BITS,
		.fr_gen = 96, .owner_gen = 0,
		.fr_localsplus = 360, .gen_frame = 16, .task_coro = 152, .co_varnames = 72, .tuple_items = 24,
		.fut_callback0 = 24, .wakeup_task = 16,
		.tp_dict = 264, .func_code = 16,
		.co_consts = 56, .co_nlocals = 28, .co_cellvars = 88, .co_freevars = 80,
		.co_flags = 36, .co_firstlineno = 40, .co_filename = 104, .co_name = 112, .co_qualname = NONE,
		.co_linetable = 120, .co_code_adaptive = NONE, .linetable = PYL_LNOTAB,
		.str_state = 32, .str_ascii_data = 48, .str_compact_data = 72,
		.bytes_size = 16, .bytes_data = 32,
		.rt_gil = 352, .is_ceval_gil = NONE, .gil_locked = 16, .gil_holder = 8,
		.is_modules = 856, .mod_dict = 16, .dict_keys = 32, .dict_values = 40,
		.dk_log2 = false, .dk_size = 8, .dk_nentries = 32, .dk_indices = 40, .dv_values = 0,
		.tp_basicsize = 32, .tp_flags = 168, .tp_dictoffset = 288, .ht_cached_keys = 864,
		.objdict = PYL_DICT_OFFSET, .long_size = 16, .long_digits = 24, .long_tag = false,
	},
	/* 3.10.13 headers (pyenv). f_lasti counts code units; co_linetable replaces co_lnotab. */
	{
		.major = 3, .minor = 10,
		.rt_tss = 584, .rt_interp_head = 32, .is_threads_head = 8,
		.ts_next = 8, .ts_thread_id = 176, .ts_native_thread_id = NONE,
		.ts_datastack = NONE,
		.ts_cframe = NONE, .ts_frame = 24,
		.fr_code = 32, .fr_back = 24, .fr_instr = 96, .fr_owner = NONE,
		.owner_cstack = 0, .instr_is_ptr = false, .code_mask = ALL_BITS,
		.fr_gen = 88, .owner_gen = 0,
		.fr_localsplus = 352, .gen_frame = 16, .task_coro = 160, .co_varnames = 72, .tuple_items = 24,
		.fut_callback0 = 24, .wakeup_task = 24,
		.tp_dict = 264, .func_code = 48,
		.co_consts = 56, .co_nlocals = 28, .co_cellvars = 88, .co_freevars = 80,
		.co_flags = 36, .co_firstlineno = 40, .co_filename = 104, .co_name = 112, .co_qualname = NONE,
		.co_linetable = 120, .co_code_adaptive = NONE, .linetable = PYL_LINETABLE_310,
		.str_state = 32, .str_ascii_data = 48, .str_compact_data = 72,
		.bytes_size = 16, .bytes_data = 32,
		.rt_gil = 352, .is_ceval_gil = NONE, .gil_locked = 16, .gil_holder = 8,
		.is_modules = 856, .mod_dict = 16, .dict_keys = 32, .dict_values = 40,
		.dk_log2 = false, .dk_size = 8, .dk_nentries = 32, .dk_indices = 40, .dv_values = 0,
		.tp_basicsize = 32, .tp_flags = 168, .tp_dictoffset = 288, .ht_cached_keys = 872,
		.objdict = PYL_DICT_OFFSET, .long_size = 16, .long_digits = 24, .long_tag = false,
	},
	/*
	 * 3.11.7 headers (pyenv) and Debian 12's 3.11.2 (/usr/include/python3.11): tstate->cframe
	 * ->current_frame, _PyInterpreterFrame.prev_instr. No C-stack shim frames (entry frames
	 * are marked by is_entry instead), so no owner check.
	 */
	{
		.major = 3, .minor = 11,
		.rt_tss = 592, .rt_interp_head = 40, .is_threads_head = 16,
		.ts_next = 8, .ts_thread_id = 152, .ts_native_thread_id = 160,
		.ts_datastack = 296,
		.ts_cframe = 56, .ts_frame = 8,
		.fr_code = 32, .fr_back = 48, .fr_instr = 56, .fr_owner = NONE,
		.owner_cstack = 0, .instr_is_ptr = true, .code_mask = ALL_BITS,
		.fr_gen = 69, .owner_gen = 1,
		.fr_localsplus = 72, .gen_frame = 80, .task_coro = 136, .co_varnames = 96, .tuple_items = 24,
		.fut_callback0 = 24, .wakeup_task = 24,
		.tp_dict = 264, .func_code = 48,
		.co_consts = 24, .co_nlocals = NONE, .co_cellvars = NONE, .co_freevars = NONE,
		.co_flags = 48, .co_firstlineno = 72, .co_filename = 112, .co_name = 120, .co_qualname = 128,
		.co_linetable = 136, .co_code_adaptive = 184, .linetable = PYL_LOCATIONS,
		.str_state = 32, .str_ascii_data = 48, .str_compact_data = 72,
		.bytes_size = 16, .bytes_data = 32,
		.rt_gil = 360, .is_ceval_gil = NONE, .gil_locked = 16, .gil_holder = 8,
		.is_modules = 888, .mod_dict = 16, .dict_keys = 32, .dict_values = 40,
		.dk_log2 = true, .dk_size = 8, .dk_nentries = 24, .dk_indices = 32, .dv_values = 0,
		.tp_basicsize = 32, .tp_flags = 168, .tp_dictoffset = 288, .ht_cached_keys = 872,
		.objdict = PYL_DICT_MANAGED_311, .long_size = 16, .long_digits = 24, .long_tag = false,
	},
	/*
	 * 3.12.1 headers (pyenv). autoTSSkey leaves gilstate; the entry frame is
	 * FRAME_OWNED_BY_CSTACK (3) with the <interpreter trampoline> code object.
	 */
	{
		.major = 3, .minor = 12,
		.rt_tss = 1544, .rt_interp_head = 40, .is_threads_head = 72,
		.ts_next = 8, .ts_thread_id = 136, .ts_native_thread_id = 144,
		.ts_datastack = 232,
		.ts_cframe = 56, .ts_frame = 0,
		.fr_code = 0, .fr_back = 8, .fr_instr = 56, .fr_owner = 70,
		.owner_cstack = 3, .instr_is_ptr = true, .code_mask = ALL_BITS,
		.fr_gen = 70, .owner_gen = 1,
		.fr_localsplus = 72, .gen_frame = 72, .task_coro = 136, .co_varnames = 96, .tuple_items = 24,
		.fut_callback0 = 24, .wakeup_task = 24,
		.tp_dict = 264, .func_code = 48,
		.co_consts = 24, .co_nlocals = NONE, .co_cellvars = NONE, .co_freevars = NONE,
		.co_flags = 48, .co_firstlineno = 68, .co_filename = 112, .co_name = 120, .co_qualname = 128,
		.co_linetable = 136, .co_code_adaptive = 192, .linetable = PYL_LOCATIONS,
		.str_state = 32, .str_ascii_data = 40, .str_compact_data = 56,
		.bytes_size = 16, .bytes_data = 32,
		.rt_gil = NONE, .is_ceval_gil = 384, .gil_locked = 16, .gil_holder = 8,
		.is_modules = 944, .mod_dict = 16, .dict_keys = 32, .dict_values = 40,
		.dk_log2 = true, .dk_size = 8, .dk_nentries = 24, .dk_indices = 32, .dv_values = 0,
		.tp_basicsize = 32, .tp_flags = 168, .tp_dictoffset = 288, .ht_cached_keys = 880,
		.objdict = PYL_DICT_MANAGED_312, .long_size = 16, .long_digits = 24, .long_tag = true,
	},
	/*
	 * 3.13.0 headers (pyenv) and Debian sid's 3.13.18, plus both binaries' _Py_DebugOffsets.
	 * tstate->current_frame; f_executable (None in the FRAME_OWNED_BY_CSTACK entry frame).
	 */
	{
		.major = 3, .minor = 13,
		.rt_tss = 2160, .rt_interp_head = 632, .is_threads_head = 7344,
		.ts_next = 8, .ts_thread_id = 152, .ts_native_thread_id = 160,
		.ts_datastack = 232,
		.ts_cframe = NONE, .ts_frame = 72,
		.fr_code = 0, .fr_back = 8, .fr_instr = 56, .fr_owner = 70,
		.owner_cstack = 3, .instr_is_ptr = true, .code_mask = ALL_BITS,
		.fr_gen = 70, .owner_gen = 1,
		.fr_localsplus = 72, .gen_frame = 72, .task_coro = 120, .co_varnames = 96, .tuple_items = 24,
		.fut_callback0 = 24, .wakeup_task = 24,
		.tp_dict = 264, .func_code = 48,
		.co_consts = 24, .co_nlocals = NONE, .co_cellvars = NONE, .co_freevars = NONE,
		.co_flags = 48, .co_firstlineno = 68, .co_filename = 112, .co_name = 120, .co_qualname = 128,
		.co_linetable = 136, .co_code_adaptive = 200, .linetable = PYL_LOCATIONS,
		.str_state = 32, .str_ascii_data = 40, .str_compact_data = 56,
		.bytes_size = 16, .bytes_data = 32,
		.rt_gil = NONE, .is_ceval_gil = 16, .gil_locked = 16, .gil_holder = 8,
		.is_modules = 7656, .mod_dict = 16, .dict_keys = 32, .dict_values = 40,
		.dk_log2 = true, .dk_size = 8, .dk_nentries = 24, .dk_indices = 32, .dv_values = 8,
		.tp_basicsize = 32, .tp_flags = 168, .tp_dictoffset = 288, .ht_cached_keys = 880,
		.objdict = PYL_DICT_INLINE, .long_size = 16, .long_digits = 24, .long_tag = true,
	},
	/*
	 * Debian sid's 3.14.10 headers and _Py_DebugOffsets. f_executable is a _PyStackRef whose
	 * low Py_TAG_BITS (3) are tags. The entry frame is owned by FRAME_OWNED_BY_INTERPRETER (3);
	 * FRAME_OWNED_BY_CSTACK moved to 4 but no frame carries it (seen on a live 3.14 too).
	 */
	{
		.major = 3, .minor = 14,
		.rt_tss = 2336, .rt_interp_head = 808, .is_threads_head = 7344,
		.ts_next = 8, .ts_thread_id = 152, .ts_native_thread_id = 160,
		.ts_datastack = 232,
		.ts_cframe = NONE, .ts_frame = 72,
		.fr_code = 0, .fr_back = 8, .fr_instr = 56, .fr_owner = 74,
		.owner_cstack = 3, .instr_is_ptr = true, .code_mask = ~(uint64_t)3,
		.fr_gen = 74, .owner_gen = 1,
		.fr_localsplus = 80, .gen_frame = 72, .task_coro = 128, .co_varnames = 96, .tuple_items = 32,
		.fut_callback0 = 24, .wakeup_task = 24,
		.tp_dict = 264, .func_code = 48,
		.co_consts = 24, .co_nlocals = NONE, .co_cellvars = NONE, .co_freevars = NONE,
		.co_flags = 48, .co_firstlineno = 68, .co_filename = 112, .co_name = 120, .co_qualname = 128,
		.co_linetable = 136, .co_code_adaptive = 208, .linetable = PYL_LOCATIONS,
		.str_state = 32, .str_ascii_data = 40, .str_compact_data = 56,
		.bytes_size = 16, .bytes_data = 32,
		.rt_gil = NONE, .is_ceval_gil = 16, .gil_locked = 16, .gil_holder = 8,
		.is_modules = 7688, .mod_dict = 16, .dict_keys = 32, .dict_values = 40,
		.dk_log2 = true, .dk_size = 8, .dk_nentries = 24, .dk_indices = 32, .dv_values = 8,
		.tp_basicsize = 32, .tp_flags = 168, .tp_dictoffset = 288, .ht_cached_keys = 880,
		.objdict = PYL_DICT_INLINE, .long_size = 16, .long_digits = 24, .long_tag = true,
	},
	/*
	 * Debian sid's 3.15.2 headers and _Py_DebugOffsets. _PyRuntimeState has no autoTSSkey any
	 * more: the current tstate is only in the thread-local _Py_tss_tstate, so rt_tss is NONE.
	 * FRAME_OWNED_BY_CSTACK is gone, but entry frames (owner FRAME_OWNED_BY_INTERPRETER, 3,
	 * f_executable None) are still pushed and still need skipping.
	 */
	{
		.major = 3, .minor = 15,
		.rt_tss = NONE, .rt_interp_head = 936, .is_threads_head = 7336,
		.ts_next = 8, .ts_thread_id = 176, .ts_native_thread_id = 184,
		.ts_datastack = 256,
		.ts_cframe = NONE, .ts_frame = 72,
		.fr_code = 0, .fr_back = 8, .fr_instr = 56, .fr_owner = 74,
		.owner_cstack = 3, .instr_is_ptr = true, .code_mask = ~(uint64_t)3,
		.fr_gen = 74, .owner_gen = 1,
		.fr_localsplus = 80, .gen_frame = 72, .task_coro = 128, .co_varnames = 96, .tuple_items = 32,
		.fut_callback0 = 24, .wakeup_task = 24,
		.tp_dict = 264, .func_code = 48,
		.co_consts = 24, .co_nlocals = NONE, .co_cellvars = NONE, .co_freevars = NONE,
		.co_flags = 48, .co_firstlineno = 68, .co_filename = 112, .co_name = 120, .co_qualname = 128,
		.co_linetable = 136, .co_code_adaptive = 208, .linetable = PYL_LOCATIONS,
		.str_state = 32, .str_ascii_data = 40, .str_compact_data = 56,
		.bytes_size = 16, .bytes_data = 32,
		.rt_gil = NONE, .is_ceval_gil = 16, .gil_locked = 16, .gil_holder = 8,
		.is_modules = 7592, .mod_dict = 16, .dict_keys = 32, .dict_values = 40,
		.dk_log2 = true, .dk_size = 8, .dk_nentries = 24, .dk_indices = 32, .dv_values = 8,
		.tp_basicsize = 32, .tp_flags = 168, .tp_dictoffset = 288, .ht_cached_keys = 888,
		.objdict = PYL_DICT_INLINE, .long_size = 16, .long_digits = 24, .long_tag = true,
	},
};

const struct py_layout *py_layout__builtin(unsigned major, unsigned minor)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].major == major && layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

/*
 * Mirrors of _Py_DebugOffsets, one per version, field for field (all uint64_t, no padding):
 * 3.13 Include/internal/pycore_runtime.h, 3.14 and 3.15 Include/internal/pycore_debug_offsets.h.
 * Groups the tracer does not read are kept as arrays of the right length.
 */
struct dbg_head {
	char cookie[8];
	uint64_t version;
	uint64_t free_threaded;
	struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
};

struct dbg_code_object {
	uint64_t size, filename, name, qualname, linetable, firstlineno, argcount;
	uint64_t localsplusnames, localspluskinds, co_code_adaptive;
};

struct dbg_bytes_object { uint64_t size, ob_size, ob_sval; };

struct debug_offsets_313 {
	struct dbg_head h;
	struct {
		uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins;
		uint64_t ceval_gil, gil_runtime_state, gil_runtime_state_enabled;
		uint64_t gil_runtime_state_locked, gil_runtime_state_holder;
	} interpreter_state;
	struct {
		uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id;
		uint64_t datastack_chunk, status;
	} thread_state;
	struct { uint64_t size, previous, executable, instr_ptr, localsplus, owner; } interpreter_frame;
	struct dbg_code_object code_object;
	/* pyobject 2, type_object 4, tuple_object 3, list_object 3, dict_object 3,
	 * float_object 2, long_object 3 */
	uint64_t objects[2 + 4 + 3 + 3 + 3 + 2 + 3];
	struct dbg_bytes_object bytes_object;
	struct { uint64_t size, state, length, asciiobject_size; } unicode_object;
	struct { uint64_t size, collecting; } gc;
};

struct debug_offsets_314 {
	struct dbg_head h;
	struct {
		uint64_t size, id, next, threads_head, threads_main, gc, imports_modules, sysdict;
		uint64_t builtins, ceval_gil, gil_runtime_state, gil_runtime_state_enabled;
		uint64_t gil_runtime_state_locked, gil_runtime_state_holder;
		uint64_t code_object_generation, tlbc_generation;
	} interpreter_state;
	struct {
		uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id;
		uint64_t datastack_chunk, status;
	} thread_state;
	struct {
		uint64_t size, previous, executable, instr_ptr, localsplus, owner, stackpointer;
		uint64_t tlbc_index;
	} interpreter_frame;
	struct { struct dbg_code_object c; uint64_t co_tlbc; } code_object;
	/* pyobject 2, type_object 4, tuple_object 3, list_object 3, set_object 4,
	 * dict_object 3, float_object 2, long_object 3 */
	uint64_t objects[2 + 4 + 3 + 3 + 4 + 3 + 2 + 3];
	struct dbg_bytes_object bytes_object;
	struct { uint64_t size, state, length, asciiobject_size; } unicode_object;
	/* gc 2, gen_object 4, llist_node 2, debugger_support 6 */
	uint64_t tail[2 + 4 + 2 + 6];
};

struct debug_offsets_315 {
	struct dbg_head h;
	struct {
		uint64_t size, id, next, threads_head, threads_main, gc, imports_modules, sysdict;
		uint64_t builtins, ceval_gil, gil_runtime_state, gil_runtime_state_enabled;
		uint64_t gil_runtime_state_locked, gil_runtime_state_holder;
		uint64_t code_object_generation, tlbc_generation;
	} interpreter_state;
	struct {
		uint64_t size, prev, next, interp, current_frame, base_frame, last_profiled_frame;
		uint64_t last_profiled_frame_seq, thread_id, native_thread_id, datastack_chunk;
		uint64_t status, holds_gil, gil_requested, current_exception, exc_state;
	} thread_state;
	struct { uint64_t exc_value; } err_stackitem;
	struct {
		uint64_t size, previous, executable, instr_ptr, localsplus, owner, stackpointer;
		uint64_t tlbc_index;
	} interpreter_frame;
	struct { struct dbg_code_object c; uint64_t co_tlbc; } code_object;
	/* pyobject 2, type_object 6, heap_type_object 2, tuple_object 3, list_object 3,
	 * set_object 4, dict_object 3, float_object 2, long_object 3 */
	uint64_t objects[2 + 6 + 2 + 3 + 3 + 4 + 3 + 2 + 3];
	struct dbg_bytes_object bytes_object;
	struct {
		uint64_t size, state, length, asciiobject_size, compactunicodeobject_size;
	} unicode_object;
	/* gc 5, gen_object 4, llist_node 2, debugger_support 6 */
	uint64_t tail[5 + 4 + 2 + 6];
};

/* Store an offset that must lie inside an object of the given size; 0 or -EINVAL. */
static int set_off(uint32_t *dst, uint64_t off, uint64_t size)
{
	if (off >= size || size >= UINT32_MAX)
		return -EINVAL;
	*dst = (uint32_t)off;
	return 0;
}

/* The fields all three versions share, read through pointers into the version's struct. */
struct dbg_view {
	const struct dbg_head *h;
	uint64_t is_size, threads_head, imports_modules;
	uint64_t ceval_gil, gil_state, gil_locked, gil_holder;
	uint64_t ts_size, next, current_frame, thread_id, native_thread_id, datastack_chunk;
	uint64_t fr_size, previous, executable, instr_ptr, owner, localsplus;
	uint64_t gen_size, gi_iframe;	/* 3.14+; 0: not in the offsets (3.13) */
	const struct dbg_code_object *code;
	const struct dbg_bytes_object *bytes;
	uint64_t str_size, state, asciiobject_size, compactunicodeobject_size;
};

#define VIEW(v, d) do {								\
	(v)->h = &(d)->h;							\
	(v)->is_size = (d)->interpreter_state.size;				\
	(v)->threads_head = (d)->interpreter_state.threads_head;		\
	(v)->ceval_gil = (d)->interpreter_state.ceval_gil;			\
	(v)->gil_state = (d)->interpreter_state.gil_runtime_state;		\
	(v)->gil_locked = (d)->interpreter_state.gil_runtime_state_locked;	\
	(v)->gil_holder = (d)->interpreter_state.gil_runtime_state_holder;	\
	(v)->imports_modules = (d)->interpreter_state.imports_modules;		\
	(v)->ts_size = (d)->thread_state.size;					\
	(v)->next = (d)->thread_state.next;					\
	(v)->current_frame = (d)->thread_state.current_frame;			\
	(v)->datastack_chunk = (d)->thread_state.datastack_chunk;		\
	(v)->thread_id = (d)->thread_state.thread_id;				\
	(v)->native_thread_id = (d)->thread_state.native_thread_id;		\
	(v)->fr_size = (d)->interpreter_frame.size;				\
	(v)->previous = (d)->interpreter_frame.previous;			\
	(v)->executable = (d)->interpreter_frame.executable;			\
	(v)->instr_ptr = (d)->interpreter_frame.instr_ptr;			\
	(v)->owner = (d)->interpreter_frame.owner;				\
	(v)->localsplus = (d)->interpreter_frame.localsplus;			\
	(v)->bytes = &(d)->bytes_object;					\
	(v)->str_size = (d)->unicode_object.size;				\
	(v)->state = (d)->unicode_object.state;					\
	(v)->asciiobject_size = (d)->unicode_object.asciiobject_size;		\
} while (0)

int py_layout__from_debug_offsets(struct py_layout *out, const void *buf, size_t len)
{
	const struct dbg_head *h = buf;
	struct py_layout l = *out;
	struct dbg_view v = { 0 };
	size_t need;
	int err = 0;

	if (len < sizeof(*h) || memcmp(h->cookie, "xdebugpy", 8))
		return -EINVAL;
	if ((h->version >> 24) != out->major || ((h->version >> 16) & 0xff) != out->minor)
		return -EINVAL;
	switch (out->minor) {
	case 13: need = sizeof(struct debug_offsets_313); break;
	case 14: need = sizeof(struct debug_offsets_314); break;
	case 15: need = sizeof(struct debug_offsets_315); break;
	default: return -ENOTSUP;
	}
	if (out->major != 3)
		return -ENOTSUP;
	if (len < need)
		return -EINVAL;
	if (h->free_threaded)
		return -ENOTSUP;	/* a free-threaded build: other tstate and frame layouts */

	if (out->minor == 13) {
		const struct debug_offsets_313 *d = buf;

		VIEW(&v, d);
		v.code = &d->code_object;
		v.compactunicodeobject_size = 0;
	} else if (out->minor == 14) {
		const struct debug_offsets_314 *d = buf;

		VIEW(&v, d);
		v.code = &d->code_object.c;
		v.compactunicodeobject_size = 0;
		v.gen_size = d->tail[2];	/* after gc's 2: gen_object's size, gi_name, gi_iframe */
		v.gi_iframe = d->tail[4];
	} else {
		const struct debug_offsets_315 *d = buf;

		VIEW(&v, d);
		v.code = &d->code_object.c;
		v.gen_size = d->tail[5];	/* after gc's 5 */
		v.gi_iframe = d->tail[7];
		v.compactunicodeobject_size = d->unicode_object.compactunicodeobject_size;
	}

	err = err ?: set_off(&l.rt_interp_head, h->runtime_state.interpreters_head,
			     h->runtime_state.size);
	err = err ?: set_off(&l.is_threads_head, v.threads_head, v.is_size);
	err = err ?: set_off(&l.is_modules, v.imports_modules, v.is_size);
	err = err ?: set_off(&l.ts_next, v.next, v.ts_size);
	err = err ?: set_off(&l.ts_frame, v.current_frame, v.ts_size);
	/* datastack_chunk, then datastack_top: both pointers are read at once. */
	err = err ?: set_off(&l.ts_datastack, v.datastack_chunk, v.ts_size - 8);
	err = err ?: set_off(&l.ts_thread_id, v.thread_id, v.ts_size);
	err = err ?: set_off(&l.ts_native_thread_id, v.native_thread_id, v.ts_size);
	err = err ?: set_off(&l.fr_back, v.previous, v.fr_size);
	err = err ?: set_off(&l.fr_code, v.executable, v.fr_size);
	err = err ?: set_off(&l.fr_instr, v.instr_ptr, v.fr_size);
	/* Only where the table says shim frames are to be skipped by their owner byte. */
	if (l.fr_owner != PYL_NONE)
		err = err ?: set_off(&l.fr_owner, v.owner, v.fr_size);
	err = err ?: set_off(&l.fr_gen, v.owner, v.fr_size);
	err = err ?: set_off(&l.fr_localsplus, v.localsplus, v.fr_size + 1);
	if (v.gen_size)
		err = err ?: set_off(&l.gen_frame, v.gi_iframe, v.gen_size);
	err = err ?: set_off(&l.co_varnames, v.code->localsplusnames, v.code->size);
	err = err ?: set_off(&l.co_filename, v.code->filename, v.code->size);
	err = err ?: set_off(&l.co_name, v.code->name, v.code->size);
	err = err ?: set_off(&l.co_qualname, v.code->qualname, v.code->size);
	err = err ?: set_off(&l.co_linetable, v.code->linetable, v.code->size);
	err = err ?: set_off(&l.co_firstlineno, v.code->firstlineno, v.code->size);
	err = err ?: set_off(&l.co_code_adaptive, v.code->co_code_adaptive, v.code->size + 1);
	err = err ?: set_off(&l.bytes_size, v.bytes->ob_size, v.bytes->size);
	err = err ?: set_off(&l.bytes_data, v.bytes->ob_sval, v.bytes->size);
	err = err ?: set_off(&l.str_state, v.state, v.str_size);
	err = err ?: set_off(&l.str_ascii_data, v.asciiobject_size, v.str_size + 1);
	/* the GIL: interp->ceval.gil points at a struct _gil_runtime_state like interp->_gil */
	err = err ?: set_off(&l.is_ceval_gil, v.ceval_gil, v.is_size);
	if (!err && (v.gil_locked < v.gil_state || v.gil_holder < v.gil_state || v.gil_state >= v.is_size))
		err = -EINVAL;
	err = err ?: set_off(&l.gil_locked, v.gil_locked - v.gil_state, v.is_size - v.gil_state);
	err = err ?: set_off(&l.gil_holder, v.gil_holder - v.gil_state, v.is_size - v.gil_state);
	if (v.compactunicodeobject_size)
		err = err ?: set_off(&l.str_compact_data, v.compactunicodeobject_size,
				     v.str_size + 1);
	if (err)
		return err;
	*out = l;
	return 0;
}

/*
 * Py_AsyncioModuleDebugOffsets (Modules/_asynciomodule.c, 3.14+), in 64-bit words: TaskObj's size,
 * task_name, task_awaited_by, task_is_task, task_awaited_by_is_set, task_coro, task_node; the
 * interpreter state's size and asyncio_tasks_head; the thread state's (_PyThreadStateImpl) size,
 * asyncio_running_loop, asyncio_running_task, asyncio_tasks_head.
 */
enum { AIO_TASK_SIZE, AIO_TASK_CORO = 5, AIO_TS_SIZE = 9, AIO_TS_LOOP, AIO_TS_TASK, AIO_WORDS = PYL_ASYNCIO_DEBUG_LEN / 8 };

uint32_t py_layout__asyncio_running_task(const void *sec, size_t len, uint32_t task_coro)
{
	uint64_t w[AIO_WORDS];

	if (len < sizeof(w))
		return 0;
	memcpy(w, sec, sizeof(w));
	/* the table of the TaskObj the layout describes, and a thread state of sane size */
	if (w[AIO_TASK_CORO] != task_coro || w[AIO_TASK_SIZE] <= task_coro || w[AIO_TASK_SIZE] > 4096 ||
	    w[AIO_TS_SIZE] < 64 || w[AIO_TS_SIZE] > 65536)
		return 0;
	/* the task pointer inside it, aligned, apart from the loop's */
	if (w[AIO_TS_TASK] < 64 || w[AIO_TS_TASK] % 8 || w[AIO_TS_TASK] + 8 > w[AIO_TS_SIZE] ||
	    w[AIO_TS_LOOP] == w[AIO_TS_TASK])
		return 0;
	return (uint32_t)w[AIO_TS_TASK];
}
