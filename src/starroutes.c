// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Starlette's routes as route names: see starroutes.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "starroutes.h"
#include "pythreads.h"
#include "symbolize.h"

#define SET_MASK	32	/* PySetObject.mask: after the head, fill and used */
#define SET_TABLE	40	/* PySetObject.table: entries of { key, hash } */
#define SET_MASK_MAX	63	/* a set of methods: a few */
#define ROUTES_MAX	4096	/* routes of one router */
#define MOUNT_DEPTH	4
#define APPS_MAX	8	/* module-level apps looked at */
#define MOUNT_TAIL	"/(?P<path>.*)$"	/* what compile_path makes of a Mount's "/{path:path}" */

struct reader {
	const struct py_layout *l;
	const struct mem_reader *mr;
	struct djroutes *t;
	unsigned *skipped;
	uint64_t mounted[APPS_MAX];	/* the Starlette apps mounted under the one being read */
	unsigned nmounted;
};

/* The prefix of the Mounts above a route: Python regex source and name, each from the path's '/'. */
struct prefix {
	char re[DJROUTES_ERE_MAX];
	char label[DJROUTES_LABEL_MAX];
};

static bool has_attr(const struct reader *rd, uint64_t obj, const char *attr, uint64_t *v)
{
	return !pythreads__attr(rd->l, rd->mr, obj, attr, v);
}

/* A Route's methods (a set of str, or None) as DJR_M_* bits: 0 (any) or -errno. */
static int methods(const struct reader *rd, uint64_t set, uint16_t *out)
{
	uint64_t mask, table, e[2 * (SET_MASK_MAX + 1)];
	char tn[16], m[16];
	int ret;

	*out = 0;
	ret = pythreads__type_name(rd->mr, set, tn, sizeof(tn));
	if (ret || !strcmp(tn, "NoneType"))
		return ret;
	if (strcmp(tn, "set") && strcmp(tn, "frozenset"))
		return -EINVAL;
	ret = mem_read_u64(rd->mr, set + SET_MASK, &mask);
	ret = ret ?: mem_read_u64(rd->mr, set + SET_TABLE, &table);
	if (ret)
		return ret;
	if (mask > SET_MASK_MAX)
		return -E2BIG;
	ret = mem_read(rd->mr, table, e, (mask + 1) * 16);
	for (uint64_t i = 0; !ret && i <= mask; i++) {
		/* empty slots are NULL; a removed key's is a dummy object, not a str */
		if (!e[2 * i] || djroutes__type_is(rd->mr, e[2 * i], "str") != 1)
			continue;
		if (py_read_str(rd->l, rd->mr, e[2 * i], m, sizeof(m)) > 0)
			*out |= djroutes__method_bit(m);
	}
	return ret;
}

/*
 * The regex source rx of a route (anchored: "^/...$") under prefix px into p, named by px's
 * label and fmt: 0, -E2BIG, -EINVAL.
 */
static int route_piece(const struct prefix *px, const char *rx, const char *fmt, struct djr_piece *p)
{
	char src[DJROUTES_ERE_MAX];
	int n;

	if (rx[0] != '^' || fmt[0] != '/')
		return -EINVAL;
	/* the table matches what follows the path's first '/', whichever part holds it */
	n = snprintf(src, sizeof(src), "%s%s", px->re, rx + 1);
	if (n < 0 || (size_t)n >= sizeof(src))
		return -E2BIG;
	if (src[0] != '/')
		return -EINVAL;
	src[0] = '^';
	n = djroutes__regex_piece(src, true, p);
	if (n)
		return n;
	/* the name without its leading '/', which the table puts back */
	n = snprintf(src, sizeof(src), "%s%s", px->label, fmt);
	if (n < 0 || (size_t)n >= sizeof(p->label))
		return -E2BIG;
	memcpy(p->label, src + 1, n);
	return 0;
}

static int routes(struct reader *rd, uint64_t list, const struct prefix *px, unsigned depth);

/* A Mount: its app's routes under its prefix, then a stop below the prefix. */
static int mount(struct reader *rd, uint64_t m, const struct prefix *px, unsigned depth)
{
	char rx[DJROUTES_ERE_MAX], fmt[DJROUTES_LABEL_MAX], lit[DJROUTES_LABEL_MAX];
	struct prefix sub;
	uint64_t pat, app, list, router;
	size_t n, tail = strlen(MOUNT_TAIL);
	int ret;

	ret = pythreads__attr(rd->l, rd->mr, m, "path_regex", &pat);
	ret = ret ?: djroutes__pattern_source(rd->l, rd->mr, pat, rx, sizeof(rx));
	ret = ret ?: djroutes__str_attr(rd->l, rd->mr, m, "path_format", fmt, sizeof(fmt));
	ret = ret ?: pythreads__attr(rd->l, rd->mr, m, "_base_app", &app);
	if (ret)
		return ret;
	n = strlen(rx);
	if (rx[0] != '^' || n < tail + 1 || strcmp(rx + n - tail, MOUNT_TAIL) || strlen(fmt) < 7 ||
	    strcmp(fmt + strlen(fmt) - 7, "/{path}") || depth >= MOUNT_DEPTH)
		return -ENOTSUP;
	rx[n - tail] = 0;
	fmt[strlen(fmt) - 7] = 0;
	if (snprintf(sub.re, sizeof(sub.re), "%s%s", px->re, rx + 1) >= (int)sizeof(sub.re) ||
	    snprintf(sub.label, sizeof(sub.label), "%s%s", px->label, fmt) >= (int)sizeof(sub.label))
		return -E2BIG;
	if (has_attr(rd, app, "routes", &list)) {
		ret = routes(rd, list, &sub, depth + 1);		/* a Router */
	} else if (has_attr(rd, app, "router", &router) && has_attr(rd, router, "routes", &list)) {
		if (rd->nmounted < APPS_MAX)
			rd->mounted[rd->nmounted++] = app;	/* a Starlette app */
		ret = routes(rd, list, &sub, depth + 1);
	} else {
		(*rd->skipped)++;				/* StaticFiles, a WSGI app, ... */
	}
	if (ret)
		return ret;
	/* below the prefix, what the mounted app does not match is its 404: its literal start */
	snprintf(lit, sizeof(lit), "%s%s", sub.label + (sub.label[0] == '/'), sub.label[0] ? "/" : "");
	lit[strcspn(lit, "{")] = 0;
	djroutes__add_stopper(rd->t, lit, !strchr(sub.label, '{'));
	return 0;
}

/* One route into the table: 0, or a torn read's error. */
static int route(struct reader *rd, uint64_t r, const struct prefix *px, unsigned depth)
{
	char tn[64], rx[DJROUTES_ERE_MAX], fmt[DJROUTES_LABEL_MAX];
	struct djr_piece p;
	uint64_t v, pat;
	int ret = pythreads__type_name(rd->mr, r, tn, sizeof(tn));

	if (ret)
		return ret;
	if (strstr(tn, "WebSocket"))
		return 0;	/* matches WebSocket scopes only */
	if (has_attr(rd, r, "_base_app", &v)) {
		ret = mount(rd, r, px, depth);
		if (ret)
			goto unknown;
		return 0;
	}
	if (!has_attr(rd, r, "methods", &v) || !has_attr(rd, r, "path_regex", &pat)) {
		ret = -ENOTSUP;		/* a Host, a route class of the app's own */
		goto unknown;
	}
	memset(&p, 0, sizeof(p));
	ret = djroutes__pattern_source(rd->l, rd->mr, pat, rx, sizeof(rx));
	ret = ret ?: djroutes__str_attr(rd->l, rd->mr, r, "path_format", fmt, sizeof(fmt));
	ret = ret ?: route_piece(px, rx, fmt, &p);
	ret = ret ?: methods(rd, v, &p.methods);
	if (ret)
		goto unknown;
	djroutes__add_one(rd->t, &p, rd->skipped);
	return 0;
unknown:
	/* a kind not understood: any path below the prefix may be its */
	snprintf(fmt, sizeof(fmt), "%s", px->label + (px->label[0] == '/'));
	fmt[strcspn(fmt, "{")] = 0;
	return djroutes__unknown(rd->t, rd->skipped, ret, fmt);
}

struct level {
	struct reader *rd;
	const struct prefix *px;
};

static int each_route(void *ctx, uint64_t r, unsigned depth)
{
	struct level *lv = ctx;

	return route(lv->rd, r, lv->px, depth);
}

static int routes(struct reader *rd, uint64_t list, const struct prefix *px, unsigned depth)
{
	struct level lv = { rd, px };

	return djroutes__list_each(rd->l, rd->mr, list, ROUTES_MAX, each_route, &lv, depth);
}

/* The routes of app into a new table: 0 or -errno; the apps it mounts in rd->mounted. */
static int read_app(struct reader *rd, uint64_t app)
{
	static const struct prefix root = { "", "" };
	uint64_t router, list;
	int ret;

	rd->nmounted = 0;
	*rd->skipped = 0;
	ret = pythreads__attr(rd->l, rd->mr, app, "router", &router);
	ret = ret ?: pythreads__attr(rd->l, rd->mr, router, "routes", &list);
	return ret ?: routes(rd, list, &root, 0);
}

int starroutes__read_app(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t app,
			 struct djroutes *t, unsigned *skipped)
{
	struct reader rd = { .l = l, .mr = mr, .t = t, .skipped = skipped };
	int ret = djroutes__is_instance(l, mr, runtime, app, "starlette.applications", "Starlette");

	*skipped = 0;
	if (ret)
		return ret == 1 ? -EINVAL : ret;
	return read_app(&rd, app);
}

int starroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
		     struct djroutes *t, unsigned *skipped)
{
	struct reader rd = { .l = l, .mr = mr, .skipped = skipped };
	uint64_t apps[APPS_MAX];
	int n, ret;

	*skipped = 0;
	n = djroutes__find_apps(l, mr, runtime, "starlette.applications", "Starlette", apps, APPS_MAX);
	if (n <= 0)
		return n ?: -ENODATA;
	if (n > APPS_MAX)
		return -ENOTSUP;
	if (n == 1) {
		rd.t = t;
		return read_app(&rd, apps[0]);
	}
	/* of several (a FastAPI app and the sub-apps it mounts), the one that mounts all the others */
	for (int i = 0; i < n; i++) {
		int found = 0;

		rd.t = djroutes__new();
		if (!rd.t)
			return -ENOMEM;
		ret = read_app(&rd, apps[i]);
		for (int j = 0; !ret && j < n; j++)
			for (unsigned k = 0; k < rd.nmounted; k++)
				if (rd.mounted[k] == apps[j]) {
					found++;
					break;
				}
		if (!ret && found == n - 1) {
			djroutes__move(t, rd.t);
			return 0;
		}
		djroutes__free(rd.t);
		if (ret)
			return ret;
	}
	return -ENOTSUP;
}
