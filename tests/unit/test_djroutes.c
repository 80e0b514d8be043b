// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Django's URL patterns: Python regexes as POSIX, routes and re_paths joined, paths named. */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "djroutes.h"

/* glibc's mallinfo2 counts its own heap: under ASan, whose allocator replaces it, nothing */
#if defined(__SANITIZE_ADDRESS__)
#define MALLINFO_COUNTS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MALLINFO_COUNTS 0
#endif
#endif
#ifndef MALLINFO_COUNTS
#define MALLINFO_COUNTS 1
#endif

static const char *builtin(void *ctx, const char *conv, const char *param)
{
	if (!strcmp(conv, "int"))
		return "[0-9]+";
	if (!strcmp(conv, "str"))
		return "[^/]+";
	if (!strcmp(conv, "slug"))
		return "[-a-zA-Z0-9_]+";
	if (!strcmp(conv, "path"))
		return ".+";
	if (!strcmp(conv, "year"))
		return "[0-9]{4}";
	if (!strcmp(conv, "uuid"))
		return "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
	if (!strcmp(conv, "weird"))
		return "(?=x)x";	/* a lookahead: no POSIX equivalent */
	return NULL;
}

static void expect_ere(const char *py, const char *ere)
{
	char out[256];
	int n = djroutes__py_to_ere(py, out, sizeof(out));

	if (!ere) {
		assert_int_equal(n, -ENOTSUP);
		return;
	}
	assert_int_equal(n, (int)strlen(ere));
	assert_string_equal(out, ere);
}

static void test_py_to_ere(void **state)
{
	expect_ere("[0-9]+", "[0-9]+");
	expect_ere("[-a-zA-Z0-9_]+", "[-a-zA-Z0-9_]+");
	expect_ere("\\d{4}/\\w+", "[0-9]{4}/[[:alnum:]_]+");
	expect_ere("(?P<pk>\\d+)/(?:edit|view)/", "([0-9]+)/(edit|view)/");
	expect_ere("a.*?b+?c??", "a.*b+c?");
	expect_ere("[\\w-]+\\.json", "[[:alnum:]_-]+\\.json");
	expect_ere("[\\-\\d]", "[0-9-]");
	expect_ere("\\/a\\-b\\_", "/a-b_");
	expect_ere("x{", "x\\{");
	expect_ere("[]a]", "[]a]");
	expect_ere("a\\Z", "a$");
	/* no POSIX equivalent */
	expect_ere("(?=a)", NULL);
	expect_ere("(?P=x)", NULL);
	expect_ere("(?i)abc", NULL);
	expect_ere("\\bword", NULL);
	expect_ere("(a)\\1", NULL);
	expect_ere("[[:alpha:]]", NULL);
	expect_ere("a*+", NULL);
	expect_ere("[abc", NULL);
	expect_ere("[\\D]", NULL);
	/* bounded repetitions are copied by regcomp: counts capped, a group's more so */
	expect_ere("[0-9a-f]{8}-[0-9a-f]{12}", "[0-9a-f]{8}-[0-9a-f]{12}");
	expect_ere("x{64}", "x{64}");
	expect_ere("x{1,65}", NULL);
	expect_ere("(ab){16}(c){2,3}", "(ab){16}(c){2,3}");
	expect_ere("(ab){17}", NULL);
	expect_ere("(a){2}(b){2}(c){2}", NULL);
	/* a count after a quantifier: Python's "multiple repeat" (regcomp: 148 MB for this one) */
	expect_ere("a{64}{64}{64}", NULL);
	expect_ere("a*{2}", NULL);
	expect_ere("a{2}?", "a{2}");
}

static void test_pieces(void **state)
{
	struct djr_piece p;

	assert_int_equal(djroutes__route_piece("recipes/<int:pk>/", true, builtin, NULL, &p), 0);
	assert_string_equal(p.ere, "recipes/([0-9]+)/");
	assert_string_equal(p.label, "recipes/<int:pk>/");
	assert_true(p.anchored && p.end && !p.opaque);
	/* no converter: str; special characters of the route's text are escaped */
	assert_int_equal(djroutes__route_piece("v1.0/<name>+x/", false, builtin, NULL, &p), 0);
	assert_string_equal(p.ere, "v1\\.0/([^/]+)\\+x/");
	assert_false(p.end);
	/* an unknown converter, or one whose regex cannot be translated: opaque, its literal start kept */
	assert_int_equal(djroutes__route_piece("a.b/<nope:x>/", true, builtin, NULL, &p), 0);
	assert_true(p.opaque);
	assert_string_equal(p.ere, "a\\.b/");
	assert_int_equal(djroutes__route_piece("w/<weird:x>/", true, builtin, NULL, &p), 0);
	assert_true(p.opaque);
	assert_int_equal(djroutes__route_piece("bad/<int:x/", true, builtin, NULL, &p), -EINVAL);

	assert_int_equal(djroutes__regex_piece("^v1/recipes/(?P<pk>[0-9]+)/$", true, &p), 0);
	assert_string_equal(p.ere, "v1/recipes/([0-9]+)/");
	assert_string_equal(p.label, "v1/recipes/<pk>/");
	assert_true(p.anchored && p.end && !p.opaque);
	/* an endpoint ending with '$' is a fullmatch: anchored even without '^' */
	assert_int_equal(djroutes__regex_piece("feed\\.xml$", true, &p), 0);
	assert_true(p.anchored && p.end);
	/* a prefix without '^' is searched for */
	assert_int_equal(djroutes__regex_piece("api/", false, &p), 0);
	assert_false(p.anchored || p.end);
	assert_int_equal(djroutes__regex_piece("^x\\Z", true, &p), 0);
	assert_true(p.anchored && p.end);
	assert_string_equal(p.ere, "x");
	/* an escaped '$' is text; Django still wants all of the path */
	assert_int_equal(djroutes__regex_piece("^cost\\$", true, &p), 0);
	assert_string_equal(p.ere, "cost\\$");
	assert_true(p.end);
	assert_int_equal(djroutes__regex_piece("^(?P<a>x(y)z)(?P<b>[)]+)end/$", true, &p), 0);
	assert_string_equal(p.label, "<a><b>end/");
	/* literal text (aiohttp's plain resources): every special character escaped */
	assert_int_equal(djroutes__literal_piece("a.b/(c)*", true, &p), 0);
	assert_string_equal(p.ere, "a\\.b/\\(c\\)\\*");
	assert_string_equal(p.label, "a.b/(c)*");
	assert_true(p.anchored && p.end && !p.opaque);
	assert_int_equal(djroutes__regex_piece("^blog/(?=x)", false, &p), 0);
	assert_true(p.opaque);
	assert_string_equal(p.ere, "blog/");
}

/* path(route) as a table's endpoint of its own */
static void add_path(struct djroutes *t, const char *route)
{
	struct djr_piece p;

	assert_int_equal(djroutes__route_piece(route, true, builtin, NULL, &p), 0);
	assert_int_equal(djroutes__add(t, &p, 1), 0);
}

static struct djroutes *demo(void)
{
	struct djroutes *t = djroutes__new();
	struct djr_piece p[3];

	assert_non_null(t);
	/* path(""), path("recipes/"), path("recipes/<int:pk>/"), path("tags/<slug:tag>/") */
	add_path(t, "");
	add_path(t, "recipes/");
	add_path(t, "recipes/<int:pk>/");
	add_path(t, "tags/<slug:tag>/");
	/* include("api/", [re_path(r"^v1/recipes/(?P<pk>[0-9]+)/$"), path("<path:rest>")]) */
	assert_int_equal(djroutes__route_piece("api/", false, builtin, NULL, &p[0]), 0);
	assert_int_equal(djroutes__regex_piece("^v1/recipes/(?P<pk>[0-9]+)/$", true, &p[1]), 0);
	assert_int_equal(djroutes__add(t, p, 2), 0);
	assert_int_equal(djroutes__route_piece("<path:rest>", true, builtin, NULL, &p[1]), 0);
	assert_int_equal(djroutes__add(t, p, 2), 0);
	/* re_path(r"^blog/(?=x)") (opaque), then path("blog/<slug:s>/") after it */
	assert_int_equal(djroutes__regex_piece("^blog/(?=x)", true, &p[0]), 0);
	assert_int_equal(djroutes__add(t, p, 1), 0);
	add_path(t, "blog/<slug:s>/");
	/* an unanchored prefix: re_path(r"shop/", include([path("<int:id>/")])) */
	assert_int_equal(djroutes__regex_piece("shop/", false, &p[0]), 0);
	assert_int_equal(djroutes__route_piece("<int:id>/", true, builtin, NULL, &p[1]), 0);
	assert_int_equal(djroutes__add(t, p, 2), 0);
	return t;
}

static void expect_name(const struct djroutes *t, const char *target, const char *name)
{
	char out[DJROUTES_LABEL_MAX] = "";
	bool ok = djroutes__match(t, target, out, sizeof(out));

	if (ok != !!name)
		fail_msg("%s: %s, not %s", target, ok ? out : "no name", name ? name : "no name");
	if (!name)
		return;
	assert_string_equal(out, name);
}

static void test_match(void **state)
{
	struct djroutes *t = demo();

	assert_int_equal(djroutes__count(t), 9);
	assert_int_equal(djroutes__opaque(t), 1);
	assert_string_equal(djroutes__regex(t, 2), "^(recipes/([0-9]+)/)$");
	assert_string_equal(djroutes__label(t, 4), "/api/v1/recipes/<pk>/");
	assert_null(djroutes__regex(t, 6));
	expect_name(t, "/", "/");
	expect_name(t, "/recipes/", "/recipes/");
	expect_name(t, "/recipes/?page=2", "/recipes/");
	expect_name(t, "/recipes/42/", "/recipes/<int:pk>/");
	expect_name(t, "/recipes/42", NULL);	/* no slash: Django redirects, no pattern */
	expect_name(t, "/recipes/x/", NULL);
	expect_name(t, "/tags/quick-dinner/", "/tags/<slug:tag>/");
	expect_name(t, "/tags/quick%2Ddinner/", "/tags/<slug:tag>/");	/* decoded first */
	expect_name(t, "/tags/a b/", NULL);
	expect_name(t, "/tags/x%00/", NULL);
	expect_name(t, "http://example.com/tags/a/", "/tags/<slug:tag>/");
	/* the first match wins, in Django's order */
	expect_name(t, "/api/v1/recipes/7/", "/api/v1/recipes/<pk>/");
	expect_name(t, "/api/v1/recipes/7/x", "/api/<path:rest>");
	/* a path that may be the opaque pattern's has no name; one that cannot be, has */
	expect_name(t, "/blog/hello/", NULL);
	expect_name(t, "/shop/12/", "/shop/<int:id>/");
	expect_name(t, "/a/shop/12/", "/shop/<int:id>/");	/* searched for, as Django does */
	expect_name(t, "/nothing/", NULL);
	expect_name(t, "recipes/", NULL);
	djroutes__free(t);
}

/* Routes whose regex is all literal are matched by comparison: the same answers as regexec's. */
static void test_literal(void **state)
{
	struct djroutes *t = djroutes__new();
	struct djr_piece p[2];

	assert_non_null(t);
	/* path(""), path("recipes/"): exact */
	add_path(t, "");
	add_path(t, "recipes/");
	/* include("api/", [path("v1/health/")]): two literal pieces, exact */
	assert_int_equal(djroutes__route_piece("api/", false, builtin, NULL, &p[0]), 0);
	assert_int_equal(djroutes__route_piece("v1/health/", true, builtin, NULL, &p[1]), 0);
	assert_int_equal(djroutes__add(t, p, 2), 0);
	/* re_path(r"^a\.b/$"): an escaped dot is a literal dot */
	assert_int_equal(djroutes__regex_piece("^a\\.b/$", true, &p[0]), 0);
	assert_int_equal(djroutes__add(t, p, 1), 0);
	/* re_path(r"^legacy/"): no '$', every path under it */
	assert_int_equal(djroutes__regex_piece("^legacy/", true, &p[0]), 0);
	assert_int_equal(djroutes__add(t, p, 1), 0);
	/* literal start, then a converter: the regex */
	add_path(t, "recipes/<int:pk>/");
	/* a quantifier: not literal (r"^x+/$" matches "xx/") */
	assert_int_equal(djroutes__regex_piece("^x+/$", true, &p[0]), 0);
	assert_int_equal(djroutes__add(t, p, 1), 0);
	/* an unanchored include (Python's search()), then a literal endpoint: not literal */
	assert_int_equal(djroutes__regex_piece("shop/", false, &p[0]), 0);
	assert_int_equal(djroutes__route_piece("list/", true, builtin, NULL, &p[1]), 0);
	assert_int_equal(djroutes__add(t, p, 2), 0);

	assert_int_equal(djroutes__literal(t, 0), 2);
	assert_int_equal(djroutes__literal(t, 1), 2);
	assert_int_equal(djroutes__literal(t, 2), 2);
	assert_int_equal(djroutes__literal(t, 3), 2);
	assert_int_equal(djroutes__literal(t, 4), 1);
	assert_int_equal(djroutes__literal(t, 5), 0);
	assert_int_equal(djroutes__literal(t, 6), 0);
	assert_int_equal(djroutes__literal(t, 7), 0);
	assert_int_equal(djroutes__literal(t, 99), 0);

	expect_name(t, "/", "/");
	expect_name(t, "/recipes/", "/recipes/");
	expect_name(t, "/recipes/?q=1", "/recipes/");
	expect_name(t, "/recipes/x", NULL);	/* the prefix alone is not the route */
	expect_name(t, "/recipes/7/", "/recipes/<int:pk>/");
	expect_name(t, "/api/v1/health/", "/api/v1/health/");
	expect_name(t, "/api/v1/health/x", NULL);
	expect_name(t, "/api/v1/healt", NULL);
	expect_name(t, "/a.b/", "/a\\.b/");
	expect_name(t, "/aXb/", NULL);
	expect_name(t, "/legacy/", "/legacy/");
	expect_name(t, "/legacy/any/thing", "/legacy/");
	expect_name(t, "/xx/", "/x+/");
	expect_name(t, "/my/shop/list/", "/shop/list/");
	expect_name(t, "/shop/list/", "/shop/list/");
	expect_name(t, "/shop/list/x", NULL);
	djroutes__free(t);
}

/* werkzeug's way: a path is named only when every rule matching it has the same name */
static void test_unique(void **state)
{
	struct djroutes *t = djroutes__new(), *first = djroutes__new();
	const char *const rules[] = { "u/<name>/", "u/me/", "books/<int:pk>/", "books/<int:pk>/", "l/<weird:w>/" };
	struct djr_piece p;

	djroutes__set_unique(t);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		assert_int_equal(djroutes__route_piece(rules[i], true, builtin, NULL, &p), 0);
		assert_int_equal(djroutes__add(t, &p, 1), 0);
		assert_int_equal(djroutes__add(first, &p, 1), 0);
	}
	expect_name(t, "/u/bob/", "/u/<name>/");
	expect_name(t, "/u/me/", NULL);			/* two names */
	expect_name(first, "/u/me/", "/u/<name>/");	/* Django's: the first */
	expect_name(t, "/books/3/", "/books/<int:pk>/");	/* two rules, one name (two methods) */
	expect_name(t, "/l/x/", NULL);
	assert_false(djroutes__same(t, first));
	djroutes__free(t);
	djroutes__free(first);
}

/* Starlette's Router: the first route that allows the method, else the first that matches the path */
static void expect_method(const struct djroutes *t, const char *method, const char *target, const char *name)
{
	char out[DJROUTES_LABEL_MAX] = "";
	bool ok = djroutes__match_method(t, method, target, out, sizeof(out));

	if (ok != !!name)
		fail_msg("%s %s: %s, not %s", method, target, ok ? out : "no name", name ? name : "no name");
	if (name)
		assert_string_equal(out, name);
}

static void test_methods(void **state)
{
	struct djroutes *t = djroutes__new(), *h = djroutes__new(), *u = djroutes__new();
	struct djr_piece p;

	assert_int_equal(djroutes__method_bit("GET"), DJR_M_GET);
	assert_int_equal(djroutes__method_bit("CONNECT"), DJR_M_CONNECT);
	assert_int_equal(djroutes__method_bit("PROPFIND"), DJR_M_OTHER);
	assert_int_equal(djroutes__method_bit("get"), DJR_M_OTHER);	/* methods are case-sensitive */
	/* Route("/items/{iid:int}/", methods=["GET"]) (and HEAD), Route("/items/{name}/", methods=["POST"]) */
	assert_int_equal(djroutes__regex_piece("^items/(?P<iid>[0-9]+)/$", true, &p), 0);
	strcpy(p.label, "items/{iid}/");
	p.methods = DJR_M_GET | DJR_M_HEAD;
	assert_int_equal(djroutes__add(t, &p, 1), 0);
	assert_int_equal(djroutes__add(h, &p, 1), 0);
	assert_int_equal(djroutes__add(u, &p, 1), 0);
	assert_int_equal(djroutes__methods(t, 0), DJR_M_GET | DJR_M_HEAD);
	assert_int_equal(djroutes__regex_piece("^items/(?P<name>[^/]+)/$", true, &p), 0);
	strcpy(p.label, "items/{name}/");
	p.methods = DJR_M_POST;
	assert_int_equal(djroutes__add(t, &p, 1), 0);
	assert_int_equal(djroutes__add(h, &p, 1), 0);
	assert_int_equal(djroutes__add(u, &p, 1), 0);
	expect_method(t, "GET", "/items/3/", "/items/{iid}/");
	expect_method(t, "HEAD", "/items/3/", "/items/{iid}/");
	expect_method(t, "POST", "/items/3/", "/items/{name}/");	/* passed over for the next */
	expect_method(t, "PUT", "/items/3/", "/items/{iid}/");		/* 405, through the first */
	expect_method(t, "GET", "/items/abc/", "/items/{name}/");	/* 405, through the only one */
	expect_method(t, NULL, "/items/abc/", "/items/{name}/");	/* method unknown: any */
	expect_method(t, NULL, "/items/3/", "/items/{iid}/");
	/* a Host after them, which may take any path: a partial match no longer names it */
	assert_int_equal(djroutes__literal_piece("", false, &p), 0);
	p.opaque = true;
	assert_int_equal(djroutes__add(h, &p, 1), 0);
	expect_method(h, "POST", "/items/3/", "/items/{name}/");	/* a full match before it */
	expect_method(h, "PUT", "/items/3/", NULL);
	/* a mounted router's end (stop): its 405 holds, its 404 is no later route's */
	assert_int_equal(djroutes__literal_piece("items/", false, &p), 0);
	p.opaque = p.stop = true;
	assert_int_equal(djroutes__add(u, &p, 1), 0);
	assert_int_equal(djroutes__route_piece("items/x/y/", true, builtin, NULL, &p), 0);
	assert_int_equal(djroutes__add(u, &p, 1), 0);
	expect_method(u, "PUT", "/items/3/", "/items/{iid}/");
	expect_method(u, "GET", "/items/x/y/", NULL);
	assert_false(djroutes__same(h, u));
	/* aiohttp's: a path no endpoint allows the method of is a 405, named by none */
	djroutes__set_strict_methods(u);
	expect_method(u, "PUT", "/items/3/", NULL);
	expect_method(u, "POST", "/items/3/", "/items/{name}/");
	/* a table set unique (werkzeug's) does not look at methods */
	djroutes__set_unique(t);
	expect_method(t, "POST", "/items/3/", NULL);			/* two names */
	/* moved, a table's content is another's */
	{
		struct djroutes *m = djroutes__new();
		unsigned n = djroutes__count(u);

		djroutes__move(m, u);
		u = NULL;
		assert_int_equal(djroutes__count(m), n);
		expect_method(m, "PUT", "/items/3/", NULL);	/* strict moved too */
		expect_method(m, "GET", "/items/3/", "/items/{iid}/");
		djroutes__free(m);
	}
	/* cleared, a table is as new */
	djroutes__clear(t);
	assert_int_equal(djroutes__count(t), 0);
	expect_method(t, "GET", "/items/3/", NULL);
	djroutes__free(t);
	djroutes__free(h);
	djroutes__free(u);
}

/* i18n_patterns: a first piece matching a language's code, which the name takes from the path */
static void test_lang(void **state)
{
	struct djroutes *t = djroutes__new(), *u = djroutes__new();
	struct djr_piece p[2];

	/* codes are what Django's language_code_re allows: never an ERE of the process's making */
	assert_int_equal(djroutes__lang_piece("(fr)*", &p[0]), -EINVAL);
	assert_int_equal(djroutes__lang_piece("fr||de", &p[0]), -EINVAL);
	assert_int_equal(djroutes__lang_piece("fr|", &p[0]), -EINVAL);
	assert_int_equal(djroutes__lang_piece("", &p[0]), -EINVAL);
	assert_int_equal(djroutes__lang_piece("fr|pt-br", &p[0]), 0);
	assert_string_equal(p[0].ere, "(fr|pt-br)/");
	assert_true(p[0].anchored && p[0].lang);
	assert_int_equal(djroutes__route_piece("news/<slug:s>/", true, builtin, NULL, &p[1]), 0);
	assert_int_equal(djroutes__add(t, p, 2), 0);
	assert_true(djroutes__lang(t, 0));
	assert_string_equal(djroutes__label(t, 0), "/news/<slug:s>/");
	expect_name(t, "/fr/news/hello/", "/fr/news/<slug:s>/");
	expect_name(t, "/pt-br/news/hello/?page=2", "/pt-br/news/<slug:s>/");
	expect_name(t, "/de/news/hello/", NULL);
	expect_name(t, "/news/hello/", NULL);
	/* a name cut to the buffer */
	{
		char out[8];

		assert_true(djroutes__match(t, "/fr/news/hello/", out, sizeof(out)));
		assert_string_equal(out, "/fr/new");
	}
	/* the same table without the mark is another table */
	p[0].lang = false;
	assert_int_equal(djroutes__add(u, p, 2), 0);
	assert_false(djroutes__lang(u, 0));
	expect_name(u, "/fr/news/hello/", "/news/<slug:s>/");
	assert_false(djroutes__same(t, u));
	djroutes__free(t);
	djroutes__free(u);
}

/* The table's regexes held to a budget of regcomp's memory, however many their pieces */
static void test_budget(void **state)
{
	struct djroutes *t = djroutes__new();
	struct mallinfo2 before = mallinfo2();
	struct djr_piece p[3], uuid[2];
	unsigned compiled = 0;
	size_t used;

	/* each piece within the caps, an endpoint of three: 3,135 atoms (115 kB per piece) */
	for (int i = 0; i < 3; i++)
		assert_int_equal(djroutes__regex_piece("^((x{64}){16}|b)/", i == 2, &p[i]), 0);
	for (unsigned i = 0; i < DJROUTES_MAX; i++) {
		int ret = djroutes__add(t, p, 3);

		assert_true(ret == 0 || ret == -E2BIG);
		compiled += !ret;
	}
	used = mallinfo2().uordblks - before.uordblks;
	/* without the budget: all 2,048, some 700 MB */
	assert_int_equal(djroutes__count(t), DJROUTES_MAX);
	assert_int_equal(djroutes__opaque(t), DJROUTES_MAX - compiled);
	assert_in_range(compiled, 60, 90);
	if (MALLINFO_COUNTS)
		assert_in_range(used, 1, 40 << 20);
	/* the kept ones still name, the first of them */
	expect_name(t, "/b/b/b/", "/((x{64}){16}|b)/((x{64}){16}|b)/((x{64}){16}|b)/");
	expect_name(t, "/b/b/", NULL);
	djroutes__clear(t);
	/* one piece of ((x{64}){16}){16}: 16,400 atoms, over an endpoint's budget */
	assert_int_equal(djroutes__regex_piece("^(((x{64}){16}){16})$", true, &p[0]), 0);
	assert_int_equal(djroutes__add(t, p, 1), -E2BIG);
	assert_int_equal(djroutes__opaque(t), 1);
	djroutes__clear(t);
	/* a large real table is untouched: 2,048 endpoints with a UUID in two pieces */
	assert_int_equal(djroutes__route_piece("orders/<uuid:id>/", false, builtin, NULL, &uuid[0]), 0);
	assert_int_equal(djroutes__route_piece("lines/<uuid:line>/", true, builtin, NULL, &uuid[1]), 0);
	for (unsigned i = 0; i < DJROUTES_MAX; i++)
		assert_int_equal(djroutes__add(t, uuid, 2), 0);
	assert_int_equal(djroutes__opaque(t), 0);
	expect_name(t, "/orders/0b6a3fd2-6f2b-4a8e-9a55-2f5d1e0c9a11/lines/5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f/",
		    "/orders/<uuid:id>/lines/<uuid:line>/");
	djroutes__free(t);
}

/* A WSGI app mounted at SCRIPT_NAME: paths are matched after it */
static void test_prefix(void **state)
{
	struct djroutes *t = djroutes__new(), *u = djroutes__new();
	struct djr_piece p;

	assert_int_equal(djroutes__route_piece("books/<int:pk>/", true, builtin, NULL, &p), 0);
	assert_int_equal(djroutes__add(t, &p, 1), 0);
	assert_int_equal(djroutes__add(u, &p, 1), 0);
	assert_true(djroutes__same(t, u));
	assert_int_equal(djroutes__set_prefix(t, "/shop"), 0);
	assert_false(djroutes__same(t, u));
	assert_true(djroutes__hash(t) != djroutes__hash(u));
	expect_name(t, "/shop/books/2/", "/books/<int:pk>/");
	expect_name(t, "http://example.org/shop/books/2/?x=1", "/books/<int:pk>/");
	expect_name(t, "/books/2/", NULL);		/* not under the prefix */
	expect_name(t, "/shopping/books/2/", NULL);
	expect_name(t, "/shop", NULL);
	expect_name(u, "/books/2/", "/books/<int:pk>/");
	assert_int_equal(djroutes__set_prefix(u, "/shop"), 0);
	assert_true(djroutes__same(t, u));
	assert_int_equal(djroutes__hash(t), djroutes__hash(u));
	assert_int_equal(djroutes__set_prefix(u, NULL), 0);	/* none again */
	expect_name(u, "/books/2/", "/books/<int:pk>/");
	djroutes__free(t);
	djroutes__free(u);
}

static void test_share(void **state)
{
	struct djroutes *a = demo(), *b = demo(), *c = djroutes__new();
	struct djr_piece p;

	assert_true(djroutes__same(a, b));
	assert_int_equal(djroutes__hash(a), djroutes__hash(b));
	assert_int_equal(djroutes__route_piece("x/", true, builtin, NULL, &p), 0);
	assert_int_equal(djroutes__add(c, &p, 1), 0);
	assert_false(djroutes__same(a, c));
	/* the cap */
	for (unsigned i = 1; i < DJROUTES_MAX; i++)
		assert_int_equal(djroutes__add(c, &p, 1), 0);
	assert_int_equal(djroutes__add(c, &p, 1), -ENOSPC);
	assert_int_equal(djroutes__count(c), DJROUTES_MAX);
	djroutes__free(a);
	djroutes__free(b);
	djroutes__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_py_to_ere),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_literal),
		cmocka_unit_test(test_unique),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_lang),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_share),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
