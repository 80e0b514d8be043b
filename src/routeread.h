/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One process's route table read from its memory: the app object a response's stack gave, or
 * the first framework found imported (Django's URL patterns, djroutes.h; Flask's rules,
 * flaskroutes.h; Starlette's routes, starroutes.h; aiohttp's resources, aioroutes.h). djapps.h
 * decides when, and keeps the tables.
 *
 * The memory is the traced process's: any local user's to shape. The readers bound each list
 * they read and each level of includes or mounts, but not their product: a list of includes of
 * itself, or a Mount of its own router, would take LIST_MAX^DJROUTES_DEPTH walks, on the
 * collector's event loop. So one table's read makes at most ROUTEREAD_READS_MAX reads, and is
 * not a table if it needs more.
 */
#ifndef PYTRACE_ROUTEREAD_H
#define PYTRACE_ROUTEREAD_H

#include <stdint.h>
#include "memread.h"
#include "pylayout.h"

struct djroutes;

/* The largest table read whole (DJROUTES_MAX endpoints in includes) takes 99k (test_routeread.c). */
#define ROUTEREAD_READS_MAX	400000

/*
 * Read the table of the process that mr reads (layout l, _PyRuntime at runtime) into t (empty):
 * that of the app object app a frame gave, if not 0 (app_kind, routes.h's enum route_app: an
 * aiohttp app's request handler, a gunicorn worker serving a Flask app, a Starlette app), else
 * Django's patterns, else Flask's rules, else Starlette's routes; a WSGI app under gunicorn
 * matched after its SCRIPT_NAME. 0 or the reader's error (-ENOENT: no such framework imported;
 * -ELOOP: over ROUTEREAD_READS_MAX reads); *kind names the one read, or tried last;
 * *skipped: patterns not read.
 */
int routeread__table(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t app,
		     unsigned app_kind, struct djroutes *t, unsigned *skipped, const char **kind);

#endif
