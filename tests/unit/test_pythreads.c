// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pythreads: threading._active and each Thread's name and native id, read from a fake memory
 * image built object by object with each version's layout (py_layout__builtin): sys.modules,
 * the threading module and its dict, _active with int keys, Thread instances whose attributes
 * live where that version keeps them (a dict at tp_dictoffset, 3.11's and 3.12's managed values,
 * 3.13+'s inline values, or a dict made later), compact ASCII, UCS-2 and UCS-4 names, big dicts
 * with wider indices, deleted entries, and images that are wrong in a way a torn read could be.
 * The image and its builders are tests/common/pyimage.h (fuzz_pymem corrupts the same world).
 * The real interpreters are read the same way by tests/offsets/live_walk.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pylayout.h"
#include "pythreads.h"

#define PYIMAGE_CHECK(cond) assert_true(cond)
#include "../common/pyimage.h"

static void expect_threads(struct world *w)
{
	struct py_thread_name t[8];
	uint64_t active = 0;
	int n;

	assert_int_equal(pythreads__find_active(w->im.l, &w->mr, w->runtime, &active), 0);
	assert_int_equal(active, w->active);
	n = pythreads__read_active(w->im.l, &w->mr, active, t, 8);
	assert_int_equal(n, 4);
	assert_int_equal(t[0].tid, 1000);
	assert_string_equal(t[0].name, "MainThread");
	assert_int_equal(t[1].tid, 1001);
	assert_string_equal(t[1].name, "Worker-0");
	assert_string_equal(t[2].name, "Wörker-€");	/* UCS-2 */
	assert_string_equal(t[3].name, "𝄞-thread");	/* UCS-4 */
	/* bounded by max */
	assert_int_equal(pythreads__read_active(w->im.l, &w->mr, active, t, 2), 2);
}

static void test_every_version(void **state)
{
	for (unsigned minor = 8; minor <= 15; minor++) {
		struct world w;

		mk_world(&w, minor, HOME_NATURAL, 5);
		expect_threads(&w);
		free_world(&w);
		/* 3.11+: the attributes moved to a dict (vars(), a setattr of a new name) */
		mk_world(&w, minor, HOME_DICT, 5);
		expect_threads(&w);
		free_world(&w);
	}
}

/* sys.modules of 300 modules: 2-byte indices (3.8-3.10), log2 index bytes > log2 size (3.11+). */
static void test_big_dict(void **state)
{
	for (unsigned minor = 8; minor <= 15; minor += 3) {
		struct world w;

		mk_world(&w, minor, HOME_NATURAL, 300);
		expect_threads(&w);
		free_world(&w);
	}
}

/*
 * An entry's place in a dict (an ASGI scope's "route", struct pt_proc's scope_route_off): read at
 * the offset given, as the walker reads it, the key and the value, on every version, in a small
 * and in a large dict (2-byte indices), after a deleted entry.
 */
static void test_dict_entry(void **state)
{
	for (unsigned minor = 8; minor <= 15; minor++) {
		for (size_t n = 20; n <= 300; n += 280) {
			struct world w;
			const char *names[300];
			uint64_t vals[300], key, value, keys;
			char (*buf)[16] = calloc(300, 16);
			uint32_t off;

			mk_world(&w, minor, HOME_NATURAL, 5);
			for (size_t i = 0; i < n; i++) {
				snprintf(buf[i], 16, "k%zu", i);
				names[i] = buf[i];
				vals[i] = alloc(&w.im, 32);
			}
			names[3] = NULL;	/* deleted */
			names[n - 2] = "route";
			{
				uint64_t d = mk_str_dict(&w.im, names, vals, n);

				assert_int_equal(pythreads__dict_entry(w.im.l, &w.mr, d, "route", &off, &key, &value), 0);
				keys = get64(&w.im, d + w.im.l->dict_keys);
				assert_int_equal(get64(&w.im, keys + off), key);
				assert_int_equal(get64(&w.im, keys + off + 8), vals[n - 2]);
				assert_int_equal(value, vals[n - 2]);
				assert_int_equal(pythreads__dict_entry(w.im.l, &w.mr, d, "nope", &off, &key, &value), -ENOENT);
			}
			free(buf);
			free_world(&w);
		}
	}
}

/*
 * A class's function's code, as the tool finds a thread pool's frame (procs_frames.c): sys.modules ->
 * "asgiref.sync" -> its dict -> SyncToAsync -> tp_dict -> thread_handler -> func_code.
 */
static void test_method_code(void **state)
{
	/* and a module name longer than 32 characters (uvicorn's protocols' are) */
	for (unsigned k = 0; k < 16; k++) {
		unsigned minor = 8 + k % 8;
		const char *mod = k < 8 ? "asgiref.sync" : "uvicorn.protocols.http.httptools_impl";
		const char *mnames[] = { "threading", mod, "os" };
		const char *cnames[] = { "AsyncToSync", "SyncToAsync" };
		const char *fnames[] = { "__init__", "thread_handler", "__call__" };
		uint64_t mvals[3], cvals[2], fvals[3], interp, code = 0, got = 0;
		const struct py_layout *l;
		struct world w;

		mk_world(&w, minor, HOME_NATURAL, 5);
		l = w.im.l;
		code = alloc(&w.im, 64);
		for (int i = 0; i < 3; i++) {
			fvals[i] = alloc(&w.im, l->func_code + 8);
			put64(&w.im, fvals[i] + l->func_code, i == 1 ? code : alloc(&w.im, 64));
		}
		for (int i = 0; i < 2; i++) {
			cvals[i] = alloc(&w.im, l->tp_dict + 8);
			put64(&w.im, cvals[i] + l->tp_dict, i == 1 ? mk_str_dict(&w.im, fnames, fvals, 3) : 0);
		}
		for (int i = 0; i < 3; i++)
			mvals[i] = alloc(&w.im, 64);
		put64(&w.im, mvals[1] + l->mod_dict, mk_str_dict(&w.im, cnames, cvals, 2));
		interp = get64(&w.im, w.runtime + l->rt_interp_head);
		put64(&w.im, interp + l->is_modules, mk_str_dict(&w.im, mnames, mvals, 3));

		assert_int_equal(pythreads__method_code(l, &w.mr, w.runtime, mod, "SyncToAsync",
							"thread_handler", &got), 0);
		assert_int_equal(got, code);
		/* not imported, no such class, no such method, a class with no dict of its own */
		assert_int_equal(pythreads__method_code(l, &w.mr, w.runtime, "anyio._backends._asyncio",
							"WorkerThread", "run", &got), -ENOENT);
		assert_int_equal(pythreads__method_code(l, &w.mr, w.runtime, mod, "Local",
							"thread_handler", &got), -ENOENT);
		assert_int_equal(pythreads__method_code(l, &w.mr, w.runtime, mod, "SyncToAsync",
							"main_wrap", &got), -ENOENT);
		assert_int_equal(pythreads__method_code(l, &w.mr, w.runtime, mod, "AsyncToSync",
							"thread_handler", &got), -ENOENT);
		free_world(&w);
	}
}

/* 40 modules "mod0".."mod39" (names in nbuf, pointed at by mnames), module i's __dict__ 0x5000 + i */
static void mk_modules(struct world *w, char nbuf[40][16], const char **mnames, uint64_t *mvals)
{
	for (int i = 0; i < 40; i++) {
		snprintf(nbuf[i], sizeof(nbuf[i]), "mod%d", i);
		mnames[i] = nbuf[i];
		mvals[i] = alloc(&w->im, 64);
		put64(&w->im, mvals[i] + w->im.l->mod_dict, 0x5000 + i);
	}
}

/*
 * Several modules from one pass over sys.modules (procs_frames.c's procs_find_frames): each key read once
 * for all the names, not once per name; a key str that ends the memory (a read of the longest
 * name's length would run past it) still found; the stamp unchanged until a module is added.
 */
static void test_module_dicts(void **state)
{
	for (unsigned minor = 8; minor <= 15; minor++) {
		const char *mnames[40];
		char nbuf[40][16];
		uint64_t mvals[40], mds[3], interp, modules, keys, k, v, last;
		const char *want[] = { "uvicorn.protocols.http.httptools_impl", "os", "asgiref.sync" };
		struct py_modules_stamp st1, st2, seen;
		const struct py_layout *l;
		unsigned long reads;
		struct world w;
		uint32_t off;

		mk_world(&w, minor, HOME_NATURAL, 5);
		l = w.im.l;
		mk_modules(&w, nbuf, mnames, mvals);
		mnames[7] = "asgiref.sync";
		mnames[39] = "os";
		modules = mk_str_dict(&w.im, mnames, mvals, 40);
		interp = get64(&w.im, w.runtime + l->rt_interp_head);
		put64(&w.im, interp + l->is_modules, modules);
		/* "os" as the last object of the image */
		assert_int_equal(pythreads__dict_entry(l, &w.mr, modules, "os", &off, &k, &v), 0);
		keys = get64(&w.im, modules + l->dict_keys);
		last = mk_str(&w.im, "os");
		put64(&w.im, keys + off, last);
		w.im.top = last + l->str_ascii_data + 3;

		w.im.reads = 0;
		assert_int_equal(pythreads__module_dicts(l, &w.mr, w.runtime, want, mds, 3), 2);
		reads = w.im.reads;
		assert_int_equal(mds[0], 0);
		assert_int_equal(mds[1], 0x5000 + 39);
		assert_int_equal(mds[2], 0x5000 + 7);
		/* 40 keys, about one read each (and a retry for the last), not one per key and name */
		assert_true(reads < 40 + 12);
		assert_int_equal(pythreads__module_dicts(l, &w.mr, w.runtime, want, mds, 1), 0);

		memset(&seen, 0, sizeof(seen));
		assert_true(pythreads__modules_changed(l, &w.mr, w.runtime, &seen));
		assert_false(pythreads__modules_changed(l, &w.mr, w.runtime, &seen));
		assert_int_equal(pythreads__modules_stamp(l, &w.mr, w.runtime, &st1), 0);
		assert_int_equal(pythreads__modules_stamp(l, &w.mr, w.runtime, &st2), 0);
		assert_int_equal(st1.keys, st2.keys);
		assert_int_equal(st1.nentries, 40);
		assert_int_equal(st2.nentries, 40);
		/* an import: another entry (here a table of its own, as one grown) */
		w.im.top = last + 64;
		mnames[38] = "uvicorn.protocols.http.httptools_impl";
		put64(&w.im, interp + l->is_modules, mk_str_dict(&w.im, mnames, mvals, 40));
		assert_int_equal(pythreads__modules_stamp(l, &w.mr, w.runtime, &st2), 0);
		assert_true(st2.keys != st1.keys);
		assert_true(pythreads__modules_changed(l, &w.mr, w.runtime, &seen));
		assert_false(pythreads__modules_changed(l, &w.mr, w.runtime, &seen));
		assert_int_equal(pythreads__module_dicts(l, &w.mr, w.runtime, want, mds, 3), 3);
		assert_int_equal(mds[0], 0x5000 + 38);
		free_world(&w);
	}
}

/*
 * One module looked for again and again (uvwrite.c's uvloop.loop in a worker that imports its app):
 * each look reads only the entries sys.modules gained since the last, until the keys table is a
 * new one (a resize), which is read whole; found, the next look starts over.
 */
static void test_module_dict_since(void **state)
{
	for (unsigned minor = 8; minor <= 15; minor++) {
		const char *mnames[40];
		char nbuf[40][16];
		uint64_t mvals[40], interp, modules, keys, md;
		struct py_modules_stamp seen = { 0 };
		const struct py_layout *l;
		struct world w;

		mk_world(&w, minor, HOME_NATURAL, 5);
		l = w.im.l;
		mk_modules(&w, nbuf, mnames, mvals);
		mnames[39] = "uvloop.loop";
		modules = mk_str_dict(&w.im, mnames, mvals, 40);
		interp = get64(&w.im, w.runtime + l->rt_interp_head);
		put64(&w.im, interp + l->is_modules, modules);
		keys = get64(&w.im, modules + l->dict_keys);
		/* the last entry not added yet */
		put64(&w.im, keys + l->dk_nentries, 39);

		w.im.reads = 0;
		assert_int_equal(pythreads__module_dict_since(l, &w.mr, w.runtime, "uvloop.loop", &md, &seen), -ENOENT);
		assert_true(w.im.reads >= 39);
		assert_int_equal(seen.keys, keys);
		assert_int_equal(seen.nentries, 39);
		/* nothing imported since: no key read */
		w.im.reads = 0;
		assert_int_equal(pythreads__module_dict_since(l, &w.mr, w.runtime, "uvloop.loop", &md, &seen), -ENOENT);
		assert_true(w.im.reads < 8);
		/* imported: only the new entry read */
		put64(&w.im, keys + l->dk_nentries, 40);
		w.im.reads = 0;
		assert_int_equal(pythreads__module_dict_since(l, &w.mr, w.runtime, "uvloop.loop", &md, &seen), 0);
		assert_int_equal(md, 0x5000 + 39);
		assert_true(w.im.reads < 12);
		assert_int_equal(seen.keys, 0);
		/* a new table (resized): read whole, and what is in it found */
		mnames[39] = "mod39";
		mnames[5] = "uvloop.loop";
		put64(&w.im, interp + l->is_modules, mk_str_dict(&w.im, mnames, mvals, 40));
		seen = (struct py_modules_stamp){ .keys = keys, .nentries = 40 };
		assert_int_equal(pythreads__module_dict_since(l, &w.mr, w.runtime, "uvloop.loop", &md, &seen), 0);
		assert_int_equal(md, 0x5000 + 5);
		free_world(&w);
	}
}

/*
 * SipHash as CPython hashes a str: the reference vector of SipHash-2-4 (Aumasson and Bernstein's
 * paper, appendix A: key 00..0f, message 00..0e), and hash() of three strs with a zero key as
 * CPython computes them (PYTHONHASHSEED=0 python3.X -c 'print(hash("sys"), ...)': 3.8-3.10
 * SipHash-2-4, 3.11-3.13 SipHash-1-3).
 */
static void test_siphash(void **state)
{
	uint8_t key[16], msg[15];
	uint64_t k0, k1;
	static const struct { const char *s; int64_t h24, h13; } py[] = {
		{ "sys", -3121373486788347125LL, 8591962067542672579LL },
		{ "django.core.handlers.base", 8650620983868925543LL, -471930051462780555LL },
		{ "aaaaaaaaaaaaaaaaa", 1396813697137354710LL, -528609469319981417LL },
	};

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	memcpy(&k0, key, 8);
	memcpy(&k1, key + 8, 8);
	assert_int_equal(pythreads__siphash(k0, k1, msg, 15, 2), 0xa129ca6149be45e5ULL);
	for (size_t i = 0; i < sizeof(py) / sizeof(py[0]); i++) {
		assert_int_equal((int64_t)pythreads__siphash(0, 0, py[i].s, strlen(py[i].s), 2), py[i].h24);
		assert_int_equal((int64_t)pythreads__siphash(0, 0, py[i].s, strlen(py[i].s), 1), py[i].h13);
	}
}

/*
 * Dicts looked up by hash once the process's hash is learnt (pythreads__learn_hash): the same
 * answers as reading the keys in order, for a few reads where that read every key; a secret that
 * does not give the strs' cached hashes leaves the keys read in order.
 */
static void test_hashed_lookup(void **state)
{
	for (unsigned minor = 8; minor <= 15; minor++) {
		const char *mnames[40];
		char nbuf[40][16];
		uint64_t mvals[40], mds[3], interp, modules, secret, md, v;
		const char *want[] = { "uvicorn.protocols.http.httptools_impl", "os", "asgiref.sync" };
		struct py_modules_stamp seen = { 0 };
		struct py_layout hl, learnt;
		struct world w;

		mk_world(&w, minor, HOME_NATURAL, 5);
		hl = *w.im.l;
		hl.hash_k0 = 0x0706050403020100ULL;
		hl.hash_k1 = 0x0f0e0d0c0b0a0908ULL;
		hl.hash_rounds = minor >= 11 ? 1 : 2;
		mk_modules(&w, nbuf, mnames, mvals);
		mnames[7] = "asgiref.sync";
		mnames[39] = "os";
		mnames[20] = NULL;	/* a module removed from sys.modules */
		modules = mk_str_dict(&w.im, mnames, mvals, 40);
		index_dict(&w.im, &hl, modules, mnames, 40, hash_of(&hl, "gone"));
		interp = get64(&w.im, w.runtime + w.im.l->rt_interp_head);
		put64(&w.im, interp + w.im.l->is_modules, modules);
		secret = alloc(&w.im, 16);
		put64(&w.im, secret, hl.hash_k0);
		put64(&w.im, secret + 8, hl.hash_k1);

		/* learnt from the hashes the keys cache */
		learnt = *w.im.l;
		assert_int_equal(pythreads__learn_hash(&learnt, &w.mr, w.runtime, secret), 0);
		assert_int_equal(learnt.hash_rounds, hl.hash_rounds);
		assert_int_equal(learnt.hash_k0, hl.hash_k0);
		assert_int_equal(learnt.hash_k1, hl.hash_k1);

		w.im.reads = 0;
		assert_int_equal(pythreads__module_dicts(&learnt, &w.mr, w.runtime, want, mds, 3), 2);
		assert_int_equal(mds[0], 0);
		assert_int_equal(mds[1], 0x5000 + 39);
		assert_int_equal(mds[2], 0x5000 + 7);
		/* sys.modules and its keys' header, then each name: a slot or two, its entry, its key
		 * and the module's dict (22-23 reads here), where reading in order takes 40 keys */
		assert_true(w.im.reads < 30);
		for (int i = 0; i < 40; i++) {
			if (!mnames[i])
				continue;
			assert_int_equal(pythreads__dict_get(&learnt, &w.mr, modules, mnames[i], &v), 0);
			assert_int_equal(v, mvals[i]);
		}
		w.im.reads = 0;
		assert_int_equal(pythreads__dict_get(&learnt, &w.mr, modules, "mod20", &v), -ENOENT);
		assert_int_equal(pythreads__dict_get(&learnt, &w.mr, modules, "gone", &v), -ENOENT);
		assert_int_equal(pythreads__module_dict_since(&learnt, &w.mr, w.runtime, "uvloop.loop", &md, &seen), -ENOENT);
		assert_true(w.im.reads < 40);
		assert_int_equal(pythreads__module_dict_since(&learnt, &w.mr, w.runtime, "asgiref.sync", &md, &seen), 0);
		assert_int_equal(md, 0x5000 + 7);
		/* a split table (an instance's dict): values by the entry's index */
		{
			const char *an[] = { "_name", "_ident", "_daemonic" };
			uint64_t ak[3], av[3] = { 0x111, 0, 0x333 }, d;

			for (int i = 0; i < 3; i++)
				ak[i] = mk_str(&w.im, an[i]);
			d = mk_dict(&w.im, mk_keys(&w.im, ak, NULL, 3, 2, 3), mk_values(&w.im, av, 3));
			index_dict(&w.im, &hl, d, an, 3, 0);
			assert_int_equal(pythreads__dict_get(&learnt, &w.mr, d, "_daemonic", &v), 0);
			assert_int_equal(v, 0x333);
			assert_int_equal(pythreads__dict_get(&learnt, &w.mr, d, "_ident", &v), -ENOENT);
		}

		/*
		 * a module name longer than the lookups' keys (KEY_MAX, 64) among the first: passed
		 * over, the hash learnt from the others (it was once hashed by its own length from a
		 * 192-byte stack buffer: tests/fuzz/regressions/pymem/learn-hash-key-longer-than-its-buffer)
		 */
		{
			static const char long_name[] = "a.module.whose.name.is.longer.than.any.key.the.lookups."
							"read.and.longer.still.than.the.buffer.of.the.learner";
			const char *saved = mnames[1];
			uint64_t longmods;

			mnames[1] = long_name;
			longmods = mk_str_dict(&w.im, mnames, mvals, 40);
			index_dict(&w.im, &hl, longmods, mnames, 40, hash_of(&hl, "gone"));
			put64(&w.im, interp + w.im.l->is_modules, longmods);
			learnt = *w.im.l;
			assert_int_equal(pythreads__learn_hash(&learnt, &w.mr, w.runtime, secret), 0);
			assert_int_equal(learnt.hash_rounds, hl.hash_rounds);
			put64(&w.im, interp + w.im.l->is_modules, modules);
			mnames[1] = saved;
		}

		/* another secret: the cached hashes say no; lookups read the keys in order */
		put64(&w.im, secret, hl.hash_k0 + 1);
		learnt = *w.im.l;
		assert_int_equal(pythreads__learn_hash(&learnt, &w.mr, w.runtime, secret), -ENOTSUP);
		assert_int_equal(learnt.hash_rounds, PYL_HASH_NONE);
		w.im.reads = 0;
		assert_int_equal(pythreads__module_dicts(&learnt, &w.mr, w.runtime, want, mds, 3), 2);
		assert_int_equal(mds[2], 0x5000 + 7);
		assert_true(w.im.reads >= 39);
		/* a secret the process does not have, or too few modules yet */
		learnt = *w.im.l;
		assert_int_equal(pythreads__learn_hash(&learnt, &w.mr, w.runtime, 0), -ENOTSUP);
		put64(&w.im, interp + w.im.l->is_modules, mk_str_dict(&w.im, want, mvals, 1));
		assert_int_equal(pythreads__learn_hash(&learnt, &w.mr, w.runtime, secret), -EAGAIN);
		assert_int_equal(learnt.hash_rounds, PYL_HASH_UNKNOWN);
		free_world(&w);
	}
}

/*
 * An extension type's C method, as the tool finds uvloop's transport.write (uvwrite.c):
 * sys.modules -> "uvloop.loop" -> UVStream -> tp_dict -> write, a method_descriptor whose
 * PyMethodDef (at byte 40) names it and takes one argument (METH_O).
 */
static void test_method_cfunc(void **state)
{
	for (unsigned minor = 8; minor <= 15; minor++) {
		const char *mnames[] = { "uvloop.loop" };
		const char *cnames[] = { "UVStream" };
		const char *fnames[] = { "write", "writelines", "close" };
		const char *defname[] = { "write", "write", "close" };	/* writelines: a def of another name */
		const uint32_t flags[] = { 0x0008, 0x0008, 0x0004 };	/* METH_O, METH_O, METH_NOARGS */
		uint64_t mvals[1], cvals[1], fvals[3], interp, got = 0;
		const struct py_layout *l;
		struct world w;

		mk_world(&w, minor, HOME_NATURAL, 5);
		l = w.im.l;
		for (int i = 0; i < 3; i++) {
			uint64_t def = alloc(&w.im, 32), name = alloc(&w.im, 16);

			put(&w.im, name, defname[i], strlen(defname[i]) + 1);
			put64(&w.im, def, name);
			put64(&w.im, def + 8, 0x7f0000001000ULL + (uint64_t)i);
			put64(&w.im, def + 16, flags[i]);
			fvals[i] = alloc(&w.im, 48);
			put64(&w.im, fvals[i] + 40, def);
		}
		cvals[0] = alloc(&w.im, l->tp_dict + 8);
		put64(&w.im, cvals[0] + l->tp_dict, mk_str_dict(&w.im, fnames, fvals, 3));
		mvals[0] = alloc(&w.im, 64);
		put64(&w.im, mvals[0] + l->mod_dict, mk_str_dict(&w.im, cnames, cvals, 1));
		interp = get64(&w.im, w.runtime + l->rt_interp_head);
		put64(&w.im, interp + l->is_modules, mk_str_dict(&w.im, mnames, mvals, 1));

		assert_int_equal(pythreads__method_cfunc(l, &w.mr, w.runtime, "uvloop.loop", "UVStream", "write", &got), 0);
		assert_int_equal(got, 0x7f0000001000ULL);
		/* a def that names another method, one that takes no argument, no such method, not imported */
		assert_int_equal(pythreads__method_cfunc(l, &w.mr, w.runtime, "uvloop.loop", "UVStream", "writelines",
							 &got), -EINVAL);
		assert_int_equal(pythreads__method_cfunc(l, &w.mr, w.runtime, "uvloop.loop", "UVStream", "close", &got),
				 -EINVAL);
		assert_int_equal(pythreads__method_cfunc(l, &w.mr, w.runtime, "uvloop.loop", "UVStream", "read", &got),
				 -ENOENT);
		assert_int_equal(pythreads__method_cfunc(l, &w.mr, w.runtime, "uvloop", "UVStream", "write", &got),
				 -ENOENT);
		free_world(&w);
	}
}

static void test_errors(void **state)
{
	struct py_thread_name t[8];
	struct world w;
	uint64_t v, keys;
	int64_t n;

	mk_world(&w, 12, HOME_NATURAL, 5);
	/* threading not imported: no such key */
	assert_int_equal(pythreads__dict_get(w.im.l, &w.mr, w.modules, "threadin", &v), -ENOENT);
	assert_int_equal(pythreads__dict_get(w.im.l, &w.mr, w.modules, "threading_", &v), -ENOENT);
	/* an entry count past the table (a torn read while it is resized) */
	keys = get64(&w.im, w.active + w.im.l->dict_keys);
	n = 1000;
	put(&w.im, keys + w.im.l->dk_nentries, &n, 8);
	assert_int_equal(pythreads__read_active(w.im.l, &w.mr, w.active, t, 8), -EINVAL);
	/* a bad log2 size */
	n = 5;
	put(&w.im, keys + w.im.l->dk_nentries, &n, 8);
	put8(&w.im, keys + w.im.l->dk_size, 40);
	assert_int_equal(pythreads__read_active(w.im.l, &w.mr, w.active, t, 8), -EINVAL);
	/* unmapped: the reader's error */
	assert_int_equal(pythreads__read_active(w.im.l, &w.mr, 0x10, t, 8), -EFAULT);
	/* no interpreter yet */
	put64(&w.im, w.runtime + w.im.l->rt_interp_head, 0);
	assert_int_equal(pythreads__find_active(w.im.l, &w.mr, w.runtime, &v), -EAGAIN);
	free_world(&w);

	/* 3.13+: values not valid (a dict is being made): not read */
	mk_world(&w, 13, HOME_NATURAL, 5);
	{
		uint64_t thread = 0, keys2 = get64(&w.im, w.active + w.im.l->dict_keys);

		/* the first entry's value (general entries: hash, key, value after 32 + 8 index bytes) */
		thread = get64(&w.im, keys2 + w.im.l->dk_indices + 8 + 16);
		put8(&w.im, thread + 16 + 3, 0);
		assert_int_equal(pythreads__attr(w.im.l, &w.mr, thread, "_name", &v), -ENOENT);
		/* the others are still named */
		assert_int_equal(pythreads__read_active(w.im.l, &w.mr, w.active, t, 8), 3);
		assert_string_equal(t[0].name, "Worker-0");
	}
	free_world(&w);
}

/* The recipe as the BPF walker applies it (bpf/pystack.bpf.h, pt_server_scope): 0 if not there. */
static uint64_t apply_recipe(struct image *im, const struct py_attr_recipe *r, uint64_t obj)
{
	uint64_t vals = 0, v = 0;

	switch (r->mode) {
	case PY_ATTR_DICT:
		v = get64(im, obj + r->off);
		vals = v ? get64(im, v + r->dict_values) : 0;
		break;
	case PY_ATTR_VALUES_311:
		vals = get64(im, obj - 32);
		break;
	case PY_ATTR_VALUES_312:
		v = get64(im, obj - 24);
		vals = v & 1 ? v + 1 : 0;
		break;
	case PY_ATTR_INLINE:
		v = get64(im, obj + r->off);
		vals = (v >> 24) & 0xff ? obj + r->off : 0;
		break;
	default:
		return 0;
	}
	return vals ? get64(im, vals + r->slot) : 0;
}

/*
 * Where a class keeps an attribute, for the BPF walker (uvicorn's RequestResponseCycle.scope,
 * procs_frames.c): worked out from one instance, it reads the same attribute of every instance that
 * shares the class's keys, in every version; an instance whose attributes moved to a dict of its
 * own is refused where the walker could not follow (3.11, 3.12), and followed where it can (3.13+:
 * the dict keeps the inline values).
 */
static void test_attr_recipe(void **state)
{
	for (unsigned minor = 8; minor <= 15; minor++) {
		struct py_attr_recipe r;
		uint64_t type, a, b, v = 0;
		struct world w;

		mk_world(&w, minor, HOME_NATURAL, 5);
		type = mk_thread_type(&w.im);
		a = mk_thread(&w.im, type, "a", 11, HOME_NATURAL);
		b = mk_thread(&w.im, type, "b", 22, HOME_NATURAL);
		assert_int_equal(pythreads__attr_recipe(w.im.l, &w.mr, a, "_native_id", &r), 0);
		assert_int_equal(r.mode, minor <= 10 ? PY_ATTR_DICT : minor == 11 ? PY_ATTR_VALUES_311 :
					 minor == 12 ? PY_ATTR_VALUES_312 : PY_ATTR_INLINE);
		assert_int_equal(pythreads__attr(w.im.l, &w.mr, b, "_native_id", &v), 0);
		assert_int_equal(apply_recipe(&w.im, &r, b), v);
		assert_int_equal(pythreads__attr_recipe(w.im.l, &w.mr, a, "_daemonic", &r), -ENOENT);
		/* from the class alone: the same recipe */
		{
			struct py_attr_recipe tr;

			assert_int_equal(pythreads__attr_recipe(w.im.l, &w.mr, a, "_native_id", &r), 0);
			assert_int_equal(pythreads__type_attr_recipe(w.im.l, &w.mr, type, "_native_id", &tr), 0);
			assert_int_equal(tr.mode, r.mode);
			assert_int_equal(tr.off, r.off);
			assert_int_equal(tr.slot, r.slot);
			assert_int_equal(tr.dict_values, r.dict_values);
			assert_int_equal(apply_recipe(&w.im, &tr, b), v);
			assert_int_equal(pythreads__type_attr_recipe(w.im.l, &w.mr, type, "_daemonic", &tr), -ENOENT);
		}
		if (minor >= 11) {
			uint64_t c = mk_thread(&w.im, type, "c", 33, HOME_DICT);

			assert_int_equal(pythreads__attr_recipe(w.im.l, &w.mr, c, "_native_id", &r),
					 minor <= 12 ? -EINVAL : 0);
			if (minor >= 13) {
				assert_int_equal(pythreads__attr(w.im.l, &w.mr, c, "_native_id", &v), 0);
				assert_int_equal(apply_recipe(&w.im, &r, c), v);
			}
		}
		free_world(&w);
	}
}

/*
 * BaseHTTPMiddleware's closures, as the tool finds them (procs_frames.c): __call__ defines call_next,
 * which defines coro; scope is a cell of __call__'s and a free variable of coro's, and a frame
 * keeps them after its locals (<= 3.10) or where co_localsplusnames names them (3.11+).
 */
static void test_closures(void **state)
{
	for (unsigned minor = 8; minor <= 15; minor++) {
		const char *call_locals[] = { "self", "receive", "send" }, *call_cells[] = { "scope", "task_group" };
		const char *coro_frees[] = { "app_exc", "scope", "self" }, *cn_frees[] = { "scope", "task_group" };
		const char *cn_cells[] = { "app_exc" }, *cn_locals[] = { "request" };
		uint64_t pycode = 0x7f0000009000ULL, coro, other, call_next, call, got = 0;
		const struct py_layout *l;
		struct world w;
		int base;

		mk_world(&w, minor, HOME_NATURAL, 5);
		l = w.im.l;
		coro = mk_code(&w.im, pycode, "coro", NULL, 0, NULL, 0, coro_frees, 3, NULL, 0);
		other = mk_code(&w.im, pycode, "send_no_error", cn_locals, 1, NULL, 0, NULL, 0, NULL, 0);
		call_next = mk_code(&w.im, pycode, "call_next", cn_locals, 1, cn_cells, 1, cn_frees, 2,
				    (uint64_t[]){ other, coro }, 2);
		call = mk_code(&w.im, pycode, "__call__", call_locals, 3, call_cells, 2, NULL, 0, &call_next, 1);

		assert_int_equal(pythreads__nested_code(l, &w.mr, pycode, call, "call_next", &got), 0);
		assert_int_equal(got, call_next);
		assert_int_equal(pythreads__nested_code(l, &w.mr, pycode, call_next, "coro", &got), 0);
		assert_int_equal(got, coro);
		assert_int_equal(pythreads__nested_code(l, &w.mr, pycode, call, "coro", &got), -ENOENT);
		/* a code object of another type (another interpreter's, or not code at all) */
		assert_int_equal(pythreads__nested_code(l, &w.mr, pycode + 1, call, "call_next", &got), -ENOENT);

		base = 3;	/* the locals first, in both */
		assert_int_equal(pythreads__cell_index(l, &w.mr, call, "scope"), base);
		assert_int_equal(pythreads__cell_index(l, &w.mr, call, "task_group"), base + 1);
		assert_int_equal(pythreads__cell_index(l, &w.mr, coro, "scope"), 1);
		/* call_next: a local, then its cell, then its free variables */
		assert_int_equal(pythreads__cell_index(l, &w.mr, call_next, "task_group"), 3);
		/* a plain local is no cell; no such variable */
		assert_int_equal(pythreads__cell_index(l, &w.mr, call, "send"), -1);
		assert_int_equal(pythreads__cell_index(l, &w.mr, coro, "request"), -1);
		free_world(&w);
	}
}

/* A member_descriptor (descr_t) of a __slots__ member at offset, of PyMemberDef type mtype. */
static uint64_t mk_member(struct image *im, uint64_t descr_t, int32_t mtype, int64_t offset)
{
	uint64_t d = alloc(im, 48), def = alloc(im, 40);

	put64(im, d + 8, descr_t);
	put64(im, d + 40, def);		/* d_member */
	put(im, def + 8, &mtype, 4);	/* type */
	put64(im, def + 16, (uint64_t)offset);
	return d;
}

/*
 * psycopg 3's statement text is a __slots__ member of the frame's local (PostgresQuery.query,
 * procs_frames.c's text frames): its offset from the class's member_descriptor, an object
 * member's only.
 */
static void test_member_offset(void **state)
{
	for (unsigned minor = 8; minor <= 15; minor++) {
		const char *names[] = { "query", "params", "_tx", "__doc__" };
		uint64_t descr_t, cls, vals[4];
		const struct py_layout *l;
		uint32_t off = 0;
		struct world w;

		mk_world(&w, minor, HOME_NATURAL, 1);
		l = w.im.l;
		descr_t = mk_type(&w.im, "member_descriptor");
		/* query an object member at 24; params not an object's; _tx a str; __doc__ misaligned */
		vals[0] = mk_member(&w.im, descr_t, 16, 24);
		vals[1] = mk_member(&w.im, descr_t, 1, 32);
		vals[2] = mk_str(&w.im, "_tx");
		put64(&w.im, vals[2] + 8, mk_type(&w.im, "str"));
		vals[3] = mk_member(&w.im, descr_t, 16, 3);
		cls = mk_type(&w.im, "PostgresQuery");
		put64(&w.im, cls + l->tp_dict, mk_str_dict(&w.im, names, vals, 4));
		assert_int_equal(pythreads__member_offset(l, &w.mr, cls, "query", &off), 0);
		assert_int_equal(off, 24);
		assert_int_equal(pythreads__member_offset(l, &w.mr, cls, "params", &off), -EINVAL);
		assert_int_equal(pythreads__member_offset(l, &w.mr, cls, "_tx", &off), -EINVAL);
		assert_int_equal(pythreads__member_offset(l, &w.mr, cls, "__doc__", &off), -EINVAL);
		assert_int_equal(pythreads__member_offset(l, &w.mr, cls, "types", &off), -ENOENT);
		free_world(&w);
	}
}

static void test_long(void **state)
{
	static const int64_t vals[] = { 0, 1, 12345, (1LL << 30) - 1, 1LL << 30, 0x7f1234567890LL, -5,
					-(1LL << 40), (1LL << 62) + 3 };

	for (unsigned minor = 11; minor <= 12; minor++) {	/* ob_size, lv_tag */
		struct world w;

		mk_world(&w, minor, HOME_NATURAL, 1);
		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			int64_t got = -1;

			assert_int_equal(pythreads__read_long(w.im.l, &w.mr, mk_long(&w.im, vals[i]), &got), 0);
			assert_int_equal(got, vals[i]);
		}
		free_world(&w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_version),
		cmocka_unit_test(test_big_dict),
		cmocka_unit_test(test_method_code),
		cmocka_unit_test(test_module_dicts),
		cmocka_unit_test(test_module_dict_since),
		cmocka_unit_test(test_siphash),
		cmocka_unit_test(test_hashed_lookup),
		cmocka_unit_test(test_method_cfunc),
		cmocka_unit_test(test_attr_recipe),
		cmocka_unit_test(test_closures),
		cmocka_unit_test(test_dict_entry),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long),
		cmocka_unit_test(test_member_offset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
