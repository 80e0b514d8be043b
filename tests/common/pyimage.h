/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A fake address space holding CPython objects, built object by object with a version's layout
 * (py_layout__builtin): compact strs (ASCII, UCS-2, UCS-4), ints, dicts (combined and split,
 * each version's keys table), instances whose attributes live where that version keeps them,
 * and a world of _PyRuntime -> interpreter -> sys.modules -> threading -> _active {ident:
 * Thread}. Read through a struct mem_reader as the tool reads a process. Shared by the unit
 * test of pythreads (tests/unit/test_pythreads.c) and the fuzzer of the readers of process
 * memory (tests/fuzz/fuzz_pymem.c), which corrupts such a world. An includer may define
 * PYIMAGE_CHECK(cond) (cmocka's assert_true); by default a broken build of the image aborts.
 */
#ifndef PYTRACE_TESTS_PYIMAGE_H
#define PYTRACE_TESTS_PYIMAGE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memread.h"
#include "pylayout.h"
#include "pythreads.h"

#ifndef PYIMAGE_CHECK
#define PYIMAGE_CHECK(cond) do { if (!(cond)) abort(); } while (0)
#endif

#define BASE 0x100000ULL
#define ARENA (1 << 20)

struct image {
	const struct py_layout *l;
	uint8_t *mem;
	uint64_t top;		/* next free address */
	unsigned long reads;
	size_t size;		/* of mem, 0: ARENA */
};

static inline int img_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct image *im = ctx;

	im->reads++;
	if (addr < BASE || addr + len > im->top || addr + len < addr)
		return -EFAULT;
	memcpy(buf, im->mem + (addr - BASE), len);
	return 0;
}

static inline uint64_t alloc(struct image *im, size_t len)
{
	uint64_t a = im->top;

	im->top += (len + 15) & ~(size_t)15;
	PYIMAGE_CHECK(im->top - BASE <= (im->size ? im->size : ARENA));
	return a;
}

static inline void put(struct image *im, uint64_t addr, const void *v, size_t len)
{
	memcpy(im->mem + (addr - BASE), v, len);
}

static inline void put64(struct image *im, uint64_t addr, uint64_t v)
{
	put(im, addr, &v, 8);
}

static inline void put8(struct image *im, uint64_t addr, uint8_t v)
{
	put(im, addr, &v, 1);
}

static inline uint64_t get64(struct image *im, uint64_t addr)
{
	uint64_t v;

	memcpy(&v, im->mem + (addr - BASE), 8);
	return v;
}

/* A compact str of code points cp[0..n): ASCII, or kind 1/2/4 data after the compact header. */
static inline uint64_t mk_str_cp(struct image *im, const uint32_t *cp, size_t n)
{
	const struct py_layout *l = im->l;
	uint32_t max = 0, state;
	unsigned kind;
	bool ascii;
	uint64_t a, data;

	for (size_t i = 0; i < n; i++)
		max = cp[i] > max ? cp[i] : max;
	ascii = max < 0x80;
	kind = max < 0x100 ? 1 : max < 0x10000 ? 2 : 4;
	a = alloc(im, l->str_compact_data + (n + 1) * kind);
	state = kind << 2 | 1 << 5 | (ascii ? 1 << 6 : 0);
	put(im, a + l->str_state, &state, 4);
	put64(im, a + 16, n);
	data = a + (ascii ? l->str_ascii_data : l->str_compact_data);
	for (size_t i = 0; i < n; i++)
		put(im, data + i * kind, &cp[i], kind);	/* little-endian: the low bytes */
	return a;
}

static inline uint64_t mk_str(struct image *im, const char *s)
{
	uint32_t cp[256];
	size_t n = 0;

	/* UTF-8 to code points (the test's own strings are valid) */
	for (const unsigned char *p = (const unsigned char *)s; *p && n < 256; n++) {
		if (*p < 0x80) {
			cp[n] = *p++;
		} else if (*p < 0xe0) {
			cp[n] = (p[0] & 0x1f) << 6 | (p[1] & 0x3f);
			p += 2;
		} else if (*p < 0xf0) {
			cp[n] = (p[0] & 0x0f) << 12 | (p[1] & 0x3f) << 6 | (p[2] & 0x3f);
			p += 3;
		} else {
			cp[n] = (p[0] & 0x07) << 18 | (p[1] & 0x3f) << 12 | (p[2] & 0x3f) << 6 | (p[3] & 0x3f);
			p += 4;
		}
	}
	return mk_str_cp(im, cp, n);
}

static inline uint64_t mk_long(struct image *im, int64_t v)
{
	const struct py_layout *l = im->l;
	uint64_t a = alloc(im, l->long_digits + 12), u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	uint32_t d[3];
	unsigned n = 0;

	while (u) {
		d[n++] = u & ((1u << 30) - 1);
		u >>= 30;
	}
	if (l->long_tag)
		put64(im, a + l->long_size, (uint64_t)n << 3 | (v < 0 ? 2 : v == 0 ? 1 : 0));
	else
		put64(im, a + l->long_size, v < 0 ? -(int64_t)n : (int64_t)n);
	put(im, a + l->long_digits, d, n * 4);
	return a;
}

/*
 * A keys table of n entries (keys[i] 0: a deleted entry). vals NULL: a split table (values
 * elsewhere). kind for 3.11+: 0 general, 1 unicode, 2 split. log2_size 3..: slots.
 */
static inline uint64_t mk_keys(struct image *im, const uint64_t *keys, const uint64_t *vals, size_t n, int kind,
			unsigned log2_size)
{
	const struct py_layout *l = im->l;
	uint64_t size = 1ULL << log2_size, ixw, a, entries;
	unsigned esize = 24, koff = 8;

	if (l->dk_log2) {
		unsigned log2_ix = log2_size + (log2_size < 8 ? 0 : log2_size < 16 ? 1 : 2);

		ixw = (1ULL << log2_ix) / size;
		if (kind != 0) {
			esize = 16;
			koff = 0;
		}
		a = alloc(im, l->dk_indices + size * ixw + n * esize);
		put8(im, a + l->dk_size, log2_size);
		put8(im, a + l->dk_size + 1, log2_ix);
		put8(im, a + l->dk_size + 2, kind);
	} else {
		ixw = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
		a = alloc(im, l->dk_indices + size * ixw + n * esize);
		put64(im, a + l->dk_size, size);
	}
	put64(im, a + l->dk_nentries, n);
	memset(im->mem + (a + l->dk_indices - BASE), 0xff, size * ixw);	/* DKIX_EMPTY: unused here */
	entries = a + l->dk_indices + size * ixw;
	for (size_t i = 0; i < n; i++) {
		put64(im, entries + i * esize + koff, keys[i]);
		put64(im, entries + i * esize + koff + 8, vals ? vals[i] : 0);
	}
	return a;
}

static inline uint64_t mk_values(struct image *im, const uint64_t *vals, size_t n)
{
	uint64_t a = alloc(im, im->l->dv_values + n * 8);

	if (im->l->dv_values)
		put8(im, a + 3, 1);	/* valid */
	put(im, a + im->l->dv_values, vals, n * 8);
	return a;
}

static inline uint64_t mk_dict(struct image *im, uint64_t keys, uint64_t values)
{
	uint64_t a = alloc(im, 48);

	put64(im, a + im->l->dict_keys, keys);
	put64(im, a + im->l->dict_values, values);
	return a;
}

/* A combined dict of str keys. */
static inline uint64_t mk_str_dict(struct image *im, const char *const *names, const uint64_t *vals, size_t n)
{
	uint64_t keys[512];
	unsigned log2 = 3;

	PYIMAGE_CHECK(n <= 512);
	while ((2ULL << log2) / 3 < n)	/* a table is at most 2/3 full */
		log2++;
	for (size_t i = 0; i < n; i++)
		keys[i] = names[i] ? mk_str(im, names[i]) : 0;
	return mk_dict(im, mk_keys(im, keys, vals, n, 1, log2), 0);
}

enum attr_home { HOME_NATURAL, HOME_DICT };

/*
 * A Thread-like instance with attributes _name, _native_id (and two others around them), where
 * this version keeps them; HOME_DICT: in a dict (3.11+: one made after the values).
 */
static inline uint64_t mk_thread(struct image *im, uint64_t type, const char *name, int64_t tid, enum attr_home home)
{
	const struct py_layout *l = im->l;
	uint64_t vals[4] = { mk_long(im, 0), mk_str(im, name), mk_long(im, tid), mk_long(im, 7) };
	uint64_t cached = get64(im, type + l->ht_cached_keys), obj, pre = 32, basic = 32;
	uint64_t values = mk_values(im, vals, 4), dict = mk_dict(im, cached, values);

	if (l->objdict == PYL_DICT_INLINE)
		basic = 16;
	obj = alloc(im, pre + basic + 8 + 4 * 8) + pre;
	put64(im, obj + 8, type);
	switch (l->objdict) {
	case PYL_DICT_OFFSET:
		put64(im, obj + 16, dict);
		break;
	case PYL_DICT_MANAGED_311:
		if (home == HOME_DICT)
			put64(im, obj - 24, dict);
		else
			put64(im, obj - 32, values);
		break;
	case PYL_DICT_MANAGED_312:
		put64(im, obj - 24, home == HOME_DICT ? dict : values - 1);
		break;
	case PYL_DICT_INLINE:
		put8(im, obj + basic + 3, 1);
		put(im, obj + basic + l->dv_values, vals, sizeof(vals));
		if (home == HOME_DICT)
			put64(im, obj - 24, mk_dict(im, cached, obj + basic));
		break;
	}
	return obj;
}

static inline uint64_t mk_thread_type(struct image *im)
{
	const struct py_layout *l = im->l;
	uint64_t keys[4] = { mk_str(im, "_target"), mk_str(im, "_name"), mk_str(im, "_native_id"),
			     mk_str(im, "_ident") };
	uint64_t type = alloc(im, 1024), cached = mk_keys(im, keys, NULL, 4, 2, 3);
	uint64_t flags = l->objdict == PYL_DICT_OFFSET ? 0 : l->objdict == PYL_DICT_INLINE ? 1 << 4 | 1 << 2 : 1 << 4;

	put64(im, type + l->tp_basicsize, l->objdict == PYL_DICT_INLINE ? 16 : 32);
	put64(im, type + l->tp_flags, flags);
	put64(im, type + l->tp_dictoffset, l->objdict == PYL_DICT_OFFSET ? 16 : 0);
	put64(im, type + l->ht_cached_keys, cached);
	return type;
}

struct world {
	struct image im;
	struct mem_reader mr;
	uint64_t runtime, active, modules;
};

/* _PyRuntime -> interpreter -> sys.modules {..., threading, ...} -> _active {ident: Thread}. */
static inline void mk_world(struct world *w, unsigned minor, enum attr_home home, size_t nmodules)
{
	static const char *const tnames[] = { "MainThread", "Worker-0", "Wörker-€", "𝄞-thread" };
	const struct py_layout *l = py_layout__builtin(3, minor);
	const char *mnames[512];
	uint64_t mvals[512], tkeys[5], tvals[5], interp, mod, type;
	char (*buf)[16] = calloc(512, 16);

	PYIMAGE_CHECK(l != NULL);
	memset(w, 0, sizeof(*w));
	w->im.l = l;
	w->im.mem = calloc(1, ARENA);
	w->im.top = BASE + 64;
	w->mr = (struct mem_reader){ .read = img_read, .ctx = &w->im };
	type = mk_thread_type(&w->im);
	for (int i = 0; i < 4; i++) {
		tkeys[i] = mk_long(&w->im, 0x7f0000001000LL + i * 0x1000);
		tvals[i] = mk_thread(&w->im, type, tnames[i], 1000 + i, home);
	}
	/* a thread gone: its entry deleted (key and value cleared) */
	tkeys[4] = 0;
	tvals[4] = 0;
	w->active = mk_dict(&w->im, mk_keys(&w->im, tkeys, tvals, 5, 0, 3), 0);
	{
		const char *names[] = { "_limbo", NULL, "_active", "_main_thread" };
		uint64_t vals[] = { mk_dict(&w->im, mk_keys(&w->im, NULL, NULL, 0, 1, 3), 0), 0, w->active, tvals[0] };

		mod = alloc(&w->im, 64);
		put64(&w->im, mod + l->mod_dict, mk_str_dict(&w->im, names, vals, 4));
	}
	for (size_t i = 0; i < nmodules; i++) {
		snprintf(buf[i], 16, "mod%zu", i);
		mnames[i] = buf[i];
		mvals[i] = alloc(&w->im, 32);
	}
	mnames[nmodules / 2] = "threading";
	mvals[nmodules / 2] = mod;
	w->modules = mk_str_dict(&w->im, mnames, mvals, nmodules);
	interp = alloc(&w->im, l->is_modules + 8);
	put64(&w->im, interp + l->is_modules, w->modules);
	w->runtime = alloc(&w->im, l->rt_interp_head + 8);
	put64(&w->im, w->runtime + l->rt_interp_head, interp);
	free(buf);
}

static inline void free_world(struct world *w)
{
	free(w->im.mem);
}

static inline uint64_t mk_tuple(struct image *im, const uint64_t *items, size_t n)
{
	uint64_t a = alloc(im, im->l->tuple_items + 8 * n);

	put64(im, a + im->l->bytes_size, n);
	put(im, a + im->l->tuple_items, items, 8 * n);
	return a;
}

/* The hash that l's process gives the ASCII str s. */
static inline int64_t hash_of(const struct py_layout *l, const char *s)
{
	int64_t h = (int64_t)pythreads__siphash(l->hash_k0, l->hash_k1, s, strlen(s), l->hash_rounds);

	return h == -1 ? -2 : h;
}

/*
 * The indices of the keys table of dict as CPython fills them (insertdict: the first empty slot
 * along the key's probe sequence), the hashes cached in the key strs and, for a general table,
 * in the entries. names[i] NULL: a deleted entry whose slot is a dummy (dead_hash: its hash).
 */
static inline void index_dict(struct image *im, const struct py_layout *hl, uint64_t dict, const char *const *names,
		       size_t n, int64_t dead_hash)
{
	const struct py_layout *l = im->l;
	uint64_t keys = get64(im, dict + l->dict_keys), size, ixw, entries;
	unsigned esize = 24, koff = 8;

	if (l->dk_log2) {
		uint8_t log2_size = im->mem[keys + l->dk_size - BASE], log2_ix = im->mem[keys + l->dk_size + 1 - BASE];

		size = 1ULL << log2_size;
		ixw = (1ULL << log2_ix) / size;
		if (im->mem[keys + l->dk_size + 2 - BASE] != 0) {
			esize = 16;
			koff = 0;
		}
	} else {
		size = get64(im, keys + l->dk_size);
		ixw = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
	}
	entries = keys + l->dk_indices + size * ixw;
	for (size_t i = 0; i < n; i++) {
		int64_t h = names[i] ? hash_of(hl, names[i]) : dead_hash, ix = names[i] ? (int64_t)i : -2;
		uint64_t mask = size - 1, slot = (uint64_t)h & mask, perturb = (uint64_t)h;
		uint64_t key = get64(im, entries + i * esize + koff);

		for (;;) {
			int64_t cur = 0;

			memcpy(&cur, im->mem + (keys + l->dk_indices + slot * ixw - BASE), ixw);
			if (ixw < 8 && (cur >> (ixw * 8 - 1) & 1))
				cur |= (int64_t)(~0ULL << (ixw * 8));	/* sign-extend */
			if (cur == -1)
				break;
			perturb >>= 5;
			slot = (slot * 5 + perturb + 1) & mask;
		}
		put(im, keys + l->dk_indices + slot * ixw, &ix, ixw);
		if (koff == 8)
			put64(im, entries + i * esize, (uint64_t)h);
		if (key)
			put64(im, key + 24, (uint64_t)h);	/* PyASCIIObject.hash */
	}
}

/*
 * A type named name (tp_name) whose instances keep their attributes in a dict of their own at
 * offset 16 (tp_dictoffset, no managed dict): so on every version.
 */
static inline uint64_t mk_type(struct image *im, const char *name)
{
	const struct py_layout *l = im->l;
	uint64_t type = alloc(im, 1024), s = alloc(im, strlen(name) + 1);

	put(im, s, name, strlen(name) + 1);
	put64(im, type + 24, s);	/* tp_name */
	put64(im, type + l->tp_basicsize, 32);
	put64(im, type + l->tp_flags, 0);
	put64(im, type + l->tp_dictoffset, 16);
	return type;
}

/* An instance of type (mk_type) with attributes names[i] = vals[i]. */
static inline uint64_t mk_obj(struct image *im, uint64_t type, const char *const *names, const uint64_t *vals,
			      size_t n)
{
	uint64_t obj = alloc(im, 32);

	put64(im, obj + 8, type);
	put64(im, obj + 16, mk_str_dict(im, names, vals, n));
	return obj;
}

/* A list (list_type: mk_type(im, "list")) of n items. */
static inline uint64_t mk_list(struct image *im, uint64_t list_type, const uint64_t *items, size_t n)
{
	uint64_t obj = alloc(im, 40), v = alloc(im, 8 * n + 8);

	put64(im, obj + 8, list_type);
	put64(im, obj + 16, n);		/* ob_size */
	put64(im, obj + 24, v);		/* ob_item */
	if (n)
		put(im, v, items, 8 * n);
	return obj;
}

/* list (mk_list) holding n copies of item: a list that item refers to is made first, then filled. */
static inline void fill_list(struct image *im, uint64_t list, uint64_t item, size_t n)
{
	uint64_t v = get64(im, list + 24);	/* ob_item */

	PYIMAGE_CHECK(get64(im, list + 16) == n);
	for (size_t i = 0; i < n; i++)
		put64(im, v + 8 * i, item);
}

/* A compiled re.Pattern (re_t: mk_type(im, "re.Pattern")): _sre's PatternObject, its source at 48. */
static inline uint64_t mk_re_pattern(struct image *im, uint64_t re_t, const char *source)
{
	uint64_t pat = alloc(im, 64);

	put64(im, pat + 8, re_t);
	put64(im, pat + 48, mk_str(im, source));
	return pat;
}

/* A bytes object (bytes_t: mk_type(im, "bytes")) holding s. */
static inline uint64_t mk_bytes(struct image *im, uint64_t bytes_t, const char *s)
{
	const struct py_layout *l = im->l;
	uint64_t b = alloc(im, l->bytes_data + strlen(s) + 1);

	put64(im, b + 8, bytes_t);
	put64(im, b + l->bytes_size, strlen(s));
	put(im, b + l->bytes_data, s, strlen(s) + 1);
	return b;
}

/* A module object (module_type: mk_type(im, "module")) whose globals are names = vals. */
static inline uint64_t mk_module(struct image *im, uint64_t module_type, const char *const *names,
				 const uint64_t *vals, size_t n)
{
	uint64_t mod = alloc(im, im->l->mod_dict + 8);

	put64(im, mod + 8, module_type);
	put64(im, mod + im->l->mod_dict, mk_str_dict(im, names, vals, n));
	return mod;
}

/* _PyRuntime -> interpreter -> sys.modules, the dict modules (mk_str_dict); returns _PyRuntime. */
static inline uint64_t mk_runtime(struct image *im, uint64_t modules)
{
	const struct py_layout *l = im->l;
	uint64_t interp = alloc(im, l->is_modules + 8), runtime = alloc(im, l->rt_interp_head + 8);

	put64(im, interp + l->is_modules, modules);
	put64(im, runtime + l->rt_interp_head, interp);
	return runtime;
}

/*
 * Django's URL patterns (django/urls/resolvers.py), as src/djroutes.c reads them: path() is a
 * URLPattern whose pattern is a RoutePattern (its text in _route), include() a URLResolver
 * whose urlconf_name is the included list; django.conf.settings (LazySettings) wraps the
 * Settings whose ROOT_URLCONF names the module that holds urlpatterns.
 */
struct djimage {
	struct image *im;
	uint64_t list_t, module_t, route_t, pattern_t, resolver_t;
};

static inline void dj_types(struct djimage *d, struct image *im)
{
	d->im = im;
	d->list_t = mk_type(im, "list");
	d->module_t = mk_type(im, "module");
	d->route_t = mk_type(im, "RoutePattern");
	d->pattern_t = mk_type(im, "URLPattern");
	d->resolver_t = mk_type(im, "URLResolver");
}

static inline uint64_t dj_route(struct djimage *d, const char *text)
{
	static const char *const names[] = { "_route" };
	uint64_t v = mk_str(d->im, text);

	return mk_obj(d->im, d->route_t, names, &v, 1);
}

/* path(text, view) */
static inline uint64_t dj_path(struct djimage *d, const char *text)
{
	static const char *const names[] = { "pattern", "callback" };
	uint64_t v[2] = { dj_route(d, text), mk_long(d->im, 0) };

	return mk_obj(d->im, d->pattern_t, names, v, 2);
}

/* path(text, include(list)) */
static inline uint64_t dj_include(struct djimage *d, const char *text, uint64_t list)
{
	static const char *const names[] = { "pattern", "urlconf_name" };
	uint64_t v[2] = { dj_route(d, text), list };

	return mk_obj(d->im, d->resolver_t, names, v, 2);
}

/* sys.modules with django.conf and the urlconf "site.urls" whose urlpatterns is list: _PyRuntime */
static inline uint64_t dj_runtime(struct djimage *d, uint64_t list)
{
	struct image *im = d->im;
	static const char *const wn[] = { "ROOT_URLCONF" }, *const sn[] = { "_wrapped" }, *const cn[] = { "settings" },
				 *const un[] = { "urlpatterns" }, *const mn[] = { "django.conf", "site.urls" };
	uint64_t v = mk_str(im, "site.urls"), wrapped = mk_obj(im, mk_type(im, "Settings"), wn, &v, 1);
	uint64_t settings = mk_obj(im, mk_type(im, "LazySettings"), sn, &wrapped, 1);
	uint64_t mods[2] = { mk_module(im, d->module_t, cn, &settings, 1), mk_module(im, d->module_t, un, &list, 1) };

	return mk_runtime(im, mk_str_dict(im, mn, mods, 2));
}

/*
 * A code object named name whose variables are locals (<= 3.10: co_varnames), cells and free
 * variables, defining the functions whose code objects are in nested (co_consts, beside a non-code
 * constant).
 */
static inline uint64_t mk_code(struct image *im, uint64_t pycode_type, const char *name, const char *const *locals,
			size_t nl, const char *const *cells, size_t nc, const char *const *frees, size_t nf,
			const uint64_t *nested, size_t nn)
{
	const struct py_layout *l = im->l;
	uint64_t code = alloc(im, 256), consts[4] = { alloc(im, 32) }, names[8];
	size_t i, n = 0;

	put64(im, code + 8, pycode_type);
	put64(im, code + l->co_name, mk_str(im, name));
	for (i = 0; i < nn; i++)
		consts[1 + i] = nested[i];
	put64(im, code + l->co_consts, mk_tuple(im, consts, 1 + nn));
	if (l->co_nlocals != PYL_NONE) {
		int32_t nlocals = (int32_t)nl;

		for (i = 0; i < nl; i++)
			names[i] = mk_str(im, locals[i]);
		put(im, code + l->co_nlocals, &nlocals, 4);
		put64(im, code + l->co_varnames, mk_tuple(im, names, nl));
		for (i = 0; i < nc; i++)
			names[i] = mk_str(im, cells[i]);
		put64(im, code + l->co_cellvars, mk_tuple(im, names, nc));
		for (i = 0; i < nf; i++)
			names[i] = mk_str(im, frees[i]);
		put64(im, code + l->co_freevars, mk_tuple(im, names, nf));
	} else {
		/* 3.11+: one table, and a kind per variable (an argument that is a cell is both) */
		uint8_t kinds[8];
		uint64_t b;

		for (i = 0; i < nl; i++, n++) {
			names[n] = mk_str(im, locals[i]);
			kinds[n] = 0x20;
		}
		for (i = 0; i < nc; i++, n++) {
			names[n] = mk_str(im, cells[i]);
			kinds[n] = 0x40;
		}
		for (i = 0; i < nf; i++, n++) {
			names[n] = mk_str(im, frees[i]);
			kinds[n] = 0x80;
		}
		b = alloc(im, l->bytes_data + n + 1);
		put64(im, b + l->bytes_size, n);
		put(im, b + l->bytes_data, kinds, n);
		put64(im, code + l->co_varnames, mk_tuple(im, names, n));
		put64(im, code + l->co_varnames + 8, b);
	}
	return code;
}

#endif
