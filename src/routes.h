/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Web frameworks' own route templates ("/items/{item_id}"), where they are in reach.
 *
 * A framework is in reach when one of its frames holds the matched route object for as long as
 * the request is served, and that object is the app's own (static: read at leisure, cached by
 * address). Starlette is: Route.handle(self, scope, receive, send) runs the endpoint and sends
 * its response, and self is the Route (FastAPI's APIRoute inherits handle). The BPF walker gives
 * the innermost such frame's local with each response start it walks (struct pt_proc's
 * route_code, pt_stack.route_obj); the loader reads the route's `path` attribute.
 *
 * FastAPI behind BaseHTTPMiddleware: the writer is another task, but FastAPI puts the route in
 * the request's scope (scope["route"]), which that task's walker has (struct pt_proc's
 * scope_route_off). Django: its URL patterns (djroutes.h).
 *
 * Flask's match is a per-request object, gone when a WSGI server writes the response, and so is
 * Django's: their apps' rules and patterns are read instead (flaskroutes.h, djroutes.h).
 *
 * aiohttp: its request's task runs RequestHandler._handle_request(..., request_handler), the
 * app's _handle: the walker gives that (an "app" frame), and the app's router is read from it
 * (aioroutes.h). Tornado: its request's task runs RequestHandler._execute(self, ...), whose
 * self.application is the app (tornroutes.h).
 *
 * Not in reach from a frame: a Starlette response written by another task than the route's (a
 * plain StreamingResponse's, and Starlette's own routes behind BaseHTTPMiddleware: the writer's
 * stack has no Route.handle, and Starlette's scope no route). Those are named by the app's routes,
 * read from the app object (starroutes.h), else by the folded path (httpparse.h, http_route).
 *
 * A Mount's routes hold their path below the mount: http_route_join (httpparse.h) puts them
 * under the request path's leading segments.
 */
#ifndef PYTRACE_ROUTES_H
#define PYTRACE_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "memread.h"
#include "pylayout.h"

/* What a route frame's local is (struct route_frame's app). */
enum route_app {
	ROUTE_TEMPLATE,		/* the matched route object, whose attr is the template */
	ROUTE_APP_HANDLER,	/* the app's request handler: its routes are a table (aiohttp:
				   aioroutes.h), matched against each path */
	ROUTE_APP_WSGI_WORKER,	/* a gunicorn worker, whose `wsgi` is the app: a Flask app's rules
				   (flaskroutes.h), where the app is not a module global (an app
				   factory's); looked for only in such processes (procs__want_wsgi_app) */
	ROUTE_APP_STARLETTE,	/* no frame's: a Starlette app, from a request's ASGI scope
				   (starroutes.h), where no module global holds it */
	ROUTE_APP_TORNADO,	/* a Tornado RequestHandler (one per request): its application's
				   rules (tornroutes.h), read from the first that can be read */
};

/* A frame that holds the matched route: module.cls.method, its local var, var's attribute attr. */
struct route_frame {
	const char *module, *cls, *method;
	const char *qualname;			/* its code's co_qualname (3.11+; co_name: method) */
	const char *file;			/* how its code's co_filename ends */
	const char *var;			/* the local holding the route object */
	const char *attr;			/* the route object's str attribute: the template */
	uint8_t app;				/* enum route_app */
	/*
	 * An app kind's local that is a per-request instance of module.cls (Tornado's handler):
	 * its attribute that holds the app, which the walker reads itself once the loader knows
	 * where the class keeps it (procs__route_attr); NULL: the local is the app's object
	 */
	const char *app_attr;
};

extern const struct route_frame routes__frames[];
extern const unsigned routes__nframes;

/* The route frame that a frame named name (co_qualname or co_name) in file is, or NULL. */
const struct route_frame *routes__frame(const char *name, const char *file);

/*
 * Read the template of the route object obj of the process that mr reads, with layout l:
 * rf->attr of obj, as http_route_template (httpparse.h) gives it. 0, or -errno (-ENOENT: no such attribute,
 * -EINVAL: not a str, not a path).
 */
int routes__read(const struct py_layout *l, const struct mem_reader *mr, const struct route_frame *rf,
		 uint64_t obj, char *out, size_t size, bool *multi);

#endif
