// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* One process's route table read from its memory: see routeread.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "routeread.h"
#include "aioroutes.h"
#include "djroutes.h"
#include "flaskroutes.h"
#include "pythreads.h"
#include "routes.h"
#include "starroutes.h"
#include "symbolize.h"
#include "tornroutes.h"

/*
 * uWSGI's --mount PREFIX=APP with --manage-script-name: uWSGI gives the app the path after
 * PREFIX. Its options are the embedded uwsgi module's `opt` dict ("mount": bytes, a list of them
 * for several mounts: several apps in one process, not followed). 0 and the prefix in sn, or -ENOENT.
 */
static int uwsgi_mount(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, char *sn,
		       size_t size)
{
	uint64_t md, opt, mount, flag;
	uint8_t *data = NULL;
	const uint8_t *eq;
	size_t len = 0;
	long n;

	if (pythreads__module_dict(l, mr, runtime, "uwsgi", &md) || pythreads__dict_get(l, mr, md, "opt", &opt) ||
	    pythreads__dict_get(l, mr, opt, "manage-script-name", &flag) ||
	    pythreads__dict_get(l, mr, opt, "mount", &mount) || djroutes__type_is(mr, mount, "bytes") != 1)
		return -ENOENT;
	n = py_read_bytes(l, mr, mount, size - 1, &data, &len);
	eq = n > 0 && (size_t)n == len ? memchr(data, '=', len) : NULL;
	if (eq && eq > data) {
		memcpy(sn, data, (size_t)(eq - data));
		sn[eq - data] = 0;
	}
	free(data);
	return eq && eq > data ? 0 : -ENOENT;
}

/*
 * A WSGI app mounted at a prefix: under gunicorn, SCRIPT_NAME (gunicorn/http/wsgi.py reads it
 * from its environment at each request, and gives the app the path after it); under uWSGI, a
 * --mount's (uwsgi_mount). t matches without it.
 */
static void wsgi_prefix(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, struct djroutes *t)
{
	char sn[DJROUTES_LABEL_MAX];
	uint64_t md;
	size_t n;

	if ((pythreads__module_dict(l, mr, runtime, "gunicorn.http.wsgi", &md) ||
	     pythreads__environ(l, mr, runtime, "SCRIPT_NAME", sn, sizeof(sn))) &&
	    uwsgi_mount(l, mr, runtime, sn, sizeof(sn)))
		return;
	if (sn[0] != '/')
		return;
	n = strlen(sn);
	while (n > 1 && sn[n - 1] == '/')
		sn[--n] = 0;
	if (n > 1)
		djroutes__set_prefix(t, sn);
}

static int table(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t app,
		 unsigned app_kind, struct djroutes *t, unsigned *skipped, const char **kind)
{
	int ret, flask;

	if (app && app_kind == ROUTE_APP_HANDLER) {
		*kind = "aiohttp's routes";
		return aioroutes__read(l, mr, app, t, skipped);
	}
	if (app && app_kind == ROUTE_APP_WSGI_WORKER) {
		*kind = "Flask's URL rules";
		return flaskroutes__read_worker(l, mr, runtime, app, t, skipped);
	}
	if (app && app_kind == ROUTE_APP_STARLETTE) {
		*kind = "Starlette's routes";
		return starroutes__read_app(l, mr, runtime, app, t, skipped);
	}
	if (app && app_kind == ROUTE_APP_TORNADO) {
		*kind = "Tornado's rules";
		return tornroutes__read(l, mr, runtime, app, t, skipped);
	}
	*kind = "Django's URL patterns";
	ret = djroutes__read(l, mr, runtime, t, skipped);
	if (ret != -ENOENT)
		return ret;
	/* no Django: a Flask app's rules, else a Starlette app's routes, the same way */
	djroutes__clear(t);
	*kind = "Flask's URL rules";
	ret = flaskroutes__read(l, mr, runtime, t, skipped);
	if (ret != -ENOENT && ret != -ENODATA)
		return ret;
	djroutes__clear(t);
	flask = ret;
	*kind = "Starlette's routes";
	ret = starroutes__read(l, mr, runtime, t, skipped);
	if (ret == -ENOENT && flask == -ENODATA) {
		*kind = "Flask's URL rules";	/* Flask's app not found is the news */
		return flask;
	}
	return ret;
}

/* A reader that fails (-ELOOP) once it has made ROUTEREAD_READS_MAX reads. */
struct budget {
	const struct mem_reader *mr;
	unsigned long left;
	bool refused;		/* a read was */
};

static int budget_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	struct budget *b = ctx;

	if (!b->left) {
		b->refused = true;
		return -ELOOP;
	}
	b->left--;
	return mem_read(b->mr, addr, buf, len);
}

static void budget_readv(void *ctx, struct mem_span *v, unsigned n)
{
	struct budget *b = ctx;
	unsigned k = n < b->left ? n : (unsigned)b->left;

	mem_readv(b->mr, v, k);
	b->left -= k;
	for (unsigned i = k; i < n; i++) {
		v[i].err = -ELOOP;
		b->refused = true;
	}
}

int routeread__table(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t app,
		     unsigned app_kind, struct djroutes *t, unsigned *skipped, const char **kind)
{
	struct budget b = { .mr = mr, .left = ROUTEREAD_READS_MAX };
	struct mem_reader bmr = { .read = budget_read, .readv = budget_readv, .ctx = &b };
	int ret = table(l, &bmr, runtime, app, app_kind, t, skipped, kind);

	/* WSGI apps: Django's and Flask's */
	if (!ret && ((*kind)[0] == 'D' || (*kind)[0] == 'F'))
		wsgi_prefix(l, &bmr, runtime, t);
	/* a reader may have taken the failed reads for a pattern it does not know: not a table */
	return b.refused ? -ELOOP : ret;
}

