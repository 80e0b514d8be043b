/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Starlette's routes (FastAPI's among them) as route names ("/items/{item_id}"), as the app
 * declared them with their converters dropped: each Route's path_format, Mounts' joined before
 * it, the name Route.handle's route gives where the walker finds it (routes.h).
 *
 * Where the response is written by a task without the route's frame (a plain StreamingResponse
 * streams from a child task of its own; behind BaseHTTPMiddleware, a third task streams what
 * the middleware returns), no frame names the route, and Starlette puts none in the request's
 * scope (FastAPI does: scope["route"], read there). The app's routes are in reach: the tool
 * finds the app object in the process's memory and reads its router once into a djroutes table
 * (first match, as Starlette's Router tries them):
 *   - the app: a module-level instance of starlette.applications.Starlette or of a subclass
 *     (FastAPI), among the globals of the process's own modules (djroutes__find_apps: uvicorn's
 *     `module:app`, or `app = ...` in the script that runs the server); of several, the one that
 *     mounts all the others; where there is none (an app factory's: `uvicorn --factory`), the
 *     app of a request's ASGI scope (scope["app"]), read at a response keyed by its scope;
 *   - app.router.routes, in order:
 *     - a Route (FastAPI's APIRoute): path_regex's source (a compiled re.Pattern, read as
 *       aioroutes.h reads aiohttp's), named by path_format; its `methods` (a set of str, or None)
 *       kept, so that a path whose first route does not allow the request's method is named by a
 *       later route that does, or else by the first (Starlette's 405 goes through it);
 *     - a Mount: the routes of its app (a Router's `routes`, a Starlette app's router's) under
 *       its prefix (its path_regex without the "/(?P<path>.*)$" that takes the rest), then
 *       everything else below the prefix named by none (the mounted router answers 404 there
 *       without trying the next routes); a mounted app of another kind (StaticFiles, a WSGI app)
 *       names nothing below its prefix;
 *     - a WebSocketRoute: left out (it never matches an HTTP request);
 *     - a Host, or a route of a kind not understood: paths it may take are named by none.
 * A path no route matches (a 404, a redirect_slashes redirect) keeps its folded path.
 * Starlette 0.26 (Debian 12) was read here: starlette/routing.py, applications.py.
 */
#ifndef PYTRACE_STARROUTES_H
#define PYTRACE_STARROUTES_H

#include <stdint.h>
#include "djroutes.h"

/*
 * Read the routes of the Starlette app of the process that mr reads into t: 0, -ENOENT
 * (Starlette is not imported), -ENODATA (no app object found: not a module global), -ENOTSUP (several apps, none
 * mounting the others), or -errno of a read (torn: try again). *skipped counts routes not read.
 */
int starroutes__read(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime,
		     struct djroutes *t, unsigned *skipped);
/*
 * The same from the app object app (a request's ASGI scope's "app", which Starlette.__call__
 * sets: where no module global holds the app, one made by a factory, `uvicorn --factory`): 0,
 * -EINVAL (not a Starlette app) or -errno.
 */
int starroutes__read_app(const struct py_layout *l, const struct mem_reader *mr, uint64_t runtime, uint64_t app,
			 struct djroutes *t, unsigned *skipped);

#endif
