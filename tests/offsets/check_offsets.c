// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Check py_layout__builtin(3, PY_MINOR) against offsetof() in that interpreter's own headers,
 * and, for 3.13+, py_layout__from_debug_offsets() against the same, fed with (a) a
 * _Py_DebugOffsets built from the header's own struct, every unused field poisoned, and
 * (b) the real bytes of the .PyRuntime section of interpreter binaries named on the command line.
 *
 * Built once per interpreter by run.sh:
 *   cc -DPY_MINOR=N -I<python include> -Isrc check_offsets.c src/pylayout.c
 * Usage: check_offsets [ELF-with-.PyRuntime...]
 *        check_offsets --print    (py_layout__builtin(3, PY_MINOR) as key=value lines)
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#if PY_MINOR_VERSION <= 10
#include <frameobject.h>
#include <longintrepr.h>
#endif
#if PY_MINOR_VERSION == 8
#include "internal/pycore_pystate.h"
#else
#include "internal/pycore_runtime.h"
#include "internal/pycore_interp.h"
#endif
#if PY_MINOR_VERSION >= 10
#include "internal/pycore_moduleobject.h"
#endif
#if PY_MINOR_VERSION >= 11
#include "internal/pycore_dict.h"
#include "internal/pycore_object.h"
#endif
#if PY_MINOR_VERSION >= 11 && PY_MINOR_VERSION <= 13
#include "internal/pycore_frame.h"
#elif PY_MINOR_VERSION >= 14
#include "internal/pycore_interpframe.h"
#include "internal/pycore_stackref.h"
#include "internal/pycore_debug_offsets.h"
#include "internal/pycore_tstate.h"
#endif

#include <elf.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pylayout.h"

#if !defined(PY_MINOR) || PY_MINOR != PY_MINOR_VERSION || PY_MAJOR_VERSION != 3
#error "build with -DPY_MINOR=N against the headers of python3.N"
#endif
#ifdef Py_GIL_DISABLED
#error "free-threaded headers: the tracer supports GIL builds only"
#endif

static int passed, failed;

static void expected(struct py_layout *e, const struct py_layout *got)
{
	memset(e, 0, sizeof(*e));
	e->major = 3;
	e->minor = PY_MINOR;
#if PY_MINOR <= 11
	e->rt_tss = offsetof(_PyRuntimeState, gilstate.autoTSSkey);
#elif PY_MINOR <= 14
	e->rt_tss = offsetof(_PyRuntimeState, autoTSSkey);
#else
	/* 3.15 dropped autoTSSkey: only the thread-local _Py_tss_tstate knows the tstate. */
	e->rt_tss = PYL_NONE;
#endif
	e->rt_interp_head = offsetof(_PyRuntimeState, interpreters.head);
#if PY_MINOR <= 10
	e->is_threads_head = offsetof(PyInterpreterState, tstate_head);
#else
	e->is_threads_head = offsetof(PyInterpreterState, threads.head);
#endif
	e->ts_next = offsetof(PyThreadState, next);
	e->ts_thread_id = offsetof(PyThreadState, thread_id);
#if PY_MINOR >= 11
	e->ts_native_thread_id = offsetof(PyThreadState, native_thread_id);
#else
	e->ts_native_thread_id = PYL_NONE;
#endif
#if PY_MINOR <= 10
	e->ts_datastack = PYL_NONE;
#else
	e->ts_datastack = offsetof(PyThreadState, datastack_chunk);
	/* The walker reads chunk, top and limit as three consecutive pointers. */
	if (offsetof(PyThreadState, datastack_top) != e->ts_datastack + 8 ||
	    offsetof(PyThreadState, datastack_limit) != e->ts_datastack + 16 ||
	    offsetof(_PyStackChunk, data) != 24) {
		fprintf(stderr, "3.%d: datastack_chunk/top/limit are not consecutive\n", PY_MINOR);
		exit(1);
	}
#endif
#if PY_MINOR <= 10
	e->ts_cframe = PYL_NONE;
	e->ts_frame = offsetof(PyThreadState, frame);
	e->fr_code = offsetof(PyFrameObject, f_code);
	e->fr_back = offsetof(PyFrameObject, f_back);
	e->fr_instr = offsetof(PyFrameObject, f_lasti);
	e->instr_is_ptr = false;
#elif PY_MINOR <= 12
	e->ts_cframe = offsetof(PyThreadState, cframe);
	e->ts_frame = offsetof(_PyCFrame, current_frame);
	e->fr_code = offsetof(_PyInterpreterFrame, f_code);
	e->fr_back = offsetof(_PyInterpreterFrame, previous);
	e->fr_instr = offsetof(_PyInterpreterFrame, prev_instr);
	e->instr_is_ptr = true;
#else
	e->ts_cframe = PYL_NONE;
	e->ts_frame = offsetof(PyThreadState, current_frame);
	e->fr_code = offsetof(_PyInterpreterFrame, f_executable);
	e->fr_back = offsetof(_PyInterpreterFrame, previous);
	e->fr_instr = offsetof(_PyInterpreterFrame, instr_ptr);
	e->instr_is_ptr = true;
#endif
	/*
	 * The frame that _PyEval_EvalFrameDefault pushes on entry (f_executable None, or the
	 * trampoline code in 3.12) is owned by FRAME_OWNED_BY_CSTACK in 3.12 and 3.13; 3.14 and
	 * 3.15 own it by FRAME_OWNED_BY_INTERPRETER (3.14 keeps an unused FRAME_OWNED_BY_CSTACK = 4,
	 * 3.15 drops it). Python/ceval.c says so; run_live.py checks it on running interpreters.
	 */
#if PY_MINOR <= 11
	e->fr_owner = PYL_NONE;
	e->owner_cstack = 0;
#elif PY_MINOR <= 13
	e->fr_owner = offsetof(_PyInterpreterFrame, owner);
	e->owner_cstack = FRAME_OWNED_BY_CSTACK;
#else
	e->fr_owner = offsetof(_PyInterpreterFrame, owner);
	e->owner_cstack = FRAME_OWNED_BY_INTERPRETER;
#endif
	/* Generator and coroutine frames: f_gen set (<= 3.10), owned by the generator (3.11+). */
#if PY_MINOR <= 10
	e->fr_gen = offsetof(PyFrameObject, f_gen);
	e->owner_gen = 0;
#else
	e->fr_gen = offsetof(_PyInterpreterFrame, owner);
	e->owner_gen = FRAME_OWNED_BY_GENERATOR;
#endif
	/* A frame's arguments and locals; a coroutine's frame; a task's coroutine (live_walk.py). */
#if PY_MINOR <= 10
	e->fr_localsplus = offsetof(PyFrameObject, f_localsplus);
	e->gen_frame = offsetof(PyGenObject, gi_frame);
	e->co_varnames = offsetof(PyCodeObject, co_varnames);
#else
	e->fr_localsplus = offsetof(_PyInterpreterFrame, localsplus);
	e->gen_frame = offsetof(PyGenObject, gi_iframe);
	e->co_varnames = offsetof(PyCodeObject, co_localsplusnames);
#endif
	e->tuple_items = offsetof(PyTupleObject, ob_item);
	e->tp_dict = offsetof(PyTypeObject, tp_dict);
	e->func_code = offsetof(PyFunctionObject, func_code);
	/* TaskObj, FutureObj and TaskWakeupMethWrapper are private to Modules/_asynciomodule.c */
	e->task_coro = got->task_coro;
	e->fut_callback0 = got->fut_callback0;
#if PY_MINOR <= 9
	e->wakeup_task = got->wakeup_task;
#else
	e->wakeup_task = offsetof(PyCFunctionObject, m_self);
#endif
#if PY_MINOR >= 14
	e->code_mask = ~(uint64_t)Py_TAG_BITS;
#else
	e->code_mask = ~(uint64_t)0;
#endif
	e->co_flags = offsetof(PyCodeObject, co_flags);
	if (CO_COROUTINE != 0x80 || CO_ITERABLE_COROUTINE != 0x100 || CO_ASYNC_GENERATOR != 0x200) {
		fprintf(stderr, "3.%d: CO_COROUTINE and co. moved (PT_CO_ASYNC)\n", PY_MINOR);
		exit(1);
	}
	e->co_firstlineno = offsetof(PyCodeObject, co_firstlineno);
	e->co_filename = offsetof(PyCodeObject, co_filename);
	e->co_name = offsetof(PyCodeObject, co_name);
#if PY_MINOR >= 11
	e->co_qualname = offsetof(PyCodeObject, co_qualname);
	e->co_code_adaptive = offsetof(PyCodeObject, co_code_adaptive);
#else
	e->co_qualname = PYL_NONE;
	e->co_code_adaptive = PYL_NONE;
#endif
#if PY_MINOR <= 9
	e->co_linetable = offsetof(PyCodeObject, co_lnotab);
	e->linetable = PYL_LNOTAB;
#elif PY_MINOR == 10
	e->co_linetable = offsetof(PyCodeObject, co_linetable);
	e->linetable = PYL_LINETABLE_310;
#else
	e->co_linetable = offsetof(PyCodeObject, co_linetable);
	e->linetable = PYL_LOCATIONS;
#endif
	e->str_state = offsetof(PyASCIIObject, state);
	e->str_ascii_data = sizeof(PyASCIIObject);
	e->str_compact_data = sizeof(PyCompactUnicodeObject);
	e->bytes_size = offsetof(PyVarObject, ob_size);
	e->bytes_data = offsetof(PyBytesObject, ob_sval);
	/* The GIL (--gil): in _PyRuntime through 3.11, through interp->ceval.gil from 3.12. */
#if PY_MINOR <= 11
	e->rt_gil = offsetof(_PyRuntimeState, ceval.gil);
	e->is_ceval_gil = PYL_NONE;
#else
	e->rt_gil = PYL_NONE;
	e->is_ceval_gil = offsetof(PyInterpreterState, ceval.gil);
#endif
	e->gil_locked = offsetof(struct _gil_runtime_state, locked);
	e->gil_holder = offsetof(struct _gil_runtime_state, last_holder);

	/* Thread names (src/pythreads.c): sys.modules, dicts, instance attributes, ints. */
#if PY_MINOR <= 11
	e->is_modules = offsetof(PyInterpreterState, modules);
#else
	e->is_modules = offsetof(PyInterpreterState, imports.modules);
#endif
#if PY_MINOR >= 10
	e->mod_dict = offsetof(PyModuleObject, md_dict);
#else
	e->mod_dict = 16;	/* Objects/moduleobject.c, not installed: live_walk.py reads through it */
#endif
	e->dict_keys = offsetof(PyDictObject, ma_keys);
	e->dict_values = offsetof(PyDictObject, ma_values);
#if PY_MINOR >= 11
	e->dk_log2 = true;
	e->dk_size = offsetof(PyDictKeysObject, dk_log2_size);
	/* read as three bytes in a row: log2 size, log2 index bytes, kind */
	if (offsetof(PyDictKeysObject, dk_log2_index_bytes) != e->dk_size + 1 ||
	    offsetof(PyDictKeysObject, dk_kind) != e->dk_size + 2 || DICT_KEYS_GENERAL != 0 ||
	    sizeof(PyDictKeyEntry) != 24 || sizeof(PyDictUnicodeEntry) != 16 ||
	    offsetof(PyDictKeyEntry, me_key) != 8 || offsetof(PyDictUnicodeEntry, me_key) != 0) {
		fprintf(stderr, "3.%d: dict keys or entries are not as pythreads.c reads them\n", PY_MINOR);
		exit(1);
	}
	e->dk_nentries = offsetof(PyDictKeysObject, dk_nentries);
	e->dk_indices = offsetof(PyDictKeysObject, dk_indices);
	e->dv_values = offsetof(PyDictValues, values);
#else
	/* Objects/dict-common.h, not installed: dk_size, dk_nentries, dk_indices (live_walk.py) */
	e->dk_log2 = false;
	e->dk_size = 8;
	e->dk_nentries = 32;
	e->dk_indices = 40;
	e->dv_values = 0;
#endif
	e->tp_basicsize = offsetof(PyTypeObject, tp_basicsize);
	e->tp_flags = offsetof(PyTypeObject, tp_flags);
	e->tp_dictoffset = offsetof(PyTypeObject, tp_dictoffset);
	e->ht_cached_keys = offsetof(PyHeapTypeObject, ht_cached_keys);
#if PY_MINOR <= 10
	e->objdict = PYL_DICT_OFFSET;
#elif PY_MINOR == 11
	e->objdict = PYL_DICT_MANAGED_311;
#elif PY_MINOR == 12
	e->objdict = PYL_DICT_MANAGED_312;
#else
	e->objdict = PYL_DICT_INLINE;
	if (MANAGED_DICT_OFFSET != -24 || Py_TPFLAGS_INLINE_VALUES != (1UL << 2) ||
	    offsetof(PyDictValues, valid) != 3) {
		fprintf(stderr, "3.%d: managed dict or inline values are not as pythreads.c reads them\n", PY_MINOR);
		exit(1);
	}
#endif
#if PY_MINOR >= 11
	if (Py_TPFLAGS_MANAGED_DICT != (1UL << 4)) {
		fprintf(stderr, "3.%d: Py_TPFLAGS_MANAGED_DICT moved\n", PY_MINOR);
		exit(1);
	}
#endif
#if PY_MINOR >= 12
	e->long_size = offsetof(PyLongObject, long_value.lv_tag);
	e->long_digits = offsetof(PyLongObject, long_value.ob_digit);
	e->long_tag = true;
	if (_PyLong_NON_SIZE_BITS != 3) {
		fprintf(stderr, "3.%d: lv_tag has %d non-size bits\n", PY_MINOR, _PyLong_NON_SIZE_BITS);
		exit(1);
	}
#else
	e->long_size = offsetof(PyVarObject, ob_size);
	e->long_digits = offsetof(PyLongObject, ob_digit);
	e->long_tag = false;
#endif
	if (PyLong_SHIFT != 30) {
		fprintf(stderr, "3.%d: %d-bit int digits (pythreads.c reads 30-bit ones)\n", PY_MINOR, PyLong_SHIFT);
		exit(1);
	}
}

#define FIELDS(X)							\
	X(major) X(minor) X(rt_tss) X(rt_interp_head) X(is_threads_head)	\
	X(ts_next) X(ts_thread_id) X(ts_native_thread_id) X(ts_cframe)	\
	X(ts_frame) X(ts_datastack) X(fr_code) X(fr_back) X(fr_instr) X(fr_owner)	\
	X(owner_cstack) X(fr_gen) X(owner_gen) X(instr_is_ptr) X(code_mask) X(co_flags) X(co_firstlineno)	\
	X(fr_localsplus) X(gen_frame) X(task_coro) X(co_varnames) X(tuple_items) X(fut_callback0) X(wakeup_task) X(tp_dict) X(func_code)		\
	X(co_filename) X(co_name) X(co_qualname) X(co_linetable)	\
	X(co_code_adaptive) X(linetable) X(str_state) X(str_ascii_data)	\
	X(str_compact_data) X(bytes_size) X(bytes_data) X(rt_gil)	\
	X(is_ceval_gil) X(gil_locked) X(gil_holder)			\
	X(is_modules) X(mod_dict) X(dict_keys) X(dict_values) X(dk_log2)	\
	X(dk_size) X(dk_nentries) X(dk_indices) X(dv_values) X(tp_basicsize)	\
	X(tp_flags) X(tp_dictoffset) X(ht_cached_keys) X(objdict)		\
	X(long_size) X(long_digits) X(long_tag)

static void compare(const char *what, const struct py_layout *got, const struct py_layout *exp)
{
#define CMP(f)									\
	if ((uint64_t)got->f == (uint64_t)exp->f) {				\
		passed++;							\
	} else {								\
		failed++;							\
		printf("3.%d %s: %s = %#llx, headers say %#llx\n", PY_MINOR,	\
		       what, #f, (unsigned long long)got->f,			\
		       (unsigned long long)exp->f);				\
	}
	FIELDS(CMP)
#undef CMP
}

static void print_layout(const struct py_layout *l)
{
#define PR(f) printf("%s=%llu\n", #f, (unsigned long long)l->f);
	FIELDS(PR)
#undef PR
}

#if PY_MINOR >= 13
/* 3.13 keeps the struct inside _PyRuntimeState; 3.14+ name it in pycore_debug_offsets.h. */
typedef _Py_DebugOffsets debug_offsets_t;

/*
 * A _Py_DebugOffsets as this version's header lays it out, with the fields the parser must
 * use set from offsetof() and every other byte poisoned, so a mirror struct that is off by
 * one field reads poison instead of a plausible number.
 */
static void check_synthetic(const struct py_layout *exp)
{
	debug_offsets_t d;
	struct py_layout got;
	int err;

	memset(&d, 0x41, sizeof(d));
	memcpy(d.cookie, "xdebugpy", 8);
	d.version = PY_VERSION_HEX;
	d.free_threaded = 0;
	d.runtime_state.size = sizeof(_PyRuntimeState);
	d.runtime_state.interpreters_head = exp->rt_interp_head;
	d.interpreter_state.size = sizeof(PyInterpreterState);
	d.interpreter_state.threads_head = exp->is_threads_head;
	d.interpreter_state.ceval_gil = exp->is_ceval_gil;
	d.interpreter_state.gil_runtime_state = offsetof(PyInterpreterState, _gil);
	d.interpreter_state.gil_runtime_state_locked = offsetof(PyInterpreterState, _gil) + exp->gil_locked;
	d.interpreter_state.gil_runtime_state_holder = offsetof(PyInterpreterState, _gil) + exp->gil_holder;
	d.interpreter_state.imports_modules = exp->is_modules;
	d.thread_state.size = sizeof(PyThreadState);
	d.thread_state.next = exp->ts_next;
	d.thread_state.current_frame = exp->ts_frame;
	d.thread_state.thread_id = exp->ts_thread_id;
	d.thread_state.native_thread_id = exp->ts_native_thread_id;
	d.thread_state.datastack_chunk = exp->ts_datastack;
	d.interpreter_frame.size = sizeof(_PyInterpreterFrame);
	d.interpreter_frame.previous = exp->fr_back;
	d.interpreter_frame.executable = exp->fr_code;
	d.interpreter_frame.instr_ptr = exp->fr_instr;
	d.interpreter_frame.owner = offsetof(_PyInterpreterFrame, owner);
	d.interpreter_frame.localsplus = exp->fr_localsplus;
	d.code_object.size = sizeof(PyCodeObject);
	d.code_object.localsplusnames = exp->co_varnames;
#if PY_MINOR >= 14
	d.gen_object.size = sizeof(PyGenObject);
	d.gen_object.gi_iframe = exp->gen_frame;
#endif
	d.code_object.filename = exp->co_filename;
	d.code_object.name = exp->co_name;
	d.code_object.qualname = exp->co_qualname;
	d.code_object.linetable = exp->co_linetable;
	d.code_object.firstlineno = exp->co_firstlineno;
	d.code_object.co_code_adaptive = exp->co_code_adaptive;
	d.bytes_object.size = sizeof(PyBytesObject);
	d.bytes_object.ob_size = exp->bytes_size;
	d.bytes_object.ob_sval = exp->bytes_data;
	d.unicode_object.size = sizeof(PyUnicodeObject);
	d.unicode_object.state = exp->str_state;
	d.unicode_object.length = offsetof(PyASCIIObject, length);
	d.unicode_object.asciiobject_size = exp->str_ascii_data;
#if PY_MINOR >= 15
	d.unicode_object.compactunicodeobject_size = exp->str_compact_data;
#endif

	got = *py_layout__builtin(3, PY_MINOR);
	/* Start from a layout whose covered fields are all wrong, to see each one overridden. */
#define SPOIL(f) got.f = 0x7777;
	SPOIL(rt_interp_head) SPOIL(is_threads_head) SPOIL(is_modules) SPOIL(ts_next) SPOIL(ts_frame) SPOIL(ts_datastack)
	SPOIL(ts_thread_id) SPOIL(ts_native_thread_id) SPOIL(fr_back) SPOIL(fr_code)
	SPOIL(fr_instr) SPOIL(co_filename) SPOIL(co_name) SPOIL(co_qualname)
	SPOIL(co_linetable) SPOIL(co_firstlineno) SPOIL(co_code_adaptive) SPOIL(bytes_size)
	SPOIL(bytes_data) SPOIL(str_state) SPOIL(str_ascii_data) SPOIL(is_ceval_gil) SPOIL(gil_locked)
	SPOIL(gil_holder)
#undef SPOIL
	err = py_layout__from_debug_offsets(&got, &d, sizeof(d));
	if (err) {
		failed++;
		printf("3.%d synthetic _Py_DebugOffsets: parse failed: %d\n", PY_MINOR, err);
		return;
	}
	compare("synthetic debug offsets", &got, exp);

	/* Too short by one byte, and a bad cookie. */
	got = *py_layout__builtin(3, PY_MINOR);
	err = py_layout__from_debug_offsets(&got, &d, sizeof(d) - 1);
	if (err == -EINVAL) passed++; else { failed++; printf("3.%d truncated: %d\n", PY_MINOR, err); }
	d.cookie[0] = 'y';
	err = py_layout__from_debug_offsets(&got, &d, sizeof(d));
	if (err == -EINVAL) passed++; else { failed++; printf("3.%d bad cookie: %d\n", PY_MINOR, err); }
}

/* The bytes of section NAME of ELF file PATH, malloc'd. */
static void *read_section(const char *path, const char *name, size_t *len)
{
	struct stat st;
	void *map = MAP_FAILED, *ret = NULL;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || st.st_size < (off_t)sizeof(Elf64_Ehdr))
		goto out;
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		goto out;
	const Elf64_Ehdr *eh = map;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shstrndx >= eh->e_shnum ||
	    eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > (uint64_t)st.st_size)
		goto out;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)((const char *)map + eh->e_shoff);
	const Elf64_Shdr *strs = &sh[eh->e_shstrndx];
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_name >= strs->sh_size || sh[i].sh_type != SHT_PROGBITS)
			continue;
		const char *n = (const char *)map + strs->sh_offset + sh[i].sh_name;
		if (strcmp(n, name) || sh[i].sh_offset + sh[i].sh_size > (uint64_t)st.st_size)
			continue;
		ret = malloc(sh[i].sh_size);
		if (ret) {
			memcpy(ret, (const char *)map + sh[i].sh_offset, sh[i].sh_size);
			*len = sh[i].sh_size;
		}
		break;
	}
out:
	if (map != MAP_FAILED)
		munmap(map, st.st_size);
	if (fd >= 0)
		close(fd);
	return ret;
}

static void check_binary(const char *path, const struct py_layout *exp)
{
	struct py_layout got = *py_layout__builtin(3, PY_MINOR);
	char what[512];
	size_t len = 0;
	void *buf;
	int err;

	buf = read_section(path, ".PyRuntime", &len);
	if (!buf) {
		failed++;
		printf("3.%d %s: no .PyRuntime section\n", PY_MINOR, path);
		return;
	}
	/* The file's own struct must agree with this header's idea of it. */
	const debug_offsets_t *d = buf;
	if (len < sizeof(*d) || memcmp(d->cookie, "xdebugpy", 8) ||
	    (d->version >> 16) != (PY_VERSION_HEX >> 16) ||
	    d->runtime_state.size != sizeof(_PyRuntimeState) ||
	    d->thread_state.size != sizeof(PyThreadState) ||
	    d->interpreter_frame.size != sizeof(_PyInterpreterFrame) ||
	    d->code_object.size != sizeof(PyCodeObject)) {
		failed++;
		printf("3.%d %s: _Py_DebugOffsets does not match these headers\n", PY_MINOR, path);
		free(buf);
		return;
	}
	err = py_layout__from_debug_offsets(&got, buf, len);
	snprintf(what, sizeof(what), "%s (%#llx)", path, (unsigned long long)d->version);
	if (err) {
		failed++;
		printf("3.%d %s: parse failed: %d\n", PY_MINOR, what, err);
	} else {
		compare(what, &got, exp);
		printf("3.%d debug offsets of %s checked\n", PY_MINOR, what);
	}
	free(buf);
}
#endif /* PY_MINOR >= 13 */

#if PY_MINOR >= 14
/*
 * 3.14+: the thread state's asyncio_running_task as py_layout__asyncio_running_task() reads it
 * from the .AsyncioDebug section of path (the _asyncio module's: the interpreter's file where it is
 * built in, else its shared object) against offsetof() in these headers. Returns whether path
 * had the section.
 */
static bool check_asyncio(const char *path, const struct py_layout *l)
{
	uint32_t got, want = offsetof(_PyThreadStateImpl, asyncio_running_task);
	size_t len = 0;
	void *buf = read_section(path, ".AsyncioDebug", &len);

	if (!buf)
		return false;
	got = py_layout__asyncio_running_task(buf, len, l->task_coro);
	if (got == want) {
		passed++;
		printf("3.%d .AsyncioDebug of %s: asyncio_running_task at %u, as the headers say\n", PY_MINOR, path, got);
	} else {
		failed++;
		printf("3.%d .AsyncioDebug of %s: asyncio_running_task read as %u, headers %u\n", PY_MINOR, path, got, want);
	}
	free(buf);
	return true;
}
#endif

int main(int argc, char **argv)
{
	const struct py_layout *got;
	struct py_layout exp;
	int i = 1;

	got = py_layout__builtin(3, PY_MINOR);
	if (!got) {
		printf("3.%d: py_layout__builtin returned NULL\n", PY_MINOR);
		return 1;
	}
	expected(&exp, got);
	if (argc > 1 && !strcmp(argv[1], "--print")) {
		print_layout(got);
		return 0;
	}
	compare("builtin", got, &exp);
#if PY_MINOR >= 13
	check_synthetic(&exp);
	for (; i < argc; i++) {
#if PY_MINOR >= 14
		/* asyncio=FILE: the _asyncio module's shared object, whose .AsyncioDebug alone is read */
		if (!strncmp(argv[i], "asyncio=", 8)) {
			if (!check_asyncio(argv[i] + 8, got)) {
				failed++;
				printf("3.%d %s: no .AsyncioDebug section\n", PY_MINOR, argv[i] + 8);
			}
			continue;
		}
		check_asyncio(argv[i], got);
#endif
		check_binary(argv[i], &exp);
	}
#else
	if (i < argc)
		printf("3.%d has no _Py_DebugOffsets: ignoring %s...\n", PY_MINOR, argv[i]);
#endif
	printf("3.%d (headers %s): %d passed, %d failed\n", PY_MINOR, PY_VERSION, passed, failed);
	return failed ? 1 : 0;
}
