/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Python thread names (threading.Thread.name), read from the target's memory: threading's own
 * registry, `threading._active` (a dict ident -> Thread), found through the interpreter's
 * sys.modules, and each Thread's `_name` and `_native_id` (the kernel's tid) from its instance
 * attributes. Reading it means walking dicts and objects whose layouts change between versions
 * (py_layout: dict keys 3.8-3.10 / 3.11+, values arrays 3.13+, instance dicts by tp_dictoffset
 * <= 3.10, managed 3.11 / 3.12, inline values 3.13+; ints with ob_size <= 3.11, lv_tag 3.12+).
 *
 * A PyThreadState knows its thread's ident but not its Thread object, so there is no shorter
 * path. The registry is found once per process (threading._active is never replaced) and read
 * again when the caller wants fresher names: a few reads per thread (pystacks.c decides when).
 * Everything is bounded: entries per dict, threads, string lengths; a torn read (the target
 * mutating a dict while it is read) gives an error or a stale name, never a wild walk.
 */
#ifndef PYTRACE_PYTHREADS_H
#define PYTRACE_PYTHREADS_H

#include <stddef.h>
#include <stdint.h>
#include "memread.h"
#include "pylayout.h"

#define PYTHREADS_NAME_MAX	64	/* UTF-8 bytes kept of a name, NUL included */
#define PYTHREADS_MAX_ENTRIES	65536	/* entries read of one dict (sys.modules in big programs) */

struct py_thread_name {
	uint32_t tid;
	char name[PYTHREADS_NAME_MAX];
};

/*
 * The address of threading._active in the interpreter whose _PyRuntime is at runtime.
 * 0, -ENOENT (threading not imported, or no _active), or the reader's error / -EINVAL for
 * something that is not what it should be.
 */
int pythreads__find_active(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			   uint64_t *active);
/*
 * The threads registered in the dict at active, up to max of them, into out: how many, or -errno.
 * A Thread without a readable _name or _native_id is left out.
 */
int pythreads__read_active(const struct py_layout *l, const struct mem_reader *mr, uint64_t active,
			   struct py_thread_name *out, int max);

/* The pieces, for tests: value of the str key `name` in a dict, and an instance attribute. */
int pythreads__dict_get(const struct py_layout *l, const struct mem_reader *mr, uint64_t dict,
			const char *name, uint64_t *value);
int pythreads__attr(const struct py_layout *l, const struct mem_reader *mr, uint64_t obj,
		    const char *name, uint64_t *value);
/*
 * The code object of module.cls.method (a plain function in the class's own dict), in the
 * interpreter whose _PyRuntime is at runtime: 0, -ENOENT (not imported, no such attribute),
 * -EAGAIN (no interpreter yet) or the reader's error.
 */
int pythreads__method_code(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			   const char *module, const char *cls, const char *method, uint64_t *code);
/*
 * The C function behind module.cls.method, a method of an extension type (a method_descriptor
 * in the type's own dict) taking one argument (METH_O): its address in the process, to probe.
 * 0, -ENOENT (not imported, no such method), -EINVAL (not such a method), -EAGAIN or the
 * reader's error.
 */
int pythreads__method_cfunc(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			    const char *module, const char *cls, const char *method, uint64_t *addr);

/* An int object's value (|value| < 2^63): 0 or -errno. */
int pythreads__read_long(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr, int64_t *v);

#endif
