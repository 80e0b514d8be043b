// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The Django URL pattern tables of the traced processes: see djapps.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "djapps.h"
#include "djroutes.h"
#include "memcache.h"
#include "pidtab.h"
#include "procmem.h"
#include "procs.h"
#include "pythreads.h"
#include "routeread.h"
#include "routes.h"
#include "util.h"

#define RETRY_NS	1000000000ULL
#define TRIES_NO_DJANGO	3
#define TRIES_NOT_READY	30
#define TRIES_ERRORS	10
#define SCOPE_APPS_MAX	16	/* apps tried from requests' scopes (one may be gone by then) */

enum { DJ_TRYING, DJ_READY, DJ_NONE };

struct djproc {
	uint32_t pid;			/* pidtab's key */
	uint8_t state;
	uint8_t no_django, not_ready, errors;
	uint64_t next_ns;
	struct djroutes *t;		/* DJ_READY: shared, in tables[] */
	uint64_t app, app_rejected;	/* an app's object a frame gave (djapps__app) */
	uint8_t app_kind;		/* routes.h's enum route_app */
	uint8_t scope_apps;		/* Starlette apps given from requests' scopes (djapps__wants_app) */
};

struct shared {
	struct djroutes *t;
	uint64_t hash;
	unsigned refs;
};

struct djapps {
	struct pidtab procs;
	struct shared tables[DJAPPS_TABLES];
	struct djapps_stats st;
};

struct djapps *djapps__new(void)
{
	struct djapps *a = calloc(1, sizeof(*a));

	if (a && pidtab__init(&a->procs, DJAPPS_PIDS * 2, sizeof(struct djproc))) {
		free(a);
		return NULL;
	}
	return a;
}

void djapps__free(struct djapps *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < DJAPPS_TABLES; i++)
		djroutes__free(a->tables[i].t);
	pidtab__fini(&a->procs);
	free(a);
}

/* t, or an equal table already held (t is then freed); NULL if there is no room. */
static struct djroutes *share(struct djapps *a, struct djroutes *t)
{
	uint64_t h = djroutes__hash(t);
	struct shared *free_slot = NULL;

	for (unsigned i = 0; i < DJAPPS_TABLES; i++) {
		struct shared *s = &a->tables[i];

		if (!s->t) {
			free_slot = free_slot ?: s;
		} else if (s->hash == h && djroutes__same(s->t, t)) {
			djroutes__free(t);
			s->refs++;
			return s->t;
		}
	}
	if (!free_slot) {
		djroutes__free(t);
		return NULL;
	}
	free_slot->t = t;
	free_slot->hash = h;
	free_slot->refs = 1;
	a->st.tables++;
	a->st.endpoints += djroutes__count(t);
	a->st.opaque += djroutes__opaque(t);
	return t;
}

static void unshare(struct djapps *a, struct djroutes *t)
{
	for (unsigned i = 0; i < DJAPPS_TABLES; i++) {
		struct shared *s = &a->tables[i];

		if (s->t != t)
			continue;
		if (--s->refs == 0) {
			a->st.tables--;
			a->st.endpoints -= djroutes__count(t);
			a->st.opaque -= djroutes__opaque(t);
			djroutes__free(t);
			s->t = NULL;
		}
		return;
	}
}

static void try_read(struct djapps *a, struct procs *ps, struct djproc *d, uint64_t now)
{
	struct proc *pr = procs__get(ps, d->pid, false);
	struct djroutes *t;
	struct mem_reader mr;
	struct memcache mc;
	const char *kind;
	unsigned skipped = 0;
	int ret;

	d->next_ns = now + RETRY_NS;
	if (!pr || pr->state != PROC_PYTHON || !pr->live || pr->py.free_threaded) {
		/* not (yet) known as Python: its first responses may come before the tool looked */
		if (++d->not_ready >= TRIES_NOT_READY)
			d->state = DJ_NONE;
		return;
	}
	t = djroutes__new();
	if (!t) {
		d->state = DJ_NONE;
		return;
	}
	a->st.reads++;
	procmem__reader(&mr, d->pid);
	/* through a page cache: whole pages, a fifth of the time (docs/PERFORMANCE.md) */
	ret = memcache__init(&mc, &mr);
	if (!ret) {
		ret = routeread__table(&pr->py.layout, &mc.mr, pr->py.runtime, d->app, d->app_kind, t, &skipped, &kind);
		memcache__fini(&mc);
	} else {
		kind = "the route table";
	}
	if (ret == -EINVAL && d->app) {
		/* not the app's handler (aiohttp's error handler of a bad request), or not a Flask app
		 * behind the worker (a middleware): wait for another */
		d->app_rejected = d->app;
		d->app = 0;
	}
	if (ret) {
		djroutes__free(t);
		if (ret == -ENOENT || ret == -ENODATA) {
			/*
			 * no framework, or its app object not among the modules' globals, where a
			 * serving process has it already (made in a function, it never will be); a
			 * Flask app's may be a gunicorn worker's (the walker then gives the worker)
			 */
			d->state = ++d->no_django >= TRIES_NO_DJANGO ? DJ_NONE : DJ_TRYING;
			if (ret == -ENODATA && kind[0] == 'F')
				procs__want_wsgi_app(ps, d->pid);

			if (ret == -ENODATA)
				vlog("pid %u: %s not read%s: no app object among the modules' globals\n", d->pid, kind,
				     d->state == DJ_NONE ? " (gave up)" : "");
			return;
		}
		a->st.read_errors++;
		if (ret == -ELOOP)
			a->st.too_long++;
		/* -ENOTSUP: what the tool cannot name (several Flask apps); -ELOOP: too long to read */
		if (ret == -ENOTSUP || ret == -ELOOP ||
		    (ret == -EAGAIN ? ++d->not_ready >= TRIES_NOT_READY : ++d->errors >= TRIES_ERRORS))
			d->state = DJ_NONE;
		vlog("pid %u: %s not read%s: %s\n", d->pid, kind, d->state == DJ_NONE ? " (gave up)" : "",
		     ret == -EAGAIN ? "not set up yet" : strerror(-ret));
		return;
	}
	vlog("pid %u: %s read: %u endpoints (%u not translatable), %u skipped\n", d->pid, kind,
	     djroutes__count(t), djroutes__opaque(t), skipped);
	a->st.skipped += skipped;
	d->t = share(a, t);
	if (!d->t) {
		a->st.dropped++;
		d->state = DJ_NONE;
		return;
	}
	a->st.processes++;
	if (kind[0] == 'F')
		a->st.flask_processes++;
	else if (kind[0] == 'a')
		a->st.aiohttp_processes++;
	else if (kind[0] == 'S')
		a->st.starlette_processes++;
	else if (kind[0] == 'T')
		a->st.tornado_processes++;
	d->state = DJ_READY;
}

bool djapps__route(struct djapps *a, struct procs *ps, uint32_t pid, const char *method, const char *target,
		   char *out, size_t size)
{
	struct djproc *d;
	bool created;
	uint64_t now;

	if (!pid)
		return false;
	d = pidtab__add(&a->procs, pid, &created);
	if (!d) {
		a->st.dropped++;
		return false;
	}
	if (d->state == DJ_TRYING) {
		now = mono_ns();
		if (now < d->next_ns)
			return false;
		try_read(a, ps, d, now);
	}
	if (d->state != DJ_READY || !djroutes__match_method(d->t, method, target, out, size))
		return false;
	a->st.named++;
	return true;
}

void djapps__app(struct djapps *a, uint32_t pid, uint64_t handler, unsigned kind)
{
	bool created;
	struct djproc *d = pid && handler ? pidtab__add(&a->procs, pid, &created) : NULL;

	if (!d || d->app == handler || d->app_rejected == handler || d->state == DJ_READY || d->app)
		return;
	d->app = handler;
	d->app_kind = (uint8_t)kind;
	if (kind == ROUTE_APP_STARLETTE)
		d->scope_apps++;
	d->state = DJ_TRYING;	/* read at this response, whatever was tried before */
	d->next_ns = 0;
	d->no_django = d->not_ready = d->errors = 0;
}

bool djapps__wants_app(struct djapps *a, uint32_t pid)
{
	struct djproc *d = pid ? pidtab__get(&a->procs, pid) : NULL;

	/* nothing read yet: the app object spares the search (and finds a factory's app) */
	return pid && (!d || (!d->app && d->state != DJ_READY && d->scope_apps < SCOPE_APPS_MAX));
}

void djapps__forget(struct djapps *a, uint32_t pid)
{
	struct djproc *d = pid ? pidtab__get(&a->procs, pid) : NULL;

	if (!d)
		return;
	if (d->t)
		unshare(a, d->t);
	pidtab__del(&a->procs, d);
}

void djapps__stats(const struct djapps *a, struct djapps_stats *st)
{
	*st = a->st;
}
