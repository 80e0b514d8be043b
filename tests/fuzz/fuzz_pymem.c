/* fuzz-sources: src/pythreads.c src/pylayout.c src/symbolize.c src/utf8.c src/linetable.c src/routeread.c src/djroutes.c src/flaskroutes.c src/starroutes.c src/aioroutes.c src/tornroutes.c */
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The readers of a traced process's memory (pythreads: dicts by key, by hash, in order,
 * sys.modules, instances' attributes and where their class keeps them, ints, strs, threading's
 * threads, a class's method, its closures' variables; symbolize: a code object's names, file
 * name and line). The collector runs as root and reads every CPython process of the host, so that
 * memory is any local user's to shape: no bytes in it may crash the collector, hang it or make
 * it read outside its buffers. Input: the version (3.8 + byte % 8); a byte of flags: where the
 * threads keep their attributes (1), dicts also looked up by hash (2), learnt by
 * pythreads__learn_hash from the hashes sys.modules' keys cache, SipHash-1-3 (4) or -2-4; how
 * many modules sys.modules holds; then patches to the world that
 * tests/common/pyimage.h builds for it, four bytes each: a 16-bit offset into the image, an
 * operation, a byte: XOR it into the byte there, write it, write a pointer into the image (to
 * the byte times 16), or write a 64-bit value (the byte shifted left by 4 times bits 2-5 of
 * the operation). Every reader is then run on the world's objects and names, and the
 * symbolizer on a method's code object. Flag 8: the world is a web app's instead (Django's URL
 * patterns with includes, one list included twice, a re_path; a Starlette app with a Mount of a
 * router; a Flask app behind a gunicorn worker; an aiohttp app with a sub-app; a Tornado app
 * with a rule for any host and its wildcard router; uWSGI's options, a mount), and the route
 * tables are read from it (src/routeread.c: each read within its budget of reads, whatever the
 * patches made of the includes: cycles too).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djroutes.h"
#include "pythreads.h"
#include "routeread.h"
#include "routes.h"
#include "symbolize.h"
#include "../common/pyimage.h"

/*
 * What the frame finders and the symbolizer read, added to the world: module mod0's dict holds a
 * class View with a C method write (a method_descriptor, METH_O: what the uvloop probe's address
 * is read from) and a method get, whose code object (named, with a file name, a first line, a
 * line table and a qualified name where the version has one) has locals self and request and a
 * cell scope, and defines inner, whose free variable scope is.
 */
struct app {
	uint64_t pycode_type, code, inner;
};

static void mk_app(struct world *w, struct app *a)
{
	struct image *im = &w->im;
	const struct py_layout *l = im->l;
	static const char *const locals[] = { "self", "request" }, *const cells[] = { "scope" };
	static const char *const fnames[] = { "get", "write" }, *const cnames[] = { "View" };
	static const uint8_t table[] = { 0x80, 0x00, 0xd8, 0x0b, 0x0c, 0x88, 0x34, 0x01, 0x02, 0x03 };
	uint64_t fn[2], cls, mod = 0, tbl, def, name;
	uint32_t flags = 0x0008;	/* METH_O */
	int32_t first = 12;

	a->pycode_type = alloc(im, 64);
	a->inner = mk_code(im, a->pycode_type, "inner", NULL, 0, NULL, 0, cells, 1, NULL, 0);
	a->code = mk_code(im, a->pycode_type, "get", locals, 2, cells, 1, NULL, 0, &a->inner, 1);
	put64(im, a->code + l->co_filename, mk_str(im, "/srv/app/views.py"));
	if (l->co_qualname != PYL_NONE)
		put64(im, a->code + l->co_qualname, mk_str(im, "View.get"));
	put(im, a->code + l->co_firstlineno, &first, 4);
	tbl = alloc(im, l->bytes_data + sizeof(table) + 1);
	put64(im, tbl + l->bytes_size, sizeof(table));
	put(im, tbl + l->bytes_data, table, sizeof(table));
	put64(im, a->code + l->co_linetable, tbl);
	fn[0] = alloc(im, l->func_code + 8);
	put64(im, fn[0] + l->func_code, a->code);
	/* write: a C method (a method_descriptor: PyDescrObject.d_method at 40, its PyMethodDef) */
	name = alloc(im, 16);
	put(im, name, "write", 6);
	def = alloc(im, 32);
	put64(im, def, name);
	put64(im, def + 8, 0x7f0000123450ULL);
	put(im, def + 16, &flags, 4);
	fn[1] = alloc(im, 48);
	put64(im, fn[1] + 40, def);
	cls = alloc(im, l->tp_dict + 8);
	put64(im, cls + l->tp_dict, mk_str_dict(im, fnames, fn, 2));
	if (!pythreads__dict_get(l, &w->mr, w->modules, "mod0", &mod) && mod)
		put64(im, mod + l->mod_dict, mk_str_dict(im, cnames, &cls, 1));
}

struct count {
	unsigned n;
};

static int count_entry(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct count *c = ctx;

	(void)key;
	(void)value;
	(void)ix;
	if (++c->n > PYTHREADS_MAX_ENTRIES)
		abort();	/* the reader's own bound */
	return 0;
}

static void patch(struct world *w, const uint8_t *p)
{
	uint64_t used = w->im.top - BASE, off, v;
	uint8_t op = p[2], val = p[3];

	if (!used)
		return;
	off = (uint64_t)(p[0] | p[1] << 8) % used;
	switch (op & 3) {
	case 0:
		w->im.mem[off] ^= val;
		return;
	case 1:
		w->im.mem[off] = val;
		return;
	case 2:
		v = BASE + (uint64_t)val * 16;
		break;
	default:
		v = (uint64_t)val << (4 * ((op >> 2) & 15));
		break;
	}
	if (off + 8 <= used)
		memcpy(w->im.mem + off, &v, 8);
}

static void read_all(struct world *w, const struct app *a, const struct py_layout *l)
{
	static const char *const mods[] = { "threading", "mod0", "mod1", "nothere", "asyncio.tasks" };
	const struct mem_reader *mr = &w->mr;
	struct py_thread_name t[8];
	struct py_attr_recipe r;
	struct py_modules_stamp st = { 0 }, seen = { 0 };
	struct count c = { 0 };
	uint64_t active = 0, md = 0, v = 0, key = 0, items[16], mds[5], code = 0, type = 0;
	uint32_t off = 0;
	int64_t n = 0;
	char buf[256];
	int k;

	if (!pythreads__find_active(l, mr, w->runtime, &active)) {
		k = pythreads__read_active(l, mr, active, t, 8);
		if (k > 8)
			abort();
		for (int i = 0; i < k; i++)
			if (!memchr(t[i].name, 0, sizeof(t[i].name)))
				abort();
	}
	/* and from the world's own addresses, whatever the patches made of the way there */
	pythreads__read_active(l, mr, w->active, t, 8);
	pythreads__dict_foreach(l, mr, w->modules, count_entry, &c);
	c.n = 0;
	pythreads__dict_foreach(l, mr, w->active, count_entry, &c);
	if (!pythreads__module_dict(l, mr, w->runtime, "threading", &md)) {
		pythreads__dict_get(l, mr, md, "_active", &v);
		pythreads__dict_entry(l, mr, md, "_main_thread", &off, &key, &v);
		if (v && !pythreads__attr_recipe(l, mr, v, "_name", &r) && !mem_read_u64(mr, v + 8, &type))
			pythreads__type_attr_recipe(l, mr, type, "_native_id", &r);
		pythreads__attr(l, mr, v, "_native_id", &v);
		pythreads__read_long(l, mr, v, &n);
		pythreads__method_code_in(l, mr, md, "Thread", "run", &code);
	}
	pythreads__module_dicts(l, mr, w->runtime, mods, mds, 5);
	pythreads__modules_stamp(l, mr, w->runtime, &st);
	pythreads__modules_changed(l, mr, w->runtime, &seen);
	pythreads__module_dict_since(l, mr, w->runtime, "mod1", &md, &seen);
	pythreads__list_items(l, mr, w->active, items, 16);
	pythreads__environ(l, mr, w->runtime, "PATH", buf, sizeof(buf));
	pythreads__method_cfunc(l, mr, w->runtime, "mod0", "View", "write", &v);
	pythreads__method_cfunc(l, mr, w->runtime, "mod0", "View", "get", &v);
	if (!pythreads__method_code(l, mr, w->runtime, "mod0", "View", "get", &code)) {
		struct symbolizer *sym = symbolizer__new(16);
		struct py_frame_sym fs;
		uint64_t inner = 0, codes[2];

		pythreads__cell_index(l, mr, code, "scope");
		if (!pythreads__nested_code(l, mr, a->pycode_type, code, "inner", &inner))
			pythreads__cell_index(l, mr, inner, "scope");
		if (!sym)
			abort();
		for (unsigned i = 0; i < 4; i++) {
			uint64_t instr = l->co_code_adaptive != PYL_NONE ? code + l->co_code_adaptive + 2 * i : 2 * i;

			if (!symbolizer__resolve(sym, 1, l, mr, a->pycode_type, code, instr, &fs) &&
			    (!fs.name || !fs.file || strlen(fs.name) >= SYMBOLIZER_MAX_STR ||
			     strlen(fs.file) >= SYMBOLIZER_MAX_STR))
				abort();
		}
		codes[0] = code;
		codes[1] = a->code;
		symbolizer__recheck_many(sym, 1, l, mr, a->pycode_type, codes, 2);
		symbolizer__free(sym);
	}
	if (py_read_str(l, mr, w->modules, buf, sizeof(buf)) >= 0 && !memchr(buf, 0, sizeof(buf)))
		abort();
	/* where a class keeps a __slots__ member (procs_frames.c's text frames: psycopg 3's) */
	if (!pythreads__module_dict(l, mr, w->runtime, "mod0", &md) && !pythreads__dict_get(l, mr, md, "View", &v) &&
	    !pythreads__member_offset(l, mr, v, "get", &off) && (off < 16 || off > 4096 || (off & 7)))
		abort();
}

/* The app objects of the web world that responses' frames would give (routes.h's enum route_app). */
struct web {
	uint64_t starlette_app;		/* ROUTE_APP_STARLETTE */
	uint64_t flask_worker;		/* ROUTE_APP_WSGI_WORKER: a gunicorn worker whose wsgi is a Flask app */
	uint64_t aiohttp_handler;	/* ROUTE_APP_HANDLER: an aiohttp app's bound _handle */
	uint64_t tornado_app;		/* ROUTE_APP_TORNADO: what the walker reads from a handler */
};

/* Tornado's Rule(matcher, target), the matcher of type mt with its regex attribute attr. */
static uint64_t tornado_rule(struct image *im, uint64_t rule_t, uint64_t re_t, const char *mt, const char *attr,
			     const char *pattern, uint64_t target)
{
	static const char *const rn[] = { "matcher", "target" };
	uint64_t v[2];

	v[0] = mk_re_pattern(im, re_t, pattern);
	v[0] = mk_obj(im, mk_type(im, mt), &attr, v, 1);
	v[1] = target;
	return mk_obj(im, rule_t, rn, v, 2);
}

/*
 * Tornado's (app.default_router.rules: a HostMatches rule for any host to a router of its own,
 * then AnyMatches to the wildcard router of the app's URL specs): the app, of app_t.
 */
static uint64_t mk_tornado(struct image *im, uint64_t list_t, uint64_t re_t, uint64_t app_t)
{
	static const char *const routern[] = { "rules" }, *const appn[] = { "default_router" };
	uint64_t rule_t = mk_type(im, "Rule"), router_t = mk_type(im, "_ApplicationRouter"), handler = mk_type(im, "H");
	uint64_t specs[2], dflt[2], v;

	specs[0] = tornado_rule(im, rule_t, re_t, "PathMatches", "regex", "/items/(?P<id>\\d+)/$", handler);
	specs[1] = tornado_rule(im, rule_t, re_t, "PathMatches", "regex", "/health/$", handler);
	v = mk_list(im, list_t, specs, 2);
	v = mk_obj(im, router_t, routern, &v, 1);
	dflt[1] = tornado_rule(im, rule_t, re_t, "AnyMatches", "none", "", v);
	specs[0] = tornado_rule(im, rule_t, re_t, "PathMatches", "regex", "/v2/(?P<id>\\d+)/$", handler);
	v = mk_list(im, list_t, specs, 1);
	v = mk_obj(im, router_t, routern, &v, 1);
	dflt[0] = tornado_rule(im, rule_t, re_t, "HostMatches", "host_pattern", ".*$", v);
	v = mk_list(im, list_t, dflt, 2);
	v = mk_obj(im, router_t, routern, &v, 1);
	return mk_obj(im, app_t, appn, &v, 1);
}

/*
 * Flask's (werkzeug's Map._rules_by_endpoint: endpoint -> [Rule]) behind a gunicorn worker, and
 * aiohttp's (app._router._resources: a PlainResource, a DynamicResource, a sub-app under a
 * prefix) behind its bound _handle.
 */
static void mk_flask_aiohttp(struct image *im, struct djimage *d, uint64_t re_t, uint64_t flask_t, struct web *web)
{
	static const char *const rulen[] = { "rule", "_converters" }, *const convn[] = { "regex" },
				 *const pkn[] = { "pk" }, *const epn[] = { "books", "book" },
				 *const mapn[] = { "_rules_by_endpoint" }, *const appn[] = { "url_map" },
				 *const wn[] = { "wsgi" }, *const routen[] = { "_method" },
				 *const plainn[] = { "_path", "_routes" }, *const dynn[] = { "_formatter", "_pattern", "_routes" },
				 *const subn[] = { "_prefix", "_app" }, *const resn[] = { "_resources" },
				 *const rtn[] = { "_router" };
	uint64_t rule_t = mk_type(im, "Rule"), v[3], r[2], lists[2], app, res[3], sub, router, m;

	v[0] = mk_str(im, "/books/");
	v[1] = mk_str_dict(im, NULL, NULL, 0);
	r[0] = mk_obj(im, rule_t, rulen, v, 2);
	v[0] = mk_str(im, "\\d+");
	v[2] = mk_obj(im, mk_type(im, "IntegerConverter"), convn, v, 1);
	v[0] = mk_str(im, "/books/<int:pk>/");
	v[1] = mk_str_dict(im, pkn, &v[2], 1);
	r[1] = mk_obj(im, rule_t, rulen, v, 2);
	lists[0] = mk_list(im, d->list_t, &r[0], 1);
	lists[1] = mk_list(im, d->list_t, &r[1], 1);
	v[0] = mk_str_dict(im, epn, lists, 2);
	v[0] = mk_obj(im, mk_type(im, "Map"), mapn, v, 1);
	app = mk_obj(im, flask_t, appn, v, 1);
	web->flask_worker = mk_obj(im, mk_type(im, "SyncWorker"), wn, &app, 1);

	/* aiohttp */
	v[0] = mk_str(im, "GET");
	v[0] = mk_obj(im, mk_type(im, "ResourceRoute"), routen, v, 1);
	m = mk_list(im, d->list_t, v, 1);
	v[0] = mk_str(im, "/health");
	v[1] = m;
	res[0] = mk_obj(im, mk_type(im, "PlainResource"), plainn, v, 2);
	v[0] = mk_str(im, "/items/{id}");
	v[1] = mk_re_pattern(im, re_t, "/items/(?P<id>[^{}/]+)");
	v[2] = m;
	res[1] = mk_obj(im, mk_type(im, "DynamicResource"), dynn, v, 3);
	v[0] = mk_list(im, d->list_t, &res[0], 1);
	router = mk_obj(im, mk_type(im, "UrlDispatcher"), resn, v, 1);
	sub = mk_obj(im, mk_type(im, "Application"), rtn, &router, 1);
	v[0] = mk_str(im, "/admin");
	v[1] = sub;
	res[2] = mk_obj(im, mk_type(im, "PrefixedSubAppResource"), subn, v, 2);
	v[0] = mk_list(im, d->list_t, res, 3);
	router = mk_obj(im, mk_type(im, "UrlDispatcher"), resn, v, 1);
	app = mk_obj(im, mk_type(im, "Application"), rtn, &router, 1);
	/* the bound method app._handle: PyMethodObject, im_self at 24 */
	web->aiohttp_handler = alloc(im, 48);
	put64(im, web->aiohttp_handler + 8, mk_type(im, "method"));
	put64(im, web->aiohttp_handler + 24, app);
}

/*
 * The web app's world: sys.modules holds django.conf, the urlconf site.urls,
 * starlette.applications and flask.app; web has the objects frames would give.
 */
static void mk_web_world(struct world *w, unsigned minor, struct web *web)
{
	struct image *im = &w->im;
	struct djimage d;
	static const char *const rxn[] = { "_regex" }, *const pn[] = { "pattern" }, *const rn[] = { "routes" },
				 *const an[] = { "router" }, *const cn[] = { "Starlette" },
				 *const mountn[] = { "path_regex", "path_format", "_base_app" },
				 *const routen[] = { "path_regex", "path_format", "methods" },
				 *const fcn[] = { "Flask" }, *const tcn[] = { "Application" },
				 *const mn[] = { "django.conf", "site.urls", "starlette.applications", "flask.app",
						 "tornado.web", "uwsgi" },
				 *const optn[] = { "mount", "manage-script-name" }, *const un[] = { "opt" };
	uint64_t api[2], root[5], v, list, starlette_t, flask_t, re_t, router_t, str_t, mv[3], inner, router, mods[6];
	uint64_t tornado_t;
	uint64_t runtime;

	memset(w, 0, sizeof(*w));
	im->l = py_layout__builtin(3, minor);
	if (!im->l)
		abort();
	im->mem = calloc(1, ARENA);
	im->top = BASE + 64;
	w->mr = (struct mem_reader){ .read = img_read, .ctx = im };
	dj_types(&d, im);
	api[0] = dj_path(&d, "items/<slug:name>/");
	api[1] = dj_path(&d, "items/");
	list = mk_list(im, d.list_t, api, 2);
	root[0] = dj_path(&d, "recipes/");
	root[1] = dj_path(&d, "recipes/<int:pk>/");
	root[2] = dj_include(&d, "api/", list);
	root[3] = dj_include(&d, "v2/", list);
	v = mk_str(im, "^old/(?P<year>[0-9]{4})/$");
	v = mk_obj(im, mk_type(im, "RegexPattern"), rxn, &v, 1);
	root[4] = mk_obj(im, d.pattern_t, pn, &v, 1);
	runtime = dj_runtime(&d, mk_list(im, d.list_t, root, 5));
	/* Starlette: app.router.routes = [Mount("/sub", Router([Route("/x/{id}", methods=["GET"])]))] */
	re_t = mk_type(im, "re.Pattern");
	router_t = mk_type(im, "Router");
	mv[0] = mk_re_pattern(im, re_t, "^/x/(?P<id>[^/]+)$");
	mv[1] = mk_str(im, "/x/{id}");
	/* methods: a set (mask at 32, table at 40) of strs {GET, HEAD} */
	mv[2] = alloc(im, 48);
	put64(im, mv[2] + 8, mk_type(im, "set"));
	put64(im, mv[2] + 32, 7);
	put64(im, mv[2] + 40, v = alloc(im, 8 * 16));
	str_t = mk_type(im, "str");
	put64(im, v, mk_str(im, "GET"));
	put64(im, get64(im, v) + 8, str_t);
	put64(im, v + 48, mk_str(im, "HEAD"));
	put64(im, get64(im, v + 48) + 8, str_t);
	inner = mk_obj(im, mk_type(im, "Route"), routen, mv, 3);
	v = mk_list(im, d.list_t, &inner, 1);
	router = mk_obj(im, router_t, rn, &v, 1);
	mv[0] = mk_re_pattern(im, re_t, "^/sub/(?P<path>.*)$");
	mv[1] = mk_str(im, "/sub/{path}");
	mv[2] = router;
	v = mk_obj(im, mk_type(im, "Mount"), mountn, mv, 3);
	v = mk_list(im, d.list_t, &v, 1);
	router = mk_obj(im, router_t, rn, &v, 1);
	starlette_t = mk_type(im, "Starlette");
	w->active = web->starlette_app = mk_obj(im, starlette_t, an, &router, 1);
	flask_t = mk_type(im, "Flask");
	mk_flask_aiohttp(im, &d, re_t, flask_t, web);
	tornado_t = mk_type(im, "Application");
	web->tornado_app = mk_tornado(im, d.list_t, re_t, tornado_t);
	/* sys.modules: the two of dj_runtime's, and starlette.applications */
	w->modules = get64(im, get64(im, runtime + im->l->rt_interp_head) + im->l->is_modules);
	mods[0] = mods[1] = 0;
	pythreads__dict_get(im->l, &w->mr, w->modules, "django.conf", &mods[0]);
	pythreads__dict_get(im->l, &w->mr, w->modules, "site.urls", &mods[1]);
	mods[2] = mk_module(im, d.module_t, cn, &starlette_t, 1);
	mods[3] = mk_module(im, d.module_t, fcn, &flask_t, 1);
	mods[4] = mk_module(im, d.module_t, tcn, &tornado_t, 1);
	/* uWSGI's options: the app mounted at /shop (routeread.c's uwsgi_mount) */
	mv[0] = mk_bytes(im, mk_type(im, "bytes"), "/shop=/srv/app.py");
	mv[1] = mk_long(im, 1);
	v = mk_str_dict(im, optn, mv, 2);
	mods[5] = mk_module(im, d.module_t, un, &v, 1);
	w->modules = mk_str_dict(im, mn, mods, 6);
	put64(im, get64(im, runtime + im->l->rt_interp_head) + im->l->is_modules, w->modules);
	w->runtime = runtime;
}

static void read_routes(struct world *w, const struct web *web)
{
	static const unsigned kinds[] = { 0, ROUTE_APP_STARLETTE, ROUTE_APP_HANDLER, ROUTE_APP_WSGI_WORKER,
					  ROUTE_APP_TORNADO };
	static const char *const targets[] = { "/api/items/x/", "/v2/items/", "/old/2024/", "/sub/x/7", "/",
					       "/books/3/", "/items/9", "/admin/health", "/v2/3/", "/health/" };
	const uint64_t apps[] = { 0, web->starlette_app, web->aiohttp_handler, web->flask_worker, web->tornado_app };
	const struct py_layout *l = w->im.l;
	struct djroutes *t = djroutes__new();
	const char *kind;
	unsigned skipped;
	char out[256];

	if (!t)
		abort();
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		djroutes__clear(t);
		w->im.reads = 0;
		kind = NULL;
		skipped = 0;
		routeread__table(l, &w->mr, w->runtime, apps[k], kinds[k], t, &skipped, &kind);
		if (w->im.reads > ROUTEREAD_READS_MAX || !kind || djroutes__count(t) > DJROUTES_MAX)
			abort();
		for (unsigned i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
			if (djroutes__match_method(t, "GET", targets[i], out, sizeof(out)) && !memchr(out, 0, sizeof(out)))
				abort();
	}
	djroutes__free(t);
}

/*
 * _Py_HashSecret's key (0x00..0x0f) in the image, and sys.modules and threading's dict indexed by
 * SipHash-rounds-(rounds+2) under it, their keys' strs caching their hashes, as CPython makes
 * them (pyimage.h's index_dict): what pythreads__learn_hash learns from and lookups by hash
 * probe. Its address.
 */
static uint64_t mk_secret(struct world *w, unsigned rounds, size_t nmodules)
{
	static const char *const tnames[] = { "_limbo", NULL, "_active", "_main_thread" };
	const char *mnames[64];
	char (*buf)[16] = calloc(64, 16);
	struct py_layout hl = *w->im.l;
	uint64_t secret = alloc(&w->im, 16), md = 0;

	if (!buf)
		abort();
	hl.hash_k0 = 0x0706050403020100ULL;
	hl.hash_k1 = 0x0f0e0d0c0b0a0908ULL;
	hl.hash_rounds = (uint8_t)rounds;
	put64(&w->im, secret, hl.hash_k0);
	put64(&w->im, secret + 8, hl.hash_k1);
	/* mk_world's names: mod0, mod1, ..., threading in the middle */
	for (size_t i = 0; i < nmodules; i++) {
		snprintf(buf[i], 16, "mod%zu", i);
		mnames[i] = buf[i];
	}
	mnames[nmodules / 2] = "threading";
	index_dict(&w->im, &hl, w->modules, mnames, nmodules, 0);
	if (!pythreads__module_dict(w->im.l, &w->mr, w->runtime, "threading", &md))
		index_dict(&w->im, &hl, md, tnames, 4, hash_of(&hl, "gone"));
	free(buf);
	return secret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct world w;
	struct app app;
	uint64_t secret;
	unsigned rounds;

	if (size < 3)
		return 0;
	if (data[1] & 8) {
		struct web web;

		mk_web_world(&w, 8 + data[0] % 8, &web);
		for (size_t i = 3; i + 4 <= size; i += 4)
			patch(&w, data + i);
		read_routes(&w, &web);
		free_world(&w);
		return 0;
	}
	mk_world(&w, 8 + data[0] % 8, data[1] & 1 ? HOME_DICT : HOME_NATURAL, 1 + data[2] % 64);
	mk_app(&w, &app);
	rounds = data[1] & 4 ? 1 : 2;
	secret = mk_secret(&w, rounds, 1 + data[2] % 64);
	for (size_t i = 3; i + 4 <= size; i += 4)
		patch(&w, data + i);
	read_all(&w, &app, w.im.l);
	if (data[1] & 2) {
		/*
		 * The same with dicts looked up by hash: as pythreads__learn_hash learns it from the
		 * secret and the hashes sys.modules' keys cache (set before the patches, SipHash-1-3
		 * or -2-4), or, where the patches left it nothing to learn, as if it had
		 */
		struct py_layout hl = *w.im.l;

		if (pythreads__learn_hash(&hl, &w.mr, w.runtime, secret) ||
		    (hl.hash_rounds != 1 && hl.hash_rounds != 2)) {
			hl = *w.im.l;
			hl.hash_rounds = rounds;
			hl.hash_k0 = 0x0706050403020100ULL;
			hl.hash_k1 = 0x0f0e0d0c0b0a0908ULL;
		}
		read_all(&w, &app, &hl);
	}
	free_world(&w);
	return 0;
}
