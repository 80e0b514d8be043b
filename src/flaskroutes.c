// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Flask's URL rules as route names: see flaskroutes.h. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include "flaskroutes.h"
#include "pythreads.h"
#include "symbolize.h"

#define OB_TYPE		8	/* PyObject.ob_type */
#define VAR_SIZE	16	/* PyVarObject.ob_size */
#define LIST_ITEMS	24	/* PyListObject.ob_item */
#define MODULES_MAX	8192	/* sys.modules entries looked at */
#define APP_MODULES_MAX	256	/* of which the app's own, whose globals are looked at */
#define RULES_MAX	64	/* rules of one endpoint */

struct finder {
	const struct py_layout *l;
	const struct mem_reader *mr;
	uint64_t module_type, flask_type;
	uint64_t app;			/* the one found */
	unsigned modules, app_modules, apps;
};

/* Whether a module's file is a library's: the standard library's, or an installed package's. */
static bool library_file(const char *f)
{
	return strstr(f, "/site-packages/") || strstr(f, "/dist-packages/") || strstr(f, "/lib/python3") ||
	       strstr(f, "/lib64/python3");
}

static int global(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct finder *f = ctx;
	uint64_t type;

	if (mem_read_u64(f->mr, value + OB_TYPE, &type) || type != f->flask_type || value == f->app)
		return 0;
	if (!f->app)
		f->app = value;
	f->apps++;	/* distinct ones: the same app under two names is counted once */
	return 0;
}

static int module(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct finder *f = ctx;
	uint64_t type, md, file;
	char path[512];

	if (++f->modules > MODULES_MAX)
		return 1;
	if (mem_read_u64(f->mr, value + OB_TYPE, &type) || type != f->module_type ||
	    mem_read_u64(f->mr, value + f->l->mod_dict, &md) || !md)
		return 0;
	/* built-in modules have no file, libraries' files are where they are installed */
	if (pythreads__dict_get(f->l, f->mr, md, "__file__", &file) ||
	    py_read_str(f->l, f->mr, file, path, sizeof(path)) <= 0 || library_file(path))
		return 0;
	if (++f->app_modules > APP_MODULES_MAX)
		return 1;
	pythreads__dict_foreach(f->l, f->mr, md, global, f);
	return 0;
}

struct rules {
	const struct py_layout *l;
	const struct mem_reader *mr;
	struct djroutes *t;
	unsigned *skipped;
	struct djr_conv_src conv;	/* converters: the Rule's being read */
	int err;
};

/* werkzeug's own converters, where an object's regex cannot be read (werkzeug/routing/converters.py) */
static const char *const builtin_conv[][2] = {
	{ "default", "[^/]+" },
	{ "string", "[^/]+" },
	{ "str", "[^/]+" },	/* djroutes__route_piece's name for a parameter without one */
	{ "int", "\\d+" },
	{ "float", "\\d+\\.\\d+" },
	{ "path", "[^/].*?" },
	{ "uuid", "[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}" },
};

static void rule(struct rules *rs, uint64_t r)
{
	char text[DJROUTES_LABEL_MAX];
	struct djr_piece p;
	uint64_t s, b;
	int64_t v;

	/* build_only rules never match */
	if (!pythreads__attr(rs->l, rs->mr, r, "build_only", &b) && !pythreads__read_long(rs->l, rs->mr, b, &v) && v)
		return;
	if (pythreads__attr(rs->l, rs->mr, r, "rule", &s) || py_read_str(rs->l, rs->mr, s, text, sizeof(text)) <= 0 ||
	    text[0] != '/' || pythreads__attr(rs->l, rs->mr, r, "_converters", &rs->conv.converters)) {
		(*rs->skipped)++;
		return;
	}
	/* the table matches the path after its first '/', and names it "/" + the route */
	if (djroutes__route_piece(text + 1, true, djroutes__conv_regex, &rs->conv, &p) ||
	    djroutes__add(rs->t, &p, 1) == -ENOSPC)
		(*rs->skipped)++;
}

/* One endpoint's rules: a list of Rule objects. */
static int endpoint(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct rules *rs = ctx;
	uint64_t items, v[RULES_MAX];
	int64_t n;

	rs->err = mem_read_u64(rs->mr, value + LIST_ITEMS, &items);
	rs->err = rs->err ?: mem_read(rs->mr, value + VAR_SIZE, &n, sizeof(n));
	if (!rs->err && (n < 0 || n > RULES_MAX))
		rs->err = -EINVAL;
	rs->err = rs->err ?: mem_read(rs->mr, items, v, n * sizeof(v[0]));
	for (int64_t i = 0; !rs->err && i < n; i++)
		rule(rs, v[i]);
	return rs->err ? 1 : 0;
}

int flaskroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
		      struct djroutes *t, unsigned *skipped)
{
	struct finder f = { .l = l, .mr = mr };
	struct rules rs = { .l = l, .mr = mr, .t = t, .skipped = skipped,
			    .conv = { .l = l, .mr = mr, .builtin = builtin_conv,
				      .nbuiltin = sizeof(builtin_conv) / sizeof(builtin_conv[0]) } };
	uint64_t md, fmod, interp, modules, map, hm, byep;
	int64_t v;
	int ret;

	*skipped = 0;
	djroutes__set_unique(t);
	ret = pythreads__module_dict(l, mr, runtime, "flask.app", &md);
	if (ret)
		return ret;
	ret = pythreads__dict_get(l, mr, md, "Flask", &f.flask_type);
	/* the module type, from a module's own object: sys.modules -> "flask.app" */
	ret = ret ?: mem_read_u64(mr, runtime + l->rt_interp_head, &interp);
	ret = ret ?: mem_read_u64(mr, interp + l->is_modules, &modules);
	ret = ret ?: pythreads__dict_get(l, mr, modules, "flask.app", &fmod);
	ret = ret ?: mem_read_u64(mr, fmod + OB_TYPE, &f.module_type);
	ret = ret ?: pythreads__dict_foreach(l, mr, modules, module, &f);
	if (ret)
		return ret == -ENOENT ? -EAGAIN : ret;
	if (!f.app)
		return -EAGAIN;
	if (f.apps > 1)
		return -ENOTSUP;
	ret = pythreads__attr(l, mr, f.app, "url_map", &map);
	if (!ret && !pythreads__attr(l, mr, map, "host_matching", &hm) && !pythreads__read_long(l, mr, hm, &v) && v)
		return -ENOTSUP;
	ret = ret ?: pythreads__attr(l, mr, map, "_rules_by_endpoint", &byep);
	ret = ret ?: pythreads__dict_foreach(l, mr, byep, endpoint, &rs);
	return ret ?: rs.err;
}
