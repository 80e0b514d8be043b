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
/* The items of the list or tuple at seq, at most max, into items: how many, or -errno (-E2BIG: more). */
int pythreads__list_items(const struct py_layout *l, const struct mem_reader *mr, uint64_t seq, uint64_t *items,
			  int max);
/* Call fn(ctx, key, value, index) for each entry of the dict at dict, in order; fn > 0 stops. */
typedef int (*pythreads_entry_fn)(void *ctx, uint64_t key, uint64_t value, uint32_t ix);
int pythreads__dict_foreach(const struct py_layout *l, const struct mem_reader *mr, uint64_t dict,
			    pythreads_entry_fn fn, void *ctx);
/*
 * Where the str key name of the dict at dict (a combined table) is: the byte offset of its
 * entry's key from the dict's keys object (the value follows it), the key object and its
 * value. 0, -ENOENT, -ENOTSUP (a split table) or -EINVAL. A dict built with the same keys in
 * the same order and grown to the same size has it at the same place (struct pt_proc's
 * scope_route_off).
 */
int pythreads__dict_entry(const struct py_layout *l, const struct mem_reader *mr, uint64_t dict, const char *name,
			  uint32_t *off, uint64_t *key, uint64_t *value);
/*
 * The __dict__ of module name in sys.modules of the interpreter whose _PyRuntime is at runtime:
 * 0, -ENOENT (not imported), -EAGAIN (no interpreter yet), -ENOTSUP or the reader's error.
 */
int pythreads__module_dict(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			   const char *name, uint64_t *md);
/*
 * As pythreads__module_dict, looking only at the entries of sys.modules added since seen (zeroed
 * at first): where a look found it not imported, seen keeps how far it looked, and the next look
 * of the same keys table starts there (an import adds an entry at the end; a resize makes a new
 * table, looked at whole). -ENOENT: not imported.
 */
struct py_modules_stamp;
int pythreads__module_dict_since(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
				 const char *name, uint64_t *md, struct py_modules_stamp *seen);
/*
 * How the process hashes a str: the key of its _Py_HashSecret (at secret) and SipHash's rounds,
 * kept in l (the process's own copy) once the hashes that the first keys of sys.modules cache
 * all agree with one of SipHash-1-3 and SipHash-2-4. From then on every dict lookup of this file
 * goes by hash, as CPython's own, instead of reading the keys in order: a module among a Django
 * worker's thousand takes some four reads instead of a thousand. 0; -EAGAIN: too few modules
 * yet; -ENOTSUP: another hash (l says so: PYL_HASH_NONE), or no secret; else the reader's error.
 */
int pythreads__learn_hash(struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t secret);
/* SipHash-c-(c+2) of src with the key (k0, k1): c = 1 is CPython 3.11+'s str hash, c = 2 3.8-3.10's. */
uint64_t pythreads__siphash(uint64_t k0, uint64_t k1, const void *src, size_t len, unsigned c);
/*
 * The __dict__ of each module of names (at most PYTHREADS_MAX_MODULES) in mds, 0 for each not
 * imported, from one pass over sys.modules: how many were found, or -errno as above.
 */
#define PYTHREADS_MAX_MODULES 32
int pythreads__module_dicts(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			    const char *const *names, uint64_t *mds, unsigned n);
/*
 * What sys.modules' keys are now: their table and the entries it has used. An import adds an
 * entry; nothing takes one back (a removal leaves a dummy), and a table grown is a new one: the
 * same stamp later means that no module was imported in between. 0 or -errno.
 */
struct py_modules_stamp {
	uint64_t keys;
	int64_t nentries;
};
int pythreads__modules_stamp(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			     struct py_modules_stamp *st);
/*
 * Whether a module may have been imported since seen (a stamp, zeroed at first), which is then
 * made now's: true too when sys.modules cannot be read. Take it before a lookup, so that an
 * import during the lookup shows at the next.
 */
bool pythreads__modules_changed(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
				struct py_modules_stamp *seen);
/*
 * The value of the environment variable name in the process's os.environ (as the process has
 * it now, not as it started: /proc/PID/environ) into buf: 0, -ENOENT (not set, or os not
 * imported), -E2BIG (longer than size - 1) or -errno.
 */
int pythreads__environ(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, const char *name,
		       char *buf, size_t size);
/*
 * The code object of module.cls.method (a plain function in the class's own dict), in the
 * interpreter whose _PyRuntime is at runtime: 0, -ENOENT (not imported, no such attribute),
 * -EAGAIN (no interpreter yet) or the reader's error.
 */
int pythreads__method_code(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			   const char *module, const char *cls, const char *method, uint64_t *code);
/* The same in the module whose __dict__ is md (pythreads__module_dicts). */
int pythreads__method_code_in(const struct py_layout *l, const struct mem_reader *mr, uint64_t md, const char *cls,
			      const char *method, uint64_t *code);
/*
 * The C function behind module.cls.method, a method of an extension type (a method_descriptor
 * in the type's own dict) taking one argument (METH_O): its address in the process, to probe.
 * 0, -ENOENT (not imported, no such method), -EINVAL (not such a method), -EAGAIN or the
 * reader's error.
 */
int pythreads__method_cfunc(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			    const char *module, const char *cls, const char *method, uint64_t *addr);

/*
 * The code object of the function named name (its co_name) that code's body defines: a code
 * object among code's co_consts, whose type is pycode_type. 0, -ENOENT or -ENOTSUP.
 */
int pythreads__nested_code(const struct py_layout *l, const struct mem_reader *mr, uint64_t pycode_type,
			   uint64_t code, const char *name, uint64_t *out);
/*
 * Where a frame running code keeps the cell of its variable var (a local that a nested function
 * uses, or an enclosing function's that code uses): its index in f_localsplus / localsplus
 * (3.11+: co_localsplusnames' index, whose kind says cell or free; <= 3.10: after the co_nlocals
 * locals, the cell variables, then the free variables). -1: code has no such cell.
 */
int pythreads__cell_index(const struct py_layout *l, const struct mem_reader *mr, uint64_t code, const char *var);

/*
 * How to read an instance attribute of a class from BPF (struct pt_proc's attr_*): where the
 * instance's values array is (by mode), and the attribute's slot in it, the same for every
 * instance whose attributes share their class's keys.
 */
enum py_attr_mode {
	PY_ATTR_NONE,
	PY_ATTR_DICT,		/* <= 3.10: a split dict at obj + off, its ma_values (dict_values) */
	PY_ATTR_VALUES_311,	/* 3.11: the values pointer at obj - 32 */
	PY_ATTR_VALUES_312,	/* 3.12: at obj - 24, tagged (odd: values - 1) */
	PY_ATTR_INLINE,		/* 3.13+: inline at obj + off (tp_basicsize), when valid */
};

struct py_attr_recipe {
	enum py_attr_mode mode;
	uint32_t off, slot, dict_values;
};

/*
 * The recipe for attribute name of the instance obj (and of its class's others that share its
 * keys), checked against a read of it by key: 0, -ENOENT (no such attribute), -ENOTSUP (obj has
 * a dict of its own) or -EINVAL.
 */
int pythreads__attr_recipe(const struct py_layout *l, const struct mem_reader *mr, uint64_t obj, const char *name,
			   struct py_attr_recipe *out);

/*
 * The same from the class alone (type: a heap type whose instances share its keys, its
 * ht_cached_keys), for when no instance is in reach: 0, -ENOENT (no such attribute set on an
 * instance yet), -ENOTSUP (its instances keep no shared values) or -errno. Not checked against
 * an instance: a walker reading by it checks what it finds.
 */
int pythreads__type_attr_recipe(const struct py_layout *l, const struct mem_reader *mr, uint64_t type,
				const char *name, struct py_attr_recipe *out);

/* The name of obj's type (its tp_name, cut to size - 1 bytes) into name: 0 or -errno. */
int pythreads__type_name(const struct mem_reader *mr, uint64_t obj, char *name, size_t size);

/*
 * Where instances of the class type keep its __slots__ member name: the offset of its
 * member_descriptor (in the class's own dict) for an object member. 0 or -errno (-ENOENT: no
 * such attribute in the class's dict; -EINVAL: not an object member).
 */
int pythreads__member_offset(const struct py_layout *l, const struct mem_reader *mr, uint64_t type, const char *name,
			     uint32_t *off);

/* An int object's value (|value| < 2^63): 0 or -errno. */
int pythreads__read_long(const struct py_layout *l, const struct mem_reader *mr, uint64_t addr, int64_t *v);

#endif
