/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Django's URL patterns as route names ("/recipes/<int:pk>/", "/tags/<slug:tag>/").
 *
 * Django's match of a request (request.resolver_match.route) is a per-request object, out of
 * reach when a WSGI server writes the response (src/routes.h). The patterns it matches against
 * are not: the ROOT_URLCONF module's `urlpatterns`, a list of URLPattern (an endpoint) and
 * URLResolver (include(): a prefix and a list of its own) objects, static once the module is
 * imported. The tool reads them once per process from its memory, through sys.modules:
 *   django.conf.settings._wrapped.ROOT_URLCONF -> sys.modules[it].urlpatterns -> each item's
 *   pattern: a RoutePattern (path(): `_route`, `_is_endpoint`, `converters` whose objects'
 *   classes hold `regex`) or a RegexPattern (re_path(): `_regex`, `_is_endpoint`); a
 *   URLResolver's `urlconf_name` (the included module, or a list) gives its children.
 * (Django 2.0-5.x: django/urls/resolvers.py; Debian 12 packages 3.2.)
 *
 * Each endpoint becomes one POSIX extended regex of its whole path, its prefixes' pieces joined
 * in Django's order, and a name: Django's route as ResolverMatch.route joins it ("recipes/" +
 * "<int:pk>/"), with "/" before it; a re_path's regex keeps its text without its anchors and
 * with its named groups as "<name>" ("^v1/(?P<pk>[0-9]+)/$" -> "v1/<pk>/"). A request's path
 * (without its query, percent-decoded) is named by the first endpoint that matches it, as
 * Django's resolver picks the first. Python's regex syntax is translated where POSIX has the
 * same meaning (\d, \w, \s, (?P<name>...), (?:...), \Z, lazy quantifiers); a pattern using
 * anything else (lookarounds, backreferences, flags, \b) is kept as "opaque": a path that may
 * reach it (starts with the literal text before its first special character) is given no name
 * rather than a later pattern's, and so keeps its folded path. So does a path no pattern
 * matches (a 404), and a converter whose regex cannot be read. i18n_patterns (a
 * LocalePrefixPattern in the root urlconf) are read under each of settings.LANGUAGES' codes (the
 * name then starts with the path's, as Django's route does) and, where prefix_default_language is
 * False, without one too. A converter's to_python() refusing a value (Django then tries the next pattern) is not
 * modelled: the regex alone decides.
 *
 * Not followed: a request.urlconf set by a middleware (per-request urlconfs), patterns changed
 * after they were read (the table is read once per process). A SCRIPT_NAME prefix: where the
 * reader's caller finds one (djroutes__set_prefix; djapps.h, gunicorn's).
 */
#ifndef PYTRACE_DJROUTES_H
#define PYTRACE_DJROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "memread.h"
#include "pylayout.h"

#define DJROUTES_MAX		2048	/* endpoints of one process's urlconf; the rest are not read */
#define DJROUTES_DEPTH		8	/* include() levels followed */
#define DJROUTES_ERE_MAX	1024	/* one endpoint's translated regex */
#define DJROUTES_LABEL_MAX	160	/* its name (HTTP_ROUTE_MAX) */

/* One level of a pattern: a path() route or a re_path() regex, and whether it ends the path. */
struct djr_piece {
	char ere[DJROUTES_ERE_MAX];	/* translated, without its anchors */
	char label[DJROUTES_LABEL_MAX];
	bool anchored;			/* matches at the start of what the levels above left */
	bool end;			/* must end the path ($, \Z, or a path() endpoint) */
	bool opaque;			/* could not be translated; ere holds its literal start */
	bool stop;			/* opaque: the paths it may take are no later endpoint's either
					   (a mounted app's 404), and a method's partial match holds */
	uint16_t methods;		/* the endpoint's (its last piece's) methods, DJR_M_*; 0: any */
	bool lang;			/* an endpoint's first piece: it matches a language's code and
					   '/', which the name takes from the path (i18n_patterns) */
};

/* HTTP methods as bits of struct djr_piece's methods (Starlette's Route.methods). */
enum {
	DJR_M_GET = 1 << 0, DJR_M_HEAD = 1 << 1, DJR_M_POST = 1 << 2, DJR_M_PUT = 1 << 3, DJR_M_DELETE = 1 << 4,
	DJR_M_PATCH = 1 << 5, DJR_M_OPTIONS = 1 << 6, DJR_M_TRACE = 1 << 7, DJR_M_CONNECT = 1 << 8,
	DJR_M_OTHER = 1 << 9,	/* any other name */
};
/* The bit of method (its name, as sent: upper case). */
uint16_t djroutes__method_bit(const char *method);

/*
 * A path() route (Django's syntax: literal text and <converter:name> / <name>) into p. conv_re
 * gives the Python regex of the converter of a parameter (NULL: unknown); ctx is its. 0, or
 * -EINVAL (malformed), -E2BIG (too long); a converter whose regex cannot be translated or is
 * unknown makes p opaque.
 */
typedef const char *(*djr_conv_fn)(void *ctx, const char *converter, const char *param);
int djroutes__route_piece(const char *route, bool is_endpoint, djr_conv_fn conv_re, void *ctx,
			  struct djr_piece *p);
/* Literal text into p (named by it), all of what is left of the path if end: 0, or -E2BIG. */
int djroutes__literal_piece(const char *text, bool end, struct djr_piece *p);
/* A re_path() regex (Python's syntax) into p: 0, or -E2BIG; untranslatable: p opaque. */
int djroutes__regex_piece(const char *regex, bool is_endpoint, struct djr_piece *p);
/*
 * i18n_patterns()' prefix into p: codes, '|'-separated, each a language code as Django's
 * language_code_re allows (letters, digits, '-', '_', '@'): 0, or -EINVAL, -E2BIG.
 */
int djroutes__lang_piece(const char *codes, struct djr_piece *p);
/*
 * Python regex src (a fragment: no anchors handled) as POSIX ERE into out: its length, or
 * -ENOTSUP (no POSIX equivalent), -E2BIG.
 */
int djroutes__py_to_ere(const char *src, char *out, size_t size);

struct djroutes;

/* An empty table; NULL: out of memory. */
struct djroutes *djroutes__new(void);
void djroutes__free(struct djroutes *t);
/* Empty t again, as new (a reader that found nothing to read). */
void djroutes__clear(struct djroutes *t);
/* Move src's content into dst (emptied first), and free src. */
void djroutes__move(struct djroutes *dst, struct djroutes *src);
/*
 * Add the endpoint whose levels, outermost first, are pieces[0..n): 0, -ENOSPC (DJROUTES_MAX
 * reached), -EINVAL (its joined regex does not compile), -E2BIG (it would take regcomp more
 * memory than an endpoint's or the table's budget: about 400 kB, 26 MB; -EINVAL and -E2BIG add
 * it as opaque) or -ENOMEM.
 */
int djroutes__add(struct djroutes *t, const struct djr_piece *pieces, unsigned n);
/*
 * Name a path only by what every endpoint matching it agrees on (werkzeug's rules, which its
 * matcher orders by their static parts, not as declared), not by the first one (Django's).
 */
void djroutes__set_unique(struct djroutes *t);
/*
 * A path that endpoints match but none for the request's method is named by none (aiohttp's
 * 405), not by the first of them (Starlette's).
 */
void djroutes__set_strict_methods(struct djroutes *t);
/*
 * The app is mounted at prefix (a WSGI server's SCRIPT_NAME, "/shop": gunicorn takes it from
 * its environment and gives the app the rest of the path): a request target is matched without
 * it, and one that does not start with it is named by none.
 */
int djroutes__set_prefix(struct djroutes *t, const char *prefix);
unsigned djroutes__count(const struct djroutes *t);
unsigned djroutes__opaque(const struct djroutes *t);
/* Endpoint i's name and regex, for tests and -v. */
const char *djroutes__label(const struct djroutes *t, unsigned i);
const char *djroutes__regex(const struct djroutes *t, unsigned i);
uint16_t djroutes__methods(const struct djroutes *t, unsigned i);
bool djroutes__lang(const struct djroutes *t, unsigned i);
/* How endpoint i is matched, for tests: 0 by its regex, 1 any path starting with its literal, 2 exactly it. */
int djroutes__literal(const struct djroutes *t, unsigned i);
/* A hash of the table's content: processes of one app (a server's workers) share one table. */
uint64_t djroutes__hash(const struct djroutes *t);
bool djroutes__same(const struct djroutes *a, const struct djroutes *b);

/*
 * The name of a request for target (its request target as sent: path and query) into out: true,
 * or false if no endpoint names it surely (no match, an opaque pattern may be the framework's, or
 * in a table set unique, endpoints of two names match).
 */
bool djroutes__match(const struct djroutes *t, const char *target, char *out, size_t size);
/*
 * The same for a request of method (NULL: any): in a first-match table, an endpoint that matches
 * the path but not the method (struct djr_piece's methods) is passed over for a later one that
 * matches both, and names the request only if none does (Starlette's Router: a partial match,
 * which answers 405 through that route; in a table set strict, none).
 */
bool djroutes__match_method(const struct djroutes *t, const char *method, const char *target, char *out,
			    size_t size);

/*
 * Read the urlconf of the process that mr reads (layout l, _PyRuntime at runtime) into t:
 * 0 (some endpoints, or none: an empty urlconf), -ENOENT (Django is not imported: not a Django
 * process, or not yet), -EAGAIN (Django is not set up yet: its settings or urlconf module not
 * loaded), or -errno of a read (a torn read: try again later). *skipped counts patterns not
 * read (DJROUTES_MAX, DJROUTES_DEPTH, objects of unknown kinds).
 */
int djroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
		   struct djroutes *t, unsigned *skipped);
/*
 * The app objects of a process: module-level instances of the class cls of module (or of a
 * subclass of it, up to 8 levels) among the globals of the process's own modules, those whose
 * __file__ is not in a site-packages, dist-packages or the standard library's directory. At most
 * max distinct ones into apps; their number (maybe more than max), or -ENOENT (module not
 * imported), -EAGAIN (no interpreter yet) or -errno of a read.
 */
int djroutes__find_apps(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			const char *module, const char *cls, uint64_t *apps, unsigned max);
/* Whether obj is an instance of module.cls or of a subclass (8 levels): 0 (it is), 1 (not) or -errno. */
int djroutes__is_instance(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t obj,
			  const char *module, const char *cls);
/*
 * fn(ctx, item, depth) for each item of the list at list (its first max, read at once), until fn
 * returns non-zero: 0, what fn returned, or -errno of the list's read (-E2BIG: longer than max).
 * A reader's walk of a level of its routes (depth: the level's).
 */
typedef int (*djr_item_fn)(void *ctx, uint64_t item, unsigned depth);
int djroutes__list_each(const struct py_layout *l, const struct mem_reader *mr, uint64_t list, unsigned max,
			djr_item_fn fn, void *ctx, unsigned depth);
/* Whether type is module.cls or a subclass of it (8 levels): 0 (it is), 1 (not) or -errno. */
int djroutes__is_subclass(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t type,
			  const char *module, const char *cls);
/* Whether obj's type is named name: 1, 0 (another), or -errno (unreadable). */
int djroutes__type_is(const struct mem_reader *mr, uint64_t obj, const char *name);
/* Whether a reader's error is a torn read (the target's memory moved or went): try again later. */
bool djroutes__torn(int err);
/*
 * An entry that names nothing (opaque) for the paths starting with the literal lit (after the
 * path's '/'): a resource or route of a kind not understood, which may take them; stop: they are
 * no later endpoint's either (a mounted app's 404), and a method's partial match before it holds.
 */
void djroutes__add_stopper(struct djroutes *t, const char *lit, bool stop);
/* Add the one-piece endpoint p, counted in *skipped where DJROUTES_MAX is reached. */
void djroutes__add_one(struct djroutes *t, const struct djr_piece *p, unsigned *skipped);
/*
 * A resource or route a reader could not read or does not know (err: why): a torn read's error
 * is returned (the whole read is tried again later); else it counts in *skipped, the paths
 * starting with lit, which it may take, are named by nothing (djroutes__add_stopper), and 0.
 */
int djroutes__unknown(struct djroutes *t, unsigned *skipped, int err, const char *lit);
/*
 * The source of the compiled regex at pat (an re.Pattern: _sre's PatternObject.pattern) into buf:
 * 0, -ENOTSUP (not an re.Pattern, or its source not a str) or -errno of a read.
 */
int djroutes__pattern_source(const struct py_layout *l, const struct mem_reader *mr, uint64_t pat, char *buf,
			     size_t size);
/* The str attribute attr of obj into buf (UTF-8, cut to size): 0 or -errno. */
int djroutes__str_attr(const struct py_layout *l, const struct mem_reader *mr, uint64_t obj, const char *attr,
		       char *buf, size_t size);
/*
 * Where a reader finds a parameter's converter: the dict converters of the pattern being read
 * (parameter -> converter object, set per pattern), and the framework's own converters by name,
 * where an object's regex cannot be read. A reader keeps one, and gives it as ctx to
 * djroutes__route_piece with djroutes__conv_regex.
 */
struct djr_conv_src {
	const struct py_layout *l;
	const struct mem_reader *mr;
	const char *const (*builtin)[2];	/* { name, Python regex } */
	size_t nbuiltin;
	uint64_t converters;
	char buf[256];				/* the regex read */
};
/*
 * A djr_conv_fn (ctx: a struct djr_conv_src): the Python regex of the converter of parameter
 * param (named converter in the pattern): the object's own `regex`, else its class's, else the
 * builtin of that name; or NULL.
 */
const char *djroutes__conv_regex(void *ctx, const char *converter, const char *param);

#endif
