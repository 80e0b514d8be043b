// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Route tables read from a process's memory (routeread__table over a fake image,
 * tests/common/pyimage.h): Django's urlpatterns and their includes (under a uWSGI mount too),
 * Starlette's routes and mounts, Tornado's rules; and object graphs that include themselves,
 * which any process can make and the collector would walk for ever: each read of a table takes
 * a bounded number of reads.
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

#define PYIMAGE_CHECK(cond) assert_true(cond)
#include "../common/pyimage.h"
#include "routeread.h"
#include "djroutes.h"
#include "routes.h"

struct proc_image {
	struct image im;
	struct mem_reader mr;
	uint64_t list_t, module_t, str_t;
};

static void image_init(struct proc_image *p, size_t size)
{
	memset(p, 0, sizeof(*p));
	p->im.l = py_layout__builtin(3, 11);
	assert_non_null(p->im.l);
	p->im.size = size;
	p->im.mem = calloc(1, size);
	assert_non_null(p->im.mem);
	p->im.top = BASE + 64;
	p->mr = (struct mem_reader){ .read = img_read, .ctx = &p->im };
	p->list_t = mk_type(&p->im, "list");
	p->module_t = mk_type(&p->im, "module");
}

/* sys.modules of the named modules (each a module of the given globals), and _PyRuntime. */
static uint64_t modules(struct proc_image *p, const char *const *names, const uint64_t *mods, size_t n)
{
	return mk_runtime(&p->im, mk_str_dict(&p->im, names, mods, n));
}

/* ---- Django ---------------------------------------------------------------------------------- */

struct django {
	struct proc_image p;
	struct djimage dj;
};

static void django_init(struct django *d, size_t size)
{
	image_init(&d->p, size);
	dj_types(&d->dj, &d->p.im);
}

#define path(d, text) dj_path(&(d)->dj, text)
#define include(d, text, list) dj_include(&(d)->dj, text, list)
#define django_runtime(d, list) dj_runtime(&(d)->dj, list)

static int read_table(struct proc_image *p, uint64_t runtime, uint64_t app, unsigned kind, struct djroutes *t,
		      const char **what)
{
	unsigned skipped = 0;

	p->im.reads = 0;
	return routeread__table(p->im.l, &p->mr, runtime, app, kind, t, &skipped, what);
}

/*
 * The table of the process that runtime and app give, read within the budget of reads and given
 * up (a graph that includes itself); kind: the reader that tried it.
 */
static void assert_given_up(struct proc_image *p, uint64_t runtime, uint64_t app, unsigned app_kind,
			    const char *kind)
{
	struct djroutes *t = djroutes__new();
	const char *tried = NULL;

	assert_non_null(t);
	assert_int_equal(read_table(p, runtime, app, app_kind, t, &tried), -ELOOP);
	assert_string_equal(tried, kind);
	assert_true(p->im.reads <= ROUTEREAD_READS_MAX + 1);
	djroutes__free(t);
	free(p->im.mem);
}

static void test_django(void **state)
{
	struct django d;
	struct djroutes *t = djroutes__new();
	const char *kind = NULL;
	char out[256];
	uint64_t api[2], root[3], runtime;

	django_init(&d, 1 << 20);
	api[0] = path(&d, "items/<int:pk>/");
	api[1] = path(&d, "items/");
	root[0] = path(&d, "recipes/");
	root[1] = include(&d, "api/", mk_list(&d.p.im, d.p.list_t, api, 2));
	root[2] = include(&d, "v2/", mk_list(&d.p.im, d.p.list_t, api, 2));	/* the same list twice */
	runtime = django_runtime(&d, mk_list(&d.p.im, d.p.list_t, root, 3));
	assert_int_equal(read_table(&d.p, runtime, 0, 0, t, &kind), 0);
	assert_string_equal(kind, "Django's URL patterns");
	assert_int_equal(djroutes__count(t), 5);
	assert_true(djroutes__match_method(t, "GET", "/api/items/3/", out, sizeof(out)));
	assert_string_equal(out, "/api/items/<int:pk>/");
	assert_true(djroutes__match_method(t, "GET", "/v2/items/", out, sizeof(out)));
	assert_string_equal(out, "/v2/items/");
	assert_false(djroutes__match_method(t, "GET", "/nowhere/", out, sizeof(out)));
	djroutes__free(t);
	free(d.p.im.mem);
}

/*
 * The largest table read whole (DJROUTES_MAX endpoints, in 8 includes), to show what a real
 * urlconf takes against the budget.
 */
static void test_django_large(void **state)
{
	struct django d;
	struct djroutes *t = djroutes__new();
	const char *kind = NULL;
	uint64_t inc[8], *leaf = calloc(DJROUTES_MAX / 8, sizeof(*leaf)), runtime;
	char text[64], out[256];

	django_init(&d, 8 << 20);
	for (int i = 0; i < 8; i++) {
		for (int j = 0; j < DJROUTES_MAX / 8; j++) {
			snprintf(text, sizeof(text), "page-%d/<int:pk>/", j);
			leaf[j] = path(&d, text);
		}
		snprintf(text, sizeof(text), "section-%d/", i);
		inc[i] = include(&d, text, mk_list(&d.p.im, d.p.list_t, leaf, DJROUTES_MAX / 8));
	}
	runtime = django_runtime(&d, mk_list(&d.p.im, d.p.list_t, inc, 8));
	assert_int_equal(read_table(&d.p, runtime, 0, 0, t, &kind), 0);
	assert_int_equal(djroutes__count(t), DJROUTES_MAX);
	assert_true(djroutes__match_method(t, "GET", "/section-7/page-255/9/", out, sizeof(out)));
	assert_string_equal(out, "/section-7/page-255/<int:pk>/");
	print_message("django, %d endpoints: %lu reads\n", DJROUTES_MAX, d.p.im.reads);
	assert_true(d.p.im.reads < ROUTEREAD_READS_MAX / 2);
	free(leaf);
	djroutes__free(t);
	free(d.p.im.mem);
}

/*
 * Under uWSGI with --mount /shop=app.py --manage-script-name, the app sees the path after /shop:
 * the table matches after it, the prefix read from the uwsgi module's opt dict; without
 * --manage-script-name (uWSGI then picks the app by the SCRIPT_NAME a web server sends, and the
 * app sees the whole path) and with several mounts, none
 */
static void test_uwsgi_mount(void **state)
{
	static const char *const on[] = { "mount", "manage-script-name", "master" }, *const un[] = { "opt" },
				 *const names[] = { "django.conf", "site.urls", "uwsgi" };
	struct django d;
	char out[256];

	for (int variant = 0; variant < 3; variant++) {
		struct djroutes *t = djroutes__new();
		const char *kind = NULL;
		uint64_t pat, runtime, bytes_t, opt[3], mods[3], md, interp;

		django_init(&d, 1 << 20);
		bytes_t = mk_type(&d.p.im, "bytes");
		pat = path(&d, "items/<int:pk>/");
		runtime = django_runtime(&d, mk_list(&d.p.im, d.p.list_t, &pat, 1));
		opt[0] = mk_bytes(&d.p.im, bytes_t, "/shop=/srv/app.py");
		if (variant == 2) {	/* two mounts: a list of them */
			uint64_t two[2] = { opt[0], mk_bytes(&d.p.im, bytes_t, "/b=b.py") };

			opt[0] = mk_list(&d.p.im, d.p.list_t, two, 2);
		}
		opt[1] = opt[2] = mk_long(&d.p.im, 1);	/* a flag: True */
		/* variant 1: no --manage-script-name, "master" alone */
		md = mk_str_dict(&d.p.im, variant == 1 ? (const char *const[]){ "mount", "master" } : on,
				 variant == 1 ? (const uint64_t[]){ opt[0], opt[2] } : opt, variant == 1 ? 2 : 3);
		/* sys.modules: dj_runtime's two modules, and uwsgi */
		interp = get64(&d.p.im, runtime + d.p.im.l->rt_interp_head);
		assert_int_equal(pythreads__dict_get(d.p.im.l, &d.p.mr, get64(&d.p.im, interp + d.p.im.l->is_modules),
						     "django.conf", &mods[0]), 0);
		assert_int_equal(pythreads__dict_get(d.p.im.l, &d.p.mr, get64(&d.p.im, interp + d.p.im.l->is_modules),
						     "site.urls", &mods[1]), 0);
		mods[2] = mk_module(&d.p.im, d.p.module_t, un, &md, 1);
		put64(&d.p.im, interp + d.p.im.l->is_modules, mk_str_dict(&d.p.im, names, mods, 3));
		assert_int_equal(read_table(&d.p, runtime, 0, 0, t, &kind), 0);
		assert_string_equal(kind, "Django's URL patterns");
		if (variant == 0) {
			assert_true(djroutes__match_method(t, "GET", "/shop/items/3/", out, sizeof(out)));
			assert_string_equal(out, "/items/<int:pk>/");
			assert_false(djroutes__match_method(t, "GET", "/items/3/", out, sizeof(out)));
		} else {
			assert_true(djroutes__match_method(t, "GET", "/items/3/", out, sizeof(out)));
			assert_false(djroutes__match_method(t, "GET", "/shop/items/3/", out, sizeof(out)));
		}
		djroutes__free(t);
		free(d.p.im.mem);
	}
}

/* A list of includes of itself: LIST_MAX^DJROUTES_DEPTH patterns to walk; the budget ends it. */
static void test_django_self_include(void **state)
{
	struct django d;
	uint64_t items[64] = { 0 }, list;

	django_init(&d, 1 << 20);
	list = mk_list(&d.p.im, d.p.list_t, items, 64);
	fill_list(&d.p.im, list, include(&d, "a/", list), 64);
	assert_given_up(&d.p, django_runtime(&d, list), 0, 0, "Django's URL patterns");
}

/* ---- Starlette ------------------------------------------------------------------------------- */

/* An app whose router's routes are Mounts of that router itself: ROUTES_MAX^MOUNT_DEPTH. */
static void test_starlette_self_mount(void **state)
{
	struct proc_image p;
	static const char *const rn[] = { "routes" }, *const an[] = { "router" }, *const cn[] = { "Starlette" },
				 *const mn[] = { "starlette.applications" },
				 *const mountn[] = { "path_regex", "path_format", "_base_app" };
	uint64_t starlette_t, items[64] = { 0 }, list, router, app, mv[3], mod;

	image_init(&p, 1 << 20);
	starlette_t = mk_type(&p.im, "Starlette");
	list = mk_list(&p.im, p.list_t, items, 64);
	router = mk_obj(&p.im, mk_type(&p.im, "Router"), rn, &list, 1);
	app = mk_obj(&p.im, starlette_t, an, &router, 1);
	mv[0] = mk_re_pattern(&p.im, mk_type(&p.im, "re.Pattern"), "^/a/(?P<path>.*)$");
	mv[1] = mk_str(&p.im, "/a/{path}");
	mv[2] = router;
	fill_list(&p.im, list, mk_obj(&p.im, mk_type(&p.im, "Mount"), mountn, mv, 3), 64);
	mod = mk_module(&p.im, p.module_t, cn, &starlette_t, 1);
	assert_given_up(&p, modules(&p, mn, &mod, 1), app, ROUTE_APP_STARLETTE, "Starlette's routes");
}

/* ---- Tornado --------------------------------------------------------------------------------- */

struct tornado {
	struct proc_image p;
	uint64_t app_t, rule_t, path_t, any_t, host_t, router_t, re_t, handler_t, runtime;
};

static void tornado_init(struct tornado *t)
{
	static const char *const mn[] = { "tornado.web" }, *const cn[] = { "Application" };
	uint64_t mod;

	image_init(&t->p, 1 << 20);
	t->app_t = mk_type(&t->p.im, "Application");
	t->rule_t = mk_type(&t->p.im, "Rule");
	t->path_t = mk_type(&t->p.im, "PathMatches");
	t->any_t = mk_type(&t->p.im, "AnyMatches");
	t->host_t = mk_type(&t->p.im, "HostMatches");
	t->router_t = mk_type(&t->p.im, "_ApplicationRouter");
	t->re_t = mk_type(&t->p.im, "re.Pattern");
	t->handler_t = mk_type(&t->p.im, "ItemHandler");	/* a handler class: a rule's target */
	mod = mk_module(&t->p.im, t->p.module_t, cn, &t->app_t, 1);
	t->runtime = modules(&t->p, mn, &mod, 1);
}

/* Rule(matcher, target) */
static uint64_t tornado_rule(struct tornado *t, uint64_t matcher, uint64_t target)
{
	static const char *const names[] = { "matcher", "target" };
	uint64_t v[2] = { matcher, target };

	return mk_obj(&t->p.im, t->rule_t, names, v, 2);
}

/* PathMatches(pattern) (HostMatches(pattern) if host), its regex compiled */
static uint64_t tornado_matches(struct tornado *t, const char *pattern, bool host)
{
	static const char *const pn[] = { "regex" }, *const hn[] = { "host_pattern" };
	uint64_t re = mk_re_pattern(&t->p.im, t->re_t, pattern);

	return mk_obj(&t->p.im, host ? t->host_t : t->path_t, host ? hn : pn, &re, 1);
}

static uint64_t tornado_router(struct tornado *t, const uint64_t *rules, size_t n)
{
	static const char *const names[] = { "rules" };
	uint64_t list = mk_list(&t->p.im, t->p.list_t, rules, n);

	return mk_obj(&t->p.im, t->router_t, names, &list, 1);
}

static void expect_route(struct djroutes *t, const char *path, const char *name)
{
	char out[256];
	bool named = djroutes__match_method(t, "GET", path, out, sizeof(out));

	if (named != !!name)
		fail_msg("%s: %s, not %s", path, named ? out : "no name", name ? name : "no name");
	if (name)
		assert_string_equal(out, name);
}

/*
 * Application([...]) and add_handlers(r".*", [...]): default_router's rules, a HostMatches rule
 * for any host (first: add_handlers inserts before the last), then the wildcard router's
 */
static void test_tornado(void **state)
{
	static const char *const an[] = { "default_router", "wildcard_router" };
	struct tornado t;
	struct djroutes *tab = djroutes__new();
	const char *kind = NULL;
	uint64_t wild[4], v2, dflt[2], app[2], other;
	unsigned skipped = 0;

	tornado_init(&t);
	wild[0] = tornado_rule(&t, tornado_matches(&t, "/items/(?P<id>\\d+)/$", false), t.handler_t);
	wild[1] = tornado_rule(&t, tornado_matches(&t, "^/(n1|cpu)/([0-9]+)/$", false), t.handler_t);
	wild[2] = tornado_rule(&t, tornado_matches(&t, "/health/$", false), t.handler_t);
	/* not from the path's start: what it takes is not known, nor is any path after it */
	wild[3] = tornado_rule(&t, tornado_matches(&t, "(.*)/legacy/$", false), t.handler_t);
	v2 = tornado_rule(&t, tornado_matches(&t, "/v2/(?P<id>\\d+)/$", false), t.handler_t);
	app[1] = tornado_router(&t, wild, 4);
	dflt[0] = tornado_rule(&t, tornado_matches(&t, ".*$", true), tornado_router(&t, &v2, 1));
	dflt[1] = tornado_rule(&t, mk_obj(&t.p.im, t.any_t, NULL, NULL, 0), app[1]);
	app[0] = tornado_router(&t, dflt, 2);
	assert_int_equal(read_table(&t.p, t.runtime, mk_obj(&t.p.im, t.app_t, an, app, 2), ROUTE_APP_TORNADO, tab,
				    &kind), 0);
	assert_string_equal(kind, "Tornado's rules");
	expect_route(tab, "/v2/7/", "/v2/<id>/");
	expect_route(tab, "/items/5/", "/items/<id>/");
	expect_route(tab, "/items/5/?page=2", "/items/<id>/");
	expect_route(tab, "/cpu/3/", "/(n1|cpu)/([0-9]+)/");
	expect_route(tab, "/health/", "/health/");
	expect_route(tab, "/health/x", NULL);
	expect_route(tab, "/elsewhere/", NULL);
	djroutes__clear(tab);

	/*
	 * a router for one host only, or behind a path: the paths of its rules (its path's) may be
	 * its, for all the tool can tell; the others go on to the rules after it
	 */
	for (int behind_path = 0; behind_path < 2; behind_path++) {
		dflt[0] = tornado_rule(&t, behind_path ? tornado_matches(&t, "/v2/.*", false) :
							 tornado_matches(&t, "example\\.com$", true),
				       tornado_router(&t, &v2, 1));
		app[0] = tornado_router(&t, dflt, 2);
		assert_int_equal(routeread__table(t.p.im.l, &t.p.mr, t.runtime, mk_obj(&t.p.im, t.app_t, an, app, 2),
						  ROUTE_APP_TORNADO, tab, &skipped, &kind), 0);
		assert_int_equal(skipped, 1);	/* the legacy rule */
		expect_route(tab, "/v2/7/", NULL);
		expect_route(tab, "/items/5/", "/items/<id>/");
		expect_route(tab, "/health/", "/health/");
		djroutes__clear(tab);
	}

	/* not an app (the walker read a handler by a recipe that did not fit it): -EINVAL */
	other = mk_obj(&t.p.im, mk_type(&t.p.im, "Application"), an, app, 2);	/* another module's class */
	assert_int_equal(read_table(&t.p, t.runtime, other, ROUTE_APP_TORNADO, tab, &kind), -EINVAL);
	djroutes__free(tab);
	free(t.p.im.mem);
}

/* A router whose rule for any request routes to itself: RULES_MAX^ROUTER_DEPTH; the budget ends it */
static void test_tornado_self_router(void **state)
{
	static const char *const an[] = { "default_router" }, *const rn[] = { "rules" };
	struct tornado t;
	uint64_t items[64] = { 0 }, router, list;

	tornado_init(&t);
	list = mk_list(&t.p.im, t.p.list_t, items, 64);
	router = mk_obj(&t.p.im, t.router_t, rn, &list, 1);
	fill_list(&t.p.im, list, tornado_rule(&t, mk_obj(&t.p.im, t.any_t, NULL, NULL, 0), router), 64);
	assert_given_up(&t.p, t.runtime, mk_obj(&t.p.im, t.app_t, an, &router, 1), ROUTE_APP_TORNADO, "Tornado's rules");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_django),
		cmocka_unit_test(test_django_large),
		cmocka_unit_test(test_uwsgi_mount),
		cmocka_unit_test(test_django_self_include),
		cmocka_unit_test(test_starlette_self_mount),
		cmocka_unit_test(test_tornado),
		cmocka_unit_test(test_tornado_self_router),
	};

	return cmocka_run_group_tests_name("routeread", tests, NULL, NULL);
}
