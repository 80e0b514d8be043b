/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The URL pattern tables of the traced processes, read when due and shared: Django's patterns
 * (djroutes.h), or where Django is not imported, a Flask app's rules (flaskroutes.h), else a
 * Starlette app's routes (starroutes.h), or the resources of the aiohttp app whose handler a
 * response's stack gave (aioroutes.h). They name the requests that no frame named (routes.h).
 *
 * A process's table is read at its first response, when its urlconf has been imported (Django
 * imports it at its first request), and then kept until the process exits or execs. Until
 * Django is set up, or where it is not found, the read is tried again at most once a second:
 * 3 times for a process without Django, Flask or Starlette (none in sys.modules), or whose
 * Flask or Starlette app is not a module global (made in a function: gunicorn's
 * 'app:create_app()'), 30 times for one
 * whose settings or urlconf are not loaded yet, 10 times after read errors (a torn read), and
 * then never; those processes' requests keep their folded paths. The workers of one app read
 * equal tables: processes share one copy (by content), so that memory follows the number of
 * distinct apps (at most DJAPPS_TABLES), not of workers (at most DJAPPS_PIDS).
 */
#ifndef PYTRACE_DJAPPS_H
#define PYTRACE_DJAPPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "memread.h"
#include "pylayout.h"

#define DJAPPS_PIDS	4096
#define DJAPPS_TABLES	64

struct procs;
struct djapps;
struct djroutes;

struct djapps_stats {
	uint64_t processes;		/* processes whose urlconf (or Flask rules) was read */
	uint64_t flask_processes;	/* of which Flask's */
	uint64_t aiohttp_processes;	/* of which aiohttp's */
	uint64_t tornado_processes;	/* of which Tornado's */
	uint64_t starlette_processes;	/* of which Starlette's (FastAPI's) */
	uint64_t tables;		/* distinct tables held now */
	uint64_t endpoints;		/* of those tables */
	uint64_t opaque;		/* of which patterns that name no path (not translatable) */
	uint64_t skipped;		/* patterns not read: DJROUTES_MAX, DJROUTES_DEPTH, unknown kinds */
	uint64_t reads, read_errors;	/* attempts, and those that failed (torn reads, not set up yet) */
	uint64_t too_long;		/* of those, tables given up: over ROUTEREAD_READS_MAX reads (routeread.h) */
	uint64_t dropped;		/* processes over DJAPPS_PIDS or tables over DJAPPS_TABLES */
	uint64_t named;			/* requests named by a pattern */
};

struct djapps *djapps__new(void);
void djapps__free(struct djapps *a);
/*
 * The name of a request (method: NULL if unknown) for target served by pid (its URL pattern)
 * into out: true, or false (no table, not read yet, no pattern names it). May read pid's memory
 * (procs: its layout).
 */
bool djapps__route(struct djapps *a, struct procs *ps, uint32_t pid, const char *method, const char *target,
		   char *out, size_t size);
/*
 * pid serves an app whose object a route frame gave with a response start (routes.h; kind: its
 * enum route_app): an aiohttp app's request handler, whose app's router is read (aioroutes.h),
 * or a gunicorn worker, whose Flask app's rules are (flaskroutes.h). The first object whose
 * table reads is kept; others (aiohttp's error handlers) are passed over.
 */
void djapps__app(struct djapps *a, uint32_t pid, uint64_t handler, unsigned kind);
/*
 * Whether pid's table is still to be read (16 tries at most), so that the caller looks for a
 * Starlette app in a request's ASGI scope and gives it to djapps__app (ROUTE_APP_STARLETTE):
 * that spares the search of the process's modules, and finds an app a factory made.
 */
bool djapps__wants_app(struct djapps *a, uint32_t pid);
/* pid exited or exec'd: its table goes */
void djapps__forget(struct djapps *a, uint32_t pid);
void djapps__stats(const struct djapps *a, struct djapps_stats *st);

#endif
