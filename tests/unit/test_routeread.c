// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Route tables read from a process's memory (routeread__table over a fake image,
 * tests/common/pyimage.h): Django's urlpatterns and their includes, Starlette's routes and
 * mounts; and object graphs that include themselves, which any process can make and the
 * collector would walk for ever: each read of a table takes a bounded number of reads.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_django),
		cmocka_unit_test(test_django_large),
		cmocka_unit_test(test_django_self_include),
		cmocka_unit_test(test_starlette_self_mount),
	};

	return cmocka_run_group_tests_name("routeread", tests, NULL, NULL);
}
