// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Tornado's URL specs as route names: see tornroutes.h. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include "tornroutes.h"
#include "pythreads.h"

#define RULES_MAX	4096	/* rules of one router */
#define ROUTER_DEPTH	4	/* routers within routers followed */

struct reader {
	const struct py_layout *l;
	const struct mem_reader *mr;
	struct djroutes *t;
	unsigned *skipped;
	bool shadow;	/* in a named host's router: its rules' paths are named by none */
};

static int rules(struct reader *rd, uint64_t router, unsigned depth);

/* A PathMatches' regex into p as an endpoint: 0, -ENOTSUP (not a path's), or -errno. */
static int path_piece(struct reader *rd, uint64_t matcher, struct djr_piece *p)
{
	char src[DJROUTES_ERE_MAX];
	uint64_t re;
	int ret = pythreads__attr(rd->l, rd->mr, matcher, "regex", &re);
	size_t at = 0;

	ret = ret ?: djroutes__pattern_source(rd->l, rd->mr, re, src, sizeof(src) - 1);
	if (ret)
		return ret;
	/* regex.match(request.path): from the path's start, its first '/' the root's */
	if (src[at] == '^')
		at++;
	if (src[at] != '/')
		return -ENOTSUP;
	src[at] = '^';
	return djroutes__regex_piece(src + at, true, p);
}

/* A PathMatches' regex as an endpoint, named by none if opaque: 0, or path_piece's error. */
static int add_path(struct reader *rd, uint64_t matcher, bool opaque)
{
	struct djr_piece p;
	int ret = path_piece(rd, matcher, &p);

	if (ret)
		return ret;
	p.opaque = opaque;
	djroutes__add_one(rd->t, &p, rd->skipped);
	return 0;
}

/* Whether a HostMatches' pattern takes any host (add_handlers(r".*", ...)): 1, 0, or -errno. */
static int any_host(struct reader *rd, uint64_t matcher)
{
	char src[16];
	uint64_t re;
	int ret = pythreads__attr(rd->l, rd->mr, matcher, "host_pattern", &re);

	ret = ret ?: djroutes__pattern_source(rd->l, rd->mr, re, src, sizeof(src));
	if (ret)
		return ret == -ENOTSUP ? 0 : ret;
	return !strcmp(src, ".*") || !strcmp(src, ".*$");
}

/* One rule into the table (ctx: the reader): 0, or a torn read's error. */
static int rule(void *ctx, uint64_t r, unsigned depth)
{
	struct reader *rd = ctx;
	char mt[32];
	uint64_t matcher, target, sub;
	bool shadow = rd->shadow;
	int ret, any;

	ret = pythreads__attr(rd->l, rd->mr, r, "matcher", &matcher);
	ret = ret ?: pythreads__attr(rd->l, rd->mr, r, "target", &target);
	ret = ret ?: pythreads__type_name(rd->mr, matcher, mt, sizeof(mt));
	if (ret)
		goto unknown;
	/* a router: its own rules, where its matcher takes any request */
	if (!pythreads__attr(rd->l, rd->mr, target, "rules", &sub)) {
		if (!strcmp(mt, "PathMatches")) {
			/*
			 * the paths it matches go to the router, then, if none of its rules takes
			 * them, to the rules after it: named by none
			 */
			ret = add_path(rd, matcher, true);
			if (ret)
				goto unknown;
			return 0;
		}
		any = !strcmp(mt, "AnyMatches") ? 1 : !strcmp(mt, "HostMatches") ? any_host(rd, matcher) : 0;
		if (any < 0) {
			ret = any;
			goto unknown;
		}
		/* a named host's: the paths of its rules may be its, for all the tool can tell */
		if (depth >= ROUTER_DEPTH || (!any && strcmp(mt, "HostMatches"))) {
			ret = -ENOTSUP;
			goto unknown;
		}
		rd->shadow |= !any;
		ret = rules(rd, target, depth + 1);
		rd->shadow = shadow;
		if (ret)
			goto unknown;
		return 0;
	}
	/* a handler class (or another app, which the rule's path routes to all the same) */
	if (strcmp(mt, "PathMatches")) {
		ret = -ENOTSUP;
		goto unknown;
	}
	ret = add_path(rd, matcher, shadow);
	if (ret)
		goto unknown;
	return 0;
unknown:
	/* any path may be its */
	return djroutes__unknown(rd->t, rd->skipped, ret, "");
}

static int rules(struct reader *rd, uint64_t router, unsigned depth)
{
	uint64_t list;
	int ret = pythreads__attr(rd->l, rd->mr, router, "rules", &list);

	return ret ?: djroutes__list_each(rd->l, rd->mr, list, RULES_MAX, rule, rd, depth);
}

int tornroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t app,
		     struct djroutes *t, unsigned *skipped)
{
	struct reader rd = { .l = l, .mr = mr, .t = t, .skipped = skipped };
	uint64_t router;
	int ret;

	*skipped = 0;
	/* the walker read it from a handler by its class's recipe: checked */
	ret = djroutes__is_instance(l, mr, runtime, app, "tornado.web", "Application");
	if (ret)
		return ret == 1 ? -EINVAL : ret;
	if (pythreads__attr(l, mr, app, "default_router", &router))
		return -EINVAL;
	return rules(&rd, router, 0);
}
