// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Flask's URL rules as route names: see flaskroutes.h. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include "flaskroutes.h"
#include "pythreads.h"
#include "symbolize.h"

#define VAR_SIZE	16	/* PyVarObject.ob_size */
#define LIST_ITEMS	24	/* PyListObject.ob_item */
#define RULES_MAX	64	/* rules of one endpoint */

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

/* The rules of the Flask app at app into t. */
static int read_app(const struct py_layout *l, const struct mem_reader *mr, uint64_t app, struct djroutes *t,
		    unsigned *skipped)
{
	struct rules rs = { .l = l, .mr = mr, .t = t, .skipped = skipped,
			    .conv = { .l = l, .mr = mr, .builtin = builtin_conv,
				      .nbuiltin = sizeof(builtin_conv) / sizeof(builtin_conv[0]) } };
	uint64_t map, hm, byep;
	int64_t v;
	int ret;

	*skipped = 0;
	djroutes__set_unique(t);
	ret = pythreads__attr(l, mr, app, "url_map", &map);
	if (!ret && !pythreads__attr(l, mr, map, "host_matching", &hm) && !pythreads__read_long(l, mr, hm, &v) && v)
		return -ENOTSUP;
	ret = ret ?: pythreads__attr(l, mr, map, "_rules_by_endpoint", &byep);
	ret = ret ?: pythreads__dict_foreach(l, mr, byep, endpoint, &rs);
	return ret ?: rs.err;
}

int flaskroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
		      struct djroutes *t, unsigned *skipped)
{
	uint64_t app[2];
	int n = djroutes__find_apps(l, mr, runtime, "flask.app", "Flask", app, 2);

	*skipped = 0;
	if (n <= 0)
		return n ?: -ENODATA;
	if (n > 1)
		return -ENOTSUP;
	return read_app(l, mr, app[0], t, skipped);
}

int flaskroutes__read_worker(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
			     uint64_t worker, struct djroutes *t, unsigned *skipped)
{
	uint64_t app;
	int ret;

	*skipped = 0;
	if (pythreads__attr(l, mr, worker, "wsgi", &app))
		return -EINVAL;
	ret = djroutes__is_instance(l, mr, runtime, app, "flask.app", "Flask");
	if (ret)
		return ret == 1 ? -EINVAL : ret;
	return read_app(l, mr, app, t, skipped);
}
