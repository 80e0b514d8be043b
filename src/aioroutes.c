// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* aiohttp's resources as route names: see aioroutes.h. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include "aioroutes.h"
#include "pythreads.h"
#include "symbolize.h"

#define METHOD_SELF	24	/* PyMethodObject.im_self: after the head and im_func */
#define RESOURCES_MAX	4096	/* resources of one router */
#define SUBAPP_DEPTH	4

struct reader {
	const struct py_layout *l;
	const struct mem_reader *mr;
	struct djroutes *t;
	unsigned *skipped;
	uint16_t methods;	/* res_methods' */
};

static int str_attr(const struct reader *rd, uint64_t obj, const char *attr, char *buf, size_t size)
{
	return djroutes__str_attr(rd->l, rd->mr, obj, attr, buf, size);
}

/* A DynamicResource: its pattern's source (fullmatched), named by its formatter. */
static int dynamic(struct reader *rd, uint64_t res, struct djr_piece *p)
{
	char fmt[DJROUTES_LABEL_MAX], src[DJROUTES_ERE_MAX];
	uint64_t pat;
	int ret;

	ret = str_attr(rd, res, "_formatter", fmt, sizeof(fmt));
	ret = ret ?: pythreads__attr(rd->l, rd->mr, res, "_pattern", &pat);
	if (ret)
		return ret;
	if (fmt[0] != '/')
		return -EINVAL;
	ret = djroutes__pattern_source(rd->l, rd->mr, pat, src, sizeof(src));
	if (ret && ret != -ENOTSUP)
		return ret;
	if (ret || src[0] != '/') {
		/* its source out of reach: the literal start of its name is all that is sure */
		fmt[strcspn(fmt, "{")] = 0;
		djroutes__add_stopper(rd->t, fmt + 1, false);
		return -ENOTSUP;
	}
	/* aiohttp fullmatches it: anchored at both ends, as a re_path "^...$" endpoint */
	src[0] = '^';
	if (strlen(src) + 2 > sizeof(src))
		return -E2BIG;
	strcat(src, "$");
	ret = djroutes__regex_piece(src, true, p);
	if (ret)
		return ret;
	strcpy(p->label, fmt + 1);
	return 0;
}

static int resources(struct reader *rd, uint64_t app, unsigned depth);

#define ROUTES_MAX	64	/* routes of one resource */

static int method_key(void *ctx, uint64_t key, uint64_t value, uint32_t ix)
{
	struct reader *rd = ctx;
	char m[16];

	if (py_read_str(rd->l, rd->mr, key, m, sizeof(m)) > 0)
		rd->methods |= djroutes__method_bit(m);
	return 0;
}

/*
 * A resource's methods, as DJR_M_* bits (0: any, a route for "*"): its routes' `_method` (a list
 * of ResourceRoute; StaticResource's `_routes` is a dict by method). 0, -ENOENT (no route: it
 * matches no request) or -errno.
 */
static int res_methods(struct reader *rd, uint64_t res, uint16_t *out)
{
	uint64_t routes, v[ROUTES_MAX];
	char m[16];
	int n, ret;

	*out = 0;
	if (pythreads__attr(rd->l, rd->mr, res, "_routes", &routes))
		return 0;	/* not known: any */
	rd->methods = 0;
	n = pythreads__list_items(rd->l, rd->mr, routes, v, ROUTES_MAX);
	if (n == -EINVAL) {
		ret = pythreads__dict_foreach(rd->l, rd->mr, routes, method_key, rd);
		if (ret)
			return ret;
		*out = rd->methods;
		return rd->methods ? 0 : -ENOENT;
	}
	if (n == -E2BIG)
		return 0;	/* that many routes: any */
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		ret = str_attr(rd, v[i], "_method", m, sizeof(m));
		if (ret)
			return ret;
		if (!strcmp(m, "*"))
			return 0;	/* hdrs.METH_ANY */
		rd->methods |= djroutes__method_bit(m);
	}
	*out = rd->methods;
	return n ? 0 : -ENOENT;
}

/* One resource into the table (ctx: the reader): 0, or a torn read's error. */
static int resource(void *ctx, uint64_t res, unsigned depth)
{
	struct reader *rd = ctx;
	char tn[64], path[DJROUTES_LABEL_MAX];
	struct djr_piece p;
	uint64_t sub;
	int ret = pythreads__type_name(rd->mr, res, tn, sizeof(tn));

	if (ret)
		return ret;
	if (!strcmp(tn, "PlainResource")) {
		ret = str_attr(rd, res, "_path", path, sizeof(path));
		if (ret || path[0] != '/' || djroutes__literal_piece(path + 1, true, &p))
			goto unknown;
	} else if (!strcmp(tn, "DynamicResource")) {
		ret = dynamic(rd, res, &p);
		if (ret == -ENOTSUP) {
			(*rd->skipped)++;
			return 0;
		}
		if (ret)
			goto unknown;
	} else if (!strcmp(tn, "StaticResource")) {
		/* the prefix, and every file below it, named by the prefix (its canonical) */
		ret = str_attr(rd, res, "_prefix", path, sizeof(path));
		if (ret || path[0] != '/' || djroutes__literal_piece(path + 1, true, &p) || strlen(p.ere) + 8 > sizeof(p.ere))
			goto unknown;
		strcat(p.ere, "(/.*)?");
	} else if (!strcmp(tn, "PrefixedSubAppResource")) {
		ret = str_attr(rd, res, "_prefix", path, sizeof(path));
		ret = ret ?: pythreads__attr(rd->l, rd->mr, res, "_app", &sub);
		if (ret || path[0] != '/' || depth >= SUBAPP_DEPTH)
			goto unknown;
		ret = resources(rd, sub, depth + 1);
		if (ret)
			goto unknown;
		djroutes__add_stopper(rd->t, path + 1, false);	/* below the prefix, what the sub-app does not match is a 404 */
		return 0;
	} else {
		goto unknown;
	}
	/* a resource whose routes do not allow the request's method is passed over */
	ret = res_methods(rd, res, &p.methods);
	if (ret == -ENOENT)
		return 0;	/* no route: it matches nothing */
	if (ret)
		goto unknown;
	djroutes__add_one(rd->t, &p, rd->skipped);
	return 0;
unknown:
	/* a kind not understood (a domain's sub-app, the app's own class): any path may be its */
	return djroutes__unknown(rd->t, rd->skipped, ret, "");
}

static int resources(struct reader *rd, uint64_t app, unsigned depth)
{
	uint64_t router, list;
	int ret;

	ret = pythreads__attr(rd->l, rd->mr, app, "_router", &router);
	ret = ret ?: pythreads__attr(rd->l, rd->mr, router, "_resources", &list);
	return ret ?: djroutes__list_each(rd->l, rd->mr, list, RESOURCES_MAX, resource, rd, depth);
}

int aioroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t handler,
		    struct djroutes *t, unsigned *skipped)
{
	struct reader rd = { .l = l, .mr = mr, .t = t, .skipped = skipped };
	uint64_t app, router;
	int ret;

	*skipped = 0;
	djroutes__set_strict_methods(t);	/* a path no resource allows the method of: a 405, no route */
	ret = djroutes__type_is(rd.mr, handler, "method");
	if (ret <= 0)
		return ret ?: -EINVAL;
	ret = mem_read_u64(mr, handler + METHOD_SELF, &app);
	if (ret)
		return ret;
	if (pythreads__attr(l, mr, app, "_router", &router))
		return -EINVAL;
	return resources(&rd, app, 0);
}
